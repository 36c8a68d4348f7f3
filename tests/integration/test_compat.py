"""Peliqan scripts, unmodified (issue 8): scripts written the way Peliqan's help pages and its
`peliqan` client show (our own code, modelled on the documented examples), run through HTTP
and `portico run`, on the embedded SQLite warehouse and on a PostgreSQL connection, checking
values, not only that nothing raised.
"""

import json
import re

import pytest
import requests

import pgserver
import os

from conftest import Portico, make_portico, run_cli, start_module_server

ACCOUNTS = [
    {"id": 1, "name": "Acme", "country": "US", "revenue": 1500.5, "since": "2019-04-01"},
    {"id": 2, "name": "Globex", "country": "DE", "revenue": 820.25, "since": "2021-11-30"},
    {"id": 3, "name": "Initech", "country": "BE", "revenue": 125.0, "since": "2023-01-15"},
]

SETUP = """
db = pq.dbconnect(CONN)
db.create_schema(CONN, 'salesforce')
db.execute(CONN, query='DROP TABLE IF EXISTS salesforce.accounts')
db.create_table(CONN, 'salesforce', 'accounts',
                [{'name': 'id', 'type': 'integer'}, {'name': 'name', 'type': 'string'},
                 {'name': 'country', 'type': 'string'}, {'name': 'revenue', 'type': 'numeric'},
                 {'name': 'since', 'type': 'date'}], pk='id')
for a in %r:
    db.insert(CONN, 'salesforce', 'accounts', a)
"""

# Runs posted code in a real handler; `result` is the response.
RUN = """\
CONN = {conn!r}

def handler(request):
    env = {{'pq': pq, 'CONN': CONN, 'st': st, 'RUN_CONTEXT': RUN_CONTEXT}}
    exec(request['data'], env)
    return env.get('result')
"""

# Modelled on the boilerplate Peliqan gives a new "API handler" script (Flask style).
BOILERPLATE = """\
from urllib.parse import parse_qs

def handler():
    method = request.method
    url = request.url
    path = request.path
    query_string = request.query_string
    headers = dict(request.headers)
    data = request.data
    form = request.form
    get_data = request.get_data()

    query_string_dict = parse_qs(query_string.decode("utf-8"))
    param1 = query_string_dict['param1'][0] if "param1" in query_string_dict else None

    dbconn = pq.dbconnect({conn!r})
    table_data = dbconn.fetch({db!r}, 'salesforce', 'accounts')
    return {{'method': method, 'path': path, 'param1': param1, 'data': data.decode(),
            'form': form, 'get_data': get_data, 'client': headers.get('X-Api-Client'),
            'url_ok': url.endswith(path + '?' + query_string.decode()) if query_string else True,
            'accounts': table_data}}
"""

# Dict style, reading the request the way Peliqan's examples do.
DICT_STYLE = """\
import json

def handler(request):
    headers = request['headers']
    body = json.loads(request['data']) if request['data'] else None
    return {'client': headers.get('x-api-client'), 'data': request['data'], 'body': body,
            'form': request['form'], 'context': RUN_CONTEXT}
"""

# A script written to run inside or outside Peliqan: outside, it makes its own client.
ANYWHERE = """\
if 'RUN_CONTEXT' not in globals():
    from peliqan import Peliqan
    pq = Peliqan('a-jwt-from-settings', 'https://app.eu.peliqan.io')
    RUN_CONTEXT = 'outside'

from peliqan import Peliqan
from peliqan.exceptions import PeliqanClientException

def handler(request):
    client = Peliqan('ignored-jwt')
    return {'context': RUN_CONTEXT, 'same_pq': client is pq, 'dw': client.DW_NAME,
            'exc': PeliqanClientException is pq.Error}
"""


@pytest.fixture(scope="module")
def pg():
    if not pgserver.available():
        pytest.fail("PostgreSQL is not installed (apt-get install postgresql)", pytrace=False)
    with pgserver.PgServer() as server:
        server.psql("CREATE DATABASE warehouse")
        yield server


