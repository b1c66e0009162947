/* proxy/relay_request.c - the request side of a connection: the CONNECT
 * head, TLS detection and handshake, each request head judged (egress
 * names, token endpoints, GitHub writes) and rewritten with real values,
 * its body streamed or collected.  Part of the relay: proxy/relay.c says
 * how the whole works, proxy/relay_internal.h what its files share.
 */
#include "proxy/relay_internal.h"


/* "name[:port]" / "[v6]:port" into name and port (0 when absent); name is
 * written only when the whole authority is valid (callers log it). */
static bool parse_authority(const char *a, size_t len, char *name, size_t cap, uint16_t *port);

static bool split_authority(const char *a, size_t len, char *name, size_t cap, uint16_t *port)
{
	char tmp[256];
	if (cap > sizeof(tmp) || !parse_authority(a, len, tmp, cap, port))
		return false;
	memcpy(name, tmp, strlen(tmp) + 1);
	return true;
}

static bool parse_authority(const char *a, size_t len, char *name, size_t cap, uint16_t *port)
{
	const char *end = a + len, *colon = NULL;
	if (len && a[0] == '[') {
		const char *rb = memchr(a, ']', len);
		if (!rb)
			return false;
		if ((size_t)(rb - a - 1) >= cap)
			return false;
		memcpy(name, a + 1, (size_t)(rb - a - 1));
		name[rb - a - 1] = 0;
		colon = rb + 1 < end ? rb + 1 : NULL;
		if (colon && *colon != ':')
			return false;
	} else {
		colon = memrchr(a, ':', len);
		size_t nl = colon ? (size_t)(colon - a) : len;
		if (nl >= cap)
			return false;
		memcpy(name, a, nl);
		name[nl] = 0;
	}
	*port = 0;
	if (colon) {
		unsigned long p = 0;
		const char *d = colon + 1;
		if (d == end || end - d > 5)
			return false;
		for (; d < end; d++) {
			if (*d < '0' || *d > '9')
				return false;
			p = p * 10 + (unsigned long)(*d - '0');
		}
		if (p == 0 || p > 65535)
			return false;
		*port = (uint16_t)p;
	}
	size_t nl = strlen(name);
	if (nl && name[nl - 1] == '.')
		name[--nl] = 0;
	return host_valid(name, nl);
}

static bool rq_connect(struct conn *c)
{
	ssize_t hl = http_head_len((char *)c->cin, c->cin_len, HTTP_MAX_HEAD);
	if (hl == 0)
		return false;
	if (hl < 0) {
		error_reply(c, (int)-hl, "kvmbox: malformed or oversized CONNECT request");
		return true;
	}
	struct http_msg m;
	int st = http_parse_request((char *)c->cin, (size_t)hl, &m);
	if (st) {
		error_reply(c, st, "kvmbox: malformed CONNECT request");
		return true;
	}
	if (!http_ieq(m.method, m.method_len, "CONNECT")) {
		error_reply(c, 405, "kvmbox proxy: only HTTP CONNECT is supported (use it as https_proxy)");
		return true;
	}
	uint16_t port;
	if (!split_authority(m.target, m.target_len, c->host, sizeof(c->host), &port) || !port) {
		error_reply(c, 400, "kvmbox: CONNECT target must be HOST:PORT");
		return true;
	}
	c->port = port;
	snprintf(c->dial, sizeof(c->dial), "%s", c->host);
	c->dial_port = port;
	/* the self-test endpoint is judged after the handshake (rq_handshake):
	 * only a TLS connection with its server name is one */
	if (strcasecmp(c->host, PROXY_CHECK_NAME) && egress_refused(c))
		return true;
	consume(c->cin, &c->cin_len, (size_t)hl);
	static const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";
	ep_write(&c->down, ok, sizeof(ok) - 1);
	c->rq = RQ_DETECT;
	return true;
}

