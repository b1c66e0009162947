/* guest/image/unpack.c - apply one OCI layer (a tar stream) to an image tree
 * without ever writing outside it.
 *
 * Layers come from a registry and are hostile.  libarchive only parses the
 * stream here (tar, pax, GNU; gzip and zstd filters); we do not use
 * archive_write_disk, because its ARCHIVE_EXTRACT_SECURE_* checks work on
 * path strings relative to the process's cwd and it follows an image's
 * absolute symlinks on the host.  Instead every name is resolved by the
 * kernel with openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS) from the
 * image's root directory fd: "..", absolute symlinks and symlinked parents
 * all resolve as they would inside a chroot of the image, so they can never
 * reach the host.  The last component is created with *at() calls on the
 * resolved parent and never followed (O_NOFOLLOW / O_EXCL, AT_SYMLINK_*).
 * On top of that, names that are absolute or contain ".." are refused
 * outright (a well-formed layer never has them), hardlink targets are
 * resolved the same way, and device nodes are skipped.
 *
 * OCI whiteouts: ".wh.NAME" deletes NAME from the lower layers, and
 * ".wh..wh..opq" empties its directory of everything the lower layers put
 * there; both leave what this same layer adds, whatever the entry order,
 * because the paths this layer wrote are remembered in a small hash set.
 *
 * Directory modes and mtimes are applied after the layer's last entry
 * (deepest first), since writing into a directory changes its mtime and a
 * read-only mode would stop later entries.  Without root, ownership is not
 * applied and directories keep their owner-write bit so that later layers
 * can still be applied (see docs/image.md).
 */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "guest/image/image.h"

#define UNPACK_PATH_MAX 4096
#define REMOVE_DEPTH_MAX 512
#define WH_PREFIX ".wh."
#define WH_OPAQUE ".wh..wh..opq"

/* Paths written by the current layer (open-addressing hash set of strings),
 * so whiteouts and opaque markers only remove what lower layers left. */
struct strset {
	char **slot;
	size_t cap;	/* power of two */
	size_t n;
};

/* A directory whose mode/owner/mtime are applied at the end of the layer. */
struct dir_attr {
	char *path;
	mode_t mode;
	uid_t uid;
	gid_t gid;
	struct timespec mtime;
};

/* State while one layer is applied. */
struct layer {
	int root;			/* image root directory fd (not owned) */
	const char *label;		/* layer name for messages */
	bool as_root;			/* euid 0: apply ownership */
	struct strset seen;
	struct dir_attr *dirs;
	size_t ndirs, dirs_cap;
	struct unpack_stats *st;
	bool warned_dev;
};

static uint64_t str_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;	/* FNV-1a */
	while (*s)
		h = (h ^ (uint8_t)*s++) * 1099511628211ull;
	return h;
}

static bool strset_has(const struct strset *s, const char *k)
{
	if (!s->cap)
		return false;
	for (size_t i = str_hash(k) & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
		if (!s->slot[i])
			return false;
		if (!strcmp(s->slot[i], k))
			return true;
	}
}

static int strset_add(struct strset *s, const char *k)
{
	if (strset_has(s, k))
		return 0;
	if ((s->n + 1) * 2 > s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 256;
		char **ns = calloc(ncap, sizeof(*ns));
		if (!ns)
			return -ENOMEM;
		for (size_t i = 0; i < s->cap; i++) {
			if (!s->slot[i])
				continue;
			size_t j = str_hash(s->slot[i]) & (ncap - 1);
			while (ns[j])
				j = (j + 1) & (ncap - 1);
			ns[j] = s->slot[i];
		}
		free(s->slot);
		s->slot = ns;
		s->cap = ncap;
	}
	char *dup = strdup(k);
	if (!dup)
		return -ENOMEM;
	size_t i = str_hash(k) & (s->cap - 1);
	while (s->slot[i])
		i = (i + 1) & (s->cap - 1);
	s->slot[i] = dup;
	s->n++;
	return 0;
}

