/* pq.c - the `pq` module handler scripts use to reach the warehouse (DESIGN §3): dbconnect,
 * the Connection's data API (fetch, insert, update, upsert, delete, execute, write,
 * create_schema, create_table), list_databases, DW_NAME and the pq.Error family. */

/*
 * Design notes
 *
 * 1. Handles. Each thread keeps its own open connection per name (a pq_handle in the thread
 *    state's dict, "pq.handles"), opened on first use and reused by every later request the
 *    thread runs. So a worker's threads never share a database connection, and a thread can
 *    release the GIL whenever it may wait for the database (PQ_WITHOUT_GIL: statements,
 *    rows that have not arrived, catalog lookups, prepared writes, freeing a cursor) without
 *    anything else touching the connection. What the database reads meanwhile is never a
 *    caller's mutable object: values come from snapshots (tuples, dict copies) held until the
 *    call returns. A PostgreSQL connection that broke is reset by the driver on the next call.
 *
 * 2. fetch() runs its statement right away, so errors (unknown table, bad SQL) are raised by
 *    fetch() itself where the handler can catch them, and returns a lazy row list (pq_rows.c):
 *    its rows are read into Python objects on first touch, or written out in C from the
 *    cursor when the handler returns the list unchanged (response.c).
 *
 * 3. SQL built here only ever contains double-quoted identifiers (with embedded quotes doubled:
 *    names read back from the database may hold any character) that are validated when they
 *    come from the caller; every value is a bound parameter. Column types of tables pq creates
 *    come from a fixed list of portable names (pt_wh_sql_type), never from the caller's text.
 *
 * 4. Every data call returns a small dict of what happened ({"inserted": 1, "id": 7}, ...).
 *
 * 5. Transactions belong to one request. A handle outlives the request that opened it, so a
 *    handler that ran BEGIN and then raised or returned without COMMIT would hand its open
 *    transaction to the next request on the thread (SQLite: later writes land in it and the
 *    write lock is never given back; PostgreSQL: after an error every later statement fails).
 *    After every handler run, pt_py_pq_end_request rolls back what the thread's handles still
 *    have open, and logs a warning naming the script.
 */
#include "py/pq_int.h"

#include <string.h>
#include <strings.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "store/store.h"

PyObject *pq_error;        /* pq.Error */
PyObject *pq_unknown_conn; /* pq.UnknownConnection(Error, KeyError) */
PyObject *pq_not_found;    /* pq.TableNotFound(Error) */
PyObject *pq_sql_error;    /* pq.SQLError(Error) */
PyObject *pq_unavailable;  /* pq.DatabaseUnavailable(Error) */
PyObject *pq_bad_arg;      /* pq.InvalidArgument(Error, ValueError) */

#define WRITE_BATCH 500 /* rows per transaction in write() */

static PyObject *s_utc; /* "UTC": fetch's default tz */

/* ---- handles ----------------------------------------------------------------------------- */

static void
handle_dealloc(pq_handle *h)
{
    pt_wh_close(h->wh);
    Py_XDECREF(h->name);
    Py_TYPE(h)->tp_free((PyObject *)h);
}

static PyTypeObject handle_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "pq._Handle",
    .tp_basicsize = sizeof(pq_handle),
    .tp_dealloc = (destructor)handle_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
};

void
pq_raise_wh(pt_wh *wh, int rc)
{
    PyObject *type = rc == PT_ENOTFOUND  ? pq_not_found
                     : rc == PT_EUNAVAIL ? pq_unavailable
                     : rc == PT_EDB      ? pq_sql_error
                     : rc == PT_EINVAL   ? pq_bad_arg
                                         : pq_error;
    const char *msg = wh != NULL ? pt_wh_errmsg(wh) : NULL;

    if (rc == PT_ENOMEM) {
        PyErr_NoMemory();
        return;
    }
    PyErr_SetString(type, msg != NULL && msg[0] ? msg : pt_strerror(rc));
}

pq_handle *
pq_handle_get(PyObject *name)
{
    PyObject *tdict = PyThreadState_GetDict(); /* borrowed */
    PyObject *handles;                         /* borrowed */
    pq_handle *h;
    pt_wh *wh = NULL;
    PyThreadState *ts;
    const char *cname; /* borrowed from name, which the caller holds */
    Py_ssize_t n;
    char err[512] = "";
    int rc;

    if (tdict == NULL) {
        PyErr_SetString(pq_error, "no thread state");
        return NULL;
    }
    handles = PyDict_GetItemString(tdict, "pq.handles");
    if (handles == NULL) {
        PyObject *d = PyDict_New();
        if (d == NULL || PyDict_SetItemString(tdict, "pq.handles", d) != 0) {
            Py_XDECREF(d);
            return NULL;
        }
        Py_DECREF(d);
        handles = d; /* the thread dict holds it */
    }
    cname = PyUnicode_AsUTF8AndSize(name, &n);
    if (cname == NULL || strlen(cname) != (size_t)n) {
        PyErr_Clear();
        PyErr_Format(pq_unknown_conn, "unknown database connection %R", name);
        return NULL;
    }
    h = (pq_handle *)PyDict_GetItem(handles, name); /* borrowed */
    if (h != NULL && h->wh != NULL)
        return (pq_handle *)Py_NewRef((PyObject *)h);

    ts = PyEval_SaveThread(); /* opening may connect to a server; no Python object inside */
    rc = pt_wh_open(pt_py_datadir, cname, &wh, err, sizeof err);
    PyEval_RestoreThread(ts);
    if (rc == PT_ENOTFOUND) {
        PyErr_Format(pq_unknown_conn,
                     "unknown database connection '%U' (see `portico db list`; the built-in "
                     "one is '%s')",
                     name, "dw");
        return NULL;
    }
    if (rc != 0) {
        PyErr_Format(rc == PT_EUNAVAIL ? pq_unavailable : pq_error,
                     "cannot open database connection '%U': %s", name,
                     err[0] ? err : pt_strerror(rc));
        return NULL;
    }
    h = PyObject_New(pq_handle, &handle_type);
    if (h == NULL) {
        pt_wh_close(wh);
        return NULL;
    }
    h->wh = wh;
    h->name = Py_NewRef(name);
    h->active = NULL;
    snprintf(h->tz, sizeof h->tz, "UTC");
    if (PyDict_SetItem(handles, name, (PyObject *)h) != 0) {
        Py_DECREF(h);
        return NULL;
    }
    return h;
}

int
pq_exec(pq_handle *h, const char *sql, const pt_value *vals, size_t n, pt_wh_cursor **cur)
{
    int rc;

    *cur = NULL;
    if (pq_handle_settle(h) != 0)
        return -1;
    PQ_WITHOUT_GIL(rc = pt_wh_exec(h->wh, sql, vals, n, cur));
    if (rc != 0) {
        pq_raise_wh(h->wh, rc);
        return -1;
    }
    return 0;
}

/* Runs sql to completion; returns rows changed (and the first column of the first row, when
 * first is not NULL and there is one: RETURNING). -1 with an error set on failure. */
static int64_t
exec_count(pq_handle *h, const char *sql, const pt_value *vals, size_t n, PyObject **first)
{
    pt_wh_cursor *cur = NULL;
    int64_t changes;
    int rc;

    if (first != NULL)
        *first = NULL;
    if (pq_exec(h, sql, vals, n, &cur) != 0)
        return -1;
    while ((rc = pq_next(cur)) == 1) {
        if (first != NULL && *first == NULL && pt_wh_cursor_ncols(cur) > 0) {
            pq_conv conv = {.python_types = 1, .dt_as_str = 1};
            pt_value v;
            pt_wh_cursor_value(cur, 0, &v);
            *first = pq_value_to_py(&v, pt_wh_cursor_coltype(cur, 0), &conv);
            if (*first == NULL) {
                pq_cursor_free(cur);
                return -1;
            }
        }
    }
    if (rc < 0) {
        pq_raise_wh(h->wh, rc);
        pq_cursor_free(cur);
        if (first != NULL)
            Py_CLEAR(*first);
        return -1;
    }
    changes = pt_wh_cursor_changes(cur);
    if (first != NULL && *first == NULL && pt_wh_cursor_last_id(cur) > 0 &&
        strcmp(pt_wh_kind(h->wh), "sqlite") == 0)
        *first = PyLong_FromLongLong(pt_wh_cursor_last_id(cur));
    pq_cursor_free(cur);
    return changes;
}

static int
exec_simple(pq_handle *h, const char *sql)
{
    return exec_count(h, sql, NULL, 0, NULL) < 0 ? -1 : 0;
}

