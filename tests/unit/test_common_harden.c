/* tests/unit/test_common_harden.c - harden_open_unprivileged
 * (common/harden.h): /proc/self/pagemap opened through it shows a page as
 * present but no physical frame number, even to a process that has
 * CAP_SYS_ADMIN (a plain open of the same file there shows the frame: the
 * control), and the thread keeps its capability afterwards.  As a user
 * without it only the refusal of a missing file is checked. */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/harden.h"

#define PFN_BITS ((1ULL << 55) - 1)

static bool effective_admin(void)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3];
	return syscall(SYS_capget, &h, d) == 0 &&
	       (d[CAP_TO_INDEX(CAP_SYS_ADMIN)].effective & CAP_TO_MASK(CAP_SYS_ADMIN));
}

static uint64_t entry_of(int fd, const void *page)
{
	uint64_t e = 0;
	off_t at = (off_t)((uintptr_t)page / 4096 * sizeof(e));
	assert_int_equal(pread(fd, &e, sizeof(e), at), (ssize_t)sizeof(e));
	return e;
}

static void test_missing_file(void **state)
{
	(void)state;
	assert_int_equal(harden_open_unprivileged("/nonexistent/kvmbox", O_RDONLY), -ENOENT);
}

static void test_pagemap_without_frames(void **state)
{
	(void)state;
	if (!effective_admin()) {
		skip();	/* nothing to hide from a user without CAP_SYS_ADMIN */
		return;
	}
	uint8_t *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(page != MAP_FAILED);
	page[0] = 1;
	int plain = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	assert_true(plain >= 0);
	uint64_t e = entry_of(plain, page);
	assert_true(e >> 63);
	assert_true(e & PFN_BITS);	/* the control: CAP_SYS_ADMIN sees frames */
	int fd = harden_open_unprivileged("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	e = entry_of(fd, page);
	assert_true(e >> 63);
	assert_int_equal(e & PFN_BITS, 0);
	assert_true(effective_admin());	/* given back */
	close(fd);
	close(plain);
	munmap(page, 4096);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_pagemap_without_frames),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
