#!/bin/bash
# tests/host/net_ping.sh - ping beyond the gateway: net-serve runs in its own
# "host" namespace (so the test can give that host an address to ping and
# allow unprivileged ICMP sockets there), the guest namespace pings an
# address the policy allows (also 3000-byte pings, fragmented both ways)
# and gets replies; pings to denied addresses fail at once (administratively
# prohibited) and are logged.  The same over IPv6 (SLAAC address, ICMPv6
# echo through an IPv6 ICMP socket).
. "$(dirname "$0")/../lib/tap.sh"
. "$(dirname "$0")/net_lib.bash"
trap net_cleanup EXIT
net_need
need_cmd ping

host=kvmbox-t$$-host
guest=kvmbox-t$$-guest
ip netns add "$host" && NET_NS_LIST="$NET_NS_LIST $host"
ip netns add "$guest" && NET_NS_LIST="$NET_NS_LIST $guest"
peer=kvmbox-t$$-peer
ip netns add "$peer" && NET_NS_LIST="$NET_NS_LIST $peer"
ip netns exec "$host" ip link set lo up
# The pinged address is a peer's beyond the host (a veth away): the host's
# own addresses are the host group, which no --allow-egress opens.
ip link add kvmp$$h netns "$host" type veth peer name kvmp$$p netns "$peer" ||
	skip_all "cannot create a veth pair"
ip netns exec "$host" ip link set kvmp$$h up
ip netns exec "$peer" ip link set kvmp$$p up
ip netns exec "$peer" ip link set lo up
ip netns exec "$host" ip addr add 192.0.2.254/24 dev kvmp$$h
ip netns exec "$peer" ip addr add 192.0.2.1/24 dev kvmp$$p
v6=1
[ -e /proc/net/if_inet6 ] && ip netns exec "$host" ip -6 addr add 2001:db8::fe/64 dev kvmp$$h nodad 2>/dev/null &&
	ip netns exec "$peer" ip -6 addr add 2001:db8::1/64 dev kvmp$$p nodad 2>/dev/null || v6=0
ip netns exec "$host" sysctl -qw net.ipv4.ping_group_range="0 2147483647" ||
	skip_all "cannot allow ICMP sockets in a namespace"
ip netns exec "$guest" ip link set lo up
log=$NET_TMP/ping.log
ip netns exec "$host" "$KVMBOX_BIN" net-serve --netns "$guest" --allow-egress 192.0.2.1 \
	--allow-egress 2001:db8::1 >"$log" 2>&1 &
NET_PIDS="$NET_PIDS $!"
for _ in $(seq 50); do grep -qs ready "$log" && break; sleep 0.1; done
net_dhcp "$guest" || not_ok "DHCP"
check "ping to an allowed address beyond the gateway" \
	timeout 10 ip netns exec "$guest" ping -c 2 -W 2 192.0.2.1
check "3000-byte ping beyond the gateway (fragments both ways)" \
	timeout 10 ip netns exec "$guest" ping -c 2 -W 2 -s 3000 192.0.2.1
check "ping to a documentation address not allowed fails within 2 s" \
	net_fails_fast "$guest" 2 ping -c 1 -W 5 192.0.2.2
check "ping to a private address fails within 2 s" \
	net_fails_fast "$guest" 2 ping -c 1 -W 5 10.9.9.9
check "the denied ping is logged" grep -q "denied icmp to 10.9.9.9" "$log"
if [ "$v6" = 1 ]; then
	ip netns exec "$guest" sysctl -qw net.ipv6.conf.kvmbox0.accept_ra=2
	ip netns exec "$guest" ip link set kvmbox0 down
	ip netns exec "$guest" ip link set kvmbox0 up
	for _ in $(seq 50); do
		ip netns exec "$guest" ip -6 addr show kvmbox0 scope global | grep -v tentative | grep -q inet6 && break
		sleep 0.1
	done
	check "ping -6 to an allowed address beyond the router" \
		timeout 10 ip netns exec "$guest" ping -6 -c 2 -W 2 2001:db8::1
	check "ping -6 to a ULA address fails within 2 s" \
		net_fails_fast "$guest" 2 ping -6 -c 1 -W 5 fd00::99
else
	skip "ping -6 beyond the router" "no IPv6 here"
fi
tap_done
