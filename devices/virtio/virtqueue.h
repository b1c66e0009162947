/* devices/virtio/virtqueue.h - the device side of a split virtqueue.
 *
 * Every virtio device (console, rng, net, fs, 9p) takes requests from the
 * guest through this one walker, so it is the one place that decides what a
 * guest descriptor may point at.  The layout is VIRTIO_F_VERSION_1's split
 * ring (descriptor table, available ring, used ring), with indirect
 * descriptors (VIRTIO_RING_F_INDIRECT_DESC) and event idx
 * (VIRTIO_RING_F_EVENT_IDX) when negotiated.
 *
 * Usage, on the event-loop thread only:
 *
 *	struct vq_chain c;
 *	while (vq_pop(vq, &c) > 0) {
 *		... read c.iov[0 .. c.nread), write c.iov[c.nread .. c.nread+c.nwrite) ...
 *		vq_push(vq, &c, bytes_written);
 *	}
 *	if (vq_notify_needed(vq))
 *		... raise the used-buffer interrupt (vdev_signal_used does both) ...
 *
 * What vq_pop() guarantees about a chain it returns (anything else is a
 * malformed chain, see below):
 *  - every iovec lies wholly inside guest RAM (gmem_ptr), none straddles the
 *    end of RAM or the MMIO hole;
 *  - device-readable buffers come first, device-writable ones after;
 *  - at most vq->num descriptors are walked in the ring (so a loop, or a chain
 *    longer than the queue, is caught), at most VQ_MAX_INDIRECT in an indirect
 *    table, and at most VQ_CHAIN_MAX_IOV buffers result;
 *  - the readable and the writable totals each fit in 32 bits;
 *  - zero-length descriptors are accepted and produce no iovec (their address
 *    is not looked at) but count toward the chain length;
 *  - an indirect descriptor is only honoured when the feature was negotiated,
 *    only as the head of a chain, never with NEXT, never inside a table; its
 *    table is a non-zero multiple of 16 bytes wholly inside RAM.
 * Each descriptor is read from guest memory exactly once, so a guest
 * rewriting the table behind our back cannot make us check one value and use
 * another.
 *
 * A malformed ring or chain (head or next index out of range, available index
 * running more than vq->num ahead, any rule above broken) puts the queue in
 * the broken state: vq_pop() returns -EIO from then on, the broken callback
 * fires once (the transport sets DEVICE_NEEDS_RESET and raises a
 * configuration-change interrupt), and one line is logged per process
 * (log_once).  Nothing is pushed for the bad chain.  Only a device reset
 * (vq_reset / re-enabling the queue) clears it.
 *
 * Memory ordering: the guest driver runs on another CPU.  The available index
 * is read with acquire semantics before any ring entry; the used element is
 * written before the used index is published with release semantics; a full
 * fence separates publishing the used index (or avail_event) from reading the
 * driver's suppression fields (used_event, flags, the available index again).
 */
#ifndef KVMBOX_DEVICES_VIRTIO_VIRTQUEUE_H
#define KVMBOX_DEVICES_VIRTIO_VIRTQUEUE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include <linux/virtio_ring.h>

#include "common/gmem.h"

#define VQ_MAX_SIZE 32768u		/* largest split queue (spec limit) */
#define VQ_MAX_INDIRECT 1024u		/* entries walked in one indirect table */
#define VQ_CHAIN_MAX_IOV 1024u		/* buffers in one chain (as QEMU) */

/* One descriptor chain taken from the available ring, as host memory.
 * iov[0 .. nread) are the device-readable buffers (the request), then
 * iov[nread .. nread + nwrite) the device-writable ones (the reply).
 * A chain is owned by the device from vq_pop() until vq_push(); it is large
 * (16 KiB), so devices keep their chains in their own state, not on a
 * small stack. */
struct vq_chain {
	uint16_t head;		/* descriptor id returned in the used ring */
	bool popped;		/* between vq_pop() and vq_push(): completes once */
	uint32_t gen;		/* the queue's generation when popped */
	uint16_t nread;		/* device-readable iovecs */
	uint16_t nwrite;	/* device-writable iovecs, after the readable ones */
	uint32_t read_len;	/* bytes in the readable part */
	uint32_t write_len;	/* bytes in the writable part */
	struct iovec iov[VQ_CHAIN_MAX_IOV];
};

struct virtqueue;
/* Called once when the queue turns broken (the transport's hook). */
typedef void (*vq_broken_fn)(struct virtqueue *vq, void *opaque);

