/* tests/unit/test_boot_images.h - synthetic kernel images and a test guest
 * RAM for the boot/ unit tests: an ELF64 vmlinux builder (optionally with a
 * Xen PVH note), a bzImage builder, and helpers that read back what
 * boot_load() wrote.  Header-only (static functions) because each unit test
 * is its own program.
 */
#ifndef KVMBOX_TEST_BOOT_IMAGES_H
#define KVMBOX_TEST_BOOT_IMAGES_H

#include <elf.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "boot/abi.h"
#include "boot/boot.h"
#include "boot/layout.h"
#include "common/gmem.h"

#define MiB (1ULL << 20)
#define GiB (1ULL << 30)

/* One PT_LOAD segment for build_elf(); file bytes are `fill`, i.e. the
 * segment's contents are recognisable in guest RAM. */
struct tseg {
	uint64_t paddr, vaddr, filesz, memsz;
	uint8_t fill;
};

/* The ELF builder's options. */
struct telf {
	uint64_t entry;
	const struct tseg *segs;
	unsigned nsegs;
	unsigned pvh_size;	/* 0: no PVH note; 4 or 8: note with that desc size */
	uint64_t pvh_entry;
	int note_in_section;	/* note in an SHT_NOTE section, no PT_NOTE */
};

/* Build an ELF64 x86-64 executable in a fresh malloc'd buffer; *len gets
 * its size.  Layout: ehdr, phdrs (PT_LOADs then the PT_NOTE), the note,
 * then each segment's file bytes at a 4 KiB-aligned offset. */
static inline uint8_t *build_elf(const struct telf *o, size_t *len)
{
	unsigned nph = o->nsegs + (o->pvh_size && !o->note_in_section ? 1 : 0);
	size_t note_off = sizeof(Elf64_Ehdr) + nph * sizeof(Elf64_Phdr);
	size_t note_len = o->pvh_size ? sizeof(Elf64_Nhdr) + 4 + o->pvh_size : 0;
	size_t sh_off = (note_off + note_len + 7) & ~7UL;
	size_t off = (sh_off + 2 * sizeof(Elf64_Shdr) + 4095) & ~4095UL, total = off;
	uint8_t *buf;

	for (unsigned i = 0; i < o->nsegs; i++)
		total += (o->segs[i].filesz + 4095) & ~4095UL;
	buf = calloc(1, total);
	Elf64_Ehdr eh = { .e_type = ET_EXEC, .e_machine = EM_X86_64, .e_version = EV_CURRENT,
			  .e_entry = o->entry, .e_phoff = sizeof(Elf64_Ehdr),
			  .e_ehsize = sizeof(Elf64_Ehdr), .e_phentsize = sizeof(Elf64_Phdr),
			  .e_phnum = (uint16_t)nph };
	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS64;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_ident[EI_VERSION] = EV_CURRENT;
	memcpy(buf, &eh, sizeof(eh));
	for (unsigned i = 0; i < o->nsegs; i++) {
		const struct tseg *s = &o->segs[i];
		Elf64_Phdr ph = { .p_type = PT_LOAD, .p_flags = PF_R | PF_X, .p_offset = off,
				  .p_vaddr = s->vaddr ? s->vaddr : s->paddr, .p_paddr = s->paddr,
				  .p_filesz = s->filesz, .p_memsz = s->memsz, .p_align = 4096 };
		memcpy(buf + sizeof(eh) + i * sizeof(ph), &ph, sizeof(ph));
		memset(buf + off, s->fill, s->filesz);
		off += (s->filesz + 4095) & ~4095UL;
	}
	if (o->pvh_size) {
		Elf64_Phdr ph = { .p_type = PT_NOTE, .p_offset = note_off, .p_filesz = note_len, .p_align = 4 };
		Elf64_Nhdr nh = { .n_namesz = 4, .n_descsz = o->pvh_size, .n_type = XEN_ELFNOTE_PHYS32_ENTRY };

		if (o->note_in_section) {
			Elf64_Shdr sh[2] = { { 0 }, { .sh_type = SHT_NOTE, .sh_offset = note_off,
						      .sh_size = note_len, .sh_addralign = 4 } };

			memcpy(buf + sh_off, sh, sizeof(sh));
			eh.e_shoff = sh_off;
			eh.e_shnum = 2;
			eh.e_shentsize = sizeof(Elf64_Shdr);
			memcpy(buf, &eh, sizeof(eh));
		} else {
			memcpy(buf + sizeof(eh) + o->nsegs * sizeof(ph), &ph, sizeof(ph));
		}
		memcpy(buf + note_off, &nh, sizeof(nh));
		memcpy(buf + note_off + sizeof(nh), "Xen", 4);
		memcpy(buf + note_off + sizeof(nh) + 4, &o->pvh_entry, o->pvh_size);
	}
	*len = total;
	return buf;
}

