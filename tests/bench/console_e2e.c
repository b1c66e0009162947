/* tests/bench/console_e2e.c - end-to-end figures for the guest's terminal:
 * runs a `kvmbox shell` or `kvmbox run` command line on a fresh raw
 * pseudo-terminal (as a user's terminal emulator would, so both paths see
 * the same host side) and times what comes back.  Built statically by
 * bench-console.sh; runs on the host, or inside L1 of the nested harness.
 *
 *   console_e2e cat  -- CMD...   CMD prints "@@GO", a large file, "@@END":
 *                                bytes between the markers and the time
 *                                from the first to the last
 *   console_e2e echo N -- CMD... CMD prints "@@GO" then echoes N single
 *                                bytes back (guest: stty raw -echo; dd
 *                                bs=1 count=N): N one-byte round trips,
 *                                median and mean
 * Prints one line "cat bytes=B secs=S MiBps=R" or "echo n=N median_us=M
 * mean_us=A", then waits for CMD; exit 0 when CMD exited 0.
 */
#include <errno.h>
#include <poll.h>
#include <pty.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define LIMIT_S 600
#define MIN_SZ(a, b) ((a) < (b) ? (a) : (b))

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The last bytes the command printed, shown when it fails. */
static char tail_buf[256];
static size_t tail_len;

static void keep_tail(const char *buf, size_t n)
{
	if (n >= sizeof(tail_buf)) {
		memcpy(tail_buf, buf + n - sizeof(tail_buf), sizeof(tail_buf));
		tail_len = sizeof(tail_buf);
		return;
	}
	size_t keep = MIN_SZ(tail_len, sizeof(tail_buf) - n);
	memmove(tail_buf, tail_buf + tail_len - keep, keep);
	memcpy(tail_buf + keep, buf, n);
	tail_len = keep + n;
}

static void fail(const char *why)
{
	fprintf(stderr, "console_e2e: %s; the command's last output: %.*s\n", why, (int)tail_len,
		tail_buf);
	exit(3);
}

/* Read from fd into buf; exits on EOF / error / LIMIT_S. */
static size_t read_some(int fd, char *buf, size_t cap, double deadline)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	for (;;) {
		if (now_s() > deadline)
			fail("timed out");
		int r = poll(&p, 1, 1000);
		if (r < 0 && errno != EINTR)
			exit(3);
		if (r <= 0)
			continue;
		ssize_t n = read(fd, buf, cap);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			fail("the command's output ended early");
		keep_tail(buf, (size_t)n);
		return (size_t)n;
	}
}

/* Consume output until `mark` has been seen (it may straddle reads); the
 * bytes after it in the last read are counted into *after. */
static void wait_mark(int fd, const char *mark, double deadline, size_t *after)
{
	static char buf[65536];
	size_t ml = strlen(mark), have = 0;	/* chars of mark matched */
	for (;;) {
		size_t n = read_some(fd, buf, sizeof(buf), deadline);
		for (size_t i = 0; i < n; i++) {
			if (buf[i] == mark[have]) {
				if (++have == ml) {
					if (after)
						*after += n - i - 1;
					return;
				}
			} else {
				have = buf[i] == mark[0];
			}
			if (after)
				++*after;
		}
	}
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void bench_echo(int fd, long n, double deadline)
{
	double *rtt = calloc((size_t)n, sizeof(*rtt)), sum = 0;
	if (!rtt)
		exit(3);
	wait_mark(fd, "@@GO", deadline, NULL);
	usleep(200000);		/* the newline after the mark, dd starting */
	char junk[256];
	struct pollfd p = { .fd = fd, .events = POLLIN };
	while (poll(&p, 1, 0) == 1 && read(fd, junk, sizeof(junk)) > 0)
		;
	for (long i = 0; i < n; i++) {
		char c = 'a' + (char)(i % 26), got = 0;
		double t0 = now_s();
		if (write(fd, &c, 1) != 1)
			exit(3);
		while (got != c)
			read_some(fd, &got, 1, deadline);
		rtt[i] = now_s() - t0;
		sum += rtt[i];
	}
	qsort(rtt, (size_t)n, sizeof(*rtt), cmp_double);
	printf("echo n=%ld median_us=%.1f mean_us=%.1f\n", n, rtt[n / 2] * 1e6, sum / n * 1e6);
	free(rtt);
}

static void bench_cat(int fd, double deadline)
{
	size_t bytes = 0;
	wait_mark(fd, "@@GO", deadline, NULL);
	double t0 = now_s();
	wait_mark(fd, "@@END", deadline, &bytes);
	double t = now_s() - t0;
	printf("cat bytes=%zu secs=%.3f MiBps=%.2f\n", bytes, t, bytes / t / 1048576.0);
}

int main(int argc, char **argv)
{
	int a = 1;
	long n = 0;
	if (argc < 4)
		goto usage;
	const char *mode = argv[a++];
	if (!strcmp(mode, "echo"))
		n = atol(argv[a++]);
	else if (strcmp(mode, "cat"))
		goto usage;
	if (a >= argc || strcmp(argv[a++], "--") || a >= argc || (!strcmp(mode, "echo") && n <= 0))
		goto usage;
	if (access("/dev/pts/ptmx", F_OK) < 0) {	/* L1 mounts no devpts */
		mkdir("/dev/pts", 0755);
		mount("devpts", "/dev/pts", "devpts", 0, "ptmxmode=0666");
	}
	struct winsize ws = { .ws_row = 24, .ws_col = 80 };
	struct termios raw;
	memset(&raw, 0, sizeof(raw));
	cfmakeraw(&raw);
	int master;
	pid_t pid = forkpty(&master, NULL, &raw, &ws);
	if (pid < 0) {
		perror("forkpty");
		return 3;
	}
	if (pid == 0) {
		execvp(argv[a], argv + a);
		perror(argv[a]);
		_exit(127);
	}
	double deadline = now_s() + LIMIT_S;
	if (n)
		bench_echo(master, n, deadline);
	else
		bench_cat(master, deadline);
	fflush(stdout);
	/* Drain until the command ends (a full pty would block it). */
	char buf[4096];
	while (read(master, buf, sizeof(buf)) > 0)
		;
	int st;
	waitpid(pid, &st, 0);
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1;
usage:
	fprintf(stderr, "usage: console_e2e cat -- CMD... | console_e2e echo N -- CMD...\n");
	return 2;
}
