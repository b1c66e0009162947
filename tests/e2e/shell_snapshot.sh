#!/bin/bash
# tests/e2e/shell_snapshot.sh - `kvmbox shell` from a template and across a
# checkpoint, with the real guest kernel on a real KVM (the nested harness).
#
# `kvmbox shell --snapshot DIR` saves the guest where kvmbox-init is about
# to take its command over kvmbox.ctl (a template, with a network card and
# a virtio-fs share); each `kvmbox shell --restore DIR -- CMD` then runs
# this launch's CMD there: its output, piped stdin, status, a PTY of the
# terminal's size, fresh randomness each time, the share readable and
# writable.  A command that runs kvmbox-checkpoint under `--snapshot` is
# saved with its console ports open and a counter running; its restore
# goes on with the session (output after the checkpoint, the counter, the
# command's status) and refuses a new command.  kvmbox run cannot restore
# a shell's snapshot (other devices).  A host's suspend whose save fails
# (KVMBOX_FAULT_SAVE) says so and the VM runs on to its command's end.
. "$(dirname "$0")/../lib/tap.sh"
. "$(dirname "$0")/lib/nested.sh"
E2E_TEST_NAME="nested harness"
e2e_prepare
e2e_add_ptyrun

sh_="kvmbox shell --kernel /vmlinux --initrd /l2.cpio --memory 256"
dev="--allow-host --share /tmp/proj:/tmp/proj"
rand='echo rand=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d " \n")'
count='cat /tmp/proj/f >/dev/null; (i=0; while :; do i=$((i+1)); echo $i >/tmp/count; sleep 0.2; done) &
sleep 2; echo "count-before=$(cat /tmp/count)"
kvmbox-checkpoint; echo "checkpoint rc=$?"
sleep 2; echo "count-after=$(cat /tmp/count)"; exit 6'
# suspended by the host (kvmbox stop --suspend's signal, RTMIN+5 = 39 with
# glibc) while it counts into a file of the share; its restore counts on
cat >"$E2E_L1_ROOT/susp.sh" <<'SUSP'
echo started; i=0
while [ $i -lt 40 ]; do i=$((i + 1)); echo $i >/tmp/proj/n; sleep 0.3; done
echo "final=$i"; exit 9
SUSP
payload=$(cat <<PAYLOAD
mkdir -p /tmp/proj; echo on-the-share >/tmp/proj/f
ip link set lo up
mkdir -p /www; echo hello-l1 >/www/index.html
httpd -p 127.0.0.1:8090 -h /www
e2e_step template 200 $sh_ $dev --profile --snapshot /tpl -- sh -c 'echo never'
e2e_step first 200 $sh_ --restore /tpl $dev --profile -- sh -c '$rand; cat /tmp/proj/f; echo from-guest >/tmp/proj/g; wget -q -O - http://10.0.2.2:8090/index.html; exit 5'
e2e_step second 200 $sh_ --restore /tpl $dev -- sh -c '$rand'
e2e_step pipe 200 sh -c "printf 'one\ntwo\n' | $sh_ --restore /tpl $dev -- sh -c 'cat; echo end'"
e2e_step tty 200 ptyrun 33 101 $sh_ --restore /tpl $dev -- sh -c 'test -t 0 && echo tty-yes; stty size'
e2e_step cold 200 $sh_ $dev --profile -- true
e2e_step warm 200 $sh_ --restore /tpl $dev --profile -- true
e2e_step host_g 20 cat /tmp/proj/g
e2e_step checkpoint 200 $sh_ --restore /tpl $dev --snapshot /mid -- sh -c '$count'
e2e_step resume 200 sh -c '$sh_ --restore /mid $dev; echo "rc=\$?"'
e2e_step resume_cmd 60 sh -c '$sh_ --restore /mid $dev -- true; echo "rc=\$?"'
e2e_step run_restore 60 sh -c 'kvmbox run --restore /tpl $dev; echo "rc=\$?"'
e2e_step other_share 60 sh -c 'mkdir -p /tmp/else; $sh_ --restore /mid --allow-host --share /tmp/else:/tmp/proj; echo "rc=\$?"'
e2e_step tpl_else 200 sh -c 'echo from-else >/tmp/else/f; $sh_ --restore /tpl --allow-host --share /tmp/else:/tmp/proj -- cat /tmp/proj/f; echo "rc=\$?"'
cp /susp.sh /tmp/proj/
e2e_step suspend 200 sh -c '($sh_ --restore /tpl $dev --suspend-to /sus -- sh /tmp/proj/susp.sh </dev/null; echo "rc=\$?") & n=0
until [ "\$(cat /tmp/proj/n 2>/dev/null || echo 0)" -ge 3 ] || [ \$n -ge 150 ]; do sleep 1; n=\$((n + 1)); done
kill -39 \$(pidof kvmbox); wait; echo "n-at=\$(cat /tmp/proj/n)"; ls /sus | sed "s/^memory-.*/memory-N/"'
e2e_step unsuspend 200 sh -c '$sh_ --restore /sus --suspend-to /sus $dev </dev/null; echo "rc=\$?"; ls /sus'
# a suspend whose save fails after the room check (a disk filling
# meanwhile; KVMBOX_FAULT_SAVE, sanitizer builds): the VM runs on
e2e_step savefail 200 sh -c 'rm -f /tmp/proj/n; mkdir -p /sf; (KVMBOX_FAULT_SAVE=nospace $sh_ --restore /tpl $dev --suspend-to /sf -- sh /tmp/proj/susp.sh </dev/null; echo "rc=\$?") & n=0
until [ "\$(cat /tmp/proj/n 2>/dev/null || echo 0)" -ge 3 ] || [ \$n -ge 150 ]; do sleep 1; n=\$((n + 1)); done
kill -39 \$(pidof kvmbox); echo "n-at=\$(cat /tmp/proj/n)"; wait; ls -A /sf | sed "s/^/in-sf: /"'
export KVMBOX_CACHE=/kc
e2e_step tmpl_miss 200 $sh_ $dev --template -- echo first-launch
e2e_step tmpl_wait 200 sh -c 'for i in \$(seq 1 150); do ls /kc/templates | grep -qx "[0-9a-f]\\{64\\}" && break; sleep 1; done; ls /kc/templates'
e2e_step tmpl_hit 200 $sh_ $dev --template --profile -- sh -c 'echo second-launch; cat /tmp/proj/f'
e2e_step tmpl_other 200 $sh_ --no-net --template -- echo other-config
e2e_step tmpl_bad 200 sh -c 'for d in /kc/templates/*; do [ -f \$d/state ] && printf x | dd of=\$d/state bs=1 seek=200 conv=notrunc 2>/dev/null; done; $sh_ $dev --template -- echo third-launch'
e2e_step tmpl_run 30 sh -c 'kvmbox run --kernel /vmlinux --template -- true; echo "rc=\$?"'
PAYLOAD
)
e2e_run_or_bail "$payload" 900

