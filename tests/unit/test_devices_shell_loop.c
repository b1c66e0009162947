/* tests/unit/test_devices_shell_loop.c - `kvmbox shell` end to end minus KVM
 * and the guest kernel: the host end (vmm/cli/shell_session.c) on the real
 * virtio-console device, the pretend guest (tests/harness) playing Linux's
 * virtio_console driver, and the real guest end (guest/init/console.c) in a
 * child process on socketpairs that stand in for /dev/vportNpM.  The bridge
 * below moves bytes between the ports' virtqueues and those sockets the way
 * the guest kernel moves them between virtqueues and the port devices.
 *
 * What it proves: START built by the host reaches the guest session and runs
 * CMD; host stdin (a pipe) reaches CMD and its end reaches CMD as EOF; CMD's
 * output reaches host stdout (a pipe) completely before finish(); the exit
 * status comes back; a host window (a pty) resize reaches `stty size`;
 * a reader of host stdout that pauses for seconds after EXIT still gets
 * all of CMD's output.
 * Host signals (shell_session_signal): SIGINT reaches CMD's trap and its
 * status is the one that comes back; an untrapped SIGINT gives 130; a
 * second SIGINT stops at once; a SIGTERM CMD ignores stops after the grace
 * period; with no CMD yet, SIGINT/SIGTERM stop and SIGUSR1 is dropped;
 * shell_session_quiesce leaves no session timer to fire during teardown.
 * --auto-publish: the guest end reports the TCP listeners of /proc/net/tcp
 * (of a network namespace of the test's own) not bound to loopback, and
 * again when they change.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pty.h>
#include <sched.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <linux/virtio_console.h>

#include "common/util.h"
#include "guest/init/console.c"
#include "tests/harness/virtio_driver.h"
#include "vmm/cli/shell_session.h"

enum { P_TTY = 1, P_CTL = 2, NP = 3 };
#define RXQ(id) (2u * (id) + 2)
#define TXQ(id) (RXQ(id) + 1)

struct loopback {
	struct vdrv d;
	struct vcon *c;
	struct shell_session ss;
	int in[2], out[2];	/* host stdin / stdout stand-ins */
	int gs[NP];		/* our end of the guest's port sockets (tty, ctl) */
	pid_t guest;
	bool finished;
	int code;
	int stopped;		/* signo given to stop(), 0 if none */
	long long stopped_at_ms;
	bool reader_paused;	/* nobody reads host stdout for now */
	char out_buf[262144];
	size_t out_len;
	uint16_t listeners[KBX_LISTENERS_MAX];	/* the last set the guest reported */
	unsigned nlisteners;
	int want_port;		/* for has_listener / lacks_listener */
	const char *root;	/* where the guest end installs a CA (NULL: nowhere usable) */
};

static void on_finish(void *opaque, int code)
{
	struct loopback *l = opaque;
	l->finished = true;
	l->code = code;
}

static void on_stop(void *opaque, int signo, const char *why)
{
	(void)why;
	struct loopback *l = opaque;
	if (!l->stopped) {
		l->stopped = signo;
		l->stopped_at_ms = now_ms();
	}
}

static void on_fail(void *opaque, const char *why)
{
	(void)opaque;
	fail_msg("session failed: %s", why);
}

/* Linux's probe: features, queues, DEVICE_READY, PORT_READY, PORT_OPEN. */
static void probe(struct loopback *l)
{
	uint64_t f = (1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_RING_F_EVENT_IDX) |
		     (1ULL << VIRTIO_RING_F_INDIRECT_DESC) | (1ULL << VIRTIO_CONSOLE_F_MULTIPORT);
	assert_int_equal(vdrv_negotiate(&l->d, f, NULL), 0);
	for (unsigned q = 0; q < 2 * NP + 2; q++)
		assert_int_equal(vdrv_queue_setup(&l->d, q, 64), 0);
	vdrv_post_rx(&l->d, 2, 32, 256);
	for (unsigned id = P_TTY; id <= P_CTL; id++)
		vdrv_post_rx(&l->d, RXQ(id), 32, 4096);
	vdrv_driver_ok(&l->d);
	struct virtio_console_control m[] = {
		{ 0, VIRTIO_CONSOLE_DEVICE_READY, 1 },
		{ P_TTY, VIRTIO_CONSOLE_PORT_READY, 1 }, { P_CTL, VIRTIO_CONSOLE_PORT_READY, 1 },
		{ P_TTY, VIRTIO_CONSOLE_PORT_OPEN, 1 }, { P_CTL, VIRTIO_CONSOLE_PORT_OPEN, 1 },
	};
	for (unsigned i = 0; i < ARRAY_SIZE(m); i++) {
		assert_true(vdrv_send(&l->d, 3, &m[i], sizeof(m[i])) >= 0);
		vdrv_run(&l->d);
	}
	void *data;
	uint32_t len;
	while (vdrv_used_buf(&l->d, 2, &data, &len) == 1)
		;	/* control messages to the guest: not needed here */
}

