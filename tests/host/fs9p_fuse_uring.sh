#!/bin/bash
# tests/host/fs9p_fuse_uring.sh - `kvmbox fs-serve --fuse --uring`: the
# kernel's FUSE-over-io_uring queues served by a thread per CPU
# (fs9p/fuse_uring.c).  Needs a kernel with fuse.enable_uring (Linux 6.14+);
# the test turns the parameter on for its run and restores it.
#
# Proves: requests really go through the queues (the server counts them);
# a tree copied in reads back byte for byte and mode for mode; creating,
# renaming, linking, removing and git work; the random-operation replay
# (tests/host/fs9p_fuse_random.sh) matches the native directory with every
# server on --uring; SIGTERM unmounts and exits 0 with the threads joined.
# The first part runs with the threads polling after each reply
# (--poll-us 128), the replay with them sleeping (--poll-us 0), whatever
# the machine's CPU count would choose.
. "$(dirname "$0")/../lib/tap.sh"
. "$(dirname "$0")/fs9p_common.inc"
fs_setup
need_cmd git
P=/sys/module/fuse/parameters/enable_uring
[ -w "$P" ] || skip_all "this kernel's FUSE has no io_uring queues ($P missing)"
old=$(cat "$P")
restore() { echo "$old" >"$P"; fs_cleanup; }
trap restore EXIT
echo Y >"$P" || skip_all "cannot turn on $P"

mkdir -p "$T/src" "$T/mnt"
mkdir -p "$T/tree/a/b" && head -c 300000 /dev/urandom >"$T/tree/a/b/blob" && echo hi >"$T/tree/a/f" &&
	chmod 750 "$T/tree/a/f" && ln -s b/blob "$T/tree/a/link"
export KVMBOX_LOG=info
fs_mount "$T/src" "$T/mnt" --uring --poll-us 128 || { not_ok "mount with --uring"; tap_done; exit; }
ok "mount with --uring"
(cd "$T/tree" && tar cf - .) | (cd "$T/mnt" && tar xf -)
check "a tree copied in reads back byte for byte and mode for mode" \
	diff <(cd "$T/tree" && find . -printf '%p %m %y %s %l\n' | sort) <(cd "$T/mnt" && find . -printf '%p %m %y %s %l\n' | sort)
check "file contents match" cmp "$T/tree/a/b/blob" "$T/mnt/a/b/blob"
check "rename, hard link, unlink, rmdir" sh -c "cd '$T/mnt' && mv a/f a/g && ln a/g a/h && rm a/g && mkdir x && rmdir x && [ \"\$(cat a/h)\" = hi ]"
check "git init, add, commit, status" sh -c "cd '$T/mnt' && git init -q r && cd r && echo x >f && git add f &&
	git -c user.email=t@x -c user.name=t commit -qm m && [ -z \"\$(git status --porcelain)\" ]"
expect_eq "a missing name is ENOENT" "No such file or directory" \
	"$(stat "$T/mnt/nothere" 2>&1 | sed 's/.*: //')"
if fs_umount "$T/mnt"; then ok "SIGTERM unmounts and exits 0"; else not_ok "SIGTERM unmounts and exits 0"; fi
n=$(sed -n 's/.* \([0-9][0-9]*\) requests served through the io_uring queues.*/\1/p' "$T/server.log")
check "requests went through the io_uring queues (${n:-none})" [ "${n:-0}" -gt 100 ]

out=$(FS_SERVE_ARGS="--uring --poll-us 0" bash "$(dirname "$0")/fs9p_fuse_random.sh" 2>&1)
bad=$(printf '%s\n' "$out" | grep -A3 -e '^not ok' -e '# SKIP')
good=$(printf '%s\n' "$out" | grep -c '^ok ')
if [ -z "$bad" ] && [ "$good" -gt 0 ]; then
	ok "the random-operation replay matches the native directory over --uring ($good checks)"
else
	not_ok "the random-operation replay matches the native directory over --uring" "$bad"
fi
tap_done
