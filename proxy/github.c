/* proxy/github.c - GitHub repository allow-list decisions (see github.h).
 *
 * GraphQL bodies are parsed with json-c; anything that does not parse, or a
 * mutation whose repository cannot be determined, is refused.
 */
#include "proxy/github.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "proxy/hostlist.h"

void repolist_init(struct repolist *l)
{
	memset(l, 0, sizeof(*l));
}

void repolist_fini(struct repolist *l)
{
	for (unsigned i = 0; i < l->n; i++)
		free(l->repo[i]);
	l->n = 0;
}

static bool name_char(char c)
{
	return isalnum((unsigned char)c) || c == '-' || c == '_' || c == '.';
}

/* Length of a name segment starting at p (bounded by len). */
static size_t seg_len(const char *p, size_t len)
{
	size_t i = 0;
	while (i < len && name_char(p[i]))
		i++;
	return i;
}

int repolist_add(struct repolist *l, const char *s)
{
	size_t len = strlen(s);
	size_t o = seg_len(s, len);
	if (o == 0 || o >= len || s[o] != '/' || len > 200)
		return -EINVAL;
	size_t nl = seg_len(s + o + 1, len - o - 1);
	if (nl == 0 || o + 1 + nl != len)
		return -EINVAL;
	if (l->n >= GITHUB_MAX_REPOS)
		return -ENOSPC;
	char *c = strdup(s);
	if (!c)
		return -ENOMEM;
	for (char *p = c; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	size_t cl = strlen(c);
	if (cl > 4 && !strcmp(c + cl - 4, ".git"))
		c[cl - 4] = 0;
	l->repo[l->n++] = c;
	return 0;
}

bool repolist_has(const struct repolist *l, const char *owner, size_t olen,
		  const char *name, size_t nlen)
{
	if (nlen > 4 && !strncasecmp(name + nlen - 4, ".git", 4))
		nlen -= 4;
	for (unsigned i = 0; i < l->n; i++) {
		const char *r = l->repo[i];
		if (strlen(r) == olen + 1 + nlen && !strncasecmp(r, owner, olen) &&
		    r[olen] == '/' && !strncasecmp(r + olen + 1, name, nlen))
			return true;
	}
	return false;
}

bool github_host(const char *host, size_t len)
{
	return host_match("github.com", host, len) || host_match("www.github.com", host, len) ||
	       host_match("api.github.com", host, len) || host_match("uploads.github.com", host, len);
}

static int refuse(const char *owner, size_t olen, const char *name, size_t nlen,
		  char *msg, size_t msglen)
{
	if (nlen > 4 && !strncasecmp(name + nlen - 4, ".git", 4))
		nlen -= 4;
	snprintf(msg, msglen,
		 "kvmbox: write to GitHub repository %.*s/%.*s refused: it is not on the allow-list "
		 "(start kvmbox with --repo %.*s/%.*s to allow it)",
		 (int)olen, owner, (int)nlen, name, (int)olen, owner, (int)nlen, name);
	return 403;
}

static bool is_read(const char *m, size_t len)
{
	return (len == 3 && !memcmp(m, "GET", 3)) || (len == 4 && !memcmp(m, "HEAD", 4)) ||
	       (len == 7 && !memcmp(m, "OPTIONS", 7));
}

/* OWNER/NAME at p: lengths, or false. */
static bool owner_name(const char *p, size_t len, size_t *ol, size_t *nl)
{
	*ol = seg_len(p, len);
	if (*ol == 0 || *ol >= len || p[*ol] != '/')
		return false;
	*nl = seg_len(p + *ol + 1, len - *ol - 1);
	return *nl > 0;
}

/* git smart HTTP on github.com: /OWNER/NAME[.git]/git-receive-pack or
 * /OWNER/NAME[.git]/info/refs?...service=git-receive-pack. */
static int check_git(const struct repolist *l, const char *path, size_t plen,
		     const char *query, size_t qlen, char *msg, size_t msglen)
{
	size_t ol, nl;
	if (plen < 2 || path[0] != '/' || !owner_name(path + 1, plen - 1, &ol, &nl))
		return 0;
	const char *owner = path + 1, *name = path + 2 + ol;
	const char *rest = name + nl;
	size_t rlen = plen - (size_t)(rest - path);
	bool push = (rlen == 17 && !memcmp(rest, "/git-receive-pack", 17)) ||
		    (rlen == 10 && !memcmp(rest, "/info/refs", 10) &&
		     memmem(query, qlen, "service=git-receive-pack", 24));
	if (push && !repolist_has(l, owner, ol, name, nl))
		return refuse(owner, ol, name, nl, msg, msglen);
	return 0;
}

/* Collect repositories named in a JSON value; returns 403 on the first
 * one not allowed, else counts them in *found. */
static int scan_json(const struct repolist *l, struct json_object *o, unsigned depth,
		     unsigned *found, char *msg, size_t msglen)
{
	if (!o || depth > 32)
		return depth > 32 ? 403 : 0;
	if (json_object_is_type(o, json_type_string)) {
		const char *s = json_object_get_string(o);
		size_t len = (size_t)json_object_get_string_len(o), ol, nl;
		if (owner_name(s, len, &ol, &nl) && ol + 1 + nl == len) {
			(*found)++;
			if (!repolist_has(l, s, ol, s + ol + 1, nl))
				return refuse(s, ol, s + ol + 1, nl, msg, msglen);
		}
		return 0;
	}
	if (json_object_is_type(o, json_type_array)) {
		size_t n = json_object_array_length(o);
		for (size_t i = 0; i < n; i++) {
			int r = scan_json(l, json_object_array_get_idx(o, i), depth + 1, found, msg, msglen);
			if (r)
				return r;
		}
		return 0;
	}
	if (!json_object_is_type(o, json_type_object))
		return 0;
	struct json_object *ow = NULL, *nm = NULL;
	if (json_object_object_get_ex(o, "owner", &ow) &&
	    (json_object_object_get_ex(o, "name", &nm) || json_object_object_get_ex(o, "repo", &nm)) &&
	    json_object_is_type(ow, json_type_string) && json_object_is_type(nm, json_type_string)) {
		const char *a = json_object_get_string(ow), *b = json_object_get_string(nm);
		(*found)++;
		if (!repolist_has(l, a, strlen(a), b, strlen(b)))
			return refuse(a, strlen(a), b, strlen(b), msg, msglen);
	}
	json_object_object_foreach(o, key, val) {
		(void)key;
		int r = scan_json(l, val, depth + 1, found, msg, msglen);
		if (r)
			return r;
	}
	return 0;
}

/* Whether the GraphQL document holds a mutation (the word outside strings). */
static bool graphql_is_mutation(const char *q)
{
	bool in_str = false;
	for (const char *p = q; *p; p++) {
		if (*p == '"' && (p == q || p[-1] != '\\'))
			in_str = !in_str;
		if (!in_str && !strncmp(p, "mutation", 8) &&
		    (p == q || !isalnum((unsigned char)p[-1])) && !isalnum((unsigned char)p[8]) && p[8] != '_')
			return true;
	}
	return false;
}

static int check_graphql(const struct repolist *l, const char *body, size_t blen,
			 char *msg, size_t msglen)
{
	struct json_tokener *tok = json_tokener_new();
	if (!tok)
		return 403;
	struct json_object *root = json_tokener_parse_ex(tok, body, (int)blen);
	bool complete = json_tokener_get_error(tok) == json_tokener_success;
	json_tokener_free(tok);
	struct json_object *q = NULL, *vars = NULL;
	int r = 403;
	snprintf(msg, msglen, "kvmbox: GitHub GraphQL request refused: the body is not a JSON GraphQL request");
	if (!complete || !root || !json_object_object_get_ex(root, "query", &q) ||
	    !json_object_is_type(q, json_type_string))
		goto out;
	r = 0;
	if (!graphql_is_mutation(json_object_get_string(q)))
		goto out;
	unsigned found = 0;
	if (json_object_object_get_ex(root, "variables", &vars))
		r = scan_json(l, vars, 0, &found, msg, msglen);
	if (!r && !found) {
		snprintf(msg, msglen,
			 "kvmbox: GitHub GraphQL mutation refused: it names no OWNER/NAME repository, so kvmbox "
			 "cannot check it against the allow-list (--repo OWNER/NAME)");
		r = 403;
	}
out:
	json_object_put(root);
	return r;
}

int github_check(const struct repolist *l, const char *host, size_t hostlen,
		 const char *method, size_t mlen, const char *target, size_t tlen,
		 const char *body, size_t blen, char *msg, size_t msglen)
{
	if (!github_host(host, hostlen))
		return 0;
	const char *q = memchr(target, '?', tlen);
	size_t plen = q ? (size_t)(q - target) : tlen;
	size_t qlen = q ? tlen - plen : 0;
	bool api = host_match("api.github.com", host, hostlen) ||
		   host_match("uploads.github.com", host, hostlen);
	if (!api)
		return check_git(l, target, plen, q ? q : "", qlen, msg, msglen);
	if (is_read(method, mlen))
		return 0;
	size_t ol, nl;
	if (plen > 7 && !memcmp(target, "/repos/", 7) &&
	    owner_name(target + 7, plen - 7, &ol, &nl)) {
		const char *owner = target + 7, *name = owner + ol + 1;
		if (!repolist_has(l, owner, ol, name, nl))
			return refuse(owner, ol, name, nl, msg, msglen);
		return 0;
	}
	if (plen == 8 && !memcmp(target, "/graphql", 8)) {
		if (!body)
			return 1;
		return check_graphql(l, body, blen, msg, msglen);
	}
	return 0;
}
