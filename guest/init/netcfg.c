/* guest/init/netcfg.c - the guest's network from kvmbox.net= (see
 * netcfg.h): parsing (pure, unit-tested) and the ioctls that apply it.
 *
 * Static addressing rather than DHCP because boot time matters: the VMM
 * knows the address it would hand out, so the interface is ready before
 * the command starts, with no round trip.  Classic interface ioctls
 * (SIOCSIFADDR, SIOCSIFNETMASK, SIOCSIFFLAGS, SIOCADDRT) are enough for
 * one IPv4 address and a default route, and need nothing from the image.
 */
#include "guest/init/netcfg.h"
#include "guest/abi/base64url.h"

#include "guest/abi/cmdline.h"
#include "guest/init/kinit.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <net/route.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define NET_PARAM KBX_PARAM_NET "="
#define CA_PARAM KBX_PARAM_CA "="

/* The value of the last word starting with param: its start and length, or
 * NULL. */
static const char *find_param(const char *cmdline, const char *param, size_t *len)
{
	const char *found = NULL;
	size_t plen = strlen(param);
	for (const char *p = cmdline; *p;) {
		while (*p == ' ' || *p == '\n' || *p == '\t')
			p++;
		const char *w = p;
		while (*p && *p != ' ' && *p != '\n' && *p != '\t')
			p++;
		if ((size_t)(p - w) >= plen && !strncmp(w, param, plen)) {
			found = w + plen;
			*len = (size_t)(p - found);
		}
	}
	return found;
}

/* Strict dotted quad from [s, s+len): 0 or -EINVAL. */
static int parse_ip4(const char *s, size_t len, uint32_t *out)
{
	char buf[16];
	if (len == 0 || len >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, len);
	buf[len] = 0;
	struct in_addr a;
	if (inet_pton(AF_INET, buf, &a) != 1)
		return -EINVAL;
	*out = ntohl(a.s_addr);
	return 0;
}

static uint32_t prefix_mask(unsigned prefix)
{
	return prefix ? 0xffffffffu << (32 - prefix) : 0;
}

int kbx_net_parse(const char *cmdline, struct kbx_net *out, char *err, size_t errsz)
{
	size_t len = 0;
	const char *v = find_param(cmdline, NET_PARAM, &len);
	if (!v)
		return 0;
	const char *end = v + len, *slash = memchr(v, '/', len);
	const char *c1 = slash ? memchr(slash, ',', (size_t)(end - slash)) : NULL;
	const char *c2 = c1 ? memchr(c1 + 1, ',', (size_t)(end - c1 - 1)) : NULL;
	if (!slash || !c1 || !c2 || memchr(c2 + 1, ',', (size_t)(end - c2 - 1))) {
		snprintf(err, errsz, "kvmbox.net wants ADDR/PREFIX,GATEWAY,DNS, got '%.*s'",
			 (int)(len > 64 ? 64 : len), v);
		return -EINVAL;
	}
	char pbuf[4];
	size_t pl = (size_t)(c1 - slash - 1);
	char *pend;
	if (pl == 0 || pl >= sizeof(pbuf) || slash[1] < '0' || slash[1] > '9') {
		snprintf(err, errsz, "kvmbox.net: bad prefix length");
		return -EINVAL;
	}
	memcpy(pbuf, slash + 1, pl);
	pbuf[pl] = 0;
	unsigned long prefix = strtoul(pbuf, &pend, 10);
	if (*pend || prefix < 1 || prefix > 32) {
		snprintf(err, errsz, "kvmbox.net: prefix length must be 1..32");
		return -EINVAL;
	}
	struct kbx_net n = { .prefix = (unsigned)prefix };
	if (parse_ip4(v, (size_t)(slash - v), &n.addr) < 0 ||
	    parse_ip4(c1 + 1, (size_t)(c2 - c1 - 1), &n.gateway) < 0 ||
	    parse_ip4(c2 + 1, (size_t)(end - c2 - 1), &n.dns) < 0) {
		snprintf(err, errsz, "kvmbox.net: bad IPv4 address in '%.*s'",
			 (int)(len > 64 ? 64 : len), v);
		return -EINVAL;
	}
	uint32_t mask = prefix_mask(n.prefix);
	if ((n.gateway & mask) != (n.addr & mask) || n.gateway == n.addr) {
		snprintf(err, errsz, "kvmbox.net: gateway outside the address's subnet");
		return -EINVAL;
	}
	*out = n;
	return 1;
}