/* Rolls back the transaction pq opened, keeping the exception that made it fail. */
static void
rollback_keeping_error(pq_handle *h)
{
    PyObject *type, *value, *tb;

    PyErr_Fetch(&type, &value, &tb);
    if (exec_simple(h, "ROLLBACK") != 0)
        PyErr_Clear();
    PyErr_Restore(type, value, tb);
}

/* ---- arguments --------------------------------------------------------------------------- */

/* A validated identifier argument (borrowed UTF-8 of arg); NULL with pq.InvalidArgument. */
static const char *
ident_arg(PyObject *arg, const char *what)
{
    const char *s;

    if (arg == NULL || arg == Py_None) {
        PyErr_Format(pq_bad_arg, "%s name is required", what);
        return NULL;
    }
    if (!PyUnicode_Check(arg)) {
        PyErr_Format(pq_bad_arg, "%s name must be a str, not %.100s", what, Py_TYPE(arg)->tp_name);
        return NULL;
    }
    Py_ssize_t n;
    s = PyUnicode_AsUTF8AndSize(arg, &n);
    if (s == NULL || strlen(s) != (size_t)n || !pt_wh_ident_valid(s)) {
        PyErr_Clear();
        PyErr_Format(pq_bad_arg,
                     "invalid %s name %R (letters, digits, '_' and '$', not starting with a "
                     "digit, at most 63)",
                     what, arg);
        return NULL;
    }
    return s;
}

/* Appends ident as a quoted SQL identifier (the quotes keep reserved words and case). Names
 * from callers are validated identifiers, but names read back from the database (a table's
 * primary key, its columns) may hold anything, a quote included: embedded quotes are doubled. */
static void
quote(pt_buf *b, const char *ident)
{
    pt_buf_putc(b, '"');
    for (; *ident != '\0'; ident++) {
        if (*ident == '"')
            pt_buf_putc(b, '"');
        pt_buf_putc(b, *ident);
    }
    pt_buf_putc(b, '"');
}

static void
quote_table(pt_buf *b, const char *schema, const char *table)
{
    quote(b, schema);
    pt_buf_putc(b, '.');
    quote(b, table);
}

static int
sql_ready(pt_buf *b)
{
    if (b->data == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

/* The UTF-8 text of a query argument (a str, borrowed); NULL with pq.InvalidArgument when it
 * cannot be encoded (a lone surrogate) or holds a NUL, which would cut the statement short. */
static const char *
sql_text(PyObject *query)
{
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(query, &n);

    if (s == NULL || strlen(s) != (size_t)n) {
        PyErr_Clear();
        PyErr_SetString(pq_bad_arg, "query must be text without NUL characters or lone "
                                    "surrogates");
        return NULL;
    }
    return s;
}

/* The connection a call runs on: `db` when given, else the Connection's own name. */
typedef struct {
    PyObject_HEAD PyObject *name; /* str: the connection dbconnect() was given */
} conn_object;

static pq_handle *
handle_for(conn_object *self, PyObject *db)
{
    if (db == NULL || db == Py_None)
        db = self->name;
    if (!PyUnicode_Check(db)) {
        PyErr_Format(pq_bad_arg, "db must be a connection name (str), not %.100s",
                     Py_TYPE(db)->tp_name);
        return NULL;
    }
    return pq_handle_get(db);
}

/* A record argument: a dict with str keys that are valid column names. */
static int
check_record(PyObject *record, int allow_empty)
{
    Py_ssize_t pos = 0;
    PyObject *k, *v; /* borrowed */

    if (record == NULL || !PyDict_Check(record)) {
        PyErr_Format(pq_bad_arg, "record must be a dict of column -> value, not %.100s",
                     record != NULL ? Py_TYPE(record)->tp_name : "nothing");
        return -1;
    }
    if (!allow_empty && PyDict_GET_SIZE(record) == 0) {
        PyErr_SetString(pq_bad_arg, "record is empty");
        return -1;
    }
    if (PyDict_GET_SIZE(record) > PT_WH_MAX_PARAMS - 1) {
        PyErr_SetString(pq_bad_arg, "record has too many columns");
        return -1;
    }
    while (PyDict_Next(record, &pos, &k, &v))
        if (ident_arg(k, "column") == NULL)
            return -1;
    return 0;
}

/* A private copy of a record argument, checked as check_record does. pq works from the copy:
 * converting a value may run Python code (isoformat(), json.dumps) and the database works with
 * the GIL released, and neither may find the caller's dict changed under it (a key added that
 * was never validated, a value freed while its text is bound). The copy holds the values.
 * New reference; NULL with an error set. */
static PyObject *
record_snapshot(PyObject *record, int allow_empty)
{
    PyObject *copy;

    if (check_record(record, allow_empty) != 0)
        return NULL;
    copy = PyDict_Copy(record);
    if (copy != NULL && check_record(copy, allow_empty) != 0)
        Py_CLEAR(copy);
    return copy;
}

/* ---- fetch ------------------------------------------------------------------------------- */

static PyObject *
rows_to_frame(PyObject *rows)
{
    PyObject *pandas = NULL, *frame = NULL, *list = NULL;

    pandas = PyImport_ImportModule("pandas");
    if (pandas == NULL)
        return NULL;
    list = PySequence_List(rows);
    if (list != NULL)
        frame = PyObject_CallMethod(pandas, "DataFrame", "O", list);
    Py_XDECREF(list);
    Py_DECREF(pandas);
    return frame;
}

/* fetch(db, schema=None, table=None, query=None, params=None, df=False, fillna_with=None,
 *       fillnat_with=None, enable_python_types=True, enable_datetime_as_string=True,
 *       tz='UTC') */
static PyObject *
conn_fetch(conn_object *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"db",
                             "schema",
                             "table",
                             "query",
                             "params",
                             "df",
                             "fillna_with",
                             "fillnat_with",
                             "enable_python_types",
                             "enable_datetime_as_string",
                             "tz",
                             NULL};
    PyObject *db = Py_None, *schema = Py_None, *table = Py_None, *query = Py_None;
    PyObject *params = Py_None, *df = Py_False, *fillna = Py_None, *fillnat = Py_None;
    PyObject *pytypes = Py_True, *dtstr = Py_True, *tz = Py_None;
    PyObject *sql = NULL, *keep = NULL, *rows = NULL, *frame = NULL;
    const char *tzname, *sqltext;
    Py_ssize_t tzlen;
    pq_handle *h = NULL;
    pt_value *vals = NULL;
    pt_wh_cursor *cur = NULL;
    pq_conv conv;
    size_t n = 0;
    int want_df;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|OOOOOOOOOOO:fetch", kwlist, &db, &schema,
                                     &table, &query, &params, &df, &fillna, &fillnat, &pytypes,
                                     &dtstr, &tz))
        return NULL;
    want_df = PyObject_IsTrue(df);
    conv.python_types = PyObject_IsTrue(pytypes);
    conv.dt_as_str = PyObject_IsTrue(dtstr);
    if (want_df < 0 || conv.python_types < 0 || conv.dt_as_str < 0)
        return NULL;
    conv.fillna = fillna != Py_None ? fillna : NULL;
    conv.fillnat = fillnat != Py_None ? fillnat : NULL;
    if (want_df) {
        /* Before any work: say so when pandas is missing. */
        PyObject *pandas = PyImport_ImportModule("pandas");
        if (pandas == NULL) {
            PyErr_Clear();
            PyErr_SetString(pq_error, "fetch(df=True) needs pandas, which cannot be imported "
                                      "here (install Debian's python3-pandas), or use df=False");
            return NULL;
        }
        Py_DECREF(pandas);
    }
    if (tz == Py_None)
        tz = s_utc;
    tzname = PyUnicode_Check(tz) ? PyUnicode_AsUTF8AndSize(tz, &tzlen) : NULL;
    if (tzname == NULL || strlen(tzname) != (size_t)tzlen || (size_t)tzlen >= sizeof h->tz) {
        PyErr_Clear();
        PyErr_SetString(pq_bad_arg, "tz must be a time zone name (str), e.g. 'UTC'");
        return NULL;
    }

    if (query != Py_None) {
        if (!PyUnicode_Check(query)) {
            PyErr_Format(pq_bad_arg, "query must be a str, not %.100s", Py_TYPE(query)->tp_name);
            return NULL;
        }
        sql = Py_NewRef(query);
    } else {
        const char *t = ident_arg(table, "table");
        const char *s = schema != Py_None ? ident_arg(schema, "schema") : NULL;
        if (t == NULL || (schema != Py_None && s == NULL)) {
            if (table == Py_None) {
                PyErr_Clear();
                PyErr_SetString(pq_bad_arg, "fetch needs a table (and its schema) or a query");
            }
            return NULL;
        }
        if (params != Py_None) {
            PyErr_SetString(pq_bad_arg, "params go with query=, not with a table");
            return NULL;
        }
        sql = s != NULL ? PyUnicode_FromFormat("SELECT * FROM \"%s\".\"%s\"", s, t)
                        : PyUnicode_FromFormat("SELECT * FROM \"%s\"", t);
        if (sql == NULL)
            return NULL;
    }
    sqltext = sql_text(sql);
    keep = sqltext != NULL ? PyList_New(0) : NULL;
    if (keep == NULL || pq_params(params, &vals, &n, keep) != 0)
        goto fail;
    h = handle_for(self, db);
    if (h == NULL)
        goto fail;
    if (strcmp(pt_wh_kind(h->wh), "postgres") == 0 && strcmp(h->tz, tzname) != 0) {
        /* The session time zone decides how timestamptz values print. */
        pt_value v = {.type = PT_V_TEXT, .u.s = {tzname, (size_t)tzlen}};
        if (exec_count(h, "SELECT set_config('TimeZone', $1, false)", &v, 1, NULL) < 0)
            goto fail;
        /* Inside a transaction the setting lasts only if it commits: remember it only when
         * it is sure to last, else set it again next time. */
        if (pt_wh_in_transaction(h->wh))
            h->tz[0] = '\0';
        else
            snprintf(h->tz, sizeof h->tz, "%s", tzname);
    }
    if (pq_exec(h, sqltext, vals, n, &cur) != 0)
        goto fail;
    rows = pq_rows_new(h, cur, sql, n > 0 ? PyList_GET_ITEM(keep, PyList_GET_SIZE(keep) - 1) : NULL,
                       &conv);
    cur = NULL; /* the list owns it, even on error */
    if (rows == NULL)
        goto fail;
    if (want_df) {
        frame = rows_to_frame(rows);
        Py_DECREF(rows);
        rows = frame;
    }
    PyMem_Free(vals);
    Py_DECREF(keep);
    Py_DECREF(sql);
    Py_DECREF(h);
    return rows;
