#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""KVM's statistics through QEMU's QMP socket (vms_qmp_socket_of, vms_qmp_query_stats),
against QEMU itself and against the guest's own count.

QEMU is started by the test, paused (-S), booting the test VM's multiboot image with a
schedule of port-I/O and MMIO exits; its QMP socket is a relative path (-qmp
unix:qmp.sock,server=on,wait=off, QEMU's working folder the test's), after a human
monitor on another socket that must not be taken for QMP. tests/kvm/vmmstats prints what
the library reads; the test asks QEMU the same over its own raw QMP connection (socket +
json):

1. vms_qmp_socket_of(QEMU's pid) finds the QMP socket, resolved to an absolute path.
2. While the test holds the QMP connection, the library's connect times out (the socket
   is not free), and says so.
3. Paused before the boot and paused after the schedule: every scalar statistic of every
   vCPU and of the VM equals QEMU's raw query-stats answer, name, value, type and unit;
   histograms are left out; the thread ids are query-cpus-fast's and QEMU's
   "CPU n/KVM" threads.
4. Running: each cumulative statistic lies between two raw reads taken around the
   library's (every read kicks the vCPUs, so the counters move between reads).
6. vmscope stat on that QEMU (which keeps no statistics descriptor open): paused, every
   vCPU's and the VM's "kvm_stats" in stat's JSON equal QEMU's raw answer, with
   "kvm_stats_source" "qmp", and the table shows KVM's counters "through QEMU's QMP
   query-stats" with the raw exits count of each vCPU.
5. Over the run, against the guest's truth (read from its memory): mmio_exits and
   halt_exits grew by the guest's MMIO writes and HLTs (+ the boot's few), exits by at
   least both, halt_wait_ns by at least 90 % of the guest's idle time; io_exits by at least
   the guest's OUTs on VMX/SVM, and not at all on KVM-PVM, which emulates them.

usage: test_qmp_stats.py PATH-TO-VMSCOPE PATH-TO-VMMSTATS"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from testlib import *  # noqa: E402,F403

if len(sys.argv) != 3:
    print(__doc__.rsplit("\n", 1)[1])
    sys.exit(2)
VMMSTATS = sys.argv[2]
need_kvm()
QEMU = shutil.which("qemu-system-x86_64")
if not QEMU:
    skip("qemu-system-x86_64 is not installed (Debian: apt-get install qemu-system-x86)")

NAME = "tvmqs-%d" % os.getpid()
VCPUS = 2
SCHED = "0.5:0,2.5:60"  # seconds:duty
RATES = "pio=50 mmio=40"
SHARED_GPA = 0x20000
BOOT_SLACK = 20  # exits of the firmware and the boot, and of the reads during the run
SCALAR = ("cumulative", "instant", "peak")


class Qmp:
    """The test's own QMP client: a socket and json, nothing of vmscope."""

    def __init__(self, path, timeout=10):
        end = time.monotonic() + timeout
        while True:
            self.s = socket.socket(socket.AF_UNIX)
            try:
                self.s.connect(path)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                self.s.close()
                if time.monotonic() > end:
                    raise
                time.sleep(0.05)
        self.s.settimeout(timeout)
        self.f = self.s.makefile("rw")
        if "QMP" not in json.loads(self.f.readline()):
            raise RuntimeError("no QMP greeting")
        self.cmd("qmp_capabilities")

    def cmd(self, name, **args):
        self.f.write(json.dumps({"execute": name, "arguments": args} if args
                                else {"execute": name}) + "\n")
        self.f.flush()
        while True:
            r = json.loads(self.f.readline())
            if "event" in r:
                continue
            if "error" in r:
                raise RuntimeError("QMP %s: %s" % (name, r["error"]))
            return r["return"]

    def close(self):
        self.f.close()
        self.s.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def raw_stats(q):
    """{"vm": {name: (value, schema)}, "vcpus": {index: {"tid", "stats": {...}}}}: the
    scalar statistics as QEMU answers them (booleans as 0/1)."""
    cpus = q.cmd("query-cpus-fast")
    schema = {t["target"]: {s["name"]: s for s in t["stats"]}
              for t in q.cmd("query-stats-schemas", provider="kvm")}
    vcpu = q.cmd("query-stats", target="vcpu", providers=[{"provider": "kvm"}])
    vm = q.cmd("query-stats", target="vm", providers=[{"provider": "kvm"}])

    def scalars(stats, sch):
        return {s["name"]: (int(s["value"]), sch[s["name"]]) for s in stats
                if not isinstance(s["value"], list) and sch[s["name"]]["type"] in SCALAR}

    out = {"vm": {}, "vcpus": {}, "hist": set()}
    for e in vm:
        out["vm"].update(scalars(e["stats"], schema["vm"]))
    qom = {c["qom-path"]: c for c in cpus}
    for e in vcpu:
        c = qom[e["qom-path"]]
        out["vcpus"][c["cpu-index"]] = {"tid": c["thread-id"],
                                        "stats": scalars(e["stats"], schema["vcpu"])}
        out["hist"] |= {s["name"] for s in e["stats"] if isinstance(s["value"], list)}
    return out


