#!/bin/bash
# tests/e2e/agent_launch.sh - `kvmbox claude` end to end in the nested
# harness: the launch path with a stand-in agent.
#
# L1 plays the user's machine: a project folder, a Claude Code login file
# (~/.claude/.credentials.json) and an ANTHROPIC_API_KEY, and an image
# "default" in the image store whose `claude` is a shell script printing
# what an agent would see.  Checks: the agent runs in the project folder,
# which is the host's (files it writes appear in L1); its arguments arrive,
# after -- and as the words kvmbox does not know (`kvmbox claude -p "say hi"
# --memory 512M`), with --dangerously-skip-permissions and IS_SANDBOX=1;
# --profile=json reports every launcher phase; the project's GitHub remote
# is the allow-list and gh's token a placeholder in git's credential helper
# and gh's config (--no-git: none of it); Claude Code's state lives in the
# project's state directory, seeded once, kept across three launches (its
# history grows), 0700, with no real secret and no login file left in it
# (--no-state: a bare home);
# it gets placeholders, never the real key or tokens (not in its
# environment, its credential file, the kernel command line, or anywhere in
# the guest's files); the credential file keeps its other members; the
# per-launch CA is installed; the project's .env and a private key in it
# are hidden from the agent (not listed, not overwritable, untouched on the
# host) and named at launch; the project's executable .kvmbox.runtime.sh
# runs in the guest before the agent, and one that fails stops the launch
# with its status (--no-hook: not run); the launch self-test (curl in the
# image asks the proxy's self-test endpoint) passes a sound launch, says
# what it cost under --profile, and stops before the hook and the agent a
# launch whose egress policy is broken on purpose (KVMBOX_FAULT_EGRESS,
# sanitizer builds) and one whose guest was handed a CA that is not the
# proxy's (KVMBOX_FAULT_CA); a git hook the agent creates and
# its change to .git/config are named at exit under a warning, with
# unified diffs; the agent's exit status is kvmbox's; the
# per-launch directory is gone afterwards; a missing project folder is a
# one-line error with status 2.  --template: the first launch boots and a
# second kvmbox makes the configuration's template; the next launch
# restores it (no kernel loaded) and its agent runs there with this
# launch's arguments, placeholders and CA, the self-test passing and the
# project's state kept.  Each launch's guest says whether it booted or was
# restored; agent_template.sh runs every check here on restored ones.
. "$(dirname "$0")/../lib/tap.sh"
. "$(dirname "$0")/lib/nested.sh"
E2E_TEST_NAME="nested harness"

need_cmd curl
e2e_prepare
# curl in the image: the launch self-test's client
e2e_add_program "$E2E_L1_ROOT/kc/images/default/rootfs" "$(command -v curl)" /usr/bin/curl
# git in L1 (the host side reads the project's remotes and identity with it)
have_git=
if command -v git >/dev/null; then
	e2e_add_program "$E2E_L1_ROOT" "$(command -v git)" /usr/bin/git
	have_git=1