fail:
    PyMem_Free(vals);
    Py_XDECREF(keep);
    Py_XDECREF(sql);
    Py_XDECREF(h);
    return NULL;
}

/* ---- insert / update / upsert / delete --------------------------------------------------- */

/* Appends "col1", "col2" ... of record (a snapshot: record_snapshot) and fills vals[off..] with
 * its values, at most n of them (the room in vals). */
static int
record_columns(PyObject *record, pt_buf *sql, const char *sep, const char *suffix, pt_value *vals,
               size_t off, size_t n, PyObject *keep)
{
    Py_ssize_t pos = 0;
    PyObject *k, *v; /* borrowed from the snapshot, which nothing else can reach */
    size_t i = 0;

    while (PyDict_Next(record, &pos, &k, &v)) {
        const char *col = ident_arg(k, "column"); /* checked again: this goes into the SQL */
        if (col == NULL)
            return -1;
        if (i == n) {
            PyErr_SetString(pq_bad_arg, "record changed while it was read");
            return -1;
        }
        if (i > 0)
            pt_buf_puts(sql, sep);
        quote(sql, col);
        pt_buf_puts(sql, suffix);
        if (pq_to_value(v, &vals[off + i], keep) != 0)
            return -1;
        i++;
    }
    return 0;
}

static void
placeholders(pt_buf *sql, size_t n)
{
    for (size_t i = 0; i < n; i++)
        pt_buf_puts(sql, i > 0 ? ", ?" : "?");
}

/* The table's primary key column into pk; "" when it has none. -1 with TableNotFound when the
 * table does not exist. */
static int
table_pk(pq_handle *h, const char *schema, const char *table, char *pk, size_t pksz)
{
    int rc, pkrc = 0;

    if (pq_handle_settle(h) != 0)
        return -1;
    PQ_WITHOUT_GIL(rc = pt_wh_table_exists(h->wh, schema, table);
                   if (rc > 0) pkrc = pt_wh_primary_key(h->wh, schema, table, pk, pksz));
    if (rc == 0) {
        PyErr_Format(pq_not_found, "table %s.%s not found", schema, table);
        return -1;
    }
    if (rc < 0) {
        pq_raise_wh(h->wh, rc);
        return -1;
    }
    rc = pkrc;
    if (rc == PT_ENOTFOUND) {
        pk[0] = '\0';
        return 0;
    }
    if (rc != 0) {
        pq_raise_wh(h->wh, rc);
        return -1;
    }
    return 0;
}

static int
need_pk(pq_handle *h, const char *schema, const char *table, char *pk, size_t pksz)
{
    if (table_pk(h, schema, table, pk, pksz) != 0)
        return -1;
    if (pk[0] == '\0') {
        PyErr_Format(pq_bad_arg,
                     "table %s.%s has no single-column primary key, so rows cannot be found by "
                     "key (use execute() with a WHERE clause)",
                     schema, table);
        return -1;
    }
    return 0;
}

/* INSERT of record (a snapshot: record_snapshot), RETURNING the key when the table has one. */
static PyObject *
do_insert(pq_handle *h, const char *schema, const char *table, const char *pk, PyObject *record,
          PyObject *keep, int64_t *changes)
{
    size_t n = (size_t)PyDict_GET_SIZE(record);
    pt_value *vals = PyMem_Calloc(n + 1, sizeof *vals);
    PyObject *id = NULL;
    pt_buf sql;

    pt_buf_init(&sql, 0);
    if (vals == NULL)
        return PyErr_NoMemory();
    pt_buf_puts(&sql, "INSERT INTO ");
    quote_table(&sql, schema, table);
    pt_buf_puts(&sql, " (");
    if (record_columns(record, &sql, ", ", "", vals, 0, n, keep) != 0)
        goto done;
    pt_buf_puts(&sql, ") VALUES (");
    placeholders(&sql, n);
    pt_buf_putc(&sql, ')');
    if (pk[0] != '\0') {
        pt_buf_puts(&sql, " RETURNING ");
        quote(&sql, pk);
    }
    if (sql_ready(&sql) != 0)
        goto done;
    *changes = exec_count(h, pt_buf_cstr(&sql), vals, n, &id);
    if (*changes < 0)
        Py_CLEAR(id);
    else if (id == NULL)
        id = Py_NewRef(Py_None);
done:
    PyMem_Free(vals);
    pt_buf_free(&sql);
    return id;
}

/* insert(db, schema, table, record) or insert(db, schema, table, col=value, ...) */
static PyObject *
conn_insert(conn_object *self, PyObject *args, PyObject *kwargs)
{
    PyObject *argv[4] = {Py_None, Py_None, Py_None, NULL}; /* borrowed */
    static const char *names[4] = {"db", "schema", "table", "record"};
    PyObject *record = NULL, *keep = NULL, *id = NULL, *out = NULL;
    Py_ssize_t nargs = PyTuple_GET_SIZE(args), i;
    const char *schema, *table;
    pq_handle *h = NULL;
    char pk[128];
    int64_t changes = 0;

    if (nargs > 4) {
        PyErr_SetString(pq_bad_arg, "insert(db, schema, table, record) takes at most 4 "
                                    "positional arguments");
        return NULL;
    }
    for (i = 0; i < nargs; i++)
        argv[i] = PyTuple_GET_ITEM(args, i);
    record = PyDict_New();
    if (record == NULL)
        return NULL;
    /* Keyword arguments: the four names above, or columns of the record. */
    if (kwargs != NULL) {
        Py_ssize_t pos = 0;
        PyObject *k, *v; /* borrowed */
        while (PyDict_Next(kwargs, &pos, &k, &v)) {
            int known = -1;
            for (i = 0; i < 4; i++)
                if (PyUnicode_CompareWithASCIIString(k, names[i]) == 0)
                    known = (int)i;
            if (known >= 0 && known < nargs) {
                PyErr_Format(pq_bad_arg, "insert() got %s twice", names[known]);
                goto fail;
            }
            if (known >= 0)
                argv[known] = v;
            else if (PyDict_SetItem(record, k, v) != 0)
                goto fail;
        }
    }
    if (argv[3] != NULL && argv[3] != Py_None) {
        if (PyDict_GET_SIZE(record) > 0) {
            PyErr_SetString(pq_bad_arg, "insert() takes a record dict or column=value keyword "
                                        "arguments, not both");
            goto fail;
        }
        Py_SETREF(record, Py_NewRef(argv[3]));
    }
    schema = ident_arg(argv[1], "schema");
    table = schema != NULL ? ident_arg(argv[2], "table") : NULL;
    if (table == NULL)
        goto fail;
    Py_SETREF(record, record_snapshot(record, 0));
    if (record == NULL)
        goto fail;
    keep = PyList_New(0);
    h = keep != NULL ? handle_for(self, argv[0]) : NULL;
    if (h == NULL || table_pk(h, schema, table, pk, sizeof pk) != 0)
        goto fail;
    id = do_insert(h, schema, table, pk, record, keep, &changes);
    if (id != NULL)
        out = Py_BuildValue("{sLsO}", "inserted", (long long)changes, "id", id);
fail:
    Py_XDECREF(id);
    Py_XDECREF(keep);
    Py_XDECREF(h);
    Py_XDECREF(record);
    return out;
}

