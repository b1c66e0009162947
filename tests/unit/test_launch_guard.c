/* tests/unit/test_launch_guard.c - the project folder an agent shares is
 * refused when it exposes the user's credentials (launch/guard.h): the
 * home folder, anything above it, a folder holding a credential store, a
 * folder inside one, and each of those reached through a symbolic link;
 * an ordinary project under the home folder passes. */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "launch/guard.h"

static char top[PATH_MAX], home[PATH_MAX + 8];

static void mk(const char *rel)
{
	char p[PATH_MAX * 2];
	snprintf(p, sizeof(p), "%s/%s", home, rel);
	assert_int_equal(mkdir(p, 0700), 0);
}

static void touch(const char *rel)
{
	char p[PATH_MAX * 2];
	snprintf(p, sizeof(p), "%s/%s", home, rel);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fclose(f);
}

static int setup(void **state)
{
	(void)state;
	char t[] = "/tmp/kvmbox-guard.XXXXXX";
	assert_non_null(mkdtemp(t));
	assert_non_null(realpath(t, top));
	snprintf(home, sizeof(home), "%s/home", top);
	assert_int_equal(mkdir(home, 0700), 0);
	mk("proj");
	mk("proj/sub");
	mk(".ssh");
	mk(".ssh/deep");
	mk(".config");
	mk(".config/gh");
	mk(".claude");
	touch(".claude/.credentials.json");
	mk(".local");
	mk(".local/share");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", top);
	return system(cmd) == 0 ? 0 : -1;
}

/* guard_project on HOME/rel (or an absolute path); returns its result and
 * leaves the reason in why. */
static char why[512];
static int check(const char *rel)
{
	char p[PATH_MAX * 2];
	if (rel[0] == '/')
		snprintf(p, sizeof(p), "%s", rel);
	else
		snprintf(p, sizeof(p), "%s%s%s", home, *rel ? "/" : "", rel);
	why[0] = '\0';
	const char *homes[] = { home, NULL };
	return guard_project(p, homes, why, sizeof(why));
}

static void test_project_passes(void **state)
{
	(void)state;
	assert_int_equal(check("proj"), 0);
	assert_int_equal(check("proj/sub"), 0);
	assert_int_equal(check(".local/share"), 0);	/* no opencode login in it */
	assert_int_equal(check(top), -EPERM);		/* above home */
}

static void test_home_and_above(void **state)
{
	(void)state;
	assert_int_equal(check(""), -EPERM);
	assert_non_null(strstr(why, "your home folder"));
	assert_null(strchr(why, '\n'));
	assert_int_equal(check(top), -EPERM);
	assert_non_null(strstr(why, "above your home folder"));
	assert_int_equal(check("/"), -EPERM);
}

static void test_holds_or_inside_a_store(void **state)
{
	(void)state;
	assert_int_equal(check(".config"), -EPERM);	/* holds ~/.config/gh */
	assert_non_null(strstr(why, "holds ~/.config/gh"));
	assert_int_equal(check(".claude"), -EPERM);	/* holds the login file */
	assert_non_null(strstr(why, "~/.claude/.credentials.json"));
	assert_int_equal(check(".ssh"), -EPERM);
	assert_int_equal(check(".ssh/deep"), -EPERM);
	assert_non_null(strstr(why, "inside ~/.ssh"));
	assert_int_equal(check(".config/gh"), -EPERM);
}

/* A link to the home folder, or into a store, is the same folder. */
static void test_through_links(void **state)
{
	(void)state;
	char link[PATH_MAX * 2], real[PATH_MAX];
	snprintf(link, sizeof(link), "%s/homelink", top);
	assert_int_equal(symlink(home, link), 0);
	assert_non_null(realpath(link, real));
	const char *via_link[] = { link, NULL };
	assert_int_equal(guard_project(real, via_link, why, sizeof(why)), -EPERM);
	snprintf(link, sizeof(link), "%s/proj/keys", home);
	char ssh[PATH_MAX * 2];
	snprintf(ssh, sizeof(ssh), "%s/.ssh/deep", home);
	assert_int_equal(symlink(ssh, link), 0);
	assert_int_equal(check("proj/keys"), -EPERM);	/* the caller passes realpath; stat follows */
	assert_int_equal(check("proj"), 0);		/* a link inside a project is not shared through */
}

static void test_homes(void **state)
{
	(void)state;
	char p[PATH_MAX * 2];
	snprintf(p, sizeof(p), "%s/proj", home);
	const char *none[] = { NULL }, *empty[] = { "", NULL }, *missing[] = { "/nonexistent-home", NULL };
	assert_int_equal(guard_project(p, NULL, why, sizeof(why)), 0);
	assert_int_equal(guard_project(p, none, why, sizeof(why)), 0);
	assert_int_equal(guard_project(p, empty, why, sizeof(why)), 0);
	assert_int_equal(guard_project(p, missing, why, sizeof(why)), 0);
	/* HOME changed (or unset, NULL first): the password database's home
	 * still counts */
	const char *changed[] = { "/nonexistent-home", home, NULL };
	assert_int_equal(guard_project(home, changed, why, sizeof(why)), -EPERM);
	snprintf(p, sizeof(p), "%s/nope", home);
	const char *homes[] = { home, NULL };
	assert_int_equal(guard_project(p, homes, why, sizeof(why)), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_project_passes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_home_and_above, setup, teardown),
		cmocka_unit_test_setup_teardown(test_holds_or_inside_a_store, setup, teardown),
		cmocka_unit_test_setup_teardown(test_through_links, setup, teardown),
		cmocka_unit_test_setup_teardown(test_homes, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
