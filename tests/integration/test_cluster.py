"""Two nodes behind nginx on one PostgreSQL (issue 11, §4; the harness: cluster.py): a rolling
restart, a node killed with SIGKILL (under GET and POST load, and under webhook load with a
lease held) and PostgreSQL restarted, each under continuous load through nginx, with every
response counted (docs/SCALING.md, "Failure modes")."""

import os
import re
import threading

import requests

from cluster import Cluster, Load, cluster, cluster_pg  # noqa: F401  (the fixtures)
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


class WebhookPoster:
    """A thread posting numbered webhook events to url back to back until stop(): the bodies
    answered 200 and the statuses of the others."""

    def __init__(self, url):
        self.url = url
        self.acked, self.refused = [], []
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        s, n = requests.Session(), 0
        while not self._stop.is_set():
            body, n = f"event-{n}", n + 1
            try:
                status = s.post(self.url, data=body, timeout=15).status_code
            except requests.RequestException as e:
                status = type(e).__name__
            with self.lock:
                (self.acked if status == 200 else self.refused).append((body, status))

    def stop(self):
        self._stop.set()
        self._thread.join(20)


def test_postgresql_restart_under_load(cluster):
    """Endpoints answer from each node's snapshot while the store is down; webhook posts are
    answered 503 meanwhile, never 200 for an event not stored, and stored again after; an
    admin write meanwhile fails with 503 and leaves nothing; after the restart deploys work on
    both."""
    from test_pg_webhooks import rows
    from test_webhooks import token_of, wait_for

    load = Load(cluster, "/hello")
    hooks = WebhookPoster(f"{cluster.url}/webhook/{token_of(cluster.a.portico)}")
    try:
        cluster.admin_token()
        for n in cluster.nodes:
            load.wait_served(n, 10)
        assert wait_for(lambda: len(hooks.acked) >= 10, 20), hooks.refused[:5]
        cluster.pg.stop()
        ok_down = load.ok
        load.wait_more(50)
        assert wait_for(lambda: any(st == 503 for _, st in hooks.refused), 20), \
            (len(hooks.acked), hooks.refused[:5])
        for n in cluster.nodes:
            admin = AdminClient(n.admin_url, token=cluster.admin_token())
            r = admin.post("/scripts/during/versions", json={"source": ONE})
            assert_admin_error(r, 503, "store_unavailable")
            cp = n.remote_cli("endpoint", "add", "during", "--path", "/during", "--script",
                              "hello", "--auth", "public", check=False)
            assert_cli_error(cp, "metadata store")
        cluster.pg.start()
        load.wait_more(50)
        acked = len(hooks.acked)
        assert wait_for(lambda: len(hooks.acked) >= acked + 10, 20), hooks.refused[-5:]
    finally:
        load.stop()
        hooks.stop()
    assert load.failures == [], load.summary()
    assert load.ok - ok_down >= 100
    # Every webhook answered 200 is stored, once; the others were refused with 503 only.
    assert {st for _, st in hooks.refused} == {503}, hooks.refused[:5]
    stored = dict((b, int(k)) for b, k in rows(
        cluster.pg, cluster.db, "SELECT body, count(*) FROM webhooks.events GROUP BY body"))
    assert [b for b, _ in hooks.acked if stored.get(b) != 1] == []
    print(f"webhooks: {len(hooks.acked)} stored, {len(hooks.refused)} refused (503)")
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


# Processing script of the webhook test: node A (its process group named in BLOCK_FILE) takes
# its first event and never finishes it, holding the lease when it is killed; every other run
# records which node ran which attempt.
PROCESS = """\
import os, time
def handler(event):
    me = os.getpgid(0)
    if open(%(block)r).read().strip() == str(me):
        with open(%(marks)r, 'a') as f:
            f.write('%%d\\n' %% event['id'])
        time.sleep(600)
    pq.dbconnect('dw').execute('dw', query='INSERT INTO processed VALUES (%%d, %%d, %%d)'
                               %% (event['id'], event['attempts'], me))
"""


def test_kill9_of_a_node_under_webhook_load(tmp_path, cluster_pg):
    """Webhook posts through nginx while node A is killed with SIGKILL, holding a lease: every
    event acknowledged with 200 is stored exactly once, and the event A was processing is
    processed by B once A's lease runs out (handler timeout + 2 s)."""
    from test_pg_webhooks import rows
    from test_webhooks import token_of, wait_for

    block, marks = str(tmp_path / "block"), str(tmp_path / "marks")
    with open(block, "w") as f:
        f.write("none\n")

    def prepare(c):
        c.pg.psql("CREATE TABLE processed(event_id BIGINT, attempt BIGINT, node BIGINT)",
                  dbname=c.db)
        c.a.portico.add_script("process", PROCESS % {"block": block, "marks": marks})
        c.a.cli("webhook", "source", "add", "orders", "--script", "process")

    c = Cluster(tmp_path / "c", args=("--timeout", "4"), pg=cluster_pg, warehouse=True,
                before_start=prepare)
    try:
        with open(block, "w") as f:
            f.write(f"{c.a.pid}\n")
        url = f"{c.url}/webhook/{token_of(c.a.portico)}/orders"
        acked, failed, lock, stop = [], [], threading.Lock(), threading.Event()

        def post(t):
            s, n = requests.Session(), 0
            while not stop.is_set():
                body = f"{t}-{n}"
                n += 1
                try:
                    r = s.post(url, data=body, timeout=15)
                    status = r.status_code
                except requests.RequestException as e:
                    status = type(e).__name__
                with lock:
                    (acked if status == 200 else failed).append((body, status))
        threads = [threading.Thread(target=post, args=(t,), daemon=True) for t in range(3)]
        for t in threads:
            t.start()
        try:
            assert wait_for(lambda: os.path.exists(marks), 20), "node A never took an event"
            held = int(open(marks).read().split()[0])
            c.a.kill9()                     # master and workers, holding the lease on `held`
            n = len(acked)
            assert wait_for(lambda: len(acked) >= n + 50, 20), (len(acked), failed[:5])
        finally:
            stop.set()
            for t in threads:
                t.join(20)
        # A POST nginx had sent to A when it died fails (nginx never repeats one); nothing else.
        assert all(status == 502 for _, status in failed), failed[:5]
        stored = dict((b, int(k)) for b, k in rows(
            c.pg, c.db, "SELECT body, count(*) FROM webhooks.events WHERE source = 'orders' "
                        "GROUP BY body"))
        assert [b for b, _ in acked if stored.get(b) != 1] == [], "acknowledged, not stored once"

        def settled():
            return rows(c.pg, c.db, "SELECT count(*) FROM webhooks.events WHERE source = "
                                    "'orders' AND status <> 'done'") == [["0"]]
        assert wait_for(settled, 60), rows(c.pg, c.db, "SELECT status, count(*) FROM "
                                                       "webhooks.events GROUP BY status")
        got = rows(c.pg, c.db, f"SELECT attempt, node FROM processed WHERE event_id = {held}")
        assert got == [["2", str(c.b.pid)]], got
        runs = rows(c.pg, c.db, "SELECT count(*), count(DISTINCT event_id) FROM processed")
        total = rows(c.pg, c.db, "SELECT count(*) FROM webhooks.events WHERE source='orders'")
        assert runs == [[total[0][0], total[0][0]]], (runs, total)   # each processed once
        print(f"webhooks through nginx, A killed: {len(acked)} acknowledged, "
              f"{len(failed)} failed (502), all stored once and processed")
    finally:
        c.close()
