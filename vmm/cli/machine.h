/* vmm/cli/machine.h - the machine every launching command builds.
 *
 * `kvmbox run`, `kvmbox shell` and the agent launchers all boot the same
 * machine: a VM (vmm/) with the legacy devices (COM1 for kernel messages,
 * the i8042 reset line, the boot/exit-status marker port), the virtio
 * devices the command adds, and the guest kernel loaded with a command line
 * that names those devices plus the kvmbox.* parameters the guest init reads.
 * This file owns that sequence once, so each command only says which
 * devices it wants and what it does while the guest runs.
 *
 * Life of a machine:
 *   machine_parse_inputs()  flags, kernel, initrd, image judged: no KVM yet
 *   machine_create()        VM + legacy devices (serial output to serial_fd)
 *   machine_add_virtio()    each virtio device: slot, eventfds, started,
 *                           destroyed by machine_destroy (reverse order)
 *   machine_cmdline_add()   kvmbox.* parameters for the guest init
 *   machine_load()          kernel + initrd + command line into guest RAM
 *   vm_run(&m->vm)          until the guest stops
 *   machine_destroy()       devices first (they cancel loop requests while
 *                           the loop exists), then the VM
 */
#ifndef KVMBOX_VMM_CLI_MACHINE_H
#define KVMBOX_VMM_CLI_MACHINE_H

#include "devices/legacy/legacy.h"
#include "devices/virtio/mmio.h"
#include "guest/abi/console.h"
#include "cage/cage.h"
#include "vmm/cli/run.h"
#include "vmm/snapshot/snapshot.h"
#include "vmm/vmm.h"

#define MACHINE_MAX_DEVS VIRTIO_MMIO_MAX_DEVS
#define MACHINE_CMDLINE_EXTRA 1024
/* shares, root (--rootfs or the image), login folder, launch folder twice,
 * the --snapshot folder */
#define MACHINE_CAGE_PATHS (SHARE_MAX + 1 + 1 + 2 + 1)

struct machine_net;
struct guest_files;

/* A virtio device the machine destroys: its destructor and object. */
struct machine_dev {
	void (*destroy)(void *obj);
	void *obj;
	struct vdev *vd;		/* its transport (snapshots) */
};

struct machine {
	struct vm vm;
	struct uart8250 uart;
	struct i8042 kbc;
	struct marker marker;
	struct profile prof;		/* marks always taken; printed on --profile */
	const struct run_opts *o;	/* not owned */
	bool legacy_ready;		/* uart/kbc initialised: fini them */
	struct machine_dev devs[MACHINE_MAX_DEVS];
	unsigned ndevs;
	char cmdline_extra[MACHINE_CMDLINE_EXTRA];	/* kvmbox.* for the guest init */
	struct machine_net *net;	/* the network card (machine_net.c), or NULL */
	/* --proxy: the proxy's CA (DER) for the guest, which trusts it.  Set
	 * ca_over_ctl before machine_net_add when the command goes over
	 * kvmbox.ctl (kvmbox shell and the agents): the CA is then kept in
	 * guest_ca for the session's CA message, not put on the kernel command
	 * line, so a template restored for another launch trusts this one's. */
	bool ca_over_ctl;
	uint8_t guest_ca[KBX_CA_DER_MAX];
	size_t guest_ca_len;
	struct cage_config cage;	/* vm.cfg.cage points here */
	struct cage_path cage_paths[MACHINE_CAGE_PATHS];
	/* --restore: the snapshot's state (vm.cfg.restore points here) and
	 * memory file (> 0 from machine_restore_open to machine_create, which
	 * hands it to the VM). */
	struct snap_state restore;
	int restore_mem_fd;
	char kernel_sha256[72];		/* with --snapshot: of the booted kernel */
};

/* The command line of run, shell or an agent (argv[0] the command, named
 * in every message) into o, with the default kernel and initrd (gf, freed
 * by the caller), and every input judged that needs no KVM, one error per
 * input in this order: the flags; the kernel found, a readable regular
 * file of at most RUN_MAX_KERNEL bytes, an ELF vmlinux or a bzImage; the
 * initrd likewise; shares and images only with an initrd; the image
 * resolved (o->fs.image_dir).  0 (o->help may be set: nothing judged
 * beyond the flags), or EXIT_USAGE after one line "kvmbox: CMD: why". */
int machine_parse_inputs(struct guest_files *gf, int argc, char **argv, struct run_opts *o);

