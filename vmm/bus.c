/* vmm/bus.c - the port-I/O and MMIO buses: route one guest access to the
 * device region that covers it.
 *
 * Regions are registered before any vCPU runs and never change afterwards,
 * so vCPU threads look them up without a lock.  An access must lie wholly
 * inside one region; anything else reads as all-ones and writes are dropped,
 * which is what unpopulated bus space does on a PC.
 */
#include "vmm/vmm.h"

#include <errno.h>
#include <string.h>

int bus_add(struct bus *bus, const struct io_region *r)
{
	if (!r || !r->len || r->base + r->len < r->base)
		return -EINVAL;
	if (bus->n >= BUS_MAX_REGIONS)
		return -ENOSPC;
	unsigned at = 0;
	for (unsigned i = 0; i < bus->n; i++) {
		const struct io_region *o = bus->r[i];
		if (r->base < o->base + o->len && o->base < r->base + r->len)
			return -EEXIST;
		if (o->base < r->base)
			at = i + 1;
	}
	memmove(&bus->r[at + 1], &bus->r[at], (bus->n - at) * sizeof(bus->r[0]));
	bus->r[at] = r;
	bus->n++;
	return 0;
}

static const struct io_region *bus_find(const struct bus *bus, uint64_t addr, unsigned size)
{
	unsigned lo = 0, hi = bus->n;
	while (lo < hi) {	/* last region with base <= addr */
		unsigned mid = (lo + hi) / 2;
		if (bus->r[mid]->base <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!lo)
		return NULL;
	const struct io_region *r = bus->r[lo - 1];
	uint64_t off = addr - r->base;
	if (off >= r->len || size > r->len - off)
		return NULL;
	return r;
}

bool bus_read(const struct bus *bus, uint64_t addr, void *data, unsigned size)
{
	const struct io_region *r = size && size <= 8 ? bus_find(bus, addr, size) : NULL;
	if (!r || !r->read) {
		memset(data, 0xff, size <= 8 ? size : 8);
		return r != NULL;
	}
	memset(data, 0, size);
	r->read(r->opaque, addr - r->base, data, size);
	return true;
}

bool bus_write(const struct bus *bus, uint64_t addr, const void *data, unsigned size)
{
	const struct io_region *r = size && size <= 8 ? bus_find(bus, addr, size) : NULL;
	if (!r)
		return false;
	if (r->write)
		r->write(r->opaque, addr - r->base, data, size);
	return true;
}
