/* vmm/snapshot/file.c - a snapshot directory on disk: writing it whole or
 * not at all, and opening its two files for a restore (layout and rules in
 * snapshot.h).  Messages complete "cannot restore DIR: ..." or "cannot save
 * DIR: ...".
 */
#include "vmm/snapshot/snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"

/* DIR/NAME into path: 0, or -ENAMETOOLONG. */
static int path_in(char path[PATH_MAX], const char *dir, const char *name)
{
	return snprintf(path, PATH_MAX, "%s/%s", dir, name) < PATH_MAX ? 0 : -ENAMETOOLONG;
}

/* Open DIR/NAME as a regular file, never through a link. */
static int open_in(const char *dir, const char *name, struct stat *st, char *err, size_t errsz)
{
	char path[PATH_MAX];
	if (path_in(path, dir, name) < 0) {
		snprintf(err, errsz, "the path is too long");
		return -ENAMETOOLONG;
	}
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		int e = -errno;
		snprintf(err, errsz, "%s: %s", name, e == -ENOENT ? "missing (not a whole snapshot)" :
			 strerror(-e));
		return e;
	}
	if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode)) {
		snprintf(err, errsz, "%s is not a regular file", name);
		close(fd);
		return -EINVAL;
	}
	return fd;
}

int snap_read_state(const char *dir, struct snap_state *st, char *err, size_t errsz)
{
	memset(st, 0, sizeof(*st));
	struct stat sb;
	int fd = open_in(dir, "state", &sb, err, errsz);
	if (fd < 0)
		return fd;
	if (sb.st_size > (off_t)SNAP_MAX_STATE) {
		snprintf(err, errsz, "its state file is larger than %u MiB", SNAP_MAX_STATE >> 20);
		close(fd);
		return -EFBIG;
	}
	size_t len = (size_t)sb.st_size;
	uint8_t *buf = malloc(len ? len : 1);
	int r = buf ? read_full(fd, buf, len) : -ENOMEM;
	close(fd);
	if (r < 0) {
		snprintf(err, errsz, "cannot read its state file: %s", strerror(-r));
		free(buf);
		return r;
	}
	return snap_parse(st, buf, len, err, errsz);
}

int snap_open_memory(const char *dir, const struct snap_machine *m, char *err, size_t errsz)
{
	struct stat sb;
	uint64_t mem_size = m->mem_size;
	int fd = open_in(dir, m->memory_file, &sb, err, errsz);
	if (fd >= 0 && (uint64_t)sb.st_size != mem_size) {
		snprintf(err, errsz, "its memory file is %llu bytes, its state says %llu",
			 (unsigned long long)sb.st_size, (unsigned long long)mem_size);
		close(fd);
		return -EINVAL;
	}
	return fd;
}

/* ---- writing ---- */

static bool page_is_zero(const uint8_t *p)
{
	static const uint8_t zero[4096];
	return !memcmp(p, zero, sizeof(zero));
}

/* Write [from, to) of guest RAM, leaving zero pages as holes. */
static int write_range(int fd, const uint8_t *ram, uint64_t from, uint64_t to)
{
	uint64_t run = from;	/* start of the non-zero run being gathered */
	for (uint64_t off = from; off <= to; off += 4096) {
		bool end = off == to || page_is_zero(ram + off);
		if (!end)
			continue;
		if (off > run) {
			if (lseek(fd, (off_t)run, SEEK_SET) < 0)
				return -errno;
			int r = write_full(fd, ram + run, (size_t)(off - run));
			if (r < 0)
				return r;
		}
		run = off + 4096;
	}
	return 0;
}

/* The memfd's data extents of RAM into @fd. */
static int write_data_extents(int fd, const uint8_t *ram, uint64_t mem_size, int data_fd)
{
	off_t off = 0;
	while ((uint64_t)off < mem_size) {
		off_t data = lseek(data_fd, off, SEEK_DATA);
		if (data < 0)
			return errno == ENXIO ? 0 : -errno;
		off_t hole = lseek(data_fd, data, SEEK_HOLE);
		if (hole < 0)
			return -errno;
		uint64_t from = (uint64_t)data & ~4095ULL, to = ((uint64_t)hole + 4095) & ~4095ULL;
		if (to > mem_size)
			to = mem_size;
		int r = write_range(fd, ram, from, to);
		if (r < 0)
			return r;
		off = (off_t)to;
	}
	return 0;
}

#define PAGEMAP_PRESENT (1ULL << 63)
#define PAGEMAP_SWAPPED (1ULL << 62)
#define PAGEMAP_BATCH 4096u	/* entries read at once: 16 MiB of RAM */

/* Anonymous RAM into @fd: the runs of pages /proc/self/pagemap shows
 * present or swapped out (the rest was never written: zero). */
