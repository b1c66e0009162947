/* vmm/cli/cmd_run.c - `kvmbox run`: boot a guest kernel, show its serial
 * console, run a command through the guest init, exit with its status.
 *
 * Wiring only: options (run_args.c), the VM (vmm/), the legacy devices
 * (devices/legacy/), the kernel loader (boot/).  Exit status: the guest
 * command's (written to the marker port), 2 for bad usage or input (one
 * line on stderr), 1 when the guest stops without an exit status (one line
 * naming why), 128+signal when stopped by SIGINT/SIGTERM.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "boot/boot.h"
#include "common/log.h"
#include "common/util.h"
#include "devices/legacy/legacy.h"
#include "vmm/cli/cli.h"
#include "vmm/cli/run.h"
#include "vmm/vmm.h"

static const char run_usage[] =
	"usage: kvmbox run --kernel PATH [--initrd PATH] [--cmdline STR] [--memory MiB]\n"
	"                  [--cpus N] [--hugepages] [--console] [--profile[=json]] [-- CMD ARGS]\n"
	"\n"
	"Boot the guest kernel with the serial console on stdout and run CMD through the\n"
	"guest init; exit with CMD's status.\n"
	"  --kernel PATH     ELF vmlinux (PVH or 64-bit entry) or bzImage\n"
	"  --initrd PATH     initramfs\n"
	"  --cmdline STR     kernel command line (default: " CMDLINE_DEFAULT ")\n"
	"  --memory MiB      guest RAM (default 512)\n"
	"  --cpus N          vCPUs (default 1)\n"
	"  --hugepages       back guest RAM with huge pages\n"
	"  --console         forward stdin to the guest's serial port\n"
	"  --profile[=json]  per-phase wall and CPU time on stderr at exit\n";

/* Everything one run owns; lives on cmd_run's stack. */
struct run_ctx {
	struct vm vm;
	struct uart8250 uart;
	struct i8042 kbc;
	struct marker marker;
	struct profile prof;
	struct loop_op stdin_op;
	struct loop_op stdin_timer_op;
	struct __kernel_timespec stdin_ts;
};

static void uart_irq(void *opaque, int level)
{
	vm_set_irq(opaque, UART_COM1_IRQ, level);
}

static void on_boot_marker(void *opaque)
{
	vm_guest_booted(opaque);
}

static void on_exit_status(void *opaque, int status)
{
	vm_guest_exit_status(opaque, status);
}

static void on_reset(void *opaque)
{
	vm_guest_reset(opaque);
}

/* Host stdin -> UART receive FIFO with one-shot polls: a one-shot poll is
 * level-triggered (it completes at once while data is waiting), so input
 * left in the pipe because the FIFO was full is picked up later, and after
 * a completion one read() cannot block.  When the FIFO is full the loop
 * waits 10 ms instead of polling, so a guest that never reads its console
 * never makes the loop spin. */
static void stdin_arm(struct run_ctx *c)
{
	struct io_uring_sqe *sqe = loop_sqe(&c->vm.loop, &c->stdin_op);
	if (sqe)
		io_uring_prep_poll_add(sqe, STDIN_FILENO, POLLIN);
}

static void stdin_timer_cb(struct loop *loop, struct loop_op *op, int res, uint32_t flags)
{
	(void)loop;
	(void)res;
	(void)flags;
	stdin_arm(op->opaque);
}

static void stdin_cb(struct loop *loop, struct loop_op *op, int res, uint32_t flags)
{
	struct run_ctx *c = op->opaque;
	(void)flags;
	if (res < 0)
		return;		/* cancelled or stdin unusable: no more input */
	size_t space = uart_rx_space(&c->uart);
	if (!space) {
		loop_timer(loop, &c->stdin_timer_op, &c->stdin_ts, 10 * 1000000ULL);
		return;
	}
	uint8_t buf[UART_FIFO_SIZE];
	ssize_t n = read(STDIN_FILENO, buf, space < sizeof(buf) ? space : sizeof(buf));
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
		return;		/* EOF or error: no more input */
	if (n > 0)
		uart_receive(&c->uart, buf, (size_t)n);
	stdin_arm(c);
}

static void stdin_start(struct run_ctx *c)
{
	c->stdin_op = (struct loop_op){ .cb = stdin_cb, .opaque = c };
	c->stdin_timer_op = (struct loop_op){ .cb = stdin_timer_cb, .opaque = c };
	stdin_arm(c);
}

static int add_legacy_devices(struct run_ctx *c)
{
	uart_init(&c->uart, UART_COM1_BASE, STDOUT_FILENO, uart_irq, &c->vm);
	i8042_init(&c->kbc, on_reset, &c->vm);
	marker_init(&c->marker, on_boot_marker, on_exit_status, &c->vm);
	int r;
	if ((r = vm_add_pio(&c->vm, &c->uart.region)) < 0 ||
	    (r = vm_add_pio(&c->vm, &c->kbc.data_region)) < 0 ||
	    (r = vm_add_pio(&c->vm, &c->kbc.cmd_region)) < 0 ||
	    (r = vm_add_pio(&c->vm, &c->marker.region)) < 0)
		return r;
	return 0;
}

/* Read kernel and initrd, build the command line, call boot/.  Returns 0,
 * or EXIT_USAGE after printing one line. */
