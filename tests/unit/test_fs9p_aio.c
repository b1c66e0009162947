/* tests/unit/test_fs9p_aio.c - file I/O on io_uring, both codecs.
 *
 * With a loop attached, FUSE READ/WRITE/FSYNC/FALLOCATE and 9P
 * Tread/Twrite/Tfsync are answered later from io_uring: the handler
 * returns FS_PENDING, other requests are answered meanwhile, and the
 * completion carries exactly the reply the synchronous path would give.
 * A RELEASE, clunk, DESTROY or session end racing the I/O never frees the
 * fd or the slot under it, and more requests than slots are still served.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "common/loop.h"
#include "fs9p/core.h"
#include "fs9p/fs.h"
#include "tests/harness/fs9p_msg.h"

#define OUT_HDR sizeof(struct fuse_out_header)
#define NREQ 80			/* more than FS_AIO_SLOTS (64) */

struct fx {
	char *dir;
	struct fs_server *srv;
	struct loop loop;
};

/* One request's buffers and its completion. */
struct call {
	uint8_t in[8192];
	uint8_t out[8192];
	ssize_t len;		/* FS_PENDING until done */
	int order;		/* completion order, from 1 */
};

static struct call calls[NREQ];
static int completions;

static void call_done(void *ctx, ssize_t len)
{
	struct call *c = ctx;
	c->len = len;
	c->order = ++completions;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	f->dir = fs_test_tmpdir();
	assert_non_null(f->dir);
	struct fs_opts o;
	fs_opts_default(&o);
	o.cache = FS_CACHE_NONE;
	assert_int_equal(fs_server_new(f->dir, &o, &f->srv), 0);
	assert_int_equal(loop_init(&f->loop, 256), 0);
	assert_int_equal(fs_server_attach_loop(f->srv, &f->loop), 0);
	/* Data in the page cache would be served at once (RWF_NOWAIT):
	 * these tests want the io_uring path; test_nowait_first below
	 * covers the other. */
	f->srv->aio_no_try = true;
	assert_int_equal(fuse_init_srv(f->srv), 0);
	memset(calls, 0, sizeof(calls));
	completions = 0;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	fs_server_free(f->srv);	/* drains what is in flight */
	loop_fini(&f->loop);
	fs_test_rmrf(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

/* Run the loop until every call in [0, n) completed (bounded). */
static void run_until_done(struct fx *f, int n)
{
	for (int spins = 0; spins < 1000; spins++) {
		int left = 0;
		for (int i = 0; i < n; i++)
			left += calls[i].len == FS_PENDING;
		if (!left)
			return;
		loop_run_once(&f->loop, 10000000ULL);
	}
	fail_msg("requests still in flight");
}

/* Start a FUSE request in c: header + body, the reply room split into
 * two iovecs (a 5-byte piece, then the rest) like a guest's chain. */
static ssize_t fuse_start(struct fx *f, struct call *c, uint64_t unique, uint32_t opcode,
			  uint64_t nodeid, const void *body, size_t blen, size_t out_room)
{
	struct fuse_in_header h = { .len = (uint32_t)(sizeof(h) + blen), .opcode = opcode,
				    .unique = unique, .nodeid = nodeid };
	memcpy(c->in, &h, sizeof(h));
	memcpy(c->in + sizeof(h), body, blen);
	/* The request in three pieces too: header, 7 bytes, the rest. */
	size_t total = sizeof(h) + blen;
	struct iovec in[3] = { { c->in, sizeof(h) }, { c->in + sizeof(h), blen < 7 ? blen : 7 },
			       { c->in + sizeof(h) + (blen < 7 ? blen : 7),
				 total - sizeof(h) - (blen < 7 ? blen : 7) } };
	struct iovec out[2] = { { c->out, 5 }, { c->out + 5, out_room - 5 } };
	c->len = fs_fuse_handle_async(f->srv, in, 3, out, 2, call_done, c);
	return c->len;
}

static struct fuse_out_header out_hdr(const struct call *c)
{
	struct fuse_out_header h;
	memcpy(&h, c->out, sizeof(h));
	return h;
}

static void test_fuse_read_is_async_and_stat_goes_first(void **state)
{
	struct fx *f = *state;
	char data[3000];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (char)('a' + i % 26);
	data[sizeof(data) - 1] = 0;
	assert_int_equal(fs_test_write_file(f->dir, "file", data, 0644), 0);
	int64_t node = fuse_lookup(f->srv, 1, "file");
	assert_true(node > 1);
	int64_t fh = fuse_open(f->srv, (uint64_t)node, O_RDONLY);
	assert_true(fh > 0);

	struct fuse_read_in rd = { .fh = (uint64_t)fh, .offset = 100, .size = 4096 };
	assert_int_equal(fuse_start(f, &calls[0], 77, FUSE_READ, (uint64_t)node, &rd, sizeof(rd), 8192),
			 FS_PENDING);
	/* While the read is in flight, a GETATTR is answered at once. */
	struct fuse_getattr_in ga = { 0 };
	ssize_t n = fuse_start(f, &calls[1], 78, FUSE_GETATTR, (uint64_t)node, &ga, sizeof(ga), 8192);
	assert_int_equal(n, (ssize_t)(OUT_HDR + sizeof(struct fuse_attr_out)));
	assert_int_equal(calls[0].len, FS_PENDING);
	assert_int_equal(fs_server_inflight(f->srv), 1);

	run_until_done(f, 1);
	struct fuse_out_header h = out_hdr(&calls[0]);
	size_t want = sizeof(data) - 1 - 100;
	assert_int_equal(calls[0].len, (ssize_t)(OUT_HDR + want));
	assert_int_equal(h.len, OUT_HDR + want);
	assert_int_equal(h.error, 0);
	assert_int_equal(h.unique, 77);
	assert_memory_equal(calls[0].out + OUT_HDR, data + 100, want);
	assert_int_equal(fs_server_inflight(f->srv), 0);
}

static void test_fuse_write_fsync_fallocate(void **state)
{
	struct fx *f = *state;
	assert_int_equal(fs_test_write_file(f->dir, "w", "", 0644), 0);
	int64_t node = fuse_lookup(f->srv, 1, "w");
	int64_t fh = fuse_open(f->srv, (uint64_t)node, O_RDWR);
	assert_true(fh > 0);
	struct {
		struct fuse_write_in w;
		char data[11];
	} __attribute__((packed)) wr = { { .fh = (uint64_t)fh, .offset = 5, .size = 11 }, "hello world" };
	assert_int_equal(fuse_start(f, &calls[0], 1, FUSE_WRITE, (uint64_t)node, &wr, sizeof(wr), 64),
			 FS_PENDING);
	struct fuse_fsync_in fs = { .fh = (uint64_t)fh, .fsync_flags = FUSE_FSYNC_FDATASYNC };
	struct fuse_fallocate_in fa = { .fh = (uint64_t)fh, .offset = 0, .length = 65536 };
	run_until_done(f, 1);
	assert_int_equal(fuse_start(f, &calls[1], 2, FUSE_FSYNC, (uint64_t)node, &fs, sizeof(fs), 64),
			 FS_PENDING);
	assert_int_equal(fuse_start(f, &calls[2], 3, FUSE_FALLOCATE, (uint64_t)node, &fa, sizeof(fa), 64),
			 FS_PENDING);
	run_until_done(f, 3);

	struct fuse_out_header h = out_hdr(&calls[0]);
	assert_int_equal(calls[0].len, (ssize_t)(OUT_HDR + sizeof(struct fuse_write_out)));
	assert_int_equal(h.error, 0);
	struct fuse_write_out wo;
	memcpy(&wo, calls[0].out + OUT_HDR, sizeof(wo));
	assert_int_equal(wo.size, 11);
	for (int i = 1; i < 3; i++) {
		h = out_hdr(&calls[i]);
		assert_int_equal(calls[i].len, (ssize_t)OUT_HDR);
		assert_int_equal(h.error, 0);
		assert_int_equal(h.unique, (uint64_t)i + 1);
	}
	char path[4096], buf[32] = { 0 };
	snprintf(path, sizeof(path), "%s/w", f->dir);
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, buf, 16, 0), 16);
	assert_memory_equal(buf, "\0\0\0\0\0hello world", 16);
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_size, 65536);	/* fallocate (mode 0) extended it */
	close(fd);
}

