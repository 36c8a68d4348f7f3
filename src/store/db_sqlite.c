/* db_sqlite.c - the SQL driver on SQLite: a file in WAL mode, synchronous=FULL, foreign keys
 * on, statements stepped in place. */
#include "store/db.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <sqlite3.h>

#include "core/err.h"
#include "store/db_int.h"

typedef struct sq_db {
    pt_db base;
    sqlite3 *h;
} sq_db;

typedef struct sq_stmt {
    pt_db_stmt base;
    sqlite3_stmt *h;
} sq_stmt;

static const char *const sq_fragments[][2] = {
    {"id", "INTEGER PRIMARY KEY AUTOINCREMENT"},
    {"blob", "BLOB"},
    {"rowid", "rowid"},
    {"deferrable", ""},
    {"skip_locked", ""},
    {NULL, NULL},
};

static sqlite3 *
H(pt_db *db)
{
    return ((sq_db *)db)->h;
}

/* The pt_err for SQLite result code rc (an extended code is fine). */
static int
map_err(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return PT_EUNAVAIL;
    case SQLITE_CONSTRAINT:
        return rc == SQLITE_CONSTRAINT_FOREIGNKEY ? PT_ENOTFOUND : PT_EEXIST;
    case SQLITE_NOMEM:
        return PT_ENOMEM;
    case SQLITE_FULL:
    case SQLITE_IOERR:
    case SQLITE_READONLY:
    case SQLITE_CANTOPEN:
        return PT_EIO;
    case SQLITE_TOOBIG:
        return PT_ETOOBIG;
    default:
        return PT_EDB;
    }
}

/* Records the connection's message and returns the pt_err of rc. */
static int
fail(pt_db *db, int rc)
{
    pt_db_seterr(db, "%s", sqlite3_errmsg(H(db)));
    return map_err(rc);
}

static void
sq_close(pt_db *db)
{
    sqlite3_close_v2(H(db));
    free(db);
}

static int
sq_exec(pt_db *db, const char *sql)
{
    int rc = sqlite3_exec(H(db), sql, NULL, NULL, NULL);

    return rc == SQLITE_OK ? 0 : fail(db, rc);
}

static int
sq_prepare(pt_db *db, const char *sql, int persistent, pt_db_stmt **out)
{
    sq_stmt *s = calloc(1, sizeof *s);
    int rc;

    if (s == NULL) {
        pt_db_seterr(db, "out of memory");
        return PT_ENOMEM;
    }
    rc =
        sqlite3_prepare_v3(H(db), sql, -1, persistent ? SQLITE_PREPARE_PERSISTENT : 0, &s->h, NULL);
    if (rc != SQLITE_OK) {
        rc = fail(db, rc);
        sqlite3_finalize(s->h);
        free(s);
        return rc;
    }
    s->base.db = db;
    *out = &s->base;
    return 0;
}

static sqlite3_stmt *
SH(pt_db_stmt *s)
{
    return ((sq_stmt *)s)->h;
}

static void
sq_finalize(pt_db_stmt *s)
{
    sqlite3_finalize(SH(s));
    free(s);
}

static void
sq_reset(pt_db_stmt *s)
{
    sqlite3_reset(SH(s));
    sqlite3_clear_bindings(SH(s));
}

static int
bound(pt_db_stmt *s, int rc)
{
    if (rc == SQLITE_OK)
        return 0;
    pt_db_seterr(s->db, "bind: %s", sqlite3_errstr(rc));
    return rc == SQLITE_TOOBIG ? PT_ETOOBIG : PT_EINVAL;
}

static int
sq_bind_text(pt_db_stmt *s, int i, const char *p, size_t len)
{
    if (len > INT_MAX)
        return bound(s, SQLITE_TOOBIG);
    return bound(s, sqlite3_bind_text(SH(s), i, len > 0 ? p : "", (int)len, SQLITE_STATIC));
}

static int
sq_bind_blob(pt_db_stmt *s, int i, const void *p, size_t len)
{
    if (len > INT_MAX)
        return bound(s, SQLITE_TOOBIG);
    return bound(s, sqlite3_bind_blob(SH(s), i, len > 0 ? p : "", (int)len, SQLITE_STATIC));
}

static int
sq_bind_int64(pt_db_stmt *s, int i, int64_t v)
{
    return bound(s, sqlite3_bind_int64(SH(s), i, v));
}

