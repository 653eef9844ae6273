#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The vmscope command line as a user meets it: help and version, the help of every
command against the options it really accepts and against its manual page, and the errors
for wrong command lines (exit 2), for missing VMs and a missing or forbidden /dev/kvm
(exit 1). Every error must be one line on stderr that names what was wrong. The expected
values come from the sources (meson.build, the command list) and from this file, never from
the output being checked."""
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from testlib import *  # noqa: E402,F403

SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COMMANDS = ["testvm", "stat", "top", "serve", "record", "report", "export", "validate"]  # the subcommands; "help" is listed too
SENTINEL = "--no-such-option-zz"
# A valid value for each metavariable the help texts use; an option whose metavariable is
# not here fails the acceptance check (add a sample value when adding one).
SAMPLE = {"N": "1", "NAME": "x", "DUTY:TIME": "50:1s", "TIME": "1s", "RATE": "1",
          "CPU[,CPU...]": "0", "FILE": "/nonexistent/vmscope-test-file", "FMT": "json",
          "PID": "1", "EVENT": "mmio", "KEY": "time", "VM": "x", "KIB": "64",
          "CLOCK": "local", "VER": "7", "ALG": "zstd", "ARG": "-S",
          "DUMP": "/nonexistent/vmscope-test-dump", "URI": "qemu:///system",
          "A B": ["/nonexistent/vmscope-a", "/nonexistent/vmscope-b"], "REGEX": "exits",
          "BYTES": "4096", "ADDR:PORT": "127.0.0.1:9977"}
# "  -c, --vcpus N            text": an option line of a help text.
OPTION_LINE = re.compile(r"^\s+(?:-(?P<short>\w),\s+)?--(?P<long>[a-z][a-z0-9-]*)"
                         r"(?: (?P<meta>[A-Z][A-Z0-9:,.\[\]]*(?: [A-Z][A-Z0-9]*)?))?(?:\s{2,}|$)")
LONG_OPT = re.compile(r"(?<![\w-])--([a-z][a-z0-9-]*)")


def vm(args, timeout=30):
    return run(args, timeout=timeout, check=False)


def show(args):
    return "vmscope " + " ".join(args)


def one_line(p, what):
    """The only line of p.stderr, or None (and a failed check) when there is not exactly
    one newline-terminated line."""
    lines = p.stderr.splitlines()
    if check(len(lines) == 1 and p.stderr.endswith("\n"),
             "%s: exactly one line on stderr, got %d: %r" % (what, len(lines), p.stderr)):
        return lines[0]
    return None


def expect_error(args, code, names, what=None, forbid=()):
    """args exits with code, prints nothing on stdout and one line on stderr that contains
    every string of names and none of forbid."""
    what = what or show(args)
    p = vm(args)
    check_eq(p.returncode, code, "%s: exit code" % what)
    check_eq(p.stdout, "", "%s: stdout" % what)
    line = one_line(p, what)
    if line is None:
        return None
    for n in names:
        check(n in line, "%s: the error names %r: %r" % (what, n, line))
    for f in forbid:
        check(not re.search(f, line, re.I), "%s: the error does not match /%s/: %r"
              % (what, f, line))
    return line


def project_version():
    with open(os.path.join(SRC, "meson.build")) as f:
        m = re.search(r"project\(\s*'vmscope'.*?version\s*:\s*'([^']*)'", f.read(), re.S)
    if not m:
        print("FAIL: no version in project() of %s/meson.build" % SRC)
        sys.exit(1)
    return m.group(1)


# ---- vmscope, --help, -h, help, --version ----

p = vm([])
check_eq(p.returncode, 2, "vmscope without arguments: exit code")
check_eq(p.stdout, "", "vmscope without arguments: stdout")
check(p.stderr.startswith("Usage: vmscope"),
      "vmscope without arguments: usage on stderr, got %r" % p.stderr[:80])

top_help = None
for args in (["--help"], ["-h"], ["help"]):
    p = vm(args)
    check_eq(p.returncode, 0, "%s: exit code" % show(args))
    check_eq(p.stderr, "", "%s: stderr" % show(args))
    check(p.stdout.startswith("Usage: vmscope"),
          "%s: starts with 'Usage: vmscope', got %r" % (show(args), p.stdout[:80]))
    for cmd in COMMANDS + ["help"]:
        check(re.search(r"^\s+%s\s+\S" % re.escape(cmd), p.stdout, re.M),
              "%s lists the command %r with a summary" % (show(args), cmd))
    if top_help is None:
        top_help = p.stdout
    else:
        check(p.stdout == top_help, "%s prints the same text as vmscope --help" % show(args))

version = project_version()
check(re.fullmatch(r"\d+\.\d+\.\d+", version),
      "project() version in meson.build is X.Y.Z: %r" % version)
for args in (["--version"], ["-V"]):
    p = vm(args)
    check_eq(p.returncode, 0, "%s: exit code" % show(args))
    check_eq(p.stdout, "vmscope %s\n" % version, "%s: output" % show(args))
    check_eq(p.stderr, "", "%s: stderr" % show(args))

# ---- the help of each command, the options it accepts, its manual page ----


def help_options(text):
    """{long option: (short option or None, metavariable or None)} of a help text."""
    opts = {}
    for line in text.splitlines():
        m = OPTION_LINE.match(line)
        if m:
            opts[m.group("long")] = (m.group("short"), m.group("meta"))
    return opts


def check_accepted(cmd, opt, meta, spelled):
    """`vmscope CMD OPT [VALUE] SENTINEL`: if OPT is accepted (with a valid value), parsing
    goes on to the sentinel, and the complaint must be about the sentinel, not about OPT."""
    args = [cmd, spelled]
    if meta is not None:
        if not check(meta in SAMPLE, "vmscope %s %s: a sample value for %s (add it to SAMPLE)"
                     % (cmd, spelled, meta)):
            return
        sample = SAMPLE[meta]  # a list for an option that takes two values
        args += sample if isinstance(sample, list) else [sample]
    args.append(SENTINEL)
    line = expect_error(args, 2, [SENTINEL], "%s (is %s accepted?)" % (show(args), spelled))
    if line is not None:
        mention = re.compile(r"(?<![\w-])%s(?![\w-])" % re.escape(spelled))
        check(not mention.search(line.replace(SENTINEL, "")),
              "%s: the error is about %s, not %s: %r" % (show(args), SENTINEL, spelled, line))


for cmd in COMMANDS:
    texts = {}
    for args in (["help", cmd], [cmd, "--help"], [cmd, "-h"]):
        p = vm(args)
        check_eq(p.returncode, 0, "%s: exit code" % show(args))
        check_eq(p.stderr, "", "%s: stderr" % show(args))
        check(p.stdout.startswith("Usage: vmscope %s" % cmd),
              "%s starts with 'Usage: vmscope %s', got %r" % (show(args), cmd, p.stdout[:60]))
        texts[show(args)] = p.stdout
    ref = texts["vmscope help %s" % cmd]
    for k, t in texts.items():
        check(t == ref, "%s prints the same text as vmscope help %s" % (k, cmd))

    opts = help_options(ref)
    check("help" in opts, "vmscope %s --help documents --help" % cmd)
    check(len(opts) > 1, "vmscope %s --help lists its options (found %s)" % (cmd, sorted(opts)))
    # Every --option the text mentions anywhere is one of its documented options.
    for o in sorted(set(LONG_OPT.findall(ref))):
        check(o in opts, "vmscope %s --help mentions --%s, which its option list lacks"
              % (cmd, o))
    for o, (short, meta) in sorted(opts.items()):
        if o == "help":
            continue  # it prints the help and exits 0, checked above
        check_accepted(cmd, "--" + o, meta, "--" + o)
        if short:
            check_accepted(cmd, "--" + o, meta, "-" + short)

    doc = os.path.join(SRC, "doc", "vmscope-%s.md" % cmd)
    if check(os.path.exists(doc), "the manual page %s exists" % doc):
        with open(doc) as f:
            documented = set(LONG_OPT.findall(f.read()))
        for o in sorted(opts):
            check(o in documented, "%s mentions --%s (an option of vmscope %s --help)"
                  % (doc, o, cmd))

# ---- wrong command lines: exit 2, one line that names what was wrong ----

expect_error(["no-such-cmd"], 2, ["no-such-cmd", "--help"])
expect_error(["help", "no-such-cmd"], 2, ["no-such-cmd"])
expect_error(["--no-such-option"], 2, ["--no-such-option"])
for cmd in COMMANDS:
    expect_error([cmd, "--no-such-option"], 2, ["--no-such-option"])
    expect_error([cmd, "-Z"], 2, ["-Z"])
    expect_error([cmd, "extra-argument"], 2, ["extra-argument"])

with tempfile.TemporaryDirectory() as tmp:
    pidfile = os.path.join(tmp, "vm.pid")
    BAD = [
        (["testvm", "--vcpus", "0"], "--vcpus"),
        (["testvm", "--vcpus", "65"], "--vcpus"),
        (["testvm", "--vcpus", "abc"], "--vcpus"),
        (["testvm", "--vcpus"], "--vcpus"),  # no value
        (["testvm", "--phase", "101:1s"], "--phase"),
        (["testvm", "--phase", "50"], "--phase"),
        (["testvm", "--phase", "50:0s"], "--phase"),
        (["testvm", "--phase", "50:xyz"], "--phase"),
        (["testvm", "--period", "0"], "--period"),
        (["testvm", "--period", "2h"], "--period"),
        (["testvm", "--mmio", "-1"], "--mmio"),
        (["testvm", "--pin", "0", "--vcpus", "2"], "--pin"),
        (["testvm", "--pidfile", pidfile], "--pidfile"),
        (["testvm", "--name", "a" * 16], "--name"),
        (["testvm", "--format", "csv"], "--format"),
        (["stat", "--interval", "1ms"], "--interval"),
        (["stat", "--interval", "abc"], "--interval"),
        (["stat", "--pid", "0"], "--pid"),
        (["stat", "--pid"], "--pid"),  # no value
        (["stat", "--count", "0"], "--count"),
        (["stat", "--format", "xml"], "--format"),
        (["record", "--duration", "0s"], "--duration"),
        (["record", "--buffer-size", "1"], "--buffer-size"),
        (["record", "--file-version", "5"], "--file-version"),
        (["record", "--compression", "lz4"], "--compression"),
        (["record", "--file-version", "6", "--compression", "zstd"], "--compression"),
        (["record", "--pid", "x"], "--pid"),
        (["report", "exits", "--event", "cpuid", "f.dat"], "--event"),
        (["report", "exits", "--sort", "colour", "f.dat"], "--sort"),
        (["report", "exits", "--format", "xml", "f.dat"], "--format"),
        (["report", "exits", "--vcpu", "x", "f.dat"], "--vcpu"),
        (["report", "exits", "--per-vm", "--per-vcpu", "f.dat"], "--per-vm"),
        (["export", "svg", "f.dat", "-o", "f.json"], "svg"),
        (["export", "perfetto", "f.dat"], "--output"),
        (["export", "perfetto", "--to", "soon", "f.dat", "-o", "f.json"], "--to"),
    ]
    for args, opt in BAD:
        expect_error(args, 2, [opt])
    check(not os.path.exists(pidfile), "a rejected --pidfile is not written")

# ---- stat: the VMs of this host; none matching -p/-g is exit 1 ----

p = vm(["stat", "--once"])
check_eq(p.returncode, 0, "vmscope stat --once: exit code (stderr %r)" % p.stderr)
check(p.stdout != "", "vmscope stat --once prints a report")
me = str(os.getpid())  # this script: a process, but not a VM
expect_error(["stat", "--once", "--pid", me], 1, ["no VM", me])
# The message names the guest asked for and no pid, since none was given.
expect_error(["stat", "--once", "--guest", "no-such-vm"], 1, ["no VM", "no-such-vm"],
             forbid=[r"\bpid 0\b"])

# ---- /dev/kvm missing or forbidden: exit 1, one line saying what to do ----


def part_skip(what, p):
    print("SKIP: %s: %s" % (what, (p.stderr or p.stdout).strip() or "exit %d" % p.returncode))


def in_namespace(script, *args):
    """Run a shell script in a private mount namespace (the host's mounts are untouched)
    with $0 = the vmscope binary."""
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script,
                           vmscope()] + list(args), capture_output=True, text=True, timeout=30)


NO_KVM = "mount -t tmpfs tmpfs /dev && test ! -e /dev/kvm"
if not shutil.which("unshare"):
    print("SKIP: missing and forbidden /dev/kvm: no unshare(1) here")
else:
    probe = in_namespace(NO_KVM)
    if probe.returncode != 0:
        part_skip("missing /dev/kvm: cannot mount a private /dev", probe)
    else:
        p = in_namespace(NO_KVM + ' && exec "$0" testvm --phase 50:1s')
        what = "testvm without /dev/kvm"
        check_eq(p.returncode, 1, "%s: exit code (stderr %r)" % (what, p.stderr))
        line = one_line(p, what)
        if line is not None:
            check("/dev/kvm" in line, "%s: the error names /dev/kvm: %r" % (what, line))
            check(re.search(r"\bkvm\b.*\bmodule\b|\bmodprobe\b", line),
                  "%s: the error suggests loading the kvm module: %r" % (what, line))

    # A /dev/kvm that only root may open, and an unprivileged user: EACCES whatever the
    # host's own /dev/kvm allows.
    rdev = os.stat("/dev/kvm").st_rdev if os.path.exists("/dev/kvm") else os.makedev(10, 232)
    FORBIDDEN = ("mount -t tmpfs tmpfs /dev && mknod -m 600 /dev/kvm c %d %d && "
                 "exec setpriv --reuid=65534 --regid=65534 --clear-groups "
                 % (os.major(rdev), os.minor(rdev)))
    if not shutil.which("setpriv"):
        print("SKIP: forbidden /dev/kvm: no setpriv(1) here")
    else:
        probe = in_namespace(FORBIDDEN + '"$0" --version')
        if probe.returncode != 0:
            part_skip("forbidden /dev/kvm: cannot run vmscope as uid 65534 in a private /dev",
                      probe)
        else:
            p = in_namespace(FORBIDDEN + '"$0" testvm --phase 50:1s')
            what = "testvm as uid 65534 with a root-only /dev/kvm"
            check_eq(p.returncode, 1, "%s: exit code (stderr %r)" % (what, p.stderr))
            line = one_line(p, what)
            if line is not None:
                check("/dev/kvm" in line, "%s: the error names /dev/kvm: %r" % (what, line))
                check(re.search(r"permission|denied", line, re.I),
                      "%s: the error says permission is denied: %r" % (what, line))
                check(re.search(r"\broot\b|\bgroup\b", line),
                      "%s: the error suggests root or the group of /dev/kvm: %r"
                      % (what, line))

# ---- testvm --truth to a file that cannot be written: exit 1, names the file ----

if not os.path.exists("/dev/kvm") or not os.access("/dev/kvm", os.R_OK | os.W_OK):
    print("SKIP: testvm --truth to an unwritable file: no usable /dev/kvm here")
else:
    bad = "/proc/nonexistent/x"
    args = ["testvm", "--phase", "50:0.3s", "--vcpus", "1", "--quiet", "--truth", bad]
    p = vm(args)
    check_eq(p.returncode, 1, "%s: exit code (stderr %r)" % (show(args), p.stderr))
    line = one_line(p, show(args))
    if line is not None:
        check(bad in line, "%s: the error names %s: %r" % (show(args), bad, line))
finish()
