/* devices/virtio/fs.h - virtio-fs: the guest's FUSE client over virtqueues,
 * served by fs9p's FUSE codec (fs_fuse_handle_async) on the event loop.
 *
 * Queue 0 is the high-priority queue (FORGET, INTERRUPT), queues 1..N the
 * request queues.  Each chain is one FUSE request: its readable part goes
 * to the codec as the in iovecs, its writable part takes the reply, and the
 * chain is pushed with the reply's length (0 for requests that take none).
 * A chain whose writable part cannot hold a reply header is completed with
 * 0 bytes.  The config space carries the mount tag and the number of
 * request queues (struct virtio_fs_config).
 *
 * With a loop attached to the server (fs_server_attach_loop), file I/O
 * (READ, WRITE, FSYNC, FALLOCATE) completes later on io_uring: the chain
 * stays in one of VFS_SLOTS request contexts, allocated with the device,
 * and is pushed (and the guest interrupted) from the codec's done
 * callback.  With every context waiting, the device stops popping: further
 * chains stay in the ring until a completion frees a context, which then
 * pops what is there without waiting for a kick.
 */
#ifndef KVMBOX_DEVICES_VIRTIO_FS_H
#define KVMBOX_DEVICES_VIRTIO_FS_H

#include <linux/fuse.h>
#include <linux/virtio_fs.h>

#include "devices/virtio/mmio.h"
#include "fs9p/fs.h"

/* Linux cuts a virtio-fs request to the queue's size less 4 pages
 * (virtio_fs.c FUSE_HEADER_OVERHEAD): 1024 lets one READ or WRITE carry the
 * server's 1 MiB (FS_FUSE_MAX_WRITE) where 128 allowed 496 KiB. */
#define VFS_QUEUE_SIZE 1024u
#define VFS_REQUEST_QUEUES 1u

/* Request contexts per device: as many as the server has I/O slots, so
 * the device runs out only when the server does (about 16 KiB each, mostly
 * the chain's iovec array, untouched past the iovecs a chain uses). */
#define VFS_SLOTS FS_AIO_SLOTS

struct vfs_dev;

/* One popped chain, from vq_pop until its push. */
struct vfs_req {
	struct vfs_dev *d;
	unsigned q;			/* queue it came from */
	struct fuse_out_header sink;	/* reply room for chains without any */
	struct vfs_req *next_free;
	struct vq_chain chain;
};

struct vfs_dev {
	struct vdev vdev;
	struct fs_server *srv;		/* not owned */
	struct virtio_fs_config cfg;	/* tag and queue count, guest-visible */
	struct vfs_req *reqs;		/* VFS_SLOTS, allocated with the device */
	struct vfs_req *free;		/* contexts not holding a chain */
	unsigned busy;			/* contexts waiting for their done */
	bool reset_pending;		/* driver reset: end the FUSE session (loop) */
	bool stopping;			/* being destroyed: pop nothing more */
	uint64_t requests;		/* served so far */
};

/* Heap-allocated device serving srv under mount tag `tag` (at most 36
 * bytes), or NULL. */
struct vfs_dev *vfs_create(const struct dev_env *env, uint64_t base, struct fs_server *srv,
			   const char *tag);
void vfs_destroy(struct vfs_dev *d);

#endif
