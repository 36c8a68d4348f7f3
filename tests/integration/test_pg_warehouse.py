"""A PostgreSQL default warehouse (`portico init --warehouse DSN`), and the PostgreSQL dialect of
the embedded SQLite warehouse.

Scripts are written the way Peliqan's help pages show them (dbconn = pq.dbconnect(pq.DW_NAME);
dbconn.execute(pq.DW_NAME, query=...); fetch/insert/update/upsert/delete with Peliqan's
positional arguments), and run unchanged on both warehouses: through HTTP handlers and through
`portico run`. A PostgreSQL server comes from pgserver.py.
"""

import json
import os
import re

import pytest

import pgserver
from conftest import Portico, assert_cli_error, make_portico, output, run_cli, start_module_server

PASSWORD = "s3cret-pw-7"


@pytest.fixture(scope="module")
def pg():
    if not pgserver.available():
        pytest.fail("PostgreSQL is not installed (apt-get install postgresql)", pytrace=False)
    with pgserver.PgServer() as server:
        server.psql("CREATE DATABASE warehouse")
        yield server


def pg_portico(base, pg):
    """A data dir whose default warehouse is the PostgreSQL database `warehouse`."""
    data = os.path.join(str(base), "data")
    cp = run_cli(data, "init", "--warehouse", pg.dsn("warehouse", password=PASSWORD))
    assert PASSWORD not in output(cp)
    return Portico(data, os.path.join(str(base), "files"))


# A handler as Peliqan's help pages write one: module-level dbconnect, then SQL a Peliqan
# warehouse runs (CREATE SCHEMA/TABLE IF NOT EXISTS with PostgreSQL types, TRUNCATE, ON CONFLICT,
# NOW(), casts), then the pq calls with Peliqan's positional arguments.
PELIQAN_HANDLER = r'''
dbconn = pq.dbconnect(pq.DW_NAME)

def handler(request):
    dbconn.execute(pq.DW_NAME, query='CREATE SCHEMA IF NOT EXISTS crm')
    dbconn.execute(pq.DW_NAME, query="""
        CREATE TABLE IF NOT EXISTS crm.accounts (
            id bigint PRIMARY KEY,
            name text,
            amount numeric(12, 2),
            seen timestamp,
            meta jsonb,
            active boolean DEFAULT true
        )""")
    dbconn.execute(pq.DW_NAME, query='TRUNCATE TABLE crm.accounts')
    dbconn.execute(pq.DW_NAME, query="""
        INSERT INTO crm.accounts (id, name, amount, seen, meta)
        VALUES (1, 'Acme', '12.50'::numeric, NOW(), '{"tier": "gold"}'::jsonb),
               (2, 'Globex', 3, '2024-05-01 13:45:00'::timestamp, NULL)
        ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name""")
    dbconn.execute(pq.DW_NAME, query="""
        INSERT INTO crm.accounts (id, name) VALUES (2, 'Globex Corp')
        ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name""")
    dbconn.execute(pq.DW_NAME, query=
        'ALTER TABLE crm.accounts ADD COLUMN IF NOT EXISTS region text')
    dbconn.execute(pq.DW_NAME, query=
        'ALTER TABLE crm.accounts ADD COLUMN IF NOT EXISTS region text')
    dbconn.insert(pq.DW_NAME, 'crm', 'accounts', {'id': 3, 'name': 'Initech', 'amount': 7.25})
    dbconn.update(pq.DW_NAME, 'crm', 'accounts', 3, {'region': 'EU'})
    dbconn.upsert(pq.DW_NAME, 'crm', 'accounts', 4, {'id': 4, 'name': 'Umbrella'})
    dbconn.upsert(pq.DW_NAME, 'crm', 'accounts', 4, {'region': 'US'})
    dbconn.insert(pq.DW_NAME, 'crm', 'accounts', {'id': 5, 'name': 'Gone'})
    dbconn.delete(pq.DW_NAME, 'crm', 'accounts', 5)
    rows = dbconn.fetch(pq.DW_NAME, 'crm', 'accounts')
    q = dbconn.fetch(pq.DW_NAME, query="""
        SELECT id::text AS id, amount::int AS whole, seen::date = CURRENT_DATE AS today,
               name ILIKE 'acme' AS is_acme
        FROM crm.accounts ORDER BY id""")
    n = dbconn.fetch(pq.DW_NAME, query='SELECT count(*)::int AS n FROM crm.accounts')
    return {'kind': request['query'].get('kind'),
            'rows': sorted([dict(r) for r in rows], key=lambda r: r['id']),
            'query': [dict(r) for r in q], 'n': n[0]['n']}
'''


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def wh(request, tmp_path_factory, pg):
    base = tmp_path_factory.mktemp("wh-" + request.param)
    portico = make_portico(base) if request.param == "sqlite" else pg_portico(base, pg)
    portico.publish("accounts", PELIQAN_HANDLER)
    server = start_module_server(portico)
    yield request.param, portico, server
    server.close()


