/* cage/landlock.c - the files a caged VM may still open (cage.h).
 *
 * Seccomp decides which calls a thread may make, not which files they may
 * reach: the loop role opens files for the file server, so a compromised
 * device could open any file the user can.  A Landlock ruleset closes
 * that: after setup, the process may read and write beneath the paths the
 * VM serves read-write (the project, the agent's state and launch
 * folders), read beneath those it serves read-only (the image, read-only
 * shares) and the system's read-only folders (libraries opened on first
 * use, OpenSSL's configuration and CA store, the resolver's files), and
 * nothing else.  Files already open (the kernel, /dev/kvm, the terminal)
 * stay usable: Landlock checks opens.
 *
 * The ruleset is built and applied by cage_process() on the main thread
 * before the VM's threads start, so they inherit it; the resolver thread,
 * started earlier, applies it to itself in cage_thread().  Rights are
 * those of the running kernel's Landlock ABI; a kernel without Landlock
 * gets a warning at every launch, and the VM runs with seccomp alone.
 */
#include "cage/cage.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/landlock.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"

#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)	/* ABI 3 */
#endif

#define FS_READ (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR)
#define FS_EXEC LANDLOCK_ACCESS_FS_EXECUTE
#define FS_WRITE (LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_REMOVE_DIR | \
		  LANDLOCK_ACCESS_FS_REMOVE_FILE | LANDLOCK_ACCESS_FS_MAKE_CHAR | \
		  LANDLOCK_ACCESS_FS_MAKE_DIR | LANDLOCK_ACCESS_FS_MAKE_REG | \
		  LANDLOCK_ACCESS_FS_MAKE_SOCK | LANDLOCK_ACCESS_FS_MAKE_FIFO | \
		  LANDLOCK_ACCESS_FS_MAKE_BLOCK | LANDLOCK_ACCESS_FS_MAKE_SYM | \
		  LANDLOCK_ACCESS_FS_REFER | LANDLOCK_ACCESS_FS_TRUNCATE)
/* What a rule on a file (not a folder) may carry. */
#define FS_FILE_RIGHTS (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_WRITE_FILE | \
			LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_TRUNCATE)

/* The system's read-only folders every caged VM may read (and map
 * libraries from): see the top of this file. */
static const char *const system_ro[] = {
	"/usr", "/lib", "/lib64", "/etc",
	"/proc/self",		/* sanitizer reports; /proc/self/fd of the file server's files */
	"/dev/null", "/dev/urandom",
};

/* Files the resolver and OpenSSL read that may be links out of /etc
 * (systemd-resolved's /etc/resolv.conf points into /run): the folder
 * their target is in, since the target may be replaced by a rename. */
static const char *const system_ro_targets[] = {
	"/etc/resolv.conf", "/etc/hosts", "/etc/nsswitch.conf", "/etc/gai.conf",
	"/etc/ssl/openssl.cnf", "/etc/ssl/certs/ca-certificates.crt",
};

static int ll_abi(void)
{
	long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
	return abi < 0 ? -errno : (int)abi;
}

/* The rights this kernel knows, of those kvmbox uses. */
static uint64_t ll_handled(int abi)
{
	uint64_t all = FS_READ | FS_EXEC | FS_WRITE;
	if (abi < 2)
		all &= ~LANDLOCK_ACCESS_FS_REFER;
	if (abi < 3)
		all &= ~LANDLOCK_ACCESS_FS_TRUNCATE;
	return all;
}

/* One rule: rights beneath path (a missing path is skipped: the system
 * list names folders some machines do not have). */
static int ll_allow(int ruleset, const char *path, uint64_t rights, uint64_t handled)
{
	int fd = open(path, O_PATH | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	struct stat st;
	int r = fstat(fd, &st) < 0 ? -errno : 0;
	struct landlock_path_beneath_attr pb = {
		.allowed_access = rights & handled & (S_ISDIR(st.st_mode) ? ~0ULL : FS_FILE_RIGHTS),
		.parent_fd = fd,
	};
	if (r == 0 && syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &pb, 0) < 0)
		r = -errno;
	close(fd);
	return r;
}

static int ll_allow_path(int ruleset, const struct cage_path *p, uint64_t handled)
{
	if (p->access != CAGE_REMOVE_SELF)
		return ll_allow(ruleset, p->path, FS_READ | (p->access == CAGE_WRITE ? FS_WRITE : 0),
				handled);
	char parent[PATH_MAX];
	int r = path_parent(p->path, parent, sizeof(parent));
	return r < 0 ? r : ll_allow(ruleset, parent, LANDLOCK_ACCESS_FS_REMOVE_DIR, handled);
}

int cage_landlock_build(const struct cage_path *paths, size_t n, int *ruleset_fd, char *why,
			size_t whysz)
{
	*ruleset_fd = -1;
	int abi = ll_abi();
	if (abi < 0) {
		log_warn("Landlock is not available on this kernel (%s): the VM's file access is "
			 "limited by seccomp alone", abi == -EOPNOTSUPP ? "disabled at boot" :
			 strerror(-abi));
		return 0;
	}
	uint64_t handled = ll_handled(abi);
	struct landlock_ruleset_attr attr = { .handled_access_fs = handled };
	int fd = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0);
	if (fd < 0) {
		snprintf(why, whysz, "Landlock: cannot create a ruleset: %s", strerror(errno));
		return -errno;
	}
	int r = 0;
	for (size_t i = 0; r == 0 && i < sizeof(system_ro) / sizeof(system_ro[0]); i++)
		if ((r = ll_allow(fd, system_ro[i], FS_READ | FS_EXEC, handled)) < 0)
			snprintf(why, whysz, "Landlock: %s: %s", system_ro[i], strerror(-r));
	for (size_t i = 0; r == 0 && i < sizeof(system_ro_targets) / sizeof(system_ro_targets[0]); i++) {
		char real[PATH_MAX];
		if (!realpath(system_ro_targets[i], real))
			continue;	/* not on this machine */
		char *slash = strrchr(real, '/');
		if (slash && slash > real)
			*slash = 0;
		if ((r = ll_allow(fd, real, FS_READ, handled)) < 0)
			snprintf(why, whysz, "Landlock: %s: %s", real, strerror(-r));
	}
	/* OpenSSL's CA file and folder, where the environment moves them */
	static const char *const ssl_env[] = { "SSL_CERT_FILE", "SSL_CERT_DIR" };
	for (size_t i = 0; r == 0 && i < sizeof(ssl_env) / sizeof(ssl_env[0]); i++) {
		const char *v = getenv(ssl_env[i]);
		if (v && v[0] == '/' && (r = ll_allow(fd, v, FS_READ, handled)) < 0)
			snprintf(why, whysz, "Landlock: %s=%s: %s", ssl_env[i], v, strerror(-r));
	}
	for (size_t i = 0; r == 0 && i < n; i++)
		if ((r = ll_allow_path(fd, &paths[i], handled)) < 0)
			snprintf(why, whysz, "Landlock: %s: %s", paths[i].path, strerror(-r));
	if (r < 0) {
		close(fd);
		return r;
	}
	*ruleset_fd = fd;
	return 0;
}

int cage_landlock_enter(int ruleset_fd)
{
	if (ruleset_fd < 0)
		return 0;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	    syscall(SYS_landlock_restrict_self, ruleset_fd, 0) < 0)
		return -errno;
	return 0;
}
