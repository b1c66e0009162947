#!/bin/bash
# tests/host/cli_inputs.sh - bad flags and bad inputs of the launching
# commands (run, shell, claude, codex, opencode) are judged before the host's
# KVM is opened: status 2 and exactly one line naming the command typed and
# the input, the same on every host (with or without /dev/kvm).  A bad flag
# is reported as such whether a guest kernel exists or not; a random-bytes
# kernel is called what it is; --memory takes 2G, 2048M and plain MiB.
set -u
. "$(dirname "$0")/../lib/tap.sh"
[ -x "$KVMBOX_BIN" ] || skip_all "kvmbox not built"
G=${BUILD:-$KVMBOX_TOP/build}/firmware/tests
[ -f "$G/hello.elf" ] || G=$KVMBOX_TOP/build/firmware/tests
[ -f "$G/hello.elf" ] || skip_all "tiny guests not built (make)"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
head -c 100000 /dev/urandom >"$T/random"
echo 'not an initrd either' >"$T/initrd"
mkdir -p "$T/cache" "$T/home" "$T/bin" "$T/proj"
# No default kernel anywhere (not in the cache, not next to the binary):
# only what a test names.
cp "$KVMBOX_BIN" "$T/bin/kvmbox"
KVMBOX_BIN=$T/bin/kvmbox
export KVMBOX_CACHE=$T/cache HOME=$T/home
unset KVMBOX_KERNEL KVMBOX_INITRD

# one NAME WANT_PATTERN CMD...: status 2, one line on stderr matching the
# pattern, nothing on stdout, no word of /dev/kvm; run in $T/proj, or in
# $IN when set.
one() {
	local name=$1 want=$2 out err rc
	shift 2
	out=$(cd "${IN:-$T/proj}" && timeout 20 "$KVMBOX_BIN" "$@" 2>"$T/err" </dev/null)
	rc=$?
	err=$(cat "$T/err")
	if [ "$rc" = 2 ] && [ -z "$out" ] && [ "$(printf '%s\n' "$err" | wc -l)" = 1 ] &&
		printf '%s\n' "$err" | grep -q -- "$want" && ! printf '%s' "$err" | grep -q /dev/kvm; then
		ok "$name"
	else
		not_ok "$name" "status $rc, stdout '$out', stderr:"$'\n'"$err"
	fi
}

one "run: a random-bytes kernel is named as such" \
	"^kvmbox: run: kernel $T/random: kernel image is neither an ELF vmlinux nor a bzImage" \
	run --kernel "$T/random"
one "shell: the same" "^kvmbox: shell: kernel $T/random: kernel image is neither" shell --kernel "$T/random"
one "run: a kernel that is a directory" "^kvmbox: run: kernel $T: not a regular file" run --kernel "$T"
one "run: a missing kernel" "^kvmbox: run: kernel $T/none: No such file" run --kernel "$T/none"
one "run: a missing initrd (kernel good)" "^kvmbox: run: initrd $T/none: No such file" \
	run --kernel "$G/hello.elf" --initrd "$T/none"
one "shell: a bad flag, with no kernel anywhere: the flag is the error" \
	"^kvmbox: shell: unknown option '--bogus' (try kvmbox shell --help)" shell --bogus
one "run: no kernel anywhere: says where it looked and how to build one" \
	"^kvmbox: run: no guest kernel: .*make kernel initrd" run
one "run: --memory 3X" "^kvmbox: run: --memory wants a size" run --kernel "$G/hello.elf" --memory 3X
one "run: --memory 2T is refused" "^kvmbox: run: --memory wants a size" run --kernel "$G/hello.elf" --memory 2T
one "run: --memory 2G with a bad kernel: the kernel is the error (2G is valid)" \
	"^kvmbox: run: kernel $T/random" run --memory 2G --kernel "$T/random"
one "run: --memory 1M is below the minimum" "^kvmbox: run: --memory 1M is out of range" \
	run --kernel "$G/hello.elf" --memory 1M
one "run --proxy: a bad --secret, judged by the broker before any VM" \
	"^kvmbox: run: --secret: " run --kernel "$G/hello.elf" --proxy --secret nonsense
one "shell --proxy: a bad --repo" "^kvmbox: shell: bad --repo 'x' (want OWNER/NAME)" \
	shell --kernel "$G/hello.elf" --proxy --repo x
one "run --template: it is kvmbox shell's" "^kvmbox: run: --template is kvmbox shell's" \
	run --kernel "$G/hello.elf" --template
one "shell --template with --snapshot: refused" \
	"^kvmbox: shell: --template makes and restores its own snapshots" \
	shell --kernel "$G/hello.elf" --template --snapshot "$T/snap"
