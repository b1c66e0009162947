/* fs9p/snapshot.c - what a FUSE client's session holds of the server, as
 * a VM snapshot keeps it (fs.h, fs_snapshot_save).
 *
 * Nothing host-side is kept, because nothing host-side survives the
 * process: each inode is saved by its parent and name with its device and
 * inode numbers and the client's lookup count, each open handle by its
 * inode and open flags.  A restore rebuilds the table with no descriptor
 * at all; an inode is resolved beneath the share's root, name by name,
 * when the client first uses it, by the very path an evicted inode takes
 * (core.c fs_inode_fd): a name that now means another file, or none,
 * answers ESTALE.  Handles are reopened at once; one whose file is gone
 * answers EBADF.
 *
 * The state is the user's own file, but it may be damaged or crafted, and
 * it decides which host files the guest reaches, so a restore accepts only
 * a table the server itself could have built: ids and (device, inode)
 * pairs unique, every inode but the root under a directory of the table
 * by a name a lookup would accept and the server does not hide, every
 * parent chain ending at the root (no cycle: resolution walks it), the
 * root the share's own folder (any folder when the table holds the root
 * alone and no handle: nothing beneath it was known, as in a template
 * saved before its command ran), handles on inodes of their type, and no
 * handle that writes on a read-only share.  Anything else is refused and
 * the server left as it was made.
 *
 * Layout (native little-endian, x86 only), 8-byte aligned records:
 *   header: u32 magic "KFS1", u32 flags (FUSE session inited, destroyed),
 *     u32 FUSE minor, u32 inodes, u32 handles, u32 0, u64 next id,
 *     u64 next handle;
 *   inode: u64 id, parent id (0: none), dev, ino, lookup count, u32 type
 *     (S_IFMT bits), u8 unlinked, u8 0, u16 name length, the name, zero
 *     bytes to a multiple of 8;
 *   handle: u64 fh, inode id, u32 open flags, u8 directory, u8 privileges
 *     cleared, u16 0.
 */
#include "fs9p/core.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define KFS_MAGIC 0x3153464bu	/* "KFS1" */
#define KFS_INITED 1u
#define KFS_DESTROYED 2u
#define KFS_FILE_FLAGS (O_ACCMODE | O_APPEND | O_SYNC | O_DSYNC)

struct kfs_header {
	uint32_t magic, flags, fuse_minor, ninodes, nfiles, zero;
	uint64_t next_id, next_fh;
};

struct kfs_inode {
	uint64_t id, parent, dev, ino, nlookup;
	uint32_t type;
	uint8_t unlinked, zero;
	uint16_t namelen;
};

struct kfs_file {
	uint64_t fh, inode;
	uint32_t oflags;
	uint8_t is_dir, privs_checked;
	uint16_t zero;
};

_Static_assert(sizeof(struct kfs_header) == 40 && sizeof(struct kfs_inode) == 48 &&
	       sizeof(struct kfs_file) == 24, "record sizes are the format's");

/* ---- save ---- */

struct out {
	uint8_t *buf;
	size_t cap, len;
	int err;
};

static void put(struct out *o, const void *p, size_t n)
{
	size_t pad = (8 - n % 8) % 8;
	if (o->err || n + pad > o->cap - o->len) {
		o->err = -EFBIG;
		return;
	}
	memcpy(o->buf + o->len, p, n);
	memset(o->buf + o->len + n, 0, pad);
	o->len += n + pad;
}

