#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""vmscope serve --web-config: TLS, client certificates and basic auth, for real.

1. openssl makes a CA, a server certificate for 127.0.0.1 and localhost, a client
   certificate signed by the CA and a self-signed one; Python's crypt makes a bcrypt hash.
   The web configuration files name them by paths relative to their own directory, and
   vmscope runs from another one.
2. promtool check web-config accepts every file vmscope accepts; of the invalid files
   vmscope refuses (exit 1, one line naming the file, the line and the problem), promtool
   refuses those it checks too.
3. https with the CA and the right credentials gives the exposition (200); without the
   CA the certificate is refused; plain http to the TLS port fails; no credentials, a
   wrong password or an unknown user get 401 with WWW-Authenticate: Basic; the configured
   header is on every answer. Scrape latency is measured against a plain http exporter.
3b. A renewed certificate and key (each file replaced) are served without a restart; a
   key that does not match leaves the previous pair in service, with one line on stderr.
4. RequireAndVerifyClientCert: a client without a certificate, or with a self-signed one,
   is refused; one with a certificate signed by client_ca_file gets the exposition.
   client_allowed_sans: a certificate without an allowed SAN is refused.
5. Debian's prometheus scrapes the exporter over https with basic_auth and tls_config
   (ca_file; and a client certificate for the mTLS exporter): up == 1 and vmscope's
   metrics are in its HTTP API; a job with a wrong password has up == 0.
No VM is needed: serve works on a host without VMs. Everything started is stopped."""
import base64
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from testlib import *  # noqa: E402,F403
from promlib import free_port, parse, prom_query, run_prometheus, stop  # noqa: E402

PROMETHEUS, PROMTOOL = shutil.which("prometheus"), shutil.which("promtool")
OPENSSL = shutil.which("openssl")
if not PROMETHEUS or not PROMTOOL:
    skip("prometheus/promtool not installed (Debian: apt-get install prometheus)")
if not OPENSSL:
    skip("openssl not installed (Debian: apt-get install openssl)")
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        import crypt
    except ImportError:
        crypt = None
HTPASSWD = shutil.which("htpasswd")
if crypt is None and not HTPASSWD:
    skip("no bcrypt maker: Python's crypt module is gone and htpasswd is not installed "
         "(Debian: apt-get install apache2-utils)")

USER, PASSWORD = "prometheus", "s3cret scraper pw"
HEADER = ("X-Frame-Options", "deny")


def bcrypt(password, cost=10):
    if crypt is not None:
        return crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1 << cost))
    out = subprocess.run([HTPASSWD, "-nbBC", str(cost), "x", password], check=True,
                         capture_output=True, text=True).stdout.strip()
    return out.split(":", 1)[1]


def openssl(*args):
    subprocess.run([OPENSSL] + list(args), check=True, capture_output=True)


def make_pki(d):
    """ca.crt, server.crt/key (127.0.0.1, localhost), client.crt/key and other.crt/key
    (signed by the CA, SAN scraper.example and other.example), rogue.crt/key (self-signed)."""
    p = lambda n: os.path.join(d, n)  # noqa: E731
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", p("ca.key"), "-out",
            p("ca.crt"), "-days", "2", "-subj", "/CN=vmscope test CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    for name, cn, ext in (("server", "localhost", "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                           "extendedKeyUsage=serverAuth\n"),
                          ("client", "scraper", "subjectAltName=DNS:scraper.example\n"
                           "extendedKeyUsage=clientAuth\n"),
                          ("other", "other", "subjectAltName=DNS:other.example\n"
                           "extendedKeyUsage=clientAuth\n")):
        with open(p(name + ".ext"), "w") as f:
            f.write(ext)
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", p(name + ".key"), "-out",
                p(name + ".csr"), "-subj", "/CN=" + cn)
        openssl("x509", "-req", "-in", p(name + ".csr"), "-CA", p("ca.crt"), "-CAkey",
                p("ca.key"), "-CAcreateserial", "-out", p(name + ".crt"), "-days", "2",
                "-extfile", p(name + ".ext"))
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", p("rogue.key"), "-out",
            p("rogue.crt"), "-days", "2", "-subj", "/CN=rogue",
            "-addext", "subjectAltName=DNS:rogue.example",
            "-addext", "extendedKeyUsage=clientAuth")


def peer_der(port, ctx):
    """The DER certificate the server at @port presents, or None."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                return tls.getpeercert(binary_form=True)
    except (OSError, ssl.SSLError):
        return None


def file_der(path):
    return ssl.PEM_cert_to_DER_cert(open(path).read())


