#!/bin/bash
# tests/bench/bench-fs.sh - `make bench-fs`: file-server throughput, each
# figure next to its peers measured in the same run:
#   native         the host directory itself
#   kvmbox         kvmbox fs-serve --fuse (host kernel's FUSE client)
#   kvm-np         kvmbox as it was before: /dev/fuse only, no adaptive
#                  polling (--poll-us 0) (metadata figures only)
# Where the kernel has FUSE-over-io_uring queues (fuse.enable_uring; the
# script turns the parameter on for its run and restores it), kvmbox runs
# with --uring: a thread per CPU serves its CPU's queue.
#   passthrough_ll libfuse's example low-level passthrough server, built
#                  from Debian's libfuse3-dev examples, same cache mode
#   pll+dp         the same passthrough_ll mounted with default_permissions,
#                  the permission model kvmbox's mount (and every virtio-fs
#                  guest) uses: the kernel checks permissions itself, which
#                  costs GETATTRs when attributes may not be cached
#                  (metadata figures only)
# Metadata figures are the best of BENCH_FS_ROUNDS (3) runs with the peers
# taking turns, so load from elsewhere on the machine hits each alike.
# Operations: stat, open+read+close of small files, readdir, negative
# lookups of ever new names and of the same 2,000 missing names again and
# again (what compilers and module loaders do), in ops/s; fio 4 KiB random
# read (IOPS) and `git status` on 12,000- and 100,000-file repositories
# (seconds; FAIL when git status fails, e.g. a peer that runs out of fds).
# BENCH_FS_QUICK=1 skips 100,000.  kvmbox runs with --stats: the FUSE
# requests per opcode it served are printed at the end, and so is the CPU
# time each server used during the metadata runs (polling costs CPU).
# 9P2000.L: diodload getattr and read/write ops/s against kvmbox fs-serve
# --9p (unix socket) and against diod (TCP on loopback) on the same tree.
# Needs root, /dev/fuse, gcc, libfuse3-dev, fio, git, diod.  Not a test;
# on a loaded machine the figures move a lot: compare within one run.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${KVMBOX_BIN:-$top/build/kvmbox}
SECS=${BENCH_FS_SECONDS:-2}
T=$(mktemp -d /tmp/kvmbox-bench-fs.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	sleep 0.3
	grep -F " $T/" /proc/mounts | awk '{print $2}' | while read -r m; do umount -l "$m"; done
	rm -rf "$T"
}
trap cleanup EXIT
[ "$(id -u)" -eq 0 ] || { echo "bench-fs: needs root"; exit 1; }
URING_P=/sys/module/fuse/parameters/enable_uring URING=""
if [ -w "$URING_P" ]; then
	uring_old=$(cat "$URING_P")
	trap 'cleanup; echo "$uring_old" >"$URING_P"' EXIT
	echo Y >"$URING_P" && URING=--uring
fi

# The measuring helper: tight loops in C so the tool is not the bottleneck.
cat >"$T/fsb.c" <<'C'
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
int main(int argc, char **argv) {
	const char *op = argv[1], *root = argv[2];
	int nd = atoi(argv[3]), nf = atoi(argv[4]);
	double secs = atof(argv[5]), t0 = now();
	long ops = 0; char p[4096], buf[4096]; struct stat st; unsigned neg = 0;
	while (now() - t0 < secs) {
		for (int d = 0; d < nd; d++) {
			if (!strcmp(op, "readdir")) {
				snprintf(p, sizeof p, "%s/d%02d", root, d);
				DIR *dir = opendir(p); while (readdir(dir)) ; closedir(dir); ops++;
				continue;
			}
			for (int f = 0; f < nf; f++) {
				if (!strcmp(op, "neg")) {
					snprintf(p, sizeof p, "%s/d%02d/missing%u", root, d, neg++);
					if (stat(p, &st) == 0) return 1;
				} else if (!strcmp(op, "negrep")) {
					snprintf(p, sizeof p, "%s/d%02d/missing%04d", root, d, f);
					if (stat(p, &st) == 0) return 1;
				} else {
					snprintf(p, sizeof p, "%s/d%02d/f%04d", root, d, f);
					if (!strcmp(op, "stat")) { if (lstat(p, &st)) return 1; }
					else { int fd = open(p, O_RDONLY); if (fd < 0 || read(fd, buf, sizeof buf) < 0) return 1; close(fd); }
				}
				ops++;
			}
		}
	}
	printf("%.0f\n", ops / (now() - t0));
	return 0;
}
C
gcc -O2 -o "$T/fsb" "$T/fsb.c" || exit 1

# Peer: passthrough_ll from the libfuse3-dev examples.
PLL=""
ex=/usr/share/doc/libfuse3-dev/examples
if [ -f $ex/passthrough_ll.c ] && pkg-config --exists fuse3 2>/dev/null; then
	gcc -O2 -Wall -I$ex -o "$T/passthrough_ll" $ex/passthrough_ll.c $(pkg-config fuse3 --cflags --libs) \
		2>"$T/pll-build.log" && PLL=$T/passthrough_ll
