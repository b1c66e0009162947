/* boot/mptable.c - the Intel MP Specification 1.4 tables that tell Linux
 * (booted without ACPI) about its CPUs and interrupt routing: one processor
 * entry per vCPU (APIC IDs 0..ncpus-1, CPU 0 the BSP), an ISA bus, one IOAPIC
 * at 0xfec00000 with APIC ID ncpus, an IO interrupt entry wiring each line
 * 0..max(15, last virtio-mmio IRQ) to the same IOAPIC pin, and the LINT0
 * ExtINT / LINT1 NMI local entries.  Built in a host buffer, checksummed,
 * then written at BOOT_MPTABLE_ADDR (floating pointer) + 16 (config table).
 */
#include <errno.h>
#include <string.h>

#include "boot/internal.h"
#include "boot/layout.h"
#include "guest/abi/layout.h"

#define MP_SPEC_REV 4
#define LAPIC_VERSION 0x14
#define IOAPIC_VERSION 0x11
#define CPU_SIGNATURE 0x600		/* family 6 */
#define CPU_FEATURES 0x201		/* FPU, APIC */
#define MP_ISA_IRQS 16
#define MP_LAST_IRQ (KBX_VIRTIO_MMIO_IRQ_BASE + KBX_VIRTIO_MMIO_SLOTS - 1)
#define MP_NR_IRQS (MP_LAST_IRQ + 1 > MP_ISA_IRQS ? MP_LAST_IRQ + 1 : MP_ISA_IRQS)
#define MP_MAX_SIZE (sizeof(struct mpf_intel) + sizeof(struct mpc_table) +              \
		     BOOT_MAX_CPUS * sizeof(struct mpc_cpu) + sizeof(struct mpc_bus) +  \
		     sizeof(struct mpc_ioapic) + MP_NR_IRQS * sizeof(struct mpc_intsrc) + \
		     2 * sizeof(struct mpc_lintsrc))

_Static_assert(MP_MAX_SIZE <= BOOT_BIOS_END - BOOT_MPTABLE_ADDR, "MP table outgrows the BIOS area");
_Static_assert(MP_NR_IRQS <= 24, "virtio-mmio IRQs beyond the IOAPIC's 24 pins");

static uint8_t checksum(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint8_t sum = 0;

	while (n--)
		sum += *b++;
	return (uint8_t)-sum;
}

/* Append cursor over the config table's entries. */
struct mp_buf {
	uint8_t *base;
	size_t len;
	unsigned count;
};

static void put(struct mp_buf *b, const void *entry, size_t n)
{
	memcpy(b->base + b->len, entry, n);
	b->len += n;
	b->count++;
}

static void put_cpus(struct mp_buf *b, unsigned ncpus)
{
	for (unsigned i = 0; i < ncpus; i++) {
		struct mpc_cpu cpu = {
			.type = MP_PROCESSOR, .apicid = (uint8_t)i, .apicver = LAPIC_VERSION,
			.cpuflag = MPC_CPU_ENABLED | (i == 0 ? MPC_CPU_BSP : 0),
			.cpufeature = CPU_SIGNATURE, .featureflag = CPU_FEATURES,
		};
		put(b, &cpu, sizeof(cpu));
	}
}

static void put_routing(struct mp_buf *b, uint8_t ioapic_id)
{
	struct mpc_bus bus = { .type = MP_BUS, .busid = 0 };
	struct mpc_ioapic io = { .type = MP_IOAPIC, .apicid = ioapic_id, .apicver = IOAPIC_VERSION,
				 .flags = MPC_APIC_USABLE, .apicaddr = (uint32_t)BOOT_IOAPIC_ADDR };
	struct mpc_lintsrc lint0 = { .type = MP_LINTSRC, .irqtype = MP_IRQ_EXTINT,
				     .destapic = 0, .destapiclint = 0 };
	struct mpc_lintsrc lint1 = { .type = MP_LINTSRC, .irqtype = MP_IRQ_NMI,
				     .destapic = MP_APIC_ALL, .destapiclint = 1 };

	memcpy(bus.bustype, "ISA   ", sizeof(bus.bustype));
	put(b, &bus, sizeof(bus));
	put(b, &io, sizeof(io));
	for (unsigned irq = 0; irq < MP_NR_IRQS; irq++) {
		struct mpc_intsrc src = { .type = MP_INTSRC, .irqtype = MP_IRQ_INT, .srcbus = 0,
					  .srcbusirq = (uint8_t)irq, .dstapic = ioapic_id,
					  .dstirq = (uint8_t)irq };
		put(b, &src, sizeof(src));
	}
	put(b, &lint0, sizeof(lint0));
	put(b, &lint1, sizeof(lint1));
}

int boot_write_mptable(const struct boot_ctx *c)
{
	uint8_t buf[MP_MAX_SIZE];
	struct mpf_intel *mpf = (struct mpf_intel *)buf;
	struct mpc_table *mpc = (struct mpc_table *)(buf + sizeof(*mpf));
	struct mp_buf b = { .base = (uint8_t *)mpc, .len = sizeof(*mpc) };
	unsigned ncpus = c->cfg->ncpus;

	memset(buf, 0, sizeof(buf));
	put_cpus(&b, ncpus);
	put_routing(&b, (uint8_t)ncpus);
	memcpy(mpc->signature, "PCMP", 4);
	mpc->length = (uint16_t)b.len;
	mpc->spec = MP_SPEC_REV;
	memcpy(mpc->oem, "KVMBOX  ", 8);
	memcpy(mpc->productid, "000000000000", 12);
	mpc->oemcount = (uint16_t)b.count;
	mpc->lapic = (uint32_t)BOOT_LAPIC_ADDR;
	mpc->checksum = checksum(mpc, b.len);

	memcpy(mpf->signature, "_MP_", 4);
	mpf->physptr = (uint32_t)(BOOT_MPTABLE_ADDR + sizeof(*mpf));
	mpf->length = 1;
	mpf->specification = MP_SPEC_REV;
	mpf->checksum = checksum(mpf, sizeof(*mpf));

	if (gmem_write(c->gm, BOOT_MPTABLE_ADDR, buf, sizeof(*mpf) + b.len))
		return boot_fail(EFAULT, "MP table area is not in guest RAM");
	return 0;
}
