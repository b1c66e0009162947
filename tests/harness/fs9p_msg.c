/* tests/harness/fs9p_msg.c - hand-built FUSE requests (see fs9p_msg.h). */
#include "tests/harness/fs9p_msg.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static uint64_t next_unique = 1;	/* test-only: request ids */

void fuse_call(struct fs_server *s, uint32_t opcode, uint64_t nodeid, const void *a, size_t alen,
	       const void *b, size_t blen, struct fuse_rep *rep)
{
	struct fuse_in_header h = {
		.len = (uint32_t)(sizeof(h) + alen + blen),
		.opcode = opcode,
		.unique = next_unique++,
		.nodeid = nodeid,
	};
	struct iovec in[3] = {
		{ &h, sizeof(h) }, { (void *)a, alen }, { (void *)b, blen },
	};
	static uint8_t out[FS_FUSE_BUF_SIZE];
	struct iovec o = { out, sizeof(out) };
	memset(rep, 0, sizeof(*rep));
	rep->len = fs_fuse_handle(s, in, 3, &o, 1);
	if (rep->len >= (ssize_t)sizeof(rep->h)) {
		memcpy(&rep->h, out, sizeof(rep->h));
		size_t n = (size_t)rep->len - sizeof(rep->h);
		memcpy(rep->body, out + sizeof(rep->h), n < sizeof(rep->body) ? n : sizeof(rep->body));
	}
}

int fuse_init_srv(struct fs_server *s)
{
	struct fuse_init_in in = { .major = 7, .minor = 38, .max_readahead = 65536,
				   .flags = 0xffffffff };
	static struct fuse_rep rep;
	fuse_call(s, FUSE_INIT, 0, &in, sizeof(in), NULL, 0, &rep);
	return rep.h.error;
}

int64_t fuse_lookup(struct fs_server *s, uint64_t dir, const char *name)
{
	static struct fuse_rep rep;
	fuse_call(s, FUSE_LOOKUP, dir, name, strlen(name) + 1, NULL, 0, &rep);
	if (rep.h.error)
		return rep.h.error;
	struct fuse_entry_out e;
	memcpy(&e, rep.body, sizeof(e));
	return e.nodeid ? (int64_t)e.nodeid : -ENOENT;
}

int64_t fuse_open(struct fs_server *s, uint64_t nodeid, uint32_t flags)
{
	static struct fuse_rep rep;
	struct fuse_open_in in = { .flags = flags };
	fuse_call(s, FUSE_OPEN, nodeid, &in, sizeof(in), NULL, 0, &rep);
	if (rep.h.error)
		return rep.h.error;
	struct fuse_open_out o;
	memcpy(&o, rep.body, sizeof(o));
	return (int64_t)o.fh;
}

char *fs_test_tmpdir(void)
{
	const char *t = getenv("TMPDIR");
	char *p;
	if (asprintf(&p, "%s/kvmbox-fs9p-XXXXXX", t ? t : "/tmp") < 0)
		return NULL;
	if (!mkdtemp(p)) {
		free(p);
		return NULL;
	}
	return p;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

void fs_test_rmrf(const char *path)
{
	if (path)
		nftw(path, rm_one, 64, FTW_DEPTH | FTW_PHYS);
}

int fs_test_write_file(const char *dir, const char *name, const char *data, mode_t mode)
{
	char p[4096];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	int fd = open(p, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	size_t len = strlen(data);
	int r = write(fd, data, len) == (ssize_t)len && fchmod(fd, mode) == 0 ? 0 : -EIO;
	close(fd);
	return r;
}

mode_t fs_test_mode(const char *dir, const char *name)
{
	char p[4096];
	struct stat st;
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return lstat(p, &st) < 0 ? 0 : st.st_mode;
}

bool fs_test_user_xattrs(const char *dir)
{
	char p[4096];
	snprintf(p, sizeof(p), "%s/.xattr-probe", dir);
	int fd = open(p, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	if (fd < 0)
		return false;
	bool ok = fsetxattr(fd, "user.probe", "1", 1, 0) == 0;
	close(fd);
	unlink(p);
	return ok;
}

/* The fuzzers' scratch directory: one per process, see fs_fuzz_scratch(). */
static char *fuzz_scratch;

static void fs_fuzz_remove_scratch(void)
{
	fs_test_rmrf(fuzz_scratch);
	umount2(fuzz_scratch, MNT_DETACH);
	rmdir(fuzz_scratch);
}

const char *fs_fuzz_scratch(void)
{
	if (fuzz_scratch)
		return fuzz_scratch;
	fuzz_scratch = fs_test_tmpdir();
	if (!fuzz_scratch)
		return NULL;
	atexit(fs_fuzz_remove_scratch);
	bool tmpfs = false;
	if (unshare(CLONE_NEWNS) == 0) {
		mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
		tmpfs = mount("tmpfs", fuzz_scratch, "tmpfs", 0, "size=32m") == 0;
	}
	if (!tmpfs) {
		struct rlimit rl = { 16 << 20, 16 << 20 };
		setrlimit(RLIMIT_FSIZE, &rl);
		signal(SIGXFSZ, SIG_IGN);
	}
	return fuzz_scratch;
}

void fs_fuzz_make_tree(const char *scratch)
{
	char p[4096];
	snprintf(p, sizeof(p), "%s/t", scratch);
	fs_test_rmrf(p);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/t/file", scratch);
	int fd = open(p, O_CREAT | O_WRONLY, 0644);
	if (fd >= 0) {
		(void)!write(fd, "hello world\n", 12);
		close(fd);
	}
	snprintf(p, sizeof(p), "%s/t/dir", scratch);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/t/dir/inner", scratch);
	close(open(p, O_CREAT | O_WRONLY, 0600));
	snprintf(p, sizeof(p), "%s/t/link", scratch);
	(void)!symlink("../../etc/passwd", p);
}
