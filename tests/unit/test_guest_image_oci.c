/* tests/unit/test_guest_image_oci.c - registry documents and references:
 * manifest, index and config parsing refuse malformed input and pick
 * linux/amd64; references parse as `docker pull` reads them; auth
 * challenges give realm, service and scope. */
#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "guest/image/image.h"

#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"
#define D3 "sha256:3333333333333333333333333333333333333333333333333333333333333333"

static const char manifest[] =
	"{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
	"\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\","
	"\"digest\":\"" D1 "\",\"size\":123},"
	"\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\","
	"\"digest\":\"" D2 "\",\"size\":4567},"
	"{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+zstd\","
	"\"digest\":\"" D3 "\",\"size\":0}]}";

static int parse(const char *s, struct oci_manifest *m)
{
	return oci_manifest_parse(s, strlen(s), m);
}

static void test_manifest_ok(void **state)
{
	(void)state;
	struct oci_manifest *m = malloc(sizeof(*m));
	assert_int_equal(parse(manifest, m), 0);
	assert_string_equal(m->config.digest, D1);
	assert_int_equal(m->config.size, 123);
	assert_int_equal(m->nlayers, 2);
	assert_int_equal(m->layers[0].comp, OCI_COMP_GZIP);
	assert_int_equal(m->layers[1].comp, OCI_COMP_ZSTD);
	assert_int_equal(m->layers[0].size, 4567);
	enum oci_kind k;
	assert_int_equal(oci_classify(NULL, manifest, strlen(manifest), &k), 0);
	assert_int_equal(k, OCI_KIND_MANIFEST);
	free(m);
}

static void test_manifest_docker_v2(void **state)
{
	(void)state;
	const char *s =
		"{\"schemaVersion\":2,\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\","
		"\"config\":{\"mediaType\":\"application/vnd.docker.container.image.v1+json\","
		"\"digest\":\"" D1 "\",\"size\":1},\"layers\":[{\"mediaType\":"
		"\"application/vnd.docker.image.rootfs.diff.tar.gzip\",\"digest\":\"" D2 "\",\"size\":2}]}";
	struct oci_manifest *m = malloc(sizeof(*m));
	assert_int_equal(parse(s, m), 0);
	assert_int_equal(m->nlayers, 1);
	assert_int_equal(m->layers[0].comp, OCI_COMP_GZIP);
	free(m);
}

