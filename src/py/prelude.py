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


_ASCII_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def canonical_header(name):
    """'x-api-key' -> 'X-Api-Key', the spelling Flask gives header names. ASCII letters only,
    as request.c spells the names it stores: a name with other bytes is still found."""
    return "-".join(part[:1].translate(_ASCII_UPPER) + part[1:].translate(_ASCII_LOWER)
                    for part in name.split("-"))


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


def _is_form(content_type):
    ctype = (content_type or "").split(";", 1)[0].strip().lower()
    return ctype in ("application/x-www-form-urlencoded", "multipart/form-data")


def read_parts(msg, form):
    """Adds the named parts of a parsed multipart message to form (files: their text)."""
    if not msg.is_multipart():
        return
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name is None:
            continue
        payload = part.get_payload(decode=True) or b""
        charset = part.get_content_charset() or "utf-8"
        try:
            form[name] = payload.decode(charset, "replace")
        except (LookupError, ValueError):
            # A charset Python does not know, or cannot name ("la\0", "idna" with errors):
            # the client's mistake, read as UTF-8.
            form[name] = payload.decode("utf-8", "replace")


def parse_form(content_type, body):
    """Form fields of an urlencoded or multipart body -> dict of str (files: their text)."""
    ctype = content_type.split(";", 1)[0].strip().lower()
    if ctype == "application/x-www-form-urlencoded":
        return dict(urllib.parse.parse_qsl(body.decode("utf-8", "replace"),
                                           keep_blank_values=True))
    if ctype == "multipart/form-data":
        head = b"Content-Type: " + content_type.encode("latin-1", "replace") + b"\r\n\r\n"
        form = {}
        try:
            read_parts(email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body),
                       form)
        except (IndexError, ValueError, TypeError):
            # The stdlib's header parser raises on some malformed parameters (a `name` with no
            # '=', in the body's Content-Type or a part's headers): the client's mistake; the
            # fields read before it are kept.
            pass
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
        # A form post's data is empty, its fields in `form`, as in Flask.
        self.data = b"" if _is_form(self.headers.get("Content-Type")) else d["body"]
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
        except (ValueError, RecursionError):  # RecursionError: nested too deeply
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


# ---- the script environment: RUN_CONTEXT, st, the peliqan module ---------------------------
#
# Peliqan runs every script with a few globals besides pq: RUN_CONTEXT says how it runs, and
# `st` (Streamlit) is how background runs show their progress. Portico has no page to draw on:
# st's text-like calls print to the run's log (the server log for handlers, the terminal and
# the run's record for `portico run`), and the rest raise pq.NotAvailable naming the call.

RUN_CONTEXT_HANDLER = "api_handler"  # scripts the server runs: handlers, webhook processing
RUN_CONTEXT_RUN = "scheduled_run"  # background runs: `portico run`, pq.run_script


def _not_available(what, why):
    import pq
    exc = getattr(pq, "NotAvailable", NotImplementedError)
    return exc("%s is not available in Portico: %s" % (what, why))


def _text(obj):
    if hasattr(obj, "to_string") and callable(obj.to_string):  # a DataFrame or a Series
        return obj.to_string()
    if isinstance(obj, (dict, list, tuple)):
        return json.dumps(obj, indent=2, default=str, ensure_ascii=False)
    return str(obj)


