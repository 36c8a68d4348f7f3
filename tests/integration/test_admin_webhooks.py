"""The admin API's /webhooks routes over real HTTP: the URL (viewer) and its rotation (admin),
sources (editor), the event log with its filters and pages, one event's payload, and replay
(editor); every refusal changes nothing."""

import pytest

from conftest import AdminServer, assert_admin_error

RECORD = "def handler(event):\n    return None\n"


@pytest.fixture(scope="module")
def adm(module_portico):
    s = AdminServer(module_portico)
    a = s.admin()
    assert a.post("/scripts", json={"name": "record", "source": RECORD}).status_code == 201
    yield s
    s.close()


def as_role(adm, role):
    c = adm.client()
    assert c.login(role).status_code == 200
    return c


def audit_len(adm):
    return len(adm.admin().get("/audit", params={"limit": 10000}).json()["entries"])


def refused(adm, paths, call, status, code, field=None):
    a = adm.admin()
    before = {p: a.get(p).json() for p in paths}
    n = audit_len(adm)
    err = assert_admin_error(call(), status, code, field)
    assert {p: a.get(p).json() for p in paths} == before
    assert audit_len(adm) == n
    return err


def post_event(adm, path, body):
    r = adm.server.post(path, data=body)
    assert r.status_code == 200, r.text
    return r.json()["id"]


def test_url_and_rotate(adm):
    a, v = adm.admin(), as_role(adm, "viewer")
    first = v.get("/webhooks/url").json()
    assert first["path"].startswith("/webhook/") and "url" not in first
    full = v.get("/webhooks/url", params={"base": "https://h.example/"}).json()
    assert full["url"] == "https://h.example" + first["path"]
    for role in ("viewer", "editor"):
        c = as_role(adm, role)
        refused(adm, ["/webhooks/url"], lambda: c.post("/webhooks/rotate"), 403, "forbidden")
    r = a.post("/webhooks/rotate")
    assert r.status_code == 200 and r.json()["path"] != first["path"]
    assert a.get("/webhooks/url").json() == r.json()
    old_token = first["path"].rsplit("/", 1)[1]
    new_token = r.json()["path"].rsplit("/", 1)[1]
    entry = a.get("/audit").json()["entries"][0]
    assert entry["action"] == "POST /webhooks/rotate"
    assert old_token not in str(entry) and new_token not in str(entry)
    assert adm.server.post(first["path"], data=b"x").status_code == 404
    post_event(adm, r.json()["path"], b"after rotate")


def test_sources_add_list_rm(adm):
    a, e = adm.admin(), as_role(adm, "editor")
    r = e.post("/webhooks/sources", json={"name": "crm", "script": "record",
                                          "dedup_header": "X-Id"})
    assert r.status_code == 201, r.text
    src = r.json()
    assert src["verify"] == "none" and src["script"] == "record"
    assert src["webhook"]["path"].endswith("/crm")
    names = [s["name"] for s in as_role(adm, "viewer").get("/webhooks/sources").json()["sources"]]
    assert "crm" in names
    p = ["/webhooks/sources"]
    refused(adm, p, lambda: e.post("/webhooks/sources", json={"name": "crm"}), 409, "conflict",
            "name")
    refused(adm, p, lambda: e.post("/webhooks/sources", json={"name": "x", "script": "nope"}),
            404, "not_found", "script")
    refused(adm, p, lambda: e.post("/webhooks/sources", json={"name": "x", "verify": "md5"}),
            400, "bad_request", "verify")
    refused(adm, p, lambda: e.post("/webhooks/sources", json={"name": "x", "header": "X-S"}),
            400, "bad_request", "header")
    refused(adm, p, lambda: e.post("/webhooks/sources", json={"name": "bad name"}), 400,
            "bad_request", "name")
    refused(adm, p, lambda: e.post("/webhooks/sources", json={}), 400, "bad_request", "name")
    refused(adm, p, lambda: e.post("/webhooks/sources", json={"name": 1}), 400, "bad_request",
            "name")
    v = as_role(adm, "viewer")
    refused(adm, p, lambda: v.post("/webhooks/sources", json={"name": "y"}), 403, "forbidden")
    refused(adm, p, lambda: v.delete("/webhooks/sources/crm"), 403, "forbidden")
    assert e.delete("/webhooks/sources/crm").json() == {"removed": "crm"}
    refused(adm, p, lambda: e.delete("/webhooks/sources/crm"), 404, "not_found")
    assert a.get("/webhooks/sources").json()["sources"] == []


