/* guest/abi/console.h - the kvmbox.ctl control protocol between
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
 *	host -> guest  CA      DER certificate         before START: the TLS
 *	               proxy's per-launch CA, which init installs (trust
 *	               stores and their environment variables, guest/init/
 *	               netcfg.h) before CMD runs; ignored after START
 *	guest -> host  EXIT    { code, signo }         CMD ended; output flushed
 *	guest -> host  ERROR   "message"               e.g. exec failed (then EXIT)
 *	guest -> host  LISTENERS { u16 port... }       with KBX_START_LISTENERS:
 *	               the guest's TCP listeners (not on loopback), sorted, the
 *	               whole set, sent when it changes (scanned once a second)
 *
 * START's strings are NUL-terminated, argv first then env ("K=V"); argc 0
 * means the guest's login shell.  With KBX_START_TTY, CMD runs on a PTY whose
 * master is relayed to kvmbox.tty (stdout and stderr merged, as ssh -t);
 * without it, CMD's stdin and stdout are pipes relayed to kvmbox.tty and
 * STDIN_EOF closes CMD's stdin.  EXIT is sent only after every byte of
 * CMD's output was written to kvmbox.tty.  Written is not taken: the host
 * may still have output chains to take, so after EXIT the guest does
 * nothing that resets the device (no reboot) until the host stops the VM
 * (or hangs up kvmbox.ctl, which the tests do).  Signals are Linux numbers.
 */
#ifndef KVMBOX_GUEST_ABI_CONSOLE_H
#define KVMBOX_GUEST_ABI_CONSOLE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

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
	KBX_CTL_CA = 5,
	/* guest -> host */
	KBX_CTL_READY = 0x81,
	KBX_CTL_EXIT = 0x82,
	KBX_CTL_ERROR = 0x83,
	KBX_CTL_LISTENERS = 0x84,
	/* 0x10..0x1f reserved for the clipboard, both ways */
};

struct kbx_ctl_hdr {
	uint16_t type;
	uint16_t flags;		/* 0 */
	uint32_t len;		/* payload bytes after the header */
} __attribute__((packed));

#define KBX_CA_DER_MAX 2048u	/* a CA message's certificate, at most */
#define KBX_START_TTY 1u	/* run CMD on a PTY */
#define KBX_START_LISTENERS 2u	/* report TCP listeners (KBX_CTL_LISTENERS) */
#define KBX_LISTENERS_MAX 64	/* ports in one LISTENERS message */

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

/* --- codec, header-only so the static guest init needs no library ---- */

/* Write one frame (header + payload) into out: its length, or 0 when it
 * does not fit or the payload is too large. */
static inline size_t kbx_ctl_frame(void *out, size_t cap, uint16_t type, const void *payload,
				   size_t len)
{
	struct kbx_ctl_hdr h = { .type = type, .flags = 0, .len = (uint32_t)len };
	if (len > KBX_CTL_MAX_PAYLOAD || cap < sizeof(h) || len > cap - sizeof(h))
		return 0;
	memcpy(out, &h, sizeof(h));
	if (len)
		memcpy((uint8_t *)out + sizeof(h), payload, len);
	return sizeof(h) + len;
}

/* Reassembles frames from a byte stream.  Zero it to start. */
struct kbx_ctl_reader {
	size_t have;			/* bytes of the current frame in buf */
	uint8_t buf[sizeof(struct kbx_ctl_hdr) + KBX_CTL_MAX_PAYLOAD];
};

/* Feed bytes; *used says how many were taken.  Returns 1 when a whole frame
 * is ready (*hdr and *payload point into the reader until the next call),
 * 0 when more bytes are needed (all of data was taken), -1 on a frame
 * whose length is over KBX_CTL_MAX_PAYLOAD (the stream is unusable). */
static inline int kbx_ctl_feed(struct kbx_ctl_reader *r, const void *data, size_t n,
			       size_t *used, struct kbx_ctl_hdr *hdr, const uint8_t **payload)
{
	const uint8_t *p = (const uint8_t *)data;
	size_t hs = sizeof(struct kbx_ctl_hdr), want;
	*used = 0;
	if (r->have >= hs) {
		struct kbx_ctl_hdr h;
		memcpy(&h, r->buf, hs);
		if (r->have == hs + h.len)
			r->have = 0;	/* the previous frame was delivered */
	}
	for (;;) {
		if (r->have < hs) {
			want = hs - r->have;
		} else {
			memcpy(hdr, r->buf, hs);
			if (hdr->len > KBX_CTL_MAX_PAYLOAD)
				return -1;
			want = hs + hdr->len - r->have;
			if (want == 0) {
				*payload = r->buf + hs;
				return 1;
			}
		}
		size_t k = n - *used < want ? n - *used : want;
		if (k == 0)
			return 0;
		memcpy(r->buf + r->have, p + *used, k);
		r->have += k;
		*used += k;
	}
}

#endif
