"""GET /openapi.json lists every route of every admin route table: the tables are read from
the sources (src/admin/*.c) so that a route added there and missing here fails."""

import glob
import os
import re

import requests

from conftest import REPO

ROUTE = re.compile(r'\{\s*"(GET|POST|PUT|PATCH|DELETE)",\s*"(/[^"]*)",\s*PT_ROLE_(\w+)')


def routes_in_sources():
    out = []
    for path in sorted(glob.glob(os.path.join(REPO, "src", "admin", "*.c"))):
        with open(path) as f:
            out += [(m[0], m[1], m[2].lower(), os.path.basename(path))
                    for m in ROUTE.findall(f.read())]
    return out


def test_openapi_lists_every_route_of_every_table(admin_server):
    routes = routes_in_sources()
    files = {r[3] for r in routes}
    for f in ("admin_auth.c", "admin_secrets.c", "admin_webhooks.c", "admin_connections.c",
              "admin_endpoints.c", "admin_scripts.c", "admin_users.c"):
        assert f in files, f"no route table found in {f}"
    doc = requests.get(admin_server.url + "/_portico/admin/v1/openapi.json", timeout=10).json()
    missing = [(m, p) for m, p, _, _ in routes
               if m.lower() not in doc["paths"].get(p, {})]
    assert not missing, missing
    for m, p, role, _ in routes:
        assert doc["paths"][p][m.lower()]["x-min-role"] == role, (m, p)


def test_every_route_refuses_bad_input_and_low_roles_and_changes_nothing(admin_server):
    """Issue 9 section 6: for every route of the document, a viewer below its role is 403, an
    unknown name in its path is 404 (400 where the segment is a number), a malformed JSON body
    is 400; none of it answers 2xx or 5xx, and the audit log shows no change."""
    from conftest import AdminClient
    admin = admin_server.admin()
    viewer = AdminClient(admin_server.url, token=admin_server.tokens["viewer"])
    audit = len(admin.get("/audit", params={"limit": 100000}).json()["entries"])
    doc = admin.get("/openapi.json").json()
    rank = {"none": 0, "viewer": 1, "editor": 2, "admin": 3}
    checked = 0
    for pattern, ops in doc["paths"].items():
        path = re.sub(r"\{[^}]*\}", "no-such-name", pattern)
        for method, op in ops.items():
            if pattern in ("/login", "/logout") or pattern.endswith("/stream"):
                continue
            if rank[op["x-min-role"]] > rank["viewer"]:
                r = viewer.request(method.upper(), path, json={})
                assert r.status_code == 403, (method, pattern, r.status_code, r.text)
                assert r.json()["error"]["code"] == "forbidden"
            if "{" in pattern:
                r = admin.request(method.upper(), path, json={})
                assert r.status_code in (400, 404), (method, pattern, r.status_code, r.text)
                assert r.json()["error"]["code"] in ("bad_request", "not_found")
            if method in ("post", "put", "patch"):
                r = admin.request(method.upper(), path, data="{\"x\": ",
                                  headers={"Content-Type": "application/json"})
                ok = (400, 404) if "{" in pattern else (400,)
                assert r.status_code in ok, (method, pattern, r.status_code, r.text)
            checked += 1
    assert checked > 50
    assert len(admin.get("/audit", params={"limit": 100000}).json()["entries"]) == audit
