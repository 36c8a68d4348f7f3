/* inbox.c - the durable webhook inbox of one worker (group commit into webhooks.events).
 *
 * Design notes
 * ------------
 * The promise to a sender is that an event answered 2xx is never lost. So the answer waits
 * for the event to be on disk, and the cost of getting it there (one fsync, about 200 µs on
 * the dev machine) is shared: the loop hands events to a writer thread, which takes every
 * event queued so far, writes them in one transaction and commits once (WAL with
 * synchronous=FULL: the commit returns after the WAL is fsynced). Under load, the queue fills
 * while the previous commit syncs, so batches grow with the load.
 *
 * The writer opens the schema file DATA/warehouse/dw/webhooks.db directly rather than
 * through the warehouse API: it needs its own connection, prepared statements kept across
 * transactions, and control of the transaction boundaries. The file is the same one the
 * embedded warehouse attaches as schema `webhooks`, so handlers read events with pq.
 *
 * Every worker has its own writer; writers of different workers take turns on SQLite's write
 * lock (busy timeout 5 s). A failed commit answers every event of the batch with an error
 * (503 for the sender, who will retry): nothing reported stored was lost.
 */
#include "server/inbox.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/json.h"
#include "core/log.h"

#define BUSY_TIMEOUT_MS 5000

const char pt_inbox_table_sql[] =
    "CREATE TABLE IF NOT EXISTS events("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  received_at TEXT NOT NULL,"
    "  source TEXT NOT NULL,"
    "  method TEXT NOT NULL,"
    "  path TEXT NOT NULL,"
    "  query_string TEXT NOT NULL,"
    "  headers TEXT NOT NULL,"
    "  content_type TEXT,"
    "  body TEXT NOT NULL,"
    "  body_base64 INTEGER NOT NULL DEFAULT 0,"
    "  remote_addr TEXT,"
    "  status TEXT NOT NULL,"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  last_error TEXT,"
    "  dedup_key TEXT,"
    "  next_attempt_at INTEGER NOT NULL DEFAULT 0);"
    "CREATE UNIQUE INDEX IF NOT EXISTS events_dedup ON events(source, dedup_key);"
    "CREATE INDEX IF NOT EXISTS events_pending ON events(status, next_attempt_at);";

struct pt_inbox {
    sqlite3 *db;
    sqlite3_stmt *insert;
    sqlite3_stmt *find_dup;
    pt_inbox_done_cb done;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pt_inbox_event *head, *tail; /* under mu */
    int stopping;                /* under mu */
    int running;                 /* the writer thread was started */
    int lock_fd;                 /* DATA/warehouse/dw/webhooks.lock, taken around each batch */
    pt_buf headers;              /* writer thread only: scratch for the headers JSON */
    pt_buf body64;               /* writer thread only: scratch for base64 bodies */
};

static int
utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        size_t len;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            len = 2;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (i + len > n)
            return 0;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += len;
    }
    return 1;
}

/* "x-github-event" -> "X-Github-Event", as handlers see header names. */
static void
canonical(const char *name, size_t n, char *out)
{
    int up = 1;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (up && c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        out[i] = c;
        up = c == '-';
    }
}

/* The request headers as a JSON object (repeated names joined with ", "). */
static int
headers_json(pt_buf *b, const pt_request *req)
{
    int rc = pt_buf_putc(b, '{');
    for (size_t i = 0; rc == 0 && i < req->nheaders; i++) {
        const pt_header *h = &req->headers[i];
        int seen = 0;
        for (size_t k = 0; k < i && !seen; k++)
            seen = req->headers[k].name.n == h->name.n &&
                   memcmp(req->headers[k].name.p, h->name.p, h->name.n) == 0;
        if (seen)
            continue; /* written with the first occurrence */
        char name[256];
        size_t nn = h->name.n < sizeof(name) ? h->name.n : sizeof(name);
        canonical(h->name.p, nn, name);
        if (b->len > 1)
            rc = pt_buf_puts(b, ", ");
        if (rc == 0)
            rc = pt_json_string(b, name, nn);
        if (rc == 0)
            rc = pt_buf_puts(b, ": ");
        /* Values of repeated headers, joined. */
        pt_buf v;
        pt_buf_init(&v, 0);
        for (size_t k = i; rc == 0 && k < req->nheaders; k++) {
            const pt_header *o = &req->headers[k];
            if (o->name.n != h->name.n || memcmp(o->name.p, h->name.p, h->name.n) != 0)
                continue;
            if (v.len > 0)
                rc = pt_buf_puts(&v, ", ");
            if (rc == 0)
                rc = pt_buf_append(&v, o->value.p, o->value.n);
        }
        if (rc == 0)
            rc = pt_json_string(b, v.data != NULL ? v.data : "", v.len);
        pt_buf_free(&v);
    }
    if (rc == 0)
        rc = pt_buf_putc(b, '}');
    return rc;
}

static void
bind_str(sqlite3_stmt *st, int i, pt_str s)
{
    sqlite3_bind_text(st, i, s.p != NULL ? s.p : "", (int)s.n, SQLITE_STATIC);
}

