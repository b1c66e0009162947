/* tests/unit/test_net_stack.c - the stack frame by frame, without a loop or
 * host sockets: ARP, DHCP, ICMP echo, malformed frames dropped and counted,
 * denied TCP answered with RST and denied UDP with ICMP, and a TCP flow into
 * a stream consumer (handshake, MSS/window scale, data both ways with
 * correct windows, retransmission, fast retransmit, FIN/half-close, RST);
 * and, on a loop, a flow the handler splices to a socket of its own (what
 * the VMM does with the credential broker's socketpairs). */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <unistd.h>

#include "common/util.h"
#include "net/internal.h"
#include "tests/fuzz/net_frames.h"

static void input(struct net_stack *s, const void *f, size_t len)
{
	net_input(s, f, len);
	net_flush(s);
}


#define MAXF 512
static uint8_t outf[MAXF][2048];
static size_t outlen[MAXF];
static unsigned nout;

static void out(void *opaque, const void *frame, size_t len)
{
	(void)opaque;
	if (nout < MAXF) {
		memcpy(outf[nout], frame, MIN(len, sizeof(outf[0])));
		outlen[nout] = len;
	}
	nout++;
}

static struct policy pol;
static struct net_config cfg;
static struct net_stack *ns;
static struct stream *taken;
static int notified;	/* the taken stream's notify() calls */

static void on_notify(struct stream *s) { (void)s; notified++; }

static int splice_sock = -1;	/* port 8443: the handler's socket, or -1 */

static int take(void *opaque, const uint8_t ip[16], uint16_t port, struct stream *s, int *sock)
{
	(void)opaque;
	(void)ip;
	if (port == 8443) {
		*sock = splice_sock;
		return 2;
	}
	if (port != 443)
		return 0;
	taken = s;
	s->notify = on_notify;
	s->ops->want(s, true, false);	/* a consumer waits to read */
	return 1;
}

static int setup(void **state)
{
	(void)state;
	policy_init(&pol);
	net_config_default(&cfg);
	cfg.policy = &pol;
	assert_int_equal(net_create(&ns, NULL, &cfg, out, NULL), 0);
	net_set_stream_handler(ns, take, NULL);
	nout = 0;
	taken = NULL;
	notified = 0;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	if (taken)
		taken->ops->close(taken);
	net_destroy(ns);
	return 0;
}

/* A stack on a loop is destroyed while the loop lives on (the VMM tears
 * devices down one by one, each running the loop): its timer, DNS poll and
 * flows must not fire into freed memory afterwards (ASan would say). */
static void test_destroy_on_live_loop(void **state)
{
	(void)state;
	struct loop loop;
	assert_int_equal(loop_init(&loop, 64), 0);
	struct policy p;
	struct net_config c;
	policy_init(&p);
	net_config_default(&c);
	c.policy = &p;
	struct net_stack *s;
	assert_int_equal(net_create(&s, &loop, &c, out, NULL), 0);
	loop_run_once(&loop, 0);
	assert_int_equal(s->tick_op.armed, 0);	/* an idle stack sets no timer */
	net_timer_need(s, s->now + NET_TICK_NS);	/* as a new flow would */
	loop_run_once(&loop, 0);
	assert_true(s->tick_op.armed > 0);
	net_destroy(s);
	for (int i = 0; i < 4; i++)	/* past several NET_TICK_NS */
		loop_run_once(&loop, 2 * NET_TICK_NS);
	loop_fini(&loop);
}

static void test_arp(void **state)
{
	(void)state;
	uint8_t f[42] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 0x15, 0x08, 0x06,
			  0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 0x15, 10, 0, 2, 15,
			  0, 0, 0, 0, 0, 0, 10, 0, 2, 2 };
	input(ns, f, sizeof(f));
	assert_int_equal(nout, 1);
	assert_int_equal(rd16(outf[0] + 12), 0x0806);
	assert_int_equal(rd16(outf[0] + 14 + 6), 2);
	assert_memory_equal(outf[0] + 14 + 8, cfg.gateway_mac, 6);
	/* ARP for another address: no answer. */
	f[41] = 3;
	input(ns, f, sizeof(f));
	assert_int_equal(nout, 1);
	/* Truncated. */
	input(ns, f, 30);
	assert_int_equal(nout, 1);
	assert_true(ns->stats.drop_arp >= 2);
}

static size_t dhcp_frame(uint8_t *f, uint8_t type)
{
	memset(f, 0, 400);
	memset(f, 0xff, 6);
	memcpy(f + 6, nf_guest_mac, 6);
	wr16(f + 12, 0x0800);
	uint8_t *ip = f + 14, *u = ip + 20, *m = u + 8;
	ip[0] = 0x45;
	ip[8] = 64;
	ip[9] = 17;
	wr32(ip + 16, 0xffffffff);
	wr16(u, 68);
	wr16(u + 2, 67);
	m[0] = 1;
	m[1] = 1;
	m[2] = 6;
	wr32(m + 4, 0x12345678);
	memcpy(m + 28, nf_guest_mac, 6);
	wr32(m + 236, 0x63825363);
	uint8_t *o = m + 240;
	*o++ = 53; *o++ = 1; *o++ = type;
	if (type == 3) {
		*o++ = 50; *o++ = 4; wr32(o, 0x0A00020F); o += 4;
	}
	*o++ = 255;
	size_t mlen = (size_t)(o - m);
	wr16(u + 4, (uint16_t)(8 + mlen));
	wr16(ip + 2, (uint16_t)(28 + mlen));
	size_t len = 14 + 28 + mlen;
	nf_fix_checksums(f, len);
	return len;
}

static void test_dhcp(void **state)
{
	(void)state;
	uint8_t f[400];
	input(ns, f, dhcp_frame(f, 1));
	assert_int_equal(nout, 1);
	uint8_t *m = outf[0] + 14 + 20 + 8;
	assert_int_equal(rd32(m + 4), 0x12345678);
	assert_int_equal(rd32(m + 16), 0x0A00020F);
	assert_int_equal(m[240 + 2], 2);	/* OFFER first */
	input(ns, f, dhcp_frame(f, 3));
	assert_int_equal(nout, 2);
	m = outf[1] + 14 + 20 + 8;
	assert_int_equal(m[240 + 2], 5);	/* ACK */
	/* Options claiming more than the packet holds: no answer. */
	size_t len = dhcp_frame(f, 1);
	f[14 + 28 + 240 + 1] = 200;
	nf_fix_checksums(f, len);
	input(ns, f, len);
	assert_int_equal(nout, 2);
}

static void test_icmp_echo_and_bad_frames(void **state)
{
	(void)state;
	uint8_t f[100];
	memcpy(f, cfg.gateway_mac, 6);
	memcpy(f + 6, nf_guest_mac, 6);
	wr16(f + 12, 0x0800);
	uint8_t *ip = f + 14;
	memset(ip, 0, 20);
	ip[0] = 0x45;
	ip[8] = 64;
	ip[9] = 1;
	wr32(ip + 12, 0x0A00020F);
	wr32(ip + 16, 0x0A000202);
	wr16(ip + 2, 20 + 16);
	uint8_t *ic = ip + 20;
	memset(ic, 0, 16);
	ic[0] = 8;
	memcpy(ic + 8, "pingdata", 8);
	nf_fix_checksums(f, 14 + 36);
	input(ns, f, 14 + 36);
	assert_int_equal(nout, 1);
	assert_int_equal(outf[0][14 + 20], 0);
	assert_memory_equal(outf[0] + 14 + 28, "pingdata", 8);
	assert_int_equal(csum_fold(csum_partial(outf[0] + 14, 20, 0)), 0);
	assert_int_equal(csum_fold(csum_partial(outf[0] + 34, 16, 0)), 0);

	uint64_t before = ns->stats.drop_ip_csum;
	ip[10] ^= 1;
	input(ns, f, 14 + 36);
	assert_int_equal(ns->stats.drop_ip_csum, before + 1);
	ip[10] ^= 1;
	wr16(ip + 2, 200);	/* total length beyond the frame */
	nf_fix_checksums(f, 14 + 36);
	input(ns, f, 14 + 36);
	assert_true(ns->stats.drop_ip_hdr >= 1);
	wr16(ip + 2, 36);
	wr16(ip + 6, 0x2000);	/* more fragments: held for reassembly */
	nf_fix_checksums(f, 14 + 36);
	input(ns, f, 14 + 36);
	assert_int_equal(ns->stats.drop_ip_frag, 0);
	assert_int_equal(nout, 1);
	wr16(ip + 6, 0);
	wr32(ip + 12, 0x0A000263);	/* spoofed source */
	nf_fix_checksums(f, 14 + 36);
	input(ns, f, 14 + 36);
	assert_int_equal(ns->stats.drop_ip_src, 1);
	input(ns, f, 5);
	assert_int_equal(ns->stats.drop_short, 1);
	assert_int_equal(nout, 1);
}

