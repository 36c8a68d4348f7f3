"""`portico export DIR` and `portico apply DIR [--dry-run] [--prune]`, on a data dir and with
--server: the files, the plan, one transaction, "no changes" the second time, bad files refused
as a whole, audit entries, and an export applied to a second install."""

import json
import os

import pytest

from conftest import assert_cli_error, make_portico
from test_cli import portico  # noqa: F401 (the fixture: a data dir, or through --server)

HELLO = '"""Says hello."""\n\ndef handler(request):\n    return {"hello": "world"}\n'


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def test_export_apply_round_trip(portico, tmp_path):
    portico.publish("hello", HELLO)
    portico.cli("secret", "set", "gh-hook", "--value", "s3cret-value")
    portico.cli("webhook", "source", "add", "gh", "--verify", "github", "--secret", "gh-hook",
                "--script", "hello")
    out = str(tmp_path / "deploy")
    assert portico.cli("export", out).stdout.strip() == (
        f"exported 1 script, 1 endpoint and 1 webhook source to {out}")
    assert sorted(os.path.relpath(os.path.join(d, f), out)
                  for d, _, fs in os.walk(out) for f in fs) == [
        "endpoints/hello.json", "scripts/hello.py", "webhooks/gh.json"]
    assert read(os.path.join(out, "scripts", "hello.py")) == HELLO
    ep = read(os.path.join(out, "endpoints", "hello.json"))
    assert ep.endswith("}\n") and json.loads(ep) == {
        "auth": "public", "methods": ["GET"], "path": "/hello", "script": "hello"}
    src = json.loads(read(os.path.join(out, "webhooks", "gh.json")))
    assert src["secret"] == "gh-hook" and src["verify"] == "github"
    assert "s3cret-value" not in "".join(read(os.path.join(d, f))
                                         for d, _, fs in os.walk(out) for f in fs)
    # An export is stable: a second one writes the same bytes.
    before = {f: read(os.path.join(out, "endpoints", f)) for f in os.listdir(out + "/endpoints")}
    portico.cli("export", out)
    assert before == {f: read(os.path.join(out, "endpoints", f))
                      for f in os.listdir(out + "/endpoints")}
    assert portico.cli("apply", out).stdout.strip() == "no changes"

    # Edit the files: a changed endpoint, a new script and endpoint.
    with open(os.path.join(out, "endpoints", "hello.json"), "w") as f:
        json.dump({"auth": "jwt", "methods": ["GET"], "path": "/hi", "script": "hello"}, f)
    with open(os.path.join(out, "scripts", "two.py"), "w") as f:
        f.write(HELLO)
    with open(os.path.join(out, "endpoints", "two.json"), "w") as f:
        json.dump({"auth": "public", "path": "/two", "script": "two"}, f)
    plan = portico.cli("apply", out, "--dry-run").stdout.splitlines()
    assert plan == ["create script two", "create endpoint two",
                    "update endpoint hello (auth, path)", "dry run: nothing applied (3 changes)"]
    assert portico.cli("endpoint", "show", "hello").stdout.count("/hello") >= 1
    assert portico.cli("apply", out).stdout.splitlines()[-1] == "applied 3 changes"
    assert portico.cli("apply", out).stdout.strip() == "no changes"
    shown = portico.cli("endpoint", "list").stdout
    assert "/hi" in shown and "/two" in shown

    # Without --prune nothing is deleted; with it, what the directory lacks goes.
    os.remove(os.path.join(out, "endpoints", "two.json"))
    os.remove(os.path.join(out, "scripts", "two.py"))
    os.remove(os.path.join(out, "webhooks", "gh.json"))
    assert portico.cli("apply", out).stdout.strip() == "no changes"
    assert portico.cli("apply", out, "--prune").stdout.splitlines() == [
        "delete endpoint two", "delete webhook source gh", "delete script two",
        "applied 3 changes"]
    assert "two" not in portico.cli("script", "list").stdout
    audit = portico.cli("audit", "--json", "--limit", "50").stdout
    assert '"endpoint": "two"' in audit or '"endpoint":"two"' in audit


