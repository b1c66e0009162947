/* devices/virtio/9p.c - virtio-9p on the virtio-mmio transport: each chain
 * is one 9P2000.L message handed to fs9p's codec.
 *
 * Tread/Twrite/Tfsync complete later (FS_PENDING): the chain and the
 * context's buffers wait in a context from the device's fixed pool until
 * the codec's done callback scatters the reply and pushes the chain.  The
 * session is only ever touched on the thread of the device's loop (in the
 * VMM, the share's I/O thread): a driver reset (a vCPU) marks it for
 * replacement and the next queue work replaces it, so a reset never races
 * a completion inside the server. */
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

static void v9p_serve(struct v9p_dev *d);

/* Copy r's reply (n bytes) into its chain, push it and free r.  True when
 * the chain reached the used ring (not dropped by a reset). */
static bool v9p_complete(struct v9p_dev *d, struct v9p_req *r, ssize_t n)
{
	struct vq_chain *c = &r->chain;
	uint32_t written = 0;
	if (n > 0)
		written = (uint32_t)scatter(c->iov + c->nread, c->nwrite, r->out, (size_t)n);
	else
		log_once(LOG_WARN, "virtio-9p: request without room for a reply (or no session)");
	bool pushed = vq_push(&d->vdev.vq[0], c, written) == 0;
	r->next_free = d->free;
	d->free = r;
	d->busy--;
	return pushed;
}

/* The codec finished a request that was in flight (loop thread). */
static void v9p_done(void *ctx, ssize_t len)
{
	struct v9p_req *r = ctx;
	struct v9p_dev *d = r->d;
	vdev_queue_lock(&d->vdev);
	if (v9p_complete(d, r, len))
		vdev_signal_used(&d->vdev, &d->vdev.vq[0]);
	v9p_serve(d);	/* a context is free: take chains that waited */
	vdev_queue_unlock(&d->vdev);
}

/* Replace the session a driver reset ended, before serving anything of the
 * next one (loop thread, qlock held).  Requests of the old session still
 * in flight complete into their contexts; their chains are dropped. */
static void v9p_apply_reset(struct v9p_dev *d)
{
	if (!d->reset_pending && d->ss)
		return;
	d->reset_pending = false;
	fs_9p_session_free(d->ss);
	d->ss = fs_9p_session_new(d->srv);
	if (!d->ss)
		log_err("virtio-9p: out of memory on reset");
}

static ssize_t v9p_start(struct v9p_dev *d, struct v9p_req *r)
{
	const struct vq_chain *c = &r->chain;
	if (!d->ss)
		return -ENOMEM;
	size_t len = gather(r->in, FS_9P_MAX_MSIZE, c->iov, c->nread);
	size_t cap = MIN((size_t)c->write_len, (size_t)FS_9P_MAX_MSIZE);
	return fs_9p_handle_async(d->ss, r->in, len, r->out, cap, v9p_done, r);
}

/* Pop and start chains while a context is free; push what completed at
 * once. */
static void v9p_serve(struct v9p_dev *d)
{
	struct virtqueue *vq = &d->vdev.vq[0];
	bool pushed = false;
	v9p_apply_reset(d);
	while (d->free && !d->stopping && vq->enabled && !vq->broken) {
		struct v9p_req *r = d->free;
		if (vq_pop(vq, &r->chain) <= 0)
			break;
		d->free = r->next_free;
		d->busy++;
		d->requests++;
		ssize_t n = v9p_start(d, r);
		if (n != FS_PENDING)
			pushed |= v9p_complete(d, r, n);
	}
	if (pushed)
		vdev_signal_used(&d->vdev, vq);
}

static void v9p_notify(struct vdev *dev, unsigned q)
{
	(void)q;	/* one queue */
	v9p_serve(v9p_of(dev));
}

/* Driver reset (vCPU, both locks held): the guest's session (fids, open
 * files) goes with it, replaced from the loop thread.  Chains in flight
 * are dropped by vq_push (the queue's generation moved on). */
static void v9p_reset(struct vdev *dev)
{
	v9p_of(dev)->reset_pending = true;
}

static const struct vdev_ops v9p_ops = {
	.name = "9p", .device_id = VIRTIO_ID_9P, .features = 1ULL << VIRTIO_9P_MOUNT_TAG,
	.nqueues = 1, .queue_max = V9P_QUEUE_SIZE, .config_len = 2 + V9P_TAG_MAX,
	.cfg_read = v9p_cfg_read,
	.notify = v9p_notify, .reset = v9p_reset,
};

static void v9p_free(struct v9p_dev *d)
{
	fs_9p_session_free(d->ss);
	for (unsigned i = 0; i < V9P_SLOTS; i++) {
		free(d->reqs[i].in);
		free(d->reqs[i].out);
	}
	free(d);
}

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
	bool ok = d->ss != NULL;
	for (unsigned i = 0; i < V9P_SLOTS; i++) {
		struct v9p_req *r = &d->reqs[i];
		r->d = d;
		r->in = malloc(FS_9P_MAX_MSIZE);
		r->out = malloc(FS_9P_MAX_MSIZE);
		ok = ok && r->in && r->out;
		r->next_free = d->free;
		d->free = r;
	}
	if (!ok || vdev_init(&d->vdev, &v9p_ops, env, base) < 0) {
		v9p_free(d);
		return NULL;
	}
	return d;
}

void v9p_destroy(struct v9p_dev *d)
{
	if (!d)
		return;
	/* Requests in flight write into their contexts' buffers and call
	 * v9p_done: let them finish (popping nothing new) before anything
	 * goes. */
	d->stopping = true;
	if (d->busy)
		fs_server_drain(d->srv);
	vdev_fini(&d->vdev);
	v9p_free(d);
}
