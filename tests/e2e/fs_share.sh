#!/bin/bash
# tests/e2e/fs_share.sh - file shares and the overlay root with the real
# guest kernel and kvmbox-init on a real KVM (the nested harness,
# tests/e2e/lib/nested.sh).  kvmbox runs in L1 as an unprivileged user (uid
# 1000, through busybox su), as users run it:
#   - --share: the guest sees the L1 directory's files with their content
#     and modes (the invoking user's files as root's), runs an exec-bit
#     script from it; what it creates appears in L1 owned by uid 1000 with
#     its exec bits; absolute and relative symlinks pointing out of the share
#     never reach L1's files; kvmbox-init set the mount's read-ahead to
#     1 MiB (a request's worth);
#   - a :ro share refuses writes with EROFS, also after the guest remounts
#     it read-write (the server refuses then), and L1's tree is unchanged;
#   - --share-9p: the same basics over virtio-9p;
#   - --rootfs: a small tree (static busybox + /etc) boots as /, the command
#     sees the overlay (writes work), nothing reaches L1's tree, the next run
#     starts clean, a --share is mounted inside it; --image finds the same
#     tree in an image store; kvmbox shell takes --share and --rootfs too;
#   - 3 MiB read and 2 MiB written by the guest arrive intact both ways.
# Flag refusals and the command-line encoding are tests/guests/vmm_share.sh.
. "$(dirname "$0")/../lib/tap.sh"
. "$(dirname "$0")/lib/nested.sh"
E2E_TEST_NAME="nested harness"

