"""Moving an SQLite install to a PostgreSQL store (`portico store migrate`, issue 11): every
table copied with its ids, the install then served from PostgreSQL with its old tokens, keys,
secrets, users and script history; the refusals that leave the SQLite install as it was; and a
master key rotation on a PostgreSQL store that re-seals the install keys for joining nodes."""

import fcntl
import os
import shutil
import sqlite3
import subprocess

import pgserver
from conftest import (ADMIN_PASSWORD, AdminClient, assert_cli_error, make_portico, pg_store_dsn,
                      run_cli)

V1 = "def handler(request):\n    return {'v': 1}\n"
V2 = "def handler(request):\n    return {'v': 2, 'who': request['auth']}\n"
SECRET = "def handler(request):\n    return {'s': pq.get_secret('partner')}\n"


def psql(dsn, sql):
    cp = subprocess.run([os.path.join(pgserver.PG_BIN, "psql"), "-X", "-q", "-A", "-t", "-v",
                         "ON_ERROR_STOP=1", "-d", dsn, "-c", sql],
                        capture_output=True, text=True, timeout=60)
    assert cp.returncode == 0, cp.stderr
    return cp.stdout.strip()


def sqlite_tables(path):
    with sqlite3.connect(path) as db:
        names = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                          "AND name NOT LIKE 'sqlite%'")]
        return {n: db.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0] for n in names}


def untouched(p, before):
    """The data dir still runs on its SQLite store, with what it held before."""
    assert os.path.exists(os.path.join(p.data, "portico.db"))
    assert not os.path.exists(os.path.join(p.data, "store.dsn"))
    assert not os.path.exists(os.path.join(p.data, "portico.db.migrated"))
    assert p.cli("script", "list").stdout == before


def test_migrate_everything(tmp_path, server):
    p = make_portico(tmp_path / "a")
    p.add_script("hello", V1)
    p.add_script("hello", V2)
    p.add_endpoint("hello", "/hello", auth="jwt")
    p.cli("endpoint", "set", "hello", "--timeout", "7s", "--cors", "https://a.example")
    p.add_script("keyed", V2)
    p.add_endpoint("keyed", "/keyed", auth="apikey")
    p.publish("secret", SECRET)
    p.add_script("gone", V1)
    p.cli("script", "rm", "gone")   # its id (4) must not be given again
    p.cli("secret", "set", "partner", input="s3cret\n")
    token = p.cli("token", "create", "--name", "ci").stdout.strip().splitlines()[-1]
    key = p.cli("apikey", "create", "acme").stdout.strip().splitlines()[-1]
    p.cli("user", "add", "ops", "--role", "admin", input=ADMIN_PASSWORD + "\n")
    p.cli("webhook", "source", "add", "gh")
    before = sqlite_tables(os.path.join(p.data, "portico.db"))
    assert before["audit"] > 5 and before["script_versions"] == 4

    dsn = pg_store_dsn()
    cp = p.cli("store", "migrate", "--to", dsn + " password=hunter2")
    assert "hunter2" not in cp.stdout + cp.stderr
    # One progress line per table, every table of the SQLite store covered.
    for table, n in before.items():
        assert f"  {table} " in cp.stdout and f" {n} row" in cp.stdout.split(f"  {table} ")[1]
    assert "portico.db.migrated" in cp.stdout
    assert not os.path.exists(os.path.join(p.data, "portico.db"))
    kept = os.path.join(p.data, "portico.db.migrated")
    assert sqlite_tables(kept) == before  # kept whole, for a rollback
    # Every table, with as many rows in PostgreSQL (settings: and the two sealed install
    # keys): a table added to the store later and not copied fails here.
    for table, n in before.items():
        extra = 2 if table == "settings" else 0
        assert int(psql(dsn, f'SELECT count(*) FROM "{table}"')) == n + extra, table

    # The CLI works on the new store; history and ids survive, and ids are never reused.
    show = p.cli("script", "show", "hello", "--version", "1").stdout
    assert "'v': 1" in show
    assert p.cli("script", "add", "fresh", p.write("f.py", V1)).returncode == 0
    ids = {line.split()[1]: int(line.split()[0])
           for line in p.cli("script", "list").stdout.splitlines()[1:]}
    assert ids["hello"] == 1 and ids["fresh"] > 4
    assert "7s" in p.cli("endpoint", "show", "hello").stdout

    s = server(p)
    r = s.get("/hello", headers={"Authorization": f"JWT {token}"})
    assert r.status_code == 200 and r.json()["v"] == 2, r.text
    assert s.get("/hello").status_code == 401
    r = s.get("/keyed", headers={"X-Api-Key": key})
    assert r.status_code == 200 and r.json()["who"] is not None, r.text
    r = s.get("/secret")
    assert r.status_code == 200 and r.json() == {"s": "s3cret"}, r.text
    admin = AdminClient(s.admin_url)
    assert admin.login("ops").status_code == 200
    r = admin.get("/webhooks/sources")
    assert r.status_code == 200 and "gh" in r.text, r.text


