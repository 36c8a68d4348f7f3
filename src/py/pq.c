/* pq.c - the `pq` module handler scripts use to reach the warehouse (DESIGN §3): the module and
 * its pq.Error family, dbconnect and the Connection type, each thread's database handles, and
 * what happens to them when a request ends. The Connection's calls live in pq_read.c (fetch,
 * execute) and pq_write.c (insert, update, upsert, delete, create_schema, create_table, write);
 * their arguments are bound in pq_args.c. Below them: the lazy row list (pq_rows.c), the
 * handles (pq_handle.c) and value conversion (pq_value.c), none of which calls back up. */

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
 * 2. A Connection names a database connection (or, for dbconnect(dict), a PostgreSQL DSN made
 *    from the dict) and each call's first argument names a database inside it, as in Peliqan:
 *    the connection's own name, or the name of the database the server reports. Any other name
 *    is an error (pq.UnknownDatabase), never a read of another connection.
 *
 * 3. fetch() runs its statement right away, so errors (unknown table, bad SQL) are raised by
 *    fetch() itself where the handler can catch them, and returns a lazy row list (pq_rows.c):
 *    its rows are read into Python objects on first touch, or written out in C from the
 *    cursor when the handler returns the list unchanged (response.c).
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

#include <sodium.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"

PyObject *pt_pq_error;        /* pq.Error */
PyObject *pt_pq_unknown_conn; /* pq.UnknownConnection(Error, KeyError) */
PyObject *pt_pq_not_found;    /* pq.TableNotFound(Error) */
PyObject *pt_pq_sql_error;    /* pq.SQLError(Error) */
PyObject *pt_pq_unavailable;  /* pq.DatabaseUnavailable(Error) */
PyObject *pt_pq_bad_arg;      /* pq.InvalidArgument(Error, ValueError) */
PyObject *pt_pq_unknown_db;   /* pq.UnknownDatabase(Error, KeyError) */
/* pq.Cancelled(BaseException): the client left. Not an Exception, as asyncio.CancelledError,
 * so that a script's `except Exception` does not swallow it. */
PyObject *pt_pq_cancelled;

