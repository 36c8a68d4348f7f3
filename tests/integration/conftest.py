"""Shared fixtures for Portico's integration tests.

Every test talks to the real binary ($PORTICO_BIN, default build/portico) over real HTTP on
127.0.0.1, with a fresh data dir made by `portico --data D init`.

Fixtures and helpers:
- `portico`: a `Portico` bound to a fresh, initialised data dir (function scope).
- `cli`: shortcut for `portico.cli` (`cli(*args, input=None, check=True)` -> CompletedProcess).
- `server`: a factory; `server()` or `server(portico, "--timeout", "1")` starts
  `portico --data D serve --listen 127.0.0.1:PORT --workers 2 ...` and waits for
  GET /_portico/health. Teardown sends SIGTERM and asserts exit status 0.
- `module_portico`, `start_module_server`: the same for one server shared by a test module.
- `Portico.publish(name, source, path, methods=...)`: adds a script and a public endpoint.
- Every server gets an admin listener on a free port (`--admin-listen 127.0.0.1:0`, read back
  as `Server.admin_url`) unless the test passes `--admin-listen` itself: the default port 8081
  would collide between servers.
- `RemotePortico` (`start_remote_portico(portico)`): the same data dir, but its `cli()` runs
  the commands that work remotely (`REMOTE_COMMANDS`) as `portico --server URL ...` with
  `PORTICO_TOKEN` against a server it started (admin user `cli-admin`), from a directory
  without a data dir; the others still run on the data dir. test_cli.py runs its tests in
  both modes by parametrizing `portico` with `cli_mode` (and a third, "postgres": on a data
  dir whose metadata store is PostgreSQL; `pg_store_dsn()` gives a fresh one).
- `admin_server`: a module-scoped `AdminServer` (users `admin`, `editor`, `viewer` with
  password `ADMIN_PASSWORD`, `admin_token` from `portico user token create admin`), and
  `AdminClient(base, token=None)` with `.get/.post/.put/.patch/.delete(path, json=...)` and
  `.login(user, password)` (session cookie + CSRF header).
"""

import os
import re
import signal
import socket
import subprocess
import textwrap
import time

import pytest
import requests

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("PORTICO_BIN", os.path.join(REPO, "build", "portico"))

CLI_TIMEOUT = 30        # seconds for any CLI command
START_TIMEOUT = 10      # seconds for the server to answer /_portico/health
STOP_TIMEOUT = 10       # seconds for the server to exit after SIGTERM
HTTP_TIMEOUT = 10       # default per-request timeout


def _env(extra=None):
    env = dict(os.environ)
    env.pop("PORTICO_DATA", None)
    env.pop("PORTICO_MASTER_KEY", None)
    env.pop("PORTICO_NEW_MASTER_KEY", None)
    if extra:
        env.update(extra)
    return env


def require_binary():
    if not (os.path.isfile(BIN) and os.access(BIN, os.X_OK)):
        pytest.fail(f"portico binary not found at {BIN}: build it with `make` or set PORTICO_BIN",
                    pytrace=False)


def run_cli(data, *args, input=None, check=True, env=None, cwd=None, timeout=CLI_TIMEOUT):
    """Runs `portico [--data data] args...`; returns the CompletedProcess (text mode)."""
    require_binary()
    cmd = [BIN]
    if data is not None:
        cmd += ["--data", str(data)]
    cmd += [str(a) for a in args]
    cp = subprocess.run(cmd, input=input, capture_output=True, text=True, env=_env(env),
                        cwd=cwd, timeout=timeout)
    if check and cp.returncode != 0:
        raise AssertionError(
            f"command failed ({cp.returncode}): {' '.join(cmd)}\n"
            f"--- stdout\n{cp.stdout}\n--- stderr\n{cp.stderr}")
    return cp


def output(cp):
    """stdout and stderr of a CompletedProcess, joined."""
    return (cp.stdout or "") + (cp.stderr or "")


def assert_cli_error(cp, *words):
    """A failed command: exit status != 0 and a one-line error naming every word given."""
    assert cp.returncode != 0, f"expected failure, got 0:\n{output(cp)}"
    err = cp.stderr.strip() or cp.stdout.strip()
    assert err, "no error message printed"
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, f"error message should be one line, got:\n{err}"
    for w in words:
        assert w.lower() in err.lower(), f"error message {err!r} does not mention {w!r}"
    return err


