/* tests/unit/test_guest_init_netcfg.c - kvmbox-init's kvmbox.net= parser
 * (guest/init/netcfg.c): the format machine_net.c writes, the last value
 * winning, absence, and every malformed form refused with a one-line
 * reason; /etc/resolv.conf written (replacing a symlink, never following
 * it). */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/evp.h>

#include "guest/init/netcfg.h"

static void test_parse_good(void **state)
{
	(void)state;
	struct kbx_net n;
	char err[160];
	assert_int_equal(kbx_net_parse("console=ttyS0 kvmbox.net=10.0.2.15/24,10.0.2.2,10.0.2.3 quiet",
				       &n, err, sizeof(err)), 1);
	assert_int_equal(n.addr, 0x0A00020F);
	assert_int_equal(n.prefix, 24);
	assert_int_equal(n.gateway, 0x0A000202);
	assert_int_equal(n.dns, 0x0A000203);
	/* The last one counts; at the end of the line too. */
	assert_int_equal(kbx_net_parse("kvmbox.net=1.2.3.4/8,1.0.0.1,8.8.8.8 x kvmbox.net=192.168.5.9/30,192.168.5.10,1.1.1.1",
				       &n, err, sizeof(err)), 1);
	assert_int_equal(n.addr, 0xC0A80509);
	assert_int_equal(n.prefix, 30);
	assert_int_equal(n.dns, 0x01010101);
}

static void test_parse_absent(void **state)
{
	(void)state;
	struct kbx_net n;
	char err[160];
	assert_int_equal(kbx_net_parse("", &n, err, sizeof(err)), 0);
	assert_int_equal(kbx_net_parse("console=ttyS0 xkvmbox.net=1.2.3.4/8,1.0.0.1,1.1.1.1 kvmbox.netx=1",
				       &n, err, sizeof(err)), 0);
}

static void test_parse_bad(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"kvmbox.net=",
		"kvmbox.net=10.0.2.15",
		"kvmbox.net=10.0.2.15/24",
		"kvmbox.net=10.0.2.15/24,10.0.2.2",
		"kvmbox.net=10.0.2.15/24,10.0.2.2,10.0.2.2,extra",
		"kvmbox.net=10.0.2.15/0,10.0.2.2,10.0.2.2",
		"kvmbox.net=10.0.2.15/33,10.0.2.2,10.0.2.2",
		"kvmbox.net=10.0.2.15/-1,10.0.2.2,10.0.2.2",
		"kvmbox.net=10.0.2.15/,10.0.2.2,10.0.2.2",
		"kvmbox.net=10.0.2.15/24x,10.0.2.2,10.0.2.2",
		"kvmbox.net=10.0.2.256/24,10.0.2.2,10.0.2.2",
		"kvmbox.net=10.0.2/24,10.0.2.2,10.0.2.2",
		"kvmbox.net=10.0.2.15/24,,10.0.2.2",
		"kvmbox.net=10.0.2.15/24,10.0.2.2,",
		"kvmbox.net=10.0.2.15/24,10.0.3.2,10.0.2.2",	/* gateway off-subnet */
		"kvmbox.net=10.0.2.15/24,10.0.2.15,10.0.2.2",	/* gateway is us */
		"kvmbox.net=10.0.2.15/24,10.0.2.2,10.0.2.2000000000000000000",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct kbx_net n;
		char err[160] = "";
		if (kbx_net_parse(bad[i], &n, err, sizeof(err)) != -EINVAL)
			fail_msg("accepted: %s", bad[i]);
		assert_true(strlen(err) > 0);
		assert_null(strchr(err, '\n'));
	}
}

