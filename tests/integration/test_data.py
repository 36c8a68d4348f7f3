"""The pq data API (issue 3): every function, the type mapping of both back ends, errors,
injection attempts, rows served from the cursor, CSV/NDJSON, streaming, PostgreSQL connections.

Every test runs twice: against the embedded SQLite warehouse and against a real PostgreSQL
server this module starts (pgserver.py). Most tests post Python code to one endpoint that runs
it inside a real handler with `db = pq.dbconnect(CONN)` and returns `result`.
"""

import base64
import csv
import io
import json
import os
import re
import socket
import sqlite3
import time

import pytest
import requests

import pgserver
from conftest import Server, assert_json_error, make_portico, start_module_server

RUN = """\
import datetime, decimal, json
CONN = {conn!r}
db = pq.dbconnect(CONN)

def handler(request):
    env = {{'db': db, 'pq': pq, 'CONN': CONN, 'json': json, 'datetime': datetime,
           'decimal': decimal, 'request': request}}
    exec(request['data'], env)
    return env.get('result')
"""

# Returned unchanged: served from the cursor in C.
ROWS = """\
db = pq.dbconnect({conn!r})

def handler(request):
    q = request['query']
    return db.fetch({conn!r}, q['schema'], q['table'])
"""

# The same rows, copied into a plain list by Python.
ROWS_COPY = """\
db = pq.dbconnect({conn!r})

def handler(request):
    q = request['query']
    return [dict(r) for r in db.fetch({conn!r}, q['schema'], q['table'])]
"""

FILL = """\
db = pq.dbconnect({conn!r})

def handler(request):
    return db.fetch({conn!r}, 'ty', 't', fillna_with=0, fillnat_with='n/a')
"""


@pytest.fixture(scope="module")
def pg():
    if not pgserver.available():
        pytest.fail("PostgreSQL is not installed (apt-get install postgresql)", pytrace=False)
    with pgserver.PgServer() as server:
        yield server


class Backend:
    def __init__(self, kind, portico, server, conn, pg=None):
        self.kind = kind
        self.portico = portico
        self.srv = server
        self.conn = conn
        self.pg = pg

    def run(self, code, headers=None, status=200, **kw):
        r = self.srv.post("/run", data=code.encode(), headers=headers or {}, **kw)
        if status is not None:
            assert r.status_code == status, f"{r.status_code}: {r.text}\n{self.srv.log[-3000:]}"
        return r

    def result(self, code):
        return self.run(code).json()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def be(request, tmp_path_factory, pg):
    portico = make_portico(tmp_path_factory.mktemp(request.param))
    if request.param == "sqlite":
        conn = "dw"
    else:
        conn = "pg"
        portico.cli("db", "add", "pg", "--postgres", pg.dsn(password="s3cret-pw"))
    portico.publish("run", RUN.format(conn=conn), methods="POST")
    portico.publish("rows", ROWS.format(conn=conn))
    portico.publish("rowscopy", ROWS_COPY.format(conn=conn))
    portico.publish("fill", FILL.format(conn=conn))
    server = start_module_server(portico)
    yield Backend(request.param, portico, server, conn, pg if conn == "pg" else None)
    server.close()


def setup_table(be, schema, table="t", fields=None, pk="id"):
    fields = fields or {"id": "int", "name": "text", "amount": "float"}
    be.result(f"""
db.create_schema(CONN, {schema!r})
db.execute(CONN, query='DROP TABLE IF EXISTS "{schema}"."{table}"')
result = db.create_table(CONN, {schema!r}, {table!r}, {fields!r}, {pk!r})
""")


# ---------------------------------------------------------------- module API

def test_dw_name_and_list_databases(be):
    out = be.result("result = [pq.DW_NAME, pq.list_databases()]")
    assert out[0] == "dw"
    names = {d["connection_name"]: d["kind"] for d in out[1]}
    assert names["dw"] == "sqlite"
    if be.kind == "postgres":
        assert names["pg"] == "postgres"
    assert "s3cret" not in json.dumps(out)


def test_create_schema_and_table_say_what_happened(be):
    out = be.result("""
a = db.create_schema(CONN, 'cs1')
b = db.create_schema(CONN, 'cs1')
c = db.create_table(CONN, 'cs1', 'x', [('id', 'int'), ('v', 'text')], 'id')
d = db.create_table(CONN, 'cs1', 'x', [{'name': 'id', 'type': 'int'}], 'id')
result = [a, b, c, d]
""")
    assert out[0] == {"schema": "cs1", "created": True}
    assert out[1] == {"schema": "cs1", "created": False}
    assert out[2]["created"] is True and out[3]["created"] is False


def test_insert_update_upsert_delete(be):
    setup_table(be, "crud")
    out = be.result("""
r = []
r.append(db.insert(CONN, 'crud', 't', {'id': 1, 'name': 'a', 'amount': 1.5}))
r.append(db.insert(db=CONN, schema='crud', table='t', record={'id': 2, 'name': 'b'}))
r.append(db.insert(CONN, 'crud', 't', id=3, name='c', amount=3.0))
r.append(db.update(CONN, 'crud', 't', 2, {'amount': 2.5}))
r.append(db.update(CONN, 'crud', 't', 99, {'amount': 2.5}))
r.append(db.upsert(CONN, 'crud', 't', 3, {'name': 'C'}))
r.append(db.upsert(CONN, 'crud', 't', 4, {'name': 'd'}))
r.append(db.delete(CONN, 'crud', 't', 1))
r.append(db.delete(CONN, 'crud', 't', 1))
r.append(list(db.fetch(CONN, 'crud', 't', query=None)))
result = r
""")
    assert out[0] == {"inserted": 1, "id": 1}
    assert out[1] == {"inserted": 1, "id": 2}
    assert out[2] == {"inserted": 1, "id": 3}
    assert out[3] == {"updated": 1}
    assert out[4] == {"updated": 0}
    assert out[5] == {"action": "updated", "id": 3}
    assert out[6] == {"action": "inserted", "id": 4}
    assert out[7] == {"deleted": 1}
    assert out[8] == {"deleted": 0}
    rows = sorted(out[9], key=lambda r: r["id"])
    assert rows == [{"id": 2, "name": "b", "amount": 2.5},
                    {"id": 3, "name": "C", "amount": 3.0},  # upsert kept amount
                    {"id": 4, "name": "d", "amount": None}]


