#!/bin/bash
# tests/host/proxy_peers.sh - `kvmbox proxy --listen` between real clients
# (curl, Node.js, git) and real TLS servers on loopback (nginx, git
# http-backend through fcgiwrap, a small Python server for SSE, WebSocket,
# uploads and an OAuth token endpoint), all under real-looking names mapped
# with --connect-to and trusted through --upstream-ca.
#
# Proves: the server sees the real secret and the client never does; a
# placeholder to an unlisted host arrives unchanged; a server whose
# certificate does not verify gives 502 (no downgrade); smuggling shapes,
# oversized and stalled heads get 400/431/408; SSE events arrive one by
# one; a WebSocket echo works; a large upload streams through; git push to
# a listed repository works and to another gets 403 naming it; a concurrent
# double OAuth refresh makes exactly one upstream refresh.
set -u
. "$(dirname "$0")/../lib/tap.sh"
. "$(dirname "$0")/../lib/tlspeer.sh"
need_root
for c in nginx fcgiwrap curl git node python3 openssl; do need_cmd $c; done
[ -x "$KVMBOX_BIN" ] || skip_all "no kvmbox binary at $KVMBOX_BIN"
KVMBOX_BIN=$(realpath "$KVMBOX_BIN")

tls_scratch kvmbox-proxy-test

P_NGX=$(free_port) P_BAD=$(free_port) P_GIT=$(free_port) P_PY=$(free_port) P_PX=$(free_port) P_TR=$(free_port)

# ---- a test CA and server certificates ----
cd "$T"
NAMES="api.example.test other.example.test github.com api.github.com console.anthropic.com sse.example.test ws.example.test upload.example.test"
san=$(for n in $NAMES; do printf 'DNS:%s,' "$n"; done); san=${san%,}
{
tls_make_ca_and_server kvmbox-test-ca api.example.test "$san"
# an untrusted CA's certificate for bad.example.test
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout bad.key -out bad.pem -days 2 \
	-subj /CN=bad.example.test -addext subjectAltName=DNS:bad.example.test
} >openssl.log 2>&1 || { cat openssl.log; skip_all "openssl could not make test certificates"; }

# ---- git repositories ----
mkdir -p repos
for r in alice/allowed alice/other; do
	git init -q --bare "repos/$r.git"
	git -C "repos/$r.git" config http.receivepack true
done

# ---- nginx ----
{ nginx_conf_head "$T" 256; cat <<NGX
	log_format sec '\$host|\$http_authorization|\$http_x_api_key|\$request_uri';
	access_log $T/seen.log sec;
	ssl_certificate $T/srv.pem; ssl_certificate_key $T/srv.key;
	server {
		listen 127.0.0.1:$P_NGX ssl;
		location / { return 200 "ok \$request_method \$uri\n"; }
		location /big { alias $T/big.bin; }
	}
	server {
		listen 127.0.0.1:$P_BAD ssl;
		ssl_certificate $T/bad.pem; ssl_certificate_key $T/bad.key;
		location / { return 200 "should never be reached\n"; }
	}
	server {
		listen 127.0.0.1:$P_GIT ssl;
		client_max_body_size 100m;
		location / {
			include /etc/nginx/fastcgi_params;
			fastcgi_pass unix:$T/fcgi.sock;
			fastcgi_param SCRIPT_FILENAME /usr/lib/git-core/git-http-backend;
			fastcgi_param GIT_PROJECT_ROOT $T/repos;
			fastcgi_param GIT_HTTP_EXPORT_ALL "";
			fastcgi_param REMOTE_USER test;
			fastcgi_param PATH_INFO \$uri;
		}
	}
}
NGX
} >nginx.conf
head -c 20000000 /dev/urandom > big.bin
fcgiwrap -s "unix:$T/fcgi.sock" >fcgiwrap.log 2>&1 &
PIDS+=($!)
nginx -c "$T/nginx.conf" -e "$T/nginx-error.log" 2>nginx.start.log || { cat nginx.start.log; skip_all "nginx did not start"; }

