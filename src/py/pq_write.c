/* pq_write.c - the writing calls of a pq connection, with Peliqan's signatures: insert, update,
 * upsert and delete of one row by its key; create_schema and create_table; write(), the
 * pipeline writer (which creates tables and columns, and shapes records through the prelude's
 * write_plan()). GIL for all.
 *
 * The statements themselves are built by warehouse/wh_sql.c (quoted, validated names; every
 * value a bound parameter): this file binds Python's side of them. Column types of tables pq
 * creates come from a fixed list of portable names (pt_wh_sql_type), never from the caller's
 * text. */
#include "py/pq_int.h"

#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/err.h"
#include "warehouse/wh_sql.h"

#define WRITE_BATCH 500 /* rows per transaction in write() */

/* Splits record (a snapshot: pt_pq_record_snapshot) into its column names (names[0..n),
 * validated, borrowed from the snapshot) and values (vals[off..off+n)), at most n of them (the
 * room in names and vals). Returns 0 or -1 with an error set. */
static int
record_split(PyObject *record, const char **names, pt_value *vals, size_t off, size_t n,
             PyObject *keep)
{
    Py_ssize_t pos = 0;
    PyObject *k, *v; /* borrowed from the snapshot, which nothing else can reach */
    size_t i = 0;

    while (PyDict_Next(record, &pos, &k, &v)) {
        if (i == n) {
            PyErr_SetString(pt_pq_bad_arg, "record changed while it was read");
            return -1;
        }
        /* checked again: this goes into the SQL */
        if ((names[i] = pt_pq_ident_arg(k, "column")) == NULL ||
            pt_pq_to_value(v, &vals[off + i], keep) != 0)
            return -1;
        i++;
    }
    return 0;
}

/* The table's primary key column into pk; "" when it has none. -1 with TableNotFound when the
 * table does not exist. */
static int
table_pk(pq_handle *h, const char *schema, const char *table, char *pk, size_t pksz)
{
    int rc, pkrc = 0;

    if (pt_pq_handle_settle(h) != 0)
        return -1;
    PQ_WITHOUT_GIL(rc = pt_wh_table_exists(h->wh, schema, table);
                   if (rc > 0) pkrc = pt_wh_primary_key(h->wh, schema, table, pk, pksz));
    if (rc == 0) {
        PyErr_Format(pt_pq_not_found, "table %s.%s not found", schema, table);
        return -1;
    }
    if (rc < 0) {
        pt_pq_raise_wh(h->wh, rc);
        return -1;
    }
    rc = pkrc;
    if (rc == PT_ENOTFOUND) {
        pk[0] = '\0';
        return 0;
    }
    if (rc != 0) {
        pt_pq_raise_wh(h->wh, rc);
        return -1;
    }
    return 0;
}

/* The primary key column of schema.table into pk; "" when the table has none or does not exist
 * yet. Returns 0 or -1 with an error set. */
static int
existing_pk(pq_handle *h, const char *schema, const char *table, char *pk, size_t pksz)
{
    int exists;

    pk[0] = '\0';
    if (pt_pq_handle_settle(h) != 0)
        return -1;
    PQ_WITHOUT_GIL(exists = pt_wh_table_exists(h->wh, schema, table));
    if (exists < 0) {
        pt_pq_raise_wh(h->wh, exists);
        return -1;
    }
    return exists ? table_pk(h, schema, table, pk, pksz) : 0;
}

static int
need_pk(pq_handle *h, const char *schema, const char *table, char *pk, size_t pksz)
{
    if (table_pk(h, schema, table, pk, pksz) != 0)
        return -1;
    if (pk[0] == '\0') {
        PyErr_Format(pt_pq_bad_arg,
                     "table %s.%s has no single-column primary key, so rows cannot be found by "
                     "key (use execute() with a WHERE clause)",
                     schema, table);
        return -1;
    }
    return 0;
}

/* ---- insert / update / upsert / delete --------------------------------------------------- */

/* The arguments shared by insert, update, upsert and delete: Peliqan's names first, Portico's
 * older ones as aliases. `record` is the older keyword for the row; Peliqan passes the row as
 * dicts after the fixed arguments and as column=value keywords. */
enum { K_DB, K_SCHEMA, K_TABLE, K_PK, K_RECORD, K_COUNT };

static const pq_argspec insert_specs[] = {
    {"db_name", "db"}, {"schema_name", "schema"}, {"table_name", "table"}, {"record", NULL}};
static const pq_argspec keyed_specs[] = {{"db_name", "db"},
                                         {"schema_name", "schema"},
                                         {"table_name", "table"},
                                         {"pk", "pk_value"},
                                         {"record", NULL}};

/* A keyed call's parsed arguments. */
typedef struct keyed {
    PyObject *db;       /* borrowed, or NULL */
    const char *schema; /* borrowed UTF-8 of the argument */
    const char *table;
    PyObject *pk_value; /* borrowed */
    PyObject *record;   /* a snapshot (new reference), or NULL for delete */
} keyed;

/* Parses fname(db_name, schema_name, table_name, pk, *records, **columns); with want_record 0
 * (delete) no record may be given. Returns 0 or -1 with an error set. */
static int
parse_keyed(const char *fname, PyObject *args, PyObject *kwargs, int want_record, keyed *k)
{
    PyObject *a[K_COUNT], *extra = NULL, *rest = NULL;
    size_t nspecs = want_record ? K_COUNT : K_RECORD;
    int rc = -1;

    memset(k, 0, sizeof *k);
    if (pt_pq_bind_args(fname, args, kwargs, keyed_specs, nspecs, a, want_record ? &extra : NULL,
                        want_record ? &rest : NULL) != 0 ||
        pt_pq_require_args(fname, keyed_specs, a, want_record ? K_PK : K_PK + 1) != 0)
        goto done;
    if (a[K_PK] == NULL || a[K_PK] == Py_None) {
        PyErr_Format(pt_pq_bad_arg, "%s() needs pk: the primary key value of the row (not None)",
                     fname);
        goto done;
    }
    k->db = a[K_DB];
    k->schema = pt_pq_ident_arg(a[K_SCHEMA], "schema");
    k->table = k->schema != NULL ? pt_pq_ident_arg(a[K_TABLE], "table") : NULL;
    k->pk_value = a[K_PK];
    if (k->table == NULL)
        goto done;
    if (want_record &&
        (k->record = pt_pq_record_from_args(fname, a[K_RECORD], extra, rest)) == NULL)
        goto done;
    rc = 0;
done:
    Py_XDECREF(extra);
    Py_XDECREF(rest);
    return rc;
}

