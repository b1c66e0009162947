/* launch/worktree/worktree.c - a sandbox's own git worktree (see
 * worktree.h).
 *
 * Every git here runs on the host on the user's repository, so hooks are
 * off (core.hooksPath=/dev/null: a hook planted by an earlier agent never
 * runs for kvmbox) and so is fsmonitor (a command named in the
 * configuration); what git says when it refuses is passed on in one line.
 */
#include "launch/worktree/worktree.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "launch/git.h"
#include "launch/state.h"

#define GIT_WORKTREE_MS 120000	/* a checkout of a large project */
#define GIT_ARGS_MAX 16

/* Run git with the words after err's size (NULL-terminated), hooks and
 * fsmonitor off; its output into *out when out is not NULL.  Its exit
 * status, or -errno; on a failure, git's last line in err. */
static int git(char *err, size_t errsz, char **out, ...)
{
	char *argv[GIT_ARGS_MAX + 6] = { "git", "-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false" };
	int n = 5;
	va_list ap;
	va_start(ap, out);
	for (const char *a; n < GIT_ARGS_MAX + 5 && (a = va_arg(ap, const char *));)
		argv[n++] = (char *)a;
	va_end(ap);
	argv[n] = NULL;
	char *text;
	int st = git_spawn(argv, true, GIT_WORKTREE_MS, &text);
	if (st != 0 && err) {
		/* the last line git printed, without its "fatal: " */
		char *end = text ? text + strlen(text) : NULL;
		while (end && end > text && (end[-1] == '\n' || end[-1] == ' '))
			*--end = 0;
		char *line = text ? strrchr(text, '\n') : NULL;
		line = line ? line + 1 : text;
		if (line && !strncmp(line, "fatal: ", 7))
			line += 7;
		const char *cmd = argv[!strcmp(argv[5], "-C") && n > 7 ? 7 : 5];
		if (st < 0)
			snprintf(err, errsz, "git %s: %s", cmd, strerror(-st));
		else
			snprintf(err, errsz, "git %s: %.300s", cmd, line && *line ? line : "failed");
	}
	if (out && st == 0)
		*out = text;
	else
		free(text);
	return st;
}

bool worktree_branch_valid(const char *branch)
{
	size_t n = strlen(branch);
	if (n == 0 || n + sizeof(WORKTREE_BRANCH_PREFIX) > WORKTREE_BRANCH_MAX || strstr(branch, "..") ||
	    strstr(branch, "//") || branch[n - 1] == '/')
		return false;
	for (const char *part = branch; part; part = strchr(part, '/') ? strchr(part, '/') + 1 : NULL) {
		size_t len = strcspn(part, "/");
		if (part[0] == '.' || part[0] == '-' || (len >= 5 && !strncmp(part + len - 5, ".lock", 5)))
			return false;
	}
	for (const char *p = branch; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      strchr("._-/", *p)))
			return false;
	return true;
}

/* The admin folder the worktree's .git file names, when it is
 * gitdir/worktrees/NAME: NAME into admin.  0, or -EINVAL. */
static int read_gitfile(const char *path, const char *gitdir, char *admin, size_t adminsz)
{
	char file[PATH_MAX + 8], text[PATH_MAX + 16], want[PATH_MAX + 16];
	snprintf(file, sizeof(file), "%s/.git", path);
	int fd = open(file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n <= 0)
		return -EINVAL;
	text[n] = 0;
	text[strcspn(text, "\n")] = 0;
	int w = snprintf(want, sizeof(want), "gitdir: %s/worktrees/", gitdir);
	if (w < 0 || (size_t)w >= sizeof(want) || strncmp(text, want, (size_t)w))
		return -EINVAL;
	const char *name = text + w;
	if (!*name || strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, "..") ||
	    (size_t)snprintf(admin, adminsz, "%s", name) >= adminsz)
		return -EINVAL;
	return 0;
}

/* mkdir -p of rel under base (each missing level 0755). */
static int mkdirs(const char *base, const char *rel)
{
	char p[PATH_MAX];
	if ((size_t)snprintf(p, sizeof(p), "%s/%s", base, rel) >= sizeof(p))
		return -ENAMETOOLONG;
	for (char *s = p + strlen(base) + 1;; s++) {
		if (*s == '/' || !*s) {
			char c = *s;
			*s = 0;
			if (mkdir(p, 0755) < 0 && errno != EEXIST)
				return -errno;
			*s = c;
			if (!c)
				return 0;
		}
	}
}

