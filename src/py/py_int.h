/* py_int.h - internals shared by the files of src/py/ (the only place that sees Python.h). */
#ifndef PT_PY_INT_H
#define PT_PY_INT_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "core/buf.h"
#include "core/request.h"

/* Interned strings and objects created once by pt_py_runtime_setup(). */
typedef struct pt_py_globals {
    PyObject *s_method, *s_url, *s_path, *s_query_string, *s_headers, *s_data, *s_form, *s_body,
        *s_params, *s_query, *s_auth, *s_remote_addr, *s_request_id;
    PyObject *prelude;       /* the _portico_prelude module (Python helpers) */
    PyObject *headers_type;  /* prelude.Headers */
    PyObject *flask_request; /* prelude.FlaskRequest */
    PyObject *parse_form;    /* prelude.parse_form(content_type, body_bytes) -> dict */
    PyObject *parse_query;   /* prelude.parse_query(qs) -> dict */
    PyObject *load_script;   /* prelude.load_script(name, version, source) -> entry */
    PyObject *set_current;   /* prelude.set_current(request_or_None) */
    PyObject *format_exc;    /* prelude.format_exc(exc) -> str */
    PyObject *flush_print;   /* prelude.flush_print() */
    PyObject *bad_request;   /* prelude.BadRequest exception type */
    PyObject *write_plan;    /* prelude.write_plan(...) -> what pq's write() writes */
    PyObject *script_cache;  /* dict: script name -> (version, handler, flask_style) */
    PyObject *draft_cache;   /* the same for drafts (test runs: negative versions) */
    PyObject *empty_str;
} pt_py_globals;

extern pt_py_globals pt_pyg;

/* pq.get_secret(name) -> str (pq_secret.c); raises pq.SecretNotFound for an unknown name.
 * GIL. */
PyObject *pt_py_pq_get_secret(PyObject *module, PyObject *args);
/* Adds pq.SecretNotFound to the pq module once pq.Error exists. Returns 0 or -1 with an error
 * set. GIL. */
int pt_py_pq_secret_setup(PyObject *module);

/* The stored script the calling thread runs (module-level code, a handler or a webhook
 * processing call), NULL when none: pq.INTERFACE_ID and pq.get_state() read it. Set and
 * cleared by handler.c around each call (a pointer store: nothing on the hot path queries the
 * store). Borrowed, valid while the call runs. */
struct pt_script_ref; /* py.h */
extern _Thread_local const struct pt_script_ref *pt_py_current_script;
/* The stored script a `portico run --script` process runs: the current script of every thread
 * that has none of its own (threads the script starts). NULL in workers. */
extern const struct pt_script_ref *pt_py_process_script;

/* Adds the state and script functions (pq_scripts.c: get_state, set_state, list_scripts,
 * run_script, ...) and pq.INTERFACE_ID to the pq module. Returns 0 or -1 with an error set.
 * GIL. */
int pt_py_pq_scripts_setup(PyObject *module);

/* The request id of the request the calling thread is running ("" if none): print() lines
 * and log lines from Python carry it. */
extern _Thread_local const char *pt_py_current_request_id;
/* The cancelled flag of the request the calling thread is running (pt_request.cancelled), or
 * NULL. */
extern _Thread_local const atomic_int *pt_py_current_cancelled;
/* Whether the client of the calling thread's request has left (pq.cancelled()). */
int pt_py_cancelled(void);
/* Raises pq.Cancelled and returns -1 when the client of the calling thread's request has
 * left; else 0. Every pq call that binds arguments or opens a database handle asks. GIL. */
int pt_pq_check_cancelled(void);
/* Set when print() left a partial line in the calling thread's buffer. */
extern _Thread_local int pt_py_print_pending;
/* At most this many bytes of print() output per request (or webhook event) reach the server
 * log; a longer partial line than _PRINT_LINE_MAX (64 KiB) is logged in pieces (prelude.py). */
