/* proxy/github.c - GitHub repository allow-list decisions (see github.h).
 *
 * GraphQL bodies are parsed with json-c; anything that does not parse, or a
 * mutation whose repository cannot be determined, is refused.  Node ids are
 * found in the variables by key and in the query by a small GraphQL lexer
 * (strings, comments, names; enough to see "idKey: value" pairs), then
 * resolved by the relay with one nodes(ids:) query (see github.h).
 */
#include "proxy/github.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "common/util.h"
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

/* One GraphQL request being scanned: the allow-list, the ids found so far,
 * the OWNER/NAME repositories named, and the refusal message. */
struct gq_scan {
	const struct repolist *l;
	struct json_object *vars;	/* the request's variables, or NULL */
	struct github_ids *ids;
	unsigned found;
	char *msg;
	size_t msglen;
};

static int gq_refuse(struct gq_scan *s, const char *why)
{
	snprintf(s->msg, s->msglen, "kvmbox: GitHub GraphQL mutation refused: %s", why);
	return 403;
}

/* "id", "ids", "...Id", "...Ids": the names GitHub gives node id arguments
 * (clientMutationId is a free-form echo, not a node id). */
static bool is_id_key(const char *k, size_t len)
{
	if ((len == 2 && !memcmp(k, "id", 2)) || (len == 3 && !memcmp(k, "ids", 3)))
		return true;
	if (len == 16 && !memcmp(k, "clientMutationId", 16))
		return false;
	return (len > 2 && !memcmp(k + len - 2, "Id", 2)) || (len > 3 && !memcmp(k + len - 3, "Ids", 3));
}

static bool id_char(char c)
{
	return isalnum((unsigned char)c) || c == '_' || c == '-' || c == '=' || c == '+' || c == '/';
}

/* Record one node id (deduplicated): 0 or 403. */
static int add_id(struct gq_scan *s, const char *id, size_t len)
{
	if (len == 0 || len > GITHUB_ID_MAX)
		return gq_refuse(s, "a value given as a node id is not a GitHub node id");
	for (size_t i = 0; i < len; i++)
		if (!id_char(id[i]))
			return gq_refuse(s, "a value given as a node id is not a GitHub node id");
	struct github_ids *ids = s->ids;
	for (unsigned i = 0; i < ids->n; i++)
		if (strlen(ids->id[i]) == len && !memcmp(ids->id[i], id, len))
			return 0;
	if (ids->n >= GITHUB_MAX_IDS)
		return gq_refuse(s, "it carries more node ids than kvmbox checks in one request (32)");
	memcpy(ids->id[ids->n], id, len);
	ids->id[ids->n++][len] = 0;
	return 0;
}

static int scan_json(struct gq_scan *s, struct json_object *o, unsigned depth);

/* The value of an id key in JSON: a string, a list of strings, or null. */
static int collect_ids(struct gq_scan *s, struct json_object *v, unsigned depth)
{
	if (!v)
		return 0;
	if (json_object_is_type(v, json_type_string))
		return add_id(s, json_object_get_string(v), (size_t)json_object_get_string_len(v));
	if (json_object_is_type(v, json_type_array)) {
		size_t n = json_object_array_length(v);
		for (size_t i = 0; i < n; i++) {
			struct json_object *e = json_object_array_get_idx(v, i);
			int r = e && !json_object_is_type(e, json_type_string)
					? gq_refuse(s, "a value given as a node id is not a GitHub node id")
					: collect_ids(s, e, depth + 1);
			if (r)
				return r;
		}
		return 0;
	}
	if (json_object_is_type(v, json_type_object))
		return scan_json(s, v, depth + 1);
	return gq_refuse(s, "a value given as a node id is not a GitHub node id");
}

/* Walk the variables: repositories named (403 on the first one not
 * allowed, else counted in s->found) and node ids under id keys. */
