/* tests/unit/test_common_loop.c - the io_uring event loop delivers readiness,
 * timers and stops the way devices and host transports rely on, and
 * loop_run_polled adapts its polling window. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
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

static bool op_armed(void *arg) { return ((struct loop_op *)arg)->armed != 0; }

/* An owner tearing down cancels its ops and settles until the loop holds
 * none of them: armed counts every request until its last CQE (a multishot
 * poll's CQEs with IORING_CQE_F_MORE do not end it). */
static void test_armed_until_last_completion(void **state)
{
	(void)state;
	struct loop loop;
	assert_int_equal(loop_init(&loop, 64), 0);
	struct counter c = { .op = { .cb = count_cb }, .fd = eventfd(0, EFD_NONBLOCK) };
	c.op.opaque = &c;
	assert_int_equal(loop_poll(&loop, &c.op, c.fd, POLLIN), 0);
	assert_int_equal(c.op.armed, 1);
	uint64_t one = 1;
	assert_int_equal(write(c.fd, &one, sizeof(one)), sizeof(one));
	for (int tries = 0; !c.hits && tries < 10; tries++)
		loop_run_once(&loop, 100000000ULL);
	assert_int_equal(c.hits, 1);
	assert_int_equal(c.op.armed, 1);	/* still polling */
	struct counter t = { .op = { .cb = count_cb }, .fd = -1 };
	t.op.opaque = &t;
	struct __kernel_timespec ts;
	assert_int_equal(loop_timer(&loop, &t.op, &ts, 60000000000ULL), 0);
	assert_int_equal(t.op.armed, 1);
	assert_int_equal(loop_cancel(&loop, &c.op), 0);
	assert_int_equal(loop_cancel(&loop, &t.op), 0);
	assert_int_equal(loop_settle(&loop, op_armed, &c.op, 1000), 0);
	assert_int_equal(loop_settle(&loop, op_armed, &t.op, 1000), 0);
	assert_int_equal(t.last_res, -ECANCELED);
	/* Nothing left to wait for: settle returns at once; a busy owner
	 * that never lets go times out instead of hanging. */
	assert_int_equal(loop_settle(&loop, op_armed, &c.op, 0), 0);
	assert_int_equal(loop_timer(&loop, &t.op, &ts, 60000000000ULL), 0);
	assert_int_equal(loop_settle(&loop, op_armed, &t.op, 20), -ETIMEDOUT);
	loop_fini(&loop);
	close(c.fd);
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

/* A stopped loop runs again after loop_restart, and stops again from
 * another thread (a VM running on after a failed save), however often. */
static void test_restart_after_stop(void **state)
{
	(void)state;
	struct loop loop;
	assert_int_equal(loop_init(&loop, 64), 0);
	for (int round = 0; round < 3; round++) {
		if (round)
			assert_int_equal(loop_restart(&loop), 0);
		pthread_t t;
		assert_int_equal(pthread_create(&t, NULL, stopper, &loop), 0);
		assert_int_equal(loop_run(&loop), 42);
		pthread_join(t, NULL);
	}
	/* A restart whose stop's wake was never read (a stop from this
	 * thread) leaves one read armed, and the loop still stops async. */
	assert_int_equal(loop_restart(&loop), 0);
	loop_stop(&loop, 7);
	assert_int_equal(loop_run(&loop), 7);
	assert_int_equal(loop_restart(&loop), 0);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, stopper, &loop), 0);
	assert_int_equal(loop_run(&loop), 42);
	pthread_join(t, NULL);
	loop_fini(&loop);
}

/* A pretend work source for loop_run_polled: work "arrives" as a timer
 * of arrive_ns armed before each sleep; poll() finds queued items. */
struct source {
	struct loop *loop;
	struct loop_poller p;
	struct loop_op op;
	struct __kernel_timespec ts;
	uint64_t arrive_ns;
	int queued;		/* items poll() will find */
	int sleeps, polled, arrived, stop_after;
	bool woke;
};

static void source_arrived(struct loop *loop, struct loop_op *op, int res, uint32_t flags)
{
	(void)res;
	(void)flags;
	struct source *s = op->opaque;
	s->woke = true;
	if (++s->arrived >= s->stop_after)
		loop_stop(loop, 0);
}

static int source_poll(void *arg)
{
	struct source *s = arg;
	if (!s->queued)
		return 0;
	s->queued--;
	s->polled++;
	return 1;
}

static void source_arm(void *arg)
{
	struct source *s = arg;
	if (!s->op.armed) {
		s->sleeps++;
		loop_timer(s->loop, &s->op, &s->ts, s->arrive_ns);
	}
}

static bool source_woken(void *arg)
{
	struct source *s = arg;
	bool w = s->woke;
	s->woke = false;
	return w;
}

static void source_run(struct source *s, struct loop *loop, uint64_t arrive_ns, int n)
{
	s->loop = loop;
	s->arrive_ns = arrive_ns;
	s->stop_after = s->arrived + n;
	loop->stop = false;
	assert_int_equal(loop_run_polled(loop, &s->p), 0);
}

