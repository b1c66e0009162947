#!/bin/bash
# tests/e2e/fs9p_kernel9p.sh - Linux's own 9p client (9p2000.L over a unix
# socket) against `kvmbox fs-serve --9p`.
#
# The development host has no 9p module, and Debian's cloud kernel leaves
# 9p out, so this boots Debian's generic kernel as L1 in the nested harness
# (E2E_L1_FLAVOUR=amd64; no L2 guest is needed) and, inside it, serves a
# directory with `kvmbox fs-serve --9p SOCKET DIR`, mounts it with
# `mount -t 9p -o trans=unix,version=9p2000.L`, and runs the same script of
# file operations (create, read, write, append, rename, symlink, hard link,
# chmod, truncate, mkdir, readdir, rmdir and unlink, errors included) on
# the mount and on a native tmpfs directory: the outputs must be equal.  A
# --read-only share must refuse every kind of write with EROFS and still
# read.  The server must stop on SIGTERM and remove its socket.
. "$(dirname "$0")/../lib/tap.sh"
E2E_L1_FLAVOUR=amd64
E2E_NO_L2=1
. "$(dirname "$0")/lib/nested.sh"
E2E_TEST_NAME="nested harness (kernel 9p client)"
e2e_prepare
[ -f "$E2E_L1_DIR/9p.ko" ] && [ -f "$E2E_L1_DIR/9pnet_fd.ko" ] ||
	skip_all "L1 kernel package $(basename "$E2E_L1_DIR") has no 9p modules"

# The file operations, run in the current directory; every line of output
# is compared between the 9p mount and native tmpfs.
cat >"$E2E_L1_ROOT/ops.sh" <<'OPS'
step() { echo "== $*"; }
step create+read; echo hello >a.txt; cat a.txt
step write-big; seq 1 20000 >seq.txt; wc -c <seq.txt; md5sum <seq.txt
step overwrite-middle; printf 'XYZ' | dd of=seq.txt bs=1 seek=100 conv=notrunc 2>/dev/null; md5sum <seq.txt
step append; echo more >>a.txt; cat a.txt
step rename; mv a.txt b.txt; ls
step symlink; ln -s b.txt link; readlink link; cat link; ln -s /nonexistent dangling; readlink dangling
step hardlink; ln seq.txt hard; stat -c '%h %s' seq.txt hard
step chmod; chmod 751 b.txt; chmod 640 seq.txt; stat -c '%a %F' b.txt seq.txt link
step truncate; truncate -s 10 hard; cat seq.txt | wc -c; truncate -s 0 hard; wc -c <seq.txt
step mkdir+readdir; mkdir -p d/e/f; touch d/e/f/g d/e/h; find d | sort; ls -a d/e | sort | tr '\n' ' '; echo
step errors; cat missing 2>&1; rmdir d 2>&1; mkdir d 2>&1; echo rc=$?
step rename-over; echo one >x; echo two >y; mv x y; cat y; ls x 2>&1
step rename-dir; mv d dd; find dd | sort
step unlink; rm b.txt link dangling hard; rm -r dd; ls
step many; i=0; while [ $i -lt 300 ]; do echo $i >n$i; i=$((i + 1)); done; ls | wc -l; cat n299; rm n*; ls | wc -l
OPS

payload=$(cat <<'PAYLOAD'
for m in netfs fscache 9pnet 9pnet_fd 9p; do
	insmod /lib/modules/$m.ko || echo "@@E2E-9P-INSMOD-FAILED $m"
done
mkdir -p /share/rw /share/ro /mnt/rw /mnt/ro /tmp/native
echo readonly-data >/share/ro/file
mkdir /share/ro/dir
kvmbox fs-serve --9p /tmp/rw.sock /share/rw 2>/tmp/rw.log &
rwpid=$!
kvmbox fs-serve --9p /tmp/ro.sock /share/ro --read-only 2>/tmp/ro.log &
ropid=$!
i=0
while [ $i -lt 100 ] && { [ ! -S /tmp/rw.sock ] || [ ! -S /tmp/ro.sock ]; }; do sleep 0.1; i=$((i + 1)); done
opts=trans=unix,version=9p2000.L,msize=262144
e2e_step mount_rw 30 mount -t 9p -o $opts /tmp/rw.sock /mnt/rw
e2e_step mount_ro 30 mount -t 9p -o $opts /tmp/ro.sock /mnt/ro
e2e_step mounts 10 grep ' 9p ' /proc/mounts
mkdir -p /mnt/rw/work
e2e_step ops_9p 120 sh -c 'cd /mnt/rw/work && sh /ops.sh'
e2e_step ops_native 60 sh -c 'cd /tmp/native && sh /ops.sh'
e2e_step host_view 10 sh -c 'echo hi >/mnt/rw/owned; stat -c "%u %s" /share/rw/owned; cat /share/rw/owned'
e2e_step setuid 10 sh -c 'chmod 4755 /mnt/rw/owned; stat -c %a /mnt/rw/owned /share/rw/owned'
e2e_step ro_read 10 sh -c 'cat /mnt/ro/file; ls /mnt/ro'
e2e_step ro_create 10 sh -c 'echo x >/mnt/ro/new'
e2e_step ro_write 10 sh -c 'echo x >>/mnt/ro/file'
e2e_step ro_mkdir 10 mkdir /mnt/ro/newdir
e2e_step ro_rm 10 rm /mnt/ro/file
e2e_step ro_rename 10 mv /mnt/ro/file /mnt/ro/moved
e2e_step ro_chmod 10 chmod 777 /mnt/ro/file
e2e_step ro_symlink 10 ln -s file /mnt/ro/lnk
e2e_step ro_after 10 sh -c 'cat /mnt/ro/file; ls -1 /mnt/ro; ls -1 /share/ro'
e2e_step umount 30 sh -c 'umount /mnt/rw && umount /mnt/ro'
kill -TERM $rwpid $ropid
e2e_step stopped 20 sh -c "while kill -0 $rwpid 2>/dev/null || kill -0 $ropid 2>/dev/null; do sleep 0.1; done; ls /tmp/*.sock 2>&1; cat /tmp/rw.log /tmp/ro.log"
PAYLOAD
)
if ! e2e_run_in_l1 "$payload" 240; then
	not_ok "L1 boots and runs the payload" "$E2E_WHY"$'\n'"$(e2e_console_tail 40)"
	tap_done
	exit
