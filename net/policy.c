/* net/policy.c - classify destination addresses into groups and decide.
 *
 * The tables below are the whole policy: a destination is public unless one
 * of them matches.  Embedded IPv4 in IPv6 is judged twice (as the IPv6
 * address and as the IPv4 inside) and the stricter verdict wins, so no
 * address form reaches a denied IPv4 destination.
 */
#include "net/policy.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <ifaddrs.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/util.h"

struct v4_range {
	uint32_t net;
	unsigned plen;
	enum policy_group group;
};

/* Order matters: the first match wins (metadata before link-local/private). */
static const struct v4_range v4_table[] = {
	{ 0xA9FEA9FE, 32, PG_METADATA },	/* 169.254.169.254 AWS/GCP/Azure IMDS */
	{ 0xA9FEAA02, 32, PG_METADATA },	/* 169.254.170.2 ECS task metadata */
	{ 0x646464C8, 32, PG_METADATA },	/* 100.100.100.200 Alibaba */
	{ 0xA83F8110, 32, PG_METADATA },	/* 168.63.129.16 Azure wireserver */
	{ 0xC00000C0, 32, PG_METADATA },	/* 192.0.0.192 Oracle */
	{ 0x00000000, 8, PG_UNSPECIFIED },	/* 0.0.0.0/8 */
	{ 0x7F000000, 8, PG_LOOPBACK },		/* 127/8 */
	{ 0x0A000000, 8, PG_PRIVATE },		/* 10/8 */
	{ 0xAC100000, 12, PG_PRIVATE },		/* 172.16/12 */
	{ 0xC0A80000, 16, PG_PRIVATE },		/* 192.168/16 */
	{ 0x64400000, 10, PG_PRIVATE },		/* 100.64/10 CGNAT */
	{ 0xC6120000, 15, PG_PRIVATE },		/* 198.18/15 benchmarking */
	{ 0xA9FE0000, 16, PG_LINKLOCAL },	/* 169.254/16 */
	{ 0xFFFFFFFF, 32, PG_BROADCAST },	/* limited broadcast */
	{ 0xE0000000, 4, PG_MULTICAST },	/* 224/4 */
	{ 0xF0000000, 4, PG_RESERVED },		/* 240/4 */
	{ 0xC0000000, 24, PG_RESERVED },	/* 192.0.0/24 IETF */
	{ 0xC0000200, 24, PG_RESERVED },	/* 192.0.2/24 TEST-NET-1 */
	{ 0xC6336400, 24, PG_RESERVED },	/* 198.51.100/24 TEST-NET-2 */
	{ 0xCB007100, 24, PG_RESERVED },	/* 203.0.113/24 TEST-NET-3 */
	{ 0xC0586300, 24, PG_RESERVED },	/* 192.88.99/24 6to4 relay anycast */
};

struct v6_range {
	uint8_t net[16];
	unsigned plen;
	enum policy_group group;
};

static const struct v6_range v6_table[] = {
	{ { 0xfd, 0x00, 0x0e, 0xc2, [15] = 0x54, [14] = 0x02 }, 128, PG_METADATA },	/* fd00:ec2::254 */
	{ { 0 }, 128, PG_UNSPECIFIED },						/* :: */
	{ { [15] = 1 }, 128, PG_LOOPBACK },					/* ::1 */
	{ { 0x00, 0x64, 0xff, 0x9b, 0x00, 0x01 }, 48, PG_PRIVATE },		/* 64:ff9b:1::/48 local NAT64 */
	{ { 0xfc }, 7, PG_PRIVATE },						/* ULA */
	{ { 0xfe, 0xc0 }, 10, PG_PRIVATE },					/* site-local (deprecated) */
	{ { 0xfe, 0x80 }, 10, PG_LINKLOCAL },
	{ { 0xff }, 8, PG_MULTICAST },
	{ { 0x20, 0x01, 0x0d, 0xb8 }, 32, PG_RESERVED },			/* documentation */
	{ { 0x01, 0x00 }, 64, PG_RESERVED },					/* discard */
	{ { 0x20, 0x01, 0x00, 0x00 }, 32, PG_RESERVED },			/* Teredo */
	{ { 0x20, 0x01, 0x00, 0x02, 0x00, 0x00 }, 48, PG_RESERVED },		/* benchmarking */
};

