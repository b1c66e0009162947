/* vmm/cli/share_args.c - the file-sharing flags (see share_args.h): each
 * --share / --share-9p checked and made canonical (the host directory by
 * realpath, the guest path clean and absolute, as guest/abi/mounts.h
 * wants), --fs-cache, --rootfs, --image.
 */
#include "vmm/cli/share_args.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "guest/abi/mounts.h"
#include "vmm/cli/cli.h"

/* realpath() of a directory into out (PATH_MAX). */
static int canonical_dir(const char *flag, const char *dir, char *out, char *err, size_t errsz)
{
	struct stat st;
	if (!realpath(dir, out) || stat(out, &st) < 0) {
		snprintf(err, errsz, "%s %.200s: %s", flag, dir, strerror(errno));
		return -EINVAL;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errsz, "%s %.200s: not a directory", flag, dir);
		return -EINVAL;
	}
	return 0;
}

/* Copy p into out with runs of '/' collapsed and a trailing '/' dropped. */
static int clean_path(const char *p, size_t len, char *out, size_t outsz)
{
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		if (p[i] == '/' && o > 0 && out[o - 1] == '/')
			continue;
		if (o + 1 >= outsz)
			return -ENAMETOOLONG;
		out[o++] = p[i];
	}
	if (o > 1 && out[o - 1] == '/')
		o--;
	out[o] = 0;
	return 0;
}

/* Split the trailing options ":ro", ":rw", ":hide" (or a whole "ro"...)
 * off s[0..*len), in any order. */
static void take_options(const char *s, size_t *len, struct share_spec *sp)
{
	static const char *const opts[] = { "ro", "rw", "hide" };
	for (bool again = true; again;) {
		again = false;
		for (int k = 0; k < 3; k++) {
			size_t l = *len, ol = strlen(opts[k]);
			if ((l == ol && !memcmp(s, opts[k], ol)) ||
			    (l > ol && s[l - ol - 1] == ':' && !memcmp(s + l - ol, opts[k], ol))) {
				if (k < 2)
					sp->read_only = k == 0;
				else
					sp->hide = true;
				*len = l == ol ? 0 : l - ol - 1;
				again = *len > 0;
				break;
			}
		}
	}
}

int share_parse_spec(const char *arg, bool nine_p, struct share_spec *sp, char *err,
		     size_t errsz)
{
	const char *flag = nine_p ? "--share-9p" : "--share";
	memset(sp, 0, sizeof(*sp));
	sp->nine_p = nine_p;
	const char *colon = strchr(arg, ':');
	size_t hlen = colon ? (size_t)(colon - arg) : strlen(arg);
	char host[PATH_MAX];
	if (hlen == 0 || hlen >= sizeof(host)) {
		snprintf(err, errsz, "%s wants HOSTDIR[:GUESTPATH][:ro][:hide], got '%.64s'", flag, arg);
		return -EINVAL;
	}
	memcpy(host, arg, hlen);
	host[hlen] = 0;
	if (canonical_dir(flag, host, sp->host, err, errsz) < 0)
		return -EINVAL;
	const char *g = sp->host;
	size_t glen = strlen(g);
	if (colon) {
		size_t rlen = strlen(colon + 1);
		take_options(colon + 1, &rlen, sp);
		if (rlen > 0 || !colon[1]) {
			g = colon + 1;
			glen = rlen;
		}
	}
	if (clean_path(g, glen, sp->guest, sizeof(sp->guest)) < 0) {
		snprintf(err, errsz, "%s %.64s: GUESTPATH is longer than %d bytes", flag, arg,
			 SHARE_GUEST_PATH_MAX - 1);
		return -EINVAL;
	}
	if (!kbx_mount_path_valid(sp->guest, strlen(sp->guest))) {
		snprintf(err, errsz, "%s %.64s: GUESTPATH '%.64s' must be absolute, not /, "
			 "without . or .. components", flag, arg, sp->guest);
		return -EINVAL;
	}
	return 0;
}

static int add_share(const char *arg, bool nine_p, struct share_opts *so, char *err,
		     size_t errsz)
{
	if (so->n == SHARE_MAX) {
		snprintf(err, errsz, "too many shares (at most %d)", SHARE_MAX);
		return -EINVAL;
	}
	struct share_spec *sp = &so->share[so->n];
	if (share_parse_spec(arg, nine_p, sp, err, errsz) < 0)
		return -EINVAL;
	for (unsigned i = 0; i < so->n; i++) {
		if (!strcmp(so->share[i].guest, sp->guest)) {
			snprintf(err, errsz, "two shares at the same guest path %.200s", sp->guest);
			return -EINVAL;
		}
	}
	so->n++;
	return 0;
}

static int parse_cache(const char *v, enum fs_cache *out)
{
	static const char *const names[] = { "none", "auto", "always" };
	static const enum fs_cache modes[] = { FS_CACHE_NONE, FS_CACHE_AUTO, FS_CACHE_ALWAYS };
	for (int k = 0; k < 3; k++) {
		if (!strcmp(v, names[k])) {
			*out = modes[k];
			return 0;
		}
	}
	return -EINVAL;
}

int share_parse_flag(int argc, char **argv, int *i, struct share_opts *so, char *err,
		     size_t errsz)
{
	const char *a = argv[*i], *v = NULL;
	int t;
	if ((t = cli_take_value(argc, argv, i, "--share", &v)) ||
	    (t = cli_take_value(argc, argv, i, "--share-9p", &v))) {
		if (t < 0 || !*v)
			goto missing;
		return add_share(v, !strncmp(a, "--share-9p", 10), so, err, errsz) < 0 ? -EINVAL : 1;
	}
	if ((t = cli_take_value(argc, argv, i, "--fs-cache", &v))) {
		if (t < 0)
			goto missing;
		if (parse_cache(v, &so->cache) < 0) {
			snprintf(err, errsz, "--fs-cache wants none, auto or always, got '%.32s'", v);
			return -EINVAL;
		}
		return 1;
	}
	if ((t = cli_take_value(argc, argv, i, "--rootfs", &v))) {
		if (t < 0 || !*v)
			goto missing;
		if (canonical_dir("--rootfs", v, so->rootfs, err, errsz) < 0)
			return -EINVAL;
	} else if ((t = cli_take_value(argc, argv, i, "--image", &v))) {
		if (t < 0 || !*v)
			goto missing;
		so->image = v;
	} else {
		return 0;
	}
	if (so->rootfs[0] && so->image) {
		snprintf(err, errsz, "--rootfs and --image both name the guest root: give one");
		return -EINVAL;
	}
	return 1;
missing:
	snprintf(err, errsz, "%.32s needs a value", a);
	return -EINVAL;
}

/* ---- the guest command line --------------------------------------------- */

