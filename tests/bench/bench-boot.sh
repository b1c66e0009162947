#!/bin/bash
# tests/bench/bench-boot.sh - boot latency of a real Linux guest: kvmbox next
# to qemu-system-x86_64 -M microvm -accel kvm, both booting the same kernel
# (the cached guest vmlinux, PVH entry) with the same initramfs (busybox +
# kvmbox-init, $BUILD/initrd.cpio), the same command line, memory and vCPU
# count, in the same run.  Needs a usable /dev/kvm on VT-x or AMD-V.
#
#   to init:  exec -> the guest's /init runs.  kvmbox-init's first act is
#             the boot-marker write to port 0x600.  kvmbox timestamps it
#             (--profile=json guest_init_started); QEMU has an
#             isa-debug-exit device on that port, so QEMU exits on the same
#             write and its figure is exec -> process exit, which includes
#             QEMU's own teardown (an upper bound by that much).
#   to exit:  kvmbox only: exec -> process exit with the command `true` run
#             by kvmbox-init and its status reported (the whole `kvmbox run`).
#   RSS:      peak RSS of the VMM process.
# Figures mean hardware boot time only on VT-x/AMD-V: on an emulating KVM
# (kvm_pvm; `kvmbox doctor` says which) the kernel crawls, and kvm_pvm
# 6.18 cannot emulate the kernel's lock cmpxchg16b at all: kvmbox and QEMU
# both stop there with KVM_EXIT_INTERNAL_ERROR (seen 2026-12-04).
# Medians of $RUNS runs (default 10).  QEMU is skipped, and said so, when
# qemu-system-x86_64 is not installed.
set -eu
cd "$(dirname "$0")/../.."
B=${BUILD:-build}
KVMBOX=${KVMBOX_BIN:-$B/kvmbox}
INITRD=${KVMBOX_INITRD:-$B/initrd.cpio}
KERNEL=${KVMBOX_KERNEL:-}
if [ -z "$KERNEL" ]; then
	for k in "$HOME"/.cache/kvmbox/kernel/*/vmlinux; do [ -f "$k" ] && KERNEL=$k; done
fi
RUNS=${RUNS:-10}
[ -x "$KVMBOX" ] && [ -f "$INITRD" ] || { echo "bench-boot: build first (make)"; exit 1; }
[ -n "$KERNEL" ] && [ -f "$KERNEL" ] || { echo "bench-boot: no guest kernel (make kernel, or set KVMBOX_KERNEL)"; exit 1; }
[ -c /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ] || { echo "bench-boot: no usable /dev/kvm"; exit 1; }
QEMU=${QEMU:-$(command -v qemu-system-x86_64 || true)}

python3 - "$KVMBOX" "$KERNEL" "$INITRD" "$RUNS" "$QEMU" <<'PY'
import json, os, statistics, subprocess, sys, time
kvmbox, kernel, initrd, runs, qemu = sys.argv[1:4] + [int(sys.argv[4]), sys.argv[5]]
CMDLINE = "console=ttyS0 reboot=k panic=-1 quiet"   # kvmbox run's default
MEM = "256"

def spawn(argv):
    t0 = time.time()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    err = p.stderr.read().decode(errors="replace")
    _, status, ru = os.wait4(p.pid, 0)
    return t0, time.time(), err, ru.ru_maxrss, os.waitstatus_to_exitcode(status)

def kvmbox_run():
    t0, t1, err, _, rc = spawn([kvmbox, "run", "--kernel", kernel, "--initrd", initrd,
                                "--memory", MEM, "--cpus", "1", "--profile=json", "--", "true"])
    if rc != 0:
        first = next((l for l in err.splitlines() if not l.startswith("{")), "")
        sys.exit(f"kvmbox exited {rc}: {first}")
    prof = json.loads([l for l in err.splitlines() if l.startswith("{")][-1])
    at = lambda mark: prof["exec_unix_us"] / 1e6 + prof[mark]["wall_ms"] / 1e3 - t0
    return {"kvm": at("first_kvm_run") * 1e3, "init": at("guest_init_started") * 1e3,
            "exit": (t1 - t0) * 1e3, "rss": prof["max_rss_kib"] / 1024}

def qemu_run():
    t0, t1, err, rss_kib, rc = spawn([qemu, "-accel", "kvm", "-cpu", "host",
        "-M", "microvm", "-smp", "1", "-m", MEM, "-kernel", kernel, "-initrd", initrd,
        "-append", CMDLINE, "-display", "none", "-nodefaults", "-no-reboot",
        "-serial", "null", "-device", "isa-debug-exit,iobase=0x600,iosize=4"])
    # isa-debug-exit exits with (value << 1) | 1: the boot marker 0x4b420001.
    if rc == 0 or "error" in err.lower():
        sys.exit(f"qemu did not stop at the boot marker (exit {rc}): {err.strip()[:300]}")
    return {"init": (t1 - t0) * 1e3, "rss": rss_kib / 1024}

k = [kvmbox_run() for _ in range(runs)]
q = [qemu_run() for _ in range(runs)] if qemu else None
med = lambda rows, key: statistics.median(r[key] for r in rows)
print(f"bench-boot: {runs} runs each, medians; kernel {kernel} "
      f"({os.path.getsize(kernel) // 1024} KiB), initramfs {os.path.getsize(initrd) // 1024} KiB, "
      f"{MEM} MiB, 1 vCPU, cmdline \"{CMDLINE}\"")
if not qemu:
    print("bench-boot: qemu-system-x86_64 not installed: the peer column is n/a")
print(f"{'figure':<36} {'kvmbox':>10} {'qemu microvm':>14}")
def row(name, key, unit):
    qv = f"{med(q, key):.1f}" if q and key in q[0] else "n/a"
    print(f"{name:<36} {med(k, key):>8.1f}{unit} {qv:>12}{unit}")
row("exec -> first KVM_RUN", "kvm", "ms")
row("exec -> guest /init runs", "init", "ms")
row("exec -> exit (`true` run, status in)", "exit", "ms")
row("peak RSS", "rss", "Mi")
print("spread (min-max) to init: kvmbox %.1f-%.1f ms" % (min(r["init"] for r in k), max(r["init"] for r in k))
      + (", qemu %.1f-%.1f ms" % (min(r["init"] for r in q), max(r["init"] for r in q)) if q else ""))
PY
