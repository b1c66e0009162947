/* vmm/cli/machine_snapshot.c - `kvmbox run --snapshot DIR` and `--restore
 * DIR`: the machine's part of a snapshot (vmm/snapshot/snapshot.h has the
 * format and the rules).  The VMM saves KVM's state; this file adds what
 * the machine owns (the legacy devices, the guest's exit status, what the
 * snapshot belongs to) and puts the directory on disk, or reads it back and
 * refuses, in one line, one that is damaged or of another build or CPU.
 */
#include "vmm/cli/machine.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "common/log.h"
#include "common/util.h"
#include "guest/abi/cmdline.h"
#include "vmm/cli/cli.h"

int machine_restore_try(struct machine *m, const char *dir, char *err, size_t errsz)
{
	int r = snap_read_state(dir, &m->restore, err, errsz);
	if (r == 0 && (r = snap_check_identity(m->restore.machine, err, errsz)) < 0)
		snap_state_free(&m->restore);
	if (r == 0) {
		r = snap_open_memory(dir, m->restore.machine, err, errsz);
		if (r < 0)
			snap_state_free(&m->restore);
		else
			m->restore_mem_fd = r;
	}
	return r < 0 ? r : 0;
}

bool machine_restore_same_ca(const struct machine *m)
{
	const struct snap_section *sec = snap_find(&m->restore, SNAP_PROXY_CA, 0);
	unsigned char ca_sum[SHA256_DIGEST_LENGTH];
	if (!sec || !m->guest_ca_len)
		return false;
	SHA256(m->guest_ca, m->guest_ca_len, ca_sum);
	return sec->len == sizeof(ca_sum) && !memcmp(sec->data, ca_sum, sizeof(ca_sum));
}

void machine_restore_spent(const struct machine *m)
{
	char state[PATH_MAX];
	if (snprintf(state, sizeof(state), "%s/state", m->o->restore) < (int)sizeof(state) &&
	    unlink(state) < 0 && errno != ENOENT)
		log_warn("%s: cannot remove %s (the guest goes on; do not restore it again): %s", m->o->cmd,
			 state, strerror(errno));
}

int machine_restore_open(struct machine *m, const struct run_opts *o)
{
	char err[400];
	if (machine_restore_try(m, o->restore, err, sizeof(err)) < 0) {
		log_err("%s: cannot restore %s: %s", o->cmd, o->restore, err);
		return EXIT_USAGE;
	}
	return 0;
}

