/* vmm/cli/machine_net.c - virtio-net + the user-mode stack for `kvmbox run`
 * and `kvmbox shell` (see machine_net.h).
 *
 * One object owns the device, the stack and the policy.  The stack's output
 * goes through this object rather than straight to the device, so that
 * teardown can take the device away first (its last loop turn may still
 * deliver stack events, which then reach a live device) and only then free
 * the stack, with nothing left to send frames to.
 *
 * With --proxy, new guest TCP flows to port 443 or 80 whose destination the
 * egress policy allows are handed to the in-process TLS proxy (proxy/) as
 * streams; the proxy dials the same address (the gateway meaning the host's
 * loopback, as for host sockets), so the policy holds for proxied flows
 * too.  Its per-launch CA reaches the guest init as kvmbox.ca=<base64url of
 * the DER certificate> on the kernel command line.
 */
#include "vmm/cli/machine_net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "common/log.h"
#include "devices/virtio/net.h"
#include "net/net.h"
#include "proxy/proxy.h"
#include "vmm/cli/cli.h"
#include "vmm/cli/net_args.h"
#include "vmm/vmm.h"

/* The guest's MAC (locally administered, QEMU's range, like slirp's guest). */
static const uint8_t guest_mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };

struct machine_net {
	struct vnet *vnet;	/* NULL once torn down */
	struct net_stack *ns;
	uint32_t gateway;	/* IPv4, host order */
	/* --proxy: the proxy and what it borrows (NULL / unset without) */
	struct proxy *px;
	struct secrets *sec;
	bool sec_owned;		/* not the launcher's (net_opts.secrets_table) */
	struct repolist repos;
	struct hostlist hosts;
	bool proxy_lists;	/* repos and hosts initialised */
	struct policy pol;	/* large: lives with the object */
	struct net_autopub autopub;	/* --auto-publish */
};

static void mnet_output(void *opaque, const void *frame, size_t len)
{
	struct machine_net *mn = opaque;
	if (mn->vnet)
		vnet_output(mn->vnet, frame, len);
}

static void mnet_output_gso(void *opaque, const void *frame, size_t len, const struct net_gso *g)
{
	struct machine_net *mn = opaque;
	if (mn->vnet)
		vnet_output_gso(mn->vnet, frame, len, g);
}

/* Device first (its last loop turn may still see stack events), then the
 * proxy (it closes its net streams), then the stack. */
static void mnet_destroy(void *obj)
{
	struct machine_net *mn = obj;
	vnet_destroy(mn->vnet);
	mn->vnet = NULL;
	if (mn->px)
		proxy_free(mn->px);
	net_destroy(mn->ns);
	policy_fini(&mn->pol);
	if (mn->proxy_lists) {
		repolist_fini(&mn->repos);
		hostlist_fini(&mn->hosts);
	}
	if (mn->sec && mn->sec_owned) {
		secrets_fini(mn->sec);
		free(mn->sec);
	}
	free(mn);
}

/* net_stream_handler_fn: TCP 443 and 80 to the proxy when the policy
 * allows the destination; anything else to the stack's own path (which
 * applies the policy and refuses with a RST). */
static int mnet_stream(void *opaque, const uint8_t dst[16], uint16_t port, struct stream *s, int *sock)
{
	(void)sock;
	struct machine_net *mn = opaque;
	if (port != 443 && port != 80)
		return 0;
	enum policy_group why;
	if (!policy_allows(&mn->pol, dst, &why))
		return 0;
	struct proxy_dst d = { .port = port };
	uint32_t v4;
	static const uint8_t gw6[16] = { 0xfd, 0x4b, 0x76, 0x62, 0x6f, 0x78, [15] = 2 };
	if (policy_addr_to_v4(dst, &v4)) {
		struct in_addr a = { .s_addr = htonl(v4 == mn->gateway ? 0x7f000001u : v4) };
		inet_ntop(AF_INET, &a, d.addr, sizeof(d.addr));
	} else if (!memcmp(dst, gw6, 16)) {
		snprintf(d.addr, sizeof(d.addr), "::1");	/* the host, as for sockets */
	} else {
		inet_ntop(AF_INET6, dst, d.addr, sizeof(d.addr));
	}
	struct proxy_stream *ps = proxy_net_stream(s);
	if (!ps)
		return -ENOMEM;
	proxy_take_stream(mn->px, ps, &d);	/* owns ps, even on error */
	return 1;
}

