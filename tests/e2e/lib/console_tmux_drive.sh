#!/bin/sh
# tests/e2e/lib/console_tmux_drive.sh - drive an interactive `kvmbox shell` in a
# tmux pane the way a user would, and say what was seen.  Run by
# console_tmux.sh inside L1 of the nested harness (busybox sh), and usable on
# any host with tmux:  console_tmux_drive.sh CMD ARGS...   (CMD: the kvmbox
# shell command line).  Prints one "@@T NAME ok|FAIL why" line per check;
# the pane's contents follow a failure.  Every wait polls capture-pane with a
# bound (TCG is slow, a fixed sleep would be either flaky or long).
W=/tmp/kvmbox-tmux.$$
T="tmux -u -L kvmbox-e2e.$$ -f /dev/null"
S=e2e
mkdir -p "$W"
[ -e /dev/pts/ptmx ] || { mkdir -p /dev/pts; mount -t devpts -o ptmxmode=0666 devpts /dev/pts; }
cleanup() { $T kill-server 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT

# The pane: terminal settings before and after, and the command's status.
{
	echo 'stty -g >'"$W"'/stty.before'
	printf '%s' '"$@"; echo $? >'"$W"'/rc.tmp; mv '"$W"'/rc.tmp '"$W"'/rc'
	echo
	echo 'stty -g >'"$W"'/stty.after'
	echo 'exec sleep 1000'
} >"$W/pane.sh"

say() { echo "@@T $*"; }
pane() { $T capture-pane -p -J -t "$S" -S -200; }
dump() { echo "@@T-PANE-BEGIN"; pane; echo "@@T-PANE-END"; }

# wait_line LINE SECONDS: until the pane has a line that is exactly LINE.
wait_line() {
	n=$(($2 * 5))
	while [ "$n" -gt 0 ]; do
		pane | grep -qxF "$1" && return 0
		sleep 0.2
		n=$((n - 1))
	done
	return 1
}
wait_file() {
	n=$(($2 * 5))
	while [ "$n" -gt 0 ]; do
		[ -s "$1" ] && return 0
		sleep 0.2
		n=$((n - 1))
	done
	return 1
}
check_line() {	# NAME LINE SECONDS
	if wait_line "$2" "$3"; then say "$1 ok"; else say "$1 FAIL no line '$2' within $3 s"; dump; fi
}
keys() { $T send-keys -t "$S" -l "$1"; $T send-keys -t "$S" Enter; }
size() { $T display -p -t "$S" '#{pane_height} #{pane_width}'; }

$T new-session -d -s "$S" -x 100 -y 30 "sh $W/pane.sh $*" \; set -g status off ||
	{ say "tmux FAIL cannot start a session"; exit 1; }
$T set -g remain-on-exit on

# A command and its output (typed at once: kvmbox and the guest keep the
# keys until the guest's shell reads them).
keys 'echo hel""lo-$((6*7))'
check_line command hello-42 "${BOOT_S:-240}"
tty=$($T display -p -t "$S" '#{pane_tty}')
if stty -F "$tty" -a | grep -q -- '-icanon' && stty -F "$tty" -a | grep -q -- '-echo '; then
	say "raw ok"
else
	say "raw FAIL the pane's terminal is not raw while kvmbox runs: $(stty -F "$tty" -a | tr '\n' ' ')"
fi

# stty size is the pane's size, and follows a resize.
keys 'echo size-$(stty size)'
check_line size "size-$(size)" 60
$T resize-window -t "$S" -x 90 -y 25
keys 'echo resized-$(stty size)'
check_line resize "resized-$(size)" 60
say "sizes $(size)"

# Ctrl-C interrupts the guest's sleep, not kvmbox; the prompt comes back.
keys 'echo sleep-start; sleep 100'
if wait_line sleep-start 60; then
	sleep 1
	$T send-keys -t "$S" C-c
	keys 'echo after-$((1+1))'
	check_line ctrl-c after-2 60
	if [ -e "$W/rc" ]; then say "vm-kept FAIL kvmbox ended: $(cat "$W/rc")"; else say "vm-kept ok"; fi
else
	say "ctrl-c FAIL the sleep never started"
	dump
fi

# exit 3 ends kvmbox with status 3 and the pane's settings come back.
keys 'exit 3'
if wait_file "$W/rc" 60; then
	rc=$(cat "$W/rc")
	[ "$rc" = 3 ] && say "exit ok" || { say "exit FAIL status $rc, want 3"; dump; }
	wait_file "$W/stty.after" 10
	if [ "$(cat "$W/stty.before")" = "$(cat "$W/stty.after")" ]; then
		say "restored ok"
	else
		say "restored FAIL before $(cat "$W/stty.before") after $(cat "$W/stty.after" 2>/dev/null)"
	fi
else
	say "exit FAIL kvmbox did not end within 60 s of exit 3"
	dump
fi
