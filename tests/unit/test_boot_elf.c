/* tests/unit/test_boot_elf.c - ELF vmlinux loading: long-mode entry (zero
 * page, e820, page tables, GDT), the Xen PVH entry (hvm_start_info, memmap,
 * modlist), the layout around the MMIO hole with 3.5 GiB of RAM, initrd
 * placement, and every malformed image refused with a reason. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "test_boot_images.h"

#define KPADDR 0x200000ULL
#define KVADDR 0xffffffff80200000ULL

static const struct tseg two_segs[] = {
	{ .paddr = KPADDR, .filesz = 0x2000, .memsz = 0x2000, .fill = 0x11 },
	{ .paddr = KPADDR + 0x2000, .filesz = 0x800, .memsz = 0x5000, .fill = 0x22 },	/* + bss */
};

static int load(struct tram *t, const uint8_t *k, size_t klen, const char *cmdline,
		const uint8_t *initrd, size_t ilen, struct boot_entry *e)
{
	struct boot_config cfg = { .kernel = k, .kernel_len = klen, .initrd = initrd,
				   .initrd_len = ilen, .cmdline = cmdline, .ncpus = 2 };
	return boot_load(&t->gm, &cfg, e);
}

static void assert_e820_low(const struct boot_e820_entry *e, unsigned n, uint64_t low_top)
{
	assert_true(n >= 4);
	assert_int_equal(e[0].addr, 0);
	assert_int_equal(e[0].size, BOOT_EBDA_START);
	assert_int_equal(e[0].type, E820_TYPE_RAM);
	assert_int_equal(e[1].addr, BOOT_EBDA_START);
	assert_int_equal(e[1].type, E820_TYPE_RESERVED);
	assert_int_equal(e[2].addr, BOOT_MPTABLE_ADDR);
	assert_int_equal(e[2].addr + e[2].size, 0x100000);
	assert_int_equal(e[2].type, E820_TYPE_RESERVED);
	assert_int_equal(e[3].addr, 0x100000);
	assert_int_equal(e[3].addr + e[3].size, low_top);
	assert_int_equal(e[3].type, E820_TYPE_RAM);
}

static void test_long64_zero_page(void **state)
{
	(void)state;
	struct telf o = { .entry = KPADDR + 0x40, .segs = two_segs, .nsegs = 2 };
	static const uint8_t initrd[5000] = { 1, 2, 3 };
	struct boot_entry e;
	struct tram t;
	size_t len;
	uint8_t *k = build_elf(&o, &len);

	tram_init(&t, 32 * MiB);
	assert_int_equal(load(&t, k, len, "console=ttyS0 quiet", initrd, sizeof(initrd), &e), 0);
	assert_int_equal(e.mode, BOOT_MODE_LONG64);
	assert_int_equal(e.rip, KPADDR + 0x40);
	assert_int_equal(e.rsi, BOOT_ZERO_PAGE_ADDR);
	assert_int_equal(e.cr3, BOOT_PML4_ADDR);
	assert_int_equal(e.rsp, BOOT_STACK_TOP);
	assert_int_equal(e.code_sel, 0x10);
	assert_int_equal(e.data_sel, 0x18);
	assert_int_equal(e.kernel_end, KPADDR + 0x7000);

	/* Segments: file bytes copied, bss zeroed over the 0xee poison. */
	const uint8_t *ram = t.host;
	assert_int_equal(ram[KPADDR], 0x11);
	assert_int_equal(ram[KPADDR + 0x1fff], 0x11);
	assert_int_equal(ram[KPADDR + 0x2000], 0x22);
	assert_int_equal(ram[KPADDR + 0x27ff], 0x22);
	for (uint64_t a = KPADDR + 0x2800; a < KPADDR + 0x7000; a++)
		if (ram[a] != 0)
			fail_msg("bss byte at 0x%llx is 0x%x", (unsigned long long)a, ram[a]);
	assert_int_equal(ram[KPADDR + 0x7000], 0xee);	/* nothing past the kernel */

	const struct boot_params *bp = zero_page(&t);
	assert_int_equal(bp->hdr.boot_flag, 0xaa55);
	assert_int_equal(bp->hdr.header, BOOT_HDRS_MAGIC);
	assert_int_equal(bp->hdr.type_of_loader, 0xff);
	assert_true(bp->hdr.loadflags & LOADED_HIGH);
	assert_int_equal(bp->hdr.cmd_line_ptr, BOOT_CMDLINE_ADDR);
	assert_int_equal(bp->ext_cmd_line_ptr, 0);
	assert_string_equal((const char *)gpa(&t, bp->hdr.cmd_line_ptr, 20), "console=ttyS0 quiet");
	/* Initrd: page aligned, as high as RAM allows, bytes intact. */
	assert_int_equal(bp->hdr.ramdisk_size, sizeof(initrd));
	assert_int_equal(bp->hdr.ramdisk_image % 4096, 0);
	assert_int_equal(bp->hdr.ramdisk_image, (32 * MiB - sizeof(initrd)) & ~4095ULL);
	assert_memory_equal(gpa(&t, bp->hdr.ramdisk_image, sizeof(initrd)), initrd, sizeof(initrd));
	/* e820: low RAM, EBDA, BIOS/MP area, RAM to the top; nothing else. */
	assert_int_equal(bp->e820_entries, 4);
	assert_e820_low(bp->e820_table, bp->e820_entries, 32 * MiB);
	/* Everything else in the zero page is zero (not the 0xee poison). */
	assert_int_equal(bp->acpi_rsdp_addr, 0);
	assert_int_equal(bp->screen_info.orig_video_isVGA, 0);
	free(k);
	tram_free(&t);
}

