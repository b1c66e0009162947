#!/bin/bash
# tests/e2e/agent_suspend.sh - kvmbox stop --suspend and kvmbox resume end to
# end in the nested harness (issue 15's suspend and resume).
#
# A stand-in agent, started with the proxy and the host reachable,
# counts into a file of the project it holds open, with a TCP connection to
# L1 open.  `kvmbox stop --suspend` saves its VM: kvmbox ps says suspended,
# the name stays taken, attach points at resume, the saved folder holds the
# proxy's CA (0600) beside the snapshot.  The host touches a file on the
# share; `kvmbox resume` takes the sandbox up: the counter goes on from
# where it was (not from 1), the file held open is still written through
# its descriptor, the file the host touched is seen, a new TCP connection to
# L1 works while the old one was reset, the login file and the environment
# carry the placeholders they had, the launch self-test passes again
# through the resumed proxy (the guest still trusts its CA; the placeholder
# in its environment is in the new proxy's table), a refused push still
# gets the proxy's 403.  A resume whose snapshot is damaged says why and
# leaves it suspended.  The saved VM is on disk (the state folder), and a
# reboot (the runtime folder emptied, records and launch folder gone)
# loses nothing: ps lists it suspended and the resume above runs after
# it.  The agent's exit status ends the sandbox; kvmbox rm
# removes the saved VM and the launch folder.  A --detach sandbox is
# suspended and resumed in the background as it was launched; before that,
# a resume with another sandbox's CA put in its folder is refused (the
# guest trusts its own) and it stays suspended.  A suspend
# with no room in the folder for the guest's memory is not made: the
# sandbox runs on (a save that failed half-way would have lost it).  A sandbox made to suspend
# cannot be resumed when it is not suspended; one that is not suspendable
# (--review) says so.
. "$(dirname "$0")/../lib/tap.sh"
. "$(dirname "$0")/lib/nested.sh"
E2E_TEST_NAME="nested harness"

