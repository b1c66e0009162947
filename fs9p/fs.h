/* fs9p/fs.h - the host file server's public interface.
 *
 * One passthrough core (fs9p/core.c) serves one host directory; codecs turn
 * wire messages into core calls: FUSE (fs9p/fuse.c, for virtio-fs and for
 * /dev/fuse) and, later, 9P2000.L.  The caller owns the transport: it hands
 * a request as an iovec array and gets the reply written into another, so
 * virtio devices and host transports share every line of protocol code.
 *
 * The server is single-threaded: one fs_server is used from one thread (the
 * event loop), and by one client protocol at a time (a FUSE reset or
 * DESTROY drops every inode, which 9P fids on the same server would still
 * name): give each device or transport its own fs_server.  Every name a message carries is resolved beneath the share
 * root with openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | ...) from a
 * held directory fd; see docs/fs9p.md for the security model.
 */
#ifndef KVMBOX_FS9P_FS_H
#define KVMBOX_FS9P_FS_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

struct fs_server;
struct loop;

/* How long the client may cache names and attributes. */
enum fs_cache {
	FS_CACHE_NONE,		/* no caching: every access asks the server */
	FS_CACHE_AUTO,		/* 1 s timeouts; page cache dropped on open */
	FS_CACHE_ALWAYS,	/* long timeouts; page cache kept across opens */
};

struct fs_opts {
	bool read_only;		/* refuse every change with EROFS */
	enum fs_cache cache;
	/* Identity mapping: host_uid (the invoking user) appears to the client
	 * as guest_uid (root by default) and the other way round; all other
	 * ids pass through.  Files are created by the server process, so they
	 * belong to the invoking host user. */
	uint32_t host_uid, host_gid;
	uint32_t guest_uid, guest_gid;
	/* Most O_PATH fds the inode cache keeps open; 0: half of RLIMIT_NOFILE. */
	unsigned max_path_fds;
	/* FUSE: accept FUSE_OVER_IO_URING when the kernel offers it (only for
	 * a transport that then serves the kernel's io_uring queues). */
	bool fuse_uring;
	/* Names the client never sees (NULL-terminated, borrowed): "GLOB" for
	 * a name anywhere, "DIRGLOB/GLOB" for a name in a folder so named.
	 * Not found, not listed, not creatable; see fs9p/core.c. */
	const char *const *hidden;
};

/* Defaults: read-write, cache auto, host ids = getuid()/getgid() shown as 0. */
void fs_opts_default(struct fs_opts *o);

/* Serve directory dir.  0 or -errno. */
int fs_server_new(const char *dir, const struct fs_opts *o, struct fs_server **out);
void fs_server_free(struct fs_server *srv);

/* Snapshots (fs9p/snapshot.c): what a FUSE client's session holds of the
 * server, for a VM snapshot.  Inodes are kept by parent and name and
 * resolved again beneath the root when first used (ESTALE when the name
 * now means another file or none); handles are reopened at once (EBADF
 * when their file is gone).  save: into buf (cap bytes), *len set; -EFBIG
 * when it does not fit, -EBUSY with I/O in flight.  restore: into a
 * server just made for the same folder, before any request; -EINVAL for
 * bytes that are not a table this server could have built (another
 * folder, a cycle, a hidden name, a writable handle on a read-only
 * share...), the server then as it was made. */
int fs_snapshot_save(struct fs_server *srv, void *buf, size_t cap, size_t *len);
int fs_snapshot_restore(struct fs_server *srv, const void *buf, size_t len);

/* Counters for tests and diagnostics. */
struct fs_stats {
	unsigned inodes;	/* inodes the client references */
	unsigned path_fds;	/* O_PATH fds held by the inode cache */
	unsigned files;		/* open file and directory handles */
	uint64_t neg_hits;	/* lookups answered by the negative cache */
};
void fs_get_stats(const struct fs_server *srv, struct fs_stats *st);

/* ---- asynchronous requests ---------------------------------------------
 *
 * With a loop attached, file I/O (FUSE READ, WRITE, FSYNC, FALLOCATE; 9P
 * Tread, Twrite, Tfsync) runs on io_uring and its reply is completed later,
 * so a slow read never holds up a stat (a READ/WRITE that completes
 * without waiting, e.g. from the page cache, is answered at once).  Everything else still completes
 * before the call returns.  The *_async entry points return the reply
 * length (or 0: no reply) when the request completed at once, or
 * FS_PENDING: then done(ctx, len) is called exactly once, later, on the
 * loop thread, with what the synchronous call would have returned, and
 * until then the request and reply buffers (not the iovec arrays, which
 * are copied) must stay valid and untouched.  done may submit new
 * requests.  At most FS_AIO_SLOTS requests per server are in flight; past
 * that a request is served synchronously (transports should stop reading
 * before that: see fs_server_inflight).  A reset, DESTROY or session end
 * does not cancel requests in flight: their done still comes. */
