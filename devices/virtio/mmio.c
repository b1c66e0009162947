/* devices/virtio/mmio.c - virtio-mmio version 2 register file and the glue
 * between a device's queues, the notify eventfd and the interrupt eventfd.
 * Locking rules are in mmio.h.
 */
#include "devices/virtio/mmio.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"

#define TRANSPORT_FEATURES                                                    \
	((1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_RING_F_INDIRECT_DESC) | \
	 (1ULL << VIRTIO_RING_F_EVENT_IDX))

static uint64_t offered_features(const struct vdev *dev)
{
	return dev->ops->features | TRANSPORT_FEATURES;
}

static void raise_irq(struct vdev *dev, uint32_t why)
{
	__atomic_fetch_or(&dev->isr, why, __ATOMIC_SEQ_CST);
	uint64_t one = 1;
	if (write(dev->env.irq_fd, &one, sizeof(one)) < 0)
		log_once(LOG_WARN, "virtio-%s: interrupt eventfd write failed: %s",
			 dev->ops->name, strerror(errno));
}

/* vq_broken_fn: a queue saw malformed input (loop thread, qlock held). */
static void on_queue_broken(struct virtqueue *vq, void *opaque)
{
	(void)vq;
	struct vdev *dev = opaque;
	pthread_mutex_lock(&dev->lock);
	dev->status |= VIRTIO_CONFIG_S_NEEDS_RESET;
	dev->config_generation++;
	pthread_mutex_unlock(&dev->lock);
	raise_irq(dev, VIRTIO_MMIO_INT_CONFIG);
}

/* Back to the power-on state (both locks held). */
static void reset_locked(struct vdev *dev)
{
	for (unsigned q = 0; q < dev->ops->nqueues; q++) {
		vq_reset(&dev->vq[q]);
		dev->qready[q] = false;
		memset(&dev->qcfg[q], 0, sizeof(dev->qcfg[q]));
	}
	dev->status = 0;
	dev->dev_features_sel = dev->drv_features_sel = 0;
	dev->driver_features = 0;
	dev->queue_sel = 0;
	__atomic_store_n(&dev->isr, 0, __ATOMIC_SEQ_CST);
	if (dev->ops->reset)
		dev->ops->reset(dev);
}

static struct vq_config *sel_qcfg(struct vdev *dev)
{
	return dev->queue_sel < dev->ops->nqueues ? &dev->qcfg[dev->queue_sel] : NULL;
}

static uint32_t read_reg(struct vdev *dev, uint64_t off)
{
	struct vq_config *qc = sel_qcfg(dev);
	switch (off) {
	case VIRTIO_MMIO_MAGIC_VALUE: return VIRTIO_MMIO_MAGIC;
	case VIRTIO_MMIO_VERSION: return 2;
	case VIRTIO_MMIO_DEVICE_ID: return dev->ops->device_id;
	case VIRTIO_MMIO_VENDOR_ID: return VIRTIO_MMIO_VENDOR;
	case VIRTIO_MMIO_DEVICE_FEATURES:
		return dev->dev_features_sel < 2 ?
			(uint32_t)(offered_features(dev) >> (32 * dev->dev_features_sel)) : 0;
	case VIRTIO_MMIO_QUEUE_NUM_MAX: return qc ? dev->ops->queue_max : 0;
	case VIRTIO_MMIO_QUEUE_NUM: return qc ? qc->num : 0;
	case VIRTIO_MMIO_QUEUE_READY: return qc ? dev->qready[dev->queue_sel] : 0;
	case VIRTIO_MMIO_INTERRUPT_STATUS: return __atomic_load_n(&dev->isr, __ATOMIC_SEQ_CST);
	case VIRTIO_MMIO_STATUS: return dev->status;
	case VIRTIO_MMIO_QUEUE_DESC_LOW: return qc ? (uint32_t)qc->desc : 0;
	case VIRTIO_MMIO_QUEUE_DESC_HIGH: return qc ? (uint32_t)(qc->desc >> 32) : 0;
	case VIRTIO_MMIO_QUEUE_AVAIL_LOW: return qc ? (uint32_t)qc->avail : 0;
	case VIRTIO_MMIO_QUEUE_AVAIL_HIGH: return qc ? (uint32_t)(qc->avail >> 32) : 0;
	case VIRTIO_MMIO_QUEUE_USED_LOW: return qc ? (uint32_t)qc->used : 0;
	case VIRTIO_MMIO_QUEUE_USED_HIGH: return qc ? (uint32_t)(qc->used >> 32) : 0;
	case VIRTIO_MMIO_SHM_LEN_LOW:
	case VIRTIO_MMIO_SHM_LEN_HIGH: return 0xffffffffu;	/* no shared memory */
	case VIRTIO_MMIO_CONFIG_GENERATION: return dev->config_generation;
	default: return 0;
	}
}

