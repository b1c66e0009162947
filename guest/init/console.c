/* guest/init/console.c - the guest end of `kvmbox shell` (see console.h).
 *
 * Waits for START on kvmbox.ctl, starts CMD on a fresh PTY (START's TTY
 * flag) or on pipes, and relays bytes between kvmbox.tty and CMD until CMD
 * has exited and its output is drained; RESIZE sets the PTY's window (the
 * kernel sends SIGWINCH), SIGNAL goes to the PTY's foreground process group
 * (CMD's group without a PTY), STDIN_EOF
 * closes CMD's stdin (^D on a PTY).  Every child is reaped (init is PID 1).
 * Finally EXIT reports the status, and the session lasts until the host
 * hangs up kvmbox.ctl (it stops the VM first once the output is drained):
 * see wait_host_hangup.  Writes toward CMD never block the relay:
 * what CMD does not read yet waits in a small buffer while output keeps
 * flowing, so a child that writes much and reads little cannot deadlock us.
 */
#include "guest/init/console.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "guest/abi/cmdline.h"
#include "guest/abi/console.h"
#include "common/listeners.h"
#include "guest/init/netcfg.h"
#include "guest/init/portfwd.h"

#define RELAY_BUF 16384
#define LISTENERS_SCAN_MS 1000
#define MAX_STRINGS 4096
#define DRAIN_MS 1000	/* CMD exited and its output quiet this long: done (a PTY
			 * slave a background job keeps open never gives EIO; the
			 * kernel moves PTY data in a worker, slow under emulation) */

struct session {
	int tty_fd, ctl_fd;
	const char *root;	/* where CA installs its files ("" in the guest) */
	int in_fd;		/* toward CMD: PTY master or stdin pipe, -1 when closed */
	int out_fd;		/* from CMD: PTY master or stdout pipe, -1 at EOF */
	bool pty;
	bool host_in_open;	/* kvmbox.tty still delivers host input */
	bool eof_pending;	/* STDIN_EOF seen: close CMD's input once drained */
	bool input_closed;	/* CMD's input is to be / was closed */
	bool ctl_open;
	pid_t child;		/* also its process group */
	bool child_done;
	int wstatus;
	long long done_at_ms;
	long long last_out_ms;	/* when CMD's output last gave bytes */
	uint8_t pend[RELAY_BUF];	/* host input CMD has not taken yet */
	size_t pend_len;
	struct kbx_ctl_reader rd;
	/* KBX_START_LISTENERS: the TCP listeners last reported, and when */
	bool report_listeners;
	pid_t fwd;		/* the loopback forwarder (portfwd.h), or <= 0 */
	long long listeners_ms;
	uint16_t listeners[KBX_LISTENERS_MAX];
	unsigned nlisteners;
};

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Write everything.  A virtio port's write may return 0 (its queue filled
 * between the driver's check and its add): wait until it is writable and
 * retry, never count that as written. */
static int write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0 || (n < 0 && errno == EAGAIN)) {
			struct pollfd w = { .fd = fd, .events = POLLOUT };
			if (poll(&w, 1, 100) < 0 && errno != EINTR)
				return -errno;
			continue;
		}
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int ctl_write(struct session *s, uint16_t type, const void *payload, size_t len)
{
	uint8_t frame[sizeof(struct kbx_ctl_hdr) + 512];
	size_t n = kbx_ctl_frame(frame, sizeof(frame), type, payload, len);
	return n ? write_all(s->ctl_fd, frame, n) : -E2BIG;
}

static void flush_pending(struct session *s);
static void close_input(struct session *s);

/* --- START ------------------------------------------------------------ */

/* Split the NUL-terminated strings after the START header: count of them
 * taken, or -EPROTO when one runs past the payload. */
static int split_strings(const uint8_t *p, size_t len, uint32_t count, char **out)
{
	size_t off = 0;
	for (uint32_t i = 0; i < count; i++) {
		const uint8_t *nul = memchr(p + off, 0, len - off);
		if (!nul)
			return -EPROTO;
		out[i] = (char *)(p + off);
		off = (size_t)(nul - p) + 1;
	}
	return (int)count;
}

