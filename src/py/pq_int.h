/* pq_int.h - internals shared by the files of the pq module: pq.c (module, connections, the
 * data API), pq_rows.c (the lazy row list fetch() returns, value conversion). GIL for all. */
#ifndef PT_PQ_INT_H
#define PT_PQ_INT_H

#include "py/py_int.h"

#include "warehouse/wh.h"

/* One open warehouse connection of one thread (design notes in pq.c). */
typedef struct pq_handle {
    PyObject_HEAD pt_wh *wh; /* owned; NULL once given to a response stream */
    PyObject *name;          /* str: the connection name */
    PyObject *active;        /* borrowed: the lazy row list whose cursor is open on wh */
    char tz[64];             /* PostgreSQL session time zone */
} pq_handle;

/* How database values become Python objects (fetch's keyword arguments). */
typedef struct pq_conv {
    PyObject *fillna;  /* strong reference or NULL (None) */
    PyObject *fillnat; /* strong reference or NULL: NULL dates and times, when given */
    int python_types;  /* numeric -> int/float, JSON -> objects (1); both as str (0) */
    int dt_as_str;     /* dates and times as ISO 8601 str (1) or datetime objects (0) */
} pq_conv;

/* Runs `call`, a warehouse call that may wait for the database, with the GIL released, so that
 * the worker's other threads run meanwhile. `call` must touch no Python object: strings it
 * reads belong to objects the caller holds and nobody can change (str, bytes, snapshots), and
 * the connection is one no other thread uses meanwhile (the calling thread's handle, or a row
 * list marked busy). */
#define PQ_WITHOUT_GIL(call)                                                                       \
    do {                                                                                           \
        PyThreadState *pq_ts_ = PyEval_SaveThread();                                               \
        call;                                                                                      \
        PyEval_RestoreThread(pq_ts_);                                                              \
    } while (0)

/* The exception types (module globals, set by pt_py_pq_module). */
extern PyObject *pq_error, *pq_unknown_conn, *pq_not_found, *pq_sql_error, *pq_unavailable,
    *pq_bad_arg;
extern PyTypeObject pq_rows_type;

/* Raises the pq exception matching a warehouse error of wh (pq_not_found for PT_ENOTFOUND,
 * ...), with the driver's message. */
void pq_raise_wh(pt_wh *wh, int rc);
/* The calling thread's handle of connection `name`, opened on first use. New reference; NULL
 * with a pq exception set. */
pq_handle *pq_handle_get(PyObject *name);
/* Reads the rest of h's active lazy row list into Python objects so that wh is free for
 * another statement. Returns 0 or -1 with an exception set. */
int pq_handle_settle(pq_handle *h);
/* Runs sql on h (settling it first) with the GIL released while the database works. Returns
 * 0 with *cur (caller frees with pq_cursor_free), or -1 with a pq exception set. */
int pq_exec(pq_handle *h, const char *sql, const pt_value *vals, size_t n, pt_wh_cursor **cur);
/* pt_wh_cursor_next, with the GIL released when it may wait for the database
 * (pt_wh_cursor_may_block). The caller makes sure no other thread uses the connection. */
int pq_next(pt_wh_cursor *cur);
/* pt_wh_cursor_free with the GIL released: freeing a PostgreSQL cursor whose rows are still
 * arriving cancels the query and waits for the server. Same condition as pq_next. */
void pq_cursor_free(pt_wh_cursor *cur);

/* A new value -> Python object conversion of one row value (coltype: its column's type). */
PyObject *pq_value_to_py(const pt_value *v, pt_vtype coltype, const pq_conv *conv);

/* The row list of a query that ran on h: takes ownership of cur (even on error), keeps sql (str)
 * and params (tuple or NULL) to run the query again if it is touched after being served from
 * C. conv's references are copied. Becomes h->active. New reference or NULL. */
PyObject *pq_rows_new(pq_handle *h, pt_wh_cursor *cur, PyObject *sql, PyObject *params,
                      const pq_conv *conv);
/* Makes sure the list holds its rows as Python objects (materialises a lazy one). Returns 0 or
 * -1 with an exception set. */
int pq_rows_ready(PyObject *rows);
/* Converts an argument into the pt_value array of a statement: items of seq (a sequence),
 * or one object. Strings are borrowed from the objects (which the caller keeps alive, and which
 * must not change: str and bytes cannot), or from new objects appended to keep (a list) when a
 * conversion (JSON, isoformat, a bytearray's copy) was needed. Conversions may run Python code.
 * pq_params snapshots params into a tuple (appended to keep last: fetch() keeps it to run the
 * query again) and converts its items. Return 0 or -1 with an error set. */
int pq_to_value(PyObject *obj, pt_value *v, PyObject *keep);
int pq_params(PyObject *params, pt_value **vals, size_t *n, PyObject *keep);

/* The metadata family (pq_meta.c): sets pq.list_connections, list_databases, get_schema,
 * get_table, get_or_create_schema, delete_schema, delete_table, generate_sql_union, refresh_*,
 * DW_ID, pq.NotFound, pq.NotAvailable and the NotAvailable stubs of Peliqan's SaaS-only
 * functions (only names nothing else defined). Call once pq.Error and DW_NAME exist. Returns 0
 * or -1 with an error set. GIL. */
int pt_py_pq_meta_setup(PyObject *module);

#endif
