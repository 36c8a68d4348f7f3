"""pq's metadata family (issue 8, section 5): list_connections, list_databases, get_schema,
get_table, get_or_create_schema, delete_schema, delete_table, generate_sql_union, refresh_*,
DW_ID, and pq.NotAvailable for what cannot exist in a self-hosted server.

Every test runs twice: on the embedded SQLite warehouse ("dw") and on a PostgreSQL connection
("wh", whose database is also named wh) of a server pgserver.py starts. Code is posted to one
endpoint that runs it inside a real handler and returns `result`.
"""

import json

import pytest

import pgserver
from conftest import Server, make_portico, start_module_server

RUN = """\
import json
CONN = {conn!r}
db = pq.dbconnect(CONN)

def handler(request):
    env = {{'db': db, 'pq': pq, 'CONN': CONN, 'json': json}}
    exec(request['data'], env)
    return env.get('result')
"""


@pytest.fixture(scope="module")
def pg():
    if not pgserver.available():
        pytest.fail("PostgreSQL is not installed (apt-get install postgresql)", pytrace=False)
    with pgserver.PgServer() as server:
        server.psql("CREATE DATABASE wh")
        yield server


class Backend:
    def __init__(self, kind, portico, server, conn):
        self.kind = kind
        self.portico = portico
        self.srv = server
        self.conn = conn

    def run(self, code, status=200, srv=None):
        r = (srv or self.srv).post("/run", data=code.encode())
        assert r.status_code == status, f"{r.status_code}: {r.text}\n{self.srv.log[-3000:]}"
        return r

    def result(self, code, srv=None):
        return self.run(code, srv=srv).json()

    def error(self, code):
        """Runs code that must raise; returns [exception class name, its bases' names, str]."""
        return self.result(f"""
try:
{chr(10).join('    ' + line for line in code.strip().splitlines())}
    result = None
except Exception as e:
    result = [type(e).__name__, [c.__name__ for c in type(e).__mro__], str(e)]
""")


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def be(request, tmp_path_factory, pg):
    portico = make_portico(tmp_path_factory.mktemp(request.param))
    if request.param == "sqlite":
        conn = "dw"
    else:
        conn = "wh"
        portico.cli("db", "add", "wh", "--postgres", pg.dsn(dbname="wh", password="s3cret-pw"))
        portico.cli("db", "add", "pg2", "--postgres", pg.dsn(dbname="postgres"))
    portico.publish("run", RUN.format(conn=conn), methods="POST")
    server = start_module_server(portico)
    yield Backend(request.param, portico, server, conn)
    server.close()


def make_table(be, schema, table, ddl_cols, rows=()):
    """Creates schema.table afresh with the column definitions given and inserts rows."""
    inserts = "\n".join(f"db.execute(CONN, query='INSERT INTO \"{schema}\".\"{table}\" "
                        f"VALUES ({', '.join('?' * len(r))})', params={list(r)!r})" for r in rows)
    be.result(f"""
db.create_schema(CONN, {schema!r})
db.execute(CONN, query='DROP TABLE IF EXISTS "{schema}"."{table}"')
db.execute(CONN, query='CREATE TABLE "{schema}"."{table}" ({ddl_cols})')
{inserts}
result = None
""")


def database_of(dbs, conn):
    found = [d for d in dbs if d["connection_name"] == conn]
    assert len(found) == 1, dbs
    return found[0]


def table_in(dbase, schema, table):
    found = [t for t in dbase["tables"] if t["schema_name"] == schema and t["name"] == table]
    assert len(found) == 1, dbase["tables"]
    return found[0]


# ---------------------------------------------------------------- connections and databases

