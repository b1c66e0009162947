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
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "common/log.h"
#include "common/util.h"
#include "proxy/ca.h"
#include "proxy/ep.h"
#include "proxy/http.h"
#include "proxy/oauth.h"
#include "proxy/proxy.h"

#define CIN_CAP (96 * 1024)		/* guest bytes buffered (head + small body) */
#define UIN_CAP (64 * 1024)		/* server bytes buffered */
#define BODY_MAX (60 * 1024)		/* request bodies a policy reads whole */
#define RESP_HEAD_MAX (64 * 1024)
#define CAPTURE_MAX (64 * 1024)		/* token responses */
#define OAUTH_REUSE_NS (10ULL * 1000000000ULL)
#define CLOSING_LIMIT_NS (5ULL * 1000000000ULL)
#define TICK_NS 250000000ULL
#define PROBE_NS 1000000000ULL		/* idle this long: see probe_idle() */
#define GH_QUERY_MAX 8192
#define MASK_BUF (32 * 1024)		/* decoded chunk data held for masking */
#define MASK_EXTRA_MAX 4		/* encoded credentials remembered per connection */		/* nodes(ids:) lookup body */

enum rq_state {
	RQ_CONNECT,	/* reading the CONNECT head (host transport) */
	RQ_DETECT,	/* first byte decides TLS or plain HTTP */
	RQ_HANDSHAKE,	/* guest TLS handshake */
	RQ_HEAD,	/* waiting for a request head */
	RQ_BODY,	/* streaming a request body upstream */
	RQ_DONE,	/* request sent; waiting for the response to finish */
	RQ_OAUTH_WAIT,	/* parked behind another connection's token refresh */
	RQ_TUNNEL,	/* WebSocket: raw bytes */
	RQ_CLOSED,	/* a final reply was queued: read nothing more */
};

enum rs_state { RS_IDLE, RS_HEAD, RS_BODY, RS_CAPTURE, RS_TUNNEL };

struct conn;

/* A GitHub mutation waiting for its node ids to be resolved. */
struct gh_lookup {
	struct github_ids ids;		/* every id the mutation carries */
	struct github_node nodes[GITHUB_MAX_IDS];	/* what each is (from the cache, then the answer) */
	struct github_ids ask;		/* the ids not in the cache: the lookup */
	unsigned char ask_of[GITHUB_MAX_IDS];	/* ids index -> ask index, or 0xff when cached */
	char *held;			/* the guest's request, built for the server */
	size_t held_len;
	uint64_t start_ns;
};

/* Single-flight state of one OAuth client. */
struct oauth_state {
	struct proxy_oauth_cfg cfg;
	struct secret *access, *refresh;	/* entries of the secrets table */
	struct conn *owner;			/* connection doing the refresh */
	struct conn *waiters;			/* parked refreshes (c->oauth_next) */
	char *body;				/* last good answer, for the reuse window */
	size_t body_len;
	uint64_t done_ns;
	unsigned upstream_calls;
};

struct proxy {
	struct loop *loop;
	struct proxy_config cfg;
	struct ca *ca;
	SSL_CTX *down_ctx;	/* guest side: leaves minted per SNI */
	SSL_CTX *up_ctx;	/* server side: verified */
	struct conn *conns;
	unsigned nconns;
	int listen_fd;
	struct loop_op listen_op;
	struct loop_op timer_op;
	struct __kernel_timespec timer_ts;
	uint64_t header_timeout_ns, idle_timeout_ns;
	struct oauth_state oauth[PROXY_MAX_OAUTH];
	unsigned noauth;
	struct github_cache *ghcache;	/* resolved GitHub node ids (proxy lifetime) */
	uint64_t lookup_timeout_ns;
	struct conn *kicked;		/* to pump again next loop turn */
	struct loop_op kick_op;
	struct __kernel_timespec kick_ts;
	bool kick_armed;
	bool freeing;		/* proxy_free is waiting for the ops above: callbacks do nothing */
	unsigned max_conns;	/* listener connections at once (from RLIMIT_NOFILE) */
	int spare_fd;		/* held to accept-and-refuse when out of descriptors */
	unsigned shed;		/* half-open connections closed to make room */
#ifdef KVMBOX_FUZZ
	struct proxy_fuzz_hooks fuzz;
#endif
};