static bool rq_detect(struct conn *c)
{
	if (!c->cin_len)
		return false;
	if (c->cin[0] != 0x16) {		/* not a TLS handshake record: plain HTTP */
		c->rq = RQ_HEAD;
#ifdef KVMBOX_FUZZ
		c->tls = c->px->fuzz.dial != NULL;	/* as if terminated: see proxy_fuzz_set */
		if (c->tls && !strcasecmp(c->host, PROXY_CHECK_NAME)) {	/* as rq_handshake would */
			c->check = true;
			c->dial[0] = 0;
		}
#endif
		return true;
	}
	if (ep_start_tls(&c->down, c->px->down_ctx, true)) {
		c->dead = true;
		return true;
	}
	SSL_set_app_data(c->down.ssl, c);
	ep_unread(&c->down, c->cin, c->cin_len);
	c->cin_len = 0;
	c->tls = true;
	c->rq = RQ_HANDSHAKE;
	return true;
}

static bool rq_handshake(struct conn *c)
{
	int r = ep_handshake(&c->down);
	if (r == 0)
		return false;
	if (r < 0) {
		log_info("proxy: TLS handshake with the guest for %s failed (does it trust the kvmbox CA?)",
			 c->host[0] ? c->host : "?");
		c->dead = true;
		return true;
	}
	c->rq = RQ_HEAD;
	c->head_start_ns = now_ns();
	if (c->sni[0] && !strcasecmp(c->sni, PROXY_CHECK_NAME)) {
		c->check = true;
		c->dial[0] = 0;	/* no address to pass as an IP literal, none to dial */
	}
	return true;
}

/* Check that Host names this connection's host (and port). */
static bool host_agrees(struct conn *c, const struct http_msg *m, char *name, size_t cap)
{
	uint16_t port;
	if (!m->host || !split_authority(m->host, m->host_len, name, cap, &port))
		return false;
	uint16_t def = c->tls ? 443 : 80;
	return !strcasecmp(name, c->host) && (port ? port : def) == c->port;
}

/* Remember an encoded credential sent upstream, to mask it in responses
 * (the oldest goes when the list is full). */
static void mask_remember(struct conn *c, const char *v, size_t len)
{
	for (unsigned i = 0; i < c->nmask_extra; i++)
		if (c->mask_extra_len[i] == len && !memcmp(c->mask_extra[i], v, len))
			return;
	char *copy = malloc(len);
	if (!copy)
		return;	/* the decoded value inside is still masked */
	memcpy(copy, v, len);
	if (c->nmask_extra == MASK_EXTRA_MAX) {
		explicit_bzero(c->mask_extra[0], c->mask_extra_len[0]);
		free(c->mask_extra[0]);
		c->nmask_extra--;
		memmove(c->mask_extra, c->mask_extra + 1, c->nmask_extra * sizeof(c->mask_extra[0]));
		memmove(c->mask_extra_len, c->mask_extra_len + 1, c->nmask_extra * sizeof(c->mask_extra_len[0]));
	}
	c->mask_extra[c->nmask_extra] = copy;
	c->mask_extra_len[c->nmask_extra++] = len;
}

/* Build the head (and buffered body) for the server into c->uhead.
 * subst_headers: placeholders in header values are substituted for their
 * hosts; a body is sent as given (only the token refresh gets a real value
 * in a body, built by oauth_body_build). */