def test_list_connections_shape_and_no_secrets(be):
    out = be.result("result = [pq.list_connections(), pq.DW_ID, pq.DW_NAME]")
    conns, dw_id, dw_name = out
    assert conns[0]["name"] == dw_name == "dw"
    assert conns[0]["is_datawarehouse"] is True
    assert conns[0]["server_type"] == "sqlite" and conns[0]["kind"] == "sqlite"
    assert conns[0]["database_id"] == dw_id
    for c in conns:
        assert isinstance(c["id"], int) and 0 < c["id"] < 2 ** 53
        assert set(c) >= {"id", "name", "server_type", "kind", "is_datawarehouse", "database_id"}
    assert len({c["id"] for c in conns}) == len(conns)
    if be.kind == "postgres":
        names = {c["name"]: c for c in conns}
        assert set(names) == {"dw", "wh", "pg2"}
        assert names["wh"]["server_type"] == "postgresql"
        assert names["wh"]["is_datawarehouse"] is False
    else:
        assert [c["name"] for c in conns] == ["dw"]
    text = json.dumps(conns)
    assert "s3cret" not in text and "host=" not in text and "port=" not in text


def test_list_databases_lists_schemas_tables_and_fields(be):
    make_table(be, "ld_sales", "orders",
               "id INTEGER PRIMARY KEY, amount NUMERIC(10,2) NOT NULL, note TEXT, day DATE")
    be.result("db.execute(CONN, query='CREATE VIEW ld_sales.big AS SELECT id FROM "
              "ld_sales.orders WHERE amount > 10')\nresult = None")
    dbs = be.result("result = pq.list_databases()")
    assert dbs[0]["connection_name"] == "dw" and dbs[0]["is_datawarehouse"] is True
    d = database_of(dbs, be.conn)
    assert d["name"] == be.conn  # dw: the connection's name; wh: the PostgreSQL dbname
    assert d["kind"] == ("sqlite" if be.kind == "sqlite" else "postgres")
    assert d["error"] is None
    assert d["connection_id"] == d["connection"]
    schemas = {s["name"]: s["id"] for s in d["schemas"]}
    assert "ld_sales" in schemas
    t = table_in(d, "ld_sales", "orders")
    assert t["schema_id"] == schemas["ld_sales"]
    assert t["database_id"] == d["id"]
    assert t["table_type"] == "table"
    assert t["name_in_query"] == '"ld_sales"."orders"'
    assert t["primary_field_name"] == "id" and t["primary_key"] == ["id"]
    fields = [(f["name"], f["type"], f["nullable"], f["is_primary_key"]) for f in t["all_fields"]]
    assert fields == [("id", "int", be.kind == "sqlite", True),
                      ("amount", "numeric", False, False),
                      ("note", "text", True, False),
                      ("day", "date", True, False)]
    assert t["all_fields"][1]["sql_data_type"] == "numeric(10,2)"
    assert [f["position"] for f in t["all_fields"]] == [1, 2, 3, 4]
    v = table_in(d, "ld_sales", "big")
    assert v["table_type"] == "view" and v["primary_field_name"] is None
    assert [f["name"] for f in v["all_fields"]] == ["id"]
    if be.kind == "postgres":
        assert "pg_catalog" not in schemas and "information_schema" not in schemas
        assert database_of(dbs, "pg2")["name"] == "postgres"


def test_ids_are_stable_across_restart_and_processes(be):
    make_table(be, "ids_s", "t", "id INTEGER PRIMARY KEY, v TEXT")
    code = f"""
d = [d for d in pq.list_databases() if d['connection_name'] == CONN][0]
t = [t for t in d['tables'] if t['schema_name'] == 'ids_s'][0]
result = [d['id'], t['schema_id'], t['id'], [f['id'] for f in t['all_fields']], pq.DW_ID]
"""
    first = be.result(code)
    again = be.result(code)
    assert first == again
    # A server started afresh on the same data dir (a restart, other worker processes).
    srv = Server(be.portico, ["--workers", "1"])
    try:
        assert be.result(code, srv=srv) == first
    finally:
        srv.close()
    # And `portico run`, another process altogether.
    script = be.portico.write("ids.py", f"CONN = {be.conn!r}\n" + code + "print(result)\n")
    assert be.portico.cli("run", script).stdout.strip() == repr(first)


