/* common/loop.h - the io_uring event loop every component runs on.
 *
 * One loop per thread (in the VMM: the one event-loop thread; in host
 * transports such as fs-serve or net-serve: the main thread).  Work is
 * submitted as io_uring SQEs whose user_data points at a caller-owned
 * struct loop_op; when the CQE arrives, op->cb runs on the loop thread.
 * Callers embed loop_op in their own structures (container_of to get back),
 * so the loop never allocates.
 *
 * Typical uses: a multishot poll on an ioeventfd (guest kick), on a host
 * socket, on /dev/fuse or a TAP fd; IORING_OP_READ/WRITE for file I/O;
 * IORING_OP_TIMEOUT for timers (TCP retransmit, keepalive).
 */
#ifndef KVMBOX_COMMON_LOOP_H
#define KVMBOX_COMMON_LOOP_H

#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>

struct loop;
struct loop_op;

/* Completion callback: res is the CQE result (>= 0 or -errno); flags are the
 * CQE flags (IORING_CQE_F_MORE while a multishot request stays armed). */
typedef void (*loop_cb)(struct loop *loop, struct loop_op *op, int res, uint32_t flags);

/* Caller-owned completion handle; must stay valid until its last CQE. */
struct loop_op {
	loop_cb cb;
	void *opaque;
	/* Set by loop_poll() so the loop can re-arm a dropped multishot poll. */
	int poll_fd;
	unsigned poll_mask;
	bool polling;
	/* Requests tagged with op whose last CQE (one without
	 * IORING_CQE_F_MORE) has not been dispatched yet; kept by the loop,
	 * so an owner can tell when its memory is no longer referenced. */
	unsigned armed;
};

struct loop {
	struct io_uring ring;
	bool stop;
	int status;		/* value passed to loop_stop(), returned by loop_run() */
	int wake_fd;		/* eventfd that loop_wake() signals from other threads */
	struct loop_op wake_op;
	uint64_t wake_buf;
	bool wake_armed;	/* wake_op's read is in the ring */
};

/* 0 or -errno.  entries: SQ size (rounded up by the kernel). */
int loop_init(struct loop *loop, unsigned entries);
void loop_fini(struct loop *loop);

/* An SQE tagged with op (user_data = op); submitted on the next loop turn or
 * loop_submit().  Returns NULL only if the SQ is full even after a submit. */
struct io_uring_sqe *loop_sqe(struct loop *loop, struct loop_op *op);
int loop_submit(struct loop *loop);

/* Multishot poll on fd for mask (POLLIN...); re-armed automatically when the
 * kernel drops it (no IORING_CQE_F_MORE) unless the result is an error. */
int loop_poll(struct loop *loop, struct loop_op *op, int fd, unsigned mask);
/* One-shot poll: a single completion, at once when fd is ready as it is
 * armed (level-triggered at arming).  For a source drained to EAGAIN on
 * each completion and re-armed after: a multishot poll posts a completion
 * per wakeup, and the ones for data a drain already took each cost a
 * read that finds nothing. */
int loop_poll_once(struct loop *loop, struct loop_op *op, int fd, unsigned mask);
/* Cancel every request tagged with op (best effort, asynchronous). */
int loop_cancel(struct loop *loop, struct loop_op *op);

/* Run the loop until busy(arg) is false, at most max_ms milliseconds
 * (callbacks run meanwhile).  For owners tearing down: loop_cancel every
 * op, then settle until none is armed, then free.  0 or -ETIMEDOUT. */
int loop_settle(struct loop *loop, bool (*busy)(void *arg), void *arg, unsigned max_ms);
/* That sequence for a set of ops: cancel each of ops[0..n) the loop still
 * holds, then settle until none is armed.  0 or -ETIMEDOUT. */
int loop_cancel_settle(struct loop *loop, struct loop_op *const *ops, unsigned n, unsigned max_ms);

