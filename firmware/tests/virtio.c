/* firmware/tests/virtio.c - pokes virtio-mmio slot 0 from CPL 3 the way a
 * driver would: reads MagicValue (a trapped MMIO read the VMM's bus
 * answers), then writes QueueNotify `notify=N` times (each must land on the
 * slot's ioeventfd inside KVM, never reaching the bus), and exits 0 when the
 * magic was "virt", 1 otherwise. */
#include "guest.h"
#include "guest/abi/layout.h"

#define VIRTIO_MAGIC 0x74726976u

int guest_main(const struct hvm_start_info *si)
{
	volatile uint32_t *regs = (volatile uint32_t *)KBX_VIRTIO_MMIO_BASE;
	uint32_t magic = regs[0];
	int n = cmdline_int(guest_cmdline(si), "notify", 1);
	for (int i = 0; i < n; i++)
		regs[0x50 / 4] = 0;	/* QueueNotify: queue 0 */
	serial_puts(magic == VIRTIO_MAGIC ? "virtio magic ok\n" : "virtio magic wrong\n");
	return magic == VIRTIO_MAGIC ? 0 : 1;
}
