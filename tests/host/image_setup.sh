#!/bin/bash
# tests/host/image_setup.sh - `kvmbox setup` from scratch into a temporary
# cache: debootstrap + apt from the host's Debian mirror, the agents from the
# npm registry.  The image must run `node --version`, `git --version` and
# `claude --version` as root (chroot here; the VM once it boots), be listed
# by `kvmbox images` with a supported API version, and a second run must
# reuse every step (same image, nothing rebuilt).  Needs the network to the
# Debian mirror and the npm registry: skips, saying why, when unreachable.
. "$(dirname "$0")/../lib/tap.sh"
need_root
need_cmd debootstrap
need_cmd curl
T=$(mktemp -d /tmp/kvmbox-setup-test.XXXXXX)
trap 'rm -rf "$T"' EXIT
export KVMBOX_CACHE=$T/cache

mirror=$(sed -n 's/^URIs: *\(http[^ ]*\).*/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null |
	grep -v security | head -1)
: "${mirror:=http://deb.debian.org/debian}"
timeout 20 curl -sfI "$mirror/dists/bookworm/Release" >/dev/null ||
	skip_all "Debian mirror $mirror unreachable (setup needs the network)"
timeout 20 curl -sf -o /dev/null "https://registry.npmjs.org/opencode-ai" ||
	skip_all "npm registry unreachable (setup needs the network)"

# in_image CMD...: run CMD as root in a chroot of the image, /proc mounted.
in_image() {
	unshare -m sh -c 'mount -t proc proc "$0/proc" && exec chroot "$0" /usr/bin/env -i \
		PATH=/usr/local/bin:/usr/bin:/bin HOME=/root "$@"' "$IMG" "$@"
}

start=$SECONDS
if timeout 900 "$KVMBOX_BIN" setup >"$T/run1.out" 2>&1; then
	ok "kvmbox setup from scratch succeeds ($((SECONDS - start)) s)"
else
	not_ok "kvmbox setup from scratch succeeds" "$(tail -20 "$T/run1.out"; tail -20 "$T/cache/build/setup.log" 2>/dev/null)"
	tap_done; exit
fi
sed 's/^/# /' "$T/run1.out"
IMG=$KVMBOX_CACHE/images/default/rootfs
for c in "node --version" "git --version" "claude --version" "npm --version" "rg --version" \
	 "curl --version" "codex --version"; do
	out=$(in_image $c 2>&1 | head -1)
	if [ -n "$out" ] && in_image $c >/dev/null 2>&1; then ok "in the image: $c -> $out"
	else not_ok "in the image: $c" "$out"; fi
done
check "the host CA lent to the build is not left in the image" test ! -e "$IMG/tmp/kvmbox-host-ca.crt"
check "kvmbox images lists default with API version 1" \
	bash -c "'$KVMBOX_BIN' images | grep -qE '^default +[0-9.]+ (MB|GB) +1 '"
check "the launch check accepts it" "$KVMBOX_BIN" images check default
check "setup reported where things went and how big" \
	grep -qE "image 'default': .*/images/default \([0-9]+ MB\)" "$T/run1.out"

built1=$(grep '"built"' "$KVMBOX_CACHE/images/default/kvmbox-image.json")
start=$SECONDS
if timeout 300 "$KVMBOX_BIN" setup >"$T/run2.out" 2>&1; then
	ok "second kvmbox setup succeeds ($((SECONDS - start)) s)"
else
	not_ok "second kvmbox setup succeeds" "$(tail -20 "$T/run2.out")"
fi
sed 's/^/# /' "$T/run2.out"
check "second run reuses the base system" grep -q "base system (debootstrap + packages): reused" "$T/run2.out"
check "second run reuses the image" grep -q "agents (npm): reused, image up to date" "$T/run2.out"
expect_eq "the image was not rebuilt" "$built1" \
	"$(grep '"built"' "$KVMBOX_CACHE/images/default/kvmbox-image.json")"
tap_done