def renewal(run_dir, conf):
    p = lambda n: os.path.join(conf, n)  # noqa: E731
    shutil.copy(p("server.crt"), p("live.crt"))
    shutil.copy(p("server.key"), p("live.key"))
    # the renewal: a new key and certificate for the same names, from the same CA
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", p("renewed.key"), "-out",
            p("renewed.csr"), "-subj", "/CN=localhost renewed")
    openssl("x509", "-req", "-in", p("renewed.csr"), "-CA", p("ca.crt"), "-CAkey", p("ca.key"),
            "-CAcreateserial", "-out", p("renewed.crt"), "-days", "2", "-extfile",
            p("server.ext"))
    cfg = write(p("renew.yml"), "tls_server_config:\n  cert_file: live.crt\n"
                "  key_file: live.key\n")
    port = free_port()
    proc = start_serve(run_dir, port, cfg)
    ctx = tls_ctx(conf)
    check_eq(wait_listening(port, ctx), 200, "renewal: the exporter answers")
    check(peer_der(port, ctx) == file_der(p("server.crt")), "renewal: the first certificate")
    # as cert-manager or certbot do: each file replaced whole, one after the other
    os.replace(p("renewed.crt"), p("live.crt"))
    time.sleep(0.3)
    os.replace(p("renewed.key"), p("live.key"))
    want, got, end = file_der(p("live.crt")), None, time.monotonic() + 10
    while time.monotonic() < end and got != want:
        time.sleep(0.3)
        got = peer_der(port, ctx)
    check(got == want, "renewal: the renewed certificate is served without a restart")
    check_eq(fetch("https://127.0.0.1:%d/metrics" % port, ctx)[0], 200,
             "renewal: a scrape over the renewed certificate")
    # a broken renewal: a key of another certificate
    shutil.copy(p("client.key"), p("live.key"))
    time.sleep(2.5)  # past the once-a-second look, twice
    check(peer_der(port, ctx) == want, "renewal: a key that does not match keeps the "
          "previous pair in service")
    check_eq(fetch("https://127.0.0.1:%d/metrics" % port, ctx)[0], 200,
             "renewal: still scraped")
    proc.terminate()
    _, err = proc.communicate(timeout=10)
    lines = [ln for ln in err.splitlines() if "still serving the previous one" in ln]
    check_eq(len(lines), 1, "renewal: one line says the broken pair was not taken (%r)"
             % lines[:1])


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def fetch(url, ctx=None, auth=None):
    """(status, body, headers) of a GET; status None when the connection failed."""
    req = urllib.request.Request(url)
    if auth:
        req.add_header("Authorization",
                       "Basic " + base64.b64encode(("%s:%s" % auth).encode()).decode())
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
            return r.status, r.read().decode(), r.headers
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), e.headers
    except (urllib.error.URLError, ssl.SSLError, ConnectionError, http.client.HTTPException,
            OSError) as e:
        return None, repr(e), None


def tls_ctx(d, cert=None):
    ctx = ssl.create_default_context(cafile=os.path.join(d, "ca.crt"))
    if cert:
        ctx.load_cert_chain(os.path.join(d, cert + ".crt"), os.path.join(d, cert + ".key"))
    return ctx


def start_serve(cwd, port, web=None):
    args = [os.path.abspath(vmscope()), "serve", "--listen", "127.0.0.1:%d" % port]
    if web:
        args += ["--web-config", web]
    p = subprocess.Popen(args, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         text=True)
    procs.append(p)
    return p


def wait_listening(port, ctx=None, auth=None, scheme="https"):
    end = time.monotonic() + 15
    while time.monotonic() < end:
        code, _, _ = fetch("%s://127.0.0.1:%d/metrics" % (scheme, port), ctx, auth)
        if code is not None:
            return code
        time.sleep(0.1)
    return None


