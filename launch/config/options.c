/* launch/config/options.c - the options of an agent launch a file or a
 * knob may set, declared once (config.h): the table the files are read
 * against, the flag words they become, `kvmbox AGENT --help` and `kvmbox
 * config` all come from it.  A new option is a row here and, when it is a
 * new flag, a case in the parser that judges its value.
 *
 * The project column is the security decision: NEVER for whatever widens
 * what the guest reaches or names a host resource (an image to pull, a
 * secret, a repository GitHub writes may go to, a port, a CA); the rest
 * only in the direction that tightens.
 */
#include "launch/config/config.h"

#include <string.h>

const struct config_option config_options[] = {
	{ "image", "--image", NULL, "KVMBOX_IMAGE", "NAME|REF", "default", CONFIG_TEXT,
	  CONFIG_PROJECT_NEVER, "guest image (kvmbox setup makes default)" },
	{ "memory", "--memory", NULL, "KVMBOX_MEMORY", "SIZE", "2048", CONFIG_NUMBER,
	  CONFIG_PROJECT_LOWER, "guest memory: MiB, or 4G, 2048M" },
	{ "cpus", "--cpus", NULL, "KVMBOX_CPUS", "N", "2", CONFIG_NUMBER, CONFIG_PROJECT_LOWER,
	  "virtual CPUs" },
	{ "egress_profile", "--egress-profile", NULL, "KVMBOX_EGRESS_PROFILE", "PROFILE", "permissive",
	  CONFIG_TEXT, CONFIG_PROJECT_NARROW,
	  "permissive (every public address), standard (the agent's\n"
	  "                         provider, GitHub, package registries) or locked (the\n"
	  "                         provider only)" },
	{ "allow_domain", "--allow-domain", NULL, NULL, "NAME", NULL, CONFIG_LIST, CONFIG_PROJECT_NEVER,
	  "with standard or locked: NAME and its subdomains too\n"
	  "                         (*.NAME: its subdomains only)" },
	{ "allow_egress", "--allow-egress", NULL, NULL, "IP|CIDR", NULL, CONFIG_LIST,
	  CONFIG_PROJECT_NEVER, "addresses the guest may reach whatever their group" },
	{ "allow_lan", "--allow-lan", NULL, NULL, NULL, "false", CONFIG_BOOL, CONFIG_PROJECT_OFF,
	  "private networks (RFC 1918, ULA...)" },
	{ "allow_host", "--allow-host", NULL, NULL, NULL, "false", CONFIG_BOOL, CONFIG_PROJECT_OFF,
	  "the gateway address reaches the host's 127.0.0.1" },
	{ "auto_publish", "--auto-publish", NULL, NULL, NULL, "false", CONFIG_BOOL, CONFIG_PROJECT_OFF,
	  "the guest's TCP listeners appear on the host's 127.0.0.1" },
	{ "publish", "--publish", NULL, NULL, "[ADDR:]HOSTPORT:GUESTPORT[/udp]", NULL, CONFIG_LIST,
	  CONFIG_PROJECT_NEVER, "a guest port on the host" },
	{ "proxy", "--proxy", "--no-proxy", NULL, NULL, "true", CONFIG_BOOL, CONFIG_PROJECT_ON,
	  "the TLS proxy: placeholder credentials swapped on the wire\n"
	  "                         (off: no credentials for the guest, no name checks)" },
	{ "repos", "--repo", NULL, NULL, "OWNER/NAME", NULL, CONFIG_LIST, CONFIG_PROJECT_NEVER,
	  "more repositories GitHub writes may go to" },
	{ "secrets", "--secret", NULL, NULL, "PLACEHOLDER=env:VAR@HOST[,HOST...]", NULL, CONFIG_LIST,
	  CONFIG_PROJECT_NEVER, "a host secret the guest sees as PLACEHOLDER, sent to HOSTs only" },
	{ "upstream_ca", "--upstream-ca", NULL, NULL, "FILE", NULL, CONFIG_TEXT, CONFIG_PROJECT_NEVER,
	  "trust FILE instead of the system's CAs upstream" },
	{ "review", "--review", "--no-review", NULL, NULL, "false", CONFIG_BOOL, CONFIG_PROJECT_ON,
	  "the agent works on a copy of the project; after it, each change is\n"
	  "                         shown as a diff and applied only on a yes (kvmbox review)" },
	{ "exclude", "--exclude", NULL, NULL, "PATTERN", NULL, CONFIG_LIST, CONFIG_PROJECT_ADD,
	  "with --review: paths left out of the copy (gitignore syntax,\n"
	  "                         as in the project's .kvmboxignore)" },
	{ "self_test", "--self-test", "--no-self-test", NULL, NULL, "true", CONFIG_BOOL, CONFIG_PROJECT_ON,
	  "before the agent, the guest proves the launch's promises (the\n"
	  "                         metadata address and the host refused by the policy,\n"
	  "                         placeholders substituted toward their own hosts only, a\n"
	  "                         push off the GitHub allow-list refused, the proxy's CA\n"
	  "                         trusted by OpenSSL, Node.js and git) and a failure stops\n"
	  "                         the launch" },
	{ "git", NULL, "--no-git", NULL, NULL, "true", CONFIG_BOOL, CONFIG_PROJECT_OFF,
	  "git and GitHub wiring: GitHub writes may go to the repositories\n"
	  "                         the project's remotes name (and --repo), with GH_TOKEN,\n"
	  "                         GITHUB_TOKEN or `gh auth token` as a placeholder" },
	{ "state", NULL, "--no-state", NULL, NULL, "true", CONFIG_BOOL, CONFIG_PROJECT_OFF,
	  "keep the agent's settings, history and conversations per\n"
	  "                         project (under $XDG_STATE_HOME/kvmbox/projects/)" },
	{ "detach_keys", "--detach-keys", NULL, "KVMBOX_DETACH_KEYS", "KEY,KEY", "ctrl-],d", CONFIG_TEXT,
	  CONFIG_PROJECT_NEVER, "the two keys that detach the terminal from the sandbox (it\n"
	  "                         runs on: kvmbox attach NAME); ctrl-X or a character" },
	{ "template", "--template", "--no-template", "KVMBOX_TEMPLATE", NULL, "false", CONFIG_BOOL,
	  CONFIG_PROJECT_OFF, "start from this configuration's booted template (made in the\n"
	  "                         background by the first launch) instead of a boot" },
	{ "hook", NULL, "--no-hook", NULL, NULL, "true", CONFIG_BOOL, CONFIG_PROJECT_OFF,
	  "run the project's executable .kvmbox.runtime.sh in the guest\n"
	  "                         before the agent (its failure stops the launch)" },
};
const unsigned config_noptions = sizeof(config_options) / sizeof(config_options[0]);

