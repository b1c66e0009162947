/* tests/unit/test_launch_git.c - git and GitHub for an agent launch: which
 * remote URLs name which GitHub repository (and which name none), the
 * remotes and identity read from a real repository by the real git, and
 * the guest's git config answering `git credential fill` with the
 * placeholder (never anything else) and quoting a hostile identity. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "launch/git.h"

static void test_urls(void **state)
{
	(void)state;
	static const struct { const char *url, *repo; } good[] = {
		{ "https://github.com/Owner/Repo.git", "owner/repo" },
		{ "https://github.com/owner/repo", "owner/repo" },
		{ "https://github.com/owner/repo/", "owner/repo" },
		{ "http://GitHub.COM/o-1/r.x_y", "o-1/r.x_y" },
		{ "https://user:tok@github.com/o/r.GIT", "o/r" },
		{ "https://github.com:443/o/r", "o/r" },
		{ "git@github.com:o/r.git", "o/r" },
		{ "github.com:o/r", "o/r" },
		{ "git@github.com:/o/r", "o/r" },
		{ "ssh://git@github.com/o/r.git", "o/r" },
		{ "ssh://git@github.com:22/o/r", "o/r" },
		{ "git+ssh://git@github.com/o/r", "o/r" },
		{ "git://github.com/o/r", "o/r" },
		{ "https://github.com/o/r.git.git", "o/r.git" },
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		char out[GIT_REPO_MAX] = "";
		assert_int_equal(git_github_repo(good[i].url, out, sizeof(out)), 1);
		assert_string_equal(out, good[i].repo);
	}
	static const char *const bad[] = {
		"https://gitlab.com/o/r", "https://github.com.evil.com/o/r", "https://evilgithub.com/o/r",
		"https://github.com@evil.com/o/r", "https://github.com/o", "https://github.com/o/r/x",
		"https://github.com/o/r?x=1", "https://github.com/o/r#frag", "https://github.com//o/r",
		"https://github.com/o/..", "https://github.com/o/.", "https://github.com/o_x/r",
		"https://github.com/o/r%2Fx", "https://github.com:x/o/r", "https://github.com:/o/r",
		"ftp://github.com/o/r", "/srv/git/o/r", "../o/r", "file:///github.com/o/r",
		"evil.com/x:github.com:o/r", "git@github.com", "https://github.com/o/.git",
		"https://www.github.com/o/r", "https://github.com/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/r",
		"https://github.com/o/r x", "",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char out[GIT_REPO_MAX];
		if (git_github_repo(bad[i], out, sizeof(out)) != 0)
			fail_msg("'%s' read as %s", bad[i], out);
	}
}

static int sh(const char *cmd)
{
	return system(cmd) == 0 ? 0 : -1;
}

static bool have_git(void)
{
	return sh("git --version >/dev/null 2>&1") == 0;
}

static void test_collect(void **state)
{
	(void)state;
	if (!have_git())
		skip();
	char dir[] = "/tmp/kvmbox-git-test.XXXXXX";
	assert_non_null(mkdtemp(dir));
	char cmd[4096];
	snprintf(cmd, sizeof(cmd),
		 "cd %s && git init -q && git config user.name 'Ada \"L\" \\ Lovelace' && "
		 "git config user.email ada@example.com && "
		 "git remote add origin git@github.com:Ada/Engine.git && "
		 "git remote add up https://github.com/babbage/engine && "
		 "git remote set-url --add --push up https://github.com/ada/fork.git && "
		 "git remote add lab https://gitlab.com/x/y && "
		 "git remote add dup https://github.com/ADA/engine/", dir);
	assert_int_equal(sh(cmd), 0);
	struct git_wiring g;
	git_collect(dir, &g);
	assert_int_equal(g.nrepos, 3);
	assert_string_equal(g.repos[0], "ada/engine");
	assert_string_equal(g.repos[1], "babbage/engine");
	assert_string_equal(g.repos[2], "ada/fork");
	assert_string_equal(g.user_name, "Ada \"L\" \\ Lovelace");
	assert_string_equal(g.user_email, "ada@example.com");

	/* the guest's config, read by the real git */
	char *cfg = git_guest_config(&g, "kvmbox-ph-0123456789abcdef0123456789abcdef");
	assert_non_null(cfg);
	char path[256];
	snprintf(path, sizeof(path), "%s/guest.gitconfig", dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(cfg, f);
	fclose(f);
	free(cfg);
	snprintf(cmd, sizeof(cmd),
		 "test \"$(GIT_CONFIG_GLOBAL=%s GIT_CONFIG_NOSYSTEM=1 git -C / config --global user.name)\" = 'Ada \"L\" \\ Lovelace' && "
		 "printf 'protocol=https\\nhost=github.com\\npath=ada/engine.git\\n\\n' | "
		 "GIT_CONFIG_GLOBAL=%s GIT_CONFIG_NOSYSTEM=1 GIT_TERMINAL_PROMPT=0 git -C / credential fill >%s/fill && "
		 "grep -qx 'password=kvmbox-ph-0123456789abcdef0123456789abcdef' %s/fill && "
		 "grep -qx 'username=x-access-token' %s/fill && "
		 "test \"$(GIT_CONFIG_GLOBAL=%s GIT_CONFIG_NOSYSTEM=1 git -C / ls-remote --get-url git@github.com:ada/engine.git)\" = "
		 "https://github.com/ada/engine.git",
		 path, path, dir, dir, dir, path);
	assert_int_equal(sh(cmd), 0);
	/* another host gets nothing from the helper */
	snprintf(cmd, sizeof(cmd),
		 "printf 'protocol=https\\nhost=gitlab.com\\n\\n' | GIT_CONFIG_GLOBAL=%s GIT_CONFIG_NOSYSTEM=1 "
		 "GIT_TERMINAL_PROMPT=0 GIT_ASKPASS=/bin/false SSH_ASKPASS=/bin/false git -C / credential fill 2>/dev/null | grep -q kvmbox-ph",
		 path);
	assert_int_not_equal(sh(cmd), 0);

	/* an identity git config cannot hold is left out, the rest kept */
	strcpy(g.user_name, "evil\n[credential]\n\thelper = !sh");
	cfg = git_guest_config(&g, NULL);
	assert_non_null(cfg);
	assert_null(strstr(cfg, "evil"));
	assert_null(strstr(cfg, "credential"));
	assert_non_null(strstr(cfg, "email = \"ada@example.com\""));
	free(cfg);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	sh(cmd);
}

