"""The stored request log (issue 9, section 5): what `portico serve` writes to
DATA/logs/requests.db and `portico logs` reads back, over the real CLI and HTTP."""
import json
import os
import select
import sqlite3
import subprocess
import time

import pytest
import requests

from conftest import (BIN, AdminClient, AdminServer, assert_cli_error, rid_of,
                      start_remote_portico)

WAIT = 10  # seconds a row may take to reach the file (a writer commits every 200 ms)

PRINTER = """
def handler(request):
    print("hello", request['query'].get('who', 'nobody'))
    print("no newline at the end", end="")
    return {"ok": True}
"""

FAILING = """
def handler(request):
    print("about to fail")
    raise ValueError("the answer was not 42")
"""

CHATTY = """
def handler(request):
    for i in range(1000):
        print("%04d " % i + "x" * 95)
    return "done"
"""

ECHO = """
def handler(request):
    return {"n": len(request['data'])}
"""


def logs(portico, *args):
    """`portico logs ARGS --json`: the rows, newest first."""
    cp = portico.cli("logs", "--json", *args)
    return json.loads(cp.stdout)


def wait_rows(portico, *args, n=1):
    """Waits until `portico logs ARGS` gives at least n rows; returns them."""
    deadline = time.monotonic() + WAIT
    while True:
        rows = logs(portico, *args)
        if len(rows) >= n or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


def by_request_id(portico, rid):
    rows = wait_rows(portico, "--request-id", rid)
    assert len(rows) == 1, f"request {rid} not in the log: {rows}"
    return rows[0]


@pytest.fixture
def srv(portico, server):
    portico.publish("printer", PRINTER)
    portico.publish("failing", FAILING)
    portico.publish("chatty", CHATTY)
    portico.publish("echo", ECHO, methods="POST")
    return server()


def test_printed_lines_are_found_by_request_id(portico, srv):
    r = srv.get("/printer?who=alice")
    assert r.status_code == 200
    row = by_request_id(portico, rid_of(r))
    assert row["endpoint"] == "printer"
    assert row["method"] == "GET"
    assert row["path"] == "/printer"
    assert row["status"] == 200
    assert row["printed"] == ["hello alice", "no newline at the end"]
    assert row["traceback"] is None
    assert row["caller"] is None
    assert row["bytes_out"] == len(r.content)
    assert row["duration_ms"] >= 0
    assert row["worker"] in (1, 2)
    assert row["time"].endswith("Z")

    # The text form shows the request line, then its printed lines.
    out = portico.cli("logs", "--request-id", rid_of(r)).stdout
    lines = out.splitlines()
    assert rid_of(r) in lines[0] and "status=200" in lines[0] and "endpoint=printer" in lines[0]
    assert lines[1:] == ["  | hello alice", "  | no newline at the end"]


def test_traceback_of_a_failing_handler(portico, srv):
    r = srv.get("/failing")
    assert r.status_code == 500
    assert "the answer was not 42" not in r.text  # never sent to the client
    row = by_request_id(portico, rid_of(r))
    assert row["status"] == 500
    assert row["printed"] == ["about to fail"]
    assert row["traceback"].startswith("Traceback (most recent call last):")
    assert row["traceback"].endswith("ValueError: the answer was not 42")


def test_output_past_the_bound_is_cut_with_a_marker(portico, srv):
    r = srv.get("/chatty")
    assert r.status_code == 200
    row = by_request_id(portico, rid_of(r))
    printed = row["printed"]
    # 1000 lines of 100 bytes do not fit in 56 KiB: the first ones are kept whole, in order,
    # and the last line says how much was not kept.
    kept = printed[:-1]
    assert 500 < len(kept) < 1000
    assert kept == ["%04d " % i + "x" * 95 for i in range(len(kept))]
    cut = (1000 - len(kept)) * 101
    assert printed[-1] == ("[... %d bytes of print() output not kept: at most 57344 per request]"
                           % cut)


