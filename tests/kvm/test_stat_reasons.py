#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""vmscope stat --exit-reasons: exits by reason per vCPU, counted exactly.

stat -x runs (JSON log lines every 0.5 s) from before a test VM starts; the VM's two vCPUs
are busy for 2 s making 300 MMIO writes, 100 port writes and 40 filtered WRMSRs per second
each, then idle (no exits to the VMM) until it ends. Every count of the reports during the
idle phase, per vCPU, equals the guest's own count in its truth file exactly: exits to the
VMM by KVM_EXIT_* reason MMIO = the load MMIO writes, IO = the port writes, X86_WRMSR = the
WRMSRs; and on VMX/SVM hosts, where kvm_exit fires, kvm_exit by exit reason covers them
(IO_INSTRUCTION / io >= the port writes). Nothing was dropped. The VM's rows are the sums
of its vCPUs'. Whichever way the kernel allows is used: a hist trigger
(CONFIG_HIST_TRIGGERS) or a trace stream counted by vmscope; the backend is printed. The
tracefs instance is gone afterwards."""
import glob
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
    skip("tracing another process's kvm events needs root")
if not os.path.isdir("/sys/kernel/tracing/events/kvm"):
    skip("no kvm trace events in /sys/kernel/tracing")

NAME = "statrsn-%d" % os.getpid()
with tempfile.TemporaryDirectory() as tmp:
    truth_path, pidfile = os.path.join(tmp, "t.json"), os.path.join(tmp, "vm.pid")
    stat = subprocess.Popen([vmscope(), "stat", "-x", "--log", "--format", "json",
                             "--fields", "^reasons\\.", "--interval", "0.5s", "--count", "10"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.7)  # counting runs before the VM exists
    run(["testvm", "--daemon", "--pidfile", pidfile, "--truth", truth_path, "--name", NAME,
         "--vcpus", "2", "--phase", "100:2s", "--phase", "0:4s", "--mmio", "300", "--pio",
         "100", "--msr", "40"])
    pid = int(open(pidfile).read())
    try:
        out, err = stat.communicate(timeout=30)
    finally:
        terminate([pid])
    check(wait_pid_exit(pid, 20), "the test VM ends")
    check_eq(stat.returncode, 0, "stat -x exits 0 (stderr: %s)" % err.strip())
    truth = load_json(truth_path)

rows = [json.loads(line) for line in out.splitlines() if line.strip()]
rows = [r for r in rows if r["vm"] == NAME]
check(rows, "JSON lines logged")
stamps = sorted({r["timestamp"] for r in rows})
# The reports in the idle phase: the last two, whose counts must not move any more.
last = [r for r in rows if r["timestamp"] == stamps[-1]]
prev = [r for r in rows if r["timestamp"] == stamps[-2]] if len(stamps) > 1 else []
key = lambda r: (str(r["vcpu"]), r["field"])  # noqa: E731
check_eq(sorted((key(r), r["value"]) for r in prev), sorted((key(r), r["value"]) for r in last),
         "counts stand still in the idle phase")
got = {key(r): r["value"] for r in last}
tids = {v["vcpu"]: v for v in truth["vcpus"]}
for n, v in sorted(tids.items()):
    g = v["exits"]
    for reason, want in (("MMIO", g["mmio_load"]), ("IO", g["pio"]), ("X86_WRMSR", g["msr"])):
        check_eq(got.get((str(n), "reasons.userspace_exit." + reason)), want,
                 "vCPU %d: exits to the VMM by reason %s == the guest's count" % (n, reason))
    vmx = got.get((str(n), "reasons.kvm_exit.IO_INSTRUCTION"))
    svm = got.get((str(n), "reasons.kvm_exit.io"))
    if vmx is not None or svm is not None:
        check((vmx or svm) >= g["pio"], "vCPU %d: kvm_exit io reason %s >= port writes %d"
              % (n, vmx or svm, g["pio"]))
    else:
        print("note: kvm_exit never fired (KVM-PVM host): exit reasons of kvm_exit not seen")
for field in sorted({r["field"] for r in last}):
    per = [r["value"] for r in last if r["field"] == field and r["vcpu"] != "all"]
    tot = [r["value"] for r in last if r["field"] == field and r["vcpu"] == "all"]
    check(len(tot) == 1 and tot[0] == sum(per), "%s: the VM's row %s is the sum of %s"
          % (field, tot, per))

# The JSON report says how the reasons were counted, and that nothing was dropped.
once = subprocess.Popen([vmscope(), "stat", "-x", "--once", "--format", "json"],
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
out_once, _ = once.communicate(timeout=60)
rep = json.loads(out_once)["exit_reasons"]
check(rep.get("backend") in ("hist", "stream"), "backend named: %r" % rep)
check_eq(rep.get("dropped"), 0, "no event dropped")
print("exit reasons counted by: %s" % rep.get("backend"))
# (Only these two processes' instances: other tests may run vmscope at the same time.)
check_eq(glob.glob("/sys/kernel/tracing/instances/vmscope-%d-*" % stat.pid) +
         glob.glob("/sys/kernel/tracing/instances/vmscope-%d-*" % once.pid), [],
         "vmscope's tracefs instances removed")
finish()
