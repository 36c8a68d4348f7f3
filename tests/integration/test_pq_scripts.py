"""pq's state and script functions (issue 8, section 5 "State" and "Scripts"), script ids,
free-text script names, and the record of runs (`portico run`, pq.run_script, `portico runs`).

Modelled on Peliqan usage: the bookmark pattern of an incremental sync (read the state, fetch
what is newer, store the new bookmark), scripts that trigger other scripts and read their
logs, and scripts found by names like "Load - Data Warehouse"."""

import json
import os
import re
import subprocess
import time

import pytest

from conftest import BIN, _env, assert_cli_error

# ---------------------------------------------------------------- helpers

STATE = """\
    import json

    LOADED_ID = pq.INTERFACE_ID   # module-level code runs as this script too

    def handler(request):
        if request['method'] == 'POST':
            pq.set_state(json.loads(request['data'])['value'])
            return {'ok': True}
        state = pq.get_state()
        return {'state': state, 'type': type(state).__name__,
                'id': pq.INTERFACE_ID, 'loaded_id': LOADED_ID}
    """


def script_id(cli, name):
    out = cli("script", "show", name, "--info").stdout
    m = re.search(r"^id: (\d+)$", out, re.M)
    assert m, out
    return int(m.group(1))


def publish_named(portico, script, endpoint, source, methods="GET,POST"):
    """A script with a free-text name behind endpoint /<endpoint>."""
    portico.add_script(script, source)
    portico.add_endpoint(endpoint, f"/{endpoint}", script=script, methods=methods)
    return f"/{endpoint}"


def ok_json(resp):
    assert resp.status_code == 200, resp.text
    return resp.json()


# ---------------------------------------------------------------- state

def test_state_round_trip_survives_restart_and_new_version(portico, server):
    path = publish_named(portico, "Sync - Orders", "sync", STATE)
    sid = script_id(portico.cli, "Sync - Orders")
    s = server(workers=1)

    got = ok_json(s.get(path))
    assert got == {"state": None, "type": "NoneType", "id": sid, "loaded_id": sid}

    # Peliqan's value semantics: dicts and lists as JSON, anything else as str(value), read
    # back as JSON, else an int, else the text.
    cases = [
        ({"bookmark": "2026-01-31T00:00:00Z", "page": 3}, {"bookmark": "2026-01-31T00:00:00Z",
                                                            "page": 3}, "dict"),
        ([1, "two", {"3": None}], [1, "two", {"3": None}], "list"),
        (42, 42, "int"),
        ("hello world", "hello world", "str"),
        ("2026-01-31", "2026-01-31", "str"),
        (None, "None", "str"),   # str(None), as the package stores it
        (True, "True", "str"),
    ]
    for value, expect, typ in cases:
        assert ok_json(s.post(path, json={"value": value})) == {"ok": True}
        got = ok_json(s.get(path))
        assert (got["state"], got["type"]) == (expect, typ), value

    bookmark = {"last_id": 1234, "cursor": "abc"}
    ok_json(s.post(path, json={"value": bookmark}))
    s.close()

    # A restart and a new version keep the state (it belongs to the script, not a version).
    s2 = server(workers=2)
    assert ok_json(s2.get(path))["state"] == bookmark
    portico.add_script("Sync - Orders", STATE.replace("'type'", "'v2': True, 'type'"))
    got = ok_json(s2.get(path))
    assert got.get("v2") is True, got
    assert got["state"] == bookmark and got["id"] == sid


def test_bookmark_pattern_of_an_incremental_sync(portico, server):
    """The worker_template pattern: state holds the last synced id between runs."""
    portico.cli("db", "import", "dw", "crm", "orders",
                portico.write("orders.csv", "id,amount\n1,10\n2,20\n3,30\n"))
    path = publish_named(portico, "Incremental orders", "incr", """\
        def handler(request):
            state = pq.get_state() or {}
            last = state.get('last_id', 0)
            db = pq.dbconnect(pq.DW_NAME)
            rows = db.fetch(pq.DW_NAME, query='SELECT id FROM crm.orders WHERE id > %d '
                                              'ORDER BY id' % last)
            ids = [r['id'] for r in rows]
            if ids:
                pq.set_state({'last_id': ids[-1]})
            return {'synced': ids}
        """)
    s = server()
    assert ok_json(s.get(path)) == {"synced": [1, 2, 3]}
    assert ok_json(s.get(path)) == {"synced": []}
    portico.cli("db", "query", "dw", "INSERT INTO crm.orders(id, amount) VALUES (4, 40)")
    assert ok_json(s.get(path)) == {"synced": [4]}


