/* wh_sqlite.c - the embedded SQLite warehouse driver: one database file per schema, ATTACHed. */

/*
 * Design notes
 *
 * A connection is an in-memory main database with every schema of its directory ATTACHed under
 * the schema's name: <dir>/<schema>.db holds the tables of `schema`, so `schema.table` works in
 * SQL as it does in PostgreSQL. Tables created without a schema land in the in-memory main
 * database and vanish on close; pq always qualifies names.
 *
 * Schema names are case-insensitive in SQL, so file names are always lower case: schema
 * `Sales` is sales.db. Each schema file is in WAL mode (set when the file is created; the mode
 * is persistent), so handlers reading a table never block an import writing another.
 *
 * The attach limit. SQLite caps attached databases per connection at SQLITE_MAX_ATTACHED, a
 * compile-time constant: 10 in Debian's libsqlite3 (125 at most in any build). We raise the
 * run-time limit to that cap at open and then:
 *   - attach the schemas found in the directory, in name order, up to the cap;
 *   - when a statement names a schema that is not attached ("no such table: s.t" or "unknown
 *     database s") and <dir>/s.db exists, attach it and prepare again. This also picks up
 *     schemas created by another process after this connection was opened (a worker's cached
 *     pq connection sees a table imported by the CLI). When the cap is reached, the schema
 *     attached longest ago that the current statement does not need is detached first.
 * So a connection can use any number of schemas, and one statement can use at most the cap
 * (10 on Debian). Detaching fails inside an open transaction; that is reported as an error.
 *
 * Statements: pt_wh_exec prepares one statement at a time. Several statements separated by
 * ';' are allowed when there are no parameters: all but the last run to completion, the last
 * one becomes the cursor. Statements without result columns run to completion inside
 * pt_wh_exec so that changes/last_id are known; the others take their first step in
 * pt_wh_cursor_next. Parameters are ?, ?NNN, or PostgreSQL-style $N (bound by number).
 *
 * PostgreSQL's dialect: every statement pt_wh_exec runs goes through wh_dialect.c first, so
 * that scripts written for Peliqan's PostgreSQL warehouse run (TRUNCATE, CREATE SCHEMA, casts,
 * now(), ...; docs/HANDLERS.md lists what remains different). A translation is either one
 * statement, prepared in place of the original, or a plan of steps run here (run_plan), all or
 * none. Statements that need nothing keep SQLite's own splitting, so trigger bodies stay whole.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "core/err.h"
#include "warehouse/wh_dialect.h"
#include "warehouse/wh_int.h"

#define BUSY_TIMEOUT_MS 5000
#define SCHEMA_MAX 64 /* identifier length cap + NUL */

typedef struct attached {
    char name[SCHEMA_MAX]; /* lower case */
    uint64_t seq;          /* when it was attached, for eviction */
    dev_t dev;             /* the file attached: another connection may remove or replace it */
    ino_t ino;
} attached;

typedef struct sq_wh {
    pt_wh base; /* first: a pt_wh * is a sq_wh * */
    sqlite3 *db;
    char *dir; /* owned; directory of the schema files */
    attached *att;
    size_t natt;
    size_t maxatt; /* the attach cap of this SQLite build */
    uint64_t seq;
    double deadline; /* CLOCK_MONOTONIC seconds past which a statement is stopped; 0: none */
} sq_wh;

typedef struct sq_cursor {
    pt_wh_cursor base; /* first */
    sqlite3_stmt *stmt;
    int state;            /* CUR_* */
    int64_t total_before; /* sqlite3_total_changes64 before the first step */
    char *scratch;        /* ncols * PT_WH_ISO_MAX bytes: normalised timestamps of the row */
} sq_cursor;

enum { CUR_START, CUR_ROW, CUR_DONE };

typedef struct sq_stmt {
    pt_wh_stmt base; /* first */
    sqlite3_stmt *stmt;
} sq_stmt;

static const pt_wh_driver sqlite_driver;

/* ---- helpers ------------------------------------------------------------------------------ */

static void
lower_copy(char *dst, const char *src, size_t dstsz)
{
    size_t i;

    for (i = 0; i + 1 < dstsz && src[i] != '\0'; i++)
        dst[i] = (char)tolower((unsigned char)src[i]);
    dst[i] = '\0';
}

static attached *
find_attached(sq_wh *w, const char *schema)
{
    size_t i;

    for (i = 0; i < w->natt; i++)
        if (strcasecmp(w->att[i].name, schema) == 0)
            return &w->att[i];
    return NULL;
}

/* Path of a schema's file, prefixed with "./" when relative so that SQLite (built with
 * SQLITE_USE_URI) never reads it as a "file:" URI. Returns 0 or PT_EINVAL if too long. */
static int
schema_path(const sq_wh *w, const char *lower, char *out, size_t outsz)
{
    int n = snprintf(out, outsz, "%s%s/%s.db", w->dir[0] == '/' ? "" : "./", w->dir, lower);

    return n < 0 || (size_t)n >= outsz ? PT_EINVAL : 0;
}

/* Maps a failed SQLite call to a pt_err and an error message. "no such table: s.t" and
 * "unknown database s" become PT_ENOTFOUND with a message naming the table or schema. */
static int
map_error(sq_wh *w)
{
    const char *msg = sqlite3_errmsg(w->db);
    int code = sqlite3_errcode(w->db) & 0xff;

    if (strncmp(msg, "no such table: ", 15) == 0) {
        const char *t = msg + 15;
        if (strchr(t, '.') != NULL)
            pt_wh_set_error(&w->base, "table %s not found", t);
        else
            pt_wh_set_error(&w->base, "table %s not found (write schema.%s)", t, t);
        return PT_ENOTFOUND;
    }
    if (strncmp(msg, "unknown database ", 17) == 0) {
        pt_wh_set_error(&w->base, "schema %s not found", msg + 17);
        return PT_ENOTFOUND;
    }
    if (code == SQLITE_INTERRUPT && w->deadline > 0)
        pt_wh_set_error(&w->base, "statement timeout: the query ran past its deadline");
    else if (code == SQLITE_BUSY || code == SQLITE_LOCKED)
        pt_wh_set_error(&w->base, "warehouse busy: %s (another process holds a write lock)", msg);
    else
        pt_wh_set_error(&w->base, "%s", msg);
    return PT_EDB;
}

/* ---- attaching ---------------------------------------------------------------------------- */

/* Detaches the schema attached longest ago among those attached before `pinned_from`.
 * Returns 0 or PT_EDB. */