# ---------------------------------------------------------------- get_schema, get_table

def test_get_table_fields_and_name_in_query_in_a_real_fetch(be):
    make_table(be, "gt_s", "Mixed Case", 'id INTEGER PRIMARY KEY, "Na""me" TEXT',
               rows=[(1, "a"), (2, "b")])
    out = be.result("""
d = [d for d in pq.list_databases() if d['connection_name'] == CONN][0]
tid = [t['id'] for t in d['tables'] if t['schema_name'] == 'gt_s'][0]
t = pq.get_table(tid)
rows = db.fetch(CONN, query='SELECT * FROM ' + t['name_in_query'] + ' ORDER BY 1')
by_str = pq.get_table(str(tid))
result = [t, [dict(r) for r in rows], by_str == t]
""")
    t, rows, same = out
    assert same is True
    assert t["name"] == "Mixed Case" and t["schema_name"] == "gt_s"
    assert t["name_in_query"] == '"gt_s"."Mixed Case"'
    assert [f["name"] for f in t["all_fields"]] == ["id", 'Na"me']
    assert [f["type"] for f in t["all_fields"]] == ["int", "text"]
    assert t["primary_field_name"] == "id"
    assert t["connection_name"] == be.conn and t["database_name"] == be.conn
    assert isinstance(t["connection_id"], int)
    assert rows == [{"id": 1, 'Na"me': "a"}, {"id": 2, 'Na"me': "b"}]


def test_get_schema_lists_its_tables(be):
    make_table(be, "gs_s", "a", "id INTEGER")
    make_table(be, "gs_s", "b", "id INTEGER")
    out = be.result("""
d = [d for d in pq.list_databases() if d['connection_name'] == CONN][0]
sid = [s['id'] for s in d['schemas'] if s['name'] == 'gs_s'][0]
result = [sid, pq.get_schema(sid), pq.get_schema(schema_id=sid) == pq.get_schema(sid)]
""")
    sid, s, same = out
    assert same is True
    assert s["id"] == sid and s["name"] == "gs_s"
    assert s["database"] == s["database_id"] and s["database_name"] == be.conn
    assert [t["name"] for t in s["tables"]] == ["a", "b"]
    assert all(t["schema_id"] == sid for t in s["tables"])


def test_unknown_ids_raise_not_found_naming_the_id(be):
    for call in ["pq.get_table(123456789)", "pq.get_schema(987654321)",
                 "pq.delete_table(table_id=42)", "pq.generate_sql_union([77])",
                 "pq.refresh_table(table_id=55)"]:
        name, mro, msg = be.error(call)
        assert name == "NotFound", (call, name, msg)
        assert {"Error", "LookupError"} <= set(mro)
        num = call.split("(")[1].split(")")[0].split("=")[-1].strip("[]")
        assert num in msg, (call, msg)
    name, mro, msg = be.error("pq.get_table('not-an-id')")
    assert name == "InvalidArgument" and "table_id" in msg
    name, mro, msg = be.error("pq.get_table(True)")
    assert name == "InvalidArgument"
    name, mro, msg = be.error("pq.get_table()")
    assert name == "TypeError" and "table_id" in msg
    name, mro, msg = be.error("pq.delete_table(bogus=2)")
    assert name == "TypeError" and "bogus" in msg


# ---------------------------------------------------------------- schemas and tables

