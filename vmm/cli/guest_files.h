/* vmm/cli/guest_files.h - where `kvmbox run` and `kvmbox shell` find the
 * guest kernel and initrd when the command line names none.
 *
 * Kernel, first found wins:
 *   1. --kernel PATH
 *   2. $KVMBOX_KERNEL
 *   3. vmlinux next to the kvmbox binary (build/vmlinux: `make kernel`'s
 *      link to the exact kernel this tree builds)
 *   4. the newest $KVMBOX_CACHE/kernel/<key>/vmlinux (KVMBOX_CACHE defaults
 *      to ~/.cache/kvmbox; `make kernel` builds there)
 * Initrd:
 *   1. --initrd PATH
 *   2. $KVMBOX_INITRD
 *   3. only when the kernel came from 3 or 4: initrd.cpio next to the
 *      kvmbox binary (build/initrd.cpio from `make initrd`); a default
 *      kernel without it is an error, since it could not start a command.
 * A kernel given by 1 or 2 boots without an initrd unless one is named
 * (the tiny test guests need none).  When nothing is found, gf->missing
 * holds a one-line error naming the places looked at and `make kernel
 * initrd`; the caller says it after the flags were judged (one error per
 * input: a bad flag is reported as such whether a kernel exists or not).
 */
#ifndef KVMBOX_VMM_CLI_GUEST_FILES_H
#define KVMBOX_VMM_CLI_GUEST_FILES_H

#include <limits.h>
#include <stddef.h>

/* The command line with --kernel / --initrd added where defaulted. */
struct guest_files {
	char kernel[PATH_MAX];	/* storage for a defaulted path */
	char initrd[PATH_MAX];
	char **argv;		/* argv[0], added flags, then the rest (heap) */
	int argc;
	char missing[PATH_MAX * 2 + 256];	/* what could not be found, or "" */
};

/* Fill gf from the command's argv (argv[0] is the command name).  0 (with
 * gf->missing set when a default was not found), or -ENOMEM with one line
 * in err.  With -h/--help nothing is required.  guest_files_free() in
 * every case. */
int guest_files_resolve(struct guest_files *gf, int argc, char **argv, char *err, size_t errsz);
void guest_files_free(struct guest_files *gf);

#endif