def check_invalid(tmp, conf):
    """Files vmscope refuses at start-up, with promtool's verdict on each."""
    cases = [
        # name, text, what vmscope's message says, whether promtool checks it too
        ("unknown-key", "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
         "  cert_path: x\n", ":4: tls_server_config: unknown key 'cert_path'", True),
        ("no-cert", "tls_server_config:\n  key_file: server.key\n",
         ":1: tls_server_config: cert_file is missing", True),
        ("wrong-type", "tls_server_config: [server.crt]\n",
         ":1: tls_server_config: expected a mapping, found a list", True),
        ("bad-version", "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
         "  min_version: TLS14\n", ":4: tls_server_config.min_version: unknown TLS version",
         True),
        ("bad-hash", "basic_auth_users:\n  %s: %s\n" % (USER, PASSWORD),
         ":2: basic_auth_users.%s: too short to be a bcrypt hash" % USER, True),
        ("bad-cost", "basic_auth_users:\n  %s: %s\n" % (USER, "$2y$03$" + "a" * 53),
         "bcrypt cost 3 is outside", True),
        ("dup-user", "basic_auth_users:\n  %s: %s\n  %s: %s\n" % (USER, HASH, USER, HASH),
         ":3: basic_auth_users: user '%s' is given twice" % USER, True),
        ("bad-auth-type", "tls_server_config:\n  cert_file: server.crt\n  key_file: "
         "server.key\n  client_auth_type: Always\n", "unknown client_auth_type 'Always'", True),
        ("ca-no-auth", "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
         "  client_ca_file: ca.crt\n", "client_auth_type is NoClientCert", True),
        ("bad-suite", "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
         "  cipher_suites: [TLS_RSA_WITH_RC4_128_SHA]\n", "unknown or insecure cipher suite",
         True),
        ("bad-header", "http_server_config:\n  headers:\n    X-Powered-By: vmscope\n",
         "HTTP header 'X-Powered-By' cannot be configured", True),
        ("no-cert-file", "tls_server_config:\n  cert_file: gone.crt\n  key_file: server.key\n",
         ":2: tls_server_config.cert_file: cannot read", True),
        ("key-is-cert", "tls_server_config:\n  cert_file: server.crt\n  key_file: server.crt\n",
         "are not a PEM certificate and its unencrypted key", True),
        ("not-yaml", "tls_server_config:\n  cert_file: [server.crt\n", "not valid YAML", True),
        # Stricter than exporter-toolkit: a file that cannot work is refused at start-up.
        ("min-above-max", "tls_server_config:\n  cert_file: server.crt\n  key_file: "
         "server.key\n  min_version: TLS13\n  max_version: TLS12\n",
         "TLS13 is above max_version TLS12", False),
        ("empty-tls", "tls_server_config: {}\n", "cert_file is missing", False),
    ]
    for name, text, want, promtool_checks in cases:
        path = write(os.path.join(conf, name + ".yml"), text)
        p = subprocess.run([os.path.abspath(vmscope()), "serve", "--listen",
                            "127.0.0.1:%d" % free_port(), "--web-config", path], cwd=tmp,
                           capture_output=True, text=True, timeout=30)
        lines = p.stderr.strip().splitlines()
        check_eq(p.returncode, 1, "%s: vmscope serve exits 1 (stderr: %s)" % (name, p.stderr))
        check(len(lines) == 1 and lines[0].startswith("vmscope serve: " + path) and
              want in lines[0], "%s: one line naming the file and %r: %r" % (name, want, lines))
        q = subprocess.run([PROMTOOL, "check", "web-config", path], capture_output=True,
                           text=True, timeout=30)
        if promtool_checks:
            check(q.returncode != 0, "%s: promtool refuses it too: %s" % (name,
                                                                         q.stdout + q.stderr))
        else:
            print("%s: vmscope refuses it, promtool says: %s"
                  % (name, (q.stdout + q.stderr).strip()))
    p = subprocess.run([vmscope(), "serve", "--web-config", os.path.join(conf, "none.yml")],
                       capture_output=True, text=True, timeout=30)
    check(p.returncode == 1 and "none.yml: No such file or directory" in p.stderr,
          "a missing file: exit 1 and why: %s" % p.stderr.strip())


def promtool_accepts(path):
    q = subprocess.run([PROMTOOL, "check", "web-config", path], capture_output=True, text=True,
                       timeout=30)
    return check(q.returncode == 0, "promtool check web-config %s: %s"
                 % (os.path.basename(path), (q.stdout + q.stderr).strip()))


def latency(url, ctx, auth, n=20):
    times = []
    for _ in range(n):
        t0 = time.monotonic()
        code, _, _ = fetch(url, ctx, auth)
        times.append(time.monotonic() - t0)
        check_eq(code, 200, "scrape %s" % url)
    return statistics.median(times) * 1e3


