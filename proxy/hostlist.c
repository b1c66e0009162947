/* proxy/hostlist.c - egress host rules by profile (see hostlist.h).
 *
 * The built-in lists name the hosts each agent's CLI talks to for its API,
 * login and token refresh, and the hosts git, npm, pip and cargo fetch from.
 * They are data, not policy code: add a name here, not a special case.
 */
#include "proxy/hostlist.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const claude_hosts[] = {
	"api.anthropic.com", "console.anthropic.com", "platform.claude.com",
	"claude.ai", "statsig.anthropic.com", "*.claude.ai", NULL,
};
static const char *const codex_hosts[] = {
	"api.openai.com", "auth.openai.com", "chatgpt.com", "*.chatgpt.com", NULL,
};
static const char *const standard_hosts[] = {
	/* GitHub */
	"github.com", "api.github.com", "uploads.github.com", "codeload.github.com",
	"objects.githubusercontent.com", "raw.githubusercontent.com",
	"*.githubusercontent.com", "ghcr.io", "pkg-containers.githubusercontent.com",
	/* package registries */
	"registry.npmjs.org", "registry.yarnpkg.com", "pypi.org",
	"files.pythonhosted.org", "crates.io", "static.crates.io", "index.crates.io",
	"proxy.golang.org", "sum.golang.org", "rubygems.org", "repo.maven.apache.org",
	"deb.debian.org", "security.debian.org", NULL,
};

bool host_valid(const char *s, size_t len)
{
	if (len == 0 || len > HOSTLIST_NAME_MAX)
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

int hostlist_add(struct hostlist *hl, const char *pattern)
{
	const char *name = pattern[0] == '*' && pattern[1] == '.' ? pattern + 2 : pattern;
	if (!host_valid(name, strlen(name)) || strchr(name, '*'))
		return -EINVAL;
	if (hl->n >= HOSTLIST_MAX)
		return -ENOSPC;
	char *copy = strdup(pattern);
	if (!copy)
		return -ENOMEM;
	hl->pat[hl->n++] = copy;
	return 0;
}

static int add_all(struct hostlist *hl, const char *const *names)
{
	for (; *names; names++) {
		int r = hostlist_add(hl, *names);
		if (r)
			return r;
	}
	return 0;
}

int hostlist_init(struct hostlist *hl, enum hostlist_profile profile, enum hostlist_agent agent)
{
	memset(hl, 0, sizeof(*hl));
	hl->profile = profile;
	int r = 0;
	if (agent == HOSTLIST_AGENT_CLAUDE || agent == HOSTLIST_AGENT_ALL)
		r = add_all(hl, claude_hosts);
	if (!r && (agent == HOSTLIST_AGENT_CODEX || agent == HOSTLIST_AGENT_ALL))
		r = add_all(hl, codex_hosts);
	if (!r && profile != HOSTLIST_LOCKED)
		r = add_all(hl, standard_hosts);
	if (r)
		hostlist_fini(hl);
	return r;
}

void hostlist_fini(struct hostlist *hl)
{
	for (unsigned i = 0; i < hl->n; i++)
		free(hl->pat[i]);
	hl->n = 0;
}

bool hostlist_allows(const struct hostlist *hl, const char *host, size_t len)
{
	if (hl->profile == HOSTLIST_PERMISSIVE)
		return true;
	for (unsigned i = 0; i < hl->n; i++)
		if (host_match(hl->pat[i], host, len))
			return true;
	return false;
}

static const char *const profile_names[] = { "locked", "standard", "permissive" };

int hostlist_profile_parse(const char *s, enum hostlist_profile *out)
{
	for (unsigned i = 0; i < 3; i++)
		if (!strcmp(s, profile_names[i])) {
			*out = (enum hostlist_profile)i;
			return 0;
		}
	return -EINVAL;
}

const char *hostlist_profile_name(enum hostlist_profile p)
{
	return (unsigned)p < 3 ? profile_names[p] : "?";
}
