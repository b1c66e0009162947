#!/bin/bash
# tests/e2e/console_bulk.sh - a few MiB of CMD output through `kvmbox shell`
# (the virtio-console port kvmbox.tty) arrive whole while L1's CPUs are busy:
# the byte count and the MD5 of what kvmbox wrote to its stdout (a pipe)
# equal those of the same data made in L1.  CMD is `cat` of a file, so the
# guest queues output in whole 16 KiB relay writes much faster than kvmbox
# drains them under load; when CMD exits, many chains are still on the ring.
# kvmbox-init used to reboot right after EXIT, and the guest kernel's reset
# of the device on the way dropped them (5-55 % of the output missing).
. "$(dirname "$0")/../lib/tap.sh"
[ -f "$(dirname "$0")/lib/nested.sh" ] || skip_all "nested harness (tests/e2e/lib/nested.sh) not present"
. "$(dirname "$0")/lib/nested.sh"
E2E_TEST_NAME="nested harness"
e2e_prepare

N=${BULK_SEQ:-600000}	# seq 1 600000: 3.9 MiB of lines
sh_="kvmbox shell --kernel /vmlinux --initrd /l2.cpio"
payload=$(cat <<PAYLOAD
seq 1 $N | md5sum | sed 's/^/ref-md5 /'
seq 1 $N | wc -c | sed 's/^/ref-bytes /'
# Load: three busy loops per L1 CPU while kvmbox relays.
for i in \$(seq 1 \$((3 * \$(nproc)))); do (while :; do :; done) & done
e2e_step bulk 400 sh -c "$sh_ -- sh -c 'seq 1 $N >/tmp/f; cat /tmp/f' | tee /tmp/bulk.out | md5sum | sed 's/^/got-md5 /'; wc -c </tmp/bulk.out | sed 's/^/got-bytes /'"
kill \$(jobs -p) 2>/dev/null
PAYLOAD
)
e2e_run_or_bail "$payload" 540

ref_md5=$(sed -n 's/^ref-md5 \([0-9a-f]*\).*/\1/p' "$E2E_LOG" | head -n 1)
ref_bytes=$(sed -n 's/^ref-bytes \([0-9]*\).*/\1/p' "$E2E_LOG" | head -n 1)
e2e_check_rc bulk 0 "kvmbox shell -- cat of seq 1 $N under load exits 0"
e2e_check_has bulk "all $ref_bytes bytes reach kvmbox's stdout" -x "got-bytes $ref_bytes"
e2e_check_has bulk "with the source's MD5 ($ref_md5)" "^got-md5 $ref_md5 "
echo "# whole nested run ${E2E_WALL_S%.*} s (TCG speed, not hardware)"
tap_done
