/* guest/image/oci.c - parse the registry's JSON documents with json-c: image
 * indexes and Docker manifest lists (pick linux/amd64), OCI and Docker
 * schema 2 image manifests, and the few fields of an image config we keep.
 *
 * Everything here comes from the network: every field is type-checked,
 * digests must be sha256 with 64 lowercase hex digits, sizes must be
 * non-negative, strings must fit their buffers; anything else is -EINVAL.
 * Docker schema 1 manifests are not supported (-ENOTSUP).
 */
#include <errno.h>
#include <json-c/json.h>
#include <string.h>

#include "common/log.h"
#include "guest/image/image.h"

#define MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"

/* Layer media types we can unpack. */
static const struct {
	const char *type;
	enum oci_compression comp;
} layer_types[] = {
	{ "application/vnd.oci.image.layer.v1.tar", OCI_COMP_NONE },
	{ "application/vnd.oci.image.layer.v1.tar+gzip", OCI_COMP_GZIP },
	{ "application/vnd.oci.image.layer.v1.tar+zstd", OCI_COMP_ZSTD },
	{ "application/vnd.docker.image.rootfs.diff.tar.gzip", OCI_COMP_GZIP },
	{ "application/vnd.docker.image.rootfs.diff.tar", OCI_COMP_NONE },
};

bool oci_digest_valid(const char *d)
{
	if (!d || strncmp(d, "sha256:", 7))
		return false;
	d += 7;
	for (int i = 0; i < 64; i++)
		if (!((d[i] >= '0' && d[i] <= '9') || (d[i] >= 'a' && d[i] <= 'f')))
			return false;
	return d[64] == '\0';
}

