/* vmm/cli/cmd_proxy.c - `kvmbox proxy` (not built yet). */
#include <stdio.h>

#include "vmm/cli/cli.h"

int cmd_proxy(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "kvmbox: proxy: not implemented yet\n");
	return EXIT_USAGE;
}
