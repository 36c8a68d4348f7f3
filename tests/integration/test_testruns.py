"""Test runs (issue 9, section 5): `portico endpoint test` on the data dir and through --server
(every CLI test runs in both modes), and the admin API's POST /endpoints/{name}/test and POST
/scripts/test, through the real worker runtime, publishing nothing."""
import json

import pytest

from conftest import assert_cli_error
from test_cli import portico  # noqa: F401 (the fixture: a data dir, --server, or PostgreSQL)
from test_reqlog import admin, client  # noqa: F401 (admin is a fixture)

PRINTS = """
def handler(request):
    print("method", request['method'], "path", request['path'])
    print("query", request['query'], "params", request['params'])
    print("header", request['headers'].get('X-Color'))
    print("body", request['data'])
    return {"ok": True}, 201, {"X-Answer": "42"}
"""

RAISES = """
def handler(request):
    print("before the error")
    raise KeyError("missing")
"""

SLOW = """
import time
def handler(request):
    print("waiting")
    while True:
        time.sleep(0.01)
"""


def run_test(portico, *args, check=False):
    return portico.cli("endpoint", "test", *args, check=check)


def test_a_handler_that_prints(portico):
    portico.publish("hello", PRINTS, path="/things/{id}")
    body = portico.write("body.txt", "the body")
    cp = run_test(portico, "hello", "--path", "/things/a%20b", "--query", "x=1", "--query", "y=2",
                  "--header", "X-Color: blue", "--data", "@" + body, "--json")
    assert cp.returncode == 0, cp.stderr
    r = json.loads(cp.stdout)
    assert r["status"] == 201
    assert r["headers"]["x-answer"] == "42"
    assert r["headers"]["content-type"] == "application/json"
    assert json.loads(r["body"]) == {"ok": True}
    assert r["body_base64"] is False
    assert r["printed"] == [
        "method GET path /things/a%20b",
        "query {'x': '1', 'y': '2'} params {'id': 'a b'}",
        "header blue",
        "body the body",
    ]
    assert r["traceback"] is None
    assert r["duration_ms"] >= 0


def test_text_output(portico):
    portico.publish("hello", PRINTS)
    cp = run_test(portico, "hello", "--data", "inline text", "--method", "GET")
    assert cp.returncode == 0, cp.stderr
    lines = cp.stdout.splitlines()
    assert lines[0] == "HTTP 201 Created"
    assert "x-answer: 42" in lines[:4] or "X-Answer: 42" in lines[:4]
    assert '{"ok": true}' in lines
    i = lines.index("--- printed")
    assert lines[i + 4] == "body inline text"
    assert "--- traceback" not in lines
    assert lines[-1].startswith("--- ") and lines[-1].endswith(" ms")


def test_a_handler_that_raises(portico):
    portico.publish("broken", RAISES)
    cp = run_test(portico, "broken", "--json")
    assert cp.returncode == 1
    r = json.loads(cp.stdout)
    assert r["status"] == 500
    assert r["printed"] == ["before the error"]
    assert r["traceback"].startswith("Traceback (most recent call last):")
    assert r["traceback"].endswith("KeyError: 'missing'")
    assert "missing" not in r["body"]  # the answer is what a client would get


def test_a_handler_that_times_out(portico, cli_mode):
    portico.publish("slow", SLOW)
    if cli_mode == "server":
        # The server's runtime runs it, with the server's --timeout.
        cp = run_test(portico, "slow", "--timeout", "0.5")
        assert cp.returncode == 1 and "serve --timeout" in assert_cli_error(cp, "--timeout")
        return
    cp = run_test(portico, "slow", "--timeout", "0.5", "--json")
    assert cp.returncode == 1 and cp.stdout, cp.stderr
    r = json.loads(cp.stdout)
    assert r["status"] == 504
    assert r["printed"] == ["waiting"]
    assert "TimeoutError" in r["traceback"]
    assert 450 <= r["duration_ms"] < 10000