BAD_FILES = [
    ("endpoints/bad.json", '{\n  "path": "/x",,\n}\n', ["endpoints/bad.json:2"]),
    ("endpoints/list.json", '[1, 2]\n', ["endpoints/list.json:1", "JSON object"]),
    ("endpoints/other.json", '{"name": "nope", "path": "/o", "script": "hello"}\n',
     ["endpoints/other.json", "name"]),
    ("scripts/broken.py", "def handler(request):\n    return (\n", ["scripts/broken.py",
                                                                      "line 2"]),
    ("endpoints/orphan.json", '{"path": "/o", "script": "nosuch", "auth": "public"}\n',
     ["endpoints/orphan.json", "nosuch"]),
    ("endpoints/bad name.json", '{}\n', ["bad name", "invalid endpoint name"]),
    ("scripts/notes.txt", "hi\n", ["notes.txt", "unexpected file"]),
]


def test_endpoint_settings_round_trip_and_clear(portico, tmp_path):
    # An export names only the settings an endpoint sets; a setting removed from the file is
    # cleared by apply, and the next apply has nothing to do.
    portico.publish("hello", HELLO)
    portico.cli("endpoint", "set", "hello", "--timeout", "5s", "--cache", "30s")
    out = str(tmp_path / "deploy")
    portico.cli("export", out)
    path = os.path.join(out, "endpoints", "hello.json")
    ep = json.loads(read(path))
    assert ep["settings"] == {"timeout_ms": 5000, "cache_ms": 30000}
    assert portico.cli("apply", out).stdout.strip() == "no changes"

    del ep["settings"]["cache_ms"]
    with open(path, "w") as f:
        json.dump(ep, f)
    assert portico.cli("apply", out).stdout.splitlines() == [
        "update endpoint hello (settings)", "applied 1 change"]
    assert portico.cli("apply", out).stdout.strip() == "no changes"
    portico.cli("export", out)
    assert json.loads(read(path))["settings"] == {"timeout_ms": 5000}

    del ep["settings"]
    with open(path, "w") as f:
        json.dump(ep, f)
    assert portico.cli("apply", out).stdout.splitlines() == [
        "update endpoint hello (settings)", "applied 1 change"]
    portico.cli("export", out)
    assert "settings" not in json.loads(read(path))


def test_a_bad_file_refuses_the_whole_apply(portico, tmp_path):
    portico.publish("hello", HELLO)
    out = str(tmp_path / "deploy")
    portico.cli("export", out)
    # A good change beside each bad file: it must not be applied either.
    with open(os.path.join(out, "scripts", "good.py"), "w") as f:
        f.write(HELLO)
    for name, content, words in BAD_FILES:
        path = os.path.join(out, name)
        with open(path, "w") as f:
            f.write(content)
        assert_cli_error(portico.cli("apply", out, check=False), *words)
        os.remove(path)
    assert "good" not in portico.cli("script", "list").stdout
    assert "/o" not in portico.cli("endpoint", "list").stdout
    assert portico.cli("apply", out).stdout.splitlines() == ["create script good",
                                                             "applied 1 change"]


def test_export_applies_to_a_second_install(tmp_path):
    portico = make_portico(tmp_path / "first")
    portico.publish("hello", HELLO)
    portico.add_script("lib", "X = 1\n")
    # A Peliqan-style free-text name: '/' and '%' are escaped in the file name.
    portico.cli("script", "add", "Load - DWH / 100%", portico.write("dwh.py", "X = 2\n"))
    out = str(tmp_path / "deploy")
    portico.cli("export", out)
    assert sorted(os.listdir(os.path.join(out, "scripts"))) == [
        "Load - DWH %2F 100%25.py", "hello.py", "lib.py"]
    other = make_portico(tmp_path / "other")
    assert other.cli("apply", out).stdout.splitlines() == [
        "create script Load - DWH / 100%", "create script hello", "create script lib",
        "create endpoint hello", "applied 4 changes"]
    assert other.cli("apply", out).stdout.strip() == "no changes"
    # Its export is the same files.
    out2 = str(tmp_path / "deploy2")
    other.cli("export", out2)
    for sub in ("scripts", "endpoints", "webhooks"):
        assert {f: read(os.path.join(out, sub, f)) for f in os.listdir(os.path.join(out, sub))} \
            == {f: read(os.path.join(out2, sub, f)) for f in os.listdir(os.path.join(out2, sub))}


