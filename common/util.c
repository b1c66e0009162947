/* common/util.c - I/O helpers shared by every folder. */
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int write_full(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int read_full(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;
	while (len) {
		ssize_t n = read(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int path_parent(const char *path, char *out, size_t outsz)
{
	const char *slash = strrchr(path, '/');
	size_t n = !slash ? 1 : slash == path ? 1 : (size_t)(slash - path);
	if (n >= outsz)
		return -ENAMETOOLONG;
	memcpy(out, slash ? path : ".", n);
	out[n] = 0;
	return 0;
}

int read_file(const char *path, size_t max, uint8_t **out, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return -EINVAL;
	}
	if ((uint64_t)st.st_size > max) {
		close(fd);
		return -EFBIG;
	}
	size_t size = (size_t)st.st_size;
	uint8_t *buf = malloc(size + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	int r = read_full(fd, buf, size);
	close(fd);
	if (r < 0) {
		free(buf);
		return r;
	}
	buf[size] = 0;
	*out = buf;
	*len = size;
	return 0;
}

uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* The DIRGLOB of pattern p into d (NAME_MAX + 1 bytes): 1, or 0 when p
 * has no '/' or too long a folder part. */
static int pattern_folder(const char *p, char *d)
{
	const char *slash = strchr(p, '/');
	size_t dl = slash ? (size_t)(slash - p) : 0;
	if (!slash || dl > NAME_MAX)
		return 0;
	memcpy(d, p, dl);
	d[dl] = 0;
	return 1;
}

int name_pattern_match(const char *const *patterns, const char *dir, const char *name)
{
	for (const char *const *p = patterns; p && *p; p++) {
		char d[NAME_MAX + 1];
		if (!strchr(*p, '/')) {
			if (fnmatch(*p, name, FNM_CASEFOLD) == 0)
				return 1;
		} else if (dir[0] && pattern_folder(*p, d) && fnmatch(d, dir, FNM_CASEFOLD) == 0 &&
			   fnmatch(strchr(*p, '/') + 1, name, FNM_CASEFOLD) == 0) {
			return 1;
		}
	}
	return 0;
}

int name_pattern_folder(const char *const *patterns, const char *name)
{
	for (const char *const *p = patterns; p && *p; p++) {
		char d[NAME_MAX + 1];
		if (pattern_folder(*p, d) && fnmatch(d, name, FNM_CASEFOLD) == 0)
			return 1;
	}
	return 0;
}

int openat_beneath(int dirfd, const char *rel, int flags)
{
	struct open_how how = { .flags = (uint64_t)(flags | O_CLOEXEC),
				.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS };
	long fd = syscall(SYS_openat2, dirfd, rel, &how, sizeof(how));
	return fd < 0 ? -errno : (int)fd;
}

int private_dir(const char *path)
{
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return -errno;
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ELOOP || errno == ENOTDIR ? -ENOTDIR : -errno;
	struct stat st;
	int r = fstat(fd, &st) < 0 ? -errno : st.st_uid != getuid() ? -EPERM : 0;
	if (r == 0 && (st.st_mode & 077) && fchmod(fd, 0700) < 0)
		r = -errno;
	close(fd);
	return r;
}
