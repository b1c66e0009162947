/* devices/virtio/console.h - virtio-console with multiport and named ports.
 *
 * The guest sees one virtio-console device (VIRTIO_CONSOLE_F_MULTIPORT,
 * VIRTIO_CONSOLE_F_SIZE) with up to VCON_MAX_PORTS ports: port 0 is the hvc
 * console, the others are named (VIRTIO_CONSOLE_PORT_NAME) character devices
 * (/dev/vportNpM, /sys/class/virtio-ports/vportNpM/name).  kvmbox uses
 * "kvmbox.tty" and "kvmbox.ctl" (guest/abi/console.h); more can be added.
 *
 * The host side of every port is a byte stream with back-pressure, given as
 * a struct vcon_backend:
 *  - fd mode: bytes from in_fd go to the guest, guest bytes go to out_fd,
 *    both through io_uring reads/writes straight into/out of the guest's
 *    buffers (no copy).  A slow out_fd holds the guest's transmit chain, so
 *    the guest blocks when its queue fills; guest input is read only while
 *    the guest has receive buffers posted and the port open.  EOF on in_fd
 *    stops reading and calls on_hangup; the port stays connected (Linux
 *    blocks writes to a port whose host side is closed, and CMD's output
 *    must still flow after the host's input ended).
 *  - callback mode (in_fd/out_fd -1): on_output receives guest bytes and
 *    returns how many it took (short: the rest waits for
 *    vcon_port_output_resume); vcon_port_send queues host bytes (up to
 *    VCON_PENDING_MAX) that go to the guest as it posts buffers.
 * The two may be mixed (in_fd with on_output, or vcon_port_send with
 * out_fd).  All of it runs on the device's loop thread.
 *
 * Snapshots (ops->save/load, vmm/snapshot/): what the guest negotiated
 * (ports added, ready and open, host closed), the window size, control
 * messages not yet taken and host bytes queued for the guest.  A save first
 * settles the host side: reads in flight are cancelled, the guest's output
 * is written out in full (-EBUSY when a backend will not take it within
 * 2 s).  A restore needs a device built with the same ports and names; its
 * new backends start reading once the restored guest has buffers posted.
 */
#ifndef KVMBOX_DEVICES_VIRTIO_CONSOLE_H
#define KVMBOX_DEVICES_VIRTIO_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "devices/virtio/mmio.h"

#define VCON_MAX_PORTS 8u
#define VCON_NAME_MAX 63u
#define VCON_PENDING_MAX 65536u	/* host bytes queued per port (callback mode) */
#define VCON_QUEUE_SIZE 128u
#define VCON_CTRL_PENDING 32u	/* control messages waiting for guest buffers */

/* The host end of one port. */
struct vcon_backend {
	int in_fd;		/* host -> guest source, or -1 */
	int out_fd;		/* guest -> host sink, or -1 (then on_output) */
	/* Guest wrote len bytes; return how many were consumed (<= len).  A
	 * short count holds the rest until vcon_port_output_resume(). */
	size_t (*on_output)(void *opaque, const uint8_t *buf, size_t len);
	/* The guest opened (true) or closed (false) the port.  On a device
	 * reset this runs on the vCPU thread with the device locks held:
	 * record the fact, do not call back into the device. */
	void (*on_open)(void *opaque, bool open);
	/* The host side's input ended (in_fd EOF) or output failed: for
	 * the owner to notice (may be NULL). */
	void (*on_hangup)(void *opaque);
	/* The guest's first bytes on this port reached the backend (may be
	 * NULL; runs once, on the loop thread). */
	void (*on_first_output)(void *opaque);
	void *opaque;
};

struct vcon;

