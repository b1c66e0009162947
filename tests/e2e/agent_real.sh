#!/bin/bash
# tests/e2e/agent_real.sh - the real Claude Code in a kvmbox VM, end to end
# in the nested harness, run by a user who is not root.
#
# The agent is Claude Code's own Linux build from the npm registry
# (@anthropic-ai/claude-code-linux-x64, the package `npm install -g
# @anthropic-ai/claude-code` puts on an x86-64 glibc host; version
# KVMBOX_E2E_CLAUDE_VERSION, cached in $KVMBOX_CACHE/agents/), in a slim
# image built the way the stand-in test builds one (busybox, bash for the
# agent's Bash tool, the agent's shared libraries).  L1 plays the user's
# machine: user u (uid 1000, in group kvm, /dev/kvm 0660 root:kvm), an
# expired Claude Code login in ~/.claude/.credentials.json, and a fake
# Anthropic API (tests/e2e/lib/fake_provider.js, Node.js) serving HTTPS for
# api.anthropic.com and platform.claude.com from a network namespace of
# its own (veth) at a public address L1's /etc/hosts gives those names, with a certificate from a throwaway CA that
# kvmbox's proxy trusts through SSL_CERT_FILE.
#
# Launch 1, `kvmbox claude -p "please run the check"`: the agent refreshes
# its expired token (the fake receives the real refresh token and answers
# with a rotated pair), asks for a turn with the rotated access token (the
# fake checks the host's login file already holds the rotated tokens while
# the VM runs), and is answered with a Bash tool call that shows what the
# guest holds (its login file, environment, kernel command line, any file
# with a real token); the result goes back to the fake, which finds no real
# token in it.  Launch 2, `kvmbox claude --continue -p ...`: the agent
# sends the first launch's conversation (kept in the project's state
# directory) with the rotated token, and no second refresh happens.
# Each launch takes minutes (the agent runs under QEMU's emulation twice
# over), and the emulator may need a second L1 boot.
# test-timeout: 1800
. "$(dirname "$0")/../lib/tap.sh"
. "$(dirname "$0")/lib/nested.sh"
. "$(dirname "$0")/lib/agent_env.sh"
E2E_TEST_NAME="nested harness"

CLAUDE_VERSION=${KVMBOX_E2E_CLAUDE_VERSION:-2.1.332}
CLAUDE_PKG=@anthropic-ai/claude-code-linux-x64
need_cmd node
need_cmd curl
need_cmd openssl