one "shell --template with a 9P share: refused (its fids are not saved)" \
	"^kvmbox: shell: --template does not work with --share-9p" \
	shell --kernel "$G/hello.elf" --initrd "$T/initrd" --template --share-9p "$T/proj:/p"
one "shell --suspend-to with --snapshot: one folder saves a VM" \
	"^kvmbox: shell: --suspend-to and --snapshot: choose one" \
	shell --kernel "$G/hello.elf" --suspend-to "$T/a" --snapshot "$T/b"
one "shell --suspend-to with a 9P share: refused (its fids are not saved)" \
	"^kvmbox: shell: --suspend-to does not work with --share-9p" \
	shell --kernel "$G/hello.elf" --suspend-to "$T/a" --share-9p "$T/proj:/p"
one "run --suspend-to with --proxy: refused likewise" "^kvmbox: run: --suspend-to does not work with --proxy" \
	run --kernel "$G/hello.elf" --suspend-to "$T/snap" --proxy
one "run --snapshot with --proxy: refused (kvmbox run's CA is on the booted command line)" \
	"^kvmbox: run: --snapshot does not work with --proxy (its CA is on the booted command line: use kvmbox shell)" \
	run --kernel "$G/hello.elf" --snapshot "$T/snap" --proxy
one "run --restore with --proxy: refused likewise" "^kvmbox: run: --restore does not work with --proxy" \
	run --restore "$T/snap" --proxy
one "kvmbox .vm typed by hand (it is the broker's VMM): refused" \
	"^kvmbox: .vm is started by kvmbox itself" .vm shell
one "claude: a bad --memory names claude and its help" \
	"^kvmbox: claude: --memory wants a size.*(try kvmbox claude --help)" claude -p hi --memory 3X
one "codex: a flag without its value" "^kvmbox: codex: --cpus needs a value" codex exec x --cpus
one "opencode: a random-bytes kernel" "^kvmbox: opencode: kernel $T/random: kernel image is neither" \
	opencode run hi --kernel "$T/random" --initrd "$T/initrd"
one "claude: an image that does not exist (kernel and initrd fine)" \
	"image 'nosuch' not found" \
	claude --kernel "$G/hello.elf" --initrd "$T/initrd" --image nosuch -p hi
one "claude: a missing project folder" "^kvmbox: claude: project folder /no/such/dir" \
	claude --project /no/such/dir
out=$("$KVMBOX_BIN" claude --help 2>&1)
case $out in
*"Every other word goes to the agent"*) ok "claude --help says where unknown words go" ;;
*) not_ok "claude --help says where unknown words go" "$out" ;;
esac
# The project folder never exposes the user's credentials: not the home
# folder, not above it, not one holding or inside a credential store; each
# refused before anything else, whatever the agent.
mkdir -p "$T/home/.ssh/keys" "$T/home/.config/gh" "$T/home/.claude"
: >"$T/home/.claude/.credentials.json"
IN=$T/home one "claude in the home folder is refused" \
	"^kvmbox: claude: $T/home is your home folder, which holds your credentials" claude
IN=$T one "codex above the home folder is refused" "^kvmbox: codex: $T is above your home folder" codex
IN=/ one "opencode in / is refused" "^kvmbox: opencode: / is above your home folder" opencode
IN=$T/home/.config one "a folder holding ~/.config/gh is refused" \
	"^kvmbox: claude: $T/home/.config holds ~/.config/gh, your credentials" claude
IN=$T/home/.ssh/keys one "a folder inside ~/.ssh is refused" \
	"^kvmbox: claude: $T/home/.ssh/keys is inside ~/.ssh" claude
pwhome=$(getent passwd "$(id -u)" | cut -d: -f6)
if [ -d "$pwhome" ] && [ "$(realpath "$pwhome")" != / ]; then
	IN=$pwhome one "with HOME elsewhere, the home folder of the password database is still refused" \
		"^kvmbox: claude: $(realpath "$pwhome") is your home folder" claude
else
	skip "with HOME elsewhere, the home folder of the password database is still refused" \
		"this user's home in the password database is ${pwhome:-not set} (none or /)"
fi
ln -s "$T/home" "$T/proj/home-link"
IN=$T/proj/home-link one "the home folder through a symbolic link is refused" \
	"^kvmbox: claude: $T/home is your home folder" claude
IN=$T/home one "the refusal names --force" "^kvmbox: claude: $T/home is your home folder.*(--force shares it" claude
# --force: the home folder passes the guard, says what it exposes, and the
# launch goes on (to the next thing this host lacks: a kernel)
err=$(cd "$T/home" && timeout 20 "$KVMBOX_BIN" claude --force -p hi 2>&1 </dev/null)
case $err in *"--force: sharing $T/home, your home folder or one above it; its credential stores are hidden"*)
	ok "--force: the home folder is shared, saying its stores are hidden and the rest is not" ;;
