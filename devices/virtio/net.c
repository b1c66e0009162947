/* devices/virtio/net.c - virtio-net in front of the user-mode stack.
 *
 * Transmit: each chain is one frame behind a virtio_net_hdr_v1, handed to
 * net_input_vnet() (which completes a checksum the guest left partial, its
 * offsets checked against the frame).  ACKs the stack deferred are flushed
 * once per batch.  No TCP/IP is read or written here: at DRIVER_OK the
 * device tells the stack which receive offloads the guest acked
 * (net_set_offloads), and the stack builds frames to suit.
 * Receive: frames from the stack are written into the guest's posted
 * buffers with a header; with MRG_RXBUF a frame spans as many buffers as it
 * needs (num_buffers says how many).  When the guest has not posted enough,
 * the frame is dropped and counted (TCP retransmits) and the buffers already
 * taken are kept for the next frame, so no buffer is ever returned
 * half-written.
 */
#include "devices/virtio/net.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <linux/virtio_ids.h>
#include <linux/virtio_net.h>

#include "common/log.h"
#include "common/util.h"
#include "net/net.h"

#define RXQ 0
#define TXQ 1

static inline struct vnet *to_vnet(struct vdev *dev)
{
	return container_of(dev, struct vnet, vdev);
}

static void vnet_cfg_read(struct vdev *dev, uint32_t off, void *data, unsigned size)
{
	struct vnet *v = to_vnet(dev);
	struct virtio_net_config c;
	memset(&c, 0, sizeof(c));
	memcpy(c.mac, v->mac, 6);
	c.status = VIRTIO_NET_S_LINK_UP;
	c.max_virtqueue_pairs = 1;
	c.mtu = v->mtu;
	if (off + size <= sizeof(c))
		memcpy(data, (uint8_t *)&c + off, size);
	else
		memset(data, 0, size);
}

static void vnet_tx(struct vnet *v)
{
	struct virtqueue *vq = &v->vdev.vq[TXQ];
	bool pushed = false;
	while (vq_pop(vq, &v->tx) > 0) {
		size_t n = vq_chain_read(&v->tx, 0, v->frame, sizeof(v->frame));
		if (v->ns && net_input_vnet(v->ns, v->frame, n, VNET_HDR_LEN) == 0)
			v->stats.tx_frames++;
		else
			v->stats.tx_bad++;
		vq_push(vq, &v->tx, 0);
		pushed = true;
	}
	if (v->ns)
		net_flush(v->ns);
	if (pushed)
		vdev_signal_used(&v->vdev, vq);
}

static void vnet_notify(struct vdev *dev, unsigned q)
{
	struct vnet *v = to_vnet(dev);
	if (q == TXQ) {
		vnet_tx(v);
	} else if (v->room_wanted && v->ns) {
		/* New receive buffers, and the stack held data back for them. */
		v->room_wanted = false;
		net_guest_room(v->ns);
	}
}

enum rx_room { RX_ROOM_YES, RX_ROOM_WAIT, RX_ROOM_NEVER };

/* Hold posted receive buffers (v->rx) until they take total bytes (header
 * and frame): YES; WAIT when the guest has posted no more yet; NEVER when
 * the buffers one frame may use cannot hold it (a single buffer without
 * MRG_RXBUF, or VNET_RX_CHAINS of them). */
static enum rx_room rx_take_room(struct vnet *v, size_t total)
{
	struct virtqueue *vq = &v->vdev.vq[RXQ];
	bool mrg = vdev_has_feature(&v->vdev, VIRTIO_NET_F_MRG_RXBUF);
	size_t room = 0;
	for (unsigned i = 0; i < v->nrx; i++)
		room += v->rx[i].write_len;
	while (room < total) {
		if (v->nrx == (mrg ? VNET_RX_CHAINS : 1u))
			return RX_ROOM_NEVER;
		if (vq_pop(vq, &v->rx[v->nrx]) <= 0)
			return RX_ROOM_WAIT;
		room += v->rx[v->nrx++].write_len;
	}
	return RX_ROOM_YES;
}

bool vnet_rx_room(struct vnet *v, size_t len)
{
	struct vdev *dev = &v->vdev;
	vdev_queue_lock(dev);
	bool wait = vdev_running(dev) && len <= VNET_FRAME_MAX &&
		    rx_take_room(v, VNET_HDR_LEN + len) == RX_ROOM_WAIT;
	if (wait)
		v->room_wanted = true;
	vdev_queue_unlock(dev);
	return !wait;
}

/* Write header + frame into the guest's receive buffers (queue lock held,
 * device running).  The frame is dropped and counted when the posted
 * buffers cannot hold it; buffers already taken are kept for the next. */
