/* vmm/cli/cmd_doctor.c - `kvmbox doctor` (not built yet). */
#include <stdio.h>

#include "vmm/cli/cli.h"

int cmd_doctor(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "kvmbox: doctor: not implemented yet\n");
	return EXIT_USAGE;
}
