/* vmm/vmm.h - the virtual machine: KVM VM, guest RAM, vCPU threads, the
 * I/O bus, virtio-mmio slots and the event-loop threads (vmm/'s public header).
 *
 * Life of a VM, driven by vmm/cli/cmd_run.c:
 *   vm_create()          /dev/kvm, capabilities, guest RAM, irqchip + PIT
 *   vm_add_pio/mmio()    legacy devices on the bus
 *   vm_add_iothread()    (optional) a loop on a thread of its own
 *   vm_add_virtio()      a virtio-mmio slot: eventfds, ioeventfd, irqfd
 *   boot_load()          (boot/) writes the kernel into vm->gm
 *   vm_run()             vCPU threads + event loop until the guest stops,
 *                        a device asks to stop, or SIGINT/SIGTERM
 *   vm_destroy()
 * vCPU threads only run KVM_RUN and dispatch register accesses to the bus;
 * device work runs on the event-loop thread (vm->loop), or on an I/O
 * thread's loop for a device given one (each file share: a file operation
 * that takes its time must not hold up the network or the console).
 */
#ifndef KVMBOX_VMM_H
#define KVMBOX_VMM_H

#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "boot/boot.h"
#include "common/gmem.h"
#include "common/loop.h"
#include "devices/devices.h"

#define VM_MAX_CPUS 64
/* I/O threads besides the event-loop thread: one per file share. */
#define VM_MAX_IOTHREADS 16
#define VM_MIN_MEM_MIB 16		/* below this no kernel fits */
#define VM_MAX_MEM_MIB (1024 * 1024)	/* 1 TiB */
#define BUS_MAX_REGIONS 32

/* One address space (port I/O or MMIO): regions sorted by base, fixed once
 * the vCPUs run (so lookups take no lock). */
struct bus {
	const struct io_region *r[BUS_MAX_REGIONS];
	unsigned n;
};

/* 0, -EEXIST if it overlaps a registered region, -ENOSPC, -EINVAL. */
int bus_add(struct bus *bus, const struct io_region *r);
/* Dispatch one access; returns false when no region covers [addr, addr+size)
 * (reads are then filled with 0xff). */
bool bus_read(const struct bus *bus, uint64_t addr, void *data, unsigned size);
bool bus_write(const struct bus *bus, uint64_t addr, const void *data, unsigned size);

/* Why the VM stopped: the first reason recorded wins. */
enum vm_stop_reason {
	VM_RUNNING = 0,
	VM_STOP_EXIT_STATUS,	/* guest wrote an exit status, then reset */
	VM_STOP_RESET,		/* i8042 reset without an exit status */
	VM_STOP_SHUTDOWN,	/* triple fault */
	VM_STOP_HLT,		/* hlt with interrupts off (no in-kernel LAPIC only) */
	VM_STOP_INTERNAL,	/* KVM_EXIT_INTERNAL_ERROR / FAIL_ENTRY / unknown exit */
	VM_STOP_SIGNAL,		/* SIGINT / SIGTERM on the host */
	VM_STOP_ERROR,		/* host-side failure (ioctl, thread) */
	VM_STOP_SNAPSHOT,	/* to be saved: the guest asked (cfg.snapshot_on_marker) or the host (VM_SIG_SUSPEND) */
};

struct vm;

/* One vCPU: its fd, kvm_run mapping and thread. */
struct vcpu {
	struct vm *vm;
	unsigned id;		/* also its APIC ID */
	int fd;
	struct kvm_run *run;
	size_t run_size;
	pthread_t thread;
	bool started;
	/* Dead-halt probe (see vcpu.c): probe_gen is set by the main thread
	 * before a kick; the vCPU answers with dead_gen = probe_gen when it is
	 * halted with interrupts off or was never started by the guest. */
	unsigned probe_gen, dead_gen;
	/* What the latest probe saw (written by the vCPU's thread, atomics):
	 * for VM_SIG_DUMP. */
	uint64_t seen_rip, seen_rflags, seen_ns;
	uint32_t seen_mp_state;
};

/* Profiling marks, in the order a run reaches them.  Launcher phases are
 * marked only by the commands that have them: credentials (agents), image
 * (--image resolved), proxy (the TLS proxy and its CA), command start
 * (kvmbox.ctl START sent) and first output byte (shell and agents). */
