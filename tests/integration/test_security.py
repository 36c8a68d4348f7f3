"""Security (issue 4): JWT endpoints, outside identity providers, API keys, rate limits, the
encrypted secret store, and Peliqan's own authentication patterns, against the real binary.

Tokens are forged with an independent implementation (PyJWT, python3-jwt) and outside keys
are made with `cryptography`, so the server is never checked against its own code."""

import base64
import hashlib
import hmac
import json
import os
import re
import stat
import subprocess
import threading
import time

import jwt
import pytest
import requests
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from conftest import (BIN, REPO, _env, assert_cli_error, assert_json_error, make_portico, output,
                      run_cli, start_module_server)

WHO = """
import os
def handler(request):
    return {"auth": request["auth"], "pid": os.getpid()}
"""

SECRET_READER = """
def handler(request):
    name = request["query"].get("name", "")
    try:
        return {"value": pq.get_secret(name)}
    except pq.SecretNotFound as e:
        return {"missing": str(e), "keyerror": isinstance(e, KeyError),
                "pq_error": isinstance(e, pq.Error)}
"""

EXAMPLES = os.path.join(REPO, "examples")


# ---------------------------------------------------------------- helpers

def jwt_key(portico):
    """The install's HS256 key, as the server reads it (tests are a trusted operator)."""
    with open(os.path.join(portico.data, "keys", "jwt.key")) as f:
        return bytes.fromhex(f.read().strip())


def new_token(portico, *args):
    cp = portico.cli("token", "create", *args)
    lines = cp.stdout.strip().splitlines()
    assert len(lines) == 1, f"token create should print only the token:\n{cp.stdout}"
    return lines[0]


def new_apikey(portico, name, *args):
    cp = portico.cli("apikey", "create", name, *args)
    lines = cp.stdout.strip().splitlines()
    assert len(lines) == 1, f"apikey create should print only the key:\n{cp.stdout}"
    return lines[0]


def claims_of(token):
    return jwt.decode(token, options={"verify_signature": False})


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def hand_made(header, payload, sign):
    """A token built by hand; sign(signing_input: bytes) -> signature bytes."""
    h = b64url(json.dumps(header).encode())
    p = b64url(json.dumps(payload).encode())
    return f"{h}.{p}.{b64url(sign(f'{h}.{p}'.encode()))}"


def bearer(token, scheme="Bearer"):
    return {"Authorization": f"{scheme} {token}"}


def assert_unauthorized(resp, why, scheme="Bearer"):
    body = assert_json_error(resp, 401)
    assert why in body["error"], f"expected {why!r} in {body!r}"
    challenge = resp.headers.get("WWW-Authenticate", "")
    assert challenge.startswith(f'{scheme} realm="portico"'), challenge
    return body


def files_containing(root, needle):
    """Every file under root whose bytes contain needle."""
    hits = []
    for dirpath, _, names in os.walk(root):
        for n in names:
            p = os.path.join(dirpath, n)
            try:
                with open(p, "rb") as f:
                    if needle in f.read():
                        hits.append(p)
            except OSError:
                pass
    return hits


def access_worker(server, request_id):
    """The worker index that logged the access line of request_id."""
    lines = server.log_lines_with(request_id, "ACCESS")
    assert lines, f"no access line for {request_id}"
    return re.search(r"\[worker (\d+)\]", lines[0]).group(1)


# ---------------------------------------------------------------- a shared server

@pytest.fixture(scope="module")
def sec(module_portico):
    """One server with JWT, API key and public endpoints that report who called."""
    p = module_portico
    p.add_script("who", WHO)
    for name, auth in [("who", "jwt"), ("who2", "jwt"), ("keyed", "apikey"),
                       ("keyed2", "apikey"), ("open", "public")]:
        p.add_endpoint(name, f"/{name}", script="who", auth=auth)
    p.add_script("secret", SECRET_READER)
    p.add_endpoint("secret", "/secret", auth="public")
    s = start_module_server(p)
    yield p, s
    s.close()


# ---------------------------------------------------------------- init and keys

def test_init_creates_private_install_keys_once(portico, cli):
    keys = os.path.join(portico.data, "keys")
    assert stat.S_IMODE(os.stat(keys).st_mode) == 0o700
    before = {}
    for name in ("jwt.key", "apikey.key", "master.key"):
        path = os.path.join(keys, name)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, name
        with open(path) as f:
            before[name] = f.read()
        assert re.fullmatch(r"[0-9a-f]{64}\n", before[name]), name
    assert len(set(before.values())) == 3
    cli("init")
    for name, text in before.items():
        with open(os.path.join(keys, name)) as f:
            assert f.read() == text, f"init rewrote {name}"


