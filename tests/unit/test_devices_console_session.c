/* tests/unit/test_devices_console_session.c - the guest end of `kvmbox shell`
 * (guest/init/console.c) against the kvmbox.ctl protocol, on the host.
 *
 * The session runs in a child process (as kvmbox-init would) on two
 * socketpairs standing in for the kvmbox.tty and kvmbox.ctl ports; the test
 * plays the host: it answers READY with START, writes terminal input, sends
 * RESIZE / SIGNAL / STDIN_EOF and reads CMD's output and EXIT.  CMD is a real
 * /bin/sh on a real PTY, so `stty size`, Ctrl-C and exit statuses are the
 * kernel's own behaviour.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sys/socket.h>
#include <sys/stat.h>

#include "guest/init/console.c"

#define TIMEOUT_MS 10000

struct host {
	int tty, ctl;		/* our ends */
	pid_t pid;		/* the session ("guest init") */
	char out[65536];
	size_t out_len;
	struct kbx_ctl_reader rd;
	bool exited;
	struct kbx_ctl_exit ex;
	char error[256];
	const char *root;	/* where the CA message installs (NULL: nowhere usable) */
};

static void start_session(struct host *h)
{
	int t[2], c[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, t), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, c), 0);
	h->pid = fork();
	assert_true(h->pid >= 0);
	if (h->pid == 0) {
		close(t[0]);
		close(c[0]);
		/* kvmbox-init's environment names no CA store (this machine's may) */
		unsetenv("NODE_EXTRA_CA_CERTS");
		unsetenv("REQUESTS_CA_BUNDLE");
		unsetenv("SSL_CERT_FILE");
		int r = kbx_console_run(t[1], c[1], h->root ? h->root : "/nonexistent");
		_exit(r < 0 ? 200 : r);
	}
	close(t[1]);
	close(c[1]);
	h->tty = t[0];
	h->ctl = c[0];
}

static void send_frame(struct host *h, uint16_t type, const void *p, size_t len)
{
	uint8_t f[4096];
	size_t n = kbx_ctl_frame(f, sizeof(f), type, p, len);
	assert_true(n > 0);
	assert_int_equal(write_all(h->ctl, f, n), 0);
}

static void send_start(struct host *h, bool tty, uint16_t rows, uint16_t cols,
		       const char *const *argv)
{
	uint8_t buf[2048];
	struct kbx_ctl_start st = { .rows = rows, .cols = cols,
				    .flags = tty ? KBX_START_TTY : 0, .envc = 1 };
	size_t off = sizeof(st);
	for (; argv[st.argc]; st.argc++) {
		size_t n = strlen(argv[st.argc]) + 1;
		memcpy(buf + off, argv[st.argc], n);
		off += n;
	}
	memcpy(buf + off, "TERM=dumb", 10);
	off += 10;
	memcpy(buf, &st, sizeof(st));
	send_frame(h, KBX_CTL_START, buf, off);
}

/* Pump both sockets once (up to ms): handle control frames, collect output. */
static void pump(struct host *h, int ms)
{
	struct pollfd p[2] = { { h->tty, POLLIN, 0 }, { h->ctl, POLLIN, 0 } };
	if (poll(p, 2, ms) <= 0)
		return;
	if (p[0].revents) {
		ssize_t n = read(h->tty, h->out + h->out_len, sizeof(h->out) - 1 - h->out_len);
		if (n > 0)
			h->out_len += (size_t)n;
		h->out[h->out_len] = 0;
	}
	if (p[1].revents) {
		uint8_t buf[4096];
		ssize_t n = read(h->ctl, buf, sizeof(buf));
		size_t off = 0;
		while (n > 0 && off < (size_t)n) {
			size_t used;
			struct kbx_ctl_hdr hd;
			const uint8_t *pl;
			int r = kbx_ctl_feed(&h->rd, buf + off, (size_t)n - off, &used, &hd, &pl);
			off += used;
			if (r != 1)
				break;
			if (hd.type == KBX_CTL_EXIT && hd.len >= sizeof(h->ex)) {
				memcpy(&h->ex, pl, sizeof(h->ex));
				h->exited = true;
			} else if (hd.type == KBX_CTL_ERROR) {
				snprintf(h->error, sizeof(h->error), "%.*s", (int)hd.len, pl);
			}
		}
	}
}

