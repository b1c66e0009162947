/* tests/fuzz/fuzz_vmm_legacy.c - a hostile guest against the legacy devices:
 * any sequence of port reads and writes (any offset, size 1/2/4/8) on the
 * 8250 UART, the i8042 and the marker port, interleaved with host input
 * into the UART, through the same io_region callbacks the vCPU threads use.
 * ASan/UBSan catch any out-of-bounds state; the FIFO must stay consistent. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devices/legacy/legacy.h"

static void nop_irq(void *opaque, int level)
{
	(void)opaque;
	if (level != 0 && level != 1)
		abort();
}

static void nop_reset(void *opaque)
{
	(void)opaque;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct uart8250 u;
	struct i8042 k;
	struct marker m;
	uart_init(&u, UART_COM1_BASE, -1, nop_irq, NULL);
	i8042_init(&k, nop_reset, NULL);
	marker_init(&m, NULL, NULL, NULL);
	struct io_region *regions[] = { &u.region, &k.data_region, &k.cmd_region, &m.region };
	static const unsigned sizes[] = { 1, 2, 4, 8 };
	while (size >= 3) {
		uint8_t op = data[0], off = data[1];
		uint64_t val = 0;
		size_t vlen = size - 2 < 8 ? size - 2 : 8;
		memcpy(&val, data + 2, vlen);
		unsigned sz = sizes[(op >> 3) & 3];
		if ((op & 7) == 7) {	/* host input */
			uart_receive(&u, data + 2, vlen);
		} else {
			struct io_region *r = regions[(op & 7) % 4];
			uint64_t o = off % r->len;
			if (sz > r->len - o)
				sz = (unsigned)(r->len - o);
			if (op & 0x80) {
				uint8_t out[8];
				r->read(r->opaque, o, out, sz);
			} else {
				r->write(r->opaque, o, &val, sz);
			}
		}
		if (u.rx_count > UART_FIFO_SIZE || u.rx_head >= UART_FIFO_SIZE)
			abort();
		data += 2 + vlen;
		size -= 2 + vlen;
	}
	uart_fini(&u);
	i8042_fini(&k);
	return 0;
}
