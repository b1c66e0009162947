/* net/egress.c - what the egress policy decides for a guest's packet and
 * what a refusal leaves behind.
 *
 * The judgement itself is net/policy.c's (policy_allows, the host's own
 * addresses read live); here: the host address a guest destination maps to
 * (the gateway is the host's loopback), the refusal sent back to the guest
 * (ICMP administratively prohibited), and the denials kept -- each
 * destination logged once (an open-addressed set of NET_DENIED_LOGGED
 * hashes) and counted in the table `kvmbox logs --denials` and the exit
 * summary read (net_denials, net_denials_line).
 */
#include "net/internal.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"

/* Whether the denial of proto to dst16 is logged now: the first time for
 * that destination, and never more than NET_DENIED_LOGGED destinations. */
static bool denied_first(struct net_stack *ns, const char *proto, const uint8_t *dst16)
{
	uint64_t h = 1469598103934665603ull;	/* FNV-1a over the address and protocol */
	for (int i = 0; i < 16; i++)
		h = (h ^ dst16[i]) * 1099511628211ull;
	h = ((h ^ (uint8_t)proto[0]) * 1099511628211ull) | 1;	/* never 0 (free) */
	size_t mask = NET_DENIED_LOGGED - 1;
	for (size_t i = h & mask;; i = (i + 1) & mask) {
		if (ns->denied_seen[i] == h)
			return false;
		if (!ns->denied_seen[i])
			break;
	}
	if (ns->denied_nseen >= NET_DENIED_LOGGED * 3 / 4) {
		if (!ns->denied_full_logged)
			log_warn("net: %u denied destinations logged; further ones are only counted",
				 ns->denied_nseen);
		ns->denied_full_logged = true;
		return false;
	}
	for (size_t i = h & mask;; i = (i + 1) & mask)
		if (!ns->denied_seen[i]) {
			ns->denied_seen[i] = h;
			break;
		}
	ns->denied_nseen++;
	return true;
}

/* Count a refusal in the summary's table (name: "" but for "dns"). */
static void denial_count(struct net_stack *ns, const char *proto, const uint8_t *dst16, uint16_t port,
			 enum policy_group g, const char *name)
{
	for (unsigned i = 0; i < ns->ndenials; i++) {
		struct net_denial *d = &ns->denials[i];
		if (d->port == port && !memcmp(d->dst, dst16, 16) && !strcmp(d->proto, proto) &&
		    !strcmp(d->name, name)) {
			if (d->count < UINT32_MAX)
				d->count++;
			return;
		}
	}
	if (ns->ndenials == NET_DENIALS_KEPT) {
		ns->denials_other++;
		return;
	}
	struct net_denial *d = &ns->denials[ns->ndenials++];
	memcpy(d->dst, dst16, 16);
	d->port = port;
	snprintf(d->proto, sizeof(d->proto), "%s", proto);
	snprintf(d->name, sizeof(d->name), "%s", name);
	d->group = (uint8_t)g;
	d->count = 1;
}

unsigned net_denials(const struct net_stack *ns, const struct net_denial **out, uint64_t *others)
{
	*out = ns->denials;
	*others = ns->denials_other;
	return ns->ndenials;
}

int net_denial_text(const struct net_stack *ns, const struct net_denial *d, char *out, size_t outsz)
{
	char a[INET6_ADDRSTRLEN];
	uint32_t v4;
	if (policy_addr_to_v4(d->dst, &v4)) {
		struct in_addr in = { .s_addr = htonl(v4) };
		inet_ntop(AF_INET, &in, a, sizeof(a));
	} else {
		inet_ntop(AF_INET6, d->dst, a, sizeof(a));
	}
	const char *g = policy_group_name(d->group), *fix = policy_group_remedy(d->group);
	if (d->name[0])
		return snprintf(out, outsz, "%.*s/dns x%u (not a name the %s egress profile permits; --allow-domain NAME)",
				64, d->name, d->count, policy_profile_name(ns->policy->profile));
	if (d->port)
		return snprintf(out, outsz, "%s%s%s:%u/%s x%u (%s; %s)", strchr(a, ':') ? "[" : "", a,
				strchr(a, ':') ? "]" : "", d->port, d->proto, d->count, g, fix);
	return snprintf(out, outsz, "%s/%s x%u (%s; %s)", a, d->proto, d->count, g, fix);
}