static void child_exec(struct session *s, const char *slave, char **argv, char **env)
{
	sigset_t all;
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	signal(SIGPIPE, SIG_DFL);
	setsid();
	if (s->pty) {
		int sfd = open(slave, O_RDWR);
		if (sfd < 0 || ioctl(sfd, TIOCSCTTY, 0) < 0)
			_exit(126);
		dup2(sfd, 0);
		dup2(sfd, 1);
		dup2(sfd, 2);
		if (sfd > 2)
			close(sfd);
	}
	setenv("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", 0);
	setenv("HOME", "/root", 0);
	for (unsigned i = 0; env[i]; i++)
		if (strchr(env[i], '='))
			putenv(env[i]);
	execvp(argv[0], argv);
	dprintf(2, "kvmbox-init: cannot run %s: %s\n", argv[0], strerror(errno));
	_exit(errno == ENOENT ? 127 : 126);
}

/* Fork CMD on a PTY or pipes: 0 or -errno. */
static int spawn(struct session *s, const struct kbx_ctl_start *st, char **argv, char **env)
{
	char slave[64] = "";
	int in[2] = { -1, -1 }, out[2] = { -1, -1 };
	s->pty = st->flags & KBX_START_TTY;
	s->report_listeners = st->flags & KBX_START_LISTENERS;
	if (s->report_listeners)	/* before CMD's pipes exist: it holds none */
		s->fwd = kbx_portfwd_start();
	if (s->pty) {
		int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (m < 0 || grantpt(m) < 0 || unlockpt(m) < 0 ||
		    ptsname_r(m, slave, sizeof(slave)) != 0)
			return -errno;
		struct winsize ws = { .ws_row = st->rows, .ws_col = st->cols };
		ioctl(m, TIOCSWINSZ, &ws);
		s->in_fd = s->out_fd = m;
	} else {
		if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0)
			return -errno;
		s->in_fd = in[1];
		s->out_fd = out[0];
	}
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		if (!s->pty) {
			dup2(in[0], 0);
			dup2(out[1], 1);
			dup2(out[1], 2);
		}
		child_exec(s, slave, argv, env);
	}
	if (!s->pty) {
		close(in[0]);
		close(out[1]);
	}
	fcntl(s->in_fd, F_SETFL, fcntl(s->in_fd, F_GETFL) | O_NONBLOCK);
	s->child = pid;
	flush_pending(s);	/* input typed before CMD existed */
	if (s->input_closed && !s->pend_len)
		close_input(s);	/* host input ended before START */
	return 0;
}

static int handle_start(struct session *s, const uint8_t *p, uint32_t len)
{
	struct kbx_ctl_start st;
	static char *argv_default[] = { (char *)"/bin/sh", NULL };
	if (len < sizeof(st))
		return -EPROTO;
	memcpy(&st, p, sizeof(st));
	if (st.argc > MAX_STRINGS || st.envc > MAX_STRINGS)
		return -EPROTO;
	char **strs = calloc((size_t)st.argc + st.envc + 2, sizeof(*strs));
	if (!strs)
		return -ENOMEM;
	int r = split_strings(p + sizeof(st), len - sizeof(st), st.argc + st.envc, strs);
	if (r >= 0) {
		char **argv = st.argc ? strs : argv_default;
		char **env = strs + st.argc;
		/* argv and env each need their own NULL terminator. */
		char **a = calloc((size_t)st.argc + 1, sizeof(*a));
		char **e = calloc((size_t)st.envc + 1, sizeof(*e));
		if (!a || !e) {
			r = -ENOMEM;
		} else {
			if (st.argc) {
				memcpy(a, argv, st.argc * sizeof(*a));
				argv = a;
			}
			memcpy(e, env, st.envc * sizeof(*e));
			r = spawn(s, &st, argv, e);
		}
		free(a);
		free(e);
	}
	free(strs);
	return r;
}

/* --- relay ------------------------------------------------------------ */

/* Host input ended: EOF for CMD. */
static void close_input(struct session *s)
{
	s->host_in_open = false;
	s->input_closed = true;
	if (s->in_fd < 0 || !s->child)
		return;		/* before START: applied when CMD starts */
	if (s->pty) {
		struct termios t;
		char eof = tcgetattr(s->in_fd, &t) == 0 ? (char)t.c_cc[VEOF] : 4;
		(void)!write(s->in_fd, &eof, 1);
	} else {
		close(s->in_fd);
		s->in_fd = -1;
	}
}

