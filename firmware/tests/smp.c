/* firmware/tests/smp.c - starts the application processors the way Linux
 * does, through the in-kernel local APIC: for each AP an INIT IPI, then a
 * startup IPI pointing at a real-mode trampoline at 0x8000 that bumps a
 * counter and halts.  Reports how many APs checked in (out of cpus=N - 1
 * from the command line) and exits 0 when all did.  The APIC's registers are
 * reached from CPL 3 through the identity-mapped MMIO hole. */
#include "guest.h"

#define LAPIC_BASE 0xfee00000UL
#define LAPIC_ICR_LOW 0x300
#define LAPIC_ICR_HIGH 0x310
#define TRAMPOLINE 0x8000UL
#define COUNTER 0x9000UL

extern const uint8_t ap_tramp_start[], ap_tramp_end[];
__asm__(".pushsection .rodata\n"
	".globl ap_tramp_start, ap_tramp_end\n"
	"ap_tramp_start:\n"
	".code16\n"
	"	xor %ax, %ax\n"
	"	mov %ax, %ds\n"
	"	lock incw 0x9000\n"
	"	cli\n"
	"1:	hlt\n"
	"	jmp 1b\n"
	".code64\n"
	"ap_tramp_end:\n"
	".popsection\n");

static void lapic_write(unsigned reg, uint32_t v)
{
	*(volatile uint32_t *)(LAPIC_BASE + reg) = v;
}

int guest_main(const struct hvm_start_info *si)
{
	int cpus = cmdline_int(guest_cmdline(si), "cpus", 1);
	volatile uint16_t *counter = (volatile uint16_t *)COUNTER;
	uint8_t *t = (uint8_t *)TRAMPOLINE;
	for (const uint8_t *p = ap_tramp_start; p < ap_tramp_end; p++)
		*t++ = *p;
	*counter = 0;
	for (int id = 1; id < cpus; id++) {
		lapic_write(LAPIC_ICR_HIGH, (uint32_t)id << 24);
		lapic_write(LAPIC_ICR_LOW, 0x00004500);	/* INIT, assert */
		lapic_write(LAPIC_ICR_HIGH, (uint32_t)id << 24);
		lapic_write(LAPIC_ICR_LOW, 0x00004600 | (TRAMPOLINE >> 12));	/* SIPI */
	}
	for (unsigned long spin = 0; spin < 4000000000UL && *counter < cpus - 1; spin++)
		__asm__ volatile("pause");
	serial_puts("aps started: ");
	serial_putu(*counter);
	serial_puts(" of ");
	serial_putu((unsigned)(cpus - 1));
	serial_puts("\n");
	return *counter == cpus - 1 ? 0 : 1;
}