/* UPDATE schema.table SET record (a snapshot) WHERE pk = pk_value; returns rows changed or -1. */
static int64_t
do_update(pq_handle *h, const char *schema, const char *table, const char *pk, PyObject *record,
          PyObject *pk_value, PyObject *keep)
{
    size_t n = (size_t)PyDict_GET_SIZE(record);
    pt_value *vals = PyMem_Calloc(n + 1, sizeof *vals);
    int64_t changes = -1;
    pt_buf sql;

    pt_buf_init(&sql, 0);
    if (vals == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    pt_buf_puts(&sql, "UPDATE ");
    quote_table(&sql, schema, table);
    pt_buf_puts(&sql, " SET ");
    if (record_columns(record, &sql, ", ", " = ?", vals, 0, n, keep) != 0 ||
        pq_to_value(pk_value, &vals[n], keep) != 0)
        goto done;
    pt_buf_puts(&sql, " WHERE ");
    quote(&sql, pk);
    pt_buf_puts(&sql, " = ?");
    if (sql_ready(&sql) == 0)
        changes = exec_count(h, pt_buf_cstr(&sql), vals, n + 1, NULL);
done:
    PyMem_Free(vals);
    pt_buf_free(&sql);
    return changes;
}

/* Parses (db, schema, table, pk_value, record) for update/upsert, *record then being a
 * snapshot of the record (new reference: record_snapshot); no record for delete (want_record
 * 0). */
static int
keyed_args(PyObject *args, PyObject *kwargs, const char *fname, int want_record, PyObject **db,
           const char **schema, const char **table, PyObject **pk_value, PyObject **record)
{
    static char *kw_rec[] = {"db", "schema", "table", "pk_value", "record", NULL};
    static char *kw_del[] = {"db", "schema", "table", "pk_value", NULL};
    PyObject *s = NULL, *t = NULL;
    char fmt[32];

    PyObject *rec = NULL; /* borrowed */

    *db = Py_None;
    *pk_value = NULL;
    *record = NULL;
    snprintf(fmt, sizeof fmt, "OOOO%s:%s", want_record ? "O" : "", fname);
    if (want_record
            ? !PyArg_ParseTupleAndKeywords(args, kwargs, fmt, kw_rec, db, &s, &t, pk_value, &rec)
            : !PyArg_ParseTupleAndKeywords(args, kwargs, fmt, kw_del, db, &s, &t, pk_value))
        return -1;
    *schema = ident_arg(s, "schema");
    *table = *schema != NULL ? ident_arg(t, "table") : NULL;
    if (*table == NULL)
        return -1;
    if (*pk_value == Py_None) {
        PyErr_Format(pq_bad_arg, "%s() needs a pk_value (not None)", fname);
        return -1;
    }
    if (want_record && (*record = record_snapshot(rec, 0)) == NULL)
        return -1;
    return 0;
}

static PyObject *
conn_update(conn_object *self, PyObject *args, PyObject *kwargs)
{
    PyObject *db, *pk_value, *record, *keep = NULL, *out = NULL;
    const char *schema, *table;
    pq_handle *h = NULL;
    char pk[128];
    int64_t changes;

    if (keyed_args(args, kwargs, "update", 1, &db, &schema, &table, &pk_value, &record) != 0)
        return NULL;
    keep = PyList_New(0);
    h = keep != NULL ? handle_for(self, db) : NULL;
    if (h == NULL || need_pk(h, schema, table, pk, sizeof pk) != 0)
        goto done;
    changes = do_update(h, schema, table, pk, record, pk_value, keep);
    if (changes >= 0)
        out = Py_BuildValue("{sL}", "updated", (long long)changes);
done:
    Py_XDECREF(keep);
    Py_XDECREF(h);
    Py_DECREF(record);
    return out;
}

/* Removes the key column from record (a snapshot) when it names it, after checking that its
 * value is pk_value: upsert finds the row by pk_value and cannot change its key. */
static int
drop_key_column(PyObject *record, const char *pk, PyObject *pk_value)
{
    PyObject *name = PyUnicode_FromString(pk), *v; /* v: borrowed */
    int rc = -1, same;

    if (name == NULL)
        return -1;
    v = PyDict_GetItemWithError(record, name);
    if (v == NULL) {
        rc = PyErr_Occurred() ? -1 : 0;
        goto done;
    }
    Py_INCREF(v); /* comparing may run Python code */
    same = PyObject_RichCompareBool(v, pk_value, Py_EQ);
    Py_DECREF(v);
    if (same == 0)
        PyErr_Format(pq_bad_arg,
                     "record's %s differs from pk_value (upsert cannot change a row's key; use "
                     "update)",
                     pk);
    else if (same > 0)
        rc = PyDict_DelItem(record, name);
done:
    Py_DECREF(name);
    return rc;
}

/* upsert: updates only the given columns of the row with that key, or inserts it. One
 * INSERT ... ON CONFLICT (pk) DO UPDATE SET <the given columns> on both back ends, so that two
 * requests upserting the same new key cannot both try to insert it (an UPDATE that finds no row
 * and then an INSERT could, and one of them failed on the key). What happened: PostgreSQL says
 * it (xmax is 0 only in a row the statement inserted); SQLite cannot, so there the key is
 * looked up first, in a transaction (the caller's, when one is open) that already holds the
 * write lock of the table's schema file, so that no other connection can write in between.
 * `DELETE ... WHERE 0` takes that lock and touches no row; BEGIN IMMEDIATE would lock every
 * attached schema file, in each connection's own order of attachment, and two connections
 * could then wait for each other until the busy timeout. */
static PyObject *
conn_upsert(conn_object *self, PyObject *args, PyObject *kwargs)
{
    PyObject *db, *pk_value, *record, *keep = NULL, *out = NULL, *first = NULL;
    PyObject *k, *v; /* borrowed */
    const char *schema, *table, *col;
    pq_handle *h = NULL;
    pt_value *vals = NULL;
    Py_ssize_t pos = 0;
    pt_buf sql;
    char pk[128];
    size_t n, i = 0;
    int own_txn = 0, is_pg, inserted;

    pt_buf_init(&sql, 0);
    if (keyed_args(args, kwargs, "upsert", 1, &db, &schema, &table, &pk_value, &record) != 0)
        return NULL;
    keep = PyList_New(0);
    h = keep != NULL ? handle_for(self, db) : NULL;
    if (h == NULL || need_pk(h, schema, table, pk, sizeof pk) != 0 ||
        drop_key_column(record, pk, pk_value) != 0)
        goto done;
    is_pg = strcmp(pt_wh_kind(h->wh), "postgres") == 0;
    n = (size_t)PyDict_GET_SIZE(record);
    vals = PyMem_Calloc(n + 1, sizeof *vals);
    if (vals == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    if (pq_to_value(pk_value, &vals[0], keep) != 0)
        goto done;
    pt_buf_puts(&sql, "INSERT INTO ");
    quote_table(&sql, schema, table);
    pt_buf_puts(&sql, " (");
    quote(&sql, pk);
    if (n > 0)
        pt_buf_puts(&sql, ", ");
    if (record_columns(record, &sql, ", ", "", vals, 1, n, keep) != 0)
        goto done;
    pt_buf_puts(&sql, ") VALUES (");
    placeholders(&sql, n + 1);
    pt_buf_puts(&sql, ") ON CONFLICT (");
    quote(&sql, pk);
    pt_buf_puts(&sql, ") DO UPDATE SET ");
    while (PyDict_Next(record, &pos, &k, &v)) {
        col = PyUnicode_AsUTF8(k); /* checked by record_columns */
        if (col == NULL)
            goto done;
        pt_buf_puts(&sql, i++ > 0 ? ", " : "");
        quote(&sql, col);
        pt_buf_puts(&sql, " = excluded.");
        quote(&sql, col);
    }
    if (n == 0) { /* only the key: an update that changes nothing, so the row counts as found */
        quote(&sql, pk);
        pt_buf_puts(&sql, " = excluded.");
        quote(&sql, pk);
    }
    if (is_pg)
        pt_buf_puts(&sql, " RETURNING (xmax = 0) AS inserted");
    if (sql_ready(&sql) != 0)
        goto done;
    if (is_pg) {
        if (exec_count(h, pt_buf_cstr(&sql), vals, n + 1, &first) < 0)
            goto done;
        inserted = first == Py_True;
    } else {
        pt_buf key;
        int64_t found;
        if (!pt_wh_in_transaction(h->wh)) {
            if (exec_simple(h, "BEGIN") != 0)
                goto done;
            own_txn = 1;
        }
        pt_buf_init(&key, 0);
        pt_buf_puts(&key, "DELETE FROM ");
        quote_table(&key, schema, table);
        pt_buf_puts(&key, " WHERE 0");
        found = sql_ready(&key) == 0 ? exec_count(h, pt_buf_cstr(&key), NULL, 0, NULL) : -1;
        if (found < 0) {
            pt_buf_free(&key);
            goto done;
        }
        pt_buf_reset(&key);
        pt_buf_puts(&key, "SELECT 1 FROM ");
        quote_table(&key, schema, table);
        pt_buf_puts(&key, " WHERE ");
        quote(&key, pk);
        pt_buf_puts(&key, " = ?");
        found = sql_ready(&key) == 0 ? exec_count(h, pt_buf_cstr(&key), vals, 1, &first) : -1;
        pt_buf_free(&key);
        if (found < 0)
            goto done;
        inserted = first == NULL;
        if (exec_count(h, pt_buf_cstr(&sql), vals, n + 1, NULL) < 0)
            goto done;
    }
    out = Py_BuildValue("{sssO}", "action", inserted ? "inserted" : "updated", "id", pk_value);
    if (out != NULL && own_txn) {
        own_txn = 0;
        if (exec_simple(h, "COMMIT") != 0)
            Py_CLEAR(out);
    }
done:
    if (own_txn)
        rollback_keeping_error(h);
    PyMem_Free(vals);
    pt_buf_free(&sql);
    Py_XDECREF(first);
    Py_XDECREF(keep);
    Py_XDECREF(h);
    Py_DECREF(record);
    return out;
}

static PyObject *
conn_delete(conn_object *self, PyObject *args, PyObject *kwargs)
{
    PyObject *db, *pk_value, *record, *keep = NULL, *out = NULL;
    const char *schema, *table;
    pq_handle *h = NULL;
    pt_value v;
    char pk[128];
    pt_buf sql;
    int64_t changes;

    pt_buf_init(&sql, 0);
    if (keyed_args(args, kwargs, "delete", 0, &db, &schema, &table, &pk_value, &record) != 0)
        return NULL;
    keep = PyList_New(0);
    h = keep != NULL ? handle_for(self, db) : NULL;
    if (h == NULL || need_pk(h, schema, table, pk, sizeof pk) != 0 ||
        pq_to_value(pk_value, &v, keep) != 0)
        goto done;
    pt_buf_puts(&sql, "DELETE FROM ");
    quote_table(&sql, schema, table);
    pt_buf_puts(&sql, " WHERE ");
    quote(&sql, pk);
    pt_buf_puts(&sql, " = ?");
    if (sql_ready(&sql) != 0)
        goto done;
    changes = exec_count(h, pt_buf_cstr(&sql), &v, 1, NULL);
    if (changes >= 0)
        out = Py_BuildValue("{sL}", "deleted", (long long)changes);
done:
    pt_buf_free(&sql);
    Py_XDECREF(keep);
    Py_XDECREF(h);
    return out;
}

/* execute(db, query, params=None) -> {"rowcount": n} (+ "rows" when the statement has some) */
static PyObject *
conn_execute(conn_object *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"db", "query", "params", NULL};
    PyObject *db = Py_None, *query = NULL, *params = Py_None, *keep = NULL, *out = NULL;
    PyObject *rows = NULL;
    const char *sqltext;
    pq_handle *h = NULL;
    pt_value *vals = NULL;
    pt_wh_cursor *cur = NULL;
    pq_conv conv = {.python_types = 1, .dt_as_str = 1};
    size_t n = 0;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|OOO:execute", kwlist, &db, &query, &params))
        return NULL;
    if (query == NULL || !PyUnicode_Check(query)) {
        PyErr_SetString(pq_bad_arg, "execute() needs query= (a str of SQL)");
        return NULL;
    }
    sqltext = sql_text(query);
    keep = sqltext != NULL ? PyList_New(0) : NULL;
    if (keep == NULL || pq_params(params, &vals, &n, keep) != 0)
        goto done;
    h = handle_for(self, db);
    if (h == NULL || pq_exec(h, sqltext, vals, n, &cur) != 0)
        goto done;
    if (pt_wh_cursor_ncols(cur) == 0) {
        out = Py_BuildValue("{sL}", "rowcount", (long long)pt_wh_cursor_changes(cur));
        pq_cursor_free(cur);
        goto done;
    }
    rows = pq_rows_new(h, cur, query, NULL, &conv);
    if (rows == NULL || pq_rows_ready(rows) != 0)
        goto done;
    out = Py_BuildValue("{snsO}", "rowcount", PyList_GET_SIZE(rows), "rows", rows);
done:
    PyMem_Free(vals);
    Py_XDECREF(rows);
    Py_XDECREF(keep);
    Py_XDECREF(h);
    return out;
}

/* ---- create_schema / create_table / write ------------------------------------------------ */

static PyObject *
conn_create_schema(conn_object *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"db", "schema", NULL};
    PyObject *db = Py_None, *s = NULL;
    const char *schema;
    pq_handle *h;
    int existed, rc;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|OO:create_schema", kwlist, &db, &s))
        return NULL;
    if (s == NULL && db != Py_None) { /* create_schema('name') on the connection itself */
        s = db;
        db = Py_None;
    }
    schema = ident_arg(s, "schema");
    if (schema == NULL || (h = handle_for(self, db)) == NULL)
        return NULL;
    if (pq_handle_settle(h) != 0)
        goto fail;
    PQ_WITHOUT_GIL(existed = pt_wh_schema_exists(h->wh, schema);
                   rc = existed < 0 ? existed : pt_wh_create_schema(h->wh, schema));
    if (rc < 0) {
        pq_raise_wh(h->wh, rc);
        goto fail;
    }
    Py_DECREF(h);
    return Py_BuildValue("{sssO}", "schema", schema, "created", existed ? Py_False : Py_True);
fail:
    Py_DECREF(h);
    return NULL;
}

