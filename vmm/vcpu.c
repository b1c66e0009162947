/* vmm/vcpu.c - vCPUs: creation, CPU state (CPUID, MSRs, FPU, LAPIC LINTs,
 * boot registers), the per-vCPU KVM_RUN thread, and vm_run(), which starts
 * them and the event-loop thread and tears everything down.
 *
 * The boot vCPU (id 0) starts at boot/'s entry in PVH 32-bit protected mode
 * or 64-bit long mode; the others stay in wait-for-SIPI inside the
 * in-kernel LAPIC until the guest starts them.
 *
 * Stopping: whoever decides the VM is done calls vm_stop(), which records
 * the reason and signals the main thread (VM_SIG_STOP).  The main thread,
 * which also takes SIGINT and SIGTERM through sigwaitinfo(), sets
 * immediate_exit in every kvm_run and sends VM_SIG_KICK to each vCPU thread:
 * a vCPU inside KVM_RUN (even a guest spinning at full speed, or an AP
 * blocked waiting for SIPI) returns EINTR, one about to enter returns at
 * once thanks to immediate_exit.  vCPU threads do only devices' register
 * accesses (MMIO/PIO handlers, which may reset a device); queue work runs
 * on the event loop.  Each vCPU thread narrows itself to the cage's vcpu
 * role (cage/cage.h) before its first KVM_RUN.
 *
 * Dead halts: with the in-kernel LAPIC a guest's HLT never reaches user
 * space, so a guest that halts with interrupts off (cli; hlt) would hang
 * kvmbox forever.  Once a second without news the main thread probes: it
 * bumps a generation and kicks every vCPU; each answers from its own thread
 * (KVM_GET_MP_STATE, RFLAGS.IF) whether it is dead (halted with IF=0, or
 * never started by INIT/SIPI).  When all answer dead for the same
 * generation, the VM stops with VM_STOP_HLT, or with the exit status the
 * guest wrote before halting (a Linux poweroff without ACPI halts).
 */
#include "vmm/vmm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "cage/cage.h"
#include "common/log.h"
#include "common/util.h"
#include "vmm/snapshot/snapshot.h"

#define CR0_PE 0x1ULL
#define CR0_ET 0x10ULL
#define CR0_NE 0x20ULL
#define CR0_PG 0x80000000ULL
#define CR4_PAE 0x20ULL
#define EFER_LME 0x100ULL
#define EFER_LMA 0x400ULL

#define MSR_IA32_TSC 0x10
#define MSR_IA32_SYSENTER_CS 0x174
#define MSR_IA32_SYSENTER_ESP 0x175
#define MSR_IA32_SYSENTER_EIP 0x176
#define MSR_IA32_MISC_ENABLE 0x1a0
#define MSR_MTRR_DEF_TYPE 0x2ff
#define MSR_STAR 0xc0000081
#define MSR_LSTAR 0xc0000082
#define MSR_CSTAR 0xc0000083
#define MSR_SYSCALL_MASK 0xc0000084
#define MSR_KERNEL_GS_BASE 0xc0000102
#define MISC_ENABLE_FAST_STRING 0x1ULL
#define MTRR_ENABLE_WB ((1ULL << 11) | 6)

#define APIC_LVT0 0x350
#define APIC_LVT1 0x360
#define APIC_MODE_NMI 0x4
#define APIC_MODE_EXTINT 0x7

static int vcpu_err(const struct vcpu *c, const char *what)
{
	int e = -errno;
	log_err("vCPU %u: %s: %s", c->id, what, strerror(errno));
	return e;
}

