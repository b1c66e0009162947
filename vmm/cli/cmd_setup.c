/* vmm/cli/cmd_setup.c - `kvmbox setup` (not built yet). */
#include <stdio.h>

#include "vmm/cli/cli.h"

int cmd_setup(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "kvmbox: setup: not implemented yet\n");
	return EXIT_USAGE;
}
