"""A metadata store that cannot be used stops every command, and `serve`, with one line that
names the file and the cause; nothing is recreated (issue 14 section 2). Only `portico init`
makes a store, and it refuses a damaged one too."""

import os

import pytest

from conftest import assert_cli_error, free_port, run_cli

# Commands that read or write the store, and init itself.
COMMANDS = [
    ("init",),
    ("script", "list"),
    ("script", "show", "hello"),
    ("endpoint", "list"),
    ("endpoint", "rm", "hello"),
    ("token", "list"),
    ("apikey", "list"),
    ("auth", "list"),
    ("secret", "list"),
    ("db", "list"),
    ("runs",),
    ("webhook", "url"),
    ("webhook", "source", "list"),
]


def damage(path, how):
    """Damages the store file at path; returns the words its error must name."""
    if how == "empty":
        open(path, "wb").close()
        return ["is empty (0 bytes)", "not a Portico store", "portico init"]
    if how == "truncated":
        with open(path, "r+b") as f:
            f.truncate(8192)
        return ["is not a database"]
    size = os.path.getsize(path)
    with open(path, "wb") as f:
        f.write(os.urandom(size))
    return ["is not a database"]


def snapshot(data):
    """The data dir's files with their contents (the store and its neighbours)."""
    files = {}
    for name in sorted(os.listdir(data)):
        p = os.path.join(data, name)
        if os.path.isfile(p):
            with open(p, "rb") as f:
                files[name] = f.read()
    return files


@pytest.mark.parametrize("how", ["empty", "truncated", "random"])
def test_a_damaged_store_stops_every_command_and_serve(portico, how):
    portico.publish("hello", "def handler(request):\n    return {'hello': 'world'}\n")
    db = os.path.join(portico.data, "portico.db")
    words = damage(db, how)
    before = snapshot(portico.data)

    for cmd in COMMANDS:
        cp = portico.cli(*cmd, check=False)
        assert cp.returncode == 1, (cmd, cp.returncode, cp.stdout, cp.stderr)
        assert_cli_error(cp, db, *words)

    cp = run_cli(portico.data, "serve", "--listen", f"127.0.0.1:{free_port()}", check=False)
    assert cp.returncode == 1, (cp.returncode, cp.stdout, cp.stderr)
    assert_cli_error(cp, db, *words)

    assert snapshot(portico.data) == before, "the damaged store was changed or recreated"


def test_a_missing_store_is_not_recreated(portico):
    db = os.path.join(portico.data, "portico.db")
    os.unlink(db)
    for cmd in COMMANDS[1:] + [("serve", "--listen", f"127.0.0.1:{free_port()}")]:
        cp = portico.cli(*cmd, check=False)
        assert cp.returncode == 1, (cmd, cp.returncode, cp.stdout, cp.stderr)
        assert_cli_error(cp, "portico init")
        assert not os.path.exists(db), cmd
    portico.cli("init")
    assert os.path.getsize(db) > 0
    assert portico.cli("script", "list").returncode == 0


def test_a_database_that_is_not_portico_is_refused(portico, tmp_path):
    import sqlite3

    db = os.path.join(portico.data, "portico.db")
    os.unlink(db)
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE notes(x)")
    con.commit()
    con.close()
    before = snapshot(portico.data)
    for cmd in (("script", "list"), ("init",)):
        cp = portico.cli(*cmd, check=False)
        assert_cli_error(cp, db, "is not a Portico store")
    assert snapshot(portico.data) == before
