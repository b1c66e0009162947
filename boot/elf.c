/* boot/elf.c - an uncompressed ELF64 vmlinux: PT_LOAD segments copied to their
 * physical addresses, entered at the Xen PVH entry when a PT_NOTE carries
 * XEN_ELFNOTE_PHYS32_ENTRY, otherwise at e_entry (startup_64) in long mode.
 *
 * Linux links vmlinux with ENTRY(phys_startup_64), so e_entry is already
 * physical (0x1000000 by default); an image whose e_entry is virtual (inside
 * some segment's p_vaddr range but no p_paddr range) is translated through
 * that segment.  The file is untrusted: every header, offset and size is
 * checked against the file and against guest RAM before anything is copied,
 * and structures are read with memcpy (the buffer need not be aligned).
 */
#include <elf.h>
#include <errno.h>
#include <string.h>

#include "boot/internal.h"
#include "boot/layout.h"

#define ELF_MAX_PHDRS 64	/* vmlinux has about 5; more is not a kernel */

/* A loadable segment after validation. */
struct seg {
	uint64_t paddr, vaddr, memsz, filesz, offset;
};

struct elf_img {
	const uint8_t *img;
	size_t len;
	Elf64_Ehdr eh;
	struct seg seg[ELF_MAX_PHDRS];
	unsigned nseg;
	bool have_pvh;
	uint64_t pvh_entry;
};

bool boot_is_elf(const uint8_t *img, size_t len)
{
	return len >= SELFMAG && memcmp(img, ELFMAG, SELFMAG) == 0;
}

static int check_ehdr(struct elf_img *e)
{
	Elf64_Ehdr *eh = &e->eh;

	if (e->len < sizeof(*eh))
		return boot_fail(ENOEXEC, "ELF kernel truncated: %zu bytes, the ELF header needs %zu",
				 e->len, sizeof(*eh));
	memcpy(eh, e->img, sizeof(*eh));
	if (eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_ident[EI_DATA] != ELFDATA2LSB)
		return boot_fail(ENOEXEC, "ELF kernel is not 64-bit little-endian");
	if (eh->e_machine != EM_X86_64)
		return boot_fail(ENOEXEC, "ELF kernel is for machine %u, not x86-64", eh->e_machine);
	if (eh->e_type != ET_EXEC)
		return boot_fail(ENOEXEC, "ELF kernel is not an executable (e_type %u)", eh->e_type);
	if (eh->e_phentsize != sizeof(Elf64_Phdr))
		return boot_fail(ENOEXEC, "ELF program header size %u, expected %zu", eh->e_phentsize,
				 sizeof(Elf64_Phdr));
	if (eh->e_phnum == 0 || eh->e_phnum > ELF_MAX_PHDRS)
		return boot_fail(ENOEXEC, "ELF kernel has %u program headers (1 to %d accepted)",
				 eh->e_phnum, ELF_MAX_PHDRS);
	if (eh->e_phoff > e->len || (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr) > e->len - eh->e_phoff)
		return boot_fail(ENOEXEC, "ELF program header table [0x%llx, +%zu) lies beyond the end of the %zu-byte file",
				 (unsigned long long)eh->e_phoff, eh->e_phnum * sizeof(Elf64_Phdr), e->len);
	return 0;
}

static bool ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

static int add_load(struct elf_img *e, struct boot_ctx *c, unsigned i, const Elf64_Phdr *ph)
{
	struct seg s = { ph->p_paddr, ph->p_vaddr, ph->p_memsz, ph->p_filesz, ph->p_offset };

	if (s.memsz == 0)
		return 0;
	if (s.filesz > s.memsz)
		return boot_fail(ENOEXEC, "ELF segment %u: p_filesz 0x%llx exceeds p_memsz 0x%llx", i,
				 (unsigned long long)s.filesz, (unsigned long long)s.memsz);
	if (s.offset > e->len || s.filesz > e->len - s.offset)
		return boot_fail(ENOEXEC, "ELF segment %u: file data [0x%llx, +0x%llx) lies beyond the end of the %zu-byte file",
				 i, (unsigned long long)s.offset, (unsigned long long)s.filesz, e->len);
	if (s.paddr + s.memsz < s.paddr)
		return boot_fail(ENOEXEC, "ELF segment %u: physical range wraps around", i);
	if (s.paddr < BOOT_KERNEL_MIN)
		return boot_fail(ENOEXEC, "ELF segment %u at 0x%llx overlaps the boot structures below 1 MiB",
				 i, (unsigned long long)s.paddr);
	if (!gmem_ptr(c->gm, s.paddr, s.memsz))
		return boot_fail(ENOMEM, "ELF segment %u [0x%llx, 0x%llx) is outside guest RAM (%llu MiB)",
				 i, (unsigned long long)s.paddr, (unsigned long long)(s.paddr + s.memsz),
				 (unsigned long long)(c->gm->ram_size >> 20));
	for (unsigned j = 0; j < e->nseg; j++)
		if (ranges_overlap(s.paddr, s.memsz, e->seg[j].paddr, e->seg[j].memsz))
			return boot_fail(ENOEXEC, "ELF segment %u [0x%llx, 0x%llx) overlaps an earlier segment",
					 i, (unsigned long long)s.paddr,
					 (unsigned long long)(s.paddr + s.memsz));
	e->seg[e->nseg++] = s;
	return 0;
}

/* Walk the notes in file range [off, off+size) looking for Xen's
 * PHYS32_ENTRY. */
