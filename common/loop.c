/* common/loop.c - io_uring event loop: SQEs tagged with caller-owned ops.
 *
 * Multishot polls are re-armed by the loop when a CQE arrives without
 * IORING_CQE_F_MORE (the kernel drops multishot polls on CQ overflow), so
 * callers see a steady stream of readiness until they loop_cancel().
 *
 * The ring accepts only the operations below (IORING_REGISTER_RESTRICTIONS,
 * registered while the ring is still disabled): seccomp does not see the
 * operations a ring carries out, so without this a compromised device could
 * open files or sockets through the ring whatever the cage (cage/cage.h)
 * allows.  No register operation is allowed once the ring runs, and the
 * cage refuses io_uring_setup, so no unrestricted ring can be made.
 */
#include "common/loop.h"
#include "common/util.h"

#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static int loop_arm_wake(struct loop *loop);

static void loop_wake_cb(struct loop *loop, struct loop_op *op, int res, uint32_t flags)
{
	(void)op;
	(void)flags;
	loop->wake_armed = false;
	if (res < 0 && res != -EINTR && res != -EAGAIN)
		return;
	if (loop->stop)
		return;
	/* A wake without stop: just re-arm. */
	loop_arm_wake(loop);
}

static int loop_arm_wake(struct loop *loop)
{
	struct io_uring_sqe *sqe = loop_sqe(loop, &loop->wake_op);
	if (!sqe)
		return -EBUSY;
	io_uring_prep_read(sqe, loop->wake_fd, &loop->wake_buf, sizeof(loop->wake_buf), 0);
	loop->wake_armed = true;
	return 0;
}

/* Every operation some owner submits (a new prep call needs its line). */
static const uint8_t ring_ops[] = {
	IORING_OP_READ,			/* the wake eventfd */
	IORING_OP_WRITE,
	IORING_OP_READV,		/* file server reads, console input */
	IORING_OP_WRITEV,		/* file server writes, console output */
	IORING_OP_FSYNC,		/* file server */
	IORING_OP_FALLOCATE,		/* file server */
	IORING_OP_POLL_ADD,		/* loop_poll, one-shot and multishot */
	IORING_OP_ASYNC_CANCEL,		/* loop_cancel */
	IORING_OP_TIMEOUT,		/* loop timers; liburing's wait without EXT_ARG */
	IORING_OP_TIMEOUT_REMOVE,	/* loop timer updates */
};

/* The one SQE flag allowed: IOSQE_ASYNC (the file server's large reads and
 * writes go to an io-wq worker); it changes only which thread runs an
 * operation the list above already allows. */
#define RING_SQE_FLAGS IOSQE_ASYNC

static int ring_restrict(struct io_uring *ring)
{
	struct io_uring_restriction res[sizeof(ring_ops) + 1];
	memset(res, 0, sizeof(res));
	for (size_t i = 0; i < sizeof(ring_ops); i++) {
		res[i].opcode = IORING_RESTRICTION_SQE_OP;
		res[i].sqe_op = ring_ops[i];
	}
	res[sizeof(ring_ops)].opcode = IORING_RESTRICTION_SQE_FLAGS_ALLOWED;
	res[sizeof(ring_ops)].sqe_flags = RING_SQE_FLAGS;
	/* Debian's liburing 2.3 declares io_uring_register_restrictions and
	 * io_uring_enable_rings but does not export them. */
	if (syscall(__NR_io_uring_register, ring->ring_fd, IORING_REGISTER_RESTRICTIONS, res,
		    (unsigned)(sizeof(ring_ops) + 1)) < 0 ||
	    syscall(__NR_io_uring_register, ring->ring_fd, IORING_REGISTER_ENABLE_RINGS, NULL, 0) < 0)
		return -errno;
	return 0;
}

int loop_init(struct loop *loop, unsigned entries)
{
	memset(loop, 0, sizeof(*loop));
	struct io_uring_params p = { 0 };
	p.flags = IORING_SETUP_CLAMP | IORING_SETUP_R_DISABLED;
	int r = io_uring_queue_init_params(entries, &loop->ring, &p);
	if (r < 0)
		return r;
	if ((r = ring_restrict(&loop->ring)) < 0) {
		io_uring_queue_exit(&loop->ring);
		return r;
	}
	loop->wake_fd = eventfd(0, EFD_CLOEXEC);
	if (loop->wake_fd < 0) {
		r = -errno;
		io_uring_queue_exit(&loop->ring);
		return r;
	}
	loop->wake_op.cb = loop_wake_cb;
	return loop_arm_wake(loop);
}

void loop_fini(struct loop *loop)
{
	io_uring_queue_exit(&loop->ring);
	close(loop->wake_fd);
}

