"""Several nodes on one PostgreSQL store (issue 11, §3): a change made through node A reaches
node B within a second (LISTEN/NOTIFY, and the version check when notifications are lost), a
node cut off from the store keeps serving and refuses admin changes, catches up when the store
returns, and `portico nodes` lists the nodes from their heartbeats.

The module runs its own PostgreSQL server (pgserver.py): one test stops it, and another kills
listening connections, which must not touch the other modules' nodes."""

import json
import os
import shutil
import time

import pytest
import requests

from conftest import (ADMIN_PASSWORD, AdminClient, Portico, assert_admin_error, make_portico,
                      run_cli, start_module_server)

V1 = "def handler(request):\n    return {'v': 1}\n"
V2 = "def handler(request):\n    return {'v': 2}\n"
V3 = "def handler(request):\n    return {'v': 3}\n"
V4 = "def handler(request):\n    return {'v': 4}\n"

DELIVERY = 1.0  # seconds: the promise of issue 11 §3


@pytest.fixture(scope="module")
def pg():
    import pgserver
    if not pgserver.available():
        pytest.skip(f"no PostgreSQL binaries in {pgserver.PG_BIN}")
    srv = pgserver.PgServer()
    yield srv
    srv.close()


_n = [0]


def store_dsn(pg):
    _n[0] += 1
    name = f"n_{os.getpid()}_{_n[0]}"
    pg.psql(f"CREATE SCHEMA {name}")
    return f"{pg.dsn()} options='-csearch_path={name}'"


def two_nodes(base, pg):
    """Data dirs a and b on one new store; b joined with a's master key."""
    dsn = store_dsn(pg)
    a = make_portico(base / "a", store=dsn)
    data = os.path.join(str(base / "b"), "data")
    os.makedirs(os.path.join(data, "keys"), mode=0o700)
    os.chmod(data, 0o700)
    shutil.copy2(os.path.join(a.data, "keys", "master.key"),
                 os.path.join(data, "keys", "master.key"))
    run_cli(data, "init", "--store", dsn)
    return a, Portico(data, os.path.join(str(base / "b"), "files"))


class Pair:
    """Nodes A and B serving one store, with admin API tokens (roles admin and viewer)."""

    def __init__(self, base, pg):
        self.a, self.b = two_nodes(base, pg)
        self.tokens = {}
        for role in ("admin", "viewer"):
            self.a.cli("user", "add", role, "--role", role, input=ADMIN_PASSWORD + "\n")
            self.tokens[role] = self.a.cli("user", "token", "create", role).stdout.strip()
        self.a.publish("hello", V1)
        self.sa = start_module_server(self.a)
        self.sb = start_module_server(self.b)
        self.pg = pg

    def admin(self, srv, role="admin"):
        return AdminClient(srv.admin_url, token=self.tokens[role])

    def close(self):
        self.sb.close()
        self.sa.close()


@pytest.fixture(scope="module")
def pair(pg, tmp_path_factory):
    p = Pair(tmp_path_factory.mktemp("nodes"), pg)
    yield p
    p.close()


def until(fn, deadline, what):
    """Polls fn() (no sleep beyond a short pause between tries) until it returns a true value
    or deadline (monotonic) passes; returns the value and the time it took."""
    start = time.monotonic()
    last = None
    while True:
        try:
            last = fn()
        except requests.RequestException as e:
            last = e
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: {e!r}")
        if last and not isinstance(last, Exception):
            return last, time.monotonic() - start
        assert time.monotonic() < deadline, f"{what} (last: {last!r})"
        time.sleep(0.02)


def serves(srv, path, body, status=200, headers=None):
    def probe():
        r = srv.get(path, headers=headers or {}, timeout=2)
        return r.status_code == status and (body is None or r.json() == body)
    return probe


def test_changes_reach_the_other_node_within_a_second(pair):
    a, sa, sb = pair.a, pair.sa, pair.sb

    # A deploy through the CLI on A's data dir: B serves it within a second.
    assert sb.get("/hello").json() == {"v": 1}
    a.add_script("hello", V2)
    until(serves(sb, "/hello", {"v": 2}), time.monotonic() + DELIVERY, "B serves v2")

    # A new version through A's admin API.
    admin = pair.admin(sa)
    r = admin.post("/scripts/hello/versions", json={"source": V3})
    assert r.status_code in (200, 201), r.text
    _, took = until(serves(sb, "/hello", {"v": 3}), time.monotonic() + DELIVERY, "B serves v3")
    print(f"v3 reached B in {took * 1000:.0f} ms")

    # A token revoked on A is refused by B within a second.
    a.add_script("secure", V1)
    a.add_endpoint("secure", "/secure", auth="jwt")
    token = a.cli("token", "create", "--name", "partner").stdout.strip().splitlines()[-1]
    auth = {"Authorization": f"JWT {token}"}
    until(serves(sb, "/secure", {"v": 1}, headers=auth), time.monotonic() + DELIVERY,
          "B accepts the token")
    jti = admin.get("/tokens").json()["tokens"][-1]["id"]
    r = admin.delete(f"/tokens/{jti}")
    assert r.status_code in (200, 204), r.text
    until(serves(sb, "/secure", None, status=401, headers=auth), time.monotonic() + DELIVERY,
          "B refuses the revoked token")


