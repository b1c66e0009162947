#!/bin/bash
# tests/bench/bench-console.sh - the guest terminal's transport: virtio-console
# (kvmbox.tty) next to the 8250 serial console, measured in the same run.
#
# Device level (always): tests/bench/bench_console.c, the pretend guest
# (tests/harness) driving both devices: throughput of a large "cat" (guest ->
# host bytes/s into a pipe) and one-byte echo round-trip latency (host ->
# guest -> host).  It measures kvmbox's own per-byte cost; VM exits and the
# guest kernel are not in it (the serial console pays one exit per byte,
# the virtio port one ioeventfd kick per batch) - see the header of
# bench_console.c.
#
# End to end (tests/bench/console_e2e.c on a raw pty, as a terminal
# emulator would run it): a BENCH_E2E_MIB (32) MiB file cat inside the guest
# through the terminal port (`kvmbox shell`) and through the serial console
# (`kvmbox run`), and BENCH_E2E_ECHOES (200) one-byte echo round trips
# through each (guest: stty raw -echo; dd bs=1), all in the same run.  Where
# `kvmbox doctor` finds hardware virtualization this runs directly (with the
# default kernel and initrd: make kernel initrd); otherwise both run inside
# the nested harness (tests/e2e/lib/nested.sh) and are labelled TCG speed:
# the ratio means something, the absolute figures do not.
#
#   BENCH_MIB=256 BENCH_ECHOES=2000 BENCH_E2E_MIB=32 make bench-console
set -eu
cd "$(dirname "$0")/../.."
B=${BUILD:-build}
[ -f "$B/libdevices.a" ] && [ -f "$B/libharness.a" ] || make -s -j2 all "$B/libharness.a"
tmpd=$(mktemp -d)
bin=$tmpd/bench_console
trap 'rm -rf "$tmpd"' EXIT
cc -std=gnu11 -O2 -D_GNU_SOURCE -I. -o "$bin" tests/bench/bench_console.c \
	-Wl,--start-group "$B"/libharness.a "$B"/libdevices.a "$B"/libcommon.a -Wl,--end-group \
	-luring -lpthread
echo "== device level (kvmbox's cost only; see tests/bench/bench_console.c) =="
"$bin" "${BENCH_MIB:-256}" "${BENCH_ECHOES:-2000}"

MIB=${BENCH_E2E_MIB:-32} ECHOES=${BENCH_E2E_ECHOES:-200}
e2e=$tmpd/console_e2e
gcc -static -O2 -D_GNU_SOURCE -o "$e2e" tests/bench/console_e2e.c 2>/dev/null ||
	{ echo "== end to end: skipped (cannot build tests/bench/console_e2e.c statically) =="; exit 0; }
file_cmd="dd if=/dev/zero of=/tmp/f bs=1048576 count=$MIB 2>/dev/null; echo @@GO; cat /tmp/f; echo @@END"
echo_cmd="stty raw -echo; echo @@GO; dd bs=1 count=$ECHOES 2>/dev/null"
# The four measurements as shell lines for sh (in L1 busybox): METER is
# console_e2e, KB the kvmbox command with its kernel and initrd flags.
measure() {
	cat <<EOF
echo "@@B shell-cat \$(\$METER cat -- \$KB shell -- sh -c '$file_cmd' 2>&1 | tr -d '\r\n')"
echo "@@B run-cat \$(\$METER cat -- \$KB run -- sh -c '$file_cmd' 2>&1 | tr -d '\r\n')"
echo "@@B shell-echo \$(\$METER echo $ECHOES -- \$KB shell -- sh -c '$echo_cmd' 2>&1 | tr -d '\r\n')"
echo "@@B run-echo \$(\$METER echo $ECHOES -- \$KB run --console -- sh -c '$echo_cmd' 2>&1 | tr -d '\r\n')"
EOF
}
val() { sed -n "s/^@@B $1 .*$2=\([0-9.]*\).*/\1/p" <<<"$out" | tail -n 1; }
table() {
	printf '%-26s %-32s %s\n' "" "virtio-console (kvmbox shell)" "serial 8250 (kvmbox run)"
	printf '%-26s %-32s %s\n' "cat $MIB MiB: MiB/s" "$(val shell-cat MiBps)" "$(val run-cat MiBps)"
	printf '%-26s %-32s %s\n' "1-byte echo: median us" "$(val shell-echo median_us)" "$(val run-echo median_us)"
	printf '%-26s %-32s %s\n' "1-byte echo: mean us" "$(val shell-echo mean_us)" "$(val run-echo mean_us)"
}
if [ ! -r /dev/kvm ] || "$B/kvmbox" doctor 2>/dev/null | grep -q "emulates guest ring 0"; then
	echo "== end to end, nested: QEMU TCG L1 with KVM, kvmbox in L1 (TCG speed, not hardware) =="
	export KVMBOX_TOP=$PWD KVMBOX_BIN=$PWD/$B/kvmbox BUILD=$PWD/$B
	set +eu
	. tests/lib/tap.sh
	. tests/e2e/lib/nested.sh
	e2e_prepare >/dev/null
	trap 'e2e_cleanup; rm -rf "$tmpd"' EXIT	# e2e_prepare replaced ours
	e2e_add_program "$E2E_L1_ROOT" "$e2e" /usr/local/bin/console_e2e
	payload="METER=console_e2e
$(measure | sed 's#\$KB shell#kvmbox shell --kernel /vmlinux --initrd /l2.cpio#; s#\$KB run#kvmbox run --kernel /vmlinux --initrd /l2.cpio#')"
	e2e_run_in_l1 "$payload" 1500 || { echo "nested run failed: $E2E_WHY"; e2e_console_tail 30; exit 1; }
	out=$(grep '^@@B' "$E2E_LOG")
	echo "$out" | sed 's/^@@B /# /'
else
	echo "== end to end on this host's KVM (default kernel and initrd) =="
	out=$(METER=$e2e KB=$B/kvmbox bash -c "$(measure)")
	echo "$out" | sed 's/^@@B /# /'
fi
table
