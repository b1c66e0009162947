/* proxy/oauth.c - token-endpoint recognition, response rewriting and the
 * host-only state file for OAuth refresh interception (see oauth.h). */
#include "proxy/oauth.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "common/util.h"
#include "net/policy.h"
#include "proxy/json.h"

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

bool oauth_refresh_hosts_ok(const char *provider, const struct secret *refresh)
{
	for (unsigned h = 0; h < refresh->nhosts; h++) {
		bool ok = false;
		for (size_t i = 0; i < ARRAY_SIZE(endpoints); i++)
			ok |= !strcmp(endpoints[i].provider, provider) &&
			      !strcasecmp(endpoints[i].host, refresh->hosts[h]);
		if (!ok)
			return false;
	}
	return refresh->nhosts > 0;
}

bool oauth_token_host(const char *host, size_t hostlen)
{
	for (size_t i = 0; i < ARRAY_SIZE(endpoints); i++)
		if (host_match(endpoints[i].host, host, hostlen))
			return true;
	return false;
}

/* ---- token request bodies, parsed as the server parses them ---- */

void oauth_body_free(struct oauth_body *b)
{
	for (unsigned i = 0; i < b->n; i++) {
		explicit_bzero(b->f[i].val, b->f[i].vlen);
		free(b->f[i].key);
		free(b->f[i].val);
	}
	b->n = 0;
}

/* A growing decoded string, bounded by OAUTH_MAX_FIELD. */
struct dstr {
	char buf[OAUTH_MAX_FIELD + 1];
	size_t len;
};

static bool dstr_put(struct dstr *d, unsigned char c)
{
	if (d->len >= OAUTH_MAX_FIELD)
		return false;
	d->buf[d->len++] = (char)c;
	return true;
}

/* Keep one decoded field; a repeated key is ambiguous: -EINVAL. */
static int add_field(struct oauth_body *b, const struct dstr *k, const struct dstr *v)
{
	if (!k->len || b->n >= OAUTH_MAX_FIELDS || memchr(k->buf, 0, k->len) || memchr(v->buf, 0, v->len))
		return -EINVAL;
	for (unsigned i = 0; i < b->n; i++)
		if (b->f[i].klen == k->len && !memcmp(b->f[i].key, k->buf, k->len))
			return -EINVAL;
	struct oauth_field *f = &b->f[b->n];
	f->key = strndup(k->buf, k->len);
	f->val = strndup(v->buf, v->len);
	if (!f->key || !f->val) {
		free(f->key);
		free(f->val);
		return -ENOMEM;
	}
	f->klen = k->len;
	f->vlen = v->len;
	b->n++;
	return 0;
}

/* One form component (up to '&', '=' or the end) percent-decoded into d. */
static int form_component(const char *p, size_t len, size_t *i, bool key, struct dstr *d)
{
	d->len = 0;
	while (*i < len && p[*i] != '&' && !(key && p[*i] == '=')) {
		char c = p[*i];
		if (c == '%') {
			int h = *i + 2 < len ? hex_digit(p[*i + 1]) : -1, l = h >= 0 ? hex_digit(p[*i + 2]) : -1;
			if (l < 0 || !dstr_put(d, (unsigned char)(h << 4 | l)))
				return -EINVAL;
			*i += 3;
			continue;
		}
		if (!dstr_put(d, c == '+' ? ' ' : (unsigned char)c))
			return -EINVAL;
		(*i)++;
	}
	return 0;
}

static int parse_form(const char *p, size_t len, struct oauth_body *b)
{
	static struct dstr k, v;	/* single-threaded scratch, wiped below */
	size_t i = 0;
	int r = 0;
	while (!r && i < len) {
		r = form_component(p, len, &i, true, &k);
		if (!r && (i >= len || p[i] != '='))
			r = -EINVAL;	/* a key without '=' is read differently by servers */
		if (!r) {
			i++;
			r = form_component(p, len, &i, false, &v);
		}
		if (!r)
			r = add_field(b, &k, &v);
		if (!r && i < len && ++i == len)
			r = -EINVAL;	/* a trailing '&' */
	}
	explicit_bzero(&v, sizeof(v));
	return r;
}

