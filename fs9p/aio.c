/* fs9p/aio.c - file I/O on the io_uring loop, for both codecs.
 *
 * A server with a loop attached (fs_server_attach_loop) owns a fixed pool
 * of FS_AIO_SLOTS request slots, allocated once: a READ, WRITE, FSYNC or
 * FALLOCATE takes a slot, the codec records how to build its reply, and the
 * operation goes to io_uring as an SQE whose completion calls the codec's
 * finish() and then the transport's done().  Nothing is allocated per
 * request, and a slow disk read stays in flight while the loop serves
 * other requests.  When the pool is empty the codec serves the request
 * synchronously instead (same answer, bounded, never lost).
 *
 * Large READs and WRITEs (FS_AIO_PARALLEL_MIN) go to an io-wq worker at
 * once (IOSQE_ASYNC), so the copies of a guest's readahead run side by side.
 * Smaller READ and WRITE are first tried at once with RWF_NOWAIT: data in the page
 * cache (the common case) costs one preadv2 and no trip through the ring;
 * only what would wait for the disk (or a filesystem without non-blocking
 * writes) goes to io_uring, continuing where the attempt stopped.  tmpfs
 * and ramfs take no RWF_NOWAIT (Linux 6.18 still) yet never wait for a
 * disk: their files are read and written at once, as the synchronous
 * server would, not handed to an io-wq worker (a thread switch per
 * request: a nested guest's 4 KiB random reads were a quarter slower).
 *
 * The file's fd is pinned while an operation uses it (f->inflight; a
 * RELEASE defers the close), so a descriptor number can never be reused
 * under an operation still queued.
 */
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/uio.h>

#include "common/log.h"
#include "common/util.h"
#include "fs9p/core.h"

int fs_server_attach_loop(struct fs_server *s, struct loop *loop)
{
	if (s->loop)
		return s->loop == loop ? 0 : -EBUSY;
	s->aio_pool = calloc(FS_AIO_SLOTS, sizeof(*s->aio_pool));
	if (!s->aio_pool)
		return -ENOMEM;
	for (unsigned i = 0; i < FS_AIO_SLOTS; i++) {
		s->aio_pool[i].next_free = s->aio_free;
		s->aio_free = &s->aio_pool[i];
	}
	s->loop = loop;
	return 0;
}

unsigned fs_server_inflight(const struct fs_server *s)
{
	return s->aio_busy;
}

void fs_server_drain(struct fs_server *s)
{
	while (s->aio_busy) {
		int r = loop_run_once(s->loop, 100000000ULL);
		if (r < 0 && r != -EINTR) {
			log_err("fs9p: draining file I/O: %s", strerror(-r));
			break;
		}
	}
}

struct fs_aio *fs_aio_get(struct fs_server *s, fs_done_fn done, void *ctx)
{
	if (!done || !s->loop || !s->aio_free)
		return NULL;
	struct fs_aio *a = s->aio_free;
	s->aio_free = a->next_free;
	memset(a, 0, offsetof(struct fs_aio, iov));
	a->s = s;
	a->done = done;
	a->ctx = ctx;
	return a;
}

/* Drop the first n bytes of iov[0..*cnt). */
static void iov_advance(struct iovec *iov, unsigned *cnt, size_t n)
{
	unsigned i = 0;
	while (i < *cnt && n >= iov[i].iov_len)
		n -= iov[i++].iov_len;
	memmove(iov, iov + i, (*cnt - i) * sizeof(*iov));
	*cnt -= i;
	if (*cnt) {
		iov[0].iov_base = (uint8_t *)iov[0].iov_base + n;
		iov[0].iov_len -= n;
	}
}

ssize_t fs_aio_run_now(struct fs_aio *a, struct fs_file *f, bool write, uint64_t off)
{
	ssize_t n = write ? pwritev(f->fd, a->iov, (int)a->niov, (off_t)off)
			  : preadv(f->fd, a->iov, (int)a->niov, (off_t)off);
	if (n < 0)
		n = -errno;
	if (a->base)
		n = n >= 0 ? n + (ssize_t)a->base : (ssize_t)a->base;
	return n;
}

/* Whether f's data lives in memory (tmpfs, ramfs): asked once per file. */
static bool data_in_memory(struct fs_file *f)
{
	if (f->data_kind == FS_DATA_UNKNOWN) {
		struct statfs sf;
		bool mem = fstatfs(f->fd, &sf) == 0 &&
			   (sf.f_type == TMPFS_MAGIC || sf.f_type == RAMFS_MAGIC);
		f->data_kind = mem ? FS_DATA_IN_MEMORY : FS_DATA_ON_DISK;
	}
	return f->data_kind == FS_DATA_IN_MEMORY;
}

