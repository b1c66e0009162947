#!/bin/bash
# guest/init/mkinitrd.sh OUT.cpio [KVMBOX_INIT] - the minimal guest root as an
# initramfs: kvmbox-init as /init and Debian's busybox-static for the
# commands.  `make initrd` builds $(BUILD)/initrd.cpio with it for
# `kvmbox run|shell --initrd`; the nested e2e harness builds its L2 guest
# with it too.
set -euo pipefail
out=$1 init=${2:-build/kvmbox-init}
[ -x "$init" ] || { echo "mkinitrd: kvmbox-init not built ($init): run make" >&2; exit 2; }
[ -x /bin/busybox ] || { echo "mkinitrd: /bin/busybox missing: apt-get install busybox-static" >&2; exit 2; }
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,dev,proc,sys,tmp,run,root,etc,usr}
mknod -m 600 "$root/dev/console" c 5 1 2>/dev/null || true
mknod -m 666 "$root/dev/null" c 1 3 2>/dev/null || true
cp /bin/busybox "$root/bin/busybox"
for a in $(/bin/busybox --list); do
	[ "$a" = busybox ] || ln -sf busybox "$root/bin/$a"
done
ln -sfn bin "$root/sbin"
ln -sfn ../bin "$root/usr/bin"
ln -sfn ../bin "$root/usr/sbin"
cp "$init" "$root/init"
ln -sf ../init "$root/bin/kvmbox-checkpoint"	# save the VM here (--snapshot)
tmp=$out.tmp.$$
(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) >"$tmp"
mv "$tmp" "$out"
