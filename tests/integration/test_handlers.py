"""The handler runtime (DESIGN §2): both styles, request fields, pq, module-level code, every
response form, print(), exceptions."""

import json
import os
import re

import pytest
import requests

from conftest import Handlers, assert_json_error, rid_of, start_module_server

H = Handlers()

# ---------------------------------------------------------------- handlers

FIELDS = H.add("fields", """\
    FIELDS = ['method', 'url', 'path', 'query_string', 'headers', 'data', 'form', 'body',
              'params', 'query', 'auth', 'remote_addr', 'request_id']

    def handler(request):
        h = request['headers']
        return {
            'types': {k: type(request[k]).__name__ for k in FIELDS},
            'headers_is_dict': isinstance(h, dict),
            'method': request['method'],
            'url': request['url'],
            'path': request['path'],
            'query_string': request['query_string'],
            'data': request['data'],
            'form': request['form'],
            'form_is_dict': isinstance(request['form'], dict),
            'body_hex': request['body'].hex(),
            'params': request['params'],
            'query': request['query'],
            'auth': request['auth'],
            'remote_addr': request['remote_addr'],
            'request_id': request['request_id'],
            'key_lower': h.get('x-api-key'),
            'key_canon': h.get('X-Api-Key'),
            'key_upper': h.get('X-API-KEY'),
            'key_getitem': h['x-api-key'] if 'x-api-key' in h else None,
            'dict_keys': sorted(dict(h).keys()),
            'dict_key_value': dict(h).get('X-Api-Key'),
            'content_type': h.get('content-type'),
            'header_value_types': sorted({type(v).__name__ for v in h.values()}),
        }
    """, path="/customers/{id}", methods="GET,POST,PUT,PATCH,DELETE")

FLASK = H.add("flask", """\
    def handler():
        return {
            'method': request.method,
            'url': request.url,
            'path': request.path,
            'qs_type': type(request.query_string).__name__,
            'qs': request.query_string.decode('utf-8'),
            'data_type': type(request.data).__name__,
            'data_hex': request.data.hex(),
            'args': dict(request.args),
            'json': request.json,
            'form': dict(request.form),
            'get_data': request.get_data(),
            'key': request.headers.get('x-api-key'),
            'key_canon': request.headers.get('X-Api-Key'),
        }
    """, methods="GET,POST,PUT")

# DESIGN §2 Flask-style example, verbatim.
FLASK_DOC = H.add("flask_doc", """\
    def handler():                     # Flask style (older): a global `request` object
        qs = request.query_string.decode("utf-8")
        return request.get_data()
    """, methods="GET,POST")

PQ = H.add("pqglobal", """\
    import pq as imported_pq

    def handler(request):
        return {
            'global': pq.dbconnect('dw').fetch('dw', query='select 1 as x'),
            'imported': imported_pq.dbconnect('dw').fetch('dw', query='select 2 as y'),
        }
    """)

PQ_MODULE_LEVEL = H.add("pqmodule", """\
    DB = pq.dbconnect('dw')

    def handler(request):
        return DB.fetch('dw', query="select 'cached' as conn")
    """)

RESPONSES = H.add("resp", """\
    class Weird:
        pass

    VALUES = {
        'dict': {'a': 1, 'b': [1, 2], 'c': None},
        'list': [1, 'two', None, True],
        'int': 42,
        'bigint': 2 ** 64,
        'negint': -7,
        'float': 2.5,
        'true': True,
        'false': False,
        'none': None,
        'str': 'hello',
        'emptystr': '',
        'bytes': b'\\x00\\x01\\xfe\\xff',
        'tuple2': ('created', 201),
        'tuple2dict': ({'made': 1}, 201),
        'tuple3': ({'ok': True}, 202, {'X-Custom': 'yes'}),
        'tuple3ctype': ('<b>hi</b>', 200, {'Content-Type': 'text/html; charset=utf-8'}),
        'tuple2none': (None, 204),
        'tuple2err': ({'error': 'nope'}, 404),
        'unicode': 'héllo wörld ✓ 日本 😀',
        'unicodejson': {'name': 'café ✓ 😀', 'list': ['ü']},
    }

    def handler(request):
        return VALUES[request['query_string']]
    """)

