/* handler.c - runs one request through a script's handler: finds (or loads) the script
 * version, builds the request, calls handler(request) or handler(), fills the response. */
#include "py/py_int.h"

#include <string.h>

#include "core/log.h"
#include "py/py.h"

_Thread_local const struct pt_script_ref *pt_py_current_script;
_Thread_local const atomic_int *pt_py_current_cancelled;

int
pt_py_cancelled(void)
{
    return pt_py_current_cancelled != NULL && atomic_load(pt_py_current_cancelled);
}

/* Returns the cache entry (version, handler, flask_style, module) of the script version,
 * loading it on first use. Borrowed reference; NULL with an error set. */
static PyObject *
script_entry(const pt_script_ref *script)
{
    /* A draft (a test run's, version < 0) is cached apart: never in place of a published
     * version's module. */
    PyObject *cache = script->version < 0 ? pt_pyg.draft_cache : pt_pyg.script_cache;
    PyObject *entry = PyDict_GetItemString(cache, script->name); /* borrowed */
    if (entry != NULL && PyLong_AsLong(PyTuple_GET_ITEM(entry, 0)) == script->version)
        return entry;
    PyObject *pq = PyImport_ImportModule("pq");
    if (pq == NULL)
        return NULL;
    PyObject *loaded =
        PyObject_CallFunction(pt_pyg.load_script, "sis#OO", script->name, script->version,
                              script->source, (Py_ssize_t)script->source_len, pq, cache);
    Py_DECREF(pq);
    if (loaded == NULL)
        return NULL;
    Py_DECREF(loaded); /* the cache holds it */
    pt_log_info("loaded script %s v%d", script->name, script->version);
    return PyDict_GetItemString(cache, script->name);
}

/* Turns the raised exception into the response: 400 for BadRequest, 500 otherwise (the
 * traceback goes to the log only); MemoryError marks the worker for replacement. */
static void
fail_with_exception(const pt_request *req, pt_response *resp, const char *what)
{
    PyObject *exc = pt_py_fetch_exc();
    if (exc != NULL && PyErr_GivenExceptionMatches(exc, pt_pyg.bad_request)) {
        PyObject *s = PyObject_Str(exc);
        pt_response_error(resp, 400, s && PyUnicode_Check(s) ? PyUnicode_AsUTF8(s) : "bad request",
                          req->id);
        Py_XDECREF(s);
        Py_DECREF(exc);
        PyErr_Clear();
        return;
    }
    if (exc != NULL && pt_pq_unavailable != NULL &&
        PyErr_GivenExceptionMatches(exc, pt_pq_unavailable)) {
        /* The database is down or unreachable: the server is fine, try again later. */
        PyObject *s = PyObject_Str(exc);
        pt_log_error("request %s: %s: pq.DatabaseUnavailable: %s", req->id, what,
                     s != NULL && PyUnicode_Check(s) ? PyUnicode_AsUTF8(s) : "?");
        Py_XDECREF(s);
        Py_DECREF(exc);
        PyErr_Clear();
        pt_response_error(resp, 503, "database unavailable", req->id);
        return;
    }
    int nomem = exc != NULL && PyErr_GivenExceptionMatches(exc, PyExc_MemoryError);
    PyObject *text = NULL;
    if (!nomem && exc != NULL)
        text = PyObject_CallOneArg(pt_pyg.format_exc, exc);
    if (text != NULL && PyUnicode_Check(text)) {
        Py_ssize_t tlen;
        const char *t = PyUnicode_AsUTF8AndSize(text, &tlen);
        pt_log_error("request %s: %s:\n%s", req->id, what, t);
        pt_response_set_traceback(resp, t, (size_t)tlen);
    } else if (nomem)
        pt_log_error("request %s: %s: MemoryError (the worker memory limit was reached)", req->id,
                     what);
    else
        pt_log_error("request %s: %s", req->id, what);
    Py_XDECREF(text);
    Py_XDECREF(exc);
    PyErr_Clear();
    pt_response_error(resp, 500, nomem ? "out of memory" : "internal error", req->id);
    if (nomem)
        resp->fatal = 1;
}

