# SPDX-License-Identifier: GPL-2.0-or-later
"""libvirt for vmscope's tests, on a host without systemd, and the machine left as found.

Lab brings up libvirtd + virtlogd as the recipe of the libvirt lab does
(../shared/data/libvirt-lab/README.md, beside the repository): the libvirt-qemu account that Debian's qemu
driver looks up before it reads qemu.conf, a qemu.conf that runs QEMU as root, virtlogd
(the QEMU driver needs its socket), then libvirtd, each in the background with its log in
the test's temporary directory. Optionally it puts libvirt into cgroup-V1-only mode (the
hugetlb controller moved off cgroup2 onto its own v1 hierarchy, so cgroup2 offers no
controller and libvirt does not enable its V2 backend; per-CPU `virsh cpu-stats` needs V1).
It defines and starts small domains (direct kernel boot of a multiboot image, or no kernel
at all: SeaBIOS finds nothing to boot and waits), pauses, resumes and dumps guest memory.

Everything it changed is undone by close(), which also runs at exit and on SIGTERM: its
domains destroyed and undefined, the daemons it started stopped, the cgroup mode, the
machine cgroups, qemu.conf (byte for byte), the accounts it created and the files it left
under /run/libvirt, /etc/libvirt, /var/lib/libvirt, /var/log/libvirt and /var/cache/libvirt
removed. A libvirtd that was already running is used as it is and left running; then only
the harness's own domains and their log files are removed.

    with Lab(cgroup_v1=True) as lab:
        pid = lab.start_domain("vmscope-t1", kernel="/tmp/x.bin", cmdline="a=b")
        lab.pause("vmscope-t1")

Lab() raises Skip (a reason for exit 77) when the host cannot run it; see skip_reason().
"""
import atexit
import hashlib
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import xml.sax.saxutils

URI = "qemu:///system"
LIBVIRTD = "/usr/sbin/libvirtd"
VIRTLOGD = "/usr/sbin/virtlogd"
QEMU = "/usr/bin/qemu-system-x86_64"
QEMU_CONF = "/etc/libvirt/qemu.conf"
CGROOT = "/sys/fs/cgroup"
CG2 = CGROOT + "/unified"
HUGETLB_V1 = CGROOT + "/hugetlb"
# Trees where libvirtd and virtlogd create files; what the harness's daemons add there is
# removed at the end.
STATE_TREES = ["/run/libvirt", "/etc/libvirt", "/var/lib/libvirt", "/var/log/libvirt",
               "/var/cache/libvirt"]
# Top-level files the daemons write into /run.
RUN_FILES = ["/run/libvirtd.pid", "/run/virtlogd.pid"]
# The account databases; the shadow tools also rewrite their "-" backups.
ACCOUNT_FILES = ["/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow"]

# qemu64 with the TSC-deadline timer. svm is disabled because libvirt's CPU map lists it in
# qemu64 and match='exact' makes libvirt refuse the domain on a host without svm ("Host CPU
# does not provide required features: svm"; KVM-PVM has neither svm nor vmx). QEMU turns
# svm off under KVM anyway: QEMU gets -cpu qemu64,tsc-deadline=on,svm=off.
DEFAULT_CPU_XML = ("<cpu mode='custom' match='exact'><model fallback='allow'>qemu64</model>"
                   "<feature policy='require' name='tsc-deadline'/>"
                   "<feature policy='disable' name='svm'/></cpu>")


class Skip(Exception):
    """The host cannot run the libvirt tests; str() is the reason."""


class LabError(Exception):
    """A step failed; the message carries libvirt's or the daemon's words."""


def sh(args, check=True, timeout=60, **kw):
    p = subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kw)
    if check and p.returncode != 0:
        raise LabError("%s failed (%d): %s" % (" ".join(args), p.returncode,
                                                (p.stderr or p.stdout).strip()))
    return p


def virsh(*args, check=True, timeout=60):
    return sh(["virsh", "-q", "-c", URI] + list(args), check=check, timeout=timeout)


