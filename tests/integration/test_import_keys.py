"""`portico db import --primary-key`, and the automatic `id` key, on SQLite and PostgreSQL.

Each test imports into its own table of one module-wide data dir per warehouse kind; the
PostgreSQL server comes from pgserver.py.
"""

import json
import os

import pytest

import pgserver
from conftest import Portico, assert_cli_error, make_portico, run_cli


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def wh(request, tmp_path_factory):
    base = tmp_path_factory.mktemp("keys-" + request.param)
    if request.param == "sqlite":
        yield make_portico(base)
        return
    if not pgserver.available():
        pytest.fail("PostgreSQL is not installed (apt-get install postgresql)", pytrace=False)
    with pgserver.PgServer() as pg:
        pg.psql("CREATE DATABASE warehouse")
        data = os.path.join(str(base), "data")
        run_cli(data, "init", "--warehouse", pg.dsn("warehouse"))
        yield Portico(data, os.path.join(str(base), "files"))


def fetch(portico, sql):
    return json.loads(portico.cli("db", "query", "dw", sql, "--json").stdout)


def table_exists(portico, schema, table):
    sql = f"select 1 from {schema}.{table} limit 1"
    return portico.cli("db", "query", "dw", sql, check=False).returncode == 0


def test_id_column_becomes_the_key_and_upsert_matches_on_it(wh):
    path = wh.write("people.csv", "id,name\n1,Ann\n2,Bob\n3,Cy\n")
    out = wh.cli("db", "import", "dw", "k", "people", path).stdout
    assert out.strip() == ("imported 3 rows into dw.k.people; primary key: id "
                           "(its values are unique and not null)")
    script = wh.write("upsert.py", """\
        db = pq.dbconnect('dw')
        db.upsert('dw', 'k', 'people', 2, {'id': 2, 'name': 'Bea'})
        db.upsert('dw', 'k', 'people', 4, {'id': 4, 'name': 'Di'})
        """)
    wh.cli("run", script)
    rows = fetch(wh, "select id, name from k.people order by id")
    assert rows == [{"id": 1, "name": "Ann"}, {"id": 2, "name": "Bea"}, {"id": 3, "name": "Cy"},
                    {"id": 4, "name": "Di"}]
    # Appending rows whose id is already there fails as a whole.
    again = wh.write("again.csv", "id,name\n5,Ed\n1,Ann\n")
    assert_cli_error(wh.cli("db", "import", "dw", "k", "people", again, check=False),
                     "again.csv", "line 3")
    assert [r["id"] for r in fetch(wh, "select id from k.people order by id")] == [1, 2, 3, 4]


def test_json_id_key(wh):
    path = wh.write("cities.json", json.dumps([{"id": "g", "city": "Ghent"},
                                               {"id": "l", "city": "Liège"}]))
    out = wh.cli("db", "import", "dw", "k", "cities", path).stdout
    assert "primary key: id" in out


@pytest.mark.parametrize("content,why", [
    ("id,name\n1,Ann\n1,Bob\n", "lines 2 and 3 have the same value"),
    ("id,name\n1,Ann\n,Bob\n", "line 3 has no value for it"),
])
def test_id_that_cannot_be_the_key_is_reported(wh, content, why):
    table = "dup" if "1,Bob" in content else "nul"
    out = wh.cli("db", "import", "dw", "k", table, wh.write(table + ".csv", content)).stdout
    assert out.strip() == (f"imported 2 rows into dw.k.{table}; no primary key: column id does "
                           f"not qualify ({why}); name one with --primary-key COL[,COL]")


def test_named_composite_key(wh):
    path = wh.write("lines.csv", "order_no,line,sku\n7,1,a\n7,2,b\n8,1,a\n")
    out = wh.cli("db", "import", "dw", "k", "lines", path, "--primary-key", "order_no, line")
    assert out.stdout.strip() == "imported 3 rows into dw.k.lines; primary key: order_no, line"
    dup = wh.write("lines2.csv", "order_no,line,sku\n9,1,a\n9,1,b\n")
    assert_cli_error(wh.cli("db", "import", "dw", "k", "lines", dup, "--primary-key",
                            "order_no,line", check=False), "lines 2 and 3")
    assert len(fetch(wh, "select sku from k.lines")) == 3


@pytest.mark.parametrize("key,words", [
    ("nope", ["no column", "nope"]),
    ("sku,sku", ["named twice"]),
    ("bad-name", ["not a valid column name"]),
    ("", ["COL[,COL...]"]),
    ("sku", ["line 3 has no value"]),
])
def test_bad_key_imports_nothing(wh, key, words):
    path = wh.write("bad.csv", "n,sku\n1,a\n2,\n")
    cp = wh.cli("db", "import", "dw", "k", "bad", path, "--primary-key", key, check=False)
    assert_cli_error(cp, "bad.csv", *words)
    assert not table_exists(wh, "k", "bad")


def test_named_key_must_match_an_existing_table(wh):
    wh.cli("db", "import", "dw", "k", "ex", wh.write("ex.csv", "id,v\n1,a\n"))
    cp = wh.cli("db", "import", "dw", "k", "ex", wh.write("ex2.csv", "id,v\n2,b\n"),
                "--primary-key", "v", check=False)
    assert_cli_error(cp, "exists", "primary key")
    out = wh.cli("db", "import", "dw", "k", "ex", wh.write("ex3.csv", "id,v\n3,c\n"),
                 "--primary-key", "id").stdout
    assert out.strip() == "imported 1 row into dw.k.ex; primary key: id"
