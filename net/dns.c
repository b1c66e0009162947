/* net/dns.c - the DNS forwarder on the gateway address.
 *
 * Queries for A and AAAA are answered from the host's own resolver through
 * getaddrinfo(3) on one worker thread, so /etc/hosts, nsswitch and
 * /etc/resolv.conf apply exactly as for a host program.  The policy applies
 * twice: a name the profile does not allow is REFUSED, and addresses the
 * guest may not reach are removed from answers (a name left with none gets
 * REFUSED too, so clients fail at once instead of timing out).  Other query
 * types get an empty NOERROR answer.  At most DNS_QUEUE lookups are in
 * flight; more are refused (SERVFAIL).
 */
#include "net/internal.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "cage/cage.h"
#include "common/log.h"
#include "common/util.h"

enum { REQ_FREE = 0, REQ_QUEUED, REQ_WORKING, REQ_DONE };

#define RCODE_SERVFAIL 2
#define RCODE_NXDOMAIN 3
#define RCODE_REFUSED 5

int dns_parse_question(const uint8_t *m, size_t len, char name[256], uint16_t *qtype, uint16_t *qend)
{
	if (len < 12 || len > 512 || rd16(m + 4) != 1 || (m[2] & 0x80))
		return -EINVAL;	/* exactly one question, and a query */
	size_t i = 12, n = 0;
	for (;;) {
		if (i >= len)
			return -EINVAL;
		uint8_t l = m[i++];
		if (l == 0)
			break;
		if (l > 63 || i + l > len || n + l + 1 > 254)
			return -EINVAL;	/* also refuses compression pointers */
		if (n)
			name[n++] = '.';
		for (uint8_t k = 0; k < l; k++) {
			unsigned char c = m[i + k];
			if (!isalnum(c) && c != '-' && c != '_')
				return -EINVAL;
			name[n++] = (char)tolower(c);
		}
		i += l;
	}
	if (n == 0 || i + 4 > len)
		return -EINVAL;
	name[n] = 0;
	*qtype = rd16(m + i);
	if (rd16(m + i + 2) != 1)
		return -EINVAL;	/* class IN only */
	*qend = (uint16_t)(i + 4);
	return 0;
}

static void dns_reply(struct net_stack *ns, bool v6, const uint8_t *gsrc6, uint16_t gport,
		      const uint8_t *q, uint16_t qend, uint8_t rcode, uint16_t qtype,
		      uint8_t (*ans)[16], int nans)
{
	uint8_t r[512];
	if (qend > sizeof(r))
		return;
	memcpy(r, q, qend);
	r[2] = (uint8_t)(0x80 | (q[2] & 0x79));	/* QR, opcode, RD */
	r[3] = (uint8_t)(0x80 | rcode);		/* RA */
	wr16(r + 6, 0);
	wr16(r + 8, 0);
	wr16(r + 10, 0);
	size_t p = qend;
	int n = 0;
	for (int i = 0; i < nans; i++) {
		size_t alen = qtype == 1 ? 4 : 16;
		if (p + 12 + alen > sizeof(r))
			break;
		wr16(r + p, 0xc00c);
		wr16(r + p + 2, qtype);
		wr16(r + p + 4, 1);
		wr32(r + p + 6, 60);
		wr16(r + p + 10, (uint16_t)alen);
		memcpy(r + p + 12, qtype == 1 ? ans[i] + 12 : ans[i], alen);
		p += 12 + alen;
		n++;
	}
	wr16(r + 6, (uint16_t)n);
	if (v6)
		udp6_send_to_guest(ns, ns->gw6, gsrc6, 53, gport, r, p);
	else
		udp_send_to_guest(ns, ns->cfg.gateway_ip, 53, gport, r, p);
}

static void *dns_worker(void *arg)
{
	struct dns_state *d = arg;
	pthread_mutex_lock(&d->lock);
	while (!d->quit) {
		struct dns_req *r = NULL;
		for (int i = 0; i < DNS_QUEUE && !r; i++)
			if (d->req[i].busy && !d->req[i].done && d->req[i].err == -EINPROGRESS)
				r = &d->req[i];
		if (!r) {
			pthread_cond_wait(&d->cond, &d->lock);
			continue;
		}
		r->err = -EBUSY;	/* claimed */
		char name[256];
		memcpy(name, r->name, sizeof(name));
		int family = r->qtype == 1 ? AF_INET : AF_INET6;
		pthread_mutex_unlock(&d->lock);

		struct addrinfo hints = { .ai_family = family, .ai_socktype = SOCK_STREAM };
		struct addrinfo *res = NULL, *ai;
		/* In a caged VM the worker narrows itself on its first query
		 * (cage.h): it was started before the process filter. */
		int gr = cage_thread(CAGE_RESOLVER) < 0 ? EAI_FAIL :
			 getaddrinfo(name, NULL, &hints, &res);
		uint8_t ans[16][16];
		int n = 0;
		for (ai = gr == 0 ? res : NULL; ai && n < 16; ai = ai->ai_next) {
			if (ai->ai_family == AF_INET)
				policy_addr_from_v4(ans[n++], ntohl(((struct sockaddr_in *)ai->ai_addr)->sin_addr.s_addr));
			else if (ai->ai_family == AF_INET6)
				memcpy(ans[n++], &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr, 16);
		}
		if (res)
			freeaddrinfo(res);

		pthread_mutex_lock(&d->lock);
		memcpy(r->answers, ans, sizeof(ans));
		r->nanswers = n;
		r->err = gr == 0 ? 0 : (gr == EAI_NONAME || gr == EAI_NODATA
#ifdef EAI_ADDRFAMILY
					|| gr == EAI_ADDRFAMILY
#endif
					) ? -ENOENT : -EIO;
		r->done = true;
		uint64_t one = 1;
		ssize_t w = write(d->efd, &one, sizeof(one));
		(void)w;
	}
	pthread_mutex_unlock(&d->lock);
	return NULL;
}

