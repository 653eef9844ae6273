#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""`vmscope export perfetto`: a timeline in Perfetto's legacy JSON (Chrome trace-event)
format, checked against the format's documented rules and against ground truth.

Every output must parse, be one object with a "traceEvents" array, and follow the rules
of each event kind: "X" slices have ph, name, pid, tid, a ts and a dur >= 0 (us); "M"
metadata name every pid and every (pid, tid) the other events use (process_name,
thread_name, *_sort_index with args.name / args.sort_index); "C" counters have numeric
args. Then, on generated traces (tests/tools/gentrace, VMX and SVM, with --truth): per vCPU
thread, the slice durations per state add up to the truth's time in that state, to the
nanosecond (ts and dur have 3 decimals: exact ns); slices of one vCPU track never
overlap; each host CPU's track holds exactly the on-CPU slices that name that CPU; the
exit-rate counter integrates (rate x 10 ms) to the VM's kvm_exit records; processes and
threads carry the VM names and vCPU indices of the truth; a --from/--to window clips
every event and gives report vcpu's numbers for the same window. On the lab's real
KVM-PVM trace (skipped when ../shared/data/kvm-lab is missing): the same rules, the state
sums equal `vmscope report vcpu -f json`, and the counter (named for what it counts, as
there is no kvm_exit) integrates to the kvm_userspace_exit + kvm_mmio + kvm_pio records
that `vmscope report exits -f json` counts. And the errors: a missing file is exit 1 with
one line naming it, a damaged file exit 1 with valid JSON of what was read, a wrong
command line exit 2."""
import json
import os
import subprocess
import sys
import tempfile
from collections import defaultdict
from decimal import Decimal

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from testlib import *  # noqa: E402,F403

gentrace = sys.argv[2] if len(sys.argv) > 2 else None
LAB = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data", "kvm-lab")
STATES = ["guest", "hypervisor", "vmm", "running", "preempted", "waiting", "idle", "blocked",
          "unknown"]
ON_CPU = {"guest", "hypervisor", "vmm", "running"}
META = {"process_name": "name", "thread_name": "name", "process_sort_index": "sort_index",
        "thread_sort_index": "sort_index"}
BIN_S = Decimal("0.01")


def ns(us):
    """A ts or dur (us, parsed as Decimal) in ns: exact, as they carry 3 decimals."""
    return int(us * 1000)


def export(path, *args, expect=0):
    """Run the export into a temporary file; (process, parsed document or None)."""
    out = path + ".json"
    if os.path.exists(out):
        os.unlink(out)
    p = run(["export", "perfetto", "-q", path, "-o", out] + list(args), check=False, timeout=300)
    check_eq(p.returncode, expect, "export %s %s: exit status (stderr %r)"
             % (os.path.basename(path), " ".join(args), p.stderr))
    doc = None
    if os.path.exists(out):
        text = open(out).read()
        try:
            doc = json.loads(text, parse_float=Decimal)
        except ValueError as e:
            check(False, "export %s: the output is JSON (%s)" % (os.path.basename(path), e))
        os.unlink(out)
    return p, doc


class Timeline:
    """The events of an export, checked against the format's rules and sorted by track."""

    def __init__(self, doc, what):
        self.what = what
        self.procs = {}          # pid -> process name
        self.threads = {}        # (pid, tid) -> thread name
        self.slices = defaultdict(list)    # (pid, tid) -> [(ts_ns, dur_ns, name, args)]
        self.counters = defaultdict(list)  # pid -> [(ts_ns, name, args)]
        self.rules(doc)

    def rules(self, doc):
        w = self.what
        if not check(isinstance(doc, dict) and isinstance(doc.get("traceEvents"), list),
                     w + ": a top-level object with a traceEvents array"):
            return
        check(doc.get("displayTimeUnit") in ("ms", "ns"), w + ": displayTimeUnit is ms or ns")
        bad = defaultdict(int)
        used_pids, used_threads = set(), set()
        for ev in doc["traceEvents"]:
            ph = ev.get("ph")
            if ph not in ("X", "M", "C"):
                bad["ph %r" % ph] += 1
                continue
            for k, t in (("name", str), ("pid", int), ("tid", int)):
                if not isinstance(ev.get(k), t) or isinstance(ev.get(k), bool):
                    bad["%s event without a %s %s" % (ph, t.__name__, k)] += 1
            if ph != "M" and not isinstance(ev.get("ts"), (int, Decimal)):
                bad["%s event without a numeric ts" % ph] += 1
                continue
            if ph == "X":
                d = ev.get("dur")
                if not isinstance(d, (int, Decimal)) or d < 0:
                    bad["X event without a dur >= 0"] += 1
                    continue
                if not isinstance(ev.get("args", {}), dict):
                    bad["X event with args not an object"] += 1
                key = (ev["pid"], ev["tid"])
                used_pids.add(ev["pid"])
                used_threads.add(key)
                self.slices[key].append((ns(ev["ts"]), ns(d), ev["name"], ev.get("args", {})))
            elif ph == "C":
                a = ev.get("args")
                if not isinstance(a, dict) or not a or not all(
                        isinstance(v, (int, Decimal)) and not isinstance(v, bool)
                        for v in a.values()):
                    bad["C event without numeric args"] += 1
                    continue
                used_pids.add(ev["pid"])
                self.counters[ev["pid"]].append((ns(ev["ts"]), ev["name"], a))
            else:
                key = META.get(ev["name"])
                a = ev.get("args")
                if key is None or not isinstance(a, dict):
                    bad["M event %r" % ev["name"]] += 1
                    continue
                v = a.get(key)
                if not (isinstance(v, str) if key == "name" else isinstance(v, int)):
                    bad["M event %s without args.%s" % (ev["name"], key)] += 1
                elif ev["name"] == "process_name":
                    self.procs[ev["pid"]] = v
                elif ev["name"] == "thread_name":
                    self.threads[(ev["pid"], ev["tid"])] = v
        check_eq(dict(bad), {}, w + ": events that break the format's rules")
        check_eq(sorted(used_pids - set(self.procs)), [], w + ": pids without a process_name")
        check_eq(sorted(used_threads - set(self.threads)), [],
                 w + ": (pid, tid) without a thread_name")
        self.host = [p for p, n in self.procs.items() if n == "Host CPUs"]
        check_eq(len(self.host), 1, w + ": one process \"Host CPUs\"")
        self.host = self.host[0] if self.host else None

    def vcpu_tracks(self):
        """{tid: [(ts, dur, state, args)]} of the vCPU threads, in time order."""
        return {k[1]: sorted(v) for k, v in self.slices.items() if k[0] != self.host}

    def cpu_tracks(self):
        """{cpu: [(ts, dur, label, args)]} from the tracks named "CPU n"."""
        out = {}
        for (pid, tid), v in self.slices.items():
            if pid == self.host:
                name = self.threads.get((pid, tid), "")
                if check(name.startswith("CPU "), self.what + ": host track named CPU n: %r" % name):
                    out[int(name[4:])] = sorted(v)
        return out

    def check_tracks(self, overlap_cpus=False):
        """No overlap on a vCPU track; each CPU track holds that CPU's on-CPU slices."""
        w = self.what
        per_cpu = defaultdict(int)
        for tid, sl in self.vcpu_tracks().items():
            over = sum(1 for a, b in zip(sl, sl[1:]) if b[0] < a[0] + a[1])
            check_eq(over, 0, "%s tid %d: overlapping slices" % (w, tid))
            check_eq(sorted(set(s[2] for s in sl) - set(STATES)), [],
                     "%s tid %d: slices named by state" % (w, tid))
            for ts, d, st, a in sl:
                if st in ON_CPU:
                    per_cpu[a.get("cpu")] += d
        cpus = self.cpu_tracks()
        got = {c: sum(s[1] for s in sl) for c, sl in cpus.items()}
        check_eq(got, dict(per_cpu), w + ": each host CPU track's time (ns) = its on-CPU slices")
        if not overlap_cpus:
            for c, sl in cpus.items():
                over = sum(1 for a, b in zip(sl, sl[1:]) if b[0] < a[0] + a[1])
                check_eq(over, 0, "%s CPU %d: overlapping slices" % (w, c))

    def state_ns(self):
        """{tid: {state: ns}}"""
        out = {}
        for tid, sl in self.vcpu_tracks().items():
            d = defaultdict(int)
            for ts, dur, st, a in sl:
                d[st] += dur
            out[tid] = d
        return out

    def rate(self, pid):
        """The counter's integral (records) and its names, for process pid."""
        total, names = Decimal(0), set()
        for ts, name, a in self.counters.get(pid, []):
            names.add(name)
            total += sum(a.values()) * BIN_S
        return total, names

    def pid_of(self, tid):
        return next((p for (p, t) in self.slices if t == tid and p != self.host), None)


