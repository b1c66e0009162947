/* tests/fuzz/net_frames.h - build guest frames for net unit tests and the
 * fuzzer (header-only test helper): Ethernet + IPv4 + TCP/UDP with valid
 * checksums, from the guest 10.0.2.15 to the stack's MAC. */
#ifndef KVMBOX_TESTS_NET_FRAMES_H
#define KVMBOX_TESTS_NET_FRAMES_H

#include <string.h>

#include "net/internal.h"

static const uint8_t nf_guest_mac[6] = { 0x02, 0, 0, 0, 0, 0x15 };

/* Fill in IPv4 header and L4 checksums of an Ethernet/IPv4 frame in place
 * (as far as the lengths allow). */
static inline void nf_fix_checksums(uint8_t *f, size_t len)
{
	if (len < 14 + 20 || rd16(f + 12) != 0x0800)
		return;
	uint8_t *ip = f + 14;
	size_t ihl = (size_t)(ip[0] & 0xf) * 4;
	if (ihl < 20 || 14 + ihl > len)
		return;
	ip[10] = ip[11] = 0;
	uint16_t c = csum_fold(csum_partial(ip, ihl, 0));
	memcpy(ip + 10, &c, 2);
	size_t tot = rd16(ip + 2);
	if (tot < ihl || 14 + tot > len)
		return;
	uint8_t *l4 = ip + ihl;
	size_t l4len = tot - ihl;
	int off = ip[9] == 6 ? 16 : ip[9] == 17 ? 6 : ip[9] == 1 ? 2 : -1;
	if (off < 0 || l4len < (size_t)off + 2)
		return;
	l4[off] = l4[off + 1] = 0;
	uint32_t s = ip[9] == 1 ? 0 : csum_pseudo4(rd32(ip + 12), rd32(ip + 16), ip[9], (uint16_t)l4len);
	c = csum_fold(csum_partial(l4, l4len, s));
	memcpy(l4 + off, &c, 2);
}

/* A TCP segment from the guest with the given options (olen a multiple of
 * 4, at most 40); returns the frame length. */
static inline size_t nf_tcp_opts(uint8_t *f, const uint8_t *gw_mac, uint32_t dst, uint16_t sport,
				 uint16_t dport, uint32_t seq, uint32_t ack, uint8_t flags, uint16_t win,
				 const void *data, size_t dlen, const uint8_t *opts, size_t olen)
{
	memcpy(f, gw_mac, 6);
	memcpy(f + 6, nf_guest_mac, 6);
	wr16(f + 12, 0x0800);
	uint8_t *ip = f + 14;
	memset(ip, 0, 20);
	ip[0] = 0x45;
	ip[8] = 64;
	ip[9] = 6;
	wr32(ip + 12, 0x0A00020F);
	wr32(ip + 16, dst);
	uint8_t *t = ip + 20;
	size_t hlen = 20 + olen;
	memset(t, 0, 20);
	wr16(t, sport);
	wr16(t + 2, dport);
	wr32(t + 4, seq);
	wr32(t + 8, ack);
	t[12] = (uint8_t)((hlen / 4) << 4);
	t[13] = flags;
	wr16(t + 14, win);
	if (olen)
		memcpy(t + 20, opts, olen);
	if (dlen)
		memcpy(t + hlen, data, dlen);
	wr16(ip + 2, (uint16_t)(20 + hlen + dlen));
	size_t len = 14 + 20 + hlen + dlen;
	nf_fix_checksums(f, len);
	return len;
}

/* A TCP segment from the guest; returns the frame length. */
static inline size_t nf_tcp(uint8_t *f, const uint8_t *gw_mac, uint32_t dst, uint16_t sport,
			    uint16_t dport, uint32_t seq, uint32_t ack, uint8_t flags, uint16_t win,
			    const void *data, size_t dlen, bool syn_opts)
{
	memcpy(f, gw_mac, 6);
	memcpy(f + 6, nf_guest_mac, 6);
	wr16(f + 12, 0x0800);
	uint8_t *ip = f + 14;
	memset(ip, 0, 20);
	ip[0] = 0x45;
	ip[8] = 64;
	ip[9] = 6;
	wr32(ip + 12, 0x0A00020F);
	wr32(ip + 16, dst);
	uint8_t *t = ip + 20;
	size_t hlen = syn_opts ? 28 : 20;
	memset(t, 0, hlen);
	wr16(t, sport);
	wr16(t + 2, dport);
	wr32(t + 4, seq);
	wr32(t + 8, ack);
	t[12] = (uint8_t)((hlen / 4) << 4);
	t[13] = flags;
	wr16(t + 14, win);
	if (syn_opts) {
		uint8_t o[8] = { 2, 4, 0x05, 0xb4, 1, 3, 3, 7 };
		memcpy(t + 20, o, 8);
	}
	if (dlen)
		memcpy(t + hlen, data, dlen);
	wr16(ip + 2, (uint16_t)(20 + hlen + dlen));
	size_t len = 14 + 20 + hlen + dlen;
	nf_fix_checksums(f, len);
	return len;
}

#endif
