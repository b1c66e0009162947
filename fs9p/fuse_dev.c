/* fs9p/fuse_dev.c - host transport: serve the FUSE codec over /dev/fuse.
 *
 * The host kernel's FUSE client is the peer, which is how the tests and
 * auditors exercise exactly the code virtio-fs runs.  We mount with the
 * mount(2) syscall ourselves (no fusermount): type "fuse", options fd=,
 * rootmode=, user_id=, group_id=, default_permissions (the client checks
 * permissions against the attributes we report) and allow_other.
 *
 * Requests flow through a fixed pool of DEV_SLOTS slots, each with its own
 * request and reply buffer (allocated once; untouched pages cost nothing).
 * One io_uring READ on /dev/fuse (opened non-blocking, so io_uring polls it
 * rather than parking a worker) is posted into a free slot at a time; when
 * it completes the request is handled (file I/O goes on to io_uring too,
 * see fs9p/aio.c) and the reply goes back as an io_uring WRITE, which frees
 * the slot when it completes.  Replies, the next READ and the wait share
 * one io_uring_enter(), so a request costs one system call on our side.
 * When every slot is busy no READ is posted: the kernel queues further
 * requests (back-pressure) until a reply frees a slot.
 *
 * Adaptive polling (loop_run_polled, common/loop.h): a client thread that
 * sends its next request a few microseconds after our reply would
 * otherwise find us asleep and pay for a wakeup on each side of every
 * request.  While the loop polls, requests are read from /dev/fuse
 * directly (non-blocking) and the io_uring READ is posted only right
 * before the loop sleeps.
 *
 * With fs_opts.fuse_uring (`fs-serve --uring`), once INIT agreed on FUSE
 * over io_uring, fuse_uring.c serves the kernel's per-CPU queues on a
 * thread per CPU; what still comes here (FORGETs, interrupts) is then
 * handled under the same lock, synchronously.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <pthread.h>
#include <unistd.h>

#include "common/log.h"
#include "common/loop.h"
#include "common/util.h"
#include "fs9p/fs.h"
#include "fs9p/fuse_uring.h"

#define DEV_SLOTS 32

struct fuse_dev;

/* One request in progress: read into in, reply built in out. */
struct dev_slot {
	struct loop_op op;	/* the READ, then the reply WRITE */
	struct fuse_dev *d;
	uint8_t *in, *out;	/* FS_FUSE_BUF_SIZE each */
	struct dev_slot *next_free;
};

struct fuse_dev {
	struct fs_server *srv;
	struct loop *loop;
	int fd;
	struct dev_slot slots[DEV_SLOTS];
	struct dev_slot *free;
	unsigned busy;		/* slots reading, handling or writing */
	bool reading;		/* a READ is posted */
	bool stopping;		/* unmounted or stopped: post nothing more */
	bool got_request;	/* a posted READ brought a request */
	struct loop_poller poller;	/* adaptive polling (poller.max_ns 0: none) */
	/* FUSE over io_uring (fuse_uring.c), once INIT agreed on it: from
	 * then on every request, here too, is handled under lock. */
	struct fuse_uring *ur;
	bool ur_failed;
	pthread_mutex_t lock;
	int status;
};

static void post_read(struct fuse_dev *d);

static void slot_free(struct fuse_dev *d, struct dev_slot *sl)
{
	sl->next_free = d->free;
	d->free = sl;
	d->busy--;
	if (!d->poller.max_ns)
		post_read(d);	/* polling: dev_arm posts it before sleeping */
}

static void slot_written(struct loop *loop, struct loop_op *op, int res, uint32_t flags)
{
	(void)loop;
	(void)flags;
	struct dev_slot *sl = container_of(op, struct dev_slot, op);
	/* ENOENT: the request was interrupted and is gone; not an error. */
	if (res < 0 && res != -ENOENT && res != -ENODEV && res != -ECANCELED)
		log_warn("fs-serve: reply to /dev/fuse: %s", strerror(-res));
	slot_free(sl->d, sl);
}

