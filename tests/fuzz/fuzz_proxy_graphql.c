/* tests/fuzz/fuzz_proxy_graphql.c - GitHub GraphQL node id handling on
 * arbitrary bytes: the id extraction from a request body (variables and the
 * query's inline arguments), the nodes(ids:) query built from what was
 * extracted, and the parser of GitHub's answer with the decision on it.
 *
 * First byte even: the rest is a guest GraphQL request body.  Every id
 * extracted must be a well-formed node id (no escaping needed), unique, at
 * most GITHUB_MAX_IDS; the lookup built from them must be valid JSON.
 * First byte 2 mod 4: the rest is a bare GraphQL document for the lexer
 * (every token NUL-terminated within its cap) and a request path for
 * github_canon_path (a canonical form holds no repeated slash and no dot
 * segment, and is its own canonical form).
 * First byte odd: the rest is GitHub's answer for (byte >> 1) % 6 ids.  Every
 * node name must be NUL-terminated in its buffer, and an allowed decision
 * means every repository-owned node belongs to a listed repository and none
 * is unresolved or of another kind.  No crash, no leak, no overrun. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "common/log.h"
#include "proxy/github.h"
#include "proxy/graphql.h"

static void check_ids(const struct github_ids *ids)
{
	if (ids->n > GITHUB_MAX_IDS)
		abort();
	for (unsigned i = 0; i < ids->n; i++) {
		size_t len = strnlen(ids->id[i], GITHUB_ID_MAX + 1);
		if (len == 0 || len > GITHUB_ID_MAX)
			abort();
		if (strspn(ids->id[i], "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-=+/") != len)
			abort();
		for (unsigned j = 0; j < i; j++)
			if (!strcmp(ids->id[i], ids->id[j]))
				abort();
	}
	static char q[16384];
	int n = github_nodes_query(ids, q, sizeof(q));
	if (n < 0 || (size_t)n != strlen(q))
		abort();
	struct json_object *o = json_tokener_parse(q);
	if (!o)
		abort();	/* the lookup must be valid JSON */
	json_object_put(o);
}

static void check_answer(const struct repolist *repos, const char *in, size_t size, unsigned n)
{
	struct github_ids ids = { .n = n };
	struct github_node nodes[8];
	for (unsigned i = 0; i < n; i++) {
		ids.id[i][0] = 'N';
		ids.id[i][1] = (char)('0' + i);
	}
	if (github_parse_nodes(in, size, n, nodes))
		return;
	static struct github_cache cache;
	char msg[600];
	for (unsigned i = 0; i < n; i++) {
		if (!memchr(nodes[i].name, 0, sizeof(nodes[i].name)))
			abort();
		github_cache_put(&cache, ids.id[i], &nodes[i]);
	}
	if (github_decide(repos, &ids, nodes, msg, sizeof(msg)))
		return;
	for (unsigned i = 0; i < n; i++) {
		if (nodes[i].kind == GITHUB_NODE_UNKNOWN || nodes[i].kind == GITHUB_NODE_OTHER)
			abort();
		if (nodes[i].kind == GITHUB_NODE_REPO && strcasecmp(nodes[i].name, "alice/ok"))
			abort();	/* allowed a repository not on the list */
	}
}

static void check_lexer_and_path(const char *in, size_t len)
{
	static struct gql_token t;
	struct gql_lexer lx;
	gql_init(&lx, in, len);
	for (unsigned n = 0; n < 100000; n++) {
		if (gql_next(&lx, &t) || t.kind == GQL_END)
			break;
		if (t.len > GQL_STRING_MAX || t.text[t.len] != 0)
			abort();
	}
	struct gql_outline o;
	if (!gql_outline(in, len, "op", &o) && o.mutations > o.operations)
		abort();
	static char c1[4096], c2[4096];
	int n1 = github_canon_path(in, len, c1, sizeof(c1));
	if (n1 < 0)
		return;
	if ((size_t)n1 != strlen(c1) || strstr(c1, "//") || strstr(c1, "/./") || strstr(c1, "/../"))
		abort();
	int n2 = github_canon_path(c1, (size_t)n1, c2, sizeof(c2));
	if (n2 != n1 || memcmp(c1, c2, (size_t)n1))
		abort();	/* not idempotent: two spellings of one path */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct repolist repos;
	static int init;
	if (!init) {
		log_set_level(LOG_ERR);
		repolist_init(&repos);
		repolist_add(&repos, "alice/ok");
		init = 1;
	}
	if (size < 1)
		return 0;
	const char *in = (const char *)data + 1;
	size_t len = size - 1;
	char msg[600];
	if ((data[0] & 3) == 2) {
		check_lexer_and_path(in, len);
	} else if (!(data[0] & 1)) {
		static struct github_ids ids;
		int r = github_check_ids(&repos, "api.github.com", 14, "POST", 4, "/graphql", 8, in, len, &ids,
					 msg, sizeof(msg));
		if (r == GITHUB_RESOLVE)
			check_ids(&ids);
		else if (r != 0 && r != 403)
			abort();
	} else {
		check_answer(&repos, in, len, (unsigned)(data[0] >> 1) % 6);
	}
	return 0;
}
