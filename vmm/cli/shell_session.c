/* vmm/cli/shell_session.c - host end of the kvmbox.ctl protocol (see
 * shell_session.h and guest/abi/console.h). */
#include "vmm/cli/shell_session.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "common/term.h"

#define DRAIN_TRIES 2000	/* x 1 ms without progress: output stuck after EXIT */

static void ctl_send(struct shell_session *ss, uint16_t type, const void *payload, size_t len)
{
	uint8_t frame[sizeof(struct kbx_ctl_hdr) + 64];
	size_t n = kbx_ctl_frame(frame, sizeof(frame), type, payload, len);
	if (!n || vcon_port_send(ss->con, ss->ctl_port, frame, n) != n)
		log_warn("shell: control message %u dropped (guest not reading)", type);
}

/* The window of win_fd, 24x80 when there is none. */
static void window(struct shell_session *ss, uint16_t *rows, uint16_t *cols)
{
	uint16_t r, c;
	if (ss->win_fd < 0 || term_size(ss->win_fd, &r, &c) < 0 || !r || !c)
		r = 24, c = 80;
	*rows = r;
	*cols = c;
}

void shell_session_resize(struct shell_session *ss)
{
	uint16_t rows, cols;
	window(ss, &rows, &cols);
	struct kbx_ctl_resize r = { .rows = rows, .cols = cols };
	vcon_set_size(ss->con, cols, rows);
	if (ss->started)
		ctl_send(ss, KBX_CTL_RESIZE, &r, sizeof(r));
}

/* CA: the proxy's certificate, which the guest installs before CMD runs.
 * Not delivered, the session fails: CMD never starts without it. */
static bool send_ca(struct shell_session *ss)
{
	uint8_t frame[sizeof(struct kbx_ctl_hdr) + KBX_CA_DER_MAX];
	size_t n = ss->ca_len <= KBX_CA_DER_MAX ?
		kbx_ctl_frame(frame, sizeof(frame), KBX_CTL_CA, ss->ca, ss->ca_len) : 0;
	if (!n || vcon_port_send(ss->con, ss->ctl_port, frame, n) != n) {
		ss->fail(ss->opaque, "cannot hand the guest the proxy's CA");
		return false;
	}
	return true;
}

/* START: window, mode, argv, TERM; it may be up to KBX_CTL_MAX_PAYLOAD. */
static void send_start(struct shell_session *ss)
{
	static uint8_t frame[sizeof(struct kbx_ctl_hdr) + KBX_CTL_MAX_PAYLOAD];	/* loop thread only */
	uint8_t *buf = frame + sizeof(struct kbx_ctl_hdr);
	uint16_t rows, cols;
	if (ss->ca && !send_ca(ss))
		return;
	window(ss, &rows, &cols);
	struct kbx_ctl_start st = { .rows = rows, .cols = cols,
				    .flags = (ss->tty ? KBX_START_TTY : 0) |
					     (ss->listeners ? KBX_START_LISTENERS : 0),
				    .argc = (uint32_t)ss->argc, .envc = 1 };
	char termvar[128];
	snprintf(termvar, sizeof(termvar), "TERM=%s", ss->tty && ss->term ? ss->term : "dumb");
	size_t off = sizeof(st);
	for (int i = 0; i <= ss->argc; i++) {
		const char *a = i < ss->argc ? ss->argv[i] : termvar;
		size_t n = strlen(a) + 1;
		if (n > KBX_CTL_MAX_PAYLOAD - off) {
			ss->fail(ss->opaque, "the command and its arguments are longer than 64 KiB");
			return;
		}
		memcpy(buf + off, a, n);
		off += n;
	}
	memcpy(buf, &st, sizeof(st));
	struct kbx_ctl_hdr h = { .type = KBX_CTL_START, .len = (uint32_t)off };
	memcpy(frame, &h, sizeof(h));
	ss->started = true;
	profile_mark(ss->prof, PHASE_COMMAND_START);
	size_t total = sizeof(h) + off;
	if (vcon_port_send(ss->con, ss->ctl_port, frame, total) != total)
		ss->fail(ss->opaque, "the guest is not reading kvmbox.ctl");
	else if (ss->stdin_eof)	/* stdin ended while the guest was booting */
		ctl_send(ss, KBX_CTL_STDIN_EOF, NULL, 0);
}

static void drain_check(struct loop *loop, struct loop_op *op, int res, uint32_t flags);

/* EXIT arrived: finish once every byte of output left the tty port. */
static void finish_when_drained(struct shell_session *ss)
{
	uint64_t out = ss->con->port[ss->tty_port].bytes_out;
	/* Still moving, or waiting for whoever reads our stdout (a write in
	 * flight: a full pipe, `| less` not paging yet): keep waiting, as
	 * any writer to a pipe would; SIGINT/SIGTERM still stop at once.
	 * Only output stuck inside kvmbox is given up on. */
	if (out != ss->drain_bytes || vcon_port_output_writing(ss->con, ss->tty_port)) {
		ss->drain_bytes = out;
		ss->drain_tries = 0;
	}
	if (vcon_port_output_idle(ss->con, ss->tty_port) || ss->drain_tries++ > DRAIN_TRIES) {
		ss->finish(ss->opaque, ss->exit_code);
		return;
	}
	ss->drain_op.cb = drain_check;	/* not a compound literal: keeps .armed */
	ss->drain_op.opaque = ss;
	loop_timer(ss->con->vdev.env.loop, &ss->drain_op, &ss->drain_ts, 1000000);
}

