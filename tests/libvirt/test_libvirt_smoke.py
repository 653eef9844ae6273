#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""libvirt end to end: bring libvirtd up with libvirtlab (cgroup mode 'hybrid' as the host
is, or 'v1' only), boot a 2-vCPU domain from a generated multiboot image that halts, check
that QEMU loaded it (pmemsave), pause the domain and check that vms_libvirt_read() (through
lvread) gives the very numbers virsh prints: cpu-stats total and per host CPU, domstats
--cpu-total --vcpu, vcpuinfo. Then the error paths (unknown domain, shut-off domain, a pid
that is no domain, libvirtd not running) and, at the end, that the machine is as it was:
accounts, qemu.conf, mounts, cgroups, daemons, libvirt's files and domains.

usage: test_libvirt_smoke.py PATH-TO-LVREAD hybrid|v1"""
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))
from testlib import SKIP, check, check_eq, finish, skip  # noqa: E402
import libvirtlab  # noqa: E402
from libvirtlab import parse_cpu_stats, parse_domstats, seconds_ns  # noqa: E402

if len(sys.argv) != 3 or sys.argv[2] not in ("hybrid", "v1"):
    print(__doc__.rsplit("\n", 1)[1])
    sys.exit(2)
LVREAD, MODE = sys.argv[1], sys.argv[2]
NOT_RUNNING = "libvirtd is not running (qemu:///system): start it or pass -p PID"


def lvread(*args):
    """vms_libvirt_read() or vms_libvirt_find_by_pid() as JSON; the library prints
    nothing of its own, so stderr must stay empty."""
    p = subprocess.run([LVREAD] + list(args), capture_output=True, text=True, timeout=60)
    if p.returncode == SKIP:
        skip("vmscope was built without libvirt (libvirt-dev missing at build time)")
    check_eq(p.stderr, "", "stderr of lvread %s" % " ".join(args))
    return json.loads(p.stdout)


def parse_vcpuinfo(text):
    """[{"VCPU": "0", "CPU": "0", "State": "running", "CPU time": "1.1s"}, ...]; virsh
    leaves out "CPU time" when it is 0."""
    out = []
    for line in text.splitlines():
        if ":" not in line:
            continue
        k, v = (s.strip() for s in line.split(":", 1))
        if k == "VCPU":
            out.append({})
        out[-1][k] = v
    return out


def wait_for_hlt(lab, name, addr, timeout=120):
    """SeaBIOS and the multiboot option ROM run emulated under KVM-PVM (seconds): wait until
    vCPU 0 sits on the image's hlt (EIP = entry, or entry + 1 once halted)."""
    end = time.monotonic() + timeout
    eip = None
    while time.monotonic() < end:
        m = re.search(r"EIP=([0-9a-f]+)", lab.hmp(name, "info registers"))
        eip = int(m.group(1), 16) if m else None
        if eip in (addr, addr + 1):
            return eip
        time.sleep(0.5)
    return eip


