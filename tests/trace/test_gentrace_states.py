# SPDX-License-Identifier: GPL-2.0-or-later
"""gentrace's truth of the vCPU state model ("states") against its own files.

For a few scenarios (VMX with more vCPUs than CPUs, SVM with more CPUs than vCPUs, one
without percentiles) gentrace writes a trace and its truth; the states are computed again
from trace-cmd report's text alone, with the model's definitions, and must equal the truth
exactly:
 - per vCPU thread, from its first event (any record it emits or that names it) to the
   trace's last record: guest (kvm_entry to kvm_exit), hypervisor (kvm_exit, or a
   switch-in, to the next kvm event or switch-out), vmm (kvm_userspace_exit to kvm_entry
   or switch-out; a thread switched out in vmm comes back in vmm), preempted (switch-out
   with (prev_state & 0xff) == 0 to switch-in), idle / blocked (switch-out in a sleeping
   state after a HLT exit / another exit, to sched_wakeup), waiting (sched_wakeup to
   switch-in); the seven sum to the span exactly;
 - per thread its run time per CPU, its migrations (a switch-in on another CPU than its
   last on-CPU period), its wakeup latencies (count, total, max, nearest-rank p50/p95/p99)
   and its preemptions, in all and per preempting task, and their lengths (max and
   nearest-rank percentiles);
 - per CPU, from the trace's first record: each vCPU's guest, hypervisor and vmm time,
   other tasks' and the idle task's; until a CPU's first sched_switch it runs the task of
   its first record (a vCPU there is in the guest until its first kvm_exit);
 - with lost events the truth's "states" is null.
SKIP (77) when trace-cmd is not installed."""
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import testlib  # noqa: E402
from testlib import check, check_eq  # noqa: E402

GENTRACE = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("GENTRACE")
if not GENTRACE:
    print("usage: test_gentrace_states.py PATH-TO-GENTRACE")
    sys.exit(2)
if not shutil.which("trace-cmd"):
    testlib.skip("trace-cmd is not installed (apt-get install trace-cmd)")

SCENARIOS = [
    ("vmx-busy", ["--vendor", "vmx", "--vms", "2", "--vcpus", "3", "--cpus", "2",
                  "--exits", "1500", "--seed", "7"]),
    ("svm-spare", ["--vendor", "svm", "--vms", "1", "--vcpus", "3", "--cpus", "4",
                   "--exits", "1500", "--seed", "11"]),
    ("vmx-nopct", ["--vendor", "vmx", "--vms", "2", "--vcpus", "2", "--cpus", "3",
                   "--exits", "600", "--seed", "3", "--no-percentiles"]),
]
LOST = ["--vms", "1", "--vcpus", "2", "--cpus", "2", "--exits", "600", "--lost", "2"]
HLT = {"vmx": 12, "svm": 0x78}
STATES = ["guest", "hypervisor", "vmm", "preempted", "waiting", "idle", "blocked"]
RUNNING = ("guest", "hypervisor", "vmm")
NUMBERS = {"exit_reason", "prev_pid", "prev_state", "next_pid", "pid"}  # the fields used

LINE = re.compile(r"^\s*(.*)-(\d+)\s+\[(\d+)\]\s+(\d+)\.(\d{9}):\s+(\w+):\s*(.*)$")
FIELD = re.compile(r"(\w+)=(.*?)(?= \w+=|$)")


def run(cmd):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def gentrace(out, args):
    p = run([GENTRACE, "-q", "-o", out, "--truth", out + ".json"] + args)
    if p.returncode:
        print("gentrace failed: %s\n%s" % (" ".join(args), p.stderr))
        sys.exit(1)
    with open(out + ".json") as f:
        return json.load(f)


def parse_report(path):
    p = run(["trace-cmd", "report", "-R", "-t", "-i", path])
    check_eq((p.returncode, p.stderr), (0, ""), "trace-cmd report of %s" % path)
    events = []
    for line in p.stdout.splitlines():
        m = LINE.match(line)
        if not m:
            continue
        ev = {"tid": int(m.group(2)), "cpu": int(m.group(3)),
              "ts": int(m.group(4)) * 10**9 + int(m.group(5)), "name": m.group(6)}
        for k, v in FIELD.findall(m.group(7)):
            ev[k] = int(v, 0 if v.startswith("0x") else 10) if k in NUMBERS else v
        events.append(ev)
    return events