class Portico:
    """A data dir and the CLI bound to it."""

    def __init__(self, data, scratch):
        self.data = str(data)
        self.scratch = str(scratch)     # where script files and imports are written
        os.makedirs(self.scratch, exist_ok=True)
        self._n = 0

    def cli(self, *args, input=None, check=True, env=None):
        return run_cli(self.data, *args, input=input, check=check, env=env)

    def write(self, name, content):
        """Writes a file into the scratch dir; str is dedented. Returns its path."""
        path = os.path.join(self.scratch, name)
        if isinstance(content, str):
            content = textwrap.dedent(content).lstrip("\n")
            with open(path, "w", encoding="utf-8") as f:
                f.write(content)
        else:
            with open(path, "wb") as f:
                f.write(content)
        return path

    def add_script(self, name, source, check=True):
        self._n += 1
        path = self.write(f"{name}.{self._n}.py", source)
        return self.cli("script", "add", name, path, check=check)

    def add_endpoint(self, name, path, script=None, methods=None, auth="public", check=True):
        args = ["endpoint", "add", name, "--path", path, "--script", script or name]
        if auth is not None:
            args += ["--auth", auth]
        if methods:
            args += ["--method", methods]
        return self.cli(*args, check=check)

    def publish(self, name, source, path=None, methods=None):
        """Adds script `name` from source and a public endpoint `name` running it."""
        self.add_script(name, source)
        self.add_endpoint(name, path or f"/{name}", methods=methods)
        return path or f"/{name}"


def make_portico(base, store=None):
    """A data dir initialised in base; with store (a DSN), its metadata store is PostgreSQL."""
    data = os.path.join(str(base), "data")
    run_cli(data, "init", *(["--store", store] if store else []))
    return Portico(data, os.path.join(str(base), "files"))


_PG_STORE = {}


def pg_store_dsn():
    """A DSN naming a new, empty schema on one PostgreSQL server the session starts on first
    use (pgserver.py): each PostgreSQL-backed data dir gets a store of its own. Skips the test
    when no PostgreSQL binaries exist."""
    import atexit
    import itertools
    import pgserver
    if "server" not in _PG_STORE:
        if not pgserver.available():
            pytest.skip(f"no PostgreSQL binaries in {pgserver.PG_BIN} (apt-get install "
                        "postgresql; CI has them)")
        _PG_STORE["server"] = pgserver.PgServer()
        _PG_STORE["n"] = itertools.count()
        atexit.register(_PG_STORE["server"].close)
    srv = _PG_STORE["server"]
    name = f"s_{os.getpid()}_{next(_PG_STORE['n'])}"
    srv.psql(f"CREATE SCHEMA {name}")
    return f"{srv.dsn()} options='-csearch_path={name}'"


