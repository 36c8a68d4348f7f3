# prelude.py - the Python half of Portico's handler runtime, compiled into the binary.
#
# What is easier and no slower to say in Python lives here: the case-insensitive Headers
# mapping, the Flask-style request object and its thread-local proxy, form and query parsing,
# script loading, and print() capture. The hot path (building the dict-style request,
# calling the handler, serializing the result) stays in C (src/py/*.c).

import base64
import email.parser
import email.policy
import io
import json
import linecache
import sys
import threading
import traceback
import urllib.parse

import _portico_c

_tls = threading.local()


def canonical_header(name):
    """'x-api-key' -> 'X-Api-Key', the spelling Flask gives header names."""
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


def _canon(key):
    return canonical_header(key) if isinstance(key, str) else key


class Headers(dict):
    """Request headers: a dict keyed by canonical names, looked up case-insensitively."""

    __slots__ = ()

    def __getitem__(self, key):
        return dict.__getitem__(self, _canon(key))

    def __contains__(self, key):
        return dict.__contains__(self, _canon(key))

    def get(self, key, default=None):
        return dict.get(self, _canon(key), default)

    def getlist(self, key):
        value = self.get(key)
        return [] if value is None else [v.strip() for v in value.split(",")]


class BadRequest(Exception):
    """Raised by the request object when the client sent something unparseable (-> 400)."""


def parse_query(qs):
    """Query string -> dict of str, the last value of a repeated name winning."""
    return dict(urllib.parse.parse_qsl(qs, keep_blank_values=True))


def parse_form(content_type, body):
    """Form fields of an urlencoded or multipart body -> dict of str (files: their text)."""
    ctype = content_type.split(";", 1)[0].strip().lower()
    if ctype == "application/x-www-form-urlencoded":
        return dict(urllib.parse.parse_qsl(body.decode("utf-8", "replace"),
                                           keep_blank_values=True))
    if ctype == "multipart/form-data":
        head = b"Content-Type: " + content_type.encode("latin-1", "replace") + b"\r\n\r\n"
        msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
        form = {}
        if msg.is_multipart():
            for part in msg.iter_parts():
                name = part.get_param("name", header="content-disposition")
                if name is None:
                    continue
                payload = part.get_payload(decode=True) or b""
                charset = part.get_content_charset() or "utf-8"
                try:
                    form[name] = payload.decode(charset, "replace")
                except LookupError:  # a charset Python does not know: the client's mistake
                    form[name] = payload.decode("utf-8", "replace")
        return form
    return {}


class FlaskRequest:
    """The request of Flask-style handlers (`def handler():` reading a global `request`)."""

    def __init__(self, d):
        self._d = d
        self.method = d["method"]
        self.url = d["url"]
        self.path = d["path"]
        self.query_string = d["query_string"].encode("utf-8")
        self.headers = d["headers"]
        self.data = d["body"]
        self.form = d["form"]
        self.args = d["query"]
        self.view_args = d["params"]
        self.remote_addr = d["remote_addr"]
        self.request_id = d["request_id"]
        self.auth = d["auth"]

    @property
    def content_type(self):
        return self.headers.get("Content-Type")

    @property
    def is_json(self):
        ctype = (self.content_type or "").split(";", 1)[0].strip().lower()
        return ctype == "application/json" or (ctype.startswith("application/")
                                               and ctype.endswith("+json"))

    @property
    def json(self):
        """The parsed JSON body, None when the body is not JSON (400 when it claims to be)."""
        if not self.is_json:
            return None
        return self.get_json()

    def get_json(self, force=False, silent=False):
        if not (force or self.is_json):
            return None
        try:
            return json.loads(self.data)
        except ValueError:
            if silent:
                return None
            raise BadRequest("the request body is not valid JSON") from None

    def get_data(self, as_text=False):
        """Peliqan's get_data(): query parameters updated with the form fields or the JSON
        object body, by Content-Type."""
        merged = dict(self.args)
        if self.is_json:
            body = self.get_json(silent=True)
            if isinstance(body, dict):
                merged.update(body)
        else:
            merged.update(self.form)
        return merged

    def __repr__(self):
        return "<Request %s %r>" % (self.method, self.url)