static int
evict_one(sq_wh *w, uint64_t pinned_from)
{
    sqlite3_stmt *stmt = NULL;
    size_t i, victim = w->natt;
    char sql[SCHEMA_MAX + 32];
    int rc;

    for (i = 0; i < w->natt; i++)
        if (w->att[i].seq < pinned_from &&
            (victim == w->natt || w->att[i].seq < w->att[victim].seq))
            victim = i;
    if (victim == w->natt) {
        pt_wh_set_error(&w->base, "a statement can use at most %zu schemas of one SQLite warehouse",
                        w->maxatt);
        return PT_EDB;
    }
    snprintf(sql, sizeof sql, "DETACH DATABASE \"%s\"", w->att[victim].name);
    if (sqlite3_prepare_v2(w->db, sql, -1, &stmt, NULL) != SQLITE_OK ||
        sqlite3_step(stmt) != SQLITE_DONE) {
        rc = PT_EDB;
        pt_wh_set_error(&w->base, "cannot detach schema %s to make room for another: %s",
                        w->att[victim].name, sqlite3_errmsg(w->db));
        sqlite3_finalize(stmt);
        return rc;
    }
    sqlite3_finalize(stmt);
    w->att[victim] = w->att[--w->natt];
    return 0;
}

/* Attaches schema (a valid identifier). With create 0 the file must exist (PT_ENOTFOUND
 * otherwise); with create 1 it is created in WAL mode. Schemas attached at or after seq
 * `pinned_from` are not evicted. Returns 0 or a pt_err with the message set. */
static int
attach(sq_wh *w, const char *schema, int create, uint64_t pinned_from)
{
    char lower[SCHEMA_MAX], path[4096], sql[SCHEMA_MAX + 64];
    sqlite3_stmt *stmt = NULL;
    struct stat sb;
    int existed, rc;

    lower_copy(lower, schema, sizeof lower);
    if (schema_path(w, lower, path, sizeof path) != 0) {
        pt_wh_set_error(&w->base, "warehouse path too long");
        return PT_EINVAL;
    }
    existed = access(path, F_OK) == 0;
    if (!existed && !create) {
        pt_wh_set_error(&w->base, "schema %s not found", schema);
        return PT_ENOTFOUND;
    }
    if (w->natt == w->maxatt) {
        rc = evict_one(w, pinned_from);
        if (rc != 0)
            return rc;
    }
    /* The schema name is a validated identifier, so quoting it is enough; the path is bound. */
    snprintf(sql, sizeof sql, "ATTACH DATABASE ?1 AS \"%s\"", lower);
    if (sqlite3_prepare_v2(w->db, sql, -1, &stmt, NULL) != SQLITE_OK)
        goto dberror;
    sqlite3_bind_text(stmt, 1, path, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(stmt) != SQLITE_DONE)
        goto dberror;
    sqlite3_finalize(stmt);
    stmt = NULL;
    /* Always (another process may have created the file a moment ago): switching to WAL takes
     * a lock the busy handler does not wait for, so retry a while; it is a no-op once the
     * file is in WAL mode. On failure the schema is detached again, or every later attach
     * on this connection would fail with "already in use". */
    snprintf(sql, sizeof sql, "PRAGMA \"%s\".journal_mode = WAL", lower);
    for (int attempt = 0;; attempt++) {
        rc = sqlite3_exec(w->db, sql, NULL, NULL, NULL);
        if (rc == SQLITE_OK)
            break;
        if ((rc != SQLITE_BUSY && rc != SQLITE_LOCKED) || attempt >= 100) {
            pt_wh_set_error(&w->base, "cannot attach schema %s (%s): %s", schema, path,
                            sqlite3_errmsg(w->db));
            snprintf(sql, sizeof sql, "DETACH DATABASE \"%s\"", lower);
            sqlite3_exec(w->db, sql, NULL, NULL, NULL);
            return PT_EDB;
        }
        struct timespec nap = {0, 10 * 1000 * 1000};
        nanosleep(&nap, NULL);
    }
    snprintf(w->att[w->natt].name, SCHEMA_MAX, "%s", lower);
    w->att[w->natt].seq = ++w->seq;
    w->att[w->natt].dev = 0;
    w->att[w->natt].ino = 0;
    if (stat(path, &sb) == 0) {
        w->att[w->natt].dev = sb.st_dev;
        w->att[w->natt].ino = sb.st_ino;
    }
    w->natt++;
    return 0;
dberror:
    pt_wh_set_error(&w->base, "cannot attach schema %s (%s): %s", schema, path,
                    sqlite3_errmsg(w->db));
    sqlite3_finalize(stmt);
    return PT_EDB;
}

/* The attachment of schema, or NULL when it has none. An attachment whose file is gone or is
 * another file now (another connection ran pq.delete_schema, and maybe created the schema again)
 * is stale: it is detached, so that the caller attaches what is there now. Inside a transaction
 * SQLite cannot detach; the stale copy is kept until the transaction ends. */
