/* proxy/hostlist.h - egress host rules: which hostnames a sandbox may reach.
 *
 * Shared by proxy/ (checked per request on the SNI/Host name) and net/
 * (checked on the names its DNS forwarder answers and on flows).  A list is
 * built from a profile and an agent, and may be extended with extra
 * patterns.  A pattern is an exact hostname ("api.anthropic.com") or a
 * suffix wildcard ("*.githubusercontent.com", which matches any name below
 * it but not the bare domain).  Matching is case-insensitive and ignores one
 * trailing dot.  The permissive profile allows every name.
 */
#ifndef KVMBOX_PROXY_HOSTLIST_H
#define KVMBOX_PROXY_HOSTLIST_H

#include <stdbool.h>
#include <stddef.h>

enum hostlist_profile {
	HOSTLIST_LOCKED,	/* the agent's own API and login hosts only */
	HOSTLIST_STANDARD,	/* plus GitHub and the package registries */
	HOSTLIST_PERMISSIVE,	/* any host */
};

enum hostlist_agent {
	HOSTLIST_AGENT_NONE,	/* a plain shell: no API hosts */
	HOSTLIST_AGENT_CLAUDE,
	HOSTLIST_AGENT_CODEX,
	HOSTLIST_AGENT_ALL,	/* every known agent's hosts */
};

#define HOSTLIST_MAX 256	/* patterns per list */
#define HOSTLIST_NAME_MAX 253	/* longest DNS name */

/* A host allow-list.  Patterns are copied in. */
struct hostlist {
	enum hostlist_profile profile;
	unsigned n;
	char *pat[HOSTLIST_MAX];
};

/* Fill hl for profile and agent: 0 or -ENOMEM. */
int hostlist_init(struct hostlist *hl, enum hostlist_profile profile, enum hostlist_agent agent);
void hostlist_fini(struct hostlist *hl);
/* Add one pattern: 0, -EINVAL (not a hostname or *.suffix), -ENOSPC, -ENOMEM. */
int hostlist_add(struct hostlist *hl, const char *pattern);
/* Whether host (len bytes, not NUL-terminated) is allowed. */
bool hostlist_allows(const struct hostlist *hl, const char *host, size_t len);
/* "locked" / "standard" / "permissive" to the enum: 0 or -EINVAL. */
int hostlist_profile_parse(const char *s, enum hostlist_profile *out);
const char *hostlist_profile_name(enum hostlist_profile p);

/* One pattern against one host (both case-insensitive, see above). */
bool host_match(const char *pattern, const char *host, size_t len);
/* Whether s[0..len) is a syntactically valid hostname or IP literal. */
bool host_valid(const char *s, size_t len);

#endif