/* The project's top and its git directory: 0, or -EINVAL with err. */
static int locate(const char *project_real, struct worktree *wt, char *err, size_t errsz)
{
	char *out = NULL;
	if (git(err, errsz, &out, "-C", project_real, "rev-parse", "--path-format=absolute", "--show-toplevel",
		"--git-common-dir", NULL) != 0)
		return -EINVAL;
	char *top = out, *dir = strchr(out, '\n');
	if (dir)
		*dir++ = 0;
	if (dir)
		dir[strcspn(dir, "\n")] = 0;
	char real_top[PATH_MAX], real_dir[PATH_MAX];
	int r = 0;
	if (!dir || !realpath(top, real_top) || !realpath(dir, real_dir)) {
		snprintf(err, errsz, "git rev-parse: no answer for %s", project_real);
		r = -EINVAL;
	} else if (strcmp(real_top, project_real)) {
		snprintf(err, errsz, "%s is not the top of its git repository (%s is)", project_real, real_top);
		r = -EINVAL;
	} else if (strchr(real_dir, ':')) {
		snprintf(err, errsz, "the git directory %s has ':' in its path, which a share cannot name", real_dir);
		r = -EINVAL;
	} else {
		snprintf(wt->gitdir, sizeof(wt->gitdir), "%s", real_dir);
	}
	free(out);
	return r;
}

/* Whether gitdir/rel is a directory at that very path: no component a
 * link.  The guest of a launch without --worktree writes all of .git, and
 * a link planted there (objects -> ~/.ssh) must not become a writable
 * share of whatever it names. */
