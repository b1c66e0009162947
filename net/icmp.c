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
 * Flows are recycled after ICMP_IDLE_NS or when the table is full.  A
 * denied ping gets "administratively prohibited" at once, as UDP does;
 * when the host refuses ping sockets the request is dropped and counted
 * (and logged once).  Echo to the gateway itself is answered in stack.c.
 */
#include "net/internal.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"

static void icmp_flow_close(struct icmp_flow *f)
{
	if (f->fd >= 0) {
		if (f->pending)
			loop_cancel(f->ns->loop, &f->op);
		close(f->fd);
		f->fd = -1;
	}
	f->used = false;
}

/* An echo reply from the host socket: back to the guest with its id. */
static void icmp_readable(struct loop *loop, struct loop_op *op, int res, uint32_t flags)
{
	(void)loop;
	struct icmp_flow *f = op->opaque;
	struct net_stack *ns = f->ns;
	if (!(flags & IORING_CQE_F_MORE) && !op->polling)
		f->pending = false;
	if (!f->used || f->fd < 0 || res < 0 || ns->destroying)
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
		wr16(r + 4, f->gid);
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

static struct icmp_flow *icmp_flow_open(struct net_stack *ns, const struct l3 *l3, uint16_t gid)
{
	struct icmp_flow *f = NULL, *lru = NULL;
	for (unsigned i = 0; i < ICMP_MAX_FLOWS; i++) {
		struct icmp_flow *c = &ns->icmp[i];
		if (!c->used && !c->pending) {
			f = c;
			break;
		}
		if (c->used && (!lru || c->last_ns < lru->last_ns))
			lru = c;
	}
	if (!f) {
		if (lru)
			icmp_flow_close(lru);	/* its slot frees once io_uring lets go */
		return NULL;
	}
	int fd = socket(l3->v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
			l3->v6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP);
	if (fd < 0) {
		log_once(LOG_WARN, "net: ping beyond the gateway needs ICMP sockets "
			 "(net.ipv4.ping_group_range): %s", strerror(errno));
		return NULL;
	}
	struct sockaddr_storage ss;
	socklen_t sl = net_host_sockaddr(ns, l3->v6, l3->dst4, l3->dst, 0, &ss);
	if (connect(fd, (struct sockaddr *)&ss, sl) < 0) {
		close(fd);
		return NULL;
	}
	f->used = true;
	net_timer_need(ns, ns->now + ICMP_IDLE_NS + 1);
	f->fd = fd;
	f->v6 = l3->v6;
	f->rip = l3->dst4;
	memcpy(f->rip6, l3->dst, 16);
	memcpy(f->gip6, l3->src, 16);
	f->gid = gid;
	f->ns = ns;
	f->last_ns = ns->now;
	f->op.cb = icmp_readable;
	f->op.opaque = f;
	if (loop_poll(ns->loop, &f->op, fd, POLLIN) < 0) {
		icmp_flow_close(f);
		return NULL;
	}
	f->pending = true;
	return f;
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
	if (!ns->loop || !ns->icmp) {
		ns->stats.drop_icmp++;
		return;
	}
	uint16_t gid = rd16(icmp + 4);
	struct icmp_flow *f = NULL;
	for (unsigned i = 0; i < ICMP_MAX_FLOWS && !f; i++) {
		struct icmp_flow *c = &ns->icmp[i];
		if (c->used && c->v6 == l3->v6 && memcmp(c->rip6, l3->dst, 16) == 0 && c->gid == gid)
			f = c;
	}
	if (!f)
		f = icmp_flow_open(ns, l3, gid);
	if (!f) {
		ns->stats.drop_icmp++;
		return;
	}
	f->last_ns = ns->now;
	if (send(f->fd, icmp, len, MSG_DONTWAIT) < 0)
		ns->stats.drop_icmp++;	/* the kernel fills in its id and checksum */
}

uint64_t icmp_tick(struct net_stack *ns)
{
	uint64_t next = NET_NEVER;
	for (unsigned i = 0; ns->icmp && i < ICMP_MAX_FLOWS; i++) {
		struct icmp_flow *f = &ns->icmp[i];
		if (f->used && ns->now - f->last_ns > ICMP_IDLE_NS)
			icmp_flow_close(f);
		else if (f->used)
			next = MIN(next, f->last_ns + ICMP_IDLE_NS + 1);
	}
	return next;
}

int icmp_init(struct net_stack *ns)
{
	ns->icmp = calloc(ICMP_MAX_FLOWS, sizeof(*ns->icmp));
	if (!ns->icmp)
		return -ENOMEM;
	for (unsigned i = 0; i < ICMP_MAX_FLOWS; i++)
		ns->icmp[i].fd = -1;
	return 0;
}

void icmp_fini(struct net_stack *ns)
{
	if (!ns->icmp)
		return;
	for (unsigned i = 0; i < ICMP_MAX_FLOWS; i++)
		if (ns->icmp[i].fd >= 0)
			close(ns->icmp[i].fd);
	free(ns->icmp);
}
