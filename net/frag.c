/* net/frag.c - IPv4 fragments: reassembly of the guest's, fragmentation of ours.
 *
 * Reassembly is bounded so that a hostile guest cannot make it hold more
 * than IP4_FRAG_SLOTS datagrams of at most 65535 bytes each (buffers
 * allocated with the stack, never per packet): a new datagram when every
 * slot is busy evicts the oldest, and one not complete within
 * IP4_FRAG_TIMEOUT_NS is dropped.  In the spirit of RFC 5722, a fragment
 * that overlaps one already held (even an exact duplicate) abandons the
 * whole datagram, as do fragments that lie about where the datagram ends
 * or would make it longer than 65535 bytes.  Everything dropped is counted
 * in drop_ip_frag, once per fragment.
 *
 * Outgoing IPv4 packets longer than the MTU (an echo reply to a large ping,
 * a large UDP datagram from the host) are split into fragments; TCP never
 * needs it (segments follow the MSS, super-segments go to the GSO output).
 */
#include "net/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

static bool block_held(const struct ip4_frag *d, unsigned b)
{
	return d->map[b / 8] & (1u << (b % 8));
}

static void frag_free(struct ip4_frag *d)
{
	d->used = false;
	memset(d->map, 0, sizeof(d->map));
}

/* Drop a datagram and count every fragment it held plus the current one. */
static void frag_abandon(struct net_stack *ns, struct ip4_frag *d)
{
	ns->stats.drop_ip_frag += d->nfrags + 1;
	frag_free(d);
}

static struct ip4_frag *frag_slot(struct net_stack *ns, const uint8_t *ip)
{
	uint32_t src = ip4_src(ip), dst = ip4_dst(ip);
	uint16_t id = ip4_id(ip);
	struct ip4_frag *free_slot = NULL, *oldest = NULL;
	for (unsigned i = 0; i < IP4_FRAG_SLOTS; i++) {
		struct ip4_frag *d = &ns->frag[i];
		if (d->used && ns->now - d->first_ns > IP4_FRAG_TIMEOUT_NS) {
			ns->stats.drop_ip_frag += d->nfrags;	/* timed out */
			frag_free(d);
		}
		if (!d->used) {
			if (!free_slot)
				free_slot = d;
			continue;
		}
		if (d->src == src && d->dst == dst && d->id == id && d->proto == ip4_proto(ip))
			return d;
		if (!oldest || d->first_ns < oldest->first_ns)
			oldest = d;
	}
	struct ip4_frag *d = free_slot;
	if (!d) {
		d = oldest;
		ns->stats.drop_ip_frag += d->nfrags;	/* evicted */
		frag_free(d);
	}
	d->used = true;
	net_timer_need(ns, ns->now + IP4_FRAG_TIMEOUT_NS + 1);
	d->src = src;
	d->dst = dst;
	d->id = id;
	d->proto = ip4_proto(ip);
	d->first_ns = ns->now;
	d->total = 0;
	d->got = 0;
	d->max_end = 0;
	d->nfrags = 0;
	d->have_first = false;
	return d;
}

