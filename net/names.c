/* net/names.c - the name side of the egress policy (net/policy.h): which
 * host names a sandbox may resolve and, through the TLS proxy, talk to.
 *
 * One vocabulary serves the stack's DNS forwarder and the proxy, so that a
 * name is judged the same way whichever of them sees it:
 *   permissive  every name (the address rules below still hold)
 *   standard    the agent's provider and common development
 *               infrastructure (GitHub, npm, PyPI, crates, Go modules,
 *               Debian, Docker Hub, GHCR)
 *   locked      the agent's provider only
 * plus the names --allow-domain adds (a name and its subdomains; "*.name"
 * its subdomains only).  Under standard and locked the stack learns the
 * addresses permitted names resolve to and refuses every other public
 * address (policy.c); the proxy refuses a TLS server name or Host outside
 * the list even on an address a permitted name gave (one CDN address
 * serves many names).  The public-only address rules stay underneath every
 * profile: a permitted name resolving to a private address is refused.
 *
 * The built-in lists are data, not policy code: add a name here, not a
 * special case.  Their entries match exactly ("*.x": below x only).
 */
#include "net/policy.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char *const claude_hosts[] = {
	"api.anthropic.com", "console.anthropic.com", "platform.claude.com",
	"claude.ai", "statsig.anthropic.com", "*.claude.ai", NULL,
};
static const char *const codex_hosts[] = {
	"api.openai.com", "auth.openai.com", "chatgpt.com", "*.chatgpt.com", NULL,
};
static const char *const opencode_hosts[] = {
	"opencode.ai", "*.opencode.ai", "models.dev", NULL,
};
static const char *const infra_hosts[] = {
	/* GitHub and its container registry */
	"github.com", "api.github.com", "uploads.github.com", "codeload.github.com",
	"objects.githubusercontent.com", "raw.githubusercontent.com",
	"*.githubusercontent.com", "ghcr.io", "pkg-containers.githubusercontent.com",
	/* package registries */
	"registry.npmjs.org", "registry.yarnpkg.com", "pypi.org",
	"files.pythonhosted.org", "crates.io", "static.crates.io", "index.crates.io",
	"proxy.golang.org", "sum.golang.org", "rubygems.org", "repo.maven.apache.org",
	"deb.debian.org", "security.debian.org",
	/* Docker Hub */
	"registry-1.docker.io", "auth.docker.io", "index.docker.io",
	"production.cloudflare.docker.com", NULL,
};

static const char *const profile_names[] = {
	[PP_PERMISSIVE] = "permissive", [PP_STANDARD] = "standard", [PP_LOCKED] = "locked",
};

bool host_valid(const char *s, size_t len)
{
	if (len == 0 || len > 253)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == ':'))
			return false;
	}
	return true;
}

bool host_match(const char *pattern, const char *host, size_t len)
{
	if (len && host[len - 1] == '.')
		len--;
	if (pattern[0] == '*' && pattern[1] == '.') {
		size_t sl = strlen(pattern + 1);	/* ".suffix" */
		return len > sl && strncasecmp(host + len - sl, pattern + 1, sl) == 0;
	}
	return strlen(pattern) == len && strncasecmp(pattern, host, len) == 0;
}

int policy_set_profile(struct policy *p, const char *name)
{
	for (unsigned i = 0; i < sizeof(profile_names) / sizeof(profile_names[0]); i++)
		if (!strcmp(name, profile_names[i])) {
			p->profile = (enum policy_profile)i;
			return 0;
		}
	return -EINVAL;
}

const char *policy_profile_name(enum policy_profile pp)
{
	return (unsigned)pp < sizeof(profile_names) / sizeof(profile_names[0]) ? profile_names[pp] : "?";
}

static const char *const agent_names[] = {
	[POLICY_AGENT_NONE] = "none", [POLICY_AGENT_CLAUDE] = "claude",
	[POLICY_AGENT_CODEX] = "codex", [POLICY_AGENT_ALL] = "all",
};

void policy_set_agent(struct policy *p, enum policy_agent agent)
{
	p->agent = agent;
}

int policy_agent_parse(const char *name, enum policy_agent *out)
{
	for (unsigned i = 0; i < sizeof(agent_names) / sizeof(agent_names[0]); i++)
		if (!strcmp(name, agent_names[i])) {
			*out = (enum policy_agent)i;
			return 0;
		}
	return -EINVAL;
}

const char *policy_agent_name(enum policy_agent a)
{
	return (unsigned)a < sizeof(agent_names) / sizeof(agent_names[0]) ? agent_names[a] : "?";
}

/* A name without its trailing dot, in lower case, each character one DNS
 * names are made of: 0 or -EINVAL. */
static int normalise_name(const char *in, char out[254])
{
	size_t n = strlen(in);
	if (n && in[n - 1] == '.')
		n--;
	if (n == 0 || n > 253 || !host_valid(in, n) || memchr(in, ':', n))
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		out[i] = (char)tolower((unsigned char)in[i]);
	out[n] = 0;
	return 0;
}

int policy_allow_domain(struct policy *p, const char *name)
{
	if (p->ndomains >= POLICY_MAX_DOMAINS)
		return -ENOSPC;
	bool below = name[0] == '*' && name[1] == '.';
	char n[254];
	if (normalise_name(below ? name + 2 : name, n) < 0 || n[0] == '.' || strstr(n, ".."))
		return -EINVAL;
	snprintf(p->domains[p->ndomains++], sizeof(p->domains[0]), "%s%s", below ? "*." : "", n);
	return 0;
}

/* n equals d, or (unless only_below) ends in "." d. */
static bool domain_covers(const char *d, const char *n, size_t len)
{
	bool only_below = d[0] == '*' && d[1] == '.';
	if (only_below)
		d += 2;
	size_t dl = strlen(d);
	if (len == dl)
		return !only_below && memcmp(n, d, dl) == 0;
	return len > dl && n[len - dl - 1] == '.' && memcmp(n + len - dl, d, dl) == 0;
}

static bool in_builtin(const char *const *list, const char *n, size_t len)
{
	for (; *list; list++)
		if (host_match(*list, n, len))
			return true;
	return false;
}

bool policy_allows_name(const struct policy *p, const char *name)
{
	if (p->profile == PP_PERMISSIVE)	/* any name or literal, IPv6 ones too */
		return host_valid(name, strlen(name));
	char n[254];
	if (normalise_name(name, n) < 0)
		return false;
	size_t len = strlen(n);
	bool claude = p->agent == POLICY_AGENT_CLAUDE || p->agent == POLICY_AGENT_ALL;
	bool codex = p->agent == POLICY_AGENT_CODEX || p->agent == POLICY_AGENT_ALL;
	if ((claude && in_builtin(claude_hosts, n, len)) || (codex && in_builtin(codex_hosts, n, len)) ||
	    (p->agent == POLICY_AGENT_ALL && in_builtin(opencode_hosts, n, len)) ||
	    (p->profile == PP_STANDARD && in_builtin(infra_hosts, n, len)))
		return true;
	for (unsigned i = 0; i < p->ndomains; i++)
		if (domain_covers(p->domains[i], n, len))
			return true;
	return false;
}
