/* devices/virtio/virtqueue.c - split virtqueue walker: the one place that
 * turns guest descriptors into host iovecs.  See virtqueue.h for the rules a
 * chain must follow and for the memory-ordering contract with the driver.
 */
#include "devices/virtio/virtqueue.h"

#include <errno.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"

/* Loads and stores on rings shared with the guest CPU. */
static inline uint16_t load_acquire16(const uint16_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static inline uint16_t load16(const uint16_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static inline void store_release16(uint16_t *p, uint16_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}

static inline void store16(uint16_t *p, uint16_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELAXED);
}

static inline void full_fence(void)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

/* Copy one descriptor out of guest memory, once: every check and every use
 * then sees the same values, whatever the guest writes meanwhile.  memcpy,
 * because an indirect table need not be aligned (the spec does not ask it). */
static void desc_fetch(const struct vring_desc *src, struct vring_desc *d)
{
	memcpy(d, src, sizeof(*d));
	__atomic_signal_fence(__ATOMIC_SEQ_CST);	/* no re-reads of *src after this */
}

void vq_init(struct virtqueue *vq, const struct gmem *gm, unsigned index,
	     vq_broken_fn on_broken, void *opaque)
{
	memset(vq, 0, sizeof(*vq));
	vq->gm = gm;
	vq->index = index;
	vq->on_broken = on_broken;
	vq->opaque = opaque;
}

void vq_reset(struct virtqueue *vq)
{
	const struct gmem *gm = vq->gm;
	vq_broken_fn fn = vq->on_broken;
	void *opaque = vq->opaque;
	unsigned index = vq->index;
	uint32_t gen = vq->gen;
	vq_init(vq, gm, index, fn, opaque);
	vq->gen = gen + 1;	/* chains popped before now can no longer be pushed */
}

static bool is_pow2(unsigned n)
{
	return n && !(n & (n - 1));
}

/* Check the geometry and point the queue at the rings (not enabled yet). */
static int attach_rings(struct virtqueue *vq, const struct vq_config *cfg)
{
	uint64_t n = cfg->num;
	if (!is_pow2(cfg->num) || n > VQ_MAX_SIZE)
		return -EINVAL;
	if ((cfg->desc & 15) || (cfg->avail & 1) || (cfg->used & 3))
		return -EINVAL;
	/* Sizes include the event-idx trailers whether or not negotiated. */
	void *desc = gmem_ptr(vq->gm, cfg->desc, 16 * n);
	void *avail = gmem_ptr(vq->gm, cfg->avail, 6 + 2 * n);
	void *used = gmem_ptr(vq->gm, cfg->used, 6 + 8 * n);
	if (!desc || !avail || !used)
		return -EINVAL;
	vq_reset(vq);
	vq->cfg = *cfg;
	vq->desc = desc;
	vq->avail = avail;
	vq->used = used;
	return 0;
}

int vq_enable(struct virtqueue *vq, const struct vq_config *cfg)
{
	int r = attach_rings(vq, cfg);
	if (r < 0)
		return r;
	/* Both indexes start at 0 (the driver zeroed the rings), and so does
	 * our view of them: nothing the guest wrote earlier is trusted. */
	vq->used_idx = 0;
	vq->last_avail = 0;
	store16(&vq->used->idx, 0);
	vq->enabled = true;
	return 0;
}

int vq_unpop(struct virtqueue *vq, struct vq_chain *c)
{
	if (!c->popped || !vq->enabled || c->gen != vq->gen || vq->inflight == 0)
		return -EINVAL;
	uint16_t slot = (uint16_t)(vq->last_avail - 1) & (vq->cfg.num - 1);
	if (load16(&vq->avail->ring[slot]) != c->head)
		return -EINVAL;
	vq->last_avail--;
	vq->inflight--;
	c->popped = false;
	return 0;
}

int vq_save(const struct virtqueue *vq, struct vq_indexes *ix)
{
	if (vq->inflight)
		return -EBUSY;
	*ix = (struct vq_indexes){ .last_avail = vq->last_avail, .used_idx = vq->used_idx,
				   .signalled_used = vq->signalled_used,
				   .signalled_valid = vq->signalled_valid, .broken = vq->broken };
	return 0;
}

int vq_restore(struct virtqueue *vq, const struct vq_config *cfg, const struct vq_indexes *ix)
{
	int r = attach_rings(vq, cfg);
	if (r < 0)
		return r;
	if (load16(&vq->used->idx) != ix->used_idx) {
		vq_reset(vq);
		return -EINVAL;	/* not the rings this state was saved with */
	}
	vq->last_avail = ix->last_avail;
	vq->used_idx = ix->used_idx;
	vq->signalled_used = ix->signalled_used;
	vq->signalled_valid = ix->signalled_valid;
	vq->broken = ix->broken;
	if (ix->broken)
		vq->broken_why = "malformed guest input before the snapshot";
	vq->enabled = true;
	return 0;
}

void vq_set_broken(struct virtqueue *vq, const char *why)
{
	if (vq->broken)
		return;
	vq->broken = true;
	vq->broken_why = why;
	log_once(LOG_WARN, "virtqueue %u: malformed guest input (%s); device needs reset",
		 vq->index, why);
	if (vq->on_broken)
		vq->on_broken(vq, vq->opaque);
}

/* The guest's used_event / avail_event trailers (event idx). */
static uint16_t *used_event_ptr(struct virtqueue *vq)
{
	return &vq->avail->ring[vq->cfg.num];
}

static uint16_t *avail_event_ptr(struct virtqueue *vq)
{
	return (uint16_t *)&vq->used->ring[vq->cfg.num];
}

/* Walk state shared by the direct and indirect parts of one chain. */
struct walk {
	struct vq_chain *c;
	uint64_t read_len, write_len;
	bool seen_write;
};

/* Add one (non-indirect) descriptor's buffer to the chain: NULL or why not. */
static const char *walk_add(struct virtqueue *vq, struct walk *w, const struct vring_desc *d)
{
	bool writable = d->flags & VRING_DESC_F_WRITE;
	if (!writable && w->seen_write)
		return "readable descriptor after a writable one";
	w->seen_write |= writable;
	if (d->len == 0)
		return NULL;	/* accepted, produces nothing */
	uint64_t *total = writable ? &w->write_len : &w->read_len;
	*total += d->len;
	if (*total > UINT32_MAX)
		return "chain length over 4 GiB";
	struct vq_chain *c = w->c;
	if (c->nread + c->nwrite >= VQ_CHAIN_MAX_IOV)
		return "too many buffers in one chain";
	void *p = gmem_ptr(vq->gm, d->addr, d->len);
	if (!p)
		return "buffer outside guest RAM";
	c->iov[c->nread + c->nwrite] = (struct iovec){ .iov_base = p, .iov_len = d->len };
	if (writable)
		c->nwrite++;
	else
		c->nread++;
	return NULL;
}

/* Walk the indirect table that descriptor d points at. */
static const char *walk_indirect(struct virtqueue *vq, struct walk *w, const struct vring_desc *d)
{
	if (!vq->cfg.indirect)
		return "indirect descriptor without the feature";
	if (d->flags & VRING_DESC_F_NEXT)
		return "indirect descriptor with NEXT";
	if (d->len == 0 || d->len % sizeof(struct vring_desc))
		return "indirect table length not a non-zero multiple of 16";
	uint32_t count = d->len / sizeof(struct vring_desc);
	if (count > VQ_MAX_INDIRECT)
		return "indirect table too long";
	const struct vring_desc *table = gmem_ptr(vq->gm, d->addr, d->len);
	if (!table)
		return "indirect table outside guest RAM";
	uint32_t i = 0;
	for (uint32_t walked = 0;; walked++) {
		if (walked >= count)
			return "loop in indirect table";
		struct vring_desc e;
		desc_fetch(&table[i], &e);
		if (e.flags & VRING_DESC_F_INDIRECT)
			return "nested indirect descriptor";
		const char *err = walk_add(vq, w, &e);
		if (err)
			return err;
		if (!(e.flags & VRING_DESC_F_NEXT))
			return NULL;
		if (e.next >= count)
			return "indirect next index out of range";
		i = e.next;
	}
}

/* Walk the chain starting at head into *c: NULL or why it is malformed. */
static const char *walk_chain(struct virtqueue *vq, uint16_t head, struct vq_chain *c)
{
	struct walk w = { .c = c };
	uint16_t num = vq->cfg.num;
	if (head >= num)
		return "head index out of range";
	uint16_t i = head;
	for (unsigned walked = 0;; walked++) {
		if (walked >= num)
			return "chain longer than the queue (or a loop)";
		struct vring_desc d;
		desc_fetch(&vq->desc[i], &d);
		const char *err;
		if (d.flags & VRING_DESC_F_INDIRECT) {
			if (walked != 0)
				return "indirect descriptor not at the head";
			err = walk_indirect(vq, &w, &d);
			if (err)
				return err;
			break;
		}
		err = walk_add(vq, &w, &d);
		if (err)
			return err;
		if (!(d.flags & VRING_DESC_F_NEXT))
			break;
		if (d.next >= num)
			return "next index out of range";
		i = d.next;
	}
	c->read_len = (uint32_t)w.read_len;
	c->write_len = (uint32_t)w.write_len;
	return NULL;
}

/* Number of chains waiting, or -1 when the available index is impossible. */
static int avail_pending(struct virtqueue *vq, uint16_t *avail_idx)
{
	*avail_idx = load_acquire16(&vq->avail->idx);
	uint16_t pending = (uint16_t)(*avail_idx - vq->last_avail);
	if (pending > vq->cfg.num)
		return -1;
	return pending;
}

bool vq_has_avail(struct virtqueue *vq)
{
	uint16_t idx;
	if (!vq->enabled || vq->broken)
		return false;
	return avail_pending(vq, &idx) > 0;
}

int vq_pop(struct virtqueue *vq, struct vq_chain *c)
{
	if (!vq->enabled)
		return -ENODEV;
	if (vq->broken)
		return -EIO;
	uint16_t avail_idx;
	int pending = avail_pending(vq, &avail_idx);
	if (pending == 0 && vq->cfg.event_idx) {
		/* Ask to be kicked for the next buffer, then look once more in
		 * case the driver added one before it could see our request. */
		store16(avail_event_ptr(vq), vq->last_avail);
		full_fence();
		pending = avail_pending(vq, &avail_idx);
	}
	if (pending < 0) {
		vq_set_broken(vq, "available index ran more than the queue size ahead");
		return -EIO;
	}
	if (pending == 0)
		return 0;
	uint16_t slot = vq->last_avail & (vq->cfg.num - 1);
	uint16_t head = load16(&vq->avail->ring[slot]);
	c->head = head;
	c->nread = c->nwrite = 0;
	c->read_len = c->write_len = 0;
	c->popped = false;
	const char *err = walk_chain(vq, head, c);
	if (err) {
		vq_set_broken(vq, err);
		return -EIO;
	}
	vq->last_avail++;
	if (vq->cfg.event_idx)
		store16(avail_event_ptr(vq), vq->last_avail);
	c->popped = true;
	c->gen = vq->gen;
	vq->inflight++;
	return 1;
}

int vq_push(struct virtqueue *vq, struct vq_chain *c, uint32_t written)
{
	if (!c->popped)
		return -EINVAL;
	c->popped = false;
	/* A chain popped before a reset belongs to a ring that no longer
	 * exists: drop it silently. */
	if (!vq->enabled || c->gen != vq->gen || vq->inflight == 0)
		return -EINVAL;
	vq->inflight--;
	if (written > c->write_len)
		written = c->write_len;
	uint16_t slot = vq->used_idx & (vq->cfg.num - 1);
	struct vring_used_elem *e = &vq->used->ring[slot];
	__atomic_store_n(&e->id, (uint32_t)c->head, __ATOMIC_RELAXED);
	__atomic_store_n(&e->len, written, __ATOMIC_RELAXED);
	vq->used_idx++;
	store_release16(&vq->used->idx, vq->used_idx);
	return 0;
}

bool vq_notify_needed(struct virtqueue *vq)
{
	if (!vq->enabled)
		return false;
	/* Our used-index store must be visible before we read the driver's
	 * suppression state, or both sides could decide not to act. */
	full_fence();
	uint16_t old = vq->signalled_used, new = vq->used_idx;
	bool valid = vq->signalled_valid;
	vq->signalled_used = new;
	vq->signalled_valid = true;
	if (valid && new == old)
		return false;	/* nothing pushed since the last decision */
	if (!vq->cfg.event_idx)
		return !(load16(&vq->avail->flags) & VRING_AVAIL_F_NO_INTERRUPT);
	if (!valid)
		return true;
	return vring_need_event(load16(used_event_ptr(vq)), new, old);
}

/* Copy between a flat buffer and the part [first, first+n) of c->iov. */
static size_t chain_copy(const struct vq_chain *c, unsigned first, unsigned n, size_t off,
			 void *buf, size_t len, bool to_guest)
{
	size_t done = 0;
	for (unsigned i = first; i < first + n && done < len; i++) {
		const struct iovec *v = &c->iov[i];
		if (off >= v->iov_len) {
			off -= v->iov_len;
			continue;
		}
		size_t k = MIN(v->iov_len - off, len - done);
		uint8_t *g = (uint8_t *)v->iov_base + off;
		if (to_guest)
			memcpy(g, (const uint8_t *)buf + done, k);
		else
			memcpy((uint8_t *)buf + done, g, k);
		done += k;
		off = 0;
	}
	return done;
}

size_t vq_chain_read(const struct vq_chain *c, size_t off, void *dst, size_t len)
{
	return chain_copy(c, 0, c->nread, off, dst, len, false);
}

size_t vq_chain_write(const struct vq_chain *c, size_t off, const void *src, size_t len)
{
	return chain_copy(c, c->nread, c->nwrite, off, (void *)src, len, true);
}
