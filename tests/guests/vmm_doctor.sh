#!/bin/bash
# tests/guests/vmm_doctor.sh - `kvmbox doctor` reports /dev/kvm, the API
# version, each required capability, the guest kernel, and whether guest
# ring 0 is emulated (true on kvm_pvm hosts), the libraries kvmbox opens
# on first use, with an exit status that matches what it says; an
# unprivileged user gets the exact fix.
set -u
. "$(dirname "$0")/../lib/tap.sh"
[ -x "$KVMBOX_BIN" ] || skip_all "kvmbox not built"
[ -c /dev/kvm ] || skip_all "no /dev/kvm on this host"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# No kernel anywhere: none beside kvmbox (a copy in an empty directory, as
# a build tree has build/vmlinux beside build/kvmbox), none cached, none set.
mkdir -p "$tmp/alone"
cp "$KVMBOX_BIN" "$tmp/alone/kvmbox"
HOME=$tmp KVMBOX_CACHE=$tmp/cache KVMBOX_KERNEL= timeout 60 "$tmp/alone/kvmbox" doctor >"$tmp/out" 2>&1
rc=$?
out=$(cat "$tmp/out")
check "/dev/kvm reported ok" grep -q '^ok *\/dev\/kvm is readable and writable' "$tmp/out"
check "API version 12 ok" grep -q '^ok *KVM API version 12 ' "$tmp/out"
for cap in KVM_CAP_IRQCHIP KVM_CAP_IOEVENTFD KVM_CAP_IRQFD KVM_CAP_IMMEDIATE_EXIT; do
	check "capability $cap listed" grep -qE "^(ok|missing) +capability $cap\$" "$tmp/out"
done
check "missing kernel reported with the fix" grep -q 'make kernel' "$tmp/out"
expect_eq "no kernel: exit 1" 1 "$rc"
if grep -q 'emulates guest ring 0' "$tmp/out"; then
	ok "ring-0 check ran: emulated ($(grep -o '[0-9]* ns per loop' "$tmp/out"))"
	check "emulation explained plainly" grep -q 'will not boot at a usable speed' "$tmp/out"
elif grep -q 'runs natively' "$tmp/out"; then
	ok "ring-0 check ran: native"
	skip "emulation explained plainly" "this host has hardware virtualization"
else
	not_ok "ring-0 check ran" "$out"
fi

# With a kernel present, the exit status follows the ring-0 verdict.
: >"$tmp/vmlinux"
KVMBOX_KERNEL=$tmp/vmlinux timeout 60 "$KVMBOX_BIN" doctor >"$tmp/out2" 2>&1
rc=$?
check "KVMBOX_KERNEL is found" grep -q "^ok *guest kernel $tmp/vmlinux" "$tmp/out2"
if grep -q 'emulates guest ring 0' "$tmp/out2"; then want=1; else want=0; fi
expect_eq "exit status matches the verdict" "$want" "$rc"

# An unprivileged user cannot open a root-only /dev/kvm: the fix is named.
perm=$(stat -c %a /dev/kvm)
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null && [ "${perm: -1}" != 6 ]; then
	setpriv --reuid=65534 --regid=65534 --clear-groups \
		env HOME=/nonexistent timeout 60 "$KVMBOX_BIN" doctor >"$tmp/out3" 2>&1
	rc=$?
	expect_eq "unprivileged: exit 1" 1 "$rc"
	check "unprivileged: says why" grep -q 'cannot be opened read-write: Permission denied' "$tmp/out3"
	check "unprivileged: gives the usermod fix" grep -q 'usermod -aG kvm \$USER' "$tmp/out3"
else
	skip "unprivileged user gets the fix" "needs root, setpriv and a /dev/kvm others cannot open"
fi

# The libraries kvmbox opens on first use are each reported; a missing one
# (an empty file bound over it in a private mount namespace) is named with
# its fix, and the exit status says the host is not ready.
for so in libssl libcrypto libjson-c libcurl libarchive; do
	check "$so is reported as opening" grep -qE "^ok +$so\.so\.[0-9]+ opens" "$tmp/out2"
done
json=$(ldconfig -p | awk '$1 ~ /^libjson-c\.so\.[0-9]+$/ && /x86-64/ { print $NF; exit }')
if [ "$(id -u)" = 0 ] && [ -n "$json" ] && command -v unshare >/dev/null; then
	: >"$tmp/empty.so"
	KVMBOX_KERNEL=$tmp/vmlinux unshare -m sh -c 'mount --bind "$0" "$1" && shift && exec "$@"' \
		"$tmp/empty.so" "$json" timeout 60 "$KVMBOX_BIN" doctor >"$tmp/out4" 2>&1
	expect_eq "a missing library: exit 1" 1 "$?"
	check "a missing library is named" grep -qE "^missing +libjson-c\.so\.[0-9]+ cannot be opened" "$tmp/out4"
	check "with the fix" grep -q "fix: install the package that provides libjson-c" "$tmp/out4"
else
	skip "a missing library is named" "needs root, unshare and libjson-c in ldconfig's cache"
fi

expect_eq "extra argument: exit 2" 2 "$("$KVMBOX_BIN" doctor --bogus >/dev/null 2>&1; echo $?)"
tap_done
