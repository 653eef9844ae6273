#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The test VM runs 2 vCPUs through 0 / 75 / 90 % phases with MMIO and port-I/O exits and
its truth file must hold: every phase's guest-measured busy share within 1 point of the
asked duty (widened by exactly what the guest's late time can move it: this host is
itself a VM whose hypervisor steals time), the guest's exit counts equal to the VMM's and
to the number the options ask for, and phase times on the host's CLOCK_MONOTONIC inside
the run's window."""
import math
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from testlib import *  # noqa: E402,F403

need_kvm()
PHASES = [(0, 1.0), (75, 3.0), (90, 3.0)]
# Rates whose exits per busy part (duty * period * rate) are never whole numbers, so the
# count owed per period, ceil(duty * period * rate), is not at the mercy of rounding.
MMIO, PIO, MSR, HC, PERIOD = 330.0, 70.0, 45.0, 55.0, 0.1

with tempfile.TemporaryDirectory() as tmp:
    truth_path = os.path.join(tmp, "truth.json")
    args = ["testvm", "--vcpus", "2", "--mmio", str(MMIO), "--pio", str(PIO),
            "--msr", str(MSR), "--hypercall", str(HC), "--truth", truth_path, "--quiet"]
    for duty, secs in PHASES:
        args += ["--phase", "%d:%gs" % (duty, secs)]
    t_before = time.monotonic_ns()
    run(args)
    t_after = time.monotonic_ns()
    t = load_json(truth_path)

check_eq(t["format"], 1, "truth format version")
check_eq(t["clock"], "CLOCK_MONOTONIC", "clock")
check_eq(t["vm"]["vcpus"], 2, "vm.vcpus")
check_eq(t["vm"]["name"], "vmscope-testvm", "vm.name (process name)")
check(isinstance(t["vm"]["pid"], int) and t["vm"]["pid"] > 0, "vm.pid is a pid")
check_eq(t["stopped_early"], False, "stopped_early")
check_eq(len(t["phases"]), len(PHASES), "number of phases")

prev_end = None
for i, (duty, secs) in enumerate(PHASES):
    ph = t["phases"][i]
    check_eq(ph["duty"], duty, "phase %d duty" % i)
    check(ph["complete"], "phase %d complete" % i)
    check_close(ph["end_ns"] - ph["start_ns"], secs * 1e9, 1e6, "phase %d length (ns)" % i)
    check(t_before <= ph["start_ns"] and ph["end_ns"] <= t_after,
          "phase %d [%d, %d] lies inside the run [%d, %d] (CLOCK_MONOTONIC)"
          % (i, ph["start_ns"], ph["end_ns"], t_before, t_after))
    if prev_end is not None:
        check_close(ph["start_ns"], prev_end, 1000, "phase %d starts where %d ended" % (i, i - 1))
    prev_end = ph["end_ns"]

