#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""vmscope top on the real test VM, driven through tmux (send-keys) and read back from the
screen (capture-pane), on a private tmux server with a fixed 160x50 window.

VM A: 2 vCPUs always busy for 15 s, 300 MMIO and 100 port exits to the VMM per second of
busy time each; VM B: 1 vCPU 20 % busy all along; VM C (60 % busy) starts while top runs.
1. The header (host, time, interval), a bar per host CPU and the legend (guest, steal).
2. VM A's MMIO and port exits per second in its row, averaged over the samples seen while
   it ran, equal its guest's own rates (the truth file: count / phase length) within 5 %;
   in the events view ('b', VMs limited to A with 'g') so does the Current rate of
   events.userspace_exit.mmio.
3. Keys: b switches to rows per field with Total and Current; x shows and hides the child
   events; f with a regex keeps only the fields it matches, c brings them back; r drops
   the Total to near 0; VM A disappears once it ends and VM C appears once it starts,
   top running on; g and p keep one of B and C, c shows both; > and < move the sort column
   (the header names it, its title has a *), o flips the order (the column's values go
   down, then up); Down moves the selection; Enter expands the selected VM into its vCPU
   rows and collapses it again; space pauses (PAUSED, the screen frozen across two
   captures 1.5 s apart) and resumes; s sets the interval (the header shows it); h shows
   the help, any key closes it.
4. Resizing to 80x24 and back redraws: every line within the width, the header on line 1.
5. q exits 0 and the terminal is restored (canonical mode, no alternate screen); so do
   Ctrl-C (SIGINT) in a second window and SIGTERM in a third.
6. Standard output not a terminal: exit 1 and one line that says so."""
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from testlib import *  # noqa: E402,F403

need_kvm()
if os.geteuid() != 0:
    skip("counting another process's trace events needs root")
if not shutil.which("tmux"):
    skip("tmux is not installed (apt-get install tmux)")
# 6. (standard output is a pipe here)
probe = subprocess.run([vmscope(), "top"], stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=10)
if "without ncurses" in probe.stderr:
    skip("vmscope was built without ncurses: " + probe.stderr.strip())
check_eq(probe.returncode, 1, "top without a terminal: exit 1")
check(len(probe.stderr.splitlines()) == 1 and "not a terminal" in probe.stderr,
      "top without a terminal: one line that says so: %r" % probe.stderr)

W, H = 160, 50
SOCK = "vmscope-test-%d" % os.getpid()
TAG = os.getpid() % 1000000
NAMES = {k: "top%s-%d" % (k, TAG) for k in "abc"}
TITLES = {"NAME", "PID", "VCPUS", "run%", "guest%", "sys%", "runq%", "exits/s", "vmm/s",
          "mmio/s", "io/s", "msr/s", "halt/s", "wake/s", "irq/s", "hcall/s"}
# The lines of the VM view: header, CPU bars, their legend, the table's titles, VM rows
# (selection and expansion marks, the name), vCPU rows.
LINE_KINDS = re.compile(r"vmscope top - |(cpu|all)\d+ +\[|host CPUs |  \*?NAME |"
                        r"[> ][+-]\S|    vcpu")


def tmux(*args, check_rc=True):
    p = subprocess.run(["tmux", "-L", SOCK, "-f", "/dev/null"] + list(args),
                       capture_output=True, text=True, timeout=10)
    if check_rc and p.returncode != 0:
        raise RuntimeError("tmux %s: %s" % (" ".join(args), p.stderr.strip()))
    return p.stdout


def screen(target="top"):
    return tmux("capture-pane", "-p", "-t", target).splitlines()


def keys(*k):
    tmux("send-keys", "-t", "top", *k)
    time.sleep(0.1)


def typed(text):
    tmux("send-keys", "-t", "top", "-l", text)
    keys("Enter")


def number(tok):
    if tok == "-":
        return None
    mult = {"k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}.get(tok[-1:], 1)
    return float(tok.rstrip("kMGTs%")) * mult


def vm_table(lines):
    """(titles, rows) of the VM view: titles without the sort mark, rows as dicts with
    the selection and expansion marks."""
    for i, line in enumerate(lines):
        if line.startswith("  NAME") or line.startswith("  *NAME"):
            titles = [t.lstrip("*") for t in line.split()]
            rows = []
            for row in lines[i + 1:-1]:
                tok = row[2:].split()
                if not tok:
                    break
                if len(tok) != len(titles):
                    continue  # a VM of the host's whose name has spaces
                r = dict(zip(titles, tok))
                r["sel"], r["exp"] = row[0], row[1]
                rows.append(r)
            return titles, rows
    return None, []


def ev_table(lines):
    """{field key: (Total, Current)} of the events view, or None when it is not shown."""
    for i, line in enumerate(lines):
        if line.lstrip("*").startswith("Field"):
            rows = {}
            for row in lines[i + 1:-1]:
                tok = row.split()
                if len(tok) != 3:
                    break
                rows[tok[0]] = (number(tok[1]), number(tok[2]))
            return rows
    return None


def row_of(rows, name):
    return next((r for r in rows if r["NAME"] == name), None)


def wait_screen(pred, timeout, what):
    """The first screen @pred accepts within @timeout seconds (a passed check), else the
    last one (a failed check that shows it)."""
    end = time.monotonic() + timeout
    while True:
        lines = screen()
        try:
            ok = pred(lines)
        except (IndexError, KeyError, TypeError, ValueError):
            ok = False
        if ok or time.monotonic() > end:
            check(ok, "%s (within %.0f s); the screen:\n%s" % (what, timeout, "\n".join(lines)))
            return lines
        time.sleep(0.1)


def expect(pred, what):
    """After a key: the screen shows what @pred wants within 3 s."""
    return wait_screen(pred, 3, what)


def names(lines):
    return [r["NAME"] for r in vm_table(lines)[1]]


def sample_time(lines):
    m = re.search(r" (\d\d:\d\d:\d\d)  every", lines[0])
    return m.group(1) if m else None


def start_vm(tmp, key, *args):
    pidfile = os.path.join(tmp, key + ".pid")
    run(["testvm", "--daemon", "--pidfile", pidfile, "--name", NAMES[key]] + list(args))
    return int(open(pidfile).read())


def shell_cmd():
    """top in a shell that survives Ctrl-C (the trap) and then shows top's exit status
    and the terminal's mode."""
    return ("sh -c %s" % shlex.quote("trap : INT; %s top -s 1s; echo TOP-EXIT=$?; stty -a | "
                                     "grep -o 'icanon\\|-icanon'; sleep 60"
                                     % shlex.quote(os.path.abspath(vmscope()))))


