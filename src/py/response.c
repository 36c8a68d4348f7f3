/* response.c - turns a handler's return value into an HTTP response: the C JSON serializer
 * (output identical to json.dumps with its default separators), the tuple forms, row lists as
 * JSON, NDJSON or CSV (from pq's cursor when the rows were not touched), and streaming. */
#include "py/py_int.h"

#include <datetime.h>
#include <string.h>
#include <strings.h>

#include "core/json.h"
#include "py/pq_int.h"
#include "warehouse/rows.h"

/* A lazy row list is written into the response up to this size; past it the rest streams. */
#define STREAM_AFTER (256 * 1024)
#define STREAM_CHUNK (64 * 1024)

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

/* Values pq gives handlers that json.dumps rejects: bytes as base64, dates and times in ISO
 * 8601, Decimal as a number. Anything else is a TypeError, as in json.dumps. */
static int
dump_other(pt_buf *b, PyObject *obj)
{
    int rc;

    if (PyBytes_Check(obj) || PyByteArray_Check(obj)) {
        const char *p = PyBytes_Check(obj) ? PyBytes_AS_STRING(obj) : PyByteArray_AS_STRING(obj);
        Py_ssize_t n = PyBytes_Check(obj) ? PyBytes_GET_SIZE(obj) : PyByteArray_GET_SIZE(obj);
        rc = pt_buf_putc(b, '"');
        if (rc == 0)
            rc = pt_rows_base64(b, p, (size_t)n);
        if (rc == 0)
            rc = pt_buf_putc(b, '"');
        return buf_fail(rc);
    }
    if (PyDateTimeAPI == NULL)
        PyDateTime_IMPORT;
    if (PyDateTimeAPI != NULL && (PyDate_Check(obj) || PyTime_Check(obj))) {
        PyObject *s = PyObject_CallMethod(obj, "isoformat", NULL);
        if (s == NULL)
            return -1;
        rc = PyUnicode_Check(s) ? dump_str(b, s) : -1;
        Py_DECREF(s);
        return rc;
    }
    if (strcmp(Py_TYPE(obj)->tp_name, "decimal.Decimal") == 0) {
        /* str() of a NaN is "NaN", "-NaN", "sNaN" or "-sNaN": all but the first are not JSON
         * (nor json.loads input); every NaN is written as a float NaN is. */
        PyObject *nan = PyObject_CallMethod(obj, "is_nan", NULL);
        int is_nan = nan != NULL ? PyObject_IsTrue(nan) : -1;
        Py_XDECREF(nan);
        if (is_nan != 0)
            return is_nan < 0 ? -1 : buf_fail(pt_buf_puts(b, "NaN"));
        PyObject *s = PyObject_Str(obj);
        Py_ssize_t n;
        const char *p = s != NULL ? PyUnicode_AsUTF8AndSize(s, &n) : NULL;
        rc = p != NULL ? buf_fail(pt_buf_append(b, p, (size_t)n)) : -1;
        Py_XDECREF(s);
        return rc;
    }
    PyErr_Clear();
    PyErr_Format(PyExc_TypeError, "Object of type %.100s is not JSON serializable",
                 Py_TYPE(obj)->tp_name);
    return -1;
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
    if (PyObject_TypeCheck(obj, &pt_pq_rows_type)) {
        /* pq rows: straight from the cursor when untouched (nested in a dict, say). */
        if (pt_py_rows_lazy(obj))
            return pt_py_rows_serve(obj, PT_ROWS_JSON, b, 0, 0, NULL);
        if (pt_pq_rows_ready(obj) != 0)
            return -1;
        return dump_seq(b, obj, depth);
    }
    if (PyList_Check(obj) || PyTuple_Check(obj))
        return dump_seq(b, obj, depth);
    return dump_other(b, obj);
}

int
pt_py_json_dump(pt_buf *b, PyObject *obj)
{
    return dump(b, obj, 0);
}

