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
#include "proxy/graphql.h"
#include "net/policy.h"
#include "proxy/json.h"

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
	return host_match("github.com", host, len) || host_match("*.github.com", host, len) ||
	       host_match("githubusercontent.com", host, len) ||
	       host_match("*.githubusercontent.com", host, len);
}

/* ---- one canonical form per request target ---- */

/* The byte "%XX" at p[i] stands for (i < end), or -1. */
static int pct_at(const char *p, size_t i, size_t end)
{
	if (i + 2 >= end || p[i] != '%' || hex_digit(p[i + 1]) < 0 || hex_digit(p[i + 2]) < 0)
		return -1;
	return hex_digit(p[i + 1]) << 4 | hex_digit(p[i + 2]);
}

/* Percent-decode p[*j..end) up to stop (or end) into out (cap with its
 * NUL); '+' is a space in values.  *j ends on stop or end. */
static size_t pct_decode(const char *p, size_t *j, size_t end, char stop, bool plus, char *out, size_t cap)
{
	size_t o = 0;
	for (; *j < end && p[*j] != stop && o + 1 < cap; (*j)++) {
		int h = pct_at(p, *j, end);
		out[o++] = h >= 0 ? (char)h : plus && p[*j] == '+' ? ' ' : p[*j];
		if (h >= 0)
			*j += 2;
	}
	out[o] = 0;
	return o;
}

