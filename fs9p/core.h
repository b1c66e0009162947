/* fs9p/core.h - the passthrough core shared by the FUSE and 9P codecs
 * (internal to fs9p/).
 *
 * Inodes are keyed by host (dev, ino) and hold an O_PATH fd.  Every name is
 * resolved one component at a time from a held directory fd with openat2()
 * and RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS plus
 * O_NOFOLLOW, so no name can leave the share.  Open files are re-opened from
 * the inode's own O_PATH fd through /proc/self/fd (our own fd, resolved
 * already), never by path, so a symlink swapped in between lookup and open
 * changes nothing.
 *
 * fd budget: O_PATH fds sit on an LRU list capped at max_path_fds; an
 * evicted inode keeps (parent, name) and is re-resolved on next use, its
 * (dev, ino) checked so a replaced entry reads as ESTALE, never as another
 * file.  We chose parent+name over name_to_handle_at/open_by_handle_at
 * because open_by_handle_at needs CAP_DAC_READ_SEARCH and kvmbox runs
 * unprivileged.  Inodes used by the request in progress are never evicted.
 *
 * All functions return 0 (or a count) or -errno.
 */
#ifndef KVMBOX_FS9P_CORE_H
#define KVMBOX_FS9P_CORE_H

#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "common/loop.h"
#include "fs9p/fs.h"

#define FS_NAME_MAX 255
#define FS_FUSE_OPCODES 64	/* opcodes counted (FUSE's are below 64) */
#define FS_NEG_SLOTS 1024	/* negative-lookup cache entries */

/* One host inode the client references. */
struct fs_inode {
	uint64_t id;		/* client-visible id (FUSE nodeid); root is 1 */
	dev_t dev;
	ino_t ino;
	mode_t type;		/* S_IFMT bits, fixed for the inode's life */
	int fd;			/* O_PATH fd, or -1 while evicted */
	uint64_t nlookup;	/* client references (FUSE lookup count) */
	unsigned refs;		/* internal references: children, open files */
	struct fs_inode *parent;	/* a directory holding one of its names */
	char *name;		/* that name (re-resolve after eviction) */
	bool unlinked;		/* its recorded name is gone: keep fd, no LRU */
	uint64_t dir_gen;	/* bumped when we change this directory */
	struct timespec listing_ctime;	/* directories: the settled ctime the
					 * client's kept listing was read at
					 * (zero: none may be kept; fuse.c) */
	uint64_t last_use;	/* request serial that last used the fd */
	struct fs_inode *lru_prev, *lru_next;	/* on the LRU while fd >= 0 */
	struct fs_inode *id_next, *key_next;	/* hash chains */
};

/* An open file or directory handle. */
struct fs_file {
	uint64_t fh;		/* client-visible handle */
	int fd;
	struct fs_inode *inode;	/* holds a reference (NULL: a released file
				 * whose inode fs_forget_all() dropped) */
	bool is_dir;
	bool privs_checked;	/* setuid/caps cleared before the first write */
	int oflags;		/* how it was opened (a restore opens it so again) */
	/* directories: getdents64 buffer and cursor */
	uint8_t *dbuf;
	unsigned dlen, dpos;
	int64_t dir_off;	/* offset the next unconsumed entry has */
	unsigned inflight;	/* io_uring operations using fd */
	enum { FS_DATA_UNKNOWN, FS_DATA_IN_MEMORY, FS_DATA_ON_DISK } data_kind;	/* fs_aio */
	bool released;		/* client let go: freed when inflight is 0 */
	struct fs_file *next;	/* hash chain, or the zombie list once released */
};

struct fs_neg {
	uint64_t parent;	/* inode id; 0: empty slot */
	uint64_t dir_gen;
	uint64_t expires_ns;
	uint8_t len;
	char name[FS_NAME_MAX + 1];
};