static int build_upstream(struct conn *c, const struct http_msg *m, const char *body, size_t blen,
			  bool subst_headers)
{
	struct proxy *px = c->px;
	const struct secrets *sec = px->cfg.secrets;
	size_t hl = strlen(c->host);
	size_t cap = 2 * HTTP_MAX_HEAD + 2 * BODY_MAX + 64;
	char *out = malloc(cap);
	if (!out)
		return -ENOMEM;
	size_t o = (size_t)snprintf(out, cap, "%.*s %.*s HTTP/1.%d\r\n", (int)m->method_len, m->method,
				    (int)m->target_len, m->target, m->minor);
	struct subst_stats st = { .quiet = c->check };
	bool subst = subst_headers && c->tls && sec && sec->n;	/* never a real secret over plaintext */
	const struct http_hdr *accept_enc = NULL;	/* emitted last: see below */
	for (unsigned i = 0; i < m->nhdr; i++) {
		const struct http_hdr *h = &m->hdr[i];
		if (http_ieq(h->name, h->name_len, "accept-encoding")) {
			accept_enc = h;
			continue;
		}
		if (http_ieq(h->name, h->name_len, "proxy-connection") ||
		    http_ieq(h->name, h->name_len, "proxy-authorization") ||
		    (body && http_ieq(h->name, h->name_len, "content-length")) ||
		    (c->sent_continue && http_ieq(h->name, h->name_len, "expect")))
			continue;
		if (o + h->name_len + 4 > cap)
			goto nospace;
		memcpy(out + o, h->name, h->name_len);
		o += h->name_len;
		out[o++] = ':';
		out[o++] = ' ';
		ssize_t n;
		if (subst) {
			unsigned before = st.replaced;
			n = secrets_subst_header(sec, c->host, hl, h->name, h->name_len, h->value,
						 h->value_len, out + o, cap - o - 2, &st);
			if (n > 6 && st.replaced > before && !strncasecmp(out + o, "Basic ", 6))
				mask_remember(c, out + o + 6, (size_t)n - 6);
		} else {
			n = h->value_len <= cap - o - 2 ? (ssize_t)h->value_len : -ENOSPC;
			if (n > 0)
				memcpy(out + o, h->value, h->value_len);
			if (!c->tls && sec && secrets_any(sec, h->value, h->value_len))
				log_warn("proxy: placeholder sent to %s over plain HTTP; left unchanged", c->host);
		}
		if (n < 0)
			goto nospace;
		o += (size_t)n;
		out[o++] = '\r';
		out[o++] = '\n';
	}
	/* A request that carries a real value asks for an identity response:
	 * masking reads the bytes as they travel, and a compressed echo would
	 * hide the value from it (a still-encoded answer is refused, rs_head). */
	c->req_subst = st.replaced > 0;
	c->subst = st;
	if (c->req_subst || accept_enc) {
		const char *v = c->req_subst ? "identity" : accept_enc->value;
		size_t vl = c->req_subst ? 8 : accept_enc->value_len;
		if (o + 20 + vl > cap)
			goto nospace;
		o += (size_t)snprintf(out + o, cap - o, "Accept-Encoding: %.*s\r\n", (int)vl, v);
	}
	if (body) {
		char *tmp = malloc(2 * BODY_MAX);
		if (!tmp)
			goto nomem;
		ssize_t n = blen <= 2 * BODY_MAX ? (ssize_t)blen : -ENOSPC;
		if (n > 0)
			memcpy(tmp, body, blen);
		if (n < 0 || o + 40 + (size_t)n > cap) {
			explicit_bzero(tmp, 2 * BODY_MAX);
			free(tmp);
			goto nospace;
		}
		o += (size_t)snprintf(out + o, cap - o, "Content-Length: %zd\r\n\r\n", n);
		memcpy(out + o, tmp, (size_t)n);
		o += (size_t)n;
		explicit_bzero(tmp, (size_t)n);
		free(tmp);
	} else {
		if (o + 2 > cap)
			goto nospace;
		out[o++] = '\r';
		out[o++] = '\n';
	}
	if (st.replaced) {
		log_debug("proxy: %u placeholder(s) replaced for %s", st.replaced, c->host);
		c->mask_rsp = true;
	}
	c->uhead = out;
	c->uhead_len = o;
	c->uhead_off = 0;
	return 0;
nospace:
	explicit_bzero(out, cap);
	free(out);
	return -ENOSPC;
nomem:
	explicit_bzero(out, cap);
	free(out);
	return -ENOMEM;
}

static const char *find_ctype(const struct http_msg *m, size_t *len)
{
	const struct http_hdr *h = http_find(m, "content-type");
	*len = h ? h->value_len : 0;
	return h ? h->value : "";
}

/* The provider whose token endpoint this request is for, or NULL.  On a
 * token host, a path that could reach the endpoint under another spelling
 * (case, percent-encoding, repeated or trailing slashes, dot segments) is
 * held to the same rules, so no spelling carries a placeholder past them. */
