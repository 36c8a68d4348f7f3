/* pq_meta.c - pq's metadata family with Peliqan's names and shapes (list_connections,
 * list_databases, get_schema, get_table, get_or_create_schema, delete_schema, delete_table,
 * generate_sql_union, refresh_*, DW_ID), pq.NotFound, and pq.NotAvailable for the functions of
 * Peliqan's client that cannot exist in a self-hosted server. GIL for all. */

/*
 * Design notes
 *
 * 1. The catalog is live. Every call reads the databases' own catalogs (pt_wh_catalog_read) on
 *    the calling thread's pq connections, with the GIL released while it waits; nothing is
 *    cached or stored, so refresh_database/schema/table have nothing to do and return a status
 *    at once, and a table created a moment ago (by any process) is listed.
 *
 * 2. Ids. Peliqan's ids are integers kept by its backend. Portico derives them: the 53-bit
 *    FNV-1a hash of the object's kind and path (connection; connection/schema;
 *    connection/schema/table; .../column), so an object keeps its id across restarts, workers
 *    and nodes without any stored state or writer to race, and ids fit a JSON number exactly.
 *    Limits: renaming an object changes its id; an object dropped and created again under the
 *    same name gets the same id back; two different paths could in principle share an id
 *    (about n^2 / 2^54 for n objects: negligible for any real catalog). On SQLite, schema names
 *    are lower case (as their files are named). Finding an object by id reads the catalogs of
 *    the connections (tables without columns) until it matches.
 *
 * 3. A database is the one database inside a connection: its name is PostgreSQL's
 *    current_database() or the embedded warehouse's connection name; its id derives from the
 *    connection's name alone. A connection that cannot be reached is listed with its error by
 *    list_databases and skipped by id lookups (the "not found" message names it).
 *
 * 4. No SQL is built here: the catalog, the drops and generate_sql_union's query (text for the
 *    caller to run) are the warehouse's (wh_catalog.c and the drivers).
 */
#include "py/pq_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "store/store.h"

static PyObject *meta_not_found; /* pq.NotFound(Error, LookupError) */
static PyObject *not_available;  /* pq.NotAvailable(Error, NotImplementedError) */

#define ID_BITS 53

/* ---- ids (design note 2) ----------------------------------------------------------------- */

static uint64_t
fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;

    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= UINT64_C(1099511628211);
    }
    return h;
}

/* The id of an object of `kind` ('c' connection, 'd' database, 's' schema, 't' table, 'f'
 * field) at the path conn[/schema[/table[/field]]] (parts NULL from the first absent one). */
static int64_t
meta_id(char kind, const char *conn, const char *schema, const char *table, const char *field)
{
    const char *parts[4] = {conn, schema, table, field};
    uint64_t h = fnv(UINT64_C(14695981039346656037), &kind, 1);

    for (int i = 0; i < 4 && parts[i] != NULL; i++)
        h = fnv(h, parts[i], strlen(parts[i]) + 1); /* the NUL separates the parts */
    h = (h ^ (h >> ID_BITS)) & ((UINT64_C(1) << ID_BITS) - 1);
    return h != 0 ? (int64_t)h : 1;
}

/* An id argument: an int (not a bool) or a str of digits. Returns 0 with *out, -1 with
 * pq.InvalidArgument naming `what`. */
static int
id_arg(PyObject *o, const char *what, int64_t *out)
{
    PyObject *num = NULL;
    long long v;

    if (PyLong_Check(o) && !PyBool_Check(o))
        num = Py_NewRef(o);
    else if (PyUnicode_Check(o))
        num = PyLong_FromUnicodeObject(o, 10);
    if (num == NULL) {
        PyErr_Clear();
        PyErr_Format(pt_pq_bad_arg, "%s must be an integer id, not %R", what, o);
        return -1;
    }
    v = PyLong_AsLongLong(num);
    Py_DECREF(num);
    if (v <= 0 || v >= (1LL << ID_BITS)) {
        PyErr_Clear();
        PyErr_Format(pt_pq_bad_arg, "%s %R is not an id (ids are positive integers below 2**53)",
                     what, o);
        return -1;
    }
    *out = v;
    return 0;
}

/* A name argument (str without NUL): borrowed UTF-8, NULL with pq.InvalidArgument. */
static const char *
name_arg(PyObject *o, const char *what)
{
    const char *s;
    Py_ssize_t n;

    if (!PyUnicode_Check(o)) {
        PyErr_Format(pt_pq_bad_arg, "%s must be a str, not %.100s", what, Py_TYPE(o)->tp_name);
        return NULL;
    }
    s = PyUnicode_AsUTF8AndSize(o, &n);
    if (s == NULL || strlen(s) != (size_t)n || n == 0) {
        PyErr_Clear();
        PyErr_Format(pt_pq_bad_arg, "invalid %s %R", what, o);
        return NULL;
    }
    return s;
}

/* ---- connections and catalogs ------------------------------------------------------------ */

/* The default warehouse's connection name (pq.DW_NAME; "dw" when unset). New reference. */
static PyObject *
dw_name(void)
{
    PyObject *m = PyImport_ImportModule("pq");
    PyObject *name = m != NULL ? PyObject_GetAttrString(m, "DW_NAME") : NULL;

    Py_XDECREF(m);
    if (name == NULL || !PyUnicode_Check(name)) {
        PyErr_Clear();
        Py_XDECREF(name);
        name = PyUnicode_FromString("dw");
    }
    return name;
}

/* Every warehouse connection as a list of (name, kind) tuples, the default warehouse first
 * (it exists even when the store has no row for it). The store is read with the GIL released.
 * New reference; NULL with pq.Error set. */
static PyObject *
connections(void)
{
    pt_connection *list = NULL;
    pt_store *st = NULL;
    PyObject *out = NULL, *dw = NULL, *item;
    const char *dwname, *dwkind = "sqlite";
    size_t n = 0, i;
    char err[256] = "";
    int rc;

    Py_BEGIN_ALLOW_THREADS rc = pt_store_open(pt_py_datadir, &st, err, sizeof err);
    if (rc == 0)
        rc = pt_store_connection_list(st, &list, &n);
    Py_END_ALLOW_THREADS if (rc != 0)
    {
        PyErr_Format(pt_pq_error, "cannot list connections: %s",
                     st != NULL ? pt_store_errmsg(st) : err);
        goto done;
    }
    dw = dw_name();
    dwname = dw != NULL ? PyUnicode_AsUTF8(dw) : NULL;
    if (dwname == NULL)
        goto done;
    for (i = 0; i < n; i++)
        if (strcmp(list[i].name, dwname) == 0)
            dwkind = list[i].kind;
    out = PyList_New(0);
    item = out != NULL ? Py_BuildValue("(Os)", dw, dwkind) : NULL;
    if (item == NULL || PyList_Append(out, item) != 0)
        goto fail;
    Py_DECREF(item);
    for (i = 0; i < n; i++) {
        if (strcmp(list[i].name, dwname) == 0)
            continue;
        item = Py_BuildValue("(ss)", list[i].name, list[i].kind);
        if (item == NULL || PyList_Append(out, item) != 0)
            goto fail;
        Py_DECREF(item);
    }
    goto done;
fail:
    Py_XDECREF(item);
    Py_CLEAR(out);
done:
    Py_XDECREF(dw);
    pt_store_connections_free(list, n);
    pt_store_close(st);
    return out;
}