def test_get_or_create_schema_twice_and_delete_schema(be):
    out = be.result("""
a = pq.get_or_create_schema('goc_s', database_name=CONN)
b = pq.get_or_create_schema('goc_s', database_name=CONN)
db.execute(CONN, query='CREATE TABLE goc_s.t (id INTEGER)')
c = pq.get_or_create_schema('goc_s', database_id=a['database_id'])
result = [a, b, c]
""")
    a, b, c = out
    assert a["created"] is True and b["created"] is False and c["created"] is False
    assert a["id"] == b["id"] == c["id"] and a["name"] == "goc_s"
    assert a["tables"] == [] and [t["name"] for t in c["tables"]] == ["t"]
    out = be.result("""
r = pq.delete_schema(schema_name='goc_s', database_name=CONN)
d = [d for d in pq.list_databases() if d['connection_name'] == CONN][0]
result = [r, [s['name'] for s in d['schemas']]]
""")
    r, names = out
    assert r["deleted"] is True and r["id"] == a["id"] and r["name"] == "goc_s"
    assert "goc_s" not in names
    # Created again: empty, and with the same id.
    again = be.result("result = pq.get_or_create_schema('goc_s', database_name=CONN)")
    assert again["created"] is True and again["tables"] == [] and again["id"] == a["id"]
    r = be.result(f"result = pq.delete_schema(schema_id={a['id']})")
    assert r["deleted"] is True
    name, _, msg = be.error(f"pq.delete_schema(schema_id={a['id']})")
    assert name == "NotFound" and str(a["id"]) in msg


def test_schema_arguments_are_checked(be):
    name, _, msg = be.error("pq.get_or_create_schema('x_s')")
    assert name == "InvalidArgument" and "database_name" in msg
    name, _, msg = be.error("pq.get_or_create_schema('bad name', database_name=CONN)")
    assert name == "InvalidArgument" and "bad name" in msg
    name, _, msg = be.error("pq.get_or_create_schema('x_s', database_name='nodb')")
    assert name == "NotFound" and "nodb" in msg
    name, _, msg = be.error("pq.delete_schema(schema_name='nope_s', database_name=CONN)")
    assert name == "NotFound" and "nope_s" in msg
    name, _, msg = be.error("pq.delete_schema()")
    assert name == "InvalidArgument" and "schema_id" in msg


@pytest.mark.parametrize("how", ["id", "name", "schema_id"])
def test_delete_table(be, how):
    make_table(be, "dt_s", "gone", "id INTEGER", rows=[(1,)])
    make_table(be, "dt_s", "kept", "id INTEGER", rows=[(2,)])
    arg = {"id": "table_id=t['id']",
           "name": "table_name='gone', schema_name='dt_s'",
           "schema_id": "table_name='gone', schema_id=t['schema_id']"}[how]
    out = be.result(f"""
d = [d for d in pq.list_databases() if d['connection_name'] == CONN][0]
t = [t for t in d['tables'] if t['schema_name'] == 'dt_s' and t['name'] == 'gone'][0]
r = pq.delete_table({arg})
d = [d for d in pq.list_databases() if d['connection_name'] == CONN][0]
result = [t['id'], r, sorted(t['name'] for t in d['tables'] if t['schema_name'] == 'dt_s'),
          [dict(x) for x in db.fetch(CONN, 'dt_s', 'kept')]]
""")
    tid, r, left, kept = out
    assert r == {"deleted": True, "id": tid, "name": "gone", "schema_name": "dt_s",
                 "schema_id": r["schema_id"]}
    assert left == ["kept"] and kept == [{"id": 2}]
    name, _, msg = be.error(f"pq.delete_table(table_id={tid})")
    assert name == "NotFound" and str(tid) in msg


def test_delete_table_force_drops_dependent_views(be):
    make_table(be, "dtf_s", "base", "id INTEGER")
    be.result("db.execute(CONN, query='CREATE VIEW dtf_s.v AS SELECT id FROM dtf_s.base')\n"
              "result = None")
    if be.kind == "postgres":
        name, _, msg = be.error("pq.delete_table(table_name='base', schema_name='dtf_s')")
        assert name == "SQLError" and "depend" in msg
    out = be.result("""
r = pq.delete_table(table_name='base', schema_name='dtf_s', force=True)
d = [d for d in pq.list_databases() if d['connection_name'] == CONN][0]
result = [r['deleted'], sorted(t['name'] for t in d['tables'] if t['schema_name'] == 'dtf_s')]
""")
    # PostgreSQL drops the view with the table (CASCADE); SQLite keeps the view's definition.
    assert out == [True, [] if be.kind == "postgres" else ["v"]]


