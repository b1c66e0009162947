/* net/ip4.c - IPv4 for the guest: ARP for the gateway, input checks and
 * dispatch to TCP, UDP and ICMP, ICMPv4 echo to the gateway (echo beyond it
 * goes to net/icmp.c), and output with the header's checksum.  The mirror
 * of net/ip6.c.
 *
 * IPv4 fragments from the guest are reassembled (bounded, net/frag.c) and
 * IPv4 packets for the guest that exceed the MTU are fragmented.  The
 * guest's source must be its configured address (DHCP's first packets,
 * from 0.0.0.0, excepted).
 */
#include "net/internal.h"

#include <netinet/ip_icmp.h>
#include <string.h>

#include "common/util.h"

uint8_t *net_ip4_begin(struct net_stack *ns, uint32_t src, uint32_t dst, uint8_t proto)
{
	uint8_t *ip = ns->tx + ETH_HLEN_;
	ip[0] = 0x45;		/* version 4, IHL 5 */
	ip[1] = 0;		/* DSCP/ECN */
	wr16(ip + 4, 0);	/* id */
	wr16(ip + 6, IP4_DF);	/* flags, fragment offset 0 */
	ip[8] = 64;		/* TTL */
	ip[9] = proto;
	wr32(ip + 12, src);
	wr32(ip + 16, dst);
	return ip + IP4_HLEN;
}

void net_ip4_send(struct net_stack *ns, size_t l4len)
{
	uint8_t *ip = ns->tx + ETH_HLEN_;
	wr16(ip + 2, (uint16_t)(IP4_HLEN + l4len));	/* total length */
	ip[10] = ip[11] = 0;	/* checksum */
	uint16_t c = csum_fold(csum_partial(ip, IP4_HLEN, 0));
	memcpy(ip + 10, &c, 2);
	uint32_t dst = ip4_dst(ip);
	const uint8_t *mac = ns->guest_mac_known && dst == ns->cfg.guest_ip ? ns->guest_mac : net_bcast_mac;
	if (!ns->tx_offload && IP4_HLEN + l4len > ns->cfg.mtu) {
		memcpy(ns->tx, mac, 6);
		memcpy(ns->tx + 6, ns->cfg.gateway_mac, 6);
		wr16(ns->tx + 12, ETH_P_IP_);
		ip4_fragment_send(ns, IP4_HLEN + l4len);
		return;
	}
	net_eth_send(ns, mac, ETH_P_IP_, ETH_HLEN_ + IP4_HLEN + l4len);
}

/* ICMP destination unreachable quoting the guest's packet header + 8 bytes. */
void net_send_icmp_unreach(struct net_stack *ns, const uint8_t *ip, size_t iplen, uint8_t code)
{
	size_t ihl = ip4_ihl(ip);
	size_t quote = MIN(iplen, ihl + 8);
	uint8_t *icmp = net_ip4_begin(ns, ip4_dst(ip), ip4_src(ip), IPPROTO_ICMP);
	icmp[0] = ICMP_DEST_UNREACH;
	icmp[1] = code;
	memset(icmp + 2, 0, 6);
	memcpy(icmp + 8, ip, quote);
	uint16_t c = csum_fold(csum_partial(icmp, 8 + quote, 0));
	memcpy(icmp + 2, &c, 2);
	net_ip4_send(ns, 8 + quote);
}

void arp_input(struct net_stack *ns, const uint8_t *a, size_t len)
{
	if (len < 28 || rd16(a) != 1 || rd16(a + 2) != ETH_P_IP_ || a[4] != 6 || a[5] != 4) {
		ns->stats.drop_arp++;
		return;
	}
	uint16_t op = rd16(a + 6);
	uint32_t spa = rd32(a + 14), tpa = rd32(a + 24);
	if (spa == ns->cfg.guest_ip) {
		memcpy(ns->guest_mac, a + 8, 6);
		ns->guest_mac_known = true;
	}
	if (op != 1 || tpa != ns->cfg.gateway_ip || spa == tpa) {
		if (op != 2)
			ns->stats.drop_arp++;
		return;
	}
	uint8_t *r = ns->tx + ETH_HLEN_;
	wr16(r, 1);
	wr16(r + 2, ETH_P_IP_);
	r[4] = 6;
	r[5] = 4;
	wr16(r + 6, 2);
	memcpy(r + 8, ns->cfg.gateway_mac, 6);
	wr32(r + 14, tpa);
	memcpy(r + 18, a + 8, 6);
	memcpy(r + 24, a + 14, 4);
	net_eth_send(ns, a + 8, ETH_P_ARP_, ETH_HLEN_ + 28);
}

