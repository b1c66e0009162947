/* proxy/http.h - strict HTTP/1.1 message-head parser and chunked-body framer.
 *
 * The proxy sits between a hostile guest and real servers, so it parses
 * conservatively: anything two parsers could read differently (request
 * smuggling) is refused rather than repaired.  Refused: bare CR or bare LF,
 * obs-fold continuation lines, control characters in values, whitespace
 * before the colon, more than one Content-Length, Content-Length together
 * with Transfer-Encoding, a Transfer-Encoding other than "chunked", a missing
 * or repeated Host in HTTP/1.1, heads over HTTP_MAX_HEAD bytes or with more
 * than HTTP_MAX_HEADERS fields.  The parser never allocates: headers point
 * into the caller's buffer, which must outlive the parsed struct.
 */
#ifndef KVMBOX_PROXY_HTTP_H
#define KVMBOX_PROXY_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define HTTP_MAX_HEAD 32768	/* request head bytes, request line included */
#define HTTP_MAX_HEADERS 100	/* header fields per message */
#define HTTP_MAX_TRAILER 8192	/* chunked trailer bytes */

/* One header field; name and value point into the parsed buffer.  The value
 * has optional whitespace trimmed on both sides. */
struct http_hdr {
	const char *name;
	size_t name_len;
	const char *value;
	size_t value_len;
};

/* How a message body is delimited. */
enum http_body {
	HTTP_BODY_NONE,		/* no body */
	HTTP_BODY_LENGTH,	/* exactly content_length bytes */
	HTTP_BODY_CHUNKED,	/* chunked transfer coding */
	HTTP_BODY_CLOSE,	/* until the connection closes (responses only) */
};

/* A parsed request or response head. */
struct http_msg {
	/* request line */
	const char *method;
	size_t method_len;
	const char *target;
	size_t target_len;
	/* status line */
	int status;
	int minor;			/* HTTP/1.<minor>, 0 or 1 */
	struct http_hdr hdr[HTTP_MAX_HEADERS];
	unsigned nhdr;
	enum http_body body;
	uint64_t content_length;	/* when body == HTTP_BODY_LENGTH */
	const char *host;		/* Host header value (requests), or NULL */
	size_t host_len;
	bool keep_alive;		/* connection persists after this message */
	bool upgrade_websocket;		/* Upgrade: websocket with Connection: upgrade */
	bool expect_continue;		/* Expect: 100-continue */
};

/* Length of the head at buf (request/status line through the blank line),
 * 0 when more bytes are needed, or a negative HTTP status to answer with:
 * -400 for a bare LF or CR, -431 when max bytes pass without a blank line. */
ssize_t http_head_len(const char *buf, size_t len, size_t max);

/* Parse a complete request head of len bytes (from http_head_len).  0 on
 * success, else the HTTP status to refuse it with (400, 431, 501, 505). */
int http_parse_request(const char *buf, size_t len, struct http_msg *m);

/* Parse a complete response head; req_method tells whether the request was
 * HEAD (no body whatever the headers say).  0 on success, else 502. */
int http_parse_response(const char *buf, size_t len, const char *req_method,
			size_t req_method_len, struct http_msg *m);

/* The first header named name (case-insensitive), or NULL. */
const struct http_hdr *http_find(const struct http_msg *m, const char *name);
/* Case-insensitive comparison of a counted string with a C string. */
bool http_ieq(const char *a, size_t alen, const char *b);
/* Whether the comma-separated token list val contains tok (case-insensitive). */
bool http_list_has(const char *val, size_t len, const char *tok);

/* Incremental validator for a chunked body, fed the bytes as they arrive so
 * they can be forwarded as they arrive (Server-Sent Events).  */
struct http_chunked {
	int state;
	uint64_t remaining;	/* data bytes left in the current chunk */
	unsigned digits;	/* hex digits read for the current size */
	unsigned trailer;	/* trailer bytes read */
	bool done;		/* the last chunk and trailers are complete */
};

void http_chunked_init(struct http_chunked *c);
/* Consume up to len bytes of the chunked body.  Returns how many belong to
 * the body (fewer than len only once c->done), or -1 on malformed framing.
 * When out is not NULL the chunk data (without framing) is appended there,
 * up to *out_len + ... <= out_cap; -2 when it would not fit. */
ssize_t http_chunked_feed(struct http_chunked *c, const uint8_t *p, size_t len,
			  uint8_t *out, size_t *out_len, size_t out_cap);

#endif
