#!/bin/bash
# tests/bench/bench-boot.sh - boot latency of a real Linux guest: kvmbox next
# to qemu-system-x86_64 -M microvm -accel kvm, both booting the same kernel
# (the cached guest vmlinux, PVH entry) with the same initramfs (busybox +
# kvmbox-init, $BUILD/initrd.cpio), the same memory and vCPU count, in the
# same run; QEMU with a plain command line, kvmbox with its default (the
# issue's comparison).  Needs a usable /dev/kvm on VT-x or AMD-V.
#
#   to init:  exec -> the guest's /init runs.  kvmbox-init's first act is
#             the boot-marker write to port 0x600.  kvmbox timestamps it
#             (--profile=json guest_init_started); QEMU has an
#             isa-debug-exit device on that port, so QEMU exits on the same
#             write and its figure is exec -> process exit, which includes
#             QEMU's own teardown (an upper bound by that much).
#   split:    where the time to init goes: exec -> first KVM_RUN (the
#             VMM's setup) and first KVM_RUN -> /init (the guest kernel's
#             boot, the same kernel for both).  kvmbox's from its profile;
#             QEMU's from extra runs, one a round, with its
#             kvm_vcpu_ioctl trace event (the first KVM_RUN on vCPU 0,
#             -msg timestamp=on), kept apart from the untraced runs above.
#   to exit:  kvmbox only: exec -> process exit with the command `true` run
#             by kvmbox-init and its status reported (the whole `kvmbox run`).
#   RSS:      peak RSS of the VMM process.
#   restore:  the same guest saved once where kvmbox-init waits for its
#             command (`kvmbox run --snapshot`, a template), then started
#             from that snapshot (`--restore`): exec -> first KVM_RUN (the
#             VMM's whole work of a restore: state read and checked, RAM
#             mapped MAP_PRIVATE, KVM state set) and exec -> exit (`true`
#             run in the restored guest, fresh entropy and clock included).
#             Cold boots, restores and QEMU take turns, run by run.
#   10 at once: ten restores of the template alive together (the command
#             `sleep`), their summed PSS (proportional set size: shared
#             pages counted once across them) against one cold-booted VMM's
#             RSS: the pages of the snapshot file they only read are shared.
# Figures mean hardware boot time only on VT-x/AMD-V: on an emulating KVM
# (kvm_pvm; `kvmbox doctor` says which) the kernel crawls, and kvm_pvm
# 6.18 cannot emulate the kernel's lock cmpxchg16b at all: kvmbox and QEMU
# both stop there with KVM_EXIT_INTERNAL_ERROR (seen 2026-12-04).
# Medians of $RUNS runs (default 10).  QEMU is skipped, and said so, when
# qemu-system-x86_64 is not installed.  Without a usable /dev/kvm the whole
# benchmark runs inside the nested harness's L1 (bench-boot-nested.sh).
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
if ! { [ -c /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ]; }; then
	echo "bench-boot: no usable /dev/kvm here: running in the nested harness (TCG speed, not hardware)"
	exec tests/bench/bench-boot-nested.sh
fi
QEMU=${QEMU:-$(command -v qemu-system-x86_64 || true)}

python3 - "$KVMBOX" "$KERNEL" "$INITRD" "$RUNS" "$QEMU" <<'PY'
import json, os, re, statistics, subprocess, sys, time
kvmbox, kernel, initrd, runs, qemu = sys.argv[1:4] + [int(sys.argv[4]), sys.argv[5]]
CMDLINE = "console=ttyS0 reboot=k panic=-1 quiet"   # QEMU's: a plain command line (kvmbox uses its default)
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
                                "--memory", MEM, "--cpus", "1", "--no-net", "--profile=json", "--", "true"])
    if rc != 0:
        first = next((l for l in err.splitlines() if not l.startswith("{")), "")
        sys.exit(f"kvmbox exited {rc}: {first}")
    prof = json.loads([l for l in err.splitlines() if l.startswith("{")][-1])
    at = lambda mark: prof["exec_unix_us"] / 1e6 + prof[mark]["wall_ms"] / 1e3 - t0
    return {"kvm": at("first_kvm_run") * 1e3, "init": at("guest_init_started") * 1e3,
            "exit": (t1 - t0) * 1e3, "rss": prof["max_rss_kib"] / 1024}

def qemu_run(traced=False):
    trace = ["-msg", "timestamp=on", "-trace", "enable=kvm_vcpu_ioctl"] if traced else []
    t0, t1, err, rss_kib, rc = spawn([qemu] + trace + ["-accel", "kvm", "-cpu", "host",
        "-M", "microvm", "-smp", "1", "-m", MEM, "-kernel", kernel, "-initrd", initrd,
        "-append", CMDLINE, "-display", "none", "-nodefaults", "-no-reboot",
        "-serial", "null", "-device", "isa-debug-exit,iobase=0x600,iosize=4"])
    # isa-debug-exit exits with (value << 1) | 1: the boot marker 0x4b420001
    # gives 0x96840003, status 3.  Anything else is QEMU failing early.
    if rc != 3:
        sys.exit(f"qemu did not stop at the boot marker (exit {rc}): {err.strip()[:300]}")
    row = {"init": (t1 - t0) * 1e3, "rss": rss_kib / 1024}
    if traced:      # KVM_RUN is _IO(0xae, 0x80)
        m = re.search(r"^\d+@(\d+\.\d+):kvm_vcpu_ioctl cpu_index 0, type 0xae80\b", err, re.M)
        if not m:
            sys.exit(f"qemu: no KVM_RUN in its kvm_vcpu_ioctl trace: {err.strip()[:300]}")
        row["kvm"] = (float(m.group(1)) - t0) * 1e3
    return row