/* Reads the catalog of connection conn (str) on the thread's handle, with the GIL released
 * (schema and table are C strings nobody changes meanwhile). Returns 0 with *cat (caller frees
 * with pt_wh_catalog_free), or -1 with a pq exception set. */
static int
read_catalog(PyObject *conn, const char *schema, const char *table, pt_wh_cat_level level,
             pt_wh_catalog **cat)
{
    pq_handle *h = pt_pq_handle_get(conn);
    int rc;

    *cat = NULL;
    if (h == NULL)
        return -1;
    if (pt_pq_handle_settle(h) != 0) {
        Py_DECREF(h);
        return -1;
    }
    PQ_WITHOUT_GIL(rc = pt_wh_catalog_read(h->wh, schema, table, level, cat));
    if (rc != 0)
        pt_pq_raise_wh(h->wh, rc);
    Py_DECREF(h);
    return rc != 0 ? -1 : 0;
}

/* When the raised exception is pq.DatabaseUnavailable (a connection that cannot be reached),
 * clears it and appends the connection's name to skipped; returns 0 then, -1 otherwise. */
static int
skip_unavailable(PyObject *conn, PyObject *skipped)
{
    if (!PyErr_ExceptionMatches(pt_pq_unavailable))
        return -1;
    PyErr_Clear();
    return PyList_Append(skipped, conn);
}

/* Raises pq.NotFound: "no <what> with id <id>", naming the connections skipped. */
static void
raise_not_found_id(const char *what, int64_t id, PyObject *skipped)
{
    if (skipped != NULL && PyList_GET_SIZE(skipped) > 0)
        PyErr_Format(meta_not_found,
                     "no %s with id %lld (connections that could not be reached: %R)", what,
                     (long long)id, skipped);
    else
        PyErr_Format(meta_not_found, "no %s with id %lld", what, (long long)id);
}

/* ---- building the dicts ------------------------------------------------------------------ */

/* "schema"."table", quoted (new str). */
static PyObject *
name_in_query(const char *schema, const char *table)
{
    char *text = pt_wh_qualified_name(schema, table);
    PyObject *out = text != NULL ? PyUnicode_FromString(text) : PyErr_NoMemory();

    free(text);
    return out;
}

/* A field dict ({id, name, type, sql_data_type, ...}). New reference. */
static PyObject *
field_dict(const char *conn, const char *schema, const char *table, const pt_wh_field *f,
           size_t pos)
{
    return Py_BuildValue(
        "{sLsssssssOsOsnsi}", "id", (long long)meta_id('f', conn, schema, table, f->name), "name",
        f->name, "type", f->type, "sql_data_type", f->sql_type, "nullable",
        f->notnull ? Py_False : Py_True, "is_primary_key", f->pk > 0 ? Py_True : Py_False,
        "position", (Py_ssize_t)pos + 1, "primary_key_position", f->pk);
}

/* A table dict; with its fields (all_fields, primary_key, primary_field_name) when the catalog
 * was read with them. New reference. */
static PyObject *
table_dict(const char *conn, const pt_wh_catalog *cat, const pt_wh_schema_info *s,
           const pt_wh_table_info *t, int with_fields)
{
    PyObject *d = NULL, *fields = NULL, *pk = NULL, *niq = NULL, *item;
    size_t i;

    niq = name_in_query(s->name, t->name);
    d = niq != NULL
            ? Py_BuildValue("{sLsssLsssLsssssssO}", "id",
                            (long long)meta_id('t', conn, s->name, t->name, NULL), "name", t->name,
                            "schema_id", (long long)meta_id('s', conn, s->name, NULL, NULL),
                            "schema_name", s->name, "database_id",
                            (long long)meta_id('d', conn, NULL, NULL, NULL), "database_name",
                            cat->database, "connection_name", conn, "table_type",
                            t->is_view ? "view" : "table", "name_in_query", niq)
            : NULL;
    if (d == NULL || !with_fields)
        goto done;
    fields = PyList_New(0);
    pk = PyList_New(0);
    if (fields == NULL || pk == NULL)
        goto fail;
    for (i = 0; i < t->nfields; i++) {
        item = field_dict(conn, s->name, t->name, &t->fields[i], i);
        if (item == NULL || PyList_Append(fields, item) != 0) {
            Py_XDECREF(item);
            goto fail;
        }
        Py_DECREF(item);
    }
    /* The key's columns in key order. */
    for (int k = 1; k <= (int)t->nfields; k++)
        for (i = 0; i < t->nfields; i++)
            if (t->fields[i].pk == k) {
                item = PyUnicode_FromString(t->fields[i].name);
                if (item == NULL || PyList_Append(pk, item) != 0) {
                    Py_XDECREF(item);
                    goto fail;
                }
                Py_DECREF(item);
            }
    if (PyDict_SetItemString(d, "all_fields", fields) != 0 ||
        PyDict_SetItemString(d, "primary_key", pk) != 0 ||
        PyDict_SetItemString(d, "primary_field_name",
                             PyList_GET_SIZE(pk) == 1 ? PyList_GET_ITEM(pk, 0) : Py_None) != 0)
        goto fail;
    goto done;
fail:
    Py_CLEAR(d);
done:
    Py_XDECREF(niq);
    Py_XDECREF(fields);
    Py_XDECREF(pk);
    return d;
}

/* A schema dict ({id, name, database, database_id, database_name, connection_name}), with its
 * tables when with_tables. New reference. */
static PyObject *
schema_dict(const char *conn, const pt_wh_catalog *cat, const pt_wh_schema_info *s, int with_tables)
{
    long long dbid = (long long)meta_id('d', conn, NULL, NULL, NULL);
    PyObject *d =
        Py_BuildValue("{sLsssLsLssss}", "id", (long long)meta_id('s', conn, s->name, NULL, NULL),
                      "name", s->name, "database", dbid, "database_id", dbid, "database_name",
                      cat->database, "connection_name", conn);
    PyObject *tables = NULL, *item;

    if (d == NULL || !with_tables)
        return d;
    tables = PyList_New(0);
    if (tables == NULL)
        goto fail;
    for (size_t i = 0; i < s->ntables; i++) {
        item = table_dict(conn, cat, s, &s->tables[i], 0);
        if (item == NULL || PyList_Append(tables, item) != 0) {
            Py_XDECREF(item);
            goto fail;
        }
        Py_DECREF(item);
    }
    if (PyDict_SetItemString(d, "tables", tables) != 0)
        goto fail;
    Py_DECREF(tables);
    return d;
fail:
    Py_XDECREF(tables);
    Py_DECREF(d);
    return NULL;
}

static const char *
server_type(const char *kind)
{
    return strcmp(kind, "postgres") == 0 ? "postgresql" : kind;
}

/* ---- list_connections, list_databases ---------------------------------------------------- */