static bool host_input_waiting(struct session *s)
{
	struct pollfd p = { .fd = s->tty_fd, .events = POLLIN };
	return s->host_in_open && poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

static void flush_pending(struct session *s)
{
	/* STDIN_EOF travels on another port than the bytes before it: close
	 * CMD's input only when those bytes were all handed over. */
	if (s->eof_pending && !s->pend_len && !host_input_waiting(s)) {
		s->eof_pending = false;
		close_input(s);
	}
	while (s->pend_len && s->in_fd >= 0) {
		ssize_t n = write(s->in_fd, s->pend, s->pend_len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {	/* CMD closed its input: drop what it never read */
			s->pend_len = 0;
			return;
		}
		memmove(s->pend, s->pend + n, s->pend_len - (size_t)n);
		s->pend_len -= (size_t)n;
		if (!s->pend_len && s->eof_pending) {
			flush_pending(s);
			return;
		}
	}
}

static void on_host_input(struct session *s)
{
	ssize_t n = read(s->tty_fd, s->pend + s->pend_len, sizeof(s->pend) - s->pend_len);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		s->host_in_open = false;
		s->eof_pending = true;
		flush_pending(s);
		return;
	}
	s->pend_len += (size_t)n;
	flush_pending(s);
}

static void on_cmd_output(struct session *s)
{
	uint8_t buf[RELAY_BUF];
	ssize_t n = read(s->out_fd, buf, sizeof(buf));
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {	/* EOF (pipe) or EIO (PTY: every slave closed) */
		if (s->out_fd != s->in_fd)
			close(s->out_fd);
		s->out_fd = -1;
		return;
	}
	if (write_all(s->tty_fd, buf, (size_t)n) < 0)
		s->out_fd = -1;	/* the host is gone: stop relaying */
	s->last_out_ms = now_ms();	/* after the write: it may wait for the host */
}

/* CA before START: the proxy's CA into the trust stores, for CMD.  A
 * certificate that cannot be installed is reported (ERROR) and CMD runs
 * regardless: it then trusts no proxy, so its TLS fails closed. */
static void install_ca(struct session *s, const uint8_t *der, uint32_t len)
{
	char err[160];
	if (kbx_ca_install_der(der, len, s->root, err, sizeof(err)) < 0)
		ctl_write(s, KBX_CTL_ERROR, err, strlen(err));
}

/* A signal from the host: to the terminal's foreground process group on a
 * PTY (the job the user sees, as a key would), else to CMD's group. */
static void signal_cmd(struct session *s, int signo)
{
	pid_t pg = s->pty && s->in_fd >= 0 ? tcgetpgrp(s->in_fd) : -1;
	if (pg <= 0 || kill(-pg, signo) < 0)
		kill(-s->child, signo);
}

static void on_ctl(struct session *s, int *err)
{
	uint8_t buf[4096];
	ssize_t n = read(s->ctl_fd, buf, sizeof(buf));
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {	/* the host went away: hang up CMD, as a terminal would */
		s->ctl_open = false;
		if (s->child > 0)
			kill(-s->child, SIGHUP);
		return;
	}
	size_t off = 0;
	while (off < (size_t)n) {
		size_t used;
		struct kbx_ctl_hdr h;
		const uint8_t *p;
		int r = kbx_ctl_feed(&s->rd, buf + off, (size_t)n - off, &used, &h, &p);
		off += used;
		if (r < 0) {
			*err = -EPROTO;
			return;
		}
		if (r == 0)
			break;
		if (h.type == KBX_CTL_START && s->child == 0) {
			int e = handle_start(s, p, h.len);
			if (e < 0)
				*err = e;
		} else if (h.type == KBX_CTL_RESIZE && s->pty && s->in_fd >= 0 &&
			   h.len >= sizeof(struct kbx_ctl_resize)) {
			struct kbx_ctl_resize rs;
			memcpy(&rs, p, sizeof(rs));
			struct winsize ws = { .ws_row = rs.rows, .ws_col = rs.cols };
			ioctl(s->in_fd, TIOCSWINSZ, &ws);
		} else if (h.type == KBX_CTL_SIGNAL && s->child > 0 &&
			   h.len >= sizeof(struct kbx_ctl_signal)) {
			struct kbx_ctl_signal sg;
			memcpy(&sg, p, sizeof(sg));
			if (sg.signo >= 1 && sg.signo < 65)
				signal_cmd(s, (int)sg.signo);
		} else if (h.type == KBX_CTL_CA && s->child == 0) {
			install_ca(s, p, h.len);
		} else if (h.type == KBX_CTL_STDIN_EOF) {
			s->eof_pending = true;
			flush_pending(s);
		}
	}
}

/* Reap every child; note CMD's status. */
static void reap(struct session *s, int sig_fd)
{
	struct signalfd_siginfo si;
	while (read(sig_fd, &si, sizeof(si)) == sizeof(si))
		;
	int st;
	pid_t pid;
	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		if (pid == s->child && !s->child_done) {
			s->child_done = true;
			s->wstatus = st;
			s->done_at_ms = now_ms();
		}
	}
}

