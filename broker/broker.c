/* broker/broker.c - the broker's side (see broker.h): start the VMM afresh
 * with a reduced environment, then serve the flows it hands over until it
 * ends.
 *
 * Event sources, all on one loop on the main thread:
 *   ctl     the control socket: FLOW messages (checked, then the
 *           descriptor goes to the proxy); hang-up when the VMM is gone.
 *   pidfd   the VMM ended: reap it, stop the loop.
 *   signals SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 through a
 *           signalfd: passed on to the VMM when another process sent them
 *           to the broker, ignored when the terminal (the kernel) did, since
 *           the VMM is in the same process group and has them already.
 *   proxy   its own connections (proxy/relay.c).
 */
#include "broker/broker.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "net/policy.h"

extern char **environ;

/* What the VMM reads from its environment, and nothing else: exact names,
 * and the LC_ prefix. */
static const char *const vmm_env_names[] = {
	"HOME", "PATH", "TERM", "COLORTERM", "LANG", "LANGUAGE", "TZ",
	"XDG_CACHE_HOME", "XDG_STATE_HOME", "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME",
	"KVMBOX_CACHE", "KVMBOX_KERNEL", "KVMBOX_INITRD", "KVMBOX_LOG", "KVMBOX_SECCOMP",
	"KVMBOX_FAULT_SECCOMP", "KVMBOX_FAULT_OPEN", "KVMBOX_FAULT_EGRESS",
	"KVMBOX_FAULT_CA", "KVMBOX_FAULT_SAVE",	/* test builds only act on the KVMBOX_FAULT_ ones */
	"ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS",
	"SSL_CERT_FILE", "SSL_CERT_DIR",	/* the cage's Landlock reads them */
};

static bool vmm_env_allowed(const char *entry)
{
	const char *eq = strchr(entry, '=');
	if (!eq)
		return false;
	size_t n = (size_t)(eq - entry);
	if (n > 3 && !strncmp(entry, "LC_", 3))
		return true;
	for (size_t i = 0; i < ARRAY_SIZE(vmm_env_names); i++)
		if (strlen(vmm_env_names[i]) == n && !strncmp(entry, vmm_env_names[i], n))
			return true;
	return false;
}

int broker_vmm_env(char *const *env, const char **out, size_t cap)
{
	size_t n = 0;
	for (; env && *env; env++) {
		if (!vmm_env_allowed(*env))
			continue;
		if (n + 1 >= cap)
			return -E2BIG;
		out[n++] = *env;
	}
	if (!cap)
		return -E2BIG;
	out[n] = NULL;
	return (int)n;
}

/* An IP literal, NUL-terminated within the field. */
static bool ip_literal(const char *s, size_t cap)
{
	if (!memchr(s, 0, cap))
		return false;
	unsigned char a[16];
	return inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1;
}

/* NUL-terminated within the field, printable ASCII before it (it becomes
 * a response body line). */
static bool printable_line(const char *s, size_t cap)
{
	const char *end = memchr(s, 0, cap);
	if (!end)
		return false;
	for (; s < end; s++)
		if (*s < 0x20 || *s > 0x7e)
			return false;
	return true;
}

int broker_flow_check(const void *msg, size_t len, unsigned nfds)
{
	struct broker_flow m;
	if (len != sizeof(m) || nfds != 1)
		return -EPROTO;
	memcpy(&m, msg, sizeof(m));
	if (m.type != BROKER_FLOW || m.version != BROKER_VERSION || !m.dst.port ||
	    !ip_literal(m.dst.addr, sizeof(m.dst.addr)) || !memchr(m.dst.name, 0, sizeof(m.dst.name)) ||
	    (m.dst.name[0] && !host_valid(m.dst.name, strlen(m.dst.name))) ||
	    !printable_line(m.dst.deny, sizeof(m.dst.deny)))
		return -EPROTO;
	return 0;
}

/* Everything one broker owns (the loop ops point into it). */
struct broker {
	const struct broker_launch *bl;
	struct loop loop;
	bool loop_ready;
	struct proxy *px;
	int ctl;		/* our end of the control socket */
	int pidfd;
	pid_t pid;
	int sig_fd;
	int status;		/* the VMM's, once reaped */
	bool reaped;
	struct loop_op ctl_op, pid_op, sig_op;
};

