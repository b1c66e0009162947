/* tests/unit/test_cage_landlock.c - what a caged VM's process can still
 * open (cage/landlock.c), tried the way a compromised file server would:
 * beneath a read-write share everything works; a read-only share reads
 * only; outside the shares nothing opens, is created, renamed or linked
 * into, not through a symbolic link inside a share, not through
 * /proc/self/fd of a file opened before the cage, not a "home" holding
 * keys beside the project; the launch folder can be emptied and removed,
 * and nothing created beside it; the system's read-only folders stay
 * readable.
 * Each case runs in a child that enters the whole cage (Landlock and
 * seccomp).  Skipped, with the reason, where the kernel has no Landlock.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "cage/cage.h"

static char top[PATH_MAX / 2];	/* a short /tmp path */
static char rw[PATH_MAX], ro[PATH_MAX], home[PATH_MAX], launch[PATH_MAX];

static void path(char *out, const char *rel)
{
	snprintf(out, PATH_MAX, "%s/%s", top, rel);
}

static void write_file(const char *rel, const char *text)
{
	char p[PATH_MAX];
	path(p, rel);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int setup(void **state)
{
	(void)state;
	char t[] = "/tmp/kvmbox-landlock.XXXXXX";
	assert_non_null(mkdtemp(t));
	char real[PATH_MAX];
	assert_non_null(realpath(t, real));
	assert_true(strlen(real) < sizeof(top));
	strcpy(top, real);
	snprintf(rw, sizeof(rw), "%s/proj", top);
	snprintf(ro, sizeof(ro), "%s/image", top);
	snprintf(home, sizeof(home), "%s/home", top);
	assert_int_equal(mkdir(rw, 0700), 0);
	assert_int_equal(mkdir(ro, 0700), 0);
	assert_int_equal(mkdir(home, 0700), 0);
	char p[PATH_MAX];
	path(p, "run");
	assert_int_equal(mkdir(p, 0700), 0);
	snprintf(launch, sizeof(launch), "%s/run/launch", top);
	assert_int_equal(mkdir(launch, 0700), 0);
	write_file("run/launch/placeholder", "kvmbox-ph-1\n");
	path(p, "home/.ssh");
	assert_int_equal(mkdir(p, 0700), 0);
	write_file("home/.ssh/id_ed25519", "PRIVATE KEY\n");
	write_file("home/.bashrc", "echo hi\n");
	write_file("proj/src.c", "int main;\n");
	write_file("image/os-release", "ID=debian\n");
	/* a link inside the share pointing out of it */
	char target[PATH_MAX + 32];
	snprintf(target, sizeof(target), "%s/home/.ssh/id_ed25519", top);
	path(p, "proj/key");
	assert_int_equal(symlink(target, p), 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", top);
	assert_int_equal(system(cmd), 0);
	return 0;
}

static bool landlock_missing(void)
{
	return syscall(SYS_landlock_create_ruleset, NULL, 0, 1 /* VERSION */) < 0;
}

/* Run body in a caged child; its exit status (0: every expectation held,
 * else the number of the one that failed). */
static int caged(int (*body)(int early_fd))
{
	char p[PATH_MAX];
	path(p, "home/.ssh/id_ed25519");
	int early = open(p, O_PATH | O_CLOEXEC);	/* opened during "setup" */
	assert_true(early >= 0);
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		const struct cage_path paths[] = { { rw, CAGE_WRITE }, { ro, CAGE_READ },
						   { launch, CAGE_WRITE }, { launch, CAGE_REMOVE_SELF } };
		const struct cage_config cfg = { .paths = paths, .npaths = 4 };
		char why[200];
		if (cage_process(&cfg, why, sizeof(why)) < 0) {
			fprintf(stderr, "%s\n", why);
			_exit(99);
		}
		if (cage_thread(CAGE_LOOP) < 0)
			_exit(98);
		_exit(body(early));
	}
	close(early);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	return WEXITSTATUS(st);
}

/* 0 when open(rel, flags) fails with EACCES, else a nonzero code. */
static int refused(const char *rel, int flags, int code)
{
	char p[PATH_MAX];
	path(p, rel);
	int fd = openat(AT_FDCWD, p, flags | O_CLOEXEC, 0600);
	if (fd >= 0) {
		close(fd);
		return code;
	}
	return errno == EACCES ? 0 : code + 100;
}

static int allowed(const char *rel, int flags, int code)
{
	char p[PATH_MAX];
	path(p, rel);
	int fd = openat(AT_FDCWD, p, flags | O_CLOEXEC, 0600);
	if (fd < 0)
		return code;
	close(fd);
	return 0;
}

static int in_shares(int early)
{
	(void)early;
	int r;
	if ((r = allowed("proj/src.c", O_RDWR, 1)) || (r = allowed("proj/new.c", O_WRONLY | O_CREAT, 2)))
		return r;
	char a[PATH_MAX], b[PATH_MAX];
	path(a, "proj/dir");
	if (mkdirat(AT_FDCWD, a, 0700) < 0)
		return 3;
	path(a, "proj/new.c");
	path(b, "proj/dir/moved.c");
	if (renameat(AT_FDCWD, a, AT_FDCWD, b) < 0)
		return 4;
	if (unlinkat(AT_FDCWD, b, 0) < 0)
		return 5;
	if ((r = allowed("image/os-release", O_RDONLY, 6)))
		return r;
	if ((r = refused("image/os-release", O_WRONLY, 7)) || (r = refused("image/new", O_WRONLY | O_CREAT, 8)))
		return r;
	/* the launch folder: emptied and removed once the VM is done */
	path(a, "run/launch/placeholder");
	if (unlinkat(AT_FDCWD, a, 0) < 0)
		return 11;
	path(a, "run/launch");
	if (unlinkat(AT_FDCWD, a, AT_REMOVEDIR) < 0)
		return 12;
	/* the system's read-only folders */
	int fd = openat(AT_FDCWD, "/etc/hosts", O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno == EACCES)
		return 9;
	if (fd >= 0)
		close(fd);
	fd = openat(AT_FDCWD, "/usr", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return 10;
	close(fd);
	return 0;
}

static int outside(int early)
{
	int r;
	if ((r = refused("home/.ssh/id_ed25519", O_RDONLY, 1)) ||
	    (r = refused("home/.bashrc", O_WRONLY | O_APPEND, 2)) ||
	    (r = refused("home/.profile", O_WRONLY | O_CREAT, 3)) ||
	    (r = refused("home", O_RDONLY | O_DIRECTORY, 4)) ||
	    (r = refused("new-beside-the-project", O_WRONLY | O_CREAT, 5)))
		return r;
	/* beside the launch folder: its removal is all that is allowed there */
	if ((r = refused("run/planted", O_WRONLY | O_CREAT, 10)))
		return r;
	/* through a symbolic link inside the share */
	if ((r = refused("proj/key", O_RDONLY, 6)))
		return r;
	/* through /proc/self/fd of a file opened before the cage */
	char p[64];
	snprintf(p, sizeof(p), "/proc/self/fd/%d", early);
	int fd = openat(AT_FDCWD, p, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		close(fd);
		return 7;
	}
	/* moved or linked out of the share, or a key linked into it */
	char a[PATH_MAX], b[PATH_MAX];
	path(a, "proj/src.c");
	path(b, "home/src.c");
	if (renameat(AT_FDCWD, a, AT_FDCWD, b) == 0)
		return 8;
	path(a, "home/.ssh/id_ed25519");
	path(b, "proj/stolen");
	if (linkat(AT_FDCWD, a, AT_FDCWD, b, 0) == 0)
		return 9;
	return 0;
}

static void test_inside_the_shares(void **state)
{
	(void)state;
	if (landlock_missing())
		skip();	/* this kernel has no Landlock */
	assert_int_equal(caged(in_shares), 0);
}

static void test_launch_folder_removed(void **state)
{
	(void)state;
	if (landlock_missing())
		skip();	/* this kernel has no Landlock */
	char p[PATH_MAX];
	path(p, "run/launch");
	assert_int_equal(access(p, F_OK), -1);
}

static void test_nothing_outside(void **state)
{
	(void)state;
	if (landlock_missing())
		skip();	/* this kernel has no Landlock */
	assert_int_equal(caged(outside), 0);
	/* and nothing leaked out meanwhile */
	char p[PATH_MAX];
	path(p, "home/.profile");
	assert_int_equal(access(p, F_OK), -1);
	path(p, "proj/src.c");
	assert_int_equal(access(p, F_OK), 0);
}

int main(void)
{
	unsetenv("KVMBOX_SECCOMP");
	if (landlock_missing())
		fprintf(stderr, "# skip: this kernel has no Landlock (%s)\n", strerror(errno));
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_inside_the_shares),
		cmocka_unit_test(test_launch_folder_removed),
		cmocka_unit_test(test_nothing_outside),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
