/* devices/virtio/fs.c - virtio-fs on the virtio-mmio transport: every
 * chain is one FUSE request handed to fs9p's codec.  The codec checks the
 * request; this file only checks that the chain has a reply part. */
#include "devices/virtio/fs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <linux/fuse.h>
#include <linux/virtio_ids.h>

#include "common/log.h"
#include "common/util.h"

static void vfs_cfg_read(struct vdev *dev, uint32_t off, void *data, unsigned size)
{
	struct vfs_dev *d = container_of(dev, struct vfs_dev, vdev);
	memcpy(data, (const uint8_t *)&d->cfg + off, size);	/* bounds: transport */
}

/* One request.  Linux sends the requests that take no reply (FORGET and
 * BATCH_FORGET on the hiprio queue, a FORGET from READDIRPLUS on a request
 * queue) without any writable buffer; the codec wants room for a header
 * all the same, so such a chain gets a scratch one, and whatever is
 * written there (an error for a request that did want a reply) is
 * dropped: the chain completes with 0 bytes. */
static ssize_t vfs_handle(struct vfs_dev *d, const struct vq_chain *c)
{
	if (c->nwrite)
		return fs_fuse_handle(d->srv, c->iov, c->nread, c->iov + c->nread, c->nwrite);
	struct fuse_out_header sink;
	struct iovec iov = { .iov_base = &sink, .iov_len = sizeof(sink) };
	fs_fuse_handle(d->srv, c->iov, c->nread, &iov, 1);
	return 0;
}

static void vfs_notify(struct vdev *dev, unsigned q)
{
	struct vfs_dev *d = container_of(dev, struct vfs_dev, vdev);
	struct virtqueue *vq = &dev->vq[q];
	bool pushed = false;
	while (vq_pop(vq, &d->chain) > 0) {
		struct vq_chain *c = &d->chain;
		ssize_t n = vfs_handle(d, c);
		if (n < 0)
			log_once(LOG_WARN, "virtio-fs: request without room for a reply");
		vq_push(vq, c, n > 0 ? (uint32_t)n : 0);
		d->requests++;
		pushed = true;
	}
	if (pushed)
		vdev_signal_used(dev, vq);
}

/* Driver reset: the guest's FUSE session (inodes, handles) ends. */
static void vfs_reset(struct vdev *dev)
{
	fs_fuse_reset(container_of(dev, struct vfs_dev, vdev)->srv);
}

/* Snapshots: requests are served whole within a kick, so no chain is ever
 * held; the device's state is the file server's (fs9p/snapshot.c). */
static int vfs_save(struct vdev *dev, void *buf, size_t *len)
{
	struct vfs_dev *d = container_of(dev, struct vfs_dev, vdev);
	return fs_snapshot_save(d->srv, buf, VDEV_DEVICE_STATE_MAX, len);
}

static int vfs_load(struct vdev *dev, const void *buf, size_t len)
{
	return fs_snapshot_restore(container_of(dev, struct vfs_dev, vdev)->srv, buf, len);
}

static const struct vdev_ops vfs_ops = {
	.name = "fs", .device_id = VIRTIO_ID_FS, .nqueues = 1 + VFS_REQUEST_QUEUES,
	.queue_max = VFS_QUEUE_SIZE, .config_len = sizeof(struct virtio_fs_config),
	.cfg_read = vfs_cfg_read, .notify = vfs_notify, .reset = vfs_reset,
	.save = vfs_save, .load = vfs_load,
};

struct vfs_dev *vfs_create(const struct dev_env *env, uint64_t base, struct fs_server *srv,
			   const char *tag)
{
	if (!srv || !tag || !*tag || strlen(tag) > sizeof(((struct virtio_fs_config *)0)->tag))
		return NULL;
	struct vfs_dev *d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->srv = srv;
	memcpy(d->cfg.tag, tag, strlen(tag));
	d->cfg.num_request_queues = VFS_REQUEST_QUEUES;	/* little-endian host */
	if (vdev_init(&d->vdev, &vfs_ops, env, base) < 0) {
		free(d);
		return NULL;
	}
	return d;
}

void vfs_destroy(struct vfs_dev *d)
{
	if (!d)
		return;
	vdev_fini(&d->vdev);
	free(d);
}
