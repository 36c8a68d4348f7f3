"""The webhook inbox (issue 5, DESIGN §5): the install URL and its rotation, every content type,
methods, the body limit, `webhook events`, named sources with GitHub / Stripe / HMAC-SHA256
signatures (computed here with Python's hmac, following each provider's documented scheme),
deduplication, processing with a script (retries with backoff, replay, restarts), a handler
endpoint used as a receiver, and the SIGKILL durability test.

Everything runs against the real binary over real HTTP on 127.0.0.1; nothing is mocked.
"""

import base64
import datetime
import hashlib
import hmac
import json
import os
import random
import re
import select
import signal
import socket
import threading
import time
import uuid

import pytest
import requests

from conftest import HTTP_TIMEOUT, Server, assert_json_error, make_portico, start_module_server

TOKEN_RE = r"[A-Za-z0-9_-]{43}"
ISO_UTC_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|\+00:00)$")

GH_SECRET = "It's a Secret to Everybody"            # GitHub's documented test vector
STRIPE_SECRET = "whsec_test_5WbX5kEWLlfzsGNjH64I8lOOqUB6e8FH"
HMAC_SECRET = "generic-hmac-s3cret/with+symbols="


# ---------------------------------------------------------------- helpers

def token_of(portico):
    out = portico.cli("webhook", "url", "--base", "http://127.0.0.1:1").stdout.strip()
    m = re.fullmatch(r"http://127\.0\.0\.1:1/webhook/(" + TOKEN_RE + ")", out)
    assert m, f"unexpected `webhook url` output {out!r}"
    return m.group(1)


def list_events(portico, since=None, limit=100000, source=None):
    args = ["webhook", "events", "--json"]
    if since is not None:
        args += ["--since", since]
    if limit is not None:
        args += ["--limit", limit]
    if source is not None:
        args += ["--source", source]
    out = portico.cli(*args).stdout
    evs = json.loads(out)
    assert isinstance(evs, list), out[:500]
    return evs


def get_event(portico, eid):
    evs = list_events(portico, since=eid - 1, limit=1)
    assert evs and evs[0]["id"] == eid, f"event {eid} not listed: {evs!r}"
    return evs[0]


def max_id(portico):
    out = portico.cli("db", "query", "dw", "select coalesce(max(id), 0) as m from webhooks.events",
                      "--json").stdout
    return json.loads(out)[0]["m"]


def body_bytes(ev):
    if ev["body_base64"]:
        return base64.b64decode(ev["body"], validate=True)
    return ev["body"].encode("utf-8")


def db_rows(portico, sql, missing_ok=False):
    cp = portico.cli("db", "query", "dw", sql, "--json", check=not missing_ok)
    if missing_ok and cp.returncode != 0 and "not found" in cp.stderr:
        return []                    # the script has not created its table yet
    assert cp.returncode == 0, cp.stderr
    return json.loads(cp.stdout)


def received(resp):
    """A 200 answer {"status": "received", "id": N} (no duplicate flag); returns N."""
    assert resp.status_code == 200, f"{resp.status_code}: {resp.text!r}"
    assert resp.headers.get("Content-Type", "").startswith("application/json")
    doc = resp.json()
    assert set(doc) == {"status", "id"}, doc
    assert doc["status"] == "received" and isinstance(doc["id"], int) and doc["id"] > 0, doc
    return doc["id"]


def duplicate_of(resp, first_id):
    assert resp.status_code == 200, f"{resp.status_code}: {resp.text!r}"
    doc = resp.json()
    assert doc == {"status": "received", "id": first_id, "duplicate": True}, doc