/* Walk the identity map for one address: PML4 -> PDPT -> 2 MiB PD entry. */
static uint64_t translate(struct tram *t, uint64_t va)
{
	const uint64_t *pml4 = gpa(t, BOOT_PML4_ADDR, 4096);
	uint64_t e = pml4[(va >> 39) & 511];

	assert_true(e & 1);
	const uint64_t *pdpt = gpa(t, e & ~0xfffULL, 4096);
	e = pdpt[(va >> 30) & 511];
	assert_true(e & 1);
	assert_false(e & 0x80);
	const uint64_t *pd = gpa(t, e & ~0xfffULL, 4096);
	e = pd[(va >> 21) & 511];
	assert_true((e & 0x83) == 0x83);	/* present, writable, 2 MiB page */
	return (e & ~0x1fffffULL) | (va & 0x1fffff);
}

static void test_page_tables_and_gdt(void **state)
{
	(void)state;
	struct telf o = { .entry = KPADDR, .segs = two_segs, .nsegs = 2 };
	struct boot_entry e;
	struct tram t;
	size_t len;
	uint8_t *k = build_elf(&o, &len);

	tram_init(&t, 16 * MiB);
	assert_int_equal(load(&t, k, len, "", NULL, 0, &e), 0);
	static const uint64_t probes[] = { 0, 0x1000, KPADDR + 0x123, 0x40000000, 0xbfffffff,
					   0xd0000000, 0xfec00000, 0xfee00000, 0xffffffff };
	for (unsigned i = 0; i < sizeof(probes) / sizeof(probes[0]); i++)
		assert_int_equal(translate(&t, probes[i]), probes[i]);
	const uint64_t *pml4 = gpa(&t, BOOT_PML4_ADDR, 4096);
	for (unsigned i = 1; i < 512; i++)
		assert_int_equal(pml4[i], 0);	/* only the low 512 GiB slot */
	const uint64_t *pdpt = gpa(&t, BOOT_PDPT_ADDR, 4096);
	for (unsigned i = 4; i < 512; i++)
		assert_int_equal(pdpt[i], 0);	/* exactly 4 GiB mapped */

	const uint64_t *gdt = gpa(&t, e.gdt_base, e.gdt_limit + 1);
	assert_int_equal(e.gdt_limit + 1, 5 * 8);
	assert_int_equal(gdt[0], 0);
	assert_int_equal(gdt[e.code_sel / 8], 0x00af9b000000ffffULL);	/* L=1 code */
	assert_int_equal(gdt[e.data_sel / 8], 0x00cf93000000ffffULL);
	assert_int_equal(gdt[e.tss_sel / 8] & 0xffff, 0x67);		/* TSS limit */
	assert_int_equal((gdt[e.tss_sel / 8] >> 40) & 0xff, 0x8b);	/* busy TSS, present */
	free(k);
	tram_free(&t);
}

