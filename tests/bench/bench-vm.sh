#!/bin/bash
# tests/bench/bench-vm.sh - `make bench-vm`: what users feel inside the VM,
# kvmbox beside QEMU, in one L1 boot of the nested harness (QEMU TCG with
# SVM, kvm_amd in L1; tests/e2e/lib/nested.sh) so both see the same
# emulated machine.  The same guest kernel and initramfs (kvmbox-init with
# busybox) boot in
#   kvmbox       kvmbox run with --share (virtio-fs) and its network card
#   kvmbox-9p    the same with --share-9p (its own virtio-9p)
#   qemu         qemu-system-x86_64 -accel kvm -M microvm with QEMU's own
#                devices: -fsdev local + virtio-9p-device, -netdev user
#   qemu-passt   the same with passt's network (-netdev stream to passt
#                in L1, its gateway address mapped to L1's loopback)
# (the kvmbox columns run with --proxy, as every agent launch does)
# and run tests/bench/vmbench.c (static, from a share) for: lstat of a
# 12,000-entry tree, `git status` of it (L1's git and its libraries run
# from a share through their loader; caches dropped; stopped after 90 s),
# a create/write/delete loop of small files, 4 KiB
# random reads and sequential reads of a 64 MiB file (guest caches
# dropped first), a 64 MiB sequential write with fsync; TCP
# request/response latency, alone and while another guest process reads
# the 64 MiB file of the share again and again (tcp-rr-busy), connections
# per second, and 64 MiB each way on one connection against vmbench's
# server in L1 (10.0.2.2 is L1's loopback in both); HTTPS requests a
# second on one connection (L1's curl from a share, 100-byte responses)
# to nginx on "another machine" (a network namespace at 1.2.3.4 behind a
# veth pair), direct to its port 8443 in every column, and to its port
# 443 through kvmbox's TLS proxy in the kvmbox columns.  ROUNDS (default
# 2) rounds, the columns taking turns in each.  Prints each figure per
# round beside QEMU's, with the ratios to both QEMU columns (>1: kvmbox
# better).  Figures are TCG speed in L1, not hardware's: compare the
# columns of one run; E2E_L1_SMP=1 (one L1 vCPU) completes runs that two
# vCPUs often do not (docs/bench-vm.md).
# COLUMNS_ONLY="kvmbox qemu" runs those columns alone.  BENCH_BASE_BIN=PATH
# adds the column kvmbox-base: the kvmbox column's run with that binary
# (an A/B of two builds in one L1 boot, as Firecracker's A/B tests do).
# BENCH_KEEP_LOG=PATH keeps L1's console.  Not a test.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
export KVMBOX_TOP=${KVMBOX_TOP:-$top}
export BUILD=${BUILD:-$top/build}
export KVMBOX_BIN=${KVMBOX_BIN:-$BUILD/kvmbox}
rounds=${ROUNDS:-2}
columns=${COLUMNS_ONLY:-kvmbox kvmbox-9p qemu qemu-passt}
base_bin=${BENCH_BASE_BIN:-}
[ -n "$base_bin" ] && columns="kvmbox-base $columns"
. "$top/tests/lib/tap.sh"
. "$top/tests/e2e/lib/nested.sh"
E2E_TEST_NAME="bench-vm"
need_cmd gcc
command -v qemu-system-x86_64 >/dev/null || skip_all "qemu-system-x86_64 is not installed (the peer)"

e2e_prepare
gcc -static -O2 -o "$E2E_WORK/vmbench" "$top/tests/bench/vmbench.c" ||
	e2e_die "cannot build tests/bench/vmbench.c statically"
e2e_add_program "$E2E_L1_ROOT" "$E2E_WORK/vmbench" /usr/local/bin/vmbench
if [ -n "$base_bin" ]; then
	[ -x "$base_bin" ] || e2e_die "BENCH_BASE_BIN $base_bin is not an executable"
	e2e_add_program "$E2E_L1_ROOT" "$base_bin" /usr/local/bin/kvmbox-base
fi
e2e_add_qemu "$E2E_L1_ROOT"
# git for `git status` (L1 makes the repository; guests run the same
# binary from the share /s through its loader) and passt for qemu-passt:
# each figure or column is left out, with its reason, where this machine
# lacks the program.
if git=$(command -v git); then
	e2e_add_program "$E2E_L1_ROOT/gitroot" "$(readlink -f "$git")" /usr/bin/git
else
	echo "# git is not installed: no git-status figures"
