/* tests/fuzz/fuzz_guest_init_argv.c - kvmbox-init's command-line parsing
 * (kvmbox.argv lookup, base64url decoding, argv splitting) on arbitrary
 * bytes: never a crash, and on success an argv whose strings exactly tile
 * the decoded buffer. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "guest/init/kinit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* The input is a kernel command line: NUL-terminate it. */
	char *cmdline = malloc(size + 1);
	if (!cmdline)
		return 0;
	memcpy(cmdline, data, size);
	cmdline[size] = 0;
	struct kinit_argv a;
	char err[128];
	int rc = kinit_argv_from_cmdline(cmdline, &a, err, sizeof(err));
	if (rc == 0) {
		if (a.argc < 1 || a.argv[a.argc] != NULL || a.argv[0][0] == 0)
			abort();
		const char *p = a.buf;
		for (int i = 0; i < a.argc; i++) {
			if (a.argv[i] != p)
				abort();
			p += strlen(p) + 1;
		}
		kinit_argv_free(&a);
	} else if (rc < 0 && (!memchr(err, 0, sizeof(err)) || strchr(err, '\n'))) {
		abort();
	}
	free(cmdline);
	return 0;
}