/* Guest-provided ring geometry, written through the transport registers. */
struct vq_config {
	uint16_t num;		/* queue size: a power of two, 1..VQ_MAX_SIZE */
	uint64_t desc;		/* gpa of the descriptor table (16-byte aligned) */
	uint64_t avail;		/* gpa of the available ring (2-byte aligned) */
	uint64_t used;		/* gpa of the used ring (4-byte aligned) */
	bool indirect;		/* VIRTIO_RING_F_INDIRECT_DESC negotiated */
	bool event_idx;		/* VIRTIO_RING_F_EVENT_IDX negotiated */
};

/* One split virtqueue, device side.  The ring pointers are host addresses,
 * validated once when the queue is enabled (gmem never shrinks). */
struct virtqueue {
	const struct gmem *gm;
	struct vq_config cfg;
	bool enabled;		/* vq_enable() succeeded and no reset since */
	bool broken;		/* malformed input seen: nothing more is processed */
	const char *broken_why;	/* static string: what was malformed (tests, logs) */
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	uint16_t last_avail;	/* next available-ring slot to consume */
	uint16_t used_idx;	/* our copy of used->idx */
	uint16_t signalled_used;	/* used_idx when we last decided on an interrupt */
	bool signalled_valid;	/* signalled_used means something */
	unsigned inflight;	/* popped and not yet pushed */
	uint32_t gen;		/* bumped by every reset: stale chains are refused */
	vq_broken_fn on_broken;
	void *opaque;		/* for on_broken */
	unsigned index;		/* queue number within its device (for logs) */
};

/* Zero the queue and attach it to guest memory; disabled until vq_enable(). */
void vq_init(struct virtqueue *vq, const struct gmem *gm, unsigned index,
	     vq_broken_fn on_broken, void *opaque);

/* Check the geometry (size a power of two, rings aligned and wholly inside
 * RAM) and start using it: 0, or -EINVAL (queue stays disabled). */
int vq_enable(struct virtqueue *vq, const struct vq_config *cfg);

/* Forget everything (device reset, queue disabled): in-flight chains are
 * dropped, never pushed. */
void vq_reset(struct virtqueue *vq);

/* Take the next available chain: 1 with *c filled, 0 if the ring is empty,
 * -EIO if the queue is broken (now or before), -ENODEV if not enabled. */
int vq_pop(struct virtqueue *vq, struct vq_chain *c);

/* Give a popped chain back to the guest with `written` bytes written into
 * its writable part (clamped to write_len).  A chain is completed exactly
 * once: pushing a chain that is not popped (twice, or after a reset) is a
 * device bug and returns -EINVAL without touching the ring. */
int vq_push(struct virtqueue *vq, struct vq_chain *c, uint32_t written);

/* Whether the guest wants an interrupt for what was pushed since the last
 * call (VRING_AVAIL_F_NO_INTERRUPT, or used_event with event idx). */
bool vq_notify_needed(struct virtqueue *vq);

/* Whether the available ring holds chains we have not popped. */
bool vq_has_avail(struct virtqueue *vq);

/* Mark the queue broken by hand (a device found a chain it cannot accept,
 * e.g. a request header shorter than its protocol allows). */
void vq_set_broken(struct virtqueue *vq, const char *why);

/* ---- snapshots (vmm/snapshot/snapshot.h) ----
 * A queue is saved only while the device holds none of its chains: a chain
 * it popped and has not used is given back with vq_unpop (the guest posted
 * it; it is popped again after the restore), one in use must complete
 * first.  A restore enables the queue on the guest's rings as they are in
 * the restored memory, never writing them. */
struct vq_indexes {
	uint16_t last_avail, used_idx, signalled_used;
	bool signalled_valid, broken;
};

/* Give back the chain popped last, with nothing written into it: the
 * available ring's slot is taken again by the next vq_pop.  Chains are
 * given back in the reverse order of their pops.  0, or -EINVAL when c is
 * not the most recent pop of this queue still held. */
int vq_unpop(struct virtqueue *vq, struct vq_chain *c);
/* The indexes of an enabled queue: 0, or -EBUSY while a chain is held. */
int vq_save(const struct virtqueue *vq, struct vq_indexes *ix);
/* Enable the queue on a restored guest's rings: the geometry judged as
 * vq_enable judges it, the used index in guest memory must be ix's, and
 * nothing is written.  0 or -EINVAL. */
int vq_restore(struct virtqueue *vq, const struct vq_config *cfg, const struct vq_indexes *ix);

/* Copy helpers over a chain's readable / writable part, from byte offset
 * off: bytes copied (short when the part is shorter). */
size_t vq_chain_read(const struct vq_chain *c, size_t off, void *dst, size_t len);
size_t vq_chain_write(const struct vq_chain *c, size_t off, const void *src, size_t len);

#endif