fi
# curl for the HTTPS figures (guests run it from the share /s), nginx
# and a throwaway CA and certificate for the server.
https=
if curl=$(command -v curl) && nginx=$(command -v nginx) && command -v openssl >/dev/null &&
	(mkdir -p "$E2E_L1_ROOT/tls" && cd "$E2E_L1_ROOT/tls" && . "$top/tests/lib/tlspeer.sh" &&
	 tls_make_ca_and_server "kvmbox bench CA" bench.test DNS:bench.test) >/dev/null 2>&1; then
	e2e_add_program "$E2E_L1_ROOT/curlroot" "$(readlink -f "$curl")" /usr/bin/curl
	e2e_add_program "$E2E_L1_ROOT" "$(readlink -f "$nginx")" /usr/local/bin/nginx
	https=1
else
	echo "# curl, nginx or openssl is missing: no HTTPS figures"
fi
case " $columns " in *" qemu-passt "*)
	if passt=$(command -v passt); then
		e2e_add_program "$E2E_L1_ROOT" "$(readlink -f "$passt")" /usr/local/bin/passt
	else
		echo "# passt is not installed: no qemu-passt column"
		columns=$(echo " $columns " | sed 's/ qemu-passt / /')
	fi ;;
esac

b64() { printf "$1" | base64 -w0 | tr '+/' '-_' | tr -d '='; }	# guest/abi/base64url.h
qappend="console=ttyS0 reboot=t panic=-1 quiet kvmbox.fs=w:9:$(b64 /w),s:9:$(b64 /s)"
qappend+=" kvmbox.net=10.0.2.15/24,10.0.2.2,10.0.2.3"
# qemu-passt's files are qemu's: it runs the network figures alone (/s/g net)
qappend_net="$qappend kvmbox.argv=$(b64 '/s/g\0net\0')"
qappend+=" kvmbox.argv=$(b64 '/s/g\0')"

payload="ROUNDS=$rounds BENCH_COLUMNS='$columns' QAPPEND='$qappend' QAPPEND_NET='$qappend_net'"$'\n'$(cat <<'PAYLOAD'
mkdir -p /w/tree /w/tmp /s
ip link set lo up
# via ROOT PROG: the command line that runs ROOT/usr/bin/PROG (copied with
# its libraries by e2e_add_program) through its own loader, in L1 or, from
# the share, in a guest that has no glibc
via() { echo "$1/lib64/ld-linux-x86-64.so.2 --library-path $1/lib/x86_64-linux-gnu:$1/usr/lib/x86_64-linux-gnu $1/usr/bin/$2"; }
# "Another machine" for HTTPS: a network namespace with 1.2.3.4 behind a
# veth pair (busybox names the peer veth0), L1's default route through it
# (passt takes its addresses and routes from the interface that has one).
insmod /lib/modules/veth.ko 2>/dev/null
unshare -n sleep 100000 &
net=$!
sleep 1
ip link add v0 type veth peer name v1
ip link set veth0 netns $net
ip addr add 10.99.0.1/24 dev v0
ip link set v0 up
ip route add default via 10.99.0.2 dev v0
nsenter -t $net -n sh -c 'ip link set lo up; ip addr add 1.2.3.4/32 dev veth0; ip addr add 10.99.0.2/24 dev veth0; ip link set veth0 up'
echo 'hosts: files' >/etc/nsswitch.conf
printf '127.0.0.1 localhost\n1.2.3.4 bench.test\n' >/etc/hosts
printf 'root:x:0:0::/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n' >/etc/passwd	# nginx's user
printf 'root:x:0:\nnogroup:x:65534:\n' >/etc/group
K_PROXY=
if [ -x /curlroot/usr/bin/curl ]; then
	mkdir -p /tmp/ngx
	cat >/tmp/ngx/nginx.conf <<'NGX'
user root;
worker_processes 1;
pid /tmp/ngx/nginx.pid;
error_log /tmp/ngx/error.log;
events { worker_connections 64; }
http {
	client_body_temp_path /tmp/ngx/body; proxy_temp_path /tmp/ngx/proxy;
	fastcgi_temp_path /tmp/ngx/fcgi; uwsgi_temp_path /tmp/ngx/uwsgi; scgi_temp_path /tmp/ngx/scgi;
	access_log off; keepalive_requests 100000;
	server {
		listen 1.2.3.4:443 ssl; listen 1.2.3.4:8443 ssl;
		ssl_certificate /tls/srv.pem; ssl_certificate_key /tls/srv.key;
		location /small { return 200 "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"; }
	}
}
NGX
	nsenter -t $net -n nginx -c /tmp/ngx/nginx.conf -e /tmp/ngx/error.log ||
		{ echo "# nginx did not start:"; cat /tmp/ngx/error.log; }
	cp -a /curlroot /s/curlroot
	mkdir -p /s/tls && cp /tls/ca.pem /s/tls/
	K_PROXY="--proxy --upstream-ca /tls/ca.pem"
fi
cp /usr/local/bin/vmbench /s/
i=0
while [ $i -lt 120 ]; do
	mkdir /w/tree/d$i; j=0
	while [ $j -lt 99 ]; do : >/w/tree/d$i/f$j; j=$((j+1)); done
	i=$((i+1))
done
dd if=/dev/urandom of=/w/big bs=1M count=64 2>/dev/null
G=: C=:
if [ -x /gitroot/usr/bin/git ]; then
	cp -a /gitroot /s/gitroot
	G="$(via /s/gitroot git) -c safe.directory=/w/tree -C /w/tree"
	export HOME=/tmp GIT_CONFIG_NOSYSTEM=1
	L1GIT="$(via /gitroot git) -c safe.directory=/w/tree -C /w/tree"
	$L1GIT init -q --template= && $L1GIT add -A &&
		$L1GIT -c user.name=b -c user.email=b@b -c maintenance.auto=false commit -qm tree ||
		{ echo "# git could not make the repository: no git-status figures"; G=:; }
fi
if [ -x /s/curlroot/usr/bin/curl ]; then C="$(via /s/curlroot curl) -sf -o /dev/null"; fi
cat >/s/g <<EOF
#!/bin/sh
export HOME=/tmp GIT_CONFIG_NOSYSTEM=1
G="$G" C="$C"
EOF
cat >>/s/g <<'EOF'
V=/s/vmbench
drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }
if [ "${1:-}" != net ]; then
	drop; $V stat-tree /w/tree
	[ "$G" != : ] && { drop; $V time git-status 90 $G status --porcelain; }
	$V small-files /w/tmp 500
	drop; $V randread /w/big 2000
	drop; $V seqread /w/big
	$V seqwrite /w/out 64