/* list_connections() -> [{id, name, server_type, kind, is_datawarehouse, ...}] (never a DSN) */
static PyObject *
meta_list_connections(PyObject *self, PyObject *args)
{
    PyObject *conns = connections(), *out = NULL, *dw = NULL;
    Py_ssize_t i;

    (void)self;
    (void)args;
    if (conns == NULL)
        return NULL;
    out = PyList_New(0);
    dw = PyTuple_GET_ITEM(PyList_GET_ITEM(conns, 0), 0); /* borrowed: the default warehouse */
    for (i = 0; out != NULL && i < PyList_GET_SIZE(conns); i++) {
        PyObject *t = PyList_GET_ITEM(conns, i); /* borrowed */
        const char *name = PyUnicode_AsUTF8(PyTuple_GET_ITEM(t, 0));
        const char *kind = PyUnicode_AsUTF8(PyTuple_GET_ITEM(t, 1));
        PyObject *item =
            name != NULL && kind != NULL
                ? Py_BuildValue("{sLsssssssOsOsLsO}", "id",
                                (long long)meta_id('c', name, NULL, NULL, NULL), "name", name,
                                "server_type", server_type(kind), "kind", kind, "is_datawarehouse",
                                PyTuple_GET_ITEM(t, 0) == dw ? Py_True : Py_False, "is_target",
                                Py_True, "database_id",
                                (long long)meta_id('d', name, NULL, NULL, NULL), "target", Py_None)
                : NULL;
        if (item == NULL || PyList_Append(out, item) != 0) {
            Py_XDECREF(item);
            Py_CLEAR(out);
        } else {
            Py_DECREF(item);
        }
    }
    Py_DECREF(conns);
    return out;
}

/* The database dict of one connection: its schemas and tables (with fields at level FIELDS),
 * or, when it cannot be reached, empty lists and the reason in "error". New reference. */
static PyObject *
database_dict(PyObject *conn, PyObject *kindobj, int is_dw, pt_wh_cat_level level)
{
    const char *name = PyUnicode_AsUTF8(conn), *kind = PyUnicode_AsUTF8(kindobj);
    pt_wh_catalog *cat = NULL;
    PyObject *d = NULL, *schemas = NULL, *tables = NULL, *err = NULL, *item;
    size_t i, j;

    if (name == NULL || kind == NULL)
        return NULL;
    if (read_catalog(conn, NULL, NULL, level, &cat) != 0) {
        PyObject *type, *value, *tb;
        if (!PyErr_ExceptionMatches(pt_pq_unavailable))
            return NULL;
        PyErr_Fetch(&type, &value, &tb);
        err = value != NULL ? PyObject_Str(value) : NULL;
        Py_XDECREF(type);
        Py_XDECREF(value);
        Py_XDECREF(tb);
        if (err == NULL)
            return NULL;
    }
    schemas = PyList_New(0);
    tables = PyList_New(0);
    if (schemas == NULL || tables == NULL)
        goto fail;
    for (i = 0; cat != NULL && i < cat->nschemas; i++) {
        const pt_wh_schema_info *s = &cat->schemas[i];
        item = Py_BuildValue("{sLss}", "id", (long long)meta_id('s', name, s->name, NULL, NULL),
                             "name", s->name);
        if (item == NULL || PyList_Append(schemas, item) != 0)
            goto fail_item;
        Py_DECREF(item);
        for (j = 0; j < s->ntables; j++) {
            item = table_dict(name, cat, s, &s->tables[j], level == PT_WH_CAT_FIELDS);
            if (item == NULL || PyList_Append(tables, item) != 0)
                goto fail_item;
            Py_DECREF(item);
        }
    }
    {
        long long cid = (long long)meta_id('c', name, NULL, NULL, NULL);
        d = Py_BuildValue(
            "{sLsssLsLsssssssOsOsOsO}", "id", (long long)meta_id('d', name, NULL, NULL, NULL),
            "name", cat != NULL ? cat->database : name, "connection", cid, "connection_id", cid,
            "connection_name", name, "kind", kind, "server_type", server_type(kind),
            "is_datawarehouse", is_dw ? Py_True : Py_False, "schemas", schemas, "tables", tables,
            "error", err != NULL ? err : Py_None);
    }
    goto done;
fail_item:
    Py_XDECREF(item);
fail:
    Py_CLEAR(d);
done:
    Py_XDECREF(schemas);
    Py_XDECREF(tables);
    Py_XDECREF(err);
    pt_wh_catalog_free(cat);
    return d;
}

/* list_databases() -> [{id, name, connection_id, connection_name, kind, schemas: [{id, name}],
 *                       tables: [{id, name, schema_id, schema_name, all_fields, ...}]}] */
static PyObject *
meta_list_databases(PyObject *self, PyObject *args)
{
    PyObject *conns = connections(), *out = NULL;
    Py_ssize_t i;

    (void)self;
    (void)args;
    if (conns == NULL)
        return NULL;
    out = PyList_New(0);
    for (i = 0; out != NULL && i < PyList_GET_SIZE(conns); i++) {
        PyObject *t = PyList_GET_ITEM(conns, i); /* borrowed */
        PyObject *d =
            database_dict(PyTuple_GET_ITEM(t, 0), PyTuple_GET_ITEM(t, 1), i == 0, PT_WH_CAT_FIELDS);
        if (d == NULL || PyList_Append(out, d) != 0)
            Py_CLEAR(out);
        Py_XDECREF(d);
    }
    Py_DECREF(conns);
    return out;
}

/* ---- finding objects --------------------------------------------------------------------- */

/* An object found in a connection's catalog. */
typedef struct found {
    PyObject *conn;     /* str: the connection (strong) */
    PyObject *kind;     /* str: its kind (strong) */
    pt_wh_catalog *cat; /* owned: the catalog read, filtered to the object when refined */
    size_t si, ti;      /* the schema and table in cat */
} found;

static void
found_clear(found *f)
{
    Py_CLEAR(f->conn);
    Py_CLEAR(f->kind);
    pt_wh_catalog_free(f->cat);
    f->cat = NULL;
}

/* Finds the schema ('s') or table ('t') with id. Returns 1 with *f filled, 0 with pq.NotFound
 * set, -1 with another error set. */
static int
find_by_id(char what, int64_t id, found *f)
{
    PyObject *conns = connections(), *skipped = PyList_New(0);
    pt_wh_cat_level level = what == 's' ? PT_WH_CAT_SCHEMAS : PT_WH_CAT_TABLES;
    int rc = -1;

    memset(f, 0, sizeof *f);
    if (conns == NULL || skipped == NULL)
        goto done;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(conns); i++) {
        PyObject *t = PyList_GET_ITEM(conns, i); /* borrowed */
        PyObject *conn = PyTuple_GET_ITEM(t, 0);
        const char *name = PyUnicode_AsUTF8(conn);
        pt_wh_catalog *cat = NULL;
        if (name == NULL)
            goto done;
        if (read_catalog(conn, NULL, NULL, level, &cat) != 0) {
            if (skip_unavailable(conn, skipped) != 0)
                goto done;
            continue;
        }
        for (size_t si = 0; si < cat->nschemas; si++) {
            const pt_wh_schema_info *s = &cat->schemas[si];
            if (what == 's' && meta_id('s', name, s->name, NULL, NULL) == id) {
                f->ti = 0;
            } else {
                size_t ti;
                for (ti = 0; what == 't' && ti < s->ntables; ti++)
                    if (meta_id('t', name, s->name, s->tables[ti].name, NULL) == id)
                        break;
                if (what != 't' || ti == s->ntables)
                    continue;
                f->ti = ti;
            }
            f->conn = Py_NewRef(conn);
            f->kind = Py_NewRef(PyTuple_GET_ITEM(t, 1));
            f->cat = cat;
            f->si = si;
            rc = 1;
            goto done;
        }
        pt_wh_catalog_free(cat);
    }
    raise_not_found_id(what == 's' ? "schema" : "table", id, skipped);
    rc = 0;
