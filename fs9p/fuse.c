/* fs9p/fuse.c - the FUSE message codec (virtio-fs and /dev/fuse).
 *
 * fs_fuse_handle() takes one request as an iovec array and writes one
 * reply.  Every length in the request is checked against the bytes that
 * arrived before anything is read: fixed-size bodies are copied out with
 * memcpy (guest buffers may be unaligned), names must be NUL-terminated
 * inside the message and pass fs_name_check(), and every reply length is
 * computed from what was written, never from the request.  Anything
 * malformed gets an error reply (EINVAL, EPROTO, ENAMETOOLONG, ...).
 *
 * Locks: we do not offer FUSE_POSIX_LOCKS, so Linux keeps POSIX locks in
 * the (single) client, which is exact for one guest; GETLK/SETLK are still
 * served with open-file-description locks, and SETLKW is a non-blocking
 * attempt (the loop must never block on a guest-chosen lock).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/log.h"
#include "common/util.h"
#include "fs9p/core.h"

#define NOREPLY 1		/* handler result: send nothing */
#define PENDING 2		/* handler result: reply comes from fs9p/aio.c */
#define REPLIED 3		/* handler result: reply written, r->replied bytes */
#ifndef FUSE_OVER_IO_URING		/* Linux 6.14 uapi; older headers lack it */
#define FUSE_OVER_IO_URING (1ULL << 41)
#endif
#define OUT_HDR sizeof(struct fuse_out_header)
#define IN_HDR sizeof(struct fuse_in_header)
/* How much of a scattered WRITE is copied before dispatch: its payload
 * goes to pwritev from the transport's buffers. */
#define WRITE_HEAD (IN_HDR + sizeof(struct fuse_write_in))

/* The request being decoded: a cursor over its body. */
struct req {
	struct fuse_in_header h;
	const uint8_t *body;
	size_t len, pos;
	/* the transport's buffers and completion, for file I/O on io_uring
	 * (done NULL: everything synchronous) */
	const struct iovec *in, *out;
	unsigned nin, nout;
	fs_done_fn done;
	void *ctx;
	ssize_t replied;	/* REPLIED: the reply's length */
};

/* The reply being built: body starts after the out header. */
struct reply {
	uint8_t *buf;		/* header at buf, body at buf + OUT_HDR */
	size_t cap;		/* bytes available for the body */
	size_t len;		/* body bytes written */
};

/* ---- scattered buffers ------------------------------------------------ */

static size_t iov_total(const struct iovec *iov, unsigned n)
{
	size_t t = 0;
	for (unsigned i = 0; i < n; i++) {
		if (t + iov[i].iov_len < t)
			return SIZE_MAX;
		t += iov[i].iov_len;
	}
	return t;
}

/* Copy len bytes of iov[0..n), from byte skip on, to dst (as far as the
 * iovecs go). */
static void iov_gather_range(uint8_t *dst, const struct iovec *iov, unsigned n, size_t skip,
			     size_t len)
{
	for (unsigned i = 0; i < n && len; i++) {
		size_t l = iov[i].iov_len;
		if (skip >= l) {	/* an empty buffer may have no address */
			skip -= l;
			continue;
		}
		size_t c = MIN(len, l - skip);
		memcpy(dst, (const uint8_t *)iov[i].iov_base + skip, c);
		dst += c;
		len -= c;
		skip = 0;
	}
}

static void iov_gather(uint8_t *dst, size_t len, const struct iovec *iov, unsigned n)
{
	iov_gather_range(dst, iov, n, 0, len);
}

static void iov_scatter(const struct iovec *iov, unsigned n, const uint8_t *src, size_t len)
{
	for (unsigned i = 0; i < n && len; i++) {
		size_t c = MIN(len, iov[i].iov_len);
		if (!c)
			continue;
		memcpy(iov[i].iov_base, src, c);
		src += c;
		len -= c;
	}
}

static int take(struct req *r, void *dst, size_t n)
{
	if (r->len - r->pos < n)
		return -EINVAL;
	memcpy(dst, r->body + r->pos, n);
	r->pos += n;
	return 0;
}

/* A NUL-terminated string inside the body (not checked as a name). */
static const char *take_str(struct req *r)
{
	const uint8_t *p = r->body + r->pos;
	const uint8_t *nul = memchr(p, 0, r->len - r->pos);
	if (!nul)
		return NULL;
	r->pos += (size_t)(nul - p) + 1;
	return (const char *)p;
}

/* A single path component; *err says why not. */
static const char *take_name(struct req *r, int *err)
{
	const char *n = take_str(r);
	if (!n) {
		*err = -EINVAL;
		return NULL;
	}
	*err = fs_name_check(n);
	return *err ? NULL : n;
}

static int put(struct reply *rp, const void *src, size_t n)
{
	if (rp->cap - rp->len < n)
		return -ERANGE;
	memcpy(rp->buf + OUT_HDR + rp->len, src, n);
	rp->len += n;
	return 0;
}

static void *body_at(struct reply *rp)
{
	return rp->buf + OUT_HDR + rp->len;
}

/* The reply's body (blen bytes) is already in the transport's buffers
 * after the header's room: write the header there and report the length. */
static int reply_in_place(struct req *r, size_t blen)
{
	struct fuse_out_header oh = { .len = (uint32_t)(OUT_HDR + blen), .unique = r->h.unique };
	iov_scatter(r->out, r->nout, (const uint8_t *)&oh, sizeof(oh));
	r->replied = oh.len;
	return REPLIED;
}

/* ---- attribute conversion -------------------------------------------- */

static uint64_t cache_ttl(const struct fs_server *s)
{
	switch (s->opts.cache) {
	case FS_CACHE_NONE: return 0;
	case FS_CACHE_ALWAYS: return 86400;
	default: return 1;
	}
}