def wait_marks(path, n, timeout=10):
    """Waits until n handlers have started: each appends a line 'started' to the file `path`
    (tests write that line first in the handlers they hold up). Asserts that they did."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with open(path) as f:
                got = f.read().count("started")
        except FileNotFoundError:
            got = 0
        if got >= n:
            return
        assert time.monotonic() < deadline, f"only {got} of {n} handlers started"
        time.sleep(0.01)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children_of(pid):
    """Pids of the live direct children of pid (from /proc)."""
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        state, ppid = fields[0], int(fields[1])
        if ppid == pid and state != "Z":
            kids.append(int(entry))
    return sorted(kids)


def group_members(pgid):
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            pids.append(int(entry))
    return pids


class Server:
    """A running `portico serve`; stdout and stderr go to one log file."""

    def __init__(self, portico, args, workers=2, port=None, log_name=None):
        """port: the public port (default: a free one); log_name: the log file's name in the
        scratch dir (default serve-PORT.log; a restarted node on the same port needs another)."""
        require_binary()
        self.portico = portico
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = os.path.join(portico.scratch, log_name or f"serve-{self.port}.log")
        cmd = [BIN, "--data", portico.data, "serve", "--listen", f"127.0.0.1:{self.port}"]
        if "--workers" not in args:
            cmd += ["--workers", str(workers)]
        if "--admin-listen" not in args and "--admin-listen-tls" not in args:
            cmd += ["--admin-listen", "127.0.0.1:0"]
        self.admin_url = None
        cmd += [str(a) for a in args]
        self.cmd = cmd
        self._logf = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=self._logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=_env(),
                                     start_new_session=True)
        self.pid = self.proc.pid
        self.returncode = None
        self._wait_ready()

    def _wait_ready(self):
        deadline = time.monotonic() + START_TIMEOUT
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._logf.close()
                raise AssertionError(f"server exited with {self.proc.returncode} at start:\n"
                                     f"{' '.join(self.cmd)}\n{self.log}")
            try:
                r = requests.get(self.url + "/_portico/health", timeout=0.5)
                # A worker answers before the master has seen every worker ready and said
                # "listening" (and then the admin listener's line): wait for the lines too.
                log = self.log
                admin_off = "off" in self.cmd[self.cmd.index("--admin-listen") + 1:][:1] \
                    if "--admin-listen" in self.cmd else False
                up = re.search(r"^listening on ", log, re.M) is not None
                m = re.search(r"admin API listening on (https?://\S+)", log)
                if r.status_code == 200 and up and (m or admin_off):
                    self.admin_url = m.group(1) if m else None
                    return
                last = f"status {r.status_code}"
            except requests.RequestException as e:
                last = repr(e)
            time.sleep(0.05)
        self.kill()
        raise AssertionError(f"server not healthy after {START_TIMEOUT}s ({last}):\n{self.log}")

    @property
    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_log(self, pattern, timeout=3.0, flags=0):
        """Waits until the log matches regex pattern; returns the match or None."""
        deadline = time.monotonic() + timeout
        while True:
            m = re.search(pattern, self.log, flags)
            if m or time.monotonic() > deadline:
                return m
            time.sleep(0.05)

    def log_lines_with(self, *needles, timeout=3.0):
        """Waits until some log lines hold every needle; returns those lines."""
        deadline = time.monotonic() + timeout
        while True:
            lines = [l for l in self.log.splitlines() if all(n in l for n in needles)]
            if lines or time.monotonic() > deadline:
                return lines
            time.sleep(0.05)

    def children(self):
        return children_of(self.pid)

    def get(self, path, **kw):
        kw.setdefault("timeout", HTTP_TIMEOUT)
        return requests.get(self.url + path, **kw)

    def post(self, path, **kw):
        kw.setdefault("timeout", HTTP_TIMEOUT)
        return requests.post(self.url + path, **kw)

    def request(self, method, path, **kw):
        kw.setdefault("timeout", HTTP_TIMEOUT)
        return requests.request(method, self.url + path, **kw)

    def terminate(self, timeout=STOP_TIMEOUT):
        """SIGTERM, then wait; returns the exit status (None if it had to be killed)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                return None
        self.returncode = self.proc.returncode
        return self.returncode

    def kill(self):
        """Kills the server's whole process group (only processes this test started)."""
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass

    def leftovers(self):
        """Processes of the server's group still alive (e.g. orphaned workers)."""
        return group_members(self.pid)

    def close(self):
        """Stops the server; asserts exit status 0 and that no worker is left behind."""
        try:
            rc = self.terminate() if self.returncode is None else self.returncode
            left = []
            deadline = time.monotonic() + 2
            while time.monotonic() < deadline:
                left = self.leftovers()
                if not left:
                    break
                time.sleep(0.05)
            if left:
                for pid in left:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            assert rc == 0, (f"server exit status {rc} after SIGTERM "
                             f"(None = still running after {STOP_TIMEOUT}s)\n{self.log[-4000:]}")
            assert not left, f"processes left after the server exited: {left}"
        finally:
            if not self._logf.closed:
                self._logf.close()


def pytest_configure(config):
    # How CI runs the suite (Makefile `integration`): test files in parallel (pytest-xdist,
    # one file per process), except the `load` tests, which run alone afterwards.
    # - `load`: puts the machine under load to measure the product's behaviour there
    #   (throughput kept, RSS bounded, every client answered), so it must not share the cores
    #   with other tests; its figures mean nothing under ASan, which slows the server several
    #   times over, so the sanitizer pass leaves it out.
    # - `plain_only`: the repetitions of whole CLI test files through --server and on a
    #   PostgreSQL store (cli_mode). They reach no C path the sanitizers do not already see
    #   through the data-dir mode, the admin API's own tests and the store's PostgreSQL tests,
    #   so the sanitizer pass leaves them out too. Together this keeps CI within 20 minutes.
    config.addinivalue_line("markers", "load: measures behaviour under load; runs alone, and "
                            "not under the sanitizers")
    config.addinivalue_line("markers", "plain_only: a repeated CLI mode, not run under the "
                            "sanitizers")


