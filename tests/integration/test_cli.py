"""The CLI contract (issue 2, §2): init, script, endpoint, db, run; errors are one line, exit != 0.

Every test runs three times (issue 9, §4; issue 11, §1): on the data dir, with the commands
that work remotely (script, endpoint, user, audit, token, apikey, auth, secret, ...) sent through
`--server` to a running server's admin API, and on a data dir whose metadata store is
PostgreSQL, with the same assertions."""

import hashlib
import json
import os
import re

import pytest

import requests

from conftest import (ADMIN_PASSWORD, RemotePortico, Server, assert_cli_error, make_portico,
                      output, pg_store_dsn, run_cli, start_remote_portico)


@pytest.fixture
def portico(tmp_path, cli_mode):
    """A fresh data dir; in "server" mode its remote-capable commands go through --server; in
    "postgres" mode its store is PostgreSQL."""
    p = make_portico(tmp_path, pg_store_dsn() if cli_mode == "postgres" else None)
    if cli_mode != "server":
        yield p
        return
    remote = start_remote_portico(p)
    yield remote
    remote.close()


def file_digests(root):
    """sha256 of every regular file under root except SQLite databases and their WAL/SHM, which
    an open may legitimately rewrite (checkpoint) without changing their content."""
    out = {}
    for dirpath, _, names in os.walk(root):
        for n in names:
            p = os.path.join(dirpath, n)
            if not os.path.isfile(p) or n.endswith(("-wal", "-shm", "-journal")):
                continue
            with open(p, "rb") as f:
                data = f.read()
            if data.startswith(b"SQLite format 3\0"):
                continue
            out[os.path.relpath(p, root)] = (hashlib.sha256(data).hexdigest(),
                                             os.stat(p).st_mode & 0o777)
    return out


# ---------------------------------------------------------------- init

def test_init_creates_data_dir(tmp_path):
    d = tmp_path / "data"
    run_cli(d, "init")
    assert d.is_dir()
    assert any(d.iterdir()), "init left the data dir empty"


def test_init_is_idempotent_and_keeps_keys_and_data(portico, cli):
    cli("db", "import", "dw", "s", "t", portico.write("t.csv", "id,name\n1,Ann\n2,Bob\n"))
    portico.add_script("keep", "def handler(request):\n    return 'kept-v1'\n")
    portico.add_endpoint("keep", "/keep")
    before = file_digests(portico.data)
    all_before = {os.path.relpath(os.path.join(dp, n), portico.data)
                  for dp, _, ns in os.walk(portico.data) for n in ns}

    cp = cli("init")
    assert cp.returncode == 0

    after = file_digests(portico.data)
    for name, digest in before.items():
        assert after.get(name) == digest, f"init changed or removed {name}"
    all_after = {os.path.relpath(os.path.join(dp, n), portico.data)
                 for dp, _, ns in os.walk(portico.data) for n in ns}
    missing = {f for f in all_before - all_after if not f.endswith(("-wal", "-shm", "-journal"))}
    assert not missing, f"init removed {missing}"
    assert "kept-v1" in cli("script", "show", "keep").stdout
    assert "keep" in cli("endpoint", "list").stdout
    rows = cli("db", "query", "dw", "select name from s.t order by id").stdout
    assert "Ann" in rows and "Bob" in rows


def test_data_dir_from_env_and_default(tmp_path):
    envdir = tmp_path / "from-env"
    run_cli(None, "init", env={"PORTICO_DATA": str(envdir)})
    assert envdir.is_dir() and any(envdir.iterdir())

    cwd = tmp_path / "cwd"
    cwd.mkdir()
    run_cli(None, "init", cwd=str(cwd))
    default = cwd / "portico-data"
    assert default.is_dir() and any(default.iterdir())


# ---------------------------------------------------------------- script

def test_script_add_list_show_versions_rollback_rm(portico, cli):
    for v in (1, 2, 3):
        portico.add_script("greet", f"def handler(request):\n    return 'marker-v{v}'\n")

    listing = cli("script", "list").stdout
    assert "greet" in listing

    cur = cli("script", "show", "greet").stdout
    assert "marker-v3" in cur and "marker-v2" not in cur and "marker-v1" not in cur
    for v in (1, 2, 3):
        shown = cli("script", "show", "greet", "--version", str(v)).stdout
        assert f"marker-v{v}" in shown
        assert all(f"marker-v{o}" not in shown for o in (1, 2, 3) if o != v)

    cli("script", "rollback", "greet")                       # to the previous version
    cur = cli("script", "show", "greet").stdout
    assert "marker-v2" in cur and "marker-v3" not in cur, cur

    cli("script", "rollback", "greet", "1")
    cur = cli("script", "show", "greet").stdout
    assert "marker-v1" in cur and "marker-v2" not in cur and "marker-v3" not in cur, cur

    cli("script", "rm", "greet")
    assert "greet" not in cli("script", "list").stdout
    assert_cli_error(cli("script", "show", "greet", check=False), "greet")


def test_script_show_prints_the_source(portico, cli):
    src = "import json\n\ndef handler(request):\n    return {'a': 1}  # some comment\n"
    portico.add_script("src", src)
    assert src.strip() in cli("script", "show", "src").stdout


def test_script_unknown_version(portico, cli):
    portico.add_script("onev", "def handler(request):\n    return 1\n")
    assert_cli_error(cli("script", "show", "onev", "--version", "99", check=False))
    assert_cli_error(cli("script", "rollback", "onev", "99", check=False))