static void wait_output(struct host *h, const char *want)
{
	long long end = now_ms() + TIMEOUT_MS;
	while (!strstr(h->out, want) && now_ms() < end)
		pump(h, 50);
	if (!strstr(h->out, want))
		fail_msg("no \"%s\" in output \"%s\"", want, h->out);
}

static void wait_exit_frame(struct host *h)
{
	long long end = now_ms() + TIMEOUT_MS;
	while (!h->exited && now_ms() < end)
		pump(h, 50);
	assert_true(h->exited);
}

/* Wait for EXIT, hang up kvmbox.ctl as the host's end would, then wait for
 * the session process; its status must agree. */
static int wait_exit(struct host *h)
{
	wait_exit_frame(h);
	shutdown(h->ctl, SHUT_WR);
	int st;
	assert_int_equal(waitpid(h->pid, &st, 0), h->pid);
	assert_true(WIFEXITED(st));
	close(h->tty);
	close(h->ctl);
	return WEXITSTATUS(st) == 200 ? -1 : h->ex.code;
}

static void expect_ready(struct host *h)
{
	long long end = now_ms() + TIMEOUT_MS;
	uint8_t buf[64];
	size_t have = 0;
	while (have < sizeof(struct kbx_ctl_hdr) + sizeof(struct kbx_ctl_ready) &&
	       now_ms() < end) {
		ssize_t n = read(h->ctl, buf + have, sizeof(buf) - have);
		assert_true(n > 0);
		have += (size_t)n;
	}
	struct kbx_ctl_hdr hd;
	memcpy(&hd, buf, sizeof(hd));
	assert_int_equal(hd.type, KBX_CTL_READY);
}

static void test_pipes_exit_status(void **state)
{
	(void)state;
	struct host h = { 0 };
	start_session(&h);
	expect_ready(&h);
	static const char *const argv[] = { "sh", "-c", "read x; echo got:$x; exit 7", NULL };
	send_start(&h, false, 0, 0, argv);
	assert_int_equal(write_all(h.tty, "hello\n", 6), 0);
	wait_output(&h, "got:hello");
	assert_int_equal(wait_exit(&h), 7);
}

/* After EXIT the session (kvmbox-init) holds on until the host hangs up
 * kvmbox.ctl: returning would let init reboot, and the guest kernel's reset
 * of the console device on the way drops output chains the host has not
 * taken yet.  All of a large output then arrives, in order. */
static void test_waits_for_host_after_exit(void **state)
{
	(void)state;
	struct host h = { 0 };
	start_session(&h);
	expect_ready(&h);
	static const char *const argv[] = { "sh", "-c", "seq 1 5000; exit 4", NULL };
	send_start(&h, false, 0, 0, argv);
	wait_exit_frame(&h);
	assert_int_equal(h.ex.code, 4);
	for (int i = 0; i < 6; i++)
		pump(&h, 50);
	int st;
	assert_int_equal(waitpid(h.pid, &st, WNOHANG), 0);	/* still there */
	assert_int_equal(wait_exit(&h), 4);
	char want[40];
	size_t len = 0;
	for (int i = 1; i <= 5000; i++) {	/* seq's output, whole */
		int n = snprintf(want, sizeof(want), "%d\n", i);
		assert_memory_equal(h.out + len, want, (size_t)n);
		len += (size_t)n;
	}
	assert_int_equal(h.out_len, len);
}

static void test_pipes_stdin_eof(void **state)
{
	(void)state;
	struct host h = { 0 };
	start_session(&h);
	expect_ready(&h);
	static const char *const argv[] = { "cat", NULL };
	send_start(&h, false, 0, 0, argv);
	assert_int_equal(write_all(h.tty, "abc", 3), 0);
	send_frame(&h, KBX_CTL_STDIN_EOF, NULL, 0);
	assert_int_equal(wait_exit(&h), 0);
	assert_string_equal(h.out, "abc");
}

static void test_input_before_start(void **state)
{
	(void)state;
	/* Input, and its end, arrive while CMD does not exist yet. */
	struct host h = { 0 };
	start_session(&h);
	expect_ready(&h);
	assert_int_equal(write_all(h.tty, "early", 5), 0);
	shutdown(h.tty, SHUT_WR);
	pump(&h, 100);
	static const char *const argv[] = { "cat", NULL };
	send_start(&h, false, 0, 0, argv);
	assert_int_equal(wait_exit(&h), 0);
	assert_string_equal(h.out, "early");
	/* STDIN_EOF right after START with nothing typed: CMD sees EOF. */
	struct host h2 = { 0 };
	start_session(&h2);
	expect_ready(&h2);
	static const char *const wc[] = { "wc", "-c", NULL };
	send_start(&h2, false, 0, 0, wc);
	send_frame(&h2, KBX_CTL_STDIN_EOF, NULL, 0);
	assert_int_equal(wait_exit(&h2), 0);
	assert_non_null(strstr(h2.out, "0"));
}

