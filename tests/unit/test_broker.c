/* tests/unit/test_broker.c - the credential broker (broker/broker.h).
 *
 * Pure parts: the VMM's environment is an allow-list (a token's variable
 * never passes, whatever its name); FLOW messages are checked field by
 * field (size, type, version, descriptor count, IP literal, port, NUL
 * termination); the VMM end's control-socket check, HELLO reader and
 * flow hand-over.
 *
 * broker_run for real, with this test binary as the VMM (`.vm MODE` in
 * argv, see main): the VMM gets the control socket at fd 3 and no other
 * descriptor beyond stdio, none of the broker's secret variables, a HELLO
 * with the CA; a flow it hands over reaches an HTTP server through the
 * broker's proxy and the answer comes back; its exit status is the
 * broker's, 128 + the signal when a signal ends it; a signal another
 * process sends the broker reaches it.  (KVMBOX_SECCOMP=off: the cage
 * would stay on this test process.)
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "broker/broker.h"
#include "common/util.h"

static void test_vmm_env_allow_list(void **state)
{
	(void)state;
	char *env[] = { "ANTHROPIC_API_KEY=sk-real", "HOME=/home/u", "GH_TOKEN=ghp_real",
			"KVMBOX_REGISTRY_AUTH=u:p", "LC_ALL=C.UTF-8", "HOMEX=1", "LC_=x", "=weird",
			"noequals", "TERM=xterm", "KVMBOX_LOG=info", "MY_SECRET=s", "PATHX=1", NULL };
	const char *out[16];
	int n = broker_vmm_env(env, out, ARRAY_SIZE(out));
	assert_int_equal(n, 4);
	assert_string_equal(out[0], "HOME=/home/u");
	assert_string_equal(out[1], "LC_ALL=C.UTF-8");
	assert_string_equal(out[2], "TERM=xterm");
	assert_string_equal(out[3], "KVMBOX_LOG=info");
	assert_null(out[4]);
	assert_int_equal(broker_vmm_env(env, out, 4), -E2BIG);	/* no room for the NULL */
	assert_int_equal(broker_vmm_env(NULL, out, 1), 0);
	assert_int_equal(broker_vmm_env(NULL, out, 0), -E2BIG);
}

static struct broker_flow good_flow(void)
{
	struct broker_flow m = { .type = BROKER_FLOW, .version = BROKER_VERSION };
	strcpy(m.dst.addr, "93.184.216.34");
	m.dst.port = 443;
	return m;
}

static void test_flow_check(void **state)
{
	(void)state;
	struct broker_flow m = good_flow();
	assert_int_equal(broker_flow_check(&m, sizeof(m), 1), 0);
	strcpy(m.dst.addr, "2606:4700::1111");
	assert_int_equal(broker_flow_check(&m, sizeof(m), 1), 0);
	m = good_flow();
	assert_int_equal(broker_flow_check(&m, sizeof(m) - 1, 1), -EPROTO);
	assert_int_equal(broker_flow_check(&m, sizeof(m), 0), -EPROTO);
	assert_int_equal(broker_flow_check(&m, sizeof(m), 2), -EPROTO);
	m.type = BROKER_HELLO;
	assert_int_equal(broker_flow_check(&m, sizeof(m), 1), -EPROTO);
	m = good_flow();
	m.version = BROKER_VERSION + 1;
	assert_int_equal(broker_flow_check(&m, sizeof(m), 1), -EPROTO);
	m = good_flow();
	m.dst.port = 0;
	assert_int_equal(broker_flow_check(&m, sizeof(m), 1), -EPROTO);
	/* a name would make the broker resolve it: only literals */
	static const char *const bad_addr[] = { "api.anthropic.com", "", "1.2.3", "1.2.3.4 ", "0x7f.1",
						"127.1", "[::1]", "1.2.3.4\n" };
	for (size_t i = 0; i < ARRAY_SIZE(bad_addr); i++) {
		m = good_flow();
		strcpy(m.dst.addr, bad_addr[i]);
		assert_int_equal(broker_flow_check(&m, sizeof(m), 1), -EPROTO);
	}
	m = good_flow();
	memset(m.dst.addr, '1', sizeof(m.dst.addr));	/* no NUL */
	assert_int_equal(broker_flow_check(&m, sizeof(m), 1), -EPROTO);
	m = good_flow();
	memset(m.dst.name, 'a', sizeof(m.dst.name));
	assert_int_equal(broker_flow_check(&m, sizeof(m), 1), -EPROTO);
	/* a name, when given, passes host_valid (net/policy.h): no control
	 * bytes for the logs and error bodies it reaches, no spaces, no '/' */
	static const char *const bad_name[] = { "api.anthropic.com\r\nX: 1", "a b.com",
						"exa\x01mple.com", "../x" };
	for (size_t i = 0; i < ARRAY_SIZE(bad_name); i++) {
		m = good_flow();
		strcpy(m.dst.name, bad_name[i]);
		assert_int_equal(broker_flow_check(&m, sizeof(m), 1), -EPROTO);
	}
	m = good_flow();
	strcpy(m.dst.name, "api.anthropic.com");
	assert_int_equal(broker_flow_check(&m, sizeof(m), 1), 0);
	/* a refusal line: printable ASCII, NUL-terminated in its field */
	m = good_flow();
	strcpy(m.dst.deny, "kvmbox: refused (--allow-lan)");
	assert_int_equal(broker_flow_check(&m, sizeof(m), 1), 0);
	strcpy(m.dst.deny, "line\r\nX-Injected: 1");
	assert_int_equal(broker_flow_check(&m, sizeof(m), 1), -EPROTO);
	strcpy(m.dst.deny, "caf\xc3\xa9");
	assert_int_equal(broker_flow_check(&m, sizeof(m), 1), -EPROTO);
	memset(m.dst.deny, 'a', sizeof(m.dst.deny));
	assert_int_equal(broker_flow_check(&m, sizeof(m), 1), -EPROTO);
}

