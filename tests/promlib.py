# SPDX-License-Identifier: GPL-2.0-or-later
"""Helpers of the tests that read vmscope serve's Prometheus exposition: a free loopback
port, an HTTP GET, the exposition parsed into {(name, labels): value}."""
import socket
import urllib.error
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
