/* launch/review/snapshot.c - the copy the agent works on and the manifest
 * of what it was (review.h): where they live, what is left out, the copy
 * itself (FICLONE, else a copy), the manifest's file.
 *
 * The manifest lives beside the copy, never in it: the guest gets only
 * work/, so it cannot rewrite what the project's files are checked
 * against.  Its lines are "KIND MODE SHA256 PATH" with PATH percent-encoded
 * (every byte below '!', '%' and above '~'), one file per line.
 */
#include "launch/review/review.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <linux/fs.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "guest/image/image.h"
#include "launch/hidden.h"
#include "launch/state.h"

#define MANIFEST "manifest"

int review_locate(struct review *rv, const char *project_real)
{
	memset(rv, 0, sizeof(*rv));
	snprintf(rv->project, sizeof(rv->project), "%s", project_real);
	int r = state_kind_dir(project_real, "reviews", rv->dir, sizeof(rv->dir));
	if (r < 0)
		return r;
	snprintf(rv->work, sizeof(rv->work), "%s/work", rv->dir);
	return 0;
}

bool review_pending(const struct review *rv)
{
	char m[4200];
	snprintf(m, sizeof(m), "%s/" MANIFEST, rv->dir);
	return access(m, F_OK) == 0;
}

/* ---- what is left out ---- */

/* One gitignore line against rel (its last component leaf): 1 match. */
static bool pattern_matches(const char *pat, const char *rel, const char *leaf, bool is_dir)
{
	char p[512];
	snprintf(p, sizeof(p), "%s", pat);
	size_t n = strlen(p);
	bool dir_only = n > 1 && p[n - 1] == '/';
	if (dir_only)
		p[--n] = 0;
	if (dir_only && !is_dir)
		return false;
	const char *q = p;
	while (!strncmp(q, "**/", 3))
		q += 3;
	bool anchored = q == p && strchr(p, '/') != NULL;
	if (q[0] == '/')
		q++;
	if (anchored)
		return fnmatch(q, rel, FNM_PATHNAME | FNM_PERIOD) == 0;
	if (strchr(q, '/')) {	/* "**\/a/b": a/b at any depth */
		for (const char *at = rel; at; at = strchr(at, '/') ? strchr(at, '/') + 1 : NULL)
			if (fnmatch(q, at, FNM_PATHNAME | FNM_PERIOD) == 0)
				return true;
		return false;
	}
	return fnmatch(q, leaf, FNM_PERIOD) == 0;
}

bool review_excluded(const struct review *rv, const char *rel, bool is_dir)
{
	const char *slash = strrchr(rel, '/'), *leaf = slash ? slash + 1 : rel;
	char parent[256] = "";
	if (slash) {
		const char *p = slash;
		while (p > rel && p[-1] != '/')
			p--;
		snprintf(parent, sizeof(parent), "%.*s", (int)(slash - p), p);
	}
	if (name_pattern_match(hidden_default, parent, leaf))
		return true;	/* never shared, never negated */
	bool out = false;
	for (unsigned i = 0; i < rv->nexcludes; i++) {
		const char *p = rv->excludes[i];
		bool negate = p[0] == '!';
		if (pattern_matches(p + negate, rel, leaf, is_dir))
			out = !negate;	/* the last pattern that matches decides */
	}
	return out;
}

/* .kvmboxignore's lines (comments and blanks skipped) after --exclude's. */
static void read_ignore_file(struct review *rv)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/.kvmboxignore", rv->project);
	uint8_t *text;
	size_t len;
	if (read_file(path, 64 * 1024, &text, &len) < 0)
		return;
	rv->ignore_text = (char *)text;
	for (char *line = rv->ignore_text, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		size_t n = strlen(line);
		while (n && (line[n - 1] == '\r' || line[n - 1] == ' '))
			line[--n] = 0;
		if (n && line[0] != '#' && rv->nexcludes < REVIEW_MAX_EXCLUDES)
			rv->excludes[rv->nexcludes++] = line;
	}
}

bool review_in_git(const char *rel)
{
	return !strncmp(rel, ".git", 4) && (rel[4] == 0 || rel[4] == '/');
}

/* ---- the manifest ---- */

static int entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct review_entry *)a)->rel, ((const struct review_entry *)b)->rel);
}

int review_add_entry(struct review *rv, const char *rel, mode_t mode, const unsigned char sha[32])
{
	if (rv->n == rv->cap) {
		size_t cap = rv->cap ? rv->cap * 2 : 256;
		struct review_entry *e = realloc(rv->e, cap * sizeof(*e));
		if (!e)
			return -ENOMEM;
		rv->e = e;
		rv->cap = cap;
	}
	struct review_entry *e = &rv->e[rv->n];
	if (!(e->rel = strdup(rel)))
		return -ENOMEM;
	e->mode = mode;
	memcpy(e->sha256, sha, 32);
	rv->n++;
	return 0;
}

