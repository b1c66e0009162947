/* tests/fuzz/fuzz_proxy_subst.c - placeholder substitution (raw, JSON, form,
 * Basic credentials), the GitHub allow-list and OAuth refresh bodies on
 * arbitrary bytes: no crash, outputs within their buffers, and a real value
 * never produced for a host it does not belong to. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "proxy/github.h"
#include "proxy/oauth.h"
#include "proxy/secrets.h"

#define PH "kvmbox-ph-fuzz-0001"
#define REAL "REALSECRET\"\\&="

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct secrets s;
	static struct repolist repos;
	static int init;
	if (!init) {
		log_set_level(LOG_ERR);
		secrets_init(&s);
		secrets_add(&s, "fuzz", PH, REAL, "good.test,*.good.test");
		repolist_init(&repos);
		repolist_add(&repos, "alice/ok");
		init = 1;
	}
	const char *in = (const char *)data;
	static char out[65536 * 4];
	struct subst_stats st = { 0, 0, false };
	for (int enc = SUBST_RAW; enc <= SUBST_FORM; enc++) {
		ssize_t n = secrets_subst(&s, "good.test", 9, enc, in, size, out, sizeof(out), &st);
		if (n > (ssize_t)sizeof(out))
			abort();
		n = secrets_subst(&s, "evil.test", 9, enc, in, size, out, sizeof(out), &st);
		if (n >= 0 && memmem(out, (size_t)n, "REALSECRET", 10) && !memmem(in, size, "REALSECRET", 10))
			abort();	/* a real value for the wrong host */
	}
	ssize_t n = secrets_subst_header(&s, "evil.test", 9, "Authorization", 13, in, size, out, sizeof(out), &st);
	if (n > (ssize_t)sizeof(out))
		abort();
	n = secrets_subst_header(&s, "good.test", 9, "Authorization", 13, in, size, out, sizeof(out), &st);
	if (n > (ssize_t)sizeof(out))
		abort();
	char msg[600];
	github_check(&repos, "api.github.com", 14, "POST", 4, "/graphql", 8, in, size, msg, sizeof(msg));
	if (size < 2000)
		github_check(&repos, "github.com", 10, "POST", 4, in, size, NULL, 0, msg, sizeof(msg));
	static const char *const types[] = { "application/json", "application/x-www-form-urlencoded" };
	for (int t = 0; t < 2; t++) {
		struct oauth_body b;
		if (oauth_body_parse(types[t], strlen(types[t]), in, size, &b))
			continue;
		char *body;
		size_t blen;
		if (oauth_body_is_refresh(&b, &s, PH) &&
		    !oauth_body_build(&b, "refresh_token", REAL, strlen(REAL), &body, &blen)) {
			struct oauth_body again;	/* what the server reads is what kvmbox read */
			if (oauth_body_parse(types[t], strlen(types[t]), body, blen, &again))
				abort();
			const struct oauth_field *rt = oauth_body_get(&again, "refresh_token");
			if (again.n != b.n || !rt || strcmp(rt->val, REAL))
				abort();
			oauth_body_free(&again);
			free(body);
		}
		oauth_body_free(&b);
	}
	return 0;
}