/* INSERT of record (a snapshot), RETURNING the key when the table has one. */
static PyObject *
do_insert(pq_handle *h, const char *schema, const char *table, const char *pk, PyObject *record,
          PyObject *keep, int64_t *changes)
{
    size_t n = (size_t)PyDict_GET_SIZE(record);
    pt_value *vals = PyMem_Calloc(n + 1, sizeof *vals);
    const char **names = PyMem_Calloc(n + 1, sizeof *names);
    PyObject *id = NULL;
    pt_buf sql;

    pt_buf_init(&sql, 0);
    if (vals == NULL || names == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    if (record_split(record, names, vals, 0, n, keep) != 0 ||
        pt_pq_sql_built("insert", pt_wh_sql_insert(&sql, schema, table, names, n,
                                                   pk[0] != '\0' ? pk : NULL)) != 0)
        goto done;
    *changes = pt_pq_exec_count(h, pt_buf_cstr(&sql), vals, n, &id);
    if (*changes < 0)
        Py_CLEAR(id);
    else if (id == NULL)
        id = Py_NewRef(Py_None);
done:
    PyMem_Free(names);
    PyMem_Free(vals);
    pt_buf_free(&sql);
    return id;
}

/* insert(db_name, schema_name, table_name, *records, **columns) -> {"inserted": n, "id": key} */
PyObject *
pt_pq_conn_insert(PyObject *self, PyObject *args, PyObject *kwargs)
{
    PyObject *a[4], *extra = NULL, *rest = NULL, *record = NULL, *keep = NULL, *id = NULL;
    PyObject *out = NULL;
    const char *schema, *table;
    pq_handle *h = NULL;
    char pk[128];
    int64_t changes = 0;

    if (pt_pq_bind_args("insert", args, kwargs, insert_specs, 4, a, &extra, &rest) != 0)
        return NULL;
    if (pt_pq_require_args("insert", insert_specs, a, 3) != 0)
        goto done;
    schema = pt_pq_ident_arg(a[1], "schema");
    table = schema != NULL ? pt_pq_ident_arg(a[2], "table") : NULL;
    if (table == NULL || (record = pt_pq_record_from_args("insert", a[3], extra, rest)) == NULL)
        goto done;
    keep = PyList_New(0);
    h = keep != NULL ? pt_pq_conn_handle((pq_conn *)self, a[0]) : NULL;
    if (h == NULL || table_pk(h, schema, table, pk, sizeof pk) != 0)
        goto done;
    id = do_insert(h, schema, table, pk, record, keep, &changes);
    if (id != NULL)
        out = Py_BuildValue("{sLsO}", "inserted", (long long)changes, "id", id);
done:
    Py_XDECREF(id);
    Py_XDECREF(keep);
    Py_XDECREF(h);
    Py_XDECREF(record);
    Py_XDECREF(extra);
    Py_XDECREF(rest);
    return out;
}

/* UPDATE schema.table SET record (a snapshot) WHERE pk = pk_value; returns rows changed or -1. */
static int64_t
do_update(pq_handle *h, const keyed *k, const char *pk, PyObject *keep)
{
    size_t n = (size_t)PyDict_GET_SIZE(k->record);
    pt_value *vals = PyMem_Calloc(n + 1, sizeof *vals);
    const char **names = PyMem_Calloc(n + 1, sizeof *names);
    int64_t changes = -1;
    pt_buf sql;

    pt_buf_init(&sql, 0);
    if (vals == NULL || names == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    if (record_split(k->record, names, vals, 0, n, keep) != 0 ||
        pt_pq_to_value(k->pk_value, &vals[n], keep) != 0)
        goto done;
    if (pt_pq_sql_built("update", pt_wh_sql_update(&sql, k->schema, k->table, names, n, pk)) == 0)
        changes = pt_pq_exec_count(h, pt_buf_cstr(&sql), vals, n + 1, NULL);
done:
    PyMem_Free(names);
    PyMem_Free(vals);
    pt_buf_free(&sql);
    return changes;
}

/* update(db_name, schema_name, table_name, pk, *records, **columns) -> {"updated": n} */
PyObject *
pt_pq_conn_update(PyObject *self, PyObject *args, PyObject *kwargs)
{
    PyObject *keep = NULL, *out = NULL;
    pq_handle *h = NULL;
    char pk[128];
    int64_t changes;
    keyed k;

    if (parse_keyed("update", args, kwargs, 1, &k) != 0)
        return NULL;
    keep = PyList_New(0);
    h = keep != NULL ? pt_pq_conn_handle((pq_conn *)self, k.db) : NULL;
    if (h == NULL || need_pk(h, k.schema, k.table, pk, sizeof pk) != 0)
        goto done;
    changes = do_update(h, &k, pk, keep);
    if (changes >= 0)
        out = Py_BuildValue("{sL}", "updated", (long long)changes);
done:
    Py_XDECREF(keep);
    Py_XDECREF(h);
    Py_DECREF(k.record);
    return out;
}

/* Removes the key column from record (a snapshot) when it names it, after checking that its
 * value is pk_value: upsert finds the row by pk_value and cannot change its key. */
static int
drop_key_column(PyObject *record, const char *pk, PyObject *pk_value)
{
    PyObject *name = PyUnicode_FromString(pk), *v; /* v: borrowed */
    int rc = -1, same;

    if (name == NULL)
        return -1;
    v = PyDict_GetItemWithError(record, name);
    if (v == NULL) {
        rc = PyErr_Occurred() ? -1 : 0;
        goto done;
    }
    Py_INCREF(v); /* comparing may run Python code */
    same = PyObject_RichCompareBool(v, pk_value, Py_EQ);
    Py_DECREF(v);
    if (same == 0)
        PyErr_Format(pt_pq_bad_arg,
                     "record's %s differs from pk (upsert cannot change a row's key; use "
                     "update)",
                     pk);
    else if (same > 0)
        rc = PyDict_DelItem(record, name);
done:
    Py_DECREF(name);
    return rc;
}

/* Runs the upsert statement sql (vals[0] is the key) on SQLite, where the statement cannot say
 * what it did: the key is looked up first, after taking the write lock of the table's schema
 * file, in the caller's transaction or one opened here. Returns the action ("inserted",
 * "updated", "unchanged") or NULL with an error set. */
static const char *
upsert_sqlite(pq_handle *h, const keyed *k, const char *pk, const char *sql, const pt_value *vals,
              size_t nvals)
{
    const char *action = NULL;
    PyObject *first = NULL;
    int64_t changed;
    int own_txn = 0;
    pt_buf key;

    pt_buf_init(&key, 0);
    if (!pt_wh_in_transaction(h->wh)) {
        if (pt_pq_exec_simple(h, "BEGIN") != 0)
            goto done;
        own_txn = 1;
    }
    if (pt_pq_sql_built("upsert", pt_wh_sql_lock_table(&key, k->schema, k->table)) != 0 ||
        pt_pq_exec_count(h, pt_buf_cstr(&key), NULL, 0, NULL) < 0 ||
        pt_pq_sql_built("upsert", pt_wh_sql_select_key(&key, k->schema, k->table, pk)) != 0 ||
        pt_pq_exec_count(h, pt_buf_cstr(&key), vals, 1, &first) < 0)
        goto done;
    changed = pt_pq_exec_count(h, sql, vals, nvals, NULL);
    if (changed < 0)
        goto done;
    action = first == NULL ? "inserted" : changed > 0 ? "updated" : "unchanged";
    if (own_txn) {
        own_txn = 0;
        if (pt_pq_exec_simple(h, "COMMIT") != 0)
            action = NULL;
    }
done:
    if (own_txn)
        pt_pq_rollback_keeping_error(h);
    Py_XDECREF(first);
    pt_buf_free(&key);
    return action;
}

/* upsert: updates only the given columns of the row with that key, or inserts it; a row whose
 * given columns already hold those values is not written at all (Peliqan's "avoids unneeded
 * updates": timestamps kept by triggers stay as they are). One INSERT ... ON CONFLICT (pk) DO
 * UPDATE SET <the given columns> WHERE <one of them differs> on both back ends, so that two
 * requests upserting the same new key cannot both try to insert it. What happened: PostgreSQL
 * says it (xmax is 0 only in a row the statement inserted; no row comes back when nothing
 * changed); SQLite cannot, so there the key is looked up first, in a transaction (the caller's,
 * when one is open) that already holds the write lock of the table's schema file, so that no
 * other connection can write in between. `DELETE ... WHERE 0` takes that lock and touches no
 * row; BEGIN IMMEDIATE would lock every attached schema file, in each connection's own order of
 * attachment, and two connections could then wait for each other until the busy timeout. */
PyObject *
pt_pq_conn_upsert(PyObject *self, PyObject *args, PyObject *kwargs)
{
    PyObject *keep = NULL, *out = NULL, *first = NULL;
    const char **names = NULL;
    const char *action = NULL, *keys[1];
    pq_handle *h = NULL;
    pt_value *vals = NULL;
    pt_wh_dialect d;
    pt_buf sql;
    char pk[128];
    size_t n;
    keyed k;

    pt_buf_init(&sql, 0);
    if (parse_keyed("upsert", args, kwargs, 1, &k) != 0)
        return NULL;
    keep = PyList_New(0);
    h = keep != NULL ? pt_pq_conn_handle((pq_conn *)self, k.db) : NULL;
    if (h == NULL || need_pk(h, k.schema, k.table, pk, sizeof pk) != 0 ||
        drop_key_column(k.record, pk, k.pk_value) != 0)
        goto done;
    d = pt_wh_dialect_of(h->wh);
    n = (size_t)PyDict_GET_SIZE(k.record);
    vals = PyMem_Calloc(n + 1, sizeof *vals);
    names = PyMem_Calloc(n + 1, sizeof *names);
    if (vals == NULL || names == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    /* The key first, then the record's columns. */
    names[0] = keys[0] = pk;
    if (pt_pq_to_value(k.pk_value, &vals[0], keep) != 0 ||
        record_split(k.record, names + 1, vals, 1, n, keep) != 0)
        goto done;
    if (pt_pq_sql_built(
            "upsert",
            pt_wh_sql_upsert(
                &sql, d, k.schema, k.table, names, n + 1,
                &(pt_wh_upsert){.keys = keys, .nkeys = 1, .report = d == PT_WH_POSTGRES})) != 0)
        goto done;
    if (d == PT_WH_POSTGRES) {
        if (pt_pq_exec_count(h, pt_buf_cstr(&sql), vals, n + 1, &first) < 0)
            goto done;
        action = first == NULL ? "unchanged" : first == Py_True ? "inserted" : "updated";
    } else {
        action = upsert_sqlite(h, &k, pk, pt_buf_cstr(&sql), vals, n + 1);
    }
    if (action != NULL)
        out = Py_BuildValue("{sssO}", "action", action, "id", k.pk_value);
done:
    PyMem_Free(names);
    PyMem_Free(vals);
    pt_buf_free(&sql);
    Py_XDECREF(first);
    Py_XDECREF(keep);
    Py_XDECREF(h);
    Py_DECREF(k.record);
    return out;
}

/* delete(db_name, schema_name, table_name, pk) -> {"deleted": n} */
PyObject *
pt_pq_conn_delete(PyObject *self, PyObject *args, PyObject *kwargs)
{
    PyObject *keep = NULL, *out = NULL;
    pq_handle *h = NULL;
    pt_value v;
    char pk[128];
    pt_buf sql;
    int64_t changes;
    keyed k;

    pt_buf_init(&sql, 0);
    if (parse_keyed("delete", args, kwargs, 0, &k) != 0)
        return NULL;
    keep = PyList_New(0);
    h = keep != NULL ? pt_pq_conn_handle((pq_conn *)self, k.db) : NULL;
    if (h == NULL || need_pk(h, k.schema, k.table, pk, sizeof pk) != 0 ||
        pt_pq_to_value(k.pk_value, &v, keep) != 0)
        goto done;
    if (pt_pq_sql_built(
            "delete", pt_wh_sql_delete(&sql, k.schema, k.table, (const char *const[]){pk}, 1)) != 0)
        goto done;
    changes = pt_pq_exec_count(h, pt_buf_cstr(&sql), &v, 1, NULL);
    if (changes >= 0)
        out = Py_BuildValue("{sL}", "deleted", (long long)changes);
done:
    pt_buf_free(&sql);
    Py_XDECREF(keep);
    Py_XDECREF(h);
    return out;
}

/* ---- create_schema / create_table -------------------------------------------------------- */

/* create_schema(db_name, schema_name) -> {"schema": name, "created": bool} */
PyObject *
pt_pq_conn_create_schema(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static const pq_argspec specs[] = {{"db_name", "db"}, {"schema_name", "schema"}};
    PyObject *a[2];
    const char *schema;
    pq_handle *h;
    int existed, rc;

    if (pt_pq_bind_args("create_schema", args, kwargs, specs, 2, a, NULL, NULL) != 0 ||
        pt_pq_require_args("create_schema", specs, a, 1) != 0)
        return NULL;
    if (a[1] == NULL) { /* create_schema('name'): Portico's older form, on the connection */
        a[1] = a[0];
        a[0] = NULL;
    }
    schema = pt_pq_ident_arg(a[1], "schema");
    if (schema == NULL || (h = pt_pq_conn_handle((pq_conn *)self, a[0])) == NULL)
        return NULL;
    if (pt_pq_handle_settle(h) != 0)
        goto fail;
    PQ_WITHOUT_GIL(existed = pt_wh_schema_exists(h->wh, schema);
                   rc = existed < 0 ? existed : pt_wh_create_schema(h->wh, schema));
    if (rc < 0) {
        pt_pq_raise_wh(h->wh, rc);
        goto fail;
    }
    Py_DECREF(h);
    return Py_BuildValue("{sssO}", "schema", schema, "created", existed ? Py_False : Py_True);
fail:
    Py_DECREF(h);
    return NULL;
}

/* The SQL type of a portable type name (or one of its common spellings); NULL with
 * pq.InvalidArgument. */
static const char *
sql_type(pq_handle *h, PyObject *name, const char *column)
{
    const char *t = PyUnicode_Check(name) ? PyUnicode_AsUTF8(name) : NULL;
    static const char *const aliases[][2] = {
        {"integer", "int"},  {"bigint", "int"},         {"str", "text"},   {"string", "text"},
        {"varchar", "text"}, {"double", "float"},       {"real", "float"}, {"decimal", "numeric"},
        {"boolean", "bool"}, {"datetime", "timestamp"}, {"jsonb", "json"}, {"blob", "bytes"},
        {"bytea", "bytes"},  {"number", "float"},       {NULL, NULL},
    };
    const char *sql;

    for (size_t i = 0; t != NULL && aliases[i][0] != NULL; i++)
        if (strcasecmp(t, aliases[i][0]) == 0)
            t = aliases[i][1];
    sql = t != NULL ? pt_wh_sql_type(h->wh, t) : NULL;
    if (sql == NULL) {
        PyErr_Clear();
        PyErr_Format(pt_pq_bad_arg,
                     "column %s: unknown type %R (use int, float, numeric, text, bool, date, "
                     "time, timestamp, timestamptz, json or bytes)",
                     column, name);
    }
    return sql;
}

/* The key columns of pk (None, a str or a list of str) as a new list of validated names. */
static PyObject *
key_list(PyObject *pk)
{
    PyObject *list;

    if (pk == NULL || pk == Py_None)
        return PyList_New(0);
    list = PyList_New(0);
    if (list == NULL)
        return NULL;
    if (PyUnicode_Check(pk)) {
        if (PyList_Append(list, pk) != 0)
            Py_CLEAR(list);
    } else if (PyList_Check(pk) || PyTuple_Check(pk)) {
        Py_SETREF(list, PySequence_List(pk));
    } else {
        PyErr_Format(pt_pq_bad_arg, "pk must be a column name or a list of them, not %.100s",
                     Py_TYPE(pk)->tp_name);
        Py_CLEAR(list);
    }
    for (Py_ssize_t i = 0; list != NULL && i < PyList_GET_SIZE(list); i++)
        if (pt_pq_ident_arg(PyList_GET_ITEM(list, i), "pk column") == NULL)
            Py_CLEAR(list);
    return list;
}

/* Is name (a str) one of keys (a list of str)? */
static int
is_key(PyObject *keys, const char *name)
{
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(keys); i++)
        if (strcmp(PyUnicode_AsUTF8(PyList_GET_ITEM(keys, i)), name) == 0)
            return 1;
    return 0;
}

/* The names of keys (a list of validated str, so their UTF-8 is cached), borrowed from it: an
 * array the caller frees with PyMem_Free. NULL with MemoryError. */
static const char **
key_names(PyObject *keys)
{
    Py_ssize_t i, n = PyList_GET_SIZE(keys);
    const char **names = PyMem_Calloc((size_t)n + 1, sizeof *names);

    if (names == NULL)
        return (const char **)PyErr_NoMemory();
    for (i = 0; i < n; i++)
        names[i] = PyUnicode_AsUTF8(PyList_GET_ITEM(keys, i));
    return names;
}

/* The definition of field i of fields (a tuple): ("col", "type") or {"name": "col", "type":
 * "type"}, both borrowed from it. Returns 0 or -1 with pq.InvalidArgument. */
static int
field_def(pq_handle *h, PyObject *fields, Py_ssize_t i, pt_wh_coldef *def)
{
    PyObject *f = PyTuple_GET_ITEM(fields, i); /* borrowed */
    PyObject *name = NULL, *type = NULL;       /* borrowed */

    if (PyDict_Check(f)) {
        name = PyDict_GetItemString(f, "name");
        type = PyDict_GetItemString(f, "type");
    } else if (PyTuple_Check(f) && PyTuple_GET_SIZE(f) == 2) {
        name = PyTuple_GET_ITEM(f, 0);
        type = PyTuple_GET_ITEM(f, 1);
    }
    if (name == NULL || type == NULL) {
        PyErr_Format(pt_pq_bad_arg, "field %zd must name a column and its type", i + 1);
        return -1;
    }
    def->name = pt_pq_ident_arg(name, "column");
    def->type = def->name != NULL ? sql_type(h, type, def->name) : NULL;
    return def->type != NULL ? 0 : -1;
}

/* Builds into sql the CREATE TABLE IF NOT EXISTS of schema.table with columns fields ({"col":
 * "type"}, [("col", "type")] or [{"name": "col", "type": "type"}]; NULL: the key columns alone,
 * as int) and primary key keys (a list of validated str), for pq's fname(). With check_keys,
 * every key must be one of the fields. Returns 0 or -1 with an error set. */
static int
create_table_sql(const char *fname, pq_handle *h, const char *schema, const char *table,
                 PyObject *fields, PyObject *keys, int check_keys, pt_buf *sql)
{
    PyObject *items = NULL, *seq = NULL;
    Py_ssize_t i, n, seen = 0, nkeys = PyList_GET_SIZE(keys);
    const char **knames = key_names(keys);
    pt_wh_coldef *defs = NULL;
    int rc = -1;

    if (knames == NULL)
        return -1;
    if (fields != NULL) {
        items = PyDict_Check(fields) ? PyDict_Items(fields) : Py_NewRef(fields);
        seq = items != NULL && !PyUnicode_Check(fields) ? PySequence_Tuple(items) : NULL;
        if (seq == NULL || PyTuple_GET_SIZE(seq) == 0) {
            PyErr_Clear();
            PyErr_SetString(pt_pq_bad_arg,
                            "fields must be a non-empty dict {column: type} or a list of "
                            "(column, type) pairs or {'name': ..., 'type': ...} dicts");
            goto done;
        }
    }
    n = seq != NULL ? PyTuple_GET_SIZE(seq) : nkeys;
    if ((defs = PyMem_Calloc((size_t)n + 1, sizeof *defs)) == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (i = 0; i < n; i++) {
        if (seq == NULL)
            defs[i] = (pt_wh_coldef){knames[i], pt_wh_sql_type(h->wh, "int")};
        else if (field_def(h, seq, i, &defs[i]) != 0)
            goto done;
        seen += is_key(keys, defs[i].name);
    }
    if (check_keys && seen != nkeys) {
        PyErr_Format(pt_pq_bad_arg, "pk %R is not among the fields", keys);
        goto done;
    }
    rc = pt_pq_sql_built(
        fname, pt_wh_sql_create_table(sql, schema, table, defs, (size_t)n, knames, (size_t)nkeys));
done:
    PyMem_Free(defs);
    PyMem_Free(knames);
    Py_XDECREF(seq);
    Py_XDECREF(items);
    return rc;
}

/* create_table(db_name, schema_name, table_name, fields=None, pk=None) ->
 * {"schema", "table", "created": bool}. Without fields, the table has only its key column(s),
 * as int: write() adds the rest when it first writes. */
PyObject *
pt_pq_conn_create_table(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static const pq_argspec specs[] = {{"db_name", "db"},
                                       {"schema_name", "schema"},
                                       {"table_name", "table"},
                                       {"fields", NULL},
                                       {"pk", NULL}};
    PyObject *a[5], *keys = NULL, *out = NULL;
    const char *schema, *table;
    pq_handle *h = NULL;
    int existed, rc;
    pt_buf sql;

    pt_buf_init(&sql, 0);
    if (pt_pq_bind_args("create_table", args, kwargs, specs, 5, a, NULL, NULL) != 0 ||
        pt_pq_require_args("create_table", specs, a, 3) != 0)
        return NULL;
    schema = pt_pq_ident_arg(a[1], "schema");
    table = schema != NULL ? pt_pq_ident_arg(a[2], "table") : NULL;
    if (table == NULL || (keys = key_list(a[4])) == NULL)
        return NULL;
    if ((a[3] == NULL || a[3] == Py_None) && PyList_GET_SIZE(keys) == 0) {
        PyErr_SetString(pt_pq_bad_arg, "create_table() needs fields (or at least a pk)");
        goto done;
    }
    h = pt_pq_conn_handle((pq_conn *)self, a[0]);
    if (h == NULL || pt_pq_handle_settle(h) != 0)
        goto done;
    if (create_table_sql("create_table", h, schema, table, a[3] != Py_None ? a[3] : NULL, keys, 1,
                         &sql) != 0)
        goto done;
    PQ_WITHOUT_GIL(rc = pt_wh_create_schema(h->wh, schema);
                   existed = rc == 0 ? pt_wh_table_exists(h->wh, schema, table) : rc);
    if (existed < 0) {
        pt_pq_raise_wh(h->wh, existed);
        goto done;
    }
    if (pt_pq_exec_simple(h, pt_buf_cstr(&sql)) != 0)
        goto done;
    out = Py_BuildValue("{sssssO}", "schema", schema, "table", table, "created",
                        existed ? Py_False : Py_True);
done:
    pt_buf_free(&sql);
    Py_XDECREF(keys);
    Py_XDECREF(h);
    return out;
}

/* ---- write ------------------------------------------------------------------------------- */

/* Finds name in names (case-insensitively on SQLite, where names are). */
static int
has_column(char **names, size_t n, const char *name, int nocase)
{
    for (size_t i = 0; i < n; i++)
        if (nocase ? strcasecmp(names[i], name) == 0 : strcmp(names[i], name) == 0)
            return 1;
    return 0;
}

/* The columns of schema.table into *names and *n (caller frees *names with free()). */
static int
table_columns(pq_handle *h, const char *schema, const char *table, char ***names, size_t *n)
{
    int rc;

    free(*names);
    *names = NULL;
    PQ_WITHOUT_GIL(rc = pt_wh_columns(h->wh, schema, table, names, n));
    if (rc != 0) {
        pt_pq_raise_wh(h->wh, rc);
        return -1;
    }
    return 0;
}

/* What writing one table of a plan did. */
typedef struct table_result {
    int created;
    long long batches;
    PyObject *added; /* list of the columns added */
} table_result;

/* Creates schema.table from plan's columns (a list of (name, portable type)) when it is missing,
 * and adds the columns it lacks. Returns 0 or -1 with an error set. */
static int
ensure_table(pq_handle *h, const char *schema, const char *table, PyObject *columns, PyObject *keys,
             table_result *res, char ***existing, size_t *nexisting)
{
    int exists, nocase = pt_wh_dialect_of(h->wh) == PT_WH_SQLITE;
    PyObject *seq = NULL, *name;
    Py_ssize_t i;
    pt_wh_coldef def;
    int added;
    pt_buf sql;
    int rc = -1;

    pt_buf_init(&sql, 0);
    if (pt_pq_handle_settle(h) != 0)
        return -1;
    PQ_WITHOUT_GIL(exists = pt_wh_create_schema(h->wh, schema);
                   if (exists == 0) exists = pt_wh_table_exists(h->wh, schema, table));
    if (exists < 0) {
        pt_pq_raise_wh(h->wh, exists);
        return -1;
    }
    if (!exists) {
        if (create_table_sql("write", h, schema, table, columns, keys, 0, &sql) != 0 ||
            pt_pq_exec_simple(h, pt_buf_cstr(&sql)) != 0)
            goto done;
        res->created = 1;
    }
    if (table_columns(h, schema, table, existing, nexisting) != 0 ||
        (seq = PySequence_Tuple(columns)) == NULL)
        goto done;
    for (i = 0; i < PyTuple_GET_SIZE(seq); i++) {
        if (field_def(h, seq, i, &def) != 0)
            goto done;
        if (has_column(*existing, *nexisting, def.name, nocase))
            continue;
        if (pt_pq_sql_built("write", pt_wh_sql_add_column(&sql, schema, table, &def)) != 0 ||
            pt_pq_exec_simple(h, pt_buf_cstr(&sql)) != 0 ||
            (name = PyUnicode_FromString(def.name)) == NULL)
            goto done;
        added = PyList_Append(res->added, name);
        Py_DECREF(name);
        if (added != 0)
            goto done;
    }
    rc = res->added != NULL && PyList_GET_SIZE(res->added) > 0
             ? table_columns(h, schema, table, existing, nexisting)
             : 0;
done:
    Py_XDECREF(seq);
    pt_buf_free(&sql);
    return rc;
}

/* The statement that writes one row of every column of the table: a row with the same key is
 * replaced whole (columns the record lacks become NULL), unless none of its data columns (all
 * but the _sdc_ metadata) would change. */
static int
row_statement(pq_handle *h, const char *schema, const char *table, char **cols, size_t ncols,
              PyObject *keys, pt_buf *sql)
{
    const char **knames = key_names(keys);
    pt_wh_upsert how = {knames, (size_t)PyList_GET_SIZE(keys), "_sdc_", 0};
    int rc;

    if (knames == NULL)
        return -1;
    rc = pt_pq_sql_built("write", pt_wh_sql_upsert(sql, pt_wh_dialect_of(h->wh), schema, table,
                                                   (const char *const *)cols, ncols, &how));
    PyMem_Free(knames);
    return rc;
}

/* Runs `DELETE FROM schema.table WHERE c1 = ? AND ...` for each tuple of values in clear
 * (cols, [tuples]): the old child rows of the parents being written. */
static int
clear_children(pq_handle *h, const char *schema, const char *table, PyObject *clear, PyObject *keep)
{
    PyObject *cols, *parents;
    pt_wh_stmt *stmt = NULL;
    pt_value vals[8];
    const char *names[8];
    Py_ssize_t i, j, ncols;
    pt_buf sql;
    int rc = -1, wrc;

    if (!PyTuple_Check(clear) || PyTuple_GET_SIZE(clear) != 2)
        return 0;
    cols = PyTuple_GET_ITEM(clear, 0);
    parents = PyTuple_GET_ITEM(clear, 1);
    ncols = PyList_Check(cols) ? PyList_GET_SIZE(cols) : 0;
    if (ncols == 0 || ncols > 8 || !PyList_Check(parents))
        return 0;
    pt_buf_init(&sql, 0);
    for (i = 0; i < ncols; i++)
        if ((names[i] = pt_pq_ident_arg(PyList_GET_ITEM(cols, i), "column")) == NULL)
            goto done;
    if (pt_pq_sql_built("write", pt_wh_sql_delete(&sql, schema, table, names, (size_t)ncols)) != 0)
        goto done;
    PQ_WITHOUT_GIL(wrc = pt_wh_prepare(h->wh, pt_buf_cstr(&sql), &stmt));
    if (wrc != 0) {
        pt_pq_raise_wh(h->wh, wrc);
        goto done;
    }
    for (i = 0; i < PyList_GET_SIZE(parents); i++) {
        PyObject *t = PyList_GET_ITEM(parents, i); /* borrowed */
        if (!PyTuple_Check(t) || PyTuple_GET_SIZE(t) != ncols)
            continue;
        for (j = 0; j < ncols; j++)
            if (pt_pq_to_value(PyTuple_GET_ITEM(t, j), &vals[j], keep) != 0)
                goto done;
        PQ_WITHOUT_GIL(wrc = pt_wh_stmt_run(stmt, vals, (size_t)ncols));
        if (wrc != 0) {
            pt_pq_raise_wh(h->wh, wrc);
            goto done;
        }
    }
    rc = 0;
done:
    if (stmt != NULL) /* PostgreSQL: DEALLOCATE on the server */
        PQ_WITHOUT_GIL(pt_wh_stmt_free(stmt));
    pt_buf_free(&sql);
    return rc;
}

/* The value of column cols[i] in row (a dict), borrowed from it: looked up by colnames[i] (the
 * same name as a str), or on SQLite, where names are case-insensitive, by any spelling. None
 * when the row lacks it. */
static PyObject *
row_value(PyObject *row, PyObject *colnames, char **cols, size_t i, int nocase)
{
    PyObject *val = PyDict_GetItem(row, PyList_GET_ITEM(colnames, (Py_ssize_t)i));
    Py_ssize_t pos = 0;
    PyObject *k, *v; /* borrowed */

    while (val == NULL && nocase && PyDict_Next(row, &pos, &k, &v)) {
        const char *name = PyUnicode_Check(k) ? PyUnicode_AsUTF8(k) : NULL;
        if (name == NULL)
            PyErr_Clear();
        else if (strcasecmp(name, cols[i]) == 0)
            val = v;
    }
    return val != NULL ? val : Py_None;
}

/* Runs stmt (row_statement's, prepared) for each row of rows (plan dicts), binding the values
 * of cols (ncols of them) and opening a transaction whenever none is open (*in_txn), committing
 * it every WRITE_BATCH rows. Returns 0 or -1 with an error set (the open transaction is the
 * caller's to roll back). */
static int
write_rows(pq_handle *h, const char *table, pt_wh_stmt *stmt, PyObject *rows, char **cols,
           size_t ncols, int *in_txn, table_result *res)
{
    int nocase = pt_wh_dialect_of(h->wh) == PT_WH_SQLITE, rc = -1, wrc;
    PyObject *colnames = PyList_New((Py_ssize_t)ncols), *keep = PyList_New(0);
    pt_value *vals = PyMem_Calloc(ncols > 0 ? ncols : 1, sizeof *vals);
    Py_ssize_t r;
    size_t i;

    if (colnames == NULL || keep == NULL || vals == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (i = 0; i < ncols; i++) {
        PyObject *name = PyUnicode_FromString(cols[i]);
        if (name == NULL)
            goto done;
        PyList_SET_ITEM(colnames, (Py_ssize_t)i, name); /* steals */
    }
    for (r = 0; r < PyList_GET_SIZE(rows); r++) {
        /* The row as it is now, copied: the copy (in keep until the row is written) holds the
         * values whose text is bound while the GIL is released. */
        PyObject *row = PyList_GET_ITEM(rows, r); /* borrowed */
        if (!PyDict_Check(row) || (row = PyDict_Copy(row)) == NULL ||
            PyList_Append(keep, row) != 0) {
            if (!PyErr_Occurred())
                PyErr_SetString(pt_pq_error, "write(): malformed plan row");
            Py_XDECREF(row);
            goto done;
        }
        Py_DECREF(row); /* keep holds it */
        if (!*in_txn) {
            if (pt_pq_exec_simple(h, "BEGIN") != 0)
                goto done;
            *in_txn = 1;
            res->batches++;
        }
        for (i = 0; i < ncols; i++)
            if (pt_pq_to_value(row_value(row, colnames, cols, i, nocase), &vals[i], keep) != 0)
                goto done;
        PQ_WITHOUT_GIL(wrc = pt_wh_stmt_run(stmt, vals, ncols));
        if (wrc != 0) {
            char msg[600];
            snprintf(msg, sizeof msg, "%s row %zd: %s", table, r + 1, pt_wh_errmsg(h->wh));
            PyErr_SetString(wrc == PT_EUNAVAIL ? pt_pq_unavailable : pt_pq_sql_error, msg);
            goto done;
        }
        if (PyList_SetSlice(keep, 0, PyList_GET_SIZE(keep), NULL) != 0)
            goto done;
        if ((r + 1) % WRITE_BATCH == 0) {
            *in_txn = 0;
            if (pt_pq_exec_simple(h, "COMMIT") != 0)
                goto done;
        }
    }
    rc = 0;
done:
    PyMem_Free(vals);
    Py_XDECREF(keep);
    Py_XDECREF(colnames);
    return rc;
}

/* Makes schema.table ready for the plan entry's rows: creates it or adds the columns it lacks
 * (existing and nexisting: its columns after), or, for an entry without columns (no rows: only
 * old child rows may need to go), finds whether it exists. *skip is set when there is nothing
 * to do. Returns 0 or -1 with an error set. */
static int
prepare_table(pq_handle *h, const char *schema, const char *table, PyObject *plan, PyObject *keys,
              table_result *res, char ***existing, size_t *nexisting, int *skip)
{
    PyObject *columns = PyDict_GetItemString(plan, "columns"); /* borrowed */
    int exists;

    *skip = 0;
    if (PyList_GET_SIZE(columns) > 0)
        return ensure_table(h, schema, table, columns, keys, res, existing, nexisting);
    if (PyDict_GetItemString(plan, "clear") == NULL) {
        *skip = 1;
        return 0;
    }
    if (pt_pq_handle_settle(h) != 0)
        return -1;
    PQ_WITHOUT_GIL(exists = pt_wh_table_exists(h->wh, schema, table));
    *skip = exists <= 0; /* an error reads as "no table": there are no child rows to clear */
    return 0;
}

/* Writes the rows of one plan entry into schema.table (see prelude.write_plan), WRITE_BATCH rows
 * per transaction, after deleting the old child rows the entry's `clear` names. */
static int
write_table(pq_handle *h, const char *schema, PyObject *plan, table_result *res)
{
    PyObject *tname = PyDict_GetItemString(plan, "table"); /* borrowed */
    PyObject *rows = PyDict_GetItemString(plan, "rows");   /* borrowed */
    PyObject *columns = PyDict_GetItemString(plan, "columns");
    PyObject *clear = PyDict_GetItemString(plan, "clear");
    PyObject *keys = NULL, *keep = NULL;
    const char *table;
    char **existing = NULL;
    size_t nexisting = 0;
    pt_wh_stmt *stmt = NULL;
    pt_buf sql;
    int in_txn = 0, rc = -1, wrc, skip;

    pt_buf_init(&sql, 0);
    if (tname == NULL || rows == NULL || columns == NULL || !PyList_Check(rows) ||
        !PyList_Check(columns)) {
        PyErr_SetString(pt_pq_error, "write(): malformed plan");
        return -1;
    }
    table = pt_pq_ident_arg(tname, "table");
    keys = table != NULL ? key_list(PyDict_GetItemString(plan, "keys")) : NULL;
    keep = PyList_New(0);
    if (keys == NULL || keep == NULL ||
        prepare_table(h, schema, table, plan, keys, res, &existing, &nexisting, &skip) != 0)
        goto done;
    if (skip)
        goto ok;
    if (clear != NULL) {
        if (pt_pq_exec_simple(h, "BEGIN") != 0)
            goto done;
        in_txn = 1;
        res->batches++;
        if (clear_children(h, schema, table, clear, keep) != 0)
            goto done;
    }
    if (PyList_GET_SIZE(rows) > 0) {
        if (existing == NULL && table_columns(h, schema, table, &existing, &nexisting) != 0)
            goto done;
        if (nexisting >= PT_WH_MAX_PARAMS) {
            PyErr_SetString(pt_pq_bad_arg, "table has too many columns");
            goto done;
        }
        if (row_statement(h, schema, table, existing, nexisting, keys, &sql) != 0)
            goto done;
        PQ_WITHOUT_GIL(wrc = pt_wh_prepare(h->wh, pt_buf_cstr(&sql), &stmt));
        if (wrc != 0) {
            pt_pq_raise_wh(h->wh, wrc);
            goto done;
        }
        if (write_rows(h, table, stmt, rows, existing, nexisting, &in_txn, res) != 0)
            goto done;
    }
    if (in_txn) {
        in_txn = 0;
        if (pt_pq_exec_simple(h, "COMMIT") != 0)
            goto done;
    }
ok:
    rc = 0;
done:
    if (stmt != NULL)
        PQ_WITHOUT_GIL(pt_wh_stmt_free(stmt));
    if (in_txn)
        pt_pq_rollback_keeping_error(h);
    free(existing);
    pt_buf_free(&sql);
    Py_XDECREF(keep);
    Py_XDECREF(keys);
    return rc;
}

/* One batch time (ISO 8601 str) and sequence number (int, ms) for every row of a write() call,
 * as new references. Returns 0 or -1 with an error set. */
static int
batch_stamp(PyObject **now, PyObject **seq)
{
    struct timespec ts;
    char stamp[32];
    struct tm tm;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
    *now = PyUnicode_FromString(stamp);
    *seq = PyLong_FromLongLong((long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
    return *now != NULL && *seq != NULL ? 0 : -1;
}

/* write()'s key: pk as given, or when None the key of the table written before (so that
 * writing a row again replaces it instead of failing on the key), or None. New reference or
 * NULL with an error set. */
static PyObject *
write_key(pq_handle *h, const char *schema, const char *table, PyObject *pk)
{
    char name[128];

    if (pk != NULL && pk != Py_None)
        return Py_NewRef(pk);
    if (existing_pk(h, schema, table, name, sizeof name) != 0)
        return NULL;
    return name[0] != '\0' ? PyUnicode_FromString(name) : Py_NewRef(Py_None);
}

/* Writes every entry of plans (the target table first, then its child tables), filling target
 * and appending a {"table", "rows", "created"} dict per child table to children. Returns 0 or
 * -1 with an error set. */
static int
write_plans(pq_handle *h, const char *schema, PyObject *plans, table_result *target,
            PyObject *children)
{
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(plans); i++) {
        PyObject *plan = PyList_GET_ITEM(plans, i); /* borrowed */
        table_result child = {0};
        PyObject *info;
        int rc;
        if (i == 0) {
            if (write_table(h, schema, plan, target) != 0)
                return -1;
            continue;
        }
        child.added = PyList_New(0);
        rc = child.added != NULL ? write_table(h, schema, plan, &child) : -1;
        info = rc == 0 ? Py_BuildValue("{sOsnsO}", "table", PyDict_GetItemString(plan, "table"),
                                       "rows", PyList_GET_SIZE(PyDict_GetItemString(plan, "rows")),
                                       "created", child.created ? Py_True : Py_False)
                       : NULL;
        Py_XDECREF(child.added);
        if (info == NULL || PyList_Append(children, info) != 0) {
            Py_XDECREF(info);
            return -1;
        }
        Py_DECREF(info);
    }
    return 0;
}

/* write(schema_name, table_name, records, object_schema=None, pk=None, db_name=None,
 * transformer_mode='lossless', decimal_separator='.') -> {"schema", "table", "rows", "batches",
 * "table_created", "columns_added", "child_tables"} */
PyObject *
pt_pq_conn_write(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static const pq_argspec specs[] = {
        {"schema_name", "schema"},
        {"table_name", "table"},
        {"records", NULL},
        {"object_schema", NULL},
        {"pk", NULL},
        {"db_name", "db"},
        {"transformer_mode", NULL},
        {"decimal_separator", NULL},
    };
    PyObject *a[8], *plans = NULL, *children = NULL, *out = NULL, *now = NULL, *seq = NULL;
    PyObject *pk = NULL, *first, *cols; /* first, cols: borrowed */
    const char *schema, *table;
    pq_handle *h = NULL;
    table_result target = {0};
    Py_ssize_t nrows;

    if (pt_pq_bind_args("write", args, kwargs, specs, 8, a, NULL, NULL) != 0 ||
        pt_pq_require_args("write", specs, a, 3) != 0)
        return NULL;
    schema = pt_pq_ident_arg(a[0], "schema");
    table = schema != NULL ? pt_pq_ident_arg(a[1], "table") : NULL;
    if (table == NULL)
        return NULL;
    if (a[6] != NULL && a[6] != Py_None && !PyUnicode_Check(a[6])) {
        PyErr_SetString(pt_pq_bad_arg, "transformer_mode must be a str");
        return NULL;
    }
    if (a[7] != NULL && a[7] != Py_None && !PyUnicode_Check(a[7])) {
        PyErr_SetString(pt_pq_bad_arg, "decimal_separator must be a str");
        return NULL;
    }
    if (batch_stamp(&now, &seq) != 0 || (h = pt_pq_conn_handle((pq_conn *)self, a[5])) == NULL ||
        (pk = write_key(h, schema, table, a[4])) == NULL)
        goto done;
    plans = PyObject_CallFunction(pt_pyg.write_plan, "OOOOOO", a[1], a[2], pk,
                                  a[3] != NULL ? a[3] : Py_None, now, seq);
    if (plans == NULL || !PyList_Check(plans) || PyList_GET_SIZE(plans) == 0) {
        if (plans != NULL)
            PyErr_SetString(pt_pq_error, "write(): malformed plan");
        goto done;
    }
    first = PyList_GET_ITEM(plans, 0);
    nrows = PyList_GET_SIZE(PyDict_GetItemString(first, "rows"));
    cols = PyDict_GetItemString(first, "columns");
    if (nrows == 0 && cols != NULL && PyList_GET_SIZE(cols) == 0) {
        /* Nothing to write: the table is made only when there are columns to make it from. */
        out = Py_BuildValue("{sssssnsisOs[]s[]}", "schema", schema, "table", table, "rows",
                            (Py_ssize_t)0, "batches", 0, "table_created", Py_False, "columns_added",
                            "child_tables");
        goto done;
    }
    children = PyList_New(0);
    target.added = PyList_New(0);
    if (children == NULL || target.added == NULL ||
        write_plans(h, schema, plans, &target, children) != 0)
        goto done;
    out = Py_BuildValue("{sssssnsLsOsOsO}", "schema", schema, "table", table, "rows", nrows,
                        "batches", target.batches, "table_created",
                        target.created ? Py_True : Py_False, "columns_added", target.added,
                        "child_tables", children);
done:
    Py_XDECREF(target.added);
    Py_XDECREF(children);
    Py_XDECREF(pk);
    Py_XDECREF(plans);
    Py_XDECREF(now);
    Py_XDECREF(seq);
    Py_XDECREF(h);
    return out;
}