check_eq(len(t["vcpus"]), 2, "vcpus listed")
for v in t["vcpus"]:
    n = v["vcpu"]
    check(v["tid"] > 0, "vCPU %d has a thread id" % n)
    for ph in v["phases"]:
        i = ph["phase"]
        duty, secs = PHASES[i]
        T, late = secs * 1e9, ph["late_ns"]
        if late:
            print("vCPU %d phase %d: the host held the vCPU back %.1f ms (longest %.1f ms)"
                  % (n, i, late / 1e6, ph["late_max_ns"] / 1e6))
        # Late time can only have been taken from busy or idle time (busy_share_window);
        # 1 point either side for the guest's own noise.
        share = 100.0 * ph["busy_ns"] / (ph["busy_ns"] + ph["idle_ns"])
        lo, hi = busy_share_window(duty, T, late)
        check(lo - 1.0 <= share <= hi + 1.0,
              "vCPU %d phase %d guest-measured busy %% %.2f in [%.2f, %.2f] +- 1 (late %.1f ms)"
              % (n, i, share, lo, hi, late / 1e6))
        check_eq(ph["periods"], int(round(secs / PERIOD)), "vCPU %d phase %d periods" % (n, i))
        # Every period's time is split exactly into busy, idle and late: they add up to the
        # phase, whatever the host did (each part is rounded to ns apart).
        check_close(ph["busy_ns"] + ph["idle_ns"] + late, T, 1000,
                    "vCPU %d phase %d busy+idle+late (ns)" % (n, i))
        # Each busy part owes ceil(duty * period * rate) exits of each kind; those it could
        # not make before its end (the host held the vCPU back) are counted as missed.
        for kind, rate in (("mmio", MMIO), ("pio", PIO), ("msr", MSR), ("hypercall", HC)):
            owed = math.ceil(duty / 100.0 * PERIOD * rate)
            made = ph["exits"][kind + "_load" if kind == "mmio" else kind]
            check_eq(made + ph["exits"][kind + "_missed"], owed * ph["periods"],
                     "vCPU %d phase %d %s made + missed (%d periods x %d)"
                     % (n, i, kind, ph["periods"], owed))
            # An exit is missed only when the vCPU did not run when it fell due and up to
            # the busy part's end: past a few in flight, each missed exit stands for an
            # interval of late time.
            allowed = missed_allowed(owed * ph["periods"], late, rate)
            check(ph["exits"][kind + "_missed"] <= allowed,
                  "vCPU %d phase %d: at most 5%% of the %s exits + late x rate missed (%d, %.0f)"
                  % (n, i, kind, ph["exits"][kind + "_missed"], allowed))
        if duty == 0:
            check_eq(ph["busy_ns"], 0, "vCPU %d idle phase busy_ns" % n)
            check_eq(ph["exits"]["mmio_load"], 0, "vCPU %d idle phase mmio" % n)
        # A period reached only after its idle part's deadline has no wake-up: its whole
        # idle part is then late time.
        idle_part = (100 - duty) / 100.0 * PERIOD * 1e9
        skipped = ph["periods"] - ph["wakeups"]
        check(ph["exits"]["hlt"] >= ph["wakeups"] and 0 <= skipped
              and skipped * idle_part <= late + 1000,
              "vCPU %d phase %d: hlt %d >= wakeups %d; %d periods without one, late %.1f ms"
              % (n, i, ph["exits"]["hlt"], ph["wakeups"], skipped, late / 1e6))
    g, m = v["exits"], v["vmm"]
    check_eq(m["mmio_load"], g["mmio_load"], "vCPU %d load MMIO exits: VMM vs guest" % n)
    check_eq(m["mmio_control"], g["mmio_control"], "vCPU %d control MMIO: VMM vs guest" % n)
    check_eq(g["mmio_control"], 1, "vCPU %d control writes (one DONE)" % n)
    check_eq(m["mmio"], g["mmio"], "vCPU %d all MMIO exits: VMM vs guest" % n)
    check_eq(m["pio"], g["pio"], "vCPU %d port-I/O exits: VMM vs guest" % n)
    check_eq(m["msr"], g["msr"], "vCPU %d WRMSR exits: VMM vs guest" % n)
    check_eq(m["msr_other"], 0, "vCPU %d other MSR exits" % n)
    # From guest user mode KVM refuses every hypercall with -KVM_EPERM.
    check_eq(g["hypercall_eperm"], g["hypercall"], "vCPU %d hypercalls answered -KVM_EPERM" % n)
    check_eq(m["seq_errors"], 0, "vCPU %d MMIO values in sequence" % n)
    check_eq(m["mmio_other"], 0, "vCPU %d MMIO elsewhere" % n)
    check_eq(m["io_other"], 0, "vCPU %d port I/O elsewhere" % n)
    check_eq(g["mmio_load"], sum(p["exits"]["mmio_load"] for p in v["phases"]),
             "vCPU %d MMIO total = sum of phases" % n)
finish()
