/* request.c - builds the dict-style request object handlers receive (DESIGN §2), with
 * interned keys and no Python-level code on the common path. */
#include "py/py_int.h"

#include <string.h>

/* Decodes UTF-8, replacing invalid bytes. New reference. */
static PyObject *
text(pt_str s)
{
    if (s.n == 0) {
        Py_INCREF(pt_pyg.empty_str);
        return pt_pyg.empty_str;
    }
    return PyUnicode_DecodeUTF8(s.p, (Py_ssize_t)s.n, "replace");
}

/* Sets d[key] = value and drops the reference to value (stolen, even on error). */
static int
set_steal(PyObject *d, PyObject *key, PyObject *value)
{
    if (value == NULL)
        return -1;
    int rc = PyDict_SetItem(d, key, value);
    Py_DECREF(value);
    return rc;
}

/* "x-api-key" -> "X-Api-Key" into out (size >= n). */
static void
canonical_name(const char *name, size_t n, char *out)
{
    int up = 1;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (up && c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        else if (!up && c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        out[i] = c;
        up = c == '-';
    }
}

/* The Headers mapping: canonical names; repeated headers joined with ", " as WSGI does. */
static PyObject *
headers_object(const pt_request *req)
{
    PyObject *h = PyObject_CallNoArgs(pt_pyg.headers_type);
    if (h == NULL)
        return NULL;
    for (size_t i = 0; i < req->nheaders; i++) {
        const pt_header *hd = &req->headers[i];
        char stackname[128];
        char *name = hd->name.n <= sizeof(stackname) ? stackname : PyMem_Malloc(hd->name.n);
        if (name == NULL)
            goto fail;
        canonical_name(hd->name.p, hd->name.n, name);
        PyObject *key = PyUnicode_DecodeLatin1(name, (Py_ssize_t)hd->name.n, NULL);
        if (name != stackname)
            PyMem_Free(name);
        if (key == NULL)
            goto fail;
        PyObject *value = PyUnicode_DecodeLatin1(hd->value.p, (Py_ssize_t)hd->value.n, NULL);
        PyObject *prev = value != NULL ? PyDict_GetItemWithError(h, key) : NULL; /* borrowed */
        if (prev != NULL) {
            PyObject *joined = PyUnicode_FromFormat("%U, %U", prev, value);
            Py_DECREF(value);
            value = joined;
        }
        int rc = value != NULL && !PyErr_Occurred() ? PyDict_SetItem(h, key, value) : -1;
        Py_DECREF(key);
        Py_XDECREF(value);
        if (rc != 0)
            goto fail;
    }
    return h;
fail:
    Py_DECREF(h);
    return NULL;
}

static int
is_form(pt_str ct)
{
    static const char url[] = "application/x-www-form-urlencoded";
    static const char mp[] = "multipart/form-data";
    return (ct.n >= sizeof(url) - 1 && strncasecmp(ct.p, url, sizeof(url) - 1) == 0) ||
           (ct.n >= sizeof(mp) - 1 && strncasecmp(ct.p, mp, sizeof(mp) - 1) == 0);
}

/* request['auth']: None on public endpoints, else {"type", "id", "name", "issuer"} naming the
 * caller (absent parts are None). New reference, NULL with an error set. */
static PyObject *
auth_object(const pt_caller *c)
{
    const char *keys[] = {"type", "id", "name", "issuer"};
    const char *values[] = {c->type, c->id, c->name, c->issuer};
    PyObject *d;

    if (c->type == NULL)
        Py_RETURN_NONE;
    if ((d = PyDict_New()) == NULL)
        return NULL;
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        PyObject *v =
            values[i] != NULL
                ? PyUnicode_DecodeUTF8(values[i], (Py_ssize_t)strlen(values[i]), "replace")
                : Py_NewRef(Py_None);
        int rc = v != NULL ? PyDict_SetItemString(d, keys[i], v) : -1;
        Py_XDECREF(v);
        if (rc != 0) {
            Py_DECREF(d);
            return NULL;
        }
    }
    return d;
}

PyObject *
pt_py_request_dict(const pt_request *req)
{
    PyObject *d = PyDict_New();
    PyObject *body = NULL;
    if (d == NULL)
        return NULL;
    body = PyBytes_FromStringAndSize(req->body.p, (Py_ssize_t)req->body.n);
    if (body == NULL)
        goto fail;
    if (set_steal(d, pt_pyg.s_method, text(req->method)) != 0 ||
        set_steal(d, pt_pyg.s_url, text(req->url)) != 0 ||
        set_steal(d, pt_pyg.s_path, text(req->path)) != 0 ||
        set_steal(d, pt_pyg.s_query_string, text(req->query)) != 0 ||
        set_steal(d, pt_pyg.s_headers, headers_object(req)) != 0)
        goto fail;
    /* A form post's fields are in `form` and its `data` is empty, as in Flask (Peliqan's handler
     * templates rely on it); `body` keeps the raw bytes. */
    if (req->body.n > 0 && is_form(req->content_type)) {
        PyObject *ct = text(req->content_type);
        PyObject *form =
            ct ? PyObject_CallFunctionObjArgs(pt_pyg.parse_form, ct, body, NULL) : NULL;
        Py_XDECREF(ct);
        if (set_steal(d, pt_pyg.s_form, form) != 0 ||
            PyDict_SetItem(d, pt_pyg.s_data, pt_pyg.empty_str) != 0)
            goto fail;
    } else if (set_steal(d, pt_pyg.s_form, PyDict_New()) != 0 ||
               set_steal(d, pt_pyg.s_data, text(req->body)) != 0) {
        goto fail;
    }
    if (PyDict_SetItem(d, pt_pyg.s_body, body) != 0)
        goto fail;
    PyObject *params = PyDict_New();
    for (size_t i = 0; params != NULL && i < req->nparams; i++) {
        pt_str name = {req->params[i].name, req->params[i].name_len};
        pt_str value = {req->params[i].value, req->params[i].value_len};
        PyObject *k = text(name);
        if (k == NULL || set_steal(params, k, text(value)) != 0) {
            Py_XDECREF(k);
            Py_CLEAR(params);
            break;
        }
        Py_DECREF(k);
    }
    if (set_steal(d, pt_pyg.s_params, params) != 0)
        goto fail;
    if (req->query.n > 0) {
        PyObject *qs = text(req->query);
        PyObject *q = qs ? PyObject_CallOneArg(pt_pyg.parse_query, qs) : NULL;
        Py_XDECREF(qs);
        if (set_steal(d, pt_pyg.s_query, q) != 0)
            goto fail;
    } else if (set_steal(d, pt_pyg.s_query, PyDict_New()) != 0) {
        goto fail;
    }
    if (set_steal(d, pt_pyg.s_auth, auth_object(&req->auth)) != 0 ||
        set_steal(d, pt_pyg.s_remote_addr, text(req->remote_addr)) != 0 ||
        set_steal(d, pt_pyg.s_request_id, PyUnicode_FromString(req->id)) != 0)
        goto fail;
    Py_DECREF(body);
    return d;
fail:
    Py_XDECREF(body);
    Py_DECREF(d);
    return NULL;
}