/* One IPv4 fragment from the guest to the gateway: payload bytes
 * [off, off + n) of a datagram with this id and protocol. */
static size_t frag_frame(uint8_t *f, uint16_t id, uint8_t proto, const uint8_t *payload, size_t off,
			 size_t n, bool more)
{
	memcpy(f, cfg.gateway_mac, 6);
	memcpy(f + 6, nf_guest_mac, 6);
	wr16(f + 12, 0x0800);
	uint8_t *ip = f + 14;
	memset(ip, 0, 20);
	ip[0] = 0x45;
	ip[8] = 64;
	ip[9] = proto;
	wr16(ip + 2, (uint16_t)(20 + n));
	wr16(ip + 4, id);
	wr16(ip + 6, (uint16_t)((more ? 0x2000 : 0) | off / 8));
	wr32(ip + 12, 0x0A00020F);
	wr32(ip + 16, 0x0A000202);
	memcpy(ip + 20, payload + off, n);
	uint16_t c = csum_fold(csum_partial(ip, 20, 0));
	memcpy(ip + 10, &c, 2);
	return 14 + 20 + n;
}

/* A SYN to any unicast destination the policy refuses gets an immediate
 * RST, reserved 240/4 included (a silent drop would leave the guest's
 * connect hanging); TCP to multicast or broadcast is dropped and counted,
 * never answered. */
static void test_denied_syn_always_rst(void **state)
{
	(void)state;
	static const uint32_t denied[] = { 0xF0000001, 0xFEFFFFFF, 0x7F000001, 0x00000001, 0xC0000201 };
	uint8_t f[200];
	for (size_t i = 0; i < ARRAY_SIZE(denied); i++) {
		size_t l = nf_tcp(f, cfg.gateway_mac, denied[i], 5555, 80, 1000, 0, 0x02, 65535, NULL, 0, true);
		input(ns, f, l);
		assert_int_equal(nout, i + 1);
		assert_int_equal(outf[i][34 + 13], 0x14);	/* RST|ACK */
		assert_int_equal(rd32(outf[i] + 26), denied[i]);	/* from the address the guest dialled */
	}
	uint64_t drops = ns->stats.drop_tcp;
	static const uint32_t not_unicast[] = { 0xE0000001, 0xEFFFFFFA, 0xFFFFFFFF, 0x0A0002FF };
	for (size_t i = 0; i < ARRAY_SIZE(not_unicast); i++) {
		size_t l = nf_tcp(f, cfg.gateway_mac, not_unicast[i], 5555, 80, 1000, 0, 0x02, 65535, NULL, 0, true);
		input(ns, f, l);
	}
	assert_int_equal(nout, ARRAY_SIZE(denied));
	assert_int_equal(ns->stats.drop_tcp, drops + ARRAY_SIZE(not_unicast));
	/* the summary at exit: one entry per destination, counted */
	size_t l = nf_tcp(f, cfg.gateway_mac, 0x7F000001, 5556, 80, 1000, 0, 0x02, 65535, NULL, 0, true);
	input(ns, f, l);
	const struct net_denial *d;
	uint64_t others;
	assert_int_equal(net_denials(ns, &d, &others), ARRAY_SIZE(denied));
	assert_int_equal(others, 0);
	char line[1024];
	assert_int_equal(net_denials_line(ns, line, sizeof(line)), ARRAY_SIZE(denied) + 1);
	assert_non_null(strstr(line, "127.0.0.1:80/tcp x2 (loopback; nothing opens it)"));
	assert_non_null(strstr(line, "192.0.2.1:80/tcp x1 (reserved or documentation range; --allow-egress with the address)"));
	/* a name the DNS forwarder refused counts beside the addresses, in lower case */
	net_note_denied_name(ns, "Evil.Example");
	net_note_denied_name(ns, "evil.example");
	assert_int_equal(net_denials_line(ns, line, sizeof(line)), ARRAY_SIZE(denied) + 3);
	assert_non_null(strstr(line, "evil.example/dns x2 (not a name the permissive egress profile permits; --allow-domain NAME)"));
	/* past the table: counted, not listed; a short buffer ends in "..." */
	for (uint32_t i = 0; i < NET_DENIALS_KEPT + 3; i++) {
		l = nf_tcp(f, cfg.gateway_mac, 0x0A000001 + i, 5557, 80, 1000, 0, 0x02, 65535, NULL, 0, true);
		input(ns, f, l);
	}
	assert_int_equal(net_denials(ns, &d, &others), NET_DENIALS_KEPT);
	assert_int_equal(others, ARRAY_SIZE(denied) + 4);	/* the name took a row */
	assert_int_equal(net_denials_line(ns, line, 64), ARRAY_SIZE(denied) + 3 + NET_DENIALS_KEPT + 3);
	assert_non_null(strstr(line, "..."));
	assert_true(strlen(line) < 64);
}

static void test_denied_tcp_rst_udp_icmp(void **state)
{
	(void)state;
	uint8_t f[200];
	size_t l = nf_tcp(f, cfg.gateway_mac, 0xA9FEA9FE, 5555, 80, 1000, 0, 0x02, 65535, NULL, 0, true);
	input(ns, f, l);
	assert_int_equal(nout, 1);
	uint8_t *t = outf[0] + 34;
	assert_int_equal(t[13], 0x14);	/* RST|ACK */
	assert_int_equal(rd32(t + 8), 1001);
	assert_int_equal(ns->stats.denied_tcp, 1);
	/* UDP to a private address: ICMP administratively prohibited. */
	l = nf_tcp(f, cfg.gateway_mac, 0x0A000001, 5555, 53, 0, 0, 0, 0, "abcdefgh", 8, false);
	f[14 + 9] = 17;
	uint8_t *u = f + 34;
	wr16(u + 4, 8 + 8);
	memcpy(u + 8, "abcdefgh", 8);
	wr16(f + 14 + 2, 20 + 16);
	nf_fix_checksums(f, 14 + 36);
	input(ns, f, 14 + 36);
	assert_int_equal(nout, 2);
	assert_int_equal(outf[1][14 + 9], 1);
	assert_int_equal(outf[1][34], 3);
	assert_int_equal(outf[1][35], 13);
	assert_int_equal(ns->stats.denied_udp, 1);
	/* Ping beyond the gateway to a private address: administratively
	 * prohibited at once; to a public one without a loop: dropped. */
	size_t il = frag_frame(f, 1, 1, (const uint8_t *)"\x08\0\xf7\xfe\0\1\0\0", 0, 8, false);
	wr16(f + 14 + 6, 0);
	wr32(f + 14 + 16, 0x0A000001);
	f[14 + 10] = f[14 + 11] = 0;
	uint16_t c = csum_fold(csum_partial(f + 14, 20, 0));
	memcpy(f + 14 + 10, &c, 2);
	input(ns, f, il);
	assert_int_equal(nout, 3);
	assert_int_equal(outf[2][34], 3);
	assert_int_equal(outf[2][35], 13);
	assert_int_equal(ns->stats.denied_icmp, 1);
	uint64_t d0 = ns->stats.drop_icmp;
	wr32(f + 14 + 16, 0x5DB8D822);
	f[14 + 10] = f[14 + 11] = 0;
	c = csum_fold(csum_partial(f + 14, 20, 0));
	memcpy(f + 14 + 10, &c, 2);
	input(ns, f, il);
	assert_int_equal(nout, 3);
	assert_int_equal(ns->stats.drop_icmp, d0 + 1);
}

/* The last segment sent to the guest. */
static const uint8_t *last_seg(void)
{
	assert_true(nout > 0 && nout <= MAXF);
	return outf[nout - 1] + 34;
}

