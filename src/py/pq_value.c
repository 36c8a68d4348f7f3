/* pq_value.c - converting values for pq: a database value into a Python object (numbers, text,
 * bytes, dates and times, JSON) and a Python object into a statement parameter (borrowing its
 * text, or keeping a converted copy alive). The bottom of pq: it calls nothing else of pq.
 * GIL for all. */
#include "py/pq_int.h"

#include <datetime.h>
#include <jansson.h>
#include <string.h>

#include "core/err.h"

static PyObject *py_json_loads, *py_json_dumps;               /* json.loads, json.dumps */
static PyObject *from_iso_date, *from_iso_time, *from_iso_dt; /* date.fromisoformat ... */

/* ---- values ------------------------------------------------------------------------------ */

static PyObject *
json_to_py(json_t *j)
{
    PyObject *out = NULL, *item = NULL, *key = NULL;

    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        const char *k;
        json_t *v;
        out = PyDict_New();
        if (out == NULL)
            return NULL;
        json_object_foreach(j, k, v)
        {
            key = PyUnicode_DecodeUTF8(k, (Py_ssize_t)strlen(k), "replace");
            item = key != NULL ? json_to_py(v) : NULL;
            if (item == NULL || PyDict_SetItem(out, key, item) != 0)
                goto fail;
            Py_CLEAR(key);
            Py_CLEAR(item);
        }
        return out;
    }
    case JSON_ARRAY: {
        size_t i, n = json_array_size(j);
        out = PyList_New((Py_ssize_t)n);
        if (out == NULL)
            return NULL;
        for (i = 0; i < n; i++) {
            item = json_to_py(json_array_get(j, i));
            if (item == NULL)
                goto fail;
            PyList_SET_ITEM(out, (Py_ssize_t)i, item); /* steals */
            item = NULL;
        }
        return out;
    }
    case JSON_STRING:
        return PyUnicode_DecodeUTF8(json_string_value(j), (Py_ssize_t)json_string_length(j),
                                    "replace");
    case JSON_INTEGER:
        return PyLong_FromLongLong(json_integer_value(j));
    case JSON_REAL:
        return PyFloat_FromDouble(json_real_value(j));
    case JSON_TRUE:
        Py_RETURN_TRUE;
    case JSON_FALSE:
        Py_RETURN_FALSE;
    case JSON_NULL:
        Py_RETURN_NONE;
    }
    Py_RETURN_NONE;
fail:
    Py_XDECREF(key);
    Py_XDECREF(item);
    Py_XDECREF(out);
    return NULL;
}

/* A JSON document as Python objects: jansson first, json.loads for what it rejects (NaN,
 * integers past 64 bits). */
