/* net/tcp.c - TCP: terminate the guest's connections, re-open them on the host.
 *
 * Each guest connection is one struct tcp_flow with two bounded rings:
 *  - to the guest (tg_buf): bytes read from the host socket, kept until the
 *    guest acknowledges them (retransmission source).  The host socket is
 *    only read while the ring has room, so a slow guest stops the reads
 *    and the kernel's window closes towards the remote (back-pressure).
 *  - to the host (th_buf): what the guest sent that the host socket did not
 *    take at once.  The window advertised to the guest is exactly the room
 *    left in it, so a full host socket closes the guest's window; when the
 *    socket drains, a window update goes out at once.
 * Loss recovery: one retransmission timer (RTO from 200 ms, doubling), go
 * back to the oldest unacknowledged byte on expiry, fast retransmit after 3
 * duplicate ACKs with NewReno partial-ACK recovery (each partial ACK resends
 * the next hole at once), zero-window probes.  Out-of-order segments from
 * the guest are held in th_buf at their place (up to TCP_OOO_MAX ranges, no
 * allocation) and reported with SACK blocks when the guest offered SACK.
 * ACKs for small pushed segments wait up to TCP_DELACK_NS for host data to
 * ride on; everything else is acked at the end of the batch.  Both
 * directions close independently (half-close); RST both ways; keepalive
 * towards the guest after TCP_KEEPALIVE_IDLE_NS of silence, SO_KEEPALIVE on
 * host sockets.
 */
#include "net/internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"

#define SEQ_LT(a, b) ((int32_t)((a) - (b)) < 0)
#define SEQ_LEQ(a, b) ((int32_t)((a) - (b)) <= 0)
#define SEQ_GT(a, b) ((int32_t)((a) - (b)) > 0)
#define SEQ_GEQ(a, b) ((int32_t)((a) - (b)) >= 0)

static void tcp_output(struct tcp_flow *f);
static void tcp_host_read(struct tcp_flow *f);
static void check_done(struct tcp_flow *f);

/* When an established flow's next keepalive probe is due (no guest
 * segment for TCP_KEEPALIVE_IDLE_NS, then one probe per interval). */
static uint64_t ka_deadline(const struct tcp_flow *f)
{
	return f->last_rx_ns + TCP_KEEPALIVE_IDLE_NS + (uint64_t)f->ka_probes * TCP_KEEPALIVE_INTVL_NS + 1;
}

/* (Re)start the retransmission timer: rto_ns from now. */
static void flow_arm_rto(struct tcp_flow *f)
{
	f->rto_at = f->ns->now + f->rto_ns;
	net_timer_need(f->ns, f->rto_at);
}
static const struct stream_ops tcp_stream_ops;
static void stream_wake(struct tcp_flow *f, bool rd, bool wr);

static unsigned flow_hash(uint16_t gport, const uint8_t *rip6, uint16_t rport)
{
	uint32_t a, b, c, d;
	memcpy(&a, rip6, 4);
	memcpy(&b, rip6 + 4, 4);
	memcpy(&c, rip6 + 8, 4);
	memcpy(&d, rip6 + 12, 4);
	uint32_t rip = a ^ b * 31u ^ c * 961u ^ d;
	uint32_t h = rip * 2654435761u ^ ((uint32_t)gport << 16 | rport) * 40503u;
	return (h ^ h >> 15) % TCP_HASH;
}

static struct tcp_flow *flow_find(struct net_stack *ns, uint16_t gport, const uint8_t *rip6, uint16_t rport)
{
	for (int i = ns->tcp_hash[flow_hash(gport, rip6, rport)]; i >= 0; i = ns->tcp[i].hnext) {
		struct tcp_flow *f = &ns->tcp[i];
		if (f->gport == gport && f->rport == rport && memcmp(f->rip6, rip6, 16) == 0)
			return f;
	}
	return NULL;
}

static void flow_unhash(struct tcp_flow *f)
{
	int *pp = &f->ns->tcp_hash[flow_hash(f->gport, f->rip6, f->rport)];
	while (*pp >= 0) {
		if (*pp == f->idx) {
			*pp = f->hnext;
			return;
		}
		pp = &f->ns->tcp[*pp].hnext;
	}
}

/* RFC 6528 initial sequence number: a keyed hash of the connection's
 * addresses and ports (key drawn once per stack) plus a 4 us clock, so no
 * system call per connection. */
static uint32_t initial_seq(const struct net_stack *ns, const struct tcp_flow *f)
{
	uint64_t h = ns->isn_key[0], w[5];
	memcpy(w, f->gip6, 16);
	memcpy(w + 2, f->rip6, 16);
	w[4] = (uint64_t)f->gport << 16 | f->rport;
	for (int i = 0; i < 5; i++) {
		h = (h ^ w[i]) * 0x9E3779B97F4A7C15ull;
		h ^= h >> 31;
		h = (h ^ ns->isn_key[1]) * 0xBF58476D1CE4E5B9ull;
		h ^= h >> 29;
	}
	return (uint32_t)(h >> 32) + (uint32_t)(ns->now >> 12);
}

/* A flow between the guest's l3->src:gport and l3->dst:rport. */
static struct tcp_flow *flow_alloc(struct net_stack *ns, const struct l3 *l3, uint16_t gport,
				   uint16_t rport)
{
	struct tcp_flow *f = NULL;
	for (int i = 0; i < TCP_MAX_FLOWS; i++) {
		if (ns->tcp[i].state == TS_FREE) {
			f = &ns->tcp[i];
			break;
		}
	}
	if (!f)
		return NULL;
	uint8_t *tg = malloc(TCP_TO_GUEST_BUF), *th = malloc(TCP_TO_HOST_BUF);
	if (!tg || !th) {
		free(tg);
		free(th);
		return NULL;
	}
	int idx = f->idx;
	bool in_list = f->in_ack_list;
	memset(f, 0, sizeof(*f));
	f->idx = idx;
	f->in_ack_list = in_list;
	f->ns = ns;
	f->fd = -1;
	f->tg_buf = tg;
	f->th_buf = th;
	f->v6 = l3->v6;
	f->gip = l3->v6 ? 0 : l3->src4;
	f->rip = l3->v6 ? 0 : l3->dst4;
	memcpy(f->gip6, l3->src, 16);
	memcpy(f->rip6, l3->dst, 16);
	f->gport = gport;
	f->rport = rport;
	uint32_t iss = initial_seq(ns, f);
	f->iss = iss;
	f->snd_una = f->snd_nxt = f->tg_end = iss + 1;
	f->rcv_wscale = TCP_WSCALE;
	f->mss = 536;
	f->rto_ns = TCP_RTO_MIN_NS;
	f->last_rx_ns = ns->now;
	net_timer_need(ns, ka_deadline(f));
	unsigned h = flow_hash(gport, f->rip6, rport);
	f->hnext = ns->tcp_hash[h];
	ns->tcp_hash[h] = f->idx;
	ns->stats.tcp_flows++;
	return f;
}

/* The slot becomes reusable once io_uring holds none of its ops and a
 * stream consumer (if any) has let go. */
static void flow_try_release(struct tcp_flow *f)
{
	if (f->state != TS_DEAD || f->rd_pending || f->wr_pending)
		return;
	if (f->is_stream && !f->stream_closed)
		return;
	free(f->tg_buf);
	free(f->th_buf);
	f->tg_buf = f->th_buf = NULL;
	f->state = TS_FREE;
}