e2e_prepare
payload=$(cat <<'PAYLOAD'
chmod 666 /dev/kvm
printf 'root:x:0:0::/root:/bin/sh\nu:x:1000:1000::/tmp:/bin/sh\n' >/etc/passwd
printf 'root:x:0:\nu:x:1000:\n' >/etc/group
K="--kernel /vmlinux --initrd /l2.cpio --no-net"
mkdir -p /w/proj /w/ro /w/nine /secret /s /rootfs/bin /rootfs/etc /kc/images/tiny
echo L1-SECRET >/secret/file
echo 'hello share' >/w/proj/hello.txt && chmod 640 /w/proj/hello.txt
printf '#!/bin/sh\necho tool ran\n' >/w/proj/tool.sh && chmod 755 /w/proj/tool.sh
ln -s /secret/file /w/proj/abs-link
ln -s ../../secret/file /w/proj/rel-link
echo ro-content >/w/ro/f
echo nine-content >/w/nine/f && chmod 604 /w/nine/f
dd if=/dev/urandom of=/w/proj/l1big bs=1M count=3 2>/dev/null
cp /w/proj/l1big /w/nine/l1big
chown -R 1000:1000 /w
cp /bin/busybox /rootfs/bin/
for a in $(busybox --list); do [ "$a" = busybox ] || ln -s busybox /rootfs/bin/$a; done
echo 'ID=kvmbox-e2e-rootfs' >/rootfs/etc/os-release
cp -a /rootfs /kc/images/tiny/rootfs
mkdir /kc/images/tiny/rootfs/.kvmbox && echo 1 >/kc/images/tiny/rootfs/.kvmbox/api-version
chown -R 1000:1000 /kc
# Each step's guest command, run by uid 1000 (su keeps the environment).
cat >/s/share <<EOF
kvmbox run $K --share /w/proj -- sh -c '
cd /w/proj || exit 9
cat hello.txt
stat -c "mode %a uid %u %n" hello.txt tool.sh
./tool.sh
echo created >created.txt
printf "#!/bin/sh\necho new tool\n" >newtool && chmod 755 newtool
mkdir newdir
cat abs-link; echo "abs-link rc=\$?"
cat rel-link; echo "rel-link rc=\$?"
grep " /w/proj " /proc/mounts
echo "readahead \$(cat /sys/class/bdi/\$(grep " /w/proj " /proc/self/mountinfo | cut -d" " -f3)/read_ahead_kb)"
md5sum l1big
dd if=/dev/urandom of=gbig bs=1M count=2 2>/dev/null && md5sum gbig'
EOF
cat >/s/ro <<EOF
kvmbox run $K --share /w/ro:/mnt/ro:ro -- sh -c '
cat /mnt/ro/f
grep " /mnt/ro " /proc/mounts
echo x >/mnt/ro/new; echo "guest-ro create rc=\$?"
mount -o remount,rw /mnt/ro && echo remounted-rw
echo x >/mnt/ro/new2; echo "server create rc=\$?"
rm /mnt/ro/f; echo "server rm rc=\$?"'
EOF
cat >/s/nine <<EOF
kvmbox run $K --share-9p /w/nine:/mnt/nine -- sh -c '
cat /mnt/nine/f
stat -c "mode %a uid %u" /mnt/nine/f
echo nine-new >/mnt/nine/created
printf "#!/bin/sh\necho nine tool\n" >/mnt/nine/t && chmod 755 /mnt/nine/t && /mnt/nine/t
grep " /mnt/nine " /proc/mounts
md5sum /mnt/nine/l1big
dd if=/dev/urandom of=/mnt/nine/gbig bs=1M count=2 2>/dev/null && md5sum /mnt/nine/gbig'
EOF
cat >/s/rootfs <<EOF
kvmbox run $K --rootfs /rootfs --share /w/proj:/work -- sh -c '
cat /etc/os-release
test -e /init && echo initramfs-visible
echo scribble >/scribble && cat /scribble
echo more >>/etc/os-release && echo appended
cat /work/hello.txt
grep -E "^[^ ]+ (/|/work|/proc|/dev|/sys|/tmp) " /proc/mounts
echo "pid1=\$(cat /proc/1/comm)"'
EOF
cat >/s/again <<EOF
kvmbox run $K --rootfs /rootfs -- sh -c 'test -e /scribble && echo dirty || echo clean; cat /etc/os-release'
EOF
cat >/s/image <<EOF
KVMBOX_CACHE=/kc kvmbox run $K --image tiny -- cat /etc/os-release
EOF
cat >/s/shell <<EOF
kvmbox shell $K --share /w/proj:/p:ro -- sh -c 'cat /p/hello.txt; touch /p/x; echo "touch rc=\$?"'
EOF
cat >/s/shellroot <<EOF
kvmbox shell $K --rootfs /rootfs -- sh -c 'cat /etc/os-release; test -e /init || echo no-init'
EOF
chmod 755 /s/*
for s in share ro nine rootfs again image shell shellroot; do
	e2e_step $s 120 su -s /bin/sh u -c /s/$s
	[ $s = share ] && e2e_step share-l1 20 sh -c 'cd /w/proj && stat -c "%u %a %n" created.txt newtool newdir && cat created.txt && ./newtool && md5sum l1big gbig'
done
e2e_step ro-l1 20 sh -c 'ls -1 /w/ro; cat /w/ro/f'
e2e_step nine-l1 20 sh -c 'stat -c "%u %a %n" /w/nine/created /w/nine/t; cat /w/nine/created; md5sum /w/nine/l1big /w/nine/gbig'
e2e_step rootfs-l1 20 sh -c 'ls -1 /rootfs; cat /rootfs/etc/os-release'
PAYLOAD
)
e2e_run_or_bail "$payload" 420

# virtio-fs share
e2e_check_rc share 0 "--share: the guest command exits 0"
e2e_check_has share "the guest reads the file's content" -x 'hello share'
e2e_check_has share "modes survive and the invoking user's files are root's in the guest" -x 'mode 640 uid 0 hello.txt'
e2e_check_has share "an exec-bit script in the share runs" -x 'tool ran'
e2e_check_lacks share "an absolute or relative symlink out of the share never reaches L1's file" 'L1-SECRET'
e2e_check_has share "the absolute symlink out of the share does not resolve" 'abs-link rc=1'
e2e_check_has share "the relative symlink out of the share does not resolve" 'rel-link rc=1'
e2e_check_has share "mounted by tag with virtiofs at the host path" '^kvmbox0 /w/proj virtiofs '
e2e_check_has share "reads ahead 1 MiB, a request's worth (kvmbox-init)" -x 'readahead 1024'
e2e_check_rc share-l1 0 "L1 sees what the guest created"
e2e_check_has share-l1 "a created file belongs to the invoking user (uid 1000)" -x '1000 644 created.txt'
e2e_check_has share-l1 "a created script keeps its exec bits" -x '1000 755 newtool'
e2e_check_has share-l1 "a created directory belongs to the invoking user" -x '1000 755 newdir'
e2e_check_has share-l1 "the created script runs in L1" -x 'new tool'

# md5_same WHAT GUEST_STEP L1_STEP FILE: FILE's md5sum as the guest printed
# it equals L1's.
md5_same() {
	local g l
	g=$(e2e_step_out "$2" | tr -d '\r' | awk -v f="$4" '$2 ~ ("(^|/)" f "$") { print $1 }')
	l=$(e2e_step_out "$3" | awk -v f="$4" '$2 ~ ("(^|/)" f "$") { print $1 }')
	if [ -n "$g" ] && [ "$g" = "$l" ]; then ok "$1"
	else not_ok "$1" "guest md5 '$g', L1 md5 '$l'"; fi
}
md5_same "a 3 MiB L1 file reads intact in the guest" share share-l1 l1big
md5_same "a 2 MiB file written by the guest is intact in L1" share share-l1 gbig

# read-only share
e2e_check_has ro "a :ro share is readable" -x 'ro-content'
e2e_check_has ro "and mounted read-only in the guest" '^kvmbox0 /mnt/ro virtiofs ro,'
e2e_check_has ro "a write fails with EROFS" 'Read-only file system'
e2e_check_has ro "the guest cannot create a file" 'guest-ro create rc=[1-9]'
e2e_check_has ro "remounted rw by the guest, the server still refuses to create" 'server create rc=[1-9]'
e2e_check_has ro "and to remove" 'server rm rc=[1-9]'
expect_eq "L1's read-only tree is unchanged" "f ro-content" "$(e2e_step_out ro-l1 | tr '\n' ' ' | sed 's/ $//')"

# virtio-9p share
e2e_check_rc nine 0 "--share-9p: the guest command exits 0"
e2e_check_has nine "9p: the guest reads the file" -x 'nine-content'
e2e_check_has nine "9p: mode and owner mapping" -x 'mode 604 uid 0'
e2e_check_has nine "9p: a created script with exec bits runs" -x 'nine tool'
e2e_check_has nine "9p: mounted with trans=virtio, 9P2000.L" '^kvmbox0 /mnt/nine 9p .*trans=virtio'
e2e_check_has nine-l1 "9p: created files belong to the invoking user" -x '1000 644 /w/nine/created'
e2e_check_has nine-l1 "9p: exec bits reach L1" -x '1000 755 /w/nine/t'
md5_same "9p: a 3 MiB L1 file reads intact in the guest" nine nine-l1 l1big
md5_same "9p: a 2 MiB file written by the guest is intact in L1" nine nine-l1 gbig

# root image with overlay
e2e_check_rc rootfs 0 "--rootfs: the command runs in the image"
e2e_check_has rootfs "the image's /etc is the root's" -x 'ID=kvmbox-e2e-rootfs'
e2e_check_lacks rootfs "the initramfs is not visible" 'initramfs-visible'
e2e_check_has rootfs "writes to / work (overlay)" -x 'scribble'
e2e_check_has rootfs "files of the image can be changed in the guest" -x 'appended'
e2e_check_has rootfs "a --share is mounted inside the image root" -x 'hello share'
e2e_check_has rootfs "/ is the overlay" '^overlay / overlay '
e2e_check_has rootfs "the share is at its path" '^kvmbox0 /work virtiofs '
for m in "proc /proc" "sysfs /sys" "devtmpfs /dev" "tmpfs /tmp"; do
	e2e_check_has rootfs "${m#* } is present inside the new root" "^${m%% *} ${m#* } "
done
e2e_check_has rootfs "kvmbox-init is still PID 1" -x 'pid1=init'
expect_eq "nothing written in the guest reached L1's tree" \
	"bin etc ID=kvmbox-e2e-rootfs" "$(e2e_step_out rootfs-l1 | tr '\n' ' ' | sed 's/ $//')"
e2e_check_has again "the next run starts clean" -x 'clean'
e2e_check_has again "with the image's file as it was" -x 'ID=kvmbox-e2e-rootfs'
e2e_check_rc image 0 "--image NAME finds the image in the store and boots it"
e2e_check_has image "its /etc is the root's" -x 'ID=kvmbox-e2e-rootfs'

# kvmbox shell
e2e_check_has shell "kvmbox shell mounts --share too" 'hello share'
e2e_check_has shell "with :ro honoured" 'touch rc=1'
e2e_check_has shellroot "kvmbox shell --rootfs runs CMD in the image" -x 'ID=kvmbox-e2e-rootfs'
e2e_check_has shellroot "not in the initramfs" -x 'no-init'

echo "# L1 kernel to userspace ${E2E_L1_UP_S:-?} s; whole nested run ${E2E_WALL_S%.*} s"
tap_done
