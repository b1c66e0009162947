/* launch/session/proc.c - a session's process as it stands: alive or not,
 * what it uses, and stopping it (see session.h).  A pid alone is no name
 * for a process (pids are reused), so every look compares the start time
 * recorded with the one /proc gives, and signals go through a pidfd taken
 * after that comparison. */
#include "launch/session/session.h"
#include "vmm/vmm.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* /proc/PID/stat's fields after the command (which may hold spaces and
 * parentheses: the last ')' ends it), into buf; a pointer to field 3. */
static char *stat_fields(pid_t pid, char *buf, size_t bufsz)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	ssize_t n = read(fd, buf, bufsz - 1);
	close(fd);
	if (n <= 0)
		return NULL;
	buf[n] = 0;
	char *p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p + 2 : NULL;
}

/* Field k (3-based, as proc(5) numbers them) of a stat line. */
static unsigned long long stat_field(const char *f, int k)
{
	for (int i = 3; i < k && f; i++) {
		f = strchr(f, ' ');
		if (f)
			f++;
	}
	return f ? strtoull(f, NULL, 10) : 0;
}

int session_proc_start_ticks(pid_t pid, unsigned long long *out)
{
	char buf[1024];
	const char *f = stat_fields(pid, buf, sizeof(buf));
	if (!f)
		return -ESRCH;
	*out = stat_field(f, 22);
	return 0;
}

enum session_state session_state(const struct session_info *i)
{
	if (i->ended)
		return i->suspended ? SESSION_SUSPENDED : SESSION_EXITED;
	return session_lock_held(i->name) ? SESSION_RUNNING : SESSION_DEAD;
}

const char *session_state_name(enum session_state st)
{
	switch (st) {
	case SESSION_RUNNING: return "running";
	case SESSION_EXITED: return "exited";
	case SESSION_SUSPENDED: return "suspended";
	default: return "dead";
	}
}

/* rss (bytes) and cpu (ticks) of pid, and of each process whose parent it
 * is, down the tree (the broker, the VMM it started). */
static void add_tree(pid_t pid, int depth, unsigned long long *rss_pages, unsigned long long *ticks)
{
	char buf[1024];
	const char *f = stat_fields(pid, buf, sizeof(buf));
	if (!f)
		return;
	*ticks += stat_field(f, 14) + stat_field(f, 15);
	*rss_pages += stat_field(f, 24);
	if (depth >= 4)
		return;
	DIR *d = opendir("/proc");
	if (!d)
		return;
	for (struct dirent *e; (e = readdir(d));) {
		char *end;
		long child = strtol(e->d_name, &end, 10);
		if (*end || child <= 0)
			continue;
		const char *cf = stat_fields((pid_t)child, buf, sizeof(buf));
		if (cf && (pid_t)stat_field(cf, 4) == pid)
			add_tree((pid_t)child, depth + 1, rss_pages, ticks);
	}
	closedir(d);
}

int session_usage(const struct session_info *i, unsigned long long *rss, unsigned long long *cpu_ns)
{
	if (session_state(i) != SESSION_RUNNING)
		return -ESRCH;
	unsigned long long pages = 0, ticks = 0;
	add_tree(i->pid, 0, &pages, &ticks);
	long hz = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	*rss = pages * (unsigned long long)(page > 0 ? page : 4096);
	*cpu_ns = ticks * (1000000000ull / (unsigned long long)(hz > 0 ? hz : 100));
	return 0;
}

/* Wait up to ms for the process behind pidfd to end: true when it did. */
static bool wait_gone(int pidfd, unsigned ms)
{
	struct pollfd p = { .fd = pidfd, .events = POLLIN };
	return poll(&p, 1, (int)ms) == 1;
}

/* A pidfd of the running session's process: the fd, or -ESRCH (it does
 * not run), -errno. */
static int session_pidfd(const struct session_info *i)
{
	if (i->ended)
		return -ESRCH;
	int pidfd = (int)syscall(SYS_pidfd_open, i->pid, 0);
	if (pidfd < 0)
		return errno == ESRCH ? -ESRCH : -errno;
	/* the pidfd holds this very process from here: check it is the one
	 * (where /proc shows its start time: a hidepid /proc may not) */
	unsigned long long t;
	if (session_state(i) != SESSION_RUNNING ||
	    (session_proc_start_ticks(i->pid, &t) == 0 && t != i->start_ticks)) {
		close(pidfd);
		return -ESRCH;
	}
	return pidfd;
}

int session_suspend(const struct session_info *i, unsigned wait_ms)
{
	if (!i->suspendable)
		return -EOPNOTSUPP;
	int pidfd = session_pidfd(i);
	if (pidfd < 0)
		return pidfd;
	int r = syscall(SYS_pidfd_send_signal, pidfd, VM_SIG_SUSPEND, NULL, 0) < 0 ? -errno : 0;
	if (r == 0 && !wait_gone(pidfd, wait_ms))
		r = -ETIMEDOUT;
	close(pidfd);
	return r == -ESRCH ? 0 : r;
}

int session_stop(const struct session_info *i, unsigned grace_ms)
{
	int pidfd = session_pidfd(i);
	if (pidfd < 0)
		return pidfd;
	static const int sigs[] = { SIGTERM, SIGTERM, SIGKILL };
	int r = -ETIMEDOUT;
	for (size_t k = 0; k < sizeof(sigs) / sizeof(sigs[0]); k++) {
		if (syscall(SYS_pidfd_send_signal, pidfd, sigs[k], NULL, 0) < 0) {
			r = errno == ESRCH ? 0 : -errno;
			break;
		}
		if (wait_gone(pidfd, grace_ms)) {
			r = 0;
			break;
		}
	}
	close(pidfd);
	return r;
}
