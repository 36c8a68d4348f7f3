/* admin_stats.c - GET /stats/endpoints: calls, 4xx, 5xx, p50 and p95 duration per endpoint over
 * the last `since` (default 1h), read from the request log in pages, newest first. */
#include "admin/admin_stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/config.h"
#include "core/err.h"
#include "store/store_reqlog.h"

#define STATS_PAGE 5000
/* At most this many requests are read; past it the answer says "truncated": true. */
#define STATS_READ_MAX 200000
#define STATS_SINCE_MAX (7 * 86400)

typedef struct ep_stats {
    char *name; /* owned */
    long long calls, client_errors, errors;
    double *d; /* durations, ms; owned */
    size_t nd, cap;
} ep_stats;

typedef struct stats {
    ep_stats *e; /* owned */
    size_t n, cap;
} stats;

static void
stats_free(stats *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->e[i].name);
        free(s->e[i].d);
    }
    free(s->e);
}

/* p (an array of n elements of `size` bytes in *cap, owned by the caller) with room for one
 * more: p itself, or p reallocated to twice its capacity (`first` when empty) with *cap
 * updated. NULL when out of memory: p is then still the caller's, unchanged. */
static void *
grow(void *p, size_t n, size_t *cap, size_t size, size_t first)
{
    if (n < *cap)
        return p;
    size_t c = *cap ? *cap * 2 : first;
    void *q = realloc(p, c * size);
    if (q != NULL)
        *cap = c;
    return q;
}

/* The entry of endpoint `name` in s, added when new; NULL when out of memory. Borrowed. */
static ep_stats *
stats_of(stats *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->e[i].name, name) == 0)
            return &s->e[i];
    ep_stats *all = grow(s->e, s->n, &s->cap, sizeof(*s->e), 16);
    if (all == NULL)
        return NULL;
    s->e = all;
    ep_stats *e = &s->e[s->n];
    memset(e, 0, sizeof(*e));
    if ((e->name = strdup(name)) == NULL)
        return NULL;
    s->n++;
    return e;
}

/* Adds one request; returns 0 or PT_ENOMEM. */
static int
stats_add(stats *s, const pt_reqlog_row *row)
{
    ep_stats *e = stats_of(s, row->endpoint);
    double *d = e != NULL ? grow(e->d, e->nd, &e->cap, sizeof(*e->d), 64) : NULL;
    if (d == NULL)
        return PT_ENOMEM;
    e->d = d;
    e->d[e->nd++] = row->duration_ms;
    e->calls++;
    if (row->status >= 500)
        e->errors++;
    else if (row->status >= 400)
        e->client_errors++;
    return 0;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The nearest-rank percentile p (0 < p <= 1) of d[0..n), n > 0, sorted. */
static double
percentile(const double *d, size_t n, double p)
{
    size_t rank = (size_t)ceil(p * (double)n);
    return d[rank > 0 ? rank - 1 : 0];
}

/* Reads the log's requests since since_ms into s; *read and *truncated say how many and
 * whether there were more. Returns 0, PT_ENOTFOUND (no log yet: nothing read) or a pt_err. */
static int
stats_read(const char *datadir, int64_t since_ms, stats *s, long long *read, int *truncated,
           char *err, size_t errsz)
{
    pt_store_reqlog *db = NULL;
    pt_reqlog_filter f;
    int rc = pt_store_reqlog_open(datadir, 1, &db, err, errsz);
    if (rc != 0)
        return rc;
    memset(&f, 0, sizeof(f));
    f.since_ms = since_ms;
    f.limit = STATS_PAGE;
    *read = 0;
    *truncated = 0;
    for (;;) {
        pt_reqlog_row *rows = NULL;
        size_t n = 0;
        if ((rc = pt_store_reqlog_query(db, &f, &rows, &n)) != 0) {
            snprintf(err, errsz, "%s", rc == PT_EDB ? pt_store_reqlog_error(db) : pt_strerror(rc));
            break;
        }
        for (size_t i = 0; rc == 0 && i < n; i++) {
            if (*read >= STATS_READ_MAX) {
                *truncated = 1;
                break;
            }
            (*read)++;
            if (rows[i].endpoint != NULL)
                rc = stats_add(s, &rows[i]);
        }
        if (n > 0)
            f.before_id = rows[n - 1].id;
        pt_store_reqlog_rows_free(rows, n);
        if (rc != 0 || *truncated || n < (size_t)f.limit)
            break;
    }
    pt_store_reqlog_close(db);
    return rc;
}

/* GET /stats/endpoints?since=1h: {"since_seconds", "requests", "truncated", "endpoints": [{
 * "endpoint", "calls", "client_errors", "errors", "p50_ms", "p95_ms"}]}, busiest first. */
static int
stats_endpoints(pt_admin_call *c, pt_admin_reply *r)
{
    const char *since = pt_admin_query_str(c, "since");
    int64_t secs = 3600;
    stats s = {0};
    long long read = 0;
    int truncated = 0;
    char err[512] = "";
    int rc;

    if (since != NULL &&
        (pt_config_parse_duration(since, &secs) != 0 || secs <= 0 || secs > STATS_SINCE_MAX))
        return pt_admin_fail(r, 400, "bad_request", "since",
                             "since must be a duration from 1s to 7d, such as 15m or 1h");
    rc = stats_read(c->datadir, ((int64_t)time(NULL) - secs) * 1000, &s, &read, &truncated, err,
                    sizeof(err));
    if (rc == PT_ENOMEM) {
        rc = pt_admin_fail(r, 500, "internal", NULL, "out of memory");
        goto done;
    }
    if (rc != 0 && rc != PT_ENOTFOUND) {
        rc = pt_admin_fail(r, 503, "unavailable", NULL, "the request log cannot be read: %s", err);
        goto done;
    }
    rc = 0;
    json_t *list = json_array();
    for (size_t i = 0; list != NULL && i < s.n; i++) {
        ep_stats *e = &s.e[i];
        qsort(e->d, e->nd, sizeof(*e->d), cmp_double);
        json_t *o = json_pack(
            "{s:s, s:I, s:I, s:I, s:f, s:f}", "endpoint", e->name, "calls", (json_int_t)e->calls,
            "client_errors", (json_int_t)e->client_errors, "errors", (json_int_t)e->errors,
            "p50_ms", percentile(e->d, e->nd, 0.50), "p95_ms", percentile(e->d, e->nd, 0.95));
        if (json_array_append_new(list, o) != 0)
            json_decref(list), list = NULL;
    }
    r->body = json_pack("{s:I, s:I, s:b, s:o*}", "since_seconds", (json_int_t)secs, "requests",
                        (json_int_t)read, "truncated", truncated, "endpoints", list);
    if (r->body == NULL)
        rc = pt_admin_fail(r, 500, "internal", NULL, "out of memory");
done:
    stats_free(&s);
    return rc;
}

const pt_admin_route pt_admin_stats_routes[] = {
    {"GET", "/stats/endpoints", PT_ROLE_VIEWER, stats_endpoints,
     "Per endpoint over the last `since` (default 1h, at most 7d): calls, 4xx, 5xx, p50 and p95 "
     "duration, from the request log"},
    {0},
};