class Streamlit:
    """The `st` global: Streamlit's text calls, printed."""

    def write(self, *args, **kwargs):
        print(" ".join(_text(a) for a in args))

    def text(self, body, **kwargs):
        print(str(body))

    markdown = caption = text

    def code(self, body, language=None, **kwargs):
        print(str(body))

    def json(self, body, **kwargs):
        if isinstance(body, (str, bytes)):
            try:
                body = json.loads(body)
            except ValueError:
                pass
        print(json.dumps(body, indent=2, default=str, ensure_ascii=False))

    def table(self, data=None, **kwargs):
        print(_text(data))

    dataframe = table

    def title(self, body, **kwargs):
        print("# " + str(body))

    def header(self, body, **kwargs):
        print("## " + str(body))

    def subheader(self, body, **kwargs):
        print("### " + str(body))

    def divider(self):
        print("---")

    def info(self, body, **kwargs):
        print("INFO: " + _text(body))

    def success(self, body, **kwargs):
        print("SUCCESS: " + _text(body))

    def warning(self, body, **kwargs):
        print("WARNING: " + _text(body))

    def error(self, body, **kwargs):
        print("ERROR: " + _text(body))

    def exception(self, exception, **kwargs):
        print("ERROR: " + format_exc(exception))

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)

        def unavailable(*args, **kwargs):
            raise _not_available("st.%s" % name, "Portico runs scripts without a page, so only "
                                 "st's text calls (write, text, markdown, json, table, "
                                 "dataframe, title, header, subheader, code, info, success, "
                                 "warning, error) work; they print to the run's log")
        return unavailable

    def __repr__(self):
        return "<st: Streamlit's text calls, printed to the log>"


st = Streamlit()


def script_globals(pq, context):
    """The globals every script starts with (pq, st, RUN_CONTEXT), as in Peliqan."""
    return {"pq": pq, "st": st, "RUN_CONTEXT": context}


class _PeliqanModule(type(sys)):
    """`import peliqan`: Peliqan's client package, answered by the local pq, so that scripts
    written to run outside Peliqan (`pq = Peliqan(api_key)`) run here unchanged."""

    def __getattr__(self, name):
        if name in ("Peliqan", "BasePeliqanClient"):
            return _peliqan_client
        raise AttributeError("module 'peliqan' has no attribute %r" % name)


def _peliqan_client(jwt=None, backend_url=None, *args, **kwargs):
    """Peliqan(jwt, backend_url) -> the local pq: credentials and URL are not needed here."""
    import pq
    return pq


class _PeliqanExceptions(type(sys)):
    def __getattr__(self, name):
        import pq
        if name == "PeliqanClientException":
            return pq.Error
        if name == "OperationNotSupported":
            return getattr(pq, "NotAvailable", NotImplementedError)
        raise AttributeError("module 'peliqan.exceptions' has no attribute %r" % name)


def _install_peliqan_module():
    mod = _PeliqanModule("peliqan", "Peliqan's client package, answered by Portico's pq.")
    mod.__all__ = ["Peliqan", "BasePeliqanClient"]
    mod.__path__ = []  # a package: `from peliqan.exceptions import ...` works
    exceptions = _PeliqanExceptions("peliqan.exceptions")
    mod.exceptions = exceptions
    sys.modules["peliqan"] = mod
    sys.modules["peliqan.exceptions"] = exceptions


_install_peliqan_module()


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
    # A draft (test runs: versions below 0) keeps one name, so linecache holds one copy.
    filename = "<script %s v%d>" % (name, version) if version >= 0 else "<draft %s>" % name
    lines = source.splitlines(True)
    linecache.cache[filename] = (len(source), None, lines, filename)
    code = compile(source, filename, "exec")
    module = type(sys)("portico_script_" + name)
    module.__dict__.update(script_globals(pq, RUN_CONTEXT_HANDLER))
    module.__dict__.update({"request": request, "__file__": filename})
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


# ---- write(): records to tables, the way Peliqan's pipeline writer shapes them ------------
#
# pq's write() (src/py/pq_write.c) asks write_plan() what to write and then writes it: the SQL
# is built in C. The shaping follows Peliqan's documented pipeline logic (a Singer target):
# column names are canonicalised, nested objects become `parent__child` columns, nested lists
# become child tables `<table>__<field>` keyed by the parent's key and the item's position,
# and metadata columns record when and in which batch a row was written.

_IDENT_MAX = 63


def _invalid(message):
    import pq  # not at import time: the prelude runs while pq is being set up
    return pq.InvalidArgument(message)


def canonical_identifier(name):
    """A column or table name the way pipelines store it: lower case, [a-z0-9_$] only."""
    out = "".join(c if (c.isascii() and (c.isalnum() or c in "_$")) else "_"
                  for c in str(name).lower())
    if not out or out[0].isdigit() or out[0] == "$":
        out = "_" + out
    return out[:_IDENT_MAX]


