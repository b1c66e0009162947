/* guest/init/portfwd.h - makes the guest's loopback-only TCP listeners
 * reachable from outside, for --auto-publish.
 *
 * Dev servers often listen on localhost only (Vite binds "localhost", which
 * Node resolves to ::1 or 127.0.0.1), and a connection kvmbox publishes
 * arrives on the guest's interface address, where nothing listens.  Docker
 * and Lima users expect such a port to work all the same.  The forwarder
 * scans /proc/net/tcp{,6} once a second; for each port that has a loopback
 * listener and no other, it listens on the guest's interface address at
 * the same port and relays every connection to the loopback listener (the
 * IPv4 one when both exist).  That listener is then an ordinary
 * non-loopback one, so kvmbox-init's LISTENERS report carries the port and
 * the host publishes it.  When the loopback listener goes, so does the
 * relay's.
 *
 * kvmbox-init runs it in a child process (kbx_portfwd_start) for a session
 * with KBX_START_LISTENERS and kills it when the session ends.  Bounded:
 * PORTFWD_MAX_PORTS relayed ports, PORTFWD_MAX_CONNS connections, two
 * 16 KiB buffers each, allocated once.
 */
#ifndef KVMBOX_GUEST_INIT_PORTFWD_H
#define KVMBOX_GUEST_INIT_PORTFWD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define PORTFWD_MAX_PORTS 32
#define PORTFWD_MAX_CONNS 64
#define PORTFWD_BUF 16384

/* One relayed connection: outside peer `out`, loopback listener `in`. */
struct portfwd_conn {
	int out, in;		/* -1 when unused */
	uint8_t to_in[PORTFWD_BUF], to_out[PORTFWD_BUF];
	size_t to_in_len, to_out_len;	/* bytes waiting in each buffer */
	bool out_eof, in_eof;	/* read side ended (then shut the other's write) */
	bool in_shut, out_shut;	/* SHUT_WR done toward in / out: both, and it ends */
};

struct portfwd_port {
	int fd;			/* our listener on the interface address, or -1 */
	uint16_t port;
	bool v6_target;		/* relay to ::1 (no 127.0.0.1 listener) */
};

struct portfwd {
	uint32_t addr;		/* interface address to listen on (network order) */
	struct portfwd_port port[PORTFWD_MAX_PORTS];
	struct portfwd_conn *conn;	/* PORTFWD_MAX_CONNS */
};

/* addr: the address to listen on (network order), or 0 for the first
 * IPv4 address of an interface that is up and not loopback.  0 or -errno. */
int portfwd_init(struct portfwd *pf, uint32_t addr);
void portfwd_fini(struct portfwd *pf);
/* Compare the listeners in /proc/net/tcp{,6} with the relays: open and
 * close relay listeners. */
void portfwd_scan(struct portfwd *pf);
/* Wait up to timeout_ms for the relays' sockets and move what is ready. */
void portfwd_poll(struct portfwd *pf, int timeout_ms);

/* Fork the forwarder (scan once a second, relay in between, until killed):
 * its pid, or -errno. */
pid_t kbx_portfwd_start(void);

#endif
