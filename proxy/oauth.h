/* proxy/oauth.h - OAuth refresh interception for Claude Code and Codex.
 *
 * The guest's credential files hold placeholder access and refresh tokens.
 * When an agent refreshes (POST to its token endpoint with
 * grant_type=refresh_token and the placeholder refresh token), the relay
 * substitutes the real refresh token, sends the one upstream refresh
 * (concurrent guest refreshes wait for it: single flight), stores the
 * rotated real tokens in the secrets table and in a host-only state file
 * (mode 0600, written atomically), and answers the guest with the same
 * response in which the real tokens are replaced by the placeholders.
 *
 * Token endpoints (as the CLIs call them):
 *   Claude Code: POST https://console.anthropic.com/v1/oauth/token and
 *                POST https://platform.claude.com/v1/oauth/token (JSON body)
 *   Codex:       POST https://auth.openai.com/oauth/token (JSON or form body)
 */
#ifndef KVMBOX_PROXY_OAUTH_H
#define KVMBOX_PROXY_OAUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "proxy/secrets.h"

/* The provider ("claude"/"codex") whose token endpoint host+path is, or NULL. */
const char *oauth_endpoint(const char *host, size_t hostlen, const char *path, size_t pathlen);
/* Whether every host a refresh token's secret lists is a token endpoint
 * host of provider (and there is one): anything else would send the refresh
 * token where no refresh is intercepted. */
bool oauth_refresh_hosts_ok(const char *provider, const struct secret *refresh);
/* Whether host serves a token endpoint (every request to it is then held to
 * the rules below, whatever its path looks like). */
bool oauth_token_host(const char *host, size_t hostlen);

/* A token request body as the server will read it: the fields of a flat JSON
 * object of strings (RFC 8259, no duplicate names, no byte-order mark) or of
 * an application/x-www-form-urlencoded body (percent-decoded, '+' a space,
 * no repeated keys).  Anything else is not a refresh kvmbox performs. */
#define OAUTH_MAX_FIELDS 16
#define OAUTH_MAX_FIELD 4096
struct oauth_field {
	char *key, *val;	/* decoded, NUL-terminated */
	size_t klen, vlen;
};
struct oauth_body {
	bool form;
	unsigned n;
	struct oauth_field f[OAUTH_MAX_FIELDS];
};

/* Parse body by its Content-Type (application/json or
 * application/x-www-form-urlencoded, a charset=utf-8 parameter at most):
 * 0, -EINVAL (malformed, ambiguous, or another type), -ENOMEM.  On success
 * free with oauth_body_free, which wipes the values. */
int oauth_body_parse(const char *ctype, size_t ctlen, const char *body, size_t len,
		     struct oauth_body *b);
void oauth_body_free(struct oauth_body *b);
/* The field named key, or NULL. */
const struct oauth_field *oauth_body_get(const struct oauth_body *b, const char *key);
/* Whether b is a refresh_token grant whose refresh_token is placeholder and
 * no other field carries a placeholder of s. */
bool oauth_body_is_refresh(const struct oauth_body *b, const struct secrets *s,
			   const char *placeholder);
/* b serialised in its own encoding, with field key's value replaced by
 * value[0..vlen): the body the server receives.  0 or -ENOMEM; *out is
 * malloc'd (wipe it). */
int oauth_body_build(const struct oauth_body *b, const char *key, const char *value,
		     size_t vlen, char **out, size_t *outlen);
/* Whether a placeholder of s occurs in buf, as it is or percent-decoded. */
bool oauth_carries_placeholder(const struct secrets *s, const char *buf, size_t len);

/* A JWT (three base64url parts, header and claims JSON objects) with its
 * signature replaced by a fixed placeholder: the same claims for a client
 * that reads them (Codex reads its id_token's), nothing a server would
 * accept.  0, -EINVAL (not such a JWT), -ENOMEM; *out malloc'd. */
int oauth_jwt_unsign(const char *jwt, size_t len, char **out);

/* Parse a successful token response: store access_token / refresh_token
 * (when present) as the real values of access / refresh and return, in a
 * malloc'd *out, the same JSON with those values replaced by the
 * placeholders and an id_token unsigned (oauth_jwt_unsign; one that is not
 * a JWT is refused).  A member named like a token other than these, id_token and
 * token_type, at any depth, is refused.  0, -EINVAL (not a strict JSON
 * object with access_token, or an unknown token member), -ENOMEM. */
int oauth_rewrite_response(struct secret *access, struct secret *refresh,
			   const char *body, size_t len, char **out, size_t *outlen);
/* The expires_in of a successful token response (a positive integer of at
 * most ten years), or -1. */
long long oauth_expires_in(const char *body, size_t len);
/* The body the guest receives for an unsuccessful token response: a JSON
 * object with only the upstream's "error" code (RFC 6749 characters) and
 * "error_description" (every real value of s replaced by its placeholder,
 * and any other token-like word of 12 or more characters with a digit by
 * "[redacted]":
 * the server may quote a token kvmbox has already rotated away).
 * Length written to out (always a valid JSON object). */
size_t oauth_error_body(const struct secrets *s, int status, const char *body, size_t len,
			char *out, size_t cap);
/* Save / load the rotated real tokens: 0 or -errno (-ENOENT: no state). */
int oauth_save_state(const char *path, const char *provider,
		     const struct secret *access, const struct secret *refresh);
int oauth_load_state(const char *path, const char *provider,
		     struct secret *access, struct secret *refresh);

#endif
