/* tests/unit/test_fs9p_fuse.c - the FUSE codec on hand-built messages:
 * well-formed operations do what the client expects, malformed ones get an
 * error reply of exactly header length, and nothing escapes the share. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "fs9p/fs.h"
#include "tests/harness/fs9p_msg.h"

struct fx {
	char *dir;
	struct fs_server *srv;
};

static struct fuse_rep rep;	/* large: keep it off the stack */

static int setup_opts(void **state, bool ro)
{
	struct fx *f = calloc(1, sizeof(*f));
	f->dir = fs_test_tmpdir();
	assert_non_null(f->dir);
	struct fs_opts o;
	fs_opts_default(&o);
	o.read_only = ro;
	o.cache = FS_CACHE_NONE;
	assert_int_equal(fs_server_new(f->dir, &o, &f->srv), 0);
	assert_int_equal(fuse_init_srv(f->srv), 0);
	*state = f;
	return 0;
}

static int setup(void **state) { return setup_opts(state, false); }
static int setup_ro(void **state) { return setup_opts(state, true); }

static int teardown(void **state)
{
	struct fx *f = *state;
	fs_server_free(f->srv);
	fs_test_rmrf(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

static void host_write(struct fx *f, const char *name, const char *data, mode_t mode)
{
	assert_int_equal(fs_test_write_file(f->dir, name, data, mode), 0);
}

static mode_t host_mode(struct fx *f, const char *name) { return fs_test_mode(f->dir, name); }

/* The mode the guest sees (GETATTR), 0 on error. */
static mode_t guest_mode(struct fx *f, uint64_t nodeid)
{
	struct fuse_rep r;
	fuse_call(f->srv, FUSE_GETATTR, nodeid, NULL, 0, NULL, 0, &r);
	struct fuse_attr_out ao;
	if (r.h.error || r.len < (ssize_t)(16 + sizeof(ao)))
		return 0;
	memcpy(&ao, r.body, sizeof(ao));
	return ao.attr.mode;
}

/* Error replies are exactly a header. */
static void assert_error(int err)
{
	assert_int_equal(rep.h.error, -err);
	assert_int_equal(rep.len, (ssize_t)sizeof(struct fuse_out_header));
	assert_int_equal(rep.h.len, sizeof(struct fuse_out_header));
}

static void test_init_rules(void **state)
{
	struct fx *f = *state;
	struct fs_server *s;
	struct fs_opts o;
	fs_opts_default(&o);
	assert_int_equal(fs_server_new(f->dir, &o, &s), 0);
	/* Anything before INIT is refused. */
	fuse_call(s, FUSE_GETATTR, 1, NULL, 0, NULL, 0, &rep);
	assert_error(EPROTO);
	/* A short INIT body. */
	fuse_call(s, FUSE_INIT, 0, "abc", 3, NULL, 0, &rep);
	assert_error(EINVAL);
	/* Wrong major. */
	struct fuse_init_in in = { .major = 6, .minor = 38 };
	fuse_call(s, FUSE_INIT, 0, &in, sizeof(in), NULL, 0, &rep);
	assert_error(EPROTO);
	in.major = 7;
	fuse_call(s, FUSE_INIT, 0, &in, sizeof(in), NULL, 0, &rep);
	assert_int_equal(rep.h.error, 0);
	assert_int_equal(rep.len, 16 + sizeof(struct fuse_init_out));
	struct fuse_init_out out;
	memcpy(&out, rep.body, sizeof(out));
	assert_int_equal(out.major, 7);
	assert_int_equal(out.max_write, FS_FUSE_MAX_WRITE);
	/* Only one INIT. */
	fuse_call(s, FUSE_INIT, 0, &in, sizeof(in), NULL, 0, &rep);
	assert_error(EPROTO);
	fs_server_free(s);
}

/* FUSE_OVER_IO_URING is accepted only when the transport asked for it
 * (fs_opts.fuse_uring) and the kernel offered it with FUSE_INIT_EXT. */
static void init_uring(struct fx *f, bool want, uint32_t flags, uint32_t flags2, bool agreed)
{
	struct fs_server *s;
	struct fs_opts o;
	fs_opts_default(&o);
	o.fuse_uring = want;
	assert_int_equal(fs_server_new(f->dir, &o, &s), 0);
	struct fuse_init_in in = { .major = 7, .minor = 42, .flags = flags, .flags2 = flags2 };
	fuse_call(s, FUSE_INIT, 0, &in, sizeof(in), NULL, 0, &rep);
	assert_int_equal(rep.h.error, 0);
	struct fuse_init_out out;
	memcpy(&out, rep.body, sizeof(out));
	assert_int_equal(!!(out.flags2 & (1u << 9)), agreed);
	assert_int_equal(!!(out.flags & FUSE_INIT_EXT), agreed);
	assert_int_equal(fs_fuse_uring_agreed(s), agreed);
	fs_server_free(s);
}

static void test_init_uring(void **state)
{
	struct fx *f = *state;
	init_uring(f, true, FUSE_INIT_EXT, 1u << 9, true);
	init_uring(f, false, FUSE_INIT_EXT, 1u << 9, false);	/* a virtio-fs device */
	init_uring(f, true, FUSE_INIT_EXT, 0, false);		/* not offered */
	init_uring(f, true, 0, 1u << 9, false);			/* flags2 without INIT_EXT */
}

static void test_malformed_headers(void **state)
{
	struct fx *f = *state;
	uint8_t out[64];
	struct iovec o = { out, sizeof(out) };
	/* Too short for a header. */
	uint8_t tiny[20] = { 20, 0, 0, 0, FUSE_GETATTR, 0, 0, 0, 7 };
	struct iovec i = { tiny, sizeof(tiny) };
	ssize_t n = fs_fuse_handle(f->srv, &i, 1, &o, 1);
	assert_int_equal(n, 16);
	struct fuse_out_header oh;
	memcpy(&oh, out, sizeof(oh));
	assert_int_equal(oh.error, -EINVAL);
	assert_int_equal(oh.unique, 7);
	/* Header claims more bytes than arrived. */
	struct fuse_in_header h = { .len = 4096, .opcode = FUSE_GETATTR, .unique = 9, .nodeid = 1 };
	i = (struct iovec){ &h, sizeof(h) };
	n = fs_fuse_handle(f->srv, &i, 1, &o, 1);
	assert_int_equal(n, 16);
	memcpy(&oh, out, sizeof(oh));
	assert_int_equal(oh.error, -EINVAL);
	/* ... or fewer than a header. */
	h.len = 10;
	n = fs_fuse_handle(f->srv, &i, 1, &o, 1);
	memcpy(&oh, out, sizeof(oh));
	assert_int_equal(oh.error, -EINVAL);
	/* Output too small for a header: no reply at all. */
	h.len = sizeof(h);
	struct iovec small = { out, 8 };
	assert_int_equal(fs_fuse_handle(f->srv, &i, 1, &small, 1), -EINVAL);
	/* Output too small for the body: error, header only. */
	struct iovec mid = { out, 24 };
	n = fs_fuse_handle(f->srv, &i, 1, &mid, 1);
	assert_int_equal(n, 16);
	memcpy(&oh, out, sizeof(oh));
	assert_int_equal(oh.error, -ERANGE);
	/* Unknown opcode and unknown node. */
	fuse_call(f->srv, 9999, 1, NULL, 0, NULL, 0, &rep);
	assert_error(ENOSYS);
	fuse_call(f->srv, FUSE_GETATTR, 123456, NULL, 0, NULL, 0, &rep);
	assert_error(ESTALE);
}

static void test_bad_names(void **state)
{
	struct fx *f = *state;
	fuse_call(f->srv, FUSE_LOOKUP, 1, "abc", 3, NULL, 0, &rep);	/* no NUL */
	assert_error(EINVAL);
	fuse_call(f->srv, FUSE_LOOKUP, 1, "", 1, NULL, 0, &rep);
	assert_error(EINVAL);
	fuse_call(f->srv, FUSE_LOOKUP, 1, "..", 3, NULL, 0, &rep);
	assert_error(EINVAL);
	fuse_call(f->srv, FUSE_LOOKUP, 1, ".", 2, NULL, 0, &rep);
	assert_error(EINVAL);
	fuse_call(f->srv, FUSE_LOOKUP, 1, "a/b", 4, NULL, 0, &rep);
	assert_error(EINVAL);
	char longname[300];
	memset(longname, 'x', sizeof(longname) - 1);
	longname[299] = 0;
	fuse_call(f->srv, FUSE_LOOKUP, 1, longname, sizeof(longname), NULL, 0, &rep);
	assert_error(ENAMETOOLONG);
	struct fuse_mkdir_in mi = { .mode = 0755 };
	fuse_call(f->srv, FUSE_MKDIR, 1, &mi, sizeof(mi), "../up", 6, &rep);
	assert_error(EINVAL);
	fuse_call(f->srv, FUSE_MKDIR, 1, &mi, 4, NULL, 0, &rep);	/* short body */
	assert_error(EINVAL);
	struct fuse_rename_in ri = { .newdir = 1 };
	fuse_call(f->srv, FUSE_RENAME, 1, &ri, sizeof(ri), "a\0..", 5, &rep);
	assert_error(EINVAL);
	fuse_call(f->srv, FUSE_SYMLINK, 1, "ok", 3, NULL, 0, &rep);	/* no target */
	assert_error(EINVAL);
}

static void test_create_write_read(void **state)
{
	struct fx *f = *state;
	struct fuse_create_in ci = { .flags = O_RDWR | O_CREAT, .mode = S_IFREG | 04755 };
	fuse_call(f->srv, FUSE_CREATE, 1, &ci, sizeof(ci), "f", 2, &rep);
	assert_int_equal(rep.h.error, 0);
	assert_int_equal(rep.len, 16 + sizeof(struct fuse_entry_out) + sizeof(struct fuse_open_out));
	struct fuse_entry_out e;
	struct fuse_open_out oo;
	memcpy(&e, rep.body, sizeof(e));
	memcpy(&oo, rep.body + sizeof(e), sizeof(oo));
	/* setuid never reaches the host; exec bits do; the guest sees what
	 * it asked for where the share takes user xattrs (the shadow). */
	bool shadow = fs_test_user_xattrs(f->dir);
	assert_int_equal(host_mode(f, "f") & 06000, 0);
	assert_int_equal(host_mode(f, "f") & 0777, 0755);
	assert_int_equal(e.attr.mode & 07777, shadow ? 04755 : 0755);
	assert_int_equal(guest_mode(f, e.nodeid) & 07777, shadow ? 04755 : 0755);
	struct fuse_write_in wi = { .fh = oo.fh, .offset = 0, .size = 5 };
	fuse_call(f->srv, FUSE_WRITE, e.nodeid, &wi, sizeof(wi), "hello", 5, &rep);
	assert_int_equal(rep.h.error, 0);
	struct fuse_write_out wo;
	memcpy(&wo, rep.body, sizeof(wo));
	assert_int_equal(wo.size, 5);
	assert_int_equal(guest_mode(f, e.nodeid) & 07777, 0755);	/* the write cleared it */
	assert_int_equal(host_mode(f, "f") & 07777, 0755);
	/* A write claiming more data than it carries. */
	wi.size = 100;
	fuse_call(f->srv, FUSE_WRITE, e.nodeid, &wi, sizeof(wi), "hello", 5, &rep);
	assert_error(EINVAL);
	struct fuse_read_in ri = { .fh = oo.fh, .offset = 1, .size = 100 };
	fuse_call(f->srv, FUSE_READ, e.nodeid, &ri, sizeof(ri), NULL, 0, &rep);
	assert_int_equal(rep.h.error, 0);
	assert_int_equal(rep.len, 16 + 4);
	assert_memory_equal(rep.body, "ello", 4);
	ri.fh = 999;
	fuse_call(f->srv, FUSE_READ, e.nodeid, &ri, sizeof(ri), NULL, 0, &rep);
	assert_error(EBADF);
	struct fuse_release_in rl = { .fh = oo.fh };
	fuse_call(f->srv, FUSE_RELEASE, e.nodeid, &rl, sizeof(rl), NULL, 0, &rep);
	assert_int_equal(rep.h.error, 0);
	fuse_call(f->srv, FUSE_RELEASE, e.nodeid, &rl, sizeof(rl), NULL, 0, &rep);
	assert_error(EBADF);
	/* chmod ug+s: the same */
	struct fuse_setattr_in sa = { .valid = FATTR_MODE, .mode = 06777 };
	fuse_call(f->srv, FUSE_SETATTR, e.nodeid, &sa, sizeof(sa), NULL, 0, &rep);
	assert_int_equal(rep.h.error, 0);
	struct fuse_attr_out ao;
	memcpy(&ao, rep.body, sizeof(ao));
	assert_int_equal(ao.attr.mode & 07777, shadow ? 06777 : 0777);
	assert_int_equal(host_mode(f, "f") & 06777, 0777);
	/* The shadow is the server's: the guest can neither read, list nor
	 * forge it. */
	struct fuse_getxattr_in gi = { .size = 64 };
	fuse_call(f->srv, FUSE_GETXATTR, e.nodeid, &gi, sizeof(gi), "user.kvmbox.mode", 17, &rep);
	assert_error(ENODATA);
	gi.size = 0;
	fuse_call(f->srv, FUSE_LISTXATTR, e.nodeid, &gi, sizeof(gi), NULL, 0, &rep);
	assert_int_equal(rep.h.error, 0);
	struct fuse_getxattr_out go;
	memcpy(&go, rep.body, sizeof(go));
	assert_int_equal(go.size, 0);
	host_write(f, "plain", "x", 0755);
	int64_t plain = fuse_lookup(f->srv, 1, "plain");
	struct fuse_setxattr_in si = { .size = 4 };
	uint8_t body[64];
	memcpy(body, &si, 8);
	memcpy(body + 8, "user.kvmbox.mode\0" "6000", 21);
	fuse_call(f->srv, FUSE_SETXATTR, (uint64_t)plain, body, 29, NULL, 0, &rep);
	assert_error(EOPNOTSUPP);
	/* chmod back: no shadow left, the host file unmarked */
	sa.mode = 0700;
	fuse_call(f->srv, FUSE_SETATTR, e.nodeid, &sa, sizeof(sa), NULL, 0, &rep);
	assert_int_equal(rep.h.error, 0);
	assert_int_equal(host_mode(f, "f") & 07777, 0700);
	assert_int_equal(guest_mode(f, e.nodeid) & 07777, 0700);
	/* sticky alone on a file is the host's own bit, shown as is */
	sa.mode = 01755;
	fuse_call(f->srv, FUSE_SETATTR, e.nodeid, &sa, sizeof(sa), NULL, 0, &rep);
	assert_int_equal(rep.h.error, 0);
	assert_int_equal(host_mode(f, "f") & 07777, 01755);
	assert_int_equal(guest_mode(f, e.nodeid) & 07777, 01755);
}

static void test_write_clears_setuid(void **state)
{
	struct fx *f = *state;
	host_write(f, "suid", "x", 04755);
	assert_int_equal(host_mode(f, "suid") & 07777, 04755);
	int64_t id = fuse_lookup(f->srv, 1, "suid");
	assert_true(id > 1);
	int64_t fh = fuse_open(f->srv, (uint64_t)id, O_WRONLY);
	assert_true(fh > 0);
	struct fuse_write_in wi = { .fh = (uint64_t)fh, .size = 1 };
	fuse_call(f->srv, FUSE_WRITE, (uint64_t)id, &wi, sizeof(wi), "y", 1, &rep);
	assert_int_equal(rep.h.error, 0);
	assert_int_equal(host_mode(f, "suid") & 07777, 0755);
	/* the same for bits the guest set (kept in the shadow) */
	struct fuse_setattr_in sa = { .valid = FATTR_MODE, .mode = 06755 };
	fuse_call(f->srv, FUSE_SETATTR, (uint64_t)id, &sa, sizeof(sa), NULL, 0, &rep);
	assert_int_equal(rep.h.error, 0);
	fh = fuse_open(f->srv, (uint64_t)id, O_WRONLY);
	assert_true(fh > 0);
	wi.fh = (uint64_t)fh;
	fuse_call(f->srv, FUSE_WRITE, (uint64_t)id, &wi, sizeof(wi), "z", 1, &rep);
	assert_int_equal(rep.h.error, 0);
	assert_int_equal(guest_mode(f, (uint64_t)id) & 07777, 0755);
	assert_int_equal(host_mode(f, "suid") & 07777, 0755);
	/* and truncate */
	fuse_call(f->srv, FUSE_SETATTR, (uint64_t)id, &sa, sizeof(sa), NULL, 0, &rep);
	struct fuse_setattr_in tr = { .valid = FATTR_SIZE, .size = 0 };
	fuse_call(f->srv, FUSE_SETATTR, (uint64_t)id, &tr, sizeof(tr), NULL, 0, &rep);
	assert_int_equal(rep.h.error, 0);
	struct fuse_attr_out ao;
	memcpy(&ao, rep.body, sizeof(ao));
	assert_int_equal(ao.attr.mode & 07777, 0755);
}

/* A virtio-fs chain arrives in pieces (a header, the arguments, one page
 * per buffer): a WRITE's payload is written from its pieces and a READ's
 * data lands in the reply's pieces, the header in front, whatever the cut
 * (more pieces than one preadv/pwritev takes included). */
static uint8_t big_in[1 << 20], big_out[1 << 20];

static ssize_t scattered_call(struct fx *f, uint32_t opcode, uint64_t nodeid, const void *arg,
			      size_t alen, size_t payload, size_t piece, size_t reply, size_t rpiece)
{
	static struct iovec in[1100], out[1100];
	static struct fuse_in_header h;
	h = (struct fuse_in_header){ .len = (uint32_t)(sizeof(h) + alen + payload),
				     .opcode = opcode, .unique = 77, .nodeid = nodeid };
	unsigned nin = 0, nout = 0;
	in[nin++] = (struct iovec){ &h, sizeof(h) };
	in[nin++] = (struct iovec){ (void *)arg, alen };
	for (size_t off = 0; off < payload; off += piece)
		in[nin++] = (struct iovec){ big_in + off, piece < payload - off ? piece : payload - off };
	for (size_t off = 0; off < reply; off += rpiece)
		out[nout++] = (struct iovec){ big_out + off, rpiece < reply - off ? rpiece : reply - off };
	return fs_fuse_handle(f->srv, in, nin, out, nout);
}

static void test_scattered_io(void **state)
{
	struct fx *f = *state;
	for (size_t i = 0; i < sizeof(big_in); i++)
		big_in[i] = (uint8_t)(i * 7 + i / 4093);
	struct fuse_create_in ci = { .flags = O_RDWR | O_CREAT, .mode = S_IFREG | 0644 };
	fuse_call(f->srv, FUSE_CREATE, 1, &ci, sizeof(ci), "big", 4, &rep);
	assert_int_equal(rep.h.error, 0);
	struct fuse_entry_out e;
	struct fuse_open_out oo;
	memcpy(&e, rep.body, sizeof(e));
	memcpy(&oo, rep.body + sizeof(e), sizeof(oo));
	/* 1 MiB in 4 KiB pages, then 300 KiB in 1000 pieces of 307 bytes */
	struct fuse_write_in wi = { .fh = oo.fh, .offset = 0, .size = 1 << 20 };
	ssize_t n = scattered_call(f, FUSE_WRITE, e.nodeid, &wi, sizeof(wi), wi.size, 4096,
				   sizeof(struct fuse_out_header) + sizeof(struct fuse_write_out), 64);
	assert_int_equal(n, sizeof(struct fuse_out_header) + sizeof(struct fuse_write_out));
	struct fuse_out_header oh;
	struct fuse_write_out wo;
	memcpy(&oh, big_out, sizeof(oh));
	memcpy(&wo, big_out + sizeof(oh), sizeof(wo));
	assert_int_equal(oh.error, 0);
	assert_int_equal(oh.unique, 77);
	assert_int_equal(wo.size, 1 << 20);
	wi = (struct fuse_write_in){ .fh = oo.fh, .offset = 1 << 20, .size = 307000 };
	n = scattered_call(f, FUSE_WRITE, e.nodeid, &wi, sizeof(wi), wi.size, 307, 64, 64);
	memcpy(&wo, big_out + sizeof(oh), sizeof(wo));
	assert_int_equal(wo.size, 307000);
	char path[4096];
	snprintf(path, sizeof(path), "%s/big", f->dir);
	static uint8_t host[(1 << 20) + 307000];
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, host, sizeof(host)), sizeof(host));
	close(fd);
	assert_memory_equal(host, big_in, 1 << 20);
	assert_memory_equal(host + (1 << 20), big_in, 307000);
	/* READ into 16 bytes of room (a header, no data), 1 MiB into 4 KiB
	 * pages, 100 KB into 1,100 pieces (past what one preadv takes), and
	 * 1 KiB into pieces of 8 bytes. */
	struct fuse_read_in ri = { .fh = oo.fh, .offset = 4096, .size = 1 << 20 };
	memset(big_out, 0xee, sizeof(big_out));
	n = scattered_call(f, FUSE_READ, e.nodeid, &ri, sizeof(ri), 0, 1, 16, 8);
	assert_int_equal(n, 16);	/* 8 + 8 bytes of room: a header and no data */
	n = scattered_call(f, FUSE_READ, e.nodeid, &ri, sizeof(ri), 0, 1, sizeof(big_out), 4096);
	assert_int_equal(n, sizeof(struct fuse_out_header) + sizeof(big_out) - 16);
	memcpy(&oh, big_out, sizeof(oh));
	assert_int_equal(oh.error, 0);
	assert_int_equal(oh.len, n);
	assert_int_equal(oh.unique, 77);
	assert_memory_equal(big_out + 16, host + 4096, sizeof(big_out) - 16);
	ri.size = 100000;
	memset(big_out, 0xee, sizeof(big_out));
	n = scattered_call(f, FUSE_READ, e.nodeid, &ri, sizeof(ri), 0, 1, 110000, 100);
	assert_int_equal(n, 16 + 100000);
	assert_memory_equal(big_out + 16, host + 4096, 100000);
	assert_int_equal(big_out[16 + 100000], 0xee);	/* nothing past the data */
	ri.size = 1024;		/* pieces of 8: the header itself in two */
	memset(big_out, 0xee, sizeof(big_out));
	n = scattered_call(f, FUSE_READ, e.nodeid, &ri, sizeof(ri), 0, 1, 16 + 1024, 8);
	assert_int_equal(n, 16 + 1024);
	memcpy(&oh, big_out, sizeof(oh));
	assert_int_equal(oh.len, 16 + 1024);
	assert_int_equal(oh.unique, 77);
	assert_memory_equal(big_out + 16, host + 4096, 1024);
}

