/* processor.h - hands stored webhook events to their source's script, outside the request
 * path: handler(event), retried with exponential backoff up to a number of attempts, with the
 * status (pending, processing, done, failed) and the last error kept in webhooks.events. */
#ifndef PT_PROCESSOR_H
#define PT_PROCESSOR_H

#include <stddef.h>

typedef struct pt_processor pt_processor;

typedef struct pt_processor_config {
    const char *datadir;
    int max_attempts;           /* after this many failures an event is `failed` (default 5) */
    double backoff;             /* seconds before the first retry; doubles each time (default 1) */
    double lease;               /* seconds a claim lasts before another worker may retry it */
    const char *worker;         /* for log lines ("worker 2") */
    struct pt_metrics *metrics; /* attempts are counted in worker `index`'s slot; may be NULL */
    int index;
} pt_processor_config;

/* Starts the processing thread of this worker (it attaches its own Python thread state).
 * Returns 0 or a pt_err with a reason in err. cfg is copied; datadir must outlive it. */
int pt_processor_start(const pt_processor_config *cfg, pt_processor **out, char *err, size_t errsz);
/* Wakes the thread early: an event that needs processing was just stored. Thread-safe. */
void pt_processor_kick(pt_processor *p);
/* Seconds to wait before retrying an event whose attempts-th attempt (1 or more) failed:
 * backoff, doubled for each earlier failure; the doubling stops once the delay has reached an
 * hour, so a long-failing event is still retried about every one to two hours. */
double pt_processor_retry_delay(double backoff, int attempts);

#endif
