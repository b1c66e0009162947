/* proxy/ep.c - a stream endpoint with optional TLS on memory BIOs (ep.h). */
#include "proxy/ep.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "common/util.h"

#define EP_OUT_HIGH (48 * 1024)	/* plaintext accepted while below this */

int ep_open(struct ep *e, struct stream *s)
{
	memset(e, 0, sizeof(*e));
	e->out = malloc(EP_OUT_CAP);
	if (!e->out) {
		s->ops->close(s);
		return -ENOMEM;
	}
	e->s = s;
	e->hs_done = true;
	return 0;
}

int ep_start_tls(struct ep *e, SSL_CTX *ctx, bool server)
{
	e->ssl = SSL_new(ctx);
	e->rbio = BIO_new(BIO_s_mem());
	e->wbio = BIO_new(BIO_s_mem());
	if (!e->ssl || !e->rbio || !e->wbio) {
		SSL_free(e->ssl);
		BIO_free(e->rbio);
		BIO_free(e->wbio);
		e->ssl = NULL;
		return -ENOMEM;
	}
	BIO_set_mem_eof_return(e->rbio, -1);
	SSL_set_bio(e->ssl, e->rbio, e->wbio);
	if (server)
		SSL_set_accept_state(e->ssl);
	else
		SSL_set_connect_state(e->ssl);
	e->hs_done = false;
	return 0;
}

void ep_unread(struct ep *e, const void *buf, size_t len)
{
	if (e->ssl && len)
		BIO_write(e->rbio, buf, (int)len);
}

void ep_close(struct ep *e)
{
	if (e->ssl)
		SSL_free(e->ssl);
	if (e->s)
		e->s->ops->close(e->s);
	free(e->out);
	memset(e, 0, sizeof(*e));
}

size_t ep_pending(const struct ep *e)
{
	return e->out_len - e->out_off + (e->ssl ? (size_t)BIO_pending(e->wbio) : 0);
}

/* Move ciphertext from the write BIO into the output queue. */
static void drain_wbio(struct ep *e)
{
	if (e->out_off) {
		memmove(e->out, e->out + e->out_off, e->out_len - e->out_off);
		e->out_len -= e->out_off;
		e->out_off = 0;
	}
	while (e->ssl && e->out_len < EP_OUT_CAP && BIO_pending(e->wbio) > 0) {
		int n = BIO_read(e->wbio, e->out + e->out_len, (int)(EP_OUT_CAP - e->out_len));
		if (n <= 0)
			break;
		e->out_len += (size_t)n;
	}
}

int ep_flush(struct ep *e)
{
	if (!e->s)
		return -EPIPE;
	for (;;) {
		drain_wbio(e);
		if (e->out_off == e->out_len)
			return 0;
		ssize_t n = e->s->ops->write(e->s, e->out + e->out_off, e->out_len - e->out_off);
		if (n == -EAGAIN)
			return 0;
		if (n < 0)
			return (int)n;
		e->out_off += (size_t)n;
		e->tx += (uint64_t)n;
		if (e->out_off == e->out_len)
			e->out_off = e->out_len = 0;
	}
}

/* Read ciphertext from the stream into the read BIO: > 0, 0 EOF, -EAGAIN. */
static ssize_t fill_rbio(struct ep *e)
{
	uint8_t tmp[65536];
	ssize_t n = e->s->ops->read(e->s, tmp, sizeof(tmp));
	if (n > 0) {
		BIO_write(e->rbio, tmp, (int)n);
		e->rx += (uint64_t)n;
	}
	return n;
}

int ep_handshake(struct ep *e)
{
	if (e->hs_done)
		return 1;
	for (;;) {
		ERR_clear_error();
		int r = SSL_do_handshake(e->ssl);
		ep_flush(e);
		if (r == 1) {
			e->hs_done = true;
			return 1;
		}
		int err = SSL_get_error(e->ssl, r);
		if (err != SSL_ERROR_WANT_READ)
			return -EPROTO;
		ssize_t n = fill_rbio(e);
		if (n == -EAGAIN)
			return 0;
		if (n <= 0) {
			e->eof = true;
			return -EPROTO;
		}
	}
}

ssize_t ep_read(struct ep *e, void *buf, size_t len)
{
	if (e->eof)
		return 0;
	if (!e->ssl) {
		ssize_t n = e->s->ops->read(e->s, buf, len);
		if (n == 0)
			e->eof = true;
		if (n > 0)
			e->rx += (uint64_t)n;
		return n;
	}
	for (;;) {
		ERR_clear_error();
		int r = SSL_read(e->ssl, buf, (int)MIN(len, (size_t)INT32_MAX));
		if (r > 0)
			return r;
		int err = SSL_get_error(e->ssl, r);
		if (err == SSL_ERROR_ZERO_RETURN) {
			e->eof = true;
			return 0;
		}
		if (err != SSL_ERROR_WANT_READ)
			return -EPROTO;
		ssize_t n = fill_rbio(e);
		if (n == -EAGAIN)
			return -EAGAIN;
		if (n == 0) {
			e->eof = true;	/* TCP EOF without close_notify: treat as EOF */
			return 0;
		}
		if (n < 0)
			return n;
	}
}

size_t ep_room(const struct ep *e)
{
	size_t p = ep_pending(e);
	if (!e->s || e->shut || p >= EP_OUT_HIGH)
		return 0;
	return EP_OUT_HIGH - p;
}

ssize_t ep_write(struct ep *e, const void *buf, size_t len)
{
	size_t room = ep_room(e);
	if (len > room)
		len = room;
	if (!len)
		return 0;
	if (!e->ssl) {
		drain_wbio(e);	/* compacts the queue */
		memcpy(e->out + e->out_len, buf, len);
		e->out_len += len;
		return (ssize_t)len;
	}
	size_t done = 0;
	while (done < len) {
		ERR_clear_error();
		int r = SSL_write(e->ssl, (const uint8_t *)buf + done, (int)MIN(len - done, (size_t)16384));
		if (r <= 0)
			return done ? (ssize_t)done : -EPROTO;
		done += (size_t)r;
	}
	drain_wbio(e);
	return (ssize_t)done;
}

void ep_shutdown(struct ep *e)
{
	if (e->shut || !e->s)
		return;
	if (e->ssl && e->hs_done)
		SSL_shutdown(e->ssl);
	ep_flush(e);
	e->shut = true;
}
