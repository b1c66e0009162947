#!/bin/bash
# tests/e2e/vmm_snapshot.sh - a real Linux guest saved and restored on a
# real KVM (the nested harness: QEMU TCG with SVM, kvm_amd in L1).
#
# `kvmbox run --snapshot DIR` adds kvmbox.snapshot=1: kvmbox-init asks to
# be saved just before it runs the command, so the snapshot is a booted
# guest waiting for its command (a template).  Each `--restore DIR` then
# runs the command in a guest that did not boot: it must get fresh
# randomness (two restores never share /dev/urandom output) and the host's
# time (the snapshot sat for seconds), and exit with the command's status.
. "$(dirname "$0")/../lib/tap.sh"
. "$(dirname "$0")/lib/nested.sh"
E2E_TEST_NAME="nested harness"
e2e_prepare

boot="kvmbox run --kernel /vmlinux --initrd /l2.cpio --no-net --memory 256"
cmd='echo rand=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d " \n"); echo guest-time=$(date +%s); exit 3'
payload=$(cat <<PAYLOAD
e2e_step save 200 $boot --profile --snapshot /snap -- sh -c '$cmd'
e2e_step files 20 sh -c 'ls /snap | sed "s/^memory-.*/memory-ID/"; du -k /snap/memory-* | cut -f1 | sed "s/^/disk-kib=/"'
sleep 5
e2e_step restore1 200 sh -c 'kvmbox run --restore /snap --no-net --profile; echo "rc=\$?"; echo host-time=\$(date +%s)'
e2e_step restore2 200 sh -c 'kvmbox run --restore /snap --no-net; echo "rc=\$?"'
e2e_step cold 200 $boot --profile -- true
PAYLOAD
)
e2e_run_or_bail "$payload" 900

e2e_check_rc save 0 "--snapshot: kvmbox exits 0 once the booted guest asked to be saved"
e2e_check_has save "one line says what was saved" 'kvmbox: run: saved the VM to /snap (1 vCPU, 256 MiB of RAM, '
e2e_check_lacks save "the command did not run before the snapshot" 'rand='
e2e_check_has files "the snapshot is a state file and a memory file" -x 'memory-ID'
e2e_check_has files "with the state" -x 'state'
disk=$(e2e_step_out files | sed -n 's/^disk-kib=//p')
if [ -n "$disk" ] && [ "$disk" -lt 262144 ]; then ok "the memory file is sparse: $disk KiB on disk for 256 MiB"
else not_ok "the memory file is sparse" "$(e2e_step_out files)"; fi
e2e_check_has restore1 "a restore runs the command in the saved guest, with its status" -x 'rc=3'
e2e_check_has restore2 "a second restore of the same snapshot too" -x 'rc=3'
r1=$(e2e_step_out restore1 | sed -n 's/^rand=//p' | tr -d '\r')
r2=$(e2e_step_out restore2 | sed -n 's/^rand=//p' | tr -d '\r')
if [ ${#r1} -eq 32 ] && [ ${#r2} -eq 32 ] && [ "$r1" != "$r2" ]; then
	ok "two restores of one snapshot read different bytes from /dev/urandom"
else
	not_ok "two restores of one snapshot read different bytes from /dev/urandom" "first '$r1' second '$r2'"
fi
gt=$(e2e_step_out restore1 | sed -n 's/^guest-time=//p' | tr -d '\r')
ht=$(e2e_step_out restore1 | sed -n 's/^host-time=//p' | tr -d '\r')
if [ -n "$gt" ] && [ -n "$ht" ] && [ $((ht - gt)) -ge 0 ] && [ $((ht - gt)) -le 3 ]; then
	ok "the restored guest's clock is the host's, not the snapshot's (guest $gt, host $ht)"
else
	not_ok "the restored guest's clock is the host's" "guest '$gt' host '$ht' (saved 5 s earlier)"
fi
e2e_check_rc cold 0 "a cold boot of the same kernel still works beside them"

# Figures (TAP comments): TCG speed, not hardware.
ms() { e2e_step_out "$1" | sed -n "s/.*$2 *\([0-9.]*\).*/\1/p" | head -n 1; }
echo "# L2 cold boot: exec to guest init $(ms cold guest_init_started) ms, to command done" \
	"$(ms cold command_done) ms; restore: exec to first KVM_RUN $(ms restore1 first_kvm_run) ms," \
	"to command done $(ms restore1 command_done) ms (TCG speed, not hardware)"
tap_done