def test_endpoint_add_takes_jwt_and_apikey(portico, cli):
    portico.add_script("who", WHO)
    assert "auth jwt" in portico.add_endpoint("a", "/a", script="who", auth="jwt").stdout
    assert "auth apikey" in portico.add_endpoint("b", "/b", script="who", auth="apikey").stdout
    assert_cli_error(portico.add_endpoint("c", "/c", script="who", auth="oauth", check=False),
                     "oauth")
    listing = cli("endpoint", "list").stdout
    assert re.search(r"\ba\b.*\bjwt\b", listing) and re.search(r"\bb\b.*\bapikey\b", listing)


# ---------------------------------------------------------------- tokens

def test_token_create_prints_a_signed_jwt(sec):
    p, _ = sec
    token = new_token(p, "--name", "partner-a")
    decoded = jwt.decode(token, jwt_key(p), algorithms=["HS256"])
    assert decoded["sub"] == "partner-a"
    assert re.fullmatch(r"[0-9a-f]{16}", decoded["jti"])
    assert abs(decoded["iat"] - time.time()) < 60
    assert "exp" not in decoded and "scope" not in decoded
    assert jwt.get_unverified_header(token)["alg"] == "HS256"

    token = new_token(p, "--name", "short", "--expires", "15m", "--endpoint", "who")
    decoded = jwt.decode(token, jwt_key(p), algorithms=["HS256"])
    assert decoded["exp"] - decoded["iat"] == 900
    assert decoded["scope"] == "who"


def test_token_create_validates(sec):
    p, _ = sec
    assert_cli_error(p.cli("token", "create", "--expires", "soon", check=False), "--expires")
    assert_cli_error(p.cli("token", "create", "--endpoint", "nope", check=False), "nope")
    assert_cli_error(p.cli("token", "create", "--rate", "5/fortnight", check=False), "--rate")
    assert_cli_error(p.cli("token", "revoke", "0000000000000000", check=False), "no token")


def test_token_list_shows_what_the_issue_asks(sec):
    p, _ = sec
    token = new_token(p, "--name", "listed", "--expires", "30d", "--endpoint", "who",
                      "--endpoint", "who2", "--rate", "100/min")
    jti = claims_of(token)["jti"]
    listing = p.cli("token", "list").stdout
    header = listing.splitlines()[0]
    for col in ("ID", "NAME", "CREATED", "EXPIRES", "SCOPE", "RATE", "REVOKED", "LAST USED"):
        assert col in header
    line = next(l for l in listing.splitlines() if l.startswith(jti))
    assert "listed" in line and "who,who2" in line and "100/min" in line
    assert token not in listing
    p.cli("token", "revoke", jti)
    line = next(l for l in p.cli("token", "list").stdout.splitlines() if l.startswith(jti))
    assert "UTC" in line.split("100/min", 1)[1], f"revoked time missing: {line}"


def test_jwt_in_both_schemes_names_the_caller(sec):
    p, s = sec
    token = new_token(p, "--name", "partner-b")
    jti = claims_of(token)["jti"]
    for scheme in ("JWT", "Bearer", "bearer"):
        r = s.get("/who", headers=bearer(token, scheme))
        assert r.status_code == 200, r.text
        assert r.json()["auth"] == {"type": "jwt", "id": jti, "name": "partner-b",
                                    "issuer": None}
    # Public endpoints run without a caller.
    assert s.get("/open").json()["auth"] is None


def test_missing_and_malformed_authorization(sec):
    _, s = sec
    r = s.get("/who")
    assert_unauthorized(r, "missing")
    assert r.headers["WWW-Authenticate"] == 'Bearer realm="portico"'
    assert_unauthorized(s.get("/who", headers={"Authorization": "Basic dXNlcjpwYXNz"}), "scheme")
    r = s.get("/who", headers={"Authorization": "Bearer not-a-token"})
    assert_unauthorized(r, "malformed")
    assert 'error="invalid_token"' in r.headers["WWW-Authenticate"]
    assert_unauthorized(s.get("/who", headers={"Authorization": "Bearer a.b.c"}), "malformed")
    assert_unauthorized(s.get("/who", headers={"Authorization": "Bearer " + "A" * 9000}),
                        "too long")


