"""PATCH /endpoints/{name} over real HTTP: one store transaction (pt_store_endpoint_set), so
the public listener never sees the endpoint missing while it changes, and every refusal
(path taken, unknown script, bad field, role below editor) changes nothing."""

import threading

import pytest

from conftest import AdminServer, assert_admin_error

A = "def handler(request):\n    return {'v': 'a'}\n"
B = "def handler(request):\n    return {'v': 'b'}\n"


@pytest.fixture(scope="module")
def adm(module_portico):
    s = AdminServer(module_portico)
    a = s.admin()
    for name, src in (("a", A), ("b", B)):
        assert a.post("/scripts", json={"name": name, "source": src}).status_code == 201
    for name, path in (("flip", "/flip"), ("other", "/other/{id}")):
        r = a.post("/endpoints", json={"name": name, "path": path, "script": "a",
                                       "auth": "public"})
        assert r.status_code == 201, r.text
    yield s
    s.close()


def test_patch_never_unpublishes_the_endpoint(adm):
    a = adm.admin()
    statuses, stop = [], threading.Event()

    def hammer():
        while not stop.is_set():
            statuses.append(adm.server.get("/flip").status_code)

    t = threading.Thread(target=hammer)
    t.start()
    try:
        for i in range(40):
            r = a.patch("/endpoints/flip", json={"script": "b" if i % 2 == 0 else "a"})
            assert r.status_code == 200, r.text
    finally:
        stop.set()
        t.join()
    assert statuses and set(statuses) == {200}, sorted(set(statuses))
    created = a.get("/endpoints/flip").json()["created"]
    r = a.patch("/endpoints/flip", json={"script": "b", "methods": ["POST"], "auth": "apikey"})
    assert r.status_code == 200
    assert r.json() == {"name": "flip", "path": "/flip", "methods": ["POST"], "script": "b",
                        "auth": "apikey", "created": created,
                        "settings": {"timeout_ms": None, "max_concurrency": None,
                                     "queue_wait_ms": None, "cache_ms": None, "max_body": None,
                                     "cors": None}}
    assert a.patch("/endpoints/flip", json={"methods": ["GET"], "auth": "public"}).status_code \
        == 200


def test_patch_refusals_change_nothing(adm):
    a = adm.admin()
    before = a.get("/endpoints").json()
    n = len(a.get("/audit", params={"limit": 10000}).json()["entries"])
    for body, status, code, field in [
        ({"path": "/other/{x}"}, 409, "conflict", "path"),
        ({"path": "/other/{id}"}, 409, "conflict", "path"),
        ({"script": "missing"}, 404, "not_found", "script"),
        ({"path": "nope"}, 400, "bad_request", "path"),
        ({"auth": "basic"}, 400, "bad_request", "auth"),
        ({"methods": []}, 400, "bad_request", "methods"),
        ({"script": 3}, 400, "bad_request", "script"),
    ]:
        assert_admin_error(a.patch("/endpoints/flip", json=body), status, code, field)
    assert_admin_error(a.patch("/endpoints/flip", json=[1]), 400, "bad_request")
    assert_admin_error(a.patch("/endpoints/nobody", json={"path": "/x"}), 404, "not_found")
    v = adm.client()
    assert v.login("viewer").status_code == 200
    assert_admin_error(v.patch("/endpoints/flip", json={"path": "/x"}), 403, "forbidden")
    assert a.get("/endpoints").json() == before
    assert len(a.get("/audit", params={"limit": 10000}).json()["entries"]) == n
