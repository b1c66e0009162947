/* fs9p/p9_unix.c - host transport: 9P2000.L over a unix socket.
 *
 * For tests and auditors: Linux's 9p client (`mount -t 9p -o trans=unix`)
 * or Debian's diod tools connect to the socket.  Each connection is one
 * session.  The listening socket and every connection are watched by
 * multishot polls on the io_uring loop; a connection reads what is there,
 * handles each complete message and writes the reply (the socket is
 * blocking for writes, so a reply always goes out whole).  A message that
 * claims more than the negotiated msize ends the connection.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/log.h"
#include "common/loop.h"
#include "common/util.h"
#include "fs9p/fs.h"

struct p9_conn {
	struct loop_op op;
	int fd;
	bool dead;		/* closed; freed on the poll's last completion */
	struct fs_9p_session *ss;
	uint8_t *in, *out;	/* FS_9P_MAX_MSIZE each */
	size_t inlen;
};

struct p9_listener {
	struct loop_op op;
	int fd;
	struct fs_server *srv;
};

static void conn_close(struct loop *loop, struct p9_conn *c)
{
	c->dead = true;
	loop_cancel(loop, &c->op);
	close(c->fd);
	fs_9p_session_free(c->ss);
	c->ss = NULL;
}

static void conn_free(struct p9_conn *c)
{
	free(c->in);
	free(c->out);
	free(c);
}

/* Handle every complete message in the buffer: 0, or -1 to close. */
static int conn_drain(struct p9_conn *c)
{
	size_t pos = 0;
	while (c->inlen - pos >= 4) {
		uint32_t size;
		memcpy(&size, c->in + pos, 4);
		if (size < 7 || size > FS_9P_MAX_MSIZE)
			return -1;
		if (c->inlen - pos < size)
			break;
		ssize_t n = fs_9p_handle(c->ss, c->in + pos, size, c->out, FS_9P_MAX_MSIZE);
		if (n < 0 || write_full(c->fd, c->out, (size_t)n) < 0)
			return -1;
		pos += size;
	}
	memmove(c->in, c->in + pos, c->inlen - pos);
	c->inlen -= pos;
	return 0;
}

static void conn_ready(struct loop *loop, struct loop_op *op, int res, uint32_t flags)
{
	struct p9_conn *c = container_of(op, struct p9_conn, op);
	if (c->dead) {
		if (res < 0 || !(flags & IORING_CQE_F_MORE))
			conn_free(c);
		return;
	}
	if (res < 0) {
		conn_close(loop, c);
		return;
	}
	for (;;) {
		ssize_t n = recv(c->fd, c->in + c->inlen, FS_9P_MAX_MSIZE - c->inlen, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0 || (c->inlen += (size_t)n, conn_drain(c) < 0)) {
			conn_close(loop, c);
			return;
		}
	}
}

static void listener_ready(struct loop *loop, struct loop_op *op, int res, uint32_t flags)
{
	(void)flags;
	struct p9_listener *l = container_of(op, struct p9_listener, op);
	if (res < 0)
		return;
	for (;;) {
		int fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			return;	/* EAGAIN (listener is non-blocking) or error */
		struct p9_conn *c = calloc(1, sizeof(*c));
		if (c) {
			c->in = malloc(FS_9P_MAX_MSIZE);
			c->out = malloc(FS_9P_MAX_MSIZE);
			c->ss = fs_9p_session_new(l->srv);
		}
		if (!c || !c->in || !c->out || !c->ss) {
			if (c) {
				fs_9p_session_free(c->ss);
				conn_free(c);
			}
			close(fd);
			continue;
		}
		c->fd = fd;
		c->op.cb = conn_ready;
		if (loop_poll(loop, &c->op, fd, POLLIN) < 0) {
			close(fd);
			fs_9p_session_free(c->ss);
			conn_free(c);
		}
	}
}

int fs_9p_serve_unix(struct fs_server *srv, struct loop *loop, const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	struct stat st;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return -EEXIST;	/* never remove anything but a stale socket */
		unlink(path);
	}
	struct p9_listener l = { .srv = srv };
	l.fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (l.fd < 0)
		return -errno;
	int r = 0;
	if (bind(l.fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(l.fd, 16) < 0) {
		r = -errno;
		close(l.fd);
		return r;
	}
	l.op.cb = listener_ready;
	r = loop_poll(loop, &l.op, l.fd, POLLIN);
	if (r == 0)
		r = loop_run(loop);
	loop_cancel(loop, &l.op);
	loop_run_once(loop, 0);
	close(l.fd);
	unlink(path);
	/* Connections still open are left to process exit (their sessions'
	 * fds close with it); the server itself is freed by the caller. */
	return r;
}