static void fill_attr(const struct fs_server *s, struct fuse_attr *a, const struct stat *st)
{
	memset(a, 0, sizeof(*a));
	a->ino = st->st_ino;
	a->size = (uint64_t)st->st_size;
	a->blocks = (uint64_t)st->st_blocks;
	a->atime = (uint64_t)st->st_atim.tv_sec;
	a->mtime = (uint64_t)st->st_mtim.tv_sec;
	a->ctime = (uint64_t)st->st_ctim.tv_sec;
	a->atimensec = (uint32_t)st->st_atim.tv_nsec;
	a->mtimensec = (uint32_t)st->st_mtim.tv_nsec;
	a->ctimensec = (uint32_t)st->st_ctim.tv_nsec;
	a->mode = st->st_mode;
	a->nlink = (uint32_t)st->st_nlink;
	a->uid = fs_map_uid(s, st->st_uid);
	a->gid = fs_map_gid(s, st->st_gid);
	a->rdev = (uint32_t)st->st_rdev;
	a->blksize = (uint32_t)st->st_blksize;
}

static void fill_entry(const struct fs_server *s, struct fuse_entry_out *e,
		       const struct fs_inode *ino, const struct stat *st)
{
	memset(e, 0, sizeof(*e));
	e->nodeid = ino ? ino->id : 0;
	e->entry_valid = cache_ttl(s);
	e->attr_valid = cache_ttl(s);
	if (st)
		fill_attr(s, &e->attr, st);
}

static int reply_entry(struct fs_server *s, struct reply *rp, struct fs_inode *ino,
		       const struct stat *st)
{
	struct fuse_entry_out e;
	fill_entry(s, &e, ino, st);
	if (put(rp, &e, sizeof(e)) < 0) {
		if (ino)
			fs_forget(s, ino, 1);	/* the client never learns of it */
		return -ERANGE;
	}
	return 0;
}

static int reply_attr(struct fs_server *s, struct reply *rp, const struct stat *st)
{
	struct fuse_attr_out a = { .attr_valid = cache_ttl(s) };
	fill_attr(s, &a.attr, st);
	return put(rp, &a, sizeof(a));
}

/* How long a directory must have gone unchanged before cache=auto lets
 * the client keep its listing.  Timestamps move in whole ticks (a jiffy
 * on ext4, 2 s on FAT): a listing read in the tick of the directory's
 * latest change could outlive a second change in that same tick with the
 * timestamps unmoved.  A directory last changed longer ago than any tick
 * cannot change again without its ctime moving.  A future ctime is never
 * settled. */
#define DIR_SETTLED_NS (3 * 1000000000ll)

static bool ctime_settled(const struct timespec *ctime)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	int64_t age_ns = ((int64_t)now.tv_sec - ctime->tv_sec) * 1000000000ll +
			 (now.tv_nsec - ctime->tv_nsec);
	return age_ns > DIR_SETTLED_NS;
}

/* cache=auto: whether the client may keep the listing of the directory
 * being opened (`git status` lists every folder of a tree that rarely
 * changes).  Every OPENDIR reaches us, so we decide from the directory's
 * ctime, which no one can set back (an mtime can be: touch -d, tar,
 * rsync -a):
 *   - changed in the last DIR_SETTLED_NS: nothing kept (flags 0: the
 *     client drops what it holds and caches nothing);
 *   - settled, and the same ctime as when we last let a listing be read
 *     for keeping: keep it (KEEP_CACHE | CACHE_DIR);
 *   - settled, another ctime: drop what the client holds and keep the
 *     listing read now (CACHE_DIR alone), remembering this ctime.
 * A listing read after an open that saw a settled ctime reflects every
 * change up to it; any later change moves the ctime.  The client also
 * drops a kept listing when it changes the folder itself, and when its
 * mtime moved once its 1 s attributes expire (AUTO_INVAL_DATA), which
 * covers a directory held open and read again from the start. */
static uint32_t dir_listing_flags(struct fs_file *f)
{
	struct fs_inode *dir = f->inode;
	struct stat st;
	if (!dir || fstat(f->fd, &st) < 0 || !ctime_settled(&st.st_ctim)) {
		if (dir)
			dir->listing_ctime = (struct timespec){ 0 };
		return 0;
	}
	if ((dir->listing_ctime.tv_sec || dir->listing_ctime.tv_nsec) &&
	    dir->listing_ctime.tv_sec == st.st_ctim.tv_sec &&
	    dir->listing_ctime.tv_nsec == st.st_ctim.tv_nsec)
		return FOPEN_KEEP_CACHE | FOPEN_CACHE_DIR;
	dir->listing_ctime = st.st_ctim;
	return FOPEN_CACHE_DIR;
}

static uint32_t open_flags_for(const struct fs_server *s, struct fs_file *f)
{
	switch (s->opts.cache) {
	case FS_CACHE_NONE: return f->is_dir ? 0 : FOPEN_DIRECT_IO;
	case FS_CACHE_ALWAYS: return f->is_dir ? (FOPEN_KEEP_CACHE | FOPEN_CACHE_DIR) : FOPEN_KEEP_CACHE;
	default: return f->is_dir ? dir_listing_flags(f) : 0;
	}
}

/* ---- handlers -------------------------------------------------------- */

static int op_init(struct fs_server *s, struct req *r, struct reply *rp)
{
	struct fuse_init_in in = { 0 };
	if (r->len < 16)
		return -EINVAL;
	memcpy(&in, r->body, MIN(r->len, sizeof(in)));
	if (in.major != FUSE_KERNEL_VERSION || in.minor < 27)
		return -EPROTO;
	struct fuse_init_out out = { 0 };
	out.major = FUSE_KERNEL_VERSION;
	out.minor = MIN(in.minor, (uint32_t)FUSE_KERNEL_MINOR_VERSION);
	out.max_readahead = MIN(in.max_readahead, FS_FUSE_MAX_WRITE);
	/* HANDLE_KILLPRIV_V2: the server clears set-user/group-ID bits and
	 * file capabilities on write, truncate and chown itself (fs9p/core.c
	 * clear_privs), so the client need not ask for security.capability
	 * (a GETXATTR) before every write. */
	uint32_t want = FUSE_ASYNC_READ | FUSE_ATOMIC_O_TRUNC | FUSE_BIG_WRITES |
			FUSE_PARALLEL_DIROPS | FUSE_MAX_PAGES | FUSE_HANDLE_KILLPRIV_V2;
	/* READDIRPLUS fills the client's entry and attribute caches: useless
	 * work when nothing may be cached (virtiofsd turns it off too). */
	if (s->opts.cache != FS_CACHE_NONE)
		want |= FUSE_CACHE_SYMLINKS | FUSE_DO_READDIRPLUS | FUSE_READDIRPLUS_AUTO;
	if (s->opts.cache == FS_CACHE_AUTO)
		want |= FUSE_AUTO_INVAL_DATA;
	out.flags = in.flags & want;
	if (s->opts.fuse_uring && (in.flags & FUSE_INIT_EXT) &&
	    (in.flags2 & (uint32_t)(FUSE_OVER_IO_URING >> 32))) {
		out.flags |= FUSE_INIT_EXT;
		out.flags2 = (uint32_t)(FUSE_OVER_IO_URING >> 32);
		s->fuse_uring = true;
	}
	out.max_background = 64;
	out.congestion_threshold = 48;
	out.max_write = FS_FUSE_MAX_WRITE;
	out.time_gran = 1;
	out.max_pages = FS_FUSE_MAX_WRITE / 4096;
	s->fuse_inited = true;
	s->fuse_minor = out.minor;
	return put(rp, &out, sizeof(out));
}

