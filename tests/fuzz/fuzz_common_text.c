/* tests/fuzz/fuzz_common_text.c - the filters of a guest's terminal stream
 * (common/text.h) on arbitrary bytes: the OSC 52 filter, fed in two pieces
 * cut where the first byte says, never writes past its bound, gives the
 * same output however the stream is cut, and never lets a clipboard query
 * ("ESC ] 52 ; SEL ; ?") through whole; strip_terminal_sequences leaves no
 * ESC and never grows the text. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t filter_all(const uint8_t *in, size_t n, size_t cut, unsigned char *out)
{
	struct osc52_filter f = { 0 };
	size_t o = osc52_filter(&f, in, cut, out);
	if (o > cut + OSC52_PREFIX_MAX)
		abort();
	size_t w = osc52_filter(&f, in + cut, n - cut, out + o);
	if (w > n - cut + OSC52_PREFIX_MAX)
		abort();
	osc52_filter_fini(&f);
	return o + w;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t n = size - 1, cut = n ? data[0] % (n + 1) : 0;
	const uint8_t *in = data + 1;
	unsigned char *a = malloc(n + 2 * OSC52_PREFIX_MAX), *b = malloc(n + 2 * OSC52_PREFIX_MAX);
	char *t = malloc(n + 1);
	if (!a || !b || !t)
		abort();
	size_t la = filter_all(in, n, cut, a), lb = filter_all(in, n, 0, b);
	if (la != lb || memcmp(a, b, la))
		abort();
	if (la <= n + OSC52_PREFIX_MAX) {
		static const char q[] = "\x1b]52;c;?\x07";
		if (memmem(a, la, q, sizeof(q) - 1))
			abort();
	}
	memcpy(t, in, n);
	size_t lt = strip_terminal_sequences(t, n);
	if (lt > n || memchr(t, 0x1b, lt))
		abort();
	free(a);
	free(b);
	free(t);
	return 0;
}