/* kvmbox.ca=<base64url of the CA certificate, DER> for the guest init. */
static int add_ca_cmdline(struct machine *m, struct proxy *px)
{
	int fd = memfd_create("kvmbox-ca", MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	char path[64], pem[4096];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	int r = proxy_write_ca(px, path);
	ssize_t n = r < 0 ? r : pread(fd, pem, sizeof(pem), 0);
	close(fd);
	if (n <= 0 || (size_t)n == sizeof(pem))
		return n < 0 ? (int)n : -EIO;
	BIO *b = BIO_new_mem_buf(pem, (int)n);
	X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	unsigned char *der = NULL;
	int dlen = x ? i2d_X509(x, &der) : -1;
	char b64[1024];
	r = dlen > 0 && base64url_encode(der, (size_t)dlen, b64, sizeof(b64)) >= 0 ? 0 : -EIO;
	OPENSSL_free(der);
	X509_free(x);
	BIO_free(b);
	return r < 0 ? r : machine_cmdline_add(m, "kvmbox.ca=%s", b64);
}

/* The proxy with --secret, --repo and --upstream-ca; every host name
 * allowed (the egress policy judges addresses before a flow gets here).
 * 0, or EXIT_USAGE / 1 after one line. */
static int mnet_proxy_build(struct machine *m, struct machine_net *mn)
{
	const struct net_opts *no = &m->o->net;
	char err[200];
	mn->sec_owned = !no->secrets_table;
	mn->sec = no->secrets_table ? no->secrets_table : calloc(1, sizeof(*mn->sec));
	struct proxy_config *cfg = calloc(1, sizeof(*cfg));
	int status = 1;
	if (!mn->sec || !cfg || no->noauth > PROXY_MAX_OAUTH) {
		log_err("out of memory");
		goto out;
	}
	if (mn->sec_owned)
		secrets_init(mn->sec);
	repolist_init(&mn->repos);
	if (hostlist_init(&mn->hosts, HOSTLIST_PERMISSIVE, HOSTLIST_AGENT_NONE) < 0) {
		repolist_fini(&mn->repos);
		log_err("out of memory");
		goto out;
	}
	mn->proxy_lists = true;
	status = EXIT_USAGE;
	for (unsigned k = 0; k < no->nsecrets; k++)
		if (secrets_add_spec(mn->sec, no->secrets[k], err, sizeof(err)) < 0) {
			log_err("--secret: %s", err);
			goto out;
		}
	for (unsigned k = 0; k < no->nrepos; k++)
		if (repolist_add(&mn->repos, no->repos[k]) < 0) {
			log_err("bad --repo '%s' (want OWNER/NAME)", no->repos[k]);
			goto out;
		}
	if (no->upstream_ca && access(no->upstream_ca, R_OK) < 0) {
		log_err("cannot read --upstream-ca %s: %s", no->upstream_ca, strerror(errno));
		goto out;
	}
	status = 1;
	*cfg = (struct proxy_config){ .secrets = mn->sec, .repos = &mn->repos,
				      .hosts = &mn->hosts, .upstream_ca = no->upstream_ca,
				      .noauth = no->noauth };
	for (unsigned k = 0; k < no->noauth; k++)
		cfg->oauth[k] = no->oauth[k];
	mn->px = proxy_new(&m->vm.loop, cfg);	/* logs its own line */
	if (!mn->px)
		goto out;
	int r = add_ca_cmdline(m, mn->px);
	if (r < 0) {
		log_err("proxy: cannot pass the CA to the guest: %s", strerror(-r));
		goto out;
	}
	net_set_stream_handler(mn->ns, mnet_stream, mn);
	status = 0;
out:
	free(cfg);
	return status;
}

static unsigned prefix_len(uint32_t mask)
{
	return (unsigned)__builtin_popcount(mask);
}

static void ip4_str(char *buf, size_t sz, uint32_t ip)
{
	snprintf(buf, sz, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255);
}

/* kvmbox.net=ADDR/PREFIX,GATEWAY,DNS for the guest init. */
static int add_cmdline(struct machine *m, const struct net_config *cfg)
{
	char guest[16], gw[16];
	ip4_str(guest, sizeof(guest), cfg->guest_ip);
	ip4_str(gw, sizeof(gw), cfg->gateway_ip);
	return machine_cmdline_add(m, "kvmbox.net=%s/%u,%s,%s", guest, prefix_len(cfg->netmask),
				   gw, gw);
}

/* Stack, device and publishing; 0, EXIT_USAGE or 1 after one line. */
static int mnet_build(struct machine *m, struct machine_net *mn)
{
	const struct net_opts *no = &m->o->net;
	struct net_config cfg;
	net_config_default(&cfg);
	policy_init(&mn->pol);
	if (net_opts_apply(no, &mn->pol, &cfg) < 0) {
		log_err("bad network flags");
		return EXIT_USAGE;
	}
	int r = policy_watch_host_addrs(&mn->pol);
	if (r < 0) {	/* without them the host's own addresses would look public */
		log_err("net: cannot watch the host's addresses: %s", strerror(-r));
		return 1;
	}
	struct dev_env env = { .gm = &m->vm.gm, .loop = &m->vm.loop, .irq_fd = -1,
			       .notify_fd = -1 };
	mn->vnet = vnet_create(&env, 0, guest_mac, cfg.mtu);
	if (!mn->vnet) {
		log_err("net: cannot create the virtio-net device");
		return 1;
	}
	if ((r = net_create(&mn->ns, &m->vm.loop, &cfg, mnet_output, mn)) < 0) {
		log_err("net: %s", strerror(-r));
		return 1;
	}
	net_set_gso_output(mn->ns, mnet_output_gso);
	vnet_set_stack(mn->vnet, mn->ns);
	const char *bad = NULL;
	if ((r = net_opts_publish(no, mn->ns, &bad)) < 0) {
		log_err("--publish %s: %s", bad, strerror(-r));
		return r == -EINVAL ? EXIT_USAGE : 1;
	}
	if (add_cmdline(m, &cfg) < 0) {
		log_err("net: kernel command line full");
		return 1;
	}
	mn->gateway = cfg.gateway_ip;
	return no->proxy ? mnet_proxy_build(m, mn) : 0;
}

int machine_net_add(struct machine *m)
{
	if (m->o->net.disabled)
		return 0;
	struct machine_net *mn = calloc(1, sizeof(*mn));
	if (!mn) {
		log_err("out of memory");
		return 1;
	}
	int status = mnet_build(m, mn);
	if (status) {
		mnet_destroy(mn);
		return status;
	}
	int r = machine_add_virtio(m, &mn->vnet->vdev, mnet_destroy, mn);
	if (r < 0) {
		log_err("net: cannot add the virtio-net device: %s", strerror(-r));
		return 1;
	}
	m->net = mn;
	return 0;
}

void machine_net_listeners(struct machine *m, const uint16_t *ports, unsigned n)
{
	struct machine_net *mn = m->net;
	if (mn && m->o->net.auto_publish)
		net_autopublish(mn->ns, &mn->autopub, ports, n);
}