class Env:
    def __init__(self, kind, portico, server, conn, db, pg):
        self.kind, self.portico, self.srv, self.conn, self.db, self.pg = \
            kind, portico, server, conn, db, pg

    def run(self, code, status=200):
        r = self.srv.post("/run", data=code.encode())
        assert r.status_code == status, f"{r.status_code}: {r.text}\n{self.srv.log[-3000:]}"
        return r.json()


@pytest.fixture(scope="module", params=["sqlite", "postgres", "pg-warehouse"])
def env(request, tmp_path_factory, pg):
    base = tmp_path_factory.mktemp("compat-" + request.param)
    if request.param == "pg-warehouse":  # Peliqan's own setup: the default warehouse is PostgreSQL
        run_cli(os.path.join(base, "data"), "init", "--warehouse",
                pg.dsn("warehouse", password="s3cret-pw"))
        portico = Portico(os.path.join(base, "data"), os.path.join(base, "files"))
    else:
        portico = make_portico(base)
    if request.param == "sqlite":
        conn = db = "dw"
    elif request.param == "pg-warehouse":
        conn, db = "dw", "warehouse"
    else:
        conn, db = "pg_sales", "postgres"  # the connection, and the database inside it
        portico.cli("db", "add", conn, "--postgres", pg.dsn(password="s3cret-pw"))
    portico.publish("run", RUN.format(conn=conn), methods="POST")
    portico.publish("boilerplate", BOILERPLATE.format(conn=conn, db=db), methods="GET,POST")
    portico.publish("dictstyle", DICT_STYLE, methods="GET,POST")
    portico.publish("anywhere", ANYWHERE)
    server = start_module_server(portico)
    e = Env(request.param, portico, server, conn, db, pg)
    e.run(SETUP % (ACCOUNTS,))
    yield e
    server.close()


# ---------------------------------------------------------------- Publish APIs


def test_boilerplate_handler_reads_the_request_and_the_table(env):
    r = env.srv.get("/boilerplate?param1=hello&x=1", headers={"X-Api-Client": "partner-a"})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["method"] == "GET" and out["path"] == "/boilerplate"
    assert out["param1"] == "hello" and out["client"] == "partner-a" and out["url_ok"]
    assert out["get_data"] == {"param1": "hello", "x": "1"}
    # numeric comes back as float, dates as ISO strings (Peliqan's fetch semantics)
    assert out["accounts"] == [dict(a, revenue=float(a["revenue"])) for a in ACCOUNTS]

    r = env.srv.post("/boilerplate?x=1", json={"a": 1, "x": "body"})
    assert r.status_code == 200, r.text
    assert r.json()["get_data"] == {"x": "body", "a": 1}
    assert json.loads(r.json()["data"]) == {"a": 1, "x": "body"}


def test_form_posts_have_empty_data_and_their_fields_in_form(env):
    r = env.srv.post("/boilerplate?x=1", data={"name": "Ann", "x": "form"})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["data"] == "" and out["form"] == {"name": "Ann", "x": "form"}
    assert out["get_data"] == {"x": "form", "name": "Ann"}
    r = env.srv.post("/dictstyle", files={"f": ("a.txt", b"hello")}, data={"k": "v"})
    assert r.status_code == 200, r.text
    assert r.json()["data"] == "" and r.json()["form"] == {"f": "hello", "k": "v"}
    r = env.srv.post("/dictstyle", json={"q": [1, 2]}, headers={"X-Api-Client": "c"})
    assert r.json() == {"client": "c", "data": '{"q": [1, 2]}', "body": {"q": [1, 2]},
                        "form": {}, "context": "api_handler"}


def test_scripts_written_for_outside_peliqan_run_unchanged(env):
    r = env.srv.get("/anywhere")
    assert r.status_code == 200, r.text
    assert r.json() == {"context": "api_handler", "same_pq": True, "dw": "dw", "exc": True}