static const char *token_endpoint(const char *host, size_t hostlen, const char *path, size_t plen)
{
	if (!oauth_token_host(host, hostlen))
		return NULL;
	const char *p = oauth_endpoint(host, hostlen, path, plen);
	if (p)
		return p;
	char canon[512];
	size_t o = 0;
	for (size_t i = 0; i < plen && o + 1 < sizeof(canon); i++) {
		char ch = path[i];
		if (ch == '%' || ch == ';' || ch == '\\' || (ch == '.' && (!o || canon[o - 1] == '/')))
			return "";	/* spelled in a way only the server resolves */
		if (ch == '/' && o && canon[o - 1] == '/')
			continue;
		canon[o++] = (char)tolower((unsigned char)ch);
	}
	while (o > 1 && canon[o - 1] == '/')
		o--;
	canon[o] = 0;
	for (const char *e = "/v1/oauth/token\0/oauth/token\0"; *e; e += strlen(e) + 1)
		if (strstr(canon, e))
			return "";	/* not the endpoint as spelled, so never a refresh */
	return NULL;
}

/* A request to a token endpoint.  It gets a real value only when it is the
 * refresh kvmbox performs: POST to the endpoint as spelled, no placeholder
 * in the head, a body parsed as the server parses it (oauth_body_parse)
 * that is a refresh_token grant carrying a configured refresh placeholder.
 * Then *client is its OAuth client and, for the connection that performs
 * the refresh, *out the body to send (canonical, the real refresh token
 * inside).  A request carrying a placeholder (as written or
 * percent-decoded) that is not that refresh is refused: 403 and msg.  A
 * request without one is forwarded as it is, nothing substituted: 0. */
static int token_request(struct conn *c, const struct http_msg *m, size_t hl, const char *provider,
			 const char *body, size_t blen, struct oauth_state **client,
			 char **out, size_t *outlen, char *msg, size_t msglen)
{
	const struct secrets *sec = c->px->cfg.secrets;
	if (!sec || (!oauth_carries_placeholder(sec, (char *)c->cin, hl) &&
		     !(body && oauth_carries_placeholder(sec, body, blen))))
		return 0;
	snprintf(msg, msglen, "kvmbox: request to the OAuth token endpoint of %s refused: it carries a "
		 "credential placeholder but is not the token refresh kvmbox performs", c->host);
	if (!*provider || !http_ieq(m->method, m->method_len, "POST") || !body ||
	    oauth_carries_placeholder(sec, (char *)c->cin, hl))
		return 403;
	size_t ctl;
	const char *ct = find_ctype(m, &ctl);
	struct oauth_body b;
	if (oauth_body_parse(ct, ctl, body, blen, &b))
		return 403;
	struct oauth_state *o = oauth_client_for(c->px, provider, &b);
	int r = 403;
	if (o) {
		*client = o;
		r = 0;
		if (!oauth_intercept(c, o)) {
			if (o->cfg.before_refresh)
				o->cfg.before_refresh(o->cfg.opaque);
			r = oauth_body_build(&b, "refresh_token", o->refresh->value, o->refresh->value_len,
					     out, outlen);
			if (r) {
				oauth_abort(c);
				snprintf(msg, msglen, "kvmbox: out of memory");
				r = 502;
			}
		}
	}
	oauth_body_free(&b);
	return r;
}

/* One request on the self-test endpoint (see PROXY_CHECK_NAME): judged as
 * a request to the host its Host header names would be, up to the point
 * where that one would be sent, then answered with what it would carry.
 * Nothing is dialled and no refresh is performed; the answer holds counts,
 * never a value.  Requests with a body are refused (the checks send none,
 * and no body is read here). */
static bool rq_check(struct conn *c, const struct http_msg *m, size_t hl)
{
	uint16_t port;
	if (!m->host || !split_authority(m->host, m->host_len, c->host, sizeof(c->host), &port)) {
		error_reply(c, 400, "kvmbox self-test: the Host header must name the host to judge");
		return true;
	}
	c->port = port ? port : 443;
	if (m->body != HTTP_BODY_NONE && !(m->body == HTTP_BODY_LENGTH && !m->content_length)) {
		error_reply(c, 413, "kvmbox self-test: requests take no body here");
		return true;
	}
	if (!check_host(c->host) && egress_refused(c))
		return true;
	char msg[600];
	size_t hostlen = strlen(c->host);
	if (github_check(c->px->cfg.repos, c->host, hostlen, m->method, m->method_len, m->target,
			 m->target_len, NULL, 0, msg, sizeof(msg)) == 403) {
		error_reply(c, 403, "%s", msg);
		return true;
	}
	const char *q = memchr(m->target, '?', m->target_len);
	size_t plen = q ? (size_t)(q - m->target) : m->target_len;
	bool token = token_endpoint(c->host, hostlen, m->target, plen) != NULL;
	int r = build_upstream(c, m, NULL, 0, !token);	/* as rq_head builds it */
	if (c->uhead) {
		explicit_bzero(c->uhead, c->uhead_len);
		free(c->uhead);
		c->uhead = NULL;
	}
	c->mask_rsp = c->req_subst = false;
	explicit_bzero(c->cin, hl);
	consume(c->cin, &c->cin_len, hl);
	if (r) {
		error_reply(c, 431, "kvmbox self-test: request too large after substitution");
		return true;
	}
	char body[400];
	int n = snprintf(body, sizeof(body), "kvmbox self-test: %s: substituted=%u unchanged=%u\n", c->host,
			 c->subst.replaced, c->subst.refused);
	local_reply(c, 200, "text/plain; charset=utf-8", body, (size_t)n, m->keep_alive);
	return true;
}

