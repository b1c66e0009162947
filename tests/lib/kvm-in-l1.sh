#!/bin/bash
# tests/lib/kvm-in-l1.sh OUTDIR - run the tests that need a usable /dev/kvm
# (the KVM unit tests, plain and sanitized, and the tiny-guest tier) inside
# the nested harness's L1, for a machine that has no /dev/kvm of its own.
# tests/run.sh calls it once, before the first such test, and then reports
# each test from what it left:
#
#   OUTDIR/TIER/NAME.log   the test's own output (TAP), as it ran in L1
#   OUTDIR/TIER/NAME.rc    its exit status
#   OUTDIR/unavailable     why L1 could not be used (no QEMU, no L1 kernel):
#                          the tests then run on this machine and skip
#   OUTDIR/failed          L1 gave no result (froze, timed out): each test
#                          without a .rc is then a failure with this reason
#
# L1 gets what the tests use from this machine: bash, GNU coreutils, grep,
# sed, awk, python3 with its standard library, setpriv, unshare, ldconfig
# and its cache, the libraries kvmbox opens on first use, the builds'
# binaries and tiny guests under /top with the test scripts, and the guest
# kernel.  Tests run as root in L1, one after another, each under a limit.
set -u
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: tests/lib/kvm-in-l1.sh OUTDIR}
: "${KVMBOX_TOP:=$(cd "$here/../.." && pwd)}"
: "${BUILD:=$KVMBOX_TOP/build}"
. "$here/tap.sh"
# 1 vCPU: the tests run one at a time, and L1 runs steadier under TCG
: "${E2E_L1_SMP:=1}" "${E2E_L1_MEM:=3G}"
# the tiny-guest tier triple-faults a guest on purpose (fault.elf)
E2E_EXPECT_TRIPLE_FAULT=1
. "$KVMBOX_TOP/tests/e2e/lib/nested.sh"
rm -rf "$out"
mkdir -p "$out"

# The harness's ways out, turned into files run.sh reads.
skip_all() { echo "$1" >"$out/unavailable"; echo "L1 unavailable: $1"; exit 0; }
e2e_die() { echo "$1" >"$out/unavailable"; echo "L1 unavailable: $1"; e2e_cleanup; exit 0; }

# Which tests: TIER NAME COMMAND (relative to /top in L1).
tests=()
for b in "$BUILD"/tests/unit/test_*kvm* "$BUILD-asan"/tests/unit/test_*kvm*; do
	[ -x "$b" ] && [ -f "$b" ] || continue
	case $b in "$BUILD-asan"/*) tier=unit-asan dir=build-asan ;; *) tier=unit dir=build ;; esac
	tests+=("$tier $(basename "$b") $dir/tests/unit/$(basename "$b")")
done
for s in "$KVMBOX_TOP"/tests/guests/*.sh; do
	tests+=("guests $(basename "$s" .sh) bash tests/guests/$(basename "$s")")
done
# KVM_IN_L1_ONLY="TIER NAME COMMAND": that one instead (a benchmark:
# tests/bench/bench-boot-nested.sh), with QEMU in L1 for its peer column.
[ -n "${KVM_IN_L1_ONLY:-}" ] && tests=("$KVM_IN_L1_ONLY")

kernel=${KVMBOX_KERNEL:-}
if [ -z "$kernel" ]; then
	for k in "$E2E_CACHE"/kernel/*/vmlinux; do [ -f "$k" ] && kernel=$k; done
fi

E2E_NO_L2=1
e2e_prepare
root=$E2E_L1_ROOT

# Programs the tests call, GNU ones ahead of busybox's on PATH.
for p in bash timeout date stat mktemp env seq tr head tail cut sort uniq wc \
	dirname basename cat cp mv rm mkdir ln ls chmod id sleep readlink \
	grep sed awk setpriv unshare; do
	path=$(command -v "$p" 2>/dev/null) || continue
	e2e_add_program "$root" "$(readlink -f "$path")" "/usr/local/bin/$p"
