/* fs9p/fuse_uring.h - serving the kernel's FUSE-over-io_uring queues, one
 * thread per CPU (internal to the /dev/fuse host transport; see
 * fuse_uring.c for how and why). */
#ifndef KVMBOX_FS9P_FUSE_URING_H
#define KVMBOX_FS9P_FUSE_URING_H

#include <pthread.h>

#include "fs9p/fs.h"

struct fuse_uring;

/* After INIT agreed on FUSE over io_uring (fs_fuse_uring_agreed): start a
 * thread per CPU that registers on its queue of /dev/fuse fd and serves
 * srv, taking lock around every codec call (the caller takes it too).
 * poll_max_ns bounds each thread's adaptive polling after a reply
 * (struct loop_poller's rule; 0: never poll).
 * 0 or -errno (nothing started; requests stay on /dev/fuse). */
int fuse_uring_start(struct fs_server *srv, int fd, pthread_mutex_t *lock, uint64_t poll_max_ns,
		     struct fuse_uring **out);
/* Stop and join the threads (after the unmount, which ends their
 * commands), log how many requests went through the queues, free
 * everything.  NULL is fine. */
void fuse_uring_stop(struct fuse_uring *u);

#endif
