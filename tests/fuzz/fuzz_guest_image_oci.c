/* tests/fuzz/fuzz_guest_image_oci.c - registry JSON (manifests, indexes,
 * configs), references and auth challenges from random bytes: no crash, no
 * out-of-bounds, and every digest accepted is well formed. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "guest/image/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct oci_manifest m;	/* large: keep it off the stack */
	log_set_level((enum log_level)-1);
	char *s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	enum oci_kind kind;
	struct oci_desc d;
	struct oci_config c;
	(void)oci_classify(NULL, s, size, &kind);
	if (!oci_index_pick(s, size, "linux", "amd64", &d) && !oci_digest_valid(d.digest))
		abort();
	if (!oci_manifest_parse(s, size, &m)) {
		if (m.nlayers > OCI_MAX_LAYERS || !oci_digest_valid(m.config.digest))
			abort();
		for (size_t i = 0; i < m.nlayers; i++)
			if (!oci_digest_valid(m.layers[i].digest) || m.layers[i].size < 0)
				abort();
	}
	(void)oci_config_parse(s, size, &c);
	struct image_ref ref;
	char name[IMAGE_NAME_MAX];
	if (!image_ref_parse(s, &ref) && !image_ref_default_name(&ref, name, sizeof(name)) &&
	    !image_name_valid(name))
		abort();
	char scheme[16], realm[256], service[64], scope[128];
	(void)image_parse_www_authenticate(s, scheme, sizeof(scheme), realm, sizeof(realm),
					   service, sizeof(service), scope, sizeof(scope));
	free(s);
	return 0;
}
