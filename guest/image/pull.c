/* guest/image/pull.c - `kvmbox pull`: fetch an image over the Docker Registry
 * HTTP API v2 with libcurl and unpack it into the image store.
 *
 * Flow: GET /v2/REPO/manifests/REF (an index or manifest list picks
 * linux/amd64, then that manifest by digest), then the config and every
 * layer into the blob cache (CACHE/blobs/sha256/HEX), each verified with
 * SHA-256 (OpenSSL EVP) before use, then the layers applied in order into a
 * temporary image directory that is renamed into place at the very end.
 *
 * Auth: anonymous first; a 401 with "WWW-Authenticate: Bearer realm=...,
 * service=...,scope=..." makes us ask the realm for a token (with Basic
 * credentials from KVMBOX_REGISTRY_AUTH=user:password when set) and retry
 * once; a Basic challenge is answered with those credentials.  Tokens and
 * credentials are never logged, and libcurl does not send them on a
 * redirect to another host (blob storage redirects).
 *
 * Transport: https only, except for loopback registries (localhost,
 * 127.0.0.0/8, [::1]) and --insecure, which use http; redirects may not
 * change that.  Blob downloads resume: bytes land in HEX.partial and a
 * later pull asks for the rest with a Range request (a server that answers
 * 200 instead of 206 restarts the file).  A blob larger than its descriptor
 * says is cut off; a digest mismatch deletes the partial file and names the
 * digest.
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "guest/image/image.h"

#define MANIFEST_MAX (4u << 20)
#define TOKEN_RESPONSE_MAX (64u << 10)
#define ACCEPT_MANIFESTS                                                   \
	"Accept: application/vnd.oci.image.index.v1+json, "                \
	"application/vnd.docker.distribution.manifest.list.v2+json, "     \
	"application/vnd.oci.image.manifest.v1+json, "                     \
	"application/vnd.docker.distribution.manifest.v2+json"

/* A registry session: one curl handle, the base URL and the current token. */
struct registry {
	CURL *curl;
	struct image_ref ref;
	char base[400];		/* scheme://host[:port] */
	const char *protocols;	/* "https" or "http,https" */
	char auth_header[8300];	/* "Authorization: ..." or "" (a secret) */
	bool basic;		/* send KVMBOX_REGISTRY_AUTH as Basic auth */
	bool tty;
	char blobs[4200];	/* blob cache directory */
};

/* A growable response body with a hard cap. */
struct body {
	char *p;
	size_t n, max;
	bool overflow;
};

/* Headers we look at. */
struct resp {
	long status;
	char content_type[256];
	char www_auth[2048];
	char digest[80];
};

/* A blob download in progress. */
struct dl {
	struct registry *reg;
	const struct oci_desc *desc;
	int fd;
	int64_t offset;		/* bytes in the partial file */
	int64_t start;		/* where this transfer began */
	bool checked_status;
	int err;		/* -errno from a write, or 0 */
	uint64_t t0;
	uint64_t last_draw;	/* progress bar: last repaint (ns) */
	char err_body[256];
	size_t err_n;
};

static size_t body_write(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct body *b = arg;
	size_t n = size * nmemb;
	if (b->n + n > b->max) {
		b->overflow = true;
		return 0;
	}
	char *np = realloc(b->p, b->n + n + 1);
	if (!np)
		return 0;
	b->p = np;
	memcpy(b->p + b->n, ptr, n);
	b->n += n;
	b->p[b->n] = '\0';
	return n;
}

/* Copy a header's value (without CRLF) when its name matches. */
static void header_value(const char *line, size_t n, const char *name, char *out,
			 size_t len)
{
	size_t nl = strlen(name);
	if (n <= nl || strncasecmp(line, name, nl) || line[nl] != ':')
		return;
	const char *v = line + nl + 1;
	size_t vn = n - nl - 1;
	while (vn && (*v == ' ' || *v == '\t'))
		v++, vn--;
	while (vn && (v[vn - 1] == '\r' || v[vn - 1] == '\n'))
		vn--;
	if (vn >= len)
		vn = len - 1;
	memcpy(out, v, vn);
	out[vn] = '\0';
}

static size_t header_cb(char *line, size_t size, size_t nmemb, void *arg)
{
	struct resp *r = arg;
	size_t n = size * nmemb;
	if (n > 5 && !strncmp(line, "HTTP/", 5)) {	/* a new response (redirect) */
		r->content_type[0] = r->www_auth[0] = r->digest[0] = '\0';
		return n;
	}
	header_value(line, n, "Content-Type", r->content_type, sizeof(r->content_type));
	header_value(line, n, "WWW-Authenticate", r->www_auth, sizeof(r->www_auth));
	header_value(line, n, "Docker-Content-Digest", r->digest, sizeof(r->digest));
	return n;
}