def lib_stats(*args, check_rc=True, timeout_ms=5000):
    p = subprocess.run([VMMSTATS, "-t", str(timeout_ms)] + list(args), capture_output=True,
                       text=True, timeout=60)
    check_eq(p.stderr, "", "vmmstats %s: the library printed nothing" % " ".join(args))
    out = json.loads(p.stdout)
    if check_rc and p.returncode != 0:
        print("vmmstats %s: exit %d: %s" % (" ".join(args), p.returncode, p.stdout))
        sys.exit(1)
    return p.returncode, out


def lib_by_name(stats):
    return {s["name"]: s for s in stats}


def compare_exact(lib, raw, when):
    """The library's reading equals QEMU's raw answer, statistic by statistic."""
    def one(lst, ref, what):
        got = lib_by_name(lst)
        check_eq(sorted(got), sorted(ref), "%s: %s: the same statistics" % (when, what))
        for name in sorted(set(got) & set(ref)):
            v, sch = ref[name]
            g = got[name]
            check_eq(g["value"], v, "%s: %s %s" % (when, what, name))
            check_eq(g["type"], sch["type"], "%s: %s %s type" % (when, what, name))
            check(g["has_unit"], "%s: %s %s has its unit" % (when, what, name))
            check_eq(g["unit"], sch.get("unit", "none"), "%s: %s %s unit" % (when, what, name))
            check_eq(g["exponent"], sch.get("exponent", 0),
                     "%s: %s %s exponent" % (when, what, name))
            check_eq(g["base"], sch.get("base", 10), "%s: %s %s base" % (when, what, name))

    check_eq(lib["source"], "qmp", "%s: source" % when)
    one(lib["vm"], raw["vm"], "VM")
    check_eq([v["vcpu"] for v in lib["vcpus"]], sorted(raw["vcpus"]), "%s: vCPUs" % when)
    for v in lib["vcpus"]:
        r = raw["vcpus"].get(v["vcpu"])
        if not check(r is not None, "%s: vCPU %d in QEMU's answer" % (when, v["vcpu"])):
            continue
        check_eq(v["tid"], r["tid"], "%s: vCPU %d thread = query-cpus-fast's" % (when, v["vcpu"]))
        one(v["stats"], r["stats"], "vCPU %d" % v["vcpu"])
        names = {s["name"] for s in v["stats"]}
        check(not names & raw["hist"], "%s: vCPU %d: no histogram (%s)"
              % (when, v["vcpu"], sorted(names & raw["hist"])))


def vcpu_threads(pid):
    threads = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
            comm = f.read().strip()
        if comm.startswith("CPU ") and comm.endswith("/KVM"):
            threads[int(comm.split()[1].split("/")[0])] = int(tid)
    return threads


def find_qboot():
    for d in ("/usr/share/qemu", "/usr/local/share/qemu"):
        if os.access(d + "/qboot.rom", os.R_OK):
            return d + "/qboot.rom"
    return None


def guest_truth(sock, tmp):
    dump = os.path.join(tmp, "shared.bin")
    with Qmp(sock) as q:
        q.cmd("pmemsave", val=SHARED_GPA, size=1 << 20, filename=dump)
    p = run(["testvm", "--truth-from-dump", dump, "--format", "json"], check=False)
    return json.loads(p.stdout) if p.returncode == 0 else None


