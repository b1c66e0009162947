#!/bin/bash
# tests/host/net_serve.sh - the stack against the host kernel's TCP/IP: DHCP,
# ping to the gateway, curl to a local nginx through --allow-host (and
# refused without it), every denied group refused at once, the DNS
# forwarder (names from the host's /etc/hosts), a published port.
. "$(dirname "$0")/../lib/tap.sh"
. "$(dirname "$0")/net_lib.bash"
trap net_cleanup EXIT
net_need
need_cmd nginx
need_cmd curl
need_cmd dig

# nginx on the host's loopback only.
port=$((20000 + $$ % 10000))
mkdir -p "$NET_TMP/www" "$NET_TMP/ngx"
head -c 300000 /dev/urandom >"$NET_TMP/www/blob"
cat >"$NET_TMP/nginx.conf" <<EOC
daemon off;
user root;
pid $NET_TMP/ngx/pid;
error_log $NET_TMP/ngx/error.log;
events { worker_connections 512; }
http {
	access_log off;
	client_body_temp_path $NET_TMP/ngx/body; proxy_temp_path $NET_TMP/ngx/proxy;
	fastcgi_temp_path $NET_TMP/ngx/fcgi; uwsgi_temp_path $NET_TMP/ngx/uwsgi; scgi_temp_path $NET_TMP/ngx/scgi;
	server { listen 127.0.0.1:$port; root $NET_TMP/www; }
}
EOC
nginx -c "$NET_TMP/nginx.conf" -p "$NET_TMP/ngx" &
NET_PIDS="$NET_PIDS $!"

cat >"$NET_TMP/hosts" <<EOH
127.0.0.1 localhost
93.184.216.34 public.kvmbox.test
10.9.9.9 private.kvmbox.test
93.184.216.35 api.anthropic.com
93.184.216.36 github.com
93.184.216.37 evil.example
10.9.9.10 registry.npmjs.org
EOH

ns=kvmbox-t$$-a
pub=$((30000 + $$ % 10000))
pubu=$((pub + 1))
net_start "$ns" --allow-host --publish "127.0.0.1:$pub:8080" --publish "$pubu:5353/udp" || { not_ok "net-serve starts"; exit 1; }
ok "net-serve starts and creates the TAP in the namespace"
check "DHCP gives 10.0.2.15 with a default route" net_dhcp "$ns"
check "ping the gateway" timeout 5 ip netns exec "$ns" ping -c 2 -W 1 10.0.2.2

for i in $(seq 20); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
check "curl to the host's nginx through --allow-host, body intact" \
	sh -c "timeout 10 ip netns exec $ns curl -sf -o $NET_TMP/blob.got http://10.0.2.2:$port/blob && cmp $NET_TMP/www/blob $NET_TMP/blob.got"
check "upload to the host (guest to host data path)" \
	sh -c "timeout 10 ip netns exec $ns curl -s -o /dev/null -w '%{http_code}' --data-binary @$NET_TMP/www/blob http://10.0.2.2:$port/ | grep -Eq '^[2-4][0-9][0-9]$'"

expect_eq "dig a host-resolver name (from /etc/hosts)" "93.184.216.34" \
	"$(timeout 5 ip netns exec "$ns" dig +short +time=2 +tries=1 @10.0.2.2 public.kvmbox.test A)"
expect_eq "dig a name resolving to a private address is REFUSED" "REFUSED" \
	"$(timeout 5 ip netns exec "$ns" dig +time=2 +tries=1 @10.0.2.2 private.kvmbox.test A | sed -n 's/.*status: \([A-Z]*\).*/\1/p')"
expect_eq "dig localhost (loopback) is REFUSED" "REFUSED" \
	"$(timeout 5 ip netns exec "$ns" dig +time=2 +tries=1 @10.0.2.2 localhost A | sed -n 's/.*status: \([A-Z]*\).*/\1/p')"

# Published port: a server in the namespace reached from the host.
ip netns exec "$ns" $PY -c '
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 8080)); s.listen(4)
for _ in range(2):
    c, _ = s.accept(); d = b""
    while not d.endswith(b"\n"):
        x = c.recv(65536)
        if not x: break
        d += x
    c.sendall(b"echo:" + d); c.close()
' &
NET_PIDS="$NET_PIDS $!"
sleep 0.5
expect_eq "published port reached from the host" "echo:hello" \
	"$(echo hello | timeout 5 socat -T 3 - TCP:127.0.0.1:$pub 2>&1)"

# Published UDP port: a datagram echo in the namespace, asked from the host.
ip netns exec "$ns" $PY -c '
import socket
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("0.0.0.0", 5353))
for _ in range(4):
    d, a = u.recvfrom(2048); u.sendto(b"udp:" + d, a)
' &
NET_PIDS="$NET_PIDS $!"
sleep 0.3
expect_eq "published UDP port reached from the host, reply comes back" "udp:hi" \
	"$($PY -c '
import socket, sys
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(3)
u.sendto(b"hi", ("127.0.0.1", int(sys.argv[1])))
try: print(u.recvfrom(100)[0].decode())
except Exception as e: print(e)
' "$pubu")"
check "bad --publish specs are usage errors" \
	sh -c "$KVMBOX_BIN net-serve --netns x --publish 1:2:3:4 2>/dev/null; [ \$? -eq 2 ] || exit 1; $KVMBOX_BIN net-serve --netns x --publish 0:80 2>/dev/null; [ \$? -ne 0 ]"