static int vcpu_set_cpuid(struct vm *vm, struct vcpu *c)
{
	size_t sz = sizeof(*vm->cpuid) + vm->cpuid_cap * sizeof(vm->cpuid->entries[0]);
	struct kvm_cpuid2 *mine = malloc(sz);
	if (!mine)
		return -ENOMEM;
	memcpy(mine, vm->cpuid, sz);
	cpuid_patch(mine, vm->cpuid_cap, c->id, vm->cfg.ncpus, vm->tsc_khz);
	int r = ioctl(c->fd, KVM_SET_CPUID2, mine) < 0 ? vcpu_err(c, "KVM_SET_CPUID2") : 0;
	uint64_t xcr0 = cpuid_user_xcr0(mine);
	if (r == 0 && xcr0 && ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XCRS) > 0) {
		struct kvm_xcrs x = { .nr_xcrs = 1, .xcrs[0] = { .xcr = 0, .value = xcr0 } };
		/* Then CPUID once more: KVM recomputes 0xD.0 EBX for this XCR0. */
		if (ioctl(c->fd, KVM_SET_XCRS, &x) < 0)
			log_once(LOG_WARN, "vCPU %u: KVM_SET_XCRS: %s", c->id, strerror(errno));
		else if (ioctl(c->fd, KVM_SET_CPUID2, mine) < 0)
			r = vcpu_err(c, "KVM_SET_CPUID2");
	}
	free(mine);
	return r;
}

/* MSRs a freshly reset x86 CPU would hold; KVM may refuse some (e.g. an
 * emulating KVM without SYSENTER), which is harmless for the guest. */
static void vcpu_set_msrs(struct vcpu *c)
{
	static const struct { uint32_t index; uint64_t data; } init[] = {
		{ MSR_IA32_SYSENTER_CS, 0 }, { MSR_IA32_SYSENTER_ESP, 0 },
		{ MSR_IA32_SYSENTER_EIP, 0 }, { MSR_STAR, 0 }, { MSR_LSTAR, 0 },
		{ MSR_CSTAR, 0 }, { MSR_SYSCALL_MASK, 0 }, { MSR_KERNEL_GS_BASE, 0 },
		{ MSR_IA32_MISC_ENABLE, MISC_ENABLE_FAST_STRING },
		{ MSR_MTRR_DEF_TYPE, MTRR_ENABLE_WB },
	};
	/* One MSR per call, so one KVM refuses does not hide the others. */
	union {
		struct kvm_msrs hdr;
		uint8_t bytes[sizeof(struct kvm_msrs) + sizeof(struct kvm_msr_entry)];
	} one;
	for (size_t i = 0; i < sizeof(init) / sizeof(init[0]); i++) {
		memset(&one, 0, sizeof(one));
		one.hdr.nmsrs = 1;
		one.hdr.entries[0].index = init[i].index;
		one.hdr.entries[0].data = init[i].data;
		if (ioctl(c->fd, KVM_SET_MSRS, &one) != 1)
			log_debug("vCPU %u: MSR 0x%x not settable", c->id, init[i].index);
	}
}

/* LINT0 as ExtINT (the 8259 behind it), LINT1 as NMI: what a PC BIOS leaves. */
static int vcpu_set_lint(struct vcpu *c)
{
	struct kvm_lapic_state l;
	if (ioctl(c->fd, KVM_GET_LAPIC, &l) < 0)
		return vcpu_err(c, "KVM_GET_LAPIC");
	uint32_t v;
	memcpy(&v, &l.regs[APIC_LVT0], 4);
	v = (v & ~0x700u) | (APIC_MODE_EXTINT << 8);
	memcpy(&l.regs[APIC_LVT0], &v, 4);
	memcpy(&v, &l.regs[APIC_LVT1], 4);
	v = (v & ~0x700u) | (APIC_MODE_NMI << 8);
	memcpy(&l.regs[APIC_LVT1], &v, 4);
	if (ioctl(c->fd, KVM_SET_LAPIC, &l) < 0)
		return vcpu_err(c, "KVM_SET_LAPIC");
	return 0;
}

