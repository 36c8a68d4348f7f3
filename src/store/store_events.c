/* store_events.c - the webhook event log (store_events.h) over the SQL driver: table `events`
 * of DATA/warehouse/dw/webhooks.db on the embedded install, `webhooks.events` of the store's
 * database when the metadata store is PostgreSQL. */

/*
 * Design notes
 *
 * One code path above the driver: the same statements run on SQLite and PostgreSQL, with the
 * table's name (`events`, or `"<schema>".events` on PostgreSQL) put in when the log opens and
 * `{skip_locked}` supplied by the driver.
 *
 * Appending: one multi-row INSERT ... ON CONFLICT DO NOTHING RETURNING per batch of up to
 * PT_EVENTS_BATCH_MAX events, run on its own (autocommit): one statement, one round trip and
 * one durable commit (SQLite: WAL, synchronous=FULL; PostgreSQL: synchronous_commit on) for
 * the whole batch, all or none. The unique index on (source, dedup_key) drops a repeated
 * delivery, whichever node or worker stored the first one; a dropped row is then looked up to
 * answer with the first event's id. Rows come back in insertion order of their ids, which is
 * the order of the VALUES, so each inserted row is matched to its record by walking both.
 * SQLite writers of other workers queue on a file lock (see pt_events_open); PostgreSQL
 * writers do not queue at all: the index, not a lock, keeps them apart.
 *
 * Claiming: one UPDATE ... WHERE id = (SELECT ... ORDER BY id LIMIT 1 {skip_locked})
 * RETURNING. SQLite runs one writer at a time, so the statement is atomic as it stands; on
 * PostgreSQL FOR UPDATE SKIP LOCKED makes claimers on every node pass over a row another one
 * is claiming instead of waiting for it or claiming it twice. The lease is next_attempt_at: a
 * claimer that dies leaves a row in `processing` whose lease runs out, and any claimer on any
 * node takes it again (attempts counted).
 */
#include "store/store_events.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "store/db.h"
#include "store/store.h"

#define BUSY_TIMEOUT_MS 5000
/* Values one appended row binds (the INSERT's columns). */
#define ROW_PARAMS 12

/* The table, its indexes and (PostgreSQL) its schema; %1$s is the table's name as SQL, %2$s
 * the schema's or "" (SQLite: the file is the schema). */
#define TABLE_SQL                                                                                  \
    "%2$s"                                                                                         \
    "CREATE TABLE IF NOT EXISTS %1$s("                                                             \
    "  id {id},"                                                                                   \
    "  received_at TEXT NOT NULL,"                                                                 \
    "  source TEXT NOT NULL,"                                                                      \
    "  method TEXT NOT NULL,"                                                                      \
    "  path TEXT NOT NULL,"                                                                        \
    "  query_string TEXT NOT NULL,"                                                                \
    "  headers TEXT NOT NULL,"                                                                     \
    "  content_type TEXT,"                                                                         \
    "  body TEXT NOT NULL,"                                                                        \
    "  body_base64 BIGINT NOT NULL DEFAULT 0,"                                                     \
    "  remote_addr TEXT,"                                                                          \
    "  status TEXT NOT NULL,"                                                                      \
    "  attempts BIGINT NOT NULL DEFAULT 0,"                                                        \
    "  last_error TEXT,"                                                                           \
    "  dedup_key TEXT,"                                                                            \
    "  next_attempt_at BIGINT NOT NULL DEFAULT 0);"                                                \
    "CREATE UNIQUE INDEX IF NOT EXISTS events_dedup ON %1$s(source, dedup_key);"                   \
    "CREATE INDEX IF NOT EXISTS events_pending ON %1$s(status, next_attempt_at);"

/* The columns pt_event reads, in its order. */
#define EVENT_COLS                                                                                 \
    "id, received_at, source, method, path, query_string, headers, content_type, body, "           \
    "body_base64, remote_addr, attempts, status, last_error, dedup_key, next_attempt_at"