def test_interface_state_and_ids_of_two_scripts_in_one_worker(portico, server):
    source = """\
        def handler(request):
            q = request['query']
            if 'set' in q:
                pq.set_interface_state(int(q['set']), {'from': pq.INTERFACE_ID})
            if 'get' in q:
                return {'state': pq.get_interface_state(int(q['get']))}
            return {'id': pq.INTERFACE_ID, 'mine': pq.get_state()}
        """
    a = publish_named(portico, "Script A", "a", source)
    b = publish_named(portico, "Script B", "b", source)
    ida, idb = script_id(portico.cli, "Script A"), script_id(portico.cli, "Script B")
    assert ida != idb
    s = server(workers=1)   # one worker, one pq module, serving both scripts

    for _ in range(3):
        assert ok_json(s.get(a)) == {"id": ida, "mine": None}
        assert ok_json(s.get(b)) == {"id": idb, "mine": None}
    ok_json(s.get(a, params={"set": idb}))
    assert ok_json(s.get(b)) == {"id": idb, "mine": {"from": ida}}
    assert ok_json(s.get(a)) == {"id": ida, "mine": None}
    assert ok_json(s.get(a, params={"get": idb})) == {"state": {"from": ida}}
    assert ok_json(s.get(a, params={"get": ida})) == {"state": None}


def test_state_errors_are_clear_pq_errors(portico, server):
    path = publish_named(portico, "Errors", "errs", """\
        def handler(request):
            what = request['query']['what']
            try:
                if what == 'unknown':
                    pq.get_interface_state(987654)
                elif what == 'unknown_set':
                    pq.set_interface_state(987654, {'a': 1})
                elif what == 'bad_id':
                    pq.get_interface_state('abc')
                elif what == 'huge':
                    pq.set_state('x' * (17 << 20))
                elif what == 'unknown_script':
                    pq.get_script(script_name='No Such Script')
                elif what == 'no_args':
                    pq.get_script()
            except pq.Error as e:
                return {'error': type(e).__name__, 'message': str(e),
                        'lookup': isinstance(e, LookupError),
                        'value': isinstance(e, ValueError)}
            return {'error': None}
        """)
    s = server()

    def err(what):
        return ok_json(s.get(path, params={"what": what}))

    assert err("unknown") == {"error": "ScriptNotFound", "message": "no script with id 987654",
                              "lookup": True, "value": False}
    assert err("unknown_set")["message"] == "no script with id 987654"
    got = err("bad_id")
    assert got["error"] == "InvalidArgument" and "interface_id" in got["message"], got
    got = err("huge")
    assert got["error"] == "InvalidArgument" and "too big" in got["message"], got
    got = err("unknown_script")
    assert got["error"] == "ScriptNotFound" and "No Such Script" in got["message"], got
    got = err("no_args")
    assert got["error"] == "InvalidArgument" and "script_name" in got["message"], got
    # The failed writes lost nothing, and the server is fine.
    assert ok_json(s.get(path, params={"what": "none"})) == {"error": None}


# ---------------------------------------------------------------- scripts

ADMIN = """\
    import json

    def handler(request):
        args = json.loads(request['data'] or '{}')
        fn = getattr(pq, args.pop('fn'))
        try:
            return {'result': fn(**args)}
        except pq.Error as e:
            return {'error': type(e).__name__, 'message': str(e)}
    """


def call(s, path, fn, **kwargs):
    return ok_json(s.post(path, json=dict(kwargs, fn=fn)))


