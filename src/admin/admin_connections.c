/* admin_connections.c - /connections: warehouse connections (add with a connection check, list
 * without passwords, rm) and browsing them: schemas, tables, columns, first rows, and one
 * read-only SELECT with a row cap and a timeout. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "admin/admin.h"
#include "core/buf.h"
#include "core/err.h"
#include "warehouse/rows.h"
#include "warehouse/wh.h"

#define ROWS_DEFAULT 100
#define ROWS_MAX 1000
#define QUERY_TIMEOUT_DEFAULT 10 /* seconds */
#define QUERY_TIMEOUT_MAX 300
#define QUERY_MAX (64u << 10) /* bytes of SQL */

/* A connection's location for display: SQLite's directory, or a DSN without its password. */
static json_t *
connection_json(const void *item)
{
    const pt_connection *cn = item;
    char shown[1024];
    if (strcmp(cn->kind, "postgres") == 0)
        pt_wh_dsn_redact(cn->dsn, shown, sizeof shown);
    else
        snprintf(shown, sizeof shown, "%s", cn->dsn);
    return json_pack("{s:s, s:s, s:s}", "name", cn->name, "kind", cn->kind, "location", shown);
}

static int
list(pt_admin_call *c, pt_admin_reply *r)
{
    pt_connection *conns = NULL;
    size_t n = 0;
    int rc = pt_store_connection_list(c->store, &conns, &n);
    rc = pt_admin_list_reply(c, r, rc, "connections", conns, n, sizeof *conns, connection_json);
    pt_store_connections_free(conns, n);
    return rc;
}

/* POST /connections {name, kind: "postgres", dsn} or {name, kind: "sqlite", dir?}: a PostgreSQL
 * database is checked (it must answer) before anything is stored; SQLite's directory defaults
 * to DATA/warehouse/NAME (created), and a directory given must exist. */
static int
add(pt_admin_call *c, pt_admin_reply *r)
{
    const char *name, *kind, *dsn = NULL, *dir = NULL;
    char err[512], path[PATH_MAX], rel[128];
    pt_connection cn = {0}, old = {0};
    struct stat sb;
    int rc;

    if ((name = pt_admin_body_str(c, r, "name", 1)) == NULL ||
        (kind = pt_admin_body_str(c, r, "kind", 1)) == NULL)
        return -r->status;
    dsn = pt_admin_body_str(c, r, "dsn", 0);
    if (r->status == 0)
        dir = pt_admin_body_str(c, r, "dir", 0);
    if (r->status != 0)
        return -r->status;
    if (!pt_store_name_valid(name))
        return pt_admin_fail(r, 400, "bad_request", "name",
                             "invalid connection name (letters, digits, _ . -; at most 64)");
    if (strcmp(name, "dw") == 0)
        return pt_admin_fail(r, 409, "conflict", "name",
                             "connection 'dw' is the built-in warehouse; choose another name");
    if (strcmp(kind, "postgres") != 0 && strcmp(kind, "sqlite") != 0)
        return pt_admin_fail(r, 400, "bad_request", "kind", "kind is postgres or sqlite");
    if (strcmp(kind, "postgres") == 0 && (dsn == NULL || dsn[0] == '\0'))
        return pt_admin_fail(r, 400, "bad_request", "dsn",
                             "a postgres connection needs its dsn (libpq connection string)");
    if (strcmp(kind, "postgres") == 0 && dir != NULL)
        return pt_admin_fail(r, 400, "bad_request", "dir", "dir is for sqlite connections");
    if (strcmp(kind, "sqlite") == 0 && dsn != NULL)
        return pt_admin_fail(r, 400, "bad_request", "dsn", "dsn is for postgres connections");
    if ((rc = pt_store_connection_get(c->store, name, &old)) == 0) {
        rc = pt_admin_fail(r, 409, "conflict", "name", "connection '%s' already exists (%s)", name,
                           old.kind);
        pt_connection_clear(&old);
        return rc;
    }
    if (rc != PT_ENOTFOUND)
        return pt_admin_fail_store(r, c->store, rc, NULL);
    cn.name = (char *)name;
    cn.kind = (char *)kind;
    if (dsn != NULL) {
        /* Checked now, so that a typo shows here rather than as a 503 at request time; the
         * reason never holds the password. */
        if ((rc = pt_wh_pg_check(dsn, err, sizeof err)) != 0)
            return pt_admin_fail(r, 400, "bad_request", "dsn", "%s", err);
        cn.dsn = (char *)dsn;
    } else if (dir != NULL) {
        if (dir[0] != '/' || realpath(dir, path) == NULL || stat(path, &sb) != 0 ||
            !S_ISDIR(sb.st_mode))
            return pt_admin_fail(r, 400, "bad_request", "dir",
                                 "dir must be the absolute path of an existing directory");
        cn.dsn = path;
    } else {
        snprintf(rel, sizeof rel, "warehouse/%s", name);
        snprintf(path, sizeof path, "%s/%s", c->datadir, rel);
        if (mkdir(path, 0700) != 0 && (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode)))
            return pt_admin_fail(r, 503, "unavailable", NULL, "cannot create %s", path);
        cn.dsn = rel;
    }
    if ((rc = pt_store_connection_add(c->store, &cn)) != 0)
        return pt_admin_fail_store(r, c->store, rc, "name");
    if (pt_store_connection_get(c->store, name, &old) == 0) {
        r->body = connection_json(&old);
        pt_connection_clear(&old);
    } else {
        r->body = connection_json(&cn);
    }
    r->status = 201;
    c->audit = json_pack("{s:s, s:s}", "name", name, "kind", kind); /* never the DSN */
    return 0;
}

