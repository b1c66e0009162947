#!/bin/bash
# tests/bench/bench-net.sh - kvmbox's network stack next to slirp4netns and
# pasta, each attached to its own fresh netns in the same way, the host
# kernel as the peer on loopback: iperf3 both directions at MTU 1500 and
# 65520, TCP request/response latency (1-byte ping-pong on one connection),
# and connections per second (connect, 1-byte exchange, close; these two
# are the median of BENCH_ROUNDS, 7, interleaved rounds).  Prints each
# figure with the peers' and the ratios; for latency and connections also
# kvmbox without its adaptive polling (--poll-us 0) and the CPU time each
# stack's process used in those rounds.  Needs root; not a test.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${KVMBOX_BIN:-$top/build/kvmbox}
SECS=${BENCH_SECS:-3}
ROUNDS=${BENCH_ROUNDS:-7}
PY=/usr/bin/python3
for c in iperf3 slirp4netns pasta ip; do
	command -v $c >/dev/null || { echo "bench-net: needs $c (scripts/deps.sh)"; exit 1; }
done
[ "$(id -u)" -eq 0 ] || { echo "bench-net: needs root (network namespaces)"; exit 1; }
tmp=$(mktemp -d /tmp/kvmbox-bench-net.XXXXXX)
pids="" nss=""
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null; done
	for p in $pids; do wait "$p" 2>/dev/null; done
	for n in $nss; do ip netns del "$n" 2>/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT
port=$((22000 + $$ % 10000))
iperf3 -s -B 127.0.0.1 -p "$port" >/dev/null 2>&1 & pids="$pids $!"
cat >"$tmp/srv.py" <<'EOP'
import socket, sys, threading
def h(c):
    try:
        while True:
            d = c.recv(64)
            if not d: break
            c.sendall(d)
    finally: c.close()
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(1024)
while True:
    c, _ = s.accept(); c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    threading.Thread(target=h, args=(c,), daemon=True).start()
EOP
cat >"$tmp/cli.py" <<'EOP'
import socket, sys, time
host, port, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
# One round: 2000 exchanges on one connection, or 300 connections.
if mode == "rr":
    c = socket.create_connection((host, port)); c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    n = 2000; t = time.perf_counter()
    for _ in range(n):
        c.sendall(b"x"); c.recv(1)
    print("%.1f" % ((time.perf_counter() - t) / n * 1e6))
else:
    n = 300; t = time.perf_counter()
    for _ in range(n):
        c = socket.create_connection((host, port)); c.sendall(b"x"); c.recv(1); c.close()
    print("%.0f" % (n / (time.perf_counter() - t)))
EOP
$PY "$tmp/srv.py" $((port + 1)) & pids="$pids $!"
sleep 0.5

# setup TOOL MTU NS: attach TOOL to NS; sets GW (the address that reaches
# the host's loopback) and TOOLPID.
setup() {
	local tool=$1 mtu=$2 ns=$3
	ip netns add "$ns"; nss="$nss $ns"
	ip netns exec "$ns" ip link set lo up
	case $tool in
	kvmbox|kvmbox-np)
		local poll=""; [ "$tool" = kvmbox-np ] && poll="--poll-us 0"
		"$BIN" net-serve --netns "$ns" --allow-host --mtu "$mtu" $poll >"$tmp/$ns.log" 2>&1 & pids="$pids $!"
		for _ in $(seq 50); do grep -q ready "$tmp/$ns.log" && break; sleep 0.1; done
		printf '#!/bin/sh\n[ "$1" = bound ] && ip addr add $ip/24 dev $interface && ip link set $interface mtu $mtu && ip route add default via $router\nexit 0\n' >"$tmp/u.sh"
		chmod +x "$tmp/u.sh"
		ip netns exec "$ns" busybox udhcpc -i kvmbox0 -s "$tmp/u.sh" -q -n -t 3 -T 1 >/dev/null 2>&1
		GW=10.0.2.2 ;;
	slirp4netns)
		slirp4netns --configure --mtu="$mtu" --netns-type=path "/run/netns/$ns" tap0 >/dev/null 2>&1 & pids="$pids $!"
		for _ in $(seq 50); do ip netns exec "$ns" ip -4 addr show tap0 2>/dev/null | grep -q inet && break; sleep 0.1; done
		GW=10.0.2.2 ;;
	pasta)
		pasta -f -q --runas 0 --config-net -m "$mtu" --netns "$ns" >/dev/null 2>&1 & pids="$pids $!"
		for _ in $(seq 50); do ip netns exec "$ns" ip -4 route 2>/dev/null | grep -q default && break; sleep 0.1; done
		GW=$(ip netns exec "$ns" ip -4 route | awk '/default/ {print $3; exit}') ;;
	esac
	TOOLPID=$!
}

