/* devices/virtio/9p.h - virtio-9p: the guest's 9P2000.L client (trans=virtio)
 * over one virtqueue, served by fs9p's 9P codec (fs_9p_handle_async).
 *
 * Each chain is one T-message (readable part) and room for the R-message
 * (writable part).  The codec works on contiguous bytes, so the request is
 * gathered into, and the reply scattered from, buffers of FS_9P_MAX_MSIZE
 * held by a request context; a request longer than that is answered with
 * Rlerror(EINVAL) by the codec.  One session per device, reset with it.
 * Config space: tag_len (le16) then the tag (struct virtio_9p_config).
 *
 * With a loop attached to the server (fs_server_attach_loop), Tread,
 * Twrite and Tfsync (and a Tflush naming one of them) complete later on
 * io_uring: the chain and its two buffers stay with the context until the
 * codec's done callback scatters the reply and pushes the chain.  There
 * are V9P_SLOTS contexts, allocated with the device; with all of them
 * waiting the device stops popping until one completes.
 */
#ifndef KVMBOX_DEVICES_VIRTIO_9P_H
#define KVMBOX_DEVICES_VIRTIO_9P_H

#include "devices/virtio/mmio.h"
#include "fs9p/fs.h"

#define V9P_QUEUE_SIZE 128u
#define V9P_TAG_MAX 64u

/* Request contexts per device.  Each holds two FS_9P_MAX_MSIZE buffers
 * (2 MiB together, resident only as far as messages reach: kvmbox-init
 * mounts with msize=512000), so 4 contexts bound the device at about
 * 8 MiB: 4 file operations in flight at once, while every other message
 * is answered at once and frees its context right away. */
#define V9P_SLOTS 4u

struct v9p_dev;

/* One popped chain, from vq_pop until its push. */
struct v9p_req {
	struct v9p_dev *d;
	uint8_t *in, *out;		/* FS_9P_MAX_MSIZE each */
	struct v9p_req *next_free;
	struct vq_chain chain;
};

struct v9p_dev {
	struct vdev vdev;
	struct fs_server *srv;		/* not owned */
	struct fs_9p_session *ss;	/* the guest's one session */
	uint8_t cfg[2 + V9P_TAG_MAX];	/* tag_len, tag, zero padding */
	struct v9p_req reqs[V9P_SLOTS];
	struct v9p_req *free;		/* contexts not holding a chain */
	unsigned busy;			/* contexts waiting for their done */
	bool reset_pending;		/* driver reset: new session (loop) */
	bool stopping;			/* being destroyed: pop nothing more */
	uint64_t requests;
};

struct v9p_dev *v9p_create(const struct dev_env *env, uint64_t base, struct fs_server *srv,
			   const char *tag);
void v9p_destroy(struct v9p_dev *d);

#endif