#define FS_PENDING (-EINPROGRESS)
#define FS_AIO_SLOTS 64		/* requests of one server in flight, at most */
typedef void (*fs_done_fn)(void *ctx, ssize_t len);

/* Run file I/O on loop (the thread that calls the handlers runs it).
 * 0 or -errno.  Without it every request completes synchronously. */
int fs_server_attach_loop(struct fs_server *srv, struct loop *loop);
/* Requests of this server in flight on the loop. */
unsigned fs_server_inflight(const struct fs_server *srv);
/* Run the loop until no request of this server is in flight (their done
 * callbacks run, and so does anything else on the loop).  Call it from
 * outside loop callbacks, before freeing the buffers handed to *_async;
 * fs_server_free() calls it too. */
void fs_server_drain(struct fs_server *srv);

/* FUSE: largest WRITE payload negotiated, and the buffer a transport must
 * offer for one request (and for one reply). */
#define FS_FUSE_MAX_WRITE (1u << 20)
#define FS_FUSE_BUF_SIZE (FS_FUSE_MAX_WRITE + 4096u)

/* Handle one FUSE request (fuse_in_header + body) spread over in[0..nin),
 * writing the reply (fuse_out_header + body) into out[0..nout).  Returns the
 * reply length (>= 16), 0 when the request takes no reply (FORGET,
 * BATCH_FORGET, INTERRUPT), or -EINVAL when out cannot hold even a reply
 * header.  A malformed request gets an error reply, never a crash. */
ssize_t fs_fuse_handle(struct fs_server *srv, const struct iovec *in, unsigned nin,
		       const struct iovec *out, unsigned nout);

/* fs_fuse_handle, with file I/O completed asynchronously when done is
 * non-NULL and a loop is attached (see above).  Same return values, plus
 * FS_PENDING. */
ssize_t fs_fuse_handle_async(struct fs_server *srv, const struct iovec *in, unsigned nin,
			     const struct iovec *out, unsigned nout, fs_done_fn done, void *ctx);

/* Write one line per FUSE opcode the client sent ("GETATTR 1234") to fd:
 * what the kernel asks for, for tuning and for `fs-serve --stats`. */
void fs_fuse_print_stats(const struct fs_server *srv, int fd);

/* The client went away (virtio-fs device reset): drop every reference and
 * open handle and expect a new INIT. */
void fs_fuse_reset(struct fs_server *srv);

/* True once the client sent DESTROY (the /dev/fuse transport stops then). */
bool fs_fuse_destroyed(const struct fs_server *srv);

/* True once INIT agreed on FUSE over io_uring (opts.fuse_uring and the
 * kernel offered it). */
bool fs_fuse_uring_agreed(const struct fs_server *srv);

/* 9P2000.L: one session per connection (its msize and fid table). */
struct fs_9p_session;
#define FS_9P_MAX_MSIZE (FS_FUSE_MAX_WRITE + 4096u)
struct fs_9p_session *fs_9p_session_new(struct fs_server *srv);
/* Clunks every fid (closing files, dropping references). */
void fs_9p_session_free(struct fs_9p_session *ss);
/* Handle one T-message msg[0..len) (size field included), writing the
 * R-message into out[0..out_cap).  Returns the reply length or -EINVAL when
 * out_cap cannot hold an Rlerror.  Malformed messages get Rlerror. */
ssize_t fs_9p_handle(struct fs_9p_session *ss, const uint8_t *msg, size_t len, uint8_t *out,
		     size_t out_cap);

/* fs_9p_handle, with Tread/Twrite/Tfsync completed asynchronously when
 * done is non-NULL and a loop is attached.  Same return values, plus
 * FS_PENDING.  A Tflush naming a request in flight is itself answered
 * (done called) right after that request's reply, as 9P requires. */
ssize_t fs_9p_handle_async(struct fs_9p_session *ss, const uint8_t *msg, size_t len,
			   uint8_t *out, size_t out_cap, fs_done_fn done, void *ctx);

/* Host transport: serve 9P2000.L on a unix socket at path (one session per
 * connection) until loop_stop(); removes the socket at the end.  Polls
 * adaptively for at most poll_max_ns between messages (0: never). */
int fs_9p_serve_unix(struct fs_server *srv, struct loop *loop, const char *path,
		     uint64_t poll_max_ns);

/* Host transport: mount a FUSE filesystem at mnt served by srv and serve it
 * on loop until loop_stop() (e.g. from a signal) or the filesystem is
 * unmounted; then unmount.  Between requests the server busy-polls
 * /dev/fuse for an adaptive window of at most poll_max_ns (0: never).
 * 0 or -errno. */
int fs_fuse_serve_mount(struct fs_server *srv, struct loop *loop, const char *mnt,
			uint64_t poll_max_ns);

#endif
