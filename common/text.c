/* common/text.c - bytes from the guest made safe to show on the user's
 * terminal (see text.h). */
#include "common/text.h"

#include <stdint.h>
#include <string.h>

/* Length of the UTF-8 sequence at p (avail bytes), 0 when it is not one,
 * with its code point. */
static size_t utf8_seq(const unsigned char *p, size_t avail, uint32_t *cp)
{
	size_t n = p[0] >= 0xf0 && p[0] < 0xf5 ? 4 : p[0] >= 0xe0 ? 3 : p[0] >= 0xc2 && p[0] < 0xe0 ? 2 : 0;
	if (!n || n > avail)
		return 0;
	uint32_t v = p[0] & (0x7f >> n);
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		v = v << 6 | (p[i] & 0x3f);
	}
	if ((n == 3 && v < 0x800) || (n == 4 && (v < 0x10000 || v > 0x10ffff)) || (v >= 0xd800 && v < 0xe000))
		return 0;
	*cp = v;
	return n;
}

void put_visible(FILE *out, const char *text, size_t len)
{
	const unsigned char *p = (const unsigned char *)text;
	for (size_t i = 0; i < len;) {
		unsigned char c = p[i];
		uint32_t cp;
		size_t n;
		if (c == '\n' || c == '\t' || (c >= 0x20 && c < 0x7f)) {
			fputc(c, out);
			i++;
		} else if (c < 0x20 || c == 0x7f) {
			fprintf(out, "^%c", c == 0x7f ? '?' : c + 64);
			i++;
		} else if ((n = utf8_seq(p + i, len - i, &cp)) && !(cp >= 0x80 && cp < 0xa0)) {
			fwrite(p + i, 1, n, out);	/* printable beyond ASCII; C1 controls are not */
			i += n;
		} else {
			fprintf(out, "\\x%02x", c);
			i++;
		}
	}
}

/* Length of the escape sequence at p[0] == ESC (avail bytes): CSI up to
 * its final byte, OSC, DCS, SOS, PM and APC strings up to BEL or ST, any
 * other ESC with the byte after it; all of it when it does not end here. */
static size_t escape_len(const unsigned char *p, size_t avail)
{
	if (avail < 2)
		return avail;
	size_t i = 2;
	switch (p[1]) {
	case '[':
		while (i < avail && !(p[i] >= 0x40 && p[i] <= 0x7e))
			i++;
		return i < avail ? i + 1 : avail;
	case ']': case 'P': case 'X': case '^': case '_':
		for (; i < avail; i++) {
			if (p[i] == 0x07)
				return i + 1;
			if (p[i] == 0x1b && i + 1 < avail && p[i + 1] == '\\')
				return i + 2;
		}
		return avail;
	default:
		return 2;
	}
}

size_t strip_terminal_sequences(char *text, size_t len)
{
	unsigned char *p = (unsigned char *)text;
	size_t o = 0;
	for (size_t i = 0; i < len;) {
		if (p[i] == 0x1b) {
			i += escape_len(p + i, len - i);
		} else if (p[i] == '\r') {
			i += i + 1 < len && p[i + 1] == '\n' ? 1 : 0;
			p[o++] = '\n';
			i++;
		} else {
			p[o++] = p[i++];
		}
	}
	return o;
}
