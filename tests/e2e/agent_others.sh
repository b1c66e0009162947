#!/bin/bash
# tests/e2e/agent_others.sh - the real Codex and the real opencode in a
# kvmbox VM, end to end in the nested harness, run by a user who is not
# root (agent_real.sh does the same for Claude Code, with its refresh).
#
# The agents are their own Linux builds from the npm registry: Codex's
# (@openai/codex@VERSION-linux-x64, the static musl binary `npm install -g
# @openai/codex` runs on x86-64 Linux; KVMBOX_E2E_CODEX_VERSION) and
# opencode's (opencode-linux-x64, the Bun binary `npm install -g
# opencode-ai` runs; KVMBOX_E2E_OPENCODE_VERSION), fetched with `npm pack`
# once and cached in $KVMBOX_CACHE/agents/.  Each is skipped, with its
# reason, only when the registry cannot be reached and nothing is cached.
#
# L1 plays the user's machine: user u (uid 1000, in group kvm), a Codex
# login with an API key (~/.codex/auth.json, "tokens": null) and an
# opencode login with an Anthropic API key (~/.local/share/opencode/
# auth.json), and the fake provider (tests/e2e/lib/fake_provider.js) for
# api.openai.com (the Responses API) and api.anthropic.com in a network
# namespace of its own, as in agent_real.sh.
#
# `kvmbox codex exec "say hi"` and `kvmbox opencode run "say hi"`, in a
# project directory that is not a git repository: each
# agent's answer comes back from the fake, which accepted only the real
# key; the image's `codex` and `opencode` are the real binaries behind a
# two-line wrapper that first prints what the guest holds (the agent's
# auth file, whether a real key is in the environment, the kernel command
# line or any file), so the test sees the guest's side at the moment the
# agent starts.
# test-timeout: 1800
. "$(dirname "$0")/../lib/tap.sh"
. "$(dirname "$0")/lib/nested.sh"
. "$(dirname "$0")/lib/agent_env.sh"
E2E_TEST_NAME="nested harness"

CODEX_VERSION=${KVMBOX_E2E_CODEX_VERSION:-0.171.0}
OPENCODE_VERSION=${KVMBOX_E2E_OPENCODE_VERSION:-1.18.33}
need_cmd node
need_cmd curl
need_cmd openssl

