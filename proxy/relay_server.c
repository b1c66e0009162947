/* proxy/relay_server.c - the server side of a connection: where it is
 * dialled (the egress decision; the self-test endpoint is answered in
 * relay_request.c and never dialled), and what its failures do.  Part of
 * the relay: proxy/relay.c says how the whole works,
 * proxy/relay_internal.h what its files share.
 */
#include "proxy/relay_internal.h"


void stream_notify(struct stream *s)
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
bool check_host(const char *name)
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
bool egress_refused(struct conn *c)
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
int conn_dial(struct conn *c)
{
	struct proxy *px = c->px;
	if (c->check)
		return -EPERM;	/* the self-test endpoint: nothing leaves, by construction */
#ifdef KVMBOX_FUZZ
	if (px->fuzz.dial) {
		struct stream *fs = px->fuzz.dial(px->fuzz.opaque, c->host, c->port);
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
	struct stream *s = proxy_sock_stream(px->loop, fd, r < 0);
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


/* The server connection failed: answer 502 if nothing was forwarded yet. */
void up_failed(struct conn *c, int err)
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