static void strset_free(struct strset *s)
{
	for (size_t i = 0; i < s->cap; i++)
		free(s->slot[i]);
	free(s->slot);
	memset(s, 0, sizeof(*s));
}

int image_sanitize_path(const char *name, char *out, size_t outlen)
{
	if (!name || !*name || outlen == 0)
		return -EINVAL;
	if (name[0] == '/')
		return -EPERM;
	size_t o = 0;
	const char *p = name;
	while (*p) {
		const char *end = strchrnul(p, '/');
		size_t n = (size_t)(end - p);
		if (n == 2 && p[0] == '.' && p[1] == '.')
			return -EPERM;
		if (n > 255)
			return -ENAMETOOLONG;
		if (n && !(n == 1 && p[0] == '.')) {
			if (o + (o ? 1 : 0) + n + 1 > outlen)
				return -ENAMETOOLONG;
			if (o)
				out[o++] = '/';
			memcpy(out + o, p, n);
			o += n;
		}
		p = *end ? end + 1 : end;
	}
	out[o] = '\0';
	return 0;
}

static int sys_openat2(int dirfd, const char *path, uint64_t flags, uint64_t mode)
{
	struct open_how how = {
		.flags = flags | O_CLOEXEC,
		.mode = mode,
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	long fd = syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
	return fd < 0 ? -errno : (int)fd;
}

/* Open directory `path` (relative, sanitised; "" is the root) beneath the
 * image root, as an O_PATH fd unless flags say otherwise. */
static int open_dir_beneath(int root, const char *path, int flags)
{
	return sys_openat2(root, *path ? path : ".", (uint64_t)flags | O_DIRECTORY, 0);
}

/* Create every missing directory of `path` beneath root (mode 0755): 0 or
 * -errno (-ENOTDIR when a component is not a directory). */
static int mkdir_beneath(int root, const char *path)
{
	char prefix[UNPACK_PATH_MAX];
	size_t len = strlen(path);
	if (len >= sizeof(prefix))
		return -ENAMETOOLONG;
	memcpy(prefix, path, len + 1);
	for (size_t i = 0; i <= len; i++) {
		if (prefix[i] != '/' && prefix[i] != '\0')
			continue;
		char saved = prefix[i];
		prefix[i] = '\0';
		int fd = open_dir_beneath(root, prefix, O_PATH);
		if (fd == -ENOENT) {
			char *slash = strrchr(prefix, '/');
			const char *comp = slash ? slash + 1 : prefix;
			if (slash)
				*slash = '\0';
			int pfd = open_dir_beneath(root, slash ? prefix : "", O_PATH);
			if (slash)
				*slash = '/';
			if (pfd < 0)
				return pfd;
			int r = mkdirat(pfd, comp, 0755) ? -errno : 0;
			close(pfd);
			if (r && r != -EEXIST)
				return r;
			fd = open_dir_beneath(root, prefix, O_PATH);
		}
		if (fd < 0)
			return fd;
		close(fd);
		prefix[i] = saved;
	}
	return 0;
}

/* Split sanitised `path` into its parent (opened beneath root, created when
 * `create`) and its last component *base (points into path). */
static int open_parent(struct layer *l, const char *path, bool create,
		       const char **base)
{
	char parent[UNPACK_PATH_MAX];
	const char *slash = strrchr(path, '/');
	size_t plen = slash ? (size_t)(slash - path) : 0;
	memcpy(parent, path, plen);
	parent[plen] = '\0';
	*base = slash ? slash + 1 : path;
	int fd = open_dir_beneath(l->root, parent, O_PATH);
	if (fd == -ENOENT && create) {
		int r = mkdir_beneath(l->root, parent);
		if (r < 0)
			return r;
		fd = open_dir_beneath(l->root, parent, O_PATH);
	}
	return fd;
}

static int remove_children(int dfd, int depth);

static int remove_at(int dfd, const char *name, int depth)
{
	if (!unlinkat(dfd, name, 0) || errno == ENOENT)
		return 0;
	if (errno != EISDIR && errno != EPERM)
		return -errno;
	if (depth > REMOVE_DEPTH_MAX)
		return -ELOOP;
	int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int r = remove_children(fd, depth + 1);
	close(fd);
	if (r)
		return r;
	return unlinkat(dfd, name, AT_REMOVEDIR) && errno != ENOENT ? -errno : 0;
}

/* The names in directory dfd (not "." / ".."), minus those `skip` says to
 * keep; collected before anything is removed, since removing entries while
 * a directory stream is open may skip some. */
static int dir_names(int dfd, bool (*skip)(void *, const char *), void *arg,
		     char ***out, size_t *count)
{
	int fd2 = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);	/* own offset */
	DIR *d = fd2 < 0 ? NULL : fdopendir(fd2);
	if (!d) {
		int e = errno;
		if (fd2 >= 0)
			close(fd2);
		return -e;
	}
	char **names = NULL;
	size_t n = 0, cap = 0;
	int r = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (skip && skip(arg, de->d_name))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			char **nn = realloc(names, cap * sizeof(*nn));
			if (!nn) {
				r = -ENOMEM;
				break;
			}
			names = nn;
		}
		if (!(names[n] = strdup(de->d_name))) {
			r = -ENOMEM;
			break;
		}
		n++;
	}
	closedir(d);
	*out = names;
	*count = n;
	return r;
}