static void test_manifest_bad(void **state)
{
	(void)state;
	struct oci_manifest *m = malloc(sizeof(*m));
	static const char *bad[] = {
		"", "[]", "{", "{\"config\":{}}", "null",
		/* uppercase hex, short digest, negative size, size as string */
		"{\"config\":{\"digest\":\"sha256:AB\",\"size\":1},\"layers\":[]}",
		"{\"config\":{\"digest\":\"" D1 "\",\"size\":-1},\"layers\":[]}",
		"{\"config\":{\"digest\":\"" D1 "\",\"size\":\"1\"},\"layers\":[]}",
		"{\"config\":{\"digest\":\"md5:1\",\"size\":1},\"layers\":[]}",
		"{\"config\":{\"digest\":\"" D1 "\",\"size\":1},\"layers\":{}}",
		"{\"config\":{\"digest\":\"" D1 "\",\"size\":1},\"layers\":[7]}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(parse(bad[i], m), -EINVAL);
	/* a foreign (non-distributable) layer is not supported */
	const char *foreign =
		"{\"config\":{\"digest\":\"" D1 "\",\"size\":1},\"layers\":[{\"mediaType\":"
		"\"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip\",\"digest\":\"" D2
		"\",\"size\":2}]}";
	assert_int_equal(parse(foreign, m), -ENOTSUP);
	enum oci_kind k;
	assert_int_equal(oci_classify(NULL, "{\"schemaVersion\":1,\"fsLayers\":[]}", 33, &k),
			 -ENOTSUP);
	free(m);
}

static void test_too_many_layers(void **state)
{
	(void)state;
	size_t cap = 200000, n = 0;
	char *s = malloc(cap);
	n += (size_t)sprintf(s + n, "{\"config\":{\"digest\":\"%s\",\"size\":1},\"layers\":[", D1);
	for (int i = 0; i <= OCI_MAX_LAYERS; i++)
		n += (size_t)sprintf(s + n, "%s{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\","
				     "\"digest\":\"%s\",\"size\":1}", i ? "," : "", D2);
	strcpy(s + n, "]}");
	struct oci_manifest *m = malloc(sizeof(*m));
	assert_int_equal(parse(s, m), -E2BIG);
	free(m);
	free(s);
}

static void test_index_pick(void **state)
{
	(void)state;
	const char *idx =
		"{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\","
		"\"manifests\":["
		"{\"digest\":\"" D1 "\",\"size\":10,\"platform\":{\"os\":\"linux\",\"architecture\":\"arm64\"}},"
		"{\"digest\":\"" D3 "\",\"size\":11},"
		"{\"digest\":\"" D2 "\",\"size\":12,\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}}]}";
	struct oci_desc d;
	assert_int_equal(oci_index_pick(idx, strlen(idx), "linux", "amd64", &d), 0);
	assert_string_equal(d.digest, D2);
	assert_int_equal(d.size, 12);
	assert_int_equal(oci_index_pick(idx, strlen(idx), "linux", "s390x", &d), -ENOENT);
	enum oci_kind k;
	assert_int_equal(oci_classify(NULL, idx, strlen(idx), &k), 0);
	assert_int_equal(k, OCI_KIND_INDEX);
	const char *list = "{\"manifests\":[]}";
	assert_int_equal(oci_classify("application/vnd.docker.distribution.manifest.list.v2+json",
				      list, strlen(list), &k), 0);
	assert_int_equal(k, OCI_KIND_INDEX);
	assert_int_equal(oci_index_pick("{\"manifests\":3}", 15, "linux", "amd64", &d), -EINVAL);
}

static void test_config(void **state)
{
	(void)state;
	const char *c = "{\"created\":\"2026-01-02T03:04:05Z\",\"architecture\":\"amd64\","
			"\"os\":\"linux\",\"config\":{}}";
	struct oci_config cfg;
	assert_int_equal(oci_config_parse(c, strlen(c), &cfg), 0);
	assert_string_equal(cfg.os, "linux");
	assert_string_equal(cfg.arch, "amd64");
	assert_string_equal(cfg.created, "2026-01-02T03:04:05Z");
	char big[300];
	memset(big, 'a', sizeof(big));
	char doc[400];
	snprintf(doc, sizeof(doc), "{\"os\":\"%.250s\"}", big);
	assert_int_equal(oci_config_parse(doc, strlen(doc), &cfg), -EINVAL);
	assert_int_equal(oci_config_parse("[1]", 3, &cfg), -EINVAL);
}

static void test_digest_valid(void **state)
{
	(void)state;
	assert_true(oci_digest_valid(D1));
	assert_false(oci_digest_valid(D1 "0"));
	assert_false(oci_digest_valid("sha256:../../etc/passwd"));
	assert_false(oci_digest_valid("sha512:11"));
	assert_false(oci_digest_valid(NULL));
}

static void test_refs(void **state)
{
	(void)state;
	struct image_ref r;
	char name[IMAGE_NAME_MAX];
	assert_int_equal(image_ref_parse("debian", &r), 0);
	assert_string_equal(r.registry, "registry-1.docker.io");
	assert_string_equal(r.repo, "library/debian");
	assert_string_equal(r.tag, "latest");
	assert_int_equal(image_ref_default_name(&r, name, sizeof(name)), 0);
	assert_string_equal(name, "debian");
	assert_int_equal(image_ref_parse("127.0.0.1:5000/test/simple:v1", &r), 0);
	assert_string_equal(r.registry, "127.0.0.1:5000");
	assert_string_equal(r.repo, "test/simple");
	assert_string_equal(r.tag, "v1");
	assert_true(image_ref_is_loopback(&r));
	assert_int_equal(image_ref_default_name(&r, name, sizeof(name)), 0);
	assert_string_equal(name, "simple-v1");
	assert_int_equal(image_ref_parse("localhost/x@" D1, &r), 0);
	assert_string_equal(r.registry, "localhost");
	assert_string_equal(r.digest, D1);
	assert_string_equal(r.tag, "");
	assert_true(image_ref_is_loopback(&r));
	assert_int_equal(image_ref_parse("ghcr.io/o/r:1.2", &r), 0);
	assert_false(image_ref_is_loopback(&r));
	assert_int_equal(image_ref_parse("localhost.evil.com/x", &r), 0);
	assert_false(image_ref_is_loopback(&r));
	assert_int_equal(image_ref_parse("[::1]:5000/x", &r), 0);
	assert_true(image_ref_is_loopback(&r));
	static const char *bad[] = { "", "Upper/Case", "a//b", "x:", "x:-t", "x@sha256:1",
				     "/abs", "x/", "ho st/x", "a/b:t/c" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(image_ref_parse(bad[i], &r), -EINVAL);
}

static void test_www_authenticate(void **state)
{
	(void)state;
	char scheme[16], realm[128], service[64], scope[128];
	assert_int_equal(image_parse_www_authenticate(
		"Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\","
		"scope=\"repository:library/debian:pull\"",
		scheme, sizeof(scheme), realm, sizeof(realm), service, sizeof(service), scope,
		sizeof(scope)), 0);
	assert_string_equal(scheme, "Bearer");
	assert_string_equal(realm, "https://auth.docker.io/token");
	assert_string_equal(service, "registry.docker.io");
	assert_string_equal(scope, "repository:library/debian:pull");
	assert_int_equal(image_parse_www_authenticate("Basic realm=x", scheme, sizeof(scheme),
		realm, sizeof(realm), service, sizeof(service), scope, sizeof(scope)), 0);
	assert_string_equal(scheme, "Basic");
	assert_string_equal(realm, "x");
	assert_string_equal(service, "");
	/* a too-long value is dropped, not truncated */
	char longv[400];
	snprintf(longv, sizeof(longv), "Bearer realm=\"%0300d\"", 0);
	assert_int_equal(image_parse_www_authenticate(longv, scheme, sizeof(scheme), realm,
		sizeof(realm), service, sizeof(service), scope, sizeof(scope)), 0);
	assert_string_equal(realm, "");
}

static void test_names(void **state)
{
	(void)state;
	assert_true(image_name_valid("default"));
	assert_true(image_name_valid("simple-v1.2_x"));
	assert_false(image_name_valid(".tmp-x"));
	assert_false(image_name_valid(".."));
	assert_false(image_name_valid("a/b"));
	assert_false(image_name_valid(""));
	assert_false(image_name_valid("-rf"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_manifest_ok),
		cmocka_unit_test(test_manifest_docker_v2),
		cmocka_unit_test(test_manifest_bad),
		cmocka_unit_test(test_too_many_layers),
		cmocka_unit_test(test_index_pick),
		cmocka_unit_test(test_config),
		cmocka_unit_test(test_digest_valid),
		cmocka_unit_test(test_refs),
		cmocka_unit_test(test_www_authenticate),
		cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
