/* tests/bench/vmbench.c - what `make bench-vm` measures inside a guest, and
 * the server it measures the network against.  Built static, so the same
 * binary runs in L1 (the server) and, from a share, in any guest kernel
 * with nothing but busybox beside it (kvmbox's and QEMU's alike).
 *
 *   vmbench serve PORT            in L1: PORT echoes, sends or sinks (the
 *                                 client's first byte says which), PORT+1
 *                                 accepts and closes (connections/s)
 *   vmbench FIGURE ARGS...        in the guest, one line "FIG name value unit":
 *     stat-tree DIR               lstat every entry under DIR      (entries/s)
 *     small-files DIR N           create, write 4 KiB, close N files, then
 *                                 remove them (what npm install does) (files/s)
 *     randread FILE N             N preads of 4 KiB at random offsets (reads/s)
 *     seqread FILE                read it whole, 1 MiB at a time       (MB/s)
 *     seqwrite FILE MB            write MB MiB and fsync                (MB/s)
 *     rr HOST PORT N              N 1-byte request/responses on one connection
 *                                 (us per round trip)
 *     rr-busy HOST PORT N FILE    the same while a child reads FILE whole
 *                                 again and again, 1 MiB at a time, its
 *                                 cached pages dropped each pass (a build or
 *                                 npm reading the share while the agent
 *                                 talks to its API)            (us per round trip)
 *     conn HOST PORT SECS         connect and close for SECS s to PORT+1 (conn/s)
 *     download HOST PORT MB       receive MB MiB on one connection       (MB/s)
 *     upload HOST PORT MB         send MB MiB on one connection          (MB/s)
 *     time NAME SECS CMD ARGS...  run CMD, its output to /dev/null, as figure
 *                                 NAME (`git status`); stopped after SECS s,
 *                                 the figure then ">SECS*1000"          (ms)
 *     rate NAME N CMD ARGS...     the same for a CMD that makes N requests
 *                                 (curl on one connection), no limit (req/s)
 * Exit 0, or 1 with one line on stderr.  Not a test.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MIB (1u << 20)

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int die(const char *what)
{
	fprintf(stderr, "vmbench: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void fig(const char *name, double value, const char *unit)
{
	printf("FIG %s %.1f %s\n", name, value, unit);
	fflush(stdout);
}

static int write_all(int fd, const void *buf, size_t len)
{
	for (size_t off = 0; off < len;) {
		ssize_t n = write(fd, (const char *)buf + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		off += (size_t)n;
	}
	return 0;
}

static int read_full(int fd, void *buf, size_t len)
{
	for (size_t off = 0; off < len;) {
		ssize_t n = read(fd, (char *)buf + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		off += (size_t)n;
	}
	return 0;
}

/* ---- files ---- */

static unsigned long entries;
static int count_entry(const char *path, const struct stat *st, int type, struct FTW *f)
{
	(void)path, (void)st, (void)type, (void)f;
	entries++;
	return 0;
}

static void stat_tree(const char *dir)
{
	double t0 = now();
	if (nftw(dir, count_entry, 64, FTW_PHYS) < 0)
		die(dir);
	fig("stat-tree", (double)entries / (now() - t0), "entries/s");
}

static void small_files(const char *dir, unsigned n)
{
	static char block[4096];
	char p[4096];
	double t0 = now();
	for (unsigned i = 0; i < n; i++) {
		snprintf(p, sizeof(p), "%s/f%u", dir, i);
		int fd = open(p, O_CREAT | O_WRONLY | O_TRUNC, 0644);
		if (fd < 0 || write_all(fd, block, sizeof(block)) < 0 || close(fd) < 0)
			die(p);
	}
	for (unsigned i = 0; i < n; i++) {
		snprintf(p, sizeof(p), "%s/f%u", dir, i);
		if (unlink(p) < 0)
			die(p);
	}
	fig("small-files", n / (now() - t0), "files/s");
}

static void randread(const char *file, unsigned n)
{
	int fd = open(file, O_RDONLY);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0 || st.st_size < 4096)
		die(file);
	uint64_t blocks = (uint64_t)st.st_size / 4096, x = 88172645463325252ull;
	static char buf[4096];
	double t0 = now();
	for (unsigned i = 0; i < n; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;	/* xorshift: the same offsets every run */
		if (pread(fd, buf, sizeof(buf), (off_t)((x % blocks) * 4096)) != sizeof(buf))
			die(file);
	}
	fig("randread-4k", n / (now() - t0), "reads/s");
	close(fd);
}

