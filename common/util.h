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
/* The folder path names, into out: "/a/b" -> "/a", "/a" -> "/", "a" ->
 * ".".  0, or -ENAMETOOLONG. */
int path_parent(const char *path, char *out, size_t outsz);
/* Whether NAME, in a folder named DIR ("" for the top of a tree), matches
 * one of patterns (NULL-terminated): "GLOB" on the name, "DIRGLOB/GLOB" on
 * the folder's name and the name.  Case is ignored (a case-insensitive
 * file system would open ".ENV" as ".env"), and '*' also matches a
 * leading dot.  1 or 0. */
int name_pattern_match(const char *const *patterns, const char *dir, const char *name);
/* Whether NAME matches the DIRGLOB of a "DIRGLOB/GLOB" pattern: a folder
 * so named gives names in it their meaning, so renaming it would change
 * what matches beneath.  1 or 0. */
int name_pattern_folder(const char *const *patterns, const char *name);
/* rel beneath the folder dirfd with no component a link (RESOLVE_BENEATH |
 * RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS), O_CLOEXEC added: an fd, or
 * -errno. */
int openat_beneath(int dirfd, const char *rel, int flags);

/* mkdir PATH 0700 unless it exists; then it must be the user's own folder
 * (-EPERM) and not a link (-ENOTDIR), and one open to others is narrowed
 * to 0700.  0 or -errno. */
int private_dir(const char *path);
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
/* The value of four hex digits at p (fewer than four bytes available, or a
 * non-digit: -1), as \uXXXX escapes spell a code unit. */
static inline long hex4_value(const char *p, size_t avail)
{
	long v = 0;
	for (size_t i = 0; i < 4; i++) {
		int h = i < avail ? hex_digit(p[i]) : -1;
		if (h < 0)
			return -1;
		v = v << 4 | h;
	}
	return v;
}
/* Code point cp (at most 0x10FFFF) as UTF-8 into out: its length, 1 to 4. */
static inline size_t utf8_encode(uint32_t cp, char out[4])
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xC0 | cp >> 6);
		out[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xE0 | cp >> 12);
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		out[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	out[0] = (char)(0xF0 | cp >> 18);
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
	out[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

#endif
