#!/bin/bash
# tests/guests/vmm_run.sh - `kvmbox run` on the host's /dev/kvm with the tiny
# guests from firmware/tests/: serial output, exit statuses through the
# marker port, the command line reaching the guest (kvmbox.argv), triple
# fault and reset-without-status reported with one line and exit 1, a
# spinning guest stopped by SIGTERM and SIGINT within a second, the vCPU
# state dump (VM_SIG_DUMP) of a spinning guest, SMP, and the
# bad-input cases (exit 2, one line, no hang).
set -u
. "$(dirname "$0")/../lib/tap.sh"
G=${BUILD:-$KVMBOX_TOP/build}/firmware/tests
[ -f "$G/hello.elf" ] || G=$KVMBOX_TOP/build/firmware/tests
[ -f "$G/hello.elf" ] || skip_all "tiny guests not built (make)"
[ -x "$KVMBOX_BIN" ] || skip_all "kvmbox not built"
[ -c /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ] || skip_all "no usable /dev/kvm"

tmp=$(mktemp -d)
pids=()
hp_orig=
cleanup() {
	local p
	for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
	[ -n "$hp_orig" ] && echo "$hp_orig" >/proc/sys/vm/nr_hugepages
	rm -rf "$tmp"
}
trap cleanup EXIT

# run NAME ARGS...: run kvmbox with a 20 s bound; sets rc, out, err.
run() {
	timeout --kill-after=5 20 "$KVMBOX_BIN" run "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
	rc=$?
	out=$(tr -d '\r' <"$tmp/out")
	err=$(cat "$tmp/err")
}

run --kernel "$G/hello.elf" --memory 32 --cmdline "exit=0"
expect_eq "hello guest exits 0" 0 "$rc"
expect_eq "hello guest prints over serial from CPL 3" \
	"hello from a tiny guest at CPL 3" "$(printf '%s\n' "$out" | head -1)"
expect_eq "no stderr on a clean exit" "" "$err"

run --kernel "$G/hello.elf" --memory 32 --no-net --cmdline "exit=42 x"
expect_eq "exit status 42 from the marker port" 42 "$rc"
expect_eq "--cmdline reaches the guest" "cmdline: exit=42 x" "$(printf '%s\n' "$out" | sed -n 2p)"
run --kernel "$G/hello.elf" --memory 32 --cmdline "exit=0"
line=$(printf '%s\n' "$out" | sed -n 2p)
case $line in
"cmdline: exit=0 virtio_mmio.device=4K@0xd0000000:5 kvmbox.net=10.0.2.15/24,10.0.2.2,10.0.2.2") ok "a network card by default, announced with its address" ;;
*) not_ok "a network card by default, announced with its address" "$line" ;;
esac

run --kernel "$G/hello.elf" --memory 32 --cmdline "exit=255"
expect_eq "exit status 255" 255 "$rc"