static int op_lookup(struct fs_server *s, struct fs_inode *dir, struct req *r, struct reply *rp)
{
	int err;
	const char *name = take_name(r, &err);
	if (!name)
		return err;
	struct fs_inode *ino;
	struct stat st;
	int res = fs_lookup(s, dir, name, &ino, &st);
	if (res == -ENOENT && s->opts.cache != FS_CACHE_NONE)
		return reply_entry(s, rp, NULL, NULL);	/* cacheable miss */
	if (res < 0)
		return res;
	return reply_entry(s, rp, ino, &st);
}

static int op_forget(struct fs_server *s, struct req *r)
{
	struct fuse_forget_in in;
	struct fs_inode *ino = fs_inode_find(s, r->h.nodeid);
	if (take(r, &in, sizeof(in)) == 0 && ino)
		fs_forget(s, ino, in.nlookup);
	return NOREPLY;
}

static int op_batch_forget(struct fs_server *s, struct req *r)
{
	struct fuse_batch_forget_in in;
	if (take(r, &in, sizeof(in)) < 0)
		return NOREPLY;
	for (uint32_t i = 0; i < in.count; i++) {
		struct fuse_forget_one one;
		if (take(r, &one, sizeof(one)) < 0)
			break;	/* count larger than the message: stop */
		struct fs_inode *ino = fs_inode_find(s, one.nodeid);
		if (ino)
			fs_forget(s, ino, one.nlookup);
	}
	return NOREPLY;
}

static int op_getattr(struct fs_server *s, struct fs_inode *ino, struct reply *rp)
{
	struct stat st;
	int res = fs_getattr(s, ino, &st);
	return res < 0 ? res : reply_attr(s, rp, &st);
}

static int op_setattr(struct fs_server *s, struct fs_inode *ino, struct req *r, struct reply *rp)
{
	struct fuse_setattr_in in;
	if (take(r, &in, sizeof(in)) < 0)
		return -EINVAL;
	struct fs_setattr a = { 0 };
	struct fs_file *f = NULL;
	if (in.valid & FATTR_FH) {
		f = fs_file_find(s, in.fh);
		if (!f || f->inode != ino)
			return -EBADF;
		if (f->is_dir)
			f = NULL;
	}
	if (in.valid & FATTR_MODE) {
		a.valid |= FS_SET_MODE;
		a.mode = in.mode;
	}
	if (in.valid & FATTR_UID) {
		a.valid |= FS_SET_UID;
		a.uid = fs_map_uid(s, in.uid);
	}
	if (in.valid & FATTR_GID) {
		a.valid |= FS_SET_GID;
		a.gid = fs_map_gid(s, in.gid);
	}
	if (in.valid & FATTR_SIZE) {
		if (in.size > INT64_MAX)
			return -EFBIG;
		a.valid |= FS_SET_SIZE;
		a.size = in.size;
	}
	if (in.valid & FATTR_ATIME) {
		if (in.atimensec >= 1000000000u || in.atime > INT64_MAX)
			return -EINVAL;
		a.valid |= FS_SET_ATIME | ((in.valid & FATTR_ATIME_NOW) ? FS_SET_ATIME_NOW : 0);
		a.atime = (struct timespec){ .tv_sec = (time_t)in.atime, .tv_nsec = in.atimensec };
	} else if (in.valid & FATTR_ATIME_NOW) {
		a.valid |= FS_SET_ATIME | FS_SET_ATIME_NOW;
	}
	if (in.valid & FATTR_MTIME) {
		if (in.mtimensec >= 1000000000u || in.mtime > INT64_MAX)
			return -EINVAL;
		a.valid |= FS_SET_MTIME | ((in.valid & FATTR_MTIME_NOW) ? FS_SET_MTIME_NOW : 0);
		a.mtime = (struct timespec){ .tv_sec = (time_t)in.mtime, .tv_nsec = in.mtimensec };
	} else if (in.valid & FATTR_MTIME_NOW) {
		a.valid |= FS_SET_MTIME | FS_SET_MTIME_NOW;
	}
	struct stat st;
	int res = fs_setattr(s, ino, f, &a, &st);
	return res < 0 ? res : reply_attr(s, rp, &st);
}

static int op_readlink(struct fs_server *s, struct fs_inode *ino, struct reply *rp)
{
	size_t room = MIN(rp->cap - rp->len, (size_t)PATH_MAX);
	int n = fs_readlink(s, ino, body_at(rp), room);
	if (n < 0)
		return n;
	if ((size_t)n >= room)
		return -ENAMETOOLONG;
	rp->len += (size_t)n;
	return 0;
}

static int op_symlink(struct fs_server *s, struct fs_inode *dir, struct req *r, struct reply *rp)
{
	int err;
	const char *name = take_name(r, &err);
	if (!name)
		return err;
	const char *target = take_str(r);
	if (!target)
		return -EINVAL;
	struct fs_inode *ino;
	struct stat st;
	int res = fs_symlink(s, dir, name, target, &ino, &st);
	return res < 0 ? res : reply_entry(s, rp, ino, &st);
}