@pytest.fixture
def portico(tmp_path):
    """A fresh data dir, initialised with `portico --data D init`."""
    require_binary()
    return make_portico(tmp_path)


@pytest.fixture
def cli(portico):
    """cli(*args, input=None, check=True) -> CompletedProcess, on the fresh data dir."""
    return portico.cli


@pytest.fixture
def server(portico):
    """Factory: server(*args) or server(portico, *args); stops every server at teardown."""
    started = []

    def start(*args, workers=2):
        p = portico
        if args and isinstance(args[0], Portico):
            p, args = args[0], args[1:]
        s = Server(p, list(args), workers=workers)
        started.append(s)
        return s

    yield start
    errors = []
    for s in reversed(started):
        try:
            s.close()
        except AssertionError as e:
            errors.append(str(e))
    if errors:
        pytest.fail("\n".join(errors), pytrace=False)


@pytest.fixture(scope="module")
def module_portico(tmp_path_factory):
    require_binary()
    return make_portico(tmp_path_factory.mktemp("portico"))


def start_module_server(portico, *args, workers=2):
    """For module fixtures: starts a server; the caller yields it and calls .close()."""
    return Server(portico, list(args), workers=workers)


def rid_of(resp):
    rid = resp.headers.get("X-Request-Id")
    assert rid, f"no X-Request-Id on {resp.status_code} response"
    return rid


def assert_json_error(resp, status):
    """An error response: the status, a JSON body {"error": ..., "request_id": <header>}."""
    assert resp.status_code == status, f"expected {status}, got {resp.status_code}: {resp.text!r}"
    rid = rid_of(resp)
    ctype = resp.headers.get("Content-Type", "")
    assert ctype.startswith("application/json"), f"error Content-Type {ctype!r}"
    body = resp.json()
    assert isinstance(body, dict) and body.get("error"), f"error body {body!r}"
    assert body.get("request_id") == rid, f"request_id {body.get('request_id')!r} != {rid!r}"
    return body


class Handlers:
    """Handler scripts a test module registers at import time, published before its shared
    server starts (so a module's tests don't depend on hot reload, which has its own tests)."""

    def __init__(self):
        self.items = []

    def add(self, name, source, path=None, methods=None):
        path = path or f"/{name}"
        self.items.append((name, source, path, methods))
        return path

    def publish_all(self, portico):
        for name, source, path, methods in self.items:
            portico.publish(name, source, path, methods)

    def server_fixture(self):
        """A module-scoped fixture: these handlers published, one server for the module."""
        @pytest.fixture(scope="module")
        def srv(module_portico):
            self.publish_all(module_portico)
            s = start_module_server(module_portico)
            yield s
            s.close()
        return srv


# ---- The admin API (docs/ADMIN.md) -------------------------------------------------------------

ADMIN_PREFIX = "/_portico/admin/v1"
ADMIN_PASSWORD = "correct horse battery"


class AdminClient:
    """Speaks to the admin API at base (the admin listener's URL): with an admin API token
    (Bearer), or after .login() with the session cookie and the CSRF token."""

    def __init__(self, base, token=None):
        self.base = base.rstrip("/") + ADMIN_PREFIX
        self.http = requests.Session()
        self.csrf = None
        if token:
            self.http.headers["Authorization"] = f"Bearer {token}"

    def login(self, user, password=ADMIN_PASSWORD):
        r = self.post("/login", json={"user": user, "password": password})
        if r.status_code == 200:
            self.csrf = r.json()["csrf_token"]
            self.http.headers["X-CSRF-Token"] = self.csrf
        return r

    def request(self, method, path, **kw):
        kw.setdefault("timeout", HTTP_TIMEOUT)
        return self.http.request(method, self.base + path, **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)

    def put(self, path, **kw):
        return self.request("PUT", path, **kw)

    def patch(self, path, **kw):
        return self.request("PATCH", path, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)


def add_admin_users(portico):
    """Users admin, editor, viewer (password ADMIN_PASSWORD); returns an admin API token of
    each, by role."""
    tokens = {}
    for role in ("admin", "editor", "viewer"):
        portico.cli("user", "add", role, "--role", role, input=ADMIN_PASSWORD + "\n")
        tokens[role] = portico.cli("user", "token", "create", role).stdout.strip()
    return tokens


