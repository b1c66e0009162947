#!/bin/bash
# tests/lib/kvm-or-l1.sh L1OUT TIER NAME CMD... - report test NAME of TIER
# from its run in the nested harness's L1 (tests/lib/kvm-in-l1.sh wrote
# L1OUT), for tests/run.sh on a machine without a usable /dev/kvm: its
# output and exit status there.  Where L1 could not be used, CMD runs here
# (and skips with its own reason); where L1 gave no result for it, or the
# batch left nothing at all, one failure with the reason.
set -u
out=$1 tier=$2 name=$3
shift 3
if [ ! -d "$out" ]; then
	echo "not ok 1 - $name in L1"
	echo "# the L1 batch (tests/lib/kvm-in-l1.sh) left nothing in $out"
	exit 1
fi
if [ -f "$out/unavailable" ]; then
	echo "# the nested harness's L1 is unavailable: $(head -n 1 "$out/unavailable")"
	exec "$@"
fi
echo "# ran in the nested harness's L1 (no usable /dev/kvm here)"
if [ -f "$out/$tier/$name.rc" ]; then
	cat "$out/$tier/$name.log"
	exit "$(cat "$out/$tier/$name.rc")"
fi
echo "not ok 1 - $name in L1"
sed 's/^/# /' "$out/failed" 2>/dev/null || echo "# L1 gave no result for it"
exit 1