def vcpu_report(path, *args):
    return json.loads(run(["report", "vcpu", "-q", "-f", "json"] + list(args) + [path]).stdout)


def generated(tmp):
    if not gentrace or not os.access(gentrace, os.X_OK):
        print("SKIP part: no gentrace binary given")
        return
    scenarios = [("vmx", 3, ["--vms", "2", "--vcpus", "2", "--cpus", "2"]),
                 ("svm", 5, ["--vms", "3", "--vcpus", "2", "--cpus", "4"])]
    for vendor, seed, shape in scenarios:
        what = "%s seed %d" % (vendor, seed)
        dat, tj = os.path.join(tmp, "t.dat"), os.path.join(tmp, "t.json")
        subprocess.run([gentrace, "-o", dat, "--truth", tj, "--vendor", vendor, "--seed", str(seed),
                        "--events-total", "150000", "--quiet"] + shape, check=True)
        truth = json.load(open(tj))
        p, doc = export(dat)
        if doc is None:
            continue
        tl = Timeline(doc, what)
        check_eq(doc.get("otherData", {}).get("kvm_entry_exit"), True, what + ": kvm_entry/kvm_exit seen")
        tl.check_tracks()
        got = tl.state_ns()
        threads = truth["states"]["threads"]
        check_eq(sorted(got), sorted(t["tid"] for t in threads), what + ": a track per vCPU thread")
        for t in threads:
            tw = "%s tid %d" % (what, t["tid"])
            g = got.get(t["tid"], {})
            for s in STATES:
                check_eq(g.get(s, 0), t.get(s + "_ns", 0), tw + ": ns in " + s)
        # names: the VM's process, "vCPU n (tid T)"
        vm_of = {}
        for vm in truth["vms"]:
            for v in vm["vcpus"]:
                vm_of[v["tid"]] = vm["name"]
                pid = tl.pid_of(v["tid"])
                check_eq(tl.procs.get(pid), vm["name"], "%s tid %d: its process is its VM" % (what, v["tid"]))
                check_eq(tl.threads.get((pid, v["tid"])), "vCPU %d (tid %d)" % (v["vcpu"], v["tid"]),
                         "%s tid %d: its track's name" % (what, v["tid"]))
        labels = set(s[2] for sl in tl.cpu_tracks().values() for s in sl)
        want = set("%s vCPU %d" % (vm["name"], v["vcpu"]) for vm in truth["vms"] for v in vm["vcpus"])
        check_eq(labels, want, what + ": host CPU slices are named VM vCPU n")
        # the exit rate: per VM, the integral is its kvm_exit records
        exits = defaultdict(int)
        for key in ("exits", "unfinished", "before_first_entry"):
            for e in truth[key]:
                exits[vm_of[e["tid"]]] += e["count"]
        check_eq(sum(exits.values()), truth["events"]["kvm_exit"], what + ": truth's kvm_exit records")
        for vm in truth["vms"]:
            pid = tl.pid_of(vm["vcpus"][0]["tid"])
            total, names = tl.rate(pid)
            check_eq(names, {"exits/s"}, "%s %s: the counter counts kvm_exit" % (what, vm["name"]))
            check_eq(total, exits[vm["name"]], "%s %s: exit-rate integral = kvm_exit records"
                     % (what, vm["name"]))
        # a window: every event inside it, the numbers of report vcpu for the same window
        span = truth["states"]["end_ts"] - truth["states"]["first_ts"]
        frm, to = "%.9f" % (span / 4e9), "%.9f" % (span / 2e9)
        p, doc = export(dat, "--from", frm, "--to", to)
        if doc is None:
            continue
        tw = Timeline(doc, what + " window")
        tw.check_tracks()
        lo, hi = int(Decimal(frm) * 10**9), int(Decimal(to) * 10**9)
        outside = [s for sl in tw.slices.values() for s in sl if s[0] < lo or s[0] + s[1] > hi]
        outside += [c for cl in tw.counters.values() for c in cl if not lo <= c[0] <= hi]
        check_eq(outside[:3], [], what + ": --from/--to: events outside the window")
        rep = {r["tid"]: r for r in vcpu_report(dat, "--from", frm, "--to", to)["rows"]}
        wg = tw.state_ns()
        for tid, r in rep.items():
            g = wg.get(tid, {})
            check_eq({s: g.get(s, 0) for s in STATES}, {s: r[s + "_ns"] for s in STATES},
                     "%s tid %d: the window's states = report vcpu --from --to" % (what, tid))
    # to standard output
    p = run(["export", "perfetto", "-q", dat, "-o", "-"])
    check(json.loads(p.stdout)["traceEvents"], "-o -: the JSON on standard output")


