"""What the fuzz targets (tests/fuzz/) found in the Python half of the handler runtime, each
pinned over real HTTP: a client cannot turn request building into a 500, and what a handler
returns is always valid JSON."""

import json

import pytest

from conftest import Handlers, assert_json_error, start_module_server

H = Handlers()

FLASK_JSON = H.add("flaskjson", """\
    def handler():
        return {'json': request.json}
    """, methods="POST")

FLASK_DATA = H.add("flaskdata", """\
    def handler():
        return {'data': request.get_data()}
    """, methods="POST")

FORM = H.add("form", """\
    def handler(request):
        return {'form': request['form']}
    """, methods="POST")

DECIMALS = H.add("decimals", """\
    import decimal

    TEXTS = ['1.50', '-0', '1E+2', 'NaN', '-NaN', 'sNaN', '-sNaN', 'Infinity', '-Infinity']

    def handler(request):
        return [decimal.Decimal(t) for t in TEXTS]
    """)


@pytest.fixture(scope="module")
def srv(module_portico):
    H.publish_all(module_portico)
    s = start_module_server(module_portico)
    yield s
    s.close()


def test_deeply_nested_json_body_is_a_bad_request(srv):
    # json.loads raises RecursionError, not ValueError, past Python's recursion limit.
    body = b"[" * 100000
    r = srv.post(FLASK_JSON, data=body, headers={"Content-Type": "application/json"})
    err = assert_json_error(r, 400)
    assert err["error"] == "the request body is not valid JSON"
    # get_data() reads the body silently: the query parameters alone.
    r = srv.post(FLASK_DATA + "?q=1", data=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    assert r.json() == {"data": {"q": "1"}}


@pytest.mark.parametrize("charset", ["la\x00tin-1", "idna", "rot13", "no-such-charset"])
def test_multipart_part_with_unusable_charset_is_read_as_utf8(srv, charset):
    body = (b"--XyZ\r\nContent-Disposition: form-data; name=\"f\"\r\n"
            b"Content-Type: text/plain; charset=\"" + charset.encode("latin-1") + b"\"\r\n\r\n"
            b"caf\xc3\xa9\r\n--XyZ--\r\n")
    r = srv.post(FORM, data=body, headers={"Content-Type": "multipart/form-data; boundary=XyZ"})
    assert r.status_code == 200, r.text
    assert r.json() == {"form": {"f": "café"}}


def test_decimal_nan_and_infinity_are_valid_json(srv):
    r = srv.get(DECIMALS)
    assert r.status_code == 200, r.text
    # Every NaN is written as json.dumps writes float('nan'); str(Decimal('sNaN')) is not JSON.
    assert r.text.strip() == "[1.50, -0, 1E+2, NaN, NaN, NaN, NaN, Infinity, -Infinity]"
    values = json.loads(r.text)
    assert values[:3] == [1.5, 0, 100.0] and values[7:] == [float("inf"), float("-inf")]


# ---------------------------------------------------------------- bounded print() volume

LOUD = H.add("loud", """\
    def handler(request):
        line = 'x' * 1023
        for _ in range(40 * 1024):
            print(line)                       # 40 MiB in lines
        print('é' * (5 << 20), end='')       # 10 MiB more, no newline
        return 'done'
    """)

QUIET = H.add("quiet", """\
    def handler(request):
        print('quiet-marker')
        return 'ok'
    """)


def test_handler_printing_50_mb_logs_at_most_1_mib(srv):
    r = srv.get(LOUD, timeout=120)
    assert r.status_code == 200 and r.text == "done"
    rid = r.headers["X-Request-Id"]
    notes = srv.log_lines_with(f"request {rid}: [truncated ", timeout=10)
    assert len(notes) == 1, notes
    dropped = int(notes[0].split("[truncated ")[1].split()[0])
    logged = [l for l in srv.log.splitlines() if f"request {rid}: stdout: " in l]
    logged_bytes = sum(len(l.split(": stdout: ", 1)[1].encode()) + 1 for l in logged)
    assert logged_bytes <= 1 << 20
    total = 40 * 1024 * 1024 + 10 * 1024 * 1024
    assert total - (1 << 20) <= dropped <= total
    # The cap is per request: the next one's lines are logged in full.
    r = srv.get(QUIET)
    assert r.status_code == 200
    rid = r.headers["X-Request-Id"]
    assert srv.log_lines_with(f"request {rid}: stdout: quiet-marker")
    assert not srv.log_lines_with(f"request {rid}: [truncated", timeout=0)
