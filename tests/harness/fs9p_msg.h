/* tests/harness/fs9p_msg.h - build FUSE requests by hand and run them
 * through fs_fuse_handle(), for the fs9p unit tests and fuzzers.
 *
 * A test owns one server over a fresh temp directory; fuse_call() sends one
 * request (header + body parts) and returns the reply header and body.
 */
#ifndef KVMBOX_TESTS_FS9P_MSG_H
#define KVMBOX_TESTS_FS9P_MSG_H

#include <linux/fuse.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "fs9p/fs.h"

struct fuse_rep {
	ssize_t len;		/* fs_fuse_handle() result */
	struct fuse_out_header h;
	uint8_t body[1 << 16];	/* first 64 KiB of the body */
};

/* Send opcode on nodeid with body a[0..alen) followed by b[0..blen). */
void fuse_call(struct fs_server *s, uint32_t opcode, uint64_t nodeid, const void *a, size_t alen,
	       const void *b, size_t blen, struct fuse_rep *rep);
/* INIT with protocol 7.38: returns the reply error. */
int fuse_init_srv(struct fs_server *s);
/* LOOKUP name in dir: nodeid (> 0) or -errno. */
int64_t fuse_lookup(struct fs_server *s, uint64_t dir, const char *name);
/* OPEN nodeid with flags: fh or -errno. */
int64_t fuse_open(struct fs_server *s, uint64_t nodeid, uint32_t flags);

/* mkdtemp under TMPDIR (or /tmp); returns a malloc'd path. */
char *fs_test_tmpdir(void);
void fs_test_rmrf(const char *path);
/* Create or truncate DIR/NAME with DATA and exactly MODE (fchmod, so the
 * umask does not apply): 0 or -errno. */
int fs_test_write_file(const char *dir, const char *name, const char *data, mode_t mode);
/* lstat mode of DIR/NAME, 0 if it does not exist. */
mode_t fs_test_mode(const char *dir, const char *name);
/* Whether DIR's file system takes user.* xattrs (where the server keeps a
 * file's setuid/setgid off the host; without them the bits are stripped). */
bool fs_test_user_xattrs(const char *dir);

/* Fuzzers: a scratch directory made once per process, on a private 32 MiB
 * tmpfs when we may mount one (ENOSPC bounds growth) else with RLIMIT_FSIZE
 * capped (run with -handle_xfsz=0); removed at exit.  NULL on failure. */
const char *fs_fuzz_scratch(void);
/* (Re)create SCRATCH/t with a file, a dir with a file, and a symlink that
 * points out of the share. */
void fs_fuzz_make_tree(const char *scratch);

#endif