def lab(tmp):
    dat = os.path.join(LAB, "run2-labos-kvm", "host-trace.dat")
    if not os.path.exists(dat):
        print("SKIP part: %s is missing (../shared/data/kvm-lab is not beside the repo)" % dat)
        return
    what = "run2-labos-kvm"
    # the export's output goes to tmp, not beside the read-only trace
    link = os.path.join(tmp, "run2.dat")
    os.symlink(os.path.abspath(dat), link)
    p, doc = export(link)
    if doc is None:
        return
    tl = Timeline(doc, what)
    check_eq(doc.get("otherData", {}).get("kvm_entry_exit"), False, what + ": no kvm_entry/kvm_exit (KVM-PVM)")
    # inferred switch-ins may put two threads on one CPU for a while: no overlap check there
    tl.check_tracks(overlap_cpus=True)
    got = tl.state_ns()
    rep = vcpu_report(dat)
    check_eq(sorted(got), sorted(r["tid"] for r in rep["rows"]), what + ": a track per vCPU thread")
    for r in rep["rows"]:
        g = got.get(r["tid"], {})
        check_eq({s: g.get(s, 0) for s in STATES}, {s: r[s + "_ns"] for s in STATES},
                 "%s tid %d: ns per state = report vcpu" % (what, r["tid"]))
    # no kvm_exit: the counter counts the exits the trace shows
    seen = 0
    for ev in ("userspace", "mmio", "ioport"):
        seen += json.loads(run(["report", "exits", "-q", "-f", "json", "-e", ev, dat]).stdout)["summary"]["events"]
    total, names = Decimal(0), set()
    for pid in tl.counters:
        t, n = tl.rate(pid)
        total += t
        names |= n
    check_eq(names, {"kvm exits seen/s"}, what + ": the counter says what it counts")
    check_eq(total, seen, what + ": counter integral = kvm_userspace_exit + kvm_mmio + kvm_pio records")
    print("%s: %d events, %d vCPU tracks, %d CPU tracks, %d exits seen"
          % (what, len(doc["traceEvents"]), len(got), len(tl.cpu_tracks()), seen))


