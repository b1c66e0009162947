#!/bin/bash
# tests/host/proxy_graphql.sh - GitHub GraphQL mutations that carry node ids
# (what `gh pr create`, `gh pr comment`, `gh pr merge` send) through
# `kvmbox proxy`, against a fake GitHub GraphQL endpoint on loopback: nginx
# serving TLS as api.github.com, proxying /graphql to a small Python server
# (tests/host/proxy_graphql_fake.py) that answers nodes(ids:) from a fixed
# table, records every mutation it receives and the Authorization it saw.
#
# Proves: a mutation whose node ids belong to a listed repository reaches the
# server; one on another repository's id gets 403 naming it and --repo, and
# never reaches the server; an id GitHub does not resolve, or one that is no
# repository's (an organization), is refused; reviewers (users) ride along
# with a listed pull request; each id is looked up once (cache); the lookup
# carries the real token, the guest and the log never see it; a lookup that
# stalls gives the guest 504 in bounded time and the mutation is not sent;
# gh itself (pr comment, api graphql) works on a listed repository and shows
# the 403 naming the other.
set -u
. "$(dirname "$0")/../lib/tap.sh"
. "$(dirname "$0")/../lib/tlspeer.sh"
need_root
for c in nginx curl python3 openssl; do need_cmd $c; done
[ -x "$KVMBOX_BIN" ] || skip_all "no kvmbox binary at $KVMBOX_BIN"
KVMBOX_BIN=$(realpath "$KVMBOX_BIN")
FAKE=$(realpath "$(dirname "$0")/proxy_graphql_fake.py")

tls_scratch kvmbox-proxy-gql

P_NGX=$(free_port) P_PY=$(free_port) P_PX=$(free_port)
cd "$T"
tls_make_ca_and_server kvmbox-test-ca api.github.com DNS:api.github.com >openssl.log 2>&1 ||
	{ cat openssl.log; skip_all "openssl could not make test certificates"; }

{ nginx_conf_head "$T" 64; cat <<NGX
	access_log off;
	server {
		listen 127.0.0.1:$P_NGX ssl;
		ssl_certificate $T/srv.pem; ssl_certificate_key $T/srv.key;
		location /graphql { proxy_pass http://127.0.0.1:$P_PY; proxy_read_timeout 30s; }
		location / { return 404 "no\n"; }
	}
}
NGX
} >nginx.conf
nginx -c "$T/nginx.conf" -e "$T/nginx-error.log" 2>nginx.start.log || { cat nginx.start.log; skip_all "nginx did not start"; }

export KVMBOX_TEST_GH="ghp_realgithubtoken"
PH=kvmbox-placeholder-gh
python3 "$FAKE" "$P_PY" "$T" "token $KVMBOX_TEST_GH" >fake.log 2>&1 &
PIDS+=($!)
KVMBOX_LOG=info "$KVMBOX_BIN" proxy --listen "127.0.0.1:$P_PX" --ca-out "$T/kvmbox-ca.pem" \
	--upstream-ca "$T/ca.pem" --connect-to "api.github.com:443:127.0.0.1:$P_NGX" \
	--secret "$PH=env:KVMBOX_TEST_GH@api.github.com" --repo alice/allowed \
	--lookup-timeout 2 >proxy.out 2>proxy.log &
PXPID=$!
PIDS+=($PXPID)
for _ in $(seq 100); do
	[ -s proxy.out ] && [ -f nginx.pid ] && [ -s fake.ready ] && break
	sleep 0.1
done
check "proxy, nginx and the fake GraphQL server start" sh -c "grep -q listening proxy.out && test -s fake.ready || { cat proxy.log fake.log; false; }"

C=(curl -sS --max-time 15 --proxy "http://127.0.0.1:$P_PX" --cacert "$T/kvmbox-ca.pem"
   -H "Authorization: token $PH" -H 'Content-Type: application/json')