/* A Unix stream socket, made non-blocking (the VMM's word is not taken
 * for it): 0 or -EPROTO. */
static int flow_socket_check(int fd)
{
	struct stat st;
	int type = 0, domain = 0;
	socklen_t l1 = sizeof(type), l2 = sizeof(domain);
	if (fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode) ||
	    getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l1) < 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &l2) < 0 || type != SOCK_STREAM ||
	    domain != AF_UNIX)
		return -EPROTO;
	int fl = fcntl(fd, F_GETFL);
	return fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ? -EPROTO : 0;
}

int broker_flow_recv(int ctl, struct broker_flow *m, int *fd)
{
	union {
		char buf[CMSG_SPACE(4 * sizeof(int))];
		struct cmsghdr align;
	} cbuf;
	struct iovec iov = { m, sizeof(*m) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf.buf,
			     .msg_controllen = sizeof(cbuf.buf) };
	ssize_t n = recvmsg(ctl, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n <= 0)
		return n == 0 ? 0 : -errno;
	int fds[4];
	unsigned nfds = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k && nfds < ARRAY_SIZE(fds); i++)
			memcpy(&fds[nfds++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
	}
	if ((mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || broker_flow_check(m, (size_t)n, nfds) < 0 ||
	    flow_socket_check(fds[0]) < 0) {
		for (unsigned i = 0; i < nfds; i++)
			close(fds[i]);
		return -EPROTO;
	}
	*fd = fds[0];
	return 1;
}

/* One message from the VMM: a checked flow goes to the proxy; anything
 * else is refused with its descriptors.  false when the socket is done. */
static bool ctl_receive(struct broker *b)
{
	struct broker_flow m;
	int fd;
	int r = broker_flow_recv(b->ctl, &m, &fd);
	if (r == -EPROTO)
		log_once(LOG_WARN, "%s: broker: refused a malformed message from the VMM", b->bl->vmm_argv[0]);
	if (r <= 0)
		return r == -EAGAIN || r == -EINTR || r == -EPROTO;
	struct stream *ps = proxy_sock_stream(&b->loop, fd, false);
	if (!ps) {
		close(fd);
		return true;
	}
	proxy_take_stream(b->px, ps, &m.dst);	/* owns ps, even on error */
	return true;
}

static void on_ctl(struct loop *loop, struct loop_op *op, int res, uint32_t flags)
{
	(void)loop;
	(void)flags;
	struct broker *b = op->opaque;
	if (res < 0)
		return;
	bool open = true;
	if (res & POLLIN)
		for (int i = 0; i < 64 && open; i++)	/* the rest on the next turn */
			open = ctl_receive(b);
	if (!open || ((res & (POLLHUP | POLLERR)) && !(res & POLLIN)))
		loop_cancel(&b->loop, &b->ctl_op);	/* the VMM is going; the pidfd says when */
}

static void on_exit_of_vmm(struct loop *loop, struct loop_op *op, int res, uint32_t flags)
{
	(void)flags;
	struct broker *b = op->opaque;
	if (res < 0 || b->reaped)
		return;
	siginfo_t si = { 0 };
	if (waitid((idtype_t)P_PIDFD, (id_t)b->pidfd, &si, WEXITED | WNOHANG) < 0 || !si.si_pid)
		return;
	b->reaped = true;
	b->status = si.si_code == CLD_EXITED ? si.si_status : 128 + si.si_status;
	loop_cancel(loop, &b->pid_op);
	loop_stop(loop, 0);
}

/* A suspend asked from outside: the CA first (the resumed guest trusts
 * it), so the VMM saves a VM only a proxy with this CA can serve.  0; or
 * -errno after one line, and the VM is not asked (it runs on). */
static int keep_ca(struct broker *b)
{
	const char *cmd = b->bl->vmm_argv[0];
	if (!b->bl->suspend_ca) {
		log_warn("%s: asked to suspend, but this sandbox cannot be (it was not started to be)", cmd);
		return -EPERM;
	}
	int r = proxy_save_ca(b->px, b->bl->suspend_ca);
	if (r < 0)
		log_err("%s: not suspended: cannot keep the proxy's CA in %s: %s", cmd, b->bl->suspend_ca,
			strerror(-r));
	return r;
}

static void on_signal(struct loop *loop, struct loop_op *op, int res, uint32_t flags)
{
	(void)loop;
	(void)flags;
	struct broker *b = op->opaque;
	if (res < 0)
		return;
	struct signalfd_siginfo si;
	while (read(b->sig_fd, &si, sizeof(si)) == sizeof(si))
		if ((si.ssi_code == SI_USER || si.ssi_code == SI_QUEUE) && (pid_t)si.ssi_pid != b->pid &&
		    !b->reaped && ((int)si.ssi_signo != VM_SIG_SUSPEND || keep_ca(b) == 0))
			syscall(SYS_pidfd_send_signal, b->pidfd, (int)si.ssi_signo, NULL, 0);
}

/* Passed on to the VMM, with VM_SIG_SUSPEND (not a constant: see
 * add_passed_signals). */
static const int passed_signals[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 };

static void add_passed_signals(sigset_t *set)
{
	for (size_t i = 0; i < ARRAY_SIZE(passed_signals); i++)
		sigaddset(set, passed_signals[i]);
	sigaddset(set, VM_SIG_SUSPEND);
}

/* Start the VMM: `kvmbox .vm ARGV...` from this very binary, with the
 * control socket at BROKER_CTL_FD, no other descriptor beyond stdio, the
 * signals this process blocks unblocked and at their defaults, and the
 * allow-listed environment.  0 or -errno. */
static int spawn_vmm(struct broker *b, int vmm_end)
{
	size_t argc = 0;
	while (b->bl->vmm_argv[argc])
		argc++;
	const char **argv = calloc(argc + 3, sizeof(*argv));
	size_t envcap = 256;
	const char **envp = calloc(envcap, sizeof(*envp));
	int r = -ENOMEM;
	if (!argv || !envp)
		goto out;
	argv[0] = "kvmbox";
	argv[1] = ".vm";
	for (size_t i = 0; i < argc; i++)
		argv[i + 2] = b->bl->vmm_argv[i];
	if ((r = broker_vmm_env(environ, envp, envcap)) < 0)
		goto out;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, deflt;
	sigemptyset(&none);
	sigemptyset(&deflt);
	add_passed_signals(&deflt);
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&at);
	/* above both targets first: a record at 3 would be overwritten */
	int denials = b->bl->denials_fd > 2 ? fcntl(b->bl->denials_fd, F_DUPFD_CLOEXEC, BROKER_DENIALS_FD + 1)
					    : -1;
	posix_spawn_file_actions_adddup2(&fa, vmm_end, BROKER_CTL_FD);
	if (denials >= 0)
		posix_spawn_file_actions_adddup2(&fa, denials, BROKER_DENIALS_FD);
	posix_spawn_file_actions_addclosefrom_np(&fa, denials >= 0 ? BROKER_DENIALS_FD + 1 : BROKER_CTL_FD + 1);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &deflt);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	r = -posix_spawn(&b->pid, "/proc/self/exe", &fa, &at, (char *const *)argv, (char *const *)envp);
	if (denials >= 0)
		close(denials);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	if (r == 0) {
		b->pidfd = (int)syscall(SYS_pidfd_open, b->pid, 0);
		if (b->pidfd < 0) {	/* our own child: only EMFILE, ENOMEM */
			r = -errno;
			kill(b->pid, SIGKILL);
			waitpid(b->pid, NULL, 0);
			b->pid = 0;
		}
	}
