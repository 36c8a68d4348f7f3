/* reqlog.c - a worker's request log buffer and its writer thread (see reqlog.h).
 *
 * Design notes
 * ------------
 * The buffer is a byte ring with one producer (the thread leading the event loop; leader
 * changes happen under the worker's mutex, which orders them) and one consumer (the writer
 * thread). Positions `head` (written by the producer) and `tail` (by the consumer) only grow;
 * a byte's place in the ring is its position modulo the size.
 *
 *   1. A record (pt_reqlog_rec, store_reqlog.h: the file stores records as they are here) is
 *      never split by the ring's end: when it would be, the producer writes a pad record to
 *      the end and the record at the start.
 *   2. The producer writes a record's bytes, then publishes it by storing head (release); the
 *      consumer reads head (acquire), so it never sees a partial record.
 *   3. The consumer hands the records to SQLite straight from the ring (one blob per
 *      contiguous run) and only then stores tail (release): the producer (acquire) never
 *      overwrites bytes still being read.
 *   4. A record that does not fit is dropped and counted; the producer never waits. The
 *      writer polls (it pauses 200 ms after each batch) rather than being woken, so appending
 *      costs no system call. Fewer, larger batches are cheaper: every worker writes the same
 *      file, and each commit of another worker makes SQLite read its pages again.
 */
#include "server/reqlog.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/err.h"
#include "core/log.h"
#include "store/store_reqlog.h"

#define IDLE_WAIT_NS 200000000L /* the writer's pause after each batch */
#define PRUNE_EVERY_MS 1000     /* how often the writer prunes */
#define DROP_LOG_EVERY_MS 10000 /* the "dropped" log line, at most this often */

struct pt_reqlog {
    pt_reqlog_config cfg;
    atomic_int worker; /* the last entry's worker number: stored before head, read after it */
    char *ring;
    size_t size; /* a multiple of 8 */
    _Alignas(64) atomic_uint_fast64_t head;
    _Alignas(64) atomic_uint_fast64_t tail;
    atomic_uint_fast64_t dropped;
    atomic_int stop;
    pthread_t thread;
    pthread_mutex_t mu; /* only for the writer's timed wait and stop */
    pthread_cond_t cv;
    pt_store_reqlog *db;
};

static size_t
align8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

static int64_t
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
pt_reqlog_append(pt_reqlog *rl, const pt_reqlog_entry *e)
{
    if (rl == NULL)
        return 0;
    size_t need = pt_store_reqlog_rec_size(e);
    uint64_t head = atomic_load_explicit(&rl->head, memory_order_relaxed);
    uint64_t tail = atomic_load_explicit(&rl->tail, memory_order_acquire);
    size_t off = (size_t)(head % rl->size);
    size_t contiguous = rl->size - off;
    size_t total = need <= contiguous ? need : contiguous + need;
    if (need == 0 || total > rl->size - (size_t)(head - tail)) {
        atomic_fetch_add_explicit(&rl->dropped, 1, memory_order_relaxed);
        pt_metrics_log_dropped(rl->cfg.metrics, e->worker);
        return PT_ETOOBIG;
    }
    if (need > contiguous) { /* invariant 1: a pad record to the end, the record at the start */
        pt_reqlog_rec *pad = (pt_reqlog_rec *)(rl->ring + off);
        pad->size = (uint32_t)contiguous;
        pad->pad = 1;
        off = 0;
    }
    pt_store_reqlog_rec_write(rl->ring + off, e);
    atomic_store_explicit(&rl->worker, e->worker, memory_order_relaxed);
    atomic_store_explicit(&rl->head, head + total, memory_order_release); /* invariant 2 */
    return 0;
}

uint64_t
pt_reqlog_dropped(const pt_reqlog *rl)
{
    return rl != NULL ? atomic_load_explicit(&rl->dropped, memory_order_relaxed) : 0;
}

/* Splits the records between *pos and head into at most two batches (the ring's end cuts a
 * run; pad records are left out), each of at most PT_REQLOG_BATCH_MAX records. Returns how many
 * batches; *pos moves past what they hold. Writer thread. */
static size_t
collect(pt_reqlog *rl, uint64_t *pos, uint64_t head, pt_reqlog_batch b[2])
{
    size_t nb = 0;
    while (*pos < head && nb < 2) {
        size_t off = (size_t)(*pos % rl->size);
        pt_reqlog_rec *r = (pt_reqlog_rec *)(rl->ring + off);
        if (r->pad) {
            *pos += r->size;
            continue;
        }
        pt_reqlog_batch *cur = &b[nb++];
        *cur = (pt_reqlog_batch){.recs = r,
                                 .len = 0,
                                 .n = 0,
                                 .worker = atomic_load_explicit(&rl->worker, memory_order_relaxed)};
        /* A run ends at head, at a pad record or at the ring's end. */
        while (*pos < head && cur->n < PT_REQLOG_BATCH_MAX) {
            r = (pt_reqlog_rec *)(rl->ring + (size_t)(*pos % rl->size));
            if (r->pad || (size_t)(*pos % rl->size) < off)
                break;
            cur->len += r->size;
            cur->n++;
            *pos += r->size;
        }
    }
    return nb;
}

