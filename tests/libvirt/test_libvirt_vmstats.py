#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""KVM's statistics of a libvirt domain through libvirt (vms_libvirt_vm_stats), against
`virsh domstats --vm --vcpu` and against QEMU's own query-stats answer.

libvirtlab brings libvirtd up and starts a 2-vCPU domain that boots the test VM's guest
(multiboot image) with a schedule of port-I/O and MMIO exits. tests/kvm/vmmstats prints
what the library reads.

1. libvirt holds the domain's QMP monitor and passes it to QEMU as an fd:
   vms_qmp_socket_of() finds no socket (-ENOENT).
2. Running: every statistic virsh shows is in the library's reading and the reverse; each
   cumulative one ("sum") lies between virsh's reads before and after (every read makes
   QEMU answer query-stats, which kicks the running vCPUs).
3. Paused: field by field equal to virsh's: vm.NAME.TYPE and vcpu.N.NAME.TYPE, TYPE cur /
   sum / max as instant / cumulative / peak, booleans (yes / no) as 1 / 0 with unit
   boolean, names ending _ns in nanoseconds (unit, base and exponent equal to QEMU's
   query-stats-schemas); and name by name equal to QEMU's raw query-stats answer (virsh
   qemu-monitor-command), so the names are KVM's exactly; the vCPU threads are
   query-cpus-fast's and QEMU's "CPU n/KVM" threads; mmio_exits and halt_exits are at
   least the guest's MMIO writes and HLTs so far (its truth, from its memory). vmscope
   serve exports them in base units (QEMU's vCPU *_ns as *_seconds_total, equal to the
   raw value x 1e-9) and promtool finds the exposition clean.
4. A domain that does not exist: -ENOENT; the machine is left as found.

