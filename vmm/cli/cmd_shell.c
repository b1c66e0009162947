/* vmm/cli/cmd_shell.c - `kvmbox shell`: an interactive shell (or CMD) in the
 * guest, on a real PTY, through the virtio-console ports.
 *
 * The VM gets a virtio-console with three ports (console_proto.h): port 0
 * (hvc, kernel messages), "kvmbox.tty" (CMD's terminal stream: host stdin
 * in, host stdout out, zero-copy through io_uring) and "kvmbox.ctl" (the
 * control protocol), plus a virtio-rng.  The serial console keeps kernel
 * messages: captured, and shown only with --console or when the guest fails.
 *
 * Session: guest init sends READY on kvmbox.ctl; we answer START (window
 * size, whether stdin/stdout are a terminal, CMD and TERM); SIGWINCH sends
 * RESIZE; host stdin EOF sends STDIN_EOF; the guest's EXIT ends the run once
 * every byte of CMD's output reached stdout, and kvmbox exits with CMD's
 * status.  With a terminal on both stdin and stdout, the terminal is raw
 * while inside (Ctrl-C is a byte for the guest's PTY) and restored on every
 * way out (shell_term.c).  SIGINT/SIGTERM stop the VM (exit 128+sig), as
 * does SIGHUP (the terminal went away).
 *
 * Exit status: CMD's; 2 for bad usage; 1 when the guest stopped without
 * reporting one (one line saying why, then the serial console's tail).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "boot/boot.h"
#include "common/log.h"
#include "common/util.h"
#include "devices/legacy/legacy.h"
#include "devices/virtio/console.h"
#include "devices/virtio/console_proto.h"
#include "devices/virtio/rng.h"
#include "vmm/cli/cli.h"
#include "vmm/cli/run.h"
#include "vmm/cli/shell_term.h"
#include "vmm/vmm.h"

static const char shell_usage[] =
	"usage: kvmbox shell [--kernel PATH] [--initrd PATH] [--cmdline STR] [--memory MiB]\n"
	"                    [--cpus N] [--console] [-- CMD ARGS]\n"
	"\n"
	"Run CMD (default: the guest's shell) in the guest on a PTY wired to this\n"
	"terminal; exit with its status.  Stdin and stdout may also be pipes.\n"
	"  --kernel PATH   guest kernel (default: $KVMBOX_KERNEL)\n"
	"  --initrd PATH   initramfs with kvmbox-init (default: $KVMBOX_INITRD)\n"
	"  --console       show the guest's serial console (kernel messages) on stderr\n"
	"  other flags as for kvmbox run\n";

enum { PORT_HVC = 0, PORT_TTY = 1, PORT_CTL = 2, NPORTS = 3 };

/* Everything one shell session owns (heap: the devices are large). */
struct shell {
	struct vm vm;
	struct uart8250 uart;
	struct i8042 kbc;
	struct marker marker;
	struct vcon *con;
	struct vrng *rng;
	struct run_opts o;
	bool tty;		/* stdin and stdout are terminals: PTY in the guest */
	int serial_fd;		/* memfd capturing the serial console, or stderr */
	bool serial_captured;
	/* control channel */
	struct kbx_ctl_reader rd;
	bool started;		/* START sent */
	bool exited;		/* EXIT received */
	int exit_code;
	/* host signals, read on the loop */
	int sig_fd;
	struct loop_op sig_op;
	struct signalfd_siginfo sig_buf;
	/* waiting for the guest's output to drain after EXIT */
	struct loop_op drain_op;
	struct __kernel_timespec drain_ts;
	unsigned drain_tries;
};

/* Runs on the loop thread only (and before the loop starts), hence the
 * static frame buffer. */
static void ctl_send(struct shell *s, uint16_t type, const void *payload, size_t len)
{
	static uint8_t frame[sizeof(struct kbx_ctl_hdr) + KBX_CTL_MAX_PAYLOAD];
	size_t n = kbx_ctl_frame(frame, sizeof(frame), type, payload, len);
	if (!n || vcon_port_send(s->con, PORT_CTL, frame, n) != n)
		log_warn("shell: control message %u dropped (guest not reading)", type);
}

