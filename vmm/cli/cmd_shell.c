/* vmm/cli/cmd_shell.c - `kvmbox shell`: an interactive shell (or CMD) in the
 * guest, on a real PTY, through the virtio-console ports.
 *
 * The VM gets a virtio-console with three ports (guest/abi/console.h): port 0
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
 * way out (shell_term.c).  SIGINT, SIGTERM, SIGQUIT, SIGUSR1 and SIGUSR2
 * are forwarded to CMD (shell_session_signal: a second SIGINT/SIGTERM, or
 * CMD still running 10 s after SIGTERM, stops the VM with 128+sig); SIGHUP
 * (the terminal went away) stops it at once.  Kernel and initrd default as
 * for kvmbox run (guest_files.h).
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

#include "common/log.h"
#include "common/util.h"
#include "devices/virtio/console.h"
#include "guest/abi/cmdline.h"
#include "guest/abi/console.h"
#include "devices/virtio/rng.h"
#include "launch/template/template.h"
#include "vmm/cli/cli.h"
#include "vmm/cli/guest_files.h"
#include "vmm/cli/machine.h"
#include "vmm/cli/machine_broker.h"
#include "vmm/cli/machine_fs.h"
#include "vmm/cli/machine_net.h"
#include "vmm/cli/run.h"
#include "vmm/cli/shell_session.h"
#include "common/term.h"
#include "vmm/vmm.h"

static const char shell_usage[] =
	"usage: kvmbox shell [--kernel PATH] [--initrd PATH] [--cmdline STR] [--memory MiB]\n"
	"                    [--cpus N] [--console] [--share HOSTDIR[:GUESTPATH][:ro]]...\n"
	"                    [--share-9p ...]... [--fs-cache MODE] [--rootfs DIR | --image NAME]\n"
	"                    [--no-net | network flags] [--template | --snapshot DIR]\n"
	"                    [--suspend-to DIR] [-- CMD ARGS]\n"
	"       kvmbox shell --restore DIR [the share and network flags it was saved with]\n"
	"                    [--snapshot DIR | --suspend-to DIR] [-- CMD ARGS]\n"
	"\n"
	"Run CMD (default: the guest's shell) in the guest on a PTY wired to this\n"
	"terminal; exit with its status.  Stdin and stdout may also be pipes.\n"
	"  --kernel PATH   guest kernel (default: $KVMBOX_KERNEL, else build/vmlinux\n"
	"                  next to kvmbox, else ~/.cache/kvmbox/kernel/*/vmlinux)\n"
	"  --initrd PATH   initramfs with kvmbox-init (default: $KVMBOX_INITRD, else\n"
	"                  initrd.cpio next to kvmbox with a default kernel)\n"
	"  --console       show the guest's serial console (kernel messages) on stderr\n"
	"  --no-net        no network card (default: one, public internet only)\n"
	"  --snapshot DIR  save the VM to DIR where the guest asks: kvmbox-init just\n"
	"                  before it takes CMD over kvmbox.ctl (a template: kvmbox\n"
	"                  exits 0), or kvmbox-checkpoint in the guest\n"
	"  --suspend-to DIR  save the VM to DIR when another process asks (kill -s\n"
	"                  RTMIN+5 PID, as kvmbox stop --suspend does), the guest's\n"
	"                  command and all; kvmbox exits 0 (resume: --restore DIR)\n"
	"  --restore DIR   start from DIR's snapshot instead of booting: a template\n"
	"                  runs this launch's CMD; a checkpoint goes on where it was\n"
	"  --template      start from this configuration's template in the cache (the\n"
	"                  same kernel, initrd, flags and shared folders), or boot while\n"
	"                  one is made in the background for the next launch\n"
	"  other flags (shares, root image) as for kvmbox run\n"
	"network flags:\n";

enum { PORT_HVC = 0, PORT_TTY = 1, PORT_CTL = 2, NPORTS = 3 };

