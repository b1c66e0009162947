/* common/harden.c - a secret-holding process hardens itself (harden.h). */
#include "harden.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

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
	return 0;
}