def main(tmp):
    conf = os.path.join(tmp, "conf")
    os.mkdir(conf)
    make_pki(conf)
    run_dir = os.path.join(tmp, "elsewhere")  # vmscope's cwd: relative paths are not there
    os.mkdir(run_dir)
    t0 = time.monotonic()
    global HASH
    HASH = bcrypt(PASSWORD)
    print("bcrypt cost 10 hash made in %.0f ms: %s..." % ((time.monotonic() - t0) * 1e3,
                                                         HASH[:7]))

    # 1-2. The files.
    web = write(os.path.join(conf, "web.yml"),
                "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
                "http_server_config:\n  headers:\n    %s: %s\n"
                "basic_auth_users:\n  %s: %s\n" % (HEADER + (USER, HASH)))
    mtls = write(os.path.join(conf, "mtls.yml"),
                 "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
                 "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n"
                 "  min_version: TLS12\n  max_version: TLS13\n")
    sans = write(os.path.join(conf, "sans.yml"),
                 "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
                 "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n"
                 "  client_allowed_sans: [scraper.example]\n")
    promtool_accepts(web)
    promtool_accepts(mtls)
    check_invalid(run_dir, conf)

    # 3. TLS and basic auth.
    port, plain_port, mport, sport = free_port(), free_port(), free_port(), free_port()
    serve = start_serve(run_dir, port, web)
    plain = start_serve(run_dir, plain_port)
    mserve = start_serve(run_dir, mport, mtls)
    sserve = start_serve(run_dir, sport, sans)
    ctx = tls_ctx(conf)
    url = "https://127.0.0.1:%d/metrics" % port
    check_eq(wait_listening(port, ctx), 401, "the TLS exporter answers")
    t0 = time.monotonic()
    code, body, headers = fetch(url, ctx, (USER, PASSWORD))
    first = (time.monotonic() - t0) * 1e3
    check_eq(code, 200, "https with the CA and the right credentials")
    check("version=0.0.4" in (headers or {}).get("Content-Type", ""), "text exposition 0.0.4")
    m = parse(body if code == 200 else "")
    check(("vmscope_vms", frozenset()) in m, "the exposition has vmscope_vms")
    check_eq((headers or {}).get(HEADER[0]), HEADER[1], "the configured header on a 200")
    code, _, _ = fetch(url, ssl.create_default_context(), (USER, PASSWORD))
    check_eq(code, None, "without the CA the server's certificate is refused")
    code, err, _ = fetch("http://127.0.0.1:%d/metrics" % port, None, (USER, PASSWORD))
    check_eq(code, None, "plain http to the TLS port fails (%s)" % err)
    for what, auth in (("no credentials", None), ("a wrong password", (USER, "wrong")),
                       ("an unknown user", ("nobody", PASSWORD)),
                       ("the password of another case", (USER.upper(), PASSWORD))):
        code, _, headers = fetch(url, ctx, auth)
        check_eq(code, 401, "%s: 401" % what)
        check((headers or {}).get("WWW-Authenticate", "").startswith("Basic"),
              "%s: WWW-Authenticate: Basic" % what)
        check_eq((headers or {}).get(HEADER[0]), HEADER[1], "the configured header on a 401")
    check_eq(fetch("https://127.0.0.1:%d/nothing" % port, ctx, (USER, PASSWORD))[0], 404,
             "authorized, an unknown path: 404")

    # Measured: a scrape over a new TLS connection with basic auth (bcrypt remembered)
    # against plain http, and the first check of a password (a bcrypt).
    check_eq(wait_listening(plain_port, scheme="http"), 200, "the plain exporter answers")
    t_plain = latency("http://127.0.0.1:%d/metrics" % plain_port, None, None)
    t_tls = latency(url, ctx, (USER, PASSWORD))
    t0 = time.monotonic()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        if crypt is not None:
            crypt.crypt(PASSWORD, HASH)
    print("scrape latency (median of 20, new connection each): plain http %.1f ms, "
          "https + basic auth %.1f ms; the first scrape (bcrypt cost 10 checked) %.1f ms; "
          "bcrypt cost 10 in Python %.1f ms"
          % (t_plain, t_tls, first, (time.monotonic() - t0) * 1e3))

    # 3b. A renewed certificate is served without a restart (exporter-toolkit reloads the
    # files too); one that does not load leaves the previous one in service, with a line.
    renewal(run_dir, conf)

    # 4. Client certificates.
    murl = "https://127.0.0.1:%d/metrics" % mport
    check_eq(wait_listening(mport, tls_ctx(conf, "client")), 200,
             "RequireAndVerifyClientCert: a certificate signed by client_ca_file: 200")
    code, body, _ = fetch(murl, tls_ctx(conf, "client"))
    check(code == 200 and "vmscope_vms" in body, "mTLS: the exposition")
    check_eq(fetch(murl, tls_ctx(conf))[0], None, "mTLS: a client without a certificate is "
             "refused")
    check_eq(fetch(murl, tls_ctx(conf, "rogue"))[0], None, "mTLS: a self-signed client "
             "certificate is refused")
    check_eq(fetch(murl, tls_ctx(conf, "server"))[0], None, "mTLS: a certificate of the CA "
             "without the TLS client purpose is refused")
    surl = "https://127.0.0.1:%d/metrics" % sport
    check_eq(wait_listening(sport, tls_ctx(conf, "client")), 200,
             "client_allowed_sans: the client's SAN is allowed")
    check_eq(fetch(surl, tls_ctx(conf, "other"))[0], None,
             "client_allowed_sans: a certificate of the CA without an allowed SAN is refused")
    check_eq(fetch(murl, tls_ctx(conf, "other"))[0], 200,
             "the same certificate is fine where no SAN is required")

    # 5. Prometheus.
    prom_port = start_prometheus(tmp, conf, port, mport, plain_port)
    if prom_port:
        r = prom_query(prom_port, 'up{job="vmscope-wrong-password"}')
        check_eq([x["value"][1] for x in r or []], ["0"], "Prometheus: a wrong password: up 0")
        r = prom_query(prom_port, 'up{job="vmscope-mtls"}')
        check_eq([x["value"][1] for x in r or []], ["1"], "Prometheus: mTLS: up 1")
        for job in ("vmscope-tls", "vmscope-mtls"):
            r = prom_query(prom_port, 'count(vmscope_host_cpu_seconds_total{job="%s"})' % job)
            n = float(r[0]["value"][1]) if r else 0
            check(n >= os.cpu_count() * 5, "Prometheus: %s: vmscope_host_cpu_seconds_total "
                  "(%d series)" % (job, n))
        r = prom_query(prom_port, 'avg_over_time(scrape_duration_seconds[1m])')
        print("Prometheus' scrape durations: " + ", ".join(
            "%s %.1f ms" % (x["metric"]["job"], float(x["value"][1]) * 1e3)
            for x in sorted(r or [], key=lambda x: x["metric"]["job"])))

    # Everything ends cleanly.
    for p in (serve, plain, mserve, sserve):
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=10)
        check_eq(p.returncode, 0, "serve ends 0 on SIGTERM (stderr: %s)" % err.strip())
    check(err.startswith("vmscope serve: listening on https://") and "RequireAndVerify" in err,
          "the start-up line says https and the client-certificate policy: %s" % err.strip())


