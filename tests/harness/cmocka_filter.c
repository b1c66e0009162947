/* tests/harness/cmocka_filter.c - one test case of a cmocka program:
 * CASES=PATTERN (a cmocka glob, e.g. "test_matrix" or "test_*links*")
 * runs only the cases it names.  Linked into every unit test program (as
 * an object, not from the archive, so its constructor always runs):
 *   TIERS=unit TESTS=test_launch_config CASES=test_matrix tests/run.sh
 *   CASES=test_matrix build/tests/unit/test_launch_config
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

__attribute__((constructor)) static void cmocka_filter_from_env(void)
{
	const char *pattern = getenv("CASES");
	if (pattern && *pattern)
		cmocka_set_test_filter(pattern);
}
