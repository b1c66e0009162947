/* common/gmem.h - the guest-memory object: bounds-checked guest-physical access.
 *
 * Every address, length and index the guest supplies reaches host memory only
 * through gmem_ptr(), which returns a host pointer when, and only when, the
 * whole range [gpa, gpa + len) lies inside one RAM region.  boot/ writes the
 * kernel through it, devices/ walk descriptor chains through it, and tests
 * build a gmem over a plain malloc'd buffer to play the guest.
 *
 * x86 layout: RAM below the 32-bit MMIO hole is region 0 at gpa 0; RAM that
 * does not fit below the hole continues as region 1 at GMEM_HIGH_BASE.
 */
#ifndef KVMBOX_COMMON_GMEM_H
#define KVMBOX_COMMON_GMEM_H

#include <stddef.h>
#include <stdint.h>

#define GMEM_MAX_REGIONS 2
#define GMEM_HOLE_START 0xc0000000ULL	/* 3 GiB: MMIO hole (virtio-mmio, LAPIC, IOAPIC) */
#define GMEM_HIGH_BASE 0x100000000ULL	/* 4 GiB: where RAM above the hole resumes */

/* One contiguous run of guest RAM backed by one contiguous host mapping. */
struct gmem_region {
	uint64_t gpa;		/* guest-physical start */
	uint64_t size;		/* bytes */
	uint8_t *host;		/* host address of gpa */
};

/* Guest RAM: up to GMEM_MAX_REGIONS non-overlapping regions, sorted by gpa. */
struct gmem {
	struct gmem_region region[GMEM_MAX_REGIONS];
	unsigned nregions;
	uint64_t ram_size;	/* total bytes of RAM over all regions */
};

/* Describe @size bytes of RAM at host address @host with the x86 layout
 * (split around the MMIO hole).  The host mapping must be @size bytes. */
void gmem_init_x86(struct gmem *gm, uint8_t *host, uint64_t size);

/* Host pointer for guest range [gpa, gpa+len), or NULL if any byte of it is
 * outside RAM, the range wraps, or it straddles two regions.  len 0 is
 * accepted for any gpa inside (or at the end of) a region. */
void *gmem_ptr(const struct gmem *gm, uint64_t gpa, uint64_t len);

/* Copy helpers: 0 on success, -EFAULT if the range is not all RAM. */
int gmem_read(const struct gmem *gm, void *dst, uint64_t gpa, uint64_t len);
int gmem_write(const struct gmem *gm, uint64_t gpa, const void *src, uint64_t len);

#endif