fi
[ -n "$PLL" ] || echo "bench-fs: passthrough_ll not available (libfuse3-dev examples missing or build failed)"

ND=20 NF=100
src=$T/src
mkdir -p "$src"
for d in $(seq -f '%02g' 0 $((ND - 1))); do
	mkdir -p "$src/d$d"
	for f in $(seq -f '%04g' 0 $((NF - 1))); do head -c 1024 /dev/zero >"$src/d$d/f$f"; done
done
head -c 64M /dev/urandom >"$src/fio.dat"

mk_repo() {	# DIR N
	python3 - "$1" "$2" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    d = os.path.join(root, "m%03d" % (i // 1000), "s%02d" % (i % 1000 // 100))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%05d.txt" % i), "w") as f: f.write("line %d\n" % i)
PY
	git -C "$1" init -q && git -C "$1" add -A &&
		git -C "$1" -c user.email=b@x -c user.name=b commit -qm init
}
mk_repo "$src/repo12k" 12000
[ "${BENCH_FS_QUICK:-0}" = 1 ] || mk_repo "$src/repo100k" 100000

wait_mount() { for _ in $(seq 100); do grep -qF " $1 fuse" /proc/mounts && return 0; sleep 0.1; done; return 1; }

# mount_kvmbox MNT CACHE / mount_pll MNT CACHE
STATS=$("$BIN" fs-serve --help 2>&1 | grep -q -- --stats && echo --stats)	# older builds lack it
# mount_kvmbox MNT CACHE LOG [ARGS...]
mount_kvmbox() {
	local m=$1 c=$2 log=$3; shift 3
	mkdir -p "$m"; KVMBOX_LOG=info "$BIN" fs-serve --fuse "$m" "$src" --cache "$c" $STATS "$@" 2>>"$log" &
	KV_PID=$!; pids+=($!); wait_mount "$m"
}
# mount_pll MNT CACHE [EXTRA-OPTS]: passthrough_ll's timeouts follow its
# cache mode exactly like kvmbox's (never: 0, auto: 1 s, always: 1 day).
mount_pll() {
	local c=$2; [ "$c" = none ] && c=never; : auto is auto in both
	mkdir -p "$1"; "$PLL" -f -o source="$src",cache="$c${3:+,$3}" "$1" 2>>"$T/pll.log" &
	PL_PID=$!; pids+=($!); wait_mount "$1"
}
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }	# PID: user+system

gitstatus() {	# DIR: best of 3 seconds
	local best=999 s e t
	git -C "$1" status --porcelain >/dev/null 2>&1 || { echo FAIL; return; }
	for _ in 1 2 3; do
		s=$(date +%s.%N); git -C "$1" status --porcelain >/dev/null 2>&1 || { echo FAIL; return; }
		e=$(date +%s.%N)
		t=$(echo "$e - $s" | bc -l); (( $(echo "$t < $best" | bc -l) )) && best=$t
	done
	printf '%.3f' "$best"
}
fioread() {	# DIR
	fio --name=rr --filename="$1/fio.dat" --rw=randread --bs=4k --size=64m --runtime="$SECS" \
		--time_based --ioengine=psync --output-format=terse --terse-version=3 2>/dev/null |
		awk -F';' '{print $8}'
}

META_OPS="stat open readdir neg negrep"
ROUNDS=${BENCH_FS_ROUNDS:-3}
# meta_best ROOT...: the metadata figures, one line per ROOT.  Each figure
# is the best of ROUNDS runs, the roots taking turns within each round, so
# that load from elsewhere on the machine hits every peer alike.
meta_best() {
	local -A best=()
	local op r v
	for op in $META_OPS; do
		for _ in $(seq "$ROUNDS"); do
			for r in "$@"; do
				v=$("$T/fsb" $op "$r" $ND $NF "$SECS" || echo 0)
				[ "${best[$r|$op]:-0}" -lt "${v:-0}" ] && best[$r|$op]=$v
			done
		done
	done
	for r in "$@"; do
		local line=""
		for op in $META_OPS; do line="$line ${best[$r|$op]:-ERR}"; done
		echo "$line"
	done
}
slow_figures() {	# ROOT -> fio IOPS and git status seconds
	local r=$1 out
	out="$(fioread "$r") $(gitstatus "$r/repo12k")"
	if [ -d "$r/repo100k" ]; then out="$out $(gitstatus "$r/repo100k")"; else out="$out -"; fi
	echo "$out"
}

names=(stat/s open+read+close/s readdir/s neg-lookup-new/s neg-lookup-repeat/s fio-4k-randread-IOPS git-status-12k-s git-status-100k-s)
echo "bench-fs: $ND x $NF small files, ${SECS}s per figure, best of $ROUNDS; $(nproc) CPUs; $(uname -r);" \
	"kvmbox ${URING:-without --uring (no FUSE-over-io_uring in this kernel)}"
native=($(meta_best "$src") $(slow_figures "$src"))
ratio_of() {	# NAME KVMBOX PEER
	[ "$3" != - ] && [ "$3" != FAIL ] && [ "$2" != - ] && [ "$2" != FAIL ] || { echo -; return; }
	case $1 in
	*-s) echo "$(echo "scale=2; $3 / $2" | bc -l 2>/dev/null)x" ;;	# time: lower is better
	*) echo "$(echo "scale=2; $2 / $3" | bc -l 2>/dev/null)x" ;;
	esac
}
for cache in auto none; do
	mount_kvmbox "$T/mn-$cache" $cache "$T/kvmbox-np.log" --poll-us 0 || { echo "kvmbox mount failed"; exit 1; }
	servers=($KV_PID)
	mount_kvmbox "$T/mk-$cache" $cache "$T/kvmbox-$cache.log" $URING || { echo "kvmbox mount failed"; exit 1; }
	servers=($KV_PID "${servers[@]}")
	roots=("$T/mk-$cache" "$T/mn-$cache")
	if [ -n "$PLL" ] && mount_pll "$T/mp-$cache" $cache && servers+=($PL_PID) &&
		mount_pll "$T/md-$cache" $cache default_permissions; then
		roots+=("$T/mp-$cache" "$T/md-$cache")
		servers+=($PL_PID)
	fi
	cpu0=(); for p in "${servers[@]}"; do cpu0+=($(cpu_ticks "$p")); done
	mapfile -t meta < <(meta_best "${roots[@]}")
	cpu=(); for i in "${!servers[@]}"; do cpu+=($(echo "scale=2; ($(cpu_ticks "${servers[$i]}") - ${cpu0[$i]}) / $(getconf CLK_TCK)" | bc)); done
	kv=(${meta[0]} $(slow_figures "$T/mk-$cache")) np=(${meta[1]})
	kill "$KV_PID" "${servers[1]}"; wait "$KV_PID" "${servers[1]}" 2>/dev/null	# prints its request counts
	pl=() pd=()
	if [ ${#roots[@]} -gt 2 ]; then
		pl=(${meta[2]} $(slow_figures "$T/mp-$cache"))
		pd=(${meta[3]})
	fi
	echo
	echo "cache=$cache"
	printf '  %-22s %10s %10s %10s %10s %8s %10s %8s\n' figure native kvmbox kvm-np pll kvm/pll pll+dp kvm/pll+dp
	for i in "${!names[@]}"; do
		p=${pl[$i]:--} d=${pd[$i]:--}
		printf '  %-22s %10s %10s %10s %10s %8s %10s %8s\n' "${names[$i]}" "${native[$i]}" "${kv[$i]}" \
			"${np[$i]:--}" "$p" "$(ratio_of "${names[$i]}" "${kv[$i]}" "$p")" "$d" \
			"$(ratio_of "${names[$i]}" "${kv[$i]}" "$d")"
	done
	printf '  %-22s %10s %10s %10s %10s %8s %10s\n' "server CPU s, metadata" - "${cpu[0]}" "${cpu[1]}" \
		"${cpu[2]:--}" "" "${cpu[3]:--}"

	if [ -n "$STATS" ]; then
		echo "  FUSE requests kvmbox served (whole cache=$cache run):"
		grep -E '^[A-Z_0-9-]+ [0-9]+$' "$T/kvmbox-$cache.log" | sort -k2 -nr |
			awk '{ printf "    %-12s %s\n", $1, $2 }'
		grep -o '[0-9]* requests served through the io_uring queues' "$T/kvmbox-$cache.log" | sed 's/^/  of which /'
	fi
done
echo
if command -v diod >/dev/null && command -v diodload >/dev/null; then
	# diodload attaches aname "ctl" and reads "zero", writes "null": diod
	# serves those from its in-memory ctl namespace, kvmbox from real
	# files (a sparse 1 GiB zero) in the share, so diod's side does no
	# disk I/O at all: its figures are an upper bound.
	truncate -s 1G "$src/zero"; : >"$src/null"
	"$BIN" fs-serve --9p "$T/9p.sock" "$src" 2>>"$T/kvmbox.log" &
	pids+=($!)
	port=$((20000 + RANDOM % 20000))
	diod -f -n -N -l 127.0.0.1:$port -e "$src" -e ctl -L "$T/diod.log" 2>>"$T/diod.log" &
	pids+=($!)
	sleep 1
	dl() { timeout $((SECS + 20)) diodload -s "$1" -r "$SECS" -n 1 $2 2>&1 | awk -F'[:,]' '/ops\/s/ { print $2 }' | awk '{print $1}'; }
	echo "9P2000.L (diodload, 1 thread, ${SECS}s; diod: unix socket vs TCP loopback, ctl namespace in memory)"
	printf '  %-24s %12s %12s %10s\n' figure kvmbox diod kvm/diod
	for mode in -g ""; do
		name=getattr/s; [ -z "$mode" ] && name=read+write-ops/s
		k=$(dl "$T/9p.sock" "$mode"); d=$(dl "127.0.0.1:$port" "$mode")
		r=$(echo "scale=2; ${k:-0} / ${d:-1}" | bc -l 2>/dev/null)
		printf '  %-24s %12s %12s %10s\n' "$name" "${k:--}" "${d:--}" "${r}x"
	done
else
	echo "9P2000.L vs diod: diod not installed"
fi