struct conn {
	struct proxy *px;
	struct conn *next, *prev;
	struct ep down, up;
	bool tls;		/* the guest speaks TLS to us */
	bool connect_mode;	/* arrived as HTTP CONNECT */
	bool host_from_sni;	/* host is taken from the SNI (handed-over stream) */
	char host[256];		/* the name requests must be for */
	uint16_t port;
	char dial[256];		/* where the server connection goes */
	uint16_t dial_port;
	char dst_name[256];	/* name net/ saw resolved to the dialled address */
	char deny[192];		/* the policy refused the destination: 403 with this */
	char sni[256];
	bool check;		/* the self-test endpoint (PROXY_CHECK_NAME): answered
				 * here, never dialled, whatever deny says */
	enum rq_state rq;
	enum rs_state rs;
	uint8_t *cin, *uin;
	size_t cin_len, uin_len;
	unsigned nreq;
	/* current request */
	char method[24];
	size_t method_len;
	bool req_keep_alive, req_upgrade, sent_continue;
	enum http_body req_body;
	uint64_t req_left;
	struct http_chunked req_ch;
	char *uhead;		/* rewritten head (+ buffered body) for the server */
	size_t uhead_len, uhead_off;
	/* current response */
	enum http_body rsp_body;
	uint64_t rsp_left;
	struct http_chunked rsp_ch;
	bool rsp_keep_alive, rsp_started, rsp_interim;
	size_t rsp_raw_left;	/* head bytes still to forward verbatim */
	int rsp_status;
	bool mask_rsp;		/* a real value went upstream on this connection: mask
				 * every real value in what comes back (to_guest) */
	bool mask_logged;
	bool req_subst;		/* the current request carried a real value */
	struct subst_stats subst;	/* what build_upstream substituted last */
	/* Encoded forms of real values this connection sent (the base64 of a
	 * substituted Basic credential), masked like the values themselves. */
	char *mask_extra[MASK_EXTRA_MAX];
	size_t mask_extra_len[MASK_EXTRA_MAX];
	unsigned nmask_extra;
	uint8_t *mbuf;		/* decoded chunk data being masked (MASK_BUF) */
	size_t mlen;
	uint8_t *cap;		/* captured token response body */
	size_t cap_len;
	/* OAuth single flight */
	struct oauth_state *oauth_owner;
	struct oauth_state *oauth_wait;
	struct conn *oauth_next;
	/* GitHub node id lookup in flight (else NULL) */
	struct gh_lookup *gh;
	/* lifecycle */
	bool closing, dead;
	bool in_pump, repump;	/* re-entrancy guard for conn_pump() */
	bool in_kick;		/* on px->kicked */
	bool notified[2];	/* guest, server stream notified since the last probe */
	bool probe_moved[2];	/* probe_idle() moved bytes of guest, server stream */
	char *probe_note;	/* what probe_idle() moved, until the next tick */
	bool probe_logged;	/* a lost event was logged for this connection */
	struct conn *kick_next;
	uint64_t head_start_ns, last_ns, closing_ns;
};

static void conn_pump(struct conn *c);
static void probe_verdict(struct conn *c);
static void kick_later(struct conn *c);
static void gh_free(struct conn *c);

/* ---- small helpers ---- */

static void consume(uint8_t *buf, size_t *len, size_t n)
{
	memmove(buf, buf + n, *len - n);
	*len -= n;
}

static const char *reason(int st)
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

static void start_closing(struct conn *c)
{
	if (!c->closing) {
		c->closing = true;
		c->closing_ns = now_ns();
	}
}

/* A response made by the proxy itself.  keep: the connection continues
 * with the next request; else it closes once the reply is out. */
