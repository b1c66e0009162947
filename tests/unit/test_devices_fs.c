/* tests/unit/test_devices_fs.c - virtio-fs and virtio-9p devices driven by
 * the pretend guest driver (tests/harness/virtio_driver): config space
 * carries the tag, FUSE and 9P requests split over several descriptors are
 * answered with replies of the right length, requests without room for a
 * reply are completed with 0 bytes, and a device reset starts a new FUSE
 * session (a second INIT works).
 *
 * The server runs file I/O on the device loop's io_uring, as in the VMM:
 * a READ stays in flight while the loop turns, then its chain is pushed
 * with the right length and the guest interrupted; more requests than the
 * device has contexts all complete, each exactly once, without a second
 * kick; a reset or a destroy with requests in flight is safe (run under
 * ASan by the unit-asan tier). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <fcntl.h>
#include <linux/fuse.h>
#include <linux/virtio_ids.h>
#include <unistd.h>

#include "devices/virtio/9p.h"
#include "devices/virtio/fs.h"
#include "fs9p/core.h"
#include "tests/harness/fs9p_msg.h"
#include "tests/harness/virtio_driver.h"

struct fx {
	struct vdrv d;
	char *dir;
	struct fs_server *srv;
	struct vfs_dev *fs;
	struct v9p_dev *p9;
};

static int setup_common(struct fx *f)
{
	f->dir = fs_test_tmpdir();
	assert_non_null(f->dir);
	char p[4096];
	snprintf(p, sizeof(p), "%s/hello", f->dir);
	int fd = open(p, O_CREAT | O_WRONLY, 0644);
	assert_int_equal(write(fd, "hello virtio", 12), 12);
	close(fd);
	struct fs_opts o;
	fs_opts_default(&o);
	assert_int_equal(fs_server_new(f->dir, &o, &f->srv), 0);
	assert_int_equal(vdrv_init(&f->d, 8 << 20), 0);
	assert_int_equal(fs_server_attach_loop(f->srv, &f->d.loop), 0);
	/* Cached data would be read at once (RWF_NOWAIT): take the io_uring
	 * path every time, as a read from a cold disk does. */
	f->srv->aio_no_try = true;
	return 0;
}

/* Run the loop until no file I/O is in flight and nothing else happens. */
static void settle(struct fx *f)
{
	for (int i = 0; i < 500 && fs_server_inflight(f->srv); i++)
		loop_run_once(&f->d.loop, 10000000ULL);
	assert_int_equal(fs_server_inflight(f->srv), 0);
	vdrv_run(&f->d);
}

/* Turn the loop until the device has started n requests that wait for
 * io_uring (their completions are handled one turn later at the
 * earliest). */
static void run_until_inflight(struct fx *f, unsigned n)
{
	for (int i = 0; i < 500 && fs_server_inflight(f->srv) < n; i++)
		loop_run_once(&f->d.loop, 10000000ULL);
	assert_int_equal(fs_server_inflight(f->srv), n);
}

static void fs_bring_up(struct fx *f, uint64_t features, uint16_t qsize)
{
	uint64_t got = 0;
	assert_int_equal(vdrv_negotiate(&f->d, (1ULL << VIRTIO_F_VERSION_1) | features, &got), 0);
	assert_int_equal(got & features, features);
	assert_int_equal(vdrv_queue_setup(&f->d, 0, 16), 0);
	assert_int_equal(vdrv_queue_setup(&f->d, 1, qsize), 0);
	vdrv_driver_ok(&f->d);
}

