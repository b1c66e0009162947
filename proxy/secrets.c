/* proxy/secrets.c - secrets table and placeholder substitution (secrets.h). */
#include "proxy/secrets.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "common/log.h"
#include "common/util.h"
#include "net/policy.h"

void secrets_init(struct secrets *s)
{
	memset(s, 0, sizeof(*s));
}

/* Real values live in pages of their own: locked in memory where the
 * memlock limit allows (never written to swap), left out of core dumps,
 * zero in a forked child, and wiped before they are unmapped. */
static size_t locked_size(size_t len)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	return (len + 1 + page - 1) / page * page;
}

static char *locked_alloc(size_t len)
{
	size_t sz = locked_size(len);
	char *p = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	madvise(p, sz, MADV_DONTDUMP);
	madvise(p, sz, MADV_WIPEONFORK);
	if (mlock(p, sz) < 0)
		log_once(LOG_DEBUG, "secrets: cannot lock a value in memory (RLIMIT_MEMLOCK): %s",
			 strerror(errno));
	return p;
}

static void locked_free(char *p, size_t len)
{
	if (p) {
		explicit_bzero(p, len);
		munmap(p, locked_size(len));
	}
}

static void secret_clear(struct secret *e)
{
	free(e->name);
	free(e->placeholder);
	locked_free(e->value, e->value_len);
	locked_free(e->prev_value, e->prev_len);
	for (unsigned i = 0; i < e->nhosts; i++)
		free(e->hosts[i]);
	memset(e, 0, sizeof(*e));
}

void secrets_fini(struct secrets *s)
{
	for (unsigned i = 0; i < s->n; i++)
		secret_clear(&s->v[i]);
	s->n = 0;
}

static bool placeholder_valid(const char *p)
{
	size_t n = strlen(p);
	if (n < 8 || n > 128)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= 'A' && p[i] <= 'Z') ||
		      (p[i] >= '0' && p[i] <= '9') || p[i] == '.' || p[i] == '_' || p[i] == '-'))
			return false;
	return true;
}

int secret_set_value(struct secret *e, const char *value, size_t len)
{
	if (len == 0 || len > SECRET_MAX_VALUE)
		return -EINVAL;
	char *v = locked_alloc(len);
	if (!v)
		return -ENOMEM;
	memcpy(v, value, len);
	v[len] = 0;
	locked_free(e->prev_value, e->prev_len);
	e->prev_value = e->value;
	e->prev_len = e->value_len;
	e->value = v;
	e->value_len = len;
	return 0;
}

static int add_hosts(struct secret *e, const char *csv)
{
	const char *p = csv;
	while (*p) {
		const char *c = strchr(p, ',');
		size_t n = c ? (size_t)(c - p) : strlen(p);
		char buf[256];	/* "*." and a name of up to 253 */
		if (n == 0 || n >= sizeof(buf))
			return -EINVAL;
		memcpy(buf, p, n);
		buf[n] = 0;
		const char *name = buf[0] == '*' && buf[1] == '.' ? buf + 2 : buf;
		if (!host_valid(name, strlen(name)) || e->nhosts >= SECRET_MAX_HOSTS)
			return -EINVAL;
		if (!(e->hosts[e->nhosts] = strdup(buf)))
			return -ENOMEM;
		e->nhosts++;
		p += n + (c ? 1 : 0);
		if (c && !*p)
			return -EINVAL;
	}
	return e->nhosts ? 0 : -EINVAL;
}

int secrets_add(struct secrets *s, const char *name, const char *placeholder,
		const char *value, const char *hosts_csv)
{
	if (!placeholder_valid(placeholder))
		return -EINVAL;
	if (secrets_find(s, placeholder, strlen(placeholder)))
		return -EEXIST;
	if (s->n >= SECRETS_MAX)
		return -ENOSPC;
	struct secret *e = &s->v[s->n];
	memset(e, 0, sizeof(*e));
	int r = -ENOMEM;
	e->name = strdup(name);
	e->placeholder = strdup(placeholder);
	e->placeholder_len = strlen(placeholder);
	if (!e->name || !e->placeholder)
		goto fail;
	r = secret_set_value(e, value, strlen(value));
	if (r)
		goto fail;
	r = add_hosts(e, hosts_csv);
	if (r)
		goto fail;
	s->n++;
	return 0;
fail:
	secret_clear(e);
	return r;
}

