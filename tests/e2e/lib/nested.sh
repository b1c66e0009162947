# tests/e2e/lib/nested.sh - the nested end-to-end harness (source it after
# tests/lib/tap.sh).
#
# The development and CI machines have no usable hardware virtualization
# (their /dev/kvm emulates guest ring 0, see docs/guest.md), so the e2e tier
# runs kvmbox one level down: QEMU TCG emulates an AMD CPU with SVM, an "L1"
# Debian cloud kernel loads the stock kvm_amd module and gets a real KVM, and
# kvmbox, inside L1, boots the "L2" guest: our kernel (make kernel) with
# kvmbox-init as PID 1.  Everything comes from Debian packages at test time;
# the L1 kernel package is downloaded once into $KVMBOX_CACHE/l1/.
#
#   e2e_prepare              build the L1 and L2 images (skip_all when a
#                            tool or the L1 package is missing); with
#                            E2E_NO_L2=1, L1 only (tests of host-side
#                            transports that need no guest kernel)
#   e2e_run_in_l1 PAYLOAD [TIMEOUT_S]
#                            boot L1, run the shell snippet PAYLOAD there,
#                            power off; 0 when L1 reported a result.  Sets
#                            E2E_RC (PAYLOAD's status), E2E_LOG (console
#                            log, \r stripped), E2E_WALL_S, E2E_L1_UP_S.
#                            An L1 that freezes (the emulator, not a step)
#                            is booted again (E2E_L1_BOOTS in all);
#                            E2E_RETRY_NOTE says so.  The log is written line
#                            by line (it can be followed while L1 runs).
#   e2e_step_out NAME / e2e_step_rc NAME
#                            output and status of one `e2e_step` of PAYLOAD
#   e2e_console_tail [N]     last N console lines, for failure messages
#   e2e_check_rc, e2e_check_has, e2e_check_lacks   TAP checks on a step (below)
#   e2e_run_or_bail PAYLOAD [LIMIT]   e2e_run_in_l1 plus its TAP line
#   e2e_add_program ROOT PROG DEST / e2e_add_terminfo ROOT NAME...
#                            more programs (with their shared libraries)
#                            and terminfo entries for L1, after e2e_prepare
#
# Inside L1, PAYLOAD runs under busybox sh with: kvmbox on PATH, the guest
# kernel at /vmlinux, the L2 initramfs at /l2.cpio, and
#   e2e_step NAME TIMEOUT_S CMD...   run CMD, framing its output and status
# so that one L1 boot (a few seconds) serves several checks.  A step still
# running 5 s before its limit gets @@E2E-DIAG lines (state, wchan and kernel
# stack of every kvmbox thread) in its output, then SIGTERM, then SIGKILL.

E2E_CACHE=${KVMBOX_CACHE:-$HOME/.cache/kvmbox}
# The L1 kernel flavour: Debian's cloud kernel by default; a test that
# needs what the cloud kernel leaves out (the 9p client) sets
# E2E_L1_FLAVOUR=amd64 before e2e_prepare.  Modules named in
# E2E_L1_EXTRA_MODULES are copied next to the kvm ones when the package has
# them (not loaded: the test insmods them from /lib/modules/); a cached
# kernel unpacked for another list is unpacked again.
E2E_L1_FLAVOUR=${E2E_L1_FLAVOUR:-cloud-amd64}
E2E_L1_EXTRA_MODULES="netfs fscache 9pnet 9pnet_fd 9p veth"
E2E_QEMU=${E2E_QEMU:-qemu-system-x86_64}
E2E_L1_MEM=${E2E_L1_MEM:-2G}
# L1's vCPUs: 2 by default (multi-threaded TCG); a test whose guest keeps
# the emulator busy for minutes runs steadier with 1 (see agent_real.sh).
E2E_L1_SMP=${E2E_L1_SMP:-2}
E2E_WORK=""

