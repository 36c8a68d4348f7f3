"""Per-endpoint settings (issue 12, sections 2 and 3): stored with the endpoint, shown by the
CLI and the admin API, and applied on the request path: timeout, body limit, CORS, the shared
response cache and the bulkhead counted across workers."""

import concurrent.futures

from conftest import AdminClient, assert_cli_error, start_remote_portico, wait_marks

SLOW = """
import time
def handler(request):
    with open({marks!r}, "a") as f:
        f.write("started\\n")
    time.sleep(float(request["query"].get("s", "1")))
    return {{"slept": True}}
"""

COUNTER = """
import os
def handler(request):
    with open({path!r}, "a") as f:
        f.write("x")
    return {{"query": request["query"], "caller": (request.get("auth") or {{}}).get("name")}}
"""

# What Chromium sends for a preflight and a simple cross-origin GET from https://app.example.
PREFLIGHT = {
    "Accept": "*/*",
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "content-type,x-api-key",
    "Origin": "https://app.example",
    "Sec-Fetch-Mode": "cors",
    "Sec-Fetch-Site": "cross-site",
    "Sec-Fetch-Dest": "empty",
    "Referer": "https://app.example/",
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                  "Chrome/120.0.0.0 Safari/537.36",
    "Accept-Encoding": "gzip, deflate, br",
    "Accept-Language": "en-US,en;q=0.9",
}
SIMPLE = {
    "Accept": "*/*",
    "Origin": "https://app.example",
    "Sec-Fetch-Mode": "cors",
    "Sec-Fetch-Site": "cross-site",
    "Sec-Fetch-Dest": "empty",
    "Referer": "https://app.example/",
    "Accept-Language": "en-US,en;q=0.9",
}


def cors_headers(resp):
    return {k.lower(): v for k, v in resp.headers.items() if k.lower().startswith("access-control")}


def test_settings_cli_show_list_and_clear(portico, cli):
    portico.add_script("h", "def handler(request):\n    return {}\n")
    cli("endpoint", "add", "h", "--path", "/h", "--script", "h", "--auth", "apikey",
        "--timeout", "5s", "--max-concurrency", "2", "--queue-wait", "200ms", "--cache", "30s",
        "--max-body", "1MiB", "--cors", "https://a.example, https://B.example/")
    out = cli("endpoint", "show", "h").stdout
    assert "timeout:  5s" in out
    assert "max concurrency: 2 (queue wait 200ms)" in out
    assert "cache:    30s" in out
    assert "max body: 1MiB" in out
    assert "cors:     https://a.example,https://b.example" in out
    listing = cli("endpoint", "list").stdout
    assert ("timeout=5s max-concurrency=2 queue-wait=200ms cache=30s max-body=1MiB "
            "cors=https://a.example,https://b.example") in listing
    cli("endpoint", "set", "h", "--timeout", "default", "--no-cache", "--no-cors",
        "--max-concurrency", "default", "--queue-wait", "default", "--max-body", "default")
    out = cli("endpoint", "show", "h").stdout
    assert "timeout:  default" in out and "cache:    off" in out and "cors:     off" in out
    assert "max concurrency: unlimited" in out and "max body: default" in out


BAD_VALUES = [
    (["--timeout", "0"], ["--timeout"]),
    (["--timeout", "5 parsecs"], ["--timeout"]),
    (["--max-concurrency", "0"], ["--max-concurrency"]),
    (["--queue-wait", "2d"], ["--queue-wait"]),
    (["--cache", "soon"], ["--cache"]),
    (["--max-body", "2XB"], ["--max-body"]),
    (["--cors", "ftp://x.example"], ["--cors", "ftp://x.example"]),
    (["--cors", "*"], ["--cors", "public"]),
]


def test_settings_bad_values_name_the_flag(portico, cli):
    portico.add_script("h", "def handler(request):\n    return {}\n")
    cli("endpoint", "add", "h", "--path", "/h", "--script", "h", "--auth", "jwt")
    for args, words in BAD_VALUES:
        cp = cli("endpoint", "set", "h", *args, check=False)
        assert cp.returncode == 1, args
        assert_cli_error(cp, *words)
    assert "timeout:  default" in cli("endpoint", "show", "h").stdout  # nothing changed


