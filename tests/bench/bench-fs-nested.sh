#!/bin/bash
# tests/bench/bench-fs-nested.sh - `make bench-fs-nested`: how a guest's
# metadata requests fare while it reads a large file from the same share,
# with the real guest kernel on a real KVM (the nested harness,
# tests/e2e/lib/nested.sh).  The guest (2 vCPUs) times 500 `[ -e FILE ]`
# alone, then 500 more while a background loop keeps reading a 32 MiB file
# of the share with dd, over virtio-fs (--fs-cache none, so every lookup
# reaches the server) and over virtio-9p.  It prints stats/s alone and
# during the reads, their ratio, and the MB/s the reads got meanwhile.
#
# KVMBOX_BIN_PEER=PATH (e.g. a kvmbox built from an older commit) runs a
# second binary in the same L1 boot, the two taking turns for
# BENCH_ROUNDS (2) rounds, so load from elsewhere hits each alike.
# The share lives in L1's RAM (initramfs), so reads never wait for a disk;
# timings under TCG are not hardware's and move 2-4x between runs on a
# loaded machine: compare within one run.  BENCH_KEEP_LOG=PATH keeps L1's
# console log.  Not a test.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
export KVMBOX_TOP=${KVMBOX_TOP:-$top}
export BUILD=${BUILD:-$top/build}
export KVMBOX_BIN=${KVMBOX_BIN:-$BUILD/kvmbox}
rounds=${BENCH_ROUNDS:-2}
. "$top/tests/lib/tap.sh"
. "$top/tests/e2e/lib/nested.sh"
E2E_TEST_NAME="bench-fs-nested"

e2e_prepare
bins="kvmbox"
if [ -n "${KVMBOX_BIN_PEER:-}" ]; then
	e2e_add_program "$E2E_L1_ROOT" "$KVMBOX_BIN_PEER" /usr/local/bin/kvmbox-peer
	bins="kvmbox kvmbox-peer"
fi
payload="BINS='$bins' ROUNDS=$rounds"$'\n'$(cat <<'PAYLOAD'
K="--kernel /vmlinux --initrd /l2.cpio --no-net --cpus 2"
mkdir -p /w /s
dd if=/dev/urandom of=/w/big bs=1M count=32 2>/dev/null
echo x >/w/small
cat >/s/g <<'EOF'
up() { cut -d" " -f1 /proc/uptime; }
n=0; a=$(up); while [ $n -lt 500 ]; do [ -e /w/small ]; n=$((n+1)); done; b=$(up)
echo "idle $n $a $b"
echo 0 >/tmp/cnt
( i=0; while :; do dd if=/w/big of=/dev/null bs=1M 2>/dev/null; i=$((i+1)); echo $i >/tmp/cnt.new; mv /tmp/cnt.new /tmp/cnt; done ) &
sleep 1
c0=$(cat /tmp/cnt); n=0; a=$(up); while [ $n -lt 500 ]; do [ -e /w/small ]; n=$((n+1)); done; b=$(up)
echo "busy $n $a $b $c0 $(cat /tmp/cnt)"
kill $!
EOF
chmod 755 /s/g
round=1	# (e2e_step uses r)
while [ $round -le $ROUNDS ]; do
	for b in $BINS; do
		e2e_step "fs_${b}_$round" 300 $b run $K --fs-cache none --share /w --share /s -- /s/g
		e2e_step "nine_${b}_$round" 300 $b run $K --share-9p /w --share /s -- /s/g
	done
	round=$((round + 1))
done
PAYLOAD
)
e2e_run_or_bail "$payload" 1200

echo "# share binary      round  stat/s alone  stat/s reading  ratio  read MB/s"
for r in $(seq 1 "$rounds"); do
	for b in $bins; do
		for s in fs nine; do
			out=$(e2e_step_out "${s}_${b}_$r" | tr -d '\r')
			printf '%s\n' "$out" | awk -v s="$s" -v b="$b" -v r="$r" '
				$1 == "idle" { idle = $2 / ($4 - $3) }
				$1 == "busy" { busy = $2 / ($4 - $3); mb = ($6 - $5) * 32 / ($4 - $3) }
				END { if (idle && busy)
					printf "# %-5s %-12s %5d %13.0f %15.0f %6.2f %10.0f\n", s, b, r, idle, busy, busy / idle, mb
				      else printf "# %-5s %-12s %5d  (no figures)\n", s, b, r }'
			[ "$(grep -cE '^(idle|busy) ' <<<"$out")" = 2 ] && continue
			echo "#   step ${s}_${b}_$r exited $(e2e_step_rc "${s}_${b}_$r"):"
			printf '%s\n' "$out" | tail -n 15 | sed 's/^/#   | /'
		done
	done
done
[ -n "${BENCH_KEEP_LOG:-}" ] && cp "$E2E_LOG" "$BENCH_KEEP_LOG"	# L1's whole console
echo "# L1 kernel to userspace ${E2E_L1_UP_S:-?} s; whole nested run ${E2E_WALL_S%.*} s"
tap_done
