/* metrics.c - request counters shared by every process of a server (Prometheus text). */
#include "server/metrics.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core/err.h"
#include "core/json.h"

#define MAX_SLOTS 256

/* Upper bounds of the latency histogram, in seconds (the last bucket is +Inf). */
static const double bucket_le[] = {0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30};
#define NBUCKETS (sizeof(bucket_le) / sizeof(bucket_le[0]))

static const char *const restart_causes[PT_RESTART_NCAUSES] = {"crash", "memory", "stuck",
                                                               "os_exit", "exit"};
static const char *const auth_reasons[] = {"missing", "malformed",    "invalid",     "expired",
                                           "scope",   "rate_limited", "unavailable", "other"};
#define NREASONS (sizeof(auth_reasons) / sizeof(auth_reasons[0]))
static const char *const classes[6] = {"other", "1xx", "2xx", "3xx", "4xx", "5xx"};

#define EP_NAME_MAX 80

/* An endpoint's number: its name's entry in the server's table. `used` is 0 (free), 1 (being
 * named) or 2 (named: readers may use the name). */
typedef struct ep_name {
    atomic_int used;
    char name[EP_NAME_MAX];
} ep_name;

/* One endpoint's counters in one worker's slot. */
typedef struct ep_slot {
    atomic_uint_fast64_t by_class[6];
    atomic_uint_fast64_t buckets[NBUCKETS + 1];
    atomic_uint_fast64_t micros;
    atomic_uint_fast64_t traffic[PT_TRAFFIC_NKINDS]; /* by pt_metrics_traffic */
} ep_slot;

typedef struct slot {
    atomic_uint_fast64_t by_class[6]; /* 1xx..5xx, [0]: anything else */
    atomic_uint_fast64_t buckets[NBUCKETS + 1];
    atomic_uint_fast64_t micros; /* total request time */
    atomic_uint_fast64_t bytes;  /* total body bytes sent */
    atomic_uint_fast64_t events, duplicates;
    atomic_uint_fast64_t restarts[PT_RESTART_NCAUSES];
    atomic_uint_fast64_t log_dropped; /* requests the request log had no room for */
    atomic_uint_fast64_t auth_failures[NREASONS];
    atomic_uint_fast64_t event_outcomes[PT_EVENT_NOUTCOMES];
    ep_slot eps[PT_METRICS_ENDPOINTS];
} slot;

/* Requests in flight per endpoint, one row per process slot of the master: a row belongs to
 * one process at a time, so the master can zero a dead process's row. */
typedef struct proc_row {
    atomic_int_fast64_t in_flight[PT_METRICS_ENDPOINTS];
} proc_row;

struct pt_metrics {
    int nworkers, nprocs;
    ep_name names[PT_METRICS_ENDPOINTS];
    proc_row *procs; /* nprocs rows after the slots, in the same mapping */
    slot slots[];
};

