"""The admin API (docs/ADMIN.md) over real HTTP: its listener, logins, sessions and CSRF,
tokens, roles, the audit log, and every route's refusals (each asserted to change nothing)."""

import json
import os
import socket
import sqlite3

import pytest
import requests

from conftest import (ADMIN_PASSWORD, ADMIN_PREFIX, AdminClient, AdminServer, assert_admin_error,
                      make_portico)

HELLO = "def handler(request):\n    return {'hello': 'world'}\n"
HELLO2 = "def handler(request):\n    return {'hello': 'again'}\n"


def audit_count(admin):
    return len(admin.get("/audit", params={"limit": 10000}).json()["entries"])


def scripts_state(admin):
    """Everything about scripts, to compare before and after a refused call."""
    out = {}
    for s in admin.get("/scripts").json()["scripts"]:
        out[s["name"]] = admin.get(f"/scripts/{s['name']}").json()
    return out


# ---- The listener -------------------------------------------------------------------------------

def test_admin_api_is_only_on_the_admin_listener(admin_server):
    public = admin_server.server
    r = public.get(ADMIN_PREFIX + "/health", headers={"Authorization": "Bearer x"})
    assert r.status_code == 404
    r = requests.get(admin_server.url + "/_portico/health", timeout=10)
    assert_admin_error(r, 404, "not_found")
    r = admin_server.admin().get("/no/such/route")
    assert_admin_error(r, 404, "not_found")
    r = admin_server.admin().put("/users")
    assert r.status_code == 405


def test_admin_listen_off(portico, server):
    s = server("--admin-listen", "off")
    assert s.admin_url is None
    assert "admin API listening" not in s.log


def test_admin_listen_invalid(cli):
    cp = cli("serve", "--admin-listen", "nowhere:x", check=False)
    assert cp.returncode == 1
    assert "--admin-listen" in cp.stderr
    for bad in ("0", "soon", "31d"):
        cp = cli("serve", "--session-idle", bad, check=False)
        assert cp.returncode == 1 and "--session-idle" in cp.stderr


def test_admin_address_taken_fails_the_start(cli):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        cp = cli("serve", "--listen", "127.0.0.1:0", "--admin-listen", f"127.0.0.1:{port}",
                 check=False)
    assert cp.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in cp.stderr


# ---- Sessions, CSRF, throttling ------------------------------------------------------------------

def test_login_sets_a_strict_cookie_and_me_answers(admin_server):
    c = admin_server.client()
    r = c.login("editor")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["user"] == "editor" and body["role"] == "editor" and body["csrf_token"]
    cookie = r.headers["Set-Cookie"]
    assert cookie.startswith("portico_session=")
    for attr in ("HttpOnly", "SameSite=Strict", "Path=/_portico/"):
        assert attr in cookie
    assert "Secure" not in cookie  # the admin listener has no TLS
    me = c.get("/me")
    assert me.status_code == 200
    assert me.json()["user"] == "editor" and me.json()["via"] == "session"
    # The stored session is a hash, never the cookie's value.
    sid = cookie.split(";")[0].split("=", 1)[1]
    db = sqlite3.connect(os.path.join(admin_server.portico.data, "portico.db"))
    hashes = [row[0] for row in db.execute("SELECT id_hash FROM sessions")]
    db.close()
    assert sid not in hashes and len(hashes) >= 1


def test_session_needs_csrf_on_every_change(admin_server):
    c = admin_server.client()
    assert c.login("editor").status_code == 200
    admin = admin_server.admin()
    before, n = scripts_state(admin), audit_count(admin)
    del c.http.headers["X-CSRF-Token"]
    r = c.post("/scripts", json={"name": "csrf-test", "source": HELLO})
    assert_admin_error(r, 403, "csrf", "X-CSRF-Token")
    r = c.post("/scripts", json={"name": "csrf-test", "source": HELLO},
               headers={"X-CSRF-Token": "wrong"})
    assert_admin_error(r, 403, "csrf")
    assert scripts_state(admin) == before and audit_count(admin) == n
    # A GET needs none; with the token the change goes through.
    assert c.get("/scripts").status_code == 200
    r = c.post("/scripts", json={"name": "csrf-test", "source": HELLO},
               headers={"X-CSRF-Token": c.csrf})
    assert r.status_code == 201, r.text
    assert admin.delete("/scripts/csrf-test").status_code == 200


