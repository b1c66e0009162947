/* net/stack.c - the stack object, Ethernet, ARP, IPv4 and ICMP, the timer.
 *
 * IPv4 fragments from the guest are reassembled (bounded, net/frag.c) and
 * IPv4 packets for the guest that exceed the MTU are fragmented.
 */
#include "net/internal.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"

#define ETH_P_IP_ 0x0800
#define ETH_P_ARP_ 0x0806

static const uint8_t bcast_mac[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

int net_parse_ip4(const char *s, uint32_t *out)
{
	struct in_addr a;
	if (inet_pton(AF_INET, s, &a) != 1)
		return -EINVAL;
	*out = ntohl(a.s_addr);
	return 0;
}

void net_config_default(struct net_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->guest_ip = 0x0A00020F;	/* 10.0.2.15 */
	cfg->gateway_ip = 0x0A000202;	/* 10.0.2.2 */
	cfg->netmask = 0xFFFFFF00;
	static const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x35, 0x02 };
	memcpy(cfg->gateway_mac, mac, 6);
	cfg->mtu = 1500;
}

const struct net_stats *net_get_stats(const struct net_stack *ns)
{
	return &ns->stats;
}

void net_set_gso_output(struct net_stack *ns, net_output_gso_fn fn)
{
	ns->gso_output = fn;
}

void net_set_stream_handler(struct net_stack *ns, net_stream_handler_fn fn, void *opaque)
{
	ns->stream_fn = fn;
	ns->stream_opaque = opaque;
}

static void eth_send(struct net_stack *ns, const uint8_t *dst_mac, uint16_t type, size_t len)
{
	memcpy(ns->tx, dst_mac, 6);
	memcpy(ns->tx + 6, ns->cfg.gateway_mac, 6);
	wr16(ns->tx + 12, type);
	ns->stats.tx_frames++;
	if (ns->tx_offload) {
		ns->tx_offload = false;
		ns->gso_output(ns->out_opaque, ns->tx, len, &ns->tx_gso);
		return;
	}
	ns->output(ns->out_opaque, ns->tx, len);
}

void net_eth_send(struct net_stack *ns, const uint8_t *dst_mac, uint16_t type, size_t len)
{
	eth_send(ns, dst_mac, type, len);
}

uint8_t *net_ip4_begin(struct net_stack *ns, uint32_t src, uint32_t dst, uint8_t proto)
{
	uint8_t *ip = ns->tx + ETH_HLEN_;
	ip[0] = 0x45;
	ip[1] = 0;
	wr16(ip + 4, 0);
	wr16(ip + 6, 0x4000);	/* DF */
	ip[8] = 64;
	ip[9] = proto;
	wr32(ip + 12, src);
	wr32(ip + 16, dst);
	return ip + IP4_HLEN;
}

void net_ip4_send(struct net_stack *ns, size_t l4len)
{
	uint8_t *ip = ns->tx + ETH_HLEN_;
	wr16(ip + 2, (uint16_t)(IP4_HLEN + l4len));
	ip[10] = ip[11] = 0;
	uint16_t c = csum_fold(csum_partial(ip, IP4_HLEN, 0));
	memcpy(ip + 10, &c, 2);
	uint32_t dst = rd32(ip + 16);
	const uint8_t *mac = ns->guest_mac_known && dst == ns->cfg.guest_ip ? ns->guest_mac : bcast_mac;
	if (!ns->tx_offload && IP4_HLEN + l4len > ns->cfg.mtu) {
		memcpy(ns->tx, mac, 6);
		memcpy(ns->tx + 6, ns->cfg.gateway_mac, 6);
		wr16(ns->tx + 12, ETH_P_IP_);
		ip4_fragment_send(ns, IP4_HLEN + l4len);
		return;
	}
	eth_send(ns, mac, ETH_P_IP_, ETH_HLEN_ + IP4_HLEN + l4len);
}

/* ICMP destination unreachable quoting the guest's packet header + 8 bytes. */
void net_send_icmp_unreach(struct net_stack *ns, const uint8_t *ip, size_t iplen, uint8_t code)
{
	size_t ihl = (size_t)(ip[0] & 0xf) * 4;
	size_t quote = MIN(iplen, ihl + 8);
	uint8_t *icmp = net_ip4_begin(ns, rd32(ip + 16), rd32(ip + 12), 1);
	icmp[0] = 3;
	icmp[1] = code;
	memset(icmp + 2, 0, 6);
	memcpy(icmp + 8, ip, quote);
	uint16_t c = csum_fold(csum_partial(icmp, 8 + quote, 0));
	memcpy(icmp + 2, &c, 2);
	net_ip4_send(ns, 8 + quote);
}