def test_list_get_add_update_scripts(portico, server, cli):
    path = publish_named(portico, "Admin", "admin", ADMIN, methods="POST")
    s = server()
    src = "print('loading the warehouse')\n"

    added = call(s, path, "add_script", name="Load - Data Warehouse", raw_script=src,
                 run_mode="SHELL")["result"]
    assert added["name"] == "Load - Data Warehouse" and added["raw_script"] == src
    assert added["run_mode"] == "SHELL" and added["version"] == 1
    sid = added["id"]
    assert sid == script_id(cli, "Load - Data Warehouse")
    assert cli("script", "show", "Load - Data Warehouse").stdout == src

    by_name = call(s, path, "get_script", script_name="Load - Data Warehouse")["result"]
    by_id = call(s, path, "get_script", script_id=sid)["result"]
    assert by_name == by_id == added
    names = [x["name"] for x in call(s, path, "list_scripts")["result"]]
    assert names == ["Admin", "Load - Data Warehouse"]

    # raw_script makes a new version; the id stays.
    new = "print('loading v2')\n"
    upd = call(s, path, "update_script", script_id=sid, raw_script=new)["result"]
    assert (upd["id"], upd["version"], upd["raw_script"]) == (sid, 2, new)
    assert cli("script", "show", "--id", str(sid)).stdout == new
    upd = call(s, path, "update_script", script_name="Load - Data Warehouse",
               run_mode="api", state={"k": 1})["result"]
    assert upd["run_mode"] == "API" and upd["version"] == 2
    got = call(s, path, "get_interface_state", interface_id=sid)
    assert got == {"result": {"k": 1}}

    # Bad input: a clear pq error, nothing stored.
    got = call(s, path, "add_script", name="Load - Data Warehouse", raw_script="x = 1\n")
    assert got["error"] == "InvalidArgument" and "already exists" in got["message"], got
    got = call(s, path, "add_script", name="Broken", raw_script="def f(:\n")
    assert got["error"] == "InvalidArgument" and "line 1" in got["message"], got
    got = call(s, path, "add_script", name=" Leading space", raw_script="x = 1\n")
    assert got["error"] == "InvalidArgument" and "invalid script name" in got["message"], got
    got = call(s, path, "add_script", name="Modes", raw_script="", run_mode="BATCH")
    assert got["error"] == "InvalidArgument" and "run_mode" in got["message"], got
    got = call(s, path, "update_script", script_id=sid, raw_script="if True\n")
    assert got["error"] == "InvalidArgument", got
    got = call(s, path, "update_script", script_id=sid, name="Admin")
    assert got["error"] == "InvalidArgument" and "is taken" in got["message"], got
    got = call(s, path, "update_script", script_id=424242, raw_script="x = 1\n")
    assert got["error"] == "ScriptNotFound", got
    assert [x["name"] for x in call(s, path, "list_scripts")["result"]] == \
        ["Admin", "Load - Data Warehouse"]
    assert cli("script", "show", "Load - Data Warehouse").stdout == new


def test_rename_keeps_the_id_the_state_and_the_endpoint(portico, server, cli):
    path = publish_named(portico, "Old Name", "svc", STATE)
    admin = publish_named(portico, "Admin", "admin", ADMIN, methods="POST")
    sid = script_id(cli, "Old Name")
    s = server()
    ok_json(s.post(path, json={"value": {"bookmark": 7}}))

    got = call(s, admin, "update_script", script_name="Old Name", name="New Name")["result"]
    assert (got["id"], got["name"]) == (sid, "New Name")
    got = ok_json(s.get(path))   # the endpoint follows the script
    assert got["state"] == {"bookmark": 7} and got["id"] == sid, got
    names = cli("script", "list").stdout
    assert "New Name" in names and "Old Name" not in names
    assert "New Name" in cli("endpoint", "show", "svc").stdout

    # A name in use, or once used by a script with versions of its own, is refused.
    got = call(s, admin, "update_script", script_id=sid, name="Admin")
    assert got["error"] == "InvalidArgument" and "taken" in got["message"], got
    assert_cli_error(cli("script", "rename", "New Name", "Old Name", check=False),
                     "was used before")
    assert cli("script", "rename", "New Name", "Third Name").stdout == \
        "script New Name renamed to Third Name\n"
    assert ok_json(s.get(path))["id"] == sid
    assert_cli_error(cli("script", "rename", "Nope", "X", check=False), "no script named 'Nope'")


