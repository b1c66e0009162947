/* fs9p/core.c - the passthrough core: inode table, fd budget, safe name
 * resolution and every file operation the codecs need.
 *
 * Safety rules enforced here, whatever the codec:
 *  - names are single components: not empty, ".", "..", no '/' or NUL,
 *    at most 255 bytes; resolved with openat2(RESOLVE_BENEATH |
 *    RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS) and O_NOFOLLOW from the
 *    parent's held fd, so neither ".." nor symlinks can leave the share;
 *  - files are opened from the inode's O_PATH fd (via /proc/self/fd, our
 *    own descriptor), never by name: a symlink swapped in after lookup is
 *    never followed; only regular files and directories are ever opened
 *    (a FIFO or device node already in the share is refused);
 *  - no device node is ever created; a regular file's setuid and setgid
 *    never reach the host (they live in a shadow xattr, see below) and are
 *    cleared (with security.capability) on write, truncate and chown;
 *  - only user.* extended attributes are visible or settable, and never
 *    the server's own user.kvmbox.* names;
 *  - read-only mode refuses every change with EROFS;
 *  - names matching fs_opts.hidden (a launch's sensitive files: .env,
 *    keys, credential stores) do not exist for the client: not found, not
 *    listed, not removable or renamable, and not creatable (EACCES); a
 *    folder whose name hides names in it (".codex") cannot be renamed.
 */
#include "fs9p/core.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"

#define DIRBUF_SIZE 32768
#define PRIV_BITS (S_ISUID | S_ISGID)

/* ---- names ---------------------------------------------------------- */

bool fs_name_ok(const char *name, size_t len)
{
	if (len == 0 || len > FS_NAME_MAX)
		return false;
	if (memchr(name, '/', len) || memchr(name, '\0', len))
		return false;
	if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
		return false;
	return true;
}

int fs_name_check(const char *name)
{
	size_t len = strnlen(name, FS_NAME_MAX + 1);
	if (len > FS_NAME_MAX)
		return -ENAMETOOLONG;
	return fs_name_ok(name, len) ? 0 : -EINVAL;
}

/* ---- hashing -------------------------------------------------------- */

static size_t hash64(uint64_t v, size_t nbuckets)
{
	v ^= v >> 33;
	v *= 0xff51afd7ed558ccdULL;
	v ^= v >> 33;
	return (size_t)(v & (nbuckets - 1));
}

static size_t key_hash(dev_t dev, ino_t ino, size_t nbuckets)
{
	return hash64((uint64_t)ino * 31 + (uint64_t)dev, nbuckets);
}

static int inode_tables_grow(struct fs_server *s)
{
	size_t n = s->nbuckets ? s->nbuckets * 2 : 1024;
	struct fs_inode **by_id = calloc(n, sizeof(*by_id));
	struct fs_inode **by_key = calloc(n, sizeof(*by_key));
	if (!by_id || !by_key) {
		free(by_id);
		free(by_key);
		return -ENOMEM;
	}
	for (size_t b = 0; b < s->nbuckets; b++) {
		struct fs_inode *i = s->by_id[b], *next;
		for (; i; i = next) {
			next = i->id_next;
			size_t h = hash64(i->id, n);
			i->id_next = by_id[h];
			by_id[h] = i;
		}
		for (i = s->by_key[b]; i; i = next) {
			next = i->key_next;
			size_t h = key_hash(i->dev, i->ino, n);
			i->key_next = by_key[h];
			by_key[h] = i;
		}
	}
	free(s->by_id);
	free(s->by_key);
	s->by_id = by_id;
	s->by_key = by_key;
	s->nbuckets = n;
	return 0;
}

struct fs_inode *fs_inode_find(struct fs_server *s, uint64_t id)
{
	struct fs_inode *i = s->by_id[hash64(id, s->nbuckets)];
	while (i && i->id != id)
		i = i->id_next;
	return i;
}

static struct fs_inode *inode_find_key(struct fs_server *s, dev_t dev, ino_t ino)
{
	struct fs_inode *i = s->by_key[key_hash(dev, ino, s->nbuckets)];
	while (i && (i->ino != ino || i->dev != dev))
		i = i->key_next;
	return i;
}

static void unlink_chain(struct fs_inode **head, struct fs_inode *ino, bool by_id)
{
	for (struct fs_inode **p = head; *p; p = by_id ? &(*p)->id_next : &(*p)->key_next) {
		if (*p == ino) {
			*p = by_id ? ino->id_next : ino->key_next;
			return;
		}
	}
}

/* ---- fd budget: LRU of O_PATH fds ------------------------------------ */

static void lru_remove(struct fs_server *s, struct fs_inode *i)
{
	if (i->lru_prev)
		i->lru_prev->lru_next = i->lru_next;
	else if (s->lru_head == i)
		s->lru_head = i->lru_next;
	else
		return;		/* not on the list */
	if (i->lru_next)
		i->lru_next->lru_prev = i->lru_prev;
	else
		s->lru_tail = i->lru_prev;
	i->lru_prev = i->lru_next = NULL;
}

static void lru_push(struct fs_server *s, struct fs_inode *i)
{
	i->lru_prev = NULL;
	i->lru_next = s->lru_head;
	if (s->lru_head)
		s->lru_head->lru_prev = i;
	s->lru_head = i;
	if (!s->lru_tail)
		s->lru_tail = i;
}

/* Touch an inode whose fd this request uses. */
static void inode_touch(struct fs_server *s, struct fs_inode *i)
{
	i->last_use = s->serial;
	if (i == s->root || i->unlinked || i->fd < 0)
		return;
	lru_remove(s, i);
	lru_push(s, i);
}

void fs_inode_done(struct fs_inode *ino)
{
	ino->last_use = 0;
}

static void inode_close_fd(struct fs_server *s, struct fs_inode *i)
{
	if (i->fd < 0)
		return;
	lru_remove(s, i);
	close(i->fd);
	i->fd = -1;
	s->npath_fds--;
}

/* Evict least recently used fds until at most `target` remain; fds the
 * current request uses are kept. */
static void evict_to(struct fs_server *s, unsigned target)
{
	while (s->npath_fds > target) {
		struct fs_inode *v = s->lru_tail;
		if (!v || v->last_use == s->serial)
			break;
		inode_close_fd(s, v);
	}
}

void fs_begin(struct fs_server *s)
{
	s->serial++;
	evict_to(s, s->max_path_fds);
}

static void inode_set_fd(struct fs_server *s, struct fs_inode *i, int fd)
{
	i->fd = fd;
	s->npath_fds++;
	if (i != s->root && !i->unlinked)
		lru_push(s, i);
	inode_touch(s, i);
	evict_to(s, s->max_path_fds);
}

/* openat2 of one name beneath dirfd; on EMFILE/ENFILE evict half the cache
 * and try once more. */
static int open_beneath(struct fs_server *s, int dirfd, const char *name, int flags, mode_t mode)
{
	struct open_how how = {
		.flags = (uint64_t)(flags | O_CLOEXEC | O_NOFOLLOW),
		.mode = (flags & O_CREAT) ? (mode & 07777) : 0,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS,
	};
	for (int tries = 0; tries < 2; tries++) {
		long fd = syscall(SYS_openat2, dirfd, name, &how, sizeof(how));
		if (fd >= 0)
			return (int)fd;
		if ((errno != EMFILE && errno != ENFILE) || tries)
			return -errno;
		evict_to(s, s->npath_fds / 2);
	}
	return -EMFILE;
}