struct pt_events {
    pt_db *db;
    char table[PT_EVENTS_SCHEMA_MAX + 16]; /* the table's name as SQL */
    pt_db_stmt *find_dup, *claim, *finish, *expire, *get;
    /* The INSERT of n rows, prepared on first use, at inserts[n - 1]. */
    pt_db_stmt *inserts[PT_EVENTS_BATCH_MAX];
    int lock_fd; /* SQLite: DATA/warehouse/dw/webhooks.lock, held while appending; -1: none */
    char err[512];
};

static int
fail(pt_events *ev, int rc, const char *what)
{
    snprintf(ev->err, sizeof ev->err, "webhook events: %s: %s", what, pt_db_errmsg(ev->db));
    return rc;
}

const char *
pt_events_errmsg(const pt_events *ev)
{
    return ev->err;
}

int
pt_events_strict_text(const pt_events *ev)
{
    return strcmp(pt_db_engine(ev->db), "postgres") == 0;
}

int
pt_events_writers(const pt_events *ev)
{
    return pt_events_strict_text(ev) ? 2 : 1;
}

void
pt_event_clear(pt_event *e)
{
    if (e == NULL)
        return;
    free(e->received_at);
    free(e->source);
    free(e->method);
    free(e->path);
    free(e->query_string);
    free(e->headers_json);
    free(e->content_type);
    free(e->body);
    free(e->remote_addr);
    free(e->status);
    free(e->last_error);
    free(e->dedup_key);
    memset(e, 0, sizeof *e);
}

int
pt_events_schema_of(const char *store_schema, char *out, size_t outsz)
{
    int n;

    if (store_schema == NULL || store_schema[0] == '\0' || strchr(store_schema, '"') != NULL)
        return PT_EINVAL;
    if (strcmp(store_schema, "public") == 0)
        n = snprintf(out, outsz, "webhooks");
    else
        n = snprintf(out, outsz, "%s_webhooks", store_schema);
    return n > 0 && (size_t)n < outsz && n <= PT_EVENTS_SCHEMA_MAX ? 0 : PT_EINVAL;
}

/* A copy of text column i (NUL-terminated, "" for NULL), its length in *len (may be NULL). */
static char *
col(pt_db_stmt *s, int i, size_t *len, int *oom)
{
    size_t n = 0;
    const char *p = pt_db_column_text(s, i, &n);
    char *d = malloc(n + 1);

    if (d == NULL) {
        *oom = 1;
        return NULL;
    }
    memcpy(d, p, n);
    d[n] = '\0';
    if (len != NULL)
        *len = n;
    return d;
}

/* col, or NULL (without *oom) for SQL NULL. */
static char *
col_null(pt_db_stmt *s, int i, int *oom)
{
    return pt_db_column_is_null(s, i) ? NULL : col(s, i, NULL, oom);
}

/* Fills e (zeroed) from a row of EVENT_COLS. Returns 0 or PT_ENOMEM (e half filled). */
static int
read_event(pt_db_stmt *s, pt_event *e)
{
    int oom = 0;

    e->id = pt_db_column_int64(s, 0);
    e->received_at = col(s, 1, NULL, &oom);
    e->source = col(s, 2, NULL, &oom);
    e->method = col(s, 3, NULL, &oom);
    e->path = col(s, 4, NULL, &oom);
    e->query_string = col(s, 5, NULL, &oom);
    e->headers_json = col(s, 6, NULL, &oom);
    e->content_type = col_null(s, 7, &oom);
    e->body = col(s, 8, &e->body_len, &oom);
    e->body_base64 = (int)pt_db_column_int64(s, 9);
    e->remote_addr = col(s, 10, NULL, &oom);
    e->attempts = (int)pt_db_column_int64(s, 11);
    e->status = col(s, 12, NULL, &oom);
    e->last_error = col_null(s, 13, &oom);
    e->dedup_key = col_null(s, 14, &oom);
    e->next_attempt_at = pt_db_column_int64(s, 15);
    return oom ? PT_ENOMEM : 0;
}