def procs_named(*names):
    """{pid: comm} of the processes whose comm is one of names."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/comm" % d) as f:
                comm = f.read().strip()
        except OSError:
            continue
        if comm in names:
            out[int(d)] = comm
    return out


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child is not alive for our purposes.
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def skip_reason():
    """Why the libvirt tests cannot run here, or None."""
    if os.geteuid() != 0:
        return "the libvirt tests need root (accounts, qemu.conf, cgroup mounts, daemons)"
    for path, pkg in ((LIBVIRTD, "libvirt-daemon"), (VIRTLOGD, "libvirt-daemon"),
                      ("/usr/bin/virsh", "libvirt-clients"), (QEMU, "qemu-system-x86")):
        if not os.access(path, os.X_OK):
            return "%s is not installed (Debian package %s)" % (path, pkg)
    if not os.path.exists("/usr/lib/x86_64-linux-gnu/libvirt/connection-driver/"
                          "libvirt_driver_qemu.so"):
        return "libvirt's QEMU driver is not installed (libvirt-daemon-driver-qemu)"
    if not os.path.exists("/dev/kvm"):
        return "/dev/kvm is absent: the libvirt tests start KVM domains"
    for tool in ("groupadd", "useradd", "userdel", "groupdel", "usermod", "getent"):
        if not shutil.which(tool):
            return "%s is missing (Debian packages passwd, libc-bin)" % tool
    return None


def write_multiboot_hlt(path, load_addr=0x100000):
    """A multiboot (v1) image QEMU's -kernel loads at load_addr: a 32-byte header with the
    a.out kludge (no ELF needed), then `hlt; jmp .-1`. The multiboot entry runs with
    interrupts off, so vCPU 0 halts for good and uses no CPU. Returns the bytes written."""
    magic, flags = 0x1BADB002, 0x00010000
    checksum = (-(magic + flags)) & 0xFFFFFFFF
    entry = load_addr + 32
    header = struct.pack("<8I", magic, flags, checksum, load_addr, load_addr, 0, 0, entry)
    image = header + bytes([0xF4, 0xEB, 0xFD])  # hlt; jmp back to the hlt
    with open(path, "wb") as f:
        f.write(image)
    return image


def _tree(root):
    """Every path under root (root included), or an empty set when it does not exist."""
    out = set()
    if not os.path.lexists(root):
        return out
    out.add(root)
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            out.add(os.path.join(dirpath, n))
    return out


def _cgroup_machine_dirs():
    """Every cgroup directory named machine* (libvirt's partition) in every hierarchy."""
    out = set()
    try:
        hier = os.listdir(CGROOT)
    except OSError:
        return out
    for h in hier:
        base = os.path.join(CGROOT, h)
        if not os.path.isdir(base) or os.path.islink(base):
            continue
        try:
            names = os.listdir(base)
        except OSError:
            continue
        for n in names:
            if n.startswith("machine") and os.path.isdir(os.path.join(base, n)):
                for dirpath, _, _ in os.walk(os.path.join(base, n)):
                    out.add(dirpath)
    return out


def _cg2_controllers():
    try:
        with open(CG2 + "/cgroup.controllers") as f:
            return f.read().split()
    except OSError:
        return None


class Lab:
    def __init__(self, cgroup_v1=False, workdir=None, start_timeout=60):
        reason = skip_reason()
        if reason:
            raise Skip(reason)
        self.cgroup_v1 = cgroup_v1
        self.start_timeout = start_timeout
        self.own_workdir = workdir is None
        self.workdir = workdir or tempfile.mkdtemp(prefix="vmscope-libvirt-")
        self.domains = {}  # name -> QEMU pid (0 before start)
        self.persistent = {}  # name -> defined with virsh define (else virsh create)
        self.started = []  # [(name, Popen)] of the daemons we started
        self.created_users, self.created_groups = [], []
        self.qemu_conf_orig = None  # (bytes, stat) or None for "did not exist"
        self.account_backups = {}  # "/etc/passwd-" -> (bytes, stat) or None
        self.qemu_conf_written = False
        self.mounted_hugetlb = self.made_hugetlb_dir = False
        self.trees_before = {}
        self.run_files_before = set()
        self.cgroups_before = set()
        self.domain_logs_before = set()
        self.closed = False
        self.external_libvirtd = False
        self.notes = []  # what close() could not undo
        self._old_sigterm = None
        atexit.register(self.close)
        try:
            self._old_sigterm = signal.signal(signal.SIGTERM, self._on_sigterm)
        except ValueError:  # not the main thread: the caller handles signals
            pass
        try:
            self._start()
        except BaseException:
            self.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def _on_sigterm(self, signum, frame):
        # Unwind through the callers' finally blocks into close().
        raise SystemExit(128 + signum)

    def path(self, name):
        return os.path.join(self.workdir, name)

    # --- bring-up ----------------------------------------------------------------------

    def _start(self):
        daemons = procs_named("libvirtd")
        if daemons:
            # Someone else's libvirtd: use it as it is.
            self.external_libvirtd = True
            if self.cgroup_v1 and _cg2_controllers():
                raise Skip("cgroup-V1-only mode needs a libvirtd restart, and a libvirtd this "
                           "test did not start is running (pid %s)"
                           % ",".join(map(str, daemons)))
            self._wait_libvirtd(None)
            self.domain_logs_before = _tree("/var/log/libvirt/qemu")
            return
        for root in STATE_TREES:
            self.trees_before[root] = _tree(root)
        self.run_files_before = {p for p in RUN_FILES if os.path.lexists(p)}
        self.cgroups_before = _cgroup_machine_dirs()
        self._accounts()
        self._qemu_conf()
        if self.cgroup_v1:
            self._cgroup_v1_on()
        if not procs_named("virtlogd"):
            self._spawn("virtlogd", [VIRTLOGD])
            self._wait(lambda: self._socket_answers("/run/libvirt/virtlogd-sock"),
                       "virtlogd's socket /run/libvirt/virtlogd-sock", "virtlogd")
        self._spawn("libvirtd", [LIBVIRTD])
        self._wait_libvirtd("libvirtd")

    def _accounts(self):
        """Debian's qemu driver resolves its compiled-in user libvirt-qemu before it reads
        qemu.conf; libvirt-daemon-system would create it (and pull in systemd)."""
        self.account_backups = {}
        for f in ACCOUNT_FILES:
            try:
                with open(f + "-", "rb") as fh:
                    self.account_backups[f + "-"] = (fh.read(), os.stat(f + "-"))
            except OSError:
                self.account_backups[f + "-"] = None
        if sh(["getent", "group", "kvm"], check=False).returncode:
            sh(["groupadd", "--system", "kvm"])
            self.created_groups.append("kvm")
        if sh(["getent", "passwd", "libvirt-qemu"], check=False).returncode:
            sh(["useradd", "--system", "--gid", "kvm", "--no-create-home", "--home-dir",
                "/var/lib/libvirt", "--shell", "/usr/sbin/nologin", "--comment",
                "Libvirt Qemu", "libvirt-qemu"])
            self.created_users.append("libvirt-qemu")
        if sh(["getent", "group", "libvirt-qemu"], check=False).returncode:
            sh(["groupadd", "--system", "libvirt-qemu"])
            self.created_groups.append("libvirt-qemu")
            sh(["usermod", "-a", "-G", "libvirt-qemu", "libvirt-qemu"])

    @staticmethod
    def _conf_value(text, key):
        val = None
        for line in text.splitlines():
            line = line.split("#", 1)[0].strip()
            if "=" in line:
                k, v = (s.strip() for s in line.split("=", 1))
                if k == key:
                    val = v.strip("\"'")
        return val

    def _qemu_conf(self):
        """QEMU as root: /dev/kvm is root-only here. An existing file that already says so
        is left alone; another one is kept and restored byte for byte at the end."""
        text = None
        if os.path.exists(QEMU_CONF):
            with open(QEMU_CONF, "rb") as f:
                raw = f.read()
            text = raw.decode("utf-8", "replace")
            if (self._conf_value(text, "user") == "root"
                    and self._conf_value(text, "group") == "root"):
                return
            self.qemu_conf_orig = (raw, os.stat(QEMU_CONF))
        new = "# written by vmscope's libvirt tests (tests/libvirt/libvirtlab.py)\n"
        if text:
            for line in text.splitlines():
                key = line.split("#", 1)[0].split("=", 1)[0].strip()
                new += ("# " + line if key in ("user", "group") else line) + "\n"
        new += 'user = "root"\ngroup = "root"\n'
        os.makedirs(os.path.dirname(QEMU_CONF), exist_ok=True)
        self.qemu_conf_written = True
        with open(QEMU_CONF, "w") as f:
            f.write(new)

    def _cgroup_v1_on(self):
        ctl = _cg2_controllers()
        if ctl is None:
            raise Skip("no cgroup2 hierarchy at %s: this host's cgroup layout is not the one "
                       "the cgroup-V1-only switch knows" % CG2)
        if not ctl:
            return  # already V1 only
        if ctl != ["hugetlb"]:
            raise Skip("cgroup2 offers %s, not only hugetlb: cannot make libvirt use cgroup "
                       "V1 only by moving hugetlb" % " ".join(ctl))
        if not os.path.isdir(HUGETLB_V1):
            os.mkdir(HUGETLB_V1)
            self.made_hugetlb_dir = True
        sh(["mount", "-t", "cgroup", "-o", "hugetlb", "cgroup", HUGETLB_V1])
        self.mounted_hugetlb = True
        if _cg2_controllers():
            raise LabError("hugetlb mounted as v1, but cgroup2 still offers %s"
                           % _cg2_controllers())

    def _spawn(self, name, argv):
        env = dict(os.environ)
        env["LIBVIRT_LOG_OUTPUTS"] = "3:file:" + self.path(name + ".log")
        out = open(self.path(name + ".stdout"), "ab")
        # A session of their own: a kill of the test's process group (meson's timeout)
        # must reach the harness first, so that it stops domains before their daemon.
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env,
                             start_new_session=True)
        out.close()
        self.started.append((name, p))

    def _daemon(self, name):
        for n, p in self.started:
            if n == name:
                return p
        return None

    def _wait(self, cond, what, daemon):
        end = time.monotonic() + self.start_timeout
        while time.monotonic() < end:
            if cond():
                return
            p = self._daemon(daemon) if daemon else None
            if p is not None and p.poll() is not None:
                raise LabError("%s exited (%d) before %s answered:\n%s"
                               % (daemon, p.returncode, what, self.log_tail(daemon)))
            time.sleep(0.2)
        raise LabError("%s did not answer within %ds:\n%s"
                       % (what, self.start_timeout, self.log_tail(daemon) if daemon else ""))

    @staticmethod
    def _socket_answers(path):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            return True
        except OSError:
            return False
        finally:
            s.close()

    def _wait_libvirtd(self, daemon):
        self._wait(lambda: virsh("version", check=False, timeout=20).returncode == 0,
                   "virsh -c %s version" % URI, daemon)

    def log_tail(self, name, lines=30):
        """The end of a daemon's log (name: libvirtd or virtlogd) or of a domain's QEMU log
        (a domain name), for failure messages."""
        paths = [self.path(name + ".log"), self.path(name + ".stdout")]
        if name in self.domains:
            paths = ["/var/log/libvirt/qemu/%s.log" % name, self.path(name + ".console")]
        text = ""
        for p in paths:
            try:
                with open(p, errors="replace") as f:
                    tail = f.read().splitlines()[-lines:]
                text += "--- %s\n%s\n" % (p, "\n".join(tail))
            except OSError:
                pass
        return text

    # --- domains -----------------------------------------------------------------------

    def domain_xml(self, name, kernel=None, cmdline="", vcpus=2, memory_mib=128,
                   cpu_xml=DEFAULT_CPU_XML, pin=True, virt_type="kvm"):
        """The XML of a small domain: no disk, no NIC, no balloon, the serial console
        into WORKDIR/NAME.console; vCPU n pinned to host CPU n (modulo the host's CPUs)."""
        if memory_mib > 512:
            raise ValueError("memory_mib: at most 512 MiB")
        e = xml.sax.saxutils.escape
        ncpu = os.cpu_count() or 1
        pins = "".join("<vcpupin vcpu='%d' cpuset='%d'/>" % (i, i % ncpu)
                       for i in range(vcpus)) if pin else ""
        boot = ("<kernel>%s</kernel><cmdline>%s</cmdline>" % (e(kernel), e(cmdline))
                if kernel else "<boot dev='hd'/>")
        console = e(self.path(name + ".console"))
        return """<domain type='%s'>
  <name>%s</name>
  <memory unit='MiB'>%d</memory>
  <vcpu placement='static'>%d</vcpu>
  <cputune>%s</cputune>
  <os><type arch='x86_64' machine='pc'>hvm</type>%s</os>
  %s
  <features><acpi/><apic/></features>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>%s</emulator>
    <serial type='file'><source path='%s'/><target port='0'/></serial>
    <console type='file'><source path='%s'/><target type='serial' port='0'/></console>
    <memballoon model='none'/>
  </devices>
</domain>
""" % (virt_type, e(name), memory_mib, vcpus, pins, boot, cpu_xml or "", QEMU, console,
            console)

    def define(self, name, persistent=True, **kw):
        """Define (persistent) or only remember (transient, created by start_domain) a
        domain; kw as domain_xml(). Returns the XML file's path."""
        if name in self.domains:
            raise LabError("domain %s is already the harness's" % name)
        if virsh("dominfo", name, check=False).returncode == 0:
            raise LabError("a domain %s exists already: not the harness's, not touched"
                           % name)
        path = self.path(name + ".xml")
        with open(path, "w") as f:
            f.write(self.domain_xml(name, **kw))
        self.domains[name] = 0
        self.persistent[name] = persistent
        if persistent:
            virsh("define", path)
        return path

    def start_domain(self, name, persistent=True, **kw):
        """Define (unless done) and start a domain; returns its QEMU pid."""
        if name not in self.domains:
            self.define(name, persistent=persistent, **kw)
        try:
            if self.persistent[name]:
                virsh("start", name)
            else:
                virsh("create", self.path(name + ".xml"))
        except LabError as err:
            raise LabError("%s\n%s" % (err, self.log_tail(name)))
        pid = self.qemu_pid(name)
        self.domains[name] = pid
        return pid

    def qemu_pid(self, name):
        with open("/run/libvirt/qemu/%s.pid" % name) as f:
            return int(f.read().strip())

    def pause(self, name):
        virsh("suspend", name)

    def resume(self, name):
        virsh("resume", name)

    def state(self, name):
        return virsh("domstate", name).stdout.strip()

    def hmp(self, name, command):
        return virsh("qemu-monitor-command", name, "--hmp", command).stdout

    def pmemsave(self, name, addr, size, path):
        """Guest-physical memory [addr, addr+size) into path (written by QEMU)."""
        out = self.hmp(name, 'pmemsave %d %d "%s"' % (addr, size, path))
        if out.strip():
            raise LabError("pmemsave: %s" % out.strip())
        return path

    def destroy(self, name):
        """Destroy (if running) and undefine (if persistent) one of the harness's domains;
        a QEMU that libvirt lost track of is killed by its pid."""
        pid = self.domains.get(name, 0)
        r = virsh("domstate", name, check=False)
        if r.returncode == 0:
            if r.stdout.strip() != "shut off":
                virsh("destroy", name, check=False)
            if self.persistent.get(name):
                virsh("undefine", name, check=False)
        if pid and pid_alive(pid) and self._is_our_qemu(pid, name):
            os.kill(pid, signal.SIGKILL)
            end = time.monotonic() + 10
            while pid_alive(pid) and time.monotonic() < end:
                time.sleep(0.05)
        self.domains.pop(name, None)
        self.persistent.pop(name, None)

    @staticmethod
    def _is_our_qemu(pid, name):
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                return ("guest=%s," % name).encode() in f.read()
        except OSError:
            return False

    # --- tear-down ---------------------------------------------------------------------

    def _stop(self, name, p):
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.notes.append("%s (pid %d) ignored SIGTERM: killed" % (name, p.pid))
                p.kill()
                p.wait(timeout=10)

    def _remove_new(self, root):
        before = self.trees_before.get(root, set())
        new = sorted(_tree(root) - before, key=lambda p: p.count("/"), reverse=True)
        for p in new:
            try:
                if os.path.isdir(p) and not os.path.islink(p):
                    os.rmdir(p)
                else:
                    os.unlink(p)
            except OSError as err:
                self.notes.append("cannot remove %s: %s" % (p, err))

    def _remove_new_cgroups(self):
        new = sorted(_cgroup_machine_dirs() - self.cgroups_before,
                     key=lambda p: p.count("/"), reverse=True)
        for p in new:
            for attempt in range(50):
                try:
                    os.rmdir(p)
                    break
                except FileNotFoundError:
                    break
                except OSError as err:
                    if attempt == 49:
                        self.notes.append("cannot remove cgroup %s: %s" % (p, err))
                    time.sleep(0.1)

    def _cgroup_v1_off(self):
        if self.mounted_hugetlb:
            sh(["umount", HUGETLB_V1], check=False)
            self.mounted_hugetlb = False
            # The v1 hierarchy dies after its last cgroup; then hugetlb is back on cgroup2.
            end = time.monotonic() + 10
            while "hugetlb" not in (_cg2_controllers() or []) and time.monotonic() < end:
                time.sleep(0.1)
            if "hugetlb" not in (_cg2_controllers() or []):
                self.notes.append("hugetlb did not return to cgroup2")
        if self.made_hugetlb_dir:
            try:
                os.rmdir(HUGETLB_V1)
            except OSError as err:
                self.notes.append("cannot remove %s: %s" % (HUGETLB_V1, err))
            self.made_hugetlb_dir = False

    def _restore_qemu_conf(self):
        if not self.qemu_conf_written:
            return
        if self.qemu_conf_orig is None:
            try:
                os.unlink(QEMU_CONF)
            except FileNotFoundError:
                pass
        else:
            raw, st = self.qemu_conf_orig
            with open(QEMU_CONF, "wb") as f:
                f.write(raw)
            os.chmod(QEMU_CONF, st.st_mode & 0o7777)
            os.chown(QEMU_CONF, st.st_uid, st.st_gid)
            os.utime(QEMU_CONF, ns=(st.st_atime_ns, st.st_mtime_ns))
        self.qemu_conf_written = False

    def _remove_accounts(self):
        if not self.created_users and not self.created_groups:
            return
        for u in self.created_users:
            sh(["userdel", u], check=False)
        for g in reversed(self.created_groups):
            # userdel may have taken a group of the user's name with it.
            if sh(["getent", "group", g], check=False).returncode == 0:
                sh(["groupdel", g], check=False)
        self.created_users, self.created_groups = [], []
        # userdel and groupdel leave the databases as they were; their "-" backups now hold
        # the versions with our accounts: put the old backups back.
        for path, saved in self.account_backups.items():
            if saved is None:
                continue
            raw, st = saved
            with open(path, "wb") as f:
                f.write(raw)
            os.chmod(path, st.st_mode & 0o7777)
            os.chown(path, st.st_uid, st.st_gid)
            os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))

    def close(self):
        """Undo everything, in the reverse order of the bring-up. Idempotent; never
        raises for what it cannot undo (see self.notes)."""
        if self.closed:
            return
        self.closed = True
        old = None
        try:
            old = signal.signal(signal.SIGTERM, signal.SIG_IGN)
        except ValueError:
            pass
        try:
            for name in list(self.domains):
                try:
                    self.destroy(name)
                except Exception as err:  # keep going: the rest must be undone too
                    self.notes.append("destroy %s: %s" % (name, err))
            for name, p in reversed(self.started):
                self._stop(name, p)
            if self.external_libvirtd:
                for p in _tree("/var/log/libvirt/qemu") - self.domain_logs_before:
                    try:
                        os.unlink(p)
                    except OSError:
                        pass
            else:
                self._remove_new_cgroups()
                self._cgroup_v1_off()
                self._restore_qemu_conf()
                self._remove_accounts()
                for root in STATE_TREES:
                    self._remove_new(root)
                for p in set(RUN_FILES) - self.run_files_before:
                    if os.path.lexists(p) and not any(pid_alive(d.pid) for _, d in self.started):
                        os.unlink(p)
            if self.own_workdir:
                shutil.rmtree(self.workdir, ignore_errors=True)
        finally:
            if old is not None:
                signal.signal(signal.SIGTERM,
                              self._old_sigterm if self._old_sigterm is not None else old)
        if self.notes:
            sys.stdout.write("libvirtlab: not undone: %s\n" % "; ".join(self.notes))