def test_concurrent_upserts_of_one_new_key_all_succeed(be):
    from concurrent.futures import ThreadPoolExecutor
    setup_table(be, "ups")
    code = "result = db.upsert(CONN, 'ups', 't', %d, {'name': 'n%d', 'amount': %d.5})"

    def one(job):
        key, i = job
        r = be.srv.post("/run", data=(code % (key, i, i)).encode(), timeout=30)
        return key, r.status_code, r.text

    # Eight requests at a time upsert the same new key (the server runs 2 x 4 handlers).
    jobs = [(key, i) for key in range(12) for i in range(8)]
    with ThreadPoolExecutor(8) as ex:
        results = list(ex.map(one, jobs))
    assert [r for r in results if r[1] != 200] == []
    for key in range(12):
        actions = [json.loads(t)["action"] for k, _, t in results if k == key]
        assert sorted(actions) == ["inserted"] + ["updated"] * 7, (key, actions)
    out = be.result("""
r = [db.upsert(CONN, 'ups', 't', 100, {'id': 100, 'name': 'k'}),
     db.upsert(CONN, 'ups', 't', 100, {'amount': 2.5}),
     db.upsert(CONN, 'ups', 't', 101, {'id': 101}),
     db.upsert(CONN, 'ups', 't', 101, {'id': 101})]
try:
    db.upsert(CONN, 'ups', 't', 100, {'id': 7, 'name': 'x'})
except pq.InvalidArgument as e:
    r.append('refused')
result = [r, db.fetch(CONN, query='SELECT count(*) AS n FROM ups.t')[0]['n'],
          list(db.fetch(CONN, query='SELECT * FROM ups.t WHERE id >= 100 ORDER BY id'))]
""")
    # Upserting what the row already holds writes nothing (Peliqan: "avoids unneeded updates").
    assert out[0] == [{"action": "inserted", "id": 100}, {"action": "updated", "id": 100},
                      {"action": "inserted", "id": 101}, {"action": "unchanged", "id": 101},
                      "refused"]
    assert out[1] == 14
    assert out[2] == [{"id": 100, "name": "k", "amount": 2.5},
                      {"id": 101, "name": None, "amount": None}]


def test_existing_schema_needs_no_create_privilege(be):
    if be.kind != "postgres":
        pytest.skip("PostgreSQL roles")
    # A role that may use schema `lim` but may not create schemas in the database.
    be.pg.psql("CREATE ROLE lim_user LOGIN; CREATE SCHEMA lim AUTHORIZATION lim_user")
    be.portico.cli("db", "add", "lim", "--postgres",
                   be.pg.dsn().replace("user=postgres", "user=lim_user"))
    out = be.result("""
lim = pq.dbconnect('lim')
a = lim.create_table('lim', 'lim', 'c', {'id': 'int', 'v': 'text'}, 'id')
b = lim.write('lim', 't', [{'id': 1, 'v': 'x'}], db='lim')
c = lim.create_schema('lim', 'lim')
result = [a['created'], b['rows'], c['created'],
          list(lim.fetch('lim', query='SELECT id, v FROM lim.t'))]
""")
    assert out == [True, 1, False, [{"id": 1, "v": "x"}]]
    r = be.run("result = pq.dbconnect('lim').create_schema('lim', 'other')", status=None)
    assert r.status_code == 500  # creating one still needs the privilege


def test_a_transaction_left_open_is_rolled_back_after_the_request(be):
    setup_table(be, "txn")
    for ending in ("raise RuntimeError('boom')", "result = ['returned']"):
        r = be.run(f"""
db.execute(CONN, query='BEGIN')
db.insert(CONN, 'txn', 't', {{'id': 1, 'name': 'uncommitted'}})
{ending}
""", status=None)
        assert r.status_code in (200, 500)
        # Nothing holds the transaction (SQLite: its write lock) once the response is out, and
        # the row is gone.
        if be.kind == "sqlite":
            path = os.path.join(be.portico.data, "warehouse", "dw", "txn.db")
            con = sqlite3.connect(path, timeout=0.5, isolation_level=None)
            try:
                con.execute("INSERT INTO t (id, name) VALUES (2, 'outside')")
                assert con.execute("SELECT count(*) FROM t WHERE id = 1").fetchone()[0] == 0
                con.execute("DELETE FROM t")
            finally:
                con.close()
        else:
            assert be.pg.psql("SELECT count(*) FROM pg_stat_activity "
                              "WHERE state LIKE 'idle in transaction%'").strip() == "0"
            assert be.pg.psql("SELECT count(*) FROM txn.t").strip() == "0"
    assert be.srv.wait_log(r"script run left a transaction open on database connection "
                           r"'(dw|pg)'; rolled back")
    if be.kind == "postgres":
        # An aborted transaction would make every later statement of the thread fail.
        be.run("""
db.execute(CONN, query='BEGIN')
try:
    db.fetch(CONN, query='SELECT 1 / 0 AS x')
except pq.SQLError:
    pass
result = ['left aborted']
""")
        assert be.pg.psql("SELECT count(*) FROM pg_stat_activity "
                          "WHERE state LIKE 'idle in transaction%'").strip() == "0"
        for _ in range(8):
            assert be.result("result = db.fetch(CONN, query='SELECT 1 AS x')") == [{"x": 1}]
        # A time zone set inside a transaction that was rolled back is set again.
        out = be.result("""
q = "SELECT '2024-05-01 12:00+00'::timestamptz AS t"
db.execute(CONN, query='BEGIN')
a = db.fetch(CONN, query=q, tz='Asia/Tokyo')[0]['t']
db.execute(CONN, query='ROLLBACK')
result = [a, db.fetch(CONN, query=q, tz='Asia/Tokyo')[0]['t']]
""")
        assert out == ["2024-05-01T21:00:00+09:00"] * 2


def test_execute_and_fetch_with_params(be):
    setup_table(be, "ex")
    out = be.result("""
a = db.execute(CONN, query="INSERT INTO ex.t (id, name) VALUES (?, ?), (?, ?)",
               params=[1, 'x', 2, 'y'])
b = db.execute(CONN, query="UPDATE ex.t SET amount = ? WHERE id > ?", params=[7.5, 0])
c = db.execute(CONN, query="SELECT id FROM ex.t ORDER BY id")
d = db.fetch(CONN, query="SELECT name FROM ex.t WHERE id = ?", params=(2,))
e = db.fetch(CONN, query="SELECT name FROM ex.t WHERE id = $1", params=[1])
result = [a, b, c, d, e]
""")
    assert out[0] == {"rowcount": 2}
    assert out[1] == {"rowcount": 2}
    assert out[2] == {"rowcount": 2, "rows": [{"id": 1}, {"id": 2}]}
    assert out[3] == [{"name": "y"}]
    assert out[4] == [{"name": "x"}]


