#!/bin/bash
# tests/host/secret_holder.sh - a kvmbox process that holds real secrets
# (here `kvmbox proxy` with a --secret from the environment) hardens itself
# before it reads any (common/harden.h): no_new_privs is set, its core
# limit is 0, and another process of the same user can read neither its
# environment (where the real value came from) nor its memory, while the
# same user's ordinary process stays readable (the control); once it
# listens it runs in the seccomp cage (cage/cage.h) with the broker's
# filter, and a call outside it ends the process with 159 and one line.
# Run as an unprivileged user (nobody) so that no capability hides the
# result; and once as root, which it leaves without a capability.
. "$(dirname "$0")/../lib/tap.sh"
need_root
need_cmd setpriv
[ -x "$KVMBOX_BIN" ] || skip_all "kvmbox not built"
T=$(mktemp -d)
chmod 755 "$T"
cp "$KVMBOX_BIN" "$T/kvmbox"
chmod 755 "$T/kvmbox"
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
# (an array, not a function: a function run with & is a subshell, and $!
# would be that shell rather than the program)
as_nobody=(setpriv --reuid=65534 --regid=65534 --clear-groups)

# Port 0: the kernel picks a free one (a random pick collided once in CI).
KVX_REAL=XYZZY-real-token-value "${as_nobody[@]}" env ASAN_OPTIONS=detect_leaks=0 "$T/kvmbox" proxy \
	--listen 127.0.0.1:0 --secret "kvmbox-ph-0123=env:KVX_REAL@example.com" \
	>"$T/out" 2>"$T/err" </dev/null &
pid=$!
pids+=("$pid")
KVX_REAL=XYZZY-real-token-value "${as_nobody[@]}" sleep 60 &
control=$!
pids+=("$control")
for _ in $(seq 50); do
	grep -q '^NoNewPrivs' "/proc/$pid/status" 2>/dev/null && [ -s "$T/err" ] && break
	sleep 0.1
done
if ! kill -0 "$pid" 2>/dev/null; then
	not_ok "kvmbox proxy runs as nobody" "$(cat "$T/err")"
	tap_done
	exit
fi
ok "kvmbox proxy runs as nobody"
check "no_new_privs is set" grep -qE '^NoNewPrivs:[[:space:]]+1$' "/proc/$pid/status"
check "its core file size limit is 0" grep -qE '^Max core file size +0 +0 ' "/proc/$pid/limits"
for _ in $(seq 50); do grep -q '^listening' "$T/out" && break; sleep 0.1; done
check "once listening it runs in the seccomp cage" grep -qE '^Seccomp:[[:space:]]+2$' "/proc/$pid/status"
if "${as_nobody[@]}" cat "/proc/$control/environ" 2>/dev/null | tr '\0' '\n' | grep -q '^KVX_REAL=XYZZY'; then
	ok "control: the same user reads an ordinary process's environment"
	if "${as_nobody[@]}" cat "/proc/$pid/environ" >"$T/env" 2>/dev/null; then
		not_ok "the same user cannot read the proxy's environment" "$(tr '\0' '\n' <"$T/env" | grep -c XYZZY) lines with the value"
	else
		ok "the same user cannot read the proxy's environment"
	fi
	if "${as_nobody[@]}" dd if="/proc/$pid/mem" bs=1 count=1 skip=4096 of=/dev/null 2>/dev/null; then
		not_ok "or its memory"
	else
		ok "or its memory"
	fi
else
	skip "the same user cannot read the proxy's environment" "this kernel hides even an ordinary process's environment from its own user"
	skip "or its memory" "as above"
fi

# Started by root, with every capability: it drops them all, bounding set
# included, before it reads a secret.
KVX_REAL=XYZZY-real-token-value env ASAN_OPTIONS=detect_leaks=0 "$T/kvmbox" proxy \
	--listen 127.0.0.1:0 --secret "kvmbox-ph-0123=env:KVX_REAL@example.com" \
	>"$T/out-root" 2>"$T/err-root" </dev/null &
rootpid=$!
pids+=("$rootpid")
for _ in $(seq 50); do grep -q '^listening' "$T/out-root" && break; sleep 0.1; done
if grep -qE '^CapEff:[[:space:]]+0*[1-9a-f]' /proc/self/status; then
	caps=$(grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb):' "/proc/$rootpid/status" | tr -s '\t ' ' ' | tr '\n' ';')
	if [ "$caps" = "CapInh: 0000000000000000;CapPrm: 0000000000000000;CapEff: 0000000000000000;CapBnd: 0000000000000000;CapAmb: 0000000000000000;" ]; then
		ok "started by root, kvmbox proxy runs without a capability (every set empty)"
	else
		not_ok "started by root, kvmbox proxy runs without a capability" "$caps"$'\n'"$(cat "$T/err-root")"
	fi
else
	skip "started by root, kvmbox proxy runs without a capability" "this test runs without capabilities"
fi

# The broker's filter (cage/syscalls.c: loop, resolver and broker lists):
# a call outside it, made by the sanitizer build's fault injection once
# the cage is on, ends the process with 159 and one line naming it.
if strings "$T/kvmbox" | grep -q "fault injection: the loop thread"; then
	KVMBOX_FAULT_SECCOMP=broker timeout 20 env ASAN_OPTIONS=detect_leaks=0 "$T/kvmbox" proxy \
		--listen 127.0.0.1:0 >"$T/out-fault" 2>"$T/err-fault" </dev/null
	rc=$?
	if [ "$rc" = 159 ] && grep -qx 'kvmbox: seccomp: the broker thread called acct (163), which its list in cage/syscalls.c does not allow; stopping' "$T/err-fault" &&
		! grep -q '^listening' "$T/out-fault"; then
		ok "a call outside the broker's list ends kvmbox proxy: 159 and one line naming it"
	else
		not_ok "a call outside the broker's list ends kvmbox proxy" "status $rc: $(cat "$T/err-fault")"
	fi
else
	skip "a call outside the broker's list ends kvmbox proxy" "not a sanitizer build (no fault injection)"
fi
tap_done
