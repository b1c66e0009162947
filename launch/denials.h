/* launch/denials.h - the record of what the egress policy refused, per
 * project: `kvmbox logs --denials` reads it.
 *
 * The summary at exit is one line cut to fit a terminal; the record has
 * every refusal.  Each agent launch appends to <state dir>.denials, beside
 * the project's state directory where no guest reaches (0600, never
 * through a link): a line naming the launch, then one line per refusal as
 * it is known: the proxy's 403s as they are given (names outside the
 * egress profile, GitHub writes off the allow-list, refused destinations'
 * requests), and the network stack's refusals (addresses, ports, names the
 * DNS forwarder refused, each with its count) as the VM ends.  Two
 * processes write it (the broker and the VMM, broker/broker.h), each line
 * with one O_APPEND write, so lines never interleave.  A record over
 * DENIALS_MAX_BYTES is moved to <...>.denials.old when a launch opens it.
 */
#ifndef KVMBOX_LAUNCH_DENIALS_H
#define KVMBOX_LAUNCH_DENIALS_H

#include <stddef.h>
#include <stdio.h>

#define DENIALS_MAX_BYTES (1u << 20)

/* The record's path for the project (resolved): 0 or -errno. */
int denials_path(const char *project_real, char *out, size_t outsz);

/* Open the project's record for a launch and write its first line ("TIME
 * launch: WHAT"): the descriptor (O_APPEND, close-on-exec), or -errno. */
int denials_open(const char *project_real, const char *what);

/* Append one line "TIME TEXT" to fd (bytes outside printable ASCII in
 * text become '?'); errors are ignored: the record must never stop a
 * launch. */
void denials_write(int fd, const char *text);

/* Copy the project's record to out: 0, -ENOENT when there is none yet, or
 * -errno. */
int denials_print(const char *project_real, FILE *out);

#endif
