/* tests/fuzz/fuzz_fs9p_fuse.c - libFuzzer over the FUSE message handlers.
 *
 * Each input is a sequence of requests run against a fresh server over a
 * small scratch tree: [u16 length][u8 fix][length bytes].  The bytes are a
 * raw fuse_in_header + body; when fix is odd the header's len field is set
 * to the real length so decoding gets past the first check.  INIT is sent
 * first so every opcode is reachable.  The scratch tree lives on a private
 * 32 MiB tmpfs when we may mount one (else RLIMIT_FSIZE caps file growth),
 * so the fuzzer cannot fill the disk.  When the first byte has bit 0x40
 * set, the server runs file I/O on an io_uring loop: up to NSLOTS requests
 * stay in flight at once (each with its own buffers) and every completion
 * is checked like a synchronous reply.  With bit 0x10, each request and
 * its reply room are cut into pieces of 1 to 16 bytes (a guest may cut a
 * chain anywhere: the header itself, a WRITE's payload, a READ's data,
 * more pieces than one preadv/pwritev takes).
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

#include "common/loop.h"
#include "fs9p/core.h"
#include "fs9p/fs.h"
#include "tests/harness/fs9p_msg.h"

#define NSLOTS 8
#define MSG_MAX 65536

/* One request's buffers, busy until its reply came. */
struct slot {
	uint8_t *msg, *out;
	size_t ocap;
	bool busy;
};

static const char *scratch;		/* fuzzer-wide: made once */
static struct slot slots[NSLOTS];	/* fuzzer-wide: allocated once */
static struct loop loop;		/* fuzzer-wide: one io_uring */

static void check_reply(const struct slot *sl, ssize_t r)
{
	if (r <= 0)
		return;
	uint32_t rl;
	memcpy(&rl, sl->out, sizeof(rl));
	if ((size_t)r < 16 || (size_t)r > sl->ocap || rl != (uint32_t)r)
		abort();	/* a reply of the wrong length */
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
		slots[i].msg = malloc(MSG_MAX);
		slots[i].out = malloc(FS_FUSE_BUF_SIZE);
		if (!slots[i].msg || !slots[i].out)
			abort();
	}
	if (loop_init(&loop, 64) < 0)
		abort();
	return 0;
}

#define MAX_PIECES 1100	/* past FS_AIO_MAX_IOV (260): the copying fallbacks too */
static struct iovec in_pieces[MAX_PIECES], out_pieces[MAX_PIECES];	/* fuzzer-wide: large */

/* buf[0..len) as pieces of `piece` bytes, the last MAX_PIECES-th taking
 * the rest: how many. */
static unsigned cut_pieces(struct iovec *v, uint8_t *buf, size_t len, size_t piece)
{
	unsigned k = 0;
	size_t off = 0;
	while (off < len && k < MAX_PIECES - 1) {
		size_t c = len - off < piece ? len - off : piece;
		v[k++] = (struct iovec){ buf + off, c };
		off += c;
	}
	if (off < len || k == 0)
		v[k++] = (struct iovec){ buf + off, len - off };
	return k;
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
	bool async = size && (data[0] & 0x40) && fs_server_attach_loop(s, &loop) == 0;
	s->aio_no_try = size && (data[0] & 0x20);	/* io_uring even for cached data */
	size_t pos = 0;
	for (int n = 0; n < 64 && size - pos >= 3; n++) {
		size_t len = (size_t)data[pos] | (size_t)data[pos + 1] << 8;
		uint8_t fix = data[pos + 2];
		pos += 3;
		if (len > size - pos)
			len = size - pos;
		struct slot *sl = NULL;
		for (int i = 0; i < NSLOTS && !sl; i++)
			sl = slots[i].busy ? NULL : &slots[i];
		if (!sl) {
			fs_server_drain(s);
			sl = &slots[0];
			if (sl->busy)
				abort();	/* drained but never completed */
		}
		uint8_t *msgbuf = sl->msg;
		memcpy(msgbuf, data + pos, len);
		pos += len;
		if ((fix & 1) && len >= sizeof(struct fuse_in_header)) {
			uint32_t l = (uint32_t)len;
			memcpy(msgbuf, &l, sizeof(l));
		}
		/* Split input and output at fuzzer-chosen points sometimes. */
		size_t cut = len ? (fix >> 1) % (len + 1) : 0;
		struct iovec in[2] = { { msgbuf, cut }, { msgbuf + cut, len - cut } };
		sl->ocap = (fix & 0x40) ? 16 + (fix & 0x3f) * 8 : FS_FUSE_BUF_SIZE;
		struct iovec out[2] = { { sl->out, sl->ocap / 2 },
					{ sl->out + sl->ocap / 2, sl->ocap - sl->ocap / 2 } };
		const struct iovec *inv = in, *outv = out;
		unsigned nin = (fix & 2) ? 2 : 1, nout = (fix & 4) ? 2 : 1;
		if (data[0] & 0x10) {
			nin = cut_pieces(in_pieces, msgbuf, len, (fix & 15u) + 1);
			nout = cut_pieces(out_pieces, sl->out, sl->ocap, (fix >> 4) + 1u);
			inv = in_pieces;
			outv = out_pieces;
		}
		sl->busy = true;
		ssize_t r = fs_fuse_handle_async(s, inv, nin, outv, nout, async ? slot_done : NULL, sl);
		if (r == FS_PENDING) {
			if (!async)
				abort();	/* pending without a completion */
			continue;
		}
		check_reply(sl, r);
		sl->busy = false;
	}
	fs_server_drain(s);
	for (int i = 0; i < NSLOTS; i++)
		if (slots[i].busy)
			abort();	/* a request never completed */
	fs_server_free(s);
	return 0;
}
