/* guest/init/portfwd.c - relays from the guest's interface address to its
 * loopback-only TCP listeners (see portfwd.h).  One process, one poll loop,
 * no allocation after portfwd_init. */
#include "guest/init/portfwd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/listeners.h"

#define SCAN_MAX 256		/* loopback listeners looked at per scan */

static uint32_t first_interface_addr(void)
{
	struct ifaddrs *ifa, *i;
	uint32_t addr = 0;
	if (getifaddrs(&ifa) < 0)
		return 0;
	for (i = ifa; i && !addr; i = i->ifa_next)
		if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET && (i->ifa_flags & IFF_UP) &&
		    !(i->ifa_flags & IFF_LOOPBACK))
			addr = ((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr;
	freeifaddrs(ifa);
	return addr;
}

int portfwd_init(struct portfwd *pf, uint32_t addr)
{
	memset(pf, 0, sizeof(*pf));
	pf->addr = addr ? addr : first_interface_addr();
	if (!pf->addr)
		return -EADDRNOTAVAIL;
	pf->conn = calloc(PORTFWD_MAX_CONNS, sizeof(*pf->conn));
	if (!pf->conn)
		return -ENOMEM;
	for (int i = 0; i < PORTFWD_MAX_PORTS; i++)
		pf->port[i].fd = -1;
	for (int i = 0; i < PORTFWD_MAX_CONNS; i++)
		pf->conn[i].out = pf->conn[i].in = -1;
	return 0;
}

static void conn_close(struct portfwd_conn *c)
{
	if (c->out >= 0)
		close(c->out);
	if (c->in >= 0)
		close(c->in);
	c->out = c->in = -1;
}

void portfwd_fini(struct portfwd *pf)
{
	for (int i = 0; pf->conn && i < PORTFWD_MAX_CONNS; i++)
		conn_close(&pf->conn[i]);
	for (int i = 0; i < PORTFWD_MAX_PORTS; i++)
		if (pf->port[i].fd >= 0)
			close(pf->port[i].fd);
	free(pf->conn);
	pf->conn = NULL;
}

/* --- scan ------------------------------------------------------------- */

struct scan {
	uint16_t loop[SCAN_MAX];	/* ports with a loopback listener */
	bool loop4[SCAN_MAX];		/* ... reachable over IPv4 */
	unsigned nloop;
	uint8_t other[65536 / 8];	/* ports with a non-loopback listener */
	char ours[9];	/* our relays' address as the kernel prints it: their
			 * listeners stand for nobody's and are skipped */
};

static void scan_one(void *arg, const struct listener *l)
{
	struct scan *sc = arg;
	if (!strcasecmp(l->addr, sc->ours))
		return;
	if (!l->loopback) {
		sc->other[l->port / 8] |= (uint8_t)(1u << (l->port % 8));
		return;
	}
	unsigned i;
	for (i = 0; i < sc->nloop && sc->loop[i] != l->port; i++)
		;
	if (i == sc->nloop && sc->nloop < SCAN_MAX)
		sc->loop[sc->nloop++] = l->port;
	if (i < sc->nloop)
		sc->loop4[i] |= l->v4;
}

static int relay_listen(uint32_t addr, uint16_t port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
				  .sin_addr.s_addr = addr };
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 16) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

void portfwd_scan(struct portfwd *pf)
{
	static struct scan sc;	/* 8 KiB bitmap: one forwarder per process */
	memset(&sc, 0, sizeof(sc));
	snprintf(sc.ours, sizeof(sc.ours), "%08X", pf->addr);	/* the kernel's %08X of a __be32 */
	listeners_each(scan_one, &sc);
	/* Relays whose loopback listener is gone close (their connections
	 * stay until they end). */
	for (int i = 0; i < PORTFWD_MAX_PORTS; i++) {
		struct portfwd_port *p = &pf->port[i];
		unsigned k;
		for (k = 0; p->fd >= 0 && k < sc.nloop && sc.loop[k] != p->port; k++)
			;
		if (p->fd >= 0 && k == sc.nloop) {
			close(p->fd);
			p->fd = -1;
		} else if (p->fd >= 0) {
			p->v6_target = !sc.loop4[k];
			sc.other[p->port / 8] |= (uint8_t)(1u << (p->port % 8));	/* relayed */
		}
	}
	for (unsigned k = 0; k < sc.nloop; k++) {
		uint16_t port = sc.loop[k];
		if (sc.other[port / 8] & (1u << (port % 8)))
			continue;	/* reachable already (or relayed) */
		int i;
		for (i = 0; i < PORTFWD_MAX_PORTS && pf->port[i].fd >= 0; i++)
			;
		if (i == PORTFWD_MAX_PORTS)
			return;
		int fd = relay_listen(pf->addr, port);
		if (fd >= 0)
			pf->port[i] = (struct portfwd_port){ .fd = fd, .port = port,
							     .v6_target = !sc.loop4[k] };
	}
}

/* --- relay ------------------------------------------------------------ */

