/* vmm/cli/cmd_logs.c - `kvmbox logs NAME [--raw] [--follow]`: a sandbox's
 * console as its holder kept it (launch/session: NAME/console.log, the
 * older part in console.log.1), which holds kvmbox's own lines of the
 * launch too (refusals at exit, token refreshes); and `kvmbox logs
 * --denials [--project DIR | NAME]`: the project's record of what the
 * egress policy refused in its launches (launch/denials.h), oldest first.
 *
 * The console is the guest's output: shown as lines, its escape sequences
 * removed and other control bytes made visible (common/text.h), unless
 * --raw asks for the bytes as they were.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/text.h"
#include "launch/denials.h"
#include "launch/session/session.h"
#include "vmm/cli/cli.h"
#include "vmm/cli/net_args.h"

#define FOLLOW_POLL_MS 200

static void usage(FILE *f)
{
	fprintf(f, "usage: kvmbox logs NAME [--raw] [--follow]\n"
		   "       kvmbox logs --denials [--project DIR | NAME]\n"
		   "Print sandbox NAME's console as kept while it ran at a terminal or with\n"
		   "--detach (the last %u MiB or so): the agent's output and kvmbox's own lines,\n"
		   "its escape sequences removed and control bytes shown as ^X, unless --raw;\n"
		   "--follow (-f) goes on printing while it runs.\n"
		   "--denials: what the egress policy refused in the agent launches on DIR\n"
		   "(default: here, or NAME's project), oldest first: a line per launch, then\n"
		   "each refusal with its count and what would allow it.\n",
		(2 * HOLD_LOG_MAX) >> 20);
}

/* Print fd's bytes from *off on; *off moves past them.  0 or -errno. */
static int print_from(int fd, off_t *off, bool raw)
{
	static char buf[1 << 16];
	for (;;) {
		ssize_t n = pread(fd, buf, sizeof(buf), *off);
		if (n < 0)
			return -errno;
		if (n == 0)
			return 0;
		*off += n;
		if (raw) {
			fwrite(buf, 1, (size_t)n, stdout);
		} else {
			size_t k = strip_terminal_sequences(buf, (size_t)n);
			put_visible(stdout, buf, k);
		}
	}
}

static int print_file(int dirfd, const char *name, bool raw)
{
	int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	off_t off = 0;
	int r = print_from(fd, &off, raw);
	close(fd);
	return r;
}

/* --follow: console.log as it grows (and starts over when it turns to
 * .1) until the sandbox stops running. */
static int follow(int dirfd, const char *name, bool raw)
{
	int fd = openat(dirfd, HOLD_LOG, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	off_t off = 0;
	if (fd >= 0) {
		struct stat st;
		off = fstat(fd, &st) == 0 ? st.st_size : 0;
	}
	for (;;) {
		bool running = session_lock_held(name);
		struct stat now, cur;
		if (fstatat(dirfd, HOLD_LOG, &now, AT_SYMLINK_NOFOLLOW) == 0 &&
		    (fd < 0 || (fstat(fd, &cur) == 0 && cur.st_ino != now.st_ino))) {
			if (fd >= 0) {
				print_from(fd, &off, raw);	/* what the old one had last */
				close(fd);
			}
			fd = openat(dirfd, HOLD_LOG, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
			off = 0;
		}
		if (fd >= 0 && print_from(fd, &off, raw) < 0)
			break;
		if (fflush(stdout) != 0 || !running)
			break;
		nanosleep(&(struct timespec){ .tv_nsec = FOLLOW_POLL_MS * 1000000L }, NULL);
	}
	if (fd >= 0)
		close(fd);
	return 0;
}

static int print_console(const char *name, bool raw, bool follow_it)
{
	struct session_info i;
	int r = session_read(name, &i);
	if (r == -ENOENT) {
		log_err("logs: no session named %.64s (kvmbox ps lists them)", name);
		return 1;
	}
	char dir[PATH_MAX];
	if (r < 0 || (r = session_dir(name, dir, sizeof(dir))) < 0) {
		log_err("logs: sandbox %s: %s", name, strerror(-r));
		return 1;
	}
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0) {
		log_err("logs: sandbox %s: %s", name, strerror(errno));
		return 1;
	}
	struct stat st;
	if (fstatat(dfd, HOLD_LOG, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		close(dfd);
		log_err("logs: sandbox %s kept no console (it was not started at a terminal or with --detach)",
			name);
		return 1;
	}
	r = print_file(dfd, HOLD_LOG ".1", raw);
	if (r == 0)
		r = follow_it ? follow(dfd, name, raw) : print_file(dfd, HOLD_LOG, raw);
	close(dfd);
	if (r < 0 || fflush(stdout) != 0) {
		log_err("logs: sandbox %s: %s", name, strerror(r < 0 ? -r : errno));
		return 1;
	}
	return 0;
}

static int print_denials(const char *project)
{
	char real[PATH_MAX];
	if (!realpath(project, real)) {
		log_err("logs: project folder %s: %s", project, strerror(errno));
		return EXIT_USAGE;
	}
	int r = denials_print(real, stdout);
	if (r == -ENOENT) {
		log_err("logs: no launch on %s has recorded refusals yet", real);
		return 1;
	}
	if (r < 0 || fflush(stdout) != 0) {
		log_err("logs: %s", strerror(r < 0 ? -r : errno));
		return 1;
	}
	return 0;
}

int cmd_logs(int argc, char **argv)
{
	const char *project = NULL, *name = NULL, *v;
	bool denials = false, raw = false, follow_it = false;
	for (int i = 1; i < argc; i++) {
		int t = cli_take_value(argc, argv, &i, "--project", &v);
		if (t > 0) {
			project = v;
		} else if (t == 0 && !strcmp(argv[i], "--denials")) {
			denials = true;
		} else if (t == 0 && !strcmp(argv[i], "--raw")) {
			raw = true;
		} else if (t == 0 && (!strcmp(argv[i], "-f") || !strcmp(argv[i], "--follow"))) {
			follow_it = true;
		} else if (t == 0 && (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))) {
			usage(stdout);
			return 0;
		} else if (t == 0 && argv[i][0] != '-' && !name) {
			name = argv[i];
		} else {
			log_err("logs: %s %s (try kvmbox logs --help)",
				t < 0 ? "a value is missing for" : "unknown option", argv[i]);
			return EXIT_USAGE;
		}
	}
	if (denials && !(raw || follow_it) && !(name && project)) {
		struct session_info i;
		if (name && session_read(name, &i) < 0) {
			log_err("logs: no session named %.64s (kvmbox ps lists them)", name);
			return 1;
		}
		return print_denials(name ? i.project : project ? project : ".");
	}
	if (!denials && name && !project)
		return print_console(name, raw, follow_it);
	log_err("logs: say which: NAME [--raw] [--follow], or --denials [--project DIR | NAME] "
		"(try kvmbox logs --help)");
	return EXIT_USAGE;
}