_SCHEMA_TYPES = {"integer": "int", "number": "float", "boolean": "bool", "string": "text"}
_STRING_FORMATS = {"date-time": "timestamp", "date": "date", "time": "time"}


def _schema_type(prop):
    """The portable column type a JSON-schema property asks for (None: decide from values)."""
    types = prop.get("type")
    if isinstance(types, str):
        types = [types]
    types = [t for t in (types or []) if t != "null"]
    if not types and "anyOf" in prop:
        for alt in prop["anyOf"]:
            found = _schema_type(alt) if isinstance(alt, dict) else None
            if found:
                return found
        return None
    if not types:
        return None
    if "string" in types and prop.get("format") in _STRING_FORMATS:
        return _STRING_FORMATS[prop["format"]]
    if types[0] in ("object", "array"):
        return "json"
    return _SCHEMA_TYPES.get(types[0], "text")


def _schema_columns(object_schema, prefix="", out=None):
    """{column: portable type} from an object_schema's properties, nested objects flattened."""
    out = {} if out is None else out
    if not isinstance(object_schema, dict):
        return out
    for name, prop in (object_schema.get("properties") or {}).items():
        if not isinstance(prop, dict):
            continue
        col = canonical_identifier(prefix + name)
        if prop.get("properties") and _schema_type(prop) == "json":
            _schema_columns(prop, col + "__", out)
        else:
            t = _schema_type(prop)
            if t:
                out[col] = t
    return out


def _value_type(v):
    import datetime
    import decimal
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, decimal.Decimal):
        return "numeric"
    if isinstance(v, datetime.datetime):
        return "timestamptz" if v.tzinfo is not None else "timestamp"
    if isinstance(v, datetime.date):
        return "date"
    if isinstance(v, datetime.time):
        return "time"
    if isinstance(v, (bytes, bytearray, memoryview)):
        return "bytes"
    if isinstance(v, (dict, list, tuple)):
        return "json"
    return "text"


# The metadata columns' types; everything else is declared (object_schema) or inferred.
_META_TYPES = {"_sdc_batched_at": "timestamp", "_sdc_received_at": "timestamp",
               "_sdc_sequence": "int"}


class _Table:
    def __init__(self, name, keys):
        self.name = name
        self.keys = keys
        self.rows = []
        self.types = {}  # column -> portable type, in order of first appearance

    def add(self, row, declared):
        for col, v in row.items():
            if self.types.get(col) is None:
                self.types[col] = (declared.get(col) or _META_TYPES.get(col)
                                   or (None if v is None else _value_type(v)))
        self.rows.append(row)

    def plan(self):
        cols = [(c, t or "text") for c, t in self.types.items()]
        return {"table": self.name, "rows": self.rows, "keys": self.keys, "columns": cols}


def _as_records(records):
    """A list of record dicts from a DataFrame, a Series, a list/tuple or one dict."""
    kind = type(records).__module__.split(".")[0] + "." + type(records).__name__
    if kind == "pandas.DataFrame":
        return records.astype(object).where(records.notna(), None).to_dict("records")
    if kind == "pandas.Series":
        return [records.astype(object).where(records.notna(), None).to_dict()]
    if isinstance(records, dict):
        return [records]
    if isinstance(records, (list, tuple)):
        return list(records)
    raise _invalid(
        "records must be a DataFrame, a Series, a list of dicts or a dict, not %s"
        % type(records).__name__)


def _flatten(record, prefix, row, children, where):
    for key, value in record.items():
        if not isinstance(key, str):
            raise _invalid("%s: column names must be str, not %s"
                                             % (where, type(key).__name__))
        col = canonical_identifier(prefix + key)
        if isinstance(value, dict):
            _flatten(value, col + "__", row, children, where)
        elif isinstance(value, (list, tuple)):
            children.append((col, value))
        else:
            row[col] = value


