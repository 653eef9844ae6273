#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""`vmscope report --html FILE -o OUT.html`: the numbers behind every chart, and that the
charts are drawn.

1. Generated traces (tests/tools/gentrace: VMX; SVM with lost events): the page is parsed
   with html.parser and the data-* attributes of every mark are checked against the
   generator's truth and vmscope's own JSON reports of the same file: each vCPU's state
   shares (report vcpu, and the truth to the ns), each latency histogram (its buckets sum
   to the reason's samples, the truth's count; the reason's p50/p99 lie in the bucket where
   the cumulative count crosses their rank), exits over time (100 to 200 bins, summing per
   reason to report exits and in all to the truth's kvm_exit count), and the interrupt
   heatmap (its cells sum per vector, per second and per cell to the truth's kvm_inj_virq
   events, and equal report irq --heatmap; report irq's rows equal the truth per thread).
2. Headless Chromium: a screenshot (kept as an artifact, decoded here with zlib and
   struct: a valid PNG with many colours), and --dump-dom of a copy of the page with a
   tiny script appended that writes each chart's getBBox() and rendered mark count on
   <body>: every chart has a size and all its marks.
3. A real KVM-PVM trace (../shared/data/kvm-lab): the charts that the trace allows are
   drawn, and the heatmap's kvm_set_irq count equals report irq's and trace-cmd's.
4. Errors: a missing trace, an unwritable or impossible -o, a damaged trace (a page of
   what came before the damage, and one error line), usage errors; no temporary file is
   left behind and an existing page is never half overwritten.

SKIP (77) when chromium is not installed, after the checks that do not need it."""
import collections
import html.parser
import json
import math
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import testlib  # noqa: E402
from testlib import *  # noqa: E402,F403

gentrace = sys.argv[2] if len(sys.argv) > 2 else None
artifacts = sys.argv[3] if len(sys.argv) > 3 else os.path.join(tempfile.gettempdir(), "vmscope-artifacts")
LAB = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared", "data", "kvm-lab"))
STATES = ["guest", "hypervisor", "vmm", "running", "preempted", "waiting", "idle", "blocked", "unknown"]
CHARTS = ["chart-states", "chart-latency", "chart-timeline", "chart-heatmap"]
chromium = shutil.which("chromium") or shutil.which("chromium-browser")


class Page(html.parser.HTMLParser):
    """Every element as (tag, attrs, id of the chart <svg> it lies in), and the text."""

    def __init__(self, text):
        super().__init__()
        self.elems, self.svg, self.text = [], None, []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "svg":
            self.svg = a.get("id")
        self.elems.append((tag, a, self.svg))

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag == "svg":
            self.svg = None

    def handle_endtag(self, tag):
        if tag == "svg":
            self.svg = None

    def handle_data(self, data):
        self.text.append(data)

    def marks(self, chart, **want):
        """The marks (rect.mark) of @chart whose data-KEY equals each KEY=value of @want."""
        return [a for t, a, s in self.elems
                if s == chart and t == "rect" and "mark" in a.get("class", "").split()
                and all(a.get("data-" + k.replace("_", "-")) == v for k, v in want.items())]

    def find(self, chart, tag, cls=None):
        return [a for t, a, s in self.elems if s == chart and t == tag and (cls is None or a.get("class") == cls)]

    def charts(self):
        return [a["id"] for t, a, s in self.elems if t == "svg" and a.get("class") == "chart"]


def report_json(*args):
    return json.loads(run(["report"] + list(args) + ["-q", "-f", "json"]).stdout)


def make_page(dat, out):
    p = run(["report", "--html", dat, "-o", out, "-q"], check=False)
    check_eq(p.returncode, 0, "%s: report --html exits 0 (stderr %r)" % (dat, p.stderr))
    return Page(open(out, encoding="utf-8").read())


# ---- 1. the data behind each chart ----

def check_states(page, dat, what, truth=None):
    vj = report_json("vcpu", dat)
    rows = {r["tid"]: r for r in vj["rows"]}
    prow = {int(a["data-tid"]): a for a in page.find("chart-states", "g", "row")}
    check_eq(sorted(prow), sorted(rows), what + ": a bar per vCPU thread of report vcpu")
    tstates = {t["tid"]: t for t in truth["states"]["threads"]} if truth and truth.get("states") else {}
    for tid, r in rows.items():
        segs = page.marks("chart-states", tid=str(tid))
        got = {a["data-state"]: int(a["data-ns"]) for a in segs}
        want = {s: r[s + "_ns"] for s in STATES if r[s + "_ns"]}
        check_eq(got, want, "%s tid %d: state ns = report vcpu's" % (what, tid))
        if tid in prow:
            check_eq(int(prow[tid]["data-span"]), r["span_ns"], "%s tid %d: span" % (what, tid))
        for a in segs:
            share = 100.0 * int(a["data-ns"]) / r["span_ns"]
            check_close(float(a["data-share"]), share, 1e-5, "%s tid %d %s: share" % (what, tid, a["data-state"]))
        check_close(sum(float(a["data-share"]) for a in segs), 100.0, 1e-4, "%s tid %d: shares add up to 100 %%" % (what, tid))
        t = tstates.get(tid)
        if t:
            for s in ("guest", "hypervisor", "vmm", "preempted", "waiting", "idle", "blocked"):
                check_eq(got.get(s, 0), t[s + "_ns"], "%s tid %d: %s = the truth" % (what, tid, s))


def check_latency(page, dat, what, truth):
    xj = report_json("exits", dat)
    rows = {r["name"]: r for r in xj["rows"]}
    panels = page.find("chart-latency", "g", "panel")
    timed = sorted((r for r in xj["rows"] if r["samples"]), key=lambda r: (-r["events"], -r["samples"], r["key"]))
    check_eq([p["data-reason"] for p in panels], [r["name"] for r in timed[:6]],
             what + ": a histogram for each of the top 6 reasons by events")
    tcount = collections.Counter()
    for x in truth["exits"]:
        tcount[x["name"]] += x["count"]
    check_eq(sum(tcount.values()) - sum(r["samples"] for r in xj["rows"]), xj["summary"]["not_timed_lost"],
             what + ": the truth's timed exits less the samples are those not timed across lost events")
    for p in panels:
        name = p["data-reason"]
        r = rows[name]
        n = r["samples"]
        check_eq(int(p["data-samples"]), n, "%s %s: samples = report exits'" % (what, name))
        if truth["lost_total"]:
            # an exit whose end may lie in a lost window is not timed (report exits says how many)
            check(n <= tcount[name], "%s %s: samples at most the truth's timed exits" % (what, name))
        else:
            check_eq(n, tcount[name], "%s %s: samples = the truth's timed exits" % (what, name))
        check_eq((int(p["data-p50"]), int(p["data-p99"])), (r["p50_ns"], r["p99_ns"]),
                 "%s %s: p50, p99 = report exits'" % (what, name))
        bars = sorted(((int(b["data-lo"]), int(b["data-hi"]), int(b["data-count"]))
                       for b in page.marks("chart-latency", reason=name)))
        check_eq(sum(c for _, _, c in bars), n, "%s %s: buckets sum to the samples" % (what, name))
        check(all(bars[i][1] <= bars[i + 1][0] for i in range(len(bars) - 1)),
              "%s %s: buckets do not overlap" % (what, name))
        check(bars[0][0] <= r["min_ns"] and r["max_ns"] < bars[-1][1],
              "%s %s: buckets cover [min, max] = [%d, %d]: %r" % (what, name, r["min_ns"], r["max_ns"], bars[:1] + bars[-1:]))
        for pct, key in ((50, "p50_ns"), (99, "p99_ns")):
            rank, cum = math.ceil(pct / 100 * n), 0
            for lo, hi, c in bars:
                if cum < rank <= cum + c:
                    check(lo <= r[key] < hi, "%s %s: %s %d lies in the bucket of rank %d [%d, %d)"
                          % (what, name, key, r[key], rank, lo, hi))
                cum += c


def check_timeline(page, dat, what, truth):
    xj = report_json("exits", dat)
    plot = [a for a in page.find("chart-timeline", "g", "plot")][0]
    bins = int(plot["data-bins"])
    check(100 <= bins <= 200, "%s: %d bins across the trace (100 to 200)" % (what, bins))
    marks = page.marks("chart-timeline")
    total = sum(int(a["data-count"]) for a in marks)
    check_eq(total, xj["summary"]["events"], what + ": exits over time sum to report exits' events")
    check_eq(total, truth["events"]["kvm_exit"], what + ": exits over time sum to the truth's kvm_exit")
    by = collections.Counter()
    for a in marks:
        by[a["data-reason"]] += int(a["data-count"])
        check(0 <= int(a["data-bin"]) < bins, "%s: bin index in range" % what)
    rows = sorted(xj["rows"], key=lambda r: (-r["events"], -r["samples"], r["key"]))
    for r in rows[:7]:
        check_eq(by.get(r["name"], 0), r["events"], "%s %s: exits over time = report exits' events" % (what, r["name"]))
    check_eq(by.get("other", 0), sum(r["events"] for r in rows[7:]), what + ": other = the rest")


def check_heatmap(page, dat, what, truth):
    plot = page.find("chart-heatmap", "g", "plot")[0]
    cells = page.marks("chart-heatmap")
    first_sec = min(c["first_ts"] for c in truth["per_cpu"] if c["events"]) // 10**9
    check_eq(int(plot["data-first-second"]), first_sec, what + ": heatmap second 0 = the trace's first second")
    check_eq(int(plot["data-buckets"]), 50, what + ": 50 sub-second buckets")
    bucket_ms = 1000 // 50
    total = sum(int(c["data-count"]) for c in cells)
    check_eq(total, truth["events"]["kvm_inj_virq"], what + ": heatmap cells sum to the truth's injections")
    check_eq(total, sum(x["count"] for x in truth["injections"]), what + ": truth per thread adds up")
    want_cell, want_vec = collections.Counter(), collections.Counter()
    for x in truth["injection_ms"]:
        vec = "0x%02x" % x["vector"]
        want_cell[(x["second"] - first_sec, x["ms"] // bucket_ms * bucket_ms * 10**6, vec)] += x["count"]
        want_vec[vec] += x["count"]
    got_cell, got_vec = collections.Counter(), collections.Counter()
    for c in cells:
        check_eq(c["data-source"], "inj_virq", what + ": cells from kvm_inj_virq")
        got_cell[(int(c["data-second"]), int(c["data-offset-ns"]), c["data-vector"])] += int(c["data-count"])
        got_vec[c["data-vector"]] += int(c["data-count"])
    check_eq(dict(got_vec), dict(want_vec), what + ": heatmap per vector = the truth")
    check_eq(dict(got_cell), dict(want_cell), what + ": every heatmap cell = the truth's injections in it")
    # the text form of the same numbers
    hj = report_json("irq", "--heatmap", dat)
    text = collections.Counter()
    for c in hj["cells"]:
        text[(c["second"], c["offset_ns"], c["name"])] += c["count"]
    check_eq(dict(text), dict(got_cell), what + ": report irq --heatmap = the page's cells")
    ij = report_json("irq", dat)
    got = {(r["tid"], r["key"]): r["count"] for r in ij["rows"]}
    want = {(x["tid"], x["vector"]): x["count"] for x in truth["injections"]}
    check_eq(got, want, what + ": report irq rows = the truth per thread and vector")
    check_eq(ij["summary"]["heatmap_sources"], ["inj_virq"], what + ": heatmap of kvm_inj_virq")
    span = ij["summary"]["span_ns"]
    for r in ij["rows"]:
        check_close(r["per_s"], r["count"] * 1e9 / span, 1e-9 * r["count"] * 1e9 / span,
                    "%s tid %d: rate = count / span" % (what, r["tid"]))


def generated(tmp):
    if not gentrace or not os.access(gentrace, os.X_OK):
        print("SKIP part: no gentrace binary given")
        return []
    pages = []
    scenarios = [("vmx", 3, ["--vms", "2", "--vcpus", "2", "--cpus", "2", "--exits", "40000"]),
                 ("svm", 5, ["--vms", "1", "--vcpus", "3", "--cpus", "2", "--exits", "15000", "--lost", "4",
                             "--dat-version", "7", "--compression", "zstd"])]
    for vendor, seed, shape in scenarios:
        what = "%s seed %d" % (vendor, seed)
        dat, tj, out = (os.path.join(tmp, "%s.%s" % (vendor, e)) for e in ("dat", "json", "html"))
        subprocess.run([gentrace, "-o", dat, "--truth", tj, "--vendor", vendor, "--seed", str(seed), "--quiet"]
                       + shape, check=True)
        truth = json.load(open(tj))
        page = make_page(dat, out)
        check_eq(sorted(page.charts()), sorted(CHARTS), what + ": the four charts")
        check_states(page, dat, what, truth)
        check_latency(page, dat, what, truth)
        check_timeline(page, dat, what, truth)
        check_heatmap(page, dat, what, truth)
        if truth["lost_total"]:
            check("lost in" in " ".join(page.text), what + ": the header says events were lost")
        pages.append((what, out, dat))
    return pages


# ---- 2. what Chromium draws ----

def png_colours(path):
    """Decode a PNG (8-bit RGB or RGBA, not interlaced) with zlib and struct; return
    (width, height, number of distinct colours)."""
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat, ihdr = 8, [], None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if zlib.crc32(kind + body) != struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])[0]:
            raise ValueError("bad CRC in chunk %r" % kind)
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + n
    w, h, depth, ctype, _, _, interlace = ihdr
    if depth != 8 or ctype not in (2, 6) or interlace:
        raise ValueError("unexpected PNG kind %r" % (ihdr,))
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = w * bpp
    prev = bytearray(stride)
    colours = set()
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if f == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xff
        elif f == 2:
            line = bytearray((a + b) & 0xff for a, b in zip(line, prev))
        elif f == 3:
            for i in range(stride):
                line[i] = (line[i] + ((line[i - bpp] if i >= bpp else 0) + prev[i]) // 2) & 0xff
        elif f == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b, c = prev[i], prev[i - bpp] if i >= bpp else 0
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xff
        if y % 4 == 0:
            colours.update(bytes(line[i:i + 3]) for i in range(0, stride, bpp * 2))
        prev = line
    return w, h, len(colours)


MEASURE = """<script>(function () {
  var r = {};
  document.querySelectorAll('svg.chart').forEach(function (s) {
    var b = s.getBBox(), c = s.getBoundingClientRect();
    r[s.id] = [b.width, b.height, c.width, c.height, s.querySelectorAll('rect.mark').length];
  });
  document.body.setAttribute('data-bbox', JSON.stringify(r));
})();</script>"""


def chromium_run(args, timeout=120):
    return subprocess.run([chromium, "--headless=new", "--no-sandbox", "--disable-gpu",
                           "--user-data-dir=" + tempfile.mkdtemp(prefix="vmscope-chromium-")] + args,
                          capture_output=True, text=True, timeout=timeout)


def drawn(out, what, page, expect):
    """Chromium's rendering of @out: every chart of @expect has a size and all its marks."""
    copy = out + ".measure.html"
    with open(out, encoding="utf-8") as f:
        text = f.read()
    check("<script" not in text, what + ": the page itself has no script")
    check(not re.search(r"""(src|href)=["'](https?:|//)""", text), what + ": no external resource")
    with open(copy, "w", encoding="utf-8") as f:
        f.write(text.replace("</body>", MEASURE + "</body>"))
    p = chromium_run(["--dump-dom", "file://" + os.path.abspath(copy)])
    m = re.search(r'<body data-bbox="([^"]*)"', p.stdout)
    check(m is not None, what + ": --dump-dom shows the measurements (stderr %r)" % p.stderr[-500:])
    if not m:
        return
    boxes = json.loads(html.unescape(m.group(1)))
    check_eq(sorted(boxes), sorted(expect), what + ": the charts Chromium found")
    for cid in expect:
        b = boxes.get(cid)
        if not b:
            continue
        check(b[0] > 100 and b[1] > 50 and b[2] > 100 and b[3] > 50,
              "%s %s: drawn with a size (bbox %r)" % (what, cid, b))
        nmarks = len([a for t, a, s in page.elems if s == cid and t == "rect" and "mark" in a.get("class", "")])
        check_eq(b[4], nmarks, "%s %s: every mark in the DOM Chromium built" % (what, cid))
    os.unlink(copy)


def screenshot(out, png, what):
    os.makedirs(os.path.dirname(png), exist_ok=True)
    if os.path.exists(png):
        os.unlink(png)
    p = chromium_run(["--screenshot=" + png, "--window-size=1280,2400", "file://" + os.path.abspath(out)])
    check(p.returncode == 0 and os.path.exists(png), what + ": chromium wrote a screenshot (%r)" % p.stderr[-300:])
    if not os.path.exists(png):
        return
    try:
        w, h, n = png_colours(png)
    except ValueError as e:
        check(False, "%s: the screenshot is a valid PNG: %s" % (what, e))
        return
    check_eq((w, h), (1280, 2400), what + ": screenshot size")
    check(n >= 50, "%s: the screenshot is not blank (%d colours)" % (what, n))
    print("screenshot: " + os.path.abspath(png))


# ---- 3. a real trace ----

def lab(tmp):
    path = os.path.join(LAB, "run2-labos-kvm", "host-trace.dat")
    if not os.path.exists(path):
        print("SKIP part: the lab traces (../shared/data/kvm-lab) are not beside the repository")
        return None
    what = "lab run2"
    out = os.path.join(tmp, "lab.html")
    page = make_page(path, out)
    check_eq(sorted(page.charts()), sorted(["chart-states", "chart-timeline", "chart-heatmap"]),
             what + ": states, exits over time, heatmap (nothing can be timed on KVM-PVM)")
    check("No exit could be timed" in " ".join(page.text), what + ": says why there is no latency histogram")
    check_states(page, path, what)
    ij = report_json("irq", path)
    set_irq = sum(r["count"] for r in ij["rows"] if r["source"] == "set_irq")
    cells = page.marks("chart-heatmap")
    check(all(c["data-source"] in ("set_irq", "msi_set_irq") for c in cells), what + ": heatmap of raised lines")
    got = sum(int(c["data-count"]) for c in cells if c["data-source"] == "set_irq")
    check(got > 1000, what + ": the heatmap has the PIT's interrupts (%d)" % got)
    check_eq(got, set_irq, what + ": heatmap kvm_set_irq count = report irq's")
    check_eq(got, ij["summary"]["events"]["set_irq"], what + ": = report irq's summary")
    ue = report_json("exits", "-e", "userspace", path)
    tl = sum(int(a["data-count"]) for a in page.marks("chart-timeline"))
    check_eq(tl, ue["summary"]["events"], what + ": exits over time = report exits -e userspace's events")
    if shutil.which("trace-cmd"):
        p = subprocess.run(["trace-cmd", "report", "-i", path], capture_output=True, text=True)
        asserts = len(re.findall(r"kvm_set_irq:\s+gsi \d+ level [1-9]", p.stdout))
        check_eq(got, asserts, what + ": heatmap kvm_set_irq count = trace-cmd report's asserts")
    else:
        print("SKIP part: trace-cmd is not installed, no peer count")
    return (what, out, path)


# ---- 4. errors ----

def errors(tmp):
    v6 = os.path.join(tmp, "err.dat")
    if gentrace and os.access(gentrace, os.X_OK):
        subprocess.run([gentrace, "-o", v6, "--exits", "3000", "--seed", "21", "--quiet"], check=True)
    out = os.path.join(tmp, "err.html")
    old = "<html>an older page</html>\n"
    open(out, "w").write(old)

    def one_line(p, what, rc, *needles):
        check_eq(p.returncode, rc, what + ": exit status")
        lines = [l for l in p.stderr.splitlines() if l.strip()]
        check_eq(len(lines), 1, what + ": one error line (%r)" % lines)
        for n in needles:
            check(bool(lines) and n in lines[0], "%s: the error says %r: %r" % (what, n, lines))

    missing = os.path.join(tmp, "missing.dat")
    one_line(run(["report", "--html", missing, "-o", out], check=False), "a missing trace", 1,
             "missing.dat", "No such file")
    check_eq(open(out).read(), old, "a missing trace: the page at -o is untouched")
    if os.path.exists(v6):
        bad = os.path.join(tmp, "no-such-dir", "x.html")
        one_line(run(["report", "--html", v6, "-o", bad], check=False), "-o in a missing folder", 1,
                 bad, "No such file")
        one_line(run(["report", "--html", v6, "-o", tmp], check=False), "-o a folder", 1, tmp, "Is a directory")
        one_line(run(["report", "--html", v6, "-o", "/proc/vmscope-report.html"], check=False),
                 "-o where no file can be made", 1, "/proc/vmscope-report.html")
        size = os.path.getsize(v6)
        one_line(run(["report", "--html", v6, "-o", v6], check=False), "-o the trace itself", 1,
                 "the trace being read")
        check_eq(os.path.getsize(v6), size, "-o the trace itself: the trace is untouched")
        # damaged: cut inside the CPU data; a page of what came before, and one error
        data = open(v6, "rb").read()
        cut = os.path.join(tmp, "cut.dat")
        open(cut, "wb").write(data[:int(len(data) * 0.8)])
        p = run(["report", "--html", cut, "-o", out, "-q"], check=False)
        one_line(p, "a damaged trace", 1, "cut.dat", "offset")
        page = Page(open(out, encoding="utf-8").read())
        check("The trace is damaged" in " ".join(page.text), "a damaged trace: the page says so")
        check_eq(sorted(page.charts()), sorted(CHARTS), "a damaged trace: the charts of what was read")
        whole = report_json("irq", v6)["summary"]["events"]["inj_virq"]
        got = sum(int(c["data-count"]) for c in page.marks("chart-heatmap"))
        check(0 < got < whole, "a damaged trace: some of the injections (%d of %d)" % (got, whole))
        pj = json.loads(run(["report", "irq", "-q", "-f", "json", cut], check=False).stdout)
        check_eq(got, pj["summary"]["events"]["inj_virq"], "a damaged trace: heatmap = report irq of the same file")
        check("error" in pj, "a damaged trace: report irq's JSON carries the error")
    for args, what in ((["report", "--html", missing], "--html without -o"),
                       (["report", "--html", missing, "-o", out, "--vm", "x"], "--html with --vm"),
                       (["report", "vcpu", missing, "-o", out], "-o without --html"),
                       (["report", "exits", "--heatmap", missing], "--heatmap without irq")):
        p = run(args, check=False)
        check_eq(p.returncode, 2, what + ": a usage error")
    left = [f for f in os.listdir(tmp) if ".tmp-" in f]
    check_eq(left, [], "no temporary page is left behind")


with tempfile.TemporaryDirectory() as tmp:
    pages = generated(tmp)
    real = lab(tmp)
    errors(tmp)
    if failures:
        finish()
    if not chromium:
        print("%d checks passed" % testlib.checks)
        skip("chromium is not installed (Debian: apt-get install chromium): the pages were "
             "checked, not drawn")
    for what, out, dat in pages:
        drawn(out, what, Page(open(out, encoding="utf-8").read()), CHARTS)
    if pages:
        os.makedirs(artifacts, exist_ok=True)
        shutil.copy(pages[0][1], os.path.join(artifacts, "report-html.html"))
        screenshot(pages[0][1], os.path.join(artifacts, "report-html.png"), pages[0][0])
    if real:
        what, out, _ = real
        drawn(out, what, Page(open(out, encoding="utf-8").read()),
              ["chart-states", "chart-timeline", "chart-heatmap"])
        shutil.copy(out, os.path.join(artifacts, "report-html-lab.html"))
        screenshot(out, os.path.join(artifacts, "report-html-lab.png"), what)
finish()