def test_delete_table_arguments_are_checked(be):
    name, _, msg = be.error("pq.delete_table()")
    assert name == "InvalidArgument" and "table_id" in msg
    name, _, msg = be.error("pq.delete_table(table_name='x')")
    assert name == "InvalidArgument" and "schema_name" in msg
    name, _, msg = be.error("pq.delete_table(table_name='nope', schema_name='nope_s')")
    assert name == "NotFound" and "nope" in msg


def test_database_named_by_its_postgresql_dbname(be):
    if be.kind != "postgres":
        pytest.skip("only PostgreSQL connections have a dbname of their own")
    out = be.result("""
s = pq.get_or_create_schema('by_dbname', database_name='postgres')
d = [d for d in pq.list_databases() if d['connection_name'] == 'pg2'][0]
pq.delete_schema(schema_id=s['id'])
result = [s['connection_name'], s['database_name'], s['database_id'] == d['id']]
""")
    assert out == ["pg2", "postgres", True]


# ---------------------------------------------------------------- generate_sql_union

def test_generate_sql_union_runs_and_gives_the_rows(be):
    make_table(be, "un_s", "paris", "id INTEGER, amount INTEGER, city TEXT",
               rows=[(1, 10, "P")])
    make_table(be, "un_s", "london", "id INTEGER, amount TEXT, extra TEXT",
               rows=[(2, "twenty", "x")])
    out = be.result("""
d = [d for d in pq.list_databases() if d['connection_name'] == CONN][0]
ids = {t['name']: t['id'] for t in d['tables'] if t['schema_name'] == 'un_s'}
plain = pq.generate_sql_union([ids['paris'], ids['london']])
labelled = pq.generate_sql_union(table_ids=[ids['paris'], ids['london']],
                                 sources={ids['paris']: "Paris", str(ids['london']): "Lon'don"})
result = [plain, labelled,
          [dict(r) for r in db.fetch(CONN, query=plain + ' ORDER BY 1')],
          [dict(r) for r in db.fetch(CONN, query=labelled + ' ORDER BY 2')]]
""")
    plain, labelled, rows, lrows = out
    assert "UNION ALL" in plain and '"un_s"."paris"' in plain and '"un_s"."london"' in plain
    assert 'CAST("amount" AS TEXT)' in plain
    assert rows == [{"id": 1, "amount": "10", "city": "P", "extra": None},
                    {"id": 2, "amount": "twenty", "city": None, "extra": "x"}]
    assert lrows == [{"source": "Paris", "id": 1, "amount": "10", "city": "P", "extra": None},
                     {"source": "Lon'don", "id": 2, "amount": "twenty", "city": None,
                      "extra": "x"}]


def test_generate_sql_union_arguments(be):
    name, _, msg = be.error("pq.generate_sql_union([])")
    assert name == "InvalidArgument" and "empty" in msg
    name, _, msg = be.error("pq.generate_sql_union(5)")
    assert name == "TypeError" and "table_ids" in msg
    if be.kind == "postgres":
        make_table(be, "un2_s", "t", "id INTEGER")
        name, _, msg = be.error("""
dw = pq.dbconnect('dw')
dw.create_schema('dw', 'un2_s')
dw.execute('dw', query='CREATE TABLE IF NOT EXISTS un2_s.t (id INTEGER)')
ids = [t['id'] for d in pq.list_databases() for t in d['tables'] if t['schema_name'] == 'un2_s']
pq.generate_sql_union(ids)
""")
        assert name == "InvalidArgument" and "one database connection" in msg


# ---------------------------------------------------------------- refresh and NotAvailable