static int load_guest(struct run_ctx *c, const struct run_opts *o)
{
	uint8_t *kernel = NULL, *initrd = NULL;
	size_t klen = 0, ilen = 0;
	int r = read_file(o->kernel, RUN_MAX_KERNEL, &kernel, &klen);
	if (r < 0) {
		log_err("cannot read kernel %s: %s", o->kernel,
			r == -EFBIG ? "larger than 256 MiB" :
			r == -EINVAL ? "not a regular file" : strerror(-r));
		return EXIT_USAGE;
	}
	if (o->initrd && (r = read_file(o->initrd, RUN_MAX_INITRD, &initrd, &ilen)) < 0) {
		log_err("cannot read initrd %s: %s", o->initrd,
			r == -EFBIG ? "larger than 1 GiB" :
			r == -EINVAL ? "not a regular file" : strerror(-r));
		free(kernel);
		return EXIT_USAGE;
	}
	char *cmdline = cmdline_build(o->cmdline, c->vm.virtio_cmdline, o->argc, o->argv,
				      RUN_MAX_CMDLINE);
	if (!cmdline) {
		log_err("kernel command line: %s", errno == E2BIG ?
			"too long (the command and its arguments must fit in 4 KiB)" :
			strerror(errno));
		free(kernel);
		free(initrd);
		return EXIT_USAGE;
	}
	struct boot_config bc = { .kernel = kernel, .kernel_len = klen, .initrd = initrd,
				  .initrd_len = ilen, .cmdline = cmdline, .ncpus = o->cpus };
	r = boot_load(&c->vm.gm, &bc, &c->vm.entry);
	if (r < 0)
		log_err("cannot load kernel %s: %s", o->kernel, boot_error());
	free(cmdline);
	free(kernel);
	free(initrd);
	return r < 0 ? EXIT_USAGE : 0;
}

static int run_status(const struct vm *vm, int reason)
{
	if (reason == VM_STOP_EXIT_STATUS)
		return vm->exit_status;
	log_err("%s", vm->stop_msg[0] ? vm->stop_msg : "guest stopped");
	return reason == VM_STOP_SIGNAL ? vm->exit_status : 1;
}

/* Peak RSS of this process image: VmHWM, not getrusage's ru_maxrss, which
 * Linux carries over exec from the parent (a Python parent's 14 MiB). */
static uint64_t peak_rss(void)
{
	FILE *f = fopen("/proc/self/status", "re");
	char buf[256];
	unsigned long long kib = 0;
	while (f && fgets(buf, sizeof(buf), f))
		if (sscanf(buf, "VmHWM: %llu kB", &kib) == 1)
			break;
	if (f)
		fclose(f);
	return (uint64_t)kib * 1024;
}

static void print_profile(struct run_ctx *c, const struct run_opts *o, uint64_t resident)
{
	profile_print(&c->prof, o->profile_json, STDERR_FILENO, resident, peak_rss());
}

int cmd_run(int argc, char **argv)
{
	struct run_ctx *c = calloc(1, sizeof(*c));
	if (!c) {
		log_err("out of memory");
		return 1;
	}
	profile_mark(&c->prof, PHASE_EXEC);
	/* A closed stdout (kvmbox run ... | head -1) must not kill the VMM
	 * mid-run: console writes then fail with EPIPE and are dropped, and the
	 * guest's exit status still comes back. */
	signal(SIGPIPE, SIG_IGN);
	struct run_opts o;
	char err[200];
	int status = EXIT_USAGE;
	if (run_parse_args(argc, argv, &o, err, sizeof(err)) < 0) {
		log_err("run: %s", err);
		goto out_free;
	}
	if (o.help) {
		fputs(run_usage, stdout);
		status = 0;
		goto out_free;
	}
	if (access(o.kernel, R_OK) < 0) {
		log_err("cannot read kernel %s: %s", o.kernel, strerror(errno));
		goto out_free;
	}
	struct vm_config cfg = { .mem_size = o.mem_mib << 20, .ncpus = o.cpus,
				 .hugepages = o.hugepages };
	if (vm_create(&c->vm, &cfg) < 0) {
		status = 1;
		goto out_vm;
	}
	c->vm.profile = o.profile ? &c->prof : NULL;
	profile_mark(&c->prof, PHASE_KVM_READY);
	if (add_legacy_devices(c) < 0) {
		log_err("cannot register legacy devices");
		status = 1;
		goto out_dev;
	}
	if ((status = load_guest(c, &o)) != 0)
		goto out_dev;
	profile_mark(&c->prof, PHASE_KERNEL_LOADED);
	if (o.console)
		stdin_start(c);
	int reason = vm_run(&c->vm);
	status = run_status(&c->vm, reason);
	uint64_t resident = vm_ram_resident(&c->vm);
	vm_destroy(&c->vm);
	uart_fini(&c->uart);
	i8042_fini(&c->kbc);
	profile_mark(&c->prof, PHASE_TEARDOWN);
	if (o.profile)
		print_profile(c, &o, resident);
	goto out_free;
out_dev:
	uart_fini(&c->uart);
	i8042_fini(&c->kbc);
out_vm:
	vm_destroy(&c->vm);
out_free:
	free(c);
	return status;
}