# agent_fetch NAME SPEC PATH-IN-PACKAGE: the binary, from the npm registry
# once, then from $E2E_CACHE/agents/NAME/; prints its path.
agent_fetch() {
	local dir=$E2E_CACHE/agents/$1 bin tmp
	bin=$dir/$(basename "$3")
	if [ ! -x "$bin" ]; then
		command -v npm >/dev/null || return 1
		tmp=$(mktemp -d)
		if (cd "$tmp" && timeout 900 npm pack -q "$2" >/dev/null 2>&1 &&
		    tar xzf ./*.tgz "$3") && [ -x "$tmp/$3" ]; then
			mkdir -p "$dir"
			mv "$tmp/$3" "$bin"
		fi
		rm -rf "$tmp"
	fi
	[ -x "$bin" ] && echo "$bin"
}
CODEX_BIN=$(agent_fetch "codex-linux-x64-$CODEX_VERSION" "@openai/codex@$CODEX_VERSION-linux-x64" \
	package/vendor/x86_64-unknown-linux-musl/bin/codex)
OPENCODE_BIN=$(agent_fetch "opencode-linux-x64-$OPENCODE_VERSION" "opencode-linux-x64@$OPENCODE_VERSION" \
	package/bin/opencode)
[ -n "$CODEX_BIN" ] || [ -n "$OPENCODE_BIN" ] ||
	skip_all "cannot get @openai/codex@$CODEX_VERSION-linux-x64 or opencode-linux-x64@$OPENCODE_VERSION from the npm registry (and none cached in $E2E_CACHE/agents)"

# L1 holds the image (both agents: 500 MB) and a 1 GiB guest.
E2E_L1_MEM=${E2E_L1_MEM_REAL:-4G}
E2E_L1_SMP=${E2E_L1_SMP:-1}
e2e_prepare

mkdir -p "$E2E_WORK/tls" "$E2E_L1_ROOT/fake"
(cd "$E2E_WORK/tls" && . "$KVMBOX_TOP/tests/lib/tlspeer.sh" &&
 tls_make_ca_and_server "kvmbox e2e provider CA" api.openai.com \
	DNS:api.openai.com,DNS:api.anthropic.com) >/dev/null 2>&1 ||
	e2e_die "could not make the fake provider's certificate"
cp "$E2E_WORK/tls/ca.pem" "$E2E_WORK/tls/srv.pem" "$E2E_WORK/tls/srv.key" "$E2E_L1_ROOT/fake/"
cp "$KVMBOX_TOP/tests/e2e/lib/fake_provider.js" "$E2E_L1_ROOT/fake/"
e2e_add_program "$E2E_L1_ROOT" "$(command -v node)" /usr/local/bin/node

# The image: busybox, bash, each agent under /opt behind its wrapper.
R=$E2E_L1_ROOT/kc/images/default/rootfs
e2e_add_busybox "$R"
e2e_add_program "$R" "$(command -v curl)" /usr/bin/curl	# the launch self-test's client
rm -f "$R/bin/bash"
e2e_add_program "$R" "$(command -v bash)" /bin/bash
mkdir -p "$R/etc/ssl/certs" "$R/root" "$R/tmp" "$R/.kvmbox" "$R/usr/local/bin"
echo 1 >"$R/.kvmbox/api-version"
# wrapper NAME AUTH-FILE: /usr/local/bin/NAME shows the guest's side, then
# runs the real agent.
wrapper() {
	cat >"$R/usr/local/bin/$1" <<EOF
#!/bin/sh
{ echo "guest-auth=\$(cat "\$HOME/$2")"; env | grep -c "X[Y]ZZY" | sed "s/^/real-in-env=/"
  grep -c "X[Y]ZZY" /proc/cmdline | sed "s/^/real-in-cmdline=/"
  for d in /etc /root /run /tmp /proj /home /var; do grep -rl "X[Y]ZZY" \$d 2>/dev/null | sed "s/^/real-in: /"; done
} 2>&1 | sed "s/^/@@GUEST $1 /"
exec /opt/$1/$1 "\$@"
EOF
	chmod 755 "$R/usr/local/bin/$1"
}
if [ -n "$CODEX_BIN" ]; then
	e2e_add_program "$R" "$CODEX_BIN" /opt/codex/codex
	wrapper codex .codex/auth.json
fi
if [ -n "$OPENCODE_BIN" ]; then
	e2e_add_program "$R" "$OPENCODE_BIN" /opt/opencode/opencode
	wrapper opencode .local/share/opencode/auth.json
fi

payload=$(e2e_agent_env_payload api.openai.com api.anthropic.com)
payload+=$'\n'$(cat <<'PAYLOAD'
mkdir -p /home/u/.codex /home/u/.local/share/opencode
printf '{"OPENAI_API_KEY":"sk-proj-XYZZYCODEXKEY","tokens":null}' >/home/u/.codex/auth.json
printf '{"anthropic":{"type":"api","key":"sk-ant-api03-XYZZYOPENCODEKEY"}}' >/home/u/.local/share/opencode/auth.json
chmod 600 /home/u/.codex/auth.json /home/u/.local/share/opencode/auth.json
echo 'project file' >/proj/README
chown -R 1000:1000 /home/u /proj /run/u /kc
export KVMBOX_CACHE=/kc XDG_RUNTIME_DIR=/run/u SSL_CERT_FILE=/fake/ca.pem
(cd /fake && nsenter -t $net -n env FAKE_KEY=srv.key FAKE_CERT=srv.pem FAKE_ADDR=1.2.3.4 \
	FAKE_API_KEY=sk-proj-XYZZYCODEXKEY,sk-ant-api03-XYZZYOPENCODEKEY \
	node fake_provider.js >/tmp/fake.log 2>&1 &)
for i in 1 2 3 4 5 6 7 8 9 10; do grep -q '@@FAKE listening' /tmp/fake.log 2>/dev/null && break; sleep 1; done
opts='--kernel /vmlinux --initrd /l2.cpio --memory 1G --cpus 1 --no-git'
e2e_step whoami 10 su u -s /bin/sh -c 'id -u'
[ -x /kc/images/default/rootfs/opt/codex/codex ] &&
	e2e_step codex 600 su u -s /bin/sh -c "cd /proj && launch-again kvmbox codex $opts exec 'say hi'"
[ -x /kc/images/default/rootfs/opt/opencode/opencode ] &&
	e2e_step opencode 600 su u -s /bin/sh -c "cd /proj && launch-again kvmbox opencode $opts run 'say hi'"
e2e_step fake 10 cat /tmp/fake.log
e2e_step hostfiles 10 sh -c 'cat /home/u/.codex/auth.json; echo; cat /home/u/.local/share/opencode/auth.json; echo'
e2e_step state 20 sh -c 'cd /home/u/.local/state/kvmbox/projects && grep -rl XYZZY . 2>/dev/null | sed "s/^/real-in-state: /"; echo "codex-sessions=$(find . -path "*codex*" -name "*.jsonl" | wc -l)"; echo "opencode-files=$(find . -path "*opencode*" -type f | wc -l)"'
PAYLOAD
)
e2e_run_or_bail "$payload" 1500
[ -n "$E2E_RETRY_NOTE" ] && echo "# $E2E_RETRY_NOTE"
grep '^@@E2E-RETRY' "$E2E_LOG" | sed 's/^@@E2E-RETRY /# /'

e2e_check_has whoami "kvmbox runs as a user who is not root" -x '1000'
ph='"kvmbox-ph-[0-9a-f]\{32\}"'
if [ -n "$CODEX_BIN" ]; then
	e2e_check_rc codex 0 "Codex $CODEX_VERSION: \`kvmbox codex exec 'say hi'\` exits 0"
	e2e_check_has codex "and prints the provider's answer, given for the real API key" 'FAKE-REPLY auth=real-key'
	e2e_check_lacks codex "in a project that is not a git repository (no approvals or sandbox of Codex's own: the VM is one)" \
		'trusted directory'
	e2e_check_has fake "the Responses API got the real key from the proxy" \
		'^@@FAKE responses host=api.openai.com .*auth=real-key .*status=200'
	e2e_check_lacks fake "never a placeholder or no key" '^@@FAKE responses .*auth=\(placeholder\|none\|other\)'
	e2e_check_has codex "the guest's auth.json holds a placeholder key" \
		"^@@GUEST codex guest-auth=.*\"OPENAI_API_KEY\": *$ph"
	e2e_check_has codex "no real key in the guest's environment" -x '@@GUEST codex real-in-env=0'
	e2e_check_has codex "or kernel command line" -x '@@GUEST codex real-in-cmdline=0'
	e2e_check_lacks codex "or files" '^@@GUEST codex real-in: '
	e2e_check_has state "Codex's session is kept in the project's state directory" '^codex-sessions=[1-9]'
	e2e_check_has hostfiles "the host's Codex login is as it was" -x '{"OPENAI_API_KEY":"sk-proj-XYZZYCODEXKEY","tokens":null}'
else
	skip "Codex in the VM" "cannot get @openai/codex@$CODEX_VERSION-linux-x64 from the npm registry"
fi
if [ -n "$OPENCODE_BIN" ]; then
	e2e_check_rc opencode 0 "opencode $OPENCODE_VERSION: \`kvmbox opencode run 'say hi'\` exits 0"
	e2e_check_has opencode "and prints the provider's answer, given for the real API key" 'FAKE-REPLY auth=real-key'
	e2e_check_has fake "Anthropic's API got opencode's real key from the proxy" \
		'^@@FAKE messages host=api.anthropic.com .*auth=real-key .*status=200'
	e2e_check_lacks fake "never a placeholder or no key" '^@@FAKE messages .*auth=\(placeholder\|none\|other\)'
	e2e_check_has opencode "the guest's opencode auth.json holds a placeholder key" \
		"^@@GUEST opencode guest-auth=.*\"key\": *$ph"
	e2e_check_has opencode "no real key in the guest's environment" -x '@@GUEST opencode real-in-env=0'
	e2e_check_has opencode "or kernel command line" -x '@@GUEST opencode real-in-cmdline=0'
	e2e_check_lacks opencode "or files" '^@@GUEST opencode real-in: '
	e2e_check_has state "opencode's data is kept in the project's state directory" '^opencode-files=[1-9]'
else
	skip "opencode in the VM" "cannot get opencode-linux-x64@$OPENCODE_VERSION from the npm registry"
fi
e2e_check_lacks state "no real key in the project's state directory" 'real-in-state'
tap_done
