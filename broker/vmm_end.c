/* broker/vmm_end.c - the VMM's side of the control socket (see broker.h):
 * the broker's HELLO, read once at start, and one FLOW per guest flow
 * bound for the proxy. */
#include "broker/broker.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int broker_ctl_check(int fd)
{
	int type = 0, domain = 0;
	socklen_t l1 = sizeof(type), l2 = sizeof(domain);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l1) < 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &l2) < 0 || type != SOCK_SEQPACKET ||
	    domain != AF_UNIX)
		return -ENOTSOCK;
	return 0;
}

int broker_hello_read(int fd, struct broker_hello *h, unsigned timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int r = poll(&p, 1, (int)timeout_ms);
	if (r <= 0)
		return r < 0 ? -errno : -ETIMEDOUT;
	ssize_t n = recv(fd, h, sizeof(*h), MSG_DONTWAIT | MSG_TRUNC);
	if (n < 0)
		return -errno;
	if ((size_t)n != sizeof(*h) || h->type != BROKER_HELLO || h->version != BROKER_VERSION ||
	    !h->ca_len || h->ca_len >= sizeof(h->ca_pem))
		return -EPROTO;
	h->ca_pem[h->ca_len] = 0;
	return 0;
}

int broker_flow_send(int ctl_fd, const struct proxy_dst *dst)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	struct broker_flow m = { .type = BROKER_FLOW, .version = BROKER_VERSION, .dst = *dst };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} cbuf;
	memset(&cbuf, 0, sizeof(cbuf));
	struct iovec iov = { &m, sizeof(m) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf.buf,
			     .msg_controllen = sizeof(cbuf.buf) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &sv[1], sizeof(int));
	ssize_t n = sendmsg(ctl_fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
	int err = n == (ssize_t)sizeof(m) ? 0 : n < 0 ? errno : EIO;
	close(sv[1]);
	if (err) {
		close(sv[0]);
		return -err;
	}
	return sv[0];
}
