/* vmm/cli/machine_fs.h - file shares for the machine: each share of
 * `--share`, `--share-9p` (parsed by vmm/cli/share_args.h), and the root of
 * `--rootfs` / `--image`, served on a device of its own.
 *
 * Each share is one fs_server (fs9p/fs.h) on its host directory behind one
 * virtio-fs (or virtio-9p) device; the guest init learns the tag, kind,
 * mode and mount point of each from the kernel command line (kvmbox.fs and
 * kvmbox.root: the contract is in guest/abi/mounts.h) and mounts them
 * before the command runs.  The root image is one more virtio-fs share,
 * read-only, that the guest puts under a tmpfs overlay.
 */
#ifndef KVMBOX_VMM_CLI_MACHINE_FS_H
#define KVMBOX_VMM_CLI_MACHINE_FS_H

#include <stddef.h>

#include "vmm/cli/share_args.h"

struct machine;

/* Serve every share (and the root image) on its own device and put
 * kvmbox.fs / kvmbox.root on the guest command line.  Call after
 * machine_create, before machine_load.  0, or an exit status after one
 * line on stderr: 2 for what the user can fix (an image that does not
 * resolve, a directory the server cannot open, paths too long for the
 * kernel command line), 1 otherwise. */
int machine_add_shares(struct machine *m, const struct share_opts *so);

/* Encode the kvmbox.fs value for the shares into out (entries ordered so a
 * parent mount point comes before anything under it; tags "kvmbox0"...
 * in the order given).  Pure, for the unit tests.  Length, or -E2BIG. */
int share_cmdline_value(const struct share_opts *so, char *out, size_t outsz);

/* The tag of share i ("kvmbox<i>", into SHARE_TAG_SIZE bytes) and of the
 * root image. */
#define SHARE_TAG_SIZE 24
void share_tag(unsigned i, char *out, size_t outsz);
#define SHARE_ROOT_TAG "kvmboxroot"

#endif
