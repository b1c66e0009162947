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
e2e_add_ptyrun

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
e2e_run_or_bail "$payload" 540
# The console needs a guest that boots at all: when plain `kvmbox run` of the
# same kernel fails here, that is vmm_boot.sh's failure to report, not ours.
if [ "$(e2e_step_rc baseline)" != 0 ]; then
	skip "kvmbox shell checks" "the guest does not boot here: kvmbox run -- true gave $(e2e_step_rc baseline)"
	tap_done
	exit
fi


e2e_check_rc exit7 7 "kvmbox shell -- sh -c 'echo hi; exit 7' exits 7"
e2e_check_has exit7 "and prints hi" -x 'hi'
e2e_check_rc pipe 0 "piped stdin: exits 0"
e2e_check_has pipe "piped stdin reaches CMD" -x 'two'
e2e_check_has pipe "stdin's end reaches CMD (cat ends)" -x 'end'
e2e_check_rc ports 0 "ports step exits 0"
e2e_check_has ports "kvmbox.tty port named in the guest" 'port vport.* kvmbox.tty'
e2e_check_has ports "kvmbox.ctl port named in the guest" 'port vport.* kvmbox.ctl'
e2e_check_has ports "virtio-rng is the guest's hwrng" 'virtio_rng'
e2e_check_has ports "and gives bytes" -x '16'
e2e_check_has notty "without a terminal CMD gets no PTY" -x 'notty'
e2e_check_rc tty 3 "at a terminal: exit status 3"
e2e_check_has tty "at a terminal CMD runs on a PTY" 'tty-yes'
e2e_check_has tty "with the host window's size" -x '33 101'
e2e_check_rc killed 137 "CMD killed by SIGKILL: 137"
echo "# whole nested run ${E2E_WALL_S%.*} s (TCG speed, not hardware)"
tap_done
