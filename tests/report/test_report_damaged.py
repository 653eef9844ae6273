#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""A damaged trace: `vmscope report exits` gives one precise error line naming the file
and the offset, exits 1, and still reports the valid records before the damage. Traces
are generated (tests/tools/gentrace), then truncated inside the CPU data (v6 and v7
zstd), cut inside the headers, or given a page whose commit is larger than a page."""
import json
import os
import re
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from testlib import *  # noqa: E402,F403

gentrace = sys.argv[2] if len(sys.argv) > 2 else None
if not gentrace or not os.access(gentrace, os.X_OK):
    skip("no gentrace binary given")


def report(path):
    p = run(["report", "exits", "-q", "-f", "json", path], check=False)
    return p, (json.loads(p.stdout) if p.stdout.strip() else None)


def expect_damage(path, what, partial=True):
    p, r = report(path)
    check_eq(p.returncode, 1, what + ": exit status")
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    check_eq(len(lines), 1, what + ": one error line (%r)" % lines)
    if lines:
        check(os.path.basename(path) in lines[0], what + ": the error names the file: %r" % lines[0])
        check(re.search(r"offset \d+", lines[0]) is not None, what + ": the error names the offset: %r" % lines[0])
    if partial:
        check(r is not None and r["summary"]["samples"] > 0,
              what + ": the records before the damage are still analysed")
        check(r is not None and "error" in r, what + ": the JSON report carries the error")
    return r


with tempfile.TemporaryDirectory() as tmp:
    common = ["--vendor", "vmx", "--vms", "1", "--vcpus", "2", "--cpus", "2", "--exits", "3000",
              "--seed", "21", "--quiet"]
    v6, v7 = os.path.join(tmp, "t6.dat"), os.path.join(tmp, "t7.dat")
    subprocess.run([gentrace, "-o", v6] + common, check=True)
    subprocess.run([gentrace, "-o", v7, "--dat-version", "7", "--compression", "zstd"] + common, check=True)
    p, whole = report(v6)
    check_eq(p.returncode, 0, "the intact file reads")
    data6, data7 = open(v6, "rb").read(), open(v7, "rb").read()

    # Cut in the middle of the last CPU's data: a truncated recording. A version 6 file
    # says where each CPU's data lies before the data, so what is there is read; a version
    # 7 file says it in options written after the data (trace-cmd's layout), so a cut v7
    # file has lost its index: one precise error, nothing to report (trace-cmd cannot read
    # it either).
    path = os.path.join(tmp, "t6-cut.dat")
    open(path, "wb").write(data6[:int(len(data6) * 0.8)])
    r = expect_damage(path, "t6-cut.dat")
    if r:
        check(0 < r["summary"]["samples"] < whole["summary"]["samples"],
              "t6-cut.dat: fewer samples than the whole file")
    path = os.path.join(tmp, "t7-cut.dat")
    open(path, "wb").write(data7[:int(len(data7) * 0.8)])
    expect_damage(path, "t7-cut.dat", partial=False)

    # Cut inside the metadata: nothing to report, still one precise line.
    for cut in (40, 300):
        path = os.path.join(tmp, "t6-head%d.dat" % cut)
        open(path, "wb").write(data6[:cut])
        expect_damage(path, "cut at byte %d" % cut, partial=False)

    # A page whose commit is larger than a page: find CPU 0's first page in the v6 file
    # (its data starts at the first page-aligned offset after the header) and break it.
    page = 4096
    first = (data6.index(b"flyrecord\0") + 10 + 32 + page - 1) // page * page
    off0, size0 = struct.unpack_from("<QQ", data6, data6.index(b"flyrecord\0") + 10)
    check(off0 % page == 0 and size0 > page * 4, "CPU 0's data is page-aligned and several pages long")
    bad = bytearray(data6)
    struct.pack_into("<Q", bad, off0 + 2 * page + 8, 0x7ffff)  # commit: far more than a page
    path = os.path.join(tmp, "t6-badpage.dat")
    open(path, "wb").write(bytes(bad))
    r = expect_damage(path, "a page with an impossible commit")
    p, _ = report(path)
    check("%d" % (off0 + 2 * page) in p.stderr, "the error names the damaged page's offset: %r" % p.stderr)

    # Not a trace at all.
    path = os.path.join(tmp, "text.dat")
    open(path, "w").write("hello\n" * 100)
    p, r = report(path)
    check_eq(p.returncode, 1, "a text file: exit status")
    check("not a trace-cmd trace file" in p.stderr, "a text file: says so: %r" % p.stderr)
    p = run(["report", "exits", os.path.join(tmp, "missing.dat")], check=False)
    check_eq(p.returncode, 1, "a missing file: exit status")
    check("No such file" in p.stderr and "missing.dat" in p.stderr, "a missing file: says so: %r" % p.stderr)
finish()
