/* firmware/tests/resetonly.c - resets through the i8042 without writing an
 * exit status first: kvmbox must exit 1 and say so. */
#include "guest.h"

int guest_main(const struct hvm_start_info *si)
{
	(void)si;
	serial_puts("resetting\n");
	outb(0x64, 0xfe);
	for (;;)
		;
	return 0;
}
