/* bulkhead.h - per-endpoint admission shared by every worker: how many requests of an endpoint
 * run at once across the server (its max concurrency), and the endpoint's traffic counters
 * (bulkhead waits and refusals, response cache hits and misses) for /_portico/metrics.
 *
 * One table in shared memory, mapped by the master before it forks (as breaker.h). A row per
 * endpoint name, claimed on first use under a process-shared robust mutex and never given
 * back (a removed endpoint's row waits for an endpoint of the same name); PT_BULKHEAD_ROWS
 * names at most, past which an endpoint has no bulkhead and no counters (logged). Entering and
 * leaving are lock-free: a compare-and-swap on the row's running count, and a count per
 * process slot so that the master can give back what a dead worker held
 * (pt_bulkhead_forget). */
#ifndef PT_BULKHEAD_H
#define PT_BULKHEAD_H

#include <stdint.h>

#include "core/buf.h"

#define PT_BULKHEAD_ROWS 256

typedef struct pt_bulkhead pt_bulkhead;

/* The traffic counters of a row. */
enum pt_bulkhead_counter {
    PT_BH_WAITED,   /* requests that waited for a place */
    PT_BH_REJECTED, /* requests answered 503: no place within the queue wait */
    PT_BH_CACHE_HIT,
    PT_BH_CACHE_MISS,
    PT_BH_NCOUNTERS
};

/* Maps a table for `nprocs` process slots (shared, anonymous). NULL on failure (errno). Lives
 * until exit. */
pt_bulkhead *pt_bulkhead_create(int nprocs);
/* The row of endpoint `name` (borrowed), claimed when new: 0..PT_BULKHEAD_ROWS-1, or -1 when
 * the table is full, b is NULL or name too long. Any process; takes the table's mutex only
 * to claim. */
int pt_bulkhead_row(pt_bulkhead *b, const char *name);
/* Takes a place in row `row` for process slot `proc` when fewer than `max` are taken. Returns
 * 1 when taken (give it back with pt_bulkhead_leave), 0 when full. Lock-free. */
int pt_bulkhead_enter(pt_bulkhead *b, int row, int proc, int64_t max);
/* Gives back a place pt_bulkhead_enter took. */
void pt_bulkhead_leave(pt_bulkhead *b, int row, int proc);
/* Adds one to counter c of row `row`. No-op when b is NULL or row < 0. */
void pt_bulkhead_count(pt_bulkhead *b, int row, enum pt_bulkhead_counter c);
/* Reads counter c of row `row` (0 when there is none). */
uint64_t pt_bulkhead_counter(const pt_bulkhead *b, int row, enum pt_bulkhead_counter c);
/* Master: the worker in process slot `proc` is gone; gives back every place it held. */
void pt_bulkhead_forget(pt_bulkhead *b, int proc);
/* Appends, per endpoint row, the Prometheus series
 * portico_endpoint_bulkhead_running, portico_endpoint_bulkhead_waits_total,
 * portico_endpoint_bulkhead_rejected_total, portico_endpoint_cache_hits_total and
 * portico_endpoint_cache_misses_total, labelled endpoint="NAME". Returns 0 or a pt_buf
 * error. b may be NULL (nothing appended). */
int pt_bulkhead_render(const pt_bulkhead *b, pt_buf *out);

#endif
