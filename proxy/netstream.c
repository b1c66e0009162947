/* proxy/netstream.c - adapter from net/'s struct stream (a guest TCP flow
 * the user-mode stack hands over) to the proxy's struct proxy_stream.
 *
 * net/stream.h lands with the net branch; until it is in the tree this file
 * compiles to nothing (the proxy core does not depend on it).  Readiness:
 * net fires on_readable / on_writable after a call returned -EAGAIN and
 * on_closed when the guest side is gone; all three just wake the proxy,
 * which then reads and writes until -EAGAIN, so want() has nothing to do.
 */
#if __has_include("net/stream.h")
#include <errno.h>
#include <stdlib.h>

#include "common/util.h"
#include "net/stream.h"
#include "proxy/proxy.h"

struct net_pstream {
	struct proxy_stream ps;
	struct stream *ns;
};

static void ns_wake(struct stream *s, void *opaque)
{
	(void)s;
	struct net_pstream *np = opaque;
	if (np->ps.notify)
		np->ps.notify(&np->ps);
}

static ssize_t ns_read(struct proxy_stream *ps, void *buf, size_t len)
{
	struct net_pstream *np = container_of(ps, struct net_pstream, ps);
	return np->ns->ops->read(np->ns, buf, len);
}

static ssize_t ns_write(struct proxy_stream *ps, const void *buf, size_t len)
{
	struct net_pstream *np = container_of(ps, struct net_pstream, ps);
	return np->ns->ops->write(np->ns, buf, len);
}

static void ns_want(struct proxy_stream *ps, bool rd, bool wr)
{
	(void)ps;
	(void)rd;
	(void)wr;
}

static void ns_shutdown_write(struct proxy_stream *ps)
{
	struct net_pstream *np = container_of(ps, struct net_pstream, ps);
	np->ns->ops->shutdown(np->ns);
}

static void ns_close(struct proxy_stream *ps)
{
	struct net_pstream *np = container_of(ps, struct net_pstream, ps);
	static const struct stream_cbs none = { 0 };
	stream_set_callbacks(np->ns, &none, NULL);
	np->ns->ops->close(np->ns);
	free(np);
}

static const struct proxy_stream_ops net_ops = {
	.read = ns_read,
	.write = ns_write,
	.want = ns_want,
	.shutdown_write = ns_shutdown_write,
	.close = ns_close,
};

struct proxy_stream *proxy_net_stream(struct stream *ns)
{
	struct net_pstream *np = calloc(1, sizeof(*np));
	if (!np)
		return NULL;
	np->ps.ops = &net_ops;
	np->ns = ns;
	static const struct stream_cbs cbs = {
		.on_readable = ns_wake,
		.on_writable = ns_wake,
		.on_closed = ns_wake,
	};
	stream_set_callbacks(ns, &cbs, np);
	return &np->ps;
}
#endif
