/* pq_int.h - internals shared by the files of the pq module. The bindings: pq.c (module,
 * Connection, the end of a request), pq_read.c and pq_write.c (the Connection's calls),
 * pq_meta.c, pq_scripts.c, pq_secret.c; pq_args.c binds their arguments. Below them, each
 * calling only further down: pq_rows.c (the lazy row list fetch() returns), pq_handle.c (each
 * thread's connections, statements without the GIL), pq_value.c (value conversion). GIL for
 * all. */
#ifndef PT_PQ_INT_H
#define PT_PQ_INT_H

#include "py/py_int.h"

#include "warehouse/wh.h"

/* One open warehouse connection of one thread (design notes in pq.c). */
typedef struct pq_handle {
    PyObject_HEAD pt_wh *wh;         /* owned; NULL once given to a response stream */
    PyObject *name;                  /* str: the connection name */
    PyObject *active;                /* borrowed: the lazy row list whose cursor is open on wh */
    int (*settle)(PyObject *active); /* set with active: reads the rest of it (0 or -1) */
    char tz[64];                     /* PostgreSQL session time zone */
} pq_handle;

/* The handle name of a dbconnect(dict) connection: this byte, then the DSN. No connection name
 * starts with it (pt_store_name_valid), so the two kinds never meet in a thread's handles. */
#define DSN_MARK '\x01'

/* A pq.Connection (dbconnect()'s result). */
typedef struct pq_conn {
    PyObject_HEAD PyObject *name; /* str: the handle name (a connection name, or a DSN: pq.c) */
    PyObject *label;              /* str: how messages name it (never holds a password) */
    PyObject *dbname;             /* str: the database inside it, as the server names it */
} pq_conn;

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
extern PyObject *pt_pq_error, *pt_pq_unknown_conn, *pt_pq_not_found, *pt_pq_sql_error,
    *pt_pq_unavailable, *pt_pq_bad_arg, *pt_pq_unknown_db, *pt_pq_cancelled;
extern PyTypeObject pt_pq_rows_type;

/* ---- handles (pq_handle.c) ---- */

/* Readies the handle type; 0 or -1 with an error set. */
int pt_pq_handle_setup(void);
/* Raises the pq exception matching a warehouse error of wh (pt_pq_not_found for PT_ENOTFOUND,
 * ...), with the driver's message. */
void pt_pq_raise_wh(pt_wh *wh, int rc);
/* The calling thread's handle of connection `name`, opened on first use. New reference; NULL
 * with a pq exception set. */
pq_handle *pt_pq_handle_get(PyObject *name);
/* Reads the rest of h's active lazy row list into Python objects so that wh is free for
 * another statement. Returns 0 or -1 with an exception set. */
int pt_pq_handle_settle(pq_handle *h);
/* Runs sql on h (settling it first) with the GIL released while the database works. Returns
 * 0 with *cur (caller frees with pt_pq_cursor_free), or -1 with a pq exception set. */
int pt_pq_exec(pq_handle *h, const char *sql, const pt_value *vals, size_t n, pt_wh_cursor **cur);
/* pt_wh_cursor_next, with the GIL released when it may wait for the database
 * (pt_wh_cursor_may_block). The caller makes sure no other thread uses the connection. */
int pt_pq_next(pt_wh_cursor *cur);
/* pt_wh_cursor_free with the GIL released: freeing a PostgreSQL cursor whose rows are still
 * arriving cancels the query and waits for the server. Same condition as pt_pq_next. */
void pt_pq_cursor_free(pt_wh_cursor *cur);

/* Runs sql to completion; returns rows changed (and the first column of the first row, when
 * first is not NULL and there is one: RETURNING; a new reference). -1 with an error set. */
int64_t pt_pq_exec_count(pq_handle *h, const char *sql, const pt_value *vals, size_t n,
                         PyObject **first);
/* pt_pq_exec_count without results: 0 or -1 with an error set. */
int pt_pq_exec_simple(pq_handle *h, const char *sql);
/* Rolls back the transaction pq opened, keeping the exception that made it fail. */
void pt_pq_rollback_keeping_error(pq_handle *h);

/* ---- arguments (pq_args.c) ---- */

/* One parameter of a pq call: Peliqan's name, and Portico's older name (or NULL). */
typedef struct pq_argspec {
    const char *name;
    const char *alias;
} pq_argspec;

/* Binds a call's arguments to specs, in order, as Python would: out[i] is the argument given
 * for specs[i] (borrowed) or NULL. Positional arguments past the specs go to *extra (a new
 * tuple, never NULL on success) when extra is not NULL; keywords that name no spec go to *rest
 * (a new dict) when rest is not NULL. Otherwise, and for an argument given twice, TypeError
 * naming it, as Python words it. Returns 0 or -1 (nothing to free then). */
int pt_pq_bind_args(const char *fname, PyObject *args, PyObject *kwargs, const pq_argspec *specs,
                    size_t nspecs, PyObject **out, PyObject **extra, PyObject **rest);
/* TypeError naming the first of out[0..nrequired) that is missing. Returns 0 or -1. */
int pt_pq_require_args(const char *fname, const pq_argspec *specs, PyObject **out,
                       size_t nrequired);
