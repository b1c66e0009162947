# tests/host/net_lib.bash - shared set-up for the net-serve host tests (source it
# after tests/lib/tap.sh).  Each test gets its own netns "kvmbox-t<pid>-N"
# whose TAP is served by `kvmbox net-serve`; net_cleanup (run from the trap)
# kills what was started and deletes every namespace, even on failure.
NET_NS_LIST=""
NET_PIDS=""
NET_TMP=$(mktemp -d /tmp/kvmbox-net.XXXXXX)
PY=/usr/bin/python3

net_cleanup() {
	local p n
	for p in $NET_PIDS; do kill "$p" 2>/dev/null; done
	for p in $NET_PIDS; do wait "$p" 2>/dev/null; done
	for n in $NET_NS_LIST; do ip netns pids "$n" 2>/dev/null | xargs -r kill 2>/dev/null; ip netns del "$n" 2>/dev/null; done
	rm -rf "$NET_TMP"
}

net_need() {
	need_root
	[ -c /dev/net/tun ] || skip_all "no /dev/net/tun"
	need_cmd ip
	need_cmd busybox
	ip netns add "kvmbox-probe-$$" 2>/dev/null || skip_all "cannot create network namespaces"
	ip netns del "kvmbox-probe-$$"
	[ -x "$KVMBOX_BIN" ] || skip_all "kvmbox binary not built ($KVMBOX_BIN)"
	cat >"$NET_TMP/udhcpc.script" <<'EOS'
#!/bin/sh
case "$1" in
bound|renew)
	ip addr flush dev "$interface"
	ip addr add "$ip/${mask:-24}" dev "$interface"
	[ -n "$mtu" ] && ip link set dev "$interface" mtu "$mtu"
	for r in $router; do ip route add default via "$r" dev "$interface"; break; done ;;
esac
exit 0
EOS
	chmod +x "$NET_TMP/udhcpc.script"
}

# net_start NAME [net-serve flags...]: namespace + net-serve (in a private
# mount namespace whose /etc/hosts is $NET_TMP/hosts if that exists).
net_start() {
	local name=$1; shift
	ip netns add "$name" || return 1
	NET_NS_LIST="$NET_NS_LIST $name"
	ip netns exec "$name" ip link set lo up
	local log=$NET_TMP/$name.log
	if [ -f "$NET_TMP/hosts" ]; then
		unshare -m sh -c 'mount --bind "$0" /etc/hosts && exec "$@"' "$NET_TMP/hosts" \
			"$KVMBOX_BIN" net-serve --netns "$name" "$@" >"$log" 2>&1 &
	else
		"$KVMBOX_BIN" net-serve --netns "$name" "$@" >"$log" 2>&1 &
	fi
	NET_PIDS="$NET_PIDS $!"
	local i
	for i in $(seq 50); do
		grep -qs ready "$log" && return 0
		kill -0 $! 2>/dev/null || break
		sleep 0.1
	done
	cat "$log" >&2
	return 1
}

# net_dhcp NAME: configure the namespace with udhcpc from the stack's DHCP.
net_dhcp() {
	timeout 10 ip netns exec "$1" busybox udhcpc -i kvmbox0 -s "$NET_TMP/udhcpc.script" \
		-q -n -t 3 -T 1 >/dev/null 2>&1 && ip netns exec "$1" ip -4 addr show kvmbox0 | grep -q 10.0.2.15
}

# net_fails_fast NAME SECONDS CMD...: CMD fails, and within SECONDS.
net_fails_fast() {
	local ns=$1 lim=$2; shift 2
	local t0 t1
	t0=$(date +%s%N)
	if timeout 10 ip netns exec "$ns" "$@" >/dev/null 2>&1; then echo "succeeded"; return 1; fi
	t1=$(date +%s%N)
	local ms=$(( (t1 - t0) / 1000000 ))
	[ "$ms" -le $((lim * 1000)) ] || { echo "took ${ms} ms"; return 1; }
}