/* The reply of the request in sl is ready (len bytes; 0: no reply). */
static void slot_reply(struct fuse_dev *d, struct dev_slot *sl, ssize_t len)
{
	struct io_uring_sqe *sqe = len > 0 ? loop_sqe(d->loop, &sl->op) : NULL;
	if (!sqe) {
		if (len > 0 && write(d->fd, sl->out, (size_t)len) < 0 && errno != ENOENT)
			log_warn("fs-serve: reply to /dev/fuse: %s", strerror(errno));
		slot_free(d, sl);
		return;
	}
	sl->op.cb = slot_written;
	io_uring_prep_write(sqe, d->fd, sl->out, (unsigned)len, 0);
}

static void slot_done(void *ctx, ssize_t len)
{
	struct dev_slot *sl = ctx;
	slot_reply(sl->d, sl, len);
}

/* Reading /dev/fuse ended with res <= 0: the next request or the end. */
static void dev_read_failed(struct fuse_dev *d, int res)
{
	if (res == -EINTR || res == -ENOENT || res == -EAGAIN) {
		post_read(d);	/* interrupted request: next one */
		return;
	}
	if (res != -ECANCELED && res != -ENODEV && res != 0) {
		log_err("fs-serve: read /dev/fuse: %s", strerror(-res));
		d->status = res;
	}
	d->stopping = true;	/* ENODEV: unmounted */
	loop_stop(d->loop, d->status);
}

/* Serve the request of len bytes read into sl. */
static void slot_handle(struct fuse_dev *d, struct dev_slot *sl, size_t len)
{
	struct iovec iin = { sl->in, len }, iout = { sl->out, FS_FUSE_BUF_SIZE };
	ssize_t rlen;
	if (d->ur) {
		pthread_mutex_lock(&d->lock);
		rlen = fs_fuse_handle(d->srv, &iin, 1, &iout, 1);
		pthread_mutex_unlock(&d->lock);
	} else {
		rlen = fs_fuse_handle_async(d->srv, &iin, 1, &iout, 1, slot_done, sl);
	}
	if (rlen != FS_PENDING)
		slot_reply(d, sl, rlen);
	if (!d->ur && !d->ur_failed && fs_fuse_uring_agreed(d->srv)) {
		int r = fuse_uring_start(d->srv, d->fd, &d->lock, d->poller.max_ns, &d->ur);
		if (r < 0) {
			log_warn("fs-serve: FUSE over io_uring: %s; serving /dev/fuse only", strerror(-r));
			d->ur_failed = true;
		}
	}
	/* After DESTROY we keep reading: the unmount that follows ends the
	 * READ with ENODEV, which stops the loop. */
}

static void slot_read(struct loop *loop, struct loop_op *op, int res, uint32_t flags)
{
	(void)loop;
	(void)flags;
	struct dev_slot *sl = container_of(op, struct dev_slot, op);
	struct fuse_dev *d = sl->d;
	d->reading = false;
	if (res <= 0) {
		sl->next_free = d->free;
		d->free = sl;
		d->busy--;
		dev_read_failed(d, res);
		return;
	}
	d->got_request = true;
	if (!d->poller.max_ns)
		post_read(d);	/* the next request, while this one is served */
	slot_handle(d, sl, (size_t)res);
}

/* Post a READ of the next request into a free slot (one at a time). */
static void post_read(struct fuse_dev *d)
{
	if (d->reading || d->stopping || !d->free)
		return;
	struct dev_slot *sl = d->free;
	struct io_uring_sqe *sqe = loop_sqe(d->loop, &sl->op);
	if (!sqe)
		return;	/* SQ full even after a submit: the next completion retries */
	d->free = sl->next_free;
	d->busy++;
	d->reading = true;
	sl->op.cb = slot_read;
	io_uring_prep_read(sqe, d->fd, sl->in, FS_FUSE_BUF_SIZE, 0);
}

/* While polling: read a request straight into a free slot and serve it.
 * 1 served, 0 none waiting, < 0 the device failed (see dev_read_failed). */