def test_bytes_in_and_unmatched_requests(portico, srv):
    r = srv.post("/echo", data=b"x" * 1234)
    assert r.status_code == 200
    row = by_request_id(portico, rid_of(r))
    assert row["bytes_in"] == 1234
    assert row["method"] == "POST"

    r = srv.get("/no/such/path")
    assert r.status_code == 404
    row = by_request_id(portico, rid_of(r))
    assert row["endpoint"] is None
    assert row["status"] == 404
    assert row["path"] == "/no/such/path"


def test_portico_paths_are_not_logged(portico, srv):
    health = srv.get("/_portico/health")
    assert health.status_code == 200
    metrics = srv.get("/_portico/metrics")
    assert metrics.status_code == 200
    marker = srv.get("/printer")  # logged after the two above, by the same client
    by_request_id(portico, rid_of(marker))
    for r in (health, metrics):
        assert logs(portico, "--request-id", rid_of(r)) == []
    assert all(not row["path"].startswith("/_portico/") for row in logs(portico, "--limit", "1000"))


def test_filters(portico, srv):
    ok = [rid_of(srv.get("/printer")) for _ in range(3)]
    bad = [rid_of(srv.get("/failing")) for _ in range(2)]
    missing = rid_of(srv.get("/nowhere"))
    wait_rows(portico, n=6)
    by_request_id(portico, missing)

    assert {row["request_id"] for row in logs(portico, "--endpoint", "printer")} == set(ok)
    assert {row["request_id"] for row in logs(portico, "--status", "5xx")} == set(bad)
    assert {row["request_id"] for row in logs(portico, "--status", "500")} == set(bad)
    assert [row["request_id"] for row in logs(portico, "--status", "4xx")] == [missing]
    assert logs(portico, "--status", "2xx", "--endpoint", "failing") == []
    assert len(logs(portico, "--since", "1h")) == 6
    # Newest first: ids grow with the order the workers' batches reach the file.
    rows = logs(portico)
    assert [row["id"] for row in rows] == sorted((row["id"] for row in rows), reverse=True)
    assert logs(portico, "--limit", "2") == rows[:2]
    assert logs(portico, "--limit", "1") == rows[:1]


def test_one_worker_logs_in_arrival_order(portico, server):
    portico.publish("printer", PRINTER)
    s = server(workers=1)
    rids = [rid_of(s.get("/printer")) for _ in range(4)]
    wait_rows(portico, n=4)
    assert [row["request_id"] for row in logs(portico)] == rids[::-1]


def test_a_promoted_spare_logs_under_its_worker_number(portico, server):
    portico.publish("printer", PRINTER)
    portico.publish("die", "import os\n\ndef handler(request):\n    os._exit(1)\n")
    s = server(workers=1)
    assert s.get("/die").status_code == 502
    # The spare that took over serves as worker 1: its rows say so, not 0 (a spare's number).
    s.wait_log(r"a spare worker \(pid \d+\) took over as worker 1")
    rids = [rid_of(s.get("/printer")) for _ in range(3)]
    for rid in rids:
        assert by_request_id(portico, rid)["worker"] == 1


@pytest.mark.parametrize("args, words", [
    (["--status", "6xx"], ["--status", "6xx"]),
    (["--status", "abc"], ["--status"]),
    (["--since", "yesterday"], ["--since", "yesterday"]),
    (["--limit", "0"], ["--limit"]),
    (["--limit", "many"], ["--limit"]),
])
def test_bad_filters_are_refused(cli, args, words):
    assert_cli_error(cli("logs", *args, check=False), *words)


def test_an_empty_log(cli):
    assert cli("logs").stdout == ""
    assert json.loads(cli("logs", "--json").stdout) == []


