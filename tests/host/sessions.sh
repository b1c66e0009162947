#!/bin/bash
# tests/host/sessions.sh - the named sandboxes' commands as a user meets
# them without a VM (launch/session/session.h): the runtime folder made
# 0700, `kvmbox ps` and `ps --json` with none and with one, a launch
# recorded under the name derived from its project and agent (it ends
# early here: no kernel) and under --name, bad names refused before
# anything, inspect/stop/rm/resume of a session that is not there or not
# running (or not suspended), rm of an ended one.  Running, killed and reused-pid sessions:
# tests/unit/test_launch_session.c; a live one stopped: tests/e2e/agent_launch.sh.
set -u
. "$(dirname "$0")/../lib/tap.sh"
[ -x "$KVMBOX_BIN" ] || skip_all "kvmbox not built"
need_cmd python3
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
mkdir -p "$T/home" "$T/rt" "$T/My Proj" "$T/cache"
export HOME=$T/home XDG_RUNTIME_DIR=$T/rt KVMBOX_CACHE=$T/cache
unset KVMBOX_KERNEL KVMBOX_INITRD XDG_STATE_HOME XDG_CONFIG_HOME
K=$KVMBOX_BIN

out=$("$K" ps 2>&1); rc=$?
expect_eq "ps with no sandbox: the header only" "0 NAME                     AGENT      STATE        UPTIME   MEMORY    CPU       PROJECT" "$rc $out"
expect_eq "the runtime folder is made 0700" "700 700" "$(stat -c %a "$T/rt/kvmbox") $(stat -c %a "$T/rt/kvmbox/sessions")"
expect_eq "ps --json with none: an empty array" "[]" "$("$K" ps --json | tr -d ' \n')"

# a launch is recorded (it ends at once here: no guest kernel)
(cd "$T/My Proj" && timeout 20 "$K" claude -p hi >/dev/null 2>&1)
out=$("$K" ps)
if printf '%s\n' "$out" | grep -qx "my-proj-claude  *claude  *exited ([0-9]*)  *-  *-  *-  *$T/My Proj"; then
	ok "the launch is listed under its project's and agent's name, exited"
else
	not_ok "the launch is listed under its project's and agent's name, exited" "$out"
fi
j=$("$K" inspect my-proj-claude)
expect_eq "inspect: its record as JSON" "my-proj-claude claude exited $T/My Proj default permissive 2048 2" \
	"$(printf '%s' "$j" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["name"], d["agent"], d["state"], d["project"], d["image"], d["egress_profile"], d["memory_mib"], d["cpus"])')"
expect_eq "the record is 0600" 600 "$(stat -c %a "$T/rt/kvmbox/sessions/my-proj-claude/state.json")"
(cd "$T/My Proj" && timeout 20 "$K" claude --name mine --memory 1G -p hi >/dev/null 2>&1)
expect_eq "--name names it" "mine 1024" \
	"$("$K" ps --json | python3 -c 'import json,sys; print(*[d["name"] + " " + str(d["memory_mib"]) for d in json.load(sys.stdin) if d["name"] == "mine"])')"
(cd "$T/My Proj" && timeout 20 "$K" claude -p hi >/dev/null 2>&1)
expect_eq "an ended sandbox's name is taken again, not numbered" \
	"mine my-proj-claude" "$("$K" ps --json | python3 -c 'import json,sys; print(*[d["name"] for d in json.load(sys.stdin)])')"

# one NAME WANT_STATUS WANT_LINE CMD...: the status and the one line on stderr
one() {
	local name=$1 want=$2 line=$3 err rc
	shift 3
	err=$(cd "$T/My Proj" && timeout 20 "$K" "$@" 2>&1 >/dev/null </dev/null); rc=$?
	expect_eq "$name" "$want $line" "$rc $err"
}
one "--name with an upper-case letter: status 2 before anything" 2 \
	"kvmbox: claude: --name Bad: a sandbox name is 1 to 48 of a-z, 0-9, '.', '_', '-', starting with a letter or digit" \
	claude --name Bad -p hi
