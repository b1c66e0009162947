/* devices/virtio/net.h - virtio-net: the guest's network card, served by
 * the user-mode stack in net/ (frames in, frames out; no TAP).
 *
 * Queue 0 receives (frames for the guest), queue 1 transmits.  Offered
 * features: MAC, MTU, STATUS (link always up), MRG_RXBUF (a frame may span
 * several receive buffers), CSUM (the guest may leave checksums partial:
 * they are completed here before the stack verifies them) and HOST_TSO4/6
 * (the guest may send TCP segments up to 64 KiB, which the stack takes
 * whole).  The guest-side offloads (GUEST_CSUM/TSO) are not offered: every
 * frame for the guest carries full checksums and is at most MTU sized.
 *
 * Wiring: create the device, give vnet_output (with the device as opaque)
 * to net_create() as the output callback, then vnet_set_stack().
 */
#ifndef KVMBOX_DEVICES_VIRTIO_NET_H
#define KVMBOX_DEVICES_VIRTIO_NET_H

#include <stdint.h>

#include "devices/virtio/mmio.h"

struct net_stack;

#define VNET_QUEUE_SIZE 256u
#define VNET_RX_CHAINS 64u	/* receive buffers one frame may span */
#define VNET_HDR_LEN 12u	/* struct virtio_net_hdr_v1 */
#define VNET_FRAME_MAX (65535u + 14u)

struct vnet_stats {
	uint64_t tx_frames, rx_frames, rx_dropped_nobuf, tx_bad;
};

struct vnet {
	struct vdev vdev;
	struct net_stack *ns;
	uint8_t mac[6];
	uint16_t mtu;
	/* Receive buffers popped and not used yet (kept for the next frame
	 * when a frame did not fit: never pushed half-filled). */
	struct vq_chain rx[VNET_RX_CHAINS];
	unsigned nrx;
	struct vq_chain tx;
	uint8_t frame[VNET_HDR_LEN + VNET_FRAME_MAX];
	struct vnet_stats stats;
};

/* Heap-allocated device with the guest's MAC and MTU, or NULL. */
struct vnet *vnet_create(const struct dev_env *env, uint64_t base, const uint8_t mac[6],
			 unsigned mtu);
void vnet_set_stack(struct vnet *v, struct net_stack *ns);
/* net_output_fn for net_create(): one frame for the guest (loop thread). */
void vnet_output(void *opaque, const void *frame, size_t len);
void vnet_destroy(struct vnet *v);

#endif