/* KBX_START_LISTENERS: once a second, the TCP listeners not on loopback;
 * LISTENERS when the set differs from the one last sent. */
static void report_listeners(struct session *s)
{
	long long now = now_ms();
	if (!s->report_listeners || now - s->listeners_ms < LISTENERS_SCAN_MS)
		return;
	s->listeners_ms = now;
	uint16_t ports[KBX_LISTENERS_MAX];
	unsigned n = 0;
	listeners_scan(ports, &n, KBX_LISTENERS_MAX);
	listeners_sort(ports, n);
	if (n == s->nlisteners && !memcmp(ports, s->listeners, n * sizeof(ports[0])))
		return;
	memcpy(s->listeners, ports, n * sizeof(ports[0]));
	s->nlisteners = n;
	ctl_write(s, KBX_CTL_LISTENERS, ports, n * sizeof(ports[0]));
}

static bool finished(struct session *s)
{
	if (!s->child_done)
		return false;
	/* Pipes end at EOF; a PTY (or a pipe a background child keeps open)
	 * once output has been quiet for DRAIN_MS after CMD exited: a timer
	 * from the exit alone would drop what a slow relay has not read yet. */
	long long last = s->last_out_ms > s->done_at_ms ? s->last_out_ms : s->done_at_ms;
	return s->out_fd < 0 || now_ms() - last > DRAIN_MS;
}

static int relay(struct session *s, int sig_fd)
{
	int err = 0;
	while (!finished(s) && !err) {
		if (s->child == 0 && !s->ctl_open)
			return -EPIPE;	/* the host left before START */
		bool room = s->pend_len < sizeof(s->pend);
		struct pollfd p[5] = {
			{ .fd = s->ctl_open ? s->ctl_fd : -1, .events = POLLIN },
			{ .fd = s->host_in_open && room ? s->tty_fd : -1, .events = POLLIN },
			{ .fd = s->out_fd, .events = POLLIN },
			{ .fd = sig_fd, .events = POLLIN },
			/* CMD can take more of the host input we hold */
			{ .fd = s->pend_len ? s->in_fd : -1, .events = POLLOUT },
		};
		int r = poll(p, 5, s->child_done ? 20 : s->report_listeners ? LISTENERS_SCAN_MS : -1);
		report_listeners(s);
		if (r < 0 && errno != EINTR)
			return -errno;
		if (r <= 0)
			continue;
		if (p[3].revents)
			reap(s, sig_fd);
		if (p[0].revents)
			on_ctl(s, &err);
		if (p[2].revents && s->out_fd >= 0)
			on_cmd_output(s);
		if (p[1].revents)
			on_host_input(s);
		if (p[4].revents)
			flush_pending(s);
	}
	return err;
}

/* After EXIT: wait until the host hangs up kvmbox.ctl (kvmbox itself never
 * does: it stops the VM once CMD's output has all left the tty port).
 * Writes to a virtio port return as soon as the buffer is on the ring, so
 * when EXIT goes out the host may still have many of CMD's output chains to
 * take (a slow reader of kvmbox's stdout, a loaded host).  Ending the session
 * now would let kvmbox-init reboot, and Linux resets every virtio device on
 * shutdown (virtio_dev_shutdown), which makes the host drop those chains:
 * `kvmbox shell -- cat big | ...` lost the tail of its output under load.
 * Control messages that still arrive (SIGNAL, RESIZE) are ignored. */
static void wait_host_hangup(struct session *s)
{
	uint8_t buf[4096];
	while (s->ctl_open) {
		struct pollfd p = { .fd = s->ctl_fd, .events = POLLIN };
		if (poll(&p, 1, -1) < 0 && errno != EINTR)
			return;
		if (!(p.revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL)))
			continue;
		ssize_t n = read(s->ctl_fd, buf, sizeof(buf));
		if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
			return;
	}
}