static void set_u64_half(uint64_t *v, bool high, uint32_t val)
{
	if (high)
		*v = (*v & 0xffffffffULL) | ((uint64_t)val << 32);
	else
		*v = (*v & ~0xffffffffULL) | val;
}

/* QueueReady = 1: validate the staged geometry and start the queue. */
static void queue_enable(struct vdev *dev, unsigned q)
{
	struct vq_config cfg = dev->qcfg[q];
	cfg.indirect = dev->driver_features & (1ULL << VIRTIO_RING_F_INDIRECT_DESC);
	cfg.event_idx = dev->driver_features & (1ULL << VIRTIO_RING_F_EVENT_IDX);
	if (cfg.num > dev->ops->queue_max || vq_enable(&dev->vq[q], &cfg) < 0) {
		log_once(LOG_WARN, "virtio-%s: queue %u refused: size %u (max %u) or rings "
			 "misaligned or outside RAM", dev->ops->name, q, cfg.num,
			 dev->ops->queue_max);
		return;
	}
	dev->qready[q] = true;
}

/* A status write other than 0 (reset). */
static void write_status(struct vdev *dev, uint32_t val)
{
	uint32_t old = dev->status;
	if ((val & VIRTIO_CONFIG_S_FEATURES_OK) && !(old & VIRTIO_CONFIG_S_FEATURES_OK)) {
		uint64_t f = dev->driver_features;
		if ((f & ~offered_features(dev)) || !(f & (1ULL << VIRTIO_F_VERSION_1)))
			val &= ~(uint32_t)VIRTIO_CONFIG_S_FEATURES_OK;
	}
	/* The device owns NEEDS_RESET; the driver cannot clear it but by reset. */
	val = (val & ~(uint32_t)VIRTIO_CONFIG_S_NEEDS_RESET) | (old & VIRTIO_CONFIG_S_NEEDS_RESET);
	dev->status = val;
	if ((val & VIRTIO_CONFIG_S_DRIVER_OK) && !(old & VIRTIO_CONFIG_S_DRIVER_OK) &&
	    dev->ops->driver_ok)
		dev->ops->driver_ok(dev);
}

