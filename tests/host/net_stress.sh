#!/bin/bash
# tests/host/net_stress.sh - bulk data through the stack: iperf3 both ways at
# MTU 1500 and 65520, checksummed transfers both ways, and 200 concurrent
# connections each moving checksummed data with nothing lost.
. "$(dirname "$0")/../lib/tap.sh"
. "$(dirname "$0")/net_lib.bash"
trap net_cleanup EXIT
net_need
need_cmd iperf3

# A host echo-and-hash server on loopback: for each connection it reads a
# 4-byte length and that many bytes, then answers with their SHA-256 and
# the same number of pseudo-random bytes, so both directions are checked.
port=$((21000 + $$ % 10000))
cat >"$NET_TMP/srv.py" <<'EOP'
import hashlib, socket, sys, threading
def handle(c):
    try:
        n = int.from_bytes(c.recv(4, socket.MSG_WAITALL), "big")
        h = hashlib.sha256(); got = 0
        while got < n:
            d = c.recv(min(1 << 16, n - got))
            if not d: break
            h.update(d); got += len(d)
        c.sendall(h.digest())
        blob = hashlib.sha256(h.digest()).digest() * (n // 32 + 1)
        c.sendall(blob[:n]); c.shutdown(socket.SHUT_WR); c.recv(1)
    finally:
        c.close()
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(512)
while True:
    c, _ = s.accept(); threading.Thread(target=handle, args=(c,), daemon=True).start()
EOP
cat >"$NET_TMP/cli.py" <<'EOP'
import hashlib, os, socket, sys, threading
host, port, conns, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
bad = []
def one(i):
    try:
        data = os.urandom(size)
        c = socket.create_connection((host, port), timeout=60)
        c.sendall(len(data).to_bytes(4, "big") + data)
        dig = c.recv(32, socket.MSG_WAITALL)
        if dig != hashlib.sha256(data).digest(): bad.append((i, "upload hash")); return
        want = (hashlib.sha256(dig).digest() * (size // 32 + 1))[:size]
        got = b""
        while True:
            d = c.recv(1 << 16)
            if not d: break
            got += d
        if got != want: bad.append((i, "download %d/%d bytes" % (len(got), size)))
        c.close()
    except Exception as e:
        bad.append((i, repr(e)))
ts = [threading.Thread(target=one, args=(i,)) for i in range(conns)]
[t.start() for t in ts]; [t.join() for t in ts]
print("bad:", len(bad), bad[:5])
sys.exit(1 if bad else 0)
EOP
$PY "$NET_TMP/srv.py" "$port" &
NET_PIDS="$NET_PIDS $!"
iport=$((port + 1))
iperf3 -s -B 127.0.0.1 -p "$iport" >/dev/null 2>&1 &
NET_PIDS="$NET_PIDS $!"
sleep 0.5

for mtu in 1500 65520; do
	ns=kvmbox-t$$-m$mtu
	net_start "$ns" --allow-host --mtu "$mtu" || { not_ok "net-serve --mtu $mtu starts"; continue; }
	net_dhcp "$ns" || not_ok "DHCP at MTU $mtu"
	expect_eq "interface MTU from DHCP" "$mtu" "$(ip netns exec "$ns" cat /sys/class/net/kvmbox0/mtu)"
	check "checksummed 4 MB both ways (MTU $mtu)" \
		timeout 60 ip netns exec "$ns" $PY "$NET_TMP/cli.py" 10.0.2.2 "$port" 1 4000000
	for dir in "" "-R"; do
		out=$(timeout 30 ip netns exec "$ns" iperf3 -c 10.0.2.2 -p "$iport" -t 3 $dir -J 2>&1)
		bps=$(printf '%s' "$out" | $PY -c 'import json,sys; print(int(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]))' 2>/dev/null)
		if [ -n "$bps" ] && [ "$bps" -gt 0 ]; then
			ok "iperf3 ${dir:-(guest to host)} at MTU $mtu: $((bps / 1000000)) Mbit/s"
		else
			not_ok "iperf3 $dir at MTU $mtu" "$out"
		fi
	done
done

ns=kvmbox-t$$-c
net_start "$ns" --allow-host || { not_ok "net-serve starts"; exit 1; }
net_dhcp "$ns" || not_ok "DHCP"
check "200 concurrent connections, 64 KB each way, all checksums match" \
	timeout 120 ip netns exec "$ns" $PY "$NET_TMP/cli.py" 10.0.2.2 "$port" 200 65536
tap_done