# ---- the Python peer: SSE, WebSocket echo, upload counter, token endpoint ----
cat > peer.py <<'PY'
import base64, hashlib, json, os, socket, ssl, struct, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
T = sys.argv[2]
lock = threading.Lock()
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def body(self):
        n = int(self.headers.get("Content-Length", "0"))
        return self.rfile.read(n)
    def reply(self, code, data, ctype="text/plain"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def do_GET(self):
        if self.path == "/sse":
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(4):
                ev = ("data: event %d\n\n" % i).encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(ev), ev)); self.wfile.flush()
                time.sleep(0.4)
            self.wfile.write(b"0\r\n\r\n"); self.wfile.flush()
        elif self.path == "/ws":
            key = self.headers["Sec-WebSocket-Key"]
            acc = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
            self.send_response(101)
            self.send_header("Upgrade", "websocket"); self.send_header("Connection", "Upgrade")
            self.send_header("Sec-WebSocket-Accept", acc)
            self.end_headers(); self.wfile.flush()
            while True:
                h = self.rfile.read(2)
                if len(h) < 2: return
                op, ln = h[0] & 15, h[1] & 127
                if ln == 126: ln = struct.unpack(">H", self.rfile.read(2))[0]
                elif ln == 127: ln = struct.unpack(">Q", self.rfile.read(8))[0]
                mask = self.rfile.read(4) if h[1] & 128 else b"\0\0\0\0"
                data = bytes(b ^ mask[i % 4] for i, b in enumerate(self.rfile.read(ln)))
                if op == 8:
                    self.wfile.write(b"\x88\x00"); self.wfile.flush(); return
                hdr = bytes([0x80 | op]) + (bytes([ln]) if ln < 126 else b"\x7e" + struct.pack(">H", ln))
                self.wfile.write(hdr + data); self.wfile.flush()
        else:
            self.reply(404, b"no\n")
    def do_POST(self):
        if self.path == "/upload":
            n, left = 0, int(self.headers.get("Content-Length", "0"))
            h = hashlib.sha256()
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                while True:
                    size = int(self.rfile.readline().split(b";")[0], 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b""): pass
                        break
                    d = self.rfile.read(size); self.rfile.readline()
                    h.update(d); n += len(d)
            while left:
                d = self.rfile.read(min(left, 65536))
                if not d: break
                h.update(d); n += len(d); left -= len(d)
            self.reply(200, ("%d %s\n" % (n, h.hexdigest())).encode())
        elif self.path == "/v1/oauth/token":
            req = json.loads(self.body())
            with lock:
                p = os.path.join(T, "refresh-count")
                c = int(open(p).read()) + 1 if os.path.exists(p) else 1
                open(p, "w").write(str(c))
            if req.get("grant_type") != "refresh_token" or req.get("refresh_token") != "real-refresh-1":
                return self.reply(400, b'{"error":"invalid_grant"}', "application/json")
            time.sleep(1.0)
            self.reply(200, json.dumps({"token_type": "Bearer", "access_token": "real-access-2",
                "refresh_token": "real-refresh-2", "expires_in": 28800}).encode(), "application/json")
        elif self.path == "/api":
            self.reply(200, ("auth=%s\n" % self.headers.get("Authorization")).encode())
        else:
            self.reply(404, b"no\n")
sys.path.insert(0, sys.argv[3])
from tls_http_server import serve
serve(H, sys.argv[1], T)
PY
python3 peer.py "$P_PY" "$T" "$KVMBOX_TOP/tests/lib" >peer.log 2>&1 &
PIDS+=($!)