/* The server clears set-user-ID on write itself (the client leaves it to
 * the server: FUSE_HANDLE_KILLPRIV_V2), also for a file written before a
 * chmod u+s through the same open handle. */
static void test_killpriv_v2(void **state)
{
	struct fx *f = *state;
	struct fs_server *s;
	struct fs_opts o;
	fs_opts_default(&o);
	assert_int_equal(fs_server_new(f->dir, &o, &s), 0);
	struct fuse_init_in in = { .major = 7, .minor = 38, .flags = FUSE_HANDLE_KILLPRIV_V2 };
	fuse_call(s, FUSE_INIT, 0, &in, sizeof(in), NULL, 0, &rep);
	struct fuse_init_out out;
	memcpy(&out, rep.body, sizeof(out));
	assert_true(out.flags & FUSE_HANDLE_KILLPRIV_V2);
	fs_server_free(s);
	if (!fs_test_user_xattrs(f->dir))
		skip();	/* the guest's set-user-ID bits live in a user xattr */
	host_write(f, "g", "x", 0755);
	int64_t id = fuse_lookup(f->srv, 1, "g");
	int64_t fh = fuse_open(f->srv, (uint64_t)id, O_WRONLY);
	assert_true(fh > 0);
	struct fuse_write_in wi = { .fh = (uint64_t)fh, .size = 1,
				    .write_flags = FUSE_WRITE_KILL_SUIDGID };
	fuse_call(f->srv, FUSE_WRITE, (uint64_t)id, &wi, sizeof(wi), "y", 1, &rep);
	assert_int_equal(rep.h.error, 0);
	struct fuse_setattr_in sa = { .valid = FATTR_MODE, .mode = 04755 };
	fuse_call(f->srv, FUSE_SETATTR, (uint64_t)id, &sa, sizeof(sa), NULL, 0, &rep);
	assert_int_equal(guest_mode(f, (uint64_t)id) & 07777, 04755);
	fuse_call(f->srv, FUSE_WRITE, (uint64_t)id, &wi, sizeof(wi), "z", 1, &rep);
	assert_int_equal(rep.h.error, 0);
	assert_int_equal(guest_mode(f, (uint64_t)id) & 07777, 0755);
}

