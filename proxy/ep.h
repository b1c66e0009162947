/* proxy/ep.h - one side of a relayed connection: a struct stream, optionally
 * wrapped in TLS on memory BIOs (internal to proxy/).
 *
 * The relay reads and writes plaintext; the endpoint moves ciphertext
 * between OpenSSL's memory BIOs and the stream without blocking.  Output is
 * bounded: ep_room() says how many plaintext bytes ep_write() will take now,
 * so the relay never reads more from one side than the other can absorb.
 */
#ifndef KVMBOX_PROXY_EP_H
#define KVMBOX_PROXY_EP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <openssl/ssl.h>

#include "proxy/proxy.h"

#define EP_OUT_CAP (64 * 1024)	/* bytes queued towards the stream */

struct ep {
	struct stream *s;	/* NULL when not open */
	SSL *ssl;		/* NULL for plaintext */
	BIO *rbio, *wbio;	/* owned by ssl */
	uint8_t *out;		/* EP_OUT_CAP bytes queued for the stream */
	size_t out_off, out_len;
	bool eof;		/* no more input (stream EOF or TLS close) */
	bool hs_done;		/* TLS handshake finished (always true for plain) */
	bool shut;		/* shutdown sent */
	uint64_t rx, tx;	/* bytes read from / written to the stream */
};

/* Open on stream s (owned from now on): 0 or -ENOMEM (s is then closed). */
int ep_open(struct ep *e, struct stream *s);
/* Wrap in TLS from ctx; server or client side.  0 or -ENOMEM. */
int ep_start_tls(struct ep *e, SSL_CTX *ctx, bool server);
/* Feed bytes already read from the stream into the TLS input. */
void ep_unread(struct ep *e, const void *buf, size_t len);
void ep_close(struct ep *e);
/* Drive the TLS handshake: 1 done, 0 in progress, -EPROTO failed. */
int ep_handshake(struct ep *e);
/* Plaintext in: > 0, 0 at EOF, -EAGAIN, -errno. */
ssize_t ep_read(struct ep *e, void *buf, size_t len);
/* Plaintext bytes ep_write() accepts now. */
size_t ep_room(const struct ep *e);
/* Queue plaintext: bytes taken (<= ep_room()), or -errno. */
ssize_t ep_write(struct ep *e, const void *buf, size_t len);
/* Send queued bytes to the stream: 0 (maybe still pending) or -errno. */
int ep_flush(struct ep *e);
/* Bytes still queued (ciphertext included). */
size_t ep_pending(const struct ep *e);
/* TLS close_notify (if TLS) then shutdown_write of the stream once flushed. */
void ep_shutdown(struct ep *e);

#endif
