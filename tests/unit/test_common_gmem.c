/* tests/unit/test_common_gmem.c - the guest-memory object refuses every range
 * that is not wholly inside RAM. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "common/gmem.h"

static void test_inside_and_edges(void **state)
{
	(void)state;
	static uint8_t ram[4096];
	struct gmem gm;
	gmem_init_x86(&gm, ram, sizeof(ram));
	assert_ptr_equal(gmem_ptr(&gm, 0, 4096), ram);
	assert_ptr_equal(gmem_ptr(&gm, 4095, 1), ram + 4095);
	assert_ptr_equal(gmem_ptr(&gm, 4096, 0), ram + 4096);
	assert_null(gmem_ptr(&gm, 4096, 1));
	assert_null(gmem_ptr(&gm, 4095, 2));
	assert_null(gmem_ptr(&gm, UINT64_MAX, 2));
	assert_null(gmem_ptr(&gm, 1, UINT64_MAX));
}

static void test_split_around_hole(void **state)
{
	(void)state;
	/* Pretend 3 GiB + 4 KiB of RAM without touching it: only pointers are
	 * computed, never dereferenced. */
	uint8_t *fake = (uint8_t *)(uintptr_t)0x100000;
	struct gmem gm;
	gmem_init_x86(&gm, fake, GMEM_HOLE_START + 4096);
	assert_int_equal(gm.nregions, 2);
	assert_ptr_equal(gmem_ptr(&gm, GMEM_HIGH_BASE, 4096), fake + GMEM_HOLE_START);
	assert_null(gmem_ptr(&gm, GMEM_HOLE_START, 1));		/* in the hole */
	assert_null(gmem_ptr(&gm, GMEM_HOLE_START - 1, 2));	/* straddles */
	assert_null(gmem_ptr(&gm, GMEM_HIGH_BASE + 4096, 1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_inside_and_edges),
		cmocka_unit_test(test_split_around_hole),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