static int scan_json(struct gq_scan *s, struct json_object *o, unsigned depth)
{
	if (!o)
		return 0;
	if (depth > 32)
		return gq_refuse(s, "its variables nest too deep");
	if (json_object_is_type(o, json_type_string)) {
		const char *str = json_object_get_string(o);
		size_t len = (size_t)json_object_get_string_len(o), ol, nl;
		if (owner_name(str, len, &ol, &nl) && ol + 1 + nl == len) {
			s->found++;
			if (!repolist_has(s->l, str, ol, str + ol + 1, nl))
				return refuse(str, ol, str + ol + 1, nl, s->msg, s->msglen);
		}
		return 0;
	}
	if (json_object_is_type(o, json_type_array)) {
		size_t n = json_object_array_length(o);
		for (size_t i = 0; i < n; i++) {
			int r = scan_json(s, json_object_array_get_idx(o, i), depth + 1);
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
		s->found++;
		if (!repolist_has(s->l, a, strlen(a), b, strlen(b)))
			return refuse(a, strlen(a), b, strlen(b), s->msg, s->msglen);
	}
	json_object_object_foreach(o, key, val) {
		int r = is_id_key(key, strlen(key)) ? collect_ids(s, val, depth)
						    : scan_json(s, val, depth + 1);
		if (r)
			return r;
	}
	return 0;
}

/* ---- the GraphQL document: inline id arguments ---- */

static bool gq_name_start(char c)
{
	return isalpha((unsigned char)c) || c == '_';
}

static bool gq_name_char(char c)
{
	return isalnum((unsigned char)c) || c == '_';
}

/* Past whitespace, commas and comments (GraphQL's ignored tokens). */
static const char *gq_skip(const char *p)
{
	for (;;) {
		if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == ',') {
			p++;
		} else if (*p == '#') {
			while (*p && *p != '\n' && *p != '\r')
				p++;
		} else {
			return p;
		}
	}
}

/* A string token at p (p[0] == '"'): its content in *v, *vlen (block
 * strings raw; escapes left in, which no node id has) and the position
 * after it, or NULL when it does not end. */
static const char *gq_string(const char *p, const char **v, size_t *vlen)
{
	if (!strncmp(p, "\"\"\"", 3)) {
		const char *e = strstr(p + 3, "\"\"\"");
		if (!e)
			return NULL;
		*v = p + 3;
		*vlen = (size_t)(e - p - 3);
		return e + 3;
	}
	const char *q = p + 1;
	while (*q && *q != '"' && *q != '\n' && *q != '\r')
		q += (*q == '\\' && q[1]) ? 2 : 1;
	if (*q != '"')
		return NULL;
	*v = p + 1;
	*vlen = (size_t)(q - p - 1);
	return q + 1;
}

/* $NAME at p: the ids the variables give for it. */
static int gq_variable(struct gq_scan *s, const char **pp)
{
	const char *n = gq_skip(*pp + 1), *e = n;
	while (gq_name_char(*e))
		e++;
	*pp = e;
	char name[128];
	size_t len = (size_t)(e - n);
	if (!len || len >= sizeof(name))
		return gq_refuse(s, "it has a malformed variable");
	memcpy(name, n, len);
	name[len] = 0;
	struct json_object *v;
	if (!s->vars || !json_object_object_get_ex(s->vars, name, &v)) {
		snprintf(s->msg, s->msglen,
			 "kvmbox: GitHub GraphQL mutation refused: its id argument $%s is not given in the "
			 "variables (defaults are not checked)", name);
		return 403;
	}
	return collect_ids(s, v, 0);
}