static void seqread(const char *file)
{
	static char buf[MIB];
	int fd = open(file, O_RDONLY);
	if (fd < 0)
		die(file);
	double t0 = now(), total = 0;
	for (ssize_t n; (n = read(fd, buf, sizeof(buf))) != 0; total += (double)n)
		if (n < 0)
			die(file);
	fig("seqread", total / MIB / (now() - t0), "MB/s");
	close(fd);
}

static void seqwrite(const char *file, unsigned mb)
{
	static char buf[MIB];
	memset(buf, 0x5a, sizeof(buf));
	int fd = open(file, O_CREAT | O_WRONLY | O_TRUNC, 0644);
	if (fd < 0)
		die(file);
	double t0 = now();
	for (unsigned i = 0; i < mb; i++)
		if (write_all(fd, buf, sizeof(buf)) < 0)
			die(file);
	if (fsync(fd) < 0 || close(fd) < 0)
		die(file);
	fig("seqwrite", mb / (now() - t0), "MB/s");
	unlink(file);
}

static void on_alarm(int sig) { (void)sig; }

/* A command timed as a figure (git status), or as N requests a second
 * when n is not 0: fork, exec, wait; its output goes to /dev/null so the
 * console's speed is not part of it.  A limit (seconds, 0: none) stops
 * the command's process group and gives the figure as ">limit". */
static void time_command(const char *name, unsigned n, unsigned limit, char **argv)
{
	double t0 = now();
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		setpgid(0, 0);
		int null = open("/dev/null", O_WRONLY);
		if (null >= 0)
			dup2(null, STDOUT_FILENO);
		execv(argv[0], argv);
		fprintf(stderr, "vmbench: %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	struct sigaction sa = { .sa_handler = on_alarm };	/* no SA_RESTART */
	sigaction(SIGALRM, &sa, NULL);
	alarm(limit);
	int status;
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			die("waitpid");
		kill(-pid, SIGKILL);	/* the limit */
	}
	if (limit && now() - t0 >= limit) {
		printf("FIG %s >%u ms\n", name, limit * 1000);
		fflush(stdout);
		return;
	}
	alarm(0);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "vmbench: %s: %s failed (status %d)\n", name, argv[0], status);
		exit(1);
	}
	double secs = now() - t0;
	if (n)
		fig(name, n / secs, "req/s");
	else
		fig(name, secs * 1e3, "ms");
}

/* ---- network ---- */

static int dial(const char *host, int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	if (inet_pton(AF_INET, host, &a.sin_addr) != 1) {
		errno = EINVAL;
		die(host);
	}
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		die("connect");
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static void rr(const char *host, int port, unsigned n, const char *name)
{
	int fd = dial(host, port);
	char c = 'e';
	if (write_all(fd, &c, 1) < 0)
		die("rr");
	double t0 = now();
	for (unsigned i = 0; i < n; i++)
		if (write_all(fd, &c, 1) < 0 || read_full(fd, &c, 1) < 0)
			die("rr");
	fig(name, (now() - t0) / n * 1e6, "us");
	close(fd);
}

/* The child of rr-busy: read file whole, drop its cached pages, again,
 * until killed. */
static void read_forever(const char *file)
{
	static char buf[MIB];
	for (;;) {
		int fd = open(file, O_RDONLY);
		if (fd < 0)
			die(file);
		for (ssize_t n; (n = read(fd, buf, sizeof(buf))) != 0;)
			if (n < 0)
				die(file);
		posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
		close(fd);
	}
}

static void rr_busy(const char *host, int port, unsigned n, const char *file)
{
	pid_t reader = fork();
	if (reader < 0)
		die("fork");
	if (reader == 0)
		read_forever(file);
	usleep(200000);	/* the reader is under way */
	rr(host, port, n, "tcp-rr-busy");
	kill(reader, SIGKILL);
	waitpid(reader, NULL, 0);
}

static void conn(const char *host, int port, double secs)
{
	unsigned n = 0;
	double t0 = now(), t;
	while ((t = now()) - t0 < secs) {
		int fd = dial(host, port + 1);
		char c;
		if (read(fd, &c, 1) < 0)	/* the server's close: the connection was made */
			die("conn");
		close(fd);
		n++;
	}
	fig("tcp-conn", n / (t - t0), "conn/s");
}

static void download(const char *host, int port, unsigned mb)
{
	static char buf[MIB];
	int fd = dial(host, port);
	char req[5] = { 'd' };
	memcpy(req + 1, &mb, 4);
	if (write_all(fd, req, sizeof(req)) < 0)
		die("download");
	double t0 = now();
	if (read_full(fd, buf, 1) < 0)
		die("download");
	for (uint64_t left = (uint64_t)mb * MIB - 1; left;) {
		ssize_t n = read(fd, buf, left < sizeof(buf) ? left : sizeof(buf));
		if (n <= 0)
			die("download");
		left -= (uint64_t)n;
	}
	fig("download", mb / (now() - t0), "MB/s");
	close(fd);
}

static void upload(const char *host, int port, unsigned mb)
{
	static char buf[MIB];
	int fd = dial(host, port);
	char c = 'u';
	double t0 = now();
	if (write_all(fd, &c, 1) < 0)
		die("upload");
	for (unsigned i = 0; i < mb; i++)
		if (write_all(fd, buf, sizeof(buf)) < 0)
			die("upload");
	shutdown(fd, SHUT_WR);
	if (read_full(fd, &c, 1) < 0)	/* the server has every byte */
		die("upload");
	fig("upload", mb / (now() - t0), "MB/s");
	close(fd);
}

/* ---- the server (L1) ---- */

static void serve_one(int fd)
{
	static char buf[MIB];
	char mode;
	if (read_full(fd, &mode, 1) < 0)
		_exit(0);
	if (mode == 'e') {
		while (read_full(fd, &mode, 1) == 0 && write_all(fd, &mode, 1) == 0)
			;
	} else if (mode == 'd') {
		unsigned mb;
		if (read_full(fd, &mb, 4) == 0)
			for (unsigned i = 0; i < mb && write_all(fd, buf, sizeof(buf)) == 0; i++)
				;
	} else if (mode == 'u') {
		while (read(fd, buf, sizeof(buf)) > 0)
			;
		write_all(fd, "k", 1);
	}
	_exit(0);
}

static int listen_on(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 128) < 0)
		die("listen");
	return fd;
}

