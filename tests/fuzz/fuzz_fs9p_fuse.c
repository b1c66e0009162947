/* tests/fuzz/fuzz_fs9p_fuse.c - libFuzzer over the FUSE message handlers.
 *
 * Each input is a sequence of requests run against a fresh server over a
 * small scratch tree: [u16 length][u8 fix][length bytes].  The bytes are a
 * raw fuse_in_header + body; when fix is odd the header's len field is set
 * to the real length so decoding gets past the first check.  INIT is sent
 * first so every opcode is reachable.  The scratch tree lives on a private
 * 32 MiB tmpfs when we may mount one (else RLIMIT_FSIZE caps file growth),
 * so the fuzzer cannot fill the disk.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs9p/fs.h"
#include "tests/harness/fs9p_msg.h"

static const char *scratch;		/* fuzzer-wide: made once */
static uint8_t *msgbuf, *outbuf;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	scratch = fs_fuzz_scratch();
	if (!scratch)
		abort();
	msgbuf = malloc(FS_FUSE_BUF_SIZE);
	outbuf = malloc(FS_FUSE_BUF_SIZE);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fs_fuzz_make_tree(scratch);
	char p[4096];
	snprintf(p, sizeof(p), "%s/t", scratch);
	struct fs_opts o;
	fs_opts_default(&o);
	o.max_path_fds = 8;	/* exercise eviction and re-resolution */
	o.read_only = size && (data[0] & 0x80);
	struct fs_server *s;
	if (fs_server_new(p, &o, &s) < 0)
		return 0;
	fuse_init_srv(s);
	size_t pos = 0;
	for (int n = 0; n < 64 && size - pos >= 3; n++) {
		size_t len = (size_t)data[pos] | (size_t)data[pos + 1] << 8;
		uint8_t fix = data[pos + 2];
		pos += 3;
		if (len > size - pos)
			len = size - pos;
		memcpy(msgbuf, data + pos, len);
		pos += len;
		if ((fix & 1) && len >= sizeof(struct fuse_in_header)) {
			uint32_t l = (uint32_t)len;
			memcpy(msgbuf, &l, sizeof(l));
		}
		/* Split input and output at fuzzer-chosen points sometimes. */
		size_t cut = len ? (fix >> 1) % (len + 1) : 0;
		struct iovec in[2] = { { msgbuf, cut }, { msgbuf + cut, len - cut } };
		size_t ocap = (fix & 0x40) ? 16 + (fix & 0x3f) * 8 : FS_FUSE_BUF_SIZE;
		struct iovec out[2] = { { outbuf, ocap / 2 }, { outbuf + ocap / 2, ocap - ocap / 2 } };
		ssize_t r = fs_fuse_handle(s, in, (fix & 2) ? 2 : 1, out, (fix & 4) ? 2 : 1);
		if (r > 0) {
			uint32_t rl;
			memcpy(&rl, outbuf, sizeof(rl));
			if ((size_t)r < 16 || (size_t)r > ocap || rl != (uint32_t)r)
				abort();	/* a reply of the wrong length */
		}
	}
	fs_server_free(s);
	return 0;
}
