"""TLS and HTTP/2 (issue 12 §1, docs/OPERATIONS.md): `serve --listen-tls` with a self-signed
certificate made here with `openssl req`; HTTP/2 and HTTP/1.1 chosen by ALPN; TLS 1.0/1.1 and
weak ciphers refused; the certificate reloaded on SIGHUP while open connections go on; a bad
certificate stops `serve` with one line; a crashed handler's HTTP/2 client is let go at once;
the admin listener over TLS marks its session cookie Secure."""
import http.client
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


def test_crashed_handler_lets_its_http2_client_go_at_once(portico, server, tmp_path):
    """A worker dying under an HTTP/2 (or any TLS) stream cannot write on that connection (its
    TLS state dies with it): the connection is shut down at once, the client's stream fails
    without waiting for a timeout, and its retry is served by the worker that took over."""
    cert, key = make_cert(str(tmp_path), "c", "c")
    portico.publish("hello", HELLO)
    portico.publish("crash", SEGFAULT)
    s = server("--listen-tls", "127.0.0.1:0", "--tls-cert", cert, "--tls-key", key)
    port = tls_port(s)
    for flag in ("--http2", "--http1.1"):
        cp = curl("--cacert", cert, flag, f"https://127.0.0.1:{port}/crash")
        # Not a timeout (28) nor plaintext written into the TLS stream (35: "wrong version
        # number"): the transfer ends with the connection (HTTP/2: 16, 18 or 92; 1.1: 52, 56).
        assert cp.returncode in (16, 18, 52, 56, 92), (cp.returncode, cp.stderr)
        assert s.wait_log(r"killed by signal 11 \(Segmentation fault\) in endpoint crash")
        ok = curl("--cacert", cert, flag, "-w", "\n%{http_code}", f"https://127.0.0.1:{port}/hello")
        assert ok.returncode == 0 and ok.stdout.endswith("\n200"), ok.stdout + ok.stderr


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