static int vcpu_set_fpu(struct vcpu *c)
{
	struct kvm_fpu fpu;
	memset(&fpu, 0, sizeof(fpu));
	fpu.fcw = 0x37f;
	fpu.mxcsr = 0x1f80;
	if (ioctl(c->fd, KVM_SET_FPU, &fpu) < 0)
		return vcpu_err(c, "KVM_SET_FPU");
	return 0;
}

static struct kvm_segment flat_seg(uint16_t sel, uint8_t type, bool long64)
{
	return (struct kvm_segment){
		.base = 0, .limit = 0xffffffff, .selector = sel, .type = type,
		.present = 1, .dpl = 0, .db = long64 && (type & 8) ? 0 : 1, .s = 1,
		.l = long64 && (type & 8) ? 1 : 0, .g = 1,
	};
}

/* The segment a GDT descriptor describes (its hidden part, as the CPU would
 * load it). */
static struct kvm_segment seg_from_desc(uint64_t d, uint16_t sel)
{
	uint32_t limit = (uint32_t)((d & 0xffff) | ((d >> 32) & 0xf0000));
	bool g = (d >> 55) & 1;
	return (struct kvm_segment){
		.base = ((d >> 16) & 0xffffff) | (((d >> 56) & 0xff) << 24),
		.limit = g ? (limit << 12) | 0xfff : limit,
		.selector = sel,
		.type = (uint8_t)((d >> 40) & 0xf),
		.s = (uint8_t)((d >> 44) & 1),
		.dpl = (uint8_t)((d >> 45) & 3),
		.present = (uint8_t)((d >> 47) & 1),
		.avl = (uint8_t)((d >> 52) & 1),
		.l = (uint8_t)((d >> 53) & 1),
		.db = (uint8_t)((d >> 54) & 1),
		.g = g,
	};
}

/* Descriptor @sel of boot/'s GDT in guest memory, if it is there. */
static bool gdt_desc(const struct vm *vm, uint16_t sel, uint64_t *d)
{
	const struct boot_entry *e = &vm->entry;
	uint16_t idx = sel & ~7u;
	if (!idx || (uint32_t)idx + 7 > e->gdt_limit)
		return false;
	return gmem_read(&vm->gm, d, e->gdt_base + idx, 8) == 0 && ((*d >> 47) & 1);
}

/* Boot vCPU registers for boot/'s entry (see boot/boot.h). */
static int vcpu_set_boot_regs(struct vm *vm, struct vcpu *c)
{
	const struct boot_entry *e = &vm->entry;
	bool long64 = e->mode == BOOT_MODE_LONG64;
	struct kvm_sregs s;
	if (ioctl(c->fd, KVM_GET_SREGS, &s) < 0)
		return vcpu_err(c, "KVM_GET_SREGS");
	s.cs = flat_seg(e->code_sel, 0xb, long64);
	s.ds = s.es = s.fs = s.gs = s.ss = flat_seg(e->data_sel, 0x3, long64);
	s.tr = (struct kvm_segment){ .limit = 0xffff, .type = 0xb, .present = 1 };
	uint64_t d;
	if (e->tss_sel && gdt_desc(vm, e->tss_sel, &d))
		s.tr = seg_from_desc(d, e->tss_sel);	/* PVH wants a real busy TSS */
	if (gdt_desc(vm, e->code_sel, &d))
		s.cs = seg_from_desc(d, e->code_sel);
	if (gdt_desc(vm, e->data_sel, &d))
		s.ds = s.es = s.fs = s.gs = s.ss = seg_from_desc(d, e->data_sel);
	s.ldt = (struct kvm_segment){ .limit = 0xffff, .type = 0x2, .present = 1 };
	s.gdt.base = e->gdt_base;
	s.gdt.limit = e->gdt_limit;
	s.idt.base = 0;
	s.idt.limit = 0;
	if (long64) {
		s.cr0 = CR0_PE | CR0_ET | CR0_NE | CR0_PG;
		s.cr3 = e->cr3;
		s.cr4 = CR4_PAE;
		s.efer = EFER_LME | EFER_LMA;
	} else {
		s.cr0 = CR0_PE | CR0_ET;
		s.cr3 = 0;
		s.cr4 = 0;
		s.efer = 0;
	}
	if (ioctl(c->fd, KVM_SET_SREGS, &s) < 0)
		return vcpu_err(c, "KVM_SET_SREGS");
	struct kvm_regs r;
	memset(&r, 0, sizeof(r));
	r.rflags = 0x2;
	r.rip = e->rip;
	r.rsp = e->rsp;
	r.rsi = e->rsi;
	r.rbx = e->rbx;
	if (ioctl(c->fd, KVM_SET_REGS, &r) < 0)
		return vcpu_err(c, "KVM_SET_REGS");
	return 0;
}

