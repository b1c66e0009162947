/* guest/abi/pvh.h - the Xen PVH start info a PVH entry finds in %rbx
 * (xen/include/public/arch-x86/hvm/start_info.h, version 1): written by
 * boot/pvh.c, read by the guest kernel and the tiny test guests
 * (firmware/tests/).  Header-only, freestanding.  All structures are
 * packed, little-endian, guest-visible.
 */
#ifndef KVMBOX_GUEST_ABI_PVH_H
#define KVMBOX_GUEST_ABI_PVH_H

#include <stdint.h>

#define XEN_HVM_START_MAGIC 0x336ec578u

/* xen/include/public/arch-x86/hvm/start_info.h, version 1. */
struct hvm_start_info {
	uint32_t magic;
	uint32_t version;
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr;
	uint64_t rsdp_paddr;
	uint64_t memmap_paddr;	/* version 1 */
	uint32_t memmap_entries;
	uint32_t reserved;
} __attribute__((packed));

struct hvm_modlist_entry {
	uint64_t paddr;
	uint64_t size;
	uint64_t cmdline_paddr;
	uint64_t reserved;
} __attribute__((packed));

struct hvm_memmap_table_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;		/* E820_TYPE_* */
	uint32_t reserved;
} __attribute__((packed));

#endif
