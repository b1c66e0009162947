/* launch/worktree/worktree.h - parallel agents on one repository: a
 * sandbox on its own `git worktree` (--worktree[=BRANCH]).
 *
 * The worktree is made next to kvmbox's state ($XDG_STATE_HOME/kvmbox/
 * worktrees/<project>-<hash>/<sandbox name>) on the branch kvmbox/<name>
 * (or kvmbox/BRANCH: made from the project's HEAD when new, reused when it
 * exists and no other worktree has it), by the host's git with no hook
 * run.  The guest sees it at the project's path, and git there sees a
 * proper repository: the worktree's .git file names the project's git
 * directory, which the guest has at WORKTREE_GUEST_GIT, read-only, with
 * only what a commit on this worktree writes shared read-write over it:
 * the object store (shared with the project: a commit's objects are the
 * project's at once), this worktree's own folder (its HEAD, index,
 * reflog), and the kvmbox/ branches and their reflogs.  The project's
 * other branches, tags, configuration and hooks are out of the guest's
 * reach (without --worktree the whole .git is the guest's).  The launch
 * directory carries the guest's .git file (WORKTREE_GITFILE), which the
 * launch's wrapper binds over the worktree's own (that one names the host's
 * path, for the host's git).
 *
 * The guest writes the worktree's .git file and its admin folder, and a
 * launch without --worktree writes all of .git: so the host's git runs in
 * a worktree only while its .git file names gitdir/worktrees/ADMIN and
 * that folder's commondir is git's own "../.." (else a configuration of
 * the guest's choosing, core.fsmonitor or a filter, would run on the
 * host), and each writable share must be the git directory's own folder,
 * never a link to elsewhere (-EPERM otherwise, from prepare and remove).
 *
 * Removal (kvmbox rm): the worktree goes only when its branch has no
 * commit that no other branch or remote-tracking branch has, and git
 * finds no uncommitted change in it; --force removes it anyway and keeps
 * such a branch.  A branch with nothing of its own is deleted with it.
 */
#ifndef KVMBOX_LAUNCH_WORKTREE_H
#define KVMBOX_LAUNCH_WORKTREE_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#define WORKTREE_GUEST_GIT "/run/kvmbox/git"
#define WORKTREE_GITFILE "worktree.git"	/* in the launch directory */
#define WORKTREE_BRANCH_PREFIX "kvmbox/"
#define WORKTREE_SHARES 5		/* read-only git directory + 4 writable parts */
#define WORKTREE_BRANCH_MAX 200

struct worktree {
	char path[PATH_MAX];		/* the worktree on the host */
	char branch[WORKTREE_BRANCH_MAX];	/* kvmbox/... */
	char gitdir[PATH_MAX];		/* the project's git directory (common dir) */
	char admin[256];		/* its folder's name under gitdir/worktrees */
	bool made;			/* made by this launch (else reused) */
	/* the guest's shares, HOST:GUEST[:ro] for --share */
	char shares[WORKTREE_SHARES][2 * PATH_MAX + 16];
};

/* Whether BRANCH (what follows kvmbox/) is a name git and kvmbox accept:
 * [A-Za-z0-9._-] parts joined by '/', none empty, starting with '.' or
 * '-' or ending in ".lock", no "..", at most WORKTREE_BRANCH_MAX bytes
 * with the prefix. */
bool worktree_branch_valid(const char *branch);

/* Make (or reuse) sandbox name's worktree of project_real, the top of a
 * git repository, on kvmbox/BRANCH (branch NULL: kvmbox/name).  0, or
 * -errno with one line in err (not a repository's top, a branch checked
 * out elsewhere, git's own refusal). */
int worktree_prepare(const char *project_real, const char *name, const char *branch,
		     struct worktree *wt, char *err, size_t errsz);

/* The guest's .git file for wt: "gitdir: WORKTREE_GUEST_GIT/worktrees/ADMIN\n". */
void worktree_gitfile(const struct worktree *wt, char *out, size_t outsz);

/* Remove sandbox worktree path of project_real with its branch, as above.
 * 0 (*kept_branch set when the branch stays), -EBUSY (commits of its own:
 * err says how many), -ENOTEMPTY (uncommitted changes), or -errno. */
int worktree_remove(const char *project_real, const char *path, const char *branch, bool force,
		    bool *kept_branch, char *err, size_t errsz);

#endif
