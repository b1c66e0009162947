/* tests/unit/test_devices_net.c - virtio-net in front of the stack, driven by
 * the pretend guest driver: config space, a frame each way, a frame spread
 * over mergeable receive buffers, partial checksums completed, a lying
 * checksum offset refused, and starvation (no receive buffers) dropping
 * frames without returning half-written buffers; the guest-side offloads:
 * the device tells the stack at DRIVER_OK what the guest acked, and the
 * stack's TCP data reaches a guest that acked GUEST_TSO4 as one
 * super-segment (NEEDS_CSUM, GSO type and size), one with GUEST_CSUM only
 * or none as MSS-sized frames (checksums partial or complete); a frame for
 * an offload the guest did not ack, or whose description does not fit it,
 * is dropped and counted; a reset takes the offloads back; TCP data waits
 * for receive buffers the guest has not posted yet instead of being
 * dropped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <linux/virtio_ids.h>
#include <linux/virtio_net.h>

#include "common/util.h"
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

static bool rx_room(void *opaque, size_t len)
{
	return vnet_rx_room(opaque, len);
}

static int setup_feat(void **state, uint64_t feats)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	assert_int_equal(vdrv_init(&f->d, 4 << 20), 0);
	assert_int_equal(vnet_create(&f->d.env, VIRTIO_MMIO_BASE, guest_mac, 1500, &f->v), 0);
	struct vnet *none;
	assert_int_equal(vnet_create(&f->d.env, VIRTIO_MMIO_BASE, guest_mac, 67, &none), -EINVAL);
	assert_null(none);
	policy_init(&f->pol);
	net_config_default(&f->cfg);
	f->cfg.policy = &f->pol;
	assert_int_equal(net_create(&f->ns, NULL, &f->cfg, vnet_output, f->v), 0);
	net_set_gso_output(f->ns, vnet_output_gso);	/* as the VMM wires it */
	net_set_room(f->ns, rx_room);
	vnet_set_stack(f->v, f->ns);
	assert_int_equal(net_offloads(f->ns), 0);	/* nothing before DRIVER_OK */
	assert_int_equal(vdrv_start(&f->d, &f->v->vdev), 0);
	assert_int_equal(vdrv_read32(&f->d, VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_NET);
	assert_int_equal(vdrv_negotiate(&f->d, feats, NULL), 0);
	assert_int_equal(vdrv_queue_setup(&f->d, 0, 64), 0);
	assert_int_equal(vdrv_queue_setup(&f->d, 1, 64), 0);
	vdrv_driver_ok(&f->d);
	*state = f;
	return 0;
}

static struct stream *taken;	/* the guest's connection to port 443 */

