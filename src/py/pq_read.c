/* pq_read.c - the reading calls of a pq connection: fetch() (a table or a query, as a lazy row
 * list or a pandas DataFrame) and execute() (any statement). GIL for all. */
#include "py/pq_int.h"

#include <string.h>

#include "core/err.h"
#include "warehouse/wh_sql.h"

static PyObject *s_utc; /* "UTC": fetch's default tz */

/* The rows as a DataFrame, column order kept (also for no rows: columns from the cursor). */
static PyObject *
rows_to_frame(PyObject *rows, PyObject *columns)
{
    PyObject *pandas = NULL, *frame = NULL, *list = NULL;

    pandas = PyImport_ImportModule("pandas");
    if (pandas == NULL)
        return NULL;
    list = PySequence_List(rows);
    if (list != NULL) {
        PyObject *ctor = PyObject_GetAttrString(pandas, "DataFrame");
        PyObject *argv = ctor != NULL ? PyTuple_Pack(1, list) : NULL;
        PyObject *kw =
            argv != NULL && columns != NULL ? Py_BuildValue("{sO}", "columns", columns) : NULL;
        if (argv != NULL && (columns == NULL || kw != NULL))
            frame = PyObject_Call(ctor, argv, kw);
        Py_XDECREF(kw);
        Py_XDECREF(argv);
        Py_XDECREF(ctor);
    }
    Py_XDECREF(list);
    Py_DECREF(pandas);
    return frame;
}

/* The column names of cur, as a list. New reference or NULL. */
static PyObject *
cursor_columns(pt_wh_cursor *cur)
{
    size_t n = pt_wh_cursor_ncols(cur);
    PyObject *cols = PyList_New((Py_ssize_t)n);

    for (size_t i = 0; cols != NULL && i < n; i++) {
        PyObject *name =
            PyUnicode_DecodeUTF8(pt_wh_cursor_colname(cur, i),
                                 (Py_ssize_t)strlen(pt_wh_cursor_colname(cur, i)), "replace");
        if (name == NULL) {
            Py_CLEAR(cols);
            break;
        }
        PyList_SET_ITEM(cols, (Py_ssize_t)i, name); /* steals */
    }
    return cols;
}

/* Makes the session time zone of a PostgreSQL handle tz, which decides how timestamptz values
 * print. Returns 0 or -1 with an error set. */
static int
set_time_zone(pq_handle *h, const char *tz, size_t tzlen)
{
    pt_value v = {.type = PT_V_TEXT, .u.s = {tz, tzlen}};

    if (strcmp(pt_wh_kind(h->wh), "postgres") != 0 || strcmp(h->tz, tz) == 0)
        return 0;
    if (pt_pq_exec_count(h, "SELECT set_config('TimeZone', $1, false)", &v, 1, NULL) < 0)
        return -1;
    /* Inside a transaction the setting lasts only if it commits: remember it only when it is
     * sure to last, else set it again next time. */
    if (pt_wh_in_transaction(h->wh))
        h->tz[0] = '\0';
    else
        snprintf(h->tz, sizeof h->tz, "%s", tz);
    return 0;
}

enum {
    F_DB,
    F_SCHEMA,
    F_TABLE,
    F_QUERY,
    F_DF,
    F_FILLNA,
    F_FILLNAT,
    F_PYTYPES,
    F_DTSTR,
    F_TZ,
    F_PARAMS,
    F_COUNT
};

static const pq_argspec fetch_specs[F_COUNT] = {
    {"db_name", "db"},
    {"schema_name", "schema"},
    {"table_name", "table"},
    {"query", NULL},
    {"df", NULL},
    {"fillna_with", NULL},
    {"fillnat_with", NULL},
    {"enable_python_types", NULL},
    {"enable_datetime_as_string", NULL},
    {"tz", NULL},
    {"params", NULL}, /* Portico's extension: values bound to the query's placeholders */
};

