/* vmm/cli/cmd_net_serve.c - `kvmbox net-serve` (not built yet). */
#include <stdio.h>

#include "vmm/cli/cli.h"

int cmd_net_serve(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "kvmbox: net-serve: not implemented yet\n");
	return EXIT_USAGE;
}