static void test_virtual_entry_translated(void **state)
{
	(void)state;
	struct tseg s = { .paddr = KPADDR, .vaddr = KVADDR, .filesz = 0x1000, .memsz = 0x1000 };
	struct telf o = { .entry = KVADDR + 0x200, .segs = &s, .nsegs = 1 };
	struct boot_entry e;
	struct tram t;
	size_t len;
	uint8_t *k = build_elf(&o, &len);

	tram_init(&t, 8 * MiB);
	assert_int_equal(load(&t, k, len, NULL, NULL, 0, &e), 0);
	assert_int_equal(e.mode, BOOT_MODE_LONG64);
	assert_int_equal(e.rip, KPADDR + 0x200);
	free(k);
	tram_free(&t);
}

static void check_pvh(unsigned note_size)
{
	struct telf o = { .entry = KPADDR, .segs = two_segs, .nsegs = 2, .pvh_size = note_size,
			  .pvh_entry = KPADDR + 0x1230 };
	static const uint8_t initrd[3 * 4096 + 1] = { 9 };
	struct boot_entry e;
	struct tram t;
	size_t len;
	uint8_t *k = build_elf(&o, &len);

	tram_init(&t, 24 * MiB);
	assert_int_equal(load(&t, k, len, "root=/dev/vda", initrd, sizeof(initrd), &e), 0);
	assert_int_equal(e.mode, BOOT_MODE_PVH32);
	assert_int_equal(e.rip, KPADDR + 0x1230);
	assert_int_equal(e.rbx, BOOT_PVH_INFO_ADDR);
	assert_int_equal(e.cr3, 0);

	struct hvm_start_info si;
	assert_int_equal(gmem_read(&t.gm, &si, e.rbx, sizeof(si)), 0);
	assert_int_equal(si.magic, 0x336ec578);
	assert_int_equal(si.version, 1);
	assert_string_equal((const char *)gpa(&t, si.cmdline_paddr, 14), "root=/dev/vda");
	assert_int_equal(si.nr_modules, 1);
	struct hvm_modlist_entry mod;
	assert_int_equal(gmem_read(&t.gm, &mod, si.modlist_paddr, sizeof(mod)), 0);
	assert_int_equal(mod.size, sizeof(initrd));
	assert_int_equal(mod.paddr % 4096, 0);
	assert_true(mod.paddr + mod.size <= 24 * MiB);
	assert_memory_equal(gpa(&t, mod.paddr, mod.size), initrd, sizeof(initrd));

	struct boot_e820_entry map[8];
	assert_int_equal(si.memmap_entries, 4);
	for (unsigned i = 0; i < si.memmap_entries; i++) {
		struct hvm_memmap_table_entry m;
		assert_int_equal(gmem_read(&t.gm, &m, si.memmap_paddr + i * sizeof(m), sizeof(m)), 0);
		map[i] = (struct boot_e820_entry){ m.addr, m.size, m.type };
	}
	assert_e820_low(map, si.memmap_entries, 24 * MiB);

	const uint64_t *gdt = gpa(&t, e.gdt_base, e.gdt_limit + 1);
	assert_int_equal(gdt[e.code_sel / 8], 0x00cf9b000000ffffULL);	/* 32-bit flat code */
	assert_int_equal(gdt[e.data_sel / 8], 0x00cf93000000ffffULL);
	free(k);
	tram_free(&t);
}

