/* net/hdr.h - the fields of the headers the stack reads and writes, by name.
 *
 * Every header is used in place in a frame buffer (no structs overlaid on
 * guest bytes: no alignment or padding assumptions); a field is read or
 * written big-endian at the offset its RFC gives.  Lengths are checked by
 * the callers before a header is touched (each input path says how).
 *
 *   Ethernet (IEEE 802.3)   eth_*   dst 0, src 6, type 12
 *   IPv4 (RFC 791)          ip4_*   version/IHL 0, total length 2, id 4,
 *                                   flags/fragment offset 6, TTL 8,
 *                                   protocol 9, checksum 10, src 12, dst 16
 *   IPv6 (RFC 8200)         ip6_*   version 0, payload length 4, next
 *                                   header 6, hop limit 7, src 8, dst 24
 *   TCP (RFC 9293)          tcph_*   ports 0/2, seq 4, ack 8, data offset 12,
 *                                   flags 13, window 14, checksum 16
 *   UDP (RFC 768)           udp_*   ports 0/2, length 4, checksum 6
 *   ICMP (RFC 792/4443)     icmp_*  type 0, code 1, checksum 2, echo id 4
 */
#ifndef KVMBOX_NET_HDR_H
#define KVMBOX_NET_HDR_H

#include <stddef.h>
#include <stdint.h>

static inline uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline void wr16(uint8_t *p, uint16_t v) { p[0] = v >> 8; p[1] = (uint8_t)v; }
static inline void wr32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24; p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

/* ---- TCP ---- */
#define TCP_F_FIN 0x01
#define TCP_F_SYN 0x02
#define TCP_F_RST 0x04
#define TCP_F_PSH 0x08
#define TCP_F_ACK 0x10
#define TCPOPT_EOL 0
#define TCPOPT_NOP 1
#define TCPOPT_MSS 2		/* length 4 */
#define TCPOPT_WSCALE 3		/* length 3 */
#define TCPOPT_SACK_PERM 4	/* length 2 */
#define TCPOPT_SACK 5		/* length 2 + 8 per block */
#define TCP_CSUM_OFF 16

static inline uint16_t tcph_sport(const uint8_t *t) { return rd16(t); }
static inline uint16_t tcph_dport(const uint8_t *t) { return rd16(t + 2); }
static inline uint32_t tcph_seq(const uint8_t *t) { return rd32(t + 4); }
static inline uint32_t tcph_ack(const uint8_t *t) { return rd32(t + 8); }
static inline size_t tcph_hlen(const uint8_t *t) { return (size_t)(t[12] >> 4) * 4; }
static inline uint8_t tcph_flags(const uint8_t *t) { return t[13]; }
static inline uint16_t tcph_win(const uint8_t *t) { return rd16(t + 14); }

static inline void tcph_set_ports(uint8_t *t, uint16_t sport, uint16_t dport)
{
	wr16(t, sport);
	wr16(t + 2, dport);
}
static inline void tcph_set_seq(uint8_t *t, uint32_t v) { wr32(t + 4, v); }
static inline void tcph_set_ack(uint8_t *t, uint32_t v) { wr32(t + 8, v); }
/* hlen: bytes, a multiple of 4 from 20 to 60. */
static inline void tcph_set_hlen(uint8_t *t, size_t hlen) { t[12] = (uint8_t)(hlen / 4) << 4; }
static inline void tcph_set_flags(uint8_t *t, uint8_t f) { t[13] = f; }
static inline void tcph_set_win(uint8_t *t, uint16_t v) { wr16(t + 14, v); }

/* ---- UDP ---- */
static inline uint16_t udp_sport(const uint8_t *u) { return rd16(u); }
static inline uint16_t udp_dport(const uint8_t *u) { return rd16(u + 2); }
static inline uint16_t udp_len(const uint8_t *u) { return rd16(u + 4); }
static inline uint16_t udp_csum(const uint8_t *u) { return rd16(u + 6); }

/* ---- IPv4 ---- */
static inline unsigned ip4_version(const uint8_t *ip) { return ip[0] >> 4; }
static inline size_t ip4_ihl(const uint8_t *ip) { return (size_t)(ip[0] & 0xf) * 4; }
static inline uint16_t ip4_tot_len(const uint8_t *ip) { return rd16(ip + 2); }
static inline uint16_t ip4_id(const uint8_t *ip) { return rd16(ip + 4); }
/* Flags (DF 0x4000, MF 0x2000) and the fragment offset in 8-byte units. */
static inline uint16_t ip4_frag(const uint8_t *ip) { return rd16(ip + 6); }
static inline uint8_t ip4_proto(const uint8_t *ip) { return ip[9]; }
static inline uint32_t ip4_src(const uint8_t *ip) { return rd32(ip + 12); }
static inline uint32_t ip4_dst(const uint8_t *ip) { return rd32(ip + 16); }
#define IP4_DF 0x4000
#define IP4_MF 0x2000
#define IP4_FRAG_OFF_MASK 0x1fff

/* ---- IPv6 ---- */
static inline unsigned ip6_version(const uint8_t *ip) { return ip[0] >> 4; }
static inline uint16_t ip6_plen(const uint8_t *ip) { return rd16(ip + 4); }
static inline uint8_t ip6_nh(const uint8_t *ip) { return ip[6]; }
static inline uint8_t ip6_hlim(const uint8_t *ip) { return ip[7]; }
static inline const uint8_t *ip6_src(const uint8_t *ip) { return ip + 8; }
static inline const uint8_t *ip6_dst(const uint8_t *ip) { return ip + 24; }

/* ---- ICMP / ICMPv6 ---- */
static inline uint8_t icmp_type(const uint8_t *ic) { return ic[0]; }
static inline uint8_t icmp_code(const uint8_t *ic) { return ic[1]; }
static inline uint16_t icmp_echo_id(const uint8_t *ic) { return rd16(ic + 4); }

/* ---- Ethernet ---- */
static inline uint16_t eth_type(const uint8_t *f) { return rd16(f + 12); }
static inline const uint8_t *eth_src(const uint8_t *f) { return f + 6; }

#endif
