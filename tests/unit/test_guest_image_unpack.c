/* tests/unit/test_guest_image_unpack.c - the layer unpacker: path
 * sanitising, OCI whiteouts and opaque directories (in any entry order),
 * replacement rules, modes and mtimes, gzip/zstd, and hostile entries
 * (traversal, absolute names, symlink and hardlink escapes, device nodes,
 * truncated streams) never touching anything outside the image root. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <cmocka.h>

#include "guest/image/image.h"

/* A layer being built in memory. */
struct tarb {
	struct archive *a;
	int fd;		/* memfd the tar is written to */
};

static void tb_open(struct tarb *t, int filter)
{
	t->fd = memfd_create("layer", MFD_CLOEXEC);
	assert_true(t->fd >= 0);
	t->a = archive_write_new();
	archive_write_set_format_pax_restricted(t->a);
	if (filter == 1)
		archive_write_add_filter_gzip(t->a);
	else if (filter == 2)
		archive_write_add_filter_zstd(t->a);
	assert_int_equal(archive_write_open_fd(t->a, t->fd), ARCHIVE_OK);
}

static void tb_add(struct tarb *t, const char *name, mode_t type, mode_t perm,
		   const char *data, const char *link)
{
	struct archive_entry *e = archive_entry_new();
	archive_entry_set_pathname(e, name);
	archive_entry_set_filetype(e, type);
	archive_entry_set_perm(e, perm);
	archive_entry_set_mtime(e, 1600000000, 0);
	if (type == AE_IFLNK)
		archive_entry_set_symlink(e, link);
	else if (link)
		archive_entry_set_hardlink(e, link);
	if (type == AE_IFCHR)
		archive_entry_set_rdev(e, makedev(1, 1));
	size_t n = data ? strlen(data) : 0;
	archive_entry_set_size(e, (la_int64_t)n);
	assert_int_equal(archive_write_header(t->a, e), ARCHIVE_OK);
	if (n)
		assert_int_equal(archive_write_data(t->a, data, n), (la_ssize_t)n);
	archive_entry_free(e);
}

static void tb_file(struct tarb *t, const char *name, const char *data)
{
	tb_add(t, name, AE_IFREG, 0644, data, NULL);
}

static int tb_unpack(struct tarb *t, int root, struct unpack_stats *st)
{
	archive_write_close(t->a);
	archive_write_free(t->a);
	lseek(t->fd, 0, SEEK_SET);
	int r = image_unpack_layer(root, t->fd, "test-layer", st);
	close(t->fd);
	return r;
}

/* A scratch directory holding root/ (the image) and outside/ (the host). */
struct scratch {
	char dir[64], root[96], outside[96];
	int rootfd;
};

static int setup(void **state)
{
	struct scratch *s = calloc(1, sizeof(*s));
	strcpy(s->dir, "/tmp/kvmbox-unpack-XXXXXX");
	assert_non_null(mkdtemp(s->dir));
	snprintf(s->root, sizeof(s->root), "%s/root", s->dir);
	snprintf(s->outside, sizeof(s->outside), "%s/outside", s->dir);
	assert_int_equal(mkdir(s->root, 0755), 0);
	assert_int_equal(mkdir(s->outside, 0755), 0);
	s->rootfd = open(s->root, O_RDONLY | O_DIRECTORY);
	*state = s;
	return 0;
}

static int teardown(void **state)
{
	struct scratch *s = *state;
	close(s->rootfd);
	int fd = open("/tmp", O_RDONLY | O_DIRECTORY);
	image_remove_tree_at(fd, s->dir + 5);
	close(fd);
	free(s);
	return 0;
}

