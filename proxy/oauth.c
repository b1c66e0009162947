/* proxy/oauth.c - token-endpoint recognition, response rewriting and the
 * host-only state file for OAuth refresh interception (see oauth.h). */
#include "proxy/oauth.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "common/util.h"
#include "proxy/hostlist.h"

struct endpoint {
	const char *provider;
	const char *host;
	const char *path;
};

static const struct endpoint endpoints[] = {
	{ "claude", "console.anthropic.com", "/v1/oauth/token" },
	{ "claude", "platform.claude.com", "/v1/oauth/token" },
	{ "codex", "auth.openai.com", "/oauth/token" },
};

const char *oauth_endpoint(const char *host, size_t hostlen, const char *path, size_t pathlen)
{
	for (size_t i = 0; i < ARRAY_SIZE(endpoints); i++)
		if (host_match(endpoints[i].host, host, hostlen) &&
		    strlen(endpoints[i].path) == pathlen && !memcmp(endpoints[i].path, path, pathlen))
			return endpoints[i].provider;
	return NULL;
}

/* Value of key in a form body, into out: true when found and it fits. */
static bool form_get(const char *body, size_t len, const char *key, char *out, size_t cap)
{
	size_t kl = strlen(key), i = 0;
	while (i < len) {
		const char *amp = memchr(body + i, '&', len - i);
		size_t end = amp ? (size_t)(amp - body) : len;
		if (end - i > kl && body[i + kl] == '=' && !memcmp(body + i, key, kl)) {
			size_t vl = end - i - kl - 1;
			if (vl >= cap)
				return false;
			memcpy(out, body + i + kl + 1, vl);
			out[vl] = 0;
			return true;
		}
		i = end + 1;
	}
	return false;
}

bool oauth_is_refresh(const char *body, size_t len, bool form, const char *placeholder)
{
	if (form) {
		char gt[32], rt[160];
		return form_get(body, len, "grant_type", gt, sizeof(gt)) && !strcmp(gt, "refresh_token") &&
		       form_get(body, len, "refresh_token", rt, sizeof(rt)) && !strcmp(rt, placeholder);
	}
	struct json_tokener *tok = json_tokener_new();
	if (!tok)
		return false;
	struct json_object *o = json_tokener_parse_ex(tok, body, (int)len), *gt, *rt;
	bool ok = json_tokener_get_error(tok) == json_tokener_success && o &&
		  json_object_object_get_ex(o, "grant_type", &gt) &&
		  json_object_object_get_ex(o, "refresh_token", &rt) &&
		  json_object_is_type(gt, json_type_string) && json_object_is_type(rt, json_type_string) &&
		  !strcmp(json_object_get_string(gt), "refresh_token") &&
		  !strcmp(json_object_get_string(rt), placeholder);
	json_tokener_free(tok);
	json_object_put(o);
	return ok;
}

/* Replace string member key's value with ph after storing it in e. */
static int swap_token(struct json_object *o, const char *key, struct secret *e)
{
	struct json_object *v;
	if (!e || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return 0;
	int r = secret_set_value(e, json_object_get_string(v), (size_t)json_object_get_string_len(v));
	if (r)
		return r;
	return json_object_object_add(o, key, json_object_new_string(e->placeholder)) ? -ENOMEM : 0;
}

int oauth_rewrite_response(struct secret *access, struct secret *refresh,
			   const char *body, size_t len, char **out, size_t *outlen)
{
	struct json_tokener *tok = json_tokener_new();
	if (!tok)
		return -ENOMEM;
	struct json_object *o = json_tokener_parse_ex(tok, body, (int)len), *at;
	int r = -EINVAL;
	if (json_tokener_get_error(tok) != json_tokener_success || !o ||
	    !json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, "access_token", &at))
		goto done;
	r = swap_token(o, "access_token", access);
	if (!r)
		r = swap_token(o, "refresh_token", refresh);
	if (!r) {
		size_t n;
		const char *s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &n);
		*out = s ? malloc(n + 1) : NULL;
		if (!*out) {
			r = -ENOMEM;
		} else {
			memcpy(*out, s, n + 1);
			*outlen = n;
		}
	}
done:
	json_tokener_free(tok);
	json_object_put(o);
	return r;
}

int oauth_save_state(const char *path, const char *provider,
		     const struct secret *access, const struct secret *refresh)
{
	struct json_object *o = json_object_new_object();
	if (!o)
		return -ENOMEM;
	json_object_object_add(o, "provider", json_object_new_string(provider));
	if (access)
		json_object_object_add(o, "access_token", json_object_new_string(access->value));
	if (refresh)
		json_object_object_add(o, "refresh_token", json_object_new_string(refresh->value));
	size_t n;
	const char *s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &n);
	char tmp[4200];
	int r = -ENAMETOOLONG;
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		goto out;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	r = fchmod(fd, 0600) ? -errno : write_full(fd, s, n);
	if (!r && fsync(fd))
		r = -errno;
	close(fd);
	if (!r && rename(tmp, path))
		r = -errno;
	if (r)
		unlink(tmp);
out:
	json_object_put(o);	/* the serialized copy goes with it */
	return r;
}

int oauth_load_state(const char *path, const char *provider,
		     struct secret *access, struct secret *refresh)
{
	uint8_t *buf;
	size_t len;
	int r = read_file(path, 65536, &buf, &len);
	if (r)
		return r;
	struct json_object *o = json_tokener_parse((char *)buf), *p, *v;
	explicit_bzero(buf, len);
	free(buf);
	r = -EINVAL;
	if (!o || !json_object_object_get_ex(o, "provider", &p) ||
	    strcmp(json_object_get_string(p), provider))
		goto out;
	r = 0;
	if (access && json_object_object_get_ex(o, "access_token", &v) && json_object_is_type(v, json_type_string))
		r = secret_set_value(access, json_object_get_string(v), (size_t)json_object_get_string_len(v));
	if (!r && refresh && json_object_object_get_ex(o, "refresh_token", &v) && json_object_is_type(v, json_type_string))
		r = secret_set_value(refresh, json_object_get_string(v), (size_t)json_object_get_string_len(v));
out:
	json_object_put(o);
	return r;
}
