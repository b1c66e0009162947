/* guest/abi/layout.h - where the machine puts what the guest finds by
 * address: the virtio-mmio window and its interrupt lines.  vmm/vm.c places
 * device i there and tells Linux with virtio_mmio.device=<size>@<base>:<irq>;
 * boot/mptable.c routes those lines in the MP table; the tiny test guests
 * (firmware/tests/) poke slot 0 directly.  Header-only, freestanding.
 *
 *   slot i (0 <= i < KBX_VIRTIO_MMIO_SLOTS):
 *     registers  KBX_VIRTIO_MMIO_BASE + i * KBX_VIRTIO_MMIO_SIZE, one page
 *     interrupt  KBX_VIRTIO_MMIO_IRQ_BASE + i (an ISA-range GSI, edge)
 */
#ifndef KVMBOX_GUEST_ABI_LAYOUT_H
#define KVMBOX_GUEST_ABI_LAYOUT_H

#define KBX_VIRTIO_MMIO_BASE 0xd0000000ULL
#define KBX_VIRTIO_MMIO_SIZE 0x1000ULL
#define KBX_VIRTIO_MMIO_IRQ_BASE 5
#define KBX_VIRTIO_MMIO_SLOTS 16

#endif