static attached *
find_live(sq_wh *w, const char *schema)
{
    attached *a = find_attached(w, schema);
    char path[4096], sql[SCHEMA_MAX + 32];
    struct stat sb;

    if (a == NULL || a->ino == 0 || schema_path(w, a->name, path, sizeof path) != 0)
        return a;
    if (stat(path, &sb) == 0 && sb.st_dev == a->dev && sb.st_ino == a->ino)
        return a;
    if (!sqlite3_get_autocommit(w->db))
        return a;
    snprintf(sql, sizeof sql, "DETACH DATABASE \"%s\"", a->name);
    if (sqlite3_exec(w->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return a;
    *a = w->att[--w->natt];
    return NULL;
}

/* After a failed prepare: if the error names a schema that is not attached but whose file
 * exists, attaches it and returns 1 (prepare again). Returns 0 when the error is something else
 * (SQLite's message still describes it), or a pt_err when attaching failed. */
static int
attach_missing(sq_wh *w, uint64_t pinned_from)
{
    const char *msg = sqlite3_errmsg(w->db);
    char schema[SCHEMA_MAX];
    const char *s;
    size_t n;
    int rc;

    if (strncmp(msg, "no such table: ", 15) == 0) {
        s = msg + 15;
        const char *dot = strchr(s, '.');
        if (dot == NULL)
            return 0;
        n = (size_t)(dot - s);
    } else if (strncmp(msg, "unknown database ", 17) == 0) {
        s = msg + 17;
        n = strlen(s);
    } else {
        return 0;
    }
    if (n == 0 || n >= sizeof schema)
        return 0;
    memcpy(schema, s, n);
    schema[n] = '\0';
    if (!pt_wh_ident_valid(schema) || find_attached(w, schema) != NULL)
        return 0;
    rc = attach(w, schema, 0, pinned_from);
    if (rc == PT_ENOTFOUND)
        return 0; /* no such file: SQLite's own message is the right one */
    return rc == 0 ? 1 : rc;
}

static int
name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Is file name `name` a schema's file ("<schema>.db", the schema a lower-case identifier other
 * than main and temp)? 1 with the schema's name in base (SCHEMA_MAX bytes), else 0. */
static int
schema_file(const char *name, char *base)
{
    size_t len = strlen(name);
    char lower[SCHEMA_MAX];

    if (len < 4 || len - 3 >= SCHEMA_MAX || strcmp(name + len - 3, ".db") != 0)
        return 0;
    memcpy(base, name, len - 3);
    base[len - 3] = '\0';
    lower_copy(lower, base, sizeof lower);
    return pt_wh_ident_valid(base) && strcmp(base, lower) == 0 && strcmp(base, "main") != 0 &&
           strcmp(base, "temp") != 0;
}

/* Attaches the schema files of the directory, in name order, up to the cap. */
static int
attach_all(sq_wh *w, char *err, size_t errsz)
{
    char **names = NULL;
    size_t n = 0, cap = 0, i;
    struct dirent *de;
    DIR *d = opendir(w->dir);
    int rc = 0;

    if (d == NULL) {
        snprintf(err, errsz, "cannot open warehouse directory %s: %s", w->dir, strerror(errno));
        return PT_EUNAVAIL;
    }
    while ((de = readdir(d)) != NULL) {
        char base[SCHEMA_MAX];
        if (!schema_file(de->d_name, base))
            continue;
        if (n == cap) {
            size_t ncap = cap != 0 ? cap * 2 : 16;
            char **nn = realloc(names, ncap * sizeof *nn);
            if (nn == NULL) {
                rc = PT_ENOMEM;
                goto done;
            }
            names = nn;
            cap = ncap;
        }
        names[n] = strdup(base);
        if (names[n] == NULL) {
            rc = PT_ENOMEM;
            goto done;
        }
        n++;
    }
    if (n > 0)
        qsort(names, n, sizeof *names, name_cmp);
    for (i = 0; i < n && w->natt < w->maxatt; i++) {
        rc = attach(w, names[i], 0, UINT64_MAX);
        if (rc != 0) {
            snprintf(err, errsz, "%s", w->base.err);
            goto done;
        }
    }
done:
    if (rc == PT_ENOMEM)
        snprintf(err, errsz, "out of memory");
    for (i = 0; i < n; i++)
        free(names[i]);
    free(names);
    closedir(d);
    return rc;
}

/* ---- open / close ------------------------------------------------------------------------- */

int
pt_wh_sqlite_open(const char *name, const char *dir, pt_wh **out, char *err, size_t errsz)
{
    struct stat sb;
    sq_wh *w = NULL;
    int rc;

    *out = NULL;
    if (stat(dir, &sb) != 0) {
        if (errno != ENOENT || mkdir(dir, 0700) != 0) {
            snprintf(err, errsz, "warehouse directory %s: %s", dir, strerror(errno));
            return PT_EUNAVAIL;
        }
    } else if (!S_ISDIR(sb.st_mode)) {
        snprintf(err, errsz, "warehouse directory %s is not a directory", dir);
        return PT_EUNAVAIL;
    }
    w = calloc(1, sizeof *w);
    if (w == NULL || (w->base.name = strdup(name)) == NULL || (w->dir = strdup(dir)) == NULL) {
        snprintf(err, errsz, "out of memory");
        rc = PT_ENOMEM;
        goto fail;
    }
    w->base.drv = &sqlite_driver;
    /* NOMUTEX: a pt_wh is used by one thread at a time (wh.h), so SQLite's per-call connection
     * mutex only costs (it was a fifth of the CPU time of serving rows). */
    if (sqlite3_open_v2(":memory:", &w->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        snprintf(err, errsz, "cannot open SQLite: %s",
                 w->db != NULL ? sqlite3_errmsg(w->db) : "out of memory");
        rc = PT_EDB;
        goto fail;
    }
    sqlite3_busy_timeout(w->db, BUSY_TIMEOUT_MS);
    /* Raising the limit above the compile-time cap clamps it to the cap; read back the result. */
    sqlite3_limit(w->db, SQLITE_LIMIT_ATTACHED, INT_MAX);
    w->maxatt = (size_t)sqlite3_limit(w->db, SQLITE_LIMIT_ATTACHED, -1);
    w->att = calloc(w->maxatt > 0 ? w->maxatt : 1, sizeof *w->att);
    if (w->att == NULL) {
        snprintf(err, errsz, "out of memory");
        rc = PT_ENOMEM;
        goto fail;
    }
    rc = attach_all(w, err, errsz);
    if (rc != 0)
        goto fail;
    *out = &w->base;
    return 0;
fail:
    if (w != NULL)
        sqlite_driver.close(&w->base);
    return rc;
}

static void
sq_close(pt_wh *wh)
{
    sq_wh *w = (sq_wh *)wh;

    sqlite3_close_v2(w->db);
    free(w->att);
    free(w->dir);
    free(w->base.name);
    free(w);
}

/* ---- statements --------------------------------------------------------------------------- */

/* Does only whitespace, ';' and comments remain in sql? */
static int
sql_rest_empty(const char *p)
{
    for (;;) {
        while (*p == ';' || isspace((unsigned char)*p))
            p++;
        if (p[0] == '-' && p[1] == '-') {
            p = strchr(p, '\n');
            if (p == NULL)
                return 1;
        } else if (p[0] == '/' && p[1] == '*') {
            p = strstr(p + 2, "*/");
            if (p == NULL)
                return 1;
            p += 2;
        } else {
            return *p == '\0';
        }
    }
}

/* Prepares the statement at sql, attaching missing schemas on the way. Returns 0 (with *stmt
 * NULL when sql holds only whitespace or comments) or a pt_err. */
static int
prepare_one(sq_wh *w, const char *sql, sqlite3_stmt **stmt, const char **tail)
{
    uint64_t pinned_from = w->seq + 1;

    int rc;

    for (;;) {
        if (sqlite3_prepare_v2(w->db, sql, -1, stmt, tail) == SQLITE_OK)
            return 0;
        *stmt = NULL;
        rc = attach_missing(w, pinned_from);
        if (rc == 0)
            return map_error(w);
        if (rc < 0)
            return rc;
    }
}

/* Binds params to stmt: ?NNN and ? by position, $N by number (PostgreSQL style). With
 * copy 0 text and blobs are bound without copying (the caller steps before returning). */
static int
bind_params(sq_wh *w, sqlite3_stmt *stmt, const pt_value *params, size_t nparams, int copy)
{
    int count = sqlite3_bind_parameter_count(stmt);
    sqlite3_destructor_type how = copy ? SQLITE_TRANSIENT : SQLITE_STATIC;
    size_t used = 0;
    int i, rc = SQLITE_OK;

    for (i = 1; i <= count; i++) {
        const char *pname = sqlite3_bind_parameter_name(stmt, i);
        size_t idx = (size_t)i - 1;
        const pt_value *v;
        if (pname != NULL && pname[0] == '$' && isdigit((unsigned char)pname[1])) {
            char *end;
            unsigned long k = strtoul(pname + 1, &end, 10);
            if (*end == '\0' && k >= 1)
                idx = k - 1;
        }
        if (idx >= nparams) {
            pt_wh_set_error(&w->base, "the SQL uses parameter %s but %zu were given",
                            pname != NULL ? pname : "?", nparams);
            return PT_EDB;
        }
        if (idx + 1 > used)
            used = idx + 1;
        v = &params[idx];
        switch (v->type) {
        case PT_V_NULL:
            rc = sqlite3_bind_null(stmt, i);
            break;
        case PT_V_INT:
        case PT_V_BOOL:
            rc = sqlite3_bind_int64(stmt, i, v->u.i);
            break;
        case PT_V_FLOAT:
            rc = sqlite3_bind_double(stmt, i, v->u.f);
            break;
        case PT_V_TEXT:
        case PT_V_NUMERIC:
        case PT_V_DATE:
        case PT_V_TIME:
        case PT_V_TIMESTAMP:
        case PT_V_JSON:
            rc = sqlite3_bind_text64(stmt, i, v->u.s.p != NULL ? v->u.s.p : "", v->u.s.n, how,
                                     SQLITE_UTF8);
            break;
        case PT_V_BLOB:
            rc = sqlite3_bind_blob64(stmt, i, v->u.s.p != NULL ? v->u.s.p : "", v->u.s.n, how);
            break;
        }
        if (rc != SQLITE_OK)
            return map_error(w);
    }
    if (used != nparams) {
        pt_wh_set_error(&w->base, "the SQL takes %zu parameters but %zu were given", used, nparams);
        return PT_EDB;
    }
    return 0;
}

/* Steps a statement to completion, discarding rows. */
static int
run_to_done(sq_wh *w, sqlite3_stmt *stmt)
{
    int rc;

    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
        ;
    return rc == SQLITE_DONE ? 0 : map_error(w);
}

/* The pt_vtype of a declared column type: the names pq's create_table uses (BOOLEAN, DATE,
 * TIME, TIMESTAMP, DATETIME, JSON) by name, the rest by SQLite's affinity rules. Columns whose
 * values may have any type (no declared type, NUMERIC affinity) are PT_V_NULL. */
static pt_vtype
decl_type(const char *decl)
{
    if (decl == NULL || decl[0] == '\0')
        return PT_V_NULL;
    if (strcasecmp(decl, "BOOLEAN") == 0 || strcasecmp(decl, "BOOL") == 0)
        return PT_V_BOOL;
    if (strcasecmp(decl, "DATE") == 0)
        return PT_V_DATE;
    if (strcasecmp(decl, "TIME") == 0)
        return PT_V_TIME;
    if (strncasecmp(decl, "TIMESTAMP", 9) == 0 || strcasecmp(decl, "DATETIME") == 0)
        return PT_V_TIMESTAMP;
    if (strcasecmp(decl, "JSON") == 0 || strcasecmp(decl, "JSONB") == 0)
        return PT_V_JSON;
    if (strcasestr(decl, "INT") != NULL)
        return PT_V_INT;
    if (strcasestr(decl, "CHAR") != NULL || strcasestr(decl, "CLOB") != NULL ||
        strcasestr(decl, "TEXT") != NULL)
        return PT_V_TEXT;
    if (strcasestr(decl, "BLOB") != NULL)
        return PT_V_BLOB;
    if (strcasestr(decl, "REAL") != NULL || strcasestr(decl, "FLOA") != NULL ||
        strcasestr(decl, "DOUB") != NULL)
        return PT_V_FLOAT;
    if (strcasestr(decl, "NUM") != NULL || strcasestr(decl, "DEC") != NULL)
        return PT_V_NUMERIC;
    return PT_V_NULL;
}

/* Builds a cursor for stmt (ownership moves to the cursor, even on error). */
static int
cursor_new(sq_wh *w, sqlite3_stmt *stmt, sq_cursor **out)
{
    size_t ncols = stmt != NULL ? (size_t)sqlite3_column_count(stmt) : 0;
    size_t i, total = 0;
    sq_cursor *c = NULL;
    char *p;

    *out = NULL;
    for (i = 0; i < ncols; i++) {
        const char *n = sqlite3_column_name(stmt, (int)i);
        total += strlen(n != NULL ? n : "") + 1;
    }
    c = calloc(1, sizeof *c);
    if (c == NULL)
        goto nomem;
    c->base.wh = &w->base;
    c->base.ncols = ncols;
    c->stmt = stmt;
    stmt = NULL;
    c->state = CUR_START;
    if (ncols > 0) {
        /* Column names are copied: SQLite's pointers die when the statement is re-prepared. */
        c->base.colnames = malloc(ncols * sizeof(char *) + total);
        c->base.coltypes = calloc(ncols, sizeof *c->base.coltypes);
        c->scratch = malloc(ncols * PT_WH_ISO_MAX);
        if (c->base.colnames == NULL || c->base.coltypes == NULL || c->scratch == NULL)
            goto nomem;
        p = (char *)(c->base.colnames + ncols);
        for (i = 0; i < ncols; i++) {
            const char *n = sqlite3_column_name(c->stmt, (int)i);
            const char *decl = sqlite3_column_decltype(c->stmt, (int)i);
            size_t len = strlen(n != NULL ? n : "");
            memcpy(p, n != NULL ? n : "", len + 1);
            c->base.colnames[i] = p;
            p += len + 1;
            c->base.coltypes[i] = decl_type(decl);
        }
    }
    *out = c;
    return 0;
nomem:
    sqlite3_finalize(stmt);
    if (c != NULL)
        sqlite_driver.cursor_free(&c->base);
    pt_wh_set_error(&w->base, "out of memory");
    return PT_ENOMEM;
}

/* sqlite3_changes64() keeps the count of the last INSERT, UPDATE or DELETE even after other
 * statements (DDL, SELECT) ran: report it only when this statement changed something. */
static void
set_counts(sq_wh *w, sq_cursor *c)
{
    if (sqlite3_total_changes64(w->db) != c->total_before) {
        c->base.changes = sqlite3_changes64(w->db);
        c->base.last_id = sqlite3_last_insert_rowid(w->db);
    }
}

static int sq_create_schema(pt_wh *wh, const char *schema);
static int sq_table_exists(pt_wh *wh, const char *schema, const char *table);
static int sq_schema_exists(pt_wh *wh, const char *schema);

/* Prepares and runs one statement (a step of a plan) to completion. */
static int
run_sql(sq_wh *w, const char *sql)
{
    sqlite3_stmt *stmt = NULL;
    const char *tail = NULL;
    int rc = prepare_one(w, sql, &stmt, &tail);

    if (rc == 0 && stmt != NULL)
        rc = run_to_done(w, stmt);
    sqlite3_finalize(stmt);
    return rc;
}

/* Does schema.table have column col (all validated identifiers; schema "" searches every
 * schema)? 1 yes, 0 no, PT_ENOTFOUND when there is no such table, or PT_EDB. */
static int
has_column(sq_wh *w, const char *schema, const char *table, const char *col)
{
    sqlite3_stmt *stmt = NULL;
    char sql[3 * SCHEMA_MAX + 64];
    int rc, found = 0, rows = 0;

    if (schema[0] != '\0') {
        rc = sq_table_exists(&w->base, schema, table);
        if (rc <= 0)
            return rc == 0 ? PT_ENOTFOUND : rc;
        snprintf(sql, sizeof sql, "PRAGMA \"%s\".table_info(\"%s\")", schema, table);
    } else {
        snprintf(sql, sizeof sql, "PRAGMA table_info(\"%s\")", table);
    }
    if (sqlite3_prepare_v2(w->db, sql, -1, &stmt, NULL) != SQLITE_OK)
        return map_error(w);
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(stmt, 1);
        rows++;
        if (name != NULL && strcasecmp(name, col) == 0)
            found = 1;
    }
    rc = rc == SQLITE_DONE ? (rows > 0 ? found : PT_ENOTFOUND) : map_error(w);
    sqlite3_finalize(stmt);
    return rc;
}

/* RESTART IDENTITY: forgets schema.table's AUTOINCREMENT counter, if it has one (a plain
 * INTEGER PRIMARY KEY starts again at 1 by itself once the table is empty). */
static int
reset_identity(sq_wh *w, const char *schema, const char *table)
{
    sqlite3_stmt *stmt = NULL;
    char sql[SCHEMA_MAX + 96];
    int rc;

    if (schema[0] == '\0' || sq_table_exists(&w->base, schema, "sqlite_sequence") != 1)
        return 0;
    snprintf(sql, sizeof sql, "DELETE FROM \"%s\".sqlite_sequence WHERE name = ?1 COLLATE NOCASE",
             schema);
    if (sqlite3_prepare_v2(w->db, sql, -1, &stmt, NULL) != SQLITE_OK)
        return map_error(w);
    sqlite3_bind_text(stmt, 1, table, -1, SQLITE_STATIC);
    rc = run_to_done(w, stmt);
    sqlite3_finalize(stmt);
    return rc;
}

static int
run_step(sq_wh *w, const pt_whd_step *st)
{
    int rc;

    switch (st->op) {
    case PT_WHD_CREATE_SCHEMA:
        rc = sq_schema_exists(&w->base, st->schema);
        if (rc == 1 && !st->flag) {
            pt_wh_set_error(&w->base, "schema \"%s\" already exists", st->schema);
            return PT_EDB;
        }
        return rc == 1 ? 0 : sq_create_schema(&w->base, st->schema);
    case PT_WHD_ADD_COLUMN:
    case PT_WHD_DROP_COLUMN:
        rc = has_column(w, st->schema, st->table, st->column);
        if (rc == PT_ENOTFOUND && st->if_table)
            return 0;
        if (rc == PT_ENOTFOUND) {
            pt_wh_set_error(&w->base, "table %s%s%s not found", st->schema,
                            st->schema[0] != '\0' ? "." : "", st->table);
            return PT_ENOTFOUND;
        }
        if (rc < 0)
            return rc;
        if (st->flag && rc == (st->op == PT_WHD_ADD_COLUMN))
            return 0; /* IF NOT EXISTS and there, or IF EXISTS and missing */
        return run_sql(w, st->sql);
    case PT_WHD_RESET_IDENTITY:
        return reset_identity(w, st->schema, st->table);
    case PT_WHD_SQL:
        break;
    }
    return run_sql(w, st->sql);
}

/* Runs the steps of a translated statement, all or none: several steps run inside a
 * savepoint (which also nests in a transaction the script began). */
static int
run_plan(sq_wh *w, const pt_whd_plan *plan)
{
    int rc = 0, sp = plan->n > 1;
    size_t i;

    if (sp && sqlite3_exec(w->db, "SAVEPOINT pt_translated", NULL, NULL, NULL) != SQLITE_OK)
        return map_error(w);
    for (i = 0; rc == 0 && i < plan->n; i++)
        rc = run_step(w, &plan->steps[i]);
    if (sp && rc == 0 &&
        sqlite3_exec(w->db, "RELEASE pt_translated", NULL, NULL, NULL) != SQLITE_OK)
        rc = map_error(w);
    if (sp && rc != 0) {
        sqlite3_exec(w->db, "ROLLBACK TO pt_translated", NULL, NULL, NULL);
        sqlite3_exec(w->db, "RELEASE pt_translated", NULL, NULL, NULL);
    }
    return rc;
}

/* Prepares the statement at pos, translated from PostgreSQL's dialect when it needs it.
 * Returns 0 with *stmt (NULL when there is nothing to run, or when a plan of several steps
 * already ran: *ran is then 1) and *tail (where the next statement starts), or a pt_err. */
static int
prepare_translated(sq_wh *w, const char *pos, size_t nparams, sqlite3_stmt **stmt,
                   const char **tail, int *ran)
{
    pt_whd_plan plan = {0};
    size_t len = pt_whd_stmt_len(pos);
    const char *ignored = NULL;
    int rc;

    *stmt = NULL;
    *ran = 0;
    rc = pt_whd_translate(pos, len, &plan, w->base.err, sizeof w->base.err);
    if (rc != 0) {
        pt_whd_plan_clear(&plan);
        return rc == PT_ENOMEM ? rc : PT_EDB;
    }
    if (plan.n == 0) {
        rc = prepare_one(w, pos, stmt, tail);
    } else if (plan.n == 1 && plan.steps[0].op == PT_WHD_SQL) {
        rc = prepare_one(w, plan.steps[0].sql, stmt, &ignored);
        *tail = pos + len;
    } else if (nparams > 0) {
        pt_wh_set_error(&w->base, "this statement takes no parameters");
        rc = PT_EDB;
    } else {
        rc = run_plan(w, &plan);
        *ran = rc == 0;
        *tail = pos + len;
    }
    pt_whd_plan_clear(&plan);
    return rc;
}

static int
sq_exec(pt_wh *wh, const char *sql, const pt_value *params, size_t nparams, pt_wh_cursor **out)
{
    sq_wh *w = (sq_wh *)wh;
    sqlite3_stmt *stmt = NULL;
    sq_cursor *c = NULL;
    const char *pos = sql, *tail = NULL;
    int64_t total = sqlite3_total_changes64(w->db);
    int rc, ran = 0;

    *out = NULL;
    for (;;) {
        total = sqlite3_total_changes64(w->db);
        rc = prepare_translated(w, pos, nparams, &stmt, &tail, &ran);
        if (rc != 0)
            return rc;
        if ((stmt == NULL && !ran) || sql_rest_empty(tail))
            break;
        /* Not the last statement: run it now, so that the next one sees its effects. */
        if (nparams > 0) {
            sqlite3_finalize(stmt);
            pt_wh_set_error(wh, "parameters need a single SQL statement");
            return PT_EDB;
        }
        rc = stmt != NULL ? run_to_done(w, stmt) : 0;
        sqlite3_finalize(stmt);
        stmt = NULL;
        if (rc != 0)
            return rc;
        pos = tail;
    }
    if (stmt != NULL) {
        int ncols = sqlite3_column_count(stmt);
        total = sqlite3_total_changes64(w->db);
        rc = bind_params(w, stmt, params, nparams, ncols > 0);
        if (rc == 0 && ncols == 0)
            rc = run_to_done(w, stmt);
        if (rc != 0) {
            sqlite3_finalize(stmt);
            return rc;
        }
    } else if (nparams > 0) {
        pt_wh_set_error(wh, "the SQL takes 0 parameters but %zu were given", nparams);
        return PT_EDB;
    }
    rc = cursor_new(w, stmt, &c);
    if (rc != 0)
        return rc;
    c->total_before = total;
    if (c->base.ncols == 0) {
        c->state = CUR_DONE;
        if (c->stmt != NULL || ran)
            set_counts(w, c);
    }
    *out = &c->base;
    return 0;
}

static int
sq_next(pt_wh_cursor *cur)
{
    sq_cursor *c = (sq_cursor *)cur;
    sq_wh *w = (sq_wh *)cur->wh;
    int rc;

    if (c->state == CUR_DONE)
        return 0;
    rc = sqlite3_step(c->stmt);
    if (rc == SQLITE_ROW) {
        c->state = CUR_ROW;
        return 1;
    }
    c->state = CUR_DONE;
    if (rc == SQLITE_DONE) {
        set_counts(w, c);
        return 0;
    }
    return map_error(w);
}

/* The first step runs the query (a sort, an aggregate over a big table can take a while);
 * later steps read on from where it stands. */
static int
sq_may_block(pt_wh_cursor *cur)
{
    return ((sq_cursor *)cur)->state == CUR_START;
}

static void
sq_value(const pt_wh_cursor *cur, size_t i, pt_value *v)
{
    const sq_cursor *c = (const sq_cursor *)cur;
    int col = (int)i;

    if (c->state != CUR_ROW || i >= cur->ncols) {
        v->type = PT_V_NULL;
        return;
    }
    switch (sqlite3_column_type(c->stmt, col)) {
    case SQLITE_INTEGER:
        if (cur->coltypes[i] == PT_V_NUMERIC || cur->coltypes[i] == PT_V_FLOAT) {
            /* NUMERIC affinity keeps 12.00 as the integer 12; the column is a number with a
             * fraction all the same, a float as PostgreSQL's numeric is (wh.h). */
            v->type = PT_V_FLOAT;
            v->u.f = (double)sqlite3_column_int64(c->stmt, col);
            break;
        }
        v->type = cur->coltypes[i] == PT_V_BOOL ? PT_V_BOOL : PT_V_INT;
        v->u.i = sqlite3_column_int64(c->stmt, col);
        if (v->type == PT_V_BOOL)
            v->u.i = v->u.i != 0;
        break;
    case SQLITE_FLOAT:
        v->type = PT_V_FLOAT;
        v->u.f = sqlite3_column_double(c->stmt, col);
        break;
    case SQLITE_TEXT:
        v->type = PT_V_TEXT;
        v->u.s.p = (const char *)sqlite3_column_text(c->stmt, col);
        v->u.s.n = (size_t)sqlite3_column_bytes(c->stmt, col);
        switch (cur->coltypes[i]) {
        case PT_V_DATE:
        case PT_V_TIME:
        case PT_V_TIMESTAMP:
            /* Stored as text ("2024-05-01 13:45:00"): tagged and written the ISO 8601 way. */
            v->type = cur->coltypes[i];
            v->u.s.n = pt_wh_iso_datetime(v->u.s.p, v->u.s.n, c->scratch + i * PT_WH_ISO_MAX);
            v->u.s.p = c->scratch + i * PT_WH_ISO_MAX;
            break;
        case PT_V_JSON:
            v->type = PT_V_JSON;
            break;
        default:
            break;
        }
        break;
    case SQLITE_BLOB:
        v->type = PT_V_BLOB;
        v->u.s.p = sqlite3_column_blob(c->stmt, col);
        v->u.s.n = (size_t)sqlite3_column_bytes(c->stmt, col);
        break;
    default:
        v->type = PT_V_NULL;
        break;
    }
}

static void
sq_cursor_free(pt_wh_cursor *cur)
{
    sq_cursor *c = (sq_cursor *)cur;

    sqlite3_finalize(c->stmt);
    free(c->base.colnames);
    free(c->base.coltypes);
    free(c->scratch);
    free(c);
}

static int
sq_create_schema(pt_wh *wh, const char *schema)
{
    sq_wh *w = (sq_wh *)wh;

    if (strcasecmp(schema, "main") == 0 || strcasecmp(schema, "temp") == 0) {
        pt_wh_set_error(wh, "schema name '%s' is reserved", schema);
        return PT_EINVAL;
    }
    if (find_live(w, schema) != NULL)
        return 0;
    return attach(w, schema, 1, w->seq + 1);
}

static int
sq_table_exists(pt_wh *wh, const char *schema, const char *table)
{
    sq_wh *w = (sq_wh *)wh;
    sqlite3_stmt *stmt = NULL;
    char sql[SCHEMA_MAX + 96];
    int rc;

    if (strcasecmp(schema, "main") == 0 || strcasecmp(schema, "temp") == 0)
        return 0;
    if (find_live(w, schema) == NULL) {
        rc = attach(w, schema, 0, w->seq + 1);
        if (rc == PT_ENOTFOUND)
            return 0;
        if (rc != 0)
            return rc;
    }
    snprintf(sql, sizeof sql,
             "SELECT 1 FROM \"%s\".sqlite_master WHERE type IN ('table', 'view') "
             "AND name = ?1 COLLATE NOCASE",
             schema);
    if (sqlite3_prepare_v2(w->db, sql, -1, &stmt, NULL) != SQLITE_OK)
        return map_error(w);
    sqlite3_bind_text(stmt, 1, table, -1, SQLITE_STATIC);
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW)
        rc = 1;
    else if (rc == SQLITE_DONE)
        rc = 0;
    else
        rc = map_error(w);
    sqlite3_finalize(stmt);
    return rc;
}

