/* vmm/vm.c - the KVM virtual machine: /dev/kvm, capabilities, guest RAM,
 * in-kernel irqchip and PIT, the buses, virtio-mmio slots, and the stop
 * protocol every thread uses, and the event-loop thread (its start, park
 * and join).
 *
 * Guest RAM is one memfd (MFD_HUGETLB with --hugepages) mapped
 * MAP_SHARED|MAP_NORESERVE: untouched guest pages cost nothing, and the same
 * fd could later be shared with another process.  It is split around the
 * 32-bit MMIO hole exactly as common/gmem.h describes (gmem_init_x86), one
 * KVM memory slot per gmem region.
 */
#include "vmm/vmm.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cage/cage.h"
#include "common/harden.h"
#include "common/log.h"

#define KVM_TSS_ADDR 0xfffbd000ULL		/* 3 pages, inside the MMIO hole */
#define KVM_IDENTITY_MAP_ADDR 0xfffbc000ULL

/* Capabilities kvmbox cannot run without, also listed by `kvmbox doctor`. */
const struct vm_cap vm_required_caps[] = {
	{ KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP" },
	{ KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY" },
	{ KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR" },
	{ KVM_CAP_PIT2, "KVM_CAP_PIT2" },
	{ KVM_CAP_IOEVENTFD, "KVM_CAP_IOEVENTFD" },
	{ KVM_CAP_IRQFD, "KVM_CAP_IRQFD" },
	{ KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID" },
	{ KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT" },
	{ 0, NULL },
};

int vm_open_kvm(char *err, size_t errsz)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		if (e == ENOENT)
			snprintf(err, errsz, "/dev/kvm does not exist (load kvm_intel or kvm_amd, "
				 "and enable VT-x/AMD-V; run kvmbox doctor)");
		else if (e == EACCES || e == EPERM)
			snprintf(err, errsz, "no permission to open /dev/kvm (sudo usermod -aG kvm "
				 "$USER, then log in again; run kvmbox doctor)");
		else
			snprintf(err, errsz, "cannot open /dev/kvm: %s", strerror(e));
		return -e;
	}
	int v = ioctl(fd, KVM_GET_API_VERSION, 0);
	if (v != KVM_API_VERSION) {
		snprintf(err, errsz, "KVM API version %d, kvmbox needs %d", v, KVM_API_VERSION);
		close(fd);
		return -ENOTSUP;
	}
	for (const struct vm_cap *c = vm_required_caps; c->name; c++) {
		if (ioctl(fd, KVM_CHECK_EXTENSION, c->cap) <= 0) {
			snprintf(err, errsz, "KVM lacks %s (run kvmbox doctor)", c->name);
			close(fd);
			return -ENOTSUP;
		}
	}
	return fd;
}

static int vm_err(int r, const char *what)
{
	log_err("%s: %s", what, strerror(-r));
	return r;
}

/* Register every guest RAM region with KVM (helper thread or inline). */
static void *vm_register_memslots(void *arg)
{
	struct vm *vm = arg;
	for (unsigned i = 0; i < vm->gm.nregions; i++) {
		const struct gmem_region *r = &vm->gm.region[i];
		struct kvm_userspace_memory_region m = {
			.slot = i, .guest_phys_addr = r->gpa, .memory_size = r->size,
			.userspace_addr = (uint64_t)(uintptr_t)r->host,
		};
		if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &m) < 0) {
			vm->memslot_err = -errno;
			break;
		}
		vm->nslots++;
	}
	return NULL;
}

/* A restore's guest RAM: the snapshot's memory file, copy on write. */
static int vm_map_snapshot_memory(struct vm *vm)
{
	void *p = mmap(NULL, vm->cfg.mem_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE,
		       vm->mem_fd, 0);
	if (p == MAP_FAILED)
		return vm_err(-errno, "guest RAM: mmap of the snapshot's memory");
	vm->ram = p;
	vm->ram_private = true;
	madvise(p, vm->cfg.mem_size, MADV_DONTDUMP);
	return 0;
}

/* A boot's guest RAM under --hugepages: a hugetlbfs memfd. */
static int vm_map_hugetlb_memory(struct vm *vm)
{
	vm->mem_fd = memfd_create("kvmbox-ram", MFD_CLOEXEC | MFD_HUGETLB);
	if (vm->mem_fd < 0)
		return vm_err(-errno, "memfd_create(MFD_HUGETLB)");
	if (ftruncate(vm->mem_fd, (off_t)vm->cfg.mem_size) < 0)
		return vm_err(-errno, "guest RAM: ftruncate");
	/* Huge pages are reserved at mmap time (no MAP_NORESERVE): a shortage
	 * is an error here, not a SIGBUS when the guest first touches a page. */
	void *p = mmap(NULL, vm->cfg.mem_size, PROT_READ | PROT_WRITE, MAP_SHARED, vm->mem_fd, 0);
	if (p == MAP_FAILED) {
		int e = -errno;
		log_err("guest RAM: cannot reserve %llu MiB of huge pages (%s; see "
			"/proc/sys/vm/nr_hugepages)", (unsigned long long)(vm->cfg.mem_size >> 20),
			strerror(-e));
		return e;
	}
	vm->ram = p;
	madvise(p, vm->cfg.mem_size, MADV_DONTDUMP);
	return 0;
}

/* A boot's guest RAM: anonymous memory, 2 MiB aligned and offered to
 * transparent huge pages (MADV_HUGEPAGE, as QEMU and Cloud Hypervisor
 * do).  Each guest page the guest touches first costs a nested-paging
 * fault and, with 4 KiB host pages, one per 4 KiB: a fresh guest reading
 * 64 MiB into its page cache took 16,384 of them, and under the nested
 * harness its first sequential read of a share ran at a quarter of the
 * second's (docs/bench-vm.md).  Untouched pages still cost nothing; not
 * inherited by a child (MADV_DONTFORK: the VMM's helpers never see guest
 * RAM, and a fork copies no page tables for it).  /proc/self/pagemap is
 * kept open, before the cage, so a save reads only written pages; opened
 * without CAP_SYS_ADMIN, so it shows no physical frame numbers. */
static int vm_map_fresh_memory(struct vm *vm)
{
	if (vm->cfg.hugepages)
		return vm_map_hugetlb_memory(vm);
	const size_t align = 2u << 20;
	size_t len = vm->cfg.mem_size + align;
	uint8_t *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return vm_err(-errno, "guest RAM: mmap");
	uint8_t *ram = (uint8_t *)(((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1));
	if (ram > p)
		munmap(p, (size_t)(ram - p));
	size_t tail = (size_t)(p + len - (ram + vm->cfg.mem_size));
	if (tail)
		munmap(ram + vm->cfg.mem_size, tail);
	vm->ram = ram;
	madvise(ram, vm->cfg.mem_size, MADV_HUGEPAGE);	/* no THP on this host: 4 KiB pages */
	madvise(ram, vm->cfg.mem_size, MADV_DONTFORK);
	madvise(ram, vm->cfg.mem_size, MADV_DONTDUMP);
	/* -1: saves read every page */
	int fd = harden_open_unprivileged("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	vm->pagemap_fd = fd < 0 ? -1 : fd;
	return 0;
}

/* Guest RAM and its mapping, then one KVM slot per gmem region (on a
 * helper thread: struct vm says why). */
static int vm_setup_memory(struct vm *vm)
{
	int r = vm->cfg.restore ? vm_map_snapshot_memory(vm) : vm_map_fresh_memory(vm);
	if (r < 0)
		return r;
	gmem_init_x86(&vm->gm, vm->ram, vm->cfg.mem_size);
	if (pthread_create(&vm->memslot_thread, NULL, vm_register_memslots, vm) == 0)
		vm->memslot_pending = true;
	else
		vm_register_memslots(vm);
	return 0;
}

static void vm_memslots_join(struct vm *vm)
{
	if (vm->memslot_pending) {
		pthread_join(vm->memslot_thread, NULL);
		vm->memslot_pending = false;
	}
}

int vm_memslots_wait(struct vm *vm)
{
	vm_memslots_join(vm);
	return vm->memslot_err ? vm_err(vm->memslot_err, "KVM_SET_USER_MEMORY_REGION") : 0;
}

static int vm_setup_irqchip(struct vm *vm)
{
	uint64_t idmap = KVM_IDENTITY_MAP_ADDR;
	/* Both only matter for real-mode/unpaged guests on VMX; harmless elsewhere. */
	if (ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap) < 0)
		log_debug("KVM_SET_IDENTITY_MAP_ADDR: %s", strerror(errno));
	if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)KVM_TSS_ADDR) < 0)
		return vm_err(-errno, "KVM_SET_TSS_ADDR");
	if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
		return vm_err(-errno, "KVM_CREATE_IRQCHIP");
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0)
		return vm_err(-errno, "KVM_CREATE_PIT2");
	return 0;
}

