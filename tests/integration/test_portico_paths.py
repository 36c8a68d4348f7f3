"""The reserved /_portico/ paths: health, Prometheus metrics, the OpenAPI document."""
import re

from conftest import assert_json_error

HELLO = "def handler(request):\n    return {'ok': True}\n"


def metric(text, name, **labels):
    """Sums the samples of `name` whose labels include `labels`."""
    total = 0.0
    for line in text.splitlines():
        m = re.match(r"^(\w+)\{([^}]*)\} (\S+)$", line)
        if not m or m.group(1) != name:
            continue
        have = dict(kv.split("=", 1) for kv in m.group(2).split(","))
        if all(have.get(k) == f'"{v}"' for k, v in labels.items()):
            total += float(m.group(3))
    return total


def test_health(portico, server):
    s = server()
    r = s.get("/_portico/health")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    assert r.headers["X-Request-Id"]


def test_unknown_reserved_path_and_method(portico, server):
    s = server()
    assert_json_error(s.get("/_portico/nope"), 404)
    r = s.post("/_portico/health")
    assert_json_error(r, 405)
    assert r.headers["Allow"] == "GET, HEAD"


def test_metrics_count_requests_across_workers(portico, server):
    portico.publish("hello", HELLO)
    s = server()
    for _ in range(20):
        assert s.get("/hello").status_code == 200
    for _ in range(3):
        assert s.get("/missing").status_code == 404
    r = s.get("/_portico/metrics")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain")
    text = r.text
    # Every worker reports; the sums cover requests served by either worker.
    assert metric(text, "portico_requests_total", code="2xx") >= 20
    assert metric(text, "portico_requests_total", code="4xx") == 3
    assert metric(text, "portico_request_duration_seconds_count") >= 23
    assert "# TYPE portico_request_duration_seconds histogram" in text
    assert metric(text, "portico_worker_restarts_total") == 0


def test_metrics_count_worker_restarts(portico, server):
    portico.publish("crash", "import ctypes\n\ndef handler(request):\n    ctypes.string_at(0)\n")
    portico.publish("hello", HELLO)
    s = server()
    assert s.get("/crash").status_code == 502
    assert s.wait_log(r"killed by signal 11")
    for _ in range(50):
        text = s.get("/_portico/metrics").text
        if metric(text, "portico_worker_restarts_total") >= 1:
            break
    assert metric(text, "portico_worker_restarts_total") == 1


def test_openapi_document(portico, server):
    portico.publish("hello", HELLO)
    portico.add_script("cust", HELLO)
    portico.add_endpoint("cust", "/customers/{id}/*", script="cust", methods="GET,DELETE",
                         auth="jwt")
    s = server()
    r = s.get("/_portico/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    assert doc["openapi"].startswith("3.")
    assert doc["servers"][0]["url"] == s.url
    hello = doc["paths"]["/hello"]["get"]
    assert hello["operationId"] == "hello" and hello["security"] == []
    cust = doc["paths"]["/customers/{id}/{wildcard1}"]
    assert set(cust) == {"get", "delete"}
    assert {p["name"] for p in cust["get"]["parameters"]} == {"id", "wildcard1"}
    assert cust["get"]["security"] == [{"jwt": []}]
    ids = [op["operationId"] for path in doc["paths"].values() for op in path.values()]
    assert len(ids) == len(set(ids)), "operation ids must be unique"
    assert "jwt" in doc["components"]["securitySchemes"]


def test_openapi_follows_endpoint_changes(portico, server):
    s = server()
    assert s.get("/_portico/openapi.json").json()["paths"] == {}
    portico.publish("later", HELLO)
    assert "/later" in s.get("/_portico/openapi.json").json()["paths"]