static int op_mknod(struct fs_server *s, struct fs_inode *dir, struct req *r, struct reply *rp)
{
	struct fuse_mknod_in in;
	if (take(r, &in, sizeof(in)) < 0)
		return -EINVAL;
	int err;
	const char *name = take_name(r, &err);
	if (!name)
		return err;
	struct fs_inode *ino;
	struct stat st;
	int res = fs_mknod(s, dir, name, in.mode, in.rdev, &ino, &st);
	return res < 0 ? res : reply_entry(s, rp, ino, &st);
}

static int op_mkdir(struct fs_server *s, struct fs_inode *dir, struct req *r, struct reply *rp)
{
	struct fuse_mkdir_in in;
	if (take(r, &in, sizeof(in)) < 0)
		return -EINVAL;
	int err;
	const char *name = take_name(r, &err);
	if (!name)
		return err;
	struct fs_inode *ino;
	struct stat st;
	int res = fs_mkdir(s, dir, name, in.mode, &ino, &st);
	return res < 0 ? res : reply_entry(s, rp, ino, &st);
}

static int op_unlink(struct fs_server *s, struct fs_inode *dir, struct req *r, bool is_dir)
{
	int err;
	const char *name = take_name(r, &err);
	if (!name)
		return err;
	return fs_unlink(s, dir, name, is_dir);
}

static int op_rename(struct fs_server *s, struct fs_inode *dir, struct req *r, bool v2)
{
	uint64_t newdir;
	uint32_t flags = 0;
	if (v2) {
		struct fuse_rename2_in in;
		if (take(r, &in, sizeof(in)) < 0)
			return -EINVAL;
		newdir = in.newdir;
		flags = in.flags;
	} else {
		struct fuse_rename_in in;
		if (take(r, &in, sizeof(in)) < 0)
			return -EINVAL;
		newdir = in.newdir;
	}
	int err;
	const char *oname = take_name(r, &err);
	if (!oname)
		return err;
	const char *nname = take_name(r, &err);
	if (!nname)
		return err;
	struct fs_inode *nd = fs_inode_find(s, newdir);
	if (!nd)
		return -ESTALE;
	return fs_rename(s, dir, oname, nd, nname, flags);
}

static int op_link(struct fs_server *s, struct fs_inode *dir, struct req *r, struct reply *rp)
{
	struct fuse_link_in in;
	if (take(r, &in, sizeof(in)) < 0)
		return -EINVAL;
	int err;
	const char *name = take_name(r, &err);
	if (!name)
		return err;
	struct fs_inode *ino = fs_inode_find(s, in.oldnodeid);
	if (!ino)
		return -ESTALE;
	struct stat st;
	int res = fs_link(s, ino, dir, name, &st);
	return res < 0 ? res : reply_entry(s, rp, ino, &st);
}

static int reply_open(struct fs_server *s, struct reply *rp, struct fs_file *f)
{
	struct fuse_open_out o = { .fh = f->fh, .open_flags = open_flags_for(s, f) };
	if (put(rp, &o, sizeof(o)) < 0) {
		fs_release(s, f);
		return -ERANGE;
	}
	return 0;
}

static int op_open(struct fs_server *s, struct fs_inode *ino, struct req *r, struct reply *rp, bool dir)
{
	struct fuse_open_in in;
	if (take(r, &in, sizeof(in)) < 0)
		return -EINVAL;
	struct fs_file *f;
	int res;
	if (dir)
		res = fs_opendir(s, ino, &f);
	else if (ino->type == S_IFDIR)
		res = -EISDIR;
	else
		res = fs_open(s, ino, (int)in.flags, &f);
	return res < 0 ? res : reply_open(s, rp, f);
}

static int op_create(struct fs_server *s, struct fs_inode *dir, struct req *r, struct reply *rp)
{
	struct fuse_create_in in;
	if (take(r, &in, sizeof(in)) < 0)
		return -EINVAL;
	int err;
	const char *name = take_name(r, &err);
	if (!name)
		return err;
	if (!S_ISREG(in.mode) && (in.mode & S_IFMT))
		return -EPERM;
	if (rp->cap < sizeof(struct fuse_entry_out) + sizeof(struct fuse_open_out))
		return -ERANGE;
	struct fs_inode *ino;
	struct fs_file *f;
	struct stat st;
	int res = fs_create(s, dir, name, (int)in.flags, in.mode, &ino, &st, &f);
	if (res < 0)
		return res;
	struct fuse_entry_out e;
	fill_entry(s, &e, ino, &st);
	put(rp, &e, sizeof(e));
	return reply_open(s, rp, f);
}

static struct fs_file *file_of(struct fs_server *s, uint64_t fh)
{
	return fs_file_find(s, fh);
}

/* ---- file I/O on io_uring ---------------------------------------------- */

/* Build the reply of a finished READ/WRITE/FSYNC/FALLOCATE: the data (if
 * any) is already in place after the header. */
static ssize_t finish_io(struct fs_aio *a, int res)
{
	uint8_t buf[OUT_HDR + sizeof(struct fuse_write_out)];
	struct fuse_out_header oh = { .len = OUT_HDR, .unique = a->unique };
	if (res < 0) {
		oh.error = res < -4095 ? -EIO : res;
	} else if (a->opcode == FUSE_READ) {
		oh.len += (uint32_t)res;
	} else if (a->opcode == FUSE_WRITE) {
		struct fuse_write_out o = { .size = (uint32_t)res };
		memcpy(buf + OUT_HDR, &o, sizeof(o));
		oh.len += sizeof(o);
	}
	memcpy(buf, &oh, sizeof(oh));
	size_t hlen = MIN((size_t)oh.len, sizeof(buf)), done = 0;
	for (unsigned i = 0; i < a->nhdr && done < hlen; i++) {
		size_t c = MIN(a->hdr[i].iov_len, hlen - done);
		memcpy(a->hdr[i].iov_base, buf + done, c);
		done += c;
	}
	return oh.len;
}

/* Start op on f asynchronously; data (READ: reply body, WRITE: request
 * payload) is the byte range [skip, skip + len) of iov[0..n).  Returns
 * PENDING, or 1 when it must be done synchronously (no transport
 * completion, no free slot, too many segments, SQ full). */
