/* pq_args.c - the arguments of pq's calls: binding positional and keyword arguments to
 * Peliqan's parameter names (with Portico's older names as aliases), validated identifiers,
 * query text, record dicts, and which database a call names. GIL for all. */
#include "py/pq_int.h"

#include <string.h>

#include "core/err.h"

/* Is key (a str) the name or the alias of spec? */
static int
spec_matches(const pq_argspec *spec, PyObject *key)
{
    return PyUnicode_CompareWithASCIIString(key, spec->name) == 0 ||
           (spec->alias != NULL && PyUnicode_CompareWithASCIIString(key, spec->alias) == 0);
}

int
pt_pq_bind_args(const char *fname, PyObject *args, PyObject *kwargs, const pq_argspec *specs,
                size_t nspecs, PyObject **out, PyObject **extra, PyObject **rest)
{
    Py_ssize_t nargs = PyTuple_GET_SIZE(args), pos = 0;
    PyObject *k, *v; /* borrowed */
    size_t i;

    for (i = 0; i < nspecs; i++)
        out[i] = NULL;
    if (extra != NULL)
        *extra = NULL;
    if (rest != NULL)
        *rest = NULL;
    if (pt_pq_check_cancelled() != 0)
        return -1;
    if ((size_t)nargs > nspecs && extra == NULL) {
        PyErr_Format(PyExc_TypeError, "%s() takes at most %zu positional arguments (%zd given)",
                     fname, nspecs, nargs);
        return -1;
    }
    for (i = 0; i < nspecs && (Py_ssize_t)i < nargs; i++)
        out[i] = PyTuple_GET_ITEM(args, (Py_ssize_t)i);
    if (extra != NULL) {
        *extra = (size_t)nargs > nspecs ? PyTuple_GetSlice(args, (Py_ssize_t)nspecs, nargs)
                                        : PyTuple_New(0);
        if (*extra == NULL)
            return -1;
    }
    if (rest != NULL && (*rest = PyDict_New()) == NULL)
        goto fail;
    while (kwargs != NULL && PyDict_Next(kwargs, &pos, &k, &v)) {
        for (i = 0; i < nspecs && !spec_matches(&specs[i], k); i++)
            ;
        if (i == nspecs) {
            if (rest == NULL) {
                PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%U'", fname,
                             k);
                goto fail;
            }
            if (PyDict_SetItem(*rest, k, v) != 0)
                goto fail;
            continue;
        }
        if (out[i] != NULL) {
            PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument '%s'", fname,
                         specs[i].name);
            goto fail;
        }
        out[i] = v;
    }
    return 0;
fail:
    if (extra != NULL)
        Py_CLEAR(*extra);
    if (rest != NULL)
        Py_CLEAR(*rest);
    return -1;
}

int
pt_pq_require_args(const char *fname, const pq_argspec *specs, PyObject **out, size_t nrequired)
{
    for (size_t i = 0; i < nrequired; i++)
        if (out[i] == NULL) {
            PyErr_Format(PyExc_TypeError, "%s() missing required argument '%s'", fname,
                         specs[i].name);
            return -1;
        }
    return 0;
}

const char *
pt_pq_ident_arg(PyObject *arg, const char *what)
{
    Py_ssize_t n;
    const char *s;

    if (arg == NULL || arg == Py_None) {
        PyErr_Format(pt_pq_bad_arg, "%s name is required", what);
        return NULL;
    }
    if (!PyUnicode_Check(arg)) {
        PyErr_Format(pt_pq_bad_arg, "%s name must be a str, not %.100s", what,
                     Py_TYPE(arg)->tp_name);
        return NULL;
    }
    s = PyUnicode_AsUTF8AndSize(arg, &n);
    if (s == NULL || strlen(s) != (size_t)n || !pt_wh_ident_valid(s)) {
        PyErr_Clear();
        PyErr_Format(pt_pq_bad_arg,
                     "invalid %s name %R (letters, digits, '_' and '$', not starting with a "
                     "digit, at most 63)",
                     what, arg);
        return NULL;
    }
    return s;
}

int
pt_pq_sql_built(const char *fname, int rc)
{
    if (rc == PT_EINVAL)
        PyErr_Format(pt_pq_bad_arg, "%s(): a name or column type the statement cannot hold", fname);
    else if (rc != 0)
        PyErr_NoMemory();
    return rc != 0 ? -1 : 0;
}

