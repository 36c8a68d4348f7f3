"""Several Portico nodes behind nginx on one PostgreSQL store (issue 11, §4): a test harness.

`Cluster(tmp_path)` (or the `cluster` fixture: `from cluster import cluster, cluster_pg` in a
test module) starts, and tears down even when a test fails:
- a PostgreSQL server (pgserver.py; the fixture's is one per module, `cluster_pg`, each
  cluster making a database of its own on it; a test may stop and start it: `cluster.pg`);
- two nodes, `cluster.a` and `cluster.b` (`cluster.nodes`), each a data dir initialised with
  `init --store DSN` on that server and the same master key (B joins A's install), serving on
  fixed loopback ports so that a node restarted is found again by nginx, started together;
- nginx (Debian's nginx-light, /usr/sbin/nginx or $PORTICO_NGINX), started with its own prefix
  and config in tmp (`daemon off`, a pid file, error and access logs there) and proxying to
  both nodes: `upstream` with keep-alive, `proxy_next_upstream error timeout`
  (nginx never retries a request whose method is not idempotent once it was sent), and an
  `X-Upstream` response header with the address of each node tried, in order
  (`Cluster.node_of` turns it into ["A"] or ["A", "B"]). `nginx_conf()` writes that config;
  docs/SCALING.md shows it.

A node (`Node`): `.portico` (its data dir and CLI, conftest.Portico), `.data`, `.url` (its own
public listener), `.admin_url`, `.pid` (the master's), `.server` (a conftest.Server while it
runs), `.start()` (waits until it answers /_portico/health and says it listens), `.stop()`
(SIGTERM, waits, asserts exit 0), `.kill9()` (SIGKILL to the master and every worker, spare
and the template: the whole process group), `.running`, `.cli(...)`, `.remote_cli(...)` (the
CLI through this node's admin API, as the admin user `ops`, made on first use by
`cluster.admin_token()`: call it before stopping PostgreSQL).

`Load(cluster, path, threads=4, method="GET", body=None)`: threads issuing requests through
nginx back to back (keep-alive), that count every response: `.ok`, `.failures` (status or
exception, with the upstream header), `.served_by[node name]`, `.retried` (200 after nginx
tried another node first); `wait_served(node, n)` waits until that node alone answered n more,
`wait_more(n)` until n more responses of any kind came back. Nothing here sleeps to synchronise: every wait polls the state it needs.
"""

import collections
import itertools
import os
import shutil
import signal
import subprocess
import threading
import time

import pytest
import requests

import pgserver
from conftest import (ADMIN_PASSWORD, Portico, Server, free_port, require_binary, run_cli)

NGINX = os.environ.get("PORTICO_NGINX", "/usr/sbin/nginx")
NGINX_START_TIMEOUT = 10
NGINX_STOP_TIMEOUT = 10
ADMIN_USER = "ops"
_DBS = itertools.count()


def available():
    """None when the cluster can run here, else why not (the test is skipped)."""
    if not pgserver.available():
        return f"no PostgreSQL binaries in {pgserver.PG_BIN} (apt-get install postgresql)"
    if not os.access(NGINX, os.X_OK):
        return f"no nginx at {NGINX} (apt-get install nginx-light)"
    return None