BAD_RETURNS = H.add("badret", """\
    class Weird:
        pass

    def handler(request):
        kind = request['query_string']
        if kind == 'set':
            return {1, 2, 3}
        if kind == 'object':
            return object()
        if kind == 'weird':
            return Weird()
        if kind == 'nested':
            return {'a': {1, 2}}
        return 'ok'
    """)

FLOAT_VALUES = [0.1, 1e16, 1.5e-07, 1 / 3, 100.0, -0.0, 1e22, 5e-324, 1.7976931348623157e308,
                123456789.125, 2.5e-05, 0.30000000000000004, -1.0e-10]

FLOATS = H.add("floats", f"""\
    VALUES = {FLOAT_VALUES!r}

    def handler(request):
        qs = request['query_string']
        if qs:
            return VALUES[int(qs)]
        return VALUES
    """)

PRINTS = H.add("prints", """\
    def handler(request):
        print('print-marker-' + request['query_string'])
        return 'printed'
    """)

RAISES = H.add("raises", """\
    def helper():
        raise ValueError('secret-detail-' + 'abc123')

    def handler(request):
        helper()
    """)

PARSES = H.add("parses", """\
    import json

    def handler(request):
        return {'parsed': json.loads(request['data'])}
    """, methods="POST")

FLASK_JSON = H.add("flaskjson", """\
    def handler():
        return {'json': request.json, 'is_none': request.json is None}
    """, methods="GET,POST")


@pytest.fixture(scope="module")
def srv(module_portico):
    H.publish_all(module_portico)
    s = start_module_server(module_portico)
    yield s
    s.close()


def get_fields(srv, path="/customers/42", method="GET", **kw):
    r = srv.request(method, path, **kw)
    assert r.status_code == 200, r.text
    return r, r.json()


# ---------------------------------------------------------------- dict style: request fields

def test_dict_field_types(srv):
    _, f = get_fields(srv, "/customers/42?a=1", method="POST", data=b"hello",
                      headers={"Content-Type": "text/plain"})
    t = f["types"]
    for k in ("method", "url", "path", "query_string", "data", "remote_addr", "request_id"):
        assert t[k] == "str", f"request[{k!r}] is {t[k]}"
    assert t["body"] == "bytes"
    assert t["auth"] == "NoneType"
    assert f["headers_is_dict"] is True, f"headers is a {t['headers']}, not a dict subclass"
    assert f["form_is_dict"] is True, f"form is a {t['form']}"
    assert isinstance(f["params"], dict) and isinstance(f["query"], dict)


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE"])
def test_dict_method(srv, method):
    _, f = get_fields(srv, method=method)
    assert f["method"] == method


def test_dict_url_path_query_string(srv):
    _, f = get_fields(srv, "/customers/42?a=1&b=two")
    assert f["url"] == srv.url + "/customers/42?a=1&b=two"
    assert f["path"] == "/customers/42"
    assert f["query_string"] == "a=1&b=two"


def test_dict_no_query_string(srv):
    _, f = get_fields(srv, "/customers/7")
    assert f["query_string"] == ""
    assert f["query"] == {}
    assert f["url"] == srv.url + "/customers/7"


def test_dict_query_parsing_last_value_wins(srv):
    _, f = get_fields(srv, "/customers/1?a=1&a=2&b=x&q=hello%20world&p=a+b&e=")
    assert f["query"] == {"a": "2", "b": "x", "q": "hello world", "p": "a b", "e": ""}
    assert f["query_string"] == "a=1&a=2&b=x&q=hello%20world&p=a+b&e="


def test_dict_params(srv):
    _, f = get_fields(srv, "/customers/abc-123")
    assert f["params"] == {"id": "abc-123"}


def test_dict_headers_case_insensitive_and_canonical_keys(srv):
    # Sent in lower case on the wire; handlers see canonical names, as Flask gives them.
    _, f = get_fields(srv, method="POST", data=b"{}",
                      headers={"x-api-key": "k-123", "content-type": "application/json"})
    assert f["key_lower"] == "k-123"
    assert f["key_canon"] == "k-123"
    assert f["key_upper"] == "k-123"
    assert f["key_getitem"] == "k-123"
    assert f["dict_key_value"] == "k-123"
    assert "X-Api-Key" in f["dict_keys"], f["dict_keys"]
    assert "Content-Type" in f["dict_keys"], f["dict_keys"]
    assert f["content_type"] == "application/json"
    assert f["header_value_types"] == ["str"]


