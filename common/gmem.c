/* common/gmem.c - bounds-checked guest-physical to host translation.
 *
 * Kept deliberately tiny: it is on every device's data path and it is the one
 * place that decides whether a guest-supplied address may be touched.
 */
#include "common/gmem.h"

#include <errno.h>
#include <string.h>

void gmem_init_x86(struct gmem *gm, uint8_t *host, uint64_t size)
{
	memset(gm, 0, sizeof(*gm));
	gm->ram_size = size;
	uint64_t low = size < GMEM_HOLE_START ? size : GMEM_HOLE_START;
	gm->region[0] = (struct gmem_region){ .gpa = 0, .size = low, .host = host };
	gm->nregions = 1;
	if (size > low) {
		gm->region[1] = (struct gmem_region){
			.gpa = GMEM_HIGH_BASE, .size = size - low, .host = host + low };
		gm->nregions = 2;
	}
}

void *gmem_ptr(const struct gmem *gm, uint64_t gpa, uint64_t len)
{
	for (unsigned i = 0; i < gm->nregions; i++) {
		const struct gmem_region *r = &gm->region[i];
		if (gpa < r->gpa)
			continue;
		uint64_t off = gpa - r->gpa;
		/* off <= size and len <= size - off: no overflow possible. */
		if (off > r->size || len > r->size - off)
			continue;
		return r->host + off;
	}
	return NULL;
}

int gmem_read(const struct gmem *gm, void *dst, uint64_t gpa, uint64_t len)
{
	const void *src = gmem_ptr(gm, gpa, len);
	if (!src)
		return -EFAULT;
	memcpy(dst, src, len);
	return 0;
}

int gmem_write(const struct gmem *gm, uint64_t gpa, const void *src, uint64_t len)
{
	void *dst = gmem_ptr(gm, gpa, len);
	if (!dst)
		return -EFAULT;
	memcpy(dst, src, len);
	return 0;
}