int secrets_add_spec(struct secrets *s, const char *spec, char *err, size_t errlen)
{
	char *copy = strdup(spec);
	if (!copy)
		return -ENOMEM;
	int r = -EINVAL;
	char *eq = strchr(copy, '='), *at = strrchr(copy, '@');
	if (!eq || !at || at < eq) {
		snprintf(err, errlen, "--secret wants PLACEHOLDER=env:VAR@HOST[,HOST...] or PLACEHOLDER=file:PATH@HOST[,HOST...]");
		goto out;
	}
	*eq = 0;
	*at = 0;
	const char *ph = copy, *src = eq + 1, *hosts = at + 1;
	char *value = NULL;
	size_t vlen = 0;
	if (!strncmp(src, "env:", 4)) {
		const char *v = getenv(src + 4);
		if (!v || !*v) {
			snprintf(err, errlen, "--secret %s: environment variable %s is not set", ph, src + 4);
			goto out;
		}
		value = strdup(v);
		vlen = value ? strlen(value) : 0;
	} else if (!strncmp(src, "file:", 5)) {
		uint8_t *buf;
		r = read_file(src + 5, SECRET_MAX_VALUE, &buf, &vlen);
		if (r) {
			snprintf(err, errlen, "--secret %s: cannot read %s: %s", ph, src + 5, strerror(-r));
			goto out;
		}
		value = (char *)buf;
		while (vlen && (value[vlen - 1] == '\n' || value[vlen - 1] == '\r'))
			value[--vlen] = 0;
	} else {
		snprintf(err, errlen, "--secret %s: source must be env:VAR or file:PATH", ph);
		r = -EINVAL;
		goto out;
	}
	if (!value) {
		r = -ENOMEM;
		goto out;
	}
	if (vlen == 0 || strlen(value) != vlen) {
		snprintf(err, errlen, "--secret %s: %s is empty or holds a NUL byte", ph, src);
		r = -EINVAL;
	} else {
		r = secrets_add(s, src, ph, value, hosts);
		if (r == -EEXIST)
			snprintf(err, errlen, "--secret %s: placeholder given twice", ph);
		else if (r)
			snprintf(err, errlen, "--secret %s: bad placeholder (8-128 of A-Z a-z 0-9 . _ -) or host list '%s'", ph, hosts);
	}
	explicit_bzero(value, vlen);	/* the heap copy; the table's is locked */
	free(value);
out:
	free(copy);
	return r;
}

struct secret *secrets_find(struct secrets *s, const char *p, size_t len)
{
	for (unsigned i = 0; i < s->n; i++)
		if (s->v[i].placeholder_len == len && !memcmp(s->v[i].placeholder, p, len))
			return &s->v[i];
	return NULL;
}

bool secret_allows(const struct secret *e, const char *host, size_t len)
{
	for (unsigned i = 0; i < e->nhosts; i++)
		if (host_match(e->hosts[i], host, len))
			return true;
	return false;
}

/* The secret whose placeholder starts at in[0..len), or NULL. */
static const struct secret *match_at(const struct secrets *s, const char *in, size_t len)
{
	for (unsigned i = 0; i < s->n; i++) {
		const struct secret *e = &s->v[i];
		if (e->placeholder_len <= len && in[0] == e->placeholder[0] &&
		    !memcmp(in, e->placeholder, e->placeholder_len))
			return e;
	}
	return NULL;
}

bool secrets_any(const struct secrets *s, const char *buf, size_t len)
{
	for (unsigned i = 0; i < s->n; i++)
		if (memmem(buf, len, s->v[i].placeholder, s->v[i].placeholder_len))
			return true;
	return false;
}

