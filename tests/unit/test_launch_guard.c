/* tests/unit/test_launch_guard.c - the project folder an agent shares is
 * refused when it exposes the user's credentials (launch/guard.h): the
 * home folder, anything above it, a folder holding a credential store, a
 * folder inside one, and each of those reached through a symbolic link;
 * an ordinary project under the home folder passes.  --force lets the
 * home folder and those above it through, never a store or a folder
 * holding one, and the file server's list hides every store of a home
 * folder so shared (launch/hidden.h). */
#include <errno.h>
#include <stdbool.h>
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
#include "launch/hidden.h"

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
static bool forced;
static int check(const char *rel)
{
	char p[PATH_MAX * 2];
	if (rel[0] == '/')
		snprintf(p, sizeof(p), "%s", rel);
	else
		snprintf(p, sizeof(p), "%s%s%s", home, *rel ? "/" : "", rel);
	why[0] = '\0';
	const char *homes[] = { home, NULL };
	return guard_project(p, homes, forced, why, sizeof(why));
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
	assert_int_equal(guard_project(real, via_link, false, why, sizeof(why)), -EPERM);
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
	assert_int_equal(guard_project(p, NULL, false, why, sizeof(why)), 0);
	assert_int_equal(guard_project(p, none, false, why, sizeof(why)), 0);
	assert_int_equal(guard_project(p, empty, false, why, sizeof(why)), 0);
	assert_int_equal(guard_project(p, missing, false, why, sizeof(why)), 0);
	/* HOME changed (or unset, NULL first): the password database's home
	 * still counts */
	const char *changed[] = { "/nonexistent-home", home, NULL };
	assert_int_equal(guard_project(home, changed, false, why, sizeof(why)), -EPERM);
	snprintf(p, sizeof(p), "%s/nope", home);
	const char *homes[] = { home, NULL };
	assert_int_equal(guard_project(p, homes, false, why, sizeof(why)), -ENOENT);
}

static void test_forced(void **state)
{
	(void)state;
	forced = true;
	assert_int_equal(check(""), 0);		/* the home folder */
	assert_int_equal(check(top), 0);	/* above it */
	assert_int_equal(check("/"), 0);
	assert_int_equal(check(".ssh"), -EPERM);	/* a store: never */
	assert_int_equal(check(".ssh/deep"), -EPERM);
	assert_int_equal(check(".config"), -EPERM);	/* a folder holding one: never */
	assert_non_null(strstr(why, "holds ~/.config/gh"));
	forced = false;
	assert_int_equal(check(""), -EPERM);
	assert_non_null(strstr(why, "--force"));
}

/* Whether the scan's list ("a, b/c") names rel or a folder above it. */
static bool named(const char *found, const char *rel)
{
	for (const char *e = found; *e;) {
		size_t n = strcspn(e, ",");
		if (!strncmp(rel, e, n) && (rel[n] == 0 || rel[n] == '/'))
			return true;
		e += n;
		e += strspn(e, ", ");
	}
	return false;
}

/* Every credential store of a home folder shared with --force is hidden by
 * the file server's list: each one made under a home folder is named by
 * the scan of what is hidden (itself or a folder above it). */
static void test_forced_home_hides_every_store(void **state)
{
	(void)state;
	for (const char *const *s = guard_sensitive; *s; s++) {
		char cmd[PATH_MAX * 3];
		snprintf(cmd, sizeof(cmd), "cd '%s' && mkdir -p \"$(dirname '%s')\" && { [ -e '%s' ] || touch '%s'; }",
			 home, *s, *s, *s);
		assert_int_equal(system(cmd), 0);
	}
	char found[8192];
	assert_true(hidden_scan(home, hidden_default, 10000, found, sizeof(found)) > 0);
	for (const char *const *s = guard_sensitive; *s; s++)
		if (!named(found, *s))
			fail_msg("~/%s is not hidden in a home folder shared with --force (hidden: %s)", *s, found);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_project_passes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_home_and_above, setup, teardown),
		cmocka_unit_test_setup_teardown(test_holds_or_inside_a_store, setup, teardown),
		cmocka_unit_test_setup_teardown(test_through_links, setup, teardown),
		cmocka_unit_test_setup_teardown(test_homes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forced, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forced_home_hides_every_store, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