/* Opens the database the log of datadir lives in: the store's PostgreSQL database when
 * datadir has a store.dsn (the table's name in ev->table names its schema), else
 * DATA/warehouse/dw/webhooks.db. */
static int
open_db(pt_events *ev, const char *datadir, char *err, size_t errsz)
{
    char path[4096], schema[PT_EVENTS_SCHEMA_MAX + 1];
    char *dsn = NULL;
    pt_db_stmt *s = NULL;
    int rc = pt_store_dsn_load(datadir, &dsn, err, errsz);

    if (rc != 0) {
        char why[512];
        snprintf(why, sizeof why, "%s", err);
        snprintf(err, errsz, "webhook inbox: %s", why);
        return PT_EDB;
    }
    if (dsn == NULL) {
        snprintf(ev->table, sizeof ev->table, "events");
        snprintf(path, sizeof path, "%s/warehouse/dw", datadir);
        mkdir(path, 0700);
        snprintf(path, sizeof path, "%s/warehouse/dw/webhooks.db", datadir);
        rc = pt_db_open_sqlite(path, PT_DB_CREATE, BUSY_TIMEOUT_MS, &ev->db, err, errsz);
        if (rc != 0) {
            char why[512];
            snprintf(why, sizeof why, "%s", err);
            snprintf(err, errsz, "webhook inbox %s", why);
            return PT_EDB;
        }
        return 0;
    }
    rc = pt_db_open_pg(dsn, 0, BUSY_TIMEOUT_MS, &ev->db, err, errsz);
    free(dsn);
    if (rc != 0) {
        char why[512];
        snprintf(why, sizeof why, "%s", err);
        snprintf(err, errsz, "webhook inbox: %s", why);
        return rc;
    }
    /* The events sit beside the store's tables, in a schema of their own that the warehouse
     * can name (pt_events_schema_of). */
    rc = pt_db_prepare(ev->db, "SELECT current_schema()", &s);
    if (rc == 0 && (rc = pt_db_step(s)) == PT_DB_ROW)
        rc = pt_events_schema_of(pt_db_column_text(s, 0, NULL), schema, sizeof schema);
    else if (rc == PT_DB_DONE)
        rc = PT_EDB;
    if (rc == PT_EINVAL)
        snprintf(err, errsz,
                 "webhook inbox: the store's schema '%s' makes no schema name for "
                 "the events (at most %d characters, no '\"')",
                 pt_db_column_text(s, 0, NULL), PT_EVENTS_SCHEMA_MAX - 9);
    else if (rc != 0)
        snprintf(err, errsz, "webhook inbox: %s", pt_db_errmsg(ev->db));
    pt_db_finalize(s);
    if (rc == 0)
        snprintf(ev->table, sizeof ev->table, "\"%s\".events", schema);
    return rc;
}

/* Creates the table (and on PostgreSQL its schema) if needed, under the store's write lock
 * there so that nodes and workers starting at once do not race on the DDL. */
static int
create_table(pt_events *ev, char *err, size_t errsz)
{
    char sql[2048], schema[PT_EVENTS_SCHEMA_MAX + 40] = "";
    int pg = strcmp(pt_db_engine(ev->db), "postgres") == 0;
    int rc;

    if (pg)
        snprintf(schema, sizeof schema, "CREATE SCHEMA IF NOT EXISTS %.*s;",
                 (int)(strchr(ev->table + 1, '"') - ev->table + 1), ev->table);
    snprintf(sql, sizeof sql, TABLE_SQL, ev->table, schema);
    rc = pg ? pt_db_begin(ev->db) : 0;
    if (rc == 0)
        rc = pt_db_exec(ev->db, sql);
    if (rc == 0 && pg)
        rc = pt_db_commit(ev->db);
    if (rc != 0) {
        snprintf(err, errsz, "webhook inbox %s: %s", ev->table, pt_db_errmsg(ev->db));
        pt_db_rollback(ev->db);
    }
    return rc;
}