fi
payload=$(cat <<'PAYLOAD'
export KVMBOX_CACHE=/kc HOME=/home/u XDG_RUNTIME_DIR=/run/u
# one vCPU per sandbox (KVMBOX_CPUS, the config's env knob): the nested
# harness (QEMU TCG emulating SVM) has hung with a spinning vCPU in a
# two-vCPU L2 (docs/bench-vm.md); agent_launch's first launch keeps the
# default two
export KVMBOX_CPUS=1
mkdir -p /proj /kc/images/default $HOME/.claude $XDG_RUNTIME_DIR
echo 'project file' >/proj/README
# the project's own secrets: hidden from the agent by the file server
echo 'STRIPE_KEY=XYZZY-dotenv' >/proj/.env
mkdir -p /proj/certs && echo 'XYZZY-private-key' >/proj/certs/site.key
# the project's hook, run in the guest before the agent
printf '#!/bin/sh\necho "hook-ran in $(pwd)"\n' >/proj/.kvmbox.runtime.sh
chmod 755 /proj/.kvmbox.runtime.sh
printf '{"claudeAiOauth":{"accessToken":"sk-ant-oat01-XYZZYTOKEN","refreshToken":"sk-ant-ort01-XYZZYREFRESH","expiresAt":1767225600000,"scopes":["user:inference"]}}' >$HOME/.claude/.credentials.json
export ANTHROPIC_API_KEY=sk-ant-api03-XYZZYKEY
# the project's git: a GitHub remote (ssh form) and an identity; gh logged in
if command -v git >/dev/null; then
	git init -q /proj && git -C /proj config user.name 'Ada Lovelace' &&
		git -C /proj config user.email ada@example.com &&
		git -C /proj remote add origin git@github.com:Ada/Engine.git &&
		git -C /proj remote add other https://gitlab.com/x/y.git &&
		mkdir -p /proj/.git/hooks  # git init made none here (no templates); a real one has it
fi
mkdir -p /usr/local/bin
printf '#!/bin/sh\n[ "$1 $2" = "auth token" ] && echo ghp_XYZZYGHTOKEN\n' >/usr/local/bin/gh
chmod 755 /usr/local/bin/gh
R=/kc/images/default/rootfs
mkdir -p $R/bin $R/etc/ssl/certs $R/root $R/usr/local/bin $R/.kvmbox
cp /bin/busybox $R/bin/
for a in $(busybox --list); do [ "$a" = busybox ] || ln -s busybox $R/bin/$a; done
echo 1 >$R/.kvmbox/api-version
cat >$R/usr/local/bin/claude <<'AGENT'
#!/bin/sh
# --wait: a long-running agent, until it gets SIGTERM (kvmbox stop)
case " $* " in *" --wait "*) trap 'echo got-term; exit 143' TERM; echo waiting; while :; do sleep 1; done;; esac
# --warm: nothing (a launch that makes its configuration's template)
case " $* " in *" --warm "*) exit 0;; esac
# a guest restored from a template was booted with the template's marker
echo "started=$(grep -q kvmbox.snapshot=1 /proc/cmdline && echo template || echo boot)"
echo "pwd=$(pwd)"
echo "args=$*"
echo "sandbox=$IS_SANDBOX"
echo "key=$ANTHROPIC_API_KEY"
echo "creds=$(cat $HOME/.claude/.credentials.json)"
grep -q XYZZY /proc/cmdline && echo "cmdline-has-real"
for d in /etc /root /run /tmp /proj /home /var; do  # not /bin: 400 links to busybox
	[ -d $d ] && grep -rl XYZZY $d 2>/dev/null | sed 's/^/real-in: /'
done
grep -q 'BEGIN CERTIFICATE' /etc/ssl/certs/ca-certificates.crt 2>/dev/null && echo ca-installed
echo "NODE_EXTRA_CA_CERTS=$NODE_EXTRA_CA_CERTS"
echo "SSL_CERT_FILE=$SSL_CERT_FILE"
echo "ghtoken=$GH_TOKEN"
echo "configdir=$CLAUDE_CONFIG_DIR histfile=$HISTFILE"
echo run >>$HOME/.claude/history.txt
echo "history=$(wc -l <$HOME/.claude/history.txt)"
grep -q '"hasTrustDialogAccepted": true' $HOME/.claude/.claude.json 2>/dev/null && echo seeded-trust
echo "gitconfig=$(tr '\n\t' '| ' <$HOME/.gitconfig)"
echo "ghhosts=$(tr '\n' '|' <$HOME/.config/gh/hosts.yml)"
echo written-by-agent >/proj/from-guest
echo "projls=$(ls -A /proj /proj/certs | tr '\n' ' ')"
# refused requests, whose 403 bodies the agent can read: a push off the
# allow-list (an address that is public; nothing is dialled) and the
# metadata address
echo "push=$(curl -s -m 20 --resolve github.com:443:1.2.3.4 -X POST https://github.com/evil/x.git/git-receive-pack)"
echo "meta=$(curl -s -m 20 http://169.254.169.254/latest/meta-data/)"
sed 's/^/policy: /' /etc/kvmbox/POLICY.md
echo "memory-points=$(grep -c /etc/kvmbox/POLICY.md $HOME/.claude/CLAUDE.md)"
echo stolen >/proj/.env 2>/dev/null && echo "env-overwritten"
# a hostile agent adds a remote, hoping the next launch allows it
[ -f /proj/.git/config ] && ! grep -q evil /proj/.git/config &&
	printf '[remote "evil"]\n\turl = https://github.com/evil/repo\n' >>/proj/.git/config &&
	mkdir -p /proj/.git/hooks && printf '#!/bin/sh\necho pwned\n' >/proj/.git/hooks/pre-commit && chmod 755 /proj/.git/hooks/pre-commit