static void local_reply(struct conn *c, int status, const char *ctype, const char *body,
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
static void error_reply(struct conn *c, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void error_reply(struct conn *c, int status, const char *fmt, ...)
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

/* ---- the server side ---- */

static void stream_notify(struct proxy_stream *s)
{
	struct conn *c = s->opaque;
	c->notified[s == c->up.s] = true;
	conn_pump(c);
}

static bool is_ip(const char *h)
{
	unsigned char b[16];
	return inet_pton(AF_INET, h, b) == 1 || inet_pton(AF_INET6, h, b) == 1;
}

/* A host the self-test may name as "another host": PROXY_CHECK_NAME and
 * names under it (never dialled, never bound to a secret). */
static bool check_host(const char *name)
{
	size_t n = strlen(name), k = strlen(PROXY_CHECK_NAME);
	return !strcasecmp(name, PROXY_CHECK_NAME) ||
	       (n > k + 1 && name[n - k - 1] == '.' && !strcasecmp(name + n - k, PROXY_CHECK_NAME));
}

/* Whether the egress policy refuses the host this connection is for (its
 * TLS server name, Host or CONNECT target); if so a 403 says so and what
 * would allow it.  The same names module judges the guest's DNS lookups.
 * An IP literal passes only on a handed-over flow, and only as the very
 * address dialled, which the address policy judged before the flow reached
 * us; a CONNECT target has no such judge. */
static bool egress_refused(struct conn *c)
{
	const struct policy *pol = c->px->cfg.egress;
	if (check_host(c->host)) {	/* never dialled: answered on the self-test endpoint only */
		error_reply(c, 403, "kvmbox: %s is the launch self-test's name: only a TLS connection "
			    "with that server name is answered, and nothing is dialled", c->host);
		return true;
	}
	if (pol && policy_allows_name(pol, c->host))
		return false;
	if (pol && !c->connect_mode && is_ip(c->host) && !strcmp(c->host, c->dial))
		return false;
	error_reply(c, 403, "kvmbox: egress to %s is not allowed by the sandbox's %s egress profile "
		    "(--allow-domain %s allows it)", c->host,
		    pol ? policy_profile_name(pol->profile) : "missing", c->host);
	return true;
}

/* Open the server connection (non-blocking connect, TLS when the guest
 * spoke TLS, verified against c->host): 0 or -errno. */
static int conn_dial(struct conn *c)
{
	struct proxy *px = c->px;
	if (c->check)
		return -EPERM;	/* the self-test endpoint: nothing leaves, by construction */
#ifdef KVMBOX_FUZZ
	if (px->fuzz.dial) {
		struct proxy_stream *fs = px->fuzz.dial(px->fuzz.opaque, c->host, c->port);
		if (!fs)
			return -ECONNREFUSED;
		fs->notify = stream_notify;
		fs->opaque = c;
		return ep_open(&c->up, fs);
	}
#endif
	const char *addr = c->dial;
	uint16_t port = c->dial_port;
	for (unsigned i = 0; i < px->cfg.nconnect_to; i++) {
		const struct proxy_connect_to *ct = &px->cfg.connect_to[i];
		if ((!ct->host[0] || !strcasecmp(ct->host, c->dial)) && (!ct->port || ct->port == port)) {
			addr = ct->addr;
			port = ct->addr_port;
			break;
		}
	}
	char ps[8];
	snprintf(ps, sizeof(ps), "%u", port);
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV }, *ai;
	/* getaddrinfo blocks on a real name; handed-over streams carry an
	 * address and tests use --connect-to, so only the host transport
	 * resolves names here. */
	int g = getaddrinfo(addr, ps, &hints, &ai);
	if (g)
		return g == EAI_SYSTEM ? -errno : -EHOSTUNREACH;
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		freeaddrinfo(ai);
		return -errno;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	int r = connect(fd, ai->ai_addr, ai->ai_addrlen);
	freeaddrinfo(ai);
	if (r < 0 && errno != EINPROGRESS) {
		r = -errno;
		close(fd);
		return r;
	}
	struct proxy_stream *s = proxy_sock_stream(px->loop, fd, r < 0);
	if (!s) {
		close(fd);
		return -ENOMEM;
	}
	s->notify = stream_notify;
	s->opaque = c;
	r = ep_open(&c->up, s);
	if (r)
		return r;
	if (!c->tls)
		return 0;
	r = ep_start_tls(&c->up, px->up_ctx, false);
	if (r)
		return r;
	SSL *ssl = c->up.ssl;
	X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);
	if (is_ip(c->host)) {
		if (!X509_VERIFY_PARAM_set1_ip_asc(vp, c->host))
			return -EINVAL;
	} else if (!SSL_set_tlsext_host_name(ssl, c->host) || !SSL_set1_host(ssl, c->host)) {
		return -EINVAL;
	}
	return 0;
}

static void oauth_abort(struct conn *c);

/* The server connection failed: answer 502 if nothing was forwarded yet. */
static void up_failed(struct conn *c, int err)
{
	char why[600];
	long v = c->up.ssl ? SSL_get_verify_result(c->up.ssl) : X509_V_OK;
	if (err == -EPROTO && v != X509_V_OK)
		snprintf(why, sizeof(why), "upstream TLS certificate verification failed for %s: %s",
			 c->host, X509_verify_cert_error_string(v));
	else if (err == -EPROTO)
		snprintf(why, sizeof(why), "TLS handshake with %s failed", c->host);
	else
		snprintf(why, sizeof(why), "cannot reach %s:%u: %s", c->host, c->port, strerror(-err));
	ep_close(&c->up);
	c->uin_len = 0;
	oauth_abort(c);
	if (c->gh) {
		log_warn("proxy: %s", why);
		error_reply(c, 502, "kvmbox: %s (while resolving the node ids of a GitHub mutation; "
			    "it was not sent)", why);
	} else if (c->rs == RS_HEAD && !c->rsp_started) {
		log_warn("proxy: %s", why);
		error_reply(c, 502, "kvmbox: %s", why);
	} else {
		c->dead = true;
	}
}

/* ---- OAuth single flight ---- */

static void oauth_answer(struct conn *c, int status, const char *body, size_t len)
{
	local_reply(c, status, "application/json", body, len, c->req_keep_alive);
}

/* The refresh of o is over (each one ends here exactly once, whether it
 * succeeded, failed or was aborted): tell the launcher, then answer and
 * release every parked refresh of o. */
static void oauth_release(struct oauth_state *o, int status, const char *body, size_t len)
{
	if (o->cfg.after_refresh)
		o->cfg.after_refresh(o->cfg.opaque);
	struct conn *w = o->waiters;
	o->waiters = NULL;
	while (w) {
		struct conn *next = w->oauth_next;
		w->oauth_next = NULL;
		w->oauth_wait = NULL;
		oauth_answer(w, status, body, len);
		kick_later(w);	/* not conn_pump: that may free w, and a caller
				 * iterating connections may hold it as its next */
		w = next;
	}
}