/* The host window (stdout's terminal), 24x80 when there is none. */
static void window(uint16_t *rows, uint16_t *cols)
{
	uint16_t r, c;
	if (term_size(STDOUT_FILENO, &r, &c) < 0 || !r || !c)
		r = 24, c = 80;
	*rows = r;
	*cols = c;
}

static void send_resize(struct shell *s)
{
	uint16_t rows, cols;
	window(&rows, &cols);
	struct kbx_ctl_resize r = { .rows = rows, .cols = cols };
	vcon_set_size(s->con, cols, rows);
	if (s->started)
		ctl_send(s, KBX_CTL_RESIZE, &r, sizeof(r));
}

/* START: window, mode, argv, TERM. */
static void send_start(struct shell *s)
{
	static uint8_t buf[KBX_CTL_MAX_PAYLOAD];
	uint16_t rows, cols;
	window(&rows, &cols);
	struct kbx_ctl_start st = { .rows = rows, .cols = cols,
				    .flags = s->tty ? KBX_START_TTY : 0,
				    .argc = (uint32_t)s->o.argc };
	const char *term = getenv("TERM");
	char termvar[128];
	snprintf(termvar, sizeof(termvar), "TERM=%s", term && s->tty ? term : "dumb");
	st.envc = 1;
	size_t off = sizeof(st);
	for (int i = 0; i <= s->o.argc; i++) {
		const char *a = i < s->o.argc ? s->o.argv[i] : termvar;
		size_t n = strlen(a) + 1;
		if (n > sizeof(buf) - off) {
			log_err("shell: the command line is longer than %u bytes", KBX_CTL_MAX_PAYLOAD);
			vm_stop(&s->vm, VM_STOP_ERROR, EXIT_USAGE, "command too long");
			return;
		}
		memcpy(buf + off, a, n);
		off += n;
	}
	memcpy(buf, &st, sizeof(st));
	s->started = true;
	ctl_send(s, KBX_CTL_START, buf, off);
}

static void drain_check(struct loop *loop, struct loop_op *op, int res, uint32_t flags);

/* EXIT arrived: stop once every byte of output reached our stdout. */
static void finish_when_drained(struct shell *s)
{
	if (vcon_port_output_idle(s->con, PORT_TTY) || s->drain_tries++ > 2000) {
		vm_stop(&s->vm, VM_STOP_EXIT_STATUS, s->exit_code, "command exited");
		return;
	}
	s->drain_op = (struct loop_op){ .cb = drain_check, .opaque = s };
	loop_timer(&s->vm.loop, &s->drain_op, &s->drain_ts, 1000000);	/* 1 ms */
}

static void drain_check(struct loop *loop, struct loop_op *op, int res, uint32_t flags)
{
	(void)loop;
	(void)res;
	(void)flags;
	finish_when_drained(op->opaque);
}

static void ctl_message(struct shell *s, const struct kbx_ctl_hdr *h, const uint8_t *p)
{
	switch (h->type) {
	case KBX_CTL_READY:
		if (!s->started)
			send_start(s);
		return;
	case KBX_CTL_EXIT: {
		struct kbx_ctl_exit e = { 0, 0 };
		memcpy(&e, p, MIN((size_t)h->len, sizeof(e)));
		if (s->exited)
			return;
		s->exited = true;
		s->exit_code = e.code & 0xff;
		finish_when_drained(s);
		return;
	}
	case KBX_CTL_ERROR: {
		int n = (int)MIN(h->len, 512u);
		term_restore();	/* the message must be readable */
		fprintf(stderr, "kvmbox: guest: %.*s\n", n, (const char *)p);
		return;
	}
	default:
		return;	/* unknown: skipped (forward compatible) */
	}
}