def test_settings_remote_cli_and_admin_json(portico):
    portico.add_script("h", "def handler(request):\n    return {}\n")
    remote = start_remote_portico(portico)
    try:
        remote.cli("endpoint", "add", "h", "--path", "/h", "--script", "h", "--auth", "public",
                   "--cache", "1m", "--cors", "*")
        remote.cli("endpoint", "set", "h", "--timeout", "1.5s")
        out = remote.cli("endpoint", "show", "h").stdout
        assert "timeout:  1.5s" in out and "cache:    1m" in out and "cors:     *" in out
        # Going from public to apikey with '*' is refused, naming the setting.
        cp = remote.cli("endpoint", "set", "h", "--auth", "apikey", check=False)
        assert cp.returncode == 1 and "public" in cp.stderr
        # The admin API's JSON, and PATCH with null clearing a setting.
        api = AdminClient(remote.server.admin_url, remote.token)
        ep = api.get("/endpoints/h").json()
        assert ep["settings"] == {"timeout_ms": 1500, "max_concurrency": None,
                                  "queue_wait_ms": None, "cache_ms": 60000, "max_body": None,
                                  "cors": ["*"]}
        r = api.patch("/endpoints/h", json={"settings": {"cache_ms": None, "max_body": "2MiB"}})
        assert r.status_code == 200, r.text
        assert r.json()["settings"]["cache_ms"] is None
        assert r.json()["settings"]["max_body"] == 2 << 20
        r = api.patch("/endpoints/h", json={"settings": {"colour": "blue"}})
        assert r.status_code == 400 and r.json()["error"]["field"] == "settings"
        # The public OpenAPI document shows them.
        doc = remote.server.get("/_portico/openapi.json").json()
        op = doc["paths"]["/h"]["get"]
        assert op["x-portico-settings"]["timeout_ms"] == 1500
        assert op["x-portico-settings"]["max_body"] == 2 << 20
    finally:
        remote.close()


def test_timeout_and_body_limit_override_the_server(portico, server):
    portico.publish("slow", SLOW.format(marks=portico.write("marks", "")))
    portico.publish("echo", "def handler(request):\n    return {'n': len(request['body'])}\n",
                    methods="POST")
    portico.publish("small", "def handler(request):\n    return {'n': len(request['body'])}\n",
                    methods="POST")
    portico.cli("endpoint", "set", "slow", "--timeout", "300ms")
    portico.cli("endpoint", "set", "echo", "--max-body", "3MiB")
    portico.cli("endpoint", "set", "small", "--max-body", "1KiB")
    s = server("--timeout", "30", "--max-body", "1")
    r = s.get("/slow?s=1", timeout=10)
    assert r.status_code == 504
    big = b"x" * (2 << 20)  # over serve's 1 MiB, under the endpoint's 3 MiB
    r = s.post("/echo", data=big, timeout=10)
    assert r.status_code == 200 and r.json() == {"n": len(big)}
    assert s.post("/echo", data=b"x" * ((3 << 20) + 1), timeout=10).status_code == 413
    r = s.post("/small", data=b"x" * 2000, timeout=10)
    assert r.status_code == 413 and "1024" in r.json()["error"]
    assert s.post("/small", data=b"x" * 1000, timeout=10).status_code == 200


def test_cors_preflight_and_actual_responses(portico, server):
    portico.publish("api", "def handler(request):\n    return {'ok': 1}\n", methods="GET,POST")
    portico.publish("plain", "def handler(request):\n    return {'ok': 1}\n")
    portico.cli("endpoint", "set", "api", "--cors", "https://app.example,https://other.example")
    s = server()
    r = s.request("OPTIONS", "/api", headers=PREFLIGHT, timeout=5)
    assert r.status_code == 204
    assert cors_headers(r) == {
        "access-control-allow-origin": "https://app.example",
        "access-control-allow-methods": "GET, POST",
        "access-control-allow-headers": "content-type, x-api-key",
        "access-control-max-age": "600",
    }
    assert "Origin" in r.headers["Vary"]
    # A header outside the list is not granted (the browser then refuses the request).
    r = s.request("OPTIONS", "/api", timeout=5,
                  headers=dict(PREFLIGHT, **{"Access-Control-Request-Headers": "x-evil"}))
    assert r.status_code == 204 and "access-control-allow-headers" not in cors_headers(r)
    # A disallowed origin gets no CORS headers at all, on the preflight and the response.
    evil = dict(PREFLIGHT, Origin="https://evil.example")
    r = s.request("OPTIONS", "/api", headers=evil, timeout=5)
    assert r.status_code == 204 and cors_headers(r) == {}
    r = s.get("/api", headers=dict(SIMPLE, Origin="https://evil.example"), timeout=5)
    assert r.status_code == 200 and cors_headers(r) == {}
    # The actual response of an allowed origin.
    r = s.get("/api", headers=SIMPLE, timeout=5)
    assert r.status_code == 200
    assert r.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert r.headers["Vary"] == "Origin"
    # An endpoint without --cors: a preflight is routed as before (405: no OPTIONS method).
    r = s.request("OPTIONS", "/plain", headers=PREFLIGHT, timeout=5)
    assert r.status_code == 405 and cors_headers(r) == {}


