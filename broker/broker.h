/* broker/broker.h - the credential broker: the real secrets in a process of
 * their own, apart from everything that parses what a guest sends.
 *
 * A launch whose VM has the TLS proxy (every agent command, and kvmbox run
 * or shell with --proxy) is two processes:
 *
 *   kvmbox claude ...            the broker: the process the user started.
 *   │                            It read the real secrets and holds them
 *   │                            (non-dumpable, no core, caged); it runs the
 *   │                            proxy: TLS toward the guest, substitution,
 *   │                            OAuth refreshes, upstream TLS.
 *   └─ kvmbox .vm claude ...     the VMM: executed afresh (a new address
 *                                space that never saw a secret), with the
 *                                environment cut down to an allow-list
 *                                (broker_vmm_env); vCPUs, devices, the file
 *                                server and the network stack.
 *
 * They share one SOCK_SEQPACKET socket pair, the control socket (fd
 * BROKER_CTL_FD in the VMM):
 *   broker -> VMM, once, before the VMM reads anything: HELLO, with the
 *     proxy's CA certificate (the guest must trust it) and the launcher's
 *     profile marks;
 *   VMM -> broker, per guest flow bound for the proxy: FLOW, with where the
 *     guest was headed (struct proxy_dst), and one descriptor: the broker's
 *     end of a fresh socket pair whose other end the VMM's network stack
 *     splices the guest's TCP flow to (net.h, handler result 2).  One
 *     socket per flow: the broker sees bytes, never guest memory, and the
 *     kernel carries them (docs/security.md has what it costs).
 *
 * A flow the egress policy refuses on port 443 or 80 comes too, with the
 * refusal as a line of text (proxy_dst.deny): the broker dials nothing and
 * answers each request with a 403 saying what was refused and the flag
 * that would allow it.
 *
 * The broker trusts nothing the VMM says: a message of the wrong size,
 * type or version, without exactly one descriptor, with an address that
 * is not an IP literal, a name host_valid refuses, a port 0, a
 * refusal line that is not printable
 * ASCII, or a descriptor that is not a Unix stream socket is refused
 * (logged once) and its descriptors closed.  The
 * address is where the proxy dials; a real secret still goes only over
 * TLS verified against its own host's name (proxy.h), so a VMM that lies
 * about it gains nothing it could not reach with its own sockets.
 *
 * When the VMM ends, however it ends, the broker returns its status (its
 * exit code, or 128 + the signal), and the launcher writes rotated tokens
 * back and removes the launch folder.  When the broker ends first, the
 * VMM sees the control socket close and stops its VM.
 */
#ifndef KVMBOX_BROKER_BROKER_H
#define KVMBOX_BROKER_BROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cage/cage.h"
#include "proxy/proxy.h"
#include "vmm/vmm.h"

#define BROKER_CTL_FD 3		/* the control socket, in the VMM */
#define BROKER_DENIALS_FD 4	/* the launch's record of refusals, in the VMM when HELLO says */
#define BROKER_VERSION 3
#define BROKER_CA_MAX 4096	/* PEM */

enum broker_msg_type {
	BROKER_HELLO = 1,	/* broker -> VMM, once */
	BROKER_FLOW = 2,	/* VMM -> broker, one descriptor attached */
};

struct broker_hello {
	uint32_t type, version;
	uint32_t ca_len;		/* bytes of ca_pem used */
	char ca_pem[BROKER_CA_MAX];
	struct profile prof;		/* the launcher's marks (exec, credentials) */
	uint32_t denials_log;		/* 1: BROKER_DENIALS_FD is the record of refusals */
	/* 1: the launch self-test (launch/selftest.h) asks the metadata
	 * address and the gateway on port 80 once each; those two refusals are
	 * the self-test's, not counted or logged as denials */
	uint32_t self_test_probes;
};

struct broker_flow {
	uint32_t type, version;
	struct proxy_dst dst;
};

/* --- the broker's side (broker/broker.c) --- */

struct broker_launch {
	const struct proxy_config *proxy;	/* what the broker serves (borrowed) */
	/* The VMM's words after `kvmbox .vm`: vmm_argv[0] is the command the
	 * user typed (run, shell, claude...; messages name it), NULL-terminated. */
	char *const *vmm_argv;
	const struct profile *prof;		/* passed on in HELLO, or NULL */
	/* What the broker writes once caged, beside the system's read-only
	 * folders: the launch folder, the login file's folder, the state. */
	const struct cage_path *paths;
	size_t npaths;
	int denials_fd;		/* the record of refusals (launch/denials.h), the VMM's too; <= 2: none */
	bool self_test;		/* the guest runs the launch self-test: HELLO says so */
	/* Where the proxy's CA is kept (proxy_save_ca) when another process
	 * asks the sandbox to suspend (VM_SIG_SUSPEND, passed on to the VMM,
	 * which saves the VM): a resumed guest trusts the CA it had.  NULL: a
	 * suspend is refused here. */
	const char *suspend_ca;
};

/* Be the broker of one VM: start the VMM, serve its flows until it ends,
 * and return its status (its exit code, or 128 + the signal that ended
 * it); 1 after one line when it could not start.  Signals sent to the
 * broker by another process (kill) are passed on to the VMM; those the
 * terminal sends reach the VMM by themselves and are ignored here. */
int broker_run(const struct broker_launch *bl);

/* The VMM's environment: the entries of env whose names are on the
 * allow-list (what the VMM reads: HOME, TERM, the XDG folders, kvmbox's
 * own knobs, the sanitizers' options, locale), in order, into out[cap]
 * NULL-terminated.  Everything else, every token among it, stays out
 * (fail closed: a new secret's name needs no entry to be left out).  The
 * count, or -E2BIG. */
int broker_vmm_env(char *const *env, const char **out, size_t cap);

/* A FLOW message as received (len bytes, nfds descriptors attached): 0,
 * or -EPROTO when it must be refused.  Everything but the descriptor. */
int broker_flow_check(const void *msg, size_t len, unsigned nfds);
/* Receive one FLOW from the control socket ctl, without blocking: 1 with
 * the message in *m and its descriptor (a Unix stream socket, made
 * non-blocking, close-on-exec) in *fd; 0 when the VMM closed the socket;
 * -EAGAIN; -EPROTO when the message was refused (every descriptor that
 * came with it closed); another -errno. */
int broker_flow_recv(int ctl, struct broker_flow *m, int *fd);

/* --- the VMM's side (broker/vmm_end.c) --- */

/* fd is a Unix SOCK_SEQPACKET socket (a broker's control socket): 0 or
 * -ENOTSOCK. */
int broker_ctl_check(int fd);
/* Wait for the broker's HELLO on fd (blocking, timeout_ms at most): 0, or
 * -errno (-EPROTO for a malformed one). */
int broker_hello_read(int fd, struct broker_hello *h, unsigned timeout_ms);
/* Hand a flow to the broker: a socket pair, the broker's end sent with
 * FLOW (never blocking: -EAGAIN when the broker is behind); the VMM's end
 * (non-blocking, close-on-exec) or -errno. */
int broker_flow_send(int ctl_fd, const struct proxy_dst *dst);

#endif