static void test_tcp_stream_flow(void **state)
{
	(void)state;
	uint8_t f[2048];
	const uint32_t dst = 0x5DB8D822;
	size_t l = nf_tcp(f, cfg.gateway_mac, dst, 4000, 443, 5000, 0, 0x02, 65535, NULL, 0, true);
	input(ns, f, l);
	assert_non_null(taken);
	const uint8_t *t = last_seg();
	assert_int_equal(t[13], 0x12);	/* SYN|ACK */
	assert_int_equal(rd32(t + 8), 5001);
	assert_int_equal(t[12] >> 4, 7);	/* MSS + NOP + WS */
	assert_int_equal(rd16(t + 22), 1460);
	uint32_t iss = rd32(t + 4);
	/* Handshake completes; data from the guest reaches the consumer. */
	l = nf_tcp(f, cfg.gateway_mac, dst, 4000, 443, 5001, iss + 1, 0x10, 512, NULL, 0, false);
	input(ns, f, l);
	l = nf_tcp(f, cfg.gateway_mac, dst, 4000, 443, 5001, iss + 1, 0x18, 512, "hello", 5, false);
	unsigned n_before = nout;
	input(ns, f, l);
	assert_int_equal(notified, 1);	/* once: it was asked for once */
	/* A small pushed segment: the ACK waits for a reply to ride on, at
	 * most TCP_DELACK_NS. */
	assert_int_equal(nout, n_before);
	ns->now += TCP_DELACK_NS;
	net_flush(ns);
	assert_int_equal(nout, n_before + 1);
	t = last_seg();
	assert_int_equal(rd32(t + 8), 5006);
	uint32_t win = (uint32_t)rd16(t + 14) << TCP_WSCALE;
	assert_true(win <= TCP_TO_HOST_BUF - 5 && win > TCP_TO_HOST_BUF - 5 - 128 - 1);
	char buf[16];
	assert_int_equal(taken->ops->read(taken, buf, sizeof(buf)), 5);
	assert_memory_equal(buf, "hello", 5);
	assert_int_equal(taken->ops->read(taken, buf, sizeof(buf)), -EAGAIN);
	/* Duplicate (old) data is not delivered twice, and is acked. */
	unsigned n0 = nout;
	input(ns, f, l);
	assert_int_equal(nout, n0 + 1);
	assert_int_equal(taken->ops->read(taken, buf, sizeof(buf)), -EAGAIN);
	/* Out of order: held (not readable yet), duplicate ACK for 5006 (no
	 * SACK blocks: this guest did not offer SACK). */
	l = nf_tcp(f, cfg.gateway_mac, dst, 4000, 443, 5010, iss + 1, 0x18, 512, "zz", 2, false);
	input(ns, f, l);
	assert_int_equal(rd32(last_seg() + 8), 5006);
	assert_int_equal(last_seg()[12] >> 4, 5);
	assert_int_equal(taken->ops->read(taken, buf, sizeof(buf)), -EAGAIN);
	assert_int_equal(ns->stats.tcp_ooo_queued, 1);

	/* Data to the guest respects its window (512 << 7 = 64 KiB) and MSS. */
	static uint8_t big[100000];
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 7);
	n0 = nout;
	assert_int_equal(taken->ops->write(taken, big, sizeof(big)), (ssize_t)sizeof(big));
	unsigned sent = nout - n0;
	assert_int_equal(sent, (65536 + 1459) / 1460);	/* 45 segments fill 64 KiB */
	t = last_seg();
	assert_int_equal(rd32(t + 4) - (iss + 1) + (uint32_t)(rd16(outf[nout - 1] + 16) - 40), 65536);
	assert_memory_equal(outf[n0] + 54, big, 1460);
	/* Three duplicate ACKs: fast retransmit of the first segment. */
	n0 = nout;
	l = nf_tcp(f, cfg.gateway_mac, dst, 4000, 443, 5006, iss + 1, 0x10, 512, NULL, 0, false);
	input(ns, f, l);
	input(ns, f, l);
	assert_int_equal(nout, n0);
	input(ns, f, l);
	assert_int_equal(nout, n0 + 1);
	assert_int_equal(rd32(last_seg() + 4), iss + 1);
	assert_int_equal(ns->stats.tcp_fast_retrans, 1);
	/* Retransmission timer: go back to the oldest unacked byte. */
	n0 = nout;
	ns->now += 1000000000ull;
	tcp_tick(ns);
	assert_true(nout > n0);
	assert_int_equal(rd32(outf[n0] + 34 + 4), iss + 1);
	/* Ack everything sent so far; the rest of the data flows. */
	uint32_t acked = iss + 1 + 65536;
	l = nf_tcp(f, cfg.gateway_mac, dst, 4000, 443, 5006, acked, 0x10, 1024, NULL, 0, false);
	n0 = nout;
	input(ns, f, l);
	assert_true(nout > n0);
	uint32_t end = iss + 1 + sizeof(big);
	t = last_seg();
	assert_int_equal(rd32(t + 4) + (uint32_t)(rd16(outf[nout - 1] + 16) - 40), end);
	/* Half-close from the consumer: FIN after the data. */
	taken->ops->shutdown_write(taken);
	t = last_seg();
	assert_true(t[13] & 0x01);
	assert_int_equal(rd32(t + 4), end);
	assert_int_equal(taken->ops->write(taken, "x", 1), -EPIPE);
	/* The guest acks everything and keeps sending (half-close), then FINs. */
	l = nf_tcp(f, cfg.gateway_mac, dst, 4000, 443, 5006, end + 1, 0x18, 1024, "more", 4, false);
	input(ns, f, l);
	/* The hole is filled: the held "zz" follows at once. */
	assert_int_equal(taken->ops->read(taken, buf, sizeof(buf)), 6);
	assert_memory_equal(buf, "morezz", 6);
	assert_int_equal(rd32(last_seg() + 8), 5012);
	assert_int_equal(notified, 1);	/* not asked again since */
	taken->ops->want(taken, true, false);
	l = nf_tcp(f, cfg.gateway_mac, dst, 4000, 443, 5012, end + 1, 0x11, 1024, NULL, 0, false);
	input(ns, f, l);
	assert_int_equal(rd32(last_seg() + 8), 5013);
	assert_int_equal(notified, 2);	/* the guest's FIN */
	assert_int_equal(taken->ops->read(taken, buf, sizeof(buf)), 0);	/* EOF */
	taken->ops->close(taken);
	taken = NULL;
	/* The flow is gone: a new segment gets a RST. */
	l = nf_tcp(f, cfg.gateway_mac, dst, 4000, 443, 5013, end + 1, 0x10, 1024, NULL, 0, false);
	input(ns, f, l);
	assert_int_equal(last_seg()[13] & 0x04, 0x04);
}


/* Turn the loop until the stack sent something to the guest (1 s at most). */
static void run_until_output(struct loop *loop, unsigned n0)
{
	for (int i = 0; i < 100 && nout == n0; i++)
		loop_run_once(loop, 10000000);
	assert_true(nout > n0);
}

/* A stack on its own loop whose handler splices port 8443 to sv[0] of a
 * new socket pair (splice_sock is the caller's to set). */
static void handler_stack(struct loop *loop, struct net_stack **s, int sv[2])
{
	assert_int_equal(loop_init(loop, 64), 0);
	assert_int_equal(net_create(s, loop, &cfg, out, NULL), 0);
	net_set_stream_handler(*s, take, NULL);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
}

#define HANDLER_DST 0x7F000001	/* loopback: never a host socket's */

/* The guest's SYN to HANDLER_DST:8443 from port 4000 (seq 5000): the
 * stack's SYN|ACK's sequence number. */
static uint32_t handler_connect(struct loop *loop, struct net_stack *s)
{
	uint8_t f[128];
	size_t l = nf_tcp(f, cfg.gateway_mac, HANDLER_DST, 4000, 8443, 5000, 0, 0x02, 65535, NULL, 0, true);
	unsigned n0 = nout;
	net_input(s, f, l);
	net_flush(s);
	run_until_output(loop, n0);
	const uint8_t *t = last_seg();
	assert_int_equal(t[13], 0x12);	/* SYN|ACK */
	return rd32(t + 4);
}

/* The handler answers 2 with a socket: the flow is spliced to it as to a
 * host connection, for an address the policy would refuse too (the
 * handler applied its own), and data crosses both ways; 2 without a
 * socket is a refusal. */
static void test_tcp_handler_socket(void **state)
{
	(void)state;
	struct loop loop;
	struct net_stack *s;
	int sv[2];
	handler_stack(&loop, &s, sv);
	splice_sock = sv[0];
	const uint32_t dst = HANDLER_DST;
	uint32_t iss = handler_connect(&loop, s);
	uint8_t f[2048];
	const uint8_t *t;
	size_t l = nf_tcp(f, cfg.gateway_mac, dst, 4000, 8443, 5001, iss + 1, 0x18, 512, "hello", 5, false);
	net_input(s, f, l);
	net_flush(s);
	char buf[16];
	ssize_t n = -1;
	for (int i = 0; i < 100 && n < 0; i++) {
		loop_run_once(&loop, 10000000);
		n = read(sv[1], buf, sizeof(buf));
	}
	assert_int_equal(n, 5);
	assert_memory_equal(buf, "hello", 5);
	unsigned n0 = nout;
	assert_int_equal(write(sv[1], "reply", 5), 5);
	run_until_output(&loop, n0);
	t = last_seg();
	assert_memory_equal(t + ((t[12] >> 4) * 4), "reply", 5);
	/* 2 without a socket: a RST, and nothing else opened. */
	splice_sock = -1;
	n0 = nout;
	l = nf_tcp(f, cfg.gateway_mac, 0x5DB8D822, 4001, 8443, 9000, 0, 0x02, 65535, NULL, 0, true);
	net_input(s, f, l);
	net_flush(s);
	assert_int_equal(nout, n0 + 1);
	assert_int_equal(last_seg()[13] & 0x04, 0x04);
	net_destroy(s);	/* closes sv[0] with the flow */
	assert_int_equal(read(sv[1], buf, sizeof(buf)), 0);
	close(sv[1]);
	loop_fini(&loop);
}

