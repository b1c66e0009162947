/* net/udp.c - UDP: DHCP and DNS on the gateway, NAT to host sockets.
 *
 * Each (guest port, remote address, remote port) gets one connected,
 * non-blocking host socket, so only the remote the guest wrote to can answer
 * (port-restricted NAT), a flow of net/dgram.c's table: idle flows close
 * after UDP_IDLE_NS; at UDP_MAX_FLOWS the least recently used is recycled.
 */
#include "net/internal.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "common/util.h"

/* A datagram to the guest over IPv6 from src. */
void udp6_send_to_guest(struct net_stack *ns, const uint8_t *src, const uint8_t *dst,
			uint16_t sport, uint16_t dport, const void *data, size_t len)
{
	if (len > ns->cfg.mtu - IP6_HLEN - UDP_HLEN) {
		ns->stats.tx_dropped++;
		return;
	}
	uint8_t *u = net_ip6_begin(ns, src, dst, 17);
	wr16(u, sport);
	wr16(u + 2, dport);
	wr16(u + 4, (uint16_t)(UDP_HLEN + len));
	u[6] = u[7] = 0;
	memcpy(u + UDP_HLEN, data, len);
	uint16_t c = csum_fold(csum_partial(u, UDP_HLEN + len, csum_pseudo6(src, dst, 17, (uint32_t)(UDP_HLEN + len))));
	if (c == 0)
		c = 0xffff;
	memcpy(u + 6, &c, 2);
	net_ip6_send(ns, UDP_HLEN + len);
}

void udp_send_to_guest(struct net_stack *ns, uint32_t src, uint16_t sport, uint16_t dport,
		       const void *data, size_t len)
{
	if (len > IP4_FRAG_PAYLOAD_MAX - UDP_HLEN) {	/* larger than the MTU: fragmented */
		ns->stats.tx_dropped++;
		return;
	}
	uint32_t dst = ns->cfg.guest_ip;
	uint8_t *u = net_ip4_begin(ns, src, dst, 17);
	wr16(u, sport);
	wr16(u + 2, dport);
	wr16(u + 4, (uint16_t)(UDP_HLEN + len));
	u[6] = u[7] = 0;
	memcpy(u + UDP_HLEN, data, len);
	uint32_t s = csum_pseudo4(src, dst, 17, (uint16_t)(UDP_HLEN + len));
	uint16_t c = csum_fold(csum_partial(u, UDP_HLEN + len, s));
	if (c == 0)
		c = 0xffff;
	memcpy(u + 6, &c, 2);
	net_ip4_send(ns, UDP_HLEN + len);
}

/* Host socket readable: forward each datagram to the guest. */
static void udp_readable(struct loop *loop, struct loop_op *op, int res, uint32_t flags)
{
	(void)loop;
	struct dgram_flow *f = op->opaque;
	struct net_stack *ns = f->ns;
	if (!dgram_poll_done(f, op, res, flags))
		return;
	/* Receive straight into the frame buffer's payload position. */
	/* IPv4 datagrams larger than the MTU go out as fragments. */
	size_t room = f->v6 ? ns->cfg.mtu - IP6_HLEN - UDP_HLEN : IP4_FRAG_PAYLOAD_MAX - UDP_HLEN;
	static uint8_t buf[65536];	/* single-threaded scratch */
	for (int i = 0; i < 64; i++) {
		ssize_t n = recv(f->fd, buf, room, MSG_DONTWAIT | MSG_TRUNC);
		if (n < 0)
			break;
		f->last_ns = now_ns();
		if ((size_t)n > room) {
			ns->stats.tx_dropped++;
			continue;
		}
		if (f->v6)
			udp6_send_to_guest(ns, f->rip6, f->gip6, f->rport, f->gport, buf, (size_t)n);
		else
			udp_send_to_guest(ns, f->rip, f->rport, f->gport, buf, (size_t)n);
	}
}

