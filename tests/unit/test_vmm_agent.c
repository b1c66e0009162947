/* tests/unit/test_vmm_agent.c - the agent launcher's credentials: the guest
 * gets placeholders for the host's API keys and OAuth tokens, the real
 * values land in the proxy's secrets table bound to their hosts, a
 * malformed credential file is refused without showing a value, and tokens
 * the proxy rotated are written back to the host file (only those). */
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
#include "vmm/cli/agent.h"

#define REAL_ACCESS "sk-ant-oat01-REALACCESS"
#define REAL_REFRESH "sk-ant-ort01-REALREFRESH"

struct fixture {
	char home[64];
	char cred[128];
	struct secrets s;
	struct agent_creds c;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	strcpy(f->home, "/tmp/kvmbox-agent-test.XXXXXX");
	if (!mkdtemp(f->home))
		return -1;
	snprintf(f->cred, sizeof(f->cred), "%s/.claude/.credentials.json", f->home);
	char dir[100];
	snprintf(dir, sizeof(dir), "%s/.claude", f->home);
	mkdir(dir, 0700);
	secrets_init(&f->s);
	unsetenv("ANTHROPIC_API_KEY");
	unsetenv("CLAUDE_CODE_OAUTH_TOKEN");
	unsetenv("GH_TOKEN");
	unsetenv("GITHUB_TOKEN");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	agent_creds_fini(&f->c);
	secrets_fini(&f->s);
	char cmd[200];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->home);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

