#!/bin/bash
# tests/host/fs9p_fuse_random.sh - random-operation conformance: the same
# seeded sequence of file operations (create, write at offsets, truncate,
# rename, link, symlink, unlink, mkdir, rmdir, chmod, utime, xattrs, reads,
# listings) runs on the FUSE mount and on a native directory; every result
# (data or errno) and the final trees must be identical.
. "$(dirname "$0")/../lib/tap.sh"
. "$(dirname "$0")/fs9p_common.inc"
fs_setup
need_cmd python3

cat >"$T/randops.py" <<'PY'
import errno, os, random, stat, sys, zlib

root, seed, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)
dirs = ["", "d0", "d1", "d0/e0"]
def path():
    return os.path.join(root, rng.choice(dirs), "n%d" % rng.randrange(6))
def anydir():
    return os.path.join(root, rng.choice(dirs))
def rel(p):
    return os.path.relpath(p, root)

def st_desc(st):
    t = stat.S_IFMT(st.st_mode)
    size = st.st_size if not stat.S_ISDIR(st.st_mode) else "-"
    return "t=%o m=%o s=%s n=%d mt=%d" % (t, stat.S_IMODE(st.st_mode), size,
        st.st_nlink if not stat.S_ISDIR(st.st_mode) else 0, int(st.st_mtime) if st.st_mtime < 1.5e9 else -1)

def op_write():
    p = path(); off = rng.randrange(0, 70000); n = rng.randrange(0, 9000)
    data = bytes(rng.randrange(256) for _ in range(min(n, 64))) * (n // 64 + 1)
    fd = os.open(p, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.pwrite(fd, data[:n], off)
    finally:
        os.close(fd)
    return "write %s %d %d" % (rel(p), off, n)
def op_append():
    p = path()
    with open(p, "ab") as f: f.write(b"appended\n" * rng.randrange(1, 50))
    return "append " + rel(p)
def op_read():
    p = path()
    with open(p, "rb") as f: d = f.read()
    return "read %s %d %d" % (rel(p), len(d), zlib.crc32(d))
def op_pread():
    p = path(); off = rng.randrange(0, 80000)
    fd = os.open(p, os.O_RDONLY)
    try: d = os.pread(fd, 5000, off)
    finally: os.close(fd)
    return "pread %s %d %d" % (rel(p), len(d), zlib.crc32(d))
def op_trunc():
    p = path(); n = rng.randrange(0, 100000); os.truncate(p, n); return "truncate %s %d" % (rel(p), n)
def op_unlink():
    p = path(); os.unlink(p); return "unlink " + rel(p)
def op_mkdir():
    p = path(); os.mkdir(p, rng.choice([0o755, 0o700, 0o775])); return "mkdir " + rel(p)
def op_rmdir():
    p = path(); os.rmdir(p); return "rmdir " + rel(p)
def op_rename():
    a, b = path(), path(); os.rename(a, b); return "rename %s %s" % (rel(a), rel(b))
def op_link():
    a, b = path(), path(); os.link(a, b); return "link %s %s" % (rel(a), rel(b))
def op_symlink():
    t = rng.choice(["n1", "../n2", "/abs/x", "d0/n3", "n%d" % rng.randrange(6)]); b = path()
    os.symlink(t, b); return "symlink %s %s" % (t, rel(b))
def op_readlink():
    p = path(); return "readlink %s %s" % (rel(p), os.readlink(p))
def op_chmod():
    p = path(); m = rng.randrange(0o1000) | 0o600
    if os.path.isdir(p) and not os.path.islink(p): m |= 0o700
    os.chmod(p, m, follow_symlinks=False) if not os.path.islink(p) else None
    return "chmod %s %o" % (rel(p), m)
def op_utime():
    p = path(); t = rng.randrange(10**9, 14 * 10**8)
    os.utime(p, (t, t), follow_symlinks=False); return "utime %s %d" % (rel(p), t)
def op_stat():
    p = path(); return "lstat %s %s" % (rel(p), st_desc(os.lstat(p)))
def op_list():
    d = anydir(); return "list %s %s" % (rel(d), ",".join(sorted(os.listdir(d))))
def op_xattr():
    p = path(); v = b"v%d" % rng.randrange(100)
    if rng.random() < 0.5:
        os.setxattr(p, "user.k", v, follow_symlinks=False); return "setxattr %s %s" % (rel(p), v)
    return "getxattr %s %s" % (rel(p), os.getxattr(p, "user.k", follow_symlinks=False))
def op_excl():
    p = path(); fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640); os.close(fd)
    return "create-excl " + rel(p)
def op_fsync():
    p = path(); fd = os.open(p, os.O_RDONLY)
    try: os.fsync(fd)
    finally: os.close(fd)
    return "fsync " + rel(p)

ops = [op_write] * 6 + [op_append, op_read, op_read, op_pread, op_trunc, op_unlink, op_mkdir,
       op_mkdir, op_rmdir, op_rename, op_rename, op_link, op_symlink, op_readlink, op_chmod,
       op_utime, op_stat, op_stat, op_list, op_xattr, op_excl, op_fsync]
for d in dirs[1:]:
    os.makedirs(os.path.join(root, d), exist_ok=True)
for i in range(count):
    op = rng.choice(ops)
    state = rng.getstate()
    try:
        r = op()
    except OSError as e:
        r = "%s -> %s" % (op.__name__, errno.errorcode.get(e.errno, e.errno))
    print(i, r)
PY

mkdir -p "$T/src" "$T/native"
for seed in 1 2 3; do
	cache=$(echo "auto none always" | cut -d' ' -f"$seed")
	fs_mount "$T/src" "$T/mnt" --cache "$cache" || { not_ok "mount"; exit 1; }
	rm -rf "$T/mnt/s$seed" "$T/native/s$seed"
	mkdir -p "$T/mnt/s$seed" "$T/native/s$seed"
	python3 "$T/randops.py" "$T/native/s$seed" "$seed" 2500 >"$T/native-$seed.log" 2>&1
	timeout 300 python3 "$T/randops.py" "$T/mnt/s$seed" "$seed" 2500 >"$T/mnt-$seed.log" 2>&1
	if cmp -s "$T/native-$seed.log" "$T/mnt-$seed.log"; then
		ok "seed $seed (cache $cache): 2500 operations give the same results ($(grep -c ' -> ' "$T/native-$seed.log") errors alike)"
	else
		not_ok "seed $seed: 2500 operations give the same results" "$(diff "$T/native-$seed.log" "$T/mnt-$seed.log" | head -20)"
	fi
	expect_eq "seed $seed: final trees equal" "$(tree_manifest "$T/native/s$seed")" "$(tree_manifest "$T/mnt/s$seed")"
	check "seed $seed: final contents equal" diff -r --no-dereference "$T/native/s$seed" "$T/mnt/s$seed"
	if fs_umount "$T/mnt"; then ok "unmount"; else not_ok "unmount"; fi
done
tap_done