def test_nodes_lists_both(pair):
    sa, sb = pair.sa, pair.sb

    def both():
        out = pair.a.cli("nodes").stdout
        return sa.url in out and sb.url in out and out
    out, _ = until(both, time.monotonic() + 3, "both nodes listed")
    lines = [l for l in out.splitlines()[1:] if l.strip()]
    assert len(lines) == 2 and all(" live " in l for l in lines), out
    assert sb.admin_url in out, out
    r = pair.admin(sb, "viewer").get("/nodes")
    assert r.status_code == 200, r.text
    nodes = r.json()["nodes"]
    assert r.json()["driver"] == "postgres"
    assert sorted(n["addresses"][0] for n in nodes) == sorted([sa.url, sb.url])
    assert sorted(n["admin"] for n in nodes) == sorted([sa.admin_url, sb.admin_url])
    assert all(n["live"] and n["version"] and n["pid"] > 0 for n in nodes), nodes
    cp = run_cli(None, "--server", sb.admin_url, "nodes", "--json",
                 env={"PORTICO_TOKEN": pair.tokens["viewer"]})
    assert {n["id"] for n in json.loads(cp.stdout)} == {n["id"] for n in nodes}


def test_version_check_delivers_when_notifications_are_lost(pair):
    a, sb = pair.a, pair.sb
    a.publish("lost", V1)
    until(serves(sb, "/lost", {"v": 1}), time.monotonic() + DELIVERY, "B serves lost v1")
    # Kill every listening connection of this PostgreSQL (this module's nodes only).
    killed = pg_kill_listeners(pair)
    assert killed >= 1
    assert sb.wait_log(r"lost the store's change notifications", timeout=5)
    a.add_script("lost", V2)
    # The version check runs every second: within its period (and a reload).
    until(serves(sb, "/lost", {"v": 2}), time.monotonic() + 1.5, "B serves v2 without NOTIFY")


def pg_kill_listeners(pair):
    return int(pair.pg.psql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                            "WHERE query LIKE 'LISTEN portico_changes%'").strip())


def test_a_node_without_its_store_serves_and_refuses_changes(pair):
    a, b, sb, pg, tokens = pair.a, pair.b, pair.sb, pair.pg, pair.tokens
    a.publish("offline", V1)
    until(serves(sb, "/offline", {"v": 1}), time.monotonic() + DELIVERY, "B serves offline")
    health = sb.get("/_portico/health").json()
    assert health == {"status": "ok", "store": {"driver": "postgres", "reachable": True,
                                                "last_error_age": None}}, health
    admin = pair.admin(sb)
    assert admin.get("/scripts").status_code == 200

    pg.stop()
    try:
        # Serving goes on from the snapshot.
        for _ in range(20):
            r = sb.get("/offline")
            assert r.status_code == 200 and r.json() == {"v": 1}, r.text
        # Health says the store is unreachable, still 200: the node is alive.
        def unreachable():
            r = sb.get("/_portico/health")
            return r.status_code == 200 and r.json()["store"]["reachable"] is False and r.json()
        h, _ = until(unreachable, time.monotonic() + 3, "health reports the store unreachable")
        assert h["status"] == "degraded" and h["store"]["last_error_age"] >= 0, h
        # An admin write answers 503 with a stable code; nothing is written.
        r = admin.post("/scripts/offline/versions", json={"source": V3})
        err = assert_admin_error(r, 503, "store_unavailable")
        assert "\n" not in err["message"]
        # The CLI prints one line, on the data dir and remotely.
        v3 = b.write("v3.py", V3)
        cp = b.cli("script", "add", "offline", v3, check=False)
        assert cp.returncode == 1 and cp.stdout == ""
        assert len(cp.stderr.strip().splitlines()) == 1, cp.stderr
        cp = run_cli(None, "--server", sb.admin_url, "script", "add", "offline", v3, check=False,
                     env={"PORTICO_TOKEN": tokens["admin"]})
        assert cp.returncode == 1 and len(cp.stderr.strip().splitlines()) == 1, cp.stderr
        assert "metadata store is unavailable" in cp.stderr, cp.stderr
        assert sb.get("/offline").json() == {"v": 1}
    finally:
        pg.start()

    until(lambda: sb.get("/_portico/health").json()["store"]["reachable"],
          time.monotonic() + 5, "health reports the store reachable again")
    # Nothing of the refused writes was stored; a deploy through A reaches B.
    assert "version 2" not in a.cli("script", "show", "offline").stdout
    a.add_script("offline", V4)
    until(serves(sb, "/offline", {"v": 4}), time.monotonic() + 2, "B serves v4 after the outage")


def test_sqlite_install_lists_its_one_node(tmp_path, server):
    p = make_portico(tmp_path / "s")
    s = server(p)
    r = s.get("/_portico/health")
    assert r.json() == {"status": "ok", "store": {"driver": "sqlite", "reachable": True,
                                                  "last_error_age": None}}

    def listed():
        out = p.cli("nodes").stdout
        return s.url in out and out
    out, _ = until(listed, time.monotonic() + 3, "the node is listed")
    lines = [l for l in out.splitlines()[1:] if l.strip()]
    assert len(lines) == 1 and " live " in lines[0], out
