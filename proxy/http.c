/* proxy/http.c - strict HTTP/1.1 head parser and chunked framer (see http.h).
 *
 * Everything here works on bytes already in memory and bounded by the
 * caller; no allocation, no recursion, every index checked against len.
 */
#include "proxy/http.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

static bool is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Field-value characters: VCHAR, SP, HTAB and obs-text; no CTLs. */
static bool is_vchar_ws(unsigned char c)
{
	return c == ' ' || c == '\t' || (c > 0x20 && c != 0x7f);
}

ssize_t http_head_len(const char *buf, size_t len, size_t max)
{
	size_t n = len < max ? len : max;
	for (size_t i = 0; i < n; i++) {
		if (buf[i] == '\n') {
			if (i == 0 || buf[i - 1] != '\r')
				return -400;
			if (i >= 3 && buf[i - 2] == '\n' && buf[i - 3] == '\r')
				return (ssize_t)(i + 1);
		} else if (buf[i] == '\r' && i + 1 < len && buf[i + 1] != '\n') {
			return -400;
		}
	}
	return len >= max ? -431 : 0;
}

bool http_ieq(const char *a, size_t alen, const char *b)
{
	return strlen(b) == alen && strncasecmp(a, b, alen) == 0;
}

bool http_list_has(const char *val, size_t len, const char *tok)
{
	size_t i = 0;
	while (i < len) {
		while (i < len && (val[i] == ' ' || val[i] == '\t' || val[i] == ','))
			i++;
		size_t s = i;
		while (i < len && val[i] != ',')
			i++;
		size_t e = i;
		while (e > s && (val[e - 1] == ' ' || val[e - 1] == '\t'))
			e--;
		if (e > s && http_ieq(val + s, e - s, tok))
			return true;
	}
	return false;
}

const struct http_hdr *http_find(const struct http_msg *m, const char *name)
{
	for (unsigned i = 0; i < m->nhdr; i++)
		if (http_ieq(m->hdr[i].name, m->hdr[i].name_len, name))
			return &m->hdr[i];
	return NULL;
}

/* Split the lines after the start line into m->hdr.  p..end is the header
 * block including the final CRLF CRLF.  0 or an HTTP status. */
static int parse_fields(const char *p, const char *end, struct http_msg *m, int bad)
{
	m->nhdr = 0;
	while (p < end) {
		const char *eol = memchr(p, '\r', (size_t)(end - p));
		if (!eol || eol + 1 >= end || eol[1] != '\n')
			return bad;
		if (eol == p)
			return eol + 2 == end ? 0 : bad;	/* blank line: end of head */
		if (*p == ' ' || *p == '\t')
			return bad;				/* obs-fold */
		const char *colon = p;
		while (colon < eol && is_tchar((unsigned char)*colon))
			colon++;
		if (colon == p || colon >= eol || *colon != ':')
			return bad;			/* empty name, bad char, space before ':' */
		const char *v = colon + 1, *ve = eol;
		for (const char *q = v; q < ve; q++)
			if (!is_vchar_ws((unsigned char)*q))
				return bad;
		while (v < ve && (*v == ' ' || *v == '\t'))
			v++;
		while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
			ve--;
		if (m->nhdr >= HTTP_MAX_HEADERS)
			return bad == 400 ? 431 : bad;
		m->hdr[m->nhdr++] = (struct http_hdr){ p, (size_t)(colon - p), v, (size_t)(ve - v) };
		p = eol + 2;
	}
	return bad;
}

/* Content-Length: 1 to 18 digits, nothing else. */
static int parse_length(const struct http_hdr *h, uint64_t *out)
{
	if (h->value_len == 0 || h->value_len > 18)
		return -1;
	uint64_t v = 0;
	for (size_t i = 0; i < h->value_len; i++) {
		if (h->value[i] < '0' || h->value[i] > '9')
			return -1;
		v = v * 10 + (uint64_t)(h->value[i] - '0');
	}
	*out = v;
	return 0;
}