one "--name with a slash" 2 \
	"kvmbox: claude: --name ../x: a sandbox name is 1 to 48 of a-z, 0-9, '.', '_', '-', starting with a letter or digit" \
	claude --name ../x
one "stop: no such sandbox" 1 "kvmbox: stop: no session named nosuch (kvmbox ps lists them)" stop nosuch
one "stop: an ended one is not running" 1 "kvmbox: stop: mine is not running (exited)" stop mine
one "stop: a bad --time" 2 "kvmbox: stop: --time wants seconds, 0 to 3600, got 'soon'" stop mine --time soon
one "stop: no name" 2 "kvmbox: stop: which session? (try kvmbox stop --help)" stop
one "stop --suspend: an ended one is not running" 1 "kvmbox: stop: mine is not running (exited)" stop --suspend mine
one "resume: no such sandbox" 1 "kvmbox: resume: no session named nosuch (kvmbox ps lists them)" resume nosuch
one "resume: an ended one is not suspended" 1 "kvmbox: resume: mine is not suspended (exited)" resume mine
one "resume: no name" 2 "kvmbox: resume: which session? (try kvmbox resume --help)" resume
one "resume: an unknown option" 2 "kvmbox: resume: unknown option --now (try kvmbox resume --help)" resume mine --now
one "inspect: a path is no name" 1 "kvmbox: inspect: no session named ../../etc (kvmbox ps lists them)" inspect ../../etc
one "ps: an unknown option" 2 "kvmbox: ps: unknown option --all (try kvmbox ps --help)" ps --all
one "rm: no such sandbox" 1 "kvmbox: rm: no session named nosuch (kvmbox ps lists them)" rm nosuch
# A forged suspended record (the folder is the user's, but the code reading
# it never trusts it): its launch folder names another folder, holding
# files whose names a launch folder has.  resume refuses it, rm leaves it.
mkdir -p "$T/decoy/bin" "$T/decoy/home" && echo keep >"$T/decoy/POLICY.md"
mkdir "$T/rt/kvmbox/sessions/evil"
python3 - "$T/rt/kvmbox/sessions" "$T/decoy" "$T/My Proj" <<'FORGE'
import json, sys
root, decoy, proj = sys.argv[1:]
r = json.load(open(root + "/mine/state.json"))
r.update(name="evil", ended=True, suspended=True, suspendable=True, status=0, launch_dir=decoy)
json.dump(r, open(root + "/evil/state.json", "w"))
json.dump({"cwd": proj, "argv": ["claude", "--name", "evil"], "placeholder_key": "00" * 32},
          open(root + "/evil/resume.json", "w"))
FORGE
chmod 600 "$T/rt/kvmbox/sessions/evil/"*.json
expect_eq "a forged record is listed suspended" "evil suspended" \
	"$("$K" ps --json | python3 -c 'import json,sys; print(*[d["name"] + " " + d["state"] for d in json.load(sys.stdin) if d["name"] == "evil"])')"
err=$(cd "$T/My Proj" && timeout 20 "$K" resume evil 2>&1 </dev/null); rc=$?
expect_eq "resume refuses a record whose launch folder is not a launch folder" \
	"1 kvmbox: claude: cannot resume evil: its launch folder: No such file or directory" "$rc $(printf '%s\n' "$err" | grep -v 'hidden from the agent')"
out=$("$K" rm evil 2>&1); rc=$?
expect_eq "rm of it removes the record" "0 " "$rc $out"
expect_eq "and leaves the folder it named as it was" "POLICY.md bin home keep" \
	"$(LC_ALL=C ls "$T/decoy" | tr '\n' ' ')$(cat "$T/decoy/POLICY.md")"
out=$("$K" rm mine my-proj-claude 2>&1); rc=$?
expect_eq "rm removes ended sandboxes' records" "0 " "$rc $out"
expect_eq "and ps lists none" "[]" "$("$K" ps --json | tr -d ' \n')"
tap_done