def test_refresh_functions_succeed_at_once(be):
    make_table(be, "rf_s", "t", "id INTEGER")
    out = be.result("""
d = [d for d in pq.list_databases() if d['connection_name'] == CONN][0]
t = [t for t in d['tables'] if t['schema_name'] == 'rf_s'][0]
result = [pq.refresh_database(database_id=d['id']),
          pq.refresh_schema(schema_id=t['schema_id'], is_async=False),
          pq.refresh_table(table_id=t['id']),
          pq.refresh_table(connection_name=CONN, schema_name='rf_s', table_name='t'),
          pq.get_refresh_table_status(table_id=t['id'], task_id='x')]
""")
    for status in out:
        assert status["syncing"] is False and status["task_id"] is None
        assert status["status"] == "done"
    name, _, msg = be.error("pq.refresh_database(database_id=31337)")
    assert name == "NotFound" and "31337" in msg


@pytest.mark.parametrize("call,reason", [
    ("pq.run_pipeline(connection_name='hubspot')", "pipelines"),
    ("pq.connect('hubspot')", "connectors"),
    ("pq.trinoconnect()", "Trino"),
    ("pq.list_changes(table_id=1)", "writeback"),
    ("pq.update_table(1, query='select 1')", "saved queries"),
    ("pq.add_subaccount({}, {})", "sub-accounts"),
    ("pq.find_resource('table', resource_name='x')", "list_databases"),
    ("pq.refresh_connection(connection_name='x')", "pipelines"),
])
def test_saas_functions_raise_not_available(be, call, reason):
    if be.kind == "postgres" and reason not in ("pipelines", "connectors"):
        pytest.skip("the same on both back ends; a sample is enough")
    name, mro, msg = be.error(call)
    fn = call.split("(")[0].split(".")[1]
    assert name == "NotAvailable"
    assert {"Error", "NotImplementedError"} <= set(mro)
    assert msg.startswith(f"pq.{fn} is not available in Portico: ")
    assert reason in msg


def test_not_available_names_are_attributes(be):
    out = be.result("""
names = ['connect', 'trinoconnect', 'sftpconnect', 'aiconnect', 'run_pipeline',
         'discover_pipeline', 'full_resync', 'get_pipeline_runs', 'get_pipeline_logs',
         'get_pipeline_run', 'update_writeback_status', 'update_cell', 'load_table',
         'materialize', 'add_query', 'upsert_query', 'update_field', 'update_schema',
         'update_database', 'hide_table', 'get_final_query', 'replicate',
         'discover_object_schema', 'get_connection_state', 'set_connection_state',
         'send_connection_invite', 'list_subaccounts', 'get_subaccount_instance']
result = [[n for n in names if not callable(getattr(pq, n, None))],
          issubclass(pq.NotAvailable, pq.Error), issubclass(pq.NotFound, pq.Error),
          pq.run_pipeline.__name__]
""")
    assert out == [[], True, True, "run_pipeline"]


def test_unreachable_connection_is_listed_with_its_error_and_skipped(be, pg):
    if be.kind != "postgres":
        pytest.skip("needs a PostgreSQL connection that can go away")
    pg.psql("CREATE DATABASE gone_db")
    be.portico.cli("db", "add", "gone", "--postgres", pg.dsn(dbname="gone_db", password="pw-9"))
    pg.psql("DROP DATABASE gone_db")
    try:
        out = be.result("""
dbs = pq.list_databases()
gone = [d for d in dbs if d['connection_name'] == 'gone'][0]
try:
    pq.get_table(4242)
    err = None
except pq.NotFound as e:
    err = str(e)
result = [gone, err, [d['connection_name'] for d in dbs if d['error'] is None]]
""")
    finally:
        be.portico.cli("db", "rm", "gone")
    gone, err, ok = out
    assert gone["schemas"] == [] and gone["tables"] == []
    assert "gone_db" in gone["error"] and "pw-9" not in json.dumps(gone)
    assert "4242" in err and "gone" in err
    assert ok == ["dw", "pg2", "wh"]  # the default warehouse first, then by name
