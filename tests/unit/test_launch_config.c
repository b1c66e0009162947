/* tests/unit/test_launch_config.c - the configuration files as a matrix:
 * every option of the table set by the global file, then by the project
 * file in the direction that tightens (kept) and the one that widens
 * (refused, the global value standing), the knobs above the files and the
 * flags above everything; the files' strictness (unknown keys, wrong
 * types, values the flag parser refuses, links, trailing bytes). */
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

#include "launch/config/config.h"
#include "vmm/cli/agent.h"

static char root[256], home_cfg[320], project[300], project_cfg[340];

static void put(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int setup(void **state)
{
	(void)state;
	snprintf(root, sizeof(root), "/tmp/kvmbox-config-XXXXXX");
	assert_non_null(mkdtemp(root));
	char d[300];
	snprintf(d, sizeof(d), "%s/cfg", root);
	mkdir(d, 0700);
	snprintf(d, sizeof(d), "%s/cfg/kvmbox", root);
	mkdir(d, 0700);
	snprintf(home_cfg, sizeof(home_cfg), "%s/config.json", d);
	snprintf(project, sizeof(project), "%s/proj", root);
	mkdir(project, 0700);
	snprintf(project_cfg, sizeof(project_cfg), "%s/.kvmbox.json", project);
	snprintf(d, sizeof(d), "%s/cfg", root);
	setenv("XDG_CONFIG_HOME", d, 1);
	for (unsigned i = 0; i < config_noptions; i++)
		if (config_options[i].env)
			unsetenv(config_options[i].env);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(home_cfg);
	unlink(project_cfg);
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	assert_int_equal(system(cmd), 0);
	return 0;
}

/* Load with the real flag parser: 0 or the error. */
static int load(struct config *c, char *err)
{
	return config_load(c, project, agent_config_check, err, 300);
}

static const struct config_setting *get(const struct config *c, const char *key)
{
	const struct config_option *o = config_option_find(key);
	assert_non_null(o);
	return &c->set[o - config_options];
}

static bool refused(const struct config *c, const char *key)
{
	for (unsigned i = 0; i < c->nrefused; i++)
		if (!strcmp(c->refused_key[i], key))
			return true;
	return false;
}

/* Per option, as JSON: a value for the global file, one for the project
 * file that tightens it (NULL: none can), and one that widens what the
 * global file's wider_over set (NULL: no global file) (NULL: none can). */
static const struct row {
	const char *key, *global, *tighter, *wider, *wider_over;
} rows[] = {
	{ "image", "\"img-a\"", NULL, "\"evil/img\"", NULL },
	{ "memory", "\"4G\"", "1024", "\"8G\"", "4096" },
	{ "cpus", "4", "\"1\"", "8", "\"4\"" },
	{ "egress_profile", "\"standard\"", "\"locked\"", "\"permissive\"", "\"standard\"" },
	{ "allow_domain", "[\"a.example\"]", NULL, "[\"b.example\", \"c.example\"]", NULL },
	{ "allow_egress", "\"192.0.2.1\"", NULL, "[\"10.0.0.0/8\"]", NULL },
	{ "allow_lan", "true", "false", "true", NULL },
	{ "allow_host", "true", "false", "true", NULL },
	{ "auto_publish", "true", "false", "true", NULL },
	{ "publish", "[\"8080:80\"]", NULL, "[\"9090:90\"]", NULL },
	{ "proxy", "false", "true", "false", NULL },
	{ "repos", "[\"a/b\"]", NULL, "[\"evil/x\"]", NULL },
	{ "secrets", "[\"kvmbox-ph-abcd=env:X@h.example\"]", NULL, "[\"kvmbox-ph-efgh=env:HOME@evil.example\"]", NULL },
	{ "upstream_ca", "\"/etc/ssl/a.pem\"", NULL, "\"/tmp/evil.pem\"", NULL },
	{ "review", "false", "true", "false", "true" },
	{ "exclude", "[\"*.log\"]", "[\"build/\"]", NULL, NULL },
	{ "self_test", "false", "true", "false", "true" },
	{ "git", "false", NULL, NULL, NULL },
	{ "state", "true", "false", NULL, NULL },
	{ "detach_keys", "\"ctrl-p,q\"", NULL, "\"ctrl-a,x\"", NULL },
	{ "template", "true", "false", "true", NULL },
	{ "hook", "true", "false", NULL, NULL },
};

static void test_every_option_is_in_the_matrix(void **state)
{
	(void)state;
	assert_int_equal(sizeof(rows) / sizeof(rows[0]), config_noptions);
	for (unsigned i = 0; i < config_noptions; i++) {
		assert_string_equal(rows[i].key, config_options[i].key);
		/* whatever widens egress or names a host resource: never from a
		 * project; the one list a project may add to tightens */
		if (config_options[i].type == CONFIG_LIST && strcmp(rows[i].key, "exclude"))
			assert_int_equal(config_options[i].project, CONFIG_PROJECT_NEVER);
	}
}

static void test_matrix(void **state)
{
	(void)state;
	char json[512], err[300];
	for (unsigned i = 0; i < config_noptions; i++) {
		const struct row *r = &rows[i];
		struct config c;
		/* the global file sets it */
		snprintf(json, sizeof(json), "{\"%s\": %s}", r->key, r->global);
		put(home_cfg, json);
		unlink(project_cfg);
		if (load(&c, err))
			fail_msg("%s global: %s", r->key, err);
		assert_int_equal(get(&c, r->key)->source, CONFIG_GLOBAL);
		assert_int_equal(c.nrefused, 0);
		config_fini(&c);
		/* the project file tightens it: kept */
		if (r->tighter) {
			snprintf(json, sizeof(json), "{\"%s\": %s}", r->key, r->tighter);
			put(project_cfg, json);
			if (load(&c, err))
				fail_msg("%s tighter: %s", r->key, err);
			if (get(&c, r->key)->source != CONFIG_PROJECT || c.nrefused)
				fail_msg("%s: the project's tighter %s was not taken", r->key, r->tighter);
			config_fini(&c);
		}
		/* the project file widens it: refused, named once, the rest kept */
		unlink(home_cfg);
		if (r->wider_over) {
			snprintf(json, sizeof(json), "{\"%s\": %s}", r->key, r->wider_over);
			put(home_cfg, json);
		}
		if (r->wider) {
			snprintf(json, sizeof(json), "{\"hook\": false, \"%s\": %s}", r->key, r->wider);
			put(project_cfg, json);
			if (load(&c, err))
				fail_msg("%s wider: %s", r->key, err);
			if (!refused(&c, r->key) || c.nrefused != 1)
				fail_msg("%s: the project's wider %s was not refused", r->key, r->wider);
			assert_int_equal(get(&c, r->key)->source, r->wider_over ? CONFIG_GLOBAL : CONFIG_DEFAULT);
			if (strcmp(r->key, "hook"))
				assert_int_equal(get(&c, "hook")->source, CONFIG_PROJECT);
			const char *words[64];
			int n = config_words(&c, words, 64);
			for (int k = 0; k + 1 < n && !r->wider_over; k++)
				if (config_options[i].flag && !strcmp(words[k], config_options[i].flag))
					fail_msg("%s: a refused value became a flag", r->key);
			for (int k = 0; k + 1 < n; k++) {
				char quoted[300];
				snprintf(quoted, sizeof(quoted), "\"%s\"", words[k + 1]);
				if (strstr(r->wider, quoted) || !strcmp(words[k + 1], r->wider))
					fail_msg("%s: the refused %s became the flag words %s %s", r->key,
						 r->wider, words[k], words[k + 1]);
			}
			config_fini(&c);
		}
	}
}

static void test_strength(void **state)
{
	(void)state;
	char err[300];
	struct config c;
	put(home_cfg, "{\"memory\": \"4G\", \"allow_domain\": [\"a.example\"], \"proxy\": false}");
	put(project_cfg, "{\"memory\": 3072}");
	setenv("KVMBOX_MEMORY", "1G", 1);
	assert_int_equal(load(&c, err), 0);
	const struct config_setting *m = get(&c, "memory");
	assert_int_equal(m->source, CONFIG_ENV);
	assert_string_equal(m->text, "1G");
	unsetenv("KVMBOX_MEMORY");
	config_fini(&c);
	/* a switch's knob as users write it; anything else refused, not false */
	static const struct { const char *v, *want; } knobs[] = {
		{ "1", "true" }, { "yes", "true" }, { "ON", "true" }, { "true", "true" },
		{ "0", "false" }, { "no", "false" }, { "off", "false" }, { "False", "false" },
		{ "2", NULL }, { "enable", NULL }, { "true ", NULL },
	};
	for (unsigned k = 0; k < sizeof(knobs) / sizeof(knobs[0]); k++) {
		setenv("KVMBOX_TEMPLATE", knobs[k].v, 1);
		int r = load(&c, err);
		if (knobs[k].want) {
			assert_int_equal(r, 0);
			assert_int_equal(get(&c, "template")->source, CONFIG_ENV);
			assert_string_equal(get(&c, "template")->text, knobs[k].want);
		} else {
			assert_int_equal(r, -EINVAL);
			assert_string_equal(err, "KVMBOX_TEMPLATE: true or false (1, 0, yes, no, on, off)");
		}
		config_fini(&c);
	}
	unsetenv("KVMBOX_TEMPLATE");
	/* the flags come after the configured words: the parser takes the last */
	char *argv[] = { "claude", "--project", project, "--memory", "512", "--proxy", "--allow-domain",
			 "b.example", "-p", "hi" };
	char **all;
	int n;
	assert_int_equal(agent_config_argv("claude", 10, argv, &c, &all, &n), 0);
	struct agent_cmdline ac;
	assert_int_equal(agent_parse_args(n, all, POLICY_AGENT_NONE, &ac, err, sizeof(err)), 0);
	assert_true(ac.proxy);		/* the flag's --proxy after the file's --no-proxy */
	assert_int_equal(ac.ndomains, 2);
	assert_string_equal(ac.domains[0], "a.example");
	assert_string_equal(ac.domains[1], "b.example");
	int mem_at = -1;
	for (int k = 0; k < ac.nshell; k++)
		if (!strcmp(ac.shell_flags[k], "--memory"))
			mem_at = k;
	assert_true(mem_at >= 0);
	assert_string_equal(ac.shell_flags[mem_at + 1], "512");	/* the last --memory */
	assert_int_equal(ac.nagent, 2);	/* the agent's words untouched */
	agent_cmdline_fini(&ac);
	config_fini(&c);
	free(all);
}

static void test_strict_files(void **state)
{
	(void)state;
	static const struct { const char *text, *want; } bad[] = {
		{ "{\"memroy\": 1}", "unknown key \"memroy\"" },
		{ "{\"memory\": true}", "memory: want a number or a string" },
		{ "{\"memory\": \"lots\"}", "memory: --memory wants a size" },
		{ "{\"memory\": -1}", "memory: want a number or a string" },
		{ "{\"allow_domain\": [\"a b\"]}", "bad --allow-domain" },
		{ "{\"allow_domain\": [1]}", "want a list of strings" },
		{ "{\"egress_profile\": \"open\"}", "unknown --egress-profile" },
		{ "{\"allow_lan\": \"yes\"}", "want true or false" },
		{ "{\"memory\": \"4G\",}", "line 1" },
		{ "{\"memory\": \"4G\" /* x */}", "line 1" },
		{ "{\"a\": 1} {}", "" },
		{ "[1]", "not a JSON object" },
		{ "", "" },
		{ "\xef\xbb\xbf{}", "" },
	};
	char err[300];
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		put(home_cfg, bad[i].text);
		struct config c;
		err[0] = 0;
		if (load(&c, err) != -EINVAL)
			fail_msg("global file '%s' accepted", bad[i].text);
		if (!strstr(err, bad[i].want) || !strstr(err, home_cfg))
			fail_msg("'%s': %s", bad[i].text, err);
		config_fini(&c);
	}
	unlink(home_cfg);
	/* a project file through a link, or not a file: refused, not followed */
	assert_int_equal(symlink("/etc/hostname", project_cfg), 0);
	struct config c;
	assert_true(load(&c, err) < 0);
	assert_non_null(strstr(err, "symbolic link"));
	config_fini(&c);
	unlink(project_cfg);
	assert_int_equal(mkdir(project_cfg, 0700), 0);
	assert_true(load(&c, err) < 0);
	config_fini(&c);
	rmdir(project_cfg);
	/* no files at all: every option at its default */
	assert_int_equal(load(&c, err), 0);
	for (unsigned i = 0; i < config_noptions; i++)
		assert_int_equal(c.set[i].source, CONFIG_DEFAULT);
	const char *words[8];
	assert_int_equal(config_words(&c, words, 8), 0);
	config_fini(&c);
}

