/* boot/abi.h - the x86 boot ABIs boot/ writes: Linux boot_params (from the
 * kernel's own uapi header), Xen PVH start info (guest/abi/pvh.h, which the
 * tiny test guests read too), and the Intel MultiProcessor
 * Specification 1.4 tables.
 *
 * Kept in one header so the unit tests read back exactly the structures the
 * loader wrote.  All structures are packed, little-endian, guest-visible.
 */
#ifndef KVMBOX_BOOT_ABI_H
#define KVMBOX_BOOT_ABI_H

#include <stdint.h>

#include <asm/bootparam.h>	/* struct boot_params, setup_header, XLF_* */

#include "guest/abi/pvh.h"	/* struct hvm_start_info and its tables */

#define BOOT_HDRS_MAGIC 0x53726448u	/* "HdrS" at 0x202 in a bzImage */
#define BOOT_FLAG_MAGIC 0xaa55
#define BOOT_SETUP_HEADER_OFF 0x1f1	/* setup header offset in image and zero page */
#define BOOT_LOADER_UNDEFINED 0xff	/* type_of_loader: no assigned id */
#define BOOT_BZ_ENTRY64_OFF 0x200	/* 64-bit entry from the protected-mode start */

#define E820_TYPE_RAM 1
#define E820_TYPE_RESERVED 2

/* Xen PVH: ELF note name "Xen", type XEN_ELFNOTE_PHYS32_ENTRY holds the
 * 32-bit physical entry point (4 or 8 bytes). */
#define XEN_ELFNOTE_PHYS32_ENTRY 18
/* MP floating pointer structure ("_MP_"), 16 bytes. */
struct mpf_intel {
	char signature[4];
	uint32_t physptr;	/* MP config table */
	uint8_t length;		/* in 16-byte units: 1 */
	uint8_t specification;	/* 4 = MP spec 1.4 */
	uint8_t checksum;	/* all 16 bytes sum to 0 */
	uint8_t feature1;	/* 0: config table present */
	uint8_t feature2;
	uint8_t feature3, feature4, feature5;
} __attribute__((packed));

/* MP configuration table header ("PCMP"), followed by the entries. */
struct mpc_table {
	char signature[4];
	uint16_t length;	/* header + entries, bytes */
	uint8_t spec;
	uint8_t checksum;	/* all length bytes sum to 0 */
	char oem[8];
	char productid[12];
	uint32_t oemptr;
	uint16_t oemsize;
	uint16_t oemcount;	/* number of entries */
	uint32_t lapic;		/* local APIC address */
	uint16_t reserved_len;	/* extended table length (0) */
	uint8_t reserved_sum;
	uint8_t reserved;
} __attribute__((packed));

enum { MP_PROCESSOR = 0, MP_BUS = 1, MP_IOAPIC = 2, MP_INTSRC = 3, MP_LINTSRC = 4 };
enum { MP_IRQ_INT = 0, MP_IRQ_NMI = 1, MP_IRQ_SMI = 2, MP_IRQ_EXTINT = 3 };
#define MPC_CPU_ENABLED 1
#define MPC_CPU_BSP 2
#define MPC_APIC_USABLE 1
#define MP_APIC_ALL 0xff

struct mpc_cpu {
	uint8_t type;
	uint8_t apicid;
	uint8_t apicver;
	uint8_t cpuflag;
	uint32_t cpufeature;	/* family/model/stepping signature */
	uint32_t featureflag;	/* CPUID.1:EDX subset */
	uint32_t reserved[2];
} __attribute__((packed));

struct mpc_bus {
	uint8_t type;
	uint8_t busid;
	char bustype[6];
} __attribute__((packed));

struct mpc_ioapic {
	uint8_t type;
	uint8_t apicid;
	uint8_t apicver;
	uint8_t flags;
	uint32_t apicaddr;
} __attribute__((packed));

struct mpc_intsrc {
	uint8_t type;
	uint8_t irqtype;
	uint16_t irqflag;	/* 0: conforms to the bus (ISA: edge, high) */
	uint8_t srcbus;
	uint8_t srcbusirq;
	uint8_t dstapic;
	uint8_t dstirq;
} __attribute__((packed));

struct mpc_lintsrc {
	uint8_t type;
	uint8_t irqtype;
	uint16_t irqflag;
	uint8_t srcbusid;
	uint8_t srcbusirq;
	uint8_t destapic;
	uint8_t destapiclint;
} __attribute__((packed));

#endif
