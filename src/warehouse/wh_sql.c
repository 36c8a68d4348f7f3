/* wh_sql.c - builds the warehouse's data statements for SQLite and PostgreSQL (wh_sql.h). */
#include "warehouse/wh_sql.h"

#include <string.h>

#include "core/err.h"
#include "warehouse/wh_int.h"

pt_wh_dialect
pt_wh_dialect_of(const pt_wh *wh)
{
    return strcmp(wh->drv->kind, "postgres") == 0 ? PT_WH_POSTGRES : PT_WH_SQLITE;
}

/* A statement being written: once rc is set, every later step does nothing, so that a builder
 * checks once at its end (pt_buf_append leaves the buffer unchanged on failure, and a shorter
 * append after a failed one would otherwise leave a statement with a hole in it). */
typedef struct sqlw {
    pt_buf *b;
    int rc;
} sqlw;

static void
put(sqlw *w, const char *s)
{
    if (w->rc == 0)
        w->rc = pt_buf_puts(w->b, s);
}

static void
put_quoted(sqlw *w, const char *text, char q)
{
    if (w->rc != 0)
        return;
    w->rc = pt_buf_putc(w->b, q);
    for (; w->rc == 0 && *text != '\0'; text++) {
        if (*text == q)
            w->rc = pt_buf_putc(w->b, q);
        if (w->rc == 0)
            w->rc = pt_buf_putc(w->b, *text);
    }
    if (w->rc == 0)
        w->rc = pt_buf_putc(w->b, q);
}

/* A name a statement refers to: any non-empty text. */
static void
name(sqlw *w, const char *s)
{
    if (w->rc == 0 && (s == NULL || s[0] == '\0'))
        w->rc = PT_EINVAL;
    put_quoted(w, s, '"');
}

/* A name a statement creates, or its schema or table: an identifier. */
static void
ident(sqlw *w, const char *s)
{
    if (w->rc == 0 && (s == NULL || !pt_wh_ident_valid(s)))
        w->rc = PT_EINVAL;
    put_quoted(w, s, '"');
}

static void
table_name(sqlw *w, const char *schema, const char *table)
{
    ident(w, schema);
    put(w, ".");
    ident(w, table);
}

/* A column type: letters, digits, '_', ' ', '(', ')' and ','; not empty. */
static void
type_name(sqlw *w, const char *t)
{
    if (w->rc == 0 && (t == NULL || t[0] == '\0' ||
                       strspn(t, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                 "0123456789_ (),") != strlen(t)))
        w->rc = PT_EINVAL;
    put(w, t);
}

/* "c1", "c2", ... (with suffix after each, e.g. " = ?"), separated by sep. */
static void
name_list(sqlw *w, const char *const *cols, size_t n, const char *sep, const char *suffix)
{
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            put(w, sep);
        name(w, cols[i]);
        put(w, suffix);
    }
}

/* " WHERE "k1" = ? AND ...": one bound value per key. */
static void
where_keys(sqlw *w, const char *const *keys, size_t n)
{
    put(w, " WHERE ");
    name_list(w, keys, n, " AND ", " = ?");
}

static void
placeholders(sqlw *w, size_t n)
{
    for (size_t i = 0; i < n; i++)
        put(w, i > 0 ? ", ?" : "?");
}

static int
is_in(const char *s, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], s) == 0)
            return 1;
    return 0;
}

/* Starts a statement in out (emptied); refuses n == 0 columns when need_cols. */
static sqlw
start(pt_buf *out, size_t n, int need_cols)
{
    sqlw w = {out, 0};

    pt_buf_reset(out);
    if (need_cols && n == 0)
        w.rc = PT_EINVAL;
    return w;
}

/* Ends a statement: its result (out holds a C string when it is 0, since something was
 * written). */
static int
finish(const sqlw *w)
{
    return w->rc;
}

int
pt_wh_sql_quote(pt_buf *out, const char *s)
{
    sqlw w = {out, 0};

    name(&w, s);
    return w.rc;
}

int
pt_wh_sql_literal(pt_buf *out, const char *text)
{
    sqlw w = {out, 0};

    put_quoted(&w, text, '\'');
    return w.rc;
}

int
pt_wh_sql_create_table(pt_buf *out, const char *schema, const char *table, const pt_wh_coldef *cols,
                       size_t ncols, const char *const *keys, size_t nkeys)
{
    sqlw w = start(out, ncols, 1);
    size_t i;

    put(&w, "CREATE TABLE IF NOT EXISTS ");
    table_name(&w, schema, table);
    put(&w, " (");
    for (i = 0; i < ncols; i++) {
        if (i > 0)
            put(&w, ", ");
        ident(&w, cols[i].name);
        put(&w, " ");
        type_name(&w, cols[i].type);
    }
    if (nkeys > 0) {
        put(&w, ", PRIMARY KEY (");
        name_list(&w, keys, nkeys, ", ", "");
        put(&w, ")");
    }
    put(&w, ")");
    return finish(&w);
}

int
pt_wh_sql_add_column(pt_buf *out, const char *schema, const char *table, const pt_wh_coldef *col)
{
    sqlw w = start(out, 1, 0);

    put(&w, "ALTER TABLE ");
    table_name(&w, schema, table);
    put(&w, " ADD COLUMN ");
    ident(&w, col->name);
    put(&w, " ");
    type_name(&w, col->type);
    return finish(&w);
}