static int
sq_schema_exists(pt_wh *wh, const char *schema)
{
    sq_wh *w = (sq_wh *)wh;
    char lower[SCHEMA_MAX], path[4096];

    if (strcasecmp(schema, "main") == 0 || strcasecmp(schema, "temp") == 0)
        return 0;
    if (find_live(w, schema) != NULL)
        return 1;
    lower_copy(lower, schema, sizeof lower);
    if (schema_path(w, lower, path, sizeof path) != 0)
        return 0;
    return access(path, F_OK) == 0;
}

static int
sq_prepare(pt_wh *wh, const char *sql, pt_wh_stmt **out)
{
    sq_wh *w = (sq_wh *)wh;
    sqlite3_stmt *stmt = NULL;
    const char *tail = NULL;
    sq_stmt *s;
    int rc;

    *out = NULL;
    rc = prepare_one(w, sql, &stmt, &tail);
    if (rc != 0)
        return rc;
    if (stmt == NULL || !sql_rest_empty(tail)) {
        sqlite3_finalize(stmt);
        pt_wh_set_error(wh, "a prepared statement must be exactly one SQL statement");
        return PT_EDB;
    }
    s = calloc(1, sizeof *s);
    if (s == NULL) {
        sqlite3_finalize(stmt);
        pt_wh_set_error(wh, "out of memory");
        return PT_ENOMEM;
    }
    s->base.wh = wh;
    s->stmt = stmt;
    *out = &s->base;
    return 0;
}

