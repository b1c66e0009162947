/* devices/virtio/net.c - virtio-net in front of the user-mode stack.
 *
 * Transmit: each chain is one frame behind a virtio_net_hdr_v1; the header is
 * checked (a partial checksum must lie inside the frame), the checksum is
 * completed when the guest left it partial, and the frame goes to
 * net_input().  ACKs the stack deferred are flushed once per batch.
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
		struct virtio_net_hdr_v1 h;
		if (n < VNET_HDR_LEN + 14) {
			v->stats.tx_bad++;
		} else {
			memcpy(&h, v->frame, sizeof(h));
			uint8_t *f = v->frame + VNET_HDR_LEN;
			size_t flen = n - VNET_HDR_LEN;
			bool ok = true;
			if (h.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM)
				ok = net_finish_csum(f, flen, h.csum_start, h.csum_offset) == 0;
			if (ok && v->ns) {
				v->stats.tx_frames++;
				net_input(v->ns, f, flen);
			} else {
				v->stats.tx_bad++;
			}
		}
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
	if (q == TXQ)
		vnet_tx(to_vnet(dev));
	/* RXQ: new buffers; frames are only produced by the stack. */
}

void vnet_output(void *opaque, const void *frame, size_t len)
{
	struct vnet *v = opaque;
	struct vdev *dev = &v->vdev;
	if (len > VNET_FRAME_MAX)
		return;
	vdev_queue_lock(dev);
	if (!vdev_running(dev))
		goto out;
	struct virtqueue *vq = &dev->vq[RXQ];
	bool mrg = vdev_has_feature(dev, VIRTIO_NET_F_MRG_RXBUF);
	size_t total = VNET_HDR_LEN + len, room = 0;
	for (unsigned i = 0; i < v->nrx; i++)
		room += v->rx[i].write_len;
	while (room < total && v->nrx < (mrg ? VNET_RX_CHAINS : 1u)) {
		if (vq_pop(vq, &v->rx[v->nrx]) <= 0)
			break;
		room += v->rx[v->nrx++].write_len;
	}
	if (room < total) {
		v->stats.rx_dropped_nobuf++;
		if (!mrg && v->nrx == 1 && v->rx[0].write_len < total) {
			/* A buffer too small for any frame we send: give it back empty. */
			vq_push(vq, &v->rx[0], 0);
			v->nrx = 0;
			vdev_signal_used(dev, vq);
		}
		goto out;
	}
	struct virtio_net_hdr_v1 h;
	memset(&h, 0, sizeof(h));
	h.gso_type = VIRTIO_NET_HDR_GSO_NONE;
	const uint8_t *src = frame;
	size_t off = 0;	/* bytes of (header + frame) written */
	unsigned used = 0;
	uint32_t wrote[VNET_RX_CHAINS];
	while (off < total) {
		struct vq_chain *c = &v->rx[used++];
		size_t w = 0;
		if (off == 0) {
			w = vq_chain_write(c, 0, &h, sizeof(h));
			off = w;
		}
		size_t n = MIN(c->write_len - w, total - off);
		vq_chain_write(c, w, src + (off - VNET_HDR_LEN), n);
		off += n;
		wrote[used - 1] = (uint32_t)(w + n);
	}
	h.num_buffers = (uint16_t)used;
	vq_chain_write(&v->rx[0], offsetof(struct virtio_net_hdr_v1, num_buffers), &h.num_buffers,
		       sizeof(h.num_buffers));
	for (unsigned i = 0; i < used; i++)
		vq_push(vq, &v->rx[i], wrote[i]);
	memmove(&v->rx[0], &v->rx[used], (v->nrx - used) * sizeof(v->rx[0]));
	v->nrx -= used;
	v->stats.rx_frames++;
	vdev_signal_used(dev, vq);
out:
	vdev_queue_unlock(dev);
}

static void vnet_reset(struct vdev *dev)
{
	to_vnet(dev)->nrx = 0;	/* vq_reset dropped the in-flight chains */
}

static const struct vdev_ops vnet_ops = {
	.name = "net",
	.device_id = VIRTIO_ID_NET,
	.features = (1ull << VIRTIO_NET_F_MAC) | (1ull << VIRTIO_NET_F_MTU) |
		    (1ull << VIRTIO_NET_F_STATUS) | (1ull << VIRTIO_NET_F_MRG_RXBUF) |
		    (1ull << VIRTIO_NET_F_CSUM) | (1ull << VIRTIO_NET_F_HOST_TSO4) |
		    (1ull << VIRTIO_NET_F_HOST_TSO6),
	.nqueues = 2,
	.queue_max = VNET_QUEUE_SIZE,
	.config_len = sizeof(struct virtio_net_config),
	.cfg_read = vnet_cfg_read,
	.notify = vnet_notify,
	.reset = vnet_reset,
};

struct vnet *vnet_create(const struct dev_env *env, uint64_t base, const uint8_t mac[6],
			 unsigned mtu)
{
	if (mtu < 68 || mtu > 65520)
		return NULL;
	struct vnet *v = calloc(1, sizeof(*v));
	if (!v)
		return NULL;
	memcpy(v->mac, mac, 6);
	v->mtu = (uint16_t)mtu;
	if (vdev_init(&v->vdev, &vnet_ops, env, base) < 0) {
		free(v);
		return NULL;
	}
	return v;
}

void vnet_set_stack(struct vnet *v, struct net_stack *ns)
{
	v->ns = ns;
}

void vnet_destroy(struct vnet *v)
{
	if (!v)
		return;
	vdev_fini(&v->vdev);
	free(v);
}
