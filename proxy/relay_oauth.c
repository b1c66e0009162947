/* proxy/relay_oauth.c - OAuth single flight: one token refresh per client
 * at a time, the other connections parked behind it, the answer captured
 * and reused for a few seconds. Credential handling a reviewer can read
 * alone.  Part of the relay: proxy/relay.c says how the whole works,
 * proxy/relay_internal.h what its files share.
 */
#include "proxy/relay_internal.h"


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

void oauth_abort(struct conn *c)
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
void oauth_finish(struct conn *c)
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
struct oauth_state *oauth_client_for(struct proxy *px, const char *provider,
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
bool oauth_intercept(struct conn *c, struct oauth_state *o)
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