static void *
writer_main(void *arg)
{
    pt_reqlog *rl = arg;
    pt_reqlog_batch batches[2];
    int64_t last_prune = 0, last_drop_log = 0;
    uint64_t dropped_logged = 0;
    int failing = 0;

    for (;;) {
        int stopping = atomic_load(&rl->stop);
        uint64_t tail = atomic_load_explicit(&rl->tail, memory_order_relaxed);
        uint64_t head = atomic_load_explicit(&rl->head, memory_order_acquire);
        uint64_t pos = tail;
        size_t nb = collect(rl, &pos, head, batches);
        if (nb > 0) {
            int rc = pt_store_reqlog_insert(rl->db, batches, nb);
            if (rc != 0 && !failing)
                pt_log_error("request log: %s; %zu requests not logged",
                             pt_store_reqlog_error(rl->db),
                             batches[0].n + (nb > 1 ? batches[1].n : 0));
            failing = rc != 0;
        }
        atomic_store_explicit(&rl->tail, pos, memory_order_release); /* invariant 3 */

        int64_t now = now_ms();
        uint64_t dropped = atomic_load_explicit(&rl->dropped, memory_order_relaxed);
        if (dropped != dropped_logged && now - last_drop_log >= DROP_LOG_EVERY_MS) {
            pt_log_warn("request log: %llu request%s dropped since the last report (its buffer "
                        "of %zu bytes was full)",
                        (unsigned long long)(dropped - dropped_logged),
                        dropped - dropped_logged == 1 ? "" : "s", rl->size);
            dropped_logged = dropped;
            last_drop_log = now;
        }
        if (now - last_prune >= PRUNE_EVERY_MS) {
            int64_t min_ts = rl->cfg.max_age_s > 0 ? now - rl->cfg.max_age_s * 1000 : 0;
            if (pt_store_reqlog_prune(rl->db, min_ts, rl->cfg.max_rows, rl->cfg.max_bytes, NULL) !=
                0)
                pt_log_warn("request log: %s", pt_store_reqlog_error(rl->db));
            last_prune = now;
        }
        if (stopping && pos == head)
            break;
        if (pos == head) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += IDLE_WAIT_NS;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_mutex_lock(&rl->mu);
            if (!atomic_load(&rl->stop))
                pthread_cond_timedwait(&rl->cv, &rl->mu, &ts);
            pthread_mutex_unlock(&rl->mu);
        }
    }
    return NULL;
}

int
pt_reqlog_start(const pt_reqlog_config *cfg, pt_reqlog **out, char *err, size_t errsz)
{
    pt_reqlog *rl = calloc(1, sizeof(*rl));
    int rc;

    *out = NULL;
    if (rl == NULL) {
        snprintf(err, errsz, "out of memory");
        return PT_ENOMEM;
    }
    rl->cfg = *cfg;
    rl->size = align8(cfg->buffer_bytes > 0 ? cfg->buffer_bytes : PT_REQLOG_BUFFER_DEFAULT);
    if (rl->size < PT_REQLOG_BUFFER_MIN)
        rl->size = PT_REQLOG_BUFFER_MIN;
    if ((rl->ring = aligned_alloc(8, rl->size)) == NULL) {
        free(rl);
        snprintf(err, errsz, "out of memory");
        return PT_ENOMEM;
    }
    atomic_init(&rl->head, 0);
    atomic_init(&rl->tail, 0);
    atomic_init(&rl->dropped, 0);
    atomic_init(&rl->stop, 0);
    atomic_init(&rl->worker, cfg->worker);
    pthread_mutex_init(&rl->mu, NULL);
    pthread_cond_init(&rl->cv, NULL);
    rc = pt_store_reqlog_open(cfg->datadir, 0, &rl->db, err, errsz);
    if (rc == 0 && pthread_create(&rl->thread, NULL, writer_main, rl) != 0) {
        snprintf(err, errsz, "cannot start the writer thread");
        rc = PT_EIO;
    }
    if (rc != 0) {
        pt_store_reqlog_close(rl->db);
        free(rl->ring);
        free(rl);
        return rc;
    }
    *out = rl;
    return 0;
}

void
pt_reqlog_stop(pt_reqlog *rl)
{
    if (rl == NULL)
        return;
    pthread_mutex_lock(&rl->mu);
    atomic_store(&rl->stop, 1);
    pthread_cond_signal(&rl->cv);
    pthread_mutex_unlock(&rl->mu);
    pthread_join(rl->thread, NULL);
    pt_store_reqlog_close(rl->db);
    free(rl->ring);
    free(rl);
}