static void test_no_special_files(void **state)
{
	struct fx *f = *state;
	struct fuse_mknod_in mi = { .mode = S_IFCHR | 0666, .rdev = makedev(1, 3) };
	fuse_call(f->srv, FUSE_MKNOD, 1, &mi, sizeof(mi), "null", 5, &rep);
	assert_error(EPERM);
	mi.mode = S_IFBLK | 0666;
	fuse_call(f->srv, FUSE_MKNOD, 1, &mi, sizeof(mi), "blk", 4, &rep);
	assert_error(EPERM);
	/* FIFOs and sockets (git's fsmonitor, language servers, test suites
	 * make them): created, with the mode asked for */
	mi.mode = S_IFIFO | 0666;
	fuse_call(f->srv, FUSE_MKNOD, 1, &mi, sizeof(mi), "fifo", 5, &rep);
	assert_int_equal(rep.h.error, 0);
	assert_true(S_ISFIFO(host_mode(f, "fifo")));
	mi.mode = S_IFSOCK | 0755;
	fuse_call(f->srv, FUSE_MKNOD, 1, &mi, sizeof(mi), "sock", 5, &rep);
	assert_int_equal(rep.h.error, 0);
	assert_true(S_ISSOCK(host_mode(f, "sock")));
	mi.mode = S_IFIFO | 04666;	/* nothing executes a FIFO: as asked */
	fuse_call(f->srv, FUSE_MKNOD, 1, &mi, sizeof(mi), "fifo2", 6, &rep);
	assert_int_equal(rep.h.error, 0);
	assert_int_equal(host_mode(f, "fifo2") & 07777, 04666);
	mi.mode = S_IFREG | 02644;	/* a file's setgid: the shadow's */
	fuse_call(f->srv, FUSE_MKNOD, 1, &mi, sizeof(mi), "reg", 4, &rep);
	assert_int_equal(rep.h.error, 0);
	assert_true(S_ISREG(host_mode(f, "reg")));
	assert_int_equal(host_mode(f, "reg") & 06000, 0);
	struct fuse_entry_out me;
	memcpy(&me, rep.body, sizeof(me));
	assert_int_equal(me.attr.mode & 07777, fs_test_user_xattrs(f->dir) ? 02644 : 0644);
	/* A FIFO already on the host is never opened (no hang, no I/O). */
	char p[4096];
	snprintf(p, sizeof(p), "%s/hostfifo", f->dir);
	assert_int_equal(mkfifo(p, 0666), 0);
	int64_t id = fuse_lookup(f->srv, 1, "hostfifo");
	assert_true(id > 1);
	assert_int_equal(fuse_open(f->srv, (uint64_t)id, O_RDONLY), -EACCES);
	/* RENAME_WHITEOUT would make a device node. */
	struct fuse_rename2_in r2 = { .newdir = 1, .flags = 4 /* RENAME_WHITEOUT */ };
	fuse_call(f->srv, FUSE_RENAME2, 1, &r2, sizeof(r2), "reg\0reg2", 9, &rep);
	assert_error(EINVAL);
}

