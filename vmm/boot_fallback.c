/* vmm/boot_fallback.c - a stand-in for boot/ while boot/ has no sources:
 * loads only PVH ELF images (the tiny test guests) so vmm/ can be built and
 * tested on its own.  vmm/module.mk compiles this file only when boot/ has
 * no .c file; as soon as boot/'s real loader exists this file is excluded
 * and should be deleted.  Same contract (boot/boot.h), same refusals: every
 * range is checked through gmem before it is written.
 */
#include <elf.h>
#include <errno.h>
#include <string.h>

#include "boot/boot.h"

#define FB_GDT 0x5000
#define FB_START_INFO 0x6000
#define FB_CMDLINE 0x7000
#define FB_CMDLINE_MAX 0x1000
#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define HVM_START_MAGIC 0x336ec578u

static __thread const char *fb_error = "no error";

const char *boot_error(void)
{
	return fb_error;
}

static int fb_fail(const char *why)
{
	fb_error = why;
	return -EINVAL;
}

/* Entry point from the Xen PVH note in a PT_NOTE segment, or 0. */
static uint64_t fb_pvh_entry(const uint8_t *img, const Elf64_Phdr *ph)
{
	uint64_t off = ph->p_offset, end = ph->p_offset + ph->p_filesz;
	while (off + 12 <= end) {
		uint32_t n[3];
		memcpy(n, img + off, sizeof(n));
		uint64_t desc = off + 12 + ((n[0] + 3ULL) & ~3ULL);
		uint64_t next = desc + ((n[1] + 3ULL) & ~3ULL);
		if (next > end)
			return 0;
		if (n[2] == XEN_ELFNOTE_PHYS32_ENTRY && n[0] == 4 && n[1] >= 4 &&
		    !memcmp(img + off + 12, "Xen", 4)) {
			uint32_t e;
			memcpy(&e, img + desc, 4);
			return e;
		}
		off = next;
	}
	return 0;
}

int boot_load(const struct gmem *gm, const struct boot_config *cfg, struct boot_entry *entry)
{
	const uint8_t *img = cfg->kernel;
	Elf64_Ehdr eh;
	if (cfg->kernel_len < sizeof(eh))
		return fb_fail("kernel image truncated (shorter than an ELF header)");
	memcpy(&eh, img, sizeof(eh));
	if (memcmp(eh.e_ident, ELFMAG, SELFMAG) || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh.e_machine != EM_X86_64)
		return fb_fail("not an x86-64 ELF image (this build loads only PVH ELF guests)");
	if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phoff > cfg->kernel_len ||
	    (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr) > cfg->kernel_len - eh.e_phoff)
		return fb_fail("ELF program headers truncated or malformed");
	uint64_t pvh = 0, end = 0;
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;
		memcpy(&ph, img + eh.e_phoff + i * sizeof(ph), sizeof(ph));
		if (ph.p_type != PT_LOAD && ph.p_type != PT_NOTE)
			continue;
		if (ph.p_offset > cfg->kernel_len || ph.p_filesz > cfg->kernel_len - ph.p_offset)
			return fb_fail("ELF segment extends past the end of the file (truncated?)");
		if (ph.p_type == PT_NOTE) {
			if (!pvh)
				pvh = fb_pvh_entry(img, &ph);
			continue;
		}
		if (ph.p_filesz > ph.p_memsz)
			return fb_fail("ELF segment larger on file than in memory");
		uint8_t *dst = gmem_ptr(gm, ph.p_paddr, ph.p_memsz);
		if (!dst || ph.p_paddr < FB_CMDLINE + FB_CMDLINE_MAX)
			return fb_fail("ELF segment outside guest RAM (too little --memory?)");
		memcpy(dst, img + ph.p_offset, ph.p_filesz);
		memset(dst + ph.p_filesz, 0, ph.p_memsz - ph.p_filesz);
		if (ph.p_paddr + ph.p_memsz > end)
			end = ph.p_paddr + ph.p_memsz;
	}
	if (!pvh)
		return fb_fail("no PVH entry note (this build loads only PVH ELF guests)");
	size_t cl = strlen(cfg->cmdline) + 1;
	if (cl > FB_CMDLINE_MAX)
		return fb_fail("command line too long");
	static const uint64_t gdt[3] = { 0, 0x00cf9a000000ffffULL, 0x00cf92000000ffffULL };
	uint32_t si[14] = { HVM_START_MAGIC, 1, 0, 0, 0, 0, FB_CMDLINE, 0 };
	if (gmem_write(gm, FB_GDT, gdt, sizeof(gdt)) < 0 ||
	    gmem_write(gm, FB_CMDLINE, cfg->cmdline, cl) < 0 ||
	    gmem_write(gm, FB_START_INFO, si, sizeof(si)) < 0)
		return fb_fail("guest RAM too small for the boot structures");
	*entry = (struct boot_entry){
		.mode = BOOT_MODE_PVH32, .rip = pvh, .rbx = FB_START_INFO, .gdt_base = FB_GDT,
		.gdt_limit = sizeof(gdt) - 1, .code_sel = 0x08, .data_sel = 0x10, .kernel_end = end,
	};
	return 0;
}
