#!/bin/bash
# tests/e2e/vmm_boot.sh - `kvmbox run` boots the real guest kernel (make
# kernel) with kvmbox-init on a real KVM (the nested harness: QEMU TCG with
# SVM, Debian's cloud kernel and kvm_amd in L1), runs commands in it and
# returns their output and exit status.
#
# One L1 boot runs every step; each step is one `kvmbox run` with its own
# time limit.  A failure prints the step's output, or the tail of the L1
# console when L1 itself went wrong.
. "$(dirname "$0")/../lib/tap.sh"
. "$(dirname "$0")/lib/nested.sh"
E2E_TEST_NAME="nested harness"
e2e_prepare

run="kvmbox run --kernel /vmlinux --initrd /l2.cpio"
payload=$(cat <<PAYLOAD
e2e_step hello 150 $run --profile -- sh -c 'echo hello from the guest; exit 7'
e2e_step true 150 $run -- true
e2e_step argv 150 $run -- printf '[%s]\n' 'two words' '' 'q"uote' 'ü\$x'
e2e_step signal 150 $run -- sh -c 'kill -9 \$\$'
e2e_step notfound 150 $run -- /no/such/program
e2e_step orphan 150 $run -- sh -c 'sleep 1000 & exit 3'
e2e_step mounts 150 $run -- sh -c 'cat /proc/mounts; echo "pid1=\$(cat /proc/1/comm) home=\$HOME path=\$PATH"'
e2e_step dmesg 150 $run -- sh -c 'dmesg | grep "WARNING:\\|XSAVE consistency"; echo dmesg-done'
e2e_step badargv 150 $run --cmdline 'console=ttyS0 reboot=k panic=-1 quiet kvmbox.argv=*bad*'
PAYLOAD
)
e2e_run_or_bail "$payload" 420
if grep -q '^@@E2E-INSMOD-FAILED\|^@@E2E-NO-DEV-KVM' "$E2E_LOG"; then
	not_ok "kvm_amd loads in L1 and /dev/kvm exists" "$(grep '^@@E2E' "$E2E_LOG" | head)"
else
	ok "kvm_amd loads in L1 and /dev/kvm exists"
fi


e2e_check_rc hello 7 "sh -c 'echo ...; exit 7' exits 7"
e2e_check_has hello "the guest's output reaches kvmbox's stdout" -x 'hello from the guest'
e2e_check_has hello "--profile reports the guest_init_started phase (boot marker)" 'guest_init_started'
e2e_check_rc true 0 "true exits 0"
e2e_check_rc argv 0 "printf with awkward arguments exits 0"
got=$(e2e_step_out argv | grep '^\[[^ ]' | tr '\n' ' ')  # not kernel timestamps
expect_eq "arguments arrive intact (spaces, empty, quotes, UTF-8, \$)" '[two words] [] [q"uote] [ü$x] ' "$got"
e2e_check_rc signal 137 "a command killed by SIGKILL reports 128+9"
e2e_check_rc notfound 127 "a missing program reports 127"
e2e_check_has notfound "with a one-line reason" 'kvmbox-init: cannot run /no/such/program'
e2e_check_rc orphan 3 "a background process left running does not keep the VM alive"
e2e_check_rc mounts 0 "mounts step exits 0"
for m in "proc /proc" "sysfs /sys" "devtmpfs /dev" "devpts /dev/pts" "tmpfs /dev/shm" "tmpfs /tmp" "tmpfs /run"; do
	e2e_check_has mounts "kvmbox-init mounted ${m#* }" "^${m%% *} ${m#* } "
done
e2e_check_has mounts "PID 1 is kvmbox-init, HOME and PATH set" 'pid1=init home=/root path=/usr/local/sbin:'
e2e_check_has dmesg "the guest kernel log was read" -x 'dmesg-done'
if e2e_step_out dmesg | grep -q 'WARNING:\|XSAVE'; then
	not_ok "the guest kernel boots without warnings (CPUID 0xD sizes agree with XCR0)" \
		"$(e2e_step_out dmesg | head -n 10)"
else
	ok "the guest kernel boots without warnings (CPUID 0xD sizes agree with XCR0)"
fi
e2e_check_rc badargv 2 "a malformed kvmbox.argv ends the VM with status 2"
e2e_check_has badargv "with a one-line reason on the console" 'kvmbox-init: kvmbox.argv is not valid base64url'

# Figures (TAP comments): how long things took inside the harness.
init_ms=$(e2e_step_out hello | sed -n 's/.*guest_init_started *\([0-9.]*\).*/\1/p' | head -n 1)
echo "# L1 kernel to userspace ${E2E_L1_UP_S:-?} s; whole nested run ${E2E_WALL_S%.*} s;" \
	"L2: kvmbox exec to guest init ${init_ms:-?} ms (TCG speed, not hardware)"
tap_done