iperf() {	# NS GW DIRFLAG -> Mbit/s
	ip netns exec "$1" timeout $((SECS + 15)) iperf3 -c "$2" -p "$port" -t "$SECS" $3 -J 2>/dev/null |
		$PY -c 'import json,sys
try: print(int(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e6))
except Exception: print("fail")'
}

declare -A R
tools="kvmbox slirp4netns pasta"
n=0
for mtu in 1500 65520; do
	for t in $tools; do
		n=$((n + 1)); ns=kvmbox-bench-$$-$n
		setup "$t" "$mtu" "$ns"
		gw=$GW
		R[$t,up,$mtu]=$(iperf "$ns" "$gw" "")
		R[$t,down,$mtu]=$(iperf "$ns" "$gw" "-R")
		kill "$TOOLPID" 2>/dev/null; wait "$TOOLPID" 2>/dev/null
		ip netns del "$ns"
	done
done

# Latency and connection rate: the three attached side by side at MTU 1500,
# rounds interleaved (kvmbox, slirp4netns, pasta, kvmbox, ...) so that load
# from other jobs on a shared machine falls on each alike; the median round
# is reported.
declare -A NSOF GWOF PIDOF RRS CRRS CPU0
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }	# PID: user+system
rtools="kvmbox kvmbox-np slirp4netns pasta"
for t in $rtools; do
	n=$((n + 1)); ns=kvmbox-bench-$$-$n
	setup "$t" 1500 "$ns"
	NSOF[$t]=$ns GWOF[$t]=$GW PIDOF[$t]=$TOOLPID CPU0[$t]=$(cpu_ticks "$TOOLPID")
done
for _ in $(seq "$ROUNDS"); do
	for t in $rtools; do
		RRS[$t]+="$(ip netns exec "${NSOF[$t]}" timeout 60 $PY "$tmp/cli.py" "${GWOF[$t]}" $((port + 1)) rr 2>/dev/null || echo fail) "
		CRRS[$t]+="$(ip netns exec "${NSOF[$t]}" timeout 60 $PY "$tmp/cli.py" "${GWOF[$t]}" $((port + 1)) crr 2>/dev/null || echo fail) "
	done
done
median() { $PY -c "import sys
try: v = sorted(float(x) for x in sys.argv[1:]); print(('%.1f' if '.' in sys.argv[1] else '%.0f') % v[len(v) // 2])
except Exception: print('fail')" "$@"; }
for t in $rtools; do
	R[$t,rr]=$(median ${RRS[$t]})
	R[$t,crr]=$(median ${CRRS[$t]})
	R[$t,cpu]=$(echo "scale=2; ($(cpu_ticks "${PIDOF[$t]}") - ${CPU0[$t]}) / $(getconf CLK_TCK)" | bc)
	kill "${PIDOF[$t]}" 2>/dev/null; wait "${PIDOF[$t]}" 2>/dev/null
	ip netns del "${NSOF[$t]}"
done

ratio() { $PY -c "import sys
try: print('%.2f' % (float(sys.argv[1]) / float(sys.argv[2])))
except Exception: print('-')" "$1" "$2"; }
row() {	# label key higher-is-better(1|0)
	local k=$2 a=${R[kvmbox,$2]} s=${R[slirp4netns,$2]} p=${R[pasta,$2]}
	local rs rp
	if [ "$3" = 1 ]; then rs=$(ratio "$a" "$s"); rp=$(ratio "$a" "$p"); else rs=$(ratio "$s" "$a"); rp=$(ratio "$p" "$a"); fi
	printf '%-34s %10s %12s %10s   %6sx %6sx\n' "$1" "$a" "$s" "$p" "$rs" "$rp"
}
echo "bench-net: $(nproc) CPUs, ${SECS}s iperf3 runs, latency and connections the median of $ROUNDS rounds; ratios: kvmbox vs slirp4netns, vs pasta (>1 = kvmbox better)"
printf '%-34s %10s %12s %10s   %7s %7s\n' "" kvmbox slirp4netns pasta "/slirp" "/pasta"
row "iperf3 guest->host MTU 1500 Mbit/s" up,1500 1
row "iperf3 host->guest MTU 1500 Mbit/s" down,1500 1
row "iperf3 guest->host MTU 65520 Mbit/s" up,65520 1
row "iperf3 host->guest MTU 65520 Mbit/s" down,65520 1
row "TCP request/response latency us" rr 0
row "TCP connections/s (connect+rr+close)" crr 1
row "stack CPU s, latency+connections" cpu 0
echo "kvmbox --poll-us 0 (no adaptive polling): latency ${R[kvmbox-np,rr]} us," \
	"connections/s ${R[kvmbox-np,crr]}, CPU ${R[kvmbox-np,cpu]} s"