static void write_reg(struct vdev *dev, uint64_t off, uint32_t val)
{
	struct vq_config *qc = sel_qcfg(dev);
	bool qlive = qc && dev->qready[dev->queue_sel];
	switch (off) {
	case VIRTIO_MMIO_DEVICE_FEATURES_SEL: dev->dev_features_sel = val; return;
	case VIRTIO_MMIO_DRIVER_FEATURES_SEL: dev->drv_features_sel = val; return;
	case VIRTIO_MMIO_DRIVER_FEATURES:
		if (dev->drv_features_sel < 2 && !(dev->status & VIRTIO_CONFIG_S_FEATURES_OK))
			set_u64_half(&dev->driver_features, dev->drv_features_sel, val);
		return;
	case VIRTIO_MMIO_QUEUE_SEL: dev->queue_sel = val; return;
	case VIRTIO_MMIO_STATUS:
		if (val == 0)
			reset_locked(dev);
		else
			write_status(dev, val);
		return;
	case VIRTIO_MMIO_QUEUE_READY:
		if (!qc)
			return;
		if (val && !qlive)
			queue_enable(dev, dev->queue_sel);
		else if (!val && qlive) {
			vq_reset(&dev->vq[dev->queue_sel]);
			dev->qready[dev->queue_sel] = false;
		}
		return;
	}
	if (!qc || qlive)
		return;		/* geometry of a live (or absent) queue is fixed */
	switch (off) {
	case VIRTIO_MMIO_QUEUE_NUM: qc->num = (uint16_t)MIN(val, 0xffffu); break;
	case VIRTIO_MMIO_QUEUE_DESC_LOW: set_u64_half(&qc->desc, false, val); break;
	case VIRTIO_MMIO_QUEUE_DESC_HIGH: set_u64_half(&qc->desc, true, val); break;
	case VIRTIO_MMIO_QUEUE_AVAIL_LOW: set_u64_half(&qc->avail, false, val); break;
	case VIRTIO_MMIO_QUEUE_AVAIL_HIGH: set_u64_half(&qc->avail, true, val); break;
	case VIRTIO_MMIO_QUEUE_USED_LOW: set_u64_half(&qc->used, false, val); break;
	case VIRTIO_MMIO_QUEUE_USED_HIGH: set_u64_half(&qc->used, true, val); break;
	}
}

static bool config_access_ok(const struct vdev *dev, uint64_t off, unsigned size)
{
	return off >= VIRTIO_MMIO_CONFIG_OFF && size <= 8 &&
	       off - VIRTIO_MMIO_CONFIG_OFF + size <= dev->ops->config_len;
}

/* io_region read callback (vCPU thread). */
static void region_read(void *opaque, uint64_t off, void *data, unsigned size)
{
	struct vdev *dev = opaque;
	memset(data, 0, size);
	if (off >= VIRTIO_MMIO_CONFIG_OFF) {
		if (!config_access_ok(dev, off, size) || !dev->ops->cfg_read)
			return;
		pthread_mutex_lock(&dev->lock);
		dev->ops->cfg_read(dev, (uint32_t)(off - VIRTIO_MMIO_CONFIG_OFF), data, size);
		pthread_mutex_unlock(&dev->lock);
		return;
	}
	if (size != 4 || (off & 3))
		return;		/* registers are 32-bit only */
	uint32_t v;
	if (off == VIRTIO_MMIO_INTERRUPT_STATUS) {
		v = __atomic_load_n(&dev->isr, __ATOMIC_SEQ_CST);
	} else {
		pthread_mutex_lock(&dev->lock);
		v = read_reg(dev, off);
		pthread_mutex_unlock(&dev->lock);
	}
	memcpy(data, &v, 4);
}

/* io_region write callback (vCPU thread). */
static void region_write(void *opaque, uint64_t off, const void *data, unsigned size)
{
	struct vdev *dev = opaque;
	if (off >= VIRTIO_MMIO_CONFIG_OFF) {
		if (!config_access_ok(dev, off, size) || !dev->ops->cfg_write)
			return;
		pthread_mutex_lock(&dev->lock);
		dev->ops->cfg_write(dev, (uint32_t)(off - VIRTIO_MMIO_CONFIG_OFF), data, size);
		pthread_mutex_unlock(&dev->lock);
		return;
	}
	if (size != 4 || (off & 3))
		return;
	uint32_t val;
	memcpy(&val, data, 4);
	switch (off) {
	case VIRTIO_MMIO_INTERRUPT_ACK:
		__atomic_fetch_and(&dev->isr, ~val, __ATOMIC_SEQ_CST);
		return;
	case VIRTIO_MMIO_QUEUE_NOTIFY: {
		/* Only reached when no ioeventfd is wired (tests, fallback). */
		uint64_t one = 1;
		if (write(dev->env.notify_fd, &one, sizeof(one)) < 0)
			log_once(LOG_WARN, "virtio-%s: notify eventfd write failed",
				 dev->ops->name);
		return;
	}
	case VIRTIO_MMIO_STATUS:
	case VIRTIO_MMIO_QUEUE_READY:
		/* These start or stop queues: wait for queue work first. */
		pthread_mutex_lock(&dev->qlock);
		pthread_mutex_lock(&dev->lock);
		write_reg(dev, off, val);
		pthread_mutex_unlock(&dev->lock);
		pthread_mutex_unlock(&dev->qlock);
		return;
	default:
		pthread_mutex_lock(&dev->lock);
		write_reg(dev, off, val);
		pthread_mutex_unlock(&dev->lock);
	}
}