fi
$V rr 10.0.2.2 9300 2000
$V rr-busy 10.0.2.2 9300 2000 /w/big
$V conn 10.0.2.2 9300 3
$V download 10.0.2.2 9300 64
$V upload 10.0.2.2 9300 64
if [ "$C" != : ]; then
	$V rate https-direct 200 $C --cacert /s/tls/ca.pem --resolve bench.test:8443:1.2.3.4 "https://bench.test:8443/small?[1-200]"
	# kvmbox --proxy put its CA in the system store and the guest's DNS
	# names bench.test (the proxy checks the name against it)
	[ -s /etc/ssl/certs/ca-certificates.crt ] &&
		$V rate https-proxy 200 $C "https://bench.test/small?[1-200]"
fi
EOF
chmod 755 /s/g
vmbench serve 9300 &
passt_sock=/tmp/passt.sock
case " $BENCH_COLUMNS " in *" qemu-passt "*)
	# passt sandboxes itself with pivot_root, which L1's root (the
	# initramfs) refuses, and a user namespace, which a chrooted process
	# may not make: in a mount namespace of its own, a bind mount of the
	# root moved over it becomes the root passt starts from.
	mkdir -p /tmp/passt-root
	unshare -m --propagation private sh -c 'mount -o rbind / /tmp/passt-root &&
		cd /tmp/passt-root && mount -o move /tmp/passt-root / && exec chroot . \
		passt -4 -f --runas 65534:65534 -s '$passt_sock' -a 10.0.2.15 -n 24 -g 10.0.2.2' \
		>/tmp/passt.log 2>&1 &
	i=0; while [ ! -S $passt_sock ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
	[ -S $passt_sock ] || { echo "# passt did not start:"; cat /tmp/passt.log; } ;;
esac
K="--kernel /vmlinux --initrd /l2.cpio --memory 512 --cpus 2 --allow-host $K_PROXY"
# qemu_step NAME APPEND NETDEV: QEMU microvm, its own 9p shares, NETDEV's network
qemu_step() {
	e2e_step "$1" 900 qemu-system-x86_64 -accel kvm -cpu host -M microvm,acpi=off -smp 2 -m 512 \
		-kernel /vmlinux -initrd /l2.cpio -append "$2" -display none -nodefaults \
		-no-reboot -serial stdio \
		-fsdev local,id=fw,path=/w,security_model=none -device virtio-9p-device,fsdev=fw,mount_tag=w \
		-fsdev local,id=fs,path=/s,security_model=none -device virtio-9p-device,fsdev=fs,mount_tag=s \
		-netdev "$3" -device virtio-net-device,netdev=n0
}
round=1	# (e2e_step uses r)
while [ $round -le $ROUNDS ]; do
	case " $BENCH_COLUMNS " in *" kvmbox-base "*)
	e2e_step "kvmbox-base_$round" 900 kvmbox-base run $K --share /w --share /s -- /s/g ;; esac
	case " $BENCH_COLUMNS " in *" kvmbox "*)
	e2e_step "kvmbox_$round" 900 kvmbox run $K --share /w --share /s -- /s/g ;; esac
	case " $BENCH_COLUMNS " in *" kvmbox-9p "*)
	e2e_step "kvmbox-9p_$round" 900 kvmbox run $K --share-9p /w --share /s -- /s/g ;; esac
	case " $BENCH_COLUMNS " in *" qemu "*)
	qemu_step "qemu_$round" "$QAPPEND" user,id=n0 ;; esac
	case " $BENCH_COLUMNS " in *" qemu-passt "*)
	qemu_step "qemu-passt_$round" "$QAPPEND_NET" \
		stream,id=n0,server=off,addr.type=unix,addr.path=$passt_sock ;; esac
	round=$((round + 1))
