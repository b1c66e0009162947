/* vmm/cli/cmd_net_serve.c - `kvmbox net-serve`: the user-mode network stack
 * on a TAP device inside an existing network namespace.
 *
 * The host transport for tests and auditors: the namespace plays the guest
 * (it configures itself with the stack's DHCP) and the host kernel's TCP/IP
 * is the peer.  The TAP is created from inside the namespace (the main
 * thread enters it with setns, opens /dev/net/tun, and comes back before any
 * host socket is made), so every socket the stack opens lives in the
 * caller's namespace.  The TAP is not persistent: it disappears when
 * net-serve exits on SIGINT/SIGTERM.  --poll-us N bounds the adaptive
 * polling of the TAP and the stack's sockets between waits
 * (loop_run_polled; default 128 microseconds on a host with more than two
 * CPUs for it, else 0: never poll; common/loop.h loop_poll_us_default).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>
#include <sys/uio.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "common/loop.h"
#include "common/util.h"
#include "guest/abi/console.h"
#include "devices/virtio/net.h"
#include "common/listeners.h"
#include "net/net.h"
#include "vmm/cli/cli.h"
#include "vmm/cli/net_args.h"

/* The TAP carries a struct virtio_net_hdr before every frame
 * (IFF_VNET_HDR) with checksum and TSO offloads on, so the namespace sends
 * its TCP segments up to 64 KiB with partial checksums (completed here) and
 * the stack hands 64 KiB super-segments back for the kernel to split. */
struct tap_ctx {
	int fd;
	struct net_stack *ns;
	struct loop_op op;
	bool stopping;		/* shutting down: the TAP's poll is not re-armed */
	uint8_t buf[sizeof(struct virtio_net_hdr) + 65535 + 14 + 40];
};

/* --auto-publish: the namespace's TCP listeners, read from its
 * /proc/net/tcp{,6} (opened from inside the namespace, so the files keep
 * showing that namespace), are published on the host's 127.0.0.1 at the
 * same port once a second (common/listeners.c parses them, as for a
 * VM's init).  Listeners bound to the namespace's loopback only are not
 * mirrored.  A port stays published after its listener goes
 * (connections then get a RST from the guest). */
struct autopub {
	int fd[2];		/* /proc/net/tcp, /proc/net/tcp6 of the namespace */
	struct net_stack *ns;
	struct loop_op op;
	struct __kernel_timespec ts;
	struct net_autopub ap;	/* ports published or refused */
};

static void autopub_scan_file(struct autopub *a, int fd, bool v6)
{
	static char buf[1 << 16];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return;
	buf[n] = 0;
	uint16_t ports[KBX_LISTENERS_MAX];
	unsigned np = 0;
	listeners_parse(buf, v6, ports, &np, KBX_LISTENERS_MAX);
	net_autopublish(a->ns, &a->ap, ports, np);
}

static void autopub_tick(struct loop *loop, struct loop_op *op, int res, uint32_t flags)
{
	(void)res;
	(void)flags;
	struct autopub *a = op->opaque;
	if (loop->stop)
		return;
	for (int i = 0; i < 2; i++)
		if (a->fd[i] >= 0)
			autopub_scan_file(a, a->fd[i], i == 1);
	loop_timer(loop, &a->op, &a->ts, 1000000000ull);
}

/* The loop a signal handler stops; signal handlers can take no argument. */
static struct loop *signal_loop;

static void on_signal(int sig)
{
	(void)sig;
	if (signal_loop)
		loop_stop_async(signal_loop, 0);
}

static void tap_write(struct tap_ctx *t, const struct virtio_net_hdr *h, const void *frame, size_t len)
{
	struct iovec iov[2] = { { (void *)h, sizeof(*h) }, { (void *)frame, len } };
	if (writev(t->fd, iov, 2) < 0)
		log_once(LOG_DEBUG, "net-serve: tap write: %s", strerror(errno));
}

static void tap_output(void *opaque, const void *frame, size_t len)
{
	static const struct virtio_net_hdr h = { .gso_type = VIRTIO_NET_HDR_GSO_NONE };
	tap_write(opaque, &h, frame, len);
}

static void tap_output_gso(void *opaque, const void *frame, size_t len, const struct net_gso *g)
{
	struct virtio_net_hdr h;
	vnet_hdr_from_gso(&h, g);
	tap_write(opaque, &h, frame, len);
}

