/* vmm/snapshot/kvm_state.c - the state KVM keeps for a VM and its vCPUs,
 * out of KVM into a snapshot's sections and back, in the orders Firecracker
 * and QEMU use: CPUID before anything that depends on it, the local APIC
 * before the MSRs (TSC deadline), pending events last.
 *
 * Saved per vCPU: MP state, registers, special registers, XSAVE area, XCRs,
 * debug registers, local APIC, TSC frequency, CPUID, every MSR KVM lists
 * (KVM_GET_MSR_INDEX_LIST) that it lets us read, pending events.  Per VM:
 * the three irqchips (two PICs, the IOAPIC), the PIT, kvmclock.
 */
#include "vmm/snapshot/snapshot.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "common/log.h"
#include "vmm/vmm.h"

/* One ioctl's failure as the line the caller prints. */
static int ioctl_failed(char *err, size_t errsz, const char *what, unsigned vcpu)
{
	int e = -errno;
	if (vcpu == ~0u)
		snprintf(err, errsz, "%s: %s", what, strerror(-e));
	else
		snprintf(err, errsz, "vCPU %u: %s: %s", vcpu, what, strerror(-e));
	return e ? e : -EIO;
}

/* ---- the VM ---- */

static int save_vm(struct vm *vm, struct snap_writer *w, char *err, size_t errsz)
{
	struct kvm_clock_data clock;
	memset(&clock, 0, sizeof(clock));
	if (ioctl(vm->vm_fd, KVM_GET_CLOCK, &clock) < 0)
		return ioctl_failed(err, errsz, "KVM_GET_CLOCK", ~0u);
	snap_put(w, SNAP_VM_CLOCK, 0, &clock, sizeof(clock));
	struct kvm_pit_state2 pit;
	memset(&pit, 0, sizeof(pit));
	if (ioctl(vm->vm_fd, KVM_GET_PIT2, &pit) < 0)
		return ioctl_failed(err, errsz, "KVM_GET_PIT2", ~0u);
	snap_put(w, SNAP_VM_PIT, 0, &pit, sizeof(pit));
	for (uint32_t chip = 0; chip < 3; chip++) {
		struct kvm_irqchip ic;
		memset(&ic, 0, sizeof(ic));
		ic.chip_id = chip;
		if (ioctl(vm->vm_fd, KVM_GET_IRQCHIP, &ic) < 0)
			return ioctl_failed(err, errsz, "KVM_GET_IRQCHIP", ~0u);
		snap_put(w, SNAP_VM_IRQCHIP, chip, &ic, sizeof(ic));
	}
	return 0;
}

/* A section the parser made sure of (required for this index), or NULL
 * with the line saying which is missing. */
static const struct snap_section *need(const struct snap_state *st, uint32_t tag, uint32_t index,
				       char *err, size_t errsz)
{
	const struct snap_section *s = snap_find(st, tag, index);
	if (!s)
		snprintf(err, errsz, "it lacks its %s section %u", snap_tag_name(tag), index);
	return s;
}

/* A section's bytes into @out, which must be exactly its size (the parser
 * checked the size against the tag; this checks the caller's type). */
static int take_part(const struct snap_state *st, uint32_t tag, uint32_t index, void *out,
		     size_t size, char *err, size_t errsz)
{
	const struct snap_section *s = need(st, tag, index, err, errsz);
	if (!s)
		return -EINVAL;
	if (s->len != size) {
		snprintf(err, errsz, "its %s section %u is %zu bytes, not %zu", snap_tag_name(tag), index,
			 s->len, size);
		return -EINVAL;
	}
	memcpy(out, s->data, size);
	return 0;
}

