/* tests/unit/test_fs9p_snapshot.c - the file server's part of a VM
 * snapshot (fs9p/snapshot.c): a session's inodes and handles saved from
 * one server and restored into a new one on the same folder resolve to
 * the same files, lazily and by name; a file replaced or removed meanwhile
 * answers ESTALE or EBADF instead of another file; and a state the server
 * could not have built (another folder, a cycle, a hidden or slashed name,
 * a writable handle on a read-only share, every cut and stray byte) is
 * refused whole, the new server left as it was made. */
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

#include "fs9p/core.h"
#include "tests/harness/fs9p_msg.h"

#define CAP (1u << 20)

struct fx {
	char *dir;
	struct fs_server *srv;
	uint8_t *buf;
	size_t len;
	uint64_t id_a, id_b, id_c, id_top, id_gone;
	uint64_t fh_c, fh_dir, fh_gone;
};

static struct fs_inode *lookup(struct fs_server *s, struct fs_inode *dir, const char *name)
{
	struct fs_inode *ino = NULL;
	struct stat st;
	fs_begin(s);
	assert_int_equal(fs_lookup(s, dir, name, &ino, &st), 0);
	return ino;
}

static struct fs_server *server(const char *dir, bool ro, const char *const *hidden)
{
	struct fs_opts o;
	fs_opts_default(&o);
	o.read_only = ro;
	o.hidden = hidden;
	struct fs_server *s;
	assert_int_equal(fs_server_new(dir, &o, &s), 0);
	return s;
}

/* A session: a/b/c.txt open read-write, a open as a directory, top.txt
 * looked up, gone.txt open and then removed; saved into f->buf. */
static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	f->dir = fs_test_tmpdir();
	char p[4096];
	snprintf(p, sizeof(p), "%s/a", f->dir);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/a/b", f->dir);
	mkdir(p, 0755);
	assert_int_equal(fs_test_write_file(f->dir, "a/b/c.txt", "hello", 0644), 0);
	assert_int_equal(fs_test_write_file(f->dir, "top.txt", "top", 0644), 0);
	assert_int_equal(fs_test_write_file(f->dir, "gone.txt", "bye", 0644), 0);
	f->srv = server(f->dir, false, NULL);
	struct fs_inode *a = lookup(f->srv, f->srv->root, "a");
	struct fs_inode *b = lookup(f->srv, a, "b");
	struct fs_inode *c = lookup(f->srv, b, "c.txt");
	struct fs_inode *top = lookup(f->srv, f->srv->root, "top.txt");
	struct fs_inode *gone = lookup(f->srv, f->srv->root, "gone.txt");
	f->id_a = a->id, f->id_b = b->id, f->id_c = c->id, f->id_top = top->id, f->id_gone = gone->id;
	struct fs_file *fc, *fd, *fg;
	fs_begin(f->srv);
	assert_int_equal(fs_open(f->srv, c, O_RDWR, &fc), 0);
	assert_int_equal(fs_open(f->srv, a, O_RDONLY | O_DIRECTORY, &fd), 0);
	assert_int_equal(fs_open(f->srv, gone, O_RDONLY, &fg), 0);
	f->fh_c = fc->fh, f->fh_dir = fd->fh, f->fh_gone = fg->fh;
	f->buf = malloc(CAP);
	assert_int_equal(fs_snapshot_save(f->srv, f->buf, CAP, &f->len), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	fs_server_free(f->srv);
	fs_test_rmrf(f->dir);
	free(f->dir);
	free(f->buf);
	free(f);
	return 0;
}

static ssize_t read_fh(struct fs_server *s, uint64_t fh, char *out, size_t n)
{
	struct fs_file *file = fs_file_find(s, fh);
	assert_non_null(file);
	struct iovec v = { out, n };
	fs_begin(s);
	return fs_read(s, file, &v, 1, 0);
}

static void test_round_trip(void **state)
{
	struct fx *f = *state;
	char p[4096];
	snprintf(p, sizeof(p), "%s/gone.txt", f->dir);
	assert_int_equal(unlink(p), 0);	/* removed while the VM was saved */
	struct fs_server *s = server(f->dir, false, NULL);
	assert_int_equal(fs_snapshot_restore(s, f->buf, f->len), 0);
	struct fs_stats st;
	fs_get_stats(s, &st);
	assert_int_equal(st.inodes, 6);
	assert_int_equal(st.files, 3);
	/* inodes by their old ids, resolved by name when used */
	struct fs_inode *c = fs_inode_find(s, f->id_c);
	assert_non_null(c);
	struct stat sb;
	fs_begin(s);
	assert_int_equal(fs_getattr(s, c, &sb), 0);
	assert_int_equal(sb.st_size, 5);
	char got[16] = "";
	assert_int_equal(read_fh(s, f->fh_c, got, sizeof(got)), 5);
	assert_memory_equal(got, "hello", 5);
	struct iovec v = { "HELLO", 5 };
	fs_begin(s);
	assert_int_equal(fs_write(s, fs_file_find(s, f->fh_c), &v, 1, 0), 5);	/* read-write still */
	assert_true(fs_file_find(s, f->fh_dir)->is_dir);
	/* the removed file's handle answers EBADF, never another file */
	assert_int_equal(read_fh(s, f->fh_gone, got, sizeof(got)), -EBADF);
	/* new inodes and handles never reuse the restored numbers */
	struct fs_inode *top = lookup(s, s->root, "top.txt");
	assert_int_equal(top->id, f->id_top);
	struct fs_file *nf;
	fs_begin(s);
	assert_int_equal(fs_open(s, top, O_RDONLY, &nf), 0);
	assert_true(nf->fh > f->fh_gone && nf->fh > f->fh_c);
	fs_server_free(s);
	snprintf(p, sizeof(p), "%s/a/b/c.txt", f->dir);
	int fd = open(p, O_RDONLY);
	assert_int_equal(read(fd, got, 5), 5);
	close(fd);
	assert_memory_equal(got, "HELLO", 5);
}

