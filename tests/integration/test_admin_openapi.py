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