static void setup_loop(struct loopback *l, bool tty, int win_fd, char **argv, int argc)
{
	assert_int_equal(vdrv_init(&l->d, 16 << 20), 0);
	assert_int_equal(pipe2(l->in, O_CLOEXEC), 0);
	assert_int_equal(pipe2(l->out, O_CLOEXEC), 0);
	fcntl(l->out[0], F_SETFL, O_NONBLOCK);
	l->c = vcon_create(&l->d.env, VIRTIO_MMIO_BASE, NP);
	assert_non_null(l->c);
	l->ss = (struct shell_session){
		.con = l->c, .tty_port = P_TTY, .ctl_port = P_CTL, .tty = tty,
		.argc = argc, .argv = argv, .term = "xterm", .win_fd = win_fd,
		.finish = on_finish, .fail = on_fail, .stop = on_stop, .opaque = l,
	};
	struct vcon_backend none = { .in_fd = -1, .out_fd = -1 };
	struct vcon_backend tb = { .in_fd = l->in[0], .out_fd = l->out[1],
				   .on_hangup = shell_stdin_hangup, .opaque = &l->ss };
	struct vcon_backend cb = { .in_fd = -1, .out_fd = -1, .on_output = shell_ctl_output,
				   .opaque = &l->ss };
	assert_int_equal(vcon_add_port(l->c, 0, NULL, &none), 0);
	assert_int_equal(vcon_add_port(l->c, P_TTY, KBX_PORT_TTY, &tb), 0);
	assert_int_equal(vcon_add_port(l->c, P_CTL, KBX_PORT_CTL, &cb), 0);
	assert_int_equal(vdrv_start(&l->d, &l->c->vdev), 0);
	shell_session_resize(&l->ss);
	probe(l);
	/* The guest end in a child, on socketpairs standing in for the ports. */
	int t[2], c[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, t), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, c), 0);
	l->guest = fork();
	assert_true(l->guest >= 0);
	if (l->guest == 0) {
		/* The "guest" must not hold the host's stdin open. */
		close(l->in[1]);
		close(t[0]);
		close(c[0]);
		unsetenv("NODE_EXTRA_CA_CERTS");	/* as in kvmbox-init (this machine's may name one) */
		_exit(kbx_console_run(t[1], c[1], l->root ? l->root : "/nonexistent") < 0 ? 200 : 0);
	}
	close(t[1]);
	close(c[1]);
	l->gs[P_TTY] = t[0];
	l->gs[P_CTL] = c[0];
	fcntl(t[0], F_SETFL, O_NONBLOCK);
	fcntl(c[0], F_SETFL, O_NONBLOCK);
}

/* One turn of the "guest kernel": used rx buffers -> port sockets, port
 * sockets -> tx chains; then the device's loop; then host stdout. */
static void bridge_turn(struct loopback *l)
{
	for (unsigned id = P_TTY; id <= P_CTL; id++) {
		void *data;
		uint32_t len;
		while (vdrv_used_buf(&l->d, RXQ(id), &data, &len) == 1) {
			assert_int_equal(write_all(l->gs[id], data, len), 0);
			vdrv_post_rx(&l->d, RXQ(id), 1, 4096);
			vdrv_kick(&l->d, RXQ(id));
		}
		uint8_t buf[4096];
		ssize_t n = read(l->gs[id], buf, sizeof(buf));
		if (n > 0)
			assert_true(vdrv_send(&l->d, TXQ(id), buf, (uint32_t)n) >= 0);
		uint32_t uid;
		while (vdrv_used(&l->d, TXQ(id), &uid, &len) == 1)
			;
	}
	loop_run_once(&l->d.loop, 2000000);
	if (l->reader_paused)
		return;
	ssize_t n = read(l->out[0], l->out_buf + l->out_len, sizeof(l->out_buf) - 1 - l->out_len);
	if (n > 0)
		l->out_len += (size_t)n;
	l->out_buf[l->out_len] = 0;
	if (l->d.brk > (15u << 20))
		fail_msg("pretend guest ran out of RAM for buffers");
}

