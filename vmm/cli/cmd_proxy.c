/* vmm/cli/cmd_proxy.c - `kvmbox proxy`: the TLS proxy as an HTTP CONNECT
 * proxy on a socket (host transport for tests and auditors).
 *
 *   kvmbox proxy --listen ADDR:PORT [--secret PLACEHOLDER=env:VAR@HOST[,HOST...]]
 *       [--secret PLACEHOLDER=file:PATH@HOST...] [--repo OWNER/NAME]
 *       [--upstream-ca FILE] [--connect-to HOST:PORT:ADDR:PORT] [--ca-out FILE]
 *       [--profile locked|standard|permissive] [--agent claude|codex|all|none]
 *       [--allow-domain NAME|*.NAME] [--oauth claude|codex=ACCESS_PH,REFRESH_PH[,STATE_FILE]]
 *       [--header-timeout SECONDS] [--lookup-timeout SECONDS]
 *       [--transparent ADDR:PORT=DSTADDR:DSTPORT]
 *
 * --profile, --agent and --allow-domain (--allow-host is its older name)
 * are the egress policy's names (net/names.c): the VMs' vocabulary.
 *
 * --transparent accepts raw (non-CONNECT) connections on ADDR:PORT and hands
 * each to proxy_take_stream() as a flow the guest dialled to DSTADDR:DSTPORT,
 * exactly as net/ does with guest flows: the name then comes from the SNI.
 *
 * Writes the per-launch CA to --ca-out, enters the cage (cage/cage.h), then
 * prints "listening on ADDR:PORT" on stdout (the real port when PORT is 0)
 * and serves until SIGINT/SIGTERM.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cage/cage.h"
#include "common/harden.h"
#include "common/log.h"
#include "common/util.h"
#include "proxy/proxy.h"
#include "vmm/cli/cli.h"

/* The loop the signal handler stops: set once before signals are enabled. */
static struct loop *signal_loop;

static void on_signal(int sig)
{
	(void)sig;
	if (signal_loop)
		loop_stop_async(signal_loop, 0);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: kvmbox proxy --listen ADDR:PORT [--secret PLACEHOLDER=env:VAR@HOST[,HOST...]]\n"
		"         [--secret PLACEHOLDER=file:PATH@HOST...] [--repo OWNER/NAME] [--upstream-ca FILE]\n"
		"         [--connect-to HOST:PORT:ADDR:PORT] [--ca-out FILE] [--profile locked|standard|permissive]\n"
		"         [--agent claude|codex|all|none] [--allow-domain NAME|*.NAME]\n"
		"         [--oauth claude|codex=ACCESS_PLACEHOLDER,REFRESH_PLACEHOLDER[,STATE_FILE]]\n"
		"         [--header-timeout SECONDS] [--lookup-timeout SECONDS]\n"
		"         [--transparent ADDR:PORT=DSTADDR:DSTPORT]\n");
}

/* "ADDR:PORT" / "[V6]:PORT" into a sockaddr: 0 or -EINVAL. */
static int parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	if (!colon || (size_t)(colon - s) >= sizeof(host))
		return -EINVAL;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = 0;
	char *end;
	long port = strtol(colon + 1, &end, 10);
	if (*end || port < 0 || port > 65535 || colon[1] == 0)
		return -EINVAL;
	memset(ss, 0, sizeof(*ss));
	struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
	size_t hl = strlen(host);
	if (hl > 2 && host[0] == '[' && host[hl - 1] == ']') {
		host[hl - 1] = 0;
		if (inet_pton(AF_INET6, host + 1, &a6->sin6_addr) != 1)
			return -EINVAL;
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*a6);
		return 0;
	}
	if (inet_pton(AF_INET, hl ? host : "127.0.0.1", &a4->sin_addr) != 1)
		return -EINVAL;
	a4->sin_family = AF_INET;
	a4->sin_port = htons((uint16_t)port);
	*len = sizeof(*a4);
	return 0;
}

