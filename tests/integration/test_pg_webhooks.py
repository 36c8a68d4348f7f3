"""The webhook inbox on a PostgreSQL store (issue 11, §2): events of every node go to the store's
database (`webhooks.events` beside a store kept in `public`), deduplicated across nodes,
processed once across nodes with leases that outlive a killed node, read by handlers through a
PostgreSQL `dw` on the same database, and answered 503 (never 2xx) while the database is down.
"""

import csv
import io
import json
import os
import shutil
import time

import pytest

from conftest import (Portico, Server, make_portico, pg_store_dsn, run_cli,
                      start_module_server)
from test_webhooks import token_of, wait_for

DELIVERY = "X-Delivery"

# Processing script: each attempt is a row of processed(event_id, attempt) in the shared `dw`.
RECORD = """\
def handler(event):
    pq.dbconnect('dw').execute('dw', query='INSERT INTO processed(event_id, attempt) VALUES (%d, %d)'
                               % (event['id'], event['attempts']))
"""

# The first attempt says it started, then blocks (its node is killed meanwhile); a later one
# records itself.
BLOCK_FIRST = """\
import time
def handler(event):
    if event['attempts'] == 1:
        with open(%r, 'a') as f:
            f.write('started\\n')
        time.sleep(120)
    pq.dbconnect('dw').execute('dw', query='INSERT INTO processed(event_id, attempt) VALUES (%%d, %%d)'
                               %% (event['id'], event['attempts']))
"""

READ_EVENTS = """\
def handler(request):
    return pq.dbconnect('dw').fetch('dw', 'webhooks', 'events', query=None)
"""


def fresh_database():
    """(server, dsn) of a new database on the session's PostgreSQL server: a store there
    lives in `public`, so its events are `webhooks.events`, as on one embedded node."""
    pg_store_dsn()                      # starts the session's server (or skips)
    import conftest
    srv = conftest._PG_STORE["server"]
    name = f"d_{os.getpid()}_{time.monotonic_ns()}"
    srv.psql(f"CREATE DATABASE {name}")
    return srv, srv.dsn(name), name


def two_nodes(base, dsn):
    """Node A initialised on dsn, its `dw` the same database, and node B joining with A's
    master key."""
    a = Portico(os.path.join(str(base), "a", "data"), os.path.join(str(base), "a", "files"))
    run_cli(a.data, "init", "--store", dsn, "--warehouse", dsn)
    data = os.path.join(str(base), "b", "data")
    os.makedirs(os.path.join(data, "keys"), mode=0o700)
    os.chmod(data, 0o700)
    shutil.copy2(os.path.join(a.data, "keys", "master.key"),
                 os.path.join(data, "keys", "master.key"))
    run_cli(data, "init", "--store", dsn)
    return a, Portico(data, os.path.join(str(base), "b", "files"))


def rows(srv, db, sql):
    out = srv.psql(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)", dbname=db)
    return list(csv.reader(io.StringIO(out)))