void
pt_py_handle(const pt_script_ref *script, const pt_request *req, pt_response *resp)
{
    PyObject *request = NULL, *ret = NULL, *tmp;
    int flask_style = 0;
    char why[256];

    pt_py_current_request_id = req->id;
    pt_py_current_script = script; /* pq.INTERFACE_ID, pq.get_state() */
    pt_py_current_cancelled = req->cancelled;
    pt_py_current_response = resp; /* print() lines */
    PyObject *entry = script_entry(script);
    if (entry == NULL) {
        fail_with_exception(req, resp, "cannot load the script");
        goto done;
    }
    PyObject *handler = PyTuple_GET_ITEM(entry, 1);      /* borrowed */
    flask_style = PyTuple_GET_ITEM(entry, 2) == Py_True; /* borrowed */
    Py_INCREF(entry); /* a reload by another thread must not free it under us */

    request = pt_py_request_dict(req);
    if (request == NULL) {
        Py_DECREF(entry);
        fail_with_exception(req, resp, "cannot build the request");
        goto done;
    }
    if (flask_style) {
        tmp = PyObject_CallOneArg(pt_pyg.set_current, request);
        Py_XDECREF(tmp);
        ret = tmp != NULL ? PyObject_CallNoArgs(handler) : NULL;
    } else {
        ret = PyObject_CallOneArg(handler, request);
    }
    Py_DECREF(entry);
    if (ret == NULL) {
        if (pt_py_cancelled()) /* pq.Cancelled, or anything else: nobody reads the answer */
            PyErr_Clear();
        else
            fail_with_exception(req, resp, "handler raised");
        goto done;
    }
    if (pt_py_response_fill(ret, resp, pt_py_rows_format(req), why, sizeof(why)) != 0) {
        pt_log_error("request %s: %s", req->id, why);
        pt_response_set_traceback(resp, why, strlen(why));
        int fatal = resp->fatal;
        pt_response_error(resp, 500, "internal error", req->id);
        resp->fatal = fatal;
    }
done:
    if (pt_py_cancelled()) /* nobody to answer: the access log says so */
        pt_response_error(resp, 499, "client closed request", req->id);
    if (pt_py_print_pending) {
        /* A handler printed a line without its newline: log it with this request's id. */
        pt_py_print_pending = 0;
        tmp = PyObject_CallNoArgs(pt_pyg.flush_print);
        Py_XDECREF(tmp);
    }
    pt_py_print_end();
    if (flask_style) {
        tmp = PyObject_CallOneArg(pt_pyg.set_current, Py_None);
        Py_XDECREF(tmp);
    }
    PyErr_Clear();
    Py_XDECREF(ret);
    Py_XDECREF(request);
    pt_py_pq_end_request(script->name);
    pt_response_output_end(resp);
    pt_py_current_response = NULL;
    pt_py_current_request_id = "";
    pt_py_current_script = NULL;
    pt_py_current_cancelled = NULL;
}

/* "ExceptionType: message" of the raised exception into err; logs the traceback. */
static void
describe_exception(const char *what, const char *tag, char *err, size_t errsz)
{
    PyObject *exc = pt_py_fetch_exc();
    PyObject *text = exc != NULL ? PyObject_CallOneArg(pt_pyg.format_exc, exc) : NULL;
    PyObject *msg = exc != NULL ? PyObject_Str(exc) : NULL;
    snprintf(err, errsz, "%s: %s", exc != NULL ? Py_TYPE(exc)->tp_name : "Error",
             msg != NULL && PyUnicode_Check(msg) ? PyUnicode_AsUTF8(msg) : "");
    if (text != NULL && PyUnicode_Check(text))
        pt_log_error("%s %s:\n%s", tag, what, PyUnicode_AsUTF8(text));
    else
        pt_log_error("%s %s: %s", tag, what, err);
    Py_XDECREF(msg);
    Py_XDECREF(text);
    Py_XDECREF(exc);
    PyErr_Clear();
}

static PyObject *
str_of(pt_str s)
{
    return PyUnicode_DecodeUTF8(s.p != NULL ? s.p : "", (Py_ssize_t)s.n, "replace");
}

int
pt_py_handle_event(const pt_script_ref *script, const pt_py_event *ev, char *err, size_t errsz)
{
    char tag[64];
    int rc = -1;
    PyObject *event = NULL, *ret = NULL;

    snprintf(tag, sizeof(tag), "webhook event %lld:", ev->id);
    pt_py_current_script = script;
    PyObject *entry = script_entry(script); /* borrowed */
    if (entry == NULL) {
        describe_exception("cannot load the script", tag, err, errsz);
        /* Module-level code may have opened a transaction before it raised. */
        pt_py_pq_end_request(script->name);
        pt_py_current_script = NULL;
        return -1;
    }
    Py_INCREF(entry);
    PyObject *make = PyObject_GetAttrString(pt_pyg.prelude, "make_event");
    if (make != NULL)
        event = PyObject_CallFunction(
            make, "LNNNNNNNNiNi", ev->id, str_of(ev->received_at), str_of(ev->source),
            str_of(ev->method), str_of(ev->path), str_of(ev->query_string),
            str_of(ev->headers_json),
            ev->content_type.n > 0 ? str_of(ev->content_type) : Py_NewRef(Py_None),
            str_of(ev->body), ev->body_base64, str_of(ev->remote_addr), ev->attempts);
    Py_XDECREF(make);
    if (event == NULL) {
        describe_exception("cannot build the event", tag, err, errsz);
        goto done;
    }
    ret = PyObject_CallOneArg(PyTuple_GET_ITEM(entry, 1), event); /* borrowed handler */
    if (ret == NULL) {
        describe_exception("handler raised", tag, err, errsz);
        goto done;
    }
    rc = 0;
done:
    if (pt_py_print_pending) {
        pt_py_print_pending = 0;
        PyObject *tmp = PyObject_CallNoArgs(pt_pyg.flush_print);
        Py_XDECREF(tmp);
        PyErr_Clear();
    }
    pt_py_print_end();
    Py_XDECREF(ret);
    Py_XDECREF(event);
    Py_DECREF(entry);
    pt_py_pq_end_request(script->name);
    pt_py_current_script = NULL;
    return rc;
}
