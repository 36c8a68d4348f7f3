/* metrics.h - request counters shared by every process of a server, served as Prometheus text
 * at /_portico/metrics. The master maps the table before it forks the workers; each worker
 * writes only its own slot, so counting costs a few relaxed atomic adds and no lock. */
#ifndef PT_METRICS_H
#define PT_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

typedef struct pt_metrics pt_metrics;

/* Maps a table for nworkers workers and nprocs process slots of the master (workers and
 * spares; shared, anonymous). NULL on failure. Lives until exit. */
pt_metrics *pt_metrics_create(int nworkers, int nprocs);

/* Counts one answered request of worker `index` (1-based). No-op when m is NULL. */
void pt_metrics_request(pt_metrics *m, int index, int status, double seconds, size_t bytes);
/* Counts a webhook event stored by worker `index` (duplicate: not stored again). */
void pt_metrics_event(pt_metrics *m, int index, int duplicate);
/* Counts a request of worker `index` left out of the request log (its buffer was full). */
void pt_metrics_log_dropped(pt_metrics *m, int index);
/* Why a worker was replaced: the `cause` label of portico_worker_restarts_total. */
typedef enum pt_metrics_restart_cause {
    PT_RESTART_CRASH,  /* killed by a signal (a crash, a kill) */
    PT_RESTART_MEMORY, /* a handler ran past the memory limit */
    PT_RESTART_STUCK,  /* every thread stuck in a handler */
    PT_RESTART_OSEXIT, /* a handler called os._exit() */
    PT_RESTART_EXIT,   /* any other exit */
    PT_RESTART_NCAUSES
} pt_metrics_restart_cause;

/* Counts a replacement of worker `index` (the master calls it). */
void pt_metrics_restart(pt_metrics *m, int index, pt_metrics_restart_cause cause);

/* ---- per endpoint ---------------------------------------------------------------------- *
 * The server numbers up to PT_METRICS_ENDPOINTS endpoint names (an endpoint past that is
 * counted only in the server-wide families); each worker counts in its own slot under that
 * number, and each process counts its requests in flight in its own row, which the master
 * zeroes when the process dies. Every per-endpoint family is rendered for every named
 * endpoint, with the label endpoint="NAME". */
#define PT_METRICS_ENDPOINTS 256

/* The number of endpoint `name` (borrowed), taken when new: >= 0, or -1 when m is NULL or the
 * table is full. Any process; cheap enough for a snapshot rebuild, not for every request
 * (keep the number in the route). */
int pt_metrics_endpoint(pt_metrics *m, const char *name);
/* A request of endpoint `ep` begins / ends in the process of master slot `proc`: the
 * in-flight gauge. No-op for ep < 0. */
void pt_metrics_endpoint_begin(pt_metrics *m, int proc, int ep);
void pt_metrics_endpoint_end(pt_metrics *m, int proc, int ep);
/* Zeroes the in-flight row of master slot `proc` (the master, once its process is gone). */
void pt_metrics_endpoint_reset_in_flight(pt_metrics *m, int proc);
/* Counts an answered request of endpoint slot `ep`: status class and latency. */
void pt_metrics_endpoint_request(pt_metrics *m, int index, int ep, int status, double seconds);

/* What an endpoint's settings did to a request (worker_traffic.c): its bulkhead and its
 * response cache. */
typedef enum pt_metrics_traffic {
    PT_TRAFFIC_WAITED,     /* waited in the queue for a bulkhead place */
    PT_TRAFFIC_REJECTED,   /* answered 503: no place within the queue wait */
    PT_TRAFFIC_CACHE_HIT,  /* a GET answered from the response cache */
    PT_TRAFFIC_CACHE_MISS, /* a GET of a cached endpoint that ran the handler */
    PT_TRAFFIC_NKINDS
} pt_metrics_traffic;

/* Counts one such event of endpoint slot `ep` in worker `index`. No-op for ep < 0. */
void pt_metrics_endpoint_traffic(pt_metrics *m, int index, int ep, pt_metrics_traffic what);

/* Counts a request refused by authentication, by reason ("missing", "malformed", "invalid",
 * "expired", "scope", "rate_limited", "unavailable"; anything else counts as "other"). */
void pt_metrics_auth_failure(pt_metrics *m, int index, const char *reason);

/* The outcome of one attempt at processing a stored webhook event. */
typedef enum pt_metrics_event_outcome {
    PT_EVENT_PROCESSED, /* the script ran without an error */
    PT_EVENT_RETRIED,   /* it failed; another attempt is due */
    PT_EVENT_FAILED,    /* it failed its last attempt */
    PT_EVENT_NOUTCOMES
} pt_metrics_event_outcome;
void pt_metrics_event_done(pt_metrics *m, int index, pt_metrics_event_outcome outcome);

/* Every worker's counters added up. */
typedef struct pt_metrics_total {
    uint64_t requests;
    uint64_t by_class[6]; /* [1]..[5]: 1xx..5xx, [0]: anything else */
    uint64_t bytes;
    double seconds;
} pt_metrics_total;

/* Adds up the counters of every worker into out (zeroed when m is NULL). Any process. */
void pt_metrics_sum(const pt_metrics *m, pt_metrics_total *out);

/* Appends the Prometheus text exposition of every worker's counters; events_pending (the
 * webhook events stored and not yet done or failed; < 0: unknown, left out) is a gauge read
 * from the store by the caller. Returns 0 or a pt_buf error. */
int pt_metrics_render(const pt_metrics *m, int64_t events_pending, pt_buf *out);

#endif