def wait_for(pred, timeout, interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(interval)


def gh_sig(secret, body):
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def stripe_sig(secret, body, t=None, extra=""):
    t = int(time.time()) if t is None else t
    v1 = hmac.new(secret.encode(), str(t).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={v1}{extra}"


def hmac_raw(secret, body):
    return hmac.new(secret.encode(), body, hashlib.sha256).digest()


def raw_exchange(port, head, body=b"", timeout=10.0):
    """Sends head, then body unless the server answers first; returns the status code."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    deadline = time.monotonic() + timeout
    try:
        s.sendall(head)
        view = memoryview(body)
        while view and time.monotonic() < deadline:
            r, w, _ = select.select([s], [s], [], 0.5)
            if r:
                break
            if w:
                try:
                    n = s.send(view[:65536])
                except (BrokenPipeError, ConnectionResetError):
                    break
                view = view[n:]
        data = b""
        while time.monotonic() < deadline and b"\r\n\r\n" not in data:
            r, _, _ = select.select([s], [], [], 0.5)
            if not r:
                continue
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
        assert b"\r\n\r\n" in data, f"no HTTP response: {data[:300]!r}"
        return int(data.split(b"\r\n", 1)[0].split()[1])
    finally:
        s.close()


# ---------------------------------------------------------------- the shared server

SOURCES = [
    ("plain", []),
    ("listing", []),
    ("other", []),
    ("gh", ["--verify", "github", "--secret", "gh_secret"]),
    ("stripe", ["--verify", "stripe", "--secret", "stripe_secret"]),
    ("hm", ["--verify", "hmac-sha256", "--secret", "hm_secret"]),
    ("hmh", ["--verify", "hmac-sha256", "--secret", "hm_secret", "--header", "X-Acme-Signature"]),
    ("dd", ["--dedup-header", "X-Delivery-Id"]),
]

READ_EVENTS = """\
def handler(request):
    want = int(request['query_string'])
    rows = pq.dbconnect('dw').fetch('dw', 'webhooks', 'events')
    return [{'id': r['id'], 'body': r['body'], 'body_base64': r['body_base64'],
             'source': r['source'], 'status': r['status']} for r in rows if r['id'] == want]
"""


class Hooks:
    def __init__(self, portico, server, token):
        self.portico, self.server, self.token = portico, server, token

    def path(self, source=None, token=None):
        p = "/webhook/" + (token or self.token)
        return p + "/" + source if source else p

    def post(self, source=None, method="POST", **kw):
        return self.server.request(method, self.path(source), **kw)


@pytest.fixture(scope="module")
def hk(module_portico):
    p = module_portico
    # Value on stdin: exactly one trailing newline is removed.
    p.cli("secret", "set", "gh_secret", input=GH_SECRET + "\n")
    p.cli("secret", "set", "stripe_secret", input=STRIPE_SECRET + "\n")
    p.cli("secret", "set", "hm_secret", input=HMAC_SECRET + "\n")
    token = token_of(p)
    for name, opts in SOURCES:
        out = p.cli("webhook", "source", "add", name, *opts, "--base",
                    "http://hooks.example:8443/").stdout.strip()
        assert out == f"http://hooks.example:8443/webhook/{token}/{name}", out
    p.publish("read_events", READ_EVENTS, methods="GET")
    s = start_module_server(p)
    yield Hooks(p, s, token)
    s.close()


# ---------------------------------------------------------------- URL and rotation

def test_url_is_long_random_and_stable(portico, cli, tmp_path):
    out = cli("webhook", "url", "--base", "https://hooks.example.com/").stdout.strip()
    assert re.fullmatch(r"https://hooks\.example\.com/webhook/" + TOKEN_RE, out), out
    assert cli("webhook", "url", "--base", "https://hooks.example.com").stdout.strip() == out
    other = make_portico(tmp_path / "other")
    assert token_of(other) != token_of(portico)


def test_rotate_old_url_404_new_url_works_token_never_shown(portico, cli, server):
    cli("webhook", "source", "add", "svc")
    old = token_of(portico)
    s = server()
    r = s.post(f"/webhook/{old}?k=v", json={"before": "rotate"})
    first = received(r)
    assert received(s.post(f"/webhook/{old}/svc", data=b"src")) > first

    out = cli("webhook", "rotate", "--base", "http://127.0.0.1:1").stdout.strip()
    m = re.fullmatch(r"http://127\.0\.0\.1:1/webhook/(" + TOKEN_RE + ")", out)
    assert m, out
    new = m.group(1)
    assert new != old
    assert token_of(portico) == new

    before = max_id(portico)
    assert_json_error(s.post(f"/webhook/{old}", json={"after": "rotate"}), 404)
    assert_json_error(s.post(f"/webhook/{old}/svc", data=b"x"), 404)
    assert max_id(portico) == before, "a request to the old URL was stored"
    got = received(s.post(f"/webhook/{new}", json={"after": "rotate"}))
    assert received(s.post(f"/webhook/{new}/svc?x=1", data=b"src2")) > got

    listing = cli("webhook", "events", "--json").stdout
    table = cli("webhook", "events").stdout
    assert len(json.loads(listing)) == 4
    for tok in (old, new):
        assert tok not in listing and tok not in table
    paths = sorted(e["path"] for e in json.loads(listing))
    assert paths == ["/webhook/{token}", "/webhook/{token}",
                     "/webhook/{token}/svc", "/webhook/{token}/svc"], paths
    assert s.terminate() == 0
    log = s.log
    assert "/webhook/{token}" in log, "webhook requests are not in the access log at all"
    assert old not in log and new not in log, "the webhook token reached the server log"


# ---------------------------------------------------------------- content types and methods

BINARY = bytes(range(256)) + b"\xff\xfe\xc0\x80\xed\xa0\x80" + os.urandom(1024)

CONTENT = [
    ("json", "application/json", json.dumps({"event": "order.created", "n": 1,
                                             "name": "Zoë ✓"}).encode()),
    ("form", "application/x-www-form-urlencoded", b"a=1&b=two+words&c=%E2%9C%93"),
    ("xml", "application/xml", b'<?xml version="1.0"?><note><to>ops</to><b a="1"/></note>'),
    ("text", "text/plain; charset=utf-8", "plain text ✓ 日本 😀\nsecond line\n".encode()),
    ("binary", "application/octet-stream", BINARY),
    ("binary-no-ctype", None, b"\x00\x01\x80\xff" * 50),
    ("utf8-with-nul", "text/plain", b"a\x00b\x00c"),
    ("empty", None, b""),
]


@pytest.mark.parametrize("kind,ctype,body", CONTENT, ids=[c[0] for c in CONTENT])
def test_every_content_type_is_stored_byte_identical(hk, kind, ctype, body):
    headers = {"x-test-header": f"kind-{kind}"}
    if ctype:
        headers["Content-Type"] = ctype
    t0 = datetime.datetime.now(datetime.timezone.utc)
    r = hk.post(data=body, headers=headers, params={"q": kind, "n": "1"})
    eid = received(r)
    ev = get_event(hk.portico, eid)    # stored BEFORE the answer: visible right away
    assert body_bytes(ev) == body
    try:
        body.decode("utf-8")
        assert ev["body_base64"] == 0 and ev["body"] == body.decode("utf-8")
    except UnicodeDecodeError:
        assert ev["body_base64"] == 1
    assert ev["method"] == "POST"
    assert ev["source"] == ""
    assert ev["path"] == "/webhook/{token}"
    assert ev["query_string"] == f"q={kind}&n=1"
    assert ev["content_type"] == ctype if ctype else ev["content_type"] in (None, "")
    assert ev["remote_addr"] == "127.0.0.1"
    assert ev["status"] == "received"
    assert ev["attempts"] == 0 and ev["last_error"] is None
    assert ISO_UTC_RE.match(ev["received_at"]), ev["received_at"]
    at = datetime.datetime.fromisoformat(ev["received_at"].replace("Z", "+00:00"))
    assert abs((at - t0).total_seconds()) < 30
    assert isinstance(ev["headers"], dict)
    assert ev["headers"].get("X-Test-Header") == f"kind-{kind}", ev["headers"]
    if ctype:
        assert ev["headers"].get("Content-Type") == ctype, ev["headers"]


def test_scripts_read_events_with_pq(hk):
    eid = received(hk.post(data=BINARY, headers={"Content-Type": "application/octet-stream"}))
    tid = received(hk.post("plain", data="hello pq", headers={"Content-Type": "text/plain"}))
    r = hk.server.get("/read_events", params=str(eid))
    assert r.status_code == 200, r.text
    (row,) = r.json()
    assert row["body_base64"] == 1 and base64.b64decode(row["body"]) == BINARY
    (row,) = hk.server.get("/read_events", params=str(tid)).json()
    assert row == {"id": tid, "body": "hello pq", "body_base64": 0, "source": "plain",
                   "status": "received"}


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_put_and_patch_are_stored(hk, method):
    body = json.dumps({"via": method}).encode()
    eid = received(hk.post(method=method, data=body, headers={"Content-Type": "application/json"}))
    ev = get_event(hk.portico, eid)
    assert ev["method"] == method and body_bytes(ev) == body
    eid = received(hk.post("plain", method=method, data=b"src"))
    assert get_event(hk.portico, eid)["method"] == method


@pytest.mark.parametrize("method", ["GET", "DELETE", "HEAD", "OPTIONS"])
def test_other_methods_405_with_allow(hk, method):
    before = max_id(hk.portico)
    for source in (None, "plain"):
        r = hk.post(source, method=method)
        assert r.status_code == 405, f"{method} {source}: {r.status_code} {r.text!r}"
        allow = {m.strip().upper() for m in r.headers.get("Allow", "").split(",")}
        assert {"POST", "PUT", "PATCH"} <= allow, r.headers.get("Allow")
    assert max_id(hk.portico) == before


def test_unknown_token_and_unknown_source_404(hk):
    before = max_id(hk.portico)
    bad = "A" * 43
    assert_json_error(hk.server.post(f"/webhook/{bad}", data=b"x"), 404)
    assert_json_error(hk.server.post(f"/webhook/{hk.token[:-1]}", data=b"x"), 404)
    assert_json_error(hk.server.post(f"/webhook/{hk.token}x", data=b"x"), 404)
    assert_json_error(hk.server.post("/webhook/", data=b"x"), 404)
    assert_json_error(hk.post("nosuchsource", data=b"x"), 404)
    assert max_id(hk.portico) == before


def test_source_path_and_query_string(hk):
    eid = received(hk.post("plain", data=b'{"a": 1}', params="x=1&y=two%20words",
                           headers={"Content-Type": "application/json"}))
    ev = get_event(hk.portico, eid)
    assert ev["source"] == "plain"
    assert ev["path"] == "/webhook/{token}/plain"
    assert ev["query_string"] == "x=1&y=two%20words"
    assert ev["status"] == "received"


def test_keep_alive_and_concurrent_posts_get_distinct_ids(hk):
    bodies = [f"concurrent-{i}-{uuid.uuid4()}".encode() for i in range(40)]
    results = {}

    def run(chunk):
        with requests.Session() as sess:
            for b in chunk:
                r = sess.post(hk.server.url + hk.path(), data=b, timeout=HTTP_TIMEOUT)
                results[b] = received(r)

    threads = [threading.Thread(target=run, args=(bodies[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(results) == len(bodies) and len(set(results.values())) == len(bodies)
    evs = {e["id"]: e for e in list_events(hk.portico, since=min(results.values()) - 1)}
    for b, eid in results.items():
        assert body_bytes(evs[eid]) == b


# ---------------------------------------------------------------- webhook events

def test_events_listing_since_limit_source_json(hk):
    ids = [received(hk.post("listing", json={"i": i})) for i in range(5)]
    assert ids == sorted(ids)
    other = received(hk.post("other", json={"i": "other"}))
    evs = list_events(hk.portico, source="listing")
    assert [e["id"] for e in evs] == ids
    assert [json.loads(e["body"]) for e in evs] == [{"i": i} for i in range(5)]
    assert all(e["source"] == "listing" for e in evs)
    assert [e["id"] for e in list_events(hk.portico, since=ids[1], source="listing")] == ids[2:]
    assert [e["id"] for e in list_events(hk.portico, limit=2, source="listing")] == ids[:2]
    assert [e["id"] for e in list_events(hk.portico, since=ids[1], limit=2,
                                         source="listing")] == ids[2:4]
    assert list_events(hk.portico, since=ids[-1], source="listing") == []
    assert [e["id"] for e in list_events(hk.portico, since=ids[3])] == [ids[4], other]
    assert [e["id"] for e in list_events(hk.portico, since=ids[3], limit=1)] == [ids[4]]
    # Without --limit: at least these, ordered by id.
    all_ids = [e["id"] for e in list_events(hk.portico, limit=None)]
    assert all_ids == sorted(all_ids) and set(ids) <= set(all_ids)

    # The table form lists the same events.
    out = hk.portico.cli("webhook", "events", "--source", "listing", "--since", ids[2]).stdout
    lines = [l for l in out.splitlines() if l.strip()]
    assert re.search(r"\bID\b", lines[0]), out
    found = [int(m.group(1)) for m in (re.match(r"\s*(\d+)\s", l) for l in lines) if m]
    assert found == ids[3:], out
    assert "listing" in out and "other" not in out


# ---------------------------------------------------------------- signatures

def assert_401_nothing_stored(hk, attempts):
    before = max_id(hk.portico)
    for label, kw in attempts:
        r = hk.post(**kw)
        body = assert_json_error(r, 401)
        assert body["error"], label
    assert max_id(hk.portico) == before, "a request with a bad signature was stored"


def test_github_signature_vector_matches_the_docs():
    # docs.github.com "Validating webhook deliveries": this secret and payload give this digest.
    assert gh_sig(GH_SECRET, b"Hello, World!") == \
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


def test_github_good_signature(hk):
    body = b"Hello, World!"
    eid = received(hk.post("gh", data=body, headers={
        "X-Hub-Signature-256": gh_sig(GH_SECRET, body),
        "X-GitHub-Event": "ping", "X-GitHub-Delivery": str(uuid.uuid4()),
        "Content-Type": "application/json"}))
    ev = get_event(hk.portico, eid)
    assert body_bytes(ev) == body and ev["source"] == "gh"
    assert ev["headers"].get("X-Github-Event") == "ping", ev["headers"]
    payload = json.dumps({"zen": "Design for failure.", "hook_id": 1}, indent=2).encode()
    eid = received(hk.post("gh", data=payload, headers={
        "X-Hub-Signature-256": gh_sig(GH_SECRET, payload),
        "X-GitHub-Delivery": str(uuid.uuid4()), "Content-Type": "application/json"}))
    assert body_bytes(get_event(hk.portico, eid)) == payload


def test_github_bad_or_missing_signature_401(hk):
    body = json.dumps({"action": "opened", "marker": str(uuid.uuid4())}).encode()
    good = gh_sig(GH_SECRET, body)
    d = {"X-GitHub-Delivery": str(uuid.uuid4())}
    assert_401_nothing_stored(hk, [
        ("wrong secret", dict(source="gh", data=body,
                              headers={**d, "X-Hub-Signature-256": gh_sig("nope", body)})),
        ("other body", dict(source="gh", data=body + b" ",
                            headers={**d, "X-Hub-Signature-256": good})),
        ("missing", dict(source="gh", data=body, headers=d)),
        ("sha1 only", dict(source="gh", data=body, headers={
            **d, "X-Hub-Signature": "sha1=" + hmac.new(GH_SECRET.encode(), body,
                                                        hashlib.sha1).hexdigest()})),
        ("no prefix", dict(source="gh", data=body,
                           headers={**d, "X-Hub-Signature-256": good[len("sha256="):]})),
        ("truncated", dict(source="gh", data=body,
                           headers={**d, "X-Hub-Signature-256": good[:-2]})),
        ("garbage", dict(source="gh", data=body,
                         headers={**d, "X-Hub-Signature-256": "sha256=" + "zz" * 32})),
        ("empty", dict(source="gh", data=body, headers={**d, "X-Hub-Signature-256": ""})),
    ])


def stripe_event(evt_id=None, **extra):
    doc = {"id": evt_id or f"evt_{uuid.uuid4().hex[:24]}", "object": "event",
           "type": "payment_intent.succeeded", "data": {"object": {"amount": 2000}}, **extra}
    return json.dumps(doc).encode()


def test_stripe_good_signature(hk):
    body = stripe_event()
    eid = received(hk.post("stripe", data=body, headers={
        "Stripe-Signature": stripe_sig(STRIPE_SECRET, body),
        "Content-Type": "application/json; charset=utf-8"}))
    ev = get_event(hk.portico, eid)
    assert body_bytes(ev) == body and ev["source"] == "stripe"
    # Several v1 signatures (secret rolling): one matching is enough; v0 is ignored.
    body = stripe_event()
    t = int(time.time())
    bad_v1 = hmac.new(b"old-secret", f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    header = f"t={t},v1={bad_v1}," + stripe_sig(STRIPE_SECRET, body, t).split(",", 1)[1] + \
        ",v0=" + "0" * 64
    received(hk.post("stripe", data=body, headers={"Stripe-Signature": header}))
    # Within the tolerance (2 minutes old).
    body = stripe_event()
    received(hk.post("stripe", data=body, headers={
        "Stripe-Signature": stripe_sig(STRIPE_SECRET, body, int(time.time()) - 120)}))


def test_stripe_bad_missing_or_expired_signature_401(hk):
    body = stripe_event()
    now = int(time.time())
    good = stripe_sig(STRIPE_SECRET, body, now)
    v1 = good.split("v1=")[1]
    v0_only = "t=%d,v0=%s" % (now, v1)
    assert_401_nothing_stored(hk, [
        ("wrong secret", dict(source="stripe", data=body,
                              headers={"Stripe-Signature": stripe_sig("whsec_other", body)})),
        ("other body", dict(source="stripe", data=body + b"\n",
                            headers={"Stripe-Signature": good})),
        ("other timestamp", dict(source="stripe", data=body,
                                 headers={"Stripe-Signature": f"t={now - 1},v1={v1}"})),
        ("expired 10 minutes", dict(source="stripe", data=body, headers={
            "Stripe-Signature": stripe_sig(STRIPE_SECRET, body, now - 600)})),
        ("expired 6 minutes", dict(source="stripe", data=body, headers={
            "Stripe-Signature": stripe_sig(STRIPE_SECRET, body, now - 360)})),
        ("no timestamp", dict(source="stripe", data=body,
                              headers={"Stripe-Signature": f"v1={v1}"})),
        ("v0 only", dict(source="stripe", data=body, headers={"Stripe-Signature": v0_only})),
        ("missing", dict(source="stripe", data=body)),
        ("github style", dict(source="stripe", data=body, headers={
            "Stripe-Signature": gh_sig(STRIPE_SECRET, body)})),
    ])


def test_hmac_sha256_default_header_hex_and_base64(hk):
    for label, enc in [
        ("hex", lambda d: d.hex()),
        ("base64", lambda d: base64.b64encode(d).decode()),
        ("sha256= hex", lambda d: "sha256=" + d.hex()),
        ("sha256= base64", lambda d: "sha256=" + base64.b64encode(d).decode()),
    ]:
        body = json.dumps({"kind": label, "n": str(uuid.uuid4())}).encode()
        eid = received(hk.post("hm", data=body, headers={
            "X-Signature": enc(hmac_raw(HMAC_SECRET, body)), "Content-Type": "application/json"}))
        assert body_bytes(get_event(hk.portico, eid)) == body, label
    # Over the raw bytes of a binary body.
    body = BINARY
    eid = received(hk.post("hm", data=body, headers={
        "X-Signature": hmac_raw(HMAC_SECRET, body).hex(),
        "Content-Type": "application/octet-stream"}))
    ev = get_event(hk.portico, eid)
    assert ev["body_base64"] == 1 and body_bytes(ev) == body


def test_hmac_sha256_custom_header(hk):
    body = b"<event><id>42</id></event>"
    for sig in (hmac_raw(HMAC_SECRET, body).hex(),
                base64.b64encode(hmac_raw(HMAC_SECRET, body)).decode()):
        eid = received(hk.post("hmh", data=body, headers={
            "X-Acme-Signature": sig, "Content-Type": "application/xml"}))
        assert body_bytes(get_event(hk.portico, eid)) == body
    good = hmac_raw(HMAC_SECRET, body)
    assert_401_nothing_stored(hk, [
        ("default header instead of the custom one",
         dict(source="hmh", data=body, headers={"X-Signature": good.hex()})),
        ("missing", dict(source="hmh", data=body)),
        ("wrong secret", dict(source="hmh", data=body, headers={
            "X-Acme-Signature": hmac_raw("other", body).hex()})),
        ("other body", dict(source="hmh", data=body + b"x",
                            headers={"X-Acme-Signature": good.hex()})),
        ("base64 of other body", dict(source="hmh", data=body, headers={
            "X-Acme-Signature": base64.b64encode(hmac_raw(HMAC_SECRET, b"x")).decode()})),
    ])


def test_hmac_sha256_bad_or_missing_401(hk):
    body = json.dumps({"marker": str(uuid.uuid4())}).encode()
    good = hmac_raw(HMAC_SECRET, body)
    assert_401_nothing_stored(hk, [
        ("missing", dict(source="hm", data=body)),
        ("wrong secret", dict(source="hm", data=body,
                              headers={"X-Signature": hmac_raw("x", body).hex()})),
        ("flipped", dict(source="hm", data=body,
                         headers={"X-Signature": bytes([good[0] ^ 1]).hex() + good[1:].hex()})),
        ("truncated hex", dict(source="hm", data=body, headers={"X-Signature": good.hex()[:-1]})),
        ("secret with newline", dict(source="hm", data=body, headers={
            "X-Signature": hmac_raw(HMAC_SECRET + "\n", body).hex()})),
        ("empty", dict(source="hm", data=body, headers={"X-Signature": ""})),
        ("custom header on default source", dict(source="hm", data=body,
                                                 headers={"X-Acme-Signature": good.hex()})),
    ])


# ---------------------------------------------------------------- deduplication

def count_bodies(hk, since, body):
    return sum(1 for e in list_events(hk.portico, since=since) if body_bytes(e) == body)


def test_dedup_github_delivery(hk):
    before = max_id(hk.portico)
    body = json.dumps({"action": "closed", "marker": str(uuid.uuid4())}).encode()
    h = {"X-Hub-Signature-256": gh_sig(GH_SECRET, body), "X-GitHub-Delivery": str(uuid.uuid4()),
         "Content-Type": "application/json"}
    first = received(hk.post("gh", data=body, headers=h))
    duplicate_of(hk.post("gh", data=body, headers=h), first)
    duplicate_of(hk.post("gh", data=body, headers=h), first)
    assert count_bodies(hk, before, body) == 1
    # A different delivery of the same payload is a new event.
    h2 = {**h, "X-GitHub-Delivery": str(uuid.uuid4())}
    other = received(hk.post("gh", data=body, headers=h2))
    assert other != first and count_bodies(hk, before, body) == 2
    # A bad signature with a known delivery id is still refused.
    assert_json_error(hk.post("gh", data=body, headers={**h, "X-Hub-Signature-256":
                                                        gh_sig("bad", body)}), 401)


def test_dedup_stripe_event_id(hk):
    before = max_id(hk.portico)
    evt = f"evt_{uuid.uuid4().hex[:24]}"
    body = stripe_event(evt)
    first = received(hk.post("stripe", data=body,
                             headers={"Stripe-Signature": stripe_sig(STRIPE_SECRET, body)}))
    # Stripe's retry: the same event, signed again with a later timestamp.
    duplicate_of(hk.post("stripe", data=body, headers={
        "Stripe-Signature": stripe_sig(STRIPE_SECRET, body, int(time.time()) + 1)}), first)
    assert count_bodies(hk, before, body) == 1
    other = stripe_event()
    assert received(hk.post("stripe", data=other, headers={
        "Stripe-Signature": stripe_sig(STRIPE_SECRET, other)})) != first


def test_dedup_custom_header(hk):
    before = max_id(hk.portico)
    key = str(uuid.uuid4())
    body = json.dumps({"order": key}).encode()
    first = received(hk.post("dd", data=body, headers={"X-Delivery-Id": key}))
    duplicate_of(hk.post("dd", data=body, headers={"X-Delivery-Id": key}), first)
    duplicate_of(hk.post("dd", data=body, headers={"x-delivery-id": key}), first)
    assert count_bodies(hk, before, body) == 1
    second = received(hk.post("dd", data=body, headers={"X-Delivery-Id": key + "-2"}))
    assert second != first
    # No delivery id: nothing to deduplicate on, every post is stored.
    a = received(hk.post("dd", data=body))
    b = received(hk.post("dd", data=body))
    assert len({first, second, a, b}) == 4
    assert count_bodies(hk, before, body) == 4


def test_dedup_of_concurrent_repeats(hk):
    """A sender retrying in parallel (separate connections, so both workers): stored once."""
    before = max_id(hk.portico)
    key = str(uuid.uuid4())
    body = json.dumps({"parallel": key}).encode()
    answers = []
    gate = threading.Barrier(8)

    def send():
        gate.wait(5)
        answers.append(requests.post(hk.server.url + hk.path("dd"), data=body,
                                     headers={"X-Delivery-Id": key}, timeout=HTTP_TIMEOUT))

    threads = [threading.Thread(target=send) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert len(answers) == 8 and all(r.status_code == 200 for r in answers), \
        [(r.status_code, r.text) for r in answers]
    docs = [r.json() for r in answers]
    assert len({d["id"] for d in docs}) == 1, docs
    assert sum(1 for d in docs if not d.get("duplicate")) == 1, docs
    assert count_bodies(hk, before, body) == 1


# ---------------------------------------------------------------- sources CLI

def test_source_add_list_rm(portico, cli, server):
    token = token_of(portico)
    out = cli("webhook", "source", "add", "crm", "--base", "http://h.example").stdout.strip()
    assert out == f"http://h.example/webhook/{token}/crm"
    cli("secret", "set", "crm_key", input="k\n")
    cli("webhook", "source", "add", "signed", "--verify", "hmac-sha256", "--secret", "crm_key",
        "--header", "X-Crm-Sig", "--dedup-header", "X-Crm-Id")
    bad = cli("webhook", "source", "add", "weird", "--verify", "md5", "--secret", "crm_key",
              check=False)
    assert bad.returncode != 0
    listing = cli("webhook", "source", "list").stdout
    for word in ("crm", "signed", "hmac-sha256", "crm_key", "X-Crm-Id"):
        assert word.lower() in listing.lower(), listing
    assert "weird" not in listing
    assert token not in listing

    s = server()
    received(s.post(f"/webhook/{token}/crm", data=b"1"))
    cli("webhook", "source", "rm", "crm")
    assert "crm\n" not in cli("webhook", "source", "list").stdout.replace(" ", "\n")
    assert_json_error(s.post(f"/webhook/{token}/crm", data=b"2"), 404)
    # A source added while the server runs works at once.
    cli("webhook", "source", "add", "late")
    received(s.post(f"/webhook/{token}/late", data=b"3"))
    assert cli("webhook", "source", "rm", "nosuch", check=False).returncode != 0


# ---------------------------------------------------------------- body limit

def test_oversized_body_413_not_stored(portico, server):
    token = token_of(portico)
    s = server("--max-body", "1")
    path = f"/webhook/{token}"
    limit = 1 << 20
    ok = os.urandom(limit)
    eid = received(s.post(path, data=ok, headers={"Content-Type": "application/octet-stream"}))
    assert body_bytes(get_event(portico, eid)) == ok

    n = limit + 1
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{s.port}\r\n"
            f"Content-Type: application/octet-stream\r\nContent-Length: {n}\r\n\r\n").encode()
    assert raw_exchange(s.port, head, b"o" * n) == 413
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{s.port}\r\n"
            f"Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
            ).encode()
    chunk = b"c" * 65536
    body = (b"%x\r\n" % len(chunk) + chunk + b"\r\n") * 20 + b"0\r\n\r\n"
    assert raw_exchange(s.port, head, body) == 413
    head = (f"PUT {path} HTTP/1.1\r\nHost: 127.0.0.1:{s.port}\r\n"
            f"Content-Type: text/plain\r\nContent-Length: {2 * limit}\r\n\r\n").encode()
    assert raw_exchange(s.port, head, b"x" * (2 * limit)) == 413
    assert [e["id"] for e in list_events(portico)] == [eid]
    received(s.post(path, data=b"still fine"))


# ---------------------------------------------------------------- processing with a script

RECORD = """\
import json, time
DB = pq.dbconnect('dw')

def handler(event):
    body = event['body']
    raw = body if isinstance(body, bytes) else body.encode('utf-8')
    DB.write('hooks', 'seen', [{
        'k': '%d-%d' % (event['id'], time.time_ns()),
        'event_id': event['id'],
        'source': event['source'],
        'method': event['method'],
        'path': event['path'],
        'query_string': event['query_string'],
        'x_test': event['headers'].get('X-Test') or '',
        'content_type': event['content_type'] or '',
        'body_type': type(body).__name__,
        'body_hex': raw.hex(),
        'json': json.dumps(event['json']),
        'remote_addr': event['remote_addr'],
        'attempts': event['attempts'],
        'received_at': event['received_at'],
        'keys': ','.join(sorted(event.keys())),
    }], pk='k')
"""

FLAKY = """\
import os, time
DB = pq.dbconnect('dw')
FLAG = {flag!r}

def handler(event):
    DB.write('hooks', 'tries', [{{'k': '%d-%d' % (event['id'], time.time_ns()),
                                 'event_id': event['id'], 'attempt': event['attempts'],
                                 't': time.time()}}], pk='k')
    succeed_from = (event['json'] or {{}}).get('succeed_from')
    ok = event['attempts'] >= succeed_from if succeed_from else os.path.exists(FLAG)
    if not ok:
        raise RuntimeError('flaky-boom for event %d' % event['id'])
    DB.write('hooks', 'flaky_ok', [{{'k': '%d-%d' % (event['id'], time.time_ns()),
                                    'event_id': event['id']}}], pk='k')
"""

EVENT_KEYS = {"id", "received_at", "source", "method", "path", "query_string", "headers",
              "content_type", "body", "json", "remote_addr", "attempts"}


def wait_status(portico, eid, statuses, timeout):
    ev = wait_for(lambda: (lambda e: e if e["status"] in statuses else None)(
        get_event(portico, eid)), timeout)
    return ev or get_event(portico, eid)


@pytest.fixture
def proc(portico, server):
    flag = os.path.join(portico.scratch, "flaky.ok")
    portico.add_script("record", RECORD)
    portico.add_script("flaky", FLAKY.format(flag=flag))
    portico.cli("webhook", "source", "add", "rec", "--script", "record")
    portico.cli("webhook", "source", "add", "flaky", "--script", "flaky")
    s = server("--webhook-backoff", "0.1", "--webhook-attempts", "3")
    return Hooks(portico, s, token_of(portico)), flag


def test_script_processes_stored_events(proc):
    hk, _ = proc
    doc = {"event": "invoice.paid", "amount": 12.5, "name": "Zoë"}
    j = received(hk.post("rec", json=doc, params="a=1", headers={"X-Test": "hello"}))
    b = received(hk.post("rec", method="PUT", data=BINARY,
                         headers={"Content-Type": "application/octet-stream"}))
    t = received(hk.post("rec", method="PATCH", data="just text ✓".encode(),
                         headers={"Content-Type": "text/plain; charset=utf-8"}))
    for eid in (j, b, t):
        ev = wait_status(hk.portico, eid, {"done", "failed"}, 10)
        assert ev["status"] == "done", (ev["status"], ev["attempts"], ev["last_error"])
        assert ev["attempts"] == 1 and ev["last_error"] is None, ev
    rows = {r["event_id"]: r for r in db_rows(hk.portico, "select * from hooks.seen")}
    assert set(rows) == {j, b, t}, rows

    r = rows[j]
    assert set(r["keys"].split(",")) >= EVENT_KEYS, r["keys"]
    assert r["source"] == "rec" and r["method"] == "POST"
    assert r["path"] == "/webhook/{token}/rec" and r["query_string"] == "a=1"
    assert r["x_test"] == "hello"
    assert r["content_type"].startswith("application/json")
    assert r["body_type"] == "str" and bytes.fromhex(r["body_hex"]) == json.dumps(doc).encode()
    assert json.loads(r["json"]) == doc
    assert r["remote_addr"] == "127.0.0.1" and r["attempts"] == 1
    assert r["received_at"] == get_event(hk.portico, j)["received_at"]

    r = rows[b]
    assert r["method"] == "PUT" and r["body_type"] == "bytes"
    assert bytes.fromhex(r["body_hex"]) == BINARY and json.loads(r["json"]) is None

    r = rows[t]
    assert r["method"] == "PATCH" and r["body_type"] == "str"
    assert bytes.fromhex(r["body_hex"]) == "just text ✓".encode()
    assert json.loads(r["json"]) is None

    # Events of the install URL and of sources without a script are only stored: once an
    # event posted after it has been processed, it is still "received", and nothing saw it.
    u = received(hk.post(data=b"no script"))
    later = received(hk.post("rec", json={"after": u}))
    assert wait_status(hk.portico, later, {"done", "failed"}, 10)["status"] == "done"
    assert get_event(hk.portico, u)["status"] == "received"
    seen = db_rows(hk.portico, "select event_id from hooks.seen")
    assert sorted(r["event_id"] for r in seen) == sorted([j, b, t, later]), seen


def test_failing_script_retries_with_backoff_then_failed_and_replay(proc):
    hk, flag = proc
    eid = received(hk.post("flaky", json={"n": 1}))
    ev = wait_status(hk.portico, eid, {"failed", "done"}, 10)
    assert ev["status"] == "failed", ev
    assert ev["attempts"] == 3, ev
    assert ev["last_error"] and f"flaky-boom for event {eid}" in ev["last_error"], ev

    tries = db_rows(hk.portico, f"select attempt, t from hooks.tries where event_id = {eid}"
                                " order by t")
    assert [t["attempt"] for t in tries] == [1, 2, 3], tries
    gaps = [tries[i + 1]["t"] - tries[i]["t"] for i in range(2)]
    # Exponential backoff from 0.1 s: at least 0.1 s, then at least 0.2 s.
    assert gaps[0] >= 0.09 and gaps[1] >= 0.18, gaps
    # 'failed' is final: no more attempts, though the processors go on with later events.
    later = received(hk.post("rec", json={"after": eid}))
    assert wait_status(hk.portico, later, {"done", "failed"}, 10)["status"] == "done"
    assert len(db_rows(hk.portico, f"select k from hooks.tries where event_id = {eid}")) == 3
    assert get_event(hk.portico, eid)["status"] == "failed"
    # The attempts in /_portico/metrics: two retried, one failed, the later event processed.
    text = hk.server.get("/_portico/metrics").text
    outcomes = dict(re.findall(r'^portico_webhook_event_attempts_total\{outcome="(\w+)"\} (\d+)$',
                               text, re.M))
    assert outcomes == {"processed": "1", "retried": "2", "failed": "1"}, outcomes
    assert re.search(r"^portico_webhook_events_pending 0$", text, re.M), text

    # Replay once the script can succeed.
    open(flag, "w").close()
    cp = hk.portico.cli("webhook", "replay", eid)
    assert cp.returncode == 0
    ev = wait_status(hk.portico, eid, {"done", "failed"}, 10)
    assert ev["status"] == "done", (ev["status"], ev["attempts"], ev["last_error"])
    assert db_rows(hk.portico, "select event_id from hooks.flaky_ok") == [{"event_id": eid}]
    assert len(db_rows(hk.portico, f"select k from hooks.tries where event_id = {eid}")) == 4

    # A done event can be replayed too: it runs again.
    hk.portico.cli("webhook", "replay", eid)
    assert wait_for(lambda: len(db_rows(hk.portico, "select k from hooks.flaky_ok")) == 2, 10)
    assert wait_status(hk.portico, eid, {"done"}, 5)["status"] == "done"

    assert hk.portico.cli("webhook", "replay", eid + 1000, check=False).returncode != 0


def test_failing_then_succeeding_within_attempts(proc):
    """The first attempt fails, the second succeeds: status done after exactly 2 attempts.
    The event itself says from which attempt on to succeed, so nothing races the retries."""
    hk, _ = proc
    eid = received(hk.post("flaky", json={"n": 2, "succeed_from": 2}))
    ev = wait_status(hk.portico, eid, {"done", "failed"}, 10)
    assert ev["status"] == "done", (ev["status"], ev["attempts"], ev["last_error"])
    assert ev["attempts"] == 2, ev
    tries = db_rows(hk.portico, f"select attempt from hooks.tries where event_id = {eid}"
                                " order by t")
    assert [r["attempt"] for r in tries] == [1, 2], tries
    assert db_rows(hk.portico, "select event_id from hooks.flaky_ok") == [{"event_id": eid}]


SLOW = """\
import time
DB = pq.dbconnect('dw')

def handler(event):
    if (event['json'] or {}).get('slow'):
        time.sleep(4)
    DB.write('hooks', 'restart_seen', [{'k': '%d-%d' % (event['id'], time.time_ns()),
                                        'event_id': event['id']}], pk='k')
"""


def test_processing_survives_a_restart(portico, server):
    portico.add_script("slowrec", SLOW)
    portico.cli("webhook", "source", "add", "slow", "--script", "slowrec")
    token = token_of(portico)
    path = f"/webhook/{token}/slow"
    s1 = server("--webhook-backoff", "0.1", workers=1)
    blocker = received(s1.post(path, json={"slow": True}))
    assert wait_status(portico, blocker, {"processing"}, 5)["status"] == "processing"
    queued = [received(s1.post(path, json={"n": i})) for i in range(5)]
    assert s1.terminate() == 0
    before = {e["id"]: e for e in list_events(portico, since=blocker - 1)}
    for eid in queued:
        assert before[eid]["status"] == "pending" and before[eid]["attempts"] == 0, before[eid]

    server("--webhook-backoff", "0.1")
    for eid in queued:
        ev = wait_status(portico, eid, {"done", "failed"}, 10)
        assert ev["status"] == "done", (ev["status"], ev["attempts"], ev["last_error"])
    seen = [r["event_id"] for r in db_rows(portico, "select event_id from hooks.restart_seen")]
    assert set(queued) <= set(seen)
    assert all(seen.count(e) == 1 for e in queued), seen


# ---------------------------------------------------------------- a handler endpoint as receiver

DOCS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                    "docs", "WEBHOOKS.md")


def docs_receiver_example():
    """The Python block of docs/WEBHOOKS.md's "An endpoint as a webhook receiver" section."""
    assert os.path.isfile(DOCS), "docs/WEBHOOKS.md is missing"
    text = open(DOCS, encoding="utf-8").read()
    m = re.search(r"^## An endpoint as a webhook receiver\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert m, "docs/WEBHOOKS.md has no 'An endpoint as a webhook receiver' section"
    code = re.search(r"```python\n(.*?)```", m.group(1), re.S)
    assert code, "the receiver section has no Python example"
    return code.group(1)


def test_handler_endpoint_as_webhook_receiver(portico, server):
    """The documented receiver, verbatim: a public endpoint that checks an HMAC with a secret
    and inserts the request into a table with pq."""
    portico.cli("secret", "set", "orders-hook", input="orders-s3cret\n")
    portico.add_script("receiver", docs_receiver_example())
    portico.cli("endpoint", "add", "orders-hook", "--path", "/hooks/orders", "--script",
                "receiver", "--auth", "public", "--method", "POST")
    s = server()
    bodies = [json.dumps({"event": "order.created", "id": 7}).encode(), b"a=1&b=two+words",
              "<order id='8'>Zoë ✓</order>".encode()]
    for body in bodies:
        sig = hmac.new(b"orders-s3cret", body, hashlib.sha256).hexdigest()
        r = s.post("/hooks/orders", data=body, headers={"X-Signature": sig})
        assert r.status_code == 200 and r.json() == {"status": "ok"}, r.text
    r = s.post("/hooks/orders", data=b"forged",
               headers={"X-Signature": hmac.new(b"x", b"forged", hashlib.sha256).hexdigest()})
    assert r.status_code == 401
    rows = db_rows(portico, "select request_id, body from hooks.orders")
    assert sorted(x["body"] for x in rows) == sorted(b.decode() for b in bodies)
    assert all(x["request_id"] for x in rows)
    assert max_id(portico) == 0, "an endpoint receiver must not go through the inbox"


def test_docs_describe_webhooks():
    """Issue 5 §5: docs/WEBHOOKS.md with the URL forms, the table and a receiver endpoint."""
    assert os.path.isfile(DOCS), "docs/WEBHOOKS.md is missing"
    text = open(DOCS, encoding="utf-8").read()
    for word in ("/webhook/", "webhooks.events", "body_base64", "endpoint"):
        assert word in text, f"docs/WEBHOOKS.md does not mention {word}"


# ---------------------------------------------------------------- durability under SIGKILL

def test_sigkill_under_load_loses_no_acknowledged_event(portico, server):
    token = token_of(portico)
    s1 = Server(portico, ["--workers", "2"])
    url = s1.url + f"/webhook/{token}"
    acked = []                       # (id, body) answered 200
    lock = threading.Lock()
    stop = threading.Event()
    errors = []
    deadline = time.monotonic() + 3.0

    def load(seed):
        rnd = random.Random(seed)
        n = 0
        sess = requests.Session()
        try:
            while not stop.is_set() and time.monotonic() < deadline:
                n += 1
                if rnd.random() < 0.5:
                    body = json.dumps({"t": seed, "n": n, "pad": rnd.randbytes(
                        rnd.randrange(0, 600)).hex()}).encode()
                    ctype = "application/json"
                else:
                    body = b"\xff" + rnd.randbytes(rnd.randrange(0, 2048)) + \
                        f"|{seed}|{n}".encode()
                    ctype = "application/octet-stream"
                try:
                    r = sess.post(url, data=body, headers={"Content-Type": ctype}, timeout=2)
                except requests.RequestException:
                    sess.close()
                    sess = requests.Session()
                    time.sleep(0.01)
                    continue
                if r.status_code == 200:
                    doc = r.json()
                    if doc.get("status") != "received" or doc.get("duplicate"):
                        errors.append(doc)
                    with lock:
                        acked.append((doc["id"], body))
        except Exception as e:       # noqa: BLE001 - reported below
            errors.append(repr(e))
        finally:
            sess.close()

    threads = [threading.Thread(target=load, args=(i,), daemon=True) for i in range(8)]
    killed_at = None
    try:
        for t in threads:
            t.start()
        # Let the load run, then kill master and workers at once.
        wait_for(lambda: len(acked) >= 5000, 1.2, 0.01)
        assert s1.children(), "no workers to kill"
        killed_at = len(acked)
        os.killpg(s1.pid, signal.SIGKILL)
        s1.proc.wait(5)
        # No answer can come once every process of the group is gone.
        assert wait_for(lambda: not s1.leftovers(), 5), "workers still alive after SIGKILL"
        stop.set()
        for t in threads:
            t.join(5)
    finally:
        stop.set()
        s1.kill()
        s1._logf.close()
    assert not any(t.is_alive() for t in threads)
    assert not errors, errors[:5]
    assert not s1.leftovers(), "processes left after SIGKILL of the group"
    assert killed_at and len(acked) >= 50, f"load generator got only {len(acked)} answers"

    s2 = server()
    evs = {e["id"]: e for e in list_events(portico)}
    missing = [eid for eid, _ in acked if eid not in evs]
    assert not missing, f"{len(missing)} of {len(acked)} acknowledged events lost: {missing[:10]}"
    wrong = [eid for eid, body in acked if body_bytes(evs[eid]) != body]
    assert not wrong, f"{len(wrong)} acknowledged events with a different body: {wrong[:10]}"
    assert len({eid for eid, _ in acked}) == len(acked), "an id was answered twice"
    # New events after the restart get new ids.
    new = received(s2.post(f"/webhook/{token}", data=b"after restart"))
    assert new > max(eid for eid, _ in acked)
    print(f"durability: {len(acked)} acknowledged events, {len(evs)} stored")