enum vm_phase {
	PHASE_EXEC, PHASE_CREDENTIALS, PHASE_IMAGE, PHASE_KVM_READY, PHASE_PROXY_READY,
	PHASE_KERNEL_LOADED, PHASE_FIRST_RUN, PHASE_GUEST_INIT, PHASE_COMMAND_START,
	PHASE_FIRST_OUTPUT, PHASE_COMMAND_DONE, PHASE_TEARDOWN, PHASE_COUNT
};
struct profile {
	uint64_t wall_ns[PHASE_COUNT];	/* CLOCK_MONOTONIC, 0 = not reached */
	uint64_t cpu_ns[PHASE_COUNT];	/* process CPU time at that mark */
	uint64_t exec_realtime_ns;	/* CLOCK_REALTIME at PHASE_EXEC (for benchmarks) */
	/* CPU time of the process that started this one and marked the
	 * first phases (a launch's broker), added to this one's own. */
	uint64_t cpu_base_ns;
};
void profile_mark(struct profile *p, enum vm_phase phase);
const char *profile_phase_name(enum vm_phase phase);
/* Print the marks as a table or as one JSON object (plus extra numbers). */
void profile_print(const struct profile *p, bool json, int fd,
		   uint64_t ram_resident, uint64_t max_rss);

/* A KVM capability kvmbox requires (vm_required_caps ends with name NULL). */
struct vm_cap {
	int cap;
	const char *name;
};
extern const struct vm_cap vm_required_caps[];

/* Open /dev/kvm, check the API version and vm_required_caps: the fd, or
 * -errno with a one-line reason (and the fix) in err. */
int vm_open_kvm(char *err, size_t errsz);

/* Signals: VM_SIG_KICK pulls a vCPU thread out of KVM_RUN (its handler does
 * nothing; immediate_exit closes the race); VM_SIG_STOP wakes the main
 * thread's sigwait when a vCPU or device stops the VM.  Real-time signals,
 * so SIGUSR1 and SIGUSR2 stay free for the user (kvmbox shell forwards them
 * to the guest command). */
#define VM_SIG_KICK (SIGRTMIN + 2)
#define VM_SIG_STOP (SIGRTMIN + 3)
/* VM_SIG_DUMP, sent from outside (`kill -s RTMIN+4 PID` or `kill -38 PID`):
 * one line per vCPU on stderr with what the latest dead-halt probe saw
 * (its MP state, RIP and RFLAGS, how long ago), for a guest that spins or
 * hangs; the VM runs on. */
#define VM_SIG_DUMP (SIGRTMIN + 4)
/* VM_SIG_SUSPEND, sent from outside (`kvmbox stop --suspend`): stop with
 * VM_STOP_SNAPSHOT, every vCPU's last exit settled, where the run has
 * cfg.snapshot_on_signal; otherwise one line and the VM runs on.  main()
 * blocks both from the start, so one that comes before vm_run waits for
 * it (an unblocked real-time signal would end the process). */
#define VM_SIG_SUSPEND (SIGRTMIN + 5)

struct cage_config;
struct snap_state;

struct vm_config {
	uint64_t mem_size;	/* bytes */
	unsigned ncpus;
	bool hugepages;
	/* Run the VM in this cage (cage/cage.h), or NULL: the CLI's VMs
	 * do; tests that drive vm_run in their own process do not.  Not
	 * owned; read by vm_run. */
	const struct cage_config *cage;
	/* Stop with VM_STOP_SNAPSHOT when the guest writes
	 * KBX_MARKER_SNAPSHOT, every vCPU's last exit settled, so the caller
	 * can save the VM (vmm/snapshot/snapshot.h); ignored otherwise. */
	bool snapshot_on_marker;
	/* Likewise on VM_SIG_SUSPEND (the host's request), when may_suspend
	 * (NULL: always) says the save can be made; otherwise one line with
	 * its reason, and the VM runs on. */
	bool snapshot_on_signal;
	bool (*may_suspend)(void *opaque, char *why, size_t whysz);
	void *may_suspend_opaque;
	/* Non-NULL: restore instead of boot.  Guest RAM is the snapshot's
	 * memory file restore_mem_fd, mapped MAP_PRIVATE (vm_create takes
	 * the fd, also on failure), and vm_run gives the vCPUs this state
	 * instead of the boot entry's.  Not owned. */
	const struct snap_state *restore;
	int restore_mem_fd;
	/* With restore: called by vm_run once KVM holds the restored state
	 * and before any vCPU or the loop thread runs (so what the devices
	 * send the guest then, interrupts included, lands on the restored
	 * irqchip): load the devices' state.  0, or non-zero with one line
	 * in err (the VM stops with VM_STOP_ERROR and that message).  May be
	 * NULL. */
	int (*restore_devices)(void *opaque, char *err, size_t errsz);
	void *restore_opaque;
};