out:
	free(argv);
	free(envp);
	return r;
}

/* The signals the broker passes on, blocked and read through a signalfd
 * (blocked before the VMM starts, so none is lost in between). */
static int signals_block(struct broker *b)
{
	sigset_t set;
	sigemptyset(&set);
	add_passed_signals(&set);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -errno;
	b->sig_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	return b->sig_fd < 0 ? -errno : 0;
}

static int send_hello(struct broker *b)
{
	struct broker_hello *h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	int fd = memfd_create("kvmbox-ca", MFD_CLOEXEC);
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	int r = fd < 0 ? -errno : proxy_write_ca(b->px, path);
	ssize_t n = r < 0 ? r : pread(fd, h->ca_pem, sizeof(h->ca_pem), 0);
	if (fd >= 0)
		close(fd);
	if (n <= 0 || (size_t)n == sizeof(h->ca_pem)) {
		free(h);
		return n < 0 ? (int)n : -EIO;
	}
	h->type = BROKER_HELLO;
	h->version = BROKER_VERSION;
	h->ca_len = (uint32_t)n;
	h->denials_log = b->bl->denials_fd > 2;
	h->self_test_probes = b->bl->self_test;
	if (b->bl->prof)
		h->prof = *b->bl->prof;
	r = send(b->ctl, h, sizeof(*h), MSG_NOSIGNAL) == (ssize_t)sizeof(*h) ? 0 : -errno;
	free(h);
	return r;
}