*) not_ok "--force: the home folder is shared, saying its stores are hidden and the rest is not" "$err" ;; esac
case $err in *"is your home folder"*) not_ok "--force: the guard let it through" "$err" ;;
*) ok "--force: the guard let it through" ;; esac
IN=$T/home/.ssh/keys one "--force never opens a credential store" "^kvmbox: claude: $T/home/.ssh/keys is inside ~/.ssh" \
	claude --force
IN=$T/home/.config one "nor a folder holding one" "^kvmbox: claude: $T/home/.config holds ~/.config/gh" claude --force
# kvmbox logs
one "logs without a name or --denials says which" "^kvmbox: logs: say which: NAME \[--raw\] \[--follow\], or --denials" logs
# detach, attach, worktrees, the clipboard
one "attach without a name" "^kvmbox: attach: which session?" attach
one "attach with two names" "^kvmbox: attach: one session name, not more" attach a b
one "attach: bad --detach-keys" "^kvmbox: attach: --detach-keys wants two keys" attach --detach-keys ctrl-1,d x
one "claude: bad --detach-keys" "^kvmbox: claude: --detach-keys d: two keys" claude --detach-keys d
one "claude: a --worktree branch kvmbox does not make" "^kvmbox: claude: --worktree=../x: not a branch name" claude --worktree=../x
one "claude: --worktree with --review" "^kvmbox: claude: --worktree and --review: choose one" claude --worktree --review
one "clipboard without put or get" "^kvmbox: clipboard: put or get" clipboard
one "clipboard: an option for a name" "^kvmbox: clipboard: put or get" clipboard put -x
one "rm without a name" "^kvmbox: rm: which session?" rm --force
one "logs: an unknown option" "^kvmbox: logs: unknown option --bogus" logs --bogus
one "logs: --project without its value" "^kvmbox: logs: a value is missing for --project" logs --denials --project
one "logs: a missing project folder" "^kvmbox: logs: project folder /no/such/dir" logs --denials --project /no/such/dir
mkdir "$T/fresh"
out=$(cd "$T/fresh" && "$KVMBOX_BIN" logs --denials 2>&1); rc=$?
expect_eq "logs --denials before any launch: status 1, one line" \
	"1 kvmbox: logs: no launch on $T/fresh has recorded refusals yet" "$rc $out"
out=$(cd "$T/proj" && "$KVMBOX_BIN" logs --denials 2>&1); rc=$?
case "$rc $out" in "0 "*" launch: kvmbox claude in $T/proj, egress profile permissive"*)
	ok "logs --denials: the launches tried here are recorded, one line each" ;;
*) not_ok "logs --denials: the launches tried here are recorded, one line each" "$rc $out" ;; esac
# kvmbox bench boot: its own flags judged before any run; a run kvmbox run
# refuses ends it with one line naming the run, and the same status.
one "bench: which benchmark" "^kvmbox: bench: which benchmark? (boot)" bench
one "bench: an unknown benchmark" "^kvmbox: bench: unknown benchmark (boot)" bench net
one "bench boot: --runs 0" "^kvmbox: bench: --runs takes 1 to 1000" bench boot --runs 0
one "bench boot: --runs x" "^kvmbox: bench: --runs takes 1 to 1000" bench boot --runs x
one "bench boot: --cpus 65" "^kvmbox: bench: --cpus takes 1 to 64" bench boot --cpus 65
one "bench boot: --initcalls 101" "^kvmbox: bench: --initcalls takes 0 to 100" bench boot --initcalls 101
one "bench boot: an unknown flag" "^kvmbox: bench: unknown option '--bogus'" bench boot --bogus
one "bench boot: a stray argument" "^kvmbox: bench: unexpected argument 'x'" bench boot x
err=$(TMPDIR=$T timeout 20 "$KVMBOX_BIN" bench boot --runs 1 --kernel "$T/none" 2>&1 >/dev/null)
rc=$?
case "$rc:$err" in
"2:kvmbox: bench: a template, then 1 cold boot and 1 restore..."$'\n'"kvmbox: bench: saving the template failed: run: kernel $T/none: No such file"*)
	ok "bench boot: a kernel kvmbox run refuses stops it at the template, exit 2" ;;
*) not_ok "bench boot: a kernel kvmbox run refuses stops it at the template, exit 2" "$rc: $err" ;; esac
if ls "$T" | grep -q kvmbox-bench; then not_ok "bench boot: its temporary folder is removed" "$(ls "$T")"
else ok "bench boot: its temporary folder is removed"; fi
tap_done
