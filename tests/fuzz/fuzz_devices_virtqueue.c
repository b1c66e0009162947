/* tests/fuzz/fuzz_devices_virtqueue.c - libFuzzer over the virtqueue walker.
 *
 * The input is a small guest RAM image (descriptor table, available ring,
 * buffers, indirect tables: whatever the bytes say) after a header choosing
 * the queue size, the ring addresses and the negotiated features.  The
 * walker pops until the ring is empty or the queue breaks, writes into every
 * writable buffer it was given and pushes each chain back.  ASan/UBSan catch
 * any access outside RAM; the asserts check the chain invariants promised in
 * virtqueue.h.
 */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "devices/virtio/virtqueue.h"

#define RAM_SIZE 16384u

struct hdr {
	uint8_t num_log2;	/* queue size = 1 << (num_log2 % 9) */
	uint8_t flags;		/* bit 0 indirect, bit 1 event idx */
	uint16_t desc, avail, used;	/* ring gpas (offsets into RAM) */
	uint16_t pushes;	/* how many chains to complete before stopping */
};

static void on_broken(struct virtqueue *vq, void *opaque)
{
	(void)vq;
	++*(int *)opaque;
}

static void check_chain(const struct vq_chain *c, const uint8_t *ram)
{
	uint64_t r = 0, w = 0;
	assert(c->nread + c->nwrite <= VQ_CHAIN_MAX_IOV);
	for (unsigned i = 0; i < (unsigned)c->nread + c->nwrite; i++) {
		const uint8_t *p = c->iov[i].iov_base;
		assert(c->iov[i].iov_len > 0);
		assert(p >= ram && p + c->iov[i].iov_len <= ram + RAM_SIZE);
		if (i < c->nread)
			r += c->iov[i].iov_len;
		else
			w += c->iov[i].iov_len;
	}
	assert(r == c->read_len && w == c->write_len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t *ram;
	static struct vq_chain chain;	/* 16 KiB: not on the stack */
	if (!ram) {
		ram = aligned_alloc(4096, RAM_SIZE);
		log_set_level(LOG_ERR);
	}
	struct hdr h;
	if (size < sizeof(h))
		return 0;
	memcpy(&h, data, sizeof(h));
	size -= sizeof(h);
	memset(ram, 0, RAM_SIZE);
	memcpy(ram, data + sizeof(h), size < RAM_SIZE ? size : RAM_SIZE);

	struct gmem gm;
	gmem_init_x86(&gm, ram, RAM_SIZE);
	struct virtqueue vq;
	int broken = 0;
	vq_init(&vq, &gm, 0, on_broken, &broken);
	struct vq_config cfg = {
		.num = (uint16_t)(1u << (h.num_log2 % 9)),
		.desc = h.desc, .avail = h.avail, .used = h.used,
		.indirect = h.flags & 1, .event_idx = h.flags & 2,
	};
	if (vq_enable(&vq, &cfg) < 0)
		return 0;
	unsigned pushes = 0;
	for (unsigned i = 0; i < 4u * cfg.num + 4; i++) {
		int r = vq_pop(&vq, &chain);
		if (r <= 0) {
			assert(r == 0 || vq.broken);
			break;
		}
		check_chain(&chain, ram);
		/* Scribble over the reply as a device would (it may overlap
		 * the rings: the guest is allowed to be that silly). */
		for (unsigned k = chain.nread; k < (unsigned)chain.nread + chain.nwrite; k++)
			memset(chain.iov[k].iov_base, 0xa5, chain.iov[k].iov_len);
		assert(vq_push(&vq, &chain, chain.write_len) == 0);
		assert(vq_push(&vq, &chain, 0) == -EINVAL);
		(void)vq_notify_needed(&vq);
		if (++pushes >= h.pushes)
			break;
	}
	assert(broken <= 1);
	assert(vq.broken == (broken == 1));
	return 0;
}
