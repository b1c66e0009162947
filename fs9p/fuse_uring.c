/* fs9p/fuse_uring.c - host transport: the kernel's FUSE-over-io_uring
 * queues (Linux 6.14+, fuse.enable_uring=Y), served next to /dev/fuse.
 *
 * Why: over /dev/fuse a request issued on one CPU is read by a server
 * thread wherever it runs, and the client is woken from another CPU when
 * the reply comes: on a VM an IPI and a halt exit on each side of every
 * request, which is most of a metadata operation's cost.  With FUSE over
 * io_uring the kernel queues each request on the queue of the CPU that
 * issued it; one thread pinned to each CPU serves that CPU's queue, so
 * request and reply mostly stay on one CPU.  Measured here: 2.6-3x
 * passthrough_ll on lookups of new names, where /dev/fuse with polling
 * gave 1.25x (docs/fs9p.md).
 *
 * Protocol (include/uapi/linux/fuse.h, "fuse-io-uring"): each thread has
 * its own SQE128 ring and registers FU_ENTS entries on its queue with
 * IORING_OP_URING_CMD (FUSE_IO_URING_CMD_REGISTER; two iovecs: a 288-byte
 * header and a payload buffer of at least max_write).  A request arrives
 * as the completion of an entry's command: fuse_in_header in in_out, the
 * opcode's fixed argument in op_in, the rest in the payload.  The reply is
 * written back the same way (fuse_out_header in in_out, the rest in the
 * payload, payload_sz set) and committed with COMMIT_AND_FETCH, which also
 * waits for the entry's next request.  FORGETs and interrupts still come
 * through /dev/fuse, as does everything until every queue is registered.
 *
 * The codec core is single-threaded: every request, from any thread, is
 * handled under the caller's lock, synchronously (no io_uring file I/O in
 * this mode).  The lock is uncontended while one CPU issues requests.
 * What the kernel put in the buffers is checked before use like any
 * request (lengths against the buffers).
 */
#include "fs9p/fuse_uring.h"

#include <errno.h>
#include <linux/fuse.h>
#include <liburing.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/log.h"
#include "common/loop.h"
#include "common/util.h"

#define FU_ENTS 2			/* entries per queue */
#define FU_CMD_REGISTER 1		/* enum fuse_uring_cmd */
#define FU_CMD_COMMIT_AND_FETCH 2
#define FU_WAIT_NS 100000000LL		/* how often a thread looks at stop */

/* struct fuse_uring_req_header (uapi; older headers lack it). */
struct fu_header {
	uint8_t in_out[128];		/* fuse_in_header / fuse_out_header */
	uint8_t op_in[128];		/* the opcode's fixed argument */
	struct {
		uint64_t flags, commit_id;
		uint32_t payload_sz, padding;
		uint64_t reserved;
	} ent;
};

/* struct fuse_uring_cmd_req: the command area of the SQE128. */
struct fu_cmd {
	uint64_t flags, commit_id;
	uint16_t qid;
	uint8_t padding[6];
};

struct fu_entry {
	struct fu_header *hdr;
	uint8_t *payload;		/* FS_FUSE_BUF_SIZE */
	struct iovec iov[2];
};

/* One CPU's queue and the thread that serves it. */
struct fu_queue {
	struct fuse_uring *u;
	unsigned qid;
	pthread_t thread;
	bool started;
	struct io_uring ring;
	struct fu_entry ent[FU_ENTS];
	struct loop_poller poller;	/* only ns and max_ns (0: never poll) */
};

struct fuse_uring {
	struct fs_server *srv;
	int fd;				/* /dev/fuse */
	pthread_mutex_t *lock;		/* around every codec call */
	bool stop;			/* atomic: threads end */
	unsigned long served;		/* atomic: requests answered here */
	unsigned nq;
	struct fu_queue q[];
};

static void fu_submit(struct fu_queue *q, struct fu_entry *e, uint32_t op)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&q->ring);
	if (!sqe)
		return;		/* cannot happen: at most FU_ENTS in a ring of 8 */
	/* An SQE128: the command lives past the first 48 bytes. */
	uint8_t *raw = (uint8_t *)sqe;
	__asm__("" : "+r"(raw));	/* the compiler only knows 64 bytes */
	memset(raw, 0, 128);
	sqe->opcode = IORING_OP_URING_CMD;
	sqe->fd = q->u->fd;
	sqe->addr = (uint64_t)(uintptr_t)e->iov;
	sqe->len = 2;
	sqe->cmd_op = op;
	struct fu_cmd cmd = { .commit_id = op == FU_CMD_COMMIT_AND_FETCH ? e->hdr->ent.commit_id : 0,
			      .qid = (uint16_t)q->qid };
	memcpy(raw + 48, &cmd, sizeof(cmd));
	io_uring_sqe_set_data(sqe, e);
}