/* Everything one shell session owns (heap: the devices are large). */
struct shell {
	const char *cmd;	/* what the user typed: shell, claude, ... */
	struct machine m;
	struct vcon *con;
	struct vrng *rng;
	struct run_opts o;
	bool tty;		/* stdin and stdout are terminals: PTY in the guest */
	int serial_fd;		/* memfd capturing the serial console, or stderr */
	bool serial_captured;
	struct shell_session ss;	/* the kvmbox.ctl protocol */
	struct guest_files *gf;	/* the resolved command line (not owned) */
	char template_dir[4096];	/* --template: this configuration's */
	int restore_refused;	/* exit status when shell_restore_devices said why (stop_msg) */
	/* host signals, read on the loop */
	int sig_fd;
	struct loop_op sig_op;
};

/* shell_session callbacks (loop thread). */
static void session_finish(void *opaque, int code)
{
	struct shell *s = opaque;
	profile_mark(&s->m.prof, PHASE_COMMAND_DONE);
	vm_stop(&s->m.vm, VM_STOP_EXIT_STATUS, code, "command exited");
}

static void session_fail(void *opaque, const char *why)
{
	struct shell *s = opaque;
	vm_stop(&s->m.vm, VM_STOP_ERROR, 1, "%s", why);
}

static void session_guest_error(void *opaque, const char *msg, size_t len)
{
	(void)opaque;
	term_restore();	/* the message must be readable; EXIT follows */
	fprintf(stderr, "kvmbox: guest: %.*s\n", (int)len, msg);
}

static void session_stop(void *opaque, int signo, const char *why)
{
	struct shell *s = opaque;
	vm_stop(&s->m.vm, VM_STOP_SIGNAL, 128 + signo, "stopped by SIG%s%s%s", sigabbrev_np(signo),
		why ? ": " : "", why ? why : "");
}

static void on_signal(struct loop *loop, struct loop_op *op, int res, uint32_t flags)
{
	(void)loop;
	(void)flags;
	struct shell *s = op->opaque;
	if (res < 0)
		return;
	struct signalfd_siginfo si;
	while (read(s->sig_fd, &si, sizeof(si)) == sizeof(si))
		shell_session_signal(&s->ss, (int)si.ssi_signo);
}

/* Every signal the session handles (shell_session_signal) through a
 * signalfd on the loop; blocked here, before vm_run() starts the threads,
 * so every thread inherits the mask, and vm_run leaves SIGINT and SIGTERM
 * to us (caller_handles_signals). */
static int signals_setup(struct shell *s)
{
	static const int sigs[] = { SIGWINCH, SIGHUP, SIGINT, SIGTERM, SIGQUIT, SIGUSR1, SIGUSR2 };
	sigset_t set;
	sigemptyset(&set);
	for (unsigned i = 0; i < ARRAY_SIZE(sigs); i++)
		sigaddset(&set, sigs[i]);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	for (unsigned i = 0; i < ARRAY_SIZE(sigs); i++)
		signal(sigs[i], SIG_DFL);	/* a background job inherits SIGINT ignored */
	signal(SIGPIPE, SIG_IGN);
	s->m.vm.caller_handles_signals = true;
	s->sig_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (s->sig_fd < 0)
		return -errno;
	s->sig_op = (struct loop_op){ .cb = on_signal, .opaque = s };
	return loop_poll(&s->m.vm.loop, &s->sig_op, s->sig_fd, POLLIN);
}

/* Before the devices go: no more signals through the loop (on_signal
 * talks to the console), and no session timer either. */
static void session_quiesce(struct shell *s)
{
	struct loop_op *const ops[] = { &s->sig_op };
	loop_cancel_settle(&s->m.vm.loop, ops, 1, 1000);	/* not armed: returns at once */
	shell_session_quiesce(&s->ss);
}

/* --auto-publish: the guest init reports its listeners on kvmbox.ctl. */
static void session_listeners(void *opaque, const uint16_t *ports, unsigned n)
{
	struct shell *s = opaque;
	machine_net_listeners(&s->m, ports, n);
}

/* The console (three ports) and the rng, each on a virtio-mmio slot. */
static void vcon_destroy_obj(void *obj) { vcon_destroy(obj); }
static void vrng_destroy_obj(void *obj) { vrng_destroy(obj); }

