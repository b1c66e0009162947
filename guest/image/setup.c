/* guest/image/setup.c - `kvmbox setup`: build the default guest image from
 * Debian packages and the npm registry, re-runnably, as the user.
 *
 * Steps, each keyed by a stamp (SHA-256 of its inputs), so a second run
 * reuses what is done and rebuilds only what changed:
 *   1. base     mmdebstrap --variant=minbase --include=APT_PACKAGES SUITE
 *               as a tar stream (device nodes left out), unpacked with the
 *               image unpacker (image_unpack_layer: the same checks as a
 *               pulled layer) into CACHE/build/base-KEY.  Without root,
 *               mmdebstrap runs in a user namespace (--mode=unshare: the
 *               user's subordinate ids from /etc/subuid); as root, in its
 *               root mode.  Stamp: CACHE/build/base-KEY.done.
 *   2. agents   a copy of the base in IMAGES/.tmp-NAME-XXXXXX, npm install -g
 *               of the agents in a chroot, then renamed to IMAGES/NAME; its
 *               stamp is kept in the image metadata.  Without root, the
 *               chroot is entered in a user namespace with its own mount
 *               and PID namespaces, the user mapped to an id that is not
 *               root (see USERNS_ID).
 * The kernel and the boot check are the command's (vmm/cli/cmd_setup.c).
 * Packages come from the host's apt mirror (first Debian URI in
 * /etc/apt/sources.list*, else deb.debian.org) and the npm registry; the
 * host's CA bundle is lent to apt and npm inside the chroot for the build
 * (a TLS-intercepting egress proxy) and removed afterwards: it never ends up
 * in the image.  Chroot commands run in a private mount namespace with
 * /proc mounted, so nothing stays mounted if setup is interrupted.  See
 * docs/image.md.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "common/sha256.h"
#include "common/util.h"
#include "guest/image/image.h"

#define DEFAULT_MIRROR "http://deb.debian.org/debian"
#define APT_PACKAGES "nodejs,npm,git,gh,ca-certificates,ripgrep,curl"
#define NPM_AGENTS "@anthropic-ai/claude-code @openai/codex opencode-ai"
#define HOST_CA_IN_CHROOT "/tmp/kvmbox-host-ca.crt"
#define SETUP_RECIPE "kvmbox-setup-v2"	/* v2: mmdebstrap, gh */

/* State of one setup run. */
struct setup {
	const struct setup_opts *o;
	char cache[4096];
	char build[4200];	/* CACHE/build */
	char log[4300];		/* CACHE/build/setup.log: commands' output */
	char mirror[512];
	char base_key[72];	/* sha256 of the base inputs */
	char image_key[72];	/* sha256 of base key + agents */
	char base_dir[4400];
	int step, nsteps;
};

/* --- the host's apt mirror ------------------------------------------------ */

/* A usable Debian archive URI: http(s), not the security archive. */
static bool mirror_ok(const char *uri)
{
	return (!strncmp(uri, "http://", 7) || !strncmp(uri, "https://", 8)) &&
	       !strstr(uri, "security");
}

/* One-line format: "deb [opts] URI suite components". */
static bool mirror_from_list(FILE *f, char *out, size_t len)
{
	char line[1024];
	while (fgets(line, sizeof(line), f)) {
		char *p = line + strspn(line, " \t");
		if (strncmp(p, "deb ", 4) && strncmp(p, "deb\t", 4))
			continue;
		p += 4;
		p += strspn(p, " \t");
		if (*p == '[') {
			char *end = strchr(p, ']');
			if (!end)
				continue;
			p = end + 1 + strspn(end + 1, " \t");
		}
		p[strcspn(p, " \t\r\n")] = '\0';
		if (mirror_ok(p) && strlen(p) < len) {
			strcpy(out, p);
			return true;
		}
	}
	return false;
}

