/* guest/init/console.h - the guest end of `kvmbox shell`: CMD on a PTY (or
 * pipes) bound to the virtio-console ports "kvmbox.tty" and "kvmbox.ctl"
 * (protocol in guest/abi/console.h).
 *
 * Hook for kvmbox-init (guest/init/main.c):
 *
 *	if (kbx_console_wanted(cmdline))
 *		finish(status of kbx_console_session(10000))
 *
 * instead of running kvmbox.argv.  The session reaps every child (init is
 * PID 1) and returns CMD's exit status once the host was told (EXIT) and has
 * hung up kvmbox.ctl.  kvmbox never hangs up: it stops the VM when CMD's
 * output is drained, so init's reboot (which resets the virtio devices and
 * with them output the host has not taken yet) never comes first.
 */
#ifndef KVMBOX_GUEST_INIT_CONSOLE_H
#define KVMBOX_GUEST_INIT_CONSOLE_H

#include <stdbool.h>

/* Whether the kernel command line asks for a console session
 * (a "kvmbox.ctl=1" word). */
bool kbx_console_wanted(const char *cmdline);

/* Find the named ports under /sys/class/virtio-ports (waiting up to
 * timeout_ms for the driver to announce them), open /dev/vportNpM and run
 * one session.  CMD's status (0..255), or -errno (-ENOENT: no ports). */
int kbx_console_session(int timeout_ms);

/* One session on open port fds (used by kbx_console_session and by the
 * host tests, which pass socketpairs and hang up kvmbox.ctl after EXIT);
 * the CA message installs its files under root ("" in the guest).  Status
 * or -errno. */
int kbx_console_run(int tty_fd, int ctl_fd, const char *root);

#endif