/* Remove the listed names beneath dfd and free the list. */
static int remove_names(int dfd, char **names, size_t n, int depth)
{
	int r = 0;
	for (size_t i = 0; i < n; i++) {
		if (!r)
			r = remove_at(dfd, names[i], depth);
		free(names[i]);
	}
	free(names);
	return r;
}

/* Remove everything inside directory dfd (keeps dfd itself). */
static int remove_children(int dfd, int depth)
{
	struct stat st;
	if (!fstat(dfd, &st) && (st.st_mode & 0700) != 0700)
		(void)fchmod(dfd, (st.st_mode & 07777) | 0700);
	char **names;
	size_t n;
	int r = dir_names(dfd, NULL, NULL, &names, &n);
	int r2 = remove_names(dfd, names, n, depth);
	return r ? r : r2;
}

int image_remove_tree_at(int dir_fd, const char *name)
{
	return remove_at(dir_fd, name, 0);
}

/* ".wh.NAME" in directory `parent`: delete NAME unless this layer made it. */
static int apply_whiteout(struct layer *l, const char *path, const char *base)
{
	const char *victim = base + strlen(WH_PREFIX);
	if (!*victim || !strcmp(victim, ".") || !strcmp(victim, "..")) {
		log_err("layer %s: bad whiteout entry '%s'", l->label, path);
		return -EINVAL;
	}
	char full[UNPACK_PATH_MAX];
	size_t plen = (size_t)(base - path);
	if (plen + strlen(victim) + 1 > sizeof(full))
		return -ENAMETOOLONG;
	memcpy(full, path, plen);
	strcpy(full + plen, victim);
	l->st->whiteouts++;
	if (strset_has(&l->seen, full))
		return 0;
	const char *b;
	int pfd = open_parent(l, full, false, &b);
	if (pfd == -ENOENT || pfd == -ENOTDIR)
		return 0;	/* nothing below to delete */
	if (pfd < 0)
		return pfd;
	int r = image_remove_tree_at(pfd, b);
	close(pfd);
	return r;
}

/* Arguments of opaque_keep(). */
struct opaque_arg {
	struct layer *l;
	const char *dir;
};

