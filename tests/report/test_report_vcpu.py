#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""`vmscope report vcpu` (the vCPU state model) against ground truth.

Generated traces (tests/tools/gentrace, VMX and SVM, with kvm_entry/kvm_exit): per vCPU
thread, the time in guest, hypervisor, vmm, preempted, waiting, idle and blocked equals the
generator's truth to the nanosecond, and so do migrations, wakeups and the longest wakeup
and preemption; wakeup and preemption p50/p95/p99 lie in
the truth value's histogram bucket; the states add up to the thread's span.

The real KVM-PVM traces of ../shared/data/kvm-lab (no kvm_entry/kvm_exit, some switch-ins
missing): over the interval between the run's two snapshots, each vCPU's running time and
its preempted + waiting time match the run-queue accounting of its own
/proc/<tid>/schedstat (run time, run delay) within 1 %. The snapshot instants are known to
the 10 ms of /proc/uptime, taken at the middle of each snapshot, and mapped onto the trace
clock with the offset that the run's own beacon events give (trace time - mono_ns).

And the options: --vm/--vcpu/--per-vm select and sum, --from/--to clip the window, CSV and
JSON parse, a bad time is a usage error."""
import csv
import io
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from testlib import *  # noqa: E402,F403

gentrace = sys.argv[2] if len(sys.argv) > 2 else None
STATES = ["guest", "hypervisor", "vmm", "preempted", "waiting", "idle", "blocked"]
LAB = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data", "kvm-lab")


def vcpu_json(path, *args):
    return vcpu_json_cmd("vcpu", path, *args)


def vcpu_json_cmd(analysis, path, *args):
    return json.loads(run(["report", analysis, "-q", "-f", "json"] + list(args) + [path]).stdout)


def proc_stat(path):
    """{cpu: idle + iowait ticks} of a /proc/stat copy."""
    out = {}
    for line in open(path):
        f = line.split()
        if f and f[0].startswith("cpu") and f[0] != "cpu":
            out[int(f[0][3:])] = int(f[4]) + int(f[5])
    return out


def bucket(v):
    """The [lo, hi) of v's histogram bucket (vmscope/hist.h: exact below 256, then 256
    buckets per power of two)."""
    if v < 256:
        return v, v + 1
    top = v.bit_length() - 1
    shift = top - 8
    lo = (v >> shift) << shift
    return lo, lo + (1 << shift)


def cpu_ranges(cpus):
    """"0-3,6" for CPUs 0, 1, 2, 3 and 6."""
    out, cpus = [], sorted(cpus)
    i = 0
    while i < len(cpus):
        j = i
        while j + 1 < len(cpus) and cpus[j + 1] == cpus[j] + 1:
            j += 1
        out.append(str(cpus[i]) if i == j else "%d-%d" % (cpus[i], cpus[j]))
        i = j + 1
    return ",".join(out)


def generated():
    if not gentrace or not os.access(gentrace, os.X_OK):
        print("SKIP part: no gentrace binary given")
        return
    scenarios = [("vmx", 3, ["--vms", "2", "--vcpus", "2", "--cpus", "2"]),
                 ("svm", 5, ["--vms", "3", "--vcpus", "2", "--cpus", "4"]),
                 ("vmx", 7, ["--vms", "2", "--vcpus", "3", "--cpus", "2"]),
                 ("svm", 9, ["--vms", "2", "--vcpus", "4", "--cpus", "10"])]  # > 4: the big merge
    with tempfile.TemporaryDirectory() as tmp:
        for vendor, seed, shape in scenarios:
            what = "%s seed %d" % (vendor, seed)
            dat, tj = os.path.join(tmp, "t.dat"), os.path.join(tmp, "t.json")
            subprocess.run([gentrace, "-o", dat, "--truth", tj, "--vendor", vendor, "--seed", str(seed),
                            "--events-total", "150000", "--quiet"] + shape, check=True)
            full = json.load(open(tj))
            truth = full["states"]
            got = vcpu_json(dat)
            check(got["summary"]["kvm_entry_exit"], what + ": kvm_entry/kvm_exit seen")
            rows = {r["tid"]: r for r in got["rows"]}
            check_eq(sorted(rows), sorted(t["tid"] for t in truth["threads"]), what + ": the vCPU threads")
            for t in truth["threads"]:
                r = rows.get(t["tid"])
                if not r:
                    continue
                tw = "%s tid %d" % (what, t["tid"])
                for s in STATES:
                    check_eq(r[s + "_ns"], t[s + "_ns"], tw + ": " + s)
                check_eq(r["running_ns"], 0, tw + ": no unsplit running time")
                check_eq(r["unknown_ns"], 0, tw + ": no unknown time")
                check_eq(r["span_ns"], t["end_ts"] - t["first_ts"], tw + ": span")
                check_eq(r["migrations"], t["migrations"], tw + ": migrations")
                # every kvm_exit written for the thread: timed, unfinished, or before its first entry
                nexits = sum(x["count"] for k in ("exits", "unfinished", "before_first_entry")
                             for x in full[k] if x["tid"] == t["tid"])
                span = t["end_ts"] - t["first_ts"]
                check_close(r["exits_per_s"], nexits * 1e9 / span, 1e-6 * nexits * 1e9 / span,
                            tw + ": exit rate = kvm_exit records / span")
                check_eq(r["inferred_switch_ins"], 0, tw + ": nothing inferred (no switch is missing)")
                check_eq(r["uncertain_ns"], 0, tw + ": no uncertain time")
                check_eq(r["wakeups"], t["wakeups"]["count"], tw + ": wakeups")
                check_eq(r["vcpu"], t["vcpu"], tw + ": vCPU index")
                check_eq(r["cpus"], cpu_ranges(int(c) for c in t["cpu_run_ns"]), tw + ": host CPUs used")
                for p in ("p50", "p99"):
                    want = t["wakeups"].get(p + "_ns")
                    if want is not None:
                        lo, hi = bucket(want)
                        check(lo <= r["wake_" + p + "_ns"] < hi,
                              "%s: wakeup %s %d in [%d, %d)" % (tw, p, r["wake_" + p + "_ns"], lo, hi))
            # report sched: wakeup latency per vCPU, and its histogram
            sched = json.loads(run(["report", "sched", "-q", "-f", "json", dat]).stdout)
            srows = {r["tid"]: r for r in sched["rows"]}
            for t in truth["threads"]:
                r, w = srows[t["tid"]], t["wakeups"]
                tw = "%s tid %d sched" % (what, t["tid"])
                check_eq(r["wakeups"], w["count"], tw + ": wakeups")
                check_eq(r["wakeup_max_ns"], w["max_ns"], tw + ": max wakeup latency (exact)")
                for p in ("p50", "p95", "p99"):
                    lo, hi = bucket(w[p + "_ns"])
                    check(lo <= r["wakeup_" + p + "_ns"] < hi, "%s: %s in the truth's bucket" % (tw, p))
                check_eq(r["waiting_ns"], t["waiting_ns"], tw + ": waiting")
            check_eq(sum(b["count"] for b in sched["histogram"]),
                     sum(t["wakeups"]["count"] for t in truth["threads"]), what + ": sched histogram total")
            # report steal: every preemption, by whom
            steal = json.loads(run(["report", "steal", "-q", "-f", "json", dat]).stdout)
            prow = {r["tid"]: r for r in steal["rows"]}
            by_all = {}
            for t in truth["threads"]:
                r, pr = prow[t["tid"]], t["preemptions"]
                tw = "%s tid %d steal" % (what, t["tid"])
                check_eq(r["preempted_ns"], pr["total_ns"], tw + ": preempted time")
                check_eq(r["steal_ns"], t["preempted_ns"] + t["waiting_ns"], tw + ": steal = preempted + waiting")
                check_eq(r["preemptions"], pr["count"], tw + ": preemptions")
                # each preemption's length: from the switch out (runnable) to the switch in
                check_eq(pr["timed"], pr["count"], tw + ": the truth timed every preemption")
                if pr["count"]:
                    check_eq(r["preemption_max_ns"], pr["max_ns"], tw + ": longest preemption (exact)")
                    for p in ("p50", "p95", "p99"):
                        lo, hi = bucket(pr[p + "_ns"])
                        check(lo <= r["preemption_" + p + "_ns"] < hi,
                              "%s: preemption %s %d in the truth's bucket [%d, %d)"
                              % (tw, p, r["preemption_" + p + "_ns"], lo, hi))
                if pr["by"]:
                    top = max(pr["by"], key=lambda b: (b["total_ns"], -b["pid"]))
                    check(r["top_preemptor"].startswith("%s:%d " % (top["comm"], top["pid"])),
                          "%s: top preemptor %r is %s:%d" % (tw, r["top_preemptor"], top["comm"], top["pid"]))
                for b in pr["by"]:
                    e = by_all.setdefault(b["pid"], [b["comm"], 0, 0])
                    e[1] += b["count"]
                    e[2] += b["total_ns"]
            check_eq(sum(b["count"] for b in steal["histogram"]),
                     sum(t["preemptions"]["count"] for t in truth["threads"]),
                     what + ": steal histogram total = the preemptions")
            got_by = {p["pid"]: [p["comm"], p["count"], p["ns"]] for p in steal["preemptors"]}
            check_eq(got_by, by_all, what + ": preemptors over all vCPUs (task, count, time)")
            # report cpu: who used each host CPU
            cpu = json.loads(run(["report", "cpu", "-q", "-f", "json", dat]).stdout)
            first_on_cpu = {p["cpu"]: p["first_ts"] for p in full["per_cpu"] if p["events"]}
            for c in truth["cpus"]:
                rows_c = [r for r in cpu["rows"] if r["cpu"] == c["cpu"]]
                cw = "%s CPU %d" % (what, c["cpu"])
                kind = lambda k: sum(r["ns"] for r in rows_c if r["kind"] == k)
                # What ran on a CPU before its first event the truth knows and a trace
                # cannot: that stretch (only) is unknown. A CPU idle at the start shows its
                # first event late (on 2 CPUs within microseconds; on 10, tens).
                lead = first_on_cpu.get(c["cpu"], truth["end_ts"]) - truth["first_ts"]
                idle_gap = c["idle_ns"] - kind("idle")
                check(0 <= idle_gap <= lead, cw + ": idle %d ns, the truth's %d less at most the "
                      "%d ns before the CPU's first event" % (kind("idle"), c["idle_ns"], lead))
                check_eq(kind("task"), c["other_ns"], cw + ": other tasks")
                # A vCPU is running before its first event, too.
                tv = sum(v["guest_ns"] + v["hypervisor_ns"] + v["vmm_ns"] for v in c["vcpus"])
                check_eq(kind("vm") + kind("unknown"), tv + idle_gap,
                         cw + ": vCPU time + unknown = the truth's vCPU time + the idle unseen")
                before = sum(t["first_ts"] - truth["first_ts"] for t in truth["threads"])
                check(kind("unknown") <= before + lead,
                      cw + ": unknown only before the vCPUs' and the CPU's first events")
            # all four from one pass: the same rows as one by one
            multi = vcpu_json_cmd("vcpu,cpu,sched,steal", dat)
            check(multi["vcpu"]["rows"] == got["rows"] and multi["cpu"]["rows"] == cpu["rows"]
                  and multi["sched"]["rows"] == sched["rows"] and multi["steal"]["rows"] == steal["rows"]
                  and multi["steal"]["preemptors"] == steal["preemptors"],
                  what + ": vcpu,cpu,sched,steal in one pass = each alone")
            # per VM: the sum of its vCPUs
            per_vm = vcpu_json(dat, "--per-vm")
            check_eq(sum(r["guest_ns"] for r in per_vm["rows"]), sum(t["guest_ns"] for t in truth["threads"]),
                     what + ": --per-vm guest time is the sum over vCPUs")
            vm0 = per_vm["rows"][0]["vm"]
            one = vcpu_json(dat, "--vm", vm0, "--vcpu", "1")
            check(len(one["rows"]) == 1 and one["rows"][0]["vcpu"] == 1 and one["rows"][0]["vm"] == vm0,
                  what + ": --vm --vcpu select one vCPU")
            # a window: the states of the window add up to it
            span = got["summary"]["end_ts"] - got["summary"]["start_ts"]
            win = vcpu_json(dat, "--from", "%.9f" % (span / 4e9), "--to", "%.9f" % (span / 2e9))
            for r in win["rows"]:
                total = sum(r[s + "_ns"] for s in STATES + ["running", "unknown"])
                check_close(total, span / 4, 2, what + " tid %d: --from/--to window" % r["tid"])
            # CSV reads back with the same numbers
            text = run(["report", "vcpu", "-q", "-f", "csv", dat]).stdout
            crows = {int(r["tid"]): r for r in csv.DictReader(io.StringIO(text))}
            check(all(int(crows[t]["guest_ns"]) == rows[t]["guest_ns"] for t in rows), what + ": CSV = JSON")


def beacon_offset(dat):
    """Median of trace time - mono_ns over the run's LAB_HOST_TSC beacons (print events)."""
    p = subprocess.run(["trace-cmd", "report", "-i", dat], capture_output=True, text=True)
    offs = []
    for line in p.stdout.splitlines():
        m = re.search(r"\s(\d+)\.(\d+): print:.*LAB_HOST_TSC .*mono_ns=(\d+)", line)
        if m:
            ts = int(m.group(1)) * 10**9 + int(m.group(2).ljust(9, "0")[:9])
            offs.append(ts - int(m.group(3)))
    return statistics.median(offs) / 1e9 if offs else None