static void test_fuse_io_errors_and_read_only_handle(void **state)
{
	struct fx *f = *state;
	assert_int_equal(fs_test_write_file(f->dir, "r", "abc", 0644), 0);
	int64_t node = fuse_lookup(f->srv, 1, "r");
	int64_t fh = fuse_open(f->srv, (uint64_t)node, O_RDONLY);
	struct {
		struct fuse_write_in w;
		char data[3];
	} __attribute__((packed)) wr = { { .fh = (uint64_t)fh, .size = 3 }, "xyz" };
	/* A write through a read-only handle fails in io_uring: EBADF. */
	assert_int_equal(fuse_start(f, &calls[0], 9, FUSE_WRITE, (uint64_t)node, &wr, sizeof(wr), 64),
			 FS_PENDING);
	run_until_done(f, 1);
	struct fuse_out_header h = out_hdr(&calls[0]);
	assert_int_equal(h.error, -EBADF);
	assert_int_equal(calls[0].len, (ssize_t)OUT_HDR);
	assert_int_equal(h.len, OUT_HDR);
	/* Checks made before submitting still answer at once. */
	struct fuse_read_in rd = { .fh = (uint64_t)fh, .offset = (uint64_t)1 << 63, .size = 10 };
	assert_int_equal(fuse_start(f, &calls[1], 10, FUSE_READ, (uint64_t)node, &rd, sizeof(rd), 64),
			 (ssize_t)OUT_HDR);
	assert_int_equal(out_hdr(&calls[1]).error, -EINVAL);
	rd.fh = 12345;
	assert_int_equal(fuse_start(f, &calls[2], 11, FUSE_READ, (uint64_t)node, &rd, sizeof(rd), 64),
			 (ssize_t)OUT_HDR);
	assert_int_equal(out_hdr(&calls[2]).error, -EBADF);
}