static int write_written_pages(int fd, const uint8_t *ram, uint64_t mem_size, int pagemap_fd)
{
	uint64_t entries[PAGEMAP_BATCH];
	uint64_t npages = mem_size / 4096, first = (uint64_t)(uintptr_t)ram / 4096;
	uint64_t run = 0;	/* start of the run of written pages being gathered */
	bool in_run = false;
	for (uint64_t p = 0; p < npages; p += PAGEMAP_BATCH) {
		uint64_t n = MIN(PAGEMAP_BATCH, npages - p);
		ssize_t got = pread(pagemap_fd, entries, n * sizeof(entries[0]),
				    (off_t)((first + p) * sizeof(entries[0])));
		if (got != (ssize_t)(n * sizeof(entries[0])))
			return got < 0 ? -errno : -EIO;
		for (uint64_t i = 0; i < n; i++) {
			bool written = entries[i] & (PAGEMAP_PRESENT | PAGEMAP_SWAPPED);
			if (written && !in_run)
				run = (p + i) * 4096;
			else if (!written && in_run) {
				int r = write_range(fd, ram, run, (p + i) * 4096);
				if (r < 0)
					return r;
			}
			in_run = written;
		}
	}
	return in_run ? write_range(fd, ram, run, npages * 4096) : 0;
}

/* Guest RAM into @fd (already ram->size long, all holes). */
static int write_memory(int fd, const struct snap_ram *ram)
{
	if (ram->memfd >= 0)
		return write_data_extents(fd, ram->base, ram->size, ram->memfd);
	if (ram->pagemap_fd >= 0 && ram->size % 4096 == 0 && (uintptr_t)ram->base % 4096 == 0)
		return write_written_pages(fd, ram->base, ram->size, ram->pagemap_fd);
	return write_range(fd, ram->base, 0, ram->size);
}

static int create_in(const char *dir, const char *name)
{
	char path[PATH_MAX];
	if (path_in(path, dir, name) < 0)
		return -ENAMETOOLONG;
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	return fd < 0 ? -errno : fd;
}

int snap_prepare_dir(const char *dir, char *err, size_t errsz)
{
	if (mkdir(dir, 0700) == 0)
		return 0;
	int e = -errno;
	DIR *d = e == -EEXIST ? opendir(dir) : NULL;
	if (!d) {
		snprintf(err, errsz, "%s", e == -EEXIST ? "it is not a folder" : strerror(-e));
		return e == -EEXIST ? -ENOTDIR : e;
	}
	struct dirent *de;
	int r = 0;
	while (r == 0 && (de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") && !snap_dir_entry_ours(de->d_name))
			r = -EEXIST;
	closedir(d);
	if (r < 0)
		snprintf(err, errsz, "it holds files that are not a snapshot's");
	return r;
}

static void unlink_in(const char *dir, const char *name)
{
	char path[PATH_MAX];
	if (path_in(path, dir, name) == 0)
		unlink(path);
}

/* After a save: remove every memory file but @keep, and leftover temps
 * (the proxy's CA, written for this save, stays). */
static void remove_stale(const char *dir, const char *keep)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, "state") && strcmp(de->d_name, keep) &&
		    strcmp(de->d_name, SNAP_PROXY_CA_FILE) && snap_dir_entry_ours(de->d_name))
			unlinkat(dirfd(d), de->d_name, 0);
	closedir(d);
}

/* The new memory file, whole and synced. */
static int write_memory_file(const char *dir, const char *name, const struct snap_ram *ram)
{
	int fd = create_in(dir, name);
	if (fd < 0)
		return fd;
	int r = ftruncate(fd, (off_t)ram->size) < 0 ? -errno : write_memory(fd, ram);
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	close(fd);
	return r;
}

/* The state into a temporary name, synced, then renamed to DIR/state. */
static int write_state_file(const char *dir, const struct snap_writer *w)
{
	char tmp[64], from[PATH_MAX], to[PATH_MAX];
	snprintf(tmp, sizeof(tmp), "state.tmp-%x", (unsigned)getpid());
	if (path_in(from, dir, tmp) < 0 || path_in(to, dir, "state") < 0)
		return -ENAMETOOLONG;
	unlink(from);
	int fd = create_in(dir, tmp);
	if (fd < 0)
		return fd;
	int r = write_full(fd, w->buf, w->len);
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	close(fd);
	if (r == 0 && rename(from, to) < 0)
		r = -errno;
	if (r < 0)
		unlink(from);
	return r;
}

int snap_write_dir(const char *dir, const char *memory_name, const struct snap_ram *ram,
		   const struct snap_writer *w, char *err, size_t errsz)
{
	if (!snap_memory_name_valid(memory_name)) {
		snprintf(err, errsz, "bad memory file name");
		return -EINVAL;
	}
	int r = write_memory_file(dir, memory_name, ram);
#if defined(KVMBOX_FAULT_INJECTION)
	/* Sanitizer builds only: KVMBOX_FAULT_SAVE=nospace fails the save as
	 * a full disk would after the memory file was written. */
	const char *fault = getenv("KVMBOX_FAULT_SAVE");
	if (r == 0 && fault && !strcmp(fault, "nospace"))
		r = -ENOSPC;
#endif
	if (r < 0) {
		snprintf(err, errsz, "cannot write its memory file: %s", strerror(-r));
		unlink_in(dir, memory_name);	/* the old snapshot stays whole */
		return r;
	}
	/* The state names its memory file: renaming it into place is the one
	 * step that makes the new snapshot the snapshot. */
	if ((r = write_state_file(dir, w)) < 0) {
		snprintf(err, errsz, "cannot write its state file: %s", strerror(-r));
		unlink_in(dir, memory_name);
		return r;
	}
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	remove_stale(dir, memory_name);
	return 0;
}
