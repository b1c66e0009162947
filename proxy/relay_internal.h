/* proxy/relay_internal.h - what the files of the relay share (proxy/relay.c
 * and its relay_*.c): its limits, the connection's states, struct proxy,
 * struct conn, and the functions one file calls in another.  Private to
 * the relay: nothing outside proxy/relay*.c includes it.
 */
#ifndef KVMBOX_PROXY_RELAY_INTERNAL_H
#define KVMBOX_PROXY_RELAY_INTERNAL_H

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


/* The readiness the connection waits on: guest side read/write, server
 * side read/write. */
struct wants {
	bool down_rd, down_wr, up_rd, up_wr;
};

/* Called across the relay's files, by the file that defines each. */

/* small helpers (relay.c) */
void consume(uint8_t *buf, size_t *len, size_t n);
const char *reason(int st);
void start_closing(struct conn *c);
void local_reply(struct conn *c, int status, const char *ctype, const char *body, size_t len, bool keep);
void error_reply(struct conn *c, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* the server side (relay_server.c) */
void stream_notify(struct stream *s);
bool check_host(const char *name);
bool egress_refused(struct conn *c);
int conn_dial(struct conn *c);
void up_failed(struct conn *c, int err);

/* OAuth single flight (relay_oauth.c) */
void oauth_abort(struct conn *c);
void oauth_finish(struct conn *c);
struct oauth_state *oauth_client_for(struct proxy *px, const char *provider, const struct oauth_body *b);
bool oauth_intercept(struct conn *c, struct oauth_state *o);

/* GitHub node id lookup (relay_github.c) */
void gh_free(struct conn *c);
void gh_from_cache(struct proxy *px, struct gh_lookup *g);
bool gh_rs_head(struct conn *c, const struct http_msg *m, size_t hl);
void gh_finish(struct conn *c);
int gh_start(struct conn *c, const struct http_msg *m, struct gh_lookup *g);

/* the request side (relay_request.c) */
bool process_request(struct conn *c);

/* the response side (relay_response.c) */
void rs_complete(struct conn *c);
void capture_failed(struct conn *c);
bool rs_head(struct conn *c);
size_t to_guest(struct conn *c, size_t n);
bool process_response(struct conn *c);

/* pumping (relay_pump.c) */
bool pump_step(struct conn *c);
struct wants conn_wants(const struct conn *c);
void kick_cb(struct loop *loop, struct loop_op *op, int res, uint32_t flags);
void kick_later(struct conn *c);
void conn_destroy(struct conn *c);
void conn_pump(struct conn *c);

/* TLS contexts (relay.c) */
int make_ctxs(struct proxy *px);

/* connections and the proxy (relay.c) */
void probe_verdict(struct conn *c);

#endif
