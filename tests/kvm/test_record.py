#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""vmscope record on the built-in test VM. The VM idles for a second (no load exits) while
the recorder starts, then makes MMIO, port and MSR exits; the recorder runs until the VM
has exited, so the file holds every load exit and every count must equal the VM's truth:
in vmscope's report (per vCPU, named from the file alone) and in trace-cmd's report of
the same file (the peer). Also: SIGTERM leaves no tracefs instance behind, an instance
left by a recorder killed with SIGKILL is removed by the next one, and version 6 files
are written as well."""
import collections
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from testlib import *  # noqa: E402,F403

need_kvm()
if os.geteuid() != 0:
    skip("recording needs root (tracefs)")
tracing = "/sys/kernel/tracing"
if not os.path.isdir(os.path.join(tracing, "instances")):
    subprocess.run(["mount", "-t", "tracefs", "nodev", tracing], capture_output=True)
if not os.path.isdir(os.path.join(tracing, "instances")):
    skip("tracefs is not available at %s" % tracing)


def instances():
    return set(os.listdir(os.path.join(tracing, "instances")))


def record_vm(tmp, name, extra):
    """Start a test VM, record it from its idle first phase to its end; return (truth, file)."""
    truth = os.path.join(tmp, name + ".json")
    dat = os.path.join(tmp, name + ".dat")
    pidfile = os.path.join(tmp, name + ".pid")
    run(["testvm", "--daemon", "--pidfile", pidfile, "--truth", truth, "--name", name,
         "--vcpus", "2", "--phase", "0:1.5s", "--phase", "60:2s",
         "--mmio", "150", "--pio", "70", "--msr", "40"])
    vmpid = int(open(pidfile).read())
    rec = subprocess.Popen([vmscope(), "record", "-p", str(vmpid), "-o", dat, "-q"] + extra,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    check(wait_pid_exit(vmpid, 20), "%s: the test VM ends" % name)
    time.sleep(0.3)
    rec.send_signal(signal.SIGTERM)
    out, err = rec.communicate(timeout=30)
    check_eq(rec.returncode, 0, "%s: record exits 0 after SIGTERM (stderr: %s)" % (name, err.strip()))
    check("vmscope-%d" % rec.pid not in instances(), "%s: record removed its instance" % name)
    return load_json(truth), dat


def check_file(name, t, dat, version):
    what = "%s (v%d)" % (name, version)
    mm = json.loads(run(["report", "exits", "--event", "mmio", "--per-vcpu", "-f", "json", dat]).stdout)
    check_eq(mm["trace"]["version"], version, what + ": file version")
    check_eq(mm["summary"]["lost_events"], 0, what + ": no lost events")
    io = json.loads(run(["report", "exits", "--event", "ioport", "--per-vcpu", "-f", "json", dat]).stdout)
    ue = json.loads(run(["report", "exits", "--event", "userspace", "--per-vcpu", "-f", "json", dat]).stdout)
    for v in t["vcpus"]:
        n, g = v["vcpu"], v["exits"]

        def row(rep, key):
            rows = [r for r in rep["rows"] if r["name"] == key and r["vcpu"] == n]
            return rows[0] if rows else {}
        r = row(mm, "0xe8000000:W")
        check_eq(r.get("events"), g["mmio_load"], what + ": vCPU %d load MMIO writes" % n)
        check_eq(r.get("vm"), name, what + ": the VM is named from the file")
        check_eq(r.get("tid"), v["tid"], what + ": vCPU %d thread" % n)
        check_eq(row(mm, "0xe8001000:W").get("events"), g["mmio_control"], what + ": vCPU %d control write" % n)
        check_eq(row(io, "0x5a0:POUT").get("events"), g["pio"], what + ": vCPU %d port writes" % n)
        check_eq(row(ue, "MMIO").get("events"), g["mmio"], what + ": vCPU %d KVM_EXIT_MMIO" % n)
        check_eq(row(ue, "IO").get("events"), g["pio"], what + ": vCPU %d KVM_EXIT_IO" % n)
        check_eq(row(ue, "X86_WRMSR").get("events"), g["msr"], what + ": vCPU %d KVM_EXIT_X86_WRMSR" % n)
    # Interrupts delivered to the guest (kvm_apic_accept_irq, recorded for every process):
    # each idle part ends with the guest's timer interrupt. The recording began in the
    # idle phase 0, so it holds all of phase 1's and some of phase 0's, never more than
    # the guest took.
    irq = json.loads(run(["report", "irq", "-f", "json", dat]).stdout)
    for v in t["vcpus"]:
        got = sum(r["count"] for r in irq["rows"] if r.get("tid") == v["tid"])
        lo = v["phases"][1]["interrupts"] if len(v["phases"]) > 1 else 0
        check(lo <= got <= v["interrupts"], what + ": vCPU %d: %d interrupts recorded, the "
              "guest took %d (%d in phase 1)" % (v["vcpu"], got, v["interrupts"], lo))
    if not shutil.which("trace-cmd"):
        print("SKIP part: no trace-cmd for the peer check")
        return
    p = subprocess.run(["trace-cmd", "report", "-i", dat], capture_output=True, text=True)
    check_eq(p.returncode, 0, what + ": trace-cmd report reads the file (%s)" % p.stderr.strip()[:200])
    tid2vcpu = {v["tid"]: v["vcpu"] for v in t["vcpus"]}
    peer = collections.Counter()
    for line in p.stdout.splitlines():
        m = re.match(r"\s*\S.*?-(\d+)\s+\[\d+\]\s+[\d.]+:\s+(\w+):\s+(.*)", line)
        if not m or int(m.group(1)) not in tid2vcpu:
            continue
        vcpu, ev, rest = tid2vcpu[int(m.group(1))], m.group(2), m.group(3)
        if ev == "kvm_mmio" and "gpa 0xe8000000" in rest and rest.startswith("mmio write"):
            peer[(vcpu, "mmio_load")] += 1
        elif ev == "kvm_pio" and "pio_write" in rest and "0x5a0" in rest:
            peer[(vcpu, "pio")] += 1
        elif ev == "kvm_userspace_exit" and "KVM_EXIT_X86_WRMSR" in rest:
            peer[(vcpu, "msr")] += 1
    for v in t["vcpus"]:
        for k in ("mmio_load", "pio", "msr"):
            check_eq(peer[(v["vcpu"], k)], v["exits"][k], what + ": trace-cmd report: vCPU %d %s" % (v["vcpu"], k))


with tempfile.TemporaryDirectory() as tmp:
    t, dat = record_vm(tmp, "recvm7", [])
    check_file("recvm7", t, dat, 7)
    t, dat = record_vm(tmp, "recvm6", ["--file-version", "6"])
    check_file("recvm6", t, dat, 6)

    # A recorder killed with SIGKILL leaves its instance; the next one removes it.
    run(["testvm", "--daemon", "--pidfile", os.path.join(tmp, "k.pid"), "--phase", "20:3s"])
    vmpid = int(open(os.path.join(tmp, "k.pid")).read())
    rec = subprocess.Popen([vmscope(), "record", "-p", str(vmpid), "-o", os.path.join(tmp, "k.dat"), "-q"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.8)
    rec.kill()
    rec.wait()
    stale = "vmscope-%d" % rec.pid
    check(stale in instances(), "a SIGKILLed recorder leaves %s (the kernel keeps it)" % stale)
    run(["record", "-p", str(vmpid), "-o", os.path.join(tmp, "k2.dat"), "-q", "--duration", "0.3s"])
    check(stale not in instances(), "the next recorder removed the stale instance %s" % stale)
    wait_pid_exit(vmpid, 10)

    # Asking for a VM that does not exist says so.
    p = run(["record", "-p", "999999", "-o", os.path.join(tmp, "none.dat"), "-q"], check=False)
    check_eq(p.returncode, 1, "record of a missing VM fails")
    check("no VM with pid 999999" in p.stderr, "it says which VM is missing: %r" % p.stderr)
finish()