def test_the_caller_is_named_never_its_secret(portico, server):
    portico.publish("printer", PRINTER)
    portico.cli("endpoint", "rm", "printer")
    portico.add_endpoint("printer", "/printer", auth="apikey")
    key = portico.cli("apikey", "create", "acme", "--endpoint", "printer").stdout.strip().split()[-1]
    s = server()
    r = s.get("/printer", headers={"X-Api-Key": key})
    assert r.status_code == 200, r.text
    row = by_request_id(portico, rid_of(r))
    assert row["caller"]["type"] == "apikey"
    assert row["caller"]["name"] == "acme"
    denied = s.get("/printer", headers={"X-Api-Key": key[:-2] + "zz"})
    assert denied.status_code == 401
    assert by_request_id(portico, rid_of(denied))["caller"] is None
    with open(os.path.join(portico.data, "logs", "requests.db"), "rb") as f:
        assert key.encode() not in f.read()


def test_pruned_to_max_rows(portico, server):
    portico.publish("printer", PRINTER)
    s = server("--log-max-rows", "5", workers=1)
    rids = [rid_of(s.get("/printer")) for _ in range(12)]
    by_request_id(portico, rids[-1])
    # The writer prunes at most a second after it wrote: wait for the count to come down.
    deadline = time.monotonic() + WAIT
    while len(logs(portico, "--limit", "100")) > 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    rows = logs(portico, "--limit", "100")
    assert [row["request_id"] for row in rows] == rids[-1:-6:-1]


def test_pruned_to_max_size(portico, server):
    # Each request prints 40 KB: 1 MiB holds about 25 of them. After 120 the file's data is
    # back within the bound, the file itself stays near it (free pages past a quarter of the
    # bound go back to the file system), and the newest requests are the ones kept.
    portico.publish("big", """
def handler(request):
    print("y" * 40000)
    return "ok"
""")
    s = server("--log-max-size", "1MiB", workers=1)
    rids = [rid_of(s.get("/big")) for _ in range(120)]
    by_request_id(portico, rids[-1])
    db = os.path.join(portico.data, "logs", "requests.db")

    def used():     # the bytes of the pages that hold data
        with sqlite3.connect(db) as c:
            return (c.execute("PRAGMA page_count").fetchone()[0] -
                    c.execute("PRAGMA freelist_count").fetchone()[0]) * \
                c.execute("PRAGMA page_size").fetchone()[0]

    # The file's size follows its data at the WAL's checkpoints, after the prune: wait for both.
    def bounded():
        return used() <= (1 << 20) and os.path.getsize(db) <= 1.5 * (1 << 20)

    deadline = time.monotonic() + WAIT
    while not bounded() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert used() <= (1 << 20)
    assert os.path.getsize(db) <= 1.5 * (1 << 20), os.path.getsize(db)
    rows = logs(portico, "--limit", "1000")
    kept = [row["request_id"] for row in rows]
    assert 10 <= len(kept) <= 30, len(kept)
    assert kept == rids[-1:-len(kept) - 1:-1]     # the newest, newest first


def test_bad_serve_settings_are_refused(cli):
    assert_cli_error(cli("serve", "--log-max-rows", "0", check=False), "--log-max-rows")
    assert_cli_error(cli("serve", "--log-max-size", "512K", check=False), "--log-max-size")
    assert_cli_error(cli("serve", "--log-max-size", "lots", check=False), "--log-max-size")
    assert_cli_error(cli("serve", "--log-max-age", "soon", check=False), "--log-max-age")


def test_a_full_buffer_drops_and_counts(portico, server, monkeypatch):
    # A buffer of 4 KiB (the least) cannot hold a request that printed 8 KiB: every such
    # request is dropped and counted, never waited for; small ones still get in.
    portico.publish("big", """
        def handler(request):
            print("y" * 8000)
            return "ok"
        """)
    portico.publish("printer", PRINTER)
    monkeypatch.setenv("PORTICO_REQLOG_BUFFER", "4096")
    s = server(workers=1)
    big = [s.get("/big") for _ in range(5)]
    assert all(r.status_code == 200 for r in big)
    small = s.get("/printer")
    by_request_id(portico, rid_of(small))
    for r in big:
        assert logs(portico, "--request-id", rid_of(r)) == []
    metrics = s.get("/_portico/metrics").text
    assert 'portico_request_log_dropped_total{worker="1"} 5' in metrics
    # One warning line, then at most one every 10 s.
    assert s.wait_log(r"WARN \[worker 1\] request log: [1-5] requests? dropped since the last "
                      r"report \(its buffer of 4096 bytes was full\)", timeout=WAIT)