/* The mode the guest asked for (its kernel applied its umask) is what the
 * host gets, whatever the server's own umask. */
static void test_modes_not_narrowed(void **state)
{
	struct fx *f = *state;
	mode_t old = umask(077);	/* a server started under a strict umask */
	fs_server_free(f->srv);
	struct fs_opts o;
	fs_opts_default(&o);
	o.cache = FS_CACHE_NONE;
	assert_int_equal(fs_server_new(f->dir, &o, &f->srv), 0);
	assert_int_equal(fuse_init_srv(f->srv), 0);
	struct fuse_mkdir_in md = { .mode = 0775 };
	fuse_call(f->srv, FUSE_MKDIR, 1, &md, sizeof(md), "d", 2, &rep);
	assert_int_equal(rep.h.error, 0);
	assert_int_equal(host_mode(f, "d") & 07777, 0775);
	struct fuse_create_in ci = { .flags = O_WRONLY, .mode = 0755 };
	fuse_call(f->srv, FUSE_CREATE, 1, &ci, sizeof(ci), "run.sh", 7, &rep);
	assert_int_equal(rep.h.error, 0);
	assert_int_equal(host_mode(f, "run.sh") & 07777, 0755);
	struct fuse_mknod_in mi = { .mode = S_IFIFO | 0664 };
	fuse_call(f->srv, FUSE_MKNOD, 1, &mi, sizeof(mi), "p", 2, &rep);
	assert_int_equal(rep.h.error, 0);
	assert_int_equal(host_mode(f, "p") & 07777, 0664);
	umask(old);
}