/* Writes one event inside the open transaction. Returns 0 or PT_EDB / PT_ENOMEM. */
static int
write_event(pt_inbox *ib, pt_inbox_event *ev, const char *received_at)
{
    const pt_request *r = ev->req;
    int rc;

    if (ev->dedup_key != NULL) {
        sqlite3_bind_text(ib->find_dup, 1, ev->source, -1, SQLITE_STATIC);
        sqlite3_bind_text(ib->find_dup, 2, ev->dedup_key, -1, SQLITE_STATIC);
        rc = sqlite3_step(ib->find_dup);
        if (rc == SQLITE_ROW) {
            ev->id = sqlite3_column_int64(ib->find_dup, 0);
            ev->duplicate = 1;
        }
        sqlite3_reset(ib->find_dup);
        sqlite3_clear_bindings(ib->find_dup);
        if (rc == SQLITE_ROW)
            return 0;
        if (rc != SQLITE_DONE)
            return PT_EDB;
    }

    pt_buf_reset(&ib->headers);
    if (headers_json(&ib->headers, r) != 0)
        return PT_ENOMEM;
    int b64 = !utf8_valid((const unsigned char *)r->body.p, r->body.n);
    sqlite3_stmt *st = ib->insert;
    sqlite3_bind_text(st, 1, received_at, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, ev->source, -1, SQLITE_STATIC);
    bind_str(st, 3, r->method);
    bind_str(st, 4, r->path);
    bind_str(st, 5, r->query);
    sqlite3_bind_text(st, 6, ib->headers.data, (int)ib->headers.len, SQLITE_STATIC);
    if (r->content_type.n > 0)
        bind_str(st, 7, r->content_type);
    else
        sqlite3_bind_null(st, 7);
    if (b64) {
        pt_buf_reset(&ib->body64);
        if (pt_buf_reserve(&ib->body64, 4 * ((r->body.n + 2) / 3) + 1) != 0)
            return PT_ENOMEM;
        int n = EVP_EncodeBlock((unsigned char *)ib->body64.data, (const unsigned char *)r->body.p,
                                (int)r->body.n);
        sqlite3_bind_text(st, 8, ib->body64.data, n, SQLITE_STATIC);
    } else {
        bind_str(st, 8, r->body);
    }
    sqlite3_bind_int(st, 9, b64);
    bind_str(st, 10, r->remote_addr);
    sqlite3_bind_text(st, 11, ev->status != NULL ? ev->status : "received", -1, SQLITE_STATIC);
    if (ev->dedup_key != NULL)
        sqlite3_bind_text(st, 12, ev->dedup_key, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 12);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_DONE)
        return PT_EDB;
    ev->id = sqlite3_last_insert_rowid(ib->db);
    return 0;
}

static void
now_iso(char out[32])
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%06ldZ", ts.tv_nsec / 1000);
}

