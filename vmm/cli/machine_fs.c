/* vmm/cli/machine_fs.c - the machine's file shares (see machine_fs.h): give
 * each share (parsed by share_args.c) its own fs_server and virtio-fs or
 * virtio-9p device and tell the guest init where to mount it (kvmbox.fs,
 * kvmbox.root: contract in guest/abi/mounts.h, whose path check and tag
 * rules we reuse so host and guest agree on what is valid).
 */
#include "vmm/cli/machine_fs.h"
#include "guest/abi/base64url.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "common/log.h"
#include "devices/virtio/9p.h"
#include "devices/virtio/fs.h"
#include "guest/image/image.h"
#include "guest/abi/mounts.h"
#include "launch/hidden.h"
#include "vmm/cli/cli.h"
#include "vmm/cli/machine.h"
#include "vmm/vmm.h"

void share_tag(unsigned i, char *out, size_t outsz)
{
	snprintf(out, outsz, "kvmbox%u", i);
}

int share_cmdline_value(const struct share_opts *so, char *out, size_t outsz)
{
	/* A parent mount point is shorter than anything under it: list the
	 * shares by length of mount point (stable), so parents mount first. */
	unsigned order[SHARE_MAX];
	for (unsigned i = 0; i < so->n; i++) {
		unsigned j = i;
		size_t len = strlen(so->share[i].guest);
		while (j > 0 && strlen(so->share[order[j - 1]].guest) > len) {
			order[j] = order[j - 1];
			j--;
		}
		order[j] = i;
	}
	size_t o = 0;
	if (outsz)
		out[0] = 0;
	for (unsigned k = 0; k < so->n; k++) {
		const struct share_spec *sp = &so->share[order[k]];
		char tag[SHARE_TAG_SIZE];
		share_tag(order[k], tag, sizeof(tag));
		int n = snprintf(out + o, outsz - o, "%s%s:%c%s%s:", k ? "," : "", tag,
				 sp->nine_p ? KBX_FS_FLAG_9P : KBX_FS_FLAG_VIRTIOFS,
				 sp->read_only ? "r" : "",
				 sp->nine_p && so->cache == FS_CACHE_ALWAYS ? "c" : "");
		if (n < 0 || (size_t)n >= outsz - o)
			return -E2BIG;
		o += (size_t)n;
		n = kbx_b64url_encode((const uint8_t *)sp->guest, strlen(sp->guest), out + o,
				     outsz - o);
		if (n < 0)
			return -E2BIG;
		o += (size_t)n;
	}
	return (int)o;
}

/* ---- devices ------------------------------------------------------------ */

/* One share's server and device, destroyed together by the machine. */
struct share_dev {
	struct fs_server *srv;
	struct vfs_dev *vfs;
	struct v9p_dev *v9p;
};

static void share_dev_destroy(void *obj)
{
	struct share_dev *sd = obj;
	vfs_destroy(sd->vfs);
	v9p_destroy(sd->v9p);
	if (sd->srv)
		fs_server_free(sd->srv);
	free(sd);
}

/* The O_PATH fds each server may cache: half of the fd limit shared by all
 * of them (the rest is for open files, the VM and the other devices). */
static unsigned path_fd_budget(unsigned nservers)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return 0;	/* fs9p's default */
	/* A file server wants fds: take what the hard limit allows. */
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max > (1u << 20) ? (1u << 20) : rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			getrlimit(RLIMIT_NOFILE, &rl);
	}
	rlim_t per = rl.rlim_cur / 2 / nservers;
	return per < 64 ? 64 : per > 16384 ? 16384 : (unsigned)per;
}

