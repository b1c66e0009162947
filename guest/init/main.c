/* guest/init/main.c - kvmbox-init, the guest's PID 1.
 *
 * Runs inside the microVM as the first process: mounts the kernel
 * filesystems (/dev, /proc, /sys, /dev/pts, /dev/shm, /tmp, /run), writes
 * the boot marker to kvmbox's marker port, runs the command kvmbox passed in
 * kvmbox.argv on the kernel command line (a shell when there is none) with a
 * sane environment, reaps every process (it is PID 1, orphans land here),
 * reports the command's exit status on the marker port and resets the
 * machine, which ends kvmbox with that status.  The port contract is in
 * guest/init/kinit.h (host side: devices/legacy/marker.h).
 *
 * Built static (no loader, no libraries in the image) by
 * guest/init/module.mk into $(BUILD)/kvmbox-init.  Errors are one line on
 * the console prefixed "kvmbox-init: "; a malformed command line or a share
 * that cannot be mounted (guest/init/mounts.c) ends the VM with status 2, a
 * command that cannot be executed with 127 (not found) or 126, like a shell.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/random.h>
#include <sys/io.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "guest/init/console.h"
#include "guest/init/kinit.h"
#include "guest/abi/cmdline.h"
#include "guest/init/mounts.h"
#include "guest/init/netcfg.h"

#define INIT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
/* How long processes left behind by the command get after SIGTERM. */
#define STRAGGLER_GRACE_MS 500

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	dprintf(STDERR_FILENO, "kvmbox-init: %s\n", line);
}

/* Port access for the marker: whether ioperm() worked (set once, before
 * any other use; the one piece of global state, read by marker_write). */
static bool marker_ok;

static int marker_open(void)
{
	if (ioperm(KBX_MARKER_PORT, KBX_MARKER_PORTS, 1) < 0)
		return -errno;
	marker_ok = true;
	return 0;
}

static void marker_write(uint32_t value)
{
	if (marker_ok)
		outl(value, KBX_MARKER_PORT);
}

static uint32_t marker_read(uint16_t port)
{
	return marker_ok ? inl(port) : 0;
}

/* kvmbox.snapshot=1: ask to be saved here, just before the command runs.
 * The write returns at once when no snapshot is taken, and in each VM
 * restored from it otherwise: from here on every such VM must differ from
 * its siblings and from the moment it was saved, so fresh host entropy
 * goes into the pool and the generator is reseeded before anything reads
 * it, and the clock is set to the host's. */
static void snapshot_point(void)
{
	marker_write(KBX_MARKER_SNAPSHOT);
	if (!marker_ok)
		return;
	struct {
		int entropy_count, buf_size;
		uint32_t buf[16];
	} seed = { .entropy_count = 16 * 32, .buf_size = sizeof(seed.buf) };
	for (int i = 0; i < 16; i++)
		seed.buf[i] = marker_read(KBX_ENTROPY_PORT);
	int fd = open("/dev/urandom", O_RDWR | O_CLOEXEC);
	if (fd < 0 || ioctl(fd, RNDADDENTROPY, &seed) < 0 || ioctl(fd, RNDRESEEDCRNG) < 0)
		say("reseeding the random generator after the snapshot point: %s", strerror(errno));
	if (fd >= 0)
		close(fd);
	explicit_bzero(&seed, sizeof(seed));
	uint32_t lo = marker_read(KBX_TIME_PORT), hi = marker_read(KBX_TIME_PORT + 4);
	struct timespec now = { .tv_sec = (time_t)((uint64_t)hi << 32 | lo),
				.tv_nsec = (long)marker_read(KBX_TIME_PORT + 8) };
	if (now.tv_nsec < 1000000000L && clock_settime(CLOCK_REALTIME, &now) < 0)
		say("setting the clock after the snapshot point: %s", strerror(errno));
}

/* mkdir -p of one level plus mount; EBUSY (already mounted) is fine. */
static void mount_fs(const char *src, const char *dir, const char *type,
		     unsigned long flags, const char *data, mode_t mode)
{
	if (mkdir(dir, mode) < 0 && errno != EEXIST)
		say("mkdir %s: %s", dir, strerror(errno));
	if (mount(src, dir, type, flags, data) < 0 && errno != EBUSY)
		say("mount %s on %s: %s", type, dir, strerror(errno));
}

/* The kernel gives init /dev/console as fds 0-2 only when the initramfs
 * has that node; otherwise open it from the devtmpfs just mounted. */
