/* boot/pvh.c - the Xen PVH start info a kernel entered at its
 * XEN_ELFNOTE_PHYS32_ENTRY finds in %ebx: magic, version 1, the command line,
 * the initramfs as module 0, and the memory map (the same entries as e820).
 */
#include <errno.h>
#include <string.h>

#include "boot/internal.h"
#include "boot/layout.h"

_Static_assert(BOOT_PVH_MEMMAP_ADDR + BOOT_PVH_MEMMAP_MAX * sizeof(struct hvm_memmap_table_entry) <=
		       BOOT_TSS_ADDR, "PVH memmap overruns its page");
_Static_assert(BOOT_E820_MAX <= BOOT_PVH_MEMMAP_MAX, "PVH memmap too small for the e820");
_Static_assert(BOOT_PVH_INFO_ADDR + sizeof(struct hvm_start_info) <= BOOT_PVH_MODLIST_ADDR,
	       "start info overruns the modlist");

int boot_write_pvh_info(const struct boot_ctx *c)
{
	uint8_t *page = gmem_ptr(c->gm, BOOT_PVH_INFO_ADDR, BOOT_PAGE);
	struct hvm_start_info si = {
		.magic = XEN_HVM_START_MAGIC, .version = 1,
		.cmdline_paddr = BOOT_CMDLINE_ADDR,
		.memmap_paddr = BOOT_PVH_MEMMAP_ADDR, .memmap_entries = c->ne820,
	};

	if (!page)
		return boot_fail(EFAULT, "PVH start info area is not in guest RAM");
	memset(page, 0, BOOT_PAGE);
	if (c->initrd_len) {
		struct hvm_modlist_entry mod = { .paddr = c->initrd_addr, .size = c->initrd_len };

		si.nr_modules = 1;
		si.modlist_paddr = BOOT_PVH_MODLIST_ADDR;
		memcpy(page + (BOOT_PVH_MODLIST_ADDR - BOOT_PVH_INFO_ADDR), &mod, sizeof(mod));
	}
	for (unsigned i = 0; i < c->ne820; i++) {
		struct hvm_memmap_table_entry m = { .addr = c->e820[i].addr, .size = c->e820[i].size,
						    .type = c->e820[i].type };

		memcpy(page + (BOOT_PVH_MEMMAP_ADDR - BOOT_PVH_INFO_ADDR) + i * sizeof(m), &m, sizeof(m));
	}
	memcpy(page, &si, sizeof(si));
	return 0;
}