/* deb822 format: stanzas with "Types: deb" and "URIs: ...". */
static bool mirror_from_sources(FILE *f, char *out, size_t len)
{
	char line[1024], uri[512] = "";
	bool deb = false;
	for (;;) {
		char *got = fgets(line, sizeof(line), f);
		if (!got || line[strspn(line, " \t\r\n")] == '\0') {	/* end of stanza */
			if (deb && uri[0] && mirror_ok(uri) && strlen(uri) < len) {
				strcpy(out, uri);
				return true;
			}
			deb = false;
			uri[0] = '\0';
			if (!got)
				return false;
			continue;
		}
		if (!strncasecmp(line, "Types:", 6))
			deb = strstr(line + 6, "deb") && (strstr(line + 6, "deb ") ||
							  strstr(line + 6, "deb\n") ||
							  strstr(line + 6, "deb\r"));
		else if (!strncasecmp(line, "URIs:", 5) && !uri[0])
			sscanf(line + 5, " %511s", uri);
		else if (!strncasecmp(line, "Enabled:", 8) && strstr(line, "no"))
			deb = false;
	}
}

static bool mirror_from_file(const char *path, bool deb822, char *out, size_t len)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return false;
	bool ok = deb822 ? mirror_from_sources(f, out, len) : mirror_from_list(f, out, len);
	fclose(f);
	return ok;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int image_host_mirror(const char *root, char *out, size_t len)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/etc/apt/sources.list", root);
	if (mirror_from_file(path, false, out, len))
		return 0;
	snprintf(path, sizeof(path), "%s/etc/apt/sources.list.d", root);
	DIR *d = opendir(path);
	char *names[256];
	size_t n = 0;
	struct dirent *de;
	while (d && (de = readdir(d)) && n < 256)
		if (strstr(de->d_name, ".list") || strstr(de->d_name, ".sources"))
			names[n++] = strdup(de->d_name);
	if (d)
		closedir(d);
	qsort(names, n, sizeof(names[0]), cmp_names);
	bool found = false;
	for (size_t i = 0; i < n; i++) {
		if (!names[i])
			continue;
		size_t l = strlen(names[i]);
		bool list = l > 5 && !strcmp(names[i] + l - 5, ".list");
		bool src = l > 8 && !strcmp(names[i] + l - 8, ".sources");
		char file[4400];
		snprintf(file, sizeof(file), "%s/%s", path, names[i]);
		if (!found && (list || src))
			found = mirror_from_file(file, src, out, len);
		free(names[i]);
	}
	if (found)
		return 0;
	if (strlen(DEFAULT_MIRROR) >= len)
		return -ENAMETOOLONG;
	strcpy(out, DEFAULT_MIRROR);
	return 0;
}

/* --- running commands ------------------------------------------------------ */

/* Environment for commands inside the chroot: a clean one, plus the
 * proxy settings and npm registry the host uses. */
static void chroot_env(char **env, size_t max)
{
	static char slots[16][1024];	/* single-threaded CLI; child only */
	static const char *pass[] = { "http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY",
				      "HTTPS_PROXY", "NO_PROXY", "npm_config_registry",
				      "NPM_CONFIG_REGISTRY" };
	size_t n = 0;
	env[n++] = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	env[n++] = "HOME=/root";
	env[n++] = "LANG=C.UTF-8";
	env[n++] = "DEBIAN_FRONTEND=noninteractive";
	env[n++] = "NODE_EXTRA_CA_CERTS=" HOST_CA_IN_CHROOT;
	env[n++] = "npm_config_update_notifier=false";
	for (size_t i = 0; i < ARRAY_SIZE(pass) && n + 1 < max; i++) {
		const char *v = getenv(pass[i]);
		if (v && (size_t)snprintf(slots[i], sizeof(slots[i]), "%s=%s", pass[i], v) <
				 sizeof(slots[i]))
			env[n++] = slots[i];
	}
	env[n] = NULL;
}

static int write_proc_self(const char *file, const char *text)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/%s", file);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int r = write_full(fd, text, strlen(text));
	close(fd);
	return r;
}

/* The id the user has inside the build's user namespace: not root, so
 * that npm, which as root gives extracted files the owners recorded in a
 * package's tarball (ids this one-id namespace cannot map), leaves them to
 * whoever runs it.  The namespace's creator still holds every capability
 * in it until it executes the command: enough to mount /proc and chroot. */