static void icmp_input(struct net_stack *ns, const struct l3 *l3, const uint8_t *icmp, size_t len)
{
	if (len < 8 || csum_fold(csum_partial(icmp, len, 0)) != 0) {
		ns->stats.drop_icmp++;
		return;
	}
	const uint8_t *ip = l3->hdr;
	uint32_t dst = ip4_dst(ip);
	if (icmp_type(icmp) != ICMP_ECHO || icmp_code(icmp) != 0) {
		ns->stats.drop_icmp++;	/* only echo requests are answered or forwarded */
		return;
	}
	if (dst != ns->cfg.gateway_ip) {
		icmp_echo_forward(ns, l3, icmp, len);
		return;
	}
	uint8_t *r = net_ip4_begin(ns, dst, ip4_src(ip), IPPROTO_ICMP);
	memcpy(r, icmp, len);
	r[0] = ICMP_ECHOREPLY;
	r[2] = r[3] = 0;	/* checksum */
	uint16_t c = csum_fold(csum_partial(r, len, 0));
	memcpy(r + 2, &c, 2);
	net_ip4_send(ns, len);
}

void ip4_input(struct net_stack *ns, const uint8_t *ip, size_t len)
{
	if (len < IP4_HLEN || ip4_version(ip) != 4) {
		ns->stats.drop_ip_hdr++;
		return;
	}
	size_t ihl = ip4_ihl(ip), tot = ip4_tot_len(ip);
	if (ihl < IP4_HLEN || tot < ihl || tot > len) {
		ns->stats.drop_ip_hdr++;
		return;
	}
	if (csum_fold(csum_partial(ip, ihl, 0)) != 0) {
		ns->stats.drop_ip_csum++;
		return;
	}
	if (ip4_frag(ip) & (IP4_MF | IP4_FRAG_OFF_MASK)) {	/* a fragment */
		if (ip4_src(ip) != ns->cfg.guest_ip) {
			ns->stats.drop_ip_src++;
			return;
		}
		size_t rlen;
		const uint8_t *whole = ip4_frag_input(ns, ip, ihl, tot, &rlen);
		if (!whole)
			return;		/* held, or dropped and counted */
		ip = whole;
		ihl = IP4_HLEN;
		tot = rlen;
	}
	uint32_t src = ip4_src(ip), dst = ip4_dst(ip);
	const uint8_t *l4 = ip + ihl;
	size_t l4len = tot - ihl;
	struct l3 l3 = { .v6 = false, .src4 = src, .dst4 = dst, .hdr = ip, .pktlen = tot };
	policy_addr_from_v4(l3.src, src);
	policy_addr_from_v4(l3.dst, dst);
	if (src == 0 && ip4_proto(ip) == IPPROTO_UDP && l4len >= UDP_HLEN && udp_sport(l4) == 68 &&
	    udp_dport(l4) == 67) {
		udp_input(ns, &l3, l4, l4len);	/* DHCP before the guest has an address */
		return;
	}
	if (src != ns->cfg.guest_ip) {
		ns->stats.drop_ip_src++;	/* spoofed or unconfigured source */
		return;
	}
	if (dst == ns->cfg.guest_ip) {
		ns->stats.drop_ip_hdr++;
		return;
	}
	switch (ip4_proto(ip)) {
	case IPPROTO_ICMP:
		icmp_input(ns, &l3, l4, l4len);
		break;
	case IPPROTO_TCP:
		tcp_input(ns, &l3, l4, l4len);
		break;
	case IPPROTO_UDP:
		udp_input(ns, &l3, l4, l4len);
		break;
	default:
		ns->stats.drop_proto++;
	}
}