/* Re-open a file we hold an O_PATH fd for: /proc/self/fd/N names our own,
 * already resolved descriptor, so nothing in the share is looked up again. */
static int reopen_fd(struct fs_server *s, int pathfd, int flags)
{
	char p[40];
	snprintf(p, sizeof(p), "/proc/self/fd/%d", pathfd);
	for (int tries = 0; tries < 2; tries++) {
		int fd = open(p, flags | O_CLOEXEC | O_NOCTTY);
		if (fd >= 0)
			return fd;
		if ((errno != EMFILE && errno != ENFILE) || tries)
			return -errno;
		evict_to(s, s->npath_fds / 2);
	}
	return -EMFILE;
}

static void proc_path(char *p, size_t n, int fd)
{
	snprintf(p, n, "/proc/self/fd/%d", fd);
}

/* Re-open one evicted inode from its parent's fd (which must be open). */
static int inode_reresolve(struct fs_server *s, struct fs_inode *ino)
{
	int fd = open_beneath(s, ino->parent->fd, ino->name, O_PATH, 0);
	if (fd < 0)
		return fd == -ENOENT ? -ESTALE : fd;
	struct stat st;
	if (fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0 ||
	    st.st_dev != ino->dev || st.st_ino != ino->ino) {
		close(fd);
		return -ESTALE;	/* the name now means another file */
	}
	inode_set_fd(s, ino, fd);
	return fd;
}

int fs_inode_fd(struct fs_server *s, struct fs_inode *ino)
{
	if (ino->fd >= 0) {
		inode_touch(s, ino);
		return ino->fd;
	}
	/* Iterative, not recursive: a hostile client may build a very deep
	 * tree.  Find the nearest ancestor with an fd, then walk back down;
	 * inodes opened here are touched by this request, so none of them is
	 * evicted before its child has been resolved. */
	size_t depth = 0, cap = 0;
	struct fs_inode **chain = NULL;
	int r = 0;
	for (struct fs_inode *i = ino; i->fd < 0; i = i->parent) {
		if (!i->parent || !i->name) {
			r = -ESTALE;
			goto out;
		}
		if (depth == cap) {
			cap = cap ? cap * 2 : 16;
			struct fs_inode **n = realloc(chain, cap * sizeof(*chain));
			if (!n) {
				r = -ENOMEM;
				goto out;
			}
			chain = n;
		}
		chain[depth++] = i;
	}
	inode_touch(s, chain[depth - 1]->parent);
	while (depth) {
		r = inode_reresolve(s, chain[--depth]);
		if (r < 0)
			goto out;
	}
out:
	free(chain);
	return r;
}

/* ---- inode life ------------------------------------------------------- */

void fs_inode_ref(struct fs_inode *ino)
{
	ino->refs++;
}

static void inode_free(struct fs_server *s, struct fs_inode *ino)
{
	unlink_chain(&s->by_id[hash64(ino->id, s->nbuckets)], ino, true);
	unlink_chain(&s->by_key[key_hash(ino->dev, ino->ino, s->nbuckets)], ino, false);
	s->ninodes--;
	inode_close_fd(s, ino);
	free(ino->name);
	free(ino);
}

void fs_inode_unref(struct fs_server *s, struct fs_inode *ino)
{
	/* Iterative: dropping a child may drop its parent, and so on. */
	while (ino) {
		if (ino->refs)
			ino->refs--;
		if (ino->refs || ino->nlookup || ino == s->root)
			return;
		struct fs_inode *parent = ino->parent;
		inode_free(s, ino);
		ino = parent;
	}
}

void fs_forget(struct fs_server *s, struct fs_inode *ino, uint64_t n)
{
	if (ino == s->root)
		return;
	ino->nlookup = n >= ino->nlookup ? 0 : ino->nlookup - n;
	if (ino->nlookup || ino->refs)
		return;
	ino->refs = 1;	/* fs_inode_unref drops it to 0 and frees */
	fs_inode_unref(s, ino);
}

static void inode_rename(struct fs_server *s, struct fs_inode *ino, struct fs_inode *dir,
			 const char *name)
{
	struct fs_inode *old = ino->parent;
	if (old == dir && ino->name && !strcmp(ino->name, name)) {
		ino->unlinked = false;
		return;
	}
	char *n = strdup(name);
	if (!n)
		return;		/* keep the old name: at worst ESTALE later */
	free(ino->name);
	ino->name = n;
	fs_inode_ref(dir);
	ino->parent = dir;
	if (ino->unlinked && ino->fd >= 0) {
		ino->unlinked = false;
		lru_push(s, ino);
	}
	ino->unlinked = false;
	if (old)
		fs_inode_unref(s, old);
}

/* Find or make the inode for fd (an O_PATH fd of dir/name, consumed). */
static int inode_from_fd(struct fs_server *s, struct fs_inode *dir, const char *name, int fd,
			 struct fs_inode **out, struct stat *st)
{
	if (fstatat(fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	struct fs_inode *ino = inode_find_key(s, st->st_dev, st->st_ino);
	if (ino) {
		if (ino->fd < 0)
			inode_set_fd(s, ino, fd);
		else {
			close(fd);
			inode_touch(s, ino);
		}
		if (ino != s->root)
			inode_rename(s, ino, dir, name);
		ino->nlookup++;
		*out = ino;
		return 0;
	}
	if (s->ninodes + 1 > s->nbuckets && inode_tables_grow(s) < 0) {
		close(fd);
		return -ENOMEM;
	}
	ino = calloc(1, sizeof(*ino));
	char *n = strdup(name);
	if (!ino || !n) {
		free(ino);
		free(n);
		close(fd);
		return -ENOMEM;
	}
	ino->id = s->next_id++;
	ino->dev = st->st_dev;
	ino->ino = st->st_ino;
	ino->type = st->st_mode & S_IFMT;
	ino->fd = -1;
	ino->name = n;
	ino->parent = dir;
	fs_inode_ref(dir);
	ino->nlookup = 1;
	size_t h = hash64(ino->id, s->nbuckets);
	ino->id_next = s->by_id[h];
	s->by_id[h] = ino;
	h = key_hash(ino->dev, ino->ino, s->nbuckets);
	ino->key_next = s->by_key[h];
	s->by_key[h] = ino;
	s->ninodes++;
	inode_set_fd(s, ino, fd);
	*out = ino;
	return 0;
}

void fs_forget_all(struct fs_server *s)
{
	for (size_t b = 0; b < s->nfbuckets; b++)
		while (s->files[b])
			fs_release(s, s->files[b]);
	/* Files still used by I/O in flight outlive their inodes, which all
	 * go now: they no longer hold a reference. */
	for (struct fs_file *z = s->zombies; z; z = z->next)
		if (z->inode != s->root)
			z->inode = NULL;
	/* Every client reference goes at once: free all inodes but the root
	 * outright (no parent ordering needed when all of them go). */
	for (size_t b = 0; b < s->nbuckets; b++) {
		struct fs_inode *i = s->by_id[b], *next;
		for (; i; i = next) {
			next = i->id_next;
			if (i == s->root)
				continue;
			if (i->fd >= 0) {
				close(i->fd);	/* LRU links die with the list */
				s->npath_fds--;
			}
			free(i->name);
			free(i);
		}
		s->by_id[b] = s->by_key[b] = NULL;
	}
	s->by_id[hash64(s->root->id, s->nbuckets)] = s->root;
	s->by_key[key_hash(s->root->dev, s->root->ino, s->nbuckets)] = s->root;
	s->root->id_next = s->root->key_next = NULL;
	s->ninodes = 1;
	s->lru_head = s->lru_tail = NULL;
}

/* ---- server ----------------------------------------------------------- */

void fs_opts_default(struct fs_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->cache = FS_CACHE_AUTO;
	o->host_uid = getuid();
	o->host_gid = getgid();
	o->guest_uid = 0;
	o->guest_gid = 0;
}

int fs_server_new(const char *dir, const struct fs_opts *o, struct fs_server **out)
{
	struct fs_server *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->opts = *o;
	s->umask = umask(0);	/* read it (the call sets it), then put it back */
	umask(s->umask);
	s->next_id = 2;		/* 1 is the root (FUSE_ROOT_ID) */
	s->next_fh = 1;
	s->max_path_fds = o->max_path_fds;
	if (!s->max_path_fds) {
		struct rlimit rl;
		getrlimit(RLIMIT_NOFILE, &rl);
		rlim_t half = rl.rlim_cur / 2;
		s->max_path_fds = half > 16384 ? 16384 : half < 32 ? 32 : (unsigned)half;
	}
	s->neg_ttl_ns = o->cache == FS_CACHE_NONE ? 0 :
			o->cache == FS_CACHE_AUTO ? 1000000000ULL : 60000000000ULL;
	s->nfbuckets = 256;
	s->files = calloc(s->nfbuckets, sizeof(*s->files));
	s->neg = calloc(FS_NEG_SLOTS, sizeof(*s->neg));
	s->fuse_in = malloc(FS_FUSE_BUF_SIZE);
	s->fuse_out = malloc(FS_FUSE_BUF_SIZE);
	int r = -ENOMEM;
	if (!s->files || !s->neg || !s->fuse_in || !s->fuse_out || inode_tables_grow(s) < 0)
		goto fail;
	int fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		goto fail;
	}
	struct stat st;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		close(fd);
		goto fail;
	}
	struct fs_inode *root = calloc(1, sizeof(*root));
	if (!root) {
		close(fd);
		goto fail;
	}
	root->id = 1;
	root->dev = st.st_dev;
	root->ino = st.st_ino;
	root->type = S_IFDIR;
	root->refs = 1;
	root->nlookup = 1;
	s->root = root;
	s->by_id[hash64(1, s->nbuckets)] = root;
	s->by_key[key_hash(root->dev, root->ino, s->nbuckets)] = root;
	s->ninodes = 1;
	root->fd = fd;
	s->npath_fds = 1;
	*out = s;
	return 0;
fail:
	free(s->files);
	free(s->neg);
	free(s->fuse_in);
	free(s->fuse_out);
	free(s->by_id);
	free(s->by_key);
	free(s);
	return r;
}

