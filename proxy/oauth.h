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
/* Whether body (JSON, or form when form) is a refresh_token grant whose
 * refresh_token is exactly placeholder. */
bool oauth_is_refresh(const char *body, size_t len, bool form, const char *placeholder);
/* Parse a successful token response: store access_token / refresh_token
 * (when present) as the real values of access / refresh and return, in a
 * malloc'd *out, the same JSON with those values replaced by the
 * placeholders.  0, -EINVAL (not a JSON object with access_token), -ENOMEM. */
int oauth_rewrite_response(struct secret *access, struct secret *refresh,
			   const char *body, size_t len, char **out, size_t *outlen);
/* Save / load the rotated real tokens: 0 or -errno (-ENOENT: no state). */
int oauth_save_state(const char *path, const char *provider,
		     const struct secret *access, const struct secret *refresh);
int oauth_load_state(const char *path, const char *provider,
		     struct secret *access, struct secret *refresh);

#endif