static int load_vm(struct vm *vm, const struct snap_state *st, char *err, size_t errsz)
{
	for (uint32_t chip = 0; chip < 3; chip++) {
		struct kvm_irqchip ic;
		int r = take_part(st, SNAP_VM_IRQCHIP, chip, &ic, sizeof(ic), err, errsz);
		if (r < 0)
			return r;
		if (ic.chip_id != chip) {
			snprintf(err, errsz, "its irqchip section %u is chip %u", chip, ic.chip_id);
			return -EINVAL;
		}
		if (ioctl(vm->vm_fd, KVM_SET_IRQCHIP, &ic) < 0)
			return ioctl_failed(err, errsz, "KVM_SET_IRQCHIP", ~0u);
	}
	struct kvm_pit_state2 pit;
	int r = take_part(st, SNAP_VM_PIT, 0, &pit, sizeof(pit), err, errsz);
	if (r < 0)
		return r;
	if (ioctl(vm->vm_fd, KVM_SET_PIT2, &pit) < 0)
		return ioctl_failed(err, errsz, "KVM_SET_PIT2", ~0u);
	struct kvm_clock_data clock;
	if ((r = take_part(st, SNAP_VM_CLOCK, 0, &clock, sizeof(clock), err, errsz)) < 0)
		return r;
	/* The guest's clock goes on from where it stopped; the flags that
	 * describe the host that saved it do not apply here. */
	struct kvm_clock_data set = { .clock = clock.clock };
	if (ioctl(vm->vm_fd, KVM_SET_CLOCK, &set) < 0)
		return ioctl_failed(err, errsz, "KVM_SET_CLOCK", ~0u);
	return 0;
}

/* ---- vCPUs ---- */

