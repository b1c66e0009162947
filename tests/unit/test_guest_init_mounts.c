/* tests/unit/test_guest_init_mounts.c - kvmbox-init's decoding of kvmbox.fs
 * and kvmbox.root (guest/init/mounts.c): well-formed entries, the mount
 * data for 9p, and every malformed field refused with a one-line reason
 * (bad tag, unknown or contradictory flags, path not base64url, relative,
 * "/", with "." / ".." / empty components or a NUL, too many entries). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "guest/init/mounts.h"
#include "guest/abi/base64url.h"
#include "vmm/vmm.h"

static struct kbx_mounts mt;

/* "kvmbox.fs=TAG:FLAGS:<b64 of path>" into buf. */
static const char *entry(char *buf, size_t len, const char *tag, const char *flags,
			 const char *path, size_t plen)
{
	char b64[2048];
	assert_true(kbx_b64url_encode((const uint8_t *)path, plen, b64, sizeof(b64)) >= 0);
	int n = snprintf(buf, len, "console=ttyS0 %s=%s:%s:%s quiet", KBX_FS_PARAM, tag, flags,
			 b64);
	assert_true(n > 0 && (size_t)n < len);
	return buf;
}

static void test_parse_ok(void **state)
{
	(void)state;
	char err[200];
	assert_int_equal(kbx_mounts_parse("console=ttyS0 quiet", &mt, err, sizeof(err)), 0);
	assert_int_equal(mt.n, 0);
	assert_string_equal(mt.root_tag, "");
	char cl[4096];
	entry(cl, sizeof(cl), "kvmbox0", "9rc", "/a b", 4);
	assert_int_equal(kbx_mounts_parse(cl, &mt, err, sizeof(err)), 0);
	assert_int_equal(mt.n, 1);
	assert_string_equal(mt.m[0].tag, "kvmbox0");
	assert_string_equal(mt.m[0].path, "/a b");
	assert_true(mt.m[0].nine_p && mt.m[0].read_only && mt.m[0].cache);
	char data[128];
	kbx_mount_data(&mt.m[0], data, sizeof(data));
	assert_string_equal(data, "trans=virtio,version=9p2000.L,msize=512000,cache=loose");
	mt.m[0].cache = false;
	kbx_mount_data(&mt.m[0], data, sizeof(data));
	assert_string_equal(data, "trans=virtio,version=9p2000.L,msize=512000,cache=mmap");
	/* Two entries (L2Eb and L2M are /a and /c), and a root tag; the last
	 * kvmbox.fs on the line counts, as the kernel's own parameters do. */
	assert_int_equal(kbx_mounts_parse("kvmbox.fs=x:v:L2I kvmbox.fs=t_1:v:L2E,T-2:9:L2M "
					  "kvmbox.root=kvmboxroot", &mt, err, sizeof(err)), 0);
	assert_int_equal(mt.n, 2);
	assert_string_equal(mt.m[0].path, "/a");
	assert_string_equal(mt.m[1].tag, "T-2");
	assert_string_equal(mt.m[1].path, "/c");
	assert_string_equal(mt.root_tag, "kvmboxroot");
}

static void refused(const char *cmdline, const char *want)
{
	char err[200] = "";
	assert_int_equal(kbx_mounts_parse(cmdline, &mt, err, sizeof(err)), -EINVAL);
	if (!strstr(err, want))
		fail_msg("'%s': reason '%s' lacks '%s'", cmdline, err, want);
	assert_null(strchr(err, '\n'));
}

static void test_parse_refusals(void **state)
{
	(void)state;
	char cl[4096];
	refused("kvmbox.fs=", "is empty");
	refused("kvmbox.fs=t:v", "not TAG:FLAGS:PATH");
	refused("kvmbox.fs=t:v:L2E,", "empty entry");
	refused("kvmbox.fs=t:v:L2E,,t:v:L2E", "not TAG:FLAGS:PATH");
	refused("kvmbox.fs=:v:L2E", "bad tag");
	refused("kvmbox.fs=a.b:v:L2E", "bad tag");
	refused("kvmbox.fs=0123456789012345678901234567890123456:v:L2E", "bad tag");
	refused("kvmbox.fs=t::L2E", "bad flags");
	refused("kvmbox.fs=t:r:L2E", "bad flags");
	refused("kvmbox.fs=t:vc:L2E", "bad flags");	/* cache is 9p only */
	refused("kvmbox.fs=t:v9:L2E", "bad flags");
	refused("kvmbox.fs=t:vx:L2E", "bad flags");
	refused("kvmbox.fs=t:v:L2E*", "not valid base64url");
	refused(entry(cl, sizeof(cl), "t", "v", "rel", 3), "not a clean absolute path");
	refused(entry(cl, sizeof(cl), "t", "v", "/", 1), "not a clean absolute path");
	refused(entry(cl, sizeof(cl), "t", "v", "/a/", 3), "not a clean absolute path");
	refused(entry(cl, sizeof(cl), "t", "v", "/a//b", 5), "not a clean absolute path");
	refused(entry(cl, sizeof(cl), "t", "v", "/a/../b", 7), "not a clean absolute path");
	refused(entry(cl, sizeof(cl), "t", "v", "/a/.", 4), "not a clean absolute path");
	refused(entry(cl, sizeof(cl), "t", "v", "/a\0b", 4), "not a clean absolute path");
	char longp[KBX_MOUNT_PATH_MAX + 1];
	memset(longp, 'x', sizeof(longp));
	longp[0] = '/';
	refused(entry(cl, sizeof(cl), "t", "v", longp, sizeof(longp)), "too long");
	/* KBX_MOUNT_MAX + 1 entries. */
	size_t o = (size_t)snprintf(cl, sizeof(cl), "kvmbox.fs=");
	for (int i = 0; i <= KBX_MOUNT_MAX; i++)
		o += (size_t)snprintf(cl + o, sizeof(cl) - o, "%st%d:v:L2E", i ? "," : "", i);
	refused(cl, "more than");
	refused("kvmbox.root=", "bad tag");
	refused("kvmbox.root=a/b", "bad tag");
}

static void test_path_valid(void **state)
{
	(void)state;
	assert_true(kbx_mount_path_valid("/a", 2));
	assert_true(kbx_mount_path_valid("/a/..b/.c/...", 13));
	assert_false(kbx_mount_path_valid("", 0));
	assert_false(kbx_mount_path_valid("/", 1));
	assert_false(kbx_mount_path_valid("/..", 3));
	assert_false(kbx_mount_path_valid("a/b", 3));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_ok),
		cmocka_unit_test(test_parse_refusals),
		cmocka_unit_test(test_path_valid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
