"""The HTTP server (issue 2, §3 and §5): routing errors, request ids, access log, limits,
timeouts, worker crashes and replacement, hot reload, SIGTERM, concurrency, keep-alive."""

import http.client
import json
import os
import re
import select
import signal
import socket
import threading
import time

import pytest
import requests

from conftest import Handlers, assert_json_error, rid_of, start_module_server, wait_marks

H = Handlers()

PING = H.add("ping", "def handler(request):\n    return {'pong': True}\n")
CUSTOMER = H.add("customer", "def handler(request):\n    return {'id': request['params']['id']}\n",
                 path="/customers/{id}")
SPECIAL = H.add("special", "def handler(request):\n    return 'special'\n",
                path="/customers/special")
MCP = H.add("mcp", "def handler(request):\n    return request['path']\n", path="/mcp/*/*")
WRITE = H.add("write", "def handler(request):\n    return 'written'\n", methods="POST,PUT")
LENGTH = H.add("length", "def handler(request):\n    return {'len': len(request['body'])}\n",
               methods="POST")
SLOW = H.add("slow", """\
    import time

    def handler(request):
        mark = request['query'].get('mark')
        if mark:                        # tells the test that the handler runs (wait_marks)
            with open(mark, 'a') as f:
                f.write('started\\n')
        time.sleep(1)
        return 'slow done'
    """)
RAISES = H.add("raises", "def handler(request):\n    raise RuntimeError('x')\n")


@pytest.fixture(scope="module")
def srv(module_portico):
    H.publish_all(module_portico)
    s = start_module_server(module_portico)
    yield s
    s.close()


# ---------------------------------------------------------------- raw HTTP helpers