struct fs_server {
	struct fs_opts opts;
	struct fs_inode *root;
	/* inode tables: by id and by (dev, ino); chained, power-of-two sized */
	struct fs_inode **by_id, **by_key;
	size_t nbuckets, ninodes;
	struct fs_file **files;
	size_t nfbuckets, nfiles;
	uint64_t next_id, next_fh;
	/* LRU of inodes holding an O_PATH fd (head: most recent) */
	struct fs_inode *lru_head, *lru_tail;
	unsigned npath_fds, max_path_fds;
	uint64_t serial;	/* current request number */
	uint64_t neg_ttl_ns;	/* 0: negative cache off */
	uint64_t neg_hits;
	struct fs_neg *neg;	/* FS_NEG_SLOTS, direct-mapped */
	/* Asynchronous file I/O (fs9p/aio.c): NULL loop: all synchronous. */
	struct loop *loop;
	struct fs_aio *aio_pool, *aio_free;	/* FS_AIO_SLOTS, preallocated */
	unsigned aio_busy;	/* slots in flight */
	bool no_nowait_write;	/* RWF_NOWAIT writes unsupported here */
	bool aio_no_try;	/* tests: skip the RWF_NOWAIT attempt */
	struct fs_file *zombies;	/* released files still used by I/O in flight */
	/* FUSE codec state */
	bool fuse_inited, fuse_destroyed;
	bool fuse_uring;	/* INIT agreed on FUSE_OVER_IO_URING */
	uint32_t fuse_minor;
	uint64_t fuse_ops[FS_FUSE_OPCODES];	/* requests seen per opcode */
	uint8_t *fuse_in, *fuse_out;	/* linearised request / reply scratch */
	mode_t umask;		/* this process's: the guest's own was applied by its
				 * kernel, so creations undo ours (fix_created_mode) */
};

/* Snapshots (fs9p/snapshot.c): an inode without an fd (resolved by its
 * parent and name when first used; the caller links those), -EEXIST for an
 * id or (dev, ino) already there; whether a name in dir is one the client
 * never sees; a handle numbered fh reopened on ino as oflags say (1: the
 * file could not be reopened, the handle answers EBADF). */
int fs_restore_inode(struct fs_server *s, uint64_t id, dev_t dev, ino_t ino, mode_t type,
		     uint64_t nlookup, struct fs_inode **out);
bool fs_name_hidden(const struct fs_server *s, const struct fs_inode *dir, const char *name);
int fs_restore_file(struct fs_server *s, uint64_t fh, struct fs_inode *ino, int oflags,
		    struct fs_file **out);

/* Start a request: bring the fd cache back under its cap; inodes touched
 * from now on are not evicted until the next call. */
void fs_begin(struct fs_server *s);

bool fs_name_ok(const char *name, size_t len);
int fs_name_check(const char *name);	/* 0, -EINVAL, -ENAMETOOLONG */

struct fs_inode *fs_inode_find(struct fs_server *s, uint64_t id);
int fs_inode_fd(struct fs_server *s, struct fs_inode *ino);
void fs_inode_ref(struct fs_inode *ino);
void fs_inode_unref(struct fs_server *s, struct fs_inode *ino);
void fs_forget(struct fs_server *s, struct fs_inode *ino, uint64_t n);
/* Let the inode's fd be evicted even though this request used it. */
void fs_inode_done(struct fs_inode *ino);

/* Client ids <-> host ids. */
uint32_t fs_map_uid(const struct fs_server *s, uint32_t uid);
uint32_t fs_map_gid(const struct fs_server *s, uint32_t gid);

/* Name operations: on success *out carries one new client reference
 * (nlookup) and st its attributes (host ids). */
int fs_lookup(struct fs_server *s, struct fs_inode *dir, const char *name,
	      struct fs_inode **out, struct stat *st);
int fs_mkdir(struct fs_server *s, struct fs_inode *dir, const char *name, mode_t mode,
	     struct fs_inode **out, struct stat *st);
int fs_symlink(struct fs_server *s, struct fs_inode *dir, const char *name,
	       const char *target, struct fs_inode **out, struct stat *st);
int fs_mknod(struct fs_server *s, struct fs_inode *dir, const char *name, mode_t mode,
	     dev_t rdev, struct fs_inode **out, struct stat *st);
int fs_link(struct fs_server *s, struct fs_inode *ino, struct fs_inode *dir,
	    const char *name, struct stat *st);
/* Create (or open, without O_EXCL) a regular file and open it. */
int fs_create(struct fs_server *s, struct fs_inode *dir, const char *name, int flags,
	      mode_t mode, struct fs_inode **out, struct stat *st, struct fs_file **file);
int fs_unlink(struct fs_server *s, struct fs_inode *dir, const char *name, bool is_dir);
int fs_rename(struct fs_server *s, struct fs_inode *odir, const char *oname,
	      struct fs_inode *ndir, const char *nname, unsigned flags);
int fs_readlink(struct fs_server *s, struct fs_inode *ino, char *buf, size_t size);

