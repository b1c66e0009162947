/* guest/init/mounts.h - the guest end of kvmbox's file shares: the host
 * directories served by virtio-fs or virtio-9p devices (vmm/cli/machine_fs.c)
 * and, with `--rootfs`/`--image`, the guest's root filesystem.
 *
 * THE CONTRACT with kvmbox (vmm/cli/machine_fs.c encodes, this file
 * decodes), two kernel command-line parameters:
 *
 *   kvmbox.fs=TAG:FLAGS:PATH[,TAG:FLAGS:PATH...]
 *       one entry per share, mounted in the order listed (kvmbox lists a
 *       parent before anything under it):
 *       TAG    the device's mount tag, 1..36 of [A-Za-z0-9_-]
 *       FLAGS  'v' (virtio-fs) or '9' (virtio-9p, 9P2000.L), exactly one,
 *              then any of 'r' (mount read-only), 'c' (9p only: let the
 *              guest cache, cache=loose; otherwise cache=mmap)
 *       PATH   the guest mount point, base64url without padding (the
 *              encoder and decoder of kvmbox.argv), absolute, no "." or ".."
 *              component, no NUL, at most KBX_MOUNT_PATH_MAX - 1 bytes
 *   kvmbox.root=TAG
 *       the guest's root filesystem is the virtio-fs share TAG, mounted
 *       read-only as the lower layer of an overlay whose upper layer is a
 *       tmpfs: every boot starts from the pristine tree and nothing written
 *       to / reaches the host.
 *
 * Hook for kvmbox-init (guest/init/main.c), after the kernel filesystems
 * are mounted and before the command runs:
 *
 *	if (kbx_mounts_setup(cmdline, err, sizeof(err)) < 0) { say; exit 2 }
 *
 * With kvmbox.root, kvmbox-init (still PID 1) moves /dev, /proc, /sys, /tmp
 * and /run into the overlay and makes it the root (MS_MOVE onto /, then
 * chroot, as switch_root does), so the command and everything after it
 * (console session included) see the image as /.  The shares are mounted
 * after that, at their paths inside the new root (directories created as
 * needed).
 */
#ifndef KVMBOX_GUEST_INIT_MOUNTS_H
#define KVMBOX_GUEST_INIT_MOUNTS_H

#include <stdbool.h>
#include <stddef.h>

#define KBX_FS_PARAM "kvmbox.fs"
#define KBX_ROOT_PARAM "kvmbox.root"
#define KBX_FS_FLAG_VIRTIOFS 'v'
#define KBX_FS_FLAG_9P '9'
#define KBX_FS_FLAG_RO 'r'
#define KBX_FS_FLAG_CACHE 'c'

#define KBX_MOUNT_MAX 16		/* entries in kvmbox.fs */
#define KBX_MOUNT_TAG_MAX 36		/* virtio-fs config tag size */
#define KBX_MOUNT_PATH_MAX 1024		/* decoded mount point, NUL included */
/* 9P message size the guest asks for: Linux's virtio transport in 6.1
 * allows (128 - 3) pages; the server offers up to FS_9P_MAX_MSIZE. */
#define KBX_9P_MSIZE 512000

/* One decoded share. */
struct kbx_mount {
	char tag[KBX_MOUNT_TAG_MAX + 1];
	char path[KBX_MOUNT_PATH_MAX];
	bool nine_p;		/* virtio-9p rather than virtio-fs */
	bool read_only;
	bool cache;		/* 9p: cache=loose */
};

/* Everything kvmbox asked for. */
struct kbx_mounts {
	struct kbx_mount m[KBX_MOUNT_MAX];
	unsigned n;
	char root_tag[KBX_MOUNT_TAG_MAX + 1];	/* "" when the initramfs stays / */
};

/* Decode kvmbox.fs and kvmbox.root from a kernel command line (absent:
 * nothing to mount).  0, or -EINVAL with a one-line reason in err.  Pure
 * (no system calls): unit-tested on the host. */
int kbx_mounts_parse(const char *cmdline, struct kbx_mounts *out, char *err, size_t errlen);

/* Whether a tag is well formed (1..36 of [A-Za-z0-9_-]). */
bool kbx_mount_tag_valid(const char *tag, size_t len);

/* Whether p[0..len) is a mount point kvmbox may ask for: absolute, not
 * "/", no trailing '/', every component neither empty nor "." / "..", no
 * NUL.  The host checks --share's GUESTPATH with this too. */
bool kbx_mount_path_valid(const char *p, size_t len);

/* The mount(2) data string for share m ("" for virtio-fs). */
void kbx_mount_data(const struct kbx_mount *m, char *out, size_t outlen);

/* Parse, switch to the overlay root if asked, mount every share.  0, or
 * -errno with a one-line reason in err (the init then exits 2). */
int kbx_mounts_setup(const char *cmdline, char *err, size_t errlen);

#endif
