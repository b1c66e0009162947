/* guest/abi/mounts.h - the file shares on the kernel command line, from
 * the VMM (vmm/cli/machine_fs.c encodes) to kvmbox-init
 * (guest/init/mounts.c decodes).  Header-only.
 *
 * Two kernel command-line parameters:
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
 */
#ifndef KVMBOX_GUEST_ABI_MOUNTS_H
#define KVMBOX_GUEST_ABI_MOUNTS_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#define KBX_FS_PARAM "kvmbox.fs"
#define KBX_ROOT_PARAM "kvmbox.root"
#define KBX_FS_FLAG_VIRTIOFS 'v'
#define KBX_FS_FLAG_9P '9'
#define KBX_FS_FLAG_RO 'r'
#define KBX_FS_FLAG_CACHE 'c'

#define KBX_MOUNT_MAX 16		/* entries in kvmbox.fs */
#define KBX_MOUNT_TAG_MAX 36		/* virtio-fs config tag size */
#define KBX_MOUNT_PATH_MAX 1024		/* decoded mount point, NUL included */

/* Whether a tag is well formed (1..36 of [A-Za-z0-9_-]). */
static inline bool kbx_mount_tag_valid(const char *tag, size_t len)
{
	if (len == 0 || len > KBX_MOUNT_TAG_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = tag[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return false;
	}
	return true;
}

/* Whether p[0..len) is a mount point kvmbox may ask for: absolute, not
 * "/", no trailing '/', every component neither empty nor "." / "..", no
 * NUL.  The host checks --share's GUESTPATH with this too. */
static inline bool kbx_mount_path_valid(const char *p, size_t len)
{
	if (len < 2 || p[0] != '/' || p[len - 1] == '/' || memchr(p, 0, len))
		return false;
	for (size_t i = 1; i <= len; i++) {
		size_t start = i;
		while (i < len && p[i] != '/')
			i++;
		size_t clen = i - start;
		if (clen == 0 || (clen == 1 && p[start] == '.') ||
		    (clen == 2 && p[start] == '.' && p[start + 1] == '.'))
			return false;
	}
	return true;
}

#endif
