/* devices/virtio/mmio.h - the virtio-mmio (version 2) transport and the
 * interface every virtio device implements (struct vdev_ops).
 *
 * A device embeds a struct vdev, fills a struct vdev_ops and calls
 * vdev_init(); the machine (vmm/) then maps vdev->region on the MMIO bus,
 * wires env.notify_fd as a KVM_IOEVENTFD on VIRTIO_MMIO_QUEUE_NOTIFY and
 * env.irq_fd as a KVM_IRQFD, and announces the device on the kernel command
 * line (vdev_cmdline()).
 *
 * Threads and locks:
 *  - region callbacks (register reads and writes) run on vCPU threads and
 *    take vdev->lock, which guards only the small register file;
 *  - queue work runs on the event loop: the transport polls notify_fd
 *    (multishot) and calls ops->notify(dev, q) for every ready queue;
 *  - vdev->qlock is held around every piece of queue work (ops->notify, and
 *    host-side events a device handles through vdev_queue_lock()), and by a
 *    reset, so a reset never runs in the middle of a chain: lock order is
 *    qlock, then lock;
 *  - the interrupt status is an atomic word, so reading/acking it from a
 *    vCPU never waits for queue work.
 *
 * A queue turning broken (malformed ring or chain) sets DEVICE_NEEDS_RESET
 * in the status register and raises a configuration-change interrupt; the
 * guest must reset the device.  A write of 0 to Status resets everything
 * (queues, features, interrupt status) and calls ops->reset.
 */
#ifndef KVMBOX_DEVICES_VIRTIO_MMIO_H
#define KVMBOX_DEVICES_VIRTIO_MMIO_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>

#include "devices/devices.h"
#include "devices/virtio/virtqueue.h"

#define VDEV_MAX_QUEUES 64u
#define VIRTIO_MMIO_MAGIC 0x74726976u	/* "virt" */
#define VIRTIO_MMIO_VENDOR 0x584f424bu	/* "KBOX" */
#define VIRTIO_MMIO_CONFIG_OFF 0x100u

struct vdev;

/* What a virtio device implements.  Callbacks marked (vCPU) run on a vCPU
 * thread with vdev->lock held and must only touch the device's register-
 * level state; (loop) ones run on the event loop with vdev->qlock held. */
struct vdev_ops {
	const char *name;	/* for logs: "console", "rng", ... */
	uint32_t device_id;	/* VIRTIO_ID_* */
	uint64_t features;	/* device-specific feature bits offered; the
				 * transport adds VERSION_1, INDIRECT_DESC and
				 * EVENT_IDX */
	unsigned nqueues;	/* number of virtqueues */
	uint16_t queue_max;	/* QueueNumMax for every queue (power of two) */
	uint32_t config_len;	/* bytes of device config space */
	/* (vCPU) read/write config space at byte offset off (off + size <=
	 * config_len is checked by the transport). */
	void (*cfg_read)(struct vdev *dev, uint32_t off, void *data, unsigned size);
	void (*cfg_write)(struct vdev *dev, uint32_t off, const void *data, unsigned size);
	/* (loop) the guest kicked; queue q is ready.  Pop, process, push, and
	 * vdev_signal_used(). */
	void (*notify)(struct vdev *dev, unsigned q);
	/* (vCPU, both locks held) the driver reset the device: drop every
	 * in-flight chain and return to the initial state.  May be NULL. */
	void (*reset)(struct vdev *dev);
	/* (vCPU, lock held) the driver set DRIVER_OK.  May be NULL. */
	void (*driver_ok)(struct vdev *dev);
	/* Snapshots (loop thread, vCPUs stopped; see vdev_save).  save: let
	 * the device's host-side work settle, give back the chains it holds
	 * unused (vq_unpop), and write its own state, at most
	 * VDEV_DEVICE_STATE_MAX bytes, into buf, setting *len; -EBUSY when
	 * work in flight cannot be given back.  load: take that state back
	 * into a device built as the saved one was; -EINVAL when it is not a
	 * state the device can be in.  NULL: the device cannot be saved
	 * (vdev_save refuses it: -EOPNOTSUPP), because what it keeps on the
	 * host side would be lost. */
	int (*save)(struct vdev *dev, void *buf, size_t *len);
	int (*load)(struct vdev *dev, const void *buf, size_t len);
};

/* A virtio device on the mmio transport.  Embed it in the device's own
 * structure and use container_of in the callbacks. */