def test_logout_ends_the_session(admin_server):
    c = admin_server.client()
    assert c.login("viewer").status_code == 200
    r = c.post("/logout")
    assert r.status_code == 200
    assert "Max-Age=0" in r.headers["Set-Cookie"]
    # The client drops the cookie; replaying the old one must fail too.
    assert_admin_error(c.get("/me"), 401, "unauthorized")


def test_expired_session_is_401(admin_server):
    c = admin_server.client()
    r = c.login("viewer")
    assert r.status_code == 200
    sid = r.headers["Set-Cookie"].split(";")[0].split("=", 1)[1]
    db = sqlite3.connect(os.path.join(admin_server.portico.data, "portico.db"))
    with db:
        db.execute("UPDATE sessions SET last_seen = last_seen - 1801")
    db.close()
    err = assert_admin_error(c.get("/me"), 401, "unauthorized")
    assert "expired" in err["message"]
    replay = requests.get(admin_server.url + ADMIN_PREFIX + "/me",
                          cookies={"portico_session": sid}, timeout=10)
    assert_admin_error(replay, 401, "unauthorized")
    # Still holding the dead cookie, the browser can log in again.
    c.http.cookies.set("portico_session", sid, path="/_portico/")
    assert c.login("viewer").status_code == 200
    assert c.get("/me").json()["user"] == "viewer"


def test_wrong_password_is_401_then_throttled(tmp_path):
    p = make_portico(tmp_path)
    s = AdminServer(p)
    try:
        c = s.client()
        for _ in range(5):
            assert_admin_error(c.login("editor", "wrong password"), 401, "unauthorized")
        # Locked out now, even with the right password.
        r = c.login("editor")
        assert_admin_error(r, 429, "throttled")
        assert int(r.headers["Retry-After"]) > 0
        # An unknown user answers like a wrong password.
        assert_admin_error(c.login("nobody", "whatever1"), 401, "unauthorized")
        # Another user from the same address is not locked out by editor's failures.
        assert c.login("viewer").status_code == 200
    finally:
        s.close()


def test_login_refuses_malformed_bodies(admin_server):
    c = admin_server.client()
    assert_admin_error(c.post("/login", data="{nope"), 400, "bad_request")
    assert_admin_error(c.post("/login", json={"user": "admin"}), 400, "bad_request", "password")
    assert_admin_error(c.post("/login", json=["admin"]), 400, "bad_request")
    assert_admin_error(c.post("/login", json={"user": 1, "password": "x"}), 400, "bad_request",
                       "user")


# ---- Tokens ----------------------------------------------------------------------------------

def test_tokens_bearer_and_revocation(admin_server):
    p = admin_server.portico
    token = p.cli("user", "token", "create", "editor", "--name", "ci-deploy").stdout.strip()
    c = admin_server.client(token)
    me = c.get("/me").json()
    assert me["user"] == "editor" and me["role"] == "editor" and me["actor"] == "token:ci-deploy"
    listing = p.cli("user", "token", "list", "editor").stdout
    assert "ci-deploy" in listing and token not in listing
    tid = [l.split()[0] for l in listing.splitlines() if "ci-deploy" in l][0]
    p.cli("user", "token", "revoke", tid)
    assert_admin_error(c.get("/me"), 401, "unauthorized")
    assert_admin_error(admin_server.client("not-a-token").get("/me"), 401, "unauthorized")
    bad = AdminClient(admin_server.url)
    bad.http.headers["Authorization"] = "Basic YWRtaW46eA=="
    assert_admin_error(bad.get("/me"), 401, "unauthorized")


