#!/bin/bash
# tests/host/proxy_attack.sh - the credential proxy tried as an attacker in
# the guest would try it.  `kvmbox proxy --listen` in front of one Python TLS
# peer that plays every upstream (token endpoints that hand out tokens to any
# request carrying the real refresh token, an echo endpoint that returns the
# request it got, TRACE) and records every request it receives.
#
# Proves, for each shape: the guest never receives a real value (the oracle
# greps everything the client got for "real-"), and where the proxy refuses,
# the upstream received nothing.  Shapes: refresh bodies spelled the way a
# server still reads them (percent-encoding, '+', charset parameters, JSON
# escapes) are performed by kvmbox and answered with placeholders; bodies a
# server could read differently (byte-order mark, repeated keys, nesting,
# comments, trailing data) and other grants carrying a placeholder get 403
# and are never sent; the endpoint's other spellings (case, slashes,
# percent-encoding, dot segments) get 403 when they carry a placeholder;
# placeholders in the head; the refresh token in a header anywhere; TRACE;
# an upstream that echoes the substituted credential; an error answer that
# quotes the refresh token.
set -u
. "$(dirname "$0")/../lib/tap.sh"
. "$(dirname "$0")/../lib/tlspeer.sh"
for c in curl python3 openssl; do need_cmd $c; done
[ -x "$KVMBOX_BIN" ] || skip_all "no kvmbox binary at $KVMBOX_BIN"
KVMBOX_BIN=$(realpath "$KVMBOX_BIN")

tls_scratch kvmbox-proxy-attack
P_PY=$(free_port) P_PX=$(free_port)
cd "$T"
NAMES="api.example.test console.anthropic.com auth.openai.com github.com api.github.com uploads.github.com gist.github.com"
san=$(for n in $NAMES; do printf 'DNS:%s,' "$n"; done); san=${san%,}
tls_make_ca_and_server kvmbox-test-ca api.example.test "$san" >openssl.log 2>&1 ||
	{ cat openssl.log; skip_all "openssl could not make test certificates"; }

