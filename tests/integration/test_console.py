"""The web console (docs/CONSOLE.md, issue 10): the page's own security over plain HTTP, then
one browser flow (Debian's chromium, chromedriver and python3-selenium) from login to finding a
published endpoint's call in Logs, and a screenshot of every screen at 1280x800 and 390 px wide
(written to tests/output/console/, or $PORTICO_TEST_OUTPUT/console/)."""

import html.parser
import json
import os
import re
import shutil

import pytest
import requests

import time

from conftest import ADMIN_PASSWORD, REPO, AdminServer, assert_admin_error

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
CONSOLE = "/_portico/console/"
SECRET_VALUE = "s3cret-VALUE-never-sent-back-4711"


@pytest.fixture(scope="module")
def srv(module_portico):
    s = AdminServer(module_portico)
    yield s
    s.close()


class PageScan(html.parser.HTMLParser):
    """Collects what CSP would have to allow in a page: inline scripts, style attributes and
    elements, event handler attributes, and the URLs it loads."""

    def __init__(self):
        super().__init__()
        self.inline = []
        self.urls = []
        self._script = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for k in a:
            if k.startswith("on") or k == "style":
                self.inline.append(f"<{tag} {k}=...>")
        if tag == "style":
            self.inline.append("<style>")
        if tag == "script":
            self._script = a
            if "src" in a:
                self.urls.append(a["src"])
        if tag == "link" and a.get("rel") == "stylesheet":
            self.urls.append(a["href"])

    def handle_data(self, data):
        if self._script is not None and data.strip():
            self.inline.append("<script> with a body")

    def handle_endtag(self, tag):
        if tag == "script":
            self._script = None


def test_the_console_is_served_on_the_admin_listener_with_its_security_headers(srv):
    r = requests.get(srv.url + "/", allow_redirects=False, timeout=10)
    assert r.status_code == 302
    assert r.headers["Location"] == CONSOLE
    r = requests.get(srv.url + "/_portico/console", allow_redirects=False, timeout=10)
    assert r.status_code == 302 and r.headers["Location"] == CONSOLE

    r = requests.get(srv.url + CONSOLE, timeout=10)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    assert r.headers["Content-Security-Policy"] == CSP
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Referrer-Policy"] == "no-referrer"
    assert r.headers["X-Frame-Options"] == "DENY"
    assert r.headers["Cache-Control"] == "no-cache"
    etag = r.headers["ETag"]
    assert re.fullmatch(r'"[0-9a-f]{20}"', etag)
    assert requests.get(srv.url + CONSOLE, headers={"If-None-Match": etag},
                        timeout=10).status_code == 304

    scan = PageScan()
    scan.feed(r.text)
    assert scan.inline == [], "inline script or style that the CSP would block"
    assert len(scan.urls) == 5, scan.urls
    for u in scan.urls:
        assert re.fullmatch(r"a/[0-9a-f]{16}/[a-z/]+\.(js|css)", u), u
        a = requests.get(srv.url + CONSOLE + u, timeout=10)
        assert a.status_code == 200, u
        assert a.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert a.headers["Content-Security-Policy"] == CSP
        assert a.headers["X-Content-Type-Options"] == "nosniff"
        assert a.headers["Content-Type"].startswith("text/javascript" if u.endswith(".js")
                                                    else "text/css")
        assert a.content

    env = requests.get(srv.url + CONSOLE + "env.json", timeout=10)
    assert env.status_code == 200 and env.headers["Cache-Control"] == "no-store"
    assert env.json()["public_url"] == srv.server.url

    assert requests.get(srv.url + CONSOLE + "a/0000000000000000/app.js",
                        timeout=10).status_code == 404
    assert requests.get(srv.url + CONSOLE + "nothing.js", timeout=10).status_code == 404
    r = requests.post(srv.url + CONSOLE, data="x", timeout=10)
    assert r.status_code == 405 and r.headers["Allow"] == "GET, HEAD"
    # Never on the public listener.
    assert srv.get(CONSOLE).status_code == 404
    assert srv.get("/").status_code == 404


def test_the_session_cookie_flags(srv):
    r = requests.post(srv.url + "/_portico/admin/v1/login",
                      json={"user": "admin", "password": ADMIN_PASSWORD}, timeout=10)
    assert r.status_code == 200
    cookie = r.headers["Set-Cookie"]
    parts = [p.strip() for p in cookie.split(";")]
    assert parts[0].startswith("portico_session=") and len(parts[0]) > 30
    assert "HttpOnly" in parts and "SameSite=Strict" in parts and "Path=/_portico/" in parts
    assert "Secure" not in parts  # plain HTTP: a Secure cookie would never come back
    assert r.json()["csrf_token"] not in cookie


