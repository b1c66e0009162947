#!/bin/bash
# tests/bench/bench-vmm.sh - VMM setup time and memory overhead, kvmbox next
# to qemu-system-x86_64 -accel kvm -M microvm, both starting the same tiny
# PVH guest (firmware/tests/marker.elf) in the same run.
#
#   setup:    exec -> first KVM_RUN.  kvmbox: from its --profile=json
#             (first_kvm_run, placed on the wall clock by exec_unix_us).
#             QEMU: its first kvm_run_exit trace event (-msg timestamp=on),
#             i.e. first KVM_RUN plus the few guest instructions before the
#             first exit (an upper bound for QEMU, by microseconds).
#   total:    exec -> process exit.  QEMU stops at the guest's boot-marker
#             write (isa-debug-exit on port 0x600); kvmbox runs the guest to
#             its exit-status write and i8042 reset (a few exits more).
#   overhead: max RSS minus guest RAM resident at exit.  kvmbox measures the
#             latter itself (mincore); QEMU is charged the same guest RAM,
#             although qboot touches more, so its figure is if anything low.
# Targets: kvmbox setup < 10 ms, overhead < 5 MiB.  Medians of $RUNS runs.
set -eu
cd "$(dirname "$0")/../.."
B=${BUILD:-build}
KVMBOX=${KVMBOX_BIN:-$B/kvmbox}
GUEST=$B/firmware/tests/marker.elf
RUNS=${RUNS:-15}
[ -x "$KVMBOX" ] && [ -f "$GUEST" ] || { echo "bench-vmm: build first (make)"; exit 1; }
QEMU=$(command -v qemu-system-x86_64 || true)

python3 - "$KVMBOX" "$GUEST" "$RUNS" "$QEMU" <<'PY'
import json, os, re, statistics, subprocess, sys, time
kvmbox, guest, runs, qemu = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]

def spawn(argv):
    t0 = time.time()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    err = p.stderr.read().decode(errors="replace")
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    return t0, time.time(), err, ru.ru_maxrss, p.returncode

def kvmbox_run():
    t0, t1, err, rss_kib, rc = spawn([kvmbox, "run", "--kernel", guest, "--memory", "128",
                                      "--profile=json"])
    if rc != 0:
        sys.exit(f"kvmbox exited {rc}: {err.strip()}")
    prof = json.loads([l for l in err.splitlines() if l.startswith("{")][-1])
    first = prof["exec_unix_us"] / 1e6 + prof["first_kvm_run"]["wall_ms"] / 1e3
    return {"setup": (first - t0) * 1e3, "total": (t1 - t0) * 1e3,
            "overhead": (prof["max_rss_kib"] - prof["guest_ram_resident_kib"]) / 1024,
            "rss": prof["max_rss_kib"] / 1024, "guest": prof["guest_ram_resident_kib"] / 1024}

def qemu_run(guest_mib):
    # QEMU's rusage ru_maxrss may include the Python parent's RSS carried
    # over exec; QEMU's own exceeds it, so the max is still QEMU's peak.
    t0, t1, err, rss_kib, rc = spawn([qemu, "-msg", "timestamp=on", "-accel", "kvm",
        "-M", "microvm", "-m", "128", "-kernel", guest, "-display", "none", "-nodefaults",
        "-no-reboot", "-serial", "null", "-device", "isa-debug-exit,iobase=0x600,iosize=4",
        "-trace", "enable=kvm_run_exit"])
    m = re.search(r"^\d+@(\d+\.\d+):kvm_run_exit", err, re.M)
    if not m:
        sys.exit(f"qemu: no kvm_run_exit trace (exit {rc}): {err.strip()[:300]}")
    return {"setup": (float(m.group(1)) - t0) * 1e3, "total": (t1 - t0) * 1e3,
            "overhead": rss_kib / 1024 - guest_mib, "rss": rss_kib / 1024}

k = [kvmbox_run() for _ in range(runs)]
med = lambda rows, key: statistics.median(r[key] for r in rows)
guest_mib = med(k, "guest")
q = [qemu_run(guest_mib) for _ in range(runs)] if qemu else None
print(f"bench-vmm: {runs} runs each, medians; guest {os.path.basename(guest)}, "
      f"guest RAM touched {guest_mib:.2f} MiB")
print(f"{'figure':<34} {'kvmbox':>10} {'qemu microvm':>14} {'target':>10}")
def row(name, key, unit, target):
    qv = f"{med(q, key):.2f}" if q else "n/a"
    print(f"{name:<34} {med(k, key):>8.2f}{unit} {qv:>12}{unit} {target:>10}")
row("setup: exec -> first KVM_RUN", "setup", "ms", "< 10 ms")
row("total: exec -> exit", "total", "ms", "")
row("max RSS", "rss", "Mi", "")
row("RSS beyond touched guest RAM", "overhead", "Mi", "< 5 MiB")
PY
