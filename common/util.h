/* common/util.h - small helpers every folder uses: sizes, alignment, errno. */
#ifndef KVMBOX_COMMON_UTIL_H
#define KVMBOX_COMMON_UTIL_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define ALIGN_UP(x, a) (((x) + ((a) - 1)) & ~((__typeof__(x))(a) - 1))
#define ALIGN_DOWN(x, a) ((x) & ~((__typeof__(x))(a) - 1))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/* Write all of buf, retrying on EINTR and short writes: 0 or -errno. */
int write_full(int fd, const void *buf, size_t len);
/* Read exactly len bytes: 0, -EIO on early EOF, or -errno. */
int read_full(int fd, void *buf, size_t len);
/* Read a whole file into a malloc'd buffer (NUL-terminated beyond *len),
 * refusing files larger than max: 0 or -errno (-EFBIG when too large). */
int read_file(const char *path, size_t max, uint8_t **out, size_t *len);
/* Monotonic clock in nanoseconds. */
uint64_t now_ns(void);
/* The value of one hexadecimal digit (either case), or -1. */
static inline int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

#endif