int
pt_events_prepare(const char *datadir, char *err, size_t errsz)
{
    pt_events *ev = NULL;
    int rc = pt_events_open(datadir, &ev, err, errsz);

    pt_events_close(ev);
    return rc;
}

/* Prepares one statement of the log: sql with every %s the table's name. */
static int
prepare(pt_events *ev, const char *sql, pt_db_stmt **out)
{
    char buf[1024];
    size_t n = 0;

    /* Only %s occurs in these statements: put the table's name in each. */
    for (const char *p = sql; *p != '\0' && n + sizeof ev->table < sizeof buf; p++) {
        if (p[0] == '%' && p[1] == 's') {
            n += (size_t)snprintf(buf + n, sizeof buf - n, "%s", ev->table);
            p++;
        } else {
            buf[n++] = *p;
        }
    }
    buf[n] = '\0';
    return pt_db_prepare_persistent(ev->db, buf, out);
}

int
pt_events_open(const char *datadir, pt_events **out, char *err, size_t errsz)
{
    static const struct {
        size_t off;
        const char *sql;
    } stmts[] = {
        {offsetof(pt_events, find_dup), "SELECT id FROM %s WHERE source = ?1 AND dedup_key = ?2"},
        {offsetof(pt_events, claim),
         "UPDATE %s SET status = 'processing', attempts = attempts + 1,"
         " next_attempt_at = ?2 WHERE id = (SELECT id FROM %s"
         " WHERE status IN ('pending', 'processing') AND next_attempt_at <= ?1"
         " AND attempts < ?3 ORDER BY id LIMIT 1 {skip_locked}) RETURNING " EVENT_COLS},
        {offsetof(pt_events, finish),
         "UPDATE %s SET status = ?1, last_error = ?2, next_attempt_at = ?3"
         " WHERE id = ?4 AND attempts = ?5 AND status = 'processing'"},
        {offsetof(pt_events, expire),
         "UPDATE %s SET status = 'failed', last_error ="
         " coalesce(last_error || '; ', '') ||"
         " 'the worker processing it stopped before it finished'"
         " WHERE status = 'processing' AND next_attempt_at <= ?1 AND attempts >= ?2"},
        {offsetof(pt_events, get), "SELECT " EVENT_COLS " FROM %s WHERE id = ?1"},
    };
    char lock[4096];
    pt_events *ev;
    int rc;

    *out = NULL;
    ev = calloc(1, sizeof *ev);
    if (ev == NULL) {
        snprintf(err, errsz, "out of memory");
        return PT_ENOMEM;
    }
    ev->lock_fd = -1;
    rc = open_db(ev, datadir, err, errsz);
    if (rc == 0)
        rc = create_table(ev, err, errsz);
    if (rc != 0)
        goto fail;
    for (size_t i = 0; i < sizeof stmts / sizeof stmts[0]; i++) {
        pt_db_stmt **s = (pt_db_stmt **)((char *)ev + stmts[i].off);
        rc = prepare(ev, stmts[i].sql, s);
        if (rc != 0) {
            snprintf(err, errsz, "webhook inbox: %s", pt_db_errmsg(ev->db));
            goto fail;
        }
    }
    /* SQLite: writers of other workers wait for this lock in the kernel, and wake the moment
     * it is free; SQLite's own busy handler sleeps in growing steps (up to 100 ms) instead,
     * which showed up as latency spikes under load. */
    if (strcmp(pt_db_engine(ev->db), "sqlite") == 0) {
        snprintf(lock, sizeof lock, "%s/warehouse/dw/webhooks.lock", datadir);
        ev->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (ev->lock_fd < 0)
            pt_log_warn("webhook inbox: cannot open %s (%s); writers will rely on SQLite's "
                        "locking",
                        lock, strerror(errno));
    }
    *out = ev;
    return 0;
fail:
    pt_events_close(ev);
    return rc;
}

