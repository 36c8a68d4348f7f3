"""A server that cannot start says so and stops (issue 14 §2); SIGTERM always stops the master,
crash loop or not; a worker stopping after MemoryError answers what it was handling (§1)."""
import concurrent.futures
import os
import shutil
import signal
import subprocess
import threading
import time

import requests

from conftest import BIN, _env, free_port, wait_marks

START_LIMIT = 15  # seconds a failing `serve` may take to give up


def serve(portico, *args):
    port = free_port()
    # No admin listener: its default port may be taken on a shared machine, and then `serve`
    # fails for that reason instead of the one under test.
    cmd = [BIN, "--data", portico.data, "serve", "--listen", f"127.0.0.1:{port}",
           "--admin-listen", "off", "--workers", "2", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=_env(),
                          timeout=START_LIMIT, stdin=subprocess.DEVNULL)


def assert_one_line_failure(cp, *words):
    out = cp.stdout + cp.stderr
    assert cp.returncode != 0, out
    assert "listening" not in out, out
    lines = [l for l in out.splitlines() if l.strip()]
    assert len(lines) == 1, f"expected one line, got:\n{out}"
    for w in words:
        assert w in lines[0], f"{w!r} not in {lines[0]!r}"


def test_corrupt_store_stops_with_one_line(portico):
    db = os.path.join(portico.data, "portico.db")
    for extra in ("-wal", "-shm"):
        if os.path.exists(db + extra):
            os.remove(db + extra)
    with open(db, "wb") as f:
        f.write(os.urandom(8192))
    cp = serve(portico)
    # `serve` checks the store before it starts anything (test_store_files.py has the rest).
    assert_one_line_failure(cp, db, "not a database")


def test_unusable_change_counter_names_the_file_and_cause(portico):
    changes = os.path.join(portico.data, "run", "changes")
    os.remove(changes)
    os.mkdir(changes)
    cp = serve(portico)
    assert_one_line_failure(cp, "cannot start", changes, "Is a directory")


def test_sigterm_stops_the_master_during_a_crash_loop(portico, server):
    portico.publish("hello", "def handler(request):\n    return 'hi'\n")
    s = server("--timeout", "2")
    assert s.wait_log(r"listening on", timeout=10)
    # Every worker started from now on fails at start: the server goes into a crash loop.
    changes = os.path.join(portico.data, "run", "changes")
    os.remove(changes)
    os.mkdir(changes)
    for pid in s.children():
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert s.wait_log(r"could not start: cannot open the change counter", timeout=10), s.log
    t0 = time.monotonic()
    assert s.terminate(timeout=10) == 0, s.log[-3000:]
    assert time.monotonic() - t0 < 2 + 5, "master took longer than the drain timeout"
    shutil.rmtree(changes)


def test_memory_error_lets_the_other_requests_finish(portico, server, tmp_path):
    marks = tmp_path / "marks"
    portico.publish("slow", f"""
import time

def handler(request):
    with open({str(marks)!r}, "a") as f:
        f.write("started\\n")
    time.sleep(1)
    return {{"ok": True}}
""")
    portico.publish("fast", "def handler(request):\n    return {'ok': True}\n")
    portico.publish("hog", "def handler(request):\n    x = bytearray(2 << 30)\n    return len(x)\n")
    s = server("--workers", "1", "--threads", "4")
    stop = threading.Event()
    failures = []
    answered = [0]

    def hammer():
        # Keep-alive clients: their connections stay on the worker that hits MemoryError.
        with requests.Session() as sess:
            while not stop.is_set():
                try:
                    r = sess.get(s.url + "/fast", timeout=20)
                    if r.status_code != 200:
                        failures.append(r.status_code)
                    answered[0] += 1
                except requests.RequestException as e:
                    failures.append(repr(e))

    n = 8
    with concurrent.futures.ThreadPoolExecutor(n + 4) as ex:
        hammers = [ex.submit(hammer) for _ in range(4)]
        slow = [ex.submit(requests.get, s.url + "/slow", timeout=20) for _ in range(n)]
        wait_marks(marks, n)
        r = s.get("/hog", timeout=20)
        assert r.status_code == 500, r.text
        statuses = [f.result().status_code for f in slow]
        assert s.wait_log(r"ran out of memory", timeout=5)
        assert s.wait_log(r"exceeded its memory limit", timeout=15), s.log[-3000:]
        stop.set()
        for h in hammers:
            h.result()
    assert statuses == [200] * n, statuses
    assert failures == [], failures[:10]
    assert answered[0] > 0
    assert not s.log_lines_with("requests unanswered", timeout=0.5), s.log[-3000:]
    assert s.get("/fast").status_code == 200
