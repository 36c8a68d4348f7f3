/* store_events.h - the webhook event log: where the inbox appends received events (in batches,
 * one durable commit each, deduplicated by source and delivery id) and where the processor
 * claims, finishes and retries them.
 *
 * On the embedded SQLite install the log is the table `events` of DATA/warehouse/dw/
 * webhooks.db, the file the embedded warehouse attaches as schema `webhooks`, so that handlers
 * read events with pq. When the metadata store is PostgreSQL (DATA/store.dsn), the log is the
 * table `events` of the schema pt_events_schema_of names (`webhooks` for a store in `public`)
 * in the store's database, shared by every node. The same statements run on both, over the
 * SQL driver (db.h). One pt_events per thread. */
#ifndef PT_STORE_EVENTS_H
#define PT_STORE_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#include "core/request.h"

/* Most events one pt_events_store call takes (one statement binds 12 values per event). */
#define PT_EVENTS_BATCH_MAX 256
/* Longest schema name the log uses on PostgreSQL (PostgreSQL's identifier limit). */
#define PT_EVENTS_SCHEMA_MAX 63

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

/* The schema of the log on a PostgreSQL store whose own tables live in store_schema: `webhooks`
 * for `public`, else `<store_schema>_webhooks`, so that installs kept in schemas of one database
 * keep their events apart. Writes it to out; PT_EINVAL when it would be longer than
 * PT_EVENTS_SCHEMA_MAX or store_schema holds a '"'. */
int pt_events_schema_of(const char *store_schema, char *out, size_t outsz);

/* Creates the log's table if needed, then closes it (the master calls it before it starts the
 * workers, so that they do not race to create it). Returns 0 or a pt_err with a reason in
 * err. */
int pt_events_prepare(const char *datadir, char *err, size_t errsz);
/* Opens the log of datadir (creating its table): a connection of its own to the store's
 * PostgreSQL database, or to the SQLite file. Returns 0, or a pt_err with a reason naming the
 * file in err (PT_EUNAVAIL when PostgreSQL cannot be reached). Caller frees with
 * pt_events_close. */
int pt_events_open(const char *datadir, pt_events **out, char *err, size_t errsz);
void pt_events_close(pt_events *ev); /* NULL is a no-op */
/* The last error message (borrowed, valid until the next call). */
const char *pt_events_errmsg(const pt_events *ev);
/* 1 when the log's text takes only valid UTF-8 without NUL bytes (PostgreSQL), 0 when it takes
 * any bytes (SQLite). */
int pt_events_strict_text(const pt_events *ev);
/* How many writers appending to the log at once pay off: 1 on SQLite (one writer per file at
 * a time), 2 on PostgreSQL (while one batch commits, the next is on its way). */
int pt_events_writers(const pt_events *ev);

/* ---- appending (the inbox's writer) ------------------------------------------------------ */

/* Stores recs[0..n) (1 <= n <= PT_EVENTS_BATCH_MAX), received at `received_at` (ISO 8601), in
 * one statement and one durable commit: it returns after the events are on disk (SQLite) or
 * committed with synchronous_commit on (PostgreSQL), all of them or none. ids[i] gets each
 * event's id; an event whose dedup_key was already stored for its source (by any worker or
 * node, or earlier in recs) is not written again: duplicates[i] is 1 and ids[i] the stored
 * event's. Everything is borrowed for the call. Returns 0 or a pt_err (PT_EUNAVAIL when the
 * database cannot be reached or stays locked) with the message in pt_events_errmsg. */
int pt_events_store(pt_events *ev, const pt_event_rec *recs, size_t n, const char *received_at,
                    int64_t *ids, int *duplicates);

/* ---- processing (the processor) ---------------------------------------------------------- */

/* Fails every event whose claim expired (its worker stopped) with no attempts left, noting why
 * in last_error. now is unix ms. */
int pt_events_expire(pt_events *ev, int64_t now, int max_attempts);
/* Claims the oldest due event (pending, or processing with an expired lease, with fewer than
 * max_attempts attempts): marks it processing, counts the attempt and leases it until
 * lease_until, in one statement, so that two workers (of any node: FOR UPDATE SKIP LOCKED on
 * PostgreSQL) never claim the same event. Returns 1 with *out filled (caller frees with
 * pt_event_clear), 0 when none is due, PT_EUNAVAIL when another writer holds the lock or the
 * database cannot be reached, or another pt_err. */
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