static struct fx *fs_fixture(void)
{
	struct fx *f = calloc(1, sizeof(*f));
	assert_int_equal(setup_common(f), 0);
	f->fs = vfs_create(&f->d.env, VIRTIO_MMIO_BASE, f->srv, "share");
	assert_non_null(f->fs);
	assert_int_equal(vdrv_start(&f->d, &f->fs->vdev), 0);
	assert_int_equal(vdrv_read32(&f->d, VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_FS);
	return f;
}

static int setup_fs(void **state)
{
	struct fx *f = fs_fixture();
	fs_bring_up(f, 0, 16);
	*state = f;
	return 0;
}

/* Event idx (suppression of kicks) and indirect descriptors (one ring
 * slot per chain, so a 128-entry queue holds more chains than the device
 * has contexts). */
static int setup_fs_ring(void **state)
{
	struct fx *f = fs_fixture();
	fs_bring_up(f, (1ULL << VIRTIO_RING_F_EVENT_IDX) | (1ULL << VIRTIO_RING_F_INDIRECT_DESC),
		    VFS_QUEUE_SIZE);
	*state = f;
	return 0;
}

static void p9_bring_up(struct fx *f)
{
	uint64_t got = 0;
	assert_int_equal(vdrv_negotiate(&f->d, (1ULL << VIRTIO_F_VERSION_1) | 1, &got), 0);
	assert_true(got & 1);	/* VIRTIO_9P_MOUNT_TAG */
	assert_int_equal(vdrv_queue_setup(&f->d, 0, 64), 0);
	vdrv_driver_ok(&f->d);
}

static int setup_9p(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	assert_int_equal(setup_common(f), 0);
	f->p9 = v9p_create(&f->d.env, VIRTIO_MMIO_BASE, f->srv, "tag9");
	assert_non_null(f->p9);
	assert_int_equal(vdrv_start(&f->d, &f->p9->vdev), 0);
	assert_int_equal(vdrv_read32(&f->d, VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_9P);
	p9_bring_up(f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	vfs_destroy(f->fs);
	v9p_destroy(f->p9);
	vdrv_fini(&f->d);
	fs_server_free(f->srv);
	fs_test_rmrf(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

/* Send a request split in two readable descriptors with a reply buffer of
 * rlen bytes split in two; returns the used length, reply copied to out. */
static uint32_t roundtrip(struct fx *f, unsigned q, const void *req, uint32_t len, uint32_t rlen,
			  uint8_t *out)
{
	uint32_t cut = len / 2;
	uint64_t a = vdrv_alloc_copy(&f->d, req, cut);
	uint64_t b = vdrv_alloc_copy(&f->d, (const uint8_t *)req + cut, len - cut);
	uint64_t r = vdrv_alloc(&f->d, rlen, 8);
	uint32_t r1 = rlen / 3;
	struct vdrv_buf bufs[4] = {
		{ a, cut, false }, { b, len - cut, false },
		{ r, r1, true }, { r + r1, rlen - r1, true },
	};
	unsigned n = 4;
	if (rlen == 0)
		n = 2;
	int head = vdrv_add(&f->d, q, bufs, n, 0);
	assert_true(head >= 0);
	vdrv_kick(&f->d, q);
	settle(f);
	uint32_t id, used;
	assert_int_equal(vdrv_used(&f->d, q, &id, &used), 1);
	assert_int_equal(id, (uint32_t)head);
	if (out && used)
		memcpy(out, vdrv_host(&f->d, r), used);
	return used;
}

static uint32_t fuse_req(uint8_t *buf, uint32_t opcode, uint64_t node, const void *body, uint32_t blen)
{
	struct fuse_in_header h = { .len = (uint32_t)sizeof(h) + blen, .opcode = opcode,
				    .unique = 77, .nodeid = node };
	memcpy(buf, &h, sizeof(h));
	if (blen)
		memcpy(buf + sizeof(h), body, blen);
	return h.len;
}

static void fuse_init_over_queue(struct fx *f)
{
	uint8_t req[256], out[512];
	struct fuse_init_in in = { .major = 7, .minor = 38, .max_readahead = 65536 };
	uint32_t len = fuse_req(req, FUSE_INIT, 0, &in, sizeof(in));
	uint32_t used = roundtrip(f, 1, req, len, sizeof(out), out);
	assert_int_equal(used, sizeof(struct fuse_out_header) + sizeof(struct fuse_init_out));
	struct fuse_out_header oh;
	memcpy(&oh, out, sizeof(oh));
	assert_int_equal(oh.error, 0);
	assert_int_equal(oh.unique, 77);
}

/* LOOKUP and OPEN "hello" (12 bytes) over request queue 1. */
static void fuse_open_hello(struct fx *f, struct fuse_entry_out *e, struct fuse_open_out *oo)
{
	uint8_t req[256], out[4096];
	uint32_t len = fuse_req(req, FUSE_LOOKUP, 1, "hello", 6);
	uint32_t used = roundtrip(f, 1, req, len, sizeof(out), out);
	assert_int_equal(used, sizeof(struct fuse_out_header) + sizeof(struct fuse_entry_out));
	memcpy(e, out + sizeof(struct fuse_out_header), sizeof(*e));
	assert_int_equal(e->attr.size, 12);
	struct fuse_open_in oi = { .flags = O_RDONLY };
	len = fuse_req(req, FUSE_OPEN, e->nodeid, &oi, sizeof(oi));
	used = roundtrip(f, 1, req, len, sizeof(out), out);
	assert_int_equal(used, sizeof(struct fuse_out_header) + sizeof(struct fuse_open_out));
	memcpy(oo, out + sizeof(struct fuse_out_header), sizeof(*oo));
}

static void test_virtiofs_requests(void **state)
{
	struct fx *f = *state;
	struct virtio_fs_config cfg;
	for (unsigned i = 0; i < sizeof(cfg); i += 4)
		vdrv_cfg_read(&f->d, i, (uint8_t *)&cfg + i, 4);
	assert_memory_equal(cfg.tag, "share", 5);
	assert_int_equal(cfg.num_request_queues, 1);
	fuse_init_over_queue(f);

	uint8_t req[256], out[4096];
	struct fuse_entry_out e;
	struct fuse_open_out oo;
	fuse_open_hello(f, &e, &oo);
	struct fuse_read_in ri = { .fh = oo.fh, .size = 100 };
	uint32_t len = fuse_req(req, FUSE_READ, e.nodeid, &ri, sizeof(ri));
	uint32_t used = roundtrip(f, 1, req, len, sizeof(out), out);
	assert_int_equal(used, sizeof(struct fuse_out_header) + 12);
	assert_memory_equal(out + sizeof(struct fuse_out_header), "hello virtio", 12);

	/* FORGET on the hiprio queue, without reply room as Linux sends it:
	 * completed with nothing written, and served (the lookup's reference
	 * is dropped once the open handle is released). */
	struct fuse_release_in rl = { .fh = oo.fh };
	len = fuse_req(req, FUSE_RELEASE, e.nodeid, &rl, sizeof(rl));
	roundtrip(f, 1, req, len, sizeof(out), out);
	struct fs_stats st;
	fs_get_stats(f->srv, &st);
	unsigned before = st.inodes;
	struct fuse_forget_in fi = { .nlookup = 1 };
	len = fuse_req(req, FUSE_FORGET, e.nodeid, &fi, sizeof(fi));
	assert_int_equal(roundtrip(f, 0, req, len, 0, NULL), 0);
	fs_get_stats(f->srv, &st);
	assert_int_equal(st.inodes, before - 1);
	/* A request with no reply buffer at all: completed with 0 bytes. */
	len = fuse_req(req, FUSE_GETATTR, 1, NULL, 0);
	assert_int_equal(roundtrip(f, 1, req, len, 0, NULL), 0);
	/* A truncated header: an error reply of header length. */
	used = roundtrip(f, 1, req, 20, sizeof(out), out);
	assert_int_equal(used, sizeof(struct fuse_out_header));
	assert_true(vdrv_irq(&f->d) > 0);
}

static void test_virtiofs_reset_new_session(void **state)
{
	struct fx *f = *state;
	fuse_init_over_queue(f);
	vdrv_reset(&f->d);
	assert_int_equal(vdrv_negotiate(&f->d, 1ULL << VIRTIO_F_VERSION_1, NULL), 0);
	assert_int_equal(vdrv_queue_setup(&f->d, 0, 16), 0);
	assert_int_equal(vdrv_queue_setup(&f->d, 1, 16), 0);
	vdrv_driver_ok(&f->d);
	fuse_init_over_queue(f);	/* a second INIT after reset is served */
}

/* Tversion, Tattach (fid 1), Twalk to "hello" (fid 2), Tlopen fid 2. */
static void p9_open_hello(struct fx *f)
{
	static const uint8_t version[] = { 21, 0, 0, 0, 100, 0xff, 0xff, 0, 0, 1, 0,
					   8, 0, '9', 'P', '2', '0', '0', '0', '.', 'L' };
	uint8_t out[4096];
	uint32_t used = roundtrip(f, 0, version, sizeof(version), sizeof(out), out);
	assert_int_equal(used, 21);
	assert_int_equal(out[4], 101);
	static const uint8_t attach[] = { 23, 0, 0, 0, 104, 1, 0, 1, 0, 0, 0, 0xff, 0xff, 0xff,
					  0xff, 0, 0, 0, 0, 0, 0, 0, 0 };
	used = roundtrip(f, 0, attach, sizeof(attach), sizeof(out), out);
	assert_int_equal(used, 20);
	assert_int_equal(out[4], 105);
	static const uint8_t walk[] = { 24, 0, 0, 0, 110, 2, 0, 1, 0, 0, 0, 2, 0, 0, 0, 1, 0,
					5, 0, 'h', 'e', 'l', 'l', 'o' };
	roundtrip(f, 0, walk, sizeof(walk), sizeof(out), out);
	assert_int_equal(out[4], 111);
	static const uint8_t lopen[] = { 15, 0, 0, 0, 12, 3, 0, 2, 0, 0, 0, 0, 0, 0, 0 };
	roundtrip(f, 0, lopen, sizeof(lopen), sizeof(out), out);
	assert_int_equal(out[4], 13);
}

static void test_virtio9p_requests(void **state)
{
	struct fx *f = *state;
	uint8_t cfg[8];
	for (unsigned i = 0; i < sizeof(cfg); i += 4)
		vdrv_cfg_read(&f->d, i, cfg + i, 4);
	assert_int_equal(cfg[0] | cfg[1] << 8, 4);
	assert_memory_equal(cfg + 2, "tag9", 4);

	p9_open_hello(f);
	uint8_t out[4096];
	static const uint8_t rd[] = { 23, 0, 0, 0, 116, 4, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0,
				      0, 0, 100, 0, 0, 0 };
	uint32_t used = roundtrip(f, 0, rd, sizeof(rd), sizeof(out), out);
	assert_int_equal(out[4], 117);
	assert_int_equal(used, 11 + 12);
	assert_memory_equal(out + 11, "hello virtio", 12);
	/* A reply buffer too small for anything: completed with 0 bytes. */
	assert_int_equal(roundtrip(f, 0, rd, sizeof(rd), 8, out), 0);
}

/* ---- file I/O in flight ------------------------------------------------ */

#define MANY 100	/* chains posted at once: more than VFS_SLOTS (64) */
#define OUT_HDR sizeof(struct fuse_out_header)

/* One posted request: its head and where the reply goes. */
struct posted {
	int head;
	uint64_t rep;
	bool done;
};

/* Post (no kick) a FUSE READ of 100 bytes of "hello" at off: request and
 * reply room in one descriptor each, in an indirect table when asked. */
static struct posted post_read(struct fx *f, const struct fuse_entry_out *e,
			       const struct fuse_open_out *oo, uint64_t off, uint64_t unique,
			       unsigned flags)
{
	uint8_t req[128];
	struct fuse_read_in ri = { .fh = oo->fh, .offset = off, .size = 100 };
	uint32_t len = fuse_req(req, FUSE_READ, e->nodeid, &ri, sizeof(ri));
	memcpy(req + offsetof(struct fuse_in_header, unique), &unique, sizeof(unique));
	struct posted p = { .rep = vdrv_alloc(&f->d, OUT_HDR + 100, 8) };
	struct vdrv_buf b[2] = { { vdrv_alloc_copy(&f->d, req, len), len, false },
				 { p.rep, OUT_HDR + 100, true } };
	p.head = vdrv_add(&f->d, 1, b, 2, flags);
	assert_true(p.head >= 0);
	return p;
}

/* Take every used entry of queue q: each must name a posted chain not
 * completed before, with the reply of READ number i (at offset i % 12). */
static unsigned take_reads(struct fx *f, unsigned q, struct posted *p, unsigned n,
			   uint64_t unique0)
{
	uint32_t id, used;
	unsigned got = 0;
	while (vdrv_used(&f->d, q, &id, &used) == 1) {
		unsigned i = 0;
		while (i < n && (uint32_t)p[i].head != id)
			i++;
		assert_true(i < n);
		assert_false(p[i].done);	/* completed exactly once */
		p[i].done = true;
		size_t want = 12 - i % 12;
		assert_int_equal(used, OUT_HDR + want);
		struct fuse_out_header oh;
		memcpy(&oh, vdrv_host(&f->d, p[i].rep), sizeof(oh));
		assert_int_equal(oh.error, 0);
		assert_int_equal(oh.unique, unique0 + i);
		assert_memory_equal((uint8_t *)vdrv_host(&f->d, p[i].rep) + OUT_HDR,
				    "hello virtio" + i % 12, want);
		got++;
	}
	return got;
}

static void test_virtiofs_read_completes_later(void **state)
{
	struct fx *f = *state;
	fuse_init_over_queue(f);
	struct fuse_entry_out e;
	struct fuse_open_out oo;
	fuse_open_hello(f, &e, &oo);
	vdrv_irq(&f->d);	/* forget earlier interrupts */
	struct posted p = post_read(f, &e, &oo, 0, 500, 0);
	vdrv_kick(&f->d, 1);
	run_until_inflight(f, 1);
	uint32_t id, used;
	/* Waiting for io_uring: nothing in the used ring, no interrupt. */
	assert_int_equal(vdrv_used(&f->d, 1, &id, &used), 0);
	assert_int_equal(vdrv_irq(&f->d), 0);
	settle(f);
	assert_true(vdrv_irq(&f->d) > 0);
	assert_int_equal(take_reads(f, 1, &p, 1, 500), 1);
}

static void test_virtiofs_more_requests_than_contexts(void **state)
{
	struct fx *f = *state;
	fuse_init_over_queue(f);
	struct fuse_entry_out e;
	struct fuse_open_out oo;
	fuse_open_hello(f, &e, &oo);
	uint16_t ev0 = vdrv_avail_event(&f->d, 1);
	static struct posted p[MANY];
	for (unsigned i = 0; i < MANY; i++)
		p[i] = post_read(f, &e, &oo, i % 12, 1000 + i, VDRV_INDIRECT);
	vdrv_kick(&f->d, 1);	/* one kick for all of them */
	run_until_inflight(f, VFS_SLOTS);
	/* Every context waits: the rest stays in the ring (the device asked
	 * for a kick after the last chain it took). */
	assert_int_equal((uint16_t)(vdrv_avail_event(&f->d, 1) - ev0), VFS_SLOTS);
	uint32_t id, used;
	assert_int_equal(vdrv_used(&f->d, 1, &id, &used), 0);
	/* Completions free contexts, which take the waiting chains with no
	 * further kick. */
	settle(f);
	assert_int_equal(take_reads(f, 1, p, MANY, 1000), MANY);
	assert_true(vdrv_irq(&f->d) > 0);
	assert_int_equal((uint16_t)(vdrv_avail_event(&f->d, 1) - ev0), MANY);
}

static void test_virtiofs_reset_with_reads_in_flight(void **state)
{
	struct fx *f = *state;
	fuse_init_over_queue(f);
	struct fuse_entry_out e;
	struct fuse_open_out oo;
	fuse_open_hello(f, &e, &oo);
	for (unsigned i = 0; i < 8; i++)
		post_read(f, &e, &oo, i, 2000 + i, 0);
	vdrv_kick(&f->d, 1);
	run_until_inflight(f, 8);
	vdrv_reset(&f->d);
	fs_bring_up(f, 0, 16);
	/* New traffic on the new rings: the old chains never show up there
	 * (roundtrip checks each used entry is the chain just sent). */
	fuse_init_over_queue(f);
	fuse_open_hello(f, &e, &oo);
	struct posted p = post_read(f, &e, &oo, 0, 3000, 0);
	vdrv_kick(&f->d, 1);
	settle(f);
	assert_int_equal(take_reads(f, 1, &p, 1, 3000), 1);
}

static void test_virtiofs_destroy_with_reads_in_flight(void **state)
{
	struct fx *f = *state;
	fuse_init_over_queue(f);
	struct fuse_entry_out e;
	struct fuse_open_out oo;
	fuse_open_hello(f, &e, &oo);
	struct posted p[8];
	for (unsigned i = 0; i < 8; i++)
		p[i] = post_read(f, &e, &oo, i, 4000 + i, 0);
	vdrv_kick(&f->d, 1);
	run_until_inflight(f, 8);
	vfs_destroy(f->fs);	/* lets the reads finish first */
	f->fs = NULL;
	assert_int_equal(fs_server_inflight(f->srv), 0);
	assert_int_equal(take_reads(f, 1, p, 8, 4000), 8);
}

/* A snapshot taken with READs in flight: the save completes them first
 * (each chain in the used ring with its bytes, the ISR set for the
 * restore to raise again), where the queues alone would refuse to save a
 * chain still held ("requests in flight"). */
static void test_virtiofs_save_with_reads_in_flight(void **state)
{
	struct fx *f = *state;
	fuse_init_over_queue(f);
	struct fuse_entry_out e;
	struct fuse_open_out oo;
	fuse_open_hello(f, &e, &oo);
	vdrv_irq(&f->d);	/* forget earlier interrupts */
	struct posted p[4];
	for (unsigned i = 0; i < 4; i++)
		p[i] = post_read(f, &e, &oo, i, 5000 + i, 0);
	vdrv_kick(&f->d, 1);
	run_until_inflight(f, 4);
	struct vdev_state vs;
	static uint8_t buf[VDEV_DEVICE_STATE_MAX];
	size_t len = 0;
	assert_int_equal(vdev_save(&f->fs->vdev, &vs, buf, &len), 0);
	assert_int_equal(fs_server_inflight(f->srv), 0);
	assert_true(len > 0);			/* the server's table */
	assert_true(vs.isr & 1);		/* used-buffer interrupt pending */
	assert_int_equal(vs.q[1].used_idx, vs.q[1].last_avail);	/* nothing held */
	assert_int_equal(take_reads(f, 1, p, 4, 5000), 4);
}

/* 9P: post (no kick) a Tread of 100 bytes of fid 2 at off, tag tag. */
static struct posted post_tread(struct fx *f, uint16_t tag, uint64_t off)
{
	uint8_t m[23] = { 23, 0, 0, 0, 116, (uint8_t)tag, (uint8_t)(tag >> 8), 2, 0, 0, 0 };
	for (int i = 0; i < 8; i++)
		m[11 + i] = (uint8_t)(off >> (8 * i));
	m[19] = 100;
	struct posted p = { .rep = vdrv_alloc(&f->d, 11 + 100, 8) };
	struct vdrv_buf b[2] = { { vdrv_alloc_copy(&f->d, m, sizeof(m)), sizeof(m), false },
				 { p.rep, 11 + 100, true } };
	p.head = vdrv_add(&f->d, 0, b, 2, 0);
	assert_true(p.head >= 0);
	return p;
}

/* Every used entry: a posted Tread not completed before, answered with
 * Rread of tag 100 + i and the bytes at offset i % 12. */
static unsigned take_treads(struct fx *f, struct posted *p, unsigned n)
{
	uint32_t id, used;
	unsigned got = 0;
	while (vdrv_used(&f->d, 0, &id, &used) == 1) {
		unsigned i = 0;
		while (i < n && (uint32_t)p[i].head != id)
			i++;
		assert_true(i < n);
		assert_false(p[i].done);
		p[i].done = true;
		const uint8_t *r = vdrv_host(&f->d, p[i].rep);
		size_t want = 12 - i % 12;
		assert_int_equal(used, 11 + want);
		assert_int_equal(r[4], 117);	/* Rread */
		assert_int_equal(r[5] | r[6] << 8, 100 + i);
		assert_memory_equal(r + 11, "hello virtio" + i % 12, want);
		got++;
	}
	return got;
}

static void test_virtio9p_more_reads_than_contexts(void **state)
{
	struct fx *f = *state;
	p9_open_hello(f);
	vdrv_irq(&f->d);
	struct posted p[12];
	for (unsigned i = 0; i < 12; i++)
		p[i] = post_tread(f, (uint16_t)(100 + i), i % 12);
	vdrv_kick(&f->d, 0);
	run_until_inflight(f, V9P_SLOTS);
	uint32_t id, used;
	assert_int_equal(vdrv_used(&f->d, 0, &id, &used), 0);
	assert_int_equal(vdrv_irq(&f->d), 0);
	settle(f);
	assert_int_equal(take_treads(f, p, 12), 12);
	assert_true(vdrv_irq(&f->d) > 0);
}

static void test_virtio9p_reset_with_reads_in_flight(void **state)
{
	struct fx *f = *state;
	p9_open_hello(f);
	for (unsigned i = 0; i < V9P_SLOTS; i++)
		post_tread(f, (uint16_t)(100 + i), i);
	vdrv_kick(&f->d, 0);
	run_until_inflight(f, V9P_SLOTS);
	vdrv_reset(&f->d);
	p9_bring_up(f);
	p9_open_hello(f);	/* a new session: Tversion, Tattach... again */
	struct posted p = post_tread(f, 100, 0);
	vdrv_kick(&f->d, 0);
	settle(f);
	assert_int_equal(take_treads(f, &p, 1), 1);
}

static void test_virtio9p_destroy_with_reads_in_flight(void **state)
{
	struct fx *f = *state;
	p9_open_hello(f);
	struct posted p[V9P_SLOTS + 2];
	for (unsigned i = 0; i < V9P_SLOTS + 2; i++)
		p[i] = post_tread(f, (uint16_t)(100 + i), i);
	vdrv_kick(&f->d, 0);
	run_until_inflight(f, V9P_SLOTS);
	v9p_destroy(f->p9);
	f->p9 = NULL;
	assert_int_equal(fs_server_inflight(f->srv), 0);
	/* What was started completed; what waited in the ring stays there. */
	assert_int_equal(take_treads(f, p, V9P_SLOTS + 2), V9P_SLOTS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_virtiofs_requests, setup_fs, teardown),
		cmocka_unit_test_setup_teardown(test_virtiofs_reset_new_session, setup_fs, teardown),
		cmocka_unit_test_setup_teardown(test_virtio9p_requests, setup_9p, teardown),
		cmocka_unit_test_setup_teardown(test_virtiofs_read_completes_later, setup_fs, teardown),
		cmocka_unit_test_setup_teardown(test_virtiofs_more_requests_than_contexts,
						setup_fs_ring, teardown),
		cmocka_unit_test_setup_teardown(test_virtiofs_reset_with_reads_in_flight, setup_fs,
						teardown),
		cmocka_unit_test_setup_teardown(test_virtiofs_save_with_reads_in_flight, setup_fs,
						teardown),
		cmocka_unit_test_setup_teardown(test_virtiofs_destroy_with_reads_in_flight, setup_fs,
						teardown),
		cmocka_unit_test_setup_teardown(test_virtio9p_more_reads_than_contexts, setup_9p,
						teardown),
		cmocka_unit_test_setup_teardown(test_virtio9p_reset_with_reads_in_flight, setup_9p,
						teardown),
		cmocka_unit_test_setup_teardown(test_virtio9p_destroy_with_reads_in_flight, setup_9p,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
