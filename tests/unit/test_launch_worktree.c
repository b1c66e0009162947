/* tests/unit/test_launch_worktree.c - a sandbox's own git worktree
 * (launch/worktree/worktree.h) with the real git on real repositories:
 * made next to kvmbox's state on kvmbox/NAME (or kvmbox/BRANCH) with the
 * project's files; the guest's .git file and the shares (the git
 * directory read-only, only the objects, this worktree's folder and the
 * kvmbox/ branches writable); the project's hooks never run; reused by
 * the same name, refused on another branch; a branch checked out in
 * another worktree refused; a folder below the repository's top or outside
 * any refused; two sandboxes side by side apart; branch names; removal
 * that keeps commits no other branch has and uncommitted changes unless
 * forced, and deletes a branch with nothing of its own. */
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

#include "launch/worktree/worktree.h"

static char root[64], repo[128];

static int sh(const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd) == 0 ? 0 : -1;
}

static int setup(void **state)
{
	(void)state;
	if (sh("git --version >/dev/null 2>&1") < 0)
		return 0;	/* each test skips */
	snprintf(root, sizeof(root), "/tmp/kvmbox-wt-XXXXXX");
	if (!mkdtemp(root))
		return -1;
	char st[128];
	snprintf(st, sizeof(st), "%s/state", root);
	setenv("XDG_STATE_HOME", st, 1);
	setenv("GIT_AUTHOR_NAME", "Ada", 1);
	setenv("GIT_AUTHOR_EMAIL", "ada@example.com", 1);
	setenv("GIT_COMMITTER_NAME", "Ada", 1);
	setenv("GIT_COMMITTER_EMAIL", "ada@example.com", 1);
	snprintf(repo, sizeof(repo), "%s/proj", root);
	/* a post-checkout hook that must never run for kvmbox */
	return sh("mkdir -p %s/sub && cd %s && git init -q -b main && echo hello >README && "
		  "echo x >sub/f && git add . && git commit -qm first && "
		  "printf '#!/bin/sh\\ntouch %s/hook-ran\\n' >.git/hooks/post-checkout && "
		  "chmod 755 .git/hooks/post-checkout",
		  repo, repo, root);
}

static int teardown(void **state)
{
	(void)state;
	return root[0] ? sh("rm -rf %s", root) : 0;
}

static bool have_git(void)
{
	return root[0] != 0;
}

static char *slurp(const char *path)
{
	static char buf[4096];
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	return buf;
}

