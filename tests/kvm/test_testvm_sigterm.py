#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""A daemonized test VM: its threads carry QEMU-style names, `vmscope stat --once` finds it
with the right vCPU threads, counters bracketed by the kernel's own schedstat, and KVM's
counters read from outside equal to the guest's own count; SIGTERM in the middle of a
phase leaves a valid truth file whose counts still agree."""
import json
import os
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from testlib import *  # noqa: E402,F403

need_kvm()


def schedstat(pid, tid):
    with open("/proc/%d/task/%d/schedstat" % (pid, tid)) as f:
        return [int(x) for x in f.read().split()]


with tempfile.TemporaryDirectory() as tmp:
    truth_path = os.path.join(tmp, "truth.json")
    pidfile = os.path.join(tmp, "vm.pid")
    run(["testvm", "--daemon", "--pidfile", pidfile, "--truth", truth_path, "--name",
         "sigterm-vm", "--vcpus", "2", "--phase", "50:2s", "--phase", "0:30s",
         "--mmio", "200"])
    pid = int(open(pidfile).read())
    time.sleep(3.5)  # well inside phase 1, which is idle: no more load MMIO from here on

    # The threads, as the kernel names them.
    threads = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        comm = open("/proc/%d/task/%s/comm" % (pid, tid)).read().strip()
        threads[int(tid)] = comm
    cpu_threads = {tid: c for tid, c in threads.items() if c.startswith("CPU ")}
    check_eq(sorted(cpu_threads.values()), ["CPU 0/KVM", "CPU 1/KVM"], "vCPU thread names")
    check_eq(open("/proc/%d/comm" % pid).read().strip(), "sigterm-vm", "process name")

    # vmscope stat sees the VM; its counters lie between two schedstat reads around it.
    before = {tid: schedstat(pid, tid) for tid in cpu_threads}
    p = run(["stat", "--once", "--pid", str(pid), "--format", "json"])
    after = {tid: schedstat(pid, tid) for tid in cpu_threads}
    st = json.loads(p.stdout)
    check_eq(len(st["vms"]), 1, "stat finds one VM for the pid")
    vm = st["vms"][0]
    check_eq(vm["name"], "sigterm-vm", "stat: VM name")
    check_eq(vm["vcpu_fds"], 2, "stat: kvm-vcpu descriptors")
    got = {v["tid"]: v for v in vm["vcpus"]}
    check_eq(sorted(got), sorted(cpu_threads), "stat: vCPU thread ids")
    for tid, comm in cpu_threads.items():
        v = got.get(tid)
        if not check(v is not None, "stat lists thread %d" % tid):
            continue
        check_eq(v["vcpu"], int(comm.split()[1].split("/")[0]), "stat: vCPU index of %d" % tid)
        check(before[tid][0] <= v["run_ns"] <= after[tid][0],
              "stat run_ns %d within schedstat [%d, %d]" % (v["run_ns"], before[tid][0], after[tid][0]))
        check(before[tid][1] <= v["runq_wait_ns"] <= after[tid][1],
              "stat runq_wait_ns within schedstat")
        check("kvm_stats" in v, "stat reads KVM's counters of thread %d from outside (%s)"
              % (tid, v.get("kvm_stats_error")))
    # CSV is read back by a real CSV parser.
    import csv
    import io
    p = run(["stat", "--once", "--pid", str(pid), "--format", "csv"])
    rows = list(csv.DictReader(io.StringIO(p.stdout)))
    check_eq(sorted(int(r["tid"]) for r in rows), sorted(cpu_threads), "stat CSV: thread ids")
    check(all(r["name"] == "sigterm-vm" for r in rows), "stat CSV: names")

    stat_mmio = {v["vcpu"]: v.get("kvm_stats", {}).get("mmio_exits") for v in vm["vcpus"]}
    t_kill = time.monotonic_ns()
    os.kill(pid, signal.SIGTERM)
    check(wait_pid_exit(pid, 10), "the VM exits within 10 s of SIGTERM")
    t = load_json(truth_path)

check_eq(t["stopped_early"], True, "stopped_early")
check_eq(len(t["phases"]), 2, "both phases started")
check(t["phases"][0]["complete"], "phase 0 complete")
check(not t["phases"][1]["complete"], "phase 1 marked incomplete")
check_close(t["phases"][1]["end_ns"], t_kill, 0.5e9, "phase 1 ends at the SIGTERM")
for v in t["vcpus"]:
    n = v["vcpu"]
    ph0, ph1 = v["phases"][0], v["phases"][1]
    check(ph1["complete"] is False, "vCPU %d phase 1 incomplete" % n)
    share0 = 100.0 * ph0["busy_ns"] / (ph0["busy_ns"] + ph0["idle_ns"])
    check_close(share0, 50, 1.0, "vCPU %d phase 0 busy %%" % n)
    elapsed1 = (t["phases"][1]["end_ns"] - t["phases"][1]["start_ns"])
    check_close(ph1["busy_ns"] + ph1["idle_ns"] + ph1["late_ns"], elapsed1, 0.15e9,
                "vCPU %d phase 1 time accounted up to the stop" % n)
    check_eq(v["vmm"]["mmio_load"], v["exits"]["mmio_load"], "vCPU %d MMIO: VMM vs guest" % n)
    check_eq(v["vmm"]["mmio_control"], v["exits"]["mmio_control"], "vCPU %d control MMIO" % n)
    check_eq(v["vmm"]["seq_errors"], 0, "vCPU %d MMIO sequence" % n)
    # Phase 1 is idle, so KVM's mmio_exits read by `vmscope stat` during it equals every
    # load MMIO write the guest ever made (its DONE write came after the SIGTERM).
    check_eq(stat_mmio.get(n), v["exits"]["mmio_load"],
             "vCPU %d: stat's mmio_exits during the idle phase vs the guest's MMIO writes" % n)
finish()