def test_no_credentials_is_401(admin_server):
    assert_admin_error(admin_server.client().get("/scripts"), 401, "unauthorized")
    # The OpenAPI document is public.
    assert admin_server.client().get("/openapi.json").status_code == 200


# ---- Roles ---------------------------------------------------------------------------------------

def test_viewer_reads_but_cannot_write(admin_server):
    v = admin_server.client()
    assert v.login("viewer").status_code == 200
    admin = admin_server.admin()
    before, n = scripts_state(admin), audit_count(admin)
    assert v.get("/scripts").status_code == 200
    assert v.get("/endpoints").status_code == 200
    assert v.get("/audit").status_code == 200
    assert_admin_error(v.post("/scripts", json={"name": "v", "source": HELLO}), 403, "forbidden")
    assert_admin_error(v.post("/endpoints", json={"name": "v", "path": "/v", "script": "v",
                                                  "auth": "public"}), 403, "forbidden")
    assert_admin_error(v.get("/users"), 403, "forbidden")
    assert scripts_state(admin) == before and audit_count(admin) == n


def test_editor_cannot_manage_users(admin_server):
    e = admin_server.client()
    assert e.login("editor").status_code == 200
    admin = admin_server.admin()
    users = admin.get("/users").json()
    assert_admin_error(e.get("/users"), 403, "forbidden")
    assert_admin_error(e.post("/users", json={"name": "x", "role": "admin",
                                              "password": "longenough"}), 403, "forbidden")
    assert_admin_error(e.patch("/users/editor", json={"role": "admin"}), 403, "forbidden")
    assert_admin_error(e.delete("/users/viewer"), 403, "forbidden")
    assert admin.get("/users").json() == users


# ---- Users ---------------------------------------------------------------------------------------

def test_users_crud_and_refusals(admin_server):
    admin = admin_server.admin()
    r = admin.post("/users", json={"name": "carol", "role": "viewer", "password": "carols pw"})
    assert r.status_code == 201, r.text
    assert r.json() == {"name": "carol", "role": "viewer"}
    users = admin.get("/users").json()
    for body, status, code, field in [
        ({"name": "carol", "role": "viewer", "password": "carols pw"}, 409, "conflict", "name"),
        ({"name": "bad name!", "role": "viewer", "password": "longenough"}, 400, "bad_request",
         "name"),
        ({"name": "dave", "role": "owner", "password": "longenough"}, 400, "bad_request", "role"),
        ({"name": "dave", "role": "viewer", "password": "short"}, 400, "bad_request", "password"),
        ({"name": "dave", "role": "viewer"}, 400, "bad_request", "password"),
    ]:
        assert_admin_error(admin.post("/users", json=body), status, code, field)
    assert_admin_error(admin.post("/users", data="{"), 400, "bad_request")
    assert admin.get("/users").json() == users
    assert admin.get("/users/carol").json()["role"] == "viewer"
    assert_admin_error(admin.get("/users/nobody"), 404, "not_found")
    assert_admin_error(admin.patch("/users/nobody", json={"role": "admin"}), 404, "not_found")
    assert_admin_error(admin.patch("/users/carol", json={}), 400, "bad_request")
    r = admin.patch("/users/carol", json={"role": "editor", "password": "carols new pw"})
    assert r.status_code == 200 and r.json()["role"] == "editor"
    c = admin_server.client()
    assert c.login("carol", "carols new pw").status_code == 200
    # The last admin can be neither removed nor demoted.
    assert_admin_error(admin.patch("/users/admin", json={"role": "viewer"}), 409, "conflict")
    assert_admin_error(admin.delete("/users/admin"), 409, "conflict")
    assert admin.delete("/users/carol").json() == {"removed": "carol"}
    assert_admin_error(c.get("/me"), 401, "unauthorized")  # its sessions went with it
    assert_admin_error(admin.delete("/users/carol"), 404, "not_found")