usage: test_libvirt_vmstats.py PATH-TO-VMSCOPE PATH-TO-VMMSTATS"""
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))
from testlib import check, check_eq, failures, finish, skip  # noqa: E402
import libvirtlab  # noqa: E402
from promlib import free_port, get, parse, series  # noqa: E402
from libvirtlab import parse_domstats  # noqa: E402

if len(sys.argv) != 3:
    print(__doc__.rsplit("\n", 1)[1])
    sys.exit(2)
VMSCOPE, VMMSTATS = sys.argv[1], sys.argv[2]
SCHED = "2:0,60:60"  # seconds:duty; the test pauses in the busy phase
RATES = "pio=50 mmio=40"
SHARED_GPA = 0x20000
TYPES = {"cur": "instant", "sum": "cumulative", "max": "peak"}


def vmscope(*args, check_rc=True):
    p = subprocess.run([VMSCOPE] + list(args), capture_output=True, text=True, timeout=120)
    if check_rc and p.returncode != 0:
        raise RuntimeError("vmscope %s: exit %d: %s" % (" ".join(args), p.returncode, p.stderr))
    return p


def lib(*args):
    p = subprocess.run([VMMSTATS] + list(args), capture_output=True, text=True, timeout=120)
    check_eq(p.stderr, "", "vmmstats %s: the library printed nothing" % " ".join(args))
    return p.returncode, json.loads(p.stdout)


def truth(lab, name):
    dump = lab.pmemsave(name, SHARED_GPA, 512 * 1024, lab.path("shared.bin"))
    p = vmscope("testvm", "--truth-from-dump", dump, "--format", "json", check_rc=False)
    return json.loads(p.stdout) if p.returncode == 0 else None


def domstats(name):
    """virsh domstats --vm --vcpu: {("vm", None, name, type) or ("vcpu", n, name, type):
    value} for KVM's statistics only (libvirt's own vcpu.N.time etc. have no type)."""
    out = {}
    for key, val in parse_domstats(libvirtlab.virsh("domstats", name, "--vm",
                                                    "--vcpu").stdout).items():
        parts = key.split(".")
        if parts[-1] not in TYPES:
            continue
        v = {"yes": 1, "no": 0}.get(val)
        v = int(val) if v is None else v
        if parts[0] == "vm" and len(parts) == 3:
            out[("vm", None, parts[1], parts[2])] = v
        elif parts[0] == "vcpu" and len(parts) == 4 and parts[1].isdigit():
            out[("vcpu", int(parts[1]), parts[2], parts[3])] = v
    return out


def lib_keys(r):
    """The library's reading in domstats' keys: {key: stat}."""
    rev = {t: s for s, t in TYPES.items()}
    out = {}
    for s in r["vm"]:
        out[("vm", None, s["name"], rev[s["type"]])] = s
    for v in r["vcpus"]:
        for s in v["stats"]:
            out[("vcpu", v["vcpu"], s["name"], rev[s["type"]])] = s
    return out


def qmp(name, cmd, **args):
    msg = {"execute": cmd, "arguments": args} if args else {"execute": cmd}
    p = libvirtlab.virsh("qemu-monitor-command", name, json.dumps(msg))
    return json.loads(p.stdout)["return"]


def raw_stats(name):
    """QEMU's own answer through libvirt's monitor: {(vcpu or None, name): value}, and
    {vcpu: thread id}."""
    cpus = qmp(name, "query-cpus-fast")
    qom = {c["qom-path"]: c["cpu-index"] for c in cpus}
    out = {}
    for target in ("vm", "vcpu"):
        for e in qmp(name, "query-stats", target=target, providers=[{"provider": "kvm"}]):
            n = qom[e["qom-path"]] if target == "vcpu" else None
            for s in e["stats"]:
                if not isinstance(s["value"], list):
                    out[(n, s["name"])] = int(s["value"])
    return out, {c["cpu-index"]: c["thread-id"] for c in cpus}


def vcpu_threads(pid):
    threads = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
            comm = f.read().strip()
        if comm.startswith("CPU ") and comm.endswith("/KVM"):
            threads[int(comm.split()[1].split("/")[0])] = int(tid)
    return threads


def running(name):
    d1 = domstats(name)
    rc, r = lib("--libvirt", name)
    d2 = domstats(name)
    if not check_eq(rc, 0, "running: vms_libvirt_vm_stats: %s" % r):
        return
    got = lib_keys(r)
    check_eq(sorted(got, key=str), sorted(d1, key=str), "running: the same statistics as virsh")
    moved = 0
    for k, s in got.items():
        if k[3] == "sum" and k in d1 and k in d2:
            check(d1[k] <= s["value"] <= d2[k], "running: %s %d within virsh's [%d, %d]"
                  % (".".join(str(x) for x in k if x is not None), s["value"], d1[k], d2[k]))
            moved += d2[k] > d1[k]
    check(moved > 0, "running: the counters move between reads")


def serve_paused(pid, raw):
    """vmscope serve on the paused domain: its KVM statistics come through libvirt, in
    base units (a name ending _ns becomes _seconds), and promtool finds them clean."""
    port = free_port()
    srv = subprocess.Popen([VMSCOPE, "serve", "--listen", "127.0.0.1:%d" % port,
                            "--no-events"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           text=True)
    try:
        code, text = 0, ""
        for _ in range(100):
            try:
                code, text, _ = get("http://127.0.0.1:%d/metrics" % port)
                break
            except OSError:
                time.sleep(0.1)
        if not check_eq(code, 200, "serve: /metrics answers"):
            return
        m = parse(text)
        promtool = shutil.which("promtool")
        if promtool:
            p = subprocess.run([promtool, "check", "metrics"], input=text,
                               capture_output=True, text=True)
            check_eq((p.returncode, p.stdout + p.stderr), (0, ""),
                     "serve: promtool check metrics is clean with a libvirt domain")
        else:
            print("note: promtool not installed: the exposition's lint is not run")
        timed = [k for k in raw if k[0] is not None and k[1].endswith("_ns")]
        check(len(timed) > 0, "QEMU gives vCPU times in ns: %s" % sorted(timed))
        for n, stat in timed:
            metric = "vmscope_kvm_vcpu_%s_seconds_total" % stat[:-3]
            got = list(series(m, metric, pid=str(pid), vcpu=str(n)).values())
            check_eq(got, [raw[(n, stat)] * 1e-9], "serve: %s{vcpu=%d} = QEMU's %s x 1e-9"
                     % (metric, n, stat))
    finally:
        srv.terminate()
        srv.wait(timeout=30)


def paused(lab, name, pid):
    lab.pause(name)
    time.sleep(0.3)
    t = truth(lab, name)
    rc, r = lib("--libvirt", name)
    d = domstats(name)
    raw, raw_tids = raw_stats(name)
    units = {st["name"]: (st.get("unit"), st.get("base"), st.get("exponent"))
             for sc in qmp(name, "query-stats-schemas", provider="kvm") for st in sc["stats"]}
    if not check_eq(rc, 0, "paused: vms_libvirt_vm_stats: %s" % r):
        return
    check_eq(r["source"], "libvirt", "source")
    got = lib_keys(r)
    check_eq(sorted(got, key=str), sorted(d, key=str), "paused: the same statistics as virsh")
    check(len([k for k in got if k[0] == "vm"]) > 0, "paused: VM-level statistics")
    for k in sorted(set(got) & set(d), key=str):
        s = got[k]
        what = ".".join(str(x) for x in k if x is not None)
        check_eq(s["value"], d[k], "paused: %s = virsh's" % what)
        check_eq(s["type"], TYPES[k[3]], "paused: %s type" % what)
        check_eq(raw.get((k[1], k[2])), s["value"], "paused: %s = QEMU's query-stats" % what)
        if s["unit"] == "boolean":
            check(s["has_unit"], "paused: %s: a boolean has its unit" % what)
        elif k[2].endswith("_ns"):
            # libvirt passes on no unit; the name says nanoseconds, as QEMU's schema does.
            check_eq((s["has_unit"], s["unit"], s["base"], s["exponent"]),
                     (True,) + units.get(k[2], ()), "paused: %s: unit from the name = "
                     "QEMU's query-stats-schemas" % what)
        else:
            check(not s["has_unit"], "paused: %s: libvirt passes on no unit" % what)
    # QEMU's scalar statistics that libvirt left out (none expected)
    missing = sorted(str(k) for k in raw if ("vm" if k[0] is None else "vcpu", k[0], k[1])
                     not in {(a, b, c) for a, b, c, _ in got})
    check_eq(missing, [], "paused: every scalar of QEMU's query-stats is in the library's")
    # vmscope stat on the domain's QEMU (no descriptor, no free QMP socket): libvirt.
    p = vmscope("stat", "--once", "--pid", str(pid), "--format", "json", "--no-events")
    vm = json.loads(p.stdout)["vms"][0]
    check_eq(vm.get("kvm_stats_source"), "libvirt", "stat: the domain's statistics via libvirt")
    check_eq(vm.get("kvm_stats"), {k[1]: v for k, v in raw.items() if k[0] is None},
             "stat: the VM's kvm_stats == QEMU's query-stats")
    for v in vm["vcpus"]:
        check_eq(v.get("kvm_stats"), {k[1]: x for k, x in raw.items() if k[0] == v["vcpu"]},
                 "stat: vCPU %s kvm_stats == QEMU's query-stats" % v["vcpu"])
    serve_paused(pid, raw)
    tids = {v["vcpu"]: v["tid"] for v in r["vcpus"]}
    check_eq(tids, vcpu_threads(pid), "the vCPU threads are QEMU's 'CPU n/KVM'")
    check_eq(tids, raw_tids, "the vCPU threads are query-cpus-fast's")
    if check(t is not None, "the guest's truth reads back"):
        for v in t["vcpus"]:
            n, ex = v["vcpu"], v["exits"]
            mmio = got.get(("vcpu", n, "mmio_exits", "sum"), {}).get("value", -1)
            hlt = got.get(("vcpu", n, "halt_exits", "sum"), {}).get("value", -1)
            check(mmio >= ex["mmio"] > 0, "vCPU %d: mmio_exits %d >= the guest's %d MMIO "
                  "writes" % (n, mmio, ex["mmio"]))
            check(hlt >= ex["hlt"] > 0, "vCPU %d: halt_exits %d >= the guest's %d HLTs"
                  % (n, hlt, ex["hlt"]))
    lab.resume(name)


def main():
    reason = libvirtlab.skip_reason()
    if reason:
        skip(reason)
    rc, out = lib("--libvirt", "vmscope-no-such-domain")
    if rc == 77:
        skip("libvmscope has no libvirt VM statistics: %s" % out.get("msg"))
    tsc = vmscope("testvm", "--print-tsc-khz").stdout.strip()
    before = libvirtlab.machine_state()
    name = "vmscope-vmstats-%d" % os.getpid()
    try:
        lab = libvirtlab.Lab()
    except libvirtlab.Skip as err:
        skip(str(err))
    with lab:
        image = lab.path("testvm.mb")
        vmscope("testvm", "--write-image", image)
        pid = lab.start_domain(name, kernel=image, vcpus=2, memory_mib=64,
                               cmdline="tsc_khz=%s sched=%s %s" % (tsc, SCHED, RATES))
        # 1. libvirt's monitor is an fd: no socket to take.
        rc, out = lib("--socket-of", str(pid))
        check_eq((rc, out.get("error")), (1, -2), "vms_qmp_socket_of on libvirt's QEMU: ENOENT")
        # Wait for the busy phase (SeaBIOS boots for seconds, emulated on KVM-PVM).
        end = time.monotonic() + 180
        t = None
        while time.monotonic() < end:
            t = truth(lab, name)
            if t and all(len(v["phases"]) > 1 and v["phases"][1]["periods"] > 2
                         for v in t["vcpus"]):
                break
            time.sleep(0.3)
        if check(t is not None, "the guest reached its busy phase"):
            running(name)
            paused(lab, name, pid)
        rc, out = lib("--libvirt", "vmscope-no-such-domain-%d" % os.getpid())
        check_eq((rc, out.get("error")), (1, -2), "no such domain: ENOENT (%s)" % out.get("msg"))
        if failures:
            print(lab.log_tail(name))
        lab.destroy(name)
    after = libvirtlab.machine_state()
    for k in before:
        check_eq(after[k], before[k], "left as found: " + k)
    finish()


main()
