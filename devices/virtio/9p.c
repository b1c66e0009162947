/* devices/virtio/9p.c - virtio-9p on the virtio-mmio transport: each chain
 * is one 9P2000.L message handed to fs9p's codec. */
#include "devices/virtio/9p.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <linux/virtio_9p.h>
#include <linux/virtio_ids.h>

#include "common/log.h"
#include "common/util.h"

static struct v9p_dev *v9p_of(struct vdev *dev)
{
	return container_of(dev, struct v9p_dev, vdev);
}

static void v9p_cfg_read(struct vdev *dev, uint32_t off, void *data, unsigned size)
{
	memcpy(data, v9p_of(dev)->cfg + off, size);	/* bounds: transport */
}

/* Copy up to cap bytes of the chain's iovecs [first, first+n) into dst. */
static size_t gather(uint8_t *dst, size_t cap, const struct iovec *iov, unsigned n)
{
	size_t done = 0;
	for (unsigned i = 0; i < n && done < cap; i++) {
		size_t c = MIN(iov[i].iov_len, cap - done);
		if (c)
			memcpy(dst + done, iov[i].iov_base, c);
		done += c;
	}
	return done;
}

static size_t scatter(const struct iovec *iov, unsigned n, const uint8_t *src, size_t len)
{
	size_t done = 0;
	for (unsigned i = 0; i < n && done < len; i++) {
		size_t c = MIN(iov[i].iov_len, len - done);
		if (c)
			memcpy(iov[i].iov_base, src + done, c);
		done += c;
	}
	return done;
}

static void v9p_notify(struct vdev *dev, unsigned q)
{
	struct v9p_dev *d = v9p_of(dev);
	struct virtqueue *vq = &dev->vq[q];
	bool pushed = false;
	while (vq_pop(vq, &d->chain) > 0) {
		struct vq_chain *c = &d->chain;
		size_t len = gather(d->in, FS_9P_MAX_MSIZE, c->iov, c->nread);
		size_t cap = MIN((size_t)c->write_len, (size_t)FS_9P_MAX_MSIZE);
		ssize_t n = fs_9p_handle(d->ss, d->in, len, d->out, cap);
		uint32_t written = 0;
		if (n > 0)
			written = (uint32_t)scatter(c->iov + c->nread, c->nwrite, d->out, (size_t)n);
		else
			log_once(LOG_WARN, "virtio-9p: request without room for a reply");
		vq_push(vq, c, written);
		d->requests++;
		pushed = true;
	}
	if (pushed)
		vdev_signal_used(dev, vq);
}

/* Driver reset: the guest's session (fids, open files) goes with it. */
static void v9p_reset(struct vdev *dev)
{
	struct v9p_dev *d = v9p_of(dev);
	fs_9p_session_free(d->ss);
	d->ss = fs_9p_session_new(d->srv);
	if (!d->ss)
		log_err("virtio-9p: out of memory on reset");
}

static const struct vdev_ops v9p_ops = {
	.name = "9p", .device_id = VIRTIO_ID_9P, .features = 1ULL << VIRTIO_9P_MOUNT_TAG,
	.nqueues = 1, .queue_max = V9P_QUEUE_SIZE, .config_len = 2 + V9P_TAG_MAX,
	.cfg_read = v9p_cfg_read,
	.notify = v9p_notify, .reset = v9p_reset,
};

struct v9p_dev *v9p_create(const struct dev_env *env, uint64_t base, struct fs_server *srv,
			   const char *tag)
{
	size_t tl = tag ? strlen(tag) : 0;
	if (!srv || tl == 0 || tl > V9P_TAG_MAX)
		return NULL;
	struct v9p_dev *d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->srv = srv;
	d->cfg[0] = (uint8_t)tl;
	d->cfg[1] = 0;
	memcpy(d->cfg + 2, tag, tl);
	d->ss = fs_9p_session_new(srv);
	d->in = malloc(FS_9P_MAX_MSIZE);
	d->out = malloc(FS_9P_MAX_MSIZE);
	if (!d->ss || !d->in || !d->out || vdev_init(&d->vdev, &v9p_ops, env, base) < 0) {
		fs_9p_session_free(d->ss);
		free(d->in);
		free(d->out);
		free(d);
		return NULL;
	}
	return d;
}

void v9p_destroy(struct v9p_dev *d)
{
	if (!d)
		return;
	vdev_fini(&d->vdev);
	fs_9p_session_free(d->ss);
	free(d->in);
	free(d->out);
	free(d);
}
