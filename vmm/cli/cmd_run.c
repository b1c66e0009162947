/* vmm/cli/cmd_run.c - `kvmbox run`: boot a guest kernel, show its serial
 * console, run a command through the guest init, exit with its status.
 *
 * Wiring only: options (run_args.c), the machine (machine.c: the VM, the
 * legacy devices and the kernel loader).  Exit status: the guest
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
#include "vmm/cli/guest_files.h"
#include "vmm/cli/machine.h"
#include "vmm/cli/machine_broker.h"
#include "vmm/cli/machine_fs.h"
#include "vmm/cli/machine_net.h"
#include "vmm/cli/run.h"
#include "vmm/vmm.h"

static const char run_usage[] =
	"usage: kvmbox run [--kernel PATH] [--initrd PATH] [--cmdline STR] [--memory MiB]\n"
	"                  [--cpus N] [--hugepages] [--console] [--profile[=json]]\n"
	"                  [--share HOSTDIR[:GUESTPATH][:ro][:hide]]... [--share-9p ...]...\n"
	"                  [--fs-cache none|auto|always] [--rootfs DIR | --image NAME|REF]\n"
	"                  [--no-net | network flags] [--snapshot DIR] [-- CMD ARGS]\n"
	"       kvmbox run --restore DIR [the share and network flags it was saved with]\n"
	"                  [--console] [--profile[=json]] [--snapshot DIR]\n"
	"\n"
	"Boot the guest kernel with the serial console on stdout and run CMD through the\n"
	"guest init; exit with CMD's status.\n"
	"  --snapshot DIR    when the guest asks (kvmbox-init just before CMD, or\n"
	"                    kvmbox-checkpoint in the guest at any time), save the whole\n"
	"                    VM to DIR and exit 0\n"
	"  --restore DIR     start from the snapshot in DIR instead of booting: the guest\n"
	"                    goes on where it was saved (its RAM, vCPUs and devices; files\n"
	"                    open on shares stay open, connections to the outside are\n"
	"                    reset); give it the --share and network flags it was saved\n"
	"                    with. Neither works with --share-9p or --proxy yet.\n"
	"  --kernel PATH     ELF vmlinux (PVH or 64-bit entry) or bzImage (default:\n"
	"                    $KVMBOX_KERNEL, else vmlinux next to kvmbox, else the newest\n"
	"                    ~/.cache/kvmbox/kernel/*/vmlinux: `make kernel`)\n"
	"  --initrd PATH     initramfs (default: $KVMBOX_INITRD, else initrd.cpio next to\n"
	"                    kvmbox with a default kernel: `make initrd`)\n"
	"  --cmdline STR     kernel command line (default: " CMDLINE_DEFAULT ")\n"
	"  --memory MiB      guest RAM (default 512)\n"
	"  --cpus N          vCPUs (default 1)\n"
	"  --hugepages       back guest RAM with huge pages\n"
	"  --console         forward stdin to the guest's serial port\n"
	"  --profile[=json]  per-phase wall and CPU time on stderr at exit\n"
	"  --share HOSTDIR[:GUESTPATH][:ro][:hide]\n"
	"                    share a host directory over virtio-fs (repeatable, at most 8),\n"
	"                    mounted at GUESTPATH (default: the same path as on the host);\n"
	"                    files the guest creates belong to you; :hide keeps .env files,\n"
	"                    private keys and credential stores out of the guest's sight\n"
	"  --share-9p ...    the same over virtio-9p (9P2000.L)\n"
	"  --fs-cache MODE   how long the guest may cache shared files: none, auto\n"
	"                    (default), always\n"
	"  --rootfs DIR      the guest's root: DIR read-only under a tmpfs overlay, so\n"
	"                    every run starts clean (needs --initrd with kvmbox-init)\n"
	"  --image NAME|REF  the same with an image from kvmbox setup / kvmbox pull\n"
	"  --no-net          no network card (default: virtio-net on kvmbox's user-mode\n"
	"                    stack, guest 10.0.2.15/24, gateway and DNS 10.0.2.2,\n"
	"                    public internet only)\n"
	"network flags:\n";

/* Everything one run owns; heap-allocated by cmd_run. */
struct run_ctx {
	struct machine m;
	struct loop_op stdin_op;
	struct loop_op stdin_timer_op;
	struct __kernel_timespec stdin_ts;
};

/* Host stdin -> UART receive FIFO with one-shot polls: a one-shot poll is
 * level-triggered (it completes at once while data is waiting), so input
 * left in the pipe because the FIFO was full is picked up later, and after
 * a completion one read() cannot block.  When the FIFO is full the loop
 * waits 10 ms instead of polling, so a guest that never reads its console
 * never makes the loop spin. */
static void stdin_arm(struct run_ctx *c)
{
	struct io_uring_sqe *sqe = loop_sqe(&c->m.vm.loop, &c->stdin_op);
	if (sqe)
		io_uring_prep_poll_add(sqe, STDIN_FILENO, POLLIN);
}