/* End the flow: abortive closes send RST to the host peer (SO_LINGER 0). */
static void flow_close(struct tcp_flow *f, bool abortive)
{
	if (f->state == TS_DEAD || f->state == TS_FREE)
		return;
	struct net_stack *ns = f->ns;
	flow_unhash(f);
	f->state = TS_DEAD;
	if (f->fd >= 0) {
		if (abortive) {
			struct linger l = { 1, 0 };
			setsockopt(f->fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
		}
		if (f->rd_pending)
			loop_cancel(ns->loop, &f->rd_op);
		if (f->wr_pending)
			loop_cancel(ns->loop, &f->wr_op);
		close(f->fd);
		f->fd = -1;
	}
	if (f->is_stream)
		stream_wake(f, true, true);
	flow_try_release(f);
}

static uint32_t rcv_space(const struct tcp_flow *f)
{
	return TCP_TO_HOST_BUF - f->th_len;
}

static uint16_t window_field(struct tcp_flow *f, bool syn)
{
	uint32_t space = rcv_space(f);
	if (syn || !f->wscale_ok)
		return (uint16_t)MIN(space, 65535u);
	return (uint16_t)MIN(space >> f->rcv_wscale, 65535u);
}

/* SACK option (RFC 2018): a pending D-SACK block first (RFC 2883, sent
 * once), then the out-of-order range with the latest segment, then the
 * other ranges held; returns its length. */
static size_t put_sack_blocks(struct tcp_flow *f, uint8_t *o)
{
	int first = -1;
	for (int i = 0; i < f->nooo; i++)
		if (SEQ_LEQ(f->ooo[i].start, f->sack_recent) && SEQ_LT(f->sack_recent, f->ooo[i].end))
			first = i;
	unsigned n = 0;
	uint8_t *b = o + 4;
	if (f->dsack) {
		wr32(b, f->dsack_start);
		wr32(b + 4, f->dsack_end);
		n++;
		f->dsack = false;
	}
	if (first >= 0) {
		wr32(b + 8 * n, f->ooo[first].start);
		wr32(b + 8 * n + 4, f->ooo[first].end);
		n++;
	}
	for (int i = 0; i < f->nooo && n < TCP_SACK_BLOCKS; i++) {
		if (i == first)
			continue;
		wr32(b + 8 * n, f->ooo[i].start);
		wr32(b + 8 * n + 4, f->ooo[i].end);
		n++;
	}
	o[0] = TCPOPT_NOP;
	o[1] = TCPOPT_NOP;
	o[2] = TCPOPT_SACK;
	o[3] = (uint8_t)(2 + 8 * n);
	return 4 + 8 * n;
}

/* Build and send one segment; dlen bytes of data from the ring at seq.
 * gso: a super-segment for the transport to split at the MSS. */
static void tcp_emit_ex(struct tcp_flow *f, uint8_t flags, uint32_t seq, uint32_t dlen, bool gso)
{
	struct net_stack *ns = f->ns;
	uint8_t *t = f->v6 ? net_ip6_begin(ns, f->rip6, f->gip6, 6) : net_ip4_begin(ns, f->rip, f->gip, 6);
	size_t hlen = TCP_HLEN;
	tcph_set_ports(t, f->rport, f->gport);
	tcph_set_seq(t, seq);
	tcph_set_ack(t, (flags & TCP_F_ACK) ? f->rcv_nxt : 0);
	tcph_set_flags(t, flags);
	bool syn = flags & TCP_F_SYN;
	uint16_t win = window_field(f, syn);
	tcph_set_win(t, win);
	wr16(t + TCP_CSUM_OFF, 0);
	wr16(t + 18, 0);	/* urgent pointer */
	if (syn) {
		uint8_t *o = t + TCP_HLEN;
		o[0] = TCPOPT_MSS;
		o[1] = 4;
		wr16(o + 2, (uint16_t)(ns->cfg.mtu - (f->v6 ? IP6_HLEN : IP4_HLEN) - TCP_HLEN));
		hlen += 4;
		if (f->wscale_ok || f->state == TS_SYN_SENT) {
			o[4] = TCPOPT_NOP;
			o[5] = TCPOPT_WSCALE;
			o[6] = 3;
			o[7] = f->rcv_wscale;
			hlen += 4;
		}
		if (f->sack_ok || f->state == TS_SYN_SENT) {
			o += hlen - TCP_HLEN;
			o[0] = TCPOPT_NOP;
			o[1] = TCPOPT_NOP;
			o[2] = TCPOPT_SACK_PERM;
			o[3] = 2;
			hlen += 4;
		}
	} else if ((flags & TCP_F_ACK) && dlen == 0 && f->sack_ok && (f->nooo || f->dsack)) {
		hlen += put_sack_blocks(f, t + TCP_HLEN);
	}
	tcph_set_hlen(t, hlen);
	if (dlen) {
		uint32_t off = (seq - f->iss - 1) & (TCP_TO_GUEST_BUF - 1);
		uint32_t first = MIN(dlen, TCP_TO_GUEST_BUF - off);
		memcpy(t + hlen, f->tg_buf + off, first);
		memcpy(t + hlen + first, f->tg_buf, dlen - first);
	}
	size_t len = hlen + dlen;
	uint32_t seed = f->v6 ? csum_pseudo6(f->rip6, f->gip6, 6, (uint32_t)len)
			      : csum_pseudo4(f->rip, f->gip, 6, (uint16_t)len);
	uint16_t c;
	if (gso || (dlen && (net_offloads(ns) & NET_OFFLOAD_CSUM))) {
		/* Offload: the checksum is left partial (pseudo-header only) for
		 * the transport; a super-segment is also split at the MSS. */
		c = (uint16_t)~csum_fold(seed);
		size_t l3 = f->v6 ? IP6_HLEN : IP4_HLEN;
		ns->tx_gso = (struct net_gso){ .gso_size = gso ? f->mss : 0,
					       .csum_start = (uint16_t)(ETH_HLEN_ + l3),
					       .csum_offset = TCP_CSUM_OFF, .hdr_len = (uint16_t)(ETH_HLEN_ + l3 + hlen),
					       .v6 = f->v6 };
		ns->tx_offload = true;
	} else {
		c = csum_fold(csum_partial(t, len, seed));
	}
	memcpy(t + TCP_CSUM_OFF, &c, 2);
	if (flags & TCP_F_ACK) {
		f->ack_pending = false;
		f->ack_sent = f->rcv_nxt;
		f->adv_wnd = f->rcv_nxt + (syn || !f->wscale_ok ? win : (uint32_t)win << f->rcv_wscale);
	}
	if (f->v6)
		net_ip6_send(ns, len);
	else
		net_ip4_send(ns, len);
}

static void tcp_emit(struct tcp_flow *f, uint8_t flags, uint32_t seq, uint32_t dlen)
{
	tcp_emit_ex(f, flags, seq, dlen, false);
}

static void send_ack(struct tcp_flow *f)
{
	tcp_emit(f, TCP_F_ACK, f->snd_nxt, 0);
}

/* RST to the guest for a segment that has no flow (or a refused SYN). */
/* TCP to a multicast or broadcast address: dropped, never answered (an
 * answer would come from an address no host has).  Every unicast
 * destination, reserved ranges such as 240/4 included, goes on to the
 * policy, whose refusal is a RST. */
static bool tcp_dst_not_unicast(const struct net_stack *ns, const struct l3 *ip)
{
	if (ip->v6)
		return ip->dst[0] == 0xff;
	uint32_t bcast = (ns->cfg.guest_ip & ns->cfg.netmask) | ~ns->cfg.netmask;
	return (ip->dst4 >> 28) == 0xe || ip->dst4 == 0xffffffff || (ns->cfg.netmask && ip->dst4 == bcast);
}

static void send_rst_for(struct net_stack *ns, const struct l3 *l3, const uint8_t *t, size_t len)
{
	uint8_t flags = tcph_flags(t);
	uint32_t seq = tcph_seq(t), ack = tcph_ack(t);
	size_t hlen = tcph_hlen(t);
	uint32_t seglen = (uint32_t)(len - hlen) + !!(flags & TCP_F_SYN) + !!(flags & TCP_F_FIN);
	uint8_t *r = l3->v6 ? net_ip6_begin(ns, l3->dst, l3->src, 6) : net_ip4_begin(ns, l3->dst4, l3->src4, 6);
	memset(r, 0, TCP_HLEN);
	tcph_set_ports(r, tcph_dport(t), tcph_sport(t));
	if (flags & TCP_F_ACK) {
		tcph_set_seq(r, ack);
		tcph_set_flags(r, TCP_F_RST);
	} else {
		tcph_set_ack(r, seq + seglen);
		tcph_set_flags(r, TCP_F_RST | TCP_F_ACK);
	}
	tcph_set_hlen(r, TCP_HLEN);
	uint32_t seed = l3->v6 ? csum_pseudo6(l3->dst, l3->src, 6, TCP_HLEN)
			       : csum_pseudo4(l3->dst4, l3->src4, 6, TCP_HLEN);
	uint16_t c = csum_fold(csum_partial(r, TCP_HLEN, seed));
	memcpy(r + 16, &c, 2);
	if (l3->v6)
		net_ip6_send(ns, TCP_HLEN);
	else
		net_ip4_send(ns, TCP_HLEN);
}

static void send_rst_flow(struct tcp_flow *f)
{
	tcp_emit(f, TCP_F_RST | TCP_F_ACK, f->snd_nxt, 0);
}

static void abort_flow(struct tcp_flow *f)
{
	send_rst_flow(f);
	flow_close(f, true);
}

static void arm_rto(struct tcp_flow *f)
{
	if (!f->rto_at)
		flow_arm_rto(f);
}

static bool data_outstanding(const struct tcp_flow *f)
{
	return f->snd_nxt != f->snd_una;
}

/* Whether the transport takes a segment with n bytes of data now (Ethernet,
 * the larger IP header and a TCP header with every option: an upper
 * bound); if not, the flow waits for net_guest_room (tcp_room). */
static bool guest_room(struct tcp_flow *f, uint32_t n)
{
	struct net_stack *ns = f->ns;
	if (!ns->room || ns->room(ns->out_opaque, 14u + 40u + 60u + n))
		return true;
	f->room_wait = true;
	ns->room_wanted = true;
	return false;
}

void tcp_room(struct net_stack *ns)
{
	for (int i = 0; i < TCP_MAX_FLOWS; i++) {
		struct tcp_flow *f = &ns->tcp[i];
		if (!f->room_wait)
			continue;
		f->room_wait = false;
		if (f->state == TS_ESTABLISHED) {
			tcp_output(f);
			check_done(f);
		}
	}
}

/* Send new data and the FIN as far as the guest's window allows. */
static void tcp_output(struct tcp_flow *f)
{
	if (f->state != TS_ESTABLISHED)
		return;
	uint32_t wnd_end = f->snd_una + f->snd_wnd;
	while (SEQ_LT(f->snd_nxt, f->tg_end)) {
		int32_t room = (int32_t)(wnd_end - f->snd_nxt);
		if (room <= 0)
			break;
		uint32_t lim = f->mss;
		if (net_offloads(f->ns) & (f->v6 ? NET_OFFLOAD_TSO6 : NET_OFFLOAD_TSO4)) {
			/* whole MSS multiples up to 64 KiB */
			uint32_t max = 65535u - (f->v6 ? 0 : IP4_HLEN) - TCP_HLEN;
			lim = max / f->mss * f->mss;
		}
		uint32_t n = MIN(MIN(f->tg_end - f->snd_nxt, (uint32_t)room), lim);
		if (!guest_room(f, n))
			break;
		bool last = f->snd_nxt + n == f->tg_end;
		/* The host's last bytes carry its FIN when it already closed
		 * (a reply then close, as HTTP/1.0 and most one-shot servers
		 * do): one segment for the guest to take, not two. */
		bool fin = last && f->host_eof && !f->fin_sent;
		uint8_t flags = TCP_F_ACK | (last ? TCP_F_PSH : 0) | (fin ? TCP_F_FIN : 0);
		tcp_emit_ex(f, flags, f->snd_nxt, n, n > f->mss);
		f->snd_nxt += n + fin;
		f->fin_sent |= fin;
		arm_rto(f);
	}
	if (f->host_eof && !f->fin_sent && f->snd_nxt == f->tg_end) {
		tcp_emit(f, TCP_F_FIN | TCP_F_ACK, f->snd_nxt, 0);
		f->snd_nxt++;
		f->fin_sent = true;
		arm_rto(f);
	}
	if (f->snd_wnd == 0 && SEQ_LT(f->snd_nxt, f->tg_end))
		arm_rto(f);	/* persist: probe the zero window */
}

/* Resend the oldest unacknowledged segment (or FIN). */
static void retransmit_one(struct tcp_flow *f)
{
	if (SEQ_LT(f->snd_una, f->tg_end)) {
		uint32_t n = MIN(f->tg_end - f->snd_una, (uint32_t)f->mss);
		bool fin = f->fin_sent && f->snd_una + n == f->tg_end;	/* sent together */
		tcp_emit(f, TCP_F_ACK | (fin ? TCP_F_FIN : 0), f->snd_una, n);
		if (SEQ_LT(f->snd_nxt, f->snd_una + n))
			f->snd_nxt = f->snd_una + n;	/* zero-window probe */
	} else if (f->fin_sent && !f->fin_acked) {
		tcp_emit(f, TCP_F_FIN | TCP_F_ACK, f->tg_end, 0);
	}
	f->ns->stats.tcp_retrans++;
}

/* ---- host side ---- */

static void arm_write_poll(struct tcp_flow *f);

static void maybe_shutdown_host(struct tcp_flow *f)
{
	if (!f->guest_fin || f->th_len || f->host_shut)
		return;
	f->host_shut = true;
	if (f->fd >= 0)
		shutdown(f->fd, SHUT_WR);
	else if (f->is_stream)
		stream_wake(f, true, false);
}

static void check_done(struct tcp_flow *f)
{
	if (f->state == TS_ESTABLISHED && f->fin_acked && f->guest_fin && f->host_shut)
		flow_close(f, false);
}

/* After th_buf drained: tell the guest at once if the window opened. */
static void window_update(struct tcp_flow *f)
{
	if (f->state != TS_ESTABLISHED)
		return;
	uint32_t space = rcv_space(f);
	uint32_t edge = f->rcv_nxt + space;
	uint32_t old_win = f->adv_wnd - f->rcv_nxt;
	if (SEQ_GT(edge, f->adv_wnd) && (edge - f->adv_wnd >= 2u * f->mss || old_win < f->mss))
		send_ack(f);
}

static void th_drain(struct tcp_flow *f)
{
	while (f->th_len && f->fd >= 0) {
		uint32_t first = MIN(f->th_len, TCP_TO_HOST_BUF - f->th_head);
		struct iovec iov[2] = { { f->th_buf + f->th_head, first },
					{ f->th_buf, f->th_len - first } };
		struct msghdr mh = { .msg_iov = iov, .msg_iovlen = f->th_len > first ? 2 : 1 };
		ssize_t n = sendmsg(f->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			abort_flow(f);
			return;
		}
		f->th_head = (f->th_head + (uint32_t)n) & (TCP_TO_HOST_BUF - 1);
		f->th_len -= (uint32_t)n;
	}
	if (f->th_len)
		arm_write_poll(f);
	window_update(f);
	maybe_shutdown_host(f);
	check_done(f);
}

/* Copy guest bytes for sequence number seq into their place in th_buf
 * (after the in-order bytes; seq lies inside the window, so it fits). */
static void th_put(struct tcp_flow *f, uint32_t seq, const uint8_t *data, uint32_t n)
{
	uint32_t pos = (f->th_head + f->th_len + (seq - f->rcv_nxt)) & (TCP_TO_HOST_BUF - 1);
	uint32_t first = MIN(n, TCP_TO_HOST_BUF - pos);
	memcpy(f->th_buf + pos, data, first);
	memcpy(f->th_buf, data + first, n - first);
}

/* Bytes [start, end) arrived a second time: the next ACK reports them
 * (D-SACK) when the guest agreed to SACK. */
static void dsack_note(struct tcp_flow *f, uint32_t start, uint32_t end)
{
	if (!f->sack_ok || start == end)
		return;
	f->dsack = true;
	f->dsack_start = start;
	f->dsack_end = end;
}

/* Hold an out-of-order guest segment [seq, seq + dlen) (seq beyond rcv_nxt)
 * for SACK: bytes already held are kept (the first copy wins), ranges that
 * touch are merged, and at most TCP_OOO_MAX separate ranges are kept (a
 * segment that would need another is dropped and counted). */
static void ooo_insert(struct tcp_flow *f, uint32_t seq, const uint8_t *data, uint32_t dlen, bool fin)
{
	struct net_stack *ns = f->ns;
	uint32_t edge = f->rcv_nxt + rcv_space(f);
	if (f->ooo_fin && SEQ_LT(f->ooo_fin_seq, edge))
		edge = f->ooo_fin_seq;	/* nothing is taken beyond a FIN */
	uint32_t end = seq + dlen;
	if (SEQ_GT(end, edge)) {
		end = edge;
		fin = false;
	}
	if (SEQ_GT(seq, end) || (seq == end && !fin)) {
		ns->stats.drop_tcp_ooo++;	/* outside the window */
		return;
	}
	unsigned lo = 0, hi, n = f->nooo;
	while (lo < n && SEQ_LT(f->ooo[lo].end, seq))
		lo++;
	for (hi = lo; hi < n && SEQ_LEQ(f->ooo[hi].start, end); hi++)
		;
	if (seq != end && lo == hi && n == TCP_OOO_MAX) {
		ns->stats.drop_tcp_ooo++;
		return;
	}
	if (fin) {
		f->ooo_fin = true;
		f->ooo_fin_seq = end;
	}
	if (seq == end)
		return;
	uint32_t cur = seq;
	bool dup = false;
	for (unsigned i = lo; i < hi; i++) {
		if (SEQ_LT(cur, f->ooo[i].start))
			th_put(f, cur, data + (cur - seq), f->ooo[i].start - cur);
		uint32_t dup_start = SEQ_GT(f->ooo[i].start, cur) ? f->ooo[i].start : cur;
		uint32_t dup_end = SEQ_LT(f->ooo[i].end, end) ? f->ooo[i].end : end;
		if (!dup && SEQ_LT(dup_start, dup_end)) {
			dsack_note(f, dup_start, dup_end);	/* the first bytes held twice */
			dup = true;
		}
		if (SEQ_GT(f->ooo[i].end, cur))
			cur = f->ooo[i].end;
	}
	if (SEQ_LT(cur, end))
		th_put(f, cur, data + (cur - seq), end - cur);
	uint32_t start = seq;
	if (lo < hi) {
		if (SEQ_LT(f->ooo[lo].start, start))
			start = f->ooo[lo].start;
		if (SEQ_GT(f->ooo[hi - 1].end, end))
			end = f->ooo[hi - 1].end;
	}
	memmove(&f->ooo[lo + 1], &f->ooo[hi], (n - hi) * sizeof(f->ooo[0]));
	f->nooo = (uint8_t)(n - (hi - lo) + 1);
	f->ooo[lo].start = start;
	f->ooo[lo].end = end;
	f->sack_recent = seq;
	ns->stats.tcp_ooo_queued++;
}

/* rcv_nxt moved: held ranges it reached become in-order bytes.  Returns
 * true when it reached a FIN that came out of order. */
static bool ooo_collect(struct tcp_flow *f)
{
	while (f->nooo && SEQ_LEQ(f->ooo[0].start, f->rcv_nxt)) {
		if (SEQ_GT(f->ooo[0].end, f->rcv_nxt)) {
			uint32_t n = f->ooo[0].end - f->rcv_nxt;
			f->th_len += n;
			f->rcv_nxt += n;
		}
		f->nooo--;
		memmove(&f->ooo[0], &f->ooo[1], f->nooo * sizeof(f->ooo[0]));
	}
	if (f->ooo_fin && f->nooo == 0 && f->rcv_nxt == f->ooo_fin_seq) {
		f->ooo_fin = false;
		return true;
	}
	if (f->ooo_fin && SEQ_GT(f->rcv_nxt, f->ooo_fin_seq))
		f->ooo_fin = false;	/* the guest sent data past its FIN */
	return false;
}

/* Guest data in order (rcv_nxt already past it): straight to the socket
 * when nothing is queued, with any held out-of-order bytes it joins up
 * with.  Returns true when a held FIN became in order. */
static bool deliver_to_host(struct tcp_flow *f, const uint8_t *data, uint32_t n)
{
	const uint32_t mask = TCP_TO_HOST_BUF - 1;
	f->rcv_nxt -= n;	/* th_put()/ooo_collect() count from the first new byte */
	bool fin;
	if (f->is_stream) {
		th_put(f, f->rcv_nxt, data, n);
		f->th_len += n;
		f->rcv_nxt += n;
		fin = ooo_collect(f);
		if (f->stream_closed) {	/* consumer gone: discard */
			f->th_head = (f->th_head + f->th_len) & mask;
			f->th_len = 0;
		} else if (f->th_len) {
			stream_wake(f, true, false);
		}
		return fin;
	}
	if (f->th_len == 0 && f->fd >= 0 && n) {
		ssize_t w = send(f->fd, data, n, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w < 0 && errno != EAGAIN && errno != EINTR) {
			abort_flow(f);
			return false;
		}
		if (w > 0) {
			data += w;
			n -= (uint32_t)w;
			f->rcv_nxt += (uint32_t)w;
			f->th_head = (f->th_head + (uint32_t)w) & mask;
		}
	}
	bool socket_full = n != 0;
	th_put(f, f->rcv_nxt, data, n);
	f->th_len += n;
	f->rcv_nxt += n;
	fin = ooo_collect(f);
	if (socket_full)
		arm_write_poll(f);
	else if (f->th_len)
		th_drain(f);	/* held bytes that just became in order */
	return fin;
}

/* Read the host socket into tg_buf and send.  until_eagain false: a short
 * read ends the loop (the socket is drained; new data brings a new poll
 * completion), saving the recvmsg that would only say EAGAIN. */
static void tcp_host_read_ex(struct tcp_flow *f, bool until_eagain)
{
	f->rd_full = false;
	while (f->fd >= 0 && !f->host_eof &&
	       (f->state == TS_ESTABLISHED || f->state == TS_SYN_RCVD)) {
		uint32_t used = f->tg_end - f->snd_una;
		uint32_t space = TCP_TO_GUEST_BUF - used;
		if (space == 0) {
			f->rd_full = true;	/* back-pressure: the guest has not acked */
			break;
		}
		uint32_t off = (f->tg_end - f->iss - 1) & (TCP_TO_GUEST_BUF - 1);
		uint32_t first = MIN(space, TCP_TO_GUEST_BUF - off);
		struct iovec iov[2] = { { f->tg_buf + off, first }, { f->tg_buf, space - first } };
		struct msghdr mh = { .msg_iov = iov, .msg_iovlen = space > first ? 2 : 1 };
		ssize_t n = recvmsg(f->fd, &mh, MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			abort_flow(f);
			return;
		}
		if (n == 0) {
			f->host_eof = true;
			break;
		}
		f->tg_end += (uint32_t)n;
		if ((uint32_t)n < space && !until_eagain)
			break;
	}
	tcp_output(f);
	check_done(f);
}

static void tcp_host_read(struct tcp_flow *f)
{
	tcp_host_read_ex(f, true);
}

static void rd_cb(struct loop *loop, struct loop_op *op, int res, uint32_t flags)
{
	(void)loop;
	struct tcp_flow *f = op->opaque;
	if (!(flags & IORING_CQE_F_MORE) && !op->polling)
		f->rd_pending = false;
	if (f->ns->destroying)
		return;
	if (f->state == TS_DEAD) {
		flow_try_release(f);
		return;
	}
	f->ns->now = now_ns();
	if (res < 0)
		return;
	tcp_host_read_ex(f, (res & (POLLRDHUP | POLLHUP | POLLERR)) != 0);
}

static void start_reading(struct tcp_flow *f)
{
	if (f->rd_armed || f->fd < 0)
		return;
	f->rd_op.cb = rd_cb;
	f->rd_op.opaque = f;
	if (loop_poll(f->ns->loop, &f->rd_op, f->fd, POLLIN | POLLRDHUP) == 0) {
		f->rd_pending = true;
		f->rd_armed = true;
	}
}

/* The host connect() finished: poll_res is the POLLOUT poll's result (a
 * clean POLLOUT means connected; otherwise ask the socket why). */
static void host_connected(struct tcp_flow *f, int poll_res)
{
	int err = 0;
	if (poll_res < 0 || (poll_res & (POLLERR | POLLHUP)) || !(poll_res & POLLOUT)) {
		socklen_t el = sizeof(err);
		if (getsockopt(f->fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
			err = errno;
		else if (!err && !(poll_res > 0 && (poll_res & POLLOUT)))
			err = ECONNREFUSED;	/* cancelled or never writable */
	}
	if (err) {
		log_debug("net: tcp connect failed: %d", err);
		send_rst_flow(f);
		flow_close(f, false);
		return;
	}
	f->state = TS_SYN_RCVD;
	tcp_emit(f, TCP_F_SYN | TCP_F_ACK, f->iss, 0);
	f->snd_nxt = f->iss + 1;
	flow_arm_rto(f);
	start_reading(f);
}

static void wr_cb(struct loop *loop, struct loop_op *op, int res, uint32_t flags)
{
	(void)loop;
	(void)flags;
	struct tcp_flow *f = op->opaque;
	f->wr_pending = false;
	if (f->ns->destroying)
		return;
	if (f->state == TS_DEAD) {
		flow_try_release(f);
		return;
	}
	f->ns->now = now_ns();
	if (res < 0 && res != -ECANCELED)
		return;
	if (f->state == TS_CONNECTING)
		host_connected(f, res);
	else
		th_drain(f);
}

static void arm_write_poll(struct tcp_flow *f)
{
	if (f->wr_pending || f->fd < 0)
		return;
	f->wr_op.cb = wr_cb;
	f->wr_op.opaque = f;
	struct io_uring_sqe *sqe = loop_sqe(f->ns->loop, &f->wr_op);
	if (!sqe)
		return;
	io_uring_prep_poll_add(sqe, f->fd, POLLOUT);
	f->wr_pending = true;
}

/* ---- guest side ---- */

struct tcp_opts {
	uint16_t mss;
	int wscale;	/* -1: none */
	bool sack_ok;
};

static void parse_opts(const uint8_t *o, size_t len, struct tcp_opts *out)
{
	out->mss = 536;
	out->wscale = -1;
	out->sack_ok = false;
	size_t i = 0;
	while (i < len) {
		if (o[i] == TCPOPT_EOL)
			break;
		if (o[i] == TCPOPT_NOP) {
			i++;
			continue;
		}
		if (i + 1 >= len || o[i + 1] < 2 || i + o[i + 1] > len)
			break;	/* lying length: stop trusting the rest */
		if (o[i] == TCPOPT_MSS && o[i + 1] == 4)
			out->mss = rd16(o + i + 2);
		else if (o[i] == TCPOPT_WSCALE && o[i + 1] == 3)
			out->wscale = MIN(o[i + 2], 14);
		else if (o[i] == TCPOPT_SACK_PERM && o[i + 1] == 2)
			out->sack_ok = true;
		i += o[i + 1];
	}
}

static void apply_syn_opts(struct tcp_flow *f, const struct tcp_opts *o)
{
	unsigned max = f->ns->cfg.mtu - (f->v6 ? IP6_HLEN : IP4_HLEN) - TCP_HLEN;
	f->mss = (uint16_t)MAX(64u, MIN((unsigned)o->mss, max));
	f->sack_ok = o->sack_ok;
	if (o->wscale >= 0) {
		f->wscale_ok = true;
		f->snd_wscale = (uint8_t)o->wscale;
	} else {
		f->wscale_ok = false;
		f->snd_wscale = 0;
		f->rcv_wscale = 0;
	}
}

/* A new flow's stream consumer, if the stack has a handler: true when
 * the SYN is dealt with (kept by a consumer, or refused); false to go on
 * to a socket, then *sock is the handler's socket (2) or -1 (0). */
static bool syn_to_handler(struct net_stack *ns, const struct l3 *ip, const uint8_t *t, size_t len,
			   const struct tcp_opts *o, int *sock)
{
	uint16_t gport = tcph_sport(t), rport = tcph_dport(t);
	*sock = -1;
	if (!ns->stream_fn)
		return false;
	struct tcp_flow *f = flow_alloc(ns, ip, gport, rport);
	if (!f) {
		ns->stats.drop_nomem++;
		send_rst_for(ns, ip, t, len);
		return true;
	}
	f->is_stream = true;
	f->stream = (struct stream){ .ops = &tcp_stream_ops };
	f->want_rd = f->want_wr = false;
	f->irs = tcph_seq(t);
	f->rcv_nxt = f->irs + 1;
	f->snd_wnd = tcph_win(t);
	apply_syn_opts(f, o);
	int r = ns->stream_fn(ns->stream_opaque, ip->dst, rport, &f->stream, sock);
	if (r == 1) {
		f->state = TS_SYN_RCVD;
		tcp_emit(f, TCP_F_SYN | TCP_F_ACK, f->iss, 0);
		f->snd_nxt = f->iss + 1;
		flow_arm_rto(f);
		return true;
	}
	f->stream_closed = true;
	f->state = TS_ESTABLISHED;	/* so flow_close() runs */
	flow_close(f, false);
	if (r == 2 && *sock >= 0)
		return false;
	if (r == 2)		/* said 2 without a socket: refused */
		r = -EBADF;
	*sock = -1;
	if (r < 0)
		send_rst_for(ns, ip, t, len);
	return r < 0;
}

static void new_flow_from_syn(struct net_stack *ns, const struct l3 *ip, const uint8_t *t, size_t len,
			      const struct tcp_opts *o)
{
	uint32_t rip = ip->v6 ? 0 : ip->dst4;
	uint16_t gport = tcph_sport(t), rport = tcph_dport(t);
	int sock;
	if (syn_to_handler(ns, ip, t, len, o, &sock))
		return;
	enum policy_group why;
	if (sock < 0 && !net_dst_allowed(ns, ip->dst, &why)) {
		ns->stats.denied_tcp++;
		net_note_denied(ns, "tcp", ip->dst, rport, why);
		send_rst_for(ns, ip, t, len);
		return;
	}
	struct tcp_flow *f = ns->loop ? flow_alloc(ns, ip, gport, rport) : NULL;
	int fd = sock;
	if (f && fd < 0)
		fd = socket(ip->v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (!f || fd < 0) {
		if (ns->loop)
			ns->stats.drop_nomem++;
		if (f) {
			f->state = TS_ESTABLISHED;
			flow_close(f, false);
		}
		if (fd >= 0)
			close(fd);
		send_rst_for(ns, ip, t, len);
		return;
	}
	f->fd = fd;
	f->state = TS_CONNECTING;
	f->irs = tcph_seq(t);
	f->rcv_nxt = f->irs + 1;
	f->snd_wnd = tcph_win(t);
	apply_syn_opts(f, o);
	if (sock < 0) {
		int one = 1;
		setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		struct sockaddr_storage ss;
		socklen_t sl = net_host_sockaddr(ns, ip->v6, rip, ip->dst, rport, &ss);
		if (connect(fd, (struct sockaddr *)&ss, sl) < 0 && errno != EINPROGRESS) {
			send_rst_for(ns, ip, t, len);
			flow_close(f, false);
			return;
		}
	}
	arm_write_poll(f);	/* POLLOUT: connected (or failed), at once for a handler's socket */
}

/* ACK field processing; false if the segment must be dropped. */
static bool process_ack(struct tcp_flow *f, const uint8_t *t, uint32_t seglen)
{
	uint32_t ack = tcph_ack(t);
	uint32_t wnd = (uint32_t)tcph_win(t) << f->snd_wscale;
	if (SEQ_GT(ack, f->snd_nxt)) {
		send_ack(f);	/* acks something never sent */
		return false;
	}
	if (SEQ_GT(ack, f->snd_una)) {
		f->snd_una = ack;
		if (f->fin_sent && ack == f->tg_end + 1)
			f->fin_acked = true;
		f->dupacks = 0;
		f->retries = 0;
		f->rto_ns = TCP_RTO_MIN_NS;
		if (data_outstanding(f))
			flow_arm_rto(f);
		else
			f->rto_at = 0;
		f->snd_wnd = wnd;
		if (f->in_recovery) {
			if (SEQ_LT(ack, f->recover))
				retransmit_one(f);	/* partial ACK: the next hole */
			else
				f->in_recovery = false;
		}
		if (f->is_stream)
			stream_wake(f, false, true);
		if (f->rd_full)
			tcp_host_read(f);	/* room in tg_buf again */
	} else if (ack == f->snd_una) {
		if (seglen == 0 && wnd == f->snd_wnd && data_outstanding(f) && !(tcph_flags(t) & (TCP_F_SYN | TCP_F_FIN))) {
			if (++f->dupacks == 3 && !f->in_recovery) {
				f->ns->stats.tcp_fast_retrans++;
				f->in_recovery = true;
				f->recover = f->snd_nxt;
				retransmit_one(f);
			}
		}
		if (wnd != f->snd_wnd) {
			f->snd_wnd = wnd;
			tcp_output(f);
		}
	}
	return f->state != TS_DEAD;
}

/* Quick-ACK rules: an ACK may wait (up to TCP_DELACK_NS, for host data to
 * carry it) only for a pushed segment shorter than the MSS (or a FIN)
 * handed to a host that can still answer, with less than two segments'
 * worth unacknowledged and the buffer less than half full.  Bulk data, a
 * filling buffer (the window matters) and anything unusual are acked at
 * the end of the batch. */
static bool ack_may_wait(const struct tcp_flow *f, uint8_t flags, uint32_t dlen)
{
	return dlen && dlen < f->mss && (flags & TCP_F_PSH) && f->th_len < TCP_TO_HOST_BUF / 2 &&
	       !f->guest_fin && !f->nooo &&
	       !f->host_eof &&	/* nothing will come to ride on */
	       f->rcv_nxt - f->ack_sent < 2u * f->mss;
}

static void arm_delack(struct net_stack *ns, uint64_t due);

/* Owe the guest an ACK: at the next tcp_flush(), or (wait) by the delayed
 * ACK deadline unless a segment to the guest carries it first. */
static void queue_ack(struct tcp_flow *f, bool wait)
{
	struct net_stack *ns = f->ns;
	if (!f->in_ack_list && ns->nack >= TCP_MAX_FLOWS) {
		send_ack(f);
		return;
	}
	if (!wait)
		f->delack_at = 0;
	else if (!f->ack_pending)
		f->delack_at = ns->now + TCP_DELACK_NS;
	f->ack_pending = true;
	if (!f->in_ack_list) {
		f->in_ack_list = true;
		ns->ack_list[ns->nack++] = f->idx;
	}
}

static void delack_cb(struct loop *loop, struct loop_op *op, int res, uint32_t flags)
{
	(void)loop;
	(void)res;
	(void)flags;
	struct net_stack *ns = op->opaque;
	ns->delack_armed = false;
	ns->delack_cancelling = false;
	if (ns->destroying)
		return;
	ns->now = now_ns();
	tcp_flush(ns);	/* also after a cancel: re-arms for ACKs delayed since */
}

static void arm_delack(struct net_stack *ns, uint64_t due)
{
	/* Deadlines only grow (now + a constant), so an armed timer is never
	 * later than the one asked for. */
	if (!ns->loop || ns->delack_armed)
		return;
	ns->delack_op.cb = delack_cb;
	ns->delack_op.opaque = ns;
	uint64_t in = due > ns->now ? due - ns->now : 1;
	if (loop_timer(ns->loop, &ns->delack_op, &ns->delack_ts, in) == 0)
		ns->delack_armed = true;
}

/* Send the ACKs owed, except delayed ones not yet due (kept, timer armed). */
void tcp_flush(struct net_stack *ns)
{
	unsigned keep = 0;
	uint64_t next = UINT64_MAX;
	for (unsigned i = 0; i < ns->nack; i++) {
		struct tcp_flow *f = &ns->tcp[ns->ack_list[i]];
		if (f->ack_pending && f->state == TS_ESTABLISHED) {
			if (f->delack_at && ns->now < f->delack_at) {
				ns->ack_list[keep++] = f->idx;
				next = MIN(next, f->delack_at);
				continue;
			}
			send_ack(f);
		}
		f->ack_pending = false;
		f->in_ack_list = false;
	}
	ns->nack = keep;
	if (keep) {
		arm_delack(ns, next);
	} else if (ns->delack_armed && !ns->delack_cancelling && ns->loop) {
		/* Every delayed ACK rode on data: spare the loop a wakeup. */
		if (loop_cancel(ns->loop, &ns->delack_op) == 0)
			ns->delack_cancelling = true;
	}
}

static void established_input(struct tcp_flow *f, const uint8_t *t, const uint8_t *data,
			      uint32_t dlen)
{
	uint8_t flags = tcph_flags(t);
	uint32_t seq = tcph_seq(t);
	if (!process_ack(f, t, dlen))
		return;
	bool need_ack = false, wait = false;
	if (dlen || (flags & TCP_F_FIN)) {
		if (SEQ_LT(seq, f->rcv_nxt)) {	/* overlap with what we have: trim */
			uint32_t skip = f->rcv_nxt - seq;
			dsack_note(f, seq, seq + MIN(skip, dlen));
			if (skip > dlen || (skip == dlen && !(flags & TCP_F_FIN))) {
				send_ack(f);	/* wholly old: duplicate */
				return;
			}
			skip = MIN(skip, dlen);
			data += skip;
			dlen -= skip;
			seq += skip;
		}
		if (f->guest_fin) {
			send_ack(f);
			return;
		}
		if (seq != f->rcv_nxt) {
			/* Out of order: held for SACK; the duplicate ACK (with
			 * SACK blocks when agreed) asks for the hole. */
			ooo_insert(f, seq, data, dlen, flags & TCP_F_FIN);
			send_ack(f);
			return;
		}
		uint32_t take = MIN(dlen, rcv_space(f));
		bool fin = (flags & TCP_F_FIN) && take == dlen;
		bool filled = f->nooo || f->ooo_fin;
		if (fin)
			f->nooo = 0, f->ooo_fin = false;	/* nothing lies beyond a FIN */
		if (take || filled) {
			f->rcv_nxt += take;
			fin |= deliver_to_host(f, data, take);
			if (f->state == TS_DEAD)
				return;
		}
		/* A FIN counts as pushed: its ACK may ride on our own FIN, which
		 * usually follows at once when the host closes too. */
		wait = !filled && ack_may_wait(f, flags | (fin ? TCP_F_PSH : 0), dlen ? dlen : fin);
		if (fin) {
			f->rcv_nxt++;
			f->guest_fin = true;
			maybe_shutdown_host(f);
			if (f->state == TS_DEAD)
				return;
		}
		need_ack = true;
	}
	tcp_output(f);
	if (need_ack && f->state == TS_ESTABLISHED) {
		if (f->dsack)
			send_ack(f);	/* the D-SACK now, as for a whole duplicate */
		else if (f->guest_fin && !wait)
			send_ack(f);	/* the flow may end below: no later flush for it */
		else
			queue_ack(f, wait);
	}
	check_done(f);
}

void tcp_input(struct net_stack *ns, const struct l3 *ip, const uint8_t *t, size_t len)
{
	if (len < TCP_HLEN) {
		ns->stats.drop_tcp++;
		return;
	}
	size_t hlen = tcph_hlen(t);
	if (hlen < TCP_HLEN || hlen > len) {
		ns->stats.drop_tcp++;
		return;
	}
	uint32_t seed = ip->v6 ? csum_pseudo6(ip->src, ip->dst, 6, (uint32_t)len)
			       : csum_pseudo4(ip->src4, ip->dst4, 6, (uint16_t)len);
	if (csum_fold(csum_partial(t, len, seed)) != 0) {
		ns->stats.drop_tcp_csum++;
		return;
	}
	uint8_t flags = tcph_flags(t);
	uint16_t gport = tcph_sport(t), rport = tcph_dport(t);
	struct tcp_opts o;
	parse_opts(t + TCP_HLEN, hlen - TCP_HLEN, &o);
	const uint8_t *data = t + hlen;
	uint32_t dlen = (uint32_t)(len - hlen);
	if (gport == 0 || rport == 0 || tcp_dst_not_unicast(ns, ip)) {
		ns->stats.drop_tcp++;	/* port 0, multicast or broadcast: no guest kernel sends it */
		return;
	}
	struct tcp_flow *f = flow_find(ns, gport, ip->dst, rport);
	if (!f) {
		if ((flags & (TCP_F_SYN | TCP_F_ACK | TCP_F_RST | TCP_F_FIN)) == TCP_F_SYN)
			new_flow_from_syn(ns, ip, t, len, &o);
		else if (!(flags & TCP_F_RST))
			send_rst_for(ns, ip, t, len);
		return;
	}
	f->last_rx_ns = ns->now;
	f->ka_probes = 0;
	uint32_t seq = tcph_seq(t);
	if (flags & TCP_F_RST) {
		uint32_t wnd = MAX(f->adv_wnd - f->rcv_nxt, 1u);
		if (f->state == TS_SYN_SENT ? ((flags & TCP_F_ACK) && tcph_ack(t) == f->iss + 1)
					     : (SEQ_GEQ(seq, f->rcv_nxt) && SEQ_LT(seq, f->rcv_nxt + wnd)))
			flow_close(f, true);
		return;
	}
	switch (f->state) {
	case TS_CONNECTING:
		return;		/* retransmitted SYN while the host connects */
	case TS_SYN_SENT:
		if ((flags & (TCP_F_SYN | TCP_F_ACK)) != (TCP_F_SYN | TCP_F_ACK) || tcph_ack(t) != f->iss + 1) {
			ns->stats.drop_tcp++;
			return;
		}
		f->irs = seq;
		f->rcv_nxt = seq + 1;
		f->snd_una = f->snd_nxt = f->iss + 1;
		f->snd_wnd = tcph_win(t);
		apply_syn_opts(f, &o);
		if (!f->wscale_ok)
			f->rcv_wscale = 0;
		f->state = TS_ESTABLISHED;
		f->rto_at = 0;
		send_ack(f);
		start_reading(f);
		tcp_host_read(f);
		return;
	case TS_SYN_RCVD:
		if (flags & TCP_F_SYN) {
			if (seq == f->irs)
				tcp_emit(f, TCP_F_SYN | TCP_F_ACK, f->iss, 0);
			return;
		}
		if (!(flags & TCP_F_ACK) || tcph_ack(t) != f->iss + 1) {
			ns->stats.drop_tcp++;
			return;
		}
		f->state = TS_ESTABLISHED;
		f->snd_una = f->iss + 1;
		f->snd_wnd = (uint32_t)tcph_win(t) << f->snd_wscale;
		f->rto_at = 0;
		established_input(f, t, data, dlen);
		if (f->state == TS_ESTABLISHED)
			tcp_output(f);	/* host data read while the handshake finished */
		return;
	case TS_ESTABLISHED:
		if (flags & TCP_F_SYN) {
			send_ack(f);	/* challenge ACK */
			return;
		}
		if (!(flags & TCP_F_ACK)) {
			ns->stats.drop_tcp++;
			return;
		}
		established_input(f, t, data, dlen);
		return;
	default:
		ns->stats.drop_tcp++;
	}
}

static void flow_timer(struct tcp_flow *f)
{
	struct net_stack *ns = f->ns;
	if (f->state == TS_ESTABLISHED && ns->now >= ka_deadline(f)) {
		if (f->ka_probes >= TCP_KEEPALIVE_PROBES) {
			abort_flow(f);
			return;
		}
		f->ka_probes++;
		tcp_emit(f, TCP_F_ACK, f->snd_una - 1, 0);
	}
	if (!f->rto_at || ns->now < f->rto_at)
		return;
	f->rto_at = 0;
	bool persist = f->state == TS_ESTABLISHED && f->snd_wnd == 0;
	if (!persist && ++f->retries > (f->state == TS_ESTABLISHED ? TCP_MAX_RETRIES : TCP_SYN_RETRIES)) {
		abort_flow(f);
		return;
	}
	f->rto_ns = MIN(f->rto_ns * 2, persist ? 5000000000ull : TCP_RTO_MAX_NS);
	if (f->state == TS_SYN_RCVD) {
		tcp_emit(f, TCP_F_SYN | TCP_F_ACK, f->iss, 0);
	} else if (f->state == TS_SYN_SENT) {
		tcp_emit(f, TCP_F_SYN, f->iss, 0);
	} else if (persist) {
		retransmit_one(f);	/* zero-window probe */
	} else if (f->state == TS_ESTABLISHED) {
		/* Go back to the oldest unacknowledged byte and resend the window. */
		f->in_recovery = false;
		if (f->fin_sent && !f->fin_acked)
			f->fin_sent = false;
		f->snd_nxt = f->snd_una;
		ns->stats.tcp_retrans++;
		tcp_output(f);
		if (f->state == TS_DEAD)
			return;
	}
	flow_arm_rto(f);
}

/* The flow's next deadline: retransmission (or probe), keepalive. */
static uint64_t flow_deadline(const struct tcp_flow *f)
{
	uint64_t next = f->rto_at ? f->rto_at : NET_NEVER;
	if (f->state == TS_ESTABLISHED)
		next = MIN(next, ka_deadline(f));
	return next;
}

uint64_t tcp_tick(struct net_stack *ns)
{
	tcp_flush(ns);	/* delayed ACKs that are due */
	uint64_t next = NET_NEVER;
	for (int i = 0; i < TCP_MAX_FLOWS; i++) {
		struct tcp_flow *f = &ns->tcp[i];
		if (f->state == TS_FREE || f->state == TS_DEAD || f->state == TS_CONNECTING)
			continue;
		flow_timer(f);
		if (f->state != TS_FREE && f->state != TS_DEAD)
			next = MIN(next, flow_deadline(f));
	}
	return next;
}

/* A host connection accepted on a published port: SYN to the guest. */
int tcp_accept_published(struct net_stack *ns, int fd, uint16_t guest_port)
{
	struct tcp_flow *f = NULL;
	for (int tries = 0; tries < 1000 && !f; tries++) {
		uint16_t p = (uint16_t)(40000 + ns->next_port++ % 20000);
		struct l3 l3 = { .v6 = false, .src4 = ns->cfg.guest_ip, .dst4 = ns->cfg.gateway_ip };
		policy_addr_from_v4(l3.src, l3.src4);
		policy_addr_from_v4(l3.dst, l3.dst4);
		if (!flow_find(ns, guest_port, l3.dst, p))
			f = flow_alloc(ns, &l3, guest_port, p);
		else
			continue;
		if (!f)
			break;
	}
	if (!f)
		return -ENOSPC;
	/* Flow key is (guest port, remote ip, remote port): remote is the gateway. */
	f->fd = fd;
	f->state = TS_SYN_SENT;
	f->wscale_ok = true;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	tcp_emit(f, TCP_F_SYN, f->iss, 0);
	f->snd_nxt = f->iss + 1;
	flow_arm_rto(f);
	return 0;
}

/* ---- snapshots (net/snapshot.c) ---- */

unsigned tcp_save_flows(const struct net_stack *ns, struct tcp_saved *out, unsigned cap)
{
	unsigned n = 0;
	for (int i = 0; i < TCP_MAX_FLOWS && n < cap; i++) {
		const struct tcp_flow *f = &ns->tcp[i];
		/* The flows the guest has heard of; one still connecting is
		 * dialled again when the guest repeats its SYN. */
		if (f->state != TS_SYN_RCVD && f->state != TS_SYN_SENT && f->state != TS_ESTABLISHED)
			continue;
		struct tcp_saved *s = &out[n++];
		*s = (struct tcp_saved){ .gip = f->gip, .rip = f->rip, .gport = f->gport,
					 .rport = f->rport, .snd_nxt = f->snd_nxt,
					 .rcv_nxt = f->rcv_nxt, .v6 = f->v6 };
		memcpy(s->gip6, f->gip6, 16);
		memcpy(s->rip6, f->rip6, 16);
	}
	return n;
}

void tcp_reset_saved(struct net_stack *ns, const struct tcp_saved *s)
{
	struct tcp_flow f = { .state = TS_ESTABLISHED, .ns = ns, .idx = -1, .fd = -1,
			      .gip = s->gip, .rip = s->rip, .gport = s->gport, .rport = s->rport,
			      .v6 = s->v6, .rcv_nxt = s->rcv_nxt, .snd_nxt = s->snd_nxt };
	memcpy(f.gip6, s->gip6, 16);
	memcpy(f.rip6, s->rip6, 16);
	/* At the guest's next expected byte when it had everything we sent;
	 * otherwise the guest answers with a challenge ACK (RFC 5961), which
	 * finds no flow and gets the RST at its own acknowledgement. */
	tcp_emit(&f, TCP_F_RST | TCP_F_ACK, s->snd_nxt, 0);
}

int tcp_init(struct net_stack *ns)
{
	ns->tcp = calloc(TCP_MAX_FLOWS, sizeof(*ns->tcp));
	if (!ns->tcp)
		return -ENOMEM;
	for (int i = 0; i < TCP_MAX_FLOWS; i++) {
		ns->tcp[i].idx = i;
		ns->tcp[i].fd = -1;
	}
	for (int i = 0; i < TCP_HASH; i++)
		ns->tcp_hash[i] = -1;
	if (getrandom(ns->isn_key, sizeof(ns->isn_key), GRND_NONBLOCK) != sizeof(ns->isn_key)) {
		ns->isn_key[0] = now_ns() * 0x9E3779B97F4A7C15ull;
		ns->isn_key[1] = (uint64_t)(uintptr_t)ns ^ ns->isn_key[0] >> 7;
	}
	return 0;
}

void tcp_fini(struct net_stack *ns)
{
	if (!ns->tcp)
		return;
	for (int i = 0; i < TCP_MAX_FLOWS; i++) {
		struct tcp_flow *f = &ns->tcp[i];
		if (f->fd >= 0)
			close(f->fd);
		free(f->tg_buf);
		free(f->th_buf);
	}
	free(ns->tcp);
}

/* ---- struct stream over a flow (common/stream.h) ----
 * Readiness is one-shot: want() records what the consumer waits for, and
 * the first event that satisfies it calls notify() once (stream_wake, from
 * the points where guest data, the guest's ACKs or the flow's end arrive).
 * A flow ready when asked notifies on the next loop turn through a NOP on
 * rd_op, which a stream flow, having no socket, never polls with. */

static struct tcp_flow *st_flow(struct stream *s)
{
	return container_of(s, struct tcp_flow, stream);
}

static bool st_readable(const struct tcp_flow *f)
{
	return f->th_len || f->guest_fin || f->state == TS_DEAD;
}

static bool st_writable(const struct tcp_flow *f)
{
	return f->state == TS_DEAD || f->host_eof || TCP_TO_GUEST_BUF - (f->tg_end - f->snd_una) > 0;
}

static void stream_wake(struct tcp_flow *f, bool rd, bool wr)
{
	if (f->stream_closed || !((rd && f->want_rd) || (wr && f->want_wr)))
		return;
	f->want_rd = f->want_wr = false;
	if (f->stream.notify)
		f->stream.notify(&f->stream);
}

static void st_notify_cb(struct loop *loop, struct loop_op *op, int res, uint32_t flags)
{
	(void)loop;
	(void)res;
	(void)flags;
	struct tcp_flow *f = op->opaque;
	f->rd_pending = false;
	if (f->ns->destroying)
		return;
	stream_wake(f, st_readable(f), st_writable(f));
	if (f->state == TS_DEAD)
		flow_try_release(f);
}

static void st_want(struct stream *s, bool rd, bool wr)
{
	struct tcp_flow *f = st_flow(s);
	f->want_rd |= rd;
	f->want_wr |= wr;
	if (f->rd_pending || !f->ns->loop || !((rd && st_readable(f)) || (wr && st_writable(f))))
		return;	/* (a stack without a loop is a unit test's: it asks again) */
	f->rd_op.cb = st_notify_cb;
	f->rd_op.opaque = f;
	struct io_uring_sqe *sqe = loop_sqe(f->ns->loop, &f->rd_op);
	if (!sqe)
		return;
	io_uring_prep_nop(sqe);
	f->rd_pending = true;
}

static ssize_t st_read(struct stream *s, void *buf, size_t len)
{
	struct tcp_flow *f = st_flow(s);
	if (f->state == TS_DEAD && !f->guest_fin)
		return -ECONNRESET;
	if (f->th_len == 0)
		return f->guest_fin ? 0 : -EAGAIN;
	uint32_t n = (uint32_t)MIN(len, (size_t)f->th_len);
	uint32_t first = MIN(n, TCP_TO_HOST_BUF - f->th_head);
	memcpy(buf, f->th_buf + f->th_head, first);
	memcpy((uint8_t *)buf + first, f->th_buf, n - first);
	f->th_head = (f->th_head + n) & (TCP_TO_HOST_BUF - 1);
	f->th_len -= n;
	if (f->state != TS_DEAD) {
		window_update(f);
		check_done(f);
	}
	return n;
}

static ssize_t st_write(struct stream *s, const void *buf, size_t len)
{
	struct tcp_flow *f = st_flow(s);
	if (f->state == TS_DEAD)
		return -ECONNRESET;
	if (f->host_eof)
		return -EPIPE;
	uint32_t space = TCP_TO_GUEST_BUF - (f->tg_end - f->snd_una);
	uint32_t n = (uint32_t)MIN(len, (size_t)space);
	if (n == 0)
		return -EAGAIN;
	uint32_t off = (f->tg_end - f->iss - 1) & (TCP_TO_GUEST_BUF - 1);
	uint32_t first = MIN(n, TCP_TO_GUEST_BUF - off);
	memcpy(f->tg_buf + off, buf, first);
	memcpy(f->tg_buf, (const uint8_t *)buf + first, n - first);
	f->tg_end += n;
	tcp_output(f);
	return n;
}

static void st_shutdown_write(struct stream *s)
{
	struct tcp_flow *f = st_flow(s);
	if (f->state == TS_DEAD || f->host_eof)
		return;
	f->host_eof = true;
	tcp_output(f);
	check_done(f);
}

/* An orderly end (FIN after what was written) when the guest's bytes were
 * all read; a RST when some were left unread, as close(2) does. */
static void st_close(struct stream *s)
{
	struct tcp_flow *f = st_flow(s);
	f->stream_closed = true;
	bool unread = f->th_len > 0;
	f->th_head = (f->th_head + f->th_len) & (TCP_TO_HOST_BUF - 1);
	f->th_len = 0;		/* unread guest data is discarded */
	if (f->state != TS_DEAD) {
		if (unread) {
			abort_flow(f);
		} else {
			maybe_shutdown_host(f);
			st_shutdown_write(s);
		}
	}
	flow_try_release(f);
}

static const struct stream_ops tcp_stream_ops = {
	.read = st_read,
	.write = st_write,
	.want = st_want,
	.shutdown_write = st_shutdown_write,
	.close = st_close,
};
