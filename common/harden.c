/* common/harden.c - a secret-holding process hardens itself (harden.h). */
#include "harden.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

int harden_drop_capabilities(char *err, size_t errsz)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3];
	if (syscall(SYS_capget, &h, d) < 0) {
		int e = errno;
		snprintf(err, errsz, "capget: %s", strerror(e));
		return -e;
	}
	bool any = false;
	for (int i = 0; i < _LINUX_CAPABILITY_U32S_3; i++)
		any |= d[i].effective || d[i].permitted || d[i].inheritable;
	if (!any && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_SYS_ADMIN, 0, 0) <= 0)
		return 0;
	/* the bounding set first: dropping from it needs CAP_SETPCAP, which
	 * the capset below takes away */
	for (int cap = 0; cap <= 63; cap++)
		if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 1)
			prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);	/* EPERM without CAP_SETPCAP */
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	memset(d, 0, sizeof(d));
	if (syscall(SYS_capset, &h, d) < 0) {
		int e = errno;
		snprintf(err, errsz, "capset (dropping every capability): %s", strerror(e));
		return -e;
	}
	return 0;
}

int harden_secret_holder(char *err, size_t errsz)
{
	const struct rlimit none = { 0, 0 };
	if (setrlimit(RLIMIT_CORE, &none) < 0) {
		int e = errno;
		snprintf(err, errsz, "setrlimit(RLIMIT_CORE, 0): %s", strerror(e));
		return -e;
	}
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) {
		int e = errno;
		snprintf(err, errsz, "prctl(PR_SET_DUMPABLE, 0): %s", strerror(e));
		return -e;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		int e = errno;
		snprintf(err, errsz, "prctl(PR_SET_NO_NEW_PRIVS, 1): %s", strerror(e));
		return -e;
	}
	return harden_drop_capabilities(err, errsz);
}

int harden_open_unprivileged(const char *path, int flags)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct had[_LINUX_CAPABILITY_U32S_3], lowered[_LINUX_CAPABILITY_U32S_3];
	if (syscall(SYS_capget, &h, had) < 0)
		return -errno;
	unsigned i = CAP_TO_INDEX(CAP_SYS_ADMIN);
	uint32_t bit = CAP_TO_MASK(CAP_SYS_ADMIN);
	bool admin = had[i].effective & bit;
	memcpy(lowered, had, sizeof(had));
	lowered[i].effective &= ~bit;
	if (admin && syscall(SYS_capset, &h, lowered) < 0)
		return -errno;	/* not opened with it */
	int fd = open(path, flags);
	int e = fd < 0 ? -errno : 0;
	if (admin)
		syscall(SYS_capset, &h, had);	/* raising what is permitted cannot fail */
	return fd < 0 ? e : fd;
}