int fs_snapshot_save(struct fs_server *s, void *buf, size_t cap, size_t *len)
{
	if (s->aio_busy || s->zombies || s->fuse_uring)
		return -EBUSY;	/* I/O in flight, or queues outside the VM */
	struct out o = { .buf = buf, .cap = cap };
	struct kfs_header h = { .magic = KFS_MAGIC, .fuse_minor = s->fuse_minor,
				.ninodes = (uint32_t)s->ninodes, .nfiles = (uint32_t)s->nfiles,
				.next_id = s->next_id, .next_fh = s->next_fh };
	h.flags = (s->fuse_inited ? KFS_INITED : 0) | (s->fuse_destroyed ? KFS_DESTROYED : 0);
	put(&o, &h, sizeof(h));
	for (size_t b = 0; b < s->nbuckets; b++)
		for (const struct fs_inode *i = s->by_id[b]; i; i = i->id_next) {
			const char *name = i->unlinked ? NULL : i->name;
			struct kfs_inode r = { .id = i->id, .parent = i->parent ? i->parent->id : 0,
					       .dev = i->dev, .ino = i->ino, .nlookup = i->nlookup,
					       .type = i->type, .unlinked = i->unlinked,
					       .namelen = name ? (uint16_t)strlen(name) : 0 };
			put(&o, &r, sizeof(r));
			if (r.namelen)
				put(&o, name, r.namelen);
		}
	for (size_t b = 0; b < s->nfbuckets; b++)
		for (const struct fs_file *f = s->files[b]; f; f = f->next) {
			struct kfs_file r = { .fh = f->fh, .inode = f->inode ? f->inode->id : 0,
					      .oflags = (uint32_t)f->oflags, .is_dir = f->is_dir,
					      .privs_checked = f->privs_checked };
			put(&o, &r, sizeof(r));
		}
	*len = o.len;
	return o.err;
}

/* ---- restore ---- */

struct in {
	const uint8_t *p;
	size_t len, off;
};

static const void *take(struct in *in, size_t n)
{
	size_t padded = n + (8 - n % 8) % 8;
	if (padded > in->len - in->off)
		return NULL;
	const uint8_t *p = in->p + in->off;
	for (size_t k = n; k < padded; k++)
		if (p[k])
			return NULL;	/* padding is zero */
	in->off += padded;
	return p;
}

/* The inodes, without links yet; each parent id kept in order. */
static int restore_inodes(struct fs_server *s, struct in *in, const struct kfs_header *h,
			  uint64_t *parents, struct fs_inode **table)
{
	for (uint32_t n = 0; n < h->ninodes; n++) {
		const struct kfs_inode *r = take(in, sizeof(*r));
		if (!r || r->zero || r->unlinked > 1 || !r->id || r->id >= h->next_id ||
		    (r->type & ~(uint32_t)S_IFMT) || !r->type)
			return -EINVAL;
		const char *name = NULL;
		if (r->namelen && !(name = take(in, r->namelen)))
			return -EINVAL;
		if (r->id == s->root->id) {
			/* The share's own folder, as it was: else every name
			 * would resolve beneath another one.  A table of the
			 * root alone names nothing beneath it, so it may be
			 * another folder (a template restored for a launch
			 * that shares its own). */
			bool rebind = h->ninodes == 1 && !h->nfiles;
			if (r->parent || r->namelen || r->type != S_IFDIR || r->unlinked ||
			    (!rebind && (r->dev != s->root->dev || r->ino != s->root->ino)))
				return -EINVAL;
			s->root->nlookup = r->nlookup;
			table[n] = s->root;
			parents[n] = 0;
			continue;
		}
		/* A linked inode has a name a lookup accepts; an unlinked one
		 * none (it can never be resolved again). */
		if (!r->parent || r->unlinked != !r->namelen ||
		    (name && !fs_name_ok(name, r->namelen)))
			return -EINVAL;
		struct fs_inode *i;
		int e = fs_restore_inode(s, r->id, (dev_t)r->dev, (ino_t)r->ino, r->type, r->nlookup, &i);
		if (e < 0)
			return e == -ENOMEM ? e : -EINVAL;
		table[n] = i;
		parents[n] = r->parent;
		i->unlinked = r->unlinked;
		if (name && !(i->name = strndup(name, r->namelen)))
			return -ENOMEM;
	}
	return 0;
}

/* Link each inode to its parent (a directory of the table, which counts
 * the reference), refuse hidden names, and check every chain ends at the
 * root: resolution walks it upwards. */
static int link_inodes(struct fs_server *s, uint32_t n, const uint64_t *parents,
		       struct fs_inode **table)
{
	for (uint32_t k = 0; k < n; k++) {
		struct fs_inode *i = table[k];
		if (i == s->root)
			continue;
		struct fs_inode *p = fs_inode_find(s, parents[k]);
		if (!p || p->type != S_IFDIR || p == i)
			return -EINVAL;
		if (i->name && fs_name_hidden(s, p, i->name))
			return -EINVAL;
		i->parent = p;
		fs_inode_ref(p);
	}
	for (uint32_t k = 0; k < n; k++) {
		uint32_t steps = 0;
		const struct fs_inode *i = table[k];
		while (i != s->root) {
			if (!i || ++steps > n)
				return -EINVAL;	/* a cycle, never reaching the root */
			i = i->parent;
		}
	}
	return 0;
}