# post BODY: "STATUS BODY" of one GraphQL request through the proxy
post() {
	local out
	out=$("${C[@]}" -w '\n%{http_code}' --data-binary "$1" https://api.github.com/graphql 2>&1)
	printf '%s %s' "${out##*$'\n'}" "${out%$'\n'*}"
}
lookups() { cat lookups.count 2>/dev/null || echo 0; }
received() { grep -c "$1" mutations.log 2>/dev/null; }

# gh pr create: createPullRequest(input: $input) with the repository's node id
CREATE='{"query":"mutation PullRequestCreate($input:CreatePullRequestInput!){createPullRequest(input:$input){pullRequest{id url}}}","variables":{"input":{"repositoryId":"%s","baseRefName":"main","headRefName":"feature","title":"%s","body":"b"}}}'
out=$(post "$(printf "$CREATE" R_allowed create-allowed)")
expect_eq "createPullRequest on a listed repository's id goes through" "200 {\"data\":{\"ok\":true}}" "$out"
expect_eq "the server received that mutation" 1 "$(received create-allowed)"
expect_eq "one nodes(ids:) lookup was made" 1 "$(lookups)"

out=$(post "$(printf "$CREATE" R_other create-other)")
case $out in "403 "*"bob/other"*"--repo bob/other"*) ok "createPullRequest on another repository's id gets 403 naming it";;
	*) not_ok "createPullRequest on another repository's id gets 403 naming it" "$out";; esac
expect_eq "the refused mutation never reached the server" 0 "$(received create-other)"

# gh pr comment: addComment with the pull request's id, inline literal this time
out=$(post '{"query":"mutation { addComment(input: {subjectId: \"PR_allowed\", body: \"comment-allowed\"}) { commentEdge { node { url } } } }"}')
expect_eq "addComment on a listed repository's pull request goes through" "200 {\"data\":{\"ok\":true}}" "$out"
expect_eq "the server received the comment" 1 "$(received comment-allowed)"
out=$(post '{"query":"mutation($id:ID!){ addComment(input: {subjectId: $id, body: \"comment-other\"}) { clientMutationId } }","variables":{"id":"I_other"}}')
case $out in "403 "*"bob/other"*) ok "addComment on another repository's issue gets 403";;
	*) not_ok "addComment on another repository's issue gets 403" "$out";; esac

# gh pr merge: mergePullRequest(input: {pullRequestId})
out=$(post '{"query":"mutation PullRequestMerge($input:MergePullRequestInput!){mergePullRequest(input:$input){clientMutationId}}","variables":{"input":{"pullRequestId":"PR_allowed","mergeMethod":"SQUASH","clientMutationId":"merge-allowed"}}}')
expect_eq "mergePullRequest on a listed pull request goes through" "200 {\"data\":{\"ok\":true}}" "$out"

# unresolvable and not repository-owned
out=$(post "$(printf "$CREATE" R_nosuch create-nosuch)")
case $out in "403 "*"R_nosuch could not be resolved"*) ok "an id GitHub does not resolve is refused";;
	*) not_ok "an id GitHub does not resolve is refused" "$out";; esac
out=$(post '{"query":"mutation($i:UpdateTeamsRepositoryInput!){ updateTeamsRepository(input:$i) { clientMutationId } }","variables":{"i":{"repositoryId":"R_allowed","teamIds":["O_org"]}}}')
case $out in "403 "*"O_org (type Organization) is not part of a repository"*) ok "an organization's id is refused, naming its type";;
	*) not_ok "an organization's id is refused, naming its type" "$out";; esac
expect_eq "neither reached the server" 0 "$(( $(received create-nosuch) + $(received updateTeamsRepository) ))"

# reviewers are users: they ride along with a listed pull request, not alone
out=$(post '{"query":"mutation($i:RequestReviewsInput!){ requestReviews(input:$i) { clientMutationId } }","variables":{"i":{"pullRequestId":"PR_allowed","userIds":["U_reviewer"],"union":true,"clientMutationId":"reviews-allowed"}}}')
expect_eq "requestReviews: a listed pull request with a user id goes through" "200 {\"data\":{\"ok\":true}}" "$out"
out=$(post '{"query":"mutation { followUser(input:{userId:\"U_reviewer\"}) { clientMutationId } }"}')
case $out in "403 "*"names no repository"*) ok "a mutation on a user alone is refused";;
	*) not_ok "a mutation on a user alone is refused" "$out";; esac

# the cache: ids already resolved are not looked up again
n0=$(lookups)
out=$(post "$(printf "$CREATE" R_allowed create-again)")
out2=$(post '{"query":"mutation { a: addComment(input:{subjectId:\"PR_allowed\",body:\"x\"}){clientMutationId} b: addComment(input:{subjectId:\"PR_allowed\",body:\"y\"}){clientMutationId} }"}')
expect_eq "repeated ids go through without a new lookup" "200 200 $n0" "${out%% *} ${out2%% *} $(lookups)"
expect_eq "the nodes queried so far, each once" "I_other O_org PR_allowed R_allowed R_nosuch R_other U_reviewer" \
	"$(tr ' ' '\n' <lookups.ids | sort | tr '\n' ' ' | sed 's/ $//')"
