/* tests/unit/test_devices_rng.c - virtio-rng through the pretend guest:
 * buffers come back full of bytes that differ between requests, a request
 * larger than VRNG_MAX_PER_REQUEST is served partially (the used length says
 * how much), and a hostile buffer breaks the device, not the host. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <linux/virtio_ids.h>

#include "devices/virtio/rng.h"
#include "tests/harness/virtio_driver.h"

struct fixture {
	struct vdrv d;
	struct vrng *r;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	assert_int_equal(vdrv_init(&f->d, 1 << 20), 0);
	f->r = vrng_create(&f->d.env, VIRTIO_MMIO_BASE);
	assert_non_null(f->r);
	assert_int_equal(vdrv_start(&f->d, &f->r->vdev), 0);
	assert_int_equal(vdrv_read32(&f->d, VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_RNG);
	assert_int_equal(vdrv_negotiate(&f->d, 1ULL << VIRTIO_F_VERSION_1, NULL), 0);
	assert_int_equal(vdrv_queue_setup(&f->d, 0, 8), 0);
	vdrv_driver_ok(&f->d);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	vrng_destroy(f->r);
	vdrv_fini(&f->d);
	free(f);
	return 0;
}

static void test_random_bytes(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(vdrv_post_rx(&f->d, 0, 2, 64), 2);
	vdrv_kick(&f->d, 0);
	vdrv_run(&f->d);
	void *a, *b;
	uint32_t la, lb;
	assert_int_equal(vdrv_used_buf(&f->d, 0, &a, &la), 1);
	assert_int_equal(vdrv_used_buf(&f->d, 0, &b, &lb), 1);
	assert_int_equal(la, 64);
	assert_int_equal(lb, 64);
	static const uint8_t zero[64];
	assert_memory_not_equal(a, zero, 64);
	assert_memory_not_equal(a, b, 64);
	assert_true(vdrv_irq(&f->d) > 0);
}

static void test_large_request_capped(void **state)
{
	struct fixture *f = *state;
	uint64_t g1 = vdrv_alloc(&f->d, VRNG_MAX_PER_REQUEST, 8);
	uint64_t g2 = vdrv_alloc(&f->d, 4096, 8);
	struct vdrv_buf bufs[] = { { g1, VRNG_MAX_PER_REQUEST, true }, { g2, 4096, true } };
	assert_true(vdrv_add(&f->d, 0, bufs, 2, 0) >= 0);
	vdrv_kick(&f->d, 0);
	vdrv_run(&f->d);
	uint32_t id, len;
	assert_int_equal(vdrv_used(&f->d, 0, &id, &len), 1);
	assert_int_equal(len, VRNG_MAX_PER_REQUEST);
}

static void test_hostile_buffer(void **state)
{
	struct fixture *f = *state;
	struct vdrv_buf b = { f->d.ram_size - 10, 64, true };
	assert_true(vdrv_add(&f->d, 0, &b, 1, 0) >= 0);
	vdrv_kick(&f->d, 0);
	vdrv_run(&f->d);
	uint32_t id, len;
	assert_int_equal(vdrv_used(&f->d, 0, &id, &len), 0);
	assert_true(vdrv_status(&f->d) & VIRTIO_CONFIG_S_NEEDS_RESET);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_random_bytes),
		T(test_large_request_capped),
		T(test_hostile_buffer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