/* The bzImage builder's options (fields of the setup header). */
struct tbz {
	uint8_t setup_sects;
	uint16_t version;
	uint16_t xloadflags;
	uint64_t pref_address;
	uint32_t init_size;
	uint32_t initrd_addr_max;
	uint32_t cmdline_size;
	size_t payload_len;
	uint8_t fill;
};

static inline struct tbz tbz_default(void)
{
	return (struct tbz){ .setup_sects = 4, .version = 0x020f, .xloadflags = XLF_KERNEL_64,
			     .pref_address = 0x200000, .init_size = 0x100000,
			     .initrd_addr_max = 0x7fffffff, .cmdline_size = 2047,
			     .payload_len = 0x3000, .fill = 0x5a };
}

/* A bzImage: boot sector + setup sectors (the header at 0x1f1), then the
 * protected-mode payload filled with o->fill. */
static inline uint8_t *build_bzimage(const struct tbz *o, size_t *len)
{
	size_t setup = ((size_t)(o->setup_sects ? o->setup_sects : 4) + 1) * 512;
	uint8_t *buf = calloc(1, setup + o->payload_len);
	struct setup_header h = {
		.setup_sects = o->setup_sects, .boot_flag = BOOT_FLAG_MAGIC,
		.jump = 0x6aeb, /* jmp to 0x26c: the header is 0x26c - 0x1f1 bytes */
		.header = BOOT_HDRS_MAGIC, .version = o->version, .loadflags = LOADED_HIGH,
		.code32_start = 0x100000, .initrd_addr_max = o->initrd_addr_max,
		.kernel_alignment = 0x200000, .relocatable_kernel = 1,
		.xloadflags = o->xloadflags, .cmdline_size = o->cmdline_size,
		.pref_address = o->pref_address, .init_size = o->init_size,
	};

	memcpy(buf + BOOT_SETUP_HEADER_OFF, &h, sizeof(h));
	memset(buf + setup, o->fill, o->payload_len);
	*len = setup + o->payload_len;
	return buf;
}

/* Guest RAM for a test: calloc'd (so ASan sees every byte past its end), or
 * an mmap(MAP_NORESERVE) reservation for multi-GiB layouts. */
struct tram {
	uint8_t *host;
	uint64_t size;
	int mapped;
	struct gmem gm;
};

static inline void tram_init_how(struct tram *t, uint64_t size, int mapped)
{
	t->size = size;
	t->mapped = mapped;
	if (t->mapped) {
		t->host = mmap(NULL, size, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (t->host == MAP_FAILED)
			t->host = NULL;
	} else {
		t->host = malloc(size);
		if (t->host)
			memset(t->host, 0xee, size);	/* prove the loader clears what it owns */
	}
	if (t->host)
		gmem_init_x86(&t->gm, t->host, size);
}

static inline void tram_init(struct tram *t, uint64_t size)
{
	tram_init_how(t, size, size > 256 * MiB);
}

/* Page-aligned RAM, as KVM_SET_USER_MEMORY_REGION needs. */
static inline void tram_init_mapped(struct tram *t, uint64_t size)
{
	tram_init_how(t, size, 1);
}

static inline void tram_free(struct tram *t)
{
	if (t->mapped)
		munmap(t->host, t->size);
	else
		free(t->host);
}

static inline void *gpa(struct tram *t, uint64_t addr, uint64_t len)
{
	return gmem_ptr(&t->gm, addr, len);
}

/* Zero page read back by value (the gpa 0x7000 is 4 KiB aligned anyway). */
static inline const struct boot_params *zero_page(struct tram *t)
{
	return gpa(t, BOOT_ZERO_PAGE_ADDR, sizeof(struct boot_params));
}

static inline uint8_t sum8(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint8_t s = 0;

	while (n--)
		s += *b++;
	return s;
}

#endif
