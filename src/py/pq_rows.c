/* pq_rows.c - the row list pq's fetch() returns: a list subclass whose rows stay in the
 * database cursor until Python code touches it, so that a handler returning it unchanged is
 * served from the cursor in C. Below the bindings (pq.c, pq_read.c): it uses the handles
 * (pq_handle.c) and the value conversion (pq_value.c), and calls nothing above. */

/*
 * Design notes
 *
 * 1. States. A row list is READY (a plain list: its items are the rows), LAZY (the query ran,
 *    its cursor is open, the items are empty) or SPENT (the rows were written out from the
 *    cursor in C; the list is empty). READY is 0, so a list made by copy/pickle is plain.
 *
 * 2. Every way Python code can read or change a list goes through a slot or method of this
 *    type, which first makes the list READY (LAZY: read the cursor; SPENT: run the query again,
 *    on the calling thread's connection). The slots cover len(), iteration, indexing, `in`,
 *    comparisons, repr, + and * (including `[] + rows`, through nb_add: it readies both sides
 *    and defers to the list's own code), and the methods cover append, extend, insert, pop,
 *    remove, index, count, reverse, sort, copy, clear. C code that reads a list's storage
 *    directly is safe too: PySequence_Fast, list(), tuple(), json's C encoder and `x += rows`
 *    only take that path for exact lists and tuples and iterate anything else. What is not
 *    covered: calling the list type's methods on the object explicitly (list.append(rows, x)).
 *
 * 3. One cursor per connection: a lazy list is its handle's `active` list. Any other statement
 *    on that connection first reads the lazy list's remaining rows (pt_pq_handle_settle), so
 *    holding several fetch() results at once works, at the cost of materialising all but the
 *    last.
 *
 * 4. A list being read is marked BUSY: converting values may run Python code (json.loads for
 *    JSON that jansson rejects), and reading the cursor releases the GIL whenever the next row
 *    has not arrived yet (pt_pq_next), as does freeing a cursor and writing rows out in C; another
 *    thread that touches the same list meanwhile gets a RuntimeError rather than a half-read
 *    list, and the handle's own thread, which must not use the connection meanwhile, finds the
 *    list active and busy and gets the same error.
 */
#include "py/pq_int.h"

#include <string.h>

#include "core/err.h"
#include "warehouse/rows.h"

enum { RL_READY = 0, RL_LAZY, RL_SPENT, RL_BUSY };

typedef struct rows_object {
    PyListObject list; /* first: a list subclass */
    int state;
    pq_handle *handle; /* LAZY: strong reference */
    pt_wh_cursor *cur; /* LAZY: owned */
    PyObject *names;   /* tuple of column names, or NULL */
    PyObject *sql;     /* str */
    PyObject *params;  /* tuple or NULL */
    PyObject *conn;    /* str: connection name, for running the query again */
    pq_conv conv;
} rows_object;

#define ROWS_CHECK(o) PyObject_TypeCheck((o), &pt_pq_rows_type)

/* ---- the row list ------------------------------------------------------------------------ */

/* Frees the list's cursor (the GIL released meanwhile: design note 4) and lets go of its
 * handle. The list is BUSY while the GIL is away, so the handle's own thread, finding it still
 * active, gets an error rather than using the connection; its state is restored after. */
static void
release_cursor(rows_object *r)
{
    pq_handle *h = r->handle;
    pt_wh_cursor *cur = r->cur;
    int state = r->state;

    if (cur != NULL) {
        r->cur = NULL;
        r->state = RL_BUSY;
        pt_pq_cursor_free(cur);
        r->state = state;
    }
    r->handle = NULL;
    if (h != NULL && h->active == (PyObject *)r)
        h->active = NULL;
    Py_XDECREF(h);
}