static int add_one(struct machine *m, const char *host, const char *tag, bool nine_p,
		   const struct fs_opts *fo)
{
	struct share_dev *sd = calloc(1, sizeof(*sd));
	if (!sd) {
		log_err("share %s: out of memory", host);
		return 1;
	}
	int r = fs_server_new(host, fo, &sd->srv);
	if (r < 0) {
		log_err("share %s: %s", host, strerror(-r));
		free(sd);
		return EXIT_USAGE;
	}
	/* Each share's requests are served on an I/O thread of its own: a
	 * file operation that takes its time (a cold read, an fsync) holds up
	 * that share's next request, not the network, the console or the
	 * other shares. */
	struct loop *loop = vm_add_iothread(&m->vm);
	if (!loop) {
		log_err("share %s: cannot start its I/O thread: %s", host, strerror(errno));
		fs_server_free(sd->srv);
		free(sd);
		return 1;
	}
	struct dev_env env = { .gm = &m->vm.gm, .loop = loop, .irq_fd = -1, .notify_fd = -1 };
	/* File I/O on that thread's io_uring: a cold read or an fsync waits
	 * there while the share's other requests (a lookup, a cached read) go
	 * on. */
	if ((r = fs_server_attach_loop(sd->srv, loop)) < 0) {
		log_err("share %s: %s", host, strerror(-r));
		share_dev_destroy(sd);
		return 1;
	}
	struct vdev *vd = NULL;
	if (nine_p && (sd->v9p = v9p_create(&env, 0, sd->srv, tag)))
		vd = &sd->v9p->vdev;
	else if (!nine_p && (sd->vfs = vfs_create(&env, 0, sd->srv, tag)))
		vd = &sd->vfs->vdev;
	if (!vd) {
		share_dev_destroy(sd);
		log_err("share %s: cannot create its device", host);
		return 1;
	}
	if ((r = machine_add_virtio(m, vd, share_dev_destroy, sd)) < 0) {
		log_err("share %s: %s", host, r == -ENOSPC ? "no virtio slot left" : strerror(-r));
		return 1;
	}
	return 0;
}

/* The root image: --rootfs, or --image resolved in the image store. */
static int add_root(struct machine *m, const struct share_opts *so, struct fs_opts fo)
{
	char resolved[PATH_MAX];
	const char *dir = so->rootfs;
	if (so->image_dir[0]) {
		dir = so->image_dir;
	} else if (so->image) {
		if (image_resolve(so->image, resolved, sizeof(resolved)) < 0)
			return EXIT_USAGE;	/* image_resolve said why */
		dir = resolved;
	}
	fo.read_only = true;
	fo.cache = FS_CACHE_ALWAYS;	/* the image does not change under us */
	int st = add_one(m, dir, SHARE_ROOT_TAG, false, &fo);
	if (st)
		return st;
	return machine_cmdline_add(m, "%s=%s", KBX_ROOT_PARAM, SHARE_ROOT_TAG) < 0 ? -E2BIG : 0;
}

int machine_add_shares(struct machine *m, const struct share_opts *so)
{
	bool root = so->rootfs[0] || so->image;
	if (!so->n && !root)
		return 0;
	if (!m->o->initrd && !m->o->restore) {
		log_err("--share, --rootfs and --image need --initrd (kvmbox-init mounts them)");
		return EXIT_USAGE;
	}
	struct fs_opts fo;
	fs_opts_default(&fo);
	fo.cache = so->cache;
	fo.max_path_fds = path_fd_budget(so->n + root);
	int st;
	if (root && (st = add_root(m, so, fo)) != 0)
		goto fail;
	for (unsigned i = 0; i < so->n; i++) {
		char tag[SHARE_TAG_SIZE];
		share_tag(i, tag, sizeof(tag));
		fo.read_only = so->share[i].read_only;
		fo.hidden = so->share[i].hide ? hidden_default : NULL;
		if ((st = add_one(m, so->share[i].host, tag, so->share[i].nine_p, &fo)) != 0)
			return st;
	}
	if (!so->n)
		return 0;
	char value[MACHINE_CMDLINE_EXTRA];
	if (share_cmdline_value(so, value, sizeof(value)) < 0 ||
	    machine_cmdline_add(m, "%s=%s", KBX_FS_PARAM, value) < 0) {
		st = -E2BIG;
		goto fail;
	}
	return 0;
fail:
	if (st == -E2BIG) {
		log_err("the shares' guest paths do not fit on the guest kernel command line "
			"(%d bytes for kvmbox.* parameters)", MACHINE_CMDLINE_EXTRA);
		return EXIT_USAGE;
	}
	return st;
}
