/* vmm/cli/machine_net.h - the guest's network card for every launching
 * command: virtio-net served by the user-mode stack (net/), with the
 * egress policy and port publishing of the command's network flags
 * (net_args.h), and the kvmbox.net= parameter the guest init configures
 * the interface from (no DHCP wait at boot).
 *
 * kvmbox.net=ADDR/PREFIX,GATEWAY,DNS   e.g. kvmbox.net=10.0.2.15/24,10.0.2.2,10.0.2.2
 * (IPv4 dotted quads; the MTU travels in virtio-net's config space, IPv6 is
 * configured by the stack's router advertisements).
 */
#ifndef KVMBOX_VMM_CLI_MACHINE_NET_H
#define KVMBOX_VMM_CLI_MACHINE_NET_H

#include "vmm/cli/machine.h"

/* Add the card described by m->o->net (nothing with --no-net; m->net is
 * set otherwise).  0, EXIT_USAGE after one line on stderr (a --publish
 * that cannot bind), or 1 after one line. */
int machine_net_add(struct machine *m);

/* --auto-publish: the guest listens on TCP ports[0..n) (what its init
 * reported); each port not seen before is published on the host's
 * 127.0.0.1 at the same number.  A port stays published when its listener
 * goes (connections then get a RST from the guest).  Failures (port taken
 * on the host, below 1024, the publish table full) are logged, a few at
 * most.  Nothing without --auto-publish or a network card.  Loop thread. */
void machine_net_listeners(struct machine *m, const uint16_t *ports, unsigned n);

/* After the VM: one line on stderr with what the egress policy refused
 * during the session (destination, protocol, count, why and the flag that
 * would allow it), when it refused anything.  cmd: what the user typed. */
void machine_net_report(struct machine *m, const char *cmd);

#endif