static int count_fds(void)
{
	int n = 0;
	for (int fd = 0; fd < 4096; fd++)
		n += fcntl(fd, F_GETFD) >= 0;
	return n;
}

static void test_fuse_release_and_destroy_during_read(void **state)
{
	struct fx *f = *state;
	assert_int_equal(fs_test_write_file(f->dir, "x", "0123456789", 0644), 0);
	int64_t node = fuse_lookup(f->srv, 1, "x");
	int fds_before = count_fds();
	int64_t fh = fuse_open(f->srv, (uint64_t)node, O_RDONLY);
	struct fuse_read_in rd = { .fh = (uint64_t)fh, .offset = 2, .size = 100 };
	assert_int_equal(fuse_start(f, &calls[0], 5, FUSE_READ, (uint64_t)node, &rd, sizeof(rd), 256),
			 FS_PENDING);
	/* The client lets go of the handle, then of everything. */
	struct fuse_release_in rel = { .fh = (uint64_t)fh };
	assert_int_equal(fuse_start(f, &calls[1], 6, FUSE_RELEASE, (uint64_t)node, &rel, sizeof(rel), 64),
			 (ssize_t)OUT_HDR);
	assert_int_equal(out_hdr(&calls[1]).error, 0);
	struct fs_stats st;
	fs_get_stats(f->srv, &st);
	assert_int_equal(st.files, 0);	/* gone for the client ... */
	assert_int_equal(count_fds(), fds_before + 1);	/* ... but its fd lives */
	fs_fuse_reset(f->srv);
	run_until_done(f, 1);
	assert_int_equal(calls[0].len, (ssize_t)(OUT_HDR + 8));
	assert_memory_equal(calls[0].out + OUT_HDR, "23456789", 8);
	/* the handle closed once the read finished (and the reset closed
	 * the inode's O_PATH fd) */
	assert_int_equal(count_fds(), fds_before - 1);
}

