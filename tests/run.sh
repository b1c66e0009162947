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
#                                        (in the nested harness's L1 where
#                                        there is none, as test_*kvm*)
#   fuzz       build-fuzz/tests/fuzz/*   each fuzz target for FUZZ_SECONDS
#   e2e        tests/e2e/*.sh            nested QEMU+KVM harness, real Linux guest
# One test, or some: TESTS="glob ..." runs only the tests whose name (the
# program or script without .sh) matches one of the globs, in the tiers
# asked for; CASES=GLOB then picks cmocka cases inside each program.
#   TIERS=unit TESTS=test_launch_config CASES=test_matrix tests/run.sh
#   TIERS=host TESTS="config_cli net_*" tests/run.sh
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
failed_logs=()	# "TIER NAME[ (why)]|LOG" of each test that failed

wanted() {	# NAME: whether TESTS (unset: every test) names it
	[ -z "${TESTS:-}" ] && return 0
	local g
	for g in $TESTS; do
		# shellcheck disable=SC2053
		[[ $1 == $g ]] && return 0
	done
	return 1
}

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
		failed_logs+=("$tier $name$note|$log")
		grep -E '^not ok|^# ' "$log" | head -20 | sed 's/^/    /'
		tail -n 15 "$log" | sed 's/^/    | /'
	fi
	grep -E '^(not )?ok [0-9]+.*# *(SKIP|skip)' "$log" | head -5 | sed 's/^/    /'
}

# Tests that need a usable /dev/kvm (the KVM unit tests, the guests tier)
# run, on a machine without one, inside the nested harness's L1: all of
# them in one L1 boot (tests/lib/kvm-in-l1.sh), before the tiers; each is
# then reported from its output there.  Where L1 cannot
# be used (no QEMU, no L1 kernel) they run here and skip with their reason.
host_kvm() { [ -c /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ]; }
l1_out=$B/test-logs/kvm-in-l1
needs_kvm() {	# TIER NAME
	case $1:$2 in guests:*|unit:test_*kvm*|unit-asan:test_*kvm*) return 0 ;; esac
	return 1
}
# test_cmd TIER NAME CMD...: sets cmd to what runs the test: CMD here, or
# its report from L1
test_cmd() {
	if needs_kvm "$1" "$2" && ! host_kvm; then
		cmd=(bash "$top/tests/lib/kvm-or-l1.sh" "$l1_out" "$@")
	else
		cmd=("${@:3}")
	fi
}
l1_batch() {
	local start=$SECONDS
	mkdir -p "$B/test-logs"
	bash "$top/tests/lib/kvm-in-l1.sh" "$l1_out" >"$B/test-logs/kvm-in-l1.log" 2>&1 </dev/null
	printf '%-10s %-36s %s  %4ds\n' l1 kvm-in-l1 "$(tail -n 1 "$B/test-logs/kvm-in-l1.log")" $((SECONDS - start))
}

run_bins() {	# TIER DIR [ARGS...]
	local tier=$1 dir=$2; shift 2
	[ -d "$dir" ] || { echo "$tier: $dir not built"; total_fail=$((total_fail + 1)); return; }
	local b
	for b in "$dir"/*; do
		[ -x "$b" ] && [ -f "$b" ] || continue
		case $b in *.d|*.o) continue;; esac
		wanted "$(basename "$b")" || continue
		test_cmd "$tier" "$(basename "$b")" "$b" "$@"
		run_one "$tier" "$(basename "$b")" "${cmd[@]}"
	done
}

# A script may raise its own limit with a line "# test-timeout: SECONDS"
# near its top (the real agents in the nested harness need more than most).
run_scripts() {	# TIER DIR
	local tier=$1 dir=$2 s own
	for s in "$dir"/*.sh; do
		[ -f "$s" ] || continue
		wanted "$(basename "$s" .sh)" || continue
		own=$(sed -n '1,40s/^# test-timeout: \([0-9][0-9]*\)$/\1/p' "$s" | head -n 1)
		test_cmd "$tier" "$(basename "$s" .sh)" bash "$s"
		timeout_s=${own:-${TEST_TIMEOUT:-900}} run_one "$tier" "$(basename "$s" .sh)" "${cmd[@]}"
	done
}

run_fuzz() {
	local dir=$B-fuzz/tests/fuzz b name corpus
	compgen -G "$top/tests/fuzz/*.c" >/dev/null || return 0
	[ -d "$dir" ] || { echo "fuzz: $dir not built"; total_fail=$((total_fail + 1)); return; }
	for b in "$dir"/*; do
		[ -x "$b" ] && [ -f "$b" ] || continue
		name=$(basename "$b")
		wanted "$name" || continue
		corpus=$B/fuzz-corpus/$name
		mkdir -p "$corpus"
		seeds=$top/tests/fuzz/corpus/$name
		[ -d "$seeds" ] || seeds=
		run_one fuzz "$name" bash "$top/tests/lib/fuzz-one.sh" "$b" "$corpus" $seeds
	done
}

# Without a usable /dev/kvm, the L1 batch comes first: it also fetches the
# nested harness's Debian kernel, a real bzImage for test_boot_bzimage.
# (only when a test it serves is among those asked for)
l1_wanted() {
	local t
	case " $tiers " in *" guests "*) [ -z "${TESTS:-}" ] && return 0 ;; esac
	for t in "$B"/tests/unit/test_*kvm* tests/guests/*.sh; do
		[ -e "$t" ] && wanted "$(basename "$t" .sh)" && return 0
	done
	return 1
}
case " $tiers " in *" unit "*|*" unit-asan "*|*" guests "*) host_kvm || ! l1_wanted || l1_batch ;; esac
cache=${KVMBOX_CACHE:-$HOME/.cache/kvmbox}
if [ -z "${KVMBOX_TEST_VMLINUX:-}" ]; then
	for k in "$cache"/kernel/*/vmlinux; do [ -f "$k" ] && export KVMBOX_TEST_VMLINUX=$k; done
fi
if [ -z "${KVMBOX_TEST_BZIMAGE:-}" ]; then
	for k in "$cache"/l1/*/vmlinuz; do [ -f "$k" ] && export KVMBOX_TEST_BZIMAGE=$k; done
fi

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

# The failures once more, briefly, where a reader of the last lines (CI
# shows only the tail of a long run) finds them: each failed check with the
# first lines of its diagnostics.
recap_failures() {
	[ "${#failed_logs[@]}" -eq 0 ] && return
	echo "failures (logs under $B/test-logs/):"
	local f
	for f in "${failed_logs[@]}"; do
		echo "  ${f%%|*}"
		awk '/^not ok [0-9]+/ && !/# *(SKIP|skip)/ { if (++n > 3) exit; d = 0; print "    " $0; next }
		     n && /^ *# / && d < 4 { d++; print "      " $0 }' "${f#*|}"
	done
}
recap_failures
echo "$total_pass passed, $total_fail failed, $total_skip skipped"
[ "$total_fail" -eq 0 ]
