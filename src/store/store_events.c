/* store_events.c - the webhook event log (store_events.h) over the SQL driver: table `events`
 * of DATA/warehouse/dw/webhooks.db on the embedded install. */
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

#include "core/err.h"
#include "core/log.h"
#include "store/db.h"

#define BUSY_TIMEOUT_MS 5000

static const char table_sql[] =
    "CREATE TABLE IF NOT EXISTS events("
    "  id {id},"
    "  received_at TEXT NOT NULL,"
    "  source TEXT NOT NULL,"
    "  method TEXT NOT NULL,"
    "  path TEXT NOT NULL,"
    "  query_string TEXT NOT NULL,"
    "  headers TEXT NOT NULL,"
    "  content_type TEXT,"
    "  body TEXT NOT NULL,"
    "  body_base64 BIGINT NOT NULL DEFAULT 0,"
    "  remote_addr TEXT,"
    "  status TEXT NOT NULL,"
    "  attempts BIGINT NOT NULL DEFAULT 0,"
    "  last_error TEXT,"
    "  dedup_key TEXT,"
    "  next_attempt_at BIGINT NOT NULL DEFAULT 0);"
    "CREATE UNIQUE INDEX IF NOT EXISTS events_dedup ON events(source, dedup_key);"
    "CREATE INDEX IF NOT EXISTS events_pending ON events(status, next_attempt_at);";

/* The columns pt_event reads, in its order. */
#define EVENT_COLS                                                                                 \
    "id, received_at, source, method, path, query_string, headers, content_type, body, "           \
    "body_base64, remote_addr, attempts, status, last_error, dedup_key, next_attempt_at"

