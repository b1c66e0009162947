/* net/csum.c - the Internet checksum (RFC 1071) and the IPv4 pseudo-header. */
#include "net/internal.h"

#include <errno.h>
#include <string.h>

uint32_t csum_partial(const void *buf, size_t len, uint32_t sum)
{
	const uint8_t *p = buf;
	uint64_t s = sum;
	while (len >= 8) {
		uint32_t a, b;
		memcpy(&a, p, 4);
		memcpy(&b, p + 4, 4);
		s += (uint64_t)a + b;
		p += 8;
		len -= 8;
	}
	while (len >= 2) {
		uint16_t a;
		memcpy(&a, p, 2);
		s += a;
		p += 2;
		len -= 2;
	}
	if (len) {
		uint16_t a = 0;
		memcpy(&a, p, 1);
		s += a;
	}
	/* The sum is accumulated in native (little-endian) order; fold to 16
	 * bits, then swap once to network order in csum_fold's caller view. */
	while (s >> 32)
		s = (s & 0xffffffff) + (s >> 32);
	return (uint32_t)s;
}

uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	/* Native-order one's complement sum of network-order words is the
	 * network-order sum byte-swapped on little-endian; storing the result
	 * with memcpy (not wr16) puts it back in network order. */
	return (uint16_t)~sum;
}

uint32_t csum_pseudo4(uint32_t src, uint32_t dst, uint8_t proto, uint16_t len)
{
	uint8_t ph[12];
	wr32(ph, src);
	wr32(ph + 4, dst);
	ph[8] = 0;
	ph[9] = proto;
	wr16(ph + 10, len);
	return csum_partial(ph, sizeof(ph), 0);
}

uint32_t csum_pseudo6(const uint8_t *src, const uint8_t *dst, uint8_t proto, uint32_t len)
{
	uint8_t ph[40];
	memcpy(ph, src, 16);
	memcpy(ph + 16, dst, 16);
	wr32(ph + 32, len);
	ph[36] = ph[37] = ph[38] = 0;
	ph[39] = proto;
	return csum_partial(ph, sizeof(ph), 0);
}

int net_finish_csum(uint8_t *f, size_t len, uint16_t start, uint16_t off)
{
	if ((size_t)start + off + 2 > len)
		return -EINVAL;
	uint16_t c = csum_fold(csum_partial(f + start, len - start, 0));
	memcpy(f + start + off, &c, 2);
	return 0;
}
