/* net/stream.h - a byte stream that a guest TCP flow can end in, instead of
 * a host socket (the TLS proxy takes outbound HTTPS this way).
 *
 * The stack owns the object.  The consumer pulls what the guest sent with
 * ops->read and pushes what the guest should receive with ops->write; both
 * never block and return -EAGAIN when they cannot make progress, in which
 * case the matching readiness callback fires later.  Sizes are bounded by
 * the flow's buffers, so a slow consumer throttles the guest through the
 * TCP window (nothing buffers without bound).
 *
 * Lifetime: the consumer calls ops->close exactly once when done (after
 * which s must not be touched); before that, on_closed tells it the guest
 * side is gone (RST, or both FINs exchanged), and it must still call close.
 */
#ifndef KVMBOX_NET_STREAM_H
#define KVMBOX_NET_STREAM_H

#include <stddef.h>
#include <sys/types.h>

struct stream;

struct stream_ops {
	/* Bytes the guest sent: >0, 0 at the guest's FIN, -EAGAIN, -ECONNRESET. */
	ssize_t (*read)(struct stream *s, void *buf, size_t len);
	/* Bytes for the guest: >0 accepted, -EAGAIN when full, -EPIPE after shutdown. */
	ssize_t (*write)(struct stream *s, const void *buf, size_t len);
	/* No more writes: the guest gets a FIN after the queued bytes. */
	void (*shutdown)(struct stream *s);
	/* Done with the stream: a FIN if the flow is still open and clean,
	 * otherwise a RST; frees the flow once TCP is finished with it. */
	void (*close)(struct stream *s);
	/* Abort: the guest gets a RST at once.  Implies close. */
	void (*abort)(struct stream *s);
};

/* Readiness callbacks, set by the consumer; any may be NULL. */
struct stream_cbs {
	void (*on_readable)(struct stream *s, void *opaque);	/* data or FIN to read */
	void (*on_writable)(struct stream *s, void *opaque);	/* room to write again */
	void (*on_closed)(struct stream *s, void *opaque);	/* guest reset or finished */
};

struct stream {
	const struct stream_ops *ops;
	struct stream_cbs cbs;
	void *cb_opaque;
	void *impl;		/* the stack's flow */
};

static inline void stream_set_callbacks(struct stream *s, const struct stream_cbs *cbs, void *opaque)
{
	s->cbs = *cbs;
	s->cb_opaque = opaque;
}

#endif
