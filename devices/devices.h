/* devices/devices.h - how a device plugs into the machine (the contract
 * between devices/ and vmm/).
 *
 * A device is a set of register regions plus, for virtio, an eventfd the
 * guest's queue notifications arrive on and an eventfd that raises its
 * interrupt.  vmm/ owns the bus: it routes KVM_EXIT_MMIO / KVM_EXIT_IO to
 * the region's callbacks on the vCPU thread, wires notify_fd with
 * KVM_IOEVENTFD and irq_fd with KVM_IRQFD.  Devices never see KVM; tests
 * drive the same callbacks and eventfds directly.
 *
 * Register callbacks run on vCPU threads and must only touch the device's
 * small register file (under the device's own lock); all queue processing
 * runs on the event loop, woken through notify_fd.
 */
#ifndef KVMBOX_DEVICES_H
#define KVMBOX_DEVICES_H

#include <stdbool.h>
#include <stdint.h>

#include "common/gmem.h"
#include "common/loop.h"
#include "guest/abi/layout.h"

/* A region of guest-physical MMIO space or of x86 port I/O space. */
struct io_region {
	uint64_t base;		/* gpa (MMIO) or port number (PIO) */
	uint64_t len;
	/* off is relative to base; size is 1, 2, 4 or 8.  read fills data. */
	void (*read)(void *opaque, uint64_t off, void *data, unsigned size);
	void (*write)(void *opaque, uint64_t off, const void *data, unsigned size);
	void *opaque;
};

/* What the machine gives a device when it is created. */
struct dev_env {
	const struct gmem *gm;	/* guest RAM: every guest address goes through it */
	struct loop *loop;	/* device work runs on this loop */
	int irq_fd;		/* eventfd: write 1 to raise the device's interrupt */
	int notify_fd;		/* eventfd: signalled on a write to the notify register */
	unsigned irq;		/* interrupt line (GSI), for the command line */
};

/* virtio-mmio window (guest/abi/layout.h, the machine's layout the guest
 * sees): device i lives at VIRTIO_MMIO_BASE + i * VIRTIO_MMIO_SIZE with
 * interrupt VIRTIO_MMIO_IRQ_BASE + i. */
#define VIRTIO_MMIO_BASE KBX_VIRTIO_MMIO_BASE
#define VIRTIO_MMIO_SIZE KBX_VIRTIO_MMIO_SIZE
#define VIRTIO_MMIO_IRQ_BASE KBX_VIRTIO_MMIO_IRQ_BASE
#define VIRTIO_MMIO_MAX_DEVS KBX_VIRTIO_MMIO_SLOTS
#define VIRTIO_MMIO_QUEUE_NOTIFY 0x050	/* offset wired to notify_fd */

#endif