/* A validated identifier argument (borrowed UTF-8 of arg); NULL with pq.InvalidArgument naming
 * `what` ("schema", "table", "column"). */
const char *pt_pq_ident_arg(PyObject *arg, const char *what);
/* The result rc of a warehouse/wh_sql.h builder called for pq's fname(): 0, or -1 with
 * pq.InvalidArgument (PT_EINVAL: callers validate names first, so this is a last guard) or
 * MemoryError. */
int pt_pq_sql_built(const char *fname, int rc);
/* 0 when b holds its text, -1 with MemoryError when appending to it failed. */
int pt_pq_sql_ready(pt_buf *b);
/* The UTF-8 text of a query (a str, borrowed); NULL with pq.InvalidArgument when it holds a NUL
 * or a lone surrogate. */
const char *pt_pq_sql_text(PyObject *query);
/* The calling thread's handle of c's connection, after checking that db (the call's db_name;
 * NULL or None: the connection's own) names the database c reaches. New reference; NULL with
 * pq.UnknownDatabase or the errors of pt_pq_handle_get. */
pq_handle *pt_pq_conn_handle(pq_conn *c, PyObject *db);
/* A checked private copy of a record (pq_args.c says why). New reference or NULL. */
PyObject *pt_pq_record_snapshot(PyObject *record, int allow_empty);
/* The row of insert/update/upsert built Peliqan's way from column keywords (rest), then each
 * positional dict (extra), then the older record= argument (legacy): a checked snapshot. New
 * reference or NULL with pq.InvalidArgument (a positional argument that is not a dict). */
PyObject *pt_pq_record_from_args(const char *fname, PyObject *legacy, PyObject *extra,
                                 PyObject *rest);

/* ---- the Connection's calls (pq_read.c, pq_write.c) ---- */

PyObject *pt_pq_conn_fetch(PyObject *self, PyObject *args, PyObject *kwargs);
PyObject *pt_pq_conn_execute(PyObject *self, PyObject *args, PyObject *kwargs);
PyObject *pt_pq_conn_insert(PyObject *self, PyObject *args, PyObject *kwargs);
PyObject *pt_pq_conn_update(PyObject *self, PyObject *args, PyObject *kwargs);
PyObject *pt_pq_conn_upsert(PyObject *self, PyObject *args, PyObject *kwargs);
PyObject *pt_pq_conn_delete(PyObject *self, PyObject *args, PyObject *kwargs);
PyObject *pt_pq_conn_create_schema(PyObject *self, PyObject *args, PyObject *kwargs);
PyObject *pt_pq_conn_create_table(PyObject *self, PyObject *args, PyObject *kwargs);
PyObject *pt_pq_conn_write(PyObject *self, PyObject *args, PyObject *kwargs);
/* Creates pq_read.c's interned strings; 0 or -1 with an error set. */
int pt_pq_read_setup(void);

/* ---- value conversion (pq_value.c) ---- */

/* Imports what the conversions use (json, datetime); 0 or -1 with an error set. */
int pt_pq_value_setup(void);
/* A new value -> Python object conversion of one row value (coltype: its column's type). */
PyObject *pt_pq_value_to_py(const pt_value *v, pt_vtype coltype, const pq_conv *conv);

/* Converts an argument into the pt_value array of a statement: items of seq (a sequence),
 * or one object. Strings are borrowed from the objects (which the caller keeps alive, and which
 * must not change: str and bytes cannot), or from new objects appended to keep (a list) when a
 * conversion (JSON, isoformat, a bytearray's copy) was needed. Conversions may run Python code.
 * pt_pq_params snapshots params into a tuple (held by keep, and borrowed into *snapshot when
 * snapshot is not NULL: fetch() keeps it to run the query again) and converts its items; no
 * params (NULL or None) gives n = 0 and no snapshot. Return 0 or -1 with an error set. */
int pt_pq_to_value(PyObject *obj, pt_value *v, PyObject *keep);
int pt_pq_params(PyObject *params, pt_value **vals, size_t *n, PyObject *keep, PyObject **snapshot);

/* ---- the row list (pq_rows.c) ---- */

/* The row list of a query that ran on h: takes ownership of cur (even on error), keeps sql (str)
 * and params (tuple or NULL) to run the query again if it is touched after being served from
 * C. conv's references are copied. Becomes h->active. New reference or NULL. */
PyObject *pt_pq_rows_new(pq_handle *h, pt_wh_cursor *cur, PyObject *sql, PyObject *params,
                         const pq_conv *conv);
/* Makes sure the list holds its rows as Python objects (materialises a lazy one). Returns 0 or
 * -1 with an exception set. */
int pt_pq_rows_ready(PyObject *rows);

/* The metadata family (pq_meta.c): sets pq.list_connections, list_databases, get_schema,
 * get_table, get_or_create_schema, delete_schema, delete_table, generate_sql_union, refresh_*,
 * DW_ID, pq.NotFound, pq.NotAvailable and the NotAvailable stubs of Peliqan's SaaS-only
 * functions (only names nothing else defined). Call once pq.Error and DW_NAME exist. Returns 0
 * or -1 with an error set. GIL. */
int pt_py_pq_meta_setup(PyObject *module);

#endif