done
PAYLOAD
)
# Each column step is 900 s at most (QEMU's 9p takes minutes for the
# tree walks); L1's setup (the tree, git) a few minutes.
e2e_run_or_bail "$payload" $((900 * rounds * $(echo $columns | wc -w) + 900))

file_figs="stat-tree git-status small-files randread-4k seqread seqwrite"
net_figs="tcp-rr tcp-rr-busy tcp-conn download upload https-direct https-proxy"
[ -n "${git:-}" ] || file_figs=$(echo " $file_figs " | sed 's/ git-status / /')
[ -n "$https" ] || net_figs=$(echo " $net_figs " | sed 's/ https-direct https-proxy / /')
figs="$file_figs $net_figs"
nfigs=$(echo $figs | wc -w)
value() { e2e_step_out "$1" | tr -d '\r' | awk -v f="$2" '$1 == "FIG" && $2 == f { print $3; exit }'; }
# kvmbox's figure over PEER's, each the better way up (>1: kvmbox ahead);
# a time stopped at its limit (">90000") makes the ratio a bound.
ratio() {
	local k=$1 p=$2 unit=$3 bound=
	[ -n "$k" ] && [ -n "$p" ] || { echo n/a; return; }
	case $k$p in ">"*">"*) echo n/a; return ;; ">"*) bound="<" ;; *">"*) bound=">" ;; esac
	k=${k#>} p=${p#>}
	case $unit in	# times: lower is better
	us|ms) awk -v a="$p" -v b="$k" -v o="$bound" 'BEGIN { printf "%s%.2f", o, b ? a / b : 0 }' ;;
	*) awk -v a="$k" -v b="$p" -v o="$bound" 'BEGIN { printf "%s%.2f", o, b ? a / b : 0 }' ;;
	esac
}
shown="kvmbox kvmbox-9p qemu qemu-passt"
[ -n "$base_bin" ] && shown="kvmbox-base $shown"
printf '# %-15s %5s' figure round
for s in $shown; do printf ' %11s' "$s"; done
printf ' %11s %11s  %s\n' kvmbox/qemu kvmbox/passt unit
for r in $(seq 1 "$rounds"); do
	for f in $figs; do
		k=$(value "kvmbox_$r" "$f")
		unit=$(e2e_step_out "kvmbox_$r" | tr -d '\r' | awk -v f="$f" '$1 == "FIG" && $2 == f { print $4; exit }')
		printf '# %-15s %5s' "$f" "$r"
		for s in $shown; do v=$(value "${s}_$r" "$f"); printf ' %11s' "${v:--}"; done
		printf ' %11s %11s  %s\n' "$(ratio "$k" "$(value "qemu_$r" "$f")" "$unit")" \
			"$(ratio "$k" "$(value "qemu-passt_$r" "$f")" "$unit")" "$unit"
	done
done
for s in $columns; do
	for r in $(seq 1 "$rounds"); do
		got=$(e2e_step_out "${s}_$r" | grep -c '^FIG ') want=$nfigs
		case $s in	# no proxy in QEMU; qemu-passt runs the network figures
		qemu) [ -n "$https" ] && want=$((nfigs - 1)) ;;
		qemu-passt) want=$(echo $net_figs | wc -w); [ -n "$https" ] && want=$((want - 1)) ;;
		esac
		[ "$got" = "$want" ] && continue
		echo "# step ${s}_$r gave $got of $want figures (exit $(e2e_step_rc "${s}_$r")):"
		e2e_step_out "${s}_$r" | tail -n 12 | sed 's/^/#   | /'
	done
done
[ -n "${BENCH_KEEP_LOG:-}" ] && cp "$E2E_LOG" "$BENCH_KEEP_LOG"
echo "# L1 kernel to userspace ${E2E_L1_UP_S:-?} s; whole nested run ${E2E_WALL_S%.*} s (TCG speed, not hardware)"
tap_done
