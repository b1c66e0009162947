/* tests/unit/test_fs9p_core.c - the passthrough core alone: the O_PATH fd
 * budget holds however many files are looked up, an evicted inode is
 * re-resolved only to the very same file, swaps on the host between lookup
 * and use never redirect an operation, and the negative cache stays exact
 * for our own changes; with fs_opts.hidden (an agent's project share),
 * sensitive names are not found, not listed, not removable or renamable,
 * and nothing can be created under them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs9p/core.h"
#include "launch/hidden.h"
#include "tests/harness/fs9p_msg.h"

struct fx {
	char *dir;
	struct fs_server *srv;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	f->dir = fs_test_tmpdir();
	assert_non_null(f->dir);
	struct fs_opts o;
	fs_opts_default(&o);
	o.max_path_fds = 32;
	assert_int_equal(fs_server_new(f->dir, &o, &f->srv), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	fs_server_free(f->srv);
	fs_test_rmrf(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

static void host_file(struct fx *f, const char *name, const char *data)
{
	assert_int_equal(fs_test_write_file(f->dir, name, data, 0644), 0);
}

static void host_path(struct fx *f, char *p, size_t n, const char *name)
{
	snprintf(p, n, "%s/%s", f->dir, name);
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static struct fs_inode *lookup(struct fx *f, struct fs_inode *dir, const char *name)
{
	struct fs_inode *ino = NULL;
	struct stat st;
	fs_begin(f->srv);
	int r = fs_lookup(f->srv, dir, name, &ino, &st);
	return r == 0 ? ino : NULL;
}

static void test_fd_budget(void **state)
{
	struct fx *f = *state;
	enum { N = 3000 };
	char name[32];
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "f%05d", i);
		host_file(f, name, name);
	}
	int before = count_fds();
	static struct fs_inode *inos[N];
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "f%05d", i);
		inos[i] = lookup(f, f->srv->root, name);
		assert_non_null(inos[i]);
	}
	struct fs_stats st;
	fs_get_stats(f->srv, &st);
	assert_int_equal(st.inodes, N + 1);
	assert_true(st.path_fds <= 33);
	assert_true(count_fds() <= before + 33);
	/* Every inode, evicted or not, still reads as its own file. */
	for (int i = 0; i < N; i++) {
		struct stat s;
		fs_begin(f->srv);
		assert_int_equal(fs_getattr(f->srv, inos[i], &s), 0);
		assert_int_equal(s.st_size, 6);
		struct fs_file *file;
		assert_int_equal(fs_open(f->srv, inos[i], O_RDONLY, &file), 0);
		char buf[8] = { 0 };
		struct iovec iov = { buf, sizeof(buf) };
		assert_int_equal(fs_read(f->srv, file, &iov, 1, 0), 6);
		snprintf(name, sizeof(name), "f%05d", i);
		assert_string_equal(buf, name);
		fs_release(f->srv, file);
	}
	assert_true(count_fds() <= before + 33);
}

static void test_evicted_then_replaced_is_stale(void **state)
{
	struct fx *f = *state;
	host_file(f, "victim", "original");
	struct fs_inode *v = lookup(f, f->srv->root, "victim");
	assert_non_null(v);
	/* Push it out of the fd cache. */
	char name[32];
	for (int i = 0; i < 100; i++) {
		snprintf(name, sizeof(name), "g%03d", i);
		host_file(f, name, "x");
		assert_non_null(lookup(f, f->srv->root, name));
	}
	assert_int_equal(v->fd, -1);
	/* Replace the name on the host with another file. */
	char a[4096], b[4096];
	host_path(f, a, sizeof(a), "victim");
	host_path(f, b, sizeof(b), "victim.moved");
	assert_int_equal(rename(a, b), 0);
	host_file(f, "victim", "impostor!");
	struct stat st;
	fs_begin(f->srv);
	assert_int_equal(fs_getattr(f->srv, v, &st), -ESTALE);
	struct fs_file *file;
	assert_int_equal(fs_open(f->srv, v, O_RDONLY, &file), -ESTALE);
}