/* HOST:PORT:ADDR:PORT (ADDR may be [v6]); HOST and the first PORT may be empty. */
static int parse_connect_to(const char *s, struct proxy_connect_to *ct)
{
	memset(ct, 0, sizeof(*ct));
	const char *c1 = strchr(s, ':');
	if (!c1 || (size_t)(c1 - s) >= sizeof(ct->host))
		return -EINVAL;
	memcpy(ct->host, s, (size_t)(c1 - s));
	const char *c2 = strchr(c1 + 1, ':');
	if (!c2)
		return -EINVAL;
	ct->port = (uint16_t)atoi(c1 + 1);
	const char *a = c2 + 1, *c3 = strrchr(a, ':');
	if (!c3 || c3 == a || (size_t)(c3 - a) >= sizeof(ct->addr))
		return -EINVAL;
	if (*a == '[' && c3[-1] == ']')
		memcpy(ct->addr, a + 1, (size_t)(c3 - a - 2));
	else
		memcpy(ct->addr, a, (size_t)(c3 - a));
	long p = strtol(c3 + 1, NULL, 10);
	if (p <= 0 || p > 65535)
		return -EINVAL;
	ct->addr_port = (uint16_t)p;
	return 0;
}

static int parse_oauth(const char *s, struct proxy_oauth_cfg *o)
{
	memset(o, 0, sizeof(*o));
	const char *eq = strchr(s, '=');
	if (!eq || (size_t)(eq - s) >= sizeof(o->provider))
		return -EINVAL;
	memcpy(o->provider, s, (size_t)(eq - s));
	if (strcmp(o->provider, "claude") && strcmp(o->provider, "codex"))
		return -EINVAL;
	const char *c1 = strchr(eq + 1, ','), *c2 = c1 ? strchr(c1 + 1, ',') : NULL;
	if (!c1 || (size_t)(c1 - eq - 1) >= sizeof(o->access_placeholder))
		return -EINVAL;
	memcpy(o->access_placeholder, eq + 1, (size_t)(c1 - eq - 1));
	size_t rl = c2 ? (size_t)(c2 - c1 - 1) : strlen(c1 + 1);
	if (rl == 0 || rl >= sizeof(o->refresh_placeholder))
		return -EINVAL;
	memcpy(o->refresh_placeholder, c1 + 1, rl);
	if (c2 && snprintf(o->state_path, sizeof(o->state_path), "%s", c2 + 1) >= (int)sizeof(o->state_path))
		return -EINVAL;
	return 0;
}

struct opts {
	const char *listen, *ca_out, *upstream_ca;
	unsigned header_timeout_s;
	unsigned lookup_timeout_s;	/* GitHub node id lookups */
	const char *transparent;	/* "ADDR:PORT=DSTADDR:DSTPORT" or NULL */
};

/* The --transparent listener: accepted sockets become handed-over flows. */
struct transparent {
	struct loop_op op;
	int fd;
	struct proxy *px;
	struct proxy_dst dst;
};

