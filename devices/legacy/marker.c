/* devices/legacy/marker.c - the kvmbox marker / exit-status port (contract
 * in guest/abi/marker.h).  It decodes writes and calls back (the machine
 * decides what a boot marker, an exit status or a snapshot request means),
 * and answers reads of fresh entropy and of the host's clock, which a guest
 * restored from a snapshot needs first. */
#include "devices/legacy/marker.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

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

/* 32 bits from the host's generator.  getrandom does not fail for 4
 * bytes once the host's pool is up; if it did, the guest mixes in all
 * ones (harmless to its pool) and the host says why once. */
static uint32_t host_random32(void)
{
	uint32_t v;
	if (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v)) {
		log_once(LOG_WARN, "marker port: getrandom failed: %s", strerror(errno));
		return 0xffffffffu;
	}
	return v;
}

/* The time registers: a read of the first latches the host's clock. */
static uint32_t read_time(struct marker *m, uint64_t off)
{
	pthread_mutex_lock(&m->lock);
	if (off == KBX_TIME_PORT - KBX_MARKER_PORT) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		m->time_sec = (uint64_t)ts.tv_sec;
		m->time_nsec = (uint32_t)ts.tv_nsec;
	}
	uint64_t sec = m->time_sec;
	uint32_t nsec = m->time_nsec;
	pthread_mutex_unlock(&m->lock);
	switch (off - (KBX_TIME_PORT - KBX_MARKER_PORT)) {
	case 0:
		return (uint32_t)sec;
	case 4:
		return (uint32_t)(sec >> 32);
	default:
		return nsec;
	}
}

static void marker_read(void *opaque, uint64_t off, void *data, unsigned size)
{
	struct marker *m = opaque;
	uint32_t v = 0xffffffffu;
	if (size == 4 && off == KBX_ENTROPY_PORT - KBX_MARKER_PORT)
		v = host_random32();
	else if (size == 4 && off >= KBX_TIME_PORT - KBX_MARKER_PORT && off % 4 == 0)
		v = read_time(m, off);
	memset(data, 0xff, size);
	memcpy(data, &v, size < 4 ? size : 4);
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
	m->region = (struct io_region){ .base = KBX_MARKER_PORT, .len = KBX_MARKER_PORTS,
					.read = marker_read, .write = marker_write, .opaque = m };
	pthread_mutex_init(&m->lock, NULL);
	m->on_boot = on_boot;
	m->on_exit_status = on_exit_status;
	m->opaque = opaque;
}

void marker_fini(struct marker *m)
{
	pthread_mutex_destroy(&m->lock);
}
