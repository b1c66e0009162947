/* proxy/github.h - the GitHub repository allow-list.
 *
 * Writes to GitHub repositories not on the list are refused with HTTP 403
 * and a message naming OWNER/NAME and the flag that allows it.  Writes are:
 *  - git smart-HTTP pushes on github.com: POST .../OWNER/NAME[.git]/git-receive-pack
 *    and GET .../info/refs?service=git-receive-pack (refused before the push
 *    starts, so git prints our message);
 *  - REST calls under /repos/OWNER/NAME on api.github.com and
 *    uploads.github.com with a method other than GET, HEAD or OPTIONS;
 *  - GraphQL mutations (POST api.github.com/graphql): every repository named
 *    in the variables ("OWNER/NAME" strings, or owner + name/repo keys in one
 *    object) must be on the list.  Node ids (strings under keys "id", "ids",
 *    "...Id", "...Ids" in the variables, or such inline arguments in the
 *    query, literal or $variable) are resolved by the caller with one
 *    `nodes(ids:)` query to GitHub (github_nodes_query, github_parse_nodes,
 *    cached in a github_cache) and decided by github_decide: every
 *    repository-owned node must belong to a listed repository; users, bots,
 *    teams and mannequins may be arguments (reviewers, assignees) of a
 *    mutation that targets a listed repository; anything else, or an id
 *    GitHub does not resolve, is refused.  A mutation naming no repository
 *    at all is refused, since its target cannot be told.
 * Reads are never refused.  Names compare case-insensitively, ".git" dropped.
 */
#ifndef KVMBOX_PROXY_GITHUB_H
#define KVMBOX_PROXY_GITHUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GITHUB_MAX_REPOS 64
#define GITHUB_MAX_IDS 32		/* node ids one mutation may carry */
#define GITHUB_ID_MAX 100		/* longest node id accepted */
#define GITHUB_NAME_MAX 204		/* "owner/name" or a type name */
#define GITHUB_CACHE_MAX 256		/* resolved ids kept per proxy */
#define GITHUB_RESOLVE 2		/* github_check_ids: resolve ids, then decide */

struct repolist {
	unsigned n;
	char *repo[GITHUB_MAX_REPOS];	/* "owner/name", lower case */
};

void repolist_init(struct repolist *l);
void repolist_fini(struct repolist *l);
/* Add "OWNER/NAME": 0, -EINVAL (not that shape), -ENOSPC, -ENOMEM. */
int repolist_add(struct repolist *l, const char *owner_name);
bool repolist_has(const struct repolist *l, const char *owner, size_t olen,
		  const char *name, size_t nlen);

/* Whether host is one of the GitHub hosts this policy covers: github.com,
 * githubusercontent.com and every subdomain of either. */
bool github_host(const char *host, size_t len);
/* The one canonical form of a request path (before any '?'): unreserved
 * characters percent-decoded; anything GitHub could route differently from
 * how kvmbox reads it (an encoded reserved character such as %2F, a
 * backslash, ';', control or non-ASCII bytes, repeated slashes, dot
 * segments) is -EINVAL.  The length written to out, or -EINVAL. */
int github_canon_path(const char *path, size_t plen, char *out, size_t cap);

/* Decide one request.  Returns 0 to allow, 403 to refuse (with a one-line
 * message for the client in msg), or 1 when the decision needs the request
 * body and body is NULL (call again with the whole body). */
int github_check(const struct repolist *l, const char *host, size_t hostlen,
		 const char *method, size_t mlen, const char *target, size_t tlen,
		 const char *body, size_t blen, char *msg, size_t msglen);

/* The node ids a mutation carries (deduplicated, each checked to be
 * [A-Za-z0-9_=+/-]{1,GITHUB_ID_MAX}), and how many OWNER/NAME repositories
 * it names besides (all of them listed, or github_check_ids refused it). */
struct github_ids {
	unsigned n;
	unsigned named;
	/* A REST write naming its repository by number (/repositories/ID on
	 * api.github.com): then n is 1, id[0] is "rest:ID" (the cache key) and
	 * the lookup is GET /repositories/ID, parsed by github_parse_repo. */
	uint64_t repo_id;
	char id[GITHUB_MAX_IDS][GITHUB_ID_MAX + 1];
};

/* What GitHub says one node id is. */
enum github_node_kind {
	GITHUB_NODE_UNKNOWN,	/* not resolved (null in the answer) */
	GITHUB_NODE_REPO,	/* a repository or something it owns: name = "owner/name" */
	GITHUB_NODE_ACTOR,	/* a User, Bot, Team or Mannequin: name = the type */
	GITHUB_NODE_OTHER,	/* anything else (an organization, a gist...): name = the type */
};

struct github_node {
	enum github_node_kind kind;
	char name[GITHUB_NAME_MAX];
};

/* Resolved ids, bounded (the oldest entry is replaced).  Node ids are
 * stable, so entries never expire; unresolved ids are not kept. */
struct github_cache {
	unsigned n, next;
	struct {
		char id[GITHUB_ID_MAX + 1];
		struct github_node node;
	} e[GITHUB_CACHE_MAX];
};

/* github_check, and for a GraphQL mutation carrying node ids: fill *ids and
 * return GITHUB_RESOLVE.  ids may be NULL only while body is NULL.
 * (github_check itself refuses such a mutation: it cannot resolve ids.) */
int github_check_ids(const struct repolist *l, const char *host, size_t hostlen,
		     const char *method, size_t mlen, const char *target, size_t tlen,
		     const char *body, size_t blen, struct github_ids *ids,
		     char *msg, size_t msglen);
/* The JSON body of the GraphQL query resolving ids: length, or -ENOSPC. */
int github_nodes_query(const struct github_ids *ids, char *out, size_t cap);
/* Parse GitHub's answer to that query into nodes[0..n): 0, or -EINVAL when
 * it holds no data.nodes list of exactly n entries. */
int github_parse_nodes(const char *body, size_t len, unsigned n, struct github_node *nodes);
/* Parse GitHub's answer to GET /repositories/ID: its full_name as a
 * repository node.  0, or -EINVAL. */
int github_parse_repo(const char *body, size_t len, struct github_node *node);
/* Decide a mutation given what each of ids is (nodes[i] for ids->id[i]):
 * 0 to allow, 403 with msg. */
int github_decide(const struct repolist *l, const struct github_ids *ids,
		  const struct github_node *nodes, char *msg, size_t msglen);

void github_cache_init(struct github_cache *c);
bool github_cache_get(const struct github_cache *c, const char *id, struct github_node *out);
/* Keep a resolved id (UNKNOWN is not kept). */
void github_cache_put(struct github_cache *c, const char *id, const struct github_node *node);

#endif
