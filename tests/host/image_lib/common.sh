# shellcheck shell=bash
# tests/host/image_lib/common.sh - shared setup for tests/host/image_*.sh
# (source it after tests/lib/tap.sh): a temp dir and cache cleaned on exit,
# Debian's docker-registry on a free loopback port, skopeo pushes, and a
# tree comparison (content, mode, type, symlink target, size, mtime, links).
IMG_LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
T=$(mktemp -d /tmp/kvmbox-image-test.XXXXXX)
export KVMBOX_CACHE=$T/cache
IMG_PIDS=()
IMG_MOUNTS=()
img_cleanup() {
	local p
	for p in "${IMG_PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	for p in "${IMG_MOUNTS[@]}"; do umount "$p" 2>/dev/null; done
	rm -rf "$T"
}
trap img_cleanup EXIT

oci() { python3 "$IMG_LIB/oci.py" "$@"; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# wait_port PORT: up to 10 s for something to listen on 127.0.0.1:PORT.
wait_port() {
	local _
	for _ in $(seq 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# start_registry [AUTH_CONFIG_YAML]: docker-registry on $REG_PORT, storage
# in $T/reg-storage.
start_registry() {
	REG_PORT=$(free_port)
	cat >"$T/registry.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $T/reg-storage
http:
  addr: 127.0.0.1:$REG_PORT
${1:-}
EOF
	docker-registry serve "$T/registry.yml" >"$T/registry.log" 2>&1 &
	IMG_PIDS+=($!)
	wait_port "$REG_PORT"
}

# push LAYOUT TAG NAME [SKOPEO_ARGS...]: copy an OCI layout into the registry.
push() {
	local layout=$1 tag=$2 name=$3; shift 3
	timeout 60 skopeo --insecure-policy copy -q --dest-tls-verify=false "$@" \
		"oci:$layout:$tag" "docker://127.0.0.1:$REG_PORT/$name"
}

# tree_listing DIR: one line per entry: path, type+mode, size (files),
# symlink target, link count, mtime (files and symlinks).
tree_listing() {
	(cd "$1" && find . -mindepth 1 -not -path './.kvmbox' -not -path './.kvmbox/*' \
		-printf '%p %y %m %U:%G %l %n ' \( -type f -printf '%s %Ts' -o -true \) \
		-printf '\n' | sort)
}

# same_tree NAME WANT GOT: listings and contents equal.
same_tree() {
	local d
	d=$(diff <(tree_listing "$2") <(tree_listing "$3"); diff -r --no-dereference \
		-x .kvmbox "$2" "$3" | grep -v 'is a fifo while file .* is a fifo$')
	if [ -z "$d" ]; then ok "$1"; else not_ok "$1" "$d"; fi
}

# pull REF [ARGS...]: kvmbox pull with a time limit; output in $T/pull.out.
pull() { timeout 120 "$KVMBOX_BIN" pull "$@" >"$T/pull.out" 2>&1; }