/* Answer one finished lookup (loop thread, lock held). */
static void dns_finish(struct net_stack *ns, struct dns_req *r)
{
	uint8_t keep[16][16];
	int n = 0, denied = 0;
	for (int i = 0; i < r->nanswers; i++) {
		uint32_t v4;
		bool is4 = policy_addr_to_v4(r->answers[i], &v4);
		if (is4 != (r->qtype == 1))
			continue;
		if (!policy_allows(ns->policy, r->answers[i], NULL)) {
			/* A learned address is only what a permitted name gave. */
			if (ns->policy->profile != PP_PERMISSIVE &&
			    policy_classify(ns->policy, r->answers[i]) == PG_PUBLIC) {
				policy_learn(ns->policy, r->answers[i], 60, now_ns());
			} else {
				denied++;
				continue;
			}
		}
		memcpy(keep[n++], r->answers[i], 16);
	}
	uint8_t rcode = 0;
	if (r->err == -ENOENT)
		rcode = r->qtype == 1 ? RCODE_NXDOMAIN : 0;
	else if (r->err < 0)
		rcode = RCODE_SERVFAIL;
	else if (n == 0 && denied > 0) {
		rcode = RCODE_REFUSED;
		ns->stats.dns_refused++;
		log_info("net: dns: %s resolves only to addresses the policy denies", r->name);
	}
	dns_reply(ns, r->v6, r->gsrc6, r->gport, r->query, r->qend, rcode, r->qtype, keep, n);
}

static void dns_done_cb(struct loop *loop, struct loop_op *op, int res, uint32_t flags)
{
	(void)loop;
	(void)flags;
	struct net_stack *ns = op->opaque;
	struct dns_state *d = &ns->dns;
	if (res < 0 || ns->destroying)
		return;
	uint64_t v;
	ssize_t rr = read(d->efd, &v, sizeof(v));
	(void)rr;
	ns->now = now_ns();
	pthread_mutex_lock(&d->lock);
	for (int i = 0; i < DNS_QUEUE; i++) {
		struct dns_req *r = &d->req[i];
		if (r->busy && r->done) {
			dns_finish(ns, r);
			r->busy = false;
		}
	}
	pthread_mutex_unlock(&d->lock);
}

void dns_input(struct net_stack *ns, const struct l3 *l3, uint16_t sport, const uint8_t *q, size_t len)
{
	char name[256];
	uint16_t qtype, qend;
	ns->stats.dns_queries++;
	if (dns_parse_question(q, len, name, &qtype, &qend) < 0) {
		ns->stats.drop_udp++;
		return;
	}
	if (!policy_allows_name(ns->policy, name)) {
		ns->stats.dns_refused++;
		net_note_denied_name(ns, name);
		log_once(LOG_INFO, "net: dns: refusing names the %s egress profile does not permit (first: %s; --allow-domain allows one)",
			 policy_profile_name(ns->policy->profile), name);
		dns_reply(ns, l3->v6, l3->src, sport, q, qend, RCODE_REFUSED, qtype, NULL, 0);
		return;
	}
	if ((qtype != 1 && qtype != 28) || !ns->dns.started) {
		dns_reply(ns, l3->v6, l3->src, sport, q, qend, 0, qtype, NULL, 0);
		return;
	}
	struct dns_state *d = &ns->dns;
	pthread_mutex_lock(&d->lock);
	struct dns_req *r = NULL;
	for (int i = 0; i < DNS_QUEUE && !r; i++)
		if (!d->req[i].busy)
			r = &d->req[i];
	if (r) {
		r->busy = true;
		r->done = false;
		r->err = -EINPROGRESS;
		r->gport = sport;
		r->v6 = l3->v6;
		memcpy(r->gsrc6, l3->src, 16);
		r->qtype = qtype;
		r->qend = qend;
		r->qlen = (uint16_t)len;
		memcpy(r->query, q, len);
		memcpy(r->name, name, sizeof(name));
		pthread_cond_signal(&d->cond);
	}
	pthread_mutex_unlock(&d->lock);
	if (!r)
		dns_reply(ns, l3->v6, l3->src, sport, q, qend, RCODE_SERVFAIL, qtype, NULL, 0);
}

int dns_init(struct net_stack *ns)
{
	struct dns_state *d = &ns->dns;
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->cond, NULL);
	d->efd = -1;
	if (!ns->loop)
		return 0;	/* unit tests without a loop: no lookups */
	d->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (d->efd < 0)
		return -errno;
	d->op.cb = dns_done_cb;
	d->op.opaque = ns;
	int r = loop_poll(ns->loop, &d->op, d->efd, POLLIN);
	if (r < 0)
		return r;
	/* The worker takes no process signals: they belong to the threads
	 * that wait for them (SIGHUP, SIGWINCH... blocked there by callers
	 * that may run after this). */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(&d->thread, NULL, dns_worker, d);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r)
		return -r;
	d->started = true;
	return 0;
}

void dns_fini(struct net_stack *ns)
{
	struct dns_state *d = &ns->dns;
	if (d->started) {
		pthread_mutex_lock(&d->lock);
		d->quit = true;
		pthread_cond_broadcast(&d->cond);
		pthread_mutex_unlock(&d->lock);
		/* A getaddrinfo in progress finishes first (bounded by the
		 * resolver's own timeouts). */
		pthread_join(d->thread, NULL);
		d->started = false;
	}
	if (d->efd >= 0)
		close(d->efd);
	d->efd = -1;
}