/* One value after "idKey:": a string, $variable, or a list of those. */
static int gq_id_value(struct gq_scan *s, const char **pp)
{
	const char *p = *pp, *v;
	size_t vlen;
	int r = 0;
	if (*p == '"') {
		if (!(p = gq_string(p, &v, &vlen)))
			return gq_refuse(s, "its query has an unterminated string");
		r = add_id(s, v, vlen);
	} else if (*p == '$') {
		r = gq_variable(s, &p);
	} else if (*p == '-' || isdigit((unsigned char)*p)) {
		r = gq_refuse(s, "a value given as a node id is not a GitHub node id");
	} else if (*p == '[') {
		for (p = gq_skip(p + 1); !r && *p != ']'; p = gq_skip(p)) {
			if (*p == '"' || *p == '$' || *p == '-' || isdigit((unsigned char)*p))
				r = gq_id_value(s, &p);
			else if (!strncmp(p, "null", 4) && !gq_name_char(p[4]))
				p += 4;
			else
				r = gq_refuse(s, "a value given as a node id is not a GitHub node id");
		}
		if (!r)
			p++;
	}
	*pp = p;
	return r;
}

/* Inline arguments named like ids in the document: literal values and
 * $variables (looked up in the request's variables). */
static int scan_query(struct gq_scan *s, const char *q)
{
	const char *p = q;
	char prev = 0;		/* last significant character */
	while (*p) {
		const char *n = gq_skip(p);
		if (n != p) {
			p = n;
			continue;
		}
		if (*p == '"') {
			const char *v;
			size_t vlen;
			if (!(p = gq_string(p, &v, &vlen)))
				return gq_refuse(s, "its query has an unterminated string");
			prev = '"';
			continue;
		}
		if (!gq_name_start(*p)) {
			prev = *p++;
			continue;
		}
		const char *name = p;
		while (gq_name_char(*p))
			p++;
		bool var = prev == '$';
		prev = 'a';
		if (var || !is_id_key(name, (size_t)(p - name)))
			continue;
		const char *c = gq_skip(p);
		if (*c != ':')
			continue;
		c = gq_skip(c + 1);
		int r = gq_id_value(s, &c);	/* a name or '{' is left to this loop */
		if (r)
			return r;
		p = c;
		prev = ':';
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
			 struct github_ids *ids, char *msg, size_t msglen)
{
	struct json_tokener *tok = json_tokener_new();
	if (!tok)
		return 403;
	struct json_object *root = json_tokener_parse_ex(tok, body, (int)MIN(blen, (size_t)INT32_MAX));
	bool complete = json_tokener_get_error(tok) == json_tokener_success;
	json_tokener_free(tok);
	struct json_object *q = NULL, *vars = NULL;
	int r = 403;
	snprintf(msg, msglen, "kvmbox: GitHub GraphQL request refused: the body is not a JSON GraphQL request");
	if (!complete || !root || !json_object_is_type(root, json_type_object) ||
	    !json_object_object_get_ex(root, "query", &q) || !json_object_is_type(q, json_type_string))
		goto out;
	r = 0;
	if (!graphql_is_mutation(json_object_get_string(q)))
		goto out;
	if (json_object_object_get_ex(root, "variables", &vars) && !json_object_is_type(vars, json_type_object))
		vars = NULL;
	memset(ids, 0, sizeof(*ids));
	struct gq_scan s = { .l = l, .vars = vars, .ids = ids, .msg = msg, .msglen = msglen };
	r = scan_json(&s, vars, 0);
	if (!r)
		r = scan_query(&s, json_object_get_string(q));
	if (r)
		goto out;
	ids->named = s.found;
	if (ids->n)
		r = GITHUB_RESOLVE;
	else if (!s.found)
		r = gq_refuse(&s, "it names no repository (OWNER/NAME or node id), so kvmbox cannot check it "
				  "against the allow-list (--repo OWNER/NAME)");
out:
	json_object_put(root);
	return r;
}

int github_check_ids(const struct repolist *l, const char *host, size_t hostlen,
		     const char *method, size_t mlen, const char *target, size_t tlen,
		     const char *body, size_t blen, struct github_ids *ids,
		     char *msg, size_t msglen)
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
		if (!body || !ids)
			return body ? 403 : 1;
		return check_graphql(l, body, blen, ids, msg, msglen);
	}
	return 0;
}