/* vcon_backend.on_output for kvmbox.ctl: reassemble and handle frames. */
static size_t ctl_output(void *opaque, const uint8_t *buf, size_t len)
{
	struct shell *s = opaque;
	size_t off = 0;
	while (off < len) {
		size_t used;
		struct kbx_ctl_hdr h;
		const uint8_t *payload;
		int r = kbx_ctl_feed(&s->rd, buf + off, len - off, &used, &h, &payload);
		off += used;
		if (r < 0) {
			vm_stop(&s->vm, VM_STOP_ERROR, 1, "guest broke the control protocol");
			return len;
		}
		if (r == 1)
			ctl_message(s, &h, payload);
	}
	return len;
}

/* Host stdin reached EOF (the tty port's in_fd): tell CMD. */
static void tty_hangup(void *opaque)
{
	struct shell *s = opaque;
	if (s->started)
		ctl_send(s, KBX_CTL_STDIN_EOF, NULL, 0);
}

static void on_signal(struct loop *loop, struct loop_op *op, int res, uint32_t flags)
{
	(void)loop;
	(void)flags;
	struct shell *s = op->opaque;
	if (res < 0)
		return;
	struct signalfd_siginfo si;
	while (read(s->sig_fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGWINCH)
			send_resize(s);
		else if (si.ssi_signo == SIGHUP)
			vm_stop(&s->vm, VM_STOP_SIGNAL, 128 + SIGHUP, "stopped by SIGHUP");
	}
}

/* SIGWINCH and SIGHUP through a signalfd on the loop; blocked here, before
 * vm_run() starts the threads, so every thread inherits the mask. */
static int signals_setup(struct shell *s)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGWINCH);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	s->sig_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (s->sig_fd < 0)
		return -errno;
	s->sig_op = (struct loop_op){ .cb = on_signal, .opaque = s };
	return loop_poll(&s->vm.loop, &s->sig_op, s->sig_fd, POLLIN);
}

static void uart_irq(void *opaque, int level)
{
	vm_set_irq(opaque, UART_COM1_IRQ, level);
}

static void on_boot_marker(void *opaque) { vm_guest_booted(opaque); }
static void on_exit_status(void *opaque, int status) { vm_guest_exit_status(opaque, status); }
static void on_reset(void *opaque) { vm_guest_reset(opaque); }

static int add_legacy_devices(struct shell *s)
{
	uart_init(&s->uart, UART_COM1_BASE, s->serial_fd, uart_irq, &s->vm);
	i8042_init(&s->kbc, on_reset, &s->vm);
	marker_init(&s->marker, on_boot_marker, on_exit_status, &s->vm);
	int r;
	if ((r = vm_add_pio(&s->vm, &s->uart.region)) < 0 ||
	    (r = vm_add_pio(&s->vm, &s->kbc.data_region)) < 0 ||
	    (r = vm_add_pio(&s->vm, &s->kbc.cmd_region)) < 0 ||
	    (r = vm_add_pio(&s->vm, &s->marker.region)) < 0)
		return r;
	return 0;
}

/* The console (three ports) and the rng, each on a virtio-mmio slot. */
static int add_virtio_devices(struct shell *s)
{
	struct dev_env env = { .gm = &s->vm.gm, .loop = &s->vm.loop, .irq_fd = -1,
			       .notify_fd = -1 };
	s->con = vcon_create(&env, 0, NPORTS);
	s->rng = vrng_create(&env, 0);
	if (!s->con || !s->rng)
		return -ENOMEM;
	struct vcon_backend hvc = { .in_fd = -1, .out_fd = s->serial_fd };
	struct vcon_backend tty = { .in_fd = STDIN_FILENO, .out_fd = STDOUT_FILENO,
				    .on_hangup = tty_hangup, .opaque = s };
	struct vcon_backend ctl = { .in_fd = -1, .out_fd = -1, .on_output = ctl_output,
				    .opaque = s };
	int r;
	if ((r = vcon_add_port(s->con, PORT_HVC, NULL, &hvc)) < 0 ||
	    (r = vcon_add_port(s->con, PORT_TTY, KBX_PORT_TTY, &tty)) < 0 ||
	    (r = vcon_add_port(s->con, PORT_CTL, KBX_PORT_CTL, &ctl)) < 0)
		return r;
	/* vm_add_virtio places the region and fills the device's env. */
	if ((r = vm_add_virtio(&s->vm, &s->con->vdev.region, &s->con->vdev.env)) < 0 ||
	    (r = vm_add_virtio(&s->vm, &s->rng->vdev.region, &s->rng->vdev.env)) < 0)
		return r;
	if ((r = vdev_start(&s->con->vdev)) < 0 || (r = vdev_start(&s->rng->vdev)) < 0)
		return r;
	send_resize(s);
	return 0;
}