static PyObject *
json_text_to_py(const char *s, size_t n)
{
    json_t *j = json_loadb(s, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    PyObject *text, *out;

    if (j != NULL) {
        out = json_to_py(j);
        json_decref(j);
        return out;
    }
    text = PyUnicode_DecodeUTF8(s, (Py_ssize_t)n, "replace");
    if (text == NULL)
        return NULL;
    out = PyObject_CallOneArg(py_json_loads, text);
    if (out == NULL) { /* not JSON after all: the text */
        PyErr_Clear();
        return text;
    }
    Py_DECREF(text);
    return out;
}

PyObject *
pt_pq_value_to_py(const pt_value *v, pt_vtype coltype, const pq_conv *conv)
{
    PyObject *text, *out, *fn;

    switch (v->type) {
    case PT_V_NULL:
        if (PT_V_IS_DATETIME(coltype) && conv->fillnat != NULL)
            return Py_NewRef(conv->fillnat);
        return Py_NewRef(conv->fillna != NULL ? conv->fillna : Py_None);
    case PT_V_INT:
        return PyLong_FromLongLong(v->u.i);
    case PT_V_BOOL:
        return PyBool_FromLong((long)v->u.i);
    case PT_V_FLOAT:
        return PyFloat_FromDouble(v->u.f);
    case PT_V_TEXT:
        return PyUnicode_DecodeUTF8(v->u.s.p, (Py_ssize_t)v->u.s.n, "replace");
    case PT_V_BLOB:
        return PyBytes_FromStringAndSize(v->u.s.p, (Py_ssize_t)v->u.s.n);
    case PT_V_NUMERIC:
        text = PyUnicode_DecodeUTF8(v->u.s.p, (Py_ssize_t)v->u.s.n, "replace");
        if (text == NULL || !conv->python_types)
            return text;
        /* Peliqan's semantics: numeric and decimal columns are floats, 12 included. */
        out = PyFloat_FromString(text);
        if (out == NULL) {
            PyErr_Clear();
            return text;
        }
        Py_DECREF(text);
        return out;
    case PT_V_DATE:
    case PT_V_TIME:
    case PT_V_TIMESTAMP:
        text = PyUnicode_DecodeUTF8(v->u.s.p, (Py_ssize_t)v->u.s.n, "replace");
        if (text == NULL || conv->dt_as_str)
            return text;
        fn = v->type == PT_V_DATE   ? from_iso_date
             : v->type == PT_V_TIME ? from_iso_time
                                    : from_iso_dt;
        out = PyObject_CallOneArg(fn, text);
        if (out == NULL) { /* "infinity", BC dates: no Python equivalent, the text */
            PyErr_Clear();
            return text;
        }
        Py_DECREF(text);
        return out;
    case PT_V_JSON:
        if (!conv->python_types)
            return PyUnicode_DecodeUTF8(v->u.s.p, (Py_ssize_t)v->u.s.n, "replace");
        return json_text_to_py(v->u.s.p, v->u.s.n);
    }
    Py_RETURN_NONE;
}

/* ---- Python values to statement parameters ----------------------------------------------- */

/* str(obj) or obj.isoformat() / json.dumps(obj) kept alive in keep; v borrows its UTF-8. */
static int
keep_text(PyObject *s, pt_value *v, pt_vtype type, PyObject *keep)
{
    Py_ssize_t n;
    const char *p;

    if (s == NULL)
        return -1;
    if (PyList_Append(keep, s) != 0) {
        Py_DECREF(s);
        return -1;
    }
    Py_DECREF(s); /* keep holds it */
    p = PyUnicode_AsUTF8AndSize(s, &n);
    if (p == NULL)
        return -1;
    v->type = type;
    v->u.s.p = p;
    v->u.s.n = (size_t)n;
    return 0;
}

int
pt_pq_to_value(PyObject *obj, pt_value *v, PyObject *keep)
{
    if (obj == Py_None) {
        v->type = PT_V_NULL;
    } else if (PyBool_Check(obj)) {
        v->type = PT_V_BOOL;
        v->u.i = obj == Py_True;
    } else if (PyLong_Check(obj)) {
        int overflow = 0;
        v->type = PT_V_INT;
        v->u.i = PyLong_AsLongLongAndOverflow(obj, &overflow);
        if (overflow != 0) /* past 64 bits: as exact decimal text */
            return keep_text(PyObject_Str(obj), v, PT_V_NUMERIC, keep);
        if (v->u.i == -1 && PyErr_Occurred())
            return -1;
    } else if (PyFloat_Check(obj)) {
        v->type = PT_V_FLOAT;
        v->u.f = PyFloat_AS_DOUBLE(obj);
    } else if (PyUnicode_Check(obj)) {
        Py_ssize_t n;
        v->type = PT_V_TEXT;
        v->u.s.p = PyUnicode_AsUTF8AndSize(obj, &n);
        if (v->u.s.p == NULL)
            return -1;
        v->u.s.n = (size_t)n;
    } else if (PyBytes_Check(obj)) {
        v->type = PT_V_BLOB;
        v->u.s.p = PyBytes_AS_STRING(obj);
        v->u.s.n = (size_t)PyBytes_GET_SIZE(obj);
    } else if (PyByteArray_Check(obj)) {
        /* Mutable: another thread could resize it while the statement runs without the GIL.
         * Bind a bytes copy, kept alive in keep. */
        PyObject *b =
            PyBytes_FromStringAndSize(PyByteArray_AS_STRING(obj), PyByteArray_GET_SIZE(obj));
        if (b == NULL || PyList_Append(keep, b) != 0) {
            Py_XDECREF(b);
            return -1;
        }
        Py_DECREF(b); /* keep holds it */
        v->type = PT_V_BLOB;
        v->u.s.p = PyBytes_AS_STRING(b);
        v->u.s.n = (size_t)PyBytes_GET_SIZE(b);
    } else if (PyDict_Check(obj) || PyList_Check(obj) || PyTuple_Check(obj)) {
        PyObject *s = PyObject_CallOneArg(py_json_dumps, obj);
        if (s == NULL) {
            PyObject *exc = pt_py_fetch_exc();
            PyErr_Format(pt_pq_bad_arg, "cannot store a %.100s value as JSON: %S",
                         Py_TYPE(obj)->tp_name, exc != NULL ? exc : Py_None);
            Py_XDECREF(exc);
            return -1;
        }
        return keep_text(s, v, PT_V_JSON, keep);
    } else if (PyDateTime_Check(obj) || PyDate_Check(obj) || PyTime_Check(obj)) {
        return keep_text(PyObject_CallMethod(obj, "isoformat", NULL), v, PT_V_TEXT, keep);
    } else if (strcmp(Py_TYPE(obj)->tp_name, "decimal.Decimal") == 0) {
        return keep_text(PyObject_Str(obj), v, PT_V_NUMERIC, keep);
    } else {
        PyErr_Format(pt_pq_bad_arg,
                     "cannot store a value of type %.100s (use None, bool, int, float, str, "
                     "bytes, dict, list, date/datetime or Decimal)",
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    return 0;
}

int
pt_pq_params(PyObject *params, pt_value **vals, size_t *n, PyObject *keep, PyObject **snapshot)
{
    PyObject *seq = NULL;
    size_t i, count;

    *vals = NULL;
    *n = 0;
    if (snapshot != NULL)
        *snapshot = NULL;
    if (params == NULL || params == Py_None)
        return 0;
    if (PyDict_Check(params) || PyUnicode_Check(params) || PyBytes_Check(params)) {
        PyErr_SetString(pt_pq_bad_arg, "params must be a list or tuple of values");
        return -1;
    }
    /* A tuple of the items, never the caller's list (which PySequence_Fast would return): the
     * values are bound while the GIL is released, and converting one may run Python code; the
     * list could lose items under us either way. */
    seq = PySequence_Tuple(params);
    if (seq == NULL) {
        PyErr_Clear();
        PyErr_SetString(pt_pq_bad_arg, "params must be a list or tuple of values");
        return -1;
    }
    count = (size_t)PyTuple_GET_SIZE(seq);
    if (count > PT_WH_MAX_PARAMS) {
        PyErr_Format(pt_pq_bad_arg, "too many params (at most %d)", PT_WH_MAX_PARAMS);
        goto fail;
    }
    *vals = PyMem_Calloc(count > 0 ? count : 1, sizeof **vals);
    if (*vals == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    for (i = 0; i < count; i++)
        if (pt_pq_to_value(PyTuple_GET_ITEM(seq, (Py_ssize_t)i), &(*vals)[i], keep) != 0)
            goto fail;
    /* The items must outlive the call: keep the tuple. */
    if (PyList_Append(keep, seq) != 0)
        goto fail;
    if (snapshot != NULL)
        *snapshot = seq; /* borrowed: keep holds it */
    Py_DECREF(seq);
    *n = count;
    return 0;
fail:
    PyMem_Free(*vals);
    *vals = NULL;
    Py_XDECREF(seq);
    return -1;
}

int
pt_pq_value_setup(void)
{
    PyObject *json = NULL, *dt = NULL, *cls = NULL;

    PyDateTime_IMPORT;
    json = PyImport_ImportModule("json");
    dt = PyImport_ImportModule("datetime");
    if (json == NULL || dt == NULL)
        goto fail;
    py_json_loads = PyObject_GetAttrString(json, "loads");
    py_json_dumps = PyObject_GetAttrString(json, "dumps");
    cls = PyObject_GetAttrString(dt, "date");
    from_iso_date = cls != NULL ? PyObject_GetAttrString(cls, "fromisoformat") : NULL;
    Py_XDECREF(cls);
    cls = PyObject_GetAttrString(dt, "time");
    from_iso_time = cls != NULL ? PyObject_GetAttrString(cls, "fromisoformat") : NULL;
    Py_XDECREF(cls);
    cls = PyObject_GetAttrString(dt, "datetime");
    from_iso_dt = cls != NULL ? PyObject_GetAttrString(cls, "fromisoformat") : NULL;
    Py_XDECREF(cls);
    if (py_json_loads == NULL || py_json_dumps == NULL || from_iso_date == NULL ||
        from_iso_time == NULL || from_iso_dt == NULL || PyDateTimeAPI == NULL)
        goto fail;
    Py_DECREF(json);
    Py_DECREF(dt);
    return 0;
fail:
    Py_XDECREF(json);
    Py_XDECREF(dt);
    return -1;
}
