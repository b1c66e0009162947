/* guest/init/mounts.h - the guest end of kvmbox's file shares: the host
 * directories served by virtio-fs or virtio-9p devices (vmm/cli/machine_fs.c)
 * and, with `--rootfs`/`--image`, the guest's root filesystem.
 *
 * THE CONTRACT with kvmbox (vmm/cli/machine_fs.c encodes, this file
 * decodes): kvmbox.fs and kvmbox.root, in guest/abi/mounts.h.
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

#include "guest/abi/mounts.h"

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

/* The mount(2) data string for share m ("" for virtio-fs). */
void kbx_mount_data(const struct kbx_mount *m, char *out, size_t outlen);

/* Parse, switch to the overlay root if asked, mount every share.  0, or
 * -errno with a one-line reason in err (the init then exits 2). */
int kbx_mounts_setup(const char *cmdline, char *err, size_t errlen);

#endif
