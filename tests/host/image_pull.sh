#!/bin/bash
# tests/host/image_pull.sh - `kvmbox pull` against Debian's docker-registry on
# loopback, images pushed with Debian's skopeo from OCI layouts this test
# builds: a single-layer tree compared file by file (content, mode, symlinks,
# hardlinks, mtimes); gzip, zstd and plain layers; an OCI image index
# (linux/amd64 picked over arm64); a Docker schema 2 manifest (skopeo
# --format v2s2); a multi-layer image with
# whiteouts and an opaque directory; a corrupted blob (fails naming the
# digest, leaves no image); a full disk while downloading and unpacking;
# `kvmbox images` / `images rm`; the API check; libcurl and libarchive
# loaded only by pull, which fails clearly without them.
. "$(dirname "$0")/../lib/tap.sh"
. "$(dirname "$0")/image_lib/common.sh"
need_root
need_cmd docker-registry
need_cmd skopeo
need_cmd zstd

start_registry || skip_all "docker-registry did not start: $(tail -3 "$T/registry.log")"

# --- a source tree with the file kinds an image has -----------------------
S=$T/src
mkdir -p "$S/bin" "$S/etc/sub" "$S/private" "$S/empty"
printf 'hello\n' >"$S/etc/hello"
printf '#!/bin/sh\necho tool\n' >"$S/bin/tool"
head -c 300000 /dev/urandom >"$S/etc/sub/random.bin"
ln -s ../etc/hello "$S/bin/rel-link"
ln -s /etc/hello "$S/bin/abs-link"
ln "$S/etc/hello" "$S/etc/hello-hardlink"
mkfifo "$S/etc/fifo"
chmod 0755 "$S/bin/tool"; chmod 0640 "$S/etc/hello"; chmod 4755 "$S/bin"
chmod 0700 "$S/private"; chmod 0555 "$S/empty"
chown 1234:5678 "$S/etc/sub/random.bin"
touch -h -d '2020-02-03 04:05:06' "$S/etc/hello" "$S/bin/rel-link" "$S/etc/sub"

for comp in gzip zstd none; do
	oci layout "$T/oci-$comp" v1 "$S:$comp"
	if ! push "$T/oci-$comp" v1 "test/simple:$comp"; then
		not_ok "skopeo pushes the $comp image"; continue
	fi
	if pull "127.0.0.1:$REG_PORT/test/simple:$comp"; then
		ok "pull of a $comp-layer image succeeds"
	else
		not_ok "pull of a $comp-layer image succeeds" "$(cat "$T/pull.out")"; continue
	fi
	same_tree "$comp image tree equals the source (content, mode, links, mtime)" \
		"$S" "$KVMBOX_CACHE/images/simple-$comp/rootfs"
done
expect_eq "API version file inside the image" 1 \
	"$(cat "$KVMBOX_CACHE/images/simple-gzip/rootfs/.kvmbox/api-version")"

# --- an image index (amd64 + arm64) and a Docker schema 2 manifest ----------
mkdir -p "$T/decoy"; echo "arm64 image: must not be picked" >"$T/decoy/ARM64"
MULTIARCH_DECOY=$T/decoy oci layout "$T/oci-index" v1 "$S:gzip"
if push "$T/oci-index" v1 test/index:v1 --all &&
   pull "127.0.0.1:$REG_PORT/test/index:v1" --name index; then
	ok "pull through an OCI image index"
	same_tree "the index's linux/amd64 image was picked (tree equals the source)" \
		"$S" "$KVMBOX_CACHE/images/index/rootfs"
	check "the registry served an index" \
		bash -c "curl -sf -H 'Accept: application/vnd.oci.image.index.v1+json' \
		http://127.0.0.1:$REG_PORT/v2/test/index/manifests/v1 | grep -q '\"arm64\"'"
else
	not_ok "pull through an OCI image index" "$(cat "$T/pull.out")"
fi
if push "$T/oci-gzip" v1 test/docker:v2s2 --format v2s2 &&
   pull "127.0.0.1:$REG_PORT/test/docker:v2s2" --name docker; then
	check "the registry served a Docker schema 2 manifest" \
		bash -c "curl -sf -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
		http://127.0.0.1:$REG_PORT/v2/test/docker/manifests/v2s2 | grep -q 'docker.distribution.manifest.v2'"
	same_tree "Docker schema 2 image tree equals the source" "$S" "$KVMBOX_CACHE/images/docker/rootfs"
else
	not_ok "pull of a Docker schema 2 image" "$(cat "$T/pull.out")"
fi