static void test_vmm_end(void **state)
{
	(void)state;
	int sp[2], st[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, st), 0);
	assert_int_equal(broker_ctl_check(sp[0]), 0);
	assert_int_equal(broker_ctl_check(st[0]), -ENOTSOCK);
	int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	assert_int_equal(broker_ctl_check(devnull), -ENOTSOCK);
	close(devnull);
	/* HELLO: nothing yet (timeout), a short one, a wrong type, a good one */
	struct broker_hello *h = calloc(1, sizeof(*h));
	assert_non_null(h);
	assert_int_equal(broker_hello_read(sp[1], h, 10), -ETIMEDOUT);
	assert_int_equal(send(sp[0], "x", 1, 0), 1);
	assert_int_equal(broker_hello_read(sp[1], h, 1000), -EPROTO);
	h->type = BROKER_FLOW;
	h->version = BROKER_VERSION;
	h->ca_len = 5;
	assert_int_equal(send(sp[0], h, sizeof(*h), 0), (ssize_t)sizeof(*h));
	assert_int_equal(broker_hello_read(sp[1], h, 1000), -EPROTO);
	h->type = BROKER_HELLO;
	h->ca_len = sizeof(h->ca_pem);	/* no room for its NUL */
	assert_int_equal(send(sp[0], h, sizeof(*h), 0), (ssize_t)sizeof(*h));
	assert_int_equal(broker_hello_read(sp[1], h, 1000), -EPROTO);
	memset(h, 0, sizeof(*h));
	h->type = BROKER_HELLO;
	h->version = BROKER_VERSION;
	h->ca_len = 3;
	memcpy(h->ca_pem, "PEMxxxx", 7);
	assert_int_equal(send(sp[0], h, sizeof(*h), 0), (ssize_t)sizeof(*h));
	assert_int_equal(broker_hello_read(sp[1], h, 1000), 0);
	assert_string_equal(h->ca_pem, "PEM");
	free(h);
	/* FLOW: the broker's end arrives with the message and carries bytes */
	struct proxy_dst d = { .addr = "10.1.2.3", .port = 80 };
	int mine = broker_flow_send(sp[1], &d);
	assert_true(mine >= 0);
	assert_true(fcntl(mine, F_GETFL) & O_NONBLOCK);
	assert_true(fcntl(mine, F_GETFD) & FD_CLOEXEC);
	struct broker_flow m;
	int theirs;
	assert_int_equal(broker_flow_recv(sp[0], &m, &theirs), 1);
	assert_string_equal(m.dst.addr, "10.1.2.3");
	assert_int_equal(broker_flow_recv(sp[0], &m, &theirs), -EAGAIN);
	assert_int_equal(write(mine, "ping", 4), 4);
	char b[8];
	assert_int_equal(read(theirs, b, sizeof(b)), 4);
	assert_memory_equal(b, "ping", 4);
	close(theirs);
	close(mine);
	/* the broker gone: a hand-over fails at once (no SIGPIPE) */
	close(sp[0]);
	assert_int_equal(broker_flow_send(sp[1], &d), -EPIPE);
	close(sp[1]);
	close(st[0]);
	close(st[1]);
}

