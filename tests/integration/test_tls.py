"""TLS and HTTP/2 (issue 12 §1, docs/OPERATIONS.md): `serve --listen-tls` with a self-signed
certificate made here with `openssl req`; HTTP/2 and HTTP/1.1 chosen by ALPN; TLS 1.0/1.1 and
weak ciphers refused; the certificate reloaded on SIGHUP while open connections go on; a bad
certificate stops `serve` with one line; a crashed handler's HTTP/2 and TLS clients get their
502 through the dying worker's loop, the other streams of the connection 502 or 503;
the admin listener over TLS marks its session cookie Secure."""
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
import warnings

import pytest

from conftest import (BIN, ADMIN_PASSWORD, AdminClient, _env, assert_cli_error, start_module_server,
                      wait_marks)
from test_cancel import WATCHER  # noqa: E402 (the handler that watches pq.cancelled())

HELLO = "def handler(request):\n    return {'hello': 'world'}\n"
SEGFAULT = "import ctypes\n\ndef handler(request):\n    ctypes.string_at(0)\n"


def make_cert(directory, name, cn):
    """A self-signed certificate and its key, for `cn` (and 127.0.0.1): (cert, key) paths."""
    cert, key = os.path.join(directory, name + ".crt"), os.path.join(directory, name + ".key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj", "/CN=" + cn,
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert],
                   check=True, capture_output=True, timeout=30)
    return cert, key


def tls_port(server):
    m = server.wait_log(r"^listening on https://127\.0\.0\.1:(\d+)$", flags=re.M)
    assert m, server.log
    return int(m.group(1))