/* Whether an entry of an opaque directory was written by this layer. */
static bool opaque_keep(void *arg, const char *name)
{
	struct opaque_arg *o = arg;
	char full[UNPACK_PATH_MAX];
	if ((size_t)snprintf(full, sizeof(full), "%s%s%s", o->dir, *o->dir ? "/" : "",
			     name) >= sizeof(full))
		return true;
	return strset_has(&o->l->seen, full);
}

/* ".wh..wh..opq" in directory `dir`: remove what lower layers put there. */
static int apply_opaque(struct layer *l, const char *dir)
{
	l->st->whiteouts++;
	int dfd = open_dir_beneath(l->root, dir, O_RDONLY);
	if (dfd == -ENOENT)
		return 0;
	if (dfd < 0)
		return dfd;
	struct opaque_arg arg = { l, dir };
	char **names;
	size_t n;
	int r = dir_names(dfd, opaque_keep, &arg, &names, &n);
	int r2 = remove_names(dfd, names, n, 0);
	close(dfd);
	return r ? r : r2;
}

static int remember_dir(struct layer *l, const char *path, struct archive_entry *e)
{
	if (l->ndirs == l->dirs_cap) {
		size_t ncap = l->dirs_cap ? l->dirs_cap * 2 : 64;
		struct dir_attr *nd = realloc(l->dirs, ncap * sizeof(*nd));
		if (!nd)
			return -ENOMEM;
		l->dirs = nd;
		l->dirs_cap = ncap;
	}
	struct dir_attr *d = &l->dirs[l->ndirs];
	if (!(d->path = strdup(path)))
		return -ENOMEM;
	d->mode = archive_entry_perm(e) & 07777;
	d->uid = (uid_t)archive_entry_uid(e);
	d->gid = (gid_t)archive_entry_gid(e);
	d->mtime.tv_sec = archive_entry_mtime(e);
	d->mtime.tv_nsec = archive_entry_mtime_nsec(e);
	l->ndirs++;
	return 0;
}

/* Apply the deferred directory attributes, deepest (last created) first. */
static int finish_dirs(struct layer *l)
{
	int r = 0;
	while (l->ndirs) {
		struct dir_attr *d = &l->dirs[--l->ndirs];
		int fd = sys_openat2(l->root, *d->path ? d->path : ".",
				     O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0);
		if (fd >= 0) {
			mode_t mode = d->mode;
			if (l->as_root) {
				if (fchown(fd, d->uid, d->gid) && !r)
					r = -errno;
			} else {
				mode |= 0700;
			}
			if (fchmod(fd, mode) && !r)
				r = -errno;
			struct timespec ts[2] = { d->mtime, d->mtime };
			if (futimens(fd, ts) && !r)
				r = -errno;
			close(fd);
		}
		free(d->path);
	}
	return r;
}

/* Remove whatever is at pfd/base unless both it and the new entry are
 * directories (those merge). */
static int clear_target(int pfd, const char *base, bool new_is_dir)
{
	struct stat st;
	if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW))
		return errno == ENOENT ? 0 : -errno;
	if (new_is_dir && S_ISDIR(st.st_mode))
		return 0;
	return image_remove_tree_at(pfd, base);
}

static int write_file_data(struct layer *l, struct archive *a, int fd,
			   const char *path)
{
	const void *buf;
	size_t size;
	la_int64_t off;
	int r;
	while ((r = archive_read_data_block(a, &buf, &size, &off)) == ARCHIVE_OK) {
		if (off < 0)
			return -EINVAL;
		const uint8_t *p = buf;
		while (size) {
			ssize_t w = pwrite(fd, p, size, off);
			if (w < 0) {
				if (errno == EINTR)
					continue;
				int e = errno;
				log_err("layer %s: writing %s: %s", l->label, path, strerror(e));
				return -e;
			}
			p += w;
			size -= (size_t)w;
			off += w;
			l->st->bytes += (uint64_t)w;
		}
	}
	if (r != ARCHIVE_EOF) {
		log_err("layer %s: reading %s: %s", l->label, path, archive_error_string(a));
		return -EIO;
	}
	return 0;
}