/* Set up one request on the session's handle. */
static void prepare(struct registry *reg, const char *url, struct curl_slist *hdrs,
		    struct resp *resp)
{
	CURL *c = reg->curl;
	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, reg->protocols);
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, reg->protocols);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "kvmbox");
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, resp);
	if (reg->basic)
		curl_easy_setopt(c, CURLOPT_USERPWD, getenv("KVMBOX_REGISTRY_AUTH"));
	memset(resp, 0, sizeof(*resp));
}

static struct curl_slist *headers_for(struct registry *reg, const char *extra)
{
	struct curl_slist *h = NULL, *t;
	if (extra && (t = curl_slist_append(h, extra)))
		h = t;
	if (reg->auth_header[0] && (t = curl_slist_append(h, reg->auth_header)))
		h = t;
	return h;
}

/* Ask the realm of a Bearer challenge for a pull token. */
static int fetch_token(struct registry *reg, const char *challenge)
{
	char scheme[32], realm[1024], service[256], scope[512];
	if (image_parse_www_authenticate(challenge, scheme, sizeof(scheme), realm,
					 sizeof(realm), service, sizeof(service), scope,
					 sizeof(scope)))
		return -EACCES;
	const char *cred = getenv("KVMBOX_REGISTRY_AUTH");
	if (!strcasecmp(scheme, "Basic")) {
		if (!cred || !strchr(cred, ':')) {
			log_err("registry %s wants a password: set KVMBOX_REGISTRY_AUTH=user:password",
				reg->ref.registry);
			return -EACCES;
		}
		reg->auth_header[0] = '\0';
		reg->basic = true;	/* sent via CURLOPT_USERPWD from now on */
		return 0;
	}
	if (strcasecmp(scheme, "Bearer") || !realm[0]) {
		log_err("registry %s: unsupported auth challenge '%s'", reg->ref.registry, scheme);
		return -EACCES;
	}
	if (!scope[0])
		snprintf(scope, sizeof(scope), "repository:%s:pull", reg->ref.repo);
	char *es = curl_easy_escape(reg->curl, service, 0);
	char *esc = curl_easy_escape(reg->curl, scope, 0);
	char url[2400];
	snprintf(url, sizeof(url), "%s%sservice=%s&scope=%s", realm,
		 strchr(realm, '?') ? "&" : "?", es ? es : "", esc ? esc : "");
	curl_free(es);
	curl_free(esc);
	struct resp resp;
	struct body b = { .max = TOKEN_RESPONSE_MAX };
	prepare(reg, url, NULL, &resp);
	if (cred && strchr(cred, ':'))
		curl_easy_setopt(reg->curl, CURLOPT_USERPWD, cred);
	curl_easy_setopt(reg->curl, CURLOPT_WRITEFUNCTION, body_write);
	curl_easy_setopt(reg->curl, CURLOPT_WRITEDATA, &b);
	CURLcode cc = curl_easy_perform(reg->curl);
	curl_easy_getinfo(reg->curl, CURLINFO_RESPONSE_CODE, &resp.status);
	int r = -EACCES;
	if (cc != CURLE_OK) {
		log_err("token request to %s failed: %s", realm, curl_easy_strerror(cc));
	} else if (resp.status != 200) {
		log_err("token request to %s: HTTP %ld", realm, resp.status);
	} else {
		struct json_object *o = json_tokener_parse(b.p ? b.p : ""), *v;
		const char *tok = NULL;
		if (o && (json_object_object_get_ex(o, "token", &v) ||
			  json_object_object_get_ex(o, "access_token", &v)) &&
		    json_object_is_type(v, json_type_string))
			tok = json_object_get_string(v);
		if (tok && *tok && strlen(tok) < sizeof(reg->auth_header) - 32 &&
		    !strpbrk(tok, "\r\n")) {
			snprintf(reg->auth_header, sizeof(reg->auth_header),
				 "Authorization: Bearer %s", tok);
			r = 0;
		} else {
			log_err("token request to %s: no usable token in the answer", realm);
		}
		json_object_put(o);
	}
	free(b.p);
	return r;
}

