#!/bin/bash
# tests/guests/vmm_snapshot.sh - `kvmbox run --snapshot DIR` and `--restore
# DIR` on a real KVM with the tiny counter guest (firmware/tests/snap.c):
# the guest asks to be saved, kvmbox saves the whole VM (RAM, vCPUs,
# irqchip, PIT, kvmclock, UART) and exits; a restore goes on where it
# stopped, as often as asked (a template); a restored VM saved again
# (its RAM a private copy of the file) restores too; two vCPUs; the files
# on disk (sparse memory, one memory file after a second save); and the
# refusals, one line and exit 2 each: a damaged or cut state, a missing or
# short memory file, a folder of other files, the flags it cannot take.
set -u
. "$(dirname "$0")/../lib/tap.sh"
G=${BUILD:-$KVMBOX_TOP/build}/firmware/tests
[ -f "$G/snap.elf" ] || G=$KVMBOX_TOP/build/firmware/tests
[ -f "$G/snap.elf" ] || skip_all "tiny guests not built (make)"
[ -x "$KVMBOX_BIN" ] || skip_all "kvmbox not built"
[ -c /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ] || skip_all "no usable /dev/kvm"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# run ARGS...: kvmbox run with a 30 s bound; sets rc, out (serial), err.
run() {
	timeout --kill-after=5 30 "$KVMBOX_BIN" run "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
	rc=$?
	out=$(tr -d '\r' <"$tmp/out" | tr '\n' ' ')
	err=$(cat "$tmp/err")
}
snap="--kernel $G/snap.elf --memory 32 --no-net"

run $snap --cmdline "exit=5"
expect_eq "without --snapshot the guest's request is ignored: it runs to the end" \
	"5:before 1 before 2 before 3 after 4 after 5 after 6 done " "$rc:$out"

run $snap --cmdline "exit=5" --snapshot "$tmp/a"
expect_eq "--snapshot: kvmbox exits 0 where the guest asked" "0:before 1 before 2 before 3 " "$rc:$out"
case $err in
"kvmbox: run: saved the VM to $tmp/a (1 vCPU, 32 MiB of RAM, "*) ok "--snapshot: one line says what was saved" ;;
*) not_ok "--snapshot: one line says what was saved" "$err" ;;
esac
mem=$(ls "$tmp/a" | grep '^memory-')
expect_eq "the folder holds the state and one memory file" "memory-x state" \
	"$(ls "$tmp/a" | sed 's/^memory-.*/memory-x/' | sort | tr '\n' ' ' | sed 's/ $//')"
expect_eq "the memory file is as large as the guest's RAM" 33554432 "$(stat -c %s "$tmp/a/$mem")"
used=$(du -k "$tmp/a/$mem" | cut -f1)
if [ "$used" -lt 4096 ]; then ok "the memory file is sparse: ${used} KiB on disk of 32 MiB"
else not_ok "the memory file is sparse" "${used} KiB on disk"; fi

run --restore "$tmp/a" --no-net
expect_eq "--restore: the guest goes on from where it was saved, with its exit status" \
	"5:after 4 after 5 after 6 done " "$rc:$out"
expect_eq "--restore: nothing on stderr" "" "$err"
run --restore "$tmp/a" --no-net
expect_eq "a snapshot restores again, the same (a template)" "5:after 4 after 5 after 6 done " "$rc:$out"
run --restore "$tmp/a" --no-net --memory 1024 --cpus 2
expect_eq "--memory and --cpus of a restore are the snapshot's" "5:after 4 after 5 after 6 done " "$rc:$out"

# A restored VM saved again: its RAM is a private copy of the file.
run $snap --cmdline "exit=9 rounds=2" --snapshot "$tmp/b"
run --restore "$tmp/b" --no-net --snapshot "$tmp/c"
expect_eq "a restored VM is saved again at its next point" "0:after 4 after 5 after 6 " "$rc:$out"
run --restore "$tmp/c" --no-net
expect_eq "and that snapshot restores: the counter goes on" "9:after 7 after 8 after 9 done " "$rc:$out"
run --restore "$tmp/b" --no-net --snapshot "$tmp/c"
expect_eq "saving into a snapshot's folder again replaces it" \
	"0:after 4 after 5 after 6 :1" "$rc:$out:$(ls "$tmp/c" | grep -c '^memory-')"