/* The secret whose real value starts at in[0..len), or NULL. */
static const struct secret *value_at(const struct secrets *s, const char *in, size_t len)
{
	for (unsigned i = 0; i < s->n; i++) {
		const struct secret *e = &s->v[i];
		if (e->value_len && e->value_len <= len && in[0] == e->value[0] &&
		    !memcmp(in, e->value, e->value_len))
			return e;
	}
	return NULL;
}

ssize_t secrets_redact(const struct secrets *s, const char *in, size_t len, char *out, size_t cap)
{
	size_t o = 0;
	for (size_t i = 0; i < len;) {
		const struct secret *e = value_at(s, in + i, len - i);
		const char *src = e ? e->placeholder : in + i;
		size_t n = e ? e->placeholder_len : 1;
		if (o + n > cap)
			return -ENOSPC;
		memcpy(out + o, src, n);
		o += n;
		i += e ? e->value_len : 1;
	}
	return (ssize_t)o;
}

size_t secrets_max_value(const struct secrets *s)
{
	size_t m = 0;
	for (unsigned i = 0; i < s->n; i++)
		m = MAX(m, MAX(s->v[i].value_len, s->v[i].prev_len));
	return m;
}

/* Overwrite every occurrence of v[0..vlen) in buf with '*': how many. */
static unsigned mask_one(char *buf, size_t len, const char *v, size_t vlen)
{
	unsigned n = 0;
	char *p = buf;
	while (vlen && (p = memmem(p, len - (size_t)(p - buf), v, vlen))) {
		memset(p, '*', vlen);
		p += vlen;
		n++;
	}
	return n;
}

unsigned secrets_mask(const struct secrets *s, char *buf, size_t len)
{
	unsigned n = 0;
	for (unsigned k = 0; k < s->n; k++)
		n += mask_one(buf, len, s->v[k].value, s->v[k].value_len) +
		     mask_one(buf, len, s->v[k].prev_value, s->v[k].prev_len);
	return n;
}

bool secrets_is_partial(const char *tail, size_t n, const char *v, size_t vlen)
{
	return vlen > n && !memcmp(tail, v, n);
}

size_t secrets_partial_tail(const struct secrets *s, const char *buf, size_t from, size_t len)
{
	size_t maxv = secrets_max_value(s);
	size_t i = len > maxv && len - maxv > from ? len - maxv : from;
	for (; i < len; i++)
		for (unsigned k = 0; k < s->n; k++) {
			const struct secret *e = &s->v[k];
			if (secrets_is_partial(buf + i, len - i, e->value, e->value_len) ||
			    secrets_is_partial(buf + i, len - i, e->prev_value, e->prev_len))
				return i;
		}
	return len;
}

/* Append value encoded for enc at out+*o: 0 or -ENOSPC. */
static int put_value(const struct secret *e, enum subst_enc enc, char *out, size_t cap, size_t *o)
{
	static const char hex[] = "0123456789ABCDEF";
	for (size_t i = 0; i < e->value_len; i++) {
		unsigned char c = (unsigned char)e->value[i];
		char tmp[8];
		size_t n = 0;
		if (enc == SUBST_JSON && (c == '"' || c == '\\')) {
			tmp[n++] = '\\';
			tmp[n++] = (char)c;
		} else if (enc == SUBST_JSON && c < 0x20) {
			n = (size_t)snprintf(tmp, sizeof(tmp), "\\u%04x", c);
		} else if (enc == SUBST_FORM && !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
						  (c >= '0' && c <= '9') || strchr("-._~", c))) {
			tmp[n++] = '%';
			tmp[n++] = hex[c >> 4];
			tmp[n++] = hex[c & 15];
		} else {
			tmp[n++] = (char)c;
		}
		if (*o + n > cap)
			return -ENOSPC;
		memcpy(out + *o, tmp, n);
		*o += n;
	}
	return 0;
}