static size_t json_ws(const char *p, size_t len, size_t i)
{
	while (i < len && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r'))
		i++;
	return i;
}

static bool put_utf8(struct dstr *d, uint32_t cp)
{
	char u[4];
	size_t n = utf8_encode(cp, u);
	for (size_t i = 0; i < n; i++)
		if (!dstr_put(d, (unsigned char)u[i]))
			return false;
	return true;
}

/* A JSON string at p[*i] == '"' decoded into d (ASCII and \u escapes only:
 * a token request has no use for raw UTF-8).  0 or -EINVAL. */
static int json_string(const char *p, size_t len, size_t *i, struct dstr *d)
{
	d->len = 0;
	if (*i >= len || p[*i] != '"')
		return -EINVAL;
	for (size_t k = *i + 1; k < len; k++) {
		unsigned char c = (unsigned char)p[k];
		if (c == '"') {
			*i = k + 1;
			return 0;
		}
		if (c < 0x20 || c >= 0x80)
			return -EINVAL;
		if (c != '\\') {
			if (!dstr_put(d, c))
				return -EINVAL;
			continue;
		}
		if (++k >= len)
			return -EINVAL;
		const char *esc = strchr("\"\\/bfnrt", p[k]);
		if (p[k] && esc) {
			static const char dec[] = "\"\\/\b\f\n\r\t";
			if (!dstr_put(d, (unsigned char)dec[esc - "\"\\/bfnrt"]))
				return -EINVAL;
			continue;
		}
		long cp = p[k] == 'u' ? hex4_value(p + k + 1, len - k - 1) : -1, lo;
		if (cp <= 0)
			return -EINVAL;
		k += 4;
		if (cp >= 0xDC00 && cp <= 0xDFFF)
			return -EINVAL;
		if (cp >= 0xD800 && cp <= 0xDBFF) {
			lo = k + 2 < len && p[k + 1] == '\\' && p[k + 2] == 'u' ? hex4_value(p + k + 3, len - k - 3) : -1;
			if (lo < 0xDC00 || lo > 0xDFFF)
				return -EINVAL;
			cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
			k += 6;
		}
		if (!put_utf8(d, cp))
			return -EINVAL;
	}
	return -EINVAL;
}

static int parse_json(const char *p, size_t len, struct oauth_body *b)
{
	static struct dstr k, v;	/* single-threaded scratch, wiped below */
	size_t i = json_ws(p, len, 0);
	int r = i < len && p[i] == '{' ? 0 : -EINVAL;
	i = json_ws(p, len, i + 1);
	if (!r && i < len && p[i] == '}') {
		i++;
		goto end;
	}
	while (!r) {
		r = json_string(p, len, &i, &k);
		i = json_ws(p, len, i);
		if (!r && (i >= len || p[i] != ':'))
			r = -EINVAL;
		if (!r) {
			i = json_ws(p, len, i + 1);
			r = json_string(p, len, &i, &v);
		}
		if (!r)
			r = add_field(b, &k, &v);
		i = json_ws(p, len, i);
		if (r || i >= len || (p[i] != ',' && p[i] != '}')) {
			r = -EINVAL;
			break;
		}
		if (p[i++] == '}')
			break;
		i = json_ws(p, len, i);
	}
end:
	explicit_bzero(&v, sizeof(v));
	if (!r && json_ws(p, len, i) != len)
		r = -EINVAL;
	return r;
}

/* "type" or "type; charset=utf-8" (case-insensitive, optional spaces). */
static bool media_type_is(const char *ct, size_t len, const char *type)
{
	size_t tl = strlen(type);
	if (len < tl || strncasecmp(ct, type, tl))
		return false;
	const char *p = ct + tl, *e = ct + len;
	while (p < e && (*p == ' ' || *p == '\t'))
		p++;
	if (p == e)
		return true;
	if (*p++ != ';')
		return false;
	while (p < e && (*p == ' ' || *p == '\t'))
		p++;
	while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	return (e - p == 13 && !strncasecmp(p, "charset=utf-8", 13)) ||
	       (e - p == 15 && !strncasecmp(p, "charset=\"utf-8\"", 15));
}

int oauth_body_parse(const char *ctype, size_t ctlen, const char *body, size_t len,
		     struct oauth_body *b)
{
	memset(b, 0, sizeof(*b));
	int r = -EINVAL;
	if (media_type_is(ctype, ctlen, "application/json")) {
		r = parse_json(body, len, b);
	} else if (media_type_is(ctype, ctlen, "application/x-www-form-urlencoded")) {
		b->form = true;
		r = parse_form(body, len, b);
	}
	if (r)
		oauth_body_free(b);
	return r;
}

const struct oauth_field *oauth_body_get(const struct oauth_body *b, const char *key)
{
	for (unsigned i = 0; i < b->n; i++)
		if (!strcmp(b->f[i].key, key))
			return &b->f[i];
	return NULL;
}

bool oauth_body_is_refresh(const struct oauth_body *b, const struct secrets *s,
			   const char *placeholder)
{
	const struct oauth_field *gt = oauth_body_get(b, "grant_type");
	const struct oauth_field *rt = oauth_body_get(b, "refresh_token");
	if (!gt || !rt || strcmp(gt->val, "refresh_token") || strcmp(rt->val, placeholder))
		return false;
	for (unsigned i = 0; i < b->n; i++) {
		const struct oauth_field *f = &b->f[i];
		if (secrets_any(s, f->key, f->klen) || (f != rt && secrets_any(s, f->val, f->vlen)))
			return false;
	}
	return true;
}

/* Append s[0..len) encoded for the body's own format. */
static bool put_enc(char *out, size_t cap, size_t *o, bool form, const char *s, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		char t[8];
		size_t n = 0;
		if (form ? (isalnum(c) || strchr("-._~", c)) : (c >= 0x20 && c != '"' && c != '\\')) {
			t[n++] = (char)c;
		} else if (form) {
			t[n++] = '%';
			t[n++] = hex[c >> 4];
			t[n++] = hex[c & 15];
		} else {
			n = (size_t)snprintf(t, sizeof(t), "\\u%04x", c);
		}
		if (*o + n > cap)
			return false;
		memcpy(out + *o, t, n);
		*o += n;
	}
	return true;
}

