/* vmm/cli/cmd_run.c - `kvmbox run` (not built yet). */
#include <stdio.h>

#include "vmm/cli/cli.h"

int cmd_run(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "kvmbox: run: not implemented yet\n");
	return EXIT_USAGE;
}