/* Bytes of KVM's XSAVE area for this VM (KVM_CAP_XSAVE2, else 4096). */
static size_t xsave_size(struct vm *vm)
{
	int n = ioctl(vm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
	return n > 4096 && (size_t)n <= SNAP_MAX_XSAVE ? ((size_t)n + 63) & ~(size_t)63 : 4096;
}

/* The MSRs KVM says a VMM should save: a malloc'd kvm_msrs with every
 * index, or NULL. */
static struct kvm_msrs *msr_list(struct vm *vm)
{
	struct kvm_msr_list probe = { .nmsrs = 0 };
	if (ioctl(vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, &probe) < 0 && errno != E2BIG)
		return NULL;
	uint32_t n = probe.nmsrs;
	if (!n || n > SNAP_MAX_MSRS)
		return NULL;
	struct kvm_msr_list *l = calloc(1, sizeof(*l) + n * sizeof(l->indices[0]));
	struct kvm_msrs *m = calloc(1, sizeof(*m) + n * sizeof(m->entries[0]));
	if (!l || !m) {
		free(l);
		free(m);
		return NULL;
	}
	l->nmsrs = n;
	if (ioctl(vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, l) < 0) {
		free(l);
		free(m);
		return NULL;
	}
	m->nmsrs = l->nmsrs;
	for (uint32_t i = 0; i < l->nmsrs; i++)
		m->entries[i].index = l->indices[i];
	free(l);
	return m;
}

/* Read every MSR of @all that KVM lets us read into @out (packed; @batch
 * is scratch room for as many): the count read. */
static uint32_t read_msrs(int fd, const struct kvm_msrs *all, struct kvm_msrs *batch,
			  struct kvm_msr_entry *out)
{
	uint32_t got = 0, i = 0;
	while (i < all->nmsrs) {
		batch->nmsrs = all->nmsrs - i;
		memcpy(batch->entries, &all->entries[i], batch->nmsrs * sizeof(batch->entries[0]));
		/* KVM reads in order and stops at the first it refuses. */
		int n = ioctl(fd, KVM_GET_MSRS, batch);
		if (n < 0)
			break;
		memcpy(&out[got], batch->entries, (size_t)n * sizeof(out[0]));
		got += (uint32_t)n;
		i += (uint32_t)n + 1;	/* past the refused one */
	}
	return got;
}

/* Scratch for one vCPU's save: the MSR list and buffers, the XSAVE area. */
struct vcpu_scratch {
	struct kvm_msrs *all, *batch;
	struct kvm_msr_entry *msrs;
	uint8_t *xsave;
	size_t xsave_len;
	struct kvm_cpuid2 *cpuid;
};

static void scratch_free(struct vcpu_scratch *x)
{
	free(x->all);
	free(x->batch);
	free(x->msrs);
	free(x->xsave);
	free(x->cpuid);
}

static int scratch_init(struct vm *vm, struct vcpu_scratch *x)
{
	memset(x, 0, sizeof(*x));
	x->all = msr_list(vm);
	if (!x->all)
		return -EIO;
	size_t n = x->all->nmsrs;
	x->batch = calloc(1, sizeof(*x->batch) + n * sizeof(x->batch->entries[0]));
	x->msrs = calloc(n, sizeof(*x->msrs));
	x->xsave_len = xsave_size(vm);
	x->xsave = calloc(1, x->xsave_len);
	x->cpuid = calloc(1, sizeof(*x->cpuid) + SNAP_MAX_CPUID * sizeof(x->cpuid->entries[0]));
	return x->batch && x->msrs && x->xsave && x->cpuid ? 0 : -ENOMEM;
}

/* One vCPU's fixed-size state: (tag, ioctl, size), in save order. */
static const struct fixed_part {
	uint32_t tag;
	unsigned long get, set;
	size_t size;
	const char *get_name, *set_name;
} fixed_parts[] = {
	{ SNAP_VCPU_MP_STATE, KVM_GET_MP_STATE, KVM_SET_MP_STATE, sizeof(struct kvm_mp_state),
	  "KVM_GET_MP_STATE", "KVM_SET_MP_STATE" },
	{ SNAP_VCPU_REGS, KVM_GET_REGS, KVM_SET_REGS, sizeof(struct kvm_regs), "KVM_GET_REGS",
	  "KVM_SET_REGS" },
	{ SNAP_VCPU_SREGS, KVM_GET_SREGS, KVM_SET_SREGS, sizeof(struct kvm_sregs), "KVM_GET_SREGS",
	  "KVM_SET_SREGS" },
	{ SNAP_VCPU_XCRS, KVM_GET_XCRS, KVM_SET_XCRS, sizeof(struct kvm_xcrs), "KVM_GET_XCRS",
	  "KVM_SET_XCRS" },
	{ SNAP_VCPU_DEBUGREGS, KVM_GET_DEBUGREGS, KVM_SET_DEBUGREGS, sizeof(struct kvm_debugregs),
	  "KVM_GET_DEBUGREGS", "KVM_SET_DEBUGREGS" },
	{ SNAP_VCPU_LAPIC, KVM_GET_LAPIC, KVM_SET_LAPIC, sizeof(struct kvm_lapic_state),
	  "KVM_GET_LAPIC", "KVM_SET_LAPIC" },
};
#define NFIXED (sizeof(fixed_parts) / sizeof(fixed_parts[0]))

/* Room for any one of fixed_parts (the LAPIC's 1 KiB is the largest). */
union vcpu_part {
	struct kvm_lapic_state lapic;
	struct kvm_sregs sregs;
	uint8_t bytes[2048];
};

static int save_vcpu(struct vm *vm, unsigned id, struct vcpu_scratch *x, struct snap_writer *w,
		     char *err, size_t errsz)
{
	int fd = vm->vcpu[id].fd;
	union vcpu_part u;
	for (size_t i = 0; i < NFIXED; i++) {
		const struct fixed_part *p = &fixed_parts[i];
		memset(&u, 0, sizeof(u));
		if (ioctl(fd, p->get, &u) < 0) {
			if (p->tag == SNAP_VCPU_XCRS && errno == EINVAL)
				continue;	/* a CPU without XSAVE */
			return ioctl_failed(err, errsz, p->get_name, id);
		}
		snap_put(w, p->tag, id, &u, p->size);
	}
	unsigned long get_xsave = x->xsave_len > 4096 ? KVM_GET_XSAVE2 : KVM_GET_XSAVE;
	memset(x->xsave, 0, x->xsave_len);
	if (ioctl(fd, get_xsave, x->xsave) < 0)
		return ioctl_failed(err, errsz, "KVM_GET_XSAVE", id);
	snap_put(w, SNAP_VCPU_XSAVE, id, x->xsave, x->xsave_len);
	int khz = ioctl(fd, KVM_GET_TSC_KHZ, 0);
	if (khz > 0) {
		uint32_t k = (uint32_t)khz;
		snap_put(w, SNAP_VCPU_TSC_KHZ, id, &k, sizeof(k));
	}
	x->cpuid->nent = SNAP_MAX_CPUID;
	if (ioctl(fd, KVM_GET_CPUID2, x->cpuid) < 0)
		return ioctl_failed(err, errsz, "KVM_GET_CPUID2", id);
	snap_put(w, SNAP_VCPU_CPUID, id, x->cpuid->entries, x->cpuid->nent * sizeof(x->cpuid->entries[0]));
	uint32_t n = read_msrs(fd, x->all, x->batch, x->msrs);
	if (!n) {
		snprintf(err, errsz, "vCPU %u: KVM lets no MSR be read", id);
		return -EIO;
	}
	snap_put(w, SNAP_VCPU_MSRS, id, x->msrs, n * sizeof(x->msrs[0]));
	struct kvm_vcpu_events ev;
	memset(&ev, 0, sizeof(ev));
	if (ioctl(fd, KVM_GET_VCPU_EVENTS, &ev) < 0)
		return ioctl_failed(err, errsz, "KVM_GET_VCPU_EVENTS", id);
	snap_put(w, SNAP_VCPU_EVENTS, id, &ev, sizeof(ev));
	return 0;
}

int snap_save_kvm(struct vm *vm, struct snap_writer *w, char *err, size_t errsz)
{
	int r = save_vm(vm, w, err, errsz);
	if (r < 0)
		return r;
	struct vcpu_scratch x;
	if ((r = scratch_init(vm, &x)) < 0) {
		snprintf(err, errsz, "cannot list the MSRs to save: %s", strerror(-r));
	} else {
		for (unsigned id = 0; id < vm->nvcpus && r == 0; id++)
			r = save_vcpu(vm, id, &x, w, err, errsz);
	}
	scratch_free(&x);
	return r;
}

static int load_cpuid(int fd, unsigned id, const struct snap_state *st, char *err, size_t errsz)
{
	const struct snap_section *s = need(st, SNAP_VCPU_CPUID, id, err, errsz);
	if (!s)
		return -EINVAL;
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + s->len);
	if (!c)
		return -ENOMEM;
	c->nent = (uint32_t)(s->len / sizeof(c->entries[0]));
	memcpy(c->entries, s->data, s->len);
	int r = ioctl(fd, KVM_SET_CPUID2, c) < 0 ? ioctl_failed(err, errsz, "KVM_SET_CPUID2", id) : 0;
	free(c);
	return r;
}

