/* inbox.c - the durable webhook inbox of one worker (group commit into webhooks.events).
 *
 * Design notes
 * ------------
 * The promise to a sender is that an event answered 2xx is never lost. So the answer waits
 * for the event to be on disk, and the cost of getting it there (one fsync, about 200 µs on
 * the dev machine; a round trip and a WAL flush on PostgreSQL) is shared: the loop hands
 * events to a writer thread, which takes every event queued so far (up to
 * PT_EVENTS_BATCH_MAX at a time) and stores them with one statement and one durable commit.
 * Under load, the queue fills while the previous commit syncs, so batches grow with the load.
 *
 * The writer stores through the event log of store/store_events.h (pt_events_store), which
 * owns the connection, the prepared statements and the lock writers of other workers queue
 * on; on the embedded install the log is the table the warehouse attaches as schema
 * `webhooks`, on a PostgreSQL store the store database's `webhooks.events`, so handlers read
 * events with pq. This file only turns requests into records and batches them. Text that
 * PostgreSQL could not store (a NUL byte, invalid UTF-8) is made storable here when the log
 * is there (pt_events_strict_text): a body becomes base64, other fields get U+FFFD for the
 * bad bytes, so that one odd event never fails the batch it shares with others. SQLite keeps
 * such text as it came (a body that is not UTF-8 is base64 on both).
 *
 * Every worker has its own writer; on PostgreSQL two (pt_events_writers), each with its own
 * connection, taking turns at the queue: while one batch waits for its commit, the events
 * that arrive meanwhile go out with the other instead of waiting for it (PostgreSQL flushes
 * concurrent commits together). On the busy dev machine that was 1.19x the events/s of one
 * writer (medians of 3, alternated). A failed batch answers every event of it with an error
 * (503 for the sender, who will retry): nothing reported stored was lost. When the database
 * is unreachable every batch fails fast, and the first batch after it returns succeeds: the
 * driver reconnects by itself.
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

/* Most writer threads an inbox runs (pt_events_writers says how many pay off). */
#define PT_INBOX_WRITERS_MAX 2

/* The writer's scratch text of one event of a batch (reused from batch to batch). */
typedef struct scratch {
    pt_buf headers, body, path, query, ctype, dedup;
} scratch;

/* One writer thread with its connection to the event log. */
typedef struct writer {
    pt_inbox *ib;
    pt_events *log;
    pthread_t thread;
    int running;                      /* the thread was started */
    scratch tmp[PT_EVENTS_BATCH_MAX]; /* this thread's only */
} writer;