FORGERIES = {
    # name: (how to forge from (valid token claims, install key), expected message)
    "wrong key": (lambda c, k: jwt.encode(c, os.urandom(32), algorithm="HS256"),
                  "bad signature"),
    "alg none": (lambda c, k: jwt.encode(c, None, algorithm="none"), "alg none"),
    "HS512 with the right key": (lambda c, k: jwt.encode(c, k, algorithm="HS512"),
                                 "unsupported algorithm"),
    "RS256 header, HMAC with the install key (algorithm confusion)": (
        lambda c, k: hand_made({"alg": "RS256", "typ": "JWT"}, c,
                               lambda m: hmac.new(k, m, hashlib.sha256).digest()),
        "not trusted"),
    "tampered payload": (
        lambda c, k: (lambda t: t.split(".")[0] + "."
                      + b64url(json.dumps(dict(c, sub="admin")).encode()) + "."
                      + t.split(".")[2])(jwt.encode(c, k, algorithm="HS256")),
        "bad signature"),
    "expired": (lambda c, k: jwt.encode(dict(c, exp=int(time.time()) - 30), k,
                                        algorithm="HS256"), "expired"),
    "nbf in the future": (lambda c, k: jwt.encode(dict(c, nbf=int(time.time()) + 3600), k,
                                                  algorithm="HS256"), "not yet valid"),
    "unknown jti": (lambda c, k: jwt.encode(dict(c, jti="f" * 16), k, algorithm="HS256"),
                    "unknown token"),
}


@pytest.mark.parametrize("name", list(FORGERIES))
def test_forged_tokens_are_refused(sec, name):
    p, s = sec
    forge, why = FORGERIES[name]
    valid = new_token(p, "--name", "victim")
    assert s.get("/who", headers=bearer(valid)).status_code == 200
    forged = forge(claims_of(valid), jwt_key(p))
    r = s.get("/who", headers=bearer(forged))
    assert_unauthorized(r, why)
    assert forged not in s.log and valid not in s.log


def test_expired_token_from_the_cli(sec):
    p, s = sec
    token = new_token(p, "--expires", "1s")
    time.sleep(2.1)
    assert_unauthorized(s.get("/who", headers=bearer(token)), "expired")


def test_revocation_applies_to_the_next_request(sec):
    p, s = sec
    token = new_token(p, "--name", "soon-revoked")
    assert s.get("/who", headers=bearer(token)).status_code == 200
    assert s.get("/who2", headers=bearer(token)).status_code == 200
    p.cli("token", "revoke", claims_of(token)["jti"])
    assert_unauthorized(s.get("/who", headers=bearer(token)), "revoked")
    assert_unauthorized(s.get("/who2", headers=bearer(token)), "revoked")


def test_token_scope_is_by_endpoint(sec):
    p, s = sec
    token = new_token(p, "--endpoint", "who")
    assert s.get("/who", headers=bearer(token)).status_code == 200
    r = s.get("/who2", headers=bearer(token))
    assert_unauthorized(r, "scope")
    assert 'error="insufficient_scope"' in r.headers["WWW-Authenticate"]


# ---------------------------------------------------------------- outside identity provider

@pytest.fixture(scope="module")
def idp(sec, tmp_path_factory):
    """An identity provider with an RSA and an EC key, trusted for audience portico-api."""
    p, _ = sec
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    keys = []
    for key, alg, kid in ((rsa_key, RSAAlgorithm, "rsa-1"), (ec_key, ECAlgorithm, "ec-1")):
        jwk = json.loads(alg.to_jwk(key.public_key()))
        jwk.update(kid=kid, use="sig")
        keys.append(jwk)
    path = tmp_path_factory.mktemp("idp") / "jwks.json"
    path.write_text(json.dumps({"keys": keys}))
    cp = p.cli("auth", "trust", "--issuer", "https://idp.example", "--jwks", str(path),
               "--audience", "portico-api")
    assert "2 keys" in cp.stdout, cp.stdout
    return {"rsa": rsa_key, "ec": ec_key, "iss": "https://idp.example"}


def idp_claims(**extra):
    now = int(time.time())
    c = {"iss": "https://idp.example", "sub": "carol@example.com", "aud": "portico-api",
         "iat": now, "exp": now + 300, "jti": "idp-123"}
    c.update(extra)
    return {k: v for k, v in c.items() if v is not None}


def test_outside_tokens_rs256_and_es256(sec, idp):
    _, s = sec
    for key, alg, kid in ((idp["rsa"], "RS256", "rsa-1"), (idp["ec"], "ES256", "ec-1")):
        token = jwt.encode(idp_claims(), key, algorithm=alg, headers={"kid": kid})
        r = s.get("/who", headers=bearer(token))
        assert r.status_code == 200, r.text
        assert r.json()["auth"] == {"type": "jwt", "id": "idp-123",
                                    "name": "carol@example.com",
                                    "issuer": "https://idp.example"}
    listing = sec[0].cli("auth", "list").stdout
    assert "https://idp.example" in listing and "portico-api" in listing


