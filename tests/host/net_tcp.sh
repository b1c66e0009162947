#!/bin/bash
# tests/host/net_tcp.sh - TCP semantics across the stack against the host
# kernel: half-close both ways (the other direction keeps flowing), a host
# RST reaches the guest as ECONNRESET, a refused host port is refused in the
# guest at once, a slow reader on either side loses nothing (back-pressure),
# and UDP NAT round trips.
. "$(dirname "$0")/../lib/tap.sh"
. "$(dirname "$0")/net_lib.bash"
trap net_cleanup EXIT
net_need
port=$((24000 + $$ % 10000))
cat >"$NET_TMP/srv.py" <<'EOP'
import socket, struct, sys, threading, time
def h(c):
    mode = c.recv(1)
    if mode == b"h":	# half-close: read to EOF, then answer with the count
        n = 0
        while True:
            d = c.recv(65536)
            if not d: break
            n += len(d)
        c.sendall(b"got %d" % n); c.close()
    elif mode == b"r":	# reset
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)); c.close()
    elif mode == b"s":	# send 8 MB, then close (guest reads slowly)
        c.sendall(bytes(range(256)) * 32768); c.close()
    elif mode == b"w":	# read slowly
        n = 0
        while True:
            time.sleep(0.02)
            d = c.recv(65536)
            if not d: break
            n += len(d)
        c.sendall(b"%d" % n); c.close()
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(64)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", int(sys.argv[1])))
def udp():
    while True:
        d, a = u.recvfrom(65536); u.sendto(b"echo:" + d, a)
threading.Thread(target=udp, daemon=True).start()
while True:
    c, _ = s.accept(); threading.Thread(target=h, args=(c,), daemon=True).start()
EOP
cat >"$NET_TMP/cli.py" <<'EOP'
import socket, sys, time
host, port, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
if mode == "h":
    c = socket.create_connection((host, port)); c.sendall(b"h" + b"x" * 300000)
    c.shutdown(socket.SHUT_WR)
    print(c.recv(100).decode())
elif mode == "r":
    c = socket.create_connection((host, port)); c.sendall(b"r")
    try:
        d = c.recv(10); time.sleep(0.2); c.sendall(b"more"); d = c.recv(10)
        print("no reset", d)
    except ConnectionResetError:
        print("reset")
elif mode == "s":
    c = socket.create_connection((host, port)); c.sendall(b"s"); n = 0; ok = True
    want = bytes(range(256)) * 32768
    buf = bytearray()
    while True:
        d = c.recv(4096)
        if not d: break
        buf += d
        if len(buf) < 1 << 20: time.sleep(0.001)
    print("ok" if bytes(buf) == want else "bad %d" % len(buf))
elif mode == "w":
    c = socket.create_connection((host, port)); c.sendall(b"w" + b"y" * 4000000)
    c.shutdown(socket.SHUT_WR); print(c.recv(100).decode())
elif mode == "u":
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(3)
    u.sendto(b"ping", (host, port)); print(u.recvfrom(100)[0].decode())
EOP
$PY "$NET_TMP/srv.py" "$port" &
NET_PIDS="$NET_PIDS $!"
ns=kvmbox-t$$-tcp
net_start "$ns" --allow-host || { not_ok "net-serve starts"; exit 1; }
net_dhcp "$ns" || not_ok "DHCP"
sleep 0.3
run() { timeout 60 ip netns exec "$ns" $PY "$NET_TMP/cli.py" 10.0.2.2 "$port" "$1" 2>&1; }
expect_eq "guest half-closes, host still answers" "got 300000" "$(run h)"
expect_eq "host RST reaches the guest as ECONNRESET" "reset" "$(run r)"
expect_eq "8 MB to a slow guest reader, nothing lost" "ok" "$(run s)"
expect_eq "4 MB to a slow host reader, nothing lost" "4000000" "$(run w)"
expect_eq "UDP NAT round trip" "echo:ping" "$(run u)"
check "closed host port refused in the guest within 2 s" \
	net_fails_fast "$ns" 2 curl -s -m 8 "http://10.0.2.2:$((port + 7))/"
# Idle, the stack sets no timer: net-serve sleeps (the UDP flow above
# expires in 60 s, so one deadline is still pending, a minute away).
pid=$(pgrep -f "net-serve --netns $ns " | head -1)
wakeups() { awk '/^voluntary_ctxt_switches/ { print $2 }' "/proc/$pid/status"; }
sleep 0.5
w0=$(wakeups); sleep 2; w1=$(wakeups)
check "an idle net-serve stays asleep ($((w1 - w0)) wakeups in 2 s)" [ $((w1 - w0)) -le 4 ]
# --auto-publish: a listener in the namespace appears on the host's loopback.
ns2=kvmbox-t$$-ap
ap=$((35000 + $$ % 20000))
net_start "$ns2" --auto-publish || { not_ok "net-serve --auto-publish starts"; exit 1; }
net_dhcp "$ns2" || not_ok "DHCP (auto-publish)"
ip netns exec "$ns2" $PY -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(4)
c, _ = s.accept(); c.sendall(b"auto:" + c.recv(100)); c.close()
' "$ap" &
NET_PIDS="$NET_PIDS $!"
got=""
for _ in $(seq 75); do	# up to 15 s: the scan runs once a second, the machine may be busy
	got=$($PY -c '
import socket, sys
try:
    c = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10); c.sendall(b"x"); print(c.recv(100).decode())
except Exception as e: pass
' "$ap")
	[ -n "$got" ] && break
	sleep 0.2
done
expect_eq "--auto-publish mirrors a namespace listener to the host's loopback" "auto:x" "$got"
tap_done
