"""DESIGN §1-§2: the dict-style example handler, verbatim, against dw_2.salesforce.accounts."""

import csv
import io

import pytest

from conftest import start_module_server

# DESIGN §2, dict style, verbatim (with `pq` as a global, no import).
EXAMPLE = '''\
def handler(request):              # dict style (current)
    headers = request['headers']
    client = headers.get("X-Api-Client", None)
    dbconn = pq.dbconnect('dw_2')
    return dbconn.fetch('dw_2', 'salesforce', 'accounts')
'''

ACCOUNTS_CSV = """\
id,name,industry,country,employees,annual_revenue
1,Acme Corp,Manufacturing,US,1200,15000000.5
2,Globex,Energy,DE,560,8200000.25
3,Initech,Software,BE,85,1250000.0
4,Umbrella,Pharma,FR,40000,990000000.75
5,Café Zürich,Hospitality,CH,12,350000.5
"""


def expected_rows():
    rows = []
    for r in csv.DictReader(io.StringIO(ACCOUNTS_CSV)):
        rows.append({"id": int(r["id"]), "name": r["name"], "industry": r["industry"],
                     "country": r["country"], "employees": int(r["employees"]),
                     "annual_revenue": float(r["annual_revenue"])})
    return rows


@pytest.fixture(scope="module")
def demo(module_portico):
    p = module_portico
    p.cli("db", "add", "dw_2", "--sqlite")
    p.cli("db", "import", "dw_2", "salesforce", "accounts", p.write("accounts.csv", ACCOUNTS_CSV))
    p.add_script("accounts", EXAMPLE)
    p.add_endpoint("accounts", "/accounts", script="accounts")
    s = start_module_server(p)
    yield s
    s.close()


def test_example_returns_table(demo):
    r = demo.get("/accounts", headers={"X-Api-Client": "partner-a"})
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    got = r.json()
    assert isinstance(got, list)
    assert sorted(got, key=lambda row: row["id"]) == expected_rows()


def test_example_without_client_header(demo):
    r = demo.get("/accounts")
    assert r.status_code == 200, r.text
    assert sorted(r.json(), key=lambda row: row["id"]) == expected_rows()


def test_example_non_ascii_is_utf8(demo):
    r = demo.get("/accounts")
    text = r.content.decode("utf-8")
    assert "Café Zürich" in text or "Caf\\u00e9 Z\\u00fcrich" in text


def test_cli_query_matches(demo, module_portico):
    out = module_portico.cli("db", "query", "dw_2",
                             "select name from salesforce.accounts order by id").stdout
    names = [r["name"] for r in expected_rows()]
    positions = [out.index(n) for n in names]
    assert positions == sorted(positions), out


def test_endpoint_show_names_url(demo, module_portico):
    out = module_portico.cli("endpoint", "show", "accounts").stdout
    assert "/accounts" in out and "http" in out