def nginx_conf(prefix, port, upstreams, fail_timeout=1):
    """The nginx config the tests run: listens on 127.0.0.1:port, proxies to upstreams (a list
    of (name, port)); every path it writes is under prefix."""
    servers = "\n".join(f"        server 127.0.0.1:{p} max_fails=1 fail_timeout={fail_timeout}s;"
                        for _, p in upstreams)
    user = "user root;\n" if os.geteuid() == 0 else ""  # its workers write under prefix
    return f"""\
daemon off;
{user}worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
events {{
    worker_connections 1024;
}}
http {{
    log_format upstream '$remote_addr "$request" $status $upstream_addr $upstream_status '
                        '$request_time';
    access_log {prefix}/access.log upstream;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;

    upstream portico {{
{servers}
        keepalive 32;           # idle connections kept open to the nodes, per nginx worker
        keepalive_timeout 5s;   # below a node's own idle timeout (10 s): nginx closes first
    }}
    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 10m;   # Portico's --max-body, so the node answers 413 itself
        location / {{
            proxy_pass http://portico;
            proxy_http_version 1.1;         # keep-alive to the nodes
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            # A node stopping, restarting or killed: try the other one. nginx retries a
            # POST/PATCH only if it could not send it (add non_idempotent to retry those too).
            # Not http_502/http_503: Portico's 502 and 503 speak of one endpoint (a crashing
            # handler, a full bulkhead, a webhook while the store is down), not of the node.
            proxy_next_upstream error timeout;
            proxy_next_upstream_tries 2;
            proxy_next_upstream_timeout 10s;
            proxy_connect_timeout 2s;
            proxy_send_timeout 30s;
            proxy_read_timeout 40s;         # above --timeout (30 s): the node answers 504 first
            proxy_buffering off;            # streamed responses stay streamed
            add_header X-Upstream $upstream_addr always;
        }}
    }}
}}
"""