done
cp /sbin/ldconfig "$root/bin/ldconfig" 2>/dev/null
py=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null)	# not a wrapper (pyenv)
if [ -n "$py" ]; then
	e2e_add_program "$root" "$py" /usr/local/bin/python3
	pylib=$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')
	mkdir -p "$root$pylib"
	(cd "$pylib" && tar --exclude=./test --exclude=./idlelib --exclude=./tkinter \
		--exclude=./lib2to3 --exclude=./ensurepip --exclude=./site-packages \
		--exclude=./dist-packages --exclude='./config-*' -cf - .) | tar -C "$root$pylib" -xf -
	for so in "$pylib"/lib-dynload/*.so; do e2e_add_libs "$root" "$so"; done
fi
# The libraries kvmbox opens on first use (doctor names each), by soname
# through ldconfig's cache, as on this machine.
for so in libssl.so.3 libcrypto.so.3 libjson-c.so.5 libcurl.so.4 libarchive.so.13; do
	e2e_add_soname "$root" "$so"
done
cp /etc/ld.so.cache "$root/etc/ld.so.cache"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n' >"$root/etc/passwd"
printf 'root:x:0:\nkvm:x:993:\nnogroup:x:65534:\n' >"$root/etc/group"

# The tree under test: scripts, builds, tiny guests, the guest kernel.
t=$root/top
mkdir -p "$t/tests"
cp -r "$KVMBOX_TOP/tests/lib" "$KVMBOX_TOP/tests/guests" "$KVMBOX_TOP/tests/bench" "$t/tests/"
[ -n "${KVM_IN_L1_ONLY:-}" ] && e2e_add_qemu "$root"	# the benchmarks' peer
for d in build build-asan; do
	src=$BUILD${d#build}	# $BUILD, $BUILD-asan
	[ -d "$src" ] || continue
	mkdir -p "$t/$d/tests/unit" "$t/$d/firmware/tests"
	for f in kvmbox kvmbox-init initrd.cpio; do [ -f "$src/$f" ] && cp "$src/$f" "$t/$d/"; done
	[ -x "$t/$d/kvmbox" ] && e2e_add_libs "$root" "$t/$d/kvmbox"
	cp "$src"/firmware/tests/*.elf "$t/$d/firmware/tests/" 2>/dev/null
	for b in "$src"/tests/unit/test_*kvm*; do
		[ -x "$b" ] && [ -f "$b" ] || continue
		cp "$b" "$t/$d/tests/unit/"
		e2e_add_libs "$root" "$b"
	done
done
[ -n "$kernel" ] && cp -L "$kernel" "$t/vmlinux"

payload='cd /top
export KVMBOX_TOP=/top BUILD=/top/build HOME=/root CMOCKA_MESSAGE_OUTPUT=TAP
export PATH=/usr/local/bin:/bin TERM=dumb
[ -x /top/build-asan/kvmbox ] && export KVMBOX_BIN=/top/build-asan/kvmbox || export KVMBOX_BIN=/top/build/kvmbox
[ -f /top/vmlinux ] && export KVMBOX_KERNEL=/top/vmlinux
mkdir -p /root /dev/pts
mount -t devpts -o ptmxmode=666 devpts /dev/pts 2>/dev/null
'
step_s=${KVM_IN_L1_STEP_S:-600}

# One L1 boot runs every test not yet done.  When L1 itself stops answering
# (QEMU TCG's nested SVM, now and then: see nested.sh), the next boot
# carries on from the test it froze in; up to $E2E_L1_BOOTS boots in all.
start=$SECONDS boots=0 notes=""
E2E_L1_BOOTS_ALL=${E2E_L1_BOOTS:-3}
E2E_L1_BOOTS=1
while [ "$boots" -lt "$E2E_L1_BOOTS_ALL" ]; do
	boots=$((boots + 1))
	steps="" limit=120 left=0
	for entry in "${tests[@]}"; do
		read -r tier name cmd <<<"$entry"
		[ -f "$out/$tier/$name.rc" ] && continue
		steps+="e2e_step $tier:$name $step_s $cmd"$'\n'
		limit=$((limit + step_s)) left=$((left + 1))
	done
	[ "$left" -eq 0 ] && break
	[ "$limit" -gt 3000 ] && limit=3000
	e2e_run_in_l1 "$payload$steps" "$limit" && rm -f "$out/failed" ||
		{ echo "$E2E_WHY"; e2e_console_tail 30; } >"$out/failed"
	for entry in "${tests[@]}"; do
		read -r tier name cmd <<<"$entry"
		rc=$(e2e_step_rc "$tier:$name")
		[ -n "$rc" ] || continue
		mkdir -p "$out/$tier"
		e2e_step_out "$tier:$name" >"$out/$tier/$name.log"
		echo "$rc" >"$out/$tier/$name.rc"
	done
	cp "$E2E_LOG" "$out/console-boot$boots.log" 2>/dev/null
	[ -n "$E2E_RC" ] && break		# L1 ran to the end: no second chance
	e2e_l1_froze || break
	step=$(grep '^@@E2E-STEP-BEGIN' "$E2E_LOG" | tail -n 1 | cut -d' ' -f2)
	notes+="${notes:+; }L1 stopped answering in ${step:-its start}"
done
echo "L1: ${#tests[@]} tests in $((SECONDS - start)) s, $boots L1 boot(s)${notes:+ ($notes)}"
exit 0
