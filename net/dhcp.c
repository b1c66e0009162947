/* net/dhcp.c - a DHCPv4 server for the one guest (RFC 2131, minimal).
 *
 * DISCOVER gets an OFFER and REQUEST an ACK for the one configured address,
 * with netmask, router and DNS server (both the gateway), lease time and
 * the interface MTU.  A REQUEST for another address gets a NAK.
 */
#include "net/internal.h"

#include <string.h>

#define DHCP_FIXED 236
#define DHCP_MAGIC 0x63825363

/* The value of option code in opts, or NULL; *olen its length. */
static const uint8_t *dhcp_opt(const uint8_t *opts, size_t len, uint8_t code, size_t *olen)
{
	size_t i = 0;
	while (i < len) {
		uint8_t c = opts[i];
		if (c == 0) {
			i++;
			continue;
		}
		if (c == 255 || i + 1 >= len)
			break;
		size_t l = opts[i + 1];
		if (i + 2 + l > len)
			break;
		if (c == code) {
			*olen = l;
			return opts + i + 2;
		}
		i += 2 + l;
	}
	return NULL;
}

static uint8_t *put_opt(uint8_t *p, uint8_t code, uint8_t len, const void *val)
{
	p[0] = code;
	p[1] = len;
	memcpy(p + 2, val, len);
	return p + 2 + len;
}

static uint8_t *put_opt32(uint8_t *p, uint8_t code, uint32_t v)
{
	uint8_t b[4];
	wr32(b, v);
	return put_opt(p, code, 4, b);
}

void dhcp_input(struct net_stack *ns, const uint8_t *m, size_t len)
{
	if (len < DHCP_FIXED + 4 || m[0] != 1 || m[1] != 1 || m[2] != 6 || rd32(m + DHCP_FIXED) != DHCP_MAGIC) {
		ns->stats.drop_udp++;
		return;
	}
	size_t olen;
	const uint8_t *opts = m + DHCP_FIXED + 4;
	size_t optslen = len - DHCP_FIXED - 4;
	const uint8_t *t = dhcp_opt(opts, optslen, 53, &olen);
	if (!t || olen != 1) {
		ns->stats.drop_udp++;
		return;
	}
	uint8_t reply;
	if (t[0] == 1) {
		reply = 2;	/* OFFER */
	} else if (t[0] == 3) {
		const uint8_t *req = dhcp_opt(opts, optslen, 50, &olen);
		uint32_t want = req && olen == 4 ? rd32(req) : rd32(m + 12);
		reply = want == ns->cfg.guest_ip ? 5 : 6;	/* ACK or NAK */
	} else {
		return;		/* RELEASE, DECLINE, INFORM: nothing to do */
	}
	uint8_t r[DHCP_FIXED + 4 + 64];
	memset(r, 0, sizeof(r));
	r[0] = 2;
	r[1] = 1;
	r[2] = 6;
	memcpy(r + 4, m + 4, 4);	/* xid */
	memcpy(r + 10, m + 10, 2);	/* flags */
	if (reply != 6)
		wr32(r + 16, ns->cfg.guest_ip);	/* yiaddr */
	wr32(r + 20, ns->cfg.gateway_ip);	/* siaddr */
	memcpy(r + 28, m + 28, 16);	/* chaddr */
	wr32(r + DHCP_FIXED, DHCP_MAGIC);
	uint8_t *p = r + DHCP_FIXED + 4;
	p = put_opt(p, 53, 1, &reply);
	p = put_opt32(p, 54, ns->cfg.gateway_ip);
	if (reply != 6) {
		p = put_opt32(p, 51, 86400);
		p = put_opt32(p, 1, ns->cfg.netmask);
		p = put_opt32(p, 3, ns->cfg.gateway_ip);
		p = put_opt32(p, 6, ns->cfg.gateway_ip);
		uint8_t mtu[2];
		wr16(mtu, (uint16_t)ns->cfg.mtu);
		p = put_opt(p, 26, 2, mtu);
	}
	*p++ = 255;
	memcpy(ns->guest_mac, m + 28, 6);
	ns->guest_mac_known = true;
	/* Sent to the broadcast address: the guest has no address yet. */
	uint32_t save = ns->cfg.guest_ip;
	ns->cfg.guest_ip = 0xffffffff;
	udp_send_to_guest(ns, ns->cfg.gateway_ip, 67, 68, r, (size_t)(p - r));
	ns->cfg.guest_ip = save;
}
