# tests/lib/tlspeer.sh - test TLS peers for the proxy test and benchmark
# (source it; run in the scratch directory).
#
#   tls_make_ca_and_server CA_CN SERVER_CN SAN
#       ca.key/ca.pem (a throwaway EC P-256 CA) and srv.key/srv.pem signed by
#       it for SAN (e.g. "DNS:a.test,DNS:b.test" or "IP:127.0.0.1").
#   nginx_conf_head DIR WORKER_CONNECTIONS
#       prints the start of an nginx.conf that runs as root with its pid,
#       error log and temp paths under DIR, up to and including "http {".
#   tls_scratch NAME
#       sets T to a new /tmp/NAME.XXXXXX directory and PIDS=(), and traps
#       EXIT to kill the PIDS (then -9), the nginx of $T/nginx.pid, and
#       remove T.
#   free_port
#       prints a free loopback TCP port.

tls_make_ca_and_server() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout ca.key -out ca.pem -days 2 -subj "/CN=$1" &&
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout srv.key -out srv.csr -subj "/CN=$2" &&
	printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' "$3" >srv.ext &&
	openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
		-out srv.pem -days 2 -extfile srv.ext
}

nginx_conf_head() {
	mkdir -p "$1/ngx"
	cat <<NGX
user root;
worker_processes 1;
pid $1/nginx.pid;
error_log $1/nginx-error.log;
events { worker_connections $2; }
http {
	client_body_temp_path $1/ngx/body; proxy_temp_path $1/ngx/proxy;
	fastcgi_temp_path $1/ngx/fcgi; uwsgi_temp_path $1/ngx/uwsgi; scgi_temp_path $1/ngx/scgi;
NGX
}

tls_scratch() {
	T=$(mktemp -d "/tmp/$1.XXXXXX")
	PIDS=()
	trap tls_scratch_cleanup EXIT
}

tls_scratch_cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	[ -f "$T/nginx.pid" ] && kill "$(cat "$T/nginx.pid")" 2>/dev/null
	sleep 0.3
	for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
	[ -n "${KEEP_SCRATCH:-}" ] || rm -rf "$T"
}

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
