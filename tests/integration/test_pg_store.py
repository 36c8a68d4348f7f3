"""A metadata store on PostgreSQL (issue 11, §1): `init --store`, a second node joining with
the same master key, and `serve` on it: hello, JWT, API key and secrets, with what one node
makes accepted by the other."""

import os
import shutil
import stat

from conftest import Portico, assert_cli_error, make_portico, pg_store_dsn, run_cli

HELLO = "def handler(request):\n    return {'hello': request['query'].get('name', 'world')}\n"
SECRET = "def handler(request):\n    return {'v': pq.get_secret('partner')}\n"


def join(base, dsn, master_from=None, env=None, check=True):
    """Initialises a data dir in base on the store dsn, with master_from's master key."""
    data = os.path.join(str(base), "data")
    if master_from is not None:
        os.makedirs(os.path.join(data, "keys"), mode=0o700)
        os.chmod(data, 0o700)
        shutil.copy2(os.path.join(master_from.data, "keys", "master.key"),
                     os.path.join(data, "keys", "master.key"))
    cp = run_cli(data, "init", "--store", dsn, check=check, env=env)
    return cp, Portico(data, os.path.join(str(base), "files"))


def test_two_nodes_share_endpoints_keys_and_secrets(tmp_path, server):
    dsn = pg_store_dsn()
    a = make_portico(tmp_path / "a", store=dsn + " password=hunter2")
    dsn_file = os.path.join(a.data, "store.dsn")
    assert stat.S_IMODE(os.stat(dsn_file).st_mode) == 0o600
    assert not os.path.exists(os.path.join(a.data, "portico.db"))
    cp, b = join(tmp_path / "b", dsn + " password=hunter2", master_from=a)
    assert "joined the existing install" in cp.stdout
    assert "hunter2" not in cp.stdout + cp.stderr
    # The install's keys are the same on both nodes.
    for k in ("jwt.key", "apikey.key"):
        with open(os.path.join(a.data, "keys", k)) as fa, open(os.path.join(b.data, "keys", k)) as fb:
            assert fa.read() == fb.read()

    # Everything is made through node A ...
    a.publish("hello", HELLO)
    a.add_script("jwtonly", HELLO)
    a.add_endpoint("jwtonly", "/jwtonly", auth="jwt")
    a.add_script("keyonly", HELLO)
    a.add_endpoint("keyonly", "/keyonly", auth="apikey")
    a.publish("secret", SECRET)
    a.cli("secret", "set", "partner", input="s3cret\n")
    token = a.cli("token", "create", "--name", "ci").stdout.strip().splitlines()[-1]
    key = a.cli("apikey", "create", "acme").stdout.strip().splitlines()[-1]

    # ... and served by node B.
    assert "jwtonly" in b.cli("endpoint", "list").stdout
    s = server(b)
    r = s.get("/hello?name=b")
    assert r.status_code == 200 and r.json() == {"hello": "b"}
    assert s.get("/jwtonly").status_code == 401
    r = s.get("/jwtonly", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    assert s.get("/keyonly").status_code == 401
    r = s.get("/keyonly", headers={"X-Api-Key": key})
    assert r.status_code == 200, r.text
    r = s.get("/secret")
    assert r.status_code == 200 and r.json() == {"v": "s3cret"}, r.text


def test_join_needs_the_install_master_key(tmp_path):
    dsn = pg_store_dsn()
    make_portico(tmp_path / "a", store=dsn)
    cp, _ = join(tmp_path / "b", dsn, check=False)
    assert cp.returncode == 1
    assert "master key" in assert_cli_error(cp, "already holds an install")
    assert not os.path.exists(tmp_path / "b" / "data")  # nothing left behind
    wrong = {"PORTICO_MASTER_KEY": os.urandom(32).hex()}
    cp, _ = join(tmp_path / "c", dsn, env=wrong, check=False)
    assert cp.returncode == 1
    assert_cli_error(cp, "does not open this install's keys")


def test_store_option_errors(tmp_path):
    cp = run_cli(str(tmp_path / "x"), "init", "--store", "mysql://nope", check=False)
    assert_cli_error(cp, "--store takes a PostgreSQL connection string")
    cp = run_cli(str(tmp_path / "y"), "init", "--store",
                 "host=127.0.0.1 port=1 user=u password=pw dbname=d connect_timeout=2",
                 check=False)
    msg = assert_cli_error(cp, "cannot use", "metadata store")
    assert "pw" not in msg.replace("password=***", "")
    assert not os.path.exists(tmp_path / "y")
    sq = make_portico(tmp_path / "sq")
    cp = run_cli(sq.data, "init", "--store", pg_store_dsn(), check=False)
    assert_cli_error(cp, "embedded SQLite store")