def compare_paused(lab, name, qemu_pid):
    """The reading of a paused domain against virsh at the same moment.

    Paused, QEMU's threads sleep and the counters stand still, with one exception that
    libvirt itself causes: every `domstats` call sends QMP query-stats (for cpu.haltpoll.*
    and for the vcpu group), and QEMU answers it on its monitor thread and on every vCPU
    thread (run_on_cpu). That work is charged after the call has read its counters, so
    the next reading of anyone is ahead by it (about 1 ms of CPU time, a little run-queue
    delay per vCPU). `cpu-stats` and `vcpuinfo` send nothing to QEMU. So:
      - exact: cpu-stats total and per host CPU (virsh right before lvread, nothing in
        between), vcpuinfo CPU and state, domstats vcpu.N.state and vcpu.N.wait, and
        within lvread domstats cpu.* = cpu-stats (read before its own query-stats);
      - bracketed: domstats cpu.*, vcpu.N.time and vcpu.N.delay lie between a `virsh
        domstats --cpu-total --vcpu` before and one after lvread, within a few ms.
    """
    ds_before = parse_domstats(
        libvirtlab.virsh("domstats", name, "--cpu-total", "--vcpu").stdout)
    vcpuinfo = parse_vcpuinfo(libvirtlab.virsh("vcpuinfo", name).stdout)
    per_cpu = libvirtlab.virsh("cpu-stats", name, check=False)
    total = parse_cpu_stats(libvirtlab.virsh("cpu-stats", name, "--total").stdout)["Total"]
    d = lvread(name)
    ds_after = parse_domstats(
        libvirtlab.virsh("domstats", name, "--cpu-total", "--vcpu").stdout)

    check_eq(d["error"], 0, "vms_libvirt_read of the paused domain (%s)" % d["msg"])
    check_eq(d["msg"], "", "message of a complete reading")
    check_eq(d["name"], name, "name")
    check_eq(d["pid"], qemu_pid, "QEMU pid")
    check_eq(d["state"], 3, "state (VIR_DOMAIN_PAUSED)")
    check_eq(d["uuid"], libvirtlab.virsh("domuuid", name).stdout.strip(), "uuid = virsh domuuid")
    check_eq(d["id"], int(libvirtlab.virsh("domid", name).stdout.strip()), "id = virsh domid")

    # virsh cpu-stats --total, read right before lvread: to the nanosecond
    for f in ("cpu_time", "user_time", "system_time"):
        check_eq(d[f], total[f], "cpu-stats --total %s" % f)
    # domstats cpu.*: the same cgroup reads as cpu-stats (lvread reads them before its
    # query-stats), and between virsh's domstats before and after
    for f, g in (("cpu.time", "cpu_time"), ("cpu.user", "user_time"),
                 ("cpu.system", "system_time")):
        check_eq(d[f], d[g], "domstats %s = cpu-stats %s" % (f, g))
        lo, hi = int(ds_before[f]), int(ds_after[f])
        check(lo <= d[f] <= hi and hi - lo < 50 * 10**6,
              "domstats %s: %d <= %d <= %d (span < 50 ms)" % (f, lo, d[f], hi))
        print("%s: lvread - domstats before = %d ns, domstats after - lvread = %d ns"
              % (f, d[f] - lo, hi - d[f]))
    for f in ("cpu.haltpoll.success.time", "cpu.haltpoll.fail.time"):
        check(int(ds_before[f]) <= d[f] <= int(ds_after[f]), "domstats %s bracketed" % f)

    # virsh cpu-stats per host CPU: fails in hybrid mode, as the library must say
    if MODE == "hybrid":
        check(per_cpu.returncode != 0, "virsh cpu-stats per CPU fails in hybrid mode")
        check_eq(d["percpu_err"], -95, "percpu_err is -EOPNOTSUPP in hybrid mode")
        want = per_cpu.stderr.strip().splitlines()[-1].replace("error: ", "", 1)
        check(want in d["percpu_msg"], "percpu_msg %r carries virsh's error %r"
              % (d["percpu_msg"], want))
        check_eq(d["percpu_cpu_time"], [], "no per-CPU values in hybrid mode")
    else:
        check_eq(per_cpu.returncode, 0, "virsh cpu-stats per CPU in V1 mode (%s)"
                 % per_cpu.stderr.strip())
        pc = parse_cpu_stats(per_cpu.stdout)
        ncpu = len([k for k in pc if k.startswith("CPU")])
        check_eq(d["percpu_err"], 0, "percpu_err in V1 mode (%s)" % d["percpu_msg"])
        check_eq(len(d["percpu_cpu_time"]), ncpu, "number of host CPUs of cpu-stats")
        for i in range(min(ncpu, len(d["percpu_cpu_time"]))):
            check_eq(d["percpu_cpu_time"][i], pc["CPU%d" % i]["cpu_time"], "CPU%d cpu_time" % i)
            check_eq(d["percpu_vcpu_time"][i], pc["CPU%d" % i]["vcpu_time"],
                     "CPU%d vcpu_time" % i)
        check_eq(pc["Total"]["cpu_time"], total["cpu_time"], "cpu-stats Total twice")
        check_eq(sum(d["percpu_cpu_time"]), d["cpu_time"], "sum of per-CPU cpu_time")

    # virsh domstats --vcpu
    for f in ("vcpu.current", "vcpu.maximum"):
        check_eq(d[f], int(ds_before[f]), f)
    check_eq([v["vcpu"] for v in d["vcpus"]], list(range(int(ds_before["vcpu.current"]))),
             "vCPU indices")
    for v in d["vcpus"]:
        n = v["vcpu"]
        for f in ("state", "wait"):
            check_eq(v[f], int(ds_before["vcpu.%d.%s" % (n, f)]), "vcpu.%d.%s" % (n, f))
        for f in ("time", "delay"):
            key = "vcpu.%d.%s" % (n, f)
            lo, hi = int(ds_before[key]), int(ds_after[key])
            check(lo <= v[f] <= hi and hi - lo <= 20 * 10**6,
                  "%s: %d <= %d <= %d (span <= 20 ms)" % (key, lo, v[f], hi))

    # virsh vcpuinfo (no QMP; vcpu times are whole USER_HZ ticks, so they stand still
    # unless a query-stats answer crossed a tick)
    check_eq(len(vcpuinfo), len(d["vcpus"]), "vcpuinfo entries")
    states = {0: "offline", 1: "running", 2: "blocked"}
    for v, info in zip(d["vcpus"], vcpuinfo):
        n = v["vcpu"]
        check_eq(info["VCPU"], str(n), "vcpuinfo VCPU")
        check_eq(v["host_cpu"], int(info["CPU"]), "vcpuinfo CPU of vCPU %d" % n)
        check_eq(states.get(v["state"]), info["State"], "vcpuinfo State of vCPU %d" % n)
        shown = float(info.get("CPU time", "0s").rstrip("s"))
        check(abs(shown - v["time"] / 1e9) <= 0.05 + 0.0101,
              "vcpuinfo CPU time of vCPU %d: %s for %d ns" % (n, info.get("CPU time"),
                                                              v["time"]))
        check_eq(v["host_cpu"], n % (os.cpu_count() or 1), "vCPU %d pinned" % n)
    return d


