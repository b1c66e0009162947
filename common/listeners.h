/* common/listeners.h - which TCP ports a Linux network namespace listens
 * on, read from /proc/net/tcp and /proc/net/tcp6, for --auto-publish.
 *
 * `kvmbox shell --auto-publish` (and the agent commands) mirror the guest's
 * listeners on the host's 127.0.0.1 at the same port, so a dev server the
 * agent starts (`npm run dev` on :3000) is reachable from the host browser
 * without a --publish flag per port.  kvmbox-init scans these files once a
 * second and sends the set on kvmbox.ctl (KBX_CTL_LISTENERS) whenever it
 * changes; `kvmbox net-serve --auto-publish` reads the same files of its
 * network namespace.  Listeners bound to loopback (127.0.0.0/8, ::1,
 * ::ffff:127.x) are the guest's own business and are left out.
 *
 * Plain libc, no kvmbox dependencies: kvmbox-init (guest/init/module.mk)
 * compiles this file into the guest's static init, and the host library
 * carries it for net-serve.  Text parsing, and a reader of this
 * namespace's two files (the guest side).
 */
#ifndef KVMBOX_COMMON_LISTENERS_H
#define KVMBOX_COMMON_LISTENERS_H

#include <stdbool.h>
#include <stdint.h>

/* Add the ports of the LISTEN sockets in `text` (the contents of
 * /proc/net/tcp, or of /proc/net/tcp6 when v6) that are not bound to a
 * loopback address to ports[0..*n), skipping ports already there, up to
 * max entries.  Lines that do not parse are ignored.  Returns how many
 * listeners did not fit (0 normally). */
unsigned listeners_parse(const char *text, bool v6, uint16_t *ports, unsigned *n,
			     unsigned max);

/* One LISTEN socket of those files. */
struct listener {
	uint16_t port;
	bool loopback;		/* bound to 127.0.0.0/8, ::1 or ::ffff:127.x */
	bool v4;		/* in /proc/net/tcp, or IPv4-mapped in tcp6 */
	char addr[33];		/* the local address as the kernel prints it */
};

/* One line of those files: 1 with *l filled when it is a LISTEN socket,
 * else 0. */
int listener_line(const char *line, bool v6, struct listener *l);

/* fn(arg, listener) for every LISTEN socket in /proc/net/tcp, then in
 * /proc/net/tcp6, of this process's network namespace (the guest side:
 * kvmbox-init's report and its loopback forwarder). */
void listeners_each(void (*fn)(void *arg, const struct listener *l), void *arg);

/* listeners_parse over those two files: the ports, not on loopback,
 * of this namespace's listeners. */
unsigned listeners_scan(uint16_t *ports, unsigned *n, unsigned max);

/* Sort ports[0..n) so that two scans compare with memcmp. */
void listeners_sort(uint16_t *ports, unsigned n);

#endif
