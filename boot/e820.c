/* boot/e820.c - the guest's memory map, shared by the zero page (e820_table)
 * and the PVH start info (memmap): low RAM up to the EBDA, the EBDA and the
 * BIOS area holding the MP table as reserved, RAM from 1 MiB to the MMIO
 * hole, and RAM above 4 GiB when the guest has more than fits below the hole.
 * The hole itself (virtio-mmio, IOAPIC, LAPIC) is simply not listed.
 */
#include "boot/internal.h"
#include "boot/layout.h"

static void add(struct boot_ctx *c, uint64_t addr, uint64_t size, uint32_t type)
{
	if (size == 0 || c->ne820 >= BOOT_E820_MAX)
		return;
	c->e820[c->ne820].addr = addr;
	c->e820[c->ne820].size = size;
	c->e820[c->ne820].type = type;
	c->ne820++;
}

void boot_build_e820(struct boot_ctx *c)
{
	const struct gmem *gm = c->gm;

	c->ne820 = 0;
	add(c, 0, BOOT_EBDA_START, E820_TYPE_RAM);
	add(c, BOOT_EBDA_START, BOOT_EBDA_END - BOOT_EBDA_START, E820_TYPE_RESERVED);
	add(c, BOOT_MPTABLE_ADDR, BOOT_BIOS_END - BOOT_MPTABLE_ADDR, E820_TYPE_RESERVED);
	add(c, BOOT_BIOS_END, c->low_top - BOOT_BIOS_END, E820_TYPE_RAM);
	for (unsigned i = 1; i < gm->nregions; i++)
		add(c, gm->region[i].gpa, gm->region[i].size, E820_TYPE_RAM);
}