fi
ok "L1 (Debian generic kernel) boots and runs the payload"
if grep -q '^@@E2E-9P-INSMOD-FAILED' "$E2E_LOG"; then
	not_ok "9p modules load in L1" "$(grep '^@@E2E-9P' "$E2E_LOG")"
else
	ok "9p modules load in L1"
fi

e2e_check_rc() {	# NAME WANT_RC DESCRIPTION
	local rc
	rc=$(e2e_step_rc "$1")
	if [ "$rc" = "$2" ]; then
		ok "$3"
	elif [ -z "$rc" ]; then
		not_ok "$3" "step $1 did not finish; console tail:"$'\n'"$(e2e_console_tail 30)"
	else
		not_ok "$3" "exit status $rc, want $2; output:"$'\n'"$(e2e_step_out "$1" | tail -n 30)"
	fi
}
e2e_check_has() {	# NAME DESCRIPTION GREP-ARGS...
	local name=$1 what=$2
	shift 2
	if e2e_step_out "$name" | grep -q "$@"; then ok "$what"
	else not_ok "$what" "output of step $name:"$'\n'"$(e2e_step_out "$name" | tail -n 30)"; fi
}
# Kernel messages may land on the console in the middle of a step: keep
# only the script's lines.
step_lines() { e2e_step_out "$1" | grep -v '^\[ *[0-9]*\.[0-9]*\]'; }

e2e_check_rc mount_rw 0 "mount -t 9p (trans=unix, 9p2000.L) of fs-serve --9p"
e2e_check_rc mount_ro 0 "mount of a --read-only share"
e2e_check_has mounts "the kernel lists both 9p mounts" '/mnt/ro 9p '
e2e_check_rc ops_9p 0 "file operations on the 9p mount finish"
e2e_check_rc ops_native 0 "file operations on native tmpfs finish"
native=$(step_lines ops_native)
nine=$(step_lines ops_9p)
expect_eq "every operation gives the same output on 9p as natively" "$native" "$nine"
echo "# compared $(echo "$nine" | wc -l) lines of output, e.g. the chmod step:"
echo "$nine" | sed -n '/^== chmod$/,/^== truncate$/p' | sed 's/^/#   /'
for s in create+read write-big append rename symlink hardlink chmod truncate mkdir+readdir errors rename-over unlink many; do
	if [ "$(echo "$native" | sed -n "/^== $s\$/,/^== /p")" = "$(echo "$nine" | sed -n "/^== $s\$/,/^== /p")" ] &&
		echo "$nine" | grep -qx "== $s"; then
		ok "9p matches native: $s"
	else
		not_ok "9p matches native: $s" "native:"$'\n'"$(echo "$native" | sed -n "/^== $s\$/,/^== /p")"$'\n'"9p:"$'\n'"$(echo "$nine" | sed -n "/^== $s\$/,/^== /p")"
	fi
done
e2e_check_has host_view "a file created through 9p is on the host, owned by the server's user" -x '0 3'
# Client view, then the server's: the bit is shown from the server's shadow
# xattr where the share takes user xattrs (this guest's tmpfs does not before
# Linux 6.6, so it is stripped), and never set on the server's file.
case "$(step_lines setuid | tr '\n' ' ')" in
"4755 1755 " | "755 755 ") ok "chmod 4755 through 9p sets no setuid bit on the server's file" ;;
*) not_ok "chmod 4755 through 9p sets no setuid bit on the server's file" "$(step_lines setuid)" ;;
esac
for s in ro_create ro_write ro_mkdir ro_rm ro_rename ro_chmod ro_symlink; do
	rc=$(e2e_step_rc $s)
	if [ -n "$rc" ] && [ "$rc" != 0 ] && e2e_step_out $s | grep -q 'Read-only file system'; then
		ok "read-only share refuses ${s#ro_} with EROFS"
	else
		not_ok "read-only share refuses ${s#ro_} with EROFS" "status ${rc:-none}:"$'\n'"$(e2e_step_out $s | tail -n 5)"
	fi
done
e2e_check_has ro_read "read-only share still reads" -x 'readonly-data'
expect_eq "read-only share unchanged on the host" "readonly-data
dir
file
dir
file" "$(step_lines ro_after)"
e2e_check_rc umount 0 "both mounts unmount"
e2e_check_rc stopped 0 "servers stop on SIGTERM"
e2e_check_has stopped "and remove their sockets" 'No such file or directory'
if step_lines stopped | grep -v 'No such file' | grep -q .; then
	not_ok "servers log nothing" "$(step_lines stopped)"
else
	ok "servers log nothing"
fi
echo "# L1 kernel to userspace ${E2E_L1_UP_S:-?} s; whole nested run ${E2E_WALL_S%.*} s"
tap_done
