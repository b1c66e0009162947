#!/bin/bash
# tests/host/fs9p_fuse_escape.sh - the escape suite over /dev/fuse; every
# attempt must fail closed:
#  - relative symlinks out of the share (the server never follows a link:
#    the mount is placed so that client-side resolution finds nothing, so
#    the secret could only come back through the server);
#  - a symlink swapped in for a file between lookup and open, in a loop;
#  - a hard link made of a symlink pointing outside;
#  - mknod of devices (FIFOs and sockets are made, as on a local disk, and
#    work inside the mount; the server never opens one);
#  - creating a setuid/setgid file (the bits never reach the host file),
#    and setuid cleared on write;
#  - 50,000 files, all looked up and read, and as many held open as the
#    client can, under a server `ulimit -n 1024`;
#  - writing through a read-only share.
# '..' and absolute-symlink escapes are proven against the server directly
# in tests/unit/test_fs9p_fuse.c and test_fs9p_core.c (on a host mount the
# host kernel resolves those itself, so they prove nothing here).
. "$(dirname "$0")/../lib/tap.sh"
. "$(dirname "$0")/fs9p_common.inc"
fs_setup
need_cmd python3

share=$T/a/share
src=$share/src
mnt=$T/b/c/d/mnt
mkdir -p "$src" "$mnt"
echo TOPSECRET >"$share/secret"
ln -s ../secret "$src/rel-up"
mkdir -p "$src/dir"
ln -s ../../secret "$src/dir/rel-up2"
echo harmless >"$src/race"

# Many files, created natively (fast) for the fd-limit checks below.
python3 - "$src/many" <<'PY'
import os, sys
d = sys.argv[1]
os.makedirs(d)
for i in range(50000):
    with open(os.path.join(d, "f%05d" % i), "w") as f:
        f.write("%d\n" % i)
PY

# The server runs under the default soft fd limit.
( ulimit -n 1024; exec "$KVMBOX_BIN" fs-serve --fuse "$mnt" "$src" ) >>"$T/server.log" 2>&1 &
FS_PID=$!
for _ in $(seq 100); do fs_mounted "$mnt" && break; sleep 0.1; done
fs_mounted "$mnt" || { not_ok "mount"; exit 1; }
ok "mount (server ulimit -n 1024)"

for l in rel-up dir/rel-up2; do
	out=$(cat "$mnt/$l" 2>&1)
	case $out in *TOPSECRET*) not_ok "relative symlink $l does not reach the secret" "$out" ;;
	*) ok "relative symlink $l does not reach the secret" ;; esac
done
expect_eq "readlink returns the stored target" "../secret" "$(readlink "$mnt/rel-up")"

# Swap race: the host flips 'race' between a file and a link to ../secret.
(
	cd "$src" || exit
	end=$((SECONDS + 4))
	while [ $SECONDS -lt $end ]; do
		ln -sfn ../secret race.tmp && mv -Tf race.tmp race
		echo harmless >race.tmp && mv -Tf race.tmp race
	done
) &
swapper=$!
leaked=0 reads=0
end=$((SECONDS + 4))
while [ $SECONDS -lt $end ]; do
	out=$(cat "$mnt/race" 2>/dev/null)
	reads=$((reads + 1))
	case $out in *TOPSECRET*) leaked=$((leaked + 1)) ;; esac
done
wait "$swapper"
expect_eq "symlink swapped in between lookup and open: secret never read ($reads reads)" 0 "$leaked"

# A hard link of a symlink that points out of the share links the symlink
# itself (never the outside file it names).
ln -s "$share/secret" "$mnt/abs-link"
python3 -c 'import os, sys; os.link(sys.argv[1], sys.argv[2], follow_symlinks=False)' \
	"$mnt/abs-link" "$mnt/hard" 2>/dev/null
expect_eq "hard link of an outward symlink is a symlink on the host" "symbolic link 2 1" \
	"$(stat -c '%F %h' "$src/hard") $(stat -c %h "$share/secret")"

