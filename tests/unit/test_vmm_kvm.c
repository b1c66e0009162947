/* tests/unit/test_vmm_kvm.c - the virtio plumbing on a real /dev/kvm: a
 * virtio-mmio slot from vm_add_virtio() gets its window on the MMIO bus, its
 * QueueNotify register wired to notify_fd through KVM_IOEVENTFD (guest
 * writes never reach the bus), its irq_fd accepted by KVM_IRQFD, and its
 * virtio_mmio.device= announcement.  The guest is firmware/tests/virtio.elf.
 * An I/O thread's loop runs on its own thread (vm_add_iothread).
 * Also the LONG64 entry state boot/ hands over for 64-bit kernels.
 * Skipped when /dev/kvm or the tiny guests are missing. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/util.h"
#include "devices/legacy/legacy.h"
#include "vmm/vmm.h"

struct fake_virtio {
	int reads_magic, writes_notify, other;
};

static void fv_read(void *opaque, uint64_t off, void *data, unsigned size)
{
	struct fake_virtio *f = opaque;
	uint32_t v = 0;
	if (off == 0 && size == 4) {
		f->reads_magic++;
		v = 0x74726976;
	} else {
		f->other++;
	}
	memcpy(data, &v, size < 4 ? size : 4);
}

static void fv_write(void *opaque, uint64_t off, const void *data, unsigned size)
{
	struct fake_virtio *f = opaque;
	(void)data;
	(void)size;
	if (off == VIRTIO_MMIO_QUEUE_NOTIFY)
		f->writes_notify++;
	else
		f->other++;
}

static void on_status(void *opaque, int status)
{
	vm_guest_exit_status(opaque, status);
}

static void on_reset(void *opaque)
{
	vm_guest_reset(opaque);
}

/* A one-shot timer on an I/O thread's loop: where and whether it fired. */
struct io_probe {
	struct loop_op op;
	struct __kernel_timespec ts;
	bool fired;
	char thread[16];
};

static void io_probe_fired(struct loop *loop, struct loop_op *op, int res, uint32_t flags)
{
	(void)loop;
	(void)res;
	(void)flags;
	struct io_probe *p = op->opaque;
	pthread_getname_np(pthread_self(), p->thread, sizeof(p->thread));
	__atomic_store_n(&p->fired, true, __ATOMIC_RELEASE);
}

/* vm_add_iothread: a loop of its own, run by a thread of its own between
 * vm_loop_thread_start and _park (what vm_run does around the vCPUs); at
 * most VM_MAX_IOTHREADS of them. */
static void test_iothread(void **state)
{
	(void)state;
	if (access("/dev/kvm", R_OK | W_OK) < 0) {
		skip();
		return;
	}
	struct vm *vm = calloc(1, sizeof(*vm));
	struct vm_config cfg = { .mem_size = 32 << 20, .ncpus = 1 };
	assert_int_equal(vm_create(vm, &cfg), 0);
	struct loop *io = vm_add_iothread(vm);
	assert_non_null(io);
	assert_ptr_not_equal(io, &vm->loop);
	for (unsigned i = 1; i < VM_MAX_IOTHREADS; i++)
		assert_non_null(vm_add_iothread(vm));
	errno = 0;
	assert_null(vm_add_iothread(vm));
	assert_int_equal(errno, ENOSPC);
	struct io_probe probe = { .op = { .cb = io_probe_fired } };
	probe.op.opaque = &probe;
	assert_int_equal(loop_timer(io, &probe.op, &probe.ts, 1000), 0);
	assert_int_equal(vm_loop_thread_start(vm), 0);
	for (int i = 0; i < 5000 && !__atomic_load_n(&probe.fired, __ATOMIC_ACQUIRE); i++)
		usleep(1000);
	vm_loop_thread_park(vm);
	assert_true(probe.fired);
	assert_string_equal(probe.thread, "kvmbox-io1");
	vm_destroy(vm);	/* joins the parked threads, frees their loops */
	free(vm);
}

