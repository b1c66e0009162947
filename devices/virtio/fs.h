/* devices/virtio/fs.h - virtio-fs: the guest's FUSE client over virtqueues,
 * served by fs9p's FUSE codec (fs_fuse_handle) on the event loop.
 *
 * Queue 0 is the high-priority queue (FORGET, INTERRUPT), queues 1..N the
 * request queues.  Each chain is one FUSE request: its readable part goes
 * to fs_fuse_handle() as the in iovecs, its writable part takes the reply,
 * and the chain is pushed with the reply's length (0 for requests that
 * take none).  A chain whose writable part cannot hold a reply header is
 * completed with 0 bytes.  The config space carries the mount tag and the
 * number of request queues (struct virtio_fs_config).
 */
#ifndef KVMBOX_DEVICES_VIRTIO_FS_H
#define KVMBOX_DEVICES_VIRTIO_FS_H

#include <linux/virtio_fs.h>

#include "devices/virtio/mmio.h"
#include "fs9p/fs.h"

/* Linux cuts a virtio-fs request to the queue's size less 4 pages
 * (virtio_fs.c FUSE_HEADER_OVERHEAD): 1024 lets one READ or WRITE carry the
 * server's 1 MiB (FS_FUSE_MAX_WRITE) where 128 allowed 496 KiB. */
#define VFS_QUEUE_SIZE 1024u
#define VFS_REQUEST_QUEUES 1u

struct vfs_dev {
	struct vdev vdev;
	struct fs_server *srv;		/* not owned */
	struct virtio_fs_config cfg;	/* tag and queue count, guest-visible */
	struct vq_chain chain;
	uint64_t requests;		/* served so far */
};

/* Heap-allocated device serving srv under mount tag `tag` (at most 36
 * bytes), or NULL. */
struct vfs_dev *vfs_create(const struct dev_env *env, uint64_t base, struct fs_server *srv,
			   const char *tag);
void vfs_destroy(struct vfs_dev *d);

#endif