static void run_until(struct loopback *l, bool (*cond)(struct loopback *), const char *what)
{
	long long end = now_ms() + 15000;
	while (!cond(l) && now_ms() < end)
		bridge_turn(l);
	if (!cond(l))
		fail_msg("timed out waiting for %s; host stdout so far: \"%s\"", what, l->out_buf);
}

static bool is_finished(struct loopback *l) { return l->finished; }

static void release_loop(struct loopback *l)
{
	vcon_destroy(l->c);
	vdrv_fini(&l->d);
	close(l->gs[P_TTY]);
	close(l->gs[P_CTL]);
	close(l->in[0]);
	close(l->in[1]);
	close(l->out[0]);
	close(l->out[1]);
}

/* The VM "stops": the guest session, which after EXIT waits for that,
 * sees kvmbox.ctl hang up and ends. */
static void teardown_loop(struct loopback *l)
{
	int st;
	shutdown(l->gs[P_CTL], SHUT_WR);
	assert_int_equal(waitpid(l->guest, &st, 0), l->guest);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	release_loop(l);
}

static void test_piped_command(void **state)
{
	(void)state;
	static struct loopback l;
	memset(&l, 0, sizeof(l));
	static char *argv[] = { "sh", "-c", "read x; echo got:$x; cat; echo done; exit 7", NULL };
	setup_loop(&l, false, -1, argv, 3);
	/* `printf 'hello\nmore\n' | kvmbox shell -- sh -c ...` */
	assert_int_equal(write_all(l.in[1], "hello\nmore\n", 11), 0);
	close(l.in[1]);
	l.in[1] = open("/dev/null", O_WRONLY);
	run_until(&l, is_finished, "finish");
	assert_int_equal(l.code, 7);
	/* Everything CMD wrote was on host stdout before finish() */
	assert_string_equal(l.out_buf, "got:hello\nmore\ndone\n");
	teardown_loop(&l);
}

static bool has_exited(struct loopback *l) { return l->ss.exited; }

/* `kvmbox shell -- seq 1 30000 | less`: CMD's 169 KB are on the ring when
 * EXIT comes, and host stdout (a pipe) is full because its reader is
 * paused for longer than kvmbox's 2 s "output stuck" limit.  kvmbox waits
 * for the reader, as any writer to a pipe would, and all of it arrives. */
static void test_slow_reader_after_exit(void **state)
{
	(void)state;
	static struct loopback l;
	memset(&l, 0, sizeof(l));
	static char *argv[] = { "seq", "1", "30000", NULL };
	setup_loop(&l, false, -1, argv, 3);
	l.reader_paused = true;
	run_until(&l, has_exited, "EXIT");
	long long end = now_ms() + 3000;
	while (now_ms() < end)
		bridge_turn(&l);
	assert_false(l.finished);
	l.reader_paused = false;
	run_until(&l, is_finished, "finish");
	assert_int_equal(l.code, 0);
	size_t len = 0;
	for (int i = 1; i <= 30000; i++) {
		char want[16];
		int n = snprintf(want, sizeof(want), "%d\n", i);
		assert_true(len + (size_t)n <= l.out_len);
		assert_memory_equal(l.out_buf + len, want, (size_t)n);
		len += (size_t)n;
	}
	assert_int_equal(l.out_len, len);
	teardown_loop(&l);
}

static bool has_resized(struct loopback *l) { return strstr(l->out_buf, "40 100") != NULL; }
static bool has_first_size(struct loopback *l) { return strstr(l->out_buf, "30 90") != NULL; }

static void test_tty_resize(void **state)
{
	(void)state;
	static struct loopback l;
	memset(&l, 0, sizeof(l));
	int pm, ps;	/* the host terminal stand-in, whose size the guest follows */
	struct winsize ws = { .ws_row = 30, .ws_col = 90 };
	assert_int_equal(openpty(&pm, &ps, NULL, NULL, &ws), 0);
	static char *argv[] = { "sh", "-c", "stty size; read x; stty size; exit 5", NULL };
	setup_loop(&l, true, ps, argv, 3);
	run_until(&l, has_first_size, "the first stty size");
	ws = (struct winsize){ .ws_row = 40, .ws_col = 100 };
	ioctl(ps, TIOCSWINSZ, &ws);
	shell_session_resize(&l.ss);	/* what SIGWINCH does */
	for (int i = 0; i < 20; i++)
		bridge_turn(&l);
	assert_int_equal(write_all(l.in[1], "\r", 1), 0);
	run_until(&l, has_resized, "the resized stty size");
	run_until(&l, is_finished, "finish");
	assert_int_equal(l.code, 5);
	teardown_loop(&l);
	close(pm);
	close(ps);
}