static int vcpu_create(struct vm *vm, unsigned id, int mmap_size)
{
	struct vcpu *c = &vm->vcpu[id];
	memset(c, 0, sizeof(*c));
	c->vm = vm;
	c->id = id;
	c->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)id);
	if (c->fd < 0)
		return vcpu_err(c, "KVM_CREATE_VCPU");
	vm->nvcpus++;
	c->run = mmap(NULL, (size_t)mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, c->fd, 0);
	if (c->run == MAP_FAILED) {
		c->run = NULL;
		return vcpu_err(c, "mmap kvm_run");
	}
	c->run_size = (size_t)mmap_size;
	return 0;
}

static int vcpus_setup(struct vm *vm)
{
	int mmap_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (mmap_size <= 0) {
		log_err("KVM_GET_VCPU_MMAP_SIZE: %s", strerror(errno));
		return -EINVAL;
	}
	for (unsigned i = 0; i < vm->cfg.ncpus; i++) {
		int r = vcpu_create(vm, i, mmap_size);
		if (r < 0)
			return r;
	}
	int khz = ioctl(vm->vcpu[0].fd, KVM_GET_TSC_KHZ, 0);
	vm->tsc_khz = khz > 0 ? (uint32_t)khz : 0;
	if (vm->cfg.restore) {
		char err[200];
		int r = snap_load_kvm(vm, vm->cfg.restore, err, sizeof(err));
		if (r < 0)
			log_err("cannot restore the snapshot: %s", err);
		return r;
	}
	for (unsigned i = 0; i < vm->cfg.ncpus; i++) {
		struct vcpu *c = &vm->vcpu[i];
		int r;
		if ((r = vcpu_set_cpuid(vm, c)) < 0 || (r = vcpu_set_lint(c)) < 0 ||
		    (r = vcpu_set_fpu(c)) < 0)
			return r;
		vcpu_set_msrs(c);
	}
	return vcpu_set_boot_regs(vm, &vm->vcpu[0]);
}

static bool vm_stopping(struct vm *vm)
{
	return __atomic_load_n(&vm->stop_reason, __ATOMIC_ACQUIRE) != VM_RUNNING;
}

static void vcpu_handle_io(struct vcpu *c)
{
	struct kvm_run *run = c->run;
	uint8_t *p = (uint8_t *)run + run->io.data_offset;
	unsigned size = run->io.size;
	/* data_offset and count come from KVM, but stay inside the mapping. */
	if (run->io.data_offset >= c->run_size ||
	    (uint64_t)size * run->io.count > c->run_size - run->io.data_offset)
		return;
	for (uint32_t i = 0; i < run->io.count; i++, p += size) {
		bool hit = run->io.direction == KVM_EXIT_IO_OUT ?
			bus_write(&c->vm->pio, run->io.port, p, size) :
			bus_read(&c->vm->pio, run->io.port, p, size);
		if (!hit)
			log_debug("vCPU %u: unclaimed port %s 0x%x size %u", c->id,
				  run->io.direction == KVM_EXIT_IO_OUT ? "write" : "read",
				  run->io.port, size);
	}
}

