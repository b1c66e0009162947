/* vmm/cli/run_args.c - parse `kvmbox run` flags into struct run_opts.
 *
 * Kept apart from cmd_run.c so the unit tests exercise every refusal
 * (unknown flag, missing value, bad number, too little memory, bad --cpus)
 * without a VM.  Both "--flag VALUE" and "--flag=VALUE" are accepted.
 * run_parse_flag() judges one flag, so that the agent launchers can tell
 * kvmbox's flags from the agent's (cmd_agent.c).
 */
#include "vmm/cli/run.h"
#include "vmm/cli/cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "vmm/vmm.h"

/* A memory size in MiB: plain digits are MiB; a suffix M/MiB or G/GiB
 * (either case) says so.  0 or -EINVAL. */
int cli_parse_mib(const char *s, uint64_t *mib)
{
	size_t n = strspn(s, "0123456789");
	if (n == 0 || n > 19)
		return -EINVAL;
	char digits[20];
	memcpy(digits, s, n);
	digits[n] = 0;
	uint64_t v;
	if (cli_parse_uint(digits, 0, UINT64_MAX, &v) < 0)
		return -EINVAL;
	const char *u = s + n;
	uint64_t scale;
	if (!*u || !strcasecmp(u, "m") || !strcasecmp(u, "mib"))
		scale = 1;
	else if (!strcasecmp(u, "g") || !strcasecmp(u, "gib"))
		scale = 1024;
	else
		return -EINVAL;
	if (v > UINT64_MAX / scale)
		return -EINVAL;
	*mib = v * scale;
	return 0;
}

/* The flag at argv[*i] (argv[0] names the command for messages). */
int run_parse_flag(int argc, char **argv, int *i, struct run_opts *o, char *err, size_t errsz)
{
	const char *a = argv[*i], *v = NULL;
	int t;
	if ((t = cli_take_value(argc, argv, i, "--kernel", &v))) {
		if (t < 0 || !*v)
			goto missing;
		o->kernel = v;
	} else if ((t = cli_take_value(argc, argv, i, "--initrd", &v))) {
		if (t < 0 || !*v)
			goto missing;
		o->initrd = v;
	} else if ((t = cli_take_value(argc, argv, i, "--cmdline", &v))) {
		if (t < 0)
			goto missing;
		if (strlen(v) >= RUN_MAX_CMDLINE) {
			snprintf(err, errsz, "--cmdline is longer than %d bytes", RUN_MAX_CMDLINE);
			return -EINVAL;
		}
		o->cmdline = v;
	} else if ((t = cli_take_value(argc, argv, i, "--memory", &v))) {
		if (t < 0)
			goto missing;
		if (cli_parse_mib(v, &o->mem_mib) < 0) {
			snprintf(err, errsz, "--memory wants a size: MiB, or with a unit (2G, 2048M), got '%.64s'", v);
			return -EINVAL;
		}
		if (o->mem_mib < VM_MIN_MEM_MIB || o->mem_mib > VM_MAX_MEM_MIB) {
			snprintf(err, errsz, "--memory %.64s is out of range (%d..%d MiB)",
				 v, VM_MIN_MEM_MIB, VM_MAX_MEM_MIB);
			return -EINVAL;
		}
	} else if ((t = cli_take_value(argc, argv, i, "--cpus", &v))) {
		uint64_t n;
		if (t < 0)
			goto missing;
		if (cli_parse_uint(v, 1, VM_MAX_CPUS, &n) < 0) {
			snprintf(err, errsz, "--cpus wants a number from 1 to %d, got '%.64s'",
				 VM_MAX_CPUS, v);
			return -EINVAL;
		}
		o->cpus = (unsigned)n;
	} else if ((t = share_parse_flag(argc, argv, i, &o->fs, err, errsz))) {
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
		snprintf(err, errsz, "--profile takes no value or =json, got '%.64s'", a + 10);
		return -EINVAL;
	} else if ((t = net_opts_take(&o->net, NET_ARGS_VM, argc, argv, i, err, errsz))) {
		if (t < 0)
			return -EINVAL;
	} else {
		return 0;
	}
	return 1;
missing:
	snprintf(err, errsz, "%.32s needs a value", a);
	return -EINVAL;
}

/* --snapshot and --restore: the devices whose state a snapshot keeps
 * (virtio-fs shares, not virtio-9p ones, whose fids are not saved; the
 * network card, with the proxy only for kvmbox shell, which hands the
 * guest its per-launch CA in the session), and a restored guest continues
 * where it was, so it takes no boot input. */