void fs_server_free(struct fs_server *s)
{
	if (!s)
		return;
	fs_server_drain(s);
	fs_forget_all(s);
	free(s->aio_pool);
	close(s->root->fd);
	free(s->root);
	free(s->by_id);
	free(s->by_key);
	free(s->files);
	free(s->neg);
	free(s->fuse_in);
	free(s->fuse_out);
	free(s);
}

void fs_get_stats(const struct fs_server *s, struct fs_stats *st)
{
	st->inodes = (unsigned)s->ninodes;
	st->path_fds = s->npath_fds;
	st->files = (unsigned)s->nfiles;
	st->neg_hits = s->neg_hits;
}

uint32_t fs_map_uid(const struct fs_server *s, uint32_t id)
{
	if (id == s->opts.host_uid)
		return s->opts.guest_uid;
	if (id == s->opts.guest_uid)
		return s->opts.host_uid;
	return id;
}

uint32_t fs_map_gid(const struct fs_server *s, uint32_t id)
{
	if (id == s->opts.host_gid)
		return s->opts.guest_gid;
	if (id == s->opts.guest_gid)
		return s->opts.host_gid;
	return id;
}

/* ---- negative-lookup cache ------------------------------------------- */

static struct fs_neg *neg_slot(struct fs_server *s, uint64_t parent, const char *name, size_t len)
{
	uint64_t h = 1469598103934665603ULL ^ parent;
	for (size_t i = 0; i < len; i++)
		h = (h ^ (uint8_t)name[i]) * 1099511628211ULL;
	return &s->neg[h & (FS_NEG_SLOTS - 1)];
}

static bool neg_hit(struct fs_server *s, struct fs_inode *dir, const char *name)
{
	if (!s->neg_ttl_ns)
		return false;
	size_t len = strlen(name);
	struct fs_neg *n = neg_slot(s, dir->id, name, len);
	if (n->parent != dir->id || n->dir_gen != dir->dir_gen || n->len != len ||
	    memcmp(n->name, name, len) || now_ns() > n->expires_ns)
		return false;
	s->neg_hits++;
	return true;
}

static void neg_add(struct fs_server *s, struct fs_inode *dir, const char *name)
{
	if (!s->neg_ttl_ns)
		return;
	size_t len = strlen(name);
	struct fs_neg *n = neg_slot(s, dir->id, name, len);
	n->parent = dir->id;
	n->dir_gen = dir->dir_gen;
	n->expires_ns = now_ns() + s->neg_ttl_ns;
	n->len = (uint8_t)len;
	memcpy(n->name, name, len);
}

/* We changed names in dir: its cached misses are void. */
static void dir_changed(struct fs_inode *dir)
{
	dir->dir_gen++;
}

/* ---- setuid and setgid, kept off the host ----------------------------
 *
 * A regular file the guest marks setuid or setgid never carries those bits
 * on the host: another host account executing it would run as the invoking
 * user.  The guest's bits live in the xattr SHADOW_XATTR instead (hidden
 * from the guest, like every name under SHADOW_PREFIX), and the host file
 * carries S_ISVTX, which means nothing on a Linux regular file, as the
 * marker that tells a stat to read it: a file without the marker costs
 * nothing more.  Directories keep their bits (setuid means nothing on a
 * Linux directory, setgid is inheritance), FIFOs and sockets too (nothing
 * executes them).  Where the file system has no user xattrs the bits are
 * stripped, as before this shadow existed. */
#define SHADOW_PREFIX "user.kvmbox."
#define SHADOW_XATTR SHADOW_PREFIX "mode"
#define SHADOW_BITS (S_ISUID | S_ISGID | S_ISVTX)

/* The guest's S_ISUID/S_ISGID/S_ISVTX of the marked file at p, or -1 when
 * it has no valid shadow (then its own bits are the truth). */
static int shadow_read(const char *p)
{
	char v[8];
	ssize_t n = getxattr(p, SHADOW_XATTR, v, sizeof(v) - 1);
	if (n != 4)
		return -1;
	v[4] = 0;
	unsigned bits = 0;
	for (int i = 0; i < 4; i++) {
		if (v[i] < '0' || v[i] > '7')
			return -1;
		bits = bits * 8 + (unsigned)(v[i] - '0');
	}
	return bits & ~(unsigned)SHADOW_BITS ? -1 : (int)bits;
}

/* st as the guest sees it: a marked regular file shows its shadowed bits. */
static void shadow_show(struct fs_server *s, struct fs_inode *ino, struct stat *st)
{
	if (!S_ISREG(st->st_mode) || !(st->st_mode & S_ISVTX))
		return;
	int fd = fs_inode_fd(s, ino);
	if (fd < 0)
		return;
	char p[40];
	proc_path(p, sizeof(p), fd);
	int bits = shadow_read(p);
	if (bits >= 0)
		st->st_mode = (st->st_mode & ~(mode_t)SHADOW_BITS) | (mode_t)bits;
}