def test_script_syntax_error_refused_with_line_number(portico, cli):
    path = portico.write("bad.py", """\
        def handler(request):
            x = 1
            return (x +
        """)
    cp = cli("script", "add", "bad", path, check=False)
    # Python reports an unclosed paren at line 3 ("'(' was never closed").
    err = assert_cli_error(cp)
    assert re.search(r"line\D{0,3}3\b", err), f"no line number in {err!r}"
    assert "bad" not in cli("script", "list").stdout

    path = portico.write("bad2.py", "def handler(request):\n    return 1\n\nif True\n    pass\n")
    err = assert_cli_error(cli("script", "add", "bad2", path, check=False))
    assert re.search(r"line\D{0,3}4\b", err), f"no line number in {err!r}"


def test_script_syntax_error_keeps_previous_version(portico, cli):
    portico.add_script("stay", "def handler(request):\n    return 'good-version'\n")
    cp = portico.add_script("stay", "def handler(request:\n    return 1\n", check=False)
    assert_cli_error(cp)
    assert "good-version" in cli("script", "show", "stay").stdout


def test_script_add_missing_file(portico, cli):
    missing = os.path.join(portico.scratch, "no-such-file.py")
    err = assert_cli_error(cli("script", "add", "x", missing, check=False))
    assert "no-such-file.py" in err
    assert "x" not in cli("script", "list").stdout.split()


@pytest.mark.parametrize("args", [
    ("script", "show", "nope"),
    ("script", "rm", "nope"),
    ("script", "rollback", "nope"),
    ("endpoint", "show", "nope"),
    ("endpoint", "rm", "nope"),
    ("db", "query", "nope", "select 1"),
])
def test_unknown_names(cli, args):
    assert_cli_error(cli(*args, check=False), "nope")


def test_unknown_command(cli):
    cp = cli("frobnicate", check=False)
    assert cp.returncode != 0
    assert output(cp).strip()


# ---------------------------------------------------------------- endpoint

@pytest.fixture
def hello(portico):
    portico.add_script("hello", "def handler(request):\n    return {'hello': 'world'}\n")
    return portico


def test_endpoint_add_list_show_rm(hello, cli):
    hello.add_endpoint("ep1", "/customers/{id}", script="hello", methods="GET,POST")
    hello.add_endpoint("ep2", "/mcp/*/*", script="hello")
    listing = cli("endpoint", "list").stdout
    assert "ep1" in listing and "/customers/{id}" in listing
    assert "ep2" in listing and "/mcp/*/*" in listing

    shown = cli("endpoint", "show", "ep1").stdout
    assert re.search(r"https?://[\w.\-:\[\]]+/customers/\{id\}", shown), shown
    assert "hello" in shown

    cli("endpoint", "rm", "ep1")
    listing = cli("endpoint", "list").stdout
    assert "ep1" not in listing and "ep2" in listing


def test_endpoint_show_prints_full_url(hello, cli):
    hello.add_endpoint("acc", "/accounts", script="hello")
    shown = cli("endpoint", "show", "acc").stdout
    assert re.search(r"\bhttps?://(127\.0\.0\.1|localhost|[\w.\-]+):\d+/accounts\b", shown), shown


def test_endpoint_auth_required(hello, cli):
    cp = hello.add_endpoint("noauth", "/noauth", script="hello", auth=None, check=False)
    assert_cli_error(cp, "auth")
    assert "noauth" not in cli("endpoint", "list").stdout


@pytest.mark.parametrize("auth", ["jwt", "apikey"])
def test_endpoint_auth_jwt_apikey_never_open(hello, cli, server, auth):
    """Issue 2: jwt/apikey are refused with a clear message until the security issue lands,
    "rather than accepted on an endpoint that cannot authenticate". Once accepted, the endpoint
    must therefore refuse a request that carries no credentials."""
    cp = hello.add_endpoint("sec", "/sec", script="hello", auth=auth, check=False)
    if cp.returncode != 0:
        assert_cli_error(cp, auth)
        assert "sec" not in cli("endpoint", "list").stdout
        return
    s = server()
    r = s.get("/sec")
    assert r.status_code == 401, f"--auth {auth} endpoint answered {r.status_code} without credentials"
    assert "hello" not in r.text


def test_endpoint_auth_unknown_value(hello, cli):
    cp = hello.add_endpoint("weird", "/weird", script="hello", auth="maybe", check=False)
    assert_cli_error(cp)


@pytest.mark.parametrize("path", ["/_portico/health", "/_portico/x", "/webhook/abc",
                                  "/webhook/{token}"])
def test_endpoint_reserved_prefix_refused(hello, cli, path):
    cp = hello.add_endpoint("res", path, script="hello", check=False)
    assert_cli_error(cp)
    assert "res" not in cli("endpoint", "list").stdout.split()


@pytest.mark.parametrize("path", ["accounts", "", "/a//b", "/a b", "/{1x}", "/a/{id}/{id}",
                                  "/a{b}", "/x/{}", "/a/**"])
def test_endpoint_bad_path_refused(hello, cli, path):
    cp = hello.add_endpoint("badpath", path, script="hello", check=False)
    assert_cli_error(cp)
    assert "badpath" not in cli("endpoint", "list").stdout


def test_endpoint_bad_method_refused(hello, cli):
    cp = hello.add_endpoint("m", "/m", script="hello", methods="BREW", check=False)
    assert_cli_error(cp)


def test_endpoint_unknown_script_refused(portico, cli):
    cp = portico.add_endpoint("ghost", "/ghost", script="no-such-script", check=False)
    assert_cli_error(cp, "no-such-script")
    assert "ghost" not in cli("endpoint", "list").stdout