static void test_pty_size_and_resize(void **state)
{
	(void)state;
	struct host h = { 0 };
	start_session(&h);
	expect_ready(&h);
	static const char *const argv[] = {
		"sh", "-c", "stty size; test -t 0 && echo tty-yes; read x; stty size; exit 3", NULL };
	send_start(&h, true, 24, 80, argv);
	wait_output(&h, "24 80");
	wait_output(&h, "tty-yes");
	struct kbx_ctl_resize rs = { .rows = 50, .cols = 132 };
	send_frame(&h, KBX_CTL_RESIZE, &rs, sizeof(rs));
	pump(&h, 100);
	assert_int_equal(write_all(h.tty, "\r", 1), 0);
	wait_output(&h, "50 132");
	assert_int_equal(wait_exit(&h), 3);
}

static void test_pty_ctrl_c(void **state)
{
	(void)state;
	struct host h = { 0 };
	start_session(&h);
	expect_ready(&h);
	static const char *const argv[] = { "sh", "-c", "echo waiting; exec sleep 10", NULL };
	send_start(&h, true, 24, 80, argv);
	wait_output(&h, "waiting");
	pump(&h, 100);
	assert_int_equal(write_all(h.tty, "\x03", 1), 0);	/* Ctrl-C as a byte */
	assert_int_equal(wait_exit(&h), 130);
	assert_int_equal(h.ex.signo, SIGINT);
}

static void test_signal_forwarded(void **state)
{
	(void)state;
	struct host h = { 0 };
	start_session(&h);
	expect_ready(&h);
	static const char *const argv[] = { "sh", "-c", "echo waiting; exec sleep 10", NULL };
	send_start(&h, false, 0, 0, argv);
	wait_output(&h, "waiting");
	struct kbx_ctl_signal sg = { SIGTERM };
	send_frame(&h, KBX_CTL_SIGNAL, &sg, sizeof(sg));
	assert_int_equal(wait_exit(&h), 128 + SIGTERM);
	assert_int_equal(h.ex.signo, SIGTERM);
}

static void test_exec_failure(void **state)
{
	(void)state;
	struct host h = { 0 };
	start_session(&h);
	expect_ready(&h);
	static const char *const argv[] = { "/nonexistent/cmd", NULL };
	send_start(&h, false, 0, 0, argv);
	assert_int_equal(wait_exit(&h), 127);
	assert_non_null(strstr(h.out, "cannot run /nonexistent/cmd"));
}

static void test_hostile_frames(void **state)
{
	(void)state;
	/* A frame claiming a 1 GiB payload: the session refuses it. */
	struct host h = { 0 };
	start_session(&h);
	expect_ready(&h);
	struct kbx_ctl_hdr bad = { .type = KBX_CTL_START, .len = 1u << 30 };
	assert_int_equal(write_all(h.ctl, &bad, sizeof(bad)), 0);
	assert_int_equal(wait_exit(&h), -1);
	assert_non_null(strstr(h.error, "session failed"));
	/* A START whose strings run past the payload. */
	struct host h2 = { 0 };
	start_session(&h2);
	expect_ready(&h2);
	struct kbx_ctl_start st = { .argc = 3 };
	uint8_t buf[sizeof(st) + 4];
	memcpy(buf, &st, sizeof(st));
	memcpy(buf + sizeof(st), "ab\0c", 4);
	send_frame(&h2, KBX_CTL_START, buf, sizeof(buf));
	assert_int_equal(wait_exit(&h2), -1);
	/* The host leaving before START ends the session. */
	struct host h3 = { 0 };
	start_session(&h3);
	expect_ready(&h3);
	shutdown(h3.ctl, SHUT_WR);
	assert_int_equal(wait_exit(&h3), -1);
}

/* The proxy's CA before START: installed under the root (its PEM file and
 * the bundle) and named in CMD's environment for the clients with stores
 * of their own; a certificate that is not DER is reported and CMD runs
 * without it; a CA after START changes nothing. */