static int load_msrs(int fd, unsigned id, const struct snap_state *st, char *err, size_t errsz)
{
	const struct snap_section *s = need(st, SNAP_VCPU_MSRS, id, err, errsz);
	if (!s)
		return -EINVAL;
	uint32_t n = (uint32_t)(s->len / sizeof(struct kvm_msr_entry));
	struct kvm_msrs *m = calloc(1, sizeof(*m) + s->len);
	if (!m)
		return -ENOMEM;
	const struct kvm_msr_entry *all = (const void *)s->data;	/* 8-byte aligned */
	uint32_t i = 0, refused = 0;
	/* In order, as saved; one KVM refuses here (another kernel's list)
	 * is said once and skipped, as QEMU does. */
	while (i < n) {
		m->nmsrs = n - i;
		memcpy(m->entries, &all[i], m->nmsrs * sizeof(*all));
		int set = ioctl(fd, KVM_SET_MSRS, m);
		if (set < 0) {
			free(m);
			return ioctl_failed(err, errsz, "KVM_SET_MSRS", id);
		}
		i += (uint32_t)set;
		if (i < n) {
			log_debug("vCPU %u: MSR 0x%x not restored", id, m->entries[set].index);
			refused++;
			i++;
		}
	}
	if (refused)
		log_once(LOG_INFO, "snapshot: %u MSRs of vCPU %u not restored (KVM refused them)", refused,
			 id);
	free(m);
	return 0;
}

/* An AMD host: SVM, whose VMRUN neither checks nor uses the busy bit of
 * the hidden TR (the I/O permission bitmap is found by TR's base and limit
 * alone). */