static void test_symlink_swapped_after_lookup(void **state)
{
	struct fx *f = *state;
	host_file(f, "doc", "mine");
	struct fs_inode *ino = lookup(f, f->srv->root, "doc");
	assert_non_null(ino);
	char p[4096];
	host_path(f, p, sizeof(p), "doc");
	assert_int_equal(unlink(p), 0);
	assert_int_equal(symlink("/etc/passwd", p), 0);
	/* The held inode is the old file, not whatever the name says now. */
	struct fs_file *file;
	fs_begin(f->srv);
	assert_int_equal(fs_open(f->srv, ino, O_RDONLY, &file), 0);
	char buf[64] = { 0 };
	struct iovec iov = { buf, sizeof(buf) - 1 };
	assert_int_equal(fs_read(f->srv, file, &iov, 1, 0), 4);
	assert_string_equal(buf, "mine");
	fs_release(f->srv, file);
	/* A fresh lookup sees a symlink, which is never opened. */
	struct fs_inode *now = lookup(f, f->srv->root, "doc");
	assert_non_null(now);
	assert_int_equal(now->type, S_IFLNK);
	fs_begin(f->srv);
	assert_int_equal(fs_open(f->srv, now, O_RDONLY, &file), -ELOOP);
}

static void test_dir_swapped_for_symlink(void **state)
{
	struct fx *f = *state;
	char p[4096], q[4096];
	host_path(f, p, sizeof(p), "d");
	assert_int_equal(mkdir(p, 0755), 0);
	struct fs_inode *d = lookup(f, f->srv->root, "d");
	assert_non_null(d);
	host_path(f, q, sizeof(q), "d.old");
	assert_int_equal(rename(p, q), 0);
	assert_int_equal(symlink("/etc", p), 0);
	/* Names under d resolve in the directory we hold, never in /etc. */
	struct fs_inode *x = lookup(f, d, "passwd");
	assert_null(x);
	struct fs_inode *e = lookup(f, f->srv->root, "d");
	assert_non_null(e);
	struct stat st;
	fs_begin(f->srv);
	assert_int_equal(fs_lookup(f->srv, e, "passwd", &x, &st), -ENOTDIR);
}

static void test_negative_cache(void **state)
{
	struct fx *f = *state;
	struct fs_inode *ino;
	struct stat st;
	fs_begin(f->srv);
	assert_int_equal(fs_lookup(f->srv, f->srv->root, "missing", &ino, &st), -ENOENT);
	fs_begin(f->srv);
	assert_int_equal(fs_lookup(f->srv, f->srv->root, "missing", &ino, &st), -ENOENT);
	struct fs_stats s;
	fs_get_stats(f->srv, &s);
	assert_int_equal(s.neg_hits, 1);
	/* Our own create voids it at once. */
	fs_begin(f->srv);
	assert_int_equal(fs_mknod(f->srv, f->srv->root, "missing", S_IFREG | 0644, 0, &ino, &st), 0);
	fs_begin(f->srv);
	assert_int_equal(fs_lookup(f->srv, f->srv->root, "missing", &ino, &st), 0);
}

static void test_unlinked_stays_usable(void **state)
{
	struct fx *f = *state;
	host_file(f, "tmp", "data");
	struct fs_inode *ino = lookup(f, f->srv->root, "tmp");
	fs_begin(f->srv);
	assert_int_equal(fs_unlink(f->srv, f->srv->root, "tmp", false), 0);
	char name[32];
	for (int i = 0; i < 100; i++) {
		snprintf(name, sizeof(name), "h%03d", i);
		host_file(f, name, "x");
		assert_non_null(lookup(f, f->srv->root, name));
	}
	struct stat st;
	fs_begin(f->srv);
	assert_int_equal(fs_getattr(f->srv, ino, &st), 0);
	assert_int_equal(st.st_nlink, 0);
}

