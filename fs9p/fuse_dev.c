/* fs9p/fuse_dev.c - host transport: serve the FUSE codec over /dev/fuse.
 *
 * The host kernel's FUSE client is the peer, which is how the tests and
 * auditors exercise exactly the code virtio-fs runs.  We mount with the
 * mount(2) syscall ourselves (no fusermount): type "fuse", options fd=,
 * rootmode=, user_id=, group_id=, default_permissions (the client checks
 * permissions against the attributes we report) and allow_other.
 *
 * /dev/fuse is opened non-blocking and watched by a multishot poll on the
 * io_uring loop; each wake-up reads requests until EAGAIN (at most a batch,
 * to stay fair to other loop users) and writes each reply at once.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/loop.h"
#include "common/util.h"
#include "fs9p/fs.h"

#define BATCH 64

struct fuse_dev {
	struct fs_server *srv;
	struct loop *loop;
	int fd;
	struct loop_op op;
	uint8_t *in, *out;	/* FS_FUSE_BUF_SIZE each */
	int status;
};

static void fuse_dev_ready(struct loop *loop, struct loop_op *op, int res, uint32_t flags)
{
	(void)flags;
	struct fuse_dev *d = op->opaque;
	if (res == -ECANCELED)
		return;		/* our own cancel at shutdown */
	if (res < 0) {
		log_err("fs-serve: poll on /dev/fuse failed: %s", strerror(-res));
		d->status = res;
		loop_stop(loop, res);
		return;
	}
	for (int i = 0; i < BATCH; i++) {
		ssize_t n = read(d->fd, d->in, FS_FUSE_BUF_SIZE);
		if (n < 0) {
			if (errno == EINTR || errno == ENOENT)
				continue;	/* interrupted request: next one */
			if (errno == EAGAIN)
				return;
			if (errno != ENODEV)
				log_err("fs-serve: read /dev/fuse: %s", strerror(errno));
			loop_cancel(loop, op);
			loop_stop(loop, 0);	/* ENODEV: unmounted */
			return;
		}
		struct iovec iin = { d->in, (size_t)n }, iout = { d->out, FS_FUSE_BUF_SIZE };
		ssize_t len = fs_fuse_handle(d->srv, &iin, 1, &iout, 1);
		if (len > 0 && write(d->fd, d->out, (size_t)len) < 0 && errno != ENOENT)
			log_warn("fs-serve: reply to /dev/fuse: %s", strerror(errno));
	}
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

int fs_fuse_serve_mount(struct fs_server *srv, struct loop *loop, const char *mnt)
{
	struct fuse_dev d = { .srv = srv, .loop = loop, .fd = -1 };
	d.in = malloc(FS_FUSE_BUF_SIZE);
	d.out = malloc(FS_FUSE_BUF_SIZE);
	int r = -ENOMEM;
	if (!d.in || !d.out)
		goto out;
	r = fuse_mount(mnt, &d.fd);
	if (r < 0) {
		log_err("fs-serve: mount %s: %s", mnt, strerror(-r));
		goto out;
	}
	d.op.cb = fuse_dev_ready;
	d.op.opaque = &d;
	r = loop_poll(loop, &d.op, d.fd, POLLIN);
	if (r == 0) {
		r = loop_run(loop);
		if (d.status < 0)
			r = d.status;
	}
	loop_cancel(loop, &d.op);
	fuse_unmount(mnt);
	/* Let the cancel complete before d (and d.op) go away. */
	loop_run_once(loop, 0);
	close(d.fd);
out:
	free(d.in);
	free(d.out);
	return r;
}
