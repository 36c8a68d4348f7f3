"""The admin API's /tokens, /apikeys, /issuers and /secrets over real HTTP (docs/ADMIN.md):
what each role may do, every refusal (and that it changes nothing), that a token or key works
on the public listener, and that a secret's value is in no answer and in no audit entry."""

import json

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from conftest import AdminServer, assert_admin_error

WHO = "def handler(request):\n    return {'ok': True}\n"
SECRET_VALUE = "s3cr3t-VALUE-never-shown"


@pytest.fixture(scope="module")
def adm(module_portico):
    s = AdminServer(module_portico)
    a = s.admin()
    assert a.post("/scripts", json={"name": "who", "source": WHO}).status_code == 201
    for name, auth in (("jwtep", "jwt"), ("keyep", "apikey")):
        r = a.post("/endpoints", json={"name": name, "path": "/" + name, "script": "who",
                                       "auth": auth})
        assert r.status_code == 201, r.text
    yield s
    s.close()


def as_role(adm, role):
    c = adm.client()
    assert c.login(role).status_code == 200
    return c


def audit_entries(adm):
    return adm.admin().get("/audit", params={"limit": 10000}).json()["entries"]


def state(adm, *paths):
    a = adm.admin()
    return {p: a.get(p).json() for p in paths}


def refused(adm, paths, call, status, code, field=None):
    """call() is refused with status/code/field, and nothing under paths nor the audit log
    changes."""
    before, n = state(adm, *paths), len(audit_entries(adm))
    err = assert_admin_error(call(), status, code, field)
    assert state(adm, *paths) == before
    assert len(audit_entries(adm)) == n
    return err


def wait_status(server, path, status, headers, tries=200):
    """The public listener answers status (workers reload on the change counter)."""
    for _ in range(tries):
        r = server.get(path, headers=headers)
        if r.status_code == status:
            return r
    raise AssertionError(f"{path}: never {status}, last {r.status_code} {r.text!r}")


# ---- /tokens --------------------------------------------------------------------------------------

def test_token_create_list_use_revoke(adm):
    a = adm.admin()
    r = a.post("/tokens", json={"name": "ci", "expires": "30d", "endpoints": ["jwtep"],
                                "rate": "100/min"})
    assert r.status_code == 201, r.text
    t = r.json()
    assert t["name"] == "ci" and t["endpoints"] == ["jwtep"] and t["rate"] == "100/min"
    assert t["expires"] > t["created"] and t["token"].count(".") == 2
    listed = [x for x in a.get("/tokens").json()["tokens"] if x["id"] == t["id"]]
    assert len(listed) == 1 and "token" not in listed[0] and listed[0]["revoked"] == 0
    assert t["token"] not in a.get("/tokens").text
    # The token opens the jwt endpoint on the public listener.
    auth = {"Authorization": "Bearer " + t["token"]}
    wait_status(adm.server, "/jwtep", 200, auth)
    entry = audit_entries(adm)[0]
    assert entry["action"] == "POST /tokens" and t["token"] not in json.dumps(entry)
    # Viewers and editors read the list, but may not issue or revoke.
    for role in ("viewer", "editor"):
        c = as_role(adm, role)
        assert c.get("/tokens").status_code == 200
        refused(adm, ["/tokens"], lambda: c.post("/tokens", json={}), 403, "forbidden")
        refused(adm, ["/tokens"], lambda: c.delete("/tokens/" + t["id"]), 403, "forbidden")
    r = a.delete("/tokens/" + t["id"])
    assert r.status_code == 200 and r.json() == {"revoked": t["id"]}
    assert [x for x in a.get("/tokens").json()["tokens"] if x["id"] == t["id"]][0]["revoked"] > 0
    wait_status(adm.server, "/jwtep", 401, auth)


def test_token_refusals_change_nothing(adm):
    a = adm.admin()
    p = ["/tokens"]
    refused(adm, p, lambda: a.post("/tokens", data="[1"), 400, "bad_request")
    refused(adm, p, lambda: a.post("/tokens", json=[1]), 400, "bad_request")
    refused(adm, p, lambda: a.post("/tokens", json={"name": "bad name"}), 400, "bad_request",
            "name")
    refused(adm, p, lambda: a.post("/tokens", json={"name": 3}), 400, "bad_request", "name")
    refused(adm, p, lambda: a.post("/tokens", json={"expires": "soon"}), 400, "bad_request",
            "expires")
    refused(adm, p, lambda: a.post("/tokens", json={"rate": "lots"}), 400, "bad_request", "rate")
    refused(adm, p, lambda: a.post("/tokens", json={"endpoints": "jwtep"}), 400, "bad_request",
            "endpoints")
    refused(adm, p, lambda: a.post("/tokens", json={"endpoints": ["no-such"]}), 404, "not_found",
            "endpoints")
    refused(adm, p, lambda: a.delete("/tokens/ffffffffffffffff"), 404, "not_found")
    anon = adm.client()
    refused(adm, p, lambda: anon.post("/tokens", json={}), 401, "unauthorized")


# ---- /apikeys -------------------------------------------------------------------------------------

