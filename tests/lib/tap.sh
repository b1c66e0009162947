# tests/lib/tap.sh - TAP helpers for shell tests (source it).
#
#   ok "name"                 a passing check
#   not_ok "name" "why"       a failing check, with the reason on a "#" line
#   skip "name" "reason"      a skipped check: the reason is printed and counted
#   check "name" CMD...       ok if CMD exits 0, else not_ok with its output
#   expect_eq "name" WANT GOT
#   skip_all "reason"         skip the whole script (one counted skip) and exit
#   need_root / need_cmd X    skip_all unless the condition holds
#   tap_done                  exit 1 if any check failed
# KVMBOX_BIN is the binary under test (set by tests/run.sh).
TAP_N=0
TAP_FAILED=0
: "${KVMBOX_TOP:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${KVMBOX_BIN:=$KVMBOX_TOP/build/kvmbox}"

ok() { TAP_N=$((TAP_N + 1)); echo "ok $TAP_N - $1"; }
not_ok() {
	TAP_N=$((TAP_N + 1)); TAP_FAILED=1
	echo "not ok $TAP_N - $1"
	[ -n "${2:-}" ] && printf '%s\n' "$2" | head -40 | sed 's/^/# /'
	return 0
}
skip() { TAP_N=$((TAP_N + 1)); echo "ok $TAP_N - $1 # SKIP ${2:-}"; }
skip_all() { skip "$(basename "$0" .sh)" "$1"; exit 0; }
check() {
	local name=$1 out; shift
	if out=$("$@" 2>&1); then ok "$name"; else not_ok "$name" "$out"; fi
}
expect_eq() {
	if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1" "want: $2"$'\n'"got:  $3"; fi
}
need_root() { [ "$(id -u)" -eq 0 ] || skip_all "needs root"; }
need_cmd() { command -v "$1" >/dev/null 2>&1 || skip_all "needs $1 (not installed)"; }
tap_done() { [ "$TAP_FAILED" -eq 0 ]; }