def main():
    khz = int(run(["testvm", "--print-tsc-khz"]).stdout)
    with tempfile.TemporaryDirectory() as tmp:
        run(["testvm", "--write-image", os.path.join(tmp, "guest.mb")])
        sock = os.path.join(tmp, "qmp.sock")
        cmdline = "tsc_khz=%d period_ms=100 sched=%s %s" % (khz, SCHED, RATES)
        argv = [QEMU, "-name", "guest=%s,debug-threads=on" % NAME, "-enable-kvm",
                "-cpu", "max", "-smp", str(VCPUS), "-m", "32", "-nodefaults",
                "-no-user-config", "-display", "none", "-no-reboot", "-S",
                # a human monitor first: a socket, but no QMP
                "-chardev", "socket,id=hmp0,path=hmp.sock,server=on,wait=off",
                "-mon", "chardev=hmp0",
                "-qmp", "unix:qmp.sock,server=on,wait=off",
                "-kernel", "guest.mb", "-append", cmdline]
        if find_qboot():
            argv += ["-bios", find_qboot()]
        log = open(os.path.join(tmp, "qemu.log"), "w")
        qemu = subprocess.Popen(argv, cwd=tmp, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=log)
        try:
            run_checks(qemu, sock, tmp)
        finally:
            if qemu.poll() is None:
                try:
                    with Qmp(sock, timeout=2) as q:
                        q.cmd("quit")
                    qemu.wait(timeout=10)
                except Exception:
                    qemu.kill()
                    qemu.wait()
            log.close()
            if failures:
                with open(os.path.join(tmp, "qemu.log")) as f:
                    print("--- QEMU's output ---\n" + f.read())
    finish()


def stat_checks(pid, raw):
    """6. vmscope stat reads the same through QMP."""
    p = run(["stat", "--once", "--pid", str(pid), "--format", "json", "--no-events"])
    vm = json.loads(p.stdout)["vms"][0]
    check_eq(vm.get("kvm_stats_source"), "qmp", "stat: the VM's statistics come through QMP")
    check_eq(vm.get("kvm_stats"), {k: v for k, (v, _) in raw["vm"].items()},
             "stat: the VM's kvm_stats == QEMU's raw answer")
    for v in vm["vcpus"]:
        r = raw["vcpus"][v["vcpu"]]
        check_eq(v.get("kvm_stats_source"), "qmp", "stat: vCPU %d through QMP" % v["vcpu"])
        check_eq(v.get("kvm_stats"), {k: val for k, (val, _) in r["stats"].items()},
                 "stat: vCPU %d kvm_stats == QEMU's raw answer" % v["vcpu"])
    p = run(["stat", "--once", "--pid", str(pid), "--no-events"])
    check("KVM's counters (binary statistics, through QEMU's QMP query-stats)" in p.stdout,
          "stat's table: KVM's counters through QMP:\n" + p.stdout)
    rows = {}
    lines = p.stdout.splitlines()
    for i, ln in enumerate(lines):
        if "through QEMU's QMP" in ln and i + 1 < len(lines):
            head = lines[i + 1].split()
            for row in lines[i + 2:i + 2 + VCPUS]:
                f = row.split()
                rows[int(f[0])] = dict(zip(head[1:], (int(x) for x in f[1:])))
    for n, r in raw["vcpus"].items():
        check_eq(rows.get(n, {}).get("exits"), r["stats"]["exits"][0],
                 "stat's table: vCPU %d exits == QEMU's" % n)


