/* tests/unit/test_common_listeners.c - /proc/net/tcp{,6} text to the
 * set of listening ports --auto-publish mirrors (common/listeners.c):
 * LISTEN sockets only, loopback-bound ones left out (IPv4, ::1 and
 * IPv4-mapped), duplicates once, the cap counted, lines that lie ignored. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/listeners.h"

/* As Linux prints them (header, then "sl local rem st ..."). */
static const char tcp4[] =
	"  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
	"   0: 00000000:0BB8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0\n"
	"   1: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0 100 0 0 10 0\n"
	"   2: 0F02000A:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3 1 0 100 0 0 10 0\n"
	"   3: 0F02000A:C350 0202000A:01BB 01 00000000:00000000 00:00000000 00000000     0        0 4 1 0 100 0 0 10 0\n"
	"   4: 00000000:0BB8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5 1 0 100 0 0 10 0\n"
	"   5: 0500007F:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 6 1 0 100 0 0 10 0\n";

static const char tcp6[] =
	"  sl  local_address                         remote_address                        st tx_queue\n"
	"   0: 00000000000000000000000000000000:1770 00000000000000000000000000000000:0000 0A 00000000:00000000\n"
	"   1: 00000000000000000000000001000000:1771 00000000000000000000000000000000:0000 0A 00000000:00000000\n"
	"   2: 0000000000000000FFFF00000100007F:1772 00000000000000000000000000000000:0000 0A 00000000:00000000\n"
	"   3: 0000000000000000FFFF00000F02000A:1773 00000000000000000000000000000000:0000 0A 00000000:00000000\n";

static void test_ipv4(void **state)
{
	(void)state;
	uint16_t p[8];
	unsigned n = 0;
	assert_int_equal(listeners_parse(tcp4, false, p, &n, 8), 0);
	/* 3000 (twice: once), 80 on the guest address; not 8080 or 22 on
	 * 127.x, not the established connection from port 50000. */
	assert_int_equal(n, 2);
	listeners_sort(p, n);
	assert_int_equal(p[0], 80);
	assert_int_equal(p[1], 3000);
}

static void test_ipv6_and_merge(void **state)
{
	(void)state;
	uint16_t p[8] = { 6000 };
	unsigned n = 1;
	assert_int_equal(listeners_parse(tcp6, true, p, &n, 8), 0);
	/* [::]:6000 is already there; ::1 and ::ffff:127.0.0.1 are loopback. */
	assert_int_equal(n, 2);
	listeners_sort(p, n);
	assert_int_equal(p[0], 6000);
	assert_int_equal(p[1], 6003);
}

static void test_cap_counted(void **state)
{
	(void)state;
	uint16_t p[1];
	unsigned n = 0;
	assert_int_equal(listeners_parse(tcp4, false, p, &n, 1), 1);
	assert_int_equal(n, 1);
	assert_int_equal(p[0], 3000);
}

static void test_lies_ignored(void **state)
{
	(void)state;
	static const char bad[] =
		"0: 00000000:10000 00000000:0000 0A\n"	/* port > 65535 */
		"0: 00000000:0000 00000000:0000 0A\n"	/* port 0 */
		"0: 00000000:12G4 00000000:0000 0A\n"	/* not hex */
		"0: 00000000 00000000:0000 0A\n"	/* no port */
		"0: 00000000:0050\n"			/* truncated */
		"0: 000000000:0051 00000000:0000 0A\n"	/* 9-digit address */
		"\n\n"
		"0: 00000000:0052 00000000:0000 0A";	/* no newline: still counts */
	uint16_t p[8];
	unsigned n = 0;
	assert_int_equal(listeners_parse(bad, false, p, &n, 8), 0);
	assert_int_equal(n, 2);
	assert_int_equal(p[0], 0x51);	/* any 9-digit address is not loopback */
	assert_int_equal(p[1], 0x52);
	n = 0;
	assert_int_equal(listeners_parse("", false, p, &n, 8), 0);
	assert_int_equal(n, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ipv4),
		cmocka_unit_test(test_ipv6_and_merge),
		cmocka_unit_test(test_cap_counted),
		cmocka_unit_test(test_lies_ignored),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
