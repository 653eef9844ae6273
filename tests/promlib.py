# SPDX-License-Identifier: GPL-2.0-or-later
"""Helpers of the tests that read vmscope serve's Prometheus exposition: a free loopback
port, an HTTP GET, the exposition parsed into {(name, labels): value}; and of those that
run a Prometheus server: start it, query it, stop what a test started."""
import json
import os
import socket
import subprocess
import urllib.error
import urllib.parse
import urllib.request


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def get(url, method="GET"):
    """(status, body, content type) of one request; an HTTP error is an answer too."""
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode(), r.headers.get("Content-Type", "")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), ""


def parse(text):
    """{(name, frozenset(labels)): value} of an exposition."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        head, value = line.rsplit(" ", 1)
        if "{" in head:
            name, rest = head.split("{", 1)
            labels = []
            for part in rest[:-1].split('",'):
                k, v = part.split("=", 1)
                labels.append((k, v.strip('"')))
            out[(name, frozenset(labels))] = float(value)
        else:
            out[(head, frozenset())] = float(value)
    return out


def series(m, name, **labels):
    """The series of metric @name whose labels include @labels."""
    want = set(labels.items())
    return {k: v for k, v in m.items() if k[0] == name and want <= set(k[1])}


def prom_query(port, q):
    """The result of a PromQL instant query to the Prometheus on @port, or None when it
    does not answer or the query failed."""
    url = "http://127.0.0.1:%d/api/v1/query?%s" % (port, urllib.parse.urlencode({"query": q}))
    try:
        code, body, _ = get(url)
    except OSError:
        return None
    if code != 200:
        return None
    r = json.loads(body)
    return r["data"]["result"] if r.get("status") == "success" else None


def run_prometheus(prometheus, tmp, cfg, procs):
    """Start Debian's prometheus (binary @prometheus) with the configuration file @cfg, its
    data and log in @tmp, on a free loopback port; the process joins @procs. Returns the
    port and the log's path."""
    port, log = free_port(), os.path.join(tmp, "prom.log")
    with open(log, "w") as f:
        procs.append(subprocess.Popen([prometheus, "--config.file", cfg, "--storage.tsdb.path",
                                       os.path.join(tmp, "tsdb"), "--web.listen-address",
                                       "127.0.0.1:%d" % port, "--log.level", "warn"],
                                      stdout=subprocess.DEVNULL, stderr=f))
    return port, log


def stop(procs):
    """End every process of @procs still running: SIGTERM, then SIGKILL after 10 s."""
    for p in procs:
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