static int dev_read_now(struct fuse_dev *d)
{
	struct dev_slot *sl = d->free;
	ssize_t n = read(d->fd, sl->in, FS_FUSE_BUF_SIZE);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR || errno == ENOENT ? 0 : -errno;
	if (n == 0)
		return -ENODEV;
	d->free = sl->next_free;
	d->busy++;
	slot_handle(d, sl, (size_t)n);
	return 1;
}

/* loop_poller callbacks: while polling, requests are read directly and no
 * READ is posted until the loop is about to sleep. */
static int dev_poll(void *arg)
{
	struct fuse_dev *d = arg;
	if (!d->free || d->stopping)
		return 0;
	int r = dev_read_now(d);
	if (r < 0)
		dev_read_failed(d, r);
	return r;
}

static void dev_arm(void *arg)
{
	post_read(arg);
}

static bool dev_woken(void *arg)
{
	struct fuse_dev *d = arg;
	bool w = d->got_request;
	d->got_request = false;
	return w;
}

static int fuse_mount(const char *mnt, int *fdp)
{
	int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (stat(mnt, &st) < 0 || !S_ISDIR(st.st_mode)) {
		int e = errno ? -errno : -ENOTDIR;
		close(fd);
		return e;
	}
	char opts[256];
	snprintf(opts, sizeof(opts),
		 "fd=%d,rootmode=%o,user_id=%u,group_id=%u,default_permissions,allow_other",
		 fd, S_IFDIR, (unsigned)getuid(), (unsigned)getgid());
	if (mount("kvmbox", mnt, "fuse", MS_NOSUID | MS_NODEV, opts) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	*fdp = fd;
	return 0;
}

static void fuse_unmount(const char *mnt)
{
	if (umount2(mnt, 0) == 0)
		return;
	if (errno == EINVAL || errno == ENOENT)
		return;		/* already gone */
	log_warn("fs-serve: %s busy (%s); detaching it", mnt, strerror(errno));
	if (umount2(mnt, MNT_DETACH) < 0 && errno != EINVAL)
		log_err("fs-serve: cannot unmount %s: %s", mnt, strerror(errno));
}

static void dev_free(struct fuse_dev *d)
{
	for (unsigned i = 0; i < DEV_SLOTS; i++) {
		free(d->slots[i].in);
		free(d->slots[i].out);
	}
	free(d);
}

int fs_fuse_serve_mount(struct fs_server *srv, struct loop *loop, const char *mnt,
			uint64_t poll_max_ns)
{
	struct fuse_dev *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->srv = srv;
	d->loop = loop;
	d->fd = -1;
	pthread_mutex_init(&d->lock, NULL);
	d->poller = (struct loop_poller){ .poll = dev_poll, .arm = dev_arm, .woken = dev_woken,
					  .arg = d, .max_ns = poll_max_ns };
	int r = fs_server_attach_loop(srv, loop);
	for (unsigned i = 0; i < DEV_SLOTS && r == 0; i++) {
		struct dev_slot *sl = &d->slots[i];
		sl->d = d;
		sl->in = malloc(FS_FUSE_BUF_SIZE);
		sl->out = malloc(FS_FUSE_BUF_SIZE);
		if (!sl->in || !sl->out)
			r = -ENOMEM;
		sl->next_free = d->free;
		d->free = sl;
	}
	if (r < 0)
		goto out;
	r = fuse_mount(mnt, &d->fd);
	if (r < 0) {
		log_err("fs-serve: mount %s: %s", mnt, strerror(-r));
		goto out;
	}
	r = loop_run_polled(loop, &d->poller);
	if (d->status < 0)
		r = d->status;
	d->stopping = true;
	fuse_unmount(mnt);	/* a READ still posted ends with ENODEV */
	fuse_uring_stop(d->ur);	/* the unmount ended the queues' commands */
	/* Let every slot finish (file I/O, replies, the last READ) before the
	 * buffers go away. */
	while (d->busy) {
		for (unsigned i = 0; i < DEV_SLOTS; i++)
			loop_cancel(loop, &d->slots[i].op);
		if (loop_run_once(loop, 100000000ULL) < 0)
			break;
	}
	fs_server_drain(srv);
	close(d->fd);
out:
	dev_free(d);
	return r;
}