static void read_text(const char *dir, const char *path, char *out, size_t outsz)
{
	char full[512];
	snprintf(full, sizeof(full), "%s%s", dir, path);
	int fd = open(full, O_RDONLY);
	ssize_t n = fd < 0 ? -1 : read(fd, out, outsz - 1);
	out[n > 0 ? n : 0] = 0;
	if (fd >= 0)
		close(fd);
}

static void test_ca_before_start(void **state)
{
	(void)state;
	char dir[] = "/tmp/kbx-ca-XXXXXX", text[4096], pem[4096];
	assert_non_null(mkdtemp(dir));
	uint8_t der[300] = { 0x30, 0x82, 0x01, 0x28 };
	for (size_t i = 4; i < sizeof(der); i++)
		der[i] = (uint8_t)(i * 7);
	struct host h = { .root = dir };
	start_session(&h);
	expect_ready(&h);
	send_frame(&h, KBX_CTL_CA, der, sizeof(der));
	static const char *const argv[] = { "sh", "-c",
		"echo \"node=$NODE_EXTRA_CA_CERTS req=$REQUESTS_CA_BUNDLE ssl=$SSL_CERT_FILE\"; exit 3",
		NULL };
	send_start(&h, false, 0, 0, argv);
	wait_output(&h, "node=/etc/ssl/certs/kvmbox-ca.pem req=/etc/ssl/certs/ca-certificates.crt "
		    "ssl=/etc/ssl/certs/ca-certificates.crt");
	assert_int_equal(wait_exit(&h), 3);
	assert_string_equal(h.error, "");
	int plen = kbx_ca_pem(der, sizeof(der), pem, sizeof(pem));
	assert_true(plen > 0);
	read_text(dir, KBX_CA_PEM, text, sizeof(text));
	assert_string_equal(text, pem);
	read_text(dir, KBX_CA_BUNDLE, text, sizeof(text));
	assert_string_equal(text, pem);

	/* not a DER SEQUENCE: ERROR, CMD runs, nothing named or written */
	char dir2[] = "/tmp/kbx-ca-XXXXXX";
	assert_non_null(mkdtemp(dir2));
	struct host h2 = { .root = dir2 };
	start_session(&h2);
	expect_ready(&h2);
	send_frame(&h2, KBX_CTL_CA, "not a certificate at all", 24);
	static const char *const argv2[] = { "sh", "-c", "echo \"node=[$NODE_EXTRA_CA_CERTS]\"", NULL };
	send_start(&h2, false, 0, 0, argv2);
	wait_output(&h2, "node=[]");
	assert_int_equal(wait_exit(&h2), 0);
	assert_string_equal(h2.error, "the proxy CA is not a DER certificate");
	read_text(dir2, KBX_CA_PEM, text, sizeof(text));
	assert_string_equal(text, "");

	/* after START: ignored */
	char dir3[] = "/tmp/kbx-ca-XXXXXX", cmd[256];
	assert_non_null(mkdtemp(dir3));
	struct host h3 = { .root = dir3 };
	start_session(&h3);
	expect_ready(&h3);
	snprintf(cmd, sizeof(cmd), "read x; test -e %s%s && echo ca:present || echo ca:absent", dir3,
		 KBX_CA_PEM);
	const char *const argv3[] = { "sh", "-c", cmd, NULL };
	send_start(&h3, false, 0, 0, argv3);
	send_frame(&h3, KBX_CTL_CA, der, sizeof(der));
	pump(&h3, 300);
	assert_int_equal(write_all(h3.tty, "go\n", 3), 0);
	wait_output(&h3, "ca:absent");
	assert_int_equal(wait_exit(&h3), 0);
	char rm[128];
	snprintf(rm, sizeof(rm), "rm -rf %s %s %s", dir, dir2, dir3);
	assert_int_equal(system(rm), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pipes_exit_status),
		cmocka_unit_test(test_waits_for_host_after_exit),
		cmocka_unit_test(test_pipes_stdin_eof),
		cmocka_unit_test(test_input_before_start),
		cmocka_unit_test(test_pty_size_and_resize),
		cmocka_unit_test(test_pty_ctrl_c),
		cmocka_unit_test(test_signal_forwarded),
		cmocka_unit_test(test_exec_failure),
		cmocka_unit_test(test_hostile_frames),
		cmocka_unit_test(test_ca_before_start),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
