/* vmm/cli/run_args.c - parse `kvmbox run` flags into struct run_opts.
 *
 * Kept apart from cmd_run.c so the unit tests exercise every refusal
 * (unknown flag, missing value, bad number, too little memory, bad --cpus)
 * without a VM.  Both "--flag VALUE" and "--flag=VALUE" are accepted.
 */
#include "vmm/cli/run.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/vmm.h"

/* If argv[*i] is --name or --name=V, set *val and return 1 (0: not this flag,
 * -EINVAL: value missing). */
static int take_value(int argc, char **argv, int *i, const char *name, const char **val)
{
	return cli_take_value(argc, argv, i, name, val);
}

int run_parse_args(int argc, char **argv, struct run_opts *o, char *err, size_t errsz)
{
	memset(o, 0, sizeof(*o));
	o->mem_mib = RUN_DEFAULT_MEM_MIB;
	o->cpus = 1;
	o->fs.cache = FS_CACHE_AUTO;
	int i;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = NULL;
		int t;
		if (!strcmp(a, "--")) {
			i++;
			break;
		}
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			o->help = true;
		} else if ((t = take_value(argc, argv, &i, "--kernel", &v))) {
			if (t < 0 || !*v)
				goto missing;
			o->kernel = v;
		} else if ((t = take_value(argc, argv, &i, "--initrd", &v))) {
			if (t < 0 || !*v)
				goto missing;
			o->initrd = v;
		} else if ((t = take_value(argc, argv, &i, "--cmdline", &v))) {
			if (t < 0)
				goto missing;
			if (strlen(v) >= RUN_MAX_CMDLINE) {
				snprintf(err, errsz, "--cmdline is longer than %d bytes", RUN_MAX_CMDLINE);
				return -EINVAL;
			}
			o->cmdline = v;
		} else if ((t = take_value(argc, argv, &i, "--memory", &v))) {
			if (t < 0)
				goto missing;
			if (cli_parse_uint(v, 0, UINT64_MAX, &o->mem_mib) < 0) {
				snprintf(err, errsz, "--memory wants a size in MiB, got '%s'", v);
				return -EINVAL;
			}
			if (o->mem_mib < VM_MIN_MEM_MIB || o->mem_mib > VM_MAX_MEM_MIB) {
				snprintf(err, errsz, "--memory %s MiB is out of range (%d..%d MiB)",
					 v, VM_MIN_MEM_MIB, VM_MAX_MEM_MIB);
				return -EINVAL;
			}
		} else if ((t = take_value(argc, argv, &i, "--cpus", &v))) {
			uint64_t n;
			if (t < 0)
				goto missing;
			if (cli_parse_uint(v, 1, VM_MAX_CPUS, &n) < 0) {
				snprintf(err, errsz, "--cpus wants a number from 1 to %d, got '%s'",
					 VM_MAX_CPUS, v);
				return -EINVAL;
			}
			o->cpus = (unsigned)n;
		} else if ((t = share_parse_flag(argc, argv, &i, &o->fs, err, errsz))) {
			if (t < 0)
				return -EINVAL;	/* machine_fs.c: --share, --rootfs... */
		} else if (!strcmp(a, "--hugepages")) {
			o->hugepages = true;
		} else if (!strcmp(a, "--console")) {
			o->console = true;
		} else if (!strcmp(a, "--profile")) {
			o->profile = true;
		} else if (!strcmp(a, "--profile=json")) {
			o->profile = o->profile_json = true;
		} else if (!strncmp(a, "--profile=", 10)) {
			snprintf(err, errsz, "--profile takes no value or =json, got '%s'", a + 10);
			return -EINVAL;
		} else if ((t = net_opts_take(&o->net, NET_ARGS_VM, argc, argv, &i, err, errsz))) {
			if (t < 0)
				return -EINVAL;
		} else {
			snprintf(err, errsz, "unknown option '%.64s' (try kvmbox run --help)", a);
			return -EINVAL;
		}
		continue;
missing:
		snprintf(err, errsz, "%.32s needs a value", a);
		return -EINVAL;
	}
	if (o->hugepages && o->mem_mib % 2) {
		snprintf(err, errsz, "--memory must be a multiple of 2 MiB with --hugepages");
		return -EINVAL;
	}
	if (net_opts_check(&o->net, err, errsz) < 0)
		return -EINVAL;
	o->argc = argc - i;
	o->argv = argv + i;
	if (!o->help && !o->kernel) {
		snprintf(err, errsz, "--kernel PATH is required (try kvmbox run --help)");
		return -EINVAL;
	}
	return 0;
}