static bool put_lit(char *out, size_t cap, size_t *o, const char *lit)
{
	size_t n = strlen(lit);
	if (*o + n > cap)
		return false;
	memcpy(out + *o, lit, n);
	*o += n;
	return true;
}

int oauth_body_build(const struct oauth_body *b, const char *key, const char *value,
		     size_t vlen, char **out, size_t *outlen)
{
	size_t cap = 2 + 6 * (vlen + 8);
	for (unsigned i = 0; i < b->n; i++)
		cap += 6 * (b->f[i].klen + b->f[i].vlen) + 8;
	char *buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	size_t o = 0;
	bool ok = b->form || put_lit(buf, cap, &o, "{");
	for (unsigned i = 0; ok && i < b->n; i++) {
		const struct oauth_field *f = &b->f[i];
		bool sub = !strcmp(f->key, key);
		const char *v = sub ? value : f->val;
		size_t vl = sub ? vlen : f->vlen;
		ok = put_lit(buf, cap, &o, i ? (b->form ? "&" : ",") : "") &&
		     (b->form || put_lit(buf, cap, &o, "\"")) && put_enc(buf, cap, &o, b->form, f->key, f->klen) &&
		     put_lit(buf, cap, &o, b->form ? "=" : "\":\"") && put_enc(buf, cap, &o, b->form, v, vl) &&
		     (b->form || put_lit(buf, cap, &o, "\""));
	}
	ok = ok && (b->form || put_lit(buf, cap, &o, "}"));
	if (!ok) {	/* cap is computed to fit: never happens */
		explicit_bzero(buf, cap);
		free(buf);
		return -ENOMEM;
	}
	*out = buf;
	*outlen = o;
	return 0;
}

bool oauth_carries_placeholder(const struct secrets *s, const char *buf, size_t len)
{
	if (secrets_any(s, buf, len))
		return true;
	if (!memchr(buf, '%', len) && !memchr(buf, '+', len))
		return false;
	char *dec = malloc(len ? len : 1);
	if (!dec)
		return true;	/* cannot tell: treat as carrying one */
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		int h = buf[i] == '%' && i + 2 < len ? hex_digit(buf[i + 1]) : -1;
		int l = h >= 0 ? hex_digit(buf[i + 2]) : -1;
		if (l >= 0) {
			dec[o++] = (char)(h << 4 | l);
			i += 2;
		} else {
			dec[o++] = buf[i] == '+' ? ' ' : buf[i];
		}
	}
	bool any = secrets_any(s, dec, o);
	free(dec);
	return any;
}