/* A host that answers and closes (as HTTP/1.0 and one-shot servers do):
 * its last bytes and its FIN reach the guest in one segment, which a
 * retransmission repeats whole. */
static void test_tcp_host_reply_and_close(void **state)
{
	(void)state;
	struct loop loop;
	struct net_stack *s;
	int sv[2];
	handler_stack(&loop, &s, sv);
	assert_int_equal(write(sv[1], "bye", 3), 3);
	assert_int_equal(shutdown(sv[1], SHUT_WR), 0);
	splice_sock = sv[0];
	const uint32_t dst = HANDLER_DST;
	uint32_t iss = handler_connect(&loop, s);
	for (int i = 0; i < 10; i++)
		loop_run_once(&loop, 1000000);	/* the reply and the EOF are read */
	unsigned n0 = nout;
	uint8_t f[2048];
	size_t l = nf_tcp(f, cfg.gateway_mac, dst, 4000, 8443, 5001, iss + 1, 0x10, 512, NULL, 0, false);
	net_input(s, f, l);
	net_flush(s);
	assert_int_equal(nout, n0 + 1);
	const uint8_t *t = last_seg();
	assert_int_equal(t[13], 0x19);	/* FIN|PSH|ACK */
	assert_int_equal(rd32(t + 4), iss + 1);
	assert_memory_equal(t + ((t[12] >> 4) * 4), "bye", 3);
	/* Not acked: the retransmission carries the FIN again. */
	n0 = nout;
	s->now += 1000000000ull;
	tcp_tick(s);
	assert_int_equal(nout, n0 + 1);
	t = last_seg();
	assert_int_equal(t[13] & 0x01, 0x01);
	assert_int_equal(rd32(t + 4), iss + 1);
	assert_memory_equal(t + ((t[12] >> 4) * 4), "bye", 3);
	splice_sock = -1;
	net_destroy(s);
	close(sv[1]);
	loop_fini(&loop);
}

static void test_tcp_guest_rst_and_bad_options(void **state)
{
	(void)state;
	uint8_t f[200];
	const uint32_t dst = 0x5DB8D822;
	size_t l = nf_tcp(f, cfg.gateway_mac, dst, 4001, 443, 100, 0, 0x02, 65535, NULL, 0, true);
	/* Options that lie about their length: parsed up to the lie. */
	uint8_t *opt = f + 54;
	opt[4] = 3;
	opt[5] = 40;
	nf_fix_checksums(f, l);
	input(ns, f, l);
	assert_non_null(taken);
	const uint8_t *t = last_seg();
	assert_int_equal(t[12] >> 4, 6);	/* no window scale offered back */
	uint32_t iss = rd32(t + 4);
	l = nf_tcp(f, cfg.gateway_mac, dst, 4001, 443, 101, iss + 1, 0x10, 65535, NULL, 0, false);
	input(ns, f, l);
	/* A RST outside the window is ignored; inside it ends the flow. */
	l = nf_tcp(f, cfg.gateway_mac, dst, 4001, 443, 101 + 3000000, 0, 0x04, 0, NULL, 0, false);
	input(ns, f, l);
	assert_int_equal(notified, 0);
	l = nf_tcp(f, cfg.gateway_mac, dst, 4001, 443, 101, 0, 0x04, 0, NULL, 0, false);
	input(ns, f, l);
	assert_int_equal(notified, 1);	/* the waiting reader learns of the reset */
	char b[4];
	assert_int_equal(taken->ops->read(taken, b, 4), -ECONNRESET);
	/* Bad TCP checksum: dropped and counted. */
	uint64_t before = ns->stats.drop_tcp_csum;
	l = nf_tcp(f, cfg.gateway_mac, dst, 4002, 443, 1, 0, 0x02, 65535, NULL, 0, true);
	f[50] ^= 0xff;
	input(ns, f, l);
	assert_int_equal(ns->stats.drop_tcp_csum, before + 1);
}

/* A snapshot of a stack with an established flow, restored into a new
 * stack: the guest gets a RST for that flow at once (ports, the sequence
 * number it expects, a valid checksum), and bytes that are not a saved
 * state are refused. */
static void test_snapshot_resets_flows(void **state)
{
	(void)state;
	uint8_t f[200];
	const uint32_t dst = 0x5DB8D822;
	size_t l = nf_tcp(f, cfg.gateway_mac, dst, 4005, 443, 700, 0, 0x02, 65535, NULL, 0, true);
	input(ns, f, l);
	uint32_t iss = rd32(last_seg() + 4);
	l = nf_tcp(f, cfg.gateway_mac, dst, 4005, 443, 701, iss + 1, 0x10, 65535, NULL, 0, false);
	input(ns, f, l);
	static uint8_t buf[NET_SNAPSHOT_MAX];
	size_t n = net_snapshot_save(ns, buf);
	assert_int_equal(n, 16 + sizeof(struct tcp_saved));
	struct net_stack *fresh;
	assert_int_equal(net_create(&fresh, NULL, &cfg, out, NULL), 0);
	assert_int_equal(net_snapshot_restore(fresh, buf, n - 1), -EINVAL);
	buf[10] = 2;	/* "MAC known" is 0 or 1 */
	assert_int_equal(net_snapshot_restore(fresh, buf, n), -EINVAL);
	buf[10] = 1;
	unsigned n0 = nout;
	assert_int_equal(net_snapshot_restore(fresh, buf, n), 0);
	assert_int_equal(nout, n0 + 1);
	const uint8_t *t = last_seg();
	assert_int_equal(rd16(t), 443);
	assert_int_equal(rd16(t + 2), 4005);
	assert_int_equal(t[13], 0x14);	/* RST|ACK */
	assert_int_equal(rd32(t + 4), iss + 1);
	assert_int_equal(rd32(t + 8), 701);
	uint8_t copy[200];
	memcpy(copy, outf[nout - 1], outlen[nout - 1]);
	nf_fix_checksums(copy, outlen[nout - 1]);
	assert_memory_equal(copy, outf[nout - 1], outlen[nout - 1]);	/* checksums right */
	net_destroy(fresh);
}

/* NewReno: after a fast retransmit, each partial ACK resends the next hole. */
static void test_tcp_partial_ack_recovery(void **state)
{
	(void)state;
	uint8_t f[200];
	const uint32_t dst = 0x5DB8D822;
	size_t l = nf_tcp(f, cfg.gateway_mac, dst, 4200, 443, 10, 0, 0x02, 65535, NULL, 0, true);
	input(ns, f, l);
	uint32_t iss = rd32(last_seg() + 4);
	l = nf_tcp(f, cfg.gateway_mac, dst, 4200, 443, 11, iss + 1, 0x10, 512, NULL, 0, false);
	input(ns, f, l);
	static uint8_t d[14600];
	assert_int_equal(taken->ops->write(taken, d, sizeof(d)), (ssize_t)sizeof(d));
	l = nf_tcp(f, cfg.gateway_mac, dst, 4200, 443, 11, iss + 1, 0x10, 512, NULL, 0, false);
	unsigned n0 = nout;
	for (int i = 0; i < 3; i++)
		input(ns, f, l);
	assert_int_equal(nout, n0 + 1);
	assert_int_equal(rd32(last_seg() + 4), iss + 1);
	/* Partial ACK (first segment only): the second goes out at once. */
	l = nf_tcp(f, cfg.gateway_mac, dst, 4200, 443, 11, iss + 1 + 1460, 0x10, 512, NULL, 0, false);
	input(ns, f, l);
	assert_int_equal(rd32(last_seg() + 4), iss + 1 + 1460);
	/* Everything acked: recovery ends, nothing more is resent. */
	n0 = nout;
	l = nf_tcp(f, cfg.gateway_mac, dst, 4200, 443, 11, iss + 1 + 14600, 0x10, 512, NULL, 0, false);
	input(ns, f, l);
	assert_int_equal(nout, n0);
}

/* Zero window: nothing is sent, a probe goes out on the timer; keepalive
 * probes after the idle time, and the flow is reset after the last one. */