void
pt_events_close(pt_events *ev)
{
    if (ev == NULL)
        return;
    pt_db_finalize(ev->find_dup);
    pt_db_finalize(ev->claim);
    pt_db_finalize(ev->finish);
    pt_db_finalize(ev->expire);
    pt_db_finalize(ev->get);
    for (size_t i = 0; i < PT_EVENTS_BATCH_MAX; i++)
        pt_db_finalize(ev->inserts[i]);
    pt_db_close(ev->db);
    if (ev->lock_fd >= 0)
        close(ev->lock_fd);
    free(ev);
}

/* ---- appending ----------------------------------------------------------------------------- */

/* The INSERT of n rows (1 <= n <= PT_EVENTS_BATCH_MAX), prepared once per size. */
static int
insert_stmt(pt_events *ev, size_t n, pt_db_stmt **out)
{
    pt_buf sql;
    int rc = 0;

    if (ev->inserts[n - 1] != NULL) {
        *out = ev->inserts[n - 1];
        return 0;
    }
    pt_buf_init(&sql, 0);
    rc = pt_buf_printf(&sql,
                       "INSERT INTO %s(received_at, source, method, path, query_string, headers,"
                       " content_type, body, body_base64, remote_addr, status, dedup_key) VALUES ",
                       ev->table);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        int b = (int)(i * ROW_PARAMS);
        rc = pt_buf_printf(&sql, "%s(?%d, ?%d, ?%d, ?%d, ?%d, ?%d, ?%d, ?%d, ?%d, ?%d, ?%d, ?%d)",
                           i > 0 ? ", " : "", b + 1, b + 2, b + 3, b + 4, b + 5, b + 6, b + 7,
                           b + 8, b + 9, b + 10, b + 11, b + 12);
    }
    if (rc == 0)
        rc = pt_buf_puts(&sql, " ON CONFLICT DO NOTHING RETURNING id, source, dedup_key");
    if (rc != 0) {
        pt_buf_free(&sql);
        snprintf(ev->err, sizeof ev->err, "webhook events: out of memory");
        return PT_ENOMEM;
    }
    rc = pt_db_prepare_persistent(ev->db, sql.data, &ev->inserts[n - 1]);
    pt_buf_free(&sql);
    if (rc != 0)
        return fail(ev, rc, "cannot prepare the insert");
    *out = ev->inserts[n - 1];
    return 0;
}

static int
bind_str(pt_db_stmt *s, int i, pt_str v)
{
    return pt_db_bind_text(s, i, v.p != NULL ? v.p : "", v.n);
}

/* Binds rec as row `row` (0-based) of an INSERT. */
static int
bind_row(pt_db_stmt *s, int row, const pt_event_rec *rec, const char *received_at)
{
    int b = row * ROW_PARAMS, rc;

    rc = pt_db_bind_text(s, b + 1, received_at, (size_t)-1);
    if (rc == 0)
        rc = pt_db_bind_text(s, b + 2, rec->source, (size_t)-1);
    if (rc == 0)
        rc = bind_str(s, b + 3, rec->method);
    if (rc == 0)
        rc = bind_str(s, b + 4, rec->path);
    if (rc == 0)
        rc = bind_str(s, b + 5, rec->query_string);
    if (rc == 0)
        rc = bind_str(s, b + 6, rec->headers_json);
    if (rc == 0)
        rc = rec->content_type.n > 0 ? bind_str(s, b + 7, rec->content_type)
                                     : pt_db_bind_null(s, b + 7);
    if (rc == 0)
        rc = bind_str(s, b + 8, rec->body);
    if (rc == 0)
        rc = pt_db_bind_int64(s, b + 9, rec->body_base64);
    if (rc == 0)
        rc = bind_str(s, b + 10, rec->remote_addr);
    if (rc == 0)
        rc = pt_db_bind_text(s, b + 11, rec->status != NULL ? rec->status : "received", (size_t)-1);
    if (rc == 0)
        rc = rec->dedup_key != NULL ? pt_db_bind_text(s, b + 12, rec->dedup_key, (size_t)-1)
                                    : pt_db_bind_null(s, b + 12);
    return rc;
}