# ---------------------------------------------------------------- reading


def test_fetch_signature_and_value_semantics(env):
    out = env.run("""
import datetime
db = pq.dbconnect(CONN)
DB = %r
rows = db.fetch(DB, 'salesforce', 'accounts')
by_query = db.fetch(DB, query='SELECT id, since FROM salesforce.accounts ORDER BY id')
typed = db.fetch(DB, 'salesforce', 'accounts', enable_datetime_as_string=False)
db.execute(DB, query='DROP TABLE IF EXISTS salesforce.gaps')
db.create_table(DB, 'salesforce', 'gaps', {'id': 'int', 'n': 'float', 'd': 'date'}, 'id')
db.insert(DB, 'salesforce', 'gaps', id=1)
filled = db.fetch(db_name=DB, query='SELECT n, d FROM salesforce.gaps', fillna_with=0,
                  fillnat_with='n/a')
df = db.fetch(DB, 'salesforce', 'accounts', df=True)
result = {
  'types': sorted({type(v).__name__ for r in rows for v in r.values()}),
  'since': [r['since'] for r in by_query],
  'typed': type(typed[0]['since']).__name__,
  'filled': list(filled),
  'df': [type(df).__name__, list(df.columns), len(df), float(df['revenue'].sum())],
}
""" % (env.db,))
    assert out["types"] == ["float", "int", "str"]
    assert out["since"] == ["2019-04-01", "2021-11-30", "2023-01-15"]
    assert out["typed"] == "date"
    assert out["filled"] == [{"n": 0, "d": "n/a"}]
    assert out["df"] == ["DataFrame", ["id", "name", "country", "revenue", "since"], 3,
                         2445.75]


def test_calls_name_a_database_of_their_connection_only(env):
    out = env.run("""
r = {}
db = pq.dbconnect(CONN)
def err(f):
    try:
        f()
        return None
    except (pq.Error, TypeError) as e:
        return [type(e).__name__, str(e)]
r['own_name'] = len(db.fetch(CONN, 'salesforce', 'accounts'))
r['db_name'] = len(db.fetch(%r, 'salesforce', 'accounts'))
r['other'] = err(lambda: db.fetch('dw_123', 'salesforce', 'accounts'))
r['no_name'] = err(lambda: pq.dbconnect())
r['unknown_kw'] = err(lambda: db.fetch(CONN, 'salesforce', 'accounts', limit=5))
r['twice'] = err(lambda: db.fetch(CONN, 'salesforce', 'accounts', table_name='x'))
r['missing'] = err(lambda: db.fetch())
result = r
""" % (env.db,))
    assert out["own_name"] == 3 and out["db_name"] == 3
    assert out["other"][0] == "UnknownDatabase"
    assert "'dw_123'" in out["other"][1] and repr(env.conn) in out["other"][1]
    assert out["no_name"][0] == "InvalidArgument" and "dbconnect" in out["no_name"][1]
    assert out["unknown_kw"] == ["TypeError", "fetch() got an unexpected keyword argument 'limit'"]
    assert out["twice"] == ["TypeError", "fetch() got multiple values for argument 'table_name'"]
    assert out["missing"] == ["TypeError", "fetch() missing required argument 'db_name'"]


def test_dbconnect_with_connection_properties(env):
    if env.kind != "postgres":
        pytest.skip("dbconnect(dict) reaches a PostgreSQL server (once is enough)")
    props = {"host": "127.0.0.1", "port": env.pg.port, "database": "postgres",
             "username": "postgres", "password": "never-shown"}
    out = env.run("""
db = pq.dbconnect(%r)
n = db.fetch('postgres', query='SELECT count(*) AS n FROM salesforce.accounts')[0]['n']
try:
    db.fetch('dw', query='SELECT 1')
    other = None
except pq.UnknownDatabase as e:
    other = str(e)
try:
    pq.dbconnect({'host': '127.0.0.1', 'colour': 'red'})
    bad = None
except pq.InvalidArgument as e:
    bad = str(e)
result = [n, repr(db), other, bad]
""" % (props,))
    assert out[0] == 3
    assert out[1] == "<pq connection 'dbconnect(dict) to postgres'>"
    assert "'dw'" in out[2] and "never-shown" not in out[2]
    assert "'colour'" in out[3]