struct pt_inbox {
    pt_inbox_done_cb done;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pt_inbox_event *head, *tail; /* under mu */
    int stopping;                /* under mu */
    int nwriters;
    writer w[PT_INBOX_WRITERS_MAX];
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

/* Is s[0..n) text that PostgreSQL stores as it is: valid UTF-8 without a NUL byte? */
static int
storable(const char *s, size_t n)
{
    return memchr(s, '\0', n) == NULL && utf8_valid((const unsigned char *)s, n);
}

/* v, or when it is not storable a copy in b with every NUL and every byte that starts no valid
 * UTF-8 sequence replaced by U+FFFD. Returns 0 or PT_ENOMEM. */
static int
storable_text(pt_buf *b, pt_str *v)
{
    const unsigned char *p = (const unsigned char *)v->p;
    size_t i = 0;

    if (v->n == 0 || storable(v->p, v->n))
        return 0;
    pt_buf_reset(b);
    while (i < v->n) {
        size_t len = 1;
        if (p[i] >= 0x80)
            for (len = 4; len > 1; len--)
                if (i + len <= v->n && storable(v->p + i, len))
                    break;
        if (p[i] == 0 || (len == 1 && p[i] >= 0x80)) {
            if (pt_buf_puts(b, "\xef\xbf\xbd") != 0)
                return PT_ENOMEM;
        } else if (pt_buf_append(b, p + i, len) != 0) {
            return PT_ENOMEM;
        }
        i += len;
    }
    *v = (pt_str){b->data, b->len};
    return 0;
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

/* Fills rec from ev, with ev's text in t; strict: the log takes only storable() text.
 * Returns 0 or PT_ENOMEM. */
static int
record(pt_event_rec *rec, scratch *t, const pt_inbox_event *ev, int strict)
{
    const pt_request *r = ev->req;
    pt_buf h;

    *rec = (pt_event_rec){
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
    pt_buf_reset(&t->headers);
    if (headers_json(&t->headers, r) != 0)
        return PT_ENOMEM;
    /* The JSON escapes control characters; on a strict log invalid UTF-8 is repaired. */
    rec->headers_json = (pt_str){t->headers.data, t->headers.len};
    pt_buf_init(&h, 0);
    if (strict && (storable_text(&t->path, &rec->path) != 0 ||
                   storable_text(&t->query, &rec->query_string) != 0 ||
                   storable_text(&t->ctype, &rec->content_type) != 0 ||
                   storable_text(&h, &rec->headers_json) != 0)) {
        pt_buf_free(&h);
        return PT_ENOMEM;
    }
    if (strict && rec->dedup_key != NULL) {
        pt_str d = {rec->dedup_key, strlen(rec->dedup_key)};
        if (storable_text(&t->dedup, &d) != 0) {
            pt_buf_free(&h);
            return PT_ENOMEM;
        }
        if (d.p != rec->dedup_key)
            rec->dedup_key = t->dedup.data;
    }
    if (h.data != NULL) {
        pt_buf_free(&t->headers);
        t->headers = h;
        rec->headers_json = (pt_str){t->headers.data, t->headers.len};
    }
    if (strict ? !storable(r->body.p != NULL ? r->body.p : "", r->body.n)
               : !utf8_valid((const unsigned char *)r->body.p, r->body.n)) {
        pt_buf_reset(&t->body);
        if (pt_buf_reserve(&t->body, 4 * ((r->body.n + 2) / 3) + 1) != 0)
            return PT_ENOMEM;
        int n = EVP_EncodeBlock((unsigned char *)t->body.data, (const unsigned char *)r->body.p,
                                (int)r->body.n);
        rec->body = (pt_str){t->body.data, (size_t)n};
        rec->body_base64 = 1;
    }
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

/* Gives back the scratch memory a big event left behind (bodies run to megabytes). */
static void
trim(scratch *t)
{
    pt_buf *bufs[] = {&t->headers, &t->body, &t->path, &t->query, &t->ctype, &t->dedup};

    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        if (bufs[i]->cap > 65536)
            pt_buf_free(bufs[i]);
}

/* Stores up to PT_EVENTS_BATCH_MAX events of the list batch with one statement; fills every
 * event's id, duplicate and rc. Returns the first event not handled (NULL: all were). */
static pt_inbox_event *
write_chunk(writer *w, pt_inbox_event *batch, const char *received_at)
{
    pt_event_rec recs[PT_EVENTS_BATCH_MAX];
    pt_inbox_event *evs[PT_EVENTS_BATCH_MAX];
    int64_t ids[PT_EVENTS_BATCH_MAX];
    int dups[PT_EVENTS_BATCH_MAX];
    size_t n = 0;
    pt_inbox_event *ev;

    for (ev = batch; ev != NULL && n < PT_EVENTS_BATCH_MAX; ev = ev->next) {
        ev->rc = record(&recs[n], &w->tmp[n], ev, pt_events_strict_text(w->log));
        ev->id = 0;
        ev->duplicate = 0;
        if (ev->rc != 0)
            pt_log_error("webhook inbox: cannot store an event: out of memory");
        else
            evs[n++] = ev;
    }
    if (n > 0) {
        int rc = pt_events_store(w->log, recs, n, received_at, ids, dups);
        if (rc != 0)
            pt_log_error("webhook inbox: %s", pt_events_errmsg(w->log));
        for (size_t i = 0; i < n; i++) {
            evs[i]->rc = rc != 0 ? (rc == PT_EUNAVAIL ? PT_EUNAVAIL : PT_EDB) : 0;
            evs[i]->id = rc == 0 ? ids[i] : 0;
            evs[i]->duplicate = rc == 0 ? dups[i] : 0;
            trim(&w->tmp[i]);
        }
    }
    return ev;
}

/* Writes one batch: one statement per PT_EVENTS_BATCH_MAX events; fills every event's id/rc. */
static void
write_batch(writer *w, pt_inbox_event *batch)
{
    char received_at[32];

    now_iso(received_at);
    while (batch != NULL)
        batch = write_chunk(w, batch, received_at);
}

static void *
writer_main(void *arg)
{
    writer *w = arg;
    pt_inbox *ib = w->ib;
    pthread_mutex_lock(&ib->mu);
    for (;;) {
        while (ib->head == NULL && !ib->stopping)
            pthread_cond_wait(&ib->cv, &ib->mu);
        pt_inbox_event *batch = ib->head;
        ib->head = ib->tail = NULL;
        if (batch == NULL) /* stopping, and nothing left */
            break;
        pthread_mutex_unlock(&ib->mu);
        write_batch(w, batch);
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

/* Frees a writer's log and scratch (its thread has stopped). */
static void
writer_free(writer *w)
{
    pt_events_close(w->log);
    for (size_t i = 0; i < PT_EVENTS_BATCH_MAX; i++) {
        pt_buf_free(&w->tmp[i].headers);
        pt_buf_free(&w->tmp[i].body);
        pt_buf_free(&w->tmp[i].path);
        pt_buf_free(&w->tmp[i].query);
        pt_buf_free(&w->tmp[i].ctype);
        pt_buf_free(&w->tmp[i].dedup);
    }
}

int
pt_inbox_open(const char *datadir, pt_inbox_done_cb done, pt_inbox **out, char *err, size_t errsz)
{
    pt_inbox *ib = calloc(1, sizeof(*ib));
    int rc = 0;
    if (ib == NULL) {
        snprintf(err, errsz, "out of memory");
        return PT_ENOMEM;
    }
    ib->done = done;
    pthread_mutex_init(&ib->mu, NULL);
    pthread_cond_init(&ib->cv, NULL);
    /* The first log says how many writers pay off (pt_events_writers); the buffers of a
     * calloc'ed scratch are empty pt_bufs already. */
    ib->nwriters = 1;
    for (int i = 0; i < ib->nwriters; i++) {
        writer *w = &ib->w[i];
        w->ib = ib;
        rc = pt_events_open(datadir, &w->log, err, errsz);
        if (rc != 0)
            goto fail;
        if (i == 0) {
            ib->nwriters = pt_events_writers(w->log);
            if (ib->nwriters > PT_INBOX_WRITERS_MAX)
                ib->nwriters = PT_INBOX_WRITERS_MAX;
        }
        if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
            snprintf(err, errsz, "cannot start the webhook writer thread");
            rc = PT_ENOMEM;
            goto fail;
        }
        w->running = 1;
    }
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
    pthread_cond_broadcast(&ib->cv);
    pthread_mutex_unlock(&ib->mu);
    for (int i = 0; i < PT_INBOX_WRITERS_MAX; i++) {
        if (ib->w[i].running)
            pthread_join(ib->w[i].thread, NULL);
        writer_free(&ib->w[i]);
    }
    pthread_mutex_destroy(&ib->mu);
    pthread_cond_destroy(&ib->cv);
    free(ib);
}