exit 4
AGENT
chmod 755 $R/usr/local/bin/claude
cd /proj
if [ -n "$FROM_TEMPLATE" ]; then
# agent_template.sh: every launch below starts from its configuration's
# template, made first: a launch of each configuration (the stand-in exits
# at once) boots it while a second kvmbox makes the template
export KVMBOX_TEMPLATE=1
e2e_step warm 1200 sh -c 'n=0
for conf in "--memory 512 --cpus 2" "--memory 512M" "--no-state --memory 512M"; do
	kvmbox claude --no-hook --kernel /vmlinux --initrd /l2.cpio $conf -- --warm 2>&1 | sed "s/^/launch: /"
	n=$((n + 1))
	for i in $(seq 1 340); do [ "$(ls /kc/templates | grep -cx "[0-9a-f]\{64\}")" -ge $n ] && break; sleep 1; done
done
echo "templates=$(ls /kc/templates | grep -cx "[0-9a-f]\{64\}")"; tail -n 3 /kc/templates/*.log 2>/dev/null'
fi
e2e_step claude 240 sh -c "kvmbox claude --kernel /vmlinux --initrd /l2.cpio --memory 512 --cpus 2 -- --resume 'two words' 2>&1"
e2e_step passthrough 240 sh -c 'KVMBOX_LOG=info kvmbox claude --kernel /vmlinux --initrd /l2.cpio -p "say hi" --memory 512M --profile=json 2>&1'
e2e_step after 20 sh -c 'cat /proj/from-guest; ls -A $XDG_RUNTIME_DIR $HOME/.local/state/kvmbox/launches 2>/dev/null | grep -c kvmbox-launch; cat /proj/.env'
e2e_step noproject 20 kvmbox claude --project /no/such/dir
e2e_step nostate 240 sh -c 'kvmbox claude --no-state --kernel /vmlinux --initrd /l2.cpio --memory 512M 2>&1'
e2e_step nogit 240 sh -c 'KVMBOX_LOG=info kvmbox claude --no-git --kernel /vmlinux --initrd /l2.cpio --memory 512M 2>&1'
e2e_step statedir 20 sh -c 'cd $HOME/.local/state/kvmbox/projects && ls; d=$(ls -d proj-* | grep -v "\.repos$\|\.denials$"); stat -c "%a %n" . .. $d $d/claude $d.repos $d.denials;
	echo "lines=$(wc -l <$d/claude/history.txt)"; ls -A $d/claude | sed "s/^/entry: /"; grep -rl XYZZY . | sed "s/^/real-in-state: /"; grep -rl kvmbox-ph- . | sed "s/^/placeholder-in-state: /"'
printf '#!/bin/sh\necho hook-says-no\nexit 3\n' >/proj/.kvmbox.runtime.sh
e2e_step hookfail 240 sh -c 'kvmbox claude --kernel /vmlinux --initrd /l2.cpio --memory 512M 2>&1'
e2e_step nohook 240 sh -c 'kvmbox claude --no-hook --kernel /vmlinux --initrd /l2.cpio --memory 512M 2>&1'
# the self-test against a policy broken on purpose (sanitizer builds only)
e2e_step selftest 240 sh -c 'KVMBOX_FAULT_EGRESS=open kvmbox claude --kernel /vmlinux --initrd /l2.cpio --memory 512M 2>&1'
e2e_step noselftest 240 sh -c 'KVMBOX_FAULT_EGRESS=open kvmbox claude --no-self-test --no-hook --kernel /vmlinux --initrd /l2.cpio --memory 512M 2>&1'
e2e_step forgedca 240 sh -c 'KVMBOX_FAULT_CA=forged kvmbox claude --kernel /vmlinux --initrd /l2.cpio --memory 512M 2>&1'
e2e_step denials 20 kvmbox logs --denials --project /proj
# a named sandbox in the background: listed, inspected, its name refused to
# a second launch, stopped (its agent gets SIGTERM), its record removed
e2e_step sessions 420 sh -c 'kvmbox claude --name bg --no-hook --kernel /vmlinux --initrd /l2.cpio --memory 512M -- --wait >/tmp/bg.out 2>&1 &
bg=$!
for i in $(seq 240); do grep -q "^waiting" /tmp/bg.out && break; sleep 1; done
kvmbox ps | sed "s/^/ps1: /"
kvmbox inspect bg | tr -d "\n " | sed "s/^/inspect: /"; echo
kvmbox claude --name bg --no-hook --kernel /vmlinux --initrd /l2.cpio --memory 512M 2>&1 | sed "s/^/clash: /"
kvmbox stop bg --time 60; echo "stop=$?"
wait $bg; echo "bgrc=$?"
kvmbox ps | sed "s/^/ps2: /"
kvmbox rm bg; echo "rm=$?"
kvmbox ps | sed "s/^/ps3: /"
sed "s/^/bg: /" /tmp/bg.out'
# --template: the first launch boots and a second kvmbox makes the
# configuration's template; the next launch restores it and the agent
# runs there with this launch's credentials, CA and arguments
if [ -z "$FROM_TEMPLATE" ]; then
tf='--template --no-hook --kernel /vmlinux --initrd /l2.cpio --memory 512M'
e2e_step tmpl1 240 sh -c "kvmbox claude $tf --profile -- tmpl-one 2>&1"
e2e_step tmpl_wait 300 sh -c 'for i in $(seq 1 250); do ls /kc/templates 2>/dev/null | grep -qx "[0-9a-f]\{64\}" && break; sleep 1; done
	ls /kc/templates; tail -n 5 /kc/templates/*.log 2>/dev/null'
e2e_step tmpl2 240 sh -c "kvmbox claude $tf --profile -- tmpl-two 2>&1"
fi
PAYLOAD
)
# AGENT_LAUNCH_FROM=template (agent_template.sh): the same launches, each
# restored from its configuration's template
from=${AGENT_LAUNCH_FROM:-boot}
if [ "$from" = template ]; then
	e2e_run_or_bail "FROM_TEMPLATE=1"$'\n'"$payload" 2300
	e2e_check_has warm "a template for each of the three configurations launched below" -x 'templates=3'
	e2e_check_lacks warm "each made without a word of failure" 'cannot\|failed'
else
	e2e_run_or_bail "FROM_TEMPLATE="$'\n'"$payload" 1100
fi
# every launch says why it boots when it does: no word of it, a restore
for step in claude passthrough nostate nogit hookfail nohook selftest noselftest forgedca; do
	if [ "$from" = template ]; then
		e2e_check_lacks $step "$step: started from its template, without a word of booting" 'no template\|cannot be used'
	fi
done
for step in claude passthrough nostate nogit nohook noselftest; do
	e2e_check_has $step "$step: its guest was started by a $from" -x "started=$from"
done

if [ "$from" = boot ]; then
e2e_check_rc tmpl1 4 "--template with none made yet: the agent runs"
e2e_check_has tmpl1 "after one line saying why it boots" 'no template of this configuration yet: booting, and making one'
e2e_check_has tmpl_wait "the agent's configuration gets a template in the background" -x '[0-9a-f]\{64\}'
e2e_check_rc tmpl2 4 "the next launch starts from it, and the launch self-test passes there (else 125)"
e2e_check_lacks tmpl2 "saying nothing of templates" 'no template\|cannot be used'
e2e_check_lacks tmpl2 "loading no kernel" 'kernel_loaded'
e2e_check_has tmpl2 "the self-test ran in the restored guest" '^kvmbox: self-test: [0-9]* checks in [0-9]* ms$'
e2e_check_has tmpl2 "with this launch's arguments" -x 'args=--dangerously-skip-permissions tmpl-two'
e2e_check_has tmpl2 "and this launch's placeholders" '^key=kvmbox-ph-[0-9a-f]\{32\}$'
e2e_check_has tmpl2 "its login file among the launch's files" '^creds=.*"accessToken":"kvmbox-ph-[0-9a-f]\{32\}"'
e2e_check_lacks tmpl2 "no real secret there either" 'XYZZY\|real-in:\|cmdline-has-real'
e2e_check_has tmpl2 "this launch's CA is installed" -x 'ca-installed'
e2e_check_has tmpl2 "a push off the allow-list gets the proxy's 403 there too" '^push=kvmbox: write to GitHub repository evil/x refused'
e2e_check_grows tmpl1 history tmpl2 history "the agent's state is the project's, kept across a template launch"
e2e_check_has tmpl2 "its guest was started by a template" -x 'started=template'
fi
e2e_check_rc claude 4 "kvmbox claude exits with the agent's status"
e2e_check_lacks claude "the launch self-test passed (metadata, host, CA, placeholders, GitHub)" 'self-test'
e2e_check_lacks claude "its endpoint's address is not counted among the denials" '192\.0\.2\.1'
e2e_check_lacks claude "nor are its probes of the host and the metadata address" 'denied tcp to 10\.0\.2\.2\|10\.0\.2\.2:80'
e2e_check_has claude "a push off the allow-list gets a 403 whose body the agent reads" '^push=kvmbox: write to GitHub repository evil/x refused'
e2e_check_has claude "so does a request to the metadata address" \
	'^meta=kvmbox: the egress policy refuses 169\.254\.169\.254 port 80: cloud metadata'
e2e_check_has claude "the exit summary counts the agent's metadata request once (not the self-test's)" \
	'refused 1 connection or lookup: 169\.254\.169\.254:80/tcp x1'
e2e_check_rc denials 0 "kvmbox logs --denials prints the project's record"
e2e_check_has denials "a line per launch, naming agent, project and profile" \
	'^[0-9TZ:-]* launch: kvmbox claude in /proj, egress profile permissive$'
e2e_check_has denials "the proxy's 403s as they were given" '^[0-9TZ:-]* refused: https github.com: kvmbox: write to GitHub repository evil/x refused'
e2e_check_has denials "the network stack's refusals with their counts" \
	'^[0-9TZ:-]* refused: 169\.254\.169\.254:80/tcp x1 (cloud metadata'
e2e_check_has passthrough "--profile: the self-test says what it cost" '^kvmbox: self-test: [0-9]* checks in [0-9]* ms$'
e2e_check_has claude "the agent runs in the project folder" -x 'pwd=/proj'
e2e_check_has claude "the agent's arguments arrive (claude without permission prompts: the VM is the boundary)" \
	-x 'args=--dangerously-skip-permissions --resume two words'
e2e_check_has claude "and IS_SANDBOX=1, which Claude Code wants for that as root" -x 'sandbox=1'
e2e_check_rc passthrough 4 "kvmbox claude -p 'say hi' --memory 512M: the agent ran"
e2e_check_has passthrough "words kvmbox does not know go to the agent, kvmbox's own flags do not" \
	-x 'args=--dangerously-skip-permissions -p say hi'
booted_only='kernel_loaded guest_init_started'	# a restored guest booted long ago
[ "$from" = boot ] && booted=$booted_only || booted=
for phase in credentials image kvm_ready ca_and_proxy $booted command_start first_output_byte command_done teardown; do
	e2e_check_has passthrough "--profile=json reports the launcher phase $phase" "\"$phase\":{\"wall_ms\""
done
if [ "$from" = template ]; then
	for phase in $booted_only; do
		e2e_check_lacks passthrough "--profile=json: no $phase from a template" "\"$phase\":{"
	done
fi
e2e_check_has claude "the API key is a placeholder" '^key=kvmbox-ph-[0-9a-f]\{32\}$'
e2e_check_has claude "the login file holds a placeholder access token" \
	'^creds=.*"accessToken":"kvmbox-ph-[0-9a-f]\{32\}"'
e2e_check_has claude "and a placeholder refresh token" \
	'^creds=.*"refreshToken":"kvmbox-ph-[0-9a-f]\{32\}"'
e2e_check_has claude "the login file keeps its other members" '"expiresAt":1767225600000'
e2e_check_lacks claude "no real secret in the guest (env, files, command line)" 'XYZZY\|real-in:\|cmdline-has-real'
e2e_check_has claude "the project's .env and private key are not in the agent's listing" \
	'^projls=.*README'
e2e_check_lacks claude "neither is in it (ls -A)" '^projls=.*\(\.env\|site\.key\)'
e2e_check_lacks claude "and the agent cannot write a .env over the host's" 'env-overwritten'
e2e_check_has passthrough "kvmbox names what it hid at launch" \
	'hidden from the agent (they stay as they are on the host): .*\.env'
e2e_check_has after "the host's .env is untouched" -x 'STRIPE_KEY=XYZZY-dotenv'
e2e_check_has claude "the guest has /etc/kvmbox/POLICY.md, the sandbox's rules for the agent" \
	'^policy: # The sandbox you run in (kvmbox)'
e2e_check_has claude "naming the repositories GitHub writes may go to" '^policy: - GitHub: writes (push, API) are allowed to \(ada/engine\|no repository\) only'
e2e_check_has claude "and what a refused request looks like" '^policy: .*gets a 403 whose'
e2e_check_has claude "the network line names the profile (permissive by default)" '^policy: - Network: the public internet'
e2e_check_has claude "Claude Code's instructions file points at it" -x 'memory-points=1'
e2e_check_has passthrough "once, however many launches share the state" -x 'memory-points=1'
e2e_check_has claude "the per-launch CA is installed" -x 'ca-installed'
e2e_check_has claude "Node.js is pointed at it" '^NODE_EXTRA_CA_CERTS=/.'
e2e_check_has claude "and Rust/Go clients at the bundle" -x 'SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt'
e2e_check_has after "a file the agent wrote is in the host's project folder" -x 'written-by-agent'
e2e_check_has after "the per-launch directory is removed" -x '0'
e2e_check_has claude "gh's token reaches the guest as a placeholder" '^ghtoken=kvmbox-ph-[0-9a-f]\{32\}$'
e2e_check_has claude "the guest's git credential helper answers with that placeholder" \
	"^gitconfig=.*password=kvmbox-ph-[0-9a-f]\{32\}"
e2e_check_has claude "ssh GitHub remotes go over https in the guest" 'insteadOf = git@github.com:'
e2e_check_has claude "gh's own config holds the placeholder" '^ghhosts=github.com:|    oauth_token: kvmbox-ph-'
if [ -n "$have_git" ]; then
	e2e_check_has claude "the host's git identity is the guest's" '^gitconfig=.*name = "Ada Lovelace"|.*email = "ada@example.com"'
	e2e_check_has passthrough "the project's GitHub remote is on the allow-list without --repo (the other host's is not)" \
		-x 'kvmbox: claude: GitHub writes allowed to ada/engine'
	e2e_check_has claude "at exit kvmbox warns of host-executed files the agent changed" \
		'the agent changed 2 files your machine runs or trusts; read the changes before you run git'
	e2e_check_has claude "a git hook it created, named as such" -x '  .git/hooks/pre-commit: created (a file, executable)'
	e2e_check_has claude "with its contents as a diff" -x '    +echo pwned'
	e2e_check_has claude "and the change to .git/config as a unified diff" -Fx '    +[remote "evil"]'
	e2e_check_has passthrough "a remote the guest added to .git/config is not allowed, and is named" \
		'GitHub remotes added since this project.s first launch are not allowed .*: evil/repo;'
else
	skip "the host's git identity is the guest's" "no git on this machine"
	skip "the project's GitHub remote is on the allow-list without --repo" "no git on this machine"
	skip "a remote the guest added to .git/config is not allowed" "no git on this machine"
fi
e2e_check_has passthrough "the token's source is said (names only)" -x 'kvmbox: claude: GitHub token: gh auth token'
e2e_check_has nogit "--no-git: no GitHub token for the guest" -x 'ghtoken='
e2e_check_has nogit "--no-git: no git configuration either" -x 'gitconfig='
e2e_check_lacks nogit "--no-git: no allow-list from the remotes" 'GitHub writes allowed'
e2e_check_has claude "Claude Code's state is the project's state directory" \
	-x 'configdir=/var/lib/kvmbox/state/claude histfile=/var/lib/kvmbox/state/bash_history'
e2e_check_has claude "first launch: settings seeded (project trusted)" -x 'seeded-trust'
e2e_check_has claude "first launch: no history yet" -x 'history=1'
e2e_check_has passthrough "second launch: the first launch's history is there" -x 'history=2'
e2e_check_has nogit "third launch: still there" -x 'history=3'
e2e_check_has nostate "--no-state: a bare home" -x 'history=1'
e2e_check_has nostate "--no-state: no state directory" -x 'configdir= histfile='
e2e_check_has statedir "one state directory for the project, named after it" '^proj-[0-9a-f]\{16\}\( \|$\)'
e2e_check_has statedir "the state directories are 0700" '^700 proj-[0-9a-f]*/claude$'
e2e_check_has statedir "the pinned remotes beside it are 0600" '^600 proj-[0-9a-f]*\.repos$'
e2e_check_has statedir "so is the record of refusals" '^600 proj-[0-9a-f]*\.denials$'
e2e_check_has statedir "the host holds the three launches' history" -x 'lines=3'
e2e_check_lacks statedir "no real secret in the state directory" 'real-in-state'
e2e_check_lacks statedir "no placeholder login file left in it after the launch" 'entry: .credentials.json'
e2e_check_has claude "the project's .kvmbox.runtime.sh ran in the guest, in the project, before the agent" \
	-x 'hook-ran in /proj'