static const char *const group_names[PG_COUNT] = {
	[PG_PUBLIC] = "public",
	[PG_UNSPECIFIED] = "unspecified address (0.0.0.0/8, ::)",
	[PG_LOOPBACK] = "loopback",
	[PG_PRIVATE] = "private network (RFC 1918, CGNAT, ULA)",
	[PG_LINKLOCAL] = "link-local",
	[PG_METADATA] = "cloud metadata service",
	[PG_HOST] = "the host itself",
	[PG_MULTICAST] = "multicast",
	[PG_BROADCAST] = "broadcast",
	[PG_RESERVED] = "reserved or documentation range",
	[PG_UNLISTED] = "public address no permitted name resolved to",
};

static const char *const group_remedies[PG_COUNT] = {
	[PG_PUBLIC] = "",
	[PG_UNSPECIFIED] = "nothing opens it",
	[PG_LOOPBACK] = "nothing opens it",
	[PG_PRIVATE] = "--allow-lan, or --allow-egress with the address",
	[PG_LINKLOCAL] = "--allow-egress with the address",
	[PG_METADATA] = "--allow-egress with this very address",
	[PG_HOST] = "--allow-host (the gateway address)",
	[PG_MULTICAST] = "nothing opens it",
	[PG_BROADCAST] = "nothing opens it",
	[PG_RESERVED] = "--allow-egress with the address",
	[PG_UNLISTED] = "--allow-domain NAME, or --egress-profile permissive",
};

const char *policy_group_name(enum policy_group g)
{
	return g < PG_COUNT ? group_names[g] : "?";
}

const char *policy_group_remedy(enum policy_group g)
{
	return g < PG_COUNT ? group_remedies[g] : "?";
}

void policy_addr_from_v4(uint8_t out[16], uint32_t ip)
{
	memset(out, 0, 10);
	out[10] = out[11] = 0xff;
	out[12] = ip >> 24;
	out[13] = ip >> 16;
	out[14] = ip >> 8;
	out[15] = ip;
}

