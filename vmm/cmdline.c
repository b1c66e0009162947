/* vmm/cmdline.c - the guest kernel command line and the argv encoding that
 * carries the user's command to kvmbox-init.
 *
 * Contract with guest/ (kvmbox-init): the command arrives as one parameter
 * kvmbox.argv=<base64url, no padding, of argv[0] NUL argv[1] NUL ...>, each
 * string NUL-terminated.  base64url needs no quoting on the kernel command
 * line and survives any byte in the arguments.
 */
#include "vmm/vmm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char b64url[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int base64url_encode(const uint8_t *in, size_t len, char *out, size_t outsz)
{
	size_t need = len / 3 * 4 + (len % 3 ? len % 3 + 1 : 0);
	if (outsz < need + 1)
		return -ENOSPC;
	size_t o = 0;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;
		size_t n = len - i < 3 ? len - i : 3;
		if (n > 1)
			v |= (uint32_t)in[i + 1] << 8;
		if (n > 2)
			v |= in[i + 2];
		out[o++] = b64url[(v >> 18) & 63];
		out[o++] = b64url[(v >> 12) & 63];
		if (n > 1)
			out[o++] = b64url[(v >> 6) & 63];
		if (n > 2)
			out[o++] = b64url[v & 63];
	}
	out[o] = 0;
	return (int)o;
}

static int b64url_value(char ch)
{
	const char *p = ch ? strchr(b64url, ch) : NULL;
	return p ? (int)(p - b64url) : -1;
}

int base64url_decode(const char *in, size_t len, uint8_t *out, size_t outsz)
{
	if (len % 4 == 1)
		return -EINVAL;
	size_t need = len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0);
	if (outsz < need)
		return -ENOSPC;
	size_t o = 0;
	for (size_t i = 0; i < len; i += 4) {
		size_t n = len - i < 4 ? len - i : 4;
		uint32_t v = 0;
		for (size_t k = 0; k < 4; k++) {
			int d = k < n ? b64url_value(in[i + k]) : 0;
			if (d < 0)
				return -EINVAL;
			v = v << 6 | (uint32_t)d;
		}
		out[o++] = (uint8_t)(v >> 16);
		if (n > 2)
			out[o++] = (uint8_t)(v >> 8);
		if (n > 3)
			out[o++] = (uint8_t)v;
	}
	return (int)o;
}

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
		       (argc > 0 ? strlen(" kvmbox.argv=") + enc : 0) + 1;
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
		o += (size_t)snprintf(s + o, total - o, " kvmbox.argv=");
		int n = base64url_encode(packed, raw, s + o, total - o);
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
