/* devices/virtio/rng.h - virtio-rng (entropy device) fed from getrandom(2).
 *
 * One request queue: the guest posts writable buffers, the device fills
 * them with getrandom() bytes (at most VRNG_MAX_PER_REQUEST per chain, so a
 * guest cannot make one request block the loop) and completes them.
 */
#ifndef KVMBOX_DEVICES_VIRTIO_RNG_H
#define KVMBOX_DEVICES_VIRTIO_RNG_H

#include <stdint.h>

#include "devices/virtio/mmio.h"

#define VRNG_MAX_PER_REQUEST 65536u
#define VRNG_QUEUE_SIZE 64u

struct vrng {
	struct vdev vdev;
	struct vq_chain chain;
	uint64_t bytes;		/* handed to the guest so far */
};

/* Heap-allocated device, or NULL. */
struct vrng *vrng_create(const struct dev_env *env, uint64_t base);
void vrng_destroy(struct vrng *r);

#endif