def test_cache_hits_keys_and_no_store(portico, server):
    hits = portico.write("hits", "")
    portico.publish("c", COUNTER.format(path=hits))
    portico.publish("nostore", "def handler(request):\n"
                    "    return {'x': 1}, 200, {'Cache-Control': 'no-store'}\n")
    portico.cli("endpoint", "set", "c", "--cache", "1m")
    portico.cli("endpoint", "set", "nostore", "--cache", "1m")
    s = server()

    def runs():
        with open(hits) as f:
            return len(f.read())

    r1 = s.get("/c?b=2&a=1", timeout=5)
    assert r1.status_code == 200 and r1.headers["X-Cache"] == "MISS"
    for _ in range(4):  # both workers answer from the shared cache, without the handler
        r = s.get("/c?a=1&b=2", timeout=5)
        assert r.status_code == 200 and r.headers["X-Cache"] == "HIT"
        assert r.json() == r1.json()
    assert runs() == 1
    assert s.get("/c?a=2", timeout=5).headers["X-Cache"] == "MISS"
    assert runs() == 2
    assert s.request("POST", "/c", timeout=5).status_code == 405
    # no-store from the handler is honoured.
    for _ in range(2):
        assert s.get("/nostore", timeout=5).headers["X-Cache"] == "MISS"
    # A new script version clears what the endpoint cached.
    portico.add_script("c", COUNTER.format(path=hits) + "\n# v2\n")
    assert s.get("/c?a=1&b=2", timeout=5).headers["X-Cache"] == "MISS"
    assert runs() == 3
    metrics = s.get("/_portico/metrics", timeout=5).text
    assert 'portico_endpoint_cache_hits_total{endpoint="c"} 4' in metrics
    assert 'portico_endpoint_cache_misses_total{endpoint="c"} 3' in metrics
    # So does a change of the endpoint's settings.
    assert s.get("/c?a=1&b=2", timeout=5).headers["X-Cache"] == "HIT"
    portico.cli("endpoint", "set", "c", "--timeout", "5s")
    assert s.get("/c?a=1&b=2", timeout=5).headers["X-Cache"] == "MISS"
    assert runs() == 4


def test_cache_never_shared_between_callers(portico, server):
    hits = portico.write("hits", "")
    portico.add_script("c", COUNTER.format(path=hits))
    portico.cli("endpoint", "add", "c", "--path", "/c", "--script", "c", "--auth", "apikey",
                "--cache", "1m")
    keys = []
    for name in ("alice", "bob"):
        keys.append(portico.cli("apikey", "create", name).stdout.strip().split()[-1])
    s = server()
    a = s.get("/c", headers={"X-Api-Key": keys[0]}, timeout=5)
    b = s.get("/c", headers={"X-Api-Key": keys[1]}, timeout=5)
    assert (a.status_code, b.status_code) == (200, 200)
    assert a.headers["X-Cache"] == "MISS" and b.headers["X-Cache"] == "MISS"
    assert a.json()["caller"] == "alice" and b.json()["caller"] == "bob"
    a2 = s.get("/c", headers={"X-Api-Key": keys[0]}, timeout=5)
    assert a2.headers["X-Cache"] == "HIT" and a2.json()["caller"] == "alice"
    assert s.get("/c", timeout=5).status_code == 401  # no key: never a cached answer