/* KVM emulates the LAPIC's TSC-deadline mode with the in-kernel irqchip
 * but leaves CPUID.1:ECX[24] out of KVM_GET_SUPPORTED_CPUID: the VMM says
 * so when KVM_CAP_TSC_DEADLINE_TIMER is there, as QEMU and Firecracker do.
 * Without it Linux calibrates the LAPIC timer against the PIT at boot
 * (about 100 ms of guest time, and far more under nested emulation). */
static void vm_cpuid_tsc_deadline(struct vm *vm)
{
	struct kvm_cpuid_entry2 *l1 = cpuid_find(vm->cpuid, 1, 0);
	if (l1 && ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_TSC_DEADLINE_TIMER) > 0)
		l1->ecx |= 1u << 24;
}

static int vm_load_cpuid(struct vm *vm)
{
	unsigned n = 128;
	for (;;) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));
		if (!c)
			return -ENOMEM;
		c->nent = n - 2;	/* keep room for the leaves cpuid_patch may add */
		if (ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0) {
			vm->cpuid = c;
			vm->cpuid_cap = n;
			vm_cpuid_tsc_deadline(vm);
			return 0;
		}
		int e = errno;
		free(c);
		if (e != E2BIG || n >= 4096)
			return vm_err(-e, "KVM_GET_SUPPORTED_CPUID");
		n *= 2;
	}
}