/* Connect to the loopback listener (a local connect completes at once). */
static int connect_target(const struct portfwd_port *p)
{
	struct sockaddr_in s4 = { .sin_family = AF_INET, .sin_port = htons(p->port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_in6 s6 = { .sin6_family = AF_INET6, .sin6_port = htons(p->port),
				   .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	int fd = socket(p->v6_target ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	struct timeval tv = { 1, 0 };
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	int r = p->v6_target ? connect(fd, (struct sockaddr *)&s6, sizeof(s6))
			     : connect(fd, (struct sockaddr *)&s4, sizeof(s4));
	int fl = r == 0 ? fcntl(fd, F_GETFL) : -1;
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void accept_one(struct portfwd *pf, const struct portfwd_port *p)
{
	int out = accept4(p->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (out < 0)
		return;
	int i;
	for (i = 0; i < PORTFWD_MAX_CONNS && pf->conn[i].out >= 0; i++)
		;
	int in = i < PORTFWD_MAX_CONNS ? connect_target(p) : -1;
	if (in < 0) {
		close(out);	/* full, or the listener went: the peer sees a close */
		return;
	}
	struct portfwd_conn *c = &pf->conn[i];
	c->out = out;
	c->in = in;
	c->to_in_len = c->to_out_len = 0;
	c->out_eof = c->in_eof = c->in_shut = c->out_shut = false;
}

/* Move bytes from src into buf, then from buf to dst; when src ended and
 * buf is empty, end dst's input.  -1 on an error that ends the connection. */
static int pump(int src, int dst, uint8_t *buf, size_t *len, bool *eof, bool *shut)
{
	if (!*eof && *len < PORTFWD_BUF) {
		ssize_t n = recv(src, buf + *len, PORTFWD_BUF - *len, MSG_DONTWAIT);
		if (n > 0)
			*len += (size_t)n;
		else if (n == 0)
			*eof = true;
		else if (errno != EAGAIN && errno != EINTR)
			return -1;
	}
	if (*len) {
		ssize_t n = send(dst, buf, *len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return -1;
		if (n > 0) {
			memmove(buf, buf + n, *len - (size_t)n);
			*len -= (size_t)n;
		}
	}
	if (*eof && !*len && !*shut) {
		shutdown(dst, SHUT_WR);
		*shut = true;
	}
	return 0;
}

static void conn_pump(struct portfwd_conn *c)
{
	if (pump(c->out, c->in, c->to_in, &c->to_in_len, &c->out_eof, &c->in_shut) < 0 ||
	    pump(c->in, c->out, c->to_out, &c->to_out_len, &c->in_eof, &c->out_shut) < 0 ||
	    (c->in_shut && c->out_shut))
		conn_close(c);
}

/* A connection's pollfd: what it waits for (none: fd -1, so that a hang-up
 * it has already seen does not wake the loop again). */
static struct pollfd conn_pollfd(int fd, bool eof, size_t pending)
{
	short ev = (short)((eof ? 0 : POLLIN) | (pending ? POLLOUT : 0));
	return (struct pollfd){ .fd = ev ? fd : -1, .events = ev };
}

void portfwd_poll(struct portfwd *pf, int timeout_ms)
{
	struct pollfd p[PORTFWD_MAX_PORTS + 2 * PORTFWD_MAX_CONNS];
	int n = 0;
	for (int i = 0; i < PORTFWD_MAX_PORTS; i++)
		p[n++] = (struct pollfd){ .fd = pf->port[i].fd, .events = POLLIN };
	for (int i = 0; i < PORTFWD_MAX_CONNS; i++) {
		struct portfwd_conn *c = &pf->conn[i];
		p[n++] = conn_pollfd(c->out, c->out_eof, c->to_out_len);
		p[n++] = conn_pollfd(c->in, c->in_eof, c->to_in_len);
	}
	if (poll(p, (nfds_t)n, timeout_ms) <= 0)
		return;
	for (int i = 0; i < PORTFWD_MAX_PORTS; i++)
		if (p[i].revents && pf->port[i].fd >= 0)
			accept_one(pf, &pf->port[i]);
	for (int i = 0; i < PORTFWD_MAX_CONNS; i++) {
		struct pollfd *q = &p[PORTFWD_MAX_PORTS + 2 * i];
		if ((q[0].revents || q[1].revents) && pf->conn[i].out >= 0)
			conn_pump(&pf->conn[i]);
	}
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

pid_t kbx_portfwd_start(void)
{
	pid_t pid = fork();
	if (pid != 0)
		return pid < 0 ? -errno : pid;
	close_range(3, ~0u, 0);	/* the init's ports, pipes and PTYs are not ours */
	sigset_t all;
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	static struct portfwd pf;
	if (portfwd_init(&pf, 0) < 0)
		_exit(1);	/* no interface address: nothing to forward to */
	for (;;) {
		long long next = now_ms() + 1000;
		portfwd_scan(&pf);
		for (long long t = now_ms(); t < next; t = now_ms())
			portfwd_poll(&pf, (int)(next - t));
	}
}
