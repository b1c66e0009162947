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
 *    object) must be on the list, and a mutation that names none (node ids
 *    only) is refused, since its target cannot be told.
 * Reads are never refused.  Names compare case-insensitively, ".git" dropped.
 */
#ifndef KVMBOX_PROXY_GITHUB_H
#define KVMBOX_PROXY_GITHUB_H

#include <stdbool.h>
#include <stddef.h>

#define GITHUB_MAX_REPOS 64

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

/* Whether host is one of the GitHub hosts this policy covers. */
bool github_host(const char *host, size_t len);

/* Decide one request.  Returns 0 to allow, 403 to refuse (with a one-line
 * message for the client in msg), or 1 when the decision needs the request
 * body and body is NULL (call again with the whole body). */
int github_check(const struct repolist *l, const char *host, size_t hostlen,
		 const char *method, size_t mlen, const char *target, size_t tlen,
		 const char *body, size_t blen, char *msg, size_t msglen);

#endif