e2e_check_rc template 0 "kvmbox shell --snapshot: exits 0 once kvmbox-init asked to be saved"
e2e_check_has template "one line says what was saved, naming kvmbox shell" 'kvmbox: shell: saved the VM to /tpl ('
e2e_check_lacks template "the template's own command never ran" 'never'
e2e_check_rc first 5 "a restore runs this launch's command, with its status"
e2e_check_has first "the share is there" -x 'on-the-share'
e2e_check_has first "the network card works (L1's web server)" -x 'hello-l1'
e2e_check_has host_g "and the host has what the guest wrote on the share" -x 'from-guest'
e2e_check_differ first second rand "two restores of one template read different bytes from /dev/urandom"
e2e_check_has pipe "piped stdin reaches a restored template's command" -x 'two'
e2e_check_has pipe "and its end (cat ends)" -x 'end'
e2e_check_has tty "at a terminal the command runs on a PTY" 'tty-yes'
e2e_check_has tty "of the terminal's size" -x '33 101'
e2e_check_has suspend "kvmbox shell --suspend-to saves the VM when the host asks" 'kvmbox: shell: saved the VM to /sus ('
e2e_check_has suspend "and exits 0" -x 'rc=0'
e2e_check_has suspend "its folder holds the snapshot" -x 'memory-N'
e2e_check_lacks suspend "(no proxy: no CA kept)" 'proxy-ca.pem'
e2e_check_has unsuspend "its restore goes on counting to the end" -x 'final=40'
e2e_check_lacks unsuspend "the command is not started again" -x 'started'
e2e_check_has unsuspend "and ends with the command's status" -x 'rc=9'
e2e_check_lacks unsuspend "the snapshot a guest went on from is spent" -x 'state'
e2e_check_has savefail "a suspend whose save fails says so in one line, and the VM runs on" \
	'^kvmbox: shell: not suspended: cannot save the VM to /sf: cannot write its memory file: No space left on device; the VM runs on$'
