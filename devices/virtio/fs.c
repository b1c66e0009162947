/* devices/virtio/fs.c - virtio-fs on the virtio-mmio transport: every
 * chain is one FUSE request handed to fs9p's codec.  The codec checks the
 * request; this file only checks that the chain has a reply part.
 *
 * Requests that do file I/O complete later (FS_PENDING): their chain stays
 * in a request context from the device's fixed pool until the codec's done
 * callback pushes it.  Everything touching the server runs on the thread
 * of the device's loop (in the VMM, the share's I/O thread): the guest's
 * reset (a vCPU) only marks the session for ending, and the next queue
 * work on the loop ends it, so a reset never races a completion inside
 * the server. */
#include "devices/virtio/fs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <linux/virtio_ids.h>

#include "common/log.h"
#include "common/util.h"

static void vfs_cfg_read(struct vdev *dev, uint32_t off, void *data, unsigned size)
{
	struct vfs_dev *d = container_of(dev, struct vfs_dev, vdev);
	memcpy(data, (const uint8_t *)&d->cfg + off, size);	/* bounds: transport */
}

static void vfs_serve_all(struct vfs_dev *d);

/* Push r's chain with the reply length n (or nothing written) and free r.
 * True when the chain reached the used ring (not dropped by a reset). */
static bool vfs_complete(struct vfs_dev *d, struct vfs_req *r, ssize_t n)
{
	struct vq_chain *c = &r->chain;
	if (n < 0)
		log_once(LOG_WARN, "virtio-fs: request without room for a reply");
	/* A chain without writable room got the scratch header: 0 bytes. */
	uint32_t len = n > 0 && c->nwrite ? (uint32_t)n : 0;
	bool pushed = vq_push(&d->vdev.vq[r->q], c, len) == 0;
	r->next_free = d->free;
	d->free = r;
	d->busy--;
	return pushed;
}

/* The codec finished a request that was in flight (loop thread). */
static void vfs_done(void *ctx, ssize_t len)
{
	struct vfs_req *r = ctx;
	struct vfs_dev *d = r->d;
	vdev_queue_lock(&d->vdev);
	if (vfs_complete(d, r, len))
		vdev_signal_used(&d->vdev, &d->vdev.vq[r->q]);
	vfs_serve_all(d);	/* a context is free: take chains that waited */
	vdev_queue_unlock(&d->vdev);
}

/* Start one request.  Linux sends the requests that take no reply (FORGET
 * and BATCH_FORGET on the hiprio queue, a FORGET from READDIRPLUS on a
 * request queue) without any writable buffer; the codec wants room for a
 * header all the same, so such a chain gets the context's scratch one,
 * and whatever is written there (an error for a request that did want a
 * reply) is dropped: the chain completes with 0 bytes. */
static ssize_t vfs_start(struct vfs_dev *d, struct vfs_req *r)
{
	const struct vq_chain *c = &r->chain;
	struct iovec sink = { .iov_base = &r->sink, .iov_len = sizeof(r->sink) };
	const struct iovec *out = c->nwrite ? c->iov + c->nread : &sink;
	return fs_fuse_handle_async(d->srv, c->iov, c->nread, out, c->nwrite ? c->nwrite : 1,
				    vfs_done, r);
}

/* Pop and start chains of queue q while a context is free; push what
 * completed at once. */
static void vfs_serve(struct vfs_dev *d, unsigned q)
{
	struct virtqueue *vq = &d->vdev.vq[q];
	bool pushed = false;
	while (d->free && !d->stopping) {
		struct vfs_req *r = d->free;
		if (vq_pop(vq, &r->chain) <= 0)
			break;
		d->free = r->next_free;
		d->busy++;
		d->requests++;
		r->q = q;
		ssize_t n = vfs_start(d, r);
		if (n != FS_PENDING)
			pushed |= vfs_complete(d, r, n);
	}
	if (pushed)
		vdev_signal_used(&d->vdev, vq);
}

/* End the session a driver reset asked to end, before serving anything of
 * the next one (loop thread, qlock held). */
static void vfs_apply_reset(struct vfs_dev *d)
{
	if (!d->reset_pending)
		return;
	d->reset_pending = false;
	fs_fuse_reset(d->srv);
}

static void vfs_serve_all(struct vfs_dev *d)
{
	vfs_apply_reset(d);
	for (unsigned q = 0; q < d->vdev.ops->nqueues; q++)
		if (d->vdev.vq[q].enabled && !d->vdev.vq[q].broken)
			vfs_serve(d, q);
}

static void vfs_notify(struct vdev *dev, unsigned q)
{
	struct vfs_dev *d = container_of(dev, struct vfs_dev, vdev);
	vfs_apply_reset(d);
	vfs_serve(d, q);
}

/* Driver reset (vCPU, both locks held): the guest's FUSE session (inodes,
 * handles) ends.  Chains in flight are dropped by vq_push (their queue's
 * generation moved on); the server is reset from the loop thread. */
static void vfs_reset(struct vdev *dev)
{
	container_of(dev, struct vfs_dev, vdev)->reset_pending = true;
}

/* Snapshots (main thread, the VM stopped, the loop threads parked): file
 * I/O still in flight is completed first, its chains pushed and the ISR
 * set (a restore raises the interrupt again), so no chain is held when the
 * queues are saved; a reset the guest asked for is applied, so the state
 * saved is the server's after it.  The device's state is the file
 * server's (fs9p/snapshot.c). */
static int vfs_save(struct vdev *dev, void *buf, size_t *len)
{
	struct vfs_dev *d = container_of(dev, struct vfs_dev, vdev);
	vfs_apply_reset(d);
	if (d->busy)
		fs_server_drain(d->srv);
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
	d->reqs = calloc(VFS_SLOTS, sizeof(*d->reqs));
	if (!d->reqs || vdev_init(&d->vdev, &vfs_ops, env, base) < 0) {
		free(d->reqs);
		free(d);
		return NULL;
	}
	for (unsigned i = 0; i < VFS_SLOTS; i++) {
		d->reqs[i].d = d;
		d->reqs[i].next_free = d->free;
		d->free = &d->reqs[i];
	}
	return d;
}

void vfs_destroy(struct vfs_dev *d)
{
	if (!d)
		return;
	/* Requests in flight write into their chains and call vfs_done:
	 * let them finish (popping nothing new) before anything goes. */
	d->stopping = true;
	if (d->busy)
		fs_server_drain(d->srv);
	vdev_fini(&d->vdev);
	free(d->reqs);
	free(d);
}