int vm_create(struct vm *vm, const struct vm_config *cfg)
{
	memset(vm, 0, sizeof(*vm));
	pthread_mutex_init(&vm->park_lock, NULL);
	pthread_cond_init(&vm->park_cond, NULL);
	vm->cfg = *cfg;
	vm->kvm_fd = vm->vm_fd = vm->mem_fd = vm->pagemap_fd = -1;
	vm->guest_status = -1;
	if (cfg->restore)	/* vm_destroy closes it from here on */
		vm->mem_fd = cfg->restore_mem_fd;
	char err[200];
	int r = vm_open_kvm(err, sizeof(err));
	if (r < 0) {
		log_err("%s", err);
		return r;
	}
	vm->kvm_fd = r;
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0)
		return vm_err(-errno, "KVM_CREATE_VM");
	int t = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_GET_TSC_KHZ);
	(void)t;
	if ((r = vm_setup_irqchip(vm)) < 0 || (r = vm_setup_memory(vm)) < 0 ||
	    (r = vm_load_cpuid(vm)) < 0)
		return r;
	if ((r = loop_init(&vm->loop, 256)) < 0)
		return vm_err(r, "io_uring event loop");
	vm->loop_ready = true;
	vm->threads[0] = (struct vm_loop_thread){ .vm = vm, .loop = &vm->loop };
	vm->nthreads = 1;
	return 0;
}

struct loop *vm_add_iothread(struct vm *vm)
{
	if (!vm->loop_ready || vm->ran) {
		errno = EINVAL;
		return NULL;
	}
	if (vm->nthreads == 1 + VM_MAX_IOTHREADS) {
		errno = ENOSPC;
		return NULL;
	}
	struct loop *loop = malloc(sizeof(*loop));
	if (!loop)
		return NULL;
	int r = loop_init(loop, 256);
	if (r < 0) {
		free(loop);
		errno = -r;
		return NULL;
	}
	unsigned i = vm->nthreads++;
	vm->threads[i] = (struct vm_loop_thread){ .vm = vm, .loop = loop, .index = i };
	return loop;
}

void vm_destroy(struct vm *vm)
{
	vm_memslots_join(vm);
	vm_loop_thread_join(vm);
	for (unsigned i = 0; i < vm->nvirtio; i++) {
		if (vm->virtio_fds[i][0] >= 0)
			close(vm->virtio_fds[i][0]);
		if (vm->virtio_fds[i][1] >= 0)
			close(vm->virtio_fds[i][1]);
	}
	vm->nvirtio = 0;
	for (unsigned i = 0; i < vm->nvcpus; i++) {
		if (vm->vcpu[i].run)
			munmap(vm->vcpu[i].run, vm->vcpu[i].run_size);
		if (vm->vcpu[i].fd >= 0)
			close(vm->vcpu[i].fd);
	}
	vm->nvcpus = 0;
	for (unsigned i = 1; i < vm->nthreads; i++) {
		loop_fini(vm->threads[i].loop);
		free(vm->threads[i].loop);
	}
	vm->nthreads = 0;
	if (vm->loop_ready)
		loop_fini(&vm->loop);
	vm->loop_ready = false;
	if (vm->ram)
		munmap(vm->ram, vm->cfg.mem_size);
	vm->ram = NULL;
	if (vm->mem_fd >= 0)
		close(vm->mem_fd);
	if (vm->pagemap_fd >= 0)
		close(vm->pagemap_fd);
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	vm->mem_fd = vm->vm_fd = vm->kvm_fd = vm->pagemap_fd = -1;
	free(vm->cpuid);
	vm->cpuid = NULL;
}

