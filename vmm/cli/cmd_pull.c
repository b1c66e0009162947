/* vmm/cli/cmd_pull.c - `kvmbox pull` (not built yet). */
#include <stdio.h>

#include "vmm/cli/cli.h"

int cmd_pull(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "kvmbox: pull: not implemented yet\n");
	return EXIT_USAGE;
}