/* The refusals a request head alone decides (the connection's names, the
 * egress policy, the target's form, methods that would echo credentials):
 * true when one answered it. */
static bool rq_refused(struct conn *c, const struct http_msg *m)
{
	char name[256];
	if (c->tls && c->sni[0] && strcasecmp(c->sni, c->host)) {
		error_reply(c, 421, "kvmbox: TLS server name %s does not match the connection target %s",
			    c->sni, c->host);
		return true;
	}
	if (!host_agrees(c, m, name, sizeof(name))) {
		error_reply(c, 421, "kvmbox: Host header does not name %s:%u, the host this connection is for",
			    c->host, c->port);
		return true;
	}
	if (egress_refused(c))
		return true;
	if (m->target_len == 0 || (m->target[0] != '/' && !(m->target_len == 1 && m->target[0] == '*'))) {
		error_reply(c, 400, "kvmbox: request target must be a path (origin form)");
		return true;
	}
	if (http_ieq(m->method, m->method_len, "TRACE") || http_ieq(m->method, m->method_len, "TRACK")) {
		error_reply(c, 405, "kvmbox: %.*s is refused: the server would echo the request, "
			    "credentials included", (int)m->method_len, m->method);
		return true;
	}
	return false;
}

/* What the checks of a request found before it is sent. */
struct rq_plan {
	const char *provider;	/* the token endpoint's provider, or NULL */
	const char *body;	/* the whole body, when a check had to read it; else NULL */
	size_t blen;
	struct gh_lookup *g;	/* GitHub node ids to resolve before sending, or NULL */
};

enum rq_step { RQ_GO, RQ_WAIT, RQ_ANSWERED };

/* The checks that read the body (GitHub writes, token endpoints): the body
 * collected whole (100 Continue asked for once), the GitHub verdict taken;
 * RQ_WAIT until the body is all there, RQ_ANSWERED when refused. */
static enum rq_step rq_collect(struct conn *c, const struct http_msg *m, size_t hl, struct rq_plan *p)
{
	struct proxy *px = c->px;
	const char *q = memchr(m->target, '?', m->target_len);
	size_t plen = q ? (size_t)(q - m->target) : m->target_len;
	size_t hostlen = strlen(c->host);
	char msg[600];
	*p = (struct rq_plan){ 0 };
	int gh = github_check(px->cfg.repos, c->host, hostlen, m->method, m->method_len, m->target,
			      m->target_len, NULL, 0, msg, sizeof(msg));
	if (gh == 403) {
		error_reply(c, 403, "%s", msg);
		return RQ_ANSWERED;
	}
	p->provider = token_endpoint(c->host, hostlen, m->target, plen);
	if (!(gh == 1 || (p->provider && m->body != HTTP_BODY_NONE)))
		return RQ_GO;
	if (m->body == HTTP_BODY_CHUNKED) {
		error_reply(c, 411, "kvmbox: this endpoint needs a Content-Length body");
		return RQ_ANSWERED;
	}
	if (m->body == HTTP_BODY_LENGTH && m->content_length > BODY_MAX) {
		error_reply(c, 413, "kvmbox: body over %d bytes refused for this endpoint", BODY_MAX);
		return RQ_ANSWERED;
	}
	p->blen = m->body == HTTP_BODY_LENGTH ? (size_t)m->content_length : 0;
	if (c->cin_len < hl + p->blen) {
		if (m->expect_continue && !c->sent_continue) {
			static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
			ep_write(&c->down, cont, sizeof(cont) - 1);
			c->sent_continue = true;
			return RQ_ANSWERED;
		}
		return RQ_WAIT;	/* wait for the whole body */
	}
	p->body = (char *)c->cin + hl;
	if (gh != 1)
		return RQ_GO;
	struct gh_lookup *g = calloc(1, sizeof(*g));
	if (!g) {
		error_reply(c, 502, "kvmbox: out of memory");
		return RQ_ANSWERED;
	}
	gh = github_check_ids(px->cfg.repos, c->host, hostlen, m->method, m->method_len, m->target,
			      m->target_len, p->body, p->blen, &g->ids, msg, sizeof(msg));
	if (gh == GITHUB_RESOLVE) {
		gh_from_cache(px, g);
		if (!g->ask.n)
			gh = github_decide(px->cfg.repos, &g->ids, g->nodes, msg, sizeof(msg));
	}
	if (gh == GITHUB_RESOLVE) {
		p->g = g;
		return RQ_GO;
	}
	free(g);
	if (gh == 403) {
		error_reply(c, 403, "%s", msg);
		return RQ_ANSWERED;
	}
	return RQ_GO;
}

