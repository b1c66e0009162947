/* proxy/relay.c - the per-connection HTTP/1.1 relay and the proxy object.
 *
 * One struct conn per guest stream.  Two state machines run side by side:
 * the request side (CONNECT head, TLS detection and handshake, request
 * head, request body, tunnel) reads the guest, the response side (head,
 * body, capture for OAuth, tunnel) reads the server.  conn_pump() moves
 * bytes until nothing moves, then asks the streams for readiness; it reads
 * from one side only while the other side's output queue has room, which
 * bounds memory per connection and gives back-pressure both ways.  Bodies
 * are forwarded as they arrive (Content-Length and chunked framing are
 * tracked, never buffered), except the small bodies a policy must see whole
 * (token endpoints, GitHub GraphQL), which are capped at BODY_MAX.
 *
 * A GitHub GraphQL mutation that carries node ids is held (built, not
 * sent) while the same upstream connection first carries one nodes(ids:)
 * lookup with the guest's own, substituted Authorization; its answer is
 * captured like a token response, and only then is the held request sent
 * or a 403 given (struct gh_lookup).  Resolved ids are cached per proxy.
 *
 * A connection is freed only at the end of conn_pump() (c->dead), never
 * from inside a step, so no step touches freed memory.
 *
 * The files: this one, the small helpers, the TLS contexts and the proxy
 * object with its listener, timer and connections' lives; relay_server.c
 * dialling; relay_request.c and relay_response.c the two sides;
 * relay_pump.c the pump; relay_oauth.c and relay_github.c the credential
 * hooks; relay_internal.h what they share.
 */
#include "proxy/relay_internal.h"


/* ---- small helpers ---- */

void consume(uint8_t *buf, size_t *len, size_t n)
{
	memmove(buf, buf + n, *len - n);
	*len -= n;
}

const char *reason(int st)
{
	switch (st) {
	case 100: return "Continue";
	case 200: return "OK";
	case 400: return "Bad Request";
	case 403: return "Forbidden";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 421: return "Misdirected Request";
	case 431: return "Request Header Fields Too Large";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	default: return "Error";
	}
}

void start_closing(struct conn *c)
{
	if (!c->closing) {
		c->closing = true;
		c->closing_ns = now_ns();
	}
}

/* A response made by the proxy itself.  keep: the connection continues
 * with the next request; else it closes once the reply is out. */
void local_reply(struct conn *c, int status, const char *ctype, const char *body,
			size_t len, bool keep)
{
	gh_free(c);	/* a reply of our own ends the request: nothing is held */
	char head[512];
	int hl = snprintf(head, sizeof(head),
			  "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
			  "Cache-Control: no-store\r\nConnection: %s\r\n\r\n",
			  status, reason(status), ctype, len, keep ? "keep-alive" : "close");
	if (ep_room(&c->down) < (size_t)hl + len) {
		c->dead = true;
		return;
	}
	ep_write(&c->down, head, (size_t)hl);
	ep_write(&c->down, body, len);
	c->rs = RS_IDLE;
	if (keep) {
		c->rq = RQ_HEAD;
		c->head_start_ns = now_ns();
	} else {
		c->rq = RQ_CLOSED;
		c->cin_len = 0;
		start_closing(c);
	}
}

/* An error reply: one text line, then close. */
void error_reply(struct conn *c, int status, const char *fmt, ...)
{
	char msg[700];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(msg, sizeof(msg) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n > sizeof(msg) - 2)
		n = (int)sizeof(msg) - 2;
	msg[n++] = '\n';
	log_info("proxy: %d for %s: %.*s", status, c->host[0] ? c->host : "?", n - 1, msg);
	if (status == 403 && !c->check && c->px->cfg.refused) {	/* the self-test's are no refusals */
		msg[n - 1] = 0;
		c->px->cfg.refused(c->px->cfg.refused_opaque, c->host[0] ? c->host : "?", msg);
		msg[n - 1] = '\n';
	}
	local_reply(c, status, "text/plain; charset=utf-8", msg, (size_t)n, false);
}

/* ---- TLS contexts ---- */