/* DELETE /connections/{name}: answers {removed, kind, location} (what the data was). */
static int
rm(pt_admin_call *c, pt_admin_reply *r)
{
    pt_connection old = {0};
    int rc = pt_store_connection_get(c->store, c->params[0], &old);
    if (rc == 0)
        rc = pt_store_connection_rm(c->store, c->params[0]);
    if (rc == PT_EINVAL)
        rc = pt_admin_fail(r, 409, "conflict", NULL, "%s", pt_store_errmsg(c->store));
    else if (rc != 0)
        rc = pt_admin_fail_store(r, c->store, rc, NULL);
    if (rc != 0) {
        pt_connection_clear(&old);
        return rc;
    }
    r->body = connection_json(&old);
    pt_connection_clear(&old);
    json_object_set_new(r->body, "removed", json_string(c->params[0]));
    c->audit = json_pack("{s:s}", "name", c->params[0]);
    return 0;
}

/* ---- browsing ----------------------------------------------------------------------------- */

/* Opens connection c->params[0]: 0 with *wh, or a refusal in r (404 unknown, 503 down). */
static int
open_conn(pt_admin_call *c, pt_admin_reply *r, pt_wh **wh)
{
    char err[512];
    int rc = pt_wh_open(c->datadir, c->params[0], wh, err, sizeof err);
    if (rc == PT_ENOTFOUND)
        return pt_admin_fail(r, 404, "not_found", NULL, "%s", err);
    if (rc != 0)
        return pt_admin_fail(r, 503, "unavailable", NULL, "%s", err);
    return 0;
}

/* The catalog of the path's connection (schema and table from the path when present). */
static int
catalog(pt_admin_call *c, pt_admin_reply *r, pt_wh_cat_level level, pt_wh **wh, pt_wh_catalog **cat)
{
    const char *schema = c->nparams > 1 ? c->params[1] : NULL;
    const char *table = c->nparams > 2 ? c->params[2] : NULL;
    int rc;
    if ((schema != NULL && !pt_wh_ident_valid(schema)) ||
        (table != NULL && !pt_wh_ident_valid(table)))
        return pt_admin_fail(r, 404, "not_found", NULL, "no such %s", table ? "table" : "schema");
    if ((rc = open_conn(c, r, wh)) != 0)
        return rc;
    if ((rc = pt_wh_catalog_read(*wh, schema, table, level, cat)) != 0)
        return pt_admin_fail(r, rc == PT_EUNAVAIL ? 503 : 500,
                             rc == PT_EUNAVAIL ? "unavailable" : "internal", NULL, "%s",
                             pt_wh_errmsg(*wh));
    if (schema != NULL && (*cat)->nschemas == 0)
        return pt_admin_fail(r, 404, "not_found", NULL, "connection %s has no schema %s",
                             c->params[0], schema);
    if (table != NULL && (*cat)->schemas[0].ntables == 0)
        return pt_admin_fail(r, 404, "not_found", NULL, "schema %s has no table %s", schema, table);
    return 0;
}