def test_free_text_script_names_through_cli_and_endpoint(portico, server, cli):
    name = "Rapport été - Q1 (final)"
    publish_named(portico, name, "rapport", "def handler(request):\n    return 'ok'\n")
    listing = cli("script", "list").stdout
    assert name in listing and re.search(r"^ID\s+NAME", listing), listing
    assert name in cli("endpoint", "list").stdout
    s = server()
    r = s.get("/rapport")
    assert (r.status_code, r.text) == (200, "ok")
    doc = s.get("/_portico/openapi.json").json()   # names the endpoint, not the script
    assert "/rapport" in doc["paths"], doc
    cli("script", "rollback", name, check=False)   # one version only: refused, but by name
    cli("script", "rm", name, check=False)          # used by an endpoint: refused
    assert name in cli("script", "list").stdout

    for bad in (" x", "x ", "tab\there", "a" * 129, ""):
        path = portico.write("ok.py", "x = 1\n")
        cp = cli("script", "add", bad, path, check=False)
        assert_cli_error(cp, "invalid script name")
    # Endpoint paths and connection names keep their rules.
    assert_cli_error(cli("endpoint", "add", "bad name", "--path", "/x", "--script", name,
                         "--auth", "public", check=False))


def test_script_show_info_and_id(portico, cli):
    portico.add_script("Info Me", "x = 1\n")
    portico.add_script("Info Me", "x = 2\n")
    info = cli("script", "show", "Info Me", "--info").stdout
    sid = script_id(cli, "Info Me")
    assert f"id: {sid}\n" in info and "version: 2\n" in info and "run_mode: API\n" in info
    assert cli("script", "show", "--id", str(sid), "--version", "1").stdout == "x = 1\n"
    assert_cli_error(cli("script", "show", "--id", "999", check=False), "no script with id 999")
    assert_cli_error(cli("script", "show", "--id", "abc", check=False), "--id")


# ---------------------------------------------------------------- runs

RUNNER = """\
    def handler(request):
        q = request['query']
        if 'id' in q:
            return pq.run_script(script_id=int(q['id']))
        return pq.run_script(script_name=q['name'])
    """


def test_run_script_returns_the_run_with_its_logs(portico, server, cli):
    portico.add_script("Load - Data Warehouse", """\
        import sys
        print('step 1: extract')
        print('step 2: load', pq.INTERFACE_ID)
        print('a warning', file=sys.stderr)
        pq.set_state({'loaded': True})
        """)
    sid = script_id(cli, "Load - Data Warehouse")
    path = publish_named(portico, "Runner", "runner", RUNNER)
    s = server()

    run = ok_json(s.get(path, params={"name": "Load - Data Warehouse"}))
    assert run["status"] == "success" and run["running"] is False, run
    assert run["script_id"] == run["interface_id"] == sid
    assert run["script_name"] == "Load - Data Warehouse" and run["version"] == 1
    assert run["trigger"] == "pq.run_script" and run["exit_code"] == 0
    assert run["error"] is None and run["finished_at"] >= run["started_at"]
    assert run["logs"] == f"step 1: extract\nstep 2: load {sid}\na warning\n", run["logs"]

    # The run is recorded and readable through pq and the CLI; its state stayed.
    assert ok_json(s.get(path, params={"id": sid}))["status"] == "success"
    reader = publish_named(portico, "Reader", "reader", f"""\
        def handler(request):
            runs = pq.get_script_runs(script_id={sid}, page=1, per_page=1)
            first = runs['results'][0]
            return {{'count': runs['count'], 'n': len(runs['results']),
                    'one': pq.get_script_run(first['id']),
                    'logs': pq.get_script_run_logs(first['id']),
                    'state': pq.get_interface_state({sid})}}
        """)
    got = ok_json(s.get(reader))
    assert got["count"] == 2 and got["n"] == 1
    assert got["one"]["status"] == "success" and "logs" not in got["one"]
    assert got["logs"]["logs"].startswith("step 1: extract\n")
    assert got["state"] == {"loaded": True}
    listing = cli("runs", "--script", "Load - Data Warehouse").stdout
    assert listing.count("pq.run_script") == 2 and "success" in listing, listing
    shown = cli("runs", "show", str(run["id"])).stdout
    assert "status: success" in shown and "step 2: load" in shown, shown


