/* vmm/cli/shell_session.h - the host end of the kvmbox.ctl protocol
 * (guest/abi/console.h) for `kvmbox shell`, apart from the VM so
 * it can be tested with the pretend guest and the real guest session.
 *
 * Plug it into the console: the kvmbox.ctl port's backend gets
 * on_output = shell_ctl_output, the kvmbox.tty port's backend gets
 * on_hangup = shell_stdin_hangup, both with opaque = the session.  It
 * answers READY with CA (when the launch has the TLS proxy) and START,
 * sends RESIZE (shell_session_resize, e.g. on SIGWINCH) and STDIN_EOF
 * (remembered if stdin ends before START), and on EXIT waits until every byte of CMD's output left the tty port, then calls
 * finish(code).  Everything runs on the device's loop thread.
 *
 * Host signals (shell_session_signal), as `docker run`'s sig-proxy: SIGINT,
 * SIGTERM, SIGQUIT, SIGUSR1 and SIGUSR2 go to CMD as SIGNAL messages, and
 * kvmbox then exits with whatever status CMD ends with.  So that kvmbox can
 * always be stopped, stop(signo) is called (the VM stops, exit 128+signo)
 * when there is no CMD to forward to (before START, after EXIT), on a
 * second SIGINT/SIGTERM, and when CMD is still running grace_ms after a
 * SIGTERM.
 */
#ifndef KVMBOX_VMM_CLI_SHELL_SESSION_H
#define KVMBOX_VMM_CLI_SHELL_SESSION_H

#include <stdbool.h>

#define SHELL_STOP_GRACE_MS 10000	/* like docker stop's default 10 s */

#include "devices/virtio/console.h"
#include "guest/abi/console.h"
#include "vmm/vmm.h"

struct shell_session {
	/* set by the caller */
	struct vcon *con;
	unsigned tty_port, ctl_port;
	bool tty;		/* run CMD on a PTY (host stdin/stdout are terminals) */
	int argc;		/* CMD (0: the guest's shell) */
	char **argv;
	const char *term;	/* $TERM for the guest when tty (NULL: "dumb") */
	int win_fd;		/* terminal whose size the guest follows, or -1 */
	void (*finish)(void *opaque, int code);		/* CMD done, output drained */
	void (*fail)(void *opaque, const char *why);	/* protocol broken / too long */
	void (*guest_error)(void *opaque, const char *msg, size_t len);
	void (*stop)(void *opaque, int signo, const char *why);	/* stop the VM now */
	/* non-NULL: ask the guest for its TCP listeners (KBX_START_LISTENERS)
	 * and pass every LISTENERS set it reports (at most KBX_LISTENERS_MAX) */
	void (*listeners)(void *opaque, const uint16_t *ports, unsigned n);
	unsigned grace_ms;	/* after a forwarded SIGTERM (0: SHELL_STOP_GRACE_MS) */
	struct profile *prof;	/* marks PHASE_COMMAND_START, or NULL */
	const uint8_t *ca;	/* the TLS proxy's CA (DER) sent before START, or NULL */
	size_t ca_len;		/* at most KBX_CA_DER_MAX */
	void *opaque;
	/* state */
	bool started;		/* START sent */
	bool stdin_eof;		/* host stdin ended */
	bool exited;		/* EXIT received */
	bool quiesced;		/* shell_session_quiesce ran: timers do nothing */
	int exit_code;
	int stop_signals;	/* SIGINT/SIGTERM forwarded so far */
	unsigned drain_tries;
	uint64_t drain_bytes;	/* tty port's bytes_out at the last check */
	struct loop_op grace_op;
	struct __kernel_timespec grace_ts;
	struct loop_op drain_op;
	struct __kernel_timespec drain_ts;
	struct kbx_ctl_reader rd;
};

/* vcon_backend.on_output for the kvmbox.ctl port. */
size_t shell_ctl_output(void *opaque, const uint8_t *buf, size_t len);
/* vcon_backend.on_hangup for the kvmbox.tty port (host stdin ended). */
void shell_stdin_hangup(void *opaque);
/* vcon_backend.on_first_output of the tty port: marks PHASE_FIRST_OUTPUT. */
void shell_tty_first_output(void *opaque);
/* A host signal for CMD (see above); SIGWINCH resizes, SIGHUP stops. */
void shell_session_signal(struct shell_session *ss, int signo);
/* Whether shell_session_signal wants @signo (the set to block and read). */
bool shell_session_forwards(int signo);

/* After a restore loaded the console's state (before any vCPU runs): a
 * guest saved with kvmbox.ctl open is past READY and START, so the session
 * counts as started and the guest gets this terminal's size. */
void shell_session_resumed(struct shell_session *ss);

/* Send the window size of win_fd (24x80 without one) to the guest. */
void shell_session_resize(struct shell_session *ss);

/* Before the console goes: cancel the session's timers (output drain,
 * SIGTERM grace) and turn the loop until their completions are back, as
 * their callbacks use the console. */
void shell_session_quiesce(struct shell_session *ss);

#endif