static int
sq_stmt_run(pt_wh_stmt *st, const pt_value *params, size_t nparams)
{
    sq_stmt *s = (sq_stmt *)st;
    sq_wh *w = (sq_wh *)st->wh;
    int rc;

    rc = bind_params(w, s->stmt, params, nparams, 0);
    if (rc == 0)
        rc = run_to_done(w, s->stmt);
    sqlite3_reset(s->stmt);
    sqlite3_clear_bindings(s->stmt);
    return rc;
}

static void
sq_stmt_free(pt_wh_stmt *st)
{
    sq_stmt *s = (sq_stmt *)st;

    sqlite3_finalize(s->stmt);
    free(s);
}

/* Runs PRAGMA table_info on schema.table (validated identifiers). Returns 0 with *out the
 * statement positioned before the first row, PT_ENOTFOUND when the table does not exist. */
static int
table_info(sq_wh *w, const char *schema, const char *table, sqlite3_stmt **out)
{
    char sql[2 * SCHEMA_MAX + 64];
    int rc = sq_table_exists(&w->base, schema, table);

    *out = NULL;
    if (rc < 0)
        return rc;
    if (rc == 0) {
        pt_wh_set_error(&w->base, "table %s.%s not found", schema, table);
        return PT_ENOTFOUND;
    }
    snprintf(sql, sizeof sql, "PRAGMA \"%s\".table_info(\"%s\")", schema, table);
    if (sqlite3_prepare_v2(w->db, sql, -1, out, NULL) != SQLITE_OK)
        return map_error(w);
    return 0;
}

