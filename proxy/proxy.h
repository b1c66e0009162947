/* proxy/proxy.h - the credential-substituting TLS proxy: public interface.
 *
 * The proxy takes duplex byte streams (common/stream.h: a guest flow
 * handed over by net/, or an accepted socket in `kvmbox proxy --listen`),
 * terminates the guest's TLS with a per-launch CA (proxy/ca.h), parses each
 * HTTP/1.1 request strictly (proxy/http.h), applies the per-request policy
 * (egress host list, GitHub repository allow-list, SNI/Host/target
 * agreement), swaps placeholders for real secrets only towards their own
 * hosts (proxy/secrets.h), and relays to the real server over TLS verified
 * against the host trust store and the real name.  OAuth refreshes with a
 * placeholder refresh token are performed once on the host (proxy/oauth.h).
 *
 * Everything runs on one io_uring loop (common/loop.h), non-blocking, with
 * OpenSSL on memory BIOs: no thread per connection.  Buffers per connection
 * are bounded; a side that cannot keep up stops the other from being read.
 */
#ifndef KVMBOX_PROXY_PROXY_H
#define KVMBOX_PROXY_PROXY_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/loop.h"
#include "common/stream.h"
#include "proxy/github.h"
#include "net/policy.h"
#include "proxy/secrets.h"

struct proxy;

/* Where a handed-over stream was headed. */
struct proxy_dst {
	char addr[64];		/* address the guest dialled (IP literal) */
	uint16_t port;
	char name[256];		/* name the guest resolved to addr, or "" */
	/* Non-empty: the egress policy refuses the destination.  Nothing is
	 * dialled; every request on the stream gets a 403 whose body is this
	 * line (what was refused and the flag that would allow it), so an
	 * agent can say why instead of seeing a reset. */
	char deny[192];
};

/* The proxy's self-test endpoint, for the launch self-test in the guest.
 * A TLS connection whose server name is PROXY_CHECK_NAME (under .invalid,
 * RFC 6761: no real server can own it) is answered by the proxy itself and
 * never dials anything.  Each request on it names, in its Host header, the
 * host it stands for, and goes through the same judgement a request to
 * that host would (egress names, the GitHub allow-list, token endpoints,
 * placeholder substitution); the answer is the 403 that request would get,
 * or 200 with one line "kvmbox self-test: HOST: substituted=N unchanged=M"
 * (how many placeholders would be replaced by real values, how many left as
 * they are: counts only, never a value).  Hosts under PROXY_CHECK_NAME pass
 * the egress names (they are never dialled): "another host" for a
 * placeholder.  In a VM the guest reaches it at PROXY_CHECK_ADDR port 443,
 * a TEST-NET-1 address (RFC 5737) that the VMM hands to the proxy refused,
 * without counting it among the denials: any other server name on it gets
 * the refusal's 403. */
#define PROXY_CHECK_NAME "self-test.kvmbox.invalid"
#define PROXY_CHECK_ADDR "192.0.2.1"

/* --connect-to HOST:PORT:ADDR:PORT, as in curl. */
struct proxy_connect_to {
	char host[256];
	uint16_t port;
	char addr[64];
	uint16_t addr_port;
};

#define PROXY_MAX_CONNECT_TO 32
#define PROXY_MAX_OAUTH 4

/* An OAuth client whose refreshes the proxy performs on the host. */
struct proxy_oauth_cfg {
	char provider[16];		/* "claude" or "codex" */
	char access_placeholder[132];
	char refresh_placeholder[132];
	char state_path[4096];		/* host-only file for rotated tokens, or "" */
	/* After each successful refresh (loop thread): the real values are in
	 * the secrets table; the owner writes them where they belong at once
	 * (NULL: nothing to call).  expires_in_s: the new access token's
	 * lifetime as the server gave it (RFC 6749 5.1 expires_in), or -1. */
	void (*rotated)(void *opaque, long long expires_in_s);
	/* Before each refresh goes upstream (loop thread): the owner may put
	 * newer real tokens into the secrets table (another launch refreshed
	 * since), so the refresh uses the refresh token that is current. */
	void (*before_refresh)(void *opaque);
	/* When that refresh is over, however it ended (loop thread; after
	 * rotated on success): the owner releases what before_refresh took. */
	void (*after_refresh)(void *opaque);
	void *opaque;
};