def lab():
    runs = ["run1-labos-kvm-busyhost", "run2-labos-kvm"]
    if not os.path.isdir(LAB):
        print("SKIP part: ../shared/data/kvm-lab is not beside the repo")
        return
    for name in runs:
        d = os.path.join(LAB, name)
        dat = os.path.join(d, "host-trace.dat")
        full = vcpu_json(dat)
        check(not full["summary"]["kvm_entry_exit"], name + ": no kvm_entry/kvm_exit (KVM-PVM)")
        first = full["summary"]["start_ts"] / 1e9
        off = beacon_offset(dat)
        if off is None:
            print("SKIP part: trace-cmd is not installed, no beacon offset for " + name)
            continue

        def up(snap, which):
            return float(open(os.path.join(d, snap, "uptime_" + which)).read().split()[0])

        t0 = (up("snap-before", "start") + up("snap-before", "end")) / 2 + off - first
        t1 = (up("snap-after", "start") + up("snap-after", "end")) / 2 + off - first
        win = vcpu_json(dat, "--from", "%.6f" % t0, "--to", "%.6f" % t1)
        check_eq(len(win["rows"]), 2, name + ": two vCPU threads")
        for r in win["rows"]:
            tid = r["tid"]
            s0 = [int(x) for x in open(os.path.join(d, "snap-before/task/%d/schedstat" % tid)).read().split()]
            s1 = [int(x) for x in open(os.path.join(d, "snap-after/task/%d/schedstat" % tid)).read().split()]
            run_ss, wait_ss = s1[0] - s0[0], s1[1] - s0[1]
            wait = r["preempted_ns"] + r["waiting_ns"]
            check_close(r["running_ns"], run_ss, 0.01 * run_ss, "%s tid %d: running vs schedstat run time" % (name, tid))
            check_close(wait, wait_ss, 0.01 * wait_ss, "%s tid %d: preempted+waiting vs schedstat run delay"
                        % (name, tid))
            print("%s tid %d: running %.3f s (schedstat %.3f), preempted+waiting %.3f s (schedstat %.3f), "
                  "%d switch-ins inferred, uncertain %.1f ms"
                  % (name, tid, r["running_ns"] / 1e9, run_ss / 1e9, wait / 1e9, wait_ss / 1e9,
                     r["inferred_switch_ins"], r["uncertain_ns"] / 1e6))
        # report cpu: /proc/stat's idle time of each CPU lies between the idle the trace shows
        # and that plus what it cannot tell (switches away from idle are missing here).
        cpu = vcpu_json_cmd("cpu", dat, "--from", "%.6f" % t0, "--to", "%.6f" % t1)
        ps0 = proc_stat(os.path.join(d, "snap-before", "proc-stat"))
        ps1 = proc_stat(os.path.join(d, "snap-after", "proc-stat"))
        snapdur = (up("snap-before", "end") - up("snap-before", "start")
                   + up("snap-after", "end") - up("snap-after", "start"))
        for n in sorted(ps0):
            idle_ps = (ps1[n] - ps0[n]) * 10**7  # USER_HZ 100: ticks of 10 ms
            rows_c = [r for r in cpu["rows"] if r["cpu"] == n]
            idle = sum(r["ns"] for r in rows_c if r["kind"] == "idle")
            unk = sum(r["ns"] for r in rows_c if r["kind"] == "unknown")
            tol = snapdur * 1e9 + 2 * 10**7
            print("%s CPU %d: idle %.3f s, unknown %.3f s; /proc/stat idle %.3f s"
                  % (name, n, idle / 1e9, unk / 1e9, idle_ps / 1e9))
            check(idle - tol <= idle_ps <= idle + unk + tol,
                  "%s CPU %d: /proc/stat idle %.3f s within [idle, idle + unknown] = [%.3f, %.3f] s"
                  % (name, n, idle_ps / 1e9, idle / 1e9, (idle + unk) / 1e9))
        table = run(["report", "vcpu", dat]).stdout
        check(0 <= table.find("are one state, running") < table.find("Shares of each row's time"),
              name + ": the header says guest and hypervisor merge")


def options():
    p = run(["report", "vcpu,exits", "x.dat"], check=False)
    check(p.returncode == 2 and "unknown analysis" in p.stderr, "exits does not combine with the others")
    p = run(["report", "vcpu,cpu", "-f", "csv", "x.dat"], check=False)
    check(p.returncode == 2 and "CSV" in p.stderr, "CSV takes one analysis")
    p = run(["report", "vcpu", "--from", "soon", "x.dat"], check=False)
    check(p.returncode == 2 and "--from" in p.stderr, "a bad --from is a usage error naming it")
    p = run(["report", "vcpu", "--from", "2", "--to", "1", "x.dat"], check=False)
    check(p.returncode == 2, "--to before --from is a usage error")


generated()
lab()
options()
finish()
