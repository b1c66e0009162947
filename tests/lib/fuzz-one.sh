#!/bin/bash
# tests/lib/fuzz-one.sh BIN CORPUS [SEEDS] - run one libFuzzer target for
# FUZZ_SECONDS and report it as one TAP result.  A crash leaves its input in
# build/fuzz-crashes/<target>/ (turn it into a seed in tests/fuzz/corpus/).
set -u
bin=$1 corpus=$2 seeds=${3:-}
name=$(basename "$bin")
crashes=${BUILD:-${KVMBOX_TOP:-.}/build}/fuzz-crashes/$name
mkdir -p "$crashes"
log=$(mktemp)
# shellcheck disable=SC2086
"$bin" -max_total_time="${FUZZ_SECONDS:-20}" -timeout=10 -rss_limit_mb=2048 \
	-artifact_prefix="$crashes/" -print_final_stats=1 "$corpus" $seeds >"$log" 2>&1
rc=$?
tail -n 25 "$log" | sed 's/^/# /'
rm -f "$log"
if [ "$rc" -eq 0 ]; then
	echo "ok 1 - $name: no crash in ${FUZZ_SECONDS:-20}s"
else
	echo "not ok 1 - $name: crash or error, rc $rc (inputs in $crashes)"
	exit 1
fi