static int scan_notes(struct elf_img *e, uint64_t off, uint64_t size)
{
	uint64_t end;

	if (off > e->len || size > e->len - off)
		return boot_fail(ENOEXEC, "ELF note segment lies beyond the end of the file");
	end = off + size;
	while (end - off >= sizeof(Elf64_Nhdr)) {
		Elf64_Nhdr nh;
		uint64_t name_off, desc_off, next;

		memcpy(&nh, e->img + off, sizeof(nh));
		name_off = off + sizeof(nh);
		desc_off = name_off + (((uint64_t)nh.n_namesz + 3) & ~3ULL);
		next = desc_off + (((uint64_t)nh.n_descsz + 3) & ~3ULL);
		if (next > end)
			return boot_fail(ENOEXEC, "ELF note at file offset 0x%llx overruns its segment",
					 (unsigned long long)off);
		if (nh.n_type == XEN_ELFNOTE_PHYS32_ENTRY && nh.n_namesz == 4 &&
		    memcmp(e->img + name_off, "Xen", 4) == 0) {
			uint64_t v = 0;

			if (nh.n_descsz != 4 && nh.n_descsz != 8)
				return boot_fail(ENOEXEC, "Xen PHYS32_ENTRY note has a %u-byte value (4 or 8 expected)",
						 nh.n_descsz);
			memcpy(&v, e->img + desc_off, nh.n_descsz);
			e->have_pvh = true;
			e->pvh_entry = v;
		}
		off = next;
	}
	return 0;
}

static int scan_phdrs(struct elf_img *e, struct boot_ctx *c)
{
	int r = 0;

	for (unsigned i = 0; i < e->eh.e_phnum && r == 0; i++) {
		Elf64_Phdr ph;

		memcpy(&ph, e->img + e->eh.e_phoff + (uint64_t)i * sizeof(ph), sizeof(ph));
		if (ph.p_type == PT_LOAD)
			r = add_load(e, c, i, &ph);
		else if (ph.p_type == PT_NOTE)
			r = scan_notes(e, ph.p_offset, ph.p_filesz);
	}
	if (r == 0 && e->nseg == 0)
		return boot_fail(ENOEXEC, "ELF kernel has no loadable segment");
	return r;
}

/* A linker script without PHDRS for its notes leaves them in SHT_NOTE
 * sections only; look there too.  The section table is not needed to load,
 * so one that does not fit the file is ignored rather than refused. */
static int scan_note_sections(struct elf_img *e)
{
	const Elf64_Ehdr *eh = &e->eh;
	int r = 0;

	if (eh->e_shentsize != sizeof(Elf64_Shdr) || eh->e_shnum == 0 || eh->e_shoff > e->len ||
	    (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr) > e->len - eh->e_shoff)
		return 0;
	for (unsigned i = 0; i < eh->e_shnum && r == 0 && !e->have_pvh; i++) {
		Elf64_Shdr sh;

		memcpy(&sh, e->img + eh->e_shoff + (uint64_t)i * sizeof(sh), sizeof(sh));
		if (sh.sh_type == SHT_NOTE)
			r = scan_notes(e, sh.sh_offset, sh.sh_size);
	}
	return r;
}

static bool in_loaded(const struct elf_img *e, uint64_t paddr)
{
	for (unsigned i = 0; i < e->nseg; i++)
		if (paddr >= e->seg[i].paddr && paddr - e->seg[i].paddr < e->seg[i].memsz)
			return true;
	return false;
}

/* e_entry as a physical address: as is when it falls in a loaded segment,
 * else translated through the segment whose virtual range holds it. */
static int resolve_entry(const struct elf_img *e, uint64_t *out)
{
	uint64_t v = e->eh.e_entry;

	if (in_loaded(e, v)) {
		*out = v;
		return 0;
	}
	for (unsigned i = 0; i < e->nseg; i++) {
		const struct seg *s = &e->seg[i];

		if (v >= s->vaddr && v - s->vaddr < s->memsz) {
			*out = v - s->vaddr + s->paddr;
			return 0;
		}
	}
	return boot_fail(ENOEXEC, "ELF entry point 0x%llx is in no loadable segment",
			 (unsigned long long)v);
}

static void copy_segments(const struct elf_img *e, struct boot_ctx *c)
{
	c->kernel_start = UINT64_MAX;
	for (unsigned i = 0; i < e->nseg; i++) {
		const struct seg *s = &e->seg[i];
		uint8_t *dst = gmem_ptr(c->gm, s->paddr, s->memsz);	/* checked in add_load */

		memcpy(dst, e->img + s->offset, s->filesz);
		memset(dst + s->filesz, 0, s->memsz - s->filesz);
		if (s->paddr < c->kernel_start)
			c->kernel_start = s->paddr;
		if (s->paddr + s->memsz > c->kernel_end)
			c->kernel_end = s->paddr + s->memsz;
	}
}

int boot_elf_load(struct boot_ctx *c)
{
	struct elf_img e;
	int r;

	memset(&e, 0, sizeof(e));
	e.img = c->cfg->kernel;
	e.len = c->cfg->kernel_len;
	r = check_ehdr(&e);
	if (r == 0)
		r = scan_phdrs(&e, c);
	if (r == 0 && !e.have_pvh)
		r = scan_note_sections(&e);
	if (r)
		return r;
	if (e.have_pvh) {
		if (e.pvh_entry > UINT32_MAX || !in_loaded(&e, e.pvh_entry))
			return boot_fail(ENOEXEC, "Xen PVH entry 0x%llx is in no loadable segment below 4 GiB",
					 (unsigned long long)e.pvh_entry);
		c->entry = e.pvh_entry;
		c->pvh = true;
	} else {
		r = resolve_entry(&e, &c->entry);
		if (r)
			return r;
	}
	copy_segments(&e, c);
	c->cmdline_max = BOOT_CMDLINE_MAX_ELF;
	c->initrd_limit = c->low_top;
	return 0;
}
