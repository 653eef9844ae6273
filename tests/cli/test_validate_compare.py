#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""vmscope validate --compare on snapshot files this test writes itself, for a scenario
whose truth it defines: two vCPU threads, each 5 s on a CPU, all of it in guest mode,
over 10 s, in a cgroup of their own (USER_HZ 100, HZ 250).

- On a kernel before 5.16 the cgroup's cpuacct.stat leaves the 10 s of guest time out:
  validate fails (exit 3) and says it is seed 000's symptom; the table and JSON agree.
- On a newer kernel the same counters with guest time in cpuacct.stat pass (exit 0).
- A snapshot of another process, a damaged file and a missing one are errors (exit 1)
  whose one-line message names the file (and the line)."""
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from testlib import *  # noqa: E402,F403

S = 10**9


def snapshot(path, kernel, end, guest_in_stat, pid=10):
    k = 1 if end else 0
    e = {"meta.pid": pid, "meta.starttime": 777, "meta.user_hz": 100, "meta.config.hz": 250,
         "meta.ncpus": 2, "meta.read_ns": 100000, "proc.threads": 2,
         "meta.mono_ns": 1000 * S + k * 10 * S, "meta.kernel": kernel, "meta.name": "vm1",
         "cg1.usage": 200 * S + k * 10 * S, "cg1.other_procs": 0,
         "cg1.stat.user": 500 + (k * 1000 if guest_in_stat else 0), "cg1.stat.system": 80}
    for t in (11, 12):
        e.update({"task.%d.vcpu" % t: t - 11, "task.%d.run_ns" % t: 100 * S + k * 5 * S,
                  "task.%d.wait_ns" % t: S, "task.%d.utime" % t: 10000 + k * 500,
                  "task.%d.stime" % t: 40, "task.%d.gtime" % t: 9000 + k * 500})
    with open(path, "w") as f:
        f.write("# written by test_validate_compare.py\nvmscope-acct 1\n")
        for key, v in sorted(e.items()):
            f.write('%s "%s"\n' % (key, v) if isinstance(v, str) else "%s %d\n" % (key, v))
    return path


with tempfile.TemporaryDirectory() as tmp:
    p = lambda n: os.path.join(tmp, n)  # noqa: E731
    a, b = snapshot(p("a"), "5.10.0", False, False), snapshot(p("b"), "5.10.0", True, False)
    r = run(["validate", "--compare", a, b], check=False)
    check_eq(r.returncode, 3, "old kernel: exit status of a failed check")
    check("seed 000" in r.stdout and "fail  cg1-stat-vs-usage" in r.stdout,
          "old kernel: the table names the failed check and seed 000")
    check(r.stdout.rstrip().endswith("FAIL - this VM's accounting sources disagree"),
          "old kernel: verdict line")
    r = run(["validate", "--compare", a, b, "--format", "json"], check=False)
    check_eq(r.returncode, 3, "old kernel, json: exit status")
    rep = json.loads(r.stdout)
    ids = {c["id"]: c for c in rep["checks"]}
    check_eq(ids["cg1-stat-vs-usage"]["status"], "fail", "json: cpuacct.stat check")
    check_close(ids["cg1-stat-vs-usage"]["rhs_s"] - ids["cg1-stat-vs-usage"]["lhs_s"], 10.0,
                0.001, "json: the gap is the 10 s of guest time")
    check_eq(ids["cg1-usage-vs-threads"]["status"], "pass", "json: usage = threads")
    check_close(rep["interval_s"], 10.0, 1e-9, "json: interval")
    check_eq(rep["verdict"], "fail", "json: verdict")

    a, b = snapshot(p("c"), "6.1.0", False, True), snapshot(p("d"), "6.1.0", True, True)
    r = run(["validate", "--compare", a, b, "-q"], check=False)
    check_eq(r.returncode, 0, "new kernel: exit status")
    check("0 fail" in r.stdout, "new kernel: no failed check")

    other = snapshot(p("e"), "6.1.0", True, True, pid=11)
    for args, words in (([a, other], ["same VM"]),
                        ([b, a], ["not later"]),
                        ([a, p("missing")], ["missing"]),
                        # its first two lines are comments: line 3 is the first that is not
                        ([a, __file__], [os.path.basename(__file__), "line 3"])):
        r = run(["validate", "--compare"] + args, check=False)
        check_eq(r.returncode, 1, "compare %s: exit status" % words[0])
        lines = r.stderr.strip().splitlines()
        check(len(lines) == 1 and all(w in lines[0] for w in words),
              "compare: one line naming %s: %r" % (words, r.stderr))
finish()