def start_prometheus(tmp, conf, port, mport, plain_port):
    ca = os.path.join(conf, "ca.crt")
    cfg = write(os.path.join(tmp, "prometheus.yml"), """global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: vmscope-tls
    scheme: https
    tls_config:
      ca_file: {ca}
    basic_auth:
      username: {user}
      password: {pw}
    static_configs:
      - targets: ['127.0.0.1:{port}']
  - job_name: vmscope-wrong-password
    scheme: https
    tls_config:
      ca_file: {ca}
    basic_auth:
      username: {user}
      password: not-{pw}
    static_configs:
      - targets: ['127.0.0.1:{port}']
  - job_name: vmscope-mtls
    scheme: https
    tls_config:
      ca_file: {ca}
      cert_file: {conf}/client.crt
      key_file: {conf}/client.key
    static_configs:
      - targets: ['127.0.0.1:{mport}']
  - job_name: vmscope-plain
    static_configs:
      - targets: ['127.0.0.1:{plain_port}']
""".format(ca=ca, user=USER, pw=json.dumps(PASSWORD), port=port, mport=mport, conf=conf,
           plain_port=plain_port))
    q = subprocess.run([PROMTOOL, "check", "config", cfg], capture_output=True, text=True)
    check_eq(q.returncode, 0, "promtool check config: %s" % (q.stdout + q.stderr).strip())
    pport, log = run_prometheus(PROMETHEUS, tmp, cfg, procs)
    end = time.monotonic() + 40
    while time.monotonic() < end:
        up = prom_query(pport, 'up{job="vmscope-tls"}')
        vms = prom_query(pport, 'vmscope_vms{job="vmscope-tls"}')
        wrong = prom_query(pport, 'up{job="vmscope-wrong-password"}')
        if up and up[0]["value"][1] == "1" and vms and wrong:
            check(True, "Prometheus scrapes vmscope over https with basic auth: up 1 and "
                  "vmscope_vms = %s" % vms[0]["value"][1])
            time.sleep(3)  # a few scrapes of every job, for the durations
            return pport
        time.sleep(0.3)
    with open(log) as f:
        check(False, "Prometheus scraped vmscope over https: up %r, vmscope_vms %r; log: %s"
              % (up, vms, f.read()[-2000:]))
    return None


procs = []
HASH = None
with tempfile.TemporaryDirectory() as tmp:
    try:
        main(tmp)
    finally:
        stop(procs)
finish()
