/* tests/fuzz/fuzz_boot_load.c - boot_load() on hostile kernel images.
 *
 * Input: byte 0 picks the vCPU count and the guest RAM size, bytes 1-2 the
 * command-line length, bytes 3-6 the initrd length; then the command line,
 * the initrd, and the rest is the kernel image (ELF, bzImage or junk).  Guest
 * RAM is an exactly-sized heap buffer, so any write outside RAM is an ASan
 * report; boot_load must return 0 or -errno with a one-line reason.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "boot/boot.h"

#define HDR 7

static const uint64_t ram_sizes[4] = {
	0xf8000,		/* below the 1 MiB the boot structures need */
	2 << 20, 4 << 20, 24 << 20,
};

/* One exactly-sized RAM buffer per size, allocated once: reallocating 24 MiB
 * per input would dominate the run.  Only the fuzzer's thread touches them. */
static uint8_t *ram[4];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct boot_config cfg = { 0 };
	struct boot_entry entry;
	struct gmem gm;
	size_t cmd_len, initrd_len;
	unsigned which;
	char *cmdline;

	if (size < HDR)
		return 0;
	which = (data[0] >> 4) & 3;
	cfg.ncpus = (data[0] & 0xf) + 1;
	cmd_len = (data[1] | (size_t)data[2] << 8) % 4096;
	initrd_len = (data[3] | (size_t)data[4] << 8 | (size_t)data[5] << 16 | (size_t)data[6] << 24) % (8 << 20);
	data += HDR;
	size -= HDR;
	if (cmd_len > size)
		cmd_len = size;
	cmdline = malloc(cmd_len + 1);
	memcpy(cmdline, data, cmd_len);
	cmdline[cmd_len] = 0;
	data += cmd_len;
	size -= cmd_len;
	if (initrd_len > size)
		initrd_len = size / 2;
	cfg.initrd = initrd_len ? data : NULL;
	cfg.initrd_len = initrd_len;
	cfg.kernel = data + initrd_len;
	cfg.kernel_len = size - initrd_len;
	cfg.cmdline = cmdline;

	if (!ram[which])
		ram[which] = malloc(ram_sizes[which]);
	gmem_init_x86(&gm, ram[which], ram_sizes[which]);
	if (boot_load(&gm, &cfg, &entry) == 0) {
		if (entry.kernel_end > ram_sizes[which] || entry.rip >= ram_sizes[which])
			abort();	/* accepted a kernel outside RAM */
	} else if (!boot_error()[0] || strchr(boot_error(), '\n')) {
		abort();	/* every refusal has a one-line reason */
	}
	free(cmdline);
	return 0;
}