/* Let the device look at each queue that is enabled and not broken. */
static void notify_ready_queues(struct vdev *dev)
{
	vdev_queue_lock(dev);
	for (unsigned q = 0; q < dev->ops->nqueues; q++)
		if (dev->vq[q].enabled && !dev->vq[q].broken && dev->ops->notify)
			dev->ops->notify(dev, q);
	vdev_queue_unlock(dev);
}

/* notify_fd readable: the guest kicked one of our queues (loop thread). */
static void on_notify(struct loop *loop, struct loop_op *op, int res, uint32_t flags)
{
	(void)loop;
	struct vdev *dev = op->opaque;
	if (res < 0) {
		if (!(flags & IORING_CQE_F_MORE))
			dev->started = false;	/* the poll is gone (cancelled) */
		return;
	}
	uint64_t n;
	if (read(dev->env.notify_fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		return;
	notify_ready_queues(dev);
}

int vdev_init(struct vdev *dev, const struct vdev_ops *ops, const struct dev_env *env,
	      uint64_t base)
{
	if (ops->nqueues > VDEV_MAX_QUEUES || ops->queue_max == 0 ||
	    ops->queue_max > VQ_MAX_SIZE || (ops->queue_max & (ops->queue_max - 1)))
		return -EINVAL;
	memset(dev, 0, sizeof(*dev));
	dev->ops = ops;
	dev->env = *env;
	dev->region = (struct io_region){
		.base = base, .len = VIRTIO_MMIO_SIZE,
		.read = region_read, .write = region_write, .opaque = dev,
	};
	pthread_mutex_init(&dev->lock, NULL);
	/* qlock is recursive: a device's host-side handler holding it may
	 * call back into the device (e.g. a port's output callback sending a
	 * reply on another port). */
	pthread_mutexattr_t attr;
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&dev->qlock, &attr);
	pthread_mutexattr_destroy(&attr);
	for (unsigned q = 0; q < ops->nqueues; q++)
		vq_init(&dev->vq[q], env->gm, q, on_queue_broken, dev);
	dev->notify_op.cb = on_notify;
	dev->notify_op.opaque = dev;
	return 0;
}

int vdev_start(struct vdev *dev)
{
	int fl = fcntl(dev->env.notify_fd, F_GETFL);
	if (fl < 0 || fcntl(dev->env.notify_fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	int r = loop_poll(dev->env.loop, &dev->notify_op, dev->env.notify_fd, POLLIN);
	if (r < 0)
		return r;
	dev->started = true;
	return 0;
}

void vdev_fini(struct vdev *dev)
{
	/* The poll's last completion still points at dev: wait for it. */
	struct loop_op *const ops[] = { &dev->notify_op };
	if (dev->started)
		loop_cancel_settle(dev->env.loop, ops, 1, 1000);
	dev->started = false;
	pthread_mutex_destroy(&dev->lock);
	pthread_mutex_destroy(&dev->qlock);
}

void vdev_signal_used(struct vdev *dev, struct virtqueue *vq)
{
	if (vq_notify_needed(vq))
		raise_irq(dev, VIRTIO_MMIO_INT_VRING);
}

void vdev_config_changed(struct vdev *dev)
{
	pthread_mutex_lock(&dev->lock);
	dev->config_generation++;
	bool live = dev->status & VIRTIO_CONFIG_S_DRIVER_OK;
	pthread_mutex_unlock(&dev->lock);
	if (live)
		raise_irq(dev, VIRTIO_MMIO_INT_CONFIG);
}

uint64_t vdev_driver_features(struct vdev *dev)
{
	pthread_mutex_lock(&dev->lock);
	uint64_t f = dev->driver_features;
	pthread_mutex_unlock(&dev->lock);
	return f;
}

bool vdev_has_feature(struct vdev *dev, unsigned bit)
{
	return bit < 64 && (vdev_driver_features(dev) & (1ULL << bit));
}

bool vdev_running(struct vdev *dev)
{
	pthread_mutex_lock(&dev->lock);
	uint32_t s = dev->status;
	pthread_mutex_unlock(&dev->lock);
	return (s & VIRTIO_CONFIG_S_DRIVER_OK) && !(s & VIRTIO_CONFIG_S_NEEDS_RESET);
}

void vdev_queue_lock(struct vdev *dev)
{
	pthread_mutex_lock(&dev->qlock);
}

void vdev_queue_unlock(struct vdev *dev)
{
	pthread_mutex_unlock(&dev->qlock);
}

/* ---- snapshots ---- */

#define STATUS_BITS (VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |          \
		     VIRTIO_CONFIG_S_DRIVER_OK | VIRTIO_CONFIG_S_FEATURES_OK |      \
		     VIRTIO_CONFIG_S_NEEDS_RESET | VIRTIO_CONFIG_S_FAILED)

static int save_queues(struct vdev *dev, struct vdev_state *st)
{
	for (unsigned q = 0; q < dev->ops->nqueues; q++) {
		const struct vq_config *c = &dev->qcfg[q];
		struct vdev_queue_state *qs = &st->q[q];
		*qs = (struct vdev_queue_state){ .desc = c->desc, .avail = c->avail,
						 .used = c->used, .num = c->num,
						 .ready = dev->qready[q] };
		if (!dev->qready[q])
			continue;
		struct vq_indexes ix;
		int r = vq_save(&dev->vq[q], &ix);
		if (r < 0)
			return r;
		qs->last_avail = ix.last_avail;
		qs->used_idx = ix.used_idx;
		qs->signalled_used = ix.signalled_used;
		qs->signalled_valid = ix.signalled_valid;
		qs->broken = ix.broken;
	}
	return 0;
}

int vdev_save(struct vdev *dev, struct vdev_state *st, void *dev_buf, size_t *dev_len)
{
	*dev_len = 0;
	memset(st, 0, sizeof(*st));
	vdev_queue_lock(dev);
	int r = dev->ops->save ? dev->ops->save(dev, dev_buf, dev_len) : -EOPNOTSUPP;
	if (r == 0 && *dev_len > VDEV_DEVICE_STATE_MAX)
		r = -EFBIG;
	pthread_mutex_lock(&dev->lock);
	if (r == 0) {
		st->device_id = dev->ops->device_id;
		st->nqueues = dev->ops->nqueues;
		st->status = dev->status;
		st->dev_features_sel = dev->dev_features_sel;
		st->drv_features_sel = dev->drv_features_sel;
		st->queue_sel = dev->queue_sel;
		st->config_generation = dev->config_generation;
		st->isr = __atomic_load_n(&dev->isr, __ATOMIC_SEQ_CST);
		st->driver_features = dev->driver_features;
		r = save_queues(dev, st);
	}
	pthread_mutex_unlock(&dev->lock);
	vdev_queue_unlock(dev);
	return r;
}

/* Whether st's register file is one this device can be in. */
static bool state_plausible(const struct vdev *dev, const struct vdev_state *st)
{
	if (st->device_id != dev->ops->device_id || st->nqueues != dev->ops->nqueues)
		return false;
	if ((st->status & ~(uint32_t)STATUS_BITS) ||
	    (st->isr & ~(uint32_t)(VIRTIO_MMIO_INT_VRING | VIRTIO_MMIO_INT_CONFIG)) ||
	    (st->driver_features & ~offered_features(dev)))
		return false;
	for (unsigned q = 0; q < VDEV_MAX_QUEUES; q++) {
		const struct vdev_queue_state *qs = &st->q[q];
		static const struct vdev_queue_state zero;
		if (q >= st->nqueues && memcmp(qs, &zero, sizeof(zero)))
			return false;	/* a queue the device does not have */
		if (qs->ready > 1 || qs->signalled_valid > 1 || qs->broken > 1 ||
		    (qs->ready && qs->num > dev->ops->queue_max))
			return false;
	}
	return true;
}

static int load_queues(struct vdev *dev, const struct vdev_state *st)
{
	for (unsigned q = 0; q < dev->ops->nqueues; q++) {
		const struct vdev_queue_state *qs = &st->q[q];
		dev->qcfg[q] = (struct vq_config){ .num = qs->num, .desc = qs->desc,
						   .avail = qs->avail, .used = qs->used };
		if (!qs->ready)
			continue;
		struct vq_config cfg = dev->qcfg[q];
		cfg.indirect = st->driver_features & (1ULL << VIRTIO_RING_F_INDIRECT_DESC);
		cfg.event_idx = st->driver_features & (1ULL << VIRTIO_RING_F_EVENT_IDX);
		struct vq_indexes ix = { .last_avail = qs->last_avail, .used_idx = qs->used_idx,
					 .signalled_used = qs->signalled_used,
					 .signalled_valid = qs->signalled_valid,
					 .broken = qs->broken };
		if (vq_restore(&dev->vq[q], &cfg, &ix) < 0)
			return -EINVAL;
		dev->qready[q] = true;
	}
	return 0;
}

int vdev_load(struct vdev *dev, const struct vdev_state *st, const void *dev_buf,
	      size_t dev_len)
{
	if (!state_plausible(dev, st))
		return -EINVAL;
	vdev_queue_lock(dev);
	pthread_mutex_lock(&dev->lock);
	dev->status = st->status;
	dev->dev_features_sel = st->dev_features_sel;
	dev->drv_features_sel = st->drv_features_sel;
	dev->queue_sel = st->queue_sel;
	dev->config_generation = st->config_generation;
	dev->driver_features = st->driver_features;
	__atomic_store_n(&dev->isr, st->isr, __ATOMIC_SEQ_CST);
	int r = load_queues(dev, st);
	pthread_mutex_unlock(&dev->lock);
	if (r == 0)
		r = dev->ops->load ? dev->ops->load(dev, dev_buf, dev_len) : -EINVAL;
	if (r < 0) {
		pthread_mutex_lock(&dev->lock);
		for (unsigned q = 0; q < dev->ops->nqueues; q++) {
			vq_reset(&dev->vq[q]);
			dev->qready[q] = false;
			memset(&dev->qcfg[q], 0, sizeof(dev->qcfg[q]));
		}
		dev->status = 0;
		dev->driver_features = 0;
		__atomic_store_n(&dev->isr, 0, __ATOMIC_SEQ_CST);
		pthread_mutex_unlock(&dev->lock);
		r = -EINVAL;
	}
	vdev_queue_unlock(dev);
	return r;
}

void vdev_resume(struct vdev *dev)
{
	uint32_t isr = __atomic_load_n(&dev->isr, __ATOMIC_SEQ_CST);
	if (isr)
		raise_irq(dev, isr);
	if (vdev_running(dev))
		notify_ready_queues(dev);
}

int vdev_cmdline(const struct vdev *dev, char *buf, size_t len)
{
	int n = snprintf(buf, len, "virtio_mmio.device=4K@0x%" PRIx64 ":%u",
			 dev->region.base, dev->env.irq);
	return n < 0 || (size_t)n >= len ? -ENOSPC : 0;
}
