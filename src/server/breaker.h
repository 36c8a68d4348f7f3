/* breaker.h - the crash breaker: an endpoint whose handler keeps killing workers is answered
 * 503 in C for a cool-down, by every worker, without running Python.
 *
 * One table in shared memory, mapped by the master before it forks. A worker going away
 * because of a handler (fatal signal, os._exit(), MemoryError) writes the endpoint's name into
 * its process slot first (pt_breaker_blame, async-signal-safe); the master reads it when it
 * reaps the worker (pt_breaker_take_blame) and counts the death (pt_breaker_record). Workers
 * check every routed request against the open entries (pt_breaker_check: one atomic load while
 * nothing is open).
 *
 * The numbers: PT_BREAKER_DEATHS deaths within PT_BREAKER_WINDOW seconds open the breaker for
 * PT_BREAKER_COOLDOWN seconds (Retry-After). A death counts from the moment the dying worker
 * blames the endpoint, before the master reaps it, so a client retrying at once cannot kill
 * more workers meanwhile. Once the cool-down is over the endpoint is on probation for
 * PT_BREAKER_WINDOW seconds: one more death opens it again at once, for twice the previous
 * cool-down (at most PT_BREAKER_COOLDOWN_MAX). A worker killed from outside (SIGKILL, the
 * kernel's OOM killer) names no endpoint and is not counted. The master keeps PT_BREAKER_DEATHS
 * spare workers warm (master.c), so the deaths before the breaker opens are each replaced at
 * once. */
#ifndef PT_BREAKER_H
#define PT_BREAKER_H

#include <stddef.h>

#include "core/buf.h"

#define PT_BREAKER_DEATHS 2
#define PT_BREAKER_WINDOW 60.0
#define PT_BREAKER_COOLDOWN 30.0
#define PT_BREAKER_COOLDOWN_MAX 300.0
#define PT_BREAKER_NAME_MAX 64 /* endpoint names are shorter (store.h checks them) */

typedef struct pt_breaker pt_breaker;

/* Maps a table with `nprocs` process slots (shared, anonymous). NULL on failure (errno). Lives
 * until exit. */
pt_breaker *pt_breaker_create(int nprocs);

/* ---- Worker side -------------------------------------------------------------------------- */

/* Process slot `proc` (0-based) is going away because of endpoint `name` (borrowed). No-op
 * when b is NULL or name NULL. Async-signal-safe. */
void pt_breaker_blame(pt_breaker *b, int proc, const char *name);
/* Is the breaker of endpoint `name` (borrowed) open? Returns 1 with the seconds left (at least
 * 1) in *retry_after, and counts the rejection; 0 otherwise. b may be NULL. Any thread; one
 * atomic load while no breaker is open. */
int pt_breaker_check(pt_breaker *b, const char *name, int *retry_after);

/* ---- Master side -------------------------------------------------------------------------- */

/* Times are CLOCK_MONOTONIC seconds. Copies the endpoint slot `proc` blamed into name
 * (PT_BREAKER_NAME_MAX bytes) and clears it. Returns 1 when there was one, 0 otherwise. */
int pt_breaker_take_blame(pt_breaker *b, int proc, char *name);
/* Counts a worker death caused by endpoint `name` (borrowed) at `now`. Returns the cool-down
 * in seconds when this death opened the breaker (the caller logs it), 0 otherwise. */
double pt_breaker_record(pt_breaker *b, const char *name, double now);
/* Closes the entries whose cool-down is over at `now` (they go on probation). Returns how
 * many closed. The master calls it at every turn of its loop. */
int pt_breaker_tick(pt_breaker *b, double now);

/* Appends the Prometheus counters portico_breaker_trips_total (times a breaker opened) and
 * portico_breaker_rejected_total (requests it answered 503). Returns 0 or a pt_buf error. */
int pt_breaker_render(const pt_breaker *b, pt_buf *out);

#endif
