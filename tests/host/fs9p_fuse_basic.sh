#!/bin/bash
# tests/host/fs9p_fuse_basic.sh - `kvmbox fs-serve --fuse` against the host
# kernel's FUSE client: a tar tree extracted on the mount equals the same
# tree extracted natively (bytes, modes, types, link targets, link counts);
# git init/add/commit/status/checkout work on the mount; exec bits survive;
# --read-only refuses writes; SIGINT and SIGTERM unmount cleanly.
. "$(dirname "$0")/../lib/tap.sh"
. "$(dirname "$0")/fs9p_common.inc"
fs_setup
need_cmd tar
need_cmd git

# A source tree with a bit of everything: headers, symlinks, hard links,
# exec bits, empty dirs, odd names, a larger file.
mk_tree() {
	local d=$1
	mkdir -p "$d"
	cp -a /usr/include/linux "$d/include" 2>/dev/null || mkdir -p "$d/include"
	mkdir -p "$d/bin" "$d/empty/nested" "$d/odd names/é ü"
	printf '#!/bin/sh\necho ran-$1\n' >"$d/bin/tool"; chmod 755 "$d/bin/tool"
	chmod 700 "$d/empty"
	ln -s ../bin/tool "$d/empty/link-rel"
	ln -s /nonexistent/abs "$d/dangling"
	ln "$d/bin/tool" "$d/bin/tool-hardlink"
	head -c 3000000 /dev/urandom >"$d/big.bin"
	: >"$d/odd names/é ü/zero"
	echo data >"$d/odd names/-dash"
}
mk_tree "$T/orig"
tar -C "$T/orig" -cf "$T/tree.tar" .

mkdir -p "$T/src" "$T/native"
if fs_mount "$T/src" "$T/mnt"; then ok "mount appears"; else not_ok "mount appears"; exit 1; fi

check "tar extracts onto the mount" tar -C "$T/mnt" -xpf "$T/tree.tar"
tar -C "$T/native" -xpf "$T/tree.tar"
expect_eq "tree matches native extraction (types, modes, sizes, links)" \
	"$(tree_manifest "$T/native")" "$(tree_manifest "$T/mnt")"
check "file contents match byte for byte" diff -r --no-dereference "$T/native" "$T/mnt"
expect_eq "host side holds the same tree" "$(tree_manifest "$T/native")" "$(tree_manifest "$T/src")"
expect_eq "exec bit survives: tool runs from the mount" "ran-x" "$("$T/mnt/bin/tool" x 2>&1)"
expect_eq "files belong to the invoking user on the host" "$(id -u)" "$(stat -c %u "$T/src/bin/tool")"

# git on the mount
g=$T/mnt/repo
mkdir -p "$g"
cp -a "$T/orig/include" "$g/"
gitc() { git -C "$g" -c user.email=t@example.com -c user.name=t "$@"; }
check "git init" gitc init -q
check "git add" gitc add -A
check "git commit" gitc commit -qm first
expect_eq "git status clean after commit" "" "$(gitc status --porcelain 2>&1)"
f=$(cd "$g" && find include -name '*.h' | head -1)
echo "change" >>"$g/$f"
expect_eq "git status sees a change" " M $f" "$(gitc status --porcelain 2>&1)"
check "git checkout restores the file" gitc checkout -- "$f"
expect_eq "git status clean again" "" "$(gitc status --porcelain 2>&1)"
check "git branch + checkout" gitc checkout -qb other
echo new >"$g/newfile"; gitc add newfile; gitc commit -qm second
check "git switch back" gitc checkout -q -
[ ! -e "$g/newfile" ] && ok "checkout removed the branch's file" || not_ok "checkout removed the branch's file"
check "git fsck" gitc fsck --no-progress

