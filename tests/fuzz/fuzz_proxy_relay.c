/* tests/fuzz/fuzz_proxy_relay.c - the whole relay (proxy/relay.c) on
 * arbitrary guest bytes, with the property the proxy exists for as the
 * oracle: no real secret appears in any byte the proxy writes toward the
 * guest.
 *
 * The guest stream and every upstream are in memory (proxy_fuzz_set: no
 * sockets, no TLS handshakes; the guest's bytes count as already inside
 * TLS, so substitution applies).  Input: byte 0 picks the host the guest
 * "dialled" (an API host with secrets, the OAuth token hosts, GitHub,
 * another host, the self-test endpoint, which must never dial), byte 1 how
 * the fake upstream answers each request:
 *   0 echo the request (head and body) as a Content-Length body
 *   1 echo it in 3-byte chunks (chunk framing splits every value)
 *   2 a token endpoint: freshly rotated real tokens for a request that
 *     carries a real refresh token (as a server mints them), else 400
 *   3 an error quoting the request (400, JSON)
 *   4 a redirect whose Location and body quote the request
 *   5 101 Switching Protocols, then echo raw bytes (a tunnel)
 *   6 close at once
 *   7 echo, then a second response nobody asked for
 * the rest is what the guest sends (any number of requests, pipelined).
 *
 * Oracle: every byte written to the guest is searched for every real value
 * (initial and rotated), raw and inside any base64 run (an echoed Basic
 * credential).  Also: the proxy settles (bounded turns) and never crashes
 * (ASan); one proxy serves every input, its connections closed after each. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "common/log.h"
#include "common/loop.h"
#include "proxy/github.h"
#include "net/policy.h"
#include "proxy/proxy.h"
#include "proxy/secrets.h"

#define CAP (256 * 1024)

static const char *const reals[] = {
	"REALapikey0001", "REALghtoken0002", "REALaccess0003", "REALrefresh0004",
	"REALcxaccess005", "REALcxrefresh06", "ROTATEDaccess07", "ROTATEDrefres07",
};

/* One in-memory stream: what the peer has for the proxy to read (rx), what
 * the proxy wrote (tx), and whether the proxy asked to be told. */
struct mstream {
	struct stream s;
	uint8_t *rx, *tx;
	size_t rx_len, rx_off, tx_len;
	bool rx_eof, closed, want_rd, want_wr, is_guest;
	unsigned mode;		/* upstream: how it answers */
	size_t served;		/* upstream: request bytes already answered */
	unsigned answers;
};

static struct mstream *streams[16];
static unsigned nstreams;
static unsigned up_mode;
static bool guest_has_refresh;	/* the input itself holds a real refresh token */

static ssize_t m_read(struct stream *s, void *buf, size_t len)
{
	struct mstream *m = (struct mstream *)s;
	if (m->rx_off < m->rx_len) {
		size_t n = m->rx_len - m->rx_off < len ? m->rx_len - m->rx_off : len;
		if (n > 4096)
			n = 4096;	/* short reads, as a socket gives */
		memcpy(buf, m->rx + m->rx_off, n);
		m->rx_off += n;
		return (ssize_t)n;
	}
	return m->rx_eof ? 0 : -EAGAIN;
}

static void upstream_answer(struct mstream *m);

static ssize_t m_write(struct stream *s, const void *buf, size_t len)
{
	struct mstream *m = (struct mstream *)s;
	if (m->tx_len + len > CAP)
		len = CAP - m->tx_len;
	if (!len)
		return -EAGAIN;
	memcpy(m->tx + m->tx_len, buf, len);
	m->tx_len += len;
	if (!m->is_guest)
		upstream_answer(m);
	return (ssize_t)len;
}

static void m_want(struct stream *s, bool rd, bool wr)
{
	struct mstream *m = (struct mstream *)s;
	m->want_rd |= rd;
	m->want_wr |= wr;
}

static void m_shutdown(struct stream *s)
{
	(void)s;
}

static void m_close(struct stream *s)
{
	((struct mstream *)s)->closed = true;
}

static const struct stream_ops mops = { m_read, m_write, m_want, m_shutdown, m_close };

static struct mstream *mstream_new(bool guest)
{
	if (nstreams == sizeof(streams) / sizeof(streams[0]))
		return NULL;
	struct mstream *m = calloc(1, sizeof(*m));
	m->rx = malloc(CAP);
	m->tx = malloc(CAP);
	m->s.ops = &mops;
	m->is_guest = guest;
	streams[nstreams++] = m;
	return m;
}

static void rx_add(struct mstream *m, const void *p, size_t n)
{
	if (m->rx_len + n > CAP)
		n = CAP - m->rx_len;
	memcpy(m->rx + m->rx_len, p, n);
	m->rx_len += n;
}