/* After a 401: get credentials (a token or Basic) for one retry: 0 or <0. */
static int handle_401(struct registry *reg, const struct resp *resp)
{
	if (!resp->www_auth[0]) {
		log_err("registry %s refused access to %s (HTTP 401)", reg->ref.registry,
			reg->ref.repo);
		return -EACCES;
	}
	return fetch_token(reg, resp->www_auth);
}

static void sha256_hex(const uint8_t *md, char *out)
{
	for (int i = 0; i < 32; i++)
		sprintf(out + 2 * i, "%02x", md[i]);
}

static int sha256_buf(const void *p, size_t n, char digest[72])
{
	uint8_t md[32];
	unsigned int len = 0;
	if (!EVP_Digest(p, n, md, &len, EVP_sha256(), NULL) || len != 32)
		return -EIO;
	strcpy(digest, "sha256:");
	sha256_hex(md, digest + 7);
	return 0;
}

static int sha256_fd(int fd, char digest[72])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)) {
		EVP_MD_CTX_free(ctx);
		return -ENOMEM;
	}
	static uint8_t buf[1 << 16];	/* single-threaded CLI */
	ssize_t n;
	off_t off = 0;
	while ((n = pread(fd, buf, sizeof(buf), off)) > 0) {
		EVP_DigestUpdate(ctx, buf, (size_t)n);
		off += n;
	}
	int r = n < 0 ? -errno : 0;
	uint8_t md[32];
	unsigned int len = 0;
	if (!r && (!EVP_DigestFinal_ex(ctx, md, &len) || len != 32))
		r = -EIO;
	EVP_MD_CTX_free(ctx);
	if (!r) {
		strcpy(digest, "sha256:");
		sha256_hex(md, digest + 7);
	}
	return r;
}

/* GET a manifest by tag or digest into *out (NUL-terminated). */
static int get_manifest(struct registry *reg, const char *reference, struct body *out,
			struct resp *resp)
{
	char url[1200];
	snprintf(url, sizeof(url), "%s/v2/%s/manifests/%s", reg->base, reg->ref.repo, reference);
	for (int attempt = 0;; attempt++) {
		struct curl_slist *h = headers_for(reg, ACCEPT_MANIFESTS);
		*out = (struct body){ .max = MANIFEST_MAX };
		prepare(reg, url, h, resp);
		curl_easy_setopt(reg->curl, CURLOPT_WRITEFUNCTION, body_write);
		curl_easy_setopt(reg->curl, CURLOPT_WRITEDATA, out);
		CURLcode cc = curl_easy_perform(reg->curl);
		curl_slist_free_all(h);
		curl_easy_getinfo(reg->curl, CURLINFO_RESPONSE_CODE, &resp->status);
		if (cc != CURLE_OK) {
			log_err("manifest %s:%s from %s: %s", reg->ref.repo, reference,
				reg->ref.registry, out->overflow ? "manifest too large"
								 : curl_easy_strerror(cc));
			free(out->p);
			return -EIO;
		}
		if (resp->status == 401 && attempt == 0) {
			free(out->p);
			int r = handle_401(reg, resp);
			if (r < 0)
				return r;
			continue;
		}
		if (resp->status != 200) {
			log_err("manifest %s:%s from %s: HTTP %ld%s", reg->ref.repo, reference,
				reg->ref.registry, resp->status,
				resp->status == 404 ? " (no such image or tag)" : "");
			free(out->p);
			return resp->status == 404 ? -ENOENT : -EIO;
		}
		if (!out->p)
			out->p = strdup("");
		return out->p ? 0 : -ENOMEM;
	}
}

static int xferinfo(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		    curl_off_t ulnow)
{
	(void)dltotal, (void)ultotal, (void)ulnow;
	struct dl *d = arg;
	if (!d->reg->tty)
		return 0;
	double total = (double)d->desc->size, now = (double)(d->start + dlnow);
	uint64_t t = now_ns();
	if (t - d->last_draw < 100000000ull && now < total)	/* 10 repaints/s */
		return 0;
	d->last_draw = t;
	int width = 30, fill = total > 0 ? (int)(now / total * width) : 0;
	if (fill > width)
		fill = width;
	char bar[40];
	memset(bar, '#', (size_t)fill);
	memset(bar + fill, ' ', (size_t)(width - fill));
	bar[width] = '\0';
	fprintf(stderr, "\r  %.19s [%s] %7.1f/%.1f MB", d->desc->digest, bar, now / 1e6,
		total / 1e6);
	return 0;
}

