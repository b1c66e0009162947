/* tests/harness/virtio_driver.h - a pretend guest driver for device tests.
 *
 * Plays the guest side of virtio-mmio on a gmem over an mmap'd buffer, so a
 * device (console, rng, net, fs, 9p...) can be tested alone, hostile inputs
 * included, without KVM.  It talks to the device only the way a guest can:
 * through the device's io_region callbacks (register reads and writes),
 * guest memory (rings and buffers), the notify eventfd (a kick) and the
 * interrupt eventfd.  The device's queue work runs when the test calls
 * vdrv_run(), on the same thread, through the same struct loop a VMM uses.
 *
 * Typical test:
 *
 *	struct vdrv d;
 *	vdrv_init(&d, 1 << 20);			// 1 MiB of guest RAM, loop, eventfds
 *	my_device_create(&dev, &d.env, ...);	// the device under test gets d.env
 *	vdrv_attach(&d, &dev.vdev.region);
 *	vdrv_start(&d, &dev.vdev);		// arms the device's notify poll
 *	vdrv_negotiate(&d, wanted_features, &got);
 *	vdrv_queue_setup(&d, 0, 16);
 *	vdrv_driver_ok(&d);
 *	uint64_t req = vdrv_alloc_copy(&d, "hello", 5);
 *	uint64_t rsp = vdrv_alloc(&d, 64, 8);
 *	struct vdrv_buf b[] = { { req, 5, false }, { rsp, 64, true } };
 *	int head = vdrv_add(&d, 0, b, 2, 0);
 *	vdrv_kick(&d, 0);
 *	vdrv_run(&d);
 *	uint32_t id, len;
 *	assert(vdrv_used(&d, 0, &id, &len) == 1 && id == head);
 *	assert(vdrv_irq(&d) > 0);
 *	vdrv_fini(&d);				// after the device's own fini
 *
 * Hostile tests use the raw helpers (vdrv_desc, vdrv_avail_raw,
 * vdrv_set_avail_idx) to write whatever a malicious guest could.
 *
 * Every function asserts nothing: errors come back as -errno or 0 so the
 * test decides what is expected.
 */
#ifndef KVMBOX_TESTS_HARNESS_VIRTIO_DRIVER_H
#define KVMBOX_TESTS_HARNESS_VIRTIO_DRIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/virtio_ring.h>

#include "common/gmem.h"
#include "common/loop.h"
#include "devices/devices.h"

struct vdev;

#define VDRV_MAX_QUEUES 64
#define VDRV_INDIRECT 1u	/* vdrv_add flag: put the chain in an indirect table */

/* One guest buffer of a chain: gpa, length, and whether the device writes it. */
struct vdrv_buf {
	uint64_t gpa;
	uint32_t len;
	bool write;
};

/* The driver's view of one virtqueue. */
struct vdrv_queue {
	uint16_t num;		/* 0: not set up */
	uint64_t desc_gpa, avail_gpa, used_gpa;
	struct vring_desc *desc;	/* host pointers into guest RAM */
	struct vring_avail *avail;
	struct vring_used *used;
	uint16_t avail_idx;	/* next index we publish */
	uint16_t kicked_idx;	/* avail_idx at the last kick decision */
	uint16_t last_used;	/* next used entry to read */
	uint16_t free_head;	/* free descriptor list, linked by desc.next */
	uint16_t nfree;
	uint16_t *chain_len;	/* descriptors held by each head (0: free) */
	uint64_t *first_gpa;	/* gpa of each head's first buffer */
};

/* The pretend guest: RAM, its gmem, the loop and the two eventfds. */
struct vdrv {
	uint8_t *ram;
	size_t ram_size;
	struct gmem gm;
	struct loop loop;
	struct dev_env env;	/* give this to the device under test */
	const struct io_region *region;	/* the device's registers */
	uint64_t brk;		/* bump allocator: next free gpa */
	uint64_t features;	/* negotiated */
	struct vdrv_queue q[VDRV_MAX_QUEUES];
};

/* RAM of ram_size bytes (page multiple), a loop, nonblocking notify and irq
 * eventfds; env filled for the device.  0 or -errno. */
int vdrv_init(struct vdrv *d, size_t ram_size);
/* Free everything vdrv_init made (call after the device is finished). */
void vdrv_fini(struct vdrv *d);
/* Use this device's register region for all register access. */
void vdrv_attach(struct vdrv *d, const struct io_region *region);
/* Attach dev's region and arm its notify poll (vdev_start): 0 or -errno. */
int vdrv_start(struct vdrv *d, struct vdev *dev);

