/* vmm/snapshot/snapshot.h - a VM saved to a directory and started again
 * from it, as Firecracker's snapshots are: guest memory as a file, every
 * other piece of state in one checksummed file of typed sections.
 *
 * A snapshot directory holds two files:
 *   memory-ID  guest RAM, byte for byte, as large as the guest's RAM; sparse
 *              (pages never written, or holding only zeroes, are holes).  A
 *              restore maps it MAP_PRIVATE: nothing is read up front, pages
 *              come in as the guest touches them, its writes stay private,
 *              and every VM restored from one file shares what it only reads.
 *   state      the format below; it names its memory file.
 * A save writes a new memory file, then the state under a temporary name,
 * and renames that to "state": the one step that makes the new snapshot the
 * snapshot, so a save that fails or is killed halfway leaves the old one
 * whole.  Then the old memory file goes.  The folder is made (or checked to
 * hold only a snapshot's files) before the VM starts, because the caged VMM
 * (cage/cage.h) may write beneath it and nowhere else.
 *
 * The state file, little-endian (x86 only):
 *   "KVMBOXSN" (8 bytes), u32 format version (SNAP_FORMAT_VERSION), u32
 *   number of sections;
 *   per section: u32 tag (enum snap_tag), u32 index (the vCPU, or the
 *   irqchip's chip id; 0 otherwise), u64 length, the bytes, zero bytes to
 *   the next multiple of 8 (so every section is 8-byte aligned in memory);
 *   the SHA-256 of everything before it (32 bytes).
 * A reader refuses, with one line saying what: a short or long file, a bad
 * checksum, another format version, an unknown tag, a section of the wrong
 * size for its tag, an index out of range, a section twice, a missing one.
 * The SNAP_MACHINE section says what the state belongs to: the kvmbox build
 * that wrote it (its ELF build id; device state is this build's layout),
 * the host CPU (vCPU state is that CPU's: XSAVE layout, MSRs, CPUID), the
 * guest kernel (the SHA-256 of the image that was booted; a template of
 * another kernel is stale), RAM size and vCPU count.  A restore refuses a
 * snapshot of another build or another CPU.
 *
 * Taking one: the guest asks with KBX_MARKER_SNAPSHOT (guest/abi/marker.h)
 * when its run has --snapshot DIR.  Every vCPU leaves KVM_RUN and enters it
 * once more with immediate_exit set, which completes an I/O exit in flight
 * (KVM keeps that part of an instruction where GET_REGS cannot see it);
 * then the VM's state (irqchip, PIT, kvmclock), each vCPU's and the legacy
 * devices' are saved, then each virtio device's: the transport (features,
 * status, queue geometry and indexes) and what the device keeps of its own
 * (devices/virtio/mmio.h, ops->save).  A restore builds the same devices
 * from the same flags, in the same slots, and loads each one's state; a
 * device of another type or queue count in a slot is refused.
 */
#ifndef KVMBOX_VMM_SNAPSHOT_H
#define KVMBOX_VMM_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SNAP_FORMAT_VERSION 3	/* 2: virtio devices; 3: the proxy CA */
#define SNAP_MAGIC "KVMBOXSN"
/* Beside a suspended guest's state: the CA its proxy had, key and all
 * (proxy_save_ca, mode 0600), written by the broker before the VM is
 * saved; a restore with --proxy from that folder serves with it, so the
 * guest's processes, which trust it, go on (SNAP_PROXY_CA checks). */
#define SNAP_PROXY_CA_FILE "proxy-ca.pem"
#define SNAP_MAX_STATE (64u << 20)	/* a state file larger than this is refused */
#define SNAP_MAX_SECTIONS 4096
#define SNAP_MAX_VCPUS 64
#define SNAP_MAX_MSRS 512
#define SNAP_MAX_CPUID 256
#define SNAP_MAX_XSAVE (64u << 10)
#define SNAP_MAX_DEVS 16		/* VIRTIO_MMIO_MAX_DEVS */

enum snap_tag {
	SNAP_MACHINE = 1,	/* struct snap_machine */
	SNAP_VM_CLOCK,		/* struct kvm_clock_data */
	SNAP_VM_PIT,		/* struct kvm_pit_state2 */
	SNAP_VM_IRQCHIP,	/* struct kvm_irqchip; index = chip id 0..2 */
	SNAP_UART,		/* struct uart_state (devices/legacy/legacy.h) */
	SNAP_I8042,		/* struct i8042_state */
	SNAP_VCPU_REGS,		/* struct kvm_regs; index = vCPU */
	SNAP_VCPU_SREGS,	/* struct kvm_sregs */
	SNAP_VCPU_XSAVE,	/* KVM's XSAVE area: 4096 bytes or KVM_CAP_XSAVE2's size */
	SNAP_VCPU_XCRS,		/* struct kvm_xcrs */
	SNAP_VCPU_MSRS,		/* struct kvm_msr_entry[] (1..SNAP_MAX_MSRS) */
	SNAP_VCPU_LAPIC,	/* struct kvm_lapic_state */
	SNAP_VCPU_EVENTS,	/* struct kvm_vcpu_events */
	SNAP_VCPU_MP_STATE,	/* struct kvm_mp_state */
	SNAP_VCPU_DEBUGREGS,	/* struct kvm_debugregs */
	SNAP_VCPU_CPUID,	/* struct kvm_cpuid_entry2[] (1..SNAP_MAX_CPUID) */
	SNAP_VCPU_TSC_KHZ,	/* u32 */
	SNAP_VIRTIO,		/* struct vdev_state; index = the device's slot */
	SNAP_VIRTIO_DEVICE,	/* the device's own state (its ops->save), 1 byte to
				 * VDEV_DEVICE_STATE_MAX; index = slot */
	SNAP_PROXY_CA,		/* SHA-256 of the proxy CA (DER) the guest was given, 32
				 * bytes; only when it was given one */
	SNAP_TAG_END
};

