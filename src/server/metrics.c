/* metrics.c - request counters shared by every process of a server (Prometheus text). */
#include "server/metrics.h"

#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#define MAX_SLOTS 256

/* Upper bounds of the latency histogram, in seconds (the last bucket is +Inf). */
static const double bucket_le[] = {0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30};
#define NBUCKETS (sizeof(bucket_le) / sizeof(bucket_le[0]))

typedef struct slot {
    atomic_uint_fast64_t by_class[6]; /* 1xx..5xx, [0]: anything else */
    atomic_uint_fast64_t buckets[NBUCKETS + 1];
    atomic_uint_fast64_t micros; /* total request time */
    atomic_uint_fast64_t bytes;  /* total body bytes sent */
    atomic_uint_fast64_t events, duplicates, restarts;
    atomic_uint_fast64_t log_dropped; /* requests the request log had no room for */
} slot;

struct pt_metrics {
    int nworkers;
    slot slots[];
};

pt_metrics *
pt_metrics_create(int nworkers)
{
    if (nworkers < 1 || nworkers > MAX_SLOTS)
        return NULL;
    size_t size = sizeof(pt_metrics) + (size_t)nworkers * sizeof(slot);
    pt_metrics *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return NULL;
    m->nworkers = nworkers; /* the mapping is zeroed, which is a valid initial atomic state */
    return m;
}

static slot *
slot_of(pt_metrics *m, int index)
{
    return m != NULL && index >= 1 && index <= m->nworkers ? &m->slots[index - 1] : NULL;
}

void
pt_metrics_request(pt_metrics *m, int index, int status, double seconds, size_t bytes)
{
    slot *s = slot_of(m, index);
    if (s == NULL)
        return;
    int cls = status >= 100 && status < 600 ? status / 100 : 0;
    atomic_fetch_add_explicit(&s->by_class[cls], 1, memory_order_relaxed);
    size_t b = 0;
    while (b < NBUCKETS && seconds > bucket_le[b])
        b++;
    atomic_fetch_add_explicit(&s->buckets[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->micros, (uint_fast64_t)(seconds * 1e6), memory_order_relaxed);
    atomic_fetch_add_explicit(&s->bytes, bytes, memory_order_relaxed);
}

void
pt_metrics_event(pt_metrics *m, int index, int duplicate)
{
    slot *s = slot_of(m, index);
    if (s != NULL)
        atomic_fetch_add_explicit(duplicate ? &s->duplicates : &s->events, 1, memory_order_relaxed);
}

void
pt_metrics_restart(pt_metrics *m, int index)
{
    slot *s = slot_of(m, index);
    if (s != NULL)
        atomic_fetch_add_explicit(&s->restarts, 1, memory_order_relaxed);
}

void
pt_metrics_log_dropped(pt_metrics *m, int index)
{
    slot *s = slot_of(m, index);
    if (s != NULL)
        atomic_fetch_add_explicit(&s->log_dropped, 1, memory_order_relaxed);
}

static uint64_t
get(const atomic_uint_fast64_t *v)
{
    return (uint64_t)atomic_load_explicit(v, memory_order_relaxed);
}

/* One counter family with a value per worker. */
static int
family(pt_buf *out, const pt_metrics *m, const char *name, const char *help, const char *type,
       size_t offset)
{
    int rc = pt_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
    for (int i = 0; rc == 0 && i < m->nworkers; i++) {
        const atomic_uint_fast64_t *v =
            (const atomic_uint_fast64_t *)((const char *)&m->slots[i] + offset);
        rc =
            pt_buf_printf(out, "%s{worker=\"%d\"} %llu\n", name, i + 1, (unsigned long long)get(v));
    }
    return rc;
}

void
pt_metrics_sum(const pt_metrics *m, pt_metrics_total *out)
{
    uint64_t micros = 0;
    memset(out, 0, sizeof *out);
    for (int i = 0; m != NULL && i < m->nworkers; i++) {
        for (int c = 0; c < 6; c++) {
            out->by_class[c] += get(&m->slots[i].by_class[c]);
            out->requests += get(&m->slots[i].by_class[c]);
        }
        out->bytes += get(&m->slots[i].bytes);
        micros += get(&m->slots[i].micros);
    }
    out->seconds = (double)micros / 1e6;
}

int
pt_metrics_render(const pt_metrics *m, pt_buf *out)
{
    static const char *classes[] = {"other", "1xx", "2xx", "3xx", "4xx", "5xx"};
    int rc = pt_buf_puts(out, "# HELP portico_requests_total Requests answered, by status class.\n"
                              "# TYPE portico_requests_total counter\n");
    for (int i = 0; rc == 0 && i < m->nworkers; i++)
        for (int c = 0; rc == 0 && c < 6; c++)
            rc =
                pt_buf_printf(out, "portico_requests_total{worker=\"%d\",code=\"%s\"} %llu\n",
                              i + 1, classes[c], (unsigned long long)get(&m->slots[i].by_class[c]));
    if (rc == 0)
        rc = pt_buf_puts(out, "# HELP portico_request_duration_seconds Time from a request's "
                              "arrival to its answer.\n"
                              "# TYPE portico_request_duration_seconds histogram\n");
    for (int i = 0; rc == 0 && i < m->nworkers; i++) {
        const slot *s = &m->slots[i];
        uint64_t cum = 0;
        for (size_t b = 0; rc == 0 && b <= NBUCKETS; b++) {
            cum += get(&s->buckets[b]);
            if (b < NBUCKETS)
                rc = pt_buf_printf(out,
                                   "portico_request_duration_seconds_bucket{worker=\"%d\","
                                   "le=\"%g\"} %llu\n",
                                   i + 1, bucket_le[b], (unsigned long long)cum);
            else
                rc = pt_buf_printf(out,
                                   "portico_request_duration_seconds_bucket{worker=\"%d\","
                                   "le=\"+Inf\"} %llu\n",
                                   i + 1, (unsigned long long)cum);
        }
        if (rc == 0)
            rc =
                pt_buf_printf(out,
                              "portico_request_duration_seconds_sum{worker=\"%d\"} %.6f\n"
                              "portico_request_duration_seconds_count{worker=\"%d\"} %llu\n",
                              i + 1, (double)get(&s->micros) / 1e6, i + 1, (unsigned long long)cum);
    }
    if (rc == 0)
        rc = family(out, m, "portico_response_bytes_total", "Response body bytes sent.", "counter",
                    offsetof(slot, bytes));
    if (rc == 0)
        rc = family(out, m, "portico_webhook_events_total", "Webhook events stored durably.",
                    "counter", offsetof(slot, events));
    if (rc == 0)
        rc = family(out, m, "portico_webhook_duplicates_total",
                    "Webhook deliveries answered as duplicates.", "counter",
                    offsetof(slot, duplicates));
    if (rc == 0)
        rc = family(out, m, "portico_worker_restarts_total",
                    "Workers replaced after a crash, a kill or the memory limit.", "counter",
                    offsetof(slot, restarts));
    if (rc == 0)
        rc = family(out, m, "portico_request_log_dropped_total",
                    "Requests left out of the stored request log because its buffer was full.",
                    "counter", offsetof(slot, log_dropped));
    return rc;
}