/* GET .../schemas, .../schemas/{schema}/tables and .../tables/{table}: the catalog one level
 * below the path's last parameter (schemas of a connection, tables of a schema, columns of a
 * table). */
static int
browse(pt_admin_call *c, pt_admin_reply *r)
{
    static const pt_wh_cat_level levels[] = {PT_WH_CAT_SCHEMAS, PT_WH_CAT_TABLES, PT_WH_CAT_FIELDS};
    pt_wh *wh = NULL;
    pt_wh_catalog *cat = NULL;
    int rc = catalog(c, r, levels[c->nparams - 1], &wh, &cat);
    json_t *arr = rc == 0 ? json_array() : NULL;

    if (rc == 0 && c->nparams == 1) {
        for (size_t i = 0; arr != NULL && i < cat->nschemas; i++)
            json_array_append_new(arr, json_string(cat->schemas[i].name));
        r->body = json_pack("{s:s, s:s, s:o*}", "connection", c->params[0], "database",
                            cat->database != NULL ? cat->database : "", "schemas", arr);
    } else if (rc == 0 && c->nparams == 2) {
        const pt_wh_schema_info *s = &cat->schemas[0];
        for (size_t i = 0; arr != NULL && i < s->ntables; i++)
            json_array_append_new(arr, json_pack("{s:s, s:b}", "name", s->tables[i].name, "view",
                                                 s->tables[i].is_view));
        r->body = json_pack("{s:s, s:o*}", "schema", s->name, "tables", arr);
    } else if (rc == 0) {
        const pt_wh_table_info *t = &cat->schemas[0].tables[0];
        for (size_t i = 0; arr != NULL && i < t->nfields; i++) {
            const pt_wh_field *f = &t->fields[i];
            json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:i, s:b}", "name", f->name,
                                                 "sql_type", f->sql_type, "type", f->type, "pk",
                                                 f->pk, "notnull", f->notnull));
        }
        r->body = json_pack("{s:s, s:s, s:b, s:o*}", "schema", cat->schemas[0].name, "table",
                            t->name, "view", t->is_view, "columns", arr);
    }
    pt_wh_catalog_free(cat);
    pt_wh_close(wh);
    return rc;
}

/* A whole number in [lo, hi] from the body (is_body) or the query, into *out (unchanged when
 * absent); 0, or a refusal in r. */
static int
read_count(pt_admin_call *c, pt_admin_reply *r, const char *name, int is_body, long lo, long hi,
           long *out)
{
    if (is_body) {
        json_t *v = json_object_get(c->body, name);
        if (v == NULL || json_is_null(v))
            return 0;
        if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
            return pt_admin_fail(r, 400, "bad_request", name, "%s is a number from %ld to %ld",
                                 name, lo, hi);
        *out = (long)json_integer_value(v);
        return 0;
    }
    const char *s = pt_admin_query_str(c, name);
    char *end;
    if (s == NULL)
        return 0;
    long v = strtol(s, &end, 10);
    if (s[0] == '\0' || *end != '\0' || v < lo || v > hi)
        return pt_admin_fail(r, 400, "bad_request", name, "%s is a number from %ld to %ld", name,
                             lo, hi);
    *out = v;
    return 0;
}

/* How read_rows gives a cell: as the browser shows it (numeric and JSON columns as their
 * text), as pq gives it to Python, or as one line of display text (`portico db query`). */
enum cell_form { CELL_BROWSE, CELL_PYTHON, CELL_TEXT };

/* Reads at most `cap` rows of cur into {"columns", "rows", "truncated"}, each cell in `form`;
 * gives up with a 504 timeout once `deadline` (CLOCK_MONOTONIC seconds; 0: none) has passed
 * between rows. 0, or a refusal in r. */
