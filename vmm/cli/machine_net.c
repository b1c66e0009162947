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
 * egress policy allows go to the TLS proxy, which runs in the credential
 * broker, the process the user started (broker/broker.h): each is spliced
 * to a socket pair whose other end is sent to the broker with where the
 * guest was headed; the proxy dials the same address (the gateway meaning
 * the host's loopback, as for host sockets), so the policy holds for
 * proxied flows too.  The broker's CA, from its HELLO, reaches the guest
 * init in the console session's CA message (kvmbox shell, the agents) or
 * as kvmbox.ca=<base64url of the DER certificate> on the kernel
 * command line.  When the broker's end of the control socket closes, the
 * VM stops: without it no HTTPS would work, and the launch is over.
 */
#include "vmm/cli/machine_net.h"
#include "guest/abi/base64url.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "broker/broker.h"
#include "guest/abi/cmdline.h"
#include "launch/denials.h"
#include "common/log.h"
#include "devices/virtio/net.h"
#include "net/net.h"
#include "vmm/cli/cli.h"
#include "vmm/cli/net_args.h"
#include "vmm/vmm.h"

/* The guest's MAC (locally administered, QEMU's range, like slirp's guest). */
static const uint8_t guest_mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };

struct machine_net {
	struct vnet *vnet;	/* NULL once torn down */
	struct net_stack *ns;
	struct vm *vm;
	uint32_t gateway;	/* IPv4, host order */
	struct loop_op broker_op;	/* --proxy: the control socket's hang-up */
	struct policy pol;	/* large: lives with the object */
	struct net_autopub autopub;	/* --auto-publish */
	/* The launch self-test's two probes still to come (HELLO's
	 * self_test_probes): port 80 of the metadata address (bit 0) and of
	 * the gateway (bit 1), refused like any flow but not counted as
	 * denials, once each: whatever follows is counted. */
	unsigned probes;
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

static bool mnet_room(void *opaque, size_t len)
{
	struct machine_net *mn = opaque;
	return !mn->vnet || vnet_rx_room(mn->vnet, len);
}

/* Device first (its last loop turn may still see stack events), then the
 * stack (it closes the flows' sockets, the broker's ends among them). */
static void mnet_destroy(void *obj)
{
	struct machine_net *mn = obj;
	vnet_destroy(mn->vnet);
	mn->vnet = NULL;
	if (mn->vm) {
		struct loop_op *const ops[] = { &mn->broker_op };
		loop_cancel_settle(&mn->vm->loop, ops, 1, 1000);	/* not armed: at once */
	}
	net_destroy(mn->ns);
	policy_fini(&mn->pol);
	free(mn);
}

/* Whether a refused flow is one of the launch self-test's probes still to
 * come (machine_net.probes), which it uses up. */
static bool self_test_probe(struct machine_net *mn, const uint8_t dst[16], uint16_t port)
{
	uint32_t v4;
	if (port != 80 || !policy_addr_to_v4(dst, &v4))
		return false;
	unsigned bit = v4 == 0xa9fea9feu ? 1u : v4 == mn->gateway ? 2u : 0;	/* 169.254.169.254 */
	if (!(mn->probes & bit))
		return false;
	mn->probes &= ~bit;
	return true;
}

/* net_stream_handler_fn: TCP 443 and 80 to the broker's proxy; anything
 * else to the stack's own path (which applies the policy and refuses with
 * a RST).  A destination the policy refuses goes to the proxy too, marked
 * refused: it dials nothing and answers each HTTP request with a 403
 * saying what was refused and the flag that would allow it.  So does
 * PROXY_CHECK_ADDR, the launch self-test's (proxy/proxy.h), without being
 * counted among the denials: the proxy answers its server name there. */
static int mnet_stream(void *opaque, const uint8_t dst[16], uint16_t port, struct stream *s, int *sock)
{
	(void)s;
	struct machine_net *mn = opaque;
	if (port != 443 && port != 80)
		return 0;
	struct proxy_dst d = { .port = port };
	uint32_t v4;
	static const uint8_t gw6[16] = { 0xfd, 0x4b, 0x76, 0x62, 0x6f, 0x78, [15] = 2 };
	char dialled[INET6_ADDRSTRLEN];	/* as the guest sees it */
	if (policy_addr_to_v4(dst, &v4)) {
		struct in_addr a = { .s_addr = htonl(v4) };
		inet_ntop(AF_INET, &a, dialled, sizeof(dialled));
		a.s_addr = htonl(v4 == mn->gateway ? 0x7f000001u : v4);
		inet_ntop(AF_INET, &a, d.addr, sizeof(d.addr));
	} else {
		inet_ntop(AF_INET6, dst, dialled, sizeof(dialled));
		if (!memcmp(dst, gw6, 16))
			snprintf(d.addr, sizeof(d.addr), "::1");	/* the host, as for sockets */
		else
			snprintf(d.addr, sizeof(d.addr), "%s", dialled);
	}
	enum policy_group why;
	if (!strcmp(dialled, PROXY_CHECK_ADDR)) {	/* the self-test endpoint: not a denial */
		snprintf(d.deny, sizeof(d.deny), "kvmbox: %s is the launch self-test's address (only the "
			 "server name " PROXY_CHECK_NAME " is answered there)", dialled);
	} else if (!policy_allows(&mn->pol, dst, &why)) {
		if (!self_test_probe(mn, dst, port))
			net_note_denied(mn->ns, "tcp", dst, port, why);
		snprintf(d.deny, sizeof(d.deny), "kvmbox: the egress policy refuses %s port %u: %s (%s)",
			 dialled, port, policy_group_name(why), policy_group_remedy(why));
	}
	int fd = broker_flow_send(BROKER_CTL_FD, &d);
	if (fd < 0) {
		log_once(LOG_WARN, "net: cannot hand a flow to the credential broker: %s", strerror(-fd));
		return fd;	/* a RST */
	}
	*sock = fd;
	return 2;
}

/* The broker never writes after its HELLO: readable means closed. */
static void on_broker_gone(struct loop *loop, struct loop_op *op, int res, uint32_t flags)
{
	(void)loop;
	(void)flags;
	struct machine_net *mn = op->opaque;
	if (res < 0)
		return;
	loop_cancel(&mn->vm->loop, op);
	vm_stop(mn->vm, VM_STOP_ERROR, 1, "the credential broker (the kvmbox process you started) is gone");
}

#if defined(KVMBOX_FAULT_INJECTION)
/* Sanitizer builds only: KVMBOX_FAULT_CA=forged hands the guest a CA of
 * the same name with a key of its own, one the proxy's certificates do
 * not chain to, so that the tests can show the launch self-test stopping
 * a launch whose guest does not trust the proxy. */
static void fault_forge_ca(X509 *x)
{
	const char *f = getenv("KVMBOX_FAULT_CA");
	EVP_PKEY *k = f && !strcmp(f, "forged") && x ? EVP_EC_gen("P-256") : NULL;
	if (k && X509_set_pubkey(x, k))
		X509_sign(x, k, EVP_sha256());
	EVP_PKEY_free(k);
}
#else
static void fault_forge_ca(X509 *x)
{
	(void)x;
}
#endif

/* The CA certificate (DER) for the guest init: kept for the session's CA
 * message (m->ca_over_ctl) or put on the command line as
 * kvmbox.ca=<base64url>, never with a snapshot: a saved command line
 * would carry this launch's CA to the next, and a restore reads none
 * (run_args.c refuses the flags first, by command; this holds whatever
 * the path). */
static int give_guest_ca(struct machine *m, const char *pem)
{
	if (!m->ca_over_ctl && (m->o->snapshot || m->o->restore))
		return -EINVAL;
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	unsigned char *der = NULL;
	fault_forge_ca(x);
	int dlen = x ? i2d_X509(x, &der) : -1;
	char b64[1024];
	int r = dlen <= 0 ? -EIO : (size_t)dlen > sizeof(m->guest_ca) ? -E2BIG : 0;
	if (r == 0 && m->ca_over_ctl) {
		memcpy(m->guest_ca, der, (size_t)dlen);
		m->guest_ca_len = (size_t)dlen;
	} else if (r == 0) {
		r = kbx_b64url_encode(der, (size_t)dlen, b64, sizeof(b64)) >= 0 ?
			machine_cmdline_add(m, KBX_PARAM_CA "=%s", b64) : -E2BIG;
	}
	OPENSSL_free(der);
	X509_free(x);
	BIO_free(b);
	return r;
}

/* --proxy in the VMM: the broker's CA for the guest, flows to the broker,
 * its hang-up watched.  0, or 1 after one line. */
static int mnet_broker_attach(struct machine *m, struct machine_net *mn)
{
	const struct broker_hello *h = m->o->net.broker;
	if (!h) {	/* machine_broker_launch runs before a VM with --proxy is built */
		log_err("net: --proxy without its credential broker");
		return 1;
	}
	int r = give_guest_ca(m, h->ca_pem);
	if (r < 0) {
		log_err("proxy: cannot pass the CA to the guest: %s", strerror(-r));
		return 1;
	}
	mn->vm = &m->vm;
	mn->probes = h->self_test_probes ? 3 : 0;
	mn->broker_op = (struct loop_op){ .cb = on_broker_gone, .opaque = mn };
	if ((r = loop_poll(&m->vm.loop, &mn->broker_op, BROKER_CTL_FD, POLLIN | POLLRDHUP)) < 0) {
		log_err("net: cannot watch the credential broker: %s", strerror(-r));
		return 1;
	}
	net_set_stream_handler(mn->ns, mnet_stream, mn);
	return 0;
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
	return machine_cmdline_add(m, KBX_PARAM_NET "=%s/%u,%s,%s", guest, prefix_len(cfg->netmask),
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
	if ((r = vnet_create(&env, 0, guest_mac, cfg.mtu, &mn->vnet)) < 0) {
		log_err("net: cannot create the virtio-net device: %s", strerror(-r));
		return 1;
	}
	if ((r = net_create(&mn->ns, &m->vm.loop, &cfg, mnet_output, mn)) < 0) {
		log_err("net: %s", strerror(-r));
		return 1;
	}
	net_set_gso_output(mn->ns, mnet_output_gso);
	net_set_room(mn->ns, mnet_room);
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
	return no->proxy ? mnet_broker_attach(m, mn) : 0;
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

void machine_net_report(struct machine *m, const char *cmd)
{
	struct machine_net *mn = m->net;
	char line[1536];
	uint64_t n = mn ? net_denials_line(mn->ns, line, sizeof(line)) : 0;
	if (n)
		log_warn("%s: the egress policy refused %llu connection%s or lookup%s: %s", cmd,
			 (unsigned long long)n, n == 1 ? "" : "s", n == 1 ? "" : "s", line);
	const struct broker_hello *h = m->o->net.broker;
	if (!n || !h || !h->denials_log)
		return;
	/* every one, into the launch's record (launch/denials.h) */
	const struct net_denial *d;
	uint64_t others;
	unsigned nd = net_denials(mn->ns, &d, &others);
	for (unsigned i = 0; i < nd; i++) {
		char text[400];
		int k = snprintf(text, sizeof(text), "refused: ");
		net_denial_text(mn->ns, &d[i], text + k, sizeof(text) - (size_t)k);
		denials_write(BROKER_DENIALS_FD, text);
	}
	if (others) {
		snprintf(line, sizeof(line), "refused: %llu more to other destinations (not kept)",
			 (unsigned long long)others);
		denials_write(BROKER_DENIALS_FD, line);
	}
}