def test_bulkhead_across_workers(portico, server):
    marks = portico.write("marks", "")
    portico.publish("slow", SLOW.format(marks=marks))
    portico.publish("hello", "def handler(request):\n    return {'hello': 1}\n")
    portico.cli("endpoint", "set", "slow", "--max-concurrency", "2", "--queue-wait", "200ms")
    s = server("--threads", "8")
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        futs = [pool.submit(s.get, "/slow?s=1.5", timeout=20) for _ in range(6)]
        wait_marks(marks, 2)
        # While two run and four wait or were refused, hello is not held up.
        assert s.get("/hello", timeout=5).status_code == 200
        got = [f.result() for f in futs]
    statuses = sorted(r.status_code for r in got)
    assert statuses == [200, 200, 503, 503, 503, 503]
    for r in got:
        if r.status_code == 503:
            assert r.headers["Retry-After"] == "1"
    with open(marks) as f:
        assert f.read().count("started") == 2
    metrics = s.get("/_portico/metrics", timeout=5).text
    assert 'portico_endpoint_bulkhead_rejected_total{endpoint="slow"} 4' in metrics
    assert 'portico_endpoint_bulkhead_running{endpoint="slow"} 0' in metrics


def test_bulkhead_waiter_gets_the_place(portico, server):
    marks = portico.write("marks", "")
    portico.publish("slow", SLOW.format(marks=marks))
    portico.cli("endpoint", "set", "slow", "--max-concurrency", "1", "--queue-wait", "10s")
    s = server()
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        first = pool.submit(s.get, "/slow?s=0.3", timeout=20)
        wait_marks(marks, 1)
        second = pool.submit(s.get, "/slow?s=0", timeout=20)
        assert first.result().status_code == 200
        assert second.result().status_code == 200
    metrics = s.get("/_portico/metrics", timeout=5).text
    assert 'portico_endpoint_bulkhead_waits_total{endpoint="slow"} 1' in metrics


def test_cors_headers_on_errors_portico_writes(portico, server):
    """A browser reads an error only with the CORS headers: every answer Portico or h2o writes
    for a CORS endpoint carries them for an allowed origin (401, 405, 413, 429, 503, 504)."""
    marks = portico.write("marks", "")
    portico.publish("api", SLOW.format(marks=marks), methods="GET,POST")
    portico.add_script("priv", "def handler(request):\n    return {}\n")
    portico.cli("endpoint", "add", "priv", "--path", "/priv", "--script", "priv", "--auth",
                "apikey", "--cors", "https://app.example")
    portico.cli("endpoint", "set", "api", "--cors", "https://app.example", "--timeout", "300ms",
                "--max-concurrency", "1", "--max-body", "1KiB")
    key = portico.cli("apikey", "create", "k", "--rate", "1/min").stdout.strip().split()[-1]
    s = server("--max-body", "1")
    allowed = {"access-control-allow-origin": "https://app.example",
               "access-control-expose-headers": "X-Request-Id, X-Cache, Retry-After"}

    def check(r, status):
        assert r.status_code == status, r.text
        assert r.headers["Content-Type"] == "application/json"
        assert r.json()["request_id"] == r.headers["X-Request-Id"]
        assert cors_headers(r) == allowed, (status, r.headers)
        assert "Origin" in r.headers["Vary"]

    check(s.get("/priv", headers=SIMPLE, timeout=5), 401)
    ok = dict(SIMPLE, **{"X-Api-Key": key})
    assert s.get("/priv", headers=ok, timeout=5).status_code == 200
    check(s.get("/priv", headers=ok, timeout=5), 429)
    check(s.request("DELETE", "/api", headers=SIMPLE, timeout=5), 405)
    post = dict(SIMPLE, **{"Content-Type": "text/plain"})
    check(s.post("/api", headers=post, data=b"x" * 2000, timeout=5), 413)  # the endpoint's
    check(s.post("/api", headers=post, data=b"x" * (2 << 20), timeout=10), 413)  # h2o's
    check(s.get("/api?s=2", headers=SIMPLE, timeout=10), 504)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        first = pool.submit(s.get, "/api?s=0.25", timeout=10)
        wait_marks(marks, 2)
        check(s.get("/api", headers=SIMPLE, timeout=10), 503)
        assert first.result().status_code == 200
    # Another origin: the same errors, no CORS headers.
    evil = dict(SIMPLE, Origin="https://evil.example")
    r = s.request("DELETE", "/api", headers=evil, timeout=5)
    assert r.status_code == 405 and cors_headers(r) == {}
    r = s.post("/api", headers=dict(evil, **{"Content-Type": "text/plain"}),
               data=b"x" * (2 << 20), timeout=10)
    assert r.status_code == 413 and cors_headers(r) == {}
