"""The admin API's /connections over real HTTP: add (a dead PostgreSQL DSN is refused with the
reason and nothing stored), list (never a password), rm, and browsing: schemas, tables,
columns, first rows, and one read-only SELECT with a row cap and a timeout, on the embedded
SQLite warehouse and on PostgreSQL (pgserver.py)."""

import os
import time

import pytest

import pgserver
from conftest import AdminServer, assert_admin_error

PASSWORD = "pg-s3cret-pw"


@pytest.fixture(scope="module")
def pg():
    if not pgserver.available():
        pytest.fail("PostgreSQL is not installed (apt-get install postgresql)", pytrace=False)
    with pgserver.PgServer() as server:
        server.psql("CREATE SCHEMA shop; CREATE TABLE shop.items(id int PRIMARY KEY, name text);"
                    "INSERT INTO shop.items SELECT g, 'item ' || g FROM generate_series(1, 30) g")
        yield server


@pytest.fixture(scope="module")
def adm(module_portico, tmp_path_factory):
    csv = tmp_path_factory.mktemp("csv") / "people.csv"
    csv.write_text("id,name,age\n" + "".join(f"{i},p{i},{20 + i}\n" for i in range(1, 26)))
    module_portico.cli("db", "import", "dw", "app", "people", str(csv))
    s = AdminServer(module_portico)
    yield s
    s.close()


def as_role(adm, role):
    c = adm.client()
    assert c.login(role).status_code == 200
    return c


def audit_len(adm):
    return len(adm.admin().get("/audit", params={"limit": 10000}).json()["entries"])


def refused(adm, call, status, code, field=None):
    a = adm.admin()
    before, n = a.get("/connections").json(), audit_len(adm)
    err = assert_admin_error(call(), status, code, field)
    assert a.get("/connections").json() == before and audit_len(adm) == n
    return err


def test_browse_the_embedded_warehouse_as_viewer(adm):
    v = as_role(adm, "viewer")
    assert "dw" in [c["name"] for c in v.get("/connections").json()["connections"]]
    assert "app" in v.get("/connections/dw/schemas").json()["schemas"]
    assert v.get("/connections/dw/schemas/app/tables").json()["tables"] == [
        {"name": "people", "view": False}]
    cols = v.get("/connections/dw/schemas/app/tables/people").json()["columns"]
    assert [c["name"] for c in cols] == ["id", "name", "age"]
    r = v.get("/connections/dw/schemas/app/tables/people/rows", params={"limit": 3}).json()
    assert r["columns"] == ["id", "name", "age"] and r["count"] == 3 and r["truncated"] is True
    assert r["rows"][0] == [1, "p1", 21]
    r = v.get("/connections/dw/schemas/app/tables/people/rows").json()
    assert r["count"] == 25 and r["truncated"] is False
    for path in ("/connections/nope/schemas", "/connections/dw/schemas/nope/tables",
                 "/connections/dw/schemas/app/tables/nope",
                 "/connections/dw/schemas/app/tables/nope/rows",
                 "/connections/dw/schemas/a%22b/tables"):
        assert_admin_error(v.get(path), 404, "not_found")
    assert_admin_error(v.get("/connections/dw/schemas/app/tables/people/rows",
                             params={"limit": 5000}), 400, "bad_request", "limit")


