/* launch/session/hold.c - the holder: a sandbox's terminal, kept while no
 * terminal is attached (see session.h, "The sandbox's terminal").
 *
 * After session_hold there are three processes: the caller (the first
 * attached terminal, attach.c), the holder, and the launch on the
 * holder's pseudo-terminal.  The holder is a relay and nothing else: it
 * never reads a secret (its environment is emptied once the launch is
 * forked), never enters the VM's cage, and has no terminal of its own.
 *
 * Its event sources, every one in one poll():
 *   the pty's master      the launch's output, through the OSC 52 filter
 *                         (a copy also to NAME/clipboard): to the ring, the log and
 *                         the attached terminal (a terminal that does not
 *                         take it for HOLD_SEND_TIMEOUT_MS is dropped);
 *   the attached terminal keys, its size, a stop;
 *   the control socket    a connection, once the launch has its name,
 *                         pending until its first packet: a terminal
 *                         attaching (it takes over; the one before is told
 *                         HOLD_TAKEN), or bytes to type (then closed);
 *   the name pipe         the launch's session folder, once;
 *   a signalfd, SIGCHLD   the launch ended: its output drained, its status
 *                         to the terminal, the socket removed, exit;
 * and one timer: HOLD_NUDGE_MS after a terminal attached, its real size
 * (first one column narrower, so that the agent gets a SIGWINCH and
 * redraws the screen for it, as dtach's "winch" redraw does).
 */
#include "launch/session/session.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "common/term.h"
#include "common/text.h"
#include "common/util.h"
#include <openssl/evp.h>

#define HOLD_SEND_TIMEOUT_MS 5000
#define HOLD_KEYS_TIMEOUT_MS 2000	/* keys the launch does not read are dropped after this */
#define HOLD_NUDGE_MS 150

struct holder {
	int master;		/* the pty's master, or -1 once the launch's side closed */
	int client;		/* the attached terminal, or -1 */
	int pending;		/* a control connection that has not said what it is, or -1 */
	bool client_fresh;	/* attached by kvmbox attach: its first size nudges */
	int listener;		/* NAME/control, or -1 until named */
	int name_rd;		/* the launch's name pipe, or -1 once read */
	char dir[PATH_MAX];	/* what came through it so far */
	size_t dir_len;
	int dir_fd;		/* the session's folder, or -1 */
	int log_fd;		/* NAME/console.log, or -1 */
	size_t log_len;
	int sig;		/* signalfd: SIGCHLD */
	pid_t launch;
	unsigned char *ring;	/* the last HOLD_RING bytes of output */
	size_t ring_start, ring_len;
	struct winsize size;	/* the attached terminal's */
	struct osc52_filter osc52;	/* the output's OSC 52: copies kept, queries dropped */
	long long nudge_at;	/* when to set size, after a nudge; 0: none */
};

static long long mono_ms(void)
{
	return (long long)(now_ns() / 1000000u);
}

int hold_send(int fd, enum hold_msg type, const void *data, size_t len)
{
	unsigned char buf[HOLD_PACKET_MAX];
	if (len > sizeof(buf) - 1)
		return -EMSGSIZE;
	buf[0] = (unsigned char)type;
	if (len)
		memcpy(buf + 1, data, len);
	return send(fd, buf, len + 1, MSG_NOSIGNAL) < 0 ? -errno : 0;
}

static void drop_client(struct holder *h)
{
	if (h->client >= 0)
		close(h->client);
	h->client = -1;
}

/* Bytes for the attached terminal, in packets; a terminal that cannot
 * take them is dropped (it may attach again). */
static void to_client(struct holder *h, const unsigned char *p, size_t n)
{
	while (h->client >= 0 && n > 0) {
		size_t k = n < HOLD_PACKET_MAX - 1 ? n : HOLD_PACKET_MAX - 1;
		if (hold_send(h->client, HOLD_DATA, p, k) < 0)
			drop_client(h);
		p += k;
		n -= k;
	}
}

