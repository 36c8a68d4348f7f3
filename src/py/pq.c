/* pq.c - the `pq` module handler scripts use to reach the warehouse (DESIGN §3):
 * pq.dbconnect(name) -> Connection, Connection.fetch(...), pq.Error and its subclasses.
 *
 * Warehouse handles are opened once per process and connection name and kept; every call
 * runs with the GIL held, which serialises use of a handle between a worker's threads. */
#include "py/py_int.h"

#include <string.h>

#include "core/err.h"
#include "warehouse/wh.h"

static PyObject *pq_error;        /* pq.Error */
static PyObject *pq_unknown_conn; /* pq.UnknownConnection(Error, KeyError) */
static PyObject *pq_not_found;    /* pq.TableNotFound(Error) */
static PyObject *pq_sql_error;    /* pq.SQLError(Error) */
static PyObject *pq_unavailable;  /* pq.DatabaseUnavailable(Error) */

/* Open warehouse handles by connection name; values are capsules owning a pt_wh. */
static PyObject *handles;

static void
wh_capsule_free(PyObject *cap)
{
    pt_wh_close(PyCapsule_GetPointer(cap, "pt_wh"));
}

/* Returns the open handle for `name`, opening it on first use. NULL with pq.Error set. */
static pt_wh *
get_wh(const char *name)
{
    PyObject *cap = PyDict_GetItemString(handles, name); /* borrowed */
    if (cap != NULL)
        return PyCapsule_GetPointer(cap, "pt_wh");
    pt_wh *wh = NULL;
    char err[512] = "";
    int rc = pt_wh_open(pt_py_datadir, name, &wh, err, sizeof(err));
    if (rc == PT_ENOTFOUND) {
        PyErr_Format(pq_unknown_conn, "unknown database connection '%s'", name);
        return NULL;
    }
    if (rc != 0) {
        PyErr_Format(rc == PT_EUNAVAIL ? pq_unavailable : pq_error,
                     "cannot open database connection '%s': %s", name,
                     err[0] ? err : pt_strerror(rc));
        return NULL;
    }
    cap = PyCapsule_New(wh, "pt_wh", wh_capsule_free);
    if (cap == NULL || PyDict_SetItemString(handles, name, cap) != 0) {
        Py_XDECREF(cap);
        if (cap == NULL)
            pt_wh_close(wh);
        return NULL;
    }
    Py_DECREF(cap);
    return wh;
}

/* ---- Values ---------------------------------------------------------------------------- */

/* Converts a Python parameter to a pt_value; strings and bytes are borrowed from obj. */
static int
to_value(PyObject *obj, pt_value *v)
{
    if (obj == Py_None) {
        v->type = PT_V_NULL;
    } else if (PyBool_Check(obj)) {
        v->type = PT_V_BOOL;
        v->u.i = obj == Py_True;
    } else if (PyLong_Check(obj)) {
        v->type = PT_V_INT;
        v->u.i = PyLong_AsLongLong(obj);
        if (v->u.i == -1 && PyErr_Occurred())
            return -1;
    } else if (PyFloat_Check(obj)) {
        v->type = PT_V_FLOAT;
        v->u.f = PyFloat_AS_DOUBLE(obj);
    } else if (PyUnicode_Check(obj)) {
        Py_ssize_t n;
        v->type = PT_V_TEXT;
        v->u.s.p = PyUnicode_AsUTF8AndSize(obj, &n);
        if (v->u.s.p == NULL)
            return -1;
        v->u.s.n = (size_t)n;
    } else if (PyBytes_Check(obj)) {
        v->type = PT_V_BLOB;
        v->u.s.p = PyBytes_AS_STRING(obj);
        v->u.s.n = (size_t)PyBytes_GET_SIZE(obj);
    } else {
        PyErr_Format(pq_error, "cannot bind a parameter of type %.100s", Py_TYPE(obj)->tp_name);
        return -1;
    }
    return 0;
}

/* New reference for a warehouse value; NULL becomes `fillna` (borrowed) when given. */
static PyObject *
from_value(const pt_value *v, PyObject *fillna)
{
    switch (v->type) {
    case PT_V_NULL:
        return Py_NewRef(fillna != NULL ? fillna : Py_None);
    case PT_V_INT:
        return PyLong_FromLongLong(v->u.i);
    case PT_V_BOOL:
        return PyBool_FromLong((long)v->u.i);
    case PT_V_FLOAT:
        return PyFloat_FromDouble(v->u.f);
    case PT_V_TEXT:
        return PyUnicode_DecodeUTF8(v->u.s.p, (Py_ssize_t)v->u.s.n, "replace");
    case PT_V_BLOB:
        return PyBytes_FromStringAndSize(v->u.s.p, (Py_ssize_t)v->u.s.n);
    }
    Py_RETURN_NONE;
}