static void transparent_accept(struct loop *loop, struct loop_op *op, int res, uint32_t flags)
{
	(void)flags;
	struct transparent *tp = op->opaque;
	for (; res >= 0;) {	/* -ECANCELED: shutting down */
		int fd = accept4(tp->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		struct stream *s = proxy_sock_stream(loop, fd, false);
		if (!s) {
			close(fd);
			continue;
		}
		proxy_take_stream(tp->px, s, &tp->dst);	/* owns s, even on error */
	}
}

static int listen_on(const char *addr);

/* Parse and open --transparent: 0, or an exit status after a message. */
static int transparent_open(const char *spec, struct transparent *tp, struct proxy *px, struct loop *loop)
{
	char l[128];
	const char *eq = strchr(spec, '=');
	const char *colon = eq ? strrchr(eq + 1, ':') : NULL;
	if (!eq || !colon || (size_t)(eq - spec) >= sizeof(l) ||
	    (size_t)(colon - eq - 1) >= sizeof(tp->dst.addr) || atoi(colon + 1) <= 0 || atoi(colon + 1) > 65535) {
		fprintf(stderr, "kvmbox: proxy: --transparent wants ADDR:PORT=DSTADDR:DSTPORT\n");
		return EXIT_USAGE;
	}
	memcpy(l, spec, (size_t)(eq - spec));
	l[eq - spec] = 0;
	memset(&tp->dst, 0, sizeof(tp->dst));
	memcpy(tp->dst.addr, eq + 1, (size_t)(colon - eq - 1));
	tp->dst.port = (uint16_t)atoi(colon + 1);
	tp->fd = listen_on(l);
	if (tp->fd < 0)
		return 1;
	tp->px = px;
	tp->op.cb = transparent_accept;
	tp->op.opaque = tp;
	return loop_poll(loop, &tp->op, tp->fd, POLLIN) ? 1 : 0;
}

/* A listening socket on "ADDR:PORT": fd, or minus an exit status. */
static int listen_on(const char *addr)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	if (parse_listen(addr, &ss, &sl)) {
		fprintf(stderr, "kvmbox: proxy: wants ADDR:PORT, got '%s'\n", addr);
		return -EXIT_USAGE;
	}
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&ss, sl) || listen(fd, 512)) {
		fprintf(stderr, "kvmbox: proxy: cannot listen on %s: %s\n", addr, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* The proxy holds the real secrets and parses what clients send: once
 * set up it runs in the cage (cage/cage.h) with the process filter (its
 * one thread runs the loop and resolves names) and Landlock allowing,
 * beside the system's read-only folders, only the folders of the OAuth
 * state files it rewrites.  0, or -1 after one line. */
static int enter_cage(const struct proxy_config *cfg)
{
	char dirs[PROXY_MAX_OAUTH][sizeof(cfg->oauth[0].state_path)];
	struct cage_path paths[PROXY_MAX_OAUTH];
	size_t n = 0;
	for (unsigned i = 0; i < cfg->noauth; i++) {
		const char *st = cfg->oauth[i].state_path;
		if (!st[0] || path_parent(st, dirs[n], sizeof(dirs[n])) < 0)
			continue;	/* (cannot be longer than st) */
		paths[n] = (struct cage_path){ dirs[n], CAGE_WRITE };
		n++;
	}
	const struct cage_config cc = { .paths = paths, .npaths = n, .roles = CAGE_BROKER_ROLES };
	char why[256];
	if (cage_process(&cc, why, sizeof(why)) < 0) {
		fprintf(stderr, "kvmbox: proxy: %s\n", why);
		return -1;
	}
	return 0;
}

static int serve(struct opts *o, struct proxy_config *cfg)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int fd = listen_on(o->listen);
	if (fd < 0)
		return -fd;
	struct transparent tp = { .fd = -1 };
	struct loop loop;
	int r = loop_init(&loop, 1024);
	if (r) {
		fprintf(stderr, "kvmbox: proxy: io_uring: %s\n", strerror(-r));
		close(fd);
		return 1;
	}
	struct proxy *px;
	if (proxy_new(&loop, cfg, &px) < 0) {
		loop_fini(&loop);
		close(fd);
		return 1;
	}
	int rc = 1;
	if (o->ca_out && (r = proxy_write_ca(px, o->ca_out))) {
		fprintf(stderr, "kvmbox: proxy: cannot write %s: %s\n", o->ca_out, strerror(-r));
		goto out;
	}
	if ((r = proxy_listen(px, fd))) {
		fprintf(stderr, "kvmbox: proxy: %s\n", strerror(-r));
		goto out;
	}
	if (o->transparent && (rc = transparent_open(o->transparent, &tp, px, &loop)))
		goto out;
	rc = 1;
	char addr[INET6_ADDRSTRLEN] = "?";
	getsockname(fd, (struct sockaddr *)&ss, &sl);
	uint16_t port;
	if (ss.ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, addr, sizeof(addr));
		port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	} else {
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, addr, sizeof(addr));
		port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	}
	signal_loop = &loop;
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (enter_cage(cfg) < 0)
		goto out;
	printf("listening on %s:%u\n", addr, port);
	fflush(stdout);
	rc = loop_run(&loop) < 0 ? 1 : 0;
out:
	signal_loop = NULL;
	/* The transparent listener first (its accepts feed the proxy), then
	 * the proxy, which cancels and awaits its own requests; the loop last. */
	struct loop_op *const tp_ops[] = { &tp.op };
	if (tp.fd >= 0)
		loop_cancel_settle(&loop, tp_ops, 1, 1000);
	proxy_free(px);
	loop_fini(&loop);
	close(fd);
	if (tp.fd >= 0)
		close(tp.fd);
	return rc;
}