int
pt_py_csv_dump(pt_buf *b, PyObject *obj)
{
    pt_buf tmp;
    int rc;

    if (obj == Py_None)
        return 0;
    if (PyUnicode_Check(obj)) {
        Py_ssize_t n;
        const char *p = PyUnicode_AsUTF8AndSize(obj, &n);
        if (p == NULL)
            return -1;
        return buf_fail(pt_rows_csv_field(b, p, (size_t)n));
    }
    if (PyBytes_Check(obj) || PyByteArray_Check(obj)) {
        const char *p = PyBytes_Check(obj) ? PyBytes_AS_STRING(obj) : PyByteArray_AS_STRING(obj);
        Py_ssize_t n = PyBytes_Check(obj) ? PyBytes_GET_SIZE(obj) : PyByteArray_GET_SIZE(obj);
        return buf_fail(pt_rows_base64(b, p, (size_t)n));
    }
    /* Everything else as its JSON text (numbers, true/false, objects), quoted as CSV needs;
     * JSON strings (dates) lose their JSON quotes. */
    pt_buf_init(&tmp, 0);
    rc = dump(&tmp, obj, 0);
    if (rc == 0 && tmp.len >= 2 && tmp.data[0] == '"') {
        PyObject *s = PyObject_TypeCheck(obj, &PyUnicode_Type) ? NULL : PyObject_Str(obj);
        Py_ssize_t n;
        const char *p = s != NULL ? PyUnicode_AsUTF8AndSize(s, &n) : NULL;
        if (PyDateTimeAPI != NULL && (PyDate_Check(obj) || PyTime_Check(obj))) {
            Py_XDECREF(s);
            s = PyObject_CallMethod(obj, "isoformat", NULL);
            p = s != NULL ? PyUnicode_AsUTF8AndSize(s, &n) : NULL;
        }
        rc = p != NULL ? buf_fail(pt_rows_csv_field(b, p, (size_t)n)) : -1;
        Py_XDECREF(s);
    } else if (rc == 0) {
        rc = buf_fail(pt_rows_csv_field(b, tmp.data, tmp.len));
    }
    pt_buf_free(&tmp);
    return rc;
}

/* Is body a list of dicts (a row list made or changed by the handler)? */
static int
is_row_list(PyObject *body)
{
    Py_ssize_t i;

    if (!PyList_Check(body))
        return 0;
    if (PyObject_TypeCheck(body, &pt_pq_rows_type) && pt_pq_rows_ready(body) != 0)
        return -1;
    for (i = 0; i < PyList_GET_SIZE(body); i++)
        if (!PyDict_Check(PyList_GET_ITEM(body, i)))
            return 0;
    return 1;
}

/* A list of dicts as NDJSON (one object a line) or CSV (the union of the keys, in the order
 * first seen, as the header). */
static int
dump_rows(pt_buf *b, PyObject *list, int format)
{
    PyObject *cols = NULL, *k, *v; /* k, v borrowed */
    Py_ssize_t i, j, pos;
    int rc = -1;

    if (format == PT_ROWS_NDJSON) {
        for (i = 0; i < PyList_GET_SIZE(list); i++)
            if (dump(b, PyList_GET_ITEM(list, i), 0) != 0 || buf_fail(pt_buf_putc(b, '\n')) != 0)
                return -1;
        return 0;
    }
    cols = PyDict_New(); /* insertion-ordered set of the column names */
    if (cols == NULL)
        return -1;
    for (i = 0; i < PyList_GET_SIZE(list); i++) {
        pos = 0;
        while (PyDict_Next(PyList_GET_ITEM(list, i), &pos, &k, &v))
            if (PyDict_SetDefault(cols, k, Py_None) == NULL)
                goto done;
    }
    pos = 0;
    j = 0;
    while (PyDict_Next(cols, &pos, &k, &v)) {
        PyObject *name = PyUnicode_Check(k) ? Py_NewRef(k) : PyObject_Str(k);
        if (name == NULL)
            goto done;
        int frc = (j++ > 0 ? buf_fail(pt_buf_putc(b, ',')) : 0);
        if (frc == 0)
            frc = pt_py_csv_dump(b, name);
        Py_DECREF(name);
        if (frc != 0)
            goto done;
    }
    if (j > 0 && buf_fail(pt_buf_puts(b, "\r\n")) != 0)
        goto done;
    for (i = 0; i < PyList_GET_SIZE(list); i++) {
        PyObject *row = PyList_GET_ITEM(list, i); /* borrowed */
        pos = 0;
        j = 0;
        while (PyDict_Next(cols, &pos, &k, &v)) {
            PyObject *val = PyDict_GetItemWithError(row, k); /* borrowed */
            if (val == NULL && PyErr_Occurred())
                goto done;
            if ((j++ > 0 && buf_fail(pt_buf_putc(b, ',')) != 0) ||
                (val != NULL && pt_py_csv_dump(b, val) != 0))
                goto done;
        }
        if (buf_fail(pt_buf_puts(b, "\r\n")) != 0)
            goto done;
    }
    rc = 0;
done:
    Py_DECREF(cols);
    return rc;
}

