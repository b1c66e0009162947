/* devices/virtio/console_proto.h - the kvmbox.ctl control protocol between
 * the host (kvmbox shell / launch) and the guest's init, shared by both
 * sides (so it is plain C with fixed-size little-endian fields and no host
 * headers).
 *
 * The virtio-console device has named ports (VIRTIO_CONSOLE_PORT_NAME):
 *   port 0        the hvc console (kernel messages when wanted)
 *   "kvmbox.tty"  the command's terminal byte stream, both ways
 *   "kvmbox.ctl"  this protocol, both ways
 * The guest finds them by /sys/class/virtio-ports/vportNpM/name.
 *
 * On kvmbox.ctl, every message is a header followed by `len` payload bytes:
 *
 *	struct kbx_ctl_hdr { u16 type; u16 flags (0); u32 len; }
 *
 * A receiver skips unknown types (forward compatibility) and treats a len
 * above KBX_CTL_MAX_PAYLOAD as a protocol error (it closes the session).
 *
 * Session:
 *	guest -> host  READY   { version }             init found its ports
 *	host -> guest  START   { rows, cols, flags, argc, envc } argv... env...
 *	host -> guest  RESIZE  { rows, cols }          the host window changed
 *	host -> guest  SIGNAL  { signo }               deliver to CMD's group
 *	host -> guest  STDIN_EOF {}                    host input ended
 *	guest -> host  EXIT    { code, signo }         CMD ended; output flushed
 *	guest -> host  ERROR   "message"               e.g. exec failed (then EXIT)
 *
 * START's strings are NUL-terminated, argv first then env ("K=V"); argc 0
 * means the guest's login shell.  With KBX_START_TTY, CMD runs on a PTY whose
 * master is relayed to kvmbox.tty (stdout and stderr merged, as ssh -t);
 * without it, CMD's stdin and stdout are pipes relayed to kvmbox.tty and
 * STDIN_EOF closes CMD's stdin.  EXIT is sent only after every byte of
 * CMD's output was written to kvmbox.tty.  Signals are Linux numbers.
 */
#ifndef KVMBOX_DEVICES_VIRTIO_CONSOLE_PROTO_H
#define KVMBOX_DEVICES_VIRTIO_CONSOLE_PROTO_H

#include <stdint.h>

#define KBX_PORT_TTY "kvmbox.tty"
#define KBX_PORT_CTL "kvmbox.ctl"

#define KBX_CTL_VERSION 1
#define KBX_CTL_MAX_PAYLOAD 65536u

enum kbx_ctl_type {
	/* host -> guest */
	KBX_CTL_START = 1,
	KBX_CTL_RESIZE = 2,
	KBX_CTL_SIGNAL = 3,
	KBX_CTL_STDIN_EOF = 4,
	/* guest -> host */
	KBX_CTL_READY = 0x81,
	KBX_CTL_EXIT = 0x82,
	KBX_CTL_ERROR = 0x83,
	/* 0x10..0x1f reserved for the clipboard, both ways */
};

struct kbx_ctl_hdr {
	uint16_t type;
	uint16_t flags;		/* 0 */
	uint32_t len;		/* payload bytes after the header */
} __attribute__((packed));

#define KBX_START_TTY 1u	/* run CMD on a PTY */

struct kbx_ctl_start {
	uint16_t rows, cols;	/* initial window size (TTY only) */
	uint32_t flags;		/* KBX_START_* */
	uint32_t argc, envc;	/* strings that follow */
} __attribute__((packed));

struct kbx_ctl_resize {
	uint16_t rows, cols;
} __attribute__((packed));

struct kbx_ctl_signal {
	uint32_t signo;
} __attribute__((packed));

struct kbx_ctl_ready {
	uint32_t version;	/* KBX_CTL_VERSION */
} __attribute__((packed));

struct kbx_ctl_exit {
	int32_t code;		/* exit status 0..255 (128 + signo if killed) */
	uint32_t signo;		/* the signal that killed CMD, or 0 */
} __attribute__((packed));

#endif