/* Framing and connection fields shared by requests and responses. */
static int parse_framing(struct http_msg *m, int bad, int bad_te)
{
	const struct http_hdr *cl = NULL, *te = NULL;
	bool conn_close = false, conn_keep = false, conn_upgrade = false, up_ws = false;
	for (unsigned i = 0; i < m->nhdr; i++) {
		const struct http_hdr *h = &m->hdr[i];
		if (http_ieq(h->name, h->name_len, "content-length")) {
			if (cl)
				return bad;
			cl = h;
		} else if (http_ieq(h->name, h->name_len, "transfer-encoding")) {
			if (te)
				return bad;
			te = h;
		} else if (http_ieq(h->name, h->name_len, "connection")) {
			conn_close |= http_list_has(h->value, h->value_len, "close");
			conn_keep |= http_list_has(h->value, h->value_len, "keep-alive");
			conn_upgrade |= http_list_has(h->value, h->value_len, "upgrade");
		} else if (http_ieq(h->name, h->name_len, "upgrade")) {
			up_ws |= http_list_has(h->value, h->value_len, "websocket");
		} else if (http_ieq(h->name, h->name_len, "expect")) {
			m->expect_continue = http_ieq(h->value, h->value_len, "100-continue");
		}
	}
	if (cl && te)
		return bad;
	m->body = HTTP_BODY_NONE;
	if (te) {
		if (m->minor == 0)
			return bad;
		if (!http_ieq(te->value, te->value_len, "chunked"))
			return bad_te;
		m->body = HTTP_BODY_CHUNKED;
	} else if (cl) {
		if (parse_length(cl, &m->content_length))
			return bad;
		m->body = HTTP_BODY_LENGTH;
	}
	m->keep_alive = m->minor == 1 ? !conn_close : (conn_keep && !conn_close);
	m->upgrade_websocket = conn_upgrade && up_ws;
	return 0;
}

/* "HTTP/1.x" at p: minor version, or -1. */
static int parse_version(const char *p, size_t len)
{
	if (len != 8 || memcmp(p, "HTTP/1.", 7) || (p[7] != '0' && p[7] != '1'))
		return -1;
	return p[7] - '0';
}

int http_parse_request(const char *buf, size_t len, struct http_msg *m)
{
	memset(m, 0, sizeof(*m));
	if (len < 4 || len > HTTP_MAX_HEAD)
		return len > HTTP_MAX_HEAD ? 431 : 400;
	const char *end = buf + len;
	const char *eol = memchr(buf, '\r', len);
	if (!eol)
		return 400;
	const char *p = buf;
	while (p < eol && is_tchar((unsigned char)*p))
		p++;
	if (p == buf || p >= eol || *p != ' ' || p - buf > 32)
		return 400;
	m->method = buf;
	m->method_len = (size_t)(p - buf);
	const char *t = ++p;
	while (p < eol && (unsigned char)*p > 0x20 && *p != 0x7f)
		p++;
	if (p == t || p >= eol || *p != ' ')
		return 400;
	m->target = t;
	m->target_len = (size_t)(p - t);
	p++;
	m->minor = parse_version(p, (size_t)(eol - p));
	if (m->minor < 0)
		return (eol - p == 8 && !memcmp(p, "HTTP/", 5)) ? 505 : 400;
	int r = parse_fields(eol + 2, end, m, 400);
	if (r)
		return r;
	r = parse_framing(m, 400, 501);
	if (r)
		return r;
	for (unsigned i = 0; i < m->nhdr; i++) {
		if (!http_ieq(m->hdr[i].name, m->hdr[i].name_len, "host"))
			continue;
		if (m->host)
			return 400;
		m->host = m->hdr[i].value;
		m->host_len = m->hdr[i].value_len;
	}
	if (m->minor == 1 && (!m->host || m->host_len == 0))
		return 400;
	return 0;
}