static int restore_files(struct fs_server *s, struct in *in, const struct kfs_header *h)
{
	for (uint32_t n = 0; n < h->nfiles; n++) {
		const struct kfs_file *r = take(in, sizeof(*r));
		if (!r || r->zero || r->is_dir > 1 || r->privs_checked > 1 || !r->fh ||
		    r->fh >= h->next_fh)
			return -EINVAL;
		struct fs_inode *i = fs_inode_find(s, r->inode);
		int want = r->is_dir ? (O_RDONLY | O_DIRECTORY) : (int)(r->oflags & KFS_FILE_FLAGS);
		if (!i || (i->type == S_IFDIR) != (r->is_dir == 1) ||
		    (!r->is_dir && i->type != S_IFREG) || (int)r->oflags != want ||
		    (!r->is_dir && (r->oflags & O_ACCMODE) == O_ACCMODE))
			return -EINVAL;
		if (s->opts.read_only && (r->oflags & O_ACCMODE) != O_RDONLY)
			return -EINVAL;	/* never a writable handle on a read-only share */
		struct fs_file *f;
		int e = fs_restore_file(s, r->fh, i, want, &f);
		if (e < 0)
			return e == -ENOMEM ? e : -EINVAL;
		f->privs_checked = r->privs_checked;
	}
	return 0;
}

/* Whether every inode but the root is still wanted: looked up by the
 * client, or holding a child or handle (what keeps one alive). */
static bool all_referenced(const struct fs_server *s)
{
	for (size_t b = 0; b < s->nbuckets; b++)
		for (const struct fs_inode *i = s->by_id[b]; i; i = i->id_next)
			if (i != s->root && !i->nlookup && !i->refs)
				return false;
	return true;
}

static int restore(struct fs_server *s, struct in *in)
{
	const struct kfs_header *h = take(in, sizeof(*h));
	if (!h || h->magic != KFS_MAGIC || (h->flags & ~(KFS_INITED | KFS_DESTROYED)) || h->zero ||
	    h->next_id < 2 || h->next_fh < 1 || !h->ninodes ||
	    h->ninodes > in->len / sizeof(struct kfs_inode) ||
	    h->nfiles > in->len / sizeof(struct kfs_file))
		return -EINVAL;
	uint64_t *parents = calloc(h->ninodes, sizeof(*parents));
	struct fs_inode **table = calloc(h->ninodes, sizeof(*table));
	int r = parents && table ? 0 : -ENOMEM;
	if (r == 0)
		r = restore_inodes(s, in, h, parents, table);
	if (r == 0 && !fs_inode_find(s, s->root->id))
		r = -EINVAL;
	bool root_seen = false;
	for (uint32_t k = 0; r == 0 && k < h->ninodes; k++)
		root_seen |= table[k] == s->root;
	if (r == 0 && !root_seen)
		r = -EINVAL;
	if (r == 0)
		r = link_inodes(s, h->ninodes, parents, table);
	free(parents);
	free(table);
	if (r == 0)
		r = restore_files(s, in, h);
	if (r == 0 && (in->off != in->len || !all_referenced(s)))
		r = -EINVAL;
	if (r == 0) {
		s->next_id = h->next_id;
		s->next_fh = h->next_fh;
		s->fuse_inited = h->flags & KFS_INITED;
		s->fuse_destroyed = h->flags & KFS_DESTROYED;
		s->fuse_minor = h->fuse_minor;
	}
	return r;
}

int fs_snapshot_restore(struct fs_server *s, const void *buf, size_t len)
{
	if (s->ninodes != 1 || s->nfiles || s->fuse_inited)
		return -EBUSY;	/* a server just made, before any request */
	struct in in = { .p = buf, .len = len };
	int r = restore(s, &in);
	if (r < 0) {
		fs_fuse_reset(s);	/* back to the root alone, as made */
		s->root->nlookup = 1;
		s->root->refs = 1;
	}
	return r;
}