static void test_made(void **state)
{
	(void)state;
	if (!have_git())
		skip();
	struct worktree wt;
	char err[600] = "";
	int r = worktree_prepare(repo, "proj-claude", NULL, &wt, err, sizeof(err));
	if (r)
		print_message("%s\n", err);
	assert_int_equal(r, 0);
	assert_true(wt.made);
	assert_string_equal(wt.branch, "kvmbox/proj-claude");
	char path[PATH_MAX + 32], gitdir[PATH_MAX];
	assert_non_null(realpath(repo, gitdir));
	strcat(gitdir, "/.git");
	assert_string_equal(wt.gitdir, gitdir);
	assert_non_null(strstr(wt.path, "/state/kvmbox/worktrees/proj-"));
	assert_non_null(strstr(wt.path, "/proj-claude"));
	snprintf(path, sizeof(path), "%s/README", wt.path);
	assert_string_equal(slurp(path), "hello\n");
	assert_int_equal(sh("test \"$(git -C %s symbolic-ref --short HEAD)\" = kvmbox/proj-claude", wt.path), 0);
	/* no hook of the project ran */
	snprintf(path, sizeof(path), "%s/hook-ran", root);
	assert_int_equal(access(path, F_OK), -1);
	char gf[PATH_MAX + 64], want[PATH_MAX + 64];
	worktree_gitfile(&wt, gf, sizeof(gf));
	snprintf(want, sizeof(want), "gitdir: " WORKTREE_GUEST_GIT "/worktrees/%s\n", wt.admin);
	assert_string_equal(gf, want);
	snprintf(path, sizeof(path), "%s/worktrees/%s/HEAD", gitdir, wt.admin);
	assert_int_equal(access(path, F_OK), 0);
	snprintf(want, sizeof(want), "%s:" WORKTREE_GUEST_GIT ":ro", gitdir);
	assert_string_equal(wt.shares[0], want);
	snprintf(want, sizeof(want), "%s/objects:" WORKTREE_GUEST_GIT "/objects", gitdir);
	assert_string_equal(wt.shares[1], want);
	snprintf(want, sizeof(want), "%s/worktrees/%s:" WORKTREE_GUEST_GIT "/worktrees/%s", gitdir, wt.admin,
		 wt.admin);
	assert_string_equal(wt.shares[2], want);
	snprintf(want, sizeof(want), "%s/refs/heads/kvmbox:" WORKTREE_GUEST_GIT "/refs/heads/kvmbox", gitdir);
	assert_string_equal(wt.shares[3], want);
	snprintf(want, sizeof(want), "%s/logs/refs/heads/kvmbox:" WORKTREE_GUEST_GIT "/logs/refs/heads/kvmbox",
		 gitdir);
	assert_string_equal(wt.shares[4], want);
	for (unsigned i = 1; i < WORKTREE_SHARES; i++) {	/* each writable part exists */
		snprintf(path, sizeof(path), "%.*s", (int)(strchr(wt.shares[i], ':') - wt.shares[i]), wt.shares[i]);
		struct stat st;
		assert_int_equal(stat(path, &st), 0);
		assert_true(S_ISDIR(st.st_mode));
	}

	/* the same name again: the same worktree, as it was left */
	sh("echo mine >%s/scratch", wt.path);
	struct worktree again;
	assert_int_equal(worktree_prepare(repo, "proj-claude", NULL, &again, err, sizeof(err)), 0);
	assert_false(again.made);
	assert_string_equal(again.path, wt.path);
	snprintf(path, sizeof(path), "%s/scratch", wt.path);
	assert_string_equal(slurp(path), "mine\n");
	/* but not on another branch */
	assert_int_equal(worktree_prepare(repo, "proj-claude", "other", &again, err, sizeof(err)), -EEXIST);
	assert_non_null(strstr(err, "is on kvmbox/proj-claude, not kvmbox/other"));
}

static void test_side_by_side(void **state)
{
	(void)state;
	if (!have_git())
		skip();
	struct worktree a, b, c;
	char err[600];
	assert_int_equal(worktree_prepare(repo, "a", NULL, &a, err, sizeof(err)), 0);
	assert_int_equal(worktree_prepare(repo, "b", "feature/x", &b, err, sizeof(err)), 0);
	assert_string_equal(b.branch, "kvmbox/feature/x");
	assert_string_not_equal(a.path, b.path);
	assert_string_not_equal(a.admin, b.admin);
	assert_int_equal(sh("echo A >%s/README && git -C %s commit -qam a", a.path, a.path), 0);
	char path[PATH_MAX + 16];
	snprintf(path, sizeof(path), "%s/README", b.path);
	assert_string_equal(slurp(path), "hello\n");
	snprintf(path, sizeof(path), "%s/README", repo);
	assert_string_equal(slurp(path), "hello\n");
	/* the commit is the project's at once, on the sandbox's branch */
	assert_int_equal(sh("git -C %s log -1 --format=%%s kvmbox/a | grep -qx a", repo), 0);
	/* a branch another worktree has is refused, with git's reason */
	assert_int_equal(worktree_prepare(repo, "c", "feature/x", &c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "git worktree:"));
}

