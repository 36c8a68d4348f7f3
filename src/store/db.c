/* db.c - the SQL driver's common half: fragment expansion and dispatch to the driver. */
#include "store/db.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "store/db_int.h"

void
pt_db_seterr(pt_db *db, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(db->err, sizeof db->err, fmt, ap);
    va_end(ap);
}

/* The driver's text for fragment name[0..n), or NULL when it has none. */
static const char *
fragment(const pt_db *db, const char *name, size_t n)
{
    for (const char *const(*f)[2] = db->drv->fragments; (*f)[0] != NULL; f++)
        if (strlen((*f)[0]) == n && memcmp((*f)[0], name, n) == 0)
            return (*f)[1];
    return NULL;
}

/* Replaces every {name} of sql that the driver knows with its text. Returns 0 with *out NULL
 * when sql names none (use sql as it is), or with *out a new string (caller frees). Braces that
 * name no fragment are kept as they are. */
static int
expand(pt_db *db, const char *sql, char **out)
{
    size_t len = 0, cap;
    const char *p;
    char *buf;

    *out = NULL;
    if (strchr(sql, '{') == NULL)
        return 0;
    cap = strlen(sql) + 1;
    for (p = strchr(sql, '{'); p != NULL; p = strchr(p + 1, '{')) {
        const char *end = strchr(p, '}');
        const char *text = end != NULL ? fragment(db, p + 1, (size_t)(end - p - 1)) : NULL;
        if (text != NULL)
            cap += strlen(text);
    }
    buf = malloc(cap);
    if (buf == NULL) {
        pt_db_seterr(db, "out of memory");
        return PT_ENOMEM;
    }
    for (p = sql; *p != '\0';) {
        const char *end = *p == '{' ? strchr(p, '}') : NULL;
        const char *text = end != NULL ? fragment(db, p + 1, (size_t)(end - p - 1)) : NULL;
        if (text != NULL) {
            memcpy(buf + len, text, strlen(text));
            len += strlen(text);
            p = end + 1;
        } else {
            buf[len++] = *p++;
        }
    }
    buf[len] = '\0';
    *out = buf;
    return 0;
}

void
pt_db_close(pt_db *db)
{
    if (db != NULL)
        db->drv->close(db);
}

const char *
pt_db_engine(const pt_db *db)
{
    return db->drv->engine;
}

const char *
pt_db_errmsg(const pt_db *db)
{
    return db->err;
}

int
pt_db_exec(pt_db *db, const char *sql)
{
    char *x = NULL;
    int rc = expand(db, sql, &x);

    if (rc == 0)
        rc = db->drv->exec(db, x != NULL ? x : sql);
    free(x);
    return rc;
}

static int
prepare(pt_db *db, const char *sql, int persistent, pt_db_stmt **out)
{
    char *x = NULL;
    int rc;

    *out = NULL;
    rc = expand(db, sql, &x);
    if (rc == 0)
        rc = db->drv->prepare(db, x != NULL ? x : sql, persistent, out);
    free(x);
    return rc;
}

int
pt_db_prepare(pt_db *db, const char *sql, pt_db_stmt **out)
{
    return prepare(db, sql, 0, out);
}

int
pt_db_prepare_persistent(pt_db *db, const char *sql, pt_db_stmt **out)
{
    return prepare(db, sql, 1, out);
}

void
pt_db_finalize(pt_db_stmt *s)
{
    if (s != NULL)
        s->db->drv->finalize(s);
}

void
pt_db_reset(pt_db_stmt *s)
{
    s->db->drv->reset(s);
}

int
pt_db_bind_text(pt_db_stmt *s, int i, const char *text, size_t len)
{
    return s->db->drv->bind_text(s, i, text, len == (size_t)-1 ? strlen(text) : len);
}

int
pt_db_bind_blob(pt_db_stmt *s, int i, const void *p, size_t len)
{
    return s->db->drv->bind_blob(s, i, p, len);
}

int
pt_db_bind_int64(pt_db_stmt *s, int i, int64_t v)
{
    return s->db->drv->bind_int64(s, i, v);
}

int
pt_db_bind_null(pt_db_stmt *s, int i)
{
    return s->db->drv->bind_null(s, i);
}

int
pt_db_param_count(pt_db_stmt *s)
{
    return s->db->drv->param_count(s);
}

int
pt_db_bind_opt_text(pt_db_stmt *s, int i, const char *text)
{
    if (text != NULL && text[0] != '\0')
        return pt_db_bind_text(s, i, text, (size_t)-1);
    return pt_db_bind_null(s, i);
}

int
pt_db_bind_opt_int64(pt_db_stmt *s, int i, int64_t v)
{
    return v != 0 ? pt_db_bind_int64(s, i, v) : pt_db_bind_null(s, i);
}

int
pt_db_step(pt_db_stmt *s)
{
    return s->db->drv->step(s);
}

int
pt_db_run(pt_db_stmt *s)
{
    int rc;

    while ((rc = pt_db_step(s)) == PT_DB_ROW)
        ;
    return rc;
}

int
pt_db_column_is_null(pt_db_stmt *s, int i)
{
    return s->db->drv->column_is_null(s, i);
}

int64_t
pt_db_column_int64(pt_db_stmt *s, int i)
{
    return s->db->drv->column_int64(s, i);
}

const char *
pt_db_column_text(pt_db_stmt *s, int i, size_t *len)
{
    return s->db->drv->column_text(s, i, len);
}

const void *
pt_db_column_blob(pt_db_stmt *s, int i, size_t *len)
{
    return s->db->drv->column_blob(s, i, len);
}

int64_t
pt_db_changes(pt_db *db)
{
    return db->drv->changes(db);
}

int
pt_db_begin(pt_db *db)
{
    return db->drv->begin(db);
}

int
pt_db_commit(pt_db *db)
{
    return db->drv->commit(db);
}

void
pt_db_rollback(pt_db *db)
{
    db->drv->rollback(db);
}

int
pt_db_in_transaction(pt_db *db)
{
    return db->drv->in_transaction(db);
}

int
pt_db_defer_constraints(pt_db *db)
{
    return db->drv->defer_constraints(db);
}

void
pt_db_set_busy_timeout(pt_db *db, int ms)
{
    db->drv->set_busy_timeout(db, ms);
}

int
pt_db_set_durable(pt_db *db, int durable)
{
    return db->drv->set_durable(db, durable);
}

int
pt_db_schema_version(pt_db *db, int64_t *version)
{
    return db->drv->schema_version(db, version);
}

int
pt_db_set_schema_version(pt_db *db, int64_t version)
{
    return db->drv->set_schema_version(db, version);
}
