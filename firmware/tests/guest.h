/* firmware/tests/guest.h - the runtime the tiny test guests share: port I/O,
 * serial output, the kvmbox marker port and the i8042 reset, all usable at
 * CPL 3 (entry.S leaves IOPL=3).  guest_main(start_info) is each guest's
 * entry point; its return value becomes the exit status. */
#ifndef KVMBOX_FIRMWARE_TESTS_GUEST_H
#define KVMBOX_FIRMWARE_TESTS_GUEST_H

#include <stdint.h>

#include "guest/abi/marker.h"
#include "guest/abi/pvh.h"

#define COM1 0x3f8

static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}
static inline void outl(uint16_t port, uint32_t v)
{
	__asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}
static inline uint8_t inb(uint16_t port)
{
	uint8_t v;
	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

/* CPUID results entry.S collected at CPL 0 before dropping to CPL 3. */
struct cpl0_cpuid {
	uint32_t leaf1_ebx, leaf1_ecx;
	uint32_t kvm_max, kvm_sig[3];		/* leaf 0x40000000 */
	uint32_t tsc_khz;			/* leaf 0x40000010 eax */
};
extern struct cpl0_cpuid cpl0_cpuid;

void serial_puts(const char *s);
void serial_putu(unsigned v);
/* The kernel command line, or "" when the loader gave none. */
const char *guest_cmdline(const struct hvm_start_info *si);
/* Value of key=N on the command line, or dflt. */
int cmdline_int(const char *cmdline, const char *key, int dflt);
void guest_boot_marker(void);
/* Report status through the marker port, then reset through the i8042. */
__attribute__((noreturn)) void guest_exit(int status);

int guest_main(const struct hvm_start_info *si);

#endif
