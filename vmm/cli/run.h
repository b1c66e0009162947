/* vmm/cli/run.h - `kvmbox run` options and their parser (unit-tested). */
#ifndef KVMBOX_VMM_CLI_RUN_H
#define KVMBOX_VMM_CLI_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/cli/share_args.h"
#include "vmm/cli/net_args.h"

#define RUN_DEFAULT_MEM_MIB 512
#define RUN_MAX_KERNEL (256u << 20)	/* refuse kernels larger than this */
#define RUN_MAX_INITRD (1024u << 20)
#define RUN_MAX_CMDLINE 2048		/* Linux's COMMAND_LINE_SIZE on x86, NUL included */

struct run_opts {
	const char *cmd;	/* argv[0]: "run", "shell" or an agent's name, for messages */
	const char *kernel;
	const char *initrd;
	const char *cmdline;	/* NULL: CMDLINE_DEFAULT */
	uint64_t mem_mib;
	unsigned cpus;
	bool hugepages;
	bool console;		/* forward host stdin to the serial port */
	bool profile, profile_json;
	bool help;
	const char *snapshot;	/* --snapshot DIR: save the VM there when the guest asks;
				 * --suspend-to DIR: when the host asks (VM_SIG_SUSPEND) */
	bool suspend_only;	/* --suspend-to: the guest's asking saves nothing */
	const char *restore;	/* --restore DIR: start from that snapshot instead of booting */
	int template_argi;	/* --template: its index in argv (kvmbox shell), else 0 */
	struct share_opts fs;	/* --share, --share-9p, --fs-cache, --rootfs, --image */
	struct net_opts net;	/* network card and its flags (net_args.h) */
	int argc;		/* command for the guest (after --) */
	char **argv;
};

/* Parse argv (argv[0] is the command: "run", "shell" or an agent's name,
 * used in messages).  0, or -EINVAL with a one-line reason in err (the
 * caller prints it and exits 2). */
int run_parse_args(int argc, char **argv, struct run_opts *o, char *err, size_t errsz);

/* The defaults run_parse_args starts from. */
void run_opts_init(struct run_opts *o);

/* One flag at argv[*i] (not "--", -h or --help): 1 when it is one of
 * run's (and *i moved past its value), 0 when it is not, -EINVAL with a
 * one-line reason in err. */
int run_parse_flag(int argc, char **argv, int *i, struct run_opts *o, char *err, size_t errsz);

/* A memory size in MiB: "2048", "2048M", "2G" (M/MiB/G/GiB, any case).
 * 0 or -EINVAL. */
int cli_parse_mib(const char *s, uint64_t *mib);

#endif
