#!/bin/bash
# tests/host/image_setup.sh - `kvmbox setup` from scratch, as a user who is
# not root, into a temporary cache: mmdebstrap in a user namespace from the
# host's Debian mirror, the agents from the npm registry.  The image must
# run `node --version`, `git --version`, `gh --version` and `claude
# --version` (chroot here; the VM once it boots), be listed by `kvmbox
# images` with a supported API version as that user, be found by `kvmbox
# claude` as that user, and a second run must reuse every step (same
# image, nothing rebuilt).  Setup's last steps name the guest kernel and
# boot the image where KVM is usable, or say plainly why not.  Needs the
# network to the Debian mirror and the npm registry: skips, saying why,
# when unreachable.  Root only to make the test user (with subordinate ids
# for its user namespace) and to look into the image.
. "$(dirname "$0")/../lib/tap.sh"
need_root
need_cmd mmdebstrap
need_cmd newuidmap
need_cmd curl
need_cmd runuser
U=kvmbox-setup-test
id "$U" >/dev/null 2>&1 || useradd -m "$U" 2>/dev/null || skip_all "cannot create the test user $U"
grep -q "^$U:" /etc/subuid || usermod --add-subuids 300000-365535 --add-subgids 300000-365535 "$U"
T=$(mktemp -d /tmp/kvmbox-setup-test.XXXXXX)
trap 'rm -rf "$T"' EXIT
chmod 755 "$T"
mkdir "$T/cache" "$T/bin"
cp "$KVMBOX_BIN" "$T/bin/kvmbox"
chown -R "$U:" "$T/cache"
export KVMBOX_CACHE=$T/cache
# the guest kernel this tree built, when there is one, for setup's last steps
for k in "${BUILD:-$KVMBOX_TOP/build}/vmlinux" $HOME/.cache/kvmbox/kernel/*/vmlinux; do
	[ -r "$k" ] && [ -r "${BUILD:-$KVMBOX_TOP/build}/initrd.cpio" ] || continue
	cp "$k" "$T/bin/vmlinux"
	cp "${BUILD:-$KVMBOX_TOP/build}/initrd.cpio" "$T/bin/initrd.cpio"
	break
done
chmod -R a+rX "$T/bin"
# as_user SECONDS CMD...: CMD as the test user, with the test's cache
as_user() {
	local t=$1
	shift
	timeout "$t" runuser -u "$U" -- env HOME="$(getent passwd "$U" | cut -d: -f6)" \
		KVMBOX_CACHE="$KVMBOX_CACHE" PATH=/usr/local/bin:/usr/bin:/bin "$@"
}

mirror=$(sed -n 's/^URIs: *\(http[^ ]*\).*/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null |
	grep -v security | head -1)
: "${mirror:=http://deb.debian.org/debian}"
timeout 20 curl -sfI "$mirror/dists/bookworm/Release" >/dev/null ||
	skip_all "Debian mirror $mirror unreachable (setup needs the network)"
timeout 20 curl -sf -o /dev/null "https://registry.npmjs.org/opencode-ai" ||
	skip_all "npm registry unreachable (setup needs the network)"

# in_image CMD...: run CMD as root in a chroot of the image, /proc mounted.
in_image() {
	unshare -m sh -c 'mount -t proc proc "$0/proc" && mount --rbind /dev "$0/dev" &&
		exec chroot "$0" /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/root "$@"' "$IMG" "$@"
}

start=$SECONDS
as_user 1200 "$T/bin/kvmbox" setup >"$T/run1.out" 2>&1
rc=$?
sed 's/^/# /' "$T/run1.out"
if grep -q "^setup: image ready in" "$T/run1.out"; then
	ok "kvmbox setup from scratch as $U (not root) builds the image ($((SECONDS - start)) s)"
else
	not_ok "kvmbox setup from scratch as $U (not root) builds the image" "$(tail -20 "$T/cache/build/setup.log" 2>/dev/null)"
	tap_done; exit
fi
if [ -e "$T/bin/vmlinux" ]; then
	expect_eq "setup exits 0 (image and kernel ready)" 0 "$rc"
	check "setup names the guest kernel it found" grep -qx "        $T/bin/vmlinux" "$T/run1.out"
else
	expect_eq "setup exits 1 without a guest kernel" 1 "$rc"
	check "and says what to run" grep -q "make kernel initrd" "$T/run1.out"
fi
if [ ! -e "$T/bin/vmlinux" ]; then
	check "setup says it cannot boot-check without a kernel" grep -q "boot check: not without a kernel" "$T/run1.out"
elif [ -c /dev/kvm ]; then
	check "setup boots the image and every agent answers --version" grep -q "the image boots and every agent answers" "$T/run1.out"
else
	check "setup says plainly that it cannot boot the image here" grep -q "not here: .*/dev/kvm" "$T/run1.out"
fi
check "nothing in the cache belongs to root" test -z "$(find "$KVMBOX_CACHE" -user root -print -quit)"
IMG=$KVMBOX_CACHE/images/default/rootfs
for c in "node --version" "git --version" "gh --version" "claude --version" "npm --version" "rg --version" \
	 "curl --version" "codex --version" "opencode --version"; do
	out=$(in_image $c 2>&1 | head -1)
	if [ -n "$out" ] && in_image $c >/dev/null 2>&1; then ok "in the image: $c -> $out"
	else not_ok "in the image: $c" "$out"; fi
done
check "the host CA lent to the build is not left in the image" test ! -e "$IMG/tmp/kvmbox-host-ca.crt"
check "kvmbox images, as $U, lists default with API version 1" \
	bash -c "runuser -u $U -- env KVMBOX_CACHE=$KVMBOX_CACHE $T/bin/kvmbox images | grep -qE '^default +[0-9.]+ (MB|GB) +1 '"
check "the launch check accepts it" as_user 60 "$T/bin/kvmbox" images check default
if [ -e "$T/bin/vmlinux" ]; then
	out=$(cd /tmp && as_user 120 "$T/bin/kvmbox" claude --kernel "$T/bin/vmlinux" --initrd "$T/bin/initrd.cpio" \
		--no-state --no-git -- --version 2>&1 </dev/null)
	case $out in
	*"not found"* | *"run \`kvmbox setup\`"*) not_ok "kvmbox claude, as $U, finds the image" "$out" ;;
	*) ok "kvmbox claude, as $U, finds the image" ;;
	esac
	sed 's/^/# /' <<<"$out" | head -5
fi
check "setup reported where things went and how big" \
	grep -qE "image 'default': .*/images/default \([0-9]+ MB\)" "$T/run1.out"

built1=$(grep '"built"' "$KVMBOX_CACHE/images/default/kvmbox-image.json")
start=$SECONDS
as_user 300 "$T/bin/kvmbox" setup >"$T/run2.out" 2>&1
if grep -q "^setup: image ready in" "$T/run2.out"; then
	ok "second kvmbox setup succeeds ($((SECONDS - start)) s)"
else
	not_ok "second kvmbox setup succeeds" "$(tail -20 "$T/run2.out")"
fi
sed 's/^/# /' "$T/run2.out"
check "second run reuses the base system" grep -q "base system (mmdebstrap + packages): reused" "$T/run2.out"
check "second run reuses the image" grep -q "agents (npm): reused, image up to date" "$T/run2.out"
expect_eq "the image was not rebuilt" "$built1" \
	"$(grep '"built"' "$KVMBOX_CACHE/images/default/kvmbox-image.json")"
tap_done
