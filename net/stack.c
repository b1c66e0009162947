/* net/stack.c - the stack object: configuration, Ethernet in and out, the
 * one timer, creation and teardown (every loop operation the stack owns is
 * cancelled and settled before it is freed).
 *
 * Frames go up by EtherType: IPv4 and ARP (net/ip4.c), IPv6 (net/ip6.c);
 * from there to TCP (tcp.c), UDP (udp.c, with DHCP and DNS), ICMP
 * (icmp.c).  What the egress policy decides and leaves behind is in
 * egress.c, ports published on the host in publish.c.
 */
#include "net/internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <unistd.h>

#include <linux/virtio_net.h>

#include "common/log.h"
#include "common/util.h"

const uint8_t net_bcast_mac[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

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
	net_set_offloads(ns, NET_OFFLOAD_ALL);
}

void net_set_room(struct net_stack *ns, net_room_fn fn)
{
	ns->room = fn;
}

void net_guest_room(struct net_stack *ns)
{
	if (!ns->room_wanted)
		return;
	ns->room_wanted = false;
	ns->now = now_ns();
	tcp_room(ns);
	net_flush(ns);
}

void net_set_offloads(struct net_stack *ns, unsigned offloads)
{
	if (!(offloads & NET_OFFLOAD_CSUM))
		offloads = 0;
	__atomic_store_n(&ns->offloads, offloads & NET_OFFLOAD_ALL, __ATOMIC_RELAXED);
}

unsigned net_offloads(const struct net_stack *ns)
{
	return ns->gso_output ? __atomic_load_n(&ns->offloads, __ATOMIC_RELAXED) : 0;
}

int net_input_vnet(struct net_stack *ns, uint8_t *buf, size_t len, size_t hdr_len)
{
	struct virtio_net_hdr h;
	if (hdr_len < sizeof(h) || len < hdr_len + ETH_HLEN_)
		return -EINVAL;
	memcpy(&h, buf, sizeof(h));
	uint8_t *frame = buf + hdr_len;
	len -= hdr_len;
	if ((h.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) &&
	    net_finish_csum(frame, len, h.csum_start, h.csum_offset) < 0)
		return -EINVAL;
	net_input(ns, frame, len);
	return 0;
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
	if (memcmp(f, ns->cfg.gateway_mac, 6) != 0 && memcmp(f, net_bcast_mac, 6) != 0 &&
	    !(f[0] == 0x33 && f[1] == 0x33)) {
		ns->stats.drop_eth++;	/* not for us */
		return;
	}
	ns->now = now_ns();
	uint16_t type = eth_type(f);
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
	next = MIN(next, dgram_tick(ns));
	next = MIN(next, ip4_frag_tick(ns));
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
		r = dgram_init(ns);
	if (r == 0)
		r = ip4_frag_init(ns);
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
	for (int i = 0; ns->dgram && i < DGRAM_MAX_FLOWS; i++)
		any |= fn(ns, &ns->dgram[i].op);
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
	dgram_fini(ns);
	ip4_frag_fini(ns);
	for (unsigned i = 0; i < ns->npub; i++)
		close(ns->pub[i].fd);
	free(ns);
}