def _add_children(tables, parent, field, items, links, level, declared):
    name = canonical_identifier(parent.name + "__" + field)
    level_col = "_sdc_level_%d_id" % level
    child = tables.get(name)
    if child is None:
        keys = [c for c in links if c != "_sdc_sequence"] + [level_col] if parent.keys else []
        child = tables[name] = _Table(name, keys)
    for i, item in enumerate(items):
        row, grandchildren = {}, []
        if isinstance(item, dict):
            _flatten(item, "", row, grandchildren, "table %s" % name)
        elif isinstance(item, (list, tuple)):
            row["_sdc_value"] = list(item)
        else:
            row["_sdc_value"] = item
        row.update(links)
        row[level_col] = i
        child.add(row, declared.get(name, {}))
        sub = dict(links)
        sub[level_col] = i
        for f, sub_items in grandchildren:
            _add_children(tables, child, f, sub_items, sub, level + 1, declared)


def write_plan(table, records, pk, object_schema, batched_at, sequence):
    """What write() writes: a list of {"table", "rows", "keys", "columns"}, the target table
    first, then its child tables. When the target has a key, each child table's entry has
    `clear`: (its source key columns, the key values of the parents written), whose old child
    rows are deleted before the new ones are written."""
    records = _as_records(records)
    if pk is None:
        keys = []
    elif isinstance(pk, str):
        keys = [pk]
    elif isinstance(pk, (list, tuple)) and all(isinstance(k, str) for k in pk):
        keys = list(pk)
    else:
        raise _invalid("pk must be a column name or a list of them, not %r"
                                         % (pk,))
    keys = [canonical_identifier(k) for k in keys]
    declared = {table: _schema_columns(object_schema)}
    root = _Table(table, keys)
    tables = {table: root}
    for i, record in enumerate(records, 1):
        if not isinstance(record, dict):
            raise _invalid("record %d is a %s, not a dict"
                                             % (i, type(record).__name__))
        row, children = {}, []
        _flatten(record, "", row, children, "record %d" % i)
        for k in keys:
            if row.get(k) is None:
                raise _invalid("record %d has no value for key column %r"
                                                 % (i, k))
        row.setdefault("_sdc_batched_at", batched_at)
        row.setdefault("_sdc_received_at", batched_at)
        row.setdefault("_sdc_sequence", sequence)
        root.add(row, declared[table])
        links = {"_sdc_source_key_" + k: row[k] for k in keys}
        links["_sdc_sequence"] = row["_sdc_sequence"]
        for field, items in children:
            _add_children(tables, root, field, items, links, 0, declared)
    plans = [t.plan() for t in tables.values()]
    if keys:  # a parent written again gets new child rows: its old ones go first
        parents = [tuple(r[k] for k in keys) for r in root.rows]
        for child in plans[1:]:
            child["clear"] = (["_sdc_source_key_" + k for k in keys], parents)
    return plans


# ---- pq functions written in Python -------------------------------------------------------


def install_pq_extras(pq):
    """Adds the pq functions that are thin layers over others (called when pq is made)."""

    def get_database(database_id=None, database_name=None):
        """One database of pq.list_databases(), by id or by name (its own, or its
        connection's). Peliqan's help pages name it; its client package lacks it."""
        if database_id in (None, "") and not database_name:
            raise pq.InvalidArgument("pq.get_database(): 'database_id' or 'database_name' must "
                                     "be provided")
        want = None
        if database_id not in (None, ""):
            try:
                want = int(database_id)
            except (TypeError, ValueError):
                raise pq.InvalidArgument("pq.get_database(): database_id must be an integer id, "
                                         "not %r" % (database_id,)) from None
        for d in pq.list_databases():
            if want is not None and d.get("id") == want:
                return d
            if want is None and database_name in (d.get("name"), d.get("connection_name")):
                return d
        raise pq.NotFound("no database %s" % (want if want is not None else repr(database_name)))

    pq.get_database = get_database


def format_exc(exc):
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip()