static void test_tcp_zero_window_and_keepalive(void **state)
{
	(void)state;
	uint8_t f[200];
	const uint32_t dst = 0x5DB8D822;
	size_t l = nf_tcp(f, cfg.gateway_mac, dst, 4100, 443, 10, 0, 0x02, 65535, NULL, 0, true);
	input(ns, f, l);
	uint32_t iss = rd32(last_seg() + 4);
	l = nf_tcp(f, cfg.gateway_mac, dst, 4100, 443, 11, iss + 1, 0x10, 0, NULL, 0, false);
	input(ns, f, l);
	unsigned n0 = nout;
	assert_int_equal(taken->ops->write(taken, "abcdef", 6), 6);
	assert_int_equal(nout, n0);	/* window 0: held back */
	ns->now += 300000000ull;
	tcp_tick(ns);
	assert_int_equal(nout, n0 + 1);	/* probe */
	assert_int_equal(rd32(last_seg() + 4), iss + 1);
	/* Many probes later the flow is still alive (probes are not failures). */
	for (int i = 0; i < 8; i++) {	/* 48 s: under the keepalive idle time */
		ns->now += 6000000000ull;
		tcp_tick(ns);
	}
	assert_int_equal(notified, 0);
	/* The window opens: the data goes. */
	l = nf_tcp(f, cfg.gateway_mac, dst, 4100, 443, 11, iss + 1, 0x10, 100, NULL, 0, false);
	input(ns, f, l);
	l = nf_tcp(f, cfg.gateway_mac, dst, 4100, 443, 11, iss + 7, 0x10, 100, NULL, 0, false);
	input(ns, f, l);
	/* Idle: keepalive probes (seq one below snd_una), then a reset. */
	n0 = nout;
	ns->now += TCP_KEEPALIVE_IDLE_NS + 1000;
	tcp_tick(ns);
	assert_int_equal(nout, n0 + 1);
	assert_int_equal(rd32(last_seg() + 4), iss + 6);
	for (int i = 0; i < TCP_KEEPALIVE_PROBES + 1; i++) {
		ns->now += TCP_KEEPALIVE_INTVL_NS + 1000;
		tcp_tick(ns);
	}
	assert_int_equal(notified, 1);
	assert_int_equal(last_seg()[13] & 0x04, 0x04);
}

/* A 4000-byte ping in three fragments, in any order, is answered with a
 * fragmented reply; overlaps, lying ends, oversize datagrams, timeouts and
 * a full table drop (and count) instead of holding memory. */
static void test_ip4_fragments(void **state)
{
	(void)state;
	static uint8_t icmp[4008], f[2048];
	memset(icmp, 0, 8);
	icmp[0] = 8;
	for (size_t i = 8; i < sizeof(icmp); i++)
		icmp[i] = (uint8_t)(i * 7 + 3);
	uint16_t c = csum_fold(csum_partial(icmp, sizeof(icmp), 0));
	memcpy(icmp + 2, &c, 2);
	static const size_t offs[4] = { 0, 1480, 2960, 4008 };
	static const int order[3] = { 2, 0, 1 };
	for (int k = 0; k < 3; k++) {
		int i = order[k];
		size_t l = frag_frame(f, 77, 1, icmp, offs[i], offs[i + 1] - offs[i], i < 2);
		input(ns, f, l);
		assert_int_equal(nout, k == 2 ? 3u : 0u);
	}
	assert_int_equal(ns->stats.ip_frag_reassembled, 1);
	/* The reply: three fragments within the MTU, put back together here. */
	static uint8_t reply[4008];
	size_t got = 0;
	for (unsigned i = 0; i < 3; i++) {
		const uint8_t *ip = outf[i] + 14;
		assert_int_equal(csum_fold(csum_partial(ip, 20, 0)), 0);
		size_t n = rd16(ip + 2) - 20, off = (size_t)(rd16(ip + 6) & 0x1fff) * 8;
		assert_true(outlen[i] <= 14 + cfg.mtu);
		assert_int_equal(!!(rd16(ip + 6) & 0x2000), i < 2);
		assert_int_equal(off, got);
		memcpy(reply + off, ip + 20, n);
		got += n;
	}
	assert_int_equal(got, sizeof(reply));
	assert_int_equal(reply[0], 0);	/* echo reply */
	assert_int_equal(csum_fold(csum_partial(reply, sizeof(reply), 0)), 0);
	assert_memory_equal(reply + 8, icmp + 8, sizeof(icmp) - 8);

	/* Overlap (RFC 5722): the whole datagram is abandoned. */
	nout = 0;
	uint64_t d0 = ns->stats.drop_ip_frag;
	input(ns, f, frag_frame(f, 78, 1, icmp, 0, 1480, true));
	input(ns, f, frag_frame(f, 78, 1, icmp, 1472, 1480, true));
	assert_int_equal(ns->stats.drop_ip_frag, d0 + 2);
	input(ns, f, frag_frame(f, 78, 1, icmp, 2960, 1048, false));
	assert_int_equal(nout, 0);
	/* An exact duplicate counts as an overlap too. */
	input(ns, f, frag_frame(f, 79, 1, icmp, 1480, 1480, true));
	input(ns, f, frag_frame(f, 79, 1, icmp, 1480, 1480, true));
	assert_int_equal(ns->stats.drop_ip_frag, d0 + 4);
	/* Two different ends. */
	input(ns, f, frag_frame(f, 80, 1, icmp, 2960, 1048, false));
	input(ns, f, frag_frame(f, 80, 1, icmp, 1480, 1000, false));
	assert_int_equal(ns->stats.drop_ip_frag, d0 + 6);
	/* A middle piece not in 8-byte units; a datagram beyond 65535 bytes. */
	input(ns, f, frag_frame(f, 81, 1, icmp, 0, 1001, true));
	assert_int_equal(ns->stats.drop_ip_frag, d0 + 7);
	size_t l = frag_frame(f, 82, 1, icmp, 0, 1000, false);
	wr16(f + 14 + 6, 8100);	/* offset 64800 + 1000 bytes */
	f[14 + 10] = f[14 + 11] = 0;
	c = csum_fold(csum_partial(f + 14, 20, 0));
	memcpy(f + 14 + 10, &c, 2);
	input(ns, f, l);
	assert_int_equal(ns->stats.drop_ip_frag, d0 + 8);
	/* A spoofed source is not held. */
	l = frag_frame(f, 83, 1, icmp, 0, 1480, true);
	wr32(f + 14 + 12, 0x0A000263);
	f[14 + 10] = f[14 + 11] = 0;
	c = csum_fold(csum_partial(f + 14, 20, 0));
	memcpy(f + 14 + 10, &c, 2);
	uint64_t src0 = ns->stats.drop_ip_src;
	input(ns, f, l);
	assert_int_equal(ns->stats.drop_ip_src, src0 + 1);
	/* Timeout: a datagram not complete in time is dropped. */
	d0 = ns->stats.drop_ip_frag;
	input(ns, f, frag_frame(f, 84, 1, icmp, 0, 1480, true));
	ns->now += IP4_FRAG_TIMEOUT_NS + 1;
	ip4_frag_tick(ns);
	assert_true(ns->stats.drop_ip_frag > d0);
	input(ns, f, frag_frame(f, 84, 1, icmp, 1480, 1480, true));
	input(ns, f, frag_frame(f, 84, 1, icmp, 2960, 1048, false));
	assert_int_equal(nout, 0);
	/* A full table: the oldest datagram is evicted and counted. */
	d0 = ns->stats.drop_ip_frag;
	for (uint16_t id = 100; id < 100 + IP4_FRAG_SLOTS + 1; id++) {
		input(ns, f, frag_frame(f, id, 1, icmp, 0, 1480, true));
		ns->now++;
	}
	assert_true(ns->stats.drop_ip_frag > d0);
	input(ns, f, frag_frame(f, 100, 1, icmp, 1480, 1480, true));
	input(ns, f, frag_frame(f, 100, 1, icmp, 2960, 1048, false));
	assert_int_equal(nout, 0);	/* its first piece was evicted */
	input(ns, f, frag_frame(f, 100 + IP4_FRAG_SLOTS, 1, icmp, 1480, 1480, true));
	input(ns, f, frag_frame(f, 100 + IP4_FRAG_SLOTS, 1, icmp, 2960, 1048, false));
	assert_int_equal(nout, 3);	/* the newest completes */
}

/* Delayed ACK: the ACK for a small request rides on the reply; bulk data
 * (two full segments unacknowledged) is acked at the end of the batch. */