static int start_io(struct fs_server *s, struct req *r, struct fs_file *f, enum fs_aio_kind kind,
		    const struct iovec *iov, unsigned n, size_t skip, size_t len,
		    uint64_t off, uint64_t flen, int mode)
{
	struct fs_aio *a = fs_aio_get(s, r->done, r->ctx);
	if (!a)
		return 1;
	size_t hlen = OUT_HDR + (r->h.opcode == FUSE_WRITE ? sizeof(struct fuse_write_out) : 0);
	int h = fs_iov_slice(a->hdr, FS_AIO_HDR_IOV, r->out, r->nout, 0, hlen);
	int k = iov ? fs_iov_slice(a->iov, FS_AIO_MAX_IOV, iov, n, skip, len) : 0;
	if (h < 0 || k < 0 || (iov && k == 0)) {
		fs_aio_put(s, a);
		return 1;
	}
	a->nhdr = (unsigned)h;
	a->niov = (unsigned)k;
	a->unique = r->h.unique;
	a->opcode = r->h.opcode;
	a->finish = finish_io;
	bool rw = kind == FS_AIO_READ || kind == FS_AIO_WRITE;
	if (rw && fs_aio_try_now(s, a, f, kind == FS_AIO_WRITE, &off, len)) {
		/* Done without waiting: the data is in place, add the header. */
		r->replied = finish_io(a, (int)a->base);
		fs_aio_put(s, a);
		return REPLIED;
	}
	if (fs_aio_submit(s, a, f, kind, off, flen, mode) == 0)
		return PENDING;
	/* No SQE: finish synchronously from where the attempt stopped. */
	int c = 1;
	if (rw) {
		r->replied = finish_io(a, (int)fs_aio_run_now(a, f, kind == FS_AIO_WRITE, off));
		c = REPLIED;
	}
	fs_aio_put(s, a);
	return c;
}

static int op_read(struct fs_server *s, struct req *r, struct reply *rp)
{
	struct fuse_read_in in;
	if (take(r, &in, sizeof(in)) < 0)
		return -EINVAL;
	struct fs_file *f = file_of(s, in.fh);
	if (!f)
		return -EBADF;
	size_t n = MIN((size_t)in.size, rp->cap - rp->len);
	if (r->done && n) {
		int c = fs_read_check(s, f, in.offset);
		if (c < 0)
			return c;
		c = start_io(s, r, f, FS_AIO_READ, r->out, r->nout, OUT_HDR, n, in.offset, 0, 0);
		if (c != 1)
			return c;
	}
	if (r->nout > 1) {
		/* Straight into the request's own reply buffers (the guest's
		 * pages), not through fuse_out and a copy. */
		struct iovec seg[FS_AIO_MAX_IOV];
		int k = fs_iov_slice(seg, FS_AIO_MAX_IOV, r->out, r->nout, OUT_HDR, n);
		if (k > 0) {
			ssize_t got = fs_read(s, f, seg, k, in.offset);
			return got < 0 ? (int)got : reply_in_place(r, (size_t)got);
		}
	}
	struct iovec iov = { body_at(rp), n };
	ssize_t got = fs_read(s, f, &iov, 1, in.offset);
	if (got < 0)
		return (int)got;
	rp->len += (size_t)got;
	return 0;
}

static int op_write(struct fs_server *s, struct req *r, struct reply *rp)
{
	struct fuse_write_in in;
	if (take(r, &in, sizeof(in)) < 0)
		return -EINVAL;
	if (in.size > r->len - r->pos || in.size > FS_FUSE_MAX_WRITE)
		return -EINVAL;
	struct fs_file *f = file_of(s, in.fh);
	if (!f)
		return -EBADF;
	if (r->done && in.size && rp->cap >= sizeof(struct fuse_write_out)) {
		int c = fs_write_check(s, f, in.offset);
		if (c < 0)
			return c;
		c = start_io(s, r, f, FS_AIO_WRITE, r->in, r->nin, IN_HDR + r->pos, in.size,
			     in.offset, 0, 0);
		if (c != 1)
			return c;
	}
	/* The payload from the request's own buffers: a scattered request's
	 * was not copied (fs_fuse_handle_async), unless it has more pieces
	 * than one pwritev takes. */
	struct iovec seg[FS_AIO_MAX_IOV];
	int k = fs_iov_slice(seg, FS_AIO_MAX_IOV, r->in, r->nin, IN_HDR + r->pos, in.size);
	if (k < 0) {
		uint8_t *dst = s->fuse_in + IN_HDR + r->pos;
		iov_gather_range(dst, r->in, r->nin, IN_HDR + r->pos, in.size);
		seg[0] = (struct iovec){ dst, in.size };
		k = 1;
	}
	ssize_t n = fs_write(s, f, seg, k, in.offset);
	if (n < 0)
		return (int)n;
	struct fuse_write_out o = { .size = (uint32_t)n };
	return put(rp, &o, sizeof(o));
}

static int op_statfs(struct fs_server *s, struct fs_inode *ino, struct reply *rp)
{
	struct statfs sf;
	int res = fs_statfs(s, ino, &sf);
	if (res < 0)
		return res;
	struct fuse_statfs_out o = { 0 };
	o.st.blocks = sf.f_blocks;
	o.st.bfree = sf.f_bfree;
	o.st.bavail = sf.f_bavail;
	o.st.files = sf.f_files;
	o.st.ffree = sf.f_ffree;
	o.st.bsize = (uint32_t)sf.f_bsize;
	o.st.namelen = FS_NAME_MAX;
	o.st.frsize = (uint32_t)sf.f_frsize;
	return put(rp, &o, sizeof(o));
}

static int op_release(struct fs_server *s, struct req *r)
{
	struct fuse_release_in in;
	if (take(r, &in, sizeof(in)) < 0)
		return -EINVAL;
	struct fs_file *f = file_of(s, in.fh);
	if (!f)
		return -EBADF;
	fs_release(s, f);
	return 0;
}

static int op_fsync(struct fs_server *s, struct req *r)
{
	struct fuse_fsync_in in;
	if (take(r, &in, sizeof(in)) < 0)
		return -EINVAL;
	struct fs_file *f = file_of(s, in.fh);
	if (!f)
		return -EBADF;
	bool data = in.fsync_flags & FUSE_FSYNC_FDATASYNC;
	if (r->done && start_io(s, r, f, data ? FS_AIO_FDATASYNC : FS_AIO_FSYNC, NULL, 0, 0, 0,
				0, 0, 0) == PENDING)
		return PENDING;
	return fs_fsync(s, f, data);
}