static bool is_ready(struct loopback *l) { return strstr(l->out_buf, "ready") != NULL; }
static bool got_int(struct loopback *l) { return strstr(l->out_buf, "got INT") != NULL; }
static bool is_stopped(struct loopback *l) { return l->stopped != 0; }

/* CMD (piped, no PTY) prints "ready", then gets @signo from the host. */
static void start_and_signal(struct loopback *l, const char *script, int signo, unsigned grace_ms)
{
	static char *argv[] = { "sh", "-c", NULL, NULL };
	argv[2] = (char *)script;
	memset(l, 0, sizeof(*l));
	setup_loop(l, false, -1, argv, 3);
	l->ss.grace_ms = grace_ms;
	run_until(l, is_ready, "CMD ready");
	shell_session_signal(&l->ss, signo);
}

/* The VM was "stopped" with CMD still running: end the pretend guest. */
static void teardown_stopped(struct loopback *l)
{
	kill(l->guest, SIGKILL);
	waitpid(l->guest, NULL, 0);
	release_loop(l);
}

static void test_sigint_trapped(void **state)
{
	(void)state;
	static struct loopback l;
	start_and_signal(&l, "trap 'echo got INT; exit 5' INT; echo ready; "
			     "while :; do sleep 1; done", SIGINT, 0);
	run_until(&l, is_finished, "finish");
	assert_int_equal(l.code, 5);
	assert_non_null(strstr(l.out_buf, "got INT"));
	assert_int_equal(l.stopped, 0);
	teardown_loop(&l);
}

static void test_sigint_default(void **state)
{
	(void)state;
	static struct loopback l;
	start_and_signal(&l, "echo ready; exec sleep 100", SIGINT, 0);
	run_until(&l, is_finished, "finish");
	assert_int_equal(l.code, 130);
	assert_int_equal(l.stopped, 0);
	teardown_loop(&l);
}

static void test_second_sigint_stops(void **state)
{
	(void)state;
	static struct loopback l;
	start_and_signal(&l, "trap 'echo got INT' INT; echo ready; while :; do sleep 1; done",
			 SIGINT, 0);
	run_until(&l, got_int, "the trap");
	assert_int_equal(l.stopped, 0);
	shell_session_signal(&l.ss, SIGINT);
	assert_int_equal(l.stopped, SIGINT);
	assert_false(l.finished);
	teardown_stopped(&l);
}

static void test_sigterm_grace(void **state)
{
	(void)state;
	static struct loopback l;
	start_and_signal(&l, "trap '' TERM; echo ready; while :; do sleep 1; done", SIGTERM, 300);
	long long t0 = now_ms();
	run_until(&l, is_stopped, "the grace period to end");
	assert_int_equal(l.stopped, SIGTERM);
	assert_true(l.stopped_at_ms - t0 >= 250);
	assert_false(l.finished);
	teardown_stopped(&l);
}

/* The VM stops for another reason during a SIGTERM grace period: quiesce
 * cancels the grace
 * timer and waits for it, so turning the loop afterwards (as the other
 * devices' teardown does) runs no session callback on a console going
 * away. */
static void test_quiesce_cancels_grace(void **state)
{
	(void)state;
	static struct loopback l;
	start_and_signal(&l, "trap '' TERM; echo ready; while :; do sleep 1; done", SIGTERM, 300);
	assert_int_equal(l.ss.grace_op.armed, 1);
	shell_session_quiesce(&l.ss);
	assert_int_equal(l.ss.grace_op.armed, 0);
	long long end = now_ms() + 500;
	while (now_ms() < end)
		loop_run_once(&l.d.loop, 50 * 1000000ULL);
	assert_int_equal(l.stopped, 0);
	teardown_stopped(&l);
}

static void on_listeners(void *opaque, const uint16_t *ports, unsigned n)
{
	struct loopback *l = opaque;
	l->nlisteners = MIN(n, (unsigned)KBX_LISTENERS_MAX);
	memcpy(l->listeners, ports, l->nlisteners * sizeof(ports[0]));
}

