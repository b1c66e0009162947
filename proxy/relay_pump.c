/* proxy/relay_pump.c - pumping a connection: conn_pump moves bytes until
 * nothing moves, then asks the streams for readiness; the kick queue and
 * the idle probe.  Part of the relay: proxy/relay.c says how the whole
 * works, proxy/relay_internal.h what its files share.
 */
#include "proxy/relay_internal.h"


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

bool pump_step(struct conn *c)
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

struct wants conn_wants(const struct conn *c)
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

void kick_cb(struct loop *loop, struct loop_op *op, int res, uint32_t flags)
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
void kick_later(struct conn *c)
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

void conn_destroy(struct conn *c)
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

void conn_pump(struct conn *c)
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
