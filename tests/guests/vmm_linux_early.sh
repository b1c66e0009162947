#!/bin/bash
# tests/guests/vmm_linux_early.sh - a real Linux kernel's first steps under
# kvmbox on the host's /dev/kvm: PVH entry through boot/, the kernel's
# earlyprintk over our 8250, KVM found through our CPUID leaves, kvm-clock,
# the TSC frequency from leaf 0x40000010.  On an emulating KVM (kvm_pvm) the
# kernel crawls, so the test stops it with SIGINT as soon as it has seen
# what it needs (bounded at 150 s); on VT-x/AMD-V the kernel gets further
# and, with no root filesystem, panics and resets (panic=-1): either way
# kvmbox must end with one line on stderr.  Skipped without a kernel
# ($KVMBOX_KERNEL or ~/.cache/kvmbox/kernel/*/vmlinux).
set -u
. "$(dirname "$0")/../lib/tap.sh"
[ -x "$KVMBOX_BIN" ] || skip_all "kvmbox not built"
[ -c /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ] || skip_all "no usable /dev/kvm"
kernel=${KVMBOX_KERNEL:-}
if [ -z "$kernel" ]; then
	for k in "$HOME"/.cache/kvmbox/kernel/*/vmlinux; do [ -f "$k" ] && kernel=$k; done
fi
[ -n "$kernel" ] && [ -f "$kernel" ] || skip_all "no guest kernel (make kernel, or set KVMBOX_KERNEL)"

tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

"$KVMBOX_BIN" run --kernel "$kernel" --memory 256 \
	--cmdline "earlyprintk=serial,ttyS0,115200 console=ttyS0 loglevel=8 reboot=k panic=-1" \
	>"$tmp/out" 2>"$tmp/err" </dev/null &
pid=$!
want='tsc: Detected [0-9.]* MHz processor'
for _ in $(seq 1500); do
	grep -q "$want" "$tmp/out" 2>/dev/null && break
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.1
done
kill -INT "$pid" 2>/dev/null
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
if kill -0 "$pid" 2>/dev/null; then
	not_ok "kvmbox stops on SIGINT while Linux boots" "still running 5 s after SIGINT"
	kill -KILL "$pid"
else
	ok "kvmbox stops on SIGINT while Linux boots"
fi
wait "$pid"
rc=$?
pid=
out=$(tr -d '\r' <"$tmp/out")
check_line() {	# NAME REGEX
	if printf '%s\n' "$out" | grep -q "$2"; then ok "$1"
	else not_ok "$1" "$(printf '%s\n' "$out" | tail -5)"; fi
}
check_line "earlyprintk over the 8250: Linux banner" '^\[ *0\.000000\] Linux version '
check_line "our command line reached the kernel" 'Command line: earlyprintk=serial,ttyS0,115200 console=ttyS0'
check_line "e820 from boot/ reached the kernel" 'BIOS-e820: \[mem 0x0000000000100000-'
check_line "CPUID hypervisor bit and KVM signature: KVM detected" 'Hypervisor detected: KVM'
check_line "TSC frequency known (CPUID 0x40000010 or kvm-clock)" "$want"
lines=$(grep -c . "$tmp/err")
case $rc in
130|1) expect_eq "ends with one line on stderr (exit $rc)" 1 "$lines" ;;
*) not_ok "ends with SIGINT (130) or a guest reset (1)" "exit $rc: $(cat "$tmp/err")" ;;
esac
tap_done
