/* py_int.h - internals shared by the files of src/py/ (the only place that sees Python.h). */
#ifndef PT_PY_INT_H
#define PT_PY_INT_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "core/buf.h"
#include "server/request.h"

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
    PyObject *script_cache;  /* dict: script name -> (version, handler, flask_style) */
    PyObject *empty_str;
} pt_py_globals;

extern pt_py_globals pt_pyg;

/* The request id of the request the calling thread is running ("" if none): print() lines
 * and log lines from Python carry it. */
extern _Thread_local const char *pt_py_current_request_id;
/* Set when print() left a partial line in the calling thread's buffer. */
extern _Thread_local int pt_py_print_pending;

/* Creates the interpreter-wide objects: the _portico_c and pq modules, the prelude.
 * Needs the GIL. Returns 0 or -1 with a Python error set. */
int pt_py_runtime_setup(const char *datadir);

/* Builds the dict-style request object. New reference, NULL with an error set. GIL. */
PyObject *pt_py_request_dict(const pt_request *req);

/* Converts a handler's return value into resp. Returns 0, or -1 with a message in why
 * (size whysz) naming the offending type; no Python error is left set. GIL. */
int pt_py_response_fill(PyObject *ret, pt_response *resp, char *why, size_t whysz);

/* Appends obj as JSON to b. Returns 0, or -1 with a Python exception set (TypeError naming the
 * unsupported type, ValueError for too deep nesting, MemoryError). GIL. */
int pt_py_json_dump(pt_buf *b, PyObject *obj);

/* Takes the raised exception (normalised, traceback attached) and clears the error
 * indicator; NULL when none is set. New reference. GIL. */
PyObject *pt_py_fetch_exc(void);
/* Logs the raised exception's traceback after `what`, tagged with the request id; clears it. */
void pt_py_log_exception(const char *what);

/* Creates the pq module (PyInit style). New reference. GIL. */
PyObject *pt_py_pq_module(void);
/* The data dir pq opens warehouses in (borrowed, set once at setup). */
extern const char *pt_py_datadir;

#endif
