#!/bin/bash
# tests/host/net_stress.sh - bulk data through the stack: iperf3 both ways at
# MTU 1500 and 65520, checksummed transfers both ways, and 200 concurrent
# connections each moving checksummed data with nothing lost.
. "$(dirname "$0")/../lib/tap.sh"
. "$(dirname "$0")/net_lib.bash"
trap net_cleanup EXIT
net_need
need_cmd iperf3

port=$((21000 + $$ % 10000))
net_hash_scripts
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
