/* fs9p/p9_unix.c - host transport: 9P2000.L over a unix socket.
 *
 * For tests and auditors: Linux's 9p client (`mount -t 9p -o trans=unix`)
 * or Debian's diod tools connect to the socket.  Each connection is one
 * session.  The listening socket and every connection are watched by
 * multishot polls on the io_uring loop; a connection reads what is there
 * and hands each complete message to a free request slot (CONN_SLOTS per
 * connection, buffers allocated once).  Tread/Twrite/Tfsync complete later
 * from io_uring (fs9p/aio.c), so replies may leave out of order, as 9P
 * allows (tags); everything else is answered at once.  With every slot
 * busy the connection stops taking messages (back-pressure) until a reply
 * frees one.  The socket is blocking for writes, so a reply always goes
 * out whole.  A message that claims more than the negotiated msize ends
 * the connection.  Between messages the loop polls adaptively
 * (loop_run_polled, --poll-us).
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

#define CONN_SLOTS 16

struct p9_conn;

/* One message being served: its copy in in, its reply in out. */
struct p9_slot {
	struct p9_conn *c;
	uint8_t *in, *out;	/* FS_9P_MAX_MSIZE each */
	struct p9_slot *next_free;
};

struct p9_conn {
	struct loop_op op;
	int fd;
	bool dead;		/* closed; freed when the poll and every slot are done */
	bool poll_done;		/* the poll's last completion arrived */
	struct fs_9p_session *ss;
	uint8_t *rbuf;		/* bytes received, not yet handed to a slot */
	size_t rlen;
	struct p9_slot slots[CONN_SLOTS];
	struct p9_slot *free;
	unsigned busy;
	struct loop *loop;
};

struct p9_listener {
	struct loop_op op;
	int fd;
	struct fs_server *srv;
};

static void conn_free(struct p9_conn *c)
{
	for (unsigned i = 0; i < CONN_SLOTS; i++) {
		free(c->slots[i].in);
		free(c->slots[i].out);
	}
	free(c->rbuf);
	free(c);
}

static void conn_close(struct loop *loop, struct p9_conn *c)
{
	if (c->dead)
		return;
	c->dead = true;
	loop_cancel(loop, &c->op);
	close(c->fd);
	fs_9p_session_free(c->ss);	/* requests in flight still complete */
	c->ss = NULL;
}

static void conn_pull(struct p9_conn *c);

static void slot_put(struct p9_conn *c, struct p9_slot *sl)
{
	sl->next_free = c->free;
	c->free = sl;
	c->busy--;
}

/* Send the reply of sl (len bytes) and free the slot. */
static void slot_reply(struct p9_conn *c, struct p9_slot *sl, ssize_t len)
{
	if (!c->dead && (len < 0 || write_full(c->fd, sl->out, (size_t)len) < 0))
		conn_close(c->loop, c);
	slot_put(c, sl);
}

static void slot_done(void *ctx, ssize_t len)
{
	struct p9_slot *sl = ctx;
	struct p9_conn *c = sl->c;
	slot_reply(c, sl, len);
	if (c->dead) {
		if (c->poll_done && !c->busy)
			conn_free(c);
		return;
	}
	conn_pull(c);	/* a slot is free: take what waited */
}

/* Hand every complete message to a slot while slots are free: 0, or -1 to
 * close. */
static int conn_drain(struct p9_conn *c)
{
	size_t pos = 0;
	while (c->rlen - pos >= 4 && c->free && !c->dead) {
		uint32_t size;
		memcpy(&size, c->rbuf + pos, 4);
		if (size < 7 || size > FS_9P_MAX_MSIZE)
			return -1;
		if (c->rlen - pos < size)
			break;
		struct p9_slot *sl = c->free;
		c->free = sl->next_free;
		c->busy++;
		memcpy(sl->in, c->rbuf + pos, size);
		pos += size;
		ssize_t n = fs_9p_handle_async(c->ss, sl->in, size, sl->out, FS_9P_MAX_MSIZE,
					       slot_done, sl);
		if (n != FS_PENDING)
			slot_reply(c, sl, n);
	}
	memmove(c->rbuf, c->rbuf + pos, c->rlen - pos);
	c->rlen -= pos;
	return c->dead ? -1 : 0;
}

/* Serve what is buffered, then read more while there is room and a slot. */
static void conn_pull(struct p9_conn *c)
{
	for (;;) {
		if (conn_drain(c) < 0) {
			conn_close(c->loop, c);
			return;
		}
		if (!c->free || c->rlen == FS_9P_MAX_MSIZE)
			return;	/* back-pressure: a finished slot pulls again */
		ssize_t n = recv(c->fd, c->rbuf + c->rlen, FS_9P_MAX_MSIZE - c->rlen, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			conn_close(c->loop, c);
			return;
		}
		c->rlen += (size_t)n;
	}
}

static void conn_ready(struct loop *loop, struct loop_op *op, int res, uint32_t flags)
{
	struct p9_conn *c = container_of(op, struct p9_conn, op);
	if (c->dead) {
		if (res < 0 || !(flags & IORING_CQE_F_MORE)) {
			c->poll_done = true;
			if (!c->busy)
				conn_free(c);
		}
		return;
	}
	if (res < 0) {
		conn_close(loop, c);
		return;
	}
	conn_pull(c);
}

static struct p9_conn *conn_new(struct fs_server *srv, struct loop *loop, int fd)
{
	struct p9_conn *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->fd = fd;
	c->loop = loop;
	c->rbuf = malloc(FS_9P_MAX_MSIZE);
	c->ss = fs_9p_session_new(srv);
	bool ok = c->rbuf && c->ss;
	for (unsigned i = 0; i < CONN_SLOTS; i++) {
		struct p9_slot *sl = &c->slots[i];
		sl->c = c;
		sl->in = malloc(FS_9P_MAX_MSIZE);
		sl->out = malloc(FS_9P_MAX_MSIZE);
		ok = ok && sl->in && sl->out;
		sl->next_free = c->free;
		c->free = sl;
	}
	if (!ok) {
		fs_9p_session_free(c->ss);
		conn_free(c);
		return NULL;
	}
	return c;
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
		struct p9_conn *c = conn_new(l->srv, loop, fd);
		if (!c) {
			close(fd);
			continue;
		}
		c->op.cb = conn_ready;
		if (loop_poll(loop, &c->op, fd, POLLIN) < 0) {
			close(fd);
			fs_9p_session_free(c->ss);
			conn_free(c);
		}
	}
}

int fs_9p_serve_unix(struct fs_server *srv, struct loop *loop, const char *path,
		     uint64_t poll_max_ns)
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
	int r = fs_server_attach_loop(srv, loop);
	if (r < 0)
		return r;
	struct p9_listener l = { .srv = srv };
	l.fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (l.fd < 0)
		return -errno;
	if (bind(l.fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(l.fd, 16) < 0) {
		r = -errno;
		close(l.fd);
		return r;
	}
	l.op.cb = listener_ready;
	r = loop_poll(loop, &l.op, l.fd, POLLIN);
	/* Polling: the connections' multishot polls complete on the loop,
	 * which the polling window runs; there is nothing else to look at. */
	struct loop_poller poller = { .max_ns = poll_max_ns };
	if (r == 0)
		r = loop_run_polled(loop, &poller);
	loop_cancel(loop, &l.op);
	loop_run_once(loop, 0);
	close(l.fd);
	unlink(path);
	/* Connections still open are left to process exit (their sessions'
	 * fds close with it); the caller's fs_server_free() lets file I/O in
	 * flight finish first. */
	return r;
}