/* Set up, start the VMM, enter the cage: 0, or 1 after one line. */
static int broker_start(struct broker *b)
{
	const char *cmd = b->bl->vmm_argv[0];
	int sv[2], r;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		log_err("%s: broker: socketpair: %s", cmd, strerror(errno));
		return 1;
	}
	b->ctl = sv[0];
	if ((r = loop_init(&b->loop, 1024)) < 0) {
		close(sv[1]);
		log_err("%s: broker: io_uring: %s", cmd, strerror(-r));
		return 1;
	}
	b->loop_ready = true;
	if (proxy_new(&b->loop, b->bl->proxy, &b->px) < 0) {	/* it logs its own line */
		close(sv[1]);
		return 1;
	}
	if ((r = send_hello(b)) < 0 || (r = signals_block(b)) < 0 || (r = spawn_vmm(b, sv[1])) < 0) {
		close(sv[1]);
		log_err("%s: cannot start the VM's process: %s", cmd, strerror(-r));
		return 1;
	}
	close(sv[1]);
	const struct cage_config cc = { .paths = b->bl->paths, .npaths = b->bl->npaths,
					.roles = CAGE_BROKER_ROLES };
	char why[256];
	if (cage_process(&cc, why, sizeof(why)) < 0) {
		log_err("%s: broker: %s", cmd, why);
		return 1;	/* the VMM sees the control socket close and stops */
	}
	b->ctl_op = (struct loop_op){ .cb = on_ctl, .opaque = b };
	b->pid_op = (struct loop_op){ .cb = on_exit_of_vmm, .opaque = b };
	b->sig_op = (struct loop_op){ .cb = on_signal, .opaque = b };
	if (loop_poll(&b->loop, &b->ctl_op, b->ctl, POLLIN) < 0 ||
	    loop_poll(&b->loop, &b->pid_op, b->pidfd, POLLIN) < 0 ||
	    loop_poll(&b->loop, &b->sig_op, b->sig_fd, POLLIN) < 0) {
		log_err("%s: broker: cannot watch the VM's process", cmd);
		return 1;
	}
	return 0;
}

/* Whatever happened, the VMM is reaped before the broker returns: told to
 * stop by the control socket closing, killed if it has not within 5 s. */
static void broker_stop(struct broker *b)
{
	struct loop_op *const ops[] = { &b->ctl_op, &b->pid_op, &b->sig_op };
	if (b->loop_ready)
		loop_cancel_settle(&b->loop, ops, ARRAY_SIZE(ops), 1000);
	if (b->ctl >= 0)
		close(b->ctl);
	if (b->pidfd >= 0 && !b->reaped) {
		struct pollfd p = { .fd = b->pidfd, .events = POLLIN };
		if (poll(&p, 1, 5000) != 1)
			syscall(SYS_pidfd_send_signal, b->pidfd, SIGKILL, NULL, 0);
		siginfo_t si;
		waitid((idtype_t)P_PIDFD, (id_t)b->pidfd, &si, WEXITED);
		b->status = 1;
	}
	if (b->px)
		proxy_free(b->px);
	if (b->loop_ready)
		loop_fini(&b->loop);
	if (b->pidfd >= 0)
		close(b->pidfd);
	if (b->sig_fd >= 0)
		close(b->sig_fd);
}

int broker_run(const struct broker_launch *bl)
{
	struct broker *b = calloc(1, sizeof(*b));
	if (!b) {
		log_err("out of memory");
		return 1;
	}
	*b = (struct broker){ .bl = bl, .ctl = -1, .pidfd = -1, .sig_fd = -1, .status = 1 };
	if (broker_start(b) == 0)
		loop_run(&b->loop);
	broker_stop(b);
	int status = b->status;
	free(b);
	return status;
}