int
pt_py_rows_format(const pt_request *req)
{
    for (size_t i = 0; i < req->nheaders; i++) {
        const pt_header *h = &req->headers[i];
        if (h->name.n != 6 || memcmp(h->name.p, "accept", 6) != 0)
            continue;
        /* The first of the types we make that the client lists wins (q-values are not
         * weighed); JSON when it lists none of them. */
        const char *v = h->value.p, *csv, *nd, *json;
        csv = strcasestr(v, "text/csv");
        nd = strcasestr(v, "application/x-ndjson");
        if (nd == NULL)
            nd = strcasestr(v, "application/ndjson");
        json = strcasestr(v, "application/json");
        if (csv != NULL && (nd == NULL || csv < nd) && (json == NULL || csv < json))
            return PT_ROWS_CSV;
        if (nd != NULL && (json == NULL || nd < json))
            return PT_ROWS_NDJSON;
        return PT_ROWS_JSON;
    }
    return PT_ROWS_JSON;
}

static const char *
format_type(int format)
{
    return format == PT_ROWS_CSV      ? "text/csv; charset=utf-8"
           : format == PT_ROWS_NDJSON ? "application/x-ndjson"
                                      : "application/json";
}

/* Is name[0..n) an RFC 9110 token (no NUL, no separators, not empty)? */
static int
is_token(const char *name, size_t n)
{
    static const char specials[] = "\"(),/:;<=>?@[\\]{}";
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c <= 32 || c >= 127 || strchr(specials, c) != NULL)
            return 0;
    }
    return 1;
}

/* Headers that describe the connection or the framing, which Portico sets. */
static int
is_framing(const char *name)
{
    static const char *const names[] = {"content-length", "transfer-encoding", "connection",
                                        "keep-alive",     "upgrade",           "te",
                                        "trailer",        "proxy-connection"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcasecmp(name, names[i]) == 0)
            return 1;
    return 0;
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
        int bad = np == NULL || vp == NULL || !is_token(np, (size_t)nn) ||
                  memchr(vp, '\r', (size_t)vn) != NULL || memchr(vp, '\n', (size_t)vn) != NULL ||
                  memchr(vp, '\0', (size_t)vn) != NULL;
        if (bad) {
            PyErr_Clear();
            snprintf(why, whysz, "invalid response header %s",
                     np != NULL ? np : "(name is not a str)");
            Py_XDECREF(vs);
            Py_DECREF(seq);
            return -1;
        }
        if (is_framing(np)) {
            /* Portico frames the response itself; a handler passing a partner's headers
             * through must not be able to contradict it (request smuggling). */
            Py_DECREF(vs);
            continue;
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
pt_py_response_fill(PyObject *ret, pt_response *resp, int format, char *why, size_t whysz)
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
    } else if (pt_py_rows_lazy(body)) {
        /* fetch() rows returned as they are: from the cursor, streamed when large. */
        resp->content_type = format_type(format);
        if (pt_py_rows_serve(body, format, &resp->body, STREAM_AFTER, STREAM_CHUNK,
                             &resp->stream) != 0)
            goto pyfail;
    } else if (format != PT_ROWS_JSON && is_row_list(body) != 0) {
        resp->content_type = format_type(format);
        if (PyErr_Occurred() || dump_rows(&resp->body, body, format) != 0)
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
