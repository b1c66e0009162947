/* tests/unit/test_boot_bzimage.c - bzImage loading at the 64-bit entry: the
 * payload lands at pref_address (or 1 MiB), the zero page carries the image's
 * setup header with the loader's fields filled in, the header's limits
 * (initrd_addr_max, cmdline_size, init_size) are honoured, and old, 32-bit
 * only, truncated or oversized images are refused.  Also loads a real Debian
 * bzImage and the vmlinux inside it when they are present. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "test_boot_images.h"

static int load(struct tram *t, const uint8_t *k, size_t klen, const char *cmdline,
		const uint8_t *initrd, size_t ilen, struct boot_entry *e)
{
	struct boot_config cfg = { .kernel = k, .kernel_len = klen, .initrd = initrd,
				   .initrd_len = ilen, .cmdline = cmdline, .ncpus = 1 };
	return boot_load(&t->gm, &cfg, e);
}

static void expect_refused(struct tram *t, const uint8_t *k, size_t len, const char *cmdline,
			   const uint8_t *initrd, size_t ilen, int err, const char *why)
{
	struct boot_entry e;
	int r = load(t, k, len, cmdline, initrd, ilen, &e);

	if (r != -err || !strstr(boot_error(), why))
		fail_msg("expected -%d \"...%s...\", got %d \"%s\"", err, why, r, boot_error());
}

static void test_load_at_pref_address(void **state)
{
	(void)state;
	struct tbz o = tbz_default();
	static const uint8_t initrd[6000] = { 0x42 };
	struct boot_entry e;
	struct tram t;
	size_t len;
	uint8_t *k = build_bzimage(&o, &len);

	tram_init(&t, 16 * MiB);
	assert_int_equal(load(&t, k, len, "console=ttyS0", initrd, sizeof(initrd), &e), 0);
	assert_int_equal(e.mode, BOOT_MODE_LONG64);
	assert_int_equal(e.rip, 0x200000 + 0x200);
	assert_int_equal(e.rsi, BOOT_ZERO_PAGE_ADDR);
	assert_int_equal(e.cr3, BOOT_PML4_ADDR);
	assert_int_equal(e.kernel_end, 0x200000 + 0x100000);	/* init_size, not file size */
	/* Payload (after 5 sectors of setup) at the load address, nothing else. */
	assert_int_equal(t.host[0x200000], 0x5a);
	assert_int_equal(t.host[0x200000 + o.payload_len - 1], 0x5a);
	assert_int_equal(t.host[0x200000 + o.payload_len], 0xee);

	const struct boot_params *bp = zero_page(&t);
	/* The image's setup header, copied... */
	assert_int_equal(bp->hdr.setup_sects, 4);
	assert_int_equal(bp->hdr.version, 0x020f);
	assert_int_equal(bp->hdr.xloadflags, XLF_KERNEL_64);
	assert_int_equal(bp->hdr.boot_flag, 0xaa55);
	assert_int_equal(bp->hdr.header, BOOT_HDRS_MAGIC);
	assert_int_equal(bp->hdr.init_size, 0x100000);
	assert_int_equal(bp->hdr.pref_address, 0x200000);
	assert_int_equal(bp->hdr.cmdline_size, 2047);
	/* ...with the loader's fields filled in. */
	assert_int_equal(bp->hdr.type_of_loader, 0xff);
	assert_true(bp->hdr.loadflags & LOADED_HIGH);
	assert_int_equal(bp->hdr.code32_start, 0x200000);
	assert_int_equal(bp->hdr.cmd_line_ptr, BOOT_CMDLINE_ADDR);
	assert_string_equal((const char *)gpa(&t, BOOT_CMDLINE_ADDR, 14), "console=ttyS0");
	assert_int_equal(bp->hdr.ramdisk_size, sizeof(initrd));
	assert_int_equal(bp->hdr.ramdisk_image, (16 * MiB - sizeof(initrd)) & ~4095ULL);
	assert_memory_equal(gpa(&t, bp->hdr.ramdisk_image, sizeof(initrd)), initrd, sizeof(initrd));
	assert_int_equal(bp->e820_entries, 4);
	assert_int_equal(bp->e820_table[3].addr + bp->e820_table[3].size, 16 * MiB);
	free(k);
	tram_free(&t);
}

