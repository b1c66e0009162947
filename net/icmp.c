/* net/icmp.c - ICMP and ICMPv6 echo beyond the gateway, through unprivileged
 * ICMP sockets.
 *
 * A guest ping to an address the egress policy allows goes out of a host
 * "ping socket" (socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP), or AF_INET6 and
 * IPPROTO_ICMPV6), which needs no privilege where net.ipv4.ping_group_range
 * admits our group (the default on current distributions; it covers both
 * families).  One connected socket per (guest echo id,
 * remote address), so only that remote's replies come back; the kernel
 * gives the socket its own echo id, and replies get the guest's id back.
 * Flows are net/dgram.c's: closed after ICMP_IDLE_NS idle, the least
 * recently used recycled at ICMP_MAX_FLOWS.  A
 * denied ping gets "administratively prohibited" at once, as UDP does;
 * when the host refuses ping sockets the request is dropped and counted
 * (and logged once).  Echo to the gateway itself is answered in ip4.c.
 */
#include "net/internal.h"

#include <string.h>
#include <sys/socket.h>

#include "common/util.h"

/* An echo reply from the host socket: back to the guest with its id. */
static void icmp_readable(struct loop *loop, struct loop_op *op, int res, uint32_t flags)
{
	(void)loop;
	struct dgram_flow *f = op->opaque;
	struct net_stack *ns = f->ns;
	if (!dgram_poll_done(f, op, res, flags))
		return;
	ns->now = now_ns();
	static uint8_t buf[IP4_FRAG_PAYLOAD_MAX];	/* single-threaded scratch */
	for (int i = 0; i < 64; i++) {
		ssize_t n = recv(f->fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0)
			break;
		if (n < 8 || buf[0] != (f->v6 ? 129 : 0))
			continue;	/* the kernel only passes echo replies; be sure */
		f->last_ns = ns->now;
		if (f->v6 && (size_t)n > ns->cfg.mtu - IP6_HLEN) {
			ns->stats.tx_dropped++;	/* no IPv6 fragmentation */
			continue;
		}
		uint8_t *r = f->v6 ? net_ip6_begin(ns, f->rip6, f->gip6, 58)
				   : net_ip4_begin(ns, f->rip, ns->cfg.guest_ip, 1);
		memcpy(r, buf, (size_t)n);
		wr16(r + 4, f->gport);	/* the guest's echo id */
		r[2] = r[3] = 0;
		uint32_t seed = f->v6 ? csum_pseudo6(f->rip6, f->gip6, 58, (uint32_t)n) : 0;
		uint16_t c = csum_fold(csum_partial(r, (size_t)n, seed));
		memcpy(r + 2, &c, 2);
		if (f->v6)
			net_ip6_send(ns, (size_t)n);
		else
			net_ip4_send(ns, (size_t)n);
	}
}

void icmp_echo_forward(struct net_stack *ns, const struct l3 *l3, const uint8_t *icmp, size_t len)
{
	enum policy_group why;
	if (!net_dst_allowed(ns, l3->dst, &why)) {
		ns->stats.denied_icmp++;
		net_note_denied(ns, "icmp", l3->dst, 0, why);
		if (why != PG_BROADCAST && why != PG_MULTICAST)
			net_send_denied(ns, l3);
		return;
	}
	if (!ns->loop) {
		ns->stats.drop_icmp++;
		return;
	}
	uint16_t gid = icmp_echo_id(icmp);
	struct dgram_flow *f = dgram_find(ns, DGRAM_ICMP, l3->v6, gid, l3->dst, 0);
	if (!f)
		f = dgram_open(ns, DGRAM_ICMP, l3, gid, 0, icmp_readable);
	if (!f) {
		ns->stats.drop_icmp++;
		return;
	}
	f->last_ns = ns->now;
	if (send(f->fd, icmp, len, MSG_DONTWAIT) < 0)
		ns->stats.drop_icmp++;	/* the kernel fills in its id and checksum */
}
