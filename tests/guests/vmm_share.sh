#!/bin/bash
# tests/guests/vmm_share.sh - the file-sharing flags of `kvmbox run` on the
# host: refusals (exit 2, one line, before any VM), and with the tiny
# `hello` guest on the host's /dev/kvm (it prints its kernel command line):
# one virtio-mmio slot per share, kvmbox.fs / kvmbox.root as the guest init
# will read them, and a clean teardown of every share's server and device
# next to the network card (under ASan with run.sh's binary).  Mounting in
# a real guest is tests/e2e/fs_share.sh.
set -u
. "$(dirname "$0")/../lib/tap.sh"
[ -x "$KVMBOX_BIN" ] || skip_all "kvmbox not built"
tmp=$(mktemp -d)
trap 'chmod -R u+rwx "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
mkdir -p "$tmp/proj" "$tmp/data" "$tmp/root" "$tmp/cache"
touch "$tmp/file" "$tmp/initrd"

# run ARGS...: kvmbox run with a 20 s bound; sets rc, out, err.
run() {
	timeout --kill-after=5 20 "$KVMBOX_BIN" run "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
	rc=$?
	out=$(tr -d '\r' <"$tmp/out")
	err=$(cat "$tmp/err")
}

# bad NAME ARGS...: exit 2 with exactly one line on stderr, nothing on stdout.
bad() {
	local name=$1
	shift
	run "$@" -- true
	if [ "$rc" = 2 ] && [ "$(printf '%s\n' "$err" | wc -l)" = 1 ] && [ -n "$err" ] &&
		[ -z "$out" ]; then
		ok "$name: exit 2, one line"
	else
		not_ok "$name: exit 2, one line" "rc=$rc stderr: $err stdout: $out"
	fi
}

K=(--kernel /dev/null --initrd "$tmp/initrd")
bad "missing share directory" "${K[@]}" --share "$tmp/none"
bad "share of a file" "${K[@]}" --share "$tmp/file"
bad "relative GUESTPATH" "${K[@]}" --share "$tmp/proj:rel/path"
bad "GUESTPATH with .." "${K[@]}" --share "$tmp/proj:/a/../b"
bad "GUESTPATH /" "${K[@]}" --share-9p "$tmp/proj:/"
bad "the same GUESTPATH twice" "${K[@]}" --share "$tmp/proj:/x" --share-9p "$tmp/data:/x"
bad "nine shares" "${K[@]}" $(for i in 1 2 3 4 5 6 7 8 9; do echo "--share $tmp/proj:/s$i"; done)
bad "bad --fs-cache" "${K[@]}" --fs-cache sometimes
bad "--share without a value" "${K[@]}" --share
bad "--rootfs of a file" "${K[@]}" --rootfs "$tmp/file"
bad "--rootfs with --image" "${K[@]}" --rootfs "$tmp/root" --image x

G=${BUILD:-$KVMBOX_TOP/build}/firmware/tests
[ -f "$G/hello.elf" ] || G=$KVMBOX_TOP/build/firmware/tests
if [ ! -f "$G/hello.elf" ] || ! [ -c /dev/kvm ] || ! [ -r /dev/kvm ] || ! [ -w /dev/kvm ]; then
	skip "shares on a running VM" "needs the tiny guests (make) and a usable /dev/kvm"
	tap_done
	exit
fi
H=(--kernel "$G/hello.elf" --initrd "$tmp/initrd")

b64() { printf '%s' "$1" | base64 -w0 | tr '+/' '-_' | tr -d '='; }
proj=$(realpath "$tmp/proj")

run "${H[@]}" --share "$tmp/proj" --share-9p "$tmp/data:/mnt/d:ro" --fs-cache always \
	--rootfs "$tmp/root" -- true
expect_eq "three shares and the network: exit 0, nothing on stderr" "0:" "$rc:$err"
line=$(printf '%s\n' "$out" | grep '^cmdline:')
expect_eq "one virtio-mmio slot per share plus the network card" 4 \
	"$(printf '%s\n' "$line" | grep -o 'virtio_mmio.device=' | wc -l)"
want="kvmbox.fs=kvmbox1:9rc:$(b64 /mnt/d),kvmbox0:v:$(b64 "$proj")"
if printf '%s\n' "$line" | grep -qF -- " $want "; then
	ok "kvmbox.fs lists the shares, parent paths first, host path as the default"
else
	not_ok "kvmbox.fs lists the shares, parent paths first, host path as the default" \
		"want $want in: $line"
fi
if printf '%s\n' "$line" | grep -q ' kvmbox.root=kvmboxroot '; then ok "kvmbox.root names the root share"
else not_ok "kvmbox.root names the root share" "$line"; fi

run "${H[@]}" --no-net -- true
if printf '%s\n' "$out" | grep '^cmdline:' | grep -q 'kvmbox.fs=\|kvmbox.root='; then
	not_ok "no share flags: no kvmbox.fs or kvmbox.root" "$out"
else
	ok "no share flags: no kvmbox.fs or kvmbox.root"
fi

# Teardown of servers and devices next to the network card, several times
# (a use-after-free there was found with this loop under ASan).
fails=""
for i in 1 2 3 4 5; do
	run "${H[@]}" --share "$tmp/proj" --share-9p "$tmp/data" -- true
	[ "$rc" = 0 ] && [ -z "$err" ] || fails="$fails run $i: rc=$rc $err"
done
expect_eq "five runs with a virtio-fs and a virtio-9p share end cleanly" "" "$fails"

bad "--share without --initrd (nobody would mount it)" --kernel "$G/hello.elf" --share "$tmp/proj"
KVMBOX_CACHE=$tmp/cache bad "--image that is not in the store" "${H[@]}" --image nosuch
long=/$(printf 'x%.0s' $(seq 1 250))
bad "mount points too long for the kernel command line" "${H[@]}" \
	$(for i in 1 2 3 4; do echo "--share $tmp/proj:$long$i"; done)
if [ "$(id -u)" -ne 0 ]; then
	chmod 000 "$tmp/data"
	bad "a directory the server cannot open" "${H[@]}" --share "$tmp/data"
	chmod 755 "$tmp/data"
else
	skip "a directory the server cannot open" "root opens any directory"
fi
tap_done
