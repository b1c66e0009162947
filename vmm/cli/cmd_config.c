/* vmm/cli/cmd_config.c - `kvmbox config [--project DIR] [FLAGS...]`: the
 * configuration an agent launch in that project would have, as JSON with
 * the source of each value (launch/config/config.h), without starting
 * anything.  FLAGS are an agent launch's own, to see what they change;
 * they are judged by the same parser as at launch, so a bad value is the
 * same one-line usage error (exit 2).  No secret's value is read.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "launch/config/config.h"
#include "vmm/cli/agent.h"
#include "vmm/cli/cli.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: kvmbox config [--project DIR] [FLAGS of kvmbox claude...]\n"
		   "Print the configuration an agent launch in DIR (default: here) would use,\n"
		   "as JSON: each option's value and where it came from (default, global,\n"
		   "project, env, flag), the files read, and what the project file asked for\n"
		   "and was refused.  Nothing is started.\n\n");
	config_print_help(f);
}

int cmd_config(int argc, char **argv)
{
	for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		}
	struct config cfg;
	char **all = NULL, err[256];
	int n, status = EXIT_USAGE;
	if (agent_config_argv(argv[0], argc, argv, &cfg, &all, &n) < 0)
		goto out;
	struct agent_cmdline c;
	int r = agent_parse_args(n, all, POLICY_AGENT_NONE, &c, err, sizeof(err));
	if (r < 0)
		log_err("%s: %s (try kvmbox config --help)", argv[0], err);
	else if (c.nagent)
		log_err("%s: unknown option %s (try kvmbox config --help)", argv[0], c.agent_args[0]);
	else
		status = config_print_json(&cfg, argv + 1, argc - 1, stdout) < 0 ? 1 : 0;
	agent_cmdline_fini(&c);
out:
	config_fini(&cfg);
	free(all);
	return status;
}