/* The SQL type of a portable type name; NULL with pq.InvalidArgument. */
static const char *
sql_type(pq_handle *h, PyObject *name, const char *column)
{
    const char *t = PyUnicode_Check(name) ? PyUnicode_AsUTF8(name) : NULL;
    const char *aliases[][2] = {
        {"integer", "int"},        {"bigint", "int"},      {"str", "text"},
        {"string", "text"},        {"varchar", "text"},    {"double", "float"},
        {"real", "float"},         {"decimal", "numeric"}, {"boolean", "bool"},
        {"datetime", "timestamp"}, {"jsonb", "json"},      {"blob", "bytes"},
        {"bytea", "bytes"},        {NULL, NULL},
    };
    const char *sql;

    for (size_t i = 0; t != NULL && aliases[i][0] != NULL; i++)
        if (strcasecmp(t, aliases[i][0]) == 0)
            t = aliases[i][1];
    sql = t != NULL ? pt_wh_sql_type(h->wh, t) : NULL;
    if (sql == NULL)
        PyErr_Format(pq_bad_arg,
                     "column %s: unknown type %R (use int, float, numeric, text, bool, date, "
                     "time, timestamp, timestamptz, json or bytes)",
                     column, name);
    return sql;
}

/* fields: {"col": "type"}, [("col", "type")], or [{"name": "col", "type": "type"}]. Appends the
 * column definitions. */
