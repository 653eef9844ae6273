# SPDX-License-Identifier: GPL-2.0-or-later
"""Shared helpers of vmscope's script tests: skip with a reason (exit 77, meson's SKIP),
run the vmscope binary, and check values with messages that say what was expected."""
import json
import os
import signal
import subprocess
import sys
import time

SKIP = 77
failures = []
checks = 0


def skip(reason):
    print("SKIP: " + reason)
    sys.exit(SKIP)


def need_kvm():
    if not os.path.exists("/dev/kvm"):
        skip("/dev/kvm is absent: the KVM tests need a KVM host")
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        skip("/dev/kvm is not readable and writable by this user")


def vmscope():
    """The binary under test: argv[1], or $VMSCOPE."""
    path = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("VMSCOPE")
    if not path:
        print("usage: test.py PATH-TO-VMSCOPE")
        sys.exit(2)
    return path


def run(args, timeout=120, check=True):
    p = subprocess.run([vmscope()] + args, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        print("command failed (%d): vmscope %s\nstdout: %s\nstderr: %s"
              % (p.returncode, " ".join(args), p.stdout, p.stderr))
        sys.exit(1)
    return p


def check(cond, what):
    global checks
    checks += 1
    if not cond:
        failures.append(what)
        print("FAIL: " + what)
    return cond


def check_eq(got, want, what):
    return check(got == want, "%s: got %r, expected %r" % (what, got, want))


def check_close(got, want, tol, what):
    return check(abs(got - want) <= tol, "%s: got %r, expected %r +- %r" % (what, got, want, tol))


def finish():
    if checks == 0:
        print("FAIL: no check ran")
        sys.exit(1)
    if failures:
        print("%d of %d checks failed" % (len(failures), checks))
        sys.exit(1)
    print("all %d checks passed" % checks)
    sys.exit(0)


def load_json(path):
    with open(path) as f:
        return json.load(f)


def wait_pid_exit(pid, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def steal_seconds(cpus=None):
    """Time the hypervisor under this machine took from host CPUs @cpus (all: None), in
    seconds, from /proc/stat. A test VM's clock keeps running through it while its threads
    do not: timing checks add its growth over their window to their tolerance."""
    hz = os.sysconf("SC_CLK_TCK")
    total = 0
    with open("/proc/stat") as f:
        for line in f:
            name = line.split(" ", 1)[0]
            if not name.startswith("cpu") or name == "cpu":
                continue
            if cpus is None or int(name[3:]) in cpus:
                total += int(line.split()[8])
    return total / hz


def busy_share_window(duty, length_ns, late_ns):
    """The busy shares (percent) a test VM phase of @length_ns at @duty % can show when the
    host held its vCPU back for @late_ns (the guest's late time): late time is taken only
    from busy or idle time, so busy / (busy + idle) lies in [(busy0 - late) / (T - late),
    busy0 / (T - late)] with busy0 = duty x T. Without late time both ends are the duty."""
    busy0 = duty / 100.0 * length_ns
    rest = length_ns - late_ns
    if rest <= 0:
        return 0.0, 100.0
    return 100.0 * max(busy0 - late_ns, 0.0) / rest, min(100.0 * busy0 / rest, 100.0)


def missed_allowed(owed, late_ns, rate):
    """How many of @owed load exits at @rate per second a test VM phase may miss: 5 % (a
    few in flight at busy parts' ends), plus one per interval of the phase's late time (an
    exit is missed only when the vCPU did not run from its due time to its busy part's
    end)."""
    return 0.05 * owed + late_ns / 1e9 * rate


def terminate(pids):
    """SIGTERM every process of @pids that still runs (the VMs a test started)."""
    for p in pids:
        try:
            os.kill(p, signal.SIGTERM)
        except ProcessLookupError:
            pass


def failed_checks(p):
    """The failed checks of a `vmscope validate --format json` run that exited 3, as
    "id: explanation" lines for a message; [] when its output is not such a report."""
    try:
        return ["%s: %s" % (c["id"], c["explain"]) for c in json.loads(p.stdout)["checks"]
                if c["status"] == "fail"]
    except (ValueError, KeyError, TypeError):
        return []
