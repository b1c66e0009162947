#!/bin/bash
# tests/e2e/console_bulk.sh - MiB of CMD output through `kvmbox shell` (the
# virtio-console port kvmbox.tty) arrive whole: kvmbox exits 0 and the byte
# count and MD5 of what its stdout's reader got equal those of the same
# data made in L1.  Two ways that used to lose the tail:
#  - `cat` of 3.9 MiB with L1's CPUs busy: the guest queues whole 16 KiB
#    relay writes faster than kvmbox drains them, so at EXIT tens of chains
#    were still on the ring, and kvmbox-init's reboot (the guest kernel
#    resets virtio devices on shutdown) dropped them;
#  - 1.2 MiB into a reader that starts 12 s late (`| less`): kvmbox gave
#    up 2 s after the last byte moved and the guest's reboot dropped the rest.
. "$(dirname "$0")/../lib/tap.sh"
[ -f "$(dirname "$0")/lib/nested.sh" ] || skip_all "nested harness (tests/e2e/lib/nested.sh) not present"
. "$(dirname "$0")/lib/nested.sh"
E2E_TEST_NAME="nested harness"
e2e_prepare

N=${BULK_SEQ:-600000}	# seq 1 600000: 3.9 MiB of lines
sh_="kvmbox shell --kernel /vmlinux --initrd /l2.cpio"
S=200000	# seq 1 200000: 1.2 MiB, fits the tty port's ring: CMD is done
		# long before its late reader wakes
# Each step prints kvmbox's exit status, then what its stdout's reader got.
run_="{ $sh_ -- sh -c"
rc_="; echo kvmbox-rc=\\\$? >/tmp/rc; }"
payload=$(cat <<PAYLOAD
seq 1 $N | md5sum | sed 's/^/ref-md5 /'
seq 1 $N | wc -c | sed 's/^/ref-bytes /'
seq 1 $S | md5sum | sed 's/^/ref-slow-md5 /'
# A reader that starts 12 s late (as less before its first page).
e2e_step slow 200 sh -c "$run_ 'seq 1 $S >/tmp/f; cat /tmp/f' $rc_ | { sleep 12; cat; } | md5sum | sed 's/^/got-md5 /'; cat /tmp/rc"
# Load: three busy loops per L1 CPU while kvmbox relays.
for i in \$(seq 1 \$((3 * \$(nproc)))); do (while :; do :; done) & done
e2e_step bulk 400 sh -c "$run_ 'seq 1 $N >/tmp/f; cat /tmp/f' $rc_ | tee /tmp/bulk.out | md5sum | sed 's/^/got-md5 /'; wc -c </tmp/bulk.out | sed 's/^/got-bytes /'; cat /tmp/rc"
kill \$(jobs -p) 2>/dev/null
PAYLOAD
)
e2e_run_or_bail "$payload" 540

ref_md5=$(sed -n 's/^ref-md5 \([0-9a-f]*\).*/\1/p' "$E2E_LOG" | head -n 1)
ref_bytes=$(sed -n 's/^ref-bytes \([0-9]*\).*/\1/p' "$E2E_LOG" | head -n 1)
slow_md5=$(sed -n 's/^ref-slow-md5 \([0-9a-f]*\).*/\1/p' "$E2E_LOG" | head -n 1)
e2e_check_has slow "kvmbox shell -- cat of seq 1 $S, read 12 s late, exits 0" -x 'kvmbox-rc=0'
e2e_check_has slow "and the late reader gets all of it (MD5 $slow_md5)" "^got-md5 $slow_md5 "
e2e_check_has bulk "kvmbox shell -- cat of seq 1 $N under load exits 0" -x 'kvmbox-rc=0'
e2e_check_has bulk "all $ref_bytes bytes reach kvmbox's stdout" -x "got-bytes $ref_bytes"
e2e_check_has bulk "with the source's MD5 ($ref_md5)" "^got-md5 $ref_md5 "
echo "# whole nested run ${E2E_WALL_S%.*} s (TCG speed, not hardware)"
tap_done
