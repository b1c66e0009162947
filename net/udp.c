/* net/udp.c - UDP: DHCP and DNS on the gateway, NAT to host sockets.
 *
 * Each (guest port, remote address, remote port) gets one connected,
 * non-blocking host socket, so only the remote the guest wrote to can answer
 * (port-restricted NAT).  Idle flows close after UDP_IDLE_NS; when the table
 * is full the least recently used flow is recycled.
 */
#include "net/internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
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

static void udp_close(struct udp_flow *f)
{
	if (f->fd >= 0) {
		loop_cancel(f->ns->loop, &f->op);
		close(f->fd);
		f->fd = -1;
	}
	f->used = false;
}

/* Host socket readable: forward each datagram to the guest. */
static void udp_readable(struct loop *loop, struct loop_op *op, int res, uint32_t flags)
{
	(void)loop;
	struct udp_flow *f = op->opaque;
	struct net_stack *ns = f->ns;
	if (!(flags & IORING_CQE_F_MORE) && !op->polling)
		f->pending = false;
	if (!f->used || f->fd < 0 || res < 0)
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

static struct udp_flow *udp_find(struct net_stack *ns, uint16_t gport, const uint8_t *rip6, uint16_t rport)
{
	for (unsigned i = 0; i < UDP_MAX_FLOWS; i++) {
		struct udp_flow *f = &ns->udp[i];
		if (f->used && f->gport == gport && f->rport == rport && memcmp(f->rip6, rip6, 16) == 0)
			return f;
	}
	return NULL;
}

static struct udp_flow *udp_open(struct net_stack *ns, const struct l3 *l3, uint16_t gport, uint16_t rport)
{
	struct udp_flow *f = NULL, *lru = NULL;
	for (unsigned i = 0; i < UDP_MAX_FLOWS; i++) {
		struct udp_flow *c = &ns->udp[i];
		if (c->pending)
			continue;
		if (!c->used) {
			f = c;
			break;
		}
		if (!lru || c->last_ns < lru->last_ns)
			lru = c;
	}
	if (!f && lru) {
		udp_close(lru);
		return NULL;	/* slot frees once io_uring lets go; this datagram is dropped */
	}
	if (!f)
		return NULL;
	int fd = socket(l3->v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return NULL;
	struct sockaddr_storage ss;
	socklen_t sl = net_host_sockaddr(ns, l3->v6, l3->dst4, l3->dst, rport, &ss);
	if (connect(fd, (struct sockaddr *)&ss, sl) < 0) {
		close(fd);
		return NULL;
	}
	f->used = true;
	net_timer_need(ns, ns->now + UDP_IDLE_NS + 1);
	f->fd = fd;
	f->gport = gport;
	f->v6 = l3->v6;
	f->rip = l3->dst4;
	memcpy(f->rip6, l3->dst, 16);
	memcpy(f->gip6, l3->src, 16);
	f->rport = rport;
	f->last_ns = now_ns();
	f->ns = ns;
	f->op.cb = udp_readable;
	f->op.opaque = f;
	if (loop_poll(ns->loop, &f->op, fd, POLLIN) < 0) {
		udp_close(f);
		return NULL;
	}
	f->pending = true;
	ns->stats.udp_flows++;
	return f;
}

void udp_input(struct net_stack *ns, const struct l3 *l3, const uint8_t *u, size_t len)
{
	if (len < UDP_HLEN || rd16(u + 4) < UDP_HLEN || rd16(u + 4) > len) {
		ns->stats.drop_udp++;
		return;
	}
	len = rd16(u + 4);
	uint32_t src = l3->src4, dst = l3->dst4;
	uint32_t seed = l3->v6 ? csum_pseudo6(l3->src, l3->dst, 17, (uint32_t)len)
			       : csum_pseudo4(src, dst, 17, (uint16_t)len);
	if ((rd16(u + 6) != 0 || l3->v6) && csum_fold(csum_partial(u, len, seed)) != 0) {
		ns->stats.drop_udp++;
		return;
	}
	uint16_t sport = rd16(u), dport = rd16(u + 2);
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
	struct udp_flow *pf = udp_find(ns, sport, l3->dst, dport);
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
	struct udp_flow *f = udp_find(ns, sport, l3->dst, dport);
	if (!f)
		f = udp_open(ns, l3, sport, dport);
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
		struct udp_flow *f = NULL;
		for (unsigned k = 0; k < UDP_MAX_FLOWS && !f; k++) {
			struct udp_flow *c = &ns->udp[k];
			if (c->used && c->published && c->pub_fd == fd && c->peer.sin_port == from.sin_port &&
			    c->peer.sin_addr.s_addr == from.sin_addr.s_addr)
				f = c;
		}
		for (unsigned k = 0; k < UDP_MAX_FLOWS && !f; k++) {
			struct udp_flow *c = &ns->udp[k];
			if (c->used || c->pending)
				continue;
			memset(c, 0, sizeof(*c));
			c->used = c->published = true;
			c->fd = -1;
			c->pub_fd = fd;
			c->peer = from;
			c->ns = ns;
			c->gport = guest_port;
			c->rip = ns->cfg.gateway_ip;
			c->rport = (uint16_t)(40000 + ns->next_port++ % 20000);
			policy_addr_from_v4(c->rip6, c->rip);
			policy_addr_from_v4(c->gip6, ns->cfg.guest_ip);
			f = c;
		}
		if (!f) {
			ns->stats.drop_nomem++;
			continue;
		}
		f->last_ns = ns->now;
		udp_send_to_guest(ns, f->rip, f->rport, f->gport, buf, (size_t)n);
	}
}

uint64_t udp_tick(struct net_stack *ns)
{
	uint64_t next = NET_NEVER;
	for (unsigned i = 0; i < UDP_MAX_FLOWS; i++) {
		struct udp_flow *f = &ns->udp[i];
		if (f->used && ns->now - f->last_ns > UDP_IDLE_NS)
			udp_close(f);
		else if (f->used)
			next = MIN(next, f->last_ns + UDP_IDLE_NS + 1);
	}
	return next;
}

int udp_init(struct net_stack *ns)
{
	ns->udp = calloc(UDP_MAX_FLOWS, sizeof(*ns->udp));
	if (!ns->udp)
		return -ENOMEM;
	for (unsigned i = 0; i < UDP_MAX_FLOWS; i++)
		ns->udp[i].fd = -1;
	return 0;
}

void udp_fini(struct net_stack *ns)
{
	if (!ns->udp)
		return;
	for (unsigned i = 0; i < UDP_MAX_FLOWS; i++)
		if (ns->udp[i].fd >= 0)
			close(ns->udp[i].fd);
	free(ns->udp);
}