/* "path dev:ino size mtime" of what a guest read at boot, or "path -". */
static int describe_file(char *buf, size_t bufsz, size_t *off, const char *what,
			 const char *path)
{
	struct stat st;
	int n = !path || !*path || stat(path, &st) < 0
		? snprintf(buf + *off, bufsz - *off, "%s %s -\n", what, path ? path : "")
		: snprintf(buf + *off, bufsz - *off, "%s %s %llx:%llx %lld %lld.%09ld\n", what, path,
			   (unsigned long long)st.st_dev, (unsigned long long)st.st_ino,
			   (long long)st.st_size, (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
	if (n < 0 || (size_t)n >= bufsz - *off)
		return -ENAMETOOLONG;
	*off += (size_t)n;
	return 0;
}

int machine_describe(const struct run_opts *o, char *buf, size_t bufsz)
{
	size_t off = 0;
	int r = describe_file(buf, bufsz, &off, "kvmbox-template-1 exe", "/proc/self/exe");
	if (r == 0)
		r = describe_file(buf, bufsz, &off, "kernel", o->kernel);
	if (r == 0)
		r = describe_file(buf, bufsz, &off, "initrd", o->initrd);
	if (r == 0)
		r = describe_file(buf, bufsz, &off, "rootfs", o->fs.rootfs);
	if (r == 0)
		r = describe_file(buf, bufsz, &off, "image", o->fs.image_dir);
	/* A share by where the guest sees it and how, not by its host folder:
	 * a template is saved before the guest looks beneath a share's root,
	 * and such a share restores onto whatever folder the launch shares
	 * (fs9p/snapshot.c), as an agent's per-launch folder must. */
	for (unsigned i = 0; r == 0 && i < o->fs.n; i++) {
		const struct share_spec *sp = &o->fs.share[i];
		int n = snprintf(buf + off, bufsz - off, "share %s 9p=%d ro=%d hide=%d\n", sp->guest,
				 sp->nine_p, sp->read_only, sp->hide);
		if (n < 0 || (size_t)n >= bufsz - off)
			return -ENAMETOOLONG;
		off += (size_t)n;
	}
	if (r < 0)
		return r;
	int n = snprintf(buf + off, bufsz - off, "cmdline %s\nmemory %llu cpus %u hugepages %d\n"
			 "net %d mtu %u\nfs-cache %d\n", o->cmdline ? o->cmdline : "(default)",
			 (unsigned long long)o->mem_mib, o->cpus, o->hugepages, o->net.disabled,
			 o->net.mtu, (int)o->fs.cache);
	return n < 0 || (size_t)n >= bufsz - off ? -ENAMETOOLONG : 0;
}

bool machine_runs_on(const struct machine *m)
{
	return m->vm.host_asked_save;
}

int machine_boot_or_restore(struct machine *m, int argc, char **argv)
{
	if (m->o->restore)
		return machine_restore_match(m);
	if (m->o->snapshot && !m->o->suspend_only && machine_cmdline_add(m, KBX_PARAM_SNAPSHOT "=1") < 0)
		return 1;	/* cannot happen: the parameters fit MACHINE_CMDLINE_EXTRA */
	return machine_load(m, argc, argv);
}

int machine_restore_devices(struct machine *m)
{
	const struct snap_state *st = &m->restore;
	const struct snap_section *u = snap_find(st, SNAP_UART, 0), *k = snap_find(st, SNAP_I8042, 0);
	struct uart_state us;
	struct i8042_state ks;
	memcpy(&us, u->data, sizeof(us));	/* both required, sizes checked by the parser */
	memcpy(&ks, k->data, sizeof(ks));
	const char *bad = uart_load(&m->uart, &us) < 0 ? "UART" :
		i8042_load(&m->kbc, &ks) < 0 ? "i8042" : NULL;
	if (bad) {
		log_err("%s: cannot restore %s: its %s state is not one the device can be in",
			m->o->cmd, m->o->restore, bad);
		return 1;
	}
	m->vm.guest_status = st->machine->guest_status;
	return 0;
}

int machine_restore_match(struct machine *m)
{
	const struct snap_state *st = &m->restore;
	const char *dir = m->o->restore;
	if (st->machine->ndevs != m->ndevs) {
		log_err("%s: cannot restore %s: it has %u virtio device%s and this machine %u "
			"(restore with the network and share flags it was saved with)", m->o->cmd, dir,
			st->machine->ndevs, st->machine->ndevs == 1 ? "" : "s", m->ndevs);
		return EXIT_USAGE;
	}
	for (unsigned i = 0; i < m->ndevs; i++) {
		struct vdev_state vs;
		memcpy(&vs, snap_find(st, SNAP_VIRTIO, i)->data, sizeof(vs));
		if (vs.device_id != m->devs[i].vd->ops->device_id) {
			log_err("%s: cannot restore %s: its virtio device %u is of type %u, this "
				"machine's is %s (restore with the flags it was saved with)", m->o->cmd, dir, i,
				vs.device_id, m->devs[i].vd->ops->name);
			return EXIT_USAGE;
		}
	}
	return 0;
}

int machine_restore_virtio(void *machine, char *err, size_t errsz)
{
	struct machine *m = machine;
	const struct snap_state *st = &m->restore;
	const char *dir = m->o->restore;
	for (unsigned i = 0; i < m->ndevs; i++) {
		struct vdev *vd = m->devs[i].vd;
		const struct snap_section *t = snap_find(st, SNAP_VIRTIO, i);
		const struct snap_section *d = snap_find(st, SNAP_VIRTIO_DEVICE, i);
		struct vdev_state vs;
		memcpy(&vs, t->data, sizeof(vs));	/* required, size checked by the parser */
		if (vdev_load(vd, &vs, d ? d->data : NULL, d ? d->len : 0) < 0) {
			snprintf(err, errsz, "%s: cannot restore %s: its virtio device %u is not a "
				 "state this machine's %s device can be in (a share of another "
				 "folder?)", m->o->cmd, dir, i, vd->ops->name);
			return 1;
		}
	}
	for (unsigned i = 0; i < m->ndevs; i++)
		vdev_resume(m->devs[i].vd);
	return 0;
}

/* Each virtio device: its transport, and its own state when it has one. */
static int put_virtio(struct machine *m, struct snap_writer *w, char *err, size_t errsz)
{
	void *buf = malloc(VDEV_DEVICE_STATE_MAX);
	if (!buf) {
		snprintf(err, errsz, "out of memory");
		return -ENOMEM;
	}
	int r = 0;
	for (unsigned i = 0; i < m->ndevs && r == 0; i++) {
		struct vdev *vd = m->devs[i].vd;
		struct vdev_state vs;
		size_t len;
		r = vdev_save(vd, &vs, buf, &len);
		if (r < 0) {
			snprintf(err, errsz, "its %s device %s", vd->ops->name,
				 r == -EBUSY ? "has requests in flight that cannot be saved" :
				 r == -EOPNOTSUPP ? "cannot be saved yet" :
				 r == -EFBIG ? "holds more state than a snapshot takes" : strerror(-r));
			break;
		}
		snap_put(w, SNAP_VIRTIO, i, &vs, sizeof(vs));
		if (len)
			snap_put(w, SNAP_VIRTIO_DEVICE, i, buf, len);
	}
	free(buf);
	return r;
}

/* The machine section: what the state belongs to, and its memory file. */
static void put_machine(struct machine *m, struct snap_writer *w, const char *memory_name)
{
	struct snap_machine sm = { .mem_size = m->vm.cfg.mem_size, .ncpus = m->vm.nvcpus,
				   .ndevs = m->ndevs, .guest_status = m->vm.guest_status };
	snap_kvmbox_build(sm.kvmbox_build, sizeof(sm.kvmbox_build));
	snap_host_cpu(sm.host_cpu, sizeof(sm.host_cpu));
	/* A restored VM saved again keeps the kernel it was booted with. */
	const char *kernel = m->restore.machine ? m->restore.machine->kernel_sha256 : m->kernel_sha256;
	snprintf(sm.kernel_sha256, sizeof(sm.kernel_sha256), "%s", kernel);
	snprintf(sm.memory_file, sizeof(sm.memory_file), "%s", memory_name);
	snap_put(w, SNAP_MACHINE, 0, &sm, sizeof(sm));
}

int machine_snapshot_save(struct machine *m)
{
	const char *dir = m->o->snapshot;
	uint64_t t0 = now_ns();
	/* A new name each save (the old state names the old file until the
	 * new state replaces it). */
	char memory_name[40];
	snprintf(memory_name, sizeof(memory_name), "memory-%llx", (unsigned long long)t0);
	struct snap_writer w;
	snap_writer_init(&w);
	put_machine(m, &w, memory_name);
	struct uart_state us;
	struct i8042_state ks;
	uart_save(&m->uart, &us);
	i8042_save(&m->kbc, &ks);
	snap_put(&w, SNAP_UART, 0, &us, sizeof(us));
	snap_put(&w, SNAP_I8042, 0, &ks, sizeof(ks));
	if (m->guest_ca_len) {	/* what a restore's proxy must be to serve this guest */
		unsigned char ca_sum[SHA256_DIGEST_LENGTH];
		SHA256(m->guest_ca, m->guest_ca_len, ca_sum);
		snap_put(&w, SNAP_PROXY_CA, 0, ca_sum, sizeof(ca_sum));
	}
	char err[400];
	int r = put_virtio(m, &w, err, sizeof(err));
	if (r == 0)
		r = snap_save_kvm(&m->vm, &w, err, sizeof(err));
	if (r == 0 && (r = snap_finish(&w)) < 0)
		snprintf(err, sizeof(err), "%s", strerror(-r));
	struct snap_ram ram = { .base = m->vm.ram, .size = m->vm.cfg.mem_size,
				.memfd = m->vm.ram_private ? -1 : m->vm.mem_fd,
				.pagemap_fd = m->vm.pagemap_fd };	/* -1 for a restore's RAM */
	if (r == 0)
		r = snap_write_dir(dir, memory_name, &ram, &w, err, sizeof(err));
	size_t state_len = w.len;
	snap_writer_free(&w);
	if (r < 0) {	/* a suspend the host asked for: the VM runs on (machine_runs_on) */
		bool on = machine_runs_on(m);
		log_err("%s: %scannot save the VM to %s: %s%s", m->o->cmd, on ? "not suspended: " : "", dir,
			err, on ? "; the VM runs on" : "");
		return 1;
	}
	fprintf(stderr, "kvmbox: %s: saved the VM to %s (%u vCPU%s, %llu MiB of RAM, %zu KiB of state) "
		"in %.1f ms\n", m->o->cmd, dir, m->vm.nvcpus, m->vm.nvcpus == 1 ? "" : "s",
		(unsigned long long)(m->vm.cfg.mem_size >> 20), (state_len + 1023) / 1024, (double)(now_ns() - t0) / 1e6);
	return 0;
}
