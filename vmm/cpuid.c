/* vmm/cpuid.c - the CPUID a guest vCPU sees: KVM's supported set, patched.
 *
 * KVM_GET_SUPPORTED_CPUID reports what the host and KVM can offer; a vCPU
 * needs its own APIC ID in leaf 1 and the x2APIC topology leaves, the
 * hypervisor bit (Linux only looks at the 0x40000000 leaves when it is set,
 * and without them finds neither kvmclock nor the TSC frequency), and the
 * "KVMKVMKVM" signature.  Pure functions over struct kvm_cpuid2 so they are
 * unit-tested without /dev/kvm.
 */
#include "vmm/vmm.h"

#include <string.h>

#define CPUID_HYPERVISOR_BIT (1u << 31)
#define CPUID_HTT_BIT (1u << 28)
#define KVM_CPUID_SIGNATURE 0x40000000u
#define KVM_CPUID_FEATURES 0x40000001u
#define KVM_CPUID_TIMING 0x40000010u

struct kvm_cpuid_entry2 *cpuid_find(struct kvm_cpuid2 *c, uint32_t fn, uint32_t idx)
{
	for (uint32_t i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];
		if (e->function != fn)
			continue;
		if ((e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) && e->index != idx)
			continue;
		return e;
	}
	return NULL;
}

static unsigned bits_for(unsigned n)	/* ceil(log2(n)), 0 for n <= 1 */
{
	unsigned b = 0;
	while ((1u << b) < n)
		b++;
	return b;
}

/* Leaves 0xB and 0x1F: one SMT thread per core, ncpus cores per package. */
static void patch_topology(struct kvm_cpuid2 *c, uint32_t leaf, unsigned apic_id, unsigned ncpus)
{
	for (uint32_t i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];
		if (e->function != leaf)
			continue;
		e->edx = apic_id;
		switch (e->index) {
		case 0:		/* SMT level */
			e->eax = 0;
			e->ebx = 1;
			e->ecx = (1u << 8) | 0;
			break;
		case 1:		/* core level */
			e->eax = bits_for(ncpus);
			e->ebx = ncpus;
			e->ecx = (2u << 8) | 1;
			break;
		default:	/* invalid level: ends the enumeration */
			e->eax = 0;
			e->ebx = 0;
			e->ecx = e->index;
			break;
		}
	}
}

void cpuid_patch(struct kvm_cpuid2 *c, unsigned cap, unsigned apic_id, unsigned ncpus,
		 uint32_t tsc_khz)
{
	struct kvm_cpuid_entry2 *e = cpuid_find(c, 1, 0);
	if (e) {
		e->ebx = (e->ebx & 0x0000ffffu) | ((apic_id & 0xffu) << 24) |
			 ((ncpus > 1 ? (ncpus & 0xffu) : 1u) << 16);
		if (ncpus > 1)
			e->edx |= CPUID_HTT_BIT;
		e->ecx |= CPUID_HYPERVISOR_BIT;
	}
	patch_topology(c, 0xb, apic_id, ncpus);
	patch_topology(c, 0x1f, apic_id, ncpus);

	uint32_t max_hv = KVM_CPUID_FEATURES;
	struct kvm_cpuid_entry2 *t = cpuid_find(c, KVM_CPUID_TIMING, 0);
	if (tsc_khz && !t && c->nent < cap) {
		t = &c->entries[c->nent++];
		memset(t, 0, sizeof(*t));
		t->function = KVM_CPUID_TIMING;
	}
	if (t && tsc_khz) {
		t->eax = tsc_khz;
		t->ebx = 1000000;	/* KVM's LAPIC timer runs at 1 GHz */
		max_hv = KVM_CPUID_TIMING;
	}
	struct kvm_cpuid_entry2 *s = cpuid_find(c, KVM_CPUID_SIGNATURE, 0);
	if (!s && c->nent < cap) {
		s = &c->entries[c->nent++];
		memset(s, 0, sizeof(*s));
		s->function = KVM_CPUID_SIGNATURE;
	}
	if (s) {
		s->eax = max_hv;
		memcpy(&s->ebx, "KVMK", 4);
		memcpy(&s->ecx, "VMKV", 4);
		memcpy(&s->edx, "M\0\0\0", 4);
	}
}

/* XCR0 at creation: every user state component the CPUID offers (x87,
 * SSE, AVX, AVX-512, PKRU), not the architectural reset value 1.  Linux
 * enables exactly these with XSETBV anyway; starting there (1) makes CPUID
 * 0xD.0 EBX, which KVM computes from XCR0 at KVM_SET_CPUID2, already the
 * size the guest will check ("XSAVE consistency problem" otherwise, where
 * KVM only recomputes it for some XCR0 changes), and (2) keeps AVX working
 * under hypervisors that do not intercept the guest's XSETBV (QEMU TCG's
 * SVM: KVM there reloads its own idea of XCR0 at every VM entry).  0 when
 * the CPU has no XSAVE. */
uint64_t cpuid_user_xcr0(struct kvm_cpuid2 *cpuid)
{
	const uint64_t avx512 = 0xe0, user = 0x1 | 0x2 | 0x4 | avx512 | 0x200;
	struct kvm_cpuid_entry2 *l1 = cpuid_find(cpuid, 1, 0), *d = cpuid_find(cpuid, 0xd, 0);
	if (!l1 || !(l1->ecx & (1u << 26)) || !d)
		return 0;
	uint64_t x = (d->eax | (uint64_t)d->edx << 32) & user;
	if ((x & avx512) != avx512)
		x &= ~avx512;	/* all three AVX-512 components or none */
	return (x & 3) == 3 ? x : 0;
}
