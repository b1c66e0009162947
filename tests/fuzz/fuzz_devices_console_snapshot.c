/* tests/fuzz/fuzz_devices_console_snapshot.c - any bytes as virtio-console's
 * part of a snapshot (devices/virtio/console.c vcon_load), loaded into a
 * device with the ports `kvmbox shell` builds (the console, kvmbox.tty,
 * kvmbox.ctl).  A state the load accepts is saved again and must come out
 * byte for byte as it went in (the format has one spelling per state, so
 * a field the load took but did not keep shows here); a refused one must
 * leave the ports as the device was made.  ASan/UBSan catch any read past
 * the input. */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "devices/virtio/console.h"
#include "guest/abi/console.h"
#include "tests/harness/virtio_driver.h"

static size_t take_all(void *opaque, const uint8_t *buf, size_t len)
{
	(void)opaque;
	(void)buf;
	return len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct vdrv d;
	static bool ready;
	static uint8_t out[1 << 20];
	if (!ready) {
		log_set_level(LOG_ERR);
		assert(vdrv_init(&d, 1 << 20) == 0);
		ready = true;
	}
	struct vcon *c = vcon_create(&d.env, 0, 3);
	assert(c);
	struct vcon_backend none = { .in_fd = -1, .out_fd = -1 };
	struct vcon_backend cb = { .in_fd = -1, .out_fd = -1, .on_output = take_all };
	assert(vcon_add_port(c, 0, NULL, &none) == 0);
	assert(vcon_add_port(c, 1, KBX_PORT_TTY, &cb) == 0);
	assert(vcon_add_port(c, 2, KBX_PORT_CTL, &cb) == 0);
	if (c->vdev.ops->load(&c->vdev, data, size) == 0) {
		size_t n = 0;
		assert(c->vdev.ops->save(&c->vdev, out, &n) == 0);
		assert(n == size && memcmp(out, data, size) == 0);
	} else {
		for (unsigned i = 0; i < 3; i++)
			assert(!c->port[i].guest_ready && !c->port[i].guest_open &&
			       !c->port[i].host_closed && !c->port[i].pending_len);
		assert(!c->device_ready && !c->ctrl_count);
	}
	vcon_destroy(c);
	return 0;
}
