#!/bin/bash
# tests/host/fs9p_fuse_stress.sh - Debian's stress-ng filesystem stressors
# (with --verify where they verify) and fio --verify on the FUSE mount, each
# for a bounded time; the server must survive, report no verify failure and
# unmount cleanly.  Also `npm ci` on a small project whose one dependency is
# a local file: tarball (no network).
. "$(dirname "$0")/../lib/tap.sh"
. "$(dirname "$0")/fs9p_common.inc"
fs_setup
SECS=${FS_STRESS_SECONDS:-4}

mkdir -p "$T/src"
fs_mount "$T/src" "$T/mnt" || { not_ok "mount"; exit 1; }
ok "mount"

if command -v stress-ng >/dev/null; then
	for s in hdd dir dentry rename link symlink fallocate copy-file chmod utime fstat open \
		 getdent filename readahead seek lockofd; do
		mkdir -p "$T/mnt/sng-$s"
		out=$(cd "$T/mnt/sng-$s" && timeout $((SECS + 60)) stress-ng --$s 1 --verify \
			--timeout "${SECS}s" --temp-path . --metrics-brief 2>&1)
		rc=$?
		if [ $rc -eq 0 ] && ! grep -qiE 'fail|verif.*error' <<<"$out"; then
			ok "stress-ng --$s --verify (${SECS}s)"
		elif grep -qiE 'not implemented|not supported|skipped' <<<"$out" && [ $rc -ne 2 ]; then
			skip "stress-ng --$s" "$(grep -iE 'not implemented|not supported|skipped' <<<"$out" | head -1)"
		else
			not_ok "stress-ng --$s --verify (rc $rc)" "$(tail -15 <<<"$out")"
		fi
		rm -rf "$T/mnt/sng-$s"
	done
else
	skip "stress-ng" "stress-ng not installed"
fi

if command -v fio >/dev/null; then
	for rw in randwrite write; do
		out=$(timeout $((SECS + 60)) fio --name=v-$rw --directory="$T/mnt" --rw=$rw --bs=4k \
			--size=16m --verify=crc32c --do_verify=1 --verify_fatal=1 --ioengine=psync \
			--runtime="${SECS}s" --numjobs=2 --verify_state_save=0 2>&1)
		rc=$?
		if [ $rc -eq 0 ] && ! grep -q 'verify: bad' <<<"$out"; then
			ok "fio $rw --verify=crc32c"
		else
			not_ok "fio $rw --verify=crc32c (rc $rc)" "$(tail -15 <<<"$out")"
		fi
	done
	rm -f "$T/mnt"/v-*
else
	skip "fio" "fio not installed"
fi

kill -0 "$FS_PID" 2>/dev/null && ok "server survived the stressors" || not_ok "server survived the stressors"

# npm ci with a local tarball dependency.
if command -v npm >/dev/null; then
	lib=$T/mnt/lib-src
	mkdir -p "$lib/lib" "$T/mnt/app"
	cat >"$lib/package.json" <<'JSON'
{ "name": "kvmbox-local-lib", "version": "1.0.0", "main": "lib/index.js", "bin": { "kl": "lib/cli.js" } }
JSON
	echo 'module.exports = (a, b) => a + b;' >"$lib/lib/index.js"
	printf '#!/usr/bin/env node\nconsole.log("cli-" + require("./index.js")(2, 3));\n' >"$lib/lib/cli.js"
	chmod 755 "$lib/lib/cli.js"
	(cd "$T/mnt" && npm pack ./lib-src --pack-destination . >/dev/null 2>&1)
	cat >"$T/mnt/app/package.json" <<'JSON'
{ "name": "app", "version": "1.0.0", "private": true,
  "dependencies": { "kvmbox-local-lib": "file:../kvmbox-local-lib-1.0.0.tgz" } }
JSON
	export npm_config_cache=$T/npm-cache npm_config_audit=false npm_config_fund=false \
		npm_config_update_notifier=false
	if (cd "$T/mnt/app" && timeout 120 npm install --offline --no-audit >"$T/npm.log" 2>&1) &&
	   rm -rf "$T/mnt/app/node_modules" &&
	   (cd "$T/mnt/app" && timeout 120 npm ci --offline --no-audit >>"$T/npm.log" 2>&1); then
		ok "npm ci with a local file: dependency"
		expect_eq "installed module works" 5 "$(cd "$T/mnt/app" && node -e 'console.log(require("kvmbox-local-lib")(2, 3))')"
		expect_eq "installed bin keeps its exec bit" "cli-5" "$(cd "$T/mnt/app" && ./node_modules/.bin/kl 2>&1)"
	else
		not_ok "npm ci with a local file: dependency" "$(tail -15 "$T/npm.log")"
	fi
else
	skip "npm ci" "npm not installed"
fi

if fs_umount "$T/mnt"; then ok "unmount"; else not_ok "unmount"; fi
tap_done
