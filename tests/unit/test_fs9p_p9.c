/* tests/unit/test_fs9p_p9.c - the 9P2000.L codec on hand-built messages:
 * a small client (encoder/decoder below) drives every operation the codec
 * serves; malformed messages get Rlerror; walks cannot climb out of the
 * share; the core's rules (no device nodes, no setuid on the host, user.* xattrs only)
 * hold through 9P too. */
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
#include <sys/stat.h>
#include <unistd.h>

#include "fs9p/fs.h"
#include "tests/harness/fs9p_msg.h"

/* ---- a tiny 9P client -------------------------------------------------- */

struct msg {
	uint8_t b[70000];
	size_t n;
};

static void m_start(struct msg *m, uint8_t type)
{
	m->n = 4;
	m->b[m->n++] = type;
	m->b[m->n++] = 1;	/* tag */
	m->b[m->n++] = 0;
}
static void m_n(struct msg *m, uint64_t v, int bytes)
{
	for (int i = 0; i < bytes; i++)
		m->b[m->n++] = (uint8_t)(v >> (8 * i));
}
static void m_s(struct msg *m, const char *s)
{
	m_n(m, strlen(s), 2);
	memcpy(m->b + m->n, s, strlen(s));
	m->n += strlen(s);
}
static void m_end(struct msg *m)
{
	uint32_t n = (uint32_t)m->n;
	memcpy(m->b, &n, 4);
}

struct fx {
	char *dir;
	struct fs_server *srv;
	struct fs_9p_session *ss;
	uint8_t out[FS_9P_MAX_MSIZE];
	ssize_t olen;
};