need_cmd curl
e2e_prepare
# curl in the image: the launch self-test's client
e2e_add_program "$E2E_L1_ROOT/kc/images/default/rootfs" "$(command -v curl)" /usr/bin/curl
payload=$(cat <<'PAYLOAD'
export KVMBOX_CACHE=/kc HOME=/home/u XDG_RUNTIME_DIR=/run/u
# one vCPU per sandbox (KVMBOX_CPUS): see agent_launch
export KVMBOX_CPUS=1
mkdir -p /proj /kc/images/default $HOME/.claude $XDG_RUNTIME_DIR
# pseudo-terminals, for the holder of a --detach sandbox
[ -e /dev/pts/ptmx ] || { mkdir -p /dev/pts; mount -t devpts -o ptmxmode=0666 devpts /dev/pts; }
echo 'project file' >/proj/README
printf '{"claudeAiOauth":{"accessToken":"sk-ant-oat01-XYZZYTOKEN","refreshToken":"sk-ant-ort01-XYZZYREFRESH","expiresAt":1767225600000,"scopes":["user:inference"]}}' >$HOME/.claude/.credentials.json
export ANTHROPIC_API_KEY=sk-ant-api03-XYZZYKEY
ip link set lo up
mkdir -p /www; echo hello-l1 >/www/index.html
httpd -p 127.0.0.1:8090 -h /www
# the far end of a connection open across the suspend
(sleep 100000 | nc -l -p 9009 >/dev/null) &
R=/kc/images/default/rootfs
mkdir -p $R/bin $R/etc/ssl/certs $R/root $R/usr/local/bin $R/.kvmbox
cp /bin/busybox $R/bin/
for a in $(busybox --list); do [ "$a" = busybox ] || ln -s busybox $R/bin/$a; done
echo 1 >$R/.kvmbox/api-version
cat >$R/usr/local/bin/claude <<'AGENT'
#!/bin/sh
o=/proj/out
echo "key-before=$ANTHROPIC_API_KEY" >$o
echo "creds-before=$(cat $HOME/.claude/.credentials.json)" >>$o
echo "sum-before=$(md5sum </bin/busybox)" >>$o
# (busybox nc, not wget: its wget crashes in this bare image, suspend or not)
get() { printf 'GET /index.html HTTP/1.0\r\n\r\n' | nc -w 20 10.0.2.2 8090 | tail -1; }
echo "tcp-before=$(get)" >>$o
sleep 100000 | nc 10.0.2.2 9009 >/dev/null 2>&1 &
old=$!
exec 3>>/proj/held.log
sleep 2; kill -0 $old 2>/dev/null && echo old-conn-before=open >>$o
i=0
while :; do
	i=$((i + 1)); echo "held=$i" >&3; echo "count=$i"
	if [ -f /proj/resumed ]; then
		echo "first-after=$i" >>$o
		# the image's files read afresh through the restored file server
		echo 3 >/proc/sys/vm/drop_caches
		echo "sum-after=$(md5sum </bin/busybox)" >>$o
		echo "key-after=$ANTHROPIC_API_KEY" >>$o
		echo "creds-after=$(cat $HOME/.claude/.credentials.json)" >>$o
		echo "touched=$(cat /proj/resumed)" >>$o
		echo after-resume >&3 && echo "held-write=ok" >>$o
		kill -0 $old 2>/dev/null && echo old-conn=open >>$o || echo old-conn=gone >>$o
		echo "new-tcp=$(get)" >>$o
		sh /run/kvmbox/launch/self-test.sh /run/kvmbox/launch/self-test >/tmp/st 2>&1
		echo "selftest=$?" >>$o; sed 's/^/st: /' /tmp/st >>$o
		grep -q -- "$ANTHROPIC_API_KEY" /run/kvmbox/launch/self-test && echo key-in-table >>$o
		echo "push=$(curl -s -m 20 --resolve github.com:443:1.2.3.4 -X POST https://github.com/evil/x.git/git-receive-pack)" >>$o
		exit 7
	fi
	sleep 0.5
done
AGENT
chmod 755 $R/usr/local/bin/claude
L='--no-hook --kernel /vmlinux --initrd /l2.cpio --memory 512M --allow-host'
S=$XDG_RUNTIME_DIR/kvmbox/sessions/sus
SV=$HOME/.local/state/kvmbox/suspended/sus	# the saved VM: on disk, not in the runtime folder
cd /proj
e2e_step launch 300 sh -c "(kvmbox claude --name sus $L </dev/null >/tmp/sus.out 2>&1; echo \"rc=\$?\" >>/tmp/sus.out) &
n=0; until grep -q '^held=4\$' /proj/held.log 2>/dev/null || grep -q '^rc=' /tmp/sus.out || [ \$n -ge 250 ]; do sleep 1; n=\$((n + 1)); done
kvmbox ps; grep -v '^count=' /tmp/sus.out"
e2e_step suspend 320 sh -c "kvmbox stop --suspend sus; echo \"stop-rc=\$?\"; sleep 1; kvmbox ps; grep -v '^count=' /tmp/sus.out
kvmbox inspect sus | grep -E '\"(state|suspended_ms)\"'"
e2e_step saved 20 sh -c "ls $SV | sed 's/^memory-.*/memory-N/'; stat -c 'mode %a %n' $SV/proxy-ca.pem; ls -d $HOME/.local/state/kvmbox/launches/kvmbox-launch-* | wc -l; cp $SV/proxy-ca.pem /tmp/sus-ca.pem
ls $S | sed 's/^/record: /'; stat -c 'mode %a %n' $SV/.."
e2e_step taken 120 sh -c "timeout 60 kvmbox claude --name sus $L </dev/null 2>&1; echo \"rc=\$?\"; kvmbox attach sus; echo \"arc=\$?\"; kvmbox stop --suspend sus; echo \"src=\$?\""
e2e_step badresume 200 sh -c "cp $SV/state /tmp/state.good; printf x | dd of=$SV/state bs=1 seek=200 conv=notrunc 2>/dev/null
kvmbox resume sus </dev/null 2>&1; echo \"rc=\$?\"; kvmbox ps; cp /tmp/state.good $SV/state"
# a reboot empties the runtime folder (the records, the launch folder)
e2e_step reboot 30 sh -c "mv /run/u /run/u.before-reboot && mkdir -m 700 /run/u; ls $HOME/.local/state/kvmbox/sessions/sus | sed 's/^/kept: /'; kvmbox ps"
e2e_step resume 300 sh -c "tail -1 /proj/held.log; echo host-touched >/proj/resumed
(kvmbox resume sus </dev/null >/tmp/res.out 2>&1; echo \"rc=\$?\" >>/tmp/res.out) &
n=0; until grep -q '^rc=' /tmp/res.out 2>/dev/null || [ \$n -ge 250 ]; do sleep 1; n=\$((n + 1)); done
cat /proj/out; tail -2 /proj/held.log; grep -v '^count=' /tmp/res.out; kvmbox ps; kvmbox resume sus; echo \"rrc=\$?\"; ls $SV $HOME/.local/state/kvmbox/sessions/sus 2>&1 | sed 's/^/after-end: /'"
e2e_step rm 30 sh -c "kvmbox rm sus; echo \"rc=\$?\"; ls $S 2>&1 | head -1; ls $SV 2>&1 | sed 's/^/saved: /'; ls -d $HOME/.local/state/kvmbox/launches/kvmbox-launch-* 2>/dev/null | wc -l"
e2e_step detached 400 sh -c "rm -f /proj/resumed; kvmbox claude --name det --detach $L </dev/null >/tmp/det.out 2>&1; echo \"rc=\$?\"; cat /tmp/det.out
n=0; until kvmbox logs det 2>/dev/null | grep -q '^count=3\$' || [ \$n -ge 200 ]; do sleep 1; n=\$((n + 1)); done
kvmbox stop --suspend det; echo \"src=\$?\"; DS=/home/u/.local/state/kvmbox/suspended/det
cp \$DS/proxy-ca.pem /tmp/det-ca.pem; cp /tmp/sus-ca.pem \$DS/proxy-ca.pem
kvmbox resume det </dev/null >/dev/null 2>&1; sleep 2
n=0; until kvmbox ps | grep -q '^det .*suspended' || [ \$n -ge 100 ]; do sleep 1; n=\$((n + 1)); done
kvmbox ps | sed 's/^/ps-wrongca: /'; kvmbox logs det | grep -E 'another launch|not resumed' | sed 's/^/wrongca-log: /'
cp /tmp/det-ca.pem \$DS/proxy-ca.pem
kvmbox resume det </dev/null >/tmp/det.out 2>&1; echo \"rrc=\$?\"; cat /tmp/det.out
n=0; until kvmbox logs det 2>/dev/null | grep -q '^count=8\$' || [ \$n -ge 200 ]; do sleep 1; n=\$((n + 1)); done
kvmbox ps; kvmbox stop det --time 20; echo \"stop=\$?\""
e2e_step review 300 sh -c "rm -f /proj/resumed; (kvmbox claude --name rv --review $L </dev/null >/tmp/rv.out 2>&1 &)
n=0; until kvmbox ps | grep -q '^rv .*running' || [ \$n -ge 250 ]; do sleep 1; n=\$((n + 1)); done
kvmbox stop --suspend rv; echo \"rc=\$?\"; kvmbox stop rv --time 20 >/dev/null; echo stopped"
T='XDG_STATE_HOME=/run/small/u'
e2e_step noroom 300 sh -c "mkdir -p /run/small && mount -t tmpfs -o size=24m tmpfs /run/small && mkdir -m 700 /run/small/u
($T kvmbox claude --name tight $L </dev/null >/tmp/tight.out 2>&1; echo \"rc=\$?\" >>/tmp/tight.out) &
n=0; until $T kvmbox ps | grep -q '^tight .*running' || [ \$n -ge 200 ]; do sleep 1; n=\$((n + 1)); done; sleep 3
$T kvmbox stop --suspend tight --time 15; echo \"src=\$?\"; $T kvmbox ps | sed 's/^/ps: /'
$T kvmbox stop tight --time 20; sleep 2; grep -v '^count=' /tmp/tight.out"
PAYLOAD
)
e2e_run_or_bail "$payload" 1500

e2e_check_has launch "a sandbox starts and runs" '^sus  *claude  *running '
e2e_check_has suspend "kvmbox stop --suspend saves it" -x 'sus suspended (kvmbox resume sus)'
e2e_check_has suspend "and returns 0" -x 'stop-rc=0'
e2e_check_has suspend "the launch says so, naming the way back" 'sandbox sus suspended (kvmbox resume sus)'
e2e_check_has suspend "and ends with status 0" -x 'rc=0'
e2e_check_has suspend "kvmbox ps lists it suspended, with what its saved VM takes on disk" '^sus  *claude  *suspended  *-  *[1-9][0-9]*M '
e2e_check_has suspend "kvmbox inspect too, with when" '"suspended_ms": [0-9]'
e2e_check_has suspend "(its state)" '"state": "suspended"'
e2e_check_has saved "its folder holds the snapshot" -x 'state'
e2e_check_has saved "and its memory" -x 'memory-N'
e2e_check_has saved "and the proxy's CA, the user's alone" "^mode 600 .*/suspended/sus/proxy-ca.pem\$"
e2e_check_lacks saved "on disk in the state folder, not beside the record in the runtime folder (tmpfs: memory)" '^record: suspend'
e2e_check_has saved "(its folder the user's alone)" '^mode 700 .*/suspended/sus/\.\.$'
e2e_check_has saved "the launch folder is kept for the resume" -x '1'
e2e_check_has taken "its name is not another launch's" 'the sandbox sus is suspended (kvmbox resume sus takes it up, kvmbox rm sus drops it; or --name another)'
e2e_check_has taken "(a usage error)" -x 'rc=2'
e2e_check_has taken "attach points at resume" 'attach: sus is suspended: kvmbox resume sus takes it up'
e2e_check_has taken "it cannot be suspended twice" 'stop: sus is not running (suspended)'
e2e_check_has badresume "a resume whose snapshot is damaged says why" 'cannot restore .*/suspended/sus: '
e2e_check_has badresume "the sandbox stays suspended" 'sandbox sus was not resumed: it stays suspended'
e2e_check_has badresume "(status 2)" -x 'rc=2'
e2e_check_has badresume "kvmbox ps lists it suspended still" '^sus  *claude  *suspended '
e2e_check_has reboot "after a reboot (the runtime folder emptied) kvmbox ps still lists it suspended" '^sus  *claude  *suspended '
e2e_check_has resume "kvmbox resume takes it up, and ends with the agent's status" -x 'rc=7'
e2e_check_has resume "the file held open is still written through its descriptor" -x 'held-write=ok'
e2e_check_has resume "and the agent goes on counting into it" -x 'after-resume'
e2e_check_has resume "the share shows what the host wrote meanwhile" -x 'touched=host-touched'
e2e_check_has resume "a TCP connection to the host works before the suspend" -x 'tcp-before=hello-l1'
e2e_check_has resume "and a new one after the resume" -x 'new-tcp=hello-l1'
e2e_check_lacks resume "nothing in the guest crashed" 'Segmentation fault'
e2e_check_has resume "a connection to the host is open before the suspend" -x 'old-conn-before=open'
e2e_check_has resume "and reset by the resume" -x 'old-conn=gone'
e2e_check_has resume "the launch self-test passes through the resumed proxy" -x 'selftest=0'
e2e_check_has resume "whose table holds the placeholder in the agent's environment" -x 'key-in-table'
e2e_check_has resume "a push off the allow-list gets the proxy's 403 (the CA still trusted)" \
	'^push=kvmbox: write to GitHub repository evil/x refused'
e2e_check_has resume "the resumed sandbox ends with the agent's status" '^sus  *claude  *exited (7) '
e2e_check_has resume "an ended sandbox is not resumed" 'resume: sus is not suspended (exited)'
e2e_check_has resume "once it ended its saved VM is dropped" '^after-end: ls: .*suspended/sus: No such file or directory'
e2e_check_has resume "and so is its kept record" '^after-end: ls: .*sessions/sus: No such file or directory'
e2e_check_has reboot "(its records kept on disk)" -x 'kept: resume.json'
e2e_check_has rm "kvmbox rm removes it" -x 'rc=0'
e2e_check_has rm "its record with it" '^ls: .*sessions/sus.*No such file or directory'
e2e_check_has rm "and its saved VM" '^saved: ls: .*suspended/sus.*No such file or directory'
e2e_check_has rm "and its launch folder" -x '0'
e2e_check_has detached "a detached sandbox" -x 'kvmbox: sandbox det runs in the background: kvmbox attach det'
e2e_check_has detached "is suspended" -x 'det suspended (kvmbox resume det)'
e2e_check_has detached "a resume with another sandbox's CA in its folder is refused" \
	"^wrongca-log: .*cannot restore /home/u/.local/state/kvmbox/suspended/det with --proxy: its guest runs a command already, which trusts another launch's proxy"
e2e_check_has detached "and the sandbox stays suspended" '^wrongca-log: .*sandbox det was not resumed: it stays suspended'
e2e_check_has detached "(kvmbox ps)" '^ps-wrongca: det  *claude  *suspended '
e2e_check_has detached "and resumed in the background, as it was launched" -x 'rrc=0'
e2e_check_has detached "where it runs on" '^det  *claude  *running '
e2e_check_has detached "until kvmbox stop" -x 'stop=0'
e2e_check_has review "a --review sandbox says it cannot be suspended" 'stop: rv cannot be suspended'
e2e_check_has review "(status 1)" -x 'rc=1'

e2e_check_has noroom "a suspend with no room for the guest's memory is not made" \
	"not suspended: /run/small/u/kvmbox/suspended/tight has [0-9]* MiB free and the guest's memory needs [0-9]* MiB; the VM runs on"
e2e_check_has noroom "kvmbox stop --suspend says it did not end" 'stop: tight was asked to suspend and has not ended after 15 s'
e2e_check_has noroom "the sandbox runs on" '^ps: tight  *claude  *running '
e2e_check_has noroom "until it is stopped" -x 'rc=143'
e2e_check_grows resume held resume first-after "the counter goes on from where it was suspended"
# The placeholders did not change (the real values never reach the guest).
kb=$(e2e_step_value resume key-before); ka=$(e2e_step_value resume key-after)
cb=$(e2e_step_value resume creds-before); ca=$(e2e_step_value resume creds-after)
if [ -n "$kb" ] && [ "$kb" = "$ka" ] && [ -n "$cb" ] && [ "$cb" = "$ca" ] &&
	grep -q kvmbox-ph- <<<"$kb$cb" && ! grep -q XYZZY <<<"$kb$cb"; then
	ok "the login file and the environment carry the placeholders they had"
else
	not_ok "the login file and the environment carry the placeholders they had" "key $kb / $ka; creds $cb / $ca"
fi
sb=$(e2e_step_value resume sum-before); sa=$(e2e_step_value resume sum-after)
if [ -n "$sb" ] && [ "$sb" = "$sa" ]; then
	ok "the image's files read afresh after the resume are what they were"
else
	not_ok "the image's files read afresh after the resume are what they were" "before '$sb', after '$sa'"
fi
tap_done