struct vm {
	struct vm_config cfg;
	int kvm_fd, vm_fd;
	int mem_fd;		/* RAM's memfd (--hugepages) or a restore's memory file; else -1 */
	int pagemap_fd;		/* /proc/self/pagemap for anonymous RAM (snapshots), else -1 */
	uint8_t *ram;		/* host mapping of all guest RAM */
	bool ram_private;	/* mem_fd is a snapshot's file, ram its private copy */
	struct gmem gm;
	unsigned nslots;	/* KVM memory slots in use */
	/* KVM_SET_USER_MEMORY_REGION waits for an SRCU grace period (3 to 10
	 * ms on a nested host, whatever the size), so the slots are registered
	 * by a helper thread while the rest of setup runs; vm_memslots_wait()
	 * joins it before the first KVM_RUN. */
	pthread_t memslot_thread;
	bool memslot_pending;
	int memslot_err;	/* -errno of the first failed registration */
	struct vcpu vcpu[VM_MAX_CPUS];
	unsigned nvcpus;
	struct kvm_cpuid2 *cpuid;	/* supported CPUID, patched per vCPU */
	unsigned cpuid_cap;		/* entries allocated in cpuid */
	uint32_t tsc_khz;
	struct bus pio, mmio;
	struct loop loop;		/* the event loop: every device but the shares */
	bool loop_ready;
	/* The threads running loops: [0] runs vm->loop, the rest the I/O
	 * threads' loops (vm_add_iothread).  After vm_run they park instead
	 * of exiting, until vm_destroy: io_uring completes a request's
	 * cancellation through the task that armed it, and for a thread that
	 * has exited only from a fallback work item a jiffy later, once per
	 * device that settles its requests at teardown (35 ms of a 44 ms exit
	 * here).  While they are parked the main thread runs their loops. */
	struct vm_loop_thread {
		struct vm *vm;
		struct loop *loop;
		unsigned index;
		pthread_t thread;
		bool started;
		bool parked, release, rerun;	/* under park_lock */
	} threads[1 + VM_MAX_IOTHREADS];
	unsigned nthreads;
	pthread_mutex_t park_lock;
	pthread_cond_t park_cond;
	bool ran;	/* vm_run has set the VM up (vCPUs, devices restored, cage) */
	bool host_asked_save;	/* VM_STOP_SNAPSHOT came from VM_SIG_SUSPEND */
	unsigned nvirtio;
	int virtio_fds[VIRTIO_MMIO_MAX_DEVS][2];	/* notify, irq eventfds */
	char virtio_cmdline[VIRTIO_MMIO_MAX_DEVS * 48];	/* virtio_mmio.device=... */
	struct boot_entry entry;
	struct profile *profile;	/* optional */
	/* Set before vm_run by a command that takes SIGINT and SIGTERM itself
	 * (a signalfd on the loop; kvmbox shell forwards them to the guest):
	 * vm_run keeps them blocked but does not wait for them. */
	bool caller_handles_signals;
	/* Stop state: written once by vm_stop() from any thread. */
	int stop_reason;		/* enum vm_stop_reason, atomic */
	int exit_status;
	char stop_msg[160];
	pthread_t main_thread;
	bool main_started;
	unsigned probe_gen;		/* current dead-halt probe generation */
	/* Exit status the guest wrote to the marker port (-1: none yet);
	 * written by vCPU threads, read when the guest resets. */
	int guest_status;
};

/* 0 or -errno with a one-line reason logged. */
int vm_create(struct vm *vm, const struct vm_config *cfg);
void vm_destroy(struct vm *vm);
/* Wait for guest RAM to be registered with KVM (vm_create starts it on a
 * helper thread): 0, or -errno after one error line. */
int vm_memslots_wait(struct vm *vm);
/* A loop of its own, run on an I/O thread that starts, stops and parks
 * with the event-loop thread, for devices whose work must not wait behind
 * the others' (give it to them in their dev_env).  Before vm_run; the loop
 * lives until vm_destroy.  NULL with errno set (ENOSPC past
 * VM_MAX_IOTHREADS). */
struct loop *vm_add_iothread(struct vm *vm);
/* Start the event-loop thread and the I/O threads (vm_run does, once the
 * VM is ready to run): each runs its loop in its cage until the VM stops,
 * then parks.  0 or -errno (the threads already started run on). */
int vm_loop_thread_start(struct vm *vm);
/* Run the parked threads' loops again (vm_run_on).  0 or -errno. */
int vm_loop_thread_rerun(struct vm *vm);
/* Stop every running loop thread's loop and wait until each has parked
 * (vm_run, once the vCPUs are gone). */
