/* tests/unit/test_guest_init_kinit.c - kvmbox-init's pure parts: base64url
 * decoding, finding kvmbox.argv on a kernel command line, splitting it into
 * argv, refusing malformed input with a one-line reason, and the exit-status
 * values written to the marker port. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "guest/init/kinit.h"
#include "guest/abi/base64url.h"

static void test_b64url_vectors(void **state)
{
	(void)state;
	/* RFC 4648 vectors, unpadded, and the two url-safe characters. */
	static const struct { const char *enc, *dec; } v[] = {
		{ "", "" }, { "Zg", "f" }, { "Zm8", "fo" }, { "Zm9v", "foo" },
		{ "Zm9vYg", "foob" }, { "Zm9vYmE", "fooba" }, { "Zm9vYmFy", "foobar" },
		{ "Zm9vYg==", "foob" }, { "-_8", "\xfb\xff" },
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		uint8_t out[16];
		ssize_t n = kbx_b64url_decode(v[i].enc, strlen(v[i].enc), out, sizeof(out));
		assert_int_equal(n, strlen(v[i].dec));
		assert_memory_equal(out, v[i].dec, (size_t)n);
	}
}

static void test_b64url_all_bytes(void **state)
{
	(void)state;
	/* Encode 0..255 here (reference encoder) and decode it back. */
	static const char abc[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	uint8_t raw[256], out[256];
	char enc[400];
	size_t o = 0;
	for (int i = 0; i < 256; i++)
		raw[i] = (uint8_t)i;
	for (size_t i = 0; i < 256; i += 3) {
		size_t n = 256 - i < 3 ? 256 - i : 3;
		uint32_t x = (uint32_t)raw[i] << 16 | (n > 1 ? raw[i + 1] << 8 : 0) |
			     (n > 2 ? raw[i + 2] : 0);
		for (size_t k = 0; k < n + 1; k++)
			enc[o++] = abc[(x >> (18 - 6 * k)) & 63];
	}
	assert_int_equal(kbx_b64url_decode(enc, o, out, sizeof(out)), 256);
	assert_memory_equal(out, raw, 256);
}

static void test_b64url_refusals(void **state)
{
	(void)state;
	uint8_t out[16];
	assert_int_equal(kbx_b64url_decode("Z", 1, out, sizeof(out)), -EINVAL);
	assert_int_equal(kbx_b64url_decode("Zm9vY", 5, out, sizeof(out)), -EINVAL);
	assert_int_equal(kbx_b64url_decode("Zm+v", 4, out, sizeof(out)), -EINVAL);
	assert_int_equal(kbx_b64url_decode("Zm/v", 4, out, sizeof(out)), -EINVAL);
	assert_int_equal(kbx_b64url_decode("Zm9=Zg", 6, out, sizeof(out)), -EINVAL);
	assert_int_equal(kbx_b64url_decode("Z===", 4, out, sizeof(out)), -EINVAL);
	assert_int_equal(kbx_b64url_decode("Zm\0v", 4, out, sizeof(out)), -EINVAL);
	assert_int_equal(kbx_b64url_decode("Zm9vYmFy", 8, out, 5), -ENOSPC);
}

static void test_cmdline_param(void **state)
{
	(void)state;
	size_t len = 0;
	const char *v;
	v = kinit_cmdline_param("console=ttyS0 kvmbox.argv=abc quiet", "kvmbox.argv", &len);
	assert_non_null(v);
	assert_int_equal(len, 3);
	assert_memory_equal(v, "abc", 3);
	/* The last one wins, as for the kernel's own parameters. */
	v = kinit_cmdline_param("kvmbox.argv=one\tkvmbox.argv=two\n", "kvmbox.argv", &len);
	assert_non_null(v);
	assert_int_equal(len, 3);
	assert_memory_equal(v, "two", 3);
	/* Not a prefix of another name, not inside a quoted word. */
	assert_null(kinit_cmdline_param("xkvmbox.argv=a kvmbox.argvx=b", "kvmbox.argv", &len));
	assert_null(kinit_cmdline_param("foo=\"a kvmbox.argv=b\"", "kvmbox.argv", &len));
	assert_null(kinit_cmdline_param("", "kvmbox.argv", &len));
	assert_null(kinit_cmdline_param("kvmbox.argv", "kvmbox.argv", &len));
}

static void test_argv_from_cmdline(void **state)
{
	(void)state;
	struct kinit_argv a;
	char err[128] = "";
	/* "sh\0-c\0echo hi; exit 7\0" */
	assert_int_equal(kinit_argv_from_cmdline(
		"console=ttyS0 reboot=k kvmbox.argv=c2gALWMAZWNobyBoaTsgZXhpdCA3AA",
		&a, err, sizeof(err)), 0);
	assert_int_equal(a.argc, 3);
	assert_string_equal(a.argv[0], "sh");
	assert_string_equal(a.argv[1], "-c");
	assert_string_equal(a.argv[2], "echo hi; exit 7");
	assert_null(a.argv[3]);
	kinit_argv_free(&a);
	/* Empty arguments after the first are kept. */
	assert_int_equal(kinit_argv_from_cmdline("kvmbox.argv=dHJ1ZQAAAA", &a, err,
						 sizeof(err)), 0);
	assert_int_equal(a.argc, 3);
	assert_string_equal(a.argv[0], "true");
	assert_string_equal(a.argv[1], "");
	assert_string_equal(a.argv[2], "");
	kinit_argv_free(&a);
	/* No parameter: 1, nothing allocated (init runs a shell). */
	assert_int_equal(kinit_argv_from_cmdline("console=ttyS0 quiet", &a, err, sizeof(err)), 1);
	assert_null(a.argv);
}

/* Each malformed value is refused with a one-line reason. */
static void expect_refused(const char *cmdline, const char *reason_part)
{
	struct kinit_argv a;
	char err[128] = "";
	assert_int_equal(kinit_argv_from_cmdline(cmdline, &a, err, sizeof(err)), -EINVAL);
	assert_null(a.argv);
	assert_non_null(strstr(err, reason_part));
	assert_null(strchr(err, '\n'));
}

static void test_argv_refusals(void **state)
{
	(void)state;
	expect_refused("kvmbox.argv=", "empty");
	expect_refused("kvmbox.argv=dHJ1ZQ", "not NUL-terminated");	/* "true" */
	expect_refused("kvmbox.argv=AHRydWUA", "command name is empty");	/* "\0true\0" */
	expect_refused("kvmbox.argv=dHJ1ZQA*", "not valid base64url");
	expect_refused("kvmbox.argv=dHJ1Z", "not valid base64url");
	expect_refused("kvmbox.argv=\"dHJ1ZQA\"", "not valid base64url");
}

static void test_exit_codes(void **state)
{
	(void)state;
	assert_int_equal(kinit_exit_code(0), 0);
	assert_int_equal(kinit_exit_code(7 << 8), 7);
	assert_int_equal(kinit_exit_code(255 << 8), 255);
	assert_int_equal(kinit_exit_code(SIGKILL), 128 + SIGKILL);
	assert_int_equal(kinit_exit_code(SIGSEGV | 0x80), 128 + SIGSEGV);	/* core dumped */
	assert_int_equal(kinit_exit_code(0x137f), 255);				/* stopped */
	assert_int_equal(kbx_marker_exit(0), 0x4b450000u);
	assert_int_equal(kbx_marker_exit(7), 0x4b450007u);
	assert_int_equal(kbx_marker_exit(255), 0x4b4500ffu);
	assert_int_equal(kbx_marker_exit(256 + 3), 0x4b450003u);
	assert_int_equal(KBX_MARKER_BOOT, 0x4b420001u);
	assert_int_equal(KBX_MARKER_PORT, 0x600);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_b64url_vectors),
		cmocka_unit_test(test_b64url_all_bytes),
		cmocka_unit_test(test_b64url_refusals),
		cmocka_unit_test(test_cmdline_param),
		cmocka_unit_test(test_argv_from_cmdline),
		cmocka_unit_test(test_argv_refusals),
		cmocka_unit_test(test_exit_codes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