static void test_virtio_slot(void **state)
{
	(void)state;
	const char *b = getenv("BUILD");
	char path[512];
	snprintf(path, sizeof(path), "%s/firmware/tests/virtio.elf", b ? b : "build");
	uint8_t *img;
	size_t len;
	if (access("/dev/kvm", R_OK | W_OK) < 0 || read_file(path, 1 << 20, &img, &len) < 0) {
		skip();
		return;
	}
	struct vm *vm = calloc(1, sizeof(*vm));
	struct vm_config cfg = { .mem_size = 32 << 20, .ncpus = 1 };
	assert_int_equal(vm_create(vm, &cfg), 0);
	struct fake_virtio fv = { 0 };
	struct io_region r = { .read = fv_read, .write = fv_write, .opaque = &fv };
	struct dev_env env;
	assert_int_equal(vm_add_virtio(vm, &r, &env), 0);
	assert_int_equal(r.base, VIRTIO_MMIO_BASE);
	assert_int_equal(r.len, VIRTIO_MMIO_SIZE);
	assert_int_equal(env.irq, VIRTIO_MMIO_IRQ_BASE);
	assert_ptr_equal(env.gm, &vm->gm);
	assert_ptr_equal(env.loop, &vm->loop);
	assert_string_equal(vm->virtio_cmdline, "virtio_mmio.device=4K@0xd0000000:5");
	/* a second slot follows the first */
	struct fake_virtio fv2 = { 0 };
	struct io_region r2 = { .read = fv_read, .write = fv_write, .opaque = &fv2 };
	struct dev_env env2;
	assert_int_equal(vm_add_virtio(vm, &r2, &env2), 0);
	assert_int_equal(r2.base, VIRTIO_MMIO_BASE + VIRTIO_MMIO_SIZE);
	assert_int_equal(env2.irq, VIRTIO_MMIO_IRQ_BASE + 1);
	assert_string_equal(vm->virtio_cmdline, "virtio_mmio.device=4K@0xd0000000:5 "
			    "virtio_mmio.device=4K@0xd0001000:6");

	struct marker m;
	struct i8042 kbc;
	marker_init(&m, NULL, on_status, vm);
	i8042_init(&kbc, on_reset, vm);
	assert_int_equal(vm_add_pio(vm, &m.region), 0);
	assert_int_equal(vm_add_pio(vm, &kbc.cmd_region), 0);
	struct boot_config bc = { .kernel = img, .kernel_len = len, .cmdline = "notify=3", .ncpus = 1 };
	assert_int_equal(boot_load(&vm->gm, &bc, &vm->entry), 0);
	/* raising the interrupt from the device side is accepted by the eventfd */
	uint64_t one = 1;
	assert_int_equal(write(env.irq_fd, &one, 8), 8);

	int reason = vm_run(vm);
	assert_int_equal(reason, VM_STOP_EXIT_STATUS);
	assert_int_equal(vm->exit_status, 0);
	assert_int_equal(fv.reads_magic, 1);
	assert_int_equal(fv.writes_notify, 0);	/* went to the ioeventfd */
	assert_int_equal(fv.other, 0);
	uint64_t count = 0;
	assert_int_equal(read(env.notify_fd, &count, 8), 8);
	assert_int_equal(count, 3);
	assert_int_equal(read(env2.notify_fd, &count, 8), -1);	/* slot 1 untouched */
	vm_destroy(vm);
	i8042_fini(&kbc);
	free(vm);
	free(img);
}

/* BOOT_MODE_LONG64 as boot/ will hand it over for a 64-bit vmlinux or
 * bzImage: paging on with boot/'s identity map, 64-bit CS from boot/'s GDT,
 * RSI = zero page, RSP set.  The guest checks RSI and RSP at CPL 0 and
 * reports status 64 (or triple-faults on ud2). */
static void test_long64_entry(void **state)
{
	(void)state;
	if (access("/dev/kvm", R_OK | W_OK) < 0) {
		skip();
		return;
	}
	static const uint8_t code[] = {	/* see the comment above */
		0x48, 0x81, 0xfe, 0x00, 0x70, 0x00, 0x00,	/* cmp $0x7000, %rsi */
		0x75, 0x19,					/* jne bad */
		0x48, 0x81, 0xfc, 0x00, 0x80, 0x00, 0x00,	/* cmp $0x8000, %rsp */
		0x75, 0x10,					/* jne bad */
		0xb8, 0x40, 0x00, 0x45, 0x4b,			/* mov $0x4b450040, %eax */
		0x66, 0xba, 0x00, 0x06,				/* mov $0x600, %dx */
		0xef,						/* out %eax, (%dx) */
		0xb0, 0xfe, 0xe6, 0x64,				/* outb $0xfe -> 0x64 */
		0xeb, 0xfe,					/* 1: jmp 1b */
		0x0f, 0x0b,					/* bad: ud2 */
	};
	struct vm *vm = calloc(1, sizeof(*vm));
	struct vm_config cfg = { .mem_size = 16 << 20, .ncpus = 2 };
	assert_int_equal(vm_create(vm, &cfg), 0);
	/* what boot/ writes: GDT, PML4 -> PDPT -> PD of 2 MiB pages, code */
	static const uint64_t gdt[3] = { 0, 0x00af9a000000ffffULL, 0x00cf92000000ffffULL };
	assert_int_equal(gmem_write(&vm->gm, 0x500, gdt, sizeof(gdt)), 0);
	uint64_t e = 0x11000 | 3;
	assert_int_equal(gmem_write(&vm->gm, 0x10000, &e, 8), 0);
	e = 0x12000 | 3;
	assert_int_equal(gmem_write(&vm->gm, 0x11000, &e, 8), 0);
	for (uint64_t i = 0; i < 8; i++) {
		e = (i << 21) | 0x83;
		assert_int_equal(gmem_write(&vm->gm, 0x12000 + i * 8, &e, 8), 0);
	}
	assert_int_equal(gmem_write(&vm->gm, 0x200000, code, sizeof(code)), 0);
	vm->entry = (struct boot_entry){ .mode = BOOT_MODE_LONG64, .rip = 0x200000,
		.rsp = 0x8000, .rsi = 0x7000, .cr3 = 0x10000, .gdt_base = 0x500,
		.gdt_limit = sizeof(gdt) - 1, .code_sel = 0x08, .data_sel = 0x10 };
	struct marker m;
	struct i8042 kbc;
	marker_init(&m, NULL, on_status, vm);
	i8042_init(&kbc, on_reset, vm);
	assert_int_equal(vm_add_pio(vm, &m.region), 0);
	assert_int_equal(vm_add_pio(vm, &kbc.cmd_region), 0);
	int reason = vm_run(vm);
	assert_string_equal(vm->stop_msg, "guest exited with status 64");
	assert_int_equal(reason, VM_STOP_EXIT_STATUS);
	assert_int_equal(vm->exit_status, 64);
	vm_destroy(vm);
	i8042_fini(&kbc);
	free(vm);
}