static int
read_rows(pt_wh *wh, pt_wh_cursor *cur, long cap, double deadline, enum cell_form form,
          pt_admin_reply *r)
{
    size_t ncols = pt_wh_cursor_ncols(cur);
    json_t *cols = json_array(), *rows = json_array();
    int truncated = 0, timed_out = 0, rc;
    long n = 0;
    pt_buf b;

    pt_buf_init(&b, 0);
    for (size_t i = 0; i < ncols; i++)
        json_array_append_new(cols, json_string(pt_wh_cursor_colname(cur, i)));
    while ((rc = pt_wh_cursor_next(cur)) == 1) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (deadline > 0 && (double)now.tv_sec + now.tv_nsec / 1e9 > deadline) {
            timed_out = 1;
            break;
        }
        if (n == cap) {
            truncated = 1;
            break;
        }
        json_t *row = json_array();
        for (size_t i = 0; row != NULL && i < ncols; i++) {
            pt_value v;
            pt_wh_cursor_value(cur, i, &v);
            b.len = 0;
            json_t *j;
            if (form == CELL_TEXT) {
                pt_rows_text_value(&b, &v);
                j = json_stringn(b.data != NULL ? b.data : "", b.len);
            } else {
                pt_rows_json_value(&b, &v, form == CELL_PYTHON);
                j = json_loadb(b.data, b.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
            }
            json_array_append_new(row, j != NULL ? j : json_null());
        }
        json_array_append_new(rows, row);
        n++;
    }
    pt_buf_free(&b);
    if (rc < 0 || timed_out) {
        json_decref(cols);
        json_decref(rows);
        if (timed_out || strstr(pt_wh_errmsg(wh), "statement timeout") != NULL)
            return pt_admin_fail(r, 504, "timeout", NULL, "the query ran out of time");
        return pt_admin_fail(r, 400, "bad_request", "sql", "%s", pt_wh_errmsg(wh));
    }
    r->body = json_pack("{s:o, s:o, s:I, s:b}", "columns", cols, "rows", rows, "count",
                        (json_int_t)n, "truncated", truncated);
    return 0;
}

/* GET .../tables/{table}/rows?limit=N: the first N rows (at most ROWS_MAX). */
static int
first_rows(pt_admin_call *c, pt_admin_reply *r)
{
    pt_wh *wh = NULL;
    pt_wh_catalog *cat = NULL;
    pt_wh_cursor *cur = NULL;
    long limit = ROWS_DEFAULT;
    char sql[256];
    int rc;

    if ((rc = read_count(c, r, "limit", 0, 1, ROWS_MAX, &limit)) != 0)
        return rc;
    if ((rc = catalog(c, r, PT_WH_CAT_TABLES, &wh, &cat)) != 0)
        goto done;
    /* Both names were checked by pt_wh_ident_valid and found in the catalog. */
    snprintf(sql, sizeof sql, "SELECT * FROM \"%s\".\"%s\" LIMIT %ld", cat->schemas[0].name,
             cat->schemas[0].tables[0].name, limit + 1);
    if ((rc = pt_wh_exec(wh, sql, NULL, 0, &cur)) != 0) {
        rc = pt_admin_fail(r, 500, "internal", NULL, "%s", pt_wh_errmsg(wh));
        goto done;
    }
    rc = read_rows(wh, cur, limit, 0, CELL_BROWSE, r);
done:
    pt_wh_cursor_free(cur);
    pt_wh_catalog_free(cat);
    pt_wh_close(wh);
    return rc;
}

/* Is sql one SELECT or WITH statement (a trailing ';' allowed)? Skips comments and quoted text
 * when looking for a second statement. */
static int
one_select(const char *sql)
{
    const char *p = sql;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
            p++;
        if (p[0] == '-' && p[1] == '-') {
            p += strcspn(p, "\n");
        } else if (p[0] == '/' && p[1] == '*') {
            const char *e = strstr(p + 2, "*/");
            if (e == NULL)
                return 0;
            p = e + 2;
        } else {
            break;
        }
    }
    if (strncasecmp(p, "select", 6) != 0 && strncasecmp(p, "with", 4) != 0)
        return 0;
    for (; *p != '\0'; p++) {
        if (*p == '\'' || *p == '"') {
            const char *e = strchr(p + 1, *p);
            if (e == NULL)
                return 0;
            p = e;
        } else if (p[0] == '-' && p[1] == '-') {
            p += strcspn(p, "\n");
            if (*p == '\0')
                break;
        } else if (p[0] == '/' && p[1] == '*') {
            const char *e = strstr(p + 2, "*/");
            if (e == NULL)
                return 0;
            p = e + 1;
        } else if (*p == ';') {
            for (p++; *p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'; p++)
                ;
            return *p == '\0';
        }
    }
    return 1;
}