def test_events_filters_pages_payload_replay(adm):
    a, e, v = adm.admin(), as_role(adm, "editor"), as_role(adm, "viewer")
    assert e.post("/webhooks/sources", json={"name": "svc", "script": "record"}).status_code == 201
    assert e.post("/webhooks/sources", json={"name": "plain"}).status_code == 201
    base = a.get("/webhooks/url").json()["path"]
    ids = [post_event(adm, base + "/svc", f"svc {i}".encode()) for i in range(5)]
    plain = post_event(adm, base + "/plain", b'{"k": 1}')
    evs = v.get("/webhooks/events", params={"source": "svc"}).json()["events"]
    assert [x["id"] for x in evs] == ids[::-1]
    assert evs[0]["bytes"] == len(b"svc 4") and evs[0]["source"] == "svc"
    page1 = v.get("/webhooks/events", params={"source": "svc", "limit": 2}).json()
    assert [x["id"] for x in page1["events"]] == ids[:2:-1][:2] and page1["next"] == ids[3]
    page2 = v.get("/webhooks/events", params={"source": "svc", "limit": 2,
                                              "before": page1["next"]}).json()
    assert [x["id"] for x in page2["events"]] == [ids[2], ids[1]]
    assert [x["id"] for x in v.get("/webhooks/events", params={"source": "plain"})
            .json()["events"]] == [plain]
    assert v.get("/webhooks/events", params={"status": "received", "source": "plain"}) \
        .json()["events"][0]["id"] == plain
    assert v.get("/webhooks/events", params={"since": "1h", "source": "plain"}) \
        .json()["events"][0]["id"] == plain
    # after=ID: oldest first, "next" is the after of the next page; full=1: every column.
    up = v.get("/webhooks/events", params={"source": "svc", "after": ids[0], "limit": 2}).json()
    assert [x["id"] for x in up["events"]] == ids[1:3] and up["next"] == ids[2]
    up = v.get("/webhooks/events", params={"source": "svc", "after": up["next"], "limit": 2,
                                           "full": "1"}).json()
    assert [x["id"] for x in up["events"]] == ids[3:5]
    assert list(up["events"][0]) == ["id", "received_at", "source", "method", "path",
                                     "query_string", "headers", "content_type", "body",
                                     "body_base64", "remote_addr", "status", "attempts",
                                     "last_error"]
    assert up["events"][0]["body"] == "svc 3" and up["events"][0]["path"] == "/webhook/{token}/svc"
    assert v.get("/webhooks/events", params={"after": plain}).json() == {"events": []}
    one = v.get(f"/webhooks/events/{plain}").json()
    assert one["body"] == '{"k": 1}' and one["body_base64"] is False
    assert one["method"] == "POST" and isinstance(one["headers"], dict)
    for q, field in ((("limit", "0"),), "limit"), ((("limit", "x"),), "limit"), \
            ((("since", "soon"),), "since"), ((("status", "lost"),), "status"), \
            ((("before", "-1"),), "before"), ((("after", "-1"),), "after"), \
            ((("after", "1"), ("before", "9")), "after"), ((("full", "yes"),), "full"):
        assert_admin_error(v.get("/webhooks/events", params=dict(q)), 400, "bad_request", field)
    assert_admin_error(v.get("/webhooks/events/999999"), 404, "not_found")
    assert_admin_error(v.get("/webhooks/events/abc"), 404, "not_found")
    # Replay: editor; the source must have a script.
    p = [f"/webhooks/events/{plain}", f"/webhooks/events/{ids[0]}"]
    refused(adm, p, lambda: v.post(f"/webhooks/events/{ids[0]}/replay"), 403, "forbidden")
    refused(adm, p, lambda: e.post(f"/webhooks/events/{plain}/replay"), 409, "conflict")
    refused(adm, p, lambda: e.post("/webhooks/events/999999/replay"), 404, "not_found")
    r = e.post(f"/webhooks/events/{ids[0]}/replay")
    assert r.status_code == 200 and r.json() == {"id": ids[0], "status": "pending",
                                                 "script": "record"}
    entry = a.get("/audit").json()["entries"][0]
    assert entry["action"] == "POST /webhooks/events/{id}/replay"