# ---- the proxy ----
export KVMBOX_TEST_API_KEY="sk-real-api-key-123"
export KVMBOX_TEST_GH="ghp_realgithubtoken"
printf 'real-refresh-1\n' > refresh.txt
printf 'real-access-1\n' > access.txt
PH_API=kvmbox-placeholder-api PH_GH=kvmbox-placeholder-gh
PH_AT=kvmbox-placeholder-access PH_RT=kvmbox-placeholder-refresh
CT=()
for n in api.example.test other.example.test console.anthropic.com api.github.com; do CT+=(--connect-to "$n:443:127.0.0.1:$P_NGX"); done
CT+=(--connect-to "github.com:443:127.0.0.1:$P_GIT" --connect-to "bad.example.test:443:127.0.0.1:$P_BAD")
for n in sse.example.test ws.example.test upload.example.test; do CT+=(--connect-to "$n:443:127.0.0.1:$P_PY"); done
# the token endpoint goes to the Python peer
CT=(--connect-to "console.anthropic.com:443:127.0.0.1:$P_PY" "${CT[@]}")
KVMBOX_LOG=info "$KVMBOX_BIN" proxy --listen "127.0.0.1:$P_PX" --ca-out "$T/kvmbox-ca.pem" \
	--upstream-ca "$T/ca.pem" "${CT[@]}" --header-timeout 2 \
	--secret "$PH_API=env:KVMBOX_TEST_API_KEY@api.example.test" \
	--secret "$PH_GH=env:KVMBOX_TEST_GH@github.com,api.github.com" \
	--secret "$PH_AT=file:$T/access.txt@api.example.test" \
	--secret "$PH_RT=file:$T/refresh.txt@console.anthropic.com" \
	--oauth "claude=$PH_AT,$PH_RT,$T/oauth-state.json" \
	--repo alice/allowed --transparent "127.0.0.1:$P_TR=127.0.0.1:443" \
	--connect-to "127.0.0.1:443:127.0.0.1:$P_NGX" >proxy.out 2>proxy.log &
PIDS+=($!)
PXPID=$!
for _ in $(seq 100); do
	[ -s proxy.out ] && [ -s kvmbox-ca.pem ] && [ -f nginx.pid ] && nc -z 127.0.0.1 "$P_PY" 2>/dev/null && break
	python3 -c "import socket,sys; s=socket.socket(); sys.exit(s.connect_ex(('127.0.0.1',$P_PY)))" 2>/dev/null && [ -s proxy.out ] && break
	sleep 0.1
done
check "proxy starts and writes its CA" sh -c "grep -q \"listening on 127.0.0.1:$P_PX\" proxy.out || { cat proxy.log; false; }"
check "CA is an EC P-256 CA certificate" sh -c "openssl x509 -in kvmbox-ca.pem -noout -text | grep -q 'prime256v1' && openssl x509 -in kvmbox-ca.pem -noout -text | grep -q 'CA:TRUE'"

PX="http://127.0.0.1:$P_PX"
C=(curl -sS --max-time 10 --proxy "$PX" --cacert "$T/kvmbox-ca.pem")
CB=(curl -sS --max-time 60 --proxy "$PX" --cacert "$T/kvmbox-ca.pem")	# big transfers on a loaded CI box

