#!/bin/bash
# tests/bench/net-rr-ab.sh - request/response latency of two kvmbox builds,
# A/B in alternating rounds (ROUNDS, default 5): each round starts
# `net-serve --allow-host` on a fresh netns and times 5000 1-byte
# exchanges (after 200 to warm up) between the namespace and an echo
# server on the host's loopback.  For judging a change to the stack or
# to net-serve's TAP loop, where bench-net's three-tool rounds are too
# coarse.
#   tests/bench/net-rr-ab.sh OLD_KVMBOX NEW_KVMBOX
set -eu
[ $# -eq 2 ] || { echo "usage: $0 KVMBOX_A KVMBOX_B" >&2; exit 2; }
ROUNDS=${ROUNDS:-5}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cat >"$T/udhcpc.sh" <<'E'
#!/bin/sh
[ "$1" = bound ] && ip addr add "$ip/$mask" dev "$interface" && ip link set "$interface" up &&
	ip route add default via "$router"
exit 0
E
chmod +x "$T/udhcpc.sh"

# rtt BIN: prints the mean round trip of 5000 exchanges in microseconds.
rtt() {
	local ns=kvmbox-ab$$ port=$((24000 + RANDOM % 1000))
	ip netns add $ns
	ip netns exec $ns ip link set lo up
	"$1" net-serve --netns $ns --allow-host >"$T/serve.log" 2>&1 &
	local srv_pid=$!
	for _ in $(seq 50); do grep -q ready "$T/serve.log" && break; sleep 0.1; done
	ip netns exec $ns busybox udhcpc -q -i kvmbox0 -s "$T/udhcpc.sh" >/dev/null 2>&1
	python3 -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(1)
c, _ = s.accept(); c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
while True:
    d = c.recv(1)
    if not d: break
    c.send(d)' $port &
	local echo_pid=$!
	sleep 0.3
	ip netns exec $ns python3 -c '
import socket, sys, time
s = socket.create_connection(("10.0.2.2", int(sys.argv[1])))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
for i in range(200): s.send(b"x"); s.recv(1)
t = time.perf_counter()
for i in range(5000): s.send(b"x"); s.recv(1)
print("%.1f" % ((time.perf_counter() - t) / 5000 * 1e6))' $port
	kill $echo_pid $srv_pid 2>/dev/null || true
	wait $echo_pid $srv_pid 2>/dev/null || true
	ip netns del $ns
}

a=() b=()
for _ in $(seq "$ROUNDS"); do
	a+=("$(rtt "$1")")
	b+=("$(rtt "$2")")
done
. "$(dirname "$0")/../lib/bench.sh"	# median
echo "request/response latency, us per exchange, $ROUNDS alternating rounds"
echo "A $1: ${a[*]} (median $(median "${a[@]}"))"
echo "B $2: ${b[*]} (median $(median "${b[@]}"))"
