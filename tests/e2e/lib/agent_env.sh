# tests/e2e/lib/agent_env.sh - what the real-agent tests (agent_real.sh,
# agent_others.sh) set up in L1 before their own steps; source it after
# nested.sh.
#
#   e2e_agent_env_payload HOST...
#       prints the L1 shell text that
#       - puts the fake provider on "another machine": a network namespace
#         behind a veth pair, at the public address 1.2.3.4, which L1's
#         /etc/hosts gives HOST... (an address of L1 itself would be the
#         host, which the egress policy refuses, as it must); $net is then
#         the pid holding the namespace (nsenter -t $net -n ...);
#       - makes the user u (uid 1000, home /home/u, in group kvm, which
#         owns /dev/kvm 0660) and /proj, /run/u;
#       - installs `launch-again CMD...`, which runs CMD once more when the
#         guest triple-faulted (QEMU TCG's nested SVM does that now and
#         then to a guest this busy, as it freezes L1 now and then, see
#         nested.sh), saying so with an @@E2E-RETRY line.
e2e_agent_env_payload() {
	cat <<'ENV'
ip link set lo up
insmod /lib/modules/veth.ko 2>/dev/null
unshare -n sleep 100000 &
net=$!
sleep 1
ip link add v0 type veth peer name v1	# busybox names the peer veth0
ip link set veth0 netns $net
ip addr add 10.99.0.1/24 dev v0
ip link set v0 up
ip route add 1.2.3.4/32 dev v0
nsenter -t $net -n sh -c 'ip link set lo up; ip addr add 1.2.3.4/32 dev veth0; ip link set veth0 up; ip route add 10.99.0.0/24 dev veth0'
echo 'hosts: files' >/etc/nsswitch.conf
printf 'root:x:0:0::/root:/bin/sh\nu:x:1000:1000::/home/u:/bin/sh\n' >/etc/passwd
printf 'root:x:0:\nkvm:x:993:u\nu:x:1000:\n' >/etc/group
chgrp 993 /dev/kvm && chmod 660 /dev/kvm
mkdir -p /home/u /proj /run/u
cat >/usr/local/bin/launch-again <<'AGAIN'
#!/bin/sh
for try in 1 2; do
	"$@" >/tmp/launch.out 2>&1
	rc=$?
	cat /tmp/launch.out
	grep -q 'guest triple fault' /tmp/launch.out || exit $rc
	[ $try = 1 ] && echo "@@E2E-RETRY the guest triple-faulted (the emulator); launching again"
done
exit $rc
AGAIN
chmod 755 /usr/local/bin/launch-again
ENV
	printf "printf '127.0.0.1 localhost\\\\n1.2.3.4 %s\\\\n' >/etc/hosts\n" "$*"
}
