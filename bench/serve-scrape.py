#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""How fast vmscope serve answers Prometheus, side by side with the libvirt exporter.

VMS libvirt domains (2 vCPUs each, pinned, running the test VM's guest at 5 % busy with
200 MMIO writes per busy second: 20 of them keep this host's 2 CPUs half busy) run under a libvirtd this script brings up (the recipe
of tests/libvirt/libvirtlab.py; the machine is left as found). On the same domains, at
the same time, each exporter is scraped back to back by one client for SECONDS (after
one warm-up scrape), in alternating rounds: scrapes per second sustained, latency p50 /
p99 / max, and the size of the answer (series, bytes), then the ratios. The peer is
Debian's prometheus-libvirt-exporter (libvirt's own statistics through its API), the
exporter libvirt users run; vmscope serve runs as it would in production (its defaults:
procfs and schedstat per vCPU thread, kernel-counted events, KVM statistics through
libvirt for these domains, which makes each QEMU answer query-stats, wakeup latency),
once more with -x (exits by reason), and with --no-kvm-stats (no question to QEMU).

Usage: bench/serve-scrape.py [BUILD_DIR] [VMS] [SECONDS] [ROUNDS]
Needs root, /dev/kvm, libvirt and QEMU; prometheus-libvirt-exporter for the peer."""
import os
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "libvirt"))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
import libvirtlab  # noqa: E402
from promlib import free_port  # noqa: E402


def scrape(url):
    t = time.monotonic()
    with urllib.request.urlopen(url, timeout=30) as r:
        body = r.read()
    return time.monotonic() - t, body


def wait_up(url, proc, what):
    end = time.monotonic() + 30
    while time.monotonic() < end:
        if proc.poll() is not None:
            sys.exit("%s exited: %s" % (what, proc.stderr.read() if proc.stderr else ""))
        try:
            return scrape(url)[1]
        except OSError:
            time.sleep(0.1)
    sys.exit("%s does not answer at %s" % (what, url))


def run_for(url, seconds):
    lat = []
    size = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        d, body = scrape(url)
        lat.append(d)
        size = len(body)
    return lat, size


def series(body):
    return sum(1 for line in body.decode().splitlines() if line and not line.startswith("#"))


def pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, max(0, int(round(q * len(v) + 0.5)) - 1))]


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else "build"
    nvms = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    secs = float(sys.argv[3]) if len(sys.argv) > 3 else 10
    rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 3
    vmscope = os.path.join(build, "cli", "vmscope")
    if not os.access(vmscope, os.X_OK):
        sys.exit("no %s: build first (./setup.sh build)" % vmscope)
    peer = shutil.which("prometheus-libvirt-exporter")
    if not peer:
        print("note: prometheus-libvirt-exporter is not installed (apt-get install "
              "prometheus-libvirt-exporter): vmscope alone")
    reason = libvirtlab.skip_reason()
    if reason:
        sys.exit("cannot run libvirt here: %s" % reason)
    tsc = subprocess.run([vmscope, "testvm", "--print-tsc-khz"], capture_output=True,
                         text=True, check=True).stdout.strip()
    procs = []
    with libvirtlab.Lab() as lab:
        try:
            image = lab.path("guest.mb")
            subprocess.run([vmscope, "testvm", "--write-image", image], check=True)
            cmdline = "tsc_khz=%s sched=3600:5 mmio=200" % tsc
            for i in range(nvms):
                lab.start_domain("scrape%02d" % i, kernel=image, cmdline=cmdline, vcpus=2,
                                 memory_mib=32, persistent=False)
            print("%d domains running (2 vCPUs each, 5 %% busy)" % nvms)
            time.sleep(2)
            targets = []
            for name, args in (("vmscope serve", []), ("vmscope serve -x", ["-x"]),
                               ("vmscope serve --no-kvm-stats", ["--no-kvm-stats"])):
                port = free_port()
                p = subprocess.Popen([vmscope, "serve", "--listen", "127.0.0.1:%d" % port] +
                                     args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True)
                procs.append(p)
                targets.append((name, "http://127.0.0.1:%d/metrics" % port, p))
            if peer:
                port = free_port()
                p = subprocess.Popen([peer, "--web.listen-address", "127.0.0.1:%d" % port],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True)
                procs.append(p)
                targets.append(("prometheus-libvirt-exporter", "http://127.0.0.1:%d/metrics"
                                % port, p))
            got = {}
            for name, url, p in targets:
                body = wait_up(url, p, name)
                got[name] = {"lat": [], "size": len(body), "series": series(body)}
            for r in range(rounds):
                for name, url, _ in targets:
                    lat, size = run_for(url, secs)
                    got[name]["lat"] += lat
                    got[name]["size"] = size
                    print("round %d/%d: %-28s %6.1f scrapes/s" % (r + 1, rounds, name,
                                                                 len(lat) / secs),
                          flush=True)
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
            for i in range(nvms):
                try:
                    lab.destroy("scrape%02d" % i)
                except Exception:  # noqa: BLE001 (the lab's close() cleans up too)
                    pass
    print()
    print("%d libvirt domains x 2 vCPUs, %d rounds of %.0f s per exporter, one client "
          "scraping back to back" % (nvms, rounds, secs))
    print("%-28s %10s %9s %9s %9s %8s %9s" % ("exporter", "scrapes/s", "p50 ms", "p99 ms",
                                            "max ms", "series", "bytes"))
    for name, g in got.items():
        lat = g["lat"]
        g["rate"] = len(lat) / (rounds * secs)
        g["p99"] = pct(lat, 0.99)
        print("%-28s %10.1f %9.2f %9.2f %9.2f %8d %9d" % (
            name, g["rate"], 1e3 * statistics.median(lat), 1e3 * g["p99"], 1e3 * max(lat),
            g["series"], g["size"]))
    if "prometheus-libvirt-exporter" in got:
        base = got["prometheus-libvirt-exporter"]
        for name in ("vmscope serve", "vmscope serve -x", "vmscope serve --no-kvm-stats"):
            g = got[name]
            print("%s: %.2fx the scrapes/s of prometheus-libvirt-exporter, p99 %.2fx, "
                  "%.1fx the series" % (name, g["rate"] / base["rate"], g["p99"] / base["p99"],
                                       g["series"] / max(base["series"], 1)))


if __name__ == "__main__":
    main()