/* Feed every frame the TAP holds to the stack: how many there were. */
static int tap_drain(struct tap_ctx *t)
{
	const size_t hl = sizeof(struct virtio_net_hdr);
	int frames = 0;
	for (;;) {
		ssize_t n = read(t->fd, t->buf, sizeof(t->buf));
		if (n <= 0)
			break;
		frames++;
		net_input_vnet(t->ns, t->buf, (size_t)n, hl);	/* a bad header: dropped */
	}
	if (frames)
		net_flush(t->ns);
	return frames;
}

/* The TAP's poll is one-shot, re-armed after each drain (loop_poll_once):
 * a multishot one left a completion behind for every frame a drain had
 * already taken, five reads answering EAGAIN a guest connection. */
static void tap_readable(struct loop *loop, struct loop_op *op, int res, uint32_t flags)
{
	(void)flags;
	struct tap_ctx *t = op->opaque;
	if (t->stopping || res == -ECANCELED)
		return;
	if (res < 0) {		/* the TAP failed: no frame would come again */
		loop_stop(loop, res);	/* reported as the loop's error */
		return;
	}
	tap_drain(t);
	if (loop_poll_once(loop, op, t->fd, POLLIN) < 0)
		loop_stop(loop, -EBUSY);
}

/* loop_poller.poll: frames on the TAP (the stack's sockets complete on
 * the loop, which the polling window runs too). */
static int tap_poll(void *arg)
{
	return tap_drain(arg) > 0;
}

/* Create the TAP inside netns and bring it up with mtu: fd or -errno.
 * proc_fds (may be NULL) get the namespace's /proc/net/tcp and tcp6. */
static int tap_create_in_netns(const char *netns, const char *ifname, unsigned mtu, int *proc_fds)
{
	char path[256];
	if (strchr(netns, '/'))
		snprintf(path, sizeof(path), "%s", netns);
	else
		snprintf(path, sizeof(path), "/run/netns/%s", netns);
	int target = open(path, O_RDONLY | O_CLOEXEC);
	if (target < 0)
		return -errno;
	int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (self < 0) {
		int e = -errno;
		close(target);
		return e;
	}
	int r = 0, fd = -1;
	if (setns(target, CLONE_NEWNET) < 0) {
		r = -errno;
		goto out;
	}
	fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		goto back;
	}
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", ifname);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		r = -errno;
		goto back;
	}
	if (ioctl(fd, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6) < 0) {
		r = -errno;
		goto back;
	}
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s >= 0) {
		ifr.ifr_mtu = (int)mtu;
		if (ioctl(s, SIOCSIFMTU, &ifr) < 0)
			r = -errno;
		if (r == 0 && ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
			ifr.ifr_flags |= IFF_UP;
			if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
				r = -errno;
		}
		close(s);
	}
	if (proc_fds) {
		proc_fds[0] = open("/proc/thread-self/net/tcp", O_RDONLY | O_CLOEXEC);
		proc_fds[1] = open("/proc/thread-self/net/tcp6", O_RDONLY | O_CLOEXEC);
	}
back:
	if (setns(self, CLONE_NEWNET) < 0 && r == 0)
		r = -errno;	/* cannot happen short of a kernel bug; refuse to go on */
out:
	close(self);
	close(target);
	if (r < 0) {
		if (fd >= 0)
			close(fd);
		return r;
	}
	return fd;
}

static void usage(void)
{
	fprintf(stderr, "usage: kvmbox net-serve --netns NAME [--tap IFNAME] [--poll-us N] "
			"[--auto-publish] [flags]\n%s", net_opts_usage);
}

/* --netns, --tap and --poll-us are net-serve's own; the rest is
 * net_args.c's. */
static int parse_args(int argc, char **argv, const char **netns, const char **tap,
		      uint64_t *poll_us, struct net_opts *no)
{
	char err[200];
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		int t = net_opts_take(no, NET_ARGS_SERVE, argc, argv, &i, err, sizeof(err));
		if (t < 0) {
			fprintf(stderr, "kvmbox: net-serve: %s\n", err);
			return EXIT_USAGE;
		}
		if (t > 0)
			continue;
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage();
			return 0;
		}
		const char *v = NULL;
		if (cli_take_value(argc, argv, &i, "--poll-us", &v)) {
			if (cli_parse_poll_us("net-serve", v, poll_us) < 0)
				return EXIT_USAGE;
			continue;
		}
		const char **dst = !strcmp(a, "--netns") ? netns : !strcmp(a, "--tap") ? tap : NULL;
		if (!dst || i + 1 >= argc) {
			usage();
			return EXIT_USAGE;
		}
		*dst = argv[++i];
	}
	if (!*netns || strlen(*tap) >= IFNAMSIZ) {
		usage();
		return EXIT_USAGE;
	}
	return -1;
}