static PyObject *
column_names(pt_wh_cursor *cur)
{
    size_t i, n = pt_wh_cursor_ncols(cur);
    PyObject *names = PyTuple_New((Py_ssize_t)n);

    for (i = 0; names != NULL && i < n; i++) {
        PyObject *s = PyUnicode_FromString(pt_wh_cursor_colname(cur, i));
        if (s == NULL) {
            Py_CLEAR(names);
            break;
        }
        PyUnicode_InternInPlace(&s);
        PyTuple_SET_ITEM(names, (Py_ssize_t)i, s); /* steals */
    }
    return names;
}

PyObject *
pt_pq_rows_new(pq_handle *h, pt_wh_cursor *cur, PyObject *sql, PyObject *params,
               const pq_conv *conv)
{
    rows_object *r = (rows_object *)PyList_Type.tp_new(&pt_pq_rows_type, NULL, NULL);

    if (r == NULL) {
        pt_wh_cursor_free(cur);
        return NULL;
    }
    r->cur = cur;
    r->handle = (pq_handle *)Py_NewRef((PyObject *)h);
    r->state = RL_LAZY;
    r->names = column_names(cur);
    r->sql = Py_NewRef(sql);
    r->params = Py_XNewRef(params);
    r->conn = Py_NewRef(h->name);
    r->conv = *conv;
    Py_XINCREF(r->conv.fillna);
    Py_XINCREF(r->conv.fillnat);
    if (r->names == NULL) {
        Py_DECREF(r);
        return NULL;
    }
    h->active = (PyObject *)r;
    h->settle = pt_pq_rows_ready;
    return (PyObject *)r;
}

/* Empties the list without losing the exception already set. Deleting items can itself fail
 * (out of memory); rerun() empties the list again before reading, so no row is ever kept
 * twice. */
static void
empty_keeping_error(rows_object *r)
{
    PyObject *type, *value, *tb;

    PyErr_Fetch(&type, &value, &tb);
    if (PyList_SetSlice((PyObject *)r, 0, PyList_GET_SIZE(r), NULL) != 0)
        PyErr_Clear();
    PyErr_Restore(type, value, tb);
}

/* Reads the cursor's rows into the list. */
static int
read_rows(rows_object *r)
{
    pt_wh_cursor *cur = r->cur;
    size_t ncols = pt_wh_cursor_ncols(cur), i;
    PyObject *row = NULL, *val = NULL;
    int rc;

    r->state = RL_BUSY;
    while ((rc = pt_pq_next(cur)) == 1) {
        row = PyDict_New();
        if (row == NULL)
            goto fail;
        for (i = 0; i < ncols; i++) {
            pt_value v;
            pt_wh_cursor_value(cur, i, &v);
            val = pt_pq_value_to_py(&v, pt_wh_cursor_coltype(cur, i), &r->conv);
            if (val == NULL ||
                PyDict_SetItem(row, PyTuple_GET_ITEM(r->names, (Py_ssize_t)i), val) != 0)
                goto fail;
            Py_CLEAR(val);
        }
        if (PyList_Append((PyObject *)r, row) != 0)
            goto fail;
        Py_CLEAR(row);
    }
    if (rc < 0) {
        pt_pq_raise_wh(r->handle->wh, rc);
        goto fail;
    }
    release_cursor(r);
    r->state = RL_READY;
    return 0;
fail:
    Py_XDECREF(row);
    Py_XDECREF(val);
    release_cursor(r);
    /* Half read: SPENT, so that the next touch runs the query again (rerun empties it first). */
    empty_keeping_error(r);
    r->state = RL_SPENT;
    return -1;
}

/* Runs the query of a spent list again on the calling thread's connection. */
static int
rerun(rows_object *r)
{
    PyObject *keep = PyList_New(0);
    pq_handle *h = NULL;
    pt_value *vals = NULL;
    pt_wh_cursor *cur = NULL;
    size_t n = 0;
    int rc = -1;

    if (keep == NULL)
        return -1;
    if (PyList_SetSlice((PyObject *)r, 0, PyList_GET_SIZE(r), NULL) != 0) /* see read_rows */
        goto done;
    h = pt_pq_handle_get(r->conn);
    if (h == NULL || pt_pq_params(r->params, &vals, &n, keep, NULL) != 0)
        goto done;
    if (pt_pq_exec(h, PyUnicode_AsUTF8(r->sql), vals, n, &cur) != 0)
        goto done;
    r->cur = cur;
    r->handle = (pq_handle *)Py_NewRef((PyObject *)h);
    h->active = (PyObject *)r;
    h->settle = pt_pq_rows_ready;
    r->state = RL_LAZY;
    rc = read_rows(r);
done:
    PyMem_Free(vals);
    Py_XDECREF(h);
    Py_DECREF(keep);
    return rc;
}

