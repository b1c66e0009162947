#!/bin/bash
# tests/host/net_loss.sh - TCP through the stack over a lossy link: the
# namespace's kernel drops 2 % of its packets to (or from) the stack
# (iptables statistic; netem reordering too where the kernel has netem).
# Checksummed transfers must complete both ways; the guest must recover
# with SACK (its SACK recovery counter moves), and it must resend little
# more than what was lost, which only holds because the stack keeps the
# segments that arrive after a hole instead of dropping them.
. "$(dirname "$0")/../lib/tap.sh"
. "$(dirname "$0")/net_lib.bash"
trap net_cleanup EXIT
net_need
need_cmd iptables
need_cmd nstat
need_cmd taskset

port=$((23000 + $$ % 10000))
net_hash_scripts
$PY "$NET_TMP/srv.py" "$port" &
NET_PIDS="$NET_PIDS $!"
sleep 0.3

# The namespace served by the stack routes for a second one, "app", over a
# veth pair and masquerades it as 10.0.2.15: packets dropped while being
# forwarded are real losses for app's TCP (a drop on a local output path
# would only make the sender try again).
ns=kvmbox-t$$-loss
app=kvmbox-t$$-app
net_start "$ns" --allow-host || { not_ok "net-serve starts"; exit 1; }
net_dhcp "$ns" || not_ok "DHCP"
ip netns add "$app" && NET_NS_LIST="$NET_NS_LIST $app"
nsx() { ip netns exec "$ns" "$@"; }
appx() { ip netns exec "$app" "$@"; }
ip link add vapp netns "$app" type veth peer name vrt netns "$ns" || skip_all "cannot create a veth pair"
nsx ip addr add 192.168.77.1/24 dev vrt
nsx ip link set vrt up
nsx sysctl -qw net.ipv4.ip_forward=1
appx ip link set lo up
appx ip addr add 192.168.77.2/24 dev vapp
appx ip link set vapp up
appx ip route add default via 192.168.77.1
# One packet on the wire per segment, so a drop loses one segment.
appx ip link set dev vapp gso_max_segs 1
nsx ip link set dev kvmbox0 gso_max_segs 1
nsx iptables -w -t nat -A POSTROUTING -o kvmbox0 -j MASQUERADE 2>/dev/null ||
	skip_all "iptables NAT does not work in a network namespace here"

# The link must not reorder: veth forwarding queues each packet on the
# backlog of the CPU that sent it, and app's TCP sends both from its own
# process and from the softirq of the ACKs the stack writes, so with the
# two on different CPUs about 1 % of its segments overtake each other and
# its sender resends them before the stack's D-SACK tells it they were not
# lost.  app's transfers and net-serve run on one CPU: an ordered lossy link.
for p in $NET_PIDS; do taskset -a -p -c 0 "$p" >/dev/null || skip_all "taskset cannot pin net-serve"; done

counter() { appx nstat -asz "$1" | awk -v k="$1" '$1 == k { print $2 }'; }
# Packets the DROP rule in FORWARD has dropped so far.
dropped() { nsx iptables -w -L FORWARD -v -x -n | awk '/DROP/ { print $1; exit }'; }
# lose IN OUT: drop 2 % of the TCP packets forwarded from IN to OUT.
lose() {
	nsx iptables -w -F FORWARD
	nsx iptables -w -A FORWARD -i "$1" -o "$2" -p tcp -m statistic --mode random \
		--probability 0.02 -j DROP
}

# transfer LABEL: 8 MB checksummed up and down from app; sets RETRANS
# (segments app resent) and SACKREC (its SACK recoveries) for it.
transfer() {
	local r0 s0
	r0=$(counter TcpRetransSegs)
	s0=$(counter TcpExtTCPSackRecovery)
	check "$1" timeout 120 ip netns exec "$app" taskset -c 0 $PY "$NET_TMP/cli.py" 10.0.2.2 "$port" 1 8000000
	RETRANS=$(( $(counter TcpRetransSegs) - r0 ))
	SACKREC=$(( $(counter TcpExtTCPSackRecovery) - s0 ))
}

# 1. Guest -> stack loses 2 %: the stack holds what follows each hole.
lose vrt kvmbox0
transfer "8 MB each way, 2 % of the guest's packets lost, checksums match"
lost=$(dropped)
echo "# guest packets dropped: $lost, guest segments resent: $RETRANS, SACK recoveries: $SACKREC"
if [ "${lost:-0}" -gt 0 ] && [ "$RETRANS" -le $((2 * lost + 20)) ]; then
	ok "guest resends about what was lost ($RETRANS segments for $lost drops)"
else
	not_ok "guest resends about what was lost" "$RETRANS segments resent for ${lost:-0} drops"
fi
check "guest recovers with SACK blocks from the stack" [ "$SACKREC" -gt 0 ]

# 2. A guest without SACK still gets its data through.
appx sysctl -qw net.ipv4.tcp_sack=0
transfer "same loss, guest without SACK: checksums match"
appx sysctl -qw net.ipv4.tcp_sack=1
check "no SACK recovery when the guest did not offer SACK" [ "$SACKREC" -eq 0 ]

# 3. Stack -> guest loses 2 %: the stack's own retransmission recovers.
lose kvmbox0 vrt
transfer "8 MB each way, 2 % of the stack's packets lost, checksums match"
nsx iptables -w -F FORWARD

# 4. Reordering (netem), where this kernel has it.
if nsx tc qdisc add dev kvmbox0 root netem delay 1ms reorder 25% 50% 2>/dev/null; then
	transfer "8 MB each way with 25 % of the guest's packets reordered, checksums match"
	nsx tc qdisc del dev kvmbox0 root
else
	skip "reordering" "this kernel has no netem qdisc"
fi
tap_done
