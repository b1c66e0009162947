/* net/dgram.c - flows of datagrams between the guest and host sockets: UDP
 * conversations (net/udp.c) and pings beyond the gateway (net/icmp.c), in
 * one table with idle expiry.
 *
 * A flow is one connected, non-blocking host socket for one guest key (the
 * family, then for UDP the guest port and the remote address and port, for
 * ICMP the echo id and the remote address: an IPv6 packet to ::ffff:a.b.c.d
 * never shares an IPv4 flow's socket),
 * so only the remote the guest wrote to can answer.  Each kind has its own
 * cap within the table and its own idle time; a flow unused for that long
 * is closed at the stack's tick.  A new flow when its kind is at its cap
 * (or the table is full) recycles the kind's least recently used flow: that
 * one is closed now, its slot frees once io_uring lets go of its poll, and
 * the datagram that asked is dropped (the guest retries, as it would after
 * a loss).
 *
 * States of a slot: free (!used, !pending); open (used; pending while the
 * socket's multishot poll is armed); closing (!used, pending: the cancelled
 * poll has not completed yet; never reused before it has).
 */
#include "net/internal.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"

static const struct {
	unsigned max;		/* flows of this kind at once */
	uint64_t idle_ns;	/* closed after this long unused */
} dgram_kinds[] = {
	[DGRAM_UDP] = { UDP_MAX_FLOWS, UDP_IDLE_NS },
	[DGRAM_ICMP] = { ICMP_MAX_FLOWS, ICMP_IDLE_NS },
};

struct dgram_flow *dgram_find(struct net_stack *ns, enum dgram_kind kind, bool v6, uint16_t gport,
			      const uint8_t *rip6, uint16_t rport)
{
	for (unsigned i = 0; i < DGRAM_MAX_FLOWS; i++) {
		struct dgram_flow *f = &ns->dgram[i];
		if (f->used && f->kind == kind && f->v6 == v6 && f->gport == gport && f->rport == rport &&
		    memcmp(f->rip6, rip6, 16) == 0)
			return f;
	}
	return NULL;
}

void dgram_close(struct dgram_flow *f)
{
	if (f->fd >= 0) {
		if (f->pending)
			loop_cancel(f->ns->loop, &f->op);
		close(f->fd);
		f->fd = -1;
	}
	f->used = false;
}

struct dgram_flow *dgram_slot(struct net_stack *ns, enum dgram_kind kind)
{
	struct dgram_flow *free_slot = NULL, *lru = NULL;
	unsigned n = 0;
	for (unsigned i = 0; i < DGRAM_MAX_FLOWS; i++) {
		struct dgram_flow *c = &ns->dgram[i];
		if (!c->used) {
			if (!c->pending && !free_slot)
				free_slot = c;
			continue;
		}
		if (c->kind != kind)
			continue;
		n++;
		if (!lru || c->last_ns < lru->last_ns)
			lru = c;
	}
	if (free_slot && n < dgram_kinds[kind].max) {
		memset(free_slot, 0, sizeof(*free_slot));
		free_slot->fd = -1;
		free_slot->kind = kind;
		free_slot->ns = ns;
		free_slot->last_ns = ns->now;
		return free_slot;
	}
	if (lru)
		dgram_close(lru);
	return NULL;
}

struct dgram_flow *dgram_open(struct net_stack *ns, enum dgram_kind kind, const struct l3 *l3,
			      uint16_t gport, uint16_t rport, loop_cb readable)
{
	struct dgram_flow *f = dgram_slot(ns, kind);
	if (!f)
		return NULL;
	int proto = kind == DGRAM_UDP ? 0 : l3->v6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP;
	int fd = socket(l3->v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);
	if (fd < 0) {
		if (kind == DGRAM_ICMP)
			log_once(LOG_WARN, "net: ping beyond the gateway needs ICMP sockets "
				 "(net.ipv4.ping_group_range): %s", strerror(errno));
		return NULL;
	}
	struct sockaddr_storage ss;
	socklen_t sl = net_host_sockaddr(ns, l3->v6, l3->dst4, l3->dst, rport, &ss);
	if (connect(fd, (struct sockaddr *)&ss, sl) < 0) {
		close(fd);
		return NULL;
	}
	f->used = true;
	f->fd = fd;
	f->v6 = l3->v6;
	f->rip = l3->dst4;
	memcpy(f->rip6, l3->dst, 16);
	memcpy(f->gip6, l3->src, 16);
	f->gport = gport;
	f->rport = rport;
	f->op.cb = readable;
	f->op.opaque = f;
	if (loop_poll(ns->loop, &f->op, fd, POLLIN) < 0) {
		dgram_close(f);
		return NULL;
	}
	f->pending = true;
	net_timer_need(ns, ns->now + dgram_kinds[kind].idle_ns + 1);
	return f;
}

bool dgram_poll_done(struct dgram_flow *f, struct loop_op *op, int res, uint32_t flags)
{
	if (!(flags & IORING_CQE_F_MORE) && !op->polling)
		f->pending = false;
	return f->used && f->fd >= 0 && res >= 0 && !f->ns->destroying;
}

uint64_t dgram_tick(struct net_stack *ns)
{
	uint64_t next = NET_NEVER;
	for (unsigned i = 0; ns->dgram && i < DGRAM_MAX_FLOWS; i++) {
		struct dgram_flow *f = &ns->dgram[i];
		if (!f->used)
			continue;
		uint64_t idle = dgram_kinds[f->kind].idle_ns;
		if (ns->now - f->last_ns > idle)
			dgram_close(f);
		else
			next = MIN(next, f->last_ns + idle + 1);
	}
	return next;
}

int dgram_init(struct net_stack *ns)
{
	ns->dgram = calloc(DGRAM_MAX_FLOWS, sizeof(*ns->dgram));
	if (!ns->dgram)
		return -ENOMEM;
	for (unsigned i = 0; i < DGRAM_MAX_FLOWS; i++)
		ns->dgram[i].fd = -1;
	return 0;
}

void dgram_fini(struct net_stack *ns)
{
	if (!ns->dgram)
		return;
	for (unsigned i = 0; i < DGRAM_MAX_FLOWS; i++)
		if (ns->dgram[i].fd >= 0)
			close(ns->dgram[i].fd);
	free(ns->dgram);
}