def test_write_creates_table_adds_columns_replaces_rows_in_batches(be):
    out = be.result("""
db.create_schema(CONN, 'wr')
for t in ('t', 't__tags'):
    db.execute(CONN, query='DROP TABLE IF EXISTS "wr"."%s"' % t)
a = db.write('wr', 't', [{'id': 1, 'name': 'a', 'n': 1}, {'id': 2, 'name': 'b', 'tags': [1, 2]}],
             pk='id')
b = db.write('wr', 't', [{'id': 1, 'name': 'z', 'extra': 2.5}], pk='id')
c = db.write('wr', 't', [{'id': i, 'name': str(i)} for i in range(10, 1210)], pk='id')
rows = db.fetch(CONN, query='SELECT id, name, n, extra FROM wr.t WHERE id < 10 ORDER BY id')
n = db.fetch(CONN, query='SELECT count(*) AS n FROM wr.t')
tags = db.fetch(CONN, query='SELECT * FROM wr.t__tags ORDER BY _sdc_level_0_id')
meta = db.fetch(CONN, query='SELECT _sdc_batched_at, _sdc_sequence FROM wr.t WHERE id = 2')
result = [a, b, c, list(rows), n[0]['n'], [dict(r) for r in tags], dict(meta[0])]
""")
    a, b, c, rows, n, tags, meta = out
    assert a["table_created"] is True and a["rows"] == 2 and a["batches"] == 1
    assert a["child_tables"] == [{"table": "t__tags", "rows": 2, "created": True}]
    assert b["table_created"] is False and b["columns_added"] == ["extra"]
    assert c["rows"] == 1200 and c["batches"] == 3
    # Row 1 replaced whole: n is gone, extra is set.
    assert rows[0] == {"id": 1, "name": "z", "n": None, "extra": 2.5}
    assert rows[1] == {"id": 2, "name": "b", "n": None, "extra": None}
    assert n == 1202
    # A nested list is a child table keyed by the parent's key and the item's position.
    assert [(t["_sdc_source_key_id"], t["_sdc_level_0_id"], t["_sdc_value"]) for t in tags] == \
        [(2, 0, 1), (2, 1, 2)]
    assert meta["_sdc_batched_at"].startswith("20") and isinstance(meta["_sdc_sequence"], int)


# ---------------------------------------------------------------- types

TYPED = {"id": "int", "i": "int", "f": "float", "num": "numeric", "t": "text", "b": "bool",
         "d": "date", "tm": "time", "ts": "timestamp", "tstz": "timestamptz", "j": "json",
         "raw": "bytes"}

INSERT_TYPED = """
db.create_schema(CONN, 'ty')
db.execute(CONN, query='DROP TABLE IF EXISTS "ty"."t"')
db.create_table(CONN, 'ty', 't', %r, 'id')
db.insert(CONN, 'ty', 't', {'id': 1, 'i': -9007199254740993, 'f': 0.1, 'num': decimal.Decimal('12.50'),
    't': 'h\u00e9llo "q", \\'x\\'', 'b': True, 'd': datetime.date(2024, 5, 1),
    'tm': datetime.time(13, 45, 30), 'ts': datetime.datetime(2024, 5, 1, 13, 45, 0, 123000),
    'tstz': '2024-05-01T13:45:00+02:00', 'j': {'a': [1, 2.5, None], 'b': {'c': True}},
    'raw': b'\\x00\\x01\\xff'})
db.insert(CONN, 'ty', 't', {'id': 2})
""" % (TYPED,)


def test_type_mapping_python_objects(be):
    out = be.result(INSERT_TYPED + """
rows = db.fetch(CONN, 'ty', 't')
r = rows[0]
result = {k: [type(v).__name__, v if not isinstance(v, bytes) else v.hex()] for k, v in r.items()}
result['null_row'] = rows[1]
""")
    assert out["i"] == ["int", -9007199254740993]
    assert out["f"] == ["float", 0.1]
    assert out["num"][0] == "float" and out["num"][1] == 12.5
    assert out["t"] == ["str", 'h\u00e9llo "q", \'x\'']
    assert out["b"] == ["bool", True]
    assert out["d"] == ["str", "2024-05-01"]
    assert out["tm"] == ["str", "13:45:30"]
    assert out["ts"][0] == "str" and out["ts"][1].startswith("2024-05-01T13:45:00.123")
    if be.kind == "postgres":
        assert out["tstz"] == ["str", "2024-05-01T11:45:00+00:00"]  # in tz='UTC'
    else:
        assert out["tstz"] == ["str", "2024-05-01T13:45:00+02:00"]  # SQLite keeps the text
    assert out["j"] == ["dict", {"a": [1, 2.5, None], "b": {"c": True}}]
    assert out["raw"] == ["bytes", "0001ff"]
    assert out["null_row"] == {k: None for k in ["id"] + list(TYPED)[1:]} | {"id": 2}


def test_type_mapping_served_json_equals_python(be):
    be.result(INSERT_TYPED)
    fast = be.srv.get("/rows?schema=ty&table=t")
    slow = be.srv.get("/rowscopy?schema=ty&table=t")
    assert fast.status_code == 200 and slow.status_code == 200, slow.text
    assert fast.headers["Content-Type"] == "application/json"
    assert fast.content == slow.content
    rows = fast.json()
    assert rows[0]["raw"] == base64.b64encode(b"\x00\x01\xff").decode()
    assert rows[0]["j"] == {"a": [1, 2.5, None], "b": {"c": True}}
    assert rows[0]["num"] == 12.5 and rows[0]["b"] is True and rows[1]["t"] is None


def test_datetime_objects_and_text_types(be):
    out = be.result(INSERT_TYPED + """
r = db.fetch(CONN, 'ty', 't', enable_datetime_as_string=False, tz='Europe/Brussels')[0]
s = db.fetch(CONN, 'ty', 't', enable_python_types=False)[0]
result = {'d': type(r['d']).__name__, 'tm': type(r['tm']).__name__,
          'ts': type(r['ts']).__name__, 'ts_iso': r['ts'].isoformat(),
          'tstz': r['tstz'].isoformat() if hasattr(r['tstz'], 'isoformat') else r['tstz'],
          'num_text': s['num'], 'j_text': s['j']}
""")
    assert out["d"] == "date" and out["tm"] == "time" and out["ts"] == "datetime"
    assert out["ts_iso"] == "2024-05-01T13:45:00.123000"
    if be.kind == "postgres":
        assert out["tstz"] == "2024-05-01T13:45:00+02:00"  # shown in Europe/Brussels
        assert out["num_text"] == "12.50"
        assert json.loads(out["j_text"]) == {"a": [1, 2.5, None], "b": {"c": True}}
    else:
        assert out["tstz"] == "2024-05-01T13:45:00+02:00"
        assert isinstance(out["j_text"], str)


def test_fillna_and_fillnat(be):
    be.result(INSERT_TYPED)
    out = be.result("""
rows = db.fetch(CONN, 'ty', 't', fillna_with='', fillnat_with='n/a')
result = rows[1]
""")
    assert out["t"] == "" and out["i"] == ""
    assert out["d"] == "n/a" and out["ts"] == "n/a" and out["tm"] == "n/a"
    # Served from C with the same fill values.
    r = be.srv.get("/fill")
    assert r.status_code == 200, r.text
    assert r.json()[1]["i"] == 0 and r.json()[1]["d"] == "n/a"


def test_arrays_postgres(be):
    if be.kind != "postgres":
        pytest.skip("arrays are a PostgreSQL type")
    out = be.result("""
db.execute(CONN, query='DROP TABLE IF EXISTS public.arr')
db.execute(CONN, query='CREATE TABLE public.arr (id int primary key, a int[], t text[], b bool[], m int[][], f float8[], u uuid)')
db.execute(CONN, query=\"\"\"INSERT INTO public.arr VALUES (1, '{1,2,NULL}', '{"a b",c,NULL,"x\\\\"y"}', '{t,f}', '{{1,2},{3,4}}', '{1.5,NaN}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11')\"\"\")
result = list(db.fetch(CONN, 'public', 'arr'))
""")
    r = out[0]
    assert r["a"] == [1, 2, None]
    assert r["t"] == ["a b", "c", None, 'x"y']
    assert r["b"] == [True, False]
    assert r["m"] == [[1, 2], [3, 4]]
    assert r["u"] == "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
    fast = be.srv.get("/rows?schema=public&table=arr")
    slow = be.srv.get("/rowscopy?schema=public&table=arr")
    assert fast.content == slow.content