static void ensure_console(void)
{
	if (fcntl(STDIN_FILENO, F_GETFD) >= 0 && fcntl(STDOUT_FILENO, F_GETFD) >= 0 &&
	    fcntl(STDERR_FILENO, F_GETFD) >= 0)
		return;
	int fd = open("/dev/console", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return;	/* nowhere to report it either */
	for (int i = 0; i < 3; i++)
		dup2(fd, i);
	if (fd > 2)
		close(fd);
}

static void mount_kernel_filesystems(void)
{
	const unsigned long nodev = MS_NOSUID | MS_NOEXEC | MS_NODEV;
	mount_fs("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755", 0755);
	ensure_console();
	mount_fs("proc", "/proc", "proc", nodev, NULL, 0555);
	mount_fs("sysfs", "/sys", "sysfs", nodev, NULL, 0555);
	mount_fs("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
		 "newinstance,ptmxmode=0666,mode=0620,gid=5", 0755);
	if (symlink("pts/ptmx", "/dev/ptmx") < 0 && errno != EEXIST)
		say("symlink /dev/ptmx: %s", strerror(errno));
	mount_fs("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777", 01777);
	mount_fs("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777", 01777);
	mount_fs("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755", 0755);
}

/* Read /proc/cmdline into buf (NUL-terminated). */
static int read_cmdline(char *buf, size_t size)
{
	int fd = open("/proc/cmdline", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	size_t got = 0;
	while (got + 1 < size) {
		ssize_t n = read(fd, buf + got, size - 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	buf[got] = 0;
	return 0;
}

/* Keep what the kernel passed to init (unknown NAME=VALUE parameters), and
 * set what a command expects to find. */
static void setup_environment(void)
{
	setenv("PATH", INIT_PATH, 1);
	setenv("HOME", "/root", 1);
	setenv("TERM", "linux", 0);
	setenv("USER", "root", 0);
	setenv("LOGNAME", "root", 0);
	if (mkdir("/root", 0700) < 0 && errno != EEXIST)
		say("mkdir /root: %s", strerror(errno));
	if (chdir("/") < 0)
		say("chdir /: %s", strerror(errno));
	if (sethostname("kvmbox", 6) < 0)
		say("sethostname: %s", strerror(errno));
}

/* In the child: a session of its own with the console as controlling
 * terminal (job control for shells), default signal state, then exec. */
static void exec_command(char **argv)
{
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	setsid();
	if (isatty(STDIN_FILENO))
		ioctl(STDIN_FILENO, TIOCSCTTY, 0);
	execvp(argv[0], argv);
	int e = errno;
	say("cannot run %s: %s", argv[0], strerror(e));
	_exit(e == ENOENT ? 127 : 126);
}

/* Reap children until `pid` exits; returns its exit code. */
static int wait_for(pid_t pid)
{
	for (;;) {
		int st;
		pid_t w = waitpid(-1, &st, 0);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			say("waitpid: %s", strerror(errno));
			return 255;
		}
		if (w == pid)
			return kinit_exit_code(st);
	}
}

static int run_command(char **argv)
{
	pid_t pid = fork();
	if (pid < 0) {
		say("fork: %s", strerror(errno));
		return 255;
	}
	if (pid == 0)
		exec_command(argv);
	return wait_for(pid);
}

/* Reap without blocking; true once no child is left. */
static bool reap_all(void)
{
	for (;;) {
		pid_t w = waitpid(-1, NULL, WNOHANG);
		if (w > 0)
			continue;
		return w < 0 && errno == ECHILD;
	}
}

/* Whatever the command left running gets SIGTERM, a short grace, then
 * SIGKILL (kill(-1) from PID 1 reaches every process but init). */
static void stop_stragglers(void)
{
	if (kill(-1, SIGTERM) < 0)
		return;	/* ESRCH: nothing left */
	const struct timespec tick = { 0, 10 * 1000 * 1000 };
	for (int ms = 0; ms < STRAGGLER_GRACE_MS; ms += 10) {
		if (reap_all())
			return;
		nanosleep(&tick, NULL);
	}
	kill(-1, SIGKILL);
	for (int ms = 0; ms < STRAGGLER_GRACE_MS && !reap_all(); ms += 10)
		nanosleep(&tick, NULL);
}

static void finish(int code)
{
	stop_stragglers();
	if (isatty(STDOUT_FILENO))
		tcdrain(STDOUT_FILENO);	/* the command's last output reaches the UART */
	marker_write(kbx_marker_exit(code));
	sync();
	reboot(RB_AUTOBOOT);
	say("reboot: %s", strerror(errno));
	reboot(RB_POWER_OFF);
	for (;;)
		pause();
}

/* Whether CPUID names KVM as the hypervisor: the checkpoint touches I/O
 * ports, which root on a host could too. */
static bool under_kvm(void)
{
	uint32_t a = 0x40000000, b, c, d;
	__asm__ volatile("cpuid" : "+a"(a), "=b"(b), "=c"(c), "=d"(d));
	char sig[13];
	memcpy(sig, &b, 4);
	memcpy(sig + 4, &c, 4);
	memcpy(sig + 8, &d, 4);
	sig[12] = '\0';
	return !strcmp(sig, "KVMKVMKVM");
}

/* kvmbox-checkpoint (a link to this program): save the whole VM here and
 * now, with everything running in it, when kvmbox was started with
 * --snapshot DIR.  The saved VM stops; a restore goes on from this call,
 * which then returns 0 with fresh entropy and the host's clock. */
static int checkpoint_main(void)
{
	static char cmdline[65536];
	size_t len;
	const char *snap = NULL;
	if (read_cmdline(cmdline, sizeof(cmdline)) == 0)
		snap = kinit_cmdline_param(cmdline, KBX_PARAM_SNAPSHOT, &len);
	if (!snap || len != 1 || snap[0] != '1' || !under_kvm()) {
		dprintf(STDERR_FILENO, "kvmbox-checkpoint: this is not a kvmbox guest started with "
			"--snapshot DIR\n");
		return 2;
	}
	int r = marker_open();
	if (r < 0) {
		dprintf(STDERR_FILENO, "kvmbox-checkpoint: ioperm(0x%x): %s (run it as root)\n",
			KBX_MARKER_PORT, strerror(-r));
		return 1;
	}
	snapshot_point();
	return 0;
}

int main(int argc, char **argv)
{
	const char *self = argc > 0 ? strrchr(argv[0], '/') : NULL;
	if (argc > 0 && !strcmp(self ? self + 1 : argv[0], "kvmbox-checkpoint"))
		return checkpoint_main();
	/* Never touch I/O ports outside a guest (root on a host could). */
	if (getpid() != 1) {
		say("must run as PID 1 (the guest's init), not as pid %d", (int)getpid());
		return KINIT_EXIT_BAD_CMDLINE;
	}
	/* First thing, so the VMM's time-to-init is as honest as it gets. */
	int marker_rc = marker_open();
	marker_write(KBX_MARKER_BOOT);
	mount_kernel_filesystems();
	if (marker_rc < 0)
		say("ioperm(0x%x): %s; kvmbox will not see the exit status",
		    KBX_MARKER_PORT, strerror(-marker_rc));
	setup_environment();

	static char cmdline[65536];
	int rc = read_cmdline(cmdline, sizeof(cmdline));
	if (rc < 0) {
		say("cannot read /proc/cmdline: %s", strerror(-rc));
		finish(KINIT_EXIT_BAD_CMDLINE);
	}
	struct kinit_argv cmd;
	char err[256];
	rc = kinit_argv_from_cmdline(cmdline, &cmd, err, sizeof(err));
	if (rc < 0) {
		say("%s", err);
		finish(KINIT_EXIT_BAD_CMDLINE);
	}
	if (kbx_mounts_setup(cmdline, err, sizeof(err)) < 0) {	/* shares, overlay root */
		say("%s", err);
		finish(KINIT_EXIT_BAD_CMDLINE);
	}
	kbx_net_setup(cmdline);	/* lo, and kvmbox.net= when kvmbox gave a card */
	size_t snap_len;
	const char *snap = kinit_cmdline_param(cmdline, KBX_PARAM_SNAPSHOT, &snap_len);
	if (snap && snap_len == 1 && snap[0] == '1')
		snapshot_point();
	if (kbx_console_wanted(cmdline)) {	/* kvmbox shell: CMD over the console ports */
		/* Returns once the host hung up kvmbox.ctl after EXIT, which
		 * kvmbox never does (it stops the VM when the output is
		 * drained), or when the session failed: see console.h. */
		int st = kbx_console_session(10000);
		if (st < 0)
			say("kvmbox.ctl session: %s", strerror(-st));
		finish(st < 0 ? KINIT_EXIT_BAD_CMDLINE : st);
	}
	char *shell[] = { "/bin/sh", NULL };
	finish(run_command(rc == 1 ? shell : cmd.argv));
	return 0;
}