int fs_aio_try_now(struct fs_server *s, struct fs_aio *a, struct fs_file *f, bool write,
		   uint64_t *off, size_t len)
{
	a->base = 0;
	if (s->aio_no_try)
		return 0;
	if (len >= FS_AIO_PARALLEL_MIN) {
		a->parallel = true;
		return 0;
	}
	if (data_in_memory(f)) {
		ssize_t n = fs_aio_run_now(a, f, write, *off);
		if (n < 0)
			return 0;	/* the ring reports the same error */
		a->base = (size_t)n;
		return 1;
	}
	if (write && s->no_nowait_write)
		return 0;
	ssize_t n = write ? pwritev2(f->fd, a->iov, (int)a->niov, (off_t)*off, RWF_NOWAIT)
			  : preadv2(f->fd, a->iov, (int)a->niov, (off_t)*off, RWF_NOWAIT);
	if (n < 0) {
		if (write && errno == EOPNOTSUPP)
			s->no_nowait_write = true;	/* don't ask again */
		return 0;	/* EAGAIN: it would wait */
	}
	a->base = (size_t)n;
	if ((size_t)n == len || (!write && n == 0))
		return 1;	/* all of it, or end of file */
	if (!write) {
		/* Short: end of file, or a page that is not cached yet. */
		struct stat st;
		if (fstat(f->fd, &st) == 0 && (uint64_t)st.st_size <= *off + (size_t)n)
			return 1;
	}
	iov_advance(a->iov, &a->niov, (size_t)n);
	*off += (size_t)n;
	return 0;
}

void fs_aio_put(struct fs_server *s, struct fs_aio *a)
{
	a->next_free = s->aio_free;
	s->aio_free = a;
}

static void aio_complete(struct loop *loop, struct loop_op *op, int res, uint32_t flags)
{
	(void)loop;
	(void)flags;
	struct fs_aio *a = container_of(op, struct fs_aio, op);
	struct fs_server *s = a->s;
	struct fs_file *f = a->f;
	if (--f->inflight == 0 && f->released)
		fs_file_destroy(s, f);
	if (a->base)	/* part was done at once: count it (or report it) */
		res = res >= 0 ? res + (int)a->base : (int)a->base;
	ssize_t len = a->finish(a, res);
	fs_done_fn done = a->done, flush_done = a->flush_done;
	void *ctx = a->ctx, *flush_ctx = a->flush_ctx;
	ssize_t flush_len = a->flush_len;
	/* The slot is free again before done runs: done may submit more. */
	s->aio_busy--;
	fs_aio_put(s, a);
	done(ctx, len);
	if (flush_done)
		flush_done(flush_ctx, flush_len);
}

int fs_aio_submit(struct fs_server *s, struct fs_aio *a, struct fs_file *f,
		  enum fs_aio_kind kind, uint64_t off, uint64_t len, int mode)
{
	struct io_uring_sqe *sqe = loop_sqe(s->loop, &a->op);
	if (!sqe)
		return -EBUSY;
	switch (kind) {
	case FS_AIO_READ:
		io_uring_prep_readv(sqe, f->fd, a->iov, a->niov, off);
		break;
	case FS_AIO_WRITE:
		io_uring_prep_writev(sqe, f->fd, a->iov, a->niov, off);
		break;
	case FS_AIO_FSYNC:
	case FS_AIO_FDATASYNC:
		io_uring_prep_fsync(sqe, f->fd, kind == FS_AIO_FDATASYNC ? IORING_FSYNC_DATASYNC : 0);
		break;
	case FS_AIO_FALLOCATE:
		io_uring_prep_fallocate(sqe, f->fd, mode, off, len);
		break;
	}
	if (a->parallel)
		sqe->flags |= IOSQE_ASYNC;
	a->op.cb = aio_complete;
	a->f = f;
	f->inflight++;
	s->aio_busy++;
	return 0;
}

int fs_iov_slice(struct iovec *dst, unsigned max, const struct iovec *src, unsigned n,
		 size_t skip, size_t len)
{
	unsigned k = 0;
	for (unsigned i = 0; i < n && len; i++) {
		size_t l = src[i].iov_len;
		if (skip >= l) {
			skip -= l;
			continue;
		}
		size_t c = MIN(l - skip, len);
		if (k == max)
			return -E2BIG;
		dst[k].iov_base = (uint8_t *)src[i].iov_base + skip;
		dst[k].iov_len = c;
		k++;
		len -= c;
		skip = 0;
	}
	return (int)k;
}
