"""Blocking handlers at scale (issue 12, section 4): handlers that wait run on the waiting lane's
runner threads, far more of them than the pool's threads, and requests to other endpoints never
wait behind them. Behaviour only: the figures (req/s, p99, memory) are `make bench`'s (section
blocking). Every handler here waits for a file the test creates once it has seen what it
asserts, so the ordering is proved, not timed."""

import os
import threading
import time

import requests

from conftest import wait_marks

FAST = "def handler(request):\n    return {'ok': True}\n"

# Appends 'started' to the file named by `mark`, then waits (sleeping, the GIL released) until
# the file named by `go` exists; 20 s at most, so that a failing test cannot hang the server.
WAITER = """import os, time

def handler(request):
    with open(request['query']['mark'], 'a') as f:
        f.write('started\\n')
    deadline = time.monotonic() + 20
    while not os.path.exists(request['query']['go']) and time.monotonic() < deadline:
        time.sleep(0.02)
    return {'waited': True}
"""

# The same, burning the CPU instead of sleeping: the GIL is only given up when Python's switch
# interval forces it (and at the rare existence check).
BURNER = """import os, time

def handler(request):
    with open(request['query']['mark'], 'a') as f:
        f.write('started\\n')
    deadline = time.monotonic() + 20
    n = 0
    while time.monotonic() < deadline:
        n += 1
        if n % 200000 == 0 and os.path.exists(request['query']['go']):
            break
    return {'burned': n}
"""


def start_waiters(url, n, mark, go):
    """Starts n client threads calling url; returns (threads, statuses list)."""
    statuses = []

    def call():
        try:
            r = requests.get(url, params={"mark": mark, "go": go}, timeout=60)
            statuses.append(r.status_code)
        except requests.RequestException as e:
            statuses.append(repr(e))

    threads = [threading.Thread(target=call) for _ in range(n)]
    for t in threads:
        t.start()
    return threads, statuses


def test_a_hundred_waiting_handlers_run_at_once_and_hello_does_not_wait(portico, server):
    # 100 handlers waiting together: more than the pool's threads could ever hold (2 workers x
    # 4 x --threads 4 = 32), so only the waiting lane lets all of them start before any ends.
    portico.publish("wait", WAITER)
    portico.publish("hello", FAST)
    s = server()
    mark, go = os.path.join(portico.scratch, "wait.marks"), os.path.join(portico.scratch, "go")
    threads, statuses = start_waiters(s.url + "/wait", 100, mark, go)
    try:
        wait_marks(mark, 100, timeout=30)
        # Every waiter is in its handler: hello answers while they still wait.
        for _ in range(5):
            r = requests.get(s.url + "/hello", timeout=10)
            assert r.status_code == 200 and r.json() == {"ok": True}
        assert statuses == [], "a waiter finished before it was let go"
    finally:
        open(go, "w").close()
        for t in threads:
            t.join(30)
    assert statuses == [200] * 100, statuses


def test_idle_runners_exit_and_new_ones_start(portico, server, monkeypatch):
    # Runners idle for PORTICO_RUNNER_IDLE seconds exit (all but 4); a later burst starts new
    # ones on the slots they gave back, and they open the warehouse afresh.
    monkeypatch.setenv("PORTICO_RUNNER_IDLE", "1")
    portico.publish("wait", WAITER.replace("return {'waited': True}",
                                           "return pq.dbconnect(pq.DW_NAME).fetch(pq.DW_NAME, "
                                           "query='SELECT 1 AS one')"))
    portico.publish("pid", "import os\n\ndef handler(request):\n    return os.getpid()\n")
    s = server(workers=1)
    worker = requests.get(s.url + "/pid", timeout=10).json()

    def nthreads():
        return len(os.listdir(f"/proc/{worker}/task"))

    idle = nthreads()
    for round_ in range(2):
        mark = os.path.join(portico.scratch, f"wait{round_}.marks")
        go = os.path.join(portico.scratch, f"go{round_}")
        threads, statuses = start_waiters(s.url + "/wait", 30, mark, go)
        try:
            wait_marks(mark, 30, timeout=30)
            assert nthreads() >= idle + 20
        finally:
            open(go, "w").close()
            for t in threads:
                t.join(30)
        assert statuses == [200] * 30, statuses
        deadline = time.monotonic() + 15
        while nthreads() > idle + 4 + 4:    # the runners kept, and the pool's growth
            assert time.monotonic() < deadline, f"{nthreads()} threads left (idle: {idle})"
            time.sleep(0.05)
    r = requests.get(s.url + "/wait", params={"mark": mark, "go": go}, timeout=10)
    assert r.status_code == 200 and r.json() == [{"one": 1}]


def test_a_cpu_burning_handler_does_not_hold_up_hello(portico, server):
    # One worker: the burner and hello share its interpreter. The burner gives the GIL up every
    # switch interval (5 ms), so hello answers long before it ends; 1 s is a generous bound.
    portico.publish("burn", BURNER)
    portico.publish("hello", FAST)
    s = server(workers=1)
    mark, go = os.path.join(portico.scratch, "burn.marks"), os.path.join(portico.scratch, "go")
    threads, statuses = start_waiters(s.url + "/burn", 1, mark, go)
    try:
        wait_marks(mark, 1)
        worst = 0.0
        with requests.Session() as sess:
            for _ in range(20):
                t0 = time.monotonic()
                r = sess.get(s.url + "/hello", timeout=10)
                worst = max(worst, time.monotonic() - t0)
                assert r.status_code == 200
        assert statuses == [], "the burner finished before it was let go"
        assert worst < 1.0, f"hello took {worst:.3f} s while a handler burned the CPU"
    finally:
        open(go, "w").close()
        for t in threads:
            t.join(30)
    assert statuses == [200], statuses