static void test_tcp_delayed_ack(void **state)
{
	(void)state;
	uint8_t f[2048];
	const uint32_t dst = 0x5DB8D822;
	size_t l = nf_tcp(f, cfg.gateway_mac, dst, 4300, 443, 10, 0, 0x02, 65535, NULL, 0, true);
	input(ns, f, l);
	uint32_t iss = rd32(last_seg() + 4);
	l = nf_tcp(f, cfg.gateway_mac, dst, 4300, 443, 11, iss + 1, 0x10, 512, NULL, 0, false);
	input(ns, f, l);
	/* The first read opens the window beyond the SYN-ACK's 64 KiB: that
	 * window update goes out at once and acks the byte. */
	unsigned n0 = nout;
	l = nf_tcp(f, cfg.gateway_mac, dst, 4300, 443, 11, iss + 1, 0x18, 512, "a", 1, false);
	input(ns, f, l);
	assert_int_equal(nout, n0);
	char buf[4096];
	assert_int_equal(taken->ops->read(taken, buf, sizeof(buf)), 1);
	assert_int_equal(nout, n0 + 1);
	assert_int_equal(rd32(last_seg() + 8), 12);
	n0 = nout;
	l = nf_tcp(f, cfg.gateway_mac, dst, 4300, 443, 12, iss + 1, 0x18, 512, "pin", 3, false);
	input(ns, f, l);
	assert_int_equal(nout, n0);
	assert_int_equal(taken->ops->read(taken, buf, sizeof(buf)), 3);
	assert_int_equal(taken->ops->write(taken, "pong", 4), 4);
	assert_int_equal(nout, n0 + 1);	/* one segment: the reply carries the ACK */
	const uint8_t *t = last_seg();
	assert_int_equal(rd32(t + 8), 15);
	assert_memory_equal(t + 20, "pong", 4);
	ns->now += 2 * TCP_DELACK_NS;
	net_flush(ns);
	assert_int_equal(nout, n0 + 1);	/* nothing left to acknowledge */
	/* Not pushed: acked at the end of the batch. */
	static uint8_t d[1460];
	n0 = nout;
	l = nf_tcp(f, cfg.gateway_mac, dst, 4300, 443, 15, iss + 5, 0x10, 512, d, 1000, false);
	input(ns, f, l);
	assert_int_equal(nout, n0 + 1);
	assert_int_equal(rd32(last_seg() + 8), 1015);
	/* Small pushed segments adding up to two MSS: acked then at once. */
	n0 = nout;
	l = nf_tcp(f, cfg.gateway_mac, dst, 4300, 443, 1015, iss + 5, 0x18, 512, d, 1000, false);
	input(ns, f, l);
	l = nf_tcp(f, cfg.gateway_mac, dst, 4300, 443, 2015, iss + 5, 0x18, 512, d, 1000, false);
	input(ns, f, l);
	assert_int_equal(nout, n0);
	l = nf_tcp(f, cfg.gateway_mac, dst, 4300, 443, 3015, iss + 5, 0x18, 512, d, 920, false);
	input(ns, f, l);
	assert_int_equal(nout, n0 + 1);
	assert_int_equal(rd32(last_seg() + 8), 3935);
	/* A full-size pushed segment is acked at the end of its batch. */
	n0 = nout;
	l = nf_tcp(f, cfg.gateway_mac, dst, 4300, 443, 3935, iss + 5, 0x18, 512, d, 1460, false);
	input(ns, f, l);
	assert_int_equal(nout, n0 + 1);
	assert_int_equal(rd32(last_seg() + 8), 5395);
	/* A delayed ACK goes out on the timer if no reply comes. */
	n0 = nout;
	l = nf_tcp(f, cfg.gateway_mac, dst, 4300, 443, 5395, iss + 5, 0x18, 512, "x", 1, false);
	input(ns, f, l);
	assert_int_equal(nout, n0);
	ns->now += TCP_DELACK_NS;
	tcp_tick(ns);
	assert_int_equal(nout, n0 + 1);
	assert_int_equal(rd32(last_seg() + 8), 5396);
	/* The guest's FIN: its ACK rides on ours when the consumer closes too. */
	n0 = nout;
	l = nf_tcp(f, cfg.gateway_mac, dst, 4300, 443, 5396, iss + 5, 0x11, 512, NULL, 0, false);
	input(ns, f, l);
	assert_int_equal(nout, n0);
	taken->ops->shutdown_write(taken);
	assert_int_equal(nout, n0 + 1);
	t = last_seg();
	assert_int_equal(t[13], 0x11);	/* FIN|ACK */
	assert_int_equal(rd32(t + 8), 5397);
}

static struct net_gso last_gso;
static unsigned ngso;

static void out_gso(void *opaque, const void *frame, size_t len, const struct net_gso *g)
{
	last_gso = *g;
	ngso++;
	out(opaque, frame, len);
}

/* With an offloading transport every data segment leaves with a partial
 * checksum: split at the MSS when larger (gso_size), else checksum only. */
static void test_tcp_checksum_offload(void **state)
{
	(void)state;
	net_set_gso_output(ns, out_gso);
	ngso = 0;
	uint8_t f[200];
	const uint32_t dst = 0x5DB8D822;
	size_t l = nf_tcp(f, cfg.gateway_mac, dst, 4500, 443, 10, 0, 0x02, 65535, NULL, 0, true);
	input(ns, f, l);
	uint32_t iss = rd32(last_seg() + 4);
	assert_int_equal(ngso, 0);	/* no data: full checksum */
	l = nf_tcp(f, cfg.gateway_mac, dst, 4500, 443, 11, iss + 1, 0x10, 1024, NULL, 0, false);
	input(ns, f, l);
	assert_int_equal(taken->ops->write(taken, "hello", 5), 5);
	assert_int_equal(ngso, 1);
	assert_int_equal(last_gso.gso_size, 0);
	assert_int_equal(last_gso.csum_start, 34);
	assert_int_equal(net_finish_csum(outf[nout - 1], outlen[nout - 1], last_gso.csum_start,
					 last_gso.csum_offset), 0);
	const uint8_t *ip = outf[nout - 1] + 14;
	uint32_t seed = csum_pseudo4(rd32(ip + 12), rd32(ip + 16), 6, 25);
	assert_int_equal(csum_fold(csum_partial(ip + 20, 25, seed)), 0);
	static uint8_t big[10000];
	assert_int_equal(taken->ops->write(taken, big, sizeof(big)), (ssize_t)sizeof(big));
	assert_int_equal(ngso, 2);
	assert_int_equal(last_gso.gso_size, 1460);
	/* What the far side takes (net_set_offloads) decides how frames are
	 * built: checksums only, or TSO for the other family, gives MSS-sized
	 * segments with partial checksums; TSO without checksums counts as
	 * nothing, and every checksum is then complete on the plain output. */
	net_set_offloads(ns, NET_OFFLOAD_CSUM | NET_OFFLOAD_TSO6);
	unsigned g0 = ngso, n0 = nout;
	assert_int_equal(taken->ops->write(taken, big, 3000), 3000);
	assert_int_equal(ngso, g0 + 3);	/* 1460 + 1460 + 80 */
	assert_int_equal(nout, n0 + 3);
	assert_int_equal(last_gso.gso_size, 0);
	net_set_offloads(ns, NET_OFFLOAD_TSO4);
	assert_int_equal(net_offloads(ns), 0);
	g0 = ngso;
	n0 = nout;
	assert_int_equal(taken->ops->write(taken, big, 3000), 3000);
	assert_int_equal(ngso, g0);
	assert_int_equal(nout, n0 + 3);
	for (unsigned k = n0; k < nout; k++) {
		const uint8_t *p = outf[k] + 14;
		uint16_t tl = (uint16_t)(rd16(p + 2) - 20);
		assert_true(tl <= 20 + 1460);
		seed = csum_pseudo4(rd32(p + 12), rd32(p + 16), 6, tl);
		assert_int_equal(csum_fold(csum_partial(p + 20, tl, seed)), 0);
	}
}

/* The SACK option of a segment to the guest: number of blocks, filled in
 * relative to base. */
static int sack_blocks(const uint8_t *t, uint32_t base, uint32_t blk[][2])
{
	size_t hlen = (size_t)(t[12] >> 4) * 4;
	for (size_t i = 20; i + 1 < hlen;) {
		if (t[i] == 1) {
			i++;
			continue;
		}
		if (t[i] == 5) {
			int n = (t[i + 1] - 2) / 8;
			for (int k = 0; k < n; k++) {
				blk[k][0] = rd32(t + i + 2 + 8 * k) - base;
				blk[k][1] = rd32(t + i + 6 + 8 * k) - base;
			}
			return n;
		}
		if (t[i] == 0 || t[i + 1] < 2)
			break;
		i += t[i + 1];
	}
	return 0;
}