/* FLUSH (every close()) has nothing to do here: writes are never
 * buffered and POSIX locks stay in the client.  ENOSYS tells Linux to stop
 * sending it, which saves a round trip on every close(). */
static int op_flush(struct fs_server *s, struct req *r)
{
	struct fuse_flush_in in;
	if (take(r, &in, sizeof(in)) < 0)
		return -EINVAL;
	return file_of(s, in.fh) ? -ENOSYS : -EBADF;
}

static int op_setxattr(struct fs_server *s, struct fs_inode *ino, struct req *r)
{
	struct fuse_setxattr_in in;
	if (take(r, &in, FUSE_COMPAT_SETXATTR_IN_SIZE) < 0)
		return -EINVAL;
	const char *name = take_str(r);
	if (!name)
		return -EINVAL;
	if (in.size > r->len - r->pos || in.size > 65536)
		return -EINVAL;
	return fs_setxattr(s, ino, name, r->body + r->pos, in.size, (int)in.flags);
}

static int op_getxattr(struct fs_server *s, struct fs_inode *ino, struct req *r,
		       struct reply *rp, bool list)
{
	struct fuse_getxattr_in in;
	if (take(r, &in, sizeof(in)) < 0)
		return -EINVAL;
	const char *name = NULL;
	if (!list && !(name = take_str(r)))
		return -EINVAL;
	size_t room = MIN((size_t)in.size, rp->cap - rp->len);
	ssize_t n = list ? fs_listxattr(s, ino, in.size ? body_at(rp) : NULL, in.size ? room : 0)
			 : fs_getxattr(s, ino, name, in.size ? body_at(rp) : NULL, in.size ? room : 0);
	if (n < 0)
		return (int)n;
	if (in.size == 0) {
		struct fuse_getxattr_out o = { .size = (uint32_t)n };
		return put(rp, &o, sizeof(o));
	}
	rp->len += (size_t)n;
	return 0;
}

static int op_removexattr(struct fs_server *s, struct fs_inode *ino, struct req *r)
{
	const char *name = take_str(r);
	if (!name)
		return -EINVAL;
	return fs_removexattr(s, ino, name);
}

/* readdir / readdirplus: pack entries until the client's buffer is full. */
struct dir_ctx {
	struct fs_server *s;
	struct fs_inode *dir;
	struct reply *rp;
	size_t limit;		/* body bytes the client asked for */
	bool plus;
};

static int emit_dirent(void *opaque, const char *name, size_t len, uint64_t ino,
		       unsigned type, uint64_t next_off)
{
	struct dir_ctx *c = opaque;
	size_t off = c->plus ? FUSE_NAME_OFFSET_DIRENTPLUS : FUSE_NAME_OFFSET;
	size_t size = FUSE_DIRENT_ALIGN(off + len);
	if (c->rp->len + size > c->limit)
		return 1;
	uint8_t *p = body_at(c->rp);
	memset(p, 0, size);
	struct fuse_dirent d = { .ino = ino, .off = next_off, .namelen = (uint32_t)len, .type = type };
	if (c->plus) {
		struct fuse_entry_out e;
		struct fs_inode *child = NULL;
		struct stat st;
		bool dots = (len == 1 && name[0] == '.') || (len == 2 && !memcmp(name, "..", 2));
		if (!dots && fs_name_ok(name, len) && fs_lookup(c->s, c->dir, name, &child, &st) == 0) {
			fill_entry(c->s, &e, child, &st);
			fs_inode_done(child);	/* its fd may go back to the LRU */
		} else {
			fill_entry(c->s, &e, NULL, NULL);
		}
		memcpy(p, &e, sizeof(e));
		memcpy(p + sizeof(e), &d, sizeof(d));
	} else {
		memcpy(p, &d, sizeof(d));
	}
	memcpy(p + off, name, len);
	c->rp->len += size;
	return 0;
}

static int op_readdir(struct fs_server *s, struct fs_inode *dir, struct req *r,
		      struct reply *rp, bool plus)
{
	struct fuse_read_in in;
	if (take(r, &in, sizeof(in)) < 0)
		return -EINVAL;
	struct fs_file *f = file_of(s, in.fh);
	if (!f || !f->is_dir)
		return -EBADF;
	struct dir_ctx c = { s, f->inode, rp, MIN((size_t)in.size, rp->cap), plus };
	(void)dir;
	int res = fs_readdir(s, f, in.offset, emit_dirent, &c);
	return res < 0 ? res : 0;
}

static int op_fsyncdir(struct fs_server *s, struct req *r)
{
	return op_fsync(s, r);
}

static int op_access(struct fs_server *s, struct fs_inode *ino, struct req *r)
{
	struct fuse_access_in in;
	if (take(r, &in, sizeof(in)) < 0)
		return -EINVAL;
	if (in.mask & ~(uint32_t)(R_OK | W_OK | X_OK))
		return -EINVAL;
	return fs_access(s, ino, (int)in.mask);
}

static int op_fallocate(struct fs_server *s, struct req *r)
{
	struct fuse_fallocate_in in;
	if (take(r, &in, sizeof(in)) < 0)
		return -EINVAL;
	struct fs_file *f = file_of(s, in.fh);
	if (!f)
		return -EBADF;
	if (r->done) {
		int c = fs_fallocate_check(s, f, (int)in.mode, in.offset, in.length);
		if (c < 0)
			return c;
		if (start_io(s, r, f, FS_AIO_FALLOCATE, NULL, 0, 0, 0, in.offset, in.length,
			     (int)in.mode) == PENDING)
			return PENDING;
	}
	return fs_fallocate(s, f, (int)in.mode, in.offset, in.length);
}

static int op_lseek(struct fs_server *s, struct req *r, struct reply *rp)
{
	struct fuse_lseek_in in;
	if (take(r, &in, sizeof(in)) < 0)
		return -EINVAL;
	struct fs_file *f = file_of(s, in.fh);
	if (!f)
		return -EBADF;
	int64_t off = fs_lseek(s, f, (int64_t)in.offset, (int)in.whence);
	if (off < 0)
		return (int)off;
	struct fuse_lseek_out o = { .offset = (uint64_t)off };
	return put(rp, &o, sizeof(o));
}

