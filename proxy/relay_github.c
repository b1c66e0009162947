/* proxy/relay_github.c - the GitHub node id lookup: a GraphQL mutation
 * that names node ids is held (built, not sent) while one nodes(ids:)
 * query on the same upstream connection asks what they are; the answer
 * decides, against the allow-list, whether the held request goes or a 403
 * does. Credential handling a reviewer can read alone.  Part of the relay:
 * proxy/relay.c says how the whole works, proxy/relay_internal.h what its
 * files share.
 */
#include "proxy/relay_internal.h"


void gh_free(struct conn *c)
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
void gh_from_cache(struct proxy *px, struct gh_lookup *g)
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
bool gh_rs_head(struct conn *c, const struct http_msg *m, size_t hl)
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
void gh_finish(struct conn *c)
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
int gh_start(struct conn *c, const struct http_msg *m, struct gh_lookup *g)
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