static void test_refusals(void **state)
{
	(void)state;
	if (!have_git())
		skip();
	struct worktree wt;
	char err[600], sub[PATH_MAX];
	snprintf(sub, sizeof(sub), "%s/sub", repo);
	char real[PATH_MAX];
	assert_non_null(realpath(sub, real));
	assert_int_equal(worktree_prepare(real, "s", NULL, &wt, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "is not the top of its git repository"));
	assert_int_equal(worktree_prepare(root, "n", NULL, &wt, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "git rev-parse:"));
	assert_int_equal(worktree_prepare(repo, "bad", "../x", &wt, err, sizeof(err)), -EINVAL);
}

/* What a hostile guest can write (the worktree's .git file and admin
 * folder with --worktree, all of .git without it) never steers the host:
 * a writable part replaced by a link to elsewhere is not shared; a
 * commondir or .git file of the guest's choosing (which would hand the
 * host's git its configuration: core.fsmonitor runs a command) stops
 * reuse and removal before any git runs in the worktree. */
static void test_hostile_git_folder(void **state)
{
	(void)state;
	if (!have_git())
		skip();
	struct worktree wt;
	char err[600];
	bool kept;
	/* objects -> a folder of the user's (an earlier agent's link) */
	assert_int_equal(sh("mkdir %s/secret && cd %s/.git && mv objects objects.real && ln -s %s/secret objects",
			    root, repo, root), 0);
	assert_int_equal(worktree_prepare(repo, "l", NULL, &wt, err, sizeof(err)), -EINVAL);	/* git fails first */
	assert_int_equal(sh("cd %s/.git && rm objects && mv objects.real objects", repo), 0);
	assert_int_equal(sh("mkdir -p %s/secret2 && ln -s %s/secret2 %s/.git/refs/heads/kvmbox", root, root, repo),
			 0);
	assert_int_equal(worktree_prepare(repo, "l", "other", &wt, err, sizeof(err)), -EPERM);
	assert_non_null(strstr(err, "refs/heads/kvmbox is not a folder of the git directory itself"));
	assert_int_equal(sh("rm %s/.git/refs/heads/kvmbox", repo), 0);

	/* a commondir pointing at a configuration the guest wrote */
	assert_int_equal(worktree_prepare(repo, "h", NULL, &wt, err, sizeof(err)), 0);
	char marker[PATH_MAX];
	snprintf(marker, sizeof(marker), "%s/fsmonitor-ran", root);
	assert_int_equal(sh("mkdir -p %s/evil && cp -r %s/.git/* %s/evil/ && "
			    "printf '[core]\n\tfsmonitor = touch %s\n' >>%s/evil/config && "
			    "echo %s/evil >%s/.git/worktrees/%s/commondir && echo dirty >>%s/README",
			    wt.path, repo, wt.path, marker, wt.path, wt.path, repo, wt.admin, wt.path), 0);
	struct worktree again;
	assert_int_equal(worktree_prepare(repo, "h", NULL, &again, err, sizeof(err)), -EEXIST);
	assert_int_equal(worktree_remove(repo, wt.path, wt.branch, false, &kept, err, sizeof(err)), -EPERM);
	assert_int_equal(worktree_remove(repo, wt.path, wt.branch, true, &kept, err, sizeof(err)), -EPERM);
	assert_non_null(strstr(err, "changed from inside the sandbox"));
	assert_int_equal(access(wt.path, F_OK), 0);	/* left for the user to look at */
	assert_int_equal(access(marker, F_OK), -1);	/* and nothing of it ran */

	/* a .git file naming another git directory */
	assert_int_equal(worktree_prepare(repo, "g", NULL, &wt, err, sizeof(err)), 0);
	assert_int_equal(sh("echo 'gitdir: %s/evil' >%s/.git", wt.path, wt.path), 0);
	assert_int_equal(worktree_remove(repo, wt.path, wt.branch, false, &kept, err, sizeof(err)), -EPERM);
	assert_int_equal(worktree_prepare(repo, "g", NULL, &again, err, sizeof(err)), -EEXIST);
}