e2e_cleanup() { [ -n "$E2E_WORK" ] && rm -rf "$E2E_WORK"; E2E_WORK=""; }

# Fail or skip with the reason, keeping TAP counts honest.
e2e_die() { not_ok "${E2E_TEST_NAME:-e2e setup}" "$1"; e2e_cleanup; exit 1; }

e2e_need_tools() {
	need_cmd "$E2E_QEMU"
	need_cmd cpio
	need_cmd dpkg-deb
	[ -x /bin/busybox ] && file -L /bin/busybox | grep -q 'statically linked' ||
		skip_all "needs a static /bin/busybox (apt-get install busybox-static)"
	[ -x "$KVMBOX_BIN" ] || e2e_die "kvmbox binary $KVMBOX_BIN not built"
}

e2e_l1_package() {
	apt-cache show "linux-image-$E2E_L1_FLAVOUR" 2>/dev/null |
		sed -n "s/^Depends:.*\(linux-image-6\.1\.0-[0-9]*-$E2E_L1_FLAVOUR\).*/\1/p" | sort -V | tail -n 1
}

# The L1 kernel: the newest linux-image-6.1.0-N-cloud-amd64 apt knows (the
# linux-image-cloud-amd64 metapackage names it), else the newest cached.
e2e_l1_kernel() {
	local pkg dir deb tmp
	pkg=$(e2e_l1_package)
	if [ -z "$pkg" ] && [ "$(id -u)" -eq 0 ]; then
		apt-get update -qq >/dev/null 2>&1	# a fresh machine may have no lists
		pkg=$(e2e_l1_package)
	fi
	if [ -n "$pkg" ]; then
		dir=$E2E_CACHE/l1/$pkg
		if [ ! -s "$dir/vmlinuz" ] || [ "$(cat "$dir/extra-modules" 2>/dev/null)" != "$E2E_L1_EXTRA_MODULES" ]; then
			tmp=$(mktemp -d)
			if (cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root "$pkg" >/dev/null 2>&1); then
				deb=$(ls "$tmp"/*.deb)
				e2e_unpack_l1 "$deb" "$dir" || { rm -rf "$tmp" "$dir"; return 1; }
			fi
			rm -rf "$tmp"
		fi
	fi
	if [ -z "$pkg" ] || [ ! -s "$E2E_CACHE/l1/$pkg/vmlinuz" ]; then
		# Offline: fall back to whatever was cached before.
		dir=$(ls -d "$E2E_CACHE"/l1/linux-image-*-"$E2E_L1_FLAVOUR"/ 2>/dev/null | sort -V | tail -n 1)
		dir=${dir%/}
		[ -n "$dir" ] && [ -s "$dir/vmlinuz" ] || return 1
	fi
	E2E_L1_DIR=$dir
}

# Extract vmlinuz, the irqbypass/kvm/kvm-amd modules and those of
# E2E_L1_EXTRA_MODULES the package has (decompressed) from DEB.
e2e_unpack_l1() {
	local deb=$1 dir=$2 x m f
	x=$(mktemp -d)
	dpkg-deb -x "$deb" "$x" || { rm -rf "$x"; return 1; }
	mkdir -p "$dir.tmp"
	cp "$x"/boot/vmlinuz-* "$dir.tmp/vmlinuz" || { rm -rf "$x" "$dir.tmp"; return 1; }
	for m in irqbypass kvm kvm-amd $E2E_L1_EXTRA_MODULES; do
		f=$(find "$x/lib/modules" -name "$m.ko*" | head -n 1)
		if [ -z "$f" ]; then
			case " $E2E_L1_EXTRA_MODULES " in *" $m "*) continue ;; esac
			rm -rf "$x" "$dir.tmp"; return 1
		fi
		case $f in
		*.xz) xz -dc "$f" >"$dir.tmp/$m.ko" ;;
		*.zst) zstd -qdc "$f" >"$dir.tmp/$m.ko" ;;
		*.gz) gzip -dc "$f" >"$dir.tmp/$m.ko" ;;
		*) cp "$f" "$dir.tmp/$m.ko" ;;
		esac
	done
	echo "$E2E_L1_EXTRA_MODULES" >"$dir.tmp/extra-modules"
	rm -rf "$x" "$dir"
	mv "$dir.tmp" "$dir"
}

# The guest kernel: $KVMBOX_KERNEL when set, else `make kernel` (instant
# when cached; minutes otherwise).
e2e_guest_kernel() {
	local path
	if [ -n "${KVMBOX_KERNEL:-}" ]; then
		[ -s "$KVMBOX_KERNEL" ] || e2e_die "KVMBOX_KERNEL=$KVMBOX_KERNEL: no such file"
		E2E_GUEST_KERNEL=$KVMBOX_KERNEL
		return
	fi
	path=$("$KVMBOX_TOP/firmware/kernel/build.sh" --path)
	if [ ! -s "$path" ]; then
		[ -r /usr/src/linux-source-6.1.tar.xz ] ||
			skip_all "guest kernel not built and linux-source-6.1 not installed"
		echo "# building the guest kernel (make kernel)"
		make -s -C "$KVMBOX_TOP" kernel >"$E2E_WORK/kernel.log" 2>&1 ||
			e2e_die "make kernel failed: $(tail -n 20 "$E2E_WORK/kernel.log")"
	fi
	E2E_GUEST_KERNEL=$path
}

# busybox with every applet linked next to it, into ROOT/bin.
e2e_add_busybox() {
	local root=$1 a
	mkdir -p "$root/bin"
	cp /bin/busybox "$root/bin/busybox"
	for a in $(/bin/busybox --list); do
		[ "$a" = busybox ] || ln -sf busybox "$root/bin/$a"
	done
	ln -sfn bin "$root/sbin"
	mkdir -p "$root/usr"
	ln -sfn ../bin "$root/usr/bin"
	ln -sfn ../bin "$root/usr/sbin"
}

# The shared libraries ldd names for FILE (with the loader), at the same
# paths under ROOT.
e2e_add_libs() {
	local root=$1 file=$2 lib
	for lib in $(ldd "$file" 2>/dev/null | grep -o '/[^ ]*'); do
		[ -e "$root$lib" ] && continue
		mkdir -p "$root$(dirname "$lib")"
		cp -L "$lib" "$root$lib"
	done
}

# A program and its shared libraries, at the same paths under ROOT.  For
# kvmbox also the libraries it opens on first use (common/dl.h) that the
# tests in L1 reach: OpenSSL and json-c (the proxy, agents); named by the
# sonames the binary carries, found where ldconfig puts them.
e2e_add_program() {
	local root=$1 prog=$2 dest=$3 so
	mkdir -p "$root$(dirname "$dest")"
	cp "$prog" "$root$dest"
	e2e_add_libs "$root" "$prog"
	for so in $(strings -a "$prog" | grep -xE 'lib(ssl|crypto|json-c)\.so\.[0-9]+' | sort -u); do
		e2e_add_soname "$root" "$so"
	done
}

# This machine's qemu-system-x86_64 at /usr/local/bin under ROOT, with the
# firmware -M microvm loads (QEMU looks beside its binary:
# /usr/local/bin/../share/qemu): the benchmarks' peer.  Nothing without one.
e2e_add_qemu() {
	local root=$1 q
	q=$(command -v qemu-system-x86_64) || return 0
	e2e_add_program "$root" "$(readlink -f "$q")" /usr/local/bin/qemu-system-x86_64
	mkdir -p "$root/usr/local/share/qemu"
	cp -L /usr/share/qemu/bios-microvm.bin /usr/share/qemu/qboot.rom /usr/share/qemu/pvh.bin \
		/usr/share/qemu/linuxboot_dma.bin "$root/usr/local/share/qemu/" 2>/dev/null
	return 0
}

# The library ldconfig's cache names for SONAME, with its own libraries.
e2e_add_soname() {
	local root=$1 path
	path=$(ldconfig -p | awk -v s="$2" '$1 == s && /x86-64/ { print $NF; exit }')
	[ -n "$path" ] || return 0
	mkdir -p "$root$(dirname "$path")"
	cp -L "$path" "$root$path"
	e2e_add_libs "$root" "$path"
}

# Terminfo entries NAME... (as infocmp finds them, e.g. /lib/terminfo/s/
# screen or /usr/share/terminfo/t/tmux) at the same paths under ROOT, for
# programs such as tmux.  Names this host has no entry for are left out.
e2e_add_terminfo() {
	local root=$1 name d f
	shift
	for name in "$@"; do
		for d in /etc/terminfo /lib/terminfo /usr/share/terminfo; do
			f=$d/${name:0:1}/$name
			[ -e "$f" ] || continue
			mkdir -p "$root$(dirname "$f")"
			cp -L "$f" "$root$f"
			break
		done
	done
}

e2e_base_dirs() {
	local root=$1
	mkdir -p "$root"/{dev,proc,sys,tmp,run,root,etc}
	mknod -m 600 "$root/dev/console" c 5 1 2>/dev/null || true
	mknod -m 666 "$root/dev/null" c 1 3 2>/dev/null || true
}

e2e_cpio() { (cd "$1" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) >"$2"; }

# L2: kvmbox-init as /init, busybox for the commands.
e2e_build_l2() {
	local init=${KVMBOX_INIT:-$BUILD/kvmbox-init}
	[ -x "$init" ] || e2e_die "kvmbox-init not built ($init): run make"
	"$KVMBOX_TOP/guest/init/mkinitrd.sh" "$E2E_WORK/l2.cpio" "$init" ||
		e2e_die "could not build the L2 initramfs"
}

# The L1 init script: modules, then the payload, then a result line.
e2e_write_l1_init() {
	cat >"$1" <<'INIT'
#!/bin/sh
export PATH=/usr/local/bin:/bin
mount -t devtmpfs dev /dev 2>/dev/null
exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t tmpfs tmp /tmp
echo "@@E2E-L1-UP $(cut -d' ' -f1 /proc/uptime)"
# Heartbeat on the second serial port: the host tells a frozen L1 by it.
(while :; do cut -d' ' -f1 /proc/uptime >/dev/ttyS1; sleep 5; done) 2>/dev/null &
for m in irqbypass kvm kvm-amd; do
	insmod /lib/modules/$m.ko || echo "@@E2E-INSMOD-FAILED $m"
done
[ -c /dev/kvm ] || echo "@@E2E-NO-DEV-KVM"
# What every kvmbox thread is doing (for a step that does not finish), and
# each VMM's vCPUs as its latest probe saw them (VM_SIG_DUMP, vmm/vmm.h:
# real-time signal 4, 38 with glibc; one line per vCPU on the VMM's
# stderr, which is the step's output).
e2e_diag() {
	for p in /proc/[0-9]*; do
		for t in $p/task/*; do
			case "$(cat $t/comm 2>/dev/null)" in
			vcpu*) kill -38 ${p#/proc/} 2>/dev/null; break;;
			esac
		done
	done
	sleep 2
	for t in /proc/[0-9]*/task/[0-9]*; do
		c=$(cat $t/comm 2>/dev/null)
		case "$c" in
		kvmbox|kvmbox-loop|kvmbox-io*|vcpu*)
			echo "@@E2E-DIAG $t $c $(grep '^State' $t/status) wchan=$(cat $t/wchan)"
			sed 's/^/@@E2E-DIAG   /' $t/stack 2>/dev/null;;
		esac
	done
	# Where L1's KVM lives (its modules load at a random address each
	# boot): a vCPU RIP of 0xffffffffc0...... in the dump above is L1's
	# (the guest kernel has no modules), to be read against these.
	grep -E '^kvm(_amd|_intel)? ' /proc/modules 2>/dev/null | sed 's/^/@@E2E-DIAG L1 module /'
	grep -wE '__svm_vcpu_run|svm_vcpu_run|svm_vcpu_enter_exit|vcpu_enter_guest|kvm_arch_vcpu_ioctl_run' \
		/proc/kallsyms 2>/dev/null | sed 's/^/@@E2E-DIAG L1 symbol /'
}
# A watchdog prints the diagnosis shortly before the limit (which also shows
# that L1 itself is still alive); a command that ignores SIGTERM is killed.
e2e_step() {
	n=$1 t=$2
	shift 2
	echo "@@E2E-STEP-BEGIN $n"
	(sleep $((t - 5)); echo "@@E2E-STEP-TIMEOUT $n still running after $((t - 5)) s"; e2e_diag) &
	w=$!
	timeout -k 10 "$t" "$@" </dev/null
	r=$?
	kill $w 2>/dev/null
	echo "@@E2E-STEP-END $n $r"
}
[ -f /env.sh ] && . /env.sh
# KVMBOX_SECCOMP=log (cage/cage.h): every call the filters would refuse
# reaches the kernel log, unthrottled, and is printed at the end.
[ "${KVMBOX_SECCOMP:-}" = log ] && echo 0 >/proc/sys/kernel/printk_ratelimit
cd /
. /payload.sh
rc=$?
[ "${KVMBOX_SECCOMP:-}" = log ] && dmesg | grep 'type=1326' | sed 's/^/@@E2E-SECCOMP /'
echo "@@E2E-RESULT $rc"
sync
poweroff -f
INIT
	chmod 755 "$1"
}