def test_every_change_needs_the_csrf_token(srv):
    """Every state-changing route of the admin API, called with the session cookie but without
    X-CSRF-Token (or with a wrong one), is 403 csrf: the console cannot be driven cross-site."""
    spec = requests.get(srv.url + "/_portico/admin/v1/openapi.json", timeout=10).json()
    s = requests.Session()
    r = s.post(srv.url + "/_portico/admin/v1/login",
               json={"user": "admin", "password": ADMIN_PASSWORD}, timeout=10)
    assert r.status_code == 200
    checked = 0
    for path, ops in spec["paths"].items():
        for method in ops:
            if method.upper() in ("GET", "HEAD") or path == "/login":
                continue
            url = srv.url + "/_portico/admin/v1" + re.sub(r"\{[^}]+\}", "x", path)
            for headers in ({}, {"X-CSRF-Token": "not-the-token"}):
                r = s.request(method.upper(), url, json={}, headers=headers, timeout=10)
                assert r.status_code == 403, f"{method} {path}: {r.status_code} {r.text}"
                assert r.json()["error"]["code"] == "csrf", f"{method} {path}"
            checked += 1
    assert checked >= 30, checked
    assert s.get(srv.url + "/_portico/admin/v1/me", timeout=10).status_code == 200


STATS_SCRIPT = """\
def handler(request):
    kind = request['path'].rsplit('/', 1)[1]
    if kind == 'boom':
        raise ValueError('boom')
    if kind == 'missing':
        return '', 404, {}
    return {'ok': kind}
"""


def test_endpoint_stats_of_the_last_hour(srv):
    """GET /stats/endpoints (the Endpoints screen's calls, errors and p95) counts what the
    request log holds per endpoint."""
    admin = srv.admin()
    assert admin.post("/scripts", json={"name": "stats_s", "source": STATS_SCRIPT}).status_code == 201
    r = admin.post("/endpoints", json={"name": "stats_e", "path": "/stats_e/{kind}",
                                       "script": "stats_s", "auth": "public"})
    assert r.status_code == 201, r.text
    deadline = time.monotonic() + 10
    while srv.get("/stats_e/ok").status_code != 200:  # the workers load the new endpoint
        assert time.monotonic() < deadline, "the endpoint was never published"
    kinds = ["ok"] * 5 + ["missing"] * 2 + ["boom"] * 3
    for k in kinds:
        srv.get("/stats_e/" + k)
    viewer = srv.client(srv.tokens["viewer"])
    deadline = time.monotonic() + 10
    while True:  # the log is written about every 200 ms
        r = viewer.get("/stats/endpoints", params={"since": "1h"})
        assert r.status_code == 200, r.text
        got = {e["endpoint"]: e for e in r.json()["endpoints"]}.get("stats_e")
        if got and got["calls"] >= len(kinds) + 1:
            break
        assert time.monotonic() < deadline, f"stats never counted every call: {got}"
    body = r.json()
    assert body["since_seconds"] == 3600 and body["truncated"] is False
    assert body["requests"] >= got["calls"]
    assert got["calls"] == len(kinds) + 1  # and the first call that found the endpoint
    assert got["errors"] == 3 and got["client_errors"] == 2
    assert 0 < got["p50_ms"] <= got["p95_ms"]
    assert_admin_error(viewer.get("/stats/endpoints", params={"since": "soon"}), 400,
                       "bad_request", "since")
    assert_admin_error(viewer.get("/stats/endpoints", params={"since": "30d"}), 400,
                       "bad_request", "since")


# ---- In a browser --------------------------------------------------------------------------