static void test_fuse_more_requests_than_slots(void **state)
{
	struct fx *f = *state;
	assert_int_equal(fs_test_write_file(f->dir, "many", "many slots", 0644), 0);
	int64_t node = fuse_lookup(f->srv, 1, "many");
	int64_t fh = fuse_open(f->srv, (uint64_t)node, O_RDONLY);
	int pending = 0, sync = 0;
	for (int i = 0; i < NREQ; i++) {
		struct fuse_read_in rd = { .fh = (uint64_t)fh, .offset = (uint64_t)(i % 5), .size = 64 };
		ssize_t n = fuse_start(f, &calls[i], 100 + (uint64_t)i, FUSE_READ, (uint64_t)node, &rd,
				       sizeof(rd), 256);
		if (n == FS_PENDING)
			pending++;
		else
			sync++;
	}
	assert_int_equal(pending, 64);	/* FS_AIO_SLOTS */
	assert_int_equal(sync, NREQ - 64);	/* served at once, not refused */
	run_until_done(f, NREQ);
	for (int i = 0; i < NREQ; i++) {
		struct fuse_out_header h = out_hdr(&calls[i]);
		size_t want = 10 - (size_t)(i % 5);
		assert_int_equal(h.error, 0);
		assert_int_equal(h.unique, 100 + (uint64_t)i);
		assert_int_equal(calls[i].len, (ssize_t)(OUT_HDR + want));
		assert_memory_equal(calls[i].out + OUT_HDR, "many slots" + (i % 5), want);
	}
}

/* ---- 9P -------------------------------------------------------------- */

struct msg {
	uint8_t *p;
	size_t len;
};

static void m_n(struct msg *m, uint64_t v, int bytes)
{
	for (int i = 0; i < bytes; i++)
		m->p[m->len++] = (uint8_t)(v >> (8 * i));
}

static void m_s(struct msg *m, const char *s)
{
	m_n(m, strlen(s), 2);
	memcpy(m->p + m->len, s, strlen(s));
	m->len += strlen(s);
}

static struct msg m_start(struct call *c, uint8_t type, uint16_t tag)
{
	struct msg m = { c->in, 0 };
	m_n(&m, 0, 4);
	m_n(&m, type, 1);
	m_n(&m, tag, 2);
	return m;
}

static ssize_t p9_send(struct fs_9p_session *ss, struct call *c, struct msg *m)
{
	for (int i = 0; i < 4; i++)
		c->in[i] = (uint8_t)(m->len >> (8 * i));
	c->len = fs_9p_handle_async(ss, c->in, m->len, c->out, sizeof(c->out), call_done, c);
	return c->len;
}

