#!/bin/bash
# tests/host/net_frag.sh - IPv4 fragments through the stack, with the
# namespace's kernel fragmenting and reassembling: a 4000-byte ping to the
# gateway (reassembled, answered with a fragmented reply), and UDP
# datagrams larger than the MTU (4000 and 30000 bytes, DNS-over-UDP sized
# and beyond) echoed by a host server through --allow-host, compared byte
# for byte.
. "$(dirname "$0")/../lib/tap.sh"
. "$(dirname "$0")/net_lib.bash"
trap net_cleanup EXIT
net_need
need_cmd ping

port=$((24000 + $$ % 10000))
cat >"$NET_TMP/udpecho.py" <<'EOP'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[1])))
while True:
    d, a = s.recvfrom(65535)
    s.sendto(d, a)
EOP
cat >"$NET_TMP/udpcli.py" <<'EOP'
import os, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
s.connect((sys.argv[1], int(sys.argv[2])))
for size in map(int, sys.argv[3:]):
    data = os.urandom(size)
    for attempt in range(3):
        s.send(data)
        try:
            got = s.recv(65535)
            break
        except socket.timeout:
            got = b""
    if got != data:
        print("size %d: got %d bytes back" % (size, len(got))); sys.exit(1)
EOP
$PY "$NET_TMP/udpecho.py" "$port" &
NET_PIDS="$NET_PIDS $!"

ns=kvmbox-t$$-frag
net_start "$ns" --allow-host || { not_ok "net-serve starts"; exit 1; }
net_dhcp "$ns" || not_ok "DHCP"
check "ping -s 4000 to the gateway (fragments both ways)" \
	timeout 10 ip netns exec "$ns" ping -c 2 -W 2 -s 4000 10.0.2.2
check "UDP datagrams of 4000 and 30000 bytes echoed through fragments" \
	timeout 20 ip netns exec "$ns" $PY "$NET_TMP/udpcli.py" 10.0.2.2 "$port" 4000 30000 1400
tap_done
