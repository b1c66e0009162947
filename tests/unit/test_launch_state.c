/* tests/unit/test_launch_state.c - the per-project agent state: where it
 * lives (XDG_STATE_HOME, else ~/.local/state; relative values ignored),
 * every level 0700 and refused when a link or another mode is planted,
 * one directory per real project path, Claude Code's first settings
 * seeded from the host's without a token and never over the agent's own,
 * and placeholder login files scrubbed after a launch. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/util.h"
#include "launch/state.h"

static char root[64];

static int setup(void **state)
{
	(void)state;
	strcpy(root, "/tmp/kvmbox-state-test.XXXXXX");
	if (!mkdtemp(root))
		return -1;
	setenv("HOME", root, 1);
	unsetenv("XDG_STATE_HOME");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	return system(cmd) == 0 ? 0 : -1;
}

static mode_t mode_of(const char *p)
{
	struct stat st;
	return lstat(p, &st) < 0 ? 0 : st.st_mode;
}

static void test_where(void **state)
{
	(void)state;
	char a[4096], b[4096], c[4096], want[4096];
	assert_int_equal(state_dir("/home/u/src/my project", a, sizeof(a)), 0);
	snprintf(want, sizeof(want), "%s/.local/state/kvmbox/projects/my_project-", root);
	assert_memory_equal(a, want, strlen(want));
	assert_int_equal(strlen(a), strlen(want) + 16);
	assert_int_equal(mode_of(a) & 07777, 0700);
	snprintf(want, sizeof(want), "%s/.local/state/kvmbox", root);
	assert_int_equal(mode_of(want) & 07777, 0700);
	/* the same path gives the same directory; another, another */
	assert_int_equal(state_dir("/home/u/src/my project", b, sizeof(b)), 0);
	assert_string_equal(a, b);
	assert_int_equal(state_dir("/home/v/src/my project", c, sizeof(c)), 0);
	assert_string_not_equal(a, c);
	/* odd names stay one path component */
	assert_int_equal(state_dir("/x/../..\n", c, sizeof(c)), 0);
	assert_null(strchr(strrchr(c, '/') + 1, '\n'));
	assert_int_equal(state_dir("/", c, sizeof(c)), 0);
	assert_non_null(strstr(c, "/projects/root-"));
	/* XDG_STATE_HOME when absolute; ignored when relative */
	snprintf(want, sizeof(want), "%s/xdg", root);
	setenv("XDG_STATE_HOME", want, 1);
	assert_int_equal(state_dir("/p", c, sizeof(c)), 0);
	assert_memory_equal(c, want, strlen(want));
	setenv("XDG_STATE_HOME", "relative/dir", 1);
	assert_int_equal(state_dir("/p", c, sizeof(c)), 0);
	assert_non_null(strstr(c, "/.local/state/kvmbox/projects/p-"));
	unsetenv("XDG_STATE_HOME");
}

static void test_planted(void **state)
{
	(void)state;
	char d[4096], p[4200];
	assert_int_equal(state_dir("/p", d, sizeof(d)), 0);
	/* a looser mode is narrowed */
	chmod(d, 0755);
	assert_int_equal(state_dir("/p", d, sizeof(d)), 0);
	assert_int_equal(mode_of(d) & 07777, 0700);
	/* a link planted in place of a level is refused, not followed */
	snprintf(p, sizeof(p), "%s/.local/state/kvmbox/projects", root);
	char moved[4096];
	snprintf(moved, sizeof(moved), "%s/elsewhere", root);
	assert_int_equal(rename(p, moved), 0);
	assert_int_equal(symlink(moved, p), 0);
	assert_true(state_dir("/p", d, sizeof(d)) < 0);
	/* no home at all */
	unsetenv("HOME");
	assert_int_equal(state_dir("/p", d, sizeof(d)), -ENOENT);
	setenv("HOME", root, 1);
}