static size_t blob_write(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct dl *d = arg;
	size_t n = size * nmemb;
	long status = 0;
	curl_easy_getinfo(d->reg->curl, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200 && status != 206) {	/* keep a bit of the error body */
		size_t k = MIN(n, sizeof(d->err_body) - 1 - d->err_n);
		memcpy(d->err_body + d->err_n, ptr, k);
		d->err_n += k;
		return n;
	}
	if (!d->checked_status) {
		d->checked_status = true;
		if (status == 200 && d->offset) {	/* no range support: restart */
			if (ftruncate(d->fd, 0)) {
				d->err = -errno;
				return 0;
			}
			d->offset = 0;
		}
	}
	if (d->offset + (int64_t)n > d->desc->size) {
		d->err = -EFBIG;
		return 0;
	}
	for (size_t done = 0; done < n;) {	/* short writes: a disk filling up */
		ssize_t w = pwrite(d->fd, ptr + done, n - done, d->offset);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			d->err = w < 0 ? -errno : -EIO;
			return 0;
		}
		done += (size_t)w;
		d->offset += w;
	}
	return n;
}

/* One GET of the rest of a blob into d->fd; HTTP status in *status. */
static int blob_transfer(struct registry *reg, struct dl *d, long *status)
{
	char url[1200], range[64];
	snprintf(url, sizeof(url), "%s/v2/%s/blobs/%s", reg->base, reg->ref.repo, d->desc->digest);
	for (int attempt = 0;; attempt++) {
		struct resp resp;
		struct curl_slist *h = headers_for(reg, NULL);
		prepare(reg, url, h, &resp);
		if (d->offset) {
			snprintf(range, sizeof(range), "%lld-", (long long)d->offset);
			curl_easy_setopt(reg->curl, CURLOPT_RANGE, range);
		}
		d->start = d->offset;
		d->checked_status = false;
		d->err_n = 0;
		curl_easy_setopt(reg->curl, CURLOPT_WRITEFUNCTION, blob_write);
		curl_easy_setopt(reg->curl, CURLOPT_WRITEDATA, d);
		curl_easy_setopt(reg->curl, CURLOPT_XFERINFOFUNCTION, xferinfo);
		curl_easy_setopt(reg->curl, CURLOPT_XFERINFODATA, d);
		curl_easy_setopt(reg->curl, CURLOPT_NOPROGRESS, 0L);
		CURLcode cc = curl_easy_perform(reg->curl);
		curl_slist_free_all(h);
		curl_easy_getinfo(reg->curl, CURLINFO_RESPONSE_CODE, status);
		if (reg->tty)
			fputc('\n', stderr);
		if (d->err == -EFBIG) {
			log_err("blob %s: server sent more than the %lld bytes the manifest says",
				d->desc->digest, (long long)d->desc->size);
			return -EFBIG;
		}
		if (d->err) {
			log_err("blob %s: writing to the cache: %s", d->desc->digest,
				strerror(-d->err));
			return d->err;
		}
		if (*status == 401 && attempt == 0) {
			int r = handle_401(reg, &resp);
			if (r < 0)
				return r;
			continue;
		}
		if (cc != CURLE_OK) {
			log_err("blob %s: download interrupted after %lld of %lld bytes: %s "
				"(run the pull again to resume)", d->desc->digest,
				(long long)d->offset, (long long)d->desc->size,
				curl_easy_strerror(cc));
			return -EIO;
		}
		return 0;
	}
}