#define PT_PY_PRINT_LOG_MAX (1 << 20)
/* Ends the calling thread's print() output for a request or event (after flush_print): logs
 * one "[truncated N bytes ...]" line when output was held back, and resets the count. GIL. */
void pt_py_print_end(void);
/* The response of the request the calling thread is running (NULL if none): print() lines are
 * kept in it for the request log (pt_response_print). Borrowed, set by handler.c. */
extern _Thread_local pt_response *pt_py_current_response;

/* Creates the interpreter-wide objects: the _portico_c and pq modules, the prelude.
 * Needs the GIL. Returns 0 or -1 with a Python error set. */
int pt_py_runtime_setup(const char *datadir);

/* Builds the dict-style request object. New reference, NULL with an error set. GIL. */
PyObject *pt_py_request_dict(const pt_request *req);

/* Converts a handler's return value into resp; row lists (lists of dicts, pq rows) are written
 * in `format` (a pt_rows_format: JSON, NDJSON or CSV), other bodies as usual. Returns 0, or -1
 * with a message in why (size whysz) naming the offending type; no Python error is left set.
 * GIL. */
int pt_py_response_fill(PyObject *ret, pt_response *resp, int format, char *why, size_t whysz);
/* The row format the request asks for in its Accept header (a pt_rows_format). */
int pt_py_rows_format(const pt_request *req);

/* Appends obj as JSON to b. Returns 0, or -1 with a Python exception set (TypeError naming the
 * unsupported type, ValueError for too deep nesting, MemoryError). GIL. */
int pt_py_json_dump(pt_buf *b, PyObject *obj);

/* Takes the raised exception (normalised, traceback attached) and clears the error
 * indicator; NULL when none is set. New reference. GIL. */
PyObject *pt_py_fetch_exc(void);
/* Logs the raised exception's traceback after `what`, tagged with the request id; clears it. */
void pt_py_log_exception(const char *what);

/* Appends obj as one CSV field: str as is (quoted as needed), None empty, numbers and bools
 * as in JSON, dicts and lists as JSON text, bytes in base64, dates in ISO 8601. Returns 0, or
 * -1 with a Python exception set. GIL. */
int pt_py_csv_dump(pt_buf *b, PyObject *obj);

/* pq's row lists (pq_rows.c), for the response serializer. GIL. */
/* Is obj a fetch() result whose rows are still in the database cursor? */
int pt_py_rows_lazy(PyObject *obj);
/* Writes a lazy row list from its cursor in C, in format (a pt_rows_format), into body: at most
 * about first_part bytes (0: all). When rows remain and stream is not NULL, *stream gets a body
 * stream (request.h) that owns the cursor and its connection and makes `chunk`-byte parts;
 * without a stream (stream NULL, or the worker's streams at their cap: rows.h) the rest is
 * written into body too. The GIL is released while rows are read. The list is spent either way
 * (touching it later runs the query again). Returns 0, or -1 with a Python exception set. */
int pt_py_rows_serve(PyObject *obj, int format, pt_buf *body, size_t first_part, size_t chunk,
                     pt_body_stream **stream);
/* Readies the row list type; called by pt_py_pq_module. Returns 0 or -1 with an error set. */
int pt_py_pq_rows_setup(void);
/* pq.DatabaseUnavailable (NULL before the pq module exists): handlers that let it escape get a
 * 503 instead of a 500. Borrowed. */
extern PyObject *pt_pq_unavailable;

/* Creates the pq module (PyInit style). New reference. GIL. */
PyObject *pt_py_pq_module(void);
/* Ends a request (or webhook event) that ran script_name on the calling thread: rolls back any
 * transaction the script left open on the thread's pq connections, with a warning in the log,
 * so that the next request on the thread starts clean. Keeps a pending Python error. GIL. */
void pt_py_pq_end_request(const char *script_name);
/* The data dir pq opens warehouses in (borrowed, set once at setup). */
extern const char *pt_py_datadir;

#endif
