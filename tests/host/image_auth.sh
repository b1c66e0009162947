#!/bin/bash
# tests/host/image_auth.sh - registry auth, resumable downloads, a pull
# killed mid-download, and hostile layers:
#  - a registry that wants a bearer token (a small Python registry with its
#    own token endpoint: docker-registry's token auth needs a signing CA);
#    its first answer for each layer is cut in half, so the second pull
#    resumes with a Range request;
#  - Debian's docker-registry with htpasswd Basic auth;
#  - layers with path traversal, absolute paths, symlink escapes, hardlinks
#    to host files and device nodes: nothing is written outside the image,
#    the pull fails naming the layer (or the device is skipped).
. "$(dirname "$0")/../lib/tap.sh"
. "$(dirname "$0")/image_lib/common.sh"
need_root
need_cmd docker-registry
need_cmd skopeo
need_cmd htpasswd

# --- bearer token + resume -----------------------------------------------
S=$T/src
mkdir -p "$S/etc"
head -c 400000 /dev/urandom >"$S/etc/big.bin"
echo hi >"$S/etc/hi"
oci layout "$T/oci-tok" v1 "$S:gzip"
MPORT=$(free_port)
python3 "$IMG_LIB/oci.py" serve "$T/oci-tok" "$MPORT" test/tok >"$T/mock.log" 2>&1 &
IMG_PIDS+=($!)
wait_port "$MPORT" || skip_all "mock registry did not start: $(cat "$T/mock.log")"
if pull "127.0.0.1:$MPORT/test/tok:v1" --name tok; then
	not_ok "a download cut short fails the first pull" "$(cat "$T/pull.out")"
else
	check "a download cut short fails the first pull, saying it can resume" \
		grep -q "run the pull again to resume" "$T/pull.out"
fi
check "the token was asked for and used (no token in the output)" \
	bash -c "grep -q 'auth=yes' '$T/oci-tok/requests.log' && ! grep -q test-token '$T/pull.out'"
check "no image after the failed pull" test ! -e "$KVMBOX_CACHE/images/tok"
if pull "127.0.0.1:$MPORT/test/tok:v1" --name tok; then
	ok "second pull succeeds"
	check "second pull resumed the layer with a Range request" \
		grep -q "range=bytes=" "$T/oci-tok/requests.log"
	check "resumed output says so" grep -q "(resumed)" "$T/pull.out"
	same_tree "resumed image equals the source" "$S" "$KVMBOX_CACHE/images/tok/rootfs"
else
	not_ok "second pull succeeds" "$(cat "$T/pull.out")"
fi

# --- a pull killed mid-download leaves no image; the next one cleans up ----
K=$T/src-kill
mkdir -p "$K"
head -c 300000 /dev/urandom >"$K/blob.bin"
oci layout "$T/oci-kill" v1 "$K:none"
KPORT=$(free_port)
python3 "$IMG_LIB/oci.py" serve "$T/oci-kill" "$KPORT" test/kill slow >"$T/mock2.log" 2>&1 &
IMG_PIDS+=($!)
wait_port "$KPORT" || skip_all "mock registry did not start: $(cat "$T/mock2.log")"
"$KVMBOX_BIN" pull "127.0.0.1:$KPORT/test/kill:v1" --name killed >"$T/kill.out" 2>&1 &
kpid=$!
for _ in $(seq 100); do
	compgen -G "$KVMBOX_CACHE/blobs/sha256/*.partial" >/dev/null &&
		[ -n "$(find "$KVMBOX_CACHE/blobs/sha256" -name '*.partial' -size +1k)" ] && break
	sleep 0.1
done
kill -9 "$kpid"; wait "$kpid" 2>/dev/null
check "killed mid-download: no image under the final name" test ! -e "$KVMBOX_CACHE/images/killed"
check "killed mid-download: its temporary directory is there" \
	compgen -G "$KVMBOX_CACHE/images/.tmp-killed-$kpid-*"
if pull "127.0.0.1:$KPORT/test/kill:v1" --name killed; then
	ok "the next pull resumes and succeeds"
	same_tree "the image equals the source" "$K" "$KVMBOX_CACHE/images/killed/rootfs"
	check "the dead pull's temporary directory was swept" \
		bash -c "! compgen -G '$KVMBOX_CACHE/images/.tmp-killed-$kpid-*'"