static void set_sin(struct sockaddr *sa, uint32_t ip)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(ip) };
	memcpy(sa, &sin, sizeof(sin));
}

static int if_up(int s, const char *name)
{
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		return -errno;
	ifr.ifr_flags |= IFF_UP;
	return ioctl(s, SIOCSIFFLAGS, &ifr) < 0 ? -errno : 0;
}

/* The first Ethernet interface (virtio-net is eth0): 0 with name, or -ENODEV. */
static int find_ethernet(int s, char name[IFNAMSIZ])
{
	struct if_nameindex *ifs = if_nameindex();
	if (!ifs)
		return -errno;
	int r = -ENODEV;
	for (struct if_nameindex *i = ifs; i->if_index; i++) {
		struct ifreq ifr;
		memset(&ifr, 0, sizeof(ifr));
		snprintf(ifr.ifr_name, IFNAMSIZ, "%s", i->if_name);
		if (ioctl(s, SIOCGIFHWADDR, &ifr) == 0 && ifr.ifr_hwaddr.sa_family == ARPHRD_ETHER) {
			snprintf(name, IFNAMSIZ, "%s", i->if_name);
			r = 0;
			break;
		}
	}
	if_freenameindex(ifs);
	return r;
}

static int set_address(int s, const char *name, const struct kbx_net *n)
{
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
	set_sin(&ifr.ifr_addr, n->addr);
	if (ioctl(s, SIOCSIFADDR, &ifr) < 0)
		return -errno;
	set_sin(&ifr.ifr_netmask, prefix_mask(n->prefix));
	return ioctl(s, SIOCSIFNETMASK, &ifr) < 0 ? -errno : 0;
}

static int add_default_route(int s, const char *name, uint32_t gateway)
{
	struct rtentry rt;
	char dev[IFNAMSIZ];
	memset(&rt, 0, sizeof(rt));
	snprintf(dev, sizeof(dev), "%s", name);
	set_sin(&rt.rt_dst, 0);
	set_sin(&rt.rt_genmask, 0);
	set_sin(&rt.rt_gateway, gateway);
	rt.rt_flags = RTF_UP | RTF_GATEWAY;
	rt.rt_dev = dev;
	if (ioctl(s, SIOCADDRT, &rt) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

int kbx_net_write_resolv_conf(const char *path, uint32_t dns)
{
	char dir[256];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = 0;
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			return -errno;
	}
	char text[64];
	int len = snprintf(text, sizeof(text), "nameserver %u.%u.%u.%u\n", dns >> 24,
			   (dns >> 16) & 255, (dns >> 8) & 255, dns & 255);
	/* Replace, not append: an image may ship a symlink or a stale file. */
	unlink(path);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return -errno;
	ssize_t w = write(fd, text, (size_t)len);
	int e = w == len ? 0 : w < 0 ? -errno : -EIO;
	if (close(fd) < 0 && !e)
		e = -errno;
	return e;
}

/* Run one step; on failure record "what: reason" and stop. */
#define STEP(call, what)                                                            \
	do {                                                                        \
		int r_ = (call);                                                    \
		if (r_ < 0) {                                                       \
			snprintf(err, errsz, "%s: %s", (what), strerror(-r_));     \
			r = r_;                                                     \
			goto out;                                                   \
		}                                                                   \
	} while (0)

int kbx_net_configure(const struct kbx_net *n, const char *resolv_conf, char *err, size_t errsz)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0) {
		int e = errno;
		snprintf(err, errsz, "socket: %s", strerror(e));
		return -e;
	}
	int r = 0;
	char name[IFNAMSIZ];
	STEP(if_up(s, "lo"), "bring lo up");
	if (n) {
		STEP(find_ethernet(s, name), "no Ethernet interface");
		STEP(set_address(s, name, n), "set the address");
		STEP(if_up(s, name), "bring the interface up");
		STEP(add_default_route(s, name, n->gateway), "add the default route");
		STEP(kbx_net_write_resolv_conf(resolv_conf, n->dns), resolv_conf);
	}
out:
	close(s);
	return r;
}