def main():
    reason = libvirtlab.skip_reason()
    if reason:
        skip(reason)
    before = libvirtlab.machine_state()
    had_libvirtd = bool(libvirtlab.procs_named("libvirtd"))
    if not had_libvirtd:
        d = lvread("vmscope-none")
        check(d["error"] in (-2, -111), "no libvirtd: -ENOENT or -ECONNREFUSED, got %d"
              % d["error"])
        check_eq(d["msg"], NOT_RUNNING, "message without libvirtd")

    name = "vmscope-smoke-%d" % os.getpid()
    off = "vmscope-smoke-off-%d" % os.getpid()
    try:
        lab = libvirtlab.Lab(cgroup_v1=(MODE == "v1"))
    except libvirtlab.Skip as err:
        skip(str(err))
    with lab:
        ctl = open(libvirtlab.CG2 + "/cgroup.controllers").read().split()
        if MODE == "v1":
            check_eq(ctl, [], "cgroup2 offers no controller in V1 mode")
        image_path = lab.path("halt.mb")
        image = libvirtlab.write_multiboot_hlt(image_path)
        qemu_pid = lab.start_domain(name, kernel=image_path, cmdline="vmscope-smoke=1",
                                    vcpus=2, memory_mib=64)
        argv = open("/proc/%d/cmdline" % qemu_pid).read().split("\0")
        for opt, val in (("-kernel", image_path), ("-append", "vmscope-smoke=1"),
                         ("-cpu", "qemu64,tsc-deadline=on,svm=off"), ("-m", "64")):
            check(opt in argv and argv[argv.index(opt) + 1] == val,
                  "QEMU's %s is %s" % (opt, val))
        eip = wait_for_hlt(lab, name, 0x100020)
        check(eip in (0x100020, 0x100021), "vCPU 0 on the image's hlt (EIP %s)"
              % (hex(eip) if eip is not None else None))
        dump = lab.pmemsave(name, 0x100000, len(image), lab.path("mem.bin"))
        check_eq(open(dump, "rb").read(), image, "pmemsave of 1 MiB: the multiboot image")

        lab.pause(name)
        check_eq(lab.state(name), "paused", "state after pause")
        time.sleep(0.3)
        d = compare_paused(lab, name, qemu_pid)

        for key in (d["uuid"], str(d["id"])):
            o = lvread(key)
            check_eq((o["error"], o["name"], o["id"]), (0, name, d["id"]), "lookup by " + key)
        o = lvread("--pid", str(qemu_pid))
        check_eq((o["error"], o.get("name")), (0, name), "find_by_pid(QEMU pid)")
        o = lvread("--pid", str(os.getpid()))
        check_eq(o["error"], -2, "find_by_pid(a pid that is no domain) is -ENOENT")
        o = lvread("vmscope-no-such-domain")
        check_eq((o["error"], o["msg"]), (-2, "no domain 'vmscope-no-such-domain' in "
                                                "qemu:///system"), "unknown domain")

        lab.define(off, memory_mib=32)  # no kernel: never started
        o = lvread(off)
        check_eq((o["error"], o["id"], o["state"], o["pid"], o["cpu_time"]),
                 (0, -1, 5, 0, None), "a shut-off domain: no counters")
        check_eq(o["msg"], "domain %s is not running" % off, "message of a shut-off domain")

        lab.resume(name)
        check_eq(lvread(name)["state"], 1, "state after resume")
        lab.destroy(name)
        check_eq(lvread(name)["error"], -2, "destroyed and undefined: -ENOENT")
        check(not libvirtlab.pid_alive(qemu_pid), "QEMU gone after destroy")

    after = libvirtlab.machine_state()
    for k in before:
        check_eq(after[k], before[k], "left as found: " + k)
    if not had_libvirtd:
        check_eq(lvread(name)["msg"], NOT_RUNNING, "message after libvirtd stopped")
    finish()


main()