static int
sq_primary_key(pt_wh *wh, const char *schema, const char *table, char *out, size_t outsz)
{
    sq_wh *w = (sq_wh *)wh;
    sqlite3_stmt *stmt = NULL;
    int npk = 0, rc;

    rc = table_info(w, schema, table, &stmt);
    if (rc != 0)
        return rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        /* Columns: cid, name, type, notnull, dflt_value, pk (1-based position in the key). */
        if (sqlite3_column_int(stmt, 5) > 0) {
            npk++;
            snprintf(out, outsz, "%s", (const char *)sqlite3_column_text(stmt, 1));
        }
    }
    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE)
        return map_error(w);
    if (npk != 1) {
        out[0] = '\0';
        pt_wh_set_error(wh, "table %s.%s has %s primary key", schema, table,
                        npk == 0 ? "no" : "a multi-column");
        return PT_ENOTFOUND;
    }
    return 0;
}

static int
sq_columns(pt_wh *wh, const char *schema, const char *table, char ***names, size_t *n)
{
    sq_wh *w = (sq_wh *)wh;
    sqlite3_stmt *stmt = NULL;
    const char *list[1024];
    char *copies[1024];
    size_t k = 0, i;
    int rc;

    rc = table_info(w, schema, table, &stmt);
    if (rc != 0)
        return rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW && k < 1024) {
        copies[k] = strdup((const char *)sqlite3_column_text(stmt, 1));
        if (copies[k] == NULL)
            break;
        list[k] = copies[k];
        k++;
    }
    sqlite3_finalize(stmt);
    rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : map_error(w);
    if (rc == 0) {
        *names = pt_wh_names_dup(list, k);
        *n = k;
        if (*names == NULL) {
            pt_wh_set_error(wh, "out of memory");
            rc = PT_ENOMEM;
        }
    }
    for (i = 0; i < k; i++)
        free(copies[i]);
    return rc;
}

