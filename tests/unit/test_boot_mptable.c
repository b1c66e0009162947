/* tests/unit/test_boot_mptable.c - the MP table Linux finds by scanning
 * 0xf0000-0xfffff: valid floating pointer and config table checksums, one
 * enabled processor per vCPU (only CPU 0 the BSP), an ISA bus, the IOAPIC
 * with APIC ID ncpus at 0xfec00000, identity routing for ISA IRQs 0-15 and
 * every virtio-mmio line, LINT0/LINT1, and the area reserved in e820. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "devices/devices.h"
#include "test_boot_images.h"

/* What walking the config table found. */
struct mp_seen {
	unsigned cpus, bsp, buses, ioapics, lints, entries;
	uint8_t cpu_ids[256];
	uint8_t ioapic_id;
	uint32_t ioapic_addr;
	int route[32];		/* srcbusirq -> dstirq, -1 if absent */
};

/* Find "_MP_" on a 16-byte boundary in the BIOS area, as Linux does. */
static const struct mpf_intel *find_mpf(struct tram *t)
{
	for (uint64_t a = 0xf0000; a < 0x100000; a += 16) {
		const struct mpf_intel *p = gpa(t, a, 16);
		if (memcmp(p->signature, "_MP_", 4) == 0)
			return p;
	}
	return NULL;
}

static void walk(struct tram *t, const struct mpc_table *mpc, struct mp_seen *s)
{
	const uint8_t *p = (const uint8_t *)(mpc + 1), *end = (const uint8_t *)mpc + mpc->length;

	memset(s, 0, sizeof(*s));
	memset(s->route, -1, sizeof(s->route));
	(void)t;
	while (p < end) {
		s->entries++;
		switch (p[0]) {
		case MP_PROCESSOR: {
			struct mpc_cpu c;
			memcpy(&c, p, sizeof(c));
			assert_true(c.cpuflag & MPC_CPU_ENABLED);
			if (c.cpuflag & MPC_CPU_BSP) {
				s->bsp++;
				assert_int_equal(c.apicid, 0);
			}
			s->cpu_ids[s->cpus++] = c.apicid;
			p += sizeof(c);
			break;
		}
		case MP_BUS: {
			struct mpc_bus b;
			memcpy(&b, p, sizeof(b));
			assert_memory_equal(b.bustype, "ISA   ", 6);
			s->buses++;
			p += sizeof(b);
			break;
		}
		case MP_IOAPIC: {
			struct mpc_ioapic io;
			memcpy(&io, p, sizeof(io));
			assert_true(io.flags & MPC_APIC_USABLE);
			s->ioapic_id = io.apicid;
			s->ioapic_addr = io.apicaddr;
			s->ioapics++;
			p += sizeof(io);
			break;
		}
		case MP_INTSRC: {
			struct mpc_intsrc in;
			memcpy(&in, p, sizeof(in));
			assert_int_equal(in.irqtype, MP_IRQ_INT);
			assert_int_equal(in.srcbus, 0);
			assert_int_equal(in.dstapic, s->ioapic_id);
			assert_true(in.srcbusirq < 32);
			assert_int_equal(s->route[in.srcbusirq], -1);	/* no duplicates */
			s->route[in.srcbusirq] = in.dstirq;
			p += sizeof(in);
			break;
		}
		case MP_LINTSRC: {
			struct mpc_lintsrc l;
			memcpy(&l, p, sizeof(l));
			assert_int_equal(l.destapiclint, s->lints);
			assert_int_equal(l.irqtype, s->lints == 0 ? MP_IRQ_EXTINT : MP_IRQ_NMI);
			s->lints++;
			p += sizeof(l);
			break;
		}
		default:
			fail_msg("unknown MP entry type %u", p[0]);
		}
	}
	assert_ptr_equal(p, end);
}

static void check_mptable(unsigned ncpus)
{
	struct tseg seg = { .paddr = 0x200000, .filesz = 0x1000, .memsz = 0x1000 };
	struct telf o = { .entry = 0x200000, .segs = &seg, .nsegs = 1 };
	struct boot_entry e;
	struct tram t;
	size_t len;
	uint8_t *k = build_elf(&o, &len);
	struct boot_config cfg = { .kernel = k, .kernel_len = len, .ncpus = ncpus };

	tram_init(&t, 4 * MiB);
	assert_int_equal(boot_load(&t.gm, &cfg, &e), 0);
	const struct mpf_intel *mpf = find_mpf(&t);
	assert_non_null(mpf);
	assert_int_equal(sum8(mpf, 16), 0);
	assert_int_equal(mpf->length, 1);
	assert_int_equal(mpf->specification, 4);
	assert_int_equal(mpf->feature1, 0);	/* a config table, not a default config */

	const struct mpc_table *mpc = gpa(&t, mpf->physptr, sizeof(*mpc));
	assert_non_null(mpc);
	assert_memory_equal(mpc->signature, "PCMP", 4);
	assert_non_null(gpa(&t, mpf->physptr, mpc->length));
	assert_int_equal(sum8(mpc, mpc->length), 0);
	assert_int_equal(mpc->lapic, 0xfee00000);
	assert_true(mpf->physptr >= 0xf0000 && mpf->physptr + mpc->length <= 0x100000);

	struct mp_seen s;
	walk(&t, mpc, &s);
	assert_int_equal(s.entries, mpc->oemcount);
	assert_int_equal(s.cpus, ncpus);
	for (unsigned i = 0; i < ncpus; i++)
		assert_int_equal(s.cpu_ids[i], i);
	assert_int_equal(s.bsp, 1);
	assert_int_equal(s.buses, 1);
	assert_int_equal(s.ioapics, 1);
	assert_int_equal(s.ioapic_id, ncpus);
	assert_int_equal(s.ioapic_addr, 0xfec00000);
	assert_int_equal(s.lints, 2);
	for (unsigned irq = 0; irq < 16; irq++)
		assert_int_equal(s.route[irq], irq);
	for (unsigned i = 0; i < VIRTIO_MMIO_MAX_DEVS; i++)
		assert_int_equal(s.route[VIRTIO_MMIO_IRQ_BASE + i], VIRTIO_MMIO_IRQ_BASE + i);

	/* e820 reserves the table. */
	const struct boot_params *bp = zero_page(&t);
	int reserved = 0;
	for (unsigned i = 0; i < bp->e820_entries; i++)
		if (bp->e820_table[i].type == E820_TYPE_RESERVED &&
		    bp->e820_table[i].addr <= mpf->physptr - 16 &&
		    bp->e820_table[i].addr + bp->e820_table[i].size >= mpf->physptr + mpc->length)
			reserved = 1;
	assert_true(reserved);
	free(k);
	tram_free(&t);
}

static void test_one_cpu(void **state)
{
	(void)state;
	check_mptable(1);
}

static void test_four_cpus(void **state)
{
	(void)state;
	check_mptable(4);
}

static void test_max_cpus(void **state)
{
	(void)state;
	check_mptable(BOOT_MAX_CPUS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_cpu),
		cmocka_unit_test(test_four_cpus),
		cmocka_unit_test(test_max_cpus),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
