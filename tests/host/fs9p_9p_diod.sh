#!/bin/bash
# tests/host/fs9p_9p_diod.sh - `kvmbox fs-serve --9p SOCKET DIR` with
# Debian's diod tools as the 9P2000.L client (diodcat reads files, diodls
# lists directories with attributes): contents and listings match the
# share, walks cannot climb out, the socket goes away on SIGTERM.  Then the
# Linux kernel's own 9p client (mount -t 9p -o trans=unix) when the host
# kernel has 9p; otherwise that part is skipped with the reason.
. "$(dirname "$0")/../lib/tap.sh"
. "$(dirname "$0")/fs9p_common.inc"
fs_setup
need_cmd diodcat

src=$T/share/src
mkdir -p "$src/sub/deeper"
echo "hello over 9p" >"$src/hello"
head -c 300000 /dev/urandom >"$src/big.bin"
echo inner >"$src/sub/deeper/f"
echo TOPSECRET >"$T/share/secret"
ln -s ../secret "$src/up"
sock=$T/9p.sock

"$KVMBOX_BIN" fs-serve --9p "$sock" "$src" >>"$T/server.log" 2>&1 &
FS_PID=$!
for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done
[ -S "$sock" ] && ok "socket appears" || { not_ok "socket appears" "$(cat "$T/server.log")"; exit 1; }

d9() { timeout 10 "$@" -s "$sock" -a /; }
expect_eq "diodcat reads a file" "hello over 9p" "$(d9 diodcat hello 2>&1)"
expect_eq "diodcat reads a nested file" "inner" "$(d9 diodcat sub/deeper/f 2>&1)"
d9 diodcat big.bin >"$T/big.out" 2>"$T/err"
check "diodcat reads 300 KB byte for byte" cmp "$src/big.bin" "$T/big.out"
expect_eq "diodls lists the root" "big.bin hello sub up" \
	"$(d9 diodls / 2>&1 | grep -Fvx -e . -e .. | sort | tr '\n' ' ' | sed 's/ $//')"
out=$(d9 diodls -l / 2>&1)
grep -q 'hello' <<<"$out" && ok "diodls -l stats every entry" || not_ok "diodls -l stats every entry" "$out"
out=$(d9 diodcat ../../secret 2>&1)
case $out in *TOPSECRET*) not_ok "walk '..' cannot leave the share" "$out" ;; *) ok "walk '..' cannot leave the share" ;; esac
out=$(d9 diodcat up 2>&1)
case $out in *TOPSECRET*) not_ok "symlink out of the share is not followed" "$out" ;; *) ok "symlink out of the share is not followed" ;; esac
out=$(d9 diodcat nonexistent 2>&1)
case $out in *"No such file"*) ok "missing file: ENOENT" ;; *) not_ok "missing file: ENOENT" "$out" ;; esac

if command -v diodload >/dev/null; then
	: >"$src/zero"; : >"$src/null"
	out=$(timeout 20 diodload -s "$sock" -r 2 -n 2 -g 2>&1)
	case $out in *ops/s*) ok "diodload getattr load: ${out##*: }" ;; *) not_ok "diodload getattr load" "$out" ;; esac
	kill -0 "$FS_PID" 2>/dev/null && ok "server survives load" || not_ok "server survives load"
fi

kill -TERM "$FS_PID"; wait "$FS_PID"; rc=$?; FS_PID=""
expect_eq "SIGTERM: exit status 0" 0 "$rc"
[ ! -e "$sock" ] && ok "socket removed" || not_ok "socket removed"

# The kernel's 9p client.
if ! grep -qw 9p /proc/filesystems && ! modprobe 9p 2>/dev/null; then
	skip "kernel 9p mount" "host kernel has no 9p filesystem (modprobe 9p failed)"
else
	"$KVMBOX_BIN" fs-serve --9p "$sock" "$src" >>"$T/server.log" 2>&1 &
	FS_PID=$!
	for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done
	mkdir -p "$T/mnt"
	if mount -t 9p -o trans=unix,version=9p2000.L,access=user "$sock" "$T/mnt" 2>"$T/err"; then
		expect_eq "kernel 9p: read" "hello over 9p" "$(cat "$T/mnt/hello")"
		echo new >"$T/mnt/new" && expect_eq "kernel 9p: write" new "$(cat "$src/new")"
		umount "$T/mnt"
	else
		not_ok "kernel 9p mount" "$(cat "$T/err")"
	fi
	kill -TERM "$FS_PID"; wait "$FS_PID"; FS_PID=""
fi
tap_done