static int
sq_in_transaction(pt_wh *wh)
{
    return !sqlite3_get_autocommit(((sq_wh *)wh)->db);
}

/* ---- catalog ------------------------------------------------------------------------------ */

/* The schema names of the directory's files (lower case, valid, not main/temp), sorted, into
 * a names allocation (pt_wh_names_dup; caller frees with free()). Returns 0 or a pt_err. */
static int
schema_files(sq_wh *w, char ***out, size_t *nout)
{
    const char **names = NULL;
    size_t n = 0, i;
    struct dirent *de;
    DIR *d = opendir(w->dir);
    int rc = 0;

    *out = NULL;
    *nout = 0;
    if (d == NULL) {
        pt_wh_set_error(&w->base, "cannot open warehouse directory %s: %s", w->dir,
                        strerror(errno));
        return PT_EUNAVAIL;
    }
    while ((de = readdir(d)) != NULL) {
        char base[SCHEMA_MAX];
        if (!schema_file(de->d_name, base))
            continue;
        if ((n & (n - 1)) == 0) {
            const char **nn = realloc(names, (n == 0 ? 1 : 2 * n) * sizeof *nn);
            if (nn == NULL) {
                rc = PT_ENOMEM;
                break;
            }
            names = nn;
        }
        if ((names[n] = strdup(base)) == NULL) {
            rc = PT_ENOMEM;
            break;
        }
        n++;
    }
    closedir(d);
    if (rc == 0 && n > 0)
        qsort(names, n, sizeof *names, name_cmp);
    if (rc == 0 && (*out = pt_wh_names_dup(names, n)) == NULL)
        rc = PT_ENOMEM;
    if (rc == 0)
        *nout = n;
    else
        pt_wh_set_error(&w->base, "out of memory");
    for (i = 0; i < n; i++)
        free((char *)names[i]);
    free(names);
    return rc;
}

/* Appends the columns of schema.table (table: any name, quoted here) to the catalog's last
 * table. */
static int
catalog_fields(sq_wh *w, const char *schema, const char *table, pt_wh_catalog *cat)
{
    sqlite3_stmt *stmt = NULL;
    char *sql = sqlite3_mprintf("PRAGMA \"%w\".table_info(\"%w\")", schema, table);
    int rc;

    if (sql == NULL)
        return PT_ENOMEM;
    rc = sqlite3_prepare_v2(w->db, sql, -1, &stmt, NULL);
    sqlite3_free(sql);
    if (rc != SQLITE_OK)
        return map_error(w);
    /* Columns: cid, name, type, notnull, dflt_value, pk (1-based position in the key). */
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        rc = pt_wh_catalog_add_field(&w->base, cat, (const char *)sqlite3_column_text(stmt, 1),
                                     (const char *)sqlite3_column_text(stmt, 2),
                                     sqlite3_column_int(stmt, 5), sqlite3_column_int(stmt, 3));
        if (rc != 0)
            break;
    }
    sqlite3_finalize(stmt);
    return rc == SQLITE_DONE ? 0 : rc < 0 ? rc : map_error(w);
}

