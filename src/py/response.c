/* response.c - turns a handler's return value into an HTTP response: the C JSON serializer
 * (output identical to json.dumps with its default separators) and the tuple forms. */
#include "py/py_int.h"

#include <string.h>

#include "core/json.h"

#define MAX_DEPTH 512

static int dump(pt_buf *b, PyObject *obj, int depth);

/* Maps a pt_buf failure onto a Python exception. */
static int
buf_fail(int rc)
{
    if (rc != 0) {
        if (rc == -7 /* PT_ETOOBIG */)
            PyErr_SetString(PyExc_ValueError, "response body too large");
        else
            PyErr_NoMemory();
        return -1;
    }
    return 0;
}

static int
dump_str(pt_buf *b, PyObject *s)
{
    Py_ssize_t n;
    const char *p = PyUnicode_AsUTF8AndSize(s, &n);
    if (p == NULL) {
        /* Lone surrogates cannot be UTF-8: write them replaced, as valid UTF-8 must be. */
        PyErr_Clear();
        PyObject *enc = PyUnicode_AsEncodedString(s, "utf-8", "replace");
        if (enc == NULL)
            return -1;
        int rc = buf_fail(pt_json_string(b, PyBytes_AS_STRING(enc), PyBytes_GET_SIZE(enc)));
        Py_DECREF(enc);
        return rc;
    }
    return buf_fail(pt_json_string(b, p, (size_t)n));
}

static int
dump_int(pt_buf *b, PyObject *obj)
{
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(obj, &overflow);
    if (overflow == 0) {
        if (v == -1 && PyErr_Occurred())
            return -1;
        return buf_fail(pt_json_int(b, v));
    }
    PyObject *s = PyLong_Type.tp_repr(obj);
    if (s == NULL)
        return -1;
    Py_ssize_t n;
    const char *p = PyUnicode_AsUTF8AndSize(s, &n);
    int rc = p != NULL ? buf_fail(pt_buf_append(b, p, (size_t)n)) : -1;
    Py_DECREF(s);
    return rc;
}

/* A dict key as json.dumps writes it: str as is; int, float, bool, None as their JSON text. */
static int
dump_key(pt_buf *b, PyObject *key)
{
    if (PyUnicode_Check(key))
        return dump_str(b, key);
    if (key == Py_True)
        return buf_fail(pt_buf_puts(b, "\"true\""));
    if (key == Py_False)
        return buf_fail(pt_buf_puts(b, "\"false\""));
    if (key == Py_None)
        return buf_fail(pt_buf_puts(b, "\"null\""));
    if (PyLong_Check(key) || PyFloat_Check(key)) {
        pt_buf tmp;
        pt_buf_init(&tmp, 0);
        int rc = PyLong_Check(key) ? dump_int(&tmp, key)
                                   : buf_fail(pt_json_double(&tmp, PyFloat_AS_DOUBLE(key)));
        if (rc == 0)
            rc = buf_fail(pt_json_string(b, tmp.data, tmp.len));
        pt_buf_free(&tmp);
        return rc;
    }
    PyErr_Format(PyExc_TypeError, "keys must be str, int, float, bool or None, not %.100s",
                 Py_TYPE(key)->tp_name);
    return -1;
}

static int
dump_dict(pt_buf *b, PyObject *d, int depth)
{
    Py_ssize_t pos = 0;
    PyObject *k, *v; /* borrowed */
    int first = 1;
    if (buf_fail(pt_buf_putc(b, '{')) != 0)
        return -1;
    while (PyDict_Next(d, &pos, &k, &v)) {
        if (!first && buf_fail(pt_buf_puts(b, ", ")) != 0)
            return -1;
        first = 0;
        if (dump_key(b, k) != 0 || buf_fail(pt_buf_puts(b, ": ")) != 0 ||
            dump(b, v, depth + 1) != 0)
            return -1;
    }
    return buf_fail(pt_buf_putc(b, '}'));
}

static int
dump_seq(pt_buf *b, PyObject *seq, int depth)
{
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq); /* borrowed */
    if (buf_fail(pt_buf_putc(b, '[')) != 0)
        return -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (i > 0 && buf_fail(pt_buf_puts(b, ", ")) != 0)
            return -1;
        if (dump(b, items[i], depth + 1) != 0)
            return -1;
    }
    return buf_fail(pt_buf_putc(b, ']'));
}

static int
dump(pt_buf *b, PyObject *obj, int depth)
{
    if (depth > MAX_DEPTH) {
        PyErr_SetString(PyExc_ValueError, "response nested too deeply");
        return -1;
    }
    if (PyUnicode_Check(obj))
        return dump_str(b, obj);
    if (obj == Py_None)
        return buf_fail(pt_buf_puts(b, "null"));
    if (obj == Py_True)
        return buf_fail(pt_buf_puts(b, "true"));
    if (obj == Py_False)
        return buf_fail(pt_buf_puts(b, "false"));
    if (PyLong_Check(obj))
        return dump_int(b, obj);
    if (PyFloat_Check(obj))
        return buf_fail(pt_json_double(b, PyFloat_AS_DOUBLE(obj)));
    if (PyDict_Check(obj))
        return dump_dict(b, obj, depth);
    if (PyList_Check(obj) || PyTuple_Check(obj))
        return dump_seq(b, obj, depth);
    PyErr_Format(PyExc_TypeError, "Object of type %.100s is not JSON serializable",
                 Py_TYPE(obj)->tp_name);
    return -1;
}

int
pt_py_json_dump(pt_buf *b, PyObject *obj)
{
    return dump(b, obj, 0);
}

