#!/bin/sh
# tests/e2e/lib/console_sig_drive.sh - send host signals to a running `kvmbox
# shell` whose stdin is a pipe (no terminal), as `kill` from another shell
# would, and report how it ended.  Run by console_signals.sh inside L1 of the
# nested harness (busybox sh).
#   console_sig_drive.sh SIG [SIG2] -- CMD ARGS...
# CMD's output must contain a line "ready" once the guest command is set up;
# SIG is sent then; SIG2 (if given) once a line starting with "got" appears.
# Prints "@@S ready_s N" (start to ready), CMD's output, then "@@S rc N" and
# "@@S secs N" (SIG to the end).
W=/tmp/kvmbox-sig.$$
mkdir -p "$W"
sig1=$1 sig2=""
shift
[ "$1" != -- ] && { sig2=$1; shift; }
shift
pid="" dog=""
cleanup() { [ -n "$dog" ] && kill "$dog" 2>/dev/null; exec 3>&-; rm -rf "$W"; }
trap cleanup EXIT

wait_out() {	# PATTERN SECONDS
	n=$(($2 * 5))
	while [ "$n" -gt 0 ]; do
		grep -q "$1" "$W/out" && return 0
		kill -0 "$pid" 2>/dev/null || return 1
		sleep 0.2
		n=$((n - 1))
	done
	return 1
}

mkfifo "$W/in"
"$@" <"$W/in" >"$W/out" 2>&1 &
pid=$!
exec 3>"$W/in"	# a pipe that stays open: stdin neither a terminal nor at EOF
# Watchdog: ends within a second of kvmbox (no sleep left behind).
(n=0; while [ $n -lt "${SIG_LIMIT_S:-200}" ] && kill -0 "$pid" 2>/dev/null; do
	sleep 1; n=$((n + 1)); done; kill -KILL "$pid" 2>/dev/null) &
dog=$!
start=$(date +%s)
if ! wait_out '^ready' "${BOOT_S:-150}"; then
	cat "$W/out"
	echo "@@S never-ready"
	kill -KILL "$pid" 2>/dev/null
	exit 1
fi
t0=$(date +%s)
echo "@@S ready_s $((t0 - start))"
kill -"$sig1" "$pid"
if [ -n "$sig2" ]; then
	wait_out '^got' 60 || echo "@@S no-got-line"
	kill -"$sig2" "$pid"
fi
wait "$pid"
rc=$?
cat "$W/out"
echo "@@S rc $rc"
echo "@@S secs $(($(date +%s) - t0))"