class AdminServer:
    """A server with the admin users, their tokens (`tokens[role]`) and a client per role;
    `get` speaks to the public listener."""

    def __init__(self, portico, *args):
        self.portico = portico
        self.tokens = add_admin_users(portico)
        self.admin_token = self.tokens["admin"]
        self.server = Server(portico, list(args))
        assert self.server.admin_url, "no admin listener in the log"
        self.url = self.admin_url = self.server.admin_url

    def get(self, path, **kw):
        return self.server.get(path, **kw)

    def client(self, token=None):
        return AdminClient(self.url, token=token)

    def admin(self):
        return AdminClient(self.url, token=self.admin_token)

    def close(self):
        self.server.close()


def assert_admin_error(resp, status, code, field=None):
    """An admin API refusal: the status and {"error": {"code", "message"[, "field"]}}."""
    assert resp.status_code == status, f"expected {status}, got {resp.status_code}: {resp.text!r}"
    assert resp.headers.get("Content-Type", "").startswith("application/json")
    err = resp.json()["error"]
    assert err["code"] == code, err
    assert err["message"], err
    if field is not None:
        assert err.get("field") == field, err
    return err


# ---- The CLI through --server (docs/ADMIN.md, "Remote CLI") --------------------------------------

# Commands that run through the admin API (`portico --server URL ...`); the others are refused
# remotely (exit 2) and run on the data dir.
REMOTE_COMMANDS = {"script": {"add", "list", "ls", "show", "diff", "rollback", "rename", "rm"},
                   "endpoint": {"add", "set", "list", "ls", "show", "rm", "test"},
                   "user": {"add", "list", "ls", "rm", "passwd", "role", "token"},
                   "audit": None,
                   "token": None,
                   "apikey": None,
                   "auth": None,
                   "secret": {"set", "list", "ls", "rm"},
                   "db": {"add", "list", "ls", "rm", "query", "import"},
                   "webhook": {"url", "rotate", "events", "replay", "source"},
                   "logs": None,
                   "nodes": None,
                   "export": None,
                   "apply": None,
                   "run": {"--script"},   # `run FILE.py` is refused remotely
                   "runs": None}


def is_remote_command(args):
    args = [str(a) for a in args]
    if not args or args[0] not in REMOTE_COMMANDS:
        return False
    subs = REMOTE_COMMANDS[args[0]]
    return subs is None or (len(args) > 1 and args[1] in subs)


class RemotePortico(Portico):
    """A Portico whose remote-capable commands go through a running server's admin API."""

    USER = "cli-admin"

    def __init__(self, portico):
        super().__init__(portico.data, portico.scratch)
        self.cli_local("user", "add", self.USER, "--role", "admin", input=ADMIN_PASSWORD + "\n")
        self.token = self.cli_local("user", "token", "create", self.USER).stdout.strip()
        self.server = Server(portico, [])
        assert self.server.admin_url, "no admin listener in the log"
        self.nowhere = os.path.join(self.scratch, "no-data-dir")
        os.makedirs(self.nowhere, exist_ok=True)

    def cli_local(self, *args, **kw):
        return Portico.cli(self, *args, **kw)

    def cli_remote(self, *args, input=None, check=True, env=None):
        """`portico --server URL args` with PORTICO_TOKEN, in a directory without a data dir."""
        e = {"PORTICO_TOKEN": self.token}
        e.update(env or {})
        return run_cli(None, "--server", self.server.admin_url, *args, input=input, check=check,
                       env=e, cwd=self.nowhere)

    def cli(self, *args, input=None, check=True, env=None):
        if is_remote_command(args):
            return self.cli_remote(*args, input=input, check=check, env=env)
        return self.cli_local(*args, input=input, check=check, env=env)

    def close(self):
        self.server.close()


@pytest.fixture(params=["datadir", pytest.param("server", marks=pytest.mark.plain_only),
                        pytest.param("postgres", marks=pytest.mark.plain_only)])
def cli_mode(request):
    """"datadir" or "server": how `portico` fixtures that use it run the CLI; "postgres": on the
    data dir, whose metadata store is PostgreSQL (`init --store`, pg_store_dsn)."""
    return request.param


def start_remote_portico(portico):
    return RemotePortico(portico)


@pytest.fixture(scope="module")
def admin_server(module_portico):
    s = AdminServer(module_portico)
    yield s
    s.close()
