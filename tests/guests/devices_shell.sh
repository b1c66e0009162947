#!/bin/bash
# tests/guests/devices_shell.sh - `kvmbox shell` on the host's /dev/kvm with
# the tiny guests from firmware/tests/ (they do not speak kvmbox.ctl, so
# these cover the host side: devices wired, terminal handling, exit paths).
# At a real terminal (a pty): raw while inside, Ctrl-C a byte for the guest
# (kvmbox keeps running), and the terminal restored after SIGTERM, SIGHUP and
# a guest crash, each with its exit status and one line saying why; with
# pipes instead of a terminal the guest's own exit status comes back; bad
# usage exits 2 with one line.
set -u
. "$(dirname "$0")/../lib/tap.sh"
G=${BUILD:-$KVMBOX_TOP/build}/firmware/tests
[ -f "$G/spin.elf" ] || G=$KVMBOX_TOP/build/firmware/tests
[ -f "$G/spin.elf" ] || skip_all "tiny guests not built (make)"
[ -x "$KVMBOX_BIN" ] || skip_all "kvmbox not built"
[ -c /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ] || skip_all "no usable /dev/kvm"
need_cmd python3
PTY="python3 $KVMBOX_TOP/tests/lib/pty_run.py"

tmp=$(mktemp -d)
pid="" watchdog=""
trap 'kill $pid $watchdog 2>/dev/null; rm -rf "$tmp"' EXIT

# at_pty NAME ARGS... : run kvmbox shell at a pty through pty_run.py
at_pty() {
	timeout --kill-after=5 40 $PTY "$@" >"$tmp/out" 2>&1
	res=$(tr -d '\r' <"$tmp/out")
}
field() { sed -n "s/^$1=//p" <<<"$res" | head -1; }

at_pty --signal TERM -- "$KVMBOX_BIN" shell --kernel "$G/spin.elf"
expect_eq "raw terminal while inside" 1 "$(field raw_inside)"
expect_eq "SIGTERM: exit 143" 143 "$(field rc)"
expect_eq "SIGTERM: terminal restored" 1 "$(field restored)"
check "SIGTERM: one line says why" grep -q "stopped by SIGTERM" <<<"$res"

at_pty --send '\x03' --signal HUP -- "$KVMBOX_BIN" shell --kernel "$G/spin.elf"
expect_eq "Ctrl-C goes to the guest, kvmbox keeps running" 1 "$(field still_running_after_send)"
expect_eq "SIGHUP: exit 129" 129 "$(field rc)"
expect_eq "SIGHUP: terminal restored" 1 "$(field restored)"

at_pty --after 3 -- "$KVMBOX_BIN" shell --kernel "$G/fault.elf"
expect_eq "guest crash: exit 1" 1 "$(field rc)"
expect_eq "guest crash: terminal restored" 1 "$(field restored)"
check "guest crash: reason and serial console tail shown" \
	grep -q "triple fault" <<<"$res"
check "guest crash: serial console tail shown" grep -q "about to fault" <<<"$res"

# Pipes, no terminal: the marker guest exits 0 through the marker port.
echo hi | timeout --kill-after=5 20 "$KVMBOX_BIN" shell --kernel "$G/marker.elf" \
	>"$tmp/o" 2>"$tmp/e"
expect_eq "piped stdin/stdout: guest exit status" 0 "$?"
check "serial console hidden without --console" test ! -s "$tmp/o"

timeout 20 "$KVMBOX_BIN" shell --console --no-net --kernel "$G/hello.elf" </dev/null >"$tmp/o" 2>"$tmp/e"
check "--console shows the serial console" grep -q "hello from a tiny guest" "$tmp/e"
check "devices announced on the command line" \
	grep -q "virtio_mmio.device=4K@0xd0000000:5 virtio_mmio.device=4K@0xd0001000:6 kvmbox.ctl=1" "$tmp/e"