static void test_replaced_is_stale(void **state)
{
	struct fx *f = *state;
	char p[4096], q[4096];
	snprintf(p, sizeof(p), "%s/top.txt", f->dir);
	snprintf(q, sizeof(q), "%s/other", f->dir);
	assert_int_equal(fs_test_write_file(f->dir, "other", "imposter", 0644), 0);
	assert_int_equal(rename(q, p), 0);	/* the name now means another file */
	struct fs_server *s = server(f->dir, false, NULL);
	assert_int_equal(fs_snapshot_restore(s, f->buf, f->len), 0);
	struct stat sb;
	fs_begin(s);
	assert_int_equal(fs_getattr(s, fs_inode_find(s, f->id_top), &sb), -ESTALE);
	fs_server_free(s);
}

/* ---- crafted states ---- */

/* The record of inode @id in a saved state: its offset, or 0. */
static size_t inode_at(const uint8_t *b, size_t len, uint64_t id, uint32_t *ninodes)
{
	uint32_t n;
	memcpy(&n, b + 12, 4);
	if (ninodes)
		*ninodes = n;
	size_t off = 40;
	for (uint32_t k = 0; k < n && off + 48 <= len; k++) {
		uint64_t rid;
		uint16_t nl;
		memcpy(&rid, b + off, 8);
		memcpy(&nl, b + off + 46, 2);
		if (rid == id)
			return off;
		off += 48 + nl + (8 - nl % 8) % 8;
	}
	return 0;
}

static void expect_refused(struct fx *f, const uint8_t *b, size_t len, bool ro,
			   const char *const *hidden, const char *what)
{
	struct fs_server *s = server(f->dir, ro, hidden);
	if (fs_snapshot_restore(s, b, len) != -EINVAL)
		fail_msg("restored %s", what);
	struct fs_stats st;
	fs_get_stats(s, &st);
	assert_int_equal(st.inodes, 1);	/* as it was made */
	assert_int_equal(st.files, 0);
	assert_int_equal(st.path_fds, 1);
	/* and still serves */
	assert_non_null(lookup(s, s->root, "top.txt"));
	fs_server_free(s);
}

static void set_parent(uint8_t *b, size_t len, uint64_t id, uint64_t parent)
{
	size_t at = inode_at(b, len, id, NULL);
	assert_true(at > 0);
	memcpy(b + at + 8, &parent, 8);
}

static void test_crafted_refused(void **state)
{
	struct fx *f = *state;
	uint8_t *b = malloc(f->len + 8);
	/* another folder */
	char *other = fs_test_tmpdir();
	struct fs_server *s = server(other, false, NULL);
	assert_int_equal(fs_snapshot_restore(s, f->buf, f->len), -EINVAL);
	fs_server_free(s);
	fs_test_rmrf(other);
	free(other);
	/* a cycle: a under b, b under a */
	memcpy(b, f->buf, f->len);
	set_parent(b, f->len, f->id_a, f->id_b);
	expect_refused(f, b, f->len, false, NULL, "a cycle");
	/* a parent that is not a directory, or not there */
	memcpy(b, f->buf, f->len);
	set_parent(b, f->len, f->id_b, f->id_top);
	expect_refused(f, b, f->len, false, NULL, "a file as a parent");
	memcpy(b, f->buf, f->len);
	set_parent(b, f->len, f->id_b, 999);
	expect_refused(f, b, f->len, false, NULL, "a parent not in the table");
	/* a name a lookup would refuse: "c.txt" made "c/txt", ".." */
	memcpy(b, f->buf, f->len);
	size_t at = inode_at(b, f->len, f->id_c, NULL);
	b[at + 48 + 1] = '/';
	expect_refused(f, b, f->len, false, NULL, "a name with a slash");
	memcpy(b, f->buf, f->len);
	at = inode_at(b, f->len, f->id_a, NULL);
	b[at + 46] = 2;
	b[at + 48] = b[at + 49] = '.';
	expect_refused(f, b, f->len, false, NULL, "a name ..");
	/* two inodes with one id */
	memcpy(b, f->buf, f->len);
	at = inode_at(b, f->len, f->id_top, NULL);
	memcpy(b + at, &f->id_c, 8);
	expect_refused(f, b, f->len, false, NULL, "an id twice");
	/* a hidden name; a writable handle on a read-only share */
	static const char *const hide[] = { "c.txt", NULL };
	expect_refused(f, f->buf, f->len, false, hide, "a hidden name");
	expect_refused(f, f->buf, f->len, true, NULL, "a writable handle on a read-only share");
	/* a byte more, every length less */
	memcpy(b, f->buf, f->len);
	memset(b + f->len, 0, 8);
	expect_refused(f, b, f->len + 8, false, NULL, "trailing bytes");
	for (size_t n = 0; n < f->len; n++) {
		s = server(f->dir, false, NULL);
		if (fs_snapshot_restore(s, f->buf, n) != -EINVAL)
			fail_msg("restored a state cut to %zu of %zu bytes", n, f->len);
		fs_server_free(s);
	}
	/* a server that already served something takes no state */
	s = server(f->dir, false, NULL);
	lookup(s, s->root, "top.txt");
	assert_int_equal(fs_snapshot_restore(s, f->buf, f->len), -EBUSY);
	fs_server_free(s);
	free(b);
}