static void test_seed(void **state)
{
	(void)state;
	char d[4096], p[4200];
	assert_int_equal(state_dir("/proj", d, sizeof(d)), 0);
	snprintf(p, sizeof(p), "%s/.claude.json", root);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs("{\"theme\":\"dark\",\"primaryApiKey\":\"sk-ant-api03-REALKEY\","
	      "\"oauthAccount\":{\"emailAddress\":\"a@b\"},\"mcpServers\":{\"x\":{\"command\":\"/host/bin\"}},"
	      "\"projects\":{\"/host/other\":{\"allowedTools\":[\"Bash\"]}}}", f);
	fclose(f);
	assert_int_equal(state_seed_claude(d, root, "/proj"), 0);
	snprintf(p, sizeof(p), "%s/claude/.claude.json", d);
	assert_int_equal(mode_of(p) & 07777, 0600);
	uint8_t *buf;
	size_t len;
	assert_int_equal(read_file(p, 1 << 20, &buf, &len), 0);
	char *s = strndup((char *)buf, len);
	free(buf);
	assert_non_null(strstr(s, "\"theme\": \"dark\""));
	assert_non_null(strstr(s, "\"emailAddress\": \"a@b\""));
	assert_non_null(strstr(s, "\"hasCompletedOnboarding\": true"));
	assert_non_null(strstr(s, "\"bypassPermissionsModeAccepted\": true"));
	assert_non_null(strstr(s, "\"/proj\": {"));
	assert_non_null(strstr(s, "\"hasTrustDialogAccepted\": true"));
	assert_null(strstr(s, "REALKEY"));
	assert_null(strstr(s, "mcpServers"));
	assert_null(strstr(s, "/host/other"));
	free(s);
	/* the agent's own file wins from then on */
	f = fopen(p, "w");
	fputs("{\"mine\":1}", f);
	fclose(f);
	assert_int_equal(state_seed_claude(d, root, "/proj"), 0);
	assert_int_equal(read_file(p, 1 << 20, &buf, &len), 0);
	assert_int_equal(len, 10);
	free(buf);
	/* no host settings: still onboarded and trusted */
	char d2[4096];
	assert_int_equal(state_dir("/proj2", d2, sizeof(d2)), 0);
	assert_int_equal(state_seed_claude(d2, "/nonexistent", "/proj2"), 0);
}

static void test_scrub(void **state)
{
	(void)state;
	char d[4096], p[4200];
	assert_int_equal(state_dir("/proj", d, sizeof(d)), 0);
	snprintf(p, sizeof(p), "%s/claude", d);
	mkdir(p, 0700);
	snprintf(p, sizeof(p), "%s/claude/.credentials.json", d);
	FILE *f = fopen(p, "w");
	fputs("{}", f);
	fclose(f);
	assert_int_equal(state_scrub(d, "claude/.credentials.json"), 0);
	assert_int_equal(mode_of(p), 0);
	assert_int_equal(state_scrub(d, "claude/.credentials.json"), 0);	/* gone: fine */
	/* a link is left alone (the guest cannot aim the host's unlink) */
	assert_int_equal(symlink("/etc/passwd", p), 0);
	assert_int_equal(state_scrub(d, "claude/.credentials.json"), 0);
	assert_true(S_ISLNK(mode_of(p)));
}

/* A guest that planted links in its state directory (it is shared
 * read-write) cannot aim the host's writes, seeds or scrubs outside it. */
static void test_planted_in_state(void **state)
{
	(void)state;
	char d[4096], p[4400], victim[4200], vfile[4300];
	assert_int_equal(state_dir("/proj", d, sizeof(d)), 0);
	snprintf(victim, sizeof(victim), "%s/real-claude", root);
	assert_int_equal(mkdir(victim, 0700), 0);
	snprintf(vfile, sizeof(vfile), "%s/.credentials.json", victim);
	FILE *f = fopen(vfile, "w");
	fputs("REAL", f);
	fclose(f);
	/* claude -> the user's real ~/.claude */
	snprintf(p, sizeof(p), "%s/claude", d);
	assert_int_equal(symlink(victim, p), 0);
	assert_true(state_write_file(d, "claude/.credentials.json", "PLACEHOLDER") < 0);
	assert_true(state_scrub(d, "claude/.credentials.json") < 0);
	assert_true(state_seed_claude(d, root, "/proj") < 0);
	uint8_t *buf;
	size_t len;
	assert_int_equal(read_file(vfile, 100, &buf, &len), 0);
	assert_memory_equal(buf, "REAL", 4);
	free(buf);
	snprintf(p, sizeof(p), "%s/.claude.json", victim);
	assert_int_equal(mode_of(p), 0);
	/* claude/.credentials.json -> a host file: the link is replaced, the
	 * file untouched */
	snprintf(p, sizeof(p), "%s/claude", d);
	assert_int_equal(unlink(p), 0);
	assert_int_equal(state_write_file(d, "claude/x", "1"), 0);	/* makes claude/ */
	snprintf(p, sizeof(p), "%s/claude/.credentials.json", d);
	assert_int_equal(symlink(vfile, p), 0);
	assert_int_equal(state_write_file(d, "claude/.credentials.json", "PLACEHOLDER"), 0);
	assert_true(S_ISREG(mode_of(p)));
	assert_int_equal(read_file(vfile, 100, &buf, &len), 0);
	assert_memory_equal(buf, "REAL", 4);
	free(buf);
	assert_int_equal(state_scrub(d, "claude/.credentials.json"), 0);
	assert_int_equal(mode_of(p), 0);
	assert_int_equal(state_write_file(d, "../escape", "x"), -EINVAL);
	assert_int_equal(state_write_file(d, "a/../../escape", "x"), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_where, setup, teardown),
		cmocka_unit_test_setup_teardown(test_planted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_seed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scrub, setup, teardown),
		cmocka_unit_test_setup_teardown(test_planted_in_state, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