def test_outside_tokens_are_checked(sec, idp):
    p, s = sec
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rs = lambda c, key=idp["rsa"]: jwt.encode(c, key, algorithm="RS256",
                                              headers={"kid": "rsa-1"})
    pem = idp["rsa"].public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    cases = [
        (rs(idp_claims(), other), "bad signature"),
        (rs(idp_claims(aud="someone-else")), "audience"),
        (rs(idp_claims(aud=None)), "audience"),
        (rs(idp_claims(exp=None)), "no expiry"),
        (rs(idp_claims(exp=int(time.time()) - 10)), "expired"),
        (rs(idp_claims(nbf=int(time.time()) + 600)), "not yet valid"),
        (rs(idp_claims(iss="https://evil.example")), "not trusted"),
        (jwt.encode(idp_claims(), idp["ec"], algorithm="ES256", headers={"kid": "rsa-1"}),
         "no trusted key"),
        # The classic confusion: HS256 keyed with the provider's public key.
        (hand_made({"alg": "HS256", "typ": "JWT"}, idp_claims(),
                   lambda m: hmac.new(pem, m, hashlib.sha256).digest()), "bad signature"),
    ]
    for token, why in cases:
        assert_unauthorized(s.get("/who", headers=bearer(token)), why)


def test_untrusting_an_issuer(sec, tmp_path):
    p, s = sec
    key = ec.generate_private_key(ec.SECP256R1())
    jwk = json.loads(ECAlgorithm.to_jwk(key.public_key()))
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [jwk]}))
    p.cli("auth", "trust", "--issuer", "temp-idp", "--jwks", str(path))
    token = jwt.encode({"iss": "temp-idp", "sub": "x", "exp": int(time.time()) + 60}, key,
                       algorithm="ES256")
    assert s.get("/who", headers=bearer(token)).status_code == 200
    p.cli("auth", "untrust", "temp-idp")
    assert_unauthorized(s.get("/who", headers=bearer(token)), "not trusted")


def test_auth_trust_refuses_unusable_jwks(sec, tmp_path):
    p, _ = sec
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"keys": [{"kty": "oct", "k": b64url(b"secret")}]}))
    assert_cli_error(p.cli("auth", "trust", "--issuer", "x", "--jwks", str(bad), check=False),
                     "no usable key")
    bad.write_text("not json")
    assert_cli_error(p.cli("auth", "trust", "--issuer", "x", "--jwks", str(bad), check=False),
                     "JSON")
    assert_cli_error(p.cli("auth", "trust", "--jwks", str(bad), check=False), "--issuer")


# ---------------------------------------------------------------- API keys

def test_apikey_create_prints_the_key_once(sec):
    p, s = sec
    key = new_apikey(p, "consumer-a")
    assert re.fullmatch(r"pt_live_[A-Za-z0-9]{40}", key)
    listing = p.cli("apikey", "list").stdout
    assert key not in listing
    line = next(l for l in listing.splitlines() if l.startswith("consumer-a"))
    assert key[:12] in line  # a recognisable hint, not the key
    # Stored only as a keyed hash: no file of the data dir holds the key or its plain hash.
    assert not files_containing(p.data, key.encode())
    assert not files_containing(p.data, hashlib.sha256(key.encode()).digest())
    assert key not in s.log
    assert_cli_error(p.cli("apikey", "create", "consumer-a", check=False), "already exists")


def test_apikey_in_both_headers_names_the_key(sec):
    p, s = sec
    key = new_apikey(p, "consumer-b")
    for headers in ({"X-Api-Key": key}, {"x-api-key": key}, bearer(key)):
        r = s.get("/keyed", headers=headers)
        assert r.status_code == 200, r.text
        auth = r.json()["auth"]
        assert auth["type"] == "apikey" and auth["name"] == "consumer-b" and auth["id"]