/* One port's state (internal; read-only for users). */
struct vcon_port {
	struct vcon *con;
	unsigned id;
	bool used;			/* configured with vcon_add_port */
	bool console;			/* port 0: hvc */
	char name[VCON_NAME_MAX + 1];
	struct vcon_backend be;
	bool guest_ready;		/* PORT_READY received */
	bool guest_open;		/* guest has the port open */
	bool host_closed;		/* vcon_port_host_close: told the guest */
	bool in_eof;			/* in_fd hit EOF or failed: no more reads */

	/* host -> guest */
	struct vq_chain rx;		/* receive chain being filled */
	bool rx_held;			/* rx popped and not yet pushed */
	bool rx_reading;		/* io_uring read into rx in flight */
	bool rx_polling;		/* ... a POLLIN wait instead (see wait_ready) */
	struct loop_op rx_op;
	uint8_t *pending;		/* vcon_port_send bytes (callback mode) */
	size_t pending_len;

	/* guest -> host */
	struct vq_chain tx;		/* transmit chain being drained */
	bool tx_held;
	bool tx_writing;		/* io_uring write from tx in flight */
	bool tx_polling;		/* ... a POLLOUT wait instead (see wait_ready) */
	unsigned tx_first;		/* first iovec not yet fully written */
	struct loop_op tx_op;
	uint64_t bytes_in, bytes_out;	/* to / from the guest */
};

/* The device. */
struct vcon {
	struct vdev vdev;
	struct vdev_ops ops;
	unsigned nports;		/* max_nr_ports announced */
	uint16_t cols, rows;		/* VIRTIO_CONSOLE_F_SIZE config */
	bool device_ready;		/* guest sent DEVICE_READY */
	bool saving;			/* ops->save began: no host reads start */
	struct vcon_port port[VCON_MAX_PORTS];
	/* control messages to the guest, waiting for c_ivq buffers */
	struct {
		uint8_t buf[8 + VCON_NAME_MAX + 1];
		uint16_t len;
	} ctrl[VCON_CTRL_PENDING];
	unsigned ctrl_head, ctrl_count;
	struct vq_chain ctrl_in;	/* control message being delivered to the guest */
	struct vq_chain ctrl_out;	/* control message from the guest being handled
					 * (handling it may deliver others: two chains) */
};

/* Create the device with nports ports (1..VCON_MAX_PORTS; port 0 is the
 * console).  Heap-allocated (it holds large chains); NULL on failure. */
struct vcon *vcon_create(const struct dev_env *env, uint64_t base, unsigned nports);
void vcon_destroy(struct vcon *c);

/* Give port id (0 < id < nports) a name and a backend; port 0 takes a NULL
 * name.  Before the guest drives the device.  0 or -errno. */
int vcon_add_port(struct vcon *c, unsigned id, const char *name, const struct vcon_backend *be);

/* Queue host bytes for the guest (callback mode): bytes accepted, which is
 * len unless VCON_PENDING_MAX would be exceeded (then fewer, maybe 0). */
size_t vcon_port_send(struct vcon *c, unsigned id, const void *buf, size_t len);
/* Bytes queued by vcon_port_send and not yet in a guest buffer. */
size_t vcon_port_pending(struct vcon *c, unsigned id);
/* The on_output consumer can take more: resume delivering guest bytes. */
void vcon_port_output_resume(struct vcon *c, unsigned id);
/* Whether every byte the guest has queued on this port so far reached the
 * host backend (nothing held, nothing in flight, nothing available). */
bool vcon_port_output_idle(struct vcon *c, unsigned id);
/* Whether a write of this port's output to out_fd is in flight: the reader
 * of out_fd has not taken it yet (a full pipe, a paused terminal). */
bool vcon_port_output_writing(struct vcon *c, unsigned id);
/* Tell the guest the host side of the port closed (PORT_OPEN 0: its reads
 * see EOF, and Linux blocks its writes until the host reopens). */
void vcon_port_host_close(struct vcon *c, unsigned id);

/* Window size for the console config space (F_SIZE): config interrupt. */
void vcon_set_size(struct vcon *c, uint16_t cols, uint16_t rows);

#endif
