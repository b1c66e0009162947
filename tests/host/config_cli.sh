#!/bin/bash
# tests/host/config_cli.sh - `kvmbox config` and the configuration files as
# a user meets them, in temporary homes and projects: the effective values
# with their sources (default, global, project, env, flag), a project file
# that tries to widen the sandbox (refused, named once, the launch goes
# on), bad files and bad values (status 2, one line naming the file and
# the key), secrets shown as the specs that name them (never a value), and
# a launch that reads the files (its configured image is the one it looks
# for; its project's refusals are said once).
set -u
. "$(dirname "$0")/../lib/tap.sh"
[ -x "$KVMBOX_BIN" ] || skip_all "kvmbox not built"
need_cmd python3
TINY=${BUILD:-$KVMBOX_TOP/build}/firmware/tests
[ -f "$TINY/hello.elf" ] || TINY=$KVMBOX_TOP/build/firmware/tests
[ -f "$TINY/hello.elf" ] || skip_all "tiny guests not built (make)"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
mkdir -p "$T/home/.config/kvmbox" "$T/proj" "$T/cache"
export HOME=$T/home KVMBOX_CACHE=$T/cache
unset XDG_CONFIG_HOME KVMBOX_MEMORY KVMBOX_CPUS KVMBOX_IMAGE KVMBOX_EGRESS_PROFILE
G=$T/home/.config/kvmbox/config.json P=$T/proj/.kvmbox.json

# field JSON PATH...: one value of kvmbox config's answer, as Python prints it
field() {
	python3 -c 'import json,sys
d=json.load(open(sys.argv[1]))
for k in sys.argv[2:]: d=d[int(k)] if isinstance(d,list) else d[k]
print(json.dumps(d))' "$@"
}

cat >"$G" <<'J'
{ "memory": "4G", "egress_profile": "standard", "allow_domain": ["corp.example"],
  "allow_lan": true, "secrets": ["kvmbox-ph-corp1234=env:KVMBOX_TEST_CORP@corp.example"] }
J
cat >"$P" <<'J'
{ "memory": 1024, "cpus": 8, "egress_profile": "permissive", "allow_domain": "evil.example",
  "repos": ["evil/x"], "hook": false, "allow_lan": false, "image": "evil/img" }
J
export KVMBOX_TEST_CORP=real-corp-secret-value
(cd "$T/proj" && "$KVMBOX_BIN" config --allow-domain flag.example >"$T/out.json" 2>"$T/err")
expect_eq "kvmbox config exits 0" 0 "$?"
check "its answer is JSON" python3 -c "import json; json.load(open('$T/out.json'))"
expect_eq "it names the global file" "\"$G\"" "$(field "$T/out.json" files global)"
expect_eq "and the project file" "\"$P\"" "$(field "$T/out.json" files project)"
expect_eq "the project lowers memory" '"1024"' "$(field "$T/out.json" options memory value)"
expect_eq "with its source" '"project"' "$(field "$T/out.json" options memory source)"
expect_eq "the project may not raise CPUs: the default stands" '"2"' "$(field "$T/out.json" options cpus value)"
expect_eq "the project may not widen the global profile" '"standard"' "$(field "$T/out.json" options egress_profile value)"
expect_eq "domains: the global file's, then the flag's, not the project's" '["corp.example", "flag.example"]' \
	"$(field "$T/out.json" options allow_domain value)"
expect_eq "each with its source" '["global", "flag"]' "$(field "$T/out.json" options allow_domain sources)"
expect_eq "the project turns the LAN off again" 'false' "$(field "$T/out.json" options allow_lan value)"
expect_eq "and the hook off" '"project"' "$(field "$T/out.json" options hook source)"
expect_eq "the project names no image" '"default"' "$(field "$T/out.json" options image value)"
expect_eq "what the project was refused, key by key" '["cpus", "egress_profile", "allow_domain", "repos", "image"]' \
	"$(python3 -c "import json; print(json.dumps([r['key'] for r in json.load(open('$T/out.json'))['refused_from_project']]))")"
check "the refusal is also said once on stderr" \
	sh -c "[ \$(grep -c 'may only tighten the sandbox; not taken from it: cpus (a project may only lower it)' '$T/err') = 1 ]"
check "a secret is shown as its spec" grep -q 'kvmbox-ph-corp1234=env:KVMBOX_TEST_CORP@corp.example' "$T/out.json"
check "never as its value" sh -c "! grep -q real-corp-secret '$T/out.json' '$T/err'"

KVMBOX_MEMORY=3G KVMBOX_EGRESS_PROFILE=locked "$KVMBOX_BIN" config --project "$T/proj" --cpus 1 >"$T/out2.json" 2>/dev/null
expect_eq "an env knob beats the files" '"3G"' "$(field "$T/out2.json" options memory value)"
expect_eq "named as such" '"env"' "$(field "$T/out2.json" options memory source)"
expect_eq "a flag beats everything" '"flag"' "$(field "$T/out2.json" options cpus source)"
expect_eq "the profile knob" '"locked"' "$(field "$T/out2.json" options egress_profile value)"

