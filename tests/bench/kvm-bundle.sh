#!/bin/bash
# tests/bench/kvm-bundle.sh OUT.tar.xz - pack what the KVM tiers and the
# boot benchmarks need to run on a machine that has a usable /dev/kvm but
# none of the build's dependencies (a lent benchmark machine, a colleague's
# laptop): the release kvmbox, kvmbox-init, the initramfs, the tiny test
# guests, the KVM unit tests, the cached guest kernel, the shared libraries
# they load that a bare machine may lack, and qemu-system-x86_64 with its
# libraries and microvm firmware for the benchmarks' peer column.
#
# On the other machine, from a checkout of the same commit:
#   tar -xJf OUT.tar.xz && . bundle/env.sh
#   TIERS=guests tests/run.sh; bundle/unit.sh; make-free benchmarks:
#   tests/bench/bench-boot.sh; tests/bench/bench-vmm.sh
set -eu
cd "$(dirname "$0")/../.."
out=${1:?usage: tests/bench/kvm-bundle.sh OUT.tar.xz}
B=${BUILD:-build}
kernel=${KVMBOX_KERNEL:-}
if [ -z "$kernel" ]; then
	for k in "$HOME"/.cache/kvmbox/kernel/*/vmlinux; do [ -f "$k" ] && kernel=$k; done
fi
[ -n "$kernel" ] || { echo "kvm-bundle: no guest kernel (make kernel)"; exit 1; }
[ -x "$B/kvmbox" ] || { echo "kvm-bundle: build first (make all unit-bins)"; exit 1; }

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
d=$stage/bundle
mkdir -p "$d/build/firmware/tests" "$d/build/tests/unit" "$d/lib" "$d/qemu/bin" "$d/qemu/lib" "$d/qemu/share"
cp "$B/kvmbox" "$B/kvmbox-init" "$B/initrd.cpio" "$d/build/"
cp -L "$kernel" "$d/build/vmlinux"
cp "$B"/firmware/tests/*.elf "$d/build/firmware/tests/"
units=$(ls "$B"/tests/unit/test_*kvm* | grep -v "\.d$")
cp $units "$d/build/tests/unit/"

# libraries beside libc: the machine's glibc is used, everything else travels
libs_of() { ldd "$@" | awk '$3 ~ /^\// {print $3}' | grep -vE '/(libc|libm|libpthread|libdl|librt|ld-linux[^/]*)\.so' | sort -u; }
libs_of "$B/kvmbox" $units | xargs -r cp -L -t "$d/lib/"
q=$(command -v qemu-system-x86_64 || true)
if [ -n "$q" ]; then
	cp "$q" "$d/qemu/bin/qemu-system-x86_64.real"
	libs_of "$q" | xargs -r cp -L -t "$d/qemu/lib/"
	cp /usr/share/qemu/bios-microvm.bin /usr/share/qemu/qboot.rom /usr/share/qemu/pvh.bin "$d/qemu/share/" 2>/dev/null || true
	cat >"$d/qemu/bin/qemu-system-x86_64" <<'EOF'
#!/bin/sh
q=$(dirname "$(readlink -f "$0")")/..
LD_LIBRARY_PATH=$q/lib exec "$q/bin/qemu-system-x86_64.real" -L "$q/share" "$@"
EOF
	chmod +x "$d/qemu/bin/qemu-system-x86_64"
fi
cat >"$d/env.sh" <<'EOF'
# . bundle/env.sh: the bundle's binaries in place of a build
b=$(readlink -f bundle)
export BUILD=$b/build KVMBOX_BIN=$b/build/kvmbox KVMBOX_KERNEL=$b/build/vmlinux
export LD_LIBRARY_PATH=$b/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} PATH=$b/qemu/bin:$PATH
export KVMBOX_TOP=$PWD CMOCKA_MESSAGE_OUTPUT=TAP
EOF
cat >"$d/unit.sh" <<'EOF'
#!/bin/bash
# bundle/unit.sh: the KVM unit tests, TAP on stdout
for t in "$BUILD"/tests/unit/test_*; do echo "# $t"; "$t"; done
EOF
chmod +x "$d/unit.sh"
tar -C "$stage" -cJf "$out" bundle
ls -l "$out"
