/* tests/unit/test_devices_virtqueue.c - the virtqueue walker and the
 * virtio-mmio transport, driven by the pretend guest (tests/harness).
 *
 * The device under test is a tiny "echo" device defined here: for every
 * chain it counts the readable bytes and fills the writable part with the
 * readable bytes repeated, then completes the chain with what it wrote.
 * Normal traffic (direct, indirect, event idx, interrupt suppression) must
 * work; every hostile ring or chain must leave the device visibly broken
 * (DEVICE_NEEDS_RESET, a configuration interrupt), with no used entry and
 * no crash; a reset must bring it back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/util.h"
#include "devices/virtio/mmio.h"
#include "tests/harness/virtio_driver.h"

#define FEAT(b) (1ULL << (b))
#define ALL_FEATURES (FEAT(VIRTIO_F_VERSION_1) | FEAT(VIRTIO_RING_F_INDIRECT_DESC) | \
		      FEAT(VIRTIO_RING_F_EVENT_IDX))

/* The echo device: queue 0, requests in, replies out. */
struct echo {
	struct vdev vdev;
	struct vq_chain chain;	/* the chain being worked on */
	bool hold;		/* pop but do not complete (reset-in-flight test) */
	bool holding;
	unsigned resets;
	uint64_t bytes_in;
};

static void echo_notify(struct vdev *dev, unsigned q)
{
	struct echo *e = container_of(dev, struct echo, vdev);
	struct virtqueue *vq = &dev->vq[q];
	if (e->holding)
		return;
	while (vq_pop(vq, &e->chain) > 0) {
		if (e->hold) {
			e->holding = true;
			return;
		}
		uint8_t in[256];
		size_t n = vq_chain_read(&e->chain, 0, in, sizeof(in));
		e->bytes_in += e->chain.read_len;
		size_t w = 0;
		while (n && w < e->chain.write_len)
			w += vq_chain_write(&e->chain, w, in, MIN(n, e->chain.write_len - w));
		assert_int_equal(vq_push(vq, &e->chain, (uint32_t)w), 0);
	}
	vdev_signal_used(dev, vq);
}

static void echo_reset(struct vdev *dev)
{
	struct echo *e = container_of(dev, struct echo, vdev);
	e->holding = false;
	e->resets++;
}

/* Snapshots: a held chain goes back to the ring; the device's own state
 * is its byte count. */
static int echo_save(struct vdev *dev, void *buf, size_t *len)
{
	struct echo *e = container_of(dev, struct echo, vdev);
	if (e->holding) {
		int r = vq_unpop(&dev->vq[0], &e->chain);
		if (r < 0)
			return r;
		e->holding = false;
	}
	memcpy(buf, &e->bytes_in, 8);
	*len = 8;
	return 0;
}

static int echo_load(struct vdev *dev, const void *buf, size_t len)
{
	struct echo *e = container_of(dev, struct echo, vdev);
	if (len != 8)
		return -EINVAL;
	memcpy(&e->bytes_in, buf, 8);
	return 0;
}

static const struct vdev_ops echo_ops = {
	.name = "echo", .device_id = 0x3ff, .nqueues = 1, .queue_max = 64,
	.notify = echo_notify, .reset = echo_reset, .save = echo_save, .load = echo_load,
};