int
pt_pq_sql_ready(pt_buf *b)
{
    if (b->data == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

const char *
pt_pq_sql_text(PyObject *query)
{
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(query, &n);

    if (s == NULL || strlen(s) != (size_t)n) {
        PyErr_Clear();
        PyErr_SetString(pt_pq_bad_arg, "query must be text without NUL characters or lone "
                                       "surrogates");
        return NULL;
    }
    return s;
}

/* Does db (a str) name the database of connection c? Its own name always does; so does the
 * database name the server reports (a PostgreSQL DSN's dbname). */
static int
names_database(pq_conn *c, PyObject *db)
{
    int eq = PyUnicode_Compare(db, c->name) == 0;

    if (!eq && c->dbname != NULL)
        eq = PyUnicode_Compare(db, c->dbname) == 0;
    return eq;
}

pq_handle *
pt_pq_conn_handle(pq_conn *c, PyObject *db)
{
    if (db != NULL && db != Py_None) {
        if (!PyUnicode_Check(db)) {
            PyErr_Format(pt_pq_bad_arg, "db_name must be a database name (str), not %.100s",
                         Py_TYPE(db)->tp_name);
            return NULL;
        }
        if (!names_database(c, db)) {
            PyErr_Format(pt_pq_unknown_db,
                         "database %R is not in connection %R, whose database is %R "
                         "(dbconnect() the connection that holds it)",
                         db, c->label, c->dbname != NULL ? c->dbname : c->name);
            return NULL;
        }
    }
    return pt_pq_handle_get(c->name);
}

/* A record argument: a dict with str keys that are valid column names. */
static int
check_record(PyObject *record, int allow_empty)
{
    Py_ssize_t pos = 0;
    PyObject *k, *v; /* borrowed */

    if (record == NULL || !PyDict_Check(record)) {
        PyErr_Format(pt_pq_bad_arg, "record must be a dict of column -> value, not %.100s",
                     record != NULL ? Py_TYPE(record)->tp_name : "nothing");
        return -1;
    }
    if (!allow_empty && PyDict_GET_SIZE(record) == 0) {
        PyErr_SetString(pt_pq_bad_arg, "record is empty");
        return -1;
    }
    if (PyDict_GET_SIZE(record) > PT_WH_MAX_PARAMS - 1) {
        PyErr_SetString(pt_pq_bad_arg, "record has too many columns");
        return -1;
    }
    while (PyDict_Next(record, &pos, &k, &v))
        if (pt_pq_ident_arg(k, "column") == NULL)
            return -1;
    return 0;
}

/* A private copy of a record, checked as check_record does. pq works from the copy: converting
 * a value may run Python code (isoformat(), json.dumps) and the database works with the GIL
 * released, and neither may find the caller's dict changed under it (a key added that was never
 * validated, a value freed while its text is bound). The copy holds the values. */
PyObject *
pt_pq_record_snapshot(PyObject *record, int allow_empty)
{
    PyObject *copy;

    if (check_record(record, allow_empty) != 0)
        return NULL;
    copy = PyDict_Copy(record);
    if (copy != NULL && check_record(copy, allow_empty) != 0)
        Py_CLEAR(copy);
    return copy;
}

PyObject *
pt_pq_record_from_args(const char *fname, PyObject *legacy, PyObject *extra, PyObject *rest)
{
    PyObject *record = PyDict_New();
    Py_ssize_t i;

    if (record == NULL)
        return NULL;
    /* Column keywords first; then each positional dict (Peliqan's order: a dict's keys win
     * over keywords of the same name), then the older record= keyword. */
    if (rest != NULL && PyDict_Update(record, rest) != 0)
        goto fail;
    for (i = 0; extra != NULL && i < PyTuple_GET_SIZE(extra); i++) {
        PyObject *d = PyTuple_GET_ITEM(extra, i); /* borrowed */
        if (!PyDict_Check(d)) {
            PyErr_Format(pt_pq_bad_arg,
                         "%s() takes the record as dicts and column=value keywords; argument "
                         "%zd is a %.100s",
                         fname, i + 4, Py_TYPE(d)->tp_name);
            goto fail;
        }
        if (PyDict_Update(record, d) != 0)
            goto fail;
    }
    if (legacy != NULL && legacy != Py_None) {
        if (!PyDict_Check(legacy)) {
            PyErr_Format(pt_pq_bad_arg, "record must be a dict of column -> value, not %.100s",
                         Py_TYPE(legacy)->tp_name);
            goto fail;
        }
        if (PyDict_Update(record, legacy) != 0)
            goto fail;
    }
    Py_SETREF(record, pt_pq_record_snapshot(record, 0));
    return record;
fail:
    Py_DECREF(record);
    return NULL;
}
