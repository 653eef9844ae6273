# SPDX-License-Identifier: GPL-2.0-or-later
"""gentrace's files against the real peers, and gentrace's truth against its files.

For a VMX and an SVM scenario, both with lost-events windows, gentrace writes the same
trace as v6, v7 uncompressed, v7 zstd and v7 zlib (one seed: the same pages in four
containers). Then:
 - trace-cmd report -R reads the v6 file without a word on stderr (the GUEST options and
   vmscope's option 22093 included); its events per type and per CPU, and its
   "EVENTS DROPPED" lines, equal the truth's "events", "per_cpu" and "lost";
 - from that report alone, the exit latencies (perf kvm stat's pairing: kvm_exit to the
   next kvm_entry of the same thread), the unfinished exits, the entries without exits
   and the mmio / pio / msr / userspace-exit counts are computed again and must equal the
   truth exactly, percentiles included;
 - the report is consistent with a real scheduler: events in time order on each CPU,
   every event emitted by the task that sched_switch made current on its CPU, a thread
   current on one CPU at a time, a vCPU moving to another CPU only after a
   sched_migrate_task, each kworker on its own CPU;
 - the v7 files (uncompressed and zstd) report byte for byte like the v6 file; every v7
   file passes an independent structural check (tests/trace/datfile.py) and, rewritten as
   v6 by that code (decompressing zlib, which this trace-cmd cannot), reports the same;
 - trace-cmd report --stat and trace-cmd dump see each CPU's data (offsets page-aligned,
   sizes of the truth's page counts), the CPU count, the GUEST options with the truth's
   thread ids, the vmscope option with its size;
 - trace-cmd convert --file-version 7 --compression zstd of the v6 file reports the same;
 - gentrace is deterministic for a seed, and refuses bad options without leaving a file.
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
sys.path.insert(0, HERE)
import testlib  # noqa: E402
from testlib import check, check_eq  # noqa: E402
import datfile  # noqa: E402

GENTRACE = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("GENTRACE")
if not GENTRACE:
    print("usage: test_gentrace.py PATH-TO-GENTRACE")
    sys.exit(2)
if not shutil.which("trace-cmd"):
    testlib.skip("trace-cmd is not installed (apt-get install trace-cmd)")

SCENARIOS = [
    ("vmx", ["--vendor", "vmx", "--vms", "2", "--vcpus", "2", "--cpus", "2",
             "--exits", "1500", "--lost", "3", "--seed", "7"]),
    ("svm", ["--vendor", "svm", "--vms", "1", "--vcpus", "3", "--cpus", "4",
             "--exits", "1500", "--lost", "2", "--seed", "11"]),
]
CONTAINERS = [("v6", ["--dat-version", "6"]),
              ("v7-none", ["--dat-version", "7", "--compression", "none"]),
              ("v7-zstd", ["--dat-version", "7", "--compression", "zstd"]),
              ("v7-zlib", ["--dat-version", "7", "--compression", "zlib"])]
META_OPTION = 22093  # VMS_DAT_OPTION_META

LINE = re.compile(r"^\s*(.*)-(\d+)\s+\[(\d+)\]\s+(\d+)\.(\d{9}):\s+(\w+):\s*(.*)$")
DROPPED = re.compile(r"^CPU:(\d+) \[(\d+) EVENTS DROPPED\]$")
FIELD = re.compile(r"(\w+)=(.*?)(?= \w+=|$)")


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)


def gentrace(out, args):
    p = run([GENTRACE, "-q", "-o", out, "--truth", out + ".json"] + args)
    if p.returncode:
        print("gentrace failed: %s\n%s" % (" ".join(args), p.stderr))
        sys.exit(1)
    with open(out + ".json") as f:
        return json.load(f)


def report(path, extra=()):
    p = run(["trace-cmd", "report", "-R", "-t", "-i", path] + list(extra))
    return p.returncode, p.stdout, p.stderr


def value(field, text):
    if field == "ecx":  # printed with %x, no prefix
        return int(text, 16)
    return int(text, 16) if text.startswith("0x") else int(text, 10)


def parse_report(text):
    """(events, drops): events as dicts in report order, drops as (cpu, count)."""
    events, drops = [], []
    for line in text.splitlines():
        m = DROPPED.match(line)
        if m:
            drops.append((int(m.group(1)), int(m.group(2)), len(events)))
            continue
        m = LINE.match(line)
        if not m:
            continue
        # "tid": the common pid of the emitting task (fields may have a "pid" of their own)
        ev = {"comm": m.group(1), "tid": int(m.group(2)), "cpu": int(m.group(3)),
              "ts": int(m.group(4)) * 10**9 + int(m.group(5)), "name": m.group(6)}
        for k, v in FIELD.findall(m.group(7)):
            ev[k] = v if k.endswith("comm") else value(k, v)
        events.append(ev)
    return events, drops


def nearest_rank(sorted_vals, p):
    rank = (p * len(sorted_vals) + 99) // 100
    return sorted_vals[max(rank, 1) - 1]


def check_truth(name, truth, events, drops):
    """The truth against what trace-cmd read, recomputed independently."""
    counts = collections.Counter(e["name"] for e in events)
    for ev, n in truth["events"].items():
        check_eq(counts.get(ev, 0), n, "%s: %s events in the report" % (name, ev))
    check_eq(sum(counts.values()), truth["events_written"], "%s: events in the report" % name)
    percpu = collections.Counter(e["cpu"] for e in events)
    for row in truth["per_cpu"]:
        check_eq(percpu.get(row["cpu"], 0), row["events"], "%s: events on CPU %d"
                 % (name, row["cpu"]))
        ts = [e["ts"] for e in events if e["cpu"] == row["cpu"]]
        if ts:
            check_eq((ts[0], ts[-1]), (row["first_ts"], row["last_ts"]),
                     "%s: first and last timestamp of CPU %d" % (name, row["cpu"]))
    check_eq(sorted((c, n) for c, n, _ in drops),
             sorted((w["cpu"], w["events"]) for w in truth["lost"]),
             "%s: EVENTS DROPPED lines (cpu, count)" % name)
    check_eq(len(truth["lost"]), truth["scenario"]["lost"], "%s: lost windows" % name)
    for w in truth["lost"]:
        # the drop is reported on the first event of the CPU after the window
        after = [e["ts"] for e in events if e["cpu"] == w["cpu"] and e["ts"] > w["to_ts"]]
        before = [e["ts"] for e in events if e["cpu"] == w["cpu"] and e["ts"] < w["from_ts"]]
        check(not after or not before or before[-1] <= w["from_ts"] <= w["to_ts"] <= after[0],
              "%s: lost window %r between the CPU's events" % (name, w))

    # exits, paired as perf kvm stat does: from a thread's first kvm_entry on
    pending, lat, known = {}, collections.defaultdict(list), set()
    unfinished, orphans, before = collections.Counter(), collections.Counter(), collections.Counter()
    mmio, pio, msr, uexit = (collections.Counter() for _ in range(4))
    mmio_type = {0: "unsatisfied-read", 1: "read", 2: "write"}
    for e in events:
        n, tid = e["name"], e["tid"]
        if n == "kvm_exit":
            check_eq(e["isa"], truth["isa"], "%s: kvm_exit isa" % name)
            if tid not in known:
                before[(tid, e["exit_reason"])] += 1
                continue
            if tid in pending:
                unfinished[(tid, pending[tid][1])] += 1
            pending[tid] = (e["ts"], e["exit_reason"])
        elif n == "kvm_entry":
            known.add(tid)
            if tid in pending:
                ts, reason = pending.pop(tid)
                lat[(tid, reason)].append(e["ts"] - ts)
            else:
                orphans[tid] += 1
        elif n == "kvm_mmio":
            mmio[(tid, mmio_type[e["type"]], e["gpa"])] += 1
        elif n == "kvm_pio":
            pio[(tid, e["port"], "write" if e["rw"] else "read")] += 1
        elif n == "kvm_msr":
            msr[(tid, e["ecx"], "write" if e["write"] else "read")] += 1
        elif n == "kvm_userspace_exit":
            uexit[(tid, e["reason"])] += 1
    for tid, (_, reason) in pending.items():
        unfinished[(tid, reason)] += 1

    rows = {(r["tid"], r["reason"]): r for r in truth["exits"]}
    check_eq(sorted(rows), sorted(lat), "%s: (thread, reason) exit rows" % name)
    for key, vals in lat.items():
        r = rows.get(key)
        if not r:
            continue
        vals.sort()
        got = {"count": len(vals), "total_ns": sum(vals), "min_ns": vals[0],
               "max_ns": vals[-1], "p50_ns": nearest_rank(vals, 50),
               "p95_ns": nearest_rank(vals, 95), "p99_ns": nearest_rank(vals, 99)}
        want = {k: r.get(k) for k in got}
        check_eq(got, want, "%s: exit row %r" % (name, key))
    check_eq({(r["tid"], r["reason"]): r["count"] for r in truth["unfinished"]},
             dict(unfinished), "%s: unfinished exits" % name)
    check_eq({(r["tid"], r["reason"]): r["count"] for r in truth["before_first_entry"]},
             dict(before), "%s: exits before their thread's first kvm_entry" % name)
    check_eq({r["tid"]: r["count"] for r in truth["orphan_entries"]}, dict(orphans),
             "%s: kvm_entry without kvm_exit" % name)
    check_eq({(r["tid"], r["type"], r["gpa"]): r["count"] for r in truth["mmio"]}, dict(mmio),
             "%s: mmio rows" % name)
    check_eq({(r["tid"], r["port"], r["rw"]): r["count"] for r in truth["pio"]}, dict(pio),
             "%s: pio rows" % name)
    check_eq({(r["tid"], r["index"], r["rw"]): r["count"] for r in truth["msr"]}, dict(msr),
             "%s: msr rows" % name)
    check_eq({(r["tid"], r["reason"]): r["count"] for r in truth["userspace_exits"]},
             dict(uexit), "%s: userspace exit rows" % name)
    tids = {v["tid"] for vm in truth["vms"] for v in vm["vcpus"]}
    check(len(tids) == sum(len(vm["vcpus"]) for vm in truth["vms"]), "%s: tids unique" % name)
    check({t for t, _ in lat} <= tids, "%s: exits only on vCPU threads" % name)


def check_scheduling(name, truth, events):
    """Time order per CPU; every event from the CPU's current task; one CPU per thread;
    a vCPU's events change CPU only after a sched_migrate_task of it. Around a lost window
    the state of its CPU is unknown until the next sched_switch there."""
    last = {}
    for e in events:
        check(e["ts"] >= last.get(e["cpu"], 0), "%s: time goes back on CPU %d at %d"
              % (name, e["cpu"], e["ts"]))
        last[e["cpu"]] = e["ts"]
    windows = sorted((w["from_ts"], w["to_ts"], w["cpu"]) for w in truth["lost"])
    vcpus = {v["tid"] for vm in truth["vms"] for v in vm["vcpus"]}
    current, where, bad = {}, {}, []
    seen, moved = {}, {}  # vCPU -> (cpu, ts) of its last event; -> dest of a migration
    i = wi = 0
    while i < len(events):
        ts = events[i]["ts"]
        j = i
        while j < len(events) and events[j]["ts"] == ts:
            j += 1
        group = events[i:j]
        while wi < len(windows) and windows[wi][0] <= ts:
            cpu = windows[wi][2]
            gone = current.pop(cpu, None)
            if where.get(gone) == cpu:
                del where[gone]
            wi += 1
        for e in group:  # switch-outs of this instant first
            cpu = e["cpu"]
            if cpu in current and e["tid"] != current[cpu]:
                bad.append("event of %d on CPU %d running %d at %d"
                           % (e["tid"], cpu, current[cpu], ts))
            if e["name"] == "sched_switch":
                current[cpu] = e["next_pid"]
            if e["name"] == "sched_migrate_task":
                moved[e["pid"]] = e["dest_cpu"]
            if e["comm"].startswith("kworker/"):
                check_eq(cpu, int(e["comm"][8:].split(":")[0]), "%s: kworker on its own CPU"
                         % name)
            if e["tid"] in vcpus:
                prev = seen.get(e["tid"])
                hidden = prev and any(f <= ts and t >= prev[1] for f, t, _ in windows)
                if prev and prev[0] != cpu and moved.get(e["tid"]) != cpu and not hidden:
                    bad.append("vCPU %d moved from CPU %d to %d at %d without "
                               "sched_migrate_task" % (e["tid"], prev[0], cpu, ts))
                seen[e["tid"]] = (cpu, ts)
                moved.pop(e["tid"], None)
                if e["name"] != "sched_switch":
                    where.setdefault(e["tid"], cpu)  # running since before its first switch
            if e["name"] == "sched_switch" and where.get(e["prev_pid"]) == cpu:
                del where[e["prev_pid"]]
        for e in group:  # then switch-ins
            if e["name"] != "sched_switch" or not e["next_pid"]:
                continue
            other = where.get(e["next_pid"])
            if other is not None and other != e["cpu"]:
                bad.append("thread %d current on CPUs %d and %d at %d"
                           % (e["next_pid"], other, e["cpu"], ts))
            where[e["next_pid"]] = e["cpu"]
        i = j
    check(not bad, "%s: scheduling consistent (%d problems, first: %s)"
          % (name, len(bad), bad[:3]))


def check_dump(name, path, truth, container):
    p = run(["trace-cmd", "dump", "--summary", "--options", "--flyrecord", "-i", path])
    check_eq(p.returncode, 0, "%s: trace-cmd dump exit code (%s)" % (name, p.stderr.strip()))
    out = p.stdout
    for vm in truth["vms"]:
        check("%s [Guest name]" % vm["name"] in out, "%s: GUEST option of %s" % (name, vm["name"]))
        for v in vm["vcpus"]:
            check(re.search(r"^\s*%d %d \[guest cpu, host pid\]" % (v["vcpu"], v["tid"]), out,
                            re.M) is not None,
                  "%s: GUEST %s vcpu %d -> %d" % (name, vm["name"], v["vcpu"], v["tid"]))
    m = re.search(r"^ %d (\d+)\t\[Unknown option" % META_OPTION, out, re.M)
    check(m is not None, "%s: vmscope option listed by dump" % name)
    meta = "vendor=%s\nkvm=%s\ngenerator=gentrace\nseed=%d\n" % (
        "AuthenticAMD" if truth["vendor"] == "svm" else "GenuineIntel", truth["vendor"],
        truth["scenario"]["seed"])
    if m:
        check_eq(int(m.group(1)), len(meta) + 1, "%s: vmscope option size" % name)
    check(re.search(r"\[Option CPUCOUNT, 4 bytes\]\n%d\n" % truth["cpus"], out) is not None,
          "%s: CPUCOUNT option" % name)
    pages = {r["cpu"]: r["pages"] for r in truth["per_cpu"]}
    if container == "v6":
        rows = re.findall(r"^\s+(\d+)\s+(\d+)\t\[offset, size of cpu (\d+)\]", out, re.M)
        check_eq(len(rows), truth["cpus"], "%s: flyrecord rows" % name)
        for off, size, cpu in rows:
            check_eq(int(size), pages[int(cpu)] * 4096, "%s: CPU %s data size" % (name, cpu))
            check(int(off) % 4096 == 0, "%s: CPU %s data page-aligned" % (name, cpu))
    else:
        rows = re.findall(r"^\s+(\d+) (\d+)\t(\d+)\t\[id, data offset and size\]", out, re.M)
        check_eq(sorted(int(c) for c, _, _ in rows),
                 sorted(c for c, n in pages.items() if n), "%s: BUFFER CPUs" % name)
        for cpu, off, _ in rows:
            check(int(off) % 4096 == 0, "%s: CPU %s data page-aligned" % (name, cpu))

    p = run(["trace-cmd", "report", "--stat", "-i", path])
    check_eq(p.returncode, 0, "%s: report --stat exit code" % name)
    for cpu, n in pages.items():
        if not n:
            continue
        m = re.search(r"CPU%d data recorded at offset=0x([0-9a-f]+)\n\s+(\d+) bytes in size"
                      % cpu, p.stdout)
        check(m is not None, "%s: report --stat shows CPU %d" % (name, cpu))
        if m:
            check_eq(int(m.group(2)), n * 4096, "%s: report --stat CPU %d size" % (name, cpu))


def rewrite_check(scen, cont, path, ref):
    """The v7 file, checked and rewritten as v6 by datfile.py, reports like the v6 file."""
    try:
        v6 = path + ".as-v6.dat"
        datfile.to_v6(path, v6)
        rc, out, err = report(v6)
        check_eq((rc, err), (0, ""), "%s %s rewritten as v6: report" % (scen, cont))
        check(out == ref, "%s %s rewritten as v6: same report as v6" % (scen, cont))
    except (datfile.DatError, OSError, subprocess.SubprocessError) as e:
        check(False, "%s %s: structure: %s" % (scen, cont, e))


def main():
    tmp = tempfile.mkdtemp(prefix="vms-gentrace-")
    zlib_ok = "zlib" in run(["trace-cmd", "list", "-c"]).stdout
    try:
        for scen, args in SCENARIOS:
            files, truths = {}, {}
            for cont, cargs in CONTAINERS:
                path = os.path.join(tmp, "%s-%s.dat" % (scen, cont))
                truths[cont] = gentrace(path, args + cargs)
                files[cont] = path
            truth = truths["v6"]
            for cont, t in truths.items():
                a, b = dict(t), dict(truth)
                a.pop("scenario")
                b.pop("scenario")
                check_eq(a, b, "%s: truth of %s equals v6's" % (scen, cont))

            rc, ref, err = report(files["v6"])
            check_eq((rc, err), (0, ""), "%s: trace-cmd report of v6 (exit code, stderr)" % scen)
            events, drops = parse_report(ref)
            check_truth(scen, truth, events, drops)
            check_scheduling(scen, truth, events)
            check_dump(scen, files["v6"], truth, "v6")

            for cont in ("v7-none", "v7-zstd", "v7-zlib"):
                path = files[cont]
                if cont == "v7-zstd" and not shutil.which("zstd"):
                    print("note: no zstd program; %s not rewritten as v6" % cont)
                else:
                    rewrite_check(scen, cont, path, ref)
                if cont == "v7-zlib" and not zlib_ok:
                    print("note: this trace-cmd has no zlib; %s checked through datfile.py"
                          % cont)
                    continue
                rc, out, err = report(path)
                check_eq((rc, err), (0, ""), "%s %s: trace-cmd report" % (scen, cont))
                check(out == ref, "%s %s: same report as v6" % (scen, cont))
                check_dump(scen + " " + cont, path, truth, cont)

            conv = os.path.join(tmp, scen + "-converted.dat")
            p = run(["trace-cmd", "convert", "-i", files["v6"], "-o", conv, "--file-version", "7",
                     "--compression", "zstd"])
            check_eq(p.returncode, 0, "%s: trace-cmd convert (%s)" % (scen, p.stderr.strip()))
            rc, out, err = report(conv)
            check_eq((rc, err), (0, ""), "%s: report of the converted file" % scen)
            check(out == ref, "%s: converted file reports like the v6 file" % scen)

        # One seed, one file; another seed, another file.
        a, b, c = (os.path.join(tmp, n) for n in ("a.dat", "b.dat", "c.dat"))
        gentrace(a, ["--exits", "300", "--lost", "1", "--seed", "5"])
        gentrace(b, ["--exits", "300", "--lost", "1", "--seed", "5"])
        gentrace(c, ["--exits", "300", "--lost", "1", "--seed", "6"])
        with open(a, "rb") as fa, open(b, "rb") as fb, open(c, "rb") as fc:
            da, db, dc = fa.read(), fb.read(), fc.read()
        check(da == db, "gentrace: same seed, same bytes")
        check(da != dc, "gentrace: another seed, another trace")

        # Bad options: an error, and no file.
        bad = os.path.join(tmp, "bad.dat")
        for args in (["--vendor", "arm"], ["--cpus", "0"], ["--compression", "zstd"],
                     ["--dat-version", "8"], ["--formats", os.path.join(tmp, "none")]):
            p = run([GENTRACE, "-q", "-o", bad] + args)
            check(p.returncode != 0, "gentrace %s fails" % " ".join(args))
            check(not os.path.exists(bad), "gentrace %s leaves no file" % " ".join(args))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    testlib.finish()


if __name__ == "__main__":
    main()