def test_endpoint_duplicate_name_or_path_refused(hello, cli):
    hello.add_endpoint("dup", "/dup", script="hello")
    assert_cli_error(hello.add_endpoint("dup", "/other", script="hello", check=False), "dup")
    assert_cli_error(hello.add_endpoint("dup2", "/dup", script="hello", check=False))
    listing = cli("endpoint", "list").stdout
    assert "/other" not in listing and "dup2" not in listing


# ---------------------------------------------------------------- db

def test_db_add_list(portico, cli):
    assert re.search(r"\bdw\b", cli("db", "list").stdout)
    assert cli("db", "add", "wh2", "--sqlite").stdout.startswith("connection wh2 added (sqlite, ")
    listing = cli("db", "list").stdout
    assert listing.splitlines()[0].split() == ["NAME", "KIND", "LOCATION"]
    assert re.search(r"\bdw\b", listing) and re.search(r"\bwh2\b", listing), listing
    lake = os.path.realpath(os.path.join(portico.scratch, "lake"))
    os.makedirs(lake)
    assert cli("db", "add", "lake", "--sqlite", lake).stdout == \
        f"connection lake added (sqlite, {lake})\n"
    cp = cli("db", "add", "lake", "--sqlite", check=False)
    assert cp.returncode == 1 and "already exists" in assert_cli_error(cp)
    assert_cli_error(cli("db", "add", "dw", "--sqlite", check=False), "built-in")
    assert cli("db", "rm", "lake").stdout == f"connection lake removed (its data stays in {lake})\n"
    cp = cli("db", "rm", "lake", check=False)
    assert cp.returncode == 1 and "lake" in assert_cli_error(cp)
    assert "lake" not in cli("db", "list").stdout


def test_db_import_csv_and_query(portico, cli):
    csv = portico.write("items.csv", """\
        id,name,amount,price
        1,Alice,9,1.5
        2,Bob,10,2.25
        3,"Carol, Jr.",11,3.0
        """)
    cli("db", "import", "dw", "sales", "items", csv)
    out = cli("db", "query", "dw", "select id, name from sales.items order by id").stdout
    assert out.index("Alice") < out.index("Bob") < out.index("Carol, Jr.")
    # Integer type inferred: max() over text would give '9'.
    out = cli("db", "query", "dw", "select max(amount) as m from sales.items").stdout
    assert re.search(r"\b11\b", out) and not re.search(r"\b9\b", out), out


def test_db_import_json_and_query(portico, cli):
    rows = [{"id": 1, "city": "Ghent", "pop": 265000}, {"id": 2, "city": "Liège", "pop": 197000}]
    path = portico.write("cities.json", json.dumps(rows))
    cli("db", "import", "dw", "geo", "cities", path)
    out = cli("db", "query", "dw", "select city, pop from geo.cities order by id").stdout
    assert out.index("Ghent") < out.index("Liège")
    assert "265000" in out and "197000" in out


def test_db_import_infers_types(portico, cli):
    portico.write("typed.csv", "id,name,amount,price\n1,Alice,10,1.5\n2,Bob,20,2.25\n")
    cli("db", "import", "dw", "sales", "typed", os.path.join(portico.scratch, "typed.csv"))
    script = portico.write("dump.py", """\
        import json
        rows = pq.dbconnect('dw').fetch('dw', 'sales', 'typed')
        print(json.dumps(sorted(rows, key=lambda r: r['id'])))
        """)
    out = cli("run", script).stdout
    got = json.loads(out.strip().splitlines()[-1])
    assert got == [{"id": 1, "name": "Alice", "amount": 10, "price": 1.5},
                   {"id": 2, "name": "Bob", "amount": 20, "price": 2.25}]
    assert all(type(r["id"]) is int and type(r["price"]) is float for r in got)


def test_db_import_into_other_connection(portico, cli):
    cli("db", "add", "wh2", "--sqlite")
    cli("db", "import", "wh2", "crm", "people", portico.write("p.csv", "id,name\n7,Zed\n"))
    assert "Zed" in cli("db", "query", "wh2", "select name from crm.people").stdout
    assert cli("db", "query", "dw", "select name from crm.people", check=False).returncode != 0


def test_db_import_errors(portico, cli):
    missing = os.path.join(portico.scratch, "absent.csv")
    assert_cli_error(cli("db", "import", "dw", "s", "t", missing, check=False), "absent.csv")
    ok = portico.write("ok.csv", "id\n1\n")
    assert_cli_error(cli("db", "import", "nope", "s", "t", ok, check=False), "nope")


def test_db_import_keyed_json_and_refusals(portico, cli, cli_mode):
    rows = [{"sku": "a", "n": 1}, {"sku": "b", "n": 2}]
    path = portico.write("skus.json", json.dumps(rows))
    out = cli("db", "import", "dw", "inv", "skus", path, "--primary-key", "sku").stdout
    assert out.startswith("imported 2 rows into dw.inv.skus"), out
    bad = portico.write("bad.csv", "id,name\n1,a\n1,b\n")
    cp = cli("db", "import", "dw", "inv", "dup", bad, "--primary-key", "id", check=False)
    assert cp.returncode == 1 and "bad.csv" in assert_cli_error(cp)
    assert "dup" not in cli("db", "query", "dw", "select name from inv.sqlite_master").stdout
    if cli_mode == "server":
        big = portico.write("big.csv", "id\n" + "1\n" * (1100 << 10))
        cp = cli("db", "import", "dw", "inv", "big", big, check=False)
        assert cp.returncode == 1 and "at most" in assert_cli_error(cp)
        portico.cli("user", "add", "vi", "--role", "viewer", input=ADMIN_PASSWORD + "\n")
        vi = portico.cli_local("user", "token", "create", "vi").stdout.strip()
        ok = portico.write("ok.csv", "id\n1\n")
        cp = portico.cli_remote("db", "import", "dw", "inv", "v", ok, env={"PORTICO_TOKEN": vi},
                                check=False)
        assert cp.returncode == 1 and "editor" in assert_cli_error(cp)
        assert not [f for f in os.listdir(portico.data) if f.startswith(".import-")]
    assert json.loads(cli("db", "query", "dw", "select * from inv.skus order by sku",
                          "--json").stdout) == rows