static void test_deep_tree_reresolves(void **state)
{
	struct fx *f = *state;
	enum { DEPTH = 1000 };
	struct fs_inode *d = f->srv->root, *leaf;
	struct stat st;
	for (int i = 0; i < DEPTH; i++) {
		fs_begin(f->srv);
		assert_int_equal(fs_mkdir(f->srv, d, "d", 0755, &d, &st), 0);
	}
	leaf = d;
	char name[32];
	for (int i = 0; i < 100; i++) {
		snprintf(name, sizeof(name), "k%03d", i);
		host_file(f, name, "x");
		assert_non_null(lookup(f, f->srv->root, name));
	}
	assert_int_equal(leaf->fd, -1);
	/* The whole chain is re-resolved, iteratively, from the root. */
	fs_begin(f->srv);
	assert_int_equal(fs_getattr(f->srv, leaf, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	fs_begin(f->srv);
	struct fs_stats s;
	fs_get_stats(f->srv, &s);
	assert_true(s.path_fds <= 33);	/* back under the cap */
}

static int collect(void *ctx, const char *name, size_t len, uint64_t ino, unsigned type,
		   uint64_t next_off)
{
	(void)ino;
	(void)type;
	(void)next_off;
	char *list = ctx;
	snprintf(list + strlen(list), 1024 - strlen(list), "%.*s ", (int)len, name);
	return 0;
}

/* A file the host holds, read back: its contents are unchanged. */
static void host_unchanged(struct fx *f, const char *rel, const char *want)
{
	char p[512], buf[64] = "";
	host_path(f, p, sizeof(p), rel);
	FILE *fp = fopen(p, "r");
	assert_non_null(fp);
	assert_non_null(fgets(buf, sizeof(buf), fp));
	fclose(fp);
	assert_string_equal(buf, want);
}

static void test_hidden_names(void **state)
{
	struct fx *f = *state;
	fs_server_free(f->srv);
	char p[512];
	static const char *const dirs[] = { "sub", ".codex", "other", ".ssh" };
	for (size_t i = 0; i < 4; i++) {
		host_path(f, p, sizeof(p), dirs[i]);
		assert_int_equal(mkdir(p, 0755), 0);
	}
	host_file(f, ".env", "SECRET=1");
	host_file(f, ".env.local", "SECRET=2");
	host_file(f, "ok.txt", "fine");
	host_file(f, "server.key", "KEY");
	host_file(f, "BACKUP.KEY", "KEY");	/* case: a casefolding file system would alias it */
	host_file(f, "sub/id_rsa", "KEY");
	host_file(f, ".codex/auth.json", "TOKENS");
	host_file(f, "other/auth.json", "source");
	host_file(f, ".ssh/config", "Host x");
	struct fs_opts o;
	fs_opts_default(&o);
	o.hidden = hidden_default;
	assert_int_equal(fs_server_new(f->dir, &o, &f->srv), 0);
	struct fs_inode *root = f->srv->root, *ino;
	struct stat st;
	/* not found */
	static const char *const gone[] = { ".env", ".env.local", "server.key", ".ssh", "BACKUP.KEY",
					    ".ENV", ".Ssh" };
	for (size_t i = 0; i < 7; i++) {
		fs_begin(f->srv);
		assert_int_equal(fs_lookup(f->srv, root, gone[i], &ino, &st), -ENOENT);
	}
	assert_non_null(lookup(f, root, "ok.txt"));
	struct fs_inode *sub = lookup(f, root, "sub"), *codex = lookup(f, root, ".codex"),
			*other = lookup(f, root, "other");
	assert_non_null(sub);
	assert_non_null(codex);
	assert_non_null(other);
	fs_begin(f->srv);
	assert_int_equal(fs_lookup(f->srv, sub, "id_rsa", &ino, &st), -ENOENT);
	fs_begin(f->srv);
	assert_int_equal(fs_lookup(f->srv, codex, "auth.json", &ino, &st), -ENOENT);
	assert_non_null(lookup(f, other, "auth.json"));	/* only Codex's own folder */
	/* not listed */
	struct fs_file *d;
	fs_begin(f->srv);
	assert_int_equal(fs_opendir(f->srv, root, &d), 0);
	char list[1024] = "";
	assert_true(fs_readdir(f->srv, d, 0, collect, list) > 0);
	fs_release(f->srv, d);
	assert_non_null(strstr(list, "ok.txt "));
	assert_non_null(strstr(list, "sub "));
	assert_null(strstr(list, ".env"));
	assert_null(strstr(list, "server.key"));
	assert_null(strstr(list, ".ssh"));
	/* nothing made, replaced, removed or moved under a hidden name */
	struct fs_file *file = NULL;
	fs_begin(f->srv);
	assert_int_equal(fs_create(f->srv, root, ".env", O_WRONLY | O_CREAT | O_TRUNC, 0644, &ino, &st, &file),
			 -EACCES);
	fs_begin(f->srv);
	assert_int_equal(fs_create(f->srv, root, "new.pem", O_WRONLY | O_CREAT, 0644, &ino, &st, &file),
			 -EACCES);
	fs_begin(f->srv);
	assert_int_equal(fs_mkdir(f->srv, root, ".aws", 0755, &ino, &st), -EACCES);
	fs_begin(f->srv);
	assert_int_equal(fs_symlink(f->srv, root, "link.key", "ok.txt", &ino, &st), -EACCES);
	fs_begin(f->srv);
	assert_int_equal(fs_mknod(f->srv, sub, "id_ed25519", S_IFREG | 0600, 0, &ino, &st), -EACCES);
	struct fs_inode *ok = lookup(f, root, "ok.txt");
	fs_begin(f->srv);
	assert_int_equal(fs_link(f->srv, ok, root, "copy.p12", &st), -EACCES);
	fs_begin(f->srv);
	assert_int_equal(fs_unlink(f->srv, root, ".env", false), -ENOENT);
	fs_begin(f->srv);
	assert_int_equal(fs_rename(f->srv, root, "ok.txt", root, ".env", 0), -EACCES);
	fs_begin(f->srv);
	assert_int_equal(fs_rename(f->srv, root, ".env", root, "stolen", 0), -ENOENT);
	fs_begin(f->srv);
	assert_int_equal(fs_rename(f->srv, codex, "auth.json", root, "t.json", 0), -ENOENT);
	/* the folder that hides auth.json keeps its name, by rename or exchange */
	fs_begin(f->srv);
	assert_int_equal(fs_rename(f->srv, root, ".codex", root, "codex2", 0), -EACCES);
	fs_begin(f->srv);
	assert_int_equal(fs_rename(f->srv, root, "other", root, ".codex", RENAME_EXCHANGE), -EACCES);
	fs_begin(f->srv);
	assert_int_equal(fs_rename(f->srv, root, "other", root, "other2", 0), 0);	/* any other folder */
	host_unchanged(f, ".env", "SECRET=1");
	host_unchanged(f, ".codex/auth.json", "TOKENS");
	assert_null(strstr(list, "BACKUP.KEY"));
	host_unchanged(f, "ok.txt", "fine");
	host_path(f, p, sizeof(p), "new.pem");
	assert_int_equal(access(p, F_OK), -1);
}

static void test_names(void **state)
{
	(void)state;
	assert_int_equal(fs_name_check("ok"), 0);
	assert_int_equal(fs_name_check(""), -EINVAL);
	assert_int_equal(fs_name_check("."), -EINVAL);
	assert_int_equal(fs_name_check(".."), -EINVAL);
	assert_int_equal(fs_name_check("a/b"), -EINVAL);
	assert_int_equal(fs_name_check("/"), -EINVAL);
	assert_int_equal(fs_name_check("..."), 0);
	char l[300];
	memset(l, 'a', 299);
	l[299] = 0;
	assert_int_equal(fs_name_check(l), -ENAMETOOLONG);
	l[255] = 0;
	assert_int_equal(fs_name_check(l), 0);
	assert_false(fs_name_ok("a\0b", 3));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test_setup_teardown(test_fd_budget, setup, teardown),
		cmocka_unit_test_setup_teardown(test_evicted_then_replaced_is_stale, setup, teardown),
		cmocka_unit_test_setup_teardown(test_symlink_swapped_after_lookup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dir_swapped_for_symlink, setup, teardown),
		cmocka_unit_test_setup_teardown(test_negative_cache, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unlinked_stays_usable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deep_tree_reresolves, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hidden_names, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
