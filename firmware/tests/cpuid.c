/* firmware/tests/cpuid.c - prints the CPUID the kernel would see (collected
 * at CPL 0 by entry.S): the hypervisor bit, the boot CPU's APIC ID, the
 * logical CPU count, the KVM signature leaf, the TSC-deadline timer bit and
 * the TSC frequency leaf 0x40000010. */
#include "guest.h"

int guest_main(const struct hvm_start_info *si)
{
	(void)si;
	const struct cpl0_cpuid *c = &cpl0_cpuid;
	serial_puts("hypervisor=");
	serial_putu(c->leaf1_ecx >> 31);
	serial_puts(" apic_id=");
	serial_putu(c->leaf1_ebx >> 24);
	serial_puts(" logical=");
	serial_putu((c->leaf1_ebx >> 16) & 0xff);
	char sig[13];
	for (int i = 0; i < 12; i++)
		sig[i] = (char)(c->kvm_sig[i / 4] >> (8 * (i % 4)));
	sig[12] = 0;
	serial_puts(" signature=");
	serial_puts(sig);
	serial_puts(" tsc_deadline=");
	serial_putu((c->leaf1_ecx >> 24) & 1);
	serial_puts(" tsc_khz=");
	if (c->kvm_max >= 0x40000010)
		serial_putu(c->tsc_khz);
	else
		serial_puts("none");
	serial_puts("\n");
	return 0;
}