def test_db_query_sql_error(cli):
    assert_cli_error(cli("db", "query", "dw", "select * from no_such_table_xyz", check=False))


DB_QUERY_TYPES = ("select 1 as i, 2.5 as f, 0.1 + 0.2 as g, null as n, 'a\tb\nc' as t,"
                  " x'00ff' as b, 'Liège' as u, json_object('k', json_array(1, 2.0)) as j")


def test_db_query_writes_and_shows_every_type(portico, cli, cli_mode):
    cli("db", "import", "dw", "s", "seed", portico.write("seed.csv", "id\n1\n"))
    cp = cli("db", "query", "dw", "create table s.qt (id integer primary key, v text)")
    assert cp.stdout == "(0 rows changed)\n"
    cp = cli("db", "query", "dw", "insert into s.qt (v) values ('x'), ('y')")
    assert cp.stdout == "(2 rows changed)\n"
    assert cli("db", "query", "dw", "update s.qt set v = 'z' where id = 1").stdout == \
        "(1 row changed)\n"
    assert json.loads(cli("db", "query", "dw", "select * from s.qt order by id", "--json")
                      .stdout) == [{"id": 1, "v": "z"}, {"id": 2, "v": "y"}]
    assert cli("db", "query", "dw", "delete from s.qt where id = 2", "--json").stdout == "[]\n"
    table = cli("db", "query", "dw", DB_QUERY_TYPES).stdout
    lines = table.splitlines()
    assert lines[0].split() == ["i", "f", "g", "n", "t", "b", "u", "j"]
    assert lines[2].split() == ["1", "2.5", "0.30000000000000004", "NULL", "a\\tb\\nc",
                                "X'00ff'", "Liège", '{"k":[1,2.0]}'], table
    assert lines[3] == "(1 row)"
    js = cli("db", "query", "dw", DB_QUERY_TYPES, "--json").stdout
    assert json.loads(js) == [{"i": 1, "f": 2.5, "g": 0.30000000000000004, "n": None,
                               "t": "a\tb\nc", "b": "AP8=", "u": "Liège",
                               "j": '{"k":[1,2.0]}'}]
    if cli_mode == "server":  # byte for byte what the data dir prints
        for args in ((DB_QUERY_TYPES,), (DB_QUERY_TYPES, "--json"),
                     ("select * from s.qt",), ("select * from s.qt where 0",)):
            assert portico.cli_remote("db", "query", "dw", *args).stdout == \
                portico.cli_local("db", "query", "dw", *args).stdout
        # Admin only: an editor's token is refused and nothing runs.
        portico.cli("user", "add", "ed", "--role", "editor", input=ADMIN_PASSWORD + "\n")
        ed = portico.cli_local("user", "token", "create", "ed").stdout.strip()
        cp = portico.cli_remote("db", "query", "dw", "delete from s.qt", env={"PORTICO_TOKEN": ed},
                                check=False)
        assert cp.returncode == 1 and "admin" in assert_cli_error(cp)
        assert "(1 row)" in cli("db", "query", "dw", "select * from s.qt").stdout
        # At most 1000 rows back, and the CLI says so.
        cp = cli("db", "query", "dw", "with recursive c(x) as (select 1 union all select x + 1"
                 " from c where x < 1005) select x from c")
        assert cp.stdout.splitlines()[-1] == "(1000 rows)"
        assert "only the first 1000 rows" in cp.stderr
    cp = cli("db", "query", "nope", "select 1", check=False)
    assert cp.returncode == 1 and "nope" in assert_cli_error(cp)


# ---------------------------------------------------------------- run

def test_run_with_pq(portico, cli):
    script = portico.write("job.py", """\
        rows = pq.dbconnect('dw').fetch('dw', query='select 1 as x')
        print("rows:", rows)
        """)
    cp = cli("run", script)
    assert "rows: [{'x': 1}]" in cp.stdout


def test_run_import_pq_and_write_data(portico, cli):
    cli("db", "import", "dw", "s", "n", portico.write("n.csv", "id,v\n1,one\n"))
    script = portico.write("job2.py", """\
        import pq
        db = pq.dbconnect('dw')
        print(sorted(r['v'] for r in db.fetch('dw', 's', 'n')))
        """)
    assert "['one']" in cli("run", script).stdout


def test_run_exception_exits_nonzero_with_traceback(portico, cli):
    script = portico.write("boom.py", "raise RuntimeError('boom-marker')\n")
    cp = cli("run", script, check=False)
    assert cp.returncode != 0
    assert "boom-marker" in cp.stderr and "Traceback" in cp.stderr


def test_run_missing_file(portico, cli):
    missing = os.path.join(portico.scratch, "gone.py")
    assert_cli_error(cli("run", missing, check=False), "gone.py")


