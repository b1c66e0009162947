/* proxy/secrets.h - the secrets table and placeholder substitution.
 *
 * The guest only ever holds placeholders.  Each entry pairs a placeholder
 * with the real value and the hosts the value may be sent to.  Substitution
 * replaces a placeholder with the real value only when the request goes to
 * one of its hosts; a placeholder headed anywhere else goes out unchanged and
 * is logged by the entry's name (its source, e.g. "env:GITHUB_TOKEN"),
 * never by value.  Values are wiped from memory when replaced or freed.
 *
 * Placeholders are 8 to 128 characters of [A-Za-z0-9._-], so they survive
 * JSON, form and base64 encoding unchanged and never need escaping; real
 * values are escaped for the context they are written into.
 */
#ifndef KVMBOX_PROXY_SECRETS_H
#define KVMBOX_PROXY_SECRETS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define SECRET_MAX_HOSTS 16
#define SECRET_MAX_VALUE 16384
#define SECRETS_MAX 64

/* One secret.  name and placeholder may be logged; value never. */
struct secret {
	char *name;
	char *placeholder;
	size_t placeholder_len;
	char *value;
	size_t value_len;
	char *hosts[SECRET_MAX_HOSTS];	/* host patterns, as in hostlist.h */
	unsigned nhosts;
	char *prev_value;	/* the value before the last rotation: still masked in
				 * what comes back (a late echo of an earlier request) */
	size_t prev_len;
	bool refresh_only;	/* an OAuth refresh token: substituted only into the
				 * refresh the proxy itself performs (oauth.h),
				 * never by secrets_subst */
};

#define SECRETS_PH_KEY_LEN 32

struct secrets {
	struct secret v[SECRETS_MAX];
	unsigned n;
	/* What a launcher's placeholders derive from (agent.h), kept with a
	 * suspended sandbox so its resume names each secret as before: not
	 * secret (placeholders are the guest's to know). */
	unsigned char ph_key[SECRETS_PH_KEY_LEN];
	bool ph_keyed;
};

/* Encoding of the text a value is substituted into. */
enum subst_enc {
	SUBST_RAW,	/* header values */
	SUBST_JSON,	/* inside a JSON string */
	SUBST_FORM,	/* application/x-www-form-urlencoded */
};

/* What one substitution did (counts, for tests and logs). */
struct subst_stats {
	unsigned replaced;
	unsigned refused;	/* placeholders left alone: host not allowed */
	bool quiet;		/* in: leave the refusals unlogged (the proxy's self-test
				 * endpoint, whose probes are no one's mistake) */
};

void secrets_init(struct secrets *s);
void secrets_fini(struct secrets *s);
/* Add an entry; hosts_csv is "HOST[,HOST...]".  0, -EINVAL (bad
 * placeholder, host or empty value), -EEXIST (placeholder already in use),
 * -ENOSPC, -ENOMEM. */
int secrets_add(struct secrets *s, const char *name, const char *placeholder,
		const char *value, const char *hosts_csv);
/* Parse a command-line spec PLACEHOLDER=env:VAR@HOSTS or
 * PLACEHOLDER=file:PATH@HOSTS, read the value and add it.  On error returns
 * -errno and writes a one-line reason (never the value) into err. */
int secrets_add_spec(struct secrets *s, const char *spec, char *err, size_t errlen);
/* The entry whose placeholder is exactly p[0..len), or NULL. */
struct secret *secrets_find(struct secrets *s, const char *p, size_t len);
/* Replace an entry's real value (token rotation; the old one is kept as
 * prev_value for masking): 0 or -ENOMEM/-EINVAL. */
int secret_set_value(struct secret *e, const char *value, size_t len);
/* Whether e may be sent to host. */
bool secret_allows(const struct secret *e, const char *host, size_t len);

/* Copy in to out, replacing allowed placeholders with their values encoded
 * for enc.  Output length, or -ENOSPC when out (cap bytes) is too small. */
ssize_t secrets_subst(const struct secrets *s, const char *host, size_t hostlen,
		      enum subst_enc enc, const char *in, size_t len,
		      char *out, size_t cap, struct subst_stats *st);
/* The same for one header value, also looking inside "Basic <base64>"
 * credentials of Authorization and Proxy-Authorization (decoded, substituted,
 * re-encoded). */
ssize_t secrets_subst_header(const struct secrets *s, const char *host, size_t hostlen,
			     const char *name, size_t name_len,
			     const char *in, size_t len, char *out, size_t cap,
			     struct subst_stats *st);
/* Whether any placeholder occurs in buf (cheap pre-check). */
bool secrets_any(const struct secrets *s, const char *buf, size_t len);
/* Copy in to out with every real value replaced by its placeholder (for
 * text that goes back to the guest).  Output length, or -ENOSPC. */
ssize_t secrets_redact(const struct secrets *s, const char *in, size_t len, char *out, size_t cap);
/* The longest real value (bytes a stream must hold back to mask values
 * that straddle two reads). */
size_t secrets_max_value(const struct secrets *s);
/* Overwrite, in place, every real value (current or previous) occurring in
 * buf[0..len) with '*' (the length stays, so framing around it stays
 * valid): how many. */
unsigned secrets_mask(const struct secrets *s, char *buf, size_t len);
/* The first offset i >= from where buf[i..len) is a proper prefix of a real
 * value, current or previous (bytes to hold back until more arrive), or len. */
size_t secrets_partial_tail(const struct secrets *s, const char *buf, size_t from, size_t len);
/* Whether tail[0..n) is a proper prefix of v[0..vlen). */
bool secrets_is_partial(const char *tail, size_t n, const char *v, size_t vlen);

#endif