static void rx_frame(struct vnet *v, struct virtio_net_hdr_v1 *h, const void *frame, size_t len)
{
	struct vdev *dev = &v->vdev;
	struct virtqueue *vq = &dev->vq[RXQ];
	bool mrg = vdev_has_feature(dev, VIRTIO_NET_F_MRG_RXBUF);
	size_t total = VNET_HDR_LEN + len;
	if (rx_take_room(v, total) != RX_ROOM_YES) {
		v->stats.rx_dropped_nobuf++;
		if (!mrg && v->nrx == 1 && v->rx[0].write_len < total) {
			/* A buffer too small for this frame: give it back empty. */
			vq_push(vq, &v->rx[0], 0);
			v->nrx = 0;
			vdev_signal_used(dev, vq);
		}
		return;
	}
	const uint8_t *src = frame;
	size_t off = 0;	/* bytes of (header + frame) written */
	unsigned used = 0;
	uint32_t wrote[VNET_RX_CHAINS];
	while (off < total) {
		struct vq_chain *c = &v->rx[used++];
		size_t w = 0;
		if (off == 0) {
			w = vq_chain_write(c, 0, h, sizeof(*h));
			off = w;
		}
		size_t n = MIN(c->write_len - w, total - off);
		vq_chain_write(c, w, src + (off - VNET_HDR_LEN), n);
		off += n;
		wrote[used - 1] = (uint32_t)(w + n);
	}
	h->num_buffers = (uint16_t)used;
	vq_chain_write(&v->rx[0], offsetof(struct virtio_net_hdr_v1, num_buffers), &h->num_buffers,
		       sizeof(h->num_buffers));
	for (unsigned i = 0; i < used; i++)
		vq_push(vq, &v->rx[i], wrote[i]);
	memmove(&v->rx[0], &v->rx[used], (v->nrx - used) * sizeof(v->rx[0]));
	v->nrx -= used;
	v->stats.rx_frames++;
	vdev_signal_used(dev, vq);
}

/* Header for a frame whose checksums are all complete: DATA_VALID lets a
 * guest that acked GUEST_CSUM skip verifying them. */
static void plain_hdr(struct vnet *v, struct virtio_net_hdr_v1 *h)
{
	memset(h, 0, sizeof(*h));
	h->gso_type = VIRTIO_NET_HDR_GSO_NONE;
	if (vdev_has_feature(&v->vdev, VIRTIO_NET_F_GUEST_CSUM))
		h->flags = VIRTIO_NET_HDR_F_DATA_VALID;
}

/* NET_OFFLOAD_* a driver acking `features` takes: partial checksums with
 * GUEST_CSUM, super-segments of a family with its GUEST_TSO bit too. */
static unsigned offloads_acked(uint64_t features)
{
	if (!(features & (1ull << VIRTIO_NET_F_GUEST_CSUM)))
		return 0;
	return NET_OFFLOAD_CSUM |
	       (features & (1ull << VIRTIO_NET_F_GUEST_TSO4) ? NET_OFFLOAD_TSO4 : 0) |
	       (features & (1ull << VIRTIO_NET_F_GUEST_TSO6) ? NET_OFFLOAD_TSO6 : 0);
}

/* Tell the stack what to build for this guest: what it acked once it is
 * running, nothing before (the device's lock not held). */
static void vnet_tell_offloads(struct vnet *v)
{
	if (v->ns)
		net_set_offloads(v->ns, vdev_running(&v->vdev)
						? offloads_acked(vdev_driver_features(&v->vdev)) : 0);
}

/* (vCPU, lock held: the transport's fields are read directly.) */
static void vnet_driver_ok(struct vdev *dev)
{
	struct vnet *v = to_vnet(dev);
	if (v->ns)
		net_set_offloads(v->ns, offloads_acked(dev->driver_features));
}

void vnet_output(void *opaque, const void *frame, size_t len)
{
	struct vnet *v = opaque;
	struct vdev *dev = &v->vdev;
	if (len > VNET_FRAME_MAX)
		return;
	vdev_queue_lock(dev);
	if (vdev_running(dev)) {
		struct virtio_net_hdr_v1 h;
		plain_hdr(v, &h);
		rx_frame(v, &h, frame, len);
	}
	vdev_queue_unlock(dev);
}

/* Whether a description is one the stack could have made for this guest:
 * TCP right after a plain IP header, and either a super-segment (gso_size =
 * MSS) of a family whose TSO the guest acked, or, with gso_size 0, one
 * segment that only needs its checksum completed (at most MTU sized), and
 * the guest acked GUEST_CSUM.  The stack builds frames to the offloads the
 * device gave it (vnet_tell_offloads), but the device does not take them on
 * trust: a frame built before a reset changed them is dropped here. */
static bool gso_fits(struct vnet *v, const struct net_gso *g, size_t len)
{
	size_t l3 = g->v6 ? 40 : 20;
	unsigned need = !g->gso_size ? NET_OFFLOAD_CSUM : g->v6 ? NET_OFFLOAD_TSO6 : NET_OFFLOAD_TSO4;
	unsigned acked = offloads_acked(vdev_driver_features(&v->vdev));
	return g->hdr_len <= len && g->csum_start == 14 + l3 && g->csum_offset == 16 &&
	       g->hdr_len >= g->csum_start + 20u && len <= VNET_FRAME_MAX &&
	       (g->gso_size || len <= 14u + v->mtu) && (acked & need) == need;
}