static int servername_cb(SSL *ssl, int *al, void *arg)
{
	(void)al;
	struct proxy *px = arg;
	struct conn *c = SSL_get_app_data(ssl);
	const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	if (sni && host_valid(sni, strlen(sni))) {
		snprintf(c->sni, sizeof(c->sni), "%s", sni);
		size_t l = strlen(c->sni);
		if (l && c->sni[l - 1] == '.')
			c->sni[l - 1] = 0;
		if (c->host_from_sni) {
			if (c->dst_name[0] && strcasecmp(c->dst_name, c->sni))
				snprintf(c->host, sizeof(c->host), "%s", c->dst_name);	/* 421 later */
			else
				snprintf(c->host, sizeof(c->host), "%s", c->sni);
		}
	}
	const char *name = c->sni[0] ? c->sni : c->host;
	if (ca_use_leaf(px->ca, ssl, name))
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	return SSL_TLSEXT_ERR_OK;
}

static int alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
		   const unsigned char *in, unsigned inlen, void *arg)
{
	(void)ssl;
	(void)arg;
	static const unsigned char h1[] = { 8, 'h', 't', 't', 'p', '/', '1', '.', '1' };
	unsigned char *sel;
	if (SSL_select_next_proto(&sel, outlen, h1, sizeof(h1), in, inlen) != OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_NOACK;
	*out = sel;
	return SSL_TLSEXT_ERR_OK;
}

int make_ctxs(struct proxy *px)
{
	px->down_ctx = SSL_CTX_new(TLS_server_method());
	px->up_ctx = SSL_CTX_new(TLS_client_method());
	if (!px->down_ctx || !px->up_ctx)
		return -ENOMEM;
	SSL_CTX_set_min_proto_version(px->down_ctx, TLS1_2_VERSION);
	SSL_CTX_set_min_proto_version(px->up_ctx, TLS1_2_VERSION);
	SSL_CTX_set_tlsext_servername_callback(px->down_ctx, servername_cb);
	SSL_CTX_set_tlsext_servername_arg(px->down_ctx, px);
	SSL_CTX_set_alpn_select_cb(px->down_ctx, alpn_cb, NULL);
	SSL_CTX_set_options(px->down_ctx, SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_verify(px->up_ctx, SSL_VERIFY_PEER, NULL);
	int ok = px->cfg.upstream_ca ? SSL_CTX_load_verify_locations(px->up_ctx, px->cfg.upstream_ca, NULL)
				     : SSL_CTX_set_default_verify_paths(px->up_ctx);
	if (ok != 1) {
		log_err("proxy: cannot load the upstream trust store %s",
			px->cfg.upstream_ca ? px->cfg.upstream_ca : "(system default)");
		return -EINVAL;
	}
	static const unsigned char h1[] = { 8, 'h', 't', 't', 'p', '/', '1', '.', '1' };
	SSL_CTX_set_alpn_protos(px->up_ctx, h1, sizeof(h1));
	return 0;
}

/* ---- connections and the proxy ---- */

static struct conn *conn_new(struct proxy *px, struct stream *s)
{
	struct conn *c = calloc(1, sizeof(*c));
	if (c) {
		c->cin = malloc(CIN_CAP);
		c->uin = malloc(UIN_CAP);
	}
	if (!c || !c->cin || !c->uin || ep_open(&c->down, s)) {
		if (c) {
			free(c->cin);
			free(c->uin);
		} else {
			s->ops->close(s);
		}
		free(c);
		return NULL;
	}
	c->px = px;
	s->notify = stream_notify;
	s->opaque = c;
	c->next = px->conns;
	if (px->conns)
		px->conns->prev = c;
	px->conns = c;
	px->nconns++;
	c->last_ns = c->head_start_ns = now_ns();
	return c;
}

int proxy_take_stream(struct proxy *px, struct stream *s, const struct proxy_dst *dst)
{
	if (!host_valid(dst->addr, strlen(dst->addr)) || !dst->port) {
		s->ops->close(s);
		return -EINVAL;
	}
	struct conn *c = conn_new(px, s);
	if (!c)
		return -ENOMEM;
	snprintf(c->host, sizeof(c->host), "%s", dst->name[0] ? dst->name : dst->addr);
	snprintf(c->dial, sizeof(c->dial), "%s", dst->addr);
	snprintf(c->dst_name, sizeof(c->dst_name), "%s", dst->name);
	snprintf(c->deny, sizeof(c->deny), "%s", dst->deny);
	c->port = c->dial_port = dst->port;
	c->host_from_sni = true;
	c->rq = RQ_DETECT;
	conn_pump(c);
	return 0;
}

/* Close the oldest listener connection that has not sent a request yet
 * (CONNECT head, TLS handshake or first request still to come), to make
 * room for a new client when descriptors or the connection cap run out:
 * a flood of half-open connections then costs its own members their
 * slots, never a real client its start.  true when one was closed. */
static bool shed_half_open(struct proxy *px)
{
	struct conn *victim = NULL;
	for (struct conn *c = px->conns; c; c = c->next)
		if (c->connect_mode && !c->nreq && !c->up.s && !c->in_pump && !c->dead &&
		    (!victim || c->last_ns < victim->last_ns))
			victim = c;
	if (!victim)
		return false;
	px->shed++;
	log_once(LOG_WARN, "proxy: out of descriptors or connections: closing the oldest connections "
		 "that have sent no request (one shed per new client)");
	victim->dead = true;
	conn_pump(victim);	/* frees it, and its descriptor, now */
	return true;
}

/* No room and nothing to shed: take the waiting client with the spare
 * descriptor and close it at once, so the backlog drains (the client sees
 * a reset) instead of stalling.  true when one was refused. */
static bool refuse_one(struct proxy *px)
{
	if (px->spare_fd < 0)
		return false;
	close(px->spare_fd);
	int fd = accept4(px->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd >= 0)
		close(fd);
	px->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	return fd >= 0;
}

static void listen_cb(struct loop *loop, struct loop_op *op, int res, uint32_t flags)
{
	(void)loop;
	(void)res;
	(void)flags;
	struct proxy *px = op->opaque;
	for (; !px->freeing;) {
		if (px->nconns >= px->max_conns && !shed_half_open(px)) {
			if (!refuse_one(px))	/* at the cap with every connection busy */
				return;
			continue;
		}
		int fd = accept4(px->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			bool out = errno == EMFILE || errno == ENFILE;
			if (out && (shed_half_open(px) || refuse_one(px)))
				continue;
			if (out)
				return;
			if (errno != EAGAIN && errno != EINTR)
				log_once(LOG_WARN, "proxy: accept: %s", strerror(errno));
			return;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		struct stream *s = proxy_sock_stream(px->loop, fd, false);
		if (!s) {
			close(fd);
			continue;
		}
		struct conn *c = conn_new(px, s);
		if (!c)
			continue;
		c->connect_mode = true;
		c->rq = RQ_CONNECT;
		conn_pump(c);
	}
}

int proxy_listen(struct proxy *px, int fd)
{
	struct rlimit rl;	/* two descriptors a connection, some kept for the rest */
	unsigned lim = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 1u << 20 ? (unsigned)rl.rlim_cur : 1u << 20;
	px->max_conns = lim > 96 ? (lim - 64) / 2 : 16;
	px->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	px->listen_fd = fd;
	px->listen_op.cb = listen_cb;
	px->listen_op.opaque = px;
	return loop_poll(px->loop, &px->listen_op, fd, POLLIN);
}

/* A connection that has moved nothing for PROBE_NS gets one pump step from
 * the housekeeping timer, so that a lost readiness event (or one never
 * asked for) costs a pause, not a transfer stalled until a timeout.  A
 * quiet connection costs a read that finds nothing, 4 times a second.
 * When the step moves bytes on a stream whose readiness the connection
 * waited for, that is noted and logged at the next tick unless the stream
 * notified in between: then the event had only not been dispatched yet
 * (it was behind this timer). */
static void probe_idle(struct conn *c, uint64_t now)
{
	struct wants w = conn_wants(c);
	size_t to_guest = ep_pending(&c->down), to_server = c->up.s ? ep_pending(&c->up) : 0;
	size_t from_guest = c->cin_len, from_server = c->uin_len;
	uint64_t io[2] = { c->down.rx + c->down.tx, c->up.rx + c->up.tx };
	unsigned long long idle_ms = (now - c->last_ns) / 1000000;
	if (!pump_step(c) && !c->dead)
		return;
	c->probe_moved[0] = (w.down_rd || w.down_wr) && c->down.rx + c->down.tx != io[0];
	c->probe_moved[1] = (w.up_rd || w.up_wr) && c->up.rx + c->up.tx > io[1];
	if ((c->probe_moved[0] || c->probe_moved[1]) && !c->probe_logged && !c->probe_note &&
	    asprintf(&c->probe_note, "proxy: connection for %s moved after %llu ms without a readiness "
		     "event on the %s side (request state %d, response state %d; buffered from guest %zu, "
		     "from server %zu, to guest %zu, to server %zu; waiting for guest%s%s, server%s%s); "
		     "resumed", c->host, idle_ms, c->probe_moved[0] ? "guest" : "server", c->rq, c->rs,
		     from_guest, from_server, to_guest, to_server, w.down_rd ? " rd" : "",
		     w.down_wr ? " wr" : "", w.up_rd ? " rd" : "", w.up_wr ? " wr" : "") < 0)
		c->probe_note = NULL;
	c->notified[0] = c->notified[1] = false;
	conn_pump(c);
}

/* The tick after a probe moved bytes: a stream that moved and has not
 * notified since lost its event. */
void probe_verdict(struct conn *c)
{
	if ((c->probe_moved[0] && !c->notified[0]) || (c->probe_moved[1] && !c->notified[1])) {
		log_warn("%s", c->probe_note);
		c->probe_logged = true;
	}
	free(c->probe_note);
	c->probe_note = NULL;
}

/* Timeouts: a head that does not arrive in time gets 408, an idle
 * keep-alive connection is closed, a closing one is cut after a grace. */
static void timer_cb(struct loop *loop, struct loop_op *op, int res, uint32_t flags)
{
	(void)res;
	(void)flags;
	struct proxy *px = op->opaque;
	if (px->freeing)
		return;
	uint64_t now = now_ns();
	struct conn *c = px->conns;
	while (c) {
		struct conn *next = c->next;
		if (c->probe_note)
			probe_verdict(c);
		bool waiting_head = c->rq <= RQ_HEAD && c->rs == RS_IDLE && !c->closing;
		bool started = c->cin_len > 0 || c->nreq == 0;
		if (c->gh && !c->closing && !c->dead && now - c->gh->start_ns > px->lookup_timeout_ns) {
			ep_close(&c->up);
			c->uin_len = 0;
			error_reply(c, 504, "kvmbox: %s did not answer the node id lookup for a GraphQL mutation "
				    "within %llu ms; it was not sent", c->host,
				    (unsigned long long)(px->lookup_timeout_ns / 1000000));
		} else if (c->closing && now - c->closing_ns > CLOSING_LIMIT_NS) {
			c->dead = true;
		} else if (waiting_head && started && c->head_start_ns &&
			   now - c->head_start_ns > px->header_timeout_ns) {
			if (c->rq == RQ_HEAD || c->rq == RQ_CONNECT)
				error_reply(c, 408, "kvmbox: request head not received within %llu ms",
					    (unsigned long long)(px->header_timeout_ns / 1000000));
			else
				c->dead = true;
		} else if (now - c->last_ns > px->idle_timeout_ns) {
			c->dead = true;
		} else if (now - c->last_ns > PROBE_NS && !c->in_kick && !c->dead && !c->closing &&
			   c->rq != RQ_OAUTH_WAIT && !c->gh) {
			probe_idle(c, now);
			c = next;
			continue;
		}
		if (c->dead || c->closing)
			conn_pump(c);
		c = next;
	}
	loop_timer(loop, &px->timer_op, &px->timer_ts, TICK_NS);
}

int proxy_new(struct loop *loop, const struct proxy_config *cfg, struct proxy **out)
{
	*out = NULL;
	if (!cfg->egress) {	/* which names it serves: never "all" by omission */
		log_err("proxy: no egress policy given");
		return -EINVAL;
	}
	struct proxy *px = calloc(1, sizeof(*px));
	if (!px)
		return -ENOMEM;
	px->loop = loop;
	px->cfg = *cfg;
	px->listen_fd = -1;
	px->spare_fd = -1;
	px->header_timeout_ns = (cfg->header_timeout_ms ? cfg->header_timeout_ms : 30000) * 1000000ULL;
	px->idle_timeout_ns = (cfg->idle_timeout_ms ? cfg->idle_timeout_ms : 300000) * 1000000ULL;
	px->lookup_timeout_ns = (cfg->lookup_timeout_ms ? cfg->lookup_timeout_ms : 10000) * 1000000ULL;
	px->ca = cfg->ca_file ? ca_load(cfg->ca_file) : ca_new();
	if (!px->ca && cfg->ca_file) {
		log_err("proxy: cannot take the CA kept in %s", cfg->ca_file);
		proxy_free(px);
		return -EINVAL;
	}
	px->ghcache = malloc(sizeof(*px->ghcache));
	if (px->ghcache)
		github_cache_init(px->ghcache);
	int r = !px->ca || !px->ghcache ? -ENOMEM : make_ctxs(px);
	if (r < 0) {
		log_err("proxy: cannot set up TLS: %s", strerror(-r));
		proxy_free(px);
		return r;
	}
	for (unsigned i = 0; i < cfg->noauth && i < PROXY_MAX_OAUTH; i++) {
		struct oauth_state *o = &px->oauth[px->noauth++];
		o->cfg = cfg->oauth[i];
		const char *a = o->cfg.access_placeholder, *r = o->cfg.refresh_placeholder;
		o->access = cfg->secrets ? secrets_find(cfg->secrets, a, strlen(a)) : NULL;
		o->refresh = cfg->secrets ? secrets_find(cfg->secrets, r, strlen(r)) : NULL;
		if (!o->access || !o->refresh || o->access == o->refresh) {
			log_err("proxy: --oauth %s names placeholders not given with --secret", o->cfg.provider);
			proxy_free(px);
			return -EINVAL;
		}
		if (!oauth_refresh_hosts_ok(o->cfg.provider, o->refresh)) {
			log_err("proxy: --oauth %s: the refresh token's --secret must list only %s's token "
				"endpoint hosts, where kvmbox performs the refresh itself", o->cfg.provider,
				o->cfg.provider);
			proxy_free(px);
			return -EINVAL;
		}
		o->refresh->refresh_only = true;	/* never substituted anywhere else */
		if (o->cfg.state_path[0]) {
			int s = oauth_load_state(o->cfg.state_path, o->cfg.provider, o->access, o->refresh);
			if (s && s != -ENOENT)
				log_warn("proxy: ignoring %s token state: %s", o->cfg.provider, strerror(-s));
		}
	}
	px->kick_op.cb = kick_cb;
	px->kick_op.opaque = px;
	px->timer_op.cb = timer_cb;
	px->timer_op.opaque = px;
	loop_timer(loop, &px->timer_op, &px->timer_ts, TICK_NS);
	*out = px;
	return 0;
}

void proxy_free(struct proxy *px)
{
	if (!px)
		return;
	/* The last completion of each op names px: cancel them and turn the
	 * loop until they are back (the callbacks see `freeing`). */
	px->freeing = true;
	if (px->loop) {
		struct loop_op *const ops[] = { &px->listen_op, &px->timer_op, &px->kick_op };
		if (loop_cancel_settle(px->loop, ops, 3, 2000) < 0)
			log_warn("proxy: io_uring still holds requests of the proxy at teardown");
	}
	while (px->conns) {
		px->conns->dead = true;
		conn_destroy(px->conns);
	}
	for (unsigned i = 0; i < px->noauth; i++)
		if (px->oauth[i].body) {
			explicit_bzero(px->oauth[i].body, px->oauth[i].body_len);
			free(px->oauth[i].body);
		}
	if (px->spare_fd >= 0)
		close(px->spare_fd);
	SSL_CTX_free(px->down_ctx);
	SSL_CTX_free(px->up_ctx);
	ca_free(px->ca);
	free(px->ghcache);
	free(px);
}

int proxy_write_ca(const struct proxy *px, const char *path)
{
	return ca_write_pem(px->ca, path);
}

int proxy_save_ca(const struct proxy *px, const char *path)
{
	return ca_save(px->ca, path);
}

#ifdef KVMBOX_FUZZ
void proxy_fuzz_set(struct proxy *px, const struct proxy_fuzz_hooks *h)
{
	px->fuzz = *h;
}

void proxy_fuzz_close_all(struct proxy *px)
{
	while (px->conns) {
		px->conns->dead = true;
		conn_destroy(px->conns);
	}
}
#endif

unsigned proxy_nconns(const struct proxy *px)
{
	return px->nconns;
}