# Every denied group, refused at once (RST), without --allow-lan etc.
hostip=$(ip -4 -o addr show scope global | awk '{print $4}' | cut -d/ -f1 | head -1)
for a in 10.0.0.1 172.16.0.1 192.168.1.1 100.64.0.1 198.18.0.1 169.254.1.1 169.254.169.254 \
	100.100.100.200 192.0.2.1 ${hostip}; do
	check "TCP to $a refused within 2 s" net_fails_fast "$ns" 2 curl -s -m 8 "http://$a:$port/"
done
check "UDP to a private address refused within 2 s (ICMP unreachable)" \
	net_fails_fast "$ns" 2 dig +time=5 +tries=1 @10.0.0.1 example.com
check "denials are logged with the group" grep -q "denied tcp to 169.254.169.254:$port: cloud metadata" "$NET_TMP/$ns.log"
expect_eq "each denial is logged once" "1" "$(grep -c "denied tcp to 10.0.0.1:" "$NET_TMP/$ns.log")"

# Without --allow-host the gateway is the host and refused at once.
ns2=kvmbox-t$$-b
net_start "$ns2" || { not_ok "second net-serve starts"; exit 1; }
check "DHCP (second namespace)" net_dhcp "$ns2"
check "gateway (the host) refused without --allow-host within 2 s" \
	net_fails_fast "$ns2" 2 curl -s -m 8 "http://10.0.2.2:$port/"
# Locked profile: only --allow-domain names resolve; public addresses that
# no permitted name gave are refused at once.
ns3=kvmbox-t$$-c
net_start "$ns3" --egress-profile locked --allow-domain kvmbox.test || { not_ok "locked net-serve starts"; exit 1; }
check "DHCP (locked namespace)" net_dhcp "$ns3"
expect_eq "locked: a permitted domain's subdomain resolves" "93.184.216.34" \
	"$(timeout 5 ip netns exec "$ns3" dig +short +time=2 +tries=1 @10.0.2.2 public.kvmbox.test A)"
expect_eq "locked: other names are REFUSED" "REFUSED" \
	"$(timeout 5 ip netns exec "$ns3" dig +time=2 +tries=1 @10.0.2.2 localhost A | sed -n 's/.*status: \([A-Z]*\).*/\1/p')"
check "locked: a public address no permitted name gave is refused within 2 s" \
	net_fails_fast "$ns3" 2 curl -s -m 8 "http://1.1.1.1:$port/"
# Standard profile for claude: the provider and GitHub resolve, other
# names are refused and counted; a permitted name never opens a private
# address; the summary at exit names each refusal and the flag.
ns5=kvmbox-t$$-e
net_start "$ns5" --egress-profile standard --egress-agent claude || { not_ok "standard net-serve starts"; exit 1; }
check "DHCP (standard namespace)" net_dhcp "$ns5"
expect_eq "standard: the agent's provider resolves" "93.184.216.35" \
	"$(timeout 5 ip netns exec "$ns5" dig +short +time=2 +tries=1 @10.0.2.2 API.Anthropic.com. A)"
expect_eq "standard: GitHub resolves" "93.184.216.36" \
	"$(timeout 5 ip netns exec "$ns5" dig +short +time=2 +tries=1 @10.0.2.2 github.com A)"
for name in evil.example github.com.evil.example public.kvmbox.test; do
	expect_eq "standard: $name is REFUSED" "REFUSED" \
		"$(timeout 5 ip netns exec "$ns5" dig +time=2 +tries=1 @10.0.2.2 "$name" A | sed -n 's/.*status: \([A-Z]*\).*/\1/p')"
done
expect_eq "standard: a permitted name resolving to a private address is still REFUSED" "REFUSED" \
	"$(timeout 5 ip netns exec "$ns5" dig +time=2 +tries=1 @10.0.2.2 registry.npmjs.org A | sed -n 's/.*status: \([A-Z]*\).*/\1/p')"
check "standard: the address of a refused name is refused within 2 s" \
	net_fails_fast "$ns5" 2 curl -s -m 8 "http://93.184.216.37:$port/"
sp=${NET_PIDS##* }
kill -TERM "$sp"; wait "$sp"
check "the summary at exit counts the refused name with the flag that allows it" \
	grep -qF "evil.example/dns x1 (not a name the standard egress profile permits; --allow-domain NAME)" "$NET_TMP/$ns5.log"
check "and the address no permitted name gave, with its flag" \
	grep -qF "93.184.216.37:$port/tcp x1 (public address no permitted name resolved to; --allow-domain NAME, or --egress-profile permissive)" "$NET_TMP/$ns5.log"
# SIGTERM: exits 0 and the TAP is gone from the namespace.
ns4=kvmbox-t$$-d
net_start "$ns4" || not_ok "fourth net-serve starts"
sp=${NET_PIDS##* }
kill -TERM "$sp"
rc=0
wait "$sp" || rc=$?
expect_eq "net-serve exits 0 on SIGTERM" 0 "$rc"
# (io_uring lets go of the TAP file asynchronously after exit: allow 3 s)
check "the TAP is removed on exit" sh -c "for i in \$(seq 30); do ip netns exec $ns4 ip link show kvmbox0 >/dev/null 2>&1 || exit 0; sleep 0.1; done; exit 1"
check "--allow-lan does not open loopback/metadata: bad flags are usage errors" \
	sh -c "! $KVMBOX_BIN net-serve --netns x --egress-profile bogus 2>/dev/null"
out=$("$KVMBOX_BIN" net-serve --netns x --poll-us 1e3 2>&1); rc=$?
expect_eq "bad --poll-us: exit status 2 and one line" "2 kvmbox: net-serve: bad --poll-us '1e3' (0 to 1000000)" "$rc $out"
tap_done