/* Make sure blob desc is in the cache, complete and verified; open it. */
static int fetch_blob(struct registry *reg, const struct oci_desc *desc, int *out_fd)
{
	char path[4400], partial[4420], got[72];
	snprintf(path, sizeof(path), "%s/%s", reg->blobs, desc->digest + 7);
	snprintf(partial, sizeof(partial), "%s.partial", path);
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd >= 0) {
		struct stat st;
		if (!fstat(fd, &st) && st.st_size == desc->size && !sha256_fd(fd, got) &&
		    !strcmp(got, desc->digest)) {
			fprintf(stderr, "  %.19s: %.1f MB (cached)\n", desc->digest,
				(double)desc->size / 1e6);
			*out_fd = fd;
			return 0;
		}
		close(fd);
		unlink(path);	/* a damaged cache entry: fetch again */
	}
	struct dl d = { .reg = reg, .desc = desc, .t0 = now_ns() };
	d.fd = open(partial, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (d.fd < 0) {
		log_err("blob %s: %s: %s", desc->digest, partial, strerror(errno));
		return -errno;
	}
	struct stat st;
	if (!fstat(d.fd, &st))
		d.offset = st.st_size > desc->size ? 0 : st.st_size;
	if (st.st_size > desc->size && ftruncate(d.fd, 0)) {
		close(d.fd);
		return -errno;
	}
	int64_t resumed = d.offset;
	long status = 0;
	int r = 0;
	if (d.offset < desc->size || desc->size == 0)
		r = blob_transfer(reg, &d, &status);
	if (!r && status != 200 && status != 206 && status != 416 &&
	    !(d.offset == desc->size && status == 0)) {
		log_err("blob %s: HTTP %ld%s", desc->digest, status,
			status == 404 ? " (blob unknown to the registry)" : "");
		r = -EIO;
	}
	if (!r && d.offset != desc->size) {
		log_err("blob %s: truncated: got %lld of %lld bytes (run the pull again to resume)",
			desc->digest, (long long)d.offset, (long long)desc->size);
		r = -EIO;
	}
	if (!r && (r = sha256_fd(d.fd, got)) == 0 && strcmp(got, desc->digest)) {
		log_err("blob %s: digest mismatch (content hashes to %s); discarded",
			desc->digest, got);
		unlink(partial);
		r = -EBADMSG;
	}
	if (!r && (fsync(d.fd) || rename(partial, path)))
		r = -errno;
	if (r) {
		close(d.fd);
		return r;
	}
	if (!reg->tty || resumed) {
		double secs = (double)(now_ns() - d.t0) / 1e9;
		fprintf(stderr, "  %.19s: %.1f MB in %.1f s%s\n", desc->digest,
			(double)desc->size / 1e6, secs, resumed ? " (resumed)" : "");
	}
	*out_fd = d.fd;
	lseek(d.fd, 0, SEEK_SET);
	return 0;
}

/* Fetch the manifest for the reference, through an index if needed. */
static int resolve_manifest(struct registry *reg, struct oci_manifest *m, char digest[72])
{
	const char *reference = reg->ref.digest[0] ? reg->ref.digest : reg->ref.tag;
	for (int depth = 0; depth < 2; depth++) {
		struct body b;
		struct resp resp;
		int r = get_manifest(reg, reference, &b, &resp);
		if (r)
			return r;
		r = sha256_buf(b.p, b.n, digest);
		if (!r && oci_digest_valid(reference) && strcmp(digest, reference)) {
			log_err("manifest %s: digest mismatch (content hashes to %s)", reference,
				digest);
			r = -EBADMSG;
		}
		enum oci_kind kind;
		if (!r && (r = oci_classify(resp.content_type, b.p, b.n, &kind)))
			log_err("manifest %s:%s: unsupported or malformed manifest",
				reg->ref.repo, reference);
		static struct oci_desc pick;	/* single-threaded CLI */
		if (!r && kind == OCI_KIND_INDEX) {
			r = oci_index_pick(b.p, b.n, "linux", "amd64", &pick);
			if (r)
				log_err("image %s has no linux/amd64 manifest", reg->ref.repo);
			reference = pick.digest;
			free(b.p);
			if (r)
				return r;
			continue;
		}
		if (!r && (r = oci_manifest_parse(b.p, b.n, m)))
			log_err("manifest %s: malformed", digest);
		free(b.p);
		return r;
	}
	log_err("image %s: index points at another index", reg->ref.repo);
	return -EINVAL;
}

static int read_blob_small(int fd, size_t max, char **out, size_t *len)
{
	struct stat st;
	if (fstat(fd, &st))
		return -errno;
	if ((size_t)st.st_size > max)
		return -EFBIG;
	char *p = malloc((size_t)st.st_size + 1);
	if (!p)
		return -ENOMEM;
	int r = read_full(fd, p, (size_t)st.st_size);
	if (r) {
		free(p);
		return r;
	}
	p[st.st_size] = '\0';
	*out = p;
	*len = (size_t)st.st_size;
	return 0;
}

static int fetch_config(struct registry *reg, const struct oci_manifest *m,
			struct oci_config *cfg)
{
	int fd;
	int r = fetch_blob(reg, &m->config, &fd);
	if (r)
		return r;
	char *p = NULL;
	size_t n = 0;
	r = read_blob_small(fd, MANIFEST_MAX, &p, &n);
	close(fd);
	if (!r) {
		r = oci_config_parse(p, n, cfg);
		free(p);
	}
	if (r) {
		log_err("config %s: malformed", m->config.digest);
		return r;
	}
	if (cfg->os[0] && strcmp(cfg->os, "linux")) {
		log_err("image %s is for %s, not linux", reg->ref.repo, cfg->os);
		return -ENOTSUP;
	}
	if (cfg->arch[0] && strcmp(cfg->arch, "amd64"))
		log_warn("image %s is for %s, not amd64", reg->ref.repo, cfg->arch);
	return 0;
}

