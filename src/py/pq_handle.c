/* pq_handle.c - each thread's open warehouse connections for pq (design note 1 in pq.c): getting
 * one by name, running statements on it with the GIL released while the database works, and
 * raising the pq exception of a warehouse error. Below the row list (pq_rows.c) and the
 * bindings: settling a handle's active row list goes through the hook the list set. GIL for
 * all (PQ_WITHOUT_GIL releases it inside). */
#include "py/pq_int.h"

#include <string.h>

#include "core/err.h"

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
pt_pq_raise_wh(pt_wh *wh, int rc)
{
    PyObject *type = rc == PT_ENOTFOUND  ? pt_pq_not_found
                     : rc == PT_EUNAVAIL ? pt_pq_unavailable
                     : rc == PT_EDB      ? pt_pq_sql_error
                     : rc == PT_EINVAL   ? pt_pq_bad_arg
                                         : pt_pq_error;
    const char *msg = wh != NULL ? pt_wh_errmsg(wh) : NULL;

    if (rc == PT_ENOMEM) {
        PyErr_NoMemory();
        return;
    }
    PyErr_SetString(type, msg != NULL && msg[0] ? msg : pt_strerror(rc));
}

int
pt_pq_check_cancelled(void)
{
    if (!pt_py_cancelled())
        return 0;
    PyErr_SetString(pt_pq_cancelled, "the client closed the request; nobody reads the answer");
    return -1;
}

pq_handle *
pt_pq_handle_get(PyObject *name)
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

    if (pt_pq_check_cancelled() != 0)
        return NULL;
    if (tdict == NULL) {
        PyErr_SetString(pt_pq_error, "no thread state");
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
        PyErr_Format(pt_pq_unknown_conn, "unknown database connection %R", name);
        return NULL;
    }
    h = (pq_handle *)PyDict_GetItem(handles, name); /* borrowed */
    if (h != NULL && h->wh != NULL)
        return (pq_handle *)Py_NewRef((PyObject *)h);

    ts = PyEval_SaveThread(); /* opening may connect to a server; no Python object inside */
    if (cname[0] == DSN_MARK)
        rc = pt_wh_open_dsn("dbconnect(dict)", cname + 1, &wh, err, sizeof err);
    else
        rc = pt_wh_open(pt_py_datadir, cname, &wh, err, sizeof err);
    PyEval_RestoreThread(ts);
    if (cname[0] == DSN_MARK && rc != 0) { /* the name holds the DSN: never show it */
        PyErr_Format(rc == PT_EUNAVAIL ? pt_pq_unavailable : pt_pq_error,
                     "cannot open the dbconnect(dict) connection: %s",
                     err[0] ? err : pt_strerror(rc));
        return NULL;
    }
    if (rc == PT_ENOTFOUND) {
        PyErr_Format(pt_pq_unknown_conn,
                     "unknown database connection '%U' (see `portico db list`; the built-in "
                     "one is '%s')",
                     name, "dw");
        return NULL;
    }
    if (rc != 0) {
        PyErr_Format(rc == PT_EUNAVAIL ? pt_pq_unavailable : pt_pq_error,
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
    h->settle = NULL;
    snprintf(h->tz, sizeof h->tz, "UTC");
    if (PyDict_SetItem(handles, name, (PyObject *)h) != 0) {
        Py_DECREF(h);
        return NULL;
    }
    return h;
}

int
pt_pq_exec(pq_handle *h, const char *sql, const pt_value *vals, size_t n, pt_wh_cursor **cur)
{
    int rc;

    *cur = NULL;
    if (pt_pq_handle_settle(h) != 0)
        return -1;
    PQ_WITHOUT_GIL(rc = pt_wh_exec(h->wh, sql, vals, n, cur));
    if (rc != 0) {
        pt_pq_raise_wh(h->wh, rc);
        return -1;
    }
    return 0;
}

/* Runs sql to completion; returns rows changed (and the first column of the first row, when
 * first is not NULL and there is one: RETURNING). -1 with an error set on failure. */
int64_t
pt_pq_exec_count(pq_handle *h, const char *sql, const pt_value *vals, size_t n, PyObject **first)
{
    pt_wh_cursor *cur = NULL;
    int64_t changes;
    int rc;

    if (first != NULL)
        *first = NULL;
    if (pt_pq_exec(h, sql, vals, n, &cur) != 0)
        return -1;
    while ((rc = pt_pq_next(cur)) == 1) {
        if (first != NULL && *first == NULL && pt_wh_cursor_ncols(cur) > 0) {
            pq_conv conv = {.python_types = 1, .dt_as_str = 1};
            pt_value v;
            pt_wh_cursor_value(cur, 0, &v);
            *first = pt_pq_value_to_py(&v, pt_wh_cursor_coltype(cur, 0), &conv);
            if (*first == NULL) {
                pt_pq_cursor_free(cur);
                return -1;
            }
        }
    }
    if (rc < 0) {
        pt_pq_raise_wh(h->wh, rc);
        pt_pq_cursor_free(cur);
        if (first != NULL)
            Py_CLEAR(*first);
        return -1;
    }
    changes = pt_wh_cursor_changes(cur);
    if (first != NULL && *first == NULL && pt_wh_cursor_last_id(cur) > 0 &&
        strcmp(pt_wh_kind(h->wh), "sqlite") == 0)
        *first = PyLong_FromLongLong(pt_wh_cursor_last_id(cur));
    pt_pq_cursor_free(cur);
    return changes;
}

int
pt_pq_exec_simple(pq_handle *h, const char *sql)
{
    return pt_pq_exec_count(h, sql, NULL, 0, NULL) < 0 ? -1 : 0;
}

void
pt_pq_rollback_keeping_error(pq_handle *h)
{
    PyObject *type, *value, *tb;

    PyErr_Fetch(&type, &value, &tb);
    if (pt_pq_exec_simple(h, "ROLLBACK") != 0)
        PyErr_Clear();
    PyErr_Restore(type, value, tb);
}

int
pt_pq_handle_settle(pq_handle *h)
{
    return h->active != NULL ? h->settle(h->active) : 0;
}

/* ---- the database without the GIL -------------------------------------------------------- */

int
pt_pq_next(pt_wh_cursor *cur)
{
    int rc;

    if (!pt_wh_cursor_may_block(cur))
        return pt_wh_cursor_next(cur); /* the row is at hand: not worth a GIL round trip */
    PQ_WITHOUT_GIL(rc = pt_wh_cursor_next(cur));
    return rc;
}

void
pt_pq_cursor_free(pt_wh_cursor *cur)
{
    if (cur != NULL)
        PQ_WITHOUT_GIL(pt_wh_cursor_free(cur));
}

int
pt_pq_handle_setup(void)
{
    return PyType_Ready(&handle_type);
}