static void serve(int port)
{
	signal(SIGCHLD, SIG_IGN);	/* no zombies */
	int data = listen_on(port), closer = listen_on(port + 1);
	if (fork() == 0) {	/* PORT+1: accept and close, nothing else */
		for (;;) {
			int c = accept(closer, NULL, NULL);
			if (c >= 0)
				close(c);
		}
	}
	for (;;) {
		int c = accept(data, NULL, NULL), one = 1;
		if (c < 0)
			continue;
		setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (fork() == 0)
			serve_one(c);
		close(c);
	}
}

int main(int argc, char **argv)
{
	const char *f = argc > 1 ? argv[1] : "";
	unsigned n = argc > 3 ? (unsigned)strtoul(argv[3], NULL, 10) : 0;
	unsigned m = argc > 4 ? (unsigned)strtoul(argv[4], NULL, 10) : 0;
	if (!strcmp(f, "serve") && argc == 3)
		serve(atoi(argv[2]));
	else if (!strcmp(f, "stat-tree") && argc == 3)
		stat_tree(argv[2]);
	else if (!strcmp(f, "small-files") && argc == 4)
		small_files(argv[2], n);
	else if (!strcmp(f, "randread") && argc == 4)
		randread(argv[2], n);
	else if (!strcmp(f, "seqread") && argc == 3)
		seqread(argv[2]);
	else if (!strcmp(f, "seqwrite") && argc == 4)
		seqwrite(argv[2], n);
	else if (!strcmp(f, "rr") && argc == 5)
		rr(argv[2], atoi(argv[3]), m, "tcp-rr");
	else if (!strcmp(f, "rr-busy") && argc == 6)
		rr_busy(argv[2], atoi(argv[3]), m, argv[5]);
	else if (!strcmp(f, "conn") && argc == 5)
		conn(argv[2], atoi(argv[3]), m);
	else if (!strcmp(f, "download") && argc == 5)
		download(argv[2], atoi(argv[3]), m);
	else if (!strcmp(f, "upload") && argc == 5)
		upload(argv[2], atoi(argv[3]), m);
	else if (!strcmp(f, "time") && argc >= 5 && n)
		time_command(argv[2], 0, n, argv + 4);
	else if (!strcmp(f, "rate") && argc >= 5 && n)
		time_command(argv[2], n, 0, argv + 4);
	else {
		fprintf(stderr, "usage: vmbench serve PORT | FIGURE ARGS (see tests/bench/vmbench.c)\n");
		return 2;
	}
	return 0;
}