/* What the state belongs to.  Strings are NUL-terminated within their
 * arrays (a reader refuses them otherwise). */
struct snap_machine {
	uint64_t mem_size;		/* bytes; the memory file's size */
	uint32_t ncpus;			/* 1..SNAP_MAX_VCPUS */
	uint32_t ndevs;			/* virtio devices, 0..SNAP_MAX_DEVS */
	int32_t guest_status;		/* exit status the guest had written, or -1 */
	char kvmbox_build[48];		/* hex ELF build id of the kvmbox that wrote it */
	char host_cpu[80];		/* "vendor family/model/stepping brand" */
	char kernel_sha256[72];		/* hex, or "" when unknown */
	char memory_file[40];		/* "memory-HEX" in the same folder */
};

/* One section of a state file being read: points into the reader's buffer. */
struct snap_section {
	uint32_t tag, index;
	const uint8_t *data;
	size_t len;
};

/* A parsed state file. */
struct snap_state {
	uint8_t *buf;			/* the whole file (owned) */
	size_t len;
	struct snap_section *sec;	/* in file order (owned) */
	unsigned nsec;
	const struct snap_machine *machine;	/* the SNAP_MACHINE section */
};

/* ---- the format (format.c; pure, unit-tested and fuzzed) ---- */

/* A state file being built in memory. */
struct snap_writer {
	uint8_t *buf;
	size_t len, cap;
	uint32_t nsec;
	int err;			/* first -errno; later puts do nothing */
};

void snap_writer_init(struct snap_writer *w);
void snap_put(struct snap_writer *w, uint32_t tag, uint32_t index, const void *data, size_t len);
/* Append the checksum: 0 and the file's bytes in w->buf / w->len, or the
 * first error.  The writer still owns the buffer. */
int snap_finish(struct snap_writer *w);
void snap_writer_free(struct snap_writer *w);

/* Parse and check @len bytes (taken over: freed by snap_state_free, also on
 * failure).  0, or -EINVAL with one line in err. */
int snap_parse(struct snap_state *st, uint8_t *buf, size_t len, char *err, size_t errsz);
void snap_state_free(struct snap_state *st);
/* The section (tag, index), or NULL. */
const struct snap_section *snap_find(const struct snap_state *st, uint32_t tag, uint32_t index);
/* The name of a tag, for messages ("vCPU registers"). */
const char *snap_tag_name(uint32_t tag);

/* ---- files (file.c) ---- */

/* Read DIR/state and check it: 0, or -errno with one line in err. */
int snap_read_state(const char *dir, struct snap_state *st, char *err, size_t errsz);
/* Open the memory file @m names in DIR for a restore: an fd, or -errno
 * with one line in err (missing, another size than m->mem_size, a link). */
int snap_open_memory(const char *dir, const struct snap_machine *m, char *err, size_t errsz);
/* Make DIR for a snapshot, or check that an existing one holds only a
 * snapshot's files.  0, or -errno with one line in err. */
int snap_prepare_dir(const char *dir, char *err, size_t errsz);
/* Guest RAM as snap_write_dir reads it: the mapping, and where the pages
 * that may hold data are (-1 in both fds: every page is looked at). */
struct snap_ram {
	const uint8_t *base;
	uint64_t size;
	/* >= 0: base maps this memfd: only its data extents (SEEK_DATA) are
	 * read, so pages the guest never touched are not. */
	int memfd;
	/* >= 0: base is anonymous memory and this is /proc/self/pagemap: a
	 * page neither present nor swapped out was never written, and is not
	 * read.  Never for a file's private mapping (a restored guest's RAM),
	 * whose pages not yet mapped still hold the file's data. */
	int pagemap_fd;
};

/* Write a snapshot into a prepared DIR (see the top): the guest's RAM
 * (zero pages left as holes) as DIR/memory_name, then the finished
 * writer's state, whose machine section names memory_name.  0, or -errno
 * with one line in err. */
int snap_write_dir(const char *dir, const char *memory_name, const struct snap_ram *ram,
		   const struct snap_writer *w, char *err, size_t errsz);
/* "memory-HEX" (1 to 32 lowercase hex digits). */
bool snap_memory_name_valid(const char *name);
/* A name a snapshot folder may hold: state, memory-HEX, state.tmp-HEX,
 * SNAP_PROXY_CA_FILE. */
bool snap_dir_entry_ours(const char *name);

/* ---- KVM and device state (kvm_state.c) ---- */

struct vm;

/* Save the VM's state (kvmclock, PIT, irqchip) and each vCPU's into @w;
 * every vCPU thread has stopped after settling its last exit.  0, or
 * -errno with one line in err. */
int snap_save_kvm(struct vm *vm, struct snap_writer *w, char *err, size_t errsz);
/* Apply @st to a VM whose vCPUs are created and have never run.  0, or
 * -errno with one line in err (a section missing, KVM refusing a part). */
int snap_load_kvm(struct vm *vm, const struct snap_state *st, char *err, size_t errsz);

/* ---- identity (identity.c) ---- */

/* This kvmbox's ELF build id in hex ("" when it has none). */
void snap_kvmbox_build(char *out, size_t outsz);
/* The host CPU's vendor string ("AuthenticAMD"; "" when CPUID fails). */
void snap_host_vendor(char vendor[13]);
/* The host CPU as struct snap_machine spells it. */
void snap_host_cpu(char *out, size_t outsz);
/* 0 when @m was written by this build on this CPU, else -EINVAL with one
 * line in err saying which differs. */
int snap_check_identity(const struct snap_machine *m, char *err, size_t errsz);

#endif