# ---------------------------------------------------------------- user, audit (both modes)

def test_user_commands(portico, cli):
    cli("user", "add", "boss", "--role", "admin", input="boss password\n")
    cp = cli("user", "add", "zed", "--role", "editor", input="zeds password\n")
    assert cp.stdout == "user zed added (editor)\n"
    cp = cli("user", "add", "zed", "--role", "editor", input="zeds password\n", check=False)
    assert cp.returncode == 1 and "already exists" in assert_cli_error(cp)
    cp = cli("user", "add", "yan", "--role", "owner", input="x\n", check=False)
    assert cp.returncode == 1 and "--role" in assert_cli_error(cp)
    cp = cli("user", "add", "yan", "--role", "viewer", input="short\n", check=False)
    assert cp.returncode == 1 and "at least" in assert_cli_error(cp)
    assert "yan" not in cli("user", "list").stdout
    assert cli("user", "passwd", "zed", input="zeds new password\n").stdout == \
        "password of zed changed; its sessions are ended\n"
    assert cli("user", "role", "zed", "viewer").stdout == "user zed is now viewer\n"
    rows = {l.split()[0]: l.split()[1] for l in cli("user", "list").stdout.splitlines()[1:]}
    assert rows["zed"] == "viewer"

    cp = cli("user", "token", "create", "zed", "--name", "ci", "--expires", "1d")
    token = cp.stdout.strip()
    assert token.startswith("pat_") and "shown once; expires" in cp.stderr
    tid = re.search(r"admin API token (at_\w+) for zed", cp.stderr).group(1)
    listing = cli("user", "token", "list", "zed").stdout
    assert tid in listing and " ci " in listing
    assert tid in cli("user", "token", "list").stdout
    assert cli("user", "token", "revoke", tid).stdout == f"admin API token {tid} revoked\n"
    row = [l for l in cli("user", "token", "list", "zed").stdout.splitlines() if tid in l][0]
    assert not row.rstrip().endswith(" -"), row
    assert_cli_error(cli("user", "token", "revoke", "at_00000000", check=False), "at_00000000")
    assert_cli_error(cli("user", "token", "list", "nobody", check=False), "nobody")

    assert cli("user", "rm", "zed").stdout == "user zed removed\n"
    cp = cli("user", "rm", "zed", check=False)
    assert cp.returncode == 1 and "no user" in assert_cli_error(cp)


def test_token_apikey_secret_auth_commands(portico, cli):
    """The install's JWTs, API keys, secrets and trusted issuers: the same output and exit
    statuses on the data dir and through --server."""
    portico.add_script("who", "def handler(request):\n    return 1\n")
    portico.add_endpoint("who", "/who", script="who", auth="jwt")
    cp = cli("token", "create", "--name", "ci", "--expires", "1d", "--endpoint", "who",
             "--rate", "10/min")
    assert cp.stdout.count(".") == 2 and re.match(r"token [0-9a-f]{16} \(name ci\) created; "
                                                  r"expires \d{4}-", cp.stderr)
    tid = cp.stderr.split()[1]
    rows = cli("token", "list").stdout.splitlines()
    assert rows[0].split() == ["ID", "NAME", "CREATED", "EXPIRES", "SCOPE", "RATE", "REVOKED",
                               "LAST", "USED"]
    row = [r for r in rows if r.startswith(tid)][0]
    assert " ci " in row and " who " in row and " 10/min " in row and row.endswith("never")
    assert_cli_error(cli("token", "create", "--expires", "soon", check=False), "--expires")
    assert_cli_error(cli("token", "create", "--endpoint", "nope", check=False), "nope")
    assert cli("token", "revoke", tid).stdout == f"token {tid} revoked\n"
    cp = cli("token", "revoke", "0000000000000000", check=False)
    assert cp.returncode == 1 and assert_cli_error(cp)

    cp = cli("apikey", "create", "partner", "--endpoint", "who")
    key = cp.stdout.strip()
    assert len(key) > 20 and "API key partner created (id " in cp.stderr
    row = cli("apikey", "ls").stdout.splitlines()[1]
    assert row.split()[:3] == ["partner", row.split()[1], key[:len(row.split()[2]) - 3] + "..."]
    cp = cli("apikey", "create", "partner", check=False)
    assert cp.returncode == 1 and assert_cli_error(cp)
    assert_cli_error(cli("apikey", "create", "bad name", check=False), "invalid")
    assert cli("apikey", "revoke", "partner").stdout == "API key partner revoked\n"

    cp = cli("secret", "set", "db password", input="s3cret value\n")
    assert re.fullmatch(r"secret db password stored \(12 bytes, encrypted under master key "
                        r"\S+\)\n", cp.stdout), cp.stdout
    assert cli("secret", "set", "db password", "--value", "other").stdout.startswith(
        "secret db password stored (5 bytes")
    listing = cli("secret", "list").stdout
    assert listing.splitlines()[0].split() == ["NAME", "CREATED", "UPDATED"]
    assert "db password" in listing and "s3cret" not in listing and "other" not in listing
    assert_cli_error(cli("secret", "set", "x", input="", check=False), "empty")
    assert cli("secret", "rm", "db password").stdout == "secret db password removed\n"
    assert_cli_error(cli("secret", "rm", "db password", check=False), "db password")

    from cryptography.hazmat.primitives.asymmetric import ec
    from jwt.algorithms import ECAlgorithm
    jwk = json.loads(ECAlgorithm.to_jwk(ec.generate_private_key(ec.SECP256R1()).public_key()))
    jwk.update(kid="ec-1", use="sig")
    jwks = portico.write("jwks.json", json.dumps({"keys": [jwk]}))
    out = cli("auth", "trust", "--issuer", "https://idp.example", "--jwks", jwks,
              "--audience", "api").stdout
    assert out.startswith("trusting tokens from https://idp.example for audience api with 1 key:\n"
                          "  ") and "ec-1" in out
    rows = cli("auth", "list").stdout.splitlines()
    assert rows[0].split() == ["ISSUER", "AUDIENCE", "KEYS", "TRUSTED", "SINCE"]
    assert rows[1].split()[:3] == ["https://idp.example", "api", "1"]
    bad = portico.write("bad.json", "{\"keys\": 1}")
    assert_cli_error(cli("auth", "trust", "--issuer", "x", "--jwks", bad, check=False), bad)
    assert cli("auth", "untrust", "https://idp.example").stdout == \
        "tokens from https://idp.example are no longer accepted\n"
    assert_cli_error(cli("auth", "untrust", "https://idp.example", check=False))
    assert len(cli("auth", "list").stdout.splitlines()) == 1