def test_apikey_refusals(sec):
    p, s = sec
    key = new_apikey(p, "consumer-c", "--endpoint", "keyed")
    assert s.get("/keyed", headers={"X-Api-Key": key}).status_code == 200
    assert_unauthorized(s.get("/keyed2", headers={"X-Api-Key": key}), "scope", "ApiKey")
    r = s.get("/keyed")
    assert_unauthorized(r, "missing", "ApiKey")
    wrong = key[:-1] + ("A" if key[-1] != "A" else "B")
    assert_unauthorized(s.get("/keyed", headers={"X-Api-Key": wrong}), "invalid API key",
                        "ApiKey")
    assert_unauthorized(s.get("/keyed", headers={"X-Api-Key": "hunter2"}), "invalid API key",
                        "ApiKey")
    # A JWT endpoint does not take API keys.
    assert_unauthorized(s.get("/who", headers=bearer(key)), "malformed")
    p.cli("apikey", "revoke", "consumer-c")
    assert_unauthorized(s.get("/keyed", headers={"X-Api-Key": key}), "revoked", "ApiKey")
    assert "UTC" in next(l for l in p.cli("apikey", "list").stdout.splitlines()
                         if l.startswith("consumer-c")).split("keyed", 1)[1]
    assert_cli_error(p.cli("apikey", "revoke", "consumer-c", check=False), "consumer-c")
    # The name can be used again.
    again = new_apikey(p, "consumer-c")
    assert s.get("/keyed2", headers={"X-Api-Key": again}).status_code == 200


def test_rate_limit_per_apikey(sec):
    p, s = sec
    key = new_apikey(p, "limited-key", "--rate", "2/min")
    codes = [s.get("/keyed", headers={"X-Api-Key": key}).status_code for _ in range(4)]
    assert codes == [200, 200, 429, 429]
    r = s.get("/keyed", headers={"X-Api-Key": key})
    assert_json_error(r, 429)
    assert 1 <= int(r.headers["Retry-After"]) <= 30
    # Another key is not affected.
    other = new_apikey(p, "unlimited-key")
    assert s.get("/keyed", headers={"X-Api-Key": other}).status_code == 200


# ---------------------------------------------------------------- rate limits across workers

def test_rate_limit_is_shared_by_all_workers(portico, server):
    """Two keep-alive connections that landed on different workers: the limit (3/min) is used
    up through one of them; the next request, through the other worker, is refused too."""
    portico.add_script("who", WHO)
    portico.add_endpoint("limited", "/limited", script="who", auth="jwt")
    portico.add_endpoint("whoami", "/whoami", script="who", auth="public")
    token = new_token(portico, "--rate", "3/min")
    s = server(workers=2)

    # A connection stays on the worker that accepted it: find one per worker.
    first = requests.Session()
    pid_a = first.get(s.url + "/whoami", timeout=5).json()["pid"]
    other = None
    for _ in range(100):
        candidate = requests.Session()
        if candidate.get(s.url + "/whoami", timeout=5).json()["pid"] != pid_a:
            other = candidate
            break
        candidate.close()
    assert other is not None, "no connection reached the second worker"

    used = [first.get(s.url + "/limited", headers=bearer(token), timeout=5) for _ in range(3)]
    assert [r.status_code for r in used] == [200, 200, 200]
    assert {r.json()["pid"] for r in used} == {pid_a}
    r = other.get(s.url + "/limited", headers=bearer(token), timeout=5)
    assert_json_error(r, 429)
    assert int(r.headers["Retry-After"]) >= 1
    assert access_worker(s, r.headers["X-Request-Id"]) != access_worker(
        s, used[0].headers["X-Request-Id"]), "the refusal should come from the other worker"


def test_last_used_is_written_back(portico, server):
    portico.add_script("who", WHO)
    portico.add_endpoint("who", "/who", auth="jwt")
    portico.add_endpoint("keyed", "/keyed", script="who", auth="apikey")
    token = new_token(portico, "--name", "used")
    unused = new_token(portico, "--name", "unused")
    key = new_apikey(portico, "used-key")
    s = server()
    assert s.get("/who", headers=bearer(token)).status_code == 200
    assert s.get("/keyed", headers={"X-Api-Key": key}).status_code == 200
    assert s.terminate() == 0
    tokens = portico.cli("token", "list").stdout.splitlines()
    used_line = next(l for l in tokens if claims_of(token)["jti"] in l)
    unused_line = next(l for l in tokens if claims_of(unused)["jti"] in l)
    assert used_line.rstrip().endswith("UTC") and unused_line.rstrip().endswith("never")
    keys = portico.cli("apikey", "list").stdout
    assert next(l for l in keys.splitlines() if l.startswith("used-key")).rstrip().endswith("UTC")


# ---------------------------------------------------------------- secret store

