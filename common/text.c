/* common/text.c - bytes from the guest made safe to show on the user's
 * terminal (see text.h). */
#include "common/text.h"

#include <stdint.h>
#include <stdlib.h>
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
 * other ESC with its intermediate bytes and the final one; all of it when it does not end here. */
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
	default:	/* intermediates (ESC ( B), then the final byte */
		for (i = 1; i < avail && p[i] >= 0x20 && p[i] <= 0x2f; i++)
			;
		return i < avail ? i + 1 : avail;
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

/* The filter's states: text; after ESC; an OSC held back while it may
 * still be 52's query; passing one on; passing a copy on (and keeping its
 * DATA); dropping a query; each "_ESC" after an ESC inside one (ST is ESC
 * backslash). */
enum { F_TEXT, F_ESC, F_C2, F_HELD, F_PASS, F_PASS_ESC, F_COPY, F_COPY_ESC, F_DROP, F_DROP_ESC };

static void copy_byte(struct osc52_filter *f, unsigned char c)
{
	if (f->copy_too_long)
		return;
	if (!f->copy && !(f->copy = malloc(OSC52_COPY_MAX))) {
		f->copy_too_long = true;
		return;
	}
	if (f->ncopy == OSC52_COPY_MAX) {
		f->copy_too_long = true;
		return;
	}
	f->copy[f->ncopy++] = (char)c;
}

/* The copy ended: complete (to on_copy) or cut (dropped). */
static void copy_done(struct osc52_filter *f, bool complete)
{
	if (complete && f->copy && !f->copy_too_long && f->on_copy)
		f->on_copy(f->opaque, f->copy, f->ncopy);
	free(f->copy);
	f->copy = NULL;
	f->ncopy = 0;
	f->copy_too_long = false;
}

/* An OSC held back (after "ESC ]"): F_HELD while it may still be 52's
 * query, else what it is. */
static int judge_held(const struct osc52_filter *f)
{
	size_t intro = f->held[0] == 0x9d ? 1 : 2;	/* ESC ], UTF-8 C1 OSC, or 8-bit OSC */
	const unsigned char *b = f->held + intro;
	size_t n = f->nheld - intro;
	static const char num[] = "52;";
	for (size_t i = 0; i < n && i < 3; i++)
		if (b[i] != (unsigned char)num[i])
			return F_PASS;
	if (n <= 3)
		return F_HELD;
	size_t i = 3;
	while (i < n && strchr("cpqs01234567", b[i]) && b[i])
		i++;
	/* still undecided with the room gone: dropped (fail closed) */
	if (i == n || (b[i] == ';' && i + 1 == n))
		return f->nheld < OSC52_PREFIX_MAX ? F_HELD : F_DROP;
	if (b[i] != ';')
		return F_PASS;
	return b[i + 1] == '?' ? F_DROP : F_COPY;
}

size_t osc52_filter(struct osc52_filter *f, const unsigned char *in, size_t n, unsigned char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = in[i];
		switch (f->state) {
		case F_TEXT:
			if (c == 0x1b) {
				f->state = F_ESC;
			} else if (c == 0xc2) {
				f->state = F_C2;	/* U+009D, OSC as a C1 control, may follow */
			} else if (c == 0x9d) {
				f->held[0] = c;	/* the 8-bit OSC */
				f->nheld = 1;
				f->state = F_HELD;
			} else {
				out[o++] = c;
			}
			break;
		case F_C2:
			if (c == 0x9d) {
				f->held[0] = 0xc2;
				f->held[1] = 0x9d;
				f->nheld = 2;
				f->state = F_HELD;
				break;
			}
			out[o++] = 0xc2;
			f->state = F_TEXT;
			i--;	/* this byte, judged as text */
			break;
		case F_ESC:
			if (c == ']') {
				f->held[0] = 0x1b;
				f->held[1] = ']';
				f->nheld = 2;
				f->state = F_HELD;
			} else if (c != 0x1b) {
				out[o++] = 0x1b;
				out[o++] = c;
				f->state = F_TEXT;
			}
			/* ESC ESC: the first means nothing, and is never let out
			 * alone (what follows, judged, could complete it) */
			break;
		case F_HELD: {
			if (c == 0x1b) {
				/* cut by what an ESC begins: the terminal drops it,
				 * and so does the filter (let out unterminated, what
				 * follows a dropped query could complete it) */
				f->state = F_ESC;
				break;
			}
			if (c == 0x07 || c == 0x9c || c == 0x18 || c == 0x1a) {
				/* it ended before it could be a query */
				memcpy(out + o, f->held, f->nheld);
				o += f->nheld;
				out[o++] = c;
				f->state = F_TEXT;
				break;
			}
			f->held[f->nheld++] = c;
			int next = judge_held(f);
			if (next == F_HELD)
				break;
			if (next != F_DROP) {
				memcpy(out + o, f->held, f->nheld);
				o += f->nheld;
			}
			if (next == F_COPY)	/* DATA's first byte is held's last */
				copy_byte(f, c);
			f->state = next;
			break;
		}
		case F_PASS:
		case F_COPY:
		case F_DROP:
			if (c == 0x1b) {	/* ST, or the end of it and a new sequence */
				f->state = f->state == F_PASS ? F_PASS_ESC : f->state == F_COPY ? F_COPY_ESC : F_DROP_ESC;
				break;
			}
			if (f->state != F_DROP)
				out[o++] = c;
			if (c == 0x07 || c == 0x9c || c == 0x18 || c == 0x1a) {	/* BEL, ST end it; CAN, SUB cut it */
				if (f->state == F_COPY)
					copy_done(f, c == 0x07 || c == 0x9c);
				f->state = F_TEXT;
			} else if (f->state == F_COPY) {
				copy_byte(f, c);
			}
			break;
		case F_PASS_ESC:
		case F_COPY_ESC:
		case F_DROP_ESC:
			if (f->state == F_COPY_ESC)
				copy_done(f, c == '\\');
			if (c == '\\') {
				if (f->state != F_DROP_ESC) {
					out[o++] = 0x1b;
					out[o++] = c;
				}
				f->state = F_TEXT;
			} else {
				f->state = F_ESC;	/* the string ended; this ESC begins a sequence */
				i--;
			}
			break;
		}
	}
	return o;
}

void osc52_filter_fini(struct osc52_filter *f)
{
	free(f->copy);
	f->copy = NULL;
}
