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
# End to end (when KVMBOX_KERNEL and KVMBOX_INITRD name a guest kernel and
# an initramfs with kvmbox-init): `kvmbox shell -- cat FILE` against
# `kvmbox run --console -- cat FILE` (serial) on /dev/kvm.
#
#   BENCH_MIB=256 BENCH_ECHOES=2000 make bench-console
set -eu
cd "$(dirname "$0")/../.."
B=${BUILD:-build}
[ -f "$B/libdevices.a" ] && [ -f "$B/libharness.a" ] || make -s -j2 all "$B/libharness.a"
bin=$(mktemp -d)/bench_console
trap 'rm -rf "$(dirname "$bin")"' EXIT
cc -std=gnu11 -O2 -D_GNU_SOURCE -I. -o "$bin" tests/bench/bench_console.c \
	-Wl,--start-group "$B"/libharness.a "$B"/libdevices.a "$B"/libcommon.a -Wl,--end-group \
	-luring -lpthread
echo "== device level (kvmbox's cost only; see tests/bench/bench_console.c) =="
"$bin" "${BENCH_MIB:-256}" "${BENCH_ECHOES:-2000}"

K=${KVMBOX_KERNEL:-} I=${KVMBOX_INITRD:-}
if [ -n "$K" ] && [ -n "$I" ] && [ -r /dev/kvm ]; then
	echo "== end to end: cat of ${BENCH_MIB:-256} MiB inside the guest =="
	for how in shell run; do
		args=(--kernel "$K" --initrd "$I")
		[ $how = run ] && args+=(--console)
		t0=$(date +%s.%N)
		timeout 600 "$B/kvmbox" $how "${args[@]}" -- sh -c \
			"head -c ${BENCH_MIB:-256}M /dev/zero" </dev/null | wc -c >/tmp/bench-console.$$
		t1=$(date +%s.%N)
		echo "$how: $(cat /tmp/bench-console.$$) bytes in $(echo "$t1 - $t0" | bc) s"
	done
	rm -f /tmp/bench-console.$$
else
	echo "== end to end: skipped (set KVMBOX_KERNEL and KVMBOX_INITRD to a kernel and an initramfs with kvmbox-init) =="
fi