# Signals with pipes, before any command exists in the guest.
# kvmbox itself in the background (not under timeout, which would take the
# signals), with a watchdog that bounds it.
"$KVMBOX_BIN" shell --kernel "$G/spin.elf" </dev/null >"$tmp/o" 2>"$tmp/e" &
pid=$!
(sleep 30; kill -KILL "$pid" 2>/dev/null) &
watchdog=$!
sleep 1
kill -USR1 "$pid"; kill -USR2 "$pid"; sleep 0.5
check "SIGUSR1/SIGUSR2 do not stop kvmbox" kill -0 "$pid"
kill -INT "$pid"
wait "$pid"
expect_eq "SIGINT before the guest's init answered: exit 130" 130 "$?"
kill "$watchdog" 2>/dev/null
check "SIGINT: one line says why" grep -q "stopped by SIGINT" "$tmp/e"

# Default kernel and initrd: a copy of kvmbox in a directory of its own.
d=$tmp/bin
mkdir -p "$d" "$tmp/home" "$tmp/cache/kernel/old" "$tmp/cache/kernel/new" \
	"$tmp/cache/kernel/src-6.1.obj"
cp "$KVMBOX_BIN" "$d/kvmbox"
noenv=(env -u KVMBOX_KERNEL -u KVMBOX_INITRD HOME="$tmp/home" KVMBOX_CACHE="$tmp/cache")
for cmd in run shell; do
	"${noenv[@]}" timeout 20 "$d/kvmbox" $cmd </dev/null >"$tmp/o" 2>"$tmp/e"
	expect_eq "$cmd, no kernel anywhere: exit 2" 2 "$?"
	expect_eq "$cmd, no kernel anywhere: one line" 1 "$(wc -l <"$tmp/e")"
	check "$cmd, no kernel anywhere: names make kernel initrd" grep -q '`make kernel initrd`' "$tmp/e"
done
cp "$G/fault.elf" "$tmp/cache/kernel/old/vmlinux"
cp "$G/hello.elf" "$tmp/cache/kernel/new/vmlinux"
touch -d '2020-01-01' "$tmp/cache/kernel/old/vmlinux"
cp "$G/fault.elf" "$tmp/cache/kernel/src-6.1.obj/vmlinux"	# make kernel's object tree
"${noenv[@]}" timeout 20 "$d/kvmbox" run </dev/null >"$tmp/o" 2>"$tmp/e"
expect_eq "cached kernel but no initrd.cpio next to kvmbox: exit 2" 2 "$?"
check "and the line names the initrd and make" grep -q 'no initrd.*`make kernel initrd`' "$tmp/e"
echo x >"$d/initrd.cpio"
"${noenv[@]}" timeout 20 "$d/kvmbox" run --memory 64 </dev/null >"$tmp/o" 2>"$tmp/e"
expect_eq "kvmbox run: the newest cached kernel boots" 0 "$?"
check "and it is the newest one (not the object tree's)" grep -q "hello from a tiny guest" "$tmp/o"
"${noenv[@]}" timeout 20 "$d/kvmbox" shell --console --memory 64 </dev/null >"$tmp/o" 2>"$tmp/e"
check "kvmbox shell: the same default kernel" grep -q "hello from a tiny guest" "$tmp/e"
cp "$G/marker.elf" "$d/vmlinux"
"${noenv[@]}" timeout 20 "$d/kvmbox" run --memory 64 </dev/null >"$tmp/o" 2>"$tmp/e"
check "vmlinux next to kvmbox comes before the cache" grep -q "marker guest done" "$tmp/o"
"${noenv[@]}" KVMBOX_KERNEL="$G/hello.elf" timeout 20 "$d/kvmbox" run --memory 64 </dev/null >"$tmp/o" 2>"$tmp/e"
check "\$KVMBOX_KERNEL comes before both" grep -q "hello from a tiny guest" "$tmp/o"
timeout 20 "$KVMBOX_BIN" shell --kernel /nonexistent </dev/null >"$tmp/o" 2>"$tmp/e"
expect_eq "missing kernel file: exit 2" 2 "$?"
tap_done
