"""The metadata store's C unit tests, run once more on PostgreSQL.

The unit-test binary (built beside $PORTICO_BIN by `make unit`) runs the store's tests against
the database PORTICO_TEST_PG_DSN names: every store a test creates gets a schema of its own
there (tests/unit/store/store_test.h). This file starts that server (pgserver.py) and runs the
store's test files, the ones about the SQLite file itself skipping themselves, plus the
PostgreSQL-only ones (test_store_pg.c: placeholders, deferred keys, reconnect, two processes
creating one store at once).
"""

import os
import subprocess

import pytest

import pgserver

BIN = os.environ.get("PORTICO_BIN", os.path.join(os.path.dirname(__file__), "..", "..",
                                                 "build", "portico"))
UNIT = os.path.join(os.path.dirname(os.path.abspath(BIN)), "unit-tests")

# Test files (unit-tests filters) whose tests run on either driver. The request log
# (test_store_reqlog.c) is a per-node SQLite file, not the metadata store.
FILES = ["store/test_db.c", "store/test_store.c", "store/test_store_auth.c",
         "store/test_store_endpoint_set.c", "store/test_store_scripts.c",
         "store/test_store_pg.c", "auth/test_secrets.c", "auth/test_auth.c",
         "admin/test_admin_users.c"]


@pytest.fixture(scope="module")
def pg():
    if not pgserver.available():
        pytest.skip(f"no PostgreSQL binaries in {pgserver.PG_BIN} (apt-get install postgresql; "
                    "CI has them)")
    with pgserver.PgServer() as server:
        yield server


def test_store_unit_tests_pass_on_postgresql(pg):
    assert os.path.exists(UNIT), f"{UNIT} not found: build it with `make unit`"
    env = dict(os.environ, PORTICO_TEST_PG_DSN=pg.dsn())
    cp = subprocess.run([UNIT, "-v"] + FILES, env=env, capture_output=True, text=True,
                        timeout=300)
    out = cp.stdout + cp.stderr
    assert cp.returncode == 0, out[-6000:]
    assert " 0 failed" in out, out[-6000:]
    # The run did use PostgreSQL: the schemas the tests made hold the store's tables.
    n = int(pg.psql("SELECT count(DISTINCT table_schema) FROM information_schema.tables "
                    "WHERE table_name = 'portico_schema' AND table_schema LIKE 't\\_%'"))
    assert n >= 20