/* Give the regular file at p the guest mode want (07777), the bits
 * stripped where the file system has no user xattrs.  The shadow goes first and the marker last, and a
 * shadow is removed before its marker is dropped, so a marked file never
 * shows stale bits. */
static int shadow_chmod(const char *p, mode_t want)
{
	if (want & PRIV_BITS) {
		char v[8];
		snprintf(v, sizeof(v), "%04o", (unsigned)(want & SHADOW_BITS));
		if (setxattr(p, SHADOW_XATTR, v, 4, 0) == 0) {
			if (chmod(p, (want & 0777) | S_ISVTX) < 0)
				return -errno;
			return 0;
		}
		if (errno != EOPNOTSUPP && errno != ENOTSUP)
			return -errno;
		want &= ~(mode_t)PRIV_BITS;	/* no user xattrs here: stripped */
	}
	if (removexattr(p, SHADOW_XATTR) < 0 && errno != ENODATA &&
	    errno != EOPNOTSUPP && errno != ENOTSUP)
		return -errno;
	return chmod(p, want) < 0 ? -errno : 0;
}

/* Clear setuid/setgid (real or shadowed) and file capabilities of the
 * regular file at p (a /proc/self/fd path), as a write does. */
static int clear_privs(const char *p)
{
	struct stat st;
	if (stat(p, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return 0;
	mode_t guest = st.st_mode & 07777;
	int bits = (st.st_mode & S_ISVTX) ? shadow_read(p) : -1;
	if (bits >= 0)
		guest = (guest & ~(mode_t)SHADOW_BITS) | (mode_t)bits;
	if (guest & PRIV_BITS) {
		int r = shadow_chmod(p, guest & ~(mode_t)PRIV_BITS);
		if (r < 0)
			return r;
	}
	if (removexattr(p, "security.capability") < 0 && errno != ENODATA &&
	    errno != EOPNOTSUPP && errno != ENOTSUP)
		return -errno;
	return 0;
}

/* New set-user/group-ID bits on ino: the next write through each of its
 * open files clears them again, as a write after chmod does (the client
 * leaves that to us: FUSE_HANDLE_KILLPRIV_V2). */
static void privs_recheck(struct fs_server *s, const struct fs_inode *ino)
{
	for (size_t b = 0; b < s->nfbuckets; b++)
		for (struct fs_file *f = s->files[b]; f; f = f->next)
			if (f->inode == ino)
				f->privs_checked = false;
}

static int clear_privs_fd(int fd)
{
	char p[40];
	proc_path(p, sizeof(p), fd);
	return clear_privs(p);
}

/* ---- name operations ------------------------------------------------- */

/* Whether name in dir is one the client must not see (fs_opts.hidden). */
static bool name_hidden(const struct fs_server *s, const struct fs_inode *dir, const char *name)
{
	return s->opts.hidden && name_pattern_match(s->opts.hidden, dir->name ? dir->name : "", name);
}

/* The parent's fd for an operation on name in dir; a hidden name gives
 * if_hidden: -ENOENT where the name must look absent (lookup, unlink, a
 * rename's source), -EACCES where it would be made (creation, a rename's
 * target), so nothing can be read, listed, replaced or created under it. */
static int dir_fd_for(struct fs_server *s, struct fs_inode *dir, const char *name, int if_hidden)
{
	if (dir->type != S_IFDIR)
		return -ENOTDIR;
	int r = fs_name_check(name);
	if (r < 0)
		return r;
	if (name_hidden(s, dir, name))
		return if_hidden;
	return fs_inode_fd(s, dir);
}

int fs_lookup(struct fs_server *s, struct fs_inode *dir, const char *name,
	      struct fs_inode **out, struct stat *st)
{
	int pfd = dir_fd_for(s, dir, name, -ENOENT);
	if (pfd < 0)
		return pfd;
	if (neg_hit(s, dir, name))
		return -ENOENT;
	/* A name whose inode we know costs one fstatat and no fd: the name is
	 * one checked component and AT_SYMLINK_NOFOLLOW is set, so this
	 * cannot leave dir.  An inode without an fd (evicted) stays without
	 * one until something needs it (then it is re-resolved, checked). */
	if (fstatat(pfd, name, st, AT_SYMLINK_NOFOLLOW) < 0) {
		int e = -errno;
		if (e == -ENOENT)
			neg_add(s, dir, name);
		return e;
	}
	struct fs_inode *known = inode_find_key(s, st->st_dev, st->st_ino);
	if (known && known != s->root && known->type == (st->st_mode & S_IFMT)) {
		if (known->fd >= 0)
			inode_touch(s, known);
		inode_rename(s, known, dir, name);
		known->nlookup++;
		*out = known;
		shadow_show(s, known, st);
		return 0;
	}
	int fd = open_beneath(s, pfd, name, O_PATH, 0);
	if (fd < 0) {
		if (fd == -ENOENT)
			neg_add(s, dir, name);
		return fd;
	}
	int r = inode_from_fd(s, dir, name, fd, out, st);
	if (r == 0)
		shadow_show(s, *out, st);
	return r;
}

static bool ro(const struct fs_server *s)
{
	return s->opts.read_only;
}

/* Look up what we just created; the new name invalidates cached misses. */
static int lookup_created(struct fs_server *s, struct fs_inode *dir, const char *name,
			  struct fs_inode **out, struct stat *st)
{
	dir_changed(dir);
	return fs_lookup(s, dir, name, out, st);
}

/* Give a new inode exactly the mode the guest asked for: neither the
 * server's own umask (the guest kernel applied the guest's) nor what
 * mkdir and mknod drop may narrow it, and a regular file's setuid/setgid
 * go to its shadow.  Through the inode's own fd, never by name, so nothing
 * swapped in under the name since the creation is touched. */
static int fix_created_mode(struct fs_server *s, struct fs_inode *ino, mode_t want, struct stat *st)
{
	if ((st->st_mode & 07777) == want)
		return 0;
	int fd = fs_inode_fd(s, ino);
	if (fd < 0)
		return fd;
	char p[40];
	proc_path(p, sizeof(p), fd);
	int r = S_ISREG(st->st_mode) ? shadow_chmod(p, want) : chmod(p, want) < 0 ? -errno : 0;
	return r < 0 ? r : fs_getattr(s, ino, st);
}

/* lookup_created, then fix_created_mode; the lookup is undone on failure. */
static int lookup_created_mode(struct fs_server *s, struct fs_inode *dir, const char *name, mode_t want,
			       struct fs_inode **out, struct stat *st)
{
	int r = lookup_created(s, dir, name, out, st);
	if (r < 0)
		return r;
	r = fix_created_mode(s, *out, want, st);
	if (r < 0)
		fs_forget(s, *out, 1);
	return r;
}

int fs_mkdir(struct fs_server *s, struct fs_inode *dir, const char *name, mode_t mode,
	     struct fs_inode **out, struct stat *st)
{
	int pfd = dir_fd_for(s, dir, name, -EACCES);
	if (pfd < 0)
		return pfd;
	if (ro(s))
		return -EROFS;
	mode_t want = mode & 07777;
	if (mkdirat(pfd, name, want) < 0)
		return -errno;
	return lookup_created_mode(s, dir, name, want, out, st);
}

int fs_symlink(struct fs_server *s, struct fs_inode *dir, const char *name,
	       const char *target, struct fs_inode **out, struct stat *st)
{
	int pfd = dir_fd_for(s, dir, name, -EACCES);
	if (pfd < 0)
		return pfd;
	if (ro(s))
		return -EROFS;
	size_t tlen = strnlen(target, PATH_MAX);
	if (tlen == 0)
		return -ENOENT;
	if (tlen >= PATH_MAX)
		return -ENAMETOOLONG;
	/* The target is stored, never followed by us (RESOLVE_NO_SYMLINKS). */
	if (symlinkat(target, pfd, name) < 0)
		return -errno;
	return lookup_created(s, dir, name, out, st);
}

int fs_mknod(struct fs_server *s, struct fs_inode *dir, const char *name, mode_t mode,
	     dev_t rdev, struct fs_inode **out, struct stat *st)
{
	(void)rdev;
	int pfd = dir_fd_for(s, dir, name, -EACCES);
	if (pfd < 0)
		return pfd;
	if (!S_ISREG(mode) && !S_ISFIFO(mode) && !S_ISSOCK(mode))
		return -EPERM;	/* device nodes: never */
	if (ro(s))
		return -EROFS;
	mode_t want = mode & 07777;
	if (S_ISREG(mode)) {
		int fd = open_beneath(s, pfd, name, O_CREAT | O_EXCL | O_WRONLY, want & 0777);
		if (fd < 0)
			return fd;
		close(fd);
	} else if (mknodat(pfd, name, (mode & S_IFMT) | want, 0) < 0) {	/* one checked component */
		return -errno;
	}
	return lookup_created_mode(s, dir, name, want, out, st);
}

int fs_link(struct fs_server *s, struct fs_inode *ino, struct fs_inode *dir,
	    const char *name, struct stat *st)
{
	int pfd = dir_fd_for(s, dir, name, -EACCES);
	if (pfd < 0)
		return pfd;
	if (ro(s))
		return -EROFS;
	if (ino->type == S_IFDIR)
		return -EPERM;
	int fd = fs_inode_fd(s, ino);
	if (fd < 0)
		return fd;
	char p[40];
	proc_path(p, sizeof(p), fd);
	if (linkat(AT_FDCWD, p, pfd, name, AT_SYMLINK_FOLLOW) < 0)
		return -errno;
	dir_changed(dir);
	if (fstatat(fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	shadow_show(s, ino, st);
	ino->nlookup++;
	if (ino->unlinked)
		inode_rename(s, ino, dir, name);
	return 0;
}

static struct fs_file *file_new(struct fs_server *s, struct fs_inode *ino, int fd, bool is_dir,
				int oflags);

int fs_create(struct fs_server *s, struct fs_inode *dir, const char *name, int flags,
	      mode_t mode, struct fs_inode **out, struct stat *st, struct fs_file **file)
{
	int pfd = dir_fd_for(s, dir, name, -EACCES);
	if (pfd < 0)
		return pfd;
	if (ro(s))
		return -EROFS;
	/* No O_NONBLOCK: io_uring would then answer EAGAIN instead of
	 * waiting for the disk.  O_EXCL means nothing but a new regular file
	 * is ever opened here. */
	int oflags = flags & (O_ACCMODE | O_APPEND | O_SYNC | O_DSYNC | O_TRUNC);
	mode_t want = mode & 07777;
	int fd = open_beneath(s, pfd, name, oflags | O_CREAT | O_EXCL, want & 0777);
	if (fd == -EEXIST && !(flags & O_EXCL)) {
		/* Exists: open it the safe way (type checked, no O_CREAT). */
		int r = fs_lookup(s, dir, name, out, st);
		if (r < 0)
			return r;
		r = fs_open(s, *out, flags, file);
		if (r < 0)
			fs_forget(s, *out, 1);
		return r;
	}
	if (fd < 0)
		return fd;
	dir_changed(dir);
	int r = fs_lookup(s, dir, name, out, st);
	if (r < 0) {
		close(fd);
		return r;
	}
	struct stat fst;
	if (fstat(fd, &fst) < 0 || fst.st_ino != st->st_ino || fst.st_dev != st->st_dev) {
		close(fd);
		fs_forget(s, *out, 1);
		return -ESTALE;	/* replaced between create and lookup */
	}
	r = fix_created_mode(s, *out, want, st);	/* as asked, not narrowed by our umask */
	if (r < 0) {
		close(fd);
		fs_forget(s, *out, 1);
		return r;
	}
	*file = file_new(s, *out, fd, false, oflags & ~O_TRUNC);
	if (!*file) {
		close(fd);
		fs_forget(s, *out, 1);
		return -ENOMEM;
	}
	return 0;
}

/* The inode (if known) that dir/name refers to now. */
static struct fs_inode *known_child(struct fs_server *s, int pfd, const char *name)
{
	struct stat st;
	if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return NULL;
	return inode_find_key(s, st.st_dev, st.st_ino);
}

int fs_unlink(struct fs_server *s, struct fs_inode *dir, const char *name, bool is_dir)
{
	int pfd = dir_fd_for(s, dir, name, -ENOENT);
	if (pfd < 0)
		return pfd;
	if (ro(s))
		return -EROFS;
	struct fs_inode *victim = known_child(s, pfd, name);
	if (unlinkat(pfd, name, is_dir ? AT_REMOVEDIR : 0) < 0)
		return -errno;
	dir_changed(dir);
	if (victim && victim->parent == dir && victim->name && !strcmp(victim->name, name) &&
	    !victim->unlinked) {
		/* Its name is gone: it cannot be re-resolved, so keep its fd
		 * (outside the LRU) until the client forgets it. */
		if (victim->fd >= 0 || fs_inode_fd(s, victim) >= 0) {
			lru_remove(s, victim);
			victim->unlinked = true;
		}
	}
	return 0;
}

int fs_rename(struct fs_server *s, struct fs_inode *odir, const char *oname,
	      struct fs_inode *ndir, const char *nname, unsigned flags)
{
	if (flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE))
		return -EINVAL;	/* RENAME_WHITEOUT would create a device node */
	int ofd = dir_fd_for(s, odir, oname, -ENOENT);
	if (ofd < 0)
		return ofd;
	int nfd = dir_fd_for(s, ndir, nname, -EACCES);
	if (nfd < 0)
		return nfd;
	/* A folder whose name hides names in it (".codex" for auth.json) keeps
	 * its name: renamed, its hidden files would show under the new one. */
	if (s->opts.hidden && (name_pattern_folder(s->opts.hidden, oname) ||
			       ((flags & RENAME_EXCHANGE) && name_pattern_folder(s->opts.hidden, nname))))
		return -EACCES;
	if (ro(s))
		return -EROFS;
	ofd = fs_inode_fd(s, odir);	/* nfd's resolution may have evicted it */
	if (ofd < 0)
		return ofd;
	struct fs_inode *moved = known_child(s, ofd, oname);
	struct fs_inode *over = known_child(s, nfd, nname);
	/* Hold both directories: re-pointing names may drop their last ref. */
	fs_inode_ref(odir);
	fs_inode_ref(ndir);
	if (moved)
		fs_inode_ref(moved);
	if (over)
		fs_inode_ref(over);
	int r = 0;
	if (syscall(SYS_renameat2, ofd, oname, nfd, nname, flags) < 0) {
		r = -errno;
		goto out;
	}
	dir_changed(odir);
	dir_changed(ndir);
	if (moved)
		inode_rename(s, moved, ndir, nname);
	if (over && (flags & RENAME_EXCHANGE))
		inode_rename(s, over, odir, oname);
	else if (over && over != moved && over->parent == ndir && over->name &&
		 !strcmp(over->name, nname) && over->fd >= 0) {
		lru_remove(s, over);
		over->unlinked = true;
	}
out:
	if (moved)
		fs_inode_unref(s, moved);
	if (over)
		fs_inode_unref(s, over);
	fs_inode_unref(s, ndir);
	fs_inode_unref(s, odir);
	return r;
}

int fs_readlink(struct fs_server *s, struct fs_inode *ino, char *buf, size_t size)
{
	if (ino->type != S_IFLNK)
		return -EINVAL;
	int fd = fs_inode_fd(s, ino);
	if (fd < 0)
		return fd;
	ssize_t n = readlinkat(fd, "", buf, size);
	return n < 0 ? -errno : (int)n;
}

/* ---- attributes ------------------------------------------------------ */

int fs_getattr(struct fs_server *s, struct fs_inode *ino, struct stat *st)
{
	int fd = fs_inode_fd(s, ino);
	if (fd < 0)
		return fd;
	if (fstatat(fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	shadow_show(s, ino, st);
	return 0;
}

int fs_setattr(struct fs_server *s, struct fs_inode *ino, struct fs_file *f,
	       const struct fs_setattr *a, struct stat *st)
{
	if (ro(s) && a->valid)
		return -EROFS;
	int fd = fs_inode_fd(s, ino);
	if (fd < 0)
		return fd;
	char p[40];
	proc_path(p, sizeof(p), fd);
	bool lnk = ino->type == S_IFLNK;
	if (a->valid & FS_SET_MODE) {
		if (lnk)
			return -EOPNOTSUPP;
		mode_t m = a->mode & 07777;
		int r = ino->type == S_IFREG ? shadow_chmod(p, m) : chmod(p, m) < 0 ? -errno : 0;
		if (r < 0)
			return r;
		if (m & PRIV_BITS)
			privs_recheck(s, ino);
	}
	if (a->valid & (FS_SET_UID | FS_SET_GID)) {
		uid_t u = (a->valid & FS_SET_UID) ? a->uid : (uid_t)-1;
		gid_t g = (a->valid & FS_SET_GID) ? a->gid : (gid_t)-1;
		if (fchownat(fd, "", u, g, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
			return -errno;
		if (ino->type == S_IFREG) {
			int r = clear_privs(p);
			if (r < 0)
				return r;
		}
	}
	if (a->valid & FS_SET_SIZE) {
		if (ino->type != S_IFREG)
			return ino->type == S_IFDIR ? -EISDIR : -EINVAL;
		int r = f ? ftruncate(f->fd, (off_t)a->size) : truncate(p, (off_t)a->size);
		if (r < 0)
			return -errno;
		r = f ? clear_privs_fd(f->fd) : clear_privs(p);
		if (r < 0)
			return r;
	}
	if (a->valid & (FS_SET_ATIME | FS_SET_MTIME)) {
		struct timespec ts[2] = { { .tv_nsec = UTIME_OMIT }, { .tv_nsec = UTIME_OMIT } };
		if (a->valid & FS_SET_ATIME)
			ts[0] = (a->valid & FS_SET_ATIME_NOW) ? (struct timespec){ .tv_nsec = UTIME_NOW } : a->atime;
		if (a->valid & FS_SET_MTIME)
			ts[1] = (a->valid & FS_SET_MTIME_NOW) ? (struct timespec){ .tv_nsec = UTIME_NOW } : a->mtime;
		int r;
		if (lnk) {
			/* No fd-based call for a symlink's times: use the
			 * parent and name (one component, no follow). */
			if (!ino->parent || !ino->name)
				return -ESTALE;
			int pfd = fs_inode_fd(s, ino->parent);
			if (pfd < 0)
				return pfd;
			r = utimensat(pfd, ino->name, ts, AT_SYMLINK_NOFOLLOW);
		} else {
			r = utimensat(AT_FDCWD, p, ts, 0);
		}
		if (r < 0)
			return -errno;
	}
	return fs_getattr(s, ino, st);
}

int fs_access(struct fs_server *s, struct fs_inode *ino, int mask)
{
	if (ro(s) && (mask & W_OK) && ino->type != S_IFLNK)
		return -EROFS;
	int fd = fs_inode_fd(s, ino);
	if (fd < 0)
		return fd;
	if (ino->type == S_IFLNK)
		return 0;
	char p[40];
	proc_path(p, sizeof(p), fd);
	return faccessat(AT_FDCWD, p, mask, 0) < 0 ? -errno : 0;
}

/* ---- open files -------------------------------------------------------- */

/* A handle numbered fh on ino (which it references) over fd. */
static struct fs_file *file_add(struct fs_server *s, uint64_t fh, struct fs_inode *ino, int fd,
				bool is_dir, int oflags)
{
	struct fs_file *f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	f->fh = fh;
	f->fd = fd;
	f->inode = ino;
	f->is_dir = is_dir;
	f->oflags = oflags;
	fs_inode_ref(ino);
	size_t h = hash64(f->fh, s->nfbuckets);
	f->next = s->files[h];
	s->files[h] = f;
	s->nfiles++;
	return f;
}

static struct fs_file *file_new(struct fs_server *s, struct fs_inode *ino, int fd, bool is_dir,
				int oflags)
{
	struct fs_file *f = file_add(s, s->next_fh, ino, fd, is_dir, oflags);
	if (f)
		s->next_fh++;
	return f;
}

struct fs_file *fs_file_find(struct fs_server *s, uint64_t fh)
{
	struct fs_file *f = s->files[hash64(fh, s->nfbuckets)];
	while (f && f->fh != fh)
		f = f->next;
	return f;
}

void fs_release(struct fs_server *s, struct fs_file *f)
{
	for (struct fs_file **p = &s->files[hash64(f->fh, s->nfbuckets)]; *p; p = &(*p)->next) {
		if (*p == f) {
			*p = f->next;
			break;
		}
	}
	s->nfiles--;
	f->released = true;
	if (!f->inflight) {
		fs_file_destroy(s, f);
		return;
	}
	f->next = s->zombies;	/* closed when its last operation completes */
	s->zombies = f;
}

void fs_file_destroy(struct fs_server *s, struct fs_file *f)
{
	for (struct fs_file **p = &s->zombies; *p; p = &(*p)->next) {
		if (*p == f) {
			*p = f->next;
			break;
		}
	}
	close(f->fd);
	free(f->dbuf);
	struct fs_inode *ino = f->inode;
	free(f);
	if (ino)
		fs_inode_unref(s, ino);
}

int fs_open(struct fs_server *s, struct fs_inode *ino, int flags, struct fs_file **out)
{
	if (ino->type == S_IFDIR)
		return fs_opendir(s, ino, out);
	if (ino->type == S_IFLNK)
		return -ELOOP;
	if (ino->type != S_IFREG)
		return -EACCES;	/* FIFOs, sockets, device nodes: never opened */
	int acc = flags & O_ACCMODE;
	if (ro(s) && (acc != O_RDONLY || (flags & O_TRUNC)))
		return -EROFS;
	int fd = fs_inode_fd(s, ino);
	if (fd < 0)
		return fd;
	/* Only regular files get here, and the /proc/self/fd re-open names
	 * this very inode, so no FIFO can block the open; no O_NONBLOCK, as
	 * io_uring would then answer EAGAIN instead of reading the disk. */
	int oflags = flags & (O_ACCMODE | O_APPEND | O_SYNC | O_DSYNC | O_TRUNC);
	int nfd = reopen_fd(s, fd, oflags);
	if (nfd < 0)
		return nfd;
	if ((flags & O_TRUNC) && acc != O_RDONLY) {
		int r = clear_privs_fd(nfd);
		if (r < 0) {
			close(nfd);
			return r;
		}
	}
	*out = file_new(s, ino, nfd, false, oflags & ~O_TRUNC);
	if (!*out) {
		close(nfd);
		return -ENOMEM;
	}
	return 0;
}

int fs_read_check(struct fs_server *s, struct fs_file *f, uint64_t off)
{
	(void)s;
	if (f->is_dir)
		return -EISDIR;
	return off > INT64_MAX ? -EINVAL : 0;
}

ssize_t fs_read(struct fs_server *s, struct fs_file *f, const struct iovec *iov, int n, uint64_t off)
{
	int c = fs_read_check(s, f, off);
	if (c < 0)
		return c;
	ssize_t r = preadv(f->fd, iov, n, (off_t)off);
	return r < 0 ? -errno : r;
}

int fs_write_check(struct fs_server *s, struct fs_file *f, uint64_t off)
{
	if (f->is_dir)
		return -EISDIR;
	if (ro(s))
		return -EROFS;
	if (off > INT64_MAX)
		return -EINVAL;
	if (!f->privs_checked) {
		int r = clear_privs_fd(f->fd);
		if (r < 0)
			return r;
		f->privs_checked = true;
	}
	return 0;
}

ssize_t fs_write(struct fs_server *s, struct fs_file *f, const struct iovec *iov, int n, uint64_t off)
{
	int c = fs_write_check(s, f, off);
	if (c < 0)
		return c;
	ssize_t r = pwritev(f->fd, iov, n, (off_t)off);
	return r < 0 ? -errno : r;
}

int fs_fsync(struct fs_server *s, struct fs_file *f, bool datasync)
{
	(void)s;
	int r = datasync ? fdatasync(f->fd) : fsync(f->fd);
	return r < 0 ? -errno : 0;
}

int fs_fallocate_check(struct fs_server *s, struct fs_file *f, int mode, uint64_t off, uint64_t len)
{
	if (ro(s))
		return -EROFS;
	if (f->is_dir)
		return -EISDIR;
	if (off > INT64_MAX || len > INT64_MAX)
		return -EINVAL;
	if (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE))
		return -EOPNOTSUPP;
	/* every mode changes data or size: setuid/setgid go as for a write */
	return fs_write_check(s, f, off);
}

int fs_fallocate(struct fs_server *s, struct fs_file *f, int mode, uint64_t off, uint64_t len)
{
	int c = fs_fallocate_check(s, f, mode, off, len);
	if (c < 0)
		return c;
	return fallocate(f->fd, mode, (off_t)off, (off_t)len) < 0 ? -errno : 0;
}

int64_t fs_lseek(struct fs_server *s, struct fs_file *f, int64_t off, int whence)
{
	(void)s;
	if (whence != SEEK_SET && whence != SEEK_CUR && whence != SEEK_END &&
	    whence != SEEK_DATA && whence != SEEK_HOLE)
		return -EINVAL;
	off_t r = lseek(f->fd, (off_t)off, whence);
	return r < 0 ? -errno : (int64_t)r;
}

ssize_t fs_copy_range(struct fs_server *s, struct fs_file *in, uint64_t off_in,
		      struct fs_file *out, uint64_t off_out, size_t len)
{
	if (ro(s))
		return -EROFS;
	if (in->is_dir || out->is_dir)
		return -EISDIR;
	if (off_in > INT64_MAX || off_out > INT64_MAX)
		return -EINVAL;
	if (!out->privs_checked) {
		int r = clear_privs_fd(out->fd);
		if (r < 0)
			return r;
		out->privs_checked = true;
	}
	loff_t oi = (loff_t)off_in, oo = (loff_t)off_out;
	ssize_t r = copy_file_range(in->fd, &oi, out->fd, &oo, len, 0);
	return r < 0 ? -errno : r;
}

int fs_lock(struct fs_server *s, struct fs_file *f, int cmd, struct flock *fl)
{
	(void)s;
	/* Open-file-description locks: owned by our handle, so closing some
	 * other handle of the same file does not drop them. */
	if (cmd != F_OFD_GETLK && cmd != F_OFD_SETLK)
		return -EINVAL;
	if (fl->l_type != F_RDLCK && fl->l_type != F_WRLCK && fl->l_type != F_UNLCK)
		return -EINVAL;
	fl->l_pid = 0;
	return fcntl(f->fd, cmd, fl) < 0 ? -errno : 0;
}

int fs_statfs(struct fs_server *s, struct fs_inode *ino, struct statfs *st)
{
	int fd = fs_inode_fd(s, ino);
	if (fd < 0)
		return fd;
	return fstatfs(fd, st) < 0 ? -errno : 0;
}

int fs_syncfs(struct fs_server *s)
{
	int fd = reopen_fd(s, s->root->fd, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return fd;
	int r = syncfs(fd) < 0 ? -errno : 0;
	close(fd);
	return r;
}

/* ---- directories ------------------------------------------------------ */

int fs_opendir(struct fs_server *s, struct fs_inode *ino, struct fs_file **out)
{
	if (ino->type != S_IFDIR)
		return -ENOTDIR;
	int fd = fs_inode_fd(s, ino);
	if (fd < 0)
		return fd;
	int dfd = reopen_fd(s, fd, O_RDONLY | O_DIRECTORY);
	if (dfd < 0)
		return dfd;
	struct fs_file *f = file_new(s, ino, dfd, true, O_RDONLY | O_DIRECTORY);
	if (!f) {
		close(dfd);
		return -ENOMEM;
	}
	*out = f;
	return 0;
}

struct linux_dirent64 {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

int fs_readdir(struct fs_server *s, struct fs_file *f, uint64_t off, fs_dirent_fn emit, void *ctx)
{
	if (!f->is_dir)
		return -ENOTDIR;
	if (!f->dbuf) {
		f->dbuf = malloc(DIRBUF_SIZE);
		if (!f->dbuf)
			return -ENOMEM;
	}
	if ((int64_t)off != f->dir_off || off > INT64_MAX) {
		if (off > INT64_MAX || lseek(f->fd, (off_t)off, SEEK_SET) < 0)
			return -EINVAL;
		f->dlen = f->dpos = 0;
		f->dir_off = (int64_t)off;
	}
	int count = 0;
	for (;;) {
		if (f->dpos >= f->dlen) {
			long n = syscall(SYS_getdents64, f->fd, f->dbuf, DIRBUF_SIZE);
			if (n < 0)
				return count ? count : -errno;
			if (n == 0)
				return count;
			f->dlen = (unsigned)n;
			f->dpos = 0;
		}
		while (f->dpos < f->dlen) {
			struct linux_dirent64 *d = (struct linux_dirent64 *)(f->dbuf + f->dpos);
			size_t len = strnlen(d->d_name, d->d_reclen - offsetof(struct linux_dirent64, d_name));
			if (f->inode && len < d->d_reclen - offsetof(struct linux_dirent64, d_name) &&
			    name_hidden(s, f->inode, d->d_name)) {
				f->dpos += d->d_reclen;	/* not listed */
				f->dir_off = d->d_off;
				continue;
			}
			int r = emit(ctx, d->d_name, len, d->d_ino, d->d_type, (uint64_t)d->d_off);
			if (r < 0)
				return count ? count : r;
			if (r > 0)
				return count;
			f->dpos += d->d_reclen;
			f->dir_off = d->d_off;
			count++;
		}
	}
}

/* ---- extended attributes: user.* only ------------------------------- */

/* user.* and not the server's own names. */
static bool xattr_name_ok(const char *name)
{
	size_t len = strnlen(name, XATTR_NAME_MAX + 1);
	return len > 5 && len <= XATTR_NAME_MAX && !strncmp(name, "user.", 5) &&
	       strncmp(name, SHADOW_PREFIX, strlen(SHADOW_PREFIX));
}

static int xattr_path(struct fs_server *s, struct fs_inode *ino, char *p, size_t n)
{
	if (ino->type != S_IFREG && ino->type != S_IFDIR)
		return -EPERM;	/* user.* is only for files and directories */
	int fd = fs_inode_fd(s, ino);
	if (fd < 0)
		return fd;
	proc_path(p, n, fd);
	return 0;
}

ssize_t fs_getxattr(struct fs_server *s, struct fs_inode *ino, const char *name, void *buf, size_t size)
{
	if (!xattr_name_ok(name))
		return -ENODATA;	/* other namespaces look empty */
	char p[40];
	int r = xattr_path(s, ino, p, sizeof(p));
	if (r < 0)
		return r == -EPERM ? -ENODATA : r;
	ssize_t n = getxattr(p, name, buf, size);
	return n < 0 ? -errno : n;
}

ssize_t fs_listxattr(struct fs_server *s, struct fs_inode *ino, char *buf, size_t size)
{
	char p[40];
	int r = xattr_path(s, ino, p, sizeof(p));
	if (r < 0)
		return r == -EPERM ? 0 : r;
	/* Read the full list, then keep user.* names only. */
	ssize_t n = listxattr(p, NULL, 0);
	if (n < 0)
		return -errno;
	if (n == 0)
		return 0;
	char *all = malloc((size_t)n);
	if (!all)
		return -ENOMEM;
	n = listxattr(p, all, (size_t)n);
	if (n < 0) {
		free(all);
		return errno == ERANGE ? -EAGAIN : -errno;
	}
	size_t out = 0;
	for (ssize_t i = 0; i < n;) {
		size_t len = strnlen(all + i, (size_t)(n - i));
		if (xattr_name_ok(all + i)) {
			if (size && out + len + 1 > size) {
				free(all);
				return -ERANGE;
			}
			if (size)
				memcpy(buf + out, all + i, len + 1);
			out += len + 1;
		}
		i += (ssize_t)len + 1;
	}
	free(all);
	return (ssize_t)out;
}

int fs_setxattr(struct fs_server *s, struct fs_inode *ino, const char *name,
		const void *val, size_t size, int flags)
{
	if (!xattr_name_ok(name))
		return -EOPNOTSUPP;
	if (ro(s))
		return -EROFS;
	if (flags & ~(XATTR_CREATE | XATTR_REPLACE))
		return -EINVAL;
	char p[40];
	int r = xattr_path(s, ino, p, sizeof(p));
	if (r < 0)
		return r;
	return setxattr(p, name, val, size, flags) < 0 ? -errno : 0;
}

int fs_removexattr(struct fs_server *s, struct fs_inode *ino, const char *name)
{
	if (!xattr_name_ok(name))
		return -EOPNOTSUPP;
	if (ro(s))
		return -EROFS;
	char p[40];
	int r = xattr_path(s, ino, p, sizeof(p));
	if (r < 0)
		return r;
	return removexattr(p, name) < 0 ? -errno : 0;
}

/* ---- 9P helpers: operations on an inode's recorded name ---------------- */

void fs_inode_hold(struct fs_inode *ino)
{
	ino->nlookup++;
}

struct fs_inode *fs_inode_parent(struct fs_server *s, struct fs_inode *ino)
{
	if (ino == s->root || !ino->parent)
		return s->root;
	return ino->parent;
}

/* Check that ino's recorded (parent, name) still names ino. */
static int recorded_name_ok(struct fs_server *s, struct fs_inode *ino)
{
	if (ino == s->root || !ino->parent || !ino->name || ino->unlinked)
		return -ESTALE;
	int pfd = fs_inode_fd(s, ino->parent);
	if (pfd < 0)
		return pfd;
	struct stat st;
	if (fstatat(pfd, ino->name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -ESTALE;
	return st.st_dev == ino->dev && st.st_ino == ino->ino ? 0 : -ESTALE;
}

int fs_remove_inode(struct fs_server *s, struct fs_inode *ino)
{
	if (ro(s))
		return -EROFS;
	int r = recorded_name_ok(s, ino);
	if (r < 0)
		return r;
	return fs_unlink(s, ino->parent, ino->name, ino->type == S_IFDIR);
}

int fs_rename_inode(struct fs_server *s, struct fs_inode *ino, struct fs_inode *ndir,
		    const char *nname)
{
	if (ro(s))
		return -EROFS;
	int r = recorded_name_ok(s, ino);
	if (r < 0)
		return r;
	/* fs_rename may replace ino->name: work on a copy. */
	char old[FS_NAME_MAX + 1];
	snprintf(old, sizeof(old), "%s", ino->name);
	return fs_rename(s, ino->parent, old, ndir, nname, 0);
}

/* ---- snapshots: the pieces fs9p/snapshot.c rebuilds a table from ----- */

int fs_restore_inode(struct fs_server *s, uint64_t id, dev_t dev, ino_t ino, mode_t type,
		     uint64_t nlookup, struct fs_inode **out)
{
	if (fs_inode_find(s, id) || inode_find_key(s, dev, ino))
		return -EEXIST;
	if (s->ninodes + 1 > s->nbuckets && inode_tables_grow(s) < 0)
		return -ENOMEM;
	struct fs_inode *i = calloc(1, sizeof(*i));
	if (!i)
		return -ENOMEM;
	*i = (struct fs_inode){ .id = id, .dev = dev, .ino = ino, .type = type, .fd = -1,
				.nlookup = nlookup };
	size_t h = hash64(id, s->nbuckets);
	i->id_next = s->by_id[h];
	s->by_id[h] = i;
	h = key_hash(dev, ino, s->nbuckets);
	i->key_next = s->by_key[h];
	s->by_key[h] = i;
	s->ninodes++;
	*out = i;
	return 0;
}

bool fs_name_hidden(const struct fs_server *s, const struct fs_inode *dir, const char *name)
{
	return name_hidden(s, dir, name);
}

int fs_restore_file(struct fs_server *s, uint64_t fh, struct fs_inode *ino, int oflags,
		    struct fs_file **out)
{
	if (fs_file_find(s, fh))
		return -EEXIST;
	bool dir = ino->type == S_IFDIR;
	int fd = fs_inode_fd(s, ino);
	int nfd = fd < 0 ? fd : reopen_fd(s, fd, dir ? O_RDONLY | O_DIRECTORY : oflags);
	/* A file that is gone keeps its handle without an fd: EBADF. */
	*out = file_add(s, fh, ino, nfd < 0 ? -1 : nfd, dir, oflags);
	if (!*out) {
		if (nfd >= 0)
			close(nfd);
		return -ENOMEM;
	}
	return nfd < 0 ? 1 : 0;
}
