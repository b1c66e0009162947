/* devices/virtio/net.h - virtio-net: the guest's network card, served by
 * the user-mode stack in net/ (frames in, frames out; no TAP).
 *
 * Queue 0 receives (frames for the guest), queue 1 transmits.  Offered
 * features: MAC, MTU, STATUS (link always up), MRG_RXBUF (a frame may span
 * several receive buffers), CSUM (the guest may leave checksums partial:
 * they are completed here before the stack verifies them) and HOST_TSO4/6
 * (the guest may send TCP segments up to 64 KiB, which the stack takes
 * whole), and GUEST_CSUM, GUEST_TSO4/6: when the guest acked them, the
 * stack's TCP super-segments (up to 64 KiB, checksum partial, see struct
 * net_gso) reach it whole with NEEDS_CSUM and the GSO type, and complete
 * frames carry DATA_VALID; when it did not, the stack (told at DRIVER_OK,
 * net_set_offloads) sends MSS-sized segments with full checksums itself.
 *
 * Wiring: create the device, give vnet_output (with the device as opaque)
 * to net_create() as the output callback, vnet_output_gso to
 * net_set_gso_output() and vnet_rx_room to net_set_room() (through the
 * same opaque), then vnet_set_stack().
 */
#ifndef KVMBOX_DEVICES_VIRTIO_NET_H
#define KVMBOX_DEVICES_VIRTIO_NET_H

#include <stdint.h>

#include <linux/virtio_net.h>

#include "devices/virtio/mmio.h"
#include "net/net.h"

#define VNET_QUEUE_SIZE 256u
#define VNET_RX_CHAINS 64u	/* receive buffers one frame may span */
#define VNET_HDR_LEN 12u	/* struct virtio_net_hdr_v1 */
#define VNET_FRAME_MAX (65535u + 14u)

struct vnet_stats {
	uint64_t tx_frames, rx_frames, rx_dropped_nobuf, tx_bad;
	uint64_t rx_gso;	/* super-segments handed to the guest whole */
	uint64_t rx_bad_gso;	/* GSO descriptions that did not fit their frame or the guest */
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
	uint8_t frame[VNET_HDR_LEN + VNET_FRAME_MAX];	/* transmit: one guest frame */
	struct vnet_stats stats;
	bool room_wanted;	/* vnet_rx_room said wait: tell the stack at the next kick */
};

/* A heap-allocated device with the guest's MAC and MTU into *out: 0,
 * -EINVAL (an MTU outside 68..65520), -ENOMEM, or vdev_init's -errno. */
int vnet_create(const struct dev_env *env, uint64_t base, const uint8_t mac[6], unsigned mtu,
		struct vnet **out);
void vnet_set_stack(struct vnet *v, struct net_stack *ns);
/* net_output_fn for net_create(): one frame for the guest (loop thread). */
void vnet_output(void *opaque, const void *frame, size_t len);
/* net_output_gso_fn for net_set_gso_output(): a TCP super-segment or a
 * segment with a partial checksum, whole, to a guest that acked the
 * offload (the stack sends no other after vnet_set_stack); dropped and
 * counted otherwise (loop thread). */
void vnet_output_gso(void *opaque, const void *frame, size_t len, const struct net_gso *g);
/* For net_set_room(): whether a frame of len bytes fits the receive
 * buffers the guest has posted (they are held for it); false means wait:
 * the device calls net_guest_room() at the guest's next receive kick.  A
 * frame that could never fit, or a device not running, says true (the
 * frame is then dropped and counted, as before). */
bool vnet_rx_room(struct vnet *v, size_t len);
void vnet_destroy(struct vnet *v);

/* The virtio-net header that hands a super-segment on whole: partial TCP
 * checksum and the GSO type and size (also used by net-serve's TAP). */
static inline void vnet_hdr_from_gso(struct virtio_net_hdr *h, const struct net_gso *g)
{
	*h = (struct virtio_net_hdr){
		.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
		.gso_type = !g->gso_size ? VIRTIO_NET_HDR_GSO_NONE
			  : g->v6 ? VIRTIO_NET_HDR_GSO_TCPV6 : VIRTIO_NET_HDR_GSO_TCPV4,
		.hdr_len = g->hdr_len,
		.gso_size = g->gso_size,
		.csum_start = g->csum_start,
		.csum_offset = g->csum_offset,
	};
}

#endif