def test_peliqan_style_handler_same_values_on_both_warehouses(wh, pg):
    kind, portico, server = wh
    for _ in range(2):  # a second run finds the schema and the table, and TRUNCATE empties it
        r = server.get("/accounts", params={"kind": kind})
        assert r.status_code == 200, f"{r.status_code}: {r.text}\n{server.log[-3000:]}"
        out = r.json()
        assert out["n"] == 4
        rows = out["rows"]
        assert [r["id"] for r in rows] == [1, 2, 3, 4]
        assert [r["name"] for r in rows] == ["Acme", "Globex Corp", "Initech", "Umbrella"]
        assert rows[0]["amount"] == 12.5 and rows[1]["amount"] == 3 and rows[2]["amount"] == 7.25
        assert rows[3]["amount"] is None
        assert [r["region"] for r in rows] == [None, None, "EU", "US"]
        meta = rows[0]["meta"]
        assert (json.loads(meta) if isinstance(meta, str) else meta) == {"tier": "gold"}
        assert rows[1]["seen"].startswith("2024-05-01T13:45:00")
        assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", rows[0]["seen"]), rows[0]["seen"]
        q = out["query"]
        assert [r["id"] for r in q] == ["1", "2", "3", "4"]
        assert [r["whole"] for r in q] == [13, 3, 7, None]  # PostgreSQL rounds
        assert bool(q[0]["today"]) is True and bool(q[1]["today"]) is False
        assert [bool(r["is_acme"]) for r in q] == [True, False, False, False]
    if kind == "postgres":
        # The rows are in the PostgreSQL database, not in an embedded file.
        assert pg.psql("SELECT id, name FROM crm.accounts ORDER BY id",
                       dbname="warehouse").splitlines() == ["1|Acme", "2|Globex Corp", "3|Initech",
                                                       "4|Umbrella"]
        assert not os.path.exists(os.path.join(portico.data, "warehouse", "dw", "crm.db"))


def test_portico_run_script_on_the_warehouse(wh, pg):
    kind, portico, _ = wh
    script = portico.write(f"load_{kind}.py", """
        dbconn = pq.dbconnect(pq.DW_NAME)
        dbconn.execute(pq.DW_NAME, 'CREATE SCHEMA IF NOT EXISTS staging')
        dbconn.execute(pq.DW_NAME, 'DROP TABLE IF EXISTS staging.orders, staging.old CASCADE')
        dbconn.execute(pq.DW_NAME, 'CREATE TABLE staging.orders (id serial PRIMARY KEY, '
                                   'ref varchar(20), total double precision, '
                                   'created_at timestamp with time zone DEFAULT now())')
        for ref, total in [('A-1', 10.5), ('A-2', 20.0), ('A-3', 1.25)]:
            dbconn.execute(pq.DW_NAME, "INSERT INTO staging.orders (ref, total) VALUES ('"
                           + ref + "', " + str(total) + ")")
        rows = dbconn.fetch(pq.DW_NAME, query='SELECT id, ref, total, created_at '
                                              'FROM staging.orders ORDER BY id')
        print('ids', [r['id'] for r in rows])
        print('refs', [r['ref'] for r in rows])
        print('total', sum(r['total'] for r in rows))
        print('stamped', all(r['created_at'] for r in rows))
        dbconn.execute(pq.DW_NAME, 'TRUNCATE staging.orders RESTART IDENTITY')
        dbconn.execute(pq.DW_NAME, "INSERT INTO staging.orders (ref, total) VALUES ('B-1', 1)")
        print('after', [(r['id'], r['ref']) for r in dbconn.fetch(pq.DW_NAME, 'staging', 'orders')])
        """)
    cp = portico.cli("run", script)
    out = cp.stdout
    assert "ids [1, 2, 3]" in out, output(cp)
    assert "refs ['A-1', 'A-2', 'A-3']" in out
    assert "total 31.75" in out
    assert "stamped True" in out
    assert "after [(1, 'B-1')]" in out


def test_sqlite_dialect_errors_are_clear(tmp_path):
    portico = make_portico(tmp_path)
    script = portico.write("bad.py", """
        dbconn = pq.dbconnect(pq.DW_NAME)
        for q in ["SELECT now() - interval '1 day'",
                  "SELECT '{1,2}'::int[]",
                  "TRUNCATE TABLE nosuchschema.t",
                  'TRUNCATE "x""; DROP TABLE y; --"',
                  "CREATE SCHEMA s1",
                  "CREATE SCHEMA s1"]:
            try:
                dbconn.execute(pq.DW_NAME, q)
                print('ok', q)
            except pq.Error as e:
                print('error', q, '->', e)
        """)
    out = portico.cli("run", script).stdout
    assert "interval type" in out
    assert "no array types" in out
    assert re.search(r"error TRUNCATE TABLE nosuchschema\.t -> .*nosuchschema", out), out
    assert re.search(r'error TRUNCATE "x.*cannot read this TRUNCATE', out), out
    assert "ok CREATE SCHEMA s1" in out
    assert 'schema "s1" already exists' in out


