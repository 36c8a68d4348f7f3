/* worker_traffic.c - an endpoint's own settings on the request path (core/epset.h): CORS
 * preflights and headers, the body limit, the response cache (cache.h) and the bulkhead
 * (bulkhead.h), whose waiting requests are parked jobs resumed by the loop. Loop side only.
 *
 * Design notes.
 *  1. A request beyond an endpoint's --max-concurrency becomes a job first (everything it
 *     needs is copied), then waits in this worker's park list, counted in w->inflight. It is
 *     resumed when this worker gives a place back (pt_traffic_finish), or by a 2 ms poll while
 *     the list is not empty (another worker gave one back, or the queue wait ran out: 503 with
 *     Retry-After). A client that leaves meanwhile is dropped (499) at the next look.
 *  2. A place is held from admission until the answer is sent (a timed-out handler's place
 *     goes back with its 504, though the stuck thread may still run). A worker that dies
 *     holding places gets them back from the master (pt_bulkhead_forget).
 *  3. A cache key is: GET, the endpoint's name and fingerprint (its path, methods, auth,
 *     settings and script version: any change makes older records unreachable), the path,
 *     the query's parameters sorted, and for an endpoint that is not public the caller (type,
 *     id, name, issuer), so that callers never share answers. Request headers are not in the
 *     key: a handler whose answer depends on them sends Cache-Control: no-store.
 *  4. Only a 200 that is not streamed, has no Set-Cookie and no Cache-Control no-store,
 *     no-cache or private is stored. A hit is answered from shared memory on the loop,
 *     without Python, with X-Cache: HIT and Age; a miss gets X-Cache: MISS.
 *  5. h2o reads a request's body before on_req sees it, against one limit for all paths: that
 *     limit is the largest of --max-body and every endpoint's own, and each endpoint's own is
 *     checked here (413). The limit follows the snapshot: refreshed at each accept and each
 *     request. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "server/bulkhead.h"
#include "server/cache.h"
#include "server/metrics.h"
#include "server/worker_int.h"

#define PARK_POLL_MS 2
#define MAX_QUERY_PARAMS 64
#define CORS_MAX_AGE "600"

/* The worker's parked jobs, oldest first (design note 1). */
static struct {
    h2o_timeout_t poll;
    h2o_timeout_entry_t te;
    int ready; /* poll initialised */
    int busy;  /* resuming: a nested finish must not walk the list */
    job *head, *tail;
} park;

/* ---- Snapshots ------------------------------------------------------------------------- */

static uint64_t
fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++) {
        h ^= c[i];
        h *= 1099511628211ull;
    }
    return h;
}

static uint64_t
fnv_str(uint64_t h, const char *s)
{
    return fnv(h, s != NULL ? s : "", s != NULL ? strlen(s) + 1 : 1);
}

void
pt_traffic_prepare(worker *w, snapshot *s)
{
    size_t limit = w->cfg->max_body;
    for (size_t i = 0; i < s->neps; i++) {
        struct route *r = &s->routes[i];
        const pt_ep_settings *set = &r->ep->settings;
        uint64_t h = 1469598103934665603ull;
        h = fnv_str(h, r->ep->name);
        h = fnv_str(h, r->ep->path);
        h = fnv(h, &r->ep->methods, sizeof r->ep->methods);
        h = fnv_str(h, r->ep->auth);
        h = fnv(h, set, offsetof(pt_ep_settings, cors));
        h = fnv_str(h, set->cors);
        if (r->script != NULL) {
            h = fnv_str(h, r->script->name);
            h = fnv(h, &r->script->version, sizeof r->script->version);
            h = fnv(h, r->script->source, r->script->source_len);
        }
        r->fingerprint = h;
        r->bh_row = pt_bulkhead_row(w->cfg->bulkhead, r->ep->name);
        if (r->bh_row < 0 && set->max_concurrency > 0 && w->cfg->bulkhead != NULL)
            pt_log_warn("endpoint %s: more than %d endpoints, --max-concurrency is not applied",
                        r->ep->name, PT_BULKHEAD_ROWS);
        if (set->max_body > 0 && (size_t)set->max_body > limit)
            limit = (size_t)set->max_body;
    }
    w->globalconf.max_request_entity_size = limit;
}