const uint8_t *ip4_frag_input(struct net_stack *ns, const uint8_t *ip, size_t ihl, size_t tot,
			      size_t *outlen)
{
	uint16_t fl = ip4_frag(ip);
	bool mf = fl & IP4_MF;
	uint32_t off = (uint32_t)(fl & IP4_FRAG_OFF_MASK) * 8, plen = (uint32_t)(tot - ihl);
	if (off + plen > IP4_FRAG_PAYLOAD_MAX || (mf && (plen == 0 || plen % 8))) {
		ns->stats.drop_ip_frag++;	/* too long, or a middle piece not in 8-byte units */
		return NULL;
	}
	struct ip4_frag *d = frag_slot(ns, ip);
	if (!mf) {
		if ((d->total && d->total != off + plen) || d->max_end > off + plen) {
			frag_abandon(ns, d);	/* two different ends */
			return NULL;
		}
		d->total = off + plen;
	} else if (d->total && off + plen > d->total) {
		frag_abandon(ns, d);		/* beyond the end already seen */
		return NULL;
	}
	unsigned b0 = off / 8, b1 = (off + plen + 7) / 8;
	for (unsigned b = b0; b < b1; b++) {
		if (block_held(d, b)) {
			frag_abandon(ns, d);	/* overlap (RFC 5722) */
			return NULL;
		}
	}
	for (unsigned b = b0; b < b1; b++)
		d->map[b / 8] |= (uint8_t)(1u << (b % 8));
	memcpy(d->buf + IP4_HLEN + off, ip + ihl, plen);
	d->got += plen;
	d->max_end = MAX(d->max_end, off + plen);
	d->nfrags++;
	if (off == 0) {
		memcpy(d->buf, ip, IP4_HLEN);	/* options are not kept */
		d->have_first = true;
	}
	if (!d->have_first || !d->total || d->got != d->total)
		return NULL;
	uint8_t *h = d->buf;
	h[0] = 0x45;
	wr16(h + 2, (uint16_t)(IP4_HLEN + d->total));
	wr16(h + 6, 0);
	h[10] = h[11] = 0;
	uint16_t c = csum_fold(csum_partial(h, IP4_HLEN, 0));
	memcpy(h + 10, &c, 2);
	*outlen = IP4_HLEN + d->total;
	ns->stats.ip_frag_reassembled++;
	frag_free(d);	/* the caller uses buf before any other input arrives */
	return h;
}

uint64_t ip4_frag_tick(struct net_stack *ns)
{
	uint64_t next = NET_NEVER;
	for (unsigned i = 0; i < IP4_FRAG_SLOTS; i++) {
		struct ip4_frag *d = &ns->frag[i];
		if (d->used && ns->now - d->first_ns > IP4_FRAG_TIMEOUT_NS) {
			ns->stats.drop_ip_frag += d->nfrags;
			frag_free(d);
		} else if (d->used) {
			next = MIN(next, d->first_ns + IP4_FRAG_TIMEOUT_NS + 1);
		}
	}
	return next;
}

int ip4_frag_init(struct net_stack *ns)
{
	ns->frag = calloc(IP4_FRAG_SLOTS, sizeof(*ns->frag));
	return ns->frag ? 0 : -ENOMEM;
}

void ip4_frag_fini(struct net_stack *ns)
{
	free(ns->frag);
}

/* Send the IPv4 packet in ns->tx (l3len bytes from its IP header) as
 * fragments that fit the MTU; the header has no options. */
void ip4_fragment_send(struct net_stack *ns, size_t l3len)
{
	const uint8_t *ip = ns->tx + ETH_HLEN_;
	size_t chunk = (ns->cfg.mtu - IP4_HLEN) & ~(size_t)7;
	uint16_t id = ns->ip_id++;
	for (size_t off = 0; off < l3len - IP4_HLEN; off += chunk) {
		size_t n = MIN(chunk, l3len - IP4_HLEN - off);
		bool more = off + n < l3len - IP4_HLEN;
		uint8_t *f = ns->frag_tx, *h = f + ETH_HLEN_;
		memcpy(f, ns->tx, ETH_HLEN_ + IP4_HLEN);
		wr16(h + 2, (uint16_t)(IP4_HLEN + n));
		wr16(h + 4, id);
		wr16(h + 6, (uint16_t)((more ? 0x2000 : 0) | off / 8));
		h[10] = h[11] = 0;
		uint16_t c = csum_fold(csum_partial(h, IP4_HLEN, 0));
		memcpy(h + 10, &c, 2);
		memcpy(h + IP4_HLEN, ip + IP4_HLEN + off, n);
		ns->stats.tx_frames++;
		ns->output(ns->out_opaque, f, ETH_HLEN_ + IP4_HLEN + n);
	}
}