/* SACK: segments arriving out of order are held and reported, the first
 * block naming the latest; the hole filled, all of it is delivered in order. */
static void test_tcp_sack_reassembly(void **state)
{
	(void)state;
	uint8_t f[2048];
	const uint32_t dst = 0x5DB8D822;
	static const uint8_t syn_opts[12] = { 2, 4, 0x05, 0xb4, 1, 3, 3, 7, 1, 1, 4, 2 };
	size_t l = nf_tcp_opts(f, cfg.gateway_mac, dst, 4400, 443, 1000, 0, 0x02, 65535, NULL, 0,
			       syn_opts, sizeof(syn_opts));
	input(ns, f, l);
	const uint8_t *t = last_seg();
	assert_int_equal(t[13], 0x12);
	assert_int_equal(t[12] >> 4, 8);	/* MSS, WS, SACK permitted */
	assert_int_equal(t[20 + 10], 4);
	uint32_t iss = rd32(t + 4);
	l = nf_tcp(f, cfg.gateway_mac, dst, 4400, 443, 1001, iss + 1, 0x10, 512, NULL, 0, false);
	input(ns, f, l);
	uint8_t data[20 * TCP_OOO_MAX + 40];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 13 + 1);
	const uint32_t base = 1001;
	static const int order[6] = { 2, 4, 1, 5, 3, 0 };
	/* After each segment: the ACK, and the blocks expected ({0,0} ends). */
	static const uint32_t want[6][3][2] = {
		{ { 200, 300 } },
		{ { 400, 500 }, { 200, 300 } },
		{ { 100, 300 }, { 400, 500 } },
		{ { 400, 600 }, { 100, 300 } },
		{ { 100, 600 } },
		{ { 0, 0 } },
	};
	uint32_t blk[4][2];
	char buf[sizeof(data)];
	for (int k = 0; k < 6; k++) {
		unsigned n0 = nout;
		int s = order[k];
		l = nf_tcp(f, cfg.gateway_mac, dst, 4400, 443, base + 100 * (uint32_t)s, iss + 1, 0x10, 512,
			   data + 100 * s, 100, false);
		input(ns, f, l);
		assert_int_equal(nout, n0 + 1);	/* an immediate ACK each time */
		t = last_seg();
		int nb = sack_blocks(t, base, blk);
		if (k < 5) {
			assert_int_equal(rd32(t + 8), base);
			assert_int_equal(taken->ops->read(taken, buf, sizeof(buf)), -EAGAIN);
			int nw = 0;
			while (nw < 3 && want[k][nw][1])
				nw++;
			assert_int_equal(nb, nw);
			for (int b = 0; b < nw; b++) {
				assert_int_equal(blk[b][0], want[k][b][0]);
				assert_int_equal(blk[b][1], want[k][b][1]);
			}
		} else {
			assert_int_equal(rd32(t + 8), base + 600);
			assert_int_equal(nb, 0);
		}
	}
	assert_int_equal(taken->ops->read(taken, buf, sizeof(buf)), 600);
	assert_memory_equal(buf, data, 600);
	assert_int_equal(ns->stats.tcp_ooo_queued, 5);

	/* Overlap: bytes already held are kept, not overwritten by a liar. */
	uint32_t b2 = base + 600;
	l = nf_tcp(f, cfg.gateway_mac, dst, 4400, 443, b2 + 100, iss + 1, 0x10, 512, data, 100, false);
	input(ns, f, l);
	uint8_t lie[200];
	memset(lie, 0xee, sizeof(lie));
	l = nf_tcp(f, cfg.gateway_mac, dst, 4400, 443, b2 + 50, iss + 1, 0x10, 512, lie, 200, false);
	input(ns, f, l);
	/* D-SACK (RFC 2883): the bytes that came twice first, then the range
	 * holding them; the next ACK no longer repeats the D-SACK. */
	assert_int_equal(sack_blocks(last_seg(), b2, blk), 2);
	assert_int_equal(blk[0][0], 100);
	assert_int_equal(blk[0][1], 200);
	assert_int_equal(blk[1][0], 50);
	assert_int_equal(blk[1][1], 250);
	l = nf_tcp(f, cfg.gateway_mac, dst, 4400, 443, b2, iss + 1, 0x10, 512, data + 300, 50, false);
	input(ns, f, l);
	assert_int_equal(rd32(last_seg() + 8), b2 + 250);
	assert_int_equal(sack_blocks(last_seg(), b2, blk), 0);
	/* A segment wholly below rcv_nxt: an immediate ACK with it as D-SACK. */
	unsigned n0 = nout;
	l = nf_tcp(f, cfg.gateway_mac, dst, 4400, 443, b2 + 40, iss + 1, 0x10, 512, data, 20, false);
	input(ns, f, l);
	assert_int_equal(nout, n0 + 1);
	assert_int_equal(rd32(last_seg() + 8), b2 + 250);
	assert_int_equal(sack_blocks(last_seg(), b2, blk), 1);
	assert_int_equal(blk[0][0], 40);
	assert_int_equal(blk[0][1], 60);
	assert_int_equal(taken->ops->read(taken, buf, sizeof(buf)), 250);
	assert_memory_equal(buf, data + 300, 50);
	assert_memory_equal(buf + 50, lie, 50);
	assert_memory_equal(buf + 100, data, 100);
	assert_memory_equal(buf + 200, lie, 50);

	/* Bounded: islands beyond TCP_OOO_MAX are dropped and counted, as is
	 * data beyond the window; the ones held still arrive. */
	uint32_t b3 = b2 + 250;
	uint64_t drops = ns->stats.drop_tcp_ooo;
	for (int k = 0; k < TCP_OOO_MAX + 1; k++) {
		l = nf_tcp(f, cfg.gateway_mac, dst, 4400, 443, b3 + 20 * (uint32_t)k + 10, iss + 1, 0x10, 512,
			   data + 20 * k + 10, 10, false);
		input(ns, f, l);
	}
	assert_int_equal(ns->stats.drop_tcp_ooo, drops + 1);
	assert_int_equal(sack_blocks(last_seg(), b3, blk), TCP_SACK_BLOCKS);
	l = nf_tcp(f, cfg.gateway_mac, dst, 4400, 443, b3 + TCP_TO_HOST_BUF + 10, iss + 1, 0x10, 512,
		   data, 10, false);
	input(ns, f, l);
	assert_int_equal(ns->stats.drop_tcp_ooo, drops + 2);
	for (int k = 0; k < TCP_OOO_MAX + 1; k++) {
		l = nf_tcp(f, cfg.gateway_mac, dst, 4400, 443, b3 + 20 * (uint32_t)k, iss + 1, 0x10, 512,
			   data + 20 * k, 10, false);
		input(ns, f, l);
	}
	assert_int_equal(taken->ops->read(taken, buf, sizeof(buf)), 20 * TCP_OOO_MAX + 10);
	assert_memory_equal(buf, data, 20 * TCP_OOO_MAX + 10);
	assert_int_equal(taken->ops->read(taken, buf, sizeof(buf)), -EAGAIN);
	/* The last island was dropped: its resend completes the data. */
	uint32_t b4 = b3 + 20 * TCP_OOO_MAX + 10;
	l = nf_tcp(f, cfg.gateway_mac, dst, 4400, 443, b4, iss + 1, 0x10, 512, data + 20 * TCP_OOO_MAX + 10, 10, false);
	input(ns, f, l);
	assert_int_equal(taken->ops->read(taken, buf, sizeof(buf)), 10);

	/* A FIN out of order: taken when the hole fills. */
	uint32_t b5 = b4 + 10;
	l = nf_tcp(f, cfg.gateway_mac, dst, 4400, 443, b5 + 5, iss + 1, 0x11, 512, "world", 5, false);
	input(ns, f, l);
	assert_int_equal(rd32(last_seg() + 8), b5);
	assert_int_equal(taken->ops->read(taken, buf, sizeof(buf)), -EAGAIN);	/* no EOF yet */
	l = nf_tcp(f, cfg.gateway_mac, dst, 4400, 443, b5, iss + 1, 0x18, 512, "hello", 5, false);
	input(ns, f, l);
	assert_int_equal(rd32(last_seg() + 8), b5 + 11);
	assert_int_equal(taken->ops->read(taken, buf, sizeof(buf)), 10);
	assert_memory_equal(buf, "helloworld", 10);
	assert_int_equal(taken->ops->read(taken, buf, sizeof(buf)), 0);	/* EOF */
}

/* want() on a stream that is ready already: notify() comes on a later loop
 * turn, never from inside want(); a stream closed before that turn gets
 * none; closing with the guest's bytes unread resets the guest, as
 * close(2) on a socket does. */