int
pt_pq_rows_ready(PyObject *obj)
{
    rows_object *r = (rows_object *)obj;

    switch (r->state) {
    case RL_READY:
        return 0;
    case RL_LAZY:
        return read_rows(r);
    case RL_SPENT:
        return rerun(r);
    default:
        PyErr_SetString(PyExc_RuntimeError,
                        "pq row list is being read by another thread; copy it with list() first");
        return -1;
    }
}

/* Readies o when it is a row list. */
static int
ready_any(PyObject *o)
{
    return ROWS_CHECK(o) ? pt_pq_rows_ready(o) : 0;
}

/* ---- serving from C (py_int.h) ----------------------------------------------------------- */

int
pt_py_rows_lazy(PyObject *obj)
{
    return ROWS_CHECK(obj) && ((rows_object *)obj)->state == RL_LAZY;
}

/* fillna / fillnat as JSON text and CSV field; NULL when not set. */
static int
fill_texts(PyObject *fill, char **json, char **csv)
{
    pt_buf b;

    *json = *csv = NULL;
    if (fill == NULL)
        return 0;
    pt_buf_init(&b, 0);
    if (pt_py_json_dump(&b, fill) != 0 || pt_buf_putc(&b, '\0') != 0)
        goto fail;
    *json = pt_buf_steal(&b, NULL);
    if (pt_py_csv_dump(&b, fill) != 0 || pt_buf_putc(&b, '\0') != 0)
        goto fail;
    *csv = pt_buf_steal(&b, NULL);
    return 0;
fail:
    if (!PyErr_Occurred())
        PyErr_NoMemory();
    pt_buf_free(&b);
    free(*json);
    *json = NULL;
    return -1;
}

int
pt_py_rows_serve(PyObject *obj, int format, pt_buf *body, size_t first_part, size_t chunk,
                 pt_body_stream **stream)
{
    rows_object *r = (rows_object *)obj;
    char *nj = NULL, *nc = NULL, *tj = NULL, *tc = NULL;
    pt_rows_opts opts = {.format = (pt_rows_format)format, .python_types = r->conv.python_types};
    pt_rows *w = NULL;
    pq_handle *h = r->handle;
    int rc = -1, wrc;

    if (stream != NULL)
        *stream = NULL;
    if (fill_texts(r->conv.fillna, &nj, &nc) != 0 || fill_texts(r->conv.fillnat, &tj, &tc) != 0)
        goto done;
    opts.null_json = nj;
    opts.null_csv = nc;
    opts.nat_json = tj;
    opts.nat_csv = tc;
    if (pt_rows_new(r->cur, &opts, &w) != 0) {
        PyErr_NoMemory();
        goto done;
    }
    /* Rows are read and written in C, so the GIL can go meanwhile (design note 4). */
    r->state = RL_BUSY;
    PQ_WITHOUT_GIL(wrc = pt_rows_write(w, body, first_part));
    if (wrc == 1 && (stream == NULL || !pt_rows_stream_slot())) {
        /* More rows, but no stream: the caller wants none, or the worker has as many as it
         * allows (rows.h: PT_ROWS_MAX_STREAMS): the rest into the body now, on this thread. */
        PQ_WITHOUT_GIL(wrc = pt_rows_write(w, body, 0));
    }
    if (wrc < 0) {
        if (wrc == PT_ENOMEM)
            PyErr_NoMemory();
        else if (wrc == PT_ETOOBIG)
            PyErr_SetString(PyExc_ValueError, "response body too large");
        else
            pt_pq_raise_wh(h->wh, wrc);
        release_cursor(r);
        goto done;
    }
    if (wrc == 1) {
        /* More to come: the stream takes the connection, the cursor and the slot (design note 3
         * of rows.c); this thread opens a new connection on its next use. */
        PyObject *tdict = PyThreadState_GetDict(); /* borrowed */
        PyObject *handles = tdict != NULL ? PyDict_GetItemString(tdict, "pq.handles") : NULL;
        pt_wh *wh = h->wh;
        pt_wh_cursor *cur = r->cur;
        if (handles != NULL && PyDict_GetItem(handles, h->name) == (PyObject *)h &&
            PyDict_DelItem(handles, h->name) != 0)
            PyErr_Clear();
        h->wh = NULL;
        r->cur = NULL;
        release_cursor(r);
        *stream = pt_rows_stream_new(wh, cur, w, chunk);
        w = NULL;
        if (*stream == NULL) {
            PyErr_NoMemory();
            goto done;
        }
    } else {
        release_cursor(r);
    }
    rc = 0;
done:
    if (r->state == RL_BUSY || r->state == RL_LAZY) {
        release_cursor(r);
        r->state = RL_SPENT;
    }
    pt_rows_free(w);
    free(nj);
    free(nc);
    free(tj);
    free(tc);
    return rc;
}