done:
    Py_XDECREF(conns);
    Py_XDECREF(skipped);
    return rc;
}

/* Reads f's object again at `level`, filtered to it (get_table's fields, get_schema's tables).
 * Returns 1, 0 with pq.NotFound (dropped meanwhile), -1 with an error set. */
static int
refine(found *f, int table, pt_wh_cat_level level)
{
    const pt_wh_schema_info *s = &f->cat->schemas[f->si];
    pt_wh_catalog *cat = NULL;
    int ok;

    if (read_catalog(f->conn, s->name, table ? s->tables[f->ti].name : NULL, level, &cat) != 0)
        return -1;
    ok = cat->nschemas == 1 && (!table || cat->schemas[0].ntables == 1);
    if (!ok) {
        if (table)
            PyErr_Format(meta_not_found, "table %s.%s no longer exists", s->name,
                         s->tables[f->ti].name);
        else
            PyErr_Format(meta_not_found, "schema %s no longer exists", s->name);
        pt_wh_catalog_free(cat);
        return 0;
    }
    pt_wh_catalog_free(f->cat);
    f->cat = cat;
    f->si = 0;
    f->ti = 0;
    return 1;
}

/* The connection of a database given by id or name (a connection name, or the database name
 * inside one). New reference to the connection's (name, kind) tuple; NULL with an error set. */
static PyObject *
find_database(PyObject *db_id, PyObject *db_name)
{
    PyObject *conns = connections(), *match = NULL, *names = NULL;
    const char *want = NULL;
    int64_t id = 0;
    Py_ssize_t i;

    if (conns == NULL)
        return NULL;
    if (db_id != Py_None) {
        if (id_arg(db_id, "database_id", &id) != 0)
            goto done;
    } else if ((want = name_arg(db_name, "database_name")) == NULL) {
        goto done;
    }
    for (i = 0; i < PyList_GET_SIZE(conns); i++) {
        PyObject *t = PyList_GET_ITEM(conns, i); /* borrowed */
        const char *name = PyUnicode_AsUTF8(PyTuple_GET_ITEM(t, 0));
        if (name == NULL)
            goto done;
        if (want != NULL ? strcmp(name, want) == 0 : meta_id('d', name, NULL, NULL, NULL) == id) {
            match = Py_NewRef(t);
            goto done;
        }
    }
    if (want == NULL) {
        raise_not_found_id("database", id, NULL);
        goto done;
    }
    /* Not a connection name: the database name inside a connection (PostgreSQL's dbname). */
    names = PyList_New(0);
    for (i = 0; names != NULL && i < PyList_GET_SIZE(conns); i++) {
        PyObject *t = PyList_GET_ITEM(conns, i); /* borrowed */
        pt_wh_catalog *cat = NULL;
        if (read_catalog(PyTuple_GET_ITEM(t, 0), "", NULL, PT_WH_CAT_SCHEMAS, &cat) != 0) {
            if (!PyErr_ExceptionMatches(pt_pq_unavailable))
                goto done;
            PyErr_Clear();
            continue;
        }
        if (strcmp(cat->database, want) == 0) {
            if (PyList_Append(names, PyTuple_GET_ITEM(t, 0)) != 0) {
                pt_wh_catalog_free(cat);
                goto done;
            }
            if (match == NULL)
                match = Py_NewRef(t);
        }
        pt_wh_catalog_free(cat);
    }
    if (names == NULL)
        goto done;
    if (PyList_GET_SIZE(names) > 1) {
        Py_CLEAR(match);
        PyErr_Format(pt_pq_bad_arg,
                     "database name '%s' is ambiguous: connections %R all hold a database of "
                     "that name (give the connection name or database_id)",
                     want, names);
    } else if (match == NULL) {
        PyErr_Format(meta_not_found, "no database named '%s' (see pq.list_databases())", want);
    }
done:
    if (match != NULL && PyErr_Occurred())
        Py_CLEAR(match); /* an error after the first match */
    Py_XDECREF(names);
    Py_DECREF(conns);
    return match;
}

/* Finds a schema by id, or by name in the database given by id or name. Returns as
 * find_by_id. */
static int
find_schema(PyObject *schema_id, PyObject *schema_name, PyObject *db_id, PyObject *db_name,
            found *f)
{
    PyObject *t;
    const char *schema;
    int64_t id;

    memset(f, 0, sizeof *f);
    if (schema_id != Py_None) {
        if (id_arg(schema_id, "schema_id", &id) != 0)
            return -1;
        return find_by_id('s', id, f);
    }
    if (schema_name == Py_None) {
        PyErr_SetString(pt_pq_bad_arg, "schema_id or schema_name is required");
        return -1;
    }
    if ((schema = name_arg(schema_name, "schema_name")) == NULL)
        return -1;
    if (db_id == Py_None && db_name == Py_None) {
        PyErr_SetString(pt_pq_bad_arg, "database_name or database_id is required with schema_name");
        return -1;
    }
    if ((t = find_database(db_id, db_name)) == NULL)
        return PyErr_ExceptionMatches(meta_not_found) ? 0 : -1;
    f->conn = Py_NewRef(PyTuple_GET_ITEM(t, 0));
    f->kind = Py_NewRef(PyTuple_GET_ITEM(t, 1));
    Py_DECREF(t);
    if (read_catalog(f->conn, schema, NULL, PT_WH_CAT_SCHEMAS, &f->cat) != 0) {
        found_clear(f);
        return -1;
    }
    if (f->cat->nschemas != 1) {
        PyErr_Format(meta_not_found, "no schema '%s' in database connection '%U'", schema, f->conn);
        found_clear(f);
        return 0;
    }
    return 1;
}

/* ---- get_schema, get_table --------------------------------------------------------------- */

/* get_schema(schema_id) -> {id, name, database, database_id, ..., tables: [...]} */
static PyObject *
meta_get_schema(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"schema_id", NULL};
    PyObject *schema_id, *out = NULL;
    found f;
    int64_t id;

    (void)self;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O:get_schema", kwlist, &schema_id) ||
        id_arg(schema_id, "schema_id", &id) != 0)
        return NULL;
    if (find_by_id('s', id, &f) == 1 && refine(&f, 0, PT_WH_CAT_TABLES) == 1)
        out = schema_dict(PyUnicode_AsUTF8(f.conn), f.cat, &f.cat->schemas[0], 1);
    found_clear(&f);
    return out;
}