out=$(post "$(printf "$CREATE" R_other create-other-2)")
expect_eq "a refused id is refused again from the cache" "403 $n0" "${out%% *} $(lookups)"

# keep-alive: two mutations needing lookups on one guest connection
W=(-w '%{http_code} %{num_connects}\n' -o /dev/null)
out=$("${C[@]}" "${W[@]}" --data-binary '{"query":"mutation { addComment(input:{subjectId:\"PR_two\",body:\"ka-1\"}){clientMutationId} }"}' \
	https://api.github.com/graphql --next "${C[@]:1}" "${W[@]}" \
	--data-binary '{"query":"mutation { addComment(input:{subjectId:\"PR_three\",body:\"ka-2\"}){clientMutationId} }"}' \
	https://api.github.com/graphql 2>&1 | tr '\n' ' ')
expect_eq "two looked-up mutations on one keep-alive connection" "200 1 200 0 " "$out"
expect_eq "both reached the server" 2 "$(( $(received ka-1) + $(received ka-2) ))"

# the lookup carried the real token; nobody else saw it
expect_eq "every request the server got carried the real token" "0" "$(cat badauth.count 2>/dev/null || echo 0)"
check "no real token in the proxy log" sh -c "! grep -q ghp_real proxy.log"

# a stalled lookup: 504 in bounded time, the mutation not sent, the proxy still serves
t0=$(date +%s%N)
out=$(post "$(printf "$CREATE" R_stall create-stall)")
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
case $out in "504 "*"did not answer the node id lookup"*) ok "a stalled lookup gives 504";;
	*) not_ok "a stalled lookup gives 504" "$out";; esac
if [ "$ms" -lt 6000 ]; then ok "within bounded time (${ms} ms, limit 2 s)"; else not_ok "within bounded time" "${ms} ms"; fi
sleep 4	# the fake answers the stalled lookup late; nothing may follow it
expect_eq "the stalled mutation was never sent" 0 "$(received create-stall)"
out=$(post "$(printf "$CREATE" R_allowed create-after-stall)")
expect_eq "the proxy serves on after a stalled lookup" "200 {\"data\":{\"ok\":true}}" "$out"

# gh itself (Go's TLS and proxy handling, gh's own payloads and error display)
if command -v gh >/dev/null; then
	GH=(env HTTPS_PROXY="http://127.0.0.1:$P_PX" SSL_CERT_FILE="$T/kvmbox-ca.pem" GH_TOKEN="$PH" HOME="$T"
	    GH_NO_UPDATE_NOTIFIER=1 GH_PROMPT_DISABLED=1 NO_COLOR=1 timeout 20 gh)
	out=$("${GH[@]}" pr comment 1 --repo alice/allowed --body gh-comment-allowed 2>&1)
	expect_eq "gh pr comment on a listed repository works" "https://github.com/alice/allowed/pull/1#issuecomment-1" "$out"
	expect_eq "the server received gh's addComment" 1 "$(received gh-comment-allowed)"
	out=$("${GH[@]}" pr comment 1 --repo bob/other --body gh-comment-other 2>&1)
	case $out in *"403"*"repository bob/other refused"*"--repo bob/other"*) ok "gh pr comment on another repository shows the 403 naming it";;
		*) not_ok "gh pr comment on another repository shows the 403 naming it" "$out";; esac
	expect_eq "gh's refused comment never reached the server" 0 "$(received gh-comment-other)"
	out=$("${GH[@]}" api graphql -f query='mutation($id:ID!){mergePullRequest(input:{pullRequestId:$id}){clientMutationId}}' \
		-f id=PR_other 2>&1)
	case $out in *"repository bob/other refused"*) ok "gh api graphql mutation on another repository's id is refused";;
		*) not_ok "gh api graphql mutation on another repository's id is refused" "$out";; esac
else
	skip "gh pr comment / gh api graphql" "gh is not installed"
fi

# queries are never held
out=$(post '{"query":"query { node(id:\"R_other\") { id } }"}')
expect_eq "a query naming another repository's id passes untouched" "200 {\"data\":{}}" "$out"

check "proxy survived" kill -0 "$PXPID"
kill "$PXPID"; wait "$PXPID"
expect_eq "proxy exits cleanly on SIGTERM" 0 "$?"
check "no sanitizer report from the proxy" sh -c "! grep -E 'Sanitizer|runtime error' proxy.log"
tap_done
