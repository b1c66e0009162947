/* boot/internal.h - state shared by the loader's parts (not a public API).
 *
 * boot_load() fills one struct boot_ctx as it goes: the image parser (elf.c
 * or bzimage.c) sets the kernel's range, entry and limits; initrd.c places
 * the initramfs; e820.c, mptable.c, zeropage.c and pvh.c write the boot
 * structures from it.
 */
#ifndef KVMBOX_BOOT_INTERNAL_H
#define KVMBOX_BOOT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "boot/abi.h"
#include "boot/boot.h"

#define BOOT_E820_MAX 8		/* the loader never writes more than this */
#define BOOT_PAGE 4096ULL

struct boot_ctx {
	const struct gmem *gm;
	const struct boot_config *cfg;
	uint64_t low_top;	/* end of RAM below the MMIO hole (region 0) */
	/* Set by the image parser. */
	uint64_t kernel_start;	/* gpa range the kernel owns, incl. bss/init_size */
	uint64_t kernel_end;
	uint64_t entry;		/* rip */
	bool pvh;		/* enter at the Xen PVH 32-bit entry */
	bool bzimage;		/* setup header comes from the image */
	struct setup_header hdr;	/* bzImage: copied from the image */
	size_t hdr_len;		/* bytes of it the image actually has */
	uint64_t initrd_limit;	/* initrd must end at or below this gpa */
	uint64_t cmdline_max;	/* longest command line, NUL excluded */
	/* Set by initrd.c. */
	uint64_t initrd_addr;
	uint64_t initrd_len;
	/* Set by e820.c. */
	struct boot_e820_entry e820[BOOT_E820_MAX];
	unsigned ne820;
};

/* Record a one-line reason for boot_error() and return -err. */
int boot_fail(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

int boot_elf_load(struct boot_ctx *c);
int boot_bzimage_load(struct boot_ctx *c);
bool boot_is_elf(const uint8_t *img, size_t len);
bool boot_is_bzimage(const uint8_t *img, size_t len);

int boot_place_initrd(struct boot_ctx *c);
void boot_build_e820(struct boot_ctx *c);
int boot_write_mptable(const struct boot_ctx *c);
int boot_write_zero_page(const struct boot_ctx *c);
int boot_write_page_tables(const struct gmem *gm);
int boot_write_gdt(const struct gmem *gm, bool pvh);
int boot_write_pvh_info(const struct boot_ctx *c);

#endif