def test_numeric_and_decimal_come_back_as_floats(be):
    out = be.result("""
db.create_schema(CONN, 'nm')
db.execute(CONN, query='DROP TABLE IF EXISTS nm.t')
db.create_table(CONN, 'nm', 't', {'id': 'int', 'n': 'numeric'}, 'id')
for i, v in enumerate(['12', '12.00', '12.50']):
    db.insert(CONN, 'nm', 't', {'id': i, 'n': decimal.Decimal(v)})
result = [[type(r['n']).__name__, r['n']] for r in db.fetch(CONN, query='SELECT n FROM nm.t ORDER BY id')]
""")
    # Peliqan's semantics: numeric and decimal columns are floats, whatever their scale.
    assert out == [["float", 12.0], ["float", 12.0], ["float", 12.5]]
    fast = be.srv.get("/rows?schema=nm&table=t")
    slow = be.srv.get("/rowscopy?schema=nm&table=t")
    assert fast.content == slow.content
    assert '"n": 12.0}' in fast.text and '"n": 12.5}' in fast.text


def test_date_and_time_arrays_hold_iso_strings(be):
    if be.kind != "postgres":
        pytest.skip("arrays are a PostgreSQL type")
    out = be.result("""
db.execute(CONN, query='DROP TABLE IF EXISTS public.darr')
db.execute(CONN, query='CREATE TABLE public.darr (id int primary key, d date[], ts timestamp[], tz timestamptz[], t time[])')
db.execute(CONN, query="INSERT INTO public.darr VALUES (1, '{2024-05-01,NULL,infinity}', '{\\"2024-05-01 13:45:00.5\\"}', '{\\"2024-05-01 13:45:00+02\\"}', '{13:45:00}')")
a = db.fetch(CONN, 'public', 'darr')[0]
b = db.fetch(CONN, 'public', 'darr', enable_datetime_as_string=False)[0]
result = [a, b]
""")
    # As the scalar columns print them; elements stay str even without datetime-as-string.
    want = {"id": 1, "d": ["2024-05-01", None, "infinity"], "ts": ["2024-05-01T13:45:00.5"],
            "tz": ["2024-05-01T11:45:00+00:00"], "t": ["13:45:00"]}
    assert out == [want, want]
    fast = be.srv.get("/rows?schema=public&table=darr")
    slow = be.srv.get("/rowscopy?schema=public&table=darr")
    assert fast.content == slow.content and fast.json() == [want]


# ---------------------------------------------------------------- the lazy row list

def test_row_list_behaves_like_a_list(be):
    setup_table(be, "lz")
    be.result("db.write('lz', 't', [{'id': i, 'name': 'n%d' % i, 'amount': i / 2} for i in range(1, 6)])")
    out = be.result("""
q = "SELECT id FROM lz.t ORDER BY id"
f = lambda: db.fetch(CONN, query=q)
r = {}
r['isinstance'] = isinstance(f(), list)
r['len'] = len(f())
r['bool'] = bool(f())
r['index'] = f()[1]
r['slice'] = f()[1:3]
r['neg'] = f()[-1]
r['iter'] = [x['id'] for x in f()]
r['in'] = {'id': 3} in f()
r['eq'] = f() == [{'id': i} for i in range(1, 6)]
r['eq_rev'] = [{'id': i} for i in range(1, 6)] == f()
r['radd'] = [] + f()
r['add'] = f() + [{'id': 9}]
x = []; x += f(); r['iadd'] = x
a = f(); a.append({'id': 6}); r['append'] = a
a = f(); a.insert(0, {'id': 0}); r['insert'] = a[:2]
a = f(); a.sort(key=lambda d: -d['id']); r['sort'] = a[0]
r['copy'] = f().copy()
r['count'] = f().count({'id': 2})
r['repr'] = repr(f())
r['json_dumps'] = json.loads(json.dumps(f()))
r['json_dumps_indent'] = json.loads(json.dumps(f(), indent=2))
r['list'] = list(f())
r['tuple'] = list(tuple(f()))
r['sorted'] = sorted(f(), key=lambda d: d['id'])[0]
r['mul'] = len(f() * 2) + len(2 * f())
a = f(); b = f(); r['two_pending'] = [len(a), len(b)]
a = f(); del a[0]; r['del'] = a[0]
a = f(); a[0] = {'id': 42}; r['setitem'] = a[0]
a = f(); r['pop'] = a.pop()
result = r
""")
    ids = [{"id": i} for i in range(1, 6)]
    assert out["isinstance"] is True and out["len"] == 5 and out["bool"] is True
    assert out["index"] == {"id": 2} and out["slice"] == ids[1:3] and out["neg"] == {"id": 5}
    assert out["iter"] == [1, 2, 3, 4, 5] and out["in"] is True
    assert out["eq"] is True and out["eq_rev"] is True
    assert out["radd"] == ids and out["add"] == ids + [{"id": 9}] and out["iadd"] == ids
    assert out["append"] == ids + [{"id": 6}]
    assert out["insert"] == [{"id": 0}, {"id": 1}]
    assert out["sort"] == {"id": 5} and out["copy"] == ids and out["count"] == 1
    assert out["repr"] == repr(ids)
    assert out["json_dumps"] == ids and out["json_dumps_indent"] == ids
    assert out["list"] == ids and out["tuple"] == ids and out["sorted"] == {"id": 1}
    assert out["mul"] == 20 and out["two_pending"] == [5, 5]
    assert out["del"] == {"id": 2} and out["setitem"] == {"id": 42} and out["pop"] == {"id": 5}


def test_modified_rows_still_served(be):
    setup_table(be, "md")
    be.result("db.insert(CONN, 'md', 't', {'id': 1, 'name': 'a', 'amount': 1.0})")
    out = be.run("""
rows = db.fetch(CONN, 'md', 't')
for r in rows:
    r['extra'] = r['amount'] * 2
result = {'rows': rows, 'raw': db.fetch(CONN, 'md', 't')}
""").json()
    assert out == {"rows": [{"id": 1, "name": "a", "amount": 1.0, "extra": 2.0}],
                   "raw": [{"id": 1, "name": "a", "amount": 1.0}]}


# ---------------------------------------------------------------- CSV / NDJSON

