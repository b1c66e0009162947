/* launch/template/template.c - booted templates in the cache (see
 * template.h): where they live, whether one is there, and making one in
 * the background with a second kvmbox.
 */
#include "launch/template/template.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/sha256.h"
#include "guest/image/image.h"

#define TMP_TAG ".tmp-"

static int templates_root(char *out, size_t outsz)
{
	char cache[PATH_MAX];
	int r = image_cache_dir(cache, sizeof(cache));
	if (r < 0)
		return r;
	int n = snprintf(out, outsz, "%s/templates", cache);
	if (n < 0 || (size_t)n >= outsz)
		return -ENAMETOOLONG;
	return mkdir(out, 0700) < 0 && errno != EEXIST ? -errno : 0;
}

int template_path(const char *desc, char *dir, size_t dirsz)
{
	char key[SHA256_HEX_LEN + 1], root[PATH_MAX];
	int r = sha256_hex(desc, strlen(desc), key);
	if (r == 0)
		r = templates_root(root, sizeof(root));
	if (r < 0)
		return r;
	int k = snprintf(dir, dirsz, "%s/%s", root, key);
	return k < 0 || (size_t)k >= dirsz ? -ENAMETOOLONG : 0;
}

bool template_present(const char *dir)
{
	char state[PATH_MAX];
	struct stat st;
	return (size_t)snprintf(state, sizeof(state), "%s/state", dir) < sizeof(state) &&
	       lstat(state, &st) == 0 && S_ISREG(st.st_mode);
}

void template_touch(const char *dir)
{
	utimensat(AT_FDCWD, dir, NULL, AT_SYMLINK_NOFOLLOW);	/* best effort: order only */
}

int template_discard(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	int fd = dirfd(d), r = 0;
	for (struct dirent *e; (e = readdir(d));)
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
		    unlinkat(fd, e->d_name, 0) < 0 && !r)
			r = -errno;	/* a folder inside: not a template's */
	closedir(d);
	return rmdir(dir) < 0 && !r ? -errno : r;
}

struct aged {
	char name[NAME_MAX + 1];
	struct timespec used;
};

static int older_first(const void *a, const void *b)
{
	const struct timespec *x = &((const struct aged *)a)->used, *y = &((const struct aged *)b)->used;
	return x->tv_sec != y->tv_sec ? (x->tv_sec < y->tv_sec ? -1 : 1)
				      : (x->tv_nsec < y->tv_nsec ? -1 : x->tv_nsec > y->tv_nsec);
}

#define TMP_STALE_S 3600	/* a build folder this old was left by a builder that died */

static void prune(const char *root)
{
	struct aged t[64];
	unsigned n = 0;
	DIR *d = opendir(root);
	if (!d)
		return;
	for (struct dirent *e; (e = readdir(d)) && n < 64;) {
		struct stat st;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) || !S_ISDIR(st.st_mode) ||
		    e->d_name[0] == '.')
			continue;
		char p[PATH_MAX];
		if (strstr(e->d_name, TMP_TAG) && st.st_mtim.tv_sec + TMP_STALE_S < time(NULL) &&
		    (size_t)snprintf(p, sizeof(p), "%s/%s", root, e->d_name) < sizeof(p))
			template_discard(p);
		if (strlen(e->d_name) != SHA256_HEX_LEN)
			continue;	/* builds in progress */
		snprintf(t[n].name, sizeof(t[n].name), "%s", e->d_name);
		t[n++].used = st.st_mtim;
	}
	closedir(d);
	qsort(t, n, sizeof(t[0]), older_first);
	for (unsigned i = 0; n > TEMPLATE_KEEP && i < n - TEMPLATE_KEEP; i++) {
		char p[PATH_MAX];
		if ((size_t)snprintf(p, sizeof(p), "%s/%s", root, t[i].name) < sizeof(p))
			template_discard(p);
	}
}

void template_prune(void)
{
	char root[PATH_MAX];
	if (templates_root(root, sizeof(root)) == 0)
		prune(root);
}

/* The builder's supervisor (a child in its own session): run the build,
 * then publish or discard its folder.  Never returns. */
static void supervise(const char *dir, char **args, const char *tmp)
{
	setsid();
	setpriority(PRIO_PROCESS, 0, 10);
	char log[PATH_MAX];
	snprintf(log, sizeof(log), "%s.log", dir);
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	int err = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	pid_t pid = null < 0 || err < 0 ? -1 : fork();
	if (pid == 0) {
		dup2(null, STDIN_FILENO);
		dup2(null, STDOUT_FILENO);
		dup2(err, STDERR_FILENO);
		execv("/proc/self/exe", args);
		_exit(127);
	}
	int status = 0;
	while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	bool made = pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0 && template_present(tmp);
	if (!made || rename(tmp, dir) < 0)	/* another launch's may be there already */
		template_discard(tmp);
	if (made) {
		unlink(log);
		template_prune();
	}
	_exit(0);
}

int template_build_background(const char *dir, const char *sub, int argc, char *const argv[])
{
	char tmp[PATH_MAX];
	int n = snprintf(tmp, sizeof(tmp), "%s" TMP_TAG "%d", dir, (int)getpid());
	if (n < 0 || (size_t)n >= sizeof(tmp) || argc < 1)
		return -ENAMETOOLONG;
	char **args = calloc((size_t)argc + 4, sizeof(*args));
	if (!args)
		return -ENOMEM;
	unsigned k = 0;
	args[k++] = "kvmbox";
	args[k++] = (char *)sub;
	args[k++] = "--snapshot";
	args[k++] = tmp;
	for (int i = 1; i < argc; i++)
		args[k++] = argv[i];
	args[k] = NULL;
	/* Twice: the supervisor is nobody's child but init's, so this
	 * process neither waits for it nor leaves it a zombie. */
	pid_t first = fork();
	if (first == 0) {
		if (fork() == 0)
			supervise(dir, args, tmp);
		_exit(0);
	}
	int r = first < 0 ? -errno : 0;
	while (first > 0 && waitpid(first, NULL, 0) < 0 && errno == EINTR)
		;
	free(args);
	return r;
}
