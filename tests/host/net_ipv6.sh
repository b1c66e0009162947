#!/bin/bash
# tests/host/net_ipv6.sh - IPv6 through the stack against the host kernel:
# SLAAC from the stack's router advertisement (prefix, default route via
# fe80::1, MTU), ping6 to the router, HTTP over IPv6 to the host's ::1
# through --allow-host (body compared), DNS over IPv6, and every IPv6 form
# of a denied destination (ULA, metadata, NAT64 and 6to4 wrapping private,
# loopback and metadata IPv4, documentation) refused at once.
. "$(dirname "$0")/../lib/tap.sh"
. "$(dirname "$0")/net_lib.bash"
trap net_cleanup EXIT
net_need
need_cmd curl
need_cmd dig
[ -e /proc/net/if_inet6 ] || skip_all "no IPv6 in this kernel"
port=$((25000 + $$ % 10000))
head -c 200000 /dev/urandom >"$NET_TMP/blob"
( cd "$NET_TMP" && exec $PY -m http.server "$port" --bind ::1 ) >/dev/null 2>&1 &
NET_PIDS="$NET_PIDS $!"
printf '127.0.0.1 localhost\n93.184.216.34 public.kvmbox.test\n2606:2800:220:1::1 public.kvmbox.test\n' >"$NET_TMP/hosts"
ns=kvmbox-t$$-v6
net_start "$ns" --allow-host || { not_ok "net-serve starts"; exit 1; }
ip netns exec "$ns" sysctl -qw net.ipv6.conf.kvmbox0.accept_ra=2
ip netns exec "$ns" ip link set kvmbox0 down
ip netns exec "$ns" ip link set kvmbox0 up
addr=""
for _ in $(seq 50); do
	addr=$(ip netns exec "$ns" ip -6 addr show kvmbox0 scope global | grep -v tentative | awk '/inet6/ {print $2}')
	[ -n "$addr" ] && break
	sleep 0.1
done
case $addr in fd4b:7662:6f78:*/64) ok "SLAAC address from the router advertisement ($addr)" ;;
	*) not_ok "SLAAC address from the router advertisement" "got '$addr'" ;; esac
check "default route via fe80::1" sh -c "ip netns exec $ns ip -6 route | grep -q 'default via fe80::1'"
gw=fd4b:7662:6f78::2
check "ping6 the gateway" timeout 5 ip netns exec "$ns" ping -6 -c 2 -W 1 "$gw"
check "ping6 the router's link-local address" timeout 5 ip netns exec "$ns" ping -6 -c 1 -W 1 fe80::1%kvmbox0
for _ in $(seq 20); do curl -s -o /dev/null "http://[::1]:$port/" && break; sleep 0.1; done
check "HTTP over IPv6 to the host's ::1 through --allow-host, body intact" \
	sh -c "timeout 10 ip netns exec $ns curl -sf -o $NET_TMP/got 'http://[$gw]:$port/blob' && cmp $NET_TMP/blob $NET_TMP/got"
expect_eq "DNS over IPv6 (AAAA from the host resolver)" "2606:2800:220:1::1" \
	"$(timeout 5 ip netns exec "$ns" dig +short +time=2 +tries=1 @$gw public.kvmbox.test AAAA)"
for a in fc00::1 fd00:ec2::254 64:ff9b::a00:1 64:ff9b::7f00:1 64:ff9b::a9fe:a9fe 2002:a00:1::1 \
	2002:a9fe:a9fe::1 2001:db8::1 64:ff9b:1::1; do
	check "TCP to [$a] refused within 2 s" net_fails_fast "$ns" 2 curl -s -m 8 "http://[$a]:$port/"
done
check "UDP to [fc00::1] refused within 2 s (ICMPv6 unreachable)" \
	net_fails_fast "$ns" 2 dig +time=5 +tries=1 @fc00::1 example.com
tap_done