struct io_uring_sqe *loop_sqe(struct loop *loop, struct loop_op *op)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&loop->ring);
	if (!sqe) {
		io_uring_submit(&loop->ring);
		sqe = io_uring_get_sqe(&loop->ring);
		if (!sqe)
			return NULL;
	}
	io_uring_sqe_set_data(sqe, op);
	if (op)
		op->armed++;
	return sqe;
}

int loop_submit(struct loop *loop)
{
	int r = io_uring_submit(&loop->ring);
	return r < 0 ? r : 0;
}

static int loop_arm_poll(struct loop *loop, struct loop_op *op)
{
	struct io_uring_sqe *sqe = loop_sqe(loop, op);
	if (!sqe)
		return -EBUSY;
	io_uring_prep_poll_multishot(sqe, op->poll_fd, op->poll_mask);
	return 0;
}

int loop_poll(struct loop *loop, struct loop_op *op, int fd, unsigned mask)
{
	op->poll_fd = fd;
	op->poll_mask = mask;
	op->polling = true;
	return loop_arm_poll(loop, op);
}

int loop_poll_once(struct loop *loop, struct loop_op *op, int fd, unsigned mask)
{
	op->polling = false;
	struct io_uring_sqe *sqe = loop_sqe(loop, op);
	if (!sqe)
		return -EBUSY;
	io_uring_prep_poll_add(sqe, fd, mask);
	return 0;
}

/* An SQE that completes untracked (no op: its CQE is dropped). */
static struct io_uring_sqe *loop_sqe_untracked(struct loop *loop)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&loop->ring);
	if (!sqe) {
		io_uring_submit(&loop->ring);
		sqe = io_uring_get_sqe(&loop->ring);
	}
	return sqe;
}

int loop_cancel(struct loop *loop, struct loop_op *op)
{
	op->polling = false;
	struct io_uring_sqe *sqe = loop_sqe_untracked(loop);
	if (!sqe)
		return -EBUSY;
	io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)op, IORING_ASYNC_CANCEL_ALL);
	io_uring_sqe_set_data(sqe, NULL);
	return 0;
}

int loop_timer_update(struct loop *loop, struct loop_op *op, struct __kernel_timespec *ts,
		      uint64_t ns)
{
	struct io_uring_sqe *sqe = loop_sqe_untracked(loop);
	if (!sqe)
		return -EBUSY;
	ts->tv_sec = (long long)(ns / 1000000000ULL);
	ts->tv_nsec = (long long)(ns % 1000000000ULL);
	io_uring_prep_timeout_update(sqe, ts, (uint64_t)(uintptr_t)op, 0);
	io_uring_sqe_set_data(sqe, NULL);
	return 0;
}

int loop_timer(struct loop *loop, struct loop_op *op, struct __kernel_timespec *ts, uint64_t ns)
{
	struct io_uring_sqe *sqe = loop_sqe(loop, op);
	if (!sqe)
		return -EBUSY;
	ts->tv_sec = (long long)(ns / 1000000000ULL);
	ts->tv_nsec = (long long)(ns % 1000000000ULL);
	io_uring_prep_timeout(sqe, ts, 0, 0);
	return 0;
}

static void loop_dispatch(struct loop *loop, struct io_uring_cqe *cqe)
{
	struct loop_op *op = io_uring_cqe_get_data(cqe);
	int res = cqe->res;
	uint32_t flags = cqe->flags;
	io_uring_cqe_seen(&loop->ring, cqe);
	if (!op)
		return;		/* cancel requests carry no op */
	if (!(flags & IORING_CQE_F_MORE) && op->armed)
		op->armed--;	/* before the callback, which may free op */
	bool rearm = op->polling && !(flags & IORING_CQE_F_MORE) && res >= 0;
	if (op->polling && res < 0)
		op->polling = false;
	if (op->cb)
		op->cb(loop, op, res, flags);
	if (rearm && op->polling)
		loop_arm_poll(loop, op);
}

/* Run the callbacks of every completion already in the CQ ring. */
static int loop_dispatch_ready(struct loop *loop)
{
	struct io_uring_cqe *cqe;
	int n = 0;
	/* loop_dispatch() copies the CQE and marks it seen before the callback
	 * runs, so callbacks may queue new SQEs freely. */
	while (io_uring_peek_cqe(&loop->ring, &cqe) == 0) {
		loop_dispatch(loop, cqe);
		n++;
	}
	return n;
}