/* Kernel, initrd, command line (virtio devices + kvmbox.ctl=1): 0 or
 * EXIT_USAGE after one line. */
static int load_guest(struct shell *s)
{
	uint8_t *kernel = NULL, *initrd = NULL;
	size_t klen = 0, ilen = 0;
	int r = read_file(s->o.kernel, RUN_MAX_KERNEL, &kernel, &klen);
	if (r < 0) {
		log_err("cannot read kernel %s: %s", s->o.kernel, strerror(-r));
		return EXIT_USAGE;
	}
	if (s->o.initrd && (r = read_file(s->o.initrd, RUN_MAX_INITRD, &initrd, &ilen)) < 0) {
		log_err("cannot read initrd %s: %s", s->o.initrd, strerror(-r));
		free(kernel);
		return EXIT_USAGE;
	}
	char extra[sizeof(s->vm.virtio_cmdline) + 32];
	snprintf(extra, sizeof(extra), "%s kvmbox.ctl=1", s->vm.virtio_cmdline);
	char *cmdline = cmdline_build(s->o.cmdline, extra, 0, NULL, RUN_MAX_CMDLINE);
	r = -ENOMEM;
	if (cmdline) {
		struct boot_config bc = { .kernel = kernel, .kernel_len = klen,
					  .initrd = initrd, .initrd_len = ilen,
					  .cmdline = cmdline, .ncpus = s->o.cpus };
		r = boot_load(&s->vm.gm, &bc, &s->vm.entry);
		if (r < 0)
			log_err("cannot load kernel %s: %s", s->o.kernel, boot_error());
	} else {
		log_err("kernel command line: %s", strerror(errno));
	}
	free(cmdline);
	free(kernel);
	free(initrd);
	return r < 0 ? EXIT_USAGE : 0;
}

/* After the VM stopped: reap the loop on this thread until CMD's output
 * has all reached stdout (the vCPUs are stopped, so the rings are still). */
static void drain_output(struct shell *s)
{
	for (int i = 0; i < 500; i++) {
		vcon_port_output_resume(s->con, PORT_TTY);
		if (vcon_port_output_idle(s->con, PORT_TTY))
			return;
		loop_run_once(&s->vm.loop, 2000000);
	}
}

/* Print the last few KiB of the captured serial console to stderr. */
static void show_serial_tail(struct shell *s)
{
	if (!s->serial_captured)
		return;
	off_t end = lseek(s->serial_fd, 0, SEEK_END);
	if (end <= 0)
		return;
	off_t start = end > 4096 ? end - 4096 : 0;
	char buf[4096];
	ssize_t n = pread(s->serial_fd, buf, sizeof(buf), start);
	if (n <= 0)
		return;
	fputs("kvmbox: serial console (last lines):\n", stderr);
	fwrite(buf, 1, (size_t)n, stderr);
	if (buf[n - 1] != '\n')
		fputc('\n', stderr);
}