static void test_pvh_note_8(void **state)
{
	(void)state;
	check_pvh(8);	/* Linux: _ASM_PTR, 8 bytes on x86-64 */
}

static void test_pvh_note_4(void **state)
{
	(void)state;
	check_pvh(4);
}

/* Notes only in an SHT_NOTE section (a linker script without PHDRS) still
 * select the PVH entry; a section table outside the file is ignored. */
static void test_pvh_note_in_section(void **state)
{
	(void)state;
	struct telf o = { .entry = KPADDR, .segs = two_segs, .nsegs = 2, .pvh_size = 4,
			  .pvh_entry = KPADDR + 0x2000, .note_in_section = 1 };
	struct boot_entry e;
	struct tram t;
	size_t len;
	uint8_t *k = build_elf(&o, &len);
	Elf64_Ehdr eh;

	tram_init(&t, 8 * MiB);
	assert_int_equal(load(&t, k, len, NULL, NULL, 0, &e), 0);
	assert_int_equal(e.mode, BOOT_MODE_PVH32);
	assert_int_equal(e.rip, KPADDR + 0x2000);
	memcpy(&eh, k, sizeof(eh));
	eh.e_shoff = len;	/* section table past the end: load at e_entry */
	memcpy(k, &eh, sizeof(eh));
	assert_int_equal(load(&t, k, len, NULL, NULL, 0, &e), 0);
	assert_int_equal(e.mode, BOOT_MODE_LONG64);
	assert_int_equal(e.rip, KPADDR);
	free(k);
	tram_free(&t);
}

/* 3.5 GiB: RAM splits around the hole; the initrd lands just below 3 GiB. */
static void test_layout_around_hole(void **state)
{
	(void)state;
	struct telf o = { .entry = KPADDR, .segs = two_segs, .nsegs = 2, .pvh_size = 8,
			  .pvh_entry = KPADDR };
	static const uint8_t initrd[10000] = { 7 };
	struct boot_entry e;
	struct tram t;
	size_t len;
	uint8_t *k = build_elf(&o, &len);

	tram_init(&t, 3 * GiB + 512 * MiB);
	if (!t.host) {
		free(k);
		skip();
	}
	assert_int_equal(t.gm.nregions, 2);
	assert_int_equal(load(&t, k, len, "", initrd, sizeof(initrd), &e), 0);
	struct hvm_start_info si;
	assert_int_equal(gmem_read(&t.gm, &si, e.rbx, sizeof(si)), 0);
	assert_int_equal(si.memmap_entries, 5);
	struct hvm_memmap_table_entry m[5];
	assert_int_equal(gmem_read(&t.gm, m, si.memmap_paddr, sizeof(m)), 0);
	assert_int_equal(m[3].addr, 0x100000);
	assert_int_equal(m[3].addr + m[3].size, GMEM_HOLE_START);
	assert_int_equal(m[3].type, E820_TYPE_RAM);
	assert_int_equal(m[4].addr, GMEM_HIGH_BASE);
	assert_int_equal(m[4].size, 512 * MiB);
	assert_int_equal(m[4].type, E820_TYPE_RAM);
	struct hvm_modlist_entry mod;
	assert_int_equal(gmem_read(&t.gm, &mod, si.modlist_paddr, sizeof(mod)), 0);
	assert_int_equal(mod.paddr, (GMEM_HOLE_START - sizeof(initrd)) & ~4095ULL);

	/* The same RAM, long-mode entry: the zero page says the same. */
	o.pvh_size = 0;
	free(k);
	k = build_elf(&o, &len);
	assert_int_equal(load(&t, k, len, "", initrd, sizeof(initrd), &e), 0);
	const struct boot_params *bp = zero_page(&t);
	assert_int_equal(bp->e820_entries, 5);
	assert_e820_low(bp->e820_table, 5, GMEM_HOLE_START);
	assert_int_equal(bp->e820_table[4].addr, GMEM_HIGH_BASE);
	assert_int_equal(bp->e820_table[4].size, 512 * MiB);
	assert_int_equal(bp->hdr.ramdisk_image, mod.paddr);
	free(k);
	tram_free(&t);
}