/* The SELECT of fetch(db, schema, table): a new str, or NULL with pq.InvalidArgument. */
static PyObject *
table_query(PyObject *schema, PyObject *table)
{
    const char *t, *s = NULL;
    PyObject *out = NULL;
    pt_buf b;

    if (table == NULL || table == Py_None) {
        PyErr_SetString(pt_pq_bad_arg, "fetch() needs a table_name (with its schema_name) or a "
                                       "query");
        return NULL;
    }
    t = pt_pq_ident_arg(table, "table");
    if (t == NULL ||
        (schema != NULL && schema != Py_None && (s = pt_pq_ident_arg(schema, "schema")) == NULL))
        return NULL;
    pt_buf_init(&b, 0);
    if (pt_pq_sql_built("fetch", pt_wh_sql_select_all(&b, s, t)) == 0)
        out = PyUnicode_FromStringAndSize(b.data, (Py_ssize_t)b.len);
    pt_buf_free(&b);
    return out;
}

/* fetch()'s conversion options into conv (borrowing fillna and fillnat from a) and *want_df;
 * with df=True, pandas must import. Returns 0 or -1 with an error set. */
static int
fetch_options(PyObject **a, pq_conv *conv, int *want_df)
{
    *want_df = a[F_DF] != NULL ? PyObject_IsTrue(a[F_DF]) : 0;
    conv->python_types = a[F_PYTYPES] != NULL ? PyObject_IsTrue(a[F_PYTYPES]) : 1;
    conv->dt_as_str = a[F_DTSTR] != NULL ? PyObject_IsTrue(a[F_DTSTR]) : 1;
    if (*want_df < 0 || conv->python_types < 0 || conv->dt_as_str < 0)
        return -1;
    conv->fillna = a[F_FILLNA] != NULL && a[F_FILLNA] != Py_None ? a[F_FILLNA] : NULL;
    conv->fillnat = a[F_FILLNAT] != NULL && a[F_FILLNAT] != Py_None ? a[F_FILLNAT] : NULL;
    if (*want_df) {
        /* Before any work: say so when pandas is missing. */
        PyObject *pandas = PyImport_ImportModule("pandas");
        if (pandas == NULL) {
            PyErr_Clear();
            PyErr_SetString(pt_pq_error, "fetch(df=True) needs pandas, which cannot be imported "
                                         "here (install Debian's python3-pandas), or use df=False");
            return -1;
        }
        Py_DECREF(pandas);
    }
    return 0;
}

/* fetch()'s statement: query= (a str), or the SELECT of its table (params only go with a
 * query). New reference or NULL with pq.InvalidArgument. */
static PyObject *
fetch_query(PyObject **a)
{
    if (a[F_QUERY] != NULL && a[F_QUERY] != Py_None) {
        if (!PyUnicode_Check(a[F_QUERY])) {
            PyErr_Format(pt_pq_bad_arg, "query must be a str, not %.100s",
                         Py_TYPE(a[F_QUERY])->tp_name);
            return NULL;
        }
        return Py_NewRef(a[F_QUERY]);
    }
    if (a[F_PARAMS] != NULL && a[F_PARAMS] != Py_None) {
        PyErr_SetString(pt_pq_bad_arg, "params go with query=, not with a table");
        return NULL;
    }
    return table_query(a[F_SCHEMA], a[F_TABLE]);
}

