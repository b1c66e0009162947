/* guest/init/console.h - the guest end of `kvmbox shell`: CMD on a PTY (or
 * pipes) bound to the virtio-console ports "kvmbox.tty" and "kvmbox.ctl"
 * (protocol in devices/virtio/console_proto.h).
 *
 * Hook for kvmbox-init: when the kernel command line has kvmbox.ctl=1,
 *
 *	int status = kbx_console_session(10000);
 *	if (status >= 0) power off reporting status
 *
 * instead of running kvmbox.argv.  The session reaps every child (init is
 * PID 1) and returns CMD's exit status after the host was told (EXIT).
 */
#ifndef KVMBOX_GUEST_INIT_CONSOLE_H
#define KVMBOX_GUEST_INIT_CONSOLE_H

/* Find the named ports under /sys/class/virtio-ports (waiting up to
 * timeout_ms for the driver to announce them), open /dev/vportNpM and run
 * one session.  CMD's status (0..255), or -errno (-ENOENT: no ports). */
int kbx_console_session(int timeout_ms);

/* One session on open port fds (used by kbx_console_session and by the
 * host tests, which pass socketpairs).  Status or -errno. */
int kbx_console_run(int tty_fd, int ctl_fd);

#endif
