"""Scripts renamed and run over the admin API (docs/ADMIN.md, "Runs"): PATCH /scripts/{name},
GET /runs, GET /runs/{id}, POST /scripts/{name}/runs (a background run in a process of its
own, its output recorded as it grows), POST /runs (a file's text run the same way), and the
CLI's `script rename`, `run --script`, `run FILE.py` and `runs` through --server, with the same
output and exit status as on the data dir."""

import os
import subprocess
import time

import pytest

from conftest import (BIN, _env, assert_admin_error, assert_cli_error, make_portico,
                      pg_store_dsn, run_cli)

HELLO = "def handler(request):\n    return {'hello': 'world'}\n"

# Prints, then waits for the file named by its first argument (the test creates it once it
# has seen the output grow), then fails: a run whose output is read while it runs.
WAITER = """\
import os, sys, time
print("started", sys.argv[1:], flush=True)
while not os.path.exists(sys.argv[1]):
    time.sleep(0.02)
print("done waiting")
raise ValueError("boom")
"""

CRASHER = """\
import os, signal
print("going down", flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def wait_run(admin, run_id, pred, timeout=30):
    """Polls GET /runs/{id} until pred(run) holds; returns the run."""
    deadline = time.monotonic() + timeout
    while True:
        r = admin.get(f"/runs/{run_id}")
        assert r.status_code == 200, r.text
        run = r.json()
        if pred(run):
            return run
        assert time.monotonic() < deadline, run
        time.sleep(0.05)


def audit_actions(admin):
    return [(e["action"], e["object"]) for e in admin.get("/audit").json()["entries"]]


# ---- Rename ---------------------------------------------------------------------------------

def test_rename_route_moves_the_endpoint_and_refuses_bad_input(admin_server):
    admin = admin_server.admin()
    assert admin.post("/scripts", json={"name": "rn-old", "source": HELLO}).status_code == 201
    assert admin.post("/scripts", json={"name": "rn-taken", "source": HELLO}).status_code == 201
    body = {"name": "rn", "path": "/rn", "script": "rn-old", "auth": "public"}
    assert admin.post("/endpoints", json=body).status_code == 201
    sid = admin.get("/scripts/rn-old").json()["id"]

    viewer = admin_server.client(admin_server.tokens["viewer"])
    assert_admin_error(viewer.patch("/scripts/rn-old", json={"name": "x"}), 403, "forbidden")
    assert_admin_error(admin.patch("/scripts/nope", json={"name": "x"}), 404, "not_found")
    assert_admin_error(admin.patch("/scripts/rn-old", json={"name": "rn-taken"}), 409,
                       "conflict", "name")
    assert_admin_error(admin.patch("/scripts/rn-old", json={"name": " bad"}), 400,
                       "bad_request", "name")
    assert_admin_error(admin.patch("/scripts/rn-old", json={"name": 5}), 400, "bad_request",
                       "name")
    assert_admin_error(admin.patch("/scripts/rn-old", json={"source": "x"}), 400, "bad_request",
                       "source")
    assert_admin_error(admin.patch("/scripts/rn-old", data="{\"name\": "), 400, "bad_request")
    assert admin.get("/scripts/rn-old").json()["id"] == sid       # nothing changed

    editor = admin_server.client(admin_server.tokens["editor"])
    r = editor.patch("/scripts/rn-old", json={"name": "rn-new"})
    assert r.status_code == 200 and r.json() == {"name": "rn-new", "renamed_from": "rn-old"}
    assert admin.get("/scripts/rn-new").json()["id"] == sid
    assert_admin_error(admin.get("/scripts/rn-old"), 404, "not_found")
    assert admin.get("/endpoints/rn").json()["script"] == "rn-new"
    assert admin_server.server.get("/rn").json() == {"hello": "world"}
    entry = admin.get("/audit", params={"actor": "token:editor"}).json()["entries"][0]
    assert (entry["action"], entry["object"]) == ("PATCH /scripts/{name}", "rn-old")
    assert entry["detail"] == {"script": "rn-old", "name": "rn-new"}
    # The old name had versions: it is never given to another script.
    assert_admin_error(admin.patch("/scripts/rn-taken", json={"name": "rn-old"}), 409,
                       "conflict", "name")


# ---- Runs over the API ----------------------------------------------------------------------

def test_a_background_run_shows_its_output_growing(admin_server, tmp_path):
    admin = admin_server.admin()
    assert admin.post("/scripts", json={"name": "waiter", "source": WAITER}).status_code == 201
    flag = str(tmp_path / "go")
    editor = admin_server.client(admin_server.tokens["editor"])
    r = editor.post("/scripts/waiter/runs", json={"args": [flag]})
    assert r.status_code == 202, r.text
    started = r.json()
    assert started["script"] == "waiter" and started["version"] == 1
    assert started["status"] == "running"
    run_id = started["id"]

    # The recorder writes the output while the script still runs.
    run = wait_run(admin, run_id, lambda x: "started" in x["output"])
    assert run["status"] == "running" and run["exit_code"] is None and run["finished"] is None
    assert run["trigger"] == "api" and run["output"] == f"started ['{flag}']\n"
    seen = run["output_len"]
    listed = admin.get("/runs", params={"script": "waiter"}).json()
    assert listed["total"] == 1 and listed["runs"][0]["id"] == run_id
    assert listed["runs"][0]["status"] == "running" and "output" not in listed["runs"][0]

    open(flag, "w").close()
    run = wait_run(admin, run_id, lambda x: x["status"] != "running")
    assert (run["status"], run["exit_code"]) == ("error", 1)
    assert run["error"].endswith("ValueError: boom")
    assert "done waiting\n" in run["output"] and run["duration_ms"] >= 0
    # ?offset=N gives what came after the first N bytes.
    tail = admin.get(f"/runs/{run_id}", params={"offset": seen}).json()
    assert tail["output_offset"] == seen and tail["output"] == run["output"][seen:]
    assert ("POST /scripts/{name}/runs", "waiter") in audit_actions(admin)


def test_a_crashing_run_is_recorded_and_the_server_goes_on(admin_server):
    admin = admin_server.admin()
    assert admin.post("/scripts", json={"name": "crasher", "source": CRASHER}).status_code == 201
    run_id = admin.post("/scripts/crasher/runs").json()["id"]
    run = wait_run(admin, run_id, lambda x: x["status"] != "running")
    assert (run["status"], run["exit_code"]) == ("error", 137)
    assert "killed by signal 9" in run["error"] and run["output"] == "going down\n"
    assert admin.get("/health").status_code == 200


def test_run_routes_refuse_bad_input(admin_server):
    admin = admin_server.admin()
    assert admin.post("/scripts", json={"name": "idle", "source": "x = 1\n"}).status_code == 201
    total = admin.get("/runs").json()["total"]
    viewer = admin_server.client(admin_server.tokens["viewer"])
    assert_admin_error(viewer.post("/scripts/idle/runs"), 403, "forbidden")
    assert_admin_error(admin.post("/scripts/nope/runs"), 404, "not_found")
    assert_admin_error(admin.post("/scripts/idle/runs", data="{\"args\": "), 400, "bad_request")
    assert_admin_error(admin.post("/scripts/idle/runs", json=[1]), 400, "bad_request")
    assert_admin_error(admin.post("/scripts/idle/runs", json={"args": "a"}), 400, "bad_request",
                       "args")
    assert_admin_error(admin.post("/scripts/idle/runs", json={"args": [1]}), 400, "bad_request",
                       "args")
    assert_admin_error(admin.post("/scripts/idle/runs", json={"args": ["a\u0000b"]}), 400,
                       "bad_request")
    assert_admin_error(admin.post("/scripts/idle/runs", json={"argv": []}), 400, "bad_request",
                       "argv")
    assert admin.get("/runs").json()["total"] == total        # no run was recorded
    assert_admin_error(admin.get("/runs/x"), 400, "bad_request", "id")
    assert_admin_error(admin.get("/runs/999999"), 404, "not_found")
    assert_admin_error(admin.get("/runs", params={"limit": "0"}), 400, "bad_request", "limit")
    assert_admin_error(admin.get("/runs", params={"offset": "-1"}), 400, "bad_request", "offset")
    assert viewer.get("/runs").status_code == 200


# ---- The CLI through --server ---------------------------------------------------------------

def test_remote_run_rename_and_runs_match_the_data_dir(admin_server, tmp_path):
    p = admin_server.portico
    token = admin_server.admin_token
    nowhere = tmp_path / "elsewhere"
    nowhere.mkdir()

    def remote(*args, check=True):
        return run_cli(None, "--server", admin_server.url, *args, env={"PORTICO_TOKEN": token},
                       check=check, cwd=str(nowhere))

    src = p.write("cli_job.py", "import sys\nprint('args', sys.argv[1:])\nsys.exit(3)\n")
    p.cli("script", "add", "cli-job", src)
    local = p.cli("run", "--script", "cli-job", "a", "b c", check=False)
    far = remote("run", "--script", "cli-job", "a", "b c", check=False)
    assert (far.returncode, far.stdout) == (local.returncode, local.stdout) == \
        (3, "args ['a', 'b c']\n")
    # The two runs, as `runs` lists them in both modes.
    mine = [line for line in p.cli("runs", "--script", "cli-job").stdout.splitlines()]
    assert remote("runs", "--script", "cli-job").stdout.splitlines() == mine
    assert mine[0].split() == ["ID", "SCRIPT", "VERSION", "TRIGGER", "STATUS", "STARTED",
                               "DURATION", "EXIT"]
    assert [line.split()[3] for line in mine[1:]] == ["api", "cli"]
    run_id = mine[1].split()[0]
    assert remote("runs", "show", run_id).stdout == p.cli("runs", "show", run_id).stdout
    assert_cli_error(remote("runs", "show", "999999", check=False), "no run with id 999999")
    cp = remote("run", "--script", "no-such", check=False)
    assert cp.returncode == 1 and "no script named 'no-such'" in assert_cli_error(cp)

    assert remote("script", "rename", "cli-job", "cli-job2").stdout == \
        "script cli-job renamed to cli-job2\n"
    assert "cli-job2" in p.cli("script", "list").stdout
    cp = remote("script", "rename", "cli-job", "x", check=False)
    assert cp.returncode == 1 and "no script named 'cli-job'" in assert_cli_error(cp)
    assert not os.listdir(str(nowhere))     # the remote CLI wrote nothing where it ran


def test_remote_run_of_a_file_matches_the_data_dir(admin_server, tmp_path):
    """`run FILE.py` through --server sends the file (POST /runs): same output and exit code as
    on the data dir, recorded as a file run, and the server's copy is gone once it ended."""
    p = admin_server.portico
    token = admin_server.admin_token
    nowhere = tmp_path / "elsewhere"
    nowhere.mkdir()
    src = tmp_path / "file_job.py"
    src.write_text("import sys\nprint('args', sys.argv[1:])\n"
                   "print('to stderr', file=sys.stderr)\nsys.exit(3)\n")
    local = p.cli("run", str(src), "a", "b c", check=False)
    far = run_cli(None, "--server", admin_server.url, "run", str(src), "a", "b c",
                  env={"PORTICO_TOKEN": token}, check=False, cwd=str(nowhere))
    assert (far.returncode, far.stdout) == (3, "args ['a', 'b c']\nto stderr\n")
    assert local.returncode == 3 and local.stdout == "args ['a', 'b c']\n"
    assert local.stderr.endswith("to stderr\n")

    admin = admin_server.admin()
    run = admin.get("/runs", params={"script": "file_job.py"}).json()["runs"][0]
    assert (run["trigger"], run["script_id"], run["version"]) == ("api", None, 0)
    assert (run["status"], run["exit_code"]) == ("error", 3)
    assert "POST /runs" in [a for a, _ in audit_actions(admin)]
    spool = os.path.join(p.data, "run", "runs")
    assert os.listdir(spool) == []          # the recorder removed the copy of the file
    assert not os.listdir(str(nowhere))

    # A run that is still going has its private copy; it goes when the run ends, however.
    flag = str(tmp_path / "go")
    r = admin.post("/runs", json={"name": "waiter.py", "source": WAITER, "args": [flag]})
    assert r.status_code == 202, r.text
    run_id = r.json()["id"]
    wait_run(admin, run_id, lambda x: "started" in x["output"])
    copy = os.path.join(spool, f"{run_id}.py")
    assert os.stat(copy).st_mode & 0o777 == 0o600
    open(flag, "w").close()
    run = wait_run(admin, run_id, lambda x: x["status"] != "running")
    assert run["error"].endswith("ValueError: boom") and not os.path.exists(copy)


