/* tests/fuzz/fuzz_fs9p_9p.c - libFuzzer over the 9P2000.L handlers.
 *
 * Each input is a sequence of T-messages, [u16 length][u8 fix][bytes], run
 * in a fresh session (Tversion and Tattach of fid 1 done first) on a fresh
 * server over a small scratch tree; when fix is odd the size field is set
 * to the real length.  The scratch tree lives on a private 32 MiB tmpfs
 * when we may mount one (ENOSPC bounds growth), else RLIMIT_FSIZE does.  Any
 * reply whose size field differs from its length aborts.  When the first
 * byte has bit 0x40 set, Tread/Twrite/Tfsync run on an io_uring loop with
 * up to NSLOTS messages in flight (each with its own buffers), and the
 * session ends before they complete.
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

#include "common/loop.h"
#include "fs9p/core.h"
#include "fs9p/fs.h"
#include "tests/harness/fs9p_msg.h"

#define NSLOTS 8

/* One message's buffers, busy until its reply came. */
struct slot {
	uint8_t *msg, *out;
	size_t cap;
	bool busy;
};

static const char *scratch;		/* fuzzer-wide: made once */
static struct slot slots[NSLOTS];	/* fuzzer-wide: allocated once */
static struct loop loop;		/* fuzzer-wide: one io_uring */

static void check_reply(const struct slot *sl, ssize_t r)
{
	if (r <= 0)
		return;
	uint32_t sz;
	memcpy(&sz, sl->out, 4);
	if (sz != (uint32_t)r || (size_t)r > sl->cap)
		abort();
}

static void slot_done(void *ctx, ssize_t r)
{
	struct slot *sl = ctx;
	if (!sl->busy)
		abort();	/* completed twice */
	check_reply(sl, r);
	sl->busy = false;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	scratch = fs_fuzz_scratch();
	if (!scratch)
		abort();
	for (int i = 0; i < NSLOTS; i++) {
		slots[i].msg = malloc(FS_9P_MAX_MSIZE);
		slots[i].out = malloc(FS_9P_MAX_MSIZE);
		if (!slots[i].msg || !slots[i].out)
			abort();
	}
	if (loop_init(&loop, 64) < 0)
		abort();
	return 0;
}

/* A free slot, waiting for completions when all are in flight. */
static struct slot *slot_get(struct fs_server *s)
{
	for (int i = 0; i < NSLOTS; i++)
		if (!slots[i].busy)
			return &slots[i];
	fs_server_drain(s);
	if (slots[0].busy)
		abort();	/* drained but never completed */
	return &slots[0];
}

/* Send sl->msg[0..len) with reply room cap. */
static void send_msg(struct fs_9p_session *ss, struct slot *sl, size_t len, size_t cap, bool async)
{
	sl->cap = cap;
	sl->busy = true;
	ssize_t r = fs_9p_handle_async(ss, sl->msg, len, sl->out, cap, async ? slot_done : NULL, sl);
	if (r == FS_PENDING) {
		if (!async)
			abort();	/* pending without a completion */
		return;
	}
	check_reply(sl, r);
	sl->busy = false;
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
	bool async = size && (data[0] & 0x40) && fs_server_attach_loop(s, &loop) == 0;
	s->aio_no_try = size && (data[0] & 0x20);	/* io_uring even for cached data */
	memcpy(slots[0].msg, version, sizeof(version));
	send_msg(ss, &slots[0], sizeof(version), FS_9P_MAX_MSIZE, false);
	memcpy(slots[0].msg, attach, sizeof(attach));
	send_msg(ss, &slots[0], sizeof(attach), FS_9P_MAX_MSIZE, false);
	size_t pos = 0;
	for (int n = 0; n < 64 && size - pos >= 3; n++) {
		size_t len = (size_t)data[pos] | (size_t)data[pos + 1] << 8;
		uint8_t fix = data[pos + 2];
		pos += 3;
		if (len > size - pos)
			len = size - pos;
		struct slot *sl = slot_get(s);
		memcpy(sl->msg, data + pos, len);
		pos += len;
		if ((fix & 1) && len >= 4) {
			uint32_t l = (uint32_t)len;
			memcpy(sl->msg, &l, 4);
		}
		size_t cap = (fix & 0x40) ? 11 + (fix & 0x3f) * 4 : FS_9P_MAX_MSIZE;
		send_msg(ss, sl, len, cap, async);
	}
	fs_9p_session_free(ss);	/* with requests maybe still in flight */
	fs_server_free(s);	/* completes them */
	for (int i = 0; i < NSLOTS; i++)
		if (slots[i].busy)
			abort();	/* a request never completed */
	return 0;
}
