/* vmm/cmdline.c - the guest kernel command line and the argv encoding that
 * carries the user's command to kvmbox-init.
 *
 * Contract with guest/ (kvmbox-init): the command arrives as one parameter
 * kvmbox.argv=<base64url, no padding, of argv[0] NUL argv[1] NUL ...>, each
 * string NUL-terminated.  base64url needs no quoting on the kernel command
 * line and survives any byte in the arguments.
 */
#include "vmm/vmm.h"
#include "guest/abi/base64url.h"
#include "guest/abi/cmdline.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *cmdline_build(const char *base, const char *extra, int argc, char *const argv[],
		    size_t max)
{
	if (!base)
		base = CMDLINE_DEFAULT;
	size_t raw = 0;
	for (int i = 0; i < argc; i++)
		raw += strlen(argv[i]) + 1;
	size_t enc = raw / 3 * 4 + 4;
	size_t total = strlen(base) + 1 + (extra ? strlen(extra) + 1 : 0) +
		       (argc > 0 ? strlen(" " KBX_PARAM_ARGV "=") + enc : 0) + 1;
	if (total > max + enc) {	/* cheap early refusal of huge argv */
		errno = E2BIG;
		return NULL;
	}
	char *s = malloc(total);
	uint8_t *packed = argc > 0 ? malloc(raw) : NULL;
	if (!s || (argc > 0 && !packed)) {
		free(s);
		free(packed);
		errno = ENOMEM;
		return NULL;
	}
	size_t o = (size_t)snprintf(s, total, "%s", base);
	if (extra && *extra)
		o += (size_t)snprintf(s + o, total - o, " %s", extra);
	if (argc > 0) {
		size_t p = 0;
		for (int i = 0; i < argc; i++) {
			size_t l = strlen(argv[i]) + 1;
			memcpy(packed + p, argv[i], l);
			p += l;
		}
		o += (size_t)snprintf(s + o, total - o, " " KBX_PARAM_ARGV "=");
		int n = kbx_b64url_encode(packed, raw, s + o, total - o);
		free(packed);
		if (n < 0) {
			free(s);
			errno = E2BIG;
			return NULL;
		}
		o += (size_t)n;
	}
	if (o + 1 > max) {
		free(s);
		errno = E2BIG;
		return NULL;
	}
	return s;
}
