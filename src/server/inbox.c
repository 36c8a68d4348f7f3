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
 * The writer stores through the event log of store/store_events.h (begin a batch, append,
 * commit), which owns the connection, the prepared statements and the lock writers of other
 * workers queue on; on the embedded install the log is the table the warehouse attaches as
 * schema `webhooks`, so handlers read events with pq. This file only turns requests into
 * records and batches them.
 *
 * Every worker has its own writer. A failed commit answers every event of the batch with an
 * error (503 for the sender, who will retry): nothing reported stored was lost.
 */
#include "server/inbox.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/json.h"
#include "core/log.h"
#include "store/store_events.h"

struct pt_inbox {
    pt_events *log;
    pt_inbox_done_cb done;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pt_inbox_event *head, *tail; /* under mu */
    int stopping;                /* under mu */
    int running;                 /* the writer thread was started */
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

/* Writes one event inside the open batch. Returns 0 or a pt_err. */
static int
write_event(pt_inbox *ib, pt_inbox_event *ev, const char *received_at)
{
    const pt_request *r = ev->req;
    pt_event_rec rec = {
        .source = ev->source,
        .dedup_key = ev->dedup_key,
        .status = ev->status,
        .method = r->method,
        .path = r->path,
        .query_string = r->query,
        .content_type = r->content_type,
        .body = r->body,
        .remote_addr = r->remote_addr,
    };

    pt_buf_reset(&ib->headers);
    if (headers_json(&ib->headers, r) != 0)
        return PT_ENOMEM;
    rec.headers_json = (pt_str){ib->headers.data, ib->headers.len};
    if (!utf8_valid((const unsigned char *)r->body.p, r->body.n)) {
        pt_buf_reset(&ib->body64);
        if (pt_buf_reserve(&ib->body64, 4 * ((r->body.n + 2) / 3) + 1) != 0)
            return PT_ENOMEM;
        int n = EVP_EncodeBlock((unsigned char *)ib->body64.data, (const unsigned char *)r->body.p,
                                (int)r->body.n);
        rec.body = (pt_str){ib->body64.data, (size_t)n};
        rec.body_base64 = 1;
    }
    return pt_events_append(ib->log, &rec, received_at, &ev->id, &ev->duplicate);
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
    if (pt_events_begin(ib->log) != 0) {
        pt_log_error("webhook inbox: %s", pt_events_errmsg(ib->log));
        failed = 1;
    }
    for (pt_inbox_event *ev = batch; ev != NULL && !failed; ev = ev->next) {
        ev->rc = write_event(ib, ev, received_at);
        if (ev->rc != 0)
            pt_log_error("webhook inbox: cannot store an event: %s",
                         ev->rc == PT_ENOMEM ? "out of memory" : pt_events_errmsg(ib->log));
    }
    if (!failed && pt_events_commit(ib->log) != 0) {
        pt_log_error("webhook inbox: %s", pt_events_errmsg(ib->log));
        failed = 1;
    }
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

int
pt_inbox_prepare(const char *datadir, char *err, size_t errsz)
{
    return pt_events_prepare(datadir, err, errsz);
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
    pthread_mutex_init(&ib->mu, NULL);
    pthread_cond_init(&ib->cv, NULL);
    pt_buf_init(&ib->headers, 0);
    pt_buf_init(&ib->body64, 0);
    int rc = pt_events_open(datadir, &ib->log, err, errsz);
    if (rc != 0)
        goto fail;
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
    pt_events_close(ib->log);
    pt_buf_free(&ib->headers);
    pt_buf_free(&ib->body64);
    free(ib);
}
