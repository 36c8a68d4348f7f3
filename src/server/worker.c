/* worker.c - one worker process: an h2o event loop driven by a small pool of threads that
 * take turns leading it, and an embedded CPython interpreter that runs the handlers. This file
 * sets the worker up, keeps its metadata snapshot current, routes each request (on_req) and
 * stops it; worker_int.h lists the other files and holds the invariants and a job's states.
 *
 * When every thread is busy no thread polls the listening socket, so this worker accepts no
 * new connections and the kernel hands them to an idle worker: the listening socket is shared
 * by all workers (no SO_REUSEPORT, whose per-socket queues would park connections behind a
 * busy worker).
 */
#include "server/worker.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "admin/admin_tests.h"
#include "core/err.h"
#include "core/log.h"
#include "py/py.h"
#include "server/breaker.h"
#include "server/holds.h"
#include "server/http_errors.h"
#include "server/http_framing.h"
#include "server/metrics.h"
#include "store/store_events.h"
#include "server/openapi.h"
#include "server/reqid.h"
#include "server/worker_int.h"

worker pt_worker_self;

static void start_processor(worker *w);
static void start_ratelease(worker *w);

/* ---- Snapshots ------------------------------------------------------------------------- */

void
pt_worker_snapshot_release(snapshot *s)
{
    if (s == NULL || atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    pt_router_free(s->router);
    pt_store_endpoints_free(s->eps, s->neps);
    pt_store_scripts_free(s->scripts, s->nscripts);
    free(s->routes);
    pt_auth_free(s->auth);
    for (size_t i = 0; s->hooks != NULL && i < s->nhook_sources; i++)
        pt_secrets_value_free(s->hooks[i].secret);
    free(s->hooks);
    pt_store_webhook_sources_free(s->hook_sources, s->nhook_sources);
    free(s->hook_token);
    free(s);
}

/* Loads endpoints, current scripts, tokens and keys, and webhook sources from the store into a
 * new snapshot of generation `gen` holding one reference (release with
 * pt_worker_snapshot_release). Returns NULL (logged) on failure. Loop side. */
static snapshot *
snapshot_load(worker *w, uint64_t gen)
{
    snapshot *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    atomic_init(&s->refs, 1);
    s->gen = gen;
    /* Logged once while the store stays unreachable (pt_worker_refresh retries). */
    if (pt_store_endpoint_list(w->store, &s->eps, &s->neps) != 0 ||
        pt_store_script_list(w->store, &s->scripts, &s->nscripts) != 0) {
        if (!w->reload_failing)
            pt_log_error("cannot load endpoints: %s", pt_store_errmsg(w->store));
        goto fail;
    }
    if (pt_auth_load(w->store, w->cfg->datadir, &s->auth) != 0) {
        if (!w->reload_failing)
            pt_log_error("cannot load tokens and API keys: %s", pt_store_errmsg(w->store));
        goto fail;
    }
    if (pt_hook_load(w, s) != 0)
        goto fail;
    s->router = pt_router_new();
    s->routes = calloc(s->neps ? s->neps : 1, sizeof(*s->routes));
    if (s->router == NULL || s->routes == NULL)
        goto fail;
    for (size_t i = 0; i < s->neps; i++) {
        struct route *r = &s->routes[i];
        r->ep = &s->eps[i];
        r->auth = pt_auth_mode_of(r->ep->auth);
        r->metric = pt_metrics_endpoint(w->cfg->metrics, r->ep->name);
        for (size_t j = 0; j < s->nscripts; j++) {
            if (strcmp(s->scripts[j].name, r->ep->script) == 0)
                r->script = &s->scripts[j];
        }
        int rc = pt_router_add(s->router, r->ep->path, r->ep->methods, r);
        if (rc != 0)
            pt_log_warn("endpoint %s: path %s not routable (%s)", r->ep->name, r->ep->path,
                        pt_strerror(rc));
    }
    return s;
fail:
    pt_worker_snapshot_release(s);
    return NULL;
}

void
pt_worker_refresh(worker *w)
{
    uint64_t gen = pt_changes_read(w->changes);
    if (w->snap != NULL && w->snap->gen == gen)
        return;
    if (w->snap != NULL && now_sec() < w->reload_retry)
        return;
    snapshot *s = snapshot_load(w, gen);
    if (s == NULL) {
        /* Keep serving the previous snapshot; try again in a second, not on every request
         * (an unreachable store would cost each request a connection attempt). */
        w->reload_retry = now_sec() + 1.0;
        if (w->snap != NULL && !w->reload_failing)
            pt_log_warn("serving the endpoints loaded before; retrying the reload every second");
        w->reload_failing = 1;
        return;
    }
    if (w->reload_failing)
        pt_log_info("endpoints reloaded: the metadata store answers again");
    w->reload_failing = 0;
    pt_traffic_prepare(w, s);
    if (w->snap != NULL)
        pt_auth_flush_used(w->snap->auth, w->store, (int64_t)time(NULL), 1);
    pt_worker_snapshot_release(w->snap);
    w->snap = s;
}

/* ---- Routing a request (loop side, no GIL) --------------------------------------------- */

/* The webhook events stored and not yet processed or failed, read from the store; -1 when it
 * cannot be read (the gauge is then left out). */
static int64_t
events_pending(worker *w)
{
    pt_events *ev = NULL;
    char err[256];
    int64_t n = -1;

    if (pt_events_open(w->cfg->datadir, &ev, err, sizeof(err)) != 0 ||
        pt_events_count_pending(ev, &n) != 0)
        n = -1;
    pt_events_close(ev);
    return n;
}

/* The OpenAPI document of snap's endpoints, each described by its script's docstring. */
static int
openapi(const snapshot *snap, const char *url, pt_buf *body)
{
    const pt_script **scripts = calloc(snap->neps ? snap->neps : 1, sizeof(*scripts));
    int rc;

    if (scripts == NULL)
        return PT_ENOMEM;
    for (size_t i = 0; i < snap->neps; i++)
        scripts[i] = snap->routes[i].script;
    rc = pt_openapi_render(snap->eps, scripts, snap->neps, url, body);
    free(scripts);
    return rc;
}

/* The health document: the node is up (it answers), and how its metadata store is
 * (nodesync.h). A node whose store is unreachable still serves its snapshot: "degraded", with
 * the same 200 (docs/OPERATIONS.md says what a load balancer should check). */
static int
health(worker *w, pt_buf *body)
{
    pt_nodesync_status ns;
    char age[32] = "null";
    int64_t now = (int64_t)time(NULL);

    pt_nodesync_status_get(w->cfg->nodesync, &ns);
    int reachable = !ns.checked || ns.reachable; /* before the first check: as at start */
    if (ns.last_error > 0)
        snprintf(age, sizeof(age), "%lld",
                 (long long)(now > ns.last_error ? now - ns.last_error : 0));
    return pt_buf_printf(body,
                         "{\"status\": \"%s\", \"store\": {\"driver\": \"%s\", "
                         "\"reachable\": %s, \"last_error_age\": %s}}",
                         reachable ? "ok" : "degraded", pt_store_engine(w->store),
                         reachable ? "true" : "false", age);
}

/* GET /_portico/health, /_portico/metrics, /_portico/openapi.json. */
static void
on_portico(worker *w, h2o_req_t *req, const char *name, size_t n)
{
    pt_buf body;
    char url[512];
    const char *type = "application/json";
    int rc = PT_EUNAVAIL;

    if (pt_http_method_bit(req->method.base, req->method.len) & ~(PT_M_GET | PT_M_HEAD)) {
        pt_send_simple(w, req, NULL, 405, NULL, NULL, "method not allowed", "allow", "GET, HEAD");
        return;
    }
    pt_buf_init(&body, 0);
    if (n == 6 && memcmp(name, "health", 6) == 0) {
        rc = health(w, &body);
    } else if (n == 7 && memcmp(name, "metrics", 7) == 0 && w->cfg->metrics != NULL) {
        type = "text/plain; version=0.0.4; charset=utf-8";
        rc = pt_metrics_render(w->cfg->metrics, events_pending(w), &body);
        if (rc == 0 && w->cfg->breaker != NULL)
            rc = pt_breaker_render(w->cfg->breaker, &body);
        if (rc == 0)
            rc = pt_bulkhead_render(w->cfg->bulkhead, &body);
        if (rc == 0)
            rc = pt_cache_render(w->cfg->cache, &body);
    } else if (n == 12 && memcmp(name, "openapi.json", 12) == 0) {
        pt_worker_refresh(w);
        snprintf(url, sizeof(url), "%.*s://%.*s", (int)req->scheme->name.len,
                 req->scheme->name.base, (int)req->authority.len, req->authority.base);
        rc = w->snap != NULL ? openapi(w->snap, url, &body) : PT_EUNAVAIL;
    } else {
        pt_buf_free(&body);
        pt_send_error(w, req, 404, "not found");
        return;
    }
    if (rc == 0)
        pt_send_simple(w, req, NULL, 200, type, pt_buf_cstr(&body), NULL, NULL, NULL);
    else
        pt_send_error(w, req, 503, "cannot build the document");
    pt_buf_free(&body);
}

/* Runs the check of a jwt or apikey endpoint (auth.h) and answers 401/429/503 itself.
 * Returns 0 when the request may go on, res->caller naming who sent it. Loop side. */
static int
authorize(worker *w, h2o_req_t *req, snapshot *snap, const struct route *route, pt_auth_result *res)
{
    pt_auth_request rq = {.mode = route->auth, .endpoint = route->ep->name};
    struct timespec ts;
    ssize_t i = -1;
    while ((i = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, i)) != -1) {
        if (rq.nauthorization++ == 0) {
            rq.authorization = req->headers.entries[i].value.base;
            rq.authorization_len = req->headers.entries[i].value.len;
        }
    }
    i = -1;
    while ((i = h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-api-key"), i)) != -1) {
        if (rq.napi_key++ == 0) {
            rq.api_key = req->headers.entries[i].value.base;
            rq.api_key_len = req->headers.entries[i].value.len;
        }
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    rq.now = (int64_t)ts.tv_sec;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    rq.mono_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    if (pt_auth_check(snap->auth, w->cfg->ratelimit, &rq, res) == 0) {
        pt_auth_flush_used(snap->auth, w->store, rq.now, 0); /* at most every few seconds */
        return 0;
    }
    pt_metrics_auth_failure(w->cfg->metrics, w->index, res->reason);
    pt_send_simple(w, req, route, res->status, NULL, NULL, res->error, res->header,
                   res->header_value);
    return -1;
}

static int
on_req(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    worker *w = &pt_worker_self;
    size_t plen = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    const char *path = req->path.base;
    const char *why;
    int refused = pt_framing_rejected(req, &why);
    if (refused != 0) {
        pt_send_error(w, req, refused, why);
        return 0;
    }

    size_t header_bytes = req->path.len;
    for (size_t i = 0; i < req->headers.size; i++)
        header_bytes += req->headers.entries[i].name->len + req->headers.entries[i].value.len + 4;
    if (header_bytes > w->cfg->max_header) {
        pt_send_error(w, req, 431, "request headers too large");
        return 0;
    }

    if (plen >= 10 && memcmp(path, "/_portico/", 10) == 0) {
        on_portico(w, req, path + 10, plen - 10);
        return 0;
    }
    if (plen >= 9 && memcmp(path, "/webhook/", 9) == 0) {
        pt_hook_intake(w, req, path + 9, plen - 9);
        return 0;
    }

    pt_worker_refresh(w);
    snapshot *snap = w->snap;
    if (snap == NULL) {
        pt_send_error(w, req, 503, "endpoints cannot be loaded");
        return 0;
    }
    pt_route_match m;
    unsigned method = pt_http_method_bit(req->method.base, req->method.len);
    if (method == PT_M_OPTIONS && pt_traffic_preflight(w, req, snap, path, plen))
        return 0;
    switch (pt_router_match(snap->router, method, path, plen, &m)) {
    case PT_ROUTE_NOT_FOUND:
        pt_send_error(w, req, 404, "no endpoint at this path");
        return 0;
    case PT_ROUTE_METHOD:
        pt_traffic_method_not_allowed(w, req, snap, path, plen, m.allow);
        return 0;
    case PT_ROUTE_FOUND:
        break;
    }
    const struct route *route = m.data;
    for (size_t i = 0; i < m.nparams; i++) {
        if (!pt_job_param_ok(m.params[i].value, m.params[i].value_len)) {
            pt_send_simple(w, req, route, 400, NULL, NULL,
                           "a path parameter may not hold an encoded '/' or NUL, nor be '.' or "
                           "'..'",
                           NULL, NULL);
            return 0;
        }
    }
    int retry_after;
    if (pt_breaker_check(w->cfg->breaker, route->ep->name, &retry_after)) {
        pt_pause_answer(w, req, snap, route, retry_after);
        return 0;
    }
    pt_auth_result ar;
    ar.caller = (pt_caller){0};
    if (route->auth != PT_AUTH_PUBLIC && authorize(w, req, snap, route, &ar) != 0)
        return 0;
    char *key;
    size_t klen;
    if (pt_traffic_before(w, req, route, &ar.caller, &key, &klen))
        return 0;
    job *j = pt_job_new(req, snap, route, &m, &ar.caller);
    if (j == NULL) {
        free(key);
        pt_send_error(w, req, 503, "out of memory");
        return 0;
    }
    j->cache_key = key;
    j->cache_klen = klen;
    j->start = now_sec();
    pt_metrics_endpoint_begin(w->cfg->metrics, w->proc, route->metric);
    /* A stopping worker answers what reached it, then each connection goes: its client comes
     * back on another worker instead of queueing more requests here. */
    if (atomic_load(&w->stopping))
        req->http1_is_persistent = 0;
    pt_traffic_admit(w, j);
    return 0;
}

/* ---- Setup and stopping --------------------------------------------------------------- */

/* How long a stopping worker leaves a kept-alive connection idle before closing it. */
#define DRAIN_IDLE_MS 1000

/* Draining, the design: a stopping worker stops accepting at once, answers what it has, and
 * answers each request still arriving on a kept-alive connection with `Connection: close`
 * (on_req). It exits only once its connections are closed as well: exiting with one open
 * would reset it, and with it any request a proxy had just sent on it (nginx retries a GET
 * on another node, but never a POST it has sent). So the connections close from the
 * client's side after a `Connection: close` answer, or from ours after DRAIN_IDLE_MS idle
 * (h2o's idle timeouts, shortened: a proxy sees the FIN while the connection sits in its
 * pool and drops it there), and HTTP/2 ones get GOAWAY. A connection busy with something
 * that is not a request in flight (a live log tail) holds the exit up to the drain deadline,
 * one idle period and a half after the stop began. */
void
pt_worker_begin_stop(worker *w)
{
    if (atomic_exchange(&w->stopping, 1))
        return;
    double now = now_sec();
    w->stop_deadline = now + (w->cfg->timeout < 10 ? w->cfg->timeout + 1 : 10);
    w->drain_deadline = now + DRAIN_IDLE_MS * 1.5 / 1000;
    pt_holds_stopping(w->ctl); /* a spare takes over our connections meanwhile */
    if (w->listener != NULL) {
        /* When the server stops, connections the kernel completed and queued are taken first,
         * and served (each request answered with `Connection: close`): closing the last copy
         * of the socket would reset them, after their clients had sent a request. A worker
         * going away alone (MemoryError) leaves them to the others. */
        h2o_socket_t *sock;
        while (atomic_load(&w->exit_code) == PT_WORKER_EXIT_OK &&
               (sock = h2o_evloop_socket_accept(w->listener)) != NULL)
            h2o_accept(&w->accept_ctx, sock);
        h2o_socket_read_stop(w->listener);
        h2o_socket_close(w->listener);
        w->listener = NULL;
    }
    pt_wtls_stop(w);
    pt_wadmin_stop(w);
    /* A timeout's entries expire in the order they were added, which a change of the
     * timeout's length for all of them keeps: entries idle longer than that go at once. */
    if (w->ctx.http1.req_timeout.timeout > DRAIN_IDLE_MS)
        w->ctx.http1.req_timeout.timeout = DRAIN_IDLE_MS;
    if (w->ctx.http2.idle_timeout.timeout > DRAIN_IDLE_MS)
        w->ctx.http2.idle_timeout.timeout = DRAIN_IDLE_MS;
    h2o_context_request_shutdown(&w->ctx);
}

int
pt_worker_drained(worker *w)
{
    if (w->inflight > 0)
        return 0;
    return (h2o_linklist_is_empty(&w->ctx.http1._conns) &&
            h2o_linklist_is_empty(&w->ctx.http2._conns)) ||
           now_sec() > w->drain_deadline;
}

void
pt_worker_exit(worker *w)
{
    pt_send_flush_log(w);
    pt_reqlog_stop(w->reqlog); /* writes what its buffer still holds */
    w->reqlog = NULL;
    if (w->snap != NULL)
        pt_auth_flush_used(w->snap->auth, w->store, (int64_t)time(NULL), 1);
    if (w->inflight > 0)
        pt_log_warn("worker %d stopping with %zu requests unanswered", w->index, w->inflight);
    _exit(atomic_load(&w->exit_code));
}

void
pt_worker_accept(worker *w, h2o_socket_t *listener, h2o_accept_ctx_t *ctx, int max)
{
    /* h2o reads bodies against the snapshot's largest limit (worker_traffic.c): current before
     * a new connection sends one. */
    pt_worker_refresh(w);
    for (int i = 0; i < max && !atomic_load(&w->stopping); i++) {
        h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
        if (sock == NULL)
            break;
        h2o_accept(ctx, sock);
    }
}

static void
on_accept(h2o_socket_t *listener, const char *err)
{
    worker *w = &pt_worker_self;
    if (err == NULL)
        pt_worker_accept(w, listener, &w->accept_ctx, 64);
}

/* Starts taking connections on the shared listening sockets. Loop side. */
static void
listen_start(worker *w)
{
    if (w->listen_fd >= 0) { /* none with --listen-tls alone */
        w->listener = h2o_evloop_socket_create(w->loop, w->listen_fd, H2O_SOCKET_FLAG_DONT_READ);
        h2o_socket_read_start(w->listener, on_accept);
    }
    pt_wtls_listen(w);
    pt_wadmin_setup(w);
}

/* A spare: the master made it worker N (holds.h). It takes the number, then connections. */
static void
on_promote(h2o_socket_t *sock, const char *err)
{
    worker *w = &pt_worker_self;
    int index = err == NULL ? pt_holds_read_promote(w->ctl) : -1;
    if (index == 0)
        return;
    h2o_socket_read_stop(sock);
    h2o_socket_close(sock);
    w->ctlsock = NULL;
    if (index < 0) {
        /* The master closed our custody socket: it is gone, or gave up waiting for this spare
         * (a fork through the template it no longer counts on). Nobody will promote us. */
        pt_worker_begin_stop(w);
        return;
    }
    if (atomic_load(&w->stopping))
        return; /* the master is stopping us */
    w->index = index;
    snprintf(w->tag, sizeof(w->tag), "worker %d", index);
    pt_log_init(w->tag);
    listen_start(w);
    start_processor(w);
    start_ratelease(w);
}

static void
on_signal(h2o_socket_t *sock, const char *err)
{
    worker *w = &pt_worker_self;
    struct signalfd_siginfo si;
    (void)err;
    while (read(h2o_socket_get_fd(sock), &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if (si.ssi_signo == SIGTERM)
            pt_worker_begin_stop(w);
        else if (si.ssi_signo == SIGHUP)
            pt_wtls_reload(w);
    }
}

/* The worker's fields, before any thread or callback can look at them. */
static void
init_state(worker *w, const pt_server_config *cfg, int listen_fd, int ctl, int proc, int index)
{
    w->cfg = cfg;
    w->proc = proc;
    w->index = index;
    w->ctl = ctl;
    w->listen_fd = listen_fd;
    w->pid = getpid();
    atomic_init(&w->lstate, 0);
    atomic_init(&w->stopping, 0);
    atomic_init(&w->exit_code, PT_WORKER_EXIT_OK);
    atomic_init(&w->nslots, 0); /* the slots come with the pool (pt_pool_start) */
    atomic_init(&w->crashed, 0);
    atomic_init(&w->crash_slot, NULL);
    atomic_init(&w->rescuer, 0);
    atomic_init(&w->gil_wait, 0);
    w->crash_wake_fd = w->crash_done_fd = -1;
    pthread_mutex_init(&w->mu, NULL);
    pthread_mutex_init(&w->run_mu, NULL);
    pthread_cond_init(&w->run_cv, NULL);
    pthread_cond_init(&w->cv, NULL);
    pthread_mutex_init(&w->ready_mu, NULL);
    pt_buf_init(&w->access_log, 0);
}

/* The worker cannot start: tells the master why (it prints the reason once) and exits. */
static void __attribute__((noreturn, format(printf, 2, 3)))
start_failed(worker *w, const char *fmt, ...)
{
    char reason[PT_HOLDS_REASON_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    if (pt_holds_failed(w->ctl, reason) != 0)
        pt_log_error("%s", reason);
    _exit(PT_WORKER_EXIT_FAILED);
}

/* The stored request log's buffer and writer. PORTICO_REQLOG_BUFFER (bytes; a hidden setting
 * for tests) sizes the buffer. Without the log the worker serves on, logged. */
static void
open_reqlog(worker *w)
{
    const pt_server_config *cfg = w->cfg;
    const char *env = getenv("PORTICO_REQLOG_BUFFER");
    char err[256] = "";
    pt_reqlog_config rc = {
        .datadir = cfg->datadir,
        .worker = w->index,
        .buffer_bytes = env != NULL ? strtoul(env, NULL, 10) : 0,
        .max_age_s = cfg->log_max_age > 0 ? cfg->log_max_age : PT_LOG_MAX_AGE_DEFAULT,
        .max_rows = cfg->log_max_rows > 0 ? cfg->log_max_rows : PT_LOG_MAX_ROWS_DEFAULT,
        .max_bytes = cfg->log_max_size > 0 ? cfg->log_max_size : PT_LOG_MAX_SIZE_DEFAULT,
        .metrics = cfg->metrics,
    };
    if (pt_reqlog_start(&rc, &w->reqlog, err, sizeof(err)) != 0) {
        pt_log_error("request log disabled: %s", err);
        w->reqlog = NULL;
    }
}

/* On a PostgreSQL store (several nodes), starts the thread that leases the callers' rate
 * limits from it (ratelease.h; active workers only). Without it, limits hold per node. */
static void
start_ratelease(worker *w)
{
    char err[256] = "";
    if (w->ratelease != NULL || w->cfg->ratelimit == NULL || w->store == NULL ||
        strcmp(pt_store_engine(w->store), "postgres") != 0)
        return;
    if (pt_ratelease_start(w->cfg->datadir, w->cfg->ratelimit, &w->ratelease, err, sizeof(err)) !=
        0)
        pt_log_error("rate limits hold per node only: %s", err);
}

/* Starts the thread that runs webhook processing scripts (active workers only). */
static void
start_processor(worker *w)
{
    const pt_server_config *cfg = w->cfg;
    char err[256] = "";
    if (w->inbox == NULL || w->processor != NULL)
        return;
    /* A claim outlives the handler timeout by a little: past it, the worker running the
     * script is presumed dead and another may retry (docs/WEBHOOKS.md). */
    pt_processor_config pc = {cfg->datadir,
                              cfg->webhook_attempts,
                              cfg->webhook_backoff,
                              cfg->timeout + 2,
                              w->tag,
                              cfg->metrics,
                              w->index};
    if (pt_processor_start(&pc, &w->processor, err, sizeof(err)) != 0)
        pt_log_error("webhook processing disabled: %s", err);
}

/* The store, change counter, secrets and the interpreter (unless `forked` from the template,
 * whose interpreter this process inherited). Exits the process (the reason sent to the master)
 * when the worker cannot serve at all. */
static void
open_data(worker *w, int forked)
{
    const pt_server_config *cfg = w->cfg;
    char err[256] = "";
    if (pt_store_open(cfg->datadir, &w->store, err, sizeof(err)) != 0)
        start_failed(w, "cannot open the data dir: %s", err);
    if (pt_changes_open(cfg->datadir, &w->changes) != 0)
        start_failed(w, "cannot open the change counter %s/run/changes: %s", cfg->datadir,
                     strerror(errno));
    if (pt_secrets_open(cfg->datadir, &w->secrets, err, sizeof(err)) != 0)
        w->secrets = NULL; /* no master key: sources that verify signatures answer 503 */
    pt_admin_tests_set_timeout(cfg->timeout); /* test runs get the handler timeout */
    if (!forked && pt_py_init_worker(cfg->datadir) != 0)
        start_failed(w, "cannot start the Python interpreter");
}

/* The webhook inbox, the request log's writer and, for an active worker, the webhook
 * processor: their threads inherit the
 * calling thread's priority, so this runs once the main thread is back to normal. Before the
 * pool starts: the inbox's writer reads w->processor once events arrive. */
static void
open_inbox(worker *w)
{
    char err[256] = "";
    if (pt_inbox_open(w->cfg->datadir, pt_hook_on_stored, &w->inbox, err, sizeof(err)) != 0) {
        pt_log_error("webhooks disabled: %s", err);
        w->inbox = NULL;
    }
    open_reqlog(w);
    if (w->index > 0) {
        start_processor(w);
        start_ratelease(w);
    }
}

/* Can this process raise its priority back after lowering it? CAP_SYS_NICE (bit 23 of the
 * effective set) or an RLIMIT_NICE that allows nice 0. */
static int
may_renice(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NICE, &rl) == 0 && rl.rlim_cur >= 20)
        return 1;
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    unsigned long long caps = 0;
    while (f != NULL && fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "CapEff: %llx", &caps) == 1)
            break;
    if (f != NULL)
        fclose(f);
    return (caps >> 23) & 1;
}

/* h2o's configuration, the event loop, the done queue, and the sockets the loop watches: the
 * signalfd for `set` and the shared listening socket. Exits the process (logged) on failure. */
static void
setup_loop(worker *w, const sigset_t *set)
{
    if (pt_framing_init(w->cfg->max_header) != 0)
        _exit(PT_WORKER_EXIT_FAILED);
    h2o_config_init(&w->globalconf);
    w->globalconf.server_name = h2o_iovec_init(H2O_STRLIT("portico"));
    w->globalconf.max_request_entity_size = w->cfg->max_body;
    h2o_hostconf_t *host =
        h2o_config_register_host(&w->globalconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *pathconf = h2o_config_register_path(host, "/", 0);
    h2o_handler_t *handler = h2o_create_handler(pathconf, sizeof(*handler));
    handler->on_req = on_req;
    pt_http_errors_install_cors(pathconf, pt_send_log_h2o_error, pt_traffic_error_cors);
    pt_http_errors_install_cors(&host->fallback_path, pt_send_log_h2o_error, pt_traffic_error_cors);
    w->loop = h2o_evloop_create();
    h2o_context_init(&w->ctx, w->loop, &w->globalconf);
    w->accept_ctx.ctx = &w->ctx;
    w->accept_ctx.hosts = w->globalconf.hosts;
    h2o_timeout_init(w->loop, &w->pause_hold, PT_PAUSE_HOLD_MS);
    w->mq = h2o_multithread_create_queue(w->loop);
    h2o_multithread_register_receiver(w->mq, &w->done_rx, pt_send_on_done);
    pt_rescue_setup(w);

    /* Without it SIGTERM (blocked) would never reach this worker: it could not stop
     * gracefully, only be killed at the master's deadline. Fail; the master retries. */
    int sfd = signalfd(-1, set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sfd < 0) {
        pt_log_error("cannot create the signalfd: %s", strerror(errno));
        _exit(PT_WORKER_EXIT_FAILED);
    }
    w->sigsock = h2o_evloop_socket_create(w->loop, sfd, H2O_SOCKET_FLAG_DONT_READ);
    h2o_socket_read_start(w->sigsock, on_signal);
    if (w->index > 0) {
        listen_start(w);
        return;
    }
    /* A spare waits for the master's word on a duplicate of its custody socket (the loop
     * closes the duplicate with its h2o socket; the custody socket stays). */
    int dup_ctl = fcntl(w->ctl, F_DUPFD_CLOEXEC, 0);
    if (dup_ctl < 0)
        start_failed(w, "cannot watch the custody socket: %s", strerror(errno));
    w->ctlsock = h2o_evloop_socket_create(w->loop, dup_ctl, H2O_SOCKET_FLAG_DONT_READ);
    h2o_socket_read_start(w->ctlsock, on_promote);
}

void
pt_worker_main(const pt_server_config *cfg, int listen_fd, int ctl, int proc, int index,
               unsigned flags)
{
    worker *w = &pt_worker_self;
    sigset_t set;

    prctl(PR_SET_PDEATHSIG, SIGTERM);
    init_state(w, cfg, listen_fd, ctl, proc, index);
    if (index > 0)
        snprintf(w->tag, sizeof(w->tag), "worker %d", index);
    else
        snprintf(w->tag, sizeof(w->tag), "spare %d", proc + 1);
    pt_log_init(w->tag);
    pt_reqid_init();

    /* Signals: SIGTERM arrives through a signalfd on the loop; SIGINT is the master's. */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    pt_crash_install();
    mallopt(M_ARENA_MAX, 2);

    /* A spare started while the server serves (a replacement) initialises at the lowest
     * priority: its interpreter start must not take the CPU from the workers serving right
     * after a crash. Only the main thread is lowered (Linux nice is per thread) and only when
     * it may come back to normal, which it does before any other thread starts. */
    int lowered =
        (flags & PT_WORKER_BACKGROUND) && may_renice() && setpriority(PRIO_PROCESS, 0, 19) == 0;
    open_data(w, (flags & PT_WORKER_FORKED) != 0);
    if (lowered && setpriority(PRIO_PROCESS, 0, 0) != 0)
        pt_log_warn("cannot restore the priority of the main thread: %s", strerror(errno));
    open_inbox(w);
    char tls_err[512];
    if (pt_wtls_init(w, tls_err, sizeof(tls_err)) != 0)
        start_failed(w, "%s", tls_err);
    setup_loop(w, &set);
    pt_worker_refresh(w);
    /* Handlers may grow Python's heap by --worker-memory from here (py/runtime.c). */
    pt_py_set_memory_budget(cfg->worker_memory);
    if (pt_pool_start(w) != 0)
        start_failed(w, "cannot start the worker's threads");
    pt_holds_ready(ctl);
    /* The main thread has nothing left to do: the pool leads the loop. */
    for (;;)
        pause();
}
