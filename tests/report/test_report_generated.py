#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""`vmscope report exits` on generated traces (tests/tools/gentrace) against their exact
truth: VMX and SVM exit mixes, with and without lost-events windows, written as v6, v7
zstd and v7 zlib. Per vCPU thread and key: events, samples, total, min and max exact;
p50/p95/p99 within their histogram bucket (0.4 %); MMIO, port, MSR and user-space exits
exact; VMs and vCPUs named from the file; lost events counted. Where lost windows make
vmscope differ from perf's definition (perf times an exit across a gap), the difference is
asserted exactly: every begin is a sample, unfinished, dropped for a gap, or before the
thread's first kvm_entry."""
import collections
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from testlib import *  # noqa: E402,F403

gentrace = sys.argv[2] if len(sys.argv) > 2 else None
if not gentrace or not os.access(gentrace, os.X_OK):
    skip("no gentrace binary given")

# (vendor, seed, lost windows, host CPUs, VMs, vCPUs each): the last has more CPUs than
# the merge's small-tree case (4), with vCPU threads moving among them.
SCENARIOS = [("vmx", 3, 0, 2, 2, 2), ("svm", 5, 0, 2, 2, 2), ("vmx", 11, 3, 2, 2, 2),
             ("svm", 13, 3, 2, 2, 2), ("vmx", 17, 0, 12, 3, 4)]
MMIO_INFO = {"unsatisfied-read": 0, "read": 1, "write": 2}


def report(path, event):
    return json.loads(run(["report", "exits", "--event", event, "--per-vcpu", "-f", "json", path]).stdout)


with tempfile.TemporaryDirectory() as tmp:
    for vendor, seed, lost, cpus, nvms, nvcpus in SCENARIOS:
        name = "%s-seed%d-lost%d-cpus%d" % (vendor, seed, lost, cpus)
        base = os.path.join(tmp, name)
        common = ["--vendor", vendor, "--vms", str(nvms), "--vcpus", str(nvcpus), "--cpus", str(cpus),
                  "--exits", "800",
                  "--seed", str(seed), "--lost", str(lost), "--quiet"]
        subprocess.run([gentrace, "-o", base + ".v6.dat", "--truth", base + ".json"] + common, check=True)
        subprocess.run([gentrace, "-o", base + ".v7z.dat", "--dat-version", "7", "--compression", "zstd"] + common,
                       check=True)
        files = [base + ".v6.dat", base + ".v7z.dat"]
        if seed == 3:
            subprocess.run([gentrace, "-o", base + ".v7l.dat", "--dat-version", "7", "--compression", "zlib"]
                           + common, check=True)
            files.append(base + ".v7l.dat")
        t = load_json(base + ".json")
        vm_of = {v["tid"]: (vm["name"], v["vcpu"]) for vm in t["vms"] for v in vm["vcpus"]}
        unfinished = {(r["tid"], r["reason"]): r["count"] for r in t["unfinished"]}
        before = {(r["tid"], r["reason"]): r["count"] for r in t["before_first_entry"]}
        first = None
        for path in files:
            what = "%s %s" % (name, os.path.basename(path).split(".")[1])
            r = report(path, "vmexit")
            if first is None:
                first = r["rows"]
            else:
                check_eq(r["rows"], first, what + ": same rows as from the v6 file")
            s = r["summary"]
            check_eq(s["lost_events"], t["lost_total"], what + ": lost events")
            check_eq(s["lost_windows"], len(t["lost"]), what + ": lost windows")
            ours = {(x["tid"], x["key"]): x for x in r["rows"]}
            truth = {(x["tid"], x["reason"]): x for x in t["exits"]}
            for key in set(ours) | set(truth) | set(unfinished) | set(before):
                o, e = ours.get(key, {}), truth.get(key, {})
                events = e.get("count", 0) + unfinished.get(key, 0) + before.get(key, 0)
                check_eq(o.get("events", 0), events, what + ": %r kvm_exit events" % (key,))
                if key[0] in vm_of:
                    check_eq((o.get("vm"), o.get("vcpu")) if o else vm_of[key[0]], vm_of[key[0]],
                             what + ": %r VM and vCPU" % (key,))
                if not lost:
                    check_eq(o.get("samples", 0) or 0, e.get("count", 0), what + ": %r samples" % (key,))
                    if e.get("count"):
                        for k in ("total_ns", "min_ns", "max_ns"):
                            check_eq(o.get(k), e[k], what + ": %r %s" % (key, k))
                        for k in ("p50_ns", "p95_ns", "p99_ns"):
                            check_close(o.get(k) or 0, e[k], e[k] / 256 + 1, what + ": %r %s" % (key, k))
                else:
                    check((o.get("samples") or 0) <= e.get("count", 0),
                          what + ": %r: no more samples than perf's pairing (%r <= %r)"
                          % (key, o.get("samples"), e.get("count")))
            # Every begin after a thread's first kvm_entry is a sample, unfinished, or (not
            # in perf) dropped because its end may be in a lost window.
            begins = sum(x["count"] for x in t["exits"]) + sum(unfinished.values())
            check_eq(s["samples"] + s["unfinished"] + s["not_timed_lost"], begins,
                     what + ": samples + unfinished + dropped for gaps = begins")
            check_eq(s["before_first_entry"], sum(before.values()), what + ": exits before the first entry")
            if lost:
                check(s["not_timed_lost"] > 0, what + ": some exits were not timed across a gap")
            else:
                check_eq(s["not_timed_lost"], 0, what + ": nothing dropped without lost events")
            # MMIO, port, MSR and user-space exits, counted per thread and key.
            mm = report(path, "mmio")
            check_eq({(x["tid"], x["key"], x["info"]): x["events"] for x in mm["rows"]},
                     {(x["tid"], x["gpa"], MMIO_INFO[x["type"]]): x["count"] for x in t["mmio"]},
                     what + ": kvm_mmio events")
            io = report(path, "ioport")
            check_eq({(x["tid"], x["key"], x["info"]): x["events"] for x in io["rows"]},
                     {(x["tid"], x["port"], 1 if x["rw"] == "write" else 0): x["count"] for x in t["pio"]},
                     what + ": kvm_pio events")
            ms = report(path, "msr")
            check_eq({(x["tid"], x["key"], x["info"]): x["events"] for x in ms["rows"]},
                     {(x["tid"], x["index"], 1 if x["rw"] == "write" else 0): x["count"] for x in t["msr"]},
                     what + ": kvm_msr events")
            ue = report(path, "userspace")
            check_eq({(x["tid"], x["key"]): x["events"] for x in ue["rows"]},
                     {(x["tid"], x["reason"]): x["count"] for x in t["userspace_exits"]},
                     what + ": kvm_userspace_exit events")
        # --vm and --per-vm: one VM's rows are the rows of its threads.
        vm0 = t["vms"][0]["name"]
        one = json.loads(run(["report", "exits", "--vm", vm0, "-f", "json", files[0]]).stdout)
        mine = collections.Counter()
        for x in first:
            if vm_of.get(x["tid"], ("?",))[0] == vm0:
                mine[x["key"]] += x["events"]
        check_eq({x["key"]: x["events"] for x in one["rows"]}, dict(mine), name + ": --vm " + vm0)
        pv = json.loads(run(["report", "exits", "--per-vm", "-f", "json", files[0]]).stdout)
        check_eq(sorted({x["vm"] for x in pv["rows"]}), sorted(v["name"] for v in t["vms"]), name + ": --per-vm")
finish()