static int registry_open(struct registry *reg, const struct pull_opts *o)
{
	memset(reg, 0, sizeof(*reg));
	if (image_ref_parse(o->ref, &reg->ref)) {
		log_err("bad image reference '%s'", o->ref);
		return -EINVAL;
	}
	bool plain = o->insecure || image_ref_is_loopback(&reg->ref);
	snprintf(reg->base, sizeof(reg->base), "%s://%s", plain ? "http" : "https",
		 reg->ref.registry);
	reg->protocols = plain ? "http,https" : "https";
	reg->tty = o->progress_tty;
	char cache[4096];
	int r = image_cache_dir(cache, sizeof(cache));
	if (r)
		return r;
	snprintf(reg->blobs, sizeof(reg->blobs), "%s/blobs", cache);
	if (mkdir(reg->blobs, 0700) && errno != EEXIST)
		return -errno;
	strncat(reg->blobs, "/sha256", sizeof(reg->blobs) - strlen(reg->blobs) - 1);
	if (mkdir(reg->blobs, 0700) && errno != EEXIST)
		return -errno;
	reg->curl = curl_easy_init();
	return reg->curl ? 0 : -ENOMEM;
}

static int unpack_all(struct registry *reg, const struct oci_manifest *m,
		      struct image_build *b)
{
	for (size_t i = 0; i < m->nlayers; i++) {
		int fd;
		int r = fetch_blob(reg, &m->layers[i], &fd);
		if (r)
			return r;
		struct unpack_stats st;
		uint64_t t0 = now_ns();
		r = image_unpack_layer(b->rootfs_fd, fd, m->layers[i].digest, &st);
		close(fd);
		if (r)
			return r;
		fprintf(stderr, "  %.19s: unpacked %llu entries, %.1f MB in %.1f s\n",
			m->layers[i].digest, (unsigned long long)st.entries,
			(double)st.bytes / 1e6, (double)(now_ns() - t0) / 1e9);
	}
	return 0;
}

int image_pull(const struct pull_opts *o)
{
	struct registry reg;
	struct oci_manifest *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	int r = registry_open(&reg, o);
	char name[IMAGE_NAME_MAX], digest[72];
	if (!r && o->name) {
		if (strlen(o->name) >= sizeof(name) || !image_name_valid(o->name)) {
			log_err("invalid image name '%s'", o->name);
			r = -EINVAL;
		} else {
			strcpy(name, o->name);
		}
	} else if (!r && image_ref_default_name(&reg.ref, name, sizeof(name))) {
		log_err("cannot derive an image name from '%s': use --name", o->ref);
		r = -EINVAL;
	}
	struct oci_config cfg;
	if (!r)
		r = resolve_manifest(&reg, m, digest);
	if (!r)
		fprintf(stderr, "pull: %s/%s: manifest %s, %zu layers\n", reg.ref.registry,
			reg.ref.repo, digest, m->nlayers);
	if (!r)
		r = fetch_config(&reg, m, &cfg);
	struct image_build b = { .tmp_fd = -1, .rootfs_fd = -1 };
	if (!r)
		r = image_build_begin(&b, name);
	if (!r)
		r = unpack_all(&reg, m, &b);
	if (!r) {
		struct image_meta meta = { 0 };
		snprintf(meta.source, sizeof(meta.source), "%s/%s%s%s", reg.ref.registry,
			 reg.ref.repo, reg.ref.tag[0] ? ":" : "", reg.ref.tag);
		strcpy(meta.digest, digest);
		snprintf(meta.created, sizeof(meta.created), "%s", cfg.created);
		r = image_build_commit(&b, &meta);
		if (!r)
			printf("pulled %s as image '%s' (%.1f MB) in %s/%s\n", o->ref, name,
			       (double)meta.size / 1e6, b.images, name);
	}
	if (r)
		image_build_abort(&b);
	if (reg.curl)
		curl_easy_cleanup(reg.curl);
	explicit_bzero(reg.auth_header, sizeof(reg.auth_header));
	curl_global_cleanup();
	free(m);
	return r;
}