def test_secret_set_list_rm(sec):
    p, s = sec
    value = "s3cr3t-Value-" + os.urandom(8).hex()
    p.cli("secret", "set", "partner-x", input=value + "\n")
    p.cli("secret", "set", "with space", "--value", "two\nlines\n")
    r = s.get("/secret", params={"name": "partner-x"})
    assert r.json() == {"value": value}  # one trailing newline removed, nothing else
    assert s.get("/secret", params={"name": "with space"}).json() == {"value": "two\nlines\n"}
    listing = p.cli("secret", "list").stdout
    assert "partner-x" in listing and "with space" in listing and value not in listing
    assert "UPDATED" in listing.splitlines()[0]
    p.cli("secret", "rm", "with space")
    r = s.get("/secret", params={"name": "with space"}).json()
    assert r["keyerror"] is True and r["pq_error"] is True
    assert r["missing"] == "no secret named 'with space' (add it with 'portico secret set')"
    assert_cli_error(p.cli("secret", "rm", "with space", check=False), "with space")
    assert_cli_error(p.cli("secret", "set", "bad\tname", "--value", "x", check=False), "name")
    assert_cli_error(p.cli("secret", "set", "empty", input="", check=False), "empty")
    assert_cli_error(p.cli("secret", "set", "binary", input="a\x00b", check=False), "NUL")


def test_secrets_are_never_stored_or_logged_in_plain_text(sec):
    p, s = sec
    value = "plaintext-canary-" + os.urandom(12).hex()
    cp = p.cli("secret", "set", "canary", input=value)
    assert value not in output(cp)
    assert s.get("/secret", params={"name": "canary"}).json() == {"value": value}
    p.cli("secret", "set", "canary", "--value", value + "-v2")
    assert s.get("/secret", params={"name": "canary"}).json() == {"value": value + "-v2"}
    assert not files_containing(p.data, value.encode()), "a data dir file holds the secret"
    assert value not in s.log
    assert value not in output(p.cli("secret", "list"))


def test_rotate_master_key_under_a_running_server(sec):
    p, s = sec
    p.cli("secret", "set", "rotating", "--value", "still-here")
    assert s.get("/secret", params={"name": "rotating"}).json() == {"value": "still-here"}
    path = os.path.join(p.data, "keys", "master.key")
    with open(path) as f:
        old = f.read()
    cp = p.cli("secret", "rotate-master")
    assert "re-encrypted" in cp.stdout
    with open(path) as f:
        assert f.read() != old
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert not os.path.exists(path + ".new")
    # The workers loaded the old key; they pick up the new one by themselves.
    assert s.get("/secret", params={"name": "rotating"}).json() == {"value": "still-here"}
    assert s.get("/secret", params={"name": "canary"}).status_code == 200


def test_master_key_from_the_environment(tmp_path):
    data = tmp_path / "data"
    master = os.urandom(32).hex()
    env = {"PORTICO_MASTER_KEY": master}
    run_cli(data, "init", env=env)
    assert not (data / "keys" / "master.key").exists()
    run_cli(data, "secret", "set", "db-password", "--value", "pw-from-env", env=env)
    script = tmp_path / "show.py"
    script.write_text("print(pq.get_secret('db-password'))\n")
    assert run_cli(data, "run", script, env=env).stdout == "pw-from-env\n"
    # Without the key: a clear error, not the value.
    cp = run_cli(data, "run", script, check=False)
    assert cp.returncode != 0 and "master key" in output(cp) and "pw-from-env" not in output(cp)
    # A wrong key says so.
    cp = run_cli(data, "run", script, check=False, env={"PORTICO_MASTER_KEY": "ab" * 32})
    assert cp.returncode != 0 and "master key" in output(cp)
    # Rotation with the key in the environment: the operator gives the new key, in
    # PORTICO_NEW_MASTER_KEY. Portico never makes one up that it would then have to print.
    assert_cli_error(run_cli(data, "secret", "rotate-master", env=env, check=False),
                     "PORTICO_NEW_MASTER_KEY", "nothing was changed")
    assert run_cli(data, "run", script, env=env).stdout == "pw-from-env\n"
    new = os.urandom(32).hex()
    cp = run_cli(data, "secret", "rotate-master", env={**env, "PORTICO_NEW_MASTER_KEY": new})
    assert "re-encrypted 1 secret" in cp.stdout and "PORTICO_MASTER_KEY" in cp.stdout
    assert new not in output(cp)
    assert run_cli(data, "run", script, env={"PORTICO_MASTER_KEY": new}).stdout == "pw-from-env\n"
    assert run_cli(data, "run", script, check=False, env=env).returncode != 0
    assert not files_containing(data, new.encode()), "the new master key was written down"
    assert not files_containing(data, master.encode()), "the old master key was written down"


SHOW_ALL = "for n in sorted(NAMES): print(n, pq.get_secret(n))\n"


