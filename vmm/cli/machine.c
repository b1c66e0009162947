/* vmm/cli/machine.c - build, load and tear down the machine that `kvmbox
 * run`, `kvmbox shell` and the launchers share (see machine.h).
 */
#include "vmm/cli/machine.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "boot/boot.h"
#include "common/log.h"
#include "common/sha256.h"
#include "common/util.h"
#include "guest/image/image.h"
#include "vmm/cli/cli.h"
#include "vmm/cli/guest_files.h"
#include "common/term.h"

static void uart_irq(void *opaque, int level)
{
	vm_set_irq(opaque, UART_COM1_IRQ, level);
}

static void on_boot_marker(void *opaque) { vm_guest_booted(opaque); }
static void on_exit_status(void *opaque, int status) { vm_guest_exit_status(opaque, status); }
static void on_reset(void *opaque) { vm_guest_reset(opaque); }
static void on_snapshot_marker(void *opaque) { vm_guest_snapshot(opaque); }

static int add_legacy_devices(struct machine *m, int serial_fd)
{
	uart_init(&m->uart, UART_COM1_BASE, serial_fd, uart_irq, &m->vm);
	i8042_init(&m->kbc, on_reset, &m->vm);
	marker_init(&m->marker, on_boot_marker, on_exit_status, &m->vm);
	m->marker.on_snapshot = on_snapshot_marker;
	m->legacy_ready = true;
	int r;
	if ((r = vm_add_pio(&m->vm, &m->uart.region)) < 0 ||
	    (r = vm_add_pio(&m->vm, &m->kbc.data_region)) < 0 ||
	    (r = vm_add_pio(&m->vm, &m->kbc.cmd_region)) < 0 ||
	    (r = vm_add_pio(&m->vm, &m->marker.region)) < 0)
		return r;
	return 0;
}

/* A kernel or initrd file: regular, readable, at most max bytes; with
 * probe, its first bytes a bootable kernel.  0, or a reason in why. */
static int check_guest_file(const char *path, uint64_t max, bool probe, char *why, size_t whysz)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		snprintf(why, whysz, "%s", strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	int r = 0;
	if (!S_ISREG(st.st_mode)) {
		snprintf(why, whysz, "not a regular file");
		r = -1;
	} else if ((uint64_t)st.st_size > max) {
		snprintf(why, whysz, "larger than %llu MiB", (unsigned long long)(max >> 20));
		r = -1;
	} else if (probe) {
		uint8_t head[BOOT_PROBE_LEN];
		ssize_t n = pread(fd, head, sizeof(head), 0);
		if (n < 0 || boot_probe(head, n < 0 ? 0 : (size_t)n) < 0) {
			snprintf(why, whysz, "%s", n < 0 ? strerror(errno) : boot_error());
			r = -1;
		}
	}
	close(fd);
	return r;
}

int machine_parse_inputs(struct guest_files *gf, int argc, char **argv, struct run_opts *o)
{
	const char *cmd = argv[0];
	char err[PATH_MAX * 2 + 200];
	run_opts_init(o);
	if (guest_files_resolve(gf, argc, argv, err, sizeof(err)) < 0 ||
	    run_parse_args(gf->argc, gf->argv, o, err, sizeof(err)) < 0) {
		/* no kernel given: say where none was found, not that one is required */
		log_err("%s: %s", cmd, !o->kernel && gf->missing[0] && !strncmp(err, "--kernel PATH", 13) ?
			gf->missing : err);
		return EXIT_USAGE;
	}
	if (o->help)
		return 0;
	if (o->restore)	/* boots nothing: no kernel to check, its init is in RAM */
		return o->fs.image && image_resolve(o->fs.image, o->fs.image_dir,
						    sizeof(o->fs.image_dir)) < 0 ? EXIT_USAGE : 0;
	if (gf->missing[0]) {
		log_err("%s: %s", cmd, gf->missing);
		return EXIT_USAGE;
	}
	char why[256];
	if (check_guest_file(o->kernel, RUN_MAX_KERNEL, true, why, sizeof(why)) < 0) {
		log_err("%s: kernel %s: %s", cmd, o->kernel, why);
		return EXIT_USAGE;
	}
	if (o->initrd && check_guest_file(o->initrd, RUN_MAX_INITRD, false, why, sizeof(why)) < 0) {
		log_err("%s: initrd %s: %s", cmd, o->initrd, why);
		return EXIT_USAGE;
	}
	if ((o->fs.n || o->fs.rootfs[0] || o->fs.image) && !o->initrd) {
		log_err("%s: --share, --rootfs and --image need --initrd (kvmbox-init mounts them)", cmd);
		return EXIT_USAGE;
	}
	if (o->fs.image && image_resolve(o->fs.image, o->fs.image_dir, sizeof(o->fs.image_dir)) < 0)
		return EXIT_USAGE;	/* image_resolve said why */
	return 0;
}

