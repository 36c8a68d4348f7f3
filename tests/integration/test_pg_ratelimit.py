"""Rate limits across nodes (issue 11, section 3): on a PostgreSQL store, a limited caller's
budget is leased by the nodes from the store (auth/ratelimit.h, cluster mode), so two nodes
together admit what one would, within the documented accuracy; with the store unreachable
each node falls back to its own limit.

The rates are per hour so that what accrues while a test runs (one request per 36 s at
100/h) cannot move the counts: the claim is about a period's budget, not about the clock."""

import requests

import pgserver
from conftest import Portico, make_portico, pg_store_dsn
from test_pg_store import join

WHO = "def handler(request):\n    return {'who': request['auth']}\n"


def two_nodes(tmp_path, server, dsn, *rates):
    """Nodes A and B on store dsn, an endpoint /keyed (API keys), one key per rate; returns the
    two servers and the keys."""
    a = make_portico(tmp_path / "a", store=dsn)
    _, b = join(tmp_path / "b", dsn, master_from=a)
    a.add_script("who", WHO)
    a.add_endpoint("keyed", "/keyed", script="who", auth="apikey")
    keys = [a.cli("apikey", "create", f"k{i}", "--rate", rate).stdout.strip().splitlines()[-1]
            for i, rate in enumerate(rates)]
    return server(a, workers=1), server(b, workers=1), keys


def alternate(nodes, key, n):
    """n requests with key, alternating between the nodes (one keep-alive session each);
    returns their statuses."""
    sessions = [requests.Session() for _ in nodes]
    codes = []
    for i in range(n):
        s = sessions[i % len(nodes)]
        r = s.get(nodes[i % len(nodes)].url + "/keyed", headers={"X-Api-Key": key}, timeout=10)
        codes.append(r.status_code)
    return codes


def test_two_nodes_share_a_limit(tmp_path, server):
    a, b, (key,) = two_nodes(tmp_path, server, pg_store_dsn(), "100/h")
    codes = alternate([a, b], key, 260)
    admitted = codes.count(200)
    # One node alone admits 100; two nodes without a shared budget admitted 200.
    assert 100 <= admitted <= 110, admitted
    assert set(codes) == {200, 429}
    # Both nodes admitted some and refused some: the budget is one.
    assert 200 in codes[0::2] and 200 in codes[1::2]
    assert codes[-2:] == [429, 429]


def test_store_down_falls_back_to_each_nodes_limit(tmp_path, server):
    with pgserver.PgServer() as pg:
        a, b, (down_key, up_key) = two_nodes(tmp_path, server, pg.dsn(), "6/h", "100/h")
        pg.stop()
        # Fail open at the node's own limit: each node admits 6, then refuses (never a 5xx).
        # The first request is admitted on credit while its lease fails; once the failure is
        # logged the node's own limit decides alone until a lease works again.
        for node in (a, b):
            assert alternate([node], down_key, 1) == [200]
            node.wait_log(r"rate limits are per node until the store answers again")
            codes = alternate([node], down_key, 10)
            assert codes == [200] * 5 + [429] * 5, codes
        # The store is back: the limit is shared again, by itself.
        pg.start()
        codes = alternate([a, b], up_key, 260)
        assert 100 <= codes.count(200) <= 110, codes.count(200)
        a.wait_log(r"rate limits are shared by the nodes again")