static bool host_is_amd(void)
{
	char vendor[13];
	snap_host_vendor(vendor);
	return !strcmp(vendor, "AuthenticAMD") || !strcmp(vendor, "HygonGenuine");
}

/* KVM reports a 64-bit TSS as busy (type 11: svm_get_segment sets the
 * bit), as hardware caches it after LTR.  QEMU's TCG emulation of SVM, the
 * nested harness every test of this project runs on, caches the available
 * type (9) after LTR and refuses user-space port I/O through the bitmap
 * with any other (target/i386 check_io): restored as 11, a guest's ioperm
 * stops working (kvmbox-init's first read after the snapshot point took a
 * #GP).  On SVM the bit means nothing to the CPU, so it is cleared there;
 * Intel's VM entry requires a busy TSS and keeps 11. */
static void tr_type_for_svm(struct kvm_sregs *s)
{
	if (s->tr.type == 11 && host_is_amd())
		s->tr.type = 9;
}

static int load_vcpu(struct vm *vm, unsigned id, const struct snap_state *st, char *err,
		     size_t errsz)
{
	int fd = vm->vcpu[id].fd;
	int r = load_cpuid(fd, id, st, err, errsz);
	if (r < 0)
		return r;
	const struct snap_section *khz = snap_find(st, SNAP_VCPU_TSC_KHZ, id);
	if (khz) {
		uint32_t k;
		memcpy(&k, khz->data, sizeof(k));
		int now = ioctl(fd, KVM_GET_TSC_KHZ, 0);
		if (now > 0 && (uint32_t)now != k && ioctl(fd, KVM_SET_TSC_KHZ, (unsigned long)k) < 0)
			return ioctl_failed(err, errsz, "KVM_SET_TSC_KHZ (the TSC runs at another "
					    "frequency here)", id);
	}
	union vcpu_part u;
	for (size_t i = 0; i < NFIXED; i++) {
		const struct fixed_part *p = &fixed_parts[i];
		if (p->tag == SNAP_VCPU_XCRS && !snap_find(st, p->tag, id))
			continue;
		if ((r = take_part(st, p->tag, id, &u, p->size, err, errsz)) < 0)
			return r;
		if (p->tag == SNAP_VCPU_SREGS)
			tr_type_for_svm(&u.sregs);
		if (ioctl(fd, p->set, &u) < 0)
			return ioctl_failed(err, errsz, p->set_name, id);
		if (p->tag == SNAP_VCPU_SREGS) {	/* the XSAVE area before XCRs */
			const struct snap_section *xs = need(st, SNAP_VCPU_XSAVE, id, err, errsz);
			if (!xs)
				return -EINVAL;
			size_t here = xsave_size(vm);
			if (xs->len != here) {
				snprintf(err, errsz, "its vCPU XSAVE area %u is %zu bytes, KVM's here %zu",
					 id, xs->len, here);
				return -EINVAL;
			}
			if (ioctl(fd, KVM_SET_XSAVE, xs->data) < 0)
				return ioctl_failed(err, errsz, "KVM_SET_XSAVE", id);
		}
	}
	if ((r = load_msrs(fd, id, st, err, errsz)) < 0)
		return r;
	struct kvm_vcpu_events ev;
	if ((r = take_part(st, SNAP_VCPU_EVENTS, id, &ev, sizeof(ev), err, errsz)) < 0)
		return r;
	ev.flags |= KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR;
	if (ioctl(fd, KVM_SET_VCPU_EVENTS, &ev) < 0)
		return ioctl_failed(err, errsz, "KVM_SET_VCPU_EVENTS", id);
	return 0;
}

int snap_load_kvm(struct vm *vm, const struct snap_state *st, char *err, size_t errsz)
{
	if (st->machine->ncpus != vm->nvcpus) {
		snprintf(err, errsz, "it has %u vCPUs, the VM %u", st->machine->ncpus, vm->nvcpus);
		return -EINVAL;
	}
	int r = load_vm(vm, st, err, errsz);
	for (unsigned id = 0; id < vm->nvcpus && r == 0; id++)
		r = load_vcpu(vm, id, st, err, errsz);
	return r;
}
