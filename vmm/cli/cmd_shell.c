/* vmm/cli/cmd_shell.c - `kvmbox shell` (not built yet). */
#include <stdio.h>

#include "vmm/cli/cli.h"

int cmd_shell(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "kvmbox: shell: not implemented yet\n");
	return EXIT_USAGE;
}