int review_save(struct review *rv)
{
	char path[4200], tmp[4220];
	snprintf(path, sizeof(path), "%s/" MANIFEST, rv->dir);
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	FILE *f = fopen(tmp, "we");
	if (!f)
		return -errno;
	qsort(rv->e, rv->n, sizeof(*rv->e), entry_cmp);
	for (size_t i = 0; i < rv->n; i++) {
		const struct review_entry *e = &rv->e[i];
		fprintf(f, "%c %04o ", S_ISLNK(e->mode) ? 'l' : 'f', (unsigned)(e->mode & 07777));
		for (int k = 0; k < 32; k++)
			fprintf(f, "%02x", e->sha256[k]);
		fputc(' ', f);
		for (const unsigned char *p = (const unsigned char *)e->rel; *p; p++)
			if (*p <= ' ' || *p == '%' || *p > '~')
				fprintf(f, "%%%02X", *p);
			else
				fputc(*p, f);
		fputc('\n', f);
	}
	int r = fflush(f) == 0 && fsync(fileno(f)) == 0 ? 0 : -errno;
	fclose(f);
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0)
		unlink(tmp);
	return r;
}

int review_load(struct review *rv, char *err, size_t errsz)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/" MANIFEST, rv->dir);
	FILE *f = fopen(path, "re");
	if (!f) {
		snprintf(err, errsz, "no review is pending for %s", rv->project);
		return -ENOENT;
	}
	char line[4096 * 3 + 100];
	int r = 0;
	while (r == 0 && fgets(line, sizeof(line), f)) {
		char kind, hex[65], enc[4096 * 3 + 1], rel[4096];
		unsigned mode;
		unsigned char sha[32];
		if (sscanf(line, "%c %o %64s %12288s", &kind, &mode, hex, enc) != 4 || strlen(hex) != 64 ||
		    (kind != 'f' && kind != 'l')) {
			r = -EINVAL;
			break;
		}
		for (int k = 0; k < 32; k++)
			sha[k] = (unsigned char)(hex_digit(hex[2 * k]) << 4 | hex_digit(hex[2 * k + 1]));
		size_t o = 0;
		for (const char *p = enc; *p && o + 1 < sizeof(rel); p++) {
			if (*p == '%' && hex_digit(p[1]) >= 0 && hex_digit(p[2]) >= 0) {
				rel[o++] = (char)(hex_digit(p[1]) << 4 | hex_digit(p[2]));
				p += 2;
			} else {
				rel[o++] = *p;
			}
		}
		rel[o] = 0;
		r = review_add_entry(rv, rel, (kind == 'l' ? S_IFLNK : S_IFREG) | (mode & 07777), sha);
	}
	fclose(f);
	if (r < 0)
		snprintf(err, errsz, "%s: unreadable manifest", path);
	else
		qsort(rv->e, rv->n, sizeof(*rv->e), entry_cmp);
	read_ignore_file(rv);
	return r;
}

/* ---- the copy ---- */

/* SHA-256 of what fd reads from its offset to the end. */
static int sha_fd(int fd, unsigned char out[32])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)) {
		EVP_MD_CTX_free(ctx);
		return -ENOMEM;
	}
	char buf[65536];
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		EVP_DigestUpdate(ctx, buf, (size_t)n);
	EVP_DigestFinal_ex(ctx, out, NULL);
	EVP_MD_CTX_free(ctx);
	return n < 0 ? -errno : 0;
}

int review_sha_at(int dfd, const char *name, mode_t *mode, unsigned char out[32])
{
	struct stat st;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	*mode = st.st_mode;
	if (S_ISLNK(st.st_mode)) {
		char t[4096];
		ssize_t n = readlinkat(dfd, name, t, sizeof(t));
		if (n < 0 || n == sizeof(t))
			return n < 0 ? -errno : -ENAMETOOLONG;
		EVP_Digest(t, (size_t)n, out, NULL, EVP_sha256(), NULL);
		return 0;
	}
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int r = sha_fd(fd, out);
	close(fd);
	return r;
}

/* One regular file from sfd/name to dfd/name: shared extents when the file
 * system can, else copied; its SHA-256 into sha. */
static int copy_file(struct review *rv, int sfd, int dfd, const char *name, mode_t mode,
		     unsigned char sha[32])
{
	int in = openat(sfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (in < 0)
		return -errno;
	int out = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode & 0777);
	int r = out < 0 ? -errno : 0;
	if (r == 0 && ioctl(out, FICLONE, in) == 0) {
		rv->cloned = true;
	} else if (r == 0) {
		struct stat st;
		r = fstat(in, &st) < 0 ? -errno : 0;
		for (off_t left = r == 0 ? st.st_size : 0; left > 0;) {
			ssize_t n = copy_file_range(in, NULL, out, NULL, (size_t)left, 0);
			if (n <= 0) {
				r = n < 0 ? -errno : -EIO;
				break;
			}
			left -= n;
			rv->bytes += (unsigned long long)n;
		}
	}
	if (r == 0 && lseek(in, 0, SEEK_SET) == 0)
		r = sha_fd(in, sha);
	close(in);
	if (out >= 0)
		close(out);
	return r;
}

