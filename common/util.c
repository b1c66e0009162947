/* common/util.c - I/O helpers shared by every folder. */
#include "common/util.h"

#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

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

int name_pattern_match(const char *const *patterns, const char *dir, const char *name)
{
	for (const char *const *p = patterns; p && *p; p++) {
		const char *slash = strchr(*p, '/');
		if (!slash) {
			if (fnmatch(*p, name, 0) == 0)
				return 1;
			continue;
		}
		char d[NAME_MAX + 1];
		size_t dl = (size_t)(slash - *p);
		if (dl > NAME_MAX || !dir[0])
			continue;
		memcpy(d, *p, dl);
		d[dl] = 0;
		if (fnmatch(d, dir, 0) == 0 && fnmatch(slash + 1, name, 0) == 0)
			return 1;
	}
	return 0;
}