static int
field_defs(pq_handle *h, PyObject *fields, const char *pk, pt_buf *sql, int *pk_seen)
{
    PyObject *items = NULL, *seq = NULL;
    Py_ssize_t i, n;
    int rc = -1;

    items = PyDict_Check(fields) ? PyDict_Items(fields) : Py_NewRef(fields);
    seq = items != NULL && !PyUnicode_Check(fields) ? PySequence_Tuple(items) : NULL;
    if (seq == NULL || (n = PyTuple_GET_SIZE(seq)) == 0) {
        PyErr_Clear();
        PyErr_SetString(pq_bad_arg, "fields must be a non-empty dict {column: type} or a list of "
                                    "(column, type) pairs or {'name': ..., 'type': ...} dicts");
        goto done;
    }
    for (i = 0; i < n; i++) {
        PyObject *f = PyTuple_GET_ITEM(seq, i); /* borrowed */
        PyObject *name = NULL, *type = NULL;    /* borrowed */
        const char *col, *t;
        if (PyDict_Check(f)) {
            name = PyDict_GetItemString(f, "name");
            type = PyDict_GetItemString(f, "type");
        } else if (PyTuple_Check(f) && PyTuple_GET_SIZE(f) == 2) {
            name = PyTuple_GET_ITEM(f, 0);
            type = PyTuple_GET_ITEM(f, 1);
        }
        if (name == NULL || type == NULL) {
            PyErr_Format(pq_bad_arg, "field %zd must name a column and its type", i + 1);
            goto done;
        }
        col = ident_arg(name, "column");
        t = col != NULL ? sql_type(h, type, col) : NULL;
        if (t == NULL)
            goto done;
        if (i > 0)
            pt_buf_puts(sql, ", ");
        quote(sql, col);
        pt_buf_putc(sql, ' ');
        pt_buf_puts(sql, t);
        if (pk != NULL && strcmp(pk, col) == 0) {
            pt_buf_puts(sql, " PRIMARY KEY");
            *pk_seen = 1;
        }
    }
    rc = 0;
done:
    Py_XDECREF(seq);
    Py_XDECREF(items);
    return rc;
}

static PyObject *
conn_create_table(conn_object *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"db", "schema", "table", "fields", "pk", NULL};
    PyObject *db = Py_None, *s = NULL, *t = NULL, *fields = NULL, *pkobj = Py_None;
    const char *schema, *table, *pk = NULL;
    pq_handle *h = NULL;
    PyObject *out = NULL;
    int existed, rc, pk_seen = 0;
    pt_buf sql;

    pt_buf_init(&sql, 0);
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOO|O:create_table", kwlist, &db, &s, &t,
                                     &fields, &pkobj))
        return NULL;
    schema = ident_arg(s, "schema");
    table = schema != NULL ? ident_arg(t, "table") : NULL;
    if (table == NULL || (pkobj != Py_None && (pk = ident_arg(pkobj, "pk column")) == NULL))
        return NULL;
    h = handle_for(self, db);
    if (h == NULL || pq_handle_settle(h) != 0)
        goto done;
    pt_buf_puts(&sql, "CREATE TABLE IF NOT EXISTS ");
    quote_table(&sql, schema, table);
    pt_buf_puts(&sql, " (");
    if (field_defs(h, fields, pk, &sql, &pk_seen) != 0)
        goto done;
    pt_buf_putc(&sql, ')');
    if (pk != NULL && !pk_seen) {
        PyErr_Format(pq_bad_arg, "pk %R is not one of the fields", pkobj);
        goto done;
    }
    if (sql_ready(&sql) != 0)
        goto done;
    PQ_WITHOUT_GIL(rc = pt_wh_create_schema(h->wh, schema);
                   existed = rc == 0 ? pt_wh_table_exists(h->wh, schema, table) : rc);
    if (existed < 0) {
        pq_raise_wh(h->wh, existed);
        goto done;
    }
    if (exec_simple(h, pt_buf_cstr(&sql)) != 0)
        goto done;
    out = Py_BuildValue("{sssssO}", "schema", schema, "table", table, "created",
                        existed ? Py_False : Py_True);
done:
    pt_buf_free(&sql);
    Py_XDECREF(h);
    return out;
}

/* The portable type write() gives a new column, from a sample value. */
static const char *
infer_type(PyObject *v)
{
    if (PyBool_Check(v))
        return "bool";
    if (PyLong_Check(v))
        return "int";
    if (PyFloat_Check(v))
        return "float";
    if (PyBytes_Check(v) || PyByteArray_Check(v))
        return "bytes";
    if (PyDict_Check(v) || PyList_Check(v) || PyTuple_Check(v))
        return "json";
    if (strcmp(Py_TYPE(v)->tp_name, "datetime.datetime") == 0)
        return "timestamp";
    if (strcmp(Py_TYPE(v)->tp_name, "datetime.date") == 0)
        return "date";
    if (strcmp(Py_TYPE(v)->tp_name, "decimal.Decimal") == 0)
        return "numeric";
    return "text";
}

/* Finds name in names (case-insensitively on SQLite, where names are). */
static int
has_column(char **names, size_t n, const char *name, int nocase)
{
    for (size_t i = 0; i < n; i++)
        if (nocase ? strcasecmp(names[i], name) == 0 : strcmp(names[i], name) == 0)
            return 1;
    return 0;
}

/* write(schema, table, records, pk='id'): creates the schema, the table and missing columns,
 * then inserts every record, replacing the whole row when its key exists, WRITE_BATCH
 * records per transaction. */
