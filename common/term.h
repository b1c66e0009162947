/* common/term.h - the host terminal while kvmbox relays it (kvmbox shell,
 * agent launches behind a holder, kvmbox attach).
 *
 * term_raw_enter() puts the terminal on fd in raw mode (as ssh -t does: no
 * echo, no line editing, no signals from keys, no output processing), so
 * Ctrl-C, Ctrl-Z and friends travel to the guest's PTY as bytes.  The
 * previous settings come back through term_restore() on every way out:
 * the normal path calls it, an atexit() handler calls it, and fatal signals
 * (SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL) restore before dying.
 * SIGTERM, SIGHUP and SIGINT are not caught here: the shell turns them
 * into an orderly stop, which restores through the normal path.
 */
#ifndef KVMBOX_COMMON_TERM_H
#define KVMBOX_COMMON_TERM_H

#include <stdint.h>

/* 0, or -errno (-ENOTTY if fd is not a terminal: nothing changed). */
int term_raw_enter(int fd);
/* Put the saved settings back (idempotent, async-signal-safe). */
void term_restore(void);
/* Window size of the terminal on fd: 0 or -errno. */
int term_size(int fd, uint16_t *rows, uint16_t *cols);

#endif