def test_refusals_leave_the_sqlite_install(tmp_path, server):
    p = make_portico(tmp_path / "a")
    p.publish("hello", V1)
    before = p.cli("script", "list").stdout

    cp = p.cli("store", "migrate", "--to", "mysql://nope", check=False)
    assert_cli_error(cp, "--to takes a PostgreSQL connection string")
    cp = p.cli("store", "migrate", "--to",
               "host=127.0.0.1 port=1 user=u password=pw dbname=d connect_timeout=2", check=False)
    assert "pw" not in assert_cli_error(cp, "cannot use", "metadata store").replace(
        "password=***", "")
    cp = p.cli("store", "migrate", check=False)
    assert cp.returncode == 2 and "usage" in cp.stderr
    untouched(p, before)

    # A server running on the data dir.
    dsn = pg_store_dsn()
    s = server(p)
    cp = p.cli("store", "migrate", "--to", dsn, check=False)
    assert_cli_error(cp, "a server is running", "stop it first")
    assert s.get("/hello").status_code == 200
    s.close()
    untouched(p, before)

    # A store that holds an install already: never merged.
    make_portico(tmp_path / "other", store=dsn)
    cp = p.cli("store", "migrate", "--to", dsn, check=False)
    assert_cli_error(cp, "already holds a Portico store", "nothing was changed")
    untouched(p, before)

    # A table of the same name: refused, and the transaction leaves nothing behind.
    dsn2 = pg_store_dsn()
    psql(dsn2, "CREATE TABLE audit(x int)")
    cp = p.cli("store", "migrate", "--to", dsn2, check=False)
    assert_cli_error(cp, "already has a table named audit")
    assert psql(dsn2, "SELECT count(*) FROM information_schema.tables "
                      "WHERE table_schema = current_schema()") == "1"
    untouched(p, before)

    # A row PostgreSQL refuses halfway through (text that is not UTF-8): the whole
    # transaction is rolled back, the target keeps no table and the SQLite store its row.
    psql(dsn2, "DROP TABLE audit")
    db = os.path.join(p.data, "portico.db")
    with sqlite3.connect(db) as c:
        good = c.execute("SELECT detail FROM audit WHERE id = 1").fetchone()[0]
        c.execute("UPDATE audit SET detail = CAST(X'C328' AS TEXT) WHERE id = 1")
    cp = p.cli("store", "migrate", "--to", dsn2, check=False)
    assert_cli_error(cp, "copy a row of audit", "nothing was changed")
    assert psql(dsn2, "SELECT count(*) FROM information_schema.tables "
                      "WHERE table_schema = current_schema()") == "0"
    untouched(p, before)
    with sqlite3.connect(db) as c:
        c.execute("UPDATE audit SET detail = ? WHERE id = 1", (good,))

    # The same target, emptied, takes it; a second run has nothing to do.
    p.cli("store", "migrate", "--to", dsn2)
    cp = p.cli("store", "migrate", "--to", dsn2, check=False)
    assert_cli_error(cp, "PostgreSQL already", "nothing to migrate")

    # While a migration holds the store lock, serve refuses to start.
    q = make_portico(tmp_path / "b")
    with open(os.path.join(q.data, "run", "store.lock"), "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        cp = run_cli(q.data, "serve", "--listen", "127.0.0.1:0", "--admin-listen", "off",
                     check=False)
        assert_cli_error(cp, "store migration", "is running")


def test_rotate_master_reseals_the_install_keys(tmp_path):
    dsn = pg_store_dsn()
    a = make_portico(tmp_path / "a", store=dsn)
    a.cli("secret", "set", "partner", input="s3cret\n")
    old = os.path.join(str(tmp_path), "old.key")
    shutil.copy2(os.path.join(a.data, "keys", "master.key"), old)
    out = a.cli("secret", "rotate-master").stdout
    assert "JWT and API-key keys" in out

    def join(name, key):
        data = os.path.join(str(tmp_path), name, "data")
        os.makedirs(os.path.join(data, "keys"), mode=0o700)
        os.chmod(data, 0o700)
        shutil.copy2(key, os.path.join(data, "keys", "master.key"))
        return data, run_cli(data, "init", "--store", dsn, check=False)

    data, cp = join("b", os.path.join(a.data, "keys", "master.key"))
    assert cp.returncode == 0 and "joined the existing install" in cp.stdout, cp.stderr
    for k in ("jwt.key", "apikey.key"):
        with open(os.path.join(a.data, "keys", k)) as fa, open(os.path.join(data, "keys", k)) as fb:
            assert fa.read() == fb.read()
    _, cp = join("c", old)
    assert_cli_error(cp, "does not open this install's keys")