/* The table dict of a found table, read again with its fields. */
static PyObject *
found_table_dict(found *f)
{
    const char *conn;

    if (refine(f, 1, PT_WH_CAT_FIELDS) != 1)
        return NULL;
    conn = PyUnicode_AsUTF8(f->conn);
    if (conn == NULL)
        return NULL;
    PyObject *d = table_dict(conn, f->cat, &f->cat->schemas[0], &f->cat->schemas[0].tables[0], 1);
    PyObject *cid = d != NULL ? PyLong_FromLongLong(meta_id('c', conn, NULL, NULL, NULL)) : NULL;
    if (d != NULL && (cid == NULL || PyDict_SetItemString(d, "connection_id", cid) != 0))
        Py_CLEAR(d);
    Py_XDECREF(cid);
    return d;
}

/* get_table(table_id) -> {id, name, schema_id, schema_name, database_id, name_in_query,
 *                         all_fields: [{id, name, type, sql_data_type, ...}], primary_key, ...} */
static PyObject *
meta_get_table(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"table_id", NULL};
    PyObject *table_id, *out = NULL;
    found f;
    int64_t id;

    (void)self;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O:get_table", kwlist, &table_id) ||
        id_arg(table_id, "table_id", &id) != 0)
        return NULL;
    if (find_by_id('t', id, &f) == 1)
        out = found_table_dict(&f);
    found_clear(&f);
    return out;
}

/* ---- get_or_create_schema, delete_schema, delete_table ----------------------------------- */

/* Creates schema unless it exists (*existed says which) and reads its catalog into *cat (caller
 * frees). No Python: runs without the GIL. Returns 0 or a pt_err. */
static int
ensure_schema(pt_wh *wh, const char *schema, int *existed, pt_wh_catalog **cat)
{
    int rc = pt_wh_schema_exists(wh, schema);

    *existed = rc == 1;
    if (rc == 0)
        rc = pt_wh_create_schema(wh, schema);
    else if (rc == 1)
        rc = 0;
    return rc != 0 ? rc : pt_wh_catalog_read(wh, schema, NULL, PT_WH_CAT_TABLES, cat);
}

/* get_or_create_schema(schema_name, database_name=None, database_id=None) -> the schema's
 * get_schema dict, with "created": whether this call created it. */
static PyObject *
meta_get_or_create_schema(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"schema_name", "database_name", "database_id", NULL};
    PyObject *schema_name, *db_name = Py_None, *db_id = Py_None, *t = NULL, *out = NULL;
    pq_handle *h = NULL;
    pt_wh_catalog *cat = NULL;
    const char *schema, *conn;
    int rc, existed = 0;

    (void)self;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|OO:get_or_create_schema", kwlist,
                                     &schema_name, &db_name, &db_id))
        return NULL;
    if ((schema = name_arg(schema_name, "schema_name")) == NULL)
        return NULL;
    if (!pt_wh_ident_valid(schema)) {
        PyErr_Format(pt_pq_bad_arg,
                     "invalid schema name %R (letters, digits, '_' and '$', not starting with a "
                     "digit, at most 63)",
                     schema_name);
        return NULL;
    }
    if (db_id == Py_None && db_name == Py_None) {
        PyErr_SetString(pt_pq_bad_arg, "database_name or database_id is required");
        return NULL;
    }
    if ((t = find_database(db_id, db_name)) == NULL)
        return NULL;
    if ((h = pt_pq_handle_get(PyTuple_GET_ITEM(t, 0))) == NULL || pt_pq_handle_settle(h) != 0)
        goto done;
    PQ_WITHOUT_GIL(rc = ensure_schema(h->wh, schema, &existed, &cat));
    if (rc != 0) {
        pt_pq_raise_wh(h->wh, rc);
        goto done;
    }
    conn = PyUnicode_AsUTF8(PyTuple_GET_ITEM(t, 0));
    if (cat->nschemas != 1) {
        PyErr_Format(pt_pq_error, "schema '%s' was created but is not in the catalog", schema);
        goto done;
    }
    out = conn != NULL ? schema_dict(conn, cat, &cat->schemas[0], 1) : NULL;
    if (out != NULL && PyDict_SetItemString(out, "created", existed ? Py_False : Py_True) != 0)
        Py_CLEAR(out);
done:
    pt_wh_catalog_free(cat);
    Py_XDECREF(h);
    Py_XDECREF(t);
    return out;
}

/* delete_schema(schema_id=None, schema_name=None, database_name=None, database_id=None) ->
 * {deleted: True, id, name, database_id}: the schema goes with everything in it. */
static PyObject *
meta_delete_schema(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"schema_id", "schema_name", "database_name", "database_id", NULL};
    PyObject *schema_id = Py_None, *schema_name = Py_None, *db_name = Py_None, *db_id = Py_None;
    PyObject *out = NULL;
    pq_handle *h = NULL;
    const char *schema, *conn;
    found f;
    int rc;

    (void)self;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|OOOO:delete_schema", kwlist, &schema_id,
                                     &schema_name, &db_name, &db_id))
        return NULL;
    if (find_schema(schema_id, schema_name, db_id, db_name, &f) != 1)
        goto done;
    schema = f.cat->schemas[f.si].name;
    conn = PyUnicode_AsUTF8(f.conn);
    if (conn == NULL || (h = pt_pq_handle_get(f.conn)) == NULL || pt_pq_handle_settle(h) != 0)
        goto done;
    PQ_WITHOUT_GIL(rc = pt_wh_drop_schema(h->wh, schema));
    if (rc != 0) {
        pt_pq_raise_wh(h->wh, rc);
        goto done;
    }
    out = Py_BuildValue("{sOsLsssL}", "deleted", Py_True, "id",
                        (long long)meta_id('s', conn, schema, NULL, NULL), "name", schema,
                        "database_id", (long long)meta_id('d', conn, NULL, NULL, NULL));
done:
    Py_XDECREF(h);
    found_clear(&f);
    return out;
}

/* Finds a table by name: in the schema with schema_id, or in every schema named schema_name
 * of every connection (more than one match is an error naming them). Returns as find_by_id. */
static int
find_table_by_name(const char *table, PyObject *schema_id, PyObject *schema_name, found *f)
{
    PyObject *conns = NULL, *hits = NULL;
    const char *schema = NULL;
    int rc = -1;

    memset(f, 0, sizeof *f);
    if (schema_id != Py_None) {
        rc = find_schema(schema_id, Py_None, Py_None, Py_None, f);
        if (rc != 1)
            return rc;
        schema = f->cat->schemas[f->si].name;
        pt_wh_catalog *cat = NULL;
        if (read_catalog(f->conn, schema, table, PT_WH_CAT_TABLES, &cat) != 0) {
            found_clear(f);
            return -1;
        }
        pt_wh_catalog_free(f->cat);
        f->cat = cat;
        f->si = f->ti = 0;
        if (cat->nschemas == 1 && cat->schemas[0].ntables == 1)
            return 1;
        PyErr_Format(meta_not_found, "no table '%s' in schema %R", table, schema_id);
        found_clear(f);
        return 0;
    }
    if (schema_name == Py_None) {
        PyErr_SetString(pt_pq_bad_arg, "schema_id or schema_name is required with table_name");
        return -1;
    }
    if ((schema = name_arg(schema_name, "schema_name")) == NULL)
        return -1;
    conns = connections();
    hits = PyList_New(0);
    if (conns == NULL || hits == NULL)
        goto done;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(conns); i++) {
        PyObject *t = PyList_GET_ITEM(conns, i); /* borrowed */
        pt_wh_catalog *cat = NULL;
        if (read_catalog(PyTuple_GET_ITEM(t, 0), schema, table, PT_WH_CAT_TABLES, &cat) != 0) {
            if (!PyErr_ExceptionMatches(pt_pq_unavailable))
                goto done;
            PyErr_Clear();
            continue;
        }
        if (cat->nschemas == 1 && cat->schemas[0].ntables == 1) {
            if (PyList_Append(hits, PyTuple_GET_ITEM(t, 0)) != 0) {
                pt_wh_catalog_free(cat);
                goto done;
            }
            if (f->cat == NULL) {
                f->conn = Py_NewRef(PyTuple_GET_ITEM(t, 0));
                f->kind = Py_NewRef(PyTuple_GET_ITEM(t, 1));
                f->cat = cat;
                continue;
            }
        }
        pt_wh_catalog_free(cat);
    }
    if (PyList_GET_SIZE(hits) == 1) {
        rc = 1;
    } else if (PyList_GET_SIZE(hits) == 0) {
        PyErr_Format(meta_not_found, "no table '%s' in a schema named '%s'", table, schema);
        rc = 0;
    } else {
        PyErr_Format(pt_pq_bad_arg,
                     "table '%s.%s' exists in several connections (%R): give table_id or "
                     "schema_id",
                     schema, table, hits);
    }