/* Raises the pq exception matching a warehouse error. */
static void
raise_wh(pt_wh *wh, int rc)
{
    PyObject *type = rc == PT_ENOTFOUND  ? pq_not_found
                     : rc == PT_EUNAVAIL ? pq_unavailable
                     : rc == PT_EDB      ? pq_sql_error
                                         : pq_error;
    const char *msg = pt_wh_errmsg(wh);
    PyErr_SetString(type, msg != NULL && msg[0] ? msg : pt_strerror(rc));
}

/* Runs sql and returns the rows as a list of dicts (column order kept). */
static PyObject *
run_query(pt_wh *wh, const char *sql, PyObject *params, PyObject *fillna)
{
    pt_value vals[64];
    PyObject *seq = NULL, *rows = NULL, *names = NULL;
    pt_wh_cursor *cur = NULL;
    size_t n = 0;

    if (params != NULL && params != Py_None) {
        if (PyDict_Check(params) || PyUnicode_Check(params)) {
            PyErr_SetString(pq_error, "params must be a list or tuple of values");
            return NULL;
        }
        seq = PySequence_Fast(params, "params must be a list or tuple of values");
        if (seq == NULL)
            return NULL;
        n = (size_t)PySequence_Fast_GET_SIZE(seq);
        if (n > sizeof(vals) / sizeof(vals[0])) {
            PyErr_SetString(pq_error, "too many params (at most 64)");
            goto fail;
        }
        for (size_t i = 0; i < n; i++)
            if (to_value(PySequence_Fast_GET_ITEM(seq, i), &vals[i]) != 0)
                goto fail;
    }
    int rc = pt_wh_exec(wh, sql, n > 0 ? vals : NULL, n, &cur);
    if (rc != 0) {
        raise_wh(wh, rc);
        goto fail;
    }
    size_t ncols = pt_wh_cursor_ncols(cur);
    if ((rows = PyList_New(0)) == NULL || (names = PyTuple_New((Py_ssize_t)ncols)) == NULL)
        goto fail;
    for (size_t i = 0; i < ncols; i++) {
        PyObject *name = PyUnicode_FromString(pt_wh_cursor_colname(cur, i));
        if (name == NULL)
            goto fail;
        PyUnicode_InternInPlace(&name);
        PyTuple_SET_ITEM(names, (Py_ssize_t)i, name); /* steals */
    }
    while ((rc = pt_wh_cursor_next(cur)) == 1) {
        PyObject *row = PyDict_New();
        if (row == NULL)
            goto fail;
        for (size_t i = 0; i < ncols; i++) {
            pt_value v;
            pt_wh_cursor_value(cur, i, &v);
            PyObject *o = from_value(&v, fillna);
            if (o == NULL || PyDict_SetItem(row, PyTuple_GET_ITEM(names, (Py_ssize_t)i), o)) {
                Py_XDECREF(o);
                Py_DECREF(row);
                goto fail;
            }
            Py_DECREF(o);
        }
        int arc = PyList_Append(rows, row);
        Py_DECREF(row);
        if (arc != 0)
            goto fail;
    }
    if (rc < 0) {
        raise_wh(wh, rc);
        goto fail;
    }
    pt_wh_cursor_free(cur);
    Py_XDECREF(seq);
    Py_DECREF(names);
    return rows;
fail:
    pt_wh_cursor_free(cur);
    Py_XDECREF(seq);
    Py_XDECREF(names);
    Py_XDECREF(rows);
    return NULL;
}

/* ---- Connection ------------------------------------------------------------------------ */

typedef struct {
    PyObject_HEAD PyObject *name; /* str: the connection dbconnect() was given */
} ConnObject;