def test_dict_missing_header_is_none(srv):
    _, f = get_fields(srv)
    assert f["key_lower"] is None and f["key_canon"] is None


def test_dict_data_and_body(srv):
    raw = "café ".encode() + b"\xff\xfe end"
    _, f = get_fields(srv, method="POST", data=raw,
                      headers={"Content-Type": "application/octet-stream"})
    assert f["body_hex"] == raw.hex()
    assert f["data"] == "café \ufffd\ufffd end"


def test_dict_empty_body(srv):
    _, f = get_fields(srv)
    assert f["data"] == "" and f["body_hex"] == "" and f["form"] == {}


def test_dict_form_urlencoded(srv):
    _, f = get_fields(srv, method="POST", data={"a": "1", "b": "x y", "c": "é&="})
    assert f["form"] == {"a": "1", "b": "x y", "c": "é&="}


def test_dict_form_multipart(srv):
    _, f = get_fields(srv, method="POST", data={"field": "value", "other": "ünï"},
                      files={"upload": ("n.txt", b"file content", "text/plain")})
    assert f["form"].get("field") == "value"
    assert f["form"].get("other") == "ünï"


def test_dict_form_empty_for_json_body(srv):
    _, f = get_fields(srv, method="POST", json={"a": 1})
    assert f["form"] == {}
    assert json.loads(f["data"]) == {"a": 1}


def test_dict_auth_none_remote_addr_request_id(srv):
    r, f = get_fields(srv)
    assert f["auth"] is None
    assert f["remote_addr"] == "127.0.0.1"
    assert f["request_id"] and f["request_id"] == rid_of(r)


# ---------------------------------------------------------------- Flask style

def test_flask_fields(srv):
    r = srv.post(FLASK + "?a=1&b=two", data=b"raw \xff",
                 headers={"Content-Type": "text/plain", "x-api-key": "fk"})
    assert r.status_code == 200, r.text
    f = r.json()
    assert f["method"] == "POST"
    assert f["url"] == srv.url + FLASK + "?a=1&b=two"
    assert f["path"] == FLASK
    assert f["qs_type"] == "bytes" and f["qs"] == "a=1&b=two"
    assert f["data_type"] == "bytes" and f["data_hex"] == b"raw \xff".hex()
    assert f["args"] == {"a": "1", "b": "two"}
    assert f["json"] is None
    assert f["key"] == "fk" and f["key_canon"] == "fk"


def test_flask_json_and_get_data_merges_json_object(srv):
    r = srv.post(FLASK + "?a=1&b=2", json={"b": "from-json", "c": 3})
    assert r.status_code == 200, r.text
    f = r.json()
    assert f["json"] == {"b": "from-json", "c": 3}
    assert f["get_data"] == {"a": "1", "b": "from-json", "c": 3}


def test_flask_get_data_merges_form(srv):
    r = srv.post(FLASK + "?a=1&b=2", data={"b": "from-form", "d": "4"})
    assert r.status_code == 200, r.text
    f = r.json()
    assert f["form"] == {"b": "from-form", "d": "4"}
    assert f["get_data"] == {"a": "1", "b": "from-form", "d": "4"}


def test_flask_get_data_query_only(srv):
    r = srv.get(FLASK + "?x=1&y=z")
    assert r.status_code == 200, r.text
    assert r.json()["get_data"] == {"x": "1", "y": "z"}
    r = srv.post(FLASK + "?x=1", data=b"plain text", headers={"Content-Type": "text/plain"})
    assert r.json()["get_data"] == {"x": "1"}


def test_flask_documented_example(srv):
    r = srv.post(FLASK_DOC + "?q=1", json={"k": "v"})
    assert r.status_code == 200, r.text
    assert r.json() == {"q": "1", "k": "v"}
    r = srv.get(FLASK_DOC + "?only=query")
    assert r.status_code == 200, r.text
    assert r.json() == {"only": "query"}