def test_run_script_error_and_crash_do_not_affect_the_server(portico, server):
    portico.add_script("Failing Job", """\
        print('before the error')
        def transform(rows):
            return 1 / 0
        transform([])
        """)
    portico.add_script("Crashing Job", """\
        import os
        print('about to crash', flush=True)
        os.abort()   # the interpreter dies with SIGABRT, as on a crash in an extension
        """)
    portico.add_script("Exiting Job", "import sys\nprint('bye')\nsys.exit(3)\n")
    path = publish_named(portico, "Runner", "runner", RUNNER)
    hello = publish_named(portico, "Hello", "hello", "def handler(request):\n    return 'hi'\n")
    s = server(workers=1)

    run = ok_json(s.get(path, params={"name": "Failing Job"}))
    assert run["status"] == "error" and run["exit_code"] == 1, run
    assert "Traceback" in run["error"] and "ZeroDivisionError" in run["error"], run["error"]
    assert 'in transform' in run["error"]
    assert run["logs"].startswith("before the error\n") and "ZeroDivisionError" in run["logs"]
    assert s.get(hello).status_code == 200

    run = ok_json(s.get(path, params={"name": "Crashing Job"}))
    assert run["status"] == "error" and run["exit_code"] == 128 + 6, run
    assert run["error"] == "the script was killed by signal 6 (Aborted)", run["error"]
    assert run["logs"].startswith("about to crash\n"), run["logs"]
    r = s.get(hello)
    assert (r.status_code, r.text) == (200, "hi")

    run = ok_json(s.get(path, params={"name": "Exiting Job"}))
    assert run["status"] == "error" and run["exit_code"] == 3 and run["logs"] == "bye\n", run
    assert run["error"] == "SystemExit: 3"

    r = s.get(path, params={"name": "No Such Job"})
    assert r.status_code == 500   # an uncaught pq.ScriptNotFound, like any exception
    assert s.get(hello).status_code == 200


def test_portico_run_file_is_recorded(portico, cli):
    script = portico.write("job.py", """\
        import sys
        print('args', sys.argv[1:], 'id', pq.INTERFACE_ID)
        print('to stderr', file=sys.stderr)
        try:
            pq.get_state()
        except pq.Error as e:
            print('state error:', e)
        """)
    cp = cli("run", script, "one", "--two")
    assert cp.stdout.startswith("args ['one', '--two'] id None\n"), cp.stdout
    assert "state error: pq.get_state() needs a stored script" in cp.stdout
    assert cp.stderr == "to stderr\n"
    listing = cli("runs").stdout.splitlines()
    assert len(listing) == 2 and "job.py" in listing[1] and "cli" in listing[1], listing
    run_id = listing[1].split()[0]
    shown = cli("runs", "show", run_id).stdout
    assert f"file: {script}" in shown and "status: success" in shown and "exit code: 0" in shown
    assert "to stderr\n" in shown and "args ['one', '--two']" in shown

    boom = portico.write("boom.py", "print('partial')\nraise RuntimeError('boom-marker')\n")
    cp = cli("run", boom, check=False)
    assert cp.returncode == 1 and "boom-marker" in cp.stderr and "Traceback" in cp.stderr
    run_id = cli("runs", "--limit", "1").stdout.splitlines()[1].split()[0]
    shown = cli("runs", "show", run_id).stdout
    assert "status: error" in shown and "exit code: 1" in shown
    assert re.search(r"error:\nTraceback.*boom-marker", shown, re.S), shown
    assert "runpy" not in shown.split("output:")[0]   # the runner's own frames are left out


def test_portico_run_script_by_name(portico, cli):
    portico.add_script("Nightly - Export", """\
        import sys
        print('argv', sys.argv)
        print('id', pq.INTERFACE_ID)
        n = (pq.get_state() or 0) + 1
        pq.set_state(n)
        print('run number', n)
        """)
    sid = script_id(cli, "Nightly - Export")
    out = cli("run", "--script", "Nightly - Export", "a", "--data", "b").stdout
    assert out == f"argv ['Nightly - Export', 'a', '--data', 'b']\nid {sid}\nrun number 1\n"
    out = cli("run", "--script", "Nightly - Export").stdout
    assert out.endswith("run number 2\n")
    listing = cli("runs", "--script", "Nightly - Export").stdout.splitlines()
    assert len(listing) == 3 and all("cli" in l and "success" in l for l in listing[1:])

    assert_cli_error(cli("run", "--script", "No Such", check=False), "no script named 'No Such'")
    assert_cli_error(cli("run", "--script", check=False), "--script")
    assert_cli_error(cli("runs", "show", "999", check=False), "no run with id 999")
    assert_cli_error(cli("runs", "show", "x", check=False), "invalid run id")