static int add_virtio_devices(struct shell *s)
{
	struct dev_env env = { .gm = &s->m.vm.gm, .loop = &s->m.vm.loop, .irq_fd = -1,
			       .notify_fd = -1 };
	s->con = vcon_create(&env, 0, NPORTS);
	if (!s->con)
		return -ENOMEM;
	struct vcon_backend hvc = { .in_fd = -1, .out_fd = s->serial_fd };
	s->ss = (struct shell_session){
		.con = s->con, .tty_port = PORT_TTY, .ctl_port = PORT_CTL, .tty = s->tty,
		.argc = s->o.argc, .argv = s->o.argv, .term = getenv("TERM"),
		.win_fd = STDOUT_FILENO, .finish = session_finish, .fail = session_fail,
		.guest_error = session_guest_error, .stop = session_stop, .opaque = s,
		.listeners = s->o.net.auto_publish ? session_listeners : NULL,
		.prof = &s->m.prof,
		.ca = s->m.guest_ca_len ? s->m.guest_ca : NULL, .ca_len = s->m.guest_ca_len,
	};
	struct vcon_backend tty = { .in_fd = STDIN_FILENO, .out_fd = STDOUT_FILENO,
				    .on_hangup = shell_stdin_hangup,
				    .on_first_output = shell_tty_first_output, .opaque = &s->ss };
	struct vcon_backend ctl = { .in_fd = -1, .out_fd = -1, .on_output = shell_ctl_output,
				    .opaque = &s->ss };
	int r;
	if ((r = vcon_add_port(s->con, PORT_HVC, NULL, &hvc)) < 0 ||
	    (r = vcon_add_port(s->con, PORT_TTY, KBX_PORT_TTY, &tty)) < 0 ||
	    (r = vcon_add_port(s->con, PORT_CTL, KBX_PORT_CTL, &ctl)) < 0) {
		vcon_destroy(s->con);
		s->con = NULL;
		return r;
	}
	/* machine_add_virtio places the region and fills the device's env. */
	if ((r = machine_add_virtio(&s->m, &s->con->vdev, vcon_destroy_obj, s->con)) < 0)
		return r;
	s->rng = vrng_create(&env, 0);
	if (!s->rng)
		return -ENOMEM;
	if ((r = machine_add_virtio(&s->m, &s->rng->vdev, vrng_destroy_obj, s->rng)) < 0)
		return r;
	shell_session_resize(&s->ss);
	return machine_cmdline_add(&s->m, KBX_PARAM_CTL "=1");
}

/* After the VM stopped: reap the loop on this thread until CMD's output
 * has all reached stdout (the vCPUs are stopped, so the rings are still). */