static int
sq_bind_null(pt_db_stmt *s, int i)
{
    return bound(s, sqlite3_bind_null(SH(s), i));
}

static int
sq_param_count(pt_db_stmt *s)
{
    return sqlite3_bind_parameter_count(SH(s));
}

static int
sq_step(pt_db_stmt *s)
{
    int rc = sqlite3_step(SH(s));

    if (rc == SQLITE_ROW)
        return PT_DB_ROW;
    if (rc == SQLITE_DONE)
        return PT_DB_DONE;
    rc = fail(s->db, sqlite3_extended_errcode(H(s->db)));
    sqlite3_reset(SH(s)); /* the error is recorded; the statement may run again */
    return rc;
}

static int
sq_column_is_null(pt_db_stmt *s, int i)
{
    return sqlite3_column_type(SH(s), i) == SQLITE_NULL;
}

static int64_t
sq_column_int64(pt_db_stmt *s, int i)
{
    return sqlite3_column_int64(SH(s), i);
}

static const char *
sq_column_text(pt_db_stmt *s, int i, size_t *len)
{
    const unsigned char *p = sqlite3_column_text(SH(s), i);

    if (len != NULL)
        *len = p != NULL ? (size_t)sqlite3_column_bytes(SH(s), i) : 0;
    return p != NULL ? (const char *)p : "";
}

static const void *
sq_column_blob(pt_db_stmt *s, int i, size_t *len)
{
    const void *p = sqlite3_column_blob(SH(s), i);

    if (len != NULL)
        *len = p != NULL ? (size_t)sqlite3_column_bytes(SH(s), i) : 0;
    return p;
}

static int64_t
sq_changes(pt_db *db)
{
    return sqlite3_changes64(H(db));
}

static int
sq_begin(pt_db *db)
{
    return sq_exec(db, "BEGIN IMMEDIATE");
}

static int
sq_commit(pt_db *db)
{
    return sq_exec(db, "COMMIT");
}

static void
sq_rollback(pt_db *db)
{
    if (!sqlite3_get_autocommit(H(db)))
        sqlite3_exec(H(db), "ROLLBACK", NULL, NULL, NULL);
}

static int
sq_in_transaction(pt_db *db)
{
    return !sqlite3_get_autocommit(H(db));
}

static int
sq_defer_constraints(pt_db *db)
{
    return sq_exec(db, "PRAGMA defer_foreign_keys = ON");
}

static void
sq_set_busy_timeout(pt_db *db, int ms)
{
    sqlite3_busy_timeout(H(db), ms);
}

static int
sq_set_durable(pt_db *db, int durable)
{
    return sq_exec(db, durable ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL");
}

static int
sq_schema_version(pt_db *db, int64_t *version)
{
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(H(db), "PRAGMA user_version", -1, &s, NULL);

    if (rc == SQLITE_OK)
        rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *version = sqlite3_column_int64(s, 0);
        rc = 0;
    } else {
        rc = fail(db, rc);
    }
    sqlite3_finalize(s);
    return rc;
}

static int
sq_set_schema_version(pt_db *db, int64_t version)
{
    char sql[64];

    snprintf(sql, sizeof sql, "PRAGMA user_version = %lld", (long long)version);
    return sq_exec(db, sql);
}

static const pt_db_driver sqlite_driver = {
    .engine = "sqlite",
    .fragments = sq_fragments,
    .close = sq_close,
    .exec = sq_exec,
    .prepare = sq_prepare,
    .finalize = sq_finalize,
    .reset = sq_reset,
    .bind_text = sq_bind_text,
    .bind_blob = sq_bind_blob,
    .bind_int64 = sq_bind_int64,
    .bind_null = sq_bind_null,
    .param_count = sq_param_count,
    .step = sq_step,
    .column_is_null = sq_column_is_null,
    .column_int64 = sq_column_int64,
    .column_text = sq_column_text,
    .column_blob = sq_column_blob,
    .changes = sq_changes,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .in_transaction = sq_in_transaction,
    .defer_constraints = sq_defer_constraints,
    .set_busy_timeout = sq_set_busy_timeout,
    .set_durable = sq_set_durable,
    .schema_version = sq_schema_version,
    .set_schema_version = sq_set_schema_version,
};

/* Switches to WAL. Another process switching the same file at the same moment holds a lock
 * the busy handler does not wait for, so a busy answer is retried for about a second. */