static uint64_t r_n(const uint8_t *p, int bytes)
{
	uint64_t v = 0;
	for (int i = 0; i < bytes; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* version, attach fid 1, walk to name as fid 2, lopen with flags. */
static void p9_open(struct fs_9p_session *ss, const char *name, uint32_t flags)
{
	struct call c;
	struct msg m = m_start(&c, 100, 0xffff);
	m_n(&m, 65536, 4);
	m_s(&m, "9P2000.L");
	assert_true(p9_send(ss, &c, &m) > 0);
	m = m_start(&c, 104, 1);
	m_n(&m, 1, 4);
	m_n(&m, 0xffffffff, 4);
	m_s(&m, "u");
	m_s(&m, "");
	m_n(&m, 0, 4);
	assert_int_equal(p9_send(ss, &c, &m), 20);
	m = m_start(&c, 110, 1);
	m_n(&m, 1, 4);
	m_n(&m, 2, 4);
	m_n(&m, 1, 2);
	m_s(&m, name);
	assert_int_equal(p9_send(ss, &c, &m), 9 + 13);
	m = m_start(&c, 12, 1);
	m_n(&m, 2, 4);
	m_n(&m, flags, 4);
	assert_int_equal(p9_send(ss, &c, &m), 24);
	assert_int_equal(c.out[4], 13);	/* Rlopen */
}

static void test_9p_read_write_flush(void **state)
{
	struct fx *f = *state;
	assert_int_equal(fs_test_write_file(f->dir, "n", "nine pieces", 0644), 0);
	struct fs_9p_session *ss = fs_9p_session_new(f->srv);
	assert_non_null(ss);
	p9_open(ss, "n", O_RDWR);

	/* Tread tag 7 goes to io_uring; Tflush of tag 7 waits for it. */
	struct msg m = m_start(&calls[0], 116, 7);
	m_n(&m, 2, 4);
	m_n(&m, 5, 8);
	m_n(&m, 100, 4);
	assert_int_equal(p9_send(ss, &calls[0], &m), FS_PENDING);
	m = m_start(&calls[1], 108, 8);
	m_n(&m, 7, 2);
	assert_int_equal(p9_send(ss, &calls[1], &m), FS_PENDING);
	/* A Tflush of a tag not in flight is answered at once. */
	m = m_start(&calls[2], 108, 9);
	m_n(&m, 1234, 2);
	assert_int_equal(p9_send(ss, &calls[2], &m), 7);
	run_until_done(f, 2);
	assert_int_equal(calls[0].len, 11 + 6);
	assert_int_equal(calls[0].out[4], 117);	/* Rread */
	assert_int_equal(r_n(calls[0].out + 5, 2), 7);
	assert_int_equal(r_n(calls[0].out + 7, 4), 6);
	assert_memory_equal(calls[0].out + 11, "pieces", 6);
	assert_int_equal(calls[1].len, 7);
	assert_int_equal(calls[1].out[4], 109);	/* Rflush ... */
	assert_int_equal(r_n(calls[1].out + 5, 2), 8);
	assert_true(calls[1].order > calls[0].order);	/* ... after the Rread */

	/* Twrite, then Tfsync. */
	m = m_start(&calls[3], 118, 10);
	m_n(&m, 2, 4);
	m_n(&m, 0, 8);
	m_n(&m, 4, 4);
	memcpy(m.p + m.len, "NINE", 4);
	m.len += 4;
	assert_int_equal(p9_send(ss, &calls[3], &m), FS_PENDING);
	run_until_done(f, 4);
	assert_int_equal(calls[3].len, 11);
	assert_int_equal(calls[3].out[4], 119);
	assert_int_equal(r_n(calls[3].out + 7, 4), 4);
	m = m_start(&calls[4], 50, 11);
	m_n(&m, 2, 4);
	m_n(&m, 0, 4);
	assert_int_equal(p9_send(ss, &calls[4], &m), FS_PENDING);
	run_until_done(f, 5);
	assert_int_equal(calls[4].len, 7);
	assert_int_equal(calls[4].out[4], 51);	/* Rfsync */
	char path[4096], buf[16] = { 0 };
	snprintf(path, sizeof(path), "%s/n", f->dir);
	int fd = open(path, O_RDONLY);
	assert_int_equal(read(fd, buf, sizeof(buf)), 11);
	close(fd);
	assert_string_equal(buf, "NINE pieces");

	/* A read in flight when the session ends still completes. */
	m = m_start(&calls[5], 116, 12);
	m_n(&m, 2, 4);
	m_n(&m, 0, 8);
	m_n(&m, 4, 4);
	assert_int_equal(p9_send(ss, &calls[5], &m), FS_PENDING);
	fs_9p_session_free(ss);
	run_until_done(f, 6);
	assert_int_equal(calls[5].len, 11 + 4);
	assert_memory_equal(calls[5].out + 11, "NINE", 4);
	struct fs_stats st;
	fs_get_stats(f->srv, &st);
	assert_int_equal(st.files, 0);
	assert_int_equal(st.inodes, 1);	/* only the root is left */
}

static void test_9p_more_requests_than_slots(void **state)
{
	struct fx *f = *state;
	assert_int_equal(fs_test_write_file(f->dir, "m", "0123456789", 0644), 0);
	struct fs_9p_session *ss = fs_9p_session_new(f->srv);
	p9_open(ss, "m", O_RDONLY);
	int pending = 0;
	for (int i = 0; i < NREQ; i++) {
		struct msg m = m_start(&calls[i], 116, (uint16_t)(100 + i));
		m_n(&m, 2, 4);
		m_n(&m, (uint64_t)(i % 7), 8);
		m_n(&m, 3, 4);
		ssize_t n = p9_send(ss, &calls[i], &m);
		if (n == FS_PENDING)
			pending++;
		else
			assert_int_equal(n, 11 + 3);	/* served at once, not lost */
	}
	assert_int_equal(pending, 64);
	run_until_done(f, NREQ);
	for (int i = 0; i < NREQ; i++) {
		assert_int_equal(calls[i].len, 11 + 3);
		assert_int_equal(r_n(calls[i].out + 5, 2), 100 + i);
		assert_memory_equal(calls[i].out + 11, "0123456789" + (i % 7), 3);
	}
	fs_9p_session_free(ss);
}

/* tmpfs takes no RWF_NOWAIT, yet its files never wait for a disk: a READ
 * and a WRITE there are answered at once, not handed to an io-wq worker
 * (before: both pended, every time).  Runs where /dev/shm is a tmpfs. */
static void test_in_memory_files_at_once(void **state)
{
	struct fx *f = *state;
	struct statfs sf;
	if (statfs("/dev/shm", &sf) < 0 || sf.f_type != TMPFS_MAGIC) {
		print_message("skip: /dev/shm is not a tmpfs here\n");
		skip();
	}
	char *dir = strdup("/dev/shm/kvmbox-aio-XXXXXX");
	assert_non_null(mkdtemp(dir));
	struct fs_opts o;
	fs_opts_default(&o);
	struct fs_server *srv;
	assert_int_equal(fs_server_new(dir, &o, &srv), 0);
	assert_int_equal(fs_server_attach_loop(srv, &f->loop), 0);
	assert_int_equal(fuse_init_srv(srv), 0);
	assert_int_equal(fs_test_write_file(dir, "m", "memory bytes", 0644), 0);
	struct fs_server *disk = f->srv;
	f->srv = srv;	/* fuse_lookup/fuse_open/fuse_start talk to f->srv */
	int64_t node = fuse_lookup(f->srv, 1, "m");
	int64_t fh = fuse_open(f->srv, (uint64_t)node, O_RDWR);
	struct {
		struct fuse_write_in w;
		char data[6];
	} __attribute__((packed)) wr = { { .fh = (uint64_t)fh, .offset = 0, .size = 6 }, "MEMORY" };
	assert_int_equal(fuse_start(f, &calls[0], 1, FUSE_WRITE, (uint64_t)node, &wr, sizeof(wr), 64),
			 (ssize_t)(OUT_HDR + sizeof(struct fuse_write_out)));
	struct fuse_read_in rd = { .fh = (uint64_t)fh, .offset = 0, .size = 4096 };
	assert_int_equal(fuse_start(f, &calls[1], 2, FUSE_READ, (uint64_t)node, &rd, sizeof(rd), 8192),
			 (ssize_t)(OUT_HDR + 12));
	assert_memory_equal(calls[1].out + OUT_HDR, "MEMORY bytes", 12);
	assert_int_equal(fs_server_inflight(f->srv), 0);
	f->srv = disk;
	fs_server_free(srv);
	fs_test_rmrf(dir);
	free(dir);
}

/* A READ of FS_AIO_PARALLEL_MIN bytes or more goes to an io-wq worker even
 * when its data is cached (pends, then completes with the file's bytes), so
 * a guest's readahead is copied side by side; the same file's 4 KiB READ
 * is answered at once. */
static void test_large_read_parallel(void **state)
{
	struct fx *f = *state;
	f->srv->aio_no_try = false;
	size_t big = FS_AIO_PARALLEL_MIN + 4096;
	char *data = malloc(big + 1);
	for (size_t i = 0; i < big; i++)
		data[i] = (char)('a' + i % 23);
	data[big] = 0;
	assert_int_equal(fs_test_write_file(f->dir, "big", data, 0644), 0);
	int64_t node = fuse_lookup(f->srv, 1, "big");
	int64_t fh = fuse_open(f->srv, (uint64_t)node, O_RDONLY);
	struct fuse_in_header h = { .len = sizeof(h) + sizeof(struct fuse_read_in),
				    .opcode = FUSE_READ, .unique = 1, .nodeid = (uint64_t)node };
	struct fuse_read_in rd = { .fh = (uint64_t)fh, .offset = 0, .size = (uint32_t)big };
	struct iovec in[2] = { { &h, sizeof(h) }, { &rd, sizeof(rd) } };
	uint8_t *out = malloc(OUT_HDR + big);
	struct iovec outv = { out, OUT_HDR + big };
	calls[0].len = fs_fuse_handle_async(f->srv, in, 2, &outv, 1, call_done, &calls[0]);
	assert_int_equal(calls[0].len, FS_PENDING);
	run_until_done(f, 1);
	assert_int_equal(calls[0].len, (ssize_t)(OUT_HDR + big));
	assert_memory_equal(out + OUT_HDR, data, big);
	rd.size = 4096;
	h.unique = 2;
	assert_int_equal(fs_fuse_handle_async(f->srv, in, 2, &outv, 1, call_done, &calls[1]),
			 (ssize_t)(OUT_HDR + 4096));
	assert_memory_equal(out + OUT_HDR, data, 4096);
	free(out);
	free(data);
}

static void test_nowait_first(void **state)
{
	struct fx *f = *state;
	f->srv->aio_no_try = false;
	assert_int_equal(fs_test_write_file(f->dir, "c", "cached bytes", 0644), 0);
	int64_t node = fuse_lookup(f->srv, 1, "c");
	int64_t fh = fuse_open(f->srv, (uint64_t)node, O_RDWR);
	/* Just written: in the page cache, so answered at once, and a read
	 * past the end of a short file is not mistaken for a cache miss. */
	struct fuse_read_in rd = { .fh = (uint64_t)fh, .offset = 7, .size = 4096 };
	ssize_t n = fuse_start(f, &calls[0], 1, FUSE_READ, (uint64_t)node, &rd, sizeof(rd), 8192);
	assert_int_equal(n, (ssize_t)(OUT_HDR + 5));
	assert_int_equal(out_hdr(&calls[0]).len, OUT_HDR + 5);
	assert_int_equal(out_hdr(&calls[0]).unique, 1);
	assert_memory_equal(calls[0].out + OUT_HDR, "bytes", 5);
	/* A write completes at once or from io_uring (filesystems differ);
	 * either way with the same reply. */
	struct {
		struct fuse_write_in w;
		char data[6];
	} __attribute__((packed)) wr = { { .fh = (uint64_t)fh, .offset = 0, .size = 6 }, "CACHED" };
	n = fuse_start(f, &calls[1], 2, FUSE_WRITE, (uint64_t)node, &wr, sizeof(wr), 64);
	if (n == FS_PENDING)
		run_until_done(f, 2);
	assert_int_equal(calls[1].len, (ssize_t)(OUT_HDR + sizeof(struct fuse_write_out)));
	struct fuse_write_out wo;
	memcpy(&wo, calls[1].out + OUT_HDR, sizeof(wo));
	assert_int_equal(wo.size, 6);
	rd.offset = 0;
	assert_int_equal(fuse_start(f, &calls[2], 3, FUSE_READ, (uint64_t)node, &rd, sizeof(rd), 8192),
			 (ssize_t)(OUT_HDR + 12));
	assert_memory_equal(calls[2].out + OUT_HDR, "CACHED bytes", 12);
	/* 9P the same way: Tread of cached data answered at once. */
	struct fs_9p_session *ss = fs_9p_session_new(f->srv);
	p9_open(ss, "c", O_RDONLY);
	struct msg m = m_start(&calls[3], 116, 5);
	m_n(&m, 2, 4);
	m_n(&m, 0, 8);
	m_n(&m, 100, 4);
	assert_int_equal(p9_send(ss, &calls[3], &m), 11 + 12);
	assert_memory_equal(calls[3].out + 11, "CACHED bytes", 12);
	fs_9p_session_free(ss);
	assert_int_equal(fs_server_inflight(f->srv), 0);
}

static void test_sync_entry_points_never_pend(void **state)
{
	struct fx *f = *state;
	assert_int_equal(fs_test_write_file(f->dir, "s", "sync", 0644), 0);
	int64_t node = fuse_lookup(f->srv, 1, "s");
	int64_t fh = fuse_open(f->srv, (uint64_t)node, O_RDONLY);
	struct fuse_read_in rd = { .fh = (uint64_t)fh, .size = 100 };
	static struct fuse_rep rep;
	fuse_call(f->srv, FUSE_READ, (uint64_t)node, &rd, sizeof(rd), NULL, 0, &rep);
	assert_int_equal(rep.len, (ssize_t)(OUT_HDR + 4));
	assert_memory_equal(rep.body, "sync", 4);
	assert_int_equal(fs_server_inflight(f->srv), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_fuse_read_is_async_and_stat_goes_first, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fuse_write_fsync_fallocate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fuse_io_errors_and_read_only_handle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fuse_release_and_destroy_during_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fuse_more_requests_than_slots, setup, teardown),
		cmocka_unit_test_setup_teardown(test_9p_read_write_flush, setup, teardown),
		cmocka_unit_test_setup_teardown(test_9p_more_requests_than_slots, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nowait_first, setup, teardown),
		cmocka_unit_test_setup_teardown(test_large_read_parallel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_in_memory_files_at_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sync_entry_points_never_pend, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