def errors(tmp):
    missing = os.path.join(tmp, "no-such.dat")
    out = os.path.join(tmp, "out.json")
    p = run(["export", "perfetto", missing, "-o", out], check=False)
    check_eq(p.returncode, 1, "a missing file: exit 1")
    lines = p.stderr.splitlines()
    check(len(lines) == 1 and missing in lines[0], "a missing file: one line naming it: %r" % p.stderr)
    check(not os.path.exists(out), "a missing file: no output written")
    for args, name in ((["perfetto", "--no-such-option", "x.dat", "-o", out], "--no-such-option"),
                       (["svg", "x.dat", "-o", out], "svg"),
                       (["perfetto", "x.dat"], "--output"),
                       (["perfetto", "--from", "soon", "x.dat", "-o", out], "--from"),
                       (["perfetto", "--from", "2", "--to", "1", "x.dat", "-o", out], "--to"),
                       ([], "format")):
        p = run(["export"] + args, check=False)
        check(p.returncode == 2 and len(p.stderr.splitlines()) == 1 and name in p.stderr,
              "vmscope export %s: exit 2, one line naming %s: %d %r" % (" ".join(args), name, p.returncode, p.stderr))
    if not gentrace or not os.access(gentrace, os.X_OK):
        return
    # a damaged file: exit 1, and what was read before the damage, as valid JSON
    dat = os.path.join(tmp, "d.dat")
    subprocess.run([gentrace, "-o", dat, "--vms", "1", "--vcpus", "2", "--exits", "3000", "--seed", "21",
                    "--quiet"], check=True)
    data = open(dat, "rb").read()
    cut = os.path.join(tmp, "cut.dat")
    open(cut, "wb").write(data[:int(len(data) * 0.8)])
    p, doc = export(cut, expect=1)
    lines = p.stderr.splitlines()
    check(len(lines) == 1 and "cut.dat" in lines[0], "a damaged file: one line naming it: %r" % p.stderr)
    if check(doc is not None, "a damaged file: the output is valid JSON"):
        tl = Timeline(doc, "damaged")
        check(len(tl.vcpu_tracks()) == 2, "a damaged file: the slices read before the damage")
        check("error" in doc.get("otherData", {}), "a damaged file: the output says what went wrong")


with tempfile.TemporaryDirectory() as tmp:
    generated(tmp)
    lab(tmp)
    errors(tmp)
finish()