class Nginx:
    """nginx in the foreground with its own prefix; start() waits until it proxies."""

    def __init__(self, prefix, port, upstreams):
        self.prefix = str(prefix)
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        os.makedirs(os.path.join(self.prefix, "tmp"), exist_ok=True)
        self.conf = os.path.join(self.prefix, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(nginx_conf(self.prefix, port, upstreams))
        self.proc = None
        self._out = None

    def start(self):
        self._out = open(os.path.join(self.prefix, "stderr.log"), "wb")
        self.proc = subprocess.Popen([NGINX, "-p", self.prefix, "-c", self.conf, "-e",
                                      os.path.join(self.prefix, "error.log")],
                                     stdout=self._out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + NGINX_START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"nginx exited with {self.proc.returncode} at start:\n"
                                     f"{self.error_log}")
            try:
                r = requests.get(self.url + "/_portico/health", timeout=1)
                if r.status_code == 200:
                    return
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, f"nginx not proxying:\n{self.error_log}"
            time.sleep(0.05)

    def _read(self, name):
        try:
            with open(os.path.join(self.prefix, name), "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    @property
    def error_log(self):
        return self._read("error.log") + self._read("stderr.log")

    @property
    def access_log(self):
        return self._read("access.log")

    def stop(self):
        """SIGQUIT (graceful), then SIGKILL to its group if it lingers."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(NGINX_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        if self._out is not None and not self._out.closed:
            self._out.close()


class Node:
    """One Portico node: a data dir on the shared store and, while it runs, its server."""

    def __init__(self, name, portico, workers=1, args=()):
        self.name = name
        self.portico = portico
        self.data = portico.data
        self.port = free_port()
        self.admin_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.addr = f"127.0.0.1:{self.port}"
        self.workers = workers
        self.args = list(args)
        self.server = None
        self.starts = 0
        self.cluster = None  # the Cluster it belongs to

    @property
    def running(self):
        return self.server is not None and self.server.proc.poll() is None

    @property
    def pid(self):
        return self.server.pid if self.server is not None else None

    @property
    def admin_url(self):
        return f"http://127.0.0.1:{self.admin_port}"

    @property
    def log(self):
        return self.server.log if self.server is not None else ""

    def start(self, *args):
        """Starts the node on its ports; returns once it is ready (conftest.Server)."""
        assert not self.running, f"node {self.name} already runs"
        self.starts += 1
        self.server = Server(self.portico,
                             ["--admin-listen", f"127.0.0.1:{self.admin_port}"] + self.args +
                             list(args),
                             workers=self.workers, port=self.port,
                             log_name=f"serve-{self.name}-{self.starts}.log")
        return self

    def stop(self):
        """SIGTERM to the master; waits until every process of the node is gone; asserts the
        master exited 0 and left nothing behind."""
        if self.server is not None:
            s, self.server = self.server, None
            s.close()

    def kill9(self):
        """SIGKILL to the master, its workers, spares and template at once (one process
        group); waits until the master is reaped."""
        if self.server is not None:
            self.server.kill()
            deadline = time.monotonic() + 5
            while self.server.leftovers() and time.monotonic() < deadline:
                time.sleep(0.02)
            assert not self.server.leftovers(), "processes survived SIGKILL"
            self.server._logf.close()
            self.server = None

    def cli(self, *args, **kw):
        return self.portico.cli(*args, **kw)

    def remote_cli(self, *args, input=None, check=True):
        """`portico --server ADMIN_URL args` as the admin user ops, from no data dir."""
        return run_cli(None, "--server", self.admin_url, *args, input=input, check=check,
                       env={"PORTICO_TOKEN": self.cluster.admin_token()},
                       cwd=self.portico.scratch)

    def close(self):
        if self.server is not None:
            self.server.kill()
            self.server = None


class Cluster:
    """PostgreSQL, nodes A and B sharing its store, nginx in front. close() stops all."""

    def __init__(self, base, workers=1, args=(), scripts=(), pg=None, warehouse=False,
                 before_start=None):
        """scripts: (name, source, path[, methods]) published (public) before the nodes
        start. pg: a running pgserver.PgServer to make the store's database on (it stays
        running after close()); by default the cluster starts a PostgreSQL of its own.
        warehouse: `dw` is the store's database too (shared by the nodes). before_start:
        called with the cluster once the nodes are initialised, before they start."""
        self.warehouse = warehouse
        self.before_start = before_start
        require_binary()
        why = available()
        if why:
            pytest.skip(why)
        self.base = str(base)
        self.pg = pg
        self.own_pg = pg is None
        self.nodes = []
        self.nginx = None
        self._token = None
        try:
            self._setup(workers, args, scripts)
        except BaseException:
            self.close()
            raise

    def _setup(self, workers, args, scripts):
        if self.pg is None:
            self.pg = pgserver.PgServer()
        db = f"portico_{os.getpid()}_{next(_DBS)}"
        self.pg.psql(f"CREATE DATABASE {db}")
        self.db = db
        self.dsn = self.pg.dsn(db)
        a = self._init_node("a", None)
        b = self._init_node("b", a)
        self.nodes = [Node("A", a, workers, args), Node("B", b, workers, args)]
        self.a, self.b = self.nodes
        for n in self.nodes:
            n.cluster = self
        for name, source, path, *methods in scripts:
            a.publish(name, source, path, *methods)
        if self.before_start is not None:
            self.before_start(self)
        self.start_all()
        self.nginx = Nginx(os.path.join(self.base, "nginx"), free_port(),
                           [(n.name, n.port) for n in self.nodes])
        self.nginx.start()
        self.url = self.nginx.url

    def start_all(self):
        """Starts every node that is not running, at the same time; returns once all are
        ready."""
        errors = []

        def start(n):
            try:
                n.start()
            except BaseException as e:  # noqa: B036 (reported below, in the test's thread)
                errors.append(e)
        threads = [threading.Thread(target=start, args=(n,)) for n in self.nodes
                   if not n.running]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]

    def admin_token(self):
        """An admin API token (user ADMIN_USER, made on first use: the store must be up)."""
        if self._token is None:
            self.a.cli("user", "add", ADMIN_USER, "--role", "admin",
                       input=ADMIN_PASSWORD + "\n")
            self._token = self.a.cli("user", "token", "create", ADMIN_USER).stdout.strip()
        return self._token

    def _init_node(self, name, master_from):
        data = os.path.join(self.base, name, "data")
        if master_from is not None:
            os.makedirs(os.path.join(data, "keys"), mode=0o700)
            os.chmod(data, 0o700)
            shutil.copy2(os.path.join(master_from.data, "keys", "master.key"),
                         os.path.join(data, "keys", "master.key"))
        warehouse = ["--warehouse", self.dsn] if self.warehouse and master_from is None else []
        run_cli(data, "init", "--store", self.dsn, *warehouse)
        return Portico(data, os.path.join(self.base, name, "files"))

    def node_of(self, upstream):
        """The node names an X-Upstream header names, in the order nginx tried them."""
        by_addr = {n.addr: n.name for n in self.nodes}
        return [by_addr.get(a.strip(), a.strip()) for a in upstream.split(",") if a.strip()]

    def get(self, path, **kw):
        kw.setdefault("timeout", 10)
        return requests.get(self.url + path, **kw)

    def close(self):
        errors = []
        if self.nginx is not None:
            self.nginx.stop()
        for n in self.nodes:
            try:
                n.stop()
            except AssertionError as e:
                errors.append(f"node {n.name}: {e}")
            finally:
                n.close()
        if self.pg is not None and self.own_pg:
            self.pg.close()
        if errors:
            raise AssertionError("\n".join(errors))


@pytest.fixture(scope="module")
def cluster_pg():
    """One PostgreSQL for a module's clusters (each gets a database of its own); a test may
    stop and start it."""
    why = available()
    if why:
        pytest.skip(why)
    pg = pgserver.PgServer()
    yield pg
    pg.close()


HELLO = "def handler(request):\n    return {'hello': request['query'].get('name', 'world')}\n"


@pytest.fixture
def cluster(tmp_path, cluster_pg):
    """A Cluster serving HELLO at /hello (GET and POST) on the module's PostgreSQL (started
    again if a test left it stopped); teardown stops nginx and the nodes (asserting each exits
    0)."""
    try:
        cluster_pg.psql("SELECT 1")
    except RuntimeError:
        cluster_pg.start()
    c = Cluster(tmp_path, scripts=[("hello", HELLO, "/hello", "GET,POST")], pg=cluster_pg)
    try:
        yield c
    finally:
        c.close()


class Load:
    """`threads` clients issuing requests to url+path back to back over keep-alive, until
    stop(); every response is counted."""

    def __init__(self, cluster, path, threads=4, method="GET", body=None, timeout=15):
        self.cluster = cluster
        self.url = cluster.url + path
        self.method = method
        self.body = body
        self.timeout = timeout
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.ok = 0
        self.retried = 0           # answered 200 after nginx tried another node first
        self.failures = []         # (status or exception text, upstream header)
        self.served_by = collections.Counter()  # node name -> 200s it alone answered
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True)
                         for _ in range(threads)]
        for t in self._threads:
            t.start()

    @property
    def total(self):
        with self.lock:
            return self.ok + len(self.failures)

    def _run(self):
        s = requests.Session()
        while not self._stop.is_set():
            try:
                r = s.request(self.method, self.url, data=self.body, timeout=self.timeout)
                status, up = r.status_code, r.headers.get("X-Upstream", "")
            except requests.RequestException as e:
                status, up = f"{type(e).__name__}: {e}", ""
            tried = self.cluster.node_of(up)
            with self.cond:
                if status == 200:
                    self.ok += 1
                    if len(tried) > 1:
                        self.retried += 1
                    elif tried:
                        self.served_by[tried[0]] += 1
                else:
                    self.failures.append((status, up))
                self.cond.notify_all()

    def wait(self, pred, what, timeout=20):
        """Waits until pred() (called under the lock) holds."""
        with self.cond:
            ok = self.cond.wait_for(pred, timeout)
        assert ok, f"load: {what} not seen within {timeout}s ({self.summary()})"

    def wait_served(self, node, n=20, timeout=20):
        """Waits until `node` alone answered n more requests with 200."""
        start = self.served_by[node.name]
        self.wait(lambda: self.served_by[node.name] >= start + n,
                  f"{n} responses from node {node.name}", timeout)

    def wait_more(self, n=50, timeout=20):
        """Waits until n more responses (of any kind) came back."""
        start = self.ok + len(self.failures)
        self.wait(lambda: self.ok + len(self.failures) >= start + n, f"{n} more responses",
                  timeout)

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(self.timeout + 5)

    def summary(self):
        return (f"{self.ok} ok ({self.retried} after a retry, by node {dict(self.served_by)}), "
                f"{len(self.failures)} failed: {self.failures[:5]}")