/* Expect boot_load to refuse with err and a reason containing `why`. */
static void expect_refused(struct tram *t, const uint8_t *k, size_t len, const char *cmdline,
			   const uint8_t *initrd, size_t ilen, int err, const char *why)
{
	struct boot_entry e;
	int r = load(t, k, len, cmdline, initrd, ilen, &e);

	if (r != -err || !strstr(boot_error(), why))
		fail_msg("expected -%d \"...%s...\", got %d \"%s\"", err, why, r, boot_error());
	assert_null(strchr(boot_error(), '\n'));
}

static uint8_t *elf_with(const struct tseg *s, unsigned n, uint64_t entry, size_t *len)
{
	struct telf o = { .entry = entry, .segs = s, .nsegs = n };
	return build_elf(&o, len);
}

static void test_malformed_headers(void **state)
{
	(void)state;
	struct tram t;
	size_t len;
	uint8_t *k = elf_with(two_segs, 2, KPADDR, &len);
	uint8_t *bad = malloc(len);
	Elf64_Ehdr eh;

	tram_init(&t, 16 * MiB);
	expect_refused(&t, k, 20, NULL, NULL, 0, ENOEXEC, "truncated");
	expect_refused(&t, k, 0, NULL, NULL, 0, EINVAL, "empty");
	memcpy(bad, k, len);
	bad[EI_CLASS] = ELFCLASS32;
	expect_refused(&t, bad, len, NULL, NULL, 0, ENOEXEC, "64-bit");
	memcpy(bad, k, len);
	memcpy(&eh, bad, sizeof(eh));
	eh.e_machine = EM_AARCH64;
	memcpy(bad, &eh, sizeof(eh));
	expect_refused(&t, bad, len, NULL, NULL, 0, ENOEXEC, "x86-64");
	eh.e_machine = EM_X86_64;
	eh.e_type = ET_REL;
	memcpy(bad, &eh, sizeof(eh));
	expect_refused(&t, bad, len, NULL, NULL, 0, ENOEXEC, "not an executable");
	eh.e_type = ET_EXEC;
	eh.e_phoff = len - 10;	/* phdr table runs past the end */
	memcpy(bad, &eh, sizeof(eh));
	expect_refused(&t, bad, len, NULL, NULL, 0, ENOEXEC, "program header table");
	eh.e_phoff = UINT64_MAX - 8;	/* and wraps */
	memcpy(bad, &eh, sizeof(eh));
	expect_refused(&t, bad, len, NULL, NULL, 0, ENOEXEC, "program header table");
	eh.e_phoff = sizeof(eh);
	eh.e_phnum = 0;
	memcpy(bad, &eh, sizeof(eh));
	expect_refused(&t, bad, len, NULL, NULL, 0, ENOEXEC, "program headers");
	eh.e_phnum = 2;
	eh.e_phentsize = 32;
	memcpy(bad, &eh, sizeof(eh));
	expect_refused(&t, bad, len, NULL, NULL, 0, ENOEXEC, "program header size");
	memcpy(bad, "\x7f" "ELX", 4);
	expect_refused(&t, bad, len, NULL, NULL, 0, ENOEXEC, "neither an ELF vmlinux nor a bzImage");
	free(bad);
	free(k);
	tram_free(&t);
}

/* Patch program header i of an image from build_elf(). */
static void patch_phdr(uint8_t *k, unsigned i, void (*fn)(Elf64_Phdr *))
{
	Elf64_Phdr ph;

	memcpy(&ph, k + sizeof(Elf64_Ehdr) + i * sizeof(ph), sizeof(ph));
	fn(&ph);
	memcpy(k + sizeof(Elf64_Ehdr) + i * sizeof(ph), &ph, sizeof(ph));
}