/* Fill --kernel / --initrd from $KVMBOX_KERNEL / $KVMBOX_INITRD if absent. */
static char **with_defaults(int argc, char **argv, int *nargc)
{
	const char *k = getenv("KVMBOX_KERNEL"), *i = getenv("KVMBOX_INITRD");
	bool has_k = false, has_i = false;
	for (int a = 1; a < argc && strcmp(argv[a], "--"); a++) {
		has_k |= !strncmp(argv[a], "--kernel", 8);
		has_i |= !strncmp(argv[a], "--initrd", 8);
	}
	char **v = calloc((size_t)argc + 5, sizeof(*v));
	if (!v)
		return NULL;
	int n = 0;
	v[n++] = argv[0];
	if (!has_k && k && *k) {
		v[n++] = (char *)"--kernel";
		v[n++] = (char *)k;
	}
	if (!has_i && i && *i) {
		v[n++] = (char *)"--initrd";
		v[n++] = (char *)i;
	}
	for (int a = 1; a < argc; a++)
		v[n++] = argv[a];
	*nargc = n;
	return v;
}

static int shell_status(struct shell *s, int reason)
{
	if (s->exited)
		return s->exit_code;
	if (reason == VM_STOP_EXIT_STATUS && !s->started)
		return s->vm.exit_status;	/* init reported through the marker */
	log_err("shell: %s%s", s->vm.stop_msg[0] ? s->vm.stop_msg : "guest stopped",
		s->started ? "" : " before its init answered on kvmbox.ctl");
	if (reason != VM_STOP_SIGNAL)
		show_serial_tail(s);
	return reason == VM_STOP_SIGNAL ? s->vm.exit_status : 1;
}

static int shell_main(struct shell *s)
{
	if (access(s->o.kernel, R_OK) < 0) {
		log_err("cannot read kernel %s: %s", s->o.kernel, strerror(errno));
		return EXIT_USAGE;
	}
	s->tty = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
	s->serial_fd = s->o.console ? STDERR_FILENO : memfd_create("kvmbox-serial", MFD_CLOEXEC);
	s->serial_captured = !s->o.console;
	if (s->serial_fd < 0) {
		log_err("memfd: %s", strerror(errno));
		return 1;
	}
	struct vm_config cfg = { .mem_size = s->o.mem_mib << 20, .ncpus = s->o.cpus,
				 .hugepages = s->o.hugepages };
	if (vm_create(&s->vm, &cfg) < 0)
		return 1;
	int status = 1;
	if (add_legacy_devices(s) < 0 || add_virtio_devices(s) < 0 || signals_setup(s) < 0) {
		log_err("shell: cannot set up the devices");
		goto out;
	}
	if ((status = load_guest(s)) != 0)
		goto out;
	if (s->tty && term_raw_enter(STDIN_FILENO) < 0)
		log_warn("shell: cannot put the terminal in raw mode");
	int reason = vm_run(&s->vm);
	drain_output(s);
	term_restore();
	status = shell_status(s, reason);
out:
	/* Devices first: they cancel their loop requests while the loop
	 * still exists (the threads are joined by now). */
	vcon_destroy(s->con);
	vrng_destroy(s->rng);
	vm_destroy(&s->vm);
	uart_fini(&s->uart);
	i8042_fini(&s->kbc);
	return status;
}

int cmd_shell(int argc, char **argv)
{
	int nargc;
	char **nargv = with_defaults(argc, argv, &nargc);
	struct shell *s = calloc(1, sizeof(*s));
	if (!nargv || !s) {
		log_err("out of memory");
		free(nargv);
		free(s);
		return 1;
	}
	s->sig_fd = -1;
	s->serial_fd = -1;
	char err[200];
	int status = EXIT_USAGE;
	if (run_parse_args(nargc, nargv, &s->o, err, sizeof(err)) < 0) {
		log_err("shell: %s", strstr(err, "--kernel PATH is required") ?
			"--kernel PATH (or $KVMBOX_KERNEL) is required (try kvmbox shell --help)" :
			err);
	} else if (s->o.help) {
		fputs(shell_usage, stdout);
		status = 0;
	} else {
		status = shell_main(s);
	}
	if (s->sig_fd >= 0)
		close(s->sig_fd);
	if (s->serial_captured && s->serial_fd >= 0)
		close(s->serial_fd);
	free(s);
	free(nargv);
	return status;
}
