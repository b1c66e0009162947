#!/bin/bash
# tests/bench/bench-vm.sh - `make bench-vm`: what users feel inside the VM,
# kvmbox beside QEMU, in one L1 boot of the nested harness (QEMU TCG with
# SVM, kvm_amd in L1; tests/e2e/lib/nested.sh) so both see the same
# emulated machine.  The same guest kernel and initramfs (kvmbox-init with
# busybox) boot in
#   kvmbox       kvmbox run with --share (virtio-fs) and its network card
#   kvmbox-9p    the same with --share-9p (its own virtio-9p)
#   qemu         qemu-system-x86_64 -accel kvm -M microvm with QEMU's own
#                devices: -fsdev local + virtio-9p-device, -netdev user
# and run tests/bench/vmbench.c (static, from a share) for: lstat of a
# 12,000-entry tree, a create/write/delete loop of small files, 4 KiB
# random reads and sequential reads of a 64 MiB file (guest caches
# dropped first), a 64 MiB sequential write with fsync; TCP
# request/response latency, alone and while another guest process reads
# the 64 MiB file of the share again and again (tcp-rr-busy), connections
# per second, and 64 MiB each way on one connection against vmbench's
# server in L1 (10.0.2.2 is L1's loopback in both).  ROUNDS (default 2)
# rounds, the columns taking turns in each.  Prints each figure per round
# beside QEMU's, with the ratio (>1: kvmbox better).  Figures are TCG
# speed in L1, not hardware's: compare the columns of one run.
# COLUMNS_ONLY="kvmbox qemu" runs those columns alone.  BENCH_BASE_BIN=PATH
# adds the column kvmbox-base: the kvmbox column's run with that binary
# (an A/B of two builds in one L1 boot, as Firecracker's A/B tests do).
# BENCH_KEEP_LOG=PATH keeps L1's console.  Not a test.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
export KVMBOX_TOP=${KVMBOX_TOP:-$top}
export BUILD=${BUILD:-$top/build}
export KVMBOX_BIN=${KVMBOX_BIN:-$BUILD/kvmbox}
rounds=${ROUNDS:-2}
columns=${COLUMNS_ONLY:-kvmbox kvmbox-9p qemu}
base_bin=${BENCH_BASE_BIN:-}
[ -n "$base_bin" ] && columns="kvmbox-base $columns"
. "$top/tests/lib/tap.sh"
. "$top/tests/e2e/lib/nested.sh"
E2E_TEST_NAME="bench-vm"
need_cmd gcc
command -v qemu-system-x86_64 >/dev/null || skip_all "qemu-system-x86_64 is not installed (the peer)"

e2e_prepare
gcc -static -O2 -o "$E2E_WORK/vmbench" "$top/tests/bench/vmbench.c" ||
	e2e_die "cannot build tests/bench/vmbench.c statically"
e2e_add_program "$E2E_L1_ROOT" "$E2E_WORK/vmbench" /usr/local/bin/vmbench
if [ -n "$base_bin" ]; then
	[ -x "$base_bin" ] || e2e_die "BENCH_BASE_BIN $base_bin is not an executable"
	e2e_add_program "$E2E_L1_ROOT" "$base_bin" /usr/local/bin/kvmbox-base
fi
e2e_add_qemu "$E2E_L1_ROOT"

b64() { printf "$1" | base64 -w0 | tr '+/' '-_' | tr -d '='; }	# guest/abi/base64url.h
qappend="console=ttyS0 reboot=t panic=-1 quiet kvmbox.fs=w:9:$(b64 /w),s:9:$(b64 /s)"
qappend+=" kvmbox.net=10.0.2.15/24,10.0.2.2,10.0.2.3 kvmbox.argv=$(b64 '/s/g\0')"