static void vcpu_handle_mmio(struct vcpu *c)
{
	struct kvm_run *run = c->run;
	unsigned len = run->mmio.len <= 8 ? run->mmio.len : 8;
	bool hit = run->mmio.is_write ?
		bus_write(&c->vm->mmio, run->mmio.phys_addr, run->mmio.data, len) :
		bus_read(&c->vm->mmio, run->mmio.phys_addr, run->mmio.data, len);
	if (!hit)
		log_debug("vCPU %u: unclaimed MMIO %s 0x%llx size %u", c->id,
			  run->mmio.is_write ? "write" : "read",
			  (unsigned long long)run->mmio.phys_addr, len);
}

/* With KVMBOX_LOG=debug, where the vCPU was when it died. */
static void vcpu_dump(const struct vcpu *c)
{
	if (log_get_level() < LOG_DEBUG)
		return;
	struct kvm_regs r;
	struct kvm_sregs s;
	if (ioctl(c->fd, KVM_GET_REGS, &r) < 0 || ioctl(c->fd, KVM_GET_SREGS, &s) < 0)
		return;
	log_debug("vCPU %u: rip=0x%llx rsp=0x%llx rflags=0x%llx cs=0x%x cr0=0x%llx cr3=0x%llx "
		  "cr4=0x%llx efer=0x%llx", c->id, (unsigned long long)r.rip,
		  (unsigned long long)r.rsp, (unsigned long long)r.rflags, s.cs.selector,
		  (unsigned long long)s.cr0, (unsigned long long)s.cr3, (unsigned long long)s.cr4,
		  (unsigned long long)s.efer);
}