def test_file_run_route_refuses_bad_input(admin_server, tmp_path):
    admin = admin_server.admin()
    total = admin.get("/runs").json()["total"]
    viewer = admin_server.client(admin_server.tokens["viewer"])
    ok = {"name": "a.py", "source": "print(1)\n"}
    assert_admin_error(viewer.post("/runs", json=ok), 403, "forbidden")
    assert_admin_error(admin.post("/runs", data="{\"name\": "), 400, "bad_request")
    assert_admin_error(admin.post("/runs", json=[1]), 400, "bad_request")
    assert_admin_error(admin.post("/runs", json={"name": "a.py"}), 400, "bad_request", "source")
    assert_admin_error(admin.post("/runs", json={"source": "x"}), 400, "bad_request", "name")
    assert_admin_error(admin.post("/runs", json={**ok, "source": ""}), 400, "bad_request",
                       "source")
    assert_admin_error(admin.post("/runs", json={**ok, "source": "a\u0000"}), 400,
                       "bad_request")
    assert_admin_error(admin.post("/runs", json={**ok, "name": ""}), 400, "bad_request", "name")
    assert_admin_error(admin.post("/runs", json={**ok, "args": [1]}), 400, "bad_request", "args")
    assert_admin_error(admin.post("/runs", json={**ok, "extra": 1}), 400, "bad_request", "extra")
    assert_admin_error(admin.post("/runs", data=b'{"name": "a.py", "source": "\xff"}'), 400,
                       "bad_request")
    assert_admin_error(admin.post("/runs", json={**ok, "source": "x" * (3 << 20)}), 413,
                       "too_large")
    assert admin.get("/runs").json()["total"] == total        # no run was recorded
    spool = os.path.join(admin_server.portico.data, "run", "runs")
    assert not os.path.exists(spool) or os.listdir(spool) == []

    # The CLI: an empty file is the server's 400, a missing one the client's error.
    token = admin_server.admin_token
    empty = tmp_path / "empty.py"
    empty.write_text("")
    for f, msg in ((empty, "source is the script's text"), (tmp_path / "none.py", "cannot read")):
        cp = run_cli(None, "--server", admin_server.url, "run", str(f),
                     env={"PORTICO_TOKEN": token}, check=False)
        assert cp.returncode == 1 and msg in assert_cli_error(cp)
    assert admin.get("/runs").json()["total"] == total


@pytest.mark.plain_only
def test_progress_is_recorded_on_a_postgresql_store(tmp_path):
    # The recorder's progress writes (output || more) on the other engine: `portico run` on a
    # data dir whose store is PostgreSQL, read with `runs show` while the script waits.
    p = make_portico(tmp_path, pg_store_dsn())
    p.add_script("pg-waiter", WAITER)
    flag = str(tmp_path / "go")
    proc = subprocess.Popen([BIN, "--data", p.data, "run", "--script", "pg-waiter", flag],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env())
    try:
        deadline = time.monotonic() + 30
        while True:
            shown = p.cli("runs", "show", "1", check=False).stdout
            if "output:\nstarted" in shown:
                break
            assert time.monotonic() < deadline and proc.poll() is None, shown
            time.sleep(0.05)
        assert "status: running" in shown and shown.endswith(f"output:\nstarted ['{flag}']\n")
        open(flag, "w").close()
        assert proc.wait(timeout=30) == 1
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    shown = p.cli("runs", "show", "1").stdout
    assert "status: error" in shown and "done waiting\n" in shown