static bool own_dir(const char *gitdir, const char *rel)
{
	char want[PATH_MAX], real[PATH_MAX];
	struct stat st;
	return (size_t)snprintf(want, sizeof(want), "%s/%s", gitdir, rel) < sizeof(want) &&
	       realpath(want, real) && !strcmp(real, want) && lstat(want, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The admin folder's commondir names the git directory as git writes it:
 * the guest can write that folder, and a commondir of its choosing would
 * hand the host's git a configuration of its choosing. */
static bool commondir_intact(const char *gitdir, const char *admin)
{
	char path[PATH_MAX + 300], text[16];
	snprintf(path, sizeof(path), "%s/worktrees/%s/commondir", gitdir, admin);
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, text, sizeof(text));
	close(fd);
	return n == 6 && !memcmp(text, "../..\n", 6);
}

static const char *const writable[] = { "objects", "worktrees/%s", "refs/heads/kvmbox", "logs/refs/heads/kvmbox" };

/* The guest's shares; -EPERM (err says which) when a writable part is not
 * the git directory's own folder. */
static int shares(struct worktree *wt, char *err, size_t errsz)
{
	snprintf(wt->shares[0], sizeof(wt->shares[0]), "%s:" WORKTREE_GUEST_GIT ":ro", wt->gitdir);
	for (unsigned i = 0; i < sizeof(writable) / sizeof(writable[0]); i++) {
		char rel[300];
		snprintf(rel, sizeof(rel), writable[i], wt->admin);
		if (!own_dir(wt->gitdir, rel)) {
			snprintf(err, errsz, "%s/%s is not a folder of the git directory itself (a link?): "
				 "not shared", wt->gitdir, rel);
			return -EPERM;
		}
		snprintf(wt->shares[i + 1], sizeof(wt->shares[i + 1]), "%s/%s:" WORKTREE_GUEST_GIT "/%s", wt->gitdir,
			 rel, rel);
	}
	return 0;
}

int worktree_prepare(const char *project_real, const char *name, const char *branch,
		     struct worktree *wt, char *err, size_t errsz)
{
	memset(wt, 0, sizeof(*wt));
	const char *b = branch ? branch : name;
	if (!worktree_branch_valid(b)) {
		snprintf(err, errsz, "--worktree: '%.64s' is not a branch name kvmbox makes (letters, digits, . _ - /)",
			 b);
		return -EINVAL;
	}
	snprintf(wt->branch, sizeof(wt->branch), WORKTREE_BRANCH_PREFIX "%s", b);
	int r = locate(project_real, wt, err, errsz);
	if (r < 0)
		return r;
	char base[PATH_MAX];
	if ((r = state_kind_dir(project_real, "worktrees", base, sizeof(base))) < 0) {
		snprintf(err, errsz, "the worktrees' folder: %s", strerror(-r));
		return r;
	}
	if ((size_t)snprintf(wt->path, sizeof(wt->path), "%s/%s", base, name) >= sizeof(wt->path) ||
	    strchr(wt->path, ':')) {
		snprintf(err, errsz, "the worktree's path %s cannot be shared", wt->path);
		return -ENAMETOOLONG;
	}
	struct stat st;
	if (lstat(wt->path, &st) == 0) {	/* this sandbox name's worktree, again */
		char *head = NULL;
		if (read_gitfile(wt->path, wt->gitdir, wt->admin, sizeof(wt->admin)) < 0 ||
		    !commondir_intact(wt->gitdir, wt->admin) ||
		    git(err, errsz, &head, "-C", wt->path, "symbolic-ref", "--short", "HEAD", NULL) != 0) {
			snprintf(err, errsz, "%s is in the way and is not this project's worktree", wt->path);
			return -EEXIST;
		}
		head[strcspn(head, "\n")] = 0;
		r = strcmp(head, wt->branch) ? -EEXIST : 0;
		if (r < 0)
			snprintf(err, errsz, "sandbox %s's worktree is on %s, not %s (kvmbox rm %s first)", name, head,
				 wt->branch, name);
		free(head);
		if (r < 0)
			return r;
	} else {
		char ref[WORKTREE_BRANCH_MAX + 16];
		snprintf(ref, sizeof(ref), "refs/heads/%s", wt->branch);
		bool exists = git(NULL, 0, NULL, "-C", project_real, "show-ref", "--verify", "--quiet", ref, NULL) == 0;
		r = exists ? git(err, errsz, NULL, "-C", project_real, "worktree", "add", "--quiet", wt->path,
				 wt->branch, NULL)
			   : git(err, errsz, NULL, "-C", project_real, "worktree", "add", "--quiet", "-b",
				 wt->branch, wt->path, "HEAD", NULL);
		if (r != 0)
			return -EINVAL;
		wt->made = true;
		if (read_gitfile(wt->path, wt->gitdir, wt->admin, sizeof(wt->admin)) < 0) {
			snprintf(err, errsz, "git worktree add left %s without a .git file naming %s", wt->path,
				 wt->gitdir);
			return -EINVAL;
		}
	}
	if ((r = mkdirs(wt->gitdir, "refs/heads/kvmbox")) < 0 || (r = mkdirs(wt->gitdir, "logs/refs/heads/kvmbox")) < 0) {
		snprintf(err, errsz, "%s: %s", wt->gitdir, strerror(-r));
		return r;
	}
	return shares(wt, err, errsz);
}

void worktree_gitfile(const struct worktree *wt, char *out, size_t outsz)
{
	snprintf(out, outsz, "gitdir: " WORKTREE_GUEST_GIT "/worktrees/%s\n", wt->admin);
}

int worktree_remove(const char *project_real, const char *path, const char *branch, bool force,
		    bool *kept_branch, char *err, size_t errsz)
{
	*kept_branch = false;
	char ref[WORKTREE_BRANCH_MAX + 16], exclude[WORKTREE_BRANCH_MAX + 32];
	snprintf(ref, sizeof(ref), "refs/heads/%s", branch);
	snprintf(exclude, sizeof(exclude), "--exclude=%s", branch);	/* --branches' names lack refs/heads/ */
	bool exists = git(NULL, 0, NULL, "-C", project_real, "show-ref", "--verify", "--quiet", ref, NULL) == 0;
	long own = 0;
	if (exists) {
		char *out = NULL;
		if (git(err, errsz, &out, "-C", project_real, "rev-list", "--count", ref, "--not", exclude,
			"--branches", "--remotes", NULL) != 0)
			return -EIO;
		own = strtol(out, NULL, 10);
		free(out);
	}
	if (own > 0 && !force) {
		snprintf(err, errsz, "its branch %s has %ld commit%s no other branch has: merge %s, or --force "
			 "removes the worktree and keeps the branch", branch, own, own == 1 ? "" : "s",
			 own == 1 ? "it" : "them");
		return -EBUSY;
	}
	struct stat st;
	if (lstat(path, &st) == 0) {
		/* git worktree remove runs git status in it: only with the .git
		 * file and the admin folder as git made them (the guest wrote
		 * both), forced or not */
		struct worktree wt = { 0 };
		if (locate(project_real, &wt, err, errsz) < 0)
			return -EIO;
		if (read_gitfile(path, wt.gitdir, wt.admin, sizeof(wt.admin)) < 0 ||
		    !commondir_intact(wt.gitdir, wt.admin)) {
			snprintf(err, errsz, "%s/.git or its git folder was changed from inside the sandbox: "
				 "kvmbox runs no git in it (look, then remove it and `git worktree prune`)", path);
			return -EPERM;
		}
		int r = force ? git(err, errsz, NULL, "-C", project_real, "worktree", "remove", "--force", path, NULL)
			      : git(err, errsz, NULL, "-C", project_real, "worktree", "remove", path, NULL);
		if (r != 0)
			return strstr(err, "modified or untracked") ? -ENOTEMPTY : -EIO;
	} else {
		git(NULL, 0, NULL, "-C", project_real, "worktree", "prune", NULL);
	}
	if (exists && own == 0)
		git(NULL, 0, NULL, "-C", project_real, "branch", "-D", branch, NULL);
	*kept_branch = exists && own > 0;
	return 0;
}
