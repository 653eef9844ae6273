#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""vmscope stat --log on the real test VM (two vCPUs, always busy, 300 MMIO and 100 port
exits per second each), read back with Python's csv and json modules.

1. CSV into a file rotated by size (2 KiB, keep 3): FILE and FILE.1-3 exist and no FILE.4;
   every file starts with the one header line and every row has its 7 columns and an
   ISO 8601 UTC timestamp; the VM's summed rate of exits to the VMM for MMIO is 2 x 300/s
   (the schedule) within 5 %.
2. Rotation by age (1 s) over about 3 s of reports makes at least two files.
3. JSON lines with --fields and --skip-zero: every line is one object whose field matches
   the regex and whose rate is not 0; the per-vCPU rows sum to the "all" row.
4. Text lines: every line starts with the timestamp and names pid, VM and vCPU.
5. Rotation options without --output, --fields without --log, a bad regex: exit 2."""
import csv
import datetime
import glob
import json
import os
import re
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from testlib import *  # noqa: E402,F403

need_kvm()
if os.geteuid() != 0:
    skip("counting another process's trace events needs root")


def iso(ts):
    return datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ")


with tempfile.TemporaryDirectory() as tmp:
    pidfile = os.path.join(tmp, "vm.pid")
    run(["testvm", "--daemon", "--pidfile", pidfile, "--name", "statlog", "--vcpus", "2",
         "--phase", "100:10s", "--mmio", "300", "--pio", "100"])
    pid = int(open(pidfile).read())
    try:
        log = os.path.join(tmp, "stat.csv")
        run(["stat", "-g", "statlog", "--log", "--format", "csv", "--output", log,
             "--rotate-size", "2048", "--keep", "3", "--interval", "0.25s", "--count", "14"])
        files = sorted(glob.glob(log + "*"))
        check_eq(files, sorted([log, log + ".1", log + ".2", log + ".3"]),
                 "rotated files (keep 3)")
        rates = []
        for f in files:
            with open(f, newline="") as fh:
                rows = list(csv.reader(fh))
            check_eq(rows[0], ["timestamp", "pid", "vm", "vcpu", "field", "value", "per_s"],
                     "%s: header first" % os.path.basename(f))
            check(all(r != rows[0] for r in rows[1:]), "%s: one header" % os.path.basename(f))
            for r in rows[1:]:
                if not check(len(r) == 7, "%s: 7 columns: %r" % (os.path.basename(f), r)):
                    break
                iso(r[0])
                check_eq((int(r[1]), r[2]), (pid, "statlog"), "pid and VM")
                if r[3] == "all" and r[4] == "events.userspace_exit.mmio" and r[6]:
                    rates.append(float(r[6]))
        if check(rates, "summed MMIO exit rates logged"):
            check_close(sum(rates) / len(rates), 600.0, 30.0, "VM's MMIO exits to the VMM/s")

        aged = os.path.join(tmp, "aged.log")
        run(["stat", "-g", "statlog", "--log", "--output", aged, "--rotate-time", "1s",
             "--interval", "0.4s", "--count", "8"])
        check(len(glob.glob(aged + "*")) >= 2, "rotation by age made files: %s"
              % glob.glob(aged + "*"))

        p = run(["stat", "-g", "statlog", "--log", "--format", "json", "--fields",
                 "^events\\.kvm_(mmio|pio)$", "--skip-zero", "--interval", "0.5s", "--count",
                 "3"])
        rows = [json.loads(line) for line in p.stdout.splitlines()]
        check(rows, "JSON lines logged")
        for r in rows:
            check(re.match(r"^events\.kvm_(mmio|pio)$", r["field"]), "field matches: %s"
                  % r["field"])
            check(r["per_s"] is None and r["value"] != 0 or r["per_s"] != 0,
                  "no zero row: %r" % r)
        last = [r for r in rows if r["timestamp"] == rows[-1]["timestamp"]]
        for field in ("events.kvm_mmio", "events.kvm_pio"):
            per = [r["per_s"] for r in last if r["field"] == field and r["vcpu"] != "all"]
            tot = [r["per_s"] for r in last if r["field"] == field and r["vcpu"] == "all"]
            if check(len(per) == 2 and len(tot) == 1, "%s: two vCPU rows and a sum" % field):
                check_close(tot[0], sum(per), 1e-6 * tot[0] + 1e-9, field + ": sum row")

        # The table takes --fields and -z too: only the chosen columns, and no all-zero row
        # (the guest makes no hypercalls, which KVM-PVM never traces anyway).
        p = run(["stat", "-g", "statlog", "--fields", r"^(cpu\.run_s|events\.kvm_mmio)$",
                 "--interval", "0.5s", "--count", "2"])
        last = p.stdout.split("\n\n")[-1]  # the second report
        heads = [ln.split() for ln in last.splitlines() if ln.strip().startswith("vcpu")]
        check_eq(heads, [["vcpu", "tid", "thread", "cpu", "run%"], ["vcpu", "kvm_mmio/s"]],
                 "table columns chosen by --fields")
        mmio = {}
        in_events = False
        for ln in last.splitlines():
            f = ln.split()
            if f and f[0] == "vcpu":
                in_events = f[1] == "kvm_mmio/s"
            elif in_events and len(f) == 2 and (f[0].isdigit() or f[0] == "all"):
                mmio[f[0]] = float(f[1])
        if check(sorted(mmio) == ["0", "1", "all"], "kvm_mmio rows: %s" % sorted(mmio)):
            for v in ("0", "1"):
                check_close(mmio[v], 300.0, 15.0, "table: vCPU %s kvm_mmio/s vs 300/s" % v)
            check_close(mmio["all"], mmio["0"] + mmio["1"], 1.0, "table: the VM's sum")
        p = run(["stat", "-g", "statlog", "--fields", r"^events\.kvm_hypercall$", "-z",
                 "--interval", "0.3s", "--count", "2"])
        rows = [ln.split() for ln in p.stdout.splitlines()
                if ln.split() and (ln.split()[0].isdigit() or ln.split()[0] == "all")
                and not ln.startswith("  " * 2)]
        check("kernel-counted events" in p.stdout and rows == [],
              "-z leaves out the all-zero hypercall rows: %r" % rows)

        p = run(["stat", "-g", "statlog", "--log", "--interval", "0.3s", "--count", "2"])
        for line in p.stdout.splitlines():
            m = re.match(r"^(\S+) pid=(\d+) vm=statlog vcpu=(\d+|all) \S+=\S+", line)
            if not check(m, "text line shape: %r" % line):
                break
            iso(m.group(1))
    finally:
        terminate([pid])

for args in (["--log", "--rotate-size", "4096"], ["--format", "csv", "--fields", "x"],
             ["--format", "json", "-z"], ["--log", "--fields", "("], ["--fields", "("]):
    p = run(["stat"] + args, check=False)
    check_eq(p.returncode, 2, "stat %s: usage error" % " ".join(args))
finish()
