#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""libvirtlab.py leaves the machine as it found it also when its user does not finish:
a test that dies of SIGTERM with a domain running in cgroup-V1-only mode (the atexit
path), a test that raises inside `with Lab()` (the __exit__ path), and a second Lab
opened while the first one's libvirtd runs, which must use that daemon and leave it
running. After each, the machine state (accounts, qemu.conf, mounts, cgroups, daemons,
libvirt's files, libvirt's QEMU processes) must equal the state before.

usage: test_libvirt_harness.py"""
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, HERE)
from testlib import check, check_eq, finish, skip  # noqa: E402
import libvirtlab  # noqa: E402

CHILD = r"""
import os, sys, time
sys.path.insert(0, %r)
import libvirtlab
mode = sys.argv[1]
if mode == "sigterm":
    lab = libvirtlab.Lab(cgroup_v1=True)
    lab.start_domain("vmscope-harness-term", vcpus=2, memory_mib=32)
    print("ready", lab.domains["vmscope-harness-term"], flush=True)
    time.sleep(600)
else:
    with libvirtlab.Lab() as lab:
        lab.start_domain("vmscope-harness-raise", vcpus=1, memory_mib=32)
        print("ready", lab.domains["vmscope-harness-raise"], flush=True)
        raise RuntimeError("a test that fails half way")
""" % HERE


def compare(before, what, keys=None):
    after = libvirtlab.machine_state()
    for k in keys or before:
        check_eq(after[k], before[k], "%s: left as found: %s" % (what, k))
    return after


def child(mode, term):
    p = subprocess.Popen([sys.executable, "-c", CHILD, mode], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    ready = line.startswith("ready ")
    check(ready, "%s: the child started a domain (%r)" % (mode, line))
    qemu_pid = int(line.split()[1]) if ready else 0
    if ready:
        check(libvirtlab.pid_alive(qemu_pid), "%s: its QEMU runs" % mode)
    if term:
        p.send_signal(15)
    try:
        out, err = p.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
    print("--- child %s exited %d\n%s%s" % (mode, p.returncode, out, err[-2000:]))
    return p.returncode, err, qemu_pid


def main():
    reason = libvirtlab.skip_reason()
    if reason:
        skip(reason)
    if libvirtlab.procs_named("libvirtd"):
        skip("a libvirtd this test did not start is running: the SIGTERM and cgroup-V1 "
             "paths need the harness to own the daemon")
    before = libvirtlab.machine_state()

    rc, err, qemu_pid = child("sigterm", term=True)
    check_eq(rc, 128 + 15, "SIGTERM: the child exits with 128+SIGTERM")
    check(not libvirtlab.pid_alive(qemu_pid), "SIGTERM: its QEMU is gone")
    compare(before, "SIGTERM")

    rc, err, qemu_pid = child("raise", term=False)
    check_eq(rc, 1, "exception: the child exits with 1")
    check("a test that fails half way" in err, "exception: the traceback reaches stderr")
    check(not libvirtlab.pid_alive(qemu_pid), "exception: its QEMU is gone")
    compare(before, "exception")

    # A Lab inside a Lab: the inner one finds the outer one's libvirtd and must leave it
    # running; its domain is transient (virsh create).
    with libvirtlab.Lab() as outer:
        daemons = libvirtlab.procs_named("libvirtd", "virtlogd")
        inner_before = libvirtlab.machine_state()
        with libvirtlab.Lab() as inner:
            check(inner.external_libvirtd, "inner Lab uses the running libvirtd")
            pid = inner.start_domain("vmscope-harness-inner", persistent=False, vcpus=1,
                                     memory_mib=32)
            check(libvirtlab.pid_alive(pid), "inner Lab's domain runs")
        check_eq(libvirtlab.procs_named("libvirtd", "virtlogd"), daemons,
                 "inner Lab left the daemons running")
        check(not libvirtlab.pid_alive(pid), "inner Lab's QEMU is gone")
        # The daemon's own directories and machine cgroups (made for the inner Lab's
        # domain) are the outer Lab's to remove; the inner Lab answers for its domain.
        after = compare(inner_before, "inner Lab",
                        [k for k in inner_before
                         if not k.startswith("tree ") and k != "cgroup machine dirs"])
        left = [p for k, v in after.items() if k.startswith("tree ") for p in v
                if "vmscope-harness-inner" in p]
        check_eq(left, [], "inner Lab left no file of its domain")
        check("vmscope-harness-inner" not in libvirtlab.virsh("list", "--all", "--name")
              .stdout.split(), "inner Lab's domain undefined")
        check(not outer.external_libvirtd, "outer Lab started libvirtd")
    time.sleep(0.2)
    compare(before, "outer Lab")
    finish()


main()