static void ring_add(struct holder *h, const unsigned char *p, size_t n)
{
	if (n >= HOLD_RING) {
		p += n - HOLD_RING;
		n = HOLD_RING;
	}
	for (size_t done = 0; done < n;) {
		size_t end = (h->ring_start + h->ring_len) % HOLD_RING;
		size_t k = HOLD_RING - end < n - done ? HOLD_RING - end : n - done;
		memcpy(h->ring + end, p + done, k);
		done += k;
		h->ring_len += k;
		if (h->ring_len > HOLD_RING) {
			h->ring_start = (h->ring_start + h->ring_len - HOLD_RING) % HOLD_RING;
			h->ring_len = HOLD_RING;
		}
	}
}

/* The ring, oldest first, as at most two pieces. */
static void ring_each(struct holder *h, void (*fn)(struct holder *, const unsigned char *, size_t))
{
	size_t first = HOLD_RING - h->ring_start < h->ring_len ? HOLD_RING - h->ring_start : h->ring_len;
	fn(h, h->ring + h->ring_start, first);
	if (h->ring_len > first)
		fn(h, h->ring, h->ring_len - first);
}

static void log_add(struct holder *h, const unsigned char *p, size_t n)
{
	if (h->log_fd < 0)
		return;
	if (h->log_len + n > HOLD_LOG_MAX) {
		/* the older half turns to .1; what is written goes on in a new file */
		close(h->log_fd);
		renameat(h->dir_fd, HOLD_LOG, h->dir_fd, HOLD_LOG ".1");
		h->log_fd = openat(h->dir_fd, HOLD_LOG, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
		h->log_len = 0;
		if (h->log_fd < 0)
			return;
	}
	while (n > 0) {
		ssize_t w = write(h->log_fd, p, n);
		if (w <= 0)
			return;	/* a full disk ends the log, not the sandbox */
		p += w;
		n -= (size_t)w;
		h->log_len += (size_t)w;
	}
}

/* The guest copied (OSC 52): the text, decoded, to NAME/clipboard. */
static void copied(void *opaque, const char *base64, size_t len)
{
	struct holder *h = opaque;
	if (h->dir_fd < 0 || len % 4 || len > OSC52_COPY_MAX)
		return;
	unsigned char *text = malloc(len / 4 * 3 + 1);
	int n = text ? EVP_DecodeBlock(text, (const unsigned char *)base64, (int)len) : -1;
	if (n < 0) {
		free(text);
		return;	/* not base64: the terminal makes nothing of it either */
	}
	for (size_t pad = len; pad > 0 && base64[pad - 1] == '=' && n > 0; pad--)
		n--;
	session_write_whole(h->dir_fd, HOLD_CLIPBOARD, text, (size_t)n, 0600);	/* or no clipboard */
	explicit_bzero(text, (size_t)n);
	free(text);
}

/* Output from the launch; false once its side of the pty is closed. */
static bool read_output(struct holder *h)
{
	unsigned char buf[HOLD_PACKET_MAX - 1 - OSC52_PREFIX_MAX], out[HOLD_PACKET_MAX - 1];
	for (int rounds = 0; rounds < 16; rounds++) {
		ssize_t n = read(h->master, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return true;
		if (n <= 0)
			return false;	/* EIO: every holder of the pty's side is gone */
		size_t k = osc52_filter(&h->osc52, buf, (size_t)n, out);
		ring_add(h, out, k);
		log_add(h, out, k);
		to_client(h, out, k);
	}
	return true;
}

/* Keys for the launch: written within HOLD_KEYS_TIMEOUT_MS, the rest
 * dropped (a launch that reads nothing must not stop the holder). */
static void to_launch(struct holder *h, const unsigned char *p, size_t n)
{
	long long until = mono_ms() + HOLD_KEYS_TIMEOUT_MS;
	while (n > 0 && h->master >= 0) {
		ssize_t w = write(h->master, p, n);
		if (w > 0) {
			p += w;
			n -= (size_t)w;
			continue;
		}
		if (w < 0 && errno != EAGAIN && errno != EINTR)
			return;
		long long left = until - mono_ms();
		if (left <= 0)
			return;
		struct pollfd pf = { .fd = h->master, .events = POLLOUT };
		poll(&pf, 1, (int)left);
	}
}

static void set_size(struct holder *h, unsigned short rows, unsigned short cols)
{
	struct winsize ws = { .ws_row = rows, .ws_col = cols };
	if (h->master >= 0)
		ioctl(h->master, TIOCSWINSZ, &ws);
}

static void from_client(struct holder *h)
{
	unsigned char buf[HOLD_PACKET_MAX];
	ssize_t n = recv(h->client, buf, sizeof(buf), MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		drop_client(h);	/* detached */
		return;
	}
	struct hold_size sz;
	switch (buf[0]) {
	case HOLD_DATA:
		to_launch(h, buf + 1, (size_t)n - 1);
		break;
	case HOLD_SIZE:
		if ((size_t)n - 1 != sizeof(sz) || h->master < 0)
			break;
		memcpy(&sz, buf + 1, sizeof(sz));
		if (sz.rows == 0 || sz.cols == 0)
			break;
		h->size = (struct winsize){ .ws_row = sz.rows, .ws_col = sz.cols };
		if (h->client_fresh) {
			h->client_fresh = false;
			set_size(h, sz.rows, sz.cols > 1 ? sz.cols - 1 : sz.cols + 1);
			h->nudge_at = mono_ms() + HOLD_NUDGE_MS;
		} else {
			set_size(h, sz.rows, sz.cols);
		}
		break;
	case HOLD_STOP:
		kill(h->launch, SIGTERM);
		break;
	case HOLD_ATTACH:	/* what a terminal says first; this one is attached */
		break;
	default:
		break;	/* unknown packets are ignored: a newer terminal's */
	}
}

static void replay(struct holder *h, const unsigned char *p, size_t n)
{
	to_client(h, p, n);
}

/* A control connection of the user's uid, pending until it says what it is. */
static void accept_connection(struct holder *h)
{
	int fd = accept4(h->listener, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return;
	struct ucred cr;
	socklen_t cl = sizeof(cr);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) < 0 || cr.uid != getuid()) {
		close(fd);
		return;
	}
	struct timeval tv = { .tv_sec = HOLD_SEND_TIMEOUT_MS / 1000 };
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (h->pending >= 0)
		close(h->pending);	/* one that never spoke gives way */
	h->pending = fd;
}

/* The pending connection's first packet: a terminal attaching (it takes
 * over), or bytes to type; anything else ends it. */
static void pending_said(struct holder *h)
{
	unsigned char buf[HOLD_PACKET_MAX];
	int fd = h->pending;
	ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	h->pending = -1;
	if (n > 0 && buf[0] == HOLD_TYPE) {
		to_launch(h, buf + 1, (size_t)n - 1);
		hold_send(fd, HOLD_EXIT, &(int32_t){ 0 }, sizeof(int32_t));
	}
	if (n <= 0 || buf[0] != HOLD_ATTACH) {
		close(fd);
		return;
	}
	if (h->client >= 0) {
		hold_send(h->client, HOLD_TAKEN, NULL, 0);
		drop_client(h);
	}
	h->client = fd;
	h->client_fresh = true;
	const char *name = strrchr(h->dir, '/') + 1;	/* named() checked it */
	hold_send(fd, HOLD_NAME, name, strlen(name));
	ring_each(h, replay);
}

static void log_ring(struct holder *h, const unsigned char *p, size_t n)
{
	log_add(h, p, n);
}

/* The launch named its folder: listen there, log there, tell the terminal. */
static void named(struct holder *h)
{
	h->dir[h->dir_len] = 0;
	const char *slash = strrchr(h->dir, '/');
	if (h->dir[0] != '/' || !slash || !session_name_valid(slash + 1))
		return;
	h->dir_fd = open(h->dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (h->dir_fd < 0)
		return;
	h->log_fd = openat(h->dir_fd, HOLD_LOG, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	ring_each(h, log_ring);
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	snprintf(a.sun_path, sizeof(a.sun_path), "/proc/self/fd/%d/" HOLD_CONTROL, h->dir_fd);
	unlinkat(h->dir_fd, HOLD_CONTROL, 0);
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(fd, 4) == 0) {
		h->listener = fd;
	} else if (fd >= 0) {
		close(fd);
	}
	if (h->client >= 0)
		hold_send(h->client, HOLD_NAME, slash + 1, strlen(slash + 1));
}

static void read_name(struct holder *h)
{
	ssize_t n = read(h->name_rd, h->dir + h->dir_len, sizeof(h->dir) - 1 - h->dir_len);
	if (n < 0 && errno == EINTR)
		return;
	if (n > 0) {
		h->dir_len += (size_t)n;
		if (h->dir_len < sizeof(h->dir) - 1)
			return;
	}
	close(h->name_rd);
	h->name_rd = -1;
	named(h);
}

/* The launch ended with st: the rest of its output, its status, done. */
static __attribute__((noreturn)) void finish(struct holder *h, int st)
{
	if (h->master >= 0)
		read_output(h);
	/* nothing to attach to from here on: gone before the terminal hears */
	if (h->dir_fd >= 0 && h->listener >= 0)
		unlinkat(h->dir_fd, HOLD_CONTROL, 0);
	int32_t status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	if (h->client >= 0)
		hold_send(h->client, HOLD_EXIT, &status, sizeof(status));
	_exit(0);
}

static __attribute__((noreturn)) void hold_loop(struct holder *h)
{
	for (;;) {
		struct pollfd pf[6];
		int n = 0, i_master = -1, i_client = -1, i_listen = -1, i_name = -1, i_pending = -1;
		pf[n] = (struct pollfd){ .fd = h->sig, .events = POLLIN };
		n++;
		if (h->master >= 0)
			pf[i_master = n++] = (struct pollfd){ .fd = h->master, .events = POLLIN };
		if (h->client >= 0)
			pf[i_client = n++] = (struct pollfd){ .fd = h->client, .events = POLLIN };
		if (h->listener >= 0)
			pf[i_listen = n++] = (struct pollfd){ .fd = h->listener, .events = POLLIN };
		if (h->name_rd >= 0)
			pf[i_name = n++] = (struct pollfd){ .fd = h->name_rd, .events = POLLIN };
		if (h->pending >= 0)
			pf[i_pending = n++] = (struct pollfd){ .fd = h->pending, .events = POLLIN };
		int timeout = -1;
		if (h->nudge_at) {
			long long left = h->nudge_at - mono_ms();
			timeout = left > 0 ? (int)left : 0;
		}
		if (poll(pf, (nfds_t)n, timeout) < 0 && errno != EINTR)
			_exit(1);
		if (h->nudge_at && mono_ms() >= h->nudge_at) {
			h->nudge_at = 0;
			set_size(h, h->size.ws_row, h->size.ws_col);
		}
		if (i_master >= 0 && pf[i_master].revents && !read_output(h)) {
			close(h->master);
			h->master = -1;
		}
		if (i_client >= 0 && pf[i_client].revents && h->client >= 0)
			from_client(h);
		if (i_pending >= 0 && pf[i_pending].revents && h->pending >= 0)
			pending_said(h);
		if (i_listen >= 0 && pf[i_listen].revents)
			accept_connection(h);
		if (i_name >= 0 && pf[i_name].revents)
			read_name(h);
		if (pf[0].revents) {
			struct signalfd_siginfo si;
			while (read(h->sig, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
			}
			int st;
			if (waitpid(h->launch, &st, WNOHANG) == h->launch)
				finish(h, st);
		}
	}
}

/* In the launch: the pty's other side as its controlling terminal and
 * standard streams, in a session of its own. */
static int enter_pty(const char *slave_path)
{
	if (setsid() < 0)
		return -errno;
	int fd = open(slave_path, O_RDWR);
	if (fd < 0)
		return -errno;
	if (ioctl(fd, TIOCSCTTY, 0) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	for (int i = 0; i <= 2; i++)
		if (dup2(fd, i) < 0)
			return -errno;
	if (fd > 2)
		close(fd);
	return 0;
}

/* In the holder, before its loop: no terminal, no environment, no
 * standard streams of the user's. */
static void become_holder(void)
{
	for (char **e = environ; *e; e++)	/* API keys may be among them */
		explicit_bzero(*e, strlen(*e));
	clearenv();
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null >= 0) {
		for (int i = 0; i <= 2; i++)
			dup2(null, i);
		if (null > 2)
			close(null);
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGQUIT, SIG_IGN);
}

/* In the holder: the pty, the launch, then the loop; never returns to
 * the caller.  Returns 0 in the launch. */
static int start_holder(int client, int name_rd, int name_wr, int master, const char *slave,
			const struct winsize *ws, int *name_fd)
{
	if (setsid() < 0)
		_exit(1);
	struct holder *h = calloc(1, sizeof(*h));
	if (!h || !(h->ring = malloc(HOLD_RING)))
		_exit(1);
	ioctl(master, TIOCSWINSZ, ws);
	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, NULL);
	pid_t launch = fork();
	if (launch < 0)
		_exit(1);
	if (launch == 0) {
		sigprocmask(SIG_UNBLOCK, &chld, NULL);
		close(master);
		close(client);
		close(name_rd);
		free(h->ring);
		free(h);
		int r = enter_pty(slave);
		if (r < 0)
			_exit(1);
		*name_fd = name_wr;
		return 0;
	}
	close(name_wr);
	become_holder();
	*h = (struct holder){ .master = master, .client = client, .pending = -1, .listener = -1,
			      .name_rd = name_rd, .dir_fd = -1, .log_fd = -1, .launch = launch, .ring = h->ring,
			      .size = *ws };
	h->osc52.on_copy = copied;
	h->osc52.opaque = h;
	h->sig = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
	fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
	struct timeval tv = { .tv_sec = HOLD_SEND_TIMEOUT_MS / 1000 };
	setsockopt(client, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (h->sig < 0)
		_exit(1);
	hold_loop(h);
}

int session_hold(int *client, int *name_fd)
{
	struct winsize ws = { .ws_row = 24, .ws_col = 80 };
	uint16_t rows, cols;
	if (term_size(STDOUT_FILENO, &rows, &cols) == 0 && rows && cols)
		ws = (struct winsize){ .ws_row = rows, .ws_col = cols };
	/* the pty here, where a failure can still be told (no /dev/pts):
	 * the launch then runs without a holder */
	char slave[128];
	int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0)
		return -errno;
	if (grantpt(master) < 0 || unlockpt(master) < 0 || ptsname_r(master, slave, sizeof(slave)) != 0) {
		int e = errno ? -errno : -EIO;
		close(master);
		return e;
	}
	int sv[2] = { -1, -1 }, np[2] = { -1, -1 };
	pid_t holder = -1;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0 && pipe2(np, O_CLOEXEC) == 0) {
		fflush(NULL);
		holder = fork();
	}
	if (holder == 0) {
		close(sv[0]);
		return start_holder(sv[1], np[0], np[1], master, slave, &ws, name_fd);
	}
	int e = holder < 0 ? -errno : 0;
	close(master);
	close(sv[1]);
	close(np[0]);
	close(np[1]);
	if (holder < 0) {
		close(sv[0]);
		return e;
	}
	*client = sv[0];
	return 1;
}

void session_hold_announce(int name_fd, const char *dir)
{
	if (name_fd < 0)
		return;
	size_t n = strlen(dir);
	if (write(name_fd, dir, n) != (ssize_t)n) {
		/* the holder then has no folder: no attach, no log */
	}
	close(name_fd);
}