/* fallocate in every mode clears setuid and setgid, as a write does. */
static void test_fallocate_clears_privs(void **state)
{
	struct fx *f = *state;
	static const int modes[] = { 0, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				     FALLOC_FL_ZERO_RANGE };
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		char name[16];
		snprintf(name, sizeof(name), "suid%zu", i);
		host_write(f, name, "0123456789", 06755);
		int64_t id = fuse_lookup(f->srv, 1, name);
		assert_true(id > 1);
		int64_t fh = fuse_open(f->srv, (uint64_t)id, O_RDWR);
		assert_true(fh >= 0);
		struct fuse_fallocate_in fa = { .fh = (uint64_t)fh, .offset = 0, .length = 4, .mode = (uint32_t)modes[i] };
		fuse_call(f->srv, FUSE_FALLOCATE, (uint64_t)id, &fa, sizeof(fa), NULL, 0, &rep);
		if (rep.h.error == -EOPNOTSUPP)
			continue;	/* this file system lacks the mode: nothing changed */
		assert_int_equal(rep.h.error, 0);
		assert_int_equal(host_mode(f, name) & 07777, 0755);
	}
}

static void test_symlinks_not_followed(void **state)
{
	struct fx *f = *state;
	char p[4096];
	snprintf(p, sizeof(p), "%s/abs", f->dir);
	assert_int_equal(symlink("/etc", p), 0);
	snprintf(p, sizeof(p), "%s/rel", f->dir);
	assert_int_equal(symlink("../../../../../../etc", p), 0);
	snprintf(p, sizeof(p), "%s/passwd", f->dir);
	assert_int_equal(symlink("/etc/passwd", p), 0);
	const char *links[] = { "abs", "rel" };
	for (int i = 0; i < 2; i++) {
		int64_t id = fuse_lookup(f->srv, 1, links[i]);
		assert_true(id > 1);
		/* A symlink is not a directory to look names up in. */
		assert_int_equal(fuse_lookup(f->srv, (uint64_t)id, "passwd"), -ENOTDIR);
		struct fuse_open_in oi = { 0 };
		fuse_call(f->srv, FUSE_OPENDIR, (uint64_t)id, &oi, sizeof(oi), NULL, 0, &rep);
		assert_error(ENOTDIR);
	}
	int64_t id = fuse_lookup(f->srv, 1, "passwd");
	assert_int_equal(fuse_open(f->srv, (uint64_t)id, O_RDONLY), -ELOOP);
	fuse_call(f->srv, FUSE_READLINK, (uint64_t)id, NULL, 0, NULL, 0, &rep);
	assert_int_equal(rep.h.error, 0);
	assert_int_equal(rep.len, 16 + strlen("/etc/passwd"));
	assert_memory_equal(rep.body, "/etc/passwd", strlen("/etc/passwd"));
	/* CREATE over an existing symlink fails closed. */
	struct fuse_create_in ci = { .flags = O_RDWR | O_CREAT, .mode = S_IFREG | 0644 };
	fuse_call(f->srv, FUSE_CREATE, 1, &ci, sizeof(ci), "passwd", 7, &rep);
	assert_int_equal(rep.h.error, -ELOOP);
}

