/* tests/harness/virtio_driver.c - the pretend guest driver (see the header).
 * Written like a small Linux virtio_ring + virtio_mmio: a free list of
 * descriptors, release stores on the available index, acquire loads on the
 * used index.
 */
#include "tests/harness/virtio_driver.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>

#include "common/util.h"
#include "devices/virtio/mmio.h"

#define PAGE 4096u

int vdrv_init(struct vdrv *d, size_t ram_size)
{
	memset(d, 0, sizeof(*d));
	ram_size = ALIGN_UP(ram_size, (size_t)PAGE);
	d->ram = mmap(NULL, ram_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (d->ram == MAP_FAILED)
		return -errno;
	d->ram_size = ram_size;
	gmem_init_x86(&d->gm, d->ram, ram_size);
	int r = loop_init(&d->loop, 64);
	if (r < 0)
		return r;
	d->env.gm = &d->gm;
	d->env.loop = &d->loop;
	d->env.irq = VIRTIO_MMIO_IRQ_BASE;
	d->env.irq_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	d->env.notify_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (d->env.irq_fd < 0 || d->env.notify_fd < 0)
		return -errno;
	d->brk = PAGE;		/* gpa 0 stays unused: 0 means "no memory" */
	return 0;
}

void vdrv_fini(struct vdrv *d)
{
	/* Let cancelled polls complete before the ring goes away. */
	loop_run_once(&d->loop, 0);
	for (unsigned q = 0; q < VDRV_MAX_QUEUES; q++) {
		free(d->q[q].chain_len);
		free(d->q[q].first_gpa);
	}
	close(d->env.irq_fd);
	close(d->env.notify_fd);
	loop_fini(&d->loop);
	munmap(d->ram, d->ram_size);
	memset(d, 0, sizeof(*d));
}

void vdrv_attach(struct vdrv *d, const struct io_region *region)
{
	d->region = region;
}

int vdrv_start(struct vdrv *d, struct vdev *dev)
{
	vdrv_attach(d, &dev->region);
	return vdev_start(dev);
}

uint32_t vdrv_read32(struct vdrv *d, uint64_t off)
{
	uint32_t v = 0;
	d->region->read(d->region->opaque, off, &v, 4);
	return v;
}

void vdrv_write32(struct vdrv *d, uint64_t off, uint32_t val)
{
	d->region->write(d->region->opaque, off, &val, 4);
}

void vdrv_cfg_read(struct vdrv *d, uint32_t off, void *buf, unsigned size)
{
	d->region->read(d->region->opaque, VIRTIO_MMIO_CONFIG_OFF + off, buf, size);
}

void vdrv_cfg_write(struct vdrv *d, uint32_t off, const void *buf, unsigned size)
{
	d->region->write(d->region->opaque, VIRTIO_MMIO_CONFIG_OFF + off, buf, size);
}

uint32_t vdrv_status(struct vdrv *d)
{
	return vdrv_read32(d, VIRTIO_MMIO_STATUS);
}

static void add_status(struct vdrv *d, uint32_t bits)
{
	vdrv_write32(d, VIRTIO_MMIO_STATUS, vdrv_status(d) | bits);
}

void vdrv_reset(struct vdrv *d)
{
	vdrv_write32(d, VIRTIO_MMIO_STATUS, 0);
	for (unsigned q = 0; q < VDRV_MAX_QUEUES; q++) {
		free(d->q[q].chain_len);
		free(d->q[q].first_gpa);
		memset(&d->q[q], 0, sizeof(d->q[q]));
	}
	d->features = 0;
}

static uint64_t device_features(struct vdrv *d)
{
	uint64_t f = 0;
	for (uint32_t sel = 0; sel < 2; sel++) {
		vdrv_write32(d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, sel);
		f |= (uint64_t)vdrv_read32(d, VIRTIO_MMIO_DEVICE_FEATURES) << (32 * sel);
	}
	return f;
}

int vdrv_negotiate_raw(struct vdrv *d, uint64_t features)
{
	if (vdrv_read32(d, VIRTIO_MMIO_MAGIC_VALUE) != VIRTIO_MMIO_MAGIC ||
	    vdrv_read32(d, VIRTIO_MMIO_VERSION) != 2)
		return -EIO;
	vdrv_reset(d);
	add_status(d, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	add_status(d, VIRTIO_CONFIG_S_DRIVER);
	(void)device_features(d);
	for (uint32_t sel = 0; sel < 2; sel++) {
		vdrv_write32(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, sel);
		vdrv_write32(d, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(features >> (32 * sel)));
	}
	add_status(d, VIRTIO_CONFIG_S_FEATURES_OK);
	if (!(vdrv_status(d) & VIRTIO_CONFIG_S_FEATURES_OK))
		return -EPROTO;
	d->features = features;
	return 0;
}

int vdrv_negotiate(struct vdrv *d, uint64_t want, uint64_t *got)
{
	if (vdrv_read32(d, VIRTIO_MMIO_MAGIC_VALUE) != VIRTIO_MMIO_MAGIC)
		return -EIO;
	uint64_t f = want & device_features(d);
	int r = vdrv_negotiate_raw(d, f);
	if (r == 0 && got)
		*got = f;
	return r;
}

uint64_t vdrv_alloc(struct vdrv *d, size_t len, size_t align)
{
	if (align == 0)
		align = 1;
	uint64_t gpa = ALIGN_UP(d->brk, (uint64_t)align);
	if (gpa > d->ram_size || len > d->ram_size - gpa)
		return 0;
	d->brk = gpa + len;
	memset(d->ram + gpa, 0, len);
	return gpa;
}

uint64_t vdrv_alloc_copy(struct vdrv *d, const void *data, size_t len)
{
	uint64_t gpa = vdrv_alloc(d, len, 8);
	if (gpa)
		memcpy(d->ram + gpa, data, len);
	return gpa;
}

void *vdrv_host(struct vdrv *d, uint64_t gpa)
{
	return d->ram + gpa;
}

static void write64_reg(struct vdrv *d, uint64_t lo_off, uint64_t v)
{
	vdrv_write32(d, lo_off, (uint32_t)v);
	vdrv_write32(d, lo_off + 4, (uint32_t)(v >> 32));
}

int vdrv_queue_setup_at(struct vdrv *d, unsigned q, uint16_t num, uint64_t desc,
			uint64_t avail, uint64_t used)
{
	if (q >= VDRV_MAX_QUEUES)
		return -EINVAL;
	struct vdrv_queue *vq = &d->q[q];
	vdrv_write32(d, VIRTIO_MMIO_QUEUE_SEL, q);
	if (vdrv_read32(d, VIRTIO_MMIO_QUEUE_READY))
		return -EBUSY;
	vdrv_write32(d, VIRTIO_MMIO_QUEUE_NUM, num);
	write64_reg(d, VIRTIO_MMIO_QUEUE_DESC_LOW, desc);
	write64_reg(d, VIRTIO_MMIO_QUEUE_AVAIL_LOW, avail);
	write64_reg(d, VIRTIO_MMIO_QUEUE_USED_LOW, used);
	vdrv_write32(d, VIRTIO_MMIO_QUEUE_READY, 1);
	if (!vdrv_read32(d, VIRTIO_MMIO_QUEUE_READY))
		return -EINVAL;
	free(vq->chain_len);
	free(vq->first_gpa);
	memset(vq, 0, sizeof(*vq));
	vq->num = num;
	vq->desc_gpa = desc, vq->avail_gpa = avail, vq->used_gpa = used;
	vq->desc = vdrv_host(d, desc);
	vq->avail = vdrv_host(d, avail);
	vq->used = vdrv_host(d, used);
	vq->chain_len = calloc(num, sizeof(*vq->chain_len));
	vq->first_gpa = calloc(num, sizeof(*vq->first_gpa));
	if (!vq->chain_len || !vq->first_gpa)
		return -ENOMEM;
	for (uint16_t i = 0; i + 1 < num; i++)
		vq->desc[i].next = i + 1;
	vq->free_head = 0;
	vq->nfree = num;
	return 0;
}

int vdrv_queue_setup(struct vdrv *d, unsigned q, uint16_t num)
{
	vdrv_write32(d, VIRTIO_MMIO_QUEUE_SEL, q);
	uint32_t max = vdrv_read32(d, VIRTIO_MMIO_QUEUE_NUM_MAX);
	if (max == 0)
		return -ENOENT;
	uint64_t desc = vdrv_alloc(d, 16u * num, PAGE);
	uint64_t avail = vdrv_alloc(d, 6 + 2u * num, PAGE);
	uint64_t used = vdrv_alloc(d, 6 + 8u * num, PAGE);
	if (!desc || !avail || !used)
		return -ENOMEM;
	return vdrv_queue_setup_at(d, q, num, desc, avail, used);
}

void vdrv_driver_ok(struct vdrv *d)
{
	add_status(d, VIRTIO_CONFIG_S_DRIVER_OK);
}

/* Take one descriptor from the free list. */
static uint16_t take_desc(struct vdrv_queue *vq)
{
	uint16_t i = vq->free_head;
	vq->free_head = vq->desc[i].next;
	vq->nfree--;
	return i;
}

static void publish(struct vdrv_queue *vq, uint16_t head)
{
	vq->avail->ring[vq->avail_idx & (vq->num - 1)] = head;
	vq->avail_idx++;
	__atomic_store_n(&vq->avail->idx, vq->avail_idx, __ATOMIC_RELEASE);
}

static void fill_desc(struct vring_desc *e, const struct vdrv_buf *b, bool more, uint16_t next)
{
	e->addr = b->gpa;
	e->len = b->len;
	e->flags = (uint16_t)((b->write ? VRING_DESC_F_WRITE : 0) | (more ? VRING_DESC_F_NEXT : 0));
	e->next = more ? next : 0;
}

int vdrv_add(struct vdrv *d, unsigned q, const struct vdrv_buf *bufs, unsigned n,
	     unsigned flags)
{
	struct vdrv_queue *vq = &d->q[q];
	if (q >= VDRV_MAX_QUEUES || !vq->num || n == 0)
		return -EINVAL;
	if (flags & VDRV_INDIRECT) {
		if (vq->nfree < 1)
			return -ENOSPC;
		uint64_t tgpa = vdrv_alloc(d, 16u * n, 16);
		if (!tgpa)
			return -ENOMEM;
		struct vring_desc *t = vdrv_host(d, tgpa);
		for (unsigned i = 0; i < n; i++)
			fill_desc(&t[i], &bufs[i], i + 1 < n, (uint16_t)(i + 1));
		uint16_t head = take_desc(vq);
		vq->desc[head] = (struct vring_desc){
			.addr = tgpa, .len = 16u * n, .flags = VRING_DESC_F_INDIRECT };
		vq->chain_len[head] = 1;
		vq->first_gpa[head] = bufs[0].gpa;
		publish(vq, head);
		return head;
	}
	if (vq->nfree < n)
		return -ENOSPC;
	uint16_t idx[n];
	for (unsigned i = 0; i < n; i++)
		idx[i] = take_desc(vq);
	for (unsigned i = 0; i < n; i++)
		fill_desc(&vq->desc[idx[i]], &bufs[i], i + 1 < n, i + 1 < n ? idx[i + 1] : 0);
	vq->chain_len[idx[0]] = (uint16_t)n;
	vq->first_gpa[idx[0]] = bufs[0].gpa;
	publish(vq, idx[0]);
	return idx[0];
}

void vdrv_kick(struct vdrv *d, unsigned q)
{
	d->q[q].kicked_idx = d->q[q].avail_idx;
	vdrv_write32(d, VIRTIO_MMIO_QUEUE_NOTIFY, q);
}

bool vdrv_kick_needed(struct vdrv *d, unsigned q)
{
	struct vdrv_queue *vq = &d->q[q];
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	uint16_t old = vq->kicked_idx, new = vq->avail_idx;
	vq->kicked_idx = new;
	if (d->features & (1ULL << VIRTIO_RING_F_EVENT_IDX))
		return vring_need_event(vdrv_avail_event(d, q), new, old);
	return !(__atomic_load_n(&vq->used->flags, __ATOMIC_RELAXED) & VRING_USED_F_NO_NOTIFY);
}

int vdrv_run(struct vdrv *d)
{
	int total = 0;
	for (int i = 0; i < 1000; i++) {
		int n = loop_run_once(&d->loop, 2000000);	/* 2 ms */
		if (n <= 0)
			break;
		total += n;
	}
	return total;
}

int vdrv_used(struct vdrv *d, unsigned q, uint32_t *id, uint32_t *len)
{
	struct vdrv_queue *vq = &d->q[q];
	if (!vq->num)
		return 0;
	uint16_t idx = __atomic_load_n(&vq->used->idx, __ATOMIC_ACQUIRE);
	if (idx == vq->last_used)
		return 0;
	struct vring_used_elem *e = &vq->used->ring[vq->last_used & (vq->num - 1)];
	*id = e->id;
	*len = e->len;
	vq->last_used++;
	/* Return the chain's descriptors (only for ids we handed out). */
	if (*id < vq->num) {
		uint16_t i = (uint16_t)*id, n = vq->chain_len[i];
		vq->chain_len[i] = 0;
		for (uint16_t k = 0; k < n; k++) {
			uint16_t next = vq->desc[i].next;
			vq->desc[i].next = vq->free_head;
			vq->free_head = i;
			vq->nfree++;
			i = next;
		}
	}
	return 1;
}

int vdrv_used_buf(struct vdrv *d, unsigned q, void **data, uint32_t *len)
{
	uint32_t id;
	int r = vdrv_used(d, q, &id, len);
	if (r == 1)
		*data = id < d->q[q].num ? vdrv_host(d, d->q[q].first_gpa[id]) : NULL;
	return r;
}

int vdrv_post_rx(struct vdrv *d, unsigned q, unsigned n, uint32_t size)
{
	unsigned i;
	for (i = 0; i < n; i++) {
		uint64_t gpa = vdrv_alloc(d, size, 8);
		struct vdrv_buf b = { gpa, size, true };
		if (!gpa || vdrv_add(d, q, &b, 1, 0) < 0)
			break;
	}
	return (int)i;
}

int vdrv_send(struct vdrv *d, unsigned q, const void *data, uint32_t len)
{
	uint64_t gpa = vdrv_alloc_copy(d, data, len);
	if (!gpa)
		return -ENOMEM;
	struct vdrv_buf b = { gpa, len, false };
	int head = vdrv_add(d, q, &b, 1, 0);
	if (head >= 0)
		vdrv_kick(d, q);
	return head;
}

uint64_t vdrv_irq(struct vdrv *d)
{
	uint64_t n = 0;
	if (read(d->env.irq_fd, &n, sizeof(n)) != sizeof(n))
		return 0;
	return n;
}

uint32_t vdrv_isr_ack(struct vdrv *d)
{
	uint32_t isr = vdrv_read32(d, VIRTIO_MMIO_INTERRUPT_STATUS);
	if (isr)
		vdrv_write32(d, VIRTIO_MMIO_INTERRUPT_ACK, isr);
	return isr;
}

struct vring_desc *vdrv_desc(struct vdrv *d, unsigned q, uint16_t i)
{
	return &d->q[q].desc[i];
}

void vdrv_avail_raw(struct vdrv *d, unsigned q, uint16_t head)
{
	publish(&d->q[q], head);
}

void vdrv_set_avail_idx(struct vdrv *d, unsigned q, uint16_t idx)
{
	d->q[q].avail_idx = idx;
	__atomic_store_n(&d->q[q].avail->idx, idx, __ATOMIC_RELEASE);
}

void vdrv_set_used_event(struct vdrv *d, unsigned q, uint16_t v)
{
	struct vdrv_queue *vq = &d->q[q];
	__atomic_store_n(&vq->avail->ring[vq->num], v, __ATOMIC_RELEASE);
}

void vdrv_set_avail_flags(struct vdrv *d, unsigned q, uint16_t flags)
{
	__atomic_store_n(&d->q[q].avail->flags, flags, __ATOMIC_RELEASE);
}

uint16_t vdrv_avail_event(struct vdrv *d, unsigned q)
{
	struct vdrv_queue *vq = &d->q[q];
	return __atomic_load_n((uint16_t *)&vq->used->ring[vq->num], __ATOMIC_ACQUIRE);
}
