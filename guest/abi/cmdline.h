/* guest/abi/cmdline.h - the kvmbox.* kernel command-line parameters: what
 * the VMM tells kvmbox-init at boot.  Written by vmm/cmdline.c and
 * vmm/cli/ (machine_net.c, cmd_shell.c, cmd_run.c), read by guest/init/
 * (kinit.c, netcfg.c, console.c, main.c).  Header-only, freestanding.
 * The last occurrence of a parameter counts; a word starting with '"' runs
 * to the next '"', as the kernel splits them.
 *
 *   kvmbox.argv=B64     the command: base64url without padding
 *                       (guest/abi/base64url.h) of argv[0] NUL argv[1] NUL
 *                       ...; absent: the image's default command
 *   kvmbox.net=ADDR/PREFIX,GATEWAY,DNS
 *                       the network card's IPv4 configuration, dotted
 *                       quads (e.g. 10.0.2.15/24,10.0.2.2,10.0.2.2);
 *                       absent: no network (only lo)
 *   kvmbox.ca=B64       the TLS proxy's per-launch CA: base64url without
 *                       padding of the DER certificate, installed into the
 *                       system trust store
 *   kvmbox.ctl=1        the host speaks the kvmbox.ctl protocol
 *                       (guest/abi/console.h): the command runs on a PTY
 *                       bound to the kvmbox.tty port
 *   kvmbox.snapshot=1   the VM may be saved (kvmbox-checkpoint, the
 *                       marker port's KBX_MARKER_SNAPSHOT)
 *   kvmbox.fs=, kvmbox.root=   the file shares (guest/abi/mounts.h)
 */
#ifndef KVMBOX_GUEST_ABI_CMDLINE_H
#define KVMBOX_GUEST_ABI_CMDLINE_H

#define KBX_PARAM_ARGV "kvmbox.argv"
#define KBX_PARAM_NET "kvmbox.net"
#define KBX_PARAM_CA "kvmbox.ca"
#define KBX_PARAM_CTL "kvmbox.ctl"
#define KBX_PARAM_SNAPSHOT "kvmbox.snapshot"

#endif
