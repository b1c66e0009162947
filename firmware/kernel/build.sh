#!/bin/sh
# firmware/kernel/build.sh - build the kvmbox guest kernel (vmlinux), cached.
#
# Builds an uncompressed ELF vmlinux from Debian's linux-source-6.1 package:
# `make tinyconfig`, then firmware/kernel/kvmbox.config merged on top, then a
# check that every option the fragment asks for really ended up set (Kconfig
# silently drops an option whose dependencies are missing).  The result lives
# outside the repository, keyed by the fragment and the source version:
#
#   $KVMBOX_CACHE/kernel/<key>/vmlinux     (KVMBOX_CACHE: ~/.cache/kvmbox)
#
# so a second run is instant.  Usage:
#   build.sh            build if needed; print the vmlinux path last
#   build.sh --path     print the path the vmlinux has (or would have)
#   build.sh --check    only configure and check the options (no compile)
# Environment: KVMBOX_KERNEL_SRC (source tarball), KVMBOX_KERNEL_JOBS (-j).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
fragment=$here/kvmbox.config
src_tar=${KVMBOX_KERNEL_SRC:-/usr/src/linux-source-6.1.tar.xz}
cache=${KVMBOX_CACHE:-$HOME/.cache/kvmbox}/kernel
jobs=${KVMBOX_KERNEL_JOBS:-2}
# Bump when the recipe below changes what gets built.
recipe=1

die() { echo "kernel: $*" >&2; exit 1; }

[ -r "$fragment" ] || die "missing $fragment"
[ -r "$src_tar" ] || die "missing $src_tar (apt-get install linux-source-6.1)"

# Source version: the Debian package version, else the tarball's size+mtime.
src_ver=$(dpkg-query -W -f='${Version}' linux-source-6.1 2>/dev/null || true)
[ -n "$src_ver" ] || src_ver=$(stat -c '%s-%Y' "$src_tar")
key=$( { echo "recipe=$recipe src=$src_ver"; cat "$fragment"; } |
	sha256sum | cut -c1-16)
out=$cache/$key
vmlinux=$out/vmlinux

if [ "${1:-}" = "--path" ]; then
	echo "$vmlinux"
	exit 0
fi
mode=${1:-build}
if [ "$mode" = build ] && [ -s "$vmlinux" ]; then
	echo "kernel: cached $vmlinux"
	echo "$vmlinux"
	exit 0
fi

mkdir -p "$cache"
# One builder at a time per cache (two worktrees building at once would
# otherwise fight over the same directories).
exec 9>"$cache/.lock"
flock 9
if [ "$mode" = build ] && [ -s "$vmlinux" ]; then
	echo "$vmlinux"
	exit 0
fi

# Extract the source once per version (shared between keys).
srcdir=$cache/src-$(echo "$src_ver" | tr -c 'A-Za-z0-9.+\n-' '_')
if [ ! -e "$srcdir/.extracted" ]; then
	echo "kernel: extracting $src_tar"
	rm -rf "$srcdir" "$srcdir.tmp"
	mkdir -p "$srcdir.tmp"
	tar -xf "$src_tar" -C "$srcdir.tmp" --strip-components=1
	touch "$srcdir.tmp/.extracted"
	mv "$srcdir.tmp" "$srcdir"
fi

obj=$out/obj
mkdir -p "$obj"
kmake() { nice make -s -C "$srcdir" O="$obj" ARCH=x86_64 "$@"; }

echo "kernel: configuring (tinyconfig + $(basename "$fragment"))"
kmake tinyconfig >/dev/null
"$srcdir/scripts/kconfig/merge_config.sh" -m -O "$obj" "$obj/.config" \
	"$fragment" >"$obj/merge.log" 2>&1 || { cat "$obj/merge.log"; die "merge failed"; }
kmake olddefconfig >/dev/null

# Every option the fragment sets must have survived; every option it turns
# off must be off.
bad=0
for opt in $(sed -n 's/^\(CONFIG_[A-Za-z0-9_]*\)=y$/\1/p' "$fragment"); do
	grep -qx "$opt=y" "$obj/.config" || {
		echo "kernel: $opt=y requested but got:" \
			"$(grep -E "^(# )?$opt[= ]" "$obj/.config" || echo 'absent')" >&2
		bad=1
	}
done
for opt in $(sed -n 's/^# \(CONFIG_[A-Za-z0-9_]*\) is not set$/\1/p' "$fragment"); do
	if grep -qx "$opt=y" "$obj/.config"; then
		echo "kernel: $opt should be off but is =y" >&2
		bad=1
	fi
done
[ "$bad" -eq 0 ] || die "configuration check failed (see above)"
echo "kernel: configuration check passed"
[ "$mode" = --check ] && exit 0

echo "kernel: building vmlinux with -j$jobs (several minutes)"
start=$(date +%s)
kmake -j"$jobs" vmlinux >"$out/build.log" 2>&1 ||
	{ tail -n 40 "$out/build.log" >&2; die "build failed (log: $out/build.log)"; }
end=$(date +%s)

# The PVH entry note is what kvmbox's loader enters through.
if command -v readelf >/dev/null 2>&1; then
	readelf -n "$obj/vmlinux" | grep -q 'Xen' ||
		die "vmlinux has no PVH (Xen ELF) note"
fi
cp "$obj/.config" "$out/config"
cp "$obj/vmlinux" "$vmlinux.tmp"
mv "$vmlinux.tmp" "$vmlinux"
echo "kernel: built in $((end - start)) s, $(stat -c %s "$vmlinux") bytes"
# The object tree is large and only useful for incremental rebuilds of the
# same key, which never happen (a new fragment is a new key).
rm -rf "$obj"
echo "$vmlinux"
