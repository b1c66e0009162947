/* net/ip6.c - IPv6 for the guest: neighbour discovery, router
 * advertisements, ICMPv6 echo to the router, and TCP/UDP dispatch.
 *
 * The router is fe80::1 on the link; it advertises NET_PREFIX6::/64 for
 * SLAAC (no DHCPv6) with the link MTU, and NET_PREFIX6::2 stands for the
 * host the way 10.0.2.2 does (the host's ::1 with --allow-host).  Packets
 * with extension headers are dropped and counted (so are fragments); hop
 * limits of NDP messages are checked (255).  Guest sources must be
 * link-local or inside the prefix.
 */
#include "net/internal.h"

#include <netinet/icmp6.h>
#include <string.h>

#include "common/util.h"

#define ETH_P_IPV6_ 0x86DD
#define NH_TCP 6
#define NH_UDP 17
#define NH_ICMP6 58

/* fd4b:7662:6f78::/64 ("Kvbox"), a fixed unique-local prefix. */
static const uint8_t prefix6[16] = { 0xfd, 0x4b, 0x76, 0x62, 0x6f, 0x78 };
static const uint8_t all_nodes[16] = { 0xff, 0x02, [15] = 1 };

void ip6_init(struct net_stack *ns)
{
	memset(ns->gw6_ll, 0, 16);
	ns->gw6_ll[0] = 0xfe;
	ns->gw6_ll[1] = 0x80;
	ns->gw6_ll[15] = 1;
	memcpy(ns->prefix6, prefix6, 16);
	memcpy(ns->gw6, prefix6, 16);
	ns->gw6[15] = 2;
}

static bool is_router_addr(struct net_stack *ns, const uint8_t *a)
{
	return memcmp(a, ns->gw6_ll, 16) == 0 || memcmp(a, ns->gw6, 16) == 0;
}

uint8_t *net_ip6_begin(struct net_stack *ns, const uint8_t *src, const uint8_t *dst, uint8_t proto)
{
	uint8_t *ip = ns->tx + ETH_HLEN_;
	ip[0] = 0x60;
	ip[1] = ip[2] = ip[3] = 0;
	ip[6] = proto;
	ip[7] = proto == NH_ICMP6 ? 255 : 64;
	memcpy(ip + 8, src, 16);
	memcpy(ip + 24, dst, 16);
	return ip + IP6_HLEN;
}

void net_ip6_send(struct net_stack *ns, size_t l4len)
{
	uint8_t *ip = ns->tx + ETH_HLEN_;
	wr16(ip + 4, (uint16_t)l4len);
	uint8_t mac[6];
	const uint8_t *dst = ip + 24;
	if (dst[0] == 0xff) {
		mac[0] = mac[1] = 0x33;
		memcpy(mac + 2, dst + 12, 4);
	} else if (ns->guest_mac_known) {
		memcpy(mac, ns->guest_mac, 6);
	} else {
		memset(mac, 0xff, 6);
	}
	net_eth_send(ns, mac, ETH_P_IPV6_, ETH_HLEN_ + IP6_HLEN + l4len);
}

static void icmp6_send(struct net_stack *ns, size_t len)
{
	uint8_t *ip = ns->tx + ETH_HLEN_, *ic = ip + IP6_HLEN;
	ic[2] = ic[3] = 0;
	uint16_t c = csum_fold(csum_partial(ic, len, csum_pseudo6(ip + 8, ip + 24, NH_ICMP6, (uint32_t)len)));
	memcpy(ic + 2, &c, 2);
	net_ip6_send(ns, len);
}

void net_send_icmp6_unreach(struct net_stack *ns, const struct l3 *l3, uint8_t code)
{
	size_t quote = MIN(l3->pktlen, (size_t)1232 - 8);
	uint8_t *ic = net_ip6_begin(ns, l3->dst, l3->src, NH_ICMP6);
	ic[0] = 1;
	ic[1] = code;
	memset(ic + 4, 0, 4);
	memcpy(ic + 8, l3->hdr, quote);
	icmp6_send(ns, 8 + quote);
}

static void send_ra(struct net_stack *ns, const uint8_t *dst)
{
	uint8_t *ra = net_ip6_begin(ns, ns->gw6_ll, dst, NH_ICMP6);
	memset(ra, 0, 16);
	ra[0] = 134;
	ra[4] = 64;		/* cur hop limit */
	wr16(ra + 6, 1800);	/* router lifetime */
	uint8_t *o = ra + 16;
	o[0] = 1;		/* source link-layer address */
	o[1] = 1;
	memcpy(o + 2, ns->cfg.gateway_mac, 6);
	o += 8;
	o[0] = 5;		/* MTU */
	o[1] = 1;
	o[2] = o[3] = 0;
	wr32(o + 4, ns->cfg.mtu);
	o += 8;
	memset(o, 0, 32);	/* prefix information */
	o[0] = 3;
	o[1] = 4;
	o[2] = 64;
	o[3] = 0xc0;		/* on-link, autonomous */
	wr32(o + 4, 86400);
	wr32(o + 8, 14400);
	memcpy(o + 16, ns->prefix6, 16);
	o += 32;
	o[0] = 25;		/* RDNSS (RFC 8106): the forwarder on ::2 */
	o[1] = 3;
	o[2] = o[3] = 0;
	wr32(o + 4, 1800);
	memcpy(o + 8, ns->gw6, 16);
	o += 24;
	icmp6_send(ns, (size_t)(o - ra));
	ns->ra_sent = true;
}