/* ---- slots ------------------------------------------------------------------------------- */

#define LIST_SQ (PyList_Type.tp_as_sequence)
#define LIST_MP (PyList_Type.tp_as_mapping)

static Py_ssize_t
rl_length(PyObject *self)
{
    return pt_pq_rows_ready(self) != 0 ? -1 : PyList_GET_SIZE(self);
}

static PyObject *
rl_concat(PyObject *a, PyObject *b)
{
    return ready_any(a) != 0 || ready_any(b) != 0 ? NULL : LIST_SQ->sq_concat(a, b);
}

static PyObject *
rl_repeat(PyObject *self, Py_ssize_t n)
{
    return pt_pq_rows_ready(self) != 0 ? NULL : LIST_SQ->sq_repeat(self, n);
}

static PyObject *
rl_item(PyObject *self, Py_ssize_t i)
{
    return pt_pq_rows_ready(self) != 0 ? NULL : LIST_SQ->sq_item(self, i);
}

static int
rl_ass_item(PyObject *self, Py_ssize_t i, PyObject *v)
{
    return pt_pq_rows_ready(self) != 0 ? -1 : LIST_SQ->sq_ass_item(self, i, v);
}

static int
rl_contains(PyObject *self, PyObject *v)
{
    return pt_pq_rows_ready(self) != 0 ? -1 : LIST_SQ->sq_contains(self, v);
}

static PyObject *
rl_inplace_concat(PyObject *self, PyObject *other)
{
    return ready_any(self) != 0 || ready_any(other) != 0 ? NULL
                                                         : LIST_SQ->sq_inplace_concat(self, other);
}

static PyObject *
rl_inplace_repeat(PyObject *self, Py_ssize_t n)
{
    return pt_pq_rows_ready(self) != 0 ? NULL : LIST_SQ->sq_inplace_repeat(self, n);
}

static PyObject *
rl_subscript(PyObject *self, PyObject *key)
{
    return pt_pq_rows_ready(self) != 0 ? NULL : LIST_MP->mp_subscript(self, key);
}

static int
rl_ass_subscript(PyObject *self, PyObject *key, PyObject *v)
{
    return pt_pq_rows_ready(self) != 0 ? -1 : LIST_MP->mp_ass_subscript(self, key, v);
}

/* `[] + rows`: the left list's concat would read our storage: ready both, then let the
 * list's own code run (NotImplemented sends Python on to sq_concat). */
static PyObject *
rl_nb_add(PyObject *a, PyObject *b)
{
    if (ready_any(a) != 0 || ready_any(b) != 0)
        return NULL;
    Py_RETURN_NOTIMPLEMENTED;
}

static PyObject *
rl_iter(PyObject *self)
{
    return pt_pq_rows_ready(self) != 0 ? NULL : PyList_Type.tp_iter(self);
}

