#!/bin/bash
# tests/e2e/agent_worktree.sh - `kvmbox claude --worktree` end to end in the
# nested harness: two sandboxes on one repository side by side.
#
# L1 holds a git project (/proj, branch main).  Two launches at once,
# --name wa --worktree and --name wb --worktree=feature/b, each with a
# stand-in agent that uses the real git in the guest: each sees a proper
# repository at the project's path on its own branch (kvmbox/wa,
# kvmbox/feature/b), commits a file there, and sees only its own file; the
# project's folder and its main branch are untouched; the agent cannot move
# main or write the repository's configuration (the git directory is
# read-only but for what a commit on its worktree writes).  On the host the
# commits are on the sandboxes' branches at once; kvmbox ps shows the
# branch; kvmbox rm keeps a worktree whose branch has a commit only there,
# removes it (and the branch) once merged, and --force removes one and
# keeps its branch.
. "$(dirname "$0")/../lib/tap.sh"
. "$(dirname "$0")/lib/nested.sh"
E2E_TEST_NAME="nested harness"

need_cmd git
need_cmd curl
e2e_prepare
e2e_add_program "$E2E_L1_ROOT" "$(command -v git)" /usr/bin/git
R=$E2E_L1_ROOT/kc/images/default/rootfs
e2e_add_program "$R" "$(command -v curl)" /usr/bin/curl
e2e_add_program "$R" "$(command -v git)" /usr/bin/git
payload=$(cat <<'PAYLOAD'
export KVMBOX_CACHE=/kc HOME=/home/u XDG_RUNTIME_DIR=/run/u
# one vCPU per sandbox (KVMBOX_CPUS, the config's env knob): the nested
# harness (QEMU TCG emulating SVM) has hung with a spinning vCPU in a
# two-vCPU L2 (docs/bench-vm.md); agent_launch's first launch keeps the
# default two
export KVMBOX_CPUS=1
export GIT_AUTHOR_NAME=Ada GIT_AUTHOR_EMAIL=ada@example.com GIT_COMMITTER_NAME=Ada GIT_COMMITTER_EMAIL=ada@example.com
mkdir -p /proj /kc/images/default $HOME $XDG_RUNTIME_DIR
cd /proj && git init -q -b main && echo 'project file' >README && git add README && git commit -qm first
R=/kc/images/default/rootfs
mkdir -p $R/bin $R/etc/ssl/certs $R/root $R/usr/local/bin $R/.kvmbox $R/tmp
cp /bin/busybox $R/bin/
for a in $(busybox --list); do [ "$a" = busybox ] || ln -s busybox $R/bin/$a; done
echo 1 >$R/.kvmbox/api-version
cat >$R/usr/local/bin/claude <<'AGENT'
#!/bin/sh
for t; do :; done  # the last word: A or B
echo "pwd-$t=$(pwd)"
echo "branch-$t=$(git symbolic-ref --short HEAD 2>&1)"
echo "$t" >"from-$t.txt"
git add "from-$t.txt" && git -c user.name=agent -c user.email=agent@example.com commit -qm "agent $t" 2>&1 &&
	echo "committed-$t"
echo "ls-$t=$(ls | tr '\n' ' ')"
echo "status-$t=$(git status --porcelain 2>&1 | tr '\n' ' ')"
git update-ref refs/heads/main HEAD >/dev/null 2>&1 && echo "moved-main-$t"
git config core.hooksPath /tmp >/dev/null 2>&1 && echo "wrote-config-$t"
# A runs on until B has committed: both at once, each seeing the other's
# branch (the refs are shared) but not its files
if [ "$t" = A ]; then
	end=$(($(date +%s) + 480))  # by the clock: each git here takes long under TCG
	until [ "$(git log -1 --format=%s kvmbox/feature/b 2>/dev/null)" = "agent B" ] || [ $(date +%s) -ge $end ]; do
		sleep 0.5; done
	echo "A-saw-B=$(git log -1 --format=%s kvmbox/feature/b 2>&1) ls=$(ls | tr '\n' ' ')"
fi
AGENT
chmod 755 $R/usr/local/bin/claude
cd /proj
main_before=$(git rev-parse main)
L='--no-hook --kernel /vmlinux --initrd /l2.cpio --memory 384M'
# wb boots once wa's agent has committed (two L2 boots at once under TCG
# are what the harness cannot take), while wa's agent still runs
e2e_step both 600 sh -c "kvmbox claude --name wa --worktree $L -- --wt A >/tmp/wa.out 2>&1 & a=\$!
	n=0; until grep -q committed-A /tmp/wa.out || [ \$n -ge 300 ]; do sleep 1; n=\$((n + 1)); done
	kvmbox ps | sed 's/^/ps: /'
	kvmbox claude --name wb --worktree=feature/b $L -- --wt B >/tmp/wb.out 2>&1; echo \"wbrc=\$?\"
	wait \$a; echo \"warc=\$?\"; sed 's/^/wa: /' /tmp/wa.out; sed 's/^/wb: /' /tmp/wb.out"
e2e_step host 30 sh -c "cd /proj; echo \"main-same=\$( [ \$(git rev-parse main) = $main_before ] && echo yes)\"
	ls | sed 's/^/proj-ls: /'; git status --porcelain | sed 's/^/proj-status: /'
	git log -1 --format='wa-log=%s' kvmbox/wa; git log -1 --format='wb-log=%s' kvmbox/feature/b
	git config --get core.hooksPath | sed 's/^/hookspath: /'
	kvmbox ps | sed 's/^/ps2: /'"
e2e_step rm 60 sh -c 'cd /proj; kvmbox rm wa; echo "rm1=$?"; git merge -q kvmbox/wa; kvmbox rm wa; echo "rm2=$?"
	git show-ref --verify --quiet refs/heads/kvmbox/wa; echo "wa-branch=$?"
	kvmbox rm --force wb; echo "rm3=$?"; git show-ref --verify --quiet refs/heads/kvmbox/feature/b; echo "wb-branch=$?"
	git worktree list | wc -l | sed "s/^/worktrees: /"'
PAYLOAD
)
e2e_run_or_bail "$payload" 1100