int loop_run_once(struct loop *loop, uint64_t timeout_ns)
{
	struct io_uring_cqe *cqe;
	struct __kernel_timespec ts = {
		.tv_sec = (long long)(timeout_ns / 1000000000ULL),
		.tv_nsec = (long long)(timeout_ns % 1000000000ULL),
	};
	int r = io_uring_submit_and_wait_timeout(&loop->ring, &cqe, 1,
						 timeout_ns == LOOP_WAIT_FOREVER ? NULL : &ts, NULL);
	if (r < 0 && r != -ETIME && r != -EINTR)
		return r;
	return loop_dispatch_ready(loop);
}

int loop_run_nowait(struct loop *loop)
{
	if (io_uring_sq_ready(&loop->ring)) {
		int r = io_uring_submit(&loop->ring);
		if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY)
			return r;
	}
	return loop_dispatch_ready(loop);
}

int loop_settle(struct loop *loop, bool (*busy)(void *arg), void *arg, unsigned max_ms)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	int64_t end = (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000 + max_ms;
	while (busy(arg)) {
		clock_gettime(CLOCK_MONOTONIC, &t);
		if ((int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000 >= end)
			return -ETIMEDOUT;
		int r = loop_run_once(loop, 1000000);
		if (r < 0)
			return r;
	}
	return 0;
}

struct op_set {
	struct loop_op *const *ops;
	unsigned n;
};

static bool op_set_armed(void *arg)
{
	const struct op_set *set = arg;
	for (unsigned i = 0; i < set->n; i++)
		if (set->ops[i]->armed)
			return true;
	return false;
}

int loop_cancel_settle(struct loop *loop, struct loop_op *const *ops, unsigned n, unsigned max_ms)
{
	struct op_set set = { ops, n };
	for (unsigned i = 0; i < n; i++)
		if (ops[i]->armed)
			loop_cancel(loop, ops[i]);
	return loop_settle(loop, op_set_armed, &set, max_ms);
}

int loop_run(struct loop *loop)
{
	/* No timeout: loop_stop_async wakes the loop through wake_fd, and an
	 * idle loop should not wake its process once a second. */
	while (!loop->stop) {
		int r = loop_run_once(loop, LOOP_WAIT_FOREVER);
		if (r < 0)
			return r;
	}
	return loop->status;
}

/* Poll for up to p->ns: true if work came. */
static bool loop_poll_window(struct loop *loop, struct loop_poller *p)
{
	uint64_t end = now_ns() + p->ns;
	do {
		int n = loop_run_nowait(loop);
		if (n < 0 || loop->stop)
			return false;
		int r = p->poll ? p->poll(p->arg) : 0;
		if (r < 0)
			return false;
		if (r > 0 || (n > 0 && (!p->woken || p->woken(p->arg))))
			return true;
		sched_yield();
	} while (now_ns() < end);
	return false;
}

void loop_poll_adapt(struct loop_poller *p, uint64_t block_ns)
{
	if (block_ns <= p->ns)
		return;				/* polling would have caught it */
	if (block_ns > p->max_ns)
		p->ns /= 2;			/* too long to wait for: poll less */
	else
		p->ns = p->ns ? MIN(p->max_ns, p->ns * 2) : MIN(p->max_ns, 4000);
}

int loop_run_polled(struct loop *loop, struct loop_poller *p)
{
	while (!loop->stop) {
		uint64_t t0 = now_ns();
		if (p->ns && loop_poll_window(loop, p))
			continue;
		bool woken = false;
		while (!woken && !loop->stop) {
			if (p->arm)
				p->arm(p->arg);
			int n = loop_run_once(loop, LOOP_WAIT_FOREVER);
			if (n < 0)
				return n;
			woken = n > 0 && (!p->woken || p->woken(p->arg));
		}
		if (woken && p->max_ns)
			loop_poll_adapt(p, now_ns() - t0);
	}
	return loop->status;
}

uint64_t loop_poll_us_default(unsigned busy_peers)
{
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof(set), &set) < 0)
		return 0;
	return (unsigned)CPU_COUNT(&set) > busy_peers ? LOOP_POLL_US_DEFAULT : 0;
}

void loop_stop(struct loop *loop, int status)
{
	loop->status = status;
	loop->stop = true;
}

void loop_stop_async(struct loop *loop, int status)
{
	uint64_t one = 1;
	loop->status = status;
	__atomic_store_n(&loop->stop, true, __ATOMIC_RELEASE);
	/* async-signal-safe: a single write to an eventfd */
	ssize_t r = write(loop->wake_fd, &one, sizeof(one));
	(void)r;
}

int loop_restart(struct loop *loop)
{
	__atomic_store_n(&loop->stop, false, __ATOMIC_RELEASE);
	loop->status = 0;
	/* A stop's wake that has not been read yet keeps its read armed; one
	 * read after the stop was not re-armed. */
	return loop->wake_armed ? 0 : loop_arm_wake(loop);
}
