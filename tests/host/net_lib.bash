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

# A host echo-and-hash server on loopback: for each connection it reads a
# 4-byte length and that many bytes, then answers with their SHA-256 and
# the same number of pseudo-random bytes, so both directions are checked.
# net_hash_scripts writes them as $NET_TMP/srv.py PORT and
# $NET_TMP/cli.py HOST PORT CONNECTIONS BYTES (exit 0: every checksum matched).
net_hash_scripts() {
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
}