def show_secrets(data, tmp_path, names, env=None, check=True):
    """Reads every secret in a new process (`portico run`): {name: value}."""
    script = tmp_path / "show_all.py"
    script.write_text(f"NAMES = {sorted(names)!r}\n" + SHOW_ALL)
    cp = run_cli(data, "run", script, env=env, check=check)
    if cp.returncode != 0:
        return None
    return dict(line.split(" ", 1) for line in cp.stdout.splitlines())


@pytest.mark.parametrize("stdout", ["closed", "broken-pipe", "full"])
@pytest.mark.parametrize("give_new_key", [False, True])
def test_env_rotation_with_a_lost_stdout_keeps_every_secret(tmp_path, stdout, give_new_key):
    """The review's scenario: PORTICO_MASTER_KEY in use and nobody sees the command's output
    (stdout closed, a reader that went away, a full disk). Every secret stays readable with a
    key the operator holds: the old one when the rotation was refused, else the one given."""
    data = tmp_path / "data"
    old, new = os.urandom(32).hex(), os.urandom(32).hex()
    run_cli(data, "init", env={"PORTICO_MASTER_KEY": old})
    values = {f"s{i}": f"value-{i}-" + os.urandom(4).hex() for i in range(3)}
    for name, value in values.items():
        run_cli(data, "secret", "set", name, "--value", value, env={"PORTICO_MASTER_KEY": old})
    env = {"PORTICO_MASTER_KEY": old}
    if give_new_key:
        env["PORTICO_NEW_MASTER_KEY"] = new
    cmd = [BIN, "--data", str(data), "secret", "rotate-master"]
    kw = dict(env=_env(env), stderr=subprocess.PIPE, timeout=30)
    if stdout == "closed":
        subprocess.run(cmd, stdout=subprocess.DEVNULL, preexec_fn=lambda: os.close(1), **kw)
    elif stdout == "broken-pipe":
        r, w = os.pipe()
        os.close(r)  # the reader is gone: the first write raises SIGPIPE
        try:
            subprocess.run(cmd, stdout=w, **kw)
        finally:
            os.close(w)
    else:
        with open("/dev/full", "wb") as full:
            subprocess.run(cmd, stdout=full, **kw)
    holds = new if give_new_key else old
    assert show_secrets(data, tmp_path, values, env={"PORTICO_MASTER_KEY": holds}) == values
    # During the change a process given both variables reads them too.
    both = {"PORTICO_MASTER_KEY": old, "PORTICO_NEW_MASTER_KEY": new}
    assert show_secrets(data, tmp_path, values, env=both) == values


def wait_reading_stdin(proc, data, timeout=10.0):
    """Waits until `portico secret set` (value on stdin) has loaded its keys and blocks in
    read(0): it then holds the master key it loaded, and the race is set up."""
    db = os.path.realpath(os.path.join(data, "portico.db"))
    read_nr = {"x86_64": "0", "aarch64": "63"}.get(os.uname().machine)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        try:
            fds = os.listdir(f"/proc/{proc.pid}/fd")
            opened = db in [os.readlink(f"/proc/{proc.pid}/fd/{fd}") for fd in fds]
            with open(f"/proc/{proc.pid}/syscall") as f:
                call = f.read().split()  # "running", or the number and arguments
        except OSError:
            opened, call = False, []
        if opened and (read_nr is None or not call):
            time.sleep(0.5)  # the system call cannot be seen here: give it time
            return
        if opened and call[0] == read_nr and int(call[1], 16) == 0:
            return
        time.sleep(0.01)
    pytest.fail("`secret set` never blocked reading its value")


def start_set(data, name, env=None):
    proc = subprocess.Popen([BIN, "--data", str(data), "secret", "set", name],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=_env(env))
    wait_reading_stdin(proc, data)
    return proc


def test_secret_set_racing_a_rotation_is_never_sealed_under_a_dead_key(portico, tmp_path):
    """`secret set` loads the master key, waits for its value, and a rotation replaces
    master.key meanwhile: the value is sealed under the new key, not the one that is gone."""
    p = portico
    p.cli("secret", "set", "before", "--value", "b-value")
    setter = start_set(p.data, "late")
    assert "re-encrypted 1 secret" in p.cli("secret", "rotate-master").stdout
    out, err = setter.communicate("late-value\n", timeout=30)
    assert setter.returncode == 0, err
    with open(os.path.join(p.data, "keys", "master.key")) as f:
        assert f.read().strip() not in out + err
    assert show_secrets(p.data, tmp_path, ["before", "late"]) == {"before": "b-value",
                                                                   "late": "late-value"}
    # And the next rotation finds nothing it cannot open.
    assert "re-encrypted 2 secrets" in p.cli("secret", "rotate-master").stdout