/* A request the checks let through: the token endpoint's exchange, the
 * head built for the server (placeholders substituted), the request taken
 * out of cin (wiped), the server dialled when not yet.  True: progress. */
static bool rq_commit(struct conn *c, const struct http_msg *m, size_t hl, struct rq_plan *p)
{
	char msg[600];
	memcpy(c->method, m->method, MIN(m->method_len, sizeof(c->method)));
	c->method_len = MIN(m->method_len, sizeof(c->method));
	c->req_keep_alive = m->keep_alive;
	c->req_upgrade = m->upgrade_websocket;
	c->nreq++;	/* before token_request: it may answer from the reuse window */
	struct oauth_state *refresh = NULL;
	char *refresh_body = NULL;	/* the refresh as the server gets it: real value inside */
	size_t refresh_len = 0;
	if (p->provider) {
		int t = token_request(c, m, hl, p->provider, p->body, p->blen, &refresh, &refresh_body,
				      &refresh_len, msg, sizeof(msg));
		if (t) {
			free(p->g);
			error_reply(c, t, "%s", msg);
			return true;
		}
	}
	if (refresh && !refresh_body) {	/* parked, or answered from the reuse window */
		explicit_bzero(c->cin, hl + p->blen);
		/* an answer that closes (HTTP/1.0) has emptied cin already */
		consume(c->cin, &c->cin_len, MIN(c->cin_len, hl + p->blen));
		c->sent_continue = false;
		return true;
	}
	int r = refresh_body ? build_upstream(c, m, refresh_body, refresh_len, false)
			     : build_upstream(c, m, p->body, p->blen, !p->provider);
	if (refresh_body) {
		explicit_bzero(refresh_body, refresh_len);
		free(refresh_body);
	}
	c->sent_continue = false;
	if (r) {
		free(p->g);
		oauth_abort(c);
		error_reply(c, r == -ENOSPC ? 431 : 502, "kvmbox: request too large after substitution");
		return true;
	}
	if (p->g && (r = gh_start(c, m, p->g))) {
		error_reply(c, 502, "kvmbox: cannot build the node id lookup for this GitHub mutation: %s",
			    strerror(-r));
		return true;
	}
	c->req_body = p->body ? HTTP_BODY_NONE : m->body;
	c->req_left = m->content_length;
	http_chunked_init(&c->req_ch);
	explicit_bzero(c->cin, hl + p->blen);
	consume(c->cin, &c->cin_len, hl + p->blen);
	c->rq = (c->req_body == HTTP_BODY_NONE || (c->req_body == HTTP_BODY_LENGTH && !c->req_left))
			? RQ_DONE : RQ_BODY;
	c->rs = RS_HEAD;
	c->rsp_started = false;
	c->head_start_ns = 0;
	if (!c->up.s) {
		r = conn_dial(c);
		if (r) {
			up_failed(c, r);
			return true;
		}
	}
	return true;
}