/* cancelled() -> bool: whether the client of this request has left. */
static PyObject *
pq_is_cancelled(PyObject *self, PyObject *args)
{
    (void)self;
    (void)args;
    return PyBool_FromLong(pt_py_cancelled());
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
    if (h->active != NULL && pt_pq_handle_settle(h) != 0) {
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
conn_dealloc(pq_conn *self)
{
    Py_XDECREF(self->name);
    Py_XDECREF(self->label);
    Py_XDECREF(self->dbname);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
conn_repr(pq_conn *self)
{
    return PyUnicode_FromFormat("<pq connection %R>", self->label);
}

#define METHOD(name, fn, doc)                                                                      \
    {                                                                                              \
        name, (PyCFunction)(void (*)(void))fn, METH_VARARGS | METH_KEYWORDS, doc                   \
    }

static PyMethodDef conn_methods[] = {
    METHOD("fetch", pt_pq_conn_fetch,
           "fetch(db_name, schema_name=None, table_name=None, query=None, df=False, "
           "fillna_with=None, fillnat_with=None, enable_python_types=True, "
           "enable_datetime_as_string=True, tz='UTC', params=None) -> rows (a list of dicts), "
           "or a DataFrame with df=True"),
    METHOD("insert", pt_pq_conn_insert,
           "insert(db_name, schema_name, table_name, *records, **columns) -> {'inserted', 'id'}"),
    METHOD("update", pt_pq_conn_update,
           "update(db_name, schema_name, table_name, pk, *records, **columns) -> {'updated'}"),
    METHOD("upsert", pt_pq_conn_upsert,
           "upsert(db_name, schema_name, table_name, pk, *records, **columns) -> "
           "{'action': 'inserted'|'updated'|'unchanged', 'id'}"),
    METHOD("delete", pt_pq_conn_delete,
           "delete(db_name, schema_name, table_name, pk) -> {'deleted'}"),
    METHOD("execute", pt_pq_conn_execute,
           "execute(db_name, query, params=None) -> {'rowcount'[, 'rows']}"),
    METHOD("write", pt_pq_conn_write,
           "write(schema_name, table_name, records, object_schema=None, pk=None, db_name=None, "
           "transformer_mode='lossless', decimal_separator='.') -> {'rows', ...}"),
    METHOD("create_schema", pt_pq_conn_create_schema,
           "create_schema(db_name, schema_name) -> {'created'}"),
    METHOD("create_table", pt_pq_conn_create_table,
           "create_table(db_name, schema_name, table_name, fields=None, pk=None) -> {'created'}"),
    {NULL, NULL, 0, NULL},
};

static PyTypeObject conn_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "pq.Connection",
    .tp_basicsize = sizeof(pq_conn),
    .tp_dealloc = (destructor)conn_dealloc,
    .tp_repr = (reprfunc)conn_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A warehouse connection returned by pq.dbconnect().",
    .tp_methods = conn_methods,
};

/* ---- module functions -------------------------------------------------------------------- */

/* libpq's names for the properties of dbconnect(dict), with the spellings Peliqan users write
 * (database, username). */
static const char *const dsn_keys[][2] = {
    {"host", "host"},
    {"hostaddr", "hostaddr"},
    {"port", "port"},
    {"database", "dbname"},
    {"dbname", "dbname"},
    {"db", "dbname"},
    {"user", "user"},
    {"username", "user"},
    {"password", "password"},
    {"sslmode", "sslmode"},
    {"sslrootcert", "sslrootcert"},
    {"connect_timeout", "connect_timeout"},
    {"options", "options"},
    {"application_name", "application_name"},
    {NULL, NULL},
};

/* The handle name of dbconnect(dict): DSN_MARK and a libpq connection string of the dict's
 * properties (values quoted: ' and \ escaped). *dbname gets the database it names, or NULL.
 * New references; NULL with pq.InvalidArgument for a property libpq does not know. */
static PyObject *
dsn_name(PyObject *props, PyObject **dbname)
{
    Py_ssize_t pos = 0;
    PyObject *k, *v, *out = NULL; /* k, v borrowed */
    pt_buf b;

    *dbname = NULL;
    pt_buf_init(&b, 0);
    pt_buf_putc(&b, DSN_MARK);
    while (PyDict_Next(props, &pos, &k, &v)) {
        const char *key = PyUnicode_Check(k) ? PyUnicode_AsUTF8(k) : NULL, *lib = NULL, *val;
        PyObject *text;
        if (key == NULL) {
            PyErr_Clear();
            PyErr_SetString(pt_pq_bad_arg, "dbconnect(dict): property names must be str");
            goto fail;
        }
        for (size_t i = 0; dsn_keys[i][0] != NULL && lib == NULL; i++)
            if (strcmp(key, dsn_keys[i][0]) == 0)
                lib = dsn_keys[i][1];
        if (lib == NULL) {
            if (strcmp(key, "type") == 0 || strcmp(key, "name") == 0)
                continue; /* what kind of connection it is: PostgreSQL is the one there is */
            PyErr_Format(pt_pq_bad_arg,
                         "dbconnect(dict): unknown property %R (use host, port, database, user, "
                         "password, sslmode, connect_timeout)",
                         k);
            goto fail;
        }
        if (v == Py_None)
            continue;
        text = PyObject_Str(v);
        val = text != NULL ? PyUnicode_AsUTF8(text) : NULL;
        if (val == NULL) {
            Py_XDECREF(text);
            goto fail;
        }
        if (strcmp(lib, "dbname") == 0)
            Py_XSETREF(*dbname, Py_NewRef(text));
        pt_buf_printf(&b, "%s%s='", b.len > 1 ? " " : "", lib);
        for (; *val != '\0'; val++) {
            if (*val == '\'' || *val == '\\')
                pt_buf_putc(&b, '\\');
            pt_buf_putc(&b, *val);
        }
        pt_buf_putc(&b, '\'');
        Py_DECREF(text);
    }
    if (pt_pq_sql_ready(&b) != 0)
        goto fail;
    out = PyUnicode_FromStringAndSize(b.data, (Py_ssize_t)b.len);
    sodium_memzero(b.data, b.len); /* it holds the password */
fail:
    if (out == NULL)
        Py_CLEAR(*dbname);
    pt_buf_free(&b);
    return out;
}

/* dbconnect(connection) -> Connection. connection: the name of a warehouse connection (the
 * built-in one is pq.DW_NAME), or a dict of PostgreSQL connection properties. The connection is
 * opened now, so that an unknown name fails where the script names it. */
static PyObject *
pq_dbconnect(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static const pq_argspec specs[] = {{"connection", NULL}};
    PyObject *a[1], *name = NULL, *label = NULL, *dbname = NULL;
    pq_handle *h = NULL;
    pq_conn *c = NULL;

    (void)self;
    if (pt_pq_bind_args("dbconnect", args, kwargs, specs, 1, a, NULL, NULL) != 0)
        return NULL;
    if (a[0] == NULL || a[0] == Py_None ||
        (PyUnicode_Check(a[0]) && PyUnicode_GET_LENGTH(a[0]) == 0)) {
        PyErr_SetString(pt_pq_bad_arg, "dbconnect() needs a connection: its name (e.g. "
                                       "pq.dbconnect(pq.DW_NAME)) or a dict of connection "
                                       "properties");
        return NULL;
    }
    if (PyDict_Check(a[0])) {
        name = dsn_name(a[0], &dbname);
        if (name == NULL)
            return NULL;
        label = dbname != NULL ? PyUnicode_FromFormat("dbconnect(dict) to %U", dbname)
                               : PyUnicode_FromString("dbconnect(dict)");
    } else if (PyUnicode_Check(a[0])) {
        name = Py_NewRef(a[0]);
        label = Py_NewRef(a[0]);
    } else {
        PyErr_Format(pt_pq_bad_arg, "dbconnect() takes a connection name or a dict, not %.100s",
                     Py_TYPE(a[0])->tp_name);
        return NULL;
    }
    if (label == NULL || (h = pt_pq_handle_get(name)) == NULL)
        goto fail;
    if (dbname == NULL &&
        (dbname = PyUnicode_DecodeUTF8(pt_wh_dbname(h->wh), (Py_ssize_t)strlen(pt_wh_dbname(h->wh)),
                                       "replace")) == NULL)
        goto fail;
    c = PyObject_New(pq_conn, &conn_type);
    if (c == NULL)
        goto fail;
    c->name = name; /* each takes its reference */
    c->label = label;
    c->dbname = dbname;
    Py_DECREF(h);
    return (PyObject *)c;
fail:
    Py_XDECREF(h);
    Py_XDECREF(name);
    Py_XDECREF(label);
    Py_XDECREF(dbname);
    return NULL;
}

static PyMethodDef pq_methods[] = {
    {"dbconnect", (PyCFunction)(void (*)(void))pq_dbconnect, METH_VARARGS | METH_KEYWORDS,
     "dbconnect(connection) -> a connection to a warehouse database (a connection name, e.g. "
     "pq.DW_NAME, or a dict of PostgreSQL connection properties)"},
    {"get_secret", pt_py_pq_get_secret, METH_VARARGS,
     "get_secret(name) -> str, from the encrypted secret store"},
    {"cancelled", pq_is_cancelled, METH_NOARGS,
     "cancelled() -> True once the client of the running request has left (closed the "
     "connection, reset the stream): its answer would reach nobody"},
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

/* Creates pq.<name>(base[, base2]) and adds it to the module. A KeyError's str() is the repr of
 * its argument; pq's errors read as sentences, so those keep Exception's str(). New reference
 * (the module holds another) or NULL. */
static PyObject *
new_error(PyObject *m, const char *name, PyObject *base, PyObject *base2)
{
    PyObject *bases = base2 != NULL ? PyTuple_Pack(2, base, base2) : Py_NewRef(base);
    PyObject *dict = NULL, *str = NULL, *e = NULL;
    char full[64];

    if (bases == NULL)
        return NULL;
    if (base2 == PyExc_KeyError) {
        str = PyObject_GetAttrString(PyExc_Exception, "__str__");
        dict = str != NULL ? Py_BuildValue("{s:O}", "__str__", str) : NULL;
        if (dict == NULL)
            goto done;
    }
    snprintf(full, sizeof(full), "pq.%s", name);
    e = PyErr_NewException(full, bases, dict);
    if (e != NULL && PyModule_AddObjectRef(m, name, e) != 0)
        Py_CLEAR(e);
done:
    Py_XDECREF(dict);
    Py_XDECREF(str);
    Py_DECREF(bases);
    return e;
}

PyObject *
pt_py_pq_module(void)
{
    PyObject *m;

    if (PyType_Ready(&conn_type) != 0 || pt_pq_handle_setup() != 0 || pt_pq_value_setup() != 0 ||
        pt_py_pq_rows_setup() != 0)
        return NULL;
    if (pt_pq_read_setup() != 0)
        return NULL;
    m = PyModule_Create(&pq_def);
    if (m == NULL)
        return NULL;
    if ((pt_pq_error = new_error(m, "Error", PyExc_Exception, NULL)) == NULL ||
        (pt_pq_unknown_conn = new_error(m, "UnknownConnection", pt_pq_error, PyExc_KeyError)) ==
            NULL ||
        (pt_pq_not_found = new_error(m, "TableNotFound", pt_pq_error, NULL)) == NULL ||
        (pt_pq_sql_error = new_error(m, "SQLError", pt_pq_error, NULL)) == NULL ||
        (pt_pq_unavailable = new_error(m, "DatabaseUnavailable", pt_pq_error, NULL)) == NULL ||
        (pt_pq_bad_arg = new_error(m, "InvalidArgument", pt_pq_error, PyExc_ValueError)) == NULL ||
        (pt_pq_unknown_db = new_error(m, "UnknownDatabase", pt_pq_error, PyExc_KeyError)) == NULL ||
        (pt_pq_cancelled = new_error(m, "Cancelled", PyExc_BaseException, NULL)) == NULL)
        goto fail;
    if (PyModule_AddStringConstant(m, "DW_NAME", "dw") != 0 ||
        PyModule_AddObjectRef(m, "Connection", (PyObject *)&conn_type) != 0 ||
        PyModule_AddObjectRef(m, "Rows", (PyObject *)&pt_pq_rows_type) != 0)
        goto fail;
    return m;
fail:
    Py_DECREF(m);
    return NULL;
}