/* Register access through the region callbacks, as a vCPU would. */
uint32_t vdrv_read32(struct vdrv *d, uint64_t off);
void vdrv_write32(struct vdrv *d, uint64_t off, uint32_t val);
/* Device config space (offset from the start of config, size 1/2/4/8). */
void vdrv_cfg_read(struct vdrv *d, uint32_t off, void *buf, unsigned size);
void vdrv_cfg_write(struct vdrv *d, uint32_t off, const void *buf, unsigned size);
uint32_t vdrv_status(struct vdrv *d);

/* Reset, ACKNOWLEDGE, DRIVER, offer want & device features, FEATURES_OK and
 * check it stuck.  *got (may be NULL) gets the accepted set.  0, -EIO if the
 * magic/version is wrong, -EPROTO if the device refused FEATURES_OK. */
int vdrv_negotiate(struct vdrv *d, uint64_t want, uint64_t *got);
/* Write features verbatim (hostile: bits the device never offered) and try
 * FEATURES_OK: 0 if it stuck, -EPROTO if refused. */
int vdrv_negotiate_raw(struct vdrv *d, uint64_t features);
/* Allocate rings for queue q with num entries, program and enable it.
 * 0, -EINVAL if the device did not accept it (QueueReady reads 0). */
int vdrv_queue_setup(struct vdrv *d, unsigned q, uint16_t num);
/* Same, with explicit ring addresses (hostile geometry). */
int vdrv_queue_setup_at(struct vdrv *d, unsigned q, uint16_t num, uint64_t desc,
			uint64_t avail, uint64_t used);
void vdrv_driver_ok(struct vdrv *d);
/* Status 0 and forget every queue (the guest's view). */
void vdrv_reset(struct vdrv *d);

/* Bump-allocate guest RAM: gpa, or 0 when RAM is exhausted (gpa 0 is never
 * handed out). */
uint64_t vdrv_alloc(struct vdrv *d, size_t len, size_t align);
/* Allocate and fill with data. */
uint64_t vdrv_alloc_copy(struct vdrv *d, const void *data, size_t len);
/* Host pointer to guest RAM (no bounds check: the test's own memory). */
void *vdrv_host(struct vdrv *d, uint64_t gpa);

/* Build a chain from bufs (readable ones first, as a well-behaved driver
 * does; the order given is kept, so a test can break the rule), direct or
 * in an indirect table (flags VDRV_INDIRECT), and publish it in the
 * available ring.  Returns the head, or -ENOSPC when descriptors run out. */
int vdrv_add(struct vdrv *d, unsigned q, const struct vdrv_buf *bufs, unsigned n,
	     unsigned flags);
/* Kick: write QueueNotify through the region (the transport signals its
 * notify eventfd, as KVM's ioeventfd would). */
void vdrv_kick(struct vdrv *d, unsigned q);
/* Whether a driver honouring the device's suppression (NO_NOTIFY, or
 * avail_event with event idx) would kick now; updates the kick mark. */
bool vdrv_kick_needed(struct vdrv *d, unsigned q);
/* Let the device work: run its loop until nothing happens for a few ms.
 * Returns the number of completions handled. */
int vdrv_run(struct vdrv *d);
/* Take one used entry: 1 with *id and *len, 0 if none.  The chain's
 * descriptors return to the free list. */
int vdrv_used(struct vdrv *d, unsigned q, uint32_t *id, uint32_t *len);
/* vdrv_used() that also returns a host pointer to the chain's first buffer
 * (for single-buffer receive chains: the data the device wrote). */
int vdrv_used_buf(struct vdrv *d, unsigned q, void **data, uint32_t *len);
/* Post n single-buffer device-writable chains of size bytes each (receive
 * buffers, as a driver fills its rx queue): number posted. */
int vdrv_post_rx(struct vdrv *d, unsigned q, unsigned n, uint32_t size);
/* Post one device-readable chain holding a copy of data and kick: head. */
int vdrv_send(struct vdrv *d, unsigned q, const void *data, uint32_t len);
/* Interrupts raised since the last call (reads the irq eventfd). */
uint64_t vdrv_irq(struct vdrv *d);
/* Read InterruptStatus and acknowledge those bits: the bits. */
uint32_t vdrv_isr_ack(struct vdrv *d);

/* Raw access for hostile tests. */
struct vring_desc *vdrv_desc(struct vdrv *d, unsigned q, uint16_t i);
/* Put head in the next available slot and publish (idx + 1). */
void vdrv_avail_raw(struct vdrv *d, unsigned q, uint16_t head);
/* Publish an arbitrary available index. */
void vdrv_set_avail_idx(struct vdrv *d, unsigned q, uint16_t idx);
/* used_event (event idx) and the avail flags (VRING_AVAIL_F_NO_INTERRUPT). */
void vdrv_set_used_event(struct vdrv *d, unsigned q, uint16_t v);
void vdrv_set_avail_flags(struct vdrv *d, unsigned q, uint16_t flags);
/* avail_event as the device last wrote it (event idx). */
uint16_t vdrv_avail_event(struct vdrv *d, unsigned q);

#endif
