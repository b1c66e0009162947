/* guest/init/mounts.c - kvmbox-init's file shares and overlay root: decode
 * kvmbox.fs / kvmbox.root (format in mounts.h) and mount them.
 *
 * The command line comes from the VMM, which the guest trusts, but a
 * hand-written --cmdline or a bug must still end in a one-line error and
 * status 2, never a crash or a mount somewhere unexpected: every field is
 * checked before use (tag alphabet and length, known flags, a mount point
 * that is absolute and has no "." / ".." / empty component).
 */
#include "guest/init/mounts.h"
#include "guest/abi/base64url.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "guest/init/kinit.h"

/* Where the overlay root is assembled, in the initramfs. */
#define STAGE "/.kvmbox"
#define STAGE_LOWER STAGE "/lower"
#define STAGE_RW STAGE "/rw"
#define STAGE_ROOT STAGE "/root"

static int parse_flags(const char *f, size_t len, struct kbx_mount *m)
{
	if (len == 0 || (f[0] != KBX_FS_FLAG_VIRTIOFS && f[0] != KBX_FS_FLAG_9P))
		return -EINVAL;
	m->nine_p = f[0] == KBX_FS_FLAG_9P;
	for (size_t i = 1; i < len; i++) {
		if (f[i] == KBX_FS_FLAG_RO)
			m->read_only = true;
		else if (f[i] == KBX_FS_FLAG_CACHE && m->nine_p)
			m->cache = true;
		else
			return -EINVAL;
	}
	return 0;
}

/* One TAG:FLAGS:PATH entry of e[0..len). */
static int parse_entry(const char *e, size_t len, struct kbx_mount *m, char *err, size_t errlen)
{
	const char *c1 = memchr(e, ':', len);
	const char *c2 = c1 ? memchr(c1 + 1, ':', len - (size_t)(c1 + 1 - e)) : NULL;
	if (!c2) {
		kinit_set_err(err, errlen, KBX_FS_PARAM ": entry '%.*s' is not TAG:FLAGS:PATH",
			(int)(len > 64 ? 64 : len), e);
		return -EINVAL;
	}
	size_t tlen = (size_t)(c1 - e), flen = (size_t)(c2 - c1 - 1);
	const char *p64 = c2 + 1;
	size_t plen = len - (size_t)(p64 - e);
	if (!kbx_mount_tag_valid(e, tlen)) {
		kinit_set_err(err, errlen, KBX_FS_PARAM ": bad tag '%.*s'", (int)(tlen > 64 ? 64 : tlen), e);
		return -EINVAL;
	}
	memcpy(m->tag, e, tlen);
	m->tag[tlen] = 0;
	if (parse_flags(c1 + 1, flen, m) < 0) {
		kinit_set_err(err, errlen, KBX_FS_PARAM ": bad flags '%.*s' for tag %s",
			(int)(flen > 16 ? 16 : flen), c1 + 1, m->tag);
		return -EINVAL;
	}
	ssize_t n = kbx_b64url_decode(p64, plen, (uint8_t *)m->path, sizeof(m->path) - 1);
	if (n < 0 || !kbx_mount_path_valid(m->path, (size_t)n)) {
		kinit_set_err(err, errlen, KBX_FS_PARAM ": tag %s: the mount point is %s", m->tag,
			n == -ENOSPC ? "too long" : n < 0 ? "not valid base64url" :
			"not a clean absolute path");
		return -EINVAL;
	}
	m->path[n] = 0;
	return 0;
}

static int parse_fs(const char *v, size_t vlen, struct kbx_mounts *out, char *err,
		    size_t errlen)
{
	if (vlen == 0) {
		kinit_set_err(err, errlen, KBX_FS_PARAM " is empty");
		return -EINVAL;
	}
	size_t i = 0;
	while (i < vlen) {
		const char *comma = memchr(v + i, ',', vlen - i);
		size_t elen = comma ? (size_t)(comma - (v + i)) : vlen - i;
		if (out->n == KBX_MOUNT_MAX) {
			kinit_set_err(err, errlen, KBX_FS_PARAM ": more than %d shares", KBX_MOUNT_MAX);
			return -EINVAL;
		}
		int rc = parse_entry(v + i, elen, &out->m[out->n], err, errlen);
		if (rc < 0)
			return rc;
		out->n++;
		i += elen + 1;
		if (comma && i == vlen) {
			kinit_set_err(err, errlen, KBX_FS_PARAM ": empty entry at the end");
			return -EINVAL;
		}
	}
	return 0;
}