static void filesz_over_memsz(Elf64_Phdr *ph) { ph->p_filesz = ph->p_memsz + 1; }
static void data_past_eof(Elf64_Phdr *ph) { ph->p_offset = 0x100000; }
static void offset_wraps(Elf64_Phdr *ph) { ph->p_offset = UINT64_MAX - 0x10; }
static void paddr_wraps(Elf64_Phdr *ph) { ph->p_paddr = UINT64_MAX - 0x10; }

static void test_malformed_segments(void **state)
{
	(void)state;
	struct tram t;
	size_t len;
	uint8_t *k;

	tram_init(&t, 16 * MiB);
	k = elf_with(two_segs, 2, KPADDR, &len);
	patch_phdr(k, 1, filesz_over_memsz);
	expect_refused(&t, k, len, NULL, NULL, 0, ENOEXEC, "p_filesz");
	free(k);
	k = elf_with(two_segs, 2, KPADDR, &len);
	patch_phdr(k, 0, data_past_eof);
	expect_refused(&t, k, len, NULL, NULL, 0, ENOEXEC, "beyond the end");
	patch_phdr(k, 0, offset_wraps);
	expect_refused(&t, k, len, NULL, NULL, 0, ENOEXEC, "beyond the end");
	free(k);
	k = elf_with(two_segs, 2, KPADDR, &len);
	patch_phdr(k, 0, paddr_wraps);
	expect_refused(&t, k, len, NULL, NULL, 0, ENOEXEC, "wraps");
	free(k);

	const struct tseg overlap[] = {
		{ .paddr = KPADDR, .filesz = 0x1000, .memsz = 0x3000 },
		{ .paddr = KPADDR + 0x2000, .filesz = 0x1000, .memsz = 0x1000 },
	};
	k = elf_with(overlap, 2, KPADDR, &len);
	expect_refused(&t, k, len, NULL, NULL, 0, ENOEXEC, "overlaps an earlier segment");
	free(k);

	const struct tseg outside[] = { { .paddr = 15 * MiB, .filesz = 0x1000, .memsz = 2 * MiB } };
	k = elf_with(outside, 1, 15 * MiB, &len);
	expect_refused(&t, k, len, NULL, NULL, 0, ENOMEM, "outside guest RAM");
	free(k);

	const struct tseg in_hole[] = { { .paddr = GMEM_HOLE_START, .filesz = 0x1000, .memsz = 0x1000 } };
	k = elf_with(in_hole, 1, GMEM_HOLE_START, &len);
	expect_refused(&t, k, len, NULL, NULL, 0, ENOMEM, "outside guest RAM");
	free(k);

	const struct tseg low[] = { { .paddr = 0x7000, .filesz = 0x1000, .memsz = 0x1000 } };
	k = elf_with(low, 1, 0x7000, &len);
	expect_refused(&t, k, len, NULL, NULL, 0, ENOEXEC, "boot structures");
	free(k);

	k = elf_with(two_segs, 2, KPADDR + 0x100000, &len);
	expect_refused(&t, k, len, NULL, NULL, 0, ENOEXEC, "entry point");
	free(k);

	const struct tseg empty[] = { { .paddr = KPADDR, .filesz = 0, .memsz = 0 } };
	k = elf_with(empty, 1, KPADDR, &len);
	expect_refused(&t, k, len, NULL, NULL, 0, ENOEXEC, "no loadable segment");
	free(k);
	tram_free(&t);
}

