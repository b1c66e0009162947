#!/bin/bash
# tests/e2e/net_vm.sh - the guest's network card (virtio-net served by
# kvmbox's user-mode stack) with the real guest kernel and kvmbox-init on a
# real KVM (the nested harness, tests/e2e/lib/nested.sh).
#
# In L1 (no network of its own but loopback) a busybox httpd on 127.0.0.1
# plays "the host".  From the guest: the interface is configured from
# kvmbox.net= (address, route, /etc/resolv.conf) and gets IPv6 by router
# advertisement; with --allow-host the gateway address reaches L1's
# loopback; a few MiB go both ways intact (md5sum on both ends); a name from
# L1's /etc/hosts resolves through the stack's DNS forwarder, and a name
# that resolves to a private address is refused; without --allow-host the
# gateway, private addresses and the metadata address are refused at once
# (RST, not a hang); --publish makes a guest httpd reachable on L1's
# loopback, and so does --auto-publish (kvmbox shell) for a port the guest
# only starts listening on; kvmbox shell's guest has the card too; --no-net leaves only
# lo.  With --proxy (when openssl is here to
# put in L1 and the guest): the guest's TLS to the gateway's port 443 ends in
# kvmbox's proxy, whose leaf verifies against the CA kvmbox-init installed
# from kvmbox.ca=, and the request reaches an openssl s_server in L1 that
# the proxy verified with --upstream-ca; an address the policy refuses on
# port 80 or 443 gets an HTTP 403 whose body names the refusal and the
# flag that would allow it (no connection leaves the host), and kvmbox
# sums up the refusals at exit.  The proxy runs in the credential
# broker (broker/broker.h), the process started in L1: during a session
# whose guest sent a --secret's placeholder toward its own host, the VMM
# (its child, `kvmbox .vm`) and the broker both show Seccomp 2 and
# NoNewPrivs 1 and, started by root, no capability left in any set; the
# VMM's environment lacks the secret's variable, and a
# search of the VMM's whole memory, the guest's RAM included
# (tests/e2e/memscan.c, as root), finds no byte of the real value, while
# the same search of the broker finds it (the control).  Bulk throughput is printed as a
# TAP comment (TCG speed: the L2 guest runs under QEMU's emulation).
. "$(dirname "$0")/../lib/tap.sh"
[ -f "$(dirname "$0")/lib/nested.sh" ] || skip_all "nested harness (tests/e2e/lib/nested.sh) not present"
. "$(dirname "$0")/lib/nested.sh"
E2E_TEST_NAME="nested harness"
e2e_prepare

# --proxy: an upstream TLS server in L1 (openssl s_server with a
# certificate for upstream.test from a throwaway CA) and openssl in the
# guest (appended to its initramfs as a second cpio archive).
have_openssl=""
if command -v openssl >/dev/null &&
	(cd "$E2E_WORK" && . "$KVMBOX_TOP/tests/lib/tlspeer.sh" &&
	 tls_make_ca_and_server "e2e upstream CA" upstream.test DNS:upstream.test) >/dev/null 2>&1; then
	cp "$E2E_WORK/srv.pem" "$E2E_L1_ROOT/up-srv.pem"
	cp "$E2E_WORK/srv.key" "$E2E_L1_ROOT/up-srv.key"
	cp "$E2E_WORK/ca.pem" "$E2E_L1_ROOT/up-ca.pem"
	e2e_add_program "$E2E_L1_ROOT" "$(command -v openssl)" /bin/openssl
	mkdir -p "$E2E_WORK/l2x"
	e2e_add_program "$E2E_WORK/l2x" "$(command -v openssl)" /bin/openssl
	e2e_cpio "$E2E_WORK/l2x" "$E2E_WORK/l2x.cpio"
	cat "$E2E_WORK/l2x.cpio" >>"$E2E_L1_ROOT/l2.cpio"
	gcc -static -O2 -o "$E2E_WORK/memscan" "$KVMBOX_TOP/tests/e2e/memscan.c" 2>/dev/null &&
		e2e_add_program "$E2E_L1_ROOT" "$E2E_WORK/memscan" /usr/local/bin/memscan
	have_openssl=1
