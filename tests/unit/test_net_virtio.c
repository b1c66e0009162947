/* tests/unit/test_net_virtio.c - virtio-net in front of the stack, driven by
 * the pretend guest driver: config space, a frame each way, a frame spread
 * over mergeable receive buffers, partial checksums completed, a lying
 * checksum offset refused, and starvation (no receive buffers) dropping
 * frames without returning half-written buffers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <linux/virtio_ids.h>
#include <linux/virtio_net.h>

#include "devices/virtio/net.h"
#include "net/internal.h"
#include "tests/fuzz/net_frames.h"
#include "tests/harness/virtio_driver.h"

struct fixture {
	struct vdrv d;
	struct vnet *v;
	struct net_stack *ns;
	struct policy pol;
	struct net_config cfg;
};

static const uint8_t guest_mac[6] = { 0x52, 0x54, 0x00, 0xaa, 0xbb, 0xcc };

static int setup_feat(void **state, uint64_t feats)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	assert_int_equal(vdrv_init(&f->d, 4 << 20), 0);
	f->v = vnet_create(&f->d.env, VIRTIO_MMIO_BASE, guest_mac, 1500);
	assert_non_null(f->v);
	policy_init(&f->pol);
	net_config_default(&f->cfg);
	f->cfg.policy = &f->pol;
	assert_int_equal(net_create(&f->ns, NULL, &f->cfg, vnet_output, f->v), 0);
	vnet_set_stack(f->v, f->ns);
	assert_int_equal(vdrv_start(&f->d, &f->v->vdev), 0);
	assert_int_equal(vdrv_read32(&f->d, VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_NET);
	assert_int_equal(vdrv_negotiate(&f->d, feats, NULL), 0);
	assert_int_equal(vdrv_queue_setup(&f->d, 0, 64), 0);
	assert_int_equal(vdrv_queue_setup(&f->d, 1, 64), 0);
	vdrv_driver_ok(&f->d);
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return setup_feat(state, (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_NET_F_MAC) |
				 (1ull << VIRTIO_NET_F_MRG_RXBUF) | (1ull << VIRTIO_NET_F_CSUM));
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	vnet_destroy(f->v);
	net_destroy(f->ns);
	vdrv_fini(&f->d);
	free(f);
	return 0;
}

/* Send frame (with a zero or given header) on the transmit queue. */
static void tx(struct fixture *f, const void *frame, size_t len, const struct virtio_net_hdr_v1 *h)
{
	static uint8_t buf[VNET_HDR_LEN + 70000];
	struct virtio_net_hdr_v1 zero = { 0 };
	memcpy(buf, h ? h : &zero, VNET_HDR_LEN);
	memcpy(buf + VNET_HDR_LEN, frame, len);
	assert_true(vdrv_send(&f->d, 1, buf, (uint32_t)(VNET_HDR_LEN + len)) >= 0);
	vdrv_run(&f->d);
	uint32_t id, l;
	assert_int_equal(vdrv_used(&f->d, 1, &id, &l), 1);
}

static void test_config(void **state)
{
	struct fixture *f = *state;
	uint8_t mac[6];
	for (int i = 0; i < 6; i++)
		vdrv_cfg_read(&f->d, (uint32_t)i, &mac[i], 1);
	assert_memory_equal(mac, guest_mac, 6);
	uint16_t mtu;
	vdrv_cfg_read(&f->d, offsetof(struct virtio_net_config, mtu), &mtu, 2);
	assert_int_equal(mtu, 1500);
}

static size_t echo_frame(struct fixture *f, uint8_t *fr, size_t payload)
{
	memcpy(fr, f->cfg.gateway_mac, 6);
	memcpy(fr + 6, nf_guest_mac, 6);
	wr16(fr + 12, 0x0800);
	uint8_t *ip = fr + 14;
	memset(ip, 0, 20);
	ip[0] = 0x45;
	ip[8] = 64;
	ip[9] = 1;
	wr32(ip + 12, 0x0A00020F);
	wr32(ip + 16, 0x0A000202);
	wr16(ip + 2, (uint16_t)(20 + 8 + payload));
	uint8_t *ic = ip + 20;
	memset(ic, 0, 8);
	ic[0] = 8;
	for (size_t i = 0; i < payload; i++)
		ic[8 + i] = (uint8_t)(i * 13);
	size_t len = 14 + 28 + payload;
	nf_fix_checksums(fr, len);
	return len;
}

