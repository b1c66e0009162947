#!/bin/bash
# tests/run.sh - run every test tier and print one summary line.
#
# Every test speaks TAP on stdout: "ok N - name", "not ok N - name",
# "ok N # SKIP reason".  cmocka programs do so with CMOCKA_MESSAGE_OUTPUT=TAP;
# shell tests use tests/lib/tap.sh.  A test that exits non-zero without a
# "not ok" line counts as one failure; one that prints no result at all
# counts as a failure too (a test that ran nothing proved nothing).
#
# Tiers (TIERS="..." picks some):
#   unit       build/tests/unit/*        cmocka unit + device-harness tests
#   unit-asan  build-asan/tests/unit/*   the same under ASan+UBSan
#   host       tests/host/*.sh           real kernel peers (FUSE, TAP, nginx...)
#   guests     tests/guests/*.sh         tiny guests on the host's /dev/kvm
#   fuzz       build-fuzz/tests/fuzz/*   each fuzz target for FUZZ_SECONDS
#   e2e        tests/e2e/*.sh            nested QEMU+KVM harness, real Linux guest
# Logs: $BUILD/test-logs/<tier>/<test>.log (BUILD defaults to build)
set -u
cd "$(dirname "$0")/.."
top=$PWD
B=${BUILD:-build}	# build dir; sanitized and fuzz builds are $B-asan, $B-fuzz
case $B in /*) ;; *) B=$top/$B ;; esac
export BUILD=$B
tiers=${TIERS:-"unit unit-asan host guests fuzz e2e"}
export CMOCKA_MESSAGE_OUTPUT=TAP
export FUZZ_SECONDS=${FUZZ_SECONDS:-20}
export KVMBOX_TOP=$top
: "${KVMBOX_BIN:=$B-asan/kvmbox}"
[ -x "$KVMBOX_BIN" ] || KVMBOX_BIN=$B/kvmbox
export KVMBOX_BIN
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
timeout_s=${TEST_TIMEOUT:-900}

total_pass=0 total_fail=0 total_skip=0

# run_one TIER NAME CMD...: run, log, count TAP lines.
run_one() {
	local tier=$1 name=$2; shift 2
	local log=$B/test-logs/$tier/$name.log
	mkdir -p "$(dirname "$log")"
	local start=$SECONDS
	timeout --kill-after=10 "$timeout_s" "$@" >"$log" 2>&1 </dev/null
	local rc=$?
	local pass fail skip
	# cmocka 1.1 reports a skipped test as "not ok N # SKIP": a skip too.
	skip=$(grep -cE '^(not )?ok [0-9]+.*# *(SKIP|skip)' "$log")
	pass=$(grep -E '^ok [0-9]+' "$log" | grep -cvE '# *(SKIP|skip)')
	fail=$(grep -E '^not ok [0-9]+' "$log" | grep -cvE '# *(SKIP|skip)')
	local note=""
	if [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ]; then
		fail=1
		if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then note=" (timed out after ${timeout_s}s)"
		else note=" (exited $rc)"; fi
	elif [ $((pass + fail + skip)) -eq 0 ]; then
		fail=1 note=" (reported no results)"
	fi
	total_pass=$((total_pass + pass)) total_fail=$((total_fail + fail)) total_skip=$((total_skip + skip))
	printf '%-10s %-36s %3d passed %3d failed %3d skipped  %4ds%s\n' \
		"$tier" "$name" "$pass" "$fail" "$skip" $((SECONDS - start)) "$note"
	if [ "$fail" -ne 0 ]; then
		grep -E '^not ok|^# ' "$log" | head -20 | sed 's/^/    /'
		tail -n 15 "$log" | sed 's/^/    | /'
	fi
	grep -E '^(not )?ok [0-9]+.*# *(SKIP|skip)' "$log" | head -5 | sed 's/^/    /'
}

run_bins() {	# TIER DIR [ARGS...]
	local tier=$1 dir=$2; shift 2
	[ -d "$dir" ] || { echo "$tier: $dir not built"; total_fail=$((total_fail + 1)); return; }
	local b
	for b in "$dir"/*; do
		[ -x "$b" ] && [ -f "$b" ] || continue
		case $b in *.d|*.o) continue;; esac
		run_one "$tier" "$(basename "$b")" "$b" "$@"
	done
}

# A script may raise its own limit with a line "# test-timeout: SECONDS"
# near its top (the real agents in the nested harness need more than most).
run_scripts() {	# TIER DIR
	local tier=$1 dir=$2 s own
	for s in "$dir"/*.sh; do
		[ -f "$s" ] || continue
		own=$(sed -n '1,40s/^# test-timeout: \([0-9][0-9]*\)$/\1/p' "$s" | head -n 1)
		timeout_s=${own:-${TEST_TIMEOUT:-900}} run_one "$tier" "$(basename "$s" .sh)" bash "$s"
	done
}

run_fuzz() {
	local dir=$B-fuzz/tests/fuzz b name corpus
	compgen -G "$top/tests/fuzz/*.c" >/dev/null || return 0
	[ -d "$dir" ] || { echo "fuzz: $dir not built"; total_fail=$((total_fail + 1)); return; }
	for b in "$dir"/*; do
		[ -x "$b" ] && [ -f "$b" ] || continue
		name=$(basename "$b")
		corpus=$B/fuzz-corpus/$name
		mkdir -p "$corpus"
		seeds=$top/tests/fuzz/corpus/$name
		[ -d "$seeds" ] || seeds=
		run_one fuzz "$name" bash "$top/tests/lib/fuzz-one.sh" "$b" "$corpus" $seeds
	done
}

for tier in $tiers; do
	case $tier in
	unit) run_bins unit "$B/tests/unit" ;;
	unit-asan) run_bins unit-asan "$B-asan/tests/unit" ;;
	host) run_scripts host tests/host ;;
	guests) run_scripts guests tests/guests ;;
	fuzz) run_fuzz ;;
	e2e) run_scripts e2e tests/e2e ;;
	*) echo "unknown tier $tier"; total_fail=$((total_fail + 1)) ;;
	esac
done

echo "$total_pass passed, $total_fail failed, $total_skip skipped"
[ "$total_fail" -eq 0 ]