def test_webhook_source_updated_in_place_and_methods_are_a_set(portico, tmp_path):
    portico.publish("hello", HELLO, methods="GET,POST")
    portico.add_script("other", HELLO)
    portico.cli("secret", "set", "gh-hook", "--value", "s3cret-value")
    portico.cli("webhook", "source", "add", "gh", "--verify", "github", "--secret", "gh-hook",
                "--script", "hello")
    out = str(tmp_path / "deploy")
    portico.cli("export", out)
    ep_path = os.path.join(out, "endpoints", "hello.json")
    ep = json.loads(read(ep_path))
    assert ep["methods"] == ["GET", "POST"]
    # The same methods in another order are not a change.
    ep["methods"] = ["POST", "GET"]
    with open(ep_path, "w") as f:
        json.dump(ep, f)
    assert portico.cli("apply", out).stdout.strip() == "no changes"

    # A changed source is an update (not a delete and a create), and a field the file leaves
    # out is cleared.
    src_path = os.path.join(out, "webhooks", "gh.json")
    src = json.loads(read(src_path))
    src["script"] = "other"
    src["dedup_header"] = "X-Delivery"
    with open(src_path, "w") as f:
        json.dump(src, f, sort_keys=True)
    assert portico.cli("apply", out, "--dry-run").stdout.splitlines() == [
        "update webhook source gh (dedup_header, script)",
        "dry run: nothing applied (1 change)"]
    assert portico.cli("apply", out).stdout.splitlines() == [
        "update webhook source gh (dedup_header, script)", "applied 1 change"]
    assert portico.cli("apply", out).stdout.strip() == "no changes"
    listing = portico.cli("webhook", "source", "list").stdout
    assert "other" in listing and "X-Delivery" in listing
    del src["dedup_header"]
    src["verify"] = "hmac-sha256"
    src["header"] = "X-Sig"
    with open(src_path, "w") as f:
        json.dump(src, f, sort_keys=True)
    assert portico.cli("apply", out).stdout.splitlines() == [
        "update webhook source gh (header, verify, dedup_header)", "applied 1 change"]
    portico.cli("export", out)
    assert json.loads(read(src_path)) == {"dedup_header": None, "header": "X-Sig",
                                          "script": "other", "secret": "gh-hook",
                                          "verify": "hmac-sha256"}
    # A refused update (an unknown script) changes nothing, the endpoint edit beside it either.
    src["script"] = "nosuch"
    with open(src_path, "w") as f:
        json.dump(src, f, sort_keys=True)
    ep["path"] = "/moved"
    with open(ep_path, "w") as f:
        json.dump(ep, f)
    assert_cli_error(portico.cli("apply", out, check=False), "webhooks/gh.json", "nosuch")
    assert "/moved" not in portico.cli("endpoint", "list").stdout
    assert "other" in portico.cli("webhook", "source", "list").stdout
    audit = json.loads(portico.cli("audit", "--json", "--limit", "50").stdout)
    assert [a["detail"]["script"] for a in audit
            if a["action"] == "apply" and a["object"] == "gh"] == ["other", "other"]
    assert not any(a["action"] == "webhook.source.rm" for a in audit)


def test_webhook_source_set(portico):
    portico.add_script("hello", HELLO)
    portico.cli("webhook", "source", "add", "gh", "--script", "hello")
    cp = portico.cli("webhook", "source", "set", "gh", "--verify", "github", check=False)
    assert_cli_error(cp, "--verify github needs --secret")
    assert_cli_error(portico.cli("webhook", "source", "set", "nope", "--no-script", check=False),
                     "no webhook source named 'nope'")
    assert portico.cli("webhook", "source", "set", "gh", "--verify", "github", "--secret", "s",
                       "--dedup-header", "X-D").stdout == "changed webhook source gh\n"
    row = portico.cli("webhook", "source", "list").stdout.splitlines()[2].split()
    assert row[:5] == ["gh", "github", "s", "X-D", "hello"]
    portico.cli("webhook", "source", "set", "gh", "--verify", "none", "--no-script")
    row = portico.cli("webhook", "source", "list").stdout.splitlines()[2].split()
    assert row[:5] == ["gh", "none", "-", "X-D", "-"]