int cmd_proxy(int argc, char **argv)
{
	struct opts o = { 0 };
	static struct proxy_config cfg;	/* large; static keeps it off the stack */
	static struct policy egress;	/* likewise; only its names are used */
	struct secrets *sec = calloc(1, sizeof(*sec));
	struct repolist repos;
	int rc = EXIT_USAGE;
	char err[512];
	if (!sec)
		return 1;
	if (harden_secret_holder(err, sizeof(err)) < 0) {	/* before any secret is read */
		fprintf(stderr, "kvmbox: proxy: %s\n", err);
		free(sec);
		return 1;
	}
	secrets_init(sec);
	repolist_init(&repos);
	policy_init(&egress);
	policy_set_agent(&egress, POLICY_AGENT_ALL);
	memset(&cfg, 0, sizeof(cfg));
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage();
			rc = 0;
			goto out;
		}
		if (!v) {
			fprintf(stderr, "kvmbox: proxy: %s needs a value (or is unknown)\n", a);
			usage();
			goto out;
		}
		i++;
		if (!strcmp(a, "--listen")) {
			o.listen = v;
		} else if (!strcmp(a, "--ca-out")) {
			o.ca_out = v;
		} else if (!strcmp(a, "--upstream-ca")) {
			if (access(v, R_OK)) {
				fprintf(stderr, "kvmbox: proxy: --upstream-ca %s: %s\n", v, strerror(errno));
				goto out;
			}
			cfg.upstream_ca = v;
		} else if (!strcmp(a, "--secret")) {
			if (secrets_add_spec(sec, v, err, sizeof(err))) {
				fprintf(stderr, "kvmbox: proxy: %s\n", err);
				goto out;
			}
		} else if (!strcmp(a, "--repo")) {
			if (repolist_add(&repos, v)) {
				fprintf(stderr, "kvmbox: proxy: --repo wants OWNER/NAME, got '%s'\n", v);
				goto out;
			}
		} else if (!strcmp(a, "--connect-to")) {
			if (cfg.nconnect_to >= PROXY_MAX_CONNECT_TO ||
			    parse_connect_to(v, &cfg.connect_to[cfg.nconnect_to])) {
				fprintf(stderr, "kvmbox: proxy: --connect-to wants HOST:PORT:ADDR:PORT, got '%s'\n", v);
				goto out;
			}
			cfg.nconnect_to++;
		} else if (!strcmp(a, "--profile")) {
			if (policy_set_profile(&egress, v)) {
				fprintf(stderr, "kvmbox: proxy: --profile is locked, standard or permissive\n");
				goto out;
			}
		} else if (!strcmp(a, "--agent")) {
			enum policy_agent ag;
			if (policy_agent_parse(v, &ag)) {
				fprintf(stderr, "kvmbox: proxy: --agent is claude, codex, all or none\n");
				goto out;
			}
			policy_set_agent(&egress, ag);
		} else if (!strcmp(a, "--allow-domain") || !strcmp(a, "--allow-host")) {
			if (policy_allow_domain(&egress, v)) {
				fprintf(stderr, "kvmbox: proxy: bad or too many %s '%s'\n", a, v);
				goto out;
			}
		} else if (!strcmp(a, "--oauth")) {
			if (cfg.noauth >= PROXY_MAX_OAUTH || parse_oauth(v, &cfg.oauth[cfg.noauth])) {
				fprintf(stderr, "kvmbox: proxy: --oauth wants claude|codex=ACCESS_PH,REFRESH_PH[,STATE_FILE]\n");
				goto out;
			}
			cfg.noauth++;
		} else if (!strcmp(a, "--transparent")) {
			o.transparent = v;
		} else if (!strcmp(a, "--header-timeout") || !strcmp(a, "--lookup-timeout")) {
			char *end;
			long t = strtol(v, &end, 10);
			if (*end || t <= 0 || t > 3600) {
				fprintf(stderr, "kvmbox: proxy: %s wants 1..3600 seconds\n", a);
				goto out;
			}
			*(a[2] == 'h' ? &o.header_timeout_s : &o.lookup_timeout_s) = (unsigned)t;
		} else {
			fprintf(stderr, "kvmbox: proxy: unknown option %s\n", a);
			usage();
			goto out;
		}
	}
	if (!o.listen) {
		fprintf(stderr, "kvmbox: proxy: --listen ADDR:PORT is required\n");
		usage();
		goto out;
	}
	cfg.secrets = sec;
	cfg.repos = &repos;
	cfg.egress = &egress;
	cfg.header_timeout_ms = o.header_timeout_s * 1000;
	cfg.lookup_timeout_ms = o.lookup_timeout_s * 1000;
	rc = serve(&o, &cfg);
out:
	secrets_fini(sec);
	free(sec);
	repolist_fini(&repos);
	return rc;
}
