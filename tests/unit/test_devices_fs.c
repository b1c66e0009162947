/* tests/unit/test_devices_fs.c - virtio-fs and virtio-9p devices driven by
 * the pretend guest driver (tests/harness/virtio_driver): config space
 * carries the tag, FUSE and 9P requests split over several descriptors are
 * answered with replies of the right length, requests without room for a
 * reply are completed with 0 bytes, and a device reset starts a new FUSE
 * session (a second INIT works). */
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
	return vdrv_init(&f->d, 8 << 20);
}

static int setup_fs(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	assert_int_equal(setup_common(f), 0);
	f->fs = vfs_create(&f->d.env, VIRTIO_MMIO_BASE, f->srv, "share");
	assert_non_null(f->fs);
	assert_int_equal(vdrv_start(&f->d, &f->fs->vdev), 0);
	assert_int_equal(vdrv_read32(&f->d, VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_FS);
	assert_int_equal(vdrv_negotiate(&f->d, 1ULL << VIRTIO_F_VERSION_1, NULL), 0);
	assert_int_equal(vdrv_queue_setup(&f->d, 0, 16), 0);
	assert_int_equal(vdrv_queue_setup(&f->d, 1, 16), 0);
	vdrv_driver_ok(&f->d);
	*state = f;
	return 0;
}

static int setup_9p(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	assert_int_equal(setup_common(f), 0);
	f->p9 = v9p_create(&f->d.env, VIRTIO_MMIO_BASE, f->srv, "tag9");
	assert_non_null(f->p9);
	assert_int_equal(vdrv_start(&f->d, &f->p9->vdev), 0);
	assert_int_equal(vdrv_read32(&f->d, VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_9P);
	uint64_t got = 0;
	assert_int_equal(vdrv_negotiate(&f->d, (1ULL << VIRTIO_F_VERSION_1) | 1, &got), 0);
	assert_true(got & 1);	/* VIRTIO_9P_MOUNT_TAG */
	assert_int_equal(vdrv_queue_setup(&f->d, 0, 16), 0);
	vdrv_driver_ok(&f->d);
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
	vdrv_run(&f->d);
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
	uint32_t len = fuse_req(req, FUSE_LOOKUP, 1, "hello", 6);
	uint32_t used = roundtrip(f, 1, req, len, sizeof(out), out);
	assert_int_equal(used, sizeof(struct fuse_out_header) + sizeof(struct fuse_entry_out));
	struct fuse_entry_out e;
	memcpy(&e, out + sizeof(struct fuse_out_header), sizeof(e));
	assert_int_equal(e.attr.size, 12);

	struct fuse_open_in oi = { .flags = O_RDONLY };
	len = fuse_req(req, FUSE_OPEN, e.nodeid, &oi, sizeof(oi));
	used = roundtrip(f, 1, req, len, sizeof(out), out);
	struct fuse_open_out oo;
	memcpy(&oo, out + sizeof(struct fuse_out_header), sizeof(oo));
	struct fuse_read_in ri = { .fh = oo.fh, .size = 100 };
	len = fuse_req(req, FUSE_READ, e.nodeid, &ri, sizeof(ri));
	used = roundtrip(f, 1, req, len, sizeof(out), out);
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

static void test_virtio9p_requests(void **state)
{
	struct fx *f = *state;
	uint8_t cfg[8];
	for (unsigned i = 0; i < sizeof(cfg); i += 4)
		vdrv_cfg_read(&f->d, i, cfg + i, 4);
	assert_int_equal(cfg[0] | cfg[1] << 8, 4);
	assert_memory_equal(cfg + 2, "tag9", 4);

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
	used = roundtrip(f, 0, walk, sizeof(walk), sizeof(out), out);
	assert_int_equal(out[4], 111);
	static const uint8_t lopen[] = { 15, 0, 0, 0, 12, 3, 0, 2, 0, 0, 0, 0, 0, 0, 0 };
	used = roundtrip(f, 0, lopen, sizeof(lopen), sizeof(out), out);
	assert_int_equal(out[4], 13);
	static const uint8_t rd[] = { 23, 0, 0, 0, 116, 4, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0,
				      0, 0, 100, 0, 0, 0 };
	used = roundtrip(f, 0, rd, sizeof(rd), sizeof(out), out);
	assert_int_equal(out[4], 117);
	assert_int_equal(used, 11 + 12);
	assert_memory_equal(out + 11, "hello virtio", 12);
	/* A reply buffer too small for anything: completed with 0 bytes. */
	assert_int_equal(roundtrip(f, 0, rd, sizeof(rd), 8, out), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_virtiofs_requests, setup_fs, teardown),
		cmocka_unit_test_setup_teardown(test_virtiofs_reset_new_session, setup_fs, teardown),
		cmocka_unit_test_setup_teardown(test_virtio9p_requests, setup_9p, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
