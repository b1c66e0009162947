#!/bin/bash
# tests/bench/bench-boot-nested.sh - `make bench-boot` on a machine without
# a usable /dev/kvm: tests/bench/bench-boot.sh run inside the nested
# harness's L1 (QEMU TCG with SVM, kvm_amd; tests/lib/kvm-in-l1.sh), with
# the release kvmbox, the cached guest kernel, the initramfs and QEMU for
# the peer column, all in one L1 boot so both see the same emulated
# machine.  Figures are TCG speed, not hardware's: compare the columns of
# one run, never runs of different machines.  RUNS (default 5) as for
# bench-boot.sh.  Not a test.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
export KVMBOX_TOP=${KVMBOX_TOP:-$top}
export BUILD=${BUILD:-$top/build}
make -C "$top" -s initrd >/dev/null || { echo "bench-boot: make initrd failed"; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
KVM_IN_L1_ONLY="bench bench-boot env KVMBOX_BIN=/top/build/kvmbox RUNS=${RUNS:-5} bash tests/bench/bench-boot.sh" \
	KVM_IN_L1_STEP_S=${KVM_IN_L1_STEP_S:-1500} bash "$top/tests/lib/kvm-in-l1.sh" "$out"
if [ -f "$out/unavailable" ]; then
	echo "bench-boot: the nested harness is unavailable: $(cat "$out/unavailable")"
	exit 1
fi
cat "$out/bench/bench-boot.log" 2>/dev/null
echo "bench-boot: in the nested harness's L1 (TCG, not hardware); exit $(cat "$out/bench/bench-boot.rc" 2>/dev/null || echo none)"