/* One-shot timer after ns nanoseconds; ts must stay valid until it fires. */
int loop_timer(struct loop *loop, struct loop_op *op, struct __kernel_timespec *ts, uint64_t ns);

/* Move the pending one-shot timer of op to ns nanoseconds from now (ts
 * must stay valid until submitted); the update itself completes untracked,
 * with -ENOENT if the timer had fired already. */
int loop_timer_update(struct loop *loop, struct loop_op *op, struct __kernel_timespec *ts,
		      uint64_t ns);

/* Run until loop_stop(); returns the status given to loop_stop(). */
int loop_run(struct loop *loop);
/* Process completions once, waiting at most timeout_ns (0: don't wait;
 * LOOP_WAIT_FOREVER: until one arrives). */
#define LOOP_WAIT_FOREVER UINT64_MAX
int loop_run_once(struct loop *loop, uint64_t timeout_ns);
/* Submit what is queued and run the callbacks of the completions already
 * there, without entering the kernel to wait: for owners that busy-poll
 * something else between waits.  Number of completions, or -errno. */
int loop_run_nowait(struct loop *loop);
/* Adaptive busy polling between waits, as QEMU's iothreads poll
 * (poll-max-ns): when work comes back to back, a loop that sleeps between
 * items pays a sleep and a wakeup for each (on a VM an IPI and a halt exit),
 * and so does the peer waiting for its answer.  loop_run_polled() looks
 * for work without blocking for a window of ns before it sleeps.  ns
 * starts at 0 and adapts: a sleep that work ended within max_ns doubles
 * it (from 4 us, up to max_ns), a longer one halves it, so a busy loop
 * polls and an idle one does not spin.  Each turn of the window runs the
 * completions already there and yields the CPU (a peer on the same CPU
 * goes first). */
struct loop_poller {
	/* Look for work without blocking and handle it: > 0 some, 0 none,
	 * < 0 end this window (the callee has dealt with the error).  NULL:
	 * the work arrives only as completions. */
	int (*poll)(void *arg);
	/* Before each sleep: arm what completes when work arrives (NULL:
	 * always armed). */
	void (*arm)(void *arg);
	/* After completions ran: whether work came with them, clearing that
	 * note (NULL: any completion counts as work). */
	bool (*woken)(void *arg);
	void *arg;
	uint64_t max_ns;	/* bound of the window (0: never poll) */
	uint64_t ns;		/* the window now */
};
/* Work ended a wait of block_ns (the window included): adapt p->ns as
 * above.  For pollers that wait on something else than a struct loop
 * (fs9p/fuse_uring.c's per-CPU threads). */
void loop_poll_adapt(struct loop_poller *p, uint64_t block_ns);
#define LOOP_POLL_US_DEFAULT 128	/* the window when polling pays (below) */
/* The default --poll-us of a host transport whose requests come from
 * busy_peers processes that each want a CPU while it waits (net-serve: the
 * client and the server of a connection, 2; fs-serve: the FUSE client, 1):
 * LOOP_POLL_US_DEFAULT when this process may run on more CPUs than those
 * peers, else 0, because a poller then takes the CPU a peer needs.
 * Measured on 2 CPUs: net-serve's request/response latency 74 us polling
 * against 66 without; fs-serve's lookups 2.6x faster polling. */
uint64_t loop_poll_us_default(unsigned busy_peers);
/* Run until loop_stop() with p's polling; returns loop_run()'s status. */
int loop_run_polled(struct loop *loop, struct loop_poller *p);

/* Stop the loop (from the loop thread). */
void loop_stop(struct loop *loop, int status);
/* Stop the loop from any thread or a signal handler. */
void loop_stop_async(struct loop *loop, int status);
/* A stopped loop may run again (its owner's thread, the loop not
 * running): the stop is forgotten and loop_stop_async's wake re-armed.
 * 0 or -errno. */
int loop_restart(struct loop *loop);

#endif