static void rx_printf(struct mstream *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void rx_printf(struct mstream *m, const char *fmt, ...)
{
	char b[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(b, sizeof(b), fmt, ap);
	va_end(ap);
	if (n > 0)
		rx_add(m, b, (size_t)n < sizeof(b) ? (size_t)n : sizeof(b) - 1);
}

/* The fake server: answer each request head it has received (bodies are
 * echoed with whatever arrived so far). */
static void upstream_answer(struct mstream *m)
{
	for (;;) {
		const uint8_t *req = m->tx + m->served;
		size_t avail = m->tx_len - m->served;
		const uint8_t *end = memmem(req, avail, "\r\n\r\n", 4);
		if (!end || m->rx_eof || m->answers > 8)
			return;
		size_t n = avail;	/* head and whatever body came with it */
		m->served = m->tx_len;
		m->answers++;
		switch (m->mode) {
		case 0:
		case 7:
			rx_printf(m, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", n);
			rx_add(m, req, n);
			if (m->mode == 7)
				rx_printf(m, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n%s", reals[0]);
			break;
		case 1:
			rx_printf(m, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
			for (size_t i = 0; i < n; i += 3) {
				size_t k = n - i < 3 ? n - i : 3;
				rx_printf(m, "%zx\r\n", k);
				rx_add(m, req + i, k);
				rx_add(m, "\r\n", 2);
			}
			rx_add(m, "0\r\n\r\n", 5);
			break;
		case 2: {
			/* a token endpoint: new tokens only for a real refresh token the
			 * proxy put there (one the guest sent itself proves nothing) */
			bool real = false;
			for (size_t r = 3; r < sizeof(reals) / sizeof(reals[0]); r += 2)
				real |= memmem(req, n, reals[r], strlen(reals[r])) != NULL;
			if (!real || guest_has_refresh || !memmem(req, n, "/oauth/token", 12)) {
				rx_printf(m, "HTTP/1.1 400 Bad Request\r\nContent-Length: 2\r\n\r\n{}");
				break;
			}
			char body[256];
			int bl = snprintf(body, sizeof(body), "{\"access_token\":\"%s\",\"refresh_token\":\"%s\","
					  "\"id_token\":\"e30.e30.c2ln\",\"token_type\":\"Bearer\"}", reals[6], reals[7]);
			rx_printf(m, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
				  bl, body);
			break;
		}
		case 3: {
			static const char pre[] = "{\"error\":\"invalid_grant\",\"error_description\":\"";
			rx_printf(m, "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n"
				  "Content-Length: %zu\r\n\r\n", sizeof(pre) - 1 + n + 2);
			rx_add(m, pre, sizeof(pre) - 1);
			rx_add(m, req, n);
			rx_add(m, "\"}", 2);
			break;
		}
		case 4: {
			static const char loc[] = "HTTP/1.1 302 Found\r\nLocation: https://x.test/?";
			size_t q = n < 200 ? n : 200;
			rx_add(m, loc, sizeof(loc) - 1);
			for (size_t i = 0; i < q; i++)
				rx_add(m, req[i] > 0x20 && req[i] < 0x7f ? &req[i] : (const uint8_t *)"_", 1);
			rx_printf(m, "\r\nContent-Length: %zu\r\n\r\n", n);
			rx_add(m, req, n);
			break;
		}
		case 5:
			if (m->answers == 1) {
				rx_printf(m, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
				rx_add(m, req, n);
			}
			return;
		default:
			m->rx_eof = true;
			return;
		}
	}
}

static bool checking;	/* this input is for the self-test endpoint: nothing may be dialled */

static struct stream *fuzz_dial(void *opaque, const char *host, uint16_t port)
{
	(void)opaque;
	(void)host;
	(void)port;
	if (checking) {
		fprintf(stderr, "the self-test endpoint dialled %s:%u\n", host, port);
		abort();
	}
	struct mstream *m = mstream_new(false);
	if (!m)
		return NULL;
	m->mode = up_mode;
	return &m->s;
}

/* Whether real value r is in buf, as it is or inside a base64 run
 * (decoded at each alignment: an echoed Basic credential). */
static bool holds_real(const uint8_t *buf, size_t len, size_t r)
{
	static unsigned char dec[CAP];
	if (memmem(buf, len, reals[r], strlen(reals[r])))
		return true;
	for (size_t i = 0; i < len;) {
		size_t j = i;
		while (j < len && (isalnum(buf[j]) || buf[j] == '+' || buf[j] == '/' || buf[j] == '='))
			j++;
		for (size_t a = 0; a < 4 && j - i >= a + 8; a++) {
			int d = EVP_DecodeBlock(dec, buf + i + a, (int)((j - i - a) / 4 * 4));
			if (d > 0 && memmem(dec, (size_t)d, reals[r], strlen(reals[r])))
				return true;
		}
		i = j + 1;
	}
	return false;
}

/* The oracle: no real value the guest did not send itself. */
static void check_guest_output(const struct mstream *g)
{
	for (size_t r = 0; r < sizeof(reals) / sizeof(reals[0]); r++)
		if (!holds_real(g->rx, g->rx_len, r) && holds_real(g->tx, g->tx_len, r)) {
			fprintf(stderr, "real value %s reached the guest\n", reals[r]);
			abort();
		}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct loop loop;
	static struct secrets sec;
	static struct repolist repos;
	static struct policy egress;	/* permissive: every name, as VMs had */
	static int init;
	if (!init) {
		log_set_level(LOG_ERR);
		if (loop_init(&loop, 64))
			abort();
		repolist_init(&repos);
		repolist_add(&repos, "alice/ok");
		policy_init(&egress);
		init = 1;
	}
	if (size < 2)
		return 0;
	static const char *const names[] = { "api.test", "console.anthropic.com", "auth.openai.com",
					     "api.github.com", "github.com", "other.test",
					     PROXY_CHECK_NAME };
	static struct proxy *px;
	if (!px) {	/* one proxy for every input: its CA and TLS contexts cost ms */
		secrets_init(&sec);
		secrets_add(&sec, "api", "kvmbox-ph-api-0001", reals[0], "api.test,*.test");
		secrets_add(&sec, "gh", "kvmbox-ph-gh-00002", reals[1], "github.com,api.github.com");
		secrets_add(&sec, "ca", "kvmbox-ph-access-3", reals[2], "api.test,console.anthropic.com");
		secrets_add(&sec, "cr", "kvmbox-ph-refresh-4", reals[3], "console.anthropic.com");
		secrets_add(&sec, "xa", "kvmbox-ph-cxaccess5", reals[4], "api.test");
		secrets_add(&sec, "xr", "kvmbox-ph-cxrefresh6", reals[5], "auth.openai.com");
		static struct proxy_config cfg;
		cfg = (struct proxy_config){ .secrets = &sec, .repos = &repos, .egress = &egress, .noauth = 2,
					     .header_timeout_ms = 1000, .lookup_timeout_ms = 1000 };
		snprintf(cfg.oauth[0].provider, 16, "claude");
		snprintf(cfg.oauth[0].access_placeholder, 132, "kvmbox-ph-access-3");
		snprintf(cfg.oauth[0].refresh_placeholder, 132, "kvmbox-ph-refresh-4");
		snprintf(cfg.oauth[1].provider, 16, "codex");
		snprintf(cfg.oauth[1].access_placeholder, 132, "kvmbox-ph-cxaccess5");
		snprintf(cfg.oauth[1].refresh_placeholder, 132, "kvmbox-ph-cxrefresh6");
		if (proxy_new(&loop, &cfg, &px) < 0)
			abort();
		struct proxy_fuzz_hooks h = { .dial = fuzz_dial };
		proxy_fuzz_set(px, &h);
	}
	/* every input starts from the initial real values (twice: no previous
	 * value of another input lingers) */
	for (unsigned i = 0; i < 6; i++)
		for (int k = 0; k < 2; k++)
			secret_set_value(&sec.v[i], reals[i], strlen(reals[i]));
	up_mode = data[1] % 8;
	nstreams = 0;
	struct mstream *g = mstream_new(true);
	rx_add(g, data + 2, size - 2);
	guest_has_refresh = false;
	for (size_t r = 3; r < sizeof(reals) / sizeof(reals[0]); r += 2)
		guest_has_refresh |= holds_real(g->rx, g->rx_len, r);
	g->rx_eof = true;
	struct proxy_dst dst = { .addr = "192.0.2.10", .port = 443 };
	snprintf(dst.name, sizeof(dst.name), "%s", names[data[0] % 7]);
	checking = data[0] % 7 == 6;
	proxy_take_stream(px, &g->s, &dst);
	/* Turn until nothing moves: notify whoever asked and can go on. */
	for (unsigned turn = 0, idle = 0; turn < 400 && idle < 3; turn++) {
		bool moved = false;
		for (unsigned i = 0; i < nstreams; i++) {
			struct mstream *m = streams[i];
			bool rd = m->want_rd && (m->rx_off < m->rx_len || m->rx_eof);
			if (m->closed || !(rd || m->want_wr) || !m->s.notify)
				continue;
			m->want_rd = m->want_wr = false;
			m->s.notify(&m->s);
			moved = true;
		}
		loop_run_once(&loop, moved ? 0 : 200000);	/* kicks: pumps deferred to the next turn */
		idle = moved ? 0 : idle + 1;
	}
	check_guest_output(g);
	proxy_fuzz_close_all(px);
	check_guest_output(g);
	for (unsigned i = 0; i < nstreams; i++) {
		free(streams[i]->rx);
		free(streams[i]->tx);
		free(streams[i]);
	}
	return 0;
}