static uint32_t load_v4(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static bool prefix_match(const uint8_t *a, const uint8_t *net, unsigned plen)
{
	unsigned full = plen / 8, rem = plen % 8;
	if (memcmp(a, net, full) != 0)
		return false;
	if (rem == 0)
		return true;
	uint8_t mask = (uint8_t)(0xff << (8 - rem));
	return (a[full] & mask) == (net[full] & mask);
}

bool policy_addr_to_v4(const uint8_t addr[16], uint32_t *ip)
{
	static const uint8_t mapped[12] = { [10] = 0xff, [11] = 0xff };
	if (memcmp(addr, mapped, 12) != 0)
		return false;
	*ip = load_v4(addr + 12);
	return true;
}

/* Every IPv4 address an IPv6 form may carry (mapped is handled by the
 * caller): into out, how many.  Fail closed: a form is judged by each IPv4
 * address it could stand for, so an address that happens to look like one
 * layout is held to it too.
 *   ::a.b.c.d             IPv4-compatible (RFC 4291, deprecated)
 *   ::ffff:0:a.b.c.d      IPv4-translated, SIIT (RFC 2765)
 *   64:ff9b::a.b.c.d      NAT64 well-known prefix (RFC 6052, /96)
 *   64:ff9b:1::/48        NAT64 local-use (RFC 8215), every RFC 6052 layout
 *                         a prefix of /48 or longer can use: /48 /56 /64 /96
 *   2002:AABB:CCDD::/48   6to4 (RFC 3056)
 *   2001:0::/32           Teredo: server (bytes 4-7) and client (~bytes 12-15)
 *   ...:0:5efe:a.b.c.d    ISATAP interface identifiers (RFC 5214), any prefix */
static unsigned embedded_v4s(const uint8_t a[16], uint32_t out[8])
{
	static const uint8_t zero[12] = { 0 };
	static const uint8_t siit[12] = { [8] = 0xff, [9] = 0xff };
	static const uint8_t nat64[12] = { 0x00, 0x64, 0xff, 0x9b };
	static const uint8_t local[6] = { 0x00, 0x64, 0xff, 0x9b, 0x00, 0x01 };
	unsigned n = 0;
	if (!memcmp(a, zero, 12) && load_v4(a + 12) > 1)
		out[n++] = load_v4(a + 12);
	if (!memcmp(a, siit, 12) || !memcmp(a, nat64, 12))
		out[n++] = load_v4(a + 12);
	if (!memcmp(a, local, 6)) {
		out[n++] = (uint32_t)a[6] << 24 | (uint32_t)a[7] << 16 | (uint32_t)a[9] << 8 | a[10];	/* /48 */
		out[n++] = (uint32_t)a[7] << 24 | (uint32_t)a[9] << 16 | (uint32_t)a[10] << 8 | a[11];	/* /56 */
		out[n++] = load_v4(a + 9);	/* /64 */
		out[n++] = load_v4(a + 12);	/* /96 */
	}
	if (a[0] == 0x20 && a[1] == 0x02)
		out[n++] = load_v4(a + 2);
	if (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0 && a[3] == 0) {
		out[n++] = load_v4(a + 4);
		out[n++] = ~load_v4(a + 12);
	}
	if ((a[8] | 0x02) == 0x02 && a[9] == 0 && a[10] == 0x5e && a[11] == 0xfe)
		out[n++] = load_v4(a + 12);
	return n;
}

static bool is_host_addr(const struct policy *p, const uint8_t a[16])
{
	for (unsigned i = 0; i < p->nhost; i++)
		if (memcmp(p->host_addrs[i], a, 16) == 0)
			return true;
	for (unsigned i = 0; i < p->nlive; i++)
		if (memcmp(p->live_addrs[i], a, 16) == 0)
			return true;
	return false;
}

/* Loopback and unspecified first (the host's own 127.0.0.1 stays loopback,
 * never opened), then the host group (the gateway and every address of the
 * host, whatever range it is in: a host address in 10/8 or 192.0.2/24 is
 * the host, not the LAN), then the table. */
static enum policy_group classify_v4(const struct policy *p, uint32_t ip)
{
	if ((ip >> 24) == 0)
		return PG_UNSPECIFIED;
	if ((ip >> 24) == 127)
		return PG_LOOPBACK;
	uint8_t a[16];
	policy_addr_from_v4(a, ip);
	if ((p->gateway_ip && ip == p->gateway_ip) || is_host_addr(p, a))
		return PG_HOST;
	if (p->guest_mask && ip == (p->guest_net | ~p->guest_mask))
		return PG_BROADCAST;
	for (size_t i = 0; i < ARRAY_SIZE(v4_table); i++) {
		uint32_t mask = v4_table[i].plen ? ~0u << (32 - v4_table[i].plen) : 0;
		if ((ip & mask) == v4_table[i].net)
			return v4_table[i].group;
	}
	return PG_PUBLIC;
}

/* The IPv6 address's own group (its prefix, or the host's addresses). */
static enum policy_group classify_v6_only(const struct policy *p, const uint8_t addr[16])
{
	static const uint8_t loop6[16] = { [15] = 1 }, any6[16] = { 0 };
	if (!memcmp(addr, loop6, 16))
		return PG_LOOPBACK;
	if (!memcmp(addr, any6, 16))
		return PG_UNSPECIFIED;
	if (is_host_addr(p, addr))
		return PG_HOST;
	for (size_t i = 0; i < ARRAY_SIZE(v6_table); i++)
		if (prefix_match(addr, v6_table[i].net, v6_table[i].plen))
			return v6_table[i].group;
	return PG_PUBLIC;
}

/* Groups ordered by how bad reaching them is, for "the stricter wins". */
static int severity(enum policy_group g)
{
	return g == PG_PUBLIC ? 0 : (int)g + 1;
}

static void sync_host_addrs(struct policy *p);

enum policy_group policy_classify(struct policy *p, const uint8_t addr[16])
{
	sync_host_addrs(p);
	uint32_t ip;
	if (policy_addr_to_v4(addr, &ip))
		return classify_v4(p, ip);
	enum policy_group g6 = classify_v6_only(p, addr);	/* host addresses first */
	uint32_t v4[8];
	unsigned n = embedded_v4s(addr, v4);
	for (unsigned i = 0; i < n; i++) {
		enum policy_group g4 = classify_v4(p, v4[i]);
		if (severity(g4) > severity(g6))
			g6 = g4;
	}
	return g6;
}

static bool in_allow_list(const struct policy *p, const uint8_t addr[16])
{
	for (unsigned i = 0; i < p->nallow; i++)
		if (prefix_match(addr, p->allow[i].addr, p->allow[i].plen))
			return true;
	return false;
}

static bool learned(const struct policy *p, const uint8_t addr[16])
{
	uint64_t now = now_ns();
	for (unsigned i = 0; i < POLICY_MAX_LEARNED; i++)
		if (p->learned[i].expires_ns > now && memcmp(p->learned[i].addr, addr, 16) == 0)
			return true;
	return false;
}

/* Whether the allow settings open group g for addr.  The order is the same
 * for every address family: the host group (the host's own addresses and
 * the gateway, which maps to the host's loopback) opens only with
 * --allow-host, never through an --allow-egress CIDR; a public address
 * opens under the permissive profile, or when a permitted name resolved to
 * it (standard, locked) or a CIDR covers it; loopback, unspecified, multicast and broadcast never open; every
 * other group opens by its flag or an --allow-egress CIDR that covers addr. */
static bool group_open(const struct policy *p, enum policy_group g, const uint8_t addr[16])
{
	switch (g) {
	case PG_HOST:
		return p->allow_host;
	case PG_LOOPBACK:
	case PG_UNSPECIFIED:
	case PG_MULTICAST:
	case PG_BROADCAST:
		return false;
	case PG_PUBLIC:
		return p->profile == PP_PERMISSIVE || learned(p, addr) || in_allow_list(p, addr);
	case PG_PRIVATE:
		return p->allow_lan || in_allow_list(p, addr);
	case PG_METADATA:	/* only a CIDR naming this very address: never a wide one */
		for (unsigned i = 0; i < p->nallow; i++)
			if (p->allow[i].plen == 128 && !memcmp(p->allow[i].addr, addr, 16))
				return true;
		return false;
	default:	/* link-local, reserved */
		return in_allow_list(p, addr);
	}
}

/* PG_PUBLIC when g is open for addr, else the group to report
 * (PG_UNLISTED for a public address no permitted name gave). */
static enum policy_group closed_group(const struct policy *p, enum policy_group g, const uint8_t addr[16])
{
	return group_open(p, g, addr) ? PG_PUBLIC : g == PG_PUBLIC ? PG_UNLISTED : g;
}

#if defined(KVMBOX_FAULT_INJECTION)
/* Sanitizer builds only: KVMBOX_FAULT_EGRESS=open breaks the policy on
 * purpose (every address allowed), so that the tests can show the launch
 * self-test stopping a launch whose promise does not hold. */
static bool fault_egress_open(void)
{
	const char *f = getenv("KVMBOX_FAULT_EGRESS");
	return f && !strcmp(f, "open");
}
#else
static bool fault_egress_open(void)
{
	return false;
}
#endif

bool policy_allows(struct policy *p, const uint8_t addr[16], enum policy_group *why)
{
	if (fault_egress_open()) {
		if (why)
			*why = PG_PUBLIC;
		return true;
	}
	sync_host_addrs(p);
	enum policy_group deny;
	uint32_t ip;
	if (policy_addr_to_v4(addr, &ip)) {
		deny = closed_group(p, classify_v4(p, ip), addr);
	} else {
		/* the IPv6 address, and every IPv4 address it embeds, must each be open */
		deny = closed_group(p, classify_v6_only(p, addr), addr);
		uint32_t v4[8];
		unsigned n = embedded_v4s(addr, v4);
		for (unsigned i = 0; i < n && deny == PG_PUBLIC; i++) {
			uint8_t m[16];
			policy_addr_from_v4(m, v4[i]);
			deny = closed_group(p, classify_v4(p, v4[i]), m);
		}
	}
	if (why)
		*why = deny;
	return deny == PG_PUBLIC;
}

void policy_learn(struct policy *p, const uint8_t addr[16], uint32_t ttl_s, uint64_t now)
{
	if (ttl_s < 60)
		ttl_s = 60;	/* connections often follow the lookup late */
	if (ttl_s > 3600)
		ttl_s = 3600;
	for (unsigned i = 0; i < POLICY_MAX_LEARNED; i++) {
		if (memcmp(p->learned[i].addr, addr, 16) == 0) {
			p->learned[i].expires_ns = now + ttl_s * 1000000000ull;
			return;
		}
	}
	struct policy_learned *l = &p->learned[p->learned_next++ % POLICY_MAX_LEARNED];
	memcpy(l->addr, addr, 16);
	l->expires_ns = now + ttl_s * 1000000000ull;
}

int policy_parse_addr(const char *s, uint8_t out[16])
{
	struct in_addr a4;
	if (inet_pton(AF_INET, s, &a4) == 1) {
		policy_addr_from_v4(out, ntohl(a4.s_addr));
		return 0;
	}
	if (inet_pton(AF_INET6, s, out) == 1)
		return 0;
	return -EINVAL;
}

int policy_allow_cidr(struct policy *p, const char *text)
{
	if (p->nallow >= POLICY_MAX_CIDRS)
		return -ENOSPC;
	char buf[64];
	if (strlen(text) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, text);
	char *slash = strchr(buf, '/');
	long plen = -1;
	if (slash) {
		*slash = 0;
		char *end;
		if (!slash[1])
			return -EINVAL;
		plen = strtol(slash + 1, &end, 10);
		if (*end || plen < 0)
			return -EINVAL;
	}
	struct policy_cidr *c = &p->allow[p->nallow];
	if (policy_parse_addr(buf, c->addr) < 0)
		return -EINVAL;
	bool v4 = strchr(buf, ':') == NULL;
	long max = v4 ? 32 : 128;
	if (plen < 0)
		plen = max;
	if (plen > max)
		return -EINVAL;
	c->plen = (unsigned)(v4 ? 96 + plen : plen);
	p->nallow++;
	return 0;
}

int policy_add_host_addr(struct policy *p, const uint8_t addr[16])
{
	if (is_host_addr(p, addr))
		return 0;
	if (p->nhost >= POLICY_MAX_HOSTADDRS)
		return -ENOSPC;
	memcpy(p->host_addrs[p->nhost++], addr, 16);
	return 0;
}

/* Re-read the interface addresses into the live list: 0 or -errno. */
static int read_local_addrs(struct policy *p)
{
	struct ifaddrs *ifa;
	if (getifaddrs(&ifa) < 0)
		return -errno;
	p->nlive = 0;
	for (struct ifaddrs *i = ifa; i; i = i->ifa_next) {
		uint8_t a[16];
		if (!i->ifa_addr)
			continue;
		if (i->ifa_addr->sa_family == AF_INET)
			policy_addr_from_v4(a, ntohl(((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr));
		else if (i->ifa_addr->sa_family == AF_INET6)
			memcpy(a, &((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr, 16);
		else
			continue;
		if (p->nlive == p->live_cap) {
			unsigned cap = p->live_cap ? 2 * p->live_cap : 64;
			void *n = realloc(p->live_addrs, cap * sizeof(*p->live_addrs));
			if (!n) {
				freeifaddrs(ifa);
				return -ENOMEM;
			}
			p->live_addrs = n;
			p->live_cap = cap;
		}
		memcpy(p->live_addrs[p->nlive++], a, 16);
	}
	freeifaddrs(ifa);
	return 0;
}

/* Drain the watch; re-read when anything changed (or the socket overflowed,
 * or a re-read failed before: the list is then stale). */
static void sync_host_addrs(struct policy *p)
{
	if (p->nl_fd < 0)
		return;
	char buf[8192];
	bool changed = p->live_stale;
	for (;;) {
		ssize_t n = recv(p->nl_fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n > 0 || (n < 0 && errno == ENOBUFS)) {
			changed = true;
			continue;
		}
		break;
	}
	if (changed)
		p->live_stale = read_local_addrs(p) < 0;
}

int policy_watch_host_addrs(struct policy *p)
{
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0)
		return -errno;
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK,
				  .nl_groups = RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR };
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	p->nl_fd = fd;	/* subscribed first, read second: no change falls between */
	int r = read_local_addrs(p);
	p->live_stale = r < 0;
	return r;
}

void policy_fini(struct policy *p)
{
	if (p->nl_fd >= 0)
		close(p->nl_fd);
	p->nl_fd = -1;
	free(p->live_addrs);
	p->live_addrs = NULL;
	p->nlive = p->live_cap = 0;
}

void policy_init(struct policy *p)
{
	memset(p, 0, sizeof(*p));
	p->profile = PP_PERMISSIVE;
	p->nl_fd = -1;
}