static uint64_t r_n(const uint8_t *p, int bytes)
{
	uint64_t v = 0;
	for (int i = 0; i < bytes; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* Send m; returns the R type; *err is the Rlerror code or 0. */
static int rpc(struct fx *f, struct msg *m, uint32_t *err)
{
	m_end(m);
	f->olen = fs_9p_handle(f->ss, m->b, m->n, f->out, sizeof(f->out));
	assert_true(f->olen >= 7);
	assert_int_equal(r_n(f->out, 4), (uint64_t)f->olen);
	*err = f->out[4] == 7 ? (uint32_t)r_n(f->out + 7, 4) : 0;
	return f->out[4];
}

static uint32_t simple(struct fx *f, struct msg *m)
{
	uint32_t err;
	rpc(f, m, &err);
	return err;
}

static struct msg M;	/* large: keep off the stack */

static uint32_t walk(struct fx *f, uint32_t fid, uint32_t newfid, int n, const char **names)
{
	m_start(&M, 110);
	m_n(&M, fid, 4);
	m_n(&M, newfid, 4);
	m_n(&M, (uint64_t)n, 2);
	for (int i = 0; i < n; i++)
		m_s(&M, names[i]);
	return simple(f, &M);
}

static uint32_t lopen(struct fx *f, uint32_t fid, uint32_t flags)
{
	m_start(&M, 12);
	m_n(&M, fid, 4);
	m_n(&M, flags, 4);
	return simple(f, &M);
}

static uint32_t clunk(struct fx *f, uint32_t fid)
{
	m_start(&M, 120);
	m_n(&M, fid, 4);
	return simple(f, &M);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	f->dir = fs_test_tmpdir();
	struct fs_opts o;
	fs_opts_default(&o);
	o.cache = FS_CACHE_NONE;
	assert_int_equal(fs_server_new(f->dir, &o, &f->srv), 0);
	f->ss = fs_9p_session_new(f->srv);
	m_start(&M, 100);
	m_n(&M, 65536, 4);
	m_s(&M, "9P2000.L");
	assert_int_equal(simple(f, &M), 0);
	m_start(&M, 104);	/* attach fid 1 */
	m_n(&M, 1, 4);
	m_n(&M, 0xffffffff, 4);
	m_s(&M, "user");
	m_s(&M, "");
	m_n(&M, 0, 4);
	assert_int_equal(simple(f, &M), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	fs_9p_session_free(f->ss);
	fs_server_free(f->srv);
	fs_test_rmrf(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

static void host_file(struct fx *f, const char *name, const char *data, mode_t mode)
{
	assert_int_equal(fs_test_write_file(f->dir, name, data, mode), 0);
}

static mode_t host_mode(struct fx *f, const char *name) { return fs_test_mode(f->dir, name); }

/* ---- tests ------------------------------------------------------------- */

static void test_version_and_malformed(void **state)
{
	struct fx *f = *state;
	struct fs_9p_session *fresh = fs_9p_session_new(f->srv);
	struct fs_9p_session *keep = f->ss;
	f->ss = fresh;
	m_start(&M, 24);	/* getattr before version */
	m_n(&M, 1, 4);
	m_n(&M, 0, 8);
	assert_int_equal(simple(f, &M), EPROTO);
	m_start(&M, 100);
	m_n(&M, 1 << 30, 4);
	m_s(&M, "9P2000.u");
	uint32_t err;
	assert_int_equal(rpc(f, &M, &err), 101);
	assert_int_equal(r_n(f->out + 7, 4), FS_9P_MAX_MSIZE);	/* clamped */
	assert_memory_equal(f->out + 13, "unknown", 7);
	fs_9p_session_free(fresh);
	f->ss = keep;

	/* size field larger than the bytes given */
	m_start(&M, 120);
	m_n(&M, 1, 4);
	m_end(&M);
	uint8_t tmp[64];
	memcpy(tmp, M.b, M.n);
	tmp[0] = 200;
	f->olen = fs_9p_handle(f->ss, tmp, M.n, f->out, sizeof(f->out));
	assert_int_equal(f->out[4], 7);
	assert_int_equal(r_n(f->out + 7, 4), EINVAL);
	/* a string running past the end */
	m_start(&M, 110);
	m_n(&M, 1, 4);
	m_n(&M, 2, 4);
	m_n(&M, 1, 2);
	m_n(&M, 500, 2);
	M.n += 3;
	assert_int_equal(simple(f, &M), EINVAL);
	/* an R-message, an unknown type, a tiny reply buffer */
	m_start(&M, 121);
	m_n(&M, 1, 4);
	assert_int_equal(simple(f, &M), EINVAL);
	m_start(&M, 200);
	assert_int_equal(simple(f, &M), EOPNOTSUPP);
	m_end(&M);
	assert_int_equal(fs_9p_handle(f->ss, M.b, M.n, f->out, 8), -EINVAL);
	/* unknown fid; embedded NUL in a name; too many walk elements */
	assert_int_equal(clunk(f, 999), EBADF);
	const char *nul[] = { "a\0b" };
	m_start(&M, 110);
	m_n(&M, 1, 4);
	m_n(&M, 2, 4);
	m_n(&M, 1, 2);
	m_n(&M, 3, 2);
	memcpy(M.b + M.n, nul[0], 3);
	M.n += 3;
	assert_int_equal(simple(f, &M), EINVAL);
	const char *many[17];
	for (int i = 0; i < 17; i++)
		many[i] = "x";
	assert_int_equal(walk(f, 1, 2, 17, many), EINVAL);
}

static void test_walk_read_write(void **state)
{
	struct fx *f = *state;
	host_file(f, "hello", "hello 9p", 0644);
	const char *p[] = { "hello" };
	assert_int_equal(walk(f, 1, 2, 1, p), 0);
	assert_int_equal(lopen(f, 2, O_RDWR), 0);
	m_start(&M, 116);	/* read */
	m_n(&M, 2, 4);
	m_n(&M, 6, 8);
	m_n(&M, 100, 4);
	assert_int_equal(simple(f, &M), 0);
	assert_int_equal(r_n(f->out + 7, 4), 2);
	assert_memory_equal(f->out + 11, "9p", 2);
	m_start(&M, 118);	/* write */
	m_n(&M, 2, 4);
	m_n(&M, 0, 8);
	m_n(&M, 5, 4);
	memcpy(M.b + M.n, "HELLO", 5);
	M.n += 5;
	assert_int_equal(simple(f, &M), 0);
	assert_int_equal(r_n(f->out + 7, 4), 5);
	m_start(&M, 118);	/* count beyond the message */
	m_n(&M, 2, 4);
	m_n(&M, 0, 8);
	m_n(&M, 5000, 4);
	assert_int_equal(simple(f, &M), EINVAL);
	assert_int_equal(clunk(f, 2), 0);
	/* walks never climb out: ".." at the root is the root */
	const char *up[] = { "..", "..", "hello" };
	assert_int_equal(walk(f, 1, 3, 3, up), 0);
	assert_int_equal(clunk(f, 3), 0);
	const char *slash[] = { "a/b" };
	assert_int_equal(walk(f, 1, 3, 1, slash), EINVAL);
	struct fs_stats st;
	fs_get_stats(f->srv, &st);
	assert_int_equal(st.files, 0);
}

static void test_create_rules(void **state)
{
	struct fx *f = *state;
	assert_int_equal(walk(f, 1, 2, 0, NULL), 0);	/* clone the root */
	m_start(&M, 14);	/* lcreate setuid */
	m_n(&M, 2, 4);
	m_s(&M, "new");
	m_n(&M, O_RDWR | O_CREAT, 4);
	m_n(&M, 04755, 4);
	m_n(&M, 0, 4);
	assert_int_equal(simple(f, &M), 0);
	assert_int_equal(host_mode(f, "new") & 06777, 0755);	/* setuid only in the shadow */
	assert_int_equal(clunk(f, 2), 0);
	m_start(&M, 18);	/* mknod a char device */
	m_n(&M, 1, 4);
	m_s(&M, "null");
	m_n(&M, S_IFCHR | 0666, 4);
	m_n(&M, 1, 4);
	m_n(&M, 3, 4);
	m_n(&M, 0, 4);
	assert_int_equal(simple(f, &M), EPERM);
	m_start(&M, 16);	/* symlink out, then walk through it */
	m_n(&M, 1, 4);
	m_s(&M, "out");
	m_s(&M, "/etc");
	m_n(&M, 0, 4);
	assert_int_equal(simple(f, &M), 0);
	const char *through[] = { "out", "passwd" };
	uint32_t err;
	m_start(&M, 110);
	m_n(&M, 1, 4);
	m_n(&M, 3, 4);
	m_n(&M, 2, 2);
	m_s(&M, through[0]);
	m_s(&M, through[1]);
	assert_int_equal(rpc(f, &M, &err), 111);	/* partial walk: one qid */
	assert_int_equal(r_n(f->out + 7, 2), 1);
	assert_int_equal(clunk(f, 3), EBADF);	/* newfid was not made */
	const char *lnk[] = { "out" };
	assert_int_equal(walk(f, 1, 3, 1, lnk), 0);
	assert_int_equal(lopen(f, 3, O_RDONLY), ELOOP);
	m_start(&M, 22);
	m_n(&M, 3, 4);
	assert_int_equal(simple(f, &M), 0);
	assert_memory_equal(f->out + 9, "/etc", 4);
	m_start(&M, 72);	/* mkdir, renameat, unlinkat */
	m_n(&M, 1, 4);
	m_s(&M, "d");
	m_n(&M, 0755, 4);
	m_n(&M, 0, 4);
	assert_int_equal(simple(f, &M), 0);
	m_start(&M, 74);
	m_n(&M, 1, 4);
	m_s(&M, "d");
	m_n(&M, 1, 4);
	m_s(&M, "e");
	assert_int_equal(simple(f, &M), 0);
	assert_true(S_ISDIR(host_mode(f, "e")));
	m_start(&M, 76);
	m_n(&M, 1, 4);
	m_s(&M, "e");
	m_n(&M, 0x200, 4);
	assert_int_equal(simple(f, &M), 0);
	assert_int_equal(host_mode(f, "e"), 0);
	m_start(&M, 76);
	m_n(&M, 1, 4);
	m_s(&M, "..");
	m_n(&M, 0x200, 4);
	assert_int_equal(simple(f, &M), EINVAL);
}

static void test_dir_attr_xattr_lock(void **state)
{
	struct fx *f = *state;
	host_file(f, "a", "aaa", 0644);
	host_file(f, "b", "bbb", 0600);
	assert_int_equal(walk(f, 1, 2, 0, NULL), 0);
	assert_int_equal(lopen(f, 2, O_RDONLY | 0200000), 0);
	m_start(&M, 40);	/* readdir */
	m_n(&M, 2, 4);
	m_n(&M, 0, 8);
	m_n(&M, 8192, 4);
	assert_int_equal(simple(f, &M), 0);
	uint32_t count = (uint32_t)r_n(f->out + 7, 4);
	int names = 0;
	for (size_t pos = 11; pos < 11 + count;) {
		size_t nl = r_n(f->out + pos + 22, 2);
		if (nl == 1 && (f->out[pos + 24] == 'a' || f->out[pos + 24] == 'b'))
			names++;
		pos += 24 + nl;
	}
	assert_int_equal(names, 2);
	assert_int_equal(clunk(f, 2), 0);

	const char *a[] = { "a" };
	assert_int_equal(walk(f, 1, 3, 1, a), 0);
	m_start(&M, 24);	/* getattr */
	m_n(&M, 3, 4);
	m_n(&M, 0x7ff, 8);
	assert_int_equal(simple(f, &M), 0);
	assert_int_equal(r_n(f->out + 7 + 8 + 13, 4) & 0777, 0644);
	m_start(&M, 26);	/* setattr mode 06777 and size 1 */
	m_n(&M, 3, 4);
	m_n(&M, 1 | 8, 4);
	m_n(&M, 06777, 4);
	m_n(&M, 0, 4);
	m_n(&M, 0, 4);
	m_n(&M, 1, 8);
	for (int i = 0; i < 4; i++)
		m_n(&M, 0, 8);
	assert_int_equal(simple(f, &M), 0);
	assert_int_equal(host_mode(f, "a") & 07777, 0777);

	m_start(&M, 32);	/* xattrcreate outside user.* */
	m_n(&M, 3, 4);
	m_s(&M, "trusted.x");
	m_n(&M, 1, 8);
	m_n(&M, 0, 4);
	assert_int_equal(simple(f, &M), EOPNOTSUPP);
	m_start(&M, 30);	/* xattrwalk of security.*: absent */
	m_n(&M, 3, 4);
	m_n(&M, 4, 4);
	m_s(&M, "security.capability");
	assert_int_equal(simple(f, &M), ENODATA);

	assert_int_equal(lopen(f, 3, O_RDWR), 0);
	m_start(&M, 52);	/* lock, getlock */
	m_n(&M, 3, 4);
	m_n(&M, 1, 1);
	m_n(&M, 0, 4);
	m_n(&M, 0, 8);
	m_n(&M, 10, 8);
	m_n(&M, 42, 4);
	m_s(&M, "client");
	assert_int_equal(simple(f, &M), 0);
	assert_int_equal(f->out[7], 0);	/* success */
	m_start(&M, 54);
	m_n(&M, 3, 4);
	m_n(&M, 1, 1);
	m_n(&M, 0, 8);
	m_n(&M, 10, 8);
	m_n(&M, 42, 4);
	m_s(&M, "client");
	assert_int_equal(simple(f, &M), 0);
	m_start(&M, 50);	/* fsync */
	m_n(&M, 3, 4);
	m_n(&M, 0, 4);
	assert_int_equal(simple(f, &M), 0);
	m_start(&M, 8);	/* statfs */
	m_n(&M, 1, 4);
	assert_int_equal(simple(f, &M), 0);
	assert_int_equal(f->olen, 7 + 4 + 4 + 8 * 6 + 4);
	m_start(&M, 108);	/* flush */
	m_n(&M, 5, 2);
	assert_int_equal(simple(f, &M), 0);

	const char *b[] = { "b" };
	assert_int_equal(walk(f, 1, 5, 1, b), 0);
	m_start(&M, 122);	/* remove */
	m_n(&M, 5, 4);
	assert_int_equal(simple(f, &M), 0);
	assert_int_equal(host_mode(f, "b"), 0);
	assert_int_equal(clunk(f, 5), EBADF);	/* remove clunked it */
	m_start(&M, 70);	/* link a as c */
	m_n(&M, 1, 4);
	m_n(&M, 3, 4);
	m_s(&M, "c");
	assert_int_equal(simple(f, &M), 0);
	assert_true(S_ISREG(host_mode(f, "c")));
	assert_int_equal(clunk(f, 3), 0);
	/* Every reference the fids held is gone again. */
	fs_9p_session_free(f->ss);
	f->ss = fs_9p_session_new(f->srv);
	struct fs_stats st;
	fs_get_stats(f->srv, &st);
	assert_int_equal(st.inodes, 1);
	assert_int_equal(st.files, 0);
}

static void test_user_xattr_roundtrip(void **state)
{
	struct fx *f = *state;
	host_file(f, "x", "x", 0644);
	const char *x[] = { "x" };
	assert_int_equal(walk(f, 1, 2, 1, x), 0);
	m_start(&M, 32);
	m_n(&M, 2, 4);
	m_s(&M, "user.k");
	m_n(&M, 3, 8);
	m_n(&M, 0, 4);
	assert_int_equal(simple(f, &M), 0);
	m_start(&M, 118);
	m_n(&M, 2, 4);
	m_n(&M, 0, 8);
	m_n(&M, 3, 4);
	memcpy(M.b + M.n, "val", 3);
	M.n += 3;
	assert_int_equal(simple(f, &M), 0);
	uint32_t e = clunk(f, 2);
	if (e == EOPNOTSUPP)
		skip();	/* host filesystem without user xattrs */
	assert_int_equal(e, 0);
	m_start(&M, 30);
	m_n(&M, 1, 4);
	m_n(&M, 3, 4);
	m_s(&M, "user.k");
	assert_int_equal(simple(f, &M), ENODATA);	/* on the root: absent */
	assert_int_equal(walk(f, 1, 4, 1, x), 0);
	m_start(&M, 30);
	m_n(&M, 4, 4);
	m_n(&M, 5, 4);
	m_s(&M, "user.k");
	assert_int_equal(simple(f, &M), 0);
	assert_int_equal(r_n(f->out + 7, 8), 3);
	m_start(&M, 116);
	m_n(&M, 5, 4);
	m_n(&M, 0, 8);
	m_n(&M, 100, 4);
	assert_int_equal(simple(f, &M), 0);
	assert_int_equal(r_n(f->out + 7, 4), 3);
	assert_memory_equal(f->out + 11, "val", 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_version_and_malformed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_walk_read_write, setup, teardown),
		cmocka_unit_test_setup_teardown(test_create_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dir_attr_xattr_lock, setup, teardown),
		cmocka_unit_test_setup_teardown(test_user_xattr_roundtrip, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