done:
    if (rc != 1)
        found_clear(f);
    Py_XDECREF(conns);
    Py_XDECREF(hits);
    return rc;
}

/* delete_table(table_id=None, table_name=None, schema_id=None, schema_name=None, force=False)
 * -> {deleted: True, id, name, schema_name}. force also drops what depends on the table. */
static PyObject *
meta_delete_table(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"table_id", "table_name", "schema_id", "schema_name", "force", NULL};
    PyObject *table_id = Py_None, *table_name = Py_None, *schema_id = Py_None;
    PyObject *schema_name = Py_None, *force = Py_False, *out = NULL;
    pq_handle *h = NULL;
    const char *table, *conn;
    found f;
    int64_t id;
    int rc, cascade;

    (void)self;
    memset(&f, 0, sizeof f);
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|OOOOO:delete_table", kwlist, &table_id,
                                     &table_name, &schema_id, &schema_name, &force))
        return NULL;
    if ((cascade = PyObject_IsTrue(force)) < 0)
        return NULL;
    if (table_id != Py_None) {
        if (id_arg(table_id, "table_id", &id) != 0 || find_by_id('t', id, &f) != 1)
            goto done;
    } else if (table_name == Py_None) {
        PyErr_SetString(pt_pq_bad_arg, "table_id or table_name is required");
        goto done;
    } else if ((table = name_arg(table_name, "table_name")) == NULL ||
               find_table_by_name(table, schema_id, schema_name, &f) != 1) {
        goto done;
    }
    const pt_wh_schema_info *s = &f.cat->schemas[f.si];
    const pt_wh_table_info *t = &s->tables[f.ti];
    conn = PyUnicode_AsUTF8(f.conn);
    if (conn == NULL || (h = pt_pq_handle_get(f.conn)) == NULL || pt_pq_handle_settle(h) != 0)
        goto done;
    PQ_WITHOUT_GIL(rc = pt_wh_drop_table(h->wh, s->name, t->name, t->is_view, cascade));
    if (rc != 0) {
        pt_pq_raise_wh(h->wh, rc);
        goto done;
    }
    out = Py_BuildValue("{sOsLsssssL}", "deleted", Py_True, "id",
                        (long long)meta_id('t', conn, s->name, t->name, NULL), "name", t->name,
                        "schema_name", s->name, "schema_id",
                        (long long)meta_id('s', conn, s->name, NULL, NULL));
done:
    Py_XDECREF(h);
    found_clear(&f);
    return out;
}

/* ---- generate_sql_union ------------------------------------------------------------------ */

/* The source label of table id in sources (keys: ids as int or str): a new str ("" when
 * absent), NULL with an error set. */
static PyObject *
source_label(PyObject *sources, int64_t id)
{
    PyObject *key = PyLong_FromLongLong(id), *v;

    if (key == NULL)
        return NULL;
    v = PyDict_GetItemWithError(sources, key); /* borrowed */
    Py_DECREF(key);
    if (v == NULL && !PyErr_Occurred()) {
        key = PyUnicode_FromFormat("%lld", (long long)id);
        v = key != NULL ? PyDict_GetItemWithError(sources, key) : NULL;
        Py_XDECREF(key);
        if (v == NULL && !PyErr_Occurred())
            return PyUnicode_FromString("");
    }
    return v != NULL ? PyObject_Str(v) : NULL;
}

/* generate_sql_union(table_ids, sources=None) -> str: SELECT ... UNION ALL SELECT ... of every
 * column of every table, with a first column "source" when sources ({table_id: label}) is
 * given (pt_wh_union_sql builds it). */
static PyObject *
meta_generate_sql_union(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"table_ids", "sources", NULL};
    PyObject *ids_arg, *sources = Py_None, *seq = NULL, *keep = NULL, *out = NULL;
    found *tabs = NULL;
    const pt_wh_catalog **cats = NULL;
    const char **labels = NULL; /* borrowed from the str objects in keep */
    pq_handle *h = NULL;
    char *sql = NULL;
    Py_ssize_t n = 0, got = 0, i;
    int rc;

    (void)self;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|O:generate_sql_union", kwlist, &ids_arg,
                                     &sources))
        return NULL;
    seq = PySequence_Fast(ids_arg, "table_ids must be a list of table ids");
    if (seq == NULL)
        goto done;
    n = PySequence_Fast_GET_SIZE(seq);
    if (n == 0) {
        PyErr_SetString(pt_pq_bad_arg, "table_ids is empty");
        goto done;
    }
    if (sources != Py_None && !PyDict_Check(sources)) {
        PyErr_SetString(pt_pq_bad_arg, "sources must be a dict of table id -> label");
        goto done;
    }
    tabs = PyMem_Calloc((size_t)n, sizeof *tabs);
    cats = PyMem_Calloc((size_t)n, sizeof *cats);
    labels = PyMem_Calloc((size_t)n, sizeof *labels);
    keep = PyList_New(0);
    if (tabs == NULL || cats == NULL || labels == NULL || keep == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (got = 0; got < n; got++) {
        int64_t id;
        found *f = &tabs[got];
        if (id_arg(PySequence_Fast_GET_ITEM(seq, got), "table id", &id) != 0 ||
            find_by_id('t', id, f) != 1 || refine(f, 1, PT_WH_CAT_FIELDS) != 1) {
            got++; /* f may hold references: cleared below */
            goto done;
        }
        if (PyUnicode_Compare(f->conn, tabs[0].conn) != 0) {
            PyErr_Format(pt_pq_bad_arg,
                         "generate_sql_union: the tables must be in one database connection; "
                         "table %lld is in '%U', table %R in '%U'",
                         (long long)id, f->conn, PySequence_Fast_GET_ITEM(seq, 0), tabs[0].conn);
            got++;
            goto done;
        }
        cats[got] = f->cat;
        if (sources != Py_None) {
            PyObject *label = source_label(sources, id);
            Py_ssize_t len;
            if (label == NULL || PyList_Append(keep, label) != 0) {
                Py_XDECREF(label);
                got++;
                goto done;
            }
            Py_DECREF(label); /* keep holds it */
            labels[got] = PyUnicode_AsUTF8AndSize(label, &len);
            if (labels[got] == NULL || strlen(labels[got]) != (size_t)len) {
                PyErr_Clear();
                PyErr_Format(pt_pq_bad_arg, "invalid source label %R", label);
                got++;
                goto done;
            }
        }
    }
    if ((h = pt_pq_handle_get(tabs[0].conn)) == NULL)
        goto done;
    rc = pt_wh_union_sql(h->wh, cats, (size_t)n, sources != Py_None ? labels : NULL, &sql);
    if (rc != 0) {
        pt_pq_raise_wh(h->wh, rc);
        goto done;
    }
    out = PyUnicode_FromString(sql);
done:
    for (i = 0; tabs != NULL && i < got; i++)
        found_clear(&tabs[i]);
    free(sql);
    Py_XDECREF(h);
    PyMem_Free(tabs);
    PyMem_Free(cats);
    PyMem_Free(labels);
    Py_XDECREF(keep);
    Py_XDECREF(seq);
    return out;
}