static int copy_tree(struct review *rv, int sfd, int dfd, char *rel, size_t rlen, unsigned depth);

/* One entry of a folder: copied when it is a file, a link or a folder
 * (other kinds, and what the patterns leave out, are not). */
static int copy_entry(struct review *rv, int sfd, int dfd, const char *name, char *rel, size_t rlen,
		      unsigned depth)
{
	struct stat st;
	if (fstatat(sfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	size_t n = strlen(name);
	if (rlen + n + 2 > 4096)
		return -ENAMETOOLONG;
	if (rlen)
		rel[rlen++] = '/';
	memcpy(rel + rlen, name, n + 1);
	int r = 0;
	bool is_git = !strcmp(rel, ".git");
	if (!is_git && review_excluded(rv, rel, S_ISDIR(st.st_mode)))
		goto out;
	unsigned char sha[32];
	if (S_ISDIR(st.st_mode)) {
		if (depth >= REVIEW_MAX_DEPTH) {
			r = -ELOOP;
			goto out;
		}
		if (mkdirat(dfd, name, (st.st_mode & 0777) | 0700) < 0) {
			r = -errno;
			goto out;
		}
		int s2 = openat(sfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		int d2 = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		r = s2 < 0 || d2 < 0 ? -errno : copy_tree(rv, s2, d2, rel, rlen + n, depth + 1);
		if (s2 >= 0)
			close(s2);
		if (d2 >= 0)
			close(d2);
	} else if (S_ISLNK(st.st_mode)) {
		char t[4096];
		ssize_t tn = readlinkat(sfd, name, t, sizeof(t) - 1);
		if (tn < 0) {
			r = -errno;
			goto out;
		}
		t[tn] = 0;
		if (symlinkat(t, dfd, name) < 0) {
			r = -errno;
			goto out;
		}
		EVP_Digest(t, (size_t)tn, sha, NULL, EVP_sha256(), NULL);
		if (!review_in_git(rel))
			r = review_add_entry(rv, rel, S_IFLNK | 0777, sha);
	} else if (S_ISREG(st.st_mode)) {
		r = copy_file(rv, sfd, dfd, name, st.st_mode, sha);
		if (r == 0 && !review_in_git(rel))
			r = review_add_entry(rv, rel, S_IFREG | (st.st_mode & 0777), sha);
	}
out:
	rel[rlen ? rlen - 1 : 0] = 0;
	return r;
}

DIR *review_dir_open(int dfd)
{
	int fd = dup(dfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d && fd >= 0) {
		int e = errno;
		close(fd);
		errno = e;
	}
	return d;
}

const char *review_dir_next(DIR *d)
{
	for (struct dirent *de; (de = readdir(d));)
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			return de->d_name;
	return NULL;
}

static int copy_tree(struct review *rv, int sfd, int dfd, char *rel, size_t rlen, unsigned depth)
{
	DIR *d = review_dir_open(sfd);
	if (!d)
		return -errno;
	int r = 0;
	for (const char *name; r == 0 && (name = review_dir_next(d)); rel[rlen] = 0)
		r = copy_entry(rv, sfd, dfd, name, rel, rlen, depth);
	closedir(d);
	return r;
}

int review_snapshot(struct review *rv, const char *const *excludes, unsigned nexcludes, char *err,
		    size_t errsz)
{
	if (review_pending(rv)) {
		snprintf(err, errsz, "a review of this project's last launch is pending: kvmbox review --project %s",
			 rv->project);
		return -EEXIST;
	}
	review_discard(rv);	/* a copy without a manifest: an earlier launch cut short */
	for (unsigned i = 0; i < nexcludes && rv->nexcludes < REVIEW_MAX_EXCLUDES; i++)
		rv->excludes[rv->nexcludes++] = excludes[i];
	read_ignore_file(rv);
	int sfd = open(rv->project, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r = sfd < 0 ? -errno : 0;
	if (r == 0 && mkdir(rv->work, 0700) < 0)
		r = -errno;
	int dfd = r == 0 ? open(rv->work, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) : -1;
	char rel[4096] = "";
	if (r == 0)
		r = dfd < 0 ? -errno : copy_tree(rv, sfd, dfd, rel, 0, 0);
	if (sfd >= 0)
		close(sfd);
	if (dfd >= 0)
		close(dfd);
	if (r == 0)
		r = review_save(rv);
	if (r < 0) {
		snprintf(err, errsz, "cannot copy %s for the review into %s: %s", rv->project, rv->work,
			 strerror(-r));
		review_discard(rv);
	}
	return r;
}

/* ---- removal ---- */

int review_discard(struct review *rv)
{
	int fd = open(rv->dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	int r = image_remove_tree_at(fd, "work");
	unlinkat(fd, MANIFEST, 0);
	close(fd);
	return r;
}

void review_fini(struct review *rv)
{
	for (size_t i = 0; i < rv->n; i++)
		free(rv->e[i].rel);
	free(rv->e);
	free(rv->ignore_text);
	rv->e = NULL;
	rv->n = rv->cap = 0;
	rv->ignore_text = NULL;
}