# The agent's binary, from the npm registry once, then from the cache.
agent_bin() {
	local dir=$E2E_CACHE/agents/claude-code-linux-x64-$CLAUDE_VERSION tmp
	if [ ! -x "$dir/claude" ]; then
		command -v npm >/dev/null || return 1
		tmp=$(mktemp -d)
		if (cd "$tmp" && timeout 600 npm pack -q "$CLAUDE_PKG@$CLAUDE_VERSION" >/dev/null 2>&1 &&
		    tar xzf ./*.tgz package/claude) && [ -x "$tmp/package/claude" ]; then
			mkdir -p "$dir"
			mv "$tmp/package/claude" "$dir/claude"
		fi
		rm -rf "$tmp"
	fi
	[ -x "$dir/claude" ] && CLAUDE_BIN=$dir/claude
}
agent_bin || skip_all "cannot get $CLAUDE_PKG@$CLAUDE_VERSION from the npm registry (and none cached in $E2E_CACHE/agents)"

# L1 holds the image (the agent is 400 MB) and a 1 GiB guest.
E2E_L1_MEM=${E2E_L1_MEM_REAL:-3G}
e2e_prepare

# The fake provider: Node.js, the script, a certificate for the provider's
# host names from a throwaway CA (the CA is what kvmbox's proxy trusts).
mkdir -p "$E2E_WORK/tls" "$E2E_L1_ROOT/fake"
(cd "$E2E_WORK/tls" && . "$KVMBOX_TOP/tests/lib/tlspeer.sh" &&
 tls_make_ca_and_server "kvmbox e2e provider CA" api.anthropic.com \
	DNS:api.anthropic.com,DNS:platform.claude.com,DNS:console.anthropic.com,DNS:github.com) >/dev/null 2>&1 ||
	e2e_die "could not make the fake provider's certificate"
cp "$E2E_WORK/tls/ca.pem" "$E2E_WORK/tls/srv.pem" "$E2E_WORK/tls/srv.key" "$E2E_L1_ROOT/fake/"
cp "$KVMBOX_TOP/tests/e2e/lib/fake_provider.js" "$E2E_L1_ROOT/fake/"
e2e_add_program "$E2E_L1_ROOT" "$(command -v node)" /usr/local/bin/node

# The image: busybox, bash (Claude Code's Bash tool wants bash), the agent.
R=$E2E_L1_ROOT/kc/images/default/rootfs
e2e_add_busybox "$R"
e2e_add_program "$R" "$(command -v curl)" /usr/bin/curl	# the launch self-test's client
rm -f "$R/bin/bash"
e2e_add_program "$R" "$(command -v bash)" /bin/bash
e2e_add_program "$R" "$CLAUDE_BIN" /usr/local/bin/claude
mkdir -p "$R/etc/ssl/certs" "$R/root" "$R/tmp" "$R/.kvmbox"
echo 1 >"$R/.kvmbox/api-version"
# git: the user's (the project's remotes) and the fake GitHub's (git
# http-backend) in L1; the guest's, with its https transport, in the image.
have_git=
if command -v git >/dev/null && [ -x /usr/lib/git-core/git-http-backend ] &&
	[ -e /usr/lib/git-core/git-remote-https ]; then
	e2e_add_program "$E2E_L1_ROOT" "$(command -v git)" /usr/bin/git
	e2e_add_program "$E2E_L1_ROOT" /usr/lib/git-core/git-http-backend /usr/lib/git-core/git-http-backend
	e2e_add_program "$R" "$(command -v git)" /usr/bin/git
	e2e_add_program "$R" /usr/lib/git-core/git-remote-https /usr/lib/git-core/git-remote-https
	have_git=1
fi

payload=$(e2e_agent_env_payload api.anthropic.com platform.claude.com console.anthropic.com github.com)
payload+=$'\n'$(cat <<'PAYLOAD'
mkdir -p /home/u/.claude
printf '{"claudeAiOauth":{"accessToken":"sk-ant-oat01-XYZZYACCESS1","refreshToken":"sk-ant-ort01-XYZZYREFRESH1","expiresAt":1767225600000,"scopes":["user:inference","user:profile"],"subscriptionType":"max"}}' >/home/u/.claude/.credentials.json
chmod 600 /home/u/.claude/.credentials.json
echo 'project file' >/proj/README
chown -R 1000:1000 /home/u /proj /run/u /kc
# The project is a git repository whose remote is a GitHub repository (the
# fake GitHub holds it, and another one); the user's GitHub token is in
# GH_TOKEN, as gh and CI setups have it.
if command -v git >/dev/null; then
	for r in Ada/Engine other/repo; do git init -q --bare /srv/git/$r.git; done
	su u -s /bin/sh -c 'cd /proj && git init -q && git config user.name "Ada Lovelace" &&
		git config user.email ada@example.com && git add README && git commit -qm first &&
		git remote add origin https://github.com/Ada/Engine.git'
fi
export KVMBOX_CACHE=/kc XDG_RUNTIME_DIR=/run/u SSL_CERT_FILE=/fake/ca.pem GH_TOKEN=ghp_XYZZYGHTOKEN
# The fake provider, in its namespace.
(cd /fake && nsenter -t $net -n env FAKE_KEY=srv.key FAKE_CERT=srv.pem FAKE_ADDR=1.2.3.4 \
	FAKE_ACCESS_1=sk-ant-oat01-XYZZYACCESS1 FAKE_REFRESH_1=sk-ant-ort01-XYZZYREFRESH1 \
	FAKE_ACCESS_2=sk-ant-oat01-XYZZYACCESS2 FAKE_REFRESH_2=sk-ant-ort01-XYZZYREFRESH2 \
	FAKE_HOST_CREDS=/home/u/.claude/.credentials.json FAKE_GH_TOKEN=ghp_XYZZYGHTOKEN FAKE_GIT_ROOT=/srv/git \
	FAKE_TOOL_COMMAND='echo "guest-creds=$(cat "${CLAUDE_CONFIG_DIR:-$HOME/.claude}/.credentials.json")"; echo "guest-uid=$(id -u)"; env | grep -c "X[Y]ZZY" | sed "s/^/real-in-env=/"; grep -c "X[Y]ZZY" /proc/cmdline | sed "s/^/real-in-cmdline=/"; for d in /etc /root /run /tmp /proj /home /var; do grep -rl "X[Y]ZZY" $d 2>/dev/null | sed "s/^/real-in: /"; done; if command -v git >/dev/null; then cd /proj && { git push origin HEAD:refs/heads/from-vm 2>&1; echo "push-origin-rc=$?"; git push https://github.com/other/repo.git HEAD:refs/heads/from-vm 2>&1; echo "push-other-rc=$?"; } | sed "s/^/git: /"; fi; echo tool-done' \
	node fake_provider.js >/tmp/fake.log 2>&1 &)
for i in 1 2 3 4 5 6 7 8 9 10; do grep -q '@@FAKE listening' /tmp/fake.log 2>/dev/null && break; sleep 1; done
run='cd /proj && launch-again kvmbox claude --kernel /vmlinux --initrd /l2.cpio --memory 1G --cpus 1'
e2e_step whoami 10 su u -s /bin/sh -c 'id -u; id -G'
e2e_step first 600 su u -s /bin/sh -c "$run -p 'please run the check'"
e2e_step hostfile 10 sh -c 'cat /home/u/.claude/.credentials.json; echo'
e2e_step second 600 su u -s /bin/sh -c "$run --continue -p 'and now?'"
e2e_step fake 10 cat /tmp/fake.log
e2e_step repos 20 sh -c 'for r in Ada/Engine other/repo; do echo "$r from-vm=$(git -C /srv/git/$r.git rev-parse -q --verify from-vm)"; done; echo "project=$(su u -s /bin/sh -c "git -C /proj rev-parse HEAD")"'
e2e_step state 20 sh -c 'cd /home/u/.local/state/kvmbox/projects && grep -rl XYZZY . | sed "s/^/real-in-state: /"; echo "transcripts=$(find . -name "*.jsonl" | wc -l)"'
PAYLOAD
)
e2e_run_or_bail "$payload" 1400
[ -n "$E2E_RETRY_NOTE" ] && echo "# $E2E_RETRY_NOTE"
grep '^@@E2E-RETRY' "$E2E_LOG" | sed 's/^@@E2E-RETRY /# /'

e2e_check_has whoami "kvmbox runs as a user who is not root, in group kvm" -x '1000'
e2e_check_rc first 0 "launch 1: Claude Code $CLAUDE_VERSION runs in the VM and exits 0"
e2e_check_has first "and prints the provider's answer, given for the real (rotated) token" -x 'FAKE-REPLY auth=real-access-2'
e2e_check_has fake "the expired token was refreshed with the real refresh token" \
	'^@@FAKE refresh host=platform.claude.com .*refresh_token=real-refresh-1 status=200'
e2e_check_has fake "the refresh reached the provider with no placeholder in it" \
	'^@@FAKE refresh .*placeholder_seen=no'
e2e_check_has fake "the provider got the rotated real access token for the turn" \
	'^@@FAKE messages .*auth=real-access-2 .*status=200'
e2e_check_lacks fake "never a placeholder, the expired token or no credential" \
	'^@@FAKE messages .*auth=\(placeholder\|expired\|none\|other\)'
e2e_check_has fake "the host's login file held the rotated tokens while the VM still ran" \
	'^@@FAKE messages .*host_file_rotated=yes'
e2e_check_has fake "the agent ran the tool call in the guest, and its output came back" -x '@@FAKE-OUT tool-done'
e2e_check_has fake "the guest's login file holds placeholders" \
	'^@@FAKE-OUT guest-creds=.*"accessToken":"kvmbox-ph-[0-9a-f]\{32\}","refreshToken":"kvmbox-ph-[0-9a-f]\{32\}"'
e2e_check_has fake "the agent runs as root in the guest (IS_SANDBOX lets it skip permissions)" -x '@@FAKE-OUT guest-uid=0'
e2e_check_has fake "no real token in the guest (environment, command line, files)" \
	'^@@FAKE tool-result real_in_result=no'
e2e_check_lacks fake "and no real token in any file of the guest" '^@@FAKE-OUT real-in: '
e2e_check_has hostfile "the host's login file holds the rotated access token" '"accessToken":"sk-ant-oat01-XYZZYACCESS2"'
e2e_check_has hostfile "and the rotated refresh token" '"refreshToken":"sk-ant-ort01-XYZZYREFRESH2"'
e2e_check_has hostfile "other members kept" '"subscriptionType":"max"'
e2e_check_lacks hostfile "with the new expiry (Claude Code on the host, or the next launch, need not refresh)" \
	'"expiresAt":1767225600000'
e2e_check_rc second 0 "launch 2: claude --continue exits 0"
e2e_check_has fake "launch 2 sent launch 1's conversation (history kept in the project's state)" \
	'^@@FAKE messages .*history=[1-9]'
n=$(e2e_step_out fake | grep -c '^@@FAKE refresh ')
if [ "$n" = 1 ]; then ok "one refresh in all: launch 2 used the rotated token the host kept"
else not_ok "one refresh in all: launch 2 used the rotated token the host kept" "$n refreshes"; fi
e2e_check_lacks state "no real token in the project's state directory" 'real-in-state'
e2e_check_has state "the conversation transcripts are in it" '^transcripts=[1-9]'
if [ -n "$have_git" ]; then
	e2e_check_has fake "git push from the guest to the project's GitHub remote succeeds" -x '@@FAKE-OUT git: push-origin-rc=0'
	e2e_check_has fake "the fake GitHub got the push with the real token (the guest had a placeholder)" \
		'^@@FAKE git .*auth=real request=POST:/Ada/Engine.git/git-receive-pack'
	head=$(e2e_step_out repos | sed -n 's/^project=//p')
	e2e_check_has repos "the pushed commit is the project's" -x "Ada/Engine from-vm=${head:-(no commit in the project)}"
	e2e_check_has fake "a push to a repository off the allow-list fails" '^@@FAKE-OUT git: push-other-rc=[1-9]'
	e2e_check_has fake "with 403" '^@@FAKE-OUT git: .*403'
	e2e_check_lacks fake "and never reaches GitHub with the real token" '^@@FAKE git .*auth=real .*other/repo'
	e2e_check_has repos "the other repository is untouched" -x 'other/repo from-vm='
else
	skip "git push from the guest" "no git with git-http-backend and git-remote-https on this machine"
fi
tap_done