def test_query_sqlite_read_only_with_a_cap(adm):
    v = as_role(adm, "viewer")
    r = v.post("/connections/dw/query", json={"sql": "SELECT id, name FROM app.people "
                                              "WHERE age > ? ORDER BY id".replace("?", "30"),
                                              "limit": 2})
    assert r.status_code == 200, r.text
    assert r.json()["rows"] == [[11, "p11"], [12, "p12"]] and r.json()["truncated"] is True
    r = v.post("/connections/dw/query", json={"sql": "-- count\nWITH x AS (SELECT 1 AS a) "
                                              "SELECT a, ';' AS s FROM x;"})
    assert r.status_code == 200 and r.json()["rows"] == [[1, ";"]]
    for sql in ("DELETE FROM app.people", "SELECT 1; DELETE FROM app.people",
                "UPDATE app.people SET age = 0", "PRAGMA query_only = 0", "",
                "SELECT 1; SELECT 2", "/* x */ DROP TABLE app.people"):
        assert_admin_error(v.post("/connections/dw/query", json={"sql": sql}), 400,
                           "bad_request", "sql")
    # A write hidden in a WITH is refused by the read-only connection.
    r = v.post("/connections/dw/query",
               json={"sql": "WITH d AS (SELECT 1) DELETE FROM app.people"})
    assert_admin_error(r, 400, "bad_request", "sql")
    assert v.get("/connections/dw/schemas/app/tables/people/rows").json()["count"] == 25
    for body, field in (({}, "sql"), ({"sql": 1}, "sql"), ({"sql": "SELECT 1", "limit": 0},
                                                           "limit"),
                        ({"sql": "SELECT 1", "timeout": "x"}, "timeout")):
        assert_admin_error(v.post("/connections/dw/query", json=body), 400, "bad_request", field)
    assert_admin_error(v.post("/connections/nope/query", json={"sql": "SELECT 1"}), 404,
                       "not_found")
    assert_admin_error(v.post("/connections/dw/query", json={"sql": "SELECT nope FROM x"}), 400,
                       "bad_request", "sql")


def test_query_sqlite_timeout_stops_a_step_without_rows(adm):
    """A recursive CTE under an aggregate runs forever inside one step and yields no row: the
    timeout must stop it there, not only between rows."""
    v = as_role(adm, "viewer")
    t0 = time.monotonic()
    r = v.post("/connections/dw/query", timeout=60,
               json={"sql": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
                            "SELECT max(x) FROM c", "timeout": 1})
    assert_admin_error(r, 504, "timeout")
    assert time.monotonic() - t0 < 30
    # The connection is usable again at once.
    r = v.post("/connections/dw/query", json={"sql": "SELECT 1 AS one"})
    assert r.status_code == 200 and r.json()["rows"] == [[1]]


def test_add_list_rm_sqlite_and_refusals(adm):
    a, e, v = adm.admin(), as_role(adm, "editor"), as_role(adm, "viewer")
    r = e.post("/connections", json={"name": "lake", "kind": "sqlite"})
    assert r.status_code == 201, r.text
    assert r.json()["kind"] == "sqlite" and r.json()["location"].endswith("/warehouse/lake")
    refused(adm, lambda: e.post("/connections", json={"name": "lake", "kind": "sqlite"}), 409,
            "conflict", "name")
    refused(adm, lambda: e.post("/connections", json={"name": "dw", "kind": "sqlite"}), 409,
            "conflict", "name")
    refused(adm, lambda: e.post("/connections", json={"name": "x", "kind": "mysql"}), 400,
            "bad_request", "kind")
    refused(adm, lambda: e.post("/connections", json={"name": "x", "kind": "postgres"}), 400,
            "bad_request", "dsn")
    refused(adm, lambda: e.post("/connections", json={"name": "bad name", "kind": "sqlite"}),
            400, "bad_request", "name")
    refused(adm, lambda: e.post("/connections", json={"name": "x", "kind": "sqlite",
                                                      "dir": "/no/such/dir"}),
            400, "bad_request", "dir")
    refused(adm, lambda: v.post("/connections", json={"name": "y", "kind": "sqlite"}), 403,
            "forbidden")
    refused(adm, lambda: v.delete("/connections/lake"), 403, "forbidden")
    refused(adm, lambda: e.delete("/connections/dw"), 409, "conflict")
    assert e.delete("/connections/lake").json()["removed"] == "lake"
    refused(adm, lambda: e.delete("/connections/lake"), 404, "not_found")
    assert a.get("/audit").json()["entries"][0]["action"] == "DELETE /connections/{name}"


