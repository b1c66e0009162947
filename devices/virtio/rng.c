/* devices/virtio/rng.c - virtio-rng: guest buffers filled from getrandom(2).
 * getrandom() without flags only blocks before the host's pool is seeded,
 * which on a running host has long happened. */
#include "devices/virtio/rng.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <linux/virtio_ids.h>

#include "common/log.h"
#include "common/util.h"

static const struct vdev_ops vrng_ops;

/* Fill the writable part of c with up to VRNG_MAX_PER_REQUEST random bytes. */
static uint32_t fill_random(const struct vq_chain *c)
{
	size_t done = 0;
	for (unsigned i = c->nread; i < (unsigned)c->nread + c->nwrite; i++) {
		size_t want = MIN(c->iov[i].iov_len, VRNG_MAX_PER_REQUEST - done);
		size_t got = 0;
		while (got < want) {
			ssize_t n = getrandom((uint8_t *)c->iov[i].iov_base + got, want - got, 0);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				log_once(LOG_WARN, "virtio-rng: getrandom: %s", strerror(errno));
				return (uint32_t)(done + got);
			}
			got += (size_t)n;
		}
		done += got;
		if (done == VRNG_MAX_PER_REQUEST)
			break;
	}
	return (uint32_t)done;
}

static void vrng_notify(struct vdev *dev, unsigned q)
{
	struct vrng *r = container_of(dev, struct vrng, vdev);
	struct virtqueue *vq = &dev->vq[q];
	bool pushed = false;
	while (vq_pop(vq, &r->chain) > 0) {
		uint32_t n = fill_random(&r->chain);
		r->bytes += n;
		vq_push(vq, &r->chain, n);
		pushed = true;
	}
	if (pushed)
		vdev_signal_used(dev, vq);
}

/* Snapshots: requests complete within a kick, and nothing else is kept. */
static int vrng_save(struct vdev *dev, void *buf, size_t *len)
{
	(void)dev;
	(void)buf;
	*len = 0;
	return 0;
}

static int vrng_load(struct vdev *dev, const void *buf, size_t len)
{
	(void)dev;
	(void)buf;
	return len ? -EINVAL : 0;
}

static const struct vdev_ops vrng_ops = {
	.name = "rng", .device_id = VIRTIO_ID_RNG, .nqueues = 1,
	.queue_max = VRNG_QUEUE_SIZE, .notify = vrng_notify,
	.save = vrng_save, .load = vrng_load,
};

struct vrng *vrng_create(const struct dev_env *env, uint64_t base)
{
	struct vrng *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	if (vdev_init(&r->vdev, &vrng_ops, env, base) < 0) {
		free(r);
		return NULL;
	}
	return r;
}

void vrng_destroy(struct vrng *r)
{
	if (!r)
		return;
	vdev_fini(&r->vdev);
	free(r);
}
