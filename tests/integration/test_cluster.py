"""Two nodes behind nginx on one PostgreSQL (issue 11, §4; the harness: cluster.py): a rolling
restart, a node killed with SIGKILL and PostgreSQL restarted, each under continuous load
through nginx, with every response counted (docs/SCALING.md, "Failure modes")."""

import re

from cluster import Load, cluster, cluster_pg  # noqa: F401  (the fixtures)
from conftest import AdminClient, assert_admin_error, assert_cli_error

ONE = "def handler(request):\n    return {'v': 1}\n"


def resets(nginx):
    """Requests nginx had sent to a node that closed or reset the connection instead of
    answering: a GET is retried on the other node, a POST would fail."""
    return len(re.findall(r"reset by peer\) while reading|prematurely closed", nginx.error_log))


def test_rolling_restart_under_load_loses_nothing(cluster):
    """SIGTERM drains a node: it stops accepting, answers what it has, closes its kept-alive
    connections (Connection: close, or idle ones after 1 s); nginx sends to the other node."""
    gets = Load(cluster, "/hello")
    posts = Load(cluster, "/hello", threads=2, method="POST", body=b"x")
    try:
        for n in cluster.nodes:
            gets.wait_served(n, 20)
        for n in cluster.nodes:
            n.stop()                # SIGTERM; returns once every process of the node is gone
            gets.wait_more(50)      # the other node carries everything meanwhile
            n.start()               # returns once the node is ready
            gets.wait_served(n, 20)  # and nginx sends to it again
    finally:
        gets.stop()
        posts.stop()
    assert gets.failures == [], gets.summary()
    # A POST nginx has sent is never retried: none lost means no connection was reset.
    assert posts.failures == [], posts.summary()
    assert resets(cluster.nginx) == 0, cluster.nginx.error_log[-3000:]
    assert gets.ok >= 180 and posts.ok > 0
    print(f"rolling restart: GET {gets.summary()}; POST {posts.summary()}")


def test_kill9_of_a_node_under_load(cluster):
    """SIGKILL to node A's master and workers: requests it held are reset or refused, and
    nginx retries each GET on node B; a POST A had received fails with nginx's 502 (nginx
    never sends a request twice that may not be idempotent). A started again rejoins."""
    load = Load(cluster, "/hello")
    posts = Load(cluster, "/hello", threads=2, method="POST", body=b"x")
    try:
        load.wait_served(cluster.a, 20)
        cluster.a.kill9()
        load.wait_more(50)
        assert load.served_by["B"] > 0
        cluster.a.start()
        load.wait_served(cluster.a, 20)
    finally:
        load.stop()
        posts.stop()
    assert load.failures == [], load.summary()
    assert set(posts.failures) <= {(502, cluster.a.addr)}, posts.summary()
    print(f"kill -9: GET {load.summary()}; POST {posts.summary()}")


def test_postgresql_restart_under_load(cluster):
    """Endpoints answer from each node's snapshot while the store is down; an admin write
    meanwhile fails with 503 and leaves nothing; after the restart deploys work on both."""
    load = Load(cluster, "/hello")
    try:
        cluster.admin_token()
        for n in cluster.nodes:
            load.wait_served(n, 10)
        cluster.pg.stop()
        ok_down = load.ok
        load.wait_more(50)
        for n in cluster.nodes:
            admin = AdminClient(n.admin_url, token=cluster.admin_token())
            r = admin.post("/scripts/during/versions", json={"source": ONE})
            assert_admin_error(r, 503, "store_unavailable")
            cp = n.remote_cli("endpoint", "add", "during", "--path", "/during", "--script",
                              "hello", "--auth", "public", check=False)
            assert_cli_error(cp, "metadata store")
        cluster.pg.start()
        load.wait_more(50)
    finally:
        load.stop()
    assert load.failures == [], load.summary()
    assert load.ok - ok_down >= 100
    print(f"PostgreSQL restart: {load.summary()}")
    # Nothing of the refused writes, then a deploy through each node, served by it.
    assert "during" not in cluster.a.cli("script", "list").stdout
    assert "during" not in cluster.a.cli("endpoint", "list").stdout
    for n in cluster.nodes:
        name = f"after_{n.name.lower()}"
        n.remote_cli("script", "add", name, n.portico.write(f"{name}.py", ONE))
        n.remote_cli("endpoint", "add", name, "--path", f"/{name}", "--script", name,
                     "--auth", "public")
        r = n.server.get(f"/{name}")
        assert r.status_code == 200 and r.json() == {"v": 1}, r.text