#define USERNS_ID 1000

/* In the child, without root: a new user namespace (the user mapped to
 * USERNS_ID, nobody else), with its own mount and PID namespaces; returns
 * in a grandchild that is PID 1 there (so /proc can be mounted), the child
 * waiting for it and exiting with its status. */
static void enter_userns(void)
{
	char map[64];
	uid_t uid = geteuid();
	gid_t gid = getegid();
	if (unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID)) {
		perror("kvmbox: setup: user namespace");
		_exit(126);
	}
	snprintf(map, sizeof(map), "%u %u 1\n", USERNS_ID, (unsigned)uid);
	int r = write_proc_self("setgroups", "deny");
	if (!r)
		r = write_proc_self("uid_map", map);
	snprintf(map, sizeof(map), "%u %u 1\n", USERNS_ID, (unsigned)gid);
	if (!r)
		r = write_proc_self("gid_map", map);
	if (r) {
		fprintf(stderr, "kvmbox: setup: user namespace ids: %s\n", strerror(-r));
		_exit(126);
	}
	pid_t pid = fork();
	if (pid < 0)
		_exit(126);
	if (pid > 0) {
		int st;
		while (waitpid(pid, &st, 0) < 0)
			if (errno != EINTR)
				_exit(126);
		_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
	}
}

/* In the child: private mounts, /proc, chroot. */
static void enter_chroot(const char *root)
{
	char proc[4400];
	if (geteuid() != 0)
		enter_userns();
	if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL)) {
		perror("kvmbox: setup: mount namespace");
		_exit(126);
	}
	snprintf(proc, sizeof(proc), "%s/proc", root);
	mkdir(proc, 0555);
	if (mount("proc", proc, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL)) {
		perror("kvmbox: setup: mount /proc");
		_exit(126);
	}
	/* The image has no device nodes (the unpacker makes none); what runs
	 * in it needs /dev/null and friends: the host's /dev, for this mount
	 * namespace only. */
	char dev[4400];
	snprintf(dev, sizeof(dev), "%s/dev", root);
	mkdir(dev, 0755);
	if (mount("/dev", dev, NULL, MS_BIND | MS_REC, NULL)) {
		perror("kvmbox: setup: bind /dev");
		_exit(126);
	}
	if (chroot(root) || chdir("/")) {
		perror("kvmbox: setup: chroot");
		_exit(126);
	}
}

/* Run argv (in a chroot of `root` when not NULL), output to the log file:
 * 0, or -EIO after printing where the log is. */
static int run(struct setup *s, const char *root, char *const argv[])
{
	int logfd = open(s->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (logfd < 0)
		return -errno;
	dprintf(logfd, "\n$%s%s", root ? " chroot " : "", root ? root : "");
	for (size_t i = 0; argv[i]; i++)
		dprintf(logfd, " %s", argv[i]);
	dprintf(logfd, "\n");
	pid_t pid = fork();
	if (pid < 0) {
		close(logfd);
		return -errno;
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);
		dup2(null, 0);
		dup2(logfd, 1);
		dup2(logfd, 2);
		if (root) {
			char *env[24];
			chroot_env(env, ARRAY_SIZE(env));
			enter_chroot(root);
			execve(argv[0], argv, env);
		} else {
			execvp(argv[0], argv);
		}
		dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(logfd);
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	log_err("setup: %s failed (%s %d); its output is in %s", argv[0],
		WIFEXITED(status) ? "exit status" : "signal",
		WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), s->log);
	return -EIO;
}

/* --- steps ----------------------------------------------------------------- */

static double dir_mb(const char *path)
{
	uint64_t bytes = 0;
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		image_tree_size(fd, &bytes);
		close(fd);
	}
	return (double)bytes / 1e6;
}

static void step_begin(struct setup *s, const char *what)
{
	s->step++;
	printf("setup: [%d/%d] %s\n", s->step, s->nsteps, what);
	fflush(stdout);
}

static void step_end(uint64_t t0, const char *path)
{
	printf("        done in %.1f s, %s is %.0f MB\n", (double)(now_ns() - t0) / 1e9, path,
	       dir_mb(path));
	fflush(stdout);
}

