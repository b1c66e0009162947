/* vmm/cli/cli_args.c - the two helpers every subcommand's flag parser
 * shares (declared in cli.h): a flag's value, spelled "--name V" or
 * "--name=V", and a strict unsigned decimal. */
#include "vmm/cli/cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int cli_take_value(int argc, char **argv, int *i, const char *name, const char **val)
{
	const char *a = argv[*i];
	size_t n = strlen(name);
	if (strncmp(a, name, n))
		return 0;
	if (a[n] == '=') {
		*val = a + n + 1;
		return 1;
	}
	if (a[n])
		return 0;
	if (*i + 1 >= argc)
		return -EINVAL;
	*val = argv[++*i];
	return 1;
}

/* Strict unsigned decimal in [min, max]. */
int cli_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	if (!s || !*s || *s == '-' || *s == '+')
		return -EINVAL;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}