static int run_check_snapshot_flags(const struct run_opts *o, char *err, size_t errsz)
{
	const char *flag = o->template_argi ? "--template" : o->restore ? "--restore" :
			   o->suspend_only ? "--suspend-to" : "--snapshot";
	bool saves_where_asked = o->snapshot && !o->suspend_only;
	if (o->template_argi && (saves_where_asked || o->restore || !o->cmd || !strcmp(o->cmd, "run"))) {
		snprintf(err, errsz, saves_where_asked || o->restore ? "--template makes and restores its own "
			 "snapshots: not with --snapshot or --restore" : "--template is kvmbox shell's "
			 "and the agents'");
		return -EINVAL;
	}
	if (!o->snapshot && !o->restore && !o->template_argi)
		return 0;
	for (unsigned i = 0; i < o->fs.n; i++)
		if (o->fs.share[i].nine_p) {
			snprintf(err, errsz, "%s does not work with --share-9p yet (use --share)", flag);
			return -EINVAL;
		}
	/* kvmbox shell (an agent's VMM too) hands the guest the proxy's CA in
	 * its session, after a restore too; kvmbox run's is on the kernel
	 * command line, booted. */
	if (!o->net.disabled && o->net.proxy && (!o->cmd || !strcmp(o->cmd, "run"))) {
		snprintf(err, errsz, "%s does not work with --proxy (its CA is on the booted "
			 "command line: use kvmbox shell)", flag);
		return -EINVAL;
	}
	if (o->hugepages) {
		snprintf(err, errsz, "%s does not work with --hugepages", flag);
		return -EINVAL;
	}
	if (o->restore && o->cmdline) {
		snprintf(err, errsz, "--restore takes no --cmdline: the guest goes on where it was "
			 "saved");
		return -EINVAL;
	}
	/* kvmbox run's command is on the kernel command line, booted already;
	 * kvmbox shell hands its command over kvmbox.ctl (shell_session.h). */
	if (o->restore && o->argc && (!o->cmd || strcmp(o->cmd, "shell"))) {
		snprintf(err, errsz, "--restore takes no command: the guest goes on where it was "
			 "saved");
		return -EINVAL;
	}
	return 0;
}

void run_opts_init(struct run_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->mem_mib = RUN_DEFAULT_MEM_MIB;
	o->cpus = 1;
	o->fs.cache = FS_CACHE_AUTO;
}

int run_parse_args(int argc, char **argv, struct run_opts *o, char *err, size_t errsz)
{
	run_opts_init(o);
	o->cmd = argc > 0 ? argv[0] : "run";
	const char *suspend_to = NULL;
	int i;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--")) {
			i++;
			break;
		}
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			o->help = true;
			continue;
		}
		if (!strcmp(a, "--template")) {
			o->template_argi = i;
			continue;
		}
		const char **dir = NULL;
		int t;
		bool suspend = false;
		if ((t = cli_take_value(argc, argv, &i, "--snapshot", &o->snapshot)))
			dir = &o->snapshot;
		else if ((t = cli_take_value(argc, argv, &i, "--suspend-to", &suspend_to)))
			dir = &suspend_to, suspend = true;
		else if ((t = cli_take_value(argc, argv, &i, "--restore", &o->restore)))
			dir = &o->restore;
		if (dir) {
			if (t < 0 || !*dir || !**dir) {
				snprintf(err, errsz, "%.32s needs a directory", a);
				return -EINVAL;
			}
			o->suspend_only |= suspend;
			continue;
		}
		t = run_parse_flag(argc, argv, &i, o, err, errsz);
		if (t < 0)
			return t;
		if (t == 0) {
			snprintf(err, errsz, "unknown option '%.64s' (try kvmbox %s --help)", a, argv[0]);
			return -EINVAL;
		}
	}
	if (suspend_to && o->snapshot) {
		snprintf(err, errsz, "--suspend-to and --snapshot: choose one (each names where the VM is saved)");
		return -EINVAL;
	}
	if (suspend_to)
		o->snapshot = suspend_to;
	if (o->hugepages && o->mem_mib % 2) {
		snprintf(err, errsz, "--memory must be a multiple of 2 MiB with --hugepages");
		return -EINVAL;
	}
	if (net_opts_check(&o->net, err, errsz) < 0)
		return -EINVAL;
	o->argc = argc - i;
	o->argv = argv + i;
	if (run_check_snapshot_flags(o, err, errsz) < 0)
		return -EINVAL;
	if (!o->help && !o->kernel && !o->restore) {
		snprintf(err, errsz, "--kernel PATH is required (try kvmbox %s --help)", argv[0]);
		return -EINVAL;
	}
	return 0;
}