# ---- secrets ----
out=$("${C[@]}" -H "Authorization: Bearer $PH_API" -H "x-api-key: $PH_API" https://api.example.test/v1/messages 2>&1)
expect_eq "request through the proxy reaches nginx" "ok GET /v1/messages" "$out"
sleep 0.3
check "server saw the real bearer and x-api-key" grep -q "^api.example.test|Bearer sk-real-api-key-123|sk-real-api-key-123|/v1/messages" seen.log
out=$("${C[@]}" -v -H "Authorization: Bearer $PH_API" https://api.example.test/x 2>&1)
case $out in *sk-real*) not_ok "client never sees the real secret" "$out";; *) ok "client never sees the real secret";; esac
"${C[@]}" -H "Authorization: Bearer $PH_API" https://other.example.test/leak >/dev/null
sleep 0.3
check "placeholder to an unlisted host arrives unchanged" grep -q "^other.example.test|Bearer $PH_API|-|/leak" seen.log
check "unlisted-host placeholder is logged by name only" sh -c "grep -q 'secret env:KVMBOX_TEST_API_KEY sent to other.example.test' proxy.log && ! grep -q sk-real proxy.log"
# Basic auth: user:placeholder, base64
"${C[@]}" -u "x-access-token:$PH_GH" https://github.com/alice/allowed.git/info/refs?service=git-upload-pack -o /dev/null
sleep 0.3
want="Basic $(printf 'x-access-token:%s' "$KVMBOX_TEST_GH" | base64 -w0)"
check "Basic credentials are decoded, substituted and re-encoded" grep -qF "github.com|$want|" seen.log
check "TLS leaf is minted for the name, issued by the kvmbox CA" sh -c "'${C[0]}' -sS --max-time 10 --proxy '$PX' --cacert '$T/kvmbox-ca.pem' -v https://api.example.test/ 2>&1 | grep -q 'subjectAltName: host \"api.example.test\" matched'"
check "ALPN to the guest is http/1.1" sh -c "'${C[0]}' -sS --max-time 10 --proxy '$PX' --cacert '$T/kvmbox-ca.pem' -v https://api.example.test/ 2>&1 | grep -q 'ALPN: server accepted http/1.1'"

# ---- a handed-over stream (proxy_take_stream, as net/ uses it): raw TLS, name from SNI ----
out=$(curl -sS --max-time 10 --cacert "$T/kvmbox-ca.pem" --connect-to "api.example.test:443:127.0.0.1:$P_TR" \
	-H "Authorization: Bearer $PH_API" https://api.example.test/handed 2>&1)
expect_eq "handed-over stream: TLS by SNI, relayed to the dialled address" "ok GET /handed" "$out"
sleep 0.3
check "handed-over stream: server saw the real secret" grep -q "^api.example.test|Bearer sk-real-api-key-123|-|/handed" seen.log

# ---- verification and policy ----
out=$("${C[@]}" -w '%{http_code}' https://bad.example.test/ 2>&1)
case $out in *"certificate verification failed for bad.example.test"*502) ok "unverifiable upstream gives 502 with the reason";;
	*) not_ok "unverifiable upstream gives 502 with the reason" "$out";; esac
out=$("${C[@]}" -o /dev/null -w '%{http_code}' -H "Host: other.example.test" https://api.example.test/ 2>&1)
expect_eq "Host not matching the CONNECT target gives 421" 421 "$out"
out=$(printf 'CONNECT api.example.test:443 HTTP/1.1\r\nHost: api.example.test:443\r\n\r\n' >/dev/null; \
	"${C[@]}" -o /dev/null -w '%{http_code}' --connect-to api.example.test:443:other.example.test:443 https://api.example.test/ 2>&1)
# curl's --connect-to changes the CONNECT target but keeps SNI and Host
expect_eq "SNI not matching the CONNECT target gives 421" 421 "$out"

# ---- smuggling and limits (raw HTTP inside TLS) ----
raw() {	# raw REQUEST-BYTES: status line of the answer
	printf '%b' "$1" | timeout 10 openssl s_client -quiet -ign_eof -connect "127.0.0.1:$P_PX" \
		-proxy "127.0.0.1:$P_PX" -servername api.example.test -CAfile "$T/kvmbox-ca.pem" 2>/dev/null | head -1 | tr -d '\r'
}
if openssl s_client -help 2>&1 | grep -q -- '-proxy'; then
	expect_eq "CL+TE gives 400" "HTTP/1.1 400 Bad Request" \
		"$(raw 'POST / HTTP/1.1\r\nHost: api.example.test\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n')"
	expect_eq "two Content-Lengths give 400" "HTTP/1.1 400 Bad Request" \
		"$(raw 'POST / HTTP/1.1\r\nHost: api.example.test\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab')"
	expect_eq "obs-fold gives 400" "HTTP/1.1 400 Bad Request" \
		"$(raw 'GET / HTTP/1.1\r\nHost: api.example.test\r\nX: a\r\n b\r\n\r\n')"
	expect_eq "bare LF gives 400" "HTTP/1.1 400 Bad Request" \
		"$(raw 'GET / HTTP/1.1\nHost: api.example.test\r\n\r\n')"
	big=$(head -c 40000 /dev/zero | tr '\0' a)
	expect_eq "oversized head gives 431" "HTTP/1.1 431 Request Header Fields Too Large" \
		"$(raw "GET / HTTP/1.1\\r\\nHost: api.example.test\\r\\nX: $big\\r\\n\\r\\n")"
else
	skip "smuggling checks" "openssl s_client has no -proxy"
fi
st=$( (printf 'CONNECT api.example.test:443 HTTP/1.1\r\nHost: api.exa'; sleep 4) | timeout 8 nc 127.0.0.1 "$P_PX" 2>/dev/null | head -1 | tr -d '\r' ||
	python3 - "$P_PX" <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"CONNECT api.example.test:443 HTTP/1.1\r\nHost: api.exa")
s.settimeout(8)
print(s.recv(200).split(b"\r\n")[0].decode())
PY
)
[ -n "$st" ] || st=$(python3 - "$P_PX" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"CONNECT api.example.test:443 HTTP/1.1\r\nHost: api.exa")
s.settimeout(8)
print(s.recv(200).split(b"\r\n")[0].decode())
PY
)
expect_eq "stalled client gets 408" "HTTP/1.1 408 Request Timeout" "$st"
check "proxy survived the bad input" kill -0 "$PXPID"