# ---------------------------------------------------------------- writing


def test_writing_data_to_tables_examples(env):
    out = env.run("""
dbconn = pq.dbconnect(CONN)
DB = %r
dbconn.create_schema(DB, 'crm')
dbconn.execute(DB, query='DROP TABLE IF EXISTS crm.contacts')
dbconn.create_table(DB, 'crm', 'contacts', {'id': 'int', 'name': 'text', 'city': 'text'}, 'id')
record_dict = {'id': 1, 'name': 'John', 'city': 'NY'}
r = [dbconn.insert(DB, 'crm', 'contacts', record_dict),
     dbconn.insert(DB, 'crm', 'contacts', id=2, name='Ann', city='Ghent'),
     dbconn.update(DB, 'crm', 'contacts', 1, {'city': 'Boston'}),
     dbconn.update(DB, 'crm', 'contacts', pk=2, name='Anna'),
     dbconn.upsert(DB, 'crm', 'contacts', 3, {'name': 'Zoe', 'city': 'Paris'}),
     dbconn.upsert(DB, 'crm', 'contacts', 3, {'name': 'Zoe'}),
     dbconn.upsert(DB, 'crm', 'contacts', 3, {'city': 'Lyon'}),
     dbconn.delete(DB, 'crm', 'contacts', 2)]
errors = []
for f in (lambda: dbconn.update(DB, 'crm', 'contacts', None, {'a': 1}),
          lambda: dbconn.insert(DB, 'crm', 'contacts', ['not', 'a', 'dict']),
          lambda: dbconn.delete(DB, 'crm', 'contacts')):
    try:
        f()
        errors.append(None)
    except (pq.Error, TypeError) as e:
        errors.append(type(e).__name__)
rows = dbconn.fetch(DB, query='SELECT id, name, city FROM crm.contacts ORDER BY id')
result = [r, errors, list(rows)]
""" % (env.db,))
    r, errors, rows = out
    assert r == [{"inserted": 1, "id": 1}, {"inserted": 1, "id": 2}, {"updated": 1},
                 {"updated": 1}, {"action": "inserted", "id": 3},
                 {"action": "unchanged", "id": 3}, {"action": "updated", "id": 3},
                 {"deleted": 1}]
    assert errors == ["InvalidArgument", "InvalidArgument", "TypeError"]
    # upsert left the columns it was not given as they were
    assert rows == [{"id": 1, "name": "John", "city": "Boston"},
                    {"id": 3, "name": "Zoe", "city": "Lyon"}]