static void test_readdir(void **state)
{
	struct fx *f = *state;
	char name[32];
	for (int i = 0; i < 100; i++) {
		snprintf(name, sizeof(name), "file%03d", i);
		host_write(f, name, "x", 0644);
	}
	struct fuse_open_in oi = { 0 };
	fuse_call(f->srv, FUSE_OPENDIR, 1, &oi, sizeof(oi), NULL, 0, &rep);
	assert_int_equal(rep.h.error, 0);
	struct fuse_open_out oo;
	memcpy(&oo, rep.body, sizeof(oo));
	int seen = 0;
	uint64_t off = 0;
	for (int round = 0; round < 200; round++) {
		struct fuse_read_in ri = { .fh = oo.fh, .offset = off, .size = 300 };
		fuse_call(f->srv, round & 1 ? FUSE_READDIRPLUS : FUSE_READDIR, 1, &ri, sizeof(ri),
			  NULL, 0, &rep);
		assert_int_equal(rep.h.error, 0);
		size_t len = (size_t)rep.len - 16, pos = 0;
		assert_true(len <= 300);
		if (!len)
			break;
		while (pos < len) {
			struct fuse_dirent d;
			size_t hdr = (round & 1) ? sizeof(struct fuse_entry_out) : 0;
			memcpy(&d, rep.body + pos + hdr, sizeof(d));
			assert_true(d.namelen > 0 && d.namelen <= 255);
			if (!strncmp((char *)rep.body + pos + hdr + sizeof(d), "file", 4))
				seen++;
			off = d.off;
			pos += FUSE_DIRENT_ALIGN(hdr + sizeof(d) + d.namelen);
		}
		assert_int_equal(pos, len);
	}
	assert_int_equal(seen, 100);
}

