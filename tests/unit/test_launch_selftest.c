/* tests/unit/test_launch_selftest.c - the launch self-test's list of checks
 * (launch/selftest.h) as the launcher writes it: which promises each launch
 * gets proved, and what answer each is held to; and its guest program,
 * parsed by the shells an image may have (dash, busybox ash).  The program
 * itself runs against the real proxy in tests/e2e/agent_launch.sh. */
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

#include "launch/selftest.h"

static char dir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/kvmbox-selftest-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* The list written for in, as one string (static buffer). */
static const char *list_for(const struct selftest_in *in)
{
	static char buf[8192];
	assert_int_equal(selftest_write_list(dir, in), 0);
	char path[128];
	snprintf(path, sizeof(path), "%s/" SELFTEST_LIST, dir);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	return buf;
}

static void add_secrets(struct secrets *s)
{
	secrets_init(s);
	assert_int_equal(secrets_add(s, "env:API", "kvmbox-ph-api", "real-api", "api.anthropic.com"), 0);
	assert_int_equal(secrets_add(s, "oauth:refresh", "kvmbox-ph-refresh", "real-refresh",
				     "console.anthropic.com"), 0);
	s->v[1].refresh_only = true;
	/* a pattern first: the plain name after it stands for the secret */
	assert_int_equal(secrets_add(s, "gh", "kvmbox-ph-gh", "real-gh", "*.github.com,github.com"), 0);
	assert_int_equal(secrets_add(s, "lan", "kvmbox-ph-lan", "real-lan", "10.1.2.3"), 0);
}

static const char gh_push[] = "tls POST github.com /kvmbox-self-test/off-list.git/git-receive-pack - 403 *\n";

static void test_permissive_launch(void **state)
{
	(void)state;
	struct secrets s;
	add_secrets(&s);
	struct policy p;
	policy_init(&p);
	assert_int_equal(policy_set_profile(&p, "permissive"), 0);
	const struct selftest_in in = { .refuses_metadata = true, .refuses_host = true, .secrets = &s,
					.egress = &p };
	assert_string_equal(list_for(&in),
		"http 169.254.169.254\n"
		"http 10.0.2.2\n"
		"ca\n"
		"tls GET api.anthropic.com / kvmbox-ph-api 200 kvmbox self-test: api.anthropic.com: "
		"substituted=1 unchanged=0\n"
		/* the first secret only: a name that begins with its host's */
		"tls GET api.anthropic.com.self-test.kvmbox.invalid / kvmbox-ph-api 200 kvmbox self-test: "
		"api.anthropic.com.self-test.kvmbox.invalid: substituted=0 unchanged=1\n"
		/* a refresh token's placeholder: never into a request */
		"tls GET console.anthropic.com / kvmbox-ph-refresh 200 kvmbox self-test: console.anthropic.com: "
		"substituted=0 unchanged=1\n"
		"tls GET github.com / kvmbox-ph-gh 200 kvmbox self-test: github.com: substituted=1 unchanged=0\n"
		/* an address is no name to stand for: left out */
		"tls POST github.com /kvmbox-self-test/off-list.git/git-receive-pack - 403 *\n");
	policy_fini(&p);
	secrets_fini(&s);
}

static void test_locked_launch(void **state)
{
	(void)state;
	struct secrets s;
	add_secrets(&s);
	struct policy p;
	policy_init(&p);
	assert_int_equal(policy_set_profile(&p, "locked"), 0);
	p.agent = POLICY_AGENT_CLAUDE;
	const struct selftest_in in = { .secrets = &s, .egress = &p, .timed = true };
	const char *l = list_for(&in);
	assert_null(strstr(l, "http "));	/* the flags opened both */
	assert_non_null(strstr(l, "tls GET api.anthropic.com / kvmbox-ph-api 200 kvmbox self-test: "
				  "api.anthropic.com: substituted=1 unchanged=0\n"));
	/* the profile refuses GitHub: the proxy's 403 is due, not a substitution */
	assert_non_null(strstr(l, "tls GET github.com / kvmbox-ph-gh 403 kvmbox: egress to github.com is not allowed*\n"));
	assert_non_null(strstr(l, gh_push));
	assert_non_null(strstr(l, "time\n"));
	policy_fini(&p);
	secrets_fini(&s);
}

static void test_no_policy_refuses_all(void **state)
{
	(void)state;
	struct secrets s;
	add_secrets(&s);
	const struct selftest_in in = { .secrets = &s };
	const char *l = list_for(&in);
	assert_non_null(strstr(l, "tls GET api.anthropic.com / kvmbox-ph-api 403 "));
	assert_null(strstr(l, "substituted=1"));
	secrets_fini(&s);
}

static void test_no_secrets(void **state)
{
	(void)state;
	const struct selftest_in in = { 0 };
	char want[256];
	snprintf(want, sizeof(want), "ca\n%s", gh_push);
	assert_string_equal(list_for(&in), want);
}

/* The program parses in each shell present (dash as sh, busybox ash). */
static void test_script_parses(void **state)
{
	(void)state;
	char path[128], cmd[256];
	snprintf(path, sizeof(path), "%s/" SELFTEST_SCRIPT_FILE, dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(selftest_script, f);
	fclose(f);
	const char *shells[] = { "sh", "dash", "busybox sh", "bash --posix" };
	int ran = 0;
	for (size_t i = 0; i < sizeof(shells) / sizeof(shells[0]); i++) {
		char probe[64];
		snprintf(probe, sizeof(probe), "command -v %.*s >/dev/null", (int)strcspn(shells[i], " "), shells[i]);
		if (system(probe) != 0)
			continue;
		snprintf(cmd, sizeof(cmd), "%s -n %s", shells[i], path);
		assert_int_equal(system(cmd), 0);
		ran++;
	}
	assert_true(ran > 0);
}

/* An unknown check stops the launch (fail closed), whatever the list holds. */
static void test_unknown_check_fails_closed(void **state)
{
	(void)state;
	char script[128], list[128], cmd[400];
	snprintf(script, sizeof(script), "%s/" SELFTEST_SCRIPT_FILE, dir);
	snprintf(list, sizeof(list), "%s/odd", dir);
	FILE *f = fopen(script, "w");
	assert_non_null(f);
	fputs(selftest_script, f);
	fclose(f);
	f = fopen(list, "w");
	assert_non_null(f);
	fputs("bogus\n", f);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "sh %s %s 2>%s/err", script, list, dir);
	int st = system(cmd);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 125);
	snprintf(cmd, sizeof(cmd), "grep -qx \"kvmbox: self-test: unknown check 'bogus' in %s; the agent was not started\" %s/err",
		 list, dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_permissive_launch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_locked_launch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_policy_refuses_all, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_secrets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_script_parses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_check_fails_closed, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