/* Writes one batch in one transaction; fills every event's id/rc. */
static void
write_batch(pt_inbox *ib, pt_inbox_event *batch)
{
    char received_at[32];
    int failed = 0;
    now_iso(received_at);
    /* Writers of other workers wait here, in the kernel, and wake the moment the lock is
     * free; SQLite's own busy handler sleeps in growing steps (up to 100 ms) instead, which
     * showed up as latency spikes under load. */
    if (ib->lock_fd >= 0)
        while (flock(ib->lock_fd, LOCK_EX) != 0 && errno == EINTR)
            ;
    if (sqlite3_exec(ib->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        pt_log_error("webhook inbox: cannot begin a transaction: %s", sqlite3_errmsg(ib->db));
        failed = 1;
    }
    for (pt_inbox_event *ev = batch; ev != NULL && !failed; ev = ev->next) {
        ev->rc = write_event(ib, ev, received_at);
        if (ev->rc != 0)
            pt_log_error("webhook inbox: cannot store an event: %s", sqlite3_errmsg(ib->db));
    }
    if (!failed && sqlite3_exec(ib->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        pt_log_error("webhook inbox: commit failed: %s", sqlite3_errmsg(ib->db));
        sqlite3_exec(ib->db, "ROLLBACK", NULL, NULL, NULL);
        failed = 1;
    }
    if (ib->lock_fd >= 0)
        flock(ib->lock_fd, LOCK_UN);
    for (pt_inbox_event *ev = batch; ev != NULL; ev = ev->next) {
        if (failed) {
            ev->rc = PT_EDB;
            ev->duplicate = 0;
            ev->id = 0;
        }
    }
}

static void *
writer_main(void *arg)
{
    pt_inbox *ib = arg;
    pthread_mutex_lock(&ib->mu);
    for (;;) {
        while (ib->head == NULL && !ib->stopping)
            pthread_cond_wait(&ib->cv, &ib->mu);
        pt_inbox_event *batch = ib->head;
        ib->head = ib->tail = NULL;
        if (batch == NULL) /* stopping, and nothing left */
            break;
        pthread_mutex_unlock(&ib->mu);
        write_batch(ib, batch);
        while (batch != NULL) {
            pt_inbox_event *next = batch->next;
            batch->next = NULL;
            ib->done(batch); /* may free batch */
            batch = next;
        }
        pthread_mutex_lock(&ib->mu);
    }
    pthread_mutex_unlock(&ib->mu);
    return NULL;
}

/* Opens datadir's events database with its table, waiting out other processes doing the same
 * (switching a file to WAL takes a lock the busy handler does not wait for). */
static int
open_db(const char *datadir, sqlite3 **out, char *err, size_t errsz)
{
    char path[4096];
    sqlite3 *db = NULL;
    int rc = SQLITE_ERROR;

    snprintf(path, sizeof(path), "%s/warehouse/dw", datadir);
    mkdir(path, 0700);
    snprintf(path, sizeof(path), "%s/warehouse/dw/webhooks.db", datadir);
    for (int attempt = 0; attempt < 50; attempt++) {
        rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
        if (rc == SQLITE_OK) {
            sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
            rc = sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", NULL, NULL,
                              NULL);
            if (rc == SQLITE_OK)
                rc = sqlite3_exec(db, pt_inbox_table_sql, NULL, NULL, NULL);
        }
        if (rc == SQLITE_OK) {
            *out = db;
            return 0;
        }
        if (rc != SQLITE_BUSY && rc != SQLITE_LOCKED)
            break;
        sqlite3_close(db);
        db = NULL;
        struct timespec nap = {0, 20 * 1000 * 1000};
        nanosleep(&nap, NULL);
    }
    snprintf(err, errsz, "webhook inbox %s: %s", path,
             db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    sqlite3_close(db);
    return PT_EDB;
}

int
pt_inbox_prepare(const char *datadir, char *err, size_t errsz)
{
    sqlite3 *db = NULL;
    int rc = open_db(datadir, &db, err, errsz);
    sqlite3_close(db);
    return rc;
}

int
pt_inbox_open(const char *datadir, pt_inbox_done_cb done, pt_inbox **out, char *err, size_t errsz)
{
    pt_inbox *ib = calloc(1, sizeof(*ib));
    if (ib == NULL) {
        snprintf(err, errsz, "out of memory");
        return PT_ENOMEM;
    }
    ib->done = done;
    ib->lock_fd = -1;
    pthread_mutex_init(&ib->mu, NULL);
    pthread_cond_init(&ib->cv, NULL);
    pt_buf_init(&ib->headers, 0);
    pt_buf_init(&ib->body64, 0);
    int rc = open_db(datadir, &ib->db, err, errsz);
    if (rc != 0)
        goto fail;
    char lock[4096];
    snprintf(lock, sizeof(lock), "%s/warehouse/dw/webhooks.lock", datadir);
    ib->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (ib->lock_fd < 0)
        pt_log_warn("webhook inbox: cannot open %s (%s); writers will rely on SQLite's locking",
                    lock, strerror(errno));
    if (sqlite3_prepare_v3(ib->db,
                           "INSERT INTO events(received_at, source, method, path, query_string,"
                           " headers, content_type, body, body_base64, remote_addr, status,"
                           " dedup_key) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12)",
                           -1, SQLITE_PREPARE_PERSISTENT, &ib->insert, NULL) != SQLITE_OK ||
        sqlite3_prepare_v3(ib->db, "SELECT id FROM events WHERE source = ?1 AND dedup_key = ?2", -1,
                           SQLITE_PREPARE_PERSISTENT, &ib->find_dup, NULL) != SQLITE_OK) {
        snprintf(err, errsz, "webhook inbox: %s", sqlite3_errmsg(ib->db));
        rc = PT_EDB;
        goto fail;
    }
    if (pthread_create(&ib->thread, NULL, writer_main, ib) != 0) {
        snprintf(err, errsz, "cannot start the webhook writer thread");
        rc = PT_ENOMEM;
        goto fail;
    }
    ib->running = 1;
    *out = ib;
    return 0;
fail:
    pt_inbox_close(ib);
    return rc;
}

void
pt_inbox_submit(pt_inbox *ib, pt_inbox_event *ev)
{
    ev->next = NULL;
    ev->id = 0;
    ev->duplicate = 0;
    ev->rc = 0;
    pthread_mutex_lock(&ib->mu);
    if (ib->tail != NULL)
        ib->tail->next = ev;
    else
        ib->head = ev;
    ib->tail = ev;
    pthread_cond_signal(&ib->cv);
    pthread_mutex_unlock(&ib->mu);
}

void
pt_inbox_close(pt_inbox *ib)
{
    if (ib == NULL)
        return;
    pthread_mutex_lock(&ib->mu);
    ib->stopping = 1;
    pthread_cond_signal(&ib->cv);
    pthread_mutex_unlock(&ib->mu);
    if (ib->running)
        pthread_join(ib->thread, NULL);
    sqlite3_finalize(ib->insert);
    sqlite3_finalize(ib->find_dup);
    sqlite3_close(ib->db);
    if (ib->lock_fd >= 0)
        close(ib->lock_fd);
    pt_buf_free(&ib->headers);
    pt_buf_free(&ib->body64);
    free(ib);
}