run --restore "$tmp/c" --no-net
expect_eq "the replaced snapshot restores" "9:after 7 after 8 after 9 done " "$rc:$out"

run --kernel "$G/snap.elf" --memory 64 --cpus 2 --no-net --cmdline "exit=3" --snapshot "$tmp/smp"
run --restore "$tmp/smp" --no-net
expect_eq "two vCPUs (the second waiting for SIPI) save and restore" \
	"3:after 4 after 5 after 6 done " "$rc:$out"

# Refusals: one line, exit 2, the guest never started.
refused() {	# DESCRIPTION EXPECTED-PREFIX
	local lines
	lines=$(printf '%s\n' "$err" | grep -c .)
	case "$rc:$lines:$err" in
	"2:1:$2"*) ok "$1" ;;
	*) not_ok "$1" "rc=$rc out=$out err=$err" ;;
	esac
}
cp -r "$tmp/a" "$tmp/bad"
printf 'x' | dd of="$tmp/bad/state" bs=1 seek=100 conv=notrunc 2>/dev/null
run --restore "$tmp/bad" --no-net
refused "a damaged state file is refused" "kvmbox: run: cannot restore $tmp/bad: its checksum does not match"
head -c $(($(stat -c %s "$tmp/a/state") - 1)) "$tmp/a/state" >"$tmp/bad/state"
run --restore "$tmp/bad" --no-net
refused "a cut state file is refused" "kvmbox: run: cannot restore $tmp/bad: its checksum"
cp "$tmp/a/state" "$tmp/bad/state"
truncate -s 16M "$tmp/bad/$mem"
run --restore "$tmp/bad" --no-net
refused "a memory file of another size is refused" \
	"kvmbox: run: cannot restore $tmp/bad: its memory file is 16777216 bytes, its state says 33554432"
rm "$tmp/bad/$mem"
run --restore "$tmp/bad" --no-net
refused "a missing memory file is refused" "kvmbox: run: cannot restore $tmp/bad: $mem: missing"
run --restore "$tmp/nothing" --no-net
refused "a folder without a snapshot is refused" "kvmbox: run: cannot restore $tmp/nothing: state: missing"
head -c 4096 /dev/urandom >"$tmp/bad/state"
run --restore "$tmp/bad" --no-net
refused "a file that is not a snapshot is refused" "kvmbox: run: cannot restore $tmp/bad: it is not a kvmbox snapshot"

mkdir "$tmp/other" && echo keep >"$tmp/other/notes.txt"
run $snap --snapshot "$tmp/other"
refused "--snapshot into a folder of other files is refused" "kvmbox: run: cannot save snapshots to $tmp/other: it holds files"
expect_eq "and the folder is untouched" "notes.txt" "$(ls "$tmp/other")"
run --kernel "$G/snap.elf" --memory 32 --no-net --share-9p "$tmp:/x" --snapshot "$tmp/d"
refused "--snapshot with a 9P share is refused" "kvmbox: run: --snapshot does not work with --share-9p yet"
run --restore "$tmp/a" --no-net -- echo hi
refused "--restore with a command is refused (run's command is on the booted command line)" \
	"kvmbox: run: --restore takes no command: the guest goes on"
run --restore "$tmp/a" --no-net --cmdline "exit=1"
refused "--restore with --cmdline is refused" "kvmbox: run: --restore takes no --cmdline"
run --restore "$tmp/a"
refused "--restore with a network card the snapshot lacks is refused" \
	"kvmbox: run: cannot restore $tmp/a: it has 0 virtio devices and this machine 1"
run --no-net --restore
refused "--restore needs a folder" "kvmbox: run: --restore needs a directory"
timeout 20 "$KVMBOX_BIN" shell --restore "$tmp/a" --no-net >"$tmp/out" 2>"$tmp/err" </dev/null
rc=$? err=$(cat "$tmp/err") out=
refused "kvmbox shell restores only a snapshot of its own devices, and says shell" \
	"kvmbox: shell: cannot restore $tmp/a: it has 0 virtio devices and this machine 2"
tap_done