static void
conn_dealloc(ConnObject *self)
{
    Py_XDECREF(self->name);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
conn_repr(ConnObject *self)
{
    return PyUnicode_FromFormat("<pq connection %R>", self->name);
}

/* fetch(db, schema=None, table=None, query=None, params=None, df=False, fillna_with=None,
 *       fillnat_with=None, enable_python_types=True, enable_datetime_as_string=True,
 *       tz='UTC') */
static PyObject *
conn_fetch(ConnObject *self, PyObject *args, PyObject *kwargs)
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
    PyObject *db = NULL, *schema = Py_None, *table = Py_None, *query = Py_None;
    PyObject *params = Py_None, *df = Py_False, *fillna = Py_None, *fillnat = Py_None;
    PyObject *pytypes = Py_True, *dtstr = Py_True, *tz = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|OOOOOOOOOOO", kwlist, &db, &schema, &table,
                                     &query, &params, &df, &fillna, &fillnat, &pytypes, &dtstr,
                                     &tz))
        return NULL;
    (void)fillnat;
    (void)pytypes;
    (void)dtstr;
    (void)tz;
    if (db == NULL || db == Py_None)
        db = self->name;
    if (!PyUnicode_Check(db)) {
        PyErr_SetString(pq_error, "db must be a connection name (str)");
        return NULL;
    }
    pt_wh *wh = get_wh(PyUnicode_AsUTF8(db));
    if (wh == NULL)
        return NULL;

    PyObject *rows;
    if (query != Py_None) {
        if (!PyUnicode_Check(query)) {
            PyErr_SetString(pq_error, "query must be a str");
            return NULL;
        }
        rows = run_query(wh, PyUnicode_AsUTF8(query), params, fillna != Py_None ? fillna : NULL);
    } else {
        if (!PyUnicode_Check(table) || (schema != Py_None && !PyUnicode_Check(schema))) {
            PyErr_SetString(pq_error, "fetch needs a table name (and a schema) or a query");
            return NULL;
        }
        const char *t = PyUnicode_AsUTF8(table);
        const char *s = schema != Py_None ? PyUnicode_AsUTF8(schema) : NULL;
        if (!pt_wh_ident_valid(t) || (s != NULL && !pt_wh_ident_valid(s))) {
            PyErr_Format(pq_error, "invalid schema or table name: %R.%R", schema, table);
            return NULL;
        }
        char sql[300];
        if (s != NULL)
            snprintf(sql, sizeof(sql), "SELECT * FROM \"%s\".\"%s\"", s, t);
        else
            snprintf(sql, sizeof(sql), "SELECT * FROM \"%s\"", t);
        rows = run_query(wh, sql, NULL, fillna != Py_None ? fillna : NULL);
    }
    if (rows == NULL || !PyObject_IsTrue(df))
        return rows;
    /* df=True: a pandas DataFrame, when pandas is installed. */
    PyObject *pandas = PyImport_ImportModule("pandas");
    if (pandas == NULL) {
        PyErr_Clear();
        Py_DECREF(rows);
        PyErr_SetString(pq_error, "df=True needs pandas, which is not installed "
                                  "(apt-get install python3-pandas)");
        return NULL;
    }
    PyObject *frame = PyObject_CallMethod(pandas, "DataFrame", "O", rows);
    Py_DECREF(pandas);
    Py_DECREF(rows);
    return frame;
}

static PyMethodDef conn_methods[] = {
    {"fetch", (PyCFunction)(void (*)(void))conn_fetch, METH_VARARGS | METH_KEYWORDS,
     "fetch(db, schema=None, table=None, query=None, params=None, df=False, ...) -> rows"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ConnType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "pq.Connection",
    .tp_basicsize = sizeof(ConnObject),
    .tp_dealloc = (destructor)conn_dealloc,
    .tp_repr = (reprfunc)conn_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A warehouse connection returned by pq.dbconnect().",
    .tp_methods = conn_methods,
};

/* ---- Module functions ------------------------------------------------------------------ */

static PyObject *
pq_dbconnect(PyObject *self, PyObject *args)
{
    PyObject *name = NULL;
    (void)self;
    if (!PyArg_ParseTuple(args, "|U:dbconnect", &name))
        return NULL;
    if (name == NULL)
        name = PyUnicode_FromString("dw");
    else
        Py_INCREF(name);
    if (name == NULL)
        return NULL;
    if (get_wh(PyUnicode_AsUTF8(name)) == NULL) {
        Py_DECREF(name);
        return NULL;
    }
    ConnObject *c = PyObject_New(ConnObject, &ConnType);
    if (c == NULL) {
        Py_DECREF(name);
        return NULL;
    }
    c->name = name; /* takes the reference */
    return (PyObject *)c;
}

static PyMethodDef pq_methods[] = {
    {"dbconnect", pq_dbconnect, METH_VARARGS,
     "dbconnect(name='dw') -> a connection to a warehouse database"},
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
new_error(PyObject *m, const char *name, PyObject *bases)
{
    char full[64];
    snprintf(full, sizeof(full), "pq.%s", name);
    PyObject *e = PyErr_NewException(full, bases, NULL);
    if (e == NULL || PyModule_AddObjectRef(m, name, e) != 0) {
        Py_XDECREF(e);
        return NULL;
    }
    return e;
}

PyObject *
pt_py_pq_module(void)
{
    if (PyType_Ready(&ConnType) != 0)
        return NULL;
    PyObject *m = PyModule_Create(&pq_def);
    if (m == NULL)
        return NULL;
    if (handles == NULL && (handles = PyDict_New()) == NULL)
        goto fail;
    if ((pq_error = new_error(m, "Error", NULL)) == NULL)
        goto fail;
    PyObject *bases = PyTuple_Pack(2, pq_error, PyExc_KeyError);
    pq_unknown_conn = bases ? new_error(m, "UnknownConnection", bases) : NULL;
    Py_XDECREF(bases);
    if (pq_unknown_conn == NULL ||
        (pq_not_found = new_error(m, "TableNotFound", pq_error)) == NULL ||
        (pq_sql_error = new_error(m, "SQLError", pq_error)) == NULL ||
        (pq_unavailable = new_error(m, "DatabaseUnavailable", pq_error)) == NULL)
        goto fail;
    if (PyModule_AddStringConstant(m, "DW_NAME", "dw") != 0 ||
        PyModule_AddObjectRef(m, "Connection", (PyObject *)&ConnType) != 0)
        goto fail;
    return m;
fail:
    Py_DECREF(m);
    return NULL;
}