struct proxy_config {
	struct secrets *secrets;	/* borrowed; rotated values are written back */
	const struct repolist *repos;	/* borrowed */
	const struct policy *egress;	/* borrowed: the names it permits (NULL: none) */
	const char *upstream_ca;	/* PEM file replacing the system store, or NULL */
	/* The per-launch CA kept by proxy_save_ca (a suspended sandbox's, for
	 * its resume), or NULL: a new one. */
	const char *ca_file;
	struct proxy_connect_to connect_to[PROXY_MAX_CONNECT_TO];
	unsigned nconnect_to;
	struct proxy_oauth_cfg oauth[PROXY_MAX_OAUTH];
	unsigned noauth;
	unsigned header_timeout_ms;	/* time to send a request head (0: 30 s) */
	unsigned idle_timeout_ms;	/* keep-alive idle limit (0: 300 s) */
	unsigned lookup_timeout_ms;	/* GitHub node id lookup (0: 10 s); then 504 */
	/* Each 403 the proxy gives (loop thread): the host the request was
	 * for and the answer's line, for the launch's record of refusals
	 * (launch/denials.h); NULL: not recorded. */
	void (*refused)(void *opaque, const char *host, const char *line);
	void *refused_opaque;
};

/* A proxy on loop into *out; cfg is copied (its pointers are borrowed;
 * egress is required).  0, or -EINVAL (a configuration it refuses),
 * -ENOMEM, -errno, each after a one-line log. */
int proxy_new(struct loop *loop, const struct proxy_config *cfg, struct proxy **out);
/* Close every connection and free px; the proxy's own loop requests are
 * cancelled and awaited first (the loop is turned meanwhile, on the
 * calling thread), so the loop may go on running after. */
void proxy_free(struct proxy *px);
/* Write the per-launch CA certificate (PEM) to path: 0 or -errno. */
int proxy_write_ca(const struct proxy *px, const char *path);
/* Keep the CA, key and all, in path (0600) for proxy_config.ca_file:
 * 0 or -errno. */
int proxy_save_ca(const struct proxy *px, const char *path);
/* Take ownership of a guest stream bound for dst. 0 or -errno (s closed). */
int proxy_take_stream(struct proxy *px, struct stream *s, const struct proxy_dst *dst);
/* Serve HTTP CONNECT on a listening socket (host transport). 0 or -errno. */
int proxy_listen(struct proxy *px, int listen_fd);
/* Connections currently open (tests, diagnostics). */
unsigned proxy_nconns(const struct proxy *px);

#ifdef KVMBOX_FUZZ
/* Fuzzing builds only (tests/fuzz/fuzz_proxy_relay.c): upstream connections
 * come from dial instead of sockets and speak plaintext, and a guest stream
 * that does not start with a TLS record is treated as if its TLS were
 * already terminated (substitution applies), so arbitrary guest bytes reach
 * the policy and the substitution without handshakes. */
struct proxy_fuzz_hooks {
	struct stream *(*dial)(void *opaque, const char *host, uint16_t port);
	void *opaque;
};
void proxy_fuzz_set(struct proxy *px, const struct proxy_fuzz_hooks *h);
/* Close every connection now (one proxy serves many fuzz inputs). */
void proxy_fuzz_close_all(struct proxy *px);
#endif

/* The plain-socket adapter: a non-blocking connected (or connecting, when
 * connecting is true) socket as a struct stream (common/stream.h) on loop.  Owns fd. */
struct stream *proxy_sock_stream(struct loop *loop, int fd, bool connecting);

#endif
