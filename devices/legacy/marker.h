/* devices/legacy/marker.h - the kvmbox marker / exit-status port, the
 * VMM's side of the contract in guest/abi/marker.h (the values, what a
 * write means): the device decodes what the guest writes and calls back.
 */
#ifndef KVMBOX_DEVICES_LEGACY_MARKER_H
#define KVMBOX_DEVICES_LEGACY_MARKER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "devices/devices.h"
#include "guest/abi/marker.h"


enum marker_kind { MARKER_NONE, MARKER_KIND_BOOT, MARKER_KIND_EXIT, MARKER_KIND_SNAPSHOT };

/* Decode one 32-bit value: the kind, and for MARKER_KIND_EXIT the status. */
enum marker_kind marker_decode(uint32_t value, int *status);

/* The device: callbacks run on the vCPU thread that wrote the port.  It
 * also answers the entropy and time reads of guest/abi/marker.h. */
struct marker {
	struct io_region region;	/* KBX_MARKER_PORTS ports at KBX_MARKER_PORT */
	pthread_mutex_t lock;		/* the latched time (vCPUs read at once) */
	uint64_t time_sec;
	uint32_t time_nsec;
	void (*on_boot)(void *opaque);
	void (*on_exit_status)(void *opaque, int status);
	void (*on_snapshot)(void *opaque);	/* optional, set after marker_init */
	void *opaque;
};

void marker_init(struct marker *m, void (*on_boot)(void *opaque),
		 void (*on_exit_status)(void *opaque, int status), void *opaque);
void marker_fini(struct marker *m);

#endif