def test_follow_prints_requests_made_after_it_started(portico, srv):
    before = rid_of(srv.get("/printer?who=before"))
    by_request_id(portico, before)
    proc = subprocess.Popen([BIN, "--data", portico.data, "logs", "--follow", "--json",
                             "--limit", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        first = json.loads(read_line(proc))
        assert first["request_id"] == before  # the newest row, then new ones as they come
        after = rid_of(srv.get("/printer?who=after"))
        row = json.loads(read_line(proc))
        assert row["request_id"] == after
        assert row["printed"][0] == "hello after"
    finally:
        proc.kill()
        proc.wait()


def test_logs_through_the_server_and_follow_over_sse(portico):
    """`portico --server URL logs`: the same output as on the data dir, and --follow over the
    admin API's live tail (Server-Sent Events)."""
    portico.publish("printer", PRINTER)
    portico.publish("failing", FAILING)
    remote = start_remote_portico(portico)
    try:
        srv = remote.server
        before = rid_of(srv.get("/printer?who=before"))
        failed = rid_of(srv.get("/failing"))
        by_request_id(portico, failed)
        for args in (("--request-id", before), ("--request-id", failed), ("--status", "5xx"),
                     ("--json", "--endpoint", "printer"), ("--limit", "1"),
                     ("--status", "6xx"), ("--since", "soon")):
            local = remote.cli_local("logs", *args, check=False)
            far = remote.cli_remote("logs", *args, check=False)
            assert (far.returncode, far.stdout, far.stderr) == \
                (local.returncode, local.stdout, local.stderr), args
        assert "  ! " in remote.cli_remote("logs", "--request-id", failed).stdout
        proc = subprocess.Popen([BIN, "--server", srv.admin_url, "logs", "--follow", "--json",
                                 "--endpoint", "printer", "--limit", "1"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=dict(os.environ, PORTICO_TOKEN=remote.token),
                                cwd=remote.nowhere)
        try:
            assert json.loads(read_line(proc))["request_id"] == before
            srv.get("/failing")  # filtered out
            after = rid_of(srv.get("/printer?who=after"))
            row = json.loads(read_line(proc))
            assert row["request_id"] == after and row["printed"][0] == "hello after"
        finally:
            proc.kill()
            proc.wait()
    finally:
        remote.close()


def read_line(proc, timeout=WAIT):
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, f"no line from `portico logs --follow` within {timeout}s"
    line = proc.stdout.readline()
    assert line, f"`portico logs --follow` ended: {proc.stderr.read()}"
    return line


def test_a_timed_out_request_is_logged_as_504(portico, server):
    portico.publish("slow", """
        import time
        def handler(request):
            print("going to sleep")
            while True:
                time.sleep(0.01)
        """)
    s = server("--timeout", "0.5")
    r = s.get("/slow")
    assert r.status_code == 504
    row = by_request_id(portico, rid_of(r))
    assert row["status"] == 504
    assert row["traceback"] == "TimeoutError: the handler ran past the timeout (0.5s)"


# ---- Over the admin API ---------------------------------------------------------------------

@pytest.fixture
def admin(portico):
    """A server of this test's own (the tests publish and count freely) with the admin users."""
    s = AdminServer(portico, "--timeout", "1")
    yield s
    s.close()


def client(admin, role):
    """An AdminClient with the token of the fixture's user of that role."""
    return AdminClient(admin.admin_url, token=admin.tokens[role])


def viewer(admin):
    return client(admin, "viewer")


def wait_api(c, path, n=1, **params):
    deadline = time.monotonic() + WAIT
    while True:
        r = c.get(path, params=params)
        assert r.status_code == 200, r.text
        rows = r.json()["requests"]
        if len(rows) >= n or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


def test_admin_logs_list_and_one_request(admin):
    admin.portico.publish("printer", PRINTER)
    admin.portico.publish("failing", FAILING)
    c = viewer(admin)
    ok = admin.get("/printer?who=api")
    bad = admin.get("/failing")
    rows = wait_api(c, "/logs", n=2)
    assert {r["request_id"] for r in rows} >= {rid_of(ok), rid_of(bad)}
    assert "printed" not in rows[0]  # the list is light; one request has the output
    assert [r["request_id"] for r in wait_api(c, "/logs", status="5xx")] == [rid_of(bad)]
    assert [r["request_id"] for r in wait_api(c, "/logs", endpoint="printer")] == [rid_of(ok)]

    one = c.get("/logs/" + rid_of(ok))
    assert one.status_code == 200
    assert one.json()["printed"] == ["hello api", "no newline at the end"]
    tb = c.get("/logs/" + rid_of(bad)).json()["traceback"]
    assert tb.endswith("ValueError: the answer was not 42")
    missing = c.get("/logs/no-such-request")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_admin_logs_paging(admin):
    admin.portico.publish("printer", PRINTER)
    c = viewer(admin)
    for _ in range(5):
        assert admin.get("/printer").status_code == 200
    everything = wait_api(c, "/logs", n=5)
    page1 = c.get("/logs", params={"limit": "2"}).json()
    assert page1["requests"] == everything[:2]
    page2 = c.get("/logs", params={"limit": "2", "before_id": str(page1["next_before_id"])})
    assert page2.json()["requests"] == everything[2:4]


@pytest.mark.parametrize("param, value", [
    ("status", "9xx"), ("since", "soon"), ("limit", "0"), ("limit", "x"), ("before_id", "-1"),
])
def test_admin_logs_bad_filters(admin, param, value):
    r = viewer(admin).get("/logs", params={param: value})
    assert r.status_code == 400
    assert r.json()["error"] == {"code": "bad_request", "field": param,
                                 "message": r.json()["error"]["message"]}


def test_admin_log_stream_gets_a_request_made_after_it_connected(admin):
    admin.portico.publish("printer", PRINTER)
    c = viewer(admin)
    before = admin.get("/printer?who=before")
    wait_api(c, "/logs", request_id=rid_of(before))
    with c.get("/logs/stream", stream=True, timeout=WAIT) as r:
        assert r.status_code == 200
        assert r.headers["Content-Type"].startswith("text/event-stream")
        lines = r.iter_lines(decode_unicode=True)
        after = admin.get("/printer?who=after")
        event = {}
        for line in lines:
            if line.startswith("id: "):
                event["id"] = int(line[4:])
            elif line.startswith("data: "):
                event["data"] = json.loads(line[6:])
                break
        # Only what came after the stream started: the first event is the new request.
        assert event["data"]["request_id"] == rid_of(after)
        assert event["id"] == event["data"]["id"]
    # Last-Event-ID resumes after that event: nothing is sent twice.
    third = admin.get("/printer?who=third")
    with c.get("/logs/stream", stream=True, timeout=WAIT,
               headers={"Last-Event-ID": str(event["id"])}) as r:
        for line in r.iter_lines(decode_unicode=True):
            if line.startswith("data: "):
                assert json.loads(line[6:])["request_id"] == rid_of(third)
                break


def test_admin_calls_are_not_in_the_request_log(admin):
    c = viewer(admin)
    assert c.get("/logs").status_code == 200
    admin.portico.publish("printer", PRINTER)
    marker = admin.get("/printer")
    rows = wait_api(c, "/logs", request_id=rid_of(marker))
    assert rows
    assert all("/_portico/" not in r["path"] for r in c.get("/logs").json()["requests"])