# ---- Scripts -------------------------------------------------------------------------------------

def test_scripts_versions_diff_rollback(admin_server):
    admin = admin_server.admin()
    r = admin.post("/scripts", json={"name": "greet", "source": HELLO})
    assert r.status_code == 201 and r.json() == {"name": "greet", "version": 1}
    assert_admin_error(admin.post("/scripts", json={"name": "greet", "source": HELLO}), 409,
                       "conflict", "name")
    r = admin.post("/scripts/greet/versions", json={"source": HELLO2})
    assert r.status_code == 201 and r.json()["version"] == 2
    show = admin.get("/scripts/greet").json()
    assert show["current"] == 2 and show["source"] == HELLO2
    assert [v["version"] for v in show["versions"]] == [1, 2]
    v1 = admin.get("/scripts/greet/versions/1").json()
    assert v1["version"] == 1 and v1["source"] == HELLO
    assert_admin_error(admin.get("/scripts/greet/versions/9"), 404, "not_found")
    assert_admin_error(admin.get("/scripts/greet/versions/x"), 400, "bad_request", "version")
    d = admin.get("/scripts/greet/diff", params={"from": 1, "to": 2})
    assert d.status_code == 200 and d.headers["Content-Type"].startswith("text/x-diff")
    assert d.text == ("--- greet v1\n+++ greet v2\n@@ -1,2 +1,2 @@\n"
                      " def handler(request):\n-    return {'hello': 'world'}\n"
                      "+    return {'hello': 'again'}\n")
    assert admin.get("/scripts/greet/diff").text == d.text  # default: previous -> current
    assert_admin_error(admin.get("/scripts/greet/diff", params={"from": 7}), 404, "not_found")
    r = admin.post("/scripts/greet/rollback", json={"version": 1})
    assert r.status_code == 200 and r.json()["current"] == 1
    assert admin.get("/scripts/greet").json()["current"] == 1
    assert_admin_error(admin.post("/scripts/greet/rollback", json={"version": "one"}), 400,
                       "bad_request", "version")
    assert_admin_error(admin.post("/scripts/nope/rollback", json={}), 404, "not_found")
    assert admin.delete("/scripts/greet").status_code == 200
    assert_admin_error(admin.get("/scripts/greet"), 404, "not_found")
    assert_admin_error(admin.delete("/scripts/greet"), 404, "not_found")


