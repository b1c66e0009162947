/* boot/boot.c - boot_load(): check the machine, pick the image parser, then
 * write every boot structure in a fixed order and describe the entry state.
 *
 * The order matters only for errors: everything that can be refused (image,
 * command line, initramfs) is checked before the small fixed structures are
 * written, so a refused load leaves no half-built zero page behind that
 * anyone could mistake for a valid one.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "boot/internal.h"
#include "boot/layout.h"

/* The last failure's reason, per thread: boot_load() may run on several
 * threads at once (tests, fuzzers), each reading its own error. */
static __thread char boot_errbuf[192];

int boot_fail(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(boot_errbuf, sizeof(boot_errbuf), fmt, ap);
	va_end(ap);
	return -err;
}

const char *boot_error(void)
{
	return boot_errbuf[0] ? boot_errbuf : "no error";
}

static int check_machine(struct boot_ctx *c)
{
	const struct gmem *gm = c->gm;

	if (gm->nregions == 0 || gm->region[0].gpa != 0)
		return boot_fail(EINVAL, "guest RAM must start at guest-physical 0");
	c->low_top = gm->region[0].size;
	if (c->low_top < BOOT_BIOS_END)
		return boot_fail(ENOMEM, "guest RAM of %llu KiB is too small: the boot structures alone need 1 MiB",
				 (unsigned long long)(c->low_top >> 10));
	if (c->cfg->ncpus < 1 || c->cfg->ncpus > BOOT_MAX_CPUS)
		return boot_fail(EINVAL, "%u vCPUs: the MP table supports 1 to %u", c->cfg->ncpus,
				 BOOT_MAX_CPUS);
	return 0;
}

int boot_probe(const uint8_t *img, size_t len)
{
	if (!img || len == 0)
		return boot_fail(EINVAL, "kernel image is empty");
	if (boot_is_elf(img, len) || boot_is_bzimage(img, len))
		return 0;
	return boot_fail(ENOEXEC, "kernel image is neither an ELF vmlinux nor a bzImage (no ELF magic, no \"HdrS\" at 0x202)");
}

static int parse_kernel(struct boot_ctx *c)
{
	const struct boot_config *cfg = c->cfg;
	int r = boot_probe(cfg->kernel, cfg->kernel_len);
	if (r < 0)
		return r;
	return boot_is_elf(cfg->kernel, cfg->kernel_len) ? boot_elf_load(c) : boot_bzimage_load(c);
}

static int write_cmdline(const struct boot_ctx *c)
{
	const char *s = c->cfg->cmdline ? c->cfg->cmdline : "";
	size_t n = strnlen(s, BOOT_CMDLINE_AREA);
	uint8_t *dst;

	if (n > c->cmdline_max)
		return boot_fail(E2BIG, "kernel command line of %zu%s bytes is longer than the kernel's limit of %llu",
				 n, n == BOOT_CMDLINE_AREA ? "+" : "",
				 (unsigned long long)c->cmdline_max);
	dst = gmem_ptr(c->gm, BOOT_CMDLINE_ADDR, n + 1);
	if (!dst)
		return boot_fail(EFAULT, "command line area is not in guest RAM");
	memcpy(dst, s, n);
	dst[n] = 0;
	return 0;
}

static void fill_entry(const struct boot_ctx *c, struct boot_entry *e)
{
	memset(e, 0, sizeof(*e));
	e->mode = c->pvh ? BOOT_MODE_PVH32 : BOOT_MODE_LONG64;
	e->rip = c->entry;
	e->rsp = BOOT_STACK_TOP;
	if (c->pvh) {
		e->rbx = BOOT_PVH_INFO_ADDR;
	} else {
		e->rsi = BOOT_ZERO_PAGE_ADDR;
		e->cr3 = BOOT_PML4_ADDR;
	}
	e->gdt_base = BOOT_GDT_ADDR;
	e->gdt_limit = BOOT_GDT_LIMIT;
	e->code_sel = BOOT_CODE_SEL;
	e->data_sel = BOOT_DATA_SEL;
	e->tss_sel = BOOT_TSS_SEL;
	e->kernel_end = c->kernel_end;
}

static int write_boot_structures(struct boot_ctx *c)
{
	int r;

	boot_build_e820(c);
	r = boot_write_gdt(c->gm, c->pvh);
	if (r == 0)
		r = boot_write_mptable(c);
	if (r == 0)
		r = c->pvh ? boot_write_pvh_info(c) : boot_write_zero_page(c);
	if (r == 0 && !c->pvh)
		r = boot_write_page_tables(c->gm);
	return r;
}

int boot_load(const struct gmem *gm, const struct boot_config *cfg, struct boot_entry *entry)
{
	struct boot_ctx c;
	int r;

	boot_errbuf[0] = 0;
	if (!gm || !cfg || !entry)
		return boot_fail(EINVAL, "boot_load: missing argument");
	memset(&c, 0, sizeof(c));
	c.gm = gm;
	c.cfg = cfg;
	r = check_machine(&c);
	if (r == 0)
		r = parse_kernel(&c);
	if (r == 0)
		r = write_cmdline(&c);
	if (r == 0)
		r = boot_place_initrd(&c);
	if (r == 0)
		r = write_boot_structures(&c);
	if (r == 0)
		fill_entry(&c, entry);
	return r;
}