/* VM sized by @o, legacy devices with COM1 writing to serial_fd.  0, or 1
 * after one line on stderr (machine_destroy is still to be called).  With
 * o->restore, machine_restore_open must have succeeded: the VM is the
 * snapshot's (its RAM, vCPUs and devices' state) and needs no
 * machine_load. */
int machine_create(struct machine *m, const struct run_opts *o, int serial_fd);

/* Snapshots (machine_snapshot.c, format in vmm/snapshot/snapshot.h).
 * machine_restore_open: read and check o->restore's state (this build,
 * this CPU), open its memory; 0, or EXIT_USAGE after one line.
 * machine_snapshot_save: after vm_run stopped with VM_STOP_SNAPSHOT, save
 * the VM to o->snapshot; 0, or 1 after one line.  A save the host asked
 * for (VM_SIG_SUSPEND) that fails leaves the snapshot folder as it was,
 * and the caller runs the VM on (machine_runs_on). */
int machine_restore_open(struct machine *m, const struct run_opts *o);
/* Whether the guest being restored was given the very proxy CA this launch
 * gives (the snapshot's SNAP_PROXY_CA against guest_ca): only then may a
 * guest whose command runs, trusting that CA, be served by this proxy. */
bool machine_restore_same_ca(const struct machine *m);
/* The restored guest goes on: its snapshot is spent (its state file
 * removed; the memory file stays mapped), so it is never restored twice,
 * and the launch that suspended it learns that its VM ran. */
void machine_restore_spent(const struct machine *m);
/* The last step before vm_run.  A restore: the devices built match the
 * snapshot's (vm_run loads their state; no kernel is loaded).  A boot:
 * with --snapshot, kvmbox.snapshot=1 for kvmbox-init, then machine_load
 * with the guest's command (argc 0 for kvmbox shell, whose command goes
 * over kvmbox.ctl).  0, or an exit status after one line. */
int machine_boot_or_restore(struct machine *m, int argc, char **argv);
/* machine_restore_open's work on dir, saying nothing: 0, or -errno with
 * why in err (a template that cannot be used is the caller's to judge). */
int machine_restore_try(struct machine *m, const char *dir, char *err, size_t errsz);
/* Everything of o the guest sees while it boots (the identities of the
 * kvmbox binary, kernel, initrd and image; command line, memory, vCPUs,
 * devices, each share's guest path and flags, not its host folder), as
 * text: what a template is made for
 * (launch/template/template.h).  0 or -ENAMETOOLONG. */
int machine_describe(const struct run_opts *o, char *buf, size_t bufsz);
int machine_snapshot_save(struct machine *m);
/* After a save that failed: whether the VM runs on (vm_run_on) rather
 * than ending: a suspend the host asked for, which is the user's live
 * sandbox; a save the guest asked for (a template) ends the run. */
bool machine_runs_on(const struct machine *m);
/* machine_create's last step on a restore: the legacy devices' state and
 * the guest's exit status from the snapshot.  0, or 1 after one line. */
int machine_restore_devices(struct machine *m);
/* On a restore, vm_run's restore_devices (the command has added its
 * virtio devices by then: the same flags build the same devices in the
 * same slots): load each one's state from the snapshot and let it go on.
 * 0, or 1 with one line in err (a state the device cannot be in: a share
 * of another folder...). */
int machine_restore_virtio(void *machine, char *err, size_t errsz);
/* The same check before the VM runs: as many virtio devices as the
 * snapshot has, each of the same type.  0, or EXIT_USAGE after one line. */
int machine_restore_match(struct machine *m);

/* Put @vd on the next virtio-mmio slot and start it on the loop its env
 * named at vdev_init (m->vm.loop, or an I/O thread's from
 * vm_add_iothread); @destroy(@obj) runs in machine_destroy, also when this
 * fails.  0 or -errno. */
int machine_add_virtio(struct machine *m, struct vdev *vd, void (*destroy)(void *obj),
		       void *obj);

/* Append " " and the formatted text to the guest command line.  0, or
 * -E2BIG when MACHINE_CMDLINE_EXTRA is exceeded. */
int machine_cmdline_add(struct machine *m, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Read the kernel and initrd named in the options, build the command line
 * (base, virtio devices, cmdline_extra, then kvmbox.argv from argc/argv when
 * argc > 0) and load them.  0, or EXIT_USAGE after one line on stderr. */
int machine_load(struct machine *m, int argc, char **argv);

/* Print the --profile table (or JSON) on stderr; @resident is the guest
 * RAM touched, taken before the VM was destroyed. */
void machine_print_profile(struct machine *m, uint64_t resident);

void machine_destroy(struct machine *m);

#endif