def test_script_refusals_change_nothing(admin_server):
    admin = admin_server.admin()
    assert admin.post("/scripts", json={"name": "keep", "source": HELLO}).status_code == 201
    before, n = scripts_state(admin), audit_count(admin)
    err = assert_admin_error(
        admin.post("/scripts/keep/versions", json={"source": "def handler(r:\n    pass\n"}),
        400, "bad_request", "source")
    assert err["line"] == 1 and "SyntaxError" in err["message"]
    big = "x = 1\n" * (1024 * 1024 // 6 + 10)
    assert_admin_error(admin.post("/scripts/keep/versions", json={"source": big}), 413,
                       "too_large", "source")
    huge = {"source": "#" * (3 << 20)}
    assert_admin_error(admin.post("/scripts/keep/versions", json=huge), 413, "too_large")
    assert_admin_error(admin.post("/scripts/keep/versions", data="{\"source\": "), 400,
                       "bad_request")
    assert_admin_error(admin.post("/scripts/keep/versions", json={"source": 5}), 400,
                       "bad_request", "source")
    assert_admin_error(admin.post("/scripts", json={"name": " spaced ", "source": HELLO}), 400,
                       "bad_request", "name")
    assert scripts_state(admin) == before and audit_count(admin) == n
    admin.delete("/scripts/keep")


# ---- Endpoints -----------------------------------------------------------------------------------

def test_endpoints_crud_and_serving(admin_server):
    admin = admin_server.admin()
    public = admin_server.server
    assert admin.post("/scripts", json={"name": "ep-script", "source": HELLO}).status_code == 201
    body = {"name": "ep", "path": "/ep", "script": "ep-script", "auth": "public"}
    r = admin.post("/endpoints", json=body)
    assert r.status_code == 201, r.text
    assert r.json()["methods"] == ["GET"] and r.json()["created"] > 0
    assert public.get("/ep").json() == {"hello": "world"}
    listing = admin.get("/endpoints").json()["endpoints"]
    n = audit_count(admin)
    for b, status, code, field in [
        (body, 409, "conflict", "name"),
        (dict(body, name="ep2", script="missing"), 404, "not_found", "script"),
        (dict(body, name="ep2", path="no-slash"), 400, "bad_request", "path"),
        (dict(body, name="ep2", auth="open"), 400, "bad_request", "auth"),
        (dict(body, name="ep2", methods=["FETCH"]), 400, "bad_request", "methods"),
        ({"name": "ep2"}, 400, "bad_request", "path"),
    ]:
        assert_admin_error(admin.post("/endpoints", json=b), status, code, field)
    assert admin.get("/endpoints").json()["endpoints"] == listing and audit_count(admin) == n
    # A script in use cannot go.
    assert_admin_error(admin.delete("/scripts/ep-script"), 409, "conflict")
    r = admin.patch("/endpoints/ep", json={"path": "/ep-moved", "methods": ["GET", "POST"]})
    assert r.status_code == 200, r.text
    assert r.json()["path"] == "/ep-moved" and r.json()["methods"] == ["GET", "POST"]
    assert public.post("/ep-moved").json() == {"hello": "world"}
    assert_admin_error(admin.patch("/endpoints/ep", json={"script": "missing"}), 404, "not_found",
                       "script")
    assert_admin_error(admin.patch("/endpoints/nope", json={"path": "/x"}), 404, "not_found")
    assert admin.get("/endpoints/ep").json()["path"] == "/ep-moved"
    assert admin.delete("/endpoints/ep").status_code == 200
    assert_admin_error(admin.get("/endpoints/ep"), 404, "not_found")
    assert admin.delete("/scripts/ep-script").status_code == 200


# ---- Audit, health, OpenAPI ----------------------------------------------------------------------

def test_audit_records_changes_with_actor(admin_server):
    admin = admin_server.admin()
    e = admin_server.client()
    assert e.login("editor").status_code == 200
    assert e.post("/scripts", json={"name": "audited", "source": HELLO}).status_code == 201
    assert admin.post("/scripts/audited/versions", json={"source": HELLO2}).status_code == 201
    entries = admin.get("/audit", params={"since": "1h"}).json()["entries"]
    first = [x for x in entries if x["object"] == "audited"]
    assert [x["actor"] for x in first[:2]] == ["token:admin", "editor"]
    assert first[0]["action"] == "POST /scripts/{name}/versions"
    assert first[0]["detail"] == {"script": "audited", "version": 2}
    only = admin.get("/audit", params={"actor": "editor"}).json()["entries"]
    assert only and all(x["actor"] == "editor" for x in only)
    assert_admin_error(admin.get("/audit", params={"since": "soon"}), 400, "bad_request", "since")
    cp = admin_server.portico.cli("audit", "--json", "--actor", "editor")
    cli_entries = json.loads(cp.stdout)
    assert cli_entries[0]["object"] == "audited" and cli_entries[0]["actor"] == "editor"
    table = admin_server.portico.cli("audit", "--since", "1h").stdout
    assert "user.add" in table and "cli:" in table
    admin.delete("/scripts/audited")


def test_health_and_openapi(admin_server):
    admin = admin_server.admin()
    admin_server.server.get("/_portico/health")
    h = admin.get("/health").json()
    assert h["status"] == "ok" and h["version"] and h["workers"] == 2
    assert h["uptime"] >= 0 and isinstance(h["endpoints"], int)
    assert h["traffic"]["requests"] >= 1 and "2xx" in h["traffic"]["by_status"]
    doc = admin.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    for path, method in [("/login", "post"), ("/users/{name}", "delete"),
                         ("/scripts/{name}/diff", "get"), ("/endpoints/{name}", "patch"),
                         ("/audit", "get"), ("/health", "get")]:
        assert method in doc["paths"][path], (path, method)


# ---- The CLI's user commands ---------------------------------------------------------------------

def test_cli_users(cli):
    cp = cli("user", "add", "zed", "--role", "editor", input="zeds password\n")
    assert "zed" in cp.stdout
    cp = cli("user", "add", "zed", "--role", "editor", input="zeds password\n", check=False)
    assert cp.returncode == 1 and "already exists" in cp.stderr
    cp = cli("user", "add", "yan", "--role", "owner", input="x\n", check=False)
    assert cp.returncode == 1 and "--role" in cp.stderr
    cp = cli("user", "add", "yan", "--role", "viewer", input="short\n", check=False)
    assert cp.returncode == 1 and "at least" in cp.stderr
    assert "yan" not in cli("user", "list").stdout
    cli("user", "add", "boss", "--role", "admin", input="boss password\n")
    cli("user", "passwd", "zed", input="zeds new password\n")
    cli("user", "role", "zed", "viewer")
    assert "viewer" in [l.split()[1] for l in cli("user", "list").stdout.splitlines()
                        if l.startswith("zed")]
    cp = cli("user", "rm", "boss", check=False)
    assert cp.returncode == 1 and "last admin" in cp.stderr
    cli("user", "rm", "zed")
    cp = cli("user", "rm", "zed", check=False)
    assert cp.returncode == 1 and "no user" in cp.stderr
    actions = [e["action"] for e in json.loads(cli("audit", "--json").stdout)]
    assert actions[:4] == ["user.rm", "user.role", "user.passwd", "user.add"]


def test_token_routes(admin_server):
    admin = admin_server.admin()
    r = admin.post("/users/viewer/tokens", json={"name": "dash", "expires": "1d"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["user"] == "viewer" and body["name"] == "dash" and body["expires"] > 0
    t = admin_server.client(body["token"])
    assert t.get("/me").json()["actor"] == "token:dash"
    listed = admin.get("/users/viewer/tokens").json()["tokens"]
    assert [x["id"] for x in listed if x["name"] == "dash"] == [body["id"]]
    assert all("token" not in x for x in listed)  # never shown again
    n = audit_count(admin)
    assert_admin_error(admin.post("/users/nobody/tokens", json={}), 404, "not_found")
    assert_admin_error(admin.post("/users/viewer/tokens", json={"expires": "soon"}), 400,
                       "bad_request", "expires")
    assert_admin_error(admin.delete("/users/editor/tokens/" + body["id"]), 404, "not_found")
    assert_admin_error(t.post("/users/viewer/tokens", json={}), 403, "forbidden")
    assert audit_count(admin) == n
    assert admin.delete(f"/users/viewer/tokens/{body['id']}").json() == {"revoked": body["id"]}
    assert_admin_error(t.get("/me"), 401, "unauthorized")
    # An expired token is refused like a revoked one.
    r = admin.post("/users/viewer/tokens", json={"expires": "1h"})
    late = admin_server.client(r.json()["token"])
    assert late.get("/me").status_code == 200
    db = sqlite3.connect(os.path.join(admin_server.portico.data, "portico.db"))
    with db:
        db.execute("UPDATE admin_tokens SET expires = 1 WHERE id = ?", (r.json()["id"],))
    db.close()
    assert_admin_error(late.get("/me"), 401, "unauthorized")
