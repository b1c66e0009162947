/* devices/legacy/marker.c - the kvmbox marker / exit-status port (contract
 * in marker.h).  Stateless: it decodes and calls back; the machine decides
 * what a boot marker or an exit status means. */
#include "devices/legacy/marker.h"

#include <string.h>

#include "common/log.h"

enum marker_kind marker_decode(uint32_t value, int *status)
{
	if (value == KBX_MARKER_BOOT)
		return MARKER_KIND_BOOT;
	if (value == KBX_MARKER_SNAPSHOT)
		return MARKER_KIND_SNAPSHOT;
	if ((value & KBX_MARKER_EXIT_MASK) == KBX_MARKER_EXIT_BASE) {
		if (status)
			*status = (int)(value & 0xff);
		return MARKER_KIND_EXIT;
	}
	return MARKER_NONE;
}

static void marker_read(void *opaque, uint64_t off, void *data, unsigned size)
{
	(void)opaque;
	(void)off;
	memset(data, 0xff, size);
}

static void marker_write(void *opaque, uint64_t off, const void *data, unsigned size)
{
	struct marker *m = opaque;
	if (off != 0 || size != 4) {
		log_once(LOG_WARN, "marker port: ignoring %u-byte write at +%llu", size,
			 (unsigned long long)off);
		return;
	}
	uint32_t v;
	memcpy(&v, data, 4);
	int status = 0;
	switch (marker_decode(v, &status)) {
	case MARKER_KIND_BOOT:
		if (m->on_boot)
			m->on_boot(m->opaque);
		break;
	case MARKER_KIND_EXIT:
		if (m->on_exit_status)
			m->on_exit_status(m->opaque, status);
		break;
	case MARKER_KIND_SNAPSHOT:
		if (m->on_snapshot)
			m->on_snapshot(m->opaque);
		break;
	default:
		log_once(LOG_WARN, "marker port: ignoring unknown value 0x%08x", v);
		break;
	}
}

void marker_init(struct marker *m, void (*on_boot)(void *opaque),
		 void (*on_exit_status)(void *opaque, int status), void *opaque)
{
	memset(m, 0, sizeof(*m));
	m->region = (struct io_region){ .base = KBX_MARKER_PORT, .len = 4, .read = marker_read,
					.write = marker_write, .opaque = m };
	m->on_boot = on_boot;
	m->on_exit_status = on_exit_status;
	m->opaque = opaque;
}