# xattrs: user.* round-trip, others refused
if command -v python3 >/dev/null; then
	out=$(python3 - "$T/mnt/big.bin" <<'PY' 2>&1
import os, sys, errno
p = sys.argv[1]
try:
    os.setxattr(p, "user.k", b"v")
    assert os.getxattr(p, "user.k") == b"v"
    assert "user.k" in os.listxattr(p)
except OSError as e:
    if e.errno != errno.EOPNOTSUPP: raise
try:
    os.setxattr(p, "trusted.k", b"v"); print("trusted set")
except OSError as e:
    print("trusted refused")
PY
)
	expect_eq "user.* xattrs only" "trusted refused" "$out"
fi

if fs_umount "$T/mnt" INT; then ok "SIGINT unmounts and exits 0"; else not_ok "SIGINT unmounts and exits 0"; fi

# read-only share
echo keep >"$T/src/ro-file"
fs_mount "$T/src" "$T/mnt" --read-only || not_ok "read-only mount"
if (echo x >"$T/mnt/ro-file") 2>/dev/null; then not_ok "read-only: write refused"; else ok "read-only: write refused"; fi
if touch "$T/mnt/ro-new" 2>/dev/null; then not_ok "read-only: create refused"; else ok "read-only: create refused"; fi
if rm -f "$T/mnt/ro-file" 2>/dev/null && [ ! -e "$T/src/ro-file" ]; then not_ok "read-only: unlink refused"; else ok "read-only: unlink refused"; fi
if mkdir "$T/mnt/ro-dir" 2>/dev/null; then not_ok "read-only: mkdir refused"; else ok "read-only: mkdir refused"; fi
expect_eq "read-only: host file unchanged" "keep" "$(cat "$T/src/ro-file")"
expect_eq "read-only: reads work" "keep" "$(cat "$T/mnt/ro-file")"
if fs_umount "$T/mnt" TERM; then ok "SIGTERM unmounts and exits 0"; else not_ok "SIGTERM unmounts and exits 0"; fi

# cache modes
for c in none always; do
	fs_mount "$T/src" "$T/mnt" --cache $c || { not_ok "cache $c mount"; continue; }
	echo "c-$c" >"$T/mnt/cache-$c"
	expect_eq "cache $c: write then read" "c-$c" "$(cat "$T/mnt/cache-$c")"
	expect_eq "cache $c: tree still matches" "$(tree_manifest "$T/native")" "$(tree_manifest "$T/mnt" | grep -v -e '^repo' -e '^ro-file' -e '^cache-')"
	fs_umount "$T/mnt" || not_ok "cache $c unmount"
done

# without adaptive polling of /dev/fuse (the server sleeps between requests)
if fs_mount "$T/src" "$T/mnt" --poll-us 0; then
	echo no-poll >"$T/mnt/no-poll"
	expect_eq "--poll-us 0: write then read" no-poll "$(cat "$T/mnt/no-poll")"
	expect_eq "--poll-us 0: tree still matches" "$(tree_manifest "$T/native")" "$(tree_manifest "$T/mnt" | grep -v -e '^repo' -e '^ro-file' -e '^cache-' -e '^no-poll')"
	fs_umount "$T/mnt" || not_ok "--poll-us 0 unmount"
else
	not_ok "--poll-us 0 mount"
fi

# bad usage: one line and status 2
"$KVMBOX_BIN" fs-serve --fuse "$T/mnt" "$T/nonexistent" 2>"$T/err"; rc=$?
expect_eq "missing share: exit status 2" 2 "$rc"
expect_eq "missing share: one-line error" 1 "$(wc -l <"$T/err")"
"$KVMBOX_BIN" fs-serve --fuse "$T/mnt" "$T/src" --poll-us 5ms 2>"$T/err"; rc=$?
expect_eq "bad --poll-us: exit status 2" 2 "$rc"
expect_eq "bad --poll-us: one-line error" "kvmbox: fs-serve: bad --poll-us '5ms' (0 to 1000000)" "$(cat "$T/err")"
tap_done