/* Lend the host's CA bundle to the chroot (see the header comment). */
static int lend_host_ca(const char *root)
{
	const char *cands[] = { getenv("NODE_EXTRA_CA_CERTS"), getenv("SSL_CERT_FILE"),
				"/etc/ssl/certs/ca-certificates.crt" };
	for (size_t i = 0; i < ARRAY_SIZE(cands); i++) {
		if (!cands[i] || cands[i][0] != '/')
			continue;
		uint8_t *buf;
		size_t len;
		if (read_file(cands[i], 16u << 20, &buf, &len))
			continue;
		char dst[4400];
		int fd = -1;
		if ((size_t)snprintf(dst, sizeof(dst), "%s%s", root, HOST_CA_IN_CHROOT) < sizeof(dst))
			fd = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
		int r = fd < 0 ? -errno : write_full(fd, buf, len);
		if (fd >= 0)
			close(fd);
		free(buf);
		return r;
	}
	return 0;	/* none: the chroot's own ca-certificates only */
}

static void take_back_host_ca(const char *root)
{
	char dst[4400];
	if ((size_t)snprintf(dst, sizeof(dst), "%s%s", root, HOST_CA_IN_CHROOT) < sizeof(dst))
		unlink(dst);
}

static int remove_path(const char *path)
{
	char parent[4400];
	snprintf(parent, sizeof(parent), "%s", path);
	char *slash = strrchr(parent, '/');
	if (!slash)
		return -EINVAL;
	*slash = '\0';
	int fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	int r = image_remove_tree_at(fd, slash + 1);
	close(fd);
	return r;
}

static int copy_host_file(const char *src, const char *root, const char *dst_rel)
{
	uint8_t *buf;
	size_t len;
	if (read_file(src, 1u << 20, &buf, &len))
		return 0;	/* optional */
	char dst[4400];
	int fd = -1;
	if ((size_t)snprintf(dst, sizeof(dst), "%s%s", root, dst_rel) < sizeof(dst)) {
		unlink(dst);
		fd = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
	}
	int r = fd < 0 ? -errno : write_full(fd, buf, len);
	if (fd >= 0)
		close(fd);
	free(buf);
	return r;
}

/* Run argv with its stdout into the image unpacker (a tar stream applied
 * to dir) and its stderr into the log: 0, or -errno / -EIO after saying
 * where the log is. */
static int run_unpack(struct setup *s, char *const argv[], const char *dir)
{
	int logfd = open(s->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (logfd < 0)
		return -errno;
	dprintf(logfd, "\n$");
	for (size_t i = 0; argv[i]; i++)
		dprintf(logfd, " %s", argv[i]);
	dprintf(logfd, " | (unpack into %s)\n", dir);
	int pfd[2], dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || pipe2(pfd, O_CLOEXEC) < 0) {
		int e = -errno;
		if (dfd >= 0)
			close(dfd);
		close(logfd);
		return e;
	}
	pid_t pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);
		dup2(null, 0);
		dup2(pfd[1], 1);
		dup2(logfd, 2);
		execvp(argv[0], argv);
		dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(pfd[1]);
	close(logfd);
	struct unpack_stats st = { 0 };
	int r = pid < 0 ? -errno : image_unpack_layer(dfd, pfd[0], argv[0], &st);
	close(pfd[0]);	/* an unpack error: the writer gets EPIPE and ends */
	close(dfd);
	int status = 0;
	while (pid > 0 && waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	if (pid > 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
		log_err("setup: %s failed (%s %d); its output is in %s", argv[0],
			WIFEXITED(status) ? "exit status" : "signal",
			WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), s->log);
		return -EIO;
	}
	return r;
}