def test_write_pipeline_examples(env):
    out = env.run("""
import pandas as pd
dbconn = pq.dbconnect(CONN)
DB = %r
for t in ('orders', 'orders__lines', 'people', 'typed', 'plain'):
    dbconn.execute(DB, query='DROP TABLE IF EXISTS pipe.%%s' %% t)
w = {}
# a record, a list of records, a DataFrame, in batches
w['one'] = dbconn.write('pipe', 'people', {'id': 1, 'Full Name': 'John'}, pk='id')
w['list'] = dbconn.write('pipe', 'people', [{'id': 2, 'Full Name': 'Ann'}], pk='id')
df = pd.DataFrame([{'id': 3, 'Full Name': 'Zoe', 'age': None}, {'id': 4, 'Full Name': 'Li', 'age': 7}])
w['df'] = dbconn.write('pipe', 'people', df, pk='id')
rows = [{'id': i, 'Full Name': 'n%%d' %% i} for i in range(5, 255)]
batches = [rows[i:i+100] for i in range(0, len(rows), 100)]
w['batches'] = [dbconn.write('pipe', 'people', b, pk='id')['rows'] for b in batches]
# object_schema (positional, as documented) sets the column types on the first write
object_schema = {'properties': {'id': {'type': 'integer'}, 'amount': {'type': 'number'},
                                'day': {'type': 'string', 'format': 'date'}}}
dbconn.write('pipe', 'typed', [{'id': 1, 'amount': '2.5', 'day': '2024-02-29'}], object_schema, pk='id')
typed = dbconn.fetch(DB, query='SELECT id, amount, day FROM pipe.typed')[0]
# no key: rows are appended
dbconn.write('pipe', 'plain', [{'v': 1}])
dbconn.write('pipe', 'plain', [{'v': 1}])
# nested data: objects become columns, lists child tables
order = {'id': 7, 'customer': {'name': 'Acme', 'vat': 'BE1'}, 'lines': [{'sku': 'a', 'qty': 2}, {'sku': 'b', 'qty': 1}]}
w['nested'] = dbconn.write('pipe', 'orders', [order], pk='id')
order['lines'] = [{'sku': 'c', 'qty': 5}]
dbconn.write('pipe', 'orders', [order], pk='id')
# a row written again unchanged is not updated: its metadata stays as it was
dbconn.execute(DB, query='UPDATE pipe.people SET _sdc_sequence = 42 WHERE id = 1')
dbconn.write('pipe', 'people', {'id': 1, 'Full Name': 'John'}, pk='id')
same = dbconn.fetch(DB, query='SELECT _sdc_sequence FROM pipe.people WHERE id = 1')[0]
dbconn.write('pipe', 'people', {'id': 1, 'Full Name': 'Johnny'}, pk='id')
changed = dbconn.fetch(DB, query='SELECT _sdc_sequence, full_name FROM pipe.people WHERE id = 1')[0]
errors = []
for bad in (lambda: dbconn.write('pipe', 'people', 'not records', pk='id'),
            lambda: dbconn.write('pipe', 'people', [{'Full Name': 'no key'}], pk='id'),
            lambda: dbconn.write('pipe', 'people', [{'id': 9}], pk=5)):
    try:
        bad()
        errors.append(None)
    except pq.Error as e:
        errors.append(type(e).__name__)
result = {
  'w': w,
  'people': list(dbconn.fetch(DB, query='SELECT id, full_name, age FROM pipe.people WHERE id < 5 ORDER BY id')),
  'count': dbconn.fetch(DB, query='SELECT count(*) AS n FROM pipe.people')[0]['n'],
  'typed': [type(typed['id']).__name__, typed['amount'], typed['day']],
  'plain': dbconn.fetch(DB, query='SELECT count(*) AS n FROM pipe.plain')[0]['n'],
  'order': list(dbconn.fetch(DB, query='SELECT id, customer__name, customer__vat FROM pipe.orders')),
  'lines': list(dbconn.fetch(DB, query='SELECT _sdc_source_key_id, _sdc_level_0_id, sku, qty FROM pipe.orders__lines ORDER BY _sdc_level_0_id')),
  'same': same['_sdc_sequence'], 'changed': [changed['_sdc_sequence'] != 42, changed['full_name']],
  'errors': errors,
}
""" % (env.db,))
    w = out["w"]
    assert w["one"]["table_created"] is True and w["one"]["rows"] == 1
    assert w["list"]["rows"] == 1 and w["df"]["rows"] == 2 and w["batches"] == [100, 100, 50]
    assert w["df"]["columns_added"] == ["age"]
    assert out["people"] == [{"id": 1, "full_name": "Johnny", "age": None},
                             {"id": 2, "full_name": "Ann", "age": None},
                             {"id": 3, "full_name": "Zoe", "age": None},
                             {"id": 4, "full_name": "Li", "age": 7.0}]
    assert out["count"] == 254
    assert out["typed"] == ["int", 2.5, "2024-02-29"]
    assert out["plain"] == 2
    assert w["nested"]["child_tables"] == [{"table": "orders__lines", "rows": 2, "created": True}]
    assert out["order"] == [{"id": 7, "customer__name": "Acme", "customer__vat": "BE1"}]
    # the order's lines were replaced by the second write, not added to
    assert out["lines"] == [{"_sdc_source_key_id": 7, "_sdc_level_0_id": 0, "sku": "c", "qty": 5}]
    assert out["same"] == 42 and out["changed"] == [True, "Johnny"]
    assert out["errors"] == ["InvalidArgument"] * 3


