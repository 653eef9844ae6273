#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The test VM guest's stall count against the kernel's own counter, under contention.

One vCPU pinned to host CPU 1, busy 75 % for 3 s, shares CPU 1 with a CPU hog of the
same priority, so the scheduler preempts it in its busy parts. The guest counts as busy
the time it did not run, and counts that time apart as stalls (gaps of 100 us or more
in its clock). The vCPU thread's run time (schedstat, exact) falls short of the guest's
busy time by what it did not run: that shortfall equals the guest's stall time within
3 % of the busy time + 30 ms (the host's own work for the vCPU, and the first and last
readings), and is large (the hog took at least 10 % of the busy time), so the check
means something. Runs alone (the hog would disturb other timing tests)."""
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from testlib import *  # noqa: E402,F403

need_kvm()
if os.cpu_count() < 2:
    skip("needs two host CPUs (the VM and the hog on CPU 1)")


def vcpu_run_ns(pid):
    for tid in os.listdir("/proc/%d/task" % pid):
        base = "/proc/%d/task/%s/" % (pid, tid)
        if open(base + "comm").read().strip() == "CPU 0/KVM":
            return int(open(base + "schedstat").read().split()[0])
    return None


HOG = "import os, time\nos.sched_setaffinity(0, {1})\nend = time.monotonic() + 3.4\n" \
      "while time.monotonic() < end:\n    pass\n"
hog = None
with tempfile.TemporaryDirectory() as tmp:
    truth, pidfile = os.path.join(tmp, "t.json"), os.path.join(tmp, "vm.pid")
    run(["testvm", "--daemon", "--pidfile", pidfile, "--truth", truth, "--name", "stallvm",
         "--vcpus", "1", "--pin", "1", "--phase", "0:0.3s", "--phase", "75:3s",
         "--phase", "0:1s"])
    pid = int(open(pidfile).read())
    try:
        hog = subprocess.Popen([sys.executable, "-c", HOG])
        time.sleep(0.25)  # phase 0, idle: the readings bracket phase 1 whole
        run0 = vcpu_run_ns(pid)
        time.sleep(3.2)  # phase 1 ends at 3.3 s; phase 2 is idle
        run1 = vcpu_run_ns(pid)
        check(wait_pid_exit(pid, 15), "the test VM ends")
    finally:
        terminate([pid])
        if hog:
            hog.kill()
            hog.wait()
    t = load_json(truth)
    ph = t["vcpus"][0]["phases"][1]
    busy, stall = ph["busy_ns"] / 1e9, ph["stall_ns"] / 1e9
    if check(run0 is not None and run1 is not None, "the vCPU thread's schedstat was read"):
        ran = (run1 - run0) / 1e9
        short = busy - ran
        print("busy %.3f s, the thread ran %.3f s: %.3f s short; the guest saw %.3f s of "
              "stalls (%d), late %.1f ms" % (busy, ran, short, stall, ph["stalls"],
                                             ph["late_ns"] / 1e6))
        check(short >= 0.1 * busy, "the hog took at least 10 %% of the busy time (%.3f s)"
              % short)
        check_close(short, stall, 0.03 * busy + 0.03,
                    "busy time the thread did not run = the guest's stall time")
finish()