static PyObject *
conn_write(conn_object *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"schema", "table", "records", "pk", "db", NULL};
    PyObject *s = NULL, *t = NULL, *records = NULL, *pkobj = NULL, *db = Py_None;
    PyObject *seq = NULL, *cols = NULL, *added = NULL, *keep = NULL, *out = NULL;
    PyObject *samples = NULL; /* column -> first non-None value */
    const char *schema, *table, *pk = NULL;
    char **existing = NULL;
    size_t nexisting = 0, i, ncols;
    pq_handle *h = NULL;
    pt_wh_stmt *stmt = NULL;
    pt_value *vals = NULL;
    pt_buf sql;
    Py_ssize_t nrec, r, pos;
    PyObject *k, *v; /* borrowed */
    int exists, nocase, in_txn = 0, created = 0;
    long long batches = 0;

    pt_buf_init(&sql, 0);
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOO|OO:write", kwlist, &s, &t, &records, &pkobj,
                                     &db))
        return NULL;
    schema = ident_arg(s, "schema");
    table = schema != NULL ? ident_arg(t, "table") : NULL;
    if (table == NULL)
        return NULL;
    if (pkobj == NULL)
        pk = "id";
    else if (pkobj != Py_None && (pk = ident_arg(pkobj, "pk column")) == NULL)
        return NULL;
    /* A DataFrame: its records. A single dict: one record. */
    if (PyObject_HasAttrString(records, "to_dict") && !PyDict_Check(records))
        records = PyObject_CallMethod(records, "to_dict", "s", "records");
    else if (PyDict_Check(records))
        records = PyTuple_Pack(1, records);
    else
        Py_INCREF(records);
    if (records == NULL)
        return NULL;
    /* A tuple of the records, never the caller's list: converting a value may run Python code,
     * which could empty the list while we go through it. */
    seq = PyUnicode_Check(records) || PyBytes_Check(records) ? NULL : PySequence_Tuple(records);
    if (seq == NULL) {
        PyErr_Clear();
        PyErr_SetString(pq_bad_arg, "records must be a list of dicts");
        goto done;
    }
    nrec = PyTuple_GET_SIZE(seq);
    samples = PyDict_New();
    keep = PyList_New(0);
    added = PyList_New(0);
    if (samples == NULL || keep == NULL || added == NULL)
        goto done;
    for (r = 0; r < nrec; r++) {
        PyObject *rec = PyTuple_GET_ITEM(seq, r); /* borrowed */
        if (!PyDict_Check(rec)) {
            PyErr_Format(pq_bad_arg, "record %zd is a %.100s, not a dict", r + 1,
                         Py_TYPE(rec)->tp_name);
            goto done;
        }
        if (check_record(rec, 1) != 0)
            goto done;
        if (pk != NULL && PyDict_GetItemString(rec, pk) == NULL) {
            PyErr_Format(pq_bad_arg, "record %zd has no key column '%s'", r + 1, pk);
            goto done;
        }
        pos = 0;
        while (PyDict_Next(rec, &pos, &k, &v)) {
            PyObject *cur = PyDict_GetItem(samples, k); /* borrowed */
            if ((cur == NULL || cur == Py_None) && PyDict_SetItem(samples, k, v) != 0)
                goto done;
        }
    }
    h = handle_for(self, db);
    if (h == NULL || pq_handle_settle(h) != 0)
        goto done;
    nocase = strcmp(pt_wh_kind(h->wh), "sqlite") == 0;
    PQ_WITHOUT_GIL(exists = pt_wh_create_schema(h->wh, schema);
                   if (exists == 0) exists = pt_wh_table_exists(h->wh, schema, table));
    if (exists < 0) {
        pq_raise_wh(h->wh, exists);
        goto done;
    }
    if (!exists) {
        if (PyDict_GET_SIZE(samples) == 0) {
            PyErr_SetString(pq_bad_arg, "no records to create the table from");
            goto done;
        }
        pt_buf_puts(&sql, "CREATE TABLE IF NOT EXISTS ");
        quote_table(&sql, schema, table);
        pt_buf_puts(&sql, " (");
        pos = 0;
        i = 0;
        while (PyDict_Next(samples, &pos, &k, &v)) {
            const char *col = PyUnicode_AsUTF8(k);
            if (i++ > 0)
                pt_buf_puts(&sql, ", ");
            quote(&sql, col);
            pt_buf_putc(&sql, ' ');
            pt_buf_puts(&sql, pt_wh_sql_type(h->wh, infer_type(v)));
            if (pk != NULL && strcmp(col, pk) == 0)
                pt_buf_puts(&sql, " PRIMARY KEY");
        }
        pt_buf_putc(&sql, ')');
        if (sql_ready(&sql) != 0 || exec_simple(h, pt_buf_cstr(&sql)) != 0)
            goto done;
        created = 1;
    }
    {
        int rc;
        PQ_WITHOUT_GIL(rc = pt_wh_columns(h->wh, schema, table, &existing, &nexisting));
        if (rc != 0) {
            pq_raise_wh(h->wh, rc);
            goto done;
        }
    }
    /* Missing columns. */
    pos = 0;
    while (PyDict_Next(samples, &pos, &k, &v)) {
        const char *col = PyUnicode_AsUTF8(k);
        if (has_column(existing, nexisting, col, nocase))
            continue;
        pt_buf_reset(&sql);
        pt_buf_puts(&sql, "ALTER TABLE ");
        quote_table(&sql, schema, table);
        pt_buf_puts(&sql, " ADD COLUMN ");
        quote(&sql, col);
        pt_buf_putc(&sql, ' ');
        pt_buf_puts(&sql, pt_wh_sql_type(h->wh, infer_type(v)));
        if (sql_ready(&sql) != 0 || exec_simple(h, pt_buf_cstr(&sql)) != 0 ||
            PyList_Append(added, k) != 0)
            goto done;
    }
    free(existing);
    existing = NULL;
    {
        int rc;
        PQ_WITHOUT_GIL(rc = pt_wh_columns(h->wh, schema, table, &existing, &nexisting));
        if (rc != 0) {
            pq_raise_wh(h->wh, rc);
            goto done;
        }
    }
    ncols = nexisting;
    if (ncols >= PT_WH_MAX_PARAMS) {
        PyErr_SetString(pq_bad_arg, "table has too many columns");
        goto done;
    }
    /* One statement for every record: all columns, so that a row is replaced whole. */
    pt_buf_reset(&sql);
    pt_buf_puts(&sql, "INSERT INTO ");
    quote_table(&sql, schema, table);
    pt_buf_puts(&sql, " (");
    for (i = 0; i < ncols; i++) {
        if (i > 0)
            pt_buf_puts(&sql, ", ");
        quote(&sql, existing[i]);
    }
    pt_buf_puts(&sql, ") VALUES (");
    placeholders(&sql, ncols);
    pt_buf_putc(&sql, ')');
    if (pk != NULL) {
        int any = 0;
        pt_buf_puts(&sql, " ON CONFLICT (");
        quote(&sql, pk);
        pt_buf_puts(&sql, ") DO ");
        for (i = 0; i < ncols; i++) {
            if (strcmp(existing[i], pk) == 0)
                continue;
            pt_buf_puts(&sql, any ? ", " : "UPDATE SET ");
            quote(&sql, existing[i]);
            pt_buf_puts(&sql, " = excluded.");
            quote(&sql, existing[i]);
            any = 1;
        }
        if (!any)
            pt_buf_puts(&sql, "NOTHING");
    }
    cols = PyList_New((Py_ssize_t)ncols);
    vals = PyMem_Calloc(ncols > 0 ? ncols : 1, sizeof *vals);
    if (cols == NULL || vals == NULL || sql_ready(&sql) != 0)
        goto done;
    for (i = 0; i < ncols; i++) {
        PyObject *name = PyUnicode_FromString(existing[i]);
        if (name == NULL)
            goto done;
        PyList_SET_ITEM(cols, (Py_ssize_t)i, name); /* steals */
    }
    {
        int rc;
        PQ_WITHOUT_GIL(rc = pt_wh_prepare(h->wh, pt_buf_cstr(&sql), &stmt));
        if (rc != 0) {
            pq_raise_wh(h->wh, rc);
            goto done;
        }
    }
    for (r = 0; r < nrec; r++) {
        /* The record as it is now, copied: the copy (in keep until the row is written) holds
         * the values whose text is bound while the GIL is released, whatever happens to the
         * caller's dict meanwhile. Its keys only serve to look columns up. */
        PyObject *rec = PyDict_Copy(PyTuple_GET_ITEM(seq, r));
        int rc;
        if (rec == NULL || PyList_Append(keep, rec) != 0) {
            Py_XDECREF(rec);
            goto done;
        }
        Py_DECREF(rec); /* keep holds it */
        if (!in_txn) {
            if (exec_simple(h, "BEGIN") != 0)
                goto done;
            in_txn = 1;
            batches++;
        }
        for (i = 0; i < ncols; i++) {
            PyObject *val = PyDict_GetItem(rec, PyList_GET_ITEM(cols, (Py_ssize_t)i));
            if (val == NULL && nocase) { /* SQLite: the record may spell it differently */
                pos = 0;
                while (PyDict_Next(rec, &pos, &k, &v)) {
                    const char *name = PyUnicode_Check(k) ? PyUnicode_AsUTF8(k) : NULL;
                    if (name == NULL)
                        PyErr_Clear(); /* not a column name (the dict changed since): skip */
                    else if (strcasecmp(name, existing[i]) == 0)
                        val = v;
                }
            }
            if (pq_to_value(val != NULL ? val : Py_None, &vals[i], keep) != 0)
                goto done;
        }
        PQ_WITHOUT_GIL(rc = pt_wh_stmt_run(stmt, vals, ncols));
        if (rc != 0) {
            char msg[600];
            snprintf(msg, sizeof msg, "record %zd: %s", r + 1, pt_wh_errmsg(h->wh));
            PyErr_SetString(rc == PT_EUNAVAIL ? pq_unavailable : pq_sql_error, msg);
            goto done;
        }
        PyList_SetSlice(keep, 0, PyList_GET_SIZE(keep), NULL);
        if ((r + 1) % WRITE_BATCH == 0 || r + 1 == nrec) {
            in_txn = 0;
            if (exec_simple(h, "COMMIT") != 0)
                goto done;
        }
    }
    out = Py_BuildValue("{sssssnsLsOsO}", "schema", schema, "table", table, "rows", nrec, "batches",
                        batches, "table_created", created ? Py_True : Py_False, "columns_added",
                        added);
done:
    if (stmt != NULL) /* PostgreSQL: DEALLOCATE on the server */
        PQ_WITHOUT_GIL(pt_wh_stmt_free(stmt));
    if (in_txn)
        rollback_keeping_error(h);
    PyMem_Free(vals);
    free(existing);
    pt_buf_free(&sql);
    Py_XDECREF(h);
    Py_XDECREF(cols);
    Py_XDECREF(samples);
    Py_XDECREF(keep);
    Py_XDECREF(added);
    Py_XDECREF(seq);
    Py_XDECREF(records);
    return out;
}

/* ---- the end of a request (design note 5) ------------------------------------------------ */

/* Rolls back the transaction h has open, if any. Returns 0, or -1 when the connection could
 * not be brought back to no transaction (the caller drops it). */
static int
end_transaction(pq_handle *h, const char *script_name)
{
    const char *id = pt_py_current_request_id; /* "" for a webhook event */
    pt_wh_cursor *cur = NULL;
    int rc, open;

    if (h->wh == NULL)
        return 0;
    if (h->active != NULL && pq_handle_settle(h) != 0) {
        PyErr_Clear();
        if (h->active != NULL)
            return 0; /* being read by another thread, which has the connection now */
    }
    if (!pt_wh_in_transaction(h->wh))
        return 0;
    PQ_WITHOUT_GIL(rc = pt_wh_exec(h->wh, "ROLLBACK", NULL, 0, &cur); pt_wh_cursor_free(cur);
                   open = pt_wh_in_transaction(h->wh));
    h->tz[0] = '\0'; /* a time zone set in the transaction is gone with it */
    if (rc != 0 || open) {
        pt_log_error("%s%s%sscript %s left a transaction open on database connection '%s', "
                     "which could not be rolled back (%s): closing the connection",
                     id[0] ? "request " : "", id, id[0] ? ": " : "", script_name, pt_wh_name(h->wh),
                     rc != 0 ? pt_wh_errmsg(h->wh) : "still in a transaction");
        return -1;
    }
    pt_log_warn("%s%s%sscript %s left a transaction open on database connection '%s'; rolled "
                "back",
                id[0] ? "request " : "", id, id[0] ? ": " : "", script_name, pt_wh_name(h->wh));
    return 0;
}

