/* launch/review/changes.c - what the agent changed in the copy, and
 * putting one change into the project (review.h).
 *
 * The project is the user's: every path in it is opened from the project's
 * own folder with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS, the file in place
 * is checked against the manifest just before it is replaced, the new one
 * is written beside it under a fresh name and renamed over it, and only
 * the permission bits 0777 travel.  The copy is the agent's: it is walked
 * from its top one component at a time with O_NOFOLLOW, never through a
 * link it planted.
 */
#include "launch/review/review.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "launch/hostexec.h"

static int entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct review_entry *)a)->rel, ((const struct review_entry *)b)->rel);
}

static struct review_entry *find(struct review *rv, const char *rel)
{
	struct review_entry key = { .rel = (char *)rel };
	return bsearch(&key, rv->e, rv->n, sizeof(*rv->e), entry_cmp);
}

/* ---- the changes ---- */

struct walk {
	struct review *rv;
	bool *seen;		/* per manifest entry */
	struct review_change *c;
	size_t n, cap;
};

static int add_change(struct walk *w, const char *rel, enum review_kind kind)
{
	if (w->n == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 64;
		struct review_change *c = realloc(w->c, cap * sizeof(*c));
		if (!c)
			return -ENOMEM;
		w->c = c;
		w->cap = cap;
	}
	if (!(w->c[w->n].rel = strdup(rel)))
		return -ENOMEM;
	w->c[w->n].kind = kind;
	w->c[w->n].host_runs = hostexec_watched(rel);
	w->n++;
	return 0;
}

static int walk_dir(struct walk *w, int dfd, char *rel, size_t rlen, unsigned depth);

static int walk_entry(struct walk *w, int dfd, const char *name, char *rel, size_t rlen, unsigned depth)
{
	size_t n = strlen(name);
	if (rlen + n + 2 > 4096)
		return -ENAMETOOLONG;
	size_t at = rlen;
	if (rlen)
		rel[at++] = '/';
	memcpy(rel + at, name, n + 1);
	struct stat st;
	int r = 0;
	if (review_in_git(rel) || fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
	    review_excluded(w->rv, rel, S_ISDIR(st.st_mode)))
		return 0;
	if (S_ISDIR(st.st_mode)) {
		if (depth >= REVIEW_MAX_DEPTH)
			return -ELOOP;
		int sub = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub < 0)
			return -errno;
		r = walk_dir(w, sub, rel, at + n, depth + 1);
		close(sub);
		return r;
	}
	if (!S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode))
		return 0;	/* a fifo, a socket: nothing to apply */
	mode_t mode;
	unsigned char sha[32];
	if ((r = review_sha_at(dfd, name, &mode, sha)) < 0)
		return r;
	struct review_entry *e = find(w->rv, rel);
	if (!e)
		return add_change(w, rel, REVIEW_ADDED);
	w->seen[e - w->rv->e] = true;
	bool same = (e->mode & S_IFMT) == (mode & S_IFMT) && !memcmp(e->sha256, sha, 32) &&
		    (S_ISLNK(mode) || (e->mode & 0777) == (mode & 0777));
	return same ? 0 : add_change(w, rel, REVIEW_CHANGED);
}

static int walk_dir(struct walk *w, int dfd, char *rel, size_t rlen, unsigned depth)
{
	DIR *d = review_dir_open(dfd);
	if (!d)
		return -errno;
	int r = 0;
	for (const char *name; r == 0 && (name = review_dir_next(d)); rel[rlen] = 0)
		r = walk_entry(w, dfd, name, rel, rlen, depth);
	closedir(d);
	return r;
}

static int change_cmp(const void *a, const void *b)
{
	const struct review_change *x = a, *y = b;
	if (x->host_runs != y->host_runs)
		return x->host_runs ? -1 : 1;
	return strcmp(x->rel, y->rel);
}