/* Appends the tables and views of schema (attached here) to the catalog's last schema. */
static int
catalog_tables(sq_wh *w, const char *schema, const char *table, pt_wh_cat_level level,
               pt_wh_catalog *cat)
{
    sqlite3_stmt *stmt = NULL;
    char sql[SCHEMA_MAX + 160];
    int rc;

    if (find_attached(w, schema) == NULL) {
        rc = attach(w, schema, 0, w->seq + 1);
        if (rc == PT_ENOTFOUND)
            return 0; /* deleted since the directory was read */
        if (rc != 0)
            return rc;
    }
    snprintf(sql, sizeof sql,
             "SELECT name, type FROM \"%s\".sqlite_master WHERE type IN ('table', 'view') AND "
             "name NOT LIKE 'sqlite\\_%%' ESCAPE '\\' AND (?1 IS NULL OR name = ?1 COLLATE "
             "NOCASE) ORDER BY name",
             schema);
    if (sqlite3_prepare_v2(w->db, sql, -1, &stmt, NULL) != SQLITE_OK)
        return map_error(w);
    if (table != NULL)
        sqlite3_bind_text(stmt, 1, table, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(stmt, 0);
        const char *type = (const char *)sqlite3_column_text(stmt, 1);
        int is_view = strcmp(type, "view") == 0;
        rc = pt_wh_catalog_add_table(&w->base, cat, name, is_view);
        if (rc == 0 && level == PT_WH_CAT_FIELDS)
            rc = catalog_fields(w, schema, name, cat);
        /* A view whose tables were dropped since cannot say its columns: list it without. */
        if (rc == PT_ENOTFOUND && is_view)
            rc = 0;
        if (rc != 0)
            break;
    }
    sqlite3_finalize(stmt);
    return rc == SQLITE_DONE ? 0 : rc < 0 ? rc : map_error(w);
}

static int
sq_catalog(pt_wh *wh, const char *schema, const char *table, pt_wh_cat_level level,
           pt_wh_catalog *cat)
{
    sq_wh *w = (sq_wh *)wh;
    char **names = NULL;
    size_t n = 0, i;
    int rc = schema_files(w, &names, &n);

    for (i = 0; rc == 0 && i < n; i++) {
        if (schema != NULL && strcasecmp(schema, names[i]) != 0)
            continue;
        rc = pt_wh_catalog_add_schema(wh, cat, names[i]);
        if (rc == 0 && level >= PT_WH_CAT_TABLES)
            rc = catalog_tables(w, names[i], table, level, cat);
    }
    free(names);
    return rc;
}

/* Drops the tables and views of an attached schema, detaches it and removes its files. Other
 * connections that have it attached keep the (now empty) file open until they detach it. */
static int
sq_drop_schema(pt_wh *wh, const char *schema)
{
    sq_wh *w = (sq_wh *)wh;
    pt_wh_catalog *cat = NULL;
    char lower[SCHEMA_MAX], path[4096], sql[SCHEMA_MAX + 32];
    size_t i;
    int rc;

    if (strcasecmp(schema, "main") == 0 || strcasecmp(schema, "temp") == 0) {
        pt_wh_set_error(wh, "schema name '%s' is reserved", schema);
        return PT_EINVAL;
    }
    if (!sq_schema_exists(wh, schema)) {
        pt_wh_set_error(wh, "schema %s not found", schema);
        return PT_ENOTFOUND;
    }
    if (!sqlite3_get_autocommit(w->db)) {
        pt_wh_set_error(wh, "cannot delete schema %s inside a transaction", schema);
        return PT_EDB;
    }
    lower_copy(lower, schema, sizeof lower);
    rc = pt_wh_catalog_read(wh, lower, NULL, PT_WH_CAT_TABLES, &cat);
    /* Views first: a view may name a table of the schema. */
    for (int views = 1; rc == 0 && views >= 0; views--)
        for (i = 0; rc == 0 && cat->nschemas == 1 && i < cat->schemas[0].ntables; i++)
            if (cat->schemas[0].tables[i].is_view == views)
                rc = pt_wh_drop_table(wh, lower, cat->schemas[0].tables[i].name, views, 0);
    if (rc == 0 && find_attached(w, lower) != NULL) {
        snprintf(sql, sizeof sql, "DETACH DATABASE \"%s\"", lower);
        if (sqlite3_exec(w->db, sql, NULL, NULL, NULL) != SQLITE_OK) {
            rc = map_error(w);
        } else {
            attached *a = find_attached(w, lower);
            *a = w->att[--w->natt];
        }
    }
    if (rc == 0 && schema_path(w, lower, path, sizeof path) == 0) {
        size_t len = strlen(path);
        if (unlink(path) != 0 && errno != ENOENT) {
            pt_wh_set_error(wh, "cannot remove %s: %s", path, strerror(errno));
            rc = PT_EDB;
        }
        if (len + 4 < sizeof path) {
            strcpy(path + len, "-wal");
            unlink(path);
            strcpy(path + len, "-shm");
            unlink(path);
        }
    }
    pt_wh_catalog_free(cat);
    return rc;
}

static const char *const sqlite_types[][2] = {
    {"int", "INTEGER"}, {"float", "REAL"},          {"numeric", "NUMERIC"},
    {"text", "TEXT"},   {"bool", "BOOLEAN"},        {"date", "DATE"},
    {"time", "TIME"},   {"timestamp", "TIMESTAMP"}, {"timestamptz", "TIMESTAMP"},
    {"json", "JSON"},   {"bytes", "BLOB"},          {NULL, NULL},
};

/* sqlite3_progress_handler's callback: non-zero stops the statement (SQLITE_INTERRUPT). */
static int
sq_progress(void *arg)
{
    const sq_wh *w = arg;
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec / 1e9 > w->deadline;
}

static void
sq_set_deadline(pt_wh *wh, double deadline)
{
    sq_wh *w = (sq_wh *)wh;

    w->deadline = deadline;
    /* Every 1000 virtual machine instructions: microseconds, even in a step yielding no row. */
    sqlite3_progress_handler(w->db, deadline > 0 ? 1000 : 0, deadline > 0 ? sq_progress : NULL, w);
}

static const pt_wh_driver sqlite_driver = {
    .kind = "sqlite",
    .type_int = "INTEGER",
    .type_real = "REAL",
    .type_text = "TEXT",
    .close = sq_close,
    .exec = sq_exec,
    .next = sq_next,
    .may_block = sq_may_block,
    .value = sq_value,
    .cursor_free = sq_cursor_free,
    .create_schema = sq_create_schema,
    .table_exists = sq_table_exists,
    .schema_exists = sq_schema_exists,
    .prepare = sq_prepare,
    .stmt_run = sq_stmt_run,
    .stmt_free = sq_stmt_free,
    .primary_key = sq_primary_key,
    .columns = sq_columns,
    .in_transaction = sq_in_transaction,
    .types = sqlite_types,
    .catalog = sq_catalog,
    .drop_schema = sq_drop_schema,
    .set_deadline = sq_set_deadline,
};
