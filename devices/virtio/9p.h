/* devices/virtio/9p.h - virtio-9p: the guest's 9P2000.L client (trans=virtio)
 * over one virtqueue, served by fs9p's 9P codec (fs_9p_handle).
 *
 * Each chain is one T-message (readable part) and room for the R-message
 * (writable part).  The codec works on contiguous bytes, so the request is
 * gathered into, and the reply scattered from, buffers of FS_9P_MAX_MSIZE
 * held by the device; a request longer than that is answered with
 * Rlerror(EINVAL) by the codec.  One session per device, reset with it.
 * Config space: tag_len (le16) then the tag (struct virtio_9p_config).
 */
#ifndef KVMBOX_DEVICES_VIRTIO_9P_H
#define KVMBOX_DEVICES_VIRTIO_9P_H

#include "devices/virtio/mmio.h"
#include "fs9p/fs.h"

#define V9P_QUEUE_SIZE 128u
#define V9P_TAG_MAX 64u

struct v9p_dev {
	struct vdev vdev;
	struct fs_server *srv;		/* not owned */
	struct fs_9p_session *ss;	/* the guest's one session */
	uint8_t cfg[2 + V9P_TAG_MAX];	/* tag_len, tag, zero padding */
	uint8_t *in, *out;		/* FS_9P_MAX_MSIZE each */
	struct vq_chain chain;
	uint64_t requests;
};

struct v9p_dev *v9p_create(const struct dev_env *env, uint64_t base, struct fs_server *srv,
			   const char *tag);
void v9p_destroy(struct v9p_dev *d);

#endif