#define MACHINE_SAVE_SLACK (16ull << 20)	/* the state file, and some to spare */

/* What the caged VM may still open (cage/cage.h) beside the system's
 * read-only folders: its shares as served and its root.  (The launch
 * folder and the login file's folder are the broker's to write.) */
static void cage_paths(struct machine *m, const struct run_opts *o)
{
	size_t n = 0;
	for (unsigned i = 0; i < o->fs.n; i++)
		m->cage_paths[n++] = (struct cage_path){ o->fs.share[i].host,
			o->fs.share[i].read_only ? CAGE_READ : CAGE_WRITE };
	const char *root = o->fs.image_dir[0] ? o->fs.image_dir : o->fs.rootfs;
	if (root[0])
		m->cage_paths[n++] = (struct cage_path){ root, CAGE_READ };
	if (o->snapshot)	/* the one place a save writes (vmm/snapshot/snapshot.h) */
		m->cage_paths[n++] = (struct cage_path){ o->snapshot, CAGE_WRITE };
	m->cage = (struct cage_config){ .on_violation = term_restore, .paths = m->cage_paths,
					.npaths = n };
}

/* vm_config.may_suspend: room in the snapshot's folder for the guest's
 * memory (the pages it holds, or a restored guest's memory file if that is
 * more) and its state, before the VM stops to be saved. */
static bool machine_may_save(void *opaque, char *why, size_t whysz)
{
	struct machine *m = opaque;
	struct statvfs sv;
	struct stat st;
	uint64_t need = vm_ram_resident(&m->vm);
	if (m->vm.ram_private && fstat(m->vm.mem_fd, &st) == 0 && (uint64_t)st.st_blocks * 512 > need)
		need = (uint64_t)st.st_blocks * 512;
	need += MACHINE_SAVE_SLACK;
	if (statvfs(m->o->snapshot, &sv) < 0) {
		snprintf(why, whysz, "%s: %s", m->o->snapshot, strerror(errno));
		return false;
	}
	uint64_t room = (uint64_t)sv.f_bavail * sv.f_frsize;
	if (sv.f_blocks && room < need) {	/* no size at all (ramfs): it cannot tell */
		snprintf(why, whysz, "%s has %llu MiB free and the guest's memory needs %llu MiB",
			 m->o->snapshot, (unsigned long long)(room >> 20), (unsigned long long)(need >> 20));
		return false;
	}
	return true;
}

int machine_create(struct machine *m, const struct run_opts *o, int serial_fd)
{
	m->o = o;
	char why[300];
	if (o->snapshot && snap_prepare_dir(o->snapshot, why, sizeof(why)) < 0) {
		log_err("%s: cannot save snapshots to %s: %s", o->cmd, o->snapshot, why);
		return EXIT_USAGE;
	}
	cage_paths(m, o);
	struct vm_config cfg = { .mem_size = o->mem_mib << 20, .ncpus = o->cpus,
				 .hugepages = o->hugepages, .cage = &m->cage,
				 .snapshot_on_marker = o->snapshot && !o->suspend_only,
				 .snapshot_on_signal = o->snapshot != NULL,
				 .may_suspend = machine_may_save, .may_suspend_opaque = m };
	if (o->restore) {
		cfg.mem_size = m->restore.machine->mem_size;
		cfg.ncpus = m->restore.machine->ncpus;
		cfg.restore = &m->restore;
		cfg.restore_mem_fd = m->restore_mem_fd;
		m->restore_mem_fd = -1;		/* the VM's now */
		cfg.restore_devices = machine_restore_virtio;
		cfg.restore_opaque = m;
	}
	if (vm_create(&m->vm, &cfg) < 0)
		return 1;
	m->vm.profile = o->profile ? &m->prof : NULL;
	profile_mark(&m->prof, PHASE_KVM_READY);
	if (add_legacy_devices(m, serial_fd) < 0) {
		log_err("cannot register the legacy devices");
		return 1;
	}
	return o->restore ? machine_restore_devices(m) : 0;
}