e2e_check_has both "two sandboxes on one repository run side by side" '^ps: wa .*running'
e2e_check_has both "the first still ran when the second committed, and saw its branch, not its files" \
	-x 'wa: A-saw-B=agent B ls=README from-A.txt '
e2e_check_has both "each ended well" -x 'wbrc=0'
e2e_check_has both "the other too" -x 'warc=0'
e2e_check_has both "the guest's git sees a repository on the sandbox's branch" -x 'wa: branch-A=kvmbox/wa'
e2e_check_has both "or the branch asked for" -x 'wb: branch-B=kvmbox/feature/b'
e2e_check_has both "at the project's path" -x 'wa: pwd-A=/proj'
e2e_check_has both "and commits there" -x 'wa: committed-A'
e2e_check_has both "both of them" -x 'wb: committed-B'
e2e_check_has both "each sees its own files only" -x 'wa: ls-A=README from-A.txt '
e2e_check_has both "the other one likewise" -x 'wb: ls-B=README from-B.txt '
e2e_check_has both "git status is clean after the commit" -x 'wa: status-A='
e2e_check_lacks both "the agent cannot move the project's main branch" 'moved-main'
e2e_check_lacks both "nor write the repository's configuration" 'wrote-config'
e2e_check_has both "the launch names the worktree and its branch" 'wa: kvmbox: claude: worktree .* on branch kvmbox/wa (new)'
e2e_check_has host "the project's main branch is untouched" -x 'main-same=yes'
e2e_check_lacks host "and so is its folder" 'from-'
e2e_check_has host "the sandbox's commit is on its branch on the host" -x 'wa-log=agent A'
e2e_check_has host "the other's on its own" -x 'wb-log=agent B'
e2e_check_lacks host "the configuration is as it was" 'hookspath'
e2e_check_has host "kvmbox ps shows the branch" '^ps2: wb .*exited (0) .*/proj (kvmbox/feature/b)$'
e2e_check_has rm "kvmbox rm keeps a worktree whose branch has a commit only there" -x 'rm1=1'
e2e_check_has rm "saying why" 'rm: wa.s worktree: its branch kvmbox/wa has 1 commit no other branch has'
e2e_check_has rm "once merged, it goes" -x 'rm2=0'
e2e_check_has rm "with its branch" -x 'wa-branch=1'
e2e_check_has rm "--force removes one with a commit of its own" -x 'rm3=0'
e2e_check_has rm "and keeps its branch" -x 'wb-branch=0'
e2e_check_has rm "no worktree is left" -x 'worktrees: 1'
tap_done