static bool exists(struct scratch *s, const char *rel)
{
	struct stat st;
	return fstatat(s->rootfd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

static void expect_outside_empty(struct scratch *s)
{
	int fd = open(s->outside, O_RDONLY | O_DIRECTORY);
	struct stat st;
	assert_int_not_equal(fstatat(fd, "pwned", &st, 0), 0);
	close(fd);
}

static void test_sanitize(void **state)
{
	(void)state;
	char out[64];
	assert_int_equal(image_sanitize_path("./a//b/./c/", out, sizeof(out)), 0);
	assert_string_equal(out, "a/b/c");
	assert_int_equal(image_sanitize_path("./", out, sizeof(out)), 0);
	assert_string_equal(out, "");
	assert_int_equal(image_sanitize_path("a/../b", out, sizeof(out)), -EPERM);
	assert_int_equal(image_sanitize_path("..", out, sizeof(out)), -EPERM);
	assert_int_equal(image_sanitize_path("/etc/passwd", out, sizeof(out)), -EPERM);
	assert_int_equal(image_sanitize_path("", out, sizeof(out)), -EINVAL);
	assert_int_equal(image_sanitize_path("a/..b/c..", out, sizeof(out)), 0);
	assert_string_equal(out, "a/..b/c..");
	char longname[80];
	memset(longname, 'x', sizeof(longname) - 1);
	longname[79] = '\0';
	assert_int_equal(image_sanitize_path(longname, out, sizeof(out)), -ENAMETOOLONG);
}

static void test_whiteouts_any_order(void **state)
{
	struct scratch *s = *state;
	struct tarb t;
	tb_open(&t, 0);
	tb_add(&t, "a", AE_IFDIR, 0755, NULL, NULL);
	tb_file(&t, "a/x", "x");
	tb_file(&t, "a/y", "y");
	tb_add(&t, "b", AE_IFDIR, 0755, NULL, NULL);
	tb_file(&t, "b/z", "z");
	tb_add(&t, "b/sub", AE_IFDIR, 0755, NULL, NULL);
	tb_file(&t, "b/sub/deep", "d");
	tb_file(&t, "c", "c");
	assert_int_equal(tb_unpack(&t, s->rootfd, NULL), 0);

	struct unpack_stats st;
	tb_open(&t, 0);
	tb_file(&t, "b/new", "new");		/* before the opaque marker */
	tb_file(&t, "b/.wh..wh..opq", "");
	tb_file(&t, "a/.wh.x", "");
	tb_file(&t, ".wh.c", "");
	tb_file(&t, ".wh.never-existed", "");
	tb_file(&t, "d/.wh..wh..opq", "");	/* opaque dir not there yet */
	assert_int_equal(tb_unpack(&t, s->rootfd, &st), 0);
	assert_int_equal(st.whiteouts, 5);
	assert_false(exists(s, "a/x"));
	assert_true(exists(s, "a/y"));
	assert_false(exists(s, "b/z"));
	assert_false(exists(s, "b/sub"));
	assert_true(exists(s, "b/new"));
	assert_false(exists(s, "c"));
	assert_false(exists(s, "a/.wh.x"));
	assert_false(exists(s, "b/.wh..wh..opq"));
}

static void test_replace_and_attrs(void **state)
{
	struct scratch *s = *state;
	struct tarb t;
	tb_open(&t, 1);	/* gzip */
	tb_add(&t, "dir-then-file", AE_IFDIR, 0755, NULL, NULL);
	tb_file(&t, "dir-then-file/inner", "i");
	tb_file(&t, "file-then-dir", "f");
	tb_add(&t, "ro", AE_IFDIR, 0555, NULL, NULL);
	tb_file(&t, "ro/inside", "still written");
	tb_add(&t, "tool", AE_IFREG, 04755, "#!/bin/sh\n", NULL);
	tb_add(&t, "lnk", AE_IFLNK, 0777, NULL, "/etc/passwd");
	tb_add(&t, "hard", AE_IFREG, 0644, NULL, "tool");
	tb_add(&t, "fifo", AE_IFIFO, 0600, NULL, NULL);
	tb_add(&t, "implicit/parents/file", AE_IFREG, 0600, "p", NULL);
	assert_int_equal(tb_unpack(&t, s->rootfd, NULL), 0);
	tb_open(&t, 2);	/* zstd */
	tb_file(&t, "dir-then-file", "now a file");
	tb_add(&t, "file-then-dir", AE_IFDIR, 0700, NULL, NULL);
	assert_int_equal(tb_unpack(&t, s->rootfd, NULL), 0);

	struct stat st;
	assert_int_equal(fstatat(s->rootfd, "dir-then-file", &st, 0), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(fstatat(s->rootfd, "file-then-dir", &st, 0), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0700);
	assert_int_equal(fstatat(s->rootfd, "ro", &st, 0), 0);
	assert_int_equal(st.st_mode & 07777, geteuid() ? 0755 : 0555);
	assert_int_equal(st.st_mtime, 1600000000);
	assert_true(exists(s, "ro/inside"));
	assert_int_equal(fstatat(s->rootfd, "tool", &st, 0), 0);
	assert_int_equal(st.st_mode & 07777, 04755);
	assert_int_equal(st.st_mtime, 1600000000);
	assert_int_equal(st.st_nlink, 2);
	assert_int_equal(fstatat(s->rootfd, "lnk", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_true(S_ISLNK(st.st_mode));
	char target[64] = { 0 };
	assert_int_equal(readlinkat(s->rootfd, "lnk", target, sizeof(target) - 1), 11);
	assert_string_equal(target, "/etc/passwd");
	assert_int_equal(fstatat(s->rootfd, "fifo", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_true(S_ISFIFO(st.st_mode));
	assert_true(exists(s, "implicit/parents/file"));
}

static void test_refuses_traversal(void **state)
{
	struct scratch *s = *state;
	static const char *bad[] = { "../outside/pwned", "a/../../outside/pwned",
				     "/tmp/kvmbox-unpack-abs-pwned" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct tarb t;
		tb_open(&t, 0);
		tb_file(&t, bad[i], "pwned");
		assert_int_equal(tb_unpack(&t, s->rootfd, NULL), -EPERM);
	}
	expect_outside_empty(s);
	assert_int_not_equal(access("/tmp/kvmbox-unpack-abs-pwned", F_OK), 0);
}

static void test_symlink_escapes_stay_inside(void **state)
{
	struct scratch *s = *state;
	struct tarb t;
	tb_open(&t, 0);
	tb_add(&t, "outside", AE_IFDIR, 0755, NULL, NULL);	/* the image's twin */
	tb_add(&t, "up", AE_IFLNK, 0777, NULL, "../outside");
	tb_add(&t, "abs", AE_IFLNK, 0777, NULL, s->outside);
	tb_add(&t, "root", AE_IFLNK, 0777, NULL, "/");
	tb_file(&t, "up/pwned", "landed inside");	/* ../outside from / is /outside */
	tb_file(&t, "root/at-root", "x");
	assert_int_equal(tb_unpack(&t, s->rootfd, NULL), 0);
	expect_outside_empty(s);
	assert_true(exists(s, "outside/pwned"));	/* the image's own /outside */
	assert_true(exists(s, "at-root"));
	/* writing through a symlink to a host path that has no twin inside */
	tb_open(&t, 0);
	tb_file(&t, "abs/pwned", "x");
	assert_int_not_equal(tb_unpack(&t, s->rootfd, NULL), 0);
	expect_outside_empty(s);
	/* a file entry over an existing symlink replaces the link itself */
	tb_open(&t, 0);
	tb_file(&t, "abs", "plain file now");
	assert_int_equal(tb_unpack(&t, s->rootfd, NULL), 0);
	struct stat st;
	assert_int_equal(fstatat(s->rootfd, "abs", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_true(S_ISREG(st.st_mode));
	expect_outside_empty(s);
}

static void test_hardlink_escapes(void **state)
{
	struct scratch *s = *state;
	char victim[160];
	snprintf(victim, sizeof(victim), "%s/victim", s->outside);
	int fd = open(victim, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	close(fd);
	struct tarb t;
	tb_open(&t, 0);
	tb_add(&t, "hl", AE_IFREG, 0644, NULL, "../outside/victim");
	assert_int_equal(tb_unpack(&t, s->rootfd, NULL), -EPERM);
	tb_open(&t, 0);
	tb_add(&t, "hl", AE_IFREG, 0644, NULL, victim);	/* absolute */
	assert_int_equal(tb_unpack(&t, s->rootfd, NULL), -EPERM);
	/* through a symlink: links the symlink itself, never the host file */
	tb_open(&t, 0);
	tb_add(&t, "sym", AE_IFLNK, 0777, NULL, victim);
	tb_add(&t, "hl2", AE_IFREG, 0644, NULL, "sym");
	assert_int_equal(tb_unpack(&t, s->rootfd, NULL), 0);
	struct stat st;
	assert_int_equal(fstatat(s->rootfd, "hl2", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_true(S_ISLNK(st.st_mode));
	assert_int_equal(stat(victim, &st), 0);
	assert_int_equal(st.st_nlink, 1);
}

static void test_devices_skipped(void **state)
{
	struct scratch *s = *state;
	struct tarb t;
	struct unpack_stats st;
	tb_open(&t, 0);
	tb_add(&t, "dev/mem", AE_IFCHR, 0600, NULL, NULL);
	tb_file(&t, "after", "a");
	assert_int_equal(tb_unpack(&t, s->rootfd, &st), 0);
	assert_int_equal(st.skipped, 1);
	assert_false(exists(s, "dev/mem"));
	assert_true(exists(s, "after"));
}

static void test_truncated(void **state)
{
	struct scratch *s = *state;
	struct tarb t;
	tb_open(&t, 1);
	char big[20000];
	for (size_t i = 0; i < sizeof(big) - 1; i++)
		big[i] = (char)('a' + (i * 7919) % 26);
	big[sizeof(big) - 1] = '\0';
	tb_file(&t, "big", big);
	archive_write_close(t.a);
	archive_write_free(t.a);
	struct stat st;
	fstat(t.fd, &st);
	assert_int_equal(ftruncate(t.fd, st.st_size / 2), 0);
	lseek(t.fd, 0, SEEK_SET);
	assert_int_not_equal(image_unpack_layer(s->rootfd, t.fd, "cut", NULL), 0);
	close(t.fd);
	/* garbage is not a layer */
	int fd = memfd_create("junk", 0);
	assert_int_equal(write(fd, "this is not a tar file at all, not even close......", 51), 51);
	lseek(fd, 0, SEEK_SET);
	assert_int_not_equal(image_unpack_layer(s->rootfd, fd, "junk", NULL), 0);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sanitize),
		cmocka_unit_test_setup_teardown(test_whiteouts_any_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replace_and_attrs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refuses_traversal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_symlink_escapes_stay_inside, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hardlink_escapes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_devices_skipped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncated, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
