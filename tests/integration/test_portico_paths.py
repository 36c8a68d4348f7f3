"""The reserved /_portico/ paths: health, Prometheus metrics, the OpenAPI document."""
import concurrent.futures
import copy
import json
import os
import re
import time

import jsonschema
from prometheus_client.parser import text_string_to_metric_families

from conftest import assert_json_error, wait_marks
from test_settings import SLOW

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
    assert r.status_code == 200 and r.json() == {
        "status": "ok", "store": {"driver": "sqlite", "reachable": True, "last_error_age": None}}
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


def samples(text):
    """Every sample of the exposition as {(name, frozenset(labels)): value}, parsed whole by
    prometheus_client's parser (which refuses malformed text), with the family types."""
    out, types = {}, {}
    for fam in text_string_to_metric_families(text):
        types[fam.name] = fam.type
        for smp in fam.samples:
            key = (smp.name, frozenset(smp.labels.items()))
            assert key not in out, f"duplicate sample {key}"
            out[key] = smp.value
    return out, types


def test_metrics_per_endpoint_auth_and_webhooks_parse_whole(portico, server):
    portico.publish("hello", HELLO)
    portico.publish("boom", "def handler(request):\n    raise ValueError('no')\n")
    portico.add_script("priv", HELLO)
    portico.add_endpoint("priv", "/priv", script="priv", auth="jwt")
    s = server()
    for _ in range(3):
        assert s.get("/hello").status_code == 200
    assert s.get("/boom").status_code == 500
    assert s.get("/priv").status_code == 401
    assert s.get("/priv", headers={"Authorization": "Bearer not.a.jwt"}).status_code == 401
    r = s.get("/_portico/metrics")
    assert r.status_code == 200
    got, types = samples(r.text)

    def one(name, **labels):
        return got[(name, frozenset(labels.items()))]

    assert types["portico_endpoint_requests"] == "counter"
    assert types["portico_endpoint_request_duration_seconds"] == "histogram"
    assert types["portico_endpoint_requests_in_flight"] == "gauge"
    assert one("portico_endpoint_requests_total", endpoint="hello", code="2xx") == 3
    assert one("portico_endpoint_requests_total", endpoint="hello", code="5xx") == 0
    assert one("portico_endpoint_requests_total", endpoint="boom", code="5xx") == 1
    assert one("portico_endpoint_requests_total", endpoint="priv", code="4xx") == 2
    assert one("portico_endpoint_request_duration_seconds_count", endpoint="hello") == 3
    assert one("portico_endpoint_request_duration_seconds_bucket", endpoint="hello",
               le="+Inf") == 3
    assert one("portico_endpoint_requests_in_flight", endpoint="hello") == 0
    assert one("portico_auth_failures_total", reason="missing") == 1
    assert one("portico_auth_failures_total", reason="invalid") == 1
    assert one("portico_auth_failures_total", reason="expired") == 0
    assert one("portico_webhook_events_pending") == 0
    assert one("portico_webhook_event_attempts_total", outcome="processed") == 0
    assert {dict(k[1]).get("cause") for k in got if k[0] == "portico_worker_restarts_total"} == {
        "crash", "memory", "stuck", "os_exit", "exit"}


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
    assert metric(text, "portico_worker_restarts_total", cause="crash") == 1
    # The request the worker died with is no longer counted in flight.
    assert metric(text, "portico_endpoint_requests_in_flight", endpoint="crash") == 0


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


OAS31_SCHEMA = os.path.join(os.path.dirname(__file__), "data", "openapi-3.1-schema.json")

DOCUMENTED = '\ufeff#!/usr/bin/env python3\n# -*- coding: utf-8 -*-\n\n' + '''"""Looks up one customer.

    Returns the customer's "name" and id.
      Indented lines keep their extra indentation.
    """
import json

def handler(request):
    return {'ok': True}
'''