/* ---- refresh_* (design note 1) ----------------------------------------------------------- */

/* Checks the ids given (unknown ones raise pq.NotFound) and returns Peliqan's refresh status
 * shape, done at once. */
static PyObject *
refreshed(PyObject *database_id, PyObject *schema_id, PyObject *table_id)
{
    PyObject *t;
    found f;
    int64_t id;

    if (database_id != Py_None) {
        if ((t = find_database(database_id, Py_None)) == NULL)
            return NULL;
        Py_DECREF(t);
    }
    if (schema_id != Py_None) {
        if (id_arg(schema_id, "schema_id", &id) != 0 || find_by_id('s', id, &f) != 1)
            return NULL;
        found_clear(&f);
    }
    if (table_id != Py_None) {
        if (id_arg(table_id, "table_id", &id) != 0 || find_by_id('t', id, &f) != 1)
            return NULL;
        found_clear(&f);
    }
    return Py_BuildValue("{sOsOsssOss}", "task_id", Py_None, "run_data", Py_None, "detail",
                         "Portico reads the catalog live: there is nothing to refresh", "syncing",
                         Py_False, "status", "done");
}

/* refresh_database(connection_name=None, database_name=None, database_id=None, is_async=True)
 * and get_refresh_database_status(..., task_id='') */
static PyObject *
meta_refresh_database(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"connection_name", "database_name", "database_id",
                             "is_async",        "task_id",       NULL};
    PyObject *o[5] = {Py_None, Py_None, Py_None, Py_None, Py_None};

    (void)self;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|OOOOO:refresh_database", kwlist, &o[0], &o[1],
                                     &o[2], &o[3], &o[4]))
        return NULL;
    return refreshed(o[2], Py_None, Py_None);
}

/* refresh_schema(connection_name=None, database_name=None, schema_name=None, schema_id=None,
 * is_async=True) and get_refresh_schema_status(..., task_id='') */
static PyObject *
meta_refresh_schema(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"connection_name", "database_name", "schema_name", "schema_id",
                             "is_async",        "task_id",       NULL};
    PyObject *o[6] = {Py_None, Py_None, Py_None, Py_None, Py_None, Py_None};

    (void)self;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|OOOOOO:refresh_schema", kwlist, &o[0], &o[1],
                                     &o[2], &o[3], &o[4], &o[5]))
        return NULL;
    return refreshed(Py_None, o[3], Py_None);
}

/* refresh_table(connection_name=None, database_name=None, schema_name=None, table_name=None,
 * table_id=None, is_async=True) and get_refresh_table_status(..., task_id='') */
static PyObject *
meta_refresh_table(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"connection_name", "database_name", "schema_name", "table_name",
                             "table_id",        "is_async",      "task_id",     NULL};
    PyObject *o[7] = {Py_None, Py_None, Py_None, Py_None, Py_None, Py_None, Py_None};

    (void)self;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|OOOOOOO:refresh_table", kwlist, &o[0], &o[1],
                                     &o[2], &o[3], &o[4], &o[5], &o[6]))
        return NULL;
    return refreshed(Py_None, Py_None, o[4]);
}

/* ---- NotAvailable ------------------------------------------------------------------------ */

/* Raises pq.NotAvailable with the function's message (self: a str made at setup). */
static PyObject *
not_available_call(PyObject *self, PyObject *args, PyObject *kwargs)
{
    (void)args;
    (void)kwargs;
    PyErr_SetObject(not_available, self);
    return NULL;
}

#define R_CONNECTOR                                                                                \
    "SaaS connectors do not exist in a self-hosted server (pq.dbconnect reaches a warehouse "      \
    "connection added with `portico db add`)"
#define R_PIPELINE "SaaS connector pipelines do not exist in a self-hosted server"
#define R_WRITEBACK                                                                                \
    "Peliqan's spreadsheet change log and writeback do not exist in a self-hosted server "         \
    "(write rows with pq.dbconnect(...).update)"
#define R_TRINO "Peliqan's federated query engine (Trino) does not exist in a self-hosted server"
#define R_QUERIES                                                                                  \
    "Peliqan's saved queries and data catalog annotations do not exist in a self-hosted server "   \
    "(run CREATE VIEW or ALTER TABLE with pq.dbconnect(...).execute)"
#define R_BACKEND                                                                                  \
    "it is a call to Peliqan's SaaS backend (use pq.list_databases, pq.get_schema and "            \
    "pq.get_table)"
#define R_PARTNER "partner sub-accounts belong to Peliqan's SaaS and do not exist here"
#define R_RUNS                                                                                     \
    "pq.run_script waits for the run it starts, so there is no run in progress to poll or stop "   \
    "(read finished runs with pq.get_script_run)"

static const struct {
    const char *name, *reason;
} unavailable[] = {
    {"connect", R_CONNECTOR},
    {"trinoconnect", R_TRINO},
    {"sftpconnect", R_CONNECTOR},
    {"aiconnect", R_CONNECTOR},
    {"update_connector", R_CONNECTOR},
    {"refresh_connection", R_PIPELINE},
    {"get_refresh_connection_status", R_PIPELINE},
    {"run_pipeline", R_PIPELINE},
    {"discover_pipeline", R_PIPELINE},
    {"full_resync", R_PIPELINE},
    {"get_pipeline_runs", R_PIPELINE},
    {"get_pipeline_run", R_PIPELINE},
    {"get_pipeline_logs", R_PIPELINE},
    {"get_connection_state", R_PIPELINE},
    {"set_connection_state", R_PIPELINE},
    {"send_connection_invite", R_PIPELINE},
    {"list_changes", R_WRITEBACK},
    {"update_writeback_status", R_WRITEBACK},
    {"update_cell", R_WRITEBACK},
    {"load_table", R_TRINO},
    {"materialize", R_QUERIES},
    {"add_query", R_QUERIES},
    {"upsert_query", R_QUERIES},
    {"get_final_query", R_QUERIES},
    {"update_table", R_QUERIES},
    {"update_field", R_QUERIES},
    {"update_schema", R_QUERIES},
    {"update_database", R_QUERIES},
    {"hide_table", R_QUERIES},
    {"replicate", R_QUERIES},
    {"discover_object_schema", R_BACKEND},
    {"find_resource", R_BACKEND},
    {"call_api", R_PARTNER},
    {"add_subaccount", R_PARTNER},
    {"list_subaccounts", R_PARTNER},
    {"get_subaccount", R_PARTNER},
    {"get_subaccount_token", R_PARTNER},
    {"get_subaccount_info", R_PARTNER},
    {"get_subaccount_instance", R_PARTNER},
    {"subaccount_materialize", R_PARTNER},
    {"get_script_run_status", R_RUNS},
    {"stop_script_run", R_RUNS},
};

