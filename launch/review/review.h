/* launch/review/review.h - review mode: the agent works on a copy of the
 * project, and nothing of the copy reaches the project without a yes.
 *
 * Before the launch the project is copied (FICLONE where the file system
 * shares extents, a copy otherwise) into
 * $XDG_STATE_HOME/kvmbox/reviews/<name>-<hash>/work, which the guest gets
 * at the project's own path; the project's sensitive files (launch/hidden.h),
 * `.kvmboxignore` (gitignore syntax) and --exclude patterns are left out.
 * A manifest beside it, which the guest never sees, records what each file
 * was (kind, permission bits, SHA-256 of the contents or of a link's
 * target).  After the VM, the copy is compared with the manifest: every
 * file added, changed or deleted is a change, shown as a unified diff and
 * applied only when the user says yes, and only when the project's file is
 * still what the manifest says (changed on the host meanwhile: refused,
 * named).  Applied files lose setuid, setgid and sticky bits; links must
 * point inside the project; every path in the project is opened beneath it
 * without following links; a file is written beside its place and renamed
 * over it.  `.git` travels with the copy (git works in the guest) but its
 * changes are never applied: the agent's commits stay in the copy.
 *
 * A decision, either way, moves the manifest to the copy's state, so a
 * review left with "quit" reopens (kvmbox review) with only the changes
 * still undecided; when none is left the review folder is removed.  One
 * review per project at a time: a --review launch with one pending is
 * refused until it is finished.
 */
#ifndef KVMBOX_LAUNCH_REVIEW_H
#define KVMBOX_LAUNCH_REVIEW_H

#include <dirent.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#define REVIEW_MAX_EXCLUDES 64
#define REVIEW_MAX_DEPTH 64

/* What a file was: the manifest's line. */
struct review_entry {
	char *rel;			/* path under the project, no leading "./" */
	mode_t mode;			/* S_IFREG or S_IFLNK, and the permission bits */
	unsigned char sha256[32];	/* of the contents, or of a link's target */
};

struct review {
	char project[4096];	/* the project's real path */
	char dir[4096];		/* the review folder */
	char work[4160];	/* dir/work: the copy the guest gets */
	struct review_entry *e;	/* sorted by rel */
	size_t n, cap;
	const char *excludes[REVIEW_MAX_EXCLUDES];	/* --exclude, then .kvmboxignore's */
	unsigned nexcludes;
	char *ignore_text;	/* .kvmboxignore's contents (excludes point into it) */
	bool cloned;		/* at least one file was shared with FICLONE */
	unsigned long long bytes;	/* copied */
};

enum review_kind { REVIEW_ADDED, REVIEW_CHANGED, REVIEW_DELETED };

struct review_change {
	char *rel;
	enum review_kind kind;
	bool host_runs;		/* a file the host runs or trusts (launch/hostexec.h) */
};

/* The review folder of the project (real path): rv->project, rv->dir,
 * rv->work set, nothing created.  0 or -errno. */
int review_locate(struct review *rv, const char *project_real);
/* Whether a review of that project is pending (its manifest exists). */
bool review_pending(const struct review *rv);

/* Copy the project into rv->work and write the manifest, leaving out the
 * sensitive files, .kvmboxignore's patterns and excludes[] (--exclude).
 * 0, -EEXIST (a review is pending), or -errno with a line in err; on
 * failure nothing is left behind. */
int review_snapshot(struct review *rv, const char *const *excludes, unsigned nexcludes, char *err,
		    size_t errsz);

/* Read a pending review's manifest (kvmbox review).  0 or -errno. */
int review_load(struct review *rv, char *err, size_t errsz);

/* The changes, host-run files first, then by path: *out (malloc'd; free
 * with review_changes_free), their count, or -errno. */
ssize_t review_changes(struct review *rv, struct review_change **out);
void review_changes_free(struct review_change *c, size_t n);

/* Apply one change to the project (see above): 0, or -errno with the
 * reason in err (-ESTALE: the project's file changed since the copy). */
int review_apply(struct review *rv, const struct review_change *c, char *err, size_t errsz);
/* Record a decision: the manifest takes the copy's state for c.  0 or -errno. */
int review_decided(struct review *rv, const struct review_change *c);
/* Write the manifest back (after decisions).  0 or -errno. */
int review_save(struct review *rv);
/* Remove the review folder.  0 or -errno. */
int review_discard(struct review *rv);
void review_fini(struct review *rv);

/* The review conversation: each change with its diff on out (control
 * bytes shown as ^X, never sent to the terminal), then "[y]es, [n]o, [a]ll
 * the rest, [q]uit and keep for later" read from in.  cmd names the
 * command in messages.  0 when every change was decided (the folder is
 * removed), 1 when some wait for later (kvmbox review), -errno. */
int review_run(struct review *rv, FILE *in, FILE *out, const char *cmd);

/* Whether rel is excluded by rv's patterns (is_dir: a folder). */
bool review_excluded(const struct review *rv, const char *rel, bool is_dir);

/* Shared by the review's files: whether rel is .git or beneath it; the
 * kind and SHA-256 (contents, or a link's target) of dfd/name, never
 * following it (0 or -errno; -EINVAL for what is neither). */
bool review_in_git(const char *rel);
int review_sha_at(int dfd, const char *name, mode_t *mode, unsigned char out[32]);
/* The names in folder dfd one per call, "." and ".." left out, NULL at the
 * end: the DIR from review_dir_open (a duplicate: dfd stays open, and
 * closedir closes only its own).  NULL with errno. */
DIR *review_dir_open(int dfd);
const char *review_dir_next(DIR *d);
/* Append a manifest entry (the caller sorts): 0 or -ENOMEM. */
int review_add_entry(struct review *rv, const char *rel, mode_t mode, const unsigned char sha[32]);


#endif
