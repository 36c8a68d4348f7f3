/* wh.c - the warehouse front end: opening a connection by name and dispatch to its driver
 * (CSV / JSON import is in wh_import.c). */
#include "warehouse/wh.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "core/err.h"
#include "store/store.h"
#include "store/store_events.h"
#include "warehouse/wh_int.h"

/* ---- the front end ------------------------------------------------------------------------ */

void
pt_wh_set_error(pt_wh *wh, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(wh->err, sizeof wh->err, fmt, ap);
    va_end(ap);
}

int
pt_wh_ident_valid(const char *s)
{
    size_t i;

    if (s == NULL || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
        return 0;
    for (i = 1; s[i] != '\0'; i++) {
        unsigned char c = (unsigned char)s[i];
        if (i >= 63 || !(isalnum(c) || c == '_' || c == '$'))
            return 0;
    }
    return 1;
}

/* Opens the embedded SQLite warehouse DATA/warehouse/dw under the connection name `name`. */
static int
open_embedded(const char *datadir, const char *name, pt_wh **out, char *err, size_t errsz)
{
    char dir[4096];

    if (snprintf(dir, sizeof dir, "%s/warehouse", datadir) >= (int)sizeof dir - 3) {
        snprintf(err, errsz, "data dir path too long");
        return PT_EINVAL;
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errsz, "cannot create %s: %s", dir, strerror(errno));
        return PT_EUNAVAIL;
    }
    strncat(dir, "/dw", sizeof dir - strlen(dir) - 1);
    return pt_wh_sqlite_open(name, dir, out, err, errsz);
}

