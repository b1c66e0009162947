/* launch/session/clipboard.c - the sandbox's clipboard (see session.h):
 * the guest's clipboard programs, and kvmbox clipboard put's side of it.
 *
 * The guest has no display server, so its xclip, xsel, wl-paste and
 * pbpaste are one small sh program (by the name it is called) that reads
 * the files kvmbox clipboard put leaves in the launch folder, which the
 * guest cannot write; its copies are OSC 52 on the terminal, judged and
 * kept on the host by the holder.  Nothing here reads the guest's bytes.
 */
#include "launch/session/session.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char shim[] =
	"#!/bin/sh\n"
	"# kvmbox's clipboard in the guest (launch/session/clipboard.c): pasting\n"
	"# reads what `kvmbox clipboard put` left in " CLIPBOARD_GUEST_DIR ", copying\n"
	"# is OSC 52 on the terminal (the host's terminal and `kvmbox clipboard get`).\n"
	"c=" CLIPBOARD_GUEST_DIR " me=${0##*/} out=0 list=0 type=\n"
	/* the newest of a kind, by listing: a name never looked up before
	 * (the guest caches a miss for a second) */
	"latest() { ls $c 2>/dev/null | grep \"^$1-[0-9]*$2\\$\" | sort | tail -n 1; }\n"
	"case $me in wl-paste|pbpaste) out=1;; esac\n"
	"while [ $# -gt 0 ]; do case $1 in\n"
	"  -o|-out|--output) out=1;;\n"
	"  -t|-target|--type) shift; type=$1;;\n"
	"  -l|--list-types) list=1;;\n"
	"esac; shift; done\n"
	"[ \"$type\" = TARGETS ] && list=1\n"
	"if [ $out = 1 ]; then\n"
	"  img=$(latest image .png) txt=$(latest text)\n"
	"  if [ $list = 1 ]; then [ -n \"$img\" ] && echo image/png\n"
	"    [ -n \"$txt\" ] && printf 'text/plain\\nUTF8_STRING\\n'; exit 0; fi\n"
	"  case $type in image/*) f=$img;; *) f=$txt;; esac\n"
	"  [ -n \"$f\" ] && exec cat $c/$f\n"
	"  echo \"$me: the clipboard is empty (kvmbox clipboard put on the host fills it)\" >&2; exit 1\n"
	"fi\n"
	"d=$(base64 | tr -d '\\n') || exit 1\n"
	"printf '\\033]52;c;%s\\007' \"$d\" >/dev/tty\n";

static const char *const shim_names[] = { "xclip", "xsel", "wl-paste", "wl-copy", "pbpaste", "pbcopy" };

int session_write_whole(int dirfd, const char *name, const void *data, size_t len, mode_t mode)
{
	char tmp[64];
	snprintf(tmp, sizeof(tmp), ".%s.new", name);
	int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	int r = 0;
	for (const char *p = data; len > 0 && r == 0;) {
		ssize_t w = write(fd, p, len);
		if (w <= 0)
			r = w < 0 ? -errno : -EIO;
		else
			p += w, len -= (size_t)w;
	}
	if (fchmod(fd, mode) < 0 && r == 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && renameat(dirfd, tmp, dirfd, name) < 0)
		r = -errno;
	if (r < 0)
		unlinkat(dirfd, tmp, 0);
	return r;
}

/* launch_dir/sub, made 0755 when missing, opened. */
static int open_sub(const char *launch_dir, const char *sub)
{
	int dfd = open(launch_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	if (mkdirat(dfd, sub, 0755) < 0 && errno != EEXIST) {
		int e = -errno;
		close(dfd);
		return e;
	}
	int fd = openat(dfd, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	int e = fd < 0 ? -errno : 0;
	close(dfd);
	return fd < 0 ? e : fd;
}

int clipboard_write_shims(const char *launch_dir)
{
	int bin = open_sub(launch_dir, "bin");
	if (bin < 0)
		return bin;
	int r = 0;
	for (size_t i = 0; i < sizeof(shim_names) / sizeof(shim_names[0]) && r == 0; i++)
		r = session_write_whole(bin, shim_names[i], shim, sizeof(shim) - 1, 0755);
	close(bin);
	if (r == 0) {
		int clip = open_sub(launch_dir, "clipboard");
		r = clip < 0 ? clip : 0;
		if (clip >= 0)
			close(clip);
	}
	return r;
}

/* Remove the files of kind prefix in dir but keep. */
static void remove_older(int dirfd, const char *prefix, const char *keep)
{
	int fd = dup(dirfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	for (struct dirent *e; (e = readdir(d));)
		if (!strncmp(e->d_name, prefix, strlen(prefix)) && strcmp(e->d_name, keep))
			unlinkat(dirfd, e->d_name, 0);
	closedir(d);
}

int clipboard_put(const struct session_info *i, const void *data, size_t len, bool is_image,
		  char *guest_path, size_t pathsz)
{
	if (!i->launch_dir[0])
		return -ENOTCONN;
	if (len > CLIPBOARD_MAX)
		return -EFBIG;
	int clip = open_sub(i->launch_dir, "clipboard");
	if (clip < 0)
		return clip;
	/* a new name each time (text-NS, image-NS.png): the guest caches a
	 * name's absence, never a name it has not seen */
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	const char *kind = is_image ? "image-" : "text-";
	char name[64];
	snprintf(name, sizeof(name), "%s%lld%09ld%s", kind, (long long)ts.tv_sec, ts.tv_nsec, is_image ? ".png" : "");
	int r = session_write_whole(clip, name, data, len, 0644);
	if (r == 0)
		remove_older(clip, kind, name);
	close(clip);
	if (r == 0)
		snprintf(guest_path, pathsz, CLIPBOARD_GUEST_DIR "/%s", name);
	return r;
}