static void test_resolv_conf(void **state)
{
	(void)state;
	char dir[] = "/tmp/kvmbox-netcfg.XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[256], victim[256];
	snprintf(path, sizeof(path), "%s/etc/resolv.conf", dir);
	snprintf(victim, sizeof(victim), "%s/victim", dir);
	int fd = open(victim, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "keep\n", 5), 5);
	close(fd);
	char etc[256];
	snprintf(etc, sizeof(etc), "%s/etc", dir);
	assert_int_equal(mkdir(etc, 0755), 0);
	assert_int_equal(symlink(victim, path), 0);
	struct kbx_net n;
	char err[160];
	assert_int_equal(kbx_net_parse("kvmbox.net=10.0.2.15/24,10.0.2.2,10.0.2.3", &n, err, sizeof(err)), 1);
	/* (kbx_net_configure would reconfigure this host's interfaces: only
	 * the writer runs here; the e2e test covers the rest in a guest.) */
	assert_int_equal(kbx_net_write_resolv_conf(path, n.dns), 0);
	char buf[64] = "";
	fd = open(path, O_RDONLY | O_NOFOLLOW);
	assert_true(fd >= 0);
	assert_true(read(fd, buf, sizeof(buf) - 1) > 0);
	close(fd);
	assert_string_equal(buf, "nameserver 10.0.2.3\n");
	fd = open(victim, O_RDONLY);
	memset(buf, 0, sizeof(buf));
	assert_int_equal(read(fd, buf, sizeof(buf) - 1), 5);
	close(fd);
	assert_string_equal(buf, "keep\n");	/* the symlink's target untouched */
	unlink(path);
	unlink(victim);
	rmdir(etc);
	rmdir(dir);
}

/* base64url without padding (the encoding kvmbox uses on the command line). */
static void b64url(const uint8_t *in, size_t len, char *out)
{
	unsigned char tmp[4096];
	int n = EVP_EncodeBlock(tmp, in, (int)len);
	int o = 0;
	for (int i = 0; i < n; i++) {
		char c = (char)tmp[i];
		if (c == '=')
			break;
		out[o++] = c == '+' ? '-' : c == '/' ? '_' : c;
	}
	out[o] = 0;
}

static char *slurp(const char *path)
{
	static char buf[8192];
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	assert_true(n >= 0);
	buf[n] = 0;
	return buf;
}

static void test_ca_install(void **state)
{
	(void)state;
	uint8_t der[301];
	der[0] = 0x30;
	for (size_t i = 1; i < sizeof(der); i++)
		der[i] = (uint8_t)(i * 37 + 11);
	char enc[600], cmd[700];
	b64url(der, sizeof(der), enc);
	snprintf(cmd, sizeof(cmd), "quiet kvmbox.ca=%s kvmbox.argv=eA", enc);
	char dir[] = "/tmp/kvmbox-ca.XXXXXX";
	assert_non_null(mkdtemp(dir));
	char err[160];
	assert_int_equal(kbx_ca_install(cmd, dir, err, sizeof(err)), 1);
	assert_int_equal(kbx_ca_install(cmd, dir, err, sizeof(err)), 1);
	/* Expected PEM: OpenSSL's base64 in 64-column lines. */
	unsigned char b64[600];
	int n = EVP_EncodeBlock(b64, der, (int)sizeof(der));
	char want[1000];
	size_t o = (size_t)snprintf(want, sizeof(want), "-----BEGIN CERTIFICATE-----\n");
	for (int i = 0; i < n; i += 64) {
		int l = n - i < 64 ? n - i : 64;
		memcpy(want + o, b64 + i, (size_t)l);
		o += (size_t)l;
		want[o++] = '\n';
	}
	snprintf(want + o, sizeof(want) - o, "-----END CERTIFICATE-----\n");
	char path[256];
	snprintf(path, sizeof(path), "%s" KBX_CA_PEM, dir);
	assert_string_equal(slurp(path), want);
	snprintf(path, sizeof(path), "%s" KBX_CA_BUNDLE, dir);
	char twice[2000];
	snprintf(twice, sizeof(twice), "%s%s", want, want);
	assert_string_equal(slurp(path), twice);
	/* Absent, not base64url, not a DER SEQUENCE: nothing written. */
	assert_int_equal(kbx_ca_install("quiet", dir, err, sizeof(err)), 0);
	assert_int_equal(kbx_ca_install("kvmbox.ca=*not*", dir, err, sizeof(err)), -EINVAL);
	assert_int_equal(kbx_ca_install("kvmbox.ca=QUJDREVGR0hJSktMTU5PUFFSU1RVVg", dir, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "kvmbox.ca"));
	char cleanup[300];
	snprintf(cleanup, sizeof(cleanup), "rm -rf '%s'", dir);
	assert_int_equal(system(cleanup), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_good),
		cmocka_unit_test(test_parse_absent),
		cmocka_unit_test(test_parse_bad),
		cmocka_unit_test(test_resolv_conf),
		cmocka_unit_test(test_ca_install),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
