/* tests/unit/test_common_loop.c - the io_uring event loop delivers readiness,
 * timers and stops the way devices and host transports rely on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/loop.h"

struct counter {
	struct loop_op op;
	int fd;
	int hits;
	int last_res;
};

static void count_cb(struct loop *loop, struct loop_op *op, int res, uint32_t flags)
{
	(void)loop;
	(void)flags;
	struct counter *c = op->opaque;
	uint64_t v;
	c->hits++;
	c->last_res = res;
	if (res > 0 && c->fd >= 0)
		(void)!read(c->fd, &v, sizeof(v));	/* drain the eventfd */
}

static void test_multishot_poll_fires_each_time(void **state)
{
	(void)state;
	struct loop loop;
	assert_int_equal(loop_init(&loop, 64), 0);
	struct counter c = { .op = { .cb = count_cb }, .fd = eventfd(0, EFD_NONBLOCK) };
	c.op.opaque = &c;
	assert_true(c.fd >= 0);
	assert_int_equal(loop_poll(&loop, &c.op, c.fd, POLLIN), 0);
	for (int i = 1; i <= 3; i++) {
		uint64_t one = 1;
		assert_int_equal(write(c.fd, &one, sizeof(one)), sizeof(one));
		for (int tries = 0; c.hits < i && tries < 10; tries++)
			loop_run_once(&loop, 100000000ULL);
		assert_int_equal(c.hits, i);
	}
	assert_int_equal(loop_cancel(&loop, &c.op), 0);
	loop_run_once(&loop, 100000000ULL);
	loop_fini(&loop);
	close(c.fd);
}

static void test_timer_fires_once(void **state)
{
	(void)state;
	struct loop loop;
	assert_int_equal(loop_init(&loop, 64), 0);
	struct counter c = { .op = { .cb = count_cb }, .fd = -1 };
	c.op.opaque = &c;
	struct __kernel_timespec ts;
	assert_int_equal(loop_timer(&loop, &c.op, &ts, 1000000ULL), 0);
	for (int tries = 0; !c.hits && tries < 20; tries++)
		loop_run_once(&loop, 100000000ULL);
	assert_int_equal(c.hits, 1);
	assert_int_equal(c.last_res, -ETIME);
	loop_fini(&loop);
}

static void *stopper(void *arg)
{
	usleep(20000);
	loop_stop_async(arg, 42);
	return NULL;
}

static void test_stop_from_another_thread(void **state)
{
	(void)state;
	struct loop loop;
	assert_int_equal(loop_init(&loop, 64), 0);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, stopper, &loop), 0);
	assert_int_equal(loop_run(&loop), 42);
	pthread_join(t, NULL);
	loop_fini(&loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_multishot_poll_fires_each_time),
		cmocka_unit_test(test_timer_fires_once),
		cmocka_unit_test(test_stop_from_another_thread),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