payload="ROUNDS=$rounds BENCH_COLUMNS='$columns' QAPPEND='$qappend'"$'\n'$(cat <<'PAYLOAD'
mkdir -p /w/tree /w/tmp /s
ip link set lo up
cp /usr/local/bin/vmbench /s/
i=0
while [ $i -lt 120 ]; do
	mkdir /w/tree/d$i; j=0
	while [ $j -lt 99 ]; do : >/w/tree/d$i/f$j; j=$((j+1)); done
	i=$((i+1))
done
dd if=/dev/urandom of=/w/big bs=1M count=64 2>/dev/null
cat >/s/g <<'EOF'
#!/bin/sh
V=/s/vmbench
drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }
drop; $V stat-tree /w/tree
$V small-files /w/tmp 500
drop; $V randread /w/big 2000
drop; $V seqread /w/big
$V seqwrite /w/out 64
$V rr 10.0.2.2 9300 2000
$V rr-busy 10.0.2.2 9300 2000 /w/big
$V conn 10.0.2.2 9300 3
$V download 10.0.2.2 9300 64
$V upload 10.0.2.2 9300 64
EOF
chmod 755 /s/g
vmbench serve 9300 &
K="--kernel /vmlinux --initrd /l2.cpio --memory 512 --cpus 2 --allow-host"
round=1	# (e2e_step uses r)
while [ $round -le $ROUNDS ]; do
	case " $BENCH_COLUMNS " in *" kvmbox-base "*)
	e2e_step "kvmbox-base_$round" 600 kvmbox-base run $K --share /w --share /s -- /s/g ;; esac
	case " $BENCH_COLUMNS " in *" kvmbox "*)
	e2e_step "kvmbox_$round" 600 kvmbox run $K --share /w --share /s -- /s/g ;; esac
	case " $BENCH_COLUMNS " in *" kvmbox-9p "*)
	e2e_step "kvmbox-9p_$round" 600 kvmbox run $K --share-9p /w --share /s -- /s/g ;; esac
	case " $BENCH_COLUMNS " in *" qemu "*)
	e2e_step "qemu_$round" 600 qemu-system-x86_64 -accel kvm -cpu host -M microvm,acpi=off -smp 2 -m 512 \
		-kernel /vmlinux -initrd /l2.cpio -append "$QAPPEND" -display none -nodefaults \
		-no-reboot -serial stdio \
		-fsdev local,id=fw,path=/w,security_model=none -device virtio-9p-device,fsdev=fw,mount_tag=w \
		-fsdev local,id=fs,path=/s,security_model=none -device virtio-9p-device,fsdev=fs,mount_tag=s \
		-netdev user,id=n0 -device virtio-net-device,netdev=n0 ;; esac
	round=$((round + 1))
done
PAYLOAD
)
e2e_run_or_bail "$payload" 3000

figs="stat-tree small-files randread-4k seqread seqwrite tcp-rr tcp-rr-busy tcp-conn download upload"
nfigs=$(echo $figs | wc -w)
value() { e2e_step_out "$1" | tr -d '\r' | awk -v f="$2" '$1 == "FIG" && $2 == f { print $3; exit }'; }
shown="kvmbox kvmbox-9p qemu"
[ -n "$base_bin" ] && shown="kvmbox-base $shown"
printf '# %-13s %5s' figure round
for s in $shown; do printf ' %13s' "$s"; done
printf ' %12s  %s\n' kvmbox/qemu unit
for r in $(seq 1 "$rounds"); do
	for f in $figs; do
		k=$(value "kvmbox_$r" "$f") q=$(value "qemu_$r" "$f")
		unit=$(e2e_step_out "kvmbox_$r" | tr -d '\r' | awk -v f="$f" '$1 == "FIG" && $2 == f { print $4; exit }')
		ratio=n/a
		if [ -n "$k" ] && [ -n "$q" ]; then	# latency: lower is better
			case $f in
			tcp-rr*) ratio=$(awk -v a="$q" -v b="$k" 'BEGIN { printf "%.2f", a / b }') ;;
			*) ratio=$(awk -v a="$k" -v b="$q" 'BEGIN { printf "%.2f", b ? a / b : 0 }') ;;
			esac
		fi
		printf '# %-13s %5s' "$f" "$r"
		for s in $shown; do v=$(value "${s}_$r" "$f"); printf ' %13s' "${v:--}"; done
		printf ' %12s  %s\n' "$ratio" "$unit"
	done
done
for s in $columns; do
	for r in $(seq 1 "$rounds"); do
		got=$(e2e_step_out "${s}_$r" | grep -c '^FIG ')
		[ "$got" = "$nfigs" ] && continue
		echo "# step ${s}_$r gave $got of $nfigs figures (exit $(e2e_step_rc "${s}_$r")):"
		e2e_step_out "${s}_$r" | tail -n 12 | sed 's/^/#   | /'
	done
done
[ -n "${BENCH_KEEP_LOG:-}" ] && cp "$E2E_LOG" "$BENCH_KEEP_LOG"
echo "# L1 kernel to userspace ${E2E_L1_UP_S:-?} s; whole nested run ${E2E_WALL_S%.*} s (TCG speed, not hardware)"
tap_done