def run_checks(qemu, sock, tmp):
    pid = qemu.pid
    # 1. The socket from QEMU's command line (relative there, absolute here).
    _, out = lib_stats("--socket-of", str(pid))
    check_eq(out.get("path"), sock, "vms_qmp_socket_of: QEMU's -qmp socket, resolved")
    # The test's own connection first: it waits until QEMU listens.
    with Qmp(sock) as q:
        # 2. A socket someone holds accepts the connection but never greets.
        rc, out = lib_stats("--qmp", sock, check_rc=False, timeout_ms=500)
        check_eq((rc, out.get("error")), (1, -110), "connect to a held QMP socket: ETIMEDOUT")
        check("reading from QEMU's QMP socket" in out.get("msg", ""),
              "the message says what failed: %r" % out.get("msg"))
    threads = vcpu_threads(pid)
    check_eq(sorted(threads), list(range(VCPUS)), "QEMU's vCPU threads 'CPU n/KVM'")

    # 3. Paused before the boot: exactly QEMU's answer.
    with Qmp(sock) as q:
        raw = raw_stats(q)
    _, first = lib_stats("--pid", str(pid))
    compare_exact(first, raw, "paused before the boot")
    check_eq({v["vcpu"]: v["tid"] for v in first["vcpus"]}, threads,
             "the library's vCPU threads are QEMU's 'CPU n/KVM' threads")
    check(len(first["vm"]) > 0 and all(len(v["stats"]) > 0 for v in first["vcpus"]),
          "statistics of the VM and of every vCPU")
    with Qmp(sock) as q:
        q.cmd("cont")

    # 4. Running, in the busy phase: between two raw reads around the library's.
    time.sleep(1.5)
    with Qmp(sock) as q:
        before = raw_stats(q)
    _, mid = lib_stats("--qmp", sock)
    with Qmp(sock) as q:
        after = raw_stats(q)
    moved = 0
    for v in mid["vcpus"]:
        n = v["vcpu"]
        for s in v["stats"]:
            if s["type"] != "cumulative":
                continue
            lo = before["vcpus"][n]["stats"][s["name"]][0]
            hi = after["vcpus"][n]["stats"][s["name"]][0]
            check(lo <= s["value"] <= hi, "running: vCPU %d %s %d within [%d, %d]"
                  % (n, s["name"], s["value"], lo, hi))
            moved += hi > lo
    check(moved > 0, "running: the counters move between reads")

    # 5. Until the guest is done; then paused again.
    end = time.monotonic() + 60
    truth = None
    while time.monotonic() < end:
        truth = guest_truth(sock, tmp)
        if truth and all(v["done"] for v in truth["vcpus"]):
            break
        time.sleep(0.3)
    if not check(truth is not None and all(v["done"] for v in truth["vcpus"]),
                 "the guest finished its schedule"):
        return
    with Qmp(sock) as q:
        q.cmd("stop")
        raw = raw_stats(q)
    _, last = lib_stats("--pid", str(pid))
    compare_exact(last, raw, "paused after the schedule")
    stat_checks(pid, raw)

    f0 = {v["vcpu"]: lib_by_name(v["stats"]) for v in first["vcpus"]}
    f1 = {v["vcpu"]: lib_by_name(v["stats"]) for v in last["vcpus"]}
    for v in truth["vcpus"]:
        n = v["vcpu"]
        ex = v["exits"]
        check("fault" not in v, "vCPU %d took no exception" % n)

        def d(name):
            return f1[n][name]["value"] - f0[n][name]["value"]

        check(ex["pio"] > 0 and ex["mmio"] > 0 and ex["hlt"] > 0,
              "vCPU %d made port writes (%d), MMIO writes (%d) and HLTs (%d)"
              % (n, ex["pio"], ex["mmio"], ex["hlt"]))
        check(ex["mmio"] <= d("mmio_exits") <= ex["mmio"] + BOOT_SLACK,
              "vCPU %d: mmio_exits grew %d, the guest made %d MMIO writes"
              % (n, d("mmio_exits"), ex["mmio"]))
        check(ex["hlt"] <= d("halt_exits") <= ex["hlt"] + BOOT_SLACK,
              "vCPU %d: halt_exits grew %d, the guest made %d HLTs" % (n, d("halt_exits"), ex["hlt"]))
        check(d("exits") >= ex["mmio"] + ex["hlt"],
              "vCPU %d: exits grew %d >= MMIO + HLT %d" % (n, d("exits"), ex["mmio"] + ex["hlt"]))
        if truth["host_kvm"] in ("vmx", "svm"):
            check(d("io_exits") >= ex["pio"], "vCPU %d: io_exits grew %d >= the guest's %d OUTs"
                  % (n, d("io_exits"), ex["pio"]))
        else:
            # KVM-PVM emulates the guest's kernel-mode OUT: io_exits does not count it.
            check_eq(d("io_exits"), 0, "vCPU %d: io_exits on %s" % (n, truth["host_kvm"]))
        idle = sum(ph["idle_ns"] for ph in v["phases"])
        check(d("halt_wait_ns") >= 0.9 * idle, "vCPU %d: halt_wait_ns grew %.3f s, the guest "
              "was idle %.3f s" % (n, d("halt_wait_ns") / 1e9, idle / 1e9))
        print("vCPU %d: guest pio %d mmio %d hlt %d; KVM exits %d mmio_exits %d halt_exits %d "
              "io_exits %d" % (n, ex["pio"], ex["mmio"], ex["hlt"], d("exits"), d("mmio_exits"),
                               d("halt_exits"), d("io_exits")))


main()