# ---- keep-alive, large download, large upload ----
out=$("${C[@]}" -H "Authorization: Bearer $PH_API" https://api.example.test/a https://api.example.test/b -w '%{num_connects}\n' 2>&1 | tr '\n' ' ')
expect_eq "keep-alive: two requests on one connection" "ok GET /a 1 ok GET /b 0 " "$out"
"${CB[@]}" https://api.example.test/big -o dl.bin; got=$(sha256sum dl.bin | cut -d" " -f1)
expect_eq "20 MB download arrives intact" "$(sha256sum big.bin | cut -d' ' -f1)" "$got"
got=$("${CB[@]}" --data-binary @big.bin -H 'Content-Type: application/octet-stream' https://upload.example.test/upload)
expect_eq "20 MB upload streams through intact" "20000000 $(sha256sum big.bin | cut -d' ' -f1)" "$got"
got=$("${CB[@]}" -H 'Transfer-Encoding: chunked' --data-binary @big.bin https://upload.example.test/upload)
expect_eq "20 MB chunked upload streams through intact" "20000000 $(sha256sum big.bin | cut -d' ' -f1)" "$got"

# ---- SSE: events arrive one by one ----
"${C[@]}" -N https://sse.example.test/sse | while IFS= read -r line; do
	[ -n "$line" ] && echo "$(date +%s.%N) $line"; done > sse.txt
n=$(grep -c 'data: event' sse.txt)
spread=$(awk 'NR==1{a=$1} {b=$1} END{printf "%d", (b-a)*1000}' sse.txt)
expect_eq "SSE: four events" 4 "$n"
# Sent 400 ms apart (1200 ms first to last): a proxy that buffered the
# response would deliver them together; half the span tells the two apart
# on a loaded machine too.
if [ "${spread:-0}" -ge 600 ]; then ok "SSE events arrive as sent, ${spread} ms apart first to last"
else not_ok "SSE events arrive as sent" "first to last ${spread} ms (sent over 1200 ms)"; fi

# ---- Node.js: CONNECT + TLS trusting the CA via NODE_EXTRA_CA_CERTS; WebSocket echo ----
cat > client.mjs <<'JS'
import http from 'node:http'; import tls from 'node:tls'; import crypto from 'node:crypto';
const [px, host, mode, auth] = process.argv.slice(2);
const [ph, pp] = px.split(':');
function tunnel() {
  return new Promise((res, rej) => {
    const r = http.request({ host: ph, port: +pp, method: 'CONNECT', path: host + ':443' });
    r.on('connect', (resp, sock) => {
      if (resp.statusCode !== 200) return rej(new Error('CONNECT ' + resp.statusCode));
      const t = tls.connect({ socket: sock, servername: host, ALPNProtocols: ['http/1.1'] }, () => res(t));
      t.on('error', rej);
    });
    r.on('error', rej); r.end();
  });
}
const t = await tunnel();
if (mode === 'get') {
  const req = http.request({ createConnection: () => t, host, port: 443, path: '/node', headers: { Host: host, Authorization: 'Bearer ' + auth } },
    (r) => { let b = ''; r.on('data', (d) => b += d); r.on('end', () => { console.log(r.statusCode, b.trim()); process.exit(0); }); });
  req.end();
} else {
  const key = crypto.randomBytes(16).toString('base64');
  t.write(`GET /ws HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  let buf = Buffer.alloc(0), upgraded = false;
  const frame = (s) => { const p = Buffer.from(s), m = crypto.randomBytes(4);
    return Buffer.concat([Buffer.from([0x81, 0x80 | p.length]), m, Buffer.from(p.map((b, i) => b ^ m[i % 4]))]); };
  t.on('data', (d) => {
    buf = Buffer.concat([buf, d]);
    if (!upgraded) {
      const i = buf.indexOf('\r\n\r\n'); if (i < 0) return;
      const head = buf.subarray(0, i).toString(); buf = buf.subarray(i + 4); upgraded = true;
      const acc = crypto.createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
      if (!head.startsWith('HTTP/1.1 101') || !head.includes(acc)) { console.log('bad upgrade: ' + head); process.exit(1); }
      t.write(frame('hello kvmbox'));
    }
    if (buf.length >= 2 && buf.length >= 2 + (buf[1] & 127)) {
      console.log('echo: ' + buf.subarray(2, 2 + (buf[1] & 127)).toString()); process.exit(0);
    }
  });
}
setTimeout(() => { console.log('timeout'); process.exit(1); }, 8000);
JS
out=$(NODE_EXTRA_CA_CERTS="$T/kvmbox-ca.pem" timeout 15 node client.mjs "127.0.0.1:$P_PX" api.example.test get "$PH_API" 2>&1)
expect_eq "Node.js HTTPS through the proxy, CA from NODE_EXTRA_CA_CERTS" "200 ok GET /node" "$out"
sleep 0.3
check "server saw the real secret from Node.js" grep -q "^api.example.test|Bearer sk-real-api-key-123|-|/node" seen.log
out=$(timeout 15 node client.mjs "127.0.0.1:$P_PX" ws.example.test ws 2>&1)
case $out in *certificate*|*verify*) ok "Node.js refuses the kvmbox CA without NODE_EXTRA_CA_CERTS (control)";;
	*) not_ok "Node.js refuses the kvmbox CA without NODE_EXTRA_CA_CERTS (control)" "$out";; esac
out=$(NODE_EXTRA_CA_CERTS="$T/kvmbox-ca.pem" timeout 15 node client.mjs "127.0.0.1:$P_PX" ws.example.test ws 2>&1)
expect_eq "WebSocket echo through the proxy" "echo: hello kvmbox" "$out"

# ---- git over HTTPS: push allowed and refused ----
export GIT_SSL_CAINFO="$T/kvmbox-ca.pem" https_proxy="$PX" GIT_TERMINAL_PROMPT=0
git init -q work && cd work
git -c user.email=t@t -c user.name=t commit -q --allow-empty -m one
if git push -q "https://x-access-token:$PH_GH@github.com/alice/allowed.git" HEAD:refs/heads/main >../push1.log 2>&1; then
	ok "git push to a listed repository succeeds"
else not_ok "git push to a listed repository succeeds" "$(cat ../push1.log)"; fi
check "the pushed commit is in the server's repository" git -C "$T/repos/alice/allowed.git" rev-parse -q --verify refs/heads/main
if git push "https://github.com/alice/other.git" HEAD:refs/heads/main >../push2.log 2>&1; then
	not_ok "git push to an unlisted repository is refused" "push succeeded"
else
	check "git push to an unlisted repository gets 403 naming it and --repo" \
		grep -q "alice/other.*--repo alice/other" ../push2.log
fi
check "nothing reached the unlisted repository" sh -c "! git -C '$T/repos/alice/other.git' rev-parse -q --verify refs/heads/main"
git clone -q https://github.com/alice/allowed.git "$T/clone" >../clone.log 2>&1
check "git clone (a read) works" test -d "$T/clone/.git"
cd "$T"
unset https_proxy

# ---- GitHub REST and GraphQL writes ----
code() { "${C[@]}" -o /dev/null -w '%{http_code}' "$@"; }
expect_eq "REST write to a listed repository passes" 200 "$(code -X POST https://api.github.com/repos/alice/allowed/issues -d '{}')"
expect_eq "REST write to another repository gets 403" 403 "$(code -X PATCH https://api.github.com/repos/bob/x -d '{}')"
expect_eq "REST read of another repository passes" 200 "$(code https://api.github.com/repos/bob/x)"
gq() { "${C[@]}" -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' -d "$1" https://api.github.com/graphql; }
expect_eq "GraphQL query passes" 200 "$(gq '{"query":"query { viewer { login } }"}')"
expect_eq "GraphQL mutation naming a listed repository passes" 200 \
	"$(gq '{"query":"mutation($o:String!,$n:String!){x}","variables":{"input":{"owner":"alice","name":"allowed"}}}')"
expect_eq "GraphQL mutation naming another repository gets 403" 403 \
	"$(gq '{"query":"mutation { createIssue }","variables":{"repo":"bob/x"}}')"
expect_eq "GraphQL mutation whose node ids cannot be resolved gets 403" 403 \
	"$(gq '{"query":"mutation { createIssue(input:{repositoryId:\"R_1\"}) { x } }"}')"

# ---- OAuth refresh: concurrent double refresh, one upstream call ----
body="{\"grant_type\":\"refresh_token\",\"refresh_token\":\"$PH_RT\",\"client_id\":\"x\"}"
rp=()
for i in 1 2 3; do
	"${C[@]}" -H 'Content-Type: application/json' -d "$body" https://console.anthropic.com/v1/oauth/token > "refresh$i.json" &
	rp+=($!)
done
wait "${rp[@]}"
expect_eq "three concurrent refreshes make one upstream refresh" 1 "$(cat refresh-count 2>/dev/null)"
check "every guest got the access placeholder back" sh -c "grep -q '\"access_token\":\"$PH_AT\"' refresh1.json && grep -q '\"access_token\":\"$PH_AT\"' refresh2.json && grep -q '\"access_token\":\"$PH_AT\"' refresh3.json"
check "no guest saw a real token" sh -c "! grep -q real- refresh1.json refresh2.json refresh3.json"
check "rotated tokens kept in a 0600 host state file" sh -c "[ \$(stat -c %a oauth-state.json) = 600 ] && grep -q real-access-2 oauth-state.json"
"${C[@]}" -H "Authorization: Bearer $PH_AT" https://api.example.test/after-refresh >/dev/null
sleep 0.3
check "the access placeholder now stands for the rotated token" grep -q "|Bearer real-access-2|-|/after-refresh" seen.log
check "no real token in the proxy log" sh -c "! grep -qE 'real-|sk-real|ghp_real' proxy.log"
check "no transfer waited on a lost readiness event" sh -c "! grep 'without a readiness event' proxy.log"

kill "$PXPID"; wait "$PXPID"
expect_eq "proxy exits cleanly on SIGTERM" 0 "$?"
check "no sanitizer report from the proxy" sh -c "! grep -E 'Sanitizer|runtime error' proxy.log"
tap_done