e2e_check_has savefail "its command goes on counting to the end" -x 'final=40'
e2e_check_has savefail "and ends with its status" -x 'rc=9'
e2e_check_lacks savefail "the folder holds no half-written snapshot" '^in-sf: '
e2e_check_rc checkpoint 0 "kvmbox-checkpoint in a shell's command saves the VM, kvmbox exiting 0"
e2e_check_has checkpoint "naming the folder" 'kvmbox: shell: saved the VM to /mid ('
e2e_check_lacks checkpoint "nothing after the checkpoint ran in the saved VM" 'count-after='
e2e_check_has resume "its restore goes on from the checkpoint" -x 'checkpoint rc=0'
e2e_check_grows checkpoint count-before resume count-after "the counter running at the checkpoint goes on"
e2e_check_has resume "and the command's status is kvmbox's" -x 'rc=6'
e2e_check_has resume_cmd "a restore of a running command refuses a new one" \
	'kvmbox: shell: cannot restore /mid with a command: its guest runs one already'
e2e_check_has resume_cmd "with status 2" -x 'rc=2'
e2e_check_has run_restore "kvmbox run cannot restore a shell's snapshot (other devices)" \
	'kvmbox: run: cannot restore /tpl: it has 4 virtio devices and this machine 2'
e2e_check_has run_restore "status 2" -x 'rc=2'
e2e_check_has other_share "a restore with another folder as a share the guest had looked into is refused" \
	'cannot restore /mid: its virtio device'
e2e_check_has other_share "status 1" -x 'rc=1'
e2e_check_has tpl_else "a template, which knew nothing beneath the share's root, takes another folder" -x 'from-else'
e2e_check_has tpl_else "and runs" -x 'rc=0'

e2e_check_rc tmpl_miss 0 "--template with none made yet: the launch boots and runs its command"
e2e_check_has tmpl_miss "saying why, in one line" \
	'kvmbox: shell: no template of this configuration yet: booting, and making one'
e2e_check_has tmpl_miss "the command ran" -x 'first-launch'
e2e_check_has tmpl_wait "a template is made in the background, named by the configuration's SHA-256" -x '[0-9a-f]\{64\}'
e2e_check_lacks tmpl_wait "and no build folder is left" 'tmp'
e2e_check_rc tmpl_hit 0 "the next launch of the configuration starts from it"
e2e_check_has tmpl_hit "with its own command and the share" -x 'on-the-share'
e2e_check_lacks tmpl_hit "silently" 'no template'
e2e_check_lacks tmpl_hit "loading no kernel" 'kernel_loaded'
e2e_check_has tmpl_other "another configuration (no network card) is another template" 'no template of this configuration yet'
e2e_check_has tmpl_other "and still runs" -x 'other-config'
e2e_check_has tmpl_bad "a damaged template is not restored: one line why" \
	'kvmbox: shell: the template of this configuration cannot be used: its checksum does not match'
e2e_check_has tmpl_bad "and the launch boots" -x 'third-launch'
e2e_check_has tmpl_run "kvmbox run refuses --template" 'kvmbox: run: --template is kvmbox shell'"'"'s'
e2e_check_has tmpl_run "with status 2" -x 'rc=2'

# Figures (TAP comments): TCG speed in L1, not hardware.
echo "# exec to command start: cold $(e2e_phase cold command_start) ms, from the template $(e2e_phase warm command_start) ms, --template $(e2e_phase tmpl_hit command_start) ms"
echo "# whole nested run ${E2E_WALL_S%.*} s (TCG speed, not hardware)"
tap_done