void
pt_py_pq_end_request(const char *script_name)
{
    PyObject *type, *value, *tb, *tdict, *handles, *list = NULL;
    Py_ssize_t i;

    PyErr_Fetch(&type, &value, &tb);
    tdict = PyThreadState_GetDict();                                            /* borrowed */
    handles = tdict != NULL ? PyDict_GetItemString(tdict, "pq.handles") : NULL; /* borrowed */
    if (handles != NULL)
        list = PyDict_Values(handles); /* settling a list may run Python code: a snapshot */
    for (i = 0; list != NULL && i < PyList_GET_SIZE(list); i++) {
        pq_handle *h = (pq_handle *)PyList_GET_ITEM(list, i); /* borrowed from list */
        if (end_transaction(h, script_name != NULL ? script_name : "?") == 0)
            continue;
        /* Dropped (closed once the list lets go): the thread's next call opens a fresh one. */
        if (PyDict_GetItem(handles, h->name) == (PyObject *)h &&
            PyDict_DelItem(handles, h->name) != 0)
            PyErr_Clear();
    }
    Py_XDECREF(list);
    PyErr_Clear();
    PyErr_Restore(type, value, tb);
}

/* ---- Connection -------------------------------------------------------------------------- */

static void
conn_dealloc(conn_object *self)
{
    Py_XDECREF(self->name);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
conn_repr(conn_object *self)
{
    return PyUnicode_FromFormat("<pq connection %R>", self->name);
}

#define METHOD(name, fn, doc)                                                                      \
    {                                                                                              \
        name, (PyCFunction)(void (*)(void))fn, METH_VARARGS | METH_KEYWORDS, doc                   \
    }

static PyMethodDef conn_methods[] = {
    METHOD("fetch", conn_fetch,
           "fetch(db, schema=None, table=None, query=None, params=None, df=False, "
           "fillna_with=None, fillnat_with=None, enable_python_types=True, "
           "enable_datetime_as_string=True, tz='UTC') -> rows (a list of dicts)"),
    METHOD("insert", conn_insert, "insert(db, schema, table, record) -> {'inserted', 'id'}"),
    METHOD("update", conn_update, "update(db, schema, table, pk_value, record) -> {'updated'}"),
    METHOD("upsert", conn_upsert,
           "upsert(db, schema, table, pk_value, record) -> {'action', 'id'}"),
    METHOD("delete", conn_delete, "delete(db, schema, table, pk_value) -> {'deleted'}"),
    METHOD("execute", conn_execute, "execute(db, query, params=None) -> {'rowcount'[, 'rows']}"),
    METHOD("write", conn_write, "write(schema, table, records, pk='id') -> {'rows', ...}"),
    METHOD("create_schema", conn_create_schema, "create_schema(db, schema) -> {'created'}"),
    METHOD("create_table", conn_create_table,
           "create_table(db, schema, table, fields, pk=None) -> {'created'}"),
    {NULL, NULL, 0, NULL},
};

static PyTypeObject conn_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "pq.Connection",
    .tp_basicsize = sizeof(conn_object),
    .tp_dealloc = (destructor)conn_dealloc,
    .tp_repr = (reprfunc)conn_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A warehouse connection returned by pq.dbconnect().",
    .tp_methods = conn_methods,
};

/* ---- module functions -------------------------------------------------------------------- */

static PyObject *
pq_dbconnect(PyObject *self, PyObject *args)
{
    PyObject *name = NULL;
    pq_handle *h;
    conn_object *c;

    (void)self;
    if (!PyArg_ParseTuple(args, "|U:dbconnect", &name))
        return NULL;
    name = name != NULL ? Py_NewRef(name) : PyUnicode_FromString("dw");
    if (name == NULL)
        return NULL;
    /* Open it now: an unknown name fails here, where the script names it. */
    h = pq_handle_get(name);
    if (h == NULL) {
        Py_DECREF(name);
        return NULL;
    }
    Py_DECREF(h);
    c = PyObject_New(conn_object, &conn_type);
    if (c == NULL) {
        Py_DECREF(name);
        return NULL;
    }
    c->name = name; /* takes the reference */
    return (PyObject *)c;
}

/* list_databases() -> [{"name": "dw", "kind": "sqlite"}, ...] (never the DSN) */
static PyObject *
pq_list_databases(PyObject *self, PyObject *args)
{
    pt_connection *list = NULL;
    pt_store *st = NULL;
    PyObject *out = NULL, *item;
    size_t n = 0, i;
    char err[256] = "";
    int rc;

    (void)self;
    (void)args;
    Py_BEGIN_ALLOW_THREADS rc = pt_store_open(pt_py_datadir, &st, err, sizeof err);
    if (rc == 0)
        rc = pt_store_connection_list(st, &list, &n);
    Py_END_ALLOW_THREADS if (rc != 0)
    {
        PyErr_Format(pq_error, "cannot list databases: %s", st != NULL ? pt_store_errmsg(st) : err);
        goto done;
    }
    out = PyList_New(0);
    item = out != NULL ? Py_BuildValue("{ssss}", "name", "dw", "kind", "sqlite") : NULL;
    if (item == NULL || PyList_Append(out, item) != 0)
        goto fail;
    Py_DECREF(item);
    for (i = 0; i < n; i++) {
        if (strcmp(list[i].name, "dw") == 0)
            continue;
        item = Py_BuildValue("{ssss}", "name", list[i].name, "kind", list[i].kind);
        if (item == NULL || PyList_Append(out, item) != 0)
            goto fail;
        Py_DECREF(item);
    }
    goto done;
fail:
    Py_XDECREF(item);
    Py_CLEAR(out);
done:
    pt_store_connections_free(list, n);
    pt_store_close(st);
    return out;
}

static PyMethodDef pq_methods[] = {
    {"dbconnect", pq_dbconnect, METH_VARARGS,
     "dbconnect(name='dw') -> a connection to a warehouse database"},
    {"list_databases", pq_list_databases, METH_NOARGS,
     "list_databases() -> [{'name': ..., 'kind': ...}] of the warehouse connections"},
    {"get_secret", pt_py_pq_get_secret, METH_VARARGS,
     "get_secret(name) -> str, from the encrypted secret store"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef pq_def = {
    PyModuleDef_HEAD_INIT,
    "pq",
    "Portico's data API for handler scripts.",
    -1,
    pq_methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

static PyObject *
new_error(PyObject *m, const char *name, PyObject *base, PyObject *base2)
{
    PyObject *bases = base2 != NULL ? PyTuple_Pack(2, base, base2) : Py_NewRef(base);
    PyObject *e;
    char full[64];

    if (bases == NULL)
        return NULL;
    snprintf(full, sizeof(full), "pq.%s", name);
    e = PyErr_NewException(full, bases, NULL);
    Py_DECREF(bases);
    if (e == NULL || PyModule_AddObjectRef(m, name, e) != 0) {
        Py_XDECREF(e);
        return NULL;
    }
    return e;
}

PyObject *
pt_py_pq_module(void)
{
    PyObject *m;

    if (PyType_Ready(&conn_type) != 0 || PyType_Ready(&handle_type) != 0 ||
        pt_py_pq_rows_setup() != 0)
        return NULL;
    if (s_utc == NULL && (s_utc = PyUnicode_InternFromString("UTC")) == NULL)
        return NULL;
    m = PyModule_Create(&pq_def);
    if (m == NULL)
        return NULL;
    if ((pq_error = new_error(m, "Error", PyExc_Exception, NULL)) == NULL ||
        (pq_unknown_conn = new_error(m, "UnknownConnection", pq_error, PyExc_KeyError)) == NULL ||
        (pq_not_found = new_error(m, "TableNotFound", pq_error, NULL)) == NULL ||
        (pq_sql_error = new_error(m, "SQLError", pq_error, NULL)) == NULL ||
        (pq_unavailable = new_error(m, "DatabaseUnavailable", pq_error, NULL)) == NULL ||
        (pq_bad_arg = new_error(m, "InvalidArgument", pq_error, PyExc_ValueError)) == NULL)
        goto fail;
    if (PyModule_AddStringConstant(m, "DW_NAME", "dw") != 0 ||
        PyModule_AddObjectRef(m, "Connection", (PyObject *)&conn_type) != 0 ||
        PyModule_AddObjectRef(m, "Rows", (PyObject *)&pq_rows_type) != 0)
        goto fail;
    return m;
fail:
    Py_DECREF(m);
    return NULL;
}
