#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""vmscope stat's kernel-counted events per vCPU (perf tracepoint counters) on the real
test VM, and VMs that come and go while stat runs.

1. Two vCPUs always busy, each making 300 MMIO writes, 100 port writes and 40 filtered
   WRMSRs per second (all exits to the VMM): over a 2 s report, every vCPU's rate of
   userspace exits by reason (mmio, io, msr), of kvm_mmio and of kvm_pio is the guest's
   own rate (its truth: count / phase length) within 5 %; the total of exits to the VMM is
   their sum within 5 %; the VM's row is the sum of its vCPUs'.
2. stat -s 1s started before a VM exists, then the VM starts and ends: the reports (JSON
   lines, read back with the json module) show no VM, then the VM, then none again, and
   stat exits 0."""
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from testlib import *  # noqa: E402,F403

need_kvm()
if os.geteuid() != 0:
    skip("counting another process's trace events needs root")
if not os.path.isdir("/sys/kernel/tracing/events/kvm"):
    skip("no kvm trace events in /sys/kernel/tracing")


def rates_vs_truth(tmp):
    truth, pidfile = os.path.join(tmp, "t.json"), os.path.join(tmp, "vm.pid")
    run(["testvm", "--daemon", "--pidfile", pidfile, "--truth", truth, "--name", "statev",
         "--vcpus", "2", "--phase", "100:5s", "--mmio", "300", "--pio", "100", "--msr", "40"])
    pid = int(open(pidfile).read())
    try:
        p = run(["stat", "-g", "statev", "--interval", "2s", "--count", "2", "--format", "json"])
    finally:
        wait_pid_exit(pid, 20)
    reports = [json.loads(line) for line in p.stdout.splitlines() if line.strip()]
    check_eq(len(reports), 2, "two reports")
    t = load_json(truth)
    length = (t["phases"][0]["end_ns"] - t["phases"][0]["start_ns"]) / 1e9
    for v in reports[1]["vms"][0]["vcpus"]:
        ev = v.get("events")
        if not check(ev is not None, "vCPU %s has kernel-counted events: %s" % (
                v["vcpu"], v.get("events_error"))):
            continue
        ph = t["vcpus"][v["vcpu"]]["phases"][0]["exits"]
        want = {"userspace_exit.mmio": ph["mmio"], "userspace_exit.io": ph["pio"],
                "userspace_exit.msr": ph["msr"], "kvm_mmio": ph["mmio"], "kvm_pio": ph["pio"]}
        for key, count in want.items():
            rate = count / length
            check_close(ev[key]["per_s"], rate, 0.05 * rate,
                        "vCPU %d %s rate vs the guest's %.1f/s" % (v["vcpu"], key, rate))
        parts = sum(ev[k]["per_s"] for k in ("userspace_exit.mmio", "userspace_exit.io",
                                                "userspace_exit.msr", "userspace_exit.intr"))
        check_close(ev["userspace_exit"]["per_s"], parts, 0.05 * parts,
                    "vCPU %d: all exits to the VMM = the sum of those by reason" % v["vcpu"])
    vm = reports[1]["vms"][0]
    for key in ("userspace_exit", "kvm_mmio", "kvm_pio"):
        per = sum(v["events"][key]["per_s"] for v in vm["vcpus"] if "events" in v)
        if check("events" in vm and key in vm["events"], "the VM's sum of %s" % key):
            check_close(vm["events"][key]["per_s"], per, 1e-6 * per + 1e-9,
                        "the VM's %s rate = the sum of its vCPUs'" % key)


def come_and_go(tmp):
    stat = subprocess.Popen([vmscope(), "stat", "--interval", "1s", "--count", "6", "--format",
                             "json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.5)
    pidfile = os.path.join(tmp, "vm2.pid")
    run(["testvm", "--daemon", "--pidfile", pidfile, "--name", "statgo", "--vcpus", "1",
         "--phase", "50:2s"])
    out, err = stat.communicate(timeout=30)
    check_eq(stat.returncode, 0, "stat exit status while a VM came and went (%s)" % err.strip())
    seen = [[vm["name"] for vm in json.loads(line)["vms"]]
            for line in out.splitlines() if line.strip()]
    check_eq(len(seen), 6, "six reports")
    with_vm = [i for i, names in enumerate(seen) if "statgo" in names]
    check(with_vm and with_vm[0] > 0 and with_vm[-1] < len(seen) - 1,
          "the VM appears after the first report and is gone by the last: %s" % seen)


with tempfile.TemporaryDirectory() as tmp:
    rates_vs_truth(tmp)
    come_and_go(tmp)
finish()