ssize_t review_changes(struct review *rv, struct review_change **out)
{
	struct walk w = { .rv = rv, .seen = calloc(rv->n + 1, sizeof(bool)) };
	int fd = open(rv->work, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	char rel[4096] = "";
	int r = !w.seen ? -ENOMEM : fd < 0 ? -errno : walk_dir(&w, fd, rel, 0, 0);
	if (fd >= 0)
		close(fd);
	for (size_t i = 0; r == 0 && i < rv->n; i++)
		if (!w.seen[i] && !review_excluded(rv, rv->e[i].rel, false))
			r = add_change(&w, rv->e[i].rel, REVIEW_DELETED);
	free(w.seen);
	if (r < 0) {
		review_changes_free(w.c, w.n);
		return r;
	}
	if (w.n)
		qsort(w.c, w.n, sizeof(*w.c), change_cmp);
	*out = w.c;
	return (ssize_t)w.n;
}

void review_changes_free(struct review_change *c, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(c[i].rel);
	free(c);
}

/* ---- applying one ---- */

/* rel's folder and leaf: "a/b/c" -> "a/b", "c"; "c" -> ".", "c". */
static void split_rel(const char *rel, char *dir, size_t dirsz, const char **leaf)
{
	const char *slash = strrchr(rel, '/');
	*leaf = slash ? slash + 1 : rel;
	snprintf(dir, dirsz, "%.*s", slash ? (int)(slash - rel) : 1, slash ? rel : ".");
}

/* The project's folder dir, made (0755, less the umask) where missing,
 * never through a link: an fd or -errno. */
static int project_dir(int root, const char *dir)
{
	int fd = openat_beneath(root, dir, O_RDONLY | O_DIRECTORY);
	if (fd != -ENOENT)
		return fd;
	char part[4096];
	for (const char *p = dir; ; p++) {
		if (*p != '/' && *p)
			continue;
		snprintf(part, sizeof(part), "%.*s", (int)(p - dir), dir);
		int r = openat_beneath(root, part, O_RDONLY | O_DIRECTORY);
		if (r == -ENOENT) {
			const char *leaf;
			char parent[4096];
			split_rel(part, parent, sizeof(parent), &leaf);
			int pfd = openat_beneath(root, parent, O_RDONLY | O_DIRECTORY);
			if (pfd < 0)
				return pfd;
			r = mkdirat(pfd, leaf, 0755) < 0 && errno != EEXIST ? -errno : 0;
			close(pfd);
			if (r < 0)
				return r;
			r = openat_beneath(root, part, O_RDONLY | O_DIRECTORY);
		}
		if (r < 0 || !*p)
			return r;
		close(r);
	}
}

/* Whether a link at rel with target t points inside the project (root:
 * its real path), judged on the text as the kernel would walk it. */
static bool link_inside(const char *root, const char *rel, const char *t)
{
	size_t rl = strlen(root);
	if (t[0] == '/')
		return !strncmp(t, root, rl) && (t[rl] == '/' || t[rl] == 0) && !strstr(t + rl, "/../") &&
		       strcmp(t + rl + (t[rl] == '/'), "..") != 0;
	int depth = 0;	/* folders below the project's top where the link sits */
	for (const char *p = rel; (p = strchr(p, '/')); p++)
		depth++;
	for (const char *p = t; *p;) {
		size_t n = strcspn(p, "/");
		if (n == 2 && !strncmp(p, "..", 2)) {
			if (--depth < 0)
				return false;
		} else if (n && !(n == 1 && p[0] == '.')) {
			depth++;
		}
		p += n;
		while (*p == '/')
			p++;
	}
	return true;
}

/* The project's file rel is what the manifest says (e; NULL: absent). */
static int still_original(int pfd, const char *leaf, const struct review_entry *e)
{
	mode_t mode;
	unsigned char sha[32];
	int r = review_sha_at(pfd, leaf, &mode, sha);
	if (!e)
		return r == -ENOENT ? 0 : -ESTALE;
	if (r < 0)
		return r == -ENOENT ? -ESTALE : r;
	return (mode & S_IFMT) == (e->mode & S_IFMT) && !memcmp(sha, e->sha256, 32) ? 0 : -ESTALE;
}

/* The copy's rel written beside the project's file as tmp (file or link). */
static int write_beside(struct review *rv, int wroot, int pfd, const char *rel, const char *tmp,
			char *err, size_t errsz)
{
	char dir[4096];
	const char *leaf;
	split_rel(rel, dir, sizeof(dir), &leaf);
	int sfd = openat_beneath(wroot, dir, O_RDONLY | O_DIRECTORY);
	if (sfd < 0)
		return sfd;
	struct stat st;
	int r = fstatat(sfd, leaf, &st, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
	if (r == 0 && S_ISLNK(st.st_mode)) {
		char t[4096];
		ssize_t n = readlinkat(sfd, leaf, t, sizeof(t) - 1);
		if (n < 0) {
			r = -errno;
		} else {
			t[n] = 0;
			if (!link_inside(rv->project, rel, t)) {
				snprintf(err, errsz, "a link to %.200s, outside the project", t);
				r = -EXDEV;
			} else if (symlinkat(t, pfd, tmp) < 0) {
				r = -errno;
			}
		}
	} else if (r == 0 && S_ISREG(st.st_mode)) {
		int in = openat(sfd, leaf, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		int out = in < 0 ? -1 : openat(pfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		r = in < 0 || out < 0 ? -errno : 0;
		for (off_t left = st.st_size; r == 0 && left > 0;) {
			ssize_t n = copy_file_range(in, NULL, out, NULL, (size_t)left, 0);
			r = n < 0 ? -errno : n == 0 ? -EIO : 0;
			left -= n > 0 ? n : 0;
		}
		/* the permission bits only: no setuid, setgid or sticky bit */
		if (r == 0 && (fchmod(out, st.st_mode & 0777) < 0 || fsync(out) < 0))
			r = -errno;
		if (in >= 0)
			close(in);
		if (out >= 0)
			close(out);
		if (r < 0 && out >= 0)
			unlinkat(pfd, tmp, 0);
	} else if (r == 0) {
		r = -EINVAL;
	}
	close(sfd);
	return r;
}

int review_apply(struct review *rv, const struct review_change *c, char *err, size_t errsz)
{
	err[0] = 0;
	if (review_in_git(c->rel) || review_excluded(rv, c->rel, false))
		return -EPERM;	/* never: changes() does not offer them */
	char dir[4096], tmp[64];
	const char *leaf;
	split_rel(c->rel, dir, sizeof(dir), &leaf);
	int root = open(rv->project, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int wroot = open(rv->work, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	int pfd = root < 0 || wroot < 0 ? -errno
		: c->kind == REVIEW_DELETED ? openat_beneath(root, dir, O_RDONLY | O_DIRECTORY) : project_dir(root, dir);
	int r = pfd < 0 ? pfd : still_original(pfd, leaf, find(rv, c->rel));
	if (r == -ESTALE)
		snprintf(err, errsz, "changed in the project since the copy was made");
	if (r == 0 && c->kind == REVIEW_DELETED) {
		r = unlinkat(pfd, leaf, 0) < 0 ? -errno : 0;
	} else if (r == 0) {
		static unsigned seq;	/* unique names within this process (O_EXCL guards the rest) */
		snprintf(tmp, sizeof(tmp), ".kvmbox-review-%d-%u", (int)getpid(), seq++);
		r = write_beside(rv, wroot, pfd, c->rel, tmp, err, errsz);
		if (r == 0) {
			/* checked once more just before the rename: the window is this */
			r = still_original(pfd, leaf, find(rv, c->rel));
			if (r == 0 && renameat(pfd, tmp, pfd, leaf) < 0)
				r = -errno;
			if (r < 0)
				unlinkat(pfd, tmp, 0);
			if (r == -ESTALE)
				snprintf(err, errsz, "changed in the project while it was being applied");
		}
	}
	if (r < 0 && !err[0])
		snprintf(err, errsz, "%s", strerror(-r));
	if (pfd >= 0)
		close(pfd);
	if (root >= 0)
		close(root);
	if (wroot >= 0)
		close(wroot);
	return r;
}

int review_decided(struct review *rv, const struct review_change *c)
{
	struct review_entry *e = find(rv, c->rel);
	if (c->kind == REVIEW_DELETED) {
		if (e) {
			free(e->rel);
			memmove(e, e + 1, (size_t)(rv->e + rv->n - e - 1) * sizeof(*e));
			rv->n--;
		}
		return 0;
	}
	char dir[4096];
	const char *leaf;
	split_rel(c->rel, dir, sizeof(dir), &leaf);
	int wroot = open(rv->work, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	int sfd = wroot < 0 ? -errno : openat_beneath(wroot, dir, O_RDONLY | O_DIRECTORY);
	mode_t mode = 0;
	unsigned char sha[32];
	int r = sfd < 0 ? sfd : review_sha_at(sfd, leaf, &mode, sha);
	if (sfd >= 0)
		close(sfd);
	if (wroot >= 0)
		close(wroot);
	if (r < 0)
		return r;
	mode = (mode & S_IFMT) | (S_ISLNK(mode) ? 0777 : mode & 0777);
	if (e) {
		e->mode = mode;
		memcpy(e->sha256, sha, 32);
		return 0;
	}
	if ((r = review_add_entry(rv, c->rel, mode, sha)) == 0)
		qsort(rv->e, rv->n, sizeof(*rv->e), entry_cmp);
	return r;
}