/* Serve the request the kernel put in e; false if it is unusable. */
static bool fu_serve(struct fu_queue *q, struct fu_entry *e)
{
	struct fuse_in_header h;
	memcpy(&h, e->hdr->in_out, sizeof(h));
	uint32_t psz = e->hdr->ent.payload_sz;
	if (psz > FS_FUSE_BUF_SIZE || h.len < sizeof(h) + (uint64_t)psz ||
	    h.len - sizeof(h) - psz > sizeof(e->hdr->op_in)) {
		log_err("fs-serve: malformed request on io_uring queue %u", q->qid);
		return false;
	}
	struct iovec in[3] = { { e->hdr->in_out, sizeof(h) },
			       { e->hdr->op_in, h.len - sizeof(h) - psz },
			       { e->payload, psz } };
	struct iovec out[2] = { { e->hdr->in_out, sizeof(struct fuse_out_header) },
				{ e->payload, FS_FUSE_BUF_SIZE } };
	pthread_mutex_lock(q->u->lock);
	ssize_t len = fs_fuse_handle(q->u->srv, in, 3, out, 2);
	pthread_mutex_unlock(q->u->lock);
	if (len < (ssize_t)sizeof(struct fuse_out_header)) {
		/* Every request on a queue expects an answer. */
		struct fuse_out_header oh = { .len = sizeof(oh), .error = -EIO, .unique = h.unique };
		memcpy(e->hdr->in_out, &oh, sizeof(oh));
		len = sizeof(oh);
	}
	e->hdr->ent.payload_sz = (uint32_t)(len - sizeof(struct fuse_out_header));
	__atomic_add_fetch(&q->u->served, 1, __ATOMIC_RELAXED);
	fu_submit(q, e, FU_CMD_COMMIT_AND_FETCH);
	return true;
}

/* Register every entry.  The kernel answers -EAGAIN until it has seen our
 * INIT reply, so retry for a while; a registered entry's command stays
 * pending until a request comes, and one that comes now is served.
 * 0 or -errno. */
static int fu_register(struct fu_queue *q)
{
	bool need[FU_ENTS];
	for (unsigned i = 0; i < FU_ENTS; i++)
		need[i] = true;
	for (int tries = 0; tries < 2000; tries++) {
		bool any = false;
		for (unsigned i = 0; i < FU_ENTS; i++) {
			if (need[i])
				fu_submit(q, &q->ent[i], FU_CMD_REGISTER);
			any |= need[i];
			need[i] = false;
		}
		if (!any)
			return 0;
		io_uring_submit(&q->ring);
		usleep(1000);
		struct io_uring_cqe *cqe;
		while (io_uring_peek_cqe(&q->ring, &cqe) == 0) {
			struct fu_entry *e = io_uring_cqe_get_data(cqe);
			int res = cqe->res;
			io_uring_cqe_seen(&q->ring, cqe);
			if (res == -EAGAIN)
				need[e - q->ent] = true;
			else if (res < 0)
				return res;
			else if (!fu_serve(q, e))
				return -EPROTO;
		}
	}
	return -ETIMEDOUT;
}

/* After a reply: look for the next request without sleeping for up to
 * the poller's window, yielding the CPU each turn (a task on this CPU
 * goes first, and each return from the system call runs the ring's task
 * work, which posts a request that came).  True with *cqe set if one came.
 * Why: the reply wakes the client on this CPU while this thread still
 * runs, so the scheduler moves the client to an idle CPU, and its next
 * request lands on that CPU's queue: every request then pays a migration
 * and a wakeup across CPUs.  A thread that polls keeps its CPU busy, the
 * client stays where it was, and its next request finds this thread
 * awake (fio 4 KiB random reads on a 2-CPU VM: 33k -> 40-46k IOPS, 61k
 * migrations in 3 s before). */
static bool fu_poll_window(struct fu_queue *q, struct io_uring_cqe **cqe)
{
	if (!q->poller.ns)
		return false;
	io_uring_submit(&q->ring);
	uint64_t end = now_ns() + q->poller.ns;
	do {
		if (io_uring_peek_cqe(&q->ring, cqe) == 0)
			return true;
		sched_yield();
	} while (now_ns() < end);
	return false;
}