PyObject *
pt_pq_conn_fetch(PyObject *self, PyObject *args, PyObject *kwargs)
{
    PyObject *a[F_COUNT];
    PyObject *sql = NULL, *keep = NULL, *rows = NULL, *frame = NULL, *cols = NULL;
    PyObject *params = NULL; /* borrowed from keep */
    PyObject *tz;
    const char *tzname, *sqltext;
    Py_ssize_t tzlen;
    pq_handle *h = NULL;
    pt_value *vals = NULL;
    pt_wh_cursor *cur = NULL;
    pq_conv conv;
    size_t n = 0;
    int want_df;

    if (pt_pq_bind_args("fetch", args, kwargs, fetch_specs, F_COUNT, a, NULL, NULL) != 0 ||
        pt_pq_require_args("fetch", fetch_specs, a, 1) != 0 ||
        fetch_options(a, &conv, &want_df) != 0)
        return NULL;
    tz = a[F_TZ] != NULL && a[F_TZ] != Py_None ? a[F_TZ] : s_utc;
    tzname = PyUnicode_Check(tz) ? PyUnicode_AsUTF8AndSize(tz, &tzlen) : NULL;
    if (tzname == NULL || strlen(tzname) != (size_t)tzlen || (size_t)tzlen >= sizeof h->tz) {
        PyErr_Clear();
        PyErr_SetString(pt_pq_bad_arg, "tz must be a time zone name (str), e.g. 'UTC'");
        return NULL;
    }
    if ((sql = fetch_query(a)) == NULL)
        return NULL;
    sqltext = pt_pq_sql_text(sql);
    keep = sqltext != NULL ? PyList_New(0) : NULL;
    if (keep == NULL || pt_pq_params(a[F_PARAMS], &vals, &n, keep, &params) != 0)
        goto fail;
    h = pt_pq_conn_handle((pq_conn *)self, a[F_DB]);
    if (h == NULL || set_time_zone(h, tzname, (size_t)tzlen) != 0)
        goto fail;
    if (pt_pq_exec(h, sqltext, vals, n, &cur) != 0)
        goto fail;
    if (want_df && (cols = cursor_columns(cur)) == NULL) {
        pt_pq_cursor_free(cur);
        goto fail;
    }
    rows = pt_pq_rows_new(h, cur, sql, params, &conv);
    cur = NULL; /* the list owns it, even on error */
    if (rows == NULL)
        goto fail;
    if (want_df) {
        frame = rows_to_frame(rows, cols);
        Py_SETREF(rows, frame);
    }
fail:
    PyMem_Free(vals);
    Py_XDECREF(cols);
    Py_XDECREF(keep);
    Py_XDECREF(sql);
    Py_XDECREF(h);
    return rows;
}

/* execute(db_name, query, params=None) -> {"rowcount": n} (+ "rows" when the statement returns
 * some). */
PyObject *
pt_pq_conn_execute(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static const pq_argspec specs[] = {{"db_name", "db"}, {"query", NULL}, {"params", NULL}};
    PyObject *a[3], *keep = NULL, *out = NULL, *rows = NULL;
    const char *sqltext;
    pq_handle *h = NULL;
    pt_value *vals = NULL;
    pt_wh_cursor *cur = NULL;
    pq_conv conv = {.python_types = 1, .dt_as_str = 1};
    size_t n = 0;

    if (pt_pq_bind_args("execute", args, kwargs, specs, 3, a, NULL, NULL) != 0 ||
        pt_pq_require_args("execute", specs, a, 2) != 0)
        return NULL;
    if (!PyUnicode_Check(a[1])) {
        PyErr_Format(pt_pq_bad_arg, "execute() needs query= (a str of SQL), not %.100s",
                     Py_TYPE(a[1])->tp_name);
        return NULL;
    }
    sqltext = pt_pq_sql_text(a[1]);
    keep = sqltext != NULL ? PyList_New(0) : NULL;
    if (keep == NULL || pt_pq_params(a[2], &vals, &n, keep, NULL) != 0)
        goto done;
    h = pt_pq_conn_handle((pq_conn *)self, a[0]);
    if (h == NULL || pt_pq_exec(h, sqltext, vals, n, &cur) != 0)
        goto done;
    if (pt_wh_cursor_ncols(cur) == 0) {
        out = Py_BuildValue("{sL}", "rowcount", (long long)pt_wh_cursor_changes(cur));
        pt_pq_cursor_free(cur);
        goto done;
    }
    rows = pt_pq_rows_new(h, cur, a[1], NULL, &conv);
    if (rows == NULL || pt_pq_rows_ready(rows) != 0)
        goto done;
    out = Py_BuildValue("{snsO}", "rowcount", PyList_GET_SIZE(rows), "rows", rows);
done:
    PyMem_Free(vals);
    Py_XDECREF(rows);
    Py_XDECREF(keep);
    Py_XDECREF(h);
    return out;
}

int
pt_pq_read_setup(void)
{
    if (s_utc == NULL && (s_utc = PyUnicode_InternFromString("UTC")) == NULL)
        return -1;
    return 0;
}