int http_parse_response(const char *buf, size_t len, const char *req_method,
			size_t req_method_len, struct http_msg *m)
{
	memset(m, 0, sizeof(*m));
	const char *end = buf + len;
	const char *eol = memchr(buf, '\r', len);
	if (len < 4 || !eol || eol - buf < 12)
		return 502;
	m->minor = parse_version(buf, 8);
	if (m->minor < 0 || buf[8] != ' ')
		return 502;
	int st = 0;
	for (int i = 9; i < 12; i++) {
		if (buf[i] < '0' || buf[i] > '9')
			return 502;
		st = st * 10 + (buf[i] - '0');
	}
	if (st < 100 || (eol - buf > 12 && buf[12] != ' '))
		return 502;
	for (const char *q = buf + 12; q < eol; q++)
		if (!is_vchar_ws((unsigned char)*q))
			return 502;
	m->status = st;
	int r = parse_fields(eol + 2, end, m, 502);
	if (r)
		return 502;
	r = parse_framing(m, 502, 1);
	if (r == 502)
		return 502;
	/* A Transfer-Encoding other than chunked, or no framing at all: the
	 * body runs until the server closes. */
	if (r == 1 || m->body == HTTP_BODY_NONE)
		m->body = HTTP_BODY_CLOSE;
	if ((st >= 100 && st < 200) || st == 204 || st == 304 ||
	    http_ieq(req_method, req_method_len, "HEAD"))
		m->body = HTTP_BODY_NONE;
	if (m->body == HTTP_BODY_CLOSE)
		m->keep_alive = false;
	return 0;
}

enum {
	CH_SIZE, CH_EXT, CH_SIZE_LF, CH_DATA, CH_DATA_CR, CH_DATA_LF,
	CH_TRAILER_START, CH_TRAILER_LINE, CH_TRAILER_LF, CH_END_LF,
};

void http_chunked_init(struct http_chunked *c)
{
	memset(c, 0, sizeof(*c));
	c->state = CH_SIZE;
}

static int hexval(unsigned char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	ch |= 0x20;
	return (ch >= 'a' && ch <= 'f') ? ch - 'a' + 10 : -1;
}

ssize_t http_chunked_feed(struct http_chunked *c, const uint8_t *p, size_t len,
			  uint8_t *out, size_t *out_len, size_t out_cap)
{
	size_t i = 0;
	while (i < len && !c->done) {
		unsigned char ch = p[i];
		switch (c->state) {
		case CH_SIZE: {
			int h = hexval(ch);
			if (h >= 0) {
				if (++c->digits > 15)
					return -1;
				c->remaining = c->remaining * 16 + (uint64_t)h;
			} else if (c->digits && ch == ';') {
				c->state = CH_EXT;
			} else if (c->digits && ch == '\r') {
				c->state = CH_SIZE_LF;
			} else {
				return -1;
			}
			i++;
			break;
		}
		case CH_EXT:
			if (ch == '\r')
				c->state = CH_SIZE_LF;
			else if (!is_vchar_ws(ch))
				return -1;
			i++;
			break;
		case CH_SIZE_LF:
			if (ch != '\n')
				return -1;
			c->state = c->remaining ? CH_DATA : CH_TRAILER_START;
			c->digits = 0;
			i++;
			break;
		case CH_DATA: {
			size_t n = len - i;
			if (n > c->remaining)
				n = (size_t)c->remaining;
			if (out) {
				if (*out_len + n > out_cap)
					return -2;
				memcpy(out + *out_len, p + i, n);
				*out_len += n;
			}
			c->remaining -= n;
			i += n;
			if (!c->remaining)
				c->state = CH_DATA_CR;
			break;
		}
		case CH_DATA_CR:
			if (ch != '\r')
				return -1;
			c->state = CH_DATA_LF;
			i++;
			break;
		case CH_DATA_LF:
			if (ch != '\n')
				return -1;
			c->state = CH_SIZE;
			i++;
			break;
		case CH_TRAILER_START:
			if (ch == '\r') {
				c->state = CH_END_LF;
			} else if (is_tchar(ch)) {
				c->state = CH_TRAILER_LINE;
			} else {
				return -1;
			}
			if (++c->trailer > HTTP_MAX_TRAILER)
				return -1;
			i++;
			break;
		case CH_TRAILER_LINE:
			if (ch == '\r')
				c->state = CH_TRAILER_LF;
			else if (!is_vchar_ws(ch))
				return -1;
			if (++c->trailer > HTTP_MAX_TRAILER)
				return -1;
			i++;
			break;
		case CH_TRAILER_LF:
			if (ch != '\n')
				return -1;
			c->state = CH_TRAILER_START;
			i++;
			break;
		case CH_END_LF:
			if (ch != '\n')
				return -1;
			c->done = true;
			i++;
			break;
		default:
			return -1;
		}
	}
	return (ssize_t)i;
}