static int take(void *opaque, const uint8_t ip[16], uint16_t port, struct stream *s, int *sock)
{
	(void)opaque;
	(void)ip;
	(void)sock;
	if (port != 443)
		return 0;
	taken = s;
	return 1;
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

/* ---- guest-side offloads: TCP super-segments from the stack ---- */

static int setup_tso(void **state)
{
	return setup_feat(state, (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_NET_F_MAC) |
				 (1ull << VIRTIO_NET_F_MRG_RXBUF) | (1ull << VIRTIO_NET_F_CSUM) |
				 (1ull << VIRTIO_NET_F_GUEST_CSUM) | (1ull << VIRTIO_NET_F_GUEST_TSO4));
}

#define GSO_MSS 1460u
#define GSO_PAY 10000u
#define GSO_SEQ 0xfffff000u	/* wraps inside the super-segment */

/* A super-segment as net/tcp.c builds it: 10.0.2.2:80 -> 10.0.2.15:4000
 * (or fd4b::2 -> fd4b::15 for v6), GSO_PAY bytes, PSH|ACK, the TCP
 * checksum holding only the pseudo-header sum over the whole length. */
static size_t gso_frame_n(uint8_t *fr, bool v6, struct net_gso *g, size_t pay)
{
	size_t l3 = v6 ? 40 : 20, cs = 14 + l3, hl = cs + 20, len = hl + pay;
	memset(fr, 0, hl);
	memcpy(fr, nf_guest_mac, 6);
	wr16(fr + 12, v6 ? 0x86dd : 0x0800);
	uint8_t *ip = fr + 14, s6[16] = { 0xfd, 0x4b, [15] = 2 }, d6[16] = { 0xfd, 0x4b, [15] = 0x15 };
	if (v6) {
		ip[0] = 0x60;
		wr16(ip + 4, (uint16_t)(len - 14 - 40));
		ip[6] = 6;
		ip[7] = 64;
		memcpy(ip + 8, s6, 16);
		memcpy(ip + 24, d6, 16);
	} else {
		ip[0] = 0x45;
		wr16(ip + 2, (uint16_t)(len - 14));
		wr16(ip + 4, 0x1234);
		ip[8] = 64;
		ip[9] = 6;
		wr32(ip + 12, 0x0A000202);
		wr32(ip + 16, 0x0A00020F);
		uint16_t c = csum_fold(csum_partial(ip, 20, 0));
		memcpy(ip + 10, &c, 2);
	}
	uint8_t *t = fr + cs;
	wr16(t, 80);
	wr16(t + 2, 4000);
	wr32(t + 4, GSO_SEQ);
	wr32(t + 8, 1000);
	t[12] = 5 << 4;
	t[13] = 0x18;
	wr16(t + 14, 500);
	for (size_t i = 0; i < pay; i++)
		fr[hl + i] = (uint8_t)(i * 7 + i / 251);
	uint32_t seed = v6 ? csum_pseudo6(s6, d6, 6, (uint32_t)(len - cs))
			   : csum_pseudo4(0x0A000202, 0x0A00020F, 6, (uint16_t)(len - cs));
	uint16_t c = (uint16_t)~csum_fold(seed);
	memcpy(t + 16, &c, 2);
	*g = (struct net_gso){ .gso_size = pay > GSO_MSS ? GSO_MSS : 0, .csum_start = (uint16_t)cs,
			       .csum_offset = 16, .hdr_len = (uint16_t)hl, .v6 = v6 };
	return len;
}

static size_t gso_frame(uint8_t *fr, bool v6, struct net_gso *g)
{
	return gso_frame_n(fr, v6, g, GSO_PAY);
}

/* Gather one received frame (header + mergeable buffers) into buf. */
static size_t rx_gather(struct fixture *f, struct virtio_net_hdr_v1 *h, uint8_t *buf, size_t cap)
{
	void *data;
	uint32_t l;
	if (vdrv_used_buf(&f->d, 0, &data, &l) != 1)
		return 0;
	memcpy(h, data, sizeof(*h));
	size_t have = l - VNET_HDR_LEN;
	assert_true(have <= cap);
	memcpy(buf, (uint8_t *)data + VNET_HDR_LEN, have);
	for (unsigned i = 1; i < h->num_buffers; i++) {
		assert_int_equal(vdrv_used_buf(&f->d, 0, &data, &l), 1);
		assert_true(have + l <= cap);
		memcpy(buf + have, data, l);
		have += l;
	}
	return have;
}

/* The TCP checksum of an IPv4 or IPv6 frame verifies. */
static bool tcp_csum_ok(const uint8_t *fr, size_t len, bool v6)
{
	size_t cs = 14 + (v6 ? 40u : 20u);
	uint32_t seed = v6 ? csum_pseudo6(fr + 14 + 8, fr + 14 + 24, 6, (uint32_t)(len - cs))
			   : csum_pseudo4(rd32(fr + 14 + 12), rd32(fr + 14 + 16), 6, (uint16_t)(len - cs));
	return csum_fold(csum_partial(fr + cs, len - cs, seed)) == 0;
}

static void test_gso_whole_to_tso_guest(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(vdrv_post_rx(&f->d, 0, 16, 4096), 16);
	static uint8_t fr[GSO_PAY + 200], got[GSO_PAY + 200];
	struct net_gso g;
	size_t len = gso_frame(fr, false, &g);
	vnet_output_gso(f->v, fr, len, &g);
	struct virtio_net_hdr_v1 h;
	size_t n = rx_gather(f, &h, got, sizeof(got));
	assert_int_equal(n, len);
	assert_int_equal(h.flags, VIRTIO_NET_HDR_F_NEEDS_CSUM);
	assert_int_equal(h.gso_type, VIRTIO_NET_HDR_GSO_TCPV4);
	assert_int_equal(h.gso_size, GSO_MSS);
	assert_int_equal(h.csum_start, 34);
	assert_int_equal(h.csum_offset, 16);
	assert_int_equal(h.hdr_len, 54);
	/* What the guest's stack does with NEEDS_CSUM gives a valid segment. */
	assert_int_equal(net_finish_csum(got, n, h.csum_start, h.csum_offset), 0);
	assert_true(tcp_csum_ok(got, n, false));
	assert_memory_equal(got + 54, fr + 54, GSO_PAY);
	assert_int_equal(f->v->stats.rx_gso, 1);
	assert_int_equal(rx_gather(f, &h, got, sizeof(got)), 0);
	/* A complete frame (the echo reply) is marked DATA_VALID. */
	uint8_t e[200];
	tx(f, e, echo_frame(f, e, 56), NULL);
	assert_true(rx_gather(f, &h, got, sizeof(got)) > 0);
	assert_int_equal(h.flags, VIRTIO_NET_HDR_F_DATA_VALID);
	assert_int_equal(h.gso_type, VIRTIO_NET_HDR_GSO_NONE);
}

/* A guest TCP connection to port 443 of a public address, kept by the test
 * as a stream (the stack's handshake through both queues): the stack's
 * initial sequence number. */
static uint32_t open_flow(struct fixture *f)
{
	taken = NULL;
	net_set_stream_handler(f->ns, take, NULL);
	assert_int_equal(vdrv_post_rx(&f->d, 0, 1, 2048), 1);
	uint8_t fr[200], got[2048];
	size_t l = nf_tcp(fr, f->cfg.gateway_mac, 0x5DB8D822, 4000, 443, 100, 0, 0x02, 65535, NULL, 0, true);
	tx(f, fr, l, NULL);
	struct virtio_net_hdr_v1 h;
	assert_true(rx_gather(f, &h, got, sizeof(got)) >= 54);
	assert_int_equal(got[47], 0x12);	/* SYN|ACK */
	assert_non_null(taken);
	uint32_t iss = rd32(got + 38);
	l = nf_tcp(fr, f->cfg.gateway_mac, 0x5DB8D822, 4000, 443, 101, iss + 1, 0x10, 65535, NULL, 0, false);
	tx(f, fr, l, NULL);
	return iss;
}

/* The stack's data for the guest, as the guest's driver receives it:
 * NEEDS_CSUM only when the guest acked GUEST_CSUM, a super-segment only
 * with GUEST_TSO4 too, otherwise MSS-sized frames; either way every byte in
 * order, valid once the guest completes what it was told to, PSH on the
 * last frame only.  Returns how many frames came. */
static unsigned check_tcp_data(struct fixture *f, uint32_t iss, const uint8_t *data, size_t total)
{
	static uint8_t got[GSO_PAY + 200];
	bool csum = vdev_has_feature(&f->v->vdev, VIRTIO_NET_F_GUEST_CSUM);
	bool tso = csum && vdev_has_feature(&f->v->vdev, VIRTIO_NET_F_GUEST_TSO4);
	struct virtio_net_hdr_v1 h;
	size_t off = 0, n;
	unsigned k = 0;
	while ((n = rx_gather(f, &h, got, sizeof(got))) > 0) {
		size_t pay = n - 54;
		assert_true(pay <= (tso ? total : GSO_MSS));
		assert_int_equal(!!(h.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM), csum);
		assert_int_equal(h.gso_type, pay > GSO_MSS ? VIRTIO_NET_HDR_GSO_TCPV4 : VIRTIO_NET_HDR_GSO_NONE);
		if (h.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM)
			assert_int_equal(net_finish_csum(got, n, h.csum_start, h.csum_offset), 0);
		assert_true(tcp_csum_ok(got, n, false));
		assert_int_equal(csum_fold(csum_partial(got + 14, 20, 0)), 0);
		assert_int_equal(rd16(got + 14 + 2), 20 + 20 + pay);
		assert_int_equal(rd32(got + 34 + 4), (uint32_t)(iss + 1 + off));
		assert_int_equal(got[34 + 13], off + pay == total ? 0x18 : 0x10);
		assert_memory_equal(got + 54, data + off, pay);
		off += pay;
		k++;
	}
	assert_int_equal(off, total);
	assert_int_equal(f->v->stats.rx_bad_gso, 0);
	return k;
}

static void stream_data(uint8_t *d, size_t n)
{
	for (size_t i = 0; i < n; i++)
		d[i] = (uint8_t)(i * 7 + i / 251);
}

/* A guest that acked no receive offload: the stack itself sends MSS-sized
 * segments with full checksums. */
static void test_tcp_segments_for_plain_guest(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(net_offloads(f->ns), 0);
	uint32_t iss = open_flow(f);
	assert_int_equal(vdrv_post_rx(&f->d, 0, 32, 2048), 32);
	static uint8_t d[GSO_PAY];
	stream_data(d, sizeof(d));
	assert_int_equal(taken->ops->write(taken, d, sizeof(d)), (ssize_t)sizeof(d));
	assert_int_equal(check_tcp_data(f, iss, d, sizeof(d)), (GSO_PAY + GSO_MSS - 1) / GSO_MSS);
	assert_int_equal(f->v->stats.rx_gso, 0);
	taken->ops->close(taken);
}

/* A guest that acked GUEST_CSUM and GUEST_TSO4: one super-segment. */
static void test_tcp_super_segment_for_tso_guest(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(net_offloads(f->ns), NET_OFFLOAD_CSUM | NET_OFFLOAD_TSO4);
	uint32_t iss = open_flow(f);
	assert_int_equal(vdrv_post_rx(&f->d, 0, 16, 4096), 16);
	static uint8_t d[GSO_PAY];
	stream_data(d, sizeof(d));
	assert_int_equal(taken->ops->write(taken, d, sizeof(d)), (ssize_t)sizeof(d));
	assert_int_equal(check_tcp_data(f, iss, d, sizeof(d)), 1);
	assert_int_equal(f->v->stats.rx_gso, 1);
	taken->ops->close(taken);
}

/* A guest that has not posted room for the data: the stack holds it back
 * (nothing dropped, nothing half-written) and sends it whole once the
 * guest posts buffers and kicks. */
static void test_tcp_waits_for_rx_buffers(void **state)
{
	struct fixture *f = *state;
	uint32_t iss = open_flow(f);
	assert_int_equal(vdrv_post_rx(&f->d, 0, 2, 2048), 2);
	vdrv_run(&f->d);
	static uint8_t d[GSO_PAY];
	stream_data(d, sizeof(d));
	assert_int_equal(taken->ops->write(taken, d, sizeof(d)), (ssize_t)sizeof(d));
	void *data;
	uint32_t l;
	assert_int_equal(vdrv_used_buf(&f->d, 0, &data, &l), 0);
	assert_int_equal(f->v->stats.rx_dropped_nobuf, 0);
	assert_true(f->v->room_wanted);
	assert_int_equal(vdrv_post_rx(&f->d, 0, 6, 2048), 6);
	vdrv_kick(&f->d, 0);
	vdrv_run(&f->d);
	assert_int_equal(check_tcp_data(f, iss, d, sizeof(d)), 1);
	assert_int_equal(f->v->stats.rx_dropped_nobuf, 0);
	assert_false(f->v->room_wanted);
	taken->ops->close(taken);
}

/* One small segment: its checksum partial for a guest with GUEST_CSUM,
 * complete for any other. */
static void test_csum_only_segment(void **state)
{
	struct fixture *f = *state;
	uint32_t iss = open_flow(f);
	assert_int_equal(vdrv_post_rx(&f->d, 0, 4, 2048), 4);
	uint8_t d[700];
	stream_data(d, sizeof(d));
	assert_int_equal(taken->ops->write(taken, d, sizeof(d)), (ssize_t)sizeof(d));
	assert_int_equal(check_tcp_data(f, iss, d, sizeof(d)), 1);
	taken->ops->close(taken);
}

/* The device does not take the stack's frames on trust: an offload the
 * guest did not ack (an IPv6 super-segment without GUEST_TSO6, any offload
 * after a reset) is dropped and counted; DRIVER_OK again tells the stack. */
static void test_offload_not_acked_dropped(void **state)
{
	struct fixture *f = *state;	/* TSO4 acked, TSO6 not */
	assert_int_equal(vdrv_post_rx(&f->d, 0, 16, 4096), 16);
	static uint8_t fr[GSO_PAY + 200];
	struct net_gso g;
	size_t len = gso_frame(fr, true, &g);
	vnet_output_gso(f->v, fr, len, &g);
	void *data;
	uint32_t l;
	assert_int_equal(vdrv_used_buf(&f->d, 0, &data, &l), 0);
	assert_int_equal(f->v->stats.rx_bad_gso, 1);
	vdrv_write32(&f->d, VIRTIO_MMIO_STATUS, 0);	/* the driver resets the device */
	assert_int_equal(net_offloads(f->ns), 0);
}

static void test_gso_lying_description_dropped(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(vdrv_post_rx(&f->d, 0, 16, 4096), 16);
	static uint8_t fr[GSO_PAY + 200];
	struct net_gso g;
	size_t len = gso_frame(fr, false, &g);
	struct net_gso bad = g;
	bad.hdr_len = (uint16_t)(len + 1);
	vnet_output_gso(f->v, fr, len, &bad);
	bad = g;
	bad.gso_size = 0;
	vnet_output_gso(f->v, fr, len, &bad);
	bad = g;
	bad.csum_start = 14;
	vnet_output_gso(f->v, fr, len, &bad);
	void *data;
	uint32_t l;
	assert_int_equal(vdrv_used_buf(&f->d, 0, &data, &l), 0);
	assert_int_equal(f->v->stats.rx_bad_gso, 3);
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
		T(test_tcp_segments_for_plain_guest),
		T(test_csum_only_segment),
		cmocka_unit_test_setup_teardown(test_gso_whole_to_tso_guest, setup_tso, teardown),
		cmocka_unit_test_setup_teardown(test_tcp_super_segment_for_tso_guest, setup_tso, teardown),
		cmocka_unit_test_setup_teardown(test_offload_not_acked_dropped, setup_tso, teardown),
		cmocka_unit_test_setup_teardown(test_gso_lying_description_dropped, setup_tso, teardown),
		cmocka_unit_test_setup_teardown(test_tcp_waits_for_rx_buffers, setup_tso, teardown),
		cmocka_unit_test_setup_teardown(test_csum_only_segment, setup_tso, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