/* ---- identity tokens ---- */

#define JWT_PLACEHOLDER_SIG "a3ZtYm94LXBsYWNlaG9sZGVyLXNpZ25hdHVyZQ"	/* "kvmbox-placeholder-signature" */

static int b64url_value(char c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' : c >= 'a' && c <= 'z' ? c - 'a' + 26 :
	       c >= '0' && c <= '9' ? c - '0' + 52 : c == '-' ? 62 : c == '_' ? 63 : -1;
}

/* Decode unpadded base64url s[0..n) into a malloc'd buffer: its length, or
 * -EINVAL. */
static ssize_t b64url_decode(const char *s, size_t n, char **out)
{
	if (n % 4 == 1)
		return -EINVAL;
	char *o = malloc(n * 3 / 4 + 1);
	if (!o)
		return -ENOMEM;
	size_t k = 0;
	uint32_t acc = 0;
	for (size_t i = 0; i < n; i++) {
		int v = b64url_value(s[i]);
		if (v < 0) {
			free(o);
			return -EINVAL;
		}
		acc = acc << 6 | (uint32_t)v;
		if (i % 4 == 3) {
			o[k++] = (char)(acc >> 16);
			o[k++] = (char)(acc >> 8);
			o[k++] = (char)acc;
		}
	}
	if (n % 4 == 2)
		o[k++] = (char)(acc >> 4);
	else if (n % 4 == 3) {
		o[k++] = (char)(acc >> 10);
		o[k++] = (char)(acc >> 2);
	}
	o[k] = 0;
	*out = o;
	return (ssize_t)k;
}

/* Whether s[0..n) is base64url of a strict JSON object. */
static bool b64url_json_object(const char *s, size_t n)
{
	char *dec;
	ssize_t len = b64url_decode(s, n, &dec);
	if (len < 0)
		return false;
	struct json_object *o = json_strict_object(dec, (size_t)len);
	free(dec);
	json_object_put(o);
	return o != NULL;
}

int oauth_jwt_unsign(const char *jwt, size_t len, char **out)
{
	const char *d1 = memchr(jwt, '.', len);
	const char *d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - jwt)) : NULL;
	if (!d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - jwt)) ||
	    !b64url_json_object(jwt, (size_t)(d1 - jwt)) ||
	    !b64url_json_object(d1 + 1, (size_t)(d2 - d1 - 1)))
		return -EINVAL;
	size_t keep = (size_t)(d2 - jwt) + 1;
	*out = malloc(keep + sizeof(JWT_PLACEHOLDER_SIG));
	if (!*out)
		return -ENOMEM;
	memcpy(*out, jwt, keep);
	memcpy(*out + keep, JWT_PLACEHOLDER_SIG, sizeof(JWT_PLACEHOLDER_SIG));
	return 0;
}

/* Replace the id_token member of o (when there) by its unsigned copy. */
static int unsign_id_token(struct json_object *o)
{
	struct json_object *v;
	if (!json_object_object_get_ex(o, "id_token", &v))
		return 0;
	char *u;
	if (!json_object_is_type(v, json_type_string) ||
	    oauth_jwt_unsign(json_object_get_string(v), (size_t)json_object_get_string_len(v), &u) < 0)
		return -EINVAL;
	int r = json_object_object_add(o, "id_token", json_object_new_string(u)) ? -ENOMEM : 0;
	free(u);
	return r;
}

/* ---- token responses ---- */

/* Replace string member key's value with ph after storing it in e; a token
 * member with no secret to bind it to is refused. */
static int swap_token(struct json_object *o, const char *key, struct secret *e)
{
	struct json_object *v;
	if (!json_object_object_get_ex(o, key, &v))
		return 0;
	if (!e || !json_object_is_type(v, json_type_string))
		return -EINVAL;
	int r = secret_set_value(e, json_object_get_string(v), (size_t)json_object_get_string_len(v));
	if (r)
		return r;
	return json_object_object_add(o, key, json_object_new_string(e->placeholder)) ? -ENOMEM : 0;
}

/* Whether every member named like a token is one kvmbox knows how to treat:
 * access_token and refresh_token (bound to placeholders), id_token (an
 * identity assertion, handed over unsigned) and token_type, and only at
 * the top.  Anything else may be a credential
 * kvmbox would hand the guest verbatim. */
