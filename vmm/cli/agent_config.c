/* vmm/cli/agent_config.c - the configuration files (launch/config) put
 * before an agent launch's command line, judged by its own parser.
 *
 * A file's value becomes the flag words the user could have typed, placed
 * before the user's words: the one parser of kvmbox's flags
 * (agent_parse_args, and through it kvmbox shell's) judges it exactly as
 * if typed, and what the user types later replaces it (a list grows).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "launch/config/config.h"
#include "vmm/cli/agent.h"
#include "vmm/cli/cli.h"
#include "vmm/cli/net_args.h"
#include "vmm/cli/run.h"

int agent_config_check(const struct config_option *o, const char *value, uint64_t *num, char *err,
		       size_t errsz)
{
	char *argv[] = { "config", (char *)o->flag, (char *)value, NULL };
	struct agent_cmdline c;
	int r = agent_parse_args(3, argv, POLICY_AGENT_NONE, &c, err, errsz);
	if (r == 0 && c.nagent)	/* not one of kvmbox's flags: a bug in the table */
		snprintf(err, errsz, "%s is not a flag of kvmbox's", o->flag), r = -EINVAL;
	agent_cmdline_fini(&c);
	if (r < 0 || o->type != CONFIG_NUMBER)
		return r;
	if (!strcmp(o->flag, "--memory"))
		return cli_parse_mib(value, num);
	return cli_parse_uint(value, 0, UINT32_MAX, num);
}

const char *agent_project_arg(int argc, char **argv)
{
	const char *project = ".";
	for (int i = 1; i < argc && strcmp(argv[i], "--"); i++) {
		const char *v;
		if (cli_take_value(argc, argv, &i, "--project", &v) > 0)
			project = v;
	}
	return project;
}

int agent_config_argv(const char *cmd, int argc, char **argv, struct config *cfg, char ***out, int *outc)
{
	char real[PATH_MAX], err[512];
	const char *project = agent_project_arg(argc, argv);
	/* a project folder that does not resolve is the parser's to report */
	int r = config_load(cfg, realpath(project, real) ? real : NULL, agent_config_check, err, sizeof(err));
	if (r < 0) {
		log_err("%s: %s", cmd, err);
		return r;
	}
	if (cfg->nrefused) {
		char line[1024];
		config_refused_line(cfg, line, sizeof(line));
		log_warn("%s: %s may only tighten the sandbox; not taken from it: %s", cmd,
			 cfg->project_path, line);
	}
	int cap = 4 * CONFIG_MAX_LIST * 2 + 64;
	const char **words = calloc((size_t)cap, sizeof(*words));
	int n = words ? config_words(cfg, words, cap) : -ENOMEM;
	if (n >= 0) {	/* a custom agent's own image and egress names, after the options */
		int k = agent_custom_words(cfg, cmd, words + n, cap - n);
		n = k < 0 ? k : n + k;
	}
	char **v = n >= 0 ? calloc((size_t)(argc + n + 1), sizeof(*v)) : NULL;
	if (!v) {
		log_err("%s: %s", cmd, n == -E2BIG ? "too many configured values" : "out of memory");
		free(words);
		return n < 0 ? n : -ENOMEM;
	}
	v[0] = argv[0];
	for (int k = 0; k < n; k++)
		v[1 + k] = (char *)words[k];
	for (int k = 1; k < argc; k++)
		v[n + k] = argv[k];
	free(words);
	*out = v;
	*outc = argc + n;
	return 0;
}