class _RequestProxy:
    """The global `request` of a script: the calling thread's current request."""

    __slots__ = ()

    def __getattr__(self, name):
        current = getattr(_tls, "request", None)
        if current is None:
            raise RuntimeError("no request is being handled by this thread")
        if not isinstance(current, FlaskRequest):
            current = FlaskRequest(current)
            _tls.request = current
        return getattr(current, name)

    def __getitem__(self, key):
        current = getattr(_tls, "request", None)
        if isinstance(current, FlaskRequest):
            current = current._d
        if current is None:
            raise RuntimeError("no request is being handled by this thread")
        return current[key]

    def __repr__(self):
        return repr(getattr(_tls, "request", None))


request = _RequestProxy()


def set_current(req):
    _tls.request = req


_load_lock = threading.Lock()


def load_script(name, version, source, pq, cache):
    """Compiles and runs a script version's module-level code once per process; caches its
    handler. Threads that need it meanwhile wait for the first one's result."""
    with _load_lock:
        entry = cache.get(name)
        if entry is not None and entry[0] == version:
            return entry
        return _load(name, version, source, pq, cache)


def _load(name, version, source, pq, cache):
    filename = "<script %s v%d>" % (name, version)
    lines = source.splitlines(True)
    linecache.cache[filename] = (len(source), None, lines, filename)
    code = compile(source, filename, "exec")
    module = type(sys)("portico_script_" + name)
    module.__dict__.update({"pq": pq, "request": request, "__file__": filename})
    exec(code, module.__dict__)
    handler = module.__dict__.get("handler")
    if not callable(handler):
        raise _portico_c.ScriptError("script %r has no handler() function" % name)
    code_obj = getattr(handler, "__code__", None)
    flask_style = code_obj is not None and code_obj.co_argcount == 0
    entry = (version, handler, flask_style, module)
    cache[name] = entry
    return entry


def make_event(id, received_at, source, method, path, query_string, headers_json,
               content_type, body, body_base64, remote_addr, attempts):
    """The dict a webhook processing script's handler(event) receives."""
    headers = Headers()
    headers.update((canonical_header(k), v) for k, v in json.loads(headers_json).items())
    if body_base64:
        body = base64.b64decode(body)
    parsed = None
    ctype = (content_type or "").split(";", 1)[0].strip().lower()
    if ctype == "application/json" or ctype.endswith("+json"):
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
    return {"id": id, "received_at": received_at, "source": source, "method": method,
            "path": path, "query_string": query_string, "headers": headers,
            "content_type": content_type, "body": body, "json": parsed,
            "remote_addr": remote_addr, "attempts": attempts}


def format_exc(exc):
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip()


class _LogWriter(io.TextIOBase):
    """sys.stdout/sys.stderr of handlers: complete lines go to the server log."""

    def __init__(self, stream_name):
        self._attr = "buf_" + stream_name
        self._name = stream_name

    def writable(self):
        return True

    def write(self, s):
        if not isinstance(s, str):
            raise TypeError("write() argument must be str, not %s" % type(s).__name__)
        pending = getattr(_tls, self._attr, "") + s
        *lines, rest = pending.split("\n")
        for line in lines:
            _portico_c.emit(self._name, line)
        setattr(_tls, self._attr, rest)
        if rest:
            _portico_c.mark_pending()
        return len(s)

    def flush(self):
        rest = getattr(_tls, self._attr, "")
        if rest:
            setattr(_tls, self._attr, "")
            _portico_c.emit(self._name, rest)


def flush_print():
    sys.stdout.flush()
    sys.stderr.flush()


def capture_print():
    sys.stdout = _LogWriter("stdout")
    sys.stderr = _LogWriter("stderr")
