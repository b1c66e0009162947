/* tests/fuzz/fuzz_fs9p_snapshot.c - any bytes as the file server's part of
 * a snapshot (fs9p/snapshot.c), restored into a new server on a small
 * folder.  The root's device and inode numbers are this machine's, which
 * no input can know: the target writes them into the record of inode 1, so
 * the fuzzer explores the table behind that check.  A state the restore
 * accepts is used: every inode is resolved (getattr) and every handle
 * read, so a table that links wrongly (a cycle, a parent freed early)
 * shows as a hang or an ASan report; a refused one must leave the server
 * as it was made. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fs9p/core.h"
#include "tests/harness/fs9p_msg.h"

static char *folder(void)
{
	static char *dir;
	if (!dir) {
		dir = fs_test_tmpdir();
		char p[4096];
		snprintf(p, sizeof(p), "%s/a", dir);
		mkdir(p, 0755);
		fs_test_write_file(dir, "a/f", "file in a", 0644);
		fs_test_write_file(dir, "top", "top file", 0644);
	}
	return dir;
}

/* The root's numbers into the record of inode 1, wherever it is. */
static void patch_root(uint8_t *b, size_t len, const struct fs_inode *root)
{
	if (len < 40)
		return;
	uint32_t n;
	memcpy(&n, b + 12, 4);
	size_t off = 40;
	for (uint32_t k = 0; k < n && k < 4096 && off + 48 <= len; k++) {
		uint64_t id, dev = root->dev, ino = root->ino;
		uint16_t nl;
		memcpy(&id, b + off, 8);
		memcpy(&nl, b + off + 46, 2);
		if (id == 1) {
			memcpy(b + off + 16, &dev, 8);
			memcpy(b + off + 24, &ino, 8);
		}
		off += 48 + nl + (8 - nl % 8) % 8;
	}
}

static void use_all(struct fs_server *s)
{
	for (size_t b = 0; b < s->nbuckets; b++)
		for (struct fs_inode *i = s->by_id[b]; i; i = i->id_next) {
			struct stat st;
			fs_begin(s);
			fs_getattr(s, i, &st);
		}
	for (size_t b = 0; b < s->nfbuckets; b++)
		for (struct fs_file *f = s->files[b]; f; f = f->next) {
			char buf[16];
			struct iovec v = { buf, sizeof(buf) };
			fs_begin(s);
			if (!f->is_dir)
				fs_read(s, f, &v, 1, 0);
		}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > (1u << 20))
		return 0;
	struct fs_opts o;
	fs_opts_default(&o);
	o.max_path_fds = 8;
	struct fs_server *s;
	if (fs_server_new(folder(), &o, &s) < 0)
		abort();
	uint8_t *buf = malloc(size ? size : 1);
	memcpy(buf, data, size);
	patch_root(buf, size, s->root);
	int r = fs_snapshot_restore(s, buf, size);
	if (r == 0) {
		use_all(s);
	} else {
		struct fs_stats st;
		fs_get_stats(s, &st);
		if (r != -EINVAL && r != -ENOMEM)
			abort();
		if (st.inodes != 1 || st.files != 0)
			abort();	/* a refused state leaves nothing behind */
	}
	free(buf);
	fs_server_free(s);
	return 0;
}