static void test_too_small_buffer(void **state)
{
	struct fx *f = *state;
	size_t len;
	assert_int_equal(fs_snapshot_save(f->srv, f->buf, f->len - 1, &len), -EFBIG);
}

/* A table of the root alone (a template saved before its command looked
 * into the share) restores onto another folder: the next launch shares
 * its own, and what the guest looks up there is that folder's.  One more
 * inode, or one handle (the root itself open), and another folder is
 * refused; a root whose type is forged is refused anywhere. */
static void test_root_only_rebinds(void **state)
{
	struct fx *f = *state;
	char *first = fs_test_tmpdir(), *second = fs_test_tmpdir();
	assert_int_equal(fs_test_write_file(second, "mine.txt", "second's", 0644), 0);
	struct fs_server *a = server(first, false, NULL);
	uint8_t buf[4096];
	size_t len;
	assert_int_equal(fs_snapshot_save(a, buf, sizeof(buf), &len), 0);
	struct fs_server *b = server(second, false, NULL);
	assert_int_equal(fs_snapshot_restore(b, buf, len), 0);
	struct fs_inode *mine = lookup(b, b->root, "mine.txt");
	struct fs_file *fm;
	fs_begin(b);
	assert_int_equal(fs_open(b, mine, O_RDONLY, &fm), 0);
	char got[16] = { 0 };
	assert_int_equal(read_fh(b, fm->fh, got, sizeof(got) - 1), 8);
	assert_string_equal(got, "second's");
	fs_server_free(b);
	/* the root alone but its type forged (not a folder): refused, onto
	 * another folder and onto its own */
	size_t at = inode_at(buf, len, a->root->id, NULL);
	assert_true(at > 0);
	uint32_t reg = S_IFREG;
	memcpy(buf + at + 40, &reg, 4);
	b = server(second, false, NULL);
	assert_int_equal(fs_snapshot_restore(b, buf, len), -EINVAL);
	fs_server_free(b);
	b = server(first, false, NULL);
	assert_int_equal(fs_snapshot_restore(b, buf, len), -EINVAL);
	fs_server_free(b);
	/* the root alone, open as a directory (a handle): not onto another
	 * folder */
	struct fs_file *fr;
	fs_begin(a);
	assert_int_equal(fs_open(a, a->root, O_RDONLY | O_DIRECTORY, &fr), 0);
	assert_int_equal(fs_snapshot_save(a, buf, sizeof(buf), &len), 0);
	b = server(second, false, NULL);
	assert_int_equal(fs_snapshot_restore(b, buf, len), -EINVAL);
	fs_server_free(b);
	/* the root and one name: not onto another folder */
	assert_int_equal(fs_test_write_file(first, "x", "x", 0644), 0);
	lookup(a, a->root, "x");
	assert_int_equal(fs_snapshot_save(a, buf, sizeof(buf), &len), 0);
	b = server(second, false, NULL);
	assert_int_equal(fs_snapshot_restore(b, buf, len), -EINVAL);
	fs_server_free(b);
	fs_server_free(a);
	/* the fixture's table (names and handles) neither */
	b = server(second, false, NULL);
	assert_int_equal(fs_snapshot_restore(b, f->buf, f->len), -EINVAL);
	fs_server_free(b);
	fs_test_rmrf(first);
	fs_test_rmrf(second);
	free(first);
	free(second);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_round_trip),
		T(test_replaced_is_stale),
		T(test_crafted_refused),
		T(test_too_small_buffer),
		T(test_root_only_rebinds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