/* Runs sql (no rows expected); 0, or a refusal in r. */
static int
run(pt_wh *wh, pt_admin_reply *r, const char *sql)
{
    pt_wh_cursor *cur = NULL;
    int rc = pt_wh_exec(wh, sql, NULL, 0, &cur);
    while (rc == 0 && (rc = pt_wh_cursor_next(cur)) == 1)
        rc = 0;
    pt_wh_cursor_free(cur);
    return rc < 0 ? pt_admin_fail(r, 503, "unavailable", NULL, "%s", pt_wh_errmsg(wh)) : 0;
}

/* POST /connections/{name}/query {sql, limit?, timeout?}: one SELECT/WITH statement in a
 * read-only transaction (PostgreSQL: READ ONLY with statement_timeout; SQLite: query_only),
 * at most `limit` rows back, 504 timeout past `timeout` seconds. */
static int
query(pt_admin_call *c, pt_admin_reply *r)
{
    long limit = ROWS_DEFAULT, timeout = QUERY_TIMEOUT_DEFAULT;
    pt_wh *wh = NULL;
    pt_wh_cursor *cur = NULL;
    char setup[96];
    int rc;

    const char *sql = pt_admin_body_str(c, r, "sql", 1);
    if (sql == NULL)
        return -r->status;
    if ((rc = read_count(c, r, "limit", 1, 1, ROWS_MAX, &limit)) != 0 ||
        (rc = read_count(c, r, "timeout", 1, 1, QUERY_TIMEOUT_MAX, &timeout)) != 0)
        return rc;
    if (strlen(sql) > QUERY_MAX)
        return pt_admin_fail(r, 413, "too_large", "sql", "the query is over %u bytes", QUERY_MAX);
    if (!one_select(sql))
        return pt_admin_fail(r, 400, "bad_request", "sql",
                             "only one SELECT or WITH statement may run here");
    if ((rc = open_conn(c, r, &wh)) != 0)
        return rc;
    int pg = strcmp(pt_wh_kind(wh), "postgres") == 0;
    if (pg) {
        snprintf(setup, sizeof setup, "SET LOCAL statement_timeout = %ld", timeout * 1000);
        if ((rc = run(wh, r, "BEGIN READ ONLY")) != 0 || (rc = run(wh, r, setup)) != 0)
            goto done;
    } else if ((rc = run(wh, r, "PRAGMA query_only = 1")) != 0) {
        goto done;
    }
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    double deadline = (double)t0.tv_sec + t0.tv_nsec / 1e9 + (double)timeout;
    /* SQLite: stopped inside a step too (a recursive CTE may run long before its first row). */
    pt_wh_set_deadline(wh, deadline);
    if (pt_wh_exec(wh, sql, NULL, 0, &cur) != 0) {
        if (strstr(pt_wh_errmsg(wh), "statement timeout") != NULL)
            rc = pt_admin_fail(r, 504, "timeout", NULL, "the query ran out of time");
        else
            rc = pt_admin_fail(r, 400, "bad_request", "sql", "%s", pt_wh_errmsg(wh));
        goto done;
    }
    rc = read_rows(wh, cur, limit, deadline, CELL_BROWSE, r);
done:
    pt_wh_cursor_free(cur);
    if (pg && wh != NULL) {
        pt_wh_cursor *end = NULL;
        if (pt_wh_exec(wh, "ROLLBACK", NULL, 0, &end) == 0)
            pt_wh_cursor_next(end);
        pt_wh_cursor_free(end);
    }
    pt_wh_close(wh);
    return rc;
}