def test_webhook_url_rotate_sources_replay(portico, cli):
    env = {"PORTICO_URL": "https://api.example.com/"}
    url = cli("webhook", "url", env=env).stdout.strip()
    assert re.fullmatch(r"https://api\.example\.com/webhook/\S+", url), url
    assert cli("webhook", "url", "--base", "http://h:1").stdout.strip() == \
        "http://h:1" + url[len("https://api.example.com"):]
    cp = cli("webhook", "rotate", env=env)
    assert cp.stdout.strip() != url and "no longer accepts events" in cp.stderr
    url = cp.stdout.strip()
    assert cli("webhook", "url", env=env).stdout.strip() == url
    portico.add_script("hook", "def handler(request):\n    return 1\n")
    cp = cli("webhook", "source", "add", "gh", "--script", "hook", env=env)
    assert cp.stdout == url + "/gh\n"
    assert_cli_error(cli("webhook", "source", "add", "gh", check=False), "gh")
    assert_cli_error(cli("webhook", "source", "add", "x", "--header", "H", check=False),
                     "--header")
    rows = cli("webhook", "source", "list").stdout.splitlines()
    assert rows[0].split() == ["NAME", "VERIFY", "SECRET", "DEDUP", "HEADER", "SCRIPT", "CREATED"]
    assert rows[2].split()[:5] == ["gh", "none", "-", "-", "hook"]
    assert_cli_error(cli("webhook", "replay", "99", check=False), "99")
    assert_cli_error(cli("webhook", "replay", "x", check=False), "invalid event id")
    assert cli("webhook", "source", "rm", "gh").stdout == "removed webhook source gh\n"
    assert_cli_error(cli("webhook", "source", "rm", "gh", check=False), "gh")
    cp = cli("webhook", "source", "list")
    assert cp.stdout == "" and "no webhook sources" in cp.stderr


def test_audit_records_cli_changes(portico, cli, cli_mode):
    portico.add_script("aud", "def handler(request):\n    return 1\n")
    cli("script", "rm", "aud")
    entries = json.loads(cli("audit", "--json", "--limit", "2").stdout)
    assert [e["object"] for e in entries] == ["aud", "aud"]
    assert entries[0]["detail"] == {"script": "aud"}
    assert entries[1]["detail"] == {"script": "aud", "version": 1}
    if cli_mode == "server":
        # Through the API: the token's name and the route.
        assert {e["actor"] for e in entries} == {"token:" + RemotePortico.USER}
        assert entries[0]["action"] == "DELETE /scripts/{name}"
    else:
        # On the data dir: the login name and the command.
        assert all(e["actor"].startswith("cli:") for e in entries)
        assert [e["action"] for e in entries] == ["script.rm", "script.add"]
    table = cli("audit", "--since", "1h").stdout
    assert table.splitlines()[0].split() == ["TIME", "ACTOR", "ACTION", "OBJECT", "DETAIL"]
    assert_cli_error(cli("audit", "--since", "soon", check=False), "--since")


def test_script_diff_and_endpoint_set(hello, cli):
    hello.add_script("hello", "def handler(request):\n    return {'hello': 'again'}\n")
    diff = cli("script", "diff", "hello").stdout
    assert "--- hello v1" in diff and "+++ hello v2" in diff and "+    return {'hello': 'again'}" in diff
    assert cli("script", "diff", "hello", "--from", "2", "--to", "1").stdout.startswith("--- hello v2")
    assert_cli_error(cli("script", "diff", "hello", "--from", "9", check=False))
    hello.add_endpoint("hi", "/hi", script="hello")
    out = cli("endpoint", "set", "hi", "--path", "/hi2", "--method", "GET,POST").stdout
    assert out.startswith("endpoint hi: GET, POST http") and "/hi2 (script hello, auth public)" in out
    assert_cli_error(cli("endpoint", "set", "hi", "--auth", "maybe", check=False), "maybe")
    assert_cli_error(cli("endpoint", "set", "nope", "--path", "/x", check=False), "nope")
    assert "/hi2" in cli("endpoint", "show", "hi").stdout


# ---------------------------------------------------------------- --server only

@pytest.fixture
def remote(tmp_path):
    p = start_remote_portico(make_portico(tmp_path))
    yield p
    p.close()