static int op_copy_file_range(struct fs_server *s, struct req *r, struct reply *rp)
{
	struct fuse_copy_file_range_in in;
	if (take(r, &in, sizeof(in)) < 0)
		return -EINVAL;
	if (in.flags)
		return -EINVAL;
	struct fs_file *fi = file_of(s, in.fh_in), *fo = file_of(s, in.fh_out);
	if (!fi || !fo)
		return -EBADF;
	ssize_t n = fs_copy_range(s, fi, in.off_in, fo, in.off_out, (size_t)MIN(in.len, (uint64_t)1 << 30));
	if (n < 0)
		return (int)n;
	struct fuse_write_out o = { .size = (uint32_t)n };
	return put(rp, &o, sizeof(o));
}

static int op_lk(struct fs_server *s, struct req *r, struct reply *rp, uint32_t opcode)
{
	struct fuse_lk_in in;
	if (take(r, &in, sizeof(in)) < 0)
		return -EINVAL;
	if (in.lk_flags & FUSE_LK_FLOCK)
		return -ENOSYS;	/* flock() stays in the client */
	struct fs_file *f = file_of(s, in.fh);
	if (!f)
		return -EBADF;
	if (in.lk.start > INT64_MAX || in.lk.end < in.lk.start)
		return -EINVAL;
	struct flock fl = { .l_type = (short)in.lk.type, .l_whence = SEEK_SET,
			    .l_start = (off_t)in.lk.start };
	fl.l_len = in.lk.end >= (uint64_t)INT64_MAX ? 0 : (off_t)(in.lk.end - in.lk.start + 1);
	int res = fs_lock(s, f, opcode == FUSE_GETLK ? F_OFD_GETLK : F_OFD_SETLK, &fl);
	if (res < 0)
		return res;
	if (opcode != FUSE_GETLK)
		return 0;
	struct fuse_lk_out o = { 0 };
	o.lk.type = (uint32_t)fl.l_type;
	o.lk.start = (uint64_t)fl.l_start;
	o.lk.end = fl.l_len ? (uint64_t)(fl.l_start + fl.l_len - 1) : (uint64_t)INT64_MAX;
	o.lk.pid = 0;
	return put(rp, &o, sizeof(o));
}

/* Operations that name an inode in the header. */
static int dispatch_inode(struct fs_server *s, struct fs_inode *ino, struct req *r, struct reply *rp)
{
	switch (r->h.opcode) {
	case FUSE_LOOKUP: return op_lookup(s, ino, r, rp);
	case FUSE_GETATTR: return op_getattr(s, ino, rp);
	case FUSE_SETATTR: return op_setattr(s, ino, r, rp);
	case FUSE_READLINK: return op_readlink(s, ino, rp);
	case FUSE_SYMLINK: return op_symlink(s, ino, r, rp);
	case FUSE_MKNOD: return op_mknod(s, ino, r, rp);
	case FUSE_MKDIR: return op_mkdir(s, ino, r, rp);
	case FUSE_UNLINK: return op_unlink(s, ino, r, false);
	case FUSE_RMDIR: return op_unlink(s, ino, r, true);
	case FUSE_RENAME: return op_rename(s, ino, r, false);
	case FUSE_RENAME2: return op_rename(s, ino, r, true);
	case FUSE_LINK: return op_link(s, ino, r, rp);
	case FUSE_OPEN: return op_open(s, ino, r, rp, false);
	case FUSE_OPENDIR: return op_open(s, ino, r, rp, true);
	case FUSE_CREATE: return op_create(s, ino, r, rp);
	case FUSE_STATFS: return op_statfs(s, ino, rp);
	case FUSE_SETXATTR: return op_setxattr(s, ino, r);
	case FUSE_GETXATTR: return op_getxattr(s, ino, r, rp, false);
	case FUSE_LISTXATTR: return op_getxattr(s, ino, r, rp, true);
	case FUSE_REMOVEXATTR: return op_removexattr(s, ino, r);
	case FUSE_ACCESS: return op_access(s, ino, r);
	case FUSE_READDIR: return op_readdir(s, ino, r, rp, false);
	case FUSE_READDIRPLUS: return op_readdir(s, ino, r, rp, true);
	default: return -ENOSYS;
	}
}

static int dispatch(struct fs_server *s, struct req *r, struct reply *rp)
{
	uint32_t op = r->h.opcode;
	if (op < FS_FUSE_OPCODES)
		s->fuse_ops[op]++;
	if (op == FUSE_INIT)
		return s->fuse_inited ? -EPROTO : op_init(s, r, rp);
	if (!s->fuse_inited)
		return -EPROTO;
	switch (op) {
	case FUSE_FORGET: return op_forget(s, r);
	case FUSE_BATCH_FORGET: return op_batch_forget(s, r);
	case FUSE_INTERRUPT: return NOREPLY;	/* file I/O in flight completes anyway */
	case FUSE_DESTROY:
		fs_forget_all(s);
		s->fuse_destroyed = true;
		return 0;
	case FUSE_READ: return op_read(s, r, rp);
	case FUSE_WRITE: return op_write(s, r, rp);
	case FUSE_RELEASE:
	case FUSE_RELEASEDIR: return op_release(s, r);
	case FUSE_FSYNC: return op_fsync(s, r);
	case FUSE_FSYNCDIR: return op_fsyncdir(s, r);
	case FUSE_FLUSH: return op_flush(s, r);
	case FUSE_FALLOCATE: return op_fallocate(s, r);
	case FUSE_LSEEK: return op_lseek(s, r, rp);
	case FUSE_COPY_FILE_RANGE: return op_copy_file_range(s, r, rp);
	case FUSE_SYNCFS: return fs_syncfs(s);
	case FUSE_GETLK:
	case FUSE_SETLK:
	case FUSE_SETLKW: return op_lk(s, r, rp, op);
	default: break;
	}
	struct fs_inode *ino = fs_inode_find(s, r->h.nodeid);
	if (!ino)
		return op == FUSE_LOOKUP || op == FUSE_GETATTR ? -ESTALE : -ESTALE;
	return dispatch_inode(s, ino, r, rp);
}

/* ---- entry point ------------------------------------------------------ */