/* The remotes are pinned at the first launch: a remote the guest adds to
 * .git/config later is not allowed, and is named. */
static void test_pin(void **state)
{
	(void)state;
	char dir[] = "/tmp/kvmbox-pin-test.XXXXXX";
	assert_non_null(mkdtemp(dir));
	char pin[64], dropped[256];
	snprintf(pin, sizeof(pin), "%s/p.repos", dir);
	struct git_wiring g = { .nrepos = 2 };
	strcpy(g.repos[0], "ada/engine");
	strcpy(g.repos[1], "ada/notes");
	assert_int_equal(git_pin_repos(pin, &g, dropped, sizeof(dropped)), 0);
	assert_int_equal(g.nrepos, 2);
	assert_string_equal(dropped, "");
	g.nrepos = 3;
	strcpy(g.repos[0], "evil/repo");
	strcpy(g.repos[1], "ada/engine");
	strcpy(g.repos[2], "ada/engin");	/* a prefix is not a match */
	assert_int_equal(git_pin_repos(pin, &g, dropped, sizeof(dropped)), 0);
	assert_int_equal(g.nrepos, 1);
	assert_string_equal(g.repos[0], "ada/engine");
	assert_string_equal(dropped, "evil/repo, ada/engin");
	/* a pin that cannot be read: no remote is allowed */
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "rm -f %s && mkdir %s", pin, pin);
	assert_int_equal(system(cmd), 0);
	g.nrepos = 1;
	assert_true(git_pin_repos(pin, &g, dropped, sizeof(dropped)) < 0);
	assert_int_equal(g.nrepos, 0);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

static void test_not_a_repo(void **state)
{
	(void)state;
	struct git_wiring g;
	git_collect("/nonexistent-kvmbox-dir", &g);
	assert_int_equal(g.nrepos, 0);
	char *h = git_gh_hosts("kvmbox-ph-x");
	assert_non_null(strstr(h, "oauth_token: kvmbox-ph-x\n"));
	free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_urls),
		cmocka_unit_test(test_collect),
		cmocka_unit_test(test_pin),
		cmocka_unit_test(test_not_a_repo),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