int
pt_wh_sql_insert(pt_buf *out, const char *schema, const char *table, const char *const *cols,
                 size_t ncols, const char *returning)
{
    sqlw w = start(out, ncols, 1);

    put(&w, "INSERT INTO ");
    table_name(&w, schema, table);
    put(&w, " (");
    name_list(&w, cols, ncols, ", ", "");
    put(&w, ") VALUES (");
    placeholders(&w, ncols);
    put(&w, ")");
    if (returning != NULL) {
        put(&w, " RETURNING ");
        name(&w, returning);
    }
    return finish(&w);
}

int
pt_wh_sql_update(pt_buf *out, const char *schema, const char *table, const char *const *cols,
                 size_t ncols, const char *key)
{
    sqlw w = start(out, ncols, 1);

    put(&w, "UPDATE ");
    table_name(&w, schema, table);
    put(&w, " SET ");
    name_list(&w, cols, ncols, ", ", " = ?");
    where_keys(&w, &key, 1);
    return finish(&w);
}

int
pt_wh_sql_delete(pt_buf *out, const char *schema, const char *table, const char *const *keys,
                 size_t nkeys)
{
    sqlw w = start(out, nkeys, 1);

    put(&w, "DELETE FROM ");
    table_name(&w, schema, table);
    where_keys(&w, keys, nkeys);
    return finish(&w);
}

int
pt_wh_sql_select_key(pt_buf *out, const char *schema, const char *table, const char *key)
{
    sqlw w = start(out, 1, 0);

    put(&w, "SELECT 1 FROM ");
    table_name(&w, schema, table);
    where_keys(&w, &key, 1);
    return finish(&w);
}

int
pt_wh_sql_select_all(pt_buf *out, const char *schema, const char *table)
{
    sqlw w = start(out, 1, 0);

    put(&w, "SELECT * FROM ");
    if (schema != NULL) {
        ident(&w, schema);
        put(&w, ".");
    }
    ident(&w, table);
    return finish(&w);
}

int
pt_wh_sql_lock_table(pt_buf *out, const char *schema, const char *table)
{
    sqlw w = start(out, 1, 0);

    put(&w, "DELETE FROM ");
    table_name(&w, schema, table);
    put(&w, " WHERE 0");
    return finish(&w);
}

/* The change check: " WHERE NOT (pq_t."c" IS NOT DISTINCT FROM excluded."c" AND ...)" over the
 * non-key columns not ignored; nothing when there are none. */
static void
changed_condition(sqlw *w, pt_wh_dialect d, const char *const *cols, size_t ncols,
                  const pt_wh_upsert *how)
{
    const char *cast = d == PT_WH_POSTGRES ? "::text" : "";
    size_t i, any = 0, plen = how->ignore_prefix != NULL ? strlen(how->ignore_prefix) : 0;

    for (i = 0; i < ncols; i++) {
        if (is_in(cols[i], how->keys, how->nkeys) ||
            (plen > 0 && strncmp(cols[i], how->ignore_prefix, plen) == 0))
            continue;
        put(w, any++ == 0 ? " WHERE NOT (" : " AND ");
        put(w, "pq_t.");
        name(w, cols[i]);
        put(w, cast);
        put(w, " IS NOT DISTINCT FROM excluded.");
        name(w, cols[i]);
        put(w, cast);
    }
    if (any > 0)
        put(w, ")");
}

int
pt_wh_sql_upsert(pt_buf *out, pt_wh_dialect d, const char *schema, const char *table,
                 const char *const *cols, size_t ncols, const pt_wh_upsert *how)
{
    sqlw w = start(out, ncols, 1);
    size_t i, nset = 0;

    if (how->report && d != PT_WH_POSTGRES)
        w.rc = PT_EINVAL;
    put(&w, "INSERT INTO ");
    table_name(&w, schema, table);
    put(&w, " AS pq_t (");
    name_list(&w, cols, ncols, ", ", "");
    put(&w, ") VALUES (");
    placeholders(&w, ncols);
    put(&w, ")");
    if (how->nkeys > 0) {
        put(&w, " ON CONFLICT (");
        name_list(&w, how->keys, how->nkeys, ", ", "");
        put(&w, ") DO ");
        for (i = 0; i < ncols; i++) {
            if (is_in(cols[i], how->keys, how->nkeys))
                continue;
            put(&w, nset++ > 0 ? ", " : "UPDATE SET ");
            name(&w, cols[i]);
            put(&w, " = excluded.");
            name(&w, cols[i]);
        }
        if (nset == 0)
            put(&w, "NOTHING");
        else
            changed_condition(&w, d, cols, ncols, how);
    }
    if (how->report)
        put(&w, " RETURNING (xmax = 0) AS inserted");
    return finish(&w);
}

int
pt_wh_sql_drop_table(pt_buf *out, pt_wh_dialect d, const char *schema, const char *table,
                     int is_view, int cascade)
{
    sqlw w = start(out, 1, 0);

    put(&w, is_view ? "DROP VIEW " : "DROP TABLE ");
    name(&w, schema);
    put(&w, ".");
    name(&w, table);
    if (cascade && d == PT_WH_POSTGRES)
        put(&w, " CASCADE");
    return finish(&w);
}
