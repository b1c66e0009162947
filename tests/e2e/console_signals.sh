#!/bin/bash
# tests/e2e/console_signals.sh - host signals and `kvmbox shell` with a pipe
# for stdin (no terminal), with the real guest kernel and kvmbox-init on a
# real KVM (the nested harness).  Like `docker run`'s sig-proxy: SIGINT and
# SIGUSR1 sent to kvmbox reach CMD's trap and kvmbox exits with the status
# CMD then chooses; an untrapped SIGINT gives 130; a CMD that ignores SIGTERM
# is stopped after the 10 s grace period (143); a second SIGINT stops a CMD
# that trapped the first (130).  tests/e2e/lib/console_sig_drive.sh sends them.
. "$(dirname "$0")/../lib/tap.sh"
[ -f "$(dirname "$0")/lib/nested.sh" ] || skip_all "nested harness (tests/e2e/lib/nested.sh) not present"
. "$(dirname "$0")/lib/nested.sh"
E2E_TEST_NAME="nested harness"
e2e_prepare
cp "$KVMBOX_TOP/tests/e2e/lib/console_sig_drive.sh" "$E2E_L1_ROOT/sig_drive.sh"

payload=$(cat <<'PAYLOAD'
e2e_step baseline 150 kvmbox run --kernel /vmlinux --initrd /l2.cpio -- true
ks="kvmbox shell --kernel /vmlinux --initrd /l2.cpio --"
e2e_step trap 150 sh /sig_drive.sh INT -- $ks sh -c 'trap "echo got INT; exit 5" INT; echo ready; sleep 100'
e2e_step default 150 sh /sig_drive.sh INT -- $ks sh -c 'echo ready; exec sleep 100'
e2e_step usr1 150 sh /sig_drive.sh USR1 -- $ks sh -c 'trap "echo got USR1; exit 6" USR1; echo ready; sleep 100'
e2e_step term 150 sh /sig_drive.sh TERM -- $ks sh -c 'trap "" TERM; echo ready; sleep 100'
e2e_step twice 150 sh /sig_drive.sh INT INT -- $ks sh -c 'trap "echo got INT" INT; echo ready; while :; do sleep 1; done'
PAYLOAD
)
e2e_run_or_bail "$payload" 600
if [ "$(e2e_step_rc baseline)" != 0 ]; then
	skip "kvmbox shell signals" "the guest does not boot here: kvmbox run -- true gave $(e2e_step_rc baseline)"
	tap_done
	exit
fi
field() { e2e_step_out "$1" | sed -n "s/^@@S $2 //p" | tail -n 1; }
why() { echo "output of step $1:"; e2e_step_out "$1" | tail -n 30; }
rc_is() {
	if [ "$(field "$1" rc)" = "$2" ]; then ok "$3"; else not_ok "$3" "$(why "$1")"; fi
}
has() {
	if e2e_step_out "$1" | grep -q "$2"; then ok "$3"; else not_ok "$3" "$(why "$1")"; fi
}
rc_is trap 5 "SIGINT reaches CMD's trap; kvmbox exits with CMD's status 5"
has trap '^got INT' "and the trap's output arrives"
rc_is default 130 "SIGINT to a CMD that does not trap it: 130"
rc_is usr1 6 "SIGUSR1 reaches CMD's trap; status 6"
rc_is term 143 "CMD ignoring SIGTERM: the VM is stopped, 143"
secs=$(field term secs)
if [ -n "$secs" ] && [ "$secs" -ge 9 ]; then ok "only after the grace period (${secs} s)"
else not_ok "only after the grace period" "stopped after '${secs}' s; $(why term)"; fi
has term 'did not exit within 10 s of SIGTERM' "and one line says why"
has twice '^got INT' "the first SIGINT reached CMD's trap"
rc_is twice 130 "the second SIGINT stops the VM: 130"
for st in trap default usr1 term twice; do
	echo "# step $st: ready after $(field $st ready_s) s, ended $(field $st secs) s after the signal"
done
echo "# whole nested run ${E2E_WALL_S%.*} s (TCG speed, not hardware)${E2E_RETRY_NOTE:+; $E2E_RETRY_NOTE}"
tap_done
