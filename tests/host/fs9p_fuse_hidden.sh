#!/bin/bash
# tests/host/fs9p_fuse_hidden.sh - sensitive files kept out of the client's
# sight by the file server (`kvmbox fs-serve --hide`, what an agent's
# project share does; launch/hidden.h), with the host kernel's FUSE client
# as the peer: a .env, private keys, a copied ~/.ssh and Codex's login file
# are not readable, not listable (ls, find), not removable or renamable,
# whatever their case, and nothing can be created under such a name (not
# even by renaming or linking a visible file onto it); the folder that
# hides Codex's login file cannot be renamed to show it; everything else
# works as before, and
# every hidden file is untouched on the host afterwards.
. "$(dirname "$0")/../lib/tap.sh"
. "$(dirname "$0")/fs9p_common.inc"
fs_setup

src=$T/proj
mnt=$T/mnt
mkdir -p "$src/sub" "$src/.ssh" "$src/.codex" "$src/tools"
echo 'OPENAI_API_KEY=sk-XYZZY' >"$src/.env"
echo 'DB=XYZZY' >"$src/.env.production"
echo 'XYZZY key' >"$src/server.key"
echo 'XYZZY key' >"$src/OLD.KEY"
echo 'XYZZY rsa' >"$src/sub/id_rsa"
echo 'XYZZY ssh' >"$src/.ssh/config"
echo '{"tokens":"XYZZY"}' >"$src/.codex/auth.json"
echo '{"source":1}' >"$src/tools/auth.json"
echo 'readme' >"$src/README"
before=$(cd "$src" && find . -type f -exec md5sum {} + | LC_ALL=C sort)

fs_mount "$src" "$mnt" --hide || { not_ok "mount with --hide"; tap_done; exit; }
ok "mount with --hide"

for f in .env .env.production server.key OLD.KEY sub/id_rsa .ssh/config .codex/auth.json; do
	if cat "$mnt/$f" >/dev/null 2>&1 || [ -e "$mnt/$f" ]; then not_ok "$f is absent"
	else ok "$f is absent"; fi
done
check "a name that only looks alike is there (tools/auth.json)" grep -q source "$mnt/tools/auth.json"
check "and the rest of the project" grep -qx readme "$mnt/README"
listing=$(ls -A "$mnt" "$mnt/sub" "$mnt/.codex"; find "$mnt" -print)
if printf '%s\n' "$listing" | grep -qE '\.env|server\.key|id_rsa|\.ssh|\.codex/auth\.json'; then
	not_ok "no hidden name in ls -A or find" "$listing"
else ok "no hidden name in ls -A or find"; fi
if grep -rqs XYZZY "$mnt"; then not_ok "grep -r finds no secret through the mount"
else ok "grep -r finds no secret through the mount"; fi

refused() { # WHAT CMD...: the command fails
	local what=$1; shift
	if "$@" 2>/dev/null; then not_ok "$what is refused"; else ok "$what is refused"; fi
}
refused "writing a new .env" sh -c "echo x >'$mnt/.env'"
refused "creating new.pem" sh -c "echo x >'$mnt/new.pem'"
refused "mkdir .aws" mkdir "$mnt/.aws"
refused "a symlink named id_ed25519" ln -s README "$mnt/id_ed25519"
refused "a hard link named copy.p12" ln "$mnt/README" "$mnt/copy.p12"
refused "renaming README onto .env" mv -T "$mnt/README" "$mnt/.env"
refused "renaming .env away" mv "$mnt/.env" "$mnt/stolen"
refused "removing .env" rm "$mnt/.env"
refused "removing .ssh" rm -r "$mnt/.ssh"
refused "renaming .codex (which hides its auth.json) away" mv "$mnt/.codex" "$mnt/codex2"
check "auth.json stays out of sight" sh -c "! cat '$mnt/codex2/auth.json' 2>/dev/null && ! cat '$mnt/.codex/auth.json' 2>/dev/null"
check "an ordinary file is created" sh -c "echo new >'$mnt/notes.txt' && grep -qx new '$src/notes.txt'"
check "and renamed" sh -c "mv '$mnt/notes.txt' '$mnt/notes2.txt' && [ -f '$src/notes2.txt' ]"
rm -f "$src/notes2.txt"

fs_umount "$mnt" && ok "unmount" || not_ok "unmount"
after=$(cd "$src" && find . -type f -exec md5sum {} + | LC_ALL=C sort)
expect_eq "every file on the host is as it was" "$before" "$after"
for f in new.pem id_ed25519 copy.p12 .aws stolen codex2; do
	[ -e "$src/$f" ] && not_ok "nothing named $f on the host"
done
ok "nothing made on the host under a hidden name"
tap_done