def _libvirt_qemus():
    """The pids of the QEMU processes libvirt started: their command line names libvirt's
    per-domain directory (its master key). Other QEMUs on the host are not ours to judge."""
    out = []
    for pid in procs_named("qemu-system-x86"):
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                if b"/var/lib/libvirt/qemu/domain-" in f.read():
                    out.append(pid)
        except OSError:
            pass
    return out


def machine_state():
    """What the harness promises to leave as found, as one comparable dict."""
    def run_text(args):
        p = subprocess.run(args, capture_output=True, text=True)
        return "%d %s%s" % (p.returncode, p.stdout, p.stderr)

    def read(path):
        try:
            with open(path, "rb") as f:
                return f.read()
        except OSError as err:
            return "absent (%s)" % err.strerror

    def digest(path):
        raw = read(path)
        return hashlib.sha256(raw).hexdigest() if isinstance(raw, bytes) else raw

    with open("/proc/self/mountinfo") as f:
        mounts = sorted(" ".join(line.split()[3:5] + line.split(" - ")[1].split()[:2])
                        for line in f)
    state = {
        "id libvirt-qemu": run_text(["id", "libvirt-qemu"]),
        "group kvm": run_text(["getent", "group", "kvm"]),
        "group libvirt-qemu": run_text(["getent", "group", "libvirt-qemu"]),
        "qemu.conf": read(QEMU_CONF),
        # digests: a failure message must not print password hashes
        "account files": [(f, digest(f), digest(f + "-")) for f in ACCOUNT_FILES],
        "mounts": mounts,
        "cgroup2 controllers": read(CG2 + "/cgroup.controllers"),
        "cgroup machine dirs": sorted(_cgroup_machine_dirs()),
        "daemons": sorted(procs_named("libvirtd", "virtlogd").items()),
        "libvirt's QEMU processes": sorted(_libvirt_qemus()),
        "run files": sorted(p for p in RUN_FILES if os.path.lexists(p)),
    }
    for root in STATE_TREES:
        state["tree " + root] = sorted(_tree(root))
    if procs_named("libvirtd"):
        state["virsh list --all"] = run_text(["virsh", "-q", "-c", URI, "list", "--all",
                                              "--name"])
    else:
        state["virsh list --all"] = "no libvirtd"
    return state


# --- virsh output ----------------------------------------------------------------------

def seconds_ns(text):
    """virsh's "12.345678901" (9 digits) as integer nanoseconds, exactly."""
    whole, frac = text.split(".")
    return int(whole) * 10**9 + int(frac)


def parse_cpu_stats(text):
    """virsh cpu-stats: {"CPU0": {"cpu_time": ns, ...}, ..., "Total": {...}}"""
    out, cur = {}, None
    for line in text.splitlines():
        m = re.match(r"^(CPU\d+|Total):$", line)
        if m:
            cur = out.setdefault(m.group(1), {})
            continue
        m = re.match(r"^\s+(\w+)\s+(\d+\.\d{9}) seconds$", line)
        if m and cur is not None:
            cur[m.group(1)] = seconds_ns(m.group(2))
    return out


def parse_domstats(text):
    out = {}
    for line in text.splitlines():
        if "=" in line:
            k, v = line.strip().split("=", 1)
            out[k] = v
    return out
