/* reqlog.h - a worker's side of the stored request log: a bounded buffer that the request path
 * appends to without a system call or a lock, and a writer thread that moves what it holds into
 * DATA/logs/requests.db (store/store_reqlog.h) in batches, one transaction each, and prunes the
 * log by age, row count and size. When the buffer is full the request is left out and counted. */
#ifndef PT_REQLOG_H
#define PT_REQLOG_H

#include <stddef.h>
#include <stdint.h>

#include "server/metrics.h"
#include "store/store_reqlog.h"

typedef struct pt_reqlog pt_reqlog;

typedef struct pt_reqlog_config {
    const char *datadir; /* borrowed, must outlive the log */
    int worker;          /* this worker's index (1-based; 0: a spare, until entries say) */
    size_t buffer_bytes; /* the buffer's size; 0: PT_REQLOG_BUFFER_DEFAULT */
    int64_t max_age_s;   /* prune rows older than this; 0: no age bound */
    long long max_rows;  /* keep at most this many rows; 0: no count bound */
    long long max_bytes; /* keep the file's data within this many bytes; 0: no size bound */
    pt_metrics *metrics; /* where drops are counted (may be NULL) */
} pt_reqlog_config;

#define PT_REQLOG_BUFFER_DEFAULT (4u << 20)
/* The buffer is at least this big (a smaller setting is raised to it). */
#define PT_REQLOG_BUFFER_MIN 4096u

/* Opens the log file and starts the writer thread. Returns 0 (*out to pt_reqlog_stop), or a
 * pt_err with the reason in err. */
int pt_reqlog_start(const pt_reqlog_config *cfg, pt_reqlog **out, char *err, size_t errsz);
/* Appends e (copied, as a pt_reqlog_rec) to the buffer: no system call, no lock. Returns 0, or
 * PT_ETOOBIG when it did not fit (the request is counted as dropped). One producer at a time: the
 * thread leading the worker's loop. rl may be NULL (no log: a no-op). e->worker labels the batch
 * the entry is stored in: a worker's number changes once, from 0 (a spare, which logs nothing)
 * to its number on promotion, so every entry of a batch carries the same. */
int pt_reqlog_append(pt_reqlog *rl, const pt_reqlog_entry *e);
/* How many entries were dropped so far. */
uint64_t pt_reqlog_dropped(const pt_reqlog *rl);
/* Writes what the buffer holds, stops the writer and frees rl. NULL is a no-op. */
void pt_reqlog_stop(pt_reqlog *rl);

#endif
