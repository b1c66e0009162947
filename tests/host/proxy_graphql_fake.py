# tests/host/proxy_graphql_fake.py - a fake GitHub GraphQL endpoint for
# tests/host/proxy_graphql.sh (plain HTTP behind nginx's TLS).
#
#   python3 proxy_graphql_fake.py PORT DIR EXPECTED_AUTHORIZATION
#
# nodes(ids:) queries are answered from NODES (unknown ids: null plus a
# NOT_FOUND error, as GitHub does); "R_stall" answers only after 5 s.
# gh's PullRequestByNumber query gets the node id of pull request 1 of
# alice/allowed or bob/other (PULLS).
# Mutations are appended to DIR/mutations.log (one JSON line each) and
# answered {"data":{"ok":true}}; other queries get {"data":{}}.  Counts:
# DIR/lookups.count, the ids asked in DIR/lookups.ids, and requests whose
# Authorization was not EXPECTED_AUTHORIZATION in DIR/badauth.count (those
# get 401).  DIR/fake.ready is written once listening.
import json, os, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, DIR, AUTH = int(sys.argv[1]), sys.argv[2], sys.argv[3]
lock = threading.Lock()


def repo(name):
    return {"repository": {"nameWithOwner": name}}


NODES = {
    "R_allowed": {"__typename": "Repository", "nameWithOwner": "alice/allowed"},
    "R_other": {"__typename": "Repository", "nameWithOwner": "bob/other"},
    "R_stall": {"__typename": "Repository", "nameWithOwner": "alice/allowed"},
    "PR_allowed": {"__typename": "PullRequest", **repo("alice/allowed")},
    "PR_two": {"__typename": "PullRequest", **repo("Alice/Allowed")},
    "PR_three": {"__typename": "PullRequest", **repo("alice/allowed")},
    "PR_other": {"__typename": "PullRequest", **repo("bob/other")},
    "I_other": {"__typename": "Issue", **repo("bob/other")},
    "U_reviewer": {"__typename": "User"},
    "O_org": {"__typename": "Organization"},
}

PULLS = {"alice/allowed": "PR_allowed", "bob/other": "PR_other"}	# pull request 1 of each


def bump(name, add=1):
    p = os.path.join(DIR, name)
    with lock:
        n = int(open(p).read()) if os.path.exists(p) else 0
        open(p, "w").write(str(n + add))


class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self, code, obj):
        data = json.dumps(obj, separators=(",", ":")).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.headers.get("Authorization") != AUTH:
            bump("badauth.count")
            return self.reply(401, {"message": "Bad credentials"})
        req = json.loads(body)
        q = req.get("query", "")
        if "nodes(ids:$ids)" in q:
            ids = req["variables"]["ids"]
            bump("lookups.count")
            with lock:
                with open(os.path.join(DIR, "lookups.ids"), "a") as f:
                    f.write(" ".join(ids) + " ")
            if "R_stall" in ids:
                time.sleep(5)
            nodes = [NODES.get(i) for i in ids]
            out = {"data": {"nodes": nodes}}
            missing = [i for i in ids if i not in NODES]
            if missing:
                out["errors"] = [{"type": "NOT_FOUND", "path": ["nodes"],
                                  "message": "Could not resolve to a node with the global id of '%s'" % m}
                                 for m in missing]
            return self.reply(200, out)
        if q.lstrip().startswith("mutation"):
            with lock:
                with open(os.path.join(DIR, "mutations.log"), "a") as f:
                    f.write(body.decode() + "\n")
            if "CommentCreate" in q:	# what gh pr comment reads back
                return self.reply(200, {"data": {"addComment": {"commentEdge": {"node": {
                    "url": "https://github.com/alice/allowed/pull/1#issuecomment-1"}}}}})
            return self.reply(200, {"data": {"ok": True}})
        if "pullRequest(number:" in q:	# gh pr comment's PullRequestByNumber
            v = req.get("variables", {})
            pr = PULLS.get("%s/%s" % (v.get("owner"), v.get("repo")))
            return self.reply(200, {"data": {"repository": {"pullRequest": {
                "id": pr, "number": v.get("pr_number"), "url": "https://github.com/x/y/pull/1"}}}})
        with lock:
            with open(os.path.join(DIR, "queries.log"), "a") as f:
                f.write(body.decode() + "\n")
        return self.reply(200, {"data": {}})


srv = ThreadingHTTPServer(("127.0.0.1", PORT), H)
srv.daemon_threads = True
open(os.path.join(DIR, "fake.ready"), "w").write("ready\n")
srv.serve_forever()