import shutil, tempfile
snapdir = tempfile.mkdtemp(prefix="kvmbox-bench-")

def snapshot(dest, cmd):
    t0, t1, err, _, rc = spawn([kvmbox, "run", "--kernel", kernel, "--initrd", initrd,
                                "--memory", MEM, "--cpus", "1", "--no-net", "--snapshot", dest,
                                "--"] + cmd)
    if rc != 0:
        sys.exit(f"kvmbox run --snapshot exited {rc}: {err.strip()[:300]}")

def restore_run(src):
    t0, t1, err, _, rc = spawn([kvmbox, "run", "--restore", src, "--no-net", "--profile=json"])
    if rc != 0:
        first = next((l for l in err.splitlines() if not l.startswith("{")), "")
        sys.exit(f"kvmbox run --restore exited {rc}: {first}")
    prof = json.loads([l for l in err.splitlines() if l.startswith("{")][-1])
    at = lambda mark: prof["exec_unix_us"] / 1e6 + prof[mark]["wall_ms"] / 1e3 - t0
    return {"kvm": at("first_kvm_run") * 1e3, "exit": (t1 - t0) * 1e3,
            "rss": prof["max_rss_kib"] / 1024}

def pss_kib(pid):
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0

def ten_at_once(src, n=10):
    procs = [subprocess.Popen([kvmbox, "run", "--restore", src, "--no-net"],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL) for _ in range(n)]
    time.sleep(2.0)     # every guest restored and asleep (the command sleeps 6 s)
    alive = [p for p in procs if p.poll() is None]
    total = sum(pss_kib(p.pid) for p in alive) / 1024
    for p in procs:
        p.wait()
    return len(alive), total

snapshot(f"{snapdir}/true", ["true"])
snapshot(f"{snapdir}/sleep", ["sleep", "6"])
k, r, q, qt = [], [], [] if qemu else None, [] if qemu else None
for _ in range(runs):       # interleaved: load from elsewhere hits all alike
    k.append(kvmbox_run())
    r.append(restore_run(f"{snapdir}/true"))
    if qemu:
        q.append(qemu_run())
        qt.append(qemu_run(traced=True))
alive, pss10 = ten_at_once(f"{snapdir}/sleep")
shutil.rmtree(snapdir, ignore_errors=True)
med = lambda rows, key: statistics.median(r[key] for r in rows)
print(f"bench-boot: {runs} runs each, medians; kernel {kernel} "
      f"({os.path.getsize(kernel) // 1024} KiB), initramfs {os.path.getsize(initrd) // 1024} KiB, "
      f"{MEM} MiB, 1 vCPU, QEMU's cmdline \"{CMDLINE}\", kvmbox's its default")
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
for x in k + (qt or []):
    x["guest"] = x["init"] - x["kvm"]
print(f"{'where the time to init goes':<36} {'kvmbox':>10} {'qemu (traced)':>14}")
for name, key in (("exec -> first KVM_RUN (the VMM)", "kvm"), ("first KVM_RUN -> /init (the guest)", "guest"),
                  ("exec -> /init", "init")):
    qv = f"{med(qt, key):.1f}" if qt else "n/a"
    print(f"{name:<36} {med(k, key):>8.1f}ms {qv:>12}ms")
if qt:
    print(f"the guest's part alone is {med(k, 'guest') / med(q, 'init'):.2f}x QEMU's untraced exec -> /init")
print("spread (min-max) to init: kvmbox %.1f-%.1f ms" % (min(x["init"] for x in k), max(x["init"] for x in k))
      + (", qemu %.1f-%.1f ms" % (min(x["init"] for x in q), max(x["init"] for x in q)) if q else ""))
pct = lambda rows, key, p: sorted(x[key] for x in rows)[min(len(rows) - 1, int(p * len(rows)))]
print(f"{'from a template (--restore)':<36} {'median':>10} {'p90':>10} {'cold median':>12} {'ratio':>7}")
for name, key in (("exec -> first KVM_RUN", "kvm"), ("exec -> exit (`true` run, status in)", "exit")):
    rm, cm = med(r, key), med(k, key)
    print(f"{name:<36} {rm:>8.1f}ms {pct(r, key, 0.9):>8.1f}ms {cm:>10.1f}ms {rm / cm:>6.3f}x")
print(f"{'restored VMM peak RSS':<36} {med(r, 'rss'):>8.1f}Mi")
one = med(k, "rss")
print(f"{alive} restored VMs at once: summed PSS {pss10:.1f} MiB = {pss10 / one:.2f}x one cold VMM's "
      f"peak RSS ({one:.1f} MiB)")
PY
