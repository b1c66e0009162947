/* devices/legacy/marker.h - the kvmbox marker / exit-status port: THE
 * CONTRACT between kvmbox and the guest's init (guest/init, kvmbox-init) and
 * the tiny test guests in firmware/tests/.
 *
 *   I/O port 0x600 (MARKER_PORT), 32-bit writes (outl):
 *
 *   0x4b420001  "guest init started": the boot marker.  kvmbox timestamps
 *               it (--profile: guest_init_started).  May be written more
 *               than once; the first write counts.
 *   0x4b450000 | (status & 0xff)
 *               "the command exited with this status".  The guest then
 *               reboots through the i8042 (outb 0xfe to port 0x64; Linux
 *               does this with reboot=k, which kvmbox puts on the command
 *               line together with panic=-1), and kvmbox exits with that
 *               status.  The last status written before the reset counts.
 *
 * Any other value, or a write that is not 32 bits wide, is ignored (logged
 * once).  Reads return 0xffffffff.  If the guest stops without having
 * written an exit status (reset, triple fault, internal error), kvmbox exits
 * 1 with a one-line reason.
 */
#ifndef KVMBOX_DEVICES_LEGACY_MARKER_H
#define KVMBOX_DEVICES_LEGACY_MARKER_H

#include <stdbool.h>
#include <stdint.h>

#include "devices/devices.h"

#define MARKER_PORT 0x600
#define MARKER_BOOT 0x4b420001u
#define MARKER_EXIT_BASE 0x4b450000u
#define MARKER_EXIT_MASK 0xffffff00u

enum marker_kind { MARKER_NONE, MARKER_KIND_BOOT, MARKER_KIND_EXIT };

/* Decode one 32-bit value: the kind, and for MARKER_KIND_EXIT the status. */
enum marker_kind marker_decode(uint32_t value, int *status);

/* The device: callbacks run on the vCPU thread that wrote the port. */
struct marker {
	struct io_region region;	/* 4 ports at MARKER_PORT */
	void (*on_boot)(void *opaque);
	void (*on_exit_status)(void *opaque, int status);
	void *opaque;
};

void marker_init(struct marker *m, void (*on_boot)(void *opaque),
		 void (*on_exit_status)(void *opaque, int status), void *opaque);

#endif