static void send_na(struct net_stack *ns, const uint8_t *target, const uint8_t *dst)
{
	uint8_t *na = net_ip6_begin(ns, target, dst, NH_ICMP6);
	memset(na, 0, 32);
	na[0] = 136;
	na[4] = 0xe0;		/* router, solicited, override */
	memcpy(na + 8, target, 16);
	na[24] = 2;		/* target link-layer address */
	na[25] = 1;
	memcpy(na + 26, ns->cfg.gateway_mac, 6);
	icmp6_send(ns, 32);
}

static void icmp6_input(struct net_stack *ns, const struct l3 *l3, const uint8_t *ip,
			const uint8_t *ic, size_t len)
{
	if (len < 8 || csum_fold(csum_partial(ic, len, csum_pseudo6(l3->src, l3->dst, NH_ICMP6, (uint32_t)len))) != 0) {
		ns->stats.drop_icmp++;
		return;
	}
	bool unspec_src = l3->src[0] == 0 && memcmp(l3->src, l3->src + 1, 15) == 0;
	switch (icmp_type(ic)) {
	case ND_ROUTER_SOLICIT:
		if (ip6_hlim(ip) != 255)
			break;
		send_ra(ns, unspec_src ? all_nodes : l3->src);
		return;
	case ND_NEIGHBOR_SOLICIT:
		if (ip6_hlim(ip) != 255 || len < 24)
			break;
		if (is_router_addr(ns, ic + 8) && !unspec_src) {
			send_na(ns, ic + 8, l3->src);
			if (!ns->ra_sent)
				send_ra(ns, all_nodes);
		}
		return;
	case ICMP6_ECHO_REQUEST:
		if (icmp_code(ic) != 0 || len > ns->cfg.mtu - IP6_HLEN)
			break;
		if (!is_router_addr(ns, l3->dst)) {
			/* Beyond the router: only from the prefix, not on the link. */
			bool on_link = l3->dst[0] == 0xff || (l3->dst[0] == 0xfe && (l3->dst[1] & 0xc0) == 0x80) ||
				       memcmp(l3->dst, ns->prefix6, 8) == 0;
			if (on_link || memcmp(l3->src, ns->prefix6, 8) != 0)
				break;
			icmp_echo_forward(ns, l3, ic, len);
			return;
		}
		{
			uint8_t *r = net_ip6_begin(ns, l3->dst, l3->src, NH_ICMP6);
			memcpy(r, ic, len);
			r[0] = ICMP6_ECHO_REPLY;
			icmp6_send(ns, len);
		}
		return;
	case ND_NEIGHBOR_ADVERT:	/* nothing to do, nor for MLDv2 reports */
	case 143:		/* MLDv2 listener report (RFC 3810) */
		return;
	}
	ns->stats.drop_icmp++;
}

void ip6_input(struct net_stack *ns, const uint8_t *ip, size_t len)
{
	if (len < IP6_HLEN || ip6_version(ip) != 6) {
		ns->stats.drop_ip_hdr++;
		return;
	}
	size_t plen = ip6_plen(ip);
	if (IP6_HLEN + plen > len) {
		ns->stats.drop_ip_hdr++;
		return;
	}
	struct l3 l3 = { .v6 = true, .hdr = ip, .pktlen = IP6_HLEN + plen };
	memcpy(l3.src, ip6_src(ip), 16);
	memcpy(l3.dst, ip6_dst(ip), 16);
	bool ll = l3.src[0] == 0xfe && (l3.src[1] & 0xc0) == 0x80;
	bool in_prefix = memcmp(l3.src, ns->prefix6, 8) == 0;
	bool unspec = l3.src[0] == 0 && memcmp(l3.src, l3.src + 1, 15) == 0;
	const uint8_t *l4 = ip + IP6_HLEN;
	if (ip6_nh(ip) == NH_ICMP6 && (ll || in_prefix || unspec)) {
		icmp6_input(ns, &l3, ip, l4, plen);
		return;
	}
	if (!in_prefix) {
		ns->stats.drop_ip_src++;	/* only global (prefix) sources leave the link */
		return;
	}
	if (l3.dst[0] == 0xff || memcmp(l3.dst, ns->prefix6, 8) == 0) {
		if (!is_router_addr(ns, l3.dst)) {
			ns->stats.drop_ip_hdr++;	/* multicast or on-link: nothing to route */
			return;
		}
	}
	switch (ip6_nh(ip)) {
	case NH_TCP:
		tcp_input(ns, &l3, l4, plen);
		break;
	case NH_UDP:
		udp_input(ns, &l3, l4, plen);
		break;
	default:
		ns->stats.drop_proto++;	/* extension headers, fragments, others */
	}
}
