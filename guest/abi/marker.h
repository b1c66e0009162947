/* guest/abi/marker.h - the marker port: how the guest tells kvmbox that it
 * booted and how its command ended.  Written by kvmbox-init
 * (guest/init/main.c) and the tiny test guests (firmware/tests/), read by
 * the VMM's device (devices/legacy/marker.c).  Header-only, freestanding.
 *
 *   I/O port KBX_MARKER_PORT, 32-bit writes (outl):
 *   KBX_MARKER_BOOT   "guest init started": the boot marker.  kvmbox
 *                     timestamps it (--profile: guest_init_started).  May
 *                     be written more than once; the first write counts.
 *   KBX_MARKER_EXIT_BASE | (status & 0xff)   (kbx_marker_exit)
 *                     "the command exited with this status" (128 + the
 *                     signal's number for one killed by a signal).  The
 *                     guest then resets the machine, through the i8042
 *                     (outb 0xfe to port 0x64; Linux does this with
 *                     reboot=k) or a triple fault, and kvmbox exits with
 *                     that status.  The last status written before the
 *                     reset counts.
 *   KBX_MARKER_SNAPSHOT  "save me here": the guest reached a point worth
 *                     resuming from (a template: booted, waiting for its
 *                     launch).  A kvmbox run with --snapshot DIR stops every
 *                     vCPU, saves the VM to DIR and exits 0; a restore from
 *                     DIR resumes right after this write.  Without
 *                     --snapshot it is ignored.
 * Any other value, or a write that is not 32 bits wide, is ignored.  Reads
 * of KBX_MARKER_PORT return 0xffffffff.
 *
 * What a guest needs after a restore (it may be one of many started from
 * one snapshot, minutes or days after it was saved), 32-bit reads:
 *   KBX_ENTROPY_PORT   32 fresh bits from the host's getrandom() per read:
 *                      the guest mixes them in and reseeds its generator,
 *                      so no two restores share random output.
 *   KBX_TIME_PORT      the host's CLOCK_REALTIME, latched by this read:
 *                      seconds, low half; then KBX_TIME_PORT + 4 the
 *                      seconds' high half and KBX_TIME_PORT + 8 the
 *                      nanoseconds of the same instant.
 * kvmbox-init (kvmbox.snapshot=1 on its command line, which kvmbox run
 * --snapshot adds) writes KBX_MARKER_SNAPSHOT before it runs the command,
 * then reads both: a restore starts the command with fresh randomness and
 * the right time.  A guest that stops without having written a status
 * (reset, triple fault, internal error) makes kvmbox exit 1, saying why.
 */
#ifndef KVMBOX_GUEST_ABI_MARKER_H
#define KVMBOX_GUEST_ABI_MARKER_H

#include <stdint.h>

#define KBX_MARKER_PORT 0x600
#define KBX_ENTROPY_PORT 0x604
#define KBX_TIME_PORT 0x608
#define KBX_MARKER_PORTS 20		/* 0x600..0x613 */
#define KBX_MARKER_BOOT 0x4b420001u
#define KBX_MARKER_SNAPSHOT 0x4b420002u
#define KBX_MARKER_EXIT_BASE 0x4b450000u
#define KBX_MARKER_EXIT_MASK 0xffffff00u

static inline uint32_t kbx_marker_exit(int status)
{
	return KBX_MARKER_EXIT_BASE | ((uint32_t)status & 0xff);
}

#endif