# ---------------------------------------------------------------- the script environment


def test_portico_run_has_run_context_st_and_pandas(env):
    script = env.portico.write("background.py", f"""
import pandas
st.title("Nightly load")
st.write("rows:", len(pq.dbconnect({env.conn!r}).fetch({env.db!r}, 'salesforce', 'accounts')))
st.json({{"ok": True}})
st.info("done")
st.dataframe(pandas.DataFrame([{{"a": 1}}]))
print("context", RUN_CONTEXT)
try:
    st.button("Go")
except NotImplementedError as e:
    print("refused:", type(e).__name__, e)
""")
    cp = env.portico.cli("run", script)
    lines = cp.stdout.splitlines()
    assert lines[:3] == ["# Nightly load", "rows: 3", "{"]
    assert "INFO: done" in lines and "context scheduled_run" in lines
    refused = [l for l in lines if l.startswith("refused:")]
    assert len(refused) == 1 and "st.button is not available in Portico" in refused[0]


def test_handlers_see_run_context_and_print_st_to_the_log(env):
    out = env.run("""
st.info("from a handler")
result = [RUN_CONTEXT]
""")
    assert out == ["api_handler"]
    assert env.srv.wait_log(r"request \S+: stdout: INFO: from a handler")


def test_get_database_by_id_and_name(env):
    out = env.run("""
dbs = pq.list_databases()
mine = [d for d in dbs if d['connection_name'] == CONN][0]
by_id = pq.get_database(database_id=mine['id'])
by_name = pq.get_database(database_name=CONN)
by_str = pq.get_database(str(mine['id']))
errs = []
for f in (lambda: pq.get_database(), lambda: pq.get_database(database_id=12345),
          lambda: pq.get_database(database_id='x')):
    try:
        f()
        errs.append(None)
    except pq.Error as e:
        errs.append(type(e).__name__)
result = [by_id == mine, by_name == mine, by_str == mine,
          sorted(t['name'] for t in mine['tables'] if t['schema_name'] == 'salesforce'), errs]
""")
    assert out[:3] == [True, True, True]
    assert "accounts" in out[3]
    assert out[4] == ["InvalidArgument", "NotFound", "InvalidArgument"]


def test_write_composite_keys_and_a_series(env):
    out = env.run("""
import pandas as pd
dbconn = pq.dbconnect(CONN)
DB = %r
dbconn.execute(DB, query='DROP TABLE IF EXISTS pipe.stock')
dbconn.write('pipe', 'stock', [{'shop': 1, 'sku': 'a', 'qty': 5}, {'shop': 1, 'sku': 'b', 'qty': 2}],
             pk=['shop', 'sku'])
dbconn.write('pipe', 'stock', pd.Series({'shop': 1, 'sku': 'a', 'qty': 7}), pk=['shop', 'sku'])
dbconn.write('pipe', 'stock', [{'shop': 2, 'sku': 'a', 'qty': 1}])  # no key given: appended
result = list(dbconn.fetch(DB, query='SELECT shop, sku, qty FROM pipe.stock ORDER BY shop, sku'))
""" % (env.db,))
    assert out == [{"shop": 1, "sku": "a", "qty": 7}, {"shop": 1, "sku": "b", "qty": 2},
                   {"shop": 2, "sku": "a", "qty": 1}]
