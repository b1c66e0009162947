/* tests/unit/test_common_text.c - guest bytes made safe for the user's
 * terminal (common/text.h): escape sequences removed for kvmbox logs, and
 * the OSC 52 filter the holder runs on a sandbox's output: copies pass
 * (BEL or ST, any selection) and reach on_copy, queries of the user's
 * clipboard are dropped whole, other OSCs and text pass untouched, and
 * all of it the same whichever way the stream is cut. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/text.h"

static void test_strip(void **s)
{
	(void)s;
	char t[] = "\x1b[1mbold\x1b[0m\r\nline\rover\x1b]0;title\x07 x\x1bP1$r\x1b\\ y\x1b(B z\x1b[";
	size_t n = strip_terminal_sequences(t, sizeof(t) - 1);
	t[n] = 0;
	assert_string_equal(t, "bold\nline\nover x y z");
}

struct seen {
	char copy[256];
	int copies;
};

static void on_copy(void *opaque, const char *b64, size_t len)
{
	struct seen *s = opaque;
	snprintf(s->copy, sizeof(s->copy), "%.*s", (int)len, b64);
	s->copies++;
}

/* in through the filter cut into pieces of at most step bytes: the output. */
static char *run(const char *in, size_t step, struct seen *seen)
{
	static char out[4096];
	struct osc52_filter f = { .on_copy = on_copy, .opaque = seen };
	size_t n = strlen(in), o = 0;
	unsigned char buf[4096];
	for (size_t i = 0; i < n; i += step) {
		size_t k = n - i < step ? n - i : step;
		size_t w = osc52_filter(&f, (const unsigned char *)in + i, k, buf);
		assert_true(w <= k + OSC52_PREFIX_MAX);
		memcpy(out + o, buf, w);
		o += w;
	}
	out[o] = 0;
	osc52_filter_fini(&f);
	return out;
}

static void expect(const char *in, const char *want_out, const char *want_copy)
{
	for (size_t step = 1; step <= strlen(in) + 1; step++) {
		struct seen seen = { 0 };
		assert_string_equal(run(in, step, &seen), want_out);
		if (want_copy) {
			assert_int_equal(seen.copies, 1);
			assert_string_equal(seen.copy, want_copy);
		} else {
			assert_int_equal(seen.copies, 0);
		}
	}
}

static void test_osc52(void **s)
{
	(void)s;
	/* copies pass, and are kept */
	expect("a\x1b]52;c;aGVsbG8=\x07" "b", "a\x1b]52;c;aGVsbG8=\x07" "b", "aGVsbG8=");
	expect("\x1b]52;;aGk=\x1b\\", "\x1b]52;;aGk=\x1b\\", "aGk=");
	expect("\x1b]52;ps0;eA==\x07", "\x1b]52;ps0;eA==\x07", "eA==");
	/* queries of the user's clipboard never reach the terminal */
	expect("a\x1b]52;c;?\x07" "b", "ab", NULL);
	expect("a\x1b]52;c;?\x1b\\b", "ab", NULL);
	expect("\x1b]52;;?\x07", "", NULL);
	expect("\x1b]52;cpqs01234567;?\x07z", "z", NULL);
	/* other OSCs, CSI, text: as they are */
	expect("\x1b]0;title\x07\x1b]10;?\x07\x1b[2J\x1b\x1bx", "\x1b]0;title\x07\x1b]10;?\x07\x1b[2J\x1bx", NULL);
	expect("\x1b]5;x\x07\x1b]521;?\x07", "\x1b]5;x\x07\x1b]521;?\x07", NULL);
	/* a selection that is not one: passed, not judged */
	expect("\x1b]52;zz;?\x07", "\x1b]52;zz;?\x07", NULL);
	/* the C1 OSC, as UTF-8 and as a byte */
	expect("a\xc2\x9d" "52;c;?\x07" "b\xc2\xa9", "ab\xc2\xa9", NULL);
	expect("a\x9d" "52;c;?\x07" "b", "ab", NULL);
	expect("\xc2\x9d" "52;c;eA==\x07", "\xc2\x9d" "52;c;eA==\x07", "eA==");
	/* a selection too long to judge: dropped, not passed */
	expect("\x1b]52;cccccccccccccccccccccccccccccccccccccccc;?\x07z", "z", NULL);
	/* an ESC ends any string and begins the next sequence, which is judged */
	expect("\x1b]0;x\x1b]52;c;?\x07y", "\x1b]0;xy", NULL);
	expect("\x1b]52;c;?\x1b]52;c;?\x07y", "y", NULL);
	expect("\x1b]52;c;aGk=\x1b]52;c;?\x07y", "\x1b]52;c;aGk=y", NULL);
	expect("\x1b]5\x1b]52;c;?\x07y", "y", NULL);
	expect("\x1b]5\x1b]52;c;?\x07" "2;c;?\x07", "2;c;?\x07", NULL);	/* no splice */
	/* a lone ESC is never left to pair with text after a dropped query */
	expect("\x1b\x1b]52;c;?\x07]52;c;?\x07", "]52;c;?\x07", NULL);
	/* the C1 ST ends strings too */
	expect("\x1b]0;x\x9c\x1b]52;c;?\x07y", "\x1b]0;x\x9cy", NULL);
	expect("\x1b]52;c;aGk=\x9cz", "\x1b]52;c;aGk=\x9cz", "aGk=");
	/* a copy cut by CAN is not kept */
	expect("\x1b]52;c;aGk=\x18q", "\x1b]52;c;aGk=\x18q", NULL);
	/* an OSC that ends while held back */
	expect("\x1b]5\x07t", "\x1b]5\x07t", NULL);
	expect("\x1b]52;\x07t", "\x1b]52;\x07t", NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_strip),
		cmocka_unit_test(test_osc52),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