uint64_t net_denials_line(const struct net_stack *ns, char *out, size_t outsz)
{
	uint64_t total = ns->denials_other;
	size_t o = 0;
	if (outsz)
		out[0] = 0;
	for (unsigned i = 0; i < ns->ndenials; i++) {
		const struct net_denial *d = &ns->denials[i];
		char item[INET6_ADDRSTRLEN + 200];
		total += d->count;
		int n = snprintf(item, sizeof(item), "%s", o ? ", " : "");
		n += net_denial_text(ns, d, item + n, sizeof(item) - (size_t)n);
		if (n >= (int)sizeof(item))
			n = (int)sizeof(item) - 1;
		if (o + (size_t)n + 5 >= outsz) {
			if (o + 5 < outsz)
				snprintf(out + o, outsz - o, "%s...", o ? ", " : "");
			o = outsz;	/* full: only counting from here */
			continue;
		}
		memcpy(out + o, item, (size_t)n + 1);
		o += (size_t)n;
	}
	if (ns->denials_other && o + 40 < outsz)
		snprintf(out + o, outsz - o, ", %llu more to other destinations",
			 (unsigned long long)ns->denials_other);
	return total;
}

void net_note_denied(struct net_stack *ns, const char *proto, const uint8_t dst16[16], uint16_t port,
		     enum policy_group g)
{
	denial_count(ns, proto, dst16, port, g, "");
	if (!denied_first(ns, proto, dst16))
		return;
	uint32_t v4;
	char buf[INET6_ADDRSTRLEN];
	if (policy_addr_to_v4(dst16, &v4)) {
		struct in_addr a = { .s_addr = htonl(v4) };
		inet_ntop(AF_INET, &a, buf, sizeof(buf));
		log_warn("net: denied %s to %s:%u: %s (%s)", proto, buf, port, policy_group_name(g),
			 policy_group_remedy(g));
	} else {
		inet_ntop(AF_INET6, dst16, buf, sizeof(buf));
		log_warn("net: denied %s to [%s]:%u: %s (%s)", proto, buf, port, policy_group_name(g),
			 policy_group_remedy(g));
	}
}

void net_note_denied_name(struct net_stack *ns, const char *name)
{
	static const uint8_t none[16];
	char low[254];
	size_t n = strnlen(name, sizeof(low) - 1);
	for (size_t i = 0; i < n; i++)
		low[i] = (char)tolower((unsigned char)name[i]);
	low[n] = 0;
	denial_count(ns, "dns", none, 53, PG_UNLISTED, low);
}

uint32_t net_host_dst(struct net_stack *ns, uint32_t rip)
{
	return rip == ns->cfg.gateway_ip ? 0x7F000001 : rip;
}

bool net_dst_allowed(struct net_stack *ns, const uint8_t *dst16, enum policy_group *why)
{
	return policy_allows(ns->policy, dst16, why);
}

socklen_t net_host_sockaddr(struct net_stack *ns, bool v6, uint32_t rip, const uint8_t *rip6,
			    uint16_t port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (!v6) {
		struct sockaddr_in *sa = (struct sockaddr_in *)ss;
		sa->sin_family = AF_INET;
		sa->sin_port = htons(port);
		sa->sin_addr.s_addr = htonl(net_host_dst(ns, rip));
		return sizeof(*sa);
	}
	struct sockaddr_in6 *sa = (struct sockaddr_in6 *)ss;
	sa->sin6_family = AF_INET6;
	sa->sin6_port = htons(port);
	if (memcmp(rip6, ns->gw6, 16) == 0)
		sa->sin6_addr = in6addr_loopback;
	else
		memcpy(&sa->sin6_addr, rip6, 16);
	return sizeof(*sa);
}

void net_send_denied(struct net_stack *ns, const struct l3 *l3)
{
	if (l3->v6)
		net_send_icmp6_unreach(ns, l3, 1);
	else
		net_send_icmp_unreach(ns, l3->hdr, l3->pktlen, 13);
}
