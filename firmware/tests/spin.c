/* firmware/tests/spin.c - prints one line, then spins forever at CPL 3 with
 * interrupts off: kvmbox must still stop promptly on SIGINT/SIGTERM. */
#include "guest.h"

int guest_main(const struct hvm_start_info *si)
{
	(void)si;
	serial_puts("spinning\n");
	for (;;)
		__asm__ volatile("" ::: "memory");
	return 0;
}