static void oauth_abort(struct conn *c)
{
	struct oauth_state *o = c->oauth_owner;
	if (o) {
		static const char msg[] = "{\"error\":\"kvmbox: the token refresh on the host failed\"}";
		o->owner = NULL;
		c->oauth_owner = NULL;
		oauth_release(o, 502, msg, sizeof(msg) - 1);
	}
	if (c->oauth_wait) {
		struct conn **pp = &c->oauth_wait->waiters;
		while (*pp && *pp != c)
			pp = &(*pp)->oauth_next;
		if (*pp)
			*pp = c->oauth_next;
		c->oauth_wait = NULL;
	}
}

/* The refresh response is in c->cap: rotate, answer everyone. */
static void oauth_finish(struct conn *c)
{
	struct oauth_state *o = c->oauth_owner;
	o->owner = NULL;
	c->oauth_owner = NULL;
	if (c->rsp_status != 200) {	/* never the upstream's body verbatim */
		char err[1024];
		size_t n = oauth_error_body(c->px->cfg.secrets, c->rsp_status, (char *)c->cap, c->cap_len,
					    err, sizeof(err));
		explicit_bzero(c->cap, c->cap_len);
		int st = c->rsp_status >= 400 && c->rsp_status < 600 ? c->rsp_status : 502;
		log_warn("proxy: %s token refresh answered %d", o->cfg.provider, c->rsp_status);
		oauth_answer(c, st, err, n);
		oauth_release(o, st, err, n);
		return;
	}
	char *out;
	size_t outlen;
	long long expires_in = oauth_expires_in((char *)c->cap, c->cap_len);
	int r = oauth_rewrite_response(o->access, o->refresh, (char *)c->cap, c->cap_len, &out, &outlen);
	explicit_bzero(c->cap, c->cap_len);
	if (r) {
		static const char msg[] = "{\"error\":\"kvmbox: unreadable token response\"}";
		oauth_answer(c, 502, msg, sizeof(msg) - 1);
		oauth_release(o, 502, msg, sizeof(msg) - 1);
		return;
	}
	if (o->cfg.state_path[0]) {
		int s = oauth_save_state(o->cfg.state_path, o->cfg.provider, o->access, o->refresh);
		if (s)
			log_warn("proxy: cannot save %s token state: %s", o->cfg.provider, strerror(-s));
	}
	log_info("proxy: %s tokens refreshed on the host", o->cfg.provider);
	if (o->cfg.rotated)
		o->cfg.rotated(o->cfg.opaque, expires_in);
	free(o->body);
	o->body = out;
	o->body_len = outlen;
	o->done_ns = now_ns();
	oauth_answer(c, 200, out, outlen);
	oauth_release(o, 200, out, outlen);
}

/* The OAuth client of provider whose refresh placeholder b refreshes, or
 * NULL: the only request to a token endpoint that gets a real value. */
static struct oauth_state *oauth_client_for(struct proxy *px, const char *provider,
					    const struct oauth_body *b)
{
	for (unsigned i = 0; i < px->noauth; i++) {
		struct oauth_state *o = &px->oauth[i];
		if (!strcmp(o->cfg.provider, provider) && o->refresh &&
		    oauth_body_is_refresh(b, px->cfg.secrets, o->refresh->placeholder))
			return o;
	}
	return NULL;
}

/* A recognised refresh of o: park, answer from the reuse window (true:
 * handled here), or become the one upstream refresh (false). */
static bool oauth_intercept(struct conn *c, struct oauth_state *o)
{
	if (o->owner) {
		c->rq = RQ_OAUTH_WAIT;
		c->oauth_wait = o;
		c->oauth_next = o->waiters;
		o->waiters = c;
		return true;
	}
	if (o->body && now_ns() - o->done_ns < OAUTH_REUSE_NS) {
		oauth_answer(c, 200, o->body, o->body_len);
		return true;
	}
	o->owner = c;
	c->oauth_owner = o;
	o->upstream_calls++;
	return false;
}

/* ---- GitHub node id lookup ---- */

static void gh_free(struct conn *c)
{
	struct gh_lookup *g = c->gh;
	if (!g)
		return;
	if (g->held) {
		explicit_bzero(g->held, g->held_len);
		free(g->held);
	}
	free(g);
	c->gh = NULL;
}

/* Nodes the cache knows into g->nodes, the others into g->ask. */
static void gh_from_cache(struct proxy *px, struct gh_lookup *g)
{
	g->ask.n = 0;
	for (unsigned i = 0; i < g->ids.n; i++) {
		if (github_cache_get(px->ghcache, g->ids.id[i], &g->nodes[i])) {
			g->ask_of[i] = 0xff;
			continue;
		}
		g->ask_of[i] = (unsigned char)g->ask.n;
		memcpy(g->ask.id[g->ask.n++], g->ids.id[i], sizeof(g->ask.id[0]));
	}
	g->ask.repo_id = g->ids.repo_id;
}

/* The nodes(ids:) request for the ids in ask, to the guest's host with the
 * guest's Authorization (substituted like any header), into c->uhead. */