static void stdin_timer_cb(struct loop *loop, struct loop_op *op, int res, uint32_t flags)
{
	(void)loop;
	(void)flags;
	if (res != -ECANCELED)
		stdin_arm(op->opaque);
}

/* Before the devices go: no more input into the UART. */
static void stdin_stop(struct run_ctx *c)
{
	struct loop_op *const ops[] = { &c->stdin_op, &c->stdin_timer_op };
	loop_cancel_settle(&c->m.vm.loop, ops, 2, 1000);
}

static void stdin_cb(struct loop *loop, struct loop_op *op, int res, uint32_t flags)
{
	struct run_ctx *c = op->opaque;
	(void)flags;
	if (res < 0)
		return;		/* cancelled or stdin unusable: no more input */
	size_t space = uart_rx_space(&c->m.uart);
	if (!space) {
		loop_timer(loop, &c->stdin_timer_op, &c->stdin_ts, 10 * 1000000ULL);
		return;
	}
	uint8_t buf[UART_FIFO_SIZE];
	ssize_t n = read(STDIN_FILENO, buf, space < sizeof(buf) ? space : sizeof(buf));
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
		return;		/* EOF or error: no more input */
	if (n > 0)
		uart_receive(&c->m.uart, buf, (size_t)n);
	stdin_arm(c);
}

static void stdin_start(struct run_ctx *c)
{
	c->stdin_op = (struct loop_op){ .cb = stdin_cb, .opaque = c };
	c->stdin_timer_op = (struct loop_op){ .cb = stdin_timer_cb, .opaque = c };
	stdin_arm(c);
}

static int run_status(const struct vm *vm, int reason)
{
	if (reason == VM_STOP_EXIT_STATUS)
		return vm->exit_status;
	log_err("%s", vm->stop_msg[0] ? vm->stop_msg : "guest stopped");
	return reason == VM_STOP_SIGNAL ? vm->exit_status : 1;
}

int cmd_run(int argc, char **argv)
{
	return run_launch(argc, argv, NULL);
}

int run_launch(int argc, char **argv, const struct shell_extra *x)
{
	struct run_ctx *c = calloc(1, sizeof(*c));
	if (!c) {
		log_err("out of memory");
		return 1;
	}
	if (x && x->prof)
		c->m.prof = *x->prof;	/* the broker's marks: exec */
	profile_mark(&c->m.prof, PHASE_EXEC);	/* kept when the broker marked it */
	/* A closed stdout (kvmbox run ... | head -1) must not kill the VMM
	 * mid-run: console writes then fail with EPIPE and are dropped, and the
	 * guest's exit status still comes back. */
	signal(SIGPIPE, SIG_IGN);
	struct run_opts o;
	struct guest_files *gf = calloc(1, sizeof(*gf));
	int status = EXIT_USAGE;
	if (!gf) {
		log_err("out of memory");
		goto out_free;
	}
	if (machine_parse_inputs(gf, argc, argv, &o) != 0)
		goto out_free;
	if (o.net.auto_publish) {	/* no kvmbox.ctl channel to report listeners on */
		log_err("run: --auto-publish needs kvmbox shell or an agent command (use --publish)");
		goto out_free;
	}
	if (o.help) {
		fputs(run_usage, stdout);
		fputs(net_opts_usage, stdout);
		status = 0;
		goto out_free;
	}
	if (o.net.proxy && !(x && x->hello)) {	/* the proxy in a broker */
		status = machine_broker_launch(argv, &o, x, &c->m.prof);
		goto out_free;
	}
	o.net.broker = x ? x->hello : NULL;
	if (o.restore && (status = machine_restore_open(&c->m, &o)) != 0)
		goto out_machine;
	if ((status = machine_create(&c->m, &o, STDOUT_FILENO)) != 0)
		goto out_machine;
	/* A restore builds the same devices (vm_run loads their state) and
	 * loads no kernel: the guest goes on where it was. */
	if ((status = machine_net_add(&c->m)) != 0 ||
	    (status = machine_add_shares(&c->m, &o.fs)) != 0 ||
	    (status = machine_boot_or_restore(&c->m, o.argc, o.argv)) != 0)
		goto out_machine;
	if (o.console)
		stdin_start(c);
	int reason = vm_run(&c->m.vm);
	while (reason == VM_STOP_SNAPSHOT && (status = machine_snapshot_save(&c->m)) != 0 &&
	       machine_runs_on(&c->m))
		reason = vm_run_on(&c->m.vm);
	if (reason != VM_STOP_SNAPSHOT)
		status = run_status(&c->m.vm, reason);
	machine_net_report(&c->m, argv[0]);
	uint64_t resident = vm_ram_resident(&c->m.vm);
	if (o.console)
		stdin_stop(c);
	machine_destroy(&c->m);
	profile_mark(&c->m.prof, PHASE_TEARDOWN);
	if (o.profile)
		machine_print_profile(&c->m, resident);
	goto out_free;
out_machine:
	machine_destroy(&c->m);
out_free:
	if (gf)
		guest_files_free(gf);
	free(gf);
	free(c);
	return status;
}
