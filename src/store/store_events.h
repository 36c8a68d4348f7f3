/* store_events.h - the webhook event log: where the inbox appends received events (in batches,
 * one durable commit each, deduplicated by source and delivery id) and where the processor
 * claims, finishes and retries them.
 *
 * On the embedded SQLite install the log is the table `events` of DATA/warehouse/dw/
 * webhooks.db, the file the embedded warehouse attaches as schema `webhooks`, so that handlers
 * read events with pq. Its statements run over the SQL driver (db.h), so a PostgreSQL store
 * serves the same calls. One pt_events per thread. */
#ifndef PT_STORE_EVENTS_H
#define PT_STORE_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#include "core/request.h"

typedef struct pt_events pt_events;

/* One event to append; every field borrowed for the call. */
typedef struct pt_event_rec {
    const char *source;    /* "" for the install's own URL */
    const char *dedup_key; /* the delivery id, NULL when the event carries none */
    const char *status;    /* "received", or "pending" when a script will process it */
    pt_str method, path, query_string;
    pt_str headers_json; /* a JSON object */
    pt_str content_type; /* stored as NULL when empty */
    pt_str body;         /* text, or base64 when body_base64 */
    int body_base64;
    pt_str remote_addr;
} pt_event_rec;

/* A stored event, as the processor claims it and pt_events_get reads it. Every text field is
 * owned and NUL-terminated; content_type, last_error and dedup_key are NULL when the event has
 * none. Free with pt_event_clear. */
typedef struct pt_event {
    int64_t id;
    char *received_at, *source, *method, *path, *query_string, *headers_json, *content_type, *body,
        *remote_addr, *status, *last_error, *dedup_key;
    size_t body_len;
    int body_base64;
    int attempts;
    int64_t next_attempt_at; /* unix ms: when a pending event is due, or a claim's lease ends */
} pt_event;
void pt_event_clear(pt_event *e); /* frees the fields; NULL is a no-op */

/* Creates the log's table if needed, then closes it (the master calls it before it starts the
 * workers, so that they do not race to create it). Returns 0 or a pt_err with a reason in
 * err. */
int pt_events_prepare(const char *datadir, char *err, size_t errsz);
/* Opens the log of datadir (creating its table). Returns 0, or a pt_err with a reason naming
 * the file in err. Caller frees with pt_events_close. */
int pt_events_open(const char *datadir, pt_events **out, char *err, size_t errsz);
void pt_events_close(pt_events *ev); /* NULL is a no-op */
/* The last error message (borrowed, valid until the next call). */
const char *pt_events_errmsg(const pt_events *ev);

/* ---- appending (the inbox's writer) ------------------------------------------------------ */

/* Starts a batch: takes the write lock (writers of other workers queue for it) and begins a
 * transaction. */
int pt_events_begin(pt_events *ev);
/* Appends one event to the open batch, received at `received_at` (ISO 8601, borrowed). With a
 * dedup_key already stored for the source nothing is written and *duplicate is 1, *id the
 * stored event's. Returns 0 or a pt_err (the batch must then be rolled back or committed
 * without it, as the caller decides). */
int pt_events_append(pt_events *ev, const pt_event_rec *rec, const char *received_at, int64_t *id,
                     int *duplicate);
/* Commits the batch (durably: it returns after the data is on disk) and releases the lock.
 * On error the batch is rolled back: nothing of it was stored. */
int pt_events_commit(pt_events *ev);
/* Rolls the open batch back and releases the lock. */
void pt_events_rollback(pt_events *ev);

/* ---- processing (the processor) ---------------------------------------------------------- */

/* Fails every event whose claim expired (its worker stopped) with no attempts left, noting why
 * in last_error. now is unix ms. */
int pt_events_expire(pt_events *ev, int64_t now, int max_attempts);
/* Claims the oldest due event (pending, or processing with an expired lease, with fewer than
 * max_attempts attempts): marks it processing, counts the attempt and leases it until
 * lease_until, in one statement, so that two workers never claim the same event. Returns 1
 * with *out filled (caller frees with pt_event_clear), 0 when none is due, PT_EUNAVAIL when
 * another writer holds the lock, or another pt_err. */
int pt_events_claim(pt_events *ev, int64_t now, int64_t lease_until, int max_attempts,
                    pt_event *out);
/* Records the outcome of attempt `attempts` of event id: status "done", "pending" (retry at
 * next_attempt_at) or "failed", with error (may be NULL). A claim that expired meanwhile
 * belongs to someone else: then nothing changes and *changed (may be NULL) is 0. */
int pt_events_finish(pt_events *ev, int64_t id, int attempts, const char *status, const char *error,
                     int64_t next_attempt_at, int *changed);

/* ---- reading ----------------------------------------------------------------------------- */

/* One event by id. PT_ENOTFOUND when there is none. Caller frees *out with pt_event_clear. */
int pt_events_get(pt_events *ev, int64_t id, pt_event *out);
/* The events stored and not yet done or failed (pending, or being processed) into *n. Returns
 * 0 or PT_EDB (message in pt_events_errmsg). */
int pt_events_count_pending(pt_events *ev, int64_t *n);

#endif
