"""A handler that kills its worker, called over and over, must not take the server down
(issue 14 §1): hello keeps >= 90% of its throughput with a p99 under 20 ms, and the
crashing endpoint is answered 503 by the breaker once it has killed workers often enough."""
import os
import re
import shutil
import sys

import pytest
import requests

from conftest import assert_json_error

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench"))
import crashloop  # noqa: E402

HELLO = "def handler(request):\n    return {'status': 'ok', 'message': 'hello', 'n': 42}\n"
KILLERS = {
    "os_exit": "import os\n\ndef handler(request):\n    os._exit(1)\n",
    "segfault": "import ctypes\n\ndef handler(request):\n    ctypes.string_at(0)\n",
    "memory": "def handler(request):\n    x = bytearray(2 << 30)\n    return len(x)\n",
}
PHASE = 4  # seconds of wrk per phase
CONNS = 8
# Under the sanitizers a spare's start costs several times more CPU and hello's figures are
# not the product's: the test then asks only that the server stays clearly up (the code
# before the spares kept 0.07% of hello), once; the 90% target is the plain build's.
SANITIZED = bool(os.environ.get("PORTICO_SANITIZED"))
ATTEMPTS = 1 if SANITIZED else 3
RATIO = 0.5 if SANITIZED else 0.9


def metric(s, name):
    text = s.get("/_portico/metrics").text
    return sum(float(v) for v in re.findall(r"^%s(?:\{[^}]*\})? (\S+)$" % name, text, re.M))


def measure(s, killer, graceful):
    """hello before, while a client loops on killer, and after; returns (ok, report)."""
    hello = s.url + "/hello"
    before = crashloop.wrk(hello, PHASE, CONNS)
    crasher = crashloop.Crasher(s.url + killer)
    crasher.start()
    try:
        loaded = crashloop.wrk(hello, PHASE, CONNS)
    finally:
        crasher.stop.set()
        crasher.join(15)
    after = crashloop.wrk(hello, PHASE, CONNS)
    normal = (before["rps"] + after["rps"]) / 2
    report = "\n".join([crashloop.line("before", before), crashloop.line("crashing", loaded),
                        crashloop.line("after", after), "crasher %r" % crasher.statuses])
    # The breaker opened after a few deaths, and only requests inside a dying worker may fail:
    # the crasher's own, and at most the one each wrk connection of that worker had in flight
    # (wrk sends one request at a time per connection). Nothing fails before or after, and
    # the crasher hears nothing but its deaths and the breaker's 503s.
    killed = crasher.statuses[502] + crasher.statuses[500] + crasher.statuses[0]
    assert crasher.statuses[503] > 0, report
    assert set(crasher.statuses) <= {0, 500, 502, 503}, report
    assert killed <= 4, report
    assert before["errors"] == 0 and after["errors"] == 0, report
    assert loaded["errors"] <= killed * CONNS, report
    if graceful:
        # A worker stopping after MemoryError answers every request it holds first (its
        # kept-alive connections are told to close): hello loses none.
        assert loaded["errors"] == 0, report
    # p99 < 20 ms is the target on a quiet machine (make bench). When the machine is so busy
    # that hello alone misses it, the crashes must not make it worse than twice that.
    noise = max(before["p99"], after["p99"])
    ok = loaded["rps"] >= RATIO * normal and loaded["p99"] < max(20, 2 * noise)
    return ok, report


@pytest.mark.load
@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
@pytest.mark.parametrize("kind", sorted(KILLERS))
def test_crashing_endpoint_leaves_hello_alone(portico, server, kind):
    portico.publish("hello", HELLO)
    for n in range(ATTEMPTS):
        portico.publish(f"killer{n}", KILLERS[kind])
    s = server()
    crashloop.wrk(s.url + "/hello", 1, CONNS)  # warm-up
    # Throughput on a machine shared with other jobs is noisy: a measurement that misses the
    # target is taken again (another endpoint, whose breaker is still closed). Before the fix
    # hello fell to ~0.1% of its throughput: no amount of noise passes that.
    reports = []
    for n in range(ATTEMPTS):
        ok, report = measure(s, f"/killer{n}", graceful=kind == "memory")
        reports.append(report)
        if ok:
            break
    print("\n\n".join(reports))
    assert ok, "\n\n".join(reports)
    r = s.get(f"/killer{n}")
    assert_json_error(r, 503)
    assert int(r.headers["Retry-After"]) > 0
    assert metric(s, "portico_breaker_trips_total") >= 1
    assert metric(s, "portico_breaker_rejected_total") >= 1
    assert len(s.log_lines_with("crash breaker", f"killer{n}")) == 1