static bool has_listener(struct loopback *l)
{
	for (unsigned i = 0; i < l->nlisteners; i++)
		if (l->listeners[i] == l->want_port)
			return true;
	return false;
}
static bool lacks_listener(struct loopback *l) { return !has_listener(l); }

/* A listening TCP socket on addr (host order), port chosen by the kernel. */
static int tcp_listener(uint32_t addr, int *port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(addr) };
	socklen_t len = sizeof(sa);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 1), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	*port = ntohs(sa.sin_port);
	return fd;
}

static void test_listeners_reported(void **state)
{
	(void)state;
	static struct loopback l;
	memset(&l, 0, sizeof(l));
	/* A network namespace with lo only: the guest end's loopback
	 * forwarder (portfwd.c) has no interface address to relay to, and
	 * this host's own loopback services stay where they are. */
	if (unshare(CLONE_NEWNET) < 0) {
		skip();	/* needs root */
		return;
	}
	static char *argv[] = { "sh", "-c", "read x; exit 0", NULL };
	setup_loop(&l, false, -1, argv, 3);
	l.ss.listeners = on_listeners;	/* before READY: START asks for them */
	/* After the fork: the "guest" must not hold them open. */
	int any_port, lo_port;
	int any = tcp_listener(INADDR_ANY, &any_port);
	int lo = tcp_listener(INADDR_LOOPBACK, &lo_port);
	l.want_port = any_port;
	run_until(&l, has_listener, "the wildcard listener reported");
	l.want_port = lo_port;
	assert_false(has_listener(&l));	/* loopback only, nothing to relay it to */
	close(any);
	l.want_port = any_port;
	run_until(&l, lacks_listener, "the closed listener gone from the report");
	close(lo);
	assert_int_equal(write_all(l.in[1], "x\n", 2), 0);
	run_until(&l, is_finished, "finish");
	assert_int_equal(l.code, 0);
	teardown_loop(&l);
}

static void test_signal_before_start(void **state)
{
	(void)state;
	static struct loopback l;
	memset(&l, 0, sizeof(l));
	l.ss = (struct shell_session){ .stop = on_stop, .opaque = &l };
	shell_session_signal(&l.ss, SIGUSR1);
	assert_int_equal(l.stopped, 0);
	shell_session_signal(&l.ss, SIGTERM);
	assert_int_equal(l.stopped, SIGTERM);
}

/* kvmbox shell --proxy: the host hands the guest the proxy's CA before
 * START; the guest end installs it (under the test's root) and CMD runs
 * with the variables that name it. */
static void test_proxy_ca(void **state)
{
	(void)state;
	static struct loopback l;
	memset(&l, 0, sizeof(l));
	char dir[] = "/tmp/kbx-shca-XXXXXX";
	assert_non_null(mkdtemp(dir));
	l.root = dir;
	static char cmd[256];
	snprintf(cmd, sizeof(cmd), "echo node=$NODE_EXTRA_CA_CERTS; head -n 1 %s%s", dir, KBX_CA_PEM);
	static char *argv[] = { "sh", "-c", cmd, NULL };
	static uint8_t der[1500] = { 0x30, 0x82, 0x05, 0xd8 };
	setup_loop(&l, false, -1, argv, 3);
	l.ss.ca = der;
	l.ss.ca_len = sizeof(der);
	close(l.in[1]);
	l.in[1] = open("/dev/null", O_WRONLY);
	run_until(&l, is_finished, "finish");
	assert_int_equal(l.code, 0);
	assert_string_equal(l.out_buf, "node=/etc/ssl/certs/kvmbox-ca.pem\n"
			    "-----BEGIN CERTIFICATE-----\n");
	teardown_loop(&l);
	char rm[64];
	snprintf(rm, sizeof(rm), "rm -rf %s", dir);
	assert_int_equal(system(rm), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_piped_command),
		cmocka_unit_test(test_proxy_ca),
		cmocka_unit_test(test_slow_reader_after_exit),
		cmocka_unit_test(test_tty_resize),
		cmocka_unit_test(test_sigint_trapped),
		cmocka_unit_test(test_sigint_default),
		cmocka_unit_test(test_second_sigint_stops),
		cmocka_unit_test(test_sigterm_grace),
		cmocka_unit_test(test_quiesce_cancels_grace),
		cmocka_unit_test(test_signal_before_start),
		cmocka_unit_test(test_listeners_reported),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