int github_check(const struct repolist *l, const char *host, size_t hostlen,
		 const char *method, size_t mlen, const char *target, size_t tlen,
		 const char *body, size_t blen, char *msg, size_t msglen)
{
	struct github_ids *ids = body ? malloc(sizeof(*ids)) : NULL;	/* only a body has ids */
	if (body && !ids)
		return 403;
	int r = github_check_ids(l, host, hostlen, method, mlen, target, tlen, body, blen, ids, msg, msglen);
	free(ids);
	if (r == GITHUB_RESOLVE) {
		snprintf(msg, msglen, "kvmbox: GitHub GraphQL mutation refused: its node ids cannot be "
			 "resolved here, so kvmbox cannot check it against the allow-list");
		r = 403;
	}
	return r;
}

/* ---- resolving node ids ---- */

/* Types gh and agents act on, each with the path to its repository. */
static const char nodes_selection[] =
	"__typename "
	"... on Repository{nameWithOwner} "
	"... on PullRequest{repository{nameWithOwner}} "
	"... on Issue{repository{nameWithOwner}} "
	"... on Discussion{repository{nameWithOwner}} "
	"... on Commit{repository{nameWithOwner}} "
	"... on Ref{repository{nameWithOwner}} "
	"... on IssueComment{repository{nameWithOwner}} "
	"... on PullRequestReview{repository{nameWithOwner}} "
	"... on PullRequestReviewComment{repository{nameWithOwner}} "
	"... on PullRequestReviewThread{repository{nameWithOwner}} "
	"... on CommitComment{repository{nameWithOwner}} "
	"... on Label{repository{nameWithOwner}} "
	"... on Milestone{repository{nameWithOwner}} "
	"... on Release{repository{nameWithOwner}} "
	"... on DiscussionComment{discussion{repository{nameWithOwner}}}";

int github_nodes_query(const struct github_ids *ids, char *out, size_t cap)
{
	size_t o = 0;
	int n = snprintf(out, cap, "{\"query\":\"query($ids:[ID!]!){nodes(ids:$ids){%s}}\","
			 "\"variables\":{\"ids\":[", nodes_selection);
	if (n < 0 || (size_t)n >= cap)
		return -ENOSPC;
	o = (size_t)n;
	for (unsigned i = 0; i < ids->n; i++) {	/* ids are [A-Za-z0-9_=+/-]: no escaping */
		n = snprintf(out + o, cap - o, "%s\"%s\"", i ? "," : "", ids->id[i]);
		if (n < 0 || (size_t)n >= cap - o)
			return -ENOSPC;
		o += (size_t)n;
	}
	n = snprintf(out + o, cap - o, "]}}");
	if (n < 0 || (size_t)n >= cap - o)
		return -ENOSPC;
	return (int)(o + (size_t)n);
}

static struct json_object *jget(struct json_object *o, const char *key)
{
	struct json_object *v = NULL;
	if (!o || !json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, key, &v))
		return NULL;
	return v;
}

/* "owner/name" from {"nameWithOwner": ...} into node, or false. */
static bool node_repo(struct json_object *o, struct github_node *node)
{
	struct json_object *nwo = jget(o, "nameWithOwner");
	if (!nwo || !json_object_is_type(nwo, json_type_string))
		return false;
	const char *s = json_object_get_string(nwo);
	size_t len = (size_t)json_object_get_string_len(nwo), ol, nl;
	if (len >= sizeof(node->name) || !owner_name(s, len, &ol, &nl) || ol + 1 + nl != len)
		return false;
	node->kind = GITHUB_NODE_REPO;
	memcpy(node->name, s, len);
	node->name[len] = 0;
	return true;
}

