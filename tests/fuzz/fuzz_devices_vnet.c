/* tests/fuzz/fuzz_devices_vnet.c - libFuzzer over virtio-net
 * (devices/virtio/net.c) in front of the real stack, driven by the pretend
 * guest driver.
 *
 * The input chooses the features the guest acks (any subset of what the
 * device offers, so the guest-side offloads are on or off) and then a list
 * of records: a frame the guest transmits behind a header it wrote (flags,
 * checksum offsets, GSO fields: whatever the bytes say), receive buffers
 * of some size posted, a TCP super-segment the stack hands the device with
 * a GSO description (well formed or lying), or the used receive buffers
 * read back (the stack's TCP data waits for room: net_set_room, as the
 * VMM wires it).  ASan/UBSan catch any access outside the frame or guest RAM;
 * the asserts check that every receive completion fits its buffer and
 * that a frame's first buffer carries a sane num_buffers.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <linux/virtio_config.h>
#include <linux/virtio_net.h>

#include "common/log.h"
#include "devices/virtio/net.h"
#include "net/net.h"
#include "tests/harness/virtio_driver.h"

#define RAM (4u << 20)

/* Run the device's queue work for q on this thread, as the loop would. */
static void kick(struct vnet *v, unsigned q)
{
	vdev_queue_lock(&v->vdev);
	v->vdev.ops->notify(&v->vdev, q);
	vdev_queue_unlock(&v->vdev);
}

static bool rx_room(void *opaque, size_t len)
{
	return vnet_rx_room(opaque, len);
}

static void drain_rx(struct vdrv *d)
{
	void *data;
	uint32_t len;
	while (vdrv_used_buf(d, 0, &data, &len) == 1)
		assert(len <= 65536 + VNET_HDR_LEN);
}

/* One record: type, then up to 65535 bytes of its own. */
static void record(struct vdrv *d, struct vnet *v, uint8_t type, const uint8_t *p, size_t n)
{
	static uint8_t frame[70000];
	switch (type % 4) {
	case 0:	/* guest transmits header + frame */
		if (n && vdrv_send(d, 1, p, (uint32_t)n) >= 0) {
			kick(v, 1);
			uint32_t id, l;
			while (vdrv_used(d, 1, &id, &l) == 1)
				;
		}
		break;
	case 1:	/* receive buffers */
		if (n >= 2) {
			vdrv_post_rx(d, 0, p[0] % 16u + 1, 16u + (uint32_t)p[1] * 64u);
			kick(v, 0);	/* the stack may send what waited for room */
		}
		break;
	case 2: {	/* a super-segment from the stack */
		if (n < 8)
			break;
		struct net_gso g = {
			.gso_size = (uint16_t)(p[0] | p[1] << 8),
			.hdr_len = (uint16_t)(p[2] | p[3] << 8),
			.csum_start = (uint16_t)(p[4] | p[5] << 8),
			.csum_offset = (uint16_t)(p[6] & 31),
			.v6 = p[7] & 1,
		};
		/* Mostly near-valid descriptions, so the segmenting path runs. */
		if (p[7] & 2) {
			g.csum_start = g.v6 ? 54 : 34;
			g.csum_offset = 16;
			g.hdr_len = (uint16_t)(g.csum_start + 20 + (p[3] & 40));
			g.gso_size = (uint16_t)(1 + (g.gso_size % 9000));
		}
		size_t len = n - 8;
		memcpy(frame, p + 8, len);
		vnet_output_gso(v, frame, len, &g);
		break;
	}
	default:
		drain_rx(d);
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool init;
	if (!init) {
		log_set_level(LOG_ERR);
		init = true;
	}
	if (size < 8)
		return 0;
	uint64_t want;
	memcpy(&want, data, 8);
	data += 8;
	size -= 8;
	struct vdrv *d = calloc(1, sizeof(*d));
	struct policy *pol = calloc(1, sizeof(*pol));
	assert(d && pol);
	assert(vdrv_init(d, RAM) == 0);
	static const uint8_t mac[6] = { 0x52, 0x54, 0, 0x12, 0x34, 0x56 };
	struct vnet *v;
	int made = vnet_create(&d->env, VIRTIO_MMIO_BASE, mac, 1500, &v);
	assert(made == 0);
	(void)made;
	policy_init(pol);
	struct net_config cfg;
	net_config_default(&cfg);
	cfg.policy = pol;
	struct net_stack *ns;
	assert(net_create(&ns, NULL, &cfg, vnet_output, v) == 0);
	net_set_gso_output(ns, vnet_output_gso);
	net_set_room(ns, rx_room);
	vnet_set_stack(v, ns);
	vdrv_attach(d, &v->vdev.region);
	if (vdrv_negotiate(d, want | (1ull << VIRTIO_F_VERSION_1), NULL) == 0 &&
	    vdrv_queue_setup(d, 0, 64) == 0 && vdrv_queue_setup(d, 1, 64) == 0) {
		vdrv_driver_ok(d);
		while (size >= 3) {
			uint8_t type = data[0];
			size_t n = (size_t)(data[1] | data[2] << 8);
			data += 3;
			size -= 3;
			if (n > size)
				n = size;
			record(d, v, type, data, n);
			data += n;
			size -= n;
		}
		drain_rx(d);
	}
	vnet_set_stack(v, NULL);
	net_destroy(ns);
	vnet_destroy(v);
	vdrv_fini(d);
	free(pol);
	free(d);
	return 0;
}