def restored(target, what):
    """After top ended in @target: its exit status 0, canonical mode, no alternate screen."""
    lines = []
    end = time.monotonic() + 5
    while time.monotonic() < end:
        lines = screen(target)
        if any(ln.startswith("TOP-EXIT=") for ln in lines) and "icanon" in "\n".join(lines):
            break
        time.sleep(0.2)
    text = [ln.strip() for ln in lines if ln.strip()]
    check("TOP-EXIT=0" in text, "%s: top exits 0: %s" % (what, text))
    check("icanon" in text and "-icanon" not in text,
          "%s: the terminal is back in canonical mode: %s" % (what, text))
    check_eq(tmux("display-message", "-p", "-t", target, "#{alternate_on}").strip(), "0",
             "%s: the alternate screen is gone" % what)
    check(not any(ln.startswith("vmscope top - ") for ln in lines),
          "%s: top's screen is gone: %s" % (what, text))


def rates():
    """VM A's MMIO and port exit rates on the screens of 5 s, by sample time."""
    seen = {}
    end = time.monotonic() + 5
    while time.monotonic() < end:
        lines = screen()
        r = row_of(vm_table(lines)[1], NAMES["a"])
        if r and number(r["mmio/s"]) is not None and sample_time(lines):
            seen[sample_time(lines)] = (number(r["mmio/s"]), number(r["io/s"]))
        time.sleep(0.25)
    return seen


