/* processor.c - hands stored webhook events to their source's script, outside the request
 * path, with retries and exponential backoff.
 *
 * Every worker runs one processing thread. Events are claimed with one atomic statement
 * (UPDATE ... RETURNING on webhooks.events: SQLite's write lock serialises the workers), which
 * sets status `processing` and a lease (next_attempt_at). The outcome is written back: `done`,
 * `pending` with the next attempt's time (backoff * 2^(attempts-1)), or `failed` with the last
 * error once max_attempts is reached. A worker that dies mid-event leaves a lease that expires,
 * after which any worker claims the event again: processing survives crashes and restarts.
 * Events of sources without a script are stored as `received` and never claimed. */
#include "server/processor.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/err.h"
#include "core/log.h"
#include "py/py.h"
#include "store/store.h"
#include "store/store_webhooks.h"

#define IDLE_POLL_MS 250

struct pt_processor {
    pt_processor_config cfg;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int kicked; /* under mu */
    sqlite3 *db;
    sqlite3_stmt *expire, *claim, *finish;
    pt_store *store;
};

static int64_t
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static pt_str
dup_col(sqlite3_stmt *st, int i)
{
    const char *s = (const char *)sqlite3_column_text(st, i);
    size_t n = (size_t)sqlite3_column_bytes(st, i);
    char *copy = malloc(n + 1);
    if (copy != NULL) {
        memcpy(copy, s != NULL ? s : "", n);
        copy[n] = '\0';
    }
    return (pt_str){copy, copy != NULL ? n : 0};
}

static void
free_event(pt_py_event *ev)
{
    free((char *)ev->received_at.p);
    free((char *)ev->source.p);
    free((char *)ev->method.p);
    free((char *)ev->path.p);
    free((char *)ev->query_string.p);
    free((char *)ev->headers_json.p);
    free((char *)ev->content_type.p);
    free((char *)ev->body.p);
    free((char *)ev->remote_addr.p);
}

double
pt_processor_retry_delay(double backoff, int attempts)
{
    double delay = backoff;

    for (int i = 1; i < attempts && delay < 3600; i++)
        delay *= 2;
    return delay;
}

/* Records the outcome of an attempt. */
static void
finish(pt_processor *p, const pt_py_event *ev, const char *error)
{
    const char *status = "done";
    int64_t next = 0;
    if (error != NULL) {
        if (ev->attempts >= p->cfg.max_attempts) {
            status = "failed";
        } else {
            status = "pending";
            next =
                now_ms() + (int64_t)(pt_processor_retry_delay(p->cfg.backoff, ev->attempts) * 1000);
        }
    }
    sqlite3_bind_text(p->finish, 1, status, -1, SQLITE_STATIC);
    if (error != NULL)
        sqlite3_bind_text(p->finish, 2, error, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(p->finish, 2);
    sqlite3_bind_int64(p->finish, 3, next);
    sqlite3_bind_int64(p->finish, 4, ev->id);
    /* Only this attempt's outcome: a claim that expired meanwhile belongs to someone else. */
    sqlite3_bind_int(p->finish, 5, ev->attempts);
    if (sqlite3_step(p->finish) != SQLITE_DONE)
        pt_log_error("webhook event %lld: cannot record its status: %s", ev->id,
                     sqlite3_errmsg(p->db));
    sqlite3_reset(p->finish);
    sqlite3_clear_bindings(p->finish);
    if (error != NULL && strcmp(status, "failed") == 0)
        pt_log_error("webhook event %lld failed after %d attempts: %s", ev->id, ev->attempts,
                     error);
    else if (error != NULL)
        pt_log_warn("webhook event %lld: attempt %d failed, retrying: %s", ev->id, ev->attempts,
                    error);
}

/* Finds the script of the event's source. Returns 0 with *script (free with pt_script_free),
 * or -1 with the reason in err. */
static int
script_of(pt_processor *p, const char *source, pt_script **script, char *err, size_t errsz)
{
    pt_webhook_source *list = NULL;
    size_t n = 0;
    const char *name = NULL;
    if (pt_store_webhook_source_list(p->store, &list, &n) != 0) {
        snprintf(err, errsz, "cannot read webhook sources: %s", pt_store_errmsg(p->store));
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i].name, source) == 0)
            name = list[i].script;
    int rc = -1;
    if (name == NULL)
        snprintf(err, errsz, "webhook source '%s' has no script", source);
    else if (pt_store_script_get(p->store, name, 0, script) != 0)
        snprintf(err, errsz, "script '%s' not found", name);
    else
        rc = 0;
    pt_store_webhook_sources_free(list, n);
    return rc;
}