static PyObject *
rl_repr(PyObject *self)
{
    return pt_pq_rows_ready(self) != 0 ? NULL : PyList_Type.tp_repr(self);
}

static PyObject *
rl_richcompare(PyObject *a, PyObject *b, int op)
{
    if (ready_any(a) != 0 || ready_any(b) != 0)
        return NULL;
    return PyList_Type.tp_richcompare(a, b, op);
}

static PySequenceMethods rl_as_sequence = {
    .sq_length = rl_length,
    .sq_concat = rl_concat,
    .sq_repeat = rl_repeat,
    .sq_item = rl_item,
    .sq_ass_item = rl_ass_item,
    .sq_contains = rl_contains,
    .sq_inplace_concat = rl_inplace_concat,
    .sq_inplace_repeat = rl_inplace_repeat,
};

static PyMappingMethods rl_as_mapping = {
    .mp_length = rl_length,
    .mp_subscript = rl_subscript,
    .mp_ass_subscript = rl_ass_subscript,
};

static PyNumberMethods rl_as_number = {
    .nb_add = rl_nb_add,
};

/* ---- methods: ready, then the list's own method ------------------------------------------ */

static const char *const method_names[] = {
    "append",  "extend", "insert", "pop",   "remove",       "index",      "count",
    "reverse", "sort",   "copy",   "clear", "__reversed__", "__sizeof__",
};
#define NMETHODS (sizeof(method_names) / sizeof(method_names[0]))
static PyObject *list_methods[NMETHODS]; /* the list type's method descriptors */

static PyObject *
call_list_method(size_t k, PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                 PyObject *kwnames)
{
    PyObject *stack[16];
    Py_ssize_t nkw = kwnames != NULL ? PyTuple_GET_SIZE(kwnames) : 0, i;

    if (pt_pq_rows_ready(self) != 0)
        return NULL;
    if (nargs + nkw + 1 > 16) {
        PyErr_SetString(PyExc_TypeError, "too many arguments");
        return NULL;
    }
    stack[0] = self;
    for (i = 0; i < nargs + nkw; i++)
        stack[i + 1] = args[i];
    return PyObject_Vectorcall(list_methods[k], stack, (size_t)nargs + 1, kwnames);
}

#define RL_METHOD(k, cname)                                                                        \
    static PyObject *cname(PyObject *self, PyObject *const *args, Py_ssize_t nargs,                \
                           PyObject *kwnames)                                                      \
    {                                                                                              \
        return call_list_method(k, self, args, nargs, kwnames);                                    \
    }
RL_METHOD(0, m_append)
RL_METHOD(1, m_extend)
RL_METHOD(2, m_insert)
RL_METHOD(3, m_pop)
RL_METHOD(4, m_remove)
RL_METHOD(5, m_index)
RL_METHOD(6, m_count)
RL_METHOD(7, m_reverse)
RL_METHOD(8, m_sort)
RL_METHOD(9, m_copy)
RL_METHOD(10, m_clear)
RL_METHOD(11, m_reversed)
RL_METHOD(12, m_sizeof)

static PyMethodDef rl_methods[] = {
    {"append", (PyCFunction)(void (*)(void))m_append, METH_FASTCALL | METH_KEYWORDS, NULL},
    {"extend", (PyCFunction)(void (*)(void))m_extend, METH_FASTCALL | METH_KEYWORDS, NULL},
    {"insert", (PyCFunction)(void (*)(void))m_insert, METH_FASTCALL | METH_KEYWORDS, NULL},
    {"pop", (PyCFunction)(void (*)(void))m_pop, METH_FASTCALL | METH_KEYWORDS, NULL},
    {"remove", (PyCFunction)(void (*)(void))m_remove, METH_FASTCALL | METH_KEYWORDS, NULL},
    {"index", (PyCFunction)(void (*)(void))m_index, METH_FASTCALL | METH_KEYWORDS, NULL},
    {"count", (PyCFunction)(void (*)(void))m_count, METH_FASTCALL | METH_KEYWORDS, NULL},
    {"reverse", (PyCFunction)(void (*)(void))m_reverse, METH_FASTCALL | METH_KEYWORDS, NULL},
    {"sort", (PyCFunction)(void (*)(void))m_sort, METH_FASTCALL | METH_KEYWORDS, NULL},
    {"copy", (PyCFunction)(void (*)(void))m_copy, METH_FASTCALL | METH_KEYWORDS, NULL},
    {"clear", (PyCFunction)(void (*)(void))m_clear, METH_FASTCALL | METH_KEYWORDS, NULL},
    {"__reversed__", (PyCFunction)(void (*)(void))m_reversed, METH_FASTCALL | METH_KEYWORDS, NULL},
    {"__sizeof__", (PyCFunction)(void (*)(void))m_sizeof, METH_FASTCALL | METH_KEYWORDS, NULL},
    {NULL, NULL, 0, NULL},
};