int fs_getattr(struct fs_server *s, struct fs_inode *ino, struct stat *st);
/* Attribute change; which bits of valid (FS_SET_*) apply. */
#define FS_SET_MODE 1u
#define FS_SET_UID 2u
#define FS_SET_GID 4u
#define FS_SET_SIZE 8u
#define FS_SET_ATIME 16u
#define FS_SET_MTIME 32u
#define FS_SET_ATIME_NOW 64u
#define FS_SET_MTIME_NOW 128u
struct fs_setattr {
	unsigned valid;
	mode_t mode;
	uint32_t uid, gid;	/* host ids (already mapped) */
	uint64_t size;
	struct timespec atime, mtime;
};
int fs_setattr(struct fs_server *s, struct fs_inode *ino, struct fs_file *f,
	       const struct fs_setattr *a, struct stat *st);
int fs_access(struct fs_server *s, struct fs_inode *ino, int mask);

int fs_open(struct fs_server *s, struct fs_inode *ino, int flags, struct fs_file **out);
struct fs_file *fs_file_find(struct fs_server *s, uint64_t fh);
void fs_release(struct fs_server *s, struct fs_file *f);
ssize_t fs_read(struct fs_server *s, struct fs_file *f, const struct iovec *iov, int n, uint64_t off);
ssize_t fs_write(struct fs_server *s, struct fs_file *f, const struct iovec *iov, int n, uint64_t off);
int fs_fsync(struct fs_server *s, struct fs_file *f, bool datasync);
int fs_fallocate(struct fs_server *s, struct fs_file *f, int mode, uint64_t off, uint64_t len);
int64_t fs_lseek(struct fs_server *s, struct fs_file *f, int64_t off, int whence);
ssize_t fs_copy_range(struct fs_server *s, struct fs_file *in, uint64_t off_in,
		      struct fs_file *out, uint64_t off_out, size_t len);
int fs_lock(struct fs_server *s, struct fs_file *f, int cmd, struct flock *fl);
int fs_statfs(struct fs_server *s, struct fs_inode *ino, struct statfs *st);
int fs_syncfs(struct fs_server *s);

/* Directory listing: emit is called for each entry from offset off on with
 * the offset of the entry after it; it returns 0 to go on, 1 when the reply
 * is full (the entry is then not consumed), or -errno. */
typedef int (*fs_dirent_fn)(void *ctx, const char *name, size_t len, uint64_t ino,
			    unsigned type, uint64_t next_off);
int fs_opendir(struct fs_server *s, struct fs_inode *ino, struct fs_file **out);
int fs_readdir(struct fs_server *s, struct fs_file *f, uint64_t off, fs_dirent_fn emit, void *ctx);

/* Extended attributes: only the user.* namespace. */
ssize_t fs_getxattr(struct fs_server *s, struct fs_inode *ino, const char *name, void *buf, size_t size);
ssize_t fs_listxattr(struct fs_server *s, struct fs_inode *ino, char *buf, size_t size);
int fs_setxattr(struct fs_server *s, struct fs_inode *ino, const char *name,
		const void *val, size_t size, int flags);
int fs_removexattr(struct fs_server *s, struct fs_inode *ino, const char *name);

/* One more client reference (a 9P fid cloned onto the inode). */
void fs_inode_hold(struct fs_inode *ino);
/* The directory holding ino's recorded name (9P "..": the root's is itself). */
struct fs_inode *fs_inode_parent(struct fs_server *s, struct fs_inode *ino);
/* Unlink or rename an inode by the name we know it under (9P remove and
 * rename); ESTALE when that name no longer means this inode. */
int fs_remove_inode(struct fs_server *s, struct fs_inode *ino);
int fs_rename_inode(struct fs_server *s, struct fs_inode *ino, struct fs_inode *ndir,
		    const char *nname);

/* ---- asynchronous file I/O (fs9p/aio.c) -----------------------------
 *
 * READ, WRITE, FSYNC and FALLOCATE go to the server's io_uring loop when
 * the transport gave a completion callback and a slot is free; otherwise
 * (no loop, pool empty, SQ full) the codec does the same work
 * synchronously, so the answer never depends on which path ran.  A slot is
 * taken from a fixed pool (no allocation per request), the codec fills in
 * its reply state and iovecs, and fs_aio_submit() queues the SQE.  When the
 * CQE arrives, finish() builds the reply from the result and the
 * transport's done() is called with its length.  The file's fd stays open
 * while an operation uses it (fs_release() defers the close), so a RELEASE
 * or clunk racing a READ can never redirect the READ to a reused fd. */