static void parse_node(struct json_object *o, struct github_node *node)
{
	static const char *const actors[] = { "User", "Bot", "Team", "Mannequin" };
	memset(node, 0, sizeof(*node));
	if (!o || !json_object_is_type(o, json_type_object))
		return;
	if (node_repo(o, node) || node_repo(jget(o, "repository"), node) ||
	    node_repo(jget(jget(o, "discussion"), "repository"), node))
		return;
	struct json_object *t = jget(o, "__typename");
	if (!t || !json_object_is_type(t, json_type_string))
		return;
	const char *ts = json_object_get_string(t);
	size_t tl = (size_t)json_object_get_string_len(t);
	if (!tl || tl >= sizeof(node->name))
		return;
	for (size_t i = 0; i < tl; i++)
		if (!gq_name_char(ts[i]))
			return;
	memcpy(node->name, ts, tl + 1);
	node->kind = GITHUB_NODE_OTHER;
	for (size_t i = 0; i < sizeof(actors) / sizeof(actors[0]); i++)
		if (!strcmp(ts, actors[i]))
			node->kind = GITHUB_NODE_ACTOR;
}

int github_parse_nodes(const char *body, size_t len, unsigned n, struct github_node *nodes)
{
	struct json_tokener *tok = json_tokener_new();
	if (!tok)
		return -ENOMEM;
	struct json_object *root = json_tokener_parse_ex(tok, body, (int)MIN(len, (size_t)INT32_MAX));
	bool complete = json_tokener_get_error(tok) == json_tokener_success;
	json_tokener_free(tok);
	struct json_object *list = complete ? jget(jget(root, "data"), "nodes") : NULL;
	int r = -EINVAL;
	if (list && json_object_is_type(list, json_type_array) && json_object_array_length(list) == n) {
		for (unsigned i = 0; i < n; i++)
			parse_node(json_object_array_get_idx(list, i), &nodes[i]);
		r = 0;
	}
	json_object_put(root);
	return r;
}

int github_decide(const struct repolist *l, const struct github_ids *ids,
		  const struct github_node *nodes, char *msg, size_t msglen)
{
	unsigned repos = ids->named;
	for (unsigned i = 0; i < ids->n; i++) {
		const struct github_node *nd = &nodes[i];
		size_t ol, nl;
		switch (nd->kind) {
		case GITHUB_NODE_REPO:
			if (!owner_name(nd->name, strlen(nd->name), &ol, &nl))
				goto unknown;
			if (!repolist_has(l, nd->name, ol, nd->name + ol + 1, nl))
				return refuse(nd->name, ol, nd->name + ol + 1, nl, msg, msglen);
			repos++;
			break;
		case GITHUB_NODE_ACTOR:
			break;
		case GITHUB_NODE_OTHER:
			snprintf(msg, msglen, "kvmbox: GitHub GraphQL mutation refused: node id %s (type %s) is "
				 "not part of a repository on the allow-list", ids->id[i], nd->name);
			return 403;
		default:
		unknown:
			snprintf(msg, msglen, "kvmbox: GitHub GraphQL mutation refused: node id %s could not be "
				 "resolved to a repository", ids->id[i]);
			return 403;
		}
	}
	if (!repos) {
		snprintf(msg, msglen, "kvmbox: GitHub GraphQL mutation refused: it names no repository, only "
			 "users or teams, so kvmbox cannot check it against the allow-list (--repo OWNER/NAME)");
		return 403;
	}
	return 0;
}

void github_cache_init(struct github_cache *c)
{
	memset(c, 0, sizeof(*c));
}

bool github_cache_get(const struct github_cache *c, const char *id, struct github_node *out)
{
	for (unsigned i = 0; i < c->n; i++)
		if (!strcmp(c->e[i].id, id)) {
			*out = c->e[i].node;
			return true;
		}
	return false;
}

void github_cache_put(struct github_cache *c, const char *id, const struct github_node *node)
{
	struct github_node old;
	if (node->kind == GITHUB_NODE_UNKNOWN || strlen(id) > GITHUB_ID_MAX || github_cache_get(c, id, &old))
		return;
	unsigned i = c->n < GITHUB_CACHE_MAX ? c->n++ : c->next;
	if (c->n == GITHUB_CACHE_MAX)
		c->next = (i + 1) % GITHUB_CACHE_MAX;
	snprintf(c->e[i].id, sizeof(c->e[i].id), "%s", id);
	c->e[i].node = *node;
}