def test_postgres_add_checks_redacts_browses_and_times_out(adm, pg):
    e, v = as_role(adm, "editor"), as_role(adm, "viewer")
    dead = f"host=127.0.0.1 port={pgserver._free_port()} user=postgres password={PASSWORD}"
    err = refused(adm, lambda: e.post("/connections", json={"name": "pgx", "kind": "postgres",
                                                            "dsn": dead}),
                  400, "bad_request", "dsn")
    assert PASSWORD not in err["message"] and err["message"]
    r = e.post("/connections", json={"name": "pg", "kind": "postgres",
                                     "dsn": pg.dsn(password=PASSWORD)})
    assert r.status_code == 201, r.text
    assert PASSWORD not in r.text
    listing = v.get("/connections")
    assert PASSWORD not in listing.text and "pg" in [c["name"] for c in
                                                     listing.json()["connections"]]
    assert PASSWORD not in adm.admin().get("/audit").text
    assert "shop" in v.get("/connections/pg/schemas").json()["schemas"]
    assert v.get("/connections/pg/schemas/shop/tables").json()["tables"] == [
        {"name": "items", "view": False}]
    cols = v.get("/connections/pg/schemas/shop/tables/items").json()["columns"]
    assert [(c["name"], c["pk"]) for c in cols] == [("id", 1), ("name", 0)]
    rows = v.get("/connections/pg/schemas/shop/tables/items/rows", params={"limit": 5}).json()
    assert rows["count"] == 5 and rows["truncated"] is True
    r = v.post("/connections/pg/query", json={"sql": "SELECT id FROM shop.items ORDER BY id",
                                              "limit": 3})
    assert r.json()["rows"] == [[1], [2], [3]] and r.json()["truncated"] is True
    # Read-only: a write hidden in a WITH is refused by the transaction.
    r = v.post("/connections/pg/query",
               json={"sql": "WITH d AS (DELETE FROM shop.items RETURNING id) SELECT * FROM d"})
    assert_admin_error(r, 400, "bad_request", "sql")
    assert pg.psql("SELECT count(*) FROM shop.items").strip() == "30"
    r = v.post("/connections/pg/query", json={"sql": "SELECT pg_sleep(5)", "timeout": 1})
    assert_admin_error(r, 504, "timeout")
    # The connection is usable again afterwards.
    assert v.post("/connections/pg/query", json={"sql": "SELECT 1 AS one"}).json()["rows"] \
        == [[1]]
    # /execute: any statement, admin only, the same timeout.
    a = adm.admin()
    r = a.post("/connections/pg/execute", json={"sql": "UPDATE shop.items SET name = 'x'"
                                                       " WHERE id <= 2"})
    assert r.status_code == 200 and r.json()["changed"] == 2, r.text
    assert pg.psql("SELECT count(*) FROM shop.items WHERE name = 'x'").strip() == "2"
    r = a.post("/connections/pg/execute", json={"sql": "SELECT pg_sleep(5)", "timeout": 1})
    assert_admin_error(r, 504, "timeout")
    r = a.post("/connections/pg/execute", json={"sql": "SELECT id, 1.5::numeric AS n FROM "
                                                       "shop.items ORDER BY id", "limit": 2})
    assert r.json()["rows"] == [[1, 1.5], [2, 1.5]] and r.json()["truncated"] is True