static int
use_wal(pt_db *db)
{
    int rc = SQLITE_BUSY;

    for (int attempt = 0; attempt < 50 && (rc & 0xff) == SQLITE_BUSY; attempt++) {
        struct timespec nap = {0, 20 * 1000 * 1000};
        rc = sqlite3_exec(H(db), "PRAGMA journal_mode = WAL", NULL, NULL, NULL);
        if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED)
            nanosleep(&nap, NULL);
        else
            break;
    }
    return rc == SQLITE_OK ? 0 : fail(db, sqlite3_extended_errcode(H(db)));
}

/* One integer from a PRAGMA; 0 or a pt_err. */
static int
pragma_int(pt_db *db, const char *sql, int64_t *v)
{
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(H(db), sql, -1, &s, NULL);

    if (rc == SQLITE_OK)
        rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *v = sqlite3_column_int64(s, 0);
        rc = 0;
    } else {
        rc = fail(db, sqlite3_extended_errcode(H(db)));
    }
    sqlite3_finalize(s);
    return rc;
}

/* Checks an existing file through SQLite's own descriptor (opening the file a second time in
 * this process and closing it would drop the POSIX locks of every other connection to it):
 * readable as a database, not shorter than its header says unless a WAL holds the rest, and
 * with PT_DB_VERSIONED a schema version. Returns 0 or a pt_err with a reason in err. */
static int
check_existing(pt_db *db, const char *path, int flags, char *err, size_t errsz)
{
    char wal[4200];
    struct stat sb, wsb;
    int64_t version = 0, pages = 0, psize = 0;
    int wal_has_pages, rc;

    rc = pragma_int(db, "PRAGMA user_version", &version);
    if (rc == 0)
        rc = pragma_int(db, "PRAGMA page_count", &pages);
    if (rc == 0)
        rc = pragma_int(db, "PRAGMA page_size", &psize);
    if (rc != 0) {
        snprintf(err, errsz, "%s is not a database (%s)", path, db->err);
        return rc == PT_EUNAVAIL ? rc : PT_EDB;
    }
    snprintf(wal, sizeof wal, "%s-wal", path);
    wal_has_pages = stat(wal, &wsb) == 0 && wsb.st_size > 0;
    if (wal_has_pages || stat(path, &sb) != 0)
        return 0;
    if (pages * psize > (int64_t)sb.st_size) {
        snprintf(err, errsz, "%s is not a database (truncated: %lld of %lld bytes)", path,
                 (long long)sb.st_size, (long long)(pages * psize));
        return PT_EDB;
    }
    if ((flags & PT_DB_VERSIONED) != 0 && version == 0) {
        snprintf(err, errsz, "%s has no schema version", path);
        return PT_EINVAL;
    }
    return 0;
}

int
pt_db_open_sqlite(const char *path, int flags, int busy_ms, pt_db **out, char *err, size_t errsz)
{
    int oflags = SQLITE_OPEN_NOMUTEX;
    struct stat sb;
    sq_db *db;
    int rc, existed = stat(path, &sb) == 0 && sb.st_size > 0;

    *out = NULL;
    oflags |= (flags & PT_DB_READONLY) != 0 ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
    if ((flags & PT_DB_CREATE) != 0)
        oflags |= SQLITE_OPEN_CREATE;
    db = calloc(1, sizeof *db);
    if (db == NULL) {
        snprintf(err, errsz, "out of memory");
        return PT_ENOMEM;
    }
    db->base.drv = &sqlite_driver;
    rc = sqlite3_open_v2(path, &db->h, oflags, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errsz, "cannot open %s: %s", path,
                 db->h != NULL ? sqlite3_errmsg(db->h) : "out of memory");
        rc = map_err(rc);
        goto fail;
    }
    sqlite3_extended_result_codes(db->h, 1);
    sqlite3_busy_timeout(db->h, busy_ms);
    if (existed) {
        rc = check_existing(&db->base, path, flags, err, errsz);
        if (rc != 0)
            goto fail;
    }
    rc = (flags & PT_DB_READONLY) != 0 ? 0 : use_wal(&db->base);
    if (rc == 0)
        rc = sq_exec(&db->base, "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON");
    if (rc != 0) {
        snprintf(err, errsz, "%s: %s", path, db->base.err);
        goto fail;
    }
    *out = &db->base;
    return 0;
fail:
    sq_close(&db->base);
    return rc;
}
