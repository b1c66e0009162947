#!/bin/bash
# tests/host/net_attack.sh - the egress policy tried as a guest attacker
# would, through `kvmbox net-serve` and the host kernel's TCP/IP:
#  - an --allow-egress of 0.0.0.0/0 does not open the host, its loopback
#    through the gateway, or metadata; only --allow-host opens the gateway;
#  - an address the host gains while the sandbox runs (a dummy interface
#    standing in for DHCP or a VPN) is refused at once, and a server bound
#    to the wildcard address on the host is never reached through it;
#  - reserved 240/4 is refused at once (a RST), not left to time out (a
#    covering --allow-egress would open it, so it is tried without one);
#  - a scan over many ports of one address is logged once.
. "$(dirname "$0")/../lib/tap.sh"
. "$(dirname "$0")/net_lib.bash"
DUMMY=kvmboxd$$
cleanup() { ip addr del 198.51.99.7/32 dev lo 2>/dev/null; ip link del "$DUMMY" 2>/dev/null; net_cleanup; }
trap cleanup EXIT
net_need
need_cmd curl
need_cmd python3

# A server on every host address (the wildcard), as a developer's dev server is.
port=$((30000 + $$ % 10000))
python3 -m http.server "$port" --bind 0.0.0.0 --directory "$NET_TMP" >/dev/null 2>&1 &
NET_PIDS="$NET_PIDS $!"
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
check "the host's wildcard server answers on the host" curl -s -o /dev/null "http://127.0.0.1:$port/"

ns=kvmbox-t$$-a
net_start "$ns" --allow-egress 0.0.0.0/0 --allow-egress ::/0 || { not_ok "net-serve starts"; exit 1; }
check "DHCP" net_dhcp "$ns"
hostip=$(ip -4 -o addr show scope global | awk '{print $4}' | cut -d/ -f1 | head -1)
for a in 10.0.2.2 127.0.0.1 ${hostip} 169.254.169.254; do
	check "0.0.0.0/0: TCP to $a refused within 2 s" net_fails_fast "$ns" 2 curl -s -m 8 "http://$a:$port/"
done

# An address the host gains now: refused from the next connection on.
dev=$DUMMY
if ! { ip link add "$DUMMY" type dummy && ip link set "$DUMMY" up; } 2>/dev/null; then
	dev=lo	# no dummy driver here: the host's loopback interface carries it
fi
ip addr add 198.51.99.7/32 dev "$dev" || skip "host address added during the run" "cannot add an address"
if ip addr show dev "$dev" 2>/dev/null | grep -q 198.51.99.7; then
	check "the wildcard server is on the new address (host side)" curl -s -o /dev/null -m 3 "http://198.51.99.7:$port/"
	check "an address the host gained during the run is refused within 2 s" \
		net_fails_fast "$ns" 2 curl -s -m 8 "http://198.51.99.7:$port/"
	check "the refusal names the host" grep -q "denied tcp to 198.51.99.7:$port: the host itself" "$NET_TMP/$ns.log"
	ip addr del 198.51.99.7/32 dev "$dev"
fi

# A scan: one address, many ports, one log line.
for p in $(seq 40000 40040); do
	timeout 3 ip netns exec "$ns" curl -s -m 2 "http://10.0.2.2:$p/" >/dev/null 2>&1
done
expect_eq "a port scan of one address is logged once" 1 "$(grep -c 'denied tcp to 10.0.2.2:' "$NET_TMP/$ns.log")"

# --allow-host opens the gateway (the host's loopback) and nothing more.
ns2=kvmbox-t$$-b
net_start "$ns2" --allow-host || { not_ok "net-serve --allow-host starts"; exit 1; }
check "DHCP (--allow-host)" net_dhcp "$ns2"
check "--allow-host: the gateway reaches the host's server" \
	timeout 10 ip netns exec "$ns2" curl -s -o /dev/null -m 5 "http://10.0.2.2:$port/"
check "--allow-host: metadata is still refused within 2 s" \
	net_fails_fast "$ns2" 2 curl -s -m 8 "http://169.254.169.254:$port/"
# Reserved 240/4 (which a covering CIDR would open): refused at once, a RST
# rather than a silent drop left to time out.
for a in 240.0.0.1 255.255.255.254; do
	check "reserved $a refused within 2 s" net_fails_fast "$ns2" 2 curl -s -m 8 "http://$a:$port/"
done
check "no sanitizer report" sh -c "! grep -E 'Sanitizer|runtime error' $NET_TMP/*.log"
tap_done