def test_flask_json_none_for_non_json_body(srv):
    r = srv.post(FLASK_JSON, data=b"not json at all", headers={"Content-Type": "text/plain"})
    assert r.status_code == 200, r.text
    assert r.json() == {"json": None, "is_none": True}
    r = srv.get(FLASK_JSON)
    assert r.status_code == 200, r.text
    assert r.json()["is_none"] is True
    r = srv.post(FLASK_JSON, json=[1, 2])
    assert r.json()["json"] == [1, 2]


# ---------------------------------------------------------------- pq

def test_pq_global_and_import(srv):
    r = srv.get(PQ)
    assert r.status_code == 200, r.text
    assert r.json() == {"global": [{"x": 1}], "imported": [{"y": 2}]}


def test_pq_dbconnect_at_module_level(srv):
    r = srv.get(PQ_MODULE_LEVEL)
    assert r.status_code == 200, r.text
    assert r.json() == [{"conn": "cached"}]


def test_module_level_code_once_per_worker_per_version(portico, server, tmp_path):
    marker = tmp_path / "loads.txt"
    src = f"""\
        import os
        with open({str(marker)!r}, 'a') as f:
            f.write('load %s VERSION\\n' % os.getpid())
        COUNT = 0

        def handler(request):
            global COUNT
            COUNT += 1
            return {{'count': COUNT, 'version': 'VERSION'}}
        """
    portico.publish("counter", src.replace("VERSION", "v1"))
    s = server("--workers", "1")
    counts = []
    for _ in range(6):
        r = s.get("/counter")
        assert r.status_code == 200, r.text
        assert r.json()["version"] == "v1"
        counts.append(r.json()["count"])
    assert sorted(counts) == [1, 2, 3, 4, 5, 6], counts
    loads = marker.read_text().splitlines()
    assert len(loads) == 1 and loads[0].endswith("v1"), loads

    portico.add_script("counter", src.replace("VERSION", "v2"))   # a new version: reloaded
    r = s.get("/counter")
    assert r.status_code == 200, r.text
    assert r.json() == {"count": 1, "version": "v2"}
    r = s.get("/counter")
    assert r.json() == {"count": 2, "version": "v2"}
    loads = marker.read_text().splitlines()
    assert [l.split()[-1] for l in loads] == ["v1", "v2"], loads


# ---------------------------------------------------------------- responses

def get_kind(srv, kind):
    return srv.get(RESPONSES + "?" + kind)


@pytest.mark.parametrize("kind,expected", [
    ("dict", {"a": 1, "b": [1, 2], "c": None}),
    ("list", [1, "two", None, True]),
    ("int", 42),
    ("negint", -7),
    ("float", 2.5),
    ("true", True),
    ("false", False),
    ("none", None),
])
def test_response_json(srv, kind, expected):
    r = get_kind(srv, kind)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].split(";")[0].strip() == "application/json"
    assert r.json() == expected


def test_response_scalar_text(srv):
    assert get_kind(srv, "true").text.strip() == "true"
    assert get_kind(srv, "none").text.strip() == "null"
    assert get_kind(srv, "int").text.strip() == "42"


def test_response_big_int_exact(srv):
    r = get_kind(srv, "bigint")
    assert r.status_code == 200, r.text
    assert r.text.strip() == str(2 ** 64)


def test_response_str(srv):
    r = get_kind(srv, "str")
    assert r.status_code == 200
    assert r.headers["Content-Type"].replace(" ", "").lower() == "text/plain;charset=utf-8"
    assert r.content == b"hello"
    r = get_kind(srv, "emptystr")
    assert r.status_code == 200 and r.content == b""


def test_response_bytes(srv):
    r = get_kind(srv, "bytes")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/octet-stream"
    assert r.content == b"\x00\x01\xfe\xff"


def test_response_tuple_body_status(srv):
    r = get_kind(srv, "tuple2")
    assert r.status_code == 201
    assert r.headers["Content-Type"].startswith("text/plain")
    assert r.content == b"created"
    r = get_kind(srv, "tuple2dict")
    assert r.status_code == 201 and r.json() == {"made": 1}
    assert r.headers["Content-Type"].startswith("application/json")
    r = get_kind(srv, "tuple2err")
    assert r.status_code == 404 and r.json() == {"error": "nope"}


