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