def _driver():
    if os.environ.get("PORTICO_SANITIZED"):
        # The CI runs the suite a second time under ASan/UBSan; the console's C side (console.c)
        # is covered there by the HTTP tests above, and the browser pass costs ~40 s of budget.
        pytest.skip("the browser pass runs in the plain build only (PORTICO_SANITIZED is set)")
    missing = [p for p in ("chromium", "chromedriver") if shutil.which(p) is None]
    try:
        from selenium import webdriver  # noqa: F401
    except ImportError:
        missing.append("python3-selenium")
    if missing:
        pytest.skip("no browser for the console tests: install " + ", ".join(missing)
                    + " (scripts/install-deps.sh does)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium")
    for a in ("--headless=new", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1280,800", "--disable-extensions", "--no-first-run"):
        opts.add_argument(a)
    if os.geteuid() == 0:
        opts.add_argument("--no-sandbox")  # chromium refuses to run as root otherwise (CI)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)


@pytest.fixture(scope="module")
def browser():
    d = _driver()
    d.execute_cdp_cmd("Network.enable", {"maxTotalBufferSize": 50_000_000,
                                         "maxResourceBufferSize": 10_000_000})
    yield d
    d.quit()


def out_dir():
    base = os.environ.get("PORTICO_TEST_OUTPUT") or os.path.join(REPO, "tests", "output")
    d = os.path.join(base, "console")
    os.makedirs(d, exist_ok=True)
    return d


class Page:
    def __init__(self, driver, base):
        from selenium.webdriver.common.by import By
        from selenium.common.exceptions import (NoSuchElementException,
                                                StaleElementReferenceException)
        from selenium.webdriver.support.ui import WebDriverWait
        self.d, self.base, self.By = driver, base, By
        # Screens redraw themselves after a change: an element may go stale while waiting.
        self.wait = lambda t=10: WebDriverWait(
            driver, t, poll_frequency=0.05,
            ignored_exceptions=(NoSuchElementException, StaleElementReferenceException))

    def find(self, css, timeout=10):
        return self.wait(timeout).until(lambda d: d.find_element(self.By.CSS_SELECTOR, css))

    def text(self, css, timeout=10):
        return self.find(css, timeout).text

    def type(self, css, text):
        el = self.find(css)
        el.clear()
        el.send_keys(text)

    def click(self, css):
        self.find(css).click()

    def go(self, hash_):
        self.d.execute_script("location.hash = arguments[0]", hash_)

    def screen_ready(self, hash_):
        """Waits until the console says the screen of hash_ is drawn (body[data-ready])."""
        self.wait().until(lambda d: d.execute_script(
            "return document.body.dataset.ready") == hash_)

    def editor_value(self):
        return self.d.execute_script(
            "return document.querySelector('.CodeMirror').CodeMirror.getValue()")

    def set_editor(self, text):
        self.d.execute_script(
            "document.querySelector('.CodeMirror').CodeMirror.setValue(arguments[0])", text)


def test_the_flow_from_a_new_script_to_its_call_in_the_logs(srv, browser):
    """Log in, create a script from the API handler boilerplate, save it with a syntax error
    and see the line marked, fix it, publish it with JWT auth, create a token, call the endpoint
    with requests and find the call with its printed line in Logs. Then a screenshot of every
    screen, and no secret value and no CSP violation anywhere."""
    p = Page(browser, srv.url)
    out = out_dir()
    browser.set_window_size(1280, 800)
    browser.get(srv.url + "/")
    p.find("#login-user")
    browser.save_screenshot(os.path.join(out, "login-1280.png"))
    p.type("#login-user", "admin")
    p.type("#login-password", "wrong password")
    p.click("#login-submit")
    assert "password" in p.text("#login-form .error").lower()
    p.type("#login-password", ADMIN_PASSWORD)
    p.click("#login-submit")
    p.find("#nav-scripts[aria-current=page]")
    assert p.text("#who") == "admin (admin)"

    # A script from the boilerplate.
    p.type("#new-script-name", "orders_api")
    p.click("#new-script-submit")
    p.find(".CodeMirror")
    boiler = p.editor_value()
    for needle in ("def handler(request):", "parse_qs", "json.loads", "pq.dbconnect('dw')",
                   ".fetch("):
        assert needle in boiler
    lines = boiler.split("\n")
    bad = next(i for i, l in enumerate(lines) if "json.loads" in l)
    lines[bad] = "    body = = None"
    p.set_editor("\n".join(lines))
    p.click("#save-script")
    assert f"line {bad + 1}" in p.text("#syntax-error")
    marked = p.find(".CodeMirror .line-error")
    assert marked.find_element(p.By.CSS_SELECTOR, ".CodeMirror-linenumber").text == str(bad + 1)
    p.set_editor(boiler)
    assert not browser.find_elements(p.By.CSS_SELECTOR, ".CodeMirror .line-error")
    p.click("#save-script")
    assert "version 1" in p.text("#saved")

    # The Run panel (a test run of the draft).
    p.type("#run-query", "a=1")
    p.click("#run-script")
    assert "Status 200" in p.text("#run-output .result")
    assert '"a": ["1"]' in p.text("#run-body-out")

    # The Runs panel: the saved version run in the background, its record as it ends.
    p.click("#run-background")
    p.wait(30).until(lambda d: "success, exit code 0" in d.find_element(p.By.ID, "run-view").text)
    assert "api" in p.text("#runs-list") and "success" in p.text("#runs-list")

    # Published with JWT auth.
    p.click("#publish-script")
    p.find("#endpoint-form")
    assert p.find("#ep-auth").get_attribute("value") == "jwt"
    p.click("#ep-submit")
    url = srv.server.url + "/orders_api"
    assert p.text("#ep-url") == url
    assert 'Authorization: Bearer $PORTICO_TOKEN' in p.text("#ep-curl")
    assert f'requests.get("{url}"' in p.text("#ep-python")

    # A token under Security, shown once.
    p.find("#nav-security").click()
    p.type("#token-name", "browser-test")
    p.click("#token-create")
    token = p.text("#new-token-value")
    assert token.count(".") == 2  # a JWT
    r = requests.get(url, params={"x": "1"}, headers={"Authorization": f"Bearer {token}"},
                     timeout=10)
    assert r.status_code == 200, r.text
    rid = r.headers["X-Request-Id"]
    assert requests.get(url, timeout=10).status_code == 401

    # A secret under Connections: its value goes in, never comes back.
    p.find("#nav-connections").click()
    p.type("#secret-name", "crm_api_key")
    p.type("#secret-value", SECRET_VALUE)
    p.find("#secret-form button[type=submit]").click()
    p.wait().until(lambda d: "crm_api_key" in d.find_element(p.By.ID, "secrets").text)

    # The call in Logs, with its printed line (the log is written within about 200 ms).
    p.find("#nav-logs").click()
    p.find("#log-filters")

    def call_listed(d):
        if rid in d.find_element(p.By.ID, "log-list").text:
            return True
        d.find_element(p.By.CSS_SELECTOR, "#log-filters button[type=submit]").click()
        return False
    p.wait(10).until(call_listed)
    # The live tail shows the next call without a click.
    p.click("#log-live")
    p.wait().until(lambda d: d.execute_script("return document.body.dataset.tail") == "open")
    r2 = requests.get(url, params={"x": "2"}, headers={"Authorization": f"Bearer {token}"},
                      timeout=10)
    assert r2.status_code == 200
    p.wait(10).until(lambda d: r2.headers["X-Request-Id"] in d.find_element(
        p.By.ID, "log-list").text)
    p.find(f"a[href='#/logs/{rid}']").click()
    assert "GET /orders_api query={'x': ['1']}" in p.text("#log-printed")

    # Every screen, at 1280x800 and at 390 px wide.
    screens = {"scripts": "#/scripts", "script": "#/scripts/orders_api",
               "endpoints": "#/endpoints", "endpoint": "#/endpoints/orders_api",
               "endpoint-new": "#/endpoints/+new", "security": "#/security",
               "connections": "#/connections", "tables": "#/connections/dw",
               "webhooks": "#/webhooks", "logs": "#/logs", "request": f"#/logs/{rid}",
               "audit": "#/audit"}
    for width, height in ((1280, 800), (390, 844)):
        browser.set_window_size(width, height)
        for name, hash_ in screens.items():
            p.go(hash_)
            p.screen_ready(hash_)
            assert not browser.find_elements(p.By.CSS_SELECTOR, "main .error"), \
                f"{name}: " + " | ".join(e.text for e in browser.find_elements(
                    p.By.CSS_SELECTOR, "main .error"))
            browser.save_screenshot(os.path.join(out, f"{name}-{width}.png"))
    assert "orders_api" in p.text("main")  # the audit screen lists the changes made above

    # A viewer sees every screen without an error, and no control it may not use.
    browser.set_window_size(1280, 800)
    p.click("#logout")
    p.type("#login-user", "viewer")
    p.type("#login-password", ADMIN_PASSWORD)
    p.click("#login-submit")
    assert p.text("#who") == "viewer (viewer)"
    for name, hash_ in screens.items():
        p.go(hash_)
        p.screen_ready(hash_)
        assert not browser.find_elements(p.By.CSS_SELECTOR, "main .error"), name
    p.go("#/scripts/orders_api")
    p.screen_ready("#/scripts/orders_api")
    assert not p.find("#save-script").is_enabled()
    assert not browser.find_elements(p.By.ID, "new-script-form")
    p.go("#/security")
    p.screen_ready("#/security")
    assert not browser.find_elements(p.By.ID, "token-form")

    # Nothing the page received holds the secret's value; the CSP blocked nothing.
    seen = 0
    for entry in browser.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg["method"] != "Network.responseReceived":
            continue
        if msg["params"]["response"]["mimeType"] == "text/event-stream":
            continue
        try:
            body = browser.execute_cdp_cmd("Network.getResponseBody",
                                           {"requestId": msg["params"]["requestId"]})
        except Exception:  # redirects and evicted bodies have none
            continue
        seen += 1
        assert SECRET_VALUE not in body["body"], msg["params"]["response"]["url"]
    assert seen >= 20
    # (The API's refusals the flow provoked, 400 and 401, are logged as failed loads: not these.)
    problems = [e["message"] for e in browser.get_log("browser")
                if "Content Security Policy" in e["message"] or "Uncaught" in e["message"]
                or "is not a valid" in e["message"]]
    assert problems == []
