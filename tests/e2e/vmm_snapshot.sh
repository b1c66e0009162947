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
net="kvmbox run --kernel /vmlinux --initrd /l2.cpio --memory 256 --allow-host --share /tmp/share:/mnt/s"
netcmd='exec 3>>/mnt/s/log 4</mnt/s/data; echo before-checkpoint >&3
(i=0; while :; do i=$((i+1)); echo $i >/tmp/count; sleep 0.2; done) &
mkfifo /tmp/in; sleep 1000 >/tmp/in &
(nc 10.0.2.2 9100 </tmp/in; echo "old-ended rc=$?") &
sleep 3; echo "count-before=$(cat /tmp/count)"
echo "conns-before=$(netstat -tn | grep -c ESTABLISHED)"
kvmbox-checkpoint; echo "checkpoint rc=$?"
echo after-checkpoint >&3 && echo "write-after=ok"; echo "read-after=$(cat <&4)"
sleep 3; echo "count-after=$(cat /tmp/count)"
set -- $(grep "^Tcp:" /proc/net/snmp | tail -n 1); echo "estab-resets=$9"
echo "new=$(wget -q -O - http://10.0.2.2:8090/index.html)"
exit 4'
payload=$(cat <<PAYLOAD
e2e_step save 200 $boot --profile --snapshot /snap -- sh -c '$cmd'
e2e_step files 20 sh -c 'ls /snap | sed "s/^memory-.*/memory-ID/"; du -k /snap/memory-* | cut -f1 | sed "s/^/disk-kib=/"'
sleep 5
e2e_step restore1 200 sh -c 'kvmbox run --restore /snap --no-net --profile; echo "rc=\$?"; echo host-time=\$(date +%s)'
e2e_step restore2 200 sh -c 'kvmbox run --restore /snap --no-net; echo "rc=\$?"'
e2e_step cold 200 $boot --profile -- true
e2e_step bench 300 kvmbox bench boot --kernel /vmlinux --initrd /l2.cpio --runs 3 --initcalls 5 --json
e2e_step bench_table 300 kvmbox bench boot --kernel /vmlinux --initrd /l2.cpio --runs 1 --initcalls 3
e2e_step bench_bad 30 sh -c 'kvmbox bench boot --kernel /nonexistent --runs 1; echo "rc=\$?"; ls /tmp | grep -c kvmbox-bench'
# A VM saved with everything running, its network card included: a template
# (saved at init) whose command, after a restore, starts a counter and holds
# a connection to L1 open, then saves the VM from inside (kvmbox-checkpoint)
# into a second snapshot; restoring that one goes on from the checkpoint.
ip link set lo up
mkdir -p /tmp/share; echo data-on-share >/tmp/share/data
mkdir -p /www2; echo hello-new >/www2/index.html
httpd -p 127.0.0.1:8090 -h /www2
mkfifo /tmp/hold; sleep 600 >/tmp/hold &
(timeout 500 nc -l -p 9100 </tmp/hold >/dev/null) &
e2e_step net_template 200 $net --snapshot /snapn -- sh -c '$netcmd'
e2e_step net_save 200 sh -c 'kvmbox run --restore /snapn --allow-host --share /tmp/share:/mnt/s --snapshot /snapm; echo "rc=\$?"'
e2e_step net_resume 200 sh -c 'kvmbox run --restore /snapm --allow-host --share /tmp/share:/mnt/s; echo "rc=\$?"'
e2e_step share_log 20 cat /tmp/share/log
e2e_step net_mismatch 60 sh -c 'kvmbox run --restore /snapm --no-net; echo "rc=\$?"'
e2e_step nonet_with_net 60 sh -c 'kvmbox run --restore /snap --allow-host; echo "rc=\$?"'
mkdir -p /tmp/elsewhere
e2e_step other_share 60 sh -c 'kvmbox run --restore /snapm --allow-host --share /tmp/elsewhere:/mnt/s; echo "rc=\$?"'
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
e2e_check_differ restore1 restore2 rand "two restores of one snapshot read different bytes from /dev/urandom"
gt=$(e2e_step_out restore1 | sed -n 's/^guest-time=//p' | tr -d '\r')
ht=$(e2e_step_out restore1 | sed -n 's/^host-time=//p' | tr -d '\r')
if [ -n "$gt" ] && [ -n "$ht" ] && [ $((ht - gt)) -ge 0 ] && [ $((ht - gt)) -le 3 ]; then
	ok "the restored guest's clock is the host's, not the snapshot's (guest $gt, host $ht)"
else
	not_ok "the restored guest's clock is the host's" "guest '$gt' host '$ht' (saved 5 s earlier)"
fi
e2e_check_rc cold 0 "a cold boot of the same kernel still works beside them"

# kvmbox bench boot: the figures a boot-latency researcher asks for, as JSON
bench_json=$(e2e_step_out bench | grep '^{' | tail -n 1)
bench_check() {	# DESCRIPTION PYTHON-EXPRESSION over j
	if printf '%s' "$bench_json" | python3 -c "import json,sys; j=json.load(sys.stdin); sys.exit(0 if ($2) else 1)" 2>/dev/null
	then ok "$1"; else not_ok "$1" "$(e2e_step_out bench | tail -n 5)"; fi
}
bench_check "kvmbox bench boot --json: per phase of the cold boots, median <= p90 <= max" \
	'all(j["cold"][k]["min"] <= j["cold"][k]["p50"] <= j["cold"][k]["p90"] <= j["cold"][k]["max"] for k in ("exec", "kvm_ready", "kernel_loaded", "first_kvm_run", "guest_init_started", "command_done", "process_exit"))'
bench_check "the phases in boot order" \
	'j["cold"]["kvm_ready"]["p50"] <= j["cold"]["first_kvm_run"]["p50"] <= j["cold"]["guest_init_started"]["p50"] <= j["cold"]["command_done"]["p50"] <= j["cold"]["process_exit"]["p50"]'
bench_check "restores of the template: first KVM_RUN and the command done, and no kernel loaded" \
	'"first_kvm_run" in j["restore"] and "command_done" in j["restore"] and "kernel_loaded" not in j["restore"] and j["runs"] == 3'
bench_check "the VMM's CPU time and peak RSS" \
	'j["cold"]["vmm_cpu_ms"]["p50"] > 0 and j["cold"]["peak_rss_mib"]["p50"] > 0 and j["restore"]["peak_rss_mib"]["p50"] > 0'
bench_check "the guest kernel's slowest initcalls, slowest first, and their sum" \
	'len(j["slowest_initcalls"]) == 5 and all(a["us"] >= b["us"] for a, b in zip(j["slowest_initcalls"], j["slowest_initcalls"][1:])) and j["initcalls_total_us"] >= sum(c["us"] for c in j["slowest_initcalls"]) > 0'
e2e_check_has bench_table "and as a table" '^guest_init_started '
e2e_check_has bench_table "with the initcalls" '^guest kernel: initcalls took [0-9]*[1-9][0-9.]* ms in all'
e2e_check_has bench_bad "a run kvmbox run refuses ends the benchmark with one line" \
	'^kvmbox: bench: saving the template failed: run: kernel /nonexistent: '
e2e_check_has bench_bad "exit 2, and nothing left in /tmp" -x 'rc=2'
e2e_check_has bench_bad "nothing left in /tmp" -x '0'
e2e_check_rc net_template 0 "a VM with a network card is saved at its init (a template)"
e2e_check_has net_save "its restore runs the command, which holds a connection to L1" -x 'conns-before=1'
e2e_check_has net_save "and saves the VM from inside with kvmbox-checkpoint, kvmbox exiting 0" -x 'rc=0'
e2e_check_lacks net_save "nothing after the checkpoint ran in the saved VM" 'count-after='
e2e_check_has net_resume "a restore goes on from the checkpoint" -x 'checkpoint rc=0'
e2e_check_grows net_save count-before net_resume count-after "the counter running at the checkpoint goes on"
e2e_check_has net_resume "the connection held at the checkpoint ends, not left hanging" '^old-ended rc='
e2e_check_has net_resume "by a reset (the guest's TCP counts it)" -x 'estab-resets=1'
e2e_check_has net_resume "a new connection works" -x 'new=hello-new'
e2e_check_has net_resume "and the command's status is kvmbox's" -x 'rc=4'
e2e_check_has net_resume "a file the command held open on a share is still writable" -x 'write-after=ok'
e2e_check_has net_resume "and readable" -x 'read-after=data-on-share'
e2e_check_has share_log "the host has what was written before and after the checkpoint" -x 'after-checkpoint'
e2e_check_has share_log "in order" -x 'before-checkpoint'
e2e_check_has net_mismatch "a restore without the devices it was saved with is refused" \
	'cannot restore /snapm: it has 2 virtio devices and this machine 0'
e2e_check_has other_share "a restore with another folder as the share is refused" \
	'cannot restore /snapm: its virtio device 1 is not a state'
e2e_check_has other_share "before the guest runs" -x 'rc=1'
e2e_check_has net_mismatch "with status 2" -x 'rc=2'
e2e_check_has nonet_with_net "and one with a card it did not have" 'it has 0 virtio devices and this machine 1'

# Figures (TAP comments): TCG speed, not hardware.
ms() { e2e_step_out "$1" | sed -n "s/.*$2 *\([0-9.]*\).*/\1/p" | head -n 1; }
echo "# L2 cold boot: exec to guest init $(ms cold guest_init_started) ms, to command done" \
	"$(ms cold command_done) ms; restore: exec to first KVM_RUN $(ms restore1 first_kvm_run) ms," \
	"to command done $(ms restore1 command_done) ms (TCG speed, not hardware)"
e2e_step_out bench_table | grep -v '^\[' | sed 's/^/# /'	# kvmbox bench boot's own table
tap_done
