#!/bin/bash
# tests/host/fs9p_fuse_cache.sh - directory listings the client may keep
# (cache=auto), against the host kernel's FUSE client: a directory unchanged
# for longer than any timestamp tick is listed once and then served from
# the client's cache, yet every change shows in the next listing, whether
# made through the mount or behind it on the host, at once or after the
# directory settled again; a directory that just changed, and every
# directory with cache=none, is listed by the server each time.
. "$(dirname "$0")/../lib/tap.sh"
. "$(dirname "$0")/fs9p_common.inc"
fs_setup

# settle: wait until every folder's last change is older than the server's
# 3 s (its ctime, which touch cannot set back).
settle() { sleep 3.2; }
names() { ls -a "$1" | tr '\n' ' '; }
# readdirs: the READDIR and READDIRPLUS requests the stopped server counted.
readdirs() { awk '$1 ~ /^READDIR(PLUS)?$/ { n += $2 } END { print n + 0 }' "$T/server.log"; }
list_n() { for _ in $(seq "$2"); do ls -a "$1" >/dev/null; done; }

mkdir -p "$T/src/kept" "$T/src/fresh"
for f in a b c; do : >"$T/src/kept/$f"; : >"$T/src/fresh/$f"; done
settle

# A settled directory is read from the server once.
: >"$T/server.log"
fs_mount "$T/src" "$T/mnt" --cache auto --stats || exit 1
list_n "$T/mnt/kept" 10
fs_umount "$T/mnt" || not_ok "unmount"
n=$(readdirs)
if [ "$n" -ge 1 ] && [ "$n" -le 2 ]; then ok "auto: ten listings of a settled folder, $n READDIR requests"
else not_ok "auto: ten listings of a settled folder, $n READDIR requests (want 1-2)"; fi

# A folder that changed within the last seconds is read every time (its
# next change could leave its mtime as it is).
: >"$T/server.log"
fs_mount "$T/src" "$T/mnt" --cache auto --stats || exit 1
touch "$T/src/fresh"	# after the mount, however long that took
list_n "$T/mnt/fresh" 10
fs_umount "$T/mnt" || not_ok "unmount"
n=$(readdirs)
if [ "$n" -ge 10 ]; then ok "auto: a folder changed just now is read at each listing ($n requests)"
else not_ok "auto: a folder changed just now is read at each listing ($n requests, want >= 10)"; fi

# Every change shows in the next listing of a kept folder.
fs_mount "$T/src" "$T/mnt" --cache auto || exit 1
m=$T/mnt/kept h=$T/src/kept
list_n "$m" 3
: >"$h/host-new"
expect_eq "auto: a file the host adds shows at once" ". .. a b c host-new " "$(names "$m")"
rm "$h/b"; settle; list_n "$m" 2
rm "$h/a"
expect_eq "auto: a file the host removes goes at once" ". .. c host-new " "$(names "$m")"
settle; list_n "$m" 2
: >"$m/guest-new"
expect_eq "auto: a file made through the mount shows at once" ". .. c guest-new host-new " "$(names "$m")"
settle; list_n "$m" 2
mv "$m/guest-new" "$m/guest-moved"
expect_eq "auto: a rename through the mount shows at once" ". .. c guest-moved host-new " "$(names "$m")"
# A change whose folder settles again before the next listing: the client
# finds the new mtime once the folder's 1 s attributes expire.
settle; list_n "$m" 2
: >"$h/late"
sleep 3.5
expect_eq "auto: a host change listed after the folder settled again" ". .. c guest-moved host-new late " "$(names "$m")"
list_n "$m" 2
mkdir "$h/sub"
sleep 3.5
expect_eq "auto: a folder the host adds, listed after it settled" ". .. c guest-moved host-new late sub " "$(names "$m")"
# A change whose mtime is set back to what it was (tar, rsync -a, touch -d):
# the ctime still moves, and the server drops the kept listing.
settle; list_n "$m" 2
old=$(stat -c %Y "$h")
: >"$h/mtime-reset"; touch -d "@$old" "$h"
expect_eq "auto: a host change with the folder's mtime set back, at once" ". .. c guest-moved host-new late mtime-reset sub " "$(names "$m")"
settle; list_n "$m" 2	# kept, with mtime-reset
rm "$h/mtime-reset"; touch -d "@$old" "$h"
settle
expect_eq "auto: the same after the folder settled again" ". .. c guest-moved host-new late sub " "$(names "$m")"
fs_umount "$T/mnt" || not_ok "unmount"

# cache=none keeps nothing: every listing reaches the server.
settle
: >"$T/server.log"
fs_mount "$T/src" "$T/mnt" --cache none --stats || exit 1
list_n "$m" 5
: >"$h/none-new"
expect_eq "none: a file the host adds shows at once" ". .. c guest-moved host-new late none-new sub " "$(names "$m")"
fs_umount "$T/mnt" || not_ok "unmount"
n=$(readdirs)
if [ "$n" -ge 6 ]; then ok "none: a settled folder is read at each listing ($n requests)"
else not_ok "none: a settled folder is read at each listing ($n requests, want >= 6)"; fi
tap_done