static void write_text(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

static char *slurp(const char *path)
{
	uint8_t *b = NULL;
	size_t n = 0;
	assert_int_equal(read_file(path, 1 << 20, &b, &n), 0);
	char *s = realloc(b, n + 1);
	s[n] = 0;
	return s;
}

static void test_profiles(void **state)
{
	(void)state;
	assert_string_equal(agent_find("claude")->argv[0], "claude");
	assert_string_equal(agent_find("codex")->argv[0], "codex");
	assert_string_equal(agent_find("codex")->argv[1], "--dangerously-bypass-approvals-and-sandbox");
	assert_null(agent_find("codex")->argv[2]);
	assert_string_equal(agent_find("opencode")->argv[0], "opencode");
	assert_non_null(agent_find("shell"));
	assert_null(agent_find("vim"));
	char *a = agent_placeholder(), *b = agent_placeholder();
	assert_int_equal(strlen(a), strlen("kvmbox-ph-") + 32);
	assert_memory_equal(a, "kvmbox-ph-", 10);
	assert_string_not_equal(a, b);
	free(a);
	free(b);
}

/* A table with a key names each secret the same way in every launch
 * with that key (a resumed sandbox's guest keeps its placeholders); other
 * keys, other names, a second secret of one name: other placeholders. */
static void test_keyed_placeholders(void **state)
{
	struct fixture *f = *state;
	unsigned char k1[SECRETS_PH_KEY_LEN], k2[SECRETS_PH_KEY_LEN];
	memset(k1, 1, sizeof(k1));
	memset(k2, 2, sizeof(k2));
	char *a = agent_placeholder_keyed(k1, "env:X", 0), *b = agent_placeholder_keyed(k1, "env:X", 0);
	char *c = agent_placeholder_keyed(k2, "env:X", 0), *d = agent_placeholder_keyed(k1, "env:Y", 0);
	char *e = agent_placeholder_keyed(k1, "env:X", 1);
	assert_string_equal(a, b);
	assert_int_equal(strlen(a), strlen("kvmbox-ph-") + 32);
	assert_memory_equal(a, "kvmbox-ph-", 10);
	assert_string_not_equal(a, c);
	assert_string_not_equal(a, d);
	assert_string_not_equal(a, e);
	free(a), free(b), free(c), free(d), free(e);
	/* two launches with one key: the same placeholders, file and env */
	setenv("ANTHROPIC_API_KEY", "sk-ant-api03-REALKEY", 1);
	write_text(f->cred, "{\"claudeAiOauth\":{\"accessToken\":\"" REAL_ACCESS "\","
		   "\"refreshToken\":\"" REAL_REFRESH "\"}}");
	char err[200];
	memcpy(f->s.ph_key, k1, sizeof(k1));
	f->s.ph_keyed = true;
	assert_int_equal(agent_creds_collect(agent_find("claude"), f->home, &f->s, &f->c, err, sizeof(err)), 0);
	struct secrets s2;
	struct agent_creds c2;
	secrets_init(&s2);
	memcpy(s2.ph_key, k1, sizeof(k1));
	s2.ph_keyed = true;
	assert_int_equal(agent_creds_collect(agent_find("claude"), f->home, &s2, &c2, err, sizeof(err)), 0);
	assert_string_equal(f->c.env[0], c2.env[0]);
	assert_string_equal(f->c.oauth_json, c2.oauth_json);
	assert_string_equal(f->c.access_ph, c2.access_ph);
	assert_string_not_equal(f->c.access_ph, f->c.refresh_ph);
	/* a second secret of one name (the profile's key, then --github's):
	 * a placeholder of its own, not a clash */
	assert_non_null(agent_creds_add_env(&c2, &s2, "ANTHROPIC_API_KEY", "v2", "example.test", err, sizeof(err)));
	assert_string_not_equal(c2.env[0], c2.env[c2.nenv - 1]);
	agent_creds_fini(&c2);
	secrets_fini(&s2);
}

/* Which words are kvmbox's and which the agent's. */
static void test_cmdline_split(void **state)
{
	(void)state;
	char *argv[] = { "claude", "-p", "say hi", "--memory", "4G", "--model=opus", "--no-proxy",
			 "--continue", "--no-hook", "--image=slim", "--cpus=4", "--", "--memory", "-h" };
	int argc = (int)(sizeof(argv) / sizeof(argv[0]));
	struct agent_cmdline c;
	char err[200];
	assert_int_equal(agent_parse_args(argc, argv, POLICY_AGENT_NONE, &c, err, sizeof(err)), 0);
	assert_false(c.help || c.proxy || c.hook);
	assert_true(c.has_memory && c.has_cpus && c.git && c.state);
	assert_string_equal(c.image, "slim");
	assert_string_equal(c.project, ".");
	assert_int_equal(c.nshell, 3);
	assert_string_equal(c.shell_flags[0], "--memory");
	assert_string_equal(c.shell_flags[1], "4G");
	assert_string_equal(c.shell_flags[2], "--cpus=4");
	static const char *const agent[] = { "-p", "say hi", "--model=opus", "--continue",
					     "--memory", "-h" };
	assert_int_equal(c.nagent, 6);
	for (int i = 0; i < 6; i++)
		assert_string_equal(c.agent_args[i], agent[i]);
	agent_cmdline_fini(&c);

	/* a flag of kvmbox's with a bad value: one line, nothing started */
	static const char *const bad[][3] = {
		{ "--memory", "3X", NULL }, { "--memory", NULL, NULL }, { "--cpus=0", NULL, NULL },
		{ "--project", NULL, NULL }, { "--share", "/nonexistent-dir-kvmbox", NULL },
		{ "-p", "x", "--profile=yaml" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *v[4] = { "codex" };
		int n = 1;
		for (int k = 0; k < 3 && bad[i][k]; k++)
			v[n++] = (char *)bad[i][k];
		err[0] = 0;
		assert_int_equal(agent_parse_args(n, v, POLICY_AGENT_NONE, &c, err, sizeof(err)), -EINVAL);
		assert_true(strlen(err) > 0);
		assert_null(strchr(err, '\n'));
		agent_cmdline_fini(&c);
	}
	char *help[] = { "opencode", "run", "--help" };
	assert_int_equal(agent_parse_args(3, help, POLICY_AGENT_NONE, &c, err, sizeof(err)), 0);
	assert_true(c.help);
	agent_cmdline_fini(&c);
}

static void test_env_key(void **state)
{
	struct fixture *f = *state;
	setenv("ANTHROPIC_API_KEY", "sk-ant-api03-REALKEY", 1);
	char err[200];
	assert_int_equal(agent_creds_collect(agent_find("claude"), f->home, &f->s, &f->c,
					     err, sizeof(err)), 0);
	assert_int_equal(f->c.nenv, 1);
	assert_memory_equal(f->c.env[0], "ANTHROPIC_API_KEY=kvmbox-ph-", 28);
	assert_null(strstr(f->c.env[0], "REALKEY"));
	const char *ph = strchr(f->c.env[0], '=') + 1;
	struct secret *e = secrets_find(&f->s, ph, strlen(ph));
	assert_non_null(e);
	assert_string_equal(e->value, "sk-ant-api03-REALKEY");
	assert_true(secret_allows(e, "api.anthropic.com", 17));
	assert_false(secret_allows(e, "evil.example", 12));
	assert_null(f->c.oauth_json);		/* not logged in: no file */
}

static void test_oauth_file(void **state)
{
	struct fixture *f = *state;
	write_text(f->cred, "{\"claudeAiOauth\":{\"accessToken\":\"" REAL_ACCESS "\","
		   "\"refreshToken\":\"" REAL_REFRESH "\",\"expiresAt\":1767225600000,"
		   "\"scopes\":[\"user:inference\"]},\"other\":1}");
	char err[200];
	assert_int_equal(agent_creds_collect(agent_find("claude"), f->home, &f->s, &f->c,
					     err, sizeof(err)), 0);
	assert_non_null(f->c.oauth_json);
	assert_null(strstr(f->c.oauth_json, "REAL"));
	assert_non_null(strstr(f->c.oauth_json, f->c.access_ph));
	assert_non_null(strstr(f->c.oauth_json, f->c.refresh_ph));
	assert_non_null(strstr(f->c.oauth_json, "1767225600000"));
	assert_non_null(strstr(f->c.oauth_json, "\"other\":1"));
	assert_string_equal(f->c.oauth_cfg.provider, "claude");
	assert_string_equal(f->c.oauth_cfg.refresh_placeholder, f->c.refresh_ph);
	struct secret *r = secrets_find(&f->s, f->c.refresh_ph, strlen(f->c.refresh_ph));
	assert_string_equal(r->value, REAL_REFRESH);
	assert_true(secret_allows(r, "console.anthropic.com", 21));
	assert_false(secret_allows(r, "api.anthropic.com", 17));

	/* No rotation: the host file is left alone, even if it changed. */
	write_text(f->cred, "{\"claudeAiOauth\":{\"accessToken\":\"NEWLOGIN\",\"refreshToken\":\"NEWLOGIN2\"}}");
	assert_int_equal(agent_creds_writeback(&f->c, &f->s), 0);
	char *now = slurp(f->cred);
	assert_non_null(strstr(now, "NEWLOGIN2"));
	free(now);

	/* The proxy rotated, but the file holds a new login now: it stands
	 * (never half one login, half another), and the change is reported. */
	assert_int_equal(secret_set_value(r, "sk-ant-ort01-ROTATED", 20), 0);
	assert_int_equal(agent_creds_writeback(&f->c, &f->s), -ESTALE);
	now = slurp(f->cred);
	assert_null(strstr(now, "ROTATED"));
	free(now);
	assert_true(agent_creds_changed_elsewhere(&f->c));
}

/* Rotations reach the host file at once, 0600, each one; a file kvmbox
 * alone wrote is not reported as changed; another launch's refresh is
 * adopted before ours. */
static void test_rotation(void **state)
{
	struct fixture *f = *state;
	write_text(f->cred, "{\"claudeAiOauth\":{\"accessToken\":\"" REAL_ACCESS "\","
		   "\"refreshToken\":\"" REAL_REFRESH "\",\"expiresAt\":1}}");
	char err[200];
	assert_int_equal(agent_creds_collect(agent_find("claude"), f->home, &f->s, &f->c, err, sizeof(err)), 0);
	struct secret *a = secrets_find(&f->s, f->c.access_ph, strlen(f->c.access_ph));
	struct secret *r = secrets_find(&f->s, f->c.refresh_ph, strlen(f->c.refresh_ph));
	assert_int_equal(agent_creds_adopt(&f->c, &f->s), 0);	/* nothing newer */
	assert_int_equal(agent_creds_writeback(&f->c, &f->s), 0);
	for (int i = 1; i <= 2; i++) {
		char at[32], rt[32];
		snprintf(at, sizeof(at), "sk-ant-oat01-ROT%d", i);
		snprintf(rt, sizeof(rt), "sk-ant-ort01-ROT%d", i);
		assert_int_equal(secret_set_value(a, at, strlen(at)), 0);
		assert_int_equal(secret_set_value(r, rt, strlen(rt)), 0);
		agent_creds_refreshed(&f->c, 28800);
		assert_int_equal(agent_creds_writeback(&f->c, &f->s), 1);
		char *now = slurp(f->cred);
		assert_non_null(strstr(now, at));
		assert_non_null(strstr(now, rt));
		/* the expiry the refresh gave, as Claude Code writes it (ms) */
		char want[64];
		snprintf(want, sizeof(want), "\"expiresAt\":%lld", f->c.expires_at_ms);
		assert_non_null(strstr(now, want));
		assert_true(f->c.expires_at_ms > 1700000000000LL);
		assert_true(f->c.expires_at_ms - f->c.refreshed_at_ms == 28800000LL);
		free(now);
		struct stat st;
		assert_int_equal(stat(f->cred, &st), 0);
		assert_int_equal(st.st_mode & 0777, 0600);
	}
	assert_false(agent_creds_changed_elsewhere(&f->c));
	/* the refresh lock: a second launch waits for it, then gets it */
	struct agent_creds other;
	memset(&other, 0, sizeof(other));
	snprintf(other.oauth_host_path, sizeof(other.oauth_host_path), "%s", f->c.oauth_host_path);
	assert_int_equal(agent_creds_lock(&f->c, 0), 0);
	assert_int_equal(agent_creds_lock(&f->c, 0), 0);	/* held already */
	assert_int_equal(agent_creds_lock(&other, 30), -ETIMEDOUT);
	char lockpath[sizeof(f->c.oauth_host_path) + 16];
	snprintf(lockpath, sizeof(lockpath), "%s.kvmbox-lock", f->c.oauth_host_path);
	struct stat lst;
	assert_int_equal(lstat(lockpath, &lst), 0);
	assert_int_equal(lst.st_mode & 0777, 0600);
	agent_creds_unlock(&f->c);
	agent_creds_unlock(&f->c);	/* not held: nothing */
	assert_int_equal(agent_creds_lock(&other, 0), 0);
	agent_creds_unlock(&other);
	/* never through a link planted where the lock file goes */
	assert_int_equal(unlink(lockpath), 0);
	assert_int_equal(symlink(f->cred, lockpath), 0);
	assert_int_equal(agent_creds_lock(&other, 0), -ELOOP);
	assert_int_equal(unlink(lockpath), 0);
	/* another launch refreshed: its tokens are taken before our refresh */
	write_text(f->cred, "{\"claudeAiOauth\":{\"accessToken\":\"sk-ant-oat01-OTHER\","
		   "\"refreshToken\":\"sk-ant-ort01-OTHER\",\"expiresAt\":2}}");
	assert_int_equal(agent_creds_adopt(&f->c, &f->s), 1);
	assert_string_equal(a->value, "sk-ant-oat01-OTHER");
	assert_string_equal(r->value, "sk-ant-ort01-OTHER");
	assert_int_equal(agent_creds_adopt(&f->c, &f->s), 0);
	assert_int_equal(secret_set_value(r, "sk-ant-ort01-AFTER", 18), 0);
	assert_int_equal(agent_creds_writeback(&f->c, &f->s), 1);
	char *now = slurp(f->cred);
	assert_non_null(strstr(now, "sk-ant-ort01-AFTER"));
	free(now);
}

/* Codex: an API-key login (tokens null), and a ChatGPT login whose
 * id_token reaches the guest unsigned (same claims, no real signature). */
static void test_codex_files(void **state)
{
	struct fixture *f = *state;
	char dir[200], path[220], err[200];
	snprintf(dir, sizeof(dir), "%s/.codex", f->home);
	mkdir(dir, 0700);
	snprintf(path, sizeof(path), "%s/auth.json", dir);
	write_text(path, "{\"OPENAI_API_KEY\":\"sk-proj-REALKEY\",\"tokens\":null,\"last_refresh\":null}");
	assert_int_equal(agent_creds_collect(agent_find("codex"), f->home, &f->s, &f->c, err, sizeof(err)), 0);
	assert_non_null(f->c.oauth_json);
	assert_null(strstr(f->c.oauth_json, "REALKEY"));
	assert_non_null(strstr(f->c.oauth_json, "\"OPENAI_API_KEY\":\"kvmbox-ph-"));
	assert_non_null(strstr(f->c.oauth_json, "\"tokens\":null"));
	assert_string_equal(f->c.oauth_cfg.provider, "");	/* nothing to refresh */
	const char *ph = strstr(f->c.oauth_json, "kvmbox-ph-");
	struct secret *k = secrets_find(&f->s, ph, 42);
	assert_non_null(k);
	assert_string_equal(k->value, "sk-proj-REALKEY");
	assert_true(secret_allows(k, "api.openai.com", 14));
	assert_false(secret_allows(k, "chatgpt.com", 11));
	assert_int_equal(agent_creds_writeback(&f->c, &f->s), 0);
	agent_creds_fini(&f->c);

	/* header {"alg":"RS256"}, claims {"email":"a@b"}, signature REALSIG */
	write_text(path, "{\"OPENAI_API_KEY\":null,\"tokens\":{\"id_token\":"
		   "\"eyJhbGciOiJSUzI1NiJ9.eyJlbWFpbCI6ImFAYiJ9.UkVBTFNJRw\",\"access_token\":\"REALAT\","
		   "\"refresh_token\":\"REALRT\",\"account_id\":\"acc\"}}");
	assert_int_equal(agent_creds_collect(agent_find("codex"), f->home, &f->s, &f->c, err, sizeof(err)), 0);
	assert_non_null(strstr(f->c.oauth_json, "\"id_token\":\"eyJhbGciOiJSUzI1NiJ9.eyJlbWFpbCI6ImFAYiJ9."));
	assert_null(strstr(f->c.oauth_json, "UkVBTFNJRw"));
	assert_null(strstr(f->c.oauth_json, "REALAT"));
	assert_null(strstr(f->c.oauth_json, "REALRT"));
	assert_string_equal(f->c.oauth_cfg.provider, "codex");
	/* a refresh: the host file gets the tokens and Codex's last_refresh */
	struct secret *ca = secrets_find(&f->s, f->c.access_ph, strlen(f->c.access_ph));
	assert_int_equal(secret_set_value(ca, "REALAT2", 7), 0);
	agent_creds_refreshed(&f->c, -1);
	assert_int_equal(agent_creds_writeback(&f->c, &f->s), 1);
	char *now = slurp(path);
	assert_non_null(strstr(now, "\"REALAT2\""));
	const char *lr = strstr(now, "\"last_refresh\":\"20");
	assert_non_null(lr);
	assert_int_equal(strlen("\"last_refresh\":\"2026-12-04T17:00:00.000Z\""),
			 strchr(lr + 16, '"') + 1 - lr);
	assert_null(strstr(now, "expiresAt"));
	free(now);
	agent_creds_fini(&f->c);

	/* an id_token that is not a JWT, or no tokens and no key: refused */
	static const char *const bad[] = {
		"{\"tokens\":{\"id_token\":\"not-a-jwt\",\"access_token\":\"REALAT\"}}",
		"{\"tokens\":{\"id_token\":\"e30.e30.x.y\",\"access_token\":\"REALAT\"}}",
		"{\"tokens\":{\"id_token\":\"W10.e30.x\",\"access_token\":\"REALAT\"}}",
		"{\"OPENAI_API_KEY\":null,\"tokens\":null}",
		"{\"OPENAI_API_KEY\":5,\"tokens\":null}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		write_text(path, bad[i]);
		err[0] = 0;
		assert_int_equal(agent_creds_collect(agent_find("codex"), f->home, &f->s, &f->c, err, sizeof(err)),
				 -EINVAL);
		assert_null(strstr(err, "REAL"));
		assert_true(strlen(err) > 0);
		agent_creds_fini(&f->c);
	}
}

static void test_bad_file(void **state)
{
	struct fixture *f = *state;
	char err[200];
	write_text(f->cred, "{\"claudeAiOauth\":{\"accessToken\":\"" REAL_ACCESS "\"");
	assert_int_equal(agent_creds_collect(agent_find("claude"), f->home, &f->s, &f->c,
					     err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, ".credentials.json"));
	assert_null(strstr(err, "REAL"));
	agent_creds_fini(&f->c);
	write_text(f->cred, "{\"claudeAiOauth\":{\"refreshToken\":\"" REAL_REFRESH "\"}}");
	assert_int_equal(agent_creds_collect(agent_find("claude"), f->home, &f->s, &f->c,
					     err, sizeof(err)), -EINVAL);
	assert_null(strstr(err, "REAL"));
}

/* opencode's auth.json: each known provider's values become placeholders
 * bound to that provider's hosts; the first OAuth login is refreshed by
 * kvmbox, another keeps its access token only; unknown providers and
 * kinds are left out, and named. */
static void test_opencode_file(void **state)
{
	struct fixture *f = *state;
	char dir[200], path[260], err[200];
	snprintf(dir, sizeof(dir), "%s/.local", f->home);
	mkdir(dir, 0700);
	snprintf(dir, sizeof(dir), "%s/.local/share", f->home);
	mkdir(dir, 0700);
	snprintf(dir, sizeof(dir), "%s/.local/share/opencode", f->home);
	mkdir(dir, 0700);
	snprintf(path, sizeof(path), "%s/auth.json", dir);
	write_text(path, "{\"anthropic\":{\"type\":\"oauth\",\"access\":\"REAL-A-ACCESS\",\"refresh\":\"REAL-A-REFRESH\","
		   "\"expires\":1},\"openai\":{\"type\":\"oauth\",\"access\":\"REAL-O-ACCESS\",\"refresh\":\"REAL-O-REFRESH\"},"
		   "\"openrouter\":{\"type\":\"api\",\"key\":\"REAL-OR-KEY\"},"
		   "\"github-copilot\":{\"type\":\"oauth\",\"access\":\"REAL-GH\",\"refresh\":\"REAL-GH2\"},"
		   "\"xai\":{\"type\":\"wellknown\",\"key\":\"REAL-WK\",\"token\":\"REAL-WK2\"},\"google\":\"REAL-STR\"}");
	assert_int_equal(agent_creds_collect(agent_find("opencode"), f->home, &f->s, &f->c, err, sizeof(err)), 0);
	assert_non_null(f->c.oauth_json);
	assert_null(strstr(f->c.oauth_json, "REAL"));
	assert_null(strstr(f->c.oauth_json, "github-copilot"));
	assert_null(strstr(f->c.oauth_json, "xai"));
	assert_non_null(strstr(f->c.oauth_json, "\"openrouter\":{\"type\":\"api\",\"key\":\"kvmbox-ph-"));
	assert_non_null(strstr(f->c.oauth_json, "\"expires\":1"));
	assert_string_equal(f->c.dropped, "github-copilot, xai, google");
	/* anthropic: refreshed by kvmbox as Claude's; openai: access only */
	assert_string_equal(f->c.oauth_cfg.provider, "claude");
	struct secret *r = secrets_find(&f->s, f->c.refresh_ph, strlen(f->c.refresh_ph));
	assert_string_equal(r->value, "REAL-A-REFRESH");
	assert_true(secret_allows(r, "console.anthropic.com", 21));
	assert_false(secret_allows(r, "api.anthropic.com", 17));
	const char *o = strstr(f->c.oauth_json, "\"openai\":");
	assert_non_null(o);
	assert_null(strstr(o, "\"refresh\""));
	/* rotation is written back into the anthropic entry */
	assert_int_equal(secret_set_value(r, "ROTATED-R", 9), 0);
	assert_int_equal(agent_creds_writeback(&f->c, &f->s), 1);
	char *now = slurp(path);
	assert_non_null(strstr(now, "ROTATED-R"));
	assert_non_null(strstr(now, "REAL-GH"));	/* the host's own file keeps every entry */
	free(now);
	agent_creds_fini(&f->c);
	/* not an object at all */
	write_text(path, "[1]");
	assert_int_equal(agent_creds_collect(agent_find("opencode"), f->home, &f->s, &f->c, err, sizeof(err)), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_profiles),
		cmocka_unit_test(test_cmdline_split),
		cmocka_unit_test_setup_teardown(test_env_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keyed_placeholders, setup, teardown),
		cmocka_unit_test_setup_teardown(test_oauth_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rotation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_codex_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_opencode_file, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
