/* boot/boot.h - loading a Linux guest kernel into guest memory (the contract
 * between boot/ and vmm/).
 *
 * boot/ parses the kernel image (uncompressed ELF vmlinux, entered at its
 * 64-bit entry or, when it carries a Xen PVH note, at the PVH entry; or a
 * bzImage entered at its 64-bit entry), writes it, the initramfs, the command
 * line, the zero page (boot_params with e820) or PVH start_info, the MP table,
 * and, for 64-bit entry, identity-mapped page tables and a GDT, all through
 * the guest-memory object.  It never calls KVM: it returns a struct
 * boot_entry that tells vmm/ how to set the boot vCPU's registers.
 *
 * Every malformed input (truncated, overlapping, out of RAM, wrong magic)
 * is refused with -errno and a one-line reason in boot_error().
 */
#ifndef KVMBOX_BOOT_H
#define KVMBOX_BOOT_H

#include <stddef.h>
#include <stdint.h>

#include "common/gmem.h"

struct boot_config {
	const uint8_t *kernel;	/* kernel image bytes */
	size_t kernel_len;
	const uint8_t *initrd;	/* initramfs bytes, or NULL */
	size_t initrd_len;
	const char *cmdline;	/* kernel command line (NUL-terminated) */
	unsigned ncpus;		/* for the MP table; APIC IDs 0..ncpus-1 */
};

/* Control registers the vmm sets for each mode (checked by booting Debian's
 * 6.1 cloud kernel both ways):
 *   LONG64: CR0 = PE|ET|PG (0x80000011), CR4 = PAE (0x20), CR3 = cr3,
 *           EFER = LME|LMA (0x500); CS from BOOT_GDT_CODE64.
 *   PVH32:  CR0 = PE|ET (0x11), CR4 = 0, EFER = 0; CS from BOOT_GDT_CODE32.
 * Both: DS/ES/FS/GS/SS from BOOT_GDT_DATA, TR from BOOT_GDT_TSS, rflags 2. */
enum boot_mode {
	BOOT_MODE_LONG64,	/* 64-bit long mode, paging on, rsi = zero page */
	BOOT_MODE_PVH32,	/* 32-bit protected mode, paging off, rbx = start_info */
};

/* How to start the boot vCPU.  Segment selectors index the GDT boot/ wrote at
 * gdt_base (code selector, data selector); the vmm loads descriptors matching
 * the mode (64-bit code for LONG64, 32-bit flat for PVH32). */
struct boot_entry {
	enum boot_mode mode;
	uint64_t rip;
	uint64_t rsp;
	uint64_t rsi;		/* LONG64: zero page gpa */
	uint64_t rbx;		/* PVH32: hvm_start_info gpa */
	uint64_t cr3;		/* LONG64: PML4 gpa (identity map of low 4 GiB) */
	uint64_t gdt_base;
	uint16_t gdt_limit;
	uint16_t code_sel, data_sel;
	uint64_t kernel_end;	/* first gpa after the loaded kernel image */
	uint16_t tss_sel;	/* TR: a busy 32-bit TSS, base/limit in the GDT
				 * (PVH requires one; harmless for LONG64) */
};

/* Whether the first len bytes of a kernel file (BOOT_PROBE_LEN suffice)
 * are an ELF vmlinux or a bzImage: 0, or -errno with boot_error() set.
 * Needs no guest memory: launchers judge the kernel before opening KVM. */
#define BOOT_PROBE_LEN 4096
int boot_probe(const uint8_t *img, size_t len);

/* Load the kernel described by cfg into gm.  0 or -errno. */
int boot_load(const struct gmem *gm, const struct boot_config *cfg, struct boot_entry *entry);

/* One-line description of the last boot_load() failure on this thread. */
const char *boot_error(void);

/* Fixed guest-physical layout: see boot/layout.h (addresses, selectors and
 * the GDT descriptors the vmm loads into the hidden segment state). */
#endif
