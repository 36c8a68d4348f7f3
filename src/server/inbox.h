/* inbox.h - the durable webhook inbox of one worker: events handed in by the event loop are
 * appended to the webhook event log (store/store_events.h) by a writer thread, many per transaction
 * (group commit: one fsync for every event that arrived meanwhile), and handed back only once
 * they are on disk, so that no sender is told "received" for an event that could be lost. */
#ifndef PT_INBOX_H
#define PT_INBOX_H

#include <stdint.h>

#include "core/request.h"

typedef struct pt_inbox_event {
    /* Set by the caller; borrowed until the event is handed back. */
    const pt_request *req;
    const char *source;    /* "" for the install's own URL */
    const char *dedup_key; /* NULL when the event carries no delivery id */
    const char *status;    /* "received", or "pending" when a script will process it */
    /* Set by the inbox before the event is handed back. */
    int64_t id;    /* the stored event's id (the first one's for a duplicate) */
    int duplicate; /* 1 when dedup_key had been stored before: nothing new was written */
    int rc;        /* 0 when stored, else a pt_err (nothing was stored) */
    struct pt_inbox_event *next; /* the inbox's queue link */
    void *owner;                 /* the caller's, untouched */
} pt_inbox_event;

typedef struct pt_inbox pt_inbox;

/* Called on the writer thread once an event is durably stored, or failed (ev->rc). */
typedef void (*pt_inbox_done_cb)(pt_inbox_event *ev);

/* Creates the events table of datadir if needed (the master calls it before it starts the
 * workers, so they do not race to create it). Returns 0 or a pt_err with a reason in err. */
int pt_inbox_prepare(const char *datadir, char *err, size_t errsz);
/* Opens the events table of datadir (creating it) and starts the writer thread.
 * Returns 0, or a pt_err with a reason in err. Caller frees with pt_inbox_close. */
int pt_inbox_open(const char *datadir, pt_inbox_done_cb done, pt_inbox **out, char *err,
                  size_t errsz);
/* Queues an event; thread-safe, never blocks on I/O. `done` is called exactly once for it. */
void pt_inbox_submit(pt_inbox *ib, pt_inbox_event *ev);
/* Stops the writer after it has written what is queued. NULL is a no-op. */
void pt_inbox_close(pt_inbox *ib);

#endif