struct fixture {
	struct vdrv d;
	struct echo e;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	assert_int_equal(vdrv_init(&f->d, 1 << 20), 0);
	assert_int_equal(vdev_init(&f->e.vdev, &echo_ops, &f->d.env, VIRTIO_MMIO_BASE), 0);
	assert_int_equal(vdrv_start(&f->d, &f->e.vdev), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	vdev_fini(&f->e.vdev);
	vdrv_fini(&f->d);
	free(f);
	return 0;
}

/* Negotiate features, one queue of 16, DRIVER_OK. */
static void bring_up(struct fixture *f, uint64_t features)
{
	assert_int_equal(vdrv_negotiate(&f->d, features, NULL), 0);
	assert_int_equal(vdrv_queue_setup(&f->d, 0, 16), 0);
	vdrv_driver_ok(&f->d);
}

static bool needs_reset(struct fixture *f)
{
	return vdrv_status(&f->d) & VIRTIO_CONFIG_S_NEEDS_RESET;
}

/* A request "ping" and a 16-byte reply buffer; returns the head. */
static int add_ping(struct fixture *f, unsigned flags, uint64_t *reply)
{
	uint64_t req = vdrv_alloc_copy(&f->d, "ping", 4);
	*reply = vdrv_alloc(&f->d, 16, 8);
	struct vdrv_buf b[] = { { req, 4, false }, { *reply, 16, true } };
	return vdrv_add(&f->d, 0, b, 2, flags);
}

/* After a hostile input: broken, config interrupt, nothing used. */
static void assert_broken(struct fixture *f, const char *why)
{
	uint32_t id, len;
	assert_true(needs_reset(f));
	assert_non_null(f->e.vdev.vq[0].broken_why);
	if (!strstr(f->e.vdev.vq[0].broken_why, why))
		fail_msg("broken for \"%s\", expected \"%s\"", f->e.vdev.vq[0].broken_why, why);
	assert_true(vdrv_irq(&f->d) > 0);
	assert_true(vdrv_isr_ack(&f->d) & VIRTIO_MMIO_INT_CONFIG);
	assert_int_equal(vdrv_used(&f->d, 0, &id, &len), 0);
	/* Further kicks do nothing and change nothing. */
	vdrv_kick(&f->d, 0);
	vdrv_run(&f->d);
	assert_int_equal(vdrv_used(&f->d, 0, &id, &len), 0);
	assert_true(needs_reset(f));
}

/* After a reset and a fresh bring-up, traffic flows again. */
static void assert_recovers(struct fixture *f)
{
	bring_up(f, ALL_FEATURES);
	assert_false(needs_reset(f));
	uint64_t reply;
	int head = add_ping(f, 0, &reply);
	assert_true(head >= 0);
	vdrv_kick(&f->d, 0);
	vdrv_run(&f->d);
	uint32_t id, len;
	assert_int_equal(vdrv_used(&f->d, 0, &id, &len), 1);
	assert_int_equal(id, (uint32_t)head);
	assert_int_equal(len, 16);
	assert_memory_equal(vdrv_host(&f->d, reply), "pingpingpingping", 16);
}

static void test_registers(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(vdrv_read32(&f->d, VIRTIO_MMIO_MAGIC_VALUE), VIRTIO_MMIO_MAGIC);
	assert_int_equal(vdrv_read32(&f->d, VIRTIO_MMIO_VERSION), 2);
	assert_int_equal(vdrv_read32(&f->d, VIRTIO_MMIO_DEVICE_ID), 0x3ff);
	vdrv_write32(&f->d, VIRTIO_MMIO_QUEUE_SEL, 0);
	assert_int_equal(vdrv_read32(&f->d, VIRTIO_MMIO_QUEUE_NUM_MAX), 64);
	vdrv_write32(&f->d, VIRTIO_MMIO_QUEUE_SEL, 1);	/* no such queue */
	assert_int_equal(vdrv_read32(&f->d, VIRTIO_MMIO_QUEUE_NUM_MAX), 0);
	char cmd[64];
	assert_int_equal(vdev_cmdline(&f->e.vdev, cmd, sizeof(cmd)), 0);
	assert_string_equal(cmd, "virtio_mmio.device=4K@0xd0000000:5");
}

static void test_features(void **state)
{
	struct fixture *f = *state;
	uint64_t got;
	assert_int_equal(vdrv_negotiate(&f->d, ALL_FEATURES | FEAT(40), &got), 0);
	assert_int_equal(got, ALL_FEATURES);
	/* Without VERSION_1, or with a bit never offered: FEATURES_OK refused. */
	assert_int_equal(vdrv_negotiate_raw(&f->d, FEAT(VIRTIO_RING_F_EVENT_IDX)), -EPROTO);
	assert_int_equal(vdrv_negotiate_raw(&f->d, FEAT(VIRTIO_F_VERSION_1) | FEAT(40)), -EPROTO);
}

static void test_normal_direct(void **state)
{
	struct fixture *f = *state;
	bring_up(f, FEAT(VIRTIO_F_VERSION_1));
	for (int round = 0; round < 40; round++) {	/* wraps the 16-entry ring */
		uint64_t reply;
		int head = add_ping(f, 0, &reply);
		assert_true(head >= 0);
		vdrv_kick(&f->d, 0);
		vdrv_run(&f->d);
		uint32_t id, len;
		assert_int_equal(vdrv_used(&f->d, 0, &id, &len), 1);
		assert_int_equal(id, (uint32_t)head);
		assert_int_equal(len, 16);
		assert_memory_equal(vdrv_host(&f->d, reply), "pingpingpingping", 16);
		assert_true(vdrv_irq(&f->d) > 0);
		assert_int_equal(vdrv_isr_ack(&f->d), VIRTIO_MMIO_INT_VRING);
	}
	assert_false(needs_reset(f));
}

static void test_normal_indirect_and_batch(void **state)
{
	struct fixture *f = *state;
	bring_up(f, ALL_FEATURES);
	/* Eight chains, alternately direct and indirect, one kick. */
	uint64_t reply[8];
	int head[8];
	for (int i = 0; i < 8; i++) {
		head[i] = add_ping(f, (i & 1) ? VDRV_INDIRECT : 0, &reply[i]);
		assert_true(head[i] >= 0);
	}
	vdrv_kick(&f->d, 0);
	vdrv_run(&f->d);
	for (int i = 0; i < 8; i++) {
		uint32_t id, len;
		assert_int_equal(vdrv_used(&f->d, 0, &id, &len), 1);
		assert_int_equal(id, (uint32_t)head[i]);
		assert_int_equal(len, 16);
		assert_memory_equal(vdrv_host(&f->d, reply[i]), "pingpingpingping", 16);
	}
	assert_int_equal(f->e.bytes_in, 8 * 4);
}

static void test_event_idx_suppression(void **state)
{
	struct fixture *f = *state;
	bring_up(f, ALL_FEATURES);
	/* used_event far away: the device must not interrupt. */
	vdrv_set_used_event(&f->d, 0, 100);
	uint64_t reply;
	add_ping(f, 0, &reply);
	vdrv_kick(&f->d, 0);
	vdrv_run(&f->d);
	uint32_t id, len;
	assert_int_equal(vdrv_used(&f->d, 0, &id, &len), 1);
	vdrv_irq(&f->d);	/* the very first push always interrupts */
	add_ping(f, 0, &reply);
	vdrv_kick(&f->d, 0);
	vdrv_run(&f->d);
	assert_int_equal(vdrv_used(&f->d, 0, &id, &len), 1);
	assert_int_equal(vdrv_irq(&f->d), 0);
	/* used_event = the next entry: interrupt. */
	vdrv_set_used_event(&f->d, 0, 2);
	add_ping(f, 0, &reply);
	vdrv_kick(&f->d, 0);
	vdrv_run(&f->d);
	assert_int_equal(vdrv_used(&f->d, 0, &id, &len), 1);
	assert_true(vdrv_irq(&f->d) > 0);
	/* The device asks to be kicked for the next buffer (avail_event). */
	assert_int_equal(vdrv_avail_event(&f->d, 0), 3);
	add_ping(f, 0, &reply);
	assert_true(vdrv_kick_needed(&f->d, 0));
}

static void test_no_interrupt_flag(void **state)
{
	struct fixture *f = *state;
	bring_up(f, FEAT(VIRTIO_F_VERSION_1));
	vdrv_set_avail_flags(&f->d, 0, VRING_AVAIL_F_NO_INTERRUPT);
	uint64_t reply;
	add_ping(f, 0, &reply);
	vdrv_kick(&f->d, 0);
	vdrv_run(&f->d);
	uint32_t id, len;
	assert_int_equal(vdrv_used(&f->d, 0, &id, &len), 1);
	assert_int_equal(vdrv_irq(&f->d), 0);
}

static void test_zero_length_buffers(void **state)
{
	struct fixture *f = *state;
	bring_up(f, ALL_FEATURES);
	/* Zero-length descriptors are accepted (even at a bogus address) and
	 * contribute nothing. */
	uint64_t req = vdrv_alloc_copy(&f->d, "ab", 2);
	uint64_t rsp = vdrv_alloc(&f->d, 4, 8);
	struct vdrv_buf b[] = {
		{ 0xdeadbeef000ULL, 0, false }, { req, 2, false },
		{ rsp, 4, true }, { 0xdeadbeef000ULL, 0, true },
	};
	int head = vdrv_add(&f->d, 0, b, 4, 0);
	vdrv_kick(&f->d, 0);
	vdrv_run(&f->d);
	uint32_t id, len;
	assert_int_equal(vdrv_used(&f->d, 0, &id, &len), 1);
	assert_int_equal(id, (uint32_t)head);
	assert_int_equal(len, 4);
	assert_memory_equal(vdrv_host(&f->d, rsp), "abab", 4);
	assert_false(needs_reset(f));
}

static void hostile_buf(void **state, uint64_t gpa, uint32_t len, unsigned flags,
			const char *why)
{
	struct fixture *f = *state;
	bring_up(f, ALL_FEATURES);
	uint64_t rsp = vdrv_alloc(&f->d, 16, 8);
	struct vdrv_buf b[] = { { gpa, len, false }, { rsp, 16, true } };
	assert_true(vdrv_add(&f->d, 0, b, 2, flags) >= 0);
	vdrv_kick(&f->d, 0);
	vdrv_run(&f->d);
	assert_broken(f, why);
	assert_recovers(f);
}

static void test_outside_ram(void **state)
{
	struct fixture *f = *state;
	hostile_buf(state, f->d.ram_size + 4096, 16, 0, "outside guest RAM");
}

static void test_straddles_end_of_ram(void **state)
{
	struct fixture *f = *state;
	hostile_buf(state, f->d.ram_size - 8, 16, 0, "outside guest RAM");
}

static void test_outside_ram_indirect(void **state)
{
	hostile_buf(state, 0xffffffffffff0000ULL, 0x20000, VDRV_INDIRECT, "outside guest RAM");
}

static void test_wrapping_address(void **state)
{
	hostile_buf(state, UINT64_MAX - 3, 16, 0, "outside guest RAM");
}

static void test_descriptor_loop(void **state)
{
	struct fixture *f = *state;
	bring_up(f, ALL_FEATURES);
	uint64_t buf = vdrv_alloc(&f->d, 16, 8);
	*vdrv_desc(&f->d, 0, 0) = (struct vring_desc){ buf, 16, VRING_DESC_F_NEXT, 1 };
	*vdrv_desc(&f->d, 0, 1) = (struct vring_desc){ buf, 16, VRING_DESC_F_NEXT, 0 };
	vdrv_avail_raw(&f->d, 0, 0);
	vdrv_kick(&f->d, 0);
	vdrv_run(&f->d);
	assert_broken(f, "chain longer");
	assert_recovers(f);
}

static void test_chain_longer_than_queue(void **state)
{
	struct fixture *f = *state;
	bring_up(f, ALL_FEATURES);
	/* All 16 descriptors chained, the last one back to the first: the
	 * walk must stop after 16. */
	uint64_t buf = vdrv_alloc(&f->d, 16, 8);
	for (uint16_t i = 0; i < 16; i++)
		*vdrv_desc(&f->d, 0, i) = (struct vring_desc){ buf, 16, VRING_DESC_F_NEXT,
							      (uint16_t)((i + 1) & 15) };
	vdrv_avail_raw(&f->d, 0, 0);
	vdrv_kick(&f->d, 0);
	vdrv_run(&f->d);
	assert_broken(f, "chain longer");
	assert_recovers(f);
}

static void test_head_out_of_range(void **state)
{
	struct fixture *f = *state;
	bring_up(f, ALL_FEATURES);
	vdrv_avail_raw(&f->d, 0, 16);
	vdrv_kick(&f->d, 0);
	vdrv_run(&f->d);
	assert_broken(f, "head index");
	/* A next index out of range. */
	bring_up(f, ALL_FEATURES);
	uint64_t buf = vdrv_alloc(&f->d, 16, 8);
	*vdrv_desc(&f->d, 0, 0) = (struct vring_desc){ buf, 16, VRING_DESC_F_NEXT, 999 };
	vdrv_avail_raw(&f->d, 0, 0);
	vdrv_kick(&f->d, 0);
	vdrv_run(&f->d);
	assert_broken(f, "next index out of range");
	assert_recovers(f);
}

static void test_readable_after_writable(void **state)
{
	struct fixture *f = *state;
	bring_up(f, ALL_FEATURES);
	uint64_t a = vdrv_alloc(&f->d, 16, 8), b2 = vdrv_alloc(&f->d, 16, 8);
	struct vdrv_buf b[] = { { a, 16, true }, { b2, 16, false } };
	vdrv_add(&f->d, 0, b, 2, 0);
	vdrv_kick(&f->d, 0);
	vdrv_run(&f->d);
	assert_broken(f, "readable descriptor after");
	assert_recovers(f);
}

static void test_nested_indirect(void **state)
{
	struct fixture *f = *state;
	bring_up(f, ALL_FEATURES);
	uint64_t inner = vdrv_alloc(&f->d, 16, 16);
	uint64_t buf = vdrv_alloc(&f->d, 16, 8);
	*(struct vring_desc *)vdrv_host(&f->d, inner) = (struct vring_desc){ buf, 16, 0, 0 };
	uint64_t outer = vdrv_alloc(&f->d, 16, 16);
	*(struct vring_desc *)vdrv_host(&f->d, outer) =
		(struct vring_desc){ inner, 16, VRING_DESC_F_INDIRECT, 0 };
	*vdrv_desc(&f->d, 0, 0) = (struct vring_desc){ outer, 16, VRING_DESC_F_INDIRECT, 0 };
	vdrv_avail_raw(&f->d, 0, 0);
	vdrv_kick(&f->d, 0);
	vdrv_run(&f->d);
	assert_broken(f, "nested indirect");
	assert_recovers(f);
}

static void test_indirect_bad_tables(void **state)
{
	struct fixture *f = *state;
	uint64_t buf;
	/* Table length not a multiple of 16. */
	bring_up(f, ALL_FEATURES);
	buf = vdrv_alloc(&f->d, 32, 16);
	*vdrv_desc(&f->d, 0, 0) = (struct vring_desc){ buf, 24, VRING_DESC_F_INDIRECT, 0 };
	vdrv_avail_raw(&f->d, 0, 0);
	vdrv_kick(&f->d, 0);
	vdrv_run(&f->d);
	assert_broken(f, "multiple of 16");
	/* Indirect used without negotiating it. */
	bring_up(f, FEAT(VIRTIO_F_VERSION_1));
	uint64_t rsp;
	add_ping(f, VDRV_INDIRECT, &rsp);
	vdrv_kick(&f->d, 0);
	vdrv_run(&f->d);
	assert_broken(f, "without the feature");
	/* A loop inside the table. */
	bring_up(f, ALL_FEATURES);
	buf = vdrv_alloc(&f->d, 16, 8);
	uint64_t t = vdrv_alloc(&f->d, 32, 16);
	struct vring_desc *td = vdrv_host(&f->d, t);
	td[0] = (struct vring_desc){ buf, 16, VRING_DESC_F_NEXT, 1 };
	td[1] = (struct vring_desc){ buf, 16, VRING_DESC_F_NEXT, 0 };
	*vdrv_desc(&f->d, 0, 0) = (struct vring_desc){ t, 32, VRING_DESC_F_INDIRECT, 0 };
	vdrv_avail_raw(&f->d, 0, 0);
	vdrv_kick(&f->d, 0);
	vdrv_run(&f->d);
	assert_broken(f, "loop in indirect");
	/* Indirect with NEXT set. */
	bring_up(f, ALL_FEATURES);
	t = vdrv_alloc(&f->d, 16, 16);
	*(struct vring_desc *)vdrv_host(&f->d, t) = (struct vring_desc){ buf, 16, 0, 0 };
	*vdrv_desc(&f->d, 0, 0) = (struct vring_desc){
		t, 16, VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT, 1 };
	*vdrv_desc(&f->d, 0, 1) = (struct vring_desc){ buf, 16, 0, 0 };
	vdrv_avail_raw(&f->d, 0, 0);
	vdrv_kick(&f->d, 0);
	vdrv_run(&f->d);
	assert_broken(f, "with NEXT");
	assert_recovers(f);
}

static void test_unaligned_indirect_table(void **state)
{
	struct fixture *f = *state;
	bring_up(f, ALL_FEATURES);
	/* The spec does not require an aligned indirect table: accept one. */
	uint64_t req = vdrv_alloc_copy(&f->d, "ping", 4), rsp = vdrv_alloc(&f->d, 16, 8);
	uint64_t t = vdrv_alloc(&f->d, 40, 16) + 3;
	struct vring_desc td[2] = { { req, 4, VRING_DESC_F_NEXT, 1 },
				    { rsp, 16, VRING_DESC_F_WRITE, 0 } };
	memcpy(vdrv_host(&f->d, t), td, sizeof(td));
	*vdrv_desc(&f->d, 0, 0) = (struct vring_desc){ t, 32, VRING_DESC_F_INDIRECT, 0 };
	vdrv_avail_raw(&f->d, 0, 0);
	vdrv_kick(&f->d, 0);
	vdrv_run(&f->d);
	uint32_t id, len;
	assert_int_equal(vdrv_used(&f->d, 0, &id, &len), 1);
	assert_int_equal(len, 16);
	assert_memory_equal(vdrv_host(&f->d, rsp), "pingpingpingping", 16);
}

static void test_avail_idx_runs_ahead(void **state)
{
	struct fixture *f = *state;
	bring_up(f, ALL_FEATURES);
	vdrv_set_avail_idx(&f->d, 0, 17);	/* 17 chains in a 16-entry ring */
	vdrv_kick(&f->d, 0);
	vdrv_run(&f->d);
	assert_broken(f, "available index");
	assert_recovers(f);
}

static void test_queue_size_refused(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(vdrv_negotiate(&f->d, ALL_FEATURES, NULL), 0);
	assert_int_equal(vdrv_queue_setup(&f->d, 0, 12), -EINVAL);	/* not a power of 2 */
	assert_int_equal(vdrv_queue_setup(&f->d, 0, 0), -EINVAL);
	assert_int_equal(vdrv_queue_setup(&f->d, 0, 128), -EINVAL);	/* above num_max */
	/* Misaligned rings and rings outside RAM. */
	assert_int_equal(vdrv_queue_setup_at(&f->d, 0, 16, 0x1008, 0x2000, 0x3000), -EINVAL);
	assert_int_equal(vdrv_queue_setup_at(&f->d, 0, 16, 0x1000, 0x2001, 0x3000), -EINVAL);
	assert_int_equal(vdrv_queue_setup_at(&f->d, 0, 16, 0x1000, 0x2000, 0x3002), -EINVAL);
	assert_int_equal(vdrv_queue_setup_at(&f->d, 0, 16, 0x1000, 0x2000,
					     f->d.ram_size - 64), -EINVAL);
	assert_int_equal(vdrv_queue_setup(&f->d, 0, 64), 0);
}

static void test_reset_mid_traffic(void **state)
{
	struct fixture *f = *state;
	bring_up(f, ALL_FEATURES);
	f->e.hold = true;	/* the device pops a chain and sits on it */
	uint64_t reply;
	add_ping(f, 0, &reply);
	add_ping(f, VDRV_INDIRECT, &reply);
	vdrv_kick(&f->d, 0);
	vdrv_run(&f->d);
	assert_true(f->e.holding);
	unsigned resets = f->e.resets;
	vdrv_reset(&f->d);
	assert_int_equal(vdrv_status(&f->d), 0);
	assert_int_equal(f->e.resets, resets + 1);
	/* The chain popped before the reset can no longer be completed. */
	assert_int_equal(vq_push(&f->e.vdev.vq[0], &f->e.chain, 4), -EINVAL);
	f->e.hold = false;
	assert_recovers(f);
	/* Exactly one used entry: nothing stale came back. */
	uint32_t id, len;
	assert_int_equal(vdrv_used(&f->d, 0, &id, &len), 0);
}

static void test_push_exactly_once(void **state)
{
	struct fixture *f = *state;
	bring_up(f, ALL_FEATURES);
	f->e.hold = true;
	uint64_t reply;
	add_ping(f, 0, &reply);
	vdrv_kick(&f->d, 0);
	vdrv_run(&f->d);
	struct virtqueue *vq = &f->e.vdev.vq[0];
	assert_int_equal(vq_push(vq, &f->e.chain, 1000), 0);
	assert_int_equal(vq_push(vq, &f->e.chain, 4), -EINVAL);
	uint32_t id, len;
	assert_int_equal(vdrv_used(&f->d, 0, &id, &len), 1);
	assert_int_equal(len, 16);	/* clamped to the writable length */
	assert_int_equal(vdrv_used(&f->d, 0, &id, &len), 0);
}

static void test_queue_disable_and_geometry_locked(void **state)
{
	struct fixture *f = *state;
	bring_up(f, ALL_FEATURES);
	/* Geometry writes to a live queue are ignored. */
	vdrv_write32(&f->d, VIRTIO_MMIO_QUEUE_SEL, 0);
	vdrv_write32(&f->d, VIRTIO_MMIO_QUEUE_NUM, 8);
	assert_int_equal(vdrv_read32(&f->d, VIRTIO_MMIO_QUEUE_NUM), 16);
	/* QueueReady = 0 stops the queue: kicks are ignored. */
	vdrv_write32(&f->d, VIRTIO_MMIO_QUEUE_READY, 0);
	uint64_t reply;
	add_ping(f, 0, &reply);
	vdrv_kick(&f->d, 0);
	vdrv_run(&f->d);
	uint32_t id, len;
	assert_int_equal(vdrv_used(&f->d, 0, &id, &len), 0);
	assert_false(needs_reset(f));
}

/* The device as a new process builds it for a restore: fresh, same slot. */
static void rebuild(struct fixture *f)
{
	vdev_fini(&f->e.vdev);
	memset(&f->e, 0, sizeof(f->e));
	assert_int_equal(vdev_init(&f->e.vdev, &echo_ops, &f->d.env, VIRTIO_MMIO_BASE), 0);
	assert_int_equal(vdrv_start(&f->d, &f->e.vdev), 0);
}

/* A device saved with a request in hand and one answered: restored into a
 * new device on the same guest memory, it answers the held request, keeps
 * its own state, and the driver's view (features, status, queue) is the
 * same. */
static void test_snapshot_round_trip(void **state)
{
	struct fixture *f = *state;
	static uint8_t buf[VDEV_DEVICE_STATE_MAX];
	bring_up(f, ALL_FEATURES);
	uint64_t r1, r2;
	add_ping(f, 0, &r1);
	vdrv_kick(&f->d, 0);
	vdrv_run(&f->d);
	uint32_t id, len;
	assert_int_equal(vdrv_used(&f->d, 0, &id, &len), 1);
	f->e.hold = true;
	int head = add_ping(f, 0, &r2);
	vdrv_kick(&f->d, 0);
	vdrv_run(&f->d);
	assert_true(f->e.holding);
	struct vdev_state st;
	size_t n;
	assert_int_equal(vdev_save(&f->e.vdev, &st, buf, &n), 0);
	assert_int_equal(n, 8);
	assert_int_equal(st.q[0].last_avail, 1);	/* the held one given back */
	assert_int_equal(st.q[0].used_idx, 1);
	uint32_t status = vdrv_status(&f->d);
	rebuild(f);
	assert_int_equal(vdev_load(&f->e.vdev, &st, buf, n), 0);
	assert_int_equal(f->e.bytes_in, 4);
	assert_int_equal(vdrv_status(&f->d), status);
	vdrv_write32(&f->d, VIRTIO_MMIO_QUEUE_SEL, 0);
	assert_int_equal(vdrv_read32(&f->d, VIRTIO_MMIO_QUEUE_NUM), 16);
	assert_int_equal(vdrv_read32(&f->d, VIRTIO_MMIO_QUEUE_READY), 1);
	vdev_resume(&f->e.vdev);	/* no kick: it looks by itself */
	vdrv_run(&f->d);
	assert_int_equal(vdrv_used(&f->d, 0, &id, &len), 1);
	assert_int_equal(id, (uint32_t)head);
	assert_memory_equal(vdrv_host(&f->d, r2), "pingpingpingping", 16);
	assert_int_equal(f->e.bytes_in, 8);
	/* and traffic goes on */
	add_ping(f, 0, &r1);
	vdrv_kick(&f->d, 0);
	vdrv_run(&f->d);
	assert_int_equal(vdrv_used(&f->d, 0, &id, &len), 1);
}

/* A chain the device holds and cannot give back makes the save refuse. */
static void test_snapshot_busy(void **state)
{
	struct fixture *f = *state;
	bring_up(f, ALL_FEATURES);
	f->e.hold = true;
	uint64_t r;
	add_ping(f, 0, &r);
	vdrv_kick(&f->d, 0);
	vdrv_run(&f->d);
	struct vq_chain other = f->e.chain;
	other.head ^= 1;	/* not the chain the ring holds at last_avail - 1 */
	assert_int_equal(vq_unpop(&f->e.vdev.vq[0], &other), -EINVAL);
	struct vdev_state st;
	assert_int_equal(vq_save(&f->e.vdev.vq[0], &(struct vq_indexes){ 0 }), -EBUSY);
	f->e.holding = false;	/* echo_save leaves it held: the queue is busy */
	static uint8_t buf[VDEV_DEVICE_STATE_MAX];
	size_t n;
	assert_int_equal(vdev_save(&f->e.vdev, &st, buf, &n), -EBUSY);
}

/* The transport states test_snapshot_refused tries, one by one. */
static const char *spoiled_name(int i)
{
	static const char *const names[] = {
		"another device", "more queues", "an unknown status bit",
		"a feature never offered", "an unknown interrupt bit",
		"a queue larger than its maximum", "a queue size not a power of two",
		"rings outside RAM", "misaligned rings", "a used index the ring does not hold",
		"a flag byte not 0 or 1", "a queue the device lacks", NULL,
	};
	return names[i];
}

static void spoil(struct vdev_state *s, int i)
{
	switch (i) {
	case 0: s->device_id = 1; break;
	case 1: s->nqueues = 2; break;
	case 2: s->status |= 0x10; break;
	case 3: s->driver_features |= 1ull << 40; break;
	case 4: s->isr |= 4; break;
	case 5: s->q[0].num = 128; break;
	case 6: s->q[0].num = 12; break;
	case 7: s->q[0].desc = 1ull << 40; break;
	case 8: s->q[0].used += 2; break;
	case 9: s->q[0].used_idx = 7; break;
	case 10: s->q[0].ready = 2; break;
	case 11: s->q[1].num = 16; break;
	}
}

/* States a device cannot be in are refused whole, and the device is left
 * as a new one. */
static void test_snapshot_refused(void **state)
{
	struct fixture *f = *state;
	static uint8_t buf[VDEV_DEVICE_STATE_MAX];
	bring_up(f, ALL_FEATURES);
	struct vdev_state good, st;
	size_t n;
	assert_int_equal(vdev_save(&f->e.vdev, &good, buf, &n), 0);
	rebuild(f);
	for (int i = 0; spoiled_name(i); i++) {
		st = good;
		spoil(&st, i);
		if (vdev_load(&f->e.vdev, &st, buf, n) != -EINVAL)
			fail_msg("loaded %s", spoiled_name(i));
		assert_int_equal(vdrv_status(&f->d), 0);
		vdrv_write32(&f->d, VIRTIO_MMIO_QUEUE_SEL, 0);
		assert_int_equal(vdrv_read32(&f->d, VIRTIO_MMIO_QUEUE_READY), 0);
	}
	assert_int_equal(vdev_load(&f->e.vdev, &good, buf, 7), -EINVAL);	/* the device's part */
	assert_int_equal(vdev_load(&f->e.vdev, &good, buf, n), 0);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_registers),
		T(test_features),
		T(test_normal_direct),
		T(test_normal_indirect_and_batch),
		T(test_event_idx_suppression),
		T(test_no_interrupt_flag),
		T(test_zero_length_buffers),
		T(test_outside_ram),
		T(test_straddles_end_of_ram),
		T(test_outside_ram_indirect),
		T(test_wrapping_address),
		T(test_descriptor_loop),
		T(test_chain_longer_than_queue),
		T(test_head_out_of_range),
		T(test_readable_after_writable),
		T(test_nested_indirect),
		T(test_indirect_bad_tables),
		T(test_unaligned_indirect_table),
		T(test_avail_idx_runs_ahead),
		T(test_queue_size_refused),
		T(test_reset_mid_traffic),
		T(test_push_exactly_once),
		T(test_queue_disable_and_geometry_locked),
		T(test_snapshot_round_trip),
		T(test_snapshot_busy),
		T(test_snapshot_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