# A partial print() line longer than this is logged in pieces, so that printing without a
# newline cannot grow the buffer without bound (runtime.c caps the bytes logged per request).
_PRINT_LINE_MAX = 65536


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
        if len(rest) > _PRINT_LINE_MAX:
            end = len(rest) - len(rest) % _PRINT_LINE_MAX
            for i in range(0, end, _PRINT_LINE_MAX):
                _portico_c.emit(self._name, rest[i:i + _PRINT_LINE_MAX])
            rest = rest[end:]
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


# ---- State and scripts ------------------------------------------------------------------
#
# pq's state, script and run functions with Peliqan's names, parameters and return shapes.
# The store work is done by C primitives (module _portico_scripts, src/py/pq_scripts.c) that
# release the GIL; what is here is argument checking and the shapes of the results.

import datetime as _dt


def line_buffered_output():
    """`portico run`: stdout and stderr are pipes to the recorder; keep lines flowing."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(line_buffering=True)


def run_stored_script(name, version, source, init):
    """`portico run --script NAME`: runs a stored version as the __main__ module."""
    filename = "<script %s v%d>" % (name, version)
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    code = compile(source, filename, "exec")
    module = type(sys)("__main__")
    module.__dict__.update(init)
    module.__dict__["__file__"] = filename
    saved = sys.modules.get("__main__")
    sys.modules["__main__"] = module
    try:
        exec(code, module.__dict__)
    finally:
        if saved is not None:
            sys.modules["__main__"] = saved


def format_run_exc(exc):
    """The traceback of a failed `portico run`, without the frames of the runner itself."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename in ("<frozen runpy>",
                                                                 "<portico prelude>"):
        tb = tb.tb_next
    if tb is not None:
        exc = exc.with_traceback(tb)
    return format_exc(exc)


def state_dumps(data):
    """Peliqan's set_state(): dicts and lists as JSON, anything else as str(data)."""
    if isinstance(data, (dict, list)):
        return json.dumps(data, default=str)
    return str(data)


def state_loads(value):
    """Peliqan's get_state(): JSON, else an int, else the text; None when nothing is set."""
    if not value:
        return None
    try:
        return json.loads(value)
    except ValueError:
        pass
    try:
        return int(value)
    except ValueError:
        return value


_RUN_MODES = ("STREAMLIT", "API", "SHELL")
_OUTPUT_CAP = 1 << 20


def _iso_ms(ms):
    if not ms:
        return None
    t = _dt.datetime.fromtimestamp(ms / 1000.0, tz=_dt.timezone.utc)
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _script_dict(t):
    sid, name, version, current, run_mode, created, source = t
    return {"id": sid, "name": name, "raw_script": source, "run_mode": run_mode,
            "type": "streamlit", "version": version,
            "updated_at": _iso_ms(created * 1000)}


def _run_dict(t):
    (rid, sid, script, version, trigger, status, started, finished, code, output,
     dropped, error) = t
    return {"id": rid, "interface_id": sid or None, "script_id": sid or None,
            "script_name": script, "version": version or None, "trigger": trigger,
            "status": status, "running": status == "running",
            "started_at": _iso_ms(started), "finished_at": _iso_ms(finished),
            "duration_ms": (finished - started) if finished else None,
            "exit_code": None if status == "running" else code, "error": error}


def _logs_dict(t):
    rid, output, dropped = t[0], t[9], t[10]
    if dropped:
        output += ("\n[output cut: the log keeps the first %d bytes; %d more bytes were not "
                   "recorded]\n" % (_OUTPUT_CAP, dropped))
    return {"id": rid, "logs": output}


_empty = object()