static int gh_build_lookup(struct conn *c, const struct http_msg *m, const struct github_ids *ask)
{
	const struct secrets *sec = c->px->cfg.secrets;
	size_t cap = GH_QUERY_MAX + HTTP_MAX_HEAD + 512, o;
	char *out = malloc(cap);
	if (!out)
		return -ENOMEM;
	int ql = ask->repo_id ? 0 : github_nodes_query(ask, out + cap - GH_QUERY_MAX, GH_QUERY_MAX);
	if (ql < 0) {
		free(out);
		return ql;
	}
	if (ask->repo_id)	/* a REST write under /repositories/ID */
		o = (size_t)snprintf(out, cap, "GET /repositories/%llu HTTP/1.1\r\nHost: %.*s\r\n"
				     "User-Agent: kvmbox-proxy\r\nAccept: application/vnd.github+json\r\n",
				     (unsigned long long)ask->repo_id, (int)m->host_len, m->host);
	else
		o = (size_t)snprintf(out, cap, "POST /graphql HTTP/1.1\r\nHost: %.*s\r\nUser-Agent: kvmbox-proxy\r\n"
				     "Accept: application/json\r\nContent-Type: application/json\r\n"
				     "Content-Length: %d\r\n", (int)m->host_len, m->host, ql);
	const struct http_hdr *auth = http_find(m, "authorization");
	if (auth) {
		struct subst_stats st = { 0, 0, false };
		size_t room = cap - GH_QUERY_MAX - o - 20;
		memcpy(out + o, "Authorization: ", 15);
		o += 15;
		ssize_t n = -ENOSPC;
		if (c->tls && sec && sec->n)
			n = secrets_subst_header(sec, c->host, strlen(c->host), "Authorization", 13, auth->value,
						 auth->value_len, out + o, room, &st);
		else if (auth->value_len <= room)
			n = (ssize_t)auth->value_len, memcpy(out + o, auth->value, auth->value_len);
		if (n < 0) {
			explicit_bzero(out, cap);
			free(out);
			return (int)n;
		}
		o += (size_t)n;
		memcpy(out + o, "\r\n", 2);
		o += 2;
	}
	memcpy(out + o, "\r\n", 2);
	o += 2;
	memmove(out + o, out + cap - GH_QUERY_MAX, (size_t)ql);
	c->uhead = out;
	c->uhead_len = o + (size_t)ql;
	c->uhead_off = 0;
	return 0;
}

/* The lookup's answer head: capture its body (interim answers skipped). */
static bool gh_rs_head(struct conn *c, const struct http_msg *m, size_t hl)
{
	consume(c->uin, &c->uin_len, hl);
	if (m->status == 101) {
		ep_close(&c->up);
		c->uin_len = 0;
		error_reply(c, 502, "kvmbox: %s answered the node id lookup with 101; mutation not sent", c->host);
		return true;
	}
	if (m->status < 200)
		return true;
	c->rsp_status = m->status;
	c->rsp_body = m->body;
	c->rsp_left = m->content_length;
	c->rsp_keep_alive = m->keep_alive;
	http_chunked_init(&c->rsp_ch);
	c->rs = RS_CAPTURE;
	c->rsp_raw_left = 0;
	c->cap_len = 0;
	if (!c->cap && !(c->cap = malloc(CAPTURE_MAX)))
		error_reply(c, 502, "kvmbox: out of memory resolving GitHub node ids");
	return true;
}

/* The lookup's answer is in c->cap: cache it, decide, and either send the
 * held request or refuse it. */
static void gh_finish(struct conn *c)
{
	struct proxy *px = c->px;
	struct gh_lookup *g = c->gh;
	struct github_node got[GITHUB_MAX_IDS];
	char msg[600];
	if (c->rsp_status == 404 && g->ask.repo_id) {
		error_reply(c, 403, "kvmbox: GitHub write refused: no repository %llu is visible with this "
			    "token, so kvmbox cannot check it against the allow-list (--repo OWNER/NAME)",
			    (unsigned long long)g->ask.repo_id);
		return;
	}
	if (c->rsp_status != 200) {
		error_reply(c, 502, "kvmbox: %s answered %d to the lookup kvmbox makes before this write "
			    "(%s); it was not sent", c->host, c->rsp_status,
			    g->ask.repo_id ? "the repository behind its number" : "its GraphQL node ids");
		return;
	}
	if (g->ask.repo_id ? github_parse_repo((char *)c->cap, c->cap_len, &got[0])
			   : github_parse_nodes((char *)c->cap, c->cap_len, g->ask.n, got)) {
		error_reply(c, 403, g->ask.repo_id ? "kvmbox: GitHub write refused: GitHub did not name the "
			    "repository with this number" : "kvmbox: GitHub GraphQL mutation refused: GitHub did "
			    "not resolve its node ids");
		return;
	}
	for (unsigned i = 0; i < g->ask.n; i++)
		github_cache_put(px->ghcache, g->ask.id[i], &got[i]);
	for (unsigned i = 0; i < g->ids.n; i++)
		if (g->ask_of[i] != 0xff)
			g->nodes[i] = got[g->ask_of[i]];
	if (github_decide(px->cfg.repos, &g->ids, g->nodes, msg, sizeof(msg))) {
		error_reply(c, 403, "%s", msg);
		return;
	}
	c->uhead = g->held;
	c->uhead_len = g->held_len;
	c->uhead_off = 0;
	g->held = NULL;
	gh_free(c);
	c->rs = RS_HEAD;
	c->rsp_started = false;
	if (!c->up.s) {
		int r = conn_dial(c);
		if (r)
			up_failed(c, r);
	}
}