/* Does the current row of s (id, source, dedup_key) hold rec? */
static int
row_is(pt_db_stmt *s, const pt_event_rec *rec)
{
    if (rec->dedup_key == NULL)
        return pt_db_column_is_null(s, 2);
    return !pt_db_column_is_null(s, 2) &&
           strcmp(pt_db_column_text(s, 2, NULL), rec->dedup_key) == 0 &&
           strcmp(pt_db_column_text(s, 1, NULL), rec->source) == 0;
}

/* The id of the stored event with rec's delivery id into *id. */
static int
find_dup(pt_events *ev, const pt_event_rec *rec, int64_t *id)
{
    int rc;

    pt_db_bind_text(ev->find_dup, 1, rec->source, (size_t)-1);
    pt_db_bind_text(ev->find_dup, 2, rec->dedup_key, (size_t)-1);
    rc = pt_db_step(ev->find_dup);
    if (rc == PT_DB_ROW) {
        *id = pt_db_column_int64(ev->find_dup, 0);
        rc = 0;
    } else if (rc == PT_DB_DONE) {
        snprintf(ev->err, sizeof ev->err,
                 "webhook events: delivery '%s' was neither stored nor found", rec->dedup_key);
        rc = PT_EDB;
    } else {
        fail(ev, rc, "cannot look up a delivery id");
    }
    pt_db_reset(ev->find_dup);
    return rc;
}