run --kernel "$G/hello.elf" --memory 32 --no-net -- echo "a b" 'c$d'
line=$(printf '%s\n' "$out" | sed -n 2p)
case $line in
"cmdline: console=ttyS0 reboot=k panic=-1 quiet 8250.nr_uarts=1 kvmbox.argv="*) ok "default cmdline with kvmbox.argv" ;;
*) not_ok "default cmdline with kvmbox.argv" "$line" ;;
esac
enc=${line##*kvmbox.argv=}
pad=$(( (4 - ${#enc} % 4) % 4 ))
dec=$(printf '%s%s' "$enc" "$(printf '=%.0s' $(seq 1 $pad))" | tr -- '-_' '+/' | base64 -d 2>/dev/null | tr '\0' '|')
expect_eq "kvmbox.argv decodes to the NUL-terminated argv" 'echo|a b|c$d|' "$dec"

run --kernel "$G/hello.elf" --memory 64 --cpus 4 --cmdline "exit=7"
expect_eq "--cpus 4 boots (APs wait for SIPI) and exits 7" 7 "$rc"

# A reader that goes away early (| head -1) does not kill the VMM.
timeout 20 "$KVMBOX_BIN" run --kernel "$G/hello.elf" --memory 32 --cmdline exit=6 2>"$tmp/err" </dev/null | head -c 1 >/dev/null
expect_eq "closed stdout: guest still runs to its exit status" 6 "${PIPESTATUS[0]}"

# CPUID as the guest kernel sees it (read at CPL 0 by the tiny guest).
khz=$(awk '/^cpu MHz/ { printf "%d", $4 * 1000; exit }' /proc/cpuinfo)
run --kernel "$G/cpuid.elf" --memory 32 --cpus 3
case $out in
"hypervisor=1 apic_id=0 logical=3 signature=KVMKVMKVM tsc_deadline=1 tsc_khz="*)
	ok "CPUID: hypervisor bit, APIC ID 0, 3 logical CPUs, KVMKVMKVM, TSC-deadline timer" ;;
*) not_ok "CPUID: hypervisor bit, APIC ID 0, 3 logical CPUs, KVMKVMKVM, TSC-deadline timer" "$out" ;;
esac
got_khz=${out##*tsc_khz=}
if [ "$got_khz" = none ]; then skip "CPUID 0x40000010 TSC frequency" "KVM_GET_TSC_KHZ unavailable"
elif [ -n "$khz" ] && [ "$got_khz" -gt $((khz * 9 / 10)) ] && [ "$got_khz" -lt $((khz * 11 / 10)) ]; then
	ok "CPUID 0x40000010 TSC frequency $got_khz kHz (host says $khz)"
else not_ok "CPUID 0x40000010 TSC frequency" "guest $got_khz kHz, host $khz kHz"; fi

# SMP: the APs wait for SIPI in the in-kernel LAPIC and start on INIT/SIPI.
for n in 2 4; do
	run --kernel "$G/smp.elf" --memory 32 --cpus $n --cmdline "cpus=$n"
	expect_eq "--cpus $n: every AP starts on INIT/SIPI" "aps started: $((n - 1)) of $((n - 1))" "$out"
	expect_eq "--cpus $n: exit 0" 0 "$rc"
done

run --kernel "$G/fault.elf" --memory 32
expect_eq "faulting guest: exit 1" 1 "$rc"
expect_eq "faulting guest: one line naming the triple fault" \
	"kvmbox: guest triple fault (KVM_EXIT_SHUTDOWN on vCPU 0)" "$err"
expect_eq "faulting guest: its output came first" "about to fault" "$out"

# A triple fault resets the machine as the i8042 does: after an exit status
# (the guest's kernel wrote it, then its reboot faulted), that status counts.
run --kernel "$G/fault.elf" --memory 32 --cmdline "status=7"
expect_eq "a triple fault after exit status 7: exit 7, nothing said" "7 " "$rc $err"

run --kernel "$G/resetonly.elf" --memory 32
expect_eq "reset without status: exit 1" 1 "$rc"
expect_eq "reset without status: one line" \
	"kvmbox: guest reset without writing an exit status" "$err"

run --kernel "$G/marker.elf" --memory 32 --profile=json
expect_eq "marker guest exits 0" 0 "$rc"
if printf '%s' "$err" | python3 -c '
import json, sys
p = json.loads(sys.stdin.read())
names = ["exec", "kvm_ready", "kernel_loaded", "first_kvm_run", "guest_init_started",
         "command_done", "teardown"]
walls = [p[n]["wall_ms"] for n in names]
assert walls == sorted(walls), walls
assert all(p[n]["cpu_ms"] >= 0 for n in names)
' 2>"$tmp/pyerr"; then ok "--profile=json: one object, every phase, in order"
else not_ok "--profile=json: one object, every phase, in order" "$err $(cat "$tmp/pyerr")"; fi

run --kernel "$G/marker.elf" --memory 32 --profile
if printf '%s\n' "$err" | grep -q '^kvmbox: profile   guest_init_started '; then
	ok "--profile table lists guest_init_started"
else not_ok "--profile table lists guest_init_started" "$err"; fi

# --console: host stdin reaches the guest's UART through the event loop,
# including a line longer than the 64-byte receive FIFO and input that
# arrives in pieces.
console() {	# NAME INPUT-CMD WANT-OUT WANT-RC
	local out rc
	bash -c "$2" | timeout --kill-after=5 20 "$KVMBOX_BIN" run --console \
		--kernel "$G/echo.elf" --memory 32 >"$tmp/cout" 2>"$tmp/err"
	rc=${PIPESTATUS[1]}
	out=$(tr -d '\r' <"$tmp/cout")
	expect_eq "$1: output" "$3" "$out"
	expect_eq "$1: exit status" "$4" "$rc"
}
console "--console line" "printf 'hello\n'" "got: hello" 5
long=$(printf '%0150d' 7)
console "--console 150-byte line (FIFO refills)" "printf '%0150d\n' 7" "got: $long" 150
console "--console input in pieces" "sleep 0.2; printf ab; sleep 0.2; printf 'c\n'" "got: abc" 3

# --hugepages: a shortage is a one-line error at start, never a SIGBUS later.
free_hp=$(awk '/^HugePages_Free/ { print $2 }' /proc/meminfo)
hp_size=$(awk '/^Hugepagesize/ { print $2 }' /proc/meminfo)
if [ -n "$free_hp" ] && [ "$hp_size" = 2048 ]; then
	need=$(( (free_hp + 1) * 2 )); [ $need -lt 16 ] && need=16
	run --kernel "$G/hello.elf" --memory $need --hugepages --cmdline exit=3
	expect_eq "--hugepages without enough huge pages: exit 1" 1 "$rc"
	case $err in
	"kvmbox: guest RAM: cannot reserve $need MiB of huge pages"*) ok "--hugepages shortage: one line naming it" ;;
	*) not_ok "--hugepages shortage: one line naming it" "$err" ;;
	esac
	if [ -w /proc/sys/vm/nr_hugepages ]; then
		hp_orig=$(cat /proc/sys/vm/nr_hugepages)
		echo $((hp_orig + 16)) >/proc/sys/vm/nr_hugepages
		if [ "$(awk '/^HugePages_Free/ { print $2 }' /proc/meminfo)" -ge 16 ]; then
			run --kernel "$G/hello.elf" --memory 32 --hugepages --cmdline exit=3
			expect_eq "--hugepages with huge pages available: runs, exit 3" 3 "$rc"
		else
			skip "--hugepages with huge pages available" "could not get 16 free huge pages"
		fi
		echo "$hp_orig" >/proc/sys/vm/nr_hugepages
		hp_orig=
	else
		skip "--hugepages with huge pages available" "cannot raise /proc/sys/vm/nr_hugepages"
	fi
else
	skip "--hugepages" "no 2 MiB huge pages on this kernel"
fi

# A guest spinning at CPL 3 with interrupts off stops on SIGTERM and SIGINT.
for sig in TERM INT; do
	"$KVMBOX_BIN" run --kernel "$G/spin.elf" --memory 32 >"$tmp/spin.out" 2>"$tmp/spin.err" </dev/null &
	p=$!
	pids+=("$p")
	for _ in $(seq 100); do grep -q spinning "$tmp/spin.out" 2>/dev/null && break; sleep 0.05; done
	start=$(date +%s%N)
	kill -"$sig" "$p"
	stopped=0
	for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || { stopped=1; break; }; sleep 0.01; done
	ms=$(( ($(date +%s%N) - start) / 1000000 ))
	if [ $stopped = 1 ] && [ $ms -lt 1000 ]; then ok "spinning guest stops on SIG$sig (${ms} ms)"
	else not_ok "spinning guest stops on SIG$sig within 1 s" "still running after ${ms} ms"; kill -KILL "$p"; fi
	wait "$p"
	rc=$?
	want=$(( 128 + $(kill -l "$sig") ))
	expect_eq "SIG$sig: exit $want" "$want" "$rc"
	expect_eq "SIG$sig: one line" "kvmbox: stopped by SIG$sig" "$(cat "$tmp/spin.err")"
done

# VM_SIG_DUMP (vmm/vmm.h, real-time signal 4): one line per vCPU on stderr
# with what the latest probe saw; the VM runs on.
"$KVMBOX_BIN" run --kernel "$G/spin.elf" --memory 32 >"$tmp/dump.out" 2>"$tmp/dump.err" </dev/null &
p=$!
pids+=("$p")
for _ in $(seq 100); do grep -q spinning "$tmp/dump.out" 2>/dev/null && break; sleep 0.05; done
sleep 1.5	# a probe has run (once a second without signals)
kill -s RTMIN+4 "$p"
for _ in $(seq 100); do grep -q vcpu0 "$tmp/dump.err" 2>/dev/null && break; sleep 0.02; done
if grep -qx 'kvmbox: vcpu0: runnable rip=0x[0-9a-f]* rflags=0x[0-9a-f]* (user), [0-9]* ms ago' "$tmp/dump.err"
then ok "VM_SIG_DUMP: the spinning vCPU, where it is"
else not_ok "VM_SIG_DUMP: the spinning vCPU, where it is" "$(cat "$tmp/dump.err")"; fi
if kill -0 "$p" 2>/dev/null; then ok "VM_SIG_DUMP: the VM runs on"; else not_ok "VM_SIG_DUMP: the VM runs on" "it exited"; fi
kill -TERM "$p"
wait "$p"

# The cage (cage/cage.h): while the guest runs, every thread has the
# process filter (Seccomp 2) and no_new_privs, the vCPU and loop threads
# (the event loop's and the share's I/O thread) their role's filter on top.
mkdir -p "$tmp/cage-share"
: >"$tmp/cage-initrd"
"$KVMBOX_BIN" run --kernel "$G/spin.elf" --memory 32 --cpus 2 --initrd "$tmp/cage-initrd" \
	--share "$tmp/cage-share:/s" >"$tmp/cage.out" 2>"$tmp/cage.err" </dev/null &
p=$!
pids+=("$p")
for _ in $(seq 100); do grep -q spinning "$tmp/cage.out" 2>/dev/null && break; sleep 0.05; done
threads="" bad=""
for t in /proc/"$p"/task/*; do
	c=$(cat "$t/comm") s=$(awk '/^Seccomp:/ { print $2 }' "$t/status")
	f=$(awk '/^Seccomp_filters:/ { print $2 }' "$t/status") n=$(awk '/^NoNewPrivs:/ { print $2 }' "$t/status")
	threads+="$c:$s/$f/$n "
	[ "$s" = 2 ] && [ "$n" = 1 ] || bad+="$c "
	case $c in vcpu*|kvmbox-loop|kvmbox-io*) [ "$f" = 2 ] || bad+="$c(filters $f) " ;; esac
done
case $threads in
*kvmbox-io1:*) ;;
*) bad+="(no I/O thread for the share) " ;;
esac
case $threads in
*vcpu0:*vcpu1:*|*vcpu1:*vcpu0:*) [ -z "$bad" ] && ok "every thread of a running VM is caged ($threads)" ||
	not_ok "every thread of a running VM is caged" "not: $bad (comm:seccomp/filters/nnp: $threads)" ;;
*) not_ok "every thread of a running VM is caged" "threads seen: $threads" ;;
esac
# Guest RAM (32 MiB here) is anonymous memory offered to transparent huge
# pages (vmm/vm.c vm_map_fresh_memory), unless the host has them off.
ram=$(awk '/^[0-9a-f]+-[0-9a-f]+ / { size = 0; anon = ($6 == "") }
	/^Size:/ { size = $2 } /^THPeligible:/ { if (size == 32768 && anon) print $2 }' /proc/"$p"/smaps)
if grep -q '\[never\]' /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null; then
	skip "guest RAM may take transparent huge pages" "this host has them off"
elif [ "$ram" = 1 ]; then
	ok "guest RAM may take transparent huge pages (anonymous, THPeligible 1)"
else
	not_ok "guest RAM may take transparent huge pages" "32 MiB anonymous mapping's THPeligible: '${ram:-no such mapping}'"
fi
kill -TERM "$p"
wait "$p"
# A thread calling what its role may not: the VM ends at once with status
# 159 and one line naming the role and the call (a test-only trigger in
# the sanitizer build: KVMBOX_FAULT_SECCOMP).
if strings "$KVMBOX_BIN" | grep -q "fault injection: the loop thread"; then
	for role in vcpu loop main; do
		KVMBOX_FAULT_SECCOMP=$role run --kernel "$G/spin.elf" --memory 32
		expect_eq "a $role thread's refused call ends the VM with 159" 159 "$rc"
		expect_eq "a $role thread's refused call: one line naming it" \
			"kvmbox: seccomp: the $role thread called acct (163), which its list in cage/syscalls.c does not allow; stopping" "$err"
	done
else
	skip "a refused call ends the VM" "$KVMBOX_BIN has no fault injection (a sanitizer build has)"
fi
# Landlock: the running VM's process opens nothing outside what it serves
# (a file beside the tests' folder stands for the user's keys), while the
# system's read-only folders stay readable.
echo secret >"$tmp/key"
if ! strings "$KVMBOX_BIN" | grep -q "fault injection: the loop thread"; then
	skip "Landlock in a running VM" "$KVMBOX_BIN has no fault injection (a sanitizer build has)"
else
	KVMBOX_FAULT_OPEN=$tmp/key run --kernel "$G/hello.elf" --memory 32 --cmdline "exit=0"
	case $err in
	*"Landlock is not available"*) skip "Landlock in a running VM" "${err#kvmbox: }" ;;
	*) expect_eq "a caged VM cannot open a file outside its shares (Landlock)" \
		"0 kvmbox: fault injection: the loop thread opening $tmp/key: Permission denied" "$rc $err"
	   KVMBOX_FAULT_OPEN=/etc/passwd run --kernel "$G/hello.elf" --memory 32 --cmdline "exit=0"
	   expect_eq "a caged VM still reads the system's read-only folders" \
		"0 kvmbox: fault injection: the loop thread opening /etc/passwd: opened" "$rc $err" ;;
	esac
fi
KVMBOX_SECCOMP=off run --kernel "$G/hello.elf" --memory 32 --cmdline "exit=0"
expect_eq "KVMBOX_SECCOMP=off runs the guest, with a warning" \
	"0 kvmbox: KVMBOX_SECCOMP=off: the VM runs without its seccomp filters and Landlock" "$rc $err"
KVMBOX_SECCOMP=strict run --kernel "$G/hello.elf" --memory 32 --cmdline "exit=0"
expect_eq "KVMBOX_SECCOMP=strict: exit 1, one line" \
	"1 kvmbox: KVMBOX_SECCOMP=strict: expected on, log or off" "$rc $err"

# Bad input: exit 2 with exactly one line on stderr, never a hang.
bad() {	# NAME ARGS...
	local name=$1; shift
	run "$@"
	local lines
	lines=$(printf '%s\n' "$err" | grep -c .)
	if [ "$rc" = 2 ] && [ "$lines" = 1 ]; then ok "$name: exit 2, one line"
	else not_ok "$name: exit 2, one line" "rc=$rc stderr: $err"; fi
}
bad "unknown flag" --kernel "$G/hello.elf" --frobnicate
# No kernel anywhere: not given, no $KVMBOX_KERNEL, none beside kvmbox (a
# copy of it in an empty directory), none cached (an empty home and cache).
mkdir -p "$tmp/alone" "$tmp/emptyhome"
cp "$KVMBOX_BIN" "$tmp/alone/kvmbox"
KVMBOX_BIN=$tmp/alone/kvmbox HOME=$tmp/emptyhome KVMBOX_CACHE=$tmp/emptyhome/cache \
	KVMBOX_KERNEL='' bad "missing --kernel" --memory 32
bad "flag without value" --kernel
bad "nonexistent kernel" --kernel "$tmp/nope"
bad "kernel is a directory" --kernel "$tmp"
: >"$tmp/empty"
bad "empty kernel" --kernel "$tmp/empty"
head -c 100 "$G/hello.elf" >"$tmp/trunc"
bad "truncated kernel" --kernel "$tmp/trunc"
head -c 2000 /dev/urandom >"$tmp/garbage"
bad "garbage kernel" --kernel "$tmp/garbage"
bad "too-small --memory" --kernel "$G/hello.elf" --memory 1
bad "non-numeric --memory" --kernel "$G/hello.elf" --memory lots
bad "--cpus 0" --kernel "$G/hello.elf" --cpus 0
bad "--cpus too many" --kernel "$G/hello.elf" --cpus 100000
bad "--profile=xml" --kernel "$G/hello.elf" --profile=xml
bad "--hugepages with an odd --memory" --kernel "$G/hello.elf" --hugepages --memory 33
bad "missing initrd" --kernel "$G/hello.elf" --initrd "$tmp/nope"
long=$(head -c 6000 /dev/zero | tr '\0' x)
bad "command too long for the command line" --kernel "$G/hello.elf" -- "$long"

tap_done
