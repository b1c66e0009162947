/* launch/guard.c - refuse to share a project folder that exposes the
 * user's credentials (see guard.h).
 *
 * Two relations are checked, each by walking up one path, stat() of every
 * ancestor, and comparing (st_dev, st_ino):
 *   - the project is HOME, or an ancestor of it;
 *   - a credential store that exists is inside the project (the project is
 *     one of the store's ancestors), or the project is inside the store.
 * Walking the real paths' prefixes finds each ancestor: both paths are
 * the host's, resolved by realpath() first, so a link anywhere on the way
 * is already followed.
 */
#include "guard.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char *const guard_sensitive[] = {
	".claude/.credentials.json", ".codex/auth.json",
	".local/share/opencode/auth.json", ".ssh", ".gnupg", ".aws", ".azure",
	".config/gcloud", ".kube", ".docker/config.json", ".netrc",
	".git-credentials", ".config/gh", ".npmrc", ".pypirc",
	".cargo/credentials.toml", ".password-store", NULL,
};

static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/* Whether the file `target` is PATH or one of PATH's ancestors (PATH an
 * absolute path; each prefix up to a '/' is stat()ed). */
static bool is_ancestor_or_self(const char *path, const struct stat *target)
{
	char buf[PATH_MAX];
	size_t n = strlen(path);
	if (n == 0 || n >= sizeof(buf))
		return false;
	memcpy(buf, path, n + 1);
	for (;;) {
		struct stat st;
		if (stat(buf[0] ? buf : "/", &st) == 0 && same_file(&st, target))
			return true;
		char *slash = strrchr(buf, '/');
		if (!slash || buf[0] == '\0')
			return false;
		*slash = '\0';	/* "/a/b" -> "/a" -> "" (the root) */
	}
}

/* guard_project for one home folder, PROJECT already resolved. */
static int guard_one_home(const char *project, const struct stat *proj, const char *home, bool force,
			  char *why, size_t whysz)
{
	char home_real[PATH_MAX];
	if (!home || !*home || !realpath(home, home_real))
		return 0;	/* no such home folder: nothing of it to expose */
	bool above = is_ancestor_or_self(home_real, proj);
	if (above && !force) {
		snprintf(why, whysz, "%s is %s, which holds your credentials (~/.ssh, "
			 "the agents' logins, ...): run it in a project folder (--force shares it, "
			 "the credential stores hidden)", project,
			 strcmp(project, home_real) == 0 ? "your home folder" : "above your home folder");
		return -EPERM;
	}
	for (const char *const *s = guard_sensitive; *s; s++) {
		char path[PATH_MAX], real[PATH_MAX];
		struct stat st;
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", home_real, *s) >= sizeof(path) ||
		    !realpath(path, real) || stat(real, &st) < 0)
			continue;
		if (!above && is_ancestor_or_self(real, proj)) {	/* home itself holds them all */
			snprintf(why, whysz, "%s holds ~/%s, your credentials: run it in a "
				 "project folder", project, *s);
			return -EPERM;
		}
		if (is_ancestor_or_self(project, &st)) {
			snprintf(why, whysz, "%s is inside ~/%s, your credentials: run it in "
				 "a project folder", project, *s);
			return -EPERM;
		}
	}
	return 0;
}

int guard_project(const char *project_path, const char *const *homes, bool force, char *why, size_t whysz)
{
	char project[PATH_MAX];
	struct stat proj;
	if (!realpath(project_path, project) || stat(project, &proj) < 0)
		return -errno;
	for (; homes && *homes; homes++) {
		int r = guard_one_home(project, &proj, *homes, force, why, whysz);
		if (r < 0)
			return r;
	}
	return 0;
}