/* Claims and processes one due event. Returns 1 if there was one, 0 if none was due. */
static int
process_one(pt_processor *p)
{
    int64_t now = now_ms();
    /* An event whose last attempt's worker died (its lease ran out) with no attempts left
     * fails here, instead of being claimed again and again (a script that crashes the worker
     * would otherwise crash one worker per lease forever). */
    sqlite3_bind_int64(p->expire, 1, now);
    sqlite3_bind_int(p->expire, 2, p->cfg.max_attempts);
    if (sqlite3_step(p->expire) != SQLITE_DONE)
        pt_log_error("webhook processing: %s", sqlite3_errmsg(p->db));
    sqlite3_reset(p->expire);
    sqlite3_bind_int64(p->claim, 1, now);
    sqlite3_bind_int64(p->claim, 2, now + (int64_t)(p->cfg.lease * 1000));
    sqlite3_bind_int(p->claim, 3, p->cfg.max_attempts);
    int rc = sqlite3_step(p->claim);
    if (rc != SQLITE_ROW) {
        if (rc != SQLITE_DONE && rc != SQLITE_BUSY)
            pt_log_error("webhook processing: cannot claim an event: %s", sqlite3_errmsg(p->db));
        sqlite3_reset(p->claim);
        return 0;
    }
    pt_py_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.id = sqlite3_column_int64(p->claim, 0);
    ev.received_at = dup_col(p->claim, 1);
    ev.source = dup_col(p->claim, 2);
    ev.method = dup_col(p->claim, 3);
    ev.path = dup_col(p->claim, 4);
    ev.query_string = dup_col(p->claim, 5);
    ev.headers_json = dup_col(p->claim, 6);
    ev.content_type = dup_col(p->claim, 7);
    ev.body = dup_col(p->claim, 8);
    ev.body_base64 = sqlite3_column_int(p->claim, 9);
    ev.remote_addr = dup_col(p->claim, 10);
    ev.attempts = sqlite3_column_int(p->claim, 11);
    /* Step to the end so that the UPDATE completes (and commits) now. */
    while (sqlite3_step(p->claim) == SQLITE_ROW)
        ;
    sqlite3_reset(p->claim);

    char err[512];
    pt_script *script = NULL;
    if (ev.received_at.p == NULL || ev.body.p == NULL || ev.headers_json.p == NULL) {
        finish(p, &ev, "out of memory");
    } else if (script_of(p, ev.source.p, &script, err, sizeof(err)) != 0) {
        finish(p, &ev, err);
    } else {
        pt_script_ref ref = {script->name, script->version, script->source, script->source_len,
                             script->id};
        pt_py_gil_acquire();
        rc = pt_py_handle_event(&ref, &ev, err, sizeof(err));
        pt_py_gil_release();
        finish(p, &ev, rc == 0 ? NULL : err);
    }
    pt_script_free(script);
    free_event(&ev);
    return 1;
}

static void *
processor_main(void *arg)
{
    pt_processor *p = arg;
    pt_py_thread_attach();
    for (;;) {
        if (process_one(p))
            continue;
        pthread_mutex_lock(&p->mu);
        if (!p->kicked) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_nsec += IDLE_POLL_MS * 1000000L;
            if (until.tv_nsec >= 1000000000L) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&p->cv, &p->mu, &until);
        }
        p->kicked = 0;
        pthread_mutex_unlock(&p->mu);
    }
    return NULL;
}

void
pt_processor_kick(pt_processor *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    p->kicked = 1;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

int
pt_processor_start(const pt_processor_config *cfg, pt_processor **out, char *err, size_t errsz)
{
    char path[4096];
    pt_processor *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        snprintf(err, errsz, "out of memory");
        return PT_ENOMEM;
    }
    p->cfg = *cfg;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    int rc = pt_store_open(cfg->datadir, &p->store, err, errsz);
    if (rc != 0)
        goto fail;
    snprintf(path, sizeof(path), "%s/warehouse/dw/webhooks.db", cfg->datadir);
    if (sqlite3_open_v2(path, &p->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK)
        goto dberror;
    sqlite3_busy_timeout(p->db, 5000);
    if (sqlite3_prepare_v3(
            p->db,
            "UPDATE events SET status = 'processing', attempts = attempts + 1,"
            " next_attempt_at = ?2 WHERE id = (SELECT id FROM events"
            " WHERE status IN ('pending', 'processing') AND next_attempt_at <= ?1"
            " AND attempts < ?3 ORDER BY id LIMIT 1)"
            " RETURNING id, received_at, source, method, path, query_string, headers,"
            " content_type, body, body_base64, remote_addr, attempts",
            -1, SQLITE_PREPARE_PERSISTENT, &p->claim, NULL) != SQLITE_OK ||
        sqlite3_prepare_v3(p->db,
                           "UPDATE events SET status = ?1, last_error = ?2, next_attempt_at = ?3"
                           " WHERE id = ?4 AND attempts = ?5 AND status = 'processing'",
                           -1, SQLITE_PREPARE_PERSISTENT, &p->finish, NULL) != SQLITE_OK ||
        sqlite3_prepare_v3(p->db,
                           "UPDATE events SET status = 'failed', last_error ="
                           " COALESCE(last_error || '; ', '') ||"
                           " 'the worker processing it stopped before it finished'"
                           " WHERE status = 'processing' AND next_attempt_at <= ?1"
                           " AND attempts >= ?2",
                           -1, SQLITE_PREPARE_PERSISTENT, &p->expire, NULL) != SQLITE_OK)
        goto dberror;
    if (pthread_create(&p->thread, NULL, processor_main, p) != 0) {
        snprintf(err, errsz, "cannot start the webhook processing thread");
        rc = PT_ENOMEM;
        goto fail;
    }
    pthread_detach(p->thread);
    *out = p;
    return 0;
dberror:
    snprintf(err, errsz, "webhook processing: %s: %s", path,
             p->db != NULL ? sqlite3_errmsg(p->db) : "cannot open");
    rc = PT_EDB;
fail:
    sqlite3_finalize(p->expire);
    sqlite3_finalize(p->claim);
    sqlite3_finalize(p->finish);
    sqlite3_close(p->db);
    pt_store_close(p->store);
    free(p);
    return rc;
}
