/* vmm/cli/cmd_images.c - `kvmbox images` (not built yet). */
#include <stdio.h>

#include "vmm/cli/cli.h"

int cmd_images(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "kvmbox: images: not implemented yet\n");
	return EXIT_USAGE;
}