def main(tmp):
    truth_a = os.path.join(tmp, "a.json")
    t0 = time.monotonic()
    pid_a = start_vm(tmp, "a", "--vcpus", "2", "--phase", "100:15s", "--mmio", "300", "--pio",
                     "100", "--truth", truth_a)
    pid_b = start_vm(tmp, "b", "--vcpus", "1", "--phase", "20:60s")
    vms = [pid_a, pid_b]
    try:
        tmux("new-session", "-d", "-s", "top", "-x", str(W), "-y", str(H), shell_cmd(), ";",
             "set-option", "-g", "remain-on-exit", "on")
        # 1. the header, the host CPUs
        lines = wait_screen(lambda s: row_of(vm_table(s)[1], NAMES["a"]) is not None and
                            number(row_of(vm_table(s)[1], NAMES["a"])["mmio/s"]) is not None,
                            8, "VM A's row with rates")
        check(re.match(r"vmscope top - \S+ \d\d:\d\d:\d\d  every 1s", lines[0]),
              "the header names host, time, interval: %r" % lines[0])
        cpus = [ln for ln in lines if re.match(r"cpu\d+ +\[[usGSw.]{20}\] g", ln)]
        check(len(cpus) >= 1, "a bar per host CPU: %s" % lines[1:4])
        check(any("G guest" in ln and "S steal" in ln and ". idle" in ln for ln in lines),
              "the bars' legend names guest, steal, idle")
        seen = rates()

        # 3. the events view, limited to VM A: b, g, x, f, c, r
        keys("g")
        typed("^%s$" % NAMES["a"])
        keys("b")
        lines = expect(lambda s: "events.userspace_exit" in (ev_table(s) or {}),
                       "b: the events view")
        ev = ev_table(lines) or {}
        check(any(re.match(r"\*?Field +\*?Total +\*?Current$", ln.strip()) for ln in lines),
              "the events view has the columns Field, Total, Current")
        check("cpu.run_s" in ev and "kvm.exits" in ev and "events.kvm_mmio" in ev,
              "the events view lists fields as rows: %s" % sorted(ev))
        check("events.userspace_exit.mmio" not in ev, "child events hidden at first")
        check("guest=^%s$" % NAMES["a"] in lines[0], "the header shows the guest filter")
        keys("x")
        lines = expect(lambda s: {"events.userspace_exit.mmio", "events.userspace_exit.io"} <=
                       set(ev_table(s) or {}), "x shows the child events")
        ev_mmio = (ev_table(lines) or {}).get("events.userspace_exit.mmio", (None, None))[1]
        keys("x")
        expect(lambda s: "events.userspace_exit" in (ev_table(s) or {}) and
               "events.userspace_exit.mmio" not in (ev_table(s) or {}),
               "x hides the child events again")
        keys("f")
        typed(r"^events\.kvm_(mmio|pio)$")
        lines = expect(lambda s: sorted(ev_table(s) or {}) == ["events.kvm_mmio",
                                                                "events.kvm_pio"],
                       "f keeps the fields its regex matches")
        check("fields=" in lines[0], "the header shows the fields filter")
        keys("c")
        lines = expect(lambda s: {"cpu.run_s", "events.kvm_mmio"} <= set(ev_table(s) or {}),
                       "c brings every field back")
        check("guest=" not in lines[0] and "fields=" not in lines[0],
              "c clears the filters in the header: %r" % lines[0])
        keys("g")
        typed("^%s$" % NAMES["a"])
        lines = expect(lambda s: "guest=" in s[0], "g again")
        before = (ev_table(lines) or {}).get("events.userspace_exit", (None, None))
        keys("r")
        lines = expect(lambda s: "totals reset" in s[-1], "r: the status line says so")
        after = (ev_table(lines) or {}).get("events.userspace_exit", (None, None))
        if check(before[0] is not None and after[0] is not None and before[1],
                 "Totals before and after r: %s %s" % (before, after)):
            check(before[0] > 3 * before[1] and after[0] <= 2 * before[1],
                  "r drops the Total of events.userspace_exit near 0: %s before, %s after "
                  "(%.0f/s)" % (before[0], after[0], before[1]))
        keys("c")
        keys("b")
        expect(lambda s: vm_table(s)[0] is not None, "b: back to the VM view")

        # 2. the rates against the truth, once VM A is over
        wait_pid_exit(pid_a, 15)
        t = load_json(truth_a)
        length = (t["phases"][0]["end_ns"] - t["phases"][0]["start_ns"]) / 1e9
        want = [sum(v["phases"][0]["exits"][k] for v in t["vcpus"]) / length
                for k in ("mmio", "pio")]
        if check(len(seen) >= 3, "VM A's rates on at least 3 screens: %s" % seen):
            for i, what in enumerate(("mmio/s", "io/s")):
                got = sum(s[i] for s in seen.values()) / len(seen)
                print("VM A %s: %.1f on the screen (%d samples), %.1f the guest's" %
                      (what, got, len(seen), want[i]))
                check_close(got, want[i], 0.05 * want[i], "VM A's %s over %d samples vs its "
                            "guest's %.1f (schedule: %d)" % (what, len(seen), want[i],
                                                              2 * (300, 100)[i]))
        print("events view: events.userspace_exit.mmio Current %s" % ev_mmio)
        if check(ev_mmio is not None, "the events view's Current of userspace_exit.mmio"):
            check_close(ev_mmio, want[0], 0.05 * want[0],
                        "events view: Current of events.userspace_exit.mmio vs the guest's")

        # 3. VMs that go and come while top runs
        lines = wait_screen(lambda s: NAMES["a"] not in names(s), 4, "VM A gone after its end")
        check(not any(ln.startswith("TOP-EXIT") for ln in lines), "top runs on after VM A ended")
        check("cannot" not in lines[-1], "no error after VM A ended: %r" % lines[-1])
        pid_c = start_vm(tmp, "c", "--vcpus", "1", "--phase", "60:60s")
        vms.append(pid_c)
        lines = wait_screen(lambda s: NAMES["c"] in names(s) and
                            number(row_of(vm_table(s)[1], NAMES["c"])["run%"]) is not None,
                            5, "VM C appears with its rates")
        check("cannot" not in lines[-1], "no error after VM C started: %r" % lines[-1])

        # g, p, c on B and C
        keys("g")
        typed(NAMES["b"])
        expect(lambda s: NAMES["b"] in names(s) and NAMES["c"] not in names(s),
               "g %s: VM B, not VM C" % NAMES["b"])
        keys("c")
        expect(lambda s: NAMES["b"] in names(s) and NAMES["c"] in names(s),
               "c: VMs B and C again")
        keys("p")
        typed(str(pid_c))
        lines = expect(lambda s: names(s) == [NAMES["c"]], "p %d: only VM C" % pid_c)
        check("pid=%d" % pid_c in lines[0], "the header shows the pid filter")

        # Enter expands the selected VM (C, the only one) into its vCPUs, and collapses it
        keys("Enter")
        lines = expect(lambda s: names(s) == [NAMES["c"], "vcpu0"], "Enter: VM C's vCPU row")
        rows = vm_table(lines)[1]
        check(rows[0]["exp"] == "-" and rows[1]["PID"] != str(pid_c),
              "the VM marked expanded, the vCPU row with its thread id: %s" % rows)
        keys("Enter")
        lines = expect(lambda s: names(s) == [NAMES["c"]], "Enter again collapses VM C")
        check(vm_table(lines)[1][0]["exp"] == "+", "the VM marked collapsed")
        keys("c")
        expect(lambda s: NAMES["b"] in names(s) and NAMES["c"] in names(s), "c: every VM")

        # sorting: > < o; Down
        keys(">")
        expect(lambda s: "sort guest% desc" in s[0] and
               any(ln.startswith("  NAME") and "*guest%" in ln for ln in s),
               "> sorts by the next column, guest%, its title marked")
        keys("<")
        lines = expect(lambda s: "sort run% desc" in s[0] and
                       any(ln.startswith("  NAME") and "*run%" in ln for ln in s),
                       "< goes back to run%")
        runs = [number(r["run%"]) for r in vm_table(lines)[1]]
        runs = [x for x in runs if x is not None]
        check(len(runs) >= 2 and runs == sorted(runs, reverse=True), "run%% descending: %s" % runs)
        keys("o")
        lines = expect(lambda s: "sort run% asc" in s[0], "o flips the order")
        runs = [number(r["run%"]) for r in vm_table(lines)[1]]
        runs = [x for x in runs if x is not None]
        check(len(runs) >= 2 and runs == sorted(runs), "o: run%% ascending: %s" % runs)
        keys("o")
        lines = expect(lambda s: "sort run% desc" in s[0], "o flips the order back")
        rows = vm_table(lines)[1]
        sel = [i for i, r in enumerate(rows) if r["sel"] == ">"]
        if check(len(rows) >= 2 and len(sel) == 1, "one row selected: %s" % rows):
            step, key = (1, "Down") if sel[0] + 1 < len(rows) else (-1, "Up")
            keys(key)
            expect(lambda s: [i for i, r in enumerate(vm_table(s)[1]) if r["sel"] == ">"] ==
                   [sel[0] + step], "%s selects the %s row" % (key, "next" if step > 0
                                                                else "previous"))

        # space pauses: the screen is frozen
        keys("Space")
        first = expect(lambda s: "PAUSED" in s[0], "space: the header says PAUSED")
        time.sleep(1.5)
        check(screen() == first, "paused: the screen is frozen across 1.5 s")
        keys("Space")
        expect(lambda s: "PAUSED" not in s[0] and sample_time(s) != sample_time(first),
               "space again: sampling resumes")

        # s, h
        keys("s")
        typed("2s")
        expect(lambda s: "every 2s" in s[0], "s 2s: the header shows the interval")
        keys("s")
        typed("1s")
        expect(lambda s: "every 1s" in s[0], "s 1s")
        keys("h")
        expect(lambda s: any("vmscope top: keys" in ln for ln in s) and
               any(re.search(r"\bx +fields view: show or hide", ln) for ln in s), "h shows the help")
        keys("z")
        expect(lambda s: not any("vmscope top: keys" in ln for ln in s),
               "any key closes the help")

        # 4. resizing
        for w, h in ((80, 24), (W, H)):
            tmux("resize-window", "-t", "top", "-x", str(w), "-y", str(h))
            time.sleep(0.5)
            lines = screen()
            check(len(lines) <= h + 1 and all(len(ln) <= w for ln in lines),
                  "%dx%d: every line within the width: %s" % (w, h, [len(ln) for ln in lines]))
            check(lines[0].startswith("vmscope top - "), "%dx%d: the header on line 1: %r"
                  % (w, h, lines[0]))
            check(len(lines) == h and lines[-1].startswith("h help"),
                  "%dx%d: the status line on the last line: %r" % (w, h, lines[-1:]))
            titles, rows = vm_table(lines)
            check(titles and titles[0] == "NAME" and set(titles) <= TITLES and
                  NAMES["b"] in names(lines), "%dx%d: the table redrawn with whole columns: %s"
                  % (w, h, titles))
            odd = [ln for ln in lines[:-1] if ln and not LINE_KINDS.match(ln)]
            check(not odd, "%dx%d: no line out of place: %s" % (w, h, odd))
            if w == W:
                check(titles and titles[-1] == "hcall/s", "full width: every column back")

        # 5. q restores the terminal; so do Ctrl-C and SIGTERM
        keys("q")
        restored("top", "q")
        tmux("new-window", "-d", "-t", "top", "-n", "sigint", shell_cmd())
        end = time.monotonic() + 5
        while time.monotonic() < end:
            if screen("top:sigint")[0].startswith("vmscope top - "):
                break
            time.sleep(0.2)
        tmux("send-keys", "-t", "top:sigint", "C-c")
        restored("top:sigint", "Ctrl-C")
        tmux("new-window", "-d", "-t", "top", "-n", "sigterm", shell_cmd())
        sh = int(tmux("display-message", "-p", "-t", "top:sigterm", "#{pane_pid}"))
        top_pid = None
        end = time.monotonic() + 5
        while time.monotonic() < end:
            with open("/proc/%d/task/%d/children" % (sh, sh)) as f:
                kids = [int(x) for x in f.read().split()]
            if kids and screen("top:sigterm")[0].startswith("vmscope top - "):
                top_pid = kids[0]
                break
            time.sleep(0.2)
        if check(top_pid is not None, "top runs in a third window"):
            os.kill(top_pid, signal.SIGTERM)
            restored("top:sigterm", "SIGTERM")
    finally:
        tmux("kill-server", check_rc=False)
        terminate(vms)
    print("top test took %.1f s" % (time.monotonic() - t0))


with tempfile.TemporaryDirectory() as tmp:
    main(tmp)
finish()