static void test_xattrs_user_only(void **state)
{
	struct fx *f = *state;
	host_write(f, "x", "x", 0644);
	int64_t id = fuse_lookup(f->srv, 1, "x");
	struct fuse_setxattr_in si = { .size = 3 };
	uint8_t body[64];
	memcpy(body, &si, 8);
	memcpy(body + 8, "trusted.evil\0abc", 16);
	fuse_call(f->srv, FUSE_SETXATTR, (uint64_t)id, body, 24, NULL, 0, &rep);
	assert_error(EOPNOTSUPP);
	memcpy(body + 8, "security.capability\0abc", 23);
	fuse_call(f->srv, FUSE_SETXATTR, (uint64_t)id, body, 31, NULL, 0, &rep);
	assert_error(EOPNOTSUPP);
	/* Value size larger than the message. */
	si.size = 1000;
	memcpy(body, &si, 8);
	memcpy(body + 8, "user.k\0abc", 10);
	fuse_call(f->srv, FUSE_SETXATTR, (uint64_t)id, body, 18, NULL, 0, &rep);
	assert_error(EINVAL);
	si.size = 3;
	memcpy(body, &si, 8);
	fuse_call(f->srv, FUSE_SETXATTR, (uint64_t)id, body, 18, NULL, 0, &rep);
	if (rep.h.error == -EOPNOTSUPP)
		return;		/* host filesystem without user xattrs */
	assert_int_equal(rep.h.error, 0);
	struct fuse_getxattr_in gi = { .size = 64 };
	fuse_call(f->srv, FUSE_GETXATTR, (uint64_t)id, &gi, sizeof(gi), "user.k", 7, &rep);
	assert_int_equal(rep.h.error, 0);
	assert_int_equal(rep.len, 16 + 3);
	fuse_call(f->srv, FUSE_GETXATTR, (uint64_t)id, &gi, sizeof(gi), "security.selinux", 17, &rep);
	assert_error(ENODATA);
	gi.size = 0;
	fuse_call(f->srv, FUSE_LISTXATTR, (uint64_t)id, &gi, sizeof(gi), NULL, 0, &rep);
	assert_int_equal(rep.h.error, 0);
	struct fuse_getxattr_out go;
	memcpy(&go, rep.body, sizeof(go));
	assert_int_equal(go.size, 7);	/* "user.k\0" */
}

