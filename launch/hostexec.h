/* launch/hostexec.h - the project's files the host runs or trusts, watched
 * across a launch.
 *
 * The agent writes the project folder, and some of its files are run by
 * the user's own machine later, outside the sandbox: git hooks
 * (.git/hooks/, .husky/), git's configuration (aliases, filters,
 * core.hooksPath, fsmonitor), pre-commit's, npm scripts (package.json),
 * make, direnv, VS Code tasks, CI workflows.  A change there is the one
 * way for code from the sandbox to run on the host with the user's
 * rights.  The launch takes a snapshot of them before the VM starts and,
 * after it, names every one that was created, removed, changed or made
 * executable, with a unified diff of the change, under a warning.
 *
 * Reading is bounded (HOSTEXEC_MAX_FILES files, HOSTEXEC_MAX_BYTES each;
 * a larger file is compared by size and SHA-256 only) and never follows a
 * symbolic link: a link is recorded as a link, with its target.
 */
#ifndef KVMBOX_LAUNCH_HOSTEXEC_H
#define KVMBOX_LAUNCH_HOSTEXEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#define HOSTEXEC_MAX_FILES 128
#define HOSTEXEC_MAX_BYTES (256 * 1024)

struct hostexec_file {
	char rel[256];		/* path under the project */
	mode_t mode;		/* 0: absent */
	size_t size;
	unsigned char sha256[32];
	char *text;		/* the contents (or a link's target) when small, else NULL */
};

struct hostexec {
	struct hostexec_file f[HOSTEXEC_MAX_FILES];
	unsigned n;
};

/* Whether rel (under the project) is one of the watched files or inside
 * a watched folder. */
bool hostexec_watched(const char *rel);

/* The files of the list in PROJECT now, into *h (hostexec_free after). */
int hostexec_snapshot(const char *project, struct hostexec *h);
void hostexec_free(struct hostexec *h);

/* Compare the snapshot with PROJECT now and write what changed to out:
 * one line per file ("  .git/hooks/pre-commit: created, executable"), a
 * unified diff under each changed text file.  The number of files that
 * changed (0: nothing written), or -errno. */
int hostexec_report(const char *project, const struct hostexec *before, FILE *out);

/* A unified diff (3 lines of context, "--- a/REL" / "+++ b/REL") of two
 * texts to out; texts of more than 4000 lines are summed up in one line.
 * For the report and its tests. */
void hostexec_diff(const char *rel, const char *a, const char *b, FILE *out);

#endif