void vm_loop_thread_park(struct vm *vm);
/* Release the threads vm_run left parked and join them (vm_destroy does;
 * devices have settled their requests by then). */
void vm_loop_thread_join(struct vm *vm);

/* Register a legacy device (must be called before vm_run). */
int vm_add_pio(struct vm *vm, const struct io_region *r);
int vm_add_mmio(struct vm *vm, const struct io_region *r);

/* Allocate the next virtio-mmio slot for a device whose registers are @r
 * (r->base and r->len are filled in here): eventfds, KVM_IOEVENTFD on the
 * QueueNotify register, KVM_IRQFD to the slot's GSI; fills @env and appends
 * virtio_mmio.device=4K@0x...:IRQ to vm->virtio_cmdline.  0 or -errno. */
int vm_add_virtio(struct vm *vm, struct io_region *r, struct dev_env *env);

/* Raise or lower a legacy interrupt line (KVM_IRQ_LINE); any thread. */
void vm_set_irq(struct vm *vm, unsigned gsi, int level);

/* Set up every vCPU for vm->entry (boot vCPU) and wait-for-SIPI (APs), start
 * the threads and the loop; block until the VM stops (handling SIGINT and
 * SIGTERM).  Returns the stop reason; vm->exit_status and vm->stop_msg tell
 * the rest. */
int vm_run(struct vm *vm);
/* After vm_run returned VM_STOP_SNAPSHOT and the save could not be made:
 * the VM runs on where it stopped (the vCPUs' state and the devices are
 * as the stop left them; the save only read them), as vm_run.  -EINVAL
 * for a VM not stopped to be saved. */
int vm_run_on(struct vm *vm);

/* Ask the VM to stop (any thread, not a signal handler). The first call's
 * reason, status and message are kept. */
void vm_stop(struct vm *vm, enum vm_stop_reason reason, int status, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Guest events from the legacy devices (called on vCPU threads): the boot
 * marker, an exit-status write, and an i8042 reset, which stops the VM with
 * VM_STOP_EXIT_STATUS when a status was written and VM_STOP_RESET if not.
 * A triple fault (vCPU vcpu_id) resets a real machine too: after an exit
 * status it is that status, else VM_STOP_SHUTDOWN, status 1. */
void vm_guest_booted(struct vm *vm);
void vm_guest_exit_status(struct vm *vm, int status);
void vm_guest_reset(struct vm *vm);
void vm_guest_triple_fault(struct vm *vm, unsigned vcpu_id);
/* The guest wrote KBX_MARKER_SNAPSHOT: stop for a snapshot, when asked to. */
void vm_guest_snapshot(struct vm *vm);

/* Bytes of guest RAM resident in host memory (mincore over the mapping). */
uint64_t vm_ram_resident(const struct vm *vm);

/* --- pure helpers, unit-tested without KVM --- */

/* Patch KVM's supported CPUID for vCPU @apic_id of @ncpus: APIC IDs (leaf 1
 * EBX, 0xB/0x1F), hypervisor bit, KVM signature leaves, TSC frequency leaf
 * 0x40000010 when tsc_khz != 0.  Entries are edited in place; leaf
 * 0x40000010 is added when there is room (cap = allocated entries). */
void cpuid_patch(struct kvm_cpuid2 *c, unsigned cap, unsigned apic_id, unsigned ncpus,
		 uint32_t tsc_khz);
struct kvm_cpuid_entry2 *cpuid_find(struct kvm_cpuid2 *c, uint32_t fn, uint32_t idx);
/* The XCR0 a vCPU starts with: the user state components CPUID 0xD offers
 * (x87, SSE, AVX, AVX-512 as a whole, PKRU); 0 without XSAVE (cpuid.c). */
uint64_t cpuid_user_xcr0(struct kvm_cpuid2 *c);

/* Kernel command line: base (or the default), then extra (virtio devices),
 * then kvmbox.argv=<base64url(argv[0]\0argv[1]\0...)> when argc > 0.
 * Returns a malloc'd string, or NULL with errno (E2BIG past @max bytes). */
char *cmdline_build(const char *base, const char *extra, int argc, char *const argv[],
		    size_t max);
/* 8250.nr_uarts=1: the machine has COM1 only; probing the other three
 * legacy ports took serial8250_init 80 ms of a 1.9 s boot in the nested
 * harness (38 ms with one; kvmbox bench boot's initcall list). */
#define CMDLINE_DEFAULT "console=ttyS0 reboot=k panic=-1 quiet 8250.nr_uarts=1"

#endif