def test_response_tuple_204(srv):
    r = get_kind(srv, "tuple2none")
    assert r.status_code == 204
    assert r.content == b""


def test_response_tuple_body_status_headers(srv):
    r = get_kind(srv, "tuple3")
    assert r.status_code == 202
    assert r.headers.get("X-Custom") == "yes"
    assert r.json() == {"ok": True}
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.headers.get("X-Request-Id")


def test_response_headers_override_content_type(srv):
    r = get_kind(srv, "tuple3ctype")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    assert r.content == b"<b>hi</b>"


def test_response_non_ascii_text_is_utf8(srv):
    r = get_kind(srv, "unicode")
    assert r.status_code == 200
    assert r.content.decode("utf-8") == "héllo wörld ✓ 日本 😀"


def test_response_non_ascii_json_is_valid_utf8(srv):
    r = get_kind(srv, "unicodejson")
    assert r.status_code == 200
    assert json.loads(r.content.decode("utf-8")) == {"name": "café ✓ 😀", "list": ["ü"]}


def test_floats_like_python_repr(srv):
    r = srv.get(FLOATS)
    assert r.status_code == 200, r.text
    expected = json.dumps(FLOAT_VALUES, separators=(",", ":"))
    assert re.sub(r"\s+", "", r.text) == expected


@pytest.mark.parametrize("i", range(len(FLOAT_VALUES)))
def test_single_float_like_python_repr(srv, i):
    r = srv.get(FLOATS + f"?{i}")
    assert r.status_code == 200, r.text
    assert r.text.strip() == json.dumps(FLOAT_VALUES[i])


@pytest.mark.parametrize("kind", ["set", "object", "nested"])
def test_unsupported_return_type_500(srv, kind):
    r = srv.get(BAD_RETURNS + "?" + kind)
    body = assert_json_error(r, 500)
    assert "Traceback" not in r.text


def test_unsupported_return_type_logged_with_type_name(srv):
    r = srv.get(BAD_RETURNS + "?weird")
    assert_json_error(r, 500)
    assert srv.wait_log(r"\bWeird\b"), "no log line naming the returned type 'Weird'"


# ---------------------------------------------------------------- print and exceptions

def test_print_goes_to_log_with_request_id(srv):
    r = srv.get(PRINTS + "?q7z")
    assert r.status_code == 200 and r.text == "printed"
    rid = rid_of(r)
    lines = srv.log_lines_with("print-marker-q7z")
    assert lines, "print() output not in the server log"
    assert any(rid in l for l in lines), f"printed line lacks request id {rid}: {lines}"
    assert "print-marker-q7z" not in r.text


def test_exception_gives_500_without_traceback(srv):
    r = srv.get(RAISES)
    body = assert_json_error(r, 500)
    assert body == {"error": "internal error", "request_id": rid_of(r)}
    assert "Traceback" not in r.text and "secret-detail" not in r.text
    assert "ValueError" not in r.text


def test_exception_traceback_in_log(srv):
    r = srv.get(RAISES)
    assert r.status_code == 500
    assert srv.wait_log(r"Traceback[\s\S]*helper[\s\S]*ValueError: secret-detail-abc123"), \
        "traceback not logged"
    assert srv.log_lines_with(rid_of(r)), "no log line holds the failing request's id"


def test_bad_json_body_to_parsing_handler(srv):
    r = srv.post(PARSES, data=b"{not json", headers={"Content-Type": "application/json"})
    body = assert_json_error(r, 500)
    assert body["error"] == "internal error"
    r = srv.post(PARSES, json={"fine": [1, 2]})
    assert r.status_code == 200 and r.json() == {"parsed": {"fine": [1, 2]}}


def test_handler_error_does_not_break_next_request(srv):
    for _ in range(3):
        assert srv.get(RAISES).status_code == 500
        r = get_kind(srv, "dict")
        assert r.status_code == 200 and r.json()["a"] == 1