/* Send a FLOW-sized message with fds[0..n) attached. */
static void send_with_fds(int ctl, const struct broker_flow *m, const int *fds, unsigned n)
{
	union {
		char buf[CMSG_SPACE(2 * sizeof(int))];
		struct cmsghdr align;
	} cbuf;
	memset(&cbuf, 0, sizeof(cbuf));
	struct iovec iov = { (void *)m, sizeof(*m) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	if (n) {
		mh.msg_control = cbuf.buf;
		mh.msg_controllen = CMSG_SPACE(n * sizeof(int));
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(n * sizeof(int));
		memcpy(CMSG_DATA(c), fds, n * sizeof(int));
	}
	assert_int_equal(sendmsg(ctl, &mh, 0), (ssize_t)sizeof(*m));
}

/* What a compromised VMM might send: each refused, and every descriptor
 * that came with it closed (the far end of each sees EOF). */
static void test_flow_recv_refuses(void **state)
{
	(void)state;
	int ctl[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ctl), 0);
	struct broker_flow good = good_flow(), bad = good_flow();
	strcpy(bad.dst.addr, "metadata.google.internal");
	struct broker_flow m;
	int fd = -1;
	for (int kind = 0; kind < 5; kind++) {
		int a[2], b[2];
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, a), 0);
		assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, b), 0);
		switch (kind) {
		case 0:		/* a name, not an address */
			send_with_fds(ctl[1], &bad, a, 1);
			break;
		case 1:		/* two descriptors */
			send_with_fds(ctl[1], &good, (int[]){ a[1], b[1] }, 2);
			break;
		case 2:		/* a datagram socket */
			send_with_fds(ctl[1], &good, b, 1);
			break;
		case 3:		/* no descriptor */
			send_with_fds(ctl[1], &good, NULL, 0);
			break;
		case 4: {	/* a pipe */
			int p[2];
			assert_int_equal(pipe2(p, O_CLOEXEC), 0);
			send_with_fds(ctl[1], &good, p, 1);
			close(p[0]);
			assert_int_equal(broker_flow_recv(ctl[0], &m, &fd), -EPROTO);
			signal(SIGPIPE, SIG_IGN);
			errno = 0;
			assert_int_equal(write(p[1], "x", 1), -1);	/* no reader left */
			assert_int_equal(errno, EPIPE);
			close(p[1]);
			break;
		}
		}
		if (kind != 4)
			assert_int_equal(broker_flow_recv(ctl[0], &m, &fd), -EPROTO);
		close(a[1]);
		close(b[1]);
		char c;
		if (kind < 2) {
			assert_int_equal(read(a[0], &c, 1), 0);	/* every copy of a[1] closed */
		}
		close(a[0]);
		close(b[0]);
	}
	/* and the socket still works: a good one after the bad ones */
	int a[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, a), 0);
	send_with_fds(ctl[1], &good, &a[1], 1);
	assert_int_equal(broker_flow_recv(ctl[0], &m, &fd), 1);
	assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);	/* made so, whatever it was */
	close(fd);
	close(a[0]);
	close(a[1]);
	close(ctl[1]);
	assert_int_equal(broker_flow_recv(ctl[0], &m, &fd), 0);	/* the VMM is gone */
	close(ctl[0]);
}

/* --- broker_run with this binary as the VMM --- */

