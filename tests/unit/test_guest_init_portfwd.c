/* tests/unit/test_guest_init_portfwd.c - the guest's loopback forwarder
 * (guest/init/portfwd.c) against real sockets, in a network namespace of
 * its own (root; skipped otherwise) where 127.0.0.2 stands for the guest's
 * interface address: a 127.0.0.1-only and a ::1-only listener each get a
 * relay that carries a conversation both ways and its end; a wildcard
 * listener gets none; a relay closes when its listener goes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "guest/init/portfwd.h"

static int listen_on(int family, const char *addr, uint16_t port)
{
	struct sockaddr_in6 s6 = { .sin6_family = AF_INET6, .sin6_port = htons(port) };
	struct sockaddr_in s4 = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (family == AF_INET6) {
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		assert_int_equal(inet_pton(AF_INET6, addr, &s6.sin6_addr), 1);
		assert_int_equal(bind(fd, (struct sockaddr *)&s6, sizeof(s6)), 0);
	} else {
		assert_int_equal(inet_pton(AF_INET, addr, &s4.sin_addr), 1);
		assert_int_equal(bind(fd, (struct sockaddr *)&s4, sizeof(s4)), 0);
	}
	assert_int_equal(listen(fd, 4), 0);
	return fd;
}

/* A child that answers each connection on fd with its bytes upper-cased,
 * until the peer's end, then closes.  fd is the child's alone afterwards
 * (so that killing the child removes the listener). */
static pid_t upcase_server(int fd)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid) {
		close(fd);
		return pid;
	}
	prctl(PR_SET_PDEATHSIG, SIGKILL);	/* a failed assertion must not leave it */
	for (;;) {
		int c = accept(fd, NULL, NULL);
		char buf[256];
		ssize_t n;
		while (c >= 0 && (n = read(c, buf, sizeof(buf))) > 0) {
			for (ssize_t i = 0; i < n; i++)
				buf[i] = (char)toupper((unsigned char)buf[i]);
			(void)!write(c, buf, (size_t)n);
		}
		if (c >= 0)
			close(c);
	}
}

static int connect_outer(uint16_t port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
				  .sin_addr.s_addr = inet_addr("127.0.0.2") };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	assert_true(fd >= 0);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Say `msg` through the relay on port and expect it back upper-cased, then
 * end our side and expect the end to come back. */
static void converse(struct portfwd *pf, uint16_t port, const char *msg, const char *want)
{
	int fd = connect_outer(port);
	assert_true(fd >= 0);
	char got[64] = "";
	size_t have = 0, sent = 0;
	bool shut = false, eof = false;
	for (int i = 0; i < 400 && !eof; i++) {
		portfwd_poll(pf, 5);
		if (sent < strlen(msg)) {
			ssize_t n = send(fd, msg + sent, strlen(msg) - sent, MSG_NOSIGNAL);
			if (n > 0)
				sent += (size_t)n;
		} else if (!shut && have == strlen(want)) {
			shutdown(fd, SHUT_WR);
			shut = true;
		}
		ssize_t n = recv(fd, got + have, sizeof(got) - 1 - have, MSG_DONTWAIT);
		if (n > 0)
			have += (size_t)n;
		else if (n == 0)
			eof = true;
	}
	got[have] = 0;
	assert_string_equal(got, want);
	assert_true(eof);
	close(fd);
}

static void test_relays(void **state)
{
	(void)state;
	if (unshare(CLONE_NEWNET) < 0) {
		skip();	/* needs root (CAP_SYS_ADMIN) for a namespace of its own */
		return;
	}
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct ifreq ifr = { .ifr_name = "lo", .ifr_flags = IFF_UP | IFF_LOOPBACK | IFF_RUNNING };
	assert_int_equal(ioctl(s, SIOCSIFFLAGS, &ifr), 0);
	close(s);
	usleep(100000);	/* ::1 appears once lo is up (DAD is skipped on lo) */

	pid_t up4 = upcase_server(listen_on(AF_INET, "127.0.0.1", 5000));
	pid_t up6 = upcase_server(listen_on(AF_INET6, "::1", 5001));
	int any = listen_on(AF_INET, "0.0.0.0", 5002);
	struct portfwd pf;
	assert_int_equal(portfwd_init(&pf, inet_addr("127.0.0.2")), 0);
	portfwd_scan(&pf);
	converse(&pf, 5000, "over ipv4", "OVER IPV4");
	converse(&pf, 5001, "to ::1", "TO ::1");
	/* The wildcard listener is reachable already: no relay of ours. */
	for (int i = 0; i < PORTFWD_MAX_PORTS; i++)
		assert_false(pf.port[i].fd >= 0 && pf.port[i].port == 5002);
	/* The IPv4 listener goes: so does its relay. */
	kill(up4, SIGKILL);
	waitpid(up4, NULL, 0);
	portfwd_scan(&pf);
	for (int i = 0; i < PORTFWD_MAX_PORTS; i++)
		assert_false(pf.port[i].fd >= 0 && pf.port[i].port == 5000);
	portfwd_fini(&pf);
	kill(up6, SIGKILL);
	waitpid(up6, NULL, 0);
	close(any);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_relays),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