def test_apikey_create_list_use_revoke(adm):
    a = adm.admin()
    r = a.post("/apikeys", json={"name": "partner", "endpoints": ["keyep"]})
    assert r.status_code == 201, r.text
    k = r.json()
    assert k["name"] == "partner" and k["key"].startswith("pt_live_")
    assert k["key"].startswith(k["hint"]) and k["endpoints"] == ["keyep"]
    listed = a.get("/apikeys").text
    assert k["key"] not in listed and '"partner"' in listed
    wait_status(adm.server, "/keyep", 200, {"X-Api-Key": k["key"]})
    assert k["key"] not in json.dumps(audit_entries(adm))
    refused(adm, ["/apikeys"], lambda: a.post("/apikeys", json={"name": "partner"}), 409,
            "conflict", "name")
    for role in ("viewer", "editor"):
        c = as_role(adm, role)
        assert c.get("/apikeys").status_code == 200
        refused(adm, ["/apikeys"], lambda: c.post("/apikeys", json={"name": "x"}), 403,
                "forbidden")
        refused(adm, ["/apikeys"], lambda: c.delete("/apikeys/partner"), 403, "forbidden")
    assert a.delete("/apikeys/partner").json() == {"revoked": "partner"}
    wait_status(adm.server, "/keyep", 401, {"X-Api-Key": k["key"]})
    refused(adm, ["/apikeys"], lambda: a.delete("/apikeys/partner"), 404, "not_found")


def test_apikey_refusals_change_nothing(adm):
    a = adm.admin()
    p = ["/apikeys"]
    refused(adm, p, lambda: a.post("/apikeys", json={}), 400, "bad_request", "name")
    refused(adm, p, lambda: a.post("/apikeys", json={"name": "-x"}), 400, "bad_request", "name")
    refused(adm, p, lambda: a.post("/apikeys", json={"name": "k", "rate": 5}), 400,
            "bad_request", "rate")
    refused(adm, p, lambda: a.post("/apikeys", json={"name": "k", "endpoints": [1]}), 400,
            "bad_request", "endpoints")
    refused(adm, p, lambda: a.post("/apikeys", json={"name": "k", "endpoints": ["nope"]}), 404,
            "not_found", "endpoints")


# ---- /issuers -------------------------------------------------------------------------------------

def jwks():
    key = ec.generate_private_key(ec.SECP256R1())
    jwk = json.loads(ECAlgorithm.to_jwk(key.public_key()))
    jwk.update(kid="ec-1", use="sig")
    return {"keys": [jwk]}


def test_issuer_add_list_rm(adm):
    a = adm.admin()
    iss = "https://idp.example/tenant"
    r = a.post("/issuers", json={"issuer": iss, "jwks": jwks(), "audience": "portico"})
    assert r.status_code == 201, r.text
    assert r.json()["issuer"] == iss and len(r.json()["keys"]) == 1
    got = [i for i in a.get("/issuers").json()["issuers"] if i["issuer"] == iss]
    assert got and got[0]["audience"] == "portico" and got[0]["keys"] == 1
    # The JWKS may come as text too; the issuer is replaced, as `portico auth trust` does.
    r = a.post("/issuers", json={"issuer": iss, "jwks": json.dumps(jwks())})
    assert r.status_code == 201
    got = [i for i in a.get("/issuers").json()["issuers"] if i["issuer"] == iss]
    assert len(got) == 1 and got[0].get("audience") is None
    for role in ("viewer", "editor"):
        c = as_role(adm, role)
        assert c.get("/issuers").status_code == 200
        refused(adm, ["/issuers"], lambda: c.post("/issuers", json={"issuer": "x", "jwks": jwks()}),
                403, "forbidden")
    quoted = requests.utils.quote(iss, safe="")
    assert a.delete("/issuers/" + quoted).json() == {"removed": iss}
    assert not [i for i in a.get("/issuers").json()["issuers"] if i["issuer"] == iss]
    refused(adm, ["/issuers"], lambda: a.delete("/issuers/" + quoted), 404, "not_found")


def test_issuer_refusals_change_nothing(adm):
    a = adm.admin()
    p = ["/issuers"]
    refused(adm, p, lambda: a.post("/issuers", json={"jwks": jwks()}), 400, "bad_request",
            "issuer")
    refused(adm, p, lambda: a.post("/issuers", json={"issuer": ""}), 400, "bad_request", "issuer")
    refused(adm, p, lambda: a.post("/issuers", json={"issuer": "i"}), 400, "bad_request", "jwks")
    refused(adm, p, lambda: a.post("/issuers", json={"issuer": "i", "jwks": {"keys": []}}), 400,
            "bad_request", "jwks")
    refused(adm, p, lambda: a.post("/issuers", json={"issuer": "i", "jwks": "{", }), 400,
            "bad_request", "jwks")
    refused(adm, p, lambda: a.post("/issuers", json={"issuer": "i", "jwks": jwks(),
                                                     "audience": ""}), 400, "bad_request",
            "audience")


# ---- /secrets -------------------------------------------------------------------------------------