fi

payload=$(cat <<'PAYLOAD'
run="kvmbox run --kernel /vmlinux --initrd /l2.cpio"
ip link set lo up
echo 'hosts: files' >/etc/nsswitch.conf
printf '127.0.0.1 localhost\n1.2.3.4 public.kvmbox-e2e.test\n10.9.8.7 private.kvmbox-e2e.test\n' >/etc/hosts
mkdir -p /www
echo hello-from-l1 >/www/index.html
head -c 4194304 /dev/urandom >/www/big
echo "@@NET l1-big $(md5sum </www/big)"
httpd -p 127.0.0.1:8080 -h /www
# One upload listener whose stdin stays open (a fifo nobody writes), so it
# never half-closes first; it ends at the guest's EOF.
mkfifo /tmp/hold
(timeout 150 nc -l -p 9000 </tmp/hold >/tmp/up; touch /tmp/up.done) &
sleep 200 >/tmp/hold &
hold=$!
e2e_step host 150 $run --allow-host -- sh -c '
	ip -4 addr show dev eth0 | grep inet; ip route; cat /etc/resolv.conf
	echo "index: $(wget -q -O - http://10.0.2.2:8080/index.html)"
	t0=$(cut -d" " -f1 /proc/uptime)
	wget -q -O /tmp/down http://10.0.2.2:8080/big
	t1=$(cut -d" " -f1 /proc/uptime)
	echo "down: $(md5sum </tmp/down)"; rm -f /tmp/down
	head -c 4194304 /dev/urandom >/tmp/up
	echo "guest-up: $(md5sum </tmp/up)"
	t2=$(cut -d" " -f1 /proc/uptime)
	nc 10.0.2.2 9000 </tmp/up
	t3=$(cut -d" " -f1 /proc/uptime)
	echo "times: $t0 $t1 $t2 $t3"
	nslookup public.kvmbox-e2e.test 2>&1 | sed "s/^/dns-public: /"
	nslookup private.kvmbox-e2e.test 2>&1 | sed "s/^/dns-private: /"
	ip -6 addr show dev eth0 | sed "s/^/v6: /"'
# (read back in a step of its own: a background echo could land in the
# middle of a line the guest was printing)
e2e_step l1up 30 sh -c 'for i in $(seq 25); do [ -f /tmp/up.done ] && break; sleep 1; done; echo "got: $(md5sum </tmp/up) $(wc -c </tmp/up)"'
e2e_step denied 150 $run -- sh -c '
	for d in 10.0.2.2:8080 10.1.2.3:80 192.168.1.1:80 169.254.169.254:80; do
		t0=$(cut -d" " -f1 /proc/uptime)
		out=$(nc -w 20 ${d%:*} ${d#*:} </dev/null 2>&1)
		rc=$?
		t1=$(cut -d" " -f1 /proc/uptime)
		echo "denied $d rc=$rc secs=$(echo "$t1 $t0" | awk "{printf \"%.2f\", \$1 - \$2}") $out"
	done'
$run --publish 127.0.0.1:18080:80 -- sh -c '
	mkdir -p /w; echo guest-page >/w/index.html; httpd -p 80 -h /w; sleep 100' >/tmp/pub.log 2>&1 &
pub=$!
# (busybox wget -T crashes on a refused connection: timeout instead)
e2e_step publish 120 sh -c 'for i in $(seq 100); do timeout 5 wget -q -O - http://127.0.0.1:18080/index.html && exit 0; sleep 1; done; cat /tmp/pub.log; exit 1'
kill $pub $hold 2>/dev/null
wait $pub
# --auto-publish: listeners the guest opens appear on L1's loopback, one
# on every address and one on the guest's 127.0.0.1 only (relayed by
# kvmbox-init's forwarder).
kvmbox shell --kernel /vmlinux --initrd /l2.cpio --auto-publish -- sh -c '
	mkdir -p /w; echo auto-page >/w/index.html; httpd -p 8088 -h /w
	mkdir -p /l; echo loopback-page >/l/index.html; httpd -p 127.0.0.1:8089 -h /l; sleep 100' \
	</dev/null >/tmp/auto.log 2>&1 &
auto=$!
e2e_step autopub 120 sh -c 'for i in $(seq 100); do timeout 5 wget -q -O - http://127.0.0.1:8088/index.html && exit 0; sleep 1; done; cat /tmp/auto.log; exit 1'
e2e_step autopub_lo 60 sh -c 'for i in $(seq 40); do timeout 5 wget -q -O - http://127.0.0.1:8089/index.html && exit 0; sleep 1; done; cat /tmp/auto.log; exit 1'
kill $auto 2>/dev/null
wait $auto
e2e_step shell 120 kvmbox shell --kernel /vmlinux --initrd /l2.cpio --allow-host -- sh -c 'echo "shell: $(wget -q -O - http://10.0.2.2:8080/index.html)"'
e2e_step nonet 120 $run --no-net -- sh -c 'ls /sys/class/net; cat /etc/resolv.conf 2>&1 | head -1'
if [ -f /up-srv.pem ]; then
	openssl s_server -accept 443 -cert /up-srv.pem -key /up-srv.key -www -quiet >/dev/null 2>&1 &
	ups=$!
	e2e_step proxy 150 $run --allow-host --proxy --upstream-ca /up-ca.pem -- sh -c '
		head -n 1 /etc/ssl/certs/kvmbox-ca.pem
		echo "bundle: $(grep -c "BEGIN CERTIFICATE" /etc/ssl/certs/ca-certificates.crt)"
		echo "node: $NODE_EXTRA_CA_CERTS"
		s="openssl s_client -connect 10.0.2.2:443 -servername upstream.test -CAfile /etc/ssl/certs/kvmbox-ca.pem -verify_return_error"
		timeout 30 $s -brief </dev/null 2>&1 | sed "s/^/tls: /"
		printf "GET / HTTP/1.1\r\nHost: upstream.test\r\nConnection: close\r\n\r\n" |
			timeout 30 $s -quiet 2>&1 | sed "s/^/body: /" | head -n 12
		q="GET / HTTP/1.1\r\nHost: 10.1.2.3\r\nConnection: close\r\n\r\n"
		printf "$q" | nc -w 20 10.1.2.3 80 2>&1 | sed "s/^/denied80: /"
		printf "$q" | timeout 30 openssl s_client -connect 10.1.2.3:443 -CAfile /etc/ssl/certs/kvmbox-ca.pem \
			-quiet 2>/dev/null | sed "s/^/denied443: /"'
	# the broker split: the real value never in the VMM (its memory, its
	# guest's RAM), always in the broker
	KVX_REAL=XYZZY-net-real-secret-4242 $run --memory 256 --allow-host --proxy --upstream-ca /up-ca.pem \
		--secret kvmbox-ph-5ec2e7a1=env:KVX_REAL@upstream.test -- sh -c '
		s="openssl s_client -connect 10.0.2.2:443 -servername upstream.test -CAfile /etc/ssl/certs/kvmbox-ca.pem -quiet"
		printf "GET / HTTP/1.1\r\nHost: upstream.test\r\nAuthorization: Bearer kvmbox-ph-5ec2e7a1\r\nConnection: close\r\n\r\n" |
			timeout 30 $s 2>/dev/null | head -n 1 | sed "s/^/guest-got: /"
		echo guest-waiting; sleep 20' >/tmp/scan.out 2>&1 &
	scanned=$!
	e2e_step scan 120 sh -c 'for i in $(seq 200); do grep -q guest-waiting /tmp/scan.out && break; sleep 0.5; done
		cat /tmp/scan.out
		vmm=; for p in /proc/[0-9]*; do tr "\0" " " <$p/cmdline 2>/dev/null | grep -q "^kvmbox .vm run" && vmm=${p#/proc/}; done
		broker=$(sed -n "s/^PPid:[[:space:]]*//p" /proc/$vmm/status)
		echo "broker-cmd: $(tr "\0" " " </proc/$broker/cmdline | cut -c1-20)"
		grep -E "^(Seccomp|NoNewPrivs|CapEff|CapPrm|CapBnd):" /proc/$vmm/status | sed "s/^/vmm-/"
		grep -E "^(Seccomp|NoNewPrivs|CapEff|CapPrm|CapBnd):" /proc/$broker/status | sed "s/^/broker-/"
		echo "vmm-env-secret: $(tr "\0" "\n" </proc/$vmm/environ | grep -c KVX_REAL)"
		memscan $vmm XYZZY-net-real | sed "s/^/scan-vmm: /"
		memscan $broker XYZZY-net-real | sed "s/^/scan-broker: /"'
	wait $scanned
	# kvmbox shell --proxy from a template: each restore's guest gets and
	# trusts that launch's proxy CA (over kvmbox.ctl, not the command line
	# the template booted with); a checkpoint taken while a command runs
	# trusts its own launch's proxy, so restoring it with --proxy is refused
	sp="kvmbox shell --kernel /vmlinux --initrd /l2.cpio --memory 256 --allow-host --proxy --upstream-ca /up-ca.pem"
	e2e_step ptpl 200 $sp --snapshot /ptpl -- true
	for i in 1 2; do
		e2e_step prestore$i 200 $sp --restore /ptpl -- sh -c '
			echo "cmdline-ca: $(grep -c kvmbox.ca= /proc/cmdline)"
			echo "ca=$(openssl x509 -in /etc/ssl/certs/kvmbox-ca.pem -noout -fingerprint -sha256 | sed "s/.*=//; s/://g" | cut -c1-32)"
			echo "node: $NODE_EXTRA_CA_CERTS"
			s="openssl s_client -connect 10.0.2.2:443 -servername upstream.test -CAfile /etc/ssl/certs/kvmbox-ca.pem -verify_return_error"
			timeout 30 $s -brief </dev/null 2>&1 | sed "s/^/tls: /"'
	done
	e2e_step pmid 200 $sp --restore /ptpl --snapshot /pmid -- sh -c 'kvmbox-checkpoint; echo resumed'
	e2e_step presume 60 sh -c "$sp --restore /pmid; echo rc=\$?"
	kill $ups
fi
PAYLOAD
)
e2e_run_or_bail "$payload" 900

field() { e2e_step_out "$1" | sed -n "s/^$2: *//p" | head -n 1; }

e2e_check_rc host 0 "--allow-host run exits 0"
e2e_check_has host "eth0 has 10.0.2.15/24 from kvmbox.net=" 'inet 10\.0\.2\.15/24'
e2e_check_has host "default route via 10.0.2.2" '^default via 10\.0\.2\.2 dev eth0'
e2e_check_has host "/etc/resolv.conf points at the stack's DNS" -x 'nameserver 10\.0\.2\.2'
expect_eq "the gateway reaches L1's loopback httpd" "hello-from-l1" "$(field host index)"
l1_big=$(sed -n 's/^@@NET l1-big \([0-9a-f]*\).*/\1/p' "$E2E_LOG" | head -n 1)
down=$(field host down | cut -d' ' -f1)
expect_eq "4 MiB host->guest arrives intact (md5)" "$l1_big" "$down"
up_sent=$(field host guest-up | cut -d' ' -f1)
up_got=$(field l1up got | cut -d' ' -f1)
if [ -n "$up_sent" ] && [ "$up_sent" = "$up_got" ]; then ok "4 MiB guest->host arrives intact (md5)"
else not_ok "4 MiB guest->host arrives intact (md5)" "sent $up_sent, L1 got: $(e2e_step_out l1up)"; fi
e2e_check_has host "a name from L1's /etc/hosts resolves through the forwarder" '^dns-public: .*1\.2\.3\.4'
if e2e_step_out host | grep '^dns-private:' | grep -q '10\.9\.8\.7'; then
	not_ok "a name resolving to a private address is refused" "$(e2e_step_out host | grep '^dns-private:')"
else ok "a name resolving to a private address is refused"; fi
e2e_check_has host "IPv6 address from the stack's router advertisement" '^v6: .*inet6 fd4b:7662:6f78:'

for d in 10.0.2.2:8080 10.1.2.3:80 192.168.1.1:80 169.254.169.254:80; do
	line=$(e2e_step_out denied | grep "^denied $d ")
	secs=$(echo "$line" | sed -n 's/.* secs=\([0-9.]*\).*/\1/p')
	if echo "$line" | grep -q 'rc=1 .*[Cc]onnection refused' && [ -n "$secs" ] &&
		awk "BEGIN { exit !($secs < 3) }"; then
		ok "$d refused at once without --allow-host/--allow-lan (${secs}s)"
	else
		not_ok "$d refused at once" "${line:-no line}"$'\n'"$(e2e_step_out denied | tail -n 20)"
	fi
done
e2e_check_rc publish 0 "--publish 127.0.0.1:18080:80 reaches the guest's httpd from L1"
e2e_check_has publish "with the guest's page" -x 'guest-page'
e2e_check_rc autopub 0 "kvmbox shell --auto-publish: the guest's new listener on :8088 is reachable on L1's 127.0.0.1:8088"
e2e_check_has autopub "with the guest's page" -x 'auto-page'
e2e_check_rc autopub_lo 0 "and a listener on the guest's 127.0.0.1:8089 only, relayed, on L1's 127.0.0.1:8089"
e2e_check_has autopub_lo "with that server's page" -x 'loopback-page'
e2e_check_rc shell 0 "kvmbox shell --allow-host exits 0"
e2e_check_has shell "kvmbox shell's guest has the card too (reaches L1's httpd)" -x 'shell: hello-from-l1'
e2e_check_rc nonet 0 "--no-net run exits 0"
got=$(e2e_step_out nonet | grep -E '^(lo|eth[0-9])$' | tr '\n' ' ')
expect_eq "--no-net: only lo in the guest" "lo " "$got"

if [ -z "$have_openssl" ]; then
	skip "--proxy checks" "openssl not installed on the host (needed in L1 and the guest)"
else
	e2e_check_rc proxy 0 "--proxy run exits 0"
	e2e_check_has proxy "kvmbox-init installed the proxy CA from kvmbox.ca=" -x -- '-----BEGIN CERTIFICATE-----'
	e2e_check_has proxy "and appended it to the CA bundle" -x 'bundle: 1'
	e2e_check_has proxy "NODE_EXTRA_CA_CERTS points at it" -x 'node: /etc/ssl/certs/kvmbox-ca.pem'
	e2e_check_has proxy "the guest's TLS to port 443 ends in the proxy: its leaf verifies against that CA" -x 'tls: Verification: OK'
	e2e_check_has proxy "the leaf names the SNI" 'tls: Peer certificate: CN *= *upstream.test'
	e2e_check_has proxy "the request reaches the upstream (verified with --upstream-ca) through the proxy" '^body: s_server -accept 443'
	e2e_check_has proxy "a refused address on port 80: the request gets a 403" '^denied80: HTTP/1.1 403'
	e2e_check_has proxy "whose body says what was refused and the flag that would allow it" \
		"^denied80: kvmbox: the egress policy refuses 10\.1\.2\.3 port 80: private network .*(--allow-lan, or --allow-egress with the address)"
	e2e_check_has proxy "on port 443 too, over TLS the guest trusts (nothing dialled)" \
		"^denied443: kvmbox: the egress policy refuses 10\.1\.2\.3 port 443: private network"
	e2e_check_has proxy "at exit kvmbox sums up what the policy refused, and the flag that would allow it" \
		'kvmbox: run: the egress policy refused 2 connections or lookups: 10\.1\.2\.3:80/tcp x1 (private network.*; --allow-lan, or --allow-egress with the address), 10\.1\.2\.3:443/tcp x1'
	e2e_check_has scan "with a --secret: the guest's request got the upstream's answer" '^guest-got: HTTP/1.0 200'
	e2e_check_has scan "the VMM's parent is the broker, the process started" '^broker-cmd: kvmbox run '
	e2e_check_has scan "the VMM runs in the seccomp cage" '^vmm-Seccomp:[[:space:]]*2$'
	e2e_check_has scan "with no_new_privs" '^vmm-NoNewPrivs:[[:space:]]*1$'
	e2e_check_has scan "so does the broker" '^broker-Seccomp:[[:space:]]*2$'
	e2e_check_has scan "with no_new_privs" '^broker-NoNewPrivs:[[:space:]]*1$'
	for who in vmm broker; do
		for set in CapEff CapPrm CapBnd; do
			e2e_check_has scan "started by root, the $who has dropped every capability ($set)" \
				"^$who-$set:[[:space:]]*0000000000000000\$"
		done
	done
	e2e_check_has scan "the VMM's environment lacks the secret's variable" -x 'vmm-env-secret: 0'
	e2e_check_has scan "no byte of the real value in the VMM's memory, its guest's RAM included (root's search)" \
		-x 'scan-vmm: XYZZY-net-real: 0'
	e2e_check_has scan "the guest's RAM was searched (its 256 MiB mapping)" -E \
		'^scan-vmm: scanned [0-9]* MiB \(largest mapping (25[6-9]|2[6-9][0-9]|[3-9][0-9]{2}|[1-9][0-9]{3,}) MiB\)'
	e2e_check_has scan "control: the same search finds it in the broker" '^scan-broker: XYZZY-net-real: [1-9]'
	e2e_check_rc ptpl 0 "kvmbox shell --proxy --snapshot: a template with the proxy"
	for i in 1 2; do
		e2e_check_rc prestore$i 0 "restore $i of it exits 0"
		e2e_check_has prestore$i "restore $i: the CA is not on the command line the template booted with" -x 'cmdline-ca: 0'
		e2e_check_has prestore$i "restore $i: NODE_EXTRA_CA_CERTS names the CA the session handed over" -x 'node: /etc/ssl/certs/kvmbox-ca.pem'
		e2e_check_has prestore$i "restore $i: the guest's TLS through this launch's proxy verifies against that CA" -x 'tls: Verification: OK'
	done
	e2e_check_differ prestore1 prestore2 ca "each restore trusts its own launch's CA, not one shared through the template"
	e2e_check_rc pmid 0 "a checkpoint of a running command with the proxy is saved"
	e2e_check_has presume "restoring it with --proxy is refused: its command trusts another launch's proxy" \
		"kvmbox: shell: cannot restore /pmid with --proxy: its guest runs a command already, which trusts another launch's proxy"
	e2e_check_has presume "with exit status 2" -x 'rc=2'
	e2e_step_out scan | grep '^scan-' | sed 's/^/# /'
fi

# Figures: bulk throughput inside the harness (TCG speed, not hardware).
read -r t0 t1 t2 t3 <<<"$(field host times)"
if [ -n "${t3:-}" ]; then
	echo "# bulk 4 MiB through the stack at TCG speed: host->guest" \
		"$(awk "BEGIN { d = $t1 - $t0; if (d <= 0) d = 0.01; printf \"%.1f\", 4 / d }") MiB/s," \
		"guest->host $(awk "BEGIN { d = $t3 - $t2; if (d <= 0) d = 0.01; printf \"%.1f\", 4 / d }") MiB/s" \
		"(whole nested run ${E2E_WALL_S%.*} s)"
fi
tap_done
