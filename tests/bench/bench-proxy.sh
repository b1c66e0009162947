#!/bin/bash
# tests/bench/bench-proxy.sh - throughput and added latency of `kvmbox proxy`
# next to a direct connection and mitmproxy (mitmdump), same run, same
# nginx TLS server on loopback, same curl client.  Prints:
#   small responses: requests/s over one keep-alive connection (and with 4
#   clients in parallel), the median of BENCH_ROUNDS (5) interleaved rounds,
#   and the latency each proxy adds per request;
#   new connection per request (a TLS handshake on each side every time);
#   large responses: MB/s for a 64 MB body.
# Not a test: no pass/fail, just figures.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${KVMBOX_BIN:-$top/build/kvmbox}
. "$top/tests/lib/tlspeer.sh"
. "$top/tests/lib/bench.sh"	# median
for c in nginx curl openssl python3; do command -v $c >/dev/null || { echo "bench-proxy: needs $c"; exit 1; }; done
tls_scratch kvmbox-bench-proxy
P_NGX=$(free_port) P_KVM=$(free_port) P_MITM=$(free_port)
cd "$T"
{
tls_make_ca_and_server bench-ca 127.0.0.1 IP:127.0.0.1
} >/dev/null 2>&1
head -c 67108864 /dev/zero > large.bin
{ nginx_conf_head "$T" 1024; cat <<NGX
	access_log off; keepalive_requests 100000;
	server {
		listen 127.0.0.1:$P_NGX ssl;
		ssl_certificate $T/srv.pem; ssl_certificate_key $T/srv.key;
		location /small { return 200 "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"; }
		location /large { alias $T/large.bin; }
	}
}
NGX
} >nginx.conf
nginx -c "$T/nginx.conf" -e "$T/nginx-error.log" || exit 1
"$BIN" proxy --listen "127.0.0.1:$P_KVM" --ca-out "$T/kvmbox-ca.pem" --upstream-ca "$T/ca.pem" >kvm.out 2>kvm.log &
PIDS+=($!)
have_mitm=0
if command -v mitmdump >/dev/null; then
	mitmdump -q --listen-host 127.0.0.1 -p "$P_MITM" --set confdir="$T/mitm" \
		--set ssl_verify_upstream_trusted_ca="$T/ca.pem" >mitm.log 2>&1 &
	PIDS+=($!)
	have_mitm=1
fi
for _ in $(seq 150); do
	[ -s kvmbox-ca.pem ] && { [ $have_mitm = 0 ] || [ -s mitm/mitmproxy-ca-cert.pem ]; } &&
		python3 -c "import socket,sys; s=socket.socket(); sys.exit(s.connect_ex(('127.0.0.1',$P_MITM)))" 2>/dev/null && break
	sleep 0.1
done
sleep 0.5
U="https://127.0.0.1:$P_NGX"
# via NAME: curl options for each path
opts() {
	case $1 in
	direct) echo "--cacert $T/ca.pem" ;;
	kvmbox) echo "--proxy http://127.0.0.1:$P_KVM --cacert $T/kvmbox-ca.pem" ;;
	mitmproxy) echo "--proxy http://127.0.0.1:$P_MITM --cacert $T/mitm/mitmproxy-ca-cert.pem" ;;
	esac
}
N=${BENCH_N:-2000}
# seconds for N small requests on one keep-alive connection
seq_small() { local t0 t1; t0=$(date +%s.%N)
	curl -s $(opts "$1") -o /dev/null "$U/small?[1-$N]" || echo "curl failed ($1)" >&2
	t1=$(date +%s.%N); echo "$t0 $t1" | awk '{print $2-$1}'; }
par_small() { local t0 t1; t0=$(date +%s.%N)
	for _ in 1 2 3 4; do curl -s $(opts "$1") -o /dev/null "$U/small?[1-$N]" & done; wait
	t1=$(date +%s.%N); echo "$t0 $t1" | awk '{print $2-$1}'; }
new_conn() { local t0 t1 i; t0=$(date +%s.%N)
	for i in $(seq 100); do curl -s $(opts "$1") -o /dev/null "$U/small"; done
	t1=$(date +%s.%N); echo "$t0 $t1" | awk '{print $2-$1}'; }
large() { local t0 t1; t0=$(date +%s.%N)
	curl -s $(opts "$1") -o /dev/null "$U/large?[1-4]" || echo "curl failed ($1)" >&2
	t1=$(date +%s.%N); echo "$t0 $t1" | awk '{print $2-$1}'; }
peers="direct kvmbox"
[ $have_mitm = 1 ] && peers="$peers mitmproxy"
# The small-request figures are the median of ROUNDS rounds with the peers
# taking turns (direct, kvmbox, mitmproxy, direct, ...), so load from
# elsewhere on the machine falls on each alike; the others are one run each.
ROUNDS=${BENCH_ROUNDS:-5}
declare -A S P C L SR PR
for p in $peers; do seq_small "$p" >/dev/null 2>&1; done	# warm-up
for _ in $(seq "$ROUNDS"); do
	for p in $peers; do SR[$p]+="$(seq_small "$p") "; PR[$p]+="$(par_small "$p") "; done
done
for p in $peers; do
	# shellcheck disable=SC2086  # SR/PR: space-separated figures
	S[$p]=$(median ${SR[$p]}); P[$p]=$(median ${PR[$p]})
	C[$p]=$(new_conn "$p"); L[$p]=$(large "$p")
done
printf 'bench-proxy: nginx TLS on loopback, curl client; %d small requests (100 B) per client (median of %d interleaved rounds), 4 x 64 MB large\n' "$N" "$ROUNDS"
printf '%-34s' "metric"; for p in $peers; do printf '%14s' "$p"; done; echo
printf '%-34s' "small, 1 keep-alive conn (req/s)"; for p in $peers; do awk -v n=$N -v t="${S[$p]}" 'BEGIN{printf "%14.0f", n/t}'; done; echo
printf '%-34s' "small, 4 clients (req/s)"; for p in $peers; do awk -v n=$N -v t="${P[$p]}" 'BEGIN{printf "%14.0f", 4*n/t}'; done; echo
printf '%-34s' "latency per request (us)"; for p in $peers; do awk -v n=$N -v t="${S[$p]}" 'BEGIN{printf "%14.0f", t/n*1e6}'; done; echo
printf '%-34s' "added latency vs direct (us)"; for p in $peers; do awk -v n=$N -v t="${S[$p]}" -v d="${S[direct]}" 'BEGIN{printf "%14.0f", (t-d)/n*1e6}'; done; echo
printf '%-34s' "new connection per request (req/s)"; for p in $peers; do awk -v t="${C[$p]}" 'BEGIN{printf "%14.1f", 100/t}'; done; echo
printf '%-34s' "large, 64 MB bodies (MB/s)"; for p in $peers; do awk -v t="${L[$p]}" 'BEGIN{printf "%14.0f", 4*64/t}'; done; echo
if [ $have_mitm = 1 ]; then
	awk -v k="${S[kvmbox]}" -v m="${S[mitmproxy]}" -v kp="${P[kvmbox]}" -v mp="${P[mitmproxy]}" \
		'BEGIN { printf "kvmbox / mitmproxy: small, 1 keep-alive conn %.1fx; 4 clients %.1fx\n", m / k, mp / kp }'
else
	echo "(mitmproxy not installed: apt-get install mitmproxy)"
fi
