/* tests/fuzz/fuzz_net_input.c - libFuzzer: hostile frames into net_input().
 *
 * The stack runs without a loop (no host sockets), with a stream consumer
 * that takes every TCP flow, so TCP flows exist without the network: two
 * flows are opened by a clean handshake first (port 1000 without SACK,
 * 1001 with SACK permitted, both to 93.184.216.34:443, guest sequence
 * numbers from 101), then the input is split into frames (2-byte length,
 * 1 flag byte: bit 0 fixes the checksums so the fuzzer gets past them and
 * fills an ACK field of 0 on those flows with the flow's snd_una, since
 * our initial sequence number is random; bit 1 runs the timers with the
 * clock advanced; bit 2 makes the consumer read/write/close).  Out-of-order
 * segments (SACK) and IPv4 fragments (reassembly) have seeds in the corpus.
 * Every frame output is checked for a sane length.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/internal.h"
#include "tests/fuzz/net_frames.h"

static void input(struct net_stack *s, const void *f, size_t len)
{
	net_input(s, f, len);
	net_flush(s);
}


static struct stream *streams[8];
static unsigned nstreams;

static void out(void *opaque, const void *frame, size_t len)
{
	(void)opaque;
	(void)frame;
	if (len < 14 || len > NET_FRAME_MAX)
		abort();
}

static void out_gso(void *opaque, const void *frame, size_t len, const struct net_gso *g)
{
	(void)opaque;
	(void)frame;
	if (len < 14 || len > NET_FRAME_MAX || (g->gso_size == 0 && len > 14 + 65535) ||
	    (size_t)g->csum_start + g->csum_offset + 2 > len || g->hdr_len > len)
		abort();
}

static int take(void *opaque, const uint8_t ip[16], uint16_t port, struct stream *s, int *sock)
{
	(void)opaque;
	(void)ip;
	(void)sock;
	if (port == 1 || nstreams == 8)
		return 0;	/* goes to the policy (no loop: RST) */
	streams[nstreams++] = s;
	return 1;
}

/* An ACK field of 0 on a segment of one of the opened flows becomes the
 * flow's snd_una, so the fuzzer can reach in-window processing. */
static void patch_ack(struct net_stack *ns, uint8_t *f, size_t len)
{
	if (len < 14 + 20 + 20 || rd16(f + 12) != 0x0800 || f[14 + 9] != 6 || (f[14] & 0xf) != 5)
		return;
	uint8_t *t = f + 34;
	uint16_t sport = rd16(t);
	if (rd16(t + 2) != 443 || sport < 1000 || sport > 1001 || rd32(t + 8) != 0)
		return;
	struct tcp_flow *fl = &ns->tcp[sport - 1000];
	if (fl->state == TS_ESTABLISHED)
		wr32(t + 8, fl->snd_una);
}

static void poke_streams(uint8_t how)
{
	static uint8_t buf[200000];
	for (unsigned i = 0; i < nstreams; i++) {
		struct stream *s = streams[i];
		if (!s)
			continue;
		s->ops->read(s, buf, how & 8 ? 10 : sizeof(buf));
		s->ops->write(s, buf, how & 16 ? 3000 : 200000);
		if (how & 128)
			s->ops->want(s, how & 1, how & 2);
		if (how & 32)
			s->ops->shutdown_write(s);
		if (how & 64) {
			s->ops->close(s);
			streams[i] = NULL;
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct policy pol;
	policy_init(&pol);
	struct net_config cfg;
	net_config_default(&cfg);
	cfg.policy = &pol;
	struct net_stack *ns;
	if (net_create(&ns, NULL, &cfg, out, NULL) < 0)
		abort();
	net_set_stream_handler(ns, take, NULL);
	if (size && (data[0] & 1))
		net_set_gso_output(ns, out_gso);	/* half the inputs with segmentation offload */
	nstreams = 0;
	static uint8_t f[NET_FRAME_MAX + 16];
	static const uint8_t sack_syn[12] = { 2, 4, 0x05, 0xb4, 1, 3, 3, 7, 1, 1, 4, 2 };
	for (uint16_t p = 1000; p < 1002; p++) {
		size_t l = nf_tcp_opts(f, cfg.gateway_mac, 0x5DB8D822, p, 443, 100, 0, 0x02, 65535, NULL, 0,
				       sack_syn, p == 1000 ? 8 : 12);
		input(ns, f, l);
		struct tcp_flow *fl = &ns->tcp[p - 1000];
		l = nf_tcp(f, cfg.gateway_mac, 0x5DB8D822, p, 443, 101, fl->iss + 1, 0x10, 65535, NULL, 0, false);
		input(ns, f, l);
	}
	while (size >= 3) {
		size_t len = rd16(data);
		uint8_t flags = data[2];
		data += 3;
		size -= 3;
		if (len > size)
			len = size;
		if (len > NET_FRAME_MAX)
			len = NET_FRAME_MAX;
		memcpy(f, data, len);
		if (flags & 1) {
			patch_ack(ns, f, len);
			nf_fix_checksums(f, len);
		}
		input(ns, f, len);
		if (flags & 2) {
			ns->now += (uint64_t)(flags >> 2) * 100000000ull;
			tcp_tick(ns);
			ip4_frag_tick(ns);
		}
		if (flags & 4)
			poke_streams(flags);
		data += len;
		size -= len;
	}
	for (unsigned i = 0; i < nstreams; i++)
		if (streams[i])
			streams[i]->ops->close(streams[i]);
	net_destroy(ns);
	return 0;
}