def test_init_warehouse_stores_dsn_without_showing_password(tmp_path, pg):
    data = str(tmp_path / "data")
    cp = run_cli(data, "init", "--warehouse", pg.dsn("warehouse", password=PASSWORD))
    assert "default warehouse dw: postgres" in cp.stdout
    assert "password=***" in cp.stdout and PASSWORD not in output(cp)
    listing = run_cli(data, "db", "list").stdout
    assert PASSWORD not in listing
    lines = {line.split()[0]: line.split()[1] for line in listing.splitlines()[1:] if line.strip()}
    assert lines["dw"] == "postgres" and lines["embedded"] == "sqlite"
    # Running init again with the same DSN changes nothing; another one is refused.
    run_cli(data, "init", "--warehouse", pg.dsn("warehouse", password=PASSWORD))
    cp = run_cli(data, "init", "--warehouse", pg.dsn("postgres"), check=False)
    assert_cli_error(cp, "already set")
    # The environment variable does the same as the option.
    data2 = str(tmp_path / "data2")
    run_cli(data2, "init", env={"PORTICO_WAREHOUSE": pg.dsn("warehouse")})
    assert re.search(r"^dw\s+postgres", run_cli(data2, "db", "list").stdout, re.M)


def test_init_bad_warehouse_leaves_no_data_dir(tmp_path, pg):
    data = str(tmp_path / "data")
    bad = f"host=127.0.0.1 port=1 user=postgres dbname=x password={PASSWORD} connect_timeout=5"
    err = assert_cli_error(run_cli(data, "init", "--warehouse", bad, check=False),
                           "warehouse", "connect")
    assert PASSWORD not in err
    assert not os.path.exists(data)
    err = assert_cli_error(run_cli(data, "init", "--warehouse", pg.dsn("nosuchdb"), check=False),
                           "warehouse", "nosuchdb")
    assert not os.path.exists(data)
    assert_cli_error(run_cli(data, "init", "--warehouse", "mysql://u@h/db", check=False),
                     "postgresql")
    assert not os.path.exists(data)
    # An embedded warehouse is never switched to PostgreSQL: its data would be stranded.
    run_cli(data, "init")
    assert_cli_error(run_cli(data, "init", "--warehouse", pg.dsn("warehouse"), check=False),
                     "embedded", "new data dir")
    assert re.search(r"^dw\s+sqlite", run_cli(data, "db", "list").stdout, re.M)


def test_db_import_query_and_webhooks_with_postgres_dw(tmp_path, pg):
    portico = pg_portico(tmp_path, pg)
    csv = portico.write("people.csv", "id,name\n1,Ann\n2,Bob\n")
    portico.cli("db", "import", "dw", "imp", "people", csv)
    assert pg.psql("SELECT name FROM imp.people ORDER BY id", dbname="warehouse").split() == \
        ["Ann", "Bob"]
    out = portico.cli("db", "query", "dw", "SELECT count(*)::int AS n, now() IS NOT NULL AS t "
                                           "FROM imp.people").stdout
    assert re.search(r"^2\s+true", out, re.M), out
    # The webhook inbox stays in the embedded warehouse ('embedded'), readable with pq.
    portico.publish("events", """
        def handler(request):
            db = pq.dbconnect('embedded')
            return [r['body'] for r in db.fetch('embedded', 'webhooks', 'events')]
        """)
    portico.publish("people", """
        def handler(request):
            return pq.dbconnect(pq.DW_NAME).fetch(pq.DW_NAME, 'imp', 'people')
        """)
    url = portico.cli("webhook", "url", "--base", "http://x").stdout.strip()
    server = start_module_server(portico)
    try:
        r = server.post(url[len("http://x"):], data=b'{"event": "paid"}',
                        headers={"Content-Type": "application/json"})
        assert r.status_code == 200, r.text
        events = portico.cli("webhook", "events", "--json").stdout
        assert "paid" in events
        r = server.get("/events")
        assert r.status_code == 200, f"{r.text}\n{server.log[-2000:]}"
        assert any("paid" in (b if isinstance(b, str) else json.dumps(b)) for b in r.json())
        r = server.get("/people")
        assert r.status_code == 200
        assert r.json() == [{"id": 1, "name": "Ann"}, {"id": 2, "name": "Bob"}]
    finally:
        server.close()
