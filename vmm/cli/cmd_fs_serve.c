/* vmm/cli/cmd_fs_serve.c - `kvmbox fs-serve` (not built yet). */
#include <stdio.h>

#include "vmm/cli/cli.h"

int cmd_fs_serve(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "kvmbox: fs-serve: not implemented yet\n");
	return EXIT_USAGE;
}