int vm_add_pio(struct vm *vm, const struct io_region *r)
{
	return bus_add(&vm->pio, r);
}

int vm_add_mmio(struct vm *vm, const struct io_region *r)
{
	return bus_add(&vm->mmio, r);
}

void vm_set_irq(struct vm *vm, unsigned gsi, int level)
{
	struct kvm_irq_level l = { .irq = gsi, .level = (uint32_t)level };
	if (ioctl(vm->vm_fd, KVM_IRQ_LINE, &l) < 0)
		log_once(LOG_WARN, "KVM_IRQ_LINE %u: %s", gsi, strerror(errno));
}

int vm_add_virtio(struct vm *vm, struct io_region *r, struct dev_env *env)
{
	if (vm->nvirtio >= VIRTIO_MMIO_MAX_DEVS)
		return -ENOSPC;
	unsigned i = vm->nvirtio;
	uint64_t base = VIRTIO_MMIO_BASE + i * VIRTIO_MMIO_SIZE;
	unsigned irq = VIRTIO_MMIO_IRQ_BASE + i;
	int notify = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	int irqfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (notify < 0 || irqfd < 0) {
		int e = -errno;
		if (notify >= 0)
			close(notify);
		if (irqfd >= 0)
			close(irqfd);
		return vm_err(e, "eventfd");
	}
	vm->virtio_fds[i][0] = notify;
	vm->virtio_fds[i][1] = irqfd;
	vm->nvirtio++;
	/* The notify register carries the queue index, so match any value. */
	struct kvm_ioeventfd io = { .addr = base + VIRTIO_MMIO_QUEUE_NOTIFY, .len = 4, .fd = notify };
	if (ioctl(vm->vm_fd, KVM_IOEVENTFD, &io) < 0)
		return vm_err(-errno, "KVM_IOEVENTFD");
	struct kvm_irqfd kirq = { .fd = (uint32_t)irqfd, .gsi = irq };
	if (ioctl(vm->vm_fd, KVM_IRQFD, &kirq) < 0)
		return vm_err(-errno, "KVM_IRQFD");
	r->base = base;
	r->len = VIRTIO_MMIO_SIZE;
	int e = bus_add(&vm->mmio, r);
	if (e < 0)
		return vm_err(e, "virtio-mmio bus slot");
	*env = (struct dev_env){ .gm = &vm->gm, .loop = &vm->loop, .irq_fd = irqfd,
				 .notify_fd = notify, .irq = irq };
	size_t o = strlen(vm->virtio_cmdline);
	snprintf(vm->virtio_cmdline + o, sizeof(vm->virtio_cmdline) - o,
		 "%svirtio_mmio.device=4K@0x%llx:%u", o ? " " : "", (unsigned long long)base, irq);
	return 0;
}