def client_ctx(cafile=None, alpn=None, version=None, ciphers=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if cafile:
        ctx.load_verify_locations(cafile)
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(alpn)
    if version:
        with warnings.catch_warnings():  # TLS 1.0 and 1.1 are deprecated: that is the point
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ctx.maximum_version = version
    if ciphers:
        ctx.set_ciphers(ciphers)
    return ctx


def handshake(port, ctx, names=None):
    """(TLS version, ALPN protocol, the peer certificate's name in `names`, a {DER: name} dict
    from der_names) of one new connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            return s.version(), s.selected_alpn_protocol(), peer_name(s, names)


def der_names(**certs):
    """{DER bytes: name} of the PEM certificate files given as name=path."""
    out = {}
    for name, path in certs.items():
        with open(path) as f:
            out[ssl.PEM_cert_to_DER_cert(f.read())] = name
    return out


def peer_name(sock, names):
    return names.get(sock.getpeercert(binary_form=True), "?") if names else None


def curl(*args):
    cp = subprocess.run(["curl", "-sS", "--max-time", "10", *args], capture_output=True,
                        text=True, timeout=20)
    return cp


@pytest.fixture(scope="module")
def tls(module_portico, tmp_path_factory):
    """One server with a TLS listener beside the cleartext one: (server, port, cert)."""
    d = str(tmp_path_factory.mktemp("certs"))
    cert, key = make_cert(d, "server", "portico-test")
    module_portico.publish("hello", HELLO)
    s = start_module_server(module_portico, "--listen-tls", "127.0.0.1:0", "--tls-cert", cert,
                            "--tls-key", key)
    yield s, tls_port(s), cert
    s.close()


def test_http2_and_http11_by_alpn(tls):
    s, port, cert = tls
    url = f"https://127.0.0.1:{port}/hello"
    for flag, version in (("--http2", "2"), ("--http1.1", "1.1")):
        cp = curl("--cacert", cert, flag, "-w", "\n%{http_code} %{http_version}", url)
        assert cp.returncode == 0, cp.stderr
        body, status = cp.stdout.rsplit("\n", 1)
        assert status == f"200 {version}"
        assert body == '{"hello": "world"}'
    # The cleartext listener is unchanged beside it.
    assert s.get("/hello").json() == {"hello": "world"}
    # ALPN as a client sees it: h2 preferred, http/1.1 when that is all the client speaks.
    assert handshake(port, client_ctx(cert, ["h2", "http/1.1"]))[:2] == ("TLSv1.3", "h2")
    assert handshake(port, client_ctx(cert, ["http/1.1"]))[1] == "http/1.1"
    assert handshake(port, client_ctx(cert))[1] is None


def test_h2load_over_tls(tls):
    _, port, _ = tls
    assert shutil.which("h2load"), "h2load missing: scripts/install-deps.sh installs nghttp2-client"
    cp = subprocess.run(["h2load", "-n", "40", "-c", "2", "-m", "4",
                         f"https://127.0.0.1:{port}/hello"],
                        capture_output=True, text=True, timeout=30)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    assert "Application protocol: h2" in cp.stdout
    assert re.search(r"requests: 40 total, 40 started, 40 done, 40 succeeded, 0 failed",
                     cp.stdout), cp.stdout
    assert "status codes: 40 2xx" in cp.stdout


def test_old_protocols_and_weak_ciphers_refused(tls):
    _, port, _ = tls
    # The client offers exactly one old version (its own floor lowered so that it does): the
    # server ends the handshake.
    for version in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
        with pytest.raises(ssl.SSLError):
            handshake(port, client_ctx(version=version, ciphers="DEFAULT:@SECLEVEL=0"))
    # TLS 1.2 is served, with forward secrecy only: a static-RSA or CBC-only client is refused.
    v12 = handshake(port, client_ctx(version=ssl.TLSVersion.TLSv1_2))
    assert v12[0] == "TLSv1.2"
    with pytest.raises(ssl.SSLError):
        handshake(port, client_ctx(version=ssl.TLSVersion.TLSv1_2,
                                   ciphers="AES128-SHA:AES256-SHA:AES128-GCM-SHA256"))
    cp = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-tls1_1",
                         "-cipher", "DEFAULT:@SECLEVEL=0"], input="", capture_output=True,
                        text=True, timeout=10)
    assert cp.returncode != 0
    assert "Cipher is (NONE)" in cp.stdout, cp.stdout


def test_sighup_reloads_the_certificate_keeping_connections(portico, server, tmp_path):
    d = str(tmp_path)
    first, first_key = make_cert(d, "first", "first")
    second, second_key = make_cert(d, "second", "second")
    cert, key = os.path.join(d, "live.crt"), os.path.join(d, "live.key")
    shutil.copy(first, cert)
    shutil.copy(first_key, key)
    portico.publish("hello", HELLO)
    s = server("--listen-tls", "127.0.0.1:0", "--tls-cert", cert, "--tls-key", key)
    port = tls_port(s)
    ctx = client_ctx()
    names = der_names(first=first, second=second)
    assert handshake(port, ctx, names)[2] == "first"
    old = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=5)
    old.request("GET", "/hello")
    assert old.getresponse().read() == b'{"hello": "world"}'

    shutil.copy(second, cert)
    shutil.copy(second_key, key)
    os.kill(s.pid, signal.SIGHUP)
    assert s.wait_log(r"SIGHUP: TLS certificate reloaded from ")
    # Every worker takes the new pair from its own signal: wait until new handshakes (spread
    # over the workers) all see it.
    deadline = time.monotonic() + 5
    seen = []
    while time.monotonic() < deadline:
        seen = [handshake(port, ctx, names)[2] for _ in range(6)]
        if seen == ["second"] * 6:
            break
    assert seen == ["second"] * 6
    # The connection made before the reload still serves, with the certificate it began with.
    old.request("GET", "/hello")
    r = old.getresponse()
    assert r.status == 200 and r.read() == b'{"hello": "world"}'
    assert peer_name(old.sock, names) == "first"
    old.close()

    # Reloads while clients connect: every handshake succeeds (libh2o holds a bare pointer to
    # the context between the accept and the first bytes: worker_tls.c keeps it alive).
    for i in range(6):
        pair = (first, first_key) if i % 2 == 0 else (second, second_key)
        shutil.copy(pair[0], cert)
        shutil.copy(pair[1], key)
        os.kill(s.pid, signal.SIGHUP)
        for _ in range(10):
            assert handshake(port, ctx)[0] == "TLSv1.3"
    assert "killed by signal" not in s.log
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and handshake(port, ctx, names)[2] != "second":
        pass

    # A bad new file is logged; the pair in use stays.
    with open(cert, "w") as f:
        f.write("not a certificate\n")
    os.kill(s.pid, signal.SIGHUP)
    assert s.wait_log(r"SIGHUP: keeping the previous TLS certificate: --tls-cert \S+live\.crt: ")
    assert [handshake(port, ctx, names)[2] for _ in range(4)] == ["second"] * 4
    assert s.get("/hello").status_code == 200


def test_bad_certificate_or_key_stops_serve_with_one_line(cli, tmp_path):
    d = str(tmp_path)
    cert, key = make_cert(d, "a", "a")
    other_cert, other_key = make_cert(d, "b", "b")
    garbage = os.path.join(d, "garbage.pem")
    with open(garbage, "w") as f:
        f.write("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n")
    missing = os.path.join(d, "missing.pem")
    base = ["serve", "--listen", "127.0.0.1:0", "--listen-tls", "127.0.0.1:0",
            "--admin-listen", "off"]
    cases = [
        ([missing, key], [missing, "No such file"]),
        ([cert, missing], [missing, "No such file"]),
        ([garbage, key], [garbage, "certificate"]),
        ([cert, cert], [cert, "private key"]),
        ([cert, other_key], [other_key, "does not match", cert]),
    ]
    for (c, k), words in cases:
        cp = cli(*base, "--tls-cert", c, "--tls-key", k, check=False)
        assert cp.returncode == 1, cp.stdout + cp.stderr
        assert "listening" not in cp.stdout
        assert_cli_error(cp, *words)
    assert_cli_error(cli(*base, "--tls-cert", cert, check=False), "--tls-key")
    assert_cli_error(cli("serve", "--tls-cert", cert, "--tls-key", key, check=False),
                     "--listen-tls")


def crash_answer(cp):
    """(status, headers, JSON body) of a `curl -i` answer that must be complete (exit 0)."""
    assert cp.returncode == 0, (cp.returncode, cp.stderr)
    head, body = cp.stdout.split("\n\n", 1)  # text mode: CRLF read as LF
    lines = head.splitlines()
    status = int(lines[0].split()[1])
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return status, {k.lower(): v.strip() for k, v in headers.items()}, json.loads(body)


def test_crash_answers_http2_and_tls_clients_502(portico, server, tmp_path):
    """A worker dying under an HTTP/2 stream or an HTTP/1.1-over-TLS request answers it 502
    through its event loop (a real HTTP/2 response, a real TLS record; worker_rescue.c) before
    it goes, with the request id; os._exit() too. The breaker still opens after 2 deaths, and
    the worker that took over serves."""
    cert, key = make_cert(str(tmp_path), "c", "c")
    portico.publish("hello", HELLO)
    portico.publish("crash", SEGFAULT)
    portico.publish("exit", "import os\n\ndef handler(request):\n    os._exit(3)\n")
    s = server("--listen-tls", "127.0.0.1:0", "--tls-cert", cert, "--tls-key", key)
    port = tls_port(s)
    deaths = 0
    for flag, path, why in (("--http2", "/crash", "worker crashed"),
                            ("--http1.1", "/crash", "worker crashed"),
                            ("--http2", "/exit", "worker exited")):
        status, headers, body = crash_answer(curl("--cacert", cert, flag, "-i",
                                                  f"https://127.0.0.1:{port}{path}"))
        assert status == 502
        assert body == {"error": why, "request_id": headers["x-request-id"]}
        assert headers["content-type"] == "application/json"
        deaths += 1
        wait_deaths(s, deaths)
        ok = curl("--cacert", cert, flag, "-w", "\n%{http_code}", f"https://127.0.0.1:{port}/hello")
        assert ok.returncode == 0 and ok.stdout.endswith("\n200"), ok.stdout + ok.stderr
    # Two deaths of /crash opened its breaker: answered 503 in C, over HTTP/2 too.
    status, headers, body = crash_answer(curl("--cacert", cert, "--http2", "-i",
                                              f"https://127.0.0.1:{port}/crash"))
    assert status == 503 and int(headers["retry-after"]) > 0
    assert body["error"].startswith("endpoint paused")


STREAM_SLOW = """import time

def handler(request):
    with open({marks!r}, "a") as f:
        f.write("started\\n")
    time.sleep(20)
    return "slept"
"""
STREAM_GATE = """import ctypes, os, time

def handler(request):
    with open({marks!r}, "a") as f:
        f.write("started\\n")
    while not os.path.exists({go!r}):
        time.sleep(0.01)
    ctypes.string_at(0)
"""


def test_crash_answers_the_other_streams_of_its_connection(portico, server, tmp_path):
    """Streams multiplexed with the crashed one on an HTTP/2 connection get a definite answer,
    not a reset: one whose handler runs on another thread 502, one still waiting for its turn
    (here behind the endpoint's bulkhead) 503 with Retry-After, as it never ran."""
    cert, key = make_cert(str(tmp_path), "c", "c")
    marks, go = str(tmp_path / "marks"), str(tmp_path / "go")
    portico.publish("slow", STREAM_SLOW.format(marks=marks))
    portico.publish("gate", STREAM_GATE.format(marks=marks, go=go))
    portico.cli("endpoint", "set", "gate", "--max-concurrency", "1", "--queue-wait", "10s")
    s = server("--listen-tls", "127.0.0.1:0", "--tls-cert", cert, "--tls-key", key)
    port = tls_port(s)
    url = f"https://127.0.0.1:{port}"
    out = [str(tmp_path / f"body{i}") for i in range(3)]
    fmt = "%{url_effective} %{http_code} %{num_connects} %{exitcode} %header{retry-after}\\n"
    proc = subprocess.Popen(["curl", "-sS", "--max-time", "20", "--cacert", cert, "--http2",
                             "--parallel", "-w", fmt, "-o", out[0], f"{url}/slow", "-o", out[1],
                             f"{url}/gate?n=1", "-o", out[2], f"{url}/gate?n=2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_marks(marks, 2)  # /slow and the first /gate run; the second /gate waits its turn
        open(go, "w").close()
        stdout, stderr = proc.communicate(timeout=20)
    finally:
        proc.kill()
    rows = {}
    for line in stdout.splitlines():
        u, status, connects, exitcode, *retry = line.split()
        rows[u[len(url):]] = (int(status), int(connects), int(exitcode), retry)
    assert len(rows) == 3, stdout + stderr
    assert sum(r[1] for r in rows.values()) == 1, rows  # one connection for the three streams
    assert all(r[2] == 0 for r in rows.values()), (rows, stderr)
    bodies = {}
    for path, f in zip(("/slow", "/gate?n=1", "/gate?n=2"), out):
        with open(f) as fh:
            bodies[path] = json.loads(fh.read())
    assert rows["/slow"][0] == 502 and bodies["/slow"]["error"] == "worker crashed"
    gates = sorted((rows[p][0], bodies[p]["error"], rows[p][3]) for p in ("/gate?n=1", "/gate?n=2"))
    assert gates == [(502, "worker crashed", []), (503, "worker restarting; retry", ["1"])], gates
    wait_deaths(s, 1)
    assert s.wait_log(r"killed by signal 11 \(Segmentation fault\) in endpoint gate")


def wait_deaths(s, n):
    """Waits until the master has logged n worker deaths (a fatal signal or os._exit())."""
    deadline = time.monotonic() + 10
    pattern = re.compile(r"\[master\] worker \d+ \(pid \d+\) (?:killed by signal 11|exited)")
    while len(pattern.findall(s.log)) < n:
        assert time.monotonic() < deadline, s.log
        time.sleep(0.02)


def test_admin_listener_over_tls_sets_secure_cookies(portico, server, tmp_path):
    cert, key = make_cert(str(tmp_path), "admin", "admin")
    portico.cli("user", "add", "admin", "--role", "admin", input=ADMIN_PASSWORD + "\n")
    s = server("--admin-listen-tls", "127.0.0.1:0", "--tls-cert", cert, "--tls-key", key)
    assert s.admin_url.startswith("https://127.0.0.1:")
    c = AdminClient(s.admin_url)
    c.http.trust_env = False  # or $REQUESTS_CA_BUNDLE would override the session's verify
    c.http.verify = cert
    r = c.login("admin", ADMIN_PASSWORD)
    assert r.status_code == 200, r.text
    attrs = [a.strip() for a in r.headers["Set-Cookie"].split(";")]
    assert "Secure" in attrs and "HttpOnly" in attrs
    assert c.get("/me").json()["user"] == "admin"
    # The public listener stays cleartext here; the admin one refuses cleartext.
    assert s.get("/_portico/health").status_code == 200
    port = int(s.admin_url.rsplit(":", 1)[1].split("/")[0])
    assert handshake(port, client_ctx(cert))[0] in ("TLSv1.3", "TLSv1.2")
    assert_cli_error(portico.cli("serve", "--admin-listen", "127.0.0.1:0", "--admin-listen-tls",
                                 "127.0.0.1:0", "--tls-cert", cert, "--tls-key", key,
                                 check=False), "--admin-listen-tls")



def test_client_leaving_over_tls_is_noticed(tls, tmp_path):
    """An HTTP/1.1-over-TLS connection gets no raw crash answer, but a client that leaves
    while its handler runs is still noticed (the end of the TCP stream)."""
    s, port, cert = tls
    marks = str(tmp_path / "marks")
    s.portico.publish("watch", WATCHER.format(marks=marks))
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    conn = client_ctx(cert, ["http/1.1"]).wrap_socket(raw, server_hostname="127.0.0.1")
    conn.sendall(b"GET /watch HTTP/1.1\r\nHost: x\r\n\r\n")
    wait_marks(marks, 1)
    conn.close()
    deadline = time.monotonic() + 10
    while "seen" not in open(marks).read() and time.monotonic() < deadline:
        time.sleep(0.02)
    with open(marks) as f:
        assert f.read().splitlines()[:2] == ["started", "seen"]


def test_listen_tls_alone_turns_cleartext_off(portico, tmp_path):
    """--listen-tls without --listen: only the TLS listener, and the master says so."""
    cert, key = make_cert(str(tmp_path), "alone", "alone")
    portico.publish("hello", HELLO)
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([BIN, "--data", portico.data, "serve", "--workers", "1",
                                 "--listen-tls", "127.0.0.1:0", "--tls-cert", cert,
                                 "--tls-key", key, "--admin-listen", "off"],
                                stdout=out, stderr=subprocess.STDOUT, env=_env())
    try:
        deadline = time.monotonic() + 15
        m = None
        while m is None and time.monotonic() < deadline and proc.poll() is None:
            m = re.search(r"^listening on https://127\.0\.0\.1:(\d+)$", log.read_text(), re.M)
            time.sleep(0.05)
        assert m, log.read_text()
        assert "listening on http://" not in log.read_text()
        cp = curl("--cacert", cert, "--http2", "-w", "\n%{http_code}",
                  f"https://127.0.0.1:{m.group(1)}/hello")
        assert cp.stdout.endswith("\n200"), cp.stdout + cp.stderr
    finally:
        proc.terminate()
        assert proc.wait(15) == 0
