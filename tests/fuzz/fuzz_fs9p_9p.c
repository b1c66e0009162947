/* tests/fuzz/fuzz_fs9p_9p.c - libFuzzer over the 9P2000.L handlers.
 *
 * Each input is a sequence of T-messages, [u16 length][u8 fix][bytes], run
 * in a fresh session (Tversion and Tattach of fid 1 done first) on a fresh
 * server over a small scratch tree; when fix is odd the size field is set
 * to the real length.  The scratch tree lives on a private 32 MiB tmpfs
 * when we may mount one (ENOSPC bounds growth), else RLIMIT_FSIZE does.  Any
 * reply whose size field differs from its length aborts.
 */
#include <fcntl.h>
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
	msgbuf = malloc(FS_9P_MAX_MSIZE);
	outbuf = malloc(FS_9P_MAX_MSIZE);
	return 0;
}

static void send(struct fs_9p_session *ss, const uint8_t *m, size_t len, size_t cap)
{
	ssize_t r = fs_9p_handle(ss, m, len, outbuf, cap);
	if (r > 0) {
		uint32_t sz;
		memcpy(&sz, outbuf, 4);
		if (sz != (uint32_t)r || (size_t)r > cap)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fs_fuzz_make_tree(scratch);
	char p[4096];
	snprintf(p, sizeof(p), "%s/t", scratch);
	struct fs_opts o;
	fs_opts_default(&o);
	o.max_path_fds = 8;
	o.read_only = size && (data[0] & 0x80);
	struct fs_server *s;
	if (fs_server_new(p, &o, &s) < 0)
		return 0;
	struct fs_9p_session *ss = fs_9p_session_new(s);
	static const uint8_t version[] = { 21, 0, 0, 0, 100, 0xff, 0xff, 0, 0, 1, 0,
					   8, 0, '9', 'P', '2', '0', '0', '0', '.', 'L' };
	static const uint8_t attach[] = { 23, 0, 0, 0, 104, 1, 0, 1, 0, 0, 0, 0xff, 0xff, 0xff,
					  0xff, 0, 0, 0, 0, 0, 0, 0, 0 };
	send(ss, version, sizeof(version), FS_9P_MAX_MSIZE);
	send(ss, attach, sizeof(attach), FS_9P_MAX_MSIZE);
	size_t pos = 0;
	for (int n = 0; n < 64 && size - pos >= 3; n++) {
		size_t len = (size_t)data[pos] | (size_t)data[pos + 1] << 8;
		uint8_t fix = data[pos + 2];
		pos += 3;
		if (len > size - pos)
			len = size - pos;
		memcpy(msgbuf, data + pos, len);
		pos += len;
		if ((fix & 1) && len >= 4) {
			uint32_t l = (uint32_t)len;
			memcpy(msgbuf, &l, 4);
		}
		size_t cap = (fix & 0x40) ? 11 + (fix & 0x3f) * 4 : FS_9P_MAX_MSIZE;
		send(ss, msgbuf, len, cap);
	}
	fs_9p_session_free(ss);
	fs_server_free(s);
	return 0;
}