/* Step 1: mmdebstrap with the packages, unpacked into CACHE/build/base-KEY. */
static int build_base(struct setup *s)
{
	char stamp[4500], tmp[4500];
	snprintf(stamp, sizeof(stamp), "%s.done", s->base_dir);
	struct stat st;
	if (!s->o->refresh && !stat(stamp, &st) && !stat(s->base_dir, &st)) {
		step_begin(s, "base system (mmdebstrap + packages): reused");
		printf("        %s (%.0f MB)\n", s->base_dir, dir_mb(s->base_dir));
		return 0;
	}
	unlink(stamp);
	snprintf(tmp, sizeof(tmp), "%s.tmp", s->base_dir);
	int r = remove_path(tmp);
	if (!r)
		r = remove_path(s->base_dir);
	if (r)
		return r;
	if (mkdir(tmp, 0755))
		return -errno;
	char what[1024];
	snprintf(what, sizeof(what), "mmdebstrap --variant=minbase %s from %s (%s) with " APT_PACKAGES,
		 s->o->suite, s->mirror, geteuid() ? "as you, in a user namespace" : "as root");
	step_begin(s, what);
	uint64_t t0 = now_ns();
	char *mm[] = { "mmdebstrap", geteuid() ? "--mode=unshare" : "--mode=root", "--variant=minbase",
		       "--include=" APT_PACKAGES, "--skip=output/dev", "--format=tar", "-q",
		       (char *)s->o->suite, "-", s->mirror, NULL };
	r = run_unpack(s, mm, tmp);
	if (!r)	/* the npm step resolves names inside the chroot */
		r = copy_host_file("/etc/resolv.conf", tmp, "/etc/resolv.conf");
	if (r)
		return r;
	step_end(t0, tmp);
	if (rename(tmp, s->base_dir))
		return -errno;
	int fd = open(stamp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	dprintf(fd, "%s\n", s->base_key);
	close(fd);
	return 0;
}

/* Whether IMAGES/NAME was built from the same inputs. */
static bool image_current(struct setup *s, char *path, size_t len)
{
	char images[4096];
	if (image_images_dir(images, sizeof(images)))
		return false;
	snprintf(path, len, "%s/%s", images, s->o->name);
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return false;
	struct image_meta m;
	bool ok = !image_meta_read(fd, &m) && !strcmp(m.stamp, s->image_key) &&
		  m.api_version == IMAGE_API_VERSION;
	close(fd);
	return ok;
}

/* Step 2: the agents from npm, on a copy of the base, into IMAGES/NAME. */
static int build_image(struct setup *s)
{
	char final[4400];
	if (!s->o->refresh && image_current(s, final, sizeof(final))) {
		step_begin(s, "agents (npm): reused, image up to date");
		return 0;
	}
	struct image_build b;
	int r = image_build_begin(&b, s->o->name);
	if (r)
		return r;
	char rootfs[4300];
	snprintf(rootfs, sizeof(rootfs), "%s/rootfs", b.tmp);
	step_begin(s, "npm install -g " NPM_AGENTS);
	uint64_t t0 = now_ns();
	char src[4500];
	snprintf(src, sizeof(src), "%s/.", s->base_dir);
	char *cp[] = { "cp", "-a", "--reflink=auto", src, rootfs, NULL };
	char *npm[] = { "/usr/bin/npm", "install", "-g", "--no-fund", "--no-audit",
			"@anthropic-ai/claude-code", "@openai/codex", "opencode-ai", NULL };
	char *npm_clean[] = { "/bin/rm", "-rf", "/root/.npm", "/root/.cache", "/tmp/node-compile-cache", NULL };
	r = run(s, NULL, cp);
	if (!r)
		r = lend_host_ca(rootfs);
	if (!r)
		r = run(s, rootfs, npm);
	if (!r)
		r = run(s, rootfs, npm_clean);
	take_back_host_ca(rootfs);
	if (r) {
		image_build_abort(&b);
		return r;
	}
	step_end(t0, rootfs);
	struct image_meta m = { 0 };
	snprintf(m.source, sizeof(m.source), "mmdebstrap %s %s: %s + npm: %s",
		 s->o->suite, s->mirror, APT_PACKAGES, NPM_AGENTS);
	snprintf(m.stamp, sizeof(m.stamp), "%s", s->image_key);
	r = image_build_commit(&b, &m);
	if (r)
		image_build_abort(&b);
	return r;
}

/* Whether /etc/FILE gives the user subordinate ids (by name or number). */
static bool has_subids(const char *file, const char *name, unsigned id)
{
	FILE *f = fopen(file, "r");
	if (!f)
		return false;
	char line[512], num[16];
	snprintf(num, sizeof(num), "%u", id);
	bool found = false;
	while (!found && fgets(line, sizeof(line), f)) {
		char *colon = strchr(line, ':');
		if (!colon)
			continue;
		*colon = 0;
		found = !strcmp(line, num) || (name && !strcmp(line, name));
	}
	fclose(f);
	return found;
}

/* Without root, mmdebstrap's user namespace maps the user's subordinate
 * ids (dpkg gives files to _apt, man, ...): say how to get them. */
static int subids_ok(void)
{
	struct passwd *pw = getpwuid(geteuid());
	const char *name = pw ? pw->pw_name : NULL;
	if (access("/usr/bin/newuidmap", X_OK)) {
		log_err("setup: newuidmap is not installed: sudo apt-get install uidmap");
		return -ENOENT;
	}
	if (has_subids("/etc/subuid", name, geteuid()) && has_subids("/etc/subgid", name, getegid()))
		return 0;
	log_err("setup: %s has no subordinate ids for the build's user namespace: "
		"sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 %s",
		name ? name : "this user", name ? name : "$USER");
	return -EPERM;
}

static int setup_init(struct setup *s, const struct setup_opts *o)
{
	memset(s, 0, sizeof(*s));
	s->o = o;
	s->nsteps = 4;
	if (access("/usr/bin/mmdebstrap", X_OK)) {
		log_err("setup: mmdebstrap is not installed: sudo apt-get install mmdebstrap uidmap");
		return -ENOENT;
	}
	if (geteuid() != 0) {
		int r = subids_ok();
		if (r)
			return r;
	}
	int r = image_cache_dir(s->cache, sizeof(s->cache));
	if (r)
		return r;
	snprintf(s->build, sizeof(s->build), "%s/build", s->cache);
	if (mkdir(s->build, 0700) && errno != EEXIST)
		return -errno;
	snprintf(s->log, sizeof(s->log), "%s/setup.log", s->build);
	if (o->mirror)
		snprintf(s->mirror, sizeof(s->mirror), "%s", o->mirror);
	else if ((r = image_host_mirror("", s->mirror, sizeof(s->mirror))))
		return r;
	char in[2048];
	snprintf(in, sizeof(in), "%s|suite=%s|variant=minbase|apt=%s|arch=amd64", SETUP_RECIPE,
		 o->suite, APT_PACKAGES);
	char hex[SHA256_HEX_LEN + 1];
	if ((r = sha256_hex(in, strlen(in), hex)))
		return r;
	snprintf(s->base_key, sizeof(s->base_key), "%s", hex);
	snprintf(s->base_dir, sizeof(s->base_dir), "%s/base-%.16s", s->build, hex);
	snprintf(in, sizeof(in), "%s|base=%s|npm=%s|api=%d", SETUP_RECIPE, s->base_key,
		 NPM_AGENTS, IMAGE_API_VERSION);
	if ((r = sha256_hex(in, strlen(in), hex)))
		return r;
	if ((size_t)snprintf(s->image_key, sizeof(s->image_key), "sha256:%.64s", hex) >=
	    sizeof(s->image_key))
		return -EINVAL;
	return 0;
}

int image_setup(const struct setup_opts *o)
{
	struct setup s;
	uint64_t t0 = now_ns();
	int r = setup_init(&s, o);
	if (!r)
		r = build_base(&s);
	if (!r)
		r = build_image(&s);
	if (r)
		return r;
	char images[4096], path[4400];
	if (image_images_dir(images, sizeof(images)))
		return -EIO;
	snprintf(path, sizeof(path), "%s/%s", images, o->name);
	printf("setup: image ready in %.1f s\n  image '%s': %s (%.0f MB)\n  base cache: %s (%.0f MB)\n"
	       "  build log: %s\n", (double)(now_ns() - t0) / 1e9, o->name, path,
	       dir_mb(path), s.base_dir, dir_mb(s.base_dir), s.log);
	fflush(stdout);
	return 0;
}
