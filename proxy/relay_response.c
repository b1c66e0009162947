/* proxy/relay_response.c - the response side of a connection: the head,
 * the body forwarded with every real value masked, token responses
 * captured.  Part of the relay: proxy/relay.c says how the whole works,
 * proxy/relay_internal.h what its files share.
 */
#include "proxy/relay_internal.h"


void rs_complete(struct conn *c)
{
	bool was_capture = c->rs == RS_CAPTURE;
	c->rs = RS_IDLE;
	if (!c->rsp_keep_alive) {
		ep_close(&c->up);
		c->uin_len = 0;
	}
	if (was_capture) {
		if (c->gh)
			gh_finish(c);	/* sends the held request or refuses it */
		else
			oauth_finish(c);	/* answers the guest itself */
		return;
	}
	if (!c->req_keep_alive || c->rsp_body == HTTP_BODY_CLOSE || c->rq == RQ_BODY) {
		start_closing(c);
		return;
	}
	if (c->rq == RQ_DONE) {
		c->rq = RQ_HEAD;
		c->head_start_ns = now_ns();
	}
}

/* A response being captured (token refresh, node id lookup) went wrong. */
void capture_failed(struct conn *c)
{
	if (c->gh) {
		ep_close(&c->up);
		c->uin_len = 0;
		error_reply(c, 502, "kvmbox: malformed, oversized or truncated answer from %s to the node id "
			    "lookup; mutation not sent", c->host);
		return;
	}
	oauth_abort(c);
	c->dead = true;
}

bool rs_head(struct conn *c)
{
	ssize_t hl = http_head_len((char *)c->uin, c->uin_len, RESP_HEAD_MAX);
	if (hl == 0)
		return false;
	struct http_msg m;
	if (hl < 0 || http_parse_response((char *)c->uin, (size_t)hl, c->method, c->method_len, &m)) {
		log_warn("proxy: malformed response from %s", c->host);
		ep_close(&c->up);
		c->uin_len = 0;
		oauth_abort(c);
		if (!c->rsp_started || c->gh)
			error_reply(c, 502, "kvmbox: malformed response from %s", c->host);
		else
			c->dead = true;
		return true;
	}
	if (c->gh)
		return gh_rs_head(c, &m, (size_t)hl);
	const struct http_hdr *ce = m.status >= 200 ? http_find(&m, "content-encoding") : NULL;
	if (c->req_subst && ce && !http_ieq(ce->value, ce->value_len, "identity")) {
		ep_close(&c->up);	/* asked for identity: an encoded echo could hide a value */
		c->uin_len = 0;
		oauth_abort(c);
		error_reply(c, 502, "kvmbox: %s answered a request carrying a credential with an encoded "
			    "body (%.*s) after identity was asked for; refused", c->host,
			    (int)MIN(ce->value_len, 32), ce->value);
		return true;
	}
	c->rsp_started = true;
	c->rsp_raw_left = (size_t)hl;
	c->rsp_interim = false;
	if (m.status == 101) {
		if (!c->req_upgrade) {
			c->dead = true;
			return true;
		}
		c->rs = RS_TUNNEL;
		c->rq = RQ_TUNNEL;
		return true;
	}
	if (m.status < 200) {
		c->rsp_interim = true;
		c->rsp_body = HTTP_BODY_NONE;
		c->rs = RS_BODY;
		return true;
	}
	c->rsp_status = m.status;
	c->rsp_body = m.body;
	c->rsp_left = m.content_length;
	c->rsp_keep_alive = m.keep_alive;
	http_chunked_init(&c->rsp_ch);
	if (c->oauth_owner) {
		c->rs = RS_CAPTURE;
		consume(c->uin, &c->uin_len, (size_t)hl);
		c->rsp_raw_left = 0;
		c->cap_len = 0;
		if (!c->cap && !(c->cap = malloc(CAPTURE_MAX)))
			c->dead = true;
		return true;
	}
	c->rs = RS_BODY;
	return true;
}

/* Whether the body framing says the response is complete. */
static bool rsp_done(const struct conn *c)
{
	switch (c->rsp_body) {
	case HTTP_BODY_NONE: return true;
	case HTTP_BODY_LENGTH: return c->rsp_left == 0;
	case HTTP_BODY_CHUNKED: return c->rsp_ch.done;
	default: return false;
	}
}

/* Mask every real value, and every encoded credential this connection
 * sent, in buf; log the first time. */
static void mask_buf(struct conn *c, uint8_t *buf, size_t len)
{
	unsigned n = secrets_mask(c->px->cfg.secrets, (char *)buf, len);
	for (unsigned i = 0; i < c->nmask_extra; i++)
		for (uint8_t *p = buf; (p = memmem(p, len - (size_t)(p - buf), c->mask_extra[i], c->mask_extra_len[i]));
		     p += c->mask_extra_len[i], n++)
			memset(p, '*', c->mask_extra_len[i]);
	if (n && !c->mask_logged) {
		c->mask_logged = true;
		log_warn("proxy: %s sent a real credential back in a response; masked", c->host);
	}
}

/* Where in buf[0..len) a tail starts that could begin a masked string. */
static size_t mask_hold(const struct conn *c, const uint8_t *buf, size_t len)
{
	size_t hold = secrets_partial_tail(c->px->cfg.secrets, (const char *)buf, 0, len);
	for (unsigned k = 0; k < c->nmask_extra; k++) {
		size_t from = len > c->mask_extra_len[k] ? len - c->mask_extra_len[k] : 0;
		for (size_t i = from; i < hold; i++)
			if (secrets_is_partial((const char *)buf + i, len - i, c->mask_extra[k], c->mask_extra_len[k])) {
				hold = i;
				break;
			}
	}
	return hold;
}