/* Whether the denial of proto to dst16 is logged now: the first time for
 * that destination, and never more than NET_DENIED_LOGGED destinations. */
static bool denied_first(struct net_stack *ns, const char *proto, const uint8_t *dst16)
{
	uint64_t h = 1469598103934665603ull;	/* FNV-1a over the address and protocol */
	for (int i = 0; i < 16; i++)
		h = (h ^ dst16[i]) * 1099511628211ull;
	h = ((h ^ (uint8_t)proto[0]) * 1099511628211ull) | 1;	/* never 0 (free) */
	size_t mask = NET_DENIED_LOGGED - 1;
	for (size_t i = h & mask;; i = (i + 1) & mask) {
		if (ns->denied_seen[i] == h)
			return false;
		if (!ns->denied_seen[i])
			break;
	}
	if (ns->denied_nseen >= NET_DENIED_LOGGED * 3 / 4) {
		if (!ns->denied_full_logged)
			log_warn("net: %u denied destinations logged; further ones are only counted",
				 ns->denied_nseen);
		ns->denied_full_logged = true;
		return false;
	}
	for (size_t i = h & mask;; i = (i + 1) & mask)
		if (!ns->denied_seen[i]) {
			ns->denied_seen[i] = h;
			break;
		}
	ns->denied_nseen++;
	return true;
}

/* Count a refusal in the summary's table (name: "" but for "dns"). */
static void denial_count(struct net_stack *ns, const char *proto, const uint8_t *dst16, uint16_t port,
			 enum policy_group g, const char *name)
{
	for (unsigned i = 0; i < ns->ndenials; i++) {
		struct net_denial *d = &ns->denials[i];
		if (d->port == port && !memcmp(d->dst, dst16, 16) && !strcmp(d->proto, proto) &&
		    !strcmp(d->name, name)) {
			if (d->count < UINT32_MAX)
				d->count++;
			return;
		}
	}
	if (ns->ndenials == NET_DENIALS_KEPT) {
		ns->denials_other++;
		return;
	}
	struct net_denial *d = &ns->denials[ns->ndenials++];
	memcpy(d->dst, dst16, 16);
	d->port = port;
	snprintf(d->proto, sizeof(d->proto), "%s", proto);
	snprintf(d->name, sizeof(d->name), "%s", name);
	d->group = (uint8_t)g;
	d->count = 1;
}

unsigned net_denials(const struct net_stack *ns, const struct net_denial **out, uint64_t *others)
{
	*out = ns->denials;
	*others = ns->denials_other;
	return ns->ndenials;
}

int net_denial_text(const struct net_stack *ns, const struct net_denial *d, char *out, size_t outsz)
{
	char a[INET6_ADDRSTRLEN];
	uint32_t v4;
	if (policy_addr_to_v4(d->dst, &v4)) {
		struct in_addr in = { .s_addr = htonl(v4) };
		inet_ntop(AF_INET, &in, a, sizeof(a));
	} else {
		inet_ntop(AF_INET6, d->dst, a, sizeof(a));
	}
	const char *g = policy_group_name(d->group), *fix = policy_group_remedy(d->group);
	if (d->name[0])
		return snprintf(out, outsz, "%.*s/dns x%u (not a name the %s egress profile permits; --allow-domain NAME)",
				64, d->name, d->count, policy_profile_name(ns->policy->profile));
	if (d->port)
		return snprintf(out, outsz, "%s%s%s:%u/%s x%u (%s; %s)", strchr(a, ':') ? "[" : "", a,
				strchr(a, ':') ? "]" : "", d->port, d->proto, d->count, g, fix);
	return snprintf(out, outsz, "%s/%s x%u (%s; %s)", a, d->proto, d->count, g, fix);
}