# --- multi-layer with deletions --------------------------------------------
L1=$T/l1 L2=$T/l2 W=$T/want
mkdir -p "$L1/a" "$L1/b/deep" "$L1/c" "$L2/a" "$L2/b" "$L2/d"
echo keep >"$L1/a/keep"; echo gone >"$L1/a/gone"; echo x >"$L1/b/x"
echo y >"$L1/b/deep/y"; echo c >"$L1/c/file"; ln -s a/keep "$L1/link"
echo replaced-dir-with-file >"$L2/c.txt"
: >"$L2/a/.wh.gone"; : >"$L2/.wh.link"; : >"$L2/b/.wh..wh..opq"
echo new >"$L2/b/new"; echo d >"$L2/d/file"; echo changed >"$L2/a/keep"
cp -a "$L1" "$W"; rm -rf "$W/a/gone" "$W/link" "$W/b"/*
(cd "$L2" && find . -name '.wh.*' -prune -o -print | cpio -pdmu --quiet "$W")
oci layout "$T/oci-multi" v2 "$L1:gzip" "$L2:zstd"
if push "$T/oci-multi" v2 test/multi:v2 && pull "127.0.0.1:$REG_PORT/test/multi:v2" --name multi; then
	ok "pull of a two-layer image with whiteouts"
	same_tree "whiteouts and opaque dir applied (tree equals the expected one)" \
		"$W" "$KVMBOX_CACHE/images/multi/rootfs"
else
	not_ok "pull of a two-layer image with whiteouts" "$(cat "$T/pull.out")"
fi

# --- a progress bar per layer on a TTY, plain lines otherwise -------------
if command -v script >/dev/null; then
	mkdir -p "$T/tty"; head -c 2000000 /dev/urandom >"$T/tty/big"
	oci layout "$T/oci-tty" v1 "$T/tty:none"
	push "$T/oci-tty" v1 test/tty:v1
	timeout 60 script -qec "$KVMBOX_BIN pull 127.0.0.1:$REG_PORT/test/tty:v1" /dev/null >"$T/tty.out" 2>&1
	check "on a TTY each layer gets a progress bar" \
		grep -qE $'\r  sha256:[0-9a-f]{12} \\[#{30}\\] +2\\.0/2\\.0 MB' "$T/tty.out"
	"$KVMBOX_BIN" images rm tty-v1 >/dev/null
	pull "127.0.0.1:$REG_PORT/test/tty:v1"
	check "without a TTY: one plain line per layer, no bar" \
		bash -c "grep -qE '^  sha256:[0-9a-f]{12}: 2.0 MB \\(cached\\)' '$T/pull.out' && ! grep -q '\\[#' '$T/pull.out'"
fi

# --- images / images rm / the API check -------------------------------------
out=$("$KVMBOX_BIN" images 2>&1)
check "images lists the pulled images with source and API version" \
	grep -qE "^multi +[0-9.]+ MB +1 +2026-01-02T03:04:05Z +127.0.0.1:$REG_PORT/test/multi:v2" <<<"$out"
check "images check accepts a current image" "$KVMBOX_BIN" images check multi
echo 99 >"$KVMBOX_CACHE/images/multi/rootfs/.kvmbox/api-version"
out=$("$KVMBOX_BIN" images check multi 2>&1); rc=$?
if [ $rc -ne 0 ] && grep -q "API version 99" <<<"$out" && grep -q "kvmbox pull" <<<"$out"; then
	ok "an image with another API version is refused, naming the fix"
else
	not_ok "an image with another API version is refused, naming the fix" "rc=$rc $out"
fi
check "images rm removes an image" "$KVMBOX_BIN" images rm multi
check "the removed image is gone" test ! -e "$KVMBOX_CACHE/images/multi"
out=$("$KVMBOX_BIN" images rm multi 2>&1)
check "images rm of a missing image fails clearly" grep -q "no such image" <<<"$out"

# --- a corrupted blob in the registry ------------------------------------------
mkdir -p "$T/l3"; head -c 100000 /dev/urandom >"$T/l3/unique"
oci layout "$T/oci-bad" v1 "$T/l3:gzip"
layer=$(python3 -c 'import json,sys; m=json.load(open(sys.argv[1]+"/index.json"))["manifests"][0]["digest"]; print(json.load(open(sys.argv[1]+"/blobs/sha256/"+m[7:]))["layers"][0]["digest"])' "$T/oci-bad")
push "$T/oci-bad" v1 test/bad:v1
data="$T/reg-storage/docker/registry/v2/blobs/sha256/${layer:7:2}/${layer:7}/data"
if [ -f "$data" ]; then
	printf 'X' | dd of="$data" bs=1 seek=100 conv=notrunc status=none
	if pull "127.0.0.1:$REG_PORT/test/bad:v1"; then
		not_ok "a corrupted blob fails the pull" "$(cat "$T/pull.out")"
	else
		check "a corrupted blob fails naming its digest" grep -q "$layer: digest mismatch" "$T/pull.out"
	fi
	check "no image is left under the final name" test ! -e "$KVMBOX_CACHE/images/bad"
	leftover=$(find "$KVMBOX_CACHE/images" -maxdepth 1 -name '.tmp-*')
	expect_eq "no temporary image directory is left" "" "$leftover"
	check "the corrupted blob is not kept in the cache" \
		test ! -e "$KVMBOX_CACHE/blobs/sha256/${layer:7}"
else
	not_ok "registry storage has the layer blob" "$data missing"
fi

# --- a full disk ------------------------------------------------------------------
mkdir -p "$T/full" "$T/fullsrc"
if mount -t tmpfs -o size=1m kvmbox-test "$T/full"; then
	IMG_MOUNTS+=("$T/full")
	head -c 3000000 /dev/urandom >"$T/fullsrc/big"
	oci layout "$T/oci-full" v1 "$T/fullsrc:none"
	push "$T/oci-full" v1 test/full:v1
	KVMBOX_CACHE=$T/full/cache pull "127.0.0.1:$REG_PORT/test/full:v1"; rc=$?
	if [ $rc -ne 0 ] && grep -q "No space left on device" "$T/pull.out"; then
		ok "a full disk fails the pull, saying so"
	else
		not_ok "a full disk fails the pull, saying so" "rc=$rc $(cat "$T/pull.out")"
	fi
	check "full disk: no image and no temporary directory left" \
		bash -c "[ -z \"\$(ls -A '$T/full/cache/images')\" ]"
	# a small blob that unpacks to more than the disk holds (the partial blob
	# kept for resuming the download above is cleared first)
	rm -rf "$T/full/cache"
	mkdir -p "$T/zeros"; head -c 3000000 /dev/zero >"$T/zeros/zeros"
	oci layout "$T/oci-zeros" v1 "$T/zeros:gzip"
	push "$T/oci-zeros" v1 test/zeros:v1
	KVMBOX_CACHE=$T/full/cache pull "127.0.0.1:$REG_PORT/test/zeros:v1"; rc=$?
	if [ $rc -ne 0 ] && grep -q "layer sha256:.*No space left on device" "$T/pull.out"; then
		ok "a disk filling up while unpacking fails the pull, naming the layer"
	else
		not_ok "a disk filling up while unpacking fails the pull, naming the layer" \
			"rc=$rc $(cat "$T/pull.out")"
	fi
	check "unpack on a full disk: no image and no temporary directory left" \
		bash -c "[ -z \"\$(ls -A '$T/full/cache/images')\" ]"
	umount "$T/full"
else
	skip "a full disk fails the pull" "cannot mount a tmpfs"
fi

# --- refusals ---------------------------------------------------------------------
pull "127.0.0.1:$REG_PORT/test/nosuch:v1"; rc=$?
if [ $rc -ne 0 ] && grep -q "no such image" "$T/pull.out"; then ok "a missing image fails clearly"
else not_ok "a missing image fails clearly" "$(cat "$T/pull.out")"; fi
pull "Bad//Ref"; expect_eq "a malformed reference is refused" 1 "$?"

# --- libcurl, libarchive, OpenSSL, json-c: opened only when first used -------
libs='libcurl|libarchive|libssl|libcrypto|libjson-c'
if ldd "$KVMBOX_BIN" | grep -qE "$libs"; then
	not_ok "kvmbox starts without loading libcurl, libarchive, OpenSSL or json-c" "$(ldd "$KVMBOX_BIN" | grep -E "$libs")"
else
	ok "kvmbox starts without loading libcurl, libarchive, OpenSSL or json-c"
fi
# without_lib SONAME CMD...: run CMD with SONAME replaced by an empty file
# (a private mount namespace), as on a machine where it is not installed.
without_lib() {
	local so=$1; shift
	local path; path=$(ldconfig -p | awk -v s="$so" '$1 == s { print $NF; exit }')
	[ -n "$path" ] || return 99
	: >"$T/empty.so"
	unshare -m sh -c 'mount --bind "$0" "$1" && shift && exec "$@"' "$T/empty.so" "$path" "$@"
}
# pull_without_lib SONAME PACKAGE LABEL: a pull fails naming both, leaves no image.
pull_without_lib() {
	without_lib "$1" timeout 60 "$KVMBOX_BIN" pull "127.0.0.1:$REG_PORT/test/simple:gzip" \
		--name "no-$1" >"$T/pull.out" 2>&1
	local rc=$?
	if [ $rc -ne 0 ] && [ $rc -ne 99 ] && grep -q "cannot load $1 (apt-get install $2)" "$T/pull.out" &&
	   [ ! -e "$KVMBOX_CACHE/images/no-$1" ]; then
		ok "$3"
	else
		not_ok "$3" "rc=$rc $(cat "$T/pull.out")"
	fi
}
pull_without_lib libcurl.so.4 libcurl4 "without libcurl, pull fails naming the library and its package"
pull_without_lib libarchive.so.13 libarchive13 "without libarchive, pull fails naming the library, and leaves no image"

tap_done
