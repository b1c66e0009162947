/* boot/zeropage.c - the 64-bit boot protocol state: the zero page (struct
 * boot_params), the GDT and TSS both entry modes use, and the identity-mapped
 * page tables for the low 4 GiB that long-mode entry runs on.
 *
 * For a bzImage the zero page starts from the image's own setup header (as
 * Documentation/arch/x86/boot.rst asks); for an ELF vmlinux there is none, so
 * the fields Linux reads are filled in as a boot loader would.
 */
#include <errno.h>
#include <string.h>

#include "boot/internal.h"
#include "boot/layout.h"

#define PTE_PRESENT 0x1ULL
#define PTE_WRITE 0x2ULL
#define PTE_HUGE 0x80ULL
#define PAGE_2M (2ULL << 20)

static void fill_header(const struct boot_ctx *c, struct setup_header *h)
{
	if (c->bzimage) {
		memcpy(h, &c->hdr, c->hdr_len);
		h->code32_start = (uint32_t)c->kernel_start;
	} else {
		h->boot_flag = BOOT_FLAG_MAGIC;
		h->header = BOOT_HDRS_MAGIC;
		h->version = 0x020f;
		h->kernel_alignment = 0x1000000;
		h->cmdline_size = (uint32_t)c->cmdline_max;
	}
	h->type_of_loader = BOOT_LOADER_UNDEFINED;
	h->loadflags |= LOADED_HIGH;
	h->cmd_line_ptr = (uint32_t)BOOT_CMDLINE_ADDR;
	h->ramdisk_image = (uint32_t)c->initrd_addr;
	h->ramdisk_size = (uint32_t)c->initrd_len;
}

int boot_write_zero_page(const struct boot_ctx *c)
{
	struct boot_params *bp = gmem_ptr(c->gm, BOOT_ZERO_PAGE_ADDR, sizeof(*bp));

	_Static_assert(sizeof(struct boot_params) == 4096, "zero page is one page");
	if (!bp)
		return boot_fail(EFAULT, "zero page is not in guest RAM");
	memset(bp, 0, sizeof(*bp));
	fill_header(c, &bp->hdr);
	bp->ext_ramdisk_image = (uint32_t)(c->initrd_addr >> 32);
	bp->ext_ramdisk_size = (uint32_t)(c->initrd_len >> 32);
	bp->ext_cmd_line_ptr = 0;
	bp->e820_entries = (uint8_t)c->ne820;
	memcpy(bp->e820_table, c->e820, c->ne820 * sizeof(c->e820[0]));
	return 0;
}

/* PML4[0] -> PDPT; PDPT[0..3] -> 4 PDs; each PD maps 1 GiB in 2 MiB pages.
 * 2 MiB rather than 1 GiB pages: every x86-64 CPU has them (no pdpe1gb). */
int boot_write_page_tables(const struct gmem *gm)
{
	uint64_t *pml4 = gmem_ptr(gm, BOOT_PML4_ADDR, BOOT_PAGE);
	uint64_t *pdpt = gmem_ptr(gm, BOOT_PDPT_ADDR, BOOT_PAGE);
	uint64_t *pd = gmem_ptr(gm, BOOT_PD_ADDR, BOOT_PD_COUNT * BOOT_PAGE);

	if (!pml4 || !pdpt || !pd)
		return boot_fail(EFAULT, "page-table area is not in guest RAM");
	memset(pml4, 0, BOOT_PAGE);
	memset(pdpt, 0, BOOT_PAGE);
	pml4[0] = BOOT_PDPT_ADDR | PTE_PRESENT | PTE_WRITE;
	for (unsigned i = 0; i < BOOT_PD_COUNT; i++)
		pdpt[i] = (BOOT_PD_ADDR + i * BOOT_PAGE) | PTE_PRESENT | PTE_WRITE;
	for (unsigned i = 0; i < BOOT_PD_COUNT * 512; i++)
		pd[i] = (uint64_t)i * PAGE_2M | PTE_PRESENT | PTE_WRITE | PTE_HUGE;
	return 0;
}

/* null, null, code (0x10), data (0x18), TSS (0x20); the TSS itself zeroed. */
int boot_write_gdt(const struct gmem *gm, bool pvh)
{
	uint64_t gdt[BOOT_GDT_ENTRIES] = {
		0, 0, pvh ? BOOT_GDT_CODE32 : BOOT_GDT_CODE64, BOOT_GDT_DATA, BOOT_GDT_TSS,
	};
	uint8_t *tss = gmem_ptr(gm, BOOT_TSS_ADDR, 0x68);

	if (!tss || gmem_write(gm, BOOT_GDT_ADDR, gdt, sizeof(gdt)))
		return boot_fail(EFAULT, "GDT area is not in guest RAM");
	memset(tss, 0, 0x68);
	return 0;
}