static bool unreserved(unsigned char c)
{
	return isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

int github_canon_path(const char *path, size_t plen, char *out, size_t cap)
{
	size_t o = 0;
	if (!plen || path[0] != '/')
		return -EINVAL;
	for (size_t i = 0; i < plen; i++) {
		unsigned char c = (unsigned char)path[i];
		if (c == '%') {	/* only unreserved characters may be spelled encoded */
			int h = pct_at(path, i, plen);
			if (h < 0 || !unreserved((unsigned char)h))
				return -EINVAL;
			c = (unsigned char)h;
			i += 2;
		} else if (c <= 0x20 || c >= 0x7f || c == '\\' || c == ';') {
			return -EINVAL;
		}
		if (c == '/' && o && out[o - 1] == '/')
			return -EINVAL;	/* repeated slash: routers differ on it */
		if (o + 2 > cap)
			return -EINVAL;
		out[o++] = (char)c;
	}
	out[o] = 0;
	/* dot segments: "/./", "/../", or at the end */
	for (char *p = out; (p = strstr(p, "/.")); p++)
		if (p[2] == '/' || p[2] == 0 || (p[2] == '.' && (p[3] == '/' || p[3] == 0)))
			return -EINVAL;
	return (int)o;
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

static bool http_method_is(const char *m, size_t len, const char *want)
{
	return strlen(want) == len && !memcmp(m, want, len);
}

static bool is_read(const char *m, size_t len)
{
	return http_method_is(m, len, "GET") || http_method_is(m, len, "HEAD") ||
	       http_method_is(m, len, "OPTIONS");
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

/* The value of query parameter key, percent-decoded, into out: true when
 * present (the last one wins, as most servers read it; any repeat of the key
 * makes the query ambiguous and *ambiguous is set). */
static bool query_param(const char *q, size_t qlen, const char *key, char *out, size_t cap,
			bool *ambiguous)
{
	size_t i = 0;
	bool found = false;
	while (i < qlen) {
		const char *amp = memchr(q + i, '&', qlen - i);
		size_t end = amp ? (size_t)(amp - q) : qlen, j = i;
		char name[64];
		pct_decode(q, &j, end, '=', true, name, sizeof(name));
		if (!strcmp(name, key)) {
			*ambiguous |= found;
			found = true;
			j = j < end ? j + 1 : end;
			pct_decode(q, &j, end, '&', true, out, cap);
		}
		i = end + 1;
	}
	return found;
}

static int refuse_other(const char *method, size_t mlen, const char *what, char *msg, size_t msglen)
{
	snprintf(msg, msglen, "kvmbox: GitHub %.*s refused: %s (while kvmbox guards GitHub, only writes to "
		 "repositories given with --repo OWNER/NAME pass)", (int)MIN(mlen, 16), method, what);
	return 403;
}

/* git smart HTTP on github.com, on the canonical path: fetches
 * (git-upload-pack) pass, pushes (git-receive-pack, and its info/refs
 * advertisement) and LFS batches only for listed repositories; every other
 * write is refused. */
static int check_git(const struct repolist *l, const char *method, size_t mlen, const char *path,
		     int plen, const char *query, size_t qlen, char *msg, size_t msglen)
{
	size_t ol, nl;
	bool read = is_read(method, mlen);
	char service[64] = "";
	bool amb = false;
	bool wants_push = query_param(query, qlen, "service", service, sizeof(service), &amb) &&
			  strcmp(service, "git-upload-pack");
	if (plen < 0) {	/* ambiguous spelling */
		if (read && !wants_push)
			return 0;
		return refuse_other(method, mlen, "its path is spelled in a way GitHub could route to "
				    "another repository (encoded or repeated slashes, dot segments)", msg, msglen);
	}
	if (plen < 2 || !owner_name(path + 1, (size_t)plen - 1, &ol, &nl)) {
		if (read)
			return 0;
		return refuse_other(method, mlen, "it is not a git operation on a repository", msg, msglen);
	}
	const char *owner = path + 1, *name = path + 2 + ol;
	const char *rest = name + nl;
	size_t rlen = (size_t)plen - (size_t)(rest - path);
	bool listed = repolist_has(l, owner, ol, name, nl);
	if (read) {
		if (rlen == 10 && !memcmp(rest, "/info/refs", 10) && (wants_push || amb) && !listed)
			return refuse(owner, ol, name, nl, msg, msglen);
		return 0;
	}
	if (http_method_is(method, mlen, "POST") && rlen == 16 && !memcmp(rest, "/git-upload-pack", 16))
		return 0;	/* a fetch */
	if (http_method_is(method, mlen, "POST") && ((rlen == 17 && !memcmp(rest, "/git-receive-pack", 17)) ||
					    (rlen == 23 && !memcmp(rest, "/info/lfs/objects/batch", 23))))
		return listed ? 0 : refuse(owner, ol, name, nl, msg, msglen);
	if (listed && rlen > 10 && !memcmp(rest, "/info/lfs/", 10))
		return 0;	/* LFS locks and verify on a listed repository */
	return refuse_other(method, mlen, "it is not a git push or fetch", msg, msglen);
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

/* Input fields of GitHub's mutations whose strings are text or a branch,
 * never a repository ("feature/login" is a branch name, "docs/typo" a
 * title): an OWNER/NAME shape there is not checked as one.  Every other
 * string shaped OWNER/NAME is, so a field not named here fails closed. */
static bool is_text_key(const char *k)
{
	static const char *const text[] = { "headRefName", "baseRefName", "branchName", "qualifiedName",
					    "title", "body", "headline", "description", "clientMutationId" };
	for (size_t i = 0; i < sizeof(text) / sizeof(text[0]); i++)
		if (!strcmp(k, text[i]))
			return true;
	return false;
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
		if (is_text_key(key) && json_object_is_type(val, json_type_string))
			continue;	/* a branch name or a title, not a repository */
		int r = is_id_key(key, strlen(key)) ? collect_ids(s, val, depth)
						    : scan_json(s, val, depth + 1);
		if (r)
			return r;
	}
	return 0;
}

/* ---- the GraphQL document ---- */

/* $NAME (the '$' just read): the ids the variables give for it. */
static int gq_variable(struct gq_scan *s, struct gql_lexer *lx, struct gql_token *t)
{
	if (gql_next(lx, t) || t->kind != GQL_NAME)
		return gq_refuse(s, "it has a malformed variable");
	struct json_object *v;
	if (!s->vars || !json_object_object_get_ex(s->vars, t->text, &v)) {
		snprintf(s->msg, s->msglen,
			 "kvmbox: GitHub GraphQL mutation refused: its id argument $%s is not given in the "
			 "variables (defaults are not checked)", t->text);
		return 403;
	}
	return collect_ids(s, v, 0);
}

/* One string literal of the document: a repository when shaped OWNER/NAME. */
static int gq_literal(struct gq_scan *s, const struct gql_token *t)
{
	size_t ol, nl;
	if (t->truncated || !owner_name(t->text, t->len, &ol, &nl) || ol + 1 + nl != t->len)
		return 0;
	s->found++;
	return repolist_has(s->l, t->text, ol, t->text + ol + 1, nl) ? 0
		: refuse(t->text, ol, t->text + ol + 1, nl, s->msg, s->msglen);
}

/* The value after "idKey:" (t holds its first token): a string, $variable,
 * null, or a list of those.  Anything else given to an id argument is not
 * a node id.  t is left on the value's last token. */
static int gq_id_value(struct gq_scan *s, struct gql_lexer *lx, struct gql_token *t, unsigned depth)
{
	if (t->kind == GQL_STRING) {
		if (t->truncated)
			return gq_refuse(s, "a value given as a node id is not a GitHub node id");
		int r = gq_literal(s, t);
		return r ? r : add_id(s, t->text, t->len);
	}
	if (t->kind == GQL_PUNCT && t->text[0] == '$')
		return gq_variable(s, lx, t);
	if (t->kind == GQL_NAME && !strcmp(t->text, "null"))
		return 0;
	if (t->kind != GQL_PUNCT || t->text[0] != '[' || depth > 8)
		return gq_refuse(s, "a value given as a node id is not a GitHub node id");
	for (;;) {
		if (gql_next(lx, t))
			return gq_refuse(s, "its query is not a GraphQL document");
		if (t->kind == GQL_PUNCT && t->text[0] == ']')
			return 0;
		int r = gq_id_value(s, lx, t, depth + 1);
		if (r)
			return r;
	}
}

/* Pending inline owner: "x" at each nesting depth, paired with a later
 * name: or repo: string at the same depth (repository(owner:, name:)). */
#define GQ_DEPTH_MAX 64
struct gq_pairs {
	char owner[GQ_DEPTH_MAX][GITHUB_NAME_MAX];
	char name[GQ_DEPTH_MAX][GITHUB_NAME_MAX];
};

static int gq_pair(struct gq_scan *s, struct gq_pairs *pp, unsigned depth, const char *key,
		   const struct gql_token *v)
{
	if (depth >= GQ_DEPTH_MAX || v->truncated || v->len >= GITHUB_NAME_MAX)
		return 0;
	bool owner = !strcmp(key, "owner");
	if (!owner && strcmp(key, "name") && strcmp(key, "repo") && strcmp(key, "repository"))
		return 0;
	memcpy(owner ? pp->owner[depth] : pp->name[depth], v->text, v->len + 1);
	const char *o = pp->owner[depth], *n = pp->name[depth];
	if (!o[0] || !n[0])
		return 0;
	s->found++;
	int r = repolist_has(s->l, o, strlen(o), n, strlen(n)) ? 0
		: refuse(o, strlen(o), n, strlen(n), s->msg, s->msglen);
	pp->owner[depth][0] = pp->name[depth][0] = 0;
	return r;
}

/* Every token of the document: string literals shaped OWNER/NAME, inline
 * owner + name pairs, and the values of id-named arguments and input fields
 * (literal, list or $variable). */
static int scan_query(struct gq_scan *s, const char *q, size_t qlen)
{
	static struct gql_token t;	/* single-threaded scratch */
	static struct gq_pairs pairs;
	struct gql_lexer lx;
	char key[128] = "";	/* the NAME just before a ':' */
	char prev_name[128] = "";	/* the previous token, when a NAME */
	bool prev_dollar = false, prev_is_var = false, after_colon = false;
	unsigned depth = 0;
	memset(&pairs, 0, sizeof(pairs));
	gql_init(&lx, q, qlen);
	for (;;) {
		if (gql_next(&lx, &t))
			return gq_refuse(s, "its query is not a GraphQL document");
		if (t.kind == GQL_END)
			return 0;
		int r = 0;
		if (after_colon) {
			after_colon = false;
			if (is_id_key(key, strlen(key)) && !(t.kind == GQL_NAME && strcmp(t.text, "null"))) {
				/* (a NAME here is the field an alias names: "nodeId: id") */
				r = gq_id_value(s, &lx, &t, 0);
				if (r)
					return r;
				continue;
			}
			if (t.kind == GQL_STRING && is_text_key(key))
				continue;	/* a branch name or a title, not a repository */
			if (t.kind == GQL_STRING && (r = gq_pair(s, &pairs, depth, key, &t)))
				return r;
		}
		if (t.kind == GQL_STRING && (r = gq_literal(s, &t)))
			return r;
		if (t.kind == GQL_PUNCT) {
			char c = t.text[0];
			if (c == ':' && prev_name[0] && !prev_is_var) {
				snprintf(key, sizeof(key), "%s", prev_name);
				after_colon = true;
			} else if (c == '(' || c == '{' || c == '[') {
				if (++depth < GQ_DEPTH_MAX)
					pairs.owner[depth][0] = pairs.name[depth][0] = 0;
			} else if ((c == ')' || c == '}' || c == ']') && depth) {
				depth--;
			}
		}
		prev_is_var = t.kind == GQL_NAME && prev_dollar;	/* $name: a variable definition */
		if (t.kind == GQL_NAME && t.len < sizeof(prev_name))
			memcpy(prev_name, t.text, t.len + 1);
		else
			prev_name[0] = 0;
		prev_dollar = t.kind == GQL_PUNCT && t.text[0] == '$';
	}
}

static int check_graphql(const struct repolist *l, const char *body, size_t blen,
			 struct github_ids *ids, char *msg, size_t msglen)
{
	struct json_object *root = json_strict_object(body, blen), *q = NULL, *vars = NULL, *opn = NULL;
	int r = 403;
	snprintf(msg, msglen, "kvmbox: GitHub GraphQL request refused: the body is not a JSON GraphQL request");
	if (!root || !json_object_object_get_ex(root, "query", &q) || !json_object_is_type(q, json_type_string))
		goto out;
	if (json_object_object_get_ex(root, "operationName", &opn) && !json_object_is_type(opn, json_type_null) &&
	    !json_object_is_type(opn, json_type_string))
		goto out;
	const char *doc = json_object_get_string(q);
	size_t dlen = (size_t)json_object_get_string_len(q);
	struct gql_outline ol;
	if (gql_outline(doc, dlen, opn && json_object_is_type(opn, json_type_string)
					   ? json_object_get_string(opn) : NULL, &ol)) {
		snprintf(msg, msglen, "kvmbox: GitHub GraphQL request refused: its query is not a GraphQL "
			 "document kvmbox can read");
		goto out;
	}
	r = 0;
	if (!ol.mutations)
		goto out;	/* queries only: reads */
	memset(ids, 0, sizeof(*ids));
	struct gq_scan s = { .l = l, .vars = vars, .ids = ids, .msg = msg, .msglen = msglen };
	if (ol.operations != 1) {
		r = gq_refuse(&s, "a document with a mutation must hold that one operation only");
		goto out;
	}
	if (json_object_object_get_ex(root, "variables", &vars) && !json_object_is_type(vars, json_type_null) &&
	    !json_object_is_type(vars, json_type_object)) {
		r = gq_refuse(&s, "its variables are not a JSON object");
		goto out;
	}
	s.vars = json_object_is_type(vars, json_type_object) ? vars : NULL;
	r = scan_json(&s, s.vars, 0);
	if (!r)
		r = scan_query(&s, doc, dlen);
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

/* A REST write under /repositories/ID: the id is resolved by the relay
 * (GITHUB_RESOLVE with ids->repo_id) on api.github.com; uploads.github.com
 * cannot answer that lookup, so there it is refused. */
static int check_repo_id(const char *host, size_t hostlen, const char *method, size_t mlen,
			 const char *path, size_t plen, const char *body, struct github_ids *ids,
			 char *msg, size_t msglen)
{
	size_t i = 14, d = 0;
	uint64_t id = 0;
	while (i < plen && path[i] >= '0' && path[i] <= '9' && d < 19) {
		id = id * 10 + (uint64_t)(path[i++] - '0');
		d++;
	}
	if (!id || (i < plen && path[i] != '/') || !host_match("api.github.com", host, hostlen))
		return refuse_other(method, mlen, "a repository named by its numeric id is checked only on "
				    "api.github.com as /repositories/NUMBER; use /repos/OWNER/NAME", msg, msglen);
	if (!body || !ids)
		return body ? 403 : 1;	/* the relay holds the request and resolves the id */
	memset(ids, 0, sizeof(*ids));
	ids->repo_id = id;
	ids->n = 1;
	snprintf(ids->id[0], sizeof(ids->id[0]), "rest:%llu", (unsigned long long)id);
	return GITHUB_RESOLVE;
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
	size_t qlen = q ? tlen - plen - 1 : 0;
	char path[2048];
	int cl = plen < sizeof(path) ? github_canon_path(target, plen, path, sizeof(path)) : -EINVAL;
	if (host_match("github.com", host, hostlen) || host_match("www.github.com", host, hostlen))
		return check_git(l, method, mlen, path, cl, q ? q + 1 : "", qlen, msg, msglen);
	bool api = host_match("api.github.com", host, hostlen) ||
		   host_match("uploads.github.com", host, hostlen);
	bool read = is_read(method, mlen);
	if (api && cl == 8 && !strcasecmp(path, "/graphql")) {
		char v[8];
		bool amb = false;
		if (read && !query_param(q ? q + 1 : "", qlen, "query", v, sizeof(v), &amb))
			return 0;
		if (read)
			return refuse_other(method, mlen, "GraphQL over GET is refused (a mutation could ride "
					    "in its query string)", msg, msglen);
		if (!http_method_is(method, mlen, "POST"))
			return refuse_other(method, mlen, "GraphQL takes POST only", msg, msglen);
		if (!body || !ids)
			return body ? 403 : 1;
		return check_graphql(l, body, blen, ids, msg, msglen);
	}
	if (read)
		return 0;
	if (!api)
		return refuse_other(method, mlen, "writes to this GitHub host are not writes to a "
				    "repository kvmbox can identify", msg, msglen);
	if (cl < 0)
		return refuse_other(method, mlen, "its path is spelled in a way GitHub could route to "
				    "another repository (encoded or repeated slashes, dot segments)", msg, msglen);
	size_t ol, nl;
	if (cl > 7 && !strncasecmp(path, "/repos/", 7) && owner_name(path + 7, (size_t)cl - 7, &ol, &nl) &&
	    (7 + ol + 1 + nl == (size_t)cl || path[7 + ol + 1 + nl] == '/')) {
		const char *owner = path + 7, *name = owner + ol + 1;
		if (!repolist_has(l, owner, ol, name, nl))
			return refuse(owner, ol, name, nl, msg, msglen);
		return 0;
	}
	if (cl > 14 && !strncasecmp(path, "/repositories/", 14))
		return check_repo_id(host, hostlen, method, mlen, path, (size_t)cl, body, ids, msg, msglen);
	if ((cl == 9 && !strcasecmp(path, "/markdown")) || (cl == 13 && !strcasecmp(path, "/markdown/raw")))
		return 0;	/* renders text, writes nothing */
	return refuse_other(method, mlen, "it is not a write to a repository (account keys, gists, "
			    "repository creation, organisation and user settings are refused)", msg, msglen);
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
		if (!isalnum((unsigned char)ts[i]) && ts[i] != '_')
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

int github_parse_repo(const char *body, size_t len, struct github_node *node)
{
	struct json_object *root = json_strict_object(body, len);
	memset(node, 0, sizeof(*node));
	struct json_object *fn = jget(root, "full_name");
	int r = -EINVAL;
	if (fn && json_object_is_type(fn, json_type_string)) {
		struct json_object *o = json_object_new_object();
		if (o) {	/* {"nameWithOwner": full_name}: the same checks as a node */
			json_object_object_add(o, "nameWithOwner", json_object_get(fn));
			r = node_repo(o, node) ? 0 : -EINVAL;
			json_object_put(o);
		}
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
