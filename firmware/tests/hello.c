/* firmware/tests/hello.c - prints a greeting and its command line over the
 * serial port from CPL 3, then exits with the status given as exit=N on the
 * command line (0 by default). */
#include "guest.h"

int guest_main(const struct hvm_start_info *si)
{
	const char *cmdline = guest_cmdline(si);
	serial_puts("hello from a tiny guest at CPL 3\n");
	serial_puts("cmdline: ");
	serial_puts(cmdline);
	serial_puts("\n");
	return cmdline_int(cmdline, "exit", 0);
}
