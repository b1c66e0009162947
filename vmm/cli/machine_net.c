/* vmm/cli/machine_net.c - virtio-net + the user-mode stack for `kvmbox run`
 * and `kvmbox shell` (see machine_net.h).
 *
 * One object owns the device, the stack and the policy.  The stack's output
 * goes through this object rather than straight to the device, so that
 * teardown can take the device away first (its last loop turn may still
 * deliver stack events, which then reach a live device) and only then free
 * the stack, with nothing left to send frames to.
 */
#include "vmm/cli/machine_net.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "devices/virtio/net.h"
#include "net/net.h"
#include "vmm/cli/cli.h"
#include "vmm/cli/net_args.h"

/* The guest's MAC (locally administered, QEMU's range, like slirp's guest). */
static const uint8_t guest_mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };

struct machine_net {
	struct vnet *vnet;	/* NULL once torn down */
	struct net_stack *ns;
	struct policy pol;	/* large: lives with the object */
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

static void mnet_destroy(void *obj)
{
	struct machine_net *mn = obj;
	vnet_destroy(mn->vnet);
	mn->vnet = NULL;
	net_destroy(mn->ns);
	free(mn);
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
	int r = policy_add_local_addrs(&mn->pol);
	if (r < 0)
		log_warn("net: cannot list host addresses: %s", strerror(-r));
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
	return 0;
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
	return 0;
}