int cmd_net_serve(int argc, char **argv)
{
	static struct policy pol;	/* large; lives for the whole command */
	static struct net_opts no;	/* argv pointers; lives for the whole command */
	const char *netns = NULL, *tap = "kvmbox0";
	uint64_t poll_us = loop_poll_us_default(2);
	static struct autopub ap = { .fd = { -1, -1 } };
	int status = parse_args(argc, argv, &netns, &tap, &poll_us, &no);
	if (status >= 0)
		return status;
	bool auto_publish = no.auto_publish;
	struct net_config cfg;
	net_config_default(&cfg);
	policy_init(&pol);
	if (net_opts_apply(&no, &pol, &cfg) < 0) {
		fprintf(stderr, "kvmbox: net-serve: bad network flags\n");
		return EXIT_USAGE;
	}
	int r = policy_watch_host_addrs(&pol);
	if (r < 0) {	/* without them the host's own addresses would look public */
		fprintf(stderr, "kvmbox: net-serve: cannot watch the host's addresses: %s\n", strerror(-r));
		return 1;
	}

	static struct tap_ctx t;
	t.fd = tap_create_in_netns(netns, tap, cfg.mtu, auto_publish ? ap.fd : NULL);
	if (t.fd < 0) {
		fprintf(stderr, "kvmbox: net-serve: cannot create TAP %s in netns %s: %s\n", tap, netns,
			strerror(-t.fd));
		return 1;
	}
	static struct loop loop;
	r = loop_init(&loop, 512);
	if (r < 0) {
		fprintf(stderr, "kvmbox: net-serve: io_uring: %s\n", strerror(-r));
		close(t.fd);
		return 1;
	}
	r = net_create(&t.ns, &loop, &cfg, tap_output, &t);
	if (r < 0) {
		fprintf(stderr, "kvmbox: net-serve: %s\n", strerror(-r));
		close(t.fd);
		loop_fini(&loop);
		return 1;
	}
	net_set_gso_output(t.ns, tap_output_gso);
	status = 0;
	const char *bad = NULL;
	r = net_opts_publish(&no, t.ns, &bad);
	if (r < 0) {
		fprintf(stderr, "kvmbox: net-serve: --publish %s: %s\n", bad, strerror(-r));
		status = r == -EINVAL ? EXIT_USAGE : 1;
		goto out;
	}
	if (auto_publish) {
		ap.ns = t.ns;
		ap.op.cb = autopub_tick;
		ap.op.opaque = &ap;
		loop_timer(&loop, &ap.op, &ap.ts, 100000000ull);
	}
	t.op.cb = tap_readable;
	t.op.opaque = &t;
	r = loop_poll_once(&loop, &t.op, t.fd, POLLIN);
	if (r < 0) {
		fprintf(stderr, "kvmbox: net-serve: poll the TAP: %s\n", strerror(-r));
		status = 1;
		goto out;
	}
	signal_loop = &loop;
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	log_info("net-serve: %s in netns %s, guest 10.0.2.15, gateway 10.0.2.2, mtu %u", tap, netns, cfg.mtu);
	fprintf(stderr, "kvmbox: net-serve: ready\n");
	struct loop_poller poller = { .poll = tap_poll, .arg = &t, .max_ns = poll_us * 1000 };
	r = loop_run_polled(&loop, &poller);
	if (r < 0) {
		fprintf(stderr, "kvmbox: net-serve: loop: %s\n", strerror(-r));
		status = 1;
	}
out:
	signal_loop = NULL;
	/* Let io_uring drop its reference to the TAP so the device is gone
	 * when we exit (a non-persistent TAP dies with its last reference). */
	t.stopping = true;
	struct loop_op *const tap_ops[] = { &t.op };
	loop_cancel_settle(&loop, tap_ops, 1, 500);
	for (int i = 0; i < 2; i++)
		if (ap.fd[i] >= 0)
			close(ap.fd[i]);
	static char denials[1536];
	uint64_t nd = net_denials_line(t.ns, denials, sizeof(denials));
	if (nd)
		fprintf(stderr, "kvmbox: net-serve: the egress policy refused %llu connection%s or lookup%s: %s\n",
			(unsigned long long)nd, nd == 1 ? "" : "s", nd == 1 ? "" : "s", denials);
	net_destroy(t.ns);
	policy_fini(&pol);
	close(t.fd);
	loop_fini(&loop);
	return status;
}