static void test_read_only(void **state)
{
	struct fx *f = *state;
	host_write(f, "ro", "data", 0644);
	int64_t id = fuse_lookup(f->srv, 1, "ro");
	assert_true(id > 1);
	assert_int_equal(fuse_open(f->srv, (uint64_t)id, O_RDWR), -EROFS);
	assert_int_equal(fuse_open(f->srv, (uint64_t)id, O_RDONLY | O_TRUNC), -EROFS);
	assert_true(fuse_open(f->srv, (uint64_t)id, O_RDONLY) > 0);
	struct fuse_mkdir_in mi = { .mode = 0755 };
	fuse_call(f->srv, FUSE_MKDIR, 1, &mi, sizeof(mi), "d", 2, &rep);
	assert_error(EROFS);
	struct fuse_create_in ci = { .flags = O_WRONLY | O_CREAT, .mode = S_IFREG | 0644 };
	fuse_call(f->srv, FUSE_CREATE, 1, &ci, sizeof(ci), "new", 4, &rep);
	assert_error(EROFS);
	fuse_call(f->srv, FUSE_UNLINK, 1, "ro", 3, NULL, 0, &rep);
	assert_error(EROFS);
	struct fuse_setattr_in sa = { .valid = FATTR_SIZE, .size = 0 };
	fuse_call(f->srv, FUSE_SETATTR, (uint64_t)id, &sa, sizeof(sa), NULL, 0, &rep);
	assert_error(EROFS);
	assert_int_equal(host_mode(f, "ro") & 0777, 0644);
}

static void test_forget(void **state)
{
	struct fx *f = *state;
	host_write(f, "a", "x", 0644);
	int64_t id = fuse_lookup(f->srv, 1, "a");
	struct fs_stats st;
	fs_get_stats(f->srv, &st);
	assert_int_equal(st.inodes, 2);
	/* BATCH_FORGET with a count larger than its body: no reply, no crash. */
	uint8_t body[8 + 16];
	struct fuse_batch_forget_in bi = { .count = 1000000 };
	struct fuse_forget_one one = { .nodeid = (uint64_t)id, .nlookup = 1 };
	memcpy(body, &bi, 8);
	memcpy(body + 8, &one, 16);
	fuse_call(f->srv, FUSE_BATCH_FORGET, 0, body, sizeof(body), NULL, 0, &rep);
	assert_int_equal(rep.len, 0);
	fs_get_stats(f->srv, &st);
	assert_int_equal(st.inodes, 1);
	/* Forgetting the root or an unknown node changes nothing. */
	struct fuse_forget_in fi = { .nlookup = 100 };
	fuse_call(f->srv, FUSE_FORGET, 1, &fi, sizeof(fi), NULL, 0, &rep);
	fuse_call(f->srv, FUSE_FORGET, 77777, &fi, sizeof(fi), NULL, 0, &rep);
	assert_int_equal(rep.len, 0);
	fuse_call(f->srv, FUSE_GETATTR, 1, NULL, 0, NULL, 0, &rep);
	assert_int_equal(rep.h.error, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_init_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_init_uring, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed_headers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_create_write_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_clears_setuid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scattered_io, setup, teardown),
		cmocka_unit_test_setup_teardown(test_killpriv_v2, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_special_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_modes_not_narrowed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fallocate_clears_privs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_symlinks_not_followed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_readdir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_xattrs_user_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_only, setup_ro, teardown),
		cmocka_unit_test_setup_teardown(test_forget, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