uint64_t net_denials_line(const struct net_stack *ns, char *out, size_t outsz)
{
	uint64_t total = ns->denials_other;
	size_t o = 0;
	if (outsz)
		out[0] = 0;
	for (unsigned i = 0; i < ns->ndenials; i++) {
		const struct net_denial *d = &ns->denials[i];
		char item[INET6_ADDRSTRLEN + 200];
		total += d->count;
		int n = snprintf(item, sizeof(item), "%s", o ? ", " : "");
		n += net_denial_text(ns, d, item + n, sizeof(item) - (size_t)n);
		if (n >= (int)sizeof(item))
			n = (int)sizeof(item) - 1;
		if (o + (size_t)n + 5 >= outsz) {
			if (o + 5 < outsz)
				snprintf(out + o, outsz - o, "%s...", o ? ", " : "");
			o = outsz;	/* full: only counting from here */
			continue;
		}
		memcpy(out + o, item, (size_t)n + 1);
		o += (size_t)n;
	}
	if (ns->denials_other && o + 40 < outsz)
		snprintf(out + o, outsz - o, ", %llu more to other destinations",
			 (unsigned long long)ns->denials_other);
	return total;
}

void net_note_denied(struct net_stack *ns, const char *proto, const uint8_t dst16[16], uint16_t port,
		     enum policy_group g)
{
	denial_count(ns, proto, dst16, port, g, "");
	if (!denied_first(ns, proto, dst16))
		return;
	uint32_t v4;
	char buf[INET6_ADDRSTRLEN];
	if (policy_addr_to_v4(dst16, &v4)) {
		struct in_addr a = { .s_addr = htonl(v4) };
		inet_ntop(AF_INET, &a, buf, sizeof(buf));
		log_warn("net: denied %s to %s:%u: %s (%s)", proto, buf, port, policy_group_name(g),
			 policy_group_remedy(g));
	} else {
		inet_ntop(AF_INET6, dst16, buf, sizeof(buf));
		log_warn("net: denied %s to [%s]:%u: %s (%s)", proto, buf, port, policy_group_name(g),
			 policy_group_remedy(g));
	}
}

void net_note_denied_name(struct net_stack *ns, const char *name)
{
	static const uint8_t none[16];
	char low[254];
	size_t n = strnlen(name, sizeof(low) - 1);
	for (size_t i = 0; i < n; i++)
		low[i] = (char)tolower((unsigned char)name[i]);
	low[n] = 0;
	denial_count(ns, "dns", none, 53, PG_UNLISTED, low);
}

uint32_t net_host_dst(struct net_stack *ns, uint32_t rip)
{
	return rip == ns->cfg.gateway_ip ? 0x7F000001 : rip;
}

bool net_dst_allowed(struct net_stack *ns, const uint8_t *dst16, enum policy_group *why)
{
	return policy_allows(ns->policy, dst16, why);
}

socklen_t net_host_sockaddr(struct net_stack *ns, bool v6, uint32_t rip, const uint8_t *rip6,
			    uint16_t port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (!v6) {
		struct sockaddr_in *sa = (struct sockaddr_in *)ss;
		sa->sin_family = AF_INET;
		sa->sin_port = htons(port);
		sa->sin_addr.s_addr = htonl(net_host_dst(ns, rip));
		return sizeof(*sa);
	}
	struct sockaddr_in6 *sa = (struct sockaddr_in6 *)ss;
	sa->sin6_family = AF_INET6;
	sa->sin6_port = htons(port);
	if (memcmp(rip6, ns->gw6, 16) == 0)
		sa->sin6_addr = in6addr_loopback;
	else
		memcpy(&sa->sin6_addr, rip6, 16);
	return sizeof(*sa);
}

void net_send_denied(struct net_stack *ns, const struct l3 *l3)
{
	if (l3->v6)
		net_send_icmp6_unreach(ns, l3, 1);
	else
		net_send_icmp_unreach(ns, l3->hdr, l3->pktlen, 13);
}

static void arp_input(struct net_stack *ns, const uint8_t *a, size_t len)
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
	eth_send(ns, a + 8, ETH_P_ARP_, ETH_HLEN_ + 28);
}