/* ---- CORS ------------------------------------------------------------------------------ */

/* The request header `name` (lower case), or NULL with *n 0. Borrowed from req. */
static const char *
header(h2o_req_t *req, const char *name, size_t nlen, size_t *n)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, name, nlen, -1);
    *n = i >= 0 ? req->headers.entries[i].value.len : 0;
    return i >= 0 ? req->headers.entries[i].value.base : NULL;
}

static void
add(pt_response *resp, const char *name, const char *value, size_t vlen)
{
    pt_response_add_header(resp, name, strlen(name), value, vlen);
}

#define CORS_EXPOSE "X-Request-Id, X-Cache, Retry-After"

/* req's Origin when route's endpoint allows it (borrowed from req, length *n), else NULL. */
static const char *
allowed_origin(h2o_req_t *req, const struct route *route, size_t *n)
{
    const char *origin = header(req, H2O_STRLIT("origin"), n);
    return origin != NULL && pt_epset_origin_allowed(&route->ep->settings, origin, *n) ? origin
                                                                                       : NULL;
}

void
pt_traffic_cors(h2o_req_t *req, const struct route *route, pt_response *resp)
{
    size_t n;
    if (route == NULL || route->ep->settings.cors == NULL)
        return;
    add(resp, "vary", "Origin", 6);
    const char *origin = allowed_origin(req, route, &n);
    if (origin == NULL)
        return;
    add(resp, "access-control-allow-origin", origin, n);
    add(resp, "access-control-expose-headers", H2O_STRLIT(CORS_EXPOSE));
}

/* The endpoint with --cors at path for one of the methods `methods` (the one allowing req's
 * Origin first), or NULL. Borrowed from snap. */
static const struct route *
cors_route(h2o_req_t *req, snapshot *snap, const char *path, size_t plen, unsigned methods)
{
    const struct route *found = NULL;
    pt_route_match m;
    size_t n;

    for (unsigned bit = 1; bit != 0 && bit <= methods; bit <<= 1) {
        if (!(methods & bit) ||
            pt_router_match(snap->router, bit, path, plen, &m) != PT_ROUTE_FOUND)
            continue;
        const struct route *r = m.data;
        if (r->ep->settings.cors == NULL)
            continue;
        if (allowed_origin(req, r, &n) != NULL)
            return r;
        if (found == NULL)
            found = r;
    }
    return found;
}

/* Adds the CORS headers of route's endpoint (may be NULL: none) for req's Origin to
 * req->res.headers, from req's pool: for answers that are not a pt_response. */
static void
cors_h2o(h2o_req_t *req, const struct route *route)
{
    size_t n;
    if (route == NULL)
        return;
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("vary"), 0, NULL,
                          H2O_STRLIT("Origin"));
    const char *origin = allowed_origin(req, route, &n);
    if (origin == NULL)
        return;
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("access-control-allow-origin"),
                          0, NULL, origin, n);
    h2o_add_header_by_str(&req->pool, &req->res.headers,
                          H2O_STRLIT("access-control-expose-headers"), 0, NULL,
                          H2O_STRLIT(CORS_EXPOSE));
}

void
pt_traffic_method_not_allowed(worker *w, h2o_req_t *req, snapshot *snap, const char *path,
                              size_t plen, unsigned allow)
{
    char methods[128];

    pt_http_format_methods(allow, methods, sizeof methods);
    cors_h2o(req, cors_route(req, snap, path, plen, allow));
    pt_send_simple(w, req, NULL, 405, NULL, NULL, "method not allowed", "allow", methods);
}

void
pt_traffic_error_cors(h2o_req_t *req)
{
    worker *w = &pt_worker_self;
    const char *path = req->path.base, *q;
    size_t plen = req->path.len;

    if (w->snap == NULL || path == NULL)
        return;
    q = memchr(path, '?', plen);
    if (q != NULL)
        plen = (size_t)(q - path);
    unsigned bit = pt_http_method_bit(req->method.base, req->method.len);
    if (bit != 0)
        cors_h2o(req, cors_route(req, w->snap, path, plen, bit));
}

/* Request headers a preflight may have allowed (beside the CORS-safelisted ones, which need
 * no permission): what a browser application sends to a Portico endpoint. */
