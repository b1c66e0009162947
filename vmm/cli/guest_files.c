/* vmm/cli/guest_files.c - the default guest kernel and initrd for `kvmbox
 * run` and `kvmbox shell` (search order in guest_files.h).
 *
 * It works on argv before run_parse_args() sees it, adding --kernel and
 * --initrd where the user gave none, so the parser (and its unit tests)
 * keep one meaning: the options say where the files are.
 */
#include "vmm/cli/guest_files.h"

#include <errno.h>
#include <glob.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Is argv[i] the flag --name or --name=VALUE? */
static bool is_flag(const char *a, const char *name)
{
	size_t n = strlen(name);
	return !strncmp(a, name, n) && (a[n] == 0 || a[n] == '=');
}

static bool readable_file(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, R_OK) == 0;
}

/* The directory of the running kvmbox binary, into dir. */
static int exe_dir(char *dir, size_t size)
{
	ssize_t n = readlink("/proc/self/exe", dir, size - 1);
	if (n <= 0)
		return -errno;
	dir[n] = 0;
	char *slash = strrchr(dir, '/');
	if (!slash)
		return -ENOENT;
	*slash = 0;
	return 0;
}

/* $KVMBOX_CACHE, else ~/.cache/kvmbox (as firmware/kernel/build.sh). */
static int cache_dir(char *dir, size_t size)
{
	const char *c = getenv("KVMBOX_CACHE"), *home = getenv("HOME");
	int n;
	if (c && *c)
		n = snprintf(dir, size, "%s", c);
	else if (home && *home)
		n = snprintf(dir, size, "%s/.cache/kvmbox", home);
	else
		return -ENOENT;
	return n > 0 && (size_t)n < size ? 0 : -ENAMETOOLONG;
}

/* The newest readable <cache>/kernel/<key>/vmlinux, into out (glob returns
 * paths that start with the pattern's prefix, so skip is in range). */
static bool newest_cached_kernel(const char *cache, char *out, size_t size)
{
	char pattern[PATH_MAX];
	if ((size_t)snprintf(pattern, sizeof(pattern), "%s/kernel/*/vmlinux", cache) >= sizeof(pattern))
		return false;
	glob_t g;
	if (glob(pattern, 0, NULL, &g) != 0)
		return false;
	struct timespec best = { 0, 0 };
	bool found = false;
	size_t skip = strlen(cache) + strlen("/kernel/");
	for (size_t i = 0; i < g.gl_pathc; i++) {
		struct stat st;
		/* src-<version>.obj/vmlinux is build.sh's object tree, not a result */
		if (!strncmp(g.gl_pathv[i] + skip, "src-", 4) || !readable_file(g.gl_pathv[i]) || stat(g.gl_pathv[i], &st) < 0 ||
		    strlen(g.gl_pathv[i]) >= size)
			continue;
		if (!found || st.st_mtim.tv_sec > best.tv_sec ||
		    (st.st_mtim.tv_sec == best.tv_sec && st.st_mtim.tv_nsec > best.tv_nsec)) {
			best = st.st_mtim;
			strcpy(out, g.gl_pathv[i]);
			found = true;
		}
	}
	globfree(&g);
	return found;
}

/* Steps 3 and 4 of the kernel search: true when gf->kernel was set. */
static bool default_kernel(struct guest_files *gf, const char *bindir, const char *cache)
{
	if (*bindir && (size_t)snprintf(gf->kernel, sizeof(gf->kernel), "%s/vmlinux", bindir) <
			       sizeof(gf->kernel) && readable_file(gf->kernel))
		return true;
	gf->kernel[0] = 0;
	return *cache && newest_cached_kernel(cache, gf->kernel, sizeof(gf->kernel));
}

int guest_files_resolve(struct guest_files *gf, int argc, char **argv, char *err, size_t errsz)
{
	bool has_k = false, has_i = false, help = false;
	for (int a = 1; a < argc && strcmp(argv[a], "--"); a++) {
		has_k |= is_flag(argv[a], "--kernel");
		has_i |= is_flag(argv[a], "--initrd");
		help |= !strcmp(argv[a], "-h") || !strcmp(argv[a], "--help");
		bool valued = is_flag(argv[a], "--kernel") || is_flag(argv[a], "--initrd") ||
			      is_flag(argv[a], "--cmdline");
		if (valued && !strchr(argv[a], '='))
			a++;	/* its value is not a flag */
	}
	gf->kernel[0] = gf->initrd[0] = gf->missing[0] = 0;
	gf->argv = calloc((size_t)argc + 5, sizeof(*gf->argv));
	if (!gf->argv) {
		snprintf(err, errsz, "out of memory");
		return -ENOMEM;
	}
	const char *k = NULL, *i = NULL, *ek = getenv("KVMBOX_KERNEL"), *ei = getenv("KVMBOX_INITRD");
	char bindir[PATH_MAX] = "", cache[PATH_MAX] = "";
	exe_dir(bindir, sizeof(bindir));
	cache_dir(cache, sizeof(cache));
	bool defaulted = false;
	if (!has_k && ek && *ek) {
		k = ek;
	} else if (!has_k && !help) {
		if (default_kernel(gf, bindir, cache)) {
			k = gf->kernel;
			defaulted = true;
		} else {
			snprintf(gf->missing, sizeof(gf->missing),
				 "no guest kernel: none given (--kernel, $KVMBOX_KERNEL), "
				 "none at %s/vmlinux or %s/kernel/*/vmlinux; build one with "
				 "`make kernel initrd` in the kvmbox source tree", bindir,
				 *cache ? cache : "~/.cache/kvmbox");
		}
	}
	if (!has_i && ei && *ei) {
		i = ei;
	} else if (!has_i && defaulted) {
		if ((size_t)snprintf(gf->initrd, sizeof(gf->initrd), "%s/initrd.cpio", bindir) >=
			    sizeof(gf->initrd) || !readable_file(gf->initrd))
			snprintf(gf->missing, sizeof(gf->missing),
				 "no initrd for the default kernel %.200s: none given "
				 "(--initrd, $KVMBOX_INITRD), none at %s/initrd.cpio; build it with "
				 "`make kernel initrd` in the kvmbox source tree", gf->kernel, bindir);
		else
			i = gf->initrd;
	}
	int n = 0;
	gf->argv[n++] = argv[0];
	if (k) {
		gf->argv[n++] = (char *)"--kernel";
		gf->argv[n++] = (char *)k;
	}
	if (i) {
		gf->argv[n++] = (char *)"--initrd";
		gf->argv[n++] = (char *)i;
	}
	for (int a = 1; a < argc; a++)
		gf->argv[n++] = argv[a];
	gf->argc = n;
	return 0;
}

void guest_files_free(struct guest_files *gf)
{
	free(gf->argv);
	gf->argv = NULL;
}