def nearest_rank(vals, p):
    return vals[max((p * len(vals) + 99) // 100, 1) - 1]


class Thread:
    def __init__(self):
        self.state = None  # None: no state event yet
        self.since = 0
        self.first_state_ts = None
        self.ns = collections.Counter()
        self.run = collections.Counter()
        self.cpu = None  # CPU of its current or last on-CPU period
        self.last_exit = None
        self.out_vmm = False
        self.wake_ts = None
        self.wakeups = []
        self.preempt_ts = None
        self.preempts = []  # lengths: switch out runnable to switch in, or to the end
        self.migrations = 0
        self.preempter = None
        self.by = collections.defaultdict(lambda: [0, 0])  # (pid, comm) -> count, ns
        self.vmm_back = 0  # switch-ins back to vmm (coverage)


def recompute(truth, events):
    """The "states" of the truth, from the report's events alone."""
    vcpus = {v["tid"]: (vm_i, v["vcpu"]) for vm_i, vm in enumerate(truth["vms"])
             for v in vm["vcpus"]}
    hlt = HLT[truth["vendor"]]
    first, end = events[0]["ts"], max(e["ts"] for e in events)
    th = {t: Thread() for t in vcpus}
    first_ts = {}  # broad: any record the thread emits or that names it
    cur, since, pre = {}, {}, {}
    cpu_ns = collections.defaultdict(collections.Counter)  # cpu -> (bucket) -> ns
    for e in events:
        if e["cpu"] not in cur:  # a CPU runs the task of its first record until then
            cur[e["cpu"]], since[e["cpu"]] = e["tid"], first
            if e["tid"] in vcpus:
                pre[e["tid"]] = e["cpu"]
        for k in ("tid", "prev_pid", "next_pid", "pid"):
            if e.get(k) in vcpus:
                first_ts.setdefault(e[k], e["ts"])
    for c in range(truth["cpus"]):
        cur.setdefault(c, 0)
        since.setdefault(c, first)

    def flush(c, ts):
        t = cur[c]
        if t == 0:
            key = "idle"
        elif t not in vcpus:
            key = "other"
        else:
            st = th[t].state
            if st is None:  # before its first event: in the guest (checked below)
                st = "guest"
            if st not in RUNNING:
                check(False, "thread %d current on CPU %d in state %s at %d" % (t, c, st, ts))
            key = (t, st)
        cpu_ns[c][key] += ts - since[c]
        since[c] = ts

    def enter(t, st, ts, cpu=None):
        x = th[t]
        for c in cur:
            if cur[c] == t:
                flush(c, ts)
        if x.state is None:
            x.first_state_ts = ts
            if cpu is not None and x.cpu is None:
                x.cpu = cpu
        else:
            d = ts - x.since
            x.ns[x.state] += d
            if x.state in RUNNING:
                x.run[x.cpu] += d
            if x.state == "preempted":
                x.by[x.preempter][1] += d
        x.state, x.since = st, ts

    for e in events:
        n, t, ts, c = e["name"], e["tid"], e["ts"], e["cpu"]
        if n in ("kvm_exit", "kvm_entry", "kvm_userspace_exit") and t in vcpus:
            if th[t].state is None and n == "kvm_exit":
                check(pre.get(t, c) == c, "thread %d: first kvm_exit on its first CPU" % t)
            if n == "kvm_exit":
                th[t].last_exit = e["exit_reason"]
            enter(t, {"kvm_exit": "hypervisor", "kvm_entry": "guest",
                      "kvm_userspace_exit": "vmm"}[n], ts, c)
        elif n == "sched_switch":
            flush(c, ts)
            p, q = e["prev_pid"], e["next_pid"]
            if p in vcpus:
                x = th[p]
                if e["prev_state"] & 0xff == 0:
                    st = "preempted"
                else:
                    st = "idle" if x.last_exit == hlt else "blocked"
                x.out_vmm = x.state == "vmm"
                x.cpu = c
                enter(p, st, ts)
                if st == "preempted":
                    x.preempt_ts = ts
                    x.preempter = (q, e["next_comm"])
                    x.by[x.preempter][0] += 1
            if q in vcpus:
                x = th[q]
                if x.state == "waiting":
                    x.wakeups.append(ts - x.wake_ts)
                elif x.state == "preempted":
                    x.preempts.append(ts - x.preempt_ts)
                if x.cpu is not None and x.cpu != c:
                    x.migrations += 1
                x.cpu = c
                x.vmm_back += x.out_vmm
                enter(q, "vmm" if x.out_vmm else "hypervisor", ts)
                x.out_vmm = False
            cur[c] = q
        elif n == "sched_wakeup" and e["pid"] in vcpus:
            enter(e["pid"], "waiting", ts)
            th[e["pid"]].wake_ts = ts
    for c in cur:
        flush(c, end)
    for t, x in th.items():
        if x.state == "preempted":
            x.preempts.append(end - x.preempt_ts)
        if x.state is not None:
            enter(t, x.state, end)

    pct = truth["scenario"]["percentiles"]
    threads = []
    for t, (vm, vcpu) in vcpus.items():
        x = th[t]
        check_eq(x.first_state_ts, first_ts.get(t),
                 "thread %d: its first event is one of the model's" % t)
        row = {"tid": t, "vm": vm, "vcpu": vcpu, "first_ts": x.first_state_ts, "end_ts": end}
        for s in STATES:
            row[s + "_ns"] = x.ns[s]
        row["migrations"] = x.migrations
        row["cpu_run_ns"] = {str(c): ns for c, ns in sorted(x.run.items()) if ns}
        w = sorted(x.wakeups)
        row["wakeups"] = {"count": len(w), "total_ns": sum(w), "max_ns": max(w, default=0)}
        if pct:
            for p in (50, 95, 99):
                row["wakeups"]["p%d_ns" % p] = nearest_rank(w, p) if w else None
        by = sorted(x.by.items())
        row["preemptions"] = {"count": sum(n for (n, _) in x.by.values()),
                              "total_ns": sum(ns for (_, ns) in x.by.values()),
                              "timed": len(x.preempts), "max_ns": max(x.preempts, default=0),
                              "by": [{"pid": pid, "comm": comm, "count": n, "total_ns": ns}
                                     for (pid, comm), (n, ns) in by]}
        if pct:
            for p in (50, 95, 99):
                row["preemptions"]["p%d_ns" % p] = (nearest_rank(sorted(x.preempts), p)
                                                    if x.preempts else None)
        threads.append(row)
    cpus = []
    for c in range(truth["cpus"]):
        row = {"cpu": c, "idle_ns": cpu_ns[c]["idle"], "other_ns": cpu_ns[c]["other"],
               "vcpus": []}
        for t in vcpus:
            v = {s + "_ns": cpu_ns[c][(t, s)] for s in RUNNING}
            if any(v.values()):
                row["vcpus"].append({"tid": t, "guest_ns": v["guest_ns"],
                                     "hypervisor_ns": v["hypervisor_ns"],
                                     "vmm_ns": v["vmm_ns"]})
        cpus.append(row)
    coverage = {"vmm_back": sum(x.vmm_back for x in th.values()),
                "migrations": sum(x.migrations for x in th.values()),
                "preemptions": sum(r["preemptions"]["count"] for r in threads),
                "wakeups": sum(len(x.wakeups) for x in th.values())}
    return {"first_ts": first, "end_ts": end, "threads": threads, "cpus": cpus}, coverage


def check_states(name, truth, events):
    st = truth["states"]
    check(st is not None, "%s: states present without lost events" % name)
    if st is None:
        return collections.Counter()
    want, coverage = recompute(truth, events)
    check_eq((st["first_ts"], st["end_ts"]), (want["first_ts"], want["end_ts"]),
             "%s: trace span" % name)
    got = {r["tid"]: r for r in st["threads"]}
    check_eq(sorted(got), sorted(r["tid"] for r in want["threads"]), "%s: thread rows" % name)
    for r in want["threads"]:
        g = got.get(r["tid"])
        check_eq(g, r, "%s: states of thread %d" % (name, r["tid"]))
        if g:
            check_eq(sum(g[s + "_ns"] for s in STATES), g["end_ts"] - g["first_ts"],
                     "%s: thread %d: the 7 states sum to end - first" % (name, r["tid"]))
            check_eq(sum(g["cpu_run_ns"].values()),
                     g["guest_ns"] + g["hypervisor_ns"] + g["vmm_ns"],
                     "%s: thread %d: run time per CPU sums to its run time" % (name, r["tid"]))
            check_eq(g["preemptions"]["total_ns"], g["preempted_ns"],
                     "%s: thread %d: preemptions' time is its preempted time" % (name, r["tid"]))
    check_eq(st["cpus"], want["cpus"], "%s: per-CPU time" % name)
    for r in st["cpus"]:
        total = r["idle_ns"] + r["other_ns"] + sum(
            v["guest_ns"] + v["hypervisor_ns"] + v["vmm_ns"] for v in r["vcpus"])
        check_eq(total, st["end_ts"] - st["first_ts"], "%s: CPU %d time sums to the span"
                 % (name, r["cpu"]))
    return collections.Counter(coverage)


def main():
    tmp = tempfile.mkdtemp(prefix="vms-gentrace-states-")
    try:
        coverage = collections.Counter()
        for name, args in SCENARIOS:
            path = os.path.join(tmp, name + ".dat")
            truth = gentrace(path, args)
            coverage += check_states(name, truth, parse_report(path))
        # the scenarios exercise every path of the model that gentrace makes
        for k in ("vmm_back", "migrations", "preemptions", "wakeups"):
            check(coverage[k] > 0, "scenarios cover %s (%d)" % (k, coverage[k]))

        path = os.path.join(tmp, "lost.dat")
        truth = gentrace(path, LOST)
        check("states" in truth and truth["states"] is None, "lost events: states is null")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    testlib.finish()


if __name__ == "__main__":
    main()
