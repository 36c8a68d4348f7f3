/* bulkhead.h - per-endpoint admission shared by every worker: how many requests of an endpoint
 * run at once across the server (its max concurrency). Its waits and refusals are counted with
 * the other per-endpoint metrics (metrics.h, pt_metrics_endpoint_traffic).
 *
 * One table in shared memory, mapped by the master before it forks (as breaker.h). A row per
 * endpoint name, claimed on first use under a process-shared robust mutex and never given
 * back (a removed endpoint's row waits for an endpoint of the same name); PT_BULKHEAD_ROWS
 * names at most, past which an endpoint has no bulkhead (logged). Entering and
 * leaving are lock-free: a compare-and-swap on the row's running count, and a count per
 * process slot so that the master can give back what a dead worker held
 * (pt_bulkhead_forget). */
#ifndef PT_BULKHEAD_H
#define PT_BULKHEAD_H

#include <stdint.h>

#include "core/buf.h"

#define PT_BULKHEAD_ROWS 256

typedef struct pt_bulkhead pt_bulkhead;

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
/* The places taken in row `row` now (0 when there is none). */
int64_t pt_bulkhead_running(const pt_bulkhead *b, int row);
/* Master: the worker in process slot `proc` is gone; gives back every place it held. */
void pt_bulkhead_forget(pt_bulkhead *b, int proc);
/* Appends the gauge portico_endpoint_bulkhead_running, one sample per endpoint row labelled
 * endpoint="NAME". Returns 0 or a pt_buf error. b may be NULL (nothing appended). */
int pt_bulkhead_render(const pt_bulkhead *b, pt_buf *out);

#endif
