#!/bin/bash
# tests/e2e/console_shell.sh - `kvmbox shell` with the real guest kernel and
# kvmbox-init on a real KVM (the nested harness, tests/e2e/lib/nested.sh):
# the virtio-console ports appear in the guest with their names, CMD runs
# through kvmbox.ctl, its output comes back on kvmbox.tty, its exit status
# is kvmbox's, piped stdin reaches it and ends, a PTY of the host window's
# size is used when stdin and stdout are a terminal (tests/e2e/ptyrun.c,
# built here, provides one in L1), and the virtio-rng feeds the guest's hwrng.
. "$(dirname "$0")/../lib/tap.sh"
[ -f "$(dirname "$0")/lib/nested.sh" ] || skip_all "nested harness (tests/e2e/lib/nested.sh) not present"
. "$(dirname "$0")/lib/nested.sh"
E2E_TEST_NAME="nested harness"
e2e_prepare
need_cmd gcc
gcc -static -O2 -o "$E2E_WORK/ptyrun" "$KVMBOX_TOP/tests/e2e/ptyrun.c" 2>/dev/null ||
	e2e_die "cannot build tests/e2e/ptyrun.c statically"
e2e_add_program "$E2E_L1_ROOT" "$E2E_WORK/ptyrun" /usr/local/bin/ptyrun

sh_="kvmbox shell --kernel /vmlinux --initrd /l2.cpio"
payload=$(cat <<PAYLOAD
e2e_step baseline 150 kvmbox run --kernel /vmlinux --initrd /l2.cpio -- true
e2e_step exit7 150 $sh_ -- sh -c 'echo hi; exit 7'
e2e_step pipe 150 sh -c "printf 'one\ntwo\n' | $sh_ -- sh -c 'cat; echo end'"
e2e_step ports 150 $sh_ -- sh -c 'for p in /sys/class/virtio-ports/*; do echo "port \$(basename \$p) \$(cat \$p/name 2>/dev/null)"; done; cat /sys/devices/virtual/misc/hw_random/rng_current; head -c 16 /dev/hwrng | wc -c'
e2e_step notty 150 $sh_ -- sh -c 'test -t 0 && echo tty || echo notty'
e2e_step tty 150 ptyrun 33 101 $sh_ -- sh -c 'test -t 0 && echo tty-yes; stty size; exit 3'
e2e_step killed 150 $sh_ -- sh -c 'kill -9 \$\$'
PAYLOAD
)
if ! e2e_run_in_l1 "$payload" 540; then
	not_ok "L1 boots and runs the payload" "$E2E_WHY"$'\n'"$(e2e_console_tail 40)"
	tap_done
	exit
fi
ok "L1 boots and runs the payload"
# The console needs a guest that boots at all: when plain `kvmbox run` of the
# same kernel fails here, that is vmm_boot.sh's failure to report, not ours.
if [ "$(e2e_step_rc baseline)" != 0 ]; then
	skip "kvmbox shell checks" "the guest does not boot here: kvmbox run -- true gave $(e2e_step_rc baseline)"
	tap_done
	exit
fi

step_check() {
	local rc
	rc=$(e2e_step_rc "$1")
	if [ "$rc" = "$2" ]; then ok "$3"
	elif [ -z "$rc" ]; then not_ok "$3" "step $1 did not finish; console tail:"$'\n'"$(e2e_console_tail 30)"
	else not_ok "$3" "exit status $rc, want $2; output:"$'\n'"$(e2e_step_out "$1" | tail -n 30)"; fi
}
step_has() {
	local name=$1 what=$2
	shift 2
	if e2e_step_out "$name" | tr -d '\r' | grep -q "$@"; then ok "$what"
	else not_ok "$what" "output of step $name:"$'\n'"$(e2e_step_out "$name" | tail -n 30)"; fi
}

step_check exit7 7 "kvmbox shell -- sh -c 'echo hi; exit 7' exits 7"
step_has exit7 "and prints hi" -x 'hi'
step_check pipe 0 "piped stdin: exits 0"
step_has pipe "piped stdin reaches CMD" -x 'two'
step_has pipe "stdin's end reaches CMD (cat ends)" -x 'end'
step_check ports 0 "ports step exits 0"
step_has ports "kvmbox.tty port named in the guest" 'port vport.* kvmbox.tty'
step_has ports "kvmbox.ctl port named in the guest" 'port vport.* kvmbox.ctl'
step_has ports "virtio-rng is the guest's hwrng" 'virtio_rng'
step_has ports "and gives bytes" -x '16'
step_has notty "without a terminal CMD gets no PTY" -x 'notty'
step_check tty 3 "at a terminal: exit status 3"
step_has tty "at a terminal CMD runs on a PTY" 'tty-yes'
step_has tty "with the host window's size" -x '33 101'
step_check killed 137 "CMD killed by SIGKILL: 137"
echo "# whole nested run ${E2E_WALL_S%.*} s (TCG speed, not hardware)"
tap_done