void udp_input(struct net_stack *ns, const struct l3 *l3, const uint8_t *u, size_t len)
{
	if (len < UDP_HLEN || udp_len(u) < UDP_HLEN || udp_len(u) > len) {
		ns->stats.drop_udp++;
		return;
	}
	len = udp_len(u);
	uint32_t src = l3->src4, dst = l3->dst4;
	uint32_t seed = l3->v6 ? csum_pseudo6(l3->src, l3->dst, 17, (uint32_t)len)
			       : csum_pseudo4(src, dst, 17, (uint16_t)len);
	if ((udp_csum(u) != 0 || l3->v6) && csum_fold(csum_partial(u, len, seed)) != 0) {
		ns->stats.drop_udp++;
		return;
	}
	uint16_t sport = udp_sport(u), dport = udp_dport(u);
	const uint8_t *data = u + UDP_HLEN;
	size_t dlen = len - UDP_HLEN;
	if (!l3->v6 && dport == 67 && sport == 68 && (dst == 0xffffffff || dst == ns->cfg.gateway_ip)) {
		dhcp_input(ns, data, dlen);
		return;
	}
	if (!l3->v6 && src != ns->cfg.guest_ip) {
		ns->stats.drop_ip_src++;
		return;
	}
	if (dport == 53 && (l3->v6 ? memcmp(l3->dst, ns->gw6, 16) == 0 : dst == ns->cfg.gateway_ip)) {
		dns_input(ns, l3, sport, data, dlen);
		return;
	}
	struct dgram_flow *pf = dgram_find(ns, DGRAM_UDP, l3->v6, sport, l3->dst, dport);
	if (pf && pf->published) {	/* a reply to a host peer of a published port */
		pf->last_ns = ns->now;
		sendto(pf->pub_fd, data, dlen, MSG_DONTWAIT, (struct sockaddr *)&pf->peer, sizeof(pf->peer));
		return;
	}
	enum policy_group why;
	if (!net_dst_allowed(ns, l3->dst, &why)) {
		ns->stats.denied_udp++;
		net_note_denied(ns, "udp", l3->dst, dport, why);
		if (why != PG_BROADCAST && why != PG_MULTICAST)
			net_send_denied(ns, l3);
		return;
	}
	if (!ns->loop) {
		ns->stats.drop_udp++;
		return;
	}
	struct dgram_flow *f = dgram_find(ns, DGRAM_UDP, l3->v6, sport, l3->dst, dport);
	if (!f && (f = dgram_open(ns, DGRAM_UDP, l3, sport, dport, udp_readable)))
		ns->stats.udp_flows++;
	if (!f) {
		ns->stats.drop_nomem++;
		return;
	}
	f->last_ns = ns->now;
	if (send(f->fd, data, dlen, MSG_DONTWAIT) < 0 && errno == ECONNREFUSED) {
		if (l3->v6)
			net_send_icmp6_unreach(ns, l3, 4);
		else
			net_send_icmp_unreach(ns, l3->hdr, l3->pktlen, 3);
	}
}

/* The flow of a host peer of a published UDP port, or a new one: the
 * guest sees it come from the gateway, from a port of its own. */
static struct dgram_flow *udp_published_flow(struct net_stack *ns, int fd, const struct sockaddr_in *from,
					     uint16_t guest_port)
{
	for (unsigned k = 0; k < DGRAM_MAX_FLOWS; k++) {
		struct dgram_flow *c = &ns->dgram[k];
		if (c->used && c->published && c->pub_fd == fd && c->peer.sin_port == from->sin_port &&
		    c->peer.sin_addr.s_addr == from->sin_addr.s_addr)
			return c;
	}
	struct dgram_flow *c = dgram_slot(ns, DGRAM_UDP);
	if (!c)
		return NULL;
	c->used = c->published = true;
	c->pub_fd = fd;
	c->peer = *from;
	c->gport = guest_port;
	c->rip = ns->cfg.gateway_ip;
	c->rport = (uint16_t)(40000 + ns->next_port++ % 20000);
	policy_addr_from_v4(c->rip6, c->rip);
	policy_addr_from_v4(c->gip6, ns->cfg.guest_ip);
	net_timer_need(ns, ns->now + UDP_IDLE_NS + 1);
	return c;
}

void udp_publish_input(struct net_stack *ns, int fd, uint16_t guest_port)
{
	static uint8_t buf[65536];	/* single-threaded scratch */
	ns->now = now_ns();
	for (int i = 0; i < 64; i++) {
		struct sockaddr_in from;
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
		if (n < 0)
			break;
		struct dgram_flow *f = udp_published_flow(ns, fd, &from, guest_port);
		if (!f) {
			ns->stats.drop_nomem++;
			continue;
		}
		f->last_ns = ns->now;
		udp_send_to_guest(ns, f->rip, f->rport, f->gport, buf, (size_t)n);
	}
}