cat > peer.py <<'PY'
import gzip, json, os, ssl, sys, threading, urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
T = sys.argv[2]
lock = threading.Lock()
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def record(self, body):
        raw = ("%s %s\n%s\n" % (self.requestline, str(self.headers), body.decode("latin1")))
        with lock:
            open(os.path.join(T, "received.log"), "a").write(raw + "\n----\n")
        return raw.encode("latin1")
    def reply(self, code, data, ctype="text/plain"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def handle_any(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        raw = self.record(body)
        path = self.path
        if path == "/echo" or self.command == "TRACE":
            return self.reply(200, raw)
        if path in ("/echo-gzip", "/echo-gzip-always"):	# compresses when asked (or always)
            if path == "/echo-gzip-always" or "gzip" in self.headers.get("Accept-Encoding", ""):
                z = gzip.compress(raw)
                self.send_response(200)
                self.send_header("Content-Encoding", "gzip")
                self.send_header("Content-Length", str(len(z)))
                self.end_headers()
                self.wfile.write(z)
                return
            return self.reply(200, raw)
        if path == "/echo-chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(0, len(raw), 7):	# the credential split across chunks
                part = raw[i:i + 7]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
            return
        # any spelling of a token endpoint: tokens for anything that holds the real refresh token
        if b"real-refresh" in raw or b"real-codex-refresh" in raw:
            if b"error-please" in raw:
                return self.reply(400, b'{"error":"invalid_grant","error_description":"refresh token real-refresh-1 is revoked","refresh_token":"real-refresh-1"}', "application/json")
            return self.reply(200, json.dumps({"access_token": "real-access-NEW", "refresh_token": "real-refresh-NEW",
                "id_token": "eyJhbGciOiJub25lIn0.eyJlbWFpbCI6ImFAYiJ9.cmVhbC1zaWc", "token_type": "Bearer", "expires_in": 60}).encode(), "application/json")
        if path.startswith("/repositories/") and self.command == "GET":	# kvmbox's lookup of a number
            names = {"7": "alice/allowed", "42": "bob/x"}
            n = path.split("/")[2]
            if n in names:
                return self.reply(200, json.dumps({"id": int(n), "full_name": names[n]}).encode(), "application/json")
            return self.reply(404, b'{"message":"Not Found"}', "application/json")
        if "github.com" in self.headers.get("Host", ""):
            return self.reply(200, b"{}", "application/json")
        self.reply(400, b'{"error":"invalid_request"}', "application/json")
    do_GET = do_POST = do_PUT = do_TRACE = do_PATCH = handle_any
sys.path.insert(0, sys.argv[3])
from tls_http_server import serve
serve(H, sys.argv[1], T)
PY
python3 peer.py "$P_PY" "$T" "$KVMBOX_TOP/tests/lib" >peer.log 2>&1 &
PIDS+=($!)

printf 'real-refresh-1\n' > refresh.txt
printf 'real-access-1\n' > access.txt
printf 'real-codex-refresh\n' > crefresh.txt
printf 'real-codex-access\n' > caccess.txt
export KVMBOX_TEST_API_KEY="real-api-key-123" KVMBOX_TEST_GH="real-gh-token"
PH_API=kvmbox-ph-api PH_GH=kvmbox-ph-github PH_AT=kvmbox-ph-access PH_RT=kvmbox-ph-refresh PH_CAT=kvmbox-ph-caccess PH_CRT=kvmbox-ph-crefresh
CT=()
for n in $NAMES; do CT+=(--connect-to "$n:443:127.0.0.1:$P_PY"); done
KVMBOX_LOG=info "$KVMBOX_BIN" proxy --listen "127.0.0.1:$P_PX" --ca-out "$T/kvmbox-ca.pem" \
	--upstream-ca "$T/ca.pem" "${CT[@]}" \
	--secret "$PH_API=env:KVMBOX_TEST_API_KEY@api.example.test" \
	--secret "$PH_AT=file:$T/access.txt@api.example.test,console.anthropic.com" \
	--secret "$PH_RT=file:$T/refresh.txt@console.anthropic.com" \
	--secret "$PH_CAT=file:$T/caccess.txt@api.example.test" \
	--secret "$PH_CRT=file:$T/crefresh.txt@auth.openai.com" \
	--secret "$PH_GH=env:KVMBOX_TEST_GH@github.com,*.github.com" --repo alice/allowed \
	--oauth "claude=$PH_AT,$PH_RT" --oauth "codex=$PH_CAT,$PH_CRT" >proxy.out 2>proxy.log &
PIDS+=($!)
PXPID=$!
for _ in $(seq 100); do
	[ -s proxy.out ] && python3 -c "import socket,sys; s=socket.socket(); sys.exit(s.connect_ex(('127.0.0.1',$P_PY)))" 2>/dev/null && break
	sleep 0.1
done
check "proxy starts" sh -c "grep -q listening proxy.out || { cat proxy.log; false; }"

C=(curl -sS --max-time 10 --proxy "http://127.0.0.1:$P_PX" --cacert "$T/kvmbox-ca.pem")
TOK=https://console.anthropic.com/v1/oauth/token
n=0
# attempt NAME EXPECTED_STATUS CURL_ARGS...: the status the guest got, the
# oracle on every byte it got, and (for a refusal) that nothing arrived.
attempt() {
	local name=$1 want=$2; shift 2
	n=$((n + 1))
	: > received.log
	local got
	got=$("${C[@]}" -D "out$n.head" -o "out$n.body" -w '%{http_code}' "$@" 2>"out$n.err")
	sleep 0.1
	if grep -qa "real-" "out$n.head" "out$n.body"; then
		not_ok "$name: no real value reaches the guest" "$(cat "out$n.head" "out$n.body")"
	elif [ "$got" != "$want" ]; then
		not_ok "$name: status $want" "got $got: $(head -c 300 "out$n.body")"
	elif [ "${want:0:1}" = 4 ] && [ "$want" != 400 ] && [ -s received.log ]; then
		not_ok "$name: refused and never sent" "$(head -c 300 received.log)"
	else
		ok "$name"
	fi
}
J=(-H 'Content-Type: application/json')
F=(-H 'Content-Type: application/x-www-form-urlencoded')

# ---- refreshes the server reads as refreshes: kvmbox performs them ----
attempt "JSON refresh" 200 "${J[@]}" -d "{\"grant_type\":\"refresh_token\",\"refresh_token\":\"$PH_RT\"}" $TOK
check "the refresh went up with the real token" grep -q '"refresh_token":"real-refresh-1"' received.log
check "the guest got placeholders" grep -q "\"access_token\":\"$PH_AT\"" "out$n.body"
attempt "an HTTP/1.0 refresh answered from the reuse window (once crashed the proxy)" 200 --http1.0 \
	"${J[@]}" -d "{\"grant_type\":\"refresh_token\",\"refresh_token\":\"$PH_RT\"}" $TOK
sleep 10.2	# past the reuse window, so each refresh below goes upstream
attempt "form refresh, percent-encoded key and value" 200 "${F[@]}" \
	-d "grant%5Ftype=refresh%5ftoken&refresh_token=${PH_CRT//-/%2D}" https://auth.openai.com/oauth/token
check "the codex refresh went up canonical, real token inside" grep -q '^grant_type=refresh_token&refresh_token=real-codex-refresh$' received.log
attempt "JSON refresh with \\u escapes and a charset" 200 -H 'Content-Type: application/json; charset=utf-8' \
	-d "{\"grant_type\":\"refresh\\u005ftoken\",\"refresh_token\":\"$PH_CRT\"}" https://auth.openai.com/oauth/token

# ---- bodies a server may read differently, other grants: 403, never sent ----
attempt "byte-order mark before the JSON" 403 "${J[@]}" --data-binary $'\xef\xbb\xbf'"{\"grant_type\":\"refresh_token\",\"refresh_token\":\"$PH_RT\"}" $TOK
attempt "repeated grant_type (JSON)" 403 "${J[@]}" -d "{\"grant_type\":\"authorization_code\",\"grant_type\":\"refresh_token\",\"refresh_token\":\"$PH_RT\"}" $TOK
attempt "repeated refresh_token (form)" 403 "${F[@]}" -d "grant_type=refresh_token&refresh_token=x&refresh_token=$PH_CRT" https://auth.openai.com/oauth/token
attempt "nested JSON" 403 "${J[@]}" -d "{\"grant_type\":\"refresh_token\",\"refresh_token\":\"$PH_RT\",\"x\":{\"y\":1}}" $TOK
attempt "JSON comment" 403 "${J[@]}" -d "{\"grant_type\":\"refresh_token\",/*x*/\"refresh_token\":\"$PH_RT\"}" $TOK
attempt "trailing data after the JSON" 403 "${J[@]}" -d "{\"grant_type\":\"refresh_token\",\"refresh_token\":\"$PH_RT\"}{}" $TOK
attempt "JSON body sent as text/plain" 403 -H 'Content-Type: text/plain' -d "{\"grant_type\":\"refresh_token\",\"refresh_token\":\"$PH_RT\"}" $TOK
attempt "JSON body under a form content type" 403 "${F[@]}" -d "{\"grant_type\":\"refresh_token\",\"refresh_token\":\"$PH_RT\"}" $TOK
attempt "authorization_code grant carrying the refresh placeholder" 403 "${J[@]}" -d "{\"grant_type\":\"authorization_code\",\"code\":\"$PH_RT\"}" $TOK
attempt "token exchange carrying the access placeholder" 403 "${J[@]}" -d "{\"grant_type\":\"urn:ietf:params:oauth:grant-type:token-exchange\",\"subject_token\":\"$PH_AT\"}" $TOK
attempt "refresh with a placeholder in another field" 403 "${J[@]}" -d "{\"grant_type\":\"refresh_token\",\"refresh_token\":\"$PH_RT\",\"client_id\":\"$PH_API\"}" $TOK
attempt "the other provider's refresh placeholder" 403 "${J[@]}" -d "{\"grant_type\":\"refresh_token\",\"refresh_token\":\"$PH_CRT\"}" $TOK
attempt "percent-encoded placeholder in a form" 403 "${F[@]}" -d "grant_type=password&password=${PH_RT//-/%2d}" $TOK
attempt "placeholder in a header of a refresh" 403 "${J[@]}" -H "Authorization: Bearer $PH_AT" -d "{\"grant_type\":\"refresh_token\",\"refresh_token\":\"$PH_RT\"}" $TOK
attempt "placeholder in the query of the endpoint" 403 -X POST "$TOK?refresh_token=$PH_RT"
attempt "refresh sent with PUT" 403 -X PUT "${J[@]}" -d "{\"grant_type\":\"refresh_token\",\"refresh_token\":\"$PH_RT\"}" $TOK

# ---- other spellings of the endpoint ----
for p in /v1/oauth/token/ //v1/oauth/token /V1/OAuth/Token /v1/oauth/%74oken /v1/./oauth/token /v1/x/../oauth/token "/v1/oauth/token;x"; do
	attempt "endpoint spelled $p" 403 --path-as-is "${J[@]}" -d "{\"grant_type\":\"refresh_token\",\"refresh_token\":\"$PH_RT\"}" "https://console.anthropic.com$p"
done

# ---- the refresh token outside the refresh, TRACE, echoes ----
attempt "refresh placeholder in a header to its own host" 200 -H "X-Token: $PH_RT" https://console.anthropic.com/echo
check "the refresh placeholder arrived unchanged" grep -q "X-Token: $PH_RT" received.log
attempt "TRACE with a placeholder" 405 -X TRACE -H "Authorization: Bearer $PH_API" https://api.example.test/
attempt "echoing upstream (Content-Length)" 200 -H "Authorization: Bearer $PH_API" https://api.example.test/echo
check "the echoing upstream did get the real value" grep -q "Bearer real-api-key-123" received.log
check "the echo reached the guest masked" grep -q "Bearer \*\*\*\*\*\*\*\*\*\*\*\*\*\*\*\*" "out$n.body"
attempt "echoing upstream (chunks splitting the value)" 200 -H "Authorization: Bearer $PH_API" https://api.example.test/echo-chunked
attempt "an echo the server would compress (curl --compressed)" 200 --compressed -H "Authorization: Bearer $PH_API" https://api.example.test/echo-gzip
check "a request carrying a real value asked for identity" grep -q "Accept-Encoding: identity" received.log
attempt "an echo compressed although identity was asked for" 502 -H "Authorization: Bearer $PH_API" https://api.example.test/echo-gzip-always
attempt "echo of a Basic credential" 200 -u "user:$PH_API" https://api.example.test/echo
b64=$(printf 'user:%s' "$KVMBOX_TEST_API_KEY" | base64 -w0)
check "the echoed Basic credential did go up" grep -qF "Basic $b64" received.log
check "the echoed Basic credential reached the guest masked, not base64-encoded" sh -c "! grep -qF '${b64:0:20}' out$n.body"
attempt "an error answer quoting the refresh token" 400 "${J[@]}" -H "X-Please: error-please" -d "{\"grant_type\":\"refresh_token\",\"refresh_token\":\"$PH_RT\"}" $TOK
check "the error code still reaches the guest" grep -q invalid_grant "out$n.body"

# ---- GitHub writes off the allow-list, however spelled: 403, never sent ----
G=(-H "Authorization: token $PH_GH" -H 'Content-Type: application/json')
attempt "REST write to a listed repository" 200 -X POST "${G[@]}" -d '{}' https://api.github.com/repos/alice/allowed/issues
for p in /repos/alice/allowed/../../bob/x/issues /repos/alice%2Fallowed/../bob/x/issues //repos/bob/x/issues \
	/REPOS/bob/x/issues /repos/b%6Fb/x/issues /user/keys /user/repos /gists /orgs/acme/repos; do
	attempt "REST write to $p" 403 --path-as-is -X POST "${G[@]}" -d '{"key":"ssh-ed25519 AAAA"}' "https://api.github.com$p"
done
# a repository named by its number: looked up with GET /repositories/N first
attempt "REST write through /repositories/N of a listed repository" 200 -X POST "${G[@]}" -d '{}' https://api.github.com/repositories/7/issues
check "the write arrived after the lookup, with the real token" sh -c "grep -q '^GET /repositories/7 ' received.log && grep -q '^POST /repositories/7/issues ' received.log && grep -q 'real-gh-token' received.log"
n=$((n + 1)); : > received.log
got=$("${C[@]}" -o "out$n.body" -w '%{http_code}' -X POST "${G[@]}" -d '{}' https://api.github.com/repositories/42/issues 2>&1)
sleep 0.1
if [ "$got" = 403 ] && grep -q 'bob/x' "out$n.body" && ! grep -q '^POST' received.log; then
	ok "REST write through /repositories/N of another repository: 403 naming it, only the lookup sent"
else not_ok "REST write through /repositories/N of another repository: 403 naming it, only the lookup sent" "$got $(cat out$n.body) $(head -3 received.log)"; fi
n=$((n + 1)); : > received.log
got=$("${C[@]}" -o "out$n.body" -w '%{http_code}' -X POST "${G[@]}" -d '{}' https://api.github.com/repositories/5/issues 2>&1)
sleep 0.1
if [ "$got" = 403 ] && ! grep -q '^POST' received.log; then
	ok "REST write through /repositories/N that GitHub does not show: 403, only the lookup sent"
else not_ok "REST write through /repositories/N that GitHub does not show: 403, only the lookup sent" "$got $(cat out$n.body)"; fi
attempt "release asset upload to another repository" 403 -X POST "${G[@]}" -d x "https://uploads.github.com/repos/bob/x/releases/1/assets?name=a"
attempt "git push to a gist" 403 -X POST "${G[@]}" -d x https://gist.github.com/abc123.git/git-receive-pack
for p in /bob/x.git/git-receive-pack //bob/x/git-receive-pack /alice/allowed/../../bob/x/git-receive-pack \
	/alice/allowed/%2e%2e/%2e%2e/bob/x/git-receive-pack /bob/x/info/lfs/objects/batch; do
	attempt "git smart HTTP $p" 403 --path-as-is -X POST "${G[@]}" -d x "https://github.com$p"
done
attempt "receive-pack advertisement, encoded service" 403 "${G[@]}" "https://github.com/bob/x/info/refs?service=git%2Dreceive-pack"
attempt "GraphQL mutation over GET" 403 "${G[@]}" "https://api.github.com/graphql?query=mutation%7BaddStar%7D"
gqa() { attempt "GraphQL: $1" 403 -X POST "${G[@]}" --data-binary "$2" https://api.github.com/graphql; }
gqa "mutation hidden behind a quote in a comment" '{"query":"# "
mutation { createRepository(input:{name:"x",visibility:PUBLIC}) { repository { id } } }"}'
gqa "a query and a mutation in one document" '{"query":"query A { viewer { login } } mutation B { createRepository(input:{name:"x"}) { clientMutationId } }","operationName":"B"}'
gqa "repository named with an escaped slash" '{"query":"mutation { createCommitOnBranch(input:{branch:{repositoryNameWithOwner:"bob\u002fx",branchName:"main"},expectedHeadOid:"0",message:{headline:"x"}}) { commit { oid } } }"}'
gqa "repository named in a block string" '{"query":"mutation { createCommitOnBranch(input:{branch:{repositoryNameWithOwner:"""
  bob/x
""",branchName:"main"}}) { commit { oid } } }"}'
gqa "repository in a variable default" '{"query":"mutation($r:String="bob/x") { createCommitOnBranch(input:{branch:{repositoryNameWithOwner:$r}}) { commit { oid } } }"}'
gqa "body with a byte-order mark" $'ï»¿''{"query":"mutation { createRepository(input:{name:"x"}) { clientMutationId } }"}'
gqa "a mutation naming no repository" '{"query":"mutation { createRepository(input:{name:"x"}) { clientMutationId } }"}'

# ---- the egress profile's names: a locked proxy for claude, one more domain ----
P_PX3=$(free_port) P_TP3=$(free_port)
"$KVMBOX_BIN" proxy --listen "127.0.0.1:$P_PX3" --ca-out "$T/ca3.pem" --upstream-ca "$T/ca.pem" "${CT[@]}" \
	--transparent "127.0.0.1:$P_TP3=127.0.0.1:$P_PY" --profile locked --agent claude --allow-domain api.example.test >proxy3.out 2>proxy3.log &
PIDS+=($!)
PX3PID=$!
for _ in $(seq 100); do [ -s proxy3.out ] && break; sleep 0.1; done
C_SAVED=("${C[@]}")
C=(curl -sS --max-time 10 --proxy "http://127.0.0.1:$P_PX3" --cacert "$T/ca3.pem")
attempt "locked: the --allow-domain name passes" 200 https://api.example.test/echo
attempt "locked: the agent's provider passes" 200 https://console.anthropic.com/echo
# connect_refused NAME TARGET: a CONNECT to TARGET gets a 403 whose body
# says why (curl does not keep a refused CONNECT's body), nothing sent up.
connect_refused() {
	: > received.log
	local reply
	reply=$(exec 3<>"/dev/tcp/127.0.0.1/$P_PX3" && printf 'CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n' "$2" "$2" >&3 &&
		timeout 5 cat <&3)
	if [ "${reply:0:12}" = "HTTP/1.1 403" ] && [ ! -s received.log ]; then ok "$1"
	else not_ok "$1" "$(printf '%s' "$reply" | head -c 300)"; fi
	printf '%s' "$reply" > connect.out
}
connect_refused "locked: GitHub is refused (not the provider)" github.com:443
check "the 403 names the profile and the flag that would allow it" \
	grep -q "not allowed by the sandbox's locked egress profile (--allow-domain github.com allows it)" connect.out
connect_refused "locked: a subdomain of a built-in name is refused (they match exactly)" x.console.anthropic.com:443
connect_refused "locked: the allowed name as a prefix of another is refused" api.example.test.evil.net:443
connect_refused "locked: an IP literal is refused (no name judged)" "127.0.0.1:$P_PY"
connect_refused "locked: the proxy's own address is refused" "127.0.0.1:$P_PX3"
# A handed-over flow (as from a VM) to an address the stack allowed, whose
# TLS server name is outside the profile: one CDN address serves many names.
tp=$(curl -sS --max-time 10 --cacert "$T/ca3.pem" --resolve "github.com:$P_TP3:127.0.0.1" \
	-H "Host: github.com:$P_PY" "https://github.com:$P_TP3/echo" 2>&1)
case $tp in *"not allowed by the sandbox's locked egress profile"*) ok "a handed-over flow whose server name is outside the profile gets the 403" ;;
*) not_ok "a handed-over flow whose server name is outside the profile gets the 403" "$tp" ;; esac
connect_refused "locked: a name under the self-test endpoint's is no endpoint" x.self-test.kvmbox.invalid:443
check "its 403 says what the name is" grep -q "is the launch self-test's name" connect.out
# the self-test endpoint on a handed-over flow, as the guest reaches it
: > received.log
tp=$(curl -sS --max-time 10 --cacert "$T/ca3.pem" --resolve "self-test.kvmbox.invalid:$P_TP3:127.0.0.1" \
	-H "Host: console.anthropic.com" "https://self-test.kvmbox.invalid:$P_TP3/" 2>&1)
expect_eq "self-test endpoint on a handed-over flow: the provider is judged" \
	"kvmbox self-test: console.anthropic.com: substituted=0 unchanged=0" "$tp"
tp=$(curl -sS --max-time 10 --cacert "$T/ca3.pem" --resolve "self-test.kvmbox.invalid:$P_TP3:127.0.0.1" \
	-H "Host: github.com" -X POST "https://self-test.kvmbox.invalid:$P_TP3/bob/x.git/git-receive-pack" 2>&1)
case $tp in *"not allowed by the sandbox's locked egress profile"*) ok "self-test endpoint on a handed-over flow: GitHub gets the locked profile's 403" ;;
*) not_ok "self-test endpoint on a handed-over flow: GitHub gets the locked profile's 403" "$tp" ;; esac
check "self-test endpoint on a handed-over flow: nothing was dialled" sh -c "! [ -s received.log ]"
C=("${C_SAVED[@]}")
kill "$PX3PID"; wait "$PX3PID"
expect_eq "the locked proxy exits cleanly on SIGTERM" 0 "$?"

# ---- availability: 1,200 half-open connections under a 1,024-descriptor limit ----
P_PX2=$(free_port)
(ulimit -n 1024; exec "$KVMBOX_BIN" proxy --listen "127.0.0.1:$P_PX2" --ca-out "$T/ca2.pem" \
	--upstream-ca "$T/ca.pem" "${CT[@]}" >proxy2.out 2>proxy2.log) &
PIDS+=($!)
PX2PID=$!
for _ in $(seq 100); do [ -s proxy2.out ] && break; sleep 0.1; done
cat > flood.py <<'PY'
import socket, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
socks = []
for i in range(n):
    s = socket.socket(); s.settimeout(2)
    try: s.connect(("127.0.0.1", port)); socks.append(s)
    except OSError: pass
print(len(socks), flush=True)
time.sleep(float(sys.argv[3]))
PY
python3 flood.py "$P_PX2" 1200 20 > flood.out 2>&1 &
FLOODPID=$!
PIDS+=($FLOODPID)
for _ in $(seq 100); do [ -s flood.out ] && break; sleep 0.1; done
t0=$(date +%s%N)
got=$(curl -sS --max-time 10 --proxy "http://127.0.0.1:$P_PX2" --cacert "$T/ca2.pem" -o /dev/null -w '%{http_code}' \
	https://api.example.test/echo 2>&1)
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
if [ "$got" = 200 ] && [ "$ms" -le 1000 ]; then ok "a new client is served within 1 s beside $(cat flood.out) half-open connections (${ms} ms)"
else not_ok "a new client is served within 1 s beside 1,200 half-open connections" "status $got after ${ms} ms; $(tail -3 proxy2.log)"; fi
kill "$FLOODPID" 2>/dev/null
check "the shedding is logged once" sh -c "[ \$(grep -c 'closing the oldest connections' proxy2.log) = 1 ]"
kill "$PX2PID"; wait "$PX2PID"
expect_eq "the flooded proxy exits cleanly on SIGTERM" 0 "$?"

# ---- the self-test endpoint (proxy.h: PROXY_CHECK_NAME): judged, never dialled ----
CK=https://self-test.kvmbox.invalid
# ask NAME STATUS BODY-REGEX CURL_ARGS...: attempt's checks, the answer's
# line, and that nothing reached the upstream even when the answer is 200
ask() {
	local name=$1 want=$2 re=$3; shift 3
	attempt "self-test endpoint: $name" "$want" "$@"
	if ! grep -qE "$re" "out$n.body"; then not_ok "self-test endpoint: $name: answer" "$(head -c 300 "out$n.body")"
	elif [ -s received.log ]; then not_ok "self-test endpoint: $name: nothing sent upstream" "$(head -c 300 received.log)"
	else ok "self-test endpoint: $name: answer and nothing sent upstream"; fi
}
ask "a placeholder toward its own host would be substituted" 200 '^kvmbox self-test: api.example.test: substituted=1 unchanged=0$' \
	-H 'Host: api.example.test' -H "Authorization: Bearer $PH_API" $CK/
ask "the same inside a Basic credential" 200 'substituted=1 unchanged=0$' -H 'Host: api.example.test' -u "user:$PH_API" $CK/
ask "toward a name under the endpoint's it would not" 200 '^kvmbox self-test: api.example.test.self-test.kvmbox.invalid: substituted=0 unchanged=1$' \
	-H 'Host: api.example.test.self-test.kvmbox.invalid' -H "Authorization: Bearer $PH_API" $CK/
ask "toward a name that begins with its host's it would not" 200 'substituted=0 unchanged=1$' \
	-H 'Host: api.example.test.evil.example' -H "Authorization: Bearer $PH_API" $CK/
ask "the refresh placeholder toward its own host would not" 200 'substituted=0 unchanged=1$' \
	-H 'Host: console.anthropic.com' -H "Authorization: Bearer $PH_RT" $CK/
ask "the token endpoint takes no header substitution and performs no refresh" 200 'substituted=0 unchanged=0$' \
	-X POST -H 'Host: console.anthropic.com' -H "Authorization: Bearer $PH_AT" $CK/v1/oauth/token
ask "a push to a repository off the allow-list gets its 403" 403 'bob/x' \
	-X POST -H 'Host: github.com' -H "Authorization: Bearer $PH_GH" $CK/bob/x.git/git-receive-pack
ask "a push to an allow-listed one would carry the token" 200 'substituted=1 unchanged=0$' \
	-X POST -H 'Host: github.com' -H "Authorization: Bearer $PH_GH" $CK/alice/allowed.git/git-receive-pack
ask "a request with a body is refused" 413 'no body' -H 'Host: api.example.test' -d x $CK/
ask "a request without Host is refused" 400 'malformed|Host' -H 'Host:' $CK/
: > received.log
two=$("${C[@]}" -H 'Host: api.example.test' -H "Authorization: Bearer $PH_API" $CK/a $CK/b 2>&1)
expect_eq "self-test endpoint: two requests on one connection, both answered" \
	"$(printf 'kvmbox self-test: api.example.test: substituted=1 unchanged=0\n%.0s' 1 2)" "$two"
check "self-test endpoint: neither was sent upstream" sh -c "! [ -s received.log ]"
ask "the endpoint's name over plain HTTP in a tunnel is refused" 403 'self-test' --proxytunnel http://self-test.kvmbox.invalid/
check "the endpoint's answers are never values" sh -c "! grep -l 'real-' out*.body"
check "no real value in the proxy log" sh -c "! grep -q 'real-' proxy.log"
kill "$PXPID"; wait "$PXPID"
expect_eq "proxy exits cleanly on SIGTERM" 0 "$?"
check "no sanitizer report from the proxies" sh -c "! grep -E 'Sanitizer|runtime error' proxy.log proxy2.log proxy3.log"
tap_done