void vm_stop(struct vm *vm, enum vm_stop_reason reason, int status, const char *fmt, ...)
{
	int expected = VM_RUNNING;
	if (!__atomic_compare_exchange_n(&vm->stop_reason, &expected, -1, false,
					 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		return;		/* someone else stopped it first */
	vm->exit_status = status;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(vm->stop_msg, sizeof(vm->stop_msg), fmt, ap);
	va_end(ap);
	__atomic_store_n(&vm->stop_reason, (int)reason, __ATOMIC_RELEASE);
	/* Wake the main thread, which kicks every vCPU and stops the loop. */
	if (vm->main_started)
		pthread_kill(vm->main_thread, VM_SIG_STOP);
}

void vm_guest_booted(struct vm *vm)
{
	profile_mark(vm->profile, PHASE_GUEST_INIT);
}

void vm_guest_exit_status(struct vm *vm, int status)
{
	__atomic_store_n(&vm->guest_status, status, __ATOMIC_RELEASE);
	profile_mark(vm->profile, PHASE_COMMAND_DONE);
}

void vm_guest_reset(struct vm *vm)
{
	int status = __atomic_load_n(&vm->guest_status, __ATOMIC_ACQUIRE);
	if (status >= 0)
		vm_stop(vm, VM_STOP_EXIT_STATUS, status, "guest exited with status %d", status);
	else
		vm_stop(vm, VM_STOP_RESET, 1, "guest reset without writing an exit status");
}

void vm_guest_snapshot(struct vm *vm)
{
	if (vm->cfg.snapshot_on_marker)
		vm_stop(vm, VM_STOP_SNAPSHOT, 0, "the guest asked to be saved");
	else
		log_once(LOG_INFO, "the guest asked to be saved; this run has no --snapshot");
}

void vm_guest_triple_fault(struct vm *vm, unsigned vcpu_id)
{
	int status = __atomic_load_n(&vm->guest_status, __ATOMIC_ACQUIRE);
	if (status >= 0)
		vm_stop(vm, VM_STOP_EXIT_STATUS, status, "guest exited with status %d", status);
	else
		vm_stop(vm, VM_STOP_SHUTDOWN, 1, "guest triple fault (KVM_EXIT_SHUTDOWN on vCPU %u)",
			vcpu_id);
}

uint64_t vm_ram_resident(const struct vm *vm)
{
	if (!vm->ram)
		return 0;
	long pg = sysconf(_SC_PAGESIZE);
	size_t pages = (vm->cfg.mem_size + (uint64_t)pg - 1) / (uint64_t)pg;
	uint64_t total = 0;
	unsigned char vec[4096];
	for (size_t i = 0; i < pages; i += sizeof(vec)) {
		size_t n = pages - i < sizeof(vec) ? pages - i : sizeof(vec);
		if (mincore(vm->ram + i * (size_t)pg, n * (size_t)pg, vec) < 0)
			return total;
		for (size_t k = 0; k < n; k++)
			total += (vec[k] & 1) ? (uint64_t)pg : 0;
	}
	return total;
}

/* ---- the loop threads ----
 * Devices' work runs here from the first vCPU's start until the VM stops;
 * then each thread parks and the main thread runs the loops for teardown. */

static void *loop_thread(void *arg)
{
	struct vm_loop_thread *t = arg;
	struct vm *vm = t->vm;
	char name[16];
	if (t->index)
		snprintf(name, sizeof(name), "kvmbox-io%u", t->index % 100u);
	pthread_setname_np(pthread_self(), t->index ? name : "kvmbox-loop");
	int caged = cage_thread(CAGE_LOOP);
	bool again = true;
	while (again) {
		int r = caged < 0 ? caged : loop_run(t->loop);
		if (r < 0)
			vm_stop(vm, VM_STOP_ERROR, 1, "event loop: %s", strerror(-r));
		/* Park until vm_destroy (struct vm says why), or until the VM
		 * runs on after a failed save (vm_run_on); the main thread runs
		 * the loop meanwhile. */
		pthread_mutex_lock(&vm->park_lock);
		t->parked = true;
		pthread_cond_broadcast(&vm->park_cond);
		while (!t->release && !t->rerun)
			pthread_cond_wait(&vm->park_cond, &vm->park_lock);
		again = !t->release;
		t->rerun = false;
		pthread_mutex_unlock(&vm->park_lock);
	}
	return NULL;
}

int vm_loop_thread_start(struct vm *vm)
{
	for (unsigned i = 0; i < vm->nthreads; i++) {
		struct vm_loop_thread *t = &vm->threads[i];
		int r = pthread_create(&t->thread, NULL, loop_thread, t);
		if (r)
			return -r;
		t->started = true;
	}
	return 0;
}

int vm_loop_thread_rerun(struct vm *vm)
{
	for (unsigned i = 0; i < vm->nthreads; i++) {
		struct vm_loop_thread *t = &vm->threads[i];
		if (!t->started)
			continue;
		int r = loop_restart(t->loop);
		if (r < 0)
			return r;
		pthread_mutex_lock(&vm->park_lock);
		t->parked = false;	/* vm_run waits for the next park */
		t->rerun = true;
		pthread_cond_broadcast(&vm->park_cond);
		pthread_mutex_unlock(&vm->park_lock);
	}
	return 0;
}

void vm_loop_thread_park(struct vm *vm)
{
	for (unsigned i = 0; i < vm->nthreads; i++)
		if (vm->threads[i].started)
			loop_stop_async(vm->threads[i].loop, 0);
	pthread_mutex_lock(&vm->park_lock);
	for (unsigned i = 0; i < vm->nthreads; i++)
		while (vm->threads[i].started && !vm->threads[i].parked)
			pthread_cond_wait(&vm->park_cond, &vm->park_lock);
	pthread_mutex_unlock(&vm->park_lock);
}

/* Let the parked loop threads exit and join them. */
void vm_loop_thread_join(struct vm *vm)
{
	pthread_mutex_lock(&vm->park_lock);
	for (unsigned i = 0; i < vm->nthreads; i++)
		vm->threads[i].release = true;
	pthread_cond_broadcast(&vm->park_cond);
	pthread_mutex_unlock(&vm->park_lock);
	for (unsigned i = 0; i < vm->nthreads; i++) {
		if (vm->threads[i].started)
			pthread_join(vm->threads[i].thread, NULL);
		vm->threads[i].started = false;
	}
}