def test_env_secret_set_racing_a_rotation_is_refused(tmp_path):
    """The same race with PORTICO_MASTER_KEY: the setter holds only the old key, so it stores
    nothing and says why, instead of sealing under a key the operator is about to drop."""
    data = tmp_path / "data"
    old, new = os.urandom(32).hex(), os.urandom(32).hex()
    run_cli(data, "init", env={"PORTICO_MASTER_KEY": old})
    run_cli(data, "secret", "set", "before", "--value", "b", env={"PORTICO_MASTER_KEY": old})
    setter = start_set(data, "late", env={"PORTICO_MASTER_KEY": old})
    run_cli(data, "secret", "rotate-master",
            env={"PORTICO_MASTER_KEY": old, "PORTICO_NEW_MASTER_KEY": new})
    out, err = setter.communicate("late-value\n", timeout=30)
    assert setter.returncode != 0
    assert "PORTICO_MASTER_KEY" in err and "late-value" not in out + err
    assert "late" not in run_cli(data, "secret", "list").stdout.split()
    assert show_secrets(data, tmp_path, ["before"], env={"PORTICO_MASTER_KEY": new}) == {
        "before": "b"}
    # Run again with the new key, it stores.
    run_cli(data, "secret", "set", "late", input="late-value\n", env={"PORTICO_MASTER_KEY": new})
    assert show_secrets(data, tmp_path, ["before", "late"], env={"PORTICO_MASTER_KEY": new}) == {
        "before": "b", "late": "late-value"}


# ---------------------------------------------------------------- Peliqan's patterns

@pytest.fixture
def dw2(portico, cli):
    cli("db", "add", "dw_2", "--sqlite")
    cli("db", "import", "dw_2", "salesforce", "accounts", os.path.join(EXAMPLES, "accounts.csv"))
    cli("db", "import", "dw_2", "shop", "orders", os.path.join(EXAMPLES, "orders.csv"))
    return portico


def add_example(portico, name, filename, path):
    portico.cli("script", "add", name, os.path.join(EXAMPLES, filename))
    portico.add_endpoint(name, path, script=name, auth="public")


def test_peliqan_secret_store_per_consumer(dw2, server):
    p = dw2
    add_example(p, "partner_accounts", "secret_store_handler.py", "/partner/accounts")
    p.cli("secret", "set", "partner-a", input="key-of-partner-a\n")
    p.cli("secret", "set", "partner-b", input="key-of-partner-b\n")
    s = server()
    ok = s.get("/partner/accounts",
               headers={"X-Api-Client": "partner-a", "X-Api-Key": "key-of-partner-a"})
    assert ok.status_code == 200 and len(ok.json()) == 20
    assert ok.json()[0]["name"] == "Acme Robotics"
    for headers in ({"X-Api-Client": "partner-a", "X-Api-Key": "key-of-partner-b"},
                    {"X-Api-Client": "partner-c", "X-Api-Key": "key-of-partner-a"},
                    {"X-Api-Key": "key-of-partner-a"}, {}):
        r = s.get("/partner/accounts", headers=headers)
        assert r.status_code == 200 and r.json() == {"status": "unauthorized"}, headers
    assert "key-of-partner" not in s.log


def test_peliqan_encrypted_keys_in_a_table(dw2, server):
    p = dw2
    p.cli("secret", "set", "api_encryption_key", input=Fernet.generate_key().decode() + "\n")
    create = os.path.join(EXAMPLES, "encrypted_keys_create.py")
    key1 = p.cli("run", create, "1").stdout.strip()
    key2 = p.cli("run", create, "2").stdout.strip()
    assert key1 and key2 and key1 != key2
    stored = json.loads(p.cli("db", "query", "dw_2", "SELECT id, api_key FROM api_keys.api_keys",
                              "--json").stdout)
    assert {row["id"] for row in stored} == {1, 2}
    assert all(key1 not in row["api_key"] and key2 not in row["api_key"] for row in stored)
    add_example(p, "my_orders", "encrypted_keys_handler.py", "/my/orders")
    s = server()
    r = s.get("/my/orders", headers={"Authorization": key1})
    assert r.status_code == 200, r.text
    assert [o["id"] for o in r.json()] == [1, 3] and {o["consumer_id"] for o in r.json()} == {1}
    r = s.get("/my/orders", headers={"Authorization": f"Bearer {key2}"})
    assert [o["id"] for o in r.json()] == [2, 5]
    assert s.get("/my/orders", headers={"Authorization": "guess"}).json() == \
        {"status": "unauthorized"}
    assert s.get("/my/orders").json() == {"status": "unauthorized"}
