/* launch/session/attach.c - a terminal's end of a sandbox's console (see
 * session.h, "The sandbox's terminal"): the launching process after
 * session_hold, and kvmbox attach NAME.
 *
 * Event sources, in one poll(): the keyboard (stdin, raw when a terminal;
 * the detach pair is looked for here and never reaches the sandbox), the
 * holder's socket (output, the name, the end), and a signalfd: SIGWINCH
 * (the size to the holder), SIGTERM and SIGINT (stop the sandbox, then
 * wait for its end), SIGHUP (the terminal is gone: leave, the sandbox
 * runs on).
 */
#include "launch/session/session.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/term.h"

struct attach {
	const struct attach_opts *o;
	int sock, sig;
	bool keys_open, raw, after_prefix;
	char name[SESSION_NAME_MAX + 1];
};

static void write_all(int fd, const unsigned char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

static void send_size(struct attach *a)
{
	struct hold_size sz;
	if (term_size(STDOUT_FILENO, &sz.rows, &sz.cols) == 0 ||
	    term_size(STDIN_FILENO, &sz.rows, &sz.cols) == 0)
		hold_send(a->sock, HOLD_SIZE, &sz, sizeof(sz));
}

/* Keys: to the sandbox, except the detach pair.  1 when the user detached. */
static int keys(struct attach *a)
{
	unsigned char in[4096], out[HOLD_PACKET_MAX - 1];
	ssize_t n = read(STDIN_FILENO, in, sizeof(in));
	if (n < 0 && errno == EINTR)
		return 0;
	if (n <= 0) {
		a->keys_open = false;	/* stdin ended: output still comes */
		return 0;
	}
	size_t k = 0;
	for (ssize_t i = 0; i < n; i++) {
		unsigned char b = in[i];
		if (a->after_prefix) {
			a->after_prefix = false;
			if (b == a->o->detach_key) {
				if (k)	/* what came before it goes; what follows does not */
					hold_send(a->sock, HOLD_DATA, out, k);
				return 1;
			}
			out[k++] = a->o->detach_prefix;
			if (b != a->o->detach_prefix)
				out[k++] = b;
		} else if (b == a->o->detach_prefix) {
			a->after_prefix = true;
		} else {
			out[k++] = b;
		}
		if (k >= sizeof(out) - 2) {
			hold_send(a->sock, HOLD_DATA, out, k);
			k = 0;
		}
	}
	if (k)
		hold_send(a->sock, HOLD_DATA, out, k);
	return 0;
}

enum { GO_ON = -1000 };

/* One packet from the holder: GO_ON, or what session_attach_run returns. */
static int holder_said(struct attach *a)
{
	unsigned char buf[HOLD_PACKET_MAX];
	ssize_t n = recv(a->sock, buf, sizeof(buf), 0);
	if (n < 0 && errno == EINTR)
		return GO_ON;
	if (n <= 0) {
		term_restore();
		fprintf(stderr, "\r\nkvmbox: lost the link to sandbox %s (kvmbox ps shows how it stands)\n",
			a->name[0] ? a->name : "(unnamed)");
		return 1;
	}
	size_t len = (size_t)n - 1;
	int32_t status;
	switch (buf[0]) {
	case HOLD_DATA:
		write_all(STDOUT_FILENO, buf + 1, len);
		return GO_ON;
	case HOLD_NAME:
		if (len <= SESSION_NAME_MAX) {
			memcpy(a->name, buf + 1, len);
			a->name[len] = 0;
		}
		if (a->o->leave_when_named && session_name_valid(a->name)) {
			fprintf(stderr, "kvmbox: sandbox %s runs in the background: kvmbox attach %s\n", a->name,
				a->name);
			return 0;
		}
		return GO_ON;
	case HOLD_EXIT:
		if (len != sizeof(status))
			return 1;
		memcpy(&status, buf + 1, sizeof(status));
		return status;
	case HOLD_TAKEN:
		term_restore();
		fprintf(stderr, "\r\nkvmbox: sandbox %s was attached from another terminal\n", a->name);
		return 0;
	default:
		return GO_ON;	/* a newer holder's */
	}
}

/* A signal: GO_ON, or what session_attach_run returns. */
static int signalled(struct attach *a)
{
	struct signalfd_siginfo si;
	if (read(a->sig, &si, sizeof(si)) != (ssize_t)sizeof(si))
		return GO_ON;
	switch (si.ssi_signo) {
	case SIGWINCH:
		send_size(a);
		return GO_ON;
	case SIGHUP:
		return 128 + SIGHUP;	/* the terminal is gone; the sandbox runs on */
	default:
		hold_send(a->sock, HOLD_STOP, NULL, 0);	/* SIGTERM, SIGINT: its end comes */
		return GO_ON;
	}
}

int session_attach_run(int sock, const struct attach_opts *o)
{
	struct attach a = { .o = o, .sock = sock, .keys_open = !o->leave_when_named };
	if (o->name)
		snprintf(a.name, sizeof(a.name), "%s", o->name);
	sigset_t sigs, old;
	sigemptyset(&sigs);
	static const int caught[] = { SIGWINCH, SIGTERM, SIGINT, SIGHUP };
	for (size_t i = 0; i < sizeof(caught) / sizeof(caught[0]); i++)
		sigaddset(&sigs, caught[i]);
	sigprocmask(SIG_BLOCK, &sigs, &old);
	a.sig = signalfd(-1, &sigs, SFD_CLOEXEC);
	hold_send(sock, HOLD_ATTACH, NULL, 0);
	if (a.keys_open && isatty(STDIN_FILENO))
		a.raw = term_raw_enter(STDIN_FILENO) == 0;
	send_size(&a);
	int r = a.sig < 0 ? 1 : GO_ON;
	while (r == GO_ON) {
		struct pollfd pf[3] = { { .fd = sock, .events = POLLIN }, { .fd = a.sig, .events = POLLIN },
					{ .fd = a.keys_open ? STDIN_FILENO : -1, .events = POLLIN } };
		if (poll(pf, 3, -1) < 0) {
			if (errno != EINTR)
				r = 1;
			continue;
		}
		if (pf[0].revents)
			r = holder_said(&a);
		if (r == GO_ON && pf[1].revents)
			r = signalled(&a);
		if (r == GO_ON && pf[2].revents && keys(&a) == 1) {
			term_restore();
			fprintf(stderr, "\r\nkvmbox: detached from sandbox %s; kvmbox attach %s comes back to it\n",
				a.name[0] ? a.name : "(unnamed)", a.name[0] ? a.name : "NAME");
			r = 0;
		}
	}
	term_restore();
	if (a.sig >= 0)
		close(a.sig);
	close(sock);
	sigprocmask(SIG_SETMASK, &old, NULL);
	return r;
}

/* One key of a --detach-keys text: its byte, or -1. */
static int key_byte(const char *k, size_t len)
{
	if (len == 1 && k[0] > ' ' && k[0] < 0x7f && k[0] != ',')
		return (unsigned char)k[0];
	if (len == 6 && !strncmp(k, "ctrl-", 5)) {
		char c = k[5];
		if (c >= 'a' && c <= 'z')
			return c - 'a' + 1;
		if (strchr("@[\\]^_", c))
			return c - '@';
	}
	return -1;
}

int session_detach_keys_parse(const char *text, unsigned char out[2])
{
	const char *comma = strchr(text, ',');
	if (!comma || strchr(comma + 1, ','))
		return -EINVAL;
	int a = key_byte(text, (size_t)(comma - text)), b = key_byte(comma + 1, strlen(comma + 1));
	if (a < 0 || b < 0 || a == b)
		return -EINVAL;
	out[0] = (unsigned char)a;
	out[1] = (unsigned char)b;
	return 0;
}

int session_attach_connect(const char *name)
{
	struct session_info i;
	int r = session_read(name, &i);
	if (r < 0)
		return r;
	if (session_state(&i) != SESSION_RUNNING)
		return -ESRCH;
	char dir[PATH_MAX];
	if ((r = session_dir(name, dir, sizeof(dir))) < 0)
		return r;
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	snprintf(a.sun_path, sizeof(a.sun_path), "/proc/self/fd/%d/" HOLD_CONTROL, dfd);
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		r = -errno;
	} else if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		r = errno == ENOENT || errno == ECONNREFUSED ? -ENOTCONN : -errno;
		close(fd);
	} else {
		r = fd;
	}
	close(dfd);
	return r;
}

int session_type(const char *name, const void *bytes, size_t len)
{
	if (len > HOLD_PACKET_MAX - 1)
		return -EMSGSIZE;
	int fd = session_attach_connect(name);
	if (fd < 0)
		return fd;
	int r = hold_send(fd, HOLD_TYPE, bytes, len);
	/* the holder answers once the bytes are typed (or closes) */
	unsigned char ack[8];
	struct pollfd pf = { .fd = fd, .events = POLLIN };
	if (r == 0 && (poll(&pf, 1, 5000) <= 0 || recv(fd, ack, sizeof(ack), 0) <= 0 || ack[0] != HOLD_EXIT))
		r = -EPROTO;
	close(fd);
	return r;
}