int machine_add_virtio(struct machine *m, struct vdev *vd, void (*destroy)(void *obj),
		       void *obj)
{
	if (m->ndevs == MACHINE_MAX_DEVS) {
		destroy(obj);
		return -ENOSPC;
	}
	m->devs[m->ndevs++] = (struct machine_dev){ .destroy = destroy, .obj = obj, .vd = vd };
	struct loop *loop = vd->env.loop;	/* vm.loop or an I/O thread's */
	int r = vm_add_virtio(&m->vm, &vd->region, &vd->env);
	if (r < 0)
		return r;
	vd->env.loop = loop;
	return vdev_start(vd);
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

/* A guest file (kernel, initramfs) mapped read-only rather than read: the
 * loader copies only what goes into guest RAM (11 MiB of loadable segments
 * of an 18 MiB vmlinux) straight from the page cache, where reading it
 * first cost a copy of the whole file and a fault per page of the buffer.
 * 0 (*out NULL for an empty file), or -errno (-EINVAL: not a regular
 * file, -EFBIG: over max). */
static int map_guest_file(const char *path, size_t max, const uint8_t **out, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	int r = fstat(fd, &st) < 0 ? -errno : !S_ISREG(st.st_mode) ? -EINVAL :
		(uint64_t)st.st_size > max ? -EFBIG : 0;
	void *p = NULL;
	if (r == 0 && st.st_size &&
	    (p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0)) ==
		    MAP_FAILED)
		r = -errno;
	close(fd);
	if (r < 0)
		return r;
	*out = p;
	*len = (size_t)st.st_size;
	return 0;
}

static void unmap_guest_file(const uint8_t *p, size_t len)
{
	if (p)
		munmap((void *)p, len);
}

/* The one jump target of a SIGBUS while the mapped files are read: a file
 * cut short under the loader faults instead of reading.  Global because
 * a signal handler reaches nothing else; set only around boot_load, while
 * the process has no other thread. */
static sigjmp_buf *load_fault_jmp;

static void on_load_fault(int sig)
{
	(void)sig;
	siglongjmp(*load_fault_jmp, 1);
}

/* boot_load (and the kernel's SHA-256 for a snapshot) over the mapped
 * files: its 0 or -errno, or 1 when a file faulted (SIGBUS). */
static int load_guarded(struct machine *m, const struct boot_config *bc)
{
	sigjmp_buf jb;
	struct sigaction sa = { .sa_handler = on_load_fault }, old;
	sigemptyset(&sa.sa_mask);
	load_fault_jmp = &jb;
	sigaction(SIGBUS, &sa, &old);
	volatile int r = 1;
	if (!sigsetjmp(jb, 1)) {
		if (m->o->snapshot)
			sha256_hex(bc->kernel, bc->kernel_len, m->kernel_sha256);	/* "" if it fails */
		r = boot_load(&m->vm.gm, bc, &m->vm.entry);
	}
	sigaction(SIGBUS, &old, NULL);
	load_fault_jmp = NULL;
	return r;
}

int machine_load(struct machine *m, int argc, char **argv)
{
	const struct run_opts *o = m->o;
	const uint8_t *kernel = NULL, *initrd = NULL;
	size_t klen = 0, ilen = 0;
	int r = map_guest_file(o->kernel, RUN_MAX_KERNEL, &kernel, &klen);
	if (r < 0) {
		log_err("cannot read kernel %s: %s", o->kernel, read_error(r, "larger than 256 MiB"));
		return EXIT_USAGE;
	}
	if (o->initrd && (r = map_guest_file(o->initrd, RUN_MAX_INITRD, &initrd, &ilen)) < 0) {
		log_err("cannot read initrd %s: %s", o->initrd, read_error(r, "larger than 1 GiB"));
		unmap_guest_file(kernel, klen);
		return EXIT_USAGE;
	}
	char extra[sizeof(m->vm.virtio_cmdline) + sizeof(m->cmdline_extra)];
	snprintf(extra, sizeof(extra), "%s%s", m->vm.virtio_cmdline, m->cmdline_extra);
	char *cmdline = cmdline_build(o->cmdline, extra, argc, argv, RUN_MAX_CMDLINE);
	if (!cmdline) {
		log_err("kernel command line: %s", errno == E2BIG ?
			"too long (Linux on x86 takes 2047 bytes; with kvmbox run the command and its arguments are part of it)" :
			strerror(errno));
		unmap_guest_file(kernel, klen);
		unmap_guest_file(initrd, ilen);
		return EXIT_USAGE;
	}
	struct boot_config bc = { .kernel = kernel, .kernel_len = klen, .initrd = initrd,
				  .initrd_len = ilen, .cmdline = cmdline, .ncpus = o->cpus };
	r = load_guarded(m, &bc);
	if (r > 0)
		log_err("cannot load kernel %s: it or the initrd changed while being read", o->kernel);
	else if (r < 0)
		log_err("cannot load kernel %s: %s", o->kernel, boot_error());
	free(cmdline);
	unmap_guest_file(kernel, klen);
	unmap_guest_file(initrd, ilen);
	if (r != 0)
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
		marker_fini(&m->marker);
		m->legacy_ready = false;
	}
	snap_state_free(&m->restore);
	if (m->restore_mem_fd > 0)
		close(m->restore_mem_fd);
	m->restore_mem_fd = -1;
}
