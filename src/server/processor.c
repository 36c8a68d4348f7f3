/* processor.c - hands stored webhook events to their source's script, outside the request
 * path, with retries and exponential backoff.
 *
 * Every worker runs one processing thread. Events are claimed through the event log
 * (store/store_events.h: one atomic UPDATE ... RETURNING, serialised by the engine's write
 * lock), which sets status `processing` and a lease (next_attempt_at). The outcome is written back:
 * `done`, `pending` with the next attempt's time (backoff * 2^(attempts-1)), or `failed` with the
 * last error once max_attempts is reached. A worker that dies mid-event leaves a lease that
 * expires, after which any worker claims the event again: processing survives crashes and restarts.
 * Events of sources without a script are stored as `received` and never claimed. */
#include "server/processor.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/err.h"
#include "core/log.h"
#include "py/py.h"
#include "store/store.h"
#include "server/metrics.h"
#include "store/store_events.h"
#include "store/store_webhooks.h"

#define IDLE_POLL_MS 250

struct pt_processor {
    pt_processor_config cfg;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int kicked; /* under mu */
    pt_events *log;
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
str_of(const char *s)
{
    return (pt_str){s != NULL ? s : "", s != NULL ? strlen(s) : 0};
}

/* The claimed event as the Python side takes it (fields borrowed from e). */
static pt_py_event
py_event(const pt_event *e)
{
    pt_py_event ev;

    memset(&ev, 0, sizeof ev);
    ev.id = e->id;
    ev.received_at = str_of(e->received_at);
    ev.source = str_of(e->source);
    ev.method = str_of(e->method);
    ev.path = str_of(e->path);
    ev.query_string = str_of(e->query_string);
    ev.headers_json = str_of(e->headers_json);
    ev.content_type = str_of(e->content_type);
    ev.body = (pt_str){e->body, e->body_len};
    ev.body_base64 = e->body_base64;
    ev.remote_addr = str_of(e->remote_addr);
    ev.attempts = e->attempts;
    return ev;
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
    /* Only this attempt's outcome: a claim that expired meanwhile belongs to someone else. */
    pt_metrics_event_done(p->cfg.metrics, p->cfg.index,
                          error == NULL                   ? PT_EVENT_PROCESSED
                          : strcmp(status, "failed") == 0 ? PT_EVENT_FAILED
                                                          : PT_EVENT_RETRIED);
    if (pt_events_finish(p->log, ev->id, ev->attempts, status, error, next, NULL) != 0)
        pt_log_error("webhook event %lld: %s", ev->id, pt_events_errmsg(p->log));
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
    if (pt_events_expire(p->log, now, p->cfg.max_attempts) != 0)
        pt_log_error("webhook processing: %s", pt_events_errmsg(p->log));
    pt_event claimed;
    int rc = pt_events_claim(p->log, now, now + (int64_t)(p->cfg.lease * 1000), p->cfg.max_attempts,
                             &claimed);
    if (rc != 1) {
        if (rc != 0 && rc != PT_EUNAVAIL)
            pt_log_error("webhook processing: %s", pt_events_errmsg(p->log));
        return 0;
    }
    pt_py_event ev = py_event(&claimed);

    char err[512];
    pt_script *script = NULL;
    if (script_of(p, ev.source.p, &script, err, sizeof(err)) != 0) {
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
    pt_event_clear(&claimed);
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
    rc = pt_events_open(cfg->datadir, &p->log, err, errsz);
    if (rc != 0)
        goto fail;
    if (pthread_create(&p->thread, NULL, processor_main, p) != 0) {
        snprintf(err, errsz, "cannot start the webhook processing thread");
        rc = PT_ENOMEM;
        goto fail;
    }
    pthread_detach(p->thread);
    *out = p;
    return 0;
fail:
    pt_events_close(p->log);
    pt_store_close(p->store);
    free(p);
    return rc;
}
