/* proxy/sockstream.c - a non-blocking socket as a struct stream (common/stream.h) on the loop.
 *
 * Readiness comes from one-shot io_uring polls (POLLIN and POLLOUT each with
 * its own loop_op), armed only when the proxy asks through want(); the proxy
 * then reads or writes until -EAGAIN.  A read that came back short (or
 * EAGAIN) found the receive queue empty, so the next read says -EAGAIN
 * without asking the kernel, until the POLLIN poll fires (as nginx's
 * recv does): the pump tries every side after each step, and those
 * would-block recv calls were most of the proxy's system calls (6.6 of
 * 10.7 per request on a keep-alive connection).  The hint lasts
 * SOCK_DRAINED_NS, far longer than one pump and far shorter than the
 * relay's idle probe (relay.c probe_idle): the probe exists for a lost
 * readiness event, and its read must reach the kernel.  A socket still
 * connecting reports -EAGAIN until POLLOUT says the connect finished,
 * then its SO_ERROR.
 * close() cancels outstanding polls and frees the object once their
 * completions are back, so no completion ever sees freed memory.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/util.h"
#include "proxy/proxy.h"

#define SOCK_DRAINED_NS 10000000ull	/* 10 ms: see above */

struct sock_stream {
	struct stream s;
	struct loop *loop;
	int fd;
	struct loop_op rd_op, wr_op;
	bool rd_armed, wr_armed;
	bool connecting;
	uint64_t rd_drained_ns;	/* when a read last found the queue empty
				 * (0: not since the last POLLIN) */
	bool closed;
	bool in_cb;		/* a completion callback is running: defer the free */
	int conn_err;		/* connect() outcome (positive errno) */
};

static void sock_maybe_free(struct sock_stream *ss)
{
	if (ss->closed && !ss->rd_armed && !ss->wr_armed && !ss->in_cb)
		free(ss);
}

static void sock_cb(struct loop *loop, struct loop_op *op, int res, uint32_t flags)
{
	(void)loop;
	(void)res;
	(void)flags;
	struct sock_stream *ss = op->opaque;
	if (op == &ss->rd_op) {
		ss->rd_armed = false;
		ss->rd_drained_ns = 0;
	} else
		ss->wr_armed = false;
	if (op == &ss->wr_op && ss->connecting && !ss->closed) {
		int err = 0;
		socklen_t len = sizeof(err);
		if (getsockopt(ss->fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err != EINPROGRESS) {
			ss->connecting = false;
			ss->conn_err = err;
		}
	}
	if (!ss->closed && ss->s.notify) {
		ss->in_cb = true;
		ss->s.notify(&ss->s);
		ss->in_cb = false;
	}
	sock_maybe_free(ss);
}

static ssize_t sock_read(struct stream *s, void *buf, size_t len)
{
	struct sock_stream *ss = container_of(s, struct sock_stream, s);
	if (ss->connecting)
		return -EAGAIN;
	if (ss->conn_err)
		return -ss->conn_err;
	if (ss->rd_drained_ns && now_ns() - ss->rd_drained_ns < SOCK_DRAINED_NS)
		return -EAGAIN;
	ssize_t n = recv(ss->fd, buf, len, 0);
	if (n < 0 && errno != EWOULDBLOCK)
		return -errno;
	ss->rd_drained_ns = n < 0 || (n > 0 && (size_t)n < len) ? now_ns() : 0;
	return n < 0 ? -EAGAIN : n;
}

static ssize_t sock_write(struct stream *s, const void *buf, size_t len)
{
	struct sock_stream *ss = container_of(s, struct sock_stream, s);
	if (ss->connecting)
		return -EAGAIN;
	if (ss->conn_err)
		return -ss->conn_err;
	ssize_t n = send(ss->fd, buf, len, MSG_NOSIGNAL);
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	return n;
}

static void arm(struct sock_stream *ss, struct loop_op *op, unsigned mask)
{
	struct io_uring_sqe *sqe = loop_sqe(ss->loop, op);
	if (sqe)
		io_uring_prep_poll_add(sqe, ss->fd, mask);
}

static void sock_want(struct stream *s, bool rd, bool wr)
{
	struct sock_stream *ss = container_of(s, struct sock_stream, s);
	if (ss->closed)
		return;
	if (rd && !ss->rd_armed) {
		ss->rd_armed = true;
		arm(ss, &ss->rd_op, POLLIN | POLLRDHUP);
	}
	if ((wr || ss->connecting) && !ss->wr_armed) {
		ss->wr_armed = true;
		arm(ss, &ss->wr_op, POLLOUT);
	}
}

static void sock_shutdown_write(struct stream *s)
{
	struct sock_stream *ss = container_of(s, struct sock_stream, s);
	shutdown(ss->fd, SHUT_WR);
}

static void sock_close(struct stream *s)
{
	struct sock_stream *ss = container_of(s, struct sock_stream, s);
	ss->closed = true;
	/* The descriptor goes now, not when the cancelled polls come back: a
	 * proxy out of descriptors sheds a connection to accept the next one
	 * at once.  An armed poll holds the file itself, not the number. */
	close(ss->fd);
	ss->fd = -1;
	if (ss->rd_armed)
		loop_cancel(ss->loop, &ss->rd_op);
	if (ss->wr_armed)
		loop_cancel(ss->loop, &ss->wr_op);
	sock_maybe_free(ss);
}

static const struct stream_ops sock_ops = {
	.read = sock_read,
	.write = sock_write,
	.want = sock_want,
	.shutdown_write = sock_shutdown_write,
	.close = sock_close,
};

struct stream *proxy_sock_stream(struct loop *loop, int fd, bool connecting)
{
	struct sock_stream *ss = calloc(1, sizeof(*ss));
	if (!ss)
		return NULL;
	ss->s.ops = &sock_ops;
	ss->loop = loop;
	ss->fd = fd;
	ss->connecting = connecting;
	ss->rd_op.cb = sock_cb;
	ss->rd_op.opaque = ss;
	ss->wr_op.cb = sock_cb;
	ss->wr_op.opaque = ss;
	return &ss->s;
}