struct pt_events {
    pt_db *db;
    pt_db_stmt *insert, *find_dup, *claim, *finish, *expire, *get;
    int lock_fd; /* DATA/warehouse/dw/webhooks.lock, held from begin to commit; -1: none */
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

/* Opens datadir's events database with its table. */
static int
open_db(const char *datadir, pt_db **out, char *err, size_t errsz)
{
    char path[4096];
    pt_db *db = NULL;
    int rc;

    snprintf(path, sizeof path, "%s/warehouse/dw", datadir);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/warehouse/dw/webhooks.db", datadir);
    rc = pt_db_open_sqlite(path, PT_DB_CREATE, BUSY_TIMEOUT_MS, &db, err, errsz);
    if (rc != 0) {
        char why[512];
        snprintf(why, sizeof why, "%s", err);
        snprintf(err, errsz, "webhook inbox %s", why);
        return PT_EDB;
    }
    rc = pt_db_exec(db, table_sql);
    if (rc != 0) {
        snprintf(err, errsz, "webhook inbox %s: %s", path, pt_db_errmsg(db));
        pt_db_close(db);
        return PT_EDB;
    }
    *out = db;
    return 0;
}

int
pt_events_prepare(const char *datadir, char *err, size_t errsz)
{
    pt_db *db = NULL;
    int rc = open_db(datadir, &db, err, errsz);

    pt_db_close(db);
    return rc;
}

int
pt_events_open(const char *datadir, pt_events **out, char *err, size_t errsz)
{
    static const struct {
        size_t off;
        const char *sql;
    } stmts[] = {
        {offsetof(pt_events, insert),
         "INSERT INTO events(received_at, source, method, path, query_string, headers,"
         " content_type, body, body_base64, remote_addr, status, dedup_key)"
         " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) RETURNING id"},
        {offsetof(pt_events, find_dup),
         "SELECT id FROM events WHERE source = ?1 AND dedup_key = ?2"},
        {offsetof(pt_events, claim),
         "UPDATE events SET status = 'processing', attempts = attempts + 1,"
         " next_attempt_at = ?2 WHERE id = (SELECT id FROM events"
         " WHERE status IN ('pending', 'processing') AND next_attempt_at <= ?1"
         " AND attempts < ?3 ORDER BY id LIMIT 1) RETURNING " EVENT_COLS},
        {offsetof(pt_events, finish),
         "UPDATE events SET status = ?1, last_error = ?2, next_attempt_at = ?3"
         " WHERE id = ?4 AND attempts = ?5 AND status = 'processing'"},
        {offsetof(pt_events, expire),
         "UPDATE events SET status = 'failed', last_error ="
         " coalesce(last_error || '; ', '') ||"
         " 'the worker processing it stopped before it finished'"
         " WHERE status = 'processing' AND next_attempt_at <= ?1 AND attempts >= ?2"},
        {offsetof(pt_events, get), "SELECT " EVENT_COLS " FROM events WHERE id = ?1"},
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
    rc = open_db(datadir, &ev->db, err, errsz);
    if (rc != 0)
        goto fail;
    for (size_t i = 0; i < sizeof stmts / sizeof stmts[0]; i++) {
        pt_db_stmt **s = (pt_db_stmt **)((char *)ev + stmts[i].off);
        rc = pt_db_prepare_persistent(ev->db, stmts[i].sql, s);
        if (rc != 0) {
            snprintf(err, errsz, "webhook inbox: %s", pt_db_errmsg(ev->db));
            goto fail;
        }
    }
    /* Writers of other workers wait for this lock in the kernel, and wake the moment it is
     * free; SQLite's own busy handler sleeps in growing steps (up to 100 ms) instead, which
     * showed up as latency spikes under load. */
    snprintf(lock, sizeof lock, "%s/warehouse/dw/webhooks.lock", datadir);
    ev->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (ev->lock_fd < 0)
        pt_log_warn("webhook inbox: cannot open %s (%s); writers will rely on SQLite's locking",
                    lock, strerror(errno));
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
    pt_db_finalize(ev->insert);
    pt_db_finalize(ev->find_dup);
    pt_db_finalize(ev->claim);
    pt_db_finalize(ev->finish);
    pt_db_finalize(ev->expire);
    pt_db_finalize(ev->get);
    pt_db_close(ev->db);
    if (ev->lock_fd >= 0)
        close(ev->lock_fd);
    free(ev);
}

static void
unlock(pt_events *ev)
{
    if (ev->lock_fd >= 0)
        flock(ev->lock_fd, LOCK_UN);
}

int
pt_events_begin(pt_events *ev)
{
    int rc;

    if (ev->lock_fd >= 0)
        while (flock(ev->lock_fd, LOCK_EX) != 0 && errno == EINTR)
            ;
    rc = pt_db_begin(ev->db);
    if (rc != 0) {
        unlock(ev);
        return fail(ev, rc, "cannot begin a transaction");
    }
    return 0;
}

static int
bind_str(pt_db_stmt *s, int i, pt_str v)
{
    return pt_db_bind_text(s, i, v.p != NULL ? v.p : "", v.n);
}

int
pt_events_append(pt_events *ev, const pt_event_rec *rec, const char *received_at, int64_t *id,
                 int *duplicate)
{
    pt_db_stmt *s = ev->insert;
    int rc;

    *id = 0;
    *duplicate = 0;
    if (rec->dedup_key != NULL) {
        pt_db_bind_text(ev->find_dup, 1, rec->source, (size_t)-1);
        pt_db_bind_text(ev->find_dup, 2, rec->dedup_key, (size_t)-1);
        rc = pt_db_step(ev->find_dup);
        if (rc == PT_DB_ROW) {
            *id = pt_db_column_int64(ev->find_dup, 0);
            *duplicate = 1;
        }
        pt_db_reset(ev->find_dup);
        if (rc == PT_DB_ROW)
            return 0;
        if (rc != PT_DB_DONE)
            return fail(ev, rc, "cannot look up a delivery id");
    }
    rc = pt_db_bind_text(s, 1, received_at, (size_t)-1);
    if (rc == 0)
        rc = pt_db_bind_text(s, 2, rec->source, (size_t)-1);
    if (rc == 0)
        rc = bind_str(s, 3, rec->method);
    if (rc == 0)
        rc = bind_str(s, 4, rec->path);
    if (rc == 0)
        rc = bind_str(s, 5, rec->query_string);
    if (rc == 0)
        rc = bind_str(s, 6, rec->headers_json);
    if (rc == 0)
        rc = rec->content_type.n > 0 ? bind_str(s, 7, rec->content_type) : pt_db_bind_null(s, 7);
    if (rc == 0)
        rc = bind_str(s, 8, rec->body);
    if (rc == 0)
        rc = pt_db_bind_int64(s, 9, rec->body_base64);
    if (rc == 0)
        rc = bind_str(s, 10, rec->remote_addr);
    if (rc == 0)
        rc = pt_db_bind_text(s, 11, rec->status != NULL ? rec->status : "received", (size_t)-1);
    if (rc == 0)
        rc = rec->dedup_key != NULL ? pt_db_bind_text(s, 12, rec->dedup_key, (size_t)-1)
                                    : pt_db_bind_null(s, 12);
    if (rc == 0)
        rc = pt_db_step(s);
    if (rc == PT_DB_ROW) {
        *id = pt_db_column_int64(s, 0);
        rc = pt_db_run(s);
    } else if (rc == PT_DB_DONE) {
        rc = PT_EDB; /* RETURNING always gives a row */
    }
    if (rc != 0)
        fail(ev, rc, "cannot store an event");
    pt_db_reset(s);
    return rc;
}

int
pt_events_commit(pt_events *ev)
{
    int rc = pt_db_commit(ev->db);

    if (rc != 0) {
        fail(ev, rc, "commit failed");
        pt_db_rollback(ev->db);
    }
    unlock(ev);
    return rc;
}

void
pt_events_rollback(pt_events *ev)
{
    pt_db_rollback(ev->db);
    unlock(ev);
}

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
    rc = pt_db_prepare(ev->db,
                       "SELECT count(*) FROM events WHERE status IN ('pending', 'processing')", &s);
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