static void test_malformed_pvh_note(void **state)
{
	(void)state;
	struct telf o = { .entry = KPADDR, .segs = two_segs, .nsegs = 2, .pvh_size = 8,
			  .pvh_entry = 0x10000000 };	/* in no segment */
	struct tram t;
	size_t len;
	uint8_t *k = build_elf(&o, &len);

	tram_init(&t, 16 * MiB);
	expect_refused(&t, k, len, NULL, NULL, 0, ENOEXEC, "PVH entry");
	/* Note descsz 2: not an address. */
	size_t note_off = sizeof(Elf64_Ehdr) + 3 * sizeof(Elf64_Phdr);
	Elf64_Nhdr nh;
	memcpy(&nh, k + note_off, sizeof(nh));
	nh.n_descsz = 2;
	memcpy(k + note_off, &nh, sizeof(nh));
	expect_refused(&t, k, len, NULL, NULL, 0, ENOEXEC, "4 or 8 expected");
	/* Note claims more than its segment holds. */
	nh.n_descsz = 0x1000;
	memcpy(k + note_off, &nh, sizeof(nh));
	expect_refused(&t, k, len, NULL, NULL, 0, ENOEXEC, "overruns");
	free(k);
	tram_free(&t);
}

static void test_machine_and_inputs_refused(void **state)
{
	(void)state;
	struct tram t;
	size_t len;
	uint8_t *k = elf_with(two_segs, 2, KPADDR, &len);
	char *longcmd = malloc(4000);

	tram_init(&t, 512 * 1024);
	expect_refused(&t, k, len, NULL, NULL, 0, ENOMEM, "too small");
	tram_free(&t);

	tram_init(&t, 4 * MiB);
	struct boot_config cfg = { .kernel = k, .kernel_len = len, .ncpus = 0 };
	struct boot_entry e;
	assert_int_equal(boot_load(&t.gm, &cfg, &e), -EINVAL);
	assert_non_null(strstr(boot_error(), "vCPUs"));
	cfg.ncpus = 255;
	assert_int_equal(boot_load(&t.gm, &cfg, &e), -EINVAL);
	assert_int_equal(boot_load(&t.gm, NULL, &e), -EINVAL);

	memset(longcmd, 'a', 2048);
	longcmd[2048] = 0;
	expect_refused(&t, k, len, longcmd, NULL, 0, E2BIG, "command line of 2048 bytes");
	longcmd[2047] = 0;	/* 2047 fits (2048 with the NUL) */
	assert_int_equal(load(&t, k, len, longcmd, NULL, 0, &e), 0);
	assert_int_equal(strlen(gpa(&t, BOOT_CMDLINE_ADDR, 2048)), 2047);

	/* An initrd larger than the RAM beside the kernel. */
	size_t big = 3 * MiB;
	uint8_t *initrd = calloc(1, big);
	expect_refused(&t, k, len, "", initrd, big, ENOMEM, "initrd of 3072 KiB does not fit");
	/* One that only fits below the kernel goes there, above 1 MiB. */
	const struct tseg high[] = { { .paddr = 3 * MiB, .filesz = 0x1000, .memsz = 0x80000 } };
	free(k);
	k = elf_with(high, 1, 3 * MiB, &len);
	assert_int_equal(load(&t, k, len, "", initrd, 1 * MiB, &e), 0);
	const struct boot_params *bp = zero_page(&t);
	assert_int_equal(bp->hdr.ramdisk_image, 2 * MiB);
	assert_true(bp->hdr.ramdisk_image + bp->hdr.ramdisk_size <= 3 * MiB);
	free(initrd);
	free(longcmd);
	free(k);
	tram_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_long64_zero_page),
		cmocka_unit_test(test_page_tables_and_gdt),
		cmocka_unit_test(test_virtual_entry_translated),
		cmocka_unit_test(test_pvh_note_8),
		cmocka_unit_test(test_pvh_note_4),
		cmocka_unit_test(test_pvh_note_in_section),
		cmocka_unit_test(test_layout_around_hole),
		cmocka_unit_test(test_malformed_headers),
		cmocka_unit_test(test_malformed_segments),
		cmocka_unit_test(test_malformed_pvh_note),
		cmocka_unit_test(test_machine_and_inputs_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