/* How many of the first n bytes of c->uin may go to the guest now.  On a
 * connection that carried a real value, a server that echoes it (a debug
 * endpoint, an error page quoting the request) must not hand it to the
 * guest: every real value in the buffered bytes is overwritten with '*'
 * (same length, so framing holds), and a tail that could be the start of one
 * is held until more arrives or the response ends there. */
size_t to_guest(struct conn *c, size_t n)
{
	const struct secrets *s = c->px->cfg.secrets;
	if (!c->mask_rsp || !n || !s)
		return n;
	mask_buf(c, c->uin, c->uin_len);
	bool ends_here = c->up.eof || (c->rs != RS_TUNNEL && !c->rsp_raw_left &&
				       c->rsp_body == HTTP_BODY_LENGTH && n == c->rsp_left);
	if (ends_here)
		return n;
	return MIN(n, mask_hold(c, c->uin, c->uin_len));
}

/* A chunked response on a masking connection: chunk framing could split a
 * value where the raw stream never shows it whole, so the data is decoded,
 * masked with a held-back tail, and sent in chunks of kvmbox's own framing
 * (trailers dropped). */
static bool rs_chunked_masked(struct conn *c)
{
	bool p = false;
	if (!c->mbuf && !(c->mbuf = malloc(MASK_BUF))) {
		c->dead = true;
		return true;
	}
	size_t in = MIN(c->uin_len, MASK_BUF - c->mlen);	/* decoded <= fed */
	if (in && !c->rsp_ch.done) {
		ssize_t k = http_chunked_feed(&c->rsp_ch, c->uin, in, c->mbuf, &c->mlen, MASK_BUF);
		if (k < 0) {
			log_warn("proxy: malformed chunked response from %s; closing", c->host);
			c->dead = true;
			return true;
		}
		consume(c->uin, &c->uin_len, (size_t)k);
		p = k > 0;
	}
	mask_buf(c, c->mbuf, c->mlen);
	bool ends = c->rsp_ch.done || c->up.eof;
	size_t send = ends ? c->mlen : mask_hold(c, c->mbuf, c->mlen);
	size_t room = ep_room(&c->down);
	if (send && room > 32) {
		send = MIN(send, room - 32);
		char hd[24];
		int hl = snprintf(hd, sizeof(hd), "%zx\r\n", send);
		ep_write(&c->down, hd, (size_t)hl);
		ep_write(&c->down, c->mbuf, send);
		ep_write(&c->down, "\r\n", 2);
		memmove(c->mbuf, c->mbuf + send, c->mlen - send);
		c->mlen -= send;
		p = true;
	}
	if (c->rsp_ch.done && !c->mlen && ep_room(&c->down) >= 5) {
		ep_write(&c->down, "0\r\n\r\n", 5);
		rs_complete(c);
		return true;
	}
	return p;
}

static bool rs_body(struct conn *c)
{
	bool capture = c->rs == RS_CAPTURE, p = false;
	while (c->rsp_raw_left && c->uin_len) {
		size_t n = to_guest(c, MIN(MIN(c->rsp_raw_left, c->uin_len), ep_room(&c->down)));
		if (!n)
			return p;
		ep_write(&c->down, c->uin, n);
		consume(c->uin, &c->uin_len, n);
		c->rsp_raw_left -= n;
		p = true;
	}
	if (c->rsp_raw_left)
		return p;
	if (c->rsp_interim) {
		c->rs = RS_HEAD;
		return true;
	}
	if (!capture && c->mask_rsp && c->rsp_body == HTTP_BODY_CHUNKED)
		return rs_chunked_masked(c);
	while (c->uin_len && !rsp_done(c)) {
		size_t n = capture ? c->uin_len : MIN(c->uin_len, ep_room(&c->down));
		if (c->rsp_body == HTTP_BODY_LENGTH)
			n = (size_t)MIN((uint64_t)n, c->rsp_left);
		if (!capture)
			n = to_guest(c, n);
		if (!n)
			break;
		if (c->rsp_body == HTTP_BODY_CHUNKED) {
			ssize_t k = http_chunked_feed(&c->rsp_ch, c->uin, n, capture ? c->cap : NULL,
						      &c->cap_len, CAPTURE_MAX);
			if (k < 0) {
				log_warn("proxy: malformed chunked response from %s; closing", c->host);
				capture_failed(c);
				return true;
			}
			n = (size_t)k;
		} else if (capture) {
			if (c->cap_len + n > CAPTURE_MAX) {
				capture_failed(c);
				return true;
			}
			memcpy(c->cap + c->cap_len, c->uin, n);
			c->cap_len += n;
		}
		if (!capture)
			ep_write(&c->down, c->uin, n);
		consume(c->uin, &c->uin_len, n);
		if (c->rsp_body == HTTP_BODY_LENGTH)
			c->rsp_left -= n;
		p = true;
	}
	if (rsp_done(c)) {
		rs_complete(c);
		return true;
	}
	return p;
}

bool process_response(struct conn *c)
{
	switch (c->rs) {
	case RS_IDLE:
		if (c->uin_len && c->up.s) {	/* bytes nobody asked for */
			ep_close(&c->up);
			c->uin_len = 0;
		}
		return false;
	case RS_HEAD:
		return rs_head(c);
	case RS_BODY:
	case RS_CAPTURE:
		return rs_body(c);
	case RS_TUNNEL: {
		size_t n = to_guest(c, MIN(c->uin_len, ep_room(&c->down)));
		if (!n)
			return false;
		ep_write(&c->down, c->uin, n);
		consume(c->uin, &c->uin_len, n);
		return true;
	}
	}
	return false;
}
