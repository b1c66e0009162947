/* tests/unit/test_vmm_kvm.c - the virtio plumbing on a real /dev/kvm: a
 * virtio-mmio slot from vm_add_virtio() gets its window on the MMIO bus, its
 * QueueNotify register wired to notify_fd through KVM_IOEVENTFD (guest
 * writes never reach the bus), its irq_fd accepted by KVM_IRQFD, and its
 * virtio_mmio.device= announcement.  The guest is firmware/tests/virtio.elf.
 * Skipped when /dev/kvm or the tiny guests are missing. */
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_virtio_slot),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