e2e_check_rc hookfail 3 "a hook that fails: kvmbox exits with its status"
e2e_check_has hookfail "its output is shown" -x 'hook-says-no'
e2e_check_has hookfail "with one line saying the agent was not started" \
	'kvmbox: .kvmbox.runtime.sh failed with status 3; the agent was not started'
e2e_check_lacks hookfail "and the agent did not run" '^pwd='
e2e_check_rc nohook 4 "--no-hook: the agent runs without the hook"
e2e_check_lacks nohook "and the hook did not" 'hook-says-no'
e2e_check_rc selftest 125 "a launch whose egress promise does not hold (a policy broken on purpose) is stopped"
e2e_check_has selftest "by the self-test, in one line naming the promise" \
	'^kvmbox: self-test: http://\(169\.254\.169\.254\|10\.0\.2\.2\)/ was not refused by the egress policy (.*); the agent was not started$'
e2e_check_lacks selftest "before the hook and the agent" '^pwd=\|hook-says-no'
e2e_check_rc noselftest 4 "--no-self-test lets the same launch through: the check was what stopped it"
e2e_check_rc forgedca 125 "a launch whose guest does not trust the proxy (a CA that is not the proxy's) is stopped"
e2e_check_has forgedca "by the self-test, in one line saying which request failed and how" \
	"^kvmbox: self-test: GET https://.* was answered '000 curl: ([0-9]*) .*' where .* was due; the agent was not started\$"