/* POST /connections/{name}/execute {sql, limit?, timeout?, text?}: any one statement, writes
 * too, as `portico db query` runs it (admin only): at most `limit` rows back, 504 timeout past
 * `timeout` seconds (as /query), the cells as pq gives them, or with text: true as the lines of
 * the CLI's table; a statement without columns answers {"changed": N} as well. */
static int
execute(pt_admin_call *c, pt_admin_reply *r)
{
    long limit = ROWS_DEFAULT, timeout = QUERY_TIMEOUT_DEFAULT;
    pt_wh *wh = NULL;
    pt_wh_cursor *cur = NULL;
    char setup[64];
    int rc;

    const char *sql = pt_admin_body_str(c, r, "sql", 1);
    if (sql == NULL)
        return -r->status;
    json_t *text = json_object_get(c->body, "text");
    if (text != NULL && !json_is_boolean(text))
        return pt_admin_fail(r, 400, "bad_request", "text", "text is true or false");
    if ((rc = read_count(c, r, "limit", 1, 1, ROWS_MAX, &limit)) != 0 ||
        (rc = read_count(c, r, "timeout", 1, 1, QUERY_TIMEOUT_MAX, &timeout)) != 0)
        return rc;
    if (strlen(sql) > QUERY_MAX)
        return pt_admin_fail(r, 413, "too_large", "sql", "the query is over %u bytes", QUERY_MAX);
    if ((rc = open_conn(c, r, &wh)) != 0)
        return rc;
    if (strcmp(pt_wh_kind(wh), "postgres") == 0) { /* this call's own connection's session */
        snprintf(setup, sizeof setup, "SET statement_timeout = %ld", timeout * 1000);
        if ((rc = run(wh, r, setup)) != 0)
            goto done;
    }
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    double deadline = (double)t0.tv_sec + t0.tv_nsec / 1e9 + (double)timeout;
    pt_wh_set_deadline(wh, deadline);
    if (pt_wh_exec(wh, sql, NULL, 0, &cur) != 0) {
        if (strstr(pt_wh_errmsg(wh), "statement timeout") != NULL)
            rc = pt_admin_fail(r, 504, "timeout", NULL, "the statement ran out of time");
        else
            rc = pt_admin_fail(r, 400, "bad_request", "sql", "%s", pt_wh_errmsg(wh));
        goto done;
    }
    rc = read_rows(wh, cur, limit, deadline, json_is_true(text) ? CELL_TEXT : CELL_PYTHON, r);
    if (rc == 0 && pt_wh_cursor_ncols(cur) == 0)
        json_object_set_new(r->body, "changed", json_integer(pt_wh_cursor_changes(cur)));
    if (rc == 0) /* who ran a statement where (not the SQL: it may hold the data written) */
        c->audit = json_pack("{s:s}", "name", c->params[0]);
done:
    pt_wh_cursor_free(cur);
    pt_wh_close(wh);
    return rc;
}

/* Copies msg into out (outsz bytes) with each `from` replaced by `to`: an import's message
 * names the server's temporary file, the client knows its own file's name. */
static void
replace_all(const char *msg, const char *from, const char *to, char *out, size_t outsz)
{
    size_t o = 0, nfrom = strlen(from), nto = strlen(to);
    while (*msg != '\0' && o + 1 < outsz) {
        if (strncmp(msg, from, nfrom) == 0 && o + nto < outsz) {
            memcpy(out + o, to, nto);
            o += nto;
            msg += nfrom;
        } else {
            out[o++] = *msg++;
        }
    }
    out[o] = '\0';
}

/* POST /connections/{name}/import {schema, table, filename, content, primary_key?} (editor):
 * imports the CSV or JSON text `content` (a JSON array when filename ends in .json or it
 * starts with '[') into schema.table as `portico db import` does with a file; the body is at
 * most PT_ADMIN_BODY_MAX bytes (413 past it). The server writes it to a private temporary file
 * of the data dir, imports that and removes it. */
