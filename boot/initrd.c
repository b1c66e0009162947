/* boot/initrd.c - where the initramfs goes: as high as the kernel allows
 * (below both the end of low RAM and the kernel's initrd limit), page
 * aligned, never over the kernel; if the space above the kernel is too small
 * it goes just below the kernel, never below 1 MiB.
 */
#include <errno.h>
#include <string.h>

#include "boot/internal.h"
#include "boot/layout.h"

static uint64_t align_down(uint64_t v, uint64_t a)
{
	return v & ~(a - 1);
}

/* Highest page-aligned start for len bytes ending at or below top that
 * stays at or above floor; 0 if none. */
static uint64_t highest_fit(uint64_t top, uint64_t floor, uint64_t len)
{
	uint64_t start;

	if (len > top)
		return 0;
	start = align_down(top - len, BOOT_PAGE);
	return start >= floor ? start : 0;
}

int boot_place_initrd(struct boot_ctx *c)
{
	uint64_t len = c->cfg->initrd ? c->cfg->initrd_len : 0;
	uint64_t top = c->low_top < c->initrd_limit ? c->low_top : c->initrd_limit;
	uint64_t above = c->kernel_end > BOOT_KERNEL_MIN ? c->kernel_end : BOOT_KERNEL_MIN;
	uint64_t addr;

	if (len == 0)
		return 0;
	above = (above + BOOT_PAGE - 1) & ~(BOOT_PAGE - 1);
	addr = highest_fit(top, above, len);
	if (addr == 0 && c->kernel_start > BOOT_KERNEL_MIN)
		addr = highest_fit(c->kernel_start < top ? c->kernel_start : top, BOOT_KERNEL_MIN, len);
	if (addr == 0)
		return boot_fail(ENOMEM, "initrd of %llu KiB does not fit in guest RAM below 0x%llx beside the kernel [0x%llx, 0x%llx)",
				 (unsigned long long)(len >> 10), (unsigned long long)top,
				 (unsigned long long)c->kernel_start, (unsigned long long)c->kernel_end);
	if (gmem_write(c->gm, addr, c->cfg->initrd, len))
		return boot_fail(EFAULT, "initrd range [0x%llx, +0x%llx) is not guest RAM",
				 (unsigned long long)addr, (unsigned long long)len);
	c->initrd_addr = addr;
	c->initrd_len = len;
	return 0;
}
