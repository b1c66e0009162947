#!/bin/bash
# tests/host/review_reflink.sh - review mode's copy on a file system with
# reflinks (a btrfs in a loop-mounted file): every case of
# tests/unit/test_launch_review.c (copy, changes, flush refused when the
# project changed, links, the conversation) runs there too, plus the case
# that the copy shares the project's extents (FICLONE) and a write to it
# leaves the project as it was.  On /tmp the unit tier covers the copy path.
set -u
. "$(dirname "$0")/../lib/tap.sh"
need_root
need_cmd mkfs.btrfs
UNIT=${BUILD:-$KVMBOX_TOP/build}/tests/unit/test_launch_review
[ -x "$UNIT" ] || skip_all "unit tests not built (make unit-bins)"
T=$(mktemp -d)
trap 'umount "$T/mnt" 2>/dev/null; rm -rf "$T"' EXIT
mkdir "$T/mnt"
truncate -s 200M "$T/fs.img"
mkfs.btrfs -q "$T/fs.img" >"$T/mkfs.log" 2>&1 || skip_all "mkfs.btrfs failed: $(tail -1 "$T/mkfs.log")"
mount -o loop "$T/fs.img" "$T/mnt" 2>"$T/mount.log" ||
	skip_all "this machine cannot loop-mount a file system: $(tail -1 "$T/mount.log")"
# the kernel's own answer first: a btrfs here that cannot clone is the
# machine's limit, not review's
printf 'probe\n' >"$T/mnt/probe"
cp --reflink=always "$T/mnt/probe" "$T/mnt/probe.clone" 2>"$T/cp.log" ||
	skip_all "cp --reflink=always fails on this machine's btrfs: $(tail -1 "$T/cp.log")"
rm -f "$T/mnt/probe" "$T/mnt/probe.clone"
# the runner may have asked cmocka for TAP (CMOCKA_MESSAGE_OUTPUT): the lines
# read below are its standard ones
out=$(CMOCKA_MESSAGE_OUTPUT=STDOUT KVMBOX_TEST_REVIEW_TMP=$T/mnt KVMBOX_TEST_REFLINK=1 "$UNIT" 2>&1)
rc=$?
# one TAP line per cmocka case
while read -r name; do ok "on btrfs: $name"; done < <(printf '%s\n' "$out" | sed -n 's/^\[       OK \] //p')
while read -r name; do not_ok "on btrfs: $name" "$out"; done < <(printf '%s\n' "$out" | sed -n 's/^\[  FAILED  \] \(test_[a-z_]*\)$/\1/p')
expect_eq "every case passed on btrfs" 0 "$rc"
printf '%s\n' "$out" | grep -q '^\[       OK \] test_reflink_shares_extents$' &&
	ok "the reflink case ran" || not_ok "the reflink case ran" "$out"
tap_done