static void test_custom_agents(void **state)
{
	(void)state;
	char err[300];
	struct config c;
	put(home_cfg, "{\"agents\": {\"my-agent\": {\"command\": [\"aider\", \"--yes\"], \"image\": \"img-x\","
		      " \"env\": [\"KVMBOX_TEST_MODEL\", \"KVMBOX_TEST_UNSET\"],"
		      " \"secrets\": {\"KVMBOX_TEST_KEY\": [\"api.example.com\", \"*.example.org\"]},"
		      " \"egress\": [\"api.example.com\"]}}}");
	put(project_cfg, "{\"agents\": {\"evil\": {\"command\": [\"sh\"]}}}");
	setenv("KVMBOX_TEST_MODEL", "gpt-x", 1);
	unsetenv("KVMBOX_TEST_UNSET");
	assert_int_equal(load(&c, err), 0);
	assert_non_null(config_agent(&c, "my-agent"));
	assert_null(config_agent(&c, "evil"));			/* a project defines none */
	assert_true(refused(&c, "agents"));
	struct agent_custom ac;
	assert_int_equal(agent_custom_build(&c, "my-agent", &ac, err, sizeof(err)), 0);
	assert_string_equal(ac.p.argv[0], "aider");
	assert_string_equal(ac.p.argv[1], "--yes");
	assert_null(ac.p.argv[2]);
	assert_string_equal(ac.p.keys[0].env, "KVMBOX_TEST_KEY");
	assert_string_equal(ac.p.keys[0].hosts, "api.example.com,*.example.org");
	assert_string_equal(ac.p.keys[1].env, "GH_TOKEN");
	assert_string_equal(ac.p.env[0], "KVMBOX_TEST_MODEL=gpt-x");
	assert_null(ac.p.env[1]);					/* unset: not passed */
	assert_int_equal(ac.p.egress, POLICY_AGENT_NONE);
	agent_custom_fini(&ac);
	const char *w[8];
	assert_int_equal(agent_custom_words(&c, "my-agent", w, 8), 4);
	assert_string_equal(w[1], "img-x");
	assert_string_equal(w[3], "api.example.com");
	assert_int_equal(agent_custom_words(&c, "claude", w, 8), 0);
	config_fini(&c);
	unlink(project_cfg);
	static const struct { const char *text, *want; } bad[] = {
		{ "{\"agents\": {\"Bad\": {\"command\": [\"x\"]}}}", "its name" },
		{ "{\"agents\": {\"a\": {}}}", "command: missing" },
		{ "{\"agents\": {\"a\": {\"command\": []}}}", "command: want" },
		{ "{\"agents\": {\"a\": {\"command\": [\"x\"], \"env\": [\"A B\"]}}}", "env: want" },
		{ "{\"agents\": {\"a\": {\"command\": [\"x\"], \"secrets\": {\"K\": [\"a b\"]}}}}", "secrets: want" },
		{ "{\"agents\": {\"a\": {\"command\": [\"x\"], \"secrets\": {\"K\": []}}}}", "secrets: want" },
		{ "{\"agents\": {\"a\": {\"command\": [\"x\"], \"egress\": [\"a b\"]}}}", "egress: a name" },
		{ "{\"agents\": {\"a\": {\"command\": [\"x\"], \"shell\": true}}}", "an unknown member" },
		{ "{\"agents\": [1]}", "want an object" },
	};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		put(home_cfg, bad[i].text);
		if (load(&c, err) != -EINVAL || !strstr(err, bad[i].want))
			fail_msg("'%s': %s", bad[i].text, err);
		config_fini(&c);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_option_is_in_the_matrix),
		cmocka_unit_test_setup_teardown(test_matrix, setup, teardown),
		cmocka_unit_test_setup_teardown(test_strength, setup, teardown),
		cmocka_unit_test_setup_teardown(test_strict_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_custom_agents, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