int
pt_wh_open(const char *datadir, const char *name, pt_wh **out, char *err, size_t errsz)
{
    pt_connection conn = {0};
    pt_store *st = NULL;
    struct stat sb;
    int rc;

    *out = NULL;
    if (!pt_store_name_valid(name)) {
        snprintf(err, errsz, "unknown connection '%s'", name != NULL ? name : "");
        return PT_ENOTFOUND;
    }
    if (stat(datadir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        snprintf(err, errsz, "no data dir at %s", datadir);
        return PT_EUNAVAIL;
    }
    /* The default warehouse is the embedded one unless `init --warehouse` stored a row for it,
     * which needs a store; a directory without one (unit tests, a bare warehouse) has the
     * embedded one. pq caches the connection it opens, so the store is read once per worker. */
    if (strcmp(name, PT_WH_DEFAULT) == 0 && !pt_store_exists(datadir))
        return open_embedded(datadir, PT_WH_DEFAULT, out, err, errsz);

    rc = pt_store_open(datadir, &st, err, errsz);
    if (rc != 0) {
        rc = PT_EUNAVAIL;
        goto done;
    }
    rc = pt_store_connection_get(st, name, &conn);
    if (rc == PT_ENOTFOUND) {
        snprintf(err, errsz, "unknown connection '%s'", name);
        goto done;
    }
    if (rc != 0) {
        snprintf(err, errsz, "%s", pt_store_errmsg(st));
        goto done;
    }
    if (strcmp(name, PT_WH_DEFAULT) == 0 && strcmp(conn.kind, "sqlite") == 0) {
        rc = open_embedded(datadir, PT_WH_DEFAULT, out, err, errsz);
    } else if (strcmp(conn.kind, "sqlite") == 0) {
        rc = pt_wh_sqlite_open(name, conn.dsn, out, err, errsz);
    } else if (strcmp(conn.kind, "postgres") == 0) {
        rc = pt_wh_pg_open(name, conn.dsn, out, err, errsz);
    } else {
        snprintf(err, errsz, "connection '%s' is %s, which this build cannot open yet", name,
                 conn.kind);
        rc = PT_EUNAVAIL;
    }
done:
    pt_connection_clear(&conn);
    pt_store_close(st);
    return rc;
}

int
pt_wh_open_embedded(const char *datadir, pt_wh **out, char *err, size_t errsz)
{
    struct stat sb;

    *out = NULL;
    if (stat(datadir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        snprintf(err, errsz, "no data dir at %s", datadir);
        return PT_EUNAVAIL;
    }
    return open_embedded(datadir, PT_WH_EMBEDDED, out, err, errsz);
}

int
pt_wh_open_events(const char *datadir, pt_wh **out, char *schema, size_t schemasz, char *err,
                  size_t errsz)
{
    pt_wh_cursor *cur = NULL;
    pt_value v;
    char *dsn = NULL;
    int rc;

    *out = NULL;
    rc = pt_store_dsn_load(datadir, &dsn, err, errsz);
    if (rc != 0)
        return rc;
    if (dsn == NULL) {
        snprintf(schema, schemasz, "webhooks");
        return pt_wh_open_embedded(datadir, out, err, errsz);
    }
    rc = pt_wh_pg_open("store", dsn, out, err, errsz);
    free(dsn);
    if (rc != 0)
        return rc;
    rc = pt_wh_exec(*out, "SELECT current_schema()", NULL, 0, &cur);
    if (rc == 0 && (rc = pt_wh_cursor_next(cur)) == 1) {
        pt_wh_cursor_value(cur, 0, &v);
        char store_schema[128];
        snprintf(store_schema, sizeof store_schema, "%.*s", v.type == PT_V_TEXT ? (int)v.u.s.n : 0,
                 v.type == PT_V_TEXT ? v.u.s.p : "");
        rc = pt_events_schema_of(store_schema, schema, schemasz);
        if (rc != 0)
            snprintf(err, errsz, "the store's schema '%s' makes no schema name for its events",
                     store_schema);
    } else {
        snprintf(err, errsz, "the store's database: %s",
                 rc == 0 ? "no current schema" : pt_wh_errmsg(*out));
        rc = rc == 0 ? PT_EDB : rc;
    }
    pt_wh_cursor_free(cur);
    if (rc != 0) {
        pt_wh_close(*out);
        *out = NULL;
    }
    return rc;
}

void
pt_wh_events_sql(const pt_wh *wh, const char *schema, const char *sql, char *out, size_t outsz)
{
    int pg = strcmp(pt_wh_kind(wh), "postgres") == 0;
    size_t n = 0;

    for (const char *p = sql; *p != '\0' && n + 1 < outsz;) {
        char piece[160];
        size_t len;
        if (strncmp(p, "{events}", 8) == 0) {
            snprintf(piece, sizeof piece, "\"%s\".events", schema);
            p += 8;
        } else if (strncmp(p, "{bytes}", 7) == 0) {
            /* SQLite has no octet_length before 3.43; PostgreSQL has no BLOB type. */
            snprintf(piece, sizeof piece, "%s",
                     pg ? "octet_length(body)" : "length(CAST(body AS BLOB))");
            p += 7;
        } else {
            piece[0] = *p++;
            piece[1] = '\0';
        }
        len = strlen(piece);
        if (n + len >= outsz)
            break;
        memcpy(out + n, piece, len);
        n += len;
    }
    out[n] = '\0';
}

void
pt_wh_close(pt_wh *wh)
{
    if (wh != NULL)
        wh->drv->close(wh);
}

const char *
pt_wh_name(const pt_wh *wh)
{
    return wh->name;
}

const char *
pt_wh_dbname(const pt_wh *wh)
{
    return strcmp(wh->drv->kind, "postgres") == 0 ? pt_wh_pg_dbname(wh) : wh->name;
}

int
pt_wh_open_dsn(const char *name, const char *dsn, pt_wh **out, char *err, size_t errsz)
{
    *out = NULL;
    return pt_wh_pg_open(name, dsn, out, err, errsz);
}

const char *
pt_wh_kind(const pt_wh *wh)
{
    return wh->drv->kind;
}

void
pt_wh_set_deadline(pt_wh *wh, double deadline)
{
    if (wh->drv->set_deadline != NULL)
        wh->drv->set_deadline(wh, deadline);
}

const char *
pt_wh_errmsg(const pt_wh *wh)
{
    return wh->err;
}

int
pt_wh_exec(pt_wh *wh, const char *sql, const pt_value *params, size_t nparams, pt_wh_cursor **out)
{
    *out = NULL;
    wh->err[0] = '\0';
    if (sql == NULL || (params == NULL && nparams > 0)) {
        pt_wh_set_error(wh, "no SQL given");
        return PT_EINVAL;
    }
    return wh->drv->exec(wh, sql, params, nparams, out);
}

int
pt_wh_cursor_next(pt_wh_cursor *c)
{
    return c->wh->drv->next(c);
}

int
pt_wh_cursor_may_block(pt_wh_cursor *c)
{
    return c->wh->drv->may_block(c);
}

int
pt_wh_cursor_next_nowait(pt_wh_cursor *c)
{
    return c->wh->drv->next_nowait != NULL ? c->wh->drv->next_nowait(c) : c->wh->drv->next(c);
}

int
pt_wh_cursor_fd(const pt_wh_cursor *c)
{
    return c->wh->drv->fd != NULL ? c->wh->drv->fd(c) : -1;
}

size_t
pt_wh_cursor_ncols(const pt_wh_cursor *c)
{
    return c->ncols;
}

const char *
pt_wh_cursor_colname(const pt_wh_cursor *c, size_t i)
{
    return i < c->ncols ? c->colnames[i] : NULL;
}

void
pt_wh_cursor_value(const pt_wh_cursor *c, size_t i, pt_value *v)
{
    c->wh->drv->value(c, i, v);
}

pt_vtype
pt_wh_cursor_coltype(const pt_wh_cursor *c, size_t i)
{
    return i < c->ncols && c->coltypes != NULL ? c->coltypes[i] : PT_V_NULL;
}

int64_t
pt_wh_cursor_changes(const pt_wh_cursor *c)
{
    return c->changes;
}

int64_t
pt_wh_cursor_last_id(const pt_wh_cursor *c)
{
    return c->last_id;
}

void
pt_wh_cursor_free(pt_wh_cursor *c)
{
    if (c != NULL)
        c->wh->drv->cursor_free(c);
}

int
pt_wh_check_ident(pt_wh *wh, const char *what, const char *s)
{
    if (pt_wh_ident_valid(s))
        return 0;
    pt_wh_set_error(wh,
                    "invalid %s name '%s' (letters, digits, '_' and '$', not starting with a "
                    "digit, at most 63)",
                    what, s != NULL ? s : "");
    return PT_EINVAL;
}

int
pt_wh_create_schema(pt_wh *wh, const char *schema)
{
    int rc = pt_wh_check_ident(wh, "schema", schema);

    return rc != 0 ? rc : wh->drv->create_schema(wh, schema);
}

int
pt_wh_schema_exists(pt_wh *wh, const char *schema)
{
    int rc = pt_wh_check_ident(wh, "schema", schema);

    return rc != 0 ? rc : wh->drv->schema_exists(wh, schema);
}

int
pt_wh_table_exists(pt_wh *wh, const char *schema, const char *table)
{
    int rc = pt_wh_check_ident(wh, "schema", schema);

    if (rc == 0)
        rc = pt_wh_check_ident(wh, "table", table);
    return rc != 0 ? rc : wh->drv->table_exists(wh, schema, table);
}

int
pt_wh_primary_key(pt_wh *wh, const char *schema, const char *table, char *out, size_t outsz)
{
    int rc = pt_wh_check_ident(wh, "schema", schema);

    out[0] = '\0';
    if (rc == 0)
        rc = pt_wh_check_ident(wh, "table", table);
    return rc != 0 ? rc : wh->drv->primary_key(wh, schema, table, out, outsz);
}

int
pt_wh_columns(pt_wh *wh, const char *schema, const char *table, char ***names, size_t *n)
{
    int rc = pt_wh_check_ident(wh, "schema", schema);

    *names = NULL;
    *n = 0;
    if (rc == 0)
        rc = pt_wh_check_ident(wh, "table", table);
    return rc != 0 ? rc : wh->drv->columns(wh, schema, table, names, n);
}

const char *
pt_wh_sql_type(const pt_wh *wh, const char *portable)
{
    size_t i;

    for (i = 0; wh->drv->types[i][0] != NULL; i++)
        if (strcasecmp(wh->drv->types[i][0], portable) == 0)
            return wh->drv->types[i][1];
    return NULL;
}

int
pt_wh_in_transaction(pt_wh *wh)
{
    return wh->drv->in_transaction(wh);
}

size_t
pt_wh_iso_datetime(const char *in, size_t n, char *out)
{
    size_t o, i, tstart = 0, sign = 0;
    int is_date = n >= 10 && isdigit((unsigned char)in[0]) && in[4] == '-' && in[7] == '-';
    int is_time = n >= 5 && isdigit((unsigned char)in[0]) && in[2] == ':';

    if (n + 4 >= PT_WH_ISO_MAX || (!is_date && !is_time)) {
        o = n < PT_WH_ISO_MAX - 1 ? n : PT_WH_ISO_MAX - 1;
        memcpy(out, in, o);
        out[o] = '\0';
        return o;
    }
    memcpy(out, in, n);
    o = n;
    if (is_date && n > 10 && (in[10] == ' ' || in[10] == 'T')) {
        out[10] = 'T';
        tstart = 11;
    } else if (is_date) {
        out[o] = '\0';
        return o; /* a date alone, or something else after it ("BC") */
    }
    /* A UTC offset after the time: "+02" becomes "+02:00", "+0530" becomes "+05:30". */
    for (i = tstart + 5; i < n; i++)
        if (in[i] == '+' || in[i] == '-')
            sign = i;
    if (sign != 0) {
        size_t digits = n - sign - 1;
        for (i = sign + 1; i < n; i++)
            if (!isdigit((unsigned char)in[i]))
                digits = 0;
        if (digits == 2) {
            memcpy(out + o, ":00", 3);
            o += 3;
        } else if (digits == 4) {
            out[sign + 3] = ':';
            memcpy(out + sign + 4, in + sign + 3, 2);
            o = sign + 6;
        }
    }
    out[o] = '\0';
    return o;
}

char **
pt_wh_names_dup(const char *const *src, size_t n)
{
    size_t total = 0, i;
    char **names, *p;

    for (i = 0; i < n; i++)
        total += strlen(src[i]) + 1;
    names = malloc(n * sizeof(char *) + total + 1);
    if (names == NULL)
        return NULL;
    p = (char *)(names + n);
    for (i = 0; i < n; i++) {
        size_t len = strlen(src[i]);
        memcpy(p, src[i], len + 1);
        names[i] = p;
        p += len + 1;
    }
    return names;
}

int
pt_wh_prepare(pt_wh *wh, const char *sql, pt_wh_stmt **out)
{
    *out = NULL;
    wh->err[0] = '\0';
    return wh->drv->prepare(wh, sql, out);
}

int
pt_wh_stmt_run(pt_wh_stmt *s, const pt_value *params, size_t nparams)
{
    return s->wh->drv->stmt_run(s, params, nparams);
}

void
pt_wh_stmt_free(pt_wh_stmt *s)
{
    if (s != NULL)
        s->wh->drv->stmt_free(s);
}
