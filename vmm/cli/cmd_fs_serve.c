/* vmm/cli/cmd_fs_serve.c - `kvmbox fs-serve`: the file server's host
 * transport, for tests and auditors.
 *
 *   kvmbox fs-serve --fuse MOUNTPOINT DIR [--read-only] [--hide] [--cache none|auto|always]
 *                   [--poll-us N] [--uring] [--stats]
 *   kvmbox fs-serve --9p SOCKET DIR [--read-only] [--hide] [--poll-us N]
 *
 * --hide keeps launch/hidden.h's sensitive names out of the client's
 * sight, as an agent's project share does.
 *
 * --fuse mounts DIR's contents at MOUNTPOINT through /dev/fuse (the host
 * kernel's FUSE client is the peer, exactly as the guest's is for
 * virtio-fs) and serves until SIGINT/SIGTERM or an external unmount, then
 * unmounts.  --9p serves 9P2000.L on a unix socket until SIGINT/SIGTERM,
 * then removes the socket.  --stats prints, at exit, how many requests of
 * each FUSE opcode the client sent (to stderr).  --poll-us bounds the
 * adaptive polling between requests (loop_run_polled; default 128
 * microseconds where there are two CPUs or more, else 0; 0: never poll).  --uring serves the kernel's
 * FUSE-over-io_uring queues with a thread per CPU when the kernel offers
 * them (Linux 6.14+ with fuse.enable_uring=Y; fs9p/fuse_uring.c), else
 * /dev/fuse alone as without it.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "common/loop.h"
#include "fs9p/fs.h"
#include "launch/hidden.h"
#include "vmm/cli/cli.h"
#include "vmm/cli/net_args.h"

/* The loop the signal handler stops: a signal handler has no argument, so
 * this one pointer is global (set once before the handler is installed). */
static struct loop *serve_loop;

static void on_signal(int sig)
{
	(void)sig;
	if (serve_loop)
		loop_stop_async(serve_loop, 0);
}

static void usage(void)
{
	fprintf(stderr, "usage: kvmbox fs-serve --fuse MOUNTPOINT DIR "
			"[--read-only] [--hide] [--cache none|auto|always]\n"
			"                     [--poll-us N] [--uring] [--stats]\n"
			"       kvmbox fs-serve --9p SOCKET DIR [--read-only] [--hide] [--poll-us N]\n");
}

int cmd_fs_serve(int argc, char **argv)
{
	const char *mnt = NULL, *sock = NULL, *dir = NULL;
	bool stats = false;
	uint64_t poll_us = loop_poll_us_default(1);
	const char *v = NULL;
	struct fs_opts o;
	fs_opts_default(&o);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--fuse") && i + 1 < argc && !sock) {
			mnt = argv[++i];
		} else if (!strcmp(argv[i], "--9p") && i + 1 < argc && !mnt) {
			sock = argv[++i];
		} else if (!strcmp(argv[i], "--stats")) {
			stats = true;
		} else if (cli_take_value(argc, argv, &i, "--poll-us", &v)) {
			if (cli_parse_poll_us("fs-serve", v, &poll_us) < 0)
				return EXIT_USAGE;
		} else if (!strcmp(argv[i], "--uring") && !sock) {
			o.fuse_uring = true;
		} else if (!strcmp(argv[i], "--read-only")) {
			o.read_only = true;
		} else if (!strcmp(argv[i], "--hide")) {
			o.hidden = hidden_default;
		} else if (!strcmp(argv[i], "--cache") && i + 1 < argc) {
			const char *c = argv[++i];
			if (!strcmp(c, "none"))
				o.cache = FS_CACHE_NONE;
			else if (!strcmp(c, "auto"))
				o.cache = FS_CACHE_AUTO;
			else if (!strcmp(c, "always"))
				o.cache = FS_CACHE_ALWAYS;
			else {
				fprintf(stderr, "kvmbox: fs-serve: bad --cache '%s'\n", c);
				return EXIT_USAGE;
			}
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage();
			return 0;
		} else if (argv[i][0] != '-' && (mnt || sock) && !dir) {
			dir = argv[i];
		} else {
			fprintf(stderr, "kvmbox: fs-serve: unexpected argument '%s'\n", argv[i]);
			usage();
			return EXIT_USAGE;
		}
	}
	if ((!mnt && !sock) || !dir) {
		usage();
		return EXIT_USAGE;
	}
	struct fs_server *srv;
	int r = fs_server_new(dir, &o, &srv);
	if (r < 0) {
		fprintf(stderr, "kvmbox: fs-serve: cannot serve %s: %s\n", dir, strerror(-r));
		return EXIT_USAGE;
	}
	struct loop loop;
	r = loop_init(&loop, 64);
	if (r < 0) {
		fprintf(stderr, "kvmbox: fs-serve: io_uring: %s\n", strerror(-r));
		fs_server_free(srv);
		return 1;
	}
	serve_loop = &loop;
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	r = mnt ? fs_fuse_serve_mount(srv, &loop, mnt, poll_us * 1000) : fs_9p_serve_unix(srv, &loop, sock, poll_us * 1000);
	serve_loop = NULL;
	if (stats && mnt)
		fs_fuse_print_stats(srv, 2);
	fs_server_free(srv);	/* lets file I/O in flight finish on the loop */
	loop_fini(&loop);
	if (r < 0) {
		fprintf(stderr, "kvmbox: fs-serve: %s\n", strerror(-r));
		return 1;
	}
	return 0;
}