class Cluster:
    pass


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Two nodes serving on one fresh database: source `gh` deduplicates by DELIVERY, source
    `orders` runs RECORD, and /read_events reads the events with pq."""
    c = Cluster()
    c.srv, dsn, c.db = fresh_database()
    c.a, c.b = two_nodes(tmp_path_factory.mktemp("cluster"), dsn)
    c.srv.psql("CREATE TABLE processed(event_id BIGINT, attempt BIGINT)", dbname=c.db)
    c.a.add_script("record", RECORD)
    c.a.publish("read_events", READ_EVENTS)
    c.a.cli("webhook", "source", "add", "gh", "--dedup-header", DELIVERY)
    c.a.cli("webhook", "source", "add", "orders", "--script", "record")
    c.token = token_of(c.a)
    c.sa, c.sb = start_module_server(c.a), start_module_server(c.b)
    yield c
    c.sa.close()
    c.sb.close()


def test_events_of_both_nodes_in_one_table_deduplicated(cluster):
    c = cluster
    srv, db, a, b, sa, sb = c.srv, c.db, c.a, c.b, c.sa, c.sb
    path = f"/webhook/{c.token}/gh"
    assert token_of(b) == c.token

    first = sa.post(path, data=b'{"n": 1}', headers={DELIVERY: "d-1"})
    assert first.status_code == 200, first.text
    eid = first.json()["id"]
    again = sb.post(path, data=b'{"n": 1, "again": true}', headers={DELIVERY: "d-1"})
    assert again.status_code == 200 and again.json() == {"status": "received", "id": eid,
                                                         "duplicate": True}, again.text
    other = sb.post(path, data="caf\u00e9 \x00 nul".encode(), headers={DELIVERY: "d-2"})
    assert other.status_code == 200 and "duplicate" not in other.json(), other.text
    plain = sa.post(f"/webhook/{c.token}", data=b"no delivery id")
    assert plain.status_code == 200, plain.text
    ids = [eid, other.json()["id"], plain.json()["id"]]

    # One table in the store's database, beside the store's own tables.
    got = rows(srv, db, "SELECT id, source, dedup_key, body_base64, status FROM webhooks.events"
                        " WHERE source <> 'orders' ORDER BY id")
    assert got == [[str(ids[0]), "gh", "d-1", "0", "received"],
                   [str(ids[1]), "gh", "d-2", "1", "received"],
                   [str(ids[2]), "", "", "0", "received"]], got
    # Every node lists them; a body PostgreSQL text cannot hold (NUL) is kept as base64.
    for p in (a, b):
        evs = [e for e in json.loads(p.cli("webhook", "events", "--json").stdout)
               if e["source"] != "orders"]
        assert [e["id"] for e in evs] == ids
        assert evs[1]["body_base64"] == 1
    table = b.cli("webhook", "events", "--source", "gh").stdout.strip().splitlines()
    assert [line.split()[5] for line in table[2:]] == ["8", "11"], table    # BYTES


def test_processed_once_across_nodes_and_read_with_pq(cluster):
    c = cluster
    srv, db = c.srv, c.db
    path = f"/webhook/{c.token}/orders"
    ids = []
    for i in range(30):
        r = c.sa.post(path, json={"n": i})
        assert r.status_code == 200, r.text
        ids.append(r.json()["id"])

    def all_done():
        st = rows(srv, db, "SELECT status, count(*) FROM webhooks.events"
                           " WHERE source = 'orders' GROUP BY status")
        return st == [["done", "30"]]
    assert wait_for(all_done, 30), rows(srv, db, "SELECT id, status, last_error FROM "
                                                 "webhooks.events")
    got = rows(srv, db, "SELECT event_id, attempt FROM processed ORDER BY event_id")
    assert got == [[str(i), "1"] for i in ids], got     # once each, across both nodes

    r = c.sb.get("/read_events")        # node B's handler, through pq
    assert r.status_code == 200, r.text
    orders = [e for e in r.json() if e["source"] == "orders"]
    assert sorted(e["id"] for e in orders) == ids
    assert all(e["status"] == "done" for e in orders)


def test_lease_of_a_killed_node_is_taken_by_the_other(tmp_path, server):
    srv, dsn, db = fresh_database()
    a, b = two_nodes(tmp_path, dsn)
    srv.psql("CREATE TABLE processed(event_id BIGINT, attempt BIGINT)", dbname=db)
    marks = str(tmp_path / "marks")
    a.add_script("block", BLOCK_FIRST % marks)
    a.cli("webhook", "source", "add", "slow", "--script", "block")
    path = f"/webhook/{token_of(a)}/slow"
    # Leases last the handler timeout + 2 s: 3 s here.
    sa = Server(a, ["--timeout", "1"], workers=1)     # killed below: not the fixture's
    r = sa.post(path, json={"x": 1})
    assert r.status_code == 200, r.text
    eid = r.json()["id"]
    assert wait_for(lambda: os.path.exists(marks), 15), "node A never started the event"
    assert rows(srv, db, f"SELECT status, attempts FROM webhooks.events WHERE id = {eid}") == \
        [["processing", "1"]]
    sa.kill()                            # master and workers, -9, holding the lease
    assert wait_for(lambda: sa.leftovers() == [], 10), sa.leftovers()
    server(b, "--timeout", "1", workers=1)

    def processed():
        return rows(srv, db, "SELECT event_id, attempt FROM processed")
    assert wait_for(processed, 20), rows(srv, db, "SELECT * FROM webhooks.events")
    assert processed() == [[str(eid), "2"]]
    assert wait_for(lambda: rows(srv, db, f"SELECT status, attempts FROM webhooks.events "
                                          f"WHERE id = {eid}") == [["done", "2"]], 10)


@pytest.fixture
def own_pg():
    """A PostgreSQL server of this test's own, which it may stop and start."""
    pg_store_dsn()                      # skips when there are no PostgreSQL binaries
    import pgserver
    srv = pgserver.PgServer()
    yield srv
    srv.close()


def test_database_down_answers_503_then_recovers(tmp_path, server, own_pg):
    a = make_portico(tmp_path / "a", store=own_pg.dsn())
    path = f"/webhook/{token_of(a)}"
    s = server(a)
    assert s.post(path, data=b"before").status_code == 200
    own_pg.stop()
    for body in (b"while down 1", b"while down 2"):
        r = s.post(path, data=body)
        assert r.status_code == 503, r.text
        assert r.headers.get("Retry-After") == "5"
        assert r.headers["Content-Type"].startswith("application/json")
        assert "unreachable" in r.json()["error"], r.json()
    own_pg.start()
    # The first post after the restart is stored: the driver reconnects by itself.
    r = s.post(path, data=b"after")
    assert r.status_code == 200, r.text
    got = [x[0] for x in rows(own_pg, "postgres",
                              "SELECT body FROM webhooks.events ORDER BY id")]
    assert got == ["before", "after"], got