def test_same_output_on_the_data_dir_and_through_the_server(remote):
    remote.add_script("same", "def handler(request):\n    return 1\n")
    remote.add_script("same", "def handler(request):\n    return 2\n")
    remote.add_endpoint("same", "/same/{id}", script="same", methods="GET,POST")
    remote.cli("user", "add", "ann", "--role", "viewer", input=ADMIN_PASSWORD + "\n")
    for args in [("script", "list"), ("script", "show", "same"), ("script", "show", "same", "--info"),
                 ("script", "show", "--id", "1", "--version", "1"), ("script", "diff", "same"),
                 ("endpoint", "list"), ("endpoint", "show", "same"), ("user", "list"),
                 ("audit", "--json"), ("audit", "--limit", "3"),
                 ("script", "show", "nope"), ("endpoint", "rm", "nope"),
                 ("script", "rollback", "same", "7"), ("user", "role", "ann", "boss"),
                 ("token", "list"), ("apikey", "list"), ("secret", "list"), ("auth", "list"),
                 ("token", "revoke", "nope"), ("secret", "rm", "nope"),
                 ("auth", "untrust", "nope"), ("db", "list"), ("db", "rm", "nope"),
                 ("webhook", "url"), ("webhook", "source", "list"), ("webhook", "replay", "7")]:
        local = remote.cli_local(*args, check=False)
        far = remote.cli_remote(*args, check=False)
        assert (far.returncode, far.stdout, far.stderr) == \
            (local.returncode, local.stdout, local.stderr), args


def test_remote_connection_and_token_errors(remote, tmp_path):
    cwd = str(tmp_path)
    cp = run_cli(None, "--server", f"http://127.0.0.1:{free_port_closed()}", "script", "list",
                 env={"PORTICO_TOKEN": remote.token}, cwd=cwd, check=False)
    assert cp.returncode == 1 and "cannot reach" in assert_cli_error(cp)
    cp = run_cli(None, "--server", "ftp://127.0.0.1:1", "script", "list",
                 env={"PORTICO_TOKEN": remote.token}, cwd=cwd, check=False)
    assert cp.returncode == 1 and "https://" in assert_cli_error(cp)
    cp = run_cli(None, "--server", remote.server.admin_url, "script", "list", cwd=cwd,
                 env={"PORTICO_TOKEN": ""}, check=False)
    assert cp.returncode == 1 and "PORTICO_TOKEN" in assert_cli_error(cp)
    cp = remote.cli_remote("script", "list", env={"PORTICO_TOKEN": "pat_00000000_nope"},
                           check=False)
    assert cp.returncode == 1 and "PORTICO_TOKEN" in assert_cli_error(cp)
    # The public listener is not the admin API.
    cp = run_cli(None, "--server", remote.server.url, "script", "list", cwd=cwd,
                 env={"PORTICO_TOKEN": remote.token}, check=False)
    assert cp.returncode == 1 and "admin listener" in assert_cli_error(cp)
    # PORTICO_SERVER instead of --server.
    cp = run_cli(None, "script", "list", cwd=cwd, env={"PORTICO_SERVER": remote.server.admin_url,
                                                      "PORTICO_TOKEN": remote.token})
    assert cp.stdout.split() == ["ID", "NAME", "CURRENT", "VERSIONS", "MODE", "UPDATED"]


def test_remote_role_is_the_tokens(remote):
    remote.cli("user", "add", "vic", "--role", "viewer", input=ADMIN_PASSWORD + "\n")
    viewer = remote.cli_local("user", "token", "create", "vic").stdout.strip()
    env = {"PORTICO_TOKEN": viewer}
    assert remote.cli_remote("script", "list", env=env).returncode == 0
    path = remote.write("v.py", "def handler(request):\n    return 1\n")
    cp = remote.cli_remote("script", "add", "v", path, env=env, check=False)
    assert cp.returncode == 1 and "editor" in assert_cli_error(cp)
    assert "v" not in remote.cli("script", "list").stdout.split()
    cp = remote.cli_remote("user", "list", env=env, check=False)
    assert cp.returncode == 1 and "admin" in assert_cli_error(cp)


@pytest.mark.parametrize("args", [("secret", "rotate-master")])
def test_not_available_remotely_yet(remote, args):
    cp = remote.cli_remote(*args, check=False)
    assert cp.returncode == 2
    assert "not available remotely yet" in assert_cli_error(cp)


# ---------------------------------------------------------------- webhook events

WEBHOOK_EVENT_COLUMNS = ["id", "received_at", "source", "method", "path", "query_string",
                         "headers", "content_type", "body", "body_base64", "remote_addr",
                         "status", "attempts", "last_error"]


