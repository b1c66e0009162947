/* net/policy.h - the egress policy: which destinations a guest may reach,
 * by address (policy.c) and by name (names.c), for the stack and the TLS
 * proxy alike.
 *
 * The default `permissive` profile is public-only: the public internet and
 * DNS through the stack's forwarder, nothing else; `standard` and `locked`
 * narrow it further to the addresses that permitted names resolve to
 * (names.c).  Every non-public address
 * belongs to exactly one group, each denied by default and reported with its
 * own reason.  Embedded IPv4 (IPv4-mapped ::ffff:0:0/96, IPv4-compatible
 * ::/96, SIIT ::ffff:0:0/96, NAT64 64:ff9b::/96 and 64:ff9b:1::/48 in every
 * RFC 6052 layout, 6to4 2002::/16, Teredo, ISATAP) is extracted and the
 * address is allowed only when the IPv6 address and every IPv4 address it
 * may stand for are each allowed.  Addresses are always
 * passed as 16-byte IPv6 (IPv4 as ::ffff:a.b.c.d).
 */
#ifndef KVMBOX_NET_POLICY_H
#define KVMBOX_NET_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum policy_group {
	PG_PUBLIC = 0,
	PG_UNSPECIFIED,	/* 0.0.0.0/8, :: */
	PG_LOOPBACK,	/* 127/8, ::1 */
	PG_PRIVATE,	/* RFC 1918, 100.64/10, 198.18/15, fc00::/7, fec0::/10, 64:ff9b:1::/48 */
	PG_LINKLOCAL,	/* 169.254/16, fe80::/10 */
	PG_METADATA,	/* 169.254.169.254, 169.254.170.2, 100.100.100.200, 168.63.129.16, 192.0.0.192, fd00:ec2::254 */
	PG_HOST,	/* the host's own addresses and the gateway address */
	PG_MULTICAST,	/* 224/4, ff00::/8 */
	PG_BROADCAST,	/* 255.255.255.255, the guest subnet's broadcast */
	PG_RESERVED,	/* documentation, 192.0.0/24, 240/4, 2001:db8::/32, 100::/64, Teredo */
	PG_UNLISTED,	/* public, but no name the profile permits resolved to it */
	PG_COUNT
};

enum policy_profile {
	PP_PERMISSIVE = 0,	/* every public address and name */
	PP_STANDARD,		/* the agent's provider, development infrastructure, --allow-domain */
	PP_LOCKED,		/* the agent's provider and --allow-domain only */
};

/* Whose provider the standard and locked profiles let through. */
enum policy_agent {
	POLICY_AGENT_NONE,	/* a plain shell: no provider */
	POLICY_AGENT_CLAUDE,
	POLICY_AGENT_CODEX,
	POLICY_AGENT_ALL,	/* every known provider (opencode) */
};

#define POLICY_MAX_CIDRS 64
#define POLICY_MAX_DOMAINS 64
#define POLICY_MAX_HOSTADDRS 64
#define POLICY_MAX_LEARNED 1024

struct policy_cidr {
	uint8_t addr[16];
	unsigned plen;	/* in IPv6 bits (IPv4 /n is stored as 96+n) */
};

/* Addresses learned from DNS answers for permitted names (standard, locked). */
struct policy_learned {
	uint8_t addr[16];
	uint64_t expires_ns;
};

struct policy {
	enum policy_profile profile;
	enum policy_agent agent;
	bool allow_lan;		/* PG_PRIVATE */
	bool allow_host;	/* the gateway address reaches the host's loopback */
	struct policy_cidr allow[POLICY_MAX_CIDRS];
	unsigned nallow;
	char domains[POLICY_MAX_DOMAINS][256];	/* lower case; "*." first: below it only */
	unsigned ndomains;
	uint8_t host_addrs[POLICY_MAX_HOSTADDRS][16];	/* fixed: policy_add_host_addr */
	unsigned nhost;
	/* The host's interface addresses, live: every decision first drains a
	 * netlink socket subscribed to address changes and re-reads them when
	 * anything changed, so an address that appears while the sandbox runs
	 * (DHCP, a VPN, an IPv6 temporary address) is the host's at once.  The
	 * kernel queues the notification before the address is usable, so no
	 * flow can beat it. */
	uint8_t (*live_addrs)[16];
	unsigned nlive, live_cap;
	int nl_fd;		/* -1 when not watching */
	bool live_stale;	/* the last re-read failed: retry on the next decision */
	uint32_t gateway_ip, guest_net, guest_mask;	/* IPv4 host order; set by the stack */
	struct policy_learned learned[POLICY_MAX_LEARNED];
	unsigned learned_next;
};

void policy_init(struct policy *p);
/* Parse one flag value: 0 or -EINVAL (-ENOSPC when full).
 * policy_allow_domain: NAME (it and its subdomains) or *.NAME (below only). */
int policy_allow_cidr(struct policy *p, const char *text);
int policy_set_profile(struct policy *p, const char *name);
int policy_allow_domain(struct policy *p, const char *name);
const char *policy_profile_name(enum policy_profile pp);
/* Whose provider's hosts standard and locked let through (default none). */
void policy_set_agent(struct policy *p, enum policy_agent agent);
/* "none", "claude", "codex", "all" to the enum: 0 or -EINVAL; and back. */
int policy_agent_parse(const char *name, enum policy_agent *out);
const char *policy_agent_name(enum policy_agent a);
int policy_add_host_addr(struct policy *p, const uint8_t addr[16]);
/* Watch the host's interface addresses (netlink, then getifaddrs): 0 or
 * -errno.  Without a watch, the host group holds only the fixed addresses
 * and the gateway. */
int policy_watch_host_addrs(struct policy *p);
/* Close the watch and free the live list. */
void policy_fini(struct policy *p);

/* The group of addr, ignoring the allow settings. */
enum policy_group policy_classify(struct policy *p, const uint8_t addr[16]);
/* true if the guest may reach addr; *why gets the group that refused it
 * (PG_PUBLIC when allowed).  The host's addresses are re-read first when
 * they changed (policy_watch_host_addrs). */
bool policy_allows(struct policy *p, const uint8_t addr[16], enum policy_group *why);
/* Whether the profile permits the host name (NUL-terminated; a trailing dot
 * and case ignored; anything not made of DNS name characters refused). */
bool policy_allows_name(const struct policy *p, const char *name);
/* Remember an address a permitted name resolved to (standard, locked). */
void policy_learn(struct policy *p, const uint8_t addr[16], uint32_t ttl_s, uint64_t now);

const char *policy_group_name(enum policy_group g);
/* What would let a refused group through, for the user: a flag, or a
 * sentence saying nothing does. */
const char *policy_group_remedy(enum policy_group g);

/* One pattern against one host name (len bytes): "name" exactly, "*.name"
 * any name below it; case and one trailing dot ignored. */
bool host_match(const char *pattern, const char *host, size_t len);
/* Whether s[0..len) is made only of host name or IP literal characters
 * (letters, digits, - . _ :), 1 to 253 of them. */
bool host_valid(const char *s, size_t len);

/* IPv4 (host order) as ::ffff:a.b.c.d, and back (false if not mapped). */
void policy_addr_from_v4(uint8_t out[16], uint32_t ip);
bool policy_addr_to_v4(const uint8_t addr[16], uint32_t *ip);
/* Parse an IPv4 or IPv6 literal: 0 or -EINVAL. */
int policy_parse_addr(const char *s, uint8_t out[16]);

#endif
