/* tests/fuzz/fuzz_broker_flow.c - the broker's check of a FLOW message
 * from the VMM (broker/broker.h), on arbitrary bytes and descriptor
 * counts: no crash, and a message it accepts names an IP literal (never a
 * name the broker would have to resolve), a port, and strings that end
 * inside their fields. */
#include <arpa/inet.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!size)
		return 0;
	unsigned nfds = data[0] & 3;
	const uint8_t *msg = data + 1;
	size_t len = size - 1;
	if (broker_flow_check(msg, len, nfds) < 0)
		return 0;
	struct broker_flow m;
	if (len != sizeof(m) || nfds != 1)
		abort();
	memcpy(&m, msg, sizeof(m));
	unsigned char a[16];
	if (!memchr(m.dst.addr, 0, sizeof(m.dst.addr)) || !memchr(m.dst.name, 0, sizeof(m.dst.name)) ||
	    !m.dst.port ||
	    (inet_pton(AF_INET, m.dst.addr, a) != 1 && inet_pton(AF_INET6, m.dst.addr, a) != 1))
		abort();
	return 0;
}