const struct config_option *config_option_find(const char *key)
{
	for (unsigned i = 0; i < config_noptions; i++)
		if (!strcmp(config_options[i].key, key))
			return &config_options[i];
	return NULL;
}

const char *config_source_name(enum config_source s)
{
	static const char *const names[] = { "default", "global", "project", "env", "flag" };
	return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "?";
}

void config_print_help(FILE *f)
{
	fprintf(f, "Options a configuration file or knob may also set:\n");
	for (unsigned i = 0; i < config_noptions; i++) {
		const struct config_option *o = &config_options[i];
		char left[64];
		if (o->type == CONFIG_BOOL)
			snprintf(left, sizeof(left), "%s%s%s", o->flag ? o->flag : "",
				 o->flag && o->no_flag ? ", " : "", o->no_flag ? o->no_flag : "");
		else
			snprintf(left, sizeof(left), "%s %s", o->flag, o->arg);
		if (strlen(left) > 22)
			fprintf(f, "  %s\n  %-22s %s\n", left, "", o->help);
		else
			fprintf(f, "  %-22s %s\n", left, o->help);
		fprintf(f, "  %-22s config: %s%s%s%s%s\n", "", o->key, o->env ? ", env: " : "",
			o->env ? o->env : "", o->dflt ? ", default: " : "", o->dflt ? o->dflt : "");
	}
	fprintf(f, "Files: ~/.config/kvmbox/config.json (or $XDG_CONFIG_HOME), then the project's\n"
		   ".kvmbox.json, which may only tighten; then the env knobs; flags win.\n"
		   "kvmbox config shows the result for a project, with each value's source.\n");
}
