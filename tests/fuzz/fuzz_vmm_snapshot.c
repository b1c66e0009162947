/* tests/fuzz/fuzz_vmm_snapshot.c - any bytes as a snapshot's state file
 * (vmm/snapshot/format.c).  The input is the file without its checksum:
 * the target appends a correct SHA-256, so the fuzzer explores the
 * sections, sizes and indexes behind it rather than the checksum.  A state
 * the parser accepts has its device sections loaded into real devices, as
 * a restore does; ASan/UBSan catch any read outside a section. */
#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devices/legacy/legacy.h"
#include "vmm/snapshot/snapshot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > (1u << 20))
		return 0;
	uint8_t *buf = malloc(size + 32);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	unsigned n = 0;
	EVP_Digest(buf, size, buf + size, &n, EVP_sha256(), NULL);
	struct snap_state st;
	char err[256];
	if (snap_parse(&st, buf, size + 32, err, sizeof(err)) < 0) {
		if (!err[0] || memchr(err, '\n', strlen(err)))
			abort();	/* a refusal is one line */
		return 0;
	}
	for (unsigned i = 0; i < st.nsec; i++)
		if (!snap_find(&st, st.sec[i].tag, st.sec[i].index))
			abort();
	struct uart8250 u;
	struct i8042 k;
	uart_init(&u, UART_COM1_BASE, -1, NULL, NULL);
	i8042_init(&k, NULL, NULL);
	struct uart_state us;
	struct i8042_state ks;
	memcpy(&us, snap_find(&st, SNAP_UART, 0)->data, sizeof(us));
	memcpy(&ks, snap_find(&st, SNAP_I8042, 0)->data, sizeof(ks));
	uart_load(&u, &us);
	i8042_load(&k, &ks);
	uart_fini(&u);
	i8042_fini(&k);
	snap_state_free(&st);
	return 0;
}
