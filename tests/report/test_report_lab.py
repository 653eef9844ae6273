#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""`vmscope report exits` on the real traces of ../shared/data/kvm-lab (a KVM-PVM host:
no kvm_entry/kvm_exit, so the tables are exact counts). Ground truth from outside vmscope:
the guest's own log (every marker write HC_PRE of vCPU n is one MMIO write to 0xe8000000
and one KVM_EXIT_MMIO of thread `CPU n/KVM`), and `trace-cmd report` on the same file
(every kvm_mmio / kvm_userspace_exit line, counted by address and reason)."""
import collections
import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from testlib import *  # noqa: E402,F403

lab = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data", "kvm-lab")
runs = [r for r in ("run1-labos-kvm-busyhost", "run2-labos-kvm") if os.path.isdir(os.path.join(lab, r))]
if not runs:
    skip("the lab traces (../shared/data/kvm-lab) are not beside the repository")
have_tracecmd = shutil.which("trace-cmd") is not None

for rname in runs:
    d = os.path.join(lab, rname)
    markers = collections.Counter()
    for line in open(os.path.join(d, "guest-log.txt")):
        f = line.split()
        if len(f) >= 3 and not line.startswith("#") and f[2] == "HC_PRE":
            markers[int(f[1])] += 1
    tids = {}
    for line in open(os.path.join(d, "qemu-threads.txt")):
        m = re.match(r"\s*\d+\s+(\d+)\s+CPU (\d+)/KVM", line)
        if m:
            tids[int(m.group(1))] = int(m.group(2))
    files = ["host-trace.dat"] + (["host-trace.v6-uncompressed.dat"]
                                  if os.path.exists(os.path.join(d, "host-trace.v6-uncompressed.dat")) else [])
    for fname in files:
        path = os.path.join(d, fname)
        what = "%s/%s" % (rname, fname)
        mm = json.loads(run(["report", "exits", "--event", "mmio", "--per-vcpu", "-f", "json", path]).stdout)
        check_eq(mm["summary"]["lost_events"], 0, what + ": lost events")
        check_eq(mm["summary"]["timed"], False, what + ": no kvm_entry, nothing timed")
        rows = {(r["name"], r["tid"]): r for r in mm["rows"]}
        for tid, vcpu in tids.items():
            r = rows.get(("0xe8000000:W", tid))
            check(r is not None, "%s: marker MMIO row of thread %d" % (what, tid))
            if r:
                check_eq(r["events"], markers[vcpu], "%s: vCPU %d marker writes vs the guest's HC_PRE" % (what, vcpu))
                check_eq(r["vcpu"], vcpu, "%s: vCPU index of thread %d" % (what, tid))
        ue = json.loads(run(["report", "exits", "--event", "userspace", "--per-vcpu", "-f", "json", path]).stdout)
        urows = {(r["name"], r["tid"]): r["events"] for r in ue["rows"]}
        for tid, vcpu in tids.items():
            check_eq(urows.get(("MMIO", tid)), markers[vcpu],
                     "%s: vCPU %d KVM_EXIT_MMIO vs the guest's markers" % (what, vcpu))
        # CSV is the same table, read back by a CSV parser.
        cs = list(csv.DictReader(io.StringIO(run(["report", "exits", "--event", "mmio", "-f", "csv", path]).stdout)))
        tot = {r["name"]: int(r["events"]) for r in cs}
        check_eq(sum(tot.values()), mm["summary"]["events"], what + ": CSV total = JSON total")
        if have_tracecmd:
            p = subprocess.run(["trace-cmd", "report", "-i", path], capture_output=True, text=True)
            peer_mmio, peer_ue = collections.Counter(), collections.Counter()
            for line in p.stdout.splitlines():
                m = re.search(r"kvm_mmio:\s+mmio (\w+) len \d+ gpa (0x[0-9a-f]+)", line)
                if m:
                    kind = {"write": "W", "read": "R"}.get(m.group(1), "?")
                    peer_mmio["%s:%s" % (m.group(2), kind)] += 1
                m = re.search(r"kvm_userspace_exit:\s+reason KVM_EXIT_(\w+)", line)
                if m:
                    peer_ue[m.group(1)] += 1
            check_eq(tot, dict(peer_mmio), what + ": MMIO counts by address vs trace-cmd report")
            ut = json.loads(run(["report", "exits", "--event", "userspace", "-f", "json", path]).stdout)
            check_eq({r["name"]: r["events"] for r in ut["rows"]}, dict(peer_ue),
                     what + ": user-space exits by reason vs trace-cmd report")
        else:
            print("SKIP part: trace-cmd is not installed, no peer comparison")
finish()