static void icmp_input(struct net_stack *ns, const struct l3 *l3, const uint8_t *icmp, size_t len)
{
	if (len < 8 || csum_fold(csum_partial(icmp, len, 0)) != 0) {
		ns->stats.drop_icmp++;
		return;
	}
	const uint8_t *ip = l3->hdr;
	uint32_t dst = rd32(ip + 16);
	if (icmp[0] != 8 || icmp[1] != 0) {
		ns->stats.drop_icmp++;	/* only echo requests are answered or forwarded */
		return;
	}
	if (dst != ns->cfg.gateway_ip) {
		icmp_echo_forward(ns, l3, icmp, len);
		return;
	}
	uint8_t *r = net_ip4_begin(ns, dst, rd32(ip + 12), 1);
	memcpy(r, icmp, len);
	r[0] = 0;
	r[2] = r[3] = 0;
	uint16_t c = csum_fold(csum_partial(r, len, 0));
	memcpy(r + 2, &c, 2);
	net_ip4_send(ns, len);
}

static void ip4_input(struct net_stack *ns, const uint8_t *ip, size_t len)
{
	if (len < IP4_HLEN || (ip[0] >> 4) != 4) {
		ns->stats.drop_ip_hdr++;
		return;
	}
	size_t ihl = (size_t)(ip[0] & 0xf) * 4, tot = rd16(ip + 2);
	if (ihl < IP4_HLEN || tot < ihl || tot > len) {
		ns->stats.drop_ip_hdr++;
		return;
	}
	if (csum_fold(csum_partial(ip, ihl, 0)) != 0) {
		ns->stats.drop_ip_csum++;
		return;
	}
	if ((rd16(ip + 6) & 0x3fff) != 0) {	/* MF or a fragment offset */
		if (rd32(ip + 12) != ns->cfg.guest_ip) {
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
	uint32_t src = rd32(ip + 12), dst = rd32(ip + 16);
	const uint8_t *l4 = ip + ihl;
	size_t l4len = tot - ihl;
	struct l3 l3 = { .v6 = false, .src4 = src, .dst4 = dst, .hdr = ip, .pktlen = tot };
	policy_addr_from_v4(l3.src, src);
	policy_addr_from_v4(l3.dst, dst);
	if (src == 0 && ip[9] == 17 && l4len >= UDP_HLEN && rd16(l4) == 68 && rd16(l4 + 2) == 67) {
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
	switch (ip[9]) {
	case 1:
		icmp_input(ns, &l3, l4, l4len);
		break;
	case 6:
		tcp_input(ns, &l3, l4, l4len);
		break;
	case 17:
		udp_input(ns, &l3, l4, l4len);
		break;
	default:
		ns->stats.drop_proto++;
	}
}

void net_input(struct net_stack *ns, const void *frame, size_t len)
{
	const uint8_t *f = frame;
	ns->stats.rx_frames++;
	if (len < ETH_HLEN_) {
		ns->stats.drop_short++;
		return;
	}
	if (f[6] & 1) {		/* multicast source MAC: invalid */
		ns->stats.drop_eth++;
		return;
	}
	if (memcmp(f, ns->cfg.gateway_mac, 6) != 0 && memcmp(f, bcast_mac, 6) != 0 &&
	    !(f[0] == 0x33 && f[1] == 0x33)) {
		ns->stats.drop_eth++;	/* not for us */
		return;
	}
	ns->now = now_ns();
	uint16_t type = rd16(f + 12);
	if (type == ETH_P_IP_) {
		if (!ns->guest_mac_known || memcmp(ns->guest_mac, f + 6, 6) != 0) {
			memcpy(ns->guest_mac, f + 6, 6);
			ns->guest_mac_known = true;
		}
		ip4_input(ns, f + ETH_HLEN_, len - ETH_HLEN_);
	} else if (type == ETH_P_ARP_) {
		arp_input(ns, f + ETH_HLEN_, len - ETH_HLEN_);
	} else if (type == 0x86DD) {
		if (!ns->guest_mac_known || memcmp(ns->guest_mac, f + 6, 6) != 0) {
			memcpy(ns->guest_mac, f + 6, 6);
			ns->guest_mac_known = true;
		}
		ip6_input(ns, f + ETH_HLEN_, len - ETH_HLEN_);
	} else {
		ns->stats.drop_eth++;
	}
}

void net_flush(struct net_stack *ns)
{
	tcp_flush(ns);
}

void net_timer_need(struct net_stack *ns, uint64_t when)
{
	if (!ns->loop || ns->destroying)
		return;
	if (ns->tick_armed && ns->tick_at <= when + NET_TICK_NS)
		return;		/* it fires in time (timers are that coarse) */
	uint64_t delay = when > ns->now + NET_TICK_NS ? when - ns->now : NET_TICK_NS;
	if (ns->tick_armed) {
		if (loop_timer_update(ns->loop, &ns->tick_op, &ns->tick_upd_ts, delay) < 0)
			return;
	} else {
		if (loop_timer(ns->loop, &ns->tick_op, &ns->tick_ts, delay) < 0)
			return;
		ns->tick_armed = true;
	}
	ns->tick_at = ns->now + delay;
}

static void tick_cb(struct loop *loop, struct loop_op *op, int res, uint32_t flags)
{
	(void)loop;
	(void)flags;
	struct net_stack *ns = op->opaque;
	ns->tick_armed = false;
	if (ns->destroying || res == -ECANCELED)
		return;
	ns->now = now_ns();
	uint64_t next = tcp_tick(ns);
	next = MIN(next, udp_tick(ns));
	next = MIN(next, ip4_frag_tick(ns));
	next = MIN(next, icmp_tick(ns));
	if (next != NET_NEVER)
		net_timer_need(ns, next);
}

int net_create(struct net_stack **out, struct loop *loop, const struct net_config *cfg,
	       net_output_fn output, void *opaque)
{
	if (!cfg->policy || cfg->mtu < 576 || cfg->mtu > 65520 || !output)
		return -EINVAL;
	struct net_stack *ns = calloc(1, sizeof(*ns));
	if (!ns)
		return -ENOMEM;
	ns->loop = loop;
	ns->cfg = *cfg;
	ns->policy = cfg->policy;
	ns->policy->gateway_ip = cfg->gateway_ip;
	ns->policy->guest_mask = cfg->netmask;
	ns->policy->guest_net = cfg->guest_ip & cfg->netmask;
	ns->output = output;
	ns->out_opaque = opaque;
	ns->now = now_ns();
	ip6_init(ns);
	policy_add_host_addr(ns->policy, ns->gw6);
	int r = tcp_init(ns);
	if (r == 0)
		r = udp_init(ns);
	if (r == 0)
		r = ip4_frag_init(ns);
	if (r == 0)
		r = icmp_init(ns);
	if (r == 0)
		r = dns_init(ns);
	if (r < 0) {
		net_destroy(ns);
		return r;
	}
	ns->tick_op.cb = tick_cb;
	ns->tick_op.opaque = ns;
	*out = ns;
	return 0;
}

/* fn on every loop op the stack owns; true when fn was true for any. */
static bool net_ops_any(struct net_stack *ns, bool (*fn)(struct net_stack *, struct loop_op *))
{
	bool any = fn(ns, &ns->tick_op);
	any |= fn(ns, &ns->delack_op);
	any |= fn(ns, &ns->dns.op);
	for (unsigned i = 0; i < ns->npub; i++)
		any |= fn(ns, &ns->pub[i].op);
	for (int i = 0; ns->tcp && i < TCP_MAX_FLOWS; i++) {
		any |= fn(ns, &ns->tcp[i].rd_op);
		any |= fn(ns, &ns->tcp[i].wr_op);
	}
	for (int i = 0; ns->udp && i < UDP_MAX_FLOWS; i++)
		any |= fn(ns, &ns->udp[i].op);
	for (int i = 0; ns->icmp && i < ICMP_MAX_FLOWS; i++)
		any |= fn(ns, &ns->icmp[i].op);
	return any;
}

static bool op_cancel(struct net_stack *ns, struct loop_op *op)
{
	if (op->armed)
		loop_cancel(ns->loop, op);
	return false;
}

static bool op_armed(struct net_stack *ns, struct loop_op *op)
{
	(void)ns;
	return op->armed != 0;
}

static bool net_ops_busy(void *ns) { return net_ops_any(ns, op_armed); }

/* The loop may run after the stack is gone (other devices' teardown runs
 * it), so every request naming the stack's memory is cancelled and its
 * last completion awaited before anything is freed; callbacks see
 * `destroying` and do nothing. */
void net_destroy(struct net_stack *ns)
{
	if (!ns)
		return;
	ns->destroying = true;
	if (ns->loop) {
		net_ops_any(ns, op_cancel);
		if (loop_settle(ns->loop, net_ops_busy, ns, 2000) < 0)
			log_warn("net: io_uring still holds requests of the stack at teardown");
	}
	dns_fini(ns);
	tcp_fini(ns);
	udp_fini(ns);
	ip4_frag_fini(ns);
	icmp_fini(ns);
	for (unsigned i = 0; i < ns->npub; i++)
		close(ns->pub[i].fd);
	free(ns);
}

static void publish_cb(struct loop *loop, struct loop_op *op, int res, uint32_t flags)
{
	(void)loop;
	(void)flags;
	struct publish *p = op->opaque;
	struct net_stack *ns = p->ns;
	if (res < 0 || ns->destroying)
		return;
	ns->now = now_ns();
	if (p->udp) {
		udp_publish_input(ns, p->fd, p->guest_port);
		return;
	}
	for (int i = 0; i < 64; i++) {
		int fd = accept4(p->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			break;
		if (tcp_accept_published(ns, fd, p->guest_port) < 0) {
			log_once(LOG_WARN, "net: publish: flow table full, refusing connections");
			close(fd);
		}
	}
}

int net_parse_publish(const char *spec, uint32_t *addr, uint16_t *hport, uint16_t *gport, bool *udp)
{
	char buf[128], *parts[3];
	int n = 0;
	*udp = false;
	if (strlen(spec) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, spec);
	char *slash = strchr(buf, '/');
	if (slash) {
		*slash = 0;
		if (strcmp(slash + 1, "udp") == 0)
			*udp = true;
		else if (strcmp(slash + 1, "tcp") != 0)
			return -EINVAL;
	}
	for (char *save = NULL, *t = strtok_r(buf, ":", &save); t; t = strtok_r(NULL, ":", &save)) {
		if (n == 3)
			return -EINVAL;
		parts[n++] = t;
	}
	if (n < 2)
		return -EINVAL;
	*addr = 0x7F000001;
	if (n == 3 && net_parse_ip4(parts[0], addr) < 0)
		return -EINVAL;
	long ports[2];
	for (int i = 0; i < 2; i++) {
		char *end;
		ports[i] = strtol(parts[n - 2 + i], &end, 10);
		if (*end || ports[i] < 1 || ports[i] > 65535)
			return -EINVAL;
	}
	*hport = (uint16_t)ports[0];
	*gport = (uint16_t)ports[1];
	return 0;
}

void net_autopublish(struct net_stack *ns, struct net_autopub *ap, const uint16_t *ports,
		     unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		uint16_t p = ports[i];
		uint8_t bit = (uint8_t)(1u << (p % 8));
		if (p == 0 || (ap->tried[p / 8] & bit))
			continue;
		ap->tried[p / 8] |= bit;
		char spec[16];
		snprintf(spec, sizeof(spec), "%u:%u", p, p);
		int r = net_publish(ns, spec);
		if (r == 0)
			log_info("net: auto-published 127.0.0.1:%u to the guest's port %u", p, p);
		else if (ap->failures++ < NET_AUTOPUB_LOGGED)
			log_warn("net: auto-publish: guest port %u: cannot listen on 127.0.0.1:%u: %s%s",
				 p, p, strerror(-r),
				 ap->failures == NET_AUTOPUB_LOGGED ? " (further failures not logged)" : "");
	}
}

int net_publish(struct net_stack *ns, const char *spec)
{
	uint32_t addr;
	uint16_t hport, gport;
	bool udp;
	if (ns->npub >= PUBLISH_MAX || net_parse_publish(spec, &addr, &hport, &gport, &udp) < 0)
		return -EINVAL;
	long ports[2] = { hport, gport };
	int fd = socket(AF_INET, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)ports[0]),
				  .sin_addr.s_addr = htonl(addr) };
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || (!udp && listen(fd, 128) < 0)) {
		int e = -errno;
		close(fd);
		return e;
	}
	struct publish *p = &ns->pub[ns->npub];
	p->fd = fd;
	p->udp = udp;
	p->host_port = (uint16_t)ports[0];
	p->guest_port = (uint16_t)ports[1];
	p->ns = ns;
	p->op.cb = publish_cb;
	p->op.opaque = p;
	int r = loop_poll(ns->loop, &p->op, fd, POLLIN);
	if (r < 0) {
		close(fd);
		return r;
	}
	ns->npub++;
	return 0;
}