static void test_default_address_and_setup_sects_zero(void **state)
{
	(void)state;
	struct tbz o = tbz_default();
	struct boot_entry e;
	struct tram t;
	size_t len;
	uint8_t *k;

	o.pref_address = 0;	/* no preference: 1 MiB */
	o.setup_sects = 0;	/* means 4 */
	o.fill = 0x77;
	k = build_bzimage(&o, &len);
	tram_init(&t, 8 * MiB);
	assert_int_equal(load(&t, k, len, NULL, NULL, 0, &e), 0);
	assert_int_equal(e.rip, 0x100000 + 0x200);
	assert_int_equal(t.host[0x100000], 0x77);
	assert_int_equal(zero_page(&t)->hdr.ramdisk_image, 0);
	assert_int_equal(zero_page(&t)->hdr.ramdisk_size, 0);
	free(k);
	tram_free(&t);
}

static void test_header_limits_honoured(void **state)
{
	(void)state;
	struct tbz o = tbz_default();
	static const uint8_t initrd[8192] = { 1 };
	char cmd[200];
	struct boot_entry e;
	struct tram t;
	size_t len;
	uint8_t *k;

	o.initrd_addr_max = 0x7fffff;	/* initrd must end by 8 MiB */
	o.cmdline_size = 100;
	k = build_bzimage(&o, &len);
	tram_init(&t, 32 * MiB);
	assert_int_equal(load(&t, k, len, "", initrd, sizeof(initrd), &e), 0);
	const struct boot_params *bp = zero_page(&t);
	assert_int_equal(bp->hdr.ramdisk_image, 8 * MiB - sizeof(initrd));
	assert_true(bp->hdr.ramdisk_image + bp->hdr.ramdisk_size <= 0x800000);

	memset(cmd, 'x', sizeof(cmd));
	cmd[100] = 0;
	assert_int_equal(load(&t, k, len, cmd, NULL, 0, &e), 0);
	cmd[100] = 'x';
	cmd[101] = 0;
	expect_refused(&t, k, len, cmd, NULL, 0, E2BIG, "limit of 100");

	/* An initrd that cannot fit under initrd_addr_max beside the kernel. */
	uint8_t *big = calloc(1, 7 * MiB);
	expect_refused(&t, k, len, "", big, 7 * MiB, ENOMEM, "initrd of 7168 KiB does not fit");
	free(big);
	free(k);
	tram_free(&t);
}

static void test_refused_images(void **state)
{
	(void)state;
	struct tbz o;
	struct tram t;
	size_t len;
	uint8_t *k;

	tram_init(&t, 16 * MiB);
	o = tbz_default();
	o.version = 0x020b;
	k = build_bzimage(&o, &len);
	expect_refused(&t, k, len, NULL, NULL, 0, ENOEXEC, "2.11 is too old");
	free(k);

	o = tbz_default();
	o.xloadflags = 0;
	k = build_bzimage(&o, &len);
	expect_refused(&t, k, len, NULL, NULL, 0, ENOEXEC, "no 64-bit entry");
	free(k);

	o = tbz_default();
	k = build_bzimage(&o, &len);
	expect_refused(&t, k, 0x230, NULL, NULL, 0, ENOEXEC, "header truncated");
	expect_refused(&t, k, 5 * 512, NULL, NULL, 0, ENOEXEC, "truncated");
	k[0x1f1] = 60;	/* setup sectors beyond the end of the file */
	expect_refused(&t, k, len, NULL, NULL, 0, ENOEXEC, "31232 bytes of setup code");
	k[0x1f1] = 4;
	k[0x201] = 0x10;	/* jump says the header ends at 0x212 */
	expect_refused(&t, k, len, NULL, NULL, 0, ENOEXEC, "header truncated");
	k[0x201] = 0x6a;
	memcpy(k + 0x202, "HdrZ", 4);
	expect_refused(&t, k, len, NULL, NULL, 0, ENOEXEC, "neither");
	free(k);

	o = tbz_default();
	o.init_size = 15 * MiB;	/* runtime footprint beyond RAM */
	k = build_bzimage(&o, &len);
	expect_refused(&t, k, len, NULL, NULL, 0, ENOMEM, "init_size");
	free(k);
	tram_free(&t);
}