static int
import(pt_admin_call *c, pt_admin_reply *r)
{
    const char *schema = pt_admin_body_str(c, r, "schema", 1);
    const char *table = schema != NULL ? pt_admin_body_str(c, r, "table", 1) : NULL;
    const char *fname = table != NULL ? pt_admin_body_str(c, r, "filename", 1) : NULL;
    const char *content = fname != NULL ? pt_admin_body_str(c, r, "content", 1) : NULL;
    const char *key = content != NULL ? pt_admin_body_str(c, r, "primary_key", 0) : NULL;
    pt_wh_import_result res;
    char tmp[PATH_MAX], msg[1024];
    pt_wh *wh = NULL;
    int rc, fd = -1, made = 0;

    if (content == NULL || (key == NULL && r->status != 0))
        return -r->status;
    size_t n = json_string_length(json_object_get(c->body, "content")), flen = strlen(fname);
    const char *ext = flen >= 5 && strcasecmp(fname + flen - 5, ".json") == 0 ? ".json" : ".csv";
    if ((rc = open_conn(c, r, &wh)) != 0)
        return rc;
    snprintf(tmp, sizeof tmp, "%s/.import-XXXXXX%s", c->datadir, ext);
    if ((fd = mkstemps(tmp, (int)strlen(ext))) < 0) {
        rc = pt_admin_fail(r, 503, "unavailable", NULL, "cannot write a temporary file");
        goto done;
    }
    made = 1;
    for (size_t off = 0; off < n;) {
        ssize_t w = write(fd, content + off, n - off);
        if (w <= 0) {
            rc = pt_admin_fail(r, 503, "unavailable", NULL, "cannot write a temporary file");
            goto done;
        }
        off += (size_t)w;
    }
    close(fd);
    fd = -1;
    rc = pt_wh_import_keyed(wh, schema, table, tmp, key, &res);
    if (rc != 0) {
        replace_all(pt_wh_errmsg(wh), tmp, fname, msg, sizeof msg);
        rc = rc == PT_EUNAVAIL ? pt_admin_fail(r, 503, "unavailable", NULL, "%s", msg)
                               : pt_admin_fail(r, 400, "bad_request", "content", "%s", msg);
        goto done;
    }
    r->status = 201;
    r->body = json_pack("{s:I, s:s, s:s, s:s, s:s}", "rows", (json_int_t)res.rows, "connection",
                        c->params[0], "schema", schema, "table", table, "note", res.note);
    c->audit = json_pack("{s:s, s:s, s:s}", "name", c->params[0], "schema", schema, "table", table);
    rc = 0;
done:
    if (fd >= 0)
        close(fd);
    if (made)
        unlink(tmp);
    pt_wh_close(wh);
    return rc;
}

const pt_admin_route pt_admin_connections_routes[] = {
    {"GET", "/connections", PT_ROLE_VIEWER, list,
     "Warehouse connections (PostgreSQL DSNs without passwords)"},
    {"POST", "/connections", PT_ROLE_EDITOR, add,
     "Add a connection {name, kind: postgres, dsn} or {name, kind: sqlite, dir?}; a PostgreSQL "
     "database must answer"},
    {"DELETE", "/connections/{name}", PT_ROLE_EDITOR, rm,
     "Remove a connection (its data is not touched)"},
    {"GET", "/connections/{name}/schemas", PT_ROLE_VIEWER, browse, "A connection's schemas"},
    {"GET", "/connections/{name}/schemas/{schema}/tables", PT_ROLE_VIEWER, browse,
     "A schema's tables and views"},
    {"GET", "/connections/{name}/schemas/{schema}/tables/{table}", PT_ROLE_VIEWER, browse,
     "A table's columns"},
    {"GET", "/connections/{name}/schemas/{schema}/tables/{table}/rows", PT_ROLE_VIEWER, first_rows,
     "A table's first rows (?limit=, at most 1000)"},
    {"POST", "/connections/{name}/query", PT_ROLE_VIEWER, query,
     "Run one read-only SELECT {sql, limit?, timeout?}"},
    {"POST", "/connections/{name}/import", PT_ROLE_EDITOR, import,
     "Import CSV or JSON text into a table {schema, table, filename, content, primary_key?} "
     "(portico db import)"},
    {"POST", "/connections/{name}/execute", PT_ROLE_ADMIN, execute,
     "Run any one statement, writes too {sql, limit?, timeout?, text?} (portico db query)"},
    {NULL, NULL, PT_ROLE_NONE, NULL, NULL},
};
