/* vmm/cli/run.h - `kvmbox run` options and their parser (unit-tested). */
#ifndef KVMBOX_VMM_CLI_RUN_H
#define KVMBOX_VMM_CLI_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/cli/machine_fs.h"
#include "vmm/cli/net_args.h"

#define RUN_DEFAULT_MEM_MIB 512
#define RUN_MAX_KERNEL (256u << 20)	/* refuse kernels larger than this */
#define RUN_MAX_INITRD (1024u << 20)
#define RUN_MAX_CMDLINE 2048		/* Linux's COMMAND_LINE_SIZE on x86, NUL included */

struct run_opts {
	const char *kernel;
	const char *initrd;
	const char *cmdline;	/* NULL: CMDLINE_DEFAULT */
	uint64_t mem_mib;
	unsigned cpus;
	bool hugepages;
	bool console;		/* forward host stdin to the serial port */
	bool profile, profile_json;
	bool help;
	struct share_opts fs;	/* --share, --share-9p, --fs-cache, --rootfs, --image */
	struct net_opts net;	/* network card and its flags (net_args.h) */
	int argc;		/* command for the guest (after --) */
	char **argv;
};

/* Parse argv (argv[0] is "run").  0, or -EINVAL with a one-line reason in
 * err (the caller prints it and exits 2). */
int run_parse_args(int argc, char **argv, struct run_opts *o, char *err, size_t errsz);

#endif