static int set_attrs_fd(struct layer *l, int fd, struct archive_entry *e)
{
	if (l->as_root &&
	    fchown(fd, (uid_t)archive_entry_uid(e), (gid_t)archive_entry_gid(e)))
		return -errno;
	if (fchmod(fd, archive_entry_perm(e) & 07777))
		return -errno;
	struct timespec ts[2] = {
		{ archive_entry_atime(e), archive_entry_atime_nsec(e) },
		{ archive_entry_mtime(e), archive_entry_mtime_nsec(e) },
	};
	if (!archive_entry_atime_is_set(e))
		ts[0] = ts[1];
	return futimens(fd, ts) ? -errno : 0;
}

static int extract_file(struct layer *l, struct archive *a, struct archive_entry *e,
			int pfd, const char *base, const char *path)
{
	int fd = openat(pfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	int r = write_file_data(l, a, fd, path);
	if (!r && archive_entry_size_is_set(e) &&
	    ftruncate(fd, (off_t)archive_entry_size(e)))
		r = -errno;
	if (!r)
		r = set_attrs_fd(l, fd, e);
	if (close(fd) && !r)
		r = -errno;
	return r;
}

static int extract_symlink(struct layer *l, struct archive_entry *e, int pfd,
			   const char *base)
{
	const char *target = archive_entry_symlink(e);
	if (!target || !*target)
		return -EINVAL;
	/* The target is stored as is: it only ever gets resolved inside the
	 * image (RESOLVE_IN_ROOT here, the guest's own root later). */
	if (symlinkat(target, pfd, base))
		return -errno;
	if (l->as_root &&
	    fchownat(pfd, base, (uid_t)archive_entry_uid(e), (gid_t)archive_entry_gid(e),
		     AT_SYMLINK_NOFOLLOW))
		return -errno;
	struct timespec ts[2] = {
		{ archive_entry_mtime(e), archive_entry_mtime_nsec(e) },
		{ archive_entry_mtime(e), archive_entry_mtime_nsec(e) },
	};
	return utimensat(pfd, base, ts, AT_SYMLINK_NOFOLLOW) ? -errno : 0;
}

static int extract_hardlink(struct layer *l, const char *target_name, int pfd,
			    const char *base, const char *path)
{
	char target[UNPACK_PATH_MAX];
	int r = image_sanitize_path(target_name, target, sizeof(target));
	if (r || !*target) {
		log_err("layer %s: hardlink %s -> %s points outside the image",
			l->label, path, target_name);
		return r ? r : -EPERM;
	}
	const char *tbase;
	int tfd = open_parent(l, target, false, &tbase);
	if (tfd < 0) {
		log_err("layer %s: hardlink %s -> %s: target not in the image",
			l->label, path, target_name);
		return tfd;
	}
	r = linkat(tfd, tbase, pfd, base, 0) ? -errno : 0;
	close(tfd);
	if (r)
		log_err("layer %s: hardlink %s -> %s: %s", l->label, path, target_name,
			strerror(-r));
	return r;
}

static int extract_entry(struct layer *l, struct archive *a, struct archive_entry *e,
			 const char *path)
{
	const char *base;
	const char *hardlink = archive_entry_hardlink(e);
	mode_t type = archive_entry_filetype(e);
	bool is_dir = !hardlink && type == AE_IFDIR;

	if (!hardlink && (type == AE_IFCHR || type == AE_IFBLK || type == AE_IFSOCK)) {
		l->st->skipped++;
		if (!l->warned_dev) {
			log_warn("layer %s: device node or socket %s skipped (and any others)",
				 l->label, path);
			l->warned_dev = true;
		}
		return 0;
	}
	if (!*path) {	/* "./": the root itself; keep its attributes */
		l->st->skipped++;
		return 0;
	}
	int pfd = open_parent(l, path, true, &base);
	if (pfd < 0) {
		log_err("layer %s: %s: parent directory: %s", l->label, path, strerror(-pfd));
		return pfd;
	}
	int r = clear_target(pfd, base, is_dir);
	if (!r && hardlink) {
		r = extract_hardlink(l, hardlink, pfd, base, path);
		close(pfd);
		return r ? r : strset_add(&l->seen, path);
	}
	if (!r) {
		switch (type) {
		case AE_IFREG:
			r = extract_file(l, a, e, pfd, base, path);
			break;
		case AE_IFDIR:
			if (mkdirat(pfd, base, 0700) && errno != EEXIST)
				r = -errno;
			else
				r = remember_dir(l, path, e);
			break;
		case AE_IFLNK:
			r = extract_symlink(l, e, pfd, base);
			break;
		case AE_IFIFO:
			r = mknodat(pfd, base, S_IFIFO | (archive_entry_perm(e) & 0777), 0)
				? -errno : 0;
			break;
		default:
			l->st->skipped++;
			break;
		}
	}
	close(pfd);
	if (r) {
		log_err("layer %s: %s: %s", l->label, path, strerror(-r));
		return r;
	}
	return strset_add(&l->seen, path);
}

static int handle_entry(struct layer *l, struct archive *a, struct archive_entry *e)
{
	char path[UNPACK_PATH_MAX];
	const char *name = archive_entry_pathname(e);
	int r = image_sanitize_path(name, path, sizeof(path));
	if (r) {
		log_err("layer %s: refusing entry '%s': %s", l->label, name ? name : "",
			r == -EPERM ? "absolute path or '..' escapes the image"
				    : strerror(-r));
		return r;
	}
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	if (!strcmp(base, WH_OPAQUE)) {
		char dir[UNPACK_PATH_MAX];
		size_t n = slash ? (size_t)(slash - path) : 0;
		memcpy(dir, path, n);
		dir[n] = '\0';
		r = apply_opaque(l, dir);
	} else if (!strncmp(base, WH_PREFIX, strlen(WH_PREFIX))) {
		r = apply_whiteout(l, path, base);
	} else {
		return extract_entry(l, a, e, path);
	}
	if (r)
		log_err("layer %s: whiteout %s: %s", l->label, path, strerror(-r));
	return r;
}

int image_unpack_layer(int root_fd, int layer_fd, const char *label,
		       struct unpack_stats *st)
{
	struct unpack_stats dummy;
	struct layer l = {
		.root = root_fd,
		.label = label ? label : "(layer)",
		.as_root = geteuid() == 0,
		.st = st ? st : &dummy,
	};
	memset(l.st, 0, sizeof(*l.st));
	struct archive *a = archive_read_new();
	if (!a)
		return -ENOMEM;
	archive_read_support_filter_gzip(a);
	archive_read_support_filter_zstd(a);
	archive_read_support_format_tar(a);
	archive_read_support_format_empty(a);
	int r = 0;
	if (archive_read_open_fd(a, layer_fd, 65536) != ARCHIVE_OK) {
		log_err("layer %s: not a tar stream: %s", l.label, archive_error_string(a));
		r = -EINVAL;
	}
	struct archive_entry *e;
	while (!r) {
		int ar = archive_read_next_header(a, &e);
		if (ar == ARCHIVE_EOF)
			break;
		if (ar != ARCHIVE_OK && ar != ARCHIVE_WARN) {
			log_err("layer %s: bad tar stream: %s", l.label, archive_error_string(a));
			r = -EINVAL;
			break;
		}
		l.st->entries++;
		r = handle_entry(&l, a, e);
	}
	int rd = finish_dirs(&l);
	if (!r && rd) {
		log_err("layer %s: directory attributes: %s", l.label, strerror(-rd));
		r = rd;
	}
	free(l.dirs);
	strset_free(&l.seen);
	archive_read_free(a);
	return r;
}