static int
header_allowed(const char *h, size_t n)
{
    static const char *const ok[] = {
        "accept",        "accept-language",   "content-language", "content-type",
        "authorization", "x-api-key",         "x-requested-with", "cache-control",
        "if-none-match", "if-modified-since", "x-request-id"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (strlen(ok[i]) == n && strncasecmp(ok[i], h, n) == 0)
            return 1;
    return 0;
}

int
pt_traffic_preflight(worker *w, h2o_req_t *req, snapshot *snap, const char *path, size_t plen)
{
    size_t olen, mlen, hlen;
    const char *origin = header(req, H2O_STRLIT("origin"), &olen);
    const char *method = header(req, H2O_STRLIT("access-control-request-method"), &mlen);
    const char *asked = header(req, H2O_STRLIT("access-control-request-headers"), &hlen);
    pt_route_match m;
    char allow[128];

    if (origin == NULL || method == NULL)
        return 0;
    unsigned bit = pt_http_method_bit(method, mlen);
    if (bit == 0 || pt_router_match(snap->router, bit, path, plen, &m) != PT_ROUTE_FOUND)
        return 0;
    const struct route *route = m.data;
    if (route->ep->settings.cors == NULL)
        return 0;
    pt_response resp;
    pt_response_init(&resp, 0);
    resp.status = 204;
    add(&resp, "vary",
        H2O_STRLIT("Origin, Access-Control-Request-Method, "
                   "Access-Control-Request-Headers"));
    if (pt_epset_origin_allowed(&route->ep->settings, origin, olen)) {
        pt_buf granted;
        pt_buf_init(&granted, 0);
        for (size_t i = 0; asked != NULL && i < hlen;) {
            while (i < hlen && (asked[i] == ' ' || asked[i] == ','))
                i++;
            size_t start = i;
            while (i < hlen && asked[i] != ',')
                i++;
            size_t end = i;
            while (end > start && asked[end - 1] == ' ')
                end--;
            if (end > start && header_allowed(asked + start, end - start))
                pt_buf_printf(&granted, "%s%.*s", granted.len > 0 ? ", " : "", (int)(end - start),
                              asked + start);
        }
        pt_http_format_methods(route->ep->methods, allow, sizeof allow);
        add(&resp, "access-control-allow-origin", origin, olen);
        add(&resp, "access-control-allow-methods", allow, strlen(allow));
        if (granted.len > 0)
            add(&resp, "access-control-allow-headers", granted.data, granted.len);
        add(&resp, "access-control-max-age", H2O_STRLIT(CORS_MAX_AGE));
        pt_buf_free(&granted);
    }
    /* No CORS headers beyond Vary here: pt_send_response would add the actual-response ones. */
    pt_send_response(w, req, NULL, &resp);
    pt_response_free(&resp);
    return 1;
}

/* ---- Body limit and cache --------------------------------------------------------------- */

typedef struct qpart {
    const char *p;
    size_t n;
} qpart;

static int
qpart_cmp(const void *a, const void *b)
{
    const qpart *x = a, *y = b;
    int c = memcmp(x->p, y->p, x->n < y->n ? x->n : y->n);
    return c != 0 ? c : (x->n > y->n) - (x->n < y->n);
}

/* Appends a string and its terminating NUL to k. */
static int
put(pt_buf *k, const char *s, size_t n)
{
    return pt_buf_append(k, s != NULL ? s : "", s != NULL ? n : 0) || pt_buf_append(k, "", 1);
}

/* The cache key of req (design note 3) into k; 0, or -1 when req is not cacheable. */
static int
cache_key(h2o_req_t *req, const struct route *route, const pt_caller *caller, pt_buf *k)
{
    size_t plen = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    qpart parts[MAX_QUERY_PARAMS];
    size_t np = 0;
    char fp[17];

    snprintf(fp, sizeof fp, "%016llx", (unsigned long long)route->fingerprint);
    int bad = put(k, "GET", 3) || put(k, route->ep->name, strlen(route->ep->name)) ||
              put(k, fp, 16) || put(k, req->path.base, plen);
    if (req->query_at != SIZE_MAX) {
        const char *q = req->path.base + req->query_at + 1, *end = req->path.base + req->path.len;
        while (q < end) {
            const char *amp = memchr(q, '&', (size_t)(end - q));
            size_t n = amp != NULL ? (size_t)(amp - q) : (size_t)(end - q);
            if (n > 0) {
                if (np == MAX_QUERY_PARAMS)
                    return -1;
                parts[np++] = (qpart){q, n};
            }
            q += n + 1;
        }
        qsort(parts, np, sizeof parts[0], qpart_cmp);
    }
    for (size_t i = 0; i < np; i++)
        bad |= put(k, parts[i].p, parts[i].n);
    bad |= put(k, "", 0);
    if (route->auth != PT_AUTH_PUBLIC)
        bad |= put(k, caller->type, caller->type ? strlen(caller->type) : 0) ||
               put(k, caller->id, caller->id ? strlen(caller->id) : 0) ||
               put(k, caller->name, caller->name ? strlen(caller->name) : 0) ||
               put(k, caller->issuer, caller->issuer ? strlen(caller->issuer) : 0);
    return bad ? -1 : 0;
}

int
pt_traffic_before(worker *w, h2o_req_t *req, const struct route *route, const pt_caller *caller,
                  char **key, size_t *klen)
{
    const pt_ep_settings *set = &route->ep->settings;
    size_t limit = set->max_body > 0 ? (size_t)set->max_body : w->cfg->max_body;
    *key = NULL;
    *klen = 0;
    if (req->entity.base != NULL && req->entity.len > limit) {
        char msg[128];
        snprintf(msg, sizeof msg, "request body too large (this endpoint takes at most %zu bytes)",
                 limit);
        pt_send_simple(w, req, route, 413, NULL, NULL, msg, NULL, NULL);
        return 1;
    }
    if (set->cache_ms <= 0 || w->cfg->cache == NULL ||
        pt_http_method_bit(req->method.base, req->method.len) != PT_M_GET || req->method.len != 3)
        return 0;
    pt_buf k;
    pt_buf_init(&k, 0);
    if (cache_key(req, route, caller, &k) != 0) {
        pt_buf_free(&k);
        return 0;
    }
    pt_response resp;
    double age = 0;
    pt_response_init(&resp, 0);
    if (pt_cache_get(w->cfg->cache, k.data, k.len, now_sec(), &resp, &age) == 1) {
        char agebuf[24];
        int n = snprintf(agebuf, sizeof agebuf, "%d", (int)age);
        add(&resp, "x-cache", "HIT", 3);
        add(&resp, "age", agebuf, (size_t)n);
        pt_metrics_endpoint_traffic(w->cfg->metrics, w->index, route->metric, PT_TRAFFIC_CACHE_HIT);
        pt_send_response(w, req, route, &resp);
        pt_response_free(&resp);
        pt_buf_free(&k);
        return 1;
    }
    pt_response_free(&resp);
    pt_metrics_endpoint_traffic(w->cfg->metrics, w->index, route->metric, PT_TRAFFIC_CACHE_MISS);
    *klen = k.len;
    *key = k.data; /* the buffer's memory moves to the job */
    return 0;
}

/* Whether resp may be stored (design note 4). */
static int
storable(const pt_response *resp)
{
    if (resp->status != 200 || resp->stream != NULL)
        return 0;
    for (size_t off = 0; off < resp->headers.len;) {
        const char *name = resp->headers.data + off;
        const char *value = name + strlen(name) + 1;
        off += strlen(name) + strlen(value) + 2;
        if (strcasecmp(name, "set-cookie") == 0)
            return 0;
        if (strcasecmp(name, "cache-control") == 0 &&
            (strcasestr(value, "no-store") != NULL || strcasestr(value, "no-cache") != NULL ||
             strcasestr(value, "private") != NULL))
            return 0;
    }
    return 1;
}

/* ---- Bulkhead --------------------------------------------------------------------------- */

static void on_poll(h2o_timeout_entry_t *te);

/* Answers a parked job that found no place: 503 with Retry-After. */
static void
reject(worker *w, job *j)
{
    pt_metrics_endpoint_traffic(w->cfg->metrics, w->index, j->route->metric, PT_TRAFFIC_REJECTED);
    pt_response_error(&j->resp, 503, "endpoint busy: too many requests at once, retry later",
                      j->req.id);
    pt_response_add_header(&j->resp, H2O_STRLIT("retry-after"), H2O_STRLIT("1"));
    pt_send_finish(w, j, 0);
}

/* Looks at every parked job in order: gone clients are dropped, jobs that get a place go to
 * the pool, jobs past their wait are refused. Rearms the poll while any job waits. */
static void
resume(worker *w)
{
    if (park.busy)
        return;
    park.busy = 1;
    double now = now_sec();
    job **link = &park.head, *prev = NULL;
    while (*link != NULL) {
        job *j = *link;
        const struct route *r = j->route;
        int placed = 0, gone = j->hreq == NULL;
        if (!gone)
            placed = pt_bulkhead_enter(w->cfg->bulkhead, r->bh_row, w->proc,
                                       r->ep->settings.max_concurrency);
        if (!gone && !placed && now < j->park_until) {
            prev = j;
            link = &j->park_next;
            continue;
        }
        *link = j->park_next;
        if (park.tail == j)
            park.tail = prev;
        j->park_next = NULL;
        if (gone) {
            pt_job_drop(w, j);
        } else if (placed) {
            j->bh_held = 1;
            w->inflight--; /* pt_pool_submit counts it again */
            pt_pool_submit(w, j);
        } else {
            reject(w, j);
        }
    }
    park.busy = 0;
    if (park.head != NULL && !h2o_timeout_is_linked(&park.te))
        h2o_timeout_link(w->loop, &park.poll, &park.te);
}

static void
on_poll(h2o_timeout_entry_t *te)
{
    (void)te;
    resume(&pt_worker_self);
}

void
pt_traffic_admit(worker *w, job *j)
{
    const struct route *r = j->route;
    const pt_ep_settings *set = &r->ep->settings;
    if (set->timeout_ms > 0)
        j->timeout = (double)set->timeout_ms / 1000.0;
    if (set->max_concurrency <= 0 || r->bh_row < 0 || w->cfg->bulkhead == NULL) {
        pt_pool_submit(w, j);
        return;
    }
    int waiting = 0; /* jobs of this endpoint parked before it go first */
    for (job *p = park.head; p != NULL && !waiting; p = p->park_next)
        waiting = p->route->bh_row == r->bh_row;
    if (!waiting && pt_bulkhead_enter(w->cfg->bulkhead, r->bh_row, w->proc, set->max_concurrency)) {
        j->bh_held = 1;
        pt_pool_submit(w, j);
        return;
    }
    if (set->queue_wait_ms <= 0) {
        w->inflight++;
        reject(w, j);
        return;
    }
    /* Wait behind the jobs parked before it (first come, first served within this worker). */
    pt_metrics_endpoint_traffic(w->cfg->metrics, w->index, r->metric, PT_TRAFFIC_WAITED);
    if (!park.ready) {
        h2o_timeout_init(w->loop, &park.poll, PARK_POLL_MS);
        park.te.cb = on_poll;
        park.ready = 1;
    }
    j->park_until = now_sec() + (double)set->queue_wait_ms / 1000.0;
    j->park_next = NULL;
    if (park.tail != NULL)
        park.tail->park_next = j;
    else
        park.head = j;
    park.tail = j;
    w->inflight++;
    resume(w); /* a place may be free for it already (another endpoint's jobs wait) */
}

void
pt_traffic_finish(worker *w, job *j, pt_response *resp, int timed_out)
{
    if (j->route == NULL)
        return;
    if (j->cache_key != NULL) {
        if (!timed_out && storable(resp))
            pt_cache_put(w->cfg->cache, j->cache_key, j->cache_klen, now_sec(),
                         (double)j->route->ep->settings.cache_ms / 1000.0, resp);
        add(resp, "x-cache", "MISS", 4);
    }
    if (j->hreq != NULL)
        pt_traffic_cors(j->hreq, j->route, resp);
    if (j->bh_held) {
        j->bh_held = 0;
        pt_bulkhead_leave(w->cfg->bulkhead, j->route->bh_row, w->proc);
        if (park.head != NULL)
            resume(w);
    }
}
