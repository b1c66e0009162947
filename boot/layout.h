/* boot/layout.h - the fixed guest-physical layout boot/ writes below 1 MiB.
 *
 * Everything the loader builds for the kernel (GDT, zero page or PVH start
 * info, page tables, stack, command line, MP table) lives at a fixed address
 * in the first MiB, so vmm/ and the tests can find it without asking boot/.
 * The kernel itself, and the initramfs, are refused anywhere below
 * BOOT_KERNEL_MIN, so nothing the kernel image says can overwrite them.
 *
 *   0x00000 - 0x004ff  untouched (real-mode IVT / BIOS data area)
 *   0x00500 - 0x0052f  GDT: null, null, code (0x10), data (0x18), TSS (0x20)
 *   0x05000 - 0x05fff  PVH hvm_start_info, its modlist and its memmap
 *   0x06000 - 0x06fff  TSS the GDT points at (zeroed, 0x68 bytes used)
 *   0x07000 - 0x07fff  zero page (struct boot_params), LONG64 only
 *   0x08000 - 0x08fff  boot stack, rsp = 0x8ff0
 *   0x09000 - 0x09fff  PML4 (LONG64 only)
 *   0x0a000 - 0x0afff  PDPT: 4 entries, one per GiB
 *   0x0b000 - 0x0efff  4 page directories of 2 MiB pages: identity 0-4 GiB
 *   0x20000 - 0x2ffff  kernel command line (NUL-terminated)
 *   0x9fc00 - 0x9ffff  EBDA, reserved in e820 (kept empty)
 *   0xf0000 - 0xfffff  MP floating pointer + MP config table, reserved in e820
 *   0x100000 -         kernel (ELF p_paddr, bzImage at pref_address or
 *                      0x100000), initramfs as high as allowed
 *
 * Selectors follow the Linux 64-bit boot protocol (__BOOT_CS 0x10,
 * __BOOT_DS 0x18); the PVH entry uses the same slots with 32-bit descriptors.
 */
#ifndef KVMBOX_BOOT_LAYOUT_H
#define KVMBOX_BOOT_LAYOUT_H

#define BOOT_GDT_ADDR 0x500ULL
#define BOOT_GDT_ENTRIES 5
#define BOOT_GDT_LIMIT (BOOT_GDT_ENTRIES * 8 - 1)
#define BOOT_CODE_SEL 0x10
#define BOOT_DATA_SEL 0x18
#define BOOT_TSS_SEL 0x20

/* GDT descriptors as the vmm must also load them into the hidden parts. */
#define BOOT_GDT_CODE64 0x00af9b000000ffffULL	/* L=1, exec/read, accessed */
#define BOOT_GDT_CODE32 0x00cf9b000000ffffULL	/* D=1, 4 GiB flat */
#define BOOT_GDT_DATA 0x00cf93000000ffffULL	/* 4 GiB flat read/write */
/* 32-bit busy TSS, limit 0x67, base BOOT_TSS_ADDR. */
#define BOOT_GDT_TSS (0x00008b0000000067ULL | ((BOOT_TSS_ADDR & 0xffffffULL) << 16))

#define BOOT_PVH_INFO_ADDR 0x5000ULL	/* struct hvm_start_info */
#define BOOT_PVH_MODLIST_ADDR 0x5040ULL	/* one hvm_modlist_entry (the initrd) */
#define BOOT_PVH_MEMMAP_ADDR 0x5100ULL	/* hvm_memmap_table_entry[] */
#define BOOT_PVH_MEMMAP_MAX 64
#define BOOT_TSS_ADDR 0x6000ULL

#define BOOT_ZERO_PAGE_ADDR 0x7000ULL
#define BOOT_STACK_TOP 0x8ff0ULL
#define BOOT_PML4_ADDR 0x9000ULL
#define BOOT_PDPT_ADDR 0xa000ULL
#define BOOT_PD_ADDR 0xb000ULL		/* 4 consecutive page directories */
#define BOOT_PD_COUNT 4

#define BOOT_CMDLINE_ADDR 0x20000ULL
#define BOOT_CMDLINE_AREA 0x10000ULL
/* Longest command line for an ELF vmlinux (Linux x86 COMMAND_LINE_SIZE is
 * 2048 with the NUL); a bzImage states its own limit in cmdline_size. */
#define BOOT_CMDLINE_MAX_ELF 2047

#define BOOT_EBDA_START 0x9fc00ULL
#define BOOT_EBDA_END 0xa0000ULL
#define BOOT_MPTABLE_ADDR 0xf0000ULL	/* floating pointer; config table follows */
#define BOOT_BIOS_END 0x100000ULL

#define BOOT_KERNEL_MIN 0x100000ULL	/* nothing loaded below 1 MiB */
#define BOOT_BZIMAGE_ADDR 0x100000ULL	/* default bzImage protected-mode load */

#define BOOT_LAPIC_ADDR 0xfee00000ULL
#define BOOT_IOAPIC_ADDR 0xfec00000ULL
#define BOOT_MAX_CPUS 254		/* APIC IDs 0..253, IOAPIC id = ncpus */

#endif
