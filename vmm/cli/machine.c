/* vmm/cli/machine.c - build, load and tear down the machine that `kvmbox
 * run`, `kvmbox shell` and the launchers share (see machine.h).
 */
#include "vmm/cli/machine.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "boot/boot.h"
#include "common/log.h"
#include "common/util.h"
#include "vmm/cli/cli.h"

static void uart_irq(void *opaque, int level)
{
	vm_set_irq(opaque, UART_COM1_IRQ, level);
}

static void on_boot_marker(void *opaque) { vm_guest_booted(opaque); }
static void on_exit_status(void *opaque, int status) { vm_guest_exit_status(opaque, status); }
static void on_reset(void *opaque) { vm_guest_reset(opaque); }

static int add_legacy_devices(struct machine *m, int serial_fd)
{
	uart_init(&m->uart, UART_COM1_BASE, serial_fd, uart_irq, &m->vm);
	i8042_init(&m->kbc, on_reset, &m->vm);
	marker_init(&m->marker, on_boot_marker, on_exit_status, &m->vm);
	m->legacy_ready = true;
	int r;
	if ((r = vm_add_pio(&m->vm, &m->uart.region)) < 0 ||
	    (r = vm_add_pio(&m->vm, &m->kbc.data_region)) < 0 ||
	    (r = vm_add_pio(&m->vm, &m->kbc.cmd_region)) < 0 ||
	    (r = vm_add_pio(&m->vm, &m->marker.region)) < 0)
		return r;
	return 0;
}

int machine_create(struct machine *m, const struct run_opts *o, int serial_fd)
{
	m->o = o;
	struct vm_config cfg = { .mem_size = o->mem_mib << 20, .ncpus = o->cpus,
				 .hugepages = o->hugepages };
	if (vm_create(&m->vm, &cfg) < 0)
		return 1;
	m->vm.profile = o->profile ? &m->prof : NULL;
	profile_mark(&m->prof, PHASE_KVM_READY);
	if (add_legacy_devices(m, serial_fd) < 0) {
		log_err("cannot register the legacy devices");
		return 1;
	}
	return 0;
}

int machine_add_virtio(struct machine *m, struct vdev *vd, void (*destroy)(void *obj),
		       void *obj)
{
	if (m->ndevs == MACHINE_MAX_DEVS) {
		destroy(obj);
		return -ENOSPC;
	}
	m->devs[m->ndevs++] = (struct machine_dev){ .destroy = destroy, .obj = obj };
	int r = vm_add_virtio(&m->vm, &vd->region, &vd->env);
	return r < 0 ? r : vdev_start(vd);
}

int machine_cmdline_add(struct machine *m, const char *fmt, ...)
{
	size_t used = strlen(m->cmdline_extra);
	if (used + 1 >= sizeof(m->cmdline_extra))
		return -E2BIG;
	m->cmdline_extra[used++] = ' ';
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(m->cmdline_extra + used, sizeof(m->cmdline_extra) - used, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(m->cmdline_extra) - used) {
		m->cmdline_extra[used - 1] = '\0';
		return -E2BIG;
	}
	return 0;
}

static const char *read_error(int r, const char *big)
{
	return r == -EFBIG ? big : r == -EINVAL ? "not a regular file" : strerror(-r);
}

int machine_load(struct machine *m, int argc, char **argv)
{
	const struct run_opts *o = m->o;
	uint8_t *kernel = NULL, *initrd = NULL;
	size_t klen = 0, ilen = 0;
	int r = read_file(o->kernel, RUN_MAX_KERNEL, &kernel, &klen);
	if (r < 0) {
		log_err("cannot read kernel %s: %s", o->kernel, read_error(r, "larger than 256 MiB"));
		return EXIT_USAGE;
	}
	if (o->initrd && (r = read_file(o->initrd, RUN_MAX_INITRD, &initrd, &ilen)) < 0) {
		log_err("cannot read initrd %s: %s", o->initrd, read_error(r, "larger than 1 GiB"));
		free(kernel);
		return EXIT_USAGE;
	}
	char extra[sizeof(m->vm.virtio_cmdline) + sizeof(m->cmdline_extra)];
	snprintf(extra, sizeof(extra), "%s%s", m->vm.virtio_cmdline, m->cmdline_extra);
	char *cmdline = cmdline_build(o->cmdline, extra, argc, argv, RUN_MAX_CMDLINE);
	if (!cmdline) {
		log_err("kernel command line: %s", errno == E2BIG ?
			"too long (Linux on x86 takes 2047 bytes; with kvmbox run the command and its arguments are part of it)" :
			strerror(errno));
		free(kernel);
		free(initrd);
		return EXIT_USAGE;
	}
	struct boot_config bc = { .kernel = kernel, .kernel_len = klen, .initrd = initrd,
				  .initrd_len = ilen, .cmdline = cmdline, .ncpus = o->cpus };
	r = boot_load(&m->vm.gm, &bc, &m->vm.entry);
	if (r < 0)
		log_err("cannot load kernel %s: %s", o->kernel, boot_error());
	free(cmdline);
	free(kernel);
	free(initrd);
	if (r < 0)
		return EXIT_USAGE;
	profile_mark(&m->prof, PHASE_KERNEL_LOADED);
	return 0;
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

void machine_print_profile(struct machine *m, uint64_t resident)
{
	profile_print(&m->prof, m->o->profile_json, STDERR_FILENO, resident, peak_rss());
}

void machine_destroy(struct machine *m)
{
	while (m->ndevs) {
		struct machine_dev *d = &m->devs[--m->ndevs];
		d->destroy(d->obj);
	}
	vm_destroy(&m->vm);
	if (m->legacy_ready) {
		uart_fini(&m->uart);
		i8042_fini(&m->kbc);
		m->legacy_ready = false;
	}
}