static void test_branch_names(void **state)
{
	(void)state;
	static const char *const good[] = { "x", "fix-1", "feature/x", "a.b_c", "proj-claude-2" };
	static const char *const bad[] = { "", "-x", ".x", "a/.b", "a..b", "a//b", "a/", "x.lock", "a/b.lock",
					   "a b", "a:b", "a~1", "a^", "a?", "a*", "a[", "a\\b", "é" };
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_true(worktree_branch_valid(good[i]));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(worktree_branch_valid(bad[i]));
	char longname[WORKTREE_BRANCH_MAX];
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = 0;
	assert_false(worktree_branch_valid(longname));
}

static void test_remove(void **state)
{
	(void)state;
	if (!have_git())
		skip();
	struct worktree wt;
	char err[600];
	bool kept;
	/* nothing of its own: the worktree and the branch go */
	assert_int_equal(worktree_prepare(repo, "clean", NULL, &wt, err, sizeof(err)), 0);
	assert_int_equal(worktree_remove(repo, wt.path, wt.branch, false, &kept, err, sizeof(err)), 0);
	assert_false(kept);
	assert_int_equal(access(wt.path, F_OK), -1);
	assert_int_equal(sh("git -C %s show-ref --verify --quiet refs/heads/kvmbox/clean", repo), -1);

	/* a commit only it has: kept unless forced, and then the branch stays */
	assert_int_equal(worktree_prepare(repo, "work", NULL, &wt, err, sizeof(err)), 0);
	assert_int_equal(sh("echo w >%s/new && git -C %s add new && git -C %s commit -qm w", wt.path, wt.path,
			    wt.path), 0);
	assert_int_equal(worktree_remove(repo, wt.path, wt.branch, false, &kept, err, sizeof(err)), -EBUSY);
	assert_non_null(strstr(err, "has 1 commit no other branch has"));
	assert_int_equal(access(wt.path, F_OK), 0);
	/* uncommitted changes too */
	assert_int_equal(sh("git -C %s merge -q kvmbox/work", repo), 0);	/* now main has it */
	assert_int_equal(sh("echo dirty >>%s/README", wt.path), 0);
	assert_int_equal(worktree_remove(repo, wt.path, wt.branch, false, &kept, err, sizeof(err)), -ENOTEMPTY);
	assert_int_equal(access(wt.path, F_OK), 0);
	assert_int_equal(worktree_remove(repo, wt.path, wt.branch, true, &kept, err, sizeof(err)), 0);
	assert_false(kept);	/* merged: nothing of its own */
	assert_int_equal(access(wt.path, F_OK), -1);

	assert_int_equal(worktree_prepare(repo, "forced", NULL, &wt, err, sizeof(err)), 0);
	assert_int_equal(sh("echo f >%s/f2 && git -C %s add f2 && git -C %s commit -qm f", wt.path, wt.path,
			    wt.path), 0);
	assert_int_equal(worktree_remove(repo, wt.path, wt.branch, true, &kept, err, sizeof(err)), 0);
	assert_true(kept);
	assert_int_equal(access(wt.path, F_OK), -1);
	assert_int_equal(sh("git -C %s show-ref --verify --quiet refs/heads/kvmbox/forced", repo), 0);
	/* a worktree folder already gone: pruned, no error */
	assert_int_equal(worktree_prepare(repo, "gone", NULL, &wt, err, sizeof(err)), 0);
	assert_int_equal(sh("rm -rf %s", wt.path), 0);
	assert_int_equal(worktree_remove(repo, wt.path, wt.branch, false, &kept, err, sizeof(err)), 0);
	assert_int_equal(sh("git -C %s worktree list | grep -q gone", repo), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_made, setup, teardown),
		cmocka_unit_test_setup_teardown(test_side_by_side, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_git_folder, setup, teardown),
		cmocka_unit_test(test_branch_names),
		cmocka_unit_test_setup_teardown(test_remove, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
