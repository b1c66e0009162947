/* net/snapshot.c - the stack's part of a VM snapshot (net.h): what the
 * guest knows of it.  A snapshot outlives the process whose sockets served
 * the guest's connections, so nothing host-side is kept: the guest's MAC
 * (frames to the guest need it before the guest speaks again) and, per TCP
 * connection it had, what a RST to it must carry.  A restored stack sends
 * those RSTs at once: an agent blocked reading a connection that can never
 * answer again sees ECONNRESET instead of waiting for a keepalive.
 *
 * Layout (little-endian): "KNET" u32 version, 6 bytes MAC, u8 MAC known,
 * u8 0, u32 number of flows (at most TCP_MAX_FLOWS), then each flow as
 * struct tcp_saved.  A restore refuses any other length, flag value or
 * address family byte.
 */
#include "net/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define SNAP_MAGIC_NET 0x54454e4bu	/* "KNET" */
#define SNAP_HDR 16

_Static_assert(sizeof(struct tcp_saved) == 56, "NET_SNAPSHOT_MAX counts 56 bytes a flow");
_Static_assert(SNAP_HDR + TCP_MAX_FLOWS * sizeof(struct tcp_saved) <= NET_SNAPSHOT_MAX,
	       "NET_SNAPSHOT_MAX holds every flow");

size_t net_snapshot_save(const struct net_stack *ns, void *buf)
{
	uint8_t *b = buf;
	uint32_t magic = SNAP_MAGIC_NET;
	memcpy(b, &magic, 4);
	memcpy(b + 4, ns->guest_mac, 6);
	b[10] = ns->guest_mac_known;
	b[11] = 0;
	uint32_t n = tcp_save_flows(ns, (struct tcp_saved *)(b + SNAP_HDR), TCP_MAX_FLOWS);
	memcpy(b + 12, &n, 4);
	return SNAP_HDR + n * sizeof(struct tcp_saved);
}

int net_snapshot_restore(struct net_stack *ns, const void *buf, size_t len)
{
	const uint8_t *b = buf;
	uint32_t magic, n;
	if (len < SNAP_HDR)
		return -EINVAL;
	memcpy(&magic, b, 4);
	memcpy(&n, b + 12, 4);
	if (magic != SNAP_MAGIC_NET || b[10] > 1 || b[11] || n > TCP_MAX_FLOWS ||
	    len != SNAP_HDR + n * sizeof(struct tcp_saved))
		return -EINVAL;
	struct tcp_saved *flows = malloc(n ? n * sizeof(*flows) : 1);
	if (!flows)
		return -ENOMEM;
	memcpy(flows, b + SNAP_HDR, n * sizeof(*flows));
	for (uint32_t i = 0; i < n; i++)
		if (flows[i].v6 > 1) {
			free(flows);
			return -EINVAL;
		}
	memcpy(ns->guest_mac, b + 4, 6);
	ns->guest_mac_known = b[10];
	for (uint32_t i = 0; i < n && ns->guest_mac_known; i++)
		tcp_reset_saved(ns, &flows[i]);
	free(flows);
	return 0;
}
