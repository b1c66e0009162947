/* common/stream.h - a duplex byte stream on the event loop: the one
 * interface between whoever owns the bytes and whoever consumes them.
 *
 * Implemented by the TCP stack (net/tcp.c: a guest flow handed to a
 * consumer instead of a host socket, net/net.h net_stream_handler_fn) and
 * by the socket adapter (proxy/sockstream.c: a non-blocking socket);
 * consumed by the TLS proxy (proxy/proxy.h proxy_take_stream), which
 * relays between two of them.
 *
 * Every call is non-blocking and made on the loop thread.  Readiness is
 * one-shot and asked for: want(rd, wr) asks for one notify() once the
 * stream is readable (data, end of stream, or an error to report) and/or
 * writable (room, or an error); the consumer then reads or writes until
 * -EAGAIN and asks again.  notify() never runs inside a call the consumer
 * made on the stream (a stream ready when asked notifies on a later loop
 * turn), so the consumer's handler need not be re-entrant.  Spurious
 * notifications are allowed.  Sizes are bounded by the owner's buffers:
 * a slow consumer throttles the far side (a guest through its TCP window)
 * and nothing buffers without bound.
 *
 * Lifetime: the consumer calls close() exactly once; no notify() after it
 * returns, and the stream must not be touched again.
 */
#ifndef KVMBOX_COMMON_STREAM_H
#define KVMBOX_COMMON_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct stream;

struct stream_ops {
	/* > 0 bytes read; 0 at the end of the stream (the far side's FIN);
	 * -EAGAIN when nothing is ready; another -errno on error (-ECONNRESET
	 * when the far side reset). */
	ssize_t (*read)(struct stream *s, void *buf, size_t len);
	/* > 0 bytes accepted; -EAGAIN when none can be now; -EPIPE after
	 * shutdown_write; another -errno on error. */
	ssize_t (*write)(struct stream *s, const void *buf, size_t len);
	/* One notify() once readable (rd) and/or writable (wr). */
	void (*want)(struct stream *s, bool rd, bool wr);
	/* No more writes from us: the far side gets its end of stream after
	 * what was written (a FIN). */
	void (*shutdown_write)(struct stream *s);
	/* Done with the stream: an orderly end where nothing the far side sent
	 * is left unread, otherwise a reset (as close(2) on a socket). */
	void (*close)(struct stream *s);
};

/* The owner embeds this; the consumer sets notify and opaque. */
struct stream {
	const struct stream_ops *ops;
	void (*notify)(struct stream *s);	/* the consumer's, on the loop thread */
	void *opaque;				/* the consumer's */
};

#endif
