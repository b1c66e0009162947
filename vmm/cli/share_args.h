/* vmm/cli/share_args.h - the file-sharing flags of `kvmbox run` and
 * `kvmbox shell` (and the agents'): `--share`, `--share-9p`, `--fs-cache`,
 * `--rootfs` and `--image`, parsed into struct share_opts, which
 * vmm/cli/machine_fs.h serves (as net_args.h is to the network flags).
 *
 * Each share is one fs_server (fs9p/fs.h) on its host directory behind one
 * virtio-fs (or virtio-9p) device; the guest init learns the tag, kind,
 * mode and mount point of each from the kernel command line (kvmbox.fs and
 * kvmbox.root: the contract is in guest/abi/mounts.h) and mounts them
 * before the command runs.  The root image is one more virtio-fs share,
 * read-only, that the guest puts under a tmpfs overlay.
 *
 *   --share HOSTDIR[:GUESTPATH][:ro][:hide]  virtio-fs; GUESTPATH defaults to
 *                                       the canonical HOSTDIR (the project
 *                                       folder appears at the same path);
 *                                       :hide keeps sensitive files out of the
 *                                       guest's sight (launch/hidden.h)
 *   --share-9p HOSTDIR[:GUESTPATH][:ro] the same over virtio-9p (9P2000.L)
 *   --fs-cache none|auto|always         the shares' cache mode (default auto)
 *   --rootfs DIR / --image NAME|REF     the guest root (read-only + overlay)
 *
 * HOSTDIR is the text up to the first ':' (a host directory whose name has
 * ':' cannot be shared); a final ":ro" or ":rw" sets the mode, ":hide"
 * (before or after it) hides launch/hidden.h's names.
 */
#ifndef KVMBOX_VMM_CLI_SHARE_ARGS_H
#define KVMBOX_VMM_CLI_SHARE_ARGS_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include "fs9p/fs.h"

#define SHARE_MAX 11			/* --share and --share-9p together (with the root image, the
				 * network, console and rng: 15 of the 16 virtio-mmio slots) */
#define SHARE_GUEST_PATH_MAX 1024	/* the guest init's KBX_MOUNT_PATH_MAX */

/* One --share / --share-9p. */
struct share_spec {
	char host[PATH_MAX];		/* canonical host directory (realpath) */
	char guest[SHARE_GUEST_PATH_MAX];	/* absolute mount point in the guest */
	bool nine_p;			/* served by virtio-9p, not virtio-fs */
	bool read_only;
	bool hide;			/* :hide: hidden_default out of sight */
};

/* All file-sharing options of one launch (part of struct run_opts). */
struct share_opts {
	struct share_spec share[SHARE_MAX];
	unsigned n;
	enum fs_cache cache;		/* --fs-cache, FS_CACHE_AUTO by default */
	char rootfs[PATH_MAX];		/* --rootfs (canonical), or "" */
	const char *image;		/* --image NAME|REF, resolved at launch */
	char image_dir[PATH_MAX];	/* where it resolved (machine_parse_inputs), or "" */
};

/* If argv[*i] is one of the flags above, consume it (and its value):
 * 1 when taken, 0 when it is not ours, -EINVAL with a one-line reason in err
 * (missing value, bad syntax, missing or non-directory HOSTDIR or --rootfs,
 * relative or unclean GUESTPATH, a GUESTPATH given twice, too many shares,
 * --rootfs with --image). */
int share_parse_flag(int argc, char **argv, int *i, struct share_opts *so, char *err,
		     size_t errsz);

/* Parse one HOSTDIR[:GUESTPATH][:ro] into *sp.  0 or -EINVAL (err set). */
int share_parse_spec(const char *arg, bool nine_p, struct share_spec *sp, char *err,
		     size_t errsz);

#endif