int kbx_console_run(int tty_fd, int ctl_fd, const char *root)
{
	struct session *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->tty_fd = tty_fd;
	s->ctl_fd = ctl_fd;
	s->root = root;
	s->in_fd = s->out_fd = -1;
	s->host_in_open = s->ctl_open = true;
	sigset_t chld, old;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, &old);
	void (*old_pipe)(int) = signal(SIGPIPE, SIG_IGN);
	int sig_fd = signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);
	int r = sig_fd < 0 ? -errno : 0;
	if (r == 0) {
		struct kbx_ctl_ready ready = { KBX_CTL_VERSION };
		r = ctl_write(s, KBX_CTL_READY, &ready, sizeof(ready));
	}
	if (r == 0)
		r = relay(s, sig_fd);
	if (r < 0 && s->child == 0) {
		char msg[128];
		int n = snprintf(msg, sizeof(msg), "session failed: %s", strerror(-r));
		ctl_write(s, KBX_CTL_ERROR, msg, (size_t)n);
	}
	struct kbx_ctl_exit ex = { .code = 127, .signo = 0 };
	if (s->child_done) {
		if (WIFSIGNALED(s->wstatus)) {
			ex.signo = (uint32_t)WTERMSIG(s->wstatus);
			ex.code = 128 + (int)ex.signo;
		} else {
			ex.code = WEXITSTATUS(s->wstatus);
		}
		r = ex.code;
	} else if (s->child > 0) {
		kill(-s->child, SIGKILL);	/* protocol error mid-session */
		ex.code = r < 0 ? 127 : r;
	}
	if (s->fwd > 0 && kill(s->fwd, SIGKILL) == 0)
		waitpid(s->fwd, NULL, 0);
	/* No reboot follows EXIT (wait_host_hangup), so nothing else flushes
	 * what CMD wrote to the shares (9p cache=loose keeps dirty pages)
	 * before the host stops the VM. */
	sync();
	if (ctl_write(s, KBX_CTL_EXIT, &ex, sizeof(ex)) == 0)
		wait_host_hangup(s);
	if (s->in_fd >= 0)
		close(s->in_fd);
	if (s->out_fd >= 0 && s->out_fd != s->in_fd)
		close(s->out_fd);
	if (sig_fd >= 0)
		close(sig_fd);
	signal(SIGPIPE, old_pipe);
	sigprocmask(SIG_SETMASK, &old, NULL);
	free(s);
	return r;
}

/* /dev/<vportNpM> of the port named `name`, into dev: 0 or -ENOENT. */
static int find_port(const char *name, char *dev, size_t devsz)
{
	DIR *d = opendir("/sys/class/virtio-ports");
	if (!d)
		return -ENOENT;
	struct dirent *e;
	int r = -ENOENT;
	while ((e = readdir(d)) && r < 0) {
		if (e->d_name[0] == '.')
			continue;
		char path[300], buf[128] = "";
		snprintf(path, sizeof(path), "/sys/class/virtio-ports/%s/name", e->d_name);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		ssize_t n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n > 0 && buf[n - 1] == '\n')
			n--;
		if (n > 0 && (size_t)n == strlen(name) && !memcmp(buf, name, (size_t)n)) {
			snprintf(dev, devsz, "/dev/%s", e->d_name);
			r = 0;
		}
	}
	closedir(d);
	return r;
}

bool kbx_console_wanted(const char *cmdline)
{
	static const char word[] = KBX_PARAM_CTL "=1";
	for (const char *p = cmdline; (p = strstr(p, word)); p += sizeof(word) - 1) {
		bool starts = p == cmdline || p[-1] == ' ' || p[-1] == '\n';
		char end = p[sizeof(word) - 1];
		if (starts && (end == 0 || end == ' ' || end == '\n'))
			return true;
	}
	return false;
}

int kbx_console_session(int timeout_ms)
{
	char tty[320], ctl[320];
	long long end = now_ms() + timeout_ms;
	/* The driver announces ports asynchronously (control queue work). */
	while (find_port(KBX_PORT_TTY, tty, sizeof(tty)) < 0 ||
	       find_port(KBX_PORT_CTL, ctl, sizeof(ctl)) < 0 || access(ctl, R_OK) < 0) {
		if (now_ms() > end)
			return -ENOENT;
		usleep(10000);
	}
	int tfd = open(tty, O_RDWR | O_CLOEXEC | O_NOCTTY);
	int cfd = open(ctl, O_RDWR | O_CLOEXEC | O_NOCTTY);
	int r = tfd < 0 || cfd < 0 ? -errno : kbx_console_run(tfd, cfd, "");
	if (tfd >= 0)
		close(tfd);
	if (cfd >= 0)
		close(cfd);
	return r;
}
