/* firmware/tests/fault.c - prints one line, then executes ud2 at CPL 3.
 * With no IDT the #UD escalates to a triple fault: kvmbox must report it
 * and exit 1.  With status=N on the command line it first writes exit
 * status N to the marker port: a triple fault then resets the machine as
 * the i8042 would, and kvmbox exits N (the guest's last word counts). */
#include "guest.h"

int guest_main(const struct hvm_start_info *si)
{
	int status = cmdline_int(guest_cmdline(si), "status", -1);
	if (status >= 0)
		outl(KBX_MARKER_PORT, KBX_MARKER_EXIT_BASE | ((unsigned)status & 0xff));
	serial_puts("about to fault\n");
	__asm__ volatile("ud2");
	return 0;
}