/* A GraphQL mutation's node ids: decide from the cache, or hold the
 * request (already in c->uhead) behind a lookup.  0, or -errno. */
static int gh_start(struct conn *c, const struct http_msg *m, struct gh_lookup *g)
{
	g->held = c->uhead;
	g->held_len = c->uhead_len;
	c->uhead = NULL;
	c->gh = g;
	int r = gh_build_lookup(c, m, &g->ask);
	if (r)
		return r;
	g->start_ns = now_ns();
	log_debug("proxy: resolving %u GitHub node id(s) before a mutation", g->ask.n);
	return 0;
}

/* ---- the request side ---- */

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

static bool rq_head(struct conn *c)
{
	struct proxy *px = c->px;
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
	char name[256];
	if (c->tls && c->sni[0] && strcasecmp(c->sni, c->host)) {
		error_reply(c, 421, "kvmbox: TLS server name %s does not match the connection target %s",
			    c->sni, c->host);
		return true;
	}
	if (!host_agrees(c, &m, name, sizeof(name))) {
		error_reply(c, 421, "kvmbox: Host header does not name %s:%u, the host this connection is for",
			    c->host, c->port);
		return true;
	}
	if (egress_refused(c))
		return true;
	if (m.target_len == 0 || (m.target[0] != '/' && !(m.target_len == 1 && m.target[0] == '*'))) {
		error_reply(c, 400, "kvmbox: request target must be a path (origin form)");
		return true;
	}
	if (http_ieq(m.method, m.method_len, "TRACE") || http_ieq(m.method, m.method_len, "TRACK")) {
		error_reply(c, 405, "kvmbox: %.*s is refused: the server would echo the request, "
			    "credentials included", (int)m.method_len, m.method);
		return true;
	}
	const char *q = memchr(m.target, '?', m.target_len);
	size_t plen = q ? (size_t)(q - m.target) : m.target_len;
	size_t hostlen = strlen(c->host);
	char msg[600];
	int gh = github_check(px->cfg.repos, c->host, hostlen, m.method, m.method_len, m.target,
			      m.target_len, NULL, 0, msg, sizeof(msg));
	if (gh == 403) {
		error_reply(c, 403, "%s", msg);
		return true;
	}
	const char *provider = token_endpoint(c->host, hostlen, m.target, plen);
	bool need_body = gh == 1 || (provider && m.body != HTTP_BODY_NONE);
	const char *body = NULL;
	size_t blen = 0;
	struct gh_lookup *g = NULL;	/* node ids to resolve before sending */
	if (need_body) {
		if (m.body == HTTP_BODY_CHUNKED) {
			error_reply(c, 411, "kvmbox: this endpoint needs a Content-Length body");
			return true;
		}
		if (m.body == HTTP_BODY_LENGTH && m.content_length > BODY_MAX) {
			error_reply(c, 413, "kvmbox: body over %d bytes refused for this endpoint", BODY_MAX);
			return true;
		}
		blen = m.body == HTTP_BODY_LENGTH ? (size_t)m.content_length : 0;
		if (c->cin_len < (size_t)hl + blen) {
			if (m.expect_continue && !c->sent_continue) {
				static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
				ep_write(&c->down, cont, sizeof(cont) - 1);
				c->sent_continue = true;
				return true;
			}
			return false;	/* wait for the whole body */
		}
		body = (char *)c->cin + hl;
		if (gh == 1) {
			if (!(g = calloc(1, sizeof(*g)))) {
				error_reply(c, 502, "kvmbox: out of memory");
				return true;
			}
			gh = github_check_ids(px->cfg.repos, c->host, hostlen, m.method, m.method_len,
					      m.target, m.target_len, body, blen, &g->ids, msg, sizeof(msg));
			if (gh == GITHUB_RESOLVE) {
				gh_from_cache(px, g);
				if (!g->ask.n)
					gh = github_decide(px->cfg.repos, &g->ids, g->nodes, msg, sizeof(msg));
			}
			if (gh != GITHUB_RESOLVE) {
				free(g);
				g = NULL;
			}
			if (gh == 403) {
				error_reply(c, 403, "%s", msg);
				return true;
			}
		}
	}
	memcpy(c->method, m.method, MIN(m.method_len, sizeof(c->method)));
	c->method_len = MIN(m.method_len, sizeof(c->method));
	c->req_keep_alive = m.keep_alive;
	c->req_upgrade = m.upgrade_websocket;
	c->nreq++;	/* before token_request: it may answer from the reuse window */
	struct oauth_state *refresh = NULL;
	char *refresh_body = NULL;	/* the refresh as the server gets it: real value inside */
	size_t refresh_len = 0;
	if (provider) {
		int t = token_request(c, &m, (size_t)hl, provider, body, blen, &refresh, &refresh_body,
				      &refresh_len, msg, sizeof(msg));
		if (t) {
			free(g);
			error_reply(c, t, "%s", msg);
			return true;
		}
	}
	if (refresh && !refresh_body) {	/* parked, or answered from the reuse window */
		explicit_bzero(c->cin, (size_t)hl + blen);
		/* an answer that closes (HTTP/1.0) has emptied cin already */
		consume(c->cin, &c->cin_len, MIN(c->cin_len, (size_t)hl + blen));
		c->sent_continue = false;
		return true;
	}
	int r = refresh_body ? build_upstream(c, &m, refresh_body, refresh_len, false)
			     : build_upstream(c, &m, body, blen, !provider);
	if (refresh_body) {
		explicit_bzero(refresh_body, refresh_len);
		free(refresh_body);
	}
	c->sent_continue = false;
	if (r) {
		free(g);
		oauth_abort(c);
		error_reply(c, r == -ENOSPC ? 431 : 502, "kvmbox: request too large after substitution");
		return true;
	}
	if (g && (r = gh_start(c, &m, g))) {
		error_reply(c, 502, "kvmbox: cannot build the node id lookup for this GitHub mutation: %s",
			    strerror(-r));
		return true;
	}
	c->req_body = body ? HTTP_BODY_NONE : m.body;
	c->req_left = m.content_length;
	http_chunked_init(&c->req_ch);
	explicit_bzero(c->cin, (size_t)hl + blen);
	consume(c->cin, &c->cin_len, (size_t)hl + blen);
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

static bool process_request(struct conn *c)
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

/* ---- the response side ---- */

static void rs_complete(struct conn *c)
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
static void capture_failed(struct conn *c)
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

static bool rs_head(struct conn *c)
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
static size_t to_guest(struct conn *c, size_t n)
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

static bool process_response(struct conn *c)
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

/* ---- pumping ---- */

static bool read_side(struct ep *e, uint8_t *buf, size_t *len, size_t cap, bool *err)
{
	if (!e->s || e->eof || !e->hs_done || *len >= cap)
		return false;
	ssize_t n = ep_read(e, buf + *len, cap - *len);
	if (n > 0) {
		*len += (size_t)n;
		return true;
	}
	if (n == 0)
		return true;	/* e->eof now set */
	if (n != -EAGAIN)
		*err = true;
	return false;
}

/* Send what is queued; true when something left (room was freed). */
static bool flush_side(struct ep *e, int *err)
{
	if (!e->s)
		return false;
	size_t before = ep_pending(e);
	if (!before)
		return false;
	*err = ep_flush(e);
	return ep_pending(e) < before;
}

static bool pump_step(struct conn *c)
{
	bool p = false, err = false;
	int ferr = 0;
	p |= flush_side(&c->down, &ferr);
	if (ferr) {
		c->dead = true;
		return false;
	}
	p |= flush_side(&c->up, &ferr);
	if (ferr) {
		up_failed(c, ferr);
		return true;
	}
	if (!c->closing && c->rq != RQ_HANDSHAKE && c->rq != RQ_OAUTH_WAIT)
		p |= read_side(&c->down, c->cin, &c->cin_len, CIN_CAP, &err);
	if (err) {
		c->dead = true;
		return false;
	}
	p |= process_request(c);
	if (c->dead)
		return false;
	if (c->up.s && !c->up.hs_done) {
		int r = ep_handshake(&c->up);
		if (r < 0) {
			up_failed(c, r);
			return true;
		}
		p |= r > 0;
	}
	if (c->up.s) {
		p |= read_side(&c->up, c->uin, &c->uin_len, UIN_CAP, &err);
		if (err) {
			up_failed(c, -ECONNRESET);
			return true;
		}
	}
	p |= process_response(c);
	if (p)
		c->last_ns = now_ns();
	return p;
}

/* Flush, then react to end of stream on either side. */
static void finish_io(struct conn *c)
{
	if (ep_flush(&c->down) < 0) {
		c->dead = true;
		return;
	}
	if (c->up.s) {
		int r = ep_flush(&c->up);
		if (r < 0) {
			up_failed(c, r);
			if (c->dead)
				return;
		}
	}
	if (c->down.eof && !c->closing) {
		if (c->rq == RQ_TUNNEL) {
			if (!c->cin_len)
				start_closing(c);
		} else if (c->rs == RS_IDLE || c->rq == RQ_BODY || c->rq == RQ_CONNECT ||
			   c->rq == RQ_DETECT || c->rq == RQ_HANDSHAKE) {
			start_closing(c);
		}
	}
	if (c->up.s && c->up.eof && !c->uin_len) {
		switch (c->rs) {
		case RS_IDLE:
			ep_close(&c->up);	/* the server ended a keep-alive connection */
			break;
		case RS_HEAD:
			up_failed(c, -ECONNRESET);
			break;
		case RS_BODY:
		case RS_CAPTURE:
			if (c->rsp_body == HTTP_BODY_CLOSE && !c->rsp_raw_left) {
				c->rsp_keep_alive = false;
				rs_complete(c);
			} else {
				capture_failed(c);	/* truncated: the guest sees the close */
			}
			break;
		case RS_TUNNEL:
			start_closing(c);
			break;
		}
		if (c->dead)
			return;
		ep_flush(&c->down);
	}
	if (c->closing && (!ep_pending(&c->down) || c->down.eof)) {
		ep_shutdown(&c->down);
		c->dead = true;
	}
}

/* The readiness the connection waits on: guest side read/write, server
 * side read/write. */
struct wants {
	bool down_rd, down_wr, up_rd, up_wr;
};

static struct wants conn_wants(const struct conn *c)
{
	struct wants w = {
		.down_rd = !c->closing && !c->down.eof && c->cin_len < CIN_CAP,
		.down_wr = ep_pending(&c->down) > 0,
	};
	if (c->up.s) {
		w.up_rd = !c->up.eof && c->uin_len < UIN_CAP;
		w.up_wr = ep_pending(&c->up) > 0 || !c->up.hs_done;
	}
	return w;
}

/* Ask the streams for the readiness the connection waits on. */
static void arm_wants(struct conn *c)
{
	struct wants w = conn_wants(c);
	c->down.s->ops->want(c->down.s, w.down_rd, w.down_wr);
	if (c->up.s)
		c->up.s->ops->want(c->up.s, w.up_rd, w.up_wr);
}

static void kick_cb(struct loop *loop, struct loop_op *op, int res, uint32_t flags)
{
	(void)loop;
	(void)res;
	(void)flags;
	struct proxy *px = op->opaque;
	px->kick_armed = false;
	if (px->freeing)
		return;
	struct conn *c = px->kicked;
	px->kicked = NULL;
	while (c) {
		struct conn *next = c->kick_next;
		c->kick_next = NULL;
		c->in_kick = false;
		conn_pump(c);
		c = next;
	}
}

/* The pump stopped at its turn limit with work left: bytes may sit inside
 * TLS buffers where no readiness poll sees them, so come back on the next
 * loop turn (other connections run first). */
static void kick_later(struct conn *c)
{
	struct proxy *px = c->px;
	if (c->in_kick)
		return;
	c->in_kick = true;
	c->kick_next = px->kicked;
	px->kicked = c;
	if (!px->kick_armed) {
		px->kick_armed = true;
		loop_timer(px->loop, &px->kick_op, &px->kick_ts, 1);
	}
}

static void kick_forget(struct conn *c)
{
	struct conn **pp = &c->px->kicked;
	while (*pp && *pp != c)
		pp = &(*pp)->kick_next;
	if (*pp)
		*pp = c->kick_next;
	c->in_kick = false;
}

static void conn_destroy(struct conn *c)
{
	struct proxy *px = c->px;
	oauth_abort(c);
	gh_free(c);
	if (c->in_kick)
		kick_forget(c);
	if (c->probe_note)
		probe_verdict(c);	/* gone before the next tick */
	if (c->prev)
		c->prev->next = c->next;
	else
		px->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	px->nconns--;
	ep_close(&c->up);
	ep_close(&c->down);
	if (c->uhead) {
		explicit_bzero(c->uhead, c->uhead_len);
		free(c->uhead);
	}
	if (c->cap) {
		explicit_bzero(c->cap, CAPTURE_MAX);
		free(c->cap);
	}
	if (c->mbuf) {
		explicit_bzero(c->mbuf, MASK_BUF);
		free(c->mbuf);
	}
	for (unsigned i = 0; i < c->nmask_extra; i++) {
		explicit_bzero(c->mask_extra[i], c->mask_extra_len[i]);
		free(c->mask_extra[i]);
	}
	explicit_bzero(c->cin, CIN_CAP);
	free(c->cin);
	free(c->uin);
	free(c);
}

static void conn_pump(struct conn *c)
{
	if (c->in_pump) {	/* a stream notified from inside a step */
		c->repump = true;
		return;
	}
	c->in_pump = true;
	bool more;
	do {
		c->repump = false;
		more = true;
		for (unsigned i = 0; i < 1024 && !c->dead; i++)
			if (!pump_step(c)) {
				more = false;
				break;
			}
		if (!c->dead)
			finish_io(c);
	} while (c->repump && !c->dead);
	c->in_pump = false;
	if (c->dead) {
		conn_destroy(c);
		return;
	}
	arm_wants(c);
	if (more)
		kick_later(c);
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

static int make_ctxs(struct proxy *px)
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

static struct conn *conn_new(struct proxy *px, struct proxy_stream *s)
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

int proxy_take_stream(struct proxy *px, struct proxy_stream *s, const struct proxy_dst *dst)
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
		struct proxy_stream *s = proxy_sock_stream(px->loop, fd, false);
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
static void probe_verdict(struct conn *c)
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
	px->ca = ca_new();
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