def test_csv_and_ndjson_forms(be):
    setup_table(be, "fm")
    be.result("""for r in [{'id': 1, 'name': 'a, "b"', 'amount': 1.5},
          {'id': 2, 'name': '', 'amount': None},
          {'id': 3, 'name': 'line\\nbreak', 'amount': 2.0}]:
    db.insert(CONN, 'fm', 't', r)""")
    for path in ("/rows?schema=fm&table=t", "/rowscopy?schema=fm&table=t"):
        r = be.srv.get(path, headers={"Accept": "text/csv"})
        assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/csv")
        rows = list(csv.reader(io.StringIO(r.text, newline="")))
        assert rows[0] == ["id", "name", "amount"]
        assert rows[1] == ["1", 'a, "b"', "1.5"] and rows[3] == ["3", "line\nbreak", "2.0"]
        assert r.text.splitlines()[2] == '2,"",'  # empty string apart from NULL
        r = be.srv.get(path, headers={"Accept": "application/x-ndjson"})
        assert r.headers["Content-Type"] == "application/x-ndjson"
        lines = r.text.split("\n")
        assert lines[-1] == "" and len(lines) == 4
        assert json.loads(lines[0]) == {"id": 1, "name": 'a, "b"', "amount": 1.5}
        r = be.srv.get(path, headers={"Accept": "application/json, text/csv;q=0.5"})
        assert r.headers["Content-Type"] == "application/json" and len(r.json()) == 3
    # Not a row list: Accept does not matter.
    r = be.run("result = {'a': 1}", headers={"Accept": "text/csv"})
    assert r.json() == {"a": 1}


# ---------------------------------------------------------------- errors

def test_errors_are_catchable_pq_errors(be):
    out = be.result("""
r = {}
def name(f):
    try:
        f()
        return None
    except pq.Error as e:
        return [type(e).__name__, str(e), isinstance(e, KeyError), isinstance(e, ValueError)]
r['unknown_conn'] = name(lambda: pq.dbconnect('nope'))
r['unknown_conn_fetch'] = name(lambda: db.fetch('nope', 's', 't'))
r['unknown_table'] = name(lambda: db.fetch(CONN, 'public' if CONN != 'dw' else 'sales', 'no_such_table'))
r['sql_error'] = name(lambda: db.fetch(CONN, query='SELEC 1'))
r['bad_name'] = name(lambda: db.fetch(CONN, 'a b', 't'))
r['no_table'] = name(lambda: db.fetch(CONN))
r['bad_params'] = name(lambda: db.fetch(CONN, query='select 1', params='x'))
r['bad_value'] = name(lambda: db.fetch(CONN, query='select ? as x', params=[object()]))
r['bad_record'] = name(lambda: db.insert(CONN, 's', 't', ['x']))
r['no_pk_value'] = name(lambda: db.update(CONN, 's', 't', None, {'a': 1}))
r['bad_type'] = name(lambda: db.create_table(CONN, 'cs2', 'x', {'id': 'int); drop'}))
try:
    import pandas
    r['df'] = type(db.fetch(CONN, query='select 1 as x', df=True)).__name__
except ImportError:
    r['df'] = name(lambda: db.fetch(CONN, query='select 1 as x', df=True))
result = r
""")
    assert out["unknown_conn"][0] == "UnknownConnection" and out["unknown_conn"][2] is True
    assert "nope" in out["unknown_conn"][1]
    # A Connection reaches one database: naming another is an error, never a read of it.
    assert out["unknown_conn_fetch"][0] == "UnknownDatabase" and out["unknown_conn_fetch"][2]
    assert "nope" in out["unknown_conn_fetch"][1]
    assert out["unknown_table"][0] == "TableNotFound" and "no_such_table" in out["unknown_table"][1]
    assert out["sql_error"][0] == "SQLError" and "SELEC" in out["sql_error"][1]
    for k in ("bad_name", "no_table", "bad_params", "bad_value", "bad_record", "no_pk_value",
              "bad_type"):
        assert out[k][0] == "InvalidArgument" and out[k][3] is True, (k, out[k])
    if isinstance(out["df"], str):
        assert out["df"] == "DataFrame"
    else:
        assert out["df"][0] == "Error" and "pandas" in out["df"][1]


def test_text_arguments_that_cannot_be_encoded_are_refused(be):
    out = be.result("""
r = []
for f in (lambda: db.fetch(CONN, query='SELECT 1 AS x', tz='\\udcff'),
          lambda: db.fetch(CONN, query='SELECT 1 AS x', tz='x' * 100),
          lambda: db.fetch(CONN, query='SELECT 1 AS x', tz='UTC\\x00x'),
          lambda: db.fetch(CONN, query='SELECT 1 AS x\\x00; DROP TABLE nope'),
          lambda: db.fetch(CONN, query='SELECT 1 AS \\udcff'),
          lambda: db.execute(CONN, query='SELECT 1\\x00')):
    try:
        f()
        r.append('accepted')
    except pq.InvalidArgument:
        r.append('refused')
result = r
""")
    assert out == ["refused"] * 6


def test_uncaught_errors(be):
    r = be.run("result = db.fetch(CONN, 'sch', 'missing_table')", status=None)
    body = assert_json_error(r, 500)
    assert body["error"] == "internal error"


# ---------------------------------------------------------------- injection

EVIL_NAMES = ['t"; DROP TABLE inj.t; --', "t'", "a b", "1t", "t;", "", "x" * 64, "t\x00",
              'inj"."t', "t)"]


def test_injection_through_names_is_refused(be):
    setup_table(be, "inj")
    be.result("db.insert(CONN, 'inj', 't', {'id': 1, 'name': 'keep'})")
    out = be.result("""
evil = %r
calls = {
  'fetch_schema': lambda e: db.fetch(CONN, e, 't'),
  'fetch_table': lambda e: db.fetch(CONN, 'inj', e),
  'insert_table': lambda e: db.insert(CONN, 'inj', e, {'id': 2}),
  'insert_column': lambda e: db.insert(CONN, 'inj', 't', {e: 2}),
  'update_column': lambda e: db.update(CONN, 'inj', 't', 1, {e: 2}),
  'upsert_column': lambda e: db.upsert(CONN, 'inj', 't', 1, {e: 2}),
  'delete_table': lambda e: db.delete(CONN, 'inj', e, 1),
  'write_schema': lambda e: db.write(e, 't', [{'id': 1}]),
  'write_table': lambda e: db.write('inj', e, [{'id': 1}]),
  'write_pk': lambda e: db.write('inj', 't', [{'id': 1}], pk=e),
  'create_schema': lambda e: db.create_schema(CONN, e),
  'create_table': lambda e: db.create_table(CONN, 'inj', e, {'id': 'int'}),
  'create_column': lambda e: db.create_table(CONN, 'inj', 'z', {e: 'int'}),
  'create_pk': lambda e: db.create_table(CONN, 'inj', 'z', {'id': 'int'}, e),
  'db': lambda e: db.fetch(e, 'inj', 't'),
}
bad = []
for what, f in calls.items():
    for e in evil:
        try:
            f(e)
            bad.append([what, e, 'accepted'])
        except (pq.InvalidArgument, pq.UnknownConnection, pq.UnknownDatabase):
            pass
        except Exception as x:
            bad.append([what, e, type(x).__name__ + ': ' + str(x)])
# write() stores record keys the way pipelines do: canonical names, never SQL.
db.execute(CONN, query='DROP TABLE IF EXISTS inj.w')
for e in evil:
    db.write('inj', 'w', [{'id': 1, e: 1}], pk='id')
result = {'bad': bad, 'rows': list(db.fetch(CONN, 'inj', 't')),
          'w': sorted(db.fetch(CONN, 'inj', 'w')[0].keys())}
""" % (EVIL_NAMES,))
    assert out["bad"] == []
    assert out["rows"] == [{"id": 1, "name": "keep", "amount": None}]
    assert all(re.fullmatch(r"[a-z_][a-z0-9_$]{0,62}", c) for c in out["w"]), out["w"]


