/* tests/unit/test_proxy_http.c - the strict HTTP parser accepts well-formed
 * heads and refuses every smuggling shape with the right status. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "proxy/http.h"

static int req(const char *s, struct http_msg *m)
{
	ssize_t n = http_head_len(s, strlen(s), HTTP_MAX_HEAD);
	if (n < 0)
		return (int)-n;
	if (n == 0)
		return -1;
	return http_parse_request(s, (size_t)n, m);
}

static void test_good_requests(void **state)
{
	(void)state;
	struct http_msg m;
	assert_int_equal(req("GET /a?b=c HTTP/1.1\r\nHost: example.com\r\nX-Api-Key:  k \r\n\r\n", &m), 0);
	assert_true(http_ieq(m.method, m.method_len, "GET"));
	assert_int_equal(m.target_len, 6);
	assert_int_equal(m.host_len, 11);
	assert_int_equal(m.body, HTTP_BODY_NONE);
	assert_true(m.keep_alive);
	const struct http_hdr *h = http_find(&m, "x-api-key");
	assert_non_null(h);
	assert_int_equal(h->value_len, 1);
	assert_int_equal(req("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 12\r\nConnection: close\r\n\r\n", &m), 0);
	assert_int_equal(m.body, HTTP_BODY_LENGTH);
	assert_int_equal(m.content_length, 12);
	assert_false(m.keep_alive);
	assert_int_equal(req("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n", &m), 0);
	assert_int_equal(m.body, HTTP_BODY_CHUNKED);
	assert_int_equal(req("GET /ws HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n", &m), 0);
	assert_true(m.upgrade_websocket);
	assert_int_equal(req("GET / HTTP/1.0\r\n\r\n", &m), 0);
	assert_false(m.keep_alive);
}

static void test_smuggling_refused(void **state)
{
	(void)state;
	struct http_msg m;
	/* CL + TE, two CLs, two TEs, TE in 1.0, unknown TE, bad CL */
	assert_int_equal(req("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", &m), 400);
	assert_int_equal(req("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n", &m), 400);
	assert_int_equal(req("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 3\r\n\r\n", &m), 400);
	assert_int_equal(req("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", &m), 400);
	assert_int_equal(req("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", &m), 400);
	assert_int_equal(req("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", &m), 501);
	assert_int_equal(req("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +3\r\n\r\n", &m), 400);
	assert_int_equal(req("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 9999999999999999999\r\n\r\n", &m), 400);
	/* obs-fold, space before colon, bare LF, bare CR, NUL, no/two Host */
	assert_int_equal(req("GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n", &m), 400);
	assert_int_equal(req("GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding : chunked\r\n\r\n", &m), 400);
	assert_int_equal(req("GET / HTTP/1.1\nHost: h\r\n\r\n", &m), 400);
	assert_int_equal(req("GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n", &m), 400);
	const char nul[] = "GET / HTTP/1.1\r\nHost: h\r\nX: a\0b\r\n\r\n";
	ssize_t n = http_head_len(nul, sizeof(nul) - 1, HTTP_MAX_HEAD);
	assert_true(n > 0);
	assert_int_equal(http_parse_request(nul, (size_t)n, &m), 400);
	assert_int_equal(req("GET / HTTP/1.1\r\n\r\n", &m), 400);
	assert_int_equal(req("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", &m), 400);
	assert_int_equal(req("GET / HTTP/2.0\r\nHost: a\r\n\r\n", &m), 505);
	assert_int_equal(req("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", &m), 400);
}

static void test_limits(void **state)
{
	(void)state;
	static char big[HTTP_MAX_HEAD + 64];
	memset(big, 'a', sizeof(big));
	memcpy(big, "GET / HTTP/1.1\r\nHost: h\r\nX: ", 27);
	assert_int_equal(http_head_len(big, sizeof(big), HTTP_MAX_HEAD), -431);
	assert_int_equal(http_head_len("GET / HTTP/1.1\r\nHost: h\r\n", 25, HTTP_MAX_HEAD), 0);
	/* too many fields */
	static char many[HTTP_MAX_HEAD];
	size_t o = (size_t)sprintf(many, "GET / HTTP/1.1\r\nHost: h\r\n");
	for (int i = 0; i < HTTP_MAX_HEADERS + 1; i++)
		o += (size_t)sprintf(many + o, "X%d: y\r\n", i);
	o += (size_t)sprintf(many + o, "\r\n");
	struct http_msg m;
	assert_int_equal(req(many, &m), 431);
}

static void test_responses(void **state)
{
	(void)state;
	struct http_msg m;
	const char *r1 = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n";
	assert_int_equal(http_parse_response(r1, strlen(r1), "GET", 3, &m), 0);
	assert_int_equal(m.body, HTTP_BODY_CLOSE);
	assert_false(m.keep_alive);
	const char *r2 = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
	assert_int_equal(http_parse_response(r2, strlen(r2), "GET", 3, &m), 0);
	assert_int_equal(m.body, HTTP_BODY_CHUNKED);
	assert_int_equal(http_parse_response(r2, strlen(r2), "HEAD", 4, &m), 0);
	assert_int_equal(m.body, HTTP_BODY_NONE);
	const char *r3 = "HTTP/1.1 204\r\nContent-Length: 5\r\n\r\n";
	assert_int_equal(http_parse_response(r3, strlen(r3), "GET", 3, &m), 0);
	assert_int_equal(m.body, HTTP_BODY_NONE);
	assert_int_equal(m.status, 204);
	const char *bad = "HTTP/1.1 2x0 OK\r\n\r\n";
	assert_int_equal(http_parse_response(bad, strlen(bad), "GET", 3, &m), 502);
	const char *cl2 = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n";
	assert_int_equal(http_parse_response(cl2, strlen(cl2), "GET", 3, &m), 502);
}

static void test_chunked(void **state)
{
	(void)state;
	struct http_chunked c;
	const char *body = "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\nNEXT";
	uint8_t out[64];
	size_t ol = 0;
	/* byte by byte: incremental framing gives the same result */
	http_chunked_init(&c);
	size_t used = 0;
	for (size_t i = 0; i < strlen(body) && !c.done; i++) {
		ssize_t r = http_chunked_feed(&c, (const uint8_t *)body + i, 1, out, &ol, sizeof(out));
		assert_true(r >= 0);
		used += (size_t)r;
	}
	assert_true(c.done);
	assert_int_equal(used, strlen(body) - 4);
	assert_int_equal(ol, 11);
	assert_memory_equal(out, "hello world", 11);
	const char *bads[] = { "5\nhello\r\n0\r\n\r\n", "x\r\n", "5\r\nhelloX\r\n",
			       "1234567890abcdef0\r\n", "0\r\n\rX", ";\r\n" };
	for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
		http_chunked_init(&c);
		assert_int_equal(http_chunked_feed(&c, (const uint8_t *)bads[i], strlen(bads[i]), NULL, NULL, 0), -1);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_requests),
		cmocka_unit_test(test_smuggling_refused),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_responses),
		cmocka_unit_test(test_chunked),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