static bool token_members_known(struct json_object *o, unsigned depth)
{
	if (depth > 16)
		return false;
	if (json_object_is_type(o, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(o); i++)
			if (!token_members_known(json_object_array_get_idx(o, i), depth + 1))
				return false;
		return true;
	}
	if (!json_object_is_type(o, json_type_object))
		return true;
	json_object_object_foreach(o, key, val) {
		bool known = !strcmp(key, "token_type") ||
			     (!depth && (!strcmp(key, "access_token") || !strcmp(key, "refresh_token") ||
					 !strcmp(key, "id_token")));
		if ((!known && strcasestr(key, "token")) || !token_members_known(val, depth + 1))
			return false;
	}
	return true;
}

int oauth_rewrite_response(struct secret *access, struct secret *refresh,
			   const char *body, size_t len, char **out, size_t *outlen)
{
	struct json_object *o = json_strict_object(body, len), *at;
	int r = -EINVAL;
	if (!o || !json_object_object_get_ex(o, "access_token", &at) || !token_members_known(o, 0))
		goto done;
	/* everything that can refuse the response before anything rotates */
	struct json_object *rt;
	r = unsign_id_token(o);
	if (!r && (!access || !json_object_is_type(at, json_type_string) ||
		   (json_object_object_get_ex(o, "refresh_token", &rt) &&
		    (!refresh || !json_object_is_type(rt, json_type_string)))))
		r = -EINVAL;
	if (!r)
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
	json_object_put(o);
	return r;
}

long long oauth_expires_in(const char *body, size_t len)
{
	struct json_object *o = json_strict_object(body, len), *v;
	long long s = -1;
	if (o && json_object_object_get_ex(o, "expires_in", &v) && json_object_is_type(v, json_type_int)) {
		int64_t n = json_object_get_int64(v);
		if (n > 0 && n <= 10LL * 366 * 24 * 3600)
			s = n;
	}
	json_object_put(o);
	return s;
}

/* A string member of o, or NULL. */
static const char *str_member(struct json_object *o, const char *key, size_t *len)
{
	struct json_object *v;
	if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	*len = (size_t)json_object_get_string_len(v);
	return json_object_get_string(v);
}

size_t oauth_error_body(const struct secrets *s, int status, const char *body, size_t len,
			char *out, size_t cap)
{
	struct json_object *o = json_strict_object(body, len);
	size_t el = 0, dl = 0;
	const char *err = str_member(o, "error", &el), *desc = str_member(o, "error_description", &dl);
	for (size_t i = 0; err && i < el; i++)	/* RFC 6749 5.2: %x20-21 / %x23-5B / %x5D-7E */
		if (err[i] < 0x20 || err[i] > 0x7e || err[i] == '"' || err[i] == '\\')
			err = NULL;
	char d[512] = "", e[64] = "upstream_error";
	if (err && el < sizeof(e))
		snprintf(e, sizeof(e), "%s", err);
	if (desc) {
		char tmp[2 * SECRET_MAX_VALUE];
		ssize_t n = secrets_redact(s, desc, MIN(dl, sizeof(tmp) / 2), tmp, sizeof(tmp));
		size_t o2 = 0;
		for (ssize_t i = 0; i < n && o2 + 12 < sizeof(d);) {
			ssize_t w = i;	/* a token-like word: maybe a spent token kvmbox no longer holds */
			bool digit = false;
			while (w < n && (isalnum((unsigned char)tmp[w]) || strchr("-._~+/=", tmp[w])))
				digit |= isdigit((unsigned char)tmp[w++]);
			if (w - i >= 12 && digit) {
				memcpy(d + o2, "[redacted]", 10);
				o2 += 10;
				i = w;
				continue;
			}
			unsigned char c = (unsigned char)tmp[i++];
			if (c < 0x20 || c == '"' || c == '\\' || c >= 0x7f)
				c = ' ';
			d[o2++] = (char)c;
		}
		d[o2] = 0;
		explicit_bzero(tmp, sizeof(tmp));
	}
	json_object_put(o);
	int n = snprintf(out, cap, "{\"error\":\"%s\",\"error_description\":\"%s%s(kvmbox: the token endpoint answered %d)\"}",
			 e, d, d[0] ? " " : "", status);
	return n < 0 ? 0 : MIN((size_t)n, cap ? cap - 1 : 0);
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