def test_names_read_back_from_the_database_are_quoted(be):
    # Tables made outside pq may have any column names, quotes included: pq uses the primary key
    # and the existing columns it reads back in the SQL it builds.
    out = be.result("""
pk = 'INTEGER PRIMARY KEY' if CONN == 'dw' else 'INT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY'
db.create_schema(CONN, 'qq')
db.execute(CONN, query='DROP TABLE IF EXISTS qq.t')
db.execute(CONN, query='DROP TABLE IF EXISTS qq.w')
db.execute(CONN, query='CREATE TABLE qq.t ("k""ey" %s, v TEXT)' % pk)
db.execute(CONN, query='CREATE TABLE qq.w (id INT PRIMARY KEY, "we""ird" TEXT, v TEXT)')
r = [db.insert(CONN, 'qq', 't', {'v': 'a'}),
     db.update(CONN, 'qq', 't', 1, {'v': 'b'}),
     db.upsert(CONN, 'qq', 't', 2, {'v': 'c'}),
     db.delete(CONN, 'qq', 't', 2),
     db.write('qq', 'w', [{'id': 1, 'v': 'x'}])['rows'],
     db.write('qq', 'w', [{'id': 1, 'v': 'y'}])['rows'],
     list(db.fetch(CONN, 'qq', 't')),
     [{k: v for k, v in r.items() if not k.startswith('_sdc_')} for r in db.fetch(CONN, 'qq', 'w')]]
result = r
""")
    assert out == [{"inserted": 1, "id": 1}, {"updated": 1}, {"action": "inserted", "id": 2},
                   {"deleted": 1}, 1, 1, [{'k"ey': 1, "v": "b"}],
                   [{"id": 1, 'we"ird': None, "v": "y"}]]


def test_injection_through_values_is_stored_literally(be):
    setup_table(be, "injv")
    evil = ["x'); DROP TABLE injv.t; --", "' OR '1'='1", '"; DELETE FROM injv.t; --',
            "\\'; SELECT 1; --", "$1", "?"]
    out = be.result("""
evil = %r
for i, e in enumerate(evil):
    db.insert(CONN, 'injv', 't', {'id': i + 1, 'name': e})
db.update(CONN, 'injv', 't', 1, {'name': evil[0] + '!'})
db.upsert(CONN, 'injv', 't', 100, {'name': evil[1]})
try:
    db.delete(CONN, 'injv', 't', "1 OR 1=1")  # bound: no row has that key
except pq.SQLError:
    pass  # PostgreSQL: not a bigint
db.write('injv', 't', [{'id': 200, 'name': evil[2], 'amount': 1.0}])
found = db.fetch(CONN, query='SELECT id FROM injv.t WHERE name = ?', params=[evil[1]])
result = {'rows': sorted([r['name'] for r in db.fetch(CONN, 'injv', 't')]),
          'found': [r['id'] for r in found]}
""" % (evil,))
    want = sorted([evil[0] + "!"] + evil[1:] + [evil[1], evil[2]])
    assert out["rows"] == want
    assert sorted(out["found"]) == [2, 100]


SNEAKY = """
class Sneaky(datetime.date):
    # Converting it (pq calls isoformat()) changes the containers pq is reading.
    def isoformat(self):
        for f in meddle:
            f()
        return super().isoformat()
big = lambda c: c * 1000  # a str that is freed once its container lets it go
"""


def test_python_code_run_by_a_conversion_cannot_change_what_is_written(be):
    setup_table(be, "snap", fields={"id": "int", "name": "text", "d": "text"})
    # insert: the record grows by keys that are no column names (more keys than pq made room for)
    assert be.result(SNEAKY + """
rec = {'id': 1, 'd': Sneaky(2024, 1, 1), 'name': big('a')}
meddle = [lambda: rec.update({'bad"key%d' % i: i for i in range(16)})]
result = db.insert(CONN, 'snap', 't', rec)
""") == {"inserted": 1, "id": 1}
    # update: the record is emptied, freeing a value whose text is already bound
    assert be.result(SNEAKY + """
rec = {'d': Sneaky(2024, 1, 2), 'name': big('b')}
meddle = [rec.clear, lambda: rec.update({'x"y': 1})]
result = db.update(CONN, 'snap', 't', 1, rec)
""") == {"updated": 1}
    # fetch params: the list is emptied while its items are converted
    assert be.result(SNEAKY + """
params = [Sneaky(2024, 1, 3), big('c')]
meddle = [params.clear]
result = list(db.fetch(CONN, query='SELECT ? AS d, ? AS name', params=params))
""") == [{"d": "2024-01-03", "name": "c" * 1000}]
    # write: the list of records and a record are emptied
    assert be.result(SNEAKY + """
recs = [{'id': 2, 'd': Sneaky(2024, 1, 4), 'name': big('d')}, {'id': 3, 'name': big('e')}]
first = recs[0]
meddle = [recs.clear, first.clear]
result = db.write('snap', 't', recs)['rows']
""") == 2
    # bytearray values are bound as a copy
    assert be.result("""
b = bytearray(b'xyz')
result = list(db.fetch(CONN, query='SELECT length(?) AS n', params=[b]))
""") == [{"n": 3}]
    rows = be.result("result = list(db.fetch(CONN, query='SELECT id, name, d FROM snap.t ORDER BY id'))")
    assert rows == [{"id": 1, "name": "b" * 1000, "d": "2024-01-02"},
                    {"id": 2, "name": "d" * 1000, "d": "2024-01-04"},
                    {"id": 3, "name": "e" * 1000, "d": None}]


# ---------------------------------------------------------------- streaming

def _hwm_kib(pids):
    peak = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]))
        except OSError:
            pass
    return peak