int
pt_events_store(pt_events *ev, const pt_event_rec *recs, size_t n, const char *received_at,
                int64_t *ids, int *duplicates)
{
    pt_db_stmt *s = NULL;
    size_t next = 0;
    int rc, mismatch = 0;

    if (n == 0 || n > PT_EVENTS_BATCH_MAX) {
        snprintf(ev->err, sizeof ev->err, "webhook events: a batch holds 1 to %d events",
                 PT_EVENTS_BATCH_MAX);
        return PT_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        ids[i] = 0;
        duplicates[i] = 0;
    }
    rc = insert_stmt(ev, n, &s);
    if (rc != 0)
        return rc;
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = bind_row(s, (int)i, &recs[i], received_at);
    if (rc != 0) {
        fail(ev, rc, "cannot store an event");
        pt_db_reset(s);
        return rc;
    }
    if (ev->lock_fd >= 0)
        while (flock(ev->lock_fd, LOCK_EX) != 0 && errno == EINTR)
            ;
    /* The first step runs the whole statement (and commits it); the rows come in the order of
     * their ids, which is the order of recs: a record that the walk passes is a duplicate. */
    while ((rc = pt_db_step(s)) == PT_DB_ROW) {
        while (next < n && !row_is(s, &recs[next]))
            duplicates[next++] = 1;
        if (next == n) {
            rc = PT_EDB;
            mismatch = 1;
            snprintf(ev->err, sizeof ev->err, "webhook events: a stored row matches no event");
            break;
        }
        ids[next++] = pt_db_column_int64(s, 0);
    }
    if (ev->lock_fd >= 0)
        flock(ev->lock_fd, LOCK_UN);
    if (rc < 0 && !mismatch)
        fail(ev, rc, "cannot store the events");
    pt_db_reset(s);
    if (rc < 0)
        return rc;
    while (next < n)
        duplicates[next++] = 1;
    for (size_t i = 0; i < n; i++) {
        if (!duplicates[i])
            continue;
        if (recs[i].dedup_key == NULL) {
            snprintf(ev->err, sizeof ev->err, "webhook events: an event was not stored");
            return PT_EDB;
        }
        rc = find_dup(ev, &recs[i], &ids[i]);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* ---- processing -------------------------------------------------------------------------- */

int
pt_events_expire(pt_events *ev, int64_t now, int max_attempts)
{
    int rc;

    pt_db_bind_int64(ev->expire, 1, now);
    pt_db_bind_int64(ev->expire, 2, max_attempts);
    rc = pt_db_run(ev->expire);
    pt_db_reset(ev->expire);
    return rc != 0 ? fail(ev, rc, "cannot expire claims") : 0;
}

int
pt_events_claim(pt_events *ev, int64_t now, int64_t lease_until, int max_attempts, pt_event *out)
{
    pt_db_stmt *s = ev->claim;
    int rc;

    memset(out, 0, sizeof *out);
    pt_db_bind_int64(s, 1, now);
    pt_db_bind_int64(s, 2, lease_until);
    pt_db_bind_int64(s, 3, max_attempts);
    rc = pt_db_step(s);
    if (rc == PT_DB_ROW) {
        rc = read_event(s, out);
        /* Step to the end so that the UPDATE completes (and commits) now. */
        if (pt_db_run(s) != 0 && rc == 0)
            rc = fail(ev, PT_EDB, "cannot claim an event");
        if (rc == PT_ENOMEM)
            snprintf(ev->err, sizeof ev->err, "webhook events: out of memory");
        if (rc != 0)
            pt_event_clear(out);
        else
            rc = 1;
    } else if (rc != PT_DB_DONE) {
        fail(ev, rc, "cannot claim an event");
    }
    pt_db_reset(s);
    return rc;
}

int
pt_events_finish(pt_events *ev, int64_t id, int attempts, const char *status, const char *error,
                 int64_t next_attempt_at, int *changed)
{
    pt_db_stmt *s = ev->finish;
    int rc;

    pt_db_bind_text(s, 1, status, (size_t)-1);
    if (error != NULL)
        pt_db_bind_text(s, 2, error, (size_t)-1);
    else
        pt_db_bind_null(s, 2);
    pt_db_bind_int64(s, 3, next_attempt_at);
    pt_db_bind_int64(s, 4, id);
    pt_db_bind_int64(s, 5, attempts);
    rc = pt_db_run(s);
    if (changed != NULL)
        *changed = rc == 0 && pt_db_changes(ev->db) > 0;
    pt_db_reset(s);
    return rc != 0 ? fail(ev, rc, "cannot record its status") : 0;
}

int
pt_events_get(pt_events *ev, int64_t id, pt_event *out)
{
    pt_db_stmt *s = ev->get;
    int rc;

    memset(out, 0, sizeof *out);
    pt_db_bind_int64(s, 1, id);
    rc = pt_db_step(s);
    if (rc == PT_DB_ROW) {
        rc = read_event(s, out);
        if (rc != 0) {
            pt_event_clear(out);
            snprintf(ev->err, sizeof ev->err, "webhook events: out of memory");
        }
    } else if (rc == PT_DB_DONE) {
        snprintf(ev->err, sizeof ev->err, "no webhook event with id %lld", (long long)id);
        rc = PT_ENOTFOUND;
    } else {
        fail(ev, rc, "cannot read an event");
    }
    pt_db_reset(s);
    return rc;
}

int
pt_events_count_pending(pt_events *ev, int64_t *n)
{
    pt_db_stmt *s = NULL;
    int rc;

    *n = 0;
    rc = prepare(ev, "SELECT count(*) FROM %s WHERE status IN ('pending', 'processing')", &s);
    if (rc == 0) {
        rc = pt_db_step(s);
        if (rc == PT_DB_ROW) {
            *n = pt_db_column_int64(s, 0);
            rc = 0;
        }
    }
    pt_db_finalize(s);
    return rc != 0 ? fail(ev, PT_EDB, "cannot count pending events") : 0;
}