/* cli; hlt on the boot vCPU with an AP never started: the VM is dead and
 * must stop by itself (VM_STOP_HLT) instead of hanging forever. */
static void test_dead_halt(void **state)
{
	(void)state;
	if (access("/dev/kvm", R_OK | W_OK) < 0) {
		skip();
		return;
	}
	static const uint8_t code[] = { 0xfa, 0xf4, 0xeb, 0xfd };	/* cli; 1: hlt; jmp 1b */
	struct vm *vm = calloc(1, sizeof(*vm));
	struct vm_config cfg = { .mem_size = 16 << 20, .ncpus = 2 };
	assert_int_equal(vm_create(vm, &cfg), 0);
	static const uint64_t gdt[3] = { 0, 0x00cf9a000000ffffULL, 0x00cf92000000ffffULL };
	assert_int_equal(gmem_write(&vm->gm, 0x500, gdt, sizeof(gdt)), 0);
	assert_int_equal(gmem_write(&vm->gm, 0x100000, code, sizeof(code)), 0);
	vm->entry = (struct boot_entry){ .mode = BOOT_MODE_PVH32, .rip = 0x100000,
		.gdt_base = 0x500, .gdt_limit = sizeof(gdt) - 1, .code_sel = 0x08, .data_sel = 0x10 };
	uint64_t t0 = now_ns();
	int reason = vm_run(vm);
	assert_int_equal(reason, VM_STOP_HLT);
	assert_string_equal(vm->stop_msg, "guest halted with interrupts off on every vCPU");
	assert_true(now_ns() - t0 < 5000000000ULL);
	vm_destroy(vm);
	free(vm);
}

/* The same dead halt after an exit-status write (what a Linux poweroff
 * without ACPI looks like after kvmbox-init reported): the status wins. */
static void test_halt_after_status(void **state)
{
	(void)state;
	if (access("/dev/kvm", R_OK | W_OK) < 0) {
		skip();
		return;
	}
	static const uint8_t code[] = {
		0xb8, 0x09, 0x00, 0x45, 0x4b,	/* mov $0x4b450009, %eax */
		0x66, 0xba, 0x00, 0x06,		/* mov $0x600, %dx */
		0xef,				/* out %eax, (%dx) */
		0xfa, 0xf4, 0xeb, 0xfd,		/* cli; 1: hlt; jmp 1b */
	};
	struct vm *vm = calloc(1, sizeof(*vm));
	struct vm_config cfg = { .mem_size = 16 << 20, .ncpus = 1 };
	assert_int_equal(vm_create(vm, &cfg), 0);
	static const uint64_t gdt[3] = { 0, 0x00cf9a000000ffffULL, 0x00cf92000000ffffULL };
	assert_int_equal(gmem_write(&vm->gm, 0x500, gdt, sizeof(gdt)), 0);
	assert_int_equal(gmem_write(&vm->gm, 0x100000, code, sizeof(code)), 0);
	vm->entry = (struct boot_entry){ .mode = BOOT_MODE_PVH32, .rip = 0x100000,
		.gdt_base = 0x500, .gdt_limit = sizeof(gdt) - 1, .code_sel = 0x08, .data_sel = 0x10 };
	struct marker m;
	marker_init(&m, NULL, on_status, vm);
	assert_int_equal(vm_add_pio(vm, &m.region), 0);
	int reason = vm_run(vm);
	assert_int_equal(reason, VM_STOP_EXIT_STATUS);
	assert_int_equal(vm->exit_status, 9);
	assert_string_equal(vm->stop_msg, "guest exited with status 9, then halted");
	vm_destroy(vm);
	free(vm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_iothread),
		cmocka_unit_test(test_virtio_slot),
		cmocka_unit_test(test_long64_entry),
		cmocka_unit_test(test_dead_halt),
		cmocka_unit_test(test_halt_after_status),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