static struct json_object *parse_obj(const char *body, size_t len)
{
	if (!body || len > 16 * 1024 * 1024 || len > (size_t)INT32_MAX)
		return NULL;
	struct json_tokener *tok = json_tokener_new();
	if (!tok)
		return NULL;
	struct json_object *o = json_tokener_parse_ex(tok, body, (int)len);
	if (o && json_tokener_get_error(tok) != json_tokener_success) {
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(tok);
	if (o && !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		o = NULL;
	}
	return o;
}

/* The string member `key` of o, or NULL when absent or not a string. */
static const char *get_str(struct json_object *o, const char *key)
{
	struct json_object *v;
	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static int copy_str(char *dst, size_t len, const char *src)
{
	if (!src)
		src = "";
	size_t n = strlen(src);
	if (n >= len)
		return -EINVAL;
	memcpy(dst, src, n + 1);
	return 0;
}

static int parse_desc(struct json_object *o, struct oci_desc *d)
{
	if (!json_object_is_type(o, json_type_object))
		return -EINVAL;
	memset(d, 0, sizeof(*d));
	const char *digest = get_str(o, "digest");
	struct json_object *size;
	if (!oci_digest_valid(digest) || !json_object_object_get_ex(o, "size", &size) ||
	    !json_object_is_type(size, json_type_int))
		return -EINVAL;
	errno = 0;
	d->size = json_object_get_int64(size);
	if (d->size < 0 || errno)
		return -EINVAL;
	strcpy(d->digest, digest);
	return copy_str(d->media_type, sizeof(d->media_type), get_str(o, "mediaType"));
}

int oci_classify(const char *content_type, const char *body, size_t len,
		 enum oci_kind *kind)
{
	const char *mt = content_type;
	struct json_object *o = parse_obj(body, len);
	if (!o)
		return -EINVAL;
	const char *bmt = get_str(o, "mediaType");
	if (bmt)	/* the body's own type wins over a proxy's Content-Type */
		mt = bmt;
	int r = 0;
	struct json_object *v;
	if (mt && (!strncmp(mt, MT_OCI_INDEX, strlen(MT_OCI_INDEX)) ||
		   !strncmp(mt, MT_DOCKER_LIST, strlen(MT_DOCKER_LIST))))
		*kind = OCI_KIND_INDEX;
	else if (mt && (!strncmp(mt, MT_OCI_MANIFEST, strlen(MT_OCI_MANIFEST)) ||
			!strncmp(mt, MT_DOCKER_MANIFEST, strlen(MT_DOCKER_MANIFEST))))
		*kind = OCI_KIND_MANIFEST;
	else if (json_object_object_get_ex(o, "manifests", &v))
		*kind = OCI_KIND_INDEX;
	else if (json_object_object_get_ex(o, "layers", &v) &&
		 json_object_object_get_ex(o, "config", &v))
		*kind = OCI_KIND_MANIFEST;
	else
		r = -ENOTSUP;	/* schema 1 or something else */
	json_object_put(o);
	return r;
}

int oci_index_pick(const char *body, size_t len, const char *os, const char *arch,
		   struct oci_desc *out)
{
	struct json_object *o = parse_obj(body, len), *list;
	if (!o)
		return -EINVAL;
	int r = -ENOENT;
	if (!json_object_object_get_ex(o, "manifests", &list) ||
	    !json_object_is_type(list, json_type_array)) {
		r = -EINVAL;
		goto out;
	}
	size_t n = json_object_array_length(list);
	for (size_t i = 0; i < n; i++) {
		struct json_object *m = json_object_array_get_idx(list, i), *plat;
		if (!json_object_is_type(m, json_type_object) ||
		    !json_object_object_get_ex(m, "platform", &plat) ||
		    !json_object_is_type(plat, json_type_object))
			continue;
		const char *pos = get_str(plat, "os"), *parch = get_str(plat, "architecture");
		if (!pos || !parch || strcmp(pos, os) || strcmp(parch, arch))
			continue;
		r = parse_desc(m, out);
		break;
	}
out:
	json_object_put(o);
	return r;
}

static int layer_compression(const char *mt, enum oci_compression *c)
{
	for (size_t i = 0; i < sizeof(layer_types) / sizeof(layer_types[0]); i++) {
		if (!strcmp(mt, layer_types[i].type)) {
			*c = layer_types[i].comp;
			return 0;
		}
	}
	return -ENOTSUP;
}

int oci_manifest_parse(const char *body, size_t len, struct oci_manifest *m)
{
	struct json_object *o = parse_obj(body, len), *cfg, *layers;
	if (!o)
		return -EINVAL;
	memset(m, 0, sizeof(*m));
	int r = -EINVAL;
	if (!json_object_object_get_ex(o, "config", &cfg) || parse_desc(cfg, &m->config) ||
	    !json_object_object_get_ex(o, "layers", &layers) ||
	    !json_object_is_type(layers, json_type_array))
		goto out;
	size_t n = json_object_array_length(layers);
	if (n > OCI_MAX_LAYERS) {
		log_err("manifest has %zu layers (at most %d supported)", n, OCI_MAX_LAYERS);
		r = -E2BIG;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		struct oci_desc *d = &m->layers[i];
		if (parse_desc(json_object_array_get_idx(layers, i), d))
			goto out;
		if (layer_compression(d->media_type, &d->comp)) {
			log_err("layer %s: unsupported media type '%s'", d->digest, d->media_type);
			r = -ENOTSUP;
			goto out;
		}
	}
	m->nlayers = n;
	r = 0;
out:
	json_object_put(o);
	return r;
}

int oci_config_parse(const char *body, size_t len, struct oci_config *c)
{
	struct json_object *o = parse_obj(body, len);
	if (!o)
		return -EINVAL;
	memset(c, 0, sizeof(*c));
	int r = 0;
	if (copy_str(c->os, sizeof(c->os), get_str(o, "os")) ||
	    copy_str(c->arch, sizeof(c->arch), get_str(o, "architecture")) ||
	    copy_str(c->created, sizeof(c->created), get_str(o, "created")))
		r = -EINVAL;
	json_object_put(o);
	return r;
}
