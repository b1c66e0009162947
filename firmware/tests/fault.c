/* firmware/tests/fault.c - prints one line, then executes ud2 at CPL 3.
 * With no IDT the #UD escalates to a triple fault: kvmbox must report it
 * and exit 1. */
#include "guest.h"

int guest_main(const struct hvm_start_info *si)
{
	(void)si;
	serial_puts("about to fault\n");
	__asm__ volatile("ud2");
	return 0;
}