int kbx_ca_pem(const uint8_t *der, size_t len, char *out, size_t outsz)
{
	static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	static const char head[] = "-----BEGIN CERTIFICATE-----\n", tail[] = "-----END CERTIFICATE-----\n";
	size_t o = 0, col = 0;
	if (outsz < sizeof(head) + sizeof(tail) + (len + 2) / 3 * 4 + len / 48 + 2)
		return -ENOSPC;
	memcpy(out, head, sizeof(head) - 1);
	o = sizeof(head) - 1;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)der[i] << 16;
		if (i + 1 < len)
			v |= (uint32_t)der[i + 1] << 8;
		if (i + 2 < len)
			v |= der[i + 2];
		out[o++] = abc[(v >> 18) & 63];
		out[o++] = abc[(v >> 12) & 63];
		out[o++] = i + 1 < len ? abc[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < len ? abc[v & 63] : '=';
		if ((col += 4) == 64) {
			out[o++] = '\n';
			col = 0;
		}
	}
	if (col)
		out[o++] = '\n';
	memcpy(out + o, tail, sizeof(tail));
	return (int)(o + sizeof(tail) - 1);
}

/* Write (or with append, add to) root+path, creating its directories. */
static int put_file(const char *root, const char *path, const char *text, size_t len, bool append)
{
	char full[512];
	snprintf(full, sizeof(full), "%s%s", root, path);
	for (char *p = strchr(full + strlen(root) + 1, '/'); p; p = strchr(p + 1, '/')) {
		*p = 0;
		if (mkdir(full, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	int fd = open(full, O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC), 0644);
	if (fd < 0)
		return -errno;
	ssize_t w = write(fd, text, len);
	int e = w == (ssize_t)len ? 0 : w < 0 ? -errno : -EIO;
	if (close(fd) < 0 && !e)
		e = -errno;
	return e;
}

int kbx_ca_install_der(const uint8_t *der, size_t len, const char *root, char *err, size_t errsz)
{
	char pem[3072];
	if (len < 16 || der[0] != 0x30) {	/* a DER certificate is a SEQUENCE */
		snprintf(err, errsz, "the proxy CA is not a DER certificate");
		return -EINVAL;
	}
	int plen = kbx_ca_pem(der, len, pem, sizeof(pem));
	int r = plen < 0 ? plen : put_file(root, KBX_CA_PEM, pem, (size_t)plen, false);
	if (r == 0)
		r = put_file(root, KBX_CA_BUNDLE, pem, (size_t)plen, true);
	if (r < 0) {
		snprintf(err, errsz, "install the proxy CA: %s", strerror(-r));
		return r;
	}
	/* the system bundle (OpenSSL, curl and git, Go) holds it; these are
	 * for clients with their own store: Node.js, Python's requests, and
	 * Rust/Go clients told where the bundle is */
	setenv("NODE_EXTRA_CA_CERTS", KBX_CA_PEM, 1);
	setenv("REQUESTS_CA_BUNDLE", KBX_CA_BUNDLE, 1);
	setenv("SSL_CERT_FILE", KBX_CA_BUNDLE, 1);
	return 0;
}

int kbx_ca_install(const char *cmdline, const char *root, char *err, size_t errsz)
{
	size_t len = 0;
	const char *v = find_param(cmdline, CA_PARAM, &len);
	if (!v)
		return 0;
	uint8_t der[2048];
	ssize_t n = kbx_b64url_decode(v, len, der, sizeof(der));
	char why[160];
	int r = n < 0 ? -EINVAL : kbx_ca_install_der(der, (size_t)n, root, why, sizeof(why));
	if (r < 0)
		snprintf(err, errsz, "kvmbox.ca: %s", n < 0 ? "not base64url" : why);
	return r < 0 ? r : 1;
}

void kbx_net_setup(const char *cmdline)
{
	struct kbx_net n;
	char err[160];
	int found = kbx_net_parse(cmdline, &n, err, sizeof(err));
	if (found < 0)
		dprintf(STDERR_FILENO, "kvmbox-init: net: %s\n", err);
	if (kbx_net_configure(found == 1 ? &n : NULL, "/etc/resolv.conf", err, sizeof(err)) < 0)
		dprintf(STDERR_FILENO, "kvmbox-init: net: %s\n", err);
	if (kbx_ca_install(cmdline, "", err, sizeof(err)) < 0)
		dprintf(STDERR_FILENO, "kvmbox-init: net: %s\n", err);
}