/* The upstream: one HTTP/1.1 exchange on a loopback listener. */
static void *http_server(void *arg)
{
	int lfd = *(int *)arg;
	int fd = accept(lfd, NULL, NULL);
	if (fd < 0)
		return NULL;
	char req[4096];
	size_t got = 0;
	while (got < sizeof(req) - 1) {
		ssize_t n = read(fd, req + got, sizeof(req) - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
		req[got] = 0;
		if (strstr(req, "\r\n\r\n"))
			break;
	}
	static const char reply[] = "HTTP/1.1 200 OK\r\nContent-Length: 8\r\nConnection: close\r\n\r\nupstream";
	if (write(fd, reply, sizeof(reply) - 1) < 0) {
		/* the client sees it */
	}
	close(fd);
	return NULL;
}

static int run_broker(char *mode, int upstream_port)
{
	struct secrets sec;
	struct repolist repos;
	struct policy egress;	/* permissive */
	secrets_init(&sec);
	repolist_init(&repos);
	policy_init(&egress);
	struct proxy_config cfg = { .secrets = &sec, .repos = &repos, .egress = &egress, .nconnect_to = 1 };
	cfg.connect_to[0] = (struct proxy_connect_to){ .host = "127.0.0.1", .port = 80,
						       .addr = "127.0.0.1",
						       .addr_port = (uint16_t)upstream_port };
	char *argv[] = { mode, NULL };
	struct broker_launch bl = { .proxy = &cfg, .vmm_argv = argv };
	int status = broker_run(&bl);
	repolist_fini(&repos);
	secrets_fini(&sec);
	return status;
}

static void *send_sigterm(void *arg)
{
	(void)arg;
	usleep(500000);
	kill(getpid(), SIGTERM);
	return NULL;
}

static void test_broker_run(void **state)
{
	(void)state;
	setenv("KVMBOX_SECCOMP", "off", 1);
	setenv("KVX_SECRET_FOR_TEST", "XYZZY-real", 1);
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(lfd, 4), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &sl), 0);
	pthread_t srv;
	assert_int_equal(pthread_create(&srv, NULL, http_server, &lfd), 0);
	/* a stray descriptor the VMM must not inherit */
	int stray = open("/dev/null", O_RDONLY);
	assert_true(stray > 3);
	assert_int_equal(run_broker("flow", ntohs(sa.sin_port)), 0);
	close(stray);
	pthread_join(srv, NULL);
	/* a refused flow: a 403 with its line, and nothing dialled */
	assert_int_equal(run_broker("deny", ntohs(sa.sin_port)), 0);
	struct pollfd lp = { .fd = lfd, .events = POLLIN };
	assert_int_equal(poll(&lp, 1, 0), 0);	/* no connection waiting */
	close(lfd);
	assert_int_equal(run_broker("exit7", 1), 7);
	assert_int_equal(run_broker("sigkill", 1), 128 + SIGKILL);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, send_sigterm, NULL), 0);
	assert_int_equal(run_broker("sigterm", 1), 42);
	pthread_join(t, NULL);
}

/* The VMM's part: exit 0 when all is as it should be, else the step. */
static int fake_vmm(const char *mode)
{
	if (!strcmp(mode, "exit7"))
		return 7;
	if (!strcmp(mode, "sigkill"))
		raise(SIGKILL);
	if (!strcmp(mode, "sigterm")) {
		sigset_t s;
		sigemptyset(&s);
		sigaddset(&s, SIGTERM);
		sigprocmask(SIG_BLOCK, &s, NULL);
		struct timespec ts = { 10, 0 };
		return sigtimedwait(&s, NULL, &ts) == SIGTERM ? 42 : 41;
	}
	if (getenv("KVX_SECRET_FOR_TEST") || !getenv("KVMBOX_SECCOMP"))
		return 10;	/* the allow-list: secrets out, knobs in */
	if (broker_ctl_check(BROKER_CTL_FD) < 0)
		return 11;
	for (int fd = BROKER_CTL_FD + 1; fd < 256; fd++)
		if (fcntl(fd, F_GETFD) >= 0)
			return 12;	/* a descriptor leaked from the broker */
	struct broker_hello *h = calloc(1, sizeof(*h));
	if (!h || broker_hello_read(BROKER_CTL_FD, h, 5000) < 0 ||
	    !strstr(h->ca_pem, "BEGIN CERTIFICATE"))
		return 13;
	free(h);
	struct proxy_dst d = { .addr = "127.0.0.1", .port = 80 };
	bool deny = !strcmp(mode, "deny");
	if (deny)
		snprintf(d.deny, sizeof(d.deny), "kvmbox: test refusal (--allow-test)");
	int fd = broker_flow_send(BROKER_CTL_FD, &d);
	if (fd < 0)
		return 14;
	static const char req[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
	if (write(fd, req, sizeof(req) - 1) != (ssize_t)sizeof(req) - 1)
		return 15;
	char buf[4096];
	size_t got = 0;
	for (int i = 0; i < 500 && got < sizeof(buf) - 1; i++) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		poll(&p, 1, 20);
		ssize_t n = read(fd, buf + got, sizeof(buf) - 1 - got);
		if (n == 0)
			break;
		if (n > 0)
			got += (size_t)n;
	}
	buf[got] = 0;
	if (deny)
		return strncmp(buf, "HTTP/1.1 403", 12) || !strstr(buf, "\r\n\r\nkvmbox: test refusal (--allow-test)\n")
			       ? 17 : 0;
	if (strncmp(buf, "HTTP/1.1 200", 12) || !strstr(buf, "upstream"))
		return 16;
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], ".vm"))
		_exit(fake_vmm(argv[2]));	/* started by broker_run */
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vmm_env_allow_list),
		cmocka_unit_test(test_flow_check),
		cmocka_unit_test(test_vmm_end),
		cmocka_unit_test(test_flow_recv_refuses),
		cmocka_unit_test(test_broker_run),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
