/* firmware/tests/marker.c - writes the boot marker first thing (as
 * kvmbox-init does), prints one line and exits 0: the guest --profile and
 * the benchmark measure. */
#include "guest.h"

int guest_main(const struct hvm_start_info *si)
{
	(void)si;
	guest_boot_marker();
	serial_puts("marker guest done\n");
	return 0;
}