static void test_tcp_stream_want_when_ready(void **state)
{
	(void)state;
	struct loop lp;
	assert_int_equal(loop_init(&lp, 64), 0);
	net_destroy(ns);
	assert_int_equal(net_create(&ns, &lp, &cfg, out, NULL), 0);
	net_set_stream_handler(ns, take, NULL);
	uint8_t f[256];
	const uint32_t dst = 0x5DB8D822;
	size_t l = nf_tcp(f, cfg.gateway_mac, dst, 4500, 443, 700, 0, 0x02, 65535, NULL, 0, true);
	input(ns, f, l);
	assert_non_null(taken);
	uint32_t iss = rd32(last_seg() + 4);
	l = nf_tcp(f, cfg.gateway_mac, dst, 4500, 443, 701, iss + 1, 0x10, 512, NULL, 0, false);
	input(ns, f, l);
	l = nf_tcp(f, cfg.gateway_mac, dst, 4500, 443, 701, iss + 1, 0x18, 512, "hello", 5, false);
	input(ns, f, l);
	assert_int_equal(notified, 1);
	l = nf_tcp(f, cfg.gateway_mac, dst, 4500, 443, 706, iss + 1, 0x18, 512, "again", 5, false);
	input(ns, f, l);
	assert_int_equal(notified, 1);	/* nobody asked */
	taken->ops->want(taken, true, false);
	assert_int_equal(notified, 1);	/* not from inside want() */
	assert_true(loop_run_once(&lp, 0) >= 1);
	assert_int_equal(notified, 2);
	char buf[16];
	assert_int_equal(taken->ops->read(taken, buf, 5), 5);
	/* Writable at once (the guest's window is open): asked, then closed
	 * before the loop turns. */
	taken->ops->want(taken, false, true);
	unsigned n0 = nout;
	taken->ops->close(taken);
	taken = NULL;
	assert_int_equal(nout, n0 + 1);
	assert_int_equal(last_seg()[13] & 0x04, 0x04);	/* "again" unread: RST */
	loop_run_once(&lp, 0);
	assert_int_equal(notified, 2);
	net_destroy(ns);
	ns = NULL;
	loop_fini(&lp);
}

/* A UDP datagram from the guest's port gport to the gateway's port (the
 * host's loopback, as --allow-host lets it). */
static size_t udp_frame(uint8_t *f, uint16_t gport, uint16_t port, const char *data)
{
	size_t dl = strlen(data);
	size_t l = nf_tcp(f, cfg.gateway_mac, cfg.gateway_ip, gport, port, 0, 0, 0, 0, NULL, 0, false);
	(void)l;
	f[14 + 9] = 17;
	wr16(f + 14 + 2, (uint16_t)(20 + 8 + dl));
	uint8_t *u = f + 34;
	wr16(u, gport);
	wr16(u + 2, port);
	wr16(u + 4, (uint16_t)(8 + dl));
	wr16(u + 6, 0);		/* no checksum (IPv4 allows it) */
	memcpy(u + 8, data, dl);
	nf_fix_checksums(f, 14 + 28 + dl);
	wr16(u + 6, 0);
	return 14 + 28 + dl;
}

/* The datagram flow table (net/dgram.c) through UDP: a flow per guest key,
 * answers back to the guest, at UDP_MAX_FLOWS the least recently used is
 * recycled (the datagram that asked is dropped, the next one gets the freed
 * slot once io_uring lets go of the old poll), idle flows close at the tick;
 * the family is part of a flow's key, and an open flow is no pass: the
 * policy judges every datagram as it is then. */
static void test_dgram_table(void **state)
{
	(void)state;
	struct loop lp;
	assert_int_equal(loop_init(&lp, 1024), 0);
	net_destroy(ns);
	pol.allow_host = true;
	assert_int_equal(net_create(&ns, &lp, &cfg, out, NULL), 0);
	int peer = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001) };
	socklen_t sl = sizeof(sa);
	assert_int_equal(bind(peer, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(peer, (struct sockaddr *)&sa, &sl), 0);
	uint16_t port = ntohs(sa.sin_port);
	uint8_t f[200], gw16[16];
	policy_addr_from_v4(gw16, cfg.gateway_ip);

	size_t l = udp_frame(f, 1000, port, "first");
	input(ns, f, l);
	char buf[64];
	struct sockaddr_in from;
	socklen_t fl = sizeof(from);
	assert_int_equal(recvfrom(peer, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl), 5);
	assert_memory_equal(buf, "first", 5);
	/* The answer reaches the guest from the gateway's port. */
	nout = 0;
	assert_int_equal(sendto(peer, "back", 4, 0, (struct sockaddr *)&from, fl), 4);
	for (int i = 0; i < 50 && nout == 0; i++)
		loop_run_once(&lp, 10000000);
	assert_int_equal(nout, 1);
	assert_int_equal(outf[0][14 + 9], 17);
	assert_int_equal(rd16(outf[0] + 34), port);
	assert_int_equal(rd16(outf[0] + 36), 1000);
	assert_memory_equal(outf[0] + 42, "back", 4);
	/* The family is part of the key: an IPv6 packet to ::ffff:10.0.2.2
	 * would not share the IPv4 flow's socket. */
	assert_non_null(dgram_find(ns, DGRAM_UDP, false, 1000, gw16, port));
	assert_null(dgram_find(ns, DGRAM_UDP, true, 1000, gw16, port));
	/* The policy is read for every datagram, an open flow's too: once the
	 * host is no longer allowed, the next datagram is refused (ICMP
	 * prohibited) and never reaches the peer through the flow's socket. */
	pol.allow_host = false;
	uint64_t denied = ns->stats.denied_udp;
	nout = 0;
	l = udp_frame(f, 1000, port, "after");
	input(ns, f, l);
	assert_int_equal(ns->stats.denied_udp, denied + 1);
	assert_int_equal(nout, 1);
	assert_int_equal(outf[0][34], 3);	/* destination unreachable */
	assert_int_equal(outf[0][35], 13);	/* administratively prohibited */
	assert_int_equal(recv(peer, buf, sizeof(buf), MSG_DONTWAIT), -1);
	pol.allow_host = true;

	/* Fill the kind's cap; the flow of port 1000 is the oldest. */
	for (uint16_t g = 1001; g < 1000 + UDP_MAX_FLOWS; g++) {
		l = udp_frame(f, g, port, "x");
		input(ns, f, l);
	}
	assert_int_equal(ns->stats.udp_flows, UDP_MAX_FLOWS);
	struct dgram_flow *oldest = dgram_find(ns, DGRAM_UDP, false, 1000, gw16, port);
	assert_non_null(oldest);
	oldest->last_ns = 0;
	uint64_t nomem = ns->stats.drop_nomem;
	l = udp_frame(f, 3000, port, "new");
	input(ns, f, l);
	assert_int_equal(ns->stats.drop_nomem, nomem + 1);
	assert_null(dgram_find(ns, DGRAM_UDP, false, 1000, gw16, port));
	assert_null(dgram_find(ns, DGRAM_UDP, false, 3000, gw16, port));
	loop_run_once(&lp, 10000000);	/* the cancelled poll comes back */
	input(ns, f, l);
	assert_non_null(dgram_find(ns, DGRAM_UDP, false, 3000, gw16, port));
	assert_int_equal(ns->stats.udp_flows, UDP_MAX_FLOWS + 1);

	/* Idle past UDP_IDLE_NS: every flow closes at the tick. */
	ns->now += UDP_IDLE_NS + 2;
	assert_int_equal(dgram_tick(ns), NET_NEVER);
	assert_null(dgram_find(ns, DGRAM_UDP, false, 3000, gw16, port));
	assert_null(dgram_find(ns, DGRAM_UDP, false, 1001, gw16, port));
	close(peer);
	net_destroy(ns);
	ns = NULL;
	loop_fini(&lp);
	pol.allow_host = false;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_arp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dhcp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_icmp_echo_and_bad_frames, setup, teardown),
		cmocka_unit_test_setup_teardown(test_denied_tcp_rst_udp_icmp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_denied_syn_always_rst, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tcp_stream_flow, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tcp_stream_want_when_ready, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dgram_table, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tcp_handler_socket, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tcp_host_reply_and_close, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tcp_guest_rst_and_bad_options, setup, teardown),
		cmocka_unit_test_setup_teardown(test_snapshot_resets_flows, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tcp_zero_window_and_keepalive, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tcp_partial_ack_recovery, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tcp_delayed_ack, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ip4_fragments, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tcp_checksum_offload, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tcp_sack_reassembly, setup, teardown),
		cmocka_unit_test(test_destroy_on_live_loop),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