def test_a_post_only_endpoint_gets_post(portico):
    portico.publish("hello", PRINTS, methods="POST")
    r = json.loads(run_test(portico, "hello", "--json").stdout)
    assert r["printed"][0] == "method POST path /hello"


def test_nothing_is_published(portico):
    portico.publish("hello", PRINTS)
    before = portico.cli("script", "list").stdout
    assert run_test(portico, "hello").returncode == 0
    assert portico.cli("script", "list").stdout == before


@pytest.mark.parametrize("args, words", [
    (["nope"], ["nope"]),
    (["hello", "--header", "no colon"], ["--header"]),
    (["hello", "--method", "FETCH"], ["method", "FETCH"]),
    (["hello", "--path", "/other"], ["/other", "/hello"]),
    (["hello", "--path", "relative"], ["path"]),
    (["hello", "--timeout", "0"], ["--timeout"]),
    (["hello", "--data", "@/no/such/file"], ["/no/such/file"]),
])
def test_bad_input(portico, args, words):
    portico.publish("hello", PRINTS)
    assert_cli_error(run_test(portico, *args), *words)


def test_path_parameters_need_a_path(portico):
    portico.publish("thing", PRINTS, path="/things/{id}")
    assert_cli_error(run_test(portico, "thing"), "--path", "/things/{id}")


# ---- Over the admin API ---------------------------------------------------------------------

def test_admin_test_run_of_an_endpoint(admin):
    admin.portico.publish("hello", PRINTS, path="/things/{id}")
    r = client(admin, "editor").post("/endpoints/hello/test", json={
        "method": "GET", "path": "/things/7", "query": {"x": "1"},
        "headers": {"X-Color": "red"}, "body": "payload"})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["status"] == 201
    assert out["printed"][1] == "query {'x': '1'} params {'id': '7'}"
    assert out["printed"][2] == "header red"
    assert out["traceback"] is None


def test_admin_test_run_of_a_draft(admin):
    c = client(admin, "editor")
    r = c.post("/scripts/test", json={"source": "def handler(request):\n    print('draft')\n"
                                                "    return 'd'\n"})
    assert r.status_code == 200, r.text
    assert r.json()["body"] == "d" and r.json()["printed"] == ["draft"]

    # A syntax error is the run's answer (500 and the traceback), not an API error.
    r = c.post("/scripts/test", json={"source": "def handler(:\n"})
    assert r.status_code == 200
    assert r.json()["status"] == 500 and "SyntaxError" in r.json()["traceback"]

    # A draft of a published script leaves the published version serving.
    admin.portico.publish("live", "def handler(request):\n    return 'published'\n")
    assert admin.get("/live").text == "published"
    r = c.post("/scripts/test", json={"name": "live",
                                      "source": "def handler(request):\n    return 'draft'\n"})
    assert r.json()["body"] == "draft"
    assert admin.get("/live").text == "published"


def test_admin_test_runs_raise_and_time_out(admin):
    c = client(admin, "editor")
    r = c.post("/scripts/test", json={"source": RAISES})
    assert r.json()["status"] == 500 and r.json()["traceback"].endswith("KeyError: 'missing'")
    r = c.post("/scripts/test", json={"source": SLOW})
    assert r.json()["status"] == 504 and r.json()["printed"] == ["waiting"]


def test_admin_test_runs_need_an_editor(admin):
    r = client(admin, "viewer").post("/scripts/test", json={"source": PRINTS})
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "forbidden"


@pytest.mark.parametrize("body, field", [
    ({}, "source"),
    ({"source": 3}, "source"),
    ({"source": PRINTS, "headers": []}, "headers"),
    ({"source": PRINTS, "method": "FETCH"}, "method"),
    ({"source": PRINTS, "body": "%%%", "body_base64": True}, "body"),
])
def test_admin_test_runs_bad_input(admin, body, field):
    r = client(admin, "editor").post("/scripts/test", json=body)
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "bad_request"
    assert r.json()["error"]["field"] == field