struct vdev {
	const struct vdev_ops *ops;
	struct dev_env env;
	struct io_region region;	/* map this on the bus */
	pthread_mutex_t lock;		/* the register file below */
	pthread_mutex_t qlock;		/* queue work vs. reset (recursive) */

	/* Register file (lock). */
	uint32_t status;
	uint32_t dev_features_sel, drv_features_sel;
	uint64_t driver_features;	/* as written by the driver */
	uint32_t queue_sel;
	uint32_t config_generation;
	struct vq_config qcfg[VDEV_MAX_QUEUES];	/* staged until QueueReady */
	bool qready[VDEV_MAX_QUEUES];

	uint32_t isr;			/* interrupt status (atomic) */
	struct virtqueue vq[VDEV_MAX_QUEUES];	/* loop side (qlock) */

	struct loop_op notify_op;	/* multishot poll on env.notify_fd */
	bool started;			/* notify poll armed */
};

/* Set up dev with ops and the machine's env (gm, loop, irq_fd, notify_fd),
 * and its MMIO region at base.  Queue work starts with vdev_start().
 * 0 or -errno. */
int vdev_init(struct vdev *dev, const struct vdev_ops *ops, const struct dev_env *env,
	      uint64_t base);
/* Arm the notify_fd poll on env.loop (call from the loop thread, or before
 * the loop runs). 0 or -errno. */
int vdev_start(struct vdev *dev);
/* Cancel the poll, wait for its last completion (running the loop: other
 * completions may be dispatched meanwhile), destroy the locks.  Loop thread,
 * after the vCPUs stopped. */
void vdev_fini(struct vdev *dev);

/* Raise the used-buffer interrupt if the guest wants one for vq (loop). */
void vdev_signal_used(struct vdev *dev, struct virtqueue *vq);
/* The device changed its config space: bump the generation, interrupt. */
void vdev_config_changed(struct vdev *dev);
/* Whether the driver negotiated feature bit `bit`. */
bool vdev_has_feature(struct vdev *dev, unsigned bit);
/* Every feature bit the driver acked (0 before FEATURES_OK or after a reset). */
uint64_t vdev_driver_features(struct vdev *dev);
/* Whether the driver has set DRIVER_OK and the device is not broken. */
bool vdev_running(struct vdev *dev);

/* Hold qlock around queue work triggered by host-side events (a host fd
 * became readable...), so it cannot race a reset. */
void vdev_queue_lock(struct vdev *dev);
void vdev_queue_unlock(struct vdev *dev);

/* ---- snapshots (vmm/snapshot/snapshot.h) ----
 * The transport's state as a snapshot keeps it: the register file and each
 * queue's geometry and indexes (devices add their own through ops->save).
 * Fixed layout: it is written to the state file as it is. */
#define VDEV_DEVICE_STATE_MAX (32u << 20)	/* a file server's inode table */

struct vdev_queue_state {
	uint64_t desc, avail, used;
	uint16_t num, last_avail, used_idx, signalled_used;
	uint8_t ready, signalled_valid, broken, pad[5];
};

struct vdev_state {
	uint32_t device_id, nqueues;
	uint32_t status, dev_features_sel, drv_features_sel, queue_sel;
	uint32_t config_generation, isr;
	uint64_t driver_features;
	struct vdev_queue_state q[VDEV_MAX_QUEUES];
};

/* Save a device whose vCPUs are stopped (loop thread): ops->save first
 * (into dev_buf, VDEV_DEVICE_STATE_MAX bytes), then the transport into
 * *st.  -EOPNOTSUPP for a device without ops->save, -EBUSY when a queue
 * still has a chain held, or the device's -errno.  Afterwards the device is only fit to be
 * destroyed: chains it gave back are the restored guest's to post again. */
int vdev_save(struct vdev *dev, struct vdev_state *st, void *dev_buf, size_t *dev_len);
/* Load a saved state into a device built as the saved one was and not yet
 * driven by a guest: the transport (features, status, queues on the
 * restored rings) and then ops->load.  0, or -EINVAL with the device as
 * vdev_init left it. */
int vdev_load(struct vdev *dev, const struct vdev_state *st, const void *dev_buf,
	      size_t dev_len);
/* After vdev_load and vdev_start: raise the interrupt a saved status held
 * and look at every ready queue once, for what the guest posted meanwhile
 * (its kick may have been lost with the old process).  Loop thread. */
void vdev_resume(struct vdev *dev);

/* "virtio_mmio.device=4K@0xd0000000:5" for this device, into buf. */
int vdev_cmdline(const struct vdev *dev, char *buf, size_t len);

#endif