int kbx_mounts_parse(const char *cmdline, struct kbx_mounts *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	size_t vlen = 0;
	const char *v = kinit_cmdline_param(cmdline, KBX_FS_PARAM, &vlen);
	if (v) {
		int rc = parse_fs(v, vlen, out, err, errlen);
		if (rc < 0)
			return rc;
	}
	v = kinit_cmdline_param(cmdline, KBX_ROOT_PARAM, &vlen);
	if (v) {
		if (!kbx_mount_tag_valid(v, vlen)) {
			kinit_set_err(err, errlen, KBX_ROOT_PARAM ": bad tag '%.*s'",
				(int)(vlen > 64 ? 64 : vlen), v);
			return -EINVAL;
		}
		memcpy(out->root_tag, v, vlen);
		out->root_tag[vlen] = 0;
	}
	return 0;
}

void kbx_mount_data(const struct kbx_mount *m, char *out, size_t outlen)
{
	if (!m->nine_p)
		snprintf(out, outlen, "%s", "");
	else
		snprintf(out, outlen, "trans=virtio,version=9p2000.L,msize=%d,cache=%s",
			 KBX_9P_MSIZE, m->cache ? "loose" : "mmap");
}

/* mkdir -p: every missing component of the absolute path p. */
static int mkdir_p(const char *p, mode_t mode)
{
	char buf[KBX_MOUNT_PATH_MAX + sizeof(STAGE_ROOT)];
	size_t len = strlen(p);
	if (len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, p, len + 1);
	for (size_t i = 1; i <= len; i++) {
		if (buf[i] != '/' && buf[i] != 0)
			continue;
		char saved = buf[i];
		buf[i] = 0;
		if (mkdir(buf, mode) < 0 && errno != EEXIST)
			return -errno;
		buf[i] = saved;
	}
	struct stat st;
	if (stat(p, &st) < 0)
		return -errno;
	return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

/* Linux's FUSE client reads ahead no further than the mount's
 * read_ahead_kb (128 KiB by default; it takes the smaller of that and the
 * server's max_readahead), so a large sequential read of a virtio-fs share
 * went to the server in 128 KiB requests, each a round trip.  kvmbox's
 * server takes 1 MiB a request (fs9p/fs.h FS_FUSE_MAX_WRITE): let the
 * window grow to that.  Best effort: a kernel without the file keeps its
 * default. */
#define SHARE_READAHEAD_KB "1024"

static void widen_readahead(const char *mountpoint)
{
	struct stat st;
	if (stat(mountpoint, &st) < 0)
		return;
	char p[64];
	snprintf(p, sizeof(p), "/sys/class/bdi/%u:%u/read_ahead_kb", major(st.st_dev),
		 minor(st.st_dev));
	int fd = open(p, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	if (write(fd, SHARE_READAHEAD_KB, strlen(SHARE_READAHEAD_KB)) < 0) {
		/* keeps the default */
	}
	close(fd);
}

static int mount_share(const struct kbx_mount *m, char *err, size_t errlen)
{
	const char *type = m->nine_p ? "9p" : "virtiofs";
	int rc = mkdir_p(m->path, 0755);
	if (rc < 0) {
		kinit_set_err(err, errlen, "share %s: mkdir -p %s: %s", m->tag, m->path, strerror(-rc));
		return rc;
	}
	char data[128];
	kbx_mount_data(m, data, sizeof(data));
	unsigned long flags = MS_NOSUID | MS_NODEV | (m->read_only ? MS_RDONLY : 0);
	if (mount(m->tag, m->path, type, flags, data[0] ? data : NULL) < 0) {
		rc = -errno;
		kinit_set_err(err, errlen, "mount %s %s on %s: %s", type, m->tag, m->path,
			strerror(-rc));
		return rc;
	}
	if (!m->nine_p)
		widen_readahead(m->path);
	return 0;
}

/* Set err for a failed step of building the root; returns rc. */
static int root_fail(int rc, const char *what, char *err, size_t errlen)
{
	kinit_set_err(err, errlen, "overlay root: %s: %s", what, strerror(-rc));
	return rc;
}

static int sys_rc(int r) { return r < 0 ? -errno : 0; }

/* Move the kernel filesystems kvmbox-init mounted into the new root. */
static int move_kernel_filesystems(char *err, size_t errlen)
{
	static const char *const dirs[] = { "/dev", "/proc", "/sys", "/tmp", "/run" };
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		char dst[64];
		snprintf(dst, sizeof(dst), STAGE_ROOT "%s", dirs[i]);
		int rc = mkdir_p(dst, 0755);
		if (rc < 0 || (rc = sys_rc(mount(dirs[i], dst, NULL, MS_MOVE, NULL))) < 0)
			return root_fail(rc, dirs[i], err, errlen);
	}
	return 0;
}

/* The image, read-only, under a tmpfs overlay, made the root with MS_MOVE
 * + chroot (switch_root's way: the initramfs cannot be pivot_root'ed).
 * PID 1 keeps running from memory. */
static int switch_to_overlay_root(const char *tag, char *err, size_t errlen)
{
	int rc;
	if ((rc = mkdir_p(STAGE_LOWER, 0700)) < 0 || (rc = mkdir_p(STAGE_RW, 0700)) < 0 ||
	    (rc = mkdir_p(STAGE_ROOT, 0755)) < 0)
		return root_fail(rc, "mkdir " STAGE, err, errlen);
	if ((rc = sys_rc(mount(tag, STAGE_LOWER, "virtiofs", MS_RDONLY, NULL))) < 0) {
		kinit_set_err(err, errlen, "mount virtiofs %s (the root image): %s", tag, strerror(-rc));
		return rc;
	}
	widen_readahead(STAGE_LOWER);
	if ((rc = sys_rc(mount("tmpfs", STAGE_RW, "tmpfs", 0, "mode=0755"))) < 0 ||
	    (rc = sys_rc(mkdir(STAGE_RW "/upper", 0755))) < 0 ||
	    (rc = sys_rc(mkdir(STAGE_RW "/work", 0755))) < 0)
		return root_fail(rc, "tmpfs for the upper layer", err, errlen);
	if ((rc = sys_rc(mount("overlay", STAGE_ROOT, "overlay", 0,
			       "lowerdir=" STAGE_LOWER ",upperdir=" STAGE_RW "/upper,workdir="
			       STAGE_RW "/work"))) < 0)
		return root_fail(rc, "mount overlay", err, errlen);
	if ((rc = move_kernel_filesystems(err, errlen)) < 0)
		return rc;
	if ((rc = sys_rc(chdir(STAGE_ROOT))) < 0 ||
	    (rc = sys_rc(mount(".", "/", NULL, MS_MOVE, NULL))) < 0 ||
	    (rc = sys_rc(chroot("."))) < 0 || (rc = sys_rc(chdir("/"))) < 0)
		return root_fail(rc, "switching to it", err, errlen);
	/* The image need not have root's home (HOME=/root); best effort. */
	(void)mkdir("/root", 0700);
	return 0;
}

int kbx_mounts_setup(const char *cmdline, char *err, size_t errlen)
{
	static struct kbx_mounts mt;	/* 16 KiB: not on PID 1's stack */
	int rc = kbx_mounts_parse(cmdline, &mt, err, errlen);
	if (rc < 0)
		return rc;
	if (mt.root_tag[0] && (rc = switch_to_overlay_root(mt.root_tag, err, errlen)) < 0)
		return rc;
	for (unsigned i = 0; i < mt.n; i++)
		if ((rc = mount_share(&mt.m[i], err, errlen)) < 0)
			return rc;
	return 0;
}
