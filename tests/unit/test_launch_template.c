/* tests/unit/test_launch_template.c - the template cache: one folder per
 * configuration (the SHA-256 of its description, under $KVMBOX_CACHE,
 * templates/ made 0700), a template present only once its state file is,
 * discarded whole, and pruned to TEMPLATE_KEEP least recently used first,
 * with build folders an hour old removed and fresh ones left to their
 * builders.  (Making one runs a second kvmbox: tests/e2e/shell_snapshot.sh.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "launch/template/template.h"

static char root[64];

static int setup(void **state)
{
	(void)state;
	strcpy(root, "/tmp/kvmbox-template-test.XXXXXX");
	if (!mkdtemp(root))
		return -1;
	setenv("KVMBOX_CACHE", root, 1);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	unsetenv("KVMBOX_CACHE");
	return system(cmd) == 0 ? 0 : -1;
}

/* A made template at dir (a state and a memory file), used at `when`. */
static void make_template(const char *dir, time_t when)
{
	char p[4200];
	assert_true(mkdir(dir, 0700) == 0 || errno == EEXIST);
	snprintf(p, sizeof(p), "%s/state", dir);
	assert_true(close(open(p, O_CREAT | O_WRONLY, 0600)) == 0);
	snprintf(p, sizeof(p), "%s/memory-1", dir);
	assert_true(close(open(p, O_CREAT | O_WRONLY, 0600)) == 0);
	struct timespec t[2] = { { when, 0 }, { when, 0 } };
	assert_int_equal(utimensat(AT_FDCWD, dir, t, 0), 0);
}

static void test_path_per_configuration(void **state)
{
	(void)state;
	char a[4096], a2[4096], b[4096];
	assert_int_equal(template_path("kernel x\nmemory 512\n", a, sizeof(a)), 0);
	assert_int_equal(template_path("kernel x\nmemory 512\n", a2, sizeof(a2)), 0);
	assert_int_equal(template_path("kernel x\nmemory 1024\n", b, sizeof(b)), 0);
	assert_string_equal(a, a2);
	assert_string_not_equal(a, b);
	char want[128];
	snprintf(want, sizeof(want), "%s/templates/", root);
	assert_memory_equal(a, want, strlen(want));
	assert_int_equal(strlen(a + strlen(want)), 64);	/* the SHA-256 in hex */
	struct stat st;
	assert_int_equal(stat(want, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	char tiny[16];
	assert_int_equal(template_path("x", tiny, sizeof(tiny)), -ENAMETOOLONG);
}

static void test_present_and_discard(void **state)
{
	(void)state;
	char dir[4096], p[4200];
	assert_int_equal(template_path("a configuration", dir, sizeof(dir)), 0);
	assert_false(template_present(dir));
	assert_int_equal(mkdir(dir, 0700), 0);
	snprintf(p, sizeof(p), "%s/memory-1", dir);
	assert_true(close(open(p, O_CREAT | O_WRONLY, 0600)) == 0);
	assert_false(template_present(dir));	/* a save not finished: no state */
	snprintf(p, sizeof(p), "%s/state", dir);
	assert_int_equal(symlink("/etc/passwd", p), 0);
	assert_false(template_present(dir));	/* a link is no state file */
	unlink(p);
	make_template(dir, time(NULL));
	assert_true(template_present(dir));
	assert_int_equal(template_discard(dir), 0);
	assert_false(template_present(dir));
	assert_int_equal(access(dir, F_OK), -1);
	assert_int_equal(template_discard(dir), 0);	/* gone already: fine */
}

static void test_prune(void **state)
{
	(void)state;
	char dirs[TEMPLATE_KEEP + 3][4096], desc[32];
	time_t now = time(NULL);
	for (unsigned i = 0; i < TEMPLATE_KEEP + 3; i++) {
		snprintf(desc, sizeof(desc), "configuration %u", i);
		assert_int_equal(template_path(desc, dirs[i], sizeof(dirs[i])), 0);
		make_template(dirs[i], now - 1000 + (time_t)i);	/* 0 the least recently used */
	}
	template_touch(dirs[1]);	/* used just now */
	char old_build[4200], new_build[4200];
	snprintf(old_build, sizeof(old_build), "%s.tmp-1", dirs[0]);
	snprintf(new_build, sizeof(new_build), "%s.tmp-2", dirs[0]);
	make_template(old_build, now - 7200);
	make_template(new_build, now);
	template_prune();
	assert_false(template_present(dirs[0]));
	assert_true(template_present(dirs[1]));
	assert_false(template_present(dirs[2]));
	assert_false(template_present(dirs[3]));
	for (unsigned i = 4; i < TEMPLATE_KEEP + 3; i++)
		assert_true(template_present(dirs[i]));
	assert_int_equal(access(old_build, F_OK), -1);
	assert_true(template_present(new_build));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_path_per_configuration, setup, teardown),
		cmocka_unit_test_setup_teardown(test_present_and_discard, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prune, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
