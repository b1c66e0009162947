/* common/harden.h - what a process that holds real secrets does first.
 *
 * An agent launch and `kvmbox proxy` hold the user's real tokens for as
 * long as they run.  Before they read any, they make themselves
 * non-dumpable (PR_SET_DUMPABLE 0: another process of the same user can
 * no longer ptrace them or read their /proc/PID/mem or environ, and the
 * kernel writes no core), set RLIMIT_CORE to 0 (no core file, even if
 * something makes them dumpable again), and set no_new_privs (nothing they
 * run gains privileges through exec, and a seccomp filter can follow).
 * A process started with capabilities (by root, or from a file with
 * capabilities) drops every one of them, from all its sets and the
 * bounding set: kvmbox needs none (membership of the kvm group opens
 * /dev/kvm).  Programs they start with exec are dumpable again, as the
 * kernel does on exec.
 */
#ifndef KVMBOX_COMMON_HARDEN_H
#define KVMBOX_COMMON_HARDEN_H

#include <stddef.h>

/* All three, or none reported done: 0, or -errno with what failed in err
 * (one line).  Callers refuse to go on without them (fail closed). */
int harden_secret_holder(char *err, size_t errsz);

/* Drop every capability (effective, permitted, inheritable, ambient, and
 * the bounding set as far as CAP_SETPCAP allows): 0 at once when the
 * process has none, or -errno with what failed in err.  The cage
 * (cage/cage.h) calls it too, so a VMM started as root runs without them. */
int harden_drop_capabilities(char *err, size_t errsz);

/* open(path, flags) with CAP_SYS_ADMIN out of the calling thread's
 * effective set for the call (and back after): some files decide at open
 * what the descriptor will show, whoever reads it later; /proc/self/pagemap
 * opened with CAP_SYS_ADMIN shows physical page frame numbers, even after
 * the process dropped every capability (the cage).  An fd, or -errno. */
int harden_open_unprivileged(const char *path, int flags);

#endif
