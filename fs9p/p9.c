/* fs9p/p9.c - the 9P2000.L codec on the passthrough core (virtio-9p and
 * `kvmbox fs-serve --9p`).
 *
 * A session is one 9P connection: its negotiated msize and its fid table.
 * A fid names an inode and holds one client reference on it (the same
 * count FUSE's LOOKUP/FORGET keep), plus an open handle after Tlopen or
 * Tlcreate, or an xattr buffer after Txattrwalk/Txattrcreate.  Every field
 * is decoded through a bounds-checked cursor; a message that is short,
 * longer than msize, or lies about a string length gets Rlerror(EINVAL),
 * and every reply is built with bounds checks against min(msize, buffer).
 * Names in walks and creates go through the core's name rules (".." in a
 * walk goes to the recorded parent and never above the root).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include "common/util.h"
#include "fs9p/core.h"

enum {
	P9_TLERROR = 6, P9_RLERROR, P9_TSTATFS = 8, P9_RSTATFS, P9_TLOPEN = 12, P9_RLOPEN,
	P9_TLCREATE = 14, P9_RLCREATE, P9_TSYMLINK = 16, P9_RSYMLINK, P9_TMKNOD = 18, P9_RMKNOD,
	P9_TRENAME = 20, P9_RRENAME, P9_TREADLINK = 22, P9_RREADLINK, P9_TGETATTR = 24,
	P9_RGETATTR, P9_TSETATTR = 26, P9_RSETATTR, P9_TXATTRWALK = 30, P9_RXATTRWALK,
	P9_TXATTRCREATE = 32, P9_RXATTRCREATE, P9_TREADDIR = 40, P9_RREADDIR, P9_TFSYNC = 50,
	P9_RFSYNC, P9_TLOCK = 52, P9_RLOCK, P9_TGETLOCK = 54, P9_RGETLOCK, P9_TLINK = 70,
	P9_RLINK, P9_TMKDIR = 72, P9_RMKDIR, P9_TRENAMEAT = 74, P9_RRENAMEAT, P9_TUNLINKAT = 76,
	P9_RUNLINKAT, P9_TVERSION = 100, P9_RVERSION, P9_TAUTH = 102, P9_RAUTH, P9_TATTACH = 104,
	P9_RATTACH, P9_TFLUSH = 108, P9_RFLUSH, P9_TWALK = 110, P9_RWALK, P9_TREAD = 116,
	P9_RREAD, P9_TWRITE = 118, P9_RWRITE, P9_TCLUNK = 120, P9_RCLUNK, P9_TREMOVE = 122,
	P9_RREMOVE,
};

#define P9_NOFID 0xffffffffu
#define P9_HDR 7		/* size[4] type[1] tag[2] */
#define P9_MAX_WELEM 16
#define P9_MAX_FIDS 65536
#define P9_XATTR_MAX 65536
#define QT_DIR 0x80
#define QT_SYMLINK 0x02

/* A fid: an inode with one client reference, maybe an open handle. */
struct p9_fid {
	uint32_t fid;
	struct fs_inode *ino;
	struct fs_file *file;
	uint8_t *xbuf;		/* xattr value (read after xattrwalk, written after xattrcreate) */
	size_t xlen, xsize;
	char *xname;		/* non-NULL: this fid writes xattr xname on clunk */
	int xflags;
	struct p9_fid *next;
};

struct fs_9p_session {
	struct fs_server *s;
	uint32_t msize;
	bool versioned;		/* Tversion seen: other messages are served */
	struct p9_fid *fids[1024];	/* hash chains */
	unsigned nfids;
	struct fs_aio *pending;	/* Tread/Twrite/Tfsync in flight on io_uring */
	/* the request being handled: where an asynchronous reply goes */
	fs_done_fn done;
	void *ctx;
	uint16_t tag;
	uint8_t *out;
	ssize_t replied;	/* P9_REPLIED: the reply's length */
};

#define P9_PENDING 0x100	/* handler result: the reply comes from fs9p/aio.c */
#define P9_REPLIED 0x101	/* handler result: reply written, ss->replied bytes */

/* Decoding cursor. */
struct cur {
	const uint8_t *p;
	size_t len, pos;
	bool bad;
};

static const uint8_t *need(struct cur *c, size_t n)
{
	if (c->bad || c->len - c->pos < n) {
		c->bad = true;
		return NULL;
	}
	const uint8_t *p = c->p + c->pos;
	c->pos += n;
	return p;
}

