/* launch/hostexec.c - snapshot and report of the project's host-executed
 * files (see hostexec.h). */
#include "launch/hostexec.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "common/util.h"

/* Single files, and folders whose every entry counts. */
static const char *const watched_files[] = {
	".git/config", ".gitattributes", ".gitmodules", ".pre-commit-config.yaml",
	"package.json", "Makefile", "GNUmakefile", "makefile", ".envrc",
	".vscode/tasks.json", ".vscode/settings.json", ".vscode/launch.json",
	".kvmbox.json",	/* read by the next launch (it may only tighten; still, say so) */
	NULL,
};
static const char *const watched_dirs[] = { ".git/hooks", ".husky", ".github/workflows", NULL };

bool hostexec_watched(const char *rel)
{
	for (const char *const *f = watched_files; *f; f++)
		if (!strcmp(rel, *f))
			return true;
	for (const char *const *d = watched_dirs; *d; d++) {
		size_t n = strlen(*d);
		if (!strncmp(rel, *d, n) && (rel[n] == '/' || rel[n] == 0))
			return true;
	}
	return false;
}

/* One file by its path under the project's fd, never through a link: a
 * link anywhere on the way leaves it absent (the link itself is an entry
 * of its own: see collect). */
static void take(int root, const char *rel, struct hostexec_file *f)
{
	memset(f, 0, sizeof(*f));
	snprintf(f->rel, sizeof(f->rel), "%s", rel);
	const char *slash = strrchr(rel, '/'), *leaf = slash ? slash + 1 : rel;
	char dir[256];
	snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - rel) : 1, slash ? rel : ".");
	int pfd = openat_beneath(root, dir, O_PATH | O_DIRECTORY);
	struct stat st;
	if (pfd < 0 || fstatat(pfd, leaf, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (pfd >= 0)
			close(pfd);
		return;
	}
	f->mode = st.st_mode;
	f->size = S_ISDIR(st.st_mode) ? 0 : (size_t)st.st_size;	/* a folder: its kind only */
	if (S_ISLNK(st.st_mode)) {
		char t[4096];
		ssize_t n = readlinkat(pfd, leaf, t, sizeof(t) - 1);
		t[n > 0 ? n : 0] = 0;
		f->text = strdup(t);
		EVP_Digest(t, strlen(t), f->sha256, NULL, EVP_sha256(), NULL);
	}
	int fd = S_ISREG(st.st_mode) ? openat(pfd, leaf, O_RDONLY | O_NOFOLLOW | O_CLOEXEC) : -1;
	close(pfd);
	if (fd < 0)
		return;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	char *text = f->size <= HOSTEXEC_MAX_BYTES ? malloc(f->size + 1) : NULL;
	size_t got = 0;
	char buf[65536];
	if (ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)) {
		for (ssize_t n; (n = read(fd, buf, sizeof(buf))) > 0;) {
			EVP_DigestUpdate(ctx, buf, (size_t)n);
			if (text && got + (size_t)n <= f->size)
				memcpy(text + got, buf, (size_t)n);
			got += (size_t)n;
		}
		EVP_DigestFinal_ex(ctx, f->sha256, NULL);
	}
	EVP_MD_CTX_free(ctx);
	close(fd);
	if (text && got == f->size && !memchr(text, 0, got)) {	/* text, not binary */
		text[got] = 0;
		f->text = text;
	} else {
		free(text);
	}
}

static void add(struct hostexec *h, int root, const char *rel)
{
	for (unsigned i = 0; i < h->n; i++)
		if (!strcmp(h->f[i].rel, rel))
			return;
	if (h->n < HOSTEXEC_MAX_FILES)
		take(root, rel, &h->f[h->n++]);
}