# Special files: device nodes refused; FIFOs and unix sockets made (git's
# fsmonitor, language servers and test suites need them), and they work
# through the mount as on a local disk.
for spec in "c 1 3" "b 7 0"; do
	name=node-${spec// /-}
	if mknod "$mnt/$name" $spec 2>/dev/null; then not_ok "mknod $spec refused"; else ok "mknod $spec refused"; fi
	[ -e "$src/$name" ] && not_ok "mknod $spec left nothing on the host" || ok "mknod $spec left nothing on the host"
done
check "mkfifo works in the share" mkfifo -m 0666 "$mnt/fifo"
check "the FIFO is a FIFO on the host" test -p "$src/fifo"
out=$( (echo through-the-fifo > "$mnt/fifo" &) ; timeout 5 cat "$mnt/fifo")
expect_eq "bytes pass through the FIFO in the mount" "through-the-fifo" "$out"
out=$(timeout 10 python3 -c '
import os, socket, sys, threading
p = sys.argv[1]
s = socket.socket(socket.AF_UNIX); s.bind(p); s.listen(1)
def serve():
    c, _ = s.accept(); c.sendall(c.recv(100).upper()); c.close()
threading.Thread(target=serve).start()
c = socket.socket(socket.AF_UNIX); c.connect(p); c.sendall(b"ping"); print(c.recv(100).decode())' "$mnt/sock" 2>&1)
expect_eq "a unix socket bound in the share accepts a connection" "PING" "$out"
check "the socket is a socket on the host" test -S "$src/sock"

# setuid / setgid
# The bits never reach the host file; the mount shows them (the server
# keeps them in a shadow xattr) where the share takes user xattrs.
no_privs_on_host() { [ $((0$(stat -c %a "$1") & 06000)) = 0 ]; }
if python3 -c 'import os, sys; os.setxattr(sys.argv[1], "user.probe", b"1")' "$src/dir" 2>/dev/null; then
	shown=6755
else
	shown="755 (no user xattrs here: stripped)"
fi
touch "$mnt/suid"
chmod 6755 "$mnt/suid" 2>/dev/null
check "chmod 6755 on the mount: no setuid/setgid on the host" no_privs_on_host "$src/suid"
expect_eq "chmod 6755 on the mount: the mount shows $shown" "${shown%% *}" "$(stat -c %a "$mnt/suid")"
install -m 4755 /bin/true "$mnt/suid-install" 2>/dev/null
check "install -m 4755: no setuid on the host" no_privs_on_host "$src/suid-install"
expect_eq "install -m 4755: the file still runs from the mount" 0 "$("$mnt/suid-install"; echo $?)"
printf 'x' | dd of="$mnt/suid" bs=1 seek=10 conv=notrunc status=none 2>/dev/null
sleep 1.2	# the client's attribute cache (1 s with --cache auto) still has the old mode
expect_eq "a write through the mount clears the mount's setuid/setgid" 755 "$(stat -c %a "$mnt/suid")"
expect_eq "... and the host file is left plain" 755 "$(stat -c %a "$src/suid")"
cp /bin/true "$src/host-suid"; chmod 4755 "$src/host-suid"
printf 'x' | dd of="$mnt/host-suid" bs=1 seek=100000 conv=notrunc status=none 2>/dev/null
expect_eq "write through the mount clears a host file's setuid" 755 "$(stat -c %a "$src/host-suid")"

# 50,000 files under a 1024 fd limit.
n=$(find "$mnt/many" -type f | wc -l)
expect_eq "50,000 files listed" 50000 "$n"
sum=$(find "$mnt/many" -type f -exec cat {} + | awk '{ s += $1 } END { print s }')
expect_eq "50,000 files opened and read" 1249975000 "$sum"
fds=$(ls /proc/"$FS_PID"/fd | wc -l)
[ "$fds" -le 1024 ] && ok "server holds $fds fds (<= 1024)" || not_ok "server holds $fds fds (<= 1024)"

# Hold as many open as we can: the server must refuse cleanly, not die.
out=$(python3 - "$mnt/many" <<'PY' 2>&1
import os, sys, resource
hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
try:
    resource.setrlimit(resource.RLIMIT_NOFILE, (60000, 60000))
except (ValueError, OSError):
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
d = sys.argv[1]
fds, err = [], None
for i in range(50000):
    try:
        fds.append(os.open(os.path.join(d, "f%05d" % i), os.O_RDONLY))
    except OSError as e:
        err = e.errno; break
for fd in fds: os.close(fd)
print("opened", len(fds), "then", "ok" if err is None else os.strerror(err))
PY
)
echo "# $out"
case $out in opened*) ok "holding 50,000 open files fails closed: $out" ;;
*) not_ok "holding 50,000 open files fails closed" "$out" ;; esac
kill -0 "$FS_PID" 2>/dev/null && ok "server still alive" || not_ok "server still alive"
expect_eq "server still serves afterwards" "49999" "$(cat "$mnt/many/f49999")"
fds=$(ls /proc/"$FS_PID"/fd | wc -l)
[ "$fds" -le 1024 ] && ok "server back to $fds fds" || not_ok "server back to $fds fds"

if fs_umount "$mnt"; then ok "unmount"; else not_ok "unmount"; fi

# Read-only share.
fs_mount "$src" "$mnt" --read-only || not_ok "read-only mount"
for cmd in "echo x >$mnt/race" "touch $mnt/new" "mkdir $mnt/newdir" "rm -f $mnt/race" \
	"ln -s x $mnt/newlink" "mv $mnt/race $mnt/race2" "chmod 777 $mnt/race" "truncate -s 0 $mnt/race"; do
	if (eval "$cmd") 2>/dev/null; then not_ok "read-only: '$cmd' refused"; else ok "read-only: '$cmd' refused"; fi
done
expect_eq "read-only: host untouched" "harmless 644" "$(cat "$src/race") $(stat -c %a "$src/race")"
fs_umount "$mnt" || not_ok "read-only unmount"
tap_done
