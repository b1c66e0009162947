/* guest/init/kinit.h - the pure parts of kvmbox-init (the guest's PID 1):
 * finding and decoding the command kvmbox passes on the kernel command line,
 * and turning a wait status into the value written to the marker port.
 *
 * THE CONTRACT with kvmbox (vmm/cmdline.c encodes):
 *   - the command arrives as kvmbox.argv=<base64url without padding
 *     (guest/abi/base64url.h) of argv[0] NUL argv[1] NUL ...>, every
 *     string NUL-terminated;
 *   - the boot marker and the exit status go to the marker port
 *     (guest/abi/marker.h), then init resets the machine.
 *
 * Kept free of system calls so the host's unit tests link it (libguest.a)
 * and the static guest binary compiles the same file.
 */
#ifndef KVMBOX_GUEST_INIT_KINIT_H
#define KVMBOX_GUEST_INIT_KINIT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "guest/abi/marker.h"
#include "guest/abi/cmdline.h"


/* Exit status init reports when it cannot run the command at all because
 * the command line is malformed (same as kvmbox's own usage errors). */
#define KINIT_EXIT_BAD_CMDLINE 2

/* The parameter kvmbox puts the command in. */
#define KINIT_ARGV_PARAM KBX_PARAM_ARGV

/* A decoded command: argv points into buf; both are owned by the struct. */
struct kinit_argv {
	char **argv;	/* argc strings, then NULL */
	int argc;
	char *buf;	/* the decoded bytes: argc NUL-terminated strings */
};

/* Find the last parameter NAME=VALUE in a kernel command line (words split
 * on whitespace; a word that starts with '"' runs to the next '"', as the
 * kernel parses it).  Returns a pointer to VALUE and its length in *vlen, or
 * NULL when the parameter is absent. */
const char *kinit_cmdline_param(const char *cmdline, const char *name, size_t *vlen);

/* Split decoded bytes into argv: every string must be NUL-terminated and
 * the first must not be empty.  On success fills *out (taking a copy) and
 * returns 0; otherwise returns -EINVAL / -ENOMEM with a one-line reason in
 * err (when errlen > 0). */
int kinit_argv_split(const uint8_t *bytes, size_t len, struct kinit_argv *out,
		     char *err, size_t errlen);

/* The whole step: look for kvmbox.argv in cmdline and decode it.  Returns 1
 * when the parameter is absent (no command: init runs a shell), 0 with *out
 * filled, or a negative errno with a one-line reason in err. */
int kinit_argv_from_cmdline(const char *cmdline, struct kinit_argv *out,
			    char *err, size_t errlen);

void kinit_argv_free(struct kinit_argv *a);

/* Format a one-line reason into err[0..errlen) (nothing when err is NULL
 * or errlen is 0); shared by the init's parsers. */
void kinit_set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The exit status a shell would show for a waitpid() status: the exit code,
 * or 128 + signal number.  Anything else (stopped) maps to 255. */
int kinit_exit_code(int wstatus);

#endif