def test_openapi_31_document_validates_and_describes_endpoints(portico, server):
    portico.publish("hello", HELLO)
    portico.add_script("cust", DOCUMENTED)
    portico.add_endpoint("cust", "/customers/{id}/*", script="cust", methods="GET,DELETE",
                         auth="jwt")
    portico.add_script("raw", "r\'\'\'Raw: \\n stays.\'\'\'\ndef handler(request):\n    return 1\n")
    portico.add_endpoint("raw", "/raw", script="raw", auth="apikey")
    s = server()
    doc = s.get("/_portico/openapi.json").json()
    assert doc["openapi"] == "3.1.0"
    with open(OAS31_SCHEMA, encoding="utf-8") as f:
        validator = jsonschema.Draft202012Validator(json.load(f))
    errors = [e.message for e in validator.iter_errors(doc)]
    assert errors == []
    cust = doc["paths"]["/customers/{id}/{wildcard1}"]["get"]
    assert cust["summary"] == "Looks up one customer."
    assert cust["description"] == ('Looks up one customer.\n\nReturns the customer\'s "name" and '
                                   'id.\n  Indented lines keep their extra indentation.')
    assert [(p["name"], p["in"], p["required"]) for p in cust["parameters"]] == [
        ("id", "path", True), ("wildcard1", "path", True)]
    assert cust["security"] == [{"jwt": []}]
    assert doc["paths"]["/raw"]["get"]["description"] == "Raw: \\n stays."
    assert doc["paths"]["/raw"]["get"]["security"] == [{"apikey": []}, {"apikeyBearer": []}]
    hello = doc["paths"]["/hello"]["get"]
    assert hello["security"] == [] and "description" not in hello
    # The validator is a real one: a path parameter that is not required is refused, and so is
    # the 3.0 document this one replaced.
    bad = copy.deepcopy(doc)
    bad["paths"]["/customers/{id}/{wildcard1}"]["get"]["parameters"][0]["required"] = False
    assert not validator.is_valid(bad)
    assert not validator.is_valid(dict(doc, openapi="3.0.3"))