/* A request head in cin: parsed strictly, judged (rq_refused, rq_collect),
 * then sent on (rq_commit).  True when it made progress. */
static bool rq_head(struct conn *c)
{
	if (c->rs != RS_IDLE || !c->cin_len)
		return false;
	if (!c->head_start_ns)
		c->head_start_ns = now_ns();
	ssize_t hl = http_head_len((char *)c->cin, c->cin_len, HTTP_MAX_HEAD);
	if (hl == 0)
		return false;
	if (hl < 0) {
		if (hl == -431)
			error_reply(c, 431, "kvmbox: request head larger than %d bytes", HTTP_MAX_HEAD);
		else
			error_reply(c, 400, "kvmbox: malformed request (bare CR or LF)");
		return true;
	}
	struct http_msg m;
	int st = http_parse_request((char *)c->cin, (size_t)hl, &m);
	if (st) {
		error_reply(c, st, "kvmbox: malformed request refused (%s)", reason(st));
		return true;
	}
	if (c->check)		/* answered here, deny or not: nothing is dialled */
		return rq_check(c, &m, (size_t)hl);
	if (c->deny[0]) {	/* before anything else: nothing is ever dialled */
		error_reply(c, 403, "%s", c->deny);
		return true;
	}
	if (rq_refused(c, &m))
		return true;
	struct rq_plan plan;
	switch (rq_collect(c, &m, (size_t)hl, &plan)) {
	case RQ_WAIT: return false;
	case RQ_ANSWERED: return true;
	case RQ_GO: break;
	}
	return rq_commit(c, &m, (size_t)hl, &plan);
}

static bool send_uhead(struct conn *c)
{
	if (!c->uhead || !c->up.s || !c->up.hs_done)
		return false;
	ssize_t n = ep_write(&c->up, c->uhead + c->uhead_off, c->uhead_len - c->uhead_off);
	if (n <= 0)
		return false;
	c->uhead_off += (size_t)n;
	if (c->uhead_off == c->uhead_len) {
		explicit_bzero(c->uhead, c->uhead_len);
		free(c->uhead);
		c->uhead = NULL;
	}
	return true;
}

static bool rq_body(struct conn *c)
{
	if (c->uhead || !c->up.s || !c->cin_len)
		return false;
	size_t n = MIN(c->cin_len, ep_room(&c->up));
	if (!n)
		return false;
	if (c->req_body == HTTP_BODY_LENGTH) {
		n = (size_t)MIN((uint64_t)n, c->req_left);
	} else {
		ssize_t k = http_chunked_feed(&c->req_ch, c->cin, n, NULL, NULL, 0);
		if (k < 0) {
			log_info("proxy: malformed chunked request body for %s; closing", c->host);
			c->dead = true;
			return true;
		}
		n = (size_t)k;
	}
	ep_write(&c->up, c->cin, n);
	consume(c->cin, &c->cin_len, n);
	if (c->req_body == HTTP_BODY_LENGTH)
		c->req_left -= n;
	if ((c->req_body == HTTP_BODY_LENGTH && !c->req_left) ||
	    (c->req_body == HTTP_BODY_CHUNKED && c->req_ch.done)) {
		c->rq = RQ_DONE;
		if (c->rs == RS_IDLE) {		/* the response came first */
			c->rq = RQ_HEAD;
			c->head_start_ns = now_ns();
		}
	}
	return true;
}

static bool rq_tunnel(struct conn *c)
{
	if (c->uhead || !c->up.s || !c->cin_len)
		return false;
	size_t n = MIN(c->cin_len, ep_room(&c->up));
	if (!n)
		return false;
	ep_write(&c->up, c->cin, n);
	consume(c->cin, &c->cin_len, n);
	return true;
}

bool process_request(struct conn *c)
{
	bool p = send_uhead(c);
	switch (c->rq) {
	case RQ_CONNECT: return rq_connect(c) || p;
	case RQ_DETECT: return rq_detect(c) || p;
	case RQ_HANDSHAKE: return rq_handshake(c) || p;
	case RQ_HEAD: return rq_head(c) || p;
	case RQ_BODY: return rq_body(c) || p;
	case RQ_TUNNEL: return rq_tunnel(c) || p;
	default: return p;
	}
}
