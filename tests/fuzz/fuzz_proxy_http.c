/* tests/fuzz/fuzz_proxy_http.c - the HTTP head parser and chunked framer on
 * arbitrary bytes: no crash, every returned length within the input, and
 * every parsed header inside the buffer. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/http.h"

static void check_msg(const struct http_msg *m, const char *buf, size_t len)
{
	for (unsigned i = 0; i < m->nhdr; i++) {
		const struct http_hdr *h = &m->hdr[i];
		if (h->name < buf || h->name + h->name_len > buf + len ||
		    h->value < buf || h->value + h->value_len > buf + len)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	struct http_msg m;
	ssize_t hl = http_head_len(buf, size, HTTP_MAX_HEAD);
	if (hl > 0) {
		if ((size_t)hl > size)
			abort();
		if (http_parse_request(buf, (size_t)hl, &m) == 0) {
			check_msg(&m, buf, (size_t)hl);
			if (m.body == HTTP_BODY_CLOSE)
				abort();	/* requests never run to close */
		}
		if (http_parse_response(buf, (size_t)hl, "GET", 3, &m) == 0)
			check_msg(&m, buf, (size_t)hl);
	}
	/* chunked framing, fed in two pieces */
	struct http_chunked c;
	uint8_t out[4096];
	size_t ol = 0;
	http_chunked_init(&c);
	size_t half = size / 2;
	ssize_t a = http_chunked_feed(&c, data, half, out, &ol, sizeof(out));
	if (a >= 0 && !c.done) {
		ssize_t b = http_chunked_feed(&c, data + half, size - half, out, &ol, sizeof(out));
		if (b > (ssize_t)(size - half))
			abort();
	}
	if (a > (ssize_t)half || ol > sizeof(out))
		abort();
	return 0;
}
