#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""vmscope validate on a real libvirt domain that runs the test VM's guest (issue 5, part 4).

libvirtlab brings libvirtd up (cgroup mode 'hybrid' as the host is, or 'v1' only) and
defines a 2-vCPU domain, vCPU n pinned to host CPU n, that boots the test VM's guest as a
multiboot kernel (`vmscope testvm --write-image`) with a schedule on its command line:
idle, 75 %, 90 %, idle. The guest's own count (read back from guest memory with
pmemsave, `vmscope testvm --truth-from-dump`) is the truth.

1. During the 75 % phase, `vmscope validate -d DOMAIN --interval 2s`: no check fails, 75 % of
   the interval lies between each vCPU's run time and that plus the busy time it did not
   run (its run-queue delay and its CPU's steal, or the guest's own count of its stalls
   when larger; within 5 points), and every
   libvirt field matches its source (running: within the reading's skew).
2. Snapshots taken in the first idle phase and in the last one (`--save-snapshot`,
   `--compare`): no check fails, and over that span each vCPU thread's schedstat run time,
   its utime + stime, libvirt's vcpu.N.time, the domain cgroup's usage (less the
   emulator's time) equal the guest's busy time within 3 % + the host time an idle
   vCPU costs (emulated timer interrupts and halts), less at most the busy time the guest
   saw its vCPU stall (preempted, or its CPU taken by a hypervisor under this host).
3. Paused: `vmscope validate -g DOMAIN` reproduces `virsh cpu-stats --total`, `virsh
   cpu-stats` (per CPU, v1 mode) and `virsh domstats --cpu-total --vcpu` field by field,
   from the sources libvirt reads: exactly for cpu-stats, bracketed for domstats (every
   domstats call makes QEMU answer query-stats, charged after it read its counters).
4. The machine is left as found (libvirtlab.machine_state() before and after).

usage: test_libvirt_validate.py PATH-TO-VMSCOPE hybrid|v1"""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))
from testlib import (check, check_close, check_eq, failed_checks, finish, skip,  # noqa: E402
                     steal_seconds)
import libvirtlab  # noqa: E402
from libvirtlab import parse_cpu_stats, parse_domstats, seconds_ns  # noqa: E402

if len(sys.argv) != 3 or sys.argv[2] not in ("hybrid", "v1"):
    print(__doc__.rsplit("\n", 1)[1])
    sys.exit(2)
VMSCOPE, MODE = sys.argv[1], sys.argv[2]
SCHED = [(3, 0), (4, 75), (4, 90), (3, 0)]
SHARED_GPA = 0x20000


def vmscope(*args, check_rc=True, timeout=120):
    p = subprocess.run([VMSCOPE] + list(args), capture_output=True, text=True, timeout=timeout)
    if check_rc and p.returncode != 0:
        raise RuntimeError("vmscope %s: exit %d: %s" % (" ".join(args), p.returncode, p.stderr))
    return p


def truth(lab, name, dump_size, booting=False):
    """The guest's count, from its memory; while it boots (SeaBIOS runs emulated for
    seconds) there is no shared block yet: None when @booting."""
    dump = lab.pmemsave(name, SHARED_GPA, dump_size, lab.path("shared.bin"))
    out = lab.path("truth.json")
    p = vmscope("testvm", "--truth-from-dump", dump, "--truth", out, "-q", check_rc=not booting)
    if p.returncode:
        return None
    with open(out) as f:
        return json.load(f)


def phase_started(t, p):
    """Every vCPU began phase @p (the truth lists the phases that started)."""
    return all(len(v["phases"]) > p and v["phases"][p]["periods"] > 0 for v in t["vcpus"])


def wait_for(lab, name, size, cond, what, timeout=120):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        t = truth(lab, name, size, booting=True)
        if t and cond(t):
            return t
        time.sleep(0.2)
    raise RuntimeError("timed out waiting for the guest: " + what)


def snapshot(name, path):
    vmscope("validate", "-d", name, "--save-snapshot", path, "-q")
    snap = {}
    with open(path) as f:
        for line in f.read().splitlines()[1:]:
            k, v = line.split(" ", 1)
            snap[k] = v.strip('"') if v.startswith('"') else int(v)
    return snap


def during_busy(name):
    """Validates the domain during its 75 % phase; returns the checks that need the
    guest's count of that phase (its stall time), to run once it is read back."""
    later = []
    stolen = {v: steal_seconds({v % (os.cpu_count() or 1)}) for v in (0, 1)}
    p = vmscope("validate", "-d", name, "--interval", "2s", "--format", "json", check_rc=False)
    stolen = {v: steal_seconds({v % (os.cpu_count() or 1)}) - stolen[v] for v in (0, 1)}
    if not check(p.returncode == 0, "validate during 75 %%: exit %d (%s) %s"
                 % (p.returncode, p.stderr, failed_checks(p))):
        return later
    rep = json.loads(p.stdout)
    check_eq([c["id"] for c in rep["checks"] if c["status"] == "fail"], [], "no failed check")
    rows = {r["field"]: r["seconds"] for r in rep["sources"]}
    for v in (0, 1):
        run, wait = rows.get("vCPU %d run time" % v), rows.get("vCPU %d run-queue delay" % v, 0)
        if check(run is not None, "vCPU %d run time row" % v):
            # 75 % lies between the run time and that plus the busy time the vCPU did not
            # run: its run-queue delay and its (pinned) CPU's steal, or, when the
            # hypervisor under this machine took more than the steal shows, the guest's
            # own count of its stalls over the phase.
            def duty_check(t, v=v, run=run, wait=wait, iv=rep["interval_s"]):
                stall = t["vcpus"][v]["phases"][1]["stall_ns"] / 1e9
                hi = (run + max(wait + stolen[v], stall)) / iv
                check(run / iv - 0.05 <= 0.75 <= hi + 0.05, "vCPU %d: 75 %% busy within "
                      "[run %.3f, run + max(delay %.3f + stolen %.3f, guest stall %.3f)] of "
                      "%.3f s" % (v, run, wait, stolen[v], stall, iv))
            later.append(duty_check)
    fields = rep["libvirt_fields"]
    check(len(fields) >= 7, "libvirt fields compared while running: %d" % len(fields))
    for f in fields:
        if not f["libvirt"].startswith("vcpuinfo"):
            check(f["match"], "running: %s %.6f = %s %.6f (+- %.6f)" % (
                f["libvirt"], f["libvirt_value"], f["source"], f["source_value"], f["tolerance"]))
    return later


def check_between(lo, got, hi, what):
    check(lo <= got <= hi, "%s: %.3f in [%.3f, %.3f]" % (what, got, lo, hi))


def over_schedule(a, b, sa, sb, t):
    """Snapshots a (first idle phase) and b (last idle phase) against the guest's count."""
    p = vmscope("validate", "--compare", a, b, "--format", "json", check_rc=False)
    if not check(p.returncode == 0, "validate --compare: exit %d (%s) %s"
                 % (p.returncode, p.stderr, failed_checks(p))):
        return
    rep = json.loads(p.stdout)
    check_eq([c["id"] for c in rep["checks"] if c["status"] == "fail"], [], "no failed check")
    span = (sb["meta.mono_ns"] - sa["meta.mono_ns"]) / 1e9
    hz = sb["meta.user_hz"]
    tids = {sb[k]: int(k.split(".")[1]) for k in sb if k.startswith("task.") and k.endswith(".vcpu")}
    total_truth = total_stall = 0.0

    def d(k):
        return sb[k] - sa[k]

    for v in (0, 1):
        busy = sum(ph["busy_ns"] for ph in t["vcpus"][v]["phases"]) / 1e9
        total_truth += busy
        tid = tids[v]
        # Busy time the vCPU did not run (preempted, or its CPU taken by the hypervisor
        # under this machine): the guest counted it as busy and saw it as stalls.
        stall = sum(ph["stall_ns"] for ph in t["vcpus"][v]["phases"]) / 1e9
        total_stall += stall
        # An idle vCPU still costs the host its emulated timer interrupts and halts.
        tol = 0.03 * busy + 0.03 * span
        what = "vCPU %d over %.1f s (guest busy %.3f s, stalled %.3f s)" % (v, span, busy, stall)
        check_between(busy - stall - tol, d("task.%d.run_ns" % tid) / 1e9, busy + tol,
                      what + ": schedstat run")
        check_between(busy - stall - tol - 0.02,
                      (d("task.%d.utime" % tid) + d("task.%d.stime" % tid)) / hz,
                      busy + tol + 0.02, what + ": utime + stime")
        check_between(busy - stall - tol - 0.03, d("libvirt.vcpu.%d.time" % v) / 1e9,
                      busy + tol + 0.03, what + ": libvirt vcpu.%d.time" % v)
    usage = (d("cg1.usage") / 1e9 if "cg1.usage" in sb and "cg1.usage" in sa
             else d("cg2.usage_usec") / 1e6)
    emu = d("cg1.child.emulator.usage") / 1e9 if "cg1.child.emulator.usage" in sb else None
    if emu is not None:
        tol = 0.03 * total_truth + 0.06 * span
        check_between(total_truth - total_stall - tol, usage - emu, total_truth + tol,
                      "domain cgroup less emulator vs the guest's busy time")
    check_close(d("libvirt.cpu_time") / 1e9, usage, 0.05, "libvirt cpu_time growth = cgroup usage")


def paused_field_by_field(lab, name):
    lab.pause(name)
    time.sleep(0.3)
    total = parse_cpu_stats(libvirtlab.virsh("cpu-stats", name, "--total").stdout)["Total"]
    per_cpu = parse_cpu_stats(libvirtlab.virsh("cpu-stats", name, check=False).stdout)
    s = snapshot(name, lab.path("paused.snap"))
    ds = parse_domstats(libvirtlab.virsh("domstats", name, "--cpu-total", "--vcpu").stdout)
    v1 = "cg1.usage" in s
    usage = s["cg1.usage"] if v1 else s["cg2.usage_usec"] * 1000
    user = s["cg1.stat.user"] * 10**9 // s["meta.user_hz"] if v1 else s["cg2.user_usec"] * 1000
    system = (s["cg1.stat.system"] * 10**9 // s["meta.user_hz"] if v1
              else s["cg2.system_usec"] * 1000)
    # cpu-stats sends nothing to QEMU: exact.
    check_eq(total["cpu_time"], usage, "cpu-stats cpu_time = vmscope's %s"
             % ("cpuacct.usage" if v1 else "cpu.stat usage_usec"))
    check_eq(total["user_time"], user, "cpu-stats user_time = vmscope's user")
    check_eq(total["system_time"], system, "cpu-stats system_time = vmscope's system")
    check_eq(s["libvirt.cpu_time"], total["cpu_time"], "vmscope's libvirt cpu_time = virsh's")
    if MODE == "v1":
        for cpu in range(s["meta.ncpus"]):
            got = per_cpu.get("CPU%d" % cpu, {})
            check_eq(got.get("cpu_time"), s.get("cg1.percpu.%d" % cpu),
                     "cpu-stats CPU%d cpu_time = cpuacct.usage_percpu" % cpu)
            vsum = sum(s.get("cg1.child.vcpu%d.percpu.%d" % (v, cpu), 0) for v in range(2))
            check_eq(got.get("vcpu_time"), vsum, "cpu-stats CPU%d vcpu_time = sum of the "
                     "vcpuN cgroups' usage_percpu" % cpu)
    else:
        check(per_cpu == {} or "Total" not in per_cpu, "hybrid: no per-CPU figures")
        check("err.libvirt_percpu" in s, "hybrid: the snapshot says why per-CPU is missing")
    # domstats makes QEMU work after it read its counters (and vmscope's own reading
    # called it once after reading its sources): virsh's figure lies at most a few ms
    # of CPU time ahead of vmscope's.
    bracket = 20 * 10**6
    for key, src in (("cpu.time", usage), ("cpu.user", user), ("cpu.system", system)):
        got = int(ds[key])
        check(src <= got <= src + bracket, "domstats %s %d within [%d, +20 ms]" % (key, got, src))
    tids = {s[k]: int(k.split(".")[1]) for k in s if k.startswith("task.") and k.endswith(".vcpu")}
    for v in (0, 1):
        tid = tids[v]
        t = (s["task.%d.utime" % tid] + s["task.%d.stime" % tid]) * 10**9 // s["meta.user_hz"]
        got = int(ds["vcpu.%d.time" % v])
        check(t <= got <= t + bracket, "domstats vcpu.%d.time %d within [%d, +20 ms]" % (v, got, t))
        got = int(ds["vcpu.%d.delay" % v])
        w = s["task.%d.wait_ns" % tid]
        check(w <= got <= w + bracket, "domstats vcpu.%d.delay %d within [%d, +20 ms]" % (v, got, w))
        check_eq(int(ds["vcpu.%d.wait" % v]), s.get("libvirt.vcpu.%d.wait" % v),
                 "domstats vcpu.%d.wait = vmscope's libvirt reading" % v)
    # And validate's own field-by-field table at the paused reading: all match.
    p = vmscope("validate", "-g", name, "--interval", "0.5s", "--format", "json", check_rc=False)
    if check(p.returncode == 0, "validate -g on the paused domain: exit %d" % p.returncode):
        fields = json.loads(p.stdout)["libvirt_fields"]
        check(len(fields) >= 9, "libvirt fields compared, paused: %d" % len(fields))
        for f in fields:
            check(f["match"], "paused: %s = %s" % (f["libvirt"], f["source"]))


def main():
    reason = libvirtlab.skip_reason()
    if reason:
        skip(reason)
    tsc = vmscope("testvm", "--print-tsc-khz").stdout.strip()
    before = libvirtlab.machine_state()
    name = "vmscope-validate-%d" % os.getpid()
    try:
        lab = libvirtlab.Lab(cgroup_v1=(MODE == "v1"))
    except libvirtlab.Skip as err:
        skip(str(err))
    with lab:
        image = lab.path("testvm.mb")
        vmscope("testvm", "--write-image", image)
        cmdline = "tsc_khz=%s sched=%s" % (tsc, ",".join("%d:%d" % p for p in SCHED))
        lab.start_domain(name, kernel=image, cmdline=cmdline, vcpus=2, memory_mib=64)
        size = 512 * 1024  # more than the shared block of any guest
        wait_for(lab, name, size, lambda t: phase_started(t, 0), "phase 0", timeout=180)
        sa = snapshot(name, lab.path("a.snap"))
        wait_for(lab, name, size, lambda t: phase_started(t, 1), "phase 1")
        time.sleep(0.5)
        later = during_busy(name)
        t = wait_for(lab, name, size, lambda t: phase_started(t, 3), "phase 3", timeout=60)
        time.sleep(0.5)
        sb = snapshot(name, lab.path("b.snap"))
        t = truth(lab, name, size)
        for v in t["vcpus"]:
            for p, ph in enumerate(v["phases"][:3]):
                check(ph["complete"], "vCPU %d phase %d complete" % (v["vcpu"], p))
        for f in later:
            f(t)
        over_schedule(lab.path("a.snap"), lab.path("b.snap"), sa, sb, t)
        paused_field_by_field(lab, name)
        lab.destroy(name)
    after = libvirtlab.machine_state()
    for k in before:
        check_eq(after[k], before[k], "left as found: " + k)
    finish()


main()