def test_webhook_events_after_an_id_oldest_first(portico, cli, cli_mode):
    cp = cli("webhook", "events")
    assert cp.stdout == "" and cp.stderr.strip() == "no events"
    assert json.loads(cli("webhook", "events", "--json").stdout) == []
    cli("webhook", "source", "add", "svc")
    s = portico.server if cli_mode == "server" else Server(portico, [])
    try:
        path = cli("webhook", "url", "--base", "http://x").stdout.strip()[len("http://x"):]
        ids = []
        for i in range(3):
            r = requests.post(s.url + path + "/svc?n=%d" % i, json={"i": i}, timeout=10)
            assert r.status_code == 200, r.text
            ids.append(r.json()["id"])
        r = requests.post(s.url + path, data=b"\xff\x00bin", timeout=10,
                          headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 200, r.text
        ids.append(r.json()["id"])
    finally:
        if cli_mode != "server":
            s.close()
    evs = json.loads(cli("webhook", "events", "--json").stdout)
    assert [e["id"] for e in evs] == ids
    assert all(list(e) == WEBHOOK_EVENT_COLUMNS for e in evs)
    assert [json.loads(e["body"]) for e in evs[:3]] == [{"i": 0}, {"i": 1}, {"i": 2}]
    assert evs[1]["query_string"] == "n=1" and evs[1]["source"] == "svc"
    assert evs[1]["path"] == "/webhook/{token}/svc" and isinstance(evs[1]["headers"], dict)
    assert evs[0]["body_base64"] == 0 and evs[3]["body_base64"] == 1 and evs[3]["source"] == ""
    assert type(evs[3]["body_base64"]) is int
    ev = json.loads(cli("webhook", "events", "--json", "--since", ids[0], "--limit", "1").stdout)
    assert [e["id"] for e in ev] == [ids[1]]
    ev = json.loads(cli("webhook", "events", "--json", "--source", "svc", "--since", ids[1]).stdout)
    assert [e["id"] for e in ev] == [ids[2]]
    out = cli("webhook", "events").stdout.splitlines()
    assert out[0].split() == ["ID", "RECEIVED", "SOURCE", "METHOD", "TYPE", "BYTES", "STATUS",
                              "ATTEMPTS", "LAST", "ERROR"]
    rows = [l.split() for l in out[2:]]
    assert [int(r[0]) for r in rows] == ids
    assert rows[0][2:] == ["svc", "POST", "application/json", "8", "received", "0", "-"]
    assert rows[3][2:] == ["-", "POST", "application/octet-stream", "5", "received", "0", "-"]
    cp = cli("webhook", "events", "--since", ids[-1])
    assert cp.stdout == "" and cp.stderr.strip() == "no events after that id"
    for bad in (("--limit", "0"), ("--since", "x")):
        cp = cli("webhook", "events", *bad, check=False)
        assert cp.returncode == 1 and bad[0] in assert_cli_error(cp)


def test_local_only_commands_ignore_portico_server(tmp_path):
    d = tmp_path / "d"
    cp = run_cli(d, "init", env={"PORTICO_SERVER": "http://127.0.0.1:1"})
    assert cp.returncode == 0 and d.is_dir()


def free_port_closed():
    """A port nothing listens on (bound, then released)."""
    import socket
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- https (--server https://...)

class TLSProxy:
    """A TLS-terminating TCP proxy in front of the admin listener, with a self-signed
    certificate for 127.0.0.1 made by `openssl req` (the server has no TLS listener yet)."""

    def __init__(self, tmp_path, target_url):
        import socket
        import ssl
        import subprocess
        import threading
        from urllib.parse import urlsplit
        self.cert = str(tmp_path / "cert.pem")
        key = str(tmp_path / "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", self.cert,
                        "-days", "1", "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1"],
                       check=True, capture_output=True)
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(self.cert, key)
        t = urlsplit(target_url)
        self.target = (t.hostname, t.port)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"https://127.0.0.1:{self.sock.getsockname()[1]}"
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        import socket
        import threading
        while True:
            try:
                raw, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.handle, args=(raw, socket), daemon=True).start()

    def handle(self, raw, socket):
        try:
            conn = self.ctx.wrap_socket(raw, server_side=True)
        except OSError:
            raw.close()  # a client that refused the certificate
            return
        up = socket.create_connection(self.target)
        try:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            head, _, rest = data.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                k, _, v = line.partition(b":")
                if k.strip().lower() == b"content-length":
                    length = int(v)
            while len(rest) < length:
                rest += conn.recv(65536)
            up.sendall(head + b"\r\n\r\n" + rest)
            while True:
                chunk = up.recv(65536)
                if not chunk:
                    break
                conn.sendall(chunk)
            conn.unwrap()
        except OSError:
            pass
        finally:
            up.close()
            conn.close()

    def close(self):
        self.sock.close()


@pytest.fixture
def tls(remote, tmp_path):
    proxy = TLSProxy(tmp_path, remote.server.admin_url)
    yield proxy
    proxy.close()


def test_https_server_with_cacert_or_portico_ca_file(remote, tls, tmp_path):
    cwd = str(tmp_path)
    env = {"PORTICO_TOKEN": remote.token}
    want = remote.cli_remote("script", "list").stdout
    cp = run_cli(None, "--server", tls.url, "--cacert", tls.cert, "script", "list", env=env,
                 cwd=cwd)
    assert cp.stdout == want
    cp = run_cli(None, "--server", tls.url, "token", "list", cwd=cwd,
                 env=dict(env, PORTICO_CA_FILE=tls.cert))
    assert cp.stdout.split()[:2] == ["ID", "NAME"]
    # Not trusted by the system store: one clear line, exit 1, nothing done.
    cp = run_cli(None, "--server", tls.url, "secret", "set", "s", "--value", "v", env=env,
                 cwd=cwd, check=False)
    assert cp.returncode == 1
    assert "certificate verify failed" in assert_cli_error(cp, "TLS", "--cacert")
    assert "s " not in remote.cli_local("secret", "list").stdout
    cp = run_cli(None, "--server", tls.url, "--cacert", str(tmp_path / "none.pem"), "script",
                 "list", env=env, cwd=cwd, check=False)
    assert cp.returncode == 1 and "none.pem" in assert_cli_error(cp, "CA file")
    # https to a plain-HTTP listener: a TLS error, not a hang.
    cp = run_cli(None, "--server", remote.server.admin_url.replace("http://", "https://"),
                 "--cacert", tls.cert, "script", "list", env=env, cwd=cwd, check=False)
    assert cp.returncode == 1 and assert_cli_error(cp, "TLS")