pt_metrics *
pt_metrics_create(int nworkers, int nprocs)
{
    if (nworkers < 1 || nworkers > MAX_SLOTS || nprocs < nworkers || nprocs > 2 * MAX_SLOTS)
        return NULL;
    size_t head = sizeof(pt_metrics) + (size_t)nworkers * sizeof(slot);
    size_t size = head + (size_t)nprocs * sizeof(proc_row);
    pt_metrics *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return NULL;
    /* The mapping is zeroed, which is a valid initial atomic state; mapped before the fork,
     * so the pointer is the same in every process. */
    m->nworkers = nworkers;
    m->nprocs = nprocs;
    m->procs = (proc_row *)((char *)m + head);
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
pt_metrics_restart(pt_metrics *m, int index, pt_metrics_restart_cause cause)
{
    slot *s = slot_of(m, index);
    if (s != NULL && cause >= 0 && cause < PT_RESTART_NCAUSES)
        atomic_fetch_add_explicit(&s->restarts[cause], 1, memory_order_relaxed);
}

void
pt_metrics_auth_failure(pt_metrics *m, int index, const char *reason)
{
    slot *s = slot_of(m, index);
    size_t r = 0;

    if (s == NULL)
        return;
    while (r + 1 < NREASONS && (reason == NULL || strcmp(auth_reasons[r], reason) != 0))
        r++;
    atomic_fetch_add_explicit(&s->auth_failures[r], 1, memory_order_relaxed);
}

void
pt_metrics_event_done(pt_metrics *m, int index, pt_metrics_event_outcome outcome)
{
    slot *s = slot_of(m, index);
    if (s != NULL && outcome >= 0 && outcome < PT_EVENT_NOUTCOMES)
        atomic_fetch_add_explicit(&s->event_outcomes[outcome], 1, memory_order_relaxed);
}

/* ---- per endpoint ---------------------------------------------------------------------- */

int
pt_metrics_endpoint(pt_metrics *m, const char *name)
{
    size_t n = strlen(name);

    if (m == NULL || n >= EP_NAME_MAX)
        return -1;
    for (int i = 0; i < PT_METRICS_ENDPOINTS; i++) {
        ep_name *e = &m->names[i];
        int used = atomic_load_explicit(&e->used, memory_order_acquire);
        /* Another process is writing this name, a few stores away (or died doing it: then the
         * entry stays unusable, and render merges a name found twice). */
        for (int spin = 0; used == 1 && spin < 1000000; spin++)
            used = atomic_load_explicit(&e->used, memory_order_acquire);
        if (used == 2 && strcmp(e->name, name) == 0)
            return i;
        if (used == 0) {
            int expect = 0;
            if (!atomic_compare_exchange_strong(&e->used, &expect, 1)) {
                i--; /* taken meanwhile: look at it again */
                continue;
            }
            memcpy(e->name, name, n + 1);
            atomic_store_explicit(&e->used, 2, memory_order_release);
            return i;
        }
    }
    return -1;
}

static atomic_int_fast64_t *
in_flight_of(pt_metrics *m, int proc, int ep)
{
    return m != NULL && proc >= 0 && proc < m->nprocs && ep >= 0 && ep < PT_METRICS_ENDPOINTS
               ? &m->procs[proc].in_flight[ep]
               : NULL;
}

void
pt_metrics_endpoint_begin(pt_metrics *m, int proc, int ep)
{
    atomic_int_fast64_t *v = in_flight_of(m, proc, ep);
    if (v != NULL)
        atomic_fetch_add_explicit(v, 1, memory_order_relaxed);
}

void
pt_metrics_endpoint_end(pt_metrics *m, int proc, int ep)
{
    atomic_int_fast64_t *v = in_flight_of(m, proc, ep);
    if (v != NULL)
        atomic_fetch_sub_explicit(v, 1, memory_order_relaxed);
}

void
pt_metrics_endpoint_reset_in_flight(pt_metrics *m, int proc)
{
    for (int i = 0; m != NULL && proc >= 0 && proc < m->nprocs && i < PT_METRICS_ENDPOINTS; i++)
        atomic_store_explicit(&m->procs[proc].in_flight[i], 0, memory_order_relaxed);
}

static ep_slot *
ep_of(pt_metrics *m, int index, int ep)
{
    slot *s = slot_of(m, index);
    return s != NULL && ep >= 0 && ep < PT_METRICS_ENDPOINTS ? &s->eps[ep] : NULL;
}

void
pt_metrics_endpoint_request(pt_metrics *m, int index, int ep, int status, double seconds)
{
    ep_slot *e = ep_of(m, index, ep);
    if (e == NULL)
        return;
    int cls = status >= 100 && status < 600 ? status / 100 : 0;
    size_t b = 0;
    while (b < NBUCKETS && seconds > bucket_le[b])
        b++;
    atomic_fetch_add_explicit(&e->by_class[cls], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&e->buckets[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&e->micros, (uint_fast64_t)(seconds * 1e6), memory_order_relaxed);
}

void
pt_metrics_endpoint_traffic(pt_metrics *m, int index, int ep, pt_metrics_traffic what)
{
    ep_slot *e = ep_of(m, index, ep);
    if (e != NULL && what >= 0 && what < PT_TRAFFIC_NKINDS)
        atomic_fetch_add_explicit(&e->traffic[what], 1, memory_order_relaxed);
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

/* One endpoint's counters added up over the workers. */
typedef struct ep_total {
    const char *name; /* borrowed from a slot */
    uint64_t by_class[6];
    uint64_t buckets[NBUCKETS + 1];
    uint64_t micros;
    uint64_t traffic[PT_TRAFFIC_NKINDS];
    int64_t in_flight;
} ep_total;

static int
ep_total_cmp(const void *a, const void *b)
{
    return strcmp(((const ep_total *)a)->name, ((const ep_total *)b)->name);
}

/* A label value: the endpoint name as a JSON string is also a valid Prometheus label value
 * for the names endpoints may have (letters, digits, '_', '.', '-'). */
static int
label(pt_buf *out, const char *v)
{
    return pt_json_string(out, v, strlen(v));
}

/* The per-endpoint counter families of pt_metrics_traffic, in its order. */
static const struct {
    const char *name, *help;
} traffic_families[PT_TRAFFIC_NKINDS] = {
    {"portico_endpoint_bulkhead_waits_total",
     "Requests that waited in the queue for a place under the endpoint's --max-concurrency."},
    {"portico_endpoint_bulkhead_rejected_total",
     "Requests answered 503: no place under the endpoint's --max-concurrency within its "
     "--queue-wait."},
    {"portico_endpoint_cache_hits_total", "GET requests answered from the response cache."},
    {"portico_endpoint_cache_misses_total",
     "GET requests of an endpoint with --cache that ran the handler."},
};

/* The per-endpoint families: requests by status class, the latency histogram, in flight, and
 * the bulkhead and cache counters. */
static int
render_endpoints(const pt_metrics *m, pt_buf *out)
{
    ep_total *t = calloc(PT_METRICS_ENDPOINTS, sizeof(*t));
    size_t n = 0, i;
    int rc = 0;

    if (t == NULL)
        return PT_ENOMEM;
    for (int e = 0; e < PT_METRICS_ENDPOINTS; e++) {
        ep_total *k = NULL;
        if (atomic_load_explicit(&m->names[e].used, memory_order_acquire) != 2)
            continue;
        for (i = 0; k == NULL && i < n; i++)
            if (strcmp(t[i].name, m->names[e].name) == 0)
                k = &t[i];
        if (k == NULL) {
            k = &t[n++];
            k->name = m->names[e].name;
        }
        for (int w = 0; w < m->nworkers; w++) {
            const ep_slot *es = &m->slots[w].eps[e];
            for (int c = 0; c < 6; c++)
                k->by_class[c] += get(&es->by_class[c]);
            for (size_t b = 0; b <= NBUCKETS; b++)
                k->buckets[b] += get(&es->buckets[b]);
            k->micros += get(&es->micros);
            for (int x = 0; x < PT_TRAFFIC_NKINDS; x++)
                k->traffic[x] += get(&es->traffic[x]);
        }
        for (int p = 0; p < m->nprocs; p++)
            k->in_flight +=
                (int64_t)atomic_load_explicit(&m->procs[p].in_flight[e], memory_order_relaxed);
    }
    qsort(t, n, sizeof(*t), ep_total_cmp);
    rc = pt_buf_puts(out, "# HELP portico_endpoint_requests_total Requests answered per endpoint, "
                          "by status class.\n"
                          "# TYPE portico_endpoint_requests_total counter\n");
    for (i = 0; rc == 0 && i < n; i++)
        for (int c = 1; rc == 0 && c < 6; c++) {
            rc = pt_buf_puts(out, "portico_endpoint_requests_total{endpoint=");
            rc = rc != 0 ? rc : label(out, t[i].name);
            rc = rc != 0 ? rc
                         : pt_buf_printf(out, ",code=\"%s\"} %llu\n", classes[c],
                                         (unsigned long long)t[i].by_class[c]);
        }
    if (rc == 0)
        rc = pt_buf_puts(out, "# HELP portico_endpoint_request_duration_seconds Time from a "
                              "request's arrival to its answer, per endpoint.\n"
                              "# TYPE portico_endpoint_request_duration_seconds histogram\n");
    for (i = 0; rc == 0 && i < n; i++) {
        uint64_t cum = 0;
        for (size_t b = 0; rc == 0 && b <= NBUCKETS; b++) {
            char le[32];
            cum += t[i].buckets[b];
            if (b < NBUCKETS)
                snprintf(le, sizeof(le), "%g", bucket_le[b]);
            else
                snprintf(le, sizeof(le), "+Inf");
            rc = pt_buf_puts(out, "portico_endpoint_request_duration_seconds_bucket{endpoint=");
            rc = rc != 0 ? rc : label(out, t[i].name);
            rc = rc != 0 ? rc
                         : pt_buf_printf(out, ",le=\"%s\"} %llu\n", le, (unsigned long long)cum);
        }
        rc = rc != 0 ? rc
                     : pt_buf_puts(out, "portico_endpoint_request_duration_seconds_sum{endpoint=");
        rc = rc != 0 ? rc : label(out, t[i].name);
        rc = rc != 0 ? rc : pt_buf_printf(out, "} %.6f\n", (double)t[i].micros / 1e6);
        rc = rc != 0
                 ? rc
                 : pt_buf_puts(out, "portico_endpoint_request_duration_seconds_count{endpoint=");
        rc = rc != 0 ? rc : label(out, t[i].name);
        rc = rc != 0 ? rc : pt_buf_printf(out, "} %llu\n", (unsigned long long)cum);
    }
    if (rc == 0)
        rc = pt_buf_puts(out, "# HELP portico_endpoint_requests_in_flight Requests of the "
                              "endpoint being handled now.\n"
                              "# TYPE portico_endpoint_requests_in_flight gauge\n");
    for (i = 0; rc == 0 && i < n; i++) {
        rc = pt_buf_puts(out, "portico_endpoint_requests_in_flight{endpoint=");
        rc = rc != 0 ? rc : label(out, t[i].name);
        rc = rc != 0 ? rc : pt_buf_printf(out, "} %lld\n", (long long)t[i].in_flight);
    }
    for (int x = 0; rc == 0 && x < PT_TRAFFIC_NKINDS; x++) {
        const char *name = traffic_families[x].name;
        rc = pt_buf_printf(out, "# HELP %s %s\n# TYPE %s counter\n", name, traffic_families[x].help,
                           name);
        for (i = 0; rc == 0 && i < n; i++) {
            rc = pt_buf_printf(out, "%s{endpoint=", name);
            rc = rc != 0 ? rc : label(out, t[i].name);
            rc = rc != 0 ? rc : pt_buf_printf(out, "} %llu\n", (unsigned long long)t[i].traffic[x]);
        }
    }
    free(t);
    return rc;
}

/* A counter family with one value per label value, added up over the workers; `offset` is the
 * first of nvalues counters in a slot. */
static int
labelled_family(pt_buf *out, const pt_metrics *m, const char *name, const char *help,
                const char *label_name, const char *const *values, size_t nvalues, size_t offset)
{
    int rc = pt_buf_printf(out, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
    for (size_t v = 0; rc == 0 && v < nvalues; v++) {
        uint64_t sum = 0;
        for (int i = 0; i < m->nworkers; i++)
            sum += get((const atomic_uint_fast64_t *)((const char *)&m->slots[i] + offset) + v);
        rc = pt_buf_printf(out, "%s{%s=\"%s\"} %llu\n", name, label_name, values[v],
                           (unsigned long long)sum);
    }
    return rc;
}

int
pt_metrics_render(const pt_metrics *m, int64_t events_pending, pt_buf *out)
{
    static const char *const outcomes[PT_EVENT_NOUTCOMES] = {"processed", "retried", "failed"};
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
        rc = pt_buf_puts(out, "# HELP portico_worker_restarts_total Workers replaced, by cause "
                              "(crash: killed by a signal).\n"
                              "# TYPE portico_worker_restarts_total counter\n");
    for (int i = 0; rc == 0 && i < m->nworkers; i++)
        for (int c = 0; rc == 0 && c < PT_RESTART_NCAUSES; c++)
            rc = pt_buf_printf(
                out, "portico_worker_restarts_total{worker=\"%d\",cause=\"%s\"} %llu\n", i + 1,
                restart_causes[c], (unsigned long long)get(&m->slots[i].restarts[c]));
    if (rc == 0)
        rc = family(out, m, "portico_request_log_dropped_total",
                    "Requests left out of the stored request log because its buffer was full.",
                    "counter", offsetof(slot, log_dropped));
    if (rc == 0)
        rc = labelled_family(out, m, "portico_auth_failures_total",
                             "Requests refused by authentication, by reason.", "reason",
                             auth_reasons, NREASONS, offsetof(slot, auth_failures));
    if (rc == 0)
        rc = labelled_family(out, m, "portico_webhook_event_attempts_total",
                             "Attempts at processing stored webhook events, by outcome.", "outcome",
                             outcomes, PT_EVENT_NOUTCOMES, offsetof(slot, event_outcomes));
    if (rc == 0 && events_pending >= 0)
        rc = pt_buf_printf(out,
                           "# HELP portico_webhook_events_pending Webhook events stored and "
                           "not yet processed or failed.\n"
                           "# TYPE portico_webhook_events_pending gauge\n"
                           "portico_webhook_events_pending %lld\n",
                           (long long)events_pending);
    if (rc == 0)
        rc = render_endpoints(m, out);
    return rc;
}
