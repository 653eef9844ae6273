#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The vCPU state model on the real test VM (issue 4's proofs), recorded with the
CLOCK_MONOTONIC trace clock so that the VM's truth and /proc samples share the trace's
clock.

1. One test VM, one vCPU pinned to host CPU 1 (the recorder and this script on CPU 0), at
   75 % and 40 % duty: in every phase, the vCPU's running share of wall time is the duty
   within 1 point, and the guest's own measured busy share within 1 point (the VM's truth
   gives the phase boundaries and that share; when a stall of the host makes the guest
   itself miss its duty, only the second is checked, and the test says so).
2. Two test VMs, one vCPU each, both pinned to host CPU 1 and always busy: each one's
   preempted + waiting time equals the other's running time within 1 %, and equals the
   run delay of its /proc/<tid>/schedstat, sampled before and after, within 1 %."""
import json
import os
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
if os.cpu_count() < 2:
    skip("needs two host CPUs (one for the VMs, one for the recorder)")
tracing = "/sys/kernel/tracing"
if not os.path.isdir(os.path.join(tracing, "instances")):
    subprocess.run(["mount", "-t", "tracefs", "nodev", tracing], capture_output=True)
if not os.path.isdir(os.path.join(tracing, "instances")):
    skip("tracefs is not available at %s" % tracing)
os.sched_setaffinity(0, {0})  # this script, and what it starts, on CPU 0


def start_vm(tmp, name, phases):
    truth, pidfile = os.path.join(tmp, name + ".json"), os.path.join(tmp, name + ".pid")
    args = ["testvm", "--daemon", "--pidfile", pidfile, "--truth", truth, "--name", name, "--vcpus", "1",
            "--pin", "1"]
    for p in phases:
        args += ["--phase", p]
    run(args)
    pid = int(open(pidfile).read())
    started.append(pid)
    return pid, truth


def vcpu_tid(pid):
    end = time.monotonic() + 5
    while time.monotonic() < end:
        for tid in os.listdir("/proc/%d/task" % pid):
            try:
                with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                    if f.read().strip() == "CPU 0/KVM":
                        return int(tid)
            except OSError:
                pass
        time.sleep(0.05)
    return None


def schedstat(pid, tid):
    with open("/proc/%d/task/%d/schedstat" % (pid, tid)) as f:
        run_ns, delay_ns, _ = (int(x) for x in f.read().split())
    return run_ns, delay_ns


started = []  # processes to stop whatever happens


def cleanup():
    terminate(started)


def record(dat, pids):
    args = [vmscope(), "record", "--clock", "mono", "-o", dat, "-q"]
    for p in pids:
        args += ["-p", str(p)]
    rec = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    started.append(rec.pid)
    return rec


def stop(rec, what):
    time.sleep(0.2)
    rec.send_signal(signal.SIGTERM)
    _, err = rec.communicate(timeout=30)
    check_eq(rec.returncode, 0, "%s: record exits 0 (stderr: %s)" % (what, err.strip()))


def window(dat, t0, t1):
    """report vcpu over [t0, t1] (CLOCK_MONOTONIC ns), rows by tid."""
    first = json.loads(run(["report", "vcpu", "-q", "-f", "json", dat]).stdout)["summary"]["start_ts"]
    got = json.loads(run(["report", "vcpu", "-q", "-f", "json", "--from", "%.9f" % ((t0 - first) / 1e9),
                          "--to", "%.9f" % ((t1 - first) / 1e9), dat]).stdout)
    return {r["tid"]: r for r in got["rows"]}, got


def main(tmp):
    # ---- 1. 75 % duty on an uncontended CPU ----
    dat = os.path.join(tmp, "duty.dat")
    pid, truth_path = start_vm(tmp, "vcpu-duty", ["0:1s", "75:3s", "40:2s"])
    rec = record(dat, [pid])
    check(wait_pid_exit(pid, 30), "duty: the test VM ends")
    stop(rec, "duty")
    truth = load_json(truth_path)
    for ph in truth["phases"]:
        if not ph["complete"] or ph["duty"] == 0:
            continue
        rows, got = window(dat, ph["start_ns"], ph["end_ns"])
        check_eq(len(rows), 1, "duty phase %d: one vCPU thread" % ph["phase"])
        for r in rows.values():
            span = ph["end_ns"] - ph["start_ns"]
            run_ns = r["running_ns"] + r["guest_ns"] + r["hypervisor_ns"] + r["vmm_ns"]
            share = 100.0 * run_ns / span
            vt = truth["vcpus"][0]["phases"][ph["phase"]]
            busy = 100.0 * vt["busy_ns"] / (vt["busy_ns"] + vt["idle_ns"])
            print("phase %d duty %d%%: running %.2f%% of wall time (guest-measured busy %.2f%%), "
                  "idle %.2f%%, preempted %.2f%%, waiting %.2f%%"
                  % (ph["phase"], ph["duty"], share, busy, 100.0 * r["idle_ns"] / span,
                     100.0 * r["preempted_ns"] / span, 100.0 * r["waiting_ns"] / span))
            # The duty is what the guest asks for; what it got is its own busy time. The trace
            # sees the thread run when the guest computes, less the time it was preempted in
            # a busy part (the guest counts that as busy); a stall of the hypervisor under
            # this host runs the thread but holds the guest back past deadlines (late time).
            held = 100.0 * (vt["late_ns"] + r["preempted_ns"]) / span
            check_close(share, 100.0 * vt["busy_ns"] / span, 1.0 + held,
                        "duty phase %d: running share of wall time vs the guest's busy time "
                        "(host held it %.2f %%)" % (ph["phase"], held))
            if abs(busy - ph["duty"]) <= 1.0 and held <= 1.0:
                check_close(share, ph["duty"], 1.0, "duty phase %d: running share vs the duty" % ph["phase"])
            else:
                print("phase %d: the host held the guest back %.2f %% of the phase (busy share "
                      "%.2f %%): compared with its busy time only" % (ph["phase"], held, busy))
            check_close(r["span_ns"], span, span * 0.001, "duty phase %d: the window is the phase" % ph["phase"])

    # ---- 2. two always-busy VMs on one CPU ----
    dat = os.path.join(tmp, "pair.dat")
    pa, _ = start_vm(tmp, "vcpu-pair-a", ["100:4s"])
    pb, _ = start_vm(tmp, "vcpu-pair-b", ["100:4s"])
    ta, tb = vcpu_tid(pa), vcpu_tid(pb)
    if not check(ta and tb, "pair: both vCPU threads found"):
        return
    rec = record(dat, [pa, pb])
    time.sleep(1.0)
    t0 = time.monotonic_ns()
    sa0, sb0 = schedstat(pa, ta), schedstat(pb, tb)
    time.sleep(2.0)
    t1 = time.monotonic_ns()
    sa1, sb1 = schedstat(pa, ta), schedstat(pb, tb)
    check(wait_pid_exit(pa, 30) and wait_pid_exit(pb, 30), "pair: both test VMs end")
    stop(rec, "pair")
    rows, _ = window(dat, t0, t1)
    check(ta in rows and tb in rows, "pair: both vCPU threads in the report")
    if ta in rows and tb in rows:
        for me, other, s0, s1 in ((ta, tb, sa0, sa1), (tb, ta, sb0, sb1)):
            r, o = rows[me], rows[other]
            wait = r["preempted_ns"] + r["waiting_ns"]
            run_o = o["running_ns"] + o["guest_ns"] + o["hypervisor_ns"] + o["vmm_ns"]
            run_me = r["running_ns"] + r["guest_ns"] + r["hypervisor_ns"] + r["vmm_ns"]
            delay, runtime = s1[1] - s0[1], s1[0] - s0[0]
            print("tid %d: preempted+waiting %.3f s, the other's running %.3f s, schedstat delay %.3f s; "
                  "running %.3f s, schedstat run %.3f s"
                  % (me, wait / 1e9, run_o / 1e9, delay / 1e9, run_me / 1e9, runtime / 1e9))
            check_close(wait, run_o, 0.01 * run_o, "pair tid %d: preempted+waiting = the other's running" % me)
            check_close(wait, delay, 0.01 * delay, "pair tid %d: preempted+waiting = schedstat run delay" % me)
            # (Not checked: the scheduler's run time leaves out interrupt time and, in a VM
            # like this host, the time its own hypervisor stole; the trace's wall time cannot.)


with tempfile.TemporaryDirectory() as tmp:
    try:
        main(tmp)
    finally:
        cleanup()
finish()