void vnet_output_gso(void *opaque, const void *frame, size_t len, const struct net_gso *g)
{
	struct vnet *v = opaque;
	struct vdev *dev = &v->vdev;
	vdev_queue_lock(dev);
	if (!vdev_running(dev)) {
		vdev_queue_unlock(dev);
		return;
	}
	if (!gso_fits(v, g, len)) {
		v->stats.rx_bad_gso++;
		vdev_queue_unlock(dev);
		return;
	}
	struct virtio_net_hdr_v1 h;
	memset(&h, 0, sizeof(h));
	vnet_hdr_from_gso((struct virtio_net_hdr *)&h, g);
	if (g->gso_size)
		v->stats.rx_gso++;
	rx_frame(v, &h, frame, len);
	vdev_queue_unlock(dev);
}

static void vnet_reset(struct vdev *dev)
{
	struct vnet *v = to_vnet(dev);
	v->nrx = 0;	/* vq_reset dropped the in-flight chains */
	if (v->ns)
		net_set_offloads(v->ns, 0);
}

/* Snapshots: the receive buffers held for the next frame go back to the
 * ring (the latest pops, given back last first); the device keeps its MAC
 * and MTU (the guest's driver read them) and the stack what the guest
 * knows of it.  Layout: 6 bytes MAC, u16 MTU, then net_snapshot_save's. */
#define VNET_STATE_HDR 8

static int vnet_save(struct vdev *dev, void *buf, size_t *len)
{
	struct vnet *v = to_vnet(dev);
	while (v->nrx) {
		int r = vq_unpop(&dev->vq[RXQ], &v->rx[v->nrx - 1]);
		if (r < 0)
			return r;
		v->nrx--;
	}
	if (!v->ns)
		return -EINVAL;
	uint8_t *b = buf;
	memcpy(b, v->mac, 6);
	memcpy(b + 6, &v->mtu, 2);
	*len = VNET_STATE_HDR + net_snapshot_save(v->ns, b + VNET_STATE_HDR);
	return 0;
}

static int vnet_load(struct vdev *dev, const void *buf, size_t len)
{
	struct vnet *v = to_vnet(dev);
	const uint8_t *b = buf;
	uint16_t mtu;
	if (len < VNET_STATE_HDR || !v->ns)
		return -EINVAL;
	memcpy(&mtu, b + 6, 2);
	if (mtu < 68 || mtu > 65520 || (b[0] & 1))
		return -EINVAL;	/* as vnet_create judges them; a multicast MAC is none */
	memcpy(v->mac, b, 6);
	v->mtu = mtu;
	int r = net_snapshot_restore(v->ns, b + VNET_STATE_HDR, len - VNET_STATE_HDR);
	if (r == 0)
		vnet_tell_offloads(v);
	return r;
}

static const struct vdev_ops vnet_ops = {
	.name = "net",
	.device_id = VIRTIO_ID_NET,
	.features = (1ull << VIRTIO_NET_F_MAC) | (1ull << VIRTIO_NET_F_MTU) |
		    (1ull << VIRTIO_NET_F_STATUS) | (1ull << VIRTIO_NET_F_MRG_RXBUF) |
		    (1ull << VIRTIO_NET_F_CSUM) | (1ull << VIRTIO_NET_F_HOST_TSO4) |
		    (1ull << VIRTIO_NET_F_HOST_TSO6) | (1ull << VIRTIO_NET_F_GUEST_CSUM) |
		    (1ull << VIRTIO_NET_F_GUEST_TSO4) | (1ull << VIRTIO_NET_F_GUEST_TSO6),
	.nqueues = 2,
	.queue_max = VNET_QUEUE_SIZE,
	.config_len = sizeof(struct virtio_net_config),
	.cfg_read = vnet_cfg_read,
	.notify = vnet_notify,
	.reset = vnet_reset,
	.driver_ok = vnet_driver_ok,
	.save = vnet_save,
	.load = vnet_load,
};

int vnet_create(const struct dev_env *env, uint64_t base, const uint8_t mac[6], unsigned mtu,
		struct vnet **out)
{
	*out = NULL;
	if (mtu < 68 || mtu > 65520)
		return -EINVAL;
	struct vnet *v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	memcpy(v->mac, mac, 6);
	v->mtu = (uint16_t)mtu;
	int r = vdev_init(&v->vdev, &vnet_ops, env, base);
	if (r < 0) {
		free(v);
		return r;
	}
	*out = v;
	return 0;
}

void vnet_set_stack(struct vnet *v, struct net_stack *ns)
{
	v->ns = ns;
	vnet_tell_offloads(v);
}

void vnet_destroy(struct vnet *v)
{
	if (!v)
		return;
	vdev_fini(&v->vdev);
	free(v);
}
