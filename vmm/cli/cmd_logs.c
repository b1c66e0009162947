/* vmm/cli/cmd_logs.c - `kvmbox logs --denials [--project DIR]`: the
 * project's record of what the egress policy refused in its launches
 * (launch/denials.h), oldest first.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "launch/denials.h"
#include "vmm/cli/cli.h"
#include "vmm/cli/net_args.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: kvmbox logs --denials [--project DIR]\n"
		   "Print what the egress policy refused in the agent launches on DIR (default:\n"
		   "here), oldest first: a line per launch, then each refusal with its count\n"
		   "and what would allow it (the summary at exit is cut to one line; this is\n"
		   "the whole of it).\n");
}

int cmd_logs(int argc, char **argv)
{
	const char *project = ".", *v;
	bool denials = false;
	for (int i = 1; i < argc; i++) {
		int t = cli_take_value(argc, argv, &i, "--project", &v);
		if (t > 0) {
			project = v;
		} else if (t == 0 && !strcmp(argv[i], "--denials")) {
			denials = true;
		} else if (t == 0 && (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))) {
			usage(stdout);
			return 0;
		} else {
			log_err("logs: %s %s (try kvmbox logs --help)",
				t < 0 ? "a value is missing for" : "unknown option", argv[i]);
			return EXIT_USAGE;
		}
	}
	if (!denials) {
		log_err("logs: say which: --denials (try kvmbox logs --help)");
		return EXIT_USAGE;
	}
	char real[PATH_MAX];
	if (!realpath(project, real)) {
		log_err("logs: project folder %s: %s", project, strerror(errno));
		return EXIT_USAGE;
	}
	int r = denials_print(real, stdout);
	if (r == -ENOENT) {
		log_err("logs: no launch on %s has recorded refusals yet", real);
		return 1;
	}
	if (r < 0 || fflush(stdout) != 0) {
		log_err("logs: %s", strerror(r < 0 ? -r : errno));
		return 1;
	}
	return 0;
}
