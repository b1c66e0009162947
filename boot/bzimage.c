/* boot/bzimage.c - a bzImage entered at its 64-bit entry (boot protocol
 * 2.12+, XLF_KERNEL_64): the protected-mode part is copied to pref_address
 * (or 0x100000) and entered at +0x200 in long mode; the real-mode setup code
 * is never run.  The setup header is kept so zeropage.c can copy it into the
 * zero page as the protocol asks, and its limits (initrd_addr_max,
 * cmdline_size, init_size) bound what the loader places around the kernel.
 */
#include <errno.h>
#include <string.h>

#include "boot/internal.h"
#include "boot/layout.h"

#define BZ_MIN_VERSION 0x020c	/* 2.12: xloadflags, XLF_KERNEL_64 */
#define BZ_HDR_END_MIN (BOOT_SETUP_HEADER_OFF + offsetof(struct setup_header, kernel_info_offset))

bool boot_is_bzimage(const uint8_t *img, size_t len)
{
	uint32_t magic;

	if (len < 0x202 + sizeof(magic))
		return false;
	memcpy(&magic, img + 0x202, sizeof(magic));
	return magic == BOOT_HDRS_MAGIC;
}

/* Copy the setup header out of the image; its length is given by the jump
 * at 0x200 (0x202 + its displacement byte), capped to what we know. */
static void read_header(struct boot_ctx *c)
{
	const uint8_t *img = c->cfg->kernel;
	size_t len = c->cfg->kernel_len;
	size_t end = 0x202 + (size_t)img[0x201];
	size_t n;

	if (end > len)
		end = len;
	n = end - BOOT_SETUP_HEADER_OFF;
	if (n > sizeof(c->hdr))
		n = sizeof(c->hdr);
	memset(&c->hdr, 0, sizeof(c->hdr));
	memcpy(&c->hdr, img + BOOT_SETUP_HEADER_OFF, n);
	c->hdr_len = n;
}

static int check_header(const struct boot_ctx *c)
{
	const struct setup_header *h = &c->hdr;

	if (c->cfg->kernel_len < BZ_HDR_END_MIN || BOOT_SETUP_HEADER_OFF + c->hdr_len < BZ_HDR_END_MIN)
		return boot_fail(ENOEXEC, "bzImage setup header truncated (%zu bytes of header, file %zu bytes)",
				 c->hdr_len, c->cfg->kernel_len);
	if (h->version < BZ_MIN_VERSION)
		return boot_fail(ENOEXEC, "bzImage boot protocol %u.%02u is too old: the 64-bit entry needs 2.12",
				 h->version >> 8, h->version & 0xff);
	if (!(h->xloadflags & XLF_KERNEL_64))
		return boot_fail(ENOEXEC, "bzImage has no 64-bit entry point (XLF_KERNEL_64 not set)");
	return 0;
}

/* Where the protected-mode kernel goes: pref_address when it is sane. */
static uint64_t load_address(const struct setup_header *h)
{
	if (h->pref_address >= BOOT_KERNEL_MIN && h->pref_address < GMEM_HOLE_START &&
	    h->pref_address % BOOT_PAGE == 0)
		return h->pref_address;
	return BOOT_BZIMAGE_ADDR;
}

int boot_bzimage_load(struct boot_ctx *c)
{
	const struct setup_header *h = &c->hdr;
	size_t len = c->cfg->kernel_len;
	uint64_t setup_size, payload, load, span;
	uint8_t *dst;
	int r;

	c->bzimage = true;
	read_header(c);
	r = check_header(c);
	if (r)
		return r;
	setup_size = ((uint64_t)(h->setup_sects ? h->setup_sects : 4) + 1) * 512;
	if (setup_size >= len)
		return boot_fail(ENOEXEC, "bzImage truncated: %llu bytes of setup code but the file has %zu",
				 (unsigned long long)setup_size, len);
	payload = len - setup_size;
	load = load_address(h);
	span = h->init_size > payload ? h->init_size : payload;
	if (!gmem_ptr(c->gm, load, span))
		return boot_fail(ENOMEM, "bzImage needs [0x%llx, 0x%llx) (init_size %u) but guest RAM below the hole ends at 0x%llx",
				 (unsigned long long)load, (unsigned long long)(load + span),
				 h->init_size, (unsigned long long)c->low_top);
	dst = gmem_ptr(c->gm, load, payload);
	memcpy(dst, c->cfg->kernel + setup_size, payload);
	c->kernel_start = load;
	c->kernel_end = load + span;
	c->entry = load + BOOT_BZ_ENTRY64_OFF;
	c->cmdline_max = h->cmdline_size;
	if (c->cmdline_max >= BOOT_CMDLINE_AREA)
		c->cmdline_max = BOOT_CMDLINE_AREA - 1;
	c->initrd_limit = (uint64_t)h->initrd_addr_max + 1;
	return 0;
}