static uint64_t getn(struct cur *c, unsigned n)
{
	const uint8_t *p = need(c, n);
	uint64_t v = 0;
	for (unsigned i = 0; p && i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}
static void skip(struct cur *c, size_t n)
{
	(void)need(c, n);
}
#define get8(c) ((uint8_t)getn(c, 1))
#define get16(c) ((uint16_t)getn(c, 2))
#define get32(c) ((uint32_t)getn(c, 4))
#define get64(c) getn(c, 8)

/* A string into dst (NUL-terminated); refuses embedded NULs and overlong. */
static int getstr(struct cur *c, char *dst, size_t cap)
{
	uint16_t n = get16(c);
	const uint8_t *p = need(c, n);
	if (!p)
		return -EINVAL;
	if (n >= cap)
		return -ENAMETOOLONG;
	if (memchr(p, 0, n))
		return -EINVAL;
	memcpy(dst, p, n);
	dst[n] = 0;
	return 0;
}

/* Encoding cursor. */
struct out {
	uint8_t *p;
	size_t cap, pos;
	bool full;
};

static uint8_t *room(struct out *o, size_t n)
{
	if (o->full || o->cap - o->pos < n) {
		o->full = true;
		return NULL;
	}
	uint8_t *p = o->p + o->pos;
	o->pos += n;
	return p;
}

static void putn(struct out *o, uint64_t v, unsigned n)
{
	uint8_t *p = room(o, n);
	for (unsigned i = 0; p && i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
#define put8(o, v) putn(o, (uint64_t)(v), 1)
#define put16(o, v) putn(o, (uint64_t)(v), 2)
#define put32(o, v) putn(o, (uint64_t)(v), 4)
#define put64(o, v) putn(o, (uint64_t)(v), 8)

static void putstr(struct out *o, const char *s, size_t n)
{
	put16(o, n);
	uint8_t *p = room(o, n);
	if (p)
		memcpy(p, s, n);
}

static void putqid(struct out *o, mode_t type, uint64_t ino)
{
	put8(o, S_ISDIR(type) ? QT_DIR : S_ISLNK(type) ? QT_SYMLINK : 0);
	put32(o, 0);
	put64(o, ino);
}

/* ---- fids ------------------------------------------------------------ */

static struct p9_fid **fid_slot(struct fs_9p_session *ss, uint32_t fid)
{
	struct p9_fid **p = &ss->fids[(fid * 2654435761u) % ARRAY_SIZE(ss->fids)];
	while (*p && (*p)->fid != fid)
		p = &(*p)->next;
	return p;
}

static struct p9_fid *fid_get(struct fs_9p_session *ss, uint32_t fid)
{
	return *fid_slot(ss, fid);
}

/* A new fid on ino, taking over one client reference the caller holds. */
static int fid_new(struct fs_9p_session *ss, uint32_t fid, struct fs_inode *ino)
{
	struct p9_fid **slot = fid_slot(ss, fid);
	if (*slot || fid == P9_NOFID)
		return -EBADF;
	if (ss->nfids >= P9_MAX_FIDS)
		return -ENFILE;
	struct p9_fid *f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->fid = fid;
	f->ino = ino;
	*slot = f;
	ss->nfids++;
	return 0;
}

static int fid_clunk(struct fs_9p_session *ss, uint32_t fid)
{
	struct p9_fid **slot = fid_slot(ss, fid), *f = *slot;
	if (!f)
		return -EBADF;
	*slot = f->next;
	ss->nfids--;
	int r = 0;
	if (f->xname)
		r = f->xlen == f->xsize ? fs_setxattr(ss->s, f->ino, f->xname, f->xbuf, f->xlen, f->xflags)
					: -EINVAL;
	if (f->file)
		fs_release(ss->s, f->file);
	fs_forget(ss->s, f->ino, 1);
	free(f->xbuf);
	free(f->xname);
	free(f);
	return r;
}

struct fs_9p_session *fs_9p_session_new(struct fs_server *s)
{
	struct fs_9p_session *ss = calloc(1, sizeof(*ss));
	if (ss) {
		ss->s = s;
		ss->msize = 8192;
	}
	return ss;
}

static void clunk_all(struct fs_9p_session *ss)
{
	for (size_t b = 0; b < ARRAY_SIZE(ss->fids); b++)
		while (ss->fids[b])
			fid_clunk(ss, ss->fids[b]->fid);
}

void fs_9p_session_free(struct fs_9p_session *ss)
{
	if (!ss)
		return;
	/* Requests in flight still complete (their done runs); they just no
	 * longer belong to a session. */
	for (struct fs_aio *a = ss->pending; a; a = a->ss_next)
		a->ss = NULL;
	clunk_all(ss);
	free(ss);
}

/* ---- file I/O on io_uring ---------------------------------------------- */

static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_hdr(uint8_t *p, uint32_t size, uint8_t type, uint16_t tag)
{
	put_le(p, size, 4);
	p[4] = type;
	put_le(p + 5, tag, 2);
}

/* Build the reply of a finished Tread/Twrite/Tfsync (a Tread's data is in
 * place already) and the Rflush of a Tflush that waited for it. */
static ssize_t finish_9p(struct fs_aio *a, int res)
{
	struct fs_9p_session *ss = a->ss;
	if (ss) {
		for (struct fs_aio **p = &ss->pending; *p; p = &(*p)->ss_next) {
			if (*p == a) {
				*p = a->ss_next;
				break;
			}
		}
	}
	if (a->flush_done) {
		put_hdr(a->flush_out, P9_HDR, P9_RFLUSH, a->flush_tag);
		a->flush_len = P9_HDR;
	}
	uint32_t size = P9_HDR;
	if (res < 0) {
		size += 4;
		put_hdr(a->out, size, P9_RLERROR, a->tag);
		put_le(a->out + P9_HDR, (uint32_t)-res, 4);
		return size;
	}
	if (a->opcode == P9_TFSYNC) {
		put_hdr(a->out, size, P9_RFSYNC, a->tag);
		return size;
	}
	size += 4 + (a->opcode == P9_TREAD ? (uint32_t)res : 0);
	put_hdr(a->out, size, (uint8_t)(a->opcode + 1), a->tag);
	put_le(a->out + P9_HDR, (uint32_t)res, 4);
	return size;
}

/* Start a Tread/Twrite/Tfsync on io_uring; P9_PENDING, P9_REPLIED (done
 * at once), or 1 when it must be served synchronously. */
static int start_9p(struct fs_9p_session *ss, uint8_t type, struct fs_file *f,
		    enum fs_aio_kind kind, void *data, size_t len, uint64_t off)
{
	struct fs_aio *a = fs_aio_get(ss->s, ss->done, ss->ctx);
	if (!a)
		return 1;
	if (data) {
		a->iov[0] = (struct iovec){ data, len };
		a->niov = 1;
	}
	a->opcode = type;
	a->tag = ss->tag;
	a->out = ss->out;
	a->ss = ss;
	a->finish = finish_9p;
	bool rw = kind == FS_AIO_READ || kind == FS_AIO_WRITE;
	if (rw && fs_aio_try_now(ss->s, a, f, kind == FS_AIO_WRITE, &off, len)) {
		ss->replied = finish_9p(a, (int)a->base);	/* done without waiting */
		fs_aio_put(ss->s, a);
		return P9_REPLIED;
	}
	if (fs_aio_submit(ss->s, a, f, kind, off, 0, 0) < 0) {
		int c = 1;	/* no SQE: finish synchronously */
		if (rw) {
			ss->replied = finish_9p(a, (int)fs_aio_run_now(a, f, kind == FS_AIO_WRITE, off));
			c = P9_REPLIED;
		}
		fs_aio_put(ss->s, a);
		return c;
	}
	a->ss_next = ss->pending;
	ss->pending = a;
	return P9_PENDING;
}

/* Tflush: answered after the request it names when that one is in flight. */
static int t_flush(struct fs_9p_session *ss, struct cur *c)
{
	uint16_t oldtag = get16(c);
	if (c->bad)
		return -EINVAL;
	if (!ss->done)
		return 0;
	for (struct fs_aio *a = ss->pending; a; a = a->ss_next) {
		if (a->tag == oldtag && !a->flush_done) {
			a->flush_done = ss->done;
			a->flush_ctx = ss->ctx;
			a->flush_out = ss->out;
			a->flush_tag = ss->tag;
			return P9_PENDING;
		}
	}
	return 0;	/* already answered */
}

/* ---- handlers ---------------------------------------------------------- */

#define FID(c, var)                                             \
	struct p9_fid *var = fid_get(ss, get32(c));            \
	if ((c)->bad)                                           \
		return -EINVAL;                                 \
	if (!var)                                               \
		return -EBADF

static int t_version(struct fs_9p_session *ss, struct cur *c, struct out *o)
{
	uint32_t msize = get32(c);
	char ver[32];
	if (getstr(c, ver, sizeof(ver)) < 0 || msize < 4096)
		return -EINVAL;
	clunk_all(ss);	/* a new version resets the session */
	ss->msize = MIN(msize, (uint32_t)FS_9P_MAX_MSIZE);
	ss->versioned = true;
	put32(o, ss->msize);
	if (!strncmp(ver, "9P2000.L", 8))
		putstr(o, "9P2000.L", 8);
	else
		putstr(o, "unknown", 7);
	return 0;
}

static int t_attach(struct fs_9p_session *ss, struct cur *c, struct out *o)
{
	uint32_t fid = get32(c);
	skip(c, 4);	/* afid: no authentication */
	char uname[256], aname[256];
	if (getstr(c, uname, sizeof(uname)) < 0 || getstr(c, aname, sizeof(aname)) < 0)
		return -EINVAL;
	skip(c, 4);	/* n_uname: the server acts as the invoking user */
	if (c->bad)
		return -EINVAL;
	struct fs_inode *root = ss->s->root;
	int r = fid_new(ss, fid, root);
	if (r < 0)
		return r;
	fs_inode_hold(root);
	putqid(o, S_IFDIR, root->ino);
	return 0;
}

static int t_walk(struct fs_9p_session *ss, struct cur *c, struct out *o)
{
	FID(c, f);
	uint32_t newfid = get32(c);
	uint16_t n = get16(c);
	if (c->bad || n > P9_MAX_WELEM)
		return -EINVAL;
	if (newfid != f->fid && fid_get(ss, newfid))
		return -EBADF;
	if (f->file && newfid == f->fid)
		return -EBADF;	/* an open fid cannot become another file */
	struct fs_inode *cur = f->ino;
	fs_inode_hold(cur);
	size_t nq_pos = o->pos;
	put16(o, 0);
	uint16_t done = 0;
	int err = 0;
	for (; done < n; done++) {
		char name[FS_NAME_MAX + 1];
		err = getstr(c, name, sizeof(name));
		if (err < 0)
			break;
		struct fs_inode *next;
		struct stat st;
		if (!strcmp(name, "..") || !strcmp(name, ".")) {
			/* ".." is the recorded parent, never above the root. */
			next = name[1] ? fs_inode_parent(ss->s, cur) : cur;
			fs_inode_hold(next);
			err = fs_getattr(ss->s, next, &st);
			if (err < 0) {
				fs_forget(ss->s, next, 1);
				break;
			}
		} else {
			err = fs_lookup(ss->s, cur, name, &next, &st);
			if (err < 0)
				break;
		}
		fs_forget(ss->s, cur, 1);
		cur = next;
		putqid(o, st.st_mode, st.st_ino);
	}
	if (done < n) {
		fs_forget(ss->s, cur, 1);
		if (done == 0)
			return err;
		/* Partial walk: the qids so far, newfid not made. */
		uint8_t *p = o->p + nq_pos;
		p[0] = (uint8_t)done;
		p[1] = (uint8_t)(done >> 8);
		return 0;
	}
	if (newfid == f->fid) {
		fs_forget(ss->s, f->ino, 1);
		f->ino = cur;
	} else {
		int r = fid_new(ss, newfid, cur);
		if (r < 0) {
			fs_forget(ss->s, cur, 1);
			return r;
		}
	}
	uint8_t *p = o->p + nq_pos;
	p[0] = (uint8_t)n;
	p[1] = (uint8_t)(n >> 8);
	return 0;
}

/* 9P2000.L open flags are Linux's (x86 values); keep what we honour. */
static int p9_open_flags(uint32_t fl)
{
	int r = (int)(fl & 3);
	if (fl & 01000)
		r |= O_TRUNC;
	if (fl & 02000)
		r |= O_APPEND;
	if (fl & 010000)
		r |= O_DSYNC;
	if (fl & 04000000)
		r |= O_SYNC;
	return r;
}

static int iounit(struct fs_9p_session *ss)
{
	return (int)(ss->msize - 24);
}

static int t_lopen(struct fs_9p_session *ss, struct cur *c, struct out *o)
{
	FID(c, f);
	uint32_t flags = get32(c);
	if (c->bad)
		return -EINVAL;
	if (f->file || f->xbuf)
		return -EBADF;
	int r = fs_open(ss->s, f->ino, p9_open_flags(flags), &f->file);
	if (r < 0)
		return r;
	putqid(o, f->ino->type, f->ino->ino);
	put32(o, iounit(ss));
	return 0;
}

static int t_lcreate(struct fs_9p_session *ss, struct cur *c, struct out *o)
{
	FID(c, f);
	char name[FS_NAME_MAX + 1];
	int r = getstr(c, name, sizeof(name));
	uint32_t flags = get32(c), mode = get32(c);
	skip(c, 4);	/* gid: files belong to the invoking user */
	if (r < 0 || c->bad)
		return r < 0 ? r : -EINVAL;
	if (f->file)
		return -EBADF;
	struct fs_inode *ino;
	struct fs_file *file;
	struct stat st;
	r = fs_create(ss->s, f->ino, name, p9_open_flags(flags) | ((flags & 0200) ? O_EXCL : 0),
		      mode, &ino, &st, &file);
	if (r < 0)
		return r;
	/* The fid now names the new, open file. */
	fs_forget(ss->s, f->ino, 1);
	f->ino = ino;
	f->file = file;
	putqid(o, st.st_mode, st.st_ino);
	put32(o, iounit(ss));
	return 0;
}

/* Reply qid of a newly made name (r: the core's result); the client
 * reference the core counted is not kept. */
static int made(struct fs_9p_session *ss, struct out *o, int r, struct fs_inode *ino, struct stat *st)
{
	if (r < 0)
		return r;
	putqid(o, st->st_mode, st->st_ino);
	fs_forget(ss->s, ino, 1);
	return 0;
}

static int t_symlink(struct fs_9p_session *ss, struct cur *c, struct out *o)
{
	FID(c, f);
	char name[FS_NAME_MAX + 1], target[PATH_MAX];
	int r = getstr(c, name, sizeof(name));
	if (r == 0)
		r = getstr(c, target, sizeof(target));
	skip(c, 4);
	if (r < 0 || c->bad)
		return r < 0 ? r : -EINVAL;
	struct fs_inode *ino = NULL;
	struct stat st;
	int res = fs_symlink(ss->s, f->ino, name, target, &ino, &st);
	return made(ss, o, res, ino, &st);
}

static int t_mknod(struct fs_9p_session *ss, struct cur *c, struct out *o)
{
	FID(c, f);
	char name[FS_NAME_MAX + 1];
	int r = getstr(c, name, sizeof(name));
	uint32_t mode = get32(c);
	skip(c, 4);
	skip(c, 4);
	skip(c, 4);
	if (r < 0 || c->bad)
		return r < 0 ? r : -EINVAL;
	struct fs_inode *ino = NULL;
	struct stat st;
	int res = fs_mknod(ss->s, f->ino, name, mode, 0, &ino, &st);
	return made(ss, o, res, ino, &st);
}

static int t_mkdir(struct fs_9p_session *ss, struct cur *c, struct out *o)
{
	FID(c, f);
	char name[FS_NAME_MAX + 1];
	int r = getstr(c, name, sizeof(name));
	uint32_t mode = get32(c);
	skip(c, 4);
	if (r < 0 || c->bad)
		return r < 0 ? r : -EINVAL;
	struct fs_inode *ino = NULL;
	struct stat st;
	int res = fs_mkdir(ss->s, f->ino, name, mode, &ino, &st);
	return made(ss, o, res, ino, &st);
}

static int t_rename(struct fs_9p_session *ss, struct cur *c)
{
	FID(c, f);
	FID(c, d);
	char name[FS_NAME_MAX + 1];
	int r = getstr(c, name, sizeof(name));
	if (r < 0)
		return r;
	r = fs_name_check(name);
	return r < 0 ? r : fs_rename_inode(ss->s, f->ino, d->ino, name);
}

static int t_renameat(struct fs_9p_session *ss, struct cur *c)
{
	FID(c, od);
	char oname[FS_NAME_MAX + 1], nname[FS_NAME_MAX + 1];
	int r = getstr(c, oname, sizeof(oname));
	FID(c, nd);
	if (r == 0)
		r = getstr(c, nname, sizeof(nname));
	return r < 0 ? r : fs_rename(ss->s, od->ino, oname, nd->ino, nname, 0);
}

static int t_unlinkat(struct fs_9p_session *ss, struct cur *c)
{
	FID(c, d);
	char name[FS_NAME_MAX + 1];
	int r = getstr(c, name, sizeof(name));
	uint32_t flags = get32(c);
	if (r < 0 || c->bad)
		return r < 0 ? r : -EINVAL;
	return fs_unlink(ss->s, d->ino, name, flags & 0x200 /* AT_REMOVEDIR */);
}

static int t_link(struct fs_9p_session *ss, struct cur *c)
{
	FID(c, d);
	FID(c, f);
	char name[FS_NAME_MAX + 1];
	int r = getstr(c, name, sizeof(name));
	if (r < 0)
		return r;
	struct stat st;
	r = fs_link(ss->s, f->ino, d->ino, name, &st);
	if (r == 0)
		fs_forget(ss->s, f->ino, 1);	/* fs_link counted a reference */
	return r;
}

static int t_readlink(struct fs_9p_session *ss, struct cur *c, struct out *o)
{
	FID(c, f);
	char buf[PATH_MAX];
	int n = fs_readlink(ss->s, f->ino, buf, sizeof(buf));
	if (n < 0)
		return n;
	if ((size_t)n >= sizeof(buf))
		return -ENAMETOOLONG;
	putstr(o, buf, (size_t)n);
	return 0;
}

static int t_getattr(struct fs_9p_session *ss, struct cur *c, struct out *o)
{
	FID(c, f);
	skip(c, 8);	/* request mask: we always return the basic set */
	struct stat st;
	int r = fs_getattr(ss->s, f->ino, &st);
	if (r < 0)
		return r;
	put64(o, 0x7ffULL);	/* P9_GETATTR_BASIC */
	putqid(o, st.st_mode, st.st_ino);
	put32(o, st.st_mode);
	put32(o, fs_map_uid(ss->s, st.st_uid));
	put32(o, fs_map_gid(ss->s, st.st_gid));
	put64(o, st.st_nlink);
	put64(o, st.st_rdev);
	put64(o, st.st_size);
	put64(o, st.st_blksize);
	put64(o, st.st_blocks);
	put64(o, st.st_atim.tv_sec);
	put64(o, st.st_atim.tv_nsec);
	put64(o, st.st_mtim.tv_sec);
	put64(o, st.st_mtim.tv_nsec);
	put64(o, st.st_ctim.tv_sec);
	put64(o, st.st_ctim.tv_nsec);
	for (int i = 0; i < 4; i++)
		put64(o, 0);	/* btime, gen, data_version */
	return 0;
}

static int t_setattr(struct fs_9p_session *ss, struct cur *c)
{
	FID(c, f);
	uint32_t valid = get32(c), mode = get32(c), uid = get32(c), gid = get32(c);
	uint64_t size = get64(c), as = get64(c), an = get64(c), ms = get64(c), mn = get64(c);
	if (c->bad)
		return -EINVAL;
	struct fs_setattr a = { 0 };
	if (valid & 1) {
		a.valid |= FS_SET_MODE;
		a.mode = mode;
	}
	if (valid & 2) {
		a.valid |= FS_SET_UID;
		a.uid = fs_map_uid(ss->s, uid);
	}
	if (valid & 4) {
		a.valid |= FS_SET_GID;
		a.gid = fs_map_gid(ss->s, gid);
	}
	if (valid & 8) {
		if (size > INT64_MAX)
			return -EFBIG;
		a.valid |= FS_SET_SIZE;
		a.size = size;
	}
	if (valid & 16) {	/* ATIME; with ATIME_SET (128) the given time */
		a.valid |= FS_SET_ATIME | ((valid & 128) ? 0 : FS_SET_ATIME_NOW);
		if (an >= 1000000000u || as > INT64_MAX)
			return -EINVAL;
		a.atime = (struct timespec){ .tv_sec = (time_t)as, .tv_nsec = (long)an };
	}
	if (valid & 32) {
		a.valid |= FS_SET_MTIME | ((valid & 256) ? 0 : FS_SET_MTIME_NOW);
		if (mn >= 1000000000u || ms > INT64_MAX)
			return -EINVAL;
		a.mtime = (struct timespec){ .tv_sec = (time_t)ms, .tv_nsec = (long)mn };
	}
	struct stat st;
	struct fs_file *file = f->file && !f->file->is_dir ? f->file : NULL;
	return fs_setattr(ss->s, f->ino, file, &a, &st);
}

static int t_statfs(struct fs_9p_session *ss, struct cur *c, struct out *o)
{
	FID(c, f);
	struct statfs sf;
	int r = fs_statfs(ss->s, f->ino, &sf);
	if (r < 0)
		return r;
	put32(o, (uint32_t)sf.f_type);
	put32(o, (uint32_t)sf.f_bsize);
	put64(o, sf.f_blocks);
	put64(o, sf.f_bfree);
	put64(o, sf.f_bavail);
	put64(o, sf.f_files);
	put64(o, sf.f_ffree);
	uint64_t fsid;
	memcpy(&fsid, &sf.f_fsid, sizeof(fsid));
	put64(o, fsid);
	put32(o, FS_NAME_MAX);
	return 0;
}

static int t_read(struct fs_9p_session *ss, struct cur *c, struct out *o)
{
	FID(c, f);
	uint64_t off = get64(c);
	uint32_t count = get32(c);
	if (c->bad)
		return -EINVAL;
	size_t n = MIN((size_t)count, o->cap - o->pos - 4);
	if (f->xbuf && !f->xname) {	/* xattr value from xattrwalk */
		size_t len = off < f->xlen ? MIN(n, f->xlen - off) : 0;
		put32(o, len);
		uint8_t *p = room(o, len);
		if (p && len)
			memcpy(p, f->xbuf + off, len);
		return 0;
	}
	if (!f->file || f->file->is_dir)
		return -EBADF;
	if (ss->done && n) {
		int r = fs_read_check(ss->s, f->file, off);
		if (r < 0)
			return r;
		r = start_9p(ss, P9_TREAD, f->file, FS_AIO_READ, o->p + o->pos + 4, n, off);
		if (r != 1)
			return r;
	}
	size_t at = o->pos;
	put32(o, 0);
	struct iovec iov = { o->p + o->pos, n };
	ssize_t got = fs_read(ss->s, f->file, &iov, 1, off);
	if (got < 0)
		return (int)got;
	o->pos += (size_t)got;
	uint8_t *p = o->p + at;
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)((uint32_t)got >> (8 * i));
	return 0;
}

static int t_write(struct fs_9p_session *ss, struct cur *c, struct out *o)
{
	FID(c, f);
	uint64_t off = get64(c);
	uint32_t count = get32(c);
	const uint8_t *data = need(c, count);
	if (!data)
		return -EINVAL;
	if (f->xname) {	/* xattr value for xattrcreate */
		if (off != f->xlen || count > f->xsize - f->xlen)
			return -EINVAL;
		memcpy(f->xbuf + f->xlen, data, count);
		f->xlen += count;
		put32(o, count);
		return 0;
	}
	if (!f->file || f->file->is_dir)
		return -EBADF;
	if (ss->done && count) {
		int r = fs_write_check(ss->s, f->file, off);
		if (r < 0)
			return r;
		r = start_9p(ss, P9_TWRITE, f->file, FS_AIO_WRITE, (void *)data, count, off);
		if (r != 1)
			return r;
	}
	struct iovec iov = { (void *)data, count };
	ssize_t n = fs_write(ss->s, f->file, &iov, 1, off);
	if (n < 0)
		return (int)n;
	put32(o, (uint32_t)n);
	return 0;
}

struct rd_ctx {
	struct out *o;
	size_t limit;		/* end of the data the client accepts */
};

static int emit_9p(void *opaque, const char *name, size_t len, uint64_t ino, unsigned type,
		   uint64_t next_off)
{
	struct rd_ctx *r = opaque;
	size_t need_b = 13 + 8 + 1 + 2 + len;
	if (r->o->pos + need_b > r->limit)
		return 1;
	mode_t m = type == 4 /* DT_DIR */ ? S_IFDIR : type == 10 /* DT_LNK */ ? S_IFLNK : S_IFREG;
	putqid(r->o, m, ino);
	put64(r->o, next_off);
	put8(r->o, type);
	putstr(r->o, name, len);
	return 0;
}

static int t_readdir(struct fs_9p_session *ss, struct cur *c, struct out *o)
{
	FID(c, f);
	uint64_t off = get64(c);
	uint32_t count = get32(c);
	if (c->bad)
		return -EINVAL;
	if (!f->file || !f->file->is_dir)
		return -EBADF;
	size_t at = o->pos;
	put32(o, 0);
	struct rd_ctx r = { o, MIN(o->cap, o->pos + count) };
	int res = fs_readdir(ss->s, f->file, off, emit_9p, &r);
	if (res < 0)
		return res;
	uint32_t len = (uint32_t)(o->pos - at - 4);
	for (int i = 0; i < 4; i++)
		o->p[at + i] = (uint8_t)(len >> (8 * i));
	return 0;
}

static int t_fsync(struct fs_9p_session *ss, struct cur *c)
{
	FID(c, f);
	uint32_t datasync = get32(c);
	if (c->bad)
		return -EINVAL;
	if (!f->file)
		return -EBADF;
	if (ss->done && start_9p(ss, P9_TFSYNC, f->file, datasync ? FS_AIO_FDATASYNC : FS_AIO_FSYNC,
				 NULL, 0, 0) == P9_PENDING)
		return P9_PENDING;
	return fs_fsync(ss->s, f->file, datasync != 0);
}

static int t_xattrwalk(struct fs_9p_session *ss, struct cur *c, struct out *o)
{
	FID(c, f);
	uint32_t newfid = get32(c);
	char name[XATTR_NAME_MAX + 1];
	int r = getstr(c, name, sizeof(name));
	if (r < 0 || c->bad)
		return r < 0 ? r : -EINVAL;
	uint8_t *buf = malloc(P9_XATTR_MAX);
	if (!buf)
		return -ENOMEM;
	ssize_t n = name[0] ? fs_getxattr(ss->s, f->ino, name, buf, P9_XATTR_MAX)
			    : fs_listxattr(ss->s, f->ino, (char *)buf, P9_XATTR_MAX);
	if (n < 0) {
		free(buf);
		return (int)n;
	}
	fs_inode_hold(f->ino);
	r = fid_new(ss, newfid, f->ino);
	if (r < 0) {
		fs_forget(ss->s, f->ino, 1);
		free(buf);
		return r;
	}
	struct p9_fid *x = fid_get(ss, newfid);
	x->xbuf = buf;
	x->xlen = (size_t)n;
	put64(o, (uint64_t)n);
	return 0;
}

static int t_xattrcreate(struct fs_9p_session *ss, struct cur *c)
{
	FID(c, f);
	char name[XATTR_NAME_MAX + 1];
	int r = getstr(c, name, sizeof(name));
	uint64_t size = get64(c);
	uint32_t flags = get32(c);
	if (r < 0 || c->bad)
		return r < 0 ? r : -EINVAL;
	if (size > P9_XATTR_MAX)
		return -E2BIG;
	if (f->file || f->xbuf)
		return -EBADF;
	if (strncmp(name, "user.", 5))
		return -EOPNOTSUPP;
	f->xbuf = malloc(size ? size : 1);
	f->xname = strdup(name);
	if (!f->xbuf || !f->xname) {
		free(f->xbuf);
		free(f->xname);
		f->xbuf = NULL;
		f->xname = NULL;
		return -ENOMEM;
	}
	f->xsize = size;
	f->xlen = 0;
	f->xflags = (int)(flags & 3);
	return 0;
}

static int t_lock(struct fs_9p_session *ss, struct cur *c, struct out *o, bool get)
{
	FID(c, f);
	uint8_t type = get8(c);
	if (!get)
		skip(c, 4);	/* flags: blocking requests are tried once */
	uint64_t start = get64(c), length = get64(c);
	uint32_t proc = get32(c);
	char client[256];
	int r = getstr(c, client, sizeof(client));
	if (r < 0 || c->bad)
		return r < 0 ? r : -EINVAL;
	if (!f->file || type > 2 || start > INT64_MAX || length > INT64_MAX)
		return -EINVAL;
	static const short types[] = { F_RDLCK, F_WRLCK, F_UNLCK };
	struct flock fl = { .l_type = types[type], .l_whence = SEEK_SET, .l_start = (off_t)start,
			    .l_len = (off_t)length };
	r = fs_lock(ss->s, f->file, get ? F_OFD_GETLK : F_OFD_SETLK, &fl);
	if (!get) {
		put8(o, r == 0 ? 0 : (r == -EAGAIN || r == -EACCES) ? 1 : 2);
		return 0;
	}
	if (r < 0)
		return r;
	put8(o, fl.l_type == F_RDLCK ? 0 : fl.l_type == F_WRLCK ? 1 : 2);
	put64(o, (uint64_t)fl.l_start);
	put64(o, (uint64_t)fl.l_len);
	put32(o, fl.l_type == F_UNLCK ? proc : 0);
	putstr(o, client, strlen(client));
	return 0;
}

static int t_remove(struct fs_9p_session *ss, struct cur *c)
{
	uint32_t fid = get32(c);
	struct p9_fid *f = fid_get(ss, fid);
	if (c->bad)
		return -EINVAL;
	if (!f)
		return -EBADF;
	int r = fs_remove_inode(ss->s, f->ino);
	fid_clunk(ss, fid);	/* clunked whatever the outcome */
	return r;
}

static int dispatch(struct fs_9p_session *ss, uint8_t type, struct cur *c, struct out *o)
{
	if (type != P9_TVERSION && !ss->versioned)
		return -EPROTO;
	switch (type) {
	case P9_TVERSION: return t_version(ss, c, o);
	case P9_TAUTH: return -ENOENT;	/* the 9P convention for "no auth needed" */
	case P9_TATTACH: return t_attach(ss, c, o);
	case P9_TFLUSH: return t_flush(ss, c);
	case P9_TWALK: return t_walk(ss, c, o);
	case P9_TLOPEN: return t_lopen(ss, c, o);
	case P9_TLCREATE: return t_lcreate(ss, c, o);
	case P9_TSYMLINK: return t_symlink(ss, c, o);
	case P9_TMKNOD: return t_mknod(ss, c, o);
	case P9_TMKDIR: return t_mkdir(ss, c, o);
	case P9_TRENAME: return t_rename(ss, c);
	case P9_TRENAMEAT: return t_renameat(ss, c);
	case P9_TUNLINKAT: return t_unlinkat(ss, c);
	case P9_TLINK: return t_link(ss, c);
	case P9_TREADLINK: return t_readlink(ss, c, o);
	case P9_TGETATTR: return t_getattr(ss, c, o);
	case P9_TSETATTR: return t_setattr(ss, c);
	case P9_TSTATFS: return t_statfs(ss, c, o);
	case P9_TREAD: return t_read(ss, c, o);
	case P9_TWRITE: return t_write(ss, c, o);
	case P9_TREADDIR: return t_readdir(ss, c, o);
	case P9_TFSYNC: return t_fsync(ss, c);
	case P9_TXATTRWALK: return t_xattrwalk(ss, c, o);
	case P9_TXATTRCREATE: return t_xattrcreate(ss, c);
	case P9_TLOCK: return t_lock(ss, c, o, false);
	case P9_TGETLOCK: return t_lock(ss, c, o, true);
	case P9_TCLUNK: {
		uint32_t fid = get32(c);
		return c->bad ? -EINVAL : fid_clunk(ss, fid);
	}
	case P9_TREMOVE: return t_remove(ss, c);
	default: return -EOPNOTSUPP;
	}
}

ssize_t fs_9p_handle(struct fs_9p_session *ss, const uint8_t *msg, size_t len, uint8_t *out,
		     size_t out_cap)
{
	return fs_9p_handle_async(ss, msg, len, out, out_cap, NULL, NULL);
}

ssize_t fs_9p_handle_async(struct fs_9p_session *ss, const uint8_t *msg, size_t len,
			   uint8_t *out, size_t out_cap, fs_done_fn done, void *ctx)
{
	if (out_cap < P9_HDR + 4)
		return -EINVAL;
	struct cur c = { msg, len, 0, false };
	uint32_t size = get32(&c);
	uint8_t type = get8(&c);
	uint16_t tag = get16(&c);
	struct out o = { out, MIN(out_cap, (size_t)MAX(ss->msize, 4096u)), P9_HDR, false };
	int r;
	if (c.bad || size < P9_HDR || size > len || size > ss->msize || (type & 1)) {
		r = -EINVAL;
	} else {
		c.len = size;
		fs_begin(ss->s);
		ss->done = done;
		ss->ctx = ctx;
		ss->tag = tag;
		ss->out = out;
		r = dispatch(ss, type, &c, &o);
		ss->done = NULL;
		if (r == P9_PENDING)
			return FS_PENDING;
		if (r == P9_REPLIED)
			return ss->replied;
		if (r == 0 && o.full)
			r = -ERANGE;	/* cannot happen for a well-sized msize */
	}
	uint8_t rtype = (uint8_t)(type + 1);
	if (r < 0) {
		o.pos = P9_HDR;
		o.full = false;
		put32(&o, (uint32_t)-r);
		rtype = P9_RLERROR;
	}
	size_t total = o.pos;
	o.pos = 0;
	put32(&o, total);
	put8(&o, rtype);
	put16(&o, tag);
	return (ssize_t)total;
}