/* A file from the environment or the developer cache, or NULL. */
static uint8_t *read_file(const char *env, const char *name, size_t *len)
{
	char path[512];
	const char *p = getenv(env);
	struct stat st;
	uint8_t *buf;
	int fd;

	if (!p) {
		snprintf(path, sizeof(path), "%s/.cache/kvmbox/boot-test/%s",
			 getenv("HOME") ? getenv("HOME") : "/root", name);
		p = path;
	}
	fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) || st.st_size <= 0 || !(buf = malloc(st.st_size))) {
		close(fd);
		return NULL;
	}
	*len = read(fd, buf, st.st_size) == st.st_size ? (size_t)st.st_size : 0;
	close(fd);
	if (*len == 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* Debian's linux-image-*-cloud-amd64 vmlinuz (set KVMBOX_TEST_BZIMAGE, or
 * put it in ~/.cache/kvmbox/boot-test/vmlinuz). */
static void test_real_bzimage(void **state)
{
	(void)state;
	struct boot_entry e;
	struct tram t;
	size_t len;
	uint8_t *k = read_file("KVMBOX_TEST_BZIMAGE", "vmlinuz", &len);

	if (!k) {
		print_message("# no real bzImage (KVMBOX_TEST_BZIMAGE or ~/.cache/kvmbox/boot-test/vmlinuz)\n");
		skip();
	}
	tram_init(&t, 128 * MiB);
	assert_int_equal(load(&t, k, len, "console=ttyS0", k, 1 * MiB, &e), 0);
	const struct boot_params *bp = zero_page(&t);
	assert_int_equal(e.mode, BOOT_MODE_LONG64);
	assert_true(bp->hdr.version >= 0x020c);
	assert_true(bp->hdr.xloadflags & XLF_KERNEL_64);
	assert_int_equal(e.rip, bp->hdr.pref_address + 0x200);
	assert_int_equal(bp->hdr.type_of_loader, 0xff);
	assert_true(bp->hdr.ramdisk_image >= e.kernel_end);
	assert_true(bp->hdr.ramdisk_image + bp->hdr.ramdisk_size <= 128 * MiB);
	/* Too little RAM for its init_size is refused, not half-loaded. */
	tram_free(&t);
	tram_init(&t, 32 * MiB);
	expect_refused(&t, k, len, "", NULL, 0, ENOMEM, "init_size");
	free(k);
	tram_free(&t);
}

/* The ELF vmlinux inside that bzImage (lz4 -d of its payload): a real
 * kernel with CONFIG_PVH, so it must come up in PVH mode at its note. */
static void test_real_vmlinux(void **state)
{
	(void)state;
	struct boot_entry e;
	struct tram t;
	size_t len;
	uint8_t *k = read_file("KVMBOX_TEST_VMLINUX", "vmlinux", &len);

	if (!k) {
		print_message("# no real vmlinux (KVMBOX_TEST_VMLINUX or ~/.cache/kvmbox/boot-test/vmlinux)\n");
		skip();
	}
	tram_init(&t, 128 * MiB);
	assert_int_equal(load(&t, k, len, "console=ttyS0", NULL, 0, &e), 0);
	assert_int_equal(e.mode, BOOT_MODE_PVH32);
	assert_true(e.rip >= 0x1000000 && e.rip < e.kernel_end);
	struct hvm_start_info si;
	assert_int_equal(gmem_read(&t.gm, &si, e.rbx, sizeof(si)), 0);
	assert_int_equal(si.magic, XEN_HVM_START_MAGIC);
	free(k);
	tram_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_load_at_pref_address),
		cmocka_unit_test(test_default_address_and_setup_sects_zero),
		cmocka_unit_test(test_header_limits_honoured),
		cmocka_unit_test(test_refused_images),
		cmocka_unit_test(test_real_bzimage),
		cmocka_unit_test(test_real_vmlinux),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
