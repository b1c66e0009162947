/* guest/image/dl_archive.c - libarchive, opened on first use (common/dl.h
 * says why): definitions of the libarchive functions unpack.c calls, each
 * forwarding to the library's own.
 *
 * Each loads the library first (once).  archive_read_new returns NULL if
 * it cannot be loaded (one line says why); every other function takes an
 * archive or an entry that only the loaded library can have made.
 */
#include <archive.h>
#include <archive_entry.h>
#include <pthread.h>
#include <stdbool.h>

#include "common/dl.h"
#include "guest/image/image.h"

const struct image_dl_lib image_archive_lib = { "libarchive.so.13", "libarchive13" };

/* Functions of one struct archive_entry * argument. */
#define ENTRY_FNS(X)                                                         \
	X(atime) X(atime_is_set) X(atime_nsec) X(filetype) X(gid)             \
	X(hardlink) X(mtime) X(mtime_nsec) X(pathname) X(perm) X(size)        \
	X(size_is_set) X(symlink) X(uid)
/* Functions of one struct archive * argument. */
#define READER_FNS(X)                                                        \
	X(error_string) X(read_free) X(read_support_filter_gzip)              \
	X(read_support_filter_zstd) X(read_support_format_empty)             \
	X(read_support_format_tar)
#define OTHER_FNS(X) X(read_new) X(read_next_header) X(read_data_block) X(read_open_fd)

/* The library's functions; set once under archive_once, then read only. */
static struct {
#define X(n) typeof(archive_entry_##n) *entry_##n;
	ENTRY_FNS(X)
#undef X
#define X(n) typeof(archive_##n) *n;
	READER_FNS(X)
	OTHER_FNS(X)
#undef X
} lib;
static pthread_once_t archive_once = PTHREAD_ONCE_INIT;
static bool archive_loaded;

static void archive_load(void)
{
	static const struct dl_sym syms[] = {
#define X(n) { "archive_entry_" #n, (void **)&lib.entry_##n },
		ENTRY_FNS(X)
#undef X
#define X(n) { "archive_" #n, (void **)&lib.n },
		READER_FNS(X)
		OTHER_FNS(X)
#undef X
	};
	archive_loaded = dl_load(image_archive_lib.soname, image_archive_lib.pkg, syms,
				 sizeof(syms) / sizeof(syms[0])) == 0;
}

/* The loaded library's functions (a test may link libarchive itself and
 * reach these with its own objects before any archive_read_new). */
static typeof(lib) *api(void)
{
	pthread_once(&archive_once, archive_load);
	return &lib;
}

struct archive *archive_read_new(void)
{
	api();
	return archive_loaded ? lib.read_new() : NULL;
}

#define X(n)                                                                 \
	typeof(archive_entry_##n((struct archive_entry *)0)) archive_entry_##n(struct archive_entry *e) \
	{                                                                    \
		return api()->entry_##n(e);                                     \
	}
ENTRY_FNS(X)
#undef X
#define X(n)                                                                 \
	typeof(archive_##n((struct archive *)0)) archive_##n(struct archive *a) \
	{                                                                    \
		return api()->n(a);                                            \
	}
READER_FNS(X)
#undef X

int archive_read_next_header(struct archive *a, struct archive_entry **e)
{
	return api()->read_next_header(a, e);
}

int archive_read_data_block(struct archive *a, const void **buf, size_t *len, la_int64_t *off)
{
	return api()->read_data_block(a, buf, len, off);
}

int archive_read_open_fd(struct archive *a, int fd, size_t block_size)
{
	return api()->read_open_fd(a, fd, block_size);
}