#define FS_AIO_MAX_IOV 260	/* a 1 MiB read over 4 KiB guest pages + header */
#define FS_AIO_HDR_IOV 24	/* segments the reply header may span */
/* READ/WRITE of at least this many bytes go to an io-wq worker at once
 * (IOSQE_ASYNC) rather than being copied on the serving thread: a guest's
 * readahead keeps two or more 1 MiB READs in flight, and their copies then
 * run side by side while the thread serves the next request.  Smaller
 * ones (source files, 4 KiB random reads) are served inline, where a
 * thread switch would cost more than the copy. */
#define FS_AIO_PARALLEL_MIN (128u << 10)

enum fs_aio_kind { FS_AIO_READ, FS_AIO_WRITE, FS_AIO_FSYNC, FS_AIO_FDATASYNC, FS_AIO_FALLOCATE };

struct fs_aio {
	struct loop_op op;
	struct fs_server *s;
	struct fs_file *f;		/* holds f->inflight */
	/* Codec: build the reply for CQE result res; returns its length. */
	ssize_t (*finish)(struct fs_aio *a, int res);
	fs_done_fn done;
	void *ctx;
	/* FUSE reply state */
	uint64_t unique;
	uint32_t opcode;
	struct iovec hdr[FS_AIO_HDR_IOV];	/* where the reply header goes */
	unsigned nhdr;
	/* 9P reply state */
	struct fs_9p_session *ss;	/* NULL once the session is gone */
	uint16_t tag;
	uint8_t *out;
	/* 9P Tflush of this request: answered right after it */
	fs_done_fn flush_done;
	void *flush_ctx;
	uint8_t *flush_out;
	uint16_t flush_tag;
	ssize_t flush_len;
	struct fs_aio *ss_next;		/* session's list of requests in flight */
	bool parallel;			/* large: an io-wq worker copies it (IOSQE_ASYNC) */
	/* data buffers: read into / written from */
	struct iovec iov[FS_AIO_MAX_IOV];
	unsigned niov;
	size_t base;			/* bytes already done before io_uring */
	struct fs_aio *next_free;
};

/* A free slot, or NULL (no loop attached, or all in flight). */
struct fs_aio *fs_aio_get(struct fs_server *s, fs_done_fn done, void *ctx);
/* Try the READ/WRITE of a->iov (len bytes at *off) at once without
 * blocking (preadv2/pwritev2 with RWF_NOWAIT: page-cache hits, filesystems
 * that write without blocking; on tmpfs and ramfs, plainly: their data is
 * in memory), unless it is FS_AIO_PARALLEL_MIN or more (then a->parallel).
 * Returns 1 when it is complete (a->base bytes, fewer only at end of file
 * or where a tmpfs fills up), 0 when the rest must go to io_uring
 * (a->iov, *off and a->base then describe what is left and what is done). */
int fs_aio_try_now(struct fs_server *s, struct fs_aio *a, struct fs_file *f, bool write,
		   uint64_t *off, size_t len);
/* The rest of that READ/WRITE done synchronously (when no SQE could be
 * had): the total result, counting a->base. */
ssize_t fs_aio_run_now(struct fs_aio *a, struct fs_file *f, bool write, uint64_t off);
/* Give back a slot that was not submitted. */
void fs_aio_put(struct fs_server *s, struct fs_aio *a);
/* Queue the operation on f (a->iov/niov set for READ/WRITE; len and mode
 * for FALLOCATE).  0, or -EBUSY when no SQE could be had (the slot stays
 * the caller's: it finishes the work synchronously and puts it back). */
int fs_aio_submit(struct fs_server *s, struct fs_aio *a, struct fs_file *f,
		  enum fs_aio_kind kind, uint64_t off, uint64_t len, int mode);
/* Checks (and the first write's privilege clearing) shared by the
 * synchronous and asynchronous paths: 0 or -errno. */
int fs_read_check(struct fs_server *s, struct fs_file *f, uint64_t off);
int fs_write_check(struct fs_server *s, struct fs_file *f, uint64_t off);
int fs_fallocate_check(struct fs_server *s, struct fs_file *f, int mode, uint64_t off, uint64_t len);
/* Close and free a released file once no operation uses it. */
void fs_file_destroy(struct fs_server *s, struct fs_file *f);
/* Copy the bytes [skip, skip + len) of src[0..n) as iovecs into dst (at
 * most max); returns the count, or -E2BIG when more are needed. */
int fs_iov_slice(struct iovec *dst, unsigned max, const struct iovec *src, unsigned n,
		 size_t skip, size_t len);

/* Drop every client reference (FUSE DESTROY, 9P session end). */
void fs_forget_all(struct fs_server *s);

#endif