/* One exit: returns false when the vCPU must stop. */
static bool vcpu_handle_exit(struct vcpu *c)
{
	struct vm *vm = c->vm;
	struct kvm_run *run = c->run;
	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		vcpu_handle_io(c);
		return true;
	case KVM_EXIT_MMIO:
		vcpu_handle_mmio(c);
		return true;
	case KVM_EXIT_INTR:
		return true;
	case KVM_EXIT_SHUTDOWN:
		vcpu_dump(c);
		vm_guest_triple_fault(vm, c->id);
		return false;
	case KVM_EXIT_HLT:
		vm_stop(vm, VM_STOP_HLT, 1, "guest halted with interrupts off on vCPU %u", c->id);
		return false;
	case KVM_EXIT_SYSTEM_EVENT:
		if (run->system_event.type == KVM_SYSTEM_EVENT_RESET)
			vm_guest_reset(vm);
		else
			vm_stop(vm, VM_STOP_RESET, 1, "guest system event %u without an exit status",
				run->system_event.type);
		return false;
	case KVM_EXIT_INTERNAL_ERROR:
		vcpu_dump(c);
		vm_stop(vm, VM_STOP_INTERNAL, 1,
			"KVM internal error on vCPU %u (KVM_EXIT_INTERNAL_ERROR, suberror %u%s)",
			c->id, run->internal.suberror,
			run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION ?
			": instruction emulation failed" : "");
		return false;
	case KVM_EXIT_FAIL_ENTRY:
		vm_stop(vm, VM_STOP_INTERNAL, 1,
			"KVM could not enter the guest on vCPU %u (KVM_EXIT_FAIL_ENTRY, reason 0x%llx)",
			c->id, (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		return false;
	default:
		vm_stop(vm, VM_STOP_INTERNAL, 1, "unexpected KVM exit %u on vCPU %u",
			run->exit_reason, c->id);
		return false;
	}
}

/* Called on the vCPU's own thread after a kick: answer the probe. */
static void vcpu_answer_probe(struct vcpu *c)
{
	struct vm *vm = c->vm;
	unsigned gen = __atomic_load_n(&c->probe_gen, __ATOMIC_ACQUIRE);
	if (!gen || gen == __atomic_load_n(&c->dead_gen, __ATOMIC_ACQUIRE))
		return;
	struct kvm_mp_state mp;
	struct kvm_regs r;
	if (ioctl(c->fd, KVM_GET_MP_STATE, &mp) < 0 || ioctl(c->fd, KVM_GET_REGS, &r) < 0)
		return;
	__atomic_store_n(&c->seen_rip, r.rip, __ATOMIC_RELAXED);
	__atomic_store_n(&c->seen_rflags, r.rflags, __ATOMIC_RELAXED);
	__atomic_store_n(&c->seen_mp_state, mp.mp_state, __ATOMIC_RELAXED);
	__atomic_store_n(&c->seen_ns, now_ns(), __ATOMIC_RELEASE);
	bool dead = (mp.mp_state == KVM_MP_STATE_HALTED && !(r.rflags & 0x200)) ||
		    mp.mp_state == KVM_MP_STATE_UNINITIALIZED ||
		    mp.mp_state == KVM_MP_STATE_INIT_RECEIVED;
	if (!dead)
		return;
	__atomic_store_n(&c->dead_gen, gen, __ATOMIC_RELEASE);
	for (unsigned i = 0; i < vm->nvcpus; i++)
		if (__atomic_load_n(&vm->vcpu[i].dead_gen, __ATOMIC_ACQUIRE) != gen)
			return;
	/* A guest that reported its status and then powered off (Linux without
	 * ACPI halts every CPU) ended normally. */
	int status = __atomic_load_n(&vm->guest_status, __ATOMIC_ACQUIRE);
	if (status >= 0)
		vm_stop(vm, VM_STOP_EXIT_STATUS, status, "guest exited with status %d, then halted",
			status);
	else
		vm_stop(vm, VM_STOP_HLT, 1, "guest halted with interrupts off on every vCPU");
}

static void kick_handler(int sig)
{
	(void)sig;
}

/* Before a snapshot: enter KVM_RUN once with immediate_exit set, which
 * completes an I/O or MMIO exit in flight (KVM finishes that instruction
 * on the next entry, in state GET_REGS does not show) and runs nothing of
 * the guest. */
static void vcpu_settle(struct vcpu *c)
{
	__atomic_store_n(&c->run->immediate_exit, 1, __ATOMIC_RELEASE);
	if (ioctl(c->fd, KVM_RUN, 0) == 0 || (errno != EINTR && errno != EAGAIN))
		vm_stop(c->vm, VM_STOP_ERROR, 1, "vCPU %u: cannot settle its last exit for the snapshot",
			c->id);
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *c = arg;
	struct vm *vm = c->vm;
	sigset_t kick;
	sigemptyset(&kick);
	sigaddset(&kick, VM_SIG_KICK);
	pthread_sigmask(SIG_UNBLOCK, &kick, NULL);
	char name[16];
	snprintf(name, sizeof(name), "vcpu%u", c->id);
	pthread_setname_np(pthread_self(), name);
	if (cage_thread(CAGE_VCPU) < 0)
		vm_stop(vm, VM_STOP_ERROR, 1, "vCPU %u: cannot enter its seccomp filter", c->id);
	if (c->id == 0)
		profile_mark(vm->profile, PHASE_FIRST_RUN);
	while (!vm_stopping(vm)) {
		if (ioctl(c->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				c->run->immediate_exit = 0;
				vcpu_answer_probe(c);
				continue;
			}
			vm_stop(vm, VM_STOP_ERROR, 1, "KVM_RUN on vCPU %u: %s", c->id, strerror(errno));
			break;
		}
		if (!vcpu_handle_exit(c))
			break;
	}
	if (__atomic_load_n(&vm->stop_reason, __ATOMIC_ACQUIRE) == VM_STOP_SNAPSHOT)
		vcpu_settle(c);
	return NULL;
}

/* Main thread: kick every vCPU until each thread has returned. */
static void vcpus_stop_and_join(struct vm *vm)
{
	for (unsigned i = 0; i < vm->nvcpus; i++) {
		struct vcpu *c = &vm->vcpu[i];
		if (!c->started)
			continue;
		for (;;) {
			__atomic_store_n(&c->run->immediate_exit, 1, __ATOMIC_RELEASE);
			pthread_kill(c->thread, VM_SIG_KICK);
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 20 * 1000000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			if (pthread_timedjoin_np(c->thread, NULL, &ts) == 0)
				break;
		}
		c->started = false;
	}
}

/* Main thread: start a dead-halt probe (see the top of this file). */
static void vcpus_probe(struct vm *vm)
{
	unsigned gen = ++vm->probe_gen;
	for (unsigned i = 0; i < vm->nvcpus; i++) {
		struct vcpu *c = &vm->vcpu[i];
		if (!c->started)
			continue;
		__atomic_store_n(&c->probe_gen, gen, __ATOMIC_RELEASE);
		pthread_kill(c->thread, VM_SIG_KICK);
	}
}

/* Main thread, on VM_SIG_DUMP: each vCPU as the latest probe saw it. */
static void vcpus_dump(struct vm *vm)
{
	static const char *const mp_names[] = { "runnable", "uninitialized", "init-received",
						"halted", "sipi-received" };
	uint64_t now = now_ns();
	for (unsigned i = 0; i < vm->nvcpus; i++) {
		struct vcpu *c = &vm->vcpu[i];
		uint64_t at = __atomic_load_n(&c->seen_ns, __ATOMIC_ACQUIRE);
		if (!c->started || !at) {
			log_msg(LOG_ERR, "vcpu%u: not probed yet", i);
			continue;
		}
		uint32_t mp = __atomic_load_n(&c->seen_mp_state, __ATOMIC_RELAXED);
		uint64_t rip = __atomic_load_n(&c->seen_rip, __ATOMIC_RELAXED);
		log_msg(LOG_ERR, "vcpu%u: %s rip=%#llx rflags=%#llx (%s), %llu ms ago", i,
			mp < ARRAY_SIZE(mp_names) ? mp_names[mp] : "?", (unsigned long long)rip,
			(unsigned long long)__atomic_load_n(&c->seen_rflags, __ATOMIC_RELAXED),
			rip >> 63 ? "kernel" : "user", (unsigned long long)((now - at) / 1000000));
	}
}

/* Main thread, on VM_SIG_SUSPEND: stop to be saved, unless this run saves
 * nothing or the save could not be made (the VM runs on: a suspend that
 * fails half-way would have lost it). */
static void suspend_asked(struct vm *vm)
{
	char why[300];
	if (!vm->cfg.snapshot_on_signal)
		log_msg(LOG_WARN, "asked to suspend, but this run saves no snapshot: it runs on");
	else if (vm->cfg.may_suspend && !vm->cfg.may_suspend(vm->cfg.may_suspend_opaque, why, sizeof(why)))
		log_msg(LOG_ERR, "not suspended: %s; the VM runs on", why);
	else {
		vm->host_asked_save = true;
		vm_stop(vm, VM_STOP_SNAPSHOT, 0, "suspended on the host's request");
	}
}

/* vm_run's first time: vCPUs, RAM, a restore's devices, the cage, the
 * event-loop thread; a failure stops the VM. */
static void vm_set_up(struct vm *vm)
{
	char why[512];
	int r = vcpus_setup(vm);
	if (r < 0)
		vm_stop(vm, VM_STOP_ERROR, 1, "vCPU setup failed: %s", strerror(-r));
	else if ((r = vm_memslots_wait(vm)) < 0)
		vm_stop(vm, VM_STOP_ERROR, 1, "guest RAM: %s", strerror(-r));
	else if (vm->cfg.restore && vm->cfg.restore_devices &&
		 (r = vm->cfg.restore_devices(vm->cfg.restore_opaque, why, sizeof(why))) != 0)
		vm_stop(vm, VM_STOP_ERROR, 1, "%s", why);
	else if (vm->cfg.cage && (r = cage_process(vm->cfg.cage, why, sizeof(why))) < 0)
		vm_stop(vm, VM_STOP_ERROR, 1, "%s", why);
	if (r == 0 && vm_loop_thread_start(vm) < 0)
		vm_stop(vm, VM_STOP_ERROR, 1, "cannot start the event-loop threads");
}

int vm_run_on(struct vm *vm)
{
	if (!vm->ran || __atomic_load_n(&vm->stop_reason, __ATOMIC_ACQUIRE) != VM_STOP_SNAPSHOT)
		return -EINVAL;
	vm->exit_status = 0;
	vm->stop_msg[0] = 0;
	__atomic_store_n(&vm->stop_reason, VM_RUNNING, __ATOMIC_RELEASE);
	return vm_run(vm);
}

static int stop_signal_set(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
	sigaddset(set, VM_SIG_STOP);
	sigaddset(set, VM_SIG_KICK);	/* only vCPU threads take it */
	sigaddset(set, VM_SIG_DUMP);
	sigaddset(set, VM_SIG_SUSPEND);
	return 0;
}

int vm_run(struct vm *vm)
{
	sigset_t set, old;
	stop_signal_set(&set);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = kick_handler;	/* no SA_RESTART: KVM_RUN returns EINTR */
	sigaction(VM_SIG_KICK, &sa, NULL);
	vm->main_thread = pthread_self();
	vm->main_started = true;

	if (!vm->ran)
		vm_set_up(vm);
	else if (vm_loop_thread_rerun(vm) < 0)
		vm_stop(vm, VM_STOP_ERROR, 1, "cannot run the event loop again");
	vm->ran = true;
	for (unsigned i = 0; i < vm->nvcpus && !vm_stopping(vm); i++) {
		if (pthread_create(&vm->vcpu[i].thread, NULL, vcpu_thread, &vm->vcpu[i]) != 0) {
			vm_stop(vm, VM_STOP_ERROR, 1, "cannot start vCPU thread %u", i);
			break;
		}
		vm->vcpu[i].started = true;
	}

	sigset_t wait;
	sigemptyset(&wait);
	if (!vm->caller_handles_signals) {
		sigaddset(&wait, SIGINT);
		sigaddset(&wait, SIGTERM);
	}
	sigaddset(&wait, VM_SIG_STOP);
	sigaddset(&wait, VM_SIG_DUMP);
	sigaddset(&wait, VM_SIG_SUSPEND);
	while (__atomic_load_n(&vm->stop_reason, __ATOMIC_ACQUIRE) <= VM_RUNNING) {
		siginfo_t si;
		struct timespec probe_after = { 1, 0 };
		int sig = sigtimedwait(&wait, &si, &probe_after);
		if (sig < 0 && errno == EAGAIN)
			vcpus_probe(vm);
		if (sig == VM_SIG_DUMP)
			vcpus_dump(vm);
		if (sig == VM_SIG_SUSPEND)
			suspend_asked(vm);
		if (sig == SIGINT || sig == SIGTERM)
			vm_stop(vm, VM_STOP_SIGNAL, 128 + sig, "stopped by %s",
				sig == SIGINT ? "SIGINT" : "SIGTERM");
	}
	vcpus_stop_and_join(vm);
	vm_loop_thread_park(vm);
	vm->main_started = false;
	/* Drain a VM_SIG_STOP sent after the loop above saw the reason. */
	struct timespec zero = { 0, 0 };
	sigset_t stop1;
	sigemptyset(&stop1);
	sigaddset(&stop1, VM_SIG_STOP);
	while (sigtimedwait(&stop1, NULL, &zero) > 0)
		;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return vm->stop_reason;
}