static void drain_output(struct shell *s)
{
	uint64_t seen = s->con->port[PORT_TTY].bytes_out;
	for (int i = 0; i < 500; i++) {	/* 1 s without progress at most */
		vcon_port_output_resume(s->con, PORT_TTY);
		if (vcon_port_output_idle(s->con, PORT_TTY))
			return;
		loop_run_once(&s->m.vm.loop, 2000000);
		if (s->con->port[PORT_TTY].bytes_out != seen) {
			seen = s->con->port[PORT_TTY].bytes_out;
			i = 0;
		}
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

static int shell_status(struct shell *s, int reason)
{
	if (s->restore_refused) {	/* one line, prefixed; no guest ran */
		log_err("%s", s->m.vm.stop_msg);
		return s->restore_refused;
	}
	if (s->ss.exited)
		return s->ss.exit_code;
	if (reason == VM_STOP_EXIT_STATUS && !s->ss.started)
		return s->m.vm.exit_status;	/* init reported through the marker */
	log_err("%s: %s%s", s->cmd, s->m.vm.stop_msg[0] ? s->m.vm.stop_msg : "guest stopped",
		s->ss.started ? "" : " before its init answered on kvmbox.ctl");
	if (reason != VM_STOP_SIGNAL)
		show_serial_tail(s);
	return reason == VM_STOP_SIGNAL ? s->m.vm.exit_status : 1;
}

/* vm_config.restore_devices: the machine's devices, then the session
 * learns where the restored guest was. */
static int shell_restore_devices(void *opaque, char *err, size_t errsz)
{
	struct shell *s = opaque;
	int r = machine_restore_virtio(&s->m, err, errsz);
	if (r == 0) {
		shell_session_resumed(&s->ss);
		if (s->ss.started && s->o.argc) {
			snprintf(err, errsz, "%s: cannot restore %s with a command: its guest runs "
				 "one already (restore it without -- CMD)", s->cmd, s->o.restore);
			r = EXIT_USAGE;
		} else if (s->ss.started && s->ss.ca && !machine_restore_same_ca(&s->m)) {
			/* its processes trust the CA of the launch that saved it,
			 * which only that sandbox's resume has (kvmbox resume) */
			snprintf(err, errsz, "%s: cannot restore %s with --proxy: its guest runs a "
				 "command already, which trusts another launch's proxy", s->cmd,
				 s->o.restore);
			r = EXIT_USAGE;
		}
	}
	if (r && s->o.template_argi && !template_discard(s->template_dir)) {
		size_t n = strlen(err);	/* the next launch boots and makes a new one */
		snprintf(err + n, errsz - n, " (the template is removed: the next launch boots)");
	}
	s->restore_refused = r;
	if (r == 0 && s->o.suspend_only && !strcmp(s->o.snapshot, s->o.restore))
		machine_restore_spent(&s->m);	/* a suspended sandbox's resume: it goes on now */
	return r;
}

/* The template's builder: `kvmbox shell` with this launch's flags and no
 * command (the template is saved before START), also for an agent, whose
 * VMM is kvmbox shell under the agent's name.  0 or -errno. */
static int start_template_builder(struct shell *s)
{
	char **argv = calloc((size_t)s->gf->argc + 1, sizeof(*argv));
	if (!argv)
		return -ENOMEM;
	int argc = 0;
	for (int i = 0; i < s->gf->argc && strcmp(s->gf->argv[i], "--"); i++) {
		const char *a = s->gf->argv[i];
		if (!strcmp(a, "--suspend-to"))	/* this launch's, with its folder */
			i++;
		else if (i != s->o.template_argi && strncmp(a, "--suspend-to=", 13))
			argv[argc++] = s->gf->argv[i];
	}
	int r = template_build_background(s->template_dir, "shell", argc, argv);
	free(argv);
	return r;
}

/* --template: restore this configuration's template when a usable one is
 * there (o.restore then names it), else boot, with one line why, while a
 * second kvmbox makes one for the next launch. */
static void shell_template(struct shell *s)
{
	char desc[16384], why[400];
	int r = machine_describe(&s->o, desc, sizeof(desc));
	if (r == 0)
		r = template_path(desc, s->template_dir, sizeof(s->template_dir));
	if (r < 0) {
		log_err("%s: no template: %s; booting", s->cmd, strerror(-r));
		return;
	}
	if (!template_present(s->template_dir)) {
		log_err("%s: no template of this configuration yet: booting, and making one for "
			"the next launch", s->cmd);
	} else if ((r = machine_restore_try(&s->m, s->template_dir, why, sizeof(why))) == 0) {
		s->o.restore = s->template_dir;
		template_touch(s->template_dir);
		return;
	} else {
		log_err("%s: the template of this configuration cannot be used: %s; booting, and "
			"making a new one", s->cmd, why);
		template_discard(s->template_dir);
	}
	r = start_template_builder(s);
	if (r < 0)
		log_err("%s: cannot start making a template: %s", s->cmd, strerror(-r));
}

static int shell_main(struct shell *s)
{
	s->tty = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
	s->serial_fd = s->o.console ? STDERR_FILENO : memfd_create("kvmbox-serial", MFD_CLOEXEC);
	s->serial_captured = !s->o.console;
	if (s->serial_fd < 0) {
		log_err("memfd: %s", strerror(errno));
		return 1;
	}
	int status = 0;
	s->m.ca_over_ctl = true;	/* the proxy's CA goes in the session (shell_session.h) */
	if (s->o.template_argi)
		shell_template(s);
	else if (s->o.restore)
		status = machine_restore_open(&s->m, &s->o);
	if (status || (status = machine_create(&s->m, &s->o, s->serial_fd)) != 0 ||
	    (status = machine_net_add(&s->m)) != 0)
		goto out;
	if (s->o.net.proxy)
		profile_mark(&s->m.prof, PHASE_PROXY_READY);
	status = 1;
	if (add_virtio_devices(s) < 0 || signals_setup(s) < 0) {
		log_err("%s: cannot set up the devices", s->cmd);
		goto out;
	}
	if ((status = machine_add_shares(&s->m, &s->o.fs)) != 0)
		goto out;
	if (s->o.restore) {	/* the session learns where the restored guest was */
		s->m.vm.cfg.restore_devices = shell_restore_devices;
		s->m.vm.cfg.restore_opaque = s;
	}
	if ((status = machine_boot_or_restore(&s->m, 0, NULL)) != 0)
		goto out;
	if (s->tty && term_raw_enter(STDIN_FILENO) < 0)
		log_warn("%s: cannot put the terminal in raw mode", s->cmd);
	int reason = vm_run(&s->m.vm);
	for (;;) {
		drain_output(s);
		term_restore();
		if (reason != VM_STOP_SNAPSHOT) {
			status = shell_status(s, reason);
			break;
		}
		if ((status = machine_snapshot_save(&s->m)) == 0 || !machine_runs_on(&s->m))
			break;
		if (s->tty && term_raw_enter(STDIN_FILENO) < 0)
			log_warn("%s: cannot put the terminal in raw mode", s->cmd);
		reason = vm_run_on(&s->m.vm);
	}
	machine_net_report(&s->m, s->cmd);
	uint64_t resident = vm_ram_resident(&s->m.vm);
	session_quiesce(s);
	machine_destroy(&s->m);
	profile_mark(&s->m.prof, PHASE_TEARDOWN);
	if (s->o.profile)
		machine_print_profile(&s->m, resident);
	return status;
out:
	session_quiesce(s);
	machine_destroy(&s->m);
	return status;
}

int cmd_shell(int argc, char **argv)
{
	return shell_launch(argc, argv, NULL);
}

int shell_launch(int argc, char **argv, const struct shell_extra *x)
{
	struct shell *s = calloc(1, sizeof(*s));
	struct guest_files *gf = calloc(1, sizeof(*gf));
	if (!s || !gf) {
		log_err("out of memory");
		free(s);
		free(gf);
		return 1;
	}
	s->cmd = argv[0];
	s->gf = gf;
	if (x && x->prof)
		s->m.prof = *x->prof;	/* the launcher's marks: exec, credentials */
	profile_mark(&s->m.prof, PHASE_EXEC);	/* kept when the launcher marked it */
	s->sig_fd = -1;
	s->serial_fd = -1;
	int status = EXIT_USAGE;
	if (machine_parse_inputs(gf, argc, argv, &s->o) != 0) {
		/* said why */
	} else if (s->o.snapshot && !s->o.suspend_only && strcmp(s->cmd, "shell")) {
		/* an agent's VM is saved on the host's word only (kvmbox stop
		 * --suspend: --suspend-to and --restore are its launcher's,
		 * never the user's, whose words those are not) */
		log_err("%s: --snapshot is kvmbox run's and shell's (an agent's credentials and "
			"proxy are its launch's own)", s->cmd);
	} else if (s->o.help) {
		fputs(shell_usage, stdout);
		fputs(net_opts_usage, stdout);
		status = 0;
	} else {
		if (s->o.fs.image)
			profile_mark(&s->m.prof, PHASE_IMAGE);	/* resolved by machine_parse_inputs */
		if (s->o.net.proxy && !(x && x->hello))	/* the proxy in a broker */
			status = machine_broker_launch(argv, &s->o, x, &s->m.prof);
		else {
			s->o.net.broker = x ? x->hello : NULL;
			status = shell_main(s);
		}
	}
	if (s->sig_fd >= 0)
		close(s->sig_fd);
	if (s->serial_captured && s->serial_fd >= 0)
		close(s->serial_fd);
	free(s);
	guest_files_free(gf);
	free(gf);
	return status;
}
