/* tests/fuzz/fuzz_devices_ctl.c - libFuzzer over the kvmbox.ctl frame
 * reassembler (guest/abi/console.h), which both the host and the
 * guest init run on bytes from the other side.  The input is cut into
 * pieces of varying size (first byte: the piece size) to exercise frames
 * split anywhere; every delivered frame must lie inside the reader and
 * match its header. */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "guest/abi/console.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct kbx_ctl_reader *r;
	if (!r)
		r = malloc(sizeof(*r));
	memset(r, 0, sizeof(*r));
	if (size < 1)
		return 0;
	size_t piece = (size_t)data[0] % 17 + 1, off = 1;
	while (off < size) {
		size_t n = size - off < piece ? size - off : piece;
		size_t used = 0, taken = 0;
		while (taken < n) {
			struct kbx_ctl_hdr h;
			const uint8_t *p;
			int res = kbx_ctl_feed(r, data + off + taken, n - taken, &used, &h, &p);
			assert(used <= n - taken);
			taken += used;
			if (res < 0)
				return 0;
			if (res == 1) {
				assert(h.len <= KBX_CTL_MAX_PAYLOAD);
				assert(p == r->buf + sizeof(h));
				assert(r->have == sizeof(h) + h.len);
			} else {
				assert(taken == n);
			}
		}
		off += n;
	}
	return 0;
}