e2e_check_lacks forgedca "before the hook and the agent" '^pwd=\|hook-says-no'
e2e_check_has sessions "kvmbox ps lists the running sandbox with its agent, uptime and memory" \
	'^ps1: bg  *claude  *running  *[0-9][0-9hms]*  *[0-9][0-9]*M  *[0-9.]*s  */proj$'
e2e_check_has sessions "and the launches before it, each named from the project and the agent, as exited" \
	'^ps1: proj-claude  *claude  *exited ([0-9]*) '
e2e_check_has sessions "kvmbox inspect says what it runs with, as JSON" \
	'^inspect: {"name":"bg","agent":"claude","state":"running","project":"/proj","image":"default","egress_profile":"permissive","memory_mib":512,'
e2e_check_has sessions "a second launch with a running sandbox's name is refused" \
	'^clash: kvmbox: claude: the sandbox bg is running (kvmbox ps lists them; --name another)$'
e2e_check_has sessions "kvmbox stop stops it" -x 'stop=0'
e2e_check_has sessions "its agent got SIGTERM, a clean stop" -x 'bg: got-term'
e2e_check_has sessions "and the launch ended with the agent's status" -x 'bgrc=143'
e2e_check_has sessions "kvmbox ps shows it exited with that status" '^ps2: bg  *claude  *exited (143) '
e2e_check_has sessions "kvmbox rm removes its record" -x 'rm=0'
e2e_check_lacks sessions "and ps no longer lists it" '^ps3: bg '
e2e_check_rc noproject 2 "a missing project folder: exit 2"
e2e_check_has noproject "with one line naming it" 'project folder /no/such/dir'
[ "$from" = boot ] && echo "# kvmbox claude, exec to command start: booted $(e2e_phase tmpl1 command_start) ms, from the template $(e2e_phase tmpl2 command_start) ms (TCG in L1, not hardware)"
tap_done
