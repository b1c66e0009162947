/* guest/abi/base64url.h - base64url without padding (RFC 4648 section 5,
 * alphabet A-Z a-z 0-9 - _), the one encoding of the host-guest contract:
 * kvmbox.argv, kvmbox.fs's mount points and kvmbox.ca on the kernel command
 * line are written with it by the VMM and read with it by kvmbox-init.
 * Header-only and freestanding (no libc beyond the compiler's headers).
 *
 * kbx_b64url_encode: @len bytes into @out, NUL-terminated: the length, or
 * -ENOSPC when out (outsz bytes) is too small.
 * kbx_b64url_decode: @len characters into @out: the bytes written, -EINVAL
 * for a character outside the alphabet or an impossible length, -ENOSPC;
 * standard '=' padding on a full final quantum is tolerated.
 */
#ifndef KVMBOX_GUEST_ABI_BASE64URL_H
#define KVMBOX_GUEST_ABI_BASE64URL_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

static inline int kbx_b64url_encode(const uint8_t *in, size_t len, char *out, size_t outsz)
{
	static const char kbx_b64url_alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
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
		out[o++] = kbx_b64url_alphabet[(v >> 18) & 63];
		out[o++] = kbx_b64url_alphabet[(v >> 12) & 63];
		if (n > 1)
			out[o++] = kbx_b64url_alphabet[(v >> 6) & 63];
		if (n > 2)
			out[o++] = kbx_b64url_alphabet[v & 63];
	}
	out[o] = 0;
	return (int)o;
}

/* Value of one base64url character, or -1. */
static inline int kbx_b64url_digit(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

static inline long kbx_b64url_decode(const char *in, size_t len, uint8_t *out, size_t outsz)
{
	/* Tolerate standard padding on a full final quantum. */
	if (len % 4 == 0) {
		for (int pad = 0; pad < 2 && len > 0 && in[len - 1] == '='; pad++)
			len--;
	}
	if (len % 4 == 1)
		return -EINVAL;
	size_t need = len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0);
	if (need > outsz)
		return -ENOSPC;
	uint32_t acc = 0;
	unsigned bits = 0;
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		int d = kbx_b64url_digit(in[i]);
		if (d < 0)
			return -EINVAL;
		acc = (acc << 6 | (uint32_t)d) & 0xffffff;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (uint8_t)(acc >> bits);
		}
	}
	return (long)o;
}

#endif
