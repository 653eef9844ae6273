#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""vmscope stat's host CPU section on the real test VM: one vCPU pinned to host CPU 1,
busy 75 % of every 100 ms for 6 s. Over a 2 s report inside that phase, CPU 1's guest
share equals the guest's own busy share (its truth file) within 5 points, less at most
the time the guest saw its vCPU stall or be held late over the phase, and the VM's
guest time is not counted as the CPU's user time; every CPU's shares add up to 100 %.
Reports are JSON lines (one object per interval), read back with the json module."""
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from testlib import *  # noqa: E402,F403

need_kvm()
if os.cpu_count() < 2:
    skip("needs two host CPUs (the VM on CPU 1)")

with tempfile.TemporaryDirectory() as tmp:
    truth, pidfile = os.path.join(tmp, "t.json"), os.path.join(tmp, "vm.pid")
    run(["testvm", "--daemon", "--pidfile", pidfile, "--truth", truth, "--name", "stathost",
         "--vcpus", "1", "--pin", "1", "--phase", "75:6s"])
    pid = int(open(pidfile).read())
    try:
        p = run(["stat", "-g", "stathost", "--interval", "2s", "--count", "2", "--format", "json"])
        reports = [json.loads(line) for line in p.stdout.splitlines() if line.strip()]
        check_eq(len(reports), 2, "two JSON lines for --count 2")
        first, second = reports[0]["host_cpus"], reports[1]["host_cpus"]
        check(first["since_boot"] and not second["since_boot"], "first since boot, then deltas")
        check_close(second["interval_s"], 2.0, 0.2, "report interval")
        for c in second["cpus"]:
            total = sum(c[k] for k in ("user", "nice", "system", "irq", "guest", "steal",
                                       "iowait", "idle"))
            check_close(total, 1.0, 1e-9, "CPU %d shares add up" % c["cpu"])
        cpu1 = [c for c in second["cpus"] if c["cpu"] == 1]
        if check(len(cpu1) == 1, "CPU 1 in the report"):
            wait_pid_exit(pid, 15)
            t = load_json(truth)
            ph = t["vcpus"][0]["phases"][0]
            share = ph["busy_share"]
            # Busy time the vCPU did not run (the guest saw it stall: preempted, or CPU 1
            # taken by the hypervisor under this host) is not guest time, nor is time the
            # host held it past its schedule (late); either may fall in the report's
            # interval, at most all of the phase's.
            held = (ph["stall_ns"] + ph["late_ns"]) / 1e9 / second["interval_s"]
            check(share - held - 0.05 <= cpu1[0]["guest"] <= share + 0.05,
                  "CPU 1 guest share %.3f vs the guest's busy share %.3f (less up to %.3f "
                  "stalled or late) +- 0.05" % (cpu1[0]["guest"], share, held))
            check(cpu1[0]["user"] < 0.05, "the VM's guest time is not CPU 1's user time (%.3f)"
                  % cpu1[0]["user"])
    finally:
        terminate([pid])
finish()