def test_secrets_set_replace_rm_never_show_the_value(adm):
    a = adm.admin()
    answers = []
    r = a.post("/secrets", json={"name": "db password", "value": SECRET_VALUE})
    answers.append(r)
    assert r.status_code == 201, r.text
    assert r.json()["name"] == "db password" and "value" not in r.json()
    answers.append(a.get("/secrets"))
    names = [s["name"] for s in answers[-1].json()["secrets"]]
    assert "db password" in names
    answers.append(a.post("/secrets", json={"name": "db password", "value": SECRET_VALUE}))
    assert_admin_error(answers[-1], 409, "conflict", "name")
    answers.append(a.put("/secrets/db%20password", json={"value": SECRET_VALUE + "2"}))
    assert answers[-1].status_code == 200
    assert answers[-1].json()["updated"] >= answers[-1].json()["created"]
    answers.append(a.put("/secrets/db%20password", json={"value": 7}))
    assert_admin_error(answers[-1], 400, "bad_request", "value")
    for a_ in answers:
        assert SECRET_VALUE not in a_.text
    assert SECRET_VALUE not in json.dumps(audit_entries(adm))
    # A handler reads the value the API stored.
    src = "def handler(request):\n    return {'v': pq.get_secret('db password')}\n"
    assert a.post("/scripts", json={"name": "sec", "source": src}).status_code == 201
    assert a.post("/endpoints", json={"name": "sec", "path": "/sec", "script": "sec",
                                      "auth": "public"}).status_code == 201
    r = wait_status(adm.server, "/sec", 200, {})
    assert r.json() == {"v": SECRET_VALUE + "2"}
    assert a.delete("/secrets/db%20password").json() == {"removed": "db password"}
    refused(adm, ["/secrets"], lambda: a.delete("/secrets/db%20password"), 404, "not_found")
    refused(adm, ["/secrets"], lambda: a.put("/secrets/db%20password", json={"value": "x"}),
            404, "not_found")


def test_secrets_concurrent_creates_of_one_name_one_wins(adm):
    """Two creates of one name race: one 201, the other 409, one row, and the stored value is
    the winner's (never the loser's, never a lost one)."""
    import threading
    values = [f"race-value-{i}" for i in range(8)]
    clients = [adm.admin() for _ in values]
    answers = [None] * len(values)
    go = threading.Barrier(len(values))

    def create(i):
        go.wait()
        answers[i] = clients[i].post("/secrets", json={"name": "raced", "value": values[i]})

    threads = [threading.Thread(target=create, args=(i,)) for i in range(len(values))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    won = [i for i, r in enumerate(answers) if r.status_code == 201]
    assert len(won) == 1, [r.status_code for r in answers]
    for i, r in enumerate(answers):
        if i not in won:
            assert_admin_error(r, 409, "conflict", "name")
    a = adm.admin()
    rows = [s for s in a.get("/secrets").json()["secrets"] if s["name"] == "raced"]
    assert len(rows) == 1 and rows[0]["updated"] == rows[0]["created"]
    src = "def handler(request):\n    return {'v': pq.get_secret('raced')}\n"
    assert a.post("/scripts", json={"name": "raced", "source": src}).status_code == 201
    assert a.post("/endpoints", json={"name": "raced", "path": "/raced", "script": "raced",
                                      "auth": "public"}).status_code == 201
    assert wait_status(adm.server, "/raced", 200, {}).json() == {"v": values[won[0]]}
    assert a.delete("/secrets/raced").status_code == 200


def test_secrets_are_admin_only_and_refusals_change_nothing(adm):
    a = adm.admin()
    p = ["/secrets"]
    for role in ("viewer", "editor"):
        c = as_role(adm, role)
        assert_admin_error(c.get("/secrets"), 403, "forbidden")
        refused(adm, p, lambda: c.post("/secrets", json={"name": "x", "value": SECRET_VALUE}),
                403, "forbidden")
        refused(adm, p, lambda: c.delete("/secrets/x"), 403, "forbidden")
    for body, field in (({"value": "v"}, "name"), ({"name": "n"}, "value"),
                        ({"name": "n", "value": ""}, "value"),
                        ({"name": "bad\nname", "value": "v"}, "name"),
                        ({"name": "n", "value": ["v"]}, "value")):
        err = refused(adm, p, lambda: a.post("/secrets", json=body), 400, "bad_request", field)
        assert "a\u0000b" not in json.dumps(err)
    refused(adm, p, lambda: a.post("/secrets", json={"name": "n", "value": "v" * 70000}), 413,
            "too_large", "value")
    refused(adm, p, lambda: a.put("/secrets/n", data="{"), 400, "bad_request")
    # A malformed body is refused without quoting it (it may hold the value).
    for raw in ('{"name": "n", "value": "s3cr3t-VALUE-never-shown\\u0000"}',
                '{"name": "n", "value": "s3cr3t-VALUE-never-shown}'):
        err = refused(adm, p, lambda: a.post("/secrets", data=raw), 400, "bad_request")
        assert SECRET_VALUE not in json.dumps(err)