/* The window grows while work ends each sleep soon after it began, shrinks
 * to nothing when work keeps coming later than max_ns, and work found
 * while polling costs no sleep. */
/* The ring carries only the operations the loop's owners use: an open,
 * a connect or a new file registration through it is refused, whatever a
 * compromised caller puts in an SQE (seccomp does not see ring work). */
static void test_ring_refuses_other_operations(void **state)
{
	(void)state;
	struct loop loop;
	assert_int_equal(loop_init(&loop, 64), 0);
	struct counter c = { .op = { .cb = count_cb }, .fd = -1 };
	c.op.opaque = &c;
	struct io_uring_sqe *sqe = loop_sqe(&loop, &c.op);
	assert_non_null(sqe);
	io_uring_prep_openat(sqe, AT_FDCWD, "/etc/passwd", O_RDONLY, 0);
	loop_submit(&loop);
	for (int tries = 0; c.hits < 1 && tries < 10; tries++)
		loop_run_once(&loop, 100000000ULL);
	assert_int_equal(c.hits, 1);
	assert_int_equal(c.last_res, -EACCES);
	sqe = loop_sqe(&loop, &c.op);
	assert_non_null(sqe);
	io_uring_prep_connect(sqe, 0, NULL, 0);
	loop_submit(&loop);
	for (int tries = 0; c.hits < 2 && tries < 10; tries++)
		loop_run_once(&loop, 100000000ULL);
	assert_int_equal(c.hits, 2);
	assert_int_equal(c.last_res, -EACCES);
	/* An allowed operation with an SQE flag other than IOSQE_ASYNC (a link,
	 * a fixed file, a selected buffer, a drain) is refused; IOSQE_ASYNC
	 * (the file server's large copies) runs.  The drain goes last: Linux
	 * marks the ring draining before it checks the restriction, so what
	 * follows even a refused drain waits behind the loop's standing polls
	 * (nothing of ours sets it). */
	int p[2];
	assert_int_equal(pipe(p), 0);
	assert_int_equal(write(p[1], "xy", 2), 2);
	char b;
	struct iovec iov = { &b, 1 };
	const uint8_t flags[] = { IOSQE_ASYNC, IOSQE_IO_LINK, IOSQE_FIXED_FILE, IOSQE_BUFFER_SELECT,
				  IOSQE_ASYNC, IOSQE_IO_DRAIN };
	for (unsigned i = 0; i < sizeof(flags); i++) {
		sqe = loop_sqe(&loop, &c.op);
		assert_non_null(sqe);
		io_uring_prep_readv(sqe, p[0], &iov, 1, 0);
		sqe->flags |= flags[i];
		loop_submit(&loop);
		for (int tries = 0; c.hits < 3 + (int)i && tries < 10; tries++)
			loop_run_once(&loop, 100000000ULL);
		assert_int_equal(c.hits, 3 + (int)i);
		assert_int_equal(c.last_res, flags[i] == IOSQE_ASYNC ? 1 : -EACCES);
	}
	close(p[0]);
	close(p[1]);
	int fds[1] = { 0 };
	assert_int_equal(io_uring_register_files(&loop.ring, fds, 1), -EACCES);
	loop_fini(&loop);
}

static void test_polled_window_adapts(void **state)
{
	(void)state;
	struct loop loop;
	assert_int_equal(loop_init(&loop, 64), 0);
	static struct source s;
	s.op = (struct loop_op){ .cb = source_arrived, .opaque = &s };
	s.p = (struct loop_poller){ .poll = source_poll, .arm = source_arm, .woken = source_woken,
				    .arg = &s, .max_ns = 1000000000ULL };
	source_run(&s, &loop, 1000, 6);	/* work 1 us after each sleep began */
	assert_int_equal(s.p.ns, 4000ULL << 5);	/* 0, 4, 8, 16, 32, 64, 128 us */
	s.p.max_ns = 1000;		/* now every sleep is longer than that */
	source_run(&s, &loop, 2000000, 18);	/* 128 us halved 18 times */
	assert_int_equal(s.p.ns, 0);
	s.p.max_ns = 1000000000ULL;
	s.p.ns = 1000000;		/* polling 1 ms: queued items need no sleep */
	s.queued = 5;
	int sleeps = s.sleeps;
	source_run(&s, &loop, 1000, 1);
	assert_int_equal(s.polled, 5);
	assert_int_equal(s.sleeps, sleeps + 1);	/* the one that ended the run */
	loop_fini(&loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_multishot_poll_fires_each_time),
		cmocka_unit_test(test_timer_fires_once),
		cmocka_unit_test(test_stop_from_another_thread),
		cmocka_unit_test(test_restart_after_stop),
		cmocka_unit_test(test_armed_until_last_completion),
		cmocka_unit_test(test_polled_window_adapts),
		cmocka_unit_test(test_ring_refuses_other_operations),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
