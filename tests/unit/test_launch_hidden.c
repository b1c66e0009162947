/* tests/unit/test_launch_hidden.c - the default hidden list
 * (launch/hidden.h) as the file server applies it (name_pattern_match),
 * and the launch-time scan that names what a project holds: nested
 * matches, nothing beneath a hidden folder, no walk into .git, the
 * entry budget, the listing cut with "..." when full. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <sys/stat.h>

#include "common/util.h"
#include "launch/hidden.h"
#include "tests/harness/fs9p_msg.h"

static void test_default_list(void **state)
{
	(void)state;
	static const struct { const char *dir, *name; int hidden; } cases[] = {
		{ "", ".env", 1 }, { "x", ".env.local", 1 }, { "", ".envrc", 1 },
		{ "", "server.pem", 1 }, { "", "tls.key", 1 }, { "", "id_rsa", 1 },
		{ "", "id_ed25519.pub", 1 }, { "", ".ssh", 1 }, { "", ".aws", 1 },
		{ "", ".npmrc", 1 }, { "", ".netrc", 1 }, { ".claude", ".credentials.json", 1 },
		{ ".codex", "auth.json", 1 }, { "opencode", "auth.json", 1 }, { "gh", "hosts.yml", 1 },
		{ ".docker", "config.json", 1 },
		/* case aliases (a casefolding file system opens them as the real one) */
		{ "", ".ENV", 1 }, { "", "Server.PEM", 1 }, { ".CODEX", "AUTH.JSON", 1 }, { "", "ID_RSA", 1 },
		{ "", "auth.json", 0 }, { "src", "auth.json", 0 }, { "", "config.json", 0 },
		{ "", "README.md", 0 }, { "", "env.c", 0 }, { "", "keys.py", 0 },
		{ "", "id_generator.py", 0 }, { "", "monkey.txt", 0 }, { "", "hosts.yml", 0 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (name_pattern_match(hidden_default, cases[i].dir, cases[i].name) != cases[i].hidden)
			fail_msg("%s/%s: expected %s", cases[i].dir, cases[i].name,
				 cases[i].hidden ? "hidden" : "shown");
	/* the folders that give names in them their meaning */
	assert_true(name_pattern_folder(hidden_default, ".codex"));
	assert_true(name_pattern_folder(hidden_default, "GH"));
	assert_false(name_pattern_folder(hidden_default, "src"));
	assert_false(name_pattern_folder(hidden_default, ".env"));
}

static void test_scan(void **state)
{
	(void)state;
	char *d = fs_test_tmpdir();
	assert_non_null(d);
	char p[512];
	static const char *const dirs[] = { "a", "a/b", ".ssh", ".git", ".codex" };
	for (size_t i = 0; i < 5; i++) {
		snprintf(p, sizeof(p), "%s/%s", d, dirs[i]);
		assert_int_equal(mkdir(p, 0755), 0);
	}
	static const char *const files[] = { ".env", "a/b/server.key", ".ssh/id_rsa", ".git/x.pem",
					     ".codex/auth.json", "a/auth.json", "README" };
	for (size_t i = 0; i < 7; i++)
		assert_int_equal(fs_test_write_file(d, files[i], "x", 0644), 0);
	char out[256];
	assert_int_equal(hidden_scan(d, hidden_default, 1000, out, sizeof(out)), 4);
	/* .ssh once (not its id_rsa), nothing from .git, not a/auth.json */
	static const char *const want[] = { ".env", "a/b/server.key", ".ssh", ".codex/auth.json" };
	for (size_t i = 0; i < 4; i++)
		if (!strstr(out, want[i]))
			fail_msg("'%s' lacks %s", out, want[i]);
	assert_null(strstr(out, "id_rsa"));
	assert_null(strstr(out, "x.pem"));
	assert_null(strstr(out, "a/auth.json"));
	/* a small buffer: cut with "..." but every match counted */
	char small[16];
	assert_int_equal(hidden_scan(d, hidden_default, 1000, small, sizeof(small)), 4);
	assert_non_null(strstr(small, "..."));
	/* the entry budget bounds the walk */
	assert_true(hidden_scan(d, hidden_default, 1, out, sizeof(out)) <= 1);
	assert_int_equal(hidden_scan("/nonexistent-kvmbox", hidden_default, 10, out, sizeof(out)), -ENOENT);
	fs_test_rmrf(d);
	free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_default_list),
		cmocka_unit_test(test_scan),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
