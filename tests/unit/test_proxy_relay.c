/* tests/unit/test_proxy_relay.c - the proxy's life on a live io_uring loop:
 * freed while its timers are armed (as at VM teardown, where other devices
 * turn the loop afterwards), nothing may complete into freed memory (the
 * ASan build would say). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/loop.h"
#include "proxy/proxy.h"

static void test_free_on_live_loop(void **state)
{
	(void)state;
	struct loop loop;
	assert_int_equal(loop_init(&loop, 64), 0);
	struct policy egress;
	policy_init(&egress);
	struct proxy_config cfg = { 0 };
	struct proxy *px;
	assert_int_equal(proxy_new(&loop, &cfg, &px), -EINVAL);	/* no egress policy: refused */
	assert_null(px);
	cfg.egress = &egress;
	assert_int_equal(proxy_new(&loop, &cfg, &px), 0);
	loop_run_once(&loop, 0);	/* its housekeeping timer is armed now */
	proxy_free(px);
	for (int i = 0; i < 3; i++)	/* past the timer's 250 ms period */
		loop_run_once(&loop, 200 * 1000000ull);
	loop_fini(&loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_free_on_live_loop),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
