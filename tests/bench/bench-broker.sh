#!/bin/bash
# tests/bench/bench-broker.sh - what the broker split (broker/broker.h)
# costs a proxied flow: the per-flow socket kvmbox uses beside a
# multiplexed single socket and the in-process copy it replaced, in the
# same run, three runs each (tests/bench/bench_broker.c says what each
# figure is).  The TLS proxy's own figures are make bench-proxy's.
#
#   BENCH_FLOWS=20000 BENCH_MIB=1024 make bench-broker
set -eu
cd "$(dirname "$0")/../.."
B=${BUILD:-build}
[ -f "$B/libbroker.a" ] || make -s -j2 all
tmpd=$(mktemp -d)
trap 'rm -rf "$tmpd"' EXIT
cc -std=gnu11 -O2 -D_GNU_SOURCE -I. -o "$tmpd/bench_broker" tests/bench/bench_broker.c \
	-Wl,--start-group "$B"/libbroker.a "$B"/libproxy.a "$B"/libcage.a "$B"/libcommon.a -Wl,--end-group \
	-luring -lseccomp -lssl -lcrypto -ljson-c -lpthread
echo "== $(nproc) CPUs, $(uname -r) =="
"$tmpd/bench_broker" "${BENCH_FLOWS:-20000}" "${BENCH_MIB:-1024}"