ssize_t secrets_subst(const struct secrets *s, const char *host, size_t hostlen,
		      enum subst_enc enc, const char *in, size_t len,
		      char *out, size_t cap, struct subst_stats *st)
{
	size_t o = 0, i = 0;
	while (i < len) {
		const struct secret *e = s->n ? match_at(s, in + i, len - i) : NULL;
		if (e && !e->refresh_only && secret_allows(e, host, hostlen)) {
			if (put_value(e, enc, out, cap, &o))
				return -ENOSPC;
			i += e->placeholder_len;
			st->replaced++;
			continue;
		}
		if (e) {
			st->refused++;
			if (st->quiet)
				;
			else if (e->refresh_only)
				log_warn("proxy: placeholder of OAuth refresh token %s sent to %.*s outside the "
					 "refresh kvmbox performs; left unchanged", e->name, (int)MIN(hostlen, 253), host);
			else
				log_warn("proxy: placeholder of secret %s sent to %.*s, not one of its hosts; left unchanged",
					 e->name, (int)MIN(hostlen, 253), host);
			if (o + e->placeholder_len > cap)
				return -ENOSPC;
			memcpy(out + o, in + i, e->placeholder_len);
			o += e->placeholder_len;
			i += e->placeholder_len;
			continue;
		}
		if (o >= cap)
			return -ENOSPC;
		out[o++] = in[i++];
	}
	return (ssize_t)o;
}

/* "Basic <base64>" credentials: decode, substitute, re-encode. */
static ssize_t subst_basic(const struct secrets *s, const char *host, size_t hostlen,
			   const char *b64, size_t len, char *out, size_t cap,
			   struct subst_stats *st)
{
	unsigned char dec[3 * 1024], sub[3 * 1024 + 2 * SECRET_MAX_VALUE];
	if (len == 0 || len % 4 || len > 4 * 1024)
		return -EINVAL;
	int n = EVP_DecodeBlock(dec, (const unsigned char *)b64, (int)len);
	if (n < 0)
		return -EINVAL;
	if (b64[len - 1] == '=')
		n--;
	if (b64[len - 2] == '=')
		n--;
	ssize_t m = secrets_subst(s, host, hostlen, SUBST_RAW, (char *)dec, (size_t)n,
				  (char *)sub, sizeof(sub), st);
	explicit_bzero(dec, sizeof(dec));
	if (m < 0)
		return m;
	size_t need = 6 + 4 * (((size_t)m + 2) / 3) + 1;
	if (need > cap) {
		explicit_bzero(sub, sizeof(sub));
		return -ENOSPC;
	}
	memcpy(out, "Basic ", 6);
	int enc = EVP_EncodeBlock((unsigned char *)out + 6, sub, (int)m);
	explicit_bzero(sub, sizeof(sub));
	return 6 + enc;
}

ssize_t secrets_subst_header(const struct secrets *s, const char *host, size_t hostlen,
			     const char *name, size_t name_len,
			     const char *in, size_t len, char *out, size_t cap,
			     struct subst_stats *st)
{
	bool auth = (name_len == 13 && !strncasecmp(name, "authorization", 13)) ||
		    (name_len == 19 && !strncasecmp(name, "proxy-authorization", 19));
	if (auth && len > 6 && !strncasecmp(in, "Basic ", 6)) {
		const char *b = in + 6;
		size_t bl = len - 6;
		while (bl && *b == ' ') {
			b++;
			bl--;
		}
		struct subst_stats t = { 0, 0, st->quiet };
		ssize_t r = subst_basic(s, host, hostlen, b, bl, out, cap, &t);
		if (r >= 0 && t.replaced) {
			st->replaced += t.replaced;
			st->refused += t.refused;
			return r;
		}
		if (r >= 0)
			st->refused += t.refused;
		if (r == -ENOSPC)
			return r;
		/* nothing replaced (or not base64): fall through unchanged */
	}
	return secrets_subst(s, host, hostlen, SUBST_RAW, in, len, out, cap, st);
}