#define N_UNAVAILABLE (sizeof unavailable / sizeof unavailable[0])

/* One PyMethodDef per stub, so that each has its own __name__ (static: functions point here). */
static PyMethodDef unavailable_defs[N_UNAVAILABLE];

/* ---- setup ------------------------------------------------------------------------------- */

#define METHOD(name, fn, doc)                                                                      \
    {                                                                                              \
        name, (PyCFunction)(void (*)(void))fn, METH_VARARGS | METH_KEYWORDS, doc                   \
    }

static PyMethodDef meta_methods[] = {
    {"list_connections", meta_list_connections, METH_NOARGS,
     "list_connections() -> [{'id', 'name', 'server_type', 'is_datawarehouse', ...}]"},
    {"list_databases", meta_list_databases, METH_NOARGS,
     "list_databases() -> [{'id', 'name', 'connection_name', 'schemas', 'tables', ...}]: every "
     "database with its schemas, tables and fields"},
    METHOD("get_schema", meta_get_schema, "get_schema(schema_id) -> {'id', 'name', 'tables', ...}"),
    METHOD("get_table", meta_get_table,
           "get_table(table_id) -> {'id', 'name', 'name_in_query', 'all_fields', ...}"),
    METHOD("get_or_create_schema", meta_get_or_create_schema,
           "get_or_create_schema(schema_name, database_name=None, database_id=None) -> schema"),
    METHOD("delete_schema", meta_delete_schema,
           "delete_schema(schema_id=None, schema_name=None, database_name=None, "
           "database_id=None) -> {'deleted': True, ...}"),
    METHOD("delete_table", meta_delete_table,
           "delete_table(table_id=None, table_name=None, schema_id=None, schema_name=None, "
           "force=False) -> {'deleted': True, ...}"),
    METHOD("generate_sql_union", meta_generate_sql_union,
           "generate_sql_union(table_ids, sources=None) -> str: a UNION ALL query of the tables"),
    METHOD("refresh_database", meta_refresh_database,
           "refresh_database(connection_name=None, database_name=None, database_id=None, "
           "is_async=True) -> status (the catalog is live: done at once)"),
    METHOD("get_refresh_database_status", meta_refresh_database,
           "get_refresh_database_status(...) -> status (always done)"),
    METHOD("refresh_schema", meta_refresh_schema,
           "refresh_schema(connection_name=None, database_name=None, schema_name=None, "
           "schema_id=None, is_async=True) -> status (the catalog is live: done at once)"),
    METHOD("get_refresh_schema_status", meta_refresh_schema,
           "get_refresh_schema_status(...) -> status (always done)"),
    METHOD("refresh_table", meta_refresh_table,
           "refresh_table(connection_name=None, database_name=None, schema_name=None, "
           "table_name=None, table_id=None, is_async=True) -> status (done at once)"),
    METHOD("get_refresh_table_status", meta_refresh_table,
           "get_refresh_table_status(...) -> status (always done)"),
    {NULL, NULL, 0, NULL},
};

/* Makes pq.<name> an exception class with the given bases; new reference or NULL. */
static PyObject *
add_error(PyObject *module, const char *name, PyObject *base, PyObject *base2, const char *doc)
{
    PyObject *bases = PyTuple_Pack(2, base, base2), *e;
    char full[64];

    if (bases == NULL)
        return NULL;
    snprintf(full, sizeof full, "pq.%s", name);
    e = PyErr_NewExceptionWithDoc(full, doc, bases, NULL);
    Py_DECREF(bases);
    if (e != NULL && PyModule_AddObjectRef(module, name, e) != 0)
        Py_CLEAR(e);
    return e;
}

int
pt_py_pq_meta_setup(PyObject *module)
{
    PyObject *modname = PyModule_GetNameObject(module), *fn, *msg, *dw = NULL;
    size_t i;
    int rc = -1;

    if (modname == NULL)
        return -1;
    Py_CLEAR(meta_not_found);
    Py_CLEAR(not_available);
    meta_not_found = add_error(module, "NotFound", pt_pq_error, PyExc_LookupError,
                               "Raised by pq's metadata functions for an unknown id or name.");
    not_available = add_error(module, "NotAvailable", pt_pq_error, PyExc_NotImplementedError,
                              "Raised by the functions of Peliqan's client that cannot exist in "
                              "a self-hosted server.");
    if (meta_not_found == NULL || not_available == NULL)
        goto done;
    /* Set, not added: list_databases replaces the one pq.c defines. */
    for (i = 0; meta_methods[i].ml_name != NULL; i++) {
        fn = PyCFunction_NewEx(&meta_methods[i], NULL, modname);
        if (fn == NULL || PyObject_SetAttrString(module, meta_methods[i].ml_name, fn) != 0) {
            Py_XDECREF(fn);
            goto done;
        }
        Py_DECREF(fn);
    }
    /* Stubs only where nothing else defines the name (the scripts and state family may). */
    for (i = 0; i < N_UNAVAILABLE; i++) {
        if (PyObject_HasAttrString(module, unavailable[i].name))
            continue;
        unavailable_defs[i].ml_name = unavailable[i].name;
        unavailable_defs[i].ml_meth = (PyCFunction)(void (*)(void))not_available_call;
        unavailable_defs[i].ml_flags = METH_VARARGS | METH_KEYWORDS;
        unavailable_defs[i].ml_doc = unavailable[i].reason;
        msg = PyUnicode_FromFormat("pq.%s is not available in Portico: %s", unavailable[i].name,
                                   unavailable[i].reason);
        fn = msg != NULL ? PyCFunction_NewEx(&unavailable_defs[i], msg, modname) : NULL;
        Py_XDECREF(msg); /* the function holds it */
        if (fn == NULL || PyObject_SetAttrString(module, unavailable[i].name, fn) != 0) {
            Py_XDECREF(fn);
            goto done;
        }
        Py_DECREF(fn);
    }
    dw = PyObject_GetAttrString(module, "DW_NAME");
    if (dw == NULL || !PyUnicode_Check(dw)) {
        PyErr_Clear();
        Py_XDECREF(dw);
        dw = PyUnicode_FromString("dw");
    }
    const char *dwname = dw != NULL ? PyUnicode_AsUTF8(dw) : NULL;
    PyObject *id =
        dwname != NULL ? PyLong_FromLongLong(meta_id('d', dwname, NULL, NULL, NULL)) : NULL;
    if (id != NULL && PyModule_AddObjectRef(module, "DW_ID", id) == 0)
        rc = 0;
    Py_XDECREF(id);
done:
    Py_XDECREF(dw);
    Py_DECREF(modname);
    return rc;
}