static void drain_check(struct loop *loop, struct loop_op *op, int res, uint32_t flags)
{
	(void)loop;
	(void)flags;
	struct shell_session *ss = op->opaque;
	if (res == -ECANCELED || ss->quiesced)
		return;
	finish_when_drained(ss);
}

static void ctl_message(struct shell_session *ss, const struct kbx_ctl_hdr *h, const uint8_t *p)
{
	switch (h->type) {
	case KBX_CTL_READY:
		if (!ss->started)
			send_start(ss);
		return;
	case KBX_CTL_EXIT: {
		struct kbx_ctl_exit e = { 0, 0 };
		memcpy(&e, p, MIN((size_t)h->len, sizeof(e)));
		if (ss->exited)
			return;
		ss->exited = true;
		ss->exit_code = e.code & 0xff;
		finish_when_drained(ss);
		return;
	}
	case KBX_CTL_ERROR:
		if (ss->guest_error)
			ss->guest_error(ss->opaque, (const char *)p, MIN(h->len, 512u));
		return;
	case KBX_CTL_LISTENERS: {
		uint16_t ports[KBX_LISTENERS_MAX];
		unsigned n = MIN(h->len / 2, (unsigned)KBX_LISTENERS_MAX);
		memcpy(ports, p, n * sizeof(ports[0]));	/* the payload is unaligned */
		if (ss->listeners)
			ss->listeners(ss->opaque, ports, n);
		return;
	}
	default:
		return;	/* unknown: skipped (forward compatible) */
	}
}

size_t shell_ctl_output(void *opaque, const uint8_t *buf, size_t len)
{
	struct shell_session *ss = opaque;
	size_t off = 0;
	while (off < len) {
		size_t used;
		struct kbx_ctl_hdr h;
		const uint8_t *payload;
		int r = kbx_ctl_feed(&ss->rd, buf + off, len - off, &used, &h, &payload);
		off += used;
		if (r < 0) {
			ss->fail(ss->opaque, "the guest broke the control protocol");
			return len;
		}
		if (r == 1)
			ctl_message(ss, &h, payload);
	}
	return len;
}

void shell_session_resumed(struct shell_session *ss)
{
	if (!ss->con->port[ss->ctl_port].guest_open)
		return;		/* saved before the guest opened kvmbox.ctl: READY comes */
	ss->started = true;
	shell_session_resize(ss);
}

void shell_tty_first_output(void *opaque)
{
	struct shell_session *ss = opaque;
	profile_mark(ss->prof, PHASE_FIRST_OUTPUT);
}

void shell_stdin_hangup(void *opaque)
{
	struct shell_session *ss = opaque;
	ss->stdin_eof = true;
	if (ss->started)
		ctl_send(ss, KBX_CTL_STDIN_EOF, NULL, 0);
}

bool shell_session_forwards(int signo)
{
	return signo == SIGINT || signo == SIGTERM || signo == SIGQUIT || signo == SIGUSR1 ||
	       signo == SIGUSR2;
}

/* grace_ms after a forwarded SIGTERM: stop the VM if CMD is still there. */
static void grace_expired(struct loop *loop, struct loop_op *op, int res, uint32_t flags)
{
	(void)loop;
	(void)flags;
	struct shell_session *ss = op->opaque;
	if (res == -ECANCELED || ss->exited || ss->quiesced)
		return;
	char why[96];
	snprintf(why, sizeof(why), "the command did not exit within %u s of SIGTERM",
		 (ss->grace_ms ? ss->grace_ms : SHELL_STOP_GRACE_MS) / 1000);
	ss->stop(ss->opaque, SIGTERM, why);
}

static void forward(struct shell_session *ss, int signo)
{
	struct kbx_ctl_signal sg = { .signo = (uint32_t)signo };
	ctl_send(ss, KBX_CTL_SIGNAL, &sg, sizeof(sg));
	if (signo != SIGTERM)
		return;
	unsigned ms = ss->grace_ms ? ss->grace_ms : SHELL_STOP_GRACE_MS;
	ss->grace_op.cb = grace_expired;
	ss->grace_op.opaque = ss;
	if (loop_timer(ss->con->vdev.env.loop, &ss->grace_op, &ss->grace_ts,
		       (uint64_t)ms * 1000000) < 0)
		ss->stop(ss->opaque, SIGTERM, "cannot time the SIGTERM grace period");
}

void shell_session_signal(struct shell_session *ss, int signo)
{
	if (signo == SIGWINCH) {
		shell_session_resize(ss);
		return;
	}
	if (signo == SIGHUP) {	/* the terminal went away */
		ss->stop(ss->opaque, signo, NULL);
		return;
	}
	if (!shell_session_forwards(signo))
		return;
	bool stopping = signo == SIGINT || signo == SIGTERM;
	if (!ss->started || ss->exited) {	/* no command to forward to */
		if (signo != SIGUSR1 && signo != SIGUSR2)
			ss->stop(ss->opaque, signo, NULL);
		return;
	}
	if (stopping && ss->stop_signals++ > 0) {	/* the second one: no more waiting */
		ss->stop(ss->opaque, signo, "second stop signal");
		return;
	}
	forward(ss, signo);
}

void shell_session_quiesce(struct shell_session *ss)
{
	if (!ss->con)
		return;
	ss->quiesced = true;
	struct loop_op *const ops[] = { &ss->drain_op, &ss->grace_op };
	loop_cancel_settle(ss->con->vdev.env.loop, ops, 2, 1000);
}
