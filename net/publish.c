/* net/publish.c - ports published on the host (--publish, --auto-publish):
 * a listening socket on the host's 127.0.0.1 (or the address given) whose
 * connections become TCP flows the stack opens toward the guest's port
 * (tcp_accept_published), and whose UDP datagrams go to the guest's port
 * (udp_publish_input).  At most PUBLISH_MAX; each is one multishot poll on
 * the loop, cancelled by net_destroy.
 */
#include "net/internal.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"

static void publish_cb(struct loop *loop, struct loop_op *op, int res, uint32_t flags)
{
	(void)loop;
	(void)flags;
	struct publish *p = op->opaque;
	struct net_stack *ns = p->ns;
	if (res < 0 || ns->destroying)
		return;
	ns->now = now_ns();
	if (p->udp) {
		udp_publish_input(ns, p->fd, p->guest_port);
		return;
	}
	for (int i = 0; i < 64; i++) {
		int fd = accept4(p->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			break;
		if (tcp_accept_published(ns, fd, p->guest_port) < 0) {
			log_once(LOG_WARN, "net: publish: flow table full, refusing connections");
			close(fd);
		}
	}
}

int net_parse_publish(const char *spec, uint32_t *addr, uint16_t *hport, uint16_t *gport, bool *udp)
{
	char buf[128], *parts[3];
	int n = 0;
	*udp = false;
	if (strlen(spec) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, spec);
	char *slash = strchr(buf, '/');
	if (slash) {
		*slash = 0;
		if (strcmp(slash + 1, "udp") == 0)
			*udp = true;
		else if (strcmp(slash + 1, "tcp") != 0)
			return -EINVAL;
	}
	for (char *save = NULL, *t = strtok_r(buf, ":", &save); t; t = strtok_r(NULL, ":", &save)) {
		if (n == 3)
			return -EINVAL;
		parts[n++] = t;
	}
	if (n < 2)
		return -EINVAL;
	*addr = 0x7F000001;
	if (n == 3 && net_parse_ip4(parts[0], addr) < 0)
		return -EINVAL;
	long ports[2];
	for (int i = 0; i < 2; i++) {
		char *end;
		ports[i] = strtol(parts[n - 2 + i], &end, 10);
		if (*end || ports[i] < 1 || ports[i] > 65535)
			return -EINVAL;
	}
	*hport = (uint16_t)ports[0];
	*gport = (uint16_t)ports[1];
	return 0;
}

void net_autopublish(struct net_stack *ns, struct net_autopub *ap, const uint16_t *ports,
		     unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		uint16_t p = ports[i];
		uint8_t bit = (uint8_t)(1u << (p % 8));
		if (p == 0 || (ap->tried[p / 8] & bit))
			continue;
		ap->tried[p / 8] |= bit;
		char spec[16];
		snprintf(spec, sizeof(spec), "%u:%u", p, p);
		int r = net_publish(ns, spec);
		if (r == 0)
			log_info("net: auto-published 127.0.0.1:%u to the guest's port %u", p, p);
		else if (ap->failures++ < NET_AUTOPUB_LOGGED)
			log_warn("net: auto-publish: guest port %u: cannot listen on 127.0.0.1:%u: %s%s",
				 p, p, strerror(-r),
				 ap->failures == NET_AUTOPUB_LOGGED ? " (further failures not logged)" : "");
	}
}

int net_publish(struct net_stack *ns, const char *spec)
{
	uint32_t addr;
	uint16_t hport, gport;
	bool udp;
	if (ns->npub >= PUBLISH_MAX || net_parse_publish(spec, &addr, &hport, &gport, &udp) < 0)
		return -EINVAL;
	long ports[2] = { hport, gport };
	int fd = socket(AF_INET, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)ports[0]),
				  .sin_addr.s_addr = htonl(addr) };
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || (!udp && listen(fd, 128) < 0)) {
		int e = -errno;
		close(fd);
		return e;
	}
	struct publish *p = &ns->pub[ns->npub];
	p->fd = fd;
	p->udp = udp;
	p->host_port = (uint16_t)ports[0];
	p->guest_port = (uint16_t)ports[1];
	p->ns = ns;
	p->op.cb = publish_cb;
	p->op.opaque = p;
	int r = loop_poll(ns->loop, &p->op, fd, POLLIN);
	if (r < 0) {
		close(fd);
		return r;
	}
	ns->npub++;
	return 0;
}