/* Copies a headers dict or list of (name, value) pairs into resp. */
static int
fill_headers(PyObject *headers, pt_response *resp, char *why, size_t whysz)
{
    PyObject *items = PyDict_Check(headers) ? PyDict_Items(headers) : Py_NewRef(headers);
    PyObject *seq = items ? PySequence_Fast(items, "") : NULL;
    Py_XDECREF(items);
    if (seq == NULL) {
        PyErr_Clear();
        snprintf(why, whysz, "response headers must be a dict or a list of pairs, not %s",
                 Py_TYPE(headers)->tp_name);
        return -1;
    }
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq); i++) {
        PyObject *pair = PySequence_Fast_GET_ITEM(seq, i); /* borrowed */
        PyObject *name, *value;
        if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) {
            snprintf(why, whysz, "each response header must be a (name, value) pair");
            Py_DECREF(seq);
            return -1;
        }
        name = PyTuple_GET_ITEM(pair, 0);
        value = PyTuple_GET_ITEM(pair, 1);
        PyObject *vs = PyUnicode_Check(value) ? Py_NewRef(value) : PyObject_Str(value);
        Py_ssize_t nn = 0, vn = 0;
        const char *np = PyUnicode_Check(name) ? PyUnicode_AsUTF8AndSize(name, &nn) : NULL;
        const char *vp = vs != NULL ? PyUnicode_AsUTF8AndSize(vs, &vn) : NULL;
        int bad = np == NULL || vp == NULL || nn == 0 || strpbrk(np, "\r\n:") != NULL ||
                  memchr(vp, '\r', (size_t)vn) != NULL || memchr(vp, '\n', (size_t)vn) != NULL;
        if (bad) {
            PyErr_Clear();
            snprintf(why, whysz, "invalid response header %s",
                     np != NULL ? np : "(name is not a str)");
            Py_XDECREF(vs);
            Py_DECREF(seq);
            return -1;
        }
        if (strcasecmp(np, "content-type") == 0)
            resp->content_type = NULL;
        int rc = pt_response_add_header(resp, np, (size_t)nn, vp, (size_t)vn);
        Py_DECREF(vs);
        if (rc != 0) {
            snprintf(why, whysz, "response headers too large");
            Py_DECREF(seq);
            return -1;
        }
    }
    Py_DECREF(seq);
    return 0;
}

int
pt_py_response_fill(PyObject *ret, pt_response *resp, char *why, size_t whysz)
{
    PyObject *body = ret, *headers = NULL;
    if (PyTuple_Check(ret)) {
        Py_ssize_t n = PyTuple_GET_SIZE(ret);
        if (n < 2 || n > 3 || !PyLong_Check(PyTuple_GET_ITEM(ret, 1))) {
            snprintf(why, whysz,
                     "a tuple response must be (body, status) or (body, status, headers)");
            return -1;
        }
        body = PyTuple_GET_ITEM(ret, 0);
        long status = PyLong_AsLong(PyTuple_GET_ITEM(ret, 1));
        if (status < 100 || status > 599) {
            PyErr_Clear();
            snprintf(why, whysz, "response status %ld is not between 100 and 599", status);
            return -1;
        }
        resp->status = (int)status;
        if (n == 3)
            headers = PyTuple_GET_ITEM(ret, 2);
    }

    if (PyUnicode_Check(body)) {
        resp->content_type = "text/plain; charset=utf-8";
        Py_ssize_t n;
        const char *p = PyUnicode_AsUTF8AndSize(body, &n);
        PyObject *enc = NULL;
        if (p == NULL) {
            PyErr_Clear();
            enc = PyUnicode_AsEncodedString(body, "utf-8", "replace");
            if (enc == NULL)
                goto pyfail;
            p = PyBytes_AS_STRING(enc);
            n = PyBytes_GET_SIZE(enc);
        }
        int rc = pt_buf_append(&resp->body, p, (size_t)n);
        Py_XDECREF(enc);
        if (buf_fail(rc) != 0)
            goto pyfail;
    } else if (PyBytes_Check(body) || PyByteArray_Check(body)) {
        resp->content_type = "application/octet-stream";
        const char *p = PyBytes_Check(body) ? PyBytes_AS_STRING(body) : PyByteArray_AS_STRING(body);
        Py_ssize_t n = PyBytes_Check(body) ? PyBytes_GET_SIZE(body) : PyByteArray_GET_SIZE(body);
        if (buf_fail(pt_buf_append(&resp->body, p, (size_t)n)) != 0)
            goto pyfail;
    } else if (body == Py_None || PyDict_Check(body) || PyList_Check(body) || PyLong_Check(body) ||
               PyFloat_Check(body) || PyTuple_Check(body)) {
        resp->content_type = "application/json";
        if (pt_py_json_dump(&resp->body, body) != 0)
            goto pyfail;
    } else {
        snprintf(why, whysz, "handler returned an unsupported type: %s", Py_TYPE(body)->tp_name);
        return -1;
    }
    if (headers != NULL && headers != Py_None && fill_headers(headers, resp, why, whysz) != 0)
        return -1;
    return 0;

pyfail : {
    PyObject *exc = pt_py_fetch_exc();
    PyObject *s = exc != NULL ? PyObject_Str(exc) : NULL;
    int nomem = exc != NULL && PyErr_GivenExceptionMatches(exc, PyExc_MemoryError);
    snprintf(why, whysz, "cannot serialize the response: %s",
             s != NULL && PyUnicode_Check(s) ? PyUnicode_AsUTF8(s) : "error");
    Py_XDECREF(s);
    Py_XDECREF(exc);
    PyErr_Clear();
    if (nomem)
        resp->fatal = 1;
    return -1;
}
}