static void test_echo_one_buffer(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(vdrv_post_rx(&f->d, 0, 4, 2048), 4);
	uint8_t fr[2000];
	size_t len = echo_frame(f, fr, 56);
	tx(f, fr, len, NULL);
	void *data;
	uint32_t l;
	assert_int_equal(vdrv_used_buf(&f->d, 0, &data, &l), 1);
	assert_int_equal(l, VNET_HDR_LEN + len);
	struct virtio_net_hdr_v1 h;
	memcpy(&h, data, sizeof(h));
	assert_int_equal(h.num_buffers, 1);
	uint8_t *r = (uint8_t *)data + VNET_HDR_LEN;
	assert_memory_equal(r, nf_guest_mac, 6);
	assert_int_equal(r[14 + 20], 0);	/* echo reply */
	assert_memory_equal(r + 42, fr + 42, 56);
	assert_true(vdrv_irq(&f->d) > 0);
}

static void test_mergeable_buffers(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(vdrv_post_rx(&f->d, 0, 16, 256), 16);
	uint8_t fr[2000];
	size_t len = echo_frame(f, fr, 1000);
	tx(f, fr, len, NULL);
	uint8_t got[2000];
	size_t have = 0;
	unsigned nbuf = 0, want = 0;
	void *data;
	uint32_t l;
	while (vdrv_used_buf(&f->d, 0, &data, &l) == 1) {
		if (nbuf == 0) {
			struct virtio_net_hdr_v1 h;
			memcpy(&h, data, sizeof(h));
			want = h.num_buffers;
			memcpy(got, (uint8_t *)data + VNET_HDR_LEN, l - VNET_HDR_LEN);
			have = l - VNET_HDR_LEN;
		} else {
			memcpy(got + have, data, l);
			have += l;
		}
		nbuf++;
	}
	assert_int_equal(nbuf, (VNET_HDR_LEN + len + 255) / 256);
	assert_int_equal(want, nbuf);
	assert_int_equal(have, len);
	assert_memory_equal(got + 42, fr + 42, 1000);
}

static void test_partial_checksum(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(vdrv_post_rx(&f->d, 0, 4, 2048), 4);
	uint8_t fr[200];
	size_t len = nf_tcp(fr, f->cfg.gateway_mac, 0xA9FEA9FE, 3333, 80, 77, 0, 0x02, 65535, NULL, 0, true);
	/* Leave the TCP checksum partial: pseudo-header sum only. */
	uint8_t *t = fr + 34;
	size_t tl = len - 34;
	uint32_t s = 0x0A00 + 0x020F + 0xA9FE + 0xA9FE + 6 + (uint32_t)tl;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	wr16(t + 16, (uint16_t)s);
	struct virtio_net_hdr_v1 h = { .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM, .csum_start = 34,
				       .csum_offset = 16 };
	tx(f, fr, len, &h);
	void *data;
	uint32_t l;
	assert_int_equal(vdrv_used_buf(&f->d, 0, &data, &l), 1);
	uint8_t *r = (uint8_t *)data + VNET_HDR_LEN;
	assert_int_equal(r[34 + 13], 0x14);	/* RST|ACK: the SYN was accepted and denied */
	assert_int_equal(f->ns->stats.drop_tcp_csum, 0);
	/* A checksum offset outside the frame is refused, nothing answered. */
	h.csum_start = (uint16_t)(len - 1);
	tx(f, fr, len, &h);
	assert_int_equal(vdrv_used_buf(&f->d, 0, &data, &l), 0);
	assert_int_equal(f->v->stats.tx_bad, 1);
}

static void test_starved_rx(void **state)
{
	struct fixture *f = *state;
	uint8_t fr[2000];
	size_t len = echo_frame(f, fr, 1000);
	/* Two 256-byte buffers cannot hold the reply: dropped, buffers kept. */
	assert_int_equal(vdrv_post_rx(&f->d, 0, 2, 256), 2);
	tx(f, fr, len, NULL);
	void *data;
	uint32_t l;
	assert_int_equal(vdrv_used_buf(&f->d, 0, &data, &l), 0);
	assert_int_equal(f->v->stats.rx_dropped_nobuf, 1);
	/* More buffers: the next reply uses the kept ones first, complete. */
	assert_int_equal(vdrv_post_rx(&f->d, 0, 8, 256), 8);
	tx(f, fr, len, NULL);
	unsigned n = 0;
	while (vdrv_used_buf(&f->d, 0, &data, &l) == 1)
		n++;
	assert_int_equal(n, (VNET_HDR_LEN + len + 255) / 256);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_config),
		T(test_echo_one_buffer),
		T(test_mergeable_buffers),
		T(test_partial_checksum),
		T(test_starved_rx),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