# bad files and values: status 2, one line naming the file and the key
bad() {
	local name=$1 want=$2 text=$3 rc err
	[ -L "$P" ] || printf '%s' "$text" >"$P"
	err=$(cd "$T/proj" && "$KVMBOX_BIN" config 2>&1 >/dev/null); rc=$?
	if [ "$rc" = 2 ] && [ "$(printf '%s\n' "$err" | wc -l)" = 1 ] && printf '%s' "$err" | grep -qF -- "$want"; then
		ok "$name"
	else
		not_ok "$name" "status $rc: $err"
	fi
}
bad "a misspelt key" "$P: unknown key \"memroy\"" '{"memroy": 1}'
bad "a value the flag refuses" "$P: memory: --memory wants a size" '{"memory": "lots"}'
bad "an unknown profile" "$P: egress_profile: unknown --egress-profile 'open'" '{"egress_profile": "open"}'
bad "a switch that is not a boolean" "$P: allow_lan: want true or false" '{"allow_lan": "yes"}'
bad "a comment" "$P: line 1:" '{"memory": 1024 /* small */}'
bad "bytes after the object" "$P: line 1:" '{"memory": 1024} {}'
bad "a bad domain even where it would be refused anyway" "$P: allow_domain: bad --allow-domain" '{"allow_domain": ["a b"]}'
rm -f "$P"; ln -s "$G" "$P"
bad "a project file that is a link" "$P: is a symbolic link" ''
rm -f "$P"
out=$("$KVMBOX_BIN" config --bogus 2>&1); rc=$?
expect_eq "an unknown flag of kvmbox config: status 2, one line" "2 kvmbox: config: unknown option --bogus (try kvmbox config --help)" "$rc $out"
check "kvmbox config --help lists every key" sh -c "'$KVMBOX_BIN' config --help | grep -q 'config: egress_profile, env: KVMBOX_EGRESS_PROFILE, default: permissive'"

# Custom agents: the user's file defines them, a project's cannot.
cat >"$G" <<'J'
{ "agents": { "my-agent": { "command": ["aider", "--yes"], "image": "aider-img",
  "secrets": { "KVMBOX_TEST_CORP": ["api.example.com"] }, "egress": ["api.example.com"] } } }
J
echo '{"agents": {"evil": {"command": ["sh"]}}}' >"$P"
(cd "$T/proj" && "$KVMBOX_BIN" config >"$T/out3.json" 2>"$T/err3")
expect_eq "kvmbox config lists the user's agents" '["aider", "--yes"]' "$(field "$T/out3.json" agents my-agent command)"
check "not the project's" sh -c "! grep -q evil '$T/out3.json'"
check "whose attempt is named" grep -q 'agents (only your own configuration may define agents)' "$T/err3"
check "kvmbox my-agent is a command" sh -c "cd '$T/proj' && '$KVMBOX_BIN' my-agent --help | grep -q 'Options a configuration file'"
# (a kernel and initrd named, so that the image is what the launch looks for next)
K=(--kernel "$TINY/hello.elf" --initrd "$TINY/hello.elf")
err=$(cd "$T/proj" && timeout 20 "$KVMBOX_BIN" my-agent "${K[@]}" -p hi 2>&1 </dev/null)
check "its configured image is the one a launch looks for" sh -c "printf '%s' \"\$1\" | grep -q aider-img" _ "$err"
out=$("$KVMBOX_BIN" evil 2>&1); rc=$?
expect_eq "the project's agent is no command" "2 kvmbox: unknown command 'evil' (try kvmbox --help)" "$rc $out"
echo '{"agents": {"my-agent": {"command": ["x"], "shell": true}}}' >"$G"
rm -f "$P"
err=$(cd "$T/proj" && "$KVMBOX_BIN" config 2>&1 >/dev/null); rc=$?
expect_eq "an agent with an unknown member: status 2, one line" \
	"2 kvmbox: config: $G: agents: my-agent: an unknown member" "$rc $err"

# A launch reads the files: the configured image is the one it looks for,
# and the project's refusals are said once before anything starts.
echo '{"image": "configured-img"}' >"$G"
echo '{"cpus": 64}' >"$P"
err=$(cd "$T/proj" && timeout 20 "$KVMBOX_BIN" claude "${K[@]}" -p hi 2>&1 </dev/null)
check "a launch looks for the configured image" sh -c "printf '%s' \"\$1\" | grep -q configured-img" _ "$err"
check "and says once what the project was refused" \
	sh -c "[ \$(printf '%s\n' \"\$1\" | grep -c 'not taken from it: cpus') = 1 ]" _ "$err"
echo '{"memroy": 1}' >"$P"
err=$(cd "$T/proj" && timeout 20 "$KVMBOX_BIN" claude -p hi 2>&1 </dev/null); rc=$?
expect_eq "a launch with a bad project file stops: status 2, one line" \
	"2 kvmbox: claude: $P: unknown key \"memroy\" (kvmbox config --help lists them)" "$rc $err"
tap_done
