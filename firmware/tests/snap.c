/* firmware/tests/snap.c - a counter that asks to be saved: it prints
 * "before 1".."before 3", writes KBX_MARKER_SNAPSHOT, prints "after 4".."after
 * 6", and so on for rounds=N snapshot points (1 by default), then "done"
 * and exits with exit=N.  Run with --snapshot DIR, kvmbox saves it at the
 * first point and exits; restored, it goes on from there with its counter
 * (memory), its loop (registers) and its console (the UART) intact.  Run
 * without --snapshot, the points are ignored and it runs to the end. */
#include "guest.h"

static volatile unsigned counter;

int guest_main(const struct hvm_start_info *si)
{
	const char *cmdline = guest_cmdline(si);
	int status = cmdline_int(cmdline, "exit", 0);
	int rounds = cmdline_int(cmdline, "rounds", 1);
	for (int r = 0; r <= rounds; r++) {
		for (int i = 0; i < 3; i++) {
			counter++;
			serial_puts(r == 0 ? "before " : "after ");
			serial_putu(counter);
			serial_puts("\n");
		}
		if (r < rounds)
			outl(KBX_MARKER_PORT, KBX_MARKER_SNAPSHOT);
	}
	serial_puts("done\n");
	return status;
}