static void *fu_thread(void *arg)
{
	struct fu_queue *q = arg;
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(q->qid, &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);	/* best effort */
	int r = fu_register(q);
	if (r < 0) {
		log_warn("fs-serve: io_uring queue %u: %s; requests of that CPU stay on /dev/fuse",
			 q->qid, strerror(-r));
		return NULL;
	}
	while (!__atomic_load_n(&q->u->stop, __ATOMIC_ACQUIRE)) {
		struct __kernel_timespec ts = { .tv_nsec = FU_WAIT_NS };
		struct io_uring_cqe *cqe = NULL;
		uint64_t t0 = now_ns();
		if (!fu_poll_window(q, &cqe)) {
			r = io_uring_submit_and_wait_timeout(&q->ring, &cqe, 1, &ts, NULL);
			if (r < 0 && r != -ETIME && r != -EINTR)
				break;
			if (io_uring_peek_cqe(&q->ring, &cqe) != 0)
				continue;	/* the timeout: look at stop */
			if (q->poller.max_ns)
				loop_poll_adapt(&q->poller, now_ns() - t0);
		}
		struct fu_entry *e = io_uring_cqe_get_data(cqe);
		int res = cqe->res;
		io_uring_cqe_seen(&q->ring, cqe);
		if (res < 0)	/* unmounted or aborted: the queue is gone */
			break;
		if (!fu_serve(q, e))
			break;
	}
	return NULL;
}

static int fu_queue_init(struct fuse_uring *u, struct fu_queue *q, unsigned qid)
{
	q->u = u;
	q->qid = qid;
	int r = io_uring_queue_init(8, &q->ring, IORING_SETUP_SQE128);
	if (r < 0)
		return r;
	for (unsigned i = 0; i < FU_ENTS; i++) {
		struct fu_entry *e = &q->ent[i];
		e->hdr = calloc(1, sizeof(*e->hdr));
		e->payload = malloc(FS_FUSE_BUF_SIZE);
		if (!e->hdr || !e->payload)
			return -ENOMEM;
		e->iov[0] = (struct iovec){ e->hdr, sizeof(*e->hdr) };
		e->iov[1] = (struct iovec){ e->payload, FS_FUSE_BUF_SIZE };
	}
	return 0;
}

static void fu_queue_fini(struct fu_queue *q)
{
	if (q->ring.ring_fd > 0)
		io_uring_queue_exit(&q->ring);
	for (unsigned i = 0; i < FU_ENTS; i++) {
		free(q->ent[i].hdr);
		free(q->ent[i].payload);
	}
}

/* The kernel has a queue per possible CPU (nr_cpu_ids), and uses the
 * queues only once every one is registered. */
static long possible_cpus(void)
{
	FILE *f = fopen("/sys/devices/system/cpu/possible", "re");
	unsigned lo, hi;
	int n = f ? fscanf(f, "%u-%u", &lo, &hi) : 0;
	if (f)
		fclose(f);
	if (n == 2)
		return (long)hi + 1;
	if (n == 1)
		return (long)lo + 1;
	return sysconf(_SC_NPROCESSORS_CONF);
}

int fuse_uring_start(struct fs_server *srv, int fd, pthread_mutex_t *lock, uint64_t poll_max_ns,
		     struct fuse_uring **out)
{
	long ncpu = possible_cpus();
	if (ncpu < 1 || ncpu > 4096)
		return -EINVAL;
	struct fuse_uring *u = calloc(1, sizeof(*u) + (size_t)ncpu * sizeof(u->q[0]));
	if (!u)
		return -ENOMEM;
	u->srv = srv;
	u->fd = fd;
	u->lock = lock;
	u->nq = (unsigned)ncpu;
	int r = 0;
	for (unsigned i = 0; i < u->nq && r == 0; i++) {
		r = fu_queue_init(u, &u->q[i], i);
		u->q[i].poller.max_ns = poll_max_ns;
	}
	for (unsigned i = 0; i < u->nq && r == 0; i++) {
		r = -pthread_create(&u->q[i].thread, NULL, fu_thread, &u->q[i]);
		u->q[i].started = r == 0;
	}
	if (r < 0) {
		fuse_uring_stop(u);
		return r;
	}
	*out = u;
	return 0;
}

void fuse_uring_stop(struct fuse_uring *u)
{
	if (!u)
		return;
	__atomic_store_n(&u->stop, true, __ATOMIC_RELEASE);
	for (unsigned i = 0; i < u->nq; i++)
		if (u->q[i].started)
			pthread_join(u->q[i].thread, NULL);
	log_info("fs-serve: %lu requests served through the io_uring queues", u->served);
	for (unsigned i = 0; i < u->nq; i++)
		fu_queue_fini(&u->q[i]);
	free(u);
}
