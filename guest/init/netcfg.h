/* guest/init/netcfg.h - kvmbox-init configures the guest's network card
 * from the kvmbox.net= kernel parameter, without waiting for DHCP.
 *
 * kvmbox (vmm/cli/machine_net.c) passes
 *
 *	kvmbox.net=ADDR/PREFIX,GATEWAY,DNS	e.g. kvmbox.net=10.0.2.15/24,10.0.2.2,10.0.2.2
 *
 * (IPv4 dotted quads).  kvmbox-init brings lo up, gives the first Ethernet
 * interface the address, brings it up, adds the default route through the
 * gateway (ioctl: no tools needed in the image) and writes
 * /etc/resolv.conf.  The MTU comes from virtio-net's config space (the
 * kernel's driver sets it); IPv6 is left to the router advertisements of
 * kvmbox's stack (SLAAC).  The stack's DHCP server still answers anyone
 * who asks.  Without the parameter (kvmbox --no-net) only lo is brought up.
 *
 * With `kvmbox run --proxy`, kvmbox also passes the per-launch CA of its
 * TLS proxy as kvmbox.ca=<base64url, no padding, of the DER certificate>
 * (`kvmbox shell` and the agents send it on kvmbox.ctl instead, just
 * before START: guest/abi/console.h, so that a template restored for
 * another launch trusts that launch's proxy); kvmbox-init writes it as PEM
 * to /etc/ssl/certs/kvmbox-ca.pem,
 * appends it to /etc/ssl/certs/ca-certificates.crt (created if missing: the
 * bundle OpenSSL, curl, git and Python's ssl read on Debian) and exports
 * NODE_EXTRA_CA_CERTS (Node.js ignores the system bundle) and
 * REQUESTS_CA_BUNDLE (Python requests uses certifi's) for the command.
 *
 * Hook for kvmbox-init (guest/init/main.c): kbx_net_setup(cmdline) after
 * /proc and /sys are mounted, before the command starts.
 */
#ifndef KVMBOX_GUEST_INIT_NETCFG_H
#define KVMBOX_GUEST_INIT_NETCFG_H

#include <stddef.h>
#include <stdint.h>

/* One kvmbox.net= value (IPv4 in host byte order). */
struct kbx_net {
	uint32_t addr, gateway, dns;
	unsigned prefix;	/* 1..32 */
};

/* Find kvmbox.net= on a kernel command line (the last one counts): 1 with
 * *out filled, 0 when absent, -EINVAL with a one-line reason in err when
 * malformed (bad address, prefix outside 1..32, missing field, trailing
 * text, a gateway outside the address's subnet). */
int kbx_net_parse(const char *cmdline, struct kbx_net *out, char *err, size_t errsz);

/* Configure lo and the Ethernet interface and write resolv_conf (the path
 * of /etc/resolv.conf; the directory is created if missing).  0, or -errno
 * with a one-line reason in err (what was done before stays done). */
int kbx_net_configure(const struct kbx_net *n, const char *resolv_conf, char *err, size_t errsz);

/* Write "nameserver DNS" to path, replacing what is there (a symlink is
 * removed, never followed); the directory is created if missing.  0 or
 * -errno. */
int kbx_net_write_resolv_conf(const char *path, uint32_t dns);

#define KBX_CA_PEM "/etc/ssl/certs/kvmbox-ca.pem"
#define KBX_CA_BUNDLE "/etc/ssl/certs/ca-certificates.crt"

/* DER certificate as PEM text into out: its length, or -ENOSPC. */
int kbx_ca_pem(const uint8_t *der, size_t len, char *out, size_t outsz);

/* A DER certificate installed under root ("" for /) and the environment
 * variables above set in this process (its children inherit them): 0, or
 * -errno with a one-line reason in err. */
int kbx_ca_install_der(const uint8_t *der, size_t len, const char *root, char *err, size_t errsz);

/* kvmbox.ca= from cmdline installed so: 1 installed, 0 absent, -errno with
 * a one-line reason in err. */
int kbx_ca_install(const char *cmdline, const char *root, char *err, size_t errsz);

/* The whole hook: lo up always; with kvmbox.net= the interface too; with
 * kvmbox.ca= the CA and its environment variables.
 * Problems are reported on stderr as one "kvmbox-init: net: ..." line; the
 * command runs regardless. */
void kbx_net_setup(const char *cmdline);

#endif