@pytest.mark.load
def test_million_rows_stream_with_bounded_memory(be):
    if be.kind == "sqlite":
        make = """
db.create_schema(CONN, 'big')
db.execute(CONN, query='DROP TABLE IF EXISTS big.t')
db.execute(CONN, query='CREATE TABLE big.t (id INTEGER PRIMARY KEY, name TEXT, amount REAL)')
db.execute(CONN, query="WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000) INSERT INTO big.t SELECT x, 'name ' || x, x * 0.5 FROM c")
result = db.fetch(CONN, query='SELECT count(*) AS n FROM big.t')[0]['n']
"""
    else:
        make = """
db.create_schema(CONN, 'big')
db.execute(CONN, query='DROP TABLE IF EXISTS big.t')
db.execute(CONN, query="CREATE TABLE big.t AS SELECT g AS id, 'name ' || g AS name, g * 0.5 AS amount FROM generate_series(1, 1000000) g")
result = db.fetch(CONN, query='SELECT count(*) AS n FROM big.t')[0]['n']
"""
    assert be.run(make, timeout=120).json() == 1000000
    workers = be.srv.children()
    before = _hwm_kib(workers)
    n = 0
    size = 0
    last = b""
    with be.srv.get("/rows?schema=big&table=t", headers={"Accept": "application/x-ndjson"},
                    stream=True, timeout=120) as r:
        assert r.status_code == 200
        assert "Content-Length" not in r.headers
        for chunk in r.iter_content(65536):
            n += chunk.count(b"\n")
            size += len(chunk)
            last = (last + chunk)[-200:]
    after = _hwm_kib(workers)
    assert n == 1000000
    # No ORDER BY: PostgreSQL may start a scan mid-table (synchronized seqscans), so check the
    # last row's shape rather than its id.
    row = json.loads(last.rstrip(b"\n").split(b"\n")[-1])
    assert set(row) == {"id", "name", "amount"} and 1 <= row["id"] <= 1000000
    assert row["name"] == f"name {row['id']}" and row["amount"] == row["id"] * 0.5
    growth_mib = (after - before) / 1024
    with open(os.path.join(be.portico.scratch, "..", f"stream-{be.kind}.txt"), "w") as f:
        f.write(f"{be.kind}: {size} bytes, worker peak RSS before {before} KiB, after {after} KiB\n")
    print(f"\n{be.kind}: streamed {size / 1e6:.1f} MB; worker VmHWM {before} -> {after} KiB")
    # Under AddressSanitizer freed memory sits in a quarantine, so RSS says nothing there.
    if not os.environ.get("PORTICO_SANITIZED"):
        assert growth_mib < 24, f"worker peak RSS grew by {growth_mib:.1f} MiB for a {size} B body"
    # The JSON form of the same rows is complete and valid.
    r = be.srv.get("/rows?schema=big&table=t", timeout=120)
    assert r.status_code == 200 and len(r.json()) == 1000000


def wide_table(be, n=100000):
    """wide.t: n rows of about 240 bytes of JSON each (24 MB), a body well past the size where
    responses stream. Made once per back end."""
    have = be.result("""
try:
    result = db.fetch(CONN, query='SELECT count(*) AS n FROM wide.t')[0]['n']
except pq.TableNotFound:
    result = 0
""")
    if have == n:
        return
    rows = ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < %d) "
            "SELECT x, 'name ' || x || replace(hex(zeroblob(100)), '0', 'x') FROM c" % n
            if be.kind == "sqlite" else
            "SELECT g, 'name ' || g || repeat('x', 200) FROM generate_series(1, %d) g" % n)
    be.run(f"""
db.create_schema(CONN, 'wide')
db.execute(CONN, query='DROP TABLE IF EXISTS wide.t')
db.execute(CONN, query='CREATE TABLE wide.t (id INTEGER PRIMARY KEY, name TEXT)')
db.execute(CONN, query="INSERT INTO wide.t (id, name) {rows}")
""", timeout=120)


def test_client_going_away_mid_stream_is_fine(be):
    wide_table(be)
    with be.srv.get("/rows?schema=wide&table=t", stream=True, timeout=60) as r:
        assert r.status_code == 200
        assert "Content-Length" not in r.headers  # streamed
        next(r.iter_content(1024))
    # The worker is still healthy and its connection usable.
    out = be.result("result = len(db.fetch(CONN, query='SELECT 1 AS x'))")
    assert out == 1
    assert be.srv.get("/_portico/health").status_code == 200


