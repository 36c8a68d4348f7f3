/* metrics.h - request counters shared by every process of a server, served as Prometheus text
 * at /_portico/metrics. The master maps the table before it forks the workers; each worker
 * writes only its own slot, so counting costs a few relaxed atomic adds and no lock. */
#ifndef PT_METRICS_H
#define PT_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

typedef struct pt_metrics pt_metrics;

/* Maps a table for nworkers workers (shared, anonymous). NULL on failure. Lives until exit. */
pt_metrics *pt_metrics_create(int nworkers);

/* Counts one answered request of worker `index` (1-based). No-op when m is NULL. */
void pt_metrics_request(pt_metrics *m, int index, int status, double seconds, size_t bytes);
/* Counts a webhook event stored by worker `index` (duplicate: not stored again). */
void pt_metrics_event(pt_metrics *m, int index, int duplicate);
/* Counts a request of worker `index` left out of the request log (its buffer was full). */
void pt_metrics_log_dropped(pt_metrics *m, int index);
/* Counts a replacement of worker `index` (the master calls it). */
void pt_metrics_restart(pt_metrics *m, int index);

/* Every worker's counters added up. */
typedef struct pt_metrics_total {
    uint64_t requests;
    uint64_t by_class[6]; /* [1]..[5]: 1xx..5xx, [0]: anything else */
    uint64_t bytes;
    double seconds;
} pt_metrics_total;

/* Adds up the counters of every worker into out (zeroed when m is NULL). Any process. */
void pt_metrics_sum(const pt_metrics *m, pt_metrics_total *out);

/* Appends the Prometheus text exposition of every worker's counters. Returns 0 or a pt_buf
 * error. */
int pt_metrics_render(const pt_metrics *m, pt_buf *out);

#endif