else
	not_ok "the next pull resumes and succeeds" "$(cat "$T/pull.out")"
fi

# --- htpasswd Basic auth on docker-registry -------------------------------
htpasswd -Bbc "$T/htpasswd" tester s3cret >/dev/null 2>&1
start_registry "auth:
  htpasswd:
    realm: kvmbox-test
    path: $T/htpasswd" || skip_all "docker-registry did not start"
oci layout "$T/oci-basic" v1 "$S:zstd"
if push "$T/oci-basic" v1 test/basic:v1 --dest-creds tester:s3cret; then
	pull "127.0.0.1:$REG_PORT/test/basic:v1"; rc=$?
	if [ $rc -ne 0 ] && grep -q "KVMBOX_REGISTRY_AUTH" "$T/pull.out"; then
		ok "without credentials the pull fails saying how to give them"
	else
		not_ok "without credentials the pull fails saying how to give them" "$(cat "$T/pull.out")"
	fi
	if KVMBOX_REGISTRY_AUTH=tester:s3cret pull "127.0.0.1:$REG_PORT/test/basic:v1"; then
		ok "with KVMBOX_REGISTRY_AUTH the pull succeeds"
		check "the password is not in the output" bash -c "! grep -q s3cret '$T/pull.out'"
		same_tree "Basic-auth image equals the source" "$S" "$KVMBOX_CACHE/images/basic-v1/rootfs"
	else
		not_ok "with KVMBOX_REGISTRY_AUTH the pull succeeds" "$(cat "$T/pull.out")"
	fi
else
	not_ok "skopeo pushes with credentials" "$(tail -3 "$T/registry.log")"
fi

# --- hostile layers (anonymous registry) ------------------------------------
start_registry || skip_all "docker-registry did not start"
export EVIL_DIR=$T/outside
mkdir -p "$EVIL_DIR"
echo "host secret" >"$EVIL_DIR/victim"
for kind in traversal absolute symlink-escape symlink-root hardlink-escape device; do
	oci evil "$kind" "$T/evil-$kind.tar"
	oci layout "$T/oci-$kind" v1 "$T/evil-$kind.tar:gzip"
	push "$T/oci-$kind" v1 "evil/$kind:v1" || { not_ok "push $kind"; continue; }
	layer=$(python3 -c 'import json,sys; m=json.load(open(sys.argv[1]+"/index.json"))["manifests"][0]["digest"]; print(json.load(open(sys.argv[1]+"/blobs/sha256/"+m[7:]))["layers"][0]["digest"])' "$T/oci-$kind")
	pull "127.0.0.1:$REG_PORT/evil/$kind:v1" --name "evil-$kind"; rc=$?
	case $kind in
	traversal|absolute|symlink-escape|hardlink-escape)
		if [ $rc -ne 0 ] && grep -q "layer $layer" "$T/pull.out"; then
			ok "$kind layer refused, naming the layer"
		else
			not_ok "$kind layer refused, naming the layer" "rc=$rc $(cat "$T/pull.out")"
		fi
		check "$kind: no image left" test ! -e "$KVMBOX_CACHE/images/evil-$kind" ;;
	symlink-root)
		# "abs -> /" and "up -> ../../.." resolve as in a chroot of the
		# image: writes through them land at the image's own root.
		R=$KVMBOX_CACHE/images/evil-symlink-root/rootfs
		check "symlink-root: writes through / and .. symlinks land inside the image" \
			test $rc -eq 0 -a -f "$R/landed-abs" -a -f "$R/landed-up" ;;
	device)
		if [ $rc -eq 0 ] && [ ! -e "$KVMBOX_CACHE/images/evil-device/rootfs/dev/evil-mem" ] &&
		   [ -f "$KVMBOX_CACHE/images/evil-device/rootfs/after-device.txt" ] &&
		   grep -q "layer $layer: device node" "$T/pull.out"; then
			ok "device node skipped with a warning naming the layer"
		else
			not_ok "device node skipped with a warning naming the layer" "rc=$rc $(cat "$T/pull.out")"
		fi ;;
	esac
done
check "nothing was written outside the image" bash -c \
	"[ \"\$(ls -A '$EVIL_DIR')\" = victim ] && [ ! -e /tmp/kvmbox-evil-traversal ] &&
	 [ ! -e /tmp/kvmbox-evil-absolute ] && grep -qx 'host secret' '$EVIL_DIR/victim'"

tap_done