e2e_build_l1() {
	local root=$E2E_WORK/l1 v
	e2e_base_dirs "$root"
	e2e_add_busybox "$root"
	mkdir -p "$root/lib/modules"
	cp "$E2E_L1_DIR"/*.ko "$root/lib/modules/"
	e2e_add_program "$root" "$KVMBOX_BIN" /usr/local/bin/kvmbox
	if [ -z "${E2E_NO_L2:-}" ]; then
		cp "$E2E_GUEST_KERNEL" "$root/vmlinux"
		cp "$E2E_WORK/l2.cpio" "$root/l2.cpio"
	fi
	e2e_write_l1_init "$root/init"
	: >"$root/env.sh"
	for v in ASAN_OPTIONS UBSAN_OPTIONS KVMBOX_LOG KVMBOX_SECCOMP; do
		[ -n "${!v:-}" ] && printf 'export %s=%q\n' "$v" "${!v}" >>"$root/env.sh"
	done
	E2E_L1_ROOT=$root
}

e2e_prepare() {
	e2e_need_tools
	E2E_WORK=$(mktemp -d /tmp/kvmbox-e2e.XXXXXX)
	trap e2e_cleanup EXIT
	e2e_l1_kernel || skip_all "no L1 kernel: apt-get download linux-image-6.1.0-*-cloud-amd64 failed and nothing cached in $E2E_CACHE/l1"
	if [ -z "${E2E_NO_L2:-}" ]; then
		e2e_guest_kernel
		e2e_build_l2
	fi
	e2e_build_l1
}

# One L1 boot running the payload already in $E2E_L1_ROOT; sets E2E_LOG,
# E2E_WALL_S, E2E_L1_UP_S, E2E_RC and returns qemu's exit status.
e2e_boot_l1() {
	local limit=$1 start hb=$E2E_WORK/heartbeat
	E2E_LOG=$E2E_WORK/console.log
	rm -f "$E2E_WORK/froze" "$E2E_WORK/qemu.done"
	: >"$hb"
	: >"$E2E_LOG"
	start=$(date +%s.%N)
	e2e_heartbeat_watch "$hb" &
	local watch=$!
	timeout --kill-after=5 "$limit" "$E2E_QEMU" -accel tcg,thread=multi \
		-cpu EPYC,+svm -smp "$E2E_L1_SMP" -m "$E2E_L1_MEM" -nodefaults -display none \
		-serial stdio -serial "file:$hb" -no-reboot \
		-kernel "$E2E_L1_DIR/vmlinuz" -initrd "$E2E_WORK/l1.cpio" \
		-append "console=ttyS0 quiet panic=-1" </dev/null 2>&1 |
		stdbuf -oL tr -d '\r' | grep --line-buffered -v "warning: TCG doesn't support requested feature" \
		>"$E2E_LOG"
	local rc=${PIPESTATUS[0]}
	: >"$E2E_WORK/qemu.done"
	kill "$watch" 2>/dev/null
	wait "$watch" 2>/dev/null
	E2E_WALL_S=$(echo "$(date +%s.%N) - $start" | bc)
	E2E_L1_UP_S=$(sed -n 's/^@@E2E-L1-UP //p' "$E2E_LOG" | head -n 1)
	E2E_RC=$(sed -n 's/^@@E2E-RESULT //p' "$E2E_LOG" | tail -n 1)
	[ -n "${E2E_SECCOMP_LOG:-}" ] && grep '^@@E2E-SECCOMP' "$E2E_LOG" >>"$E2E_SECCOMP_LOG"
	return "$rc"
}

# Stop this run's QEMU when L1, once up, writes no heartbeat for 60 s (it
# writes one every 5 s): a frozen L1 is then found in a minute, not at the
# whole run's limit.
e2e_heartbeat_watch() {
	local hb=$1 age
	while sleep 5; do
		[ -e "$E2E_WORK/qemu.done" ] && return
		[ -s "$hb" ] || continue
		age=$(( $(date +%s) - $(stat -c %Y "$hb") ))
		if [ "$age" -gt 60 ]; then
			: >"$E2E_WORK/froze"
			pkill -f -- "-initrd $E2E_WORK/l1.cpio"
			return
		fi
	done
}

# True when L1 itself stopped answering: no result, and the last step began
# but neither ended nor reached its watchdog (which runs in L1 before the
# step's limit).  That is the emulator (QEMU TCG running L1's SVM), not a
# kvmbox step timing out, which the watchdog and `timeout -k` report.
e2e_l1_froze() {
	[ -z "$E2E_RC" ] && [ -e "$E2E_WORK/froze" ] && return 0
	[ -z "$E2E_RC" ] && [ -n "$(sed -n 's/^@@E2E-L1-UP //p' "$E2E_LOG")" ] &&
		grep '^@@E2E-STEP-' "$E2E_LOG" | tail -n 1 | grep -q '^@@E2E-STEP-BEGIN '
}

# True when an L2 guest triple-faulted and nothing in PAYLOAD launched it
# again (agent_env.sh's launch-again says so with an @@E2E-RETRY line).
# QEMU TCG's nested SVM does that to an L2 guest now and then, more often
# on a loaded machine: CI saw it in console_tmux before the guest's init
# ran (an empty serial console: no panic, no kernel message), and locally
# two L2 boots at once triple-faulted one in three runs, while 30 boots
# one after another in an idle L1 gave none.  On AMD the registers are
# gone by then (KVM reinitializes the VMCB on a shutdown intercept), so
# the L1 console is all there is.  A test that expects a triple fault sets
# E2E_EXPECT_TRIPLE_FAULT=1.
e2e_l2_triple_faulted() {
	[ -n "${E2E_EXPECT_TRIPLE_FAULT:-}" ] && return 1
	local faults retries
	faults=$(grep -c 'guest triple fault (KVM_EXIT_SHUTDOWN' "$E2E_LOG")
	retries=$(grep -c '^@@E2E-RETRY the guest triple-faulted' "$E2E_LOG")
	[ "$faults" -gt "$retries" ]
}

# Run PAYLOAD in L1 within LIMIT seconds.  An L1 that froze (e2e_l1_froze)
# or whose L2 guest triple-faulted (e2e_l2_triple_faulted) is booted again,
# up to E2E_L1_BOOTS boots in all (3: QEMU TCG's nested SVM freezes a
# loaded machine's L1 now and then, rarely the same step twice:
# agent_others.sh once froze twice in its opencode step); E2E_RETRY_NOTE
# says so (tests print it).
E2E_L1_BOOTS=${E2E_L1_BOOTS:-3}
e2e_run_in_l1() {
	local payload=$1 limit=${2:-300} rc boot=1 step
	printf '%s\n' "$payload" >"$E2E_L1_ROOT/payload.sh"
	e2e_cpio "$E2E_L1_ROOT" "$E2E_WORK/l1.cpio"
	E2E_RETRY_NOTE=""
	e2e_boot_l1 "$limit"
	rc=$?
	while [ "$boot" -lt "$E2E_L1_BOOTS" ]; do
		if e2e_l1_froze; then
			step=$(grep '^@@E2E-STEP-BEGIN' "$E2E_LOG" | tail -n 1 | cut -d' ' -f2)
			E2E_RETRY_NOTE="${E2E_RETRY_NOTE:+$E2E_RETRY_NOTE; }L1 stopped answering in step ${step:-none} (no heartbeat or watchdog output)"
		elif e2e_l2_triple_faulted; then
			step=$(grep -E '^@@E2E-STEP-BEGIN|guest triple fault \(KVM_EXIT_SHUTDOWN' "$E2E_LOG" |
				grep -B1 -m1 'guest triple fault' | sed -n 's/^@@E2E-STEP-BEGIN //p')
			E2E_RETRY_NOTE="${E2E_RETRY_NOTE:+$E2E_RETRY_NOTE; }an L2 guest triple-faulted in step ${step:-none} (the emulator's nested SVM)"
		else
			break
		fi
		echo "# $E2E_RETRY_NOTE; booting L1 again"
		cp "$E2E_LOG" "$E2E_WORK/console-boot$boot.log"
		boot=$((boot + 1))
		e2e_boot_l1 "$limit"
		rc=$?
	done
	if [ -z "$E2E_RC" ]; then
		E2E_WHY="L1 gave no result (qemu exit $rc$([ "$rc" -ge 124 ] && echo ", timed out after ${limit}s"))"
		[ -n "$E2E_RETRY_NOTE" ] && E2E_WHY="$E2E_WHY; before that: $E2E_RETRY_NOTE"
		return 1
	fi
	return 0
}

e2e_step_out() {
	sed -n "/^@@E2E-STEP-BEGIN $1\$/,/^@@E2E-STEP-END $1 /p" "$E2E_LOG" | sed '1d;$d'
}
e2e_step_rc() { sed -n "s/^@@E2E-STEP-END $1 //p" "$E2E_LOG" | tail -n 1; }
e2e_console_tail() { tail -n "${1:-40}" "$E2E_LOG"; }

# Checks on one step (TAP lines; the step's output, or the console tail when
# it never finished, on failure):
#   e2e_check_rc NAME WANT_RC DESCRIPTION
#   e2e_check_has NAME DESCRIPTION GREP-ARGS...     output matches
#   e2e_check_lacks NAME DESCRIPTION GREP-ARGS...   output does not match
# The part of a step's output that explains a failure: a sanitizer report
# from its first line (the tail of one is only shadow bytes), else the tail.
e2e_step_excerpt() {
	local out
	out=$(e2e_step_out "$1")
	if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' <<<"$out"; then
		sed -n -E '/ERROR: (Address|Leak)Sanitizer|runtime error:/,$p' <<<"$out" | head -n 40
	else
		tail -n 30 <<<"$out"
	fi
}
e2e_check_rc() {
	local rc
	rc=$(e2e_step_rc "$1")
	if [ "$rc" = "$2" ]; then ok "$3"
	elif [ -z "$rc" ]; then not_ok "$3" "step $1 did not finish; console tail:"$'\n'"$(e2e_console_tail 30)"
	else not_ok "$3" "exit status $rc, want $2; output:"$'\n'"$(e2e_step_excerpt "$1")"; fi
}
e2e_check_has() {
	local name=$1 what=$2
	shift 2
	if e2e_step_out "$name" | tr -d '\r' | grep -q "$@"; then ok "$what"
	else not_ok "$what" "output of step $name:"$'\n'"$(e2e_step_out "$name" | tail -n 30)"; fi
}
e2e_check_lacks() {
	local name=$1 what=$2
	shift 2
	if [ -n "$(e2e_step_rc "$name")" ] && ! e2e_step_out "$name" | tr -d '\r' | grep -q "$@"; then
		ok "$what"
	else not_ok "$what" "output of step $name:"$'\n'"$(e2e_step_out "$name" | tail -n 30)"; fi
}

# The ms of a --profile phase a step printed (its first such line).
e2e_phase() { e2e_step_out "$1" | sed -n "s/^kvmbox: profile  *$2  *\([0-9.]*\).*/\1/p" | head -n 1; }
# A value a step printed as KEY=VALUE (its first such line, no CR).
e2e_step_value() { e2e_step_out "$1" | tr -d '\r' | sed -n "s/^$2=//p" | head -n 1; }
#   e2e_check_differ NAME1 NAME2 KEY DESCRIPTION: both steps printed KEY= a
#   32-character value (16 random bytes in hex), and not the same one
e2e_check_differ() {
	local a b
	a=$(e2e_step_value "$1" "$3")
	b=$(e2e_step_value "$2" "$3")
	if [ ${#a} -eq 32 ] && [ ${#b} -eq 32 ] && [ "$a" != "$b" ]; then ok "$4"
	else not_ok "$4" "$1 printed $3='$a', $2 $3='$b'"; fi
}
#   e2e_check_grows NAME1 KEY1 NAME2 KEY2 DESCRIPTION: the number NAME2
#   printed as KEY2 is larger than NAME1's KEY1 (both named in the line)
e2e_check_grows() {
	local a b
	a=$(e2e_step_value "$1" "$2")
	b=$(e2e_step_value "$3" "$4")
	if [ -n "$a" ] && [ -n "$b" ] && [ "$b" -gt "$a" ] 2>/dev/null; then ok "$5 ($a, then $b)"
	else not_ok "$5" "$1 printed $2='$a', $3 $4='$b'"; fi
}
# tests/e2e/ptyrun.c, built static, at /usr/local/bin/ptyrun in L1: runs a
# command on a PTY of a given size (a terminal for kvmbox shell).
e2e_add_ptyrun() {
	need_cmd gcc
	gcc -static -O2 -o "$E2E_WORK/ptyrun" "$KVMBOX_TOP/tests/e2e/ptyrun.c" 2>/dev/null ||
		e2e_die "cannot build tests/e2e/ptyrun.c statically"
	e2e_add_program "$E2E_L1_ROOT" "$E2E_WORK/ptyrun" /usr/local/bin/ptyrun
}

# e2e_run_or_bail PAYLOAD [LIMIT]: e2e_run_in_l1, then one TAP line "L1
# boots and runs the payload"; when it did not, the console tail and exit.
e2e_run_or_bail() {
	if ! e2e_run_in_l1 "$@"; then
		not_ok "L1 boots and runs the payload" "$E2E_WHY"$'\n'"$(e2e_console_tail 40)"
		tap_done
		exit
	fi
	ok "L1 boots and runs the payload"
}