static void collect(struct hostexec *h, int root)
{
	for (const char *const *p = watched_files; *p; p++)
		add(h, root, *p);
	for (const char *const *d = watched_dirs; *d; d++) {
		/* the folder and the one above it are entries too: one swapped
		 * for a link (git follows .git/hooks -> elsewhere) is a change */
		const char *slash = strchr(*d, '/');
		if (slash) {
			char up[64];
			snprintf(up, sizeof(up), "%.*s", (int)(slash - *d), *d);
			add(h, root, up);
		}
		add(h, root, *d);
		int dfd = openat_beneath(root, *d, O_RDONLY | O_DIRECTORY);
		DIR *dir = dfd >= 0 ? fdopendir(dfd) : NULL;
		if (!dir) {
			if (dfd >= 0)
				close(dfd);
			continue;
		}
		for (struct dirent *e; (e = readdir(dir));) {
			char rel[256];
			if (e->d_name[0] == '.' && (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2])))
				continue;
			if ((size_t)snprintf(rel, sizeof(rel), "%s/%s", *d, e->d_name) < sizeof(rel))
				add(h, root, rel);
		}
		closedir(dir);
	}
}

int hostexec_snapshot(const char *project, struct hostexec *h)
{
	memset(h, 0, sizeof(*h));
	int root = open(project, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (root < 0)
		return -errno;
	collect(h, root);
	close(root);
	return 0;
}

void hostexec_free(struct hostexec *h)
{
	for (unsigned i = 0; i < h->n; i++)
		free(h->f[i].text);
	h->n = 0;
}

/* ---- a unified diff (LCS over lines; small files only) ---- */

#define DIFF_MAX_LINES 4000
#define DIFF_CONTEXT 3

/* Split text into lines (pointers into a copy): the count. */
static size_t split(char *text, char **lines, size_t max)
{
	size_t n = 0;
	for (char *p = text; *p && n < max;) {
		lines[n++] = p;
		char *nl = strchr(p, '\n');
		if (!nl)
			break;
		*nl = 0;
		p = nl + 1;
	}
	return n;
}

struct edit {
	char op;	/* ' ', '-', '+' */
	const char *line;
	size_t ai, bi;	/* line numbers (0-based) at this point */
};

void hostexec_diff(const char *rel, const char *a, const char *b, FILE *out)
{
	char *ca = strdup(a ? a : ""), *cb = strdup(b ? b : "");
	char **la = malloc(sizeof(char *) * (DIFF_MAX_LINES + 1));
	char **lb = malloc(sizeof(char *) * (DIFF_MAX_LINES + 1));
	size_t na = ca && la ? split(ca, la, DIFF_MAX_LINES + 1) : 0;
	size_t nb = cb && lb ? split(cb, lb, DIFF_MAX_LINES + 1) : 0;
	uint16_t *lcs = NULL;
	struct edit *ed = NULL;
	if (na > DIFF_MAX_LINES || nb > DIFF_MAX_LINES || !ca || !cb || !la || !lb ||
	    !(lcs = calloc((na + 1) * (nb + 1), sizeof(*lcs))) ||
	    !(ed = malloc(sizeof(*ed) * (na + nb + 1)))) {
		fprintf(out, "    (%zu lines before, %zu after: too long to show)\n", na, nb);
		goto out;
	}
	/* lcs[i][j]: the longest common subsequence of a[i..] and b[j..] */
	for (size_t i = na; i-- > 0;)
		for (size_t j = nb; j-- > 0;)
			lcs[i * (nb + 1) + j] = !strcmp(la[i], lb[j])
				? lcs[(i + 1) * (nb + 1) + j + 1] + 1
				: (lcs[(i + 1) * (nb + 1) + j] > lcs[i * (nb + 1) + j + 1]
					   ? lcs[(i + 1) * (nb + 1) + j] : lcs[i * (nb + 1) + j + 1]);
	size_t ne = 0, i = 0, j = 0;
	while (i < na || j < nb) {
		if (i < na && j < nb && !strcmp(la[i], lb[j]))
			ed[ne++] = (struct edit){ ' ', la[i], i, j }, i++, j++;
		else if (i < na && (j == nb || lcs[(i + 1) * (nb + 1) + j] >= lcs[i * (nb + 1) + j + 1]))
			ed[ne++] = (struct edit){ '-', la[i], i, j }, i++;	/* removals first, as diff -u */
		else
			ed[ne++] = (struct edit){ '+', lb[j], i, j }, j++;
	}
	fprintf(out, "    --- a/%s\n    +++ b/%s\n", rel, rel);
	for (size_t k = 0; k < ne;) {
		if (ed[k].op == ' ') {
			k++;
			continue;
		}
		/* a hunk: from CONTEXT before this change to CONTEXT after the last
		 * change that lies within 2 * CONTEXT of the previous one */
		size_t start = k > DIFF_CONTEXT ? k - DIFF_CONTEXT : 0, end = k;
		for (size_t q = k; q < ne; q++)
			if (ed[q].op != ' ') {
				if (q > end + 2 * DIFF_CONTEXT)
					break;
				end = q;
			}
		end = end + DIFF_CONTEXT + 1 < ne ? end + DIFF_CONTEXT + 1 : ne;
		size_t acount = 0, bcount = 0;
		for (size_t q = start; q < end; q++) {
			acount += ed[q].op != '+';
			bcount += ed[q].op != '-';
		}
		fprintf(out, "    @@ -%zu,%zu +%zu,%zu @@\n", ed[start].ai + (acount ? 1 : 0), acount,
			ed[start].bi + (bcount ? 1 : 0), bcount);
		for (size_t q = start; q < end; q++)
			fprintf(out, "    %c%s\n", ed[q].op, ed[q].line);
		k = end;
	}
out:
	free(ed);
	free(lcs);
	free(la);
	free(lb);
	free(ca);
	free(cb);
}

static const char *kind(mode_t m)
{
	return S_ISLNK(m) ? "a link" : S_ISREG(m) ? "a file" : S_ISDIR(m) ? "a folder" : "not a file";
}

/* What changed between two takes of one file: a phrase, or NULL. */
static const char *change(const struct hostexec_file *a, const struct hostexec_file *b, char *buf,
			  size_t bufsz)
{
	bool ax = a->mode & 0111, bx = b->mode & 0111;
	if (!a->mode && !b->mode)
		return NULL;
	if (!a->mode)
		snprintf(buf, bufsz, "created (%s%s)", kind(b->mode), bx && S_ISREG(b->mode) ? ", executable" : "");
	else if (!b->mode)
		snprintf(buf, bufsz, "removed");
	else if ((a->mode & S_IFMT) != (b->mode & S_IFMT))
		snprintf(buf, bufsz, "replaced by %s", kind(b->mode));
	else if (memcmp(a->sha256, b->sha256, 32) || a->size != b->size)
		snprintf(buf, bufsz, "changed%s", !ax && bx ? ", and made executable" : "");
	else if (!ax && bx)
		snprintf(buf, bufsz, "made executable");
	else
		return NULL;
	return buf;
}

int hostexec_report(const char *project, const struct hostexec *before, FILE *out)
{
	struct hostexec *now = malloc(sizeof(*now));
	if (!now)
		return -ENOMEM;
	int r = hostexec_snapshot(project, now);
	if (r < 0) {
		free(now);
		return r;
	}
	/* every file of either take, once; one missing from a take is absent */
	int changed = 0;
	for (unsigned i = 0; i < now->n + before->n; i++) {
		const struct hostexec_file *b = NULL, *a = NULL;
		struct hostexec_file absent;
		if (i < before->n) {
			a = &before->f[i];
			for (unsigned k = 0; k < now->n && !b; k++)
				if (!strcmp(now->f[k].rel, a->rel))
					b = &now->f[k];
		} else {
			b = &now->f[i - before->n];
			bool seen = false;
			for (unsigned k = 0; k < before->n && !seen; k++)
				seen = !strcmp(before->f[k].rel, b->rel);
			if (seen)
				continue;
		}
		if (!a || !b) {
			memset(&absent, 0, sizeof(absent));
			if (!a)
				a = &absent;
			else
				b = &absent;
		}
		char what[64];
		if (!change(a, b, what, sizeof(what)))
			continue;
		fprintf(out, "  %s: %s\n", a->mode ? a->rel : b->rel, what);
		if ((a->text || !a->mode) && (b->text || !b->mode) && (a->mode || b->mode))
			hostexec_diff(a->mode ? a->rel : b->rel, a->text, b->text, out);
		changed++;
	}
	hostexec_free(now);
	free(now);
	return changed;
}