def test_portico_run_output_goes_out_as_it_happens(portico):
    """The first line reaches the terminal while the script still waits for input."""
    script = portico.write("interactive.py", """\
        import sys
        print('ready')
        line = sys.stdin.readline()
        print('got', line.strip())
        """)
    p = subprocess.Popen([BIN, "--data", portico.data, "run", script], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(), text=True)
    try:
        assert p.stdout.readline() == "ready\n"
        p.stdin.write("hello\n")
        p.stdin.flush()
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert (p.returncode, out, err) == (0, "got hello\n", "")


def test_run_output_is_capped_with_a_note(portico, cli):
    script = portico.write("chatty.py", """\
        import sys
        line = 'x' * 1023 + '\\n'
        for _ in range(1100):
            sys.stdout.write(line)
        print('the end')
        """)
    cp = cli("run", script)
    assert cp.stdout.endswith("the end\n") and len(cp.stdout) == 1100 * 1024 + 8
    run_id = cli("runs").stdout.splitlines()[1].split()[0]
    shown = cli("runs", "show", run_id).stdout
    out = shown.split("output:\n", 1)[1]
    assert out.startswith("x" * 1023 + "\n")
    dropped = 1100 * 1024 + 8 - (1 << 20)
    assert out.endswith(f"[output cut: the log keeps the first {1 << 20} bytes; {dropped} more "
                        "bytes were not recorded]\n"), out[-300:]


def wait_for(pred, timeout=10.0, interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(interval)


def test_a_handler_timeout_stops_the_run_it_waits_for(portico, server, cli):
    portico.add_script("Slow Job", """\
        import threading
        print('started', flush=True)
        threading.Event().wait()   # never set: only the stop ends this run
        """)
    path = publish_named(portico, "Runner", "runner", RUNNER)
    hello = publish_named(portico, "Hello", "hello", "def handler(request):\n    return 'hi'\n")
    # The timeout leaves the run time to start Python and print its first line even on a
    # loaded machine (a 1 s timeout lost that race under CI's parallel load).
    s = server("--timeout", "4", workers=1)
    r = s.get(path, params={"name": "Slow Job"})
    assert r.status_code == 504, r.text

    # The recorder records the end first (killed by SIGTERM), then pq.run_script says why.
    def stopped():
        shown = cli("runs", "show", "1").stdout
        return shown if "stopped because" in shown else None
    shown = wait_for(stopped)
    assert shown, cli("runs", "show", "1").stdout
    assert "status: error" in shown, shown
    assert "stopped because its caller was interrupted (TimeoutError)" in shown, shown
    assert shown.endswith("output:\nstarted\n"), shown
    assert s.get(hello).status_code == 200


def test_webhook_processing_script_with_a_free_text_name_keeps_state(portico, server, cli):
    name = "Process - Stripe events"
    portico.add_script(name, """\
        def handler(event):
            state = pq.get_state() or {'seen': []}
            state['seen'].append(event['json']['n'])
            state['id'] = pq.INTERFACE_ID
            pq.set_state(state)
        """)
    sid = script_id(cli, name)
    cli("webhook", "source", "add", "stripe", "--script", name)
    assert name in cli("webhook", "source", "list").stdout
    token = cli("webhook", "url").stdout.strip().rsplit("/", 1)[1]
    reader = portico.write("state.py", f"import json\nprint(json.dumps("
                                       f"pq.get_interface_state({sid})))\n")

    def state():
        return json.loads(cli("run", reader).stdout)

    s = server(workers=1)
    for n in (1, 2):
        r = s.post(f"/webhook/{token}/stripe", json={"n": n})
        assert r.status_code == 200, r.text
        got = wait_for(lambda: (lambda st: st if st and len(st["seen"]) == n else None)(state()))
        assert got == {"seen": list(range(1, n + 1)), "id": sid}, state()