def install_scripts(pq, c):
    """Adds the state and script functions, their exceptions and pq.INTERFACE_ID to pq."""
    Error = pq.Error
    InvalidArgument = getattr(pq, "InvalidArgument", Error)

    class ScriptNotFound(Error, LookupError):
        """No script with that id or name."""

        __str__ = Exception.__str__

    class RunNotFound(Error, LookupError):
        """No script run with that id."""

        __str__ = Exception.__str__

    ScriptNotFound.__module__ = RunNotFound.__module__ = "pq"

    def _tick():
        pass

    c.set_errors(Error, InvalidArgument, ScriptNotFound, RunNotFound, _tick)

    def _int_id(value, what, fn):
        if isinstance(value, bool) or value is None:
            raise InvalidArgument("pq.%s(): %s must be an integer id, not %r" % (fn, what, value))
        try:
            n = int(value)
        except (TypeError, ValueError):
            raise InvalidArgument("pq.%s(): %s must be an integer id, not %r"
                                  % (fn, what, value)) from None
        if n <= 0:
            raise ScriptNotFound("no script with id %d" % n) if what != "run_id" \
                else RunNotFound("no run with id %d" % n)
        return n

    def _current_id(fn):
        cur = c.current()
        if cur is None:
            raise Error("pq.%s() needs a stored script: it works in handlers, webhook processing "
                        "scripts and `portico run --script NAME`, not in `portico run FILE` "
                        "(use pq.%s_interface_state(script_id) there)"
                        % (fn, fn.split("_")[0]))
        return cur[1]

    def _lookup(script_id, script_name, fn):
        if script_id in (None, "", 0) and not script_name:
            raise InvalidArgument("pq.%s(): 'script_id' or 'script_name' must be provided" % fn)
        if script_id not in (None, "", 0):
            return c.script(_int_id(script_id, "script_id", fn), None)
        if not isinstance(script_name, str):
            raise InvalidArgument("pq.%s(): script_name must be a str" % fn)
        return c.script(0, script_name)

    def _check_source(name, raw_script, fn):
        if not isinstance(raw_script, str):
            raise InvalidArgument("pq.%s(): raw_script must be a str" % fn)
        try:
            compile(raw_script, "<script %s>" % name, "exec")
        except SyntaxError as e:
            raise InvalidArgument("pq.%s(): raw_script does not compile: line %s: %s"
                                  % (fn, e.lineno, e.msg)) from None
        except ValueError as e:  # NUL bytes
            raise InvalidArgument("pq.%s(): raw_script: %s" % (fn, e)) from None

    def _run_mode(run_mode, fn):
        mode = run_mode.upper() if isinstance(run_mode, str) else run_mode
        if mode not in _RUN_MODES:
            raise InvalidArgument("pq.%s(): run_mode must be one of %s, not %r"
                                  % (fn, ", ".join(_RUN_MODES), run_mode))
        return mode

    def get_state():
        """The running script's state (None when none was set)."""
        return state_loads(c.state_get(_current_id("get_state")))

    def set_state(data):
        """Stores the running script's state: dicts and lists as JSON, else str(data)."""
        c.state_set(_current_id("set_state"), state_dumps(data))

    def get_interface_state(interface_id):
        """The state of script `interface_id`."""
        return state_loads(c.state_get(_int_id(interface_id, "interface_id",
                                                "get_interface_state")))

    def set_interface_state(interface_id, state):
        """Stores the state of script `interface_id`."""
        c.state_set(_int_id(interface_id, "interface_id", "set_interface_state"),
                    state_dumps(state))

    def list_scripts():
        """Every script (current version), by name."""
        return [_script_dict(t) for t in c.scripts()]

    def get_script(script_id=None, script_name=None):
        """One script by id or name: id, name, raw_script, run_mode, version, ..."""
        return _script_dict(_lookup(script_id, script_name, "get_script"))

    def add_script(name, group_id="", group_name="", raw_script="", run_mode="STREAMLIT",
                   script_type="streamlit"):
        """Stores a new script (syntax-checked). Portico has no script groups: group_id and
        group_name are accepted and ignored."""
        if not isinstance(name, str):
            raise InvalidArgument("pq.add_script(): name must be a str")
        _check_source(name, raw_script, "add_script")
        mode = _run_mode(run_mode, "add_script")
        return _script_dict(c.script(c.create(name, raw_script, mode), None))

    def update_script(script_id=None, script_name=None, name=_empty, group=_empty,
                      raw_script=_empty, settings=_empty, state=_empty, flow=_empty,
                      editor=_empty, run_mode=_empty):
        """raw_script stores a new version; name renames the script (its endpoints and
        webhook sources follow); state sets the script's state; run_mode changes it. group,
        settings, flow and editor have no meaning here and are ignored."""
        t = _lookup(script_id, script_name, "update_script")
        sid, current = t[0], t[1]
        rename = name is not _empty and name != current
        if rename and not isinstance(name, str):
            raise InvalidArgument("pq.update_script(): name must be a str")
        if raw_script is not _empty:
            _check_source(current, raw_script, "update_script")
        if run_mode is not _empty:
            mode = _run_mode(run_mode, "update_script")
        if rename:
            c.rename(current, name)
            current = name
        if raw_script is not _empty:
            c.put(current, raw_script)
        if run_mode is not _empty:
            c.set_mode(sid, mode)
        if state is not _empty:
            c.state_set(sid, state_dumps(state))
        return _script_dict(c.script(sid, None))

    def run_script(script_name=None, script_id=None):
        """Runs the script's current version in a child process (`portico run --script`),
        waits for it, and returns the run with its logs."""
        t = _lookup(script_id, script_name, "run_script")
        sid, name, version = t[0], t[1], t[2]
        rid = c.run_start(sid, name, version, "pq.run_script")
        try:
            code = c.spawn(rid, name)
        except BaseException as e:
            # The wait was interrupted (a handler timeout, a signal): the run was stopped.
            run = c.run_get(rid)
            c.run_finish(rid, "error", -1 if run[5] == "running" else run[8],
                         "the run was stopped because its caller was interrupted (%s%s)"
                         % (type(e).__name__, ": %s" % e if str(e) else ""))
            raise
        run = c.run_get(rid)
        if run[5] == "running":
            # The child ended without recording its end (killed, or it could not start).
            c.run_finish(rid, "error", code,
                         "the run process ended with exit status %d before recording the end "
                         "of the run" % code)
            run = c.run_get(rid)
        result = _run_dict(run)
        result.update(_logs_dict(run))
        return result

    def get_script_runs(script_id=None, page=1, per_page=10):
        """Runs, newest first: {"count", "page", "per_page", "results": [run, ...]}."""
        sid = 0 if script_id in (None, "") else _int_id(script_id, "script_id", "get_script_runs")
        try:
            page, per_page = int(page), int(per_page)
        except (TypeError, ValueError):
            raise InvalidArgument("pq.get_script_runs(): page and per_page must be integers") \
                from None
        if page < 1 or per_page < 1:
            raise InvalidArgument("pq.get_script_runs(): page and per_page start at 1")
        total, rows = c.runs(sid, per_page, (page - 1) * per_page)
        return {"count": total, "page": page, "per_page": per_page,
                "results": [_run_dict(t) for t in rows]}

    def get_script_run(run_id):
        """One run (without its logs: get_script_run_logs)."""
        return _run_dict(c.run_get(_int_id(run_id, "run_id", "get_script_run")))

    def get_script_run_logs(script_run_id):
        """{"id": run id, "logs": what the run printed (stdout and stderr)}."""
        return _logs_dict(c.run_get(_int_id(script_run_id, "run_id", "get_script_run_logs")))

    fns = (get_state, set_state, get_interface_state, set_interface_state, list_scripts,
           get_script, add_script, update_script, run_script, get_script_runs, get_script_run,
           get_script_run_logs)
    for fn in fns:
        fn.__module__ = "pq"
        setattr(pq, fn.__name__, fn)
    pq.ScriptNotFound = ScriptNotFound
    pq.RunNotFound = RunNotFound

    # pq.INTERFACE_ID is per thread (one pq serves every script of a worker): a module
    # __getattr__ (PEP 562), which only runs for names the module does not have, so a plain
    # INTERFACE_ID attribute must not exist. An earlier __getattr__ keeps the other names.
    pq.__dict__.pop("INTERFACE_ID", None)
    previous = pq.__dict__.get("__getattr__")

    def __getattr__(name):
        if name == "INTERFACE_ID":
            cur = c.current()
            return cur[1] if cur is not None else None
        if previous is not None:
            return previous(name)
        raise AttributeError("module 'pq' has no attribute %r" % name)

    pq.__getattr__ = __getattr__