def raw_exchange(port, head, body=b"", timeout=10.0):
    """Sends head, then body unless the server answers first (as it may for 413/431).
    Returns (status, headers dict lower-cased, body bytes) of the first response."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    deadline = time.monotonic() + timeout
    try:
        s.sendall(head)
        view = memoryview(body)
        while view and time.monotonic() < deadline:
            r, w, _ = select.select([s], [s], [], 0.5)
            if r:
                break                       # the server answered (or closed) early
            if w:
                try:
                    n = s.send(view[:65536])
                except (BrokenPipeError, ConnectionResetError):
                    break
                view = view[n:]
        data = b""
        while time.monotonic() < deadline:
            r, _, _ = select.select([s], [], [], 0.5)
            if not r:
                if parse_response(data):
                    break
                continue
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
            if parse_response(data):
                break
        parsed = parse_response(data)
        assert parsed, f"no complete HTTP response received: {data[:500]!r}"
        return parsed
    finally:
        s.close()


def parse_response(data):
    if b"\r\n\r\n" not in data:
        return None
    head, rest = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    n = int(headers.get("content-length", "0") or 0)
    if len(rest) < n:
        return None
    return status, headers, rest[:n]


def assert_raw_json_error(status, headers, body, expected):
    assert status == expected, f"expected {expected}, got {status}: {body[:200]!r}"
    rid = headers.get("x-request-id")
    assert rid, "no X-Request-Id"
    assert headers.get("content-type", "").startswith("application/json"), headers
    doc = json.loads(body)
    assert doc.get("error") and doc.get("request_id") == rid, doc


# ---------------------------------------------------------------- routing and errors

def test_health(srv):
    r = srv.get("/_portico/health")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.json()["status"] == "ok" and r.json()["store"]["driver"] == "sqlite"
    assert rid_of(r)


def test_routes_ok(srv):
    assert srv.get(PING).json() == {"pong": True}
    assert srv.get("/customers/17").json() == {"id": "17"}
    assert srv.get("/customers/special").text == "special"        # literal beats {id}
    r = srv.get("/mcp/tools/list")
    assert r.status_code == 200 and r.text == "/mcp/tools/list"


@pytest.mark.parametrize("path", ["/nope", "/customers", "/customers/1/extra", "/mcp/one",
                                  "/mcp/a/b/c", "/_portico/nope", "/pingx"])
def test_unknown_path_404(srv, path):
    assert_json_error(srv.get(path), 404)


def test_wrong_method_405_with_allow(srv):
    r = srv.post(PING, data=b"x")
    assert_json_error(r, 405)
    allow = [m.strip() for m in r.headers.get("Allow", "").split(",")]
    assert "GET" in allow and "POST" not in allow, r.headers.get("Allow")

    r = srv.get(WRITE)
    assert_json_error(r, 405)
    allow = [m.strip() for m in r.headers.get("Allow", "").split(",")]
    assert "POST" in allow and "PUT" in allow and "GET" not in allow, r.headers.get("Allow")
    assert srv.request("DELETE", WRITE).status_code == 405
    assert srv.request("PUT", WRITE).status_code == 200


def test_request_id_on_every_response(srv):
    responses = [srv.get(PING), srv.get("/nope"), srv.post(PING, data=b""), srv.get(RAISES),
                 srv.get("/_portico/health"), srv.request("PUT", WRITE)]
    ids = [rid_of(r) for r in responses]
    ids += [rid_of(srv.get(PING)) for _ in range(10)]
    assert len(set(ids)) == len(ids), f"request ids not unique: {ids}"


def test_access_log_line_per_request(srv):
    r = srv.get(PING + "?q=1")
    rid = rid_of(r)
    lines = srv.log_lines_with(rid, "GET", PING)
    assert lines, f"no access-log line with {rid}, GET, {PING}"
    assert len(lines) == 1, f"expected one access-log line, got {lines}"
    assert re.search(r"\b200\b", lines[0]), lines[0]

    r = srv.get("/not-here")
    rid = rid_of(r)
    lines = srv.log_lines_with(rid, "/not-here")
    assert len(lines) == 1 and re.search(r"\b404\b", lines[0]), lines

    r = srv.get(RAISES)
    lines = [l for l in srv.log_lines_with(rid_of(r), "GET", RAISES)]
    assert any(re.search(r"\b500\b", l) for l in lines), lines


# ---------------------------------------------------------------- limits

def test_body_within_default_limit(srv):
    body = os.urandom(1 << 20)
    r = srv.post(LENGTH, data=body, headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 200 and r.json() == {"len": len(body)}


def test_body_over_default_limit_413(srv):
    n = 10 * (1 << 20) + 4096
    head = (f"POST {LENGTH} HTTP/1.1\r\nHost: 127.0.0.1:{srv.port}\r\n"
            f"Content-Type: application/octet-stream\r\nContent-Length: {n}\r\n\r\n").encode()
    assert_raw_json_error(*raw_exchange(srv.port, head, b"x" * n), 413)
    assert srv.get(PING).status_code == 200


def test_max_body_flag_413(portico, server):
    portico.publish("len", "def handler(request):\n    return {'len': len(request['body'])}\n",
                    methods="POST")
    s = server("--max-body", "1")
    ok = b"y" * ((1 << 20) - 1024)
    r = s.post("/len", data=ok, headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 200 and r.json() == {"len": len(ok)}

    n = 2 << 20
    head = (f"POST /len HTTP/1.1\r\nHost: 127.0.0.1:{s.port}\r\n"
            f"Content-Type: application/octet-stream\r\nContent-Length: {n}\r\n\r\n").encode()
    assert_raw_json_error(*raw_exchange(s.port, head, b"x" * n), 413)

    # The same without Content-Length: a chunked body must be counted as it arrives.
    head = (f"POST /len HTTP/1.1\r\nHost: 127.0.0.1:{s.port}\r\n"
            f"Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
            ).encode()
    chunk = b"z" * 65536
    body = (b"%x\r\n" % len(chunk) + chunk + b"\r\n") * 32 + b"0\r\n\r\n"
    assert_raw_json_error(*raw_exchange(s.port, head, body), 413)
    assert s.get("/_portico/health").status_code == 200


def test_headers_too_large_431(srv):
    big = "a" * (64 * 1024)
    head = (f"GET {PING} HTTP/1.1\r\nHost: 127.0.0.1:{srv.port}\r\n"
            f"X-Big: {big}\r\n\r\n").encode()
    assert_raw_json_error(*raw_exchange(srv.port, head), 431)
    assert srv.get(PING).status_code == 200


def test_many_header_fields_refused_by_parser(srv):
    # h2o's parser stops at 100 header fields and answers 400 itself, before Portico sees the
    # request (documented in docs/HANDLERS.md); the size limit (431, JSON) is tested above.
    many = "".join(f"X-H{i}: v\r\n" for i in range(150))
    head = f"GET {PING} HTTP/1.1\r\nHost: 127.0.0.1:{srv.port}\r\n{many}\r\n".encode()
    status, _headers, _body = raw_exchange(srv.port, head)
    assert status == 400
    assert srv.get(PING).status_code == 200


def test_moderate_headers_accepted(srv):
    r = srv.get(PING, headers={"X-Mid": "m" * 4000})
    assert r.status_code == 200


# ---------------------------------------------------------------- timeouts and crashes

FAST_SRC = "import os\n\ndef handler(request):\n    return {'pid': os.getpid()}\n"


def test_handler_timeout_504_then_serves(portico, server):
    portico.publish("fast", FAST_SRC)
    portico.publish("sleepy", "import time\n\ndef handler(request):\n    time.sleep(3)\n"
                              "    return 'late'\n")
    portico.publish("spin", "def handler(request):\n    while True:\n        pass\n")
    s = server("--timeout", "1", "--workers", "1")

    t0 = time.monotonic()
    r = get_answer(s, "/sleepy", timeout=10)
    elapsed = time.monotonic() - t0
    assert_json_error(r, 504)
    assert 0.8 <= elapsed < 2.8, f"504 after {elapsed:.2f}s with --timeout 1"
    for _ in range(3):
        r = s.get("/fast", timeout=5)
        assert r.status_code == 200, r.text

    t0 = time.monotonic()
    r = get_answer(s, "/spin", timeout=10)
    elapsed = time.monotonic() - t0
    assert_json_error(r, 504)
    assert elapsed < 2.8, f"504 after {elapsed:.2f}s for a CPU-bound handler"
    for _ in range(3):
        r = s.get("/fast", timeout=5)
        assert r.status_code == 200, r.text


def get_answer(s, path, timeout=10):
    """GET that turns a dropped connection into a clear failure (an HTTP status was due)."""
    try:
        return s.get(path, timeout=timeout)
    except requests.RequestException as e:
        pytest.fail(f"GET {path}: no HTTP response ({type(e).__name__}: {e})", pytrace=False)


def wait_workers(s, count, replaced=(), timeout=2.0):
    """Waits until the master has at least `count` children and, when `replaced` is given,
    until none of the pids in `replaced` is among them any more. Returns the children."""
    deadline = time.monotonic() + timeout
    kids = s.children()
    while time.monotonic() < deadline:
        kids = s.children()
        if len(kids) >= count and not set(kids) & set(replaced):
            return kids
        time.sleep(0.02)
    return kids


def wait_replacement(s, before, timeout=1.5):
    """Waits until the set of worker pids differs from `before` and is as large again."""
    deadline = time.monotonic() + timeout
    while True:
        kids = s.children()
        if set(kids) != set(before) and len(kids) >= len(before):
            return kids
        if time.monotonic() > deadline:
            return kids
        time.sleep(0.02)


def test_segfault_502_and_replaced(portico, server):
    portico.publish("fast", FAST_SRC)
    portico.publish("crash", "import ctypes\n\ndef handler(request):\n"
                             "    ctypes.string_at(0)\n    return 'unreachable'\n")
    s = server()
    before = wait_workers(s, 2)
    assert len(before) >= 2, f"expected 2 workers, children: {before}"

    r = get_answer(s, "/crash", timeout=10)
    assert_json_error(r, 502)
    after = wait_replacement(s, before)
    assert set(after) != set(before) and len(after) >= len(before), \
        f"crashed worker not replaced within 1.5 s: {before} -> {after}"
    for _ in range(6):
        assert s.get("/fast", timeout=5).status_code == 200
    assert s.wait_log(r"SIGSEGV|signal 11\b|segmentation", flags=re.I), \
        "log does not name the crash cause (SIGSEGV)"


def test_os_exit_502_and_replaced(portico, server):
    portico.publish("fast", FAST_SRC)
    portico.publish("quit", "import os\n\ndef handler(request):\n    os._exit(3)\n")
    s = server()
    before = wait_workers(s, 2)
    assert len(before) >= 2, f"expected 2 workers, children: {before}"

    r = get_answer(s, "/quit", timeout=10)
    assert_json_error(r, 502)
    after = wait_replacement(s, before)
    assert set(after) != set(before) and len(after) >= len(before), \
        f"exited worker not replaced within 1.5 s: {before} -> {after}"
    for _ in range(6):
        assert s.get("/fast", timeout=5).status_code == 200
    assert s.wait_log(r"(exit|status|code)\D{0,20}\b3\b|os\._exit", flags=re.I), \
        "log does not name the cause (os._exit / exit status 3)"


def test_memory_limit(portico, server):
    portico.publish("fast", FAST_SRC)
    portico.publish("hog", "def handler(request):\n    x = b'x' * 2**30\n    return len(x)\n")
    s = server("--worker-memory", "256")
    r = get_answer(s, "/hog", timeout=20)
    assert 500 <= r.status_code < 600, f"{r.status_code}: {r.text[:200]}"
    assert_json_error(r, r.status_code)
    for _ in range(6):
        r = s.get("/fast", timeout=5)
        assert r.status_code == 200, r.text
    assert len(wait_workers(s, 2)) >= 2


def test_killed_worker_replaced(portico, server):
    portico.publish("fast", FAST_SRC)
    s = server()
    before = wait_workers(s, 2)
    assert len(before) >= 2, f"expected 2 workers, children: {before}"
    victim = before[0]
    os.kill(victim, signal.SIGKILL)
    t0 = time.monotonic()
    after = wait_workers(s, len(before), replaced=[victim], timeout=3)
    took = time.monotonic() - t0
    assert victim not in after and len(after) >= len(before), (before, after)
    assert took < 1.5, f"worker replaced after {took:.2f}s"
    for _ in range(8):
        assert s.get("/fast", timeout=5).status_code == 200
    assert s.wait_log(r"SIGKILL|signal 9\b|killed", flags=re.I), \
        "log does not name the cause (SIGKILL)"


# ---------------------------------------------------------------- changes while serving

def test_script_update_takes_effect_next_request(srv, module_portico):
    module_portico.publish("live", "def handler(request):\n    return 'live-v1'\n")
    for _ in range(4):
        r = srv.get("/live")
        assert r.status_code == 200 and r.text == "live-v1", r.text
    module_portico.add_script("live", "def handler(request):\n    return 'live-v2'\n")
    for _ in range(4):
        r = srv.get("/live")
        assert r.status_code == 200 and r.text == "live-v2", r.text
    module_portico.cli("script", "rollback", "live", "1")
    for _ in range(4):
        r = srv.get("/live")
        assert r.status_code == 200 and r.text == "live-v1", r.text


def test_endpoint_add_rm_while_serving(srv, module_portico):
    assert srv.get("/late-comer").status_code == 404
    module_portico.publish("latecomer", "def handler(request):\n    return 'here'\n",
                           path="/late-comer", methods="GET,POST")
    for _ in range(4):
        r = srv.get("/late-comer")
        assert r.status_code == 200 and r.text == "here"
    module_portico.cli("endpoint", "rm", "latecomer")
    for _ in range(4):
        assert_json_error(srv.get("/late-comer"), 404)


def test_broken_new_version_refused_old_keeps_serving(srv, module_portico):
    module_portico.publish("stable", "def handler(request):\n    return 'stable-v1'\n")
    assert srv.get("/stable").text == "stable-v1"
    cp = module_portico.add_script("stable", "def handler(request)\n    return 2\n", check=False)
    assert cp.returncode != 0
    for _ in range(3):
        assert srv.get("/stable").text == "stable-v1"


# ---------------------------------------------------------------- SIGTERM

def test_sigterm_finishes_in_flight_request(portico, server):
    portico.publish("second", "import time\n\ndef handler(request):\n"
                              "    open(request['query']['mark'], 'a').write('started\\n')\n"
                              "    time.sleep(1)\n    return 'finished'\n")
    s = server()
    mark = os.path.join(portico.scratch, "second.marks")
    result = {}

    def call():
        try:
            result["r"] = requests.get(s.url + "/second", params={"mark": mark}, timeout=10)
        except Exception as e:      # reported below
            result["e"] = e

    t = threading.Thread(target=call)
    t.start()
    wait_marks(mark, 1)                 # the request is in flight: its handler runs
    t0 = time.monotonic()
    s.proc.send_signal(signal.SIGTERM)
    t.join(10)
    assert "e" not in result, f"in-flight request failed: {result.get('e')!r}"
    r = result["r"]
    assert r.status_code == 200 and r.text == "finished"
    rc = s.terminate()
    took = time.monotonic() - t0
    assert rc == 0, f"exit status {rc}\n{s.log[-3000:]}"
    assert took < 5, f"exit took {took:.1f}s"
    with pytest.raises(requests.ConnectionError):
        requests.get(s.url + "/_portico/health", timeout=2)


# ---------------------------------------------------------------- concurrency, keep-alive

def run_slow_and_fast(s, slow_path, fast_path, mark, n_slow=4, n_fast=6, session=None):
    """Starts n_slow requests to slow_path (a handler that appends a line to the file named by
    its `mark` query parameter first), waits until they all run, then times n_fast requests
    to fast_path. Returns ([(status, seconds)] of the slow ones, the same of the fast ones)."""
    slow_results = []

    def slow():
        t0 = time.monotonic()
        try:
            r = requests.get(s.url + slow_path, params={"mark": mark}, timeout=15)
            slow_results.append((r.status_code, time.monotonic() - t0))
        except Exception as e:
            slow_results.append((repr(e), time.monotonic() - t0))

    threads = [threading.Thread(target=slow) for _ in range(n_slow)]
    for t in threads:
        t.start()
    wait_marks(mark, n_slow)            # every slow handler runs: now time the fast ones
    fast = []
    for i in range(n_fast):
        getter = session.get if (session is not None and i % 2) else requests.get
        t0 = time.monotonic()
        r = getter(s.url + fast_path, timeout=5)
        fast.append((r.status_code, time.monotonic() - t0))
    for t in threads:
        t.join(20)
    return slow_results, fast


def test_slow_handlers_do_not_stall_fast_requests(srv, tmp_path):
    with requests.Session() as sess:
        assert sess.get(srv.url + PING, timeout=5).status_code == 200   # open a keep-alive conn
        slow, fast = run_slow_and_fast(srv, SLOW, PING, str(tmp_path / "slow.marks"),
                                       session=sess)
    assert all(st == 200 for st, _ in slow), slow
    assert all(st == 200 for st, _ in fast), fast
    worst = max(d for _, d in fast)
    assert worst < 0.5, f"fast requests took up to {worst:.2f}s behind slow ones: {fast}"


def test_busy_single_worker_other_connections(portico, server):
    portico.publish("fast", FAST_SRC)
    portico.publish("nap", "import time\n\ndef handler(request):\n"
                           "    open(request['query']['mark'], 'a').write('started\\n')\n"
                           "    time.sleep(1)\n    return 'nap done'\n")
    s = server("--workers", "1")
    with requests.Session() as sess:
        assert sess.get(s.url + "/fast", timeout=5).status_code == 200
        slow, fast = run_slow_and_fast(s, "/nap", "/fast", os.path.join(portico.scratch,
                                       "nap.marks"), n_slow=2, session=sess)
    assert all(st == 200 for st, _ in slow), slow
    assert all(st == 200 for st, _ in fast), fast
    worst = max(d for _, d in fast)
    assert worst < 0.5, f"fast requests on the busy worker took up to {worst:.2f}s: {fast}"


def test_keep_alive_many_requests_one_connection(srv):
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
    try:
        conn.request("GET", PING)
        r = conn.getresponse()
        assert r.status == 200
        r.read()
        sock = conn.sock
        assert sock is not None, "server closed the connection after one request"
        for i in range(200):
            conn.request("GET", PING if i % 2 else "/nope")
            r = conn.getresponse()
            r.read()
            assert r.status == (200 if i % 2 else 404), (i, r.status)
            assert conn.sock is sock, f"connection not kept alive (request {i})"
    finally:
        conn.close()


def test_keep_alive_session(srv):
    with requests.Session() as sess:
        t0 = time.monotonic()
        for _ in range(100):
            r = sess.get(srv.url + PING, timeout=5)
            assert r.status_code == 200 and r.json() == {"pong": True}
        assert time.monotonic() - t0 < 10