def until(pred, s, timeout=10.0):
    """Reads /_portico/metrics until pred(text) holds (asserts it does within timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        text = s.get("/_portico/metrics").text
        if pred(text):
            return text
        assert time.monotonic() < deadline, text


def test_metrics_every_family_exact_after_a_known_sequence(portico, server):
    """Issue 12 §6: a known sequence of requests, then the whole exposition parsed and every
    per-endpoint family, the bulkhead and cache counters, restarts, auth failures and webhook
    events checked to the exact count."""
    marks = portico.write("marks", "")
    portico.publish("hello", HELLO)
    portico.cli("endpoint", "set", "hello", "--cache", "1m")
    portico.publish("slow", SLOW.format(marks=marks))
    portico.cli("endpoint", "set", "slow", "--max-concurrency", "1", "--queue-wait", "300ms")
    portico.add_script("priv", HELLO)
    portico.add_endpoint("priv", "/priv", script="priv", auth="jwt")
    portico.publish("die", "import os\n\ndef handler(request):\n    os._exit(3)\n")
    portico.add_script("consume", "def handler(event):\n    pass\n")
    portico.add_script("refuse", "def handler(event):\n    raise RuntimeError('no')\n")
    portico.cli("webhook", "source", "add", "good", "--script", "consume")
    portico.cli("webhook", "source", "add", "bad", "--script", "refuse")
    url = portico.cli("webhook", "url", "--base", "http://x").stdout.strip()
    token = url.rsplit("/", 1)[1]
    s = server("--webhook-attempts", "2", "--webhook-backoff", "0.05")

    # A worker replaced because its handler called os._exit(): the 502 and the restart.
    assert s.get("/die").status_code == 502
    assert s.wait_log(r"exited because a handler called os\._exit\(\)", timeout=10)
    until(lambda t: metric(t, "portico_worker_restarts_total") == 1, s)
    # Three cache misses and hits: the first GET of each query misses, the others hit.
    assert [s.get("/hello").headers["X-Cache"] for _ in range(3)] == ["MISS", "HIT", "HIT"]
    assert s.get("/hello?a=1").headers["X-Cache"] == "MISS"
    # Auth failures: no credentials, an unknown scheme, a token that is not one.
    assert s.get("/priv").status_code == 401
    assert s.get("/priv", headers={"Authorization": "Basic eDp5"}).status_code == 401
    assert s.get("/priv", headers={"Authorization": "JWT x"}).status_code == 401
    # The bulkhead: one request holds the only place; a second waits 300 ms and gets 503.
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        first = pool.submit(s.get, "/slow?s=1.5", timeout=20)
        wait_marks(marks, 1)
        second = s.get("/slow", timeout=20)
        assert second.status_code == 503 and second.headers["Retry-After"] == "1"
        assert first.result().status_code == 200
    # Webhooks: one event processed at once, one failing both of its attempts.
    assert s.post(f"/webhook/{token}/good", json={"n": 1}).status_code == 200
    assert s.post(f"/webhook/{token}/bad", json={"n": 2}).status_code == 200
    until(lambda t: metric(t, "portico_webhook_event_attempts_total", outcome="failed") == 1
          and re.search(r"^portico_webhook_events_pending 0$", t, re.M), s)

    got, types = samples(s.get("/_portico/metrics").text)

    def one(name, **labels):
        return got[(name, frozenset(labels.items()))]

    def ep_requests(ep):
        return {c: one("portico_endpoint_requests_total", endpoint=ep, code=c)
                for c in ("1xx", "2xx", "3xx", "4xx", "5xx")}

    zero = {"1xx": 0, "2xx": 0, "3xx": 0, "4xx": 0, "5xx": 0}
    assert ep_requests("hello") == dict(zero, **{"2xx": 4})
    assert ep_requests("priv") == dict(zero, **{"4xx": 3})
    assert ep_requests("slow") == dict(zero, **{"2xx": 1, "5xx": 1})
    # The 502 of the worker that died is answered by its crash rescue through the loop, which
    # counts it like any answer (docs/HANDLERS.md); the restart below shows the death.
    assert ep_requests("die") == dict(zero, **{"5xx": 1})
    for ep, n in (("hello", 4), ("priv", 3), ("slow", 2), ("die", 1)):
        assert one("portico_endpoint_request_duration_seconds_count", endpoint=ep) == n
        assert one("portico_endpoint_request_duration_seconds_bucket", endpoint=ep,
                   le="+Inf") == n
        assert one("portico_endpoint_requests_in_flight", endpoint=ep) == 0
    # The 1.5 s request is the only slow one's sample above 1 s.
    assert one("portico_endpoint_request_duration_seconds_bucket", endpoint="slow", le="1") == 1
    assert one("portico_endpoint_bulkhead_waits_total", endpoint="slow") == 1
    assert one("portico_endpoint_bulkhead_rejected_total", endpoint="slow") == 1
    assert one("portico_endpoint_bulkhead_running", endpoint="slow") == 0
    assert one("portico_endpoint_cache_hits_total", endpoint="hello") == 2
    assert one("portico_endpoint_cache_misses_total", endpoint="hello") == 2
    for ep in ("priv", "die"):  # every endpoint has every family
        assert one("portico_endpoint_cache_hits_total", endpoint=ep) == 0
        assert one("portico_endpoint_bulkhead_waits_total", endpoint=ep) == 0
        assert one("portico_endpoint_bulkhead_rejected_total", endpoint=ep) == 0
    assert one("portico_worker_restarts_total", worker="1", cause="os_exit") + \
        one("portico_worker_restarts_total", worker="2", cause="os_exit") == 1
    assert sum(v for (n, _), v in got.items() if n == "portico_worker_restarts_total") == 1
    assert one("portico_auth_failures_total", reason="missing") == 1
    assert one("portico_auth_failures_total", reason="malformed") == 1
    assert one("portico_auth_failures_total", reason="invalid") == 1
    assert sum(v for (n, _), v in got.items() if n == "portico_auth_failures_total") == 3
    assert sum(v for (n, _), v in got.items() if n == "portico_webhook_events_total") == 2
    assert one("portico_webhook_event_attempts_total", outcome="processed") == 1
    assert one("portico_webhook_event_attempts_total", outcome="retried") == 1
    assert one("portico_webhook_event_attempts_total", outcome="failed") == 1
    assert one("portico_webhook_events_pending") == 0
    for fam in ("portico_endpoint_bulkhead_waits", "portico_endpoint_bulkhead_rejected",
                "portico_endpoint_cache_hits", "portico_endpoint_cache_misses",
                "portico_worker_restarts", "portico_auth_failures", "portico_webhook_events"):
        assert types[fam] == "counter", fam
    assert types["portico_endpoint_bulkhead_running"] == "gauge"
    assert types["portico_webhook_events_pending"] == "gauge"