ssize_t fs_fuse_handle(struct fs_server *s, const struct iovec *in, unsigned nin,
		       const struct iovec *out, unsigned nout)
{
	return fs_fuse_handle_async(s, in, nin, out, nout, NULL, NULL);
}

ssize_t fs_fuse_handle_async(struct fs_server *s, const struct iovec *in, unsigned nin,
			     const struct iovec *out, unsigned nout, fs_done_fn done, void *ctx)
{
	size_t out_total = iov_total(out, nout);
	if (out_total < OUT_HDR)
		return -EINVAL;
	struct reply rp;
	bool direct = nout == 1;
	rp.buf = direct ? out[0].iov_base : s->fuse_out;
	rp.cap = MIN(out_total, (size_t)FS_FUSE_BUF_SIZE) - OUT_HDR;
	rp.len = 0;

	struct req r = { .in = in, .nin = nin, .out = out, .nout = nout, .done = done, .ctx = ctx };
	size_t in_total = iov_total(in, nin);
	int res;
	const uint8_t *msg;
	if (nin == 1) {
		msg = in[0].iov_base;
	} else {
		/* A scattered request is copied whole, except a WRITE's
		 * payload, which op_write takes from the chain itself. */
		msg = s->fuse_in;
		size_t head = MIN(in_total, WRITE_HEAD);
		iov_gather(s->fuse_in, head, in, nin);
		uint32_t opcode = 0;
		if (head == WRITE_HEAD)
			memcpy(&opcode, msg + offsetof(struct fuse_in_header, opcode), sizeof(opcode));
		if (opcode != FUSE_WRITE)	/* the rest, after the head */
			iov_gather_range(s->fuse_in + head, in, nin, head,
					 MIN(in_total, (size_t)FS_FUSE_BUF_SIZE) - head);
	}
	if (in_total < sizeof(r.h)) {
		res = -EINVAL;	/* no header: reply to unique 0 */
		if (in_total >= 16)
			memcpy(&r.h, msg, 16);	/* len, opcode, unique */
		goto reply;
	}
	memcpy(&r.h, msg, sizeof(r.h));
	if (r.h.len < sizeof(r.h) || r.h.len > in_total || r.h.len > FS_FUSE_BUF_SIZE) {
		res = -EINVAL;
		goto reply;
	}
	r.body = msg + sizeof(r.h);
	r.len = r.h.len - sizeof(r.h);
	fs_begin(s);
	res = dispatch(s, &r, &rp);
	if (res == NOREPLY)
		return 0;
	if (res == PENDING)
		return FS_PENDING;
	if (res == REPLIED)
		return r.replied;
reply:;
	if (res < 0) {
		rp.len = 0;
		if (res < -4095)
			res = -EIO;
	}
	struct fuse_out_header oh = {
		.len = (uint32_t)(OUT_HDR + rp.len),
		.error = res < 0 ? res : 0,
		.unique = r.h.unique,
	};
	memcpy(rp.buf, &oh, sizeof(oh));
	if (!direct)
		iov_scatter(out, nout, rp.buf, oh.len);
	return (ssize_t)oh.len;
}

void fs_fuse_print_stats(const struct fs_server *s, int fd)
{
	static const char *const names[FS_FUSE_OPCODES] = {
		[FUSE_LOOKUP] = "LOOKUP", [FUSE_FORGET] = "FORGET", [FUSE_GETATTR] = "GETATTR",
		[FUSE_SETATTR] = "SETATTR", [FUSE_READLINK] = "READLINK", [FUSE_SYMLINK] = "SYMLINK",
		[FUSE_MKNOD] = "MKNOD", [FUSE_MKDIR] = "MKDIR", [FUSE_UNLINK] = "UNLINK",
		[FUSE_RMDIR] = "RMDIR", [FUSE_RENAME] = "RENAME", [FUSE_LINK] = "LINK",
		[FUSE_OPEN] = "OPEN", [FUSE_READ] = "READ", [FUSE_WRITE] = "WRITE",
		[FUSE_STATFS] = "STATFS", [FUSE_RELEASE] = "RELEASE", [FUSE_FSYNC] = "FSYNC",
		[FUSE_SETXATTR] = "SETXATTR", [FUSE_GETXATTR] = "GETXATTR",
		[FUSE_LISTXATTR] = "LISTXATTR", [FUSE_REMOVEXATTR] = "REMOVEXATTR",
		[FUSE_FLUSH] = "FLUSH", [FUSE_INIT] = "INIT", [FUSE_OPENDIR] = "OPENDIR",
		[FUSE_READDIR] = "READDIR", [FUSE_RELEASEDIR] = "RELEASEDIR",
		[FUSE_FSYNCDIR] = "FSYNCDIR", [FUSE_GETLK] = "GETLK", [FUSE_SETLK] = "SETLK",
		[FUSE_SETLKW] = "SETLKW", [FUSE_ACCESS] = "ACCESS", [FUSE_CREATE] = "CREATE",
		[FUSE_INTERRUPT] = "INTERRUPT", [FUSE_DESTROY] = "DESTROY",
		[FUSE_BATCH_FORGET] = "BATCH_FORGET", [FUSE_FALLOCATE] = "FALLOCATE",
		[FUSE_READDIRPLUS] = "READDIRPLUS", [FUSE_RENAME2] = "RENAME2",
		[FUSE_LSEEK] = "LSEEK", [FUSE_COPY_FILE_RANGE] = "COPY_FILE_RANGE",
		[FUSE_SYNCFS] = "SYNCFS",
	};
	for (unsigned i = 0; i < FS_FUSE_OPCODES; i++) {
		if (!s->fuse_ops[i])
			continue;
		if (names[i])
			dprintf(fd, "%s %llu\n", names[i], (unsigned long long)s->fuse_ops[i]);
		else
			dprintf(fd, "opcode-%u %llu\n", i, (unsigned long long)s->fuse_ops[i]);
	}
}

bool fs_fuse_uring_agreed(const struct fs_server *s)
{
	return s->fuse_uring;
}

bool fs_fuse_destroyed(const struct fs_server *s)
{
	return s->fuse_destroyed;
}

void fs_fuse_reset(struct fs_server *s)
{
	fs_forget_all(s);
	s->fuse_inited = false;
	s->fuse_destroyed = false;
	s->fuse_uring = false;
}