def test_execute_any_statement_admin_only(adm):
    a, e, v = adm.admin(), as_role(adm, "editor"), as_role(adm, "viewer")
    count = {"sql": "SELECT count(*) AS n FROM app.people"}
    for who in (e, v):
        refused(adm, lambda: who.post("/connections/dw/execute",
                                      json={"sql": "DELETE FROM app.people"}), 403, "forbidden")
    assert a.post("/connections/dw/execute", json=count).json()["rows"] == [[25]]
    n = audit_len(adm)
    r = a.post("/connections/dw/execute", json={"sql": "UPDATE app.people SET age = age + 1"
                                                       " WHERE id <= 3"})
    assert r.status_code == 200 and r.json()["changed"] == 3 and r.json()["rows"] == []
    entry = a.get("/audit").json()["entries"][0]
    assert audit_len(adm) == n + 1 and entry["action"] == "POST /connections/{name}/execute"
    r = a.post("/connections/dw/execute", json={"sql": "SELECT id, name, NULL AS z, x'0a' AS b "
                                                       "FROM app.people ORDER BY id",
                                                "limit": 2, "text": True})
    assert r.json()["columns"] == ["id", "name", "z", "b"]
    assert r.json()["rows"] == [["1", "p1", "NULL", "X'0a'"], ["2", "p2", "NULL", "X'0a'"]]
    assert r.json()["truncated"] is True
    for body, status, code, field in (({}, 400, "bad_request", "sql"),
                                      ({"sql": "SELECT 1", "text": "yes"}, 400, "bad_request",
                                       "text"),
                                      ({"sql": "SELECT 1", "limit": 0}, 400, "bad_request",
                                       "limit"),
                                      ({"sql": "SELECT 1", "timeout": 0}, 400, "bad_request",
                                       "timeout"),
                                      ({"sql": "DELETE FROM app.nope"}, 400, "bad_request", "sql"),
                                      ({"sql": "DELETE FROM app.people WHERE id = 1 OR '"
                                        + "x" * (70 << 10) + "' = ''"}, 413, "too_large",
                                       "sql")):
        refused(adm, lambda: a.post("/connections/dw/execute", json=body), status, code, field)
    refused(adm, lambda: a.post("/connections/nope/execute", json={"sql": "DELETE FROM x.y"}),
            404, "not_found")
    assert a.post("/connections/dw/execute", json=count).json()["rows"] == [[25]]


def test_import_text_as_editor(adm):
    a, e, v = adm.admin(), as_role(adm, "editor"), as_role(adm, "viewer")
    body = {"schema": "imp", "table": "t", "filename": "t.csv", "content": "id,x\n1,a\n2,b\n"}
    refused(adm, lambda: v.post("/connections/dw/import", json=body), 403, "forbidden")
    r = e.post("/connections/dw/import", json=body)
    assert r.status_code == 201, r.text
    assert r.json()["rows"] == 2 and r.json()["table"] == "t"
    assert "primary key" in r.json()["note"] or r.json()["note"] == ""
    r = e.post("/connections/dw/import", json={"schema": "imp", "table": "j", "filename": "j.json",
                                               "content": '[{"k": "x", "v": 1}]',
                                               "primary_key": "k"})
    assert r.status_code == 201 and r.json()["rows"] == 1, r.text
    count = {"sql": "SELECT count(*) FROM imp.t"}
    for b, status, code, field in (
            ({k: x for k, x in body.items() if k != "content"}, 400, "bad_request", "content"),
            ({**body, "table": 5}, 400, "bad_request", "table"),
            ({**body, "content": "id,x\n1,a\n1,b\n", "primary_key": "id", "table": "d"}, 400,
             "bad_request", "content"),
            ({**body, "content": "x" * (3 << 20)}, 413, "too_large", None)):
        err = refused(adm, lambda: e.post("/connections/dw/import", json=b), status, code, field)
        assert ".import-" not in err["message"]
    refused(adm, lambda: e.post("/connections/nope/import", json=body), 404, "not_found")
    assert a.post("/connections/dw/execute", json=count).json()["rows"] == [[2]]
    assert "d" not in [t["name"] for t in
                       v.get("/connections/dw/schemas/imp/tables").json()["tables"]]
    assert not [f for f in os.listdir(adm.portico.data) if f.startswith(".import-")]
