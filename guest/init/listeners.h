/* guest/init/listeners.h - which TCP ports a Linux system listens on, read
 * from /proc/net/tcp and /proc/net/tcp6, for --auto-publish.
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
 * Pure text parsing (the guest's static init and the host both link it).
 */
#ifndef KVMBOX_GUEST_INIT_LISTENERS_H
#define KVMBOX_GUEST_INIT_LISTENERS_H

#include <stdbool.h>
#include <stdint.h>

/* Add the ports of the LISTEN sockets in `text` (the contents of
 * /proc/net/tcp, or of /proc/net/tcp6 when v6) that are not bound to a
 * loopback address to ports[0..*n), skipping ports already there, up to
 * max entries.  Lines that do not parse are ignored.  Returns how many
 * listeners did not fit (0 normally). */
unsigned kbx_listeners_parse(const char *text, bool v6, uint16_t *ports, unsigned *n,
			     unsigned max);

/* One line of those files: 1 with *port and whether the socket is bound
 * to a loopback address when it is a LISTEN socket, else 0. */
int kbx_listener_line(const char *line, bool v6, uint16_t *port, bool *loopback);

/* Sort ports[0..n) so that two scans compare with memcmp. */
void kbx_listeners_sort(uint16_t *ports, unsigned n);

#endif
