/* launch/review/prompt.c - the review conversation in the terminal
 * (review.h): each change with a unified diff, one question per change,
 * the decisions kept as they are made.
 *
 * Everything shown comes from the agent (names and contents), so it goes
 * through put_visible: a control byte or an escape sequence in a
 * file would otherwise move the cursor, rewrite earlier lines or retitle
 * the window while the user decides what to accept.
 */
#include "launch/review/review.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/text.h"
#include "common/util.h"
#include "launch/hostexec.h"

#define SHOW_MAX (256 * 1024)	/* bytes of a file shown as a diff */

static void put_name(FILE *out, const char *rel)
{
	put_visible(out, rel, strlen(rel));
}

/* rel under root (never through a link) as text: a file's first SHOW_MAX
 * bytes, a link's "-> target"; NULL when absent.  *binary when it holds a
 * NUL; *size its whole size. */
static char *read_rel(const char *root, const char *rel, bool *binary, off_t *size)
{
	*binary = false;
	*size = 0;
	int rfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rfd < 0)
		return NULL;
	char dir[4096];
	const char *slash = strrchr(rel, '/'), *leaf = slash ? slash + 1 : rel;
	snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - rel) : 1, slash ? rel : ".");
	int dfd = openat_beneath(rfd, dir, O_RDONLY | O_DIRECTORY);
	close(rfd);
	if (dfd < 0)
		return NULL;
	struct stat st;
	char *text = NULL;
	if (fstatat(dfd, leaf, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode)) {
		char t[4096];
		ssize_t n = readlinkat(dfd, leaf, t, sizeof(t) - 1);
		if (n >= 0 && asprintf(&text, "-> %.*s\n", (int)n, t) < 0)
			text = NULL;
	} else if (S_ISREG(st.st_mode)) {
		int fd = openat(dfd, leaf, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		size_t want = st.st_size < SHOW_MAX ? (size_t)st.st_size : SHOW_MAX;
		text = fd >= 0 ? malloc(want + 1) : NULL;
		ssize_t n = text ? read(fd, text, want) : -1;
		if (n < 0) {
			free(text);
			text = NULL;
		} else if (text) {
			text[n] = 0;
			*binary = memchr(text, 0, (size_t)n) != NULL;
			*size = st.st_size;
		}
		if (fd >= 0)
			close(fd);
	}
	close(dfd);
	return text;
}

static void show_diff(struct review *rv, const struct review_change *c, FILE *out)
{
	bool bin_a, bin_b;
	off_t sa, sb;
	char *a = c->kind == REVIEW_ADDED ? NULL : read_rel(rv->project, c->rel, &bin_a, &sa);
	char *b = c->kind == REVIEW_DELETED ? NULL : read_rel(rv->work, c->rel, &bin_b, &sb);
	if ((a && bin_a) || (b && bin_b)) {
		fprintf(out, "    binary: %lld bytes before, %lld after\n", a ? (long long)sa : 0LL,
			b ? (long long)sb : 0LL);
	} else if ((a && sa > SHOW_MAX) || (b && sb > SHOW_MAX)) {
		fprintf(out, "    %lld bytes before, %lld after: too large to show\n", (long long)sa,
			(long long)sb);
	} else {
		char *text = NULL;
		size_t len = 0;
		FILE *m = open_memstream(&text, &len);
		if (m) {
			hostexec_diff(c->rel, a, b, m);
			fclose(m);
			put_visible(out, text, len);
		}
		free(text);
	}
	free(a);
	free(b);
}

static const char *kind_word(enum review_kind k)
{
	return k == REVIEW_ADDED ? "added" : k == REVIEW_CHANGED ? "changed" : "deleted";
}

/* One answer from in: 'y', 'n', 'a', 'q' (EOF: 'q'). */
static int ask(FILE *in, FILE *out)
{
	for (;;) {
		fprintf(out, "Apply it? [y]es, [n]o, [a]ll the rest, [q]uit and keep for later: ");
		fflush(out);
		char line[64];
		if (!fgets(line, sizeof(line), in))
			return 'q';
		if (strchr("ynaqYNAQ", line[0]) && line[0] && (line[1] == '\n' || line[1] == 0))
			return line[0] | 0x20;
	}
}

int review_run(struct review *rv, FILE *in, FILE *out, const char *cmd)
{
	struct review_change *c;
	ssize_t n = review_changes(rv, &c);
	if (n < 0)
		return (int)n;
	if (n == 0) {
		fprintf(out, "%s: the agent changed nothing in the project's copy\n", cmd);
		review_changes_free(c, 0);
		return review_discard(rv);
	}
	unsigned marked = 0;
	for (ssize_t i = 0; i < n; i++)
		marked += c[i].host_runs;
	fprintf(out, "%s: the agent changed %zd file%s in the project's copy", cmd, n, n == 1 ? "" : "s");
	if (marked)
		fprintf(out, "; %u of them (marked !) your machine runs or trusts: read those first", marked);
	fprintf(out, ":\n");
	for (ssize_t i = 0; i < n; i++) {
		fprintf(out, "  %c %-7s ", c[i].host_runs ? '!' : ' ', kind_word(c[i].kind));
		put_name(out, c[i].rel);
		fputc('\n', out);
	}
	ssize_t undecided = n;
	bool all = false;
	int r = 0;
	for (ssize_t i = 0; i < n && r == 0; i++) {
		fprintf(out, "\n(%zd/%zd) %s%s: ", i + 1, n, c[i].host_runs ? "! " : "", kind_word(c[i].kind));
		put_name(out, c[i].rel);
		fprintf(out, "%s\n", c[i].host_runs ? "  (your machine runs or trusts this file)" : "");
		show_diff(rv, &c[i], out);
		int a = all ? 'y' : ask(in, out);
		if (a == 'q')
			break;
		all = a == 'a';
		if (a == 'n') {
			fprintf(out, "    left out\n");
			r = review_decided(rv, &c[i]) ?: review_save(rv);	/* kept at once: an interrupt loses nothing */
			undecided--;
			continue;
		}
		char err[300];
		if (review_apply(rv, &c[i], err, sizeof(err)) < 0) {
			fprintf(out, "    not applied: %s (kept for later)\n", err);
			continue;
		}
		fprintf(out, "    applied\n");
		r = review_decided(rv, &c[i]) ?: review_save(rv);
		undecided--;
	}
	review_changes_free(c, (size_t)n);
	if (r == 0)
		r = review_save(rv);
	if (r < 0)
		return r;
	if (undecided == 0)
		return review_discard(rv);
	fprintf(out, "%s: %zd change%s still wait%s for review: kvmbox review --project ", cmd, undecided,
		undecided == 1 ? "" : "s", undecided == 1 ? "s" : "");
	put_name(out, rv->project);
	fputc('\n', out);
	return 1;
}