/* ---- lifecycle --------------------------------------------------------------------------- */

static int
rl_traverse(PyObject *self, visitproc visit, void *arg)
{
    rows_object *r = (rows_object *)self;

    Py_VISIT(r->handle);
    Py_VISIT(r->names);
    Py_VISIT(r->sql);
    Py_VISIT(r->params);
    Py_VISIT(r->conn);
    Py_VISIT(r->conv.fillna);
    Py_VISIT(r->conv.fillnat);
    return PyList_Type.tp_traverse(self, visit, arg);
}

static int
rl_clear(PyObject *self)
{
    rows_object *r = (rows_object *)self;

    if (r->state == RL_LAZY || r->state == RL_BUSY) {
        release_cursor(r);
        r->state = RL_SPENT;
    }
    Py_CLEAR(r->handle);
    Py_CLEAR(r->names);
    Py_CLEAR(r->params);
    Py_CLEAR(r->conv.fillna);
    Py_CLEAR(r->conv.fillnat);
    return PyList_Type.tp_clear(self);
}

static void
rl_dealloc(PyObject *self)
{
    rows_object *r = (rows_object *)self;

    /* Out of the collector's sight first: release_cursor lets the GIL go, and a collection on
     * another thread must not find an object whose count is already zero. */
    PyObject_GC_UnTrack(self);
    release_cursor(r);
    Py_CLEAR(r->names);
    Py_CLEAR(r->sql);
    Py_CLEAR(r->params);
    Py_CLEAR(r->conn);
    Py_CLEAR(r->conv.fillna);
    Py_CLEAR(r->conv.fillnat);
    PyList_Type.tp_dealloc(self); /* untracks, frees the items and the object */
}

PyTypeObject pt_pq_rows_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "pq.Rows",
    .tp_basicsize = sizeof(rows_object),
    .tp_dealloc = rl_dealloc,
    .tp_repr = rl_repr,
    .tp_as_number = &rl_as_number,
    .tp_as_sequence = &rl_as_sequence,
    .tp_as_mapping = &rl_as_mapping,
    .tp_hash = PyObject_HashNotImplemented,
    .tp_flags =
        Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_LIST_SUBCLASS,
    .tp_doc = "The rows of pq's fetch(): a list of dicts, read from the database on first use.",
    .tp_traverse = rl_traverse,
    .tp_clear = rl_clear,
    .tp_richcompare = rl_richcompare,
    .tp_iter = rl_iter,
    .tp_methods = rl_methods,
};

int
pt_py_pq_rows_setup(void)
{
    size_t k;

    pt_pq_rows_type.tp_base = &PyList_Type;
    if (PyType_Ready(&pt_pq_rows_type) != 0)
        return -1;
    for (k = 0; k < NMETHODS; k++) {
        list_methods[k] = PyDict_GetItemString(PyList_Type.tp_dict, method_names[k]);
        if (list_methods[k] == NULL) {
            PyErr_Format(PyExc_RuntimeError, "list has no method %s", method_names[k]);
            return -1;
        }
        Py_INCREF(list_methods[k]); /* kept for the life of the process */
    }
    return 0;
}