def _open_stream(srv, path):
    """Starts a GET whose body the client then leaves unread: a small receive buffer, so that
    the server cannot push the whole body into socket buffers and finish. Returns (socket, the
    response head)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
    sock.settimeout(30)
    sock.connect((srv.host, srv.port))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: portico\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(4096)
    return sock, head.split(b"\r\n\r\n")[0].decode().lower()


def test_streams_per_worker_are_capped(be):
    # Each stream holds a database connection and reads on the worker's loop thread: past the
    # cap (8, rows.h), a large result is written whole by the handler thread instead.
    wide_table(be)
    srv = Server(be.portico, ["--workers", "1"])
    path = "/rows?schema=wide&table=t"
    held = []
    try:
        for _ in range(8):
            sock, head = _open_stream(srv, path)
            held.append(sock)
            assert "transfer-encoding: chunked" in head, head
        r = srv.get(path, timeout=120)
        assert r.status_code == 200 and "Content-Length" in r.headers
        assert len(r.json()) == 100000
        for sock in held:
            sock.close()
        held = []
        deadline = time.monotonic() + 10
        while True:  # the slots come back as the server notices the clients went away
            sock, head = _open_stream(srv, path)
            sock.close()
            if "transfer-encoding: chunked" in head:
                break
            assert time.monotonic() < deadline, "stream slots were not given back"
            time.sleep(0.2)
    finally:
        for sock in held:
            sock.close()
        srv.close()


def test_slow_postgres_reads_leave_the_gil_to_other_requests(be):
    if be.kind != "postgres":
        pytest.skip("PostgreSQL only")
    from concurrent.futures import ThreadPoolExecutor
    # The first rows arrive at once; the last one after the server slept.
    query = ("SELECT x FROM (SELECT g AS x FROM generate_series(1, 3000) g "
             "UNION ALL SELECT 0 FROM pg_sleep(1.5)) s")
    srv = Server(be.portico, ["--workers", "1"])
    try:
        # Rows read into Python; rows written out from the cursor in C.
        for how in ("len(db.fetch(CONN, query=Q))", "db.fetch(CONN, query=Q)"):
            code = f"Q = {query!r}\nresult = {how}"
            with ThreadPoolExecutor(1) as ex:
                slow = ex.submit(srv.post, "/run", data=code.encode(), timeout=30)
                time.sleep(0.5)  # it now waits for the last row
                t0 = time.monotonic()
                r = srv.post("/run", data=b"result = 1")
                took = time.monotonic() - t0
                assert r.status_code == 200 and slow.result().status_code == 200
            assert took < 0.5, f"{how}: a quick request took {took:.2f} s behind a slow read"
    finally:
        srv.close()


def test_slow_postgres_stream_leaves_the_loop_to_other_requests(be):
    # Past the first 256 KiB the rows are read on the worker's event loop thread; while the
    # server is slow to send the next ones, the loop must go on serving other connections
    # (it waits for the database socket instead of blocking on it).
    if be.kind != "postgres":
        pytest.skip("PostgreSQL only")
    from concurrent.futures import ThreadPoolExecutor
    # About 1.7 MB of JSON; the server sleeps a second after every 20000 rows, all of them past
    # the part the handler's thread writes.
    query = ("SELECT g, pg_sleep(CASE WHEN g % 20000 = 0 THEN 1 ELSE 0 END) AS s "
             "FROM generate_series(1, 60000) g")
    code = f"result = db.fetch(CONN, query={query!r})"
    srv = Server(be.portico, ["--workers", "1"])

    def read_stream():
        with srv.post("/run", data=code.encode(), stream=True, timeout=60) as r:
            assert r.status_code == 200 and "Content-Length" not in r.headers
            return b"".join(r.iter_content(65536))

    worst = 0.0
    try:
        with ThreadPoolExecutor(1) as ex:
            t0 = time.monotonic()
            streamed = ex.submit(read_stream)
            while not streamed.done():
                t = time.monotonic()
                r = srv.post("/run", data=b"result = 1", timeout=30)
                worst = max(worst, time.monotonic() - t)
                assert r.status_code == 200
                time.sleep(0.05)
            body = streamed.result()
            total = time.monotonic() - t0
        rows = json.loads(body)
        assert len(rows) == 60000 and rows[-1] == {"g": 60000, "s": ""}
        # The same connection still serves a second stream (its database socket was watched).
        with srv.post("/run", data=code.replace("60000", "20001").encode(), timeout=60) as r:
            assert r.status_code == 200 and len(r.json()) == 20001
    finally:
        srv.close()
    print(f"\nstream took {total:.2f} s; slowest quick request meanwhile {worst:.3f} s")
    assert total >= 2.5  # the server did sleep while the loop read the rows
    # A loop that waited for the rows would hold a quick request for a whole 1 s sleep; the
    # bound leaves room for a loaded machine or a sanitizer build (0.3 s was seen there).
    assert worst < 0.75, f"a quick request took {worst:.2f} s behind a slow streamed read"


def test_client_leaving_a_slow_postgres_stream_cancels_the_query(be):
    # Freeing a stream whose query is still running must not wait for the server on the loop
    # thread: the cancel goes out from another thread, and the worker answers meanwhile.
    # The query trickles rows for about 100 s: the worker notices the client is gone at its
    # next write (h2o does not read a connection while it answers it), so a query that sent
    # nothing at all would only be cancelled once it sent something (docs/HANDLERS.md).
    if be.kind != "postgres":
        pytest.skip("PostgreSQL only")
    query = ("SELECT g, pg_sleep(CASE WHEN g > 20000 THEN 0.002 ELSE 0 END) AS s "
             "FROM generate_series(1, 70000) g")
    srv = Server(be.portico, ["--workers", "1"])
    try:
        with srv.post("/run", data=f"result = db.fetch(CONN, query={query!r})".encode(),
                      stream=True, timeout=60) as r:
            assert r.status_code == 200 and "Content-Length" not in r.headers
            next(r.iter_content(1024))
            time.sleep(0.5)  # the server now sleeps; the loop waits on its socket
        t0 = time.monotonic()
        assert srv.get("/_portico/health", timeout=5).status_code == 200
        assert time.monotonic() - t0 < 0.3
        deadline = time.monotonic() + 10
        while True:  # the server was told to stop the query, long before its 30 s
            left = be.result("result = db.fetch(CONN, query=\"SELECT count(*) AS n FROM "
                             "pg_stat_activity WHERE query LIKE '%pg_sleep(CASE WHEN g > 20000%' "
                             "AND pid <> pg_backend_pid()\")[0]['n']")
            if left == 0:
                break
            assert time.monotonic() < deadline, "the abandoned query still runs"
            time.sleep(0.2)
        r = srv.post("/run", data=b"result = len(db.fetch(CONN, query='SELECT 1 AS x'))")
        assert r.status_code == 200 and r.json() == 1
    finally:
        srv.close()


# ---------------------------------------------------------------- PostgreSQL connections

def test_postgres_reconnects_after_restart_and_503_when_down(be):
    if be.kind != "postgres":
        pytest.skip("PostgreSQL only")
    code = "result = db.fetch(CONN, query='SELECT 7 AS x')"
    for _ in range(4):  # every worker thread has its connection
        assert be.result(code) == [{"x": 7}]
    be.pg.restart()
    for _ in range(4):
        assert be.result(code) == [{"x": 7}]
    be.pg.stop()
    try:
        r = be.run(code, status=None)
        body = assert_json_error(r, 503)
        assert body["error"] == "database unavailable"
        assert "s3cret" not in be.srv.log
    finally:
        be.pg.start()
    assert be.result(code) == [{"x": 7}]
    assert be.srv.get("/_portico/health").status_code == 200


def test_postgres_statement_that_was_sent_is_never_run_twice(be):
    if be.kind != "postgres":
        pytest.skip("PostgreSQL only")
    be.pg.psql("CREATE SEQUENCE once_seq")
    # The statement takes a number (which no rollback gives back), then its session dies before
    # it answers, as if the server had committed and crashed: it must not run again.
    out = be.result("""
try:
    db.execute(CONN, query=\"\"\"DO $$ BEGIN PERFORM nextval('once_seq');
        PERFORM pg_terminate_backend(pg_backend_pid()); PERFORM pg_sleep(5); END $$\"\"\")
    result = ['no error']
except pq.DatabaseUnavailable as e:
    result = ['unavailable']
""")
    assert out == ["unavailable"]
    assert be.pg.psql("SELECT last_value FROM once_seq").strip() == "1"
    # The next statement gets a fresh connection.
    for _ in range(4):
        assert be.result("result = db.fetch(CONN, query='SELECT 1 AS x')") == [{"x": 1}]


def test_postgres_connection_lost_inside_a_transaction_is_not_papered_over(be):
    if be.kind != "postgres":
        pytest.skip("PostgreSQL only")
    be.portico.cli("db", "add", "pg_killer", "--postgres", be.pg.dsn())
    be.pg.psql("CREATE TABLE public.lost (id int primary key)")
    # The session dies while idle inside a transaction: the next statement must fail rather than
    # run on a fresh connection outside the transaction it belongs to.
    out = be.result("""
import time
db.execute(CONN, query='BEGIN')
pid = db.fetch(CONN, query='SELECT pg_backend_pid() AS p')[0]['p']
pq.dbconnect('pg_killer').execute('pg_killer', query='SELECT pg_terminate_backend(?::int)', params=[pid])
time.sleep(0.2)
try:
    db.insert(CONN, 'public', 'lost', {'id': 1})
    result = ['inserted']
except pq.DatabaseUnavailable as e:
    result = ['unavailable', str(e)]
result.append(db.fetch(CONN, query='SELECT count(*) AS n FROM public.lost')[0]['n'])
""")
    assert out[0] == "unavailable" and "transaction" in out[1], out
    assert out[2] == 0


def test_db_cli_postgres(be, pg):
    if be.kind != "postgres":
        pytest.skip("PostgreSQL only")
    p = be.portico
    out = p.cli("db", "list").stdout
    assert "pg" in out and "postgres" in out and "s3cret" not in out and "password=***" in out
    r = p.cli("db", "add", "down", "--postgres", "host=127.0.0.1 port=1 password=s3cret",
              check=False)
    assert r.returncode == 1 and "cannot connect" in r.stderr and "s3cret" not in r.stderr
    r = p.cli("db", "add", "bad", "--postgres", "host=127.0.0.1 nonsense", check=False)
    assert r.returncode == 1 and "invalid" in r.stderr.lower()
    r = p.cli("db", "add", "uri", "--postgres",
              f"postgresql://postgres:s3cret@127.0.0.1:{pg.port}/postgres")
    assert "s3cret" not in r.stdout
    assert "s3cret" not in p.cli("db", "list").stdout
    assert "uri" in p.cli("db", "rm", "uri").stdout
    assert "uri" not in p.cli("db", "list").stdout
